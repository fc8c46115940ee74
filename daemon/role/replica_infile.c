// SPDX-License-Identifier: MIT
/*
 * The replica's incoming files (see replica.c for the protocol steps, replica_internal.h
 * for the state): each file from FILE_BEGIN to its ACK, as an explicit state machine over
 * io_uring (open, chunk writes from the slots they were received into, fdatasync, rename
 * with RENAME_NOREPLACE, directory fsync), with its checkpoints (checkpoint_interval) and
 * the partial it leaves for resuming when the connection is lost.
 *
 * Segments are written with O_DIRECT from the registered slot they were received into
 * (the slot layout is in role.h): no copy into the page cache, the disk writes overlap
 * the transfer, and fdatasync at the end has little left to do.  A streamed segment
 * arrives in pieces of any length, so it is written from an aligned image of itself,
 * each group commit one direct write with RWF_DSYNC ("Streamed segments written
 * directly", below), or, where that cannot be, buffered with an fdatasync per commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "net/conn.h"
#include "proto/codec.h"
#include "role/replica_decide.h"
#include "role/replica_internal.h"
#include "role/role.h"
#include "wal/name.h"
#include "wal/page.h"
#include "wal/store.h"

static void infile_fail(struct infile *f, uint8_t status, const char *fmt, ...) attr_printf(3, 4);

static void infile_fail(struct infile *f, uint8_t status, const char *fmt, ...)
{
	va_list ap;

	if (f->fail_status != WIRE_ACK_STORED)
		return; /* the first reason stands */
	f->fail_status = status;
	va_start(ap, fmt);
	vsnprintf(f->fail_msg, sizeof(f->fail_msg), fmt, ap);
	va_end(ap);
}

/* ---- streamed segments written directly ---- */

/*
 * A group commit's bytes end anywhere in a block, and O_DIRECT writes whole aligned blocks
 * from aligned memory, while the pieces arrive in slots at any offset.  So the replica
 * copies a streamed segment's bytes into an aligned image of it, and each group commit
 * writes, from there, the blocks from the one holding the durable end to the one holding
 * the received end: the full blocks as they are (received bytes never change, and none
 * arrives inside them while they are written), the partial last one through a bounce
 * block copied at submission and padded with zeros, so that no memory is written to while
 * under I/O and no byte not received reaches the disk.  One write with RWF_DSYNC makes it
 * durable.  Against a buffered write and an fdatasync on io_uring's worker, this saves
 * the copy into the page cache and its writeback; on a disk without FUA the cache flush
 * that completes the write runs in a kernel worker instead (docs/benchmark-notes.md,
 * "Streamed segments written directly").  The images are recycled: a new one is a
 * mapping faulted in page by page.  While a segment has one, the standbys of pg_listen and
 * the downstream replicas of relay read it there (serve_wal_durable(),
 * relay_wal_durable(), and their *_image_gone() before it is put back), not through the
 * page cache that each direct write drops.
 */
static uint8_t *image_get(struct replica *rp, uint64_t size)
{
	void *mem;

	for (int i = 0; i < REPLICA_STREAM_IMAGES; i++) {
		struct stream_image *im = &rp->images[i];

		if (im->mem && im->size == size) {
			uint8_t *got = im->mem;

			im->mem = NULL;
			return got;
		}
	}
	if (rp->image_bytes + size + ROLE_DIO_ALIGN > REPLICA_STREAM_IMAGE_BUDGET)
		return NULL; /* buffered, as the budget says */
	mem = mmap(NULL, size + ROLE_DIO_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (mem == MAP_FAILED) {
		log_warning("could not map %" PRIu64 " bytes for a streamed segment (%s); using "
			    "buffered writes",
			    size, strerror(errno));
		return NULL;
	}
	rp->image_bytes += size + ROLE_DIO_ALIGN;
	return mem;
}

static void image_unmap(struct replica *rp, uint8_t *mem, uint64_t size)
{
	munmap(mem, size + ROLE_DIO_ALIGN);
	rp->image_bytes -= size + ROLE_DIO_ALIGN;
}

static void image_put(struct replica *rp, uint8_t *mem, uint64_t size)
{
	if (!mem)
		return;
	for (int i = 0; i < REPLICA_STREAM_IMAGES; i++) {
		if (!rp->images[i].mem) {
			rp->images[i] = (struct stream_image){ .mem = mem, .size = size };
			return;
		}
	}
	image_unmap(rp, mem, size);
}

/* Give @f's image back, its readers (pg_listen's standbys, relay's replicas) told first:
 * they read the file from now on. */
static void infile_image_put(struct infile *f)
{
	struct replica *rp = f->link->rp;

	serve_wal_image_gone(rp->serve, f->name, f->image);
	relay_wal_image_gone(rp->relay, f->name, f->image);
	image_put(rp, f->image, f->size);
	f->image = NULL;
}

void stream_images_free(struct replica *rp)
{
	for (int i = 0; i < REPLICA_STREAM_IMAGES; i++) {
		if (rp->images[i].mem)
			image_unmap(rp, rp->images[i].mem, rp->images[i].size);
		rp->images[i].mem = NULL;
	}
}

/* Free @f, unlinked from its link's files, with the chunks still waiting for their write. */
static void infile_release(struct infile *f)
{
	struct link *lk = f->link;
	struct infile **fp;
	struct chunk_write *cw, *next;

	for (cw = f->waiting; cw; cw = next) {
		next = cw->next;
		ring_slot_put(lk->rp->ring, cw->slot);
		free(cw);
	}
	infile_image_put(f);
	if (f->fd >= 0)
		close(f->fd);
	if (f->has_prior) {
		/* Not stored: the prior partial goes only where this file's own kept partial
		 * begins with its bytes. */
		struct store_partial *sp = store_partial_find(&lk->rp->store, f->name);

		store_partial_retire(&lk->rp->store, &f->prior, lk->rp->store.incoming_fd,
				     sp ? sp->tmp_name : NULL);
	}
	for (fp = &lk->files; *fp; fp = &(*fp)->next) {
		if (*fp == f) {
			*fp = f->next;
			lk->nfiles--;
			break;
		}
	}
	free(f);
}

static void link_write_waiting(struct link *lk);

/* Free @f: if it held the disk, the next file's writes may go now. */
static void infile_free(struct infile *f)
{
	struct link *lk = f->link;

	infile_release(f);
	link_write_waiting(lk);
}

static void infile_discard(struct infile *f)
{
	struct replica *rp = f->link->rp;

	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	if (f->tmp_name[0] && unlinkat(rp->store.incoming_fd, f->tmp_name, 0) < 0 &&
	    errno != ENOENT)
		log_warning("could not remove file \"%s/%s/%s\": %s", rp->store.path,
			    STORE_INCOMING_DIR, f->tmp_name, strerror(errno));
	if (f->tmp_name[0]) {
		serve_wal_dropped(rp->serve, f->name, f->tmp_name); /* standbys on pg_listen */
		/* downstream: a streamed copy, or a kept partial the relay follows since its
		 * start, resumed without the stream flag (it matches the temporary name) */
		relay_wal_dropped(rp->relay, f->name, f->tmp_name);
	}
	f->tmp_name[0] = '\0';
}

static void infile_ack(struct infile *f, uint8_t status, const char *message)
{
	struct link *lk = f->link;
	struct msg_ack ack = { .file_id = f->file_id, .status = status };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	int len;

	ack.durable_offset = replica_ack_durable_offset(status, f->size);
	snprintf(ack.name, sizeof(ack.name), "%s", f->name);
	snprintf(ack.message, sizeof(ack.message), "%s", message ? message : "");
	len = msg_ack_encode(frame, sizeof(frame), &ack);
	if (len < 0) {
		log_error("could not encode ACK for \"%s\"", f->name);
		return;
	}
	/* A refusal is counted where it is decided (conflicts, invalid, io_errors): the
	 * status's last acknowledged file, from which its durable position comes, is one
	 * held durably. */
	if (conn_send_frame(&lk->conn, frame, (uint32_t)len) == 0 &&
	    (status == WIRE_ACK_STORED || status == WIRE_ACK_DUPLICATE)) {
		lk->files_acked++;
		snprintf(lk->last_acked, sizeof(lk->last_acked), "%s", f->name);
	}
}

static void infile_keep_synced(struct infile *f, const char *why);

/*
 * @f, a file refused for its content (another file of its name stored, WAL that does
 * not validate) after its first f->acked bytes were acknowledged (streamed), or may have
 * been (resumed from a partial): commits may be there, so it is set aside in .refused for
 * the operator (walship check warns), never removed.  infile_discard() then finds nothing
 * to remove, and still tells the relay.
 */
static void infile_set_aside(struct infile *f)
{
	struct replica *rp = f->link->rp;
	char as[sizeof(f->tmp_name) + 16];

	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
	}
	/* Refused for a stored file of its name that agrees with the acknowledged bytes
	 * (CONFLICT: one that contradicts them is set aside instead): that one is what
	 * walship fetch serves of them now.  Put there by other hands perhaps (cp, rsync:
	 * no fsync), it is made durable first, as store_same_content() does for a
	 * duplicate, or a power loss could take both copies of acknowledged WAL; failing
	 * that, this copy stays where it is. */
	if ((f->fail_status == WIRE_ACK_CONFLICT && store_sync_stored(&rp->store, f->name) < 0) ||
	    store_set_aside(&rp->store, f->tmp_name, as, sizeof(as)) < 0) {
		log_warning("left \"%s/%s/%s\" as it is: its first %" PRIu64
			    " bytes were acknowledged durable",
			    rp->store.path, STORE_INCOMING_DIR, f->tmp_name, f->acked);
		log_detail("The next start of walshipd looks at it again.");
		serve_wal_dropped(rp->serve, f->name, f->tmp_name);
		relay_wal_dropped(rp->relay, f->name, f->tmp_name);
		f->tmp_name[0] = '\0';
		return;
	}
	log_warning("set \"%s\" aside as \"%s/%s/%s\": its first %" PRIu64
		    " bytes were acknowledged durable",
		    f->name, rp->store.path, STORE_REFUSED_DIR, as, f->acked);
	log_detail("Commits may be in them; look into it, then remove the file.");
}

