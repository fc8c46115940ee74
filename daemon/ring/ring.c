// SPDX-License-Identifier: MIT
/*
 * The io_uring engine (see ring.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "ring/ring.h"

/* The size of a transparent huge page on x86-64 (a PMD), the arena's alignment. */
#define RING_HUGE_PAGE ((size_t)2 << 20)

/* @n rounded up to a multiple of RING_HUGE_PAGE. */
static inline uintptr_t huge_round_up(uintptr_t n)
{
	return (n + RING_HUGE_PAGE - 1) & ~(uintptr_t)(RING_HUGE_PAGE - 1);
}

/*
 * Map @size bytes (a multiple of RING_HUGE_PAGE) of anonymous memory for the arena,
 * aligned to RING_HUGE_PAGE and marked MADV_HUGEPAGE, so that the kernel backs it with
 * transparent huge pages where it can (Debian's default, "madvise", gives them only to
 * memory so marked); else 4 KiB pages, as before.  A 1 MiB direct write from a slot is
 * then one or two physically contiguous segments instead of 256 pages: on the virtual
 * disk of the test machine the replica stored segments a third faster (23.2 to 25.0
 * against 17.0 to 18.9 seg/s, docs/benchmark-notes.md, 2026-12-04), as fast as the disk
 * limit, which writes from the page cache's large folios.  Returns MAP_FAILED with errno.
 */
static void *arena_map(size_t size)
{
	size_t len = size + RING_HUGE_PAGE;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *start, *end;

	if (p == MAP_FAILED)
		return MAP_FAILED;
	start = (uint8_t *)huge_round_up((uintptr_t)p);
	end = start + size;
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (p + len > end)
		munmap(end, (size_t)(p + len - end));
	if (madvise(start, size, MADV_HUGEPAGE) < 0)
		log_debug("no transparent huge pages for the I/O buffers: %s", strerror(errno));
	return start;
}

int ring_init(struct ring *r, unsigned int entries, uint32_t nslots, uint32_t slot_size)
{
	struct io_uring_params params;
	struct iovec *iov = NULL;
	int ret;

	memset(r, 0, sizeof(*r));
	memset(&params, 0, sizeof(params));
	/*
	 * One thread submits and reaps: SINGLE_ISSUER and COOP_TASKRUN avoid interrupting
	 * the thread for task work.  Kernels before 6.0 refuse SINGLE_ISSUER; retry without.
	 */
	params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(entries, &r->uring, &params);
	if (ret == -EINVAL) {
		memset(&params, 0, sizeof(params));
		ret = io_uring_queue_init_params(entries, &r->uring, &params);
	}
	if (ret < 0) {
		log_error("could not set up io_uring: %s", strerror(-ret));
		return ret;
	}

	r->nslots = nslots;
	/* rounded up to whole huge pages: the last slot's too */
	r->arena_size = huge_round_up((size_t)nslots * slot_size);
	if (nslots == 0)
		return 0;
	r->arena = arena_map(r->arena_size);
	if (r->arena == MAP_FAILED) {
		ret = -errno;
		log_error("could not allocate %zu bytes of I/O buffers: %s", r->arena_size,
			  strerror(errno));
		r->arena = NULL;
		goto out_queue_exit;
	}
	r->slots = calloc(nslots, sizeof(*r->slots));
	iov = calloc(nslots, sizeof(*iov));
	if (!r->slots || !iov) {
		ret = -ENOMEM;
		log_error("out of memory");
		goto out_free;
	}
	for (uint32_t i = nslots; i-- > 0;) {
		struct ring_slot *slot = &r->slots[i];

		slot->data = r->arena + (size_t)i * slot_size;
		slot->index = i;
		slot->size = slot_size;
		slot->next_free = r->free_list;
		r->free_list = slot;
		iov[i].iov_base = slot->data;
		iov[i].iov_len = slot_size;
	}
	r->slots_free = nslots;
	ret = io_uring_register_buffers(&r->uring, iov, nslots);
	if (ret < 0) {
		log_warning("could not register %zu bytes of I/O buffers with io_uring: %s",
			    r->arena_size, strerror(-ret));
		log_hint("Raise RLIMIT_MEMLOCK (ulimit -l, LimitMEMLOCK=) or lower io_buffers; "
			 "walshipd goes on with unregistered buffers and copying I/O.");
	} else {
		r->fixed_buffers = true;
	}
	free(iov);
	return 0;

out_free:
	free(iov);
	free(r->slots);
	r->slots = NULL;
	munmap(r->arena, r->arena_size);
	r->arena = NULL;
out_queue_exit:
	io_uring_queue_exit(&r->uring);
	return ret;
}

void ring_exit(struct ring *r)
{
	io_uring_queue_exit(&r->uring);
	if (r->arena)
		munmap(r->arena, r->arena_size);
	free(r->slots);
	memset(r, 0, sizeof(*r));
}

/* Whether @sqe makes data durable: an FSYNC, or a write with RWF_DSYNC. */
static bool ring_sqe_syncs(const struct io_uring_sqe *sqe)
{
	switch (sqe->opcode) {
	case IORING_OP_FSYNC:
		return true;
	case IORING_OP_WRITE:
	case IORING_OP_WRITEV:
	case IORING_OP_WRITE_FIXED:
		return sqe->rw_flags & RWF_DSYNC;
	default:
		return false;
	}
}

/* Count and tag (RING_TAG_FSYNC) the syncs (ring_sqe_syncs()) among the entries queued
 * since the last call (before each submit). */
