/* SPDX-License-Identifier: MIT */
/*
 * The io_uring engine: one ring per event-loop thread, completion callbacks, and a pool
 * of registered buffers ("slots") that reads, writes and zero-copy sends use by index.
 *
 * Every request carries a struct ring_op (embedded in the object that owns the request);
 * its callback runs once per completion.  A SEND_ZC request completes twice: first with
 * the result (IORING_CQE_F_MORE set when a notification follows), then with
 * IORING_CQE_F_NOTIF when the kernel no longer uses the buffer; the callback sees both.
 */
#ifndef WALSHIP_RING_RING_H
#define WALSHIP_RING_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <liburing.h>

/* liburing 2.3 predates these (kernel 6.2, backported to 6.1 stable). */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/*
 * A request's user_data is the address of its struct ring_op; the bits from
 * RING_TAG_SHIFT up may carry a small tag (a peer's number, for the BPF send probes)
 * that completions mask off.  User-space addresses stay below 2^47.  Every request
 * that makes data durable (an FSYNC, or a write with RWF_DSYNC) carries RING_TAG_FSYNC,
 * so that the probes, which fire on every request of the process (a pushed file's
 * validation alone makes thousands), time it as an fsync and pass over an untagged one
 * at its first instruction.
 */
#define RING_TAG_SHIFT 48
#define RING_TAG_MAX 0x7ffe
#define RING_TAG_FSYNC 0x7fff

struct ring_op;
typedef void (*ring_cb)(struct ring_op *op, int res, uint32_t cqe_flags);

struct ring_op {
	ring_cb cb;
};

/* One registered buffer. */
struct ring_slot {
	uint8_t *data;
	uint32_t index; /* buf_index for *_FIXED operations */
	uint32_t size;
	struct ring_slot *next_free;
	bool capped; /* taken with ring_slot_get_capped(): counted in ring.capped_out */
};

struct ring {
	struct io_uring uring;
	unsigned int inflight; /* requests submitted whose last completion has not arrived */
	uint8_t *arena;
	size_t arena_size;
	struct ring_slot *slots;
	uint32_t nslots;
	uint32_t slots_free;
	uint32_t capped_out; /* slots out from ring_slot_get_capped() */
	struct ring_slot *free_list;
	bool fixed_buffers; /* arena registered with the kernel */
	/* what was submitted, for comparison with the BPF probes' counts */
	uint64_t fsyncs_submitted; /* IORING_OP_FSYNC requests and writes with RWF_DSYNC */
	uint64_t tagged_submitted; /* sends given a tag (receives are tagged too, not counted) */
	unsigned int counted_tail; /* submission entries counted up to here */
	int64_t transient_logged_ms; /* when the kernel last could not take requests, logged */
};

/*
 * Set up a ring of @entries submission entries and an arena of @nslots buffers of
 * @slot_size bytes each, registered as fixed buffers (falling back to unregistered
 * buffers, with a warning, if the kernel refuses, e.g. RLIMIT_MEMLOCK).  Returns -errno.
 */
int ring_init(struct ring *r, unsigned int entries, uint32_t nslots, uint32_t slot_size);
void ring_exit(struct ring *r);

/*
 * A submission entry for @op, never NULL: when the submission queue is full it is
 * submitted first.  The caller preps the entry and must not touch it after the next
 * ring call.
 */
struct io_uring_sqe *ring_sqe(struct ring *r, struct ring_op *op);

/* Room for @n submissions in a row (handing what is queued to the kernel first if
 * needed): a request and its IORING_OP_LINK_TIMEOUT must go in one submission, or the
 * request goes alone, without its timeout. */
void ring_reserve(struct ring *r, unsigned int n);

/* Tag the request @sqe (from ring_sqe(), prepared) with @tag, 1 to RING_TAG_MAX; 0 leaves
 * it.  Sends are counted in tagged_submitted; a RECV's tag lets the probes time how long
 * what arrived waits to be durable. */
void ring_sqe_tag(struct ring *r, struct io_uring_sqe *sqe, unsigned int tag);

/*
 * Submit what is queued, wait up to @timeout_ms (-1: forever) for at least one
 * completion, and run the callbacks of all available completions.  Returns the number
 * of completions handled, or -errno (-EINTR is returned as 0).
 */
int ring_run(struct ring *r, int timeout_ms);

/* Take a free slot, or NULL when none is free (back-pressure: try again later). */
struct ring_slot *ring_slot_get(struct ring *r);
/*
 * Take a free slot for a use that may hold at most @limit slots at once, so that it never
 * takes the pool from the other users (a relay's sends leave the rest to the receive they
 * relay: role/relay.h); NULL when none is free or @limit are out.
 */
struct ring_slot *ring_slot_get_capped(struct ring *r, uint32_t limit);
void ring_slot_put(struct ring *r, struct ring_slot *slot);

/* Prepare a send of @len bytes at @buf within @slot: SEND_ZC from the fixed buffer when
 * @zero_copy, a plain SEND otherwise, with @msg_flags (MSG_NOSIGNAL, and MSG_WAITALL where
 * the socket takes it: kernel TLS refuses it). */
void ring_prep_send_slot(struct io_uring_sqe *sqe, int fd, const struct ring *r,
			 const struct ring_slot *slot, const void *buf, size_t len, bool zero_copy,
			 int msg_flags);

#endif /* WALSHIP_RING_RING_H */