/*
 * The file will not be stored: count, log, remove the temporary file, refuse it (a file
 * the primary cancelled goes without a word: nobody waits for it).
 *
 * A streamed file is refused as soon as it fails, not at its end: its end may never come
 * while it fails, because synchronous commits wait for it and PostgreSQL writes no more
 * WAL meanwhile.  It stays (f->refused, its memory and file given up) until the primary
 * answers with FILE_CANCEL, or its FILE_END was on its way; then it goes without a word.
 *
 * But a file that could not be stored (IO_ERROR) after part of it was acknowledged
 * durable (f->acked: PROGRESS, or a resumed partial's bytes) is not refused: commits may
 * be in that part and on the primary alone.  The part is kept when the link is released
 * (infile_keep_synced()), and the link is closed (by replica_pump(): we may be inside its
 * receive) so that the primary
 * resumes the file from there after the reconnect, instead of sending it from its start.
 */
static void infile_refuse(struct infile *f)
{
	struct replica *rp = f->link->rp;

	if (f->refused) {
		infile_free(f);
		return;
	}
	if (f->link->io_failed)
		return; /* the link goes, and its files with it */
	if (f->acked && !f->cancelled && f->fail_status == WIRE_ACK_IO_ERROR) {
		rp->st.io_errors++;
		snprintf(rp->st.last_error, sizeof(rp->st.last_error), "%s", f->fail_msg);
		log_error("could not store \"%s\" beyond its %" PRIu64
			  " bytes acknowledged durable: %s",
			  f->name, f->acked, f->fail_msg);
		log_detail("They are kept; the connection is closed, for the primary to resume "
			   "the file from there.");
		f->link->io_failed = true;
		return;
	}

	if (f->cancelled) {
		if (f->acked && f->tmp_name[0]) {
			/* Its acknowledged bytes stay until what holds them is stored: the cut
			 * segment's NAME.partial at a timeline switch (infile_drop_superseded()). */
			relay_wal_dropped(rp->relay, f->name, f->tmp_name);
			infile_keep_synced(f, "the primary cancelled the rest");
		} else {
			log_log("discarded \"%s\" (%" PRIu64
				" bytes received): the primary cancelled it",
				f->name, f->received);
		}
		infile_discard(f);
		infile_free(f);
		return;
	}

	switch (f->fail_status) {
	case WIRE_ACK_INVALID:
		rp->st.invalid++;
		break;
	case WIRE_ACK_SYSID:
		rp->st.sysid_refused++;
		break;
	case WIRE_ACK_CONFLICT:
		rp->st.conflicts++;
		snprintf(rp->st.last_conflict, sizeof(rp->st.last_conflict), "%s", f->fail_msg);
		break;
	default:
		rp->st.io_errors++;
		break;
	}
	if (f->fail_status == WIRE_ACK_CONFLICT)
		log_warning("refused \"%s\": %s", f->name, f->fail_msg);
	else
		log_error("refused \"%s\": %s", f->name, f->fail_msg);
	snprintf(rp->st.last_error, sizeof(rp->st.last_error), "%s", f->fail_msg);
	if (f->acked && f->tmp_name[0])
		infile_set_aside(f);
	infile_discard(f);
	infile_ack(f, f->fail_status, f->fail_msg);
	if (f->end_received) {
		infile_free(f);
		return;
	}
	f->refused = true;
	infile_image_put(f);
}

static void infile_step(struct ring_op *op, int res, uint32_t flags);
static void infile_stream_sync(struct infile *f);
static void infile_checkpoint(struct infile *f, int64_t now_ms);
static void infile_checkpointed(struct ring_op *op, int res, uint32_t flags);
static void infile_image_start(struct infile *f);
static void infile_write_now(struct infile *f, const uint8_t *data, uint32_t len, uint64_t offset);
static void infile_prefill(struct infile *f);
static void infile_ready(struct infile *f);

static void infile_submit(struct infile *f, struct io_uring_sqe *sqe)
{
	(void)sqe;
	conn_op_begin(&f->link->conn);
}

static void infile_clear_direct(struct infile *f)
{
	int flags = fcntl(f->fd, F_GETFL);

	if (flags < 0 || fcntl(f->fd, F_SETFL, flags & ~O_DIRECT) < 0)
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not turn off direct I/O for \"%s\": %s",
			    f->tmp_name, strerror(errno));
}

static void infile_open(struct infile *f)
{
	struct replica *rp = f->link->rp;
	struct io_uring_sqe *sqe;
	int flags = O_WRONLY | O_CLOEXEC | (f->direct ? O_DIRECT : 0) |
		    (f->resumed ? 0 : O_CREAT | O_EXCL);

	f->open_direct = f->direct;
	f->op.cb = infile_step;
	sqe = ring_sqe(rp->ring, &f->op);
	io_uring_prep_openat(sqe, rp->store.incoming_fd, f->tmp_name, flags, 0640);
	infile_submit(f, sqe);
}

/*
 * @f's name is stored now, by this file or by one of the same content before it
 * (DUPLICATE).  What was kept for its bytes goes, each only where the stored file begins
 * with its bytes, and is set aside otherwise (store_partial_retire()): the partial the
 * primary did not resume (f->prior), and, for NAME.partial, the copy of NAME kept in
 * .incoming when the primary cancelled it at a timeline switch (its acknowledged bytes:
 * NAME.partial holds what the primary had of it, unless it came from elsewhere, such as
 * a promoted standby that had received less).
 */
static void infile_name_stored(struct infile *f)
{
	struct store *st = &f->link->rp->store;
	char name[sizeof(((struct store_partial *)0)->name)];
	size_t len = strlen(f->name) - strlen(".partial");
	struct store_partial *sp, gone;

	if (f->has_prior) {
		f->has_prior = false;
		store_partial_retire(st, &f->prior, st->dir_fd, f->name);
	}
	if (f->wn.kind != WAL_FILE_PARTIAL || len >= sizeof(name))
		return;
	memcpy(name, f->name, len);
	name[len] = '\0';
	sp = store_partial_find(st, name);
	if (!sp)
		return;
	gone = *sp;
	store_partial_take(st, sp);
	store_partial_retire(st, &gone, st->dir_fd, f->name);
}

static void infile_stored(struct infile *f)
{
	struct replica *rp = f->link->rp;

	int64_t now = clock_now_ms();

	rp->st.files_stored++;
	rp->st.bytes_stored += f->size;
	rp->io_backoff_ms = 0; /* storing again (link_closed()) */
	rp->st.seg_size = f->wv.have_id ? f->wv.id.seg_size : rp->st.seg_size;
	log_debug("stored \"%s\" (%" PRIu64 " bytes): received in %" PRId64
		  " ms, writes done +%" PRId64 " ms, fdatasync +%" PRId64
		  " ms, rename and directory fsync +%" PRId64 " ms",
		  f->name, f->size, f->t_end - f->t_begin, f->t_written - f->t_end,
		  f->t_synced - f->t_written, now - f->t_synced);
	store_recent_add(&rp->store, f->name, f->size, f->crc);
	infile_name_stored(f);
	serve_wal_stored(rp->serve, f->name); /* standbys on pg_listen */
	relay_wal_stored(rp->relay, f->name, f->size); /* downstream replicas */
	infile_ack(f, WIRE_ACK_STORED, NULL);
	infile_free(f);
}

/* All bytes are written: check the file as a whole, then make it durable. */
static void infile_maybe_finish(struct infile *f)
{
	struct replica *rp = f->link->rp;
	struct io_uring_sqe *sqe;
	struct wal_identity id;

	if (f->writes_pending || f->opening || f->checkpointing || f->state != IN_RECEIVING)
		return;
	if (!f->end_received) {
		if (f->stream && !f->refused && f->fail_status != WIRE_ACK_STORED &&
		    !f->link->conn.closing)
			infile_refuse(f); /* now: its end may never come */
		return;
	}
	if (f->image && f->durable < f->received && f->fail_status == WIRE_ACK_STORED) {
		infile_checkpoint(f, clock_now_ms()); /* the last bytes are in the image only */
		return;
	}
	if (f->fail_status == WIRE_ACK_STORED && wal_validator_end(&f->wv, &id) < 0)
		infile_fail(f, WIRE_ACK_INVALID, "%s", f->wv.message);
	if (f->fail_status != WIRE_ACK_STORED) {
		infile_refuse(f);
		return;
	}
	f->t_written = clock_now_ms();
	store_mark_complete(&rp->store, f->fd, f->size, f->crc);
	f->state = IN_SYNCING;
	f->op.cb = infile_step;
	sqe = ring_sqe(rp->ring, &f->op);
	io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
	infile_submit(f, sqe);
}

/* Write @cw at its offset from the slot it was received into (the file is open). */
static void infile_write_chunk(struct infile *f, struct chunk_write *cw)
{
	struct ring *ring = f->link->rp->ring;
	struct io_uring_sqe *sqe = ring_sqe(ring, &cw->op);

	/* The registration saves pinning the slot for a direct write; a buffered write is a
	 * copy, which a plain WRITE makes with copy_from_user(), faster than the memcpy()
	 * of a WRITE_FIXED on CPUs without FSRM (as the primary's reads, primary_xfer.c). */
	if (ring->fixed_buffers && f->direct)
		io_uring_prep_write_fixed(sqe, f->fd, cw->data, cw->len, cw->offset,
					  (int)cw->slot->index);
	else
		io_uring_prep_write(sqe, f->fd, cw->data, cw->len, cw->offset);
	f->writes_pending++;
	f->writes_inflight++;
	infile_submit(f, sqe);
}