static void ring_count_queued(struct ring *r)
{
	struct io_uring_sq *sq = &r->uring.sq;

	for (; r->counted_tail != sq->sqe_tail; r->counted_tail++) {
		struct io_uring_sqe *sqe = &sq->sqes[r->counted_tail & sq->ring_mask];

		if (ring_sqe_syncs(sqe)) {
			sqe->user_data = (sqe->user_data & ((1ULL << RING_TAG_SHIFT) - 1)) |
					 (uint64_t)RING_TAG_FSYNC << RING_TAG_SHIFT;
			r->fsyncs_submitted++;
		}
	}
}

/* Sleep @ms milliseconds (the kernel took no request: see the callers). */
static void ring_pause_ms(long ms)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = ms * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct io_uring_sqe *ring_sqe(struct ring *r, struct ring_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);

	while (!sqe) {
		/* Submission queue full: hand what is there to the kernel.  It may take none
		 * for a moment (-EAGAIN: no memory for requests, a memory cgroup at its
		 * limit): then again a millisecond later, not at once for as long as it lasts. */
		ring_count_queued(r);
		if (io_uring_submit(&r->uring) < 0)
			ring_pause_ms(1);
		sqe = io_uring_get_sqe(&r->uring);
	}
	io_uring_sqe_set_data(sqe, op);
	r->inflight++;
	return sqe;
}

void ring_reserve(struct ring *r, unsigned int n)
{
	/* Until there is room, as ring_sqe() does: a submit the kernel refused for a moment
	 * (-EAGAIN) would leave a linked pair to be split, its timeout submitted alone. */
	while (io_uring_sq_space_left(&r->uring) < n) {
		ring_count_queued(r);
		if (io_uring_submit(&r->uring) < 0)
			ring_pause_ms(1);
	}
}

void ring_sqe_tag(struct ring *r, struct io_uring_sqe *sqe, unsigned int tag)
{
	if (!tag || tag > RING_TAG_MAX)
		return;
	sqe->user_data |= (uint64_t)tag << RING_TAG_SHIFT;
	if (sqe->opcode != IORING_OP_RECV)
		r->tagged_submitted++; /* the sends, which the send probes count */
}

int ring_run(struct ring *r, int timeout_ms)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	unsigned int head, handled = 0;
	int ret;

	ring_count_queued(r);
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
		ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts, NULL);
	} else {
		ret = io_uring_submit_and_wait(&r->uring, 1);
	}
	/* The kernel could not take the requests now (no memory for them: a memory cgroup
	 * at its limit): they stay queued and go with the next submit; the completions there
	 * are handled meanwhile.  Not fatal (the daemon exited, every connection with it). */
	if (ret == -EAGAIN || ret == -ENOMEM || ret == -EBUSY) {
		int64_t now = clock_now_ms();

		if (now - r->transient_logged_ms >= 10000) {
			log_warning("io_uring could not take requests now: %s; trying again",
				    strerror(-ret));
			r->transient_logged_ms = now;
		}
		if (!io_uring_cq_ready(&r->uring))
			ring_pause_ms(1);
		ret = 0;
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR) {
		log_error("io_uring wait failed: %s", strerror(-ret));
		return ret;
	}

	/*
	 * Callbacks may queue new requests but never wait, so walking the completion
	 * queue while they run is safe; advance once at the end.
	 */
	for (;;) {
		unsigned int batch = 0;

		io_uring_for_each_cqe(&r->uring, head, cqe) {
			struct ring_op *op =
				(struct ring_op *)(uintptr_t)(cqe->user_data &
							      ((1ULL << RING_TAG_SHIFT) - 1));
			int res = cqe->res;
			uint32_t flags = cqe->flags;

			batch++;
			if (!(flags & IORING_CQE_F_MORE))
				r->inflight--;
			if (op && op->cb)
				op->cb(op, res, flags);
		}
		if (!batch)
			break;
		io_uring_cq_advance(&r->uring, batch);
		handled += batch;
	}
	return (int)handled;
}

struct ring_slot *ring_slot_get(struct ring *r)
{
	struct ring_slot *slot = r->free_list;

	if (!slot)
		return NULL;
	r->free_list = slot->next_free;
	slot->next_free = NULL;
	r->slots_free--;
	return slot;
}

struct ring_slot *ring_slot_get_capped(struct ring *r, uint32_t limit)
{
	struct ring_slot *slot;

	if (r->capped_out >= limit || !(slot = ring_slot_get(r)))
		return NULL;
	slot->capped = true;
	r->capped_out++;
	return slot;
}

void ring_slot_put(struct ring *r, struct ring_slot *slot)
{
	if (slot->capped) {
		slot->capped = false;
		r->capped_out--;
	}
	slot->next_free = r->free_list;
	r->free_list = slot;
	r->slots_free++;
}

void ring_prep_send_slot(struct io_uring_sqe *sqe, int fd, const struct ring *r,
			 const struct ring_slot *slot, const void *buf, size_t len, bool zero_copy,
			 int msg_flags)
{
	if (zero_copy) {
		io_uring_prep_send_zc(sqe, fd, buf, len, msg_flags, IORING_SEND_ZC_REPORT_USAGE);
		if (r->fixed_buffers) {
			sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
			sqe->buf_index = (uint16_t)slot->index;
		}
	} else {
		io_uring_prep_send(sqe, fd, buf, len, msg_flags);
	}
}