/* Is @f's open file its full size already: a streamed segment preallocated (in place)? */
static bool infile_preallocated(const struct infile *f)
{
	struct stat sb;

	return fstat(f->fd, &sb) == 0 && (uint64_t)sb.st_size == f->size;
}

/* IN_RECEIVING: the open completed (@res: the descriptor or -errno).  Write the chunks
 * that arrived meanwhile, or drop them if the file cannot be stored. */
static void infile_opened(struct infile *f, int res)
{
	struct replica *rp = f->link->rp;

	/* (asked by the open, not f->direct: a chunk that came meanwhile may have turned
	 * it off, and the open still failed for O_DIRECT) */
	if (res == -EINVAL && f->open_direct) {
		/* The file system has no direct I/O (tmpfs): buffered from now on. */
		log_log("direct I/O is not available in \"%s\"; using buffered writes",
			rp->store.path);
		rp->no_direct_io = true;
		f->direct = false;
		/* The failed open may have created the file (tmpfs does): O_EXCL again.
		 * A resumed file holds durable bytes: it is opened again as it is. */
		if (!f->resumed)
			unlinkat(rp->store.incoming_fd, f->tmp_name, 0);
		infile_open(f);
		return;
	}
	if (res < 0) {
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not create file \"%s/%s/%s\": %s",
			    rp->store.path, STORE_INCOMING_DIR, f->tmp_name, strerror(-res));
		f->tmp_name[0] = '\0';
	} else {
		f->fd = res;
		if (!f->direct && replica_direct_io_wanted(f->wn.kind, rp->no_direct_io))
			infile_clear_direct(f); /* a chunk came that needs it */
		if (f->stream && !f->resumed && f->wn.kind == WAL_FILE_SEGMENT &&
		    f->fail_status == WIRE_ACK_STORED) {
			infile_prefill(f);
			return;
		}
		if (f->stream && f->resumed && infile_preallocated(f))
			f->in_place = true; /* resumed as it was written: in place */
	}
	infile_ready(f);
}

/*
 * A new streamed segment is preallocated before its first byte is written, as PostgreSQL's
 * walreceiver does (XLogFileInit): its size in zeros, and a record of durable length 0
 * (store_mark_durable()), made durable with one fsync.  Its group commits are then
 * fdatasyncs that write its bytes and nothing else: no journal commit for a size or a
 * record each time (docs/architecture.md, "Durability rules").  Zeros are written, not
 * fallocate()d: writing into unwritten extents would change metadata at each commit again.
 * Chunks received meanwhile wait (f->opening), as during the open.
 */
static uint8_t infile_zeros[WIRE_CHUNK_SIZE]; /* never written: the zero page */

static void infile_prefill_step(struct ring_op *op, int res, uint32_t flags)
{
	struct infile *f = container_of(op, struct infile, ck_op);
	struct link *lk = f->link;

	(void)flags;
	if (res < 0 || (f->prefill_off < f->size && res == 0)) {
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not preallocate file \"%s\": %s",
			    f->tmp_name, strerror(res < 0 ? -res : ENOSPC));
		infile_ready(f);
	} else if (f->prefill_off < f->size) {
		f->prefill_off += (uint64_t)res;
		infile_prefill(f);
	} else if (!f->prefill_synced) {
		f->prefill_synced = true;
		infile_prefill(f); /* its name in .incoming next */
	} else {
		f->in_place = true;
		infile_image_start(f);
		infile_ready(f);
	}
	conn_op_end(&lk->conn); /* may free the link */
}

static void infile_prefill(struct infile *f)
{
	struct replica *rp = f->link->rp;
	struct io_uring_sqe *sqe;

	if (!f->prefill_off)
		store_mark_durable(&rp->store, f->fd, f->size, 0, 0); /* best effort */
	f->ck_op.cb = infile_prefill_step;
	sqe = ring_sqe(rp->ring, &f->ck_op);
	if (f->prefill_off < f->size) {
		uint64_t left = f->size - f->prefill_off;

		io_uring_prep_write(sqe, f->fd, infile_zeros,
				    left < sizeof(infile_zeros) ? (unsigned int)left :
								  sizeof(infile_zeros),
				    f->prefill_off);
	} else if (!f->prefill_synced) {
		/* fsync, not fdatasync: the record is inode metadata */
		io_uring_prep_fsync(sqe, f->fd, 0);
	} else {
		/* Its entry, before any of its bytes is acknowledged: a file system need not
		 * make a new file's name durable with the file's fsync (ext4 without a journal
		 * does not). */
		io_uring_prep_fsync(sqe, rp->store.incoming_fd, 0);
	}
	infile_submit(f, sqe);
}

/* ---- the spare: the next streamed segment's file, preallocated ahead ---- */

void spare_init(struct replica *rp)
{
	rp->spare = (struct spare){ .rp = rp, .fd = -1 };
}

/* Close and remove the spare's file (nothing in flight). */
static void spare_drop(struct spare *sp)
{
	struct replica *rp = sp->rp;

	if (sp->fd < 0)
		return;
	close(sp->fd);
	sp->fd = -1;
	if (unlinkat(rp->store.incoming_fd, sp->tmp_name, 0) < 0 && errno != ENOENT)
		log_warning("could not remove file \"%s/%s/%s\": %s", rp->store.path,
			    STORE_INCOMING_DIR, sp->tmp_name, strerror(errno));
}

static void spare_submit(struct spare *sp);

static void spare_step(struct ring_op *op, int res, uint32_t flags)
{
	struct spare *sp = container_of(op, struct spare, op);

	(void)flags;
	sp->busy = false;
	if (sp->abandoned || res < 0 || (sp->off < sp->size && res == 0)) {
		if (!sp->abandoned)
			log_warning("could not preallocate file \"%s/%s/%s\": %s",
				    sp->rp->store.path, STORE_INCOMING_DIR, sp->tmp_name,
				    strerror(res < 0 ? -res : ENOSPC));
		sp->abandoned = false;
		spare_drop(sp);
		return;
	}
	if (sp->off < sp->size) {
		sp->off += (uint64_t)res;
		spare_submit(sp);
		return;
	}
	if (!sp->file_synced) {
		sp->file_synced = true;
		spare_submit(sp); /* its name in .incoming next */
		return;
	}
	sp->ready = true;
}

static void spare_submit(struct spare *sp)
{
	struct io_uring_sqe *sqe;

	sp->op.cb = spare_step;
	sqe = ring_sqe(sp->rp->ring, &sp->op);
	if (sp->off < sp->size) {
		uint64_t left = sp->size - sp->off;

		io_uring_prep_write(sqe, sp->fd, infile_zeros,
				    left < sizeof(infile_zeros) ? (unsigned int)left :
								  sizeof(infile_zeros),
				    sp->off);
	} else if (!sp->file_synced) {
		io_uring_prep_fsync(sqe, sp->fd, 0); /* with the record */
	} else {
		/* Its entry: a file system need not make a new file's name durable with the
		 * file's fsync (ext4 without a journal does not). */
		io_uring_prep_fsync(sqe, sp->rp->store.incoming_fd, 0);
	}
	sp->busy = true;
}

/* @f is a streamed segment written in place: preallocate the file of the one after it. */
static void spare_prepare(struct infile *f)
{
	struct replica *rp = f->link->rp;
	struct spare *sp = &rp->spare;
	char next[WIRE_MAX_FILE_NAME + 1];
	uint64_t segno;

	if (wal_name_segno(&f->wn, (uint32_t)f->size, &segno) < 0)
		return;
	wal_name_format_segment(next, sizeof(next), f->wn.timeline, segno + 1, (uint32_t)f->size);
	if (sp->busy || (sp->fd >= 0 && !strcmp(sp->name, next)))
		return; /* the one before is not done yet, or this one is on its way */
	spare_drop(sp);
	*sp = (struct spare){ .rp = rp, .fd = -1, .seq = ++rp->seq, .size = f->size };
	snprintf(sp->name, sizeof(sp->name), "%s", next);
	if (store_tmp_name(sp->tmp_name, sizeof(sp->tmp_name), next, sp->seq) < 0)
		return;
	sp->fd = openat(rp->store.incoming_fd, sp->tmp_name,
			O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (sp->fd < 0) {
		log_warning("could not create file \"%s/%s/%s\": %s", rp->store.path,
			    STORE_INCOMING_DIR, sp->tmp_name, strerror(errno));
		return;
	}
	store_mark_durable(&rp->store, sp->fd, sp->size, 0, 0); /* best effort */
	spare_submit(sp);
}

/*
 * A new streamed segment @f (FILE_BEGIN, not resumed): take the spare when it is its file
 * and ready (@f is then open, in place, with the spare's name); a spare of another name, or
 * not ready yet, is given up (removed once its request completes).  Returns whether @f
 * took it.
 */
static bool spare_take(struct infile *f)
{
	struct spare *sp = &f->link->rp->spare;

	if (sp->fd < 0)
		return false;
	if (!sp->ready || strcmp(sp->name, f->name) || sp->size != f->size) {
		if (sp->busy)
			sp->abandoned = true;
		else
			spare_drop(sp);
		return false;
	}
	f->fd = sp->fd;
	f->seq = sp->seq;
	snprintf(f->tmp_name, sizeof(f->tmp_name), "%s", sp->tmp_name);
	f->in_place = true;
	sp->fd = -1;
	sp->ready = false;
	infile_image_start(f);
	return true;
}

bool spare_busy(struct replica *rp)
{
	struct spare *sp = &rp->spare;

	if (sp->busy)
		return true;
	if (sp->fd >= 0) {
		close(sp->fd); /* its file is removed at the next start: nothing durable */
		sp->fd = -1;
	}
	return false;
}

/* Write the chunks waiting on @f that may go now (dropped if the file cannot be stored). */
static void infile_write_waiting(struct infile *f)
{
	struct replica *rp = f->link->rp;

	while (f->waiting && !replica_write_waits(f)) {
		struct chunk_write *cw = f->waiting;

		f->waiting = cw->next;
		if (!f->waiting)
			f->waiting_tail = &f->waiting;
		f->writes_pending--; /* counted again by infile_write_chunk */
		if (f->fd < 0 || f->fail_status != WIRE_ACK_STORED) {
			ring_slot_put(rp->ring, cw->slot);
			free(cw);
			continue;
		}
		cw->next = NULL;
		infile_write_chunk(f, cw);
	}
}

/*
 * A file that held the disk is synced or gone: write what may go now of the files after
 * it, and finish those whose chunks were dropped meanwhile (they failed).  Finishing can
 * free a file, so the walk starts again after each.
 */
static void link_write_waiting(struct link *lk)
{
again:
	for (struct infile *f = lk->files; f; f = f->next) {
		if (f->waiting && !replica_write_waits(f)) {
			infile_write_waiting(f);
			infile_maybe_finish(f);
			goto again;
		}
	}
}

/* The file is open (and preallocated) or could not be: write the chunks that arrived
 * meanwhile, or drop them if the file cannot be stored. */
static void infile_ready(struct infile *f)
{
	f->opening = false;
	if (f->in_place)
		spare_prepare(f);
	infile_write_waiting(f); /* chunks that arrived meanwhile */
	infile_stream_sync(f); /* or their group commit, when they are in an image */
	infile_maybe_finish(f);
}

/* IN_RENAMING: rename the file into place (never over a stored one). */
static void infile_rename(struct infile *f)
{
	struct replica *rp = f->link->rp;
	struct io_uring_sqe *sqe;

	f->state = IN_RENAMING;
	sqe = ring_sqe(rp->ring, &f->op);
	io_uring_prep_renameat(sqe, rp->store.incoming_fd, f->tmp_name, rp->store.dir_fd, f->name,
			       RENAME_NOREPLACE);
	infile_submit(f, sqe);
}

static void infile_check_identity(struct infile *f);

/*
 * The store's identity file, written on rp->worker: its fsyncs must not hold up the event
 * loop (on a busy disk they take seconds, and a loop that does not run answers no PING).
 * Every segment that completes meanwhile waits for it (IN_IDENTIFYING, holding an
 * operation of its link as a ring request would): nothing of a system is renamed into
 * the store, so acknowledged, before the store's identity is durable.
 */
struct identity_job {
	struct worker_job job;
	struct replica *rp;
	struct wal_identity id;
	int ret;
};

static void identity_job_run(struct worker_job *job)
{
	struct identity_job *ij = (struct identity_job *)job;

	ij->ret = store_write_identity(&ij->rp->store, &ij->id); /* logs */
}

static void infile_tell_durable(struct infile *f);

/* The streamed files whose durable bytes waited for the store's identity (durable_untold):
 * told now, if they are of the cluster it holds; else refused. */
static void identity_tell_untold(struct replica *rp, int ret)
{
	struct infile *f, *next;

	for (f = rp->link ? rp->link->files : NULL; f; f = next) {
		next = f->next;
		if (!f->durable_untold)
			continue;
		f->durable_untold = false;
		if (f->state == IN_IDENTIFYING)
			continue; /* stored and acknowledged below */
		if (ret < 0)
			infile_fail(f, WIRE_ACK_IO_ERROR, "could not record system identifier");
		else
			infile_check_identity(f);
		if (f->fail_status == WIRE_ACK_STORED)
			infile_tell_durable(f);
		/* (failed here too, its name found stored: infile_ackable()) */
		if (f->fail_status != WIRE_ACK_STORED)
			infile_maybe_finish(f); /* refused once idle */
	}
}

static void identity_job_done(struct worker_job *job)
{
	struct identity_job *ij = (struct identity_job *)job;
	struct replica *rp = ij->rp;
	struct infile *f = rp->identity_waiting, *next;

	rp->identity_job = NULL;
	rp->identity_waiting = NULL;
	if (ij->ret == 0)
		store_adopt_identity(&rp->store, &ij->id);
	identity_tell_untold(rp, ij->ret);
	for (; f; f = next) {
		struct link *lk = f->link; /* each waiting file holds one of its link's ops */

		next = f->identity_next;
		f->identity_next = NULL;
		if (ij->ret < 0)
			infile_fail(f, WIRE_ACK_IO_ERROR, "could not record system identifier");
		else
			infile_check_identity(f); /* a file begun while the store had none */
		if (f->fail_status != WIRE_ACK_STORED)
			infile_refuse(f);
		else
			infile_rename(f);
		conn_op_end(&lk->conn); /* may free the link */
	}
	free(ij);
}

/* Record @id as the store's identity on rp->worker, unless a job is in flight already
 * (identity_job_done() checks against what that one records).  Returns 0 or -ENOMEM. */
static int identity_job_start(struct replica *rp, const struct wal_identity *id)
{
	struct identity_job *ij;

	if (rp->identity_job)
		return 0;
	ij = calloc(1, sizeof(*ij));
	if (!ij)
		return -ENOMEM;
	ij->rp = rp;
	ij->id = *id;
	ij->job.run = identity_job_run;
	ij->job.done = identity_job_done;
	rp->identity_job = ij;
	worker_submit(&rp->worker, &ij->job);
	return 0;
}

/* IN_IDENTIFYING: @f, the store's first segment or one completed with it, waits for the
 * store's identity to be durable (identity_job_done() renames it). */
static void infile_await_identity(struct infile *f)
{
	struct replica *rp = f->link->rp;

	if (identity_job_start(rp, &f->wv.id) < 0) {
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not record system identifier: %s",
			    strerror(ENOMEM));
		infile_refuse(f);
		return;
	}
	f->state = IN_IDENTIFYING;
	f->identity_next = rp->identity_waiting;
	rp->identity_waiting = f;
	conn_op_begin(&f->link->conn);
}

/* IN_SYNCING: the fdatasync completed.  Fix the store's identity if this is its first
 * segment, then rename the file into place. */
static void infile_synced(struct infile *f, int res)
{
	struct replica *rp = f->link->rp;
	struct link *lk = f->link;

	if (res < 0) {
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not fsync file \"%s\": %s", f->tmp_name,
			    strerror(-res));
		infile_refuse(f);
		return;
	}
	f->t_synced = clock_now_ms();
	close(f->fd);
	f->fd = -1;
	/* Its first page was checked against the store's identity as it was then: none yet,
	 * perhaps, and another file's (of another system) fixed it since.  Checked again
	 * against what the store holds now, the last step before the rename. */
	infile_check_identity(f);
	if (f->fail_status != WIRE_ACK_STORED) {
		infile_refuse(f); /* may free f */
		link_write_waiting(lk);
		return;
	}
	/* The first segment fixes the store's identity (a store that recorded the system
	 * identifier alone, the rest), durably, before anything of it is acknowledged.  Both
	 * may free f (a job that could not be made refuses it at once). */
	if (f->wv.have_id && wal_identity_completes(&rp->store.id, &f->wv.id))
		infile_await_identity(f);
	else
		infile_rename(f);
	link_write_waiting(lk); /* f no longer holds the disk */
}

static bool infile_name_freed(struct infile *f);

/*
 * @f ended as a DUPLICATE of the file stored under its name (durable now): what followed
 * @f downstream (or a copy whose rename was not made durable, left followed by
 * infile_dir_synced()) follows the stored file; a file stored whole whose directory fsync
 * failed, never relayed then, is relayed now.
 */
static void infile_duplicate_relayed(struct infile *f)
{
	struct replica *rp = f->link->rp;
	bool unannounced = false;

	for (unsigned int i = 0; i < REPLICA_UNANNOUNCED; i++) {
		if (strcmp(rp->unannounced[i], f->name))
			continue;
		rp->unannounced[i][0] = '\0';
		unannounced = true;
	}
	if (unannounced)
		relay_wal_stored(rp->relay, f->name, f->size);
	else
		relay_wal_duplicate(rp->relay, f->name, f->size);
}

/* The name is already stored: the duplicate rule (same content acknowledged as a
 * duplicate, different content refused, the stored file kept), but for a stored file
 * that contradicts bytes of @f acknowledged durable, set aside for @f to take the name
 * (infile_name_freed()). */
static void infile_exists(struct infile *f)
{
	struct replica *rp = f->link->rp;
	int same;

	if (f->acked && infile_name_freed(f)) {
		infile_rename(f); /* acknowledged bytes: the name is this copy's */
		return;
	}
	if (f->fail_status != WIRE_ACK_STORED) {
		infile_refuse(f); /* IO_ERROR: its acknowledged bytes kept, resumed later */
		return;
	}
	same = store_same_content(&rp->store, f->tmp_name, f->name);

	/* The stored name may be one whose directory fsync failed (infile_dir_synced(): not
	 * acknowledged then): made durable before it is acknowledged now. */
	if (same == 1 && fsync(rp->store.dir_fd) < 0) {
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not fsync directory \"%s\": %s",
			    rp->store.path, strerror(errno));
		infile_refuse(f);
		return;
	}
	switch (replica_exists_verdict(same)) {
	case WIRE_ACK_DUPLICATE:
		rp->st.duplicates++;
		log_log("\"%s\" is already stored with identical content", f->name);
		store_recent_add(&rp->store, f->name, f->size, f->crc);
		infile_duplicate_relayed(f);
		infile_discard(f);
		infile_name_stored(f);
		serve_wal_stored(rp->serve, f->name);
		infile_ack(f, WIRE_ACK_DUPLICATE, NULL);
		infile_free(f);
		return;
	case WIRE_ACK_CONFLICT:
		infile_fail(f, WIRE_ACK_CONFLICT,
			    "\"%s\" is already stored with different content; the stored file is "
			    "kept",
			    f->name);
		break;
	default:
		infile_fail(f, WIRE_ACK_IO_ERROR,
			    "could not compare \"%s\" with the stored file: %s", f->name,
			    strerror(-same));
		break;
	}
	infile_refuse(f);
}

/* IN_RENAMING: the rename completed; make the new name durable with the directory. */
static void infile_renamed(struct infile *f, int res)
{
	struct replica *rp = f->link->rp;
	struct io_uring_sqe *sqe;

	if (res == -EEXIST) {
		infile_exists(f);
		return;
	}
	if (res < 0) {
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not rename \"%s\" to \"%s\": %s",
			    f->tmp_name, f->name, strerror(-res));
		infile_refuse(f);
		return;
	}
	f->tmp_name[0] = '\0';
	f->state = IN_DIR_SYNCING;
	sqe = ring_sqe(rp->ring, &f->op);
	io_uring_prep_fsync(sqe, rp->store.dir_fd, 0);
	infile_submit(f, sqe);
}

/* IN_DIR_SYNCING: the directory fsync completed: the file is stored. */
static void infile_dir_synced(struct infile *f, int res)
{
	struct replica *rp = f->link->rp;

	if (res < 0) {
		/* The file is complete and fsynced but its name may not survive a crash: do
		 * not acknowledge; the primary sends it again and the duplicate rule applies. */
		log_error("could not fsync directory \"%s\": %s", rp->store.path, strerror(-res));
		rp->st.io_errors++;
		snprintf(rp->unannounced[rp->unannounced_next++ % REPLICA_UNANNOUNCED],
			 sizeof(rp->unannounced[0]), "%s", f->name);
		infile_ack(f, WIRE_ACK_IO_ERROR, "could not fsync the archive directory");
		infile_free(f);
		return;
	}
	infile_stored(f);
}

/* Completion of the file's request of its state (ring_op callback of f->op). */
static void infile_step(struct ring_op *op, int res, uint32_t flags)
{
	struct infile *f = container_of(op, struct infile, op);
	struct link *lk = f->link;

	(void)flags;
	switch (f->state) {
	case IN_RECEIVING:
		infile_opened(f, res);
		break;
	case IN_SYNCING:
		infile_synced(f, res);
		break;
	case IN_IDENTIFYING: /* no ring request: identity_job_done() goes on */
		break;
	case IN_RENAMING:
		infile_renamed(f, res);
		break;
	case IN_DIR_SYNCING:
		infile_dir_synced(f, res);
		break;
	}
	conn_op_end(&lk->conn); /* may free the link */
}

static void chunk_written(struct ring_op *op, int res, uint32_t flags)
{
	struct chunk_write *cw = (struct chunk_write *)op;
	struct infile *f = cw->f;
	struct link *lk = f->link;

	(void)flags;
	if (res < 0 || (uint32_t)res != cw->len) {
		/* errno = 0 semantics: a short write without an error is ENOSPC. */
		int err = res < 0 ? -res : ENOSPC;

		infile_fail(f, WIRE_ACK_IO_ERROR,
			    "could not write file \"%s\" at offset %" PRIu64 ": %s", f->name,
			    cw->offset, strerror(err));
	}
	ring_slot_put(lk->rp->ring, cw->slot);
	free(cw);
	f->writes_pending--;
	f->writes_inflight--;
	infile_write_waiting(f);
	infile_stream_sync(f);
	infile_maybe_finish(f);
	conn_op_end(&lk->conn); /* may free the link */
}

static void infile_checkpoint(struct infile *f, int64_t now_ms);

/*
 * Open the file stored under @f's name to read it: its descriptor, -ENOENT when there is
 * none, -ELOOP when it is not a regular file (a symbolic link, a directory, a FIFO: never
 * followed, nor read), or another -errno, when @f failed (IO_ERROR: it could not be
 * looked at; its acknowledged bytes are kept, and looked at again when it is resumed).
 */
static int infile_open_stored(struct infile *f)
{
	const struct store *st = &f->link->rp->store;
	int fd = openat(st->dir_fd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat sb;
	int err;

	if (fd >= 0 && fstat(fd, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		close(fd);
		return -ELOOP;
	}
	if (fd >= 0 || errno == ENOENT || errno == ELOOP)
		return fd >= 0 ? fd : -errno;
	err = errno;
	/* A socket (ENXIO), a device or FIFO it may not open: not a regular file either. */
	if (fstatat(st->dir_fd, f->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(sb.st_mode))
		return -ELOOP;
	infile_fail(f, WIRE_ACK_IO_ERROR, "could not open \"%s/%s\" to compare it: %s", st->path,
		    f->name, strerror(err));
	return -err;
}

/*
 * Compare @f's bytes [@from, @to) with those of @stored_fd, the file stored under its
 * name: the offset of the first that differs, @to when all agree (a stored file that ends
 * before @to differs where it ends), or -1 when @f's own copy cannot be read (@f failed,
 * IO_ERROR).  @f's bytes are read from its image, else from its file in .incoming (the
 * descriptor its writes use is write-only).  Blocking reads, up to a segment of each: for
 * a name found stored, which is rare.
 */
static int64_t infile_compare_stored(struct infile *f, int stored_fd, uint64_t from, uint64_t to)
{
	const struct store *st = &f->link->rp->store;
	uint8_t mine[65536], theirs[sizeof(mine)];
	uint64_t off = from;
	int own = -1;

	if (!f->image && from < to &&
	    (own = openat(st->incoming_fd, f->tmp_name, O_RDONLY | O_CLOEXEC)) < 0) {
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not open \"%s\" to compare it: %s",
			    f->tmp_name, strerror(errno));
		return -1;
	}
	while (off < to) {
		size_t n = to - off < sizeof(mine) ? (size_t)(to - off) : sizeof(mine), same = 0;
		const uint8_t *src = f->image ? f->image + off : mine;
		ssize_t got;

		errno = 0; /* a short read sets none */
		if (own >= 0 && pread(own, mine, n, (off_t)off) != (ssize_t)n) {
			infile_fail(f, WIRE_ACK_IO_ERROR, "could not read \"%s\" to compare it: %s",
				    f->tmp_name, errno ? strerror(errno) : "short read");
			close(own);
			return -1;
		}
		got = pread(stored_fd, theirs, n, (off_t)off);
		if (got <= 0)
			break; /* the stored file ends here (or cannot be read): differs */
		while (same < (size_t)got && src[same] == theirs[same])
			same++;
		off += same;
		if (same < n)
			break;
	}
	if (own >= 0)
		close(own);
	return (int64_t)off;
}

/*
 * The file stored under @f's name differs at byte @at from @f's bytes acknowledged
 * durable (f->acked): it was put there after they were (by hand), and what walship fetch
 * serves, and standbys recover from, must be what the primary was told is here, for
 * commits may have returned on it.  So it is set aside into .refused for the operator,
 * and this copy takes the name.  Returns 0, or -1 when it cannot be moved: @f failed
 * (IO_ERROR: its bytes kept, the primary resumes it and the move is tried again).
 */
static int infile_set_stored_aside(struct infile *f, uint64_t at)
{
	struct replica *rp = f->link->rp;
	char as[sizeof(f->name) + 16];

	if (store_set_aside_stored(&rp->store, f->name, as, sizeof(as)) < 0) {
		/* Not stored over it, nor refused for it (its name would go to the stray
		 * file): kept, the link closed, and the set-aside tried again when the primary
		 * resumes the segment (infile_refuse()). */
		f->stored_dev = f->stored_ino = 0;
		infile_fail(f, WIRE_ACK_IO_ERROR,
			    "\"%s/%s\" differs from byte %" PRIu64 " of the %" PRIu64
			    " bytes of it acknowledged durable, and could not be set aside",
			    rp->store.path, f->name, at, f->acked);
		return -1;
	}
	f->stored_dev = f->stored_ino = 0;
	snprintf(rp->st.last_error, sizeof(rp->st.last_error),
		 "a file stored as \"%s\" contradicted bytes acknowledged durable", f->name);
	log_error("set \"%s\" aside as \"%s/%s/%s\": it differs from byte %" PRIu64
		  " of the %" PRIu64 " bytes of it this replica acknowledged durable before it "
		  "was stored there",
		  f->name, rp->store.path, STORE_REFUSED_DIR, as, at, f->acked);
	log_detail("The acknowledged copy goes on to be stored under the name; look into the "
		   "file set aside, then remove it.");
	return 0;
}

/*
 * How much of streamed file @f may be acknowledged durable (PROGRESS): f->durable, unless
 * a file is stored under its name already (put into archive_dir by hand, before or during
 * the stream, which the primary sent against a HAVE without it): what walship fetch
 * serves, and standbys recover from, is the stored file, not this copy.
 * - Where the stored file agrees with every byte acknowledged so far, only the prefix of
 *   the copy equal to it counts, and at the first byte that differs @f is refused
 *   (CONFLICT, at once: infile_maybe_finish()), the stored file kept: nothing
 *   acknowledged is lost, the stored file holds it.
 * - Where it contradicts a byte acknowledged already (it came after them: one not seen
 *   before is compared from byte 0), it is set aside instead (infile_set_stored_aside()).
 * - What is not a regular file differs from byte 0; one that cannot be opened, or set
 *   aside, fails @f (IO_ERROR: kept, resumed by the primary, looked at again then).
 * The check is one failed openat() per group commit while the name is free; the compare
 * reads only the bytes durable since the last PROGRESS, once each, but for a file new
 * under the name.
 */
static uint64_t infile_ackable(struct infile *f)
{
	uint64_t from = f->acked;
	struct stat sb;
	int64_t off;
	int fd;

	if (f->fail_status != WIRE_ACK_STORED)
		return f->acked; /* refused: nothing more counts */
	fd = infile_open_stored(f);
	if (fd == -ENOENT) {
		f->stored_dev = f->stored_ino = 0;
		return f->durable; /* the usual case: the name is free */
	}
	if (fd < 0 && fd != -ELOOP)
		return f->acked; /* cannot look (IO_ERROR): counts no further */
	if (fd >= 0 && fstat(fd, &sb) == 0 &&
	    ((uint64_t)sb.st_dev != f->stored_dev || (uint64_t)sb.st_ino != f->stored_ino)) {
		from = 0; /* not the file compared before: all of it */
		f->stored_dev = (uint64_t)sb.st_dev;
		f->stored_ino = (uint64_t)sb.st_ino;
	}
	/* Not a regular file (a symbolic link: -ELOOP): not what was acknowledged, nor
	 * anything fetch serves; it differs from byte 0. */
	off = fd >= 0 ? infile_compare_stored(f, fd, from, f->durable) : 0;
	if (fd >= 0)
		close(fd);
	if (off < 0)
		return f->acked; /* this copy unreadable (IO_ERROR): counts no further */
	if ((uint64_t)off < f->acked)
		return infile_set_stored_aside(f, (uint64_t)off) == 0 ? f->durable : f->acked;
	if ((uint64_t)off == f->durable)
		return f->durable; /* the same bytes so far: a DUPLICATE at the end */
	infile_fail(f, WIRE_ACK_CONFLICT,
		    "\"%s\" is already stored with different content (from byte %" PRId64
		    "); the stored file is kept",
		    f->name, off);
	return (uint64_t)off;
}

/*
 * The rename of @f, of which f->acked bytes were acknowledged durable, found its name
 * taken: true when the file there contradicts them and was set aside (the name free for
 * @f now, infile_set_stored_aside()), or went meanwhile.  False when it agrees with them
 * (the duplicate rule decides), or when @f failed (IO_ERROR: the file could not be
 * looked at, @f's own copy read, or the contradicting file moved).
 */
static bool infile_name_freed(struct infile *f)
{
	int fd = infile_open_stored(f);
	int64_t off;

	if (fd == -ENOENT)
		return true;
	if (fd < 0 && fd != -ELOOP)
		return false;
	off = fd >= 0 ? infile_compare_stored(f, fd, 0, f->acked) : 0;
	if (fd >= 0)
		close(fd);
	return off >= 0 && (uint64_t)off < f->acked &&
	       infile_set_stored_aside(f, (uint64_t)off) == 0;
}

/* Tell the primary how much of streamed file @f is durable (PROGRESS). */
static void infile_progress(struct infile *f)
{
	struct link *lk = f->link;
	struct msg_progress pg = { .file_id = f->file_id,
				   .received = f->received,
				   .durable = infile_ackable(f) };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	int len;

	len = msg_progress_encode(frame, sizeof(frame), &pg);
	f->acked = pg.durable; /* from here on, whether the frame leaves or not */

	if (len < 0) {
		log_error("could not encode PROGRESS for \"%s\"", f->name);
		return;
	}
	conn_send_frame(&lk->conn, frame, (uint32_t)len);
	lk->rp->st.stream_syncs++;
}

/* @f's durable length grew: tell the primary (PROGRESS, for a streamed file), the
 * standbys on pg_listen and the relay's downstream replicas. */
static void infile_tell_durable(struct infile *f)
{
	struct replica *rp = f->link->rp;
	uint64_t told = f->durable;

	if (f->stream && !f->cancelled) /* nobody waits for a cancelled one */
		infile_progress(f);
	/* Standbys and downstream replicas get no more of a streamed file than the primary
	 * was told durable: past that, a file refused (CONFLICT: only the prefix equal to
	 * the stored file counts) or cancelled (a timeline's end) holds bytes that are not
	 * the WAL this replica stores and serves.  A refused pushed file: nothing. */
	if (f->stream)
		told = f->acked < told ? f->acked : told;
	else if (f->fail_status != WIRE_ACK_STORED)
		return;
	serve_wal_durable(rp->serve, f->name, f->tmp_name, told, f->image);
	if (f->stream)
		relay_wal_durable(rp->relay, f->name, f->tmp_name, f->size, told, f->image);
}

/*
 * Group commit of a streamed segment: when no sync of @f is in flight and bytes arrived
 * since the last one, one sync covers them all (with the durable length recorded on the
 * file, as a checkpoint does), and PROGRESS follows its completion.
 */
static void infile_stream_sync(struct infile *f)
{
	if (f->stream && !f->link->conn.closing && replica_checkpoint_due(f, clock_now_ms(), 0))
		infile_checkpoint(f, clock_now_ms());
}

/*
 * Give up @f's image: the bytes only it holds are written now, buffered (and the
 * descriptor loses O_DIRECT), so that the fdatasyncs that follow cover them.
 */
static void infile_image_drop(struct infile *f)
{
	if (f->image_direct)
		infile_clear_direct(f);
	f->image_direct = false;
	if (f->received > f->durable && f->fd >= 0)
		infile_write_now(f, f->image + f->durable, (uint32_t)(f->received - f->durable),
				 f->durable);
	infile_image_put(f);
}

/* @f is open and in place: its group commits go from its image from now on, or, where
 * the archive takes no O_DIRECT, it gives the image up. */
static void infile_image_start(struct infile *f)
{
	struct replica *rp = f->link->rp;
	int flags;

	if (!f->image)
		return;
	flags = fcntl(f->fd, F_GETFL);
	if (flags >= 0 && fcntl(f->fd, F_SETFL, flags | O_DIRECT) == 0) {
		f->image_direct = true;
		return;
	}
	log_log("direct I/O is not available in \"%s\" (%s); using buffered writes", rp->store.path,
		strerror(errno));
	rp->no_direct_io = true;
	infile_image_drop(f);
}

/* A group commit of @f from its image: one direct write with RWF_DSYNC of the blocks from
 * the durable end's to the received end's (the image's comment, above). */
static void infile_direct_sync(struct infile *f)
{
	struct replica *rp = f->link->rp;
	uint8_t *bounce = f->image + f->size;
	struct io_uring_sqe *sqe;
	uint64_t start, full_end;
	unsigned int n = 0;
	uint32_t tail;

	replica_direct_span(f->durable, f->received, &start, &full_end, &tail);
	f->ck_len = 0;
	if (full_end > start) {
		f->ck_iov[n].iov_base = f->image + start;
		f->ck_iov[n].iov_len = full_end - start;
		f->ck_len += full_end - start;
		n++;
	}
	if (tail) {
		memcpy(bounce, f->image + full_end, tail);
		memset(bounce + tail, 0, ROLE_DIO_ALIGN - tail);
		f->ck_iov[n].iov_base = bounce;
		f->ck_iov[n].iov_len = ROLE_DIO_ALIGN;
		f->ck_len += ROLE_DIO_ALIGN;
		n++;
	}
	f->ck_pending = f->received;
	f->checkpointing = true;
	f->ck_op.cb = infile_checkpointed;
	sqe = ring_sqe(rp->ring, &f->ck_op);
	io_uring_prep_writev(sqe, f->fd, f->ck_iov, n, start);
	sqe->rw_flags = RWF_DSYNC;
	infile_submit(f, sqe);
	rp->st.stream_direct_syncs++;
}

static void infile_checkpointed(struct ring_op *op, int res, uint32_t flags)
{
	struct infile *f = container_of(op, struct infile, ck_op);
	struct link *lk = f->link;
	struct replica *rp = lk->rp;

	(void)flags;
	f->checkpointing = false;
	if (f->image_direct && res == -EINVAL) {
		/* The file system wants another alignment: refused before any I/O.  Buffered
		 * from now on, as when it refuses O_DIRECT at the open (infile_opened()). */
		log_log("direct writes aligned to %d bytes are refused in \"%s\"; using "
			"buffered writes",
			ROLE_DIO_ALIGN, rp->store.path);
		rp->no_direct_io = true;
		infile_image_drop(f);
		infile_stream_sync(f);
		infile_maybe_finish(f);
		conn_op_end(&lk->conn); /* may free the link */
		return;
	}
	if (f->image_direct && res >= 0 && (uint64_t)res != f->ck_len) {
		/* errno = 0 semantics: a short write without an error is ENOSPC. */
		infile_fail(f, WIRE_ACK_IO_ERROR,
			    "could not write file \"%s\": %d of %" PRIu64 " bytes written",
			    f->tmp_name, res, f->ck_len);
	} else if (res < 0) {
		/* An fsync error is not retried (the kernel may have dropped the pages), nor
		 * is a failed direct write with RWF_DSYNC (it may have been half done). */
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not %s file \"%s\": %s",
			    f->image_direct ? "durably write" : "fsync", f->tmp_name,
			    strerror(-res));
	} else {
		f->durable = f->ck_pending;
		rp->st.checkpoints++;
		log_debug("\"%s\": %" PRIu64 " of %" PRIu64 " bytes durable", f->name, f->durable,
			  f->size);
		if (f->wv.have_id && wal_identity_completes(&rp->store.id, &f->wv.id)) {
			/* Nothing of a cluster is acknowledged (PROGRESS) or served before the
			 * store's identity is durable: a restart would forget whose WAL it
			 * holds.  Told once it is (identity_job_done()). */
			f->durable_untold = true;
			if (identity_job_start(rp, &f->wv.id) < 0)
				infile_fail(f, WIRE_ACK_IO_ERROR,
					    "could not record system identifier: %s",
					    strerror(ENOMEM));
		} else {
			infile_tell_durable(f);
		}
	}
	infile_stream_sync(f);
	infile_maybe_finish(f);
	conn_op_end(&lk->conn); /* may free the link */
}

/*
 * Make what has been written of @f durable and record it (checkpoint_interval), so that
 * a crash of this host or daemon does not cost the whole file: the record goes on the
 * file first, then one fsync makes bytes and record durable together.  Only when no
 * write is in flight, so that every byte counted has been written.
 */
static void infile_checkpoint(struct infile *f, int64_t now_ms)
{
	struct replica *rp = f->link->rp;
	struct io_uring_sqe *sqe;

	f->ck_ms = now_ms;
	if (f->image_direct) {
		infile_direct_sync(f);
		return;
	}
	if (f->image)
		infile_image_drop(f); /* never: an image is direct once its file is ready */
	/* Written in place: the bytes alone (their records say how far they go). */
	if (!f->in_place) {
		uint32_t crc;
		uint64_t len = replica_record_len(f->size, f->received, f->crc, f->crc_head, &crc);

		if (store_mark_durable(&rp->store, f->fd, f->size, len, crc) < 0)
			return;
	}
	f->ck_pending = f->received;
	f->checkpointing = true;
	f->ck_op.cb = infile_checkpointed;
	sqe = ring_sqe(rp->ring, &f->ck_op);
	io_uring_prep_fsync(sqe, f->fd, f->in_place ? IORING_FSYNC_DATASYNC : 0);
	infile_submit(f, sqe);
}

void link_checkpoint_due(struct link *lk, int64_t now_ms)
{
	int interval = lk->rp->cfg.checkpoint_interval_ms;

	if (lk->conn.closing)
		return;
	for (struct infile *f = lk->files; f; f = f->next)
		if (replica_checkpoint_due(f, now_ms, interval))
			infile_checkpoint(f, now_ms);
}

static void infile_write_now(struct infile *f, const uint8_t *data, uint32_t len, uint64_t offset);

/*
 * @f failed or could not be synced further after its first f->acked bytes were
 * acknowledged (PROGRESS; or may have been: resumed), and f->durable are synced: commits
 * may be there and on the primary alone.
 * Those bytes are never removed: kept as a partial to resume from (read back for their
 * CRC and validator: store_partial_check()), or, where they cannot even be read now, left
 * in .incoming for the next start to look at again.
 */
static void infile_keep_synced(struct infile *f, const char *why)
{
	struct replica *rp = f->link->rp;
	struct store_partial p = { 0 };

	if (f->fd >= 0) {
		/* Pages past what was synced may be cached but not on disk (a failed fsync
		 * leaves them clean and readable, and reports its error once): dropped, so
		 * that a later start's look at the records, or walship fetch, reads the
		 * disk, not them.  From the page holding the durable end: the kernel drops
		 * whole pages only, and that page's bytes past the end are among those
		 * (its bytes before it are on disk and read back as they are). */
		uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

		(void)posix_fadvise(f->fd, (off_t)(f->durable - f->durable % page), 0,
				    POSIX_FADV_DONTNEED);
		close(f->fd);
		f->fd = -1;
	}
	/* A file all durable but not ended stays a partial: its end comes with FILE_END. */
	if (store_partial_check(&rp->store, f->tmp_name,
				f->durable < f->size ? f->durable : f->size - 1, &p)) {
		store_partial_keep(&rp->store, &p);
		log_log("kept \"%s\" for resuming: %" PRIu64 " of %" PRIu64
			" bytes are durable, %s",
			f->name, p.durable, p.size, why);
	} else {
		log_warning("left \"%s/%s/%s\" as it is: its first %" PRIu64
			    " bytes were acknowledged durable, but cannot be read back now",
			    rp->store.path, STORE_INCOMING_DIR, f->tmp_name, f->durable);
		log_detail("The next start of walshipd looks at it again.");
	}
	f->tmp_name[0] = '\0'; /* kept, or left */
}

/*
 * The connection is gone with @f half received: if its bytes so far can be made durable
 * and recorded, keep it as a partial the primary can resume; otherwise discard it.  Runs
 * when nothing is in flight any more (every write has completed), on the rare path of a
 * lost connection, so the fsync is synchronous.
 */
static void infile_keep_or_discard(struct infile *f)
{
	struct replica *rp = f->link->rp;
	struct store_partial p = { 0 };

	if (!replica_keep_partial(f))
		goto out_discard;
	if (f->image)
		infile_image_drop(f); /* the bytes only the image holds, written buffered */
	/* received counts the chunks waiting for their write (replica_write_waits()).
	 * Each completed write, fdatasync or file freed submits the next and the link is
	 * released only after its last operation, so none should be left; one that is, is
	 * written now, or nothing is kept: never a durable length over bytes not written. */
	for (struct chunk_write *cw = f->waiting; cw; cw = cw->next)
		infile_write_now(f, cw->data, cw->len, cw->offset);
	if (f->fail_status != WIRE_ACK_STORED)
		goto out_discard;
	if (f->received > f->durable) {
		/* Written in place, a segment needs no record: its records tell how far it is
		 * durable (store_partial_check()), as in an archive without xattrs. */
		if (store_mark_durable(&rp->store, f->fd, f->size, f->received, f->crc) < 0 &&
		    !f->in_place)
			goto out_discard;
		if (fsync(f->fd) < 0) {
			log_warning("could not fsync file \"%s\": %s", f->tmp_name,
				    strerror(errno));
			goto out_discard;
		}
		rp->st.checkpoints++;
	}
	/* Its name too: a pushed file's in .incoming was never synced (a streamed
	 * segment's was, before its first byte), and a partial resumed as a stream has its
	 * bytes acknowledged (PROGRESS) without another look at it. */
	if (!f->in_place && fsync(rp->store.incoming_fd) < 0) {
		log_warning("could not fsync directory \"%s\": %s", rp->store.incoming_path,
			    strerror(errno));
		goto out_discard;
	}
	snprintf(p.name, sizeof(p.name), "%s", f->name);
	snprintf(p.tmp_name, sizeof(p.tmp_name), "%s", f->tmp_name);
	p.seq = f->seq;
	p.size = f->size;
	p.durable = f->received; /* (a whole file is not kept here: replica_keep_partial()) */
	p.crc = f->crc;
	p.wv = f->wv;
	store_partial_keep(&rp->store, &p);
	log_log("kept \"%s\" for resuming: %" PRIu64 " of %" PRIu64 " bytes are durable", f->name,
		p.durable, p.size);
	f->tmp_name[0] = '\0'; /* the store has it now */
out_discard:
	/* Acknowledged bytes are never removed; a cancelled file's are kept until
	 * NAME.partial is stored (infile_refuse()), and no longer followed downstream.  One
	 * refused for its content (a stored file of its name that differs, WAL that does not
	 * validate) while the link was closing, before infile_refuse() could, is set aside
	 * as it would have been: kept to be resumed, its bytes past the difference would be
	 * taken as acknowledged, and the stored file set aside in its place. */
	if (f->acked && f->tmp_name[0] && !f->cancelled && f->fail_status != WIRE_ACK_STORED &&
	    f->fail_status != WIRE_ACK_IO_ERROR) {
		infile_set_aside(f);
	} else if (f->acked && f->tmp_name[0]) {
		if (f->cancelled)
			relay_wal_dropped(rp->relay, f->name, f->tmp_name);
		infile_keep_synced(f, f->cancelled ? "the primary cancelled the rest" :
						     "the rest could not be stored");
	}
	infile_discard(f);
}

static struct infile *link_find_file(struct link *lk, uint32_t file_id)
{
	for (struct infile *f = lk->files; f; f = f->next)
		if (f->file_id == file_id && f->state == IN_RECEIVING)
			return f;
	return NULL;
}

/* A new file of @lk, in flight from now on, named and sized by @fb. */
static struct infile *infile_new(struct link *lk, const struct msg_file_begin *fb)
{
	struct infile *f = calloc(1, sizeof(*f));

	if (!f) {
		log_error("out of memory");
		return NULL;
	}
	f->link = lk;
	f->fd = -1;
	f->file_id = fb->file_id;
	f->size = fb->size;
	f->waiting_tail = &f->waiting;
	f->t_begin = f->ck_ms = clock_now_ms();
	snprintf(f->name, sizeof(f->name), "%s", fb->name);
	f->next = lk->files;
	lk->files = f;
	lk->nfiles++;
	lk->files_received++;
	snprintf(lk->last_received, sizeof(lk->last_received), "%s", fb->name);
	return f;
}

/* Resume: the validator, CRC and name of the partial file @sp go on in @f. */
static void infile_resume(struct infile *f, struct store_partial *sp)
{
	struct replica *rp = f->link->rp;

	f->resumed = true;
	f->wv = sp->wv;
	f->seq = sp->seq;
	f->received = f->durable = f->acked = sp->durable;
	f->crc = sp->crc;
	snprintf(f->tmp_name, sizeof(f->tmp_name), "%s", sp->tmp_name);
	store_partial_take(&rp->store, sp);
	rp->st.resumed_files++;
	rp->st.resumed_bytes += f->received;
	log_log("resuming \"%s\" at offset %" PRIu64 " of %" PRIu64, f->name, f->received, f->size);
}

int link_on_file_begin(struct link *lk, const uint8_t *payload, uint32_t len)
{
	struct replica *rp = lk->rp;
	struct msg_file_begin fb;
	struct store_partial *sp, *prior = NULL;
	struct infile *f;

	unsigned int window = 0;

	if (msg_file_begin_decode(payload, len, &fb) < 0)
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed FILE_BEGIN");
	sp = store_partial_find(&rp->store, fb.name);
	/* A file the primary cancelled left its window when it sent FILE_CANCEL, though it
	 * stays here until its write or sync in flight ends: not counted. */
	for (f = lk->files; f; f = f->next)
		window += !f->cancelled;
	switch (replica_begin_decide(&fb, link_find_file(lk, fb.file_id) != NULL, window, sp)) {
	case REPLICA_BEGIN_ID_IN_USE:
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "FILE_BEGIN reuses file id %u of a file in flight", fb.file_id);
	case REPLICA_BEGIN_OVER_WINDOW:
		rp->st.queue_overflows++;
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "FILE_BEGIN for \"%s\" while %u files are in flight: more than "
				   "the protocol's window of %d",
				   fb.name, window, WIRE_MAX_INFLIGHT_FILES);
	case REPLICA_BEGIN_NOT_OFFERED:
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "asked to resume \"%s\" at %" PRIu64 ", which this replica did "
				   "not offer",
				   fb.name, fb.start_offset);
	case REPLICA_BEGIN_RESTART:
		prior = sp;
		sp = NULL;
		break;
	case REPLICA_BEGIN_FRESH:
	case REPLICA_BEGIN_RESUME:
		break;
	}
	f = infile_new(lk, &fb);
	if (!f)
		return -ENOMEM; /* the partial stays, offered again after the reconnect */
	if (prior) {
		log_log("partial file \"%s\" kept until \"%s\", sent again from its start, is "
			"stored",
			prior->tmp_name, fb.name);
		f->prior = *prior;
		f->has_prior = true;
		store_partial_take(&rp->store, prior);
	}
	if (wal_name_parse(fb.name, &f->wn) < 0 || (uint8_t)f->wn.kind != fb.kind) {
		infile_fail(f, WIRE_ACK_INVALID, "\"%s\" is not a WAL file name of kind %u",
			    fb.name, fb.kind);
		return 0;
	}
	/* A streamed segment arrives in pieces of any length: buffered writes. */
	f->stream = fb.flags & WIRE_BEGIN_STREAM;
	f->direct = !f->stream && replica_direct_io_wanted(f->wn.kind, rp->no_direct_io);
	if (sp) {
		infile_resume(f, sp);
	} else {
		if (wal_validator_begin(&f->wv, &f->wn, fb.size, 0) < 0) {
			infile_fail(f, WIRE_ACK_INVALID, "%s", f->wv.message);
			return 0;
		}
		if (f->stream &&
		    replica_stream_direct_wanted(f->wn.kind, false, fb.size, rp->no_direct_io))
			f->image = image_get(rp, fb.size);
		if (f->stream && f->wn.kind == WAL_FILE_SEGMENT && spare_take(f)) {
			spare_prepare(f);
			return 0;
		}
		f->seq = ++rp->seq;
		if (store_tmp_name(f->tmp_name, sizeof(f->tmp_name), fb.name, f->seq) < 0) {
			f->tmp_name[0] = '\0'; /* nothing was created */
			infile_fail(f, WIRE_ACK_IO_ERROR, "file name \"%s\" is too long", fb.name);
			return 0;
		}
	}
	f->opening = true;
	infile_open(f);
	return 0;
}

/* Check the content of a chunk of @f (the pages, and the identity of the store once the
 * first page gives it); a chunk that fails refuses the file (infile_fail). */
static void infile_check_chunk(struct infile *f, const uint8_t *data, uint32_t len)
{
	bool had_id = f->wv.have_id;

	if (wal_validator_feed(&f->wv, data, len) < 0) {
		infile_fail(f, WIRE_ACK_INVALID, "%s", f->wv.message);
		return;
	}
	if (had_id || !f->wv.have_id)
		return;
	infile_check_identity(f);
}

/* Whether @f's WAL (its first page read) is of the store's cluster, as far as the store
 * knows it (every field it knows: wal_identity_mismatch()); a file of another refuses
 * itself (infile_fail). */
static void infile_check_identity(struct infile *f)
{
	char why[256];

	if (f->wv.have_id &&
	    wal_identity_explain(&f->link->rp->store.id, &f->wv.id, f->name, "replica holds", why,
				 sizeof(why)) != WAL_IDENTITY_SAME)
		infile_fail(f, WIRE_ACK_SYSID, "%s", why);
}

/*
 * A streamed segment's piece, written at once with pwrite on this thread: pieces are small
 * and go to the page cache, and a write always complete lets a group commit start as soon
 * as the previous one ends (with writes through the ring, a steady stream always had one
 * in flight, and syncs waited for a pause in it).
 */
static void infile_write_now(struct infile *f, const uint8_t *data, uint32_t len, uint64_t offset)
{
	while (len) {
		ssize_t n = pwrite(f->fd, data, len, (off_t)offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* errno = 0 semantics: a short write without an error is ENOSPC. */
			infile_fail(f, WIRE_ACK_IO_ERROR,
				    "could not write file \"%s\" at offset %" PRIu64 ": %s",
				    f->name, offset, strerror(n < 0 ? errno : ENOSPC));
			return;
		}
		data += n;
		offset += (uint64_t)n;
		len -= (uint32_t)n;
	}
}

int link_on_data(struct link *lk, const uint8_t *payload, uint32_t len, uint32_t payload_crc,
		 struct ring_slot *slot)
{
	struct replica *rp = lk->rp;
	struct msg_data md;
	struct infile *f;
	struct chunk_write *cw;

	if (msg_data_decode(payload, len, &md) < 0) {
		ring_slot_put(rp->ring, slot);
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed DATA");
	}
	f = link_find_file(lk, md.file_id);
	if (!f ||
	    !replica_data_continues(f->end_received, f->size, f->received, md.offset, md.len)) {
		ring_slot_put(rp->ring, slot);
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "DATA for file %u at offset %" PRIu64 " does not continue any "
				   "file",
				   md.file_id, md.offset);
	}
	f->received += md.len;
	/* All of it arrived: the CRC of all but its last byte, which a record of it stops
	 * before (replica_record_len()).  Once per file, over one frame. */
	if (md.len && f->received == f->size)
		f->crc_head = crc32c(f->crc, md.data, md.len - 1);
	/* The content's CRC from the frame's (checked) payload CRC, without reading it
	 * again: payload = 16-byte DATA header || content. */
	f->crc = crc32c_combine(
		f->crc,
		payload_crc ^ crc32c_combine(crc32c(0, payload, WIRE_DATA_HEADER_SIZE), 0, md.len),
		md.len);
	if (f->fail_status == WIRE_ACK_STORED)
		infile_check_chunk(f, md.data, md.len);
	if (f->fail_status != WIRE_ACK_STORED || (!f->opening && f->fd < 0)) {
		ring_slot_put(rp->ring, slot);
		infile_maybe_finish(f); /* a streamed file is refused now */
		return 0;
	}
	if (f->image) {
		/* written from the image by the next group commit (infile_direct_sync()) */
		memcpy(f->image + md.offset, md.data, md.len);
		ring_slot_put(rp->ring, slot);
		infile_stream_sync(f);
		return 0;
	}
	if (f->stream && !f->opening && !f->writes_pending) {
		infile_write_now(f, md.data, md.len, md.offset);
		ring_slot_put(rp->ring, slot);
		infile_stream_sync(f);
		infile_maybe_finish(f); /* refused now if the write failed */
		return 0;
	}
	cw = calloc(1, sizeof(*cw));
	if (!cw) {
		log_error("out of memory");
		ring_slot_put(rp->ring, slot);
		return -ENOMEM;
	}
	if (f->direct && !replica_chunk_direct_ok(md.offset, md.len, md.data)) {
		/* A chunk direct I/O cannot take (another sender's chunking): buffered
		 * writes for the rest of this file. */
		f->direct = false;
		if (f->fd >= 0)
			infile_clear_direct(f);
	}
	cw->op.cb = chunk_written;
	cw->f = f;
	cw->slot = slot;
	cw->data = md.data;
	cw->offset = md.offset;
	cw->len = md.len;
	if (replica_write_waits(f)) {
		*f->waiting_tail = cw;
		f->waiting_tail = &cw->next;
		f->writes_pending++; /* not finished, nor checkpointed, before it is written */
		return 0;
	}
	infile_write_chunk(f, cw);
	return 0;
}

int link_on_file_end(struct link *lk, const uint8_t *payload, uint32_t len)
{
	struct msg_file_end fe;
	struct infile *f;

	if (msg_file_end_decode(payload, len, &fe) < 0)
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed FILE_END");
	f = link_find_file(lk, fe.file_id);
	if (!f || !replica_end_matches(f->end_received, f->size, f->received, fe.size))
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "FILE_END for file %u does not match what was received",
				   fe.file_id);
	f->end_received = true;
	f->t_end = clock_now_ms();
	infile_maybe_finish(f);
	return 0;
}

void link_files_release(struct link *lk)
{
	while (lk->files) {
		infile_keep_or_discard(lk->files);
		infile_release(lk->files);
	}
}

int link_on_file_cancel(struct link *lk, const uint8_t *payload, uint32_t len)
{
	struct msg_file_cancel fc;
	struct infile *f;

	if (msg_file_cancel_decode(payload, len, &fc) < 0)
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed FILE_CANCEL");
	f = link_find_file(lk, fc.file_id);
	if (!f || !f->stream || f->end_received)
		return link_refuse(
			lk, WIRE_ERR_PROTOCOL,
			"FILE_CANCEL for file %u, which is not a streamed file in flight",
			fc.file_id);
	f->cancelled = true;
	f->end_received = true;
	infile_fail(f, WIRE_ACK_INVALID, "cancelled by the primary");
	infile_maybe_finish(f);
	return 0;
}
