// SPDX-License-Identifier: MIT
/*
 * Transfers from the primary to one streaming replica: the files it is sent, in order
 * (new pushes, then its held backlog in WAL order), each as FILE_BEGIN (resumed or
 * skipped after the replica's HAVE), DATA chunks read into slots or sent from the file's
 * mapping, and FILE_END, within PEER_MAX_QUEUED frames and max_inflight_files files;
 * then its ACK, and what a replica that cannot store files (ACK IO_ERROR) is sent after.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/mapguard.h"
#include "role/decide.h"
#include "role/primary_int.h"

/* ---- transfers ---- */

/* What peer_begin_xfer() did. */
enum xfer_begun {
	XFER_BEGUN, /* FILE_BEGIN queued */
	XFER_SKIPPED, /* the replica holds it: acknowledged as it is, the transfer freed */
	XFER_WAIT, /* not now */
	/* a segment still growing of which the replica holds more (HAVE) than has arrived:
	 * begun once more has, the transfers after it going on meanwhile */
	XFER_LATER,
};

void peer_add_xfer(struct peer *peer, struct push *p)
{
	struct xfer *x = calloc(1, sizeof(*x)), **xp;

	if (!x) {
		log_error("out of memory");
		conn_close(&peer->conn, -ENOMEM);
		return;
	}
	x->peer = peer;
	x->push = p;
	x->file_id = ++peer->next_file_id;
	p->refs++;
	for (xp = &peer->xfers; *xp; xp = &(*xp)->next)
		;
	*xp = x;
	if (!peer->fill)
		peer->fill = x;
}

/*
 * Safe files (answered: durable on sync_replicas replicas, held in the spool for the
 * others) that may wait in memory for a replica beyond those begun: a replica slower than
 * the others would otherwise keep every streamed segment (16 MiB of memory each) and every
 * push (counted in max_queued_pushes, refusing the archiver's) for as long as it lags.
 * The rest wait in the spool, as for a replica that is away, and go to it from there
 * (its backlog, listed again once it is idle: peer_fill_backlog()).
 */
#define PEER_MAX_WAITING_SAFE 4

void peer_defer_safe(struct peer *peer, struct push *p)
{
	struct primary *pr = peer->pr;
	unsigned int waiting = 0;
	struct xfer **xp, *x;

	/* (segments only: a history file is small, and goes before its timeline's WAL) */
	if (pr->relay || peer->io != PEER_IO_OK || p->wn.kind != WAL_FILE_SEGMENT)
		return;
	for (xp = &peer->xfers; (x = *xp); xp = &x->next) {
		if (x->push == p)
			break;
		waiting += !x->begin_queued;
	}
	if (!x || x->begin_queued || waiting < PEER_MAX_WAITING_SAFE ||
	    !spool_holds(&pr->spool, peer->name, p->name))
		return;
	*xp = x->next;
	if (peer->fill == x)
		peer->fill = x->next;
	peer_relist_later(peer, p->name, 0);
	log_debug("replica \"%s\" has %u files waiting before \"%s\", which is safe: it is sent "
		  "from the spool once the replica catches up",
		  peer->name, waiting, p->name);
	xfer_free(x);
}

void peer_relist_later(struct peer *peer, const char *name, int retry_ms)
{
	int64_t at = retry_ms ? clock_now_ms() + retry_ms : 0;

	peer->backlog_more = true;
	if (!peer->relist_from[0] || strcmp(name, peer->relist_from) < 0)
		snprintf(peer->relist_from, sizeof(peer->relist_from), "%s", name);
	if (at > peer->relist_retry_ms)
		peer->relist_retry_ms = at;
}

void xfer_free(struct xfer *x)
{
	struct push *p = x->push;

	free(x);
	push_unref(p);
}

/* A chunk's READ completed.  Its transfer may be gone meanwhile (cancelled, refused): the
 * item holds the push (a reference), the file id and the offset, not the transfer. */
static void peer_read_done(struct ring_op *op, int res, uint32_t flags)
{
	struct conn_tx_item *item = container_of(op, struct conn_tx_item, load_op);
	struct peer *peer = container_of(item->conn, struct peer, conn);
	struct push *p = item->owner;
	uint64_t offset = item->owner_arg;
	uint32_t want = item->len;

	(void)flags;
	if (res < 0 || (uint32_t)res != want) {
		char msg[256];

		if (res < 0)
			snprintf(msg, sizeof(msg), "could not read file \"%s\": %s", p->name,
				 strerror(-res));
		else
			snprintf(
				msg, sizeof(msg),
				"could not read file \"%s\": read %d of %u bytes at offset %" PRIu64,
				p->name, res, want, offset);
		push_fail(p, CTL_ERR_FAILED, "%s", msg);
		conn_item_failed(&peer->conn, item, res < 0 ? res : -EIO);
	} else {
		push_check_read(p, offset,
				item->slot->data + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE, want);
		conn_item_ready(
			&peer->conn, item,
			(uint32_t)msg_data_seal(item->slot->data, item->owner_id, offset, want));
	}
	push_unref(p);
	conn_op_end(&peer->conn); /* may free peer */
}

int peer_queue_small(struct peer *peer, int len, const uint8_t *frame)
{
	if (len < 0) {
		log_error("could not encode frame for %s: %s", peer->conn.peer_addr,
			  strerror(-len));
		return len;
	}
	return conn_send_frame(&peer->conn, frame, (uint32_t)len);
}

/* The kernel is done with a chunk sent from @item's mapping.  One whose content could
 * not be read (net/conn.h: the file shrank after its checksum was taken, found by the
 * encryption or the kernel's send) fails its push, as the checksum's fault does; its
 * connection is closed already. */
static void peer_mapped_release(struct conn_tx_item *item)
{
	struct push *p = item->owner;

	if (item->unreadable)
		push_fail(p, CTL_ERR_FAILED, "file \"%s\" shrank while it was being sent", p->name);
	push_unref(p);
}

/*
 * Queue the next chunk of @x from the file's mapping: checksum it where it lies and send
 * headers and content with one SENDMSG(_ZC), so the content is never copied in user
 * space.  Returns false when the connection was closed.
 */
static bool peer_queue_mapped(struct peer *peer, struct xfer *x)
{
	struct push *p = x->push;
	uint64_t offset = x->next_read;
	uint32_t len = (uint32_t)(p->avail - offset < WIRE_CHUNK_SIZE ? p->avail - offset :
									WIRE_CHUNK_SIZE);
	uint8_t hdr[WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE];
	uint32_t crc = msg_data_split_begin(hdr, x->file_id, offset);
	int hdr_len;

	/* The daemon's own memory (memfd) cannot shrink: no guard, whose sigsetjmp costs a
	 * system call per chunk. */
	if (p->memfd)
		crc = crc32c(crc, p->map + offset, len);
	else if (mapguard_crc32c(crc, p->map + offset, len, &crc) < 0) {
		/* The file shrank under us: this transfer cannot complete, and the
		 * protocol has no way to abandon one file, so the connection goes. */
		push_fail(p, CTL_ERR_FAILED, "file \"%s\" shrank while it was being sent", p->name);
		conn_close(&peer->conn, -EIO);
		return false;
	}
	hdr_len = msg_data_split_end(hdr, offset, len, crc);
	p->refs++;
	if (hdr_len < 0 || !conn_queue_mapped(&peer->conn, hdr, (uint32_t)hdr_len, p->map + offset,
					      len, peer_mapped_release, p)) {
		push_unref(p);
		conn_close(&peer->conn, hdr_len < 0 ? hdr_len : -ENOMEM);
		return false;
	}
	x->next_read += len;
	return true;
}

bool peer_has_file(const struct peer *peer, const char *name)
{
	for (const struct xfer *x = peer->xfers; x; x = x->next)
		if (!strcmp(x->push->name, name))
			return true;
	return false;
}

bool peer_cancelled(const struct peer *peer, uint32_t file_id)
{
	for (unsigned int i = 0; file_id && i < PEER_CANCELLED_IDS; i++)
		if (peer->cancelled_ids[i] == file_id)
			return true;
	return false;
}

static bool peer_fill_idle(const struct peer *peer);

/* @peer's files in flight that are not streamed (begun with WIRE_BEGIN_STREAM, or
 * waiting to be begun for more of the segment: XFER_LATER). */
static unsigned int peer_whole_inflight(const struct peer *peer)
{
	unsigned int n = 0;

	for (const struct xfer *x = peer->xfers; x; x = x->next)
		n += !x->stream && !x->later;
	return n;
}

/*
 * A replica catching up: queue its next held files, in WAL order, keeping at most
 * max_inflight_files ahead.  Files it is already being sent (new pushes) are skipped.
 * A file is added only when everything before it is queued, or waits for WAL (a streamed
 * segment: the held files go beside it, or they would wait for its end, which the
 * synchronous commits waiting for them may hold back for good).  After an I/O error
 * (PEER_IO_RETRY) one held file at a time is in flight until one is stored, the
 * streamed segment not counted, for the same reason.
 */
static void peer_fill_backlog(struct peer *peer)
{
	struct primary *pr = peer->pr;

	if (peer->io == PEER_IO_WAIT)
		return;
	/* Safe files deferred to the spool meanwhile (peer_defer_safe()): listed once the
	 * backlog is sent and nothing else waits. */
	if (!pr->relay && peer->io == PEER_IO_OK && peer->backlog_more && !pr->stopping &&
	    peer->backlog_next >= peer->nbacklog && peer_fill_idle(peer))
		peer_relist_backlog(peer);
	while (!pr->stopping && peer_fill_idle(peer) && peer->backlog_next < peer->nbacklog &&
	       clock_now_ms() >= peer->backlog_retry_ms &&
	       (peer->io == PEER_IO_RETRY ?
			peer_whole_inflight(peer) < 1 :
			peer->inflight_files < (unsigned int)pr->cfg.max_inflight_files)) {
		const char *name = peer->backlog[peer->backlog_next++];
		struct push *p;
		int err;

		if (peer_has_file(peer, name))
			continue;
		p = push_from_spool(pr, name, &err);
		if (!p && err == -ENOENT)
			continue; /* released meanwhile */
		if (!p) {
			/* still held for it: this entry is opened again a second later (a
			 * replica retrying after I/O errors stays so: its backlog is not done) */
			log_warning("could not open \"%s\", held for replica \"%s\", to send it: "
				    "%s; trying again in a second",
				    name, peer->name, strerror(-err));
			peer->backlog_next--;
			peer->backlog_retry_ms = clock_now_ms() + 1000;
			break;
		}
		p->refs = 1;
		peer_add_xfer(peer, p);
		push_unref(p);
	}
	/* Retrying, and no held file is left to send again (each was refused for its content,
	 * or left the spool): nothing will be stored to end the retry, so it ends here, as
	 * peer_io_recovered() ends it (its backoff kept): the files held for the replica
	 * meanwhile (not sent to it while it retried) are listed again, and it is sent what
	 * streams; else nothing more while its link stays up.  An I/O error on that starts
	 * the wait again. */
	if (peer->io == PEER_IO_RETRY && peer->backlog_next >= peer->nbacklog &&
	    !peer_whole_inflight(peer)) {
		log_log("replica \"%s\": nothing held for it is left to send again; sending it "
			"what it lacks",
			peer->name);
		peer->io = PEER_IO_OK;
		peer_load_backlog(peer);
		peer_add_pending(peer);
		if (pr->relay)
			relay_peer_progress(peer); /* and a relay's growing segment */
		peer_fill_backlog(peer); /* (once: io is OK now) */
	}
}

/*
 * (Re)read the list of files the spool holds for @peer, to be sent in WAL order.  Files
 * it is being sent or has acknowledged meanwhile are skipped when their turn comes
 * (peer_fill_backlog).  Returns how many, or -errno (logged).
 */
static int backlog_list(struct peer *peer, const char *from)
{
	int ret;

	spool_free_names(peer->backlog, peer->nbacklog);
	peer->backlog = NULL;
	peer->nbacklog = 0;
	peer->backlog_next = 0;
	peer->backlog_floor = 0;
	ret = peer->pr->relay ? relay_backlog(peer, from, &peer->backlog) :
				spool_backlog(&peer->pr->spool, peer->name, &peer->backlog);
	if (ret < 0) {
		log_error("could not list the files held for replica \"%s\": %s", peer->name,
			  strerror(-ret));
		/* listed again a second later (peer_fill_backlog(), relay_tick()), from where
		 * this one was to start: the replica lacks what it did not list */
		peer->backlog_more = true;
		peer->relist_retry_ms = clock_now_ms() + 1000;
		return ret;
	}
	peer->backlog_more = false; /* what is stored now is listed */
	peer->relist_from[0] = '\0';
	peer->relist_lsn = 0;
	peer->nbacklog = ret;
	return ret;
}

int peer_load_backlog(struct peer *peer)
{
	return backlog_list(peer, NULL);
}

int peer_relist_backlog(struct peer *peer)
{
	char from[sizeof(peer->relist_from)];
	int64_t now = clock_now_ms();
	int ret;

	/* A listing that failed (logged) is tried again a second later, not at every fill. */
	if (now < peer->relist_retry_ms)
		return -EAGAIN;
	/* (the spool lists what it holds for the replica: exactly what it lacks) */
	snprintf(from, sizeof(from), "%s", peer->relist_from);
	ret = backlog_list(peer, peer->pr->relay && from[0] ? from : NULL);
	if (ret >= 0)
		peer->relist_retry_ms = 0;
	return ret;
}

/* Tell @peer that streamed file @x (begun, not ended) will not be completed: FILE_CANCEL.
 * A PROGRESS or refusal of it that the replica sent meanwhile is ignored (peer_cancelled()). */
static void peer_queue_cancel(struct peer *peer, const struct xfer *x)
{
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct msg_file_cancel fc = { .file_id = x->file_id };

	peer_queue_small(peer, msg_file_cancel_encode(frame, sizeof(frame), &fc), frame);
	peer->cancelled_ids[peer->cancelled_next++ % PEER_CANCELLED_IDS] = x->file_id;
}

void peer_cancel_push(struct peer *peer, struct push *p)
{
	struct xfer **xp, *x;

	for (xp = &peer->xfers; (x = *xp); xp = &x->next)
		if (x->push == p)
			break;
	if (!x)
		return;
	/* FILE_CANCEL is for streamed files only (a replica refuses it for another as a
	 * protocol error): a whole file begun ends with its connection, closed from
	 * primary_pump() (not here: callers walk the peers). */
	if (x->begin_queued && !peer->conn.closing && x->stream)
		peer_queue_cancel(peer, x);
	else if (x->begin_queued && !peer->conn.closing) {
		log_log("closing the connection of replica \"%s\": \"%s\", begun, cannot be sent "
			"on (it is sent again once the replica is back)",
			peer->name, p->name);
		peer->close_pending = true;
	}
	if (x->begin_queued)
		peer->inflight_files--;
	/* Not begun, and held for it (a push answered OK whose copy could not be read): the
	 * spool's copy goes to it from its backlog, or nothing would send it while its link
	 * stays up (a begun one is sent again once the connection closed is back). */
	else if (!peer->pr->relay && spool_holds(&peer->pr->spool, peer->name, p->name))
		peer_relist_later(peer, p->name, 1000);
	*xp = x->next;
	if (peer->fill == x)
		peer->fill = x->next;
	xfer_free(x);
}

/* Pushes in progress that @peer has neither acknowledged nor been given: give them. */
void peer_add_pending(struct peer *peer)
{
	for (struct push *p = peer->pr->pushes; p; p = p->next)
		if (push_waiting(p) && !p->from_spool && !p->leader &&
		    !push_acked_by(p, peer->name) && !peer_has_file(peer, p->name))
			peer_add_xfer(peer, p);
}

/*
 * Before @x is begun: did the replica say (HAVE) that it holds the file, or a durable
 * part of it?  Taken only when the sizes agree and the CRC of those bytes equals this
 * side's copy; otherwise the file goes from its start (and where the replica holds other
 * content under the name, it refuses it as a conflict).  Each entry is used once.
 */
static enum have_verdict peer_check_have(struct peer *peer, struct xfer *x, uint64_t *start)
{
	struct push *p = x->push;
	struct msg_have_entry *e = NULL;
	enum have_verdict verdict;
	bool crc_read;
	uint32_t crc;

	for (uint32_t idx = 0; idx < peer->have.count && !e; idx++)
		if (peer->have.entries[idx].name[0] &&
		    !strcmp(peer->have.entries[idx].name, p->name))
			e = &peer->have.entries[idx];
	if (!e)
		return HAVE_NONE;
	if (have_later(e, p->size, p->avail))
		return HAVE_LATER;
	e->name[0] = '\0';
	/* Its CRC is worth reading only when the sizes agree. */
	crc_read = e->size == p->size && push_crc(p, e->durable, &crc) == 0;
	verdict = have_decide(e, p->size, crc_read ? &crc : NULL, start);
	if (verdict == HAVE_OTHER)
		log_log("replica \"%s\" holds %" PRIu64 " bytes of \"%s\" with other content; "
			"sending it from its start",
			peer->name, e->durable, p->name);
	return verdict;
}

/* @x is the fill position and the replica already holds its file: acknowledged as it is. */
static void peer_skip_xfer(struct peer *peer, struct xfer *x)
{
	struct primary *pr = peer->pr;
	struct xfer **xp;

	for (xp = &peer->xfers; *xp != x; xp = &(*xp)->next)
		;
	*xp = x->next;
	if (peer->fill == x)
		peer->fill = x->next;
	peer->files_acked++;
	pr->st.skipped_files++;
	snprintf(peer->last_acked, sizeof(peer->last_acked), "%s", x->push->name);
	log_log("replica \"%s\" already holds \"%s\" with the same content; not sent again",
		peer->name, x->push->name);
	peer_stream_advance(peer, x->push, x->push->size);
	push_acked(x->push, peer->name);
	xfer_free(x);
	if (pr->relay)
		relay_peer_progress(peer);
}

/*
 * Begin @x: FILE_BEGIN (flagged WIRE_BEGIN_STREAM for a segment still being streamed), from
 * the replica's durable length when its HAVE says so, or not at all when it holds the file
 * (skipped and acknowledged: @x is freed).  Returns XFER_WAIT when nothing more can be
 * queued now (max_inflight_files, a streamed segment of which the replica holds more than
 * has arrived, or the queue failed).
 */
static enum xfer_begun peer_begin_xfer(struct peer *peer, struct xfer *x)
{
	struct primary *pr = peer->pr;
	struct push *p = x->push;
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct msg_file_begin fb = { .file_id = x->file_id,
				     .kind = (uint8_t)p->wn.kind,
				     .flags = p->avail < p->size ? WIRE_BEGIN_STREAM : 0,
				     .size = p->size };

	if (peer->inflight_files >= (unsigned int)pr->cfg.max_inflight_files)
		return XFER_WAIT;
	switch (peer_check_have(peer, x, &fb.start_offset)) {
	case HAVE_LATER:
		x->later = true;
		return p->avail < p->size ? XFER_LATER : XFER_WAIT;
	case HAVE_SKIP:
		peer_skip_xfer(peer, x);
		return XFER_SKIPPED;
	case HAVE_RESUME:
		x->next_read = fb.start_offset;
		pr->st.resumed_files++;
		pr->st.resumed_bytes += fb.start_offset;
		log_log("resuming \"%s\" for replica \"%s\" at offset %" PRIu64
			", its durable length",
			p->name, peer->name, fb.start_offset);
		break;
	case HAVE_NONE:
	case HAVE_OTHER:
		break;
	}
	snprintf(fb.name, sizeof(fb.name), "%s", p->name);
	if (peer_queue_small(peer, msg_file_begin_encode(frame, sizeof(frame), &fb), frame) < 0)
		return XFER_WAIT;
	x->begin_queued = true;
	x->later = false;
	x->stream = fb.flags & WIRE_BEGIN_STREAM;
	x->begin_ms = clock_now_ms();
	peer->inflight_files++;
	peer->files_sent++;
	snprintf(peer->last_sent, sizeof(peer->last_sent), "%s", p->name);
	if (fb.start_offset) /* (its last byte counts only with the ACK, as for PROGRESS) */
		peer_stream_advance(peer, p,
				    fb.start_offset < p->size ? fb.start_offset : p->size - 1);
	return XFER_BEGUN;
}

/*
 * Queue the next chunk of @x read into a registered slot (READ right behind the frame
 * and DATA headers; peer_read_done seals it).  Returns false when nothing more can
 * be queued now (no free slot, or a relay's share is out: primary_pump() retries) or
 * the connection was closed.
 */
static bool peer_queue_read(struct peer *peer, struct xfer *x)
{
	struct primary *pr = peer->pr;
	struct push *p = x->push;
	uint32_t len =
		(uint32_t)(p->avail - x->next_read < WIRE_CHUNK_SIZE ? p->avail - x->next_read :
								       WIRE_CHUNK_SIZE);
	struct ring_slot *slot = pr->relay ? relay_slot_get(pr) : ring_slot_get(pr->ring);
	struct conn_tx_item *item;
	struct io_uring_sqe *sqe;
	uint8_t *dst;

	if (!slot)
		return false; /* pool exhausted: primary_pump() retries */
	item = conn_queue_slot(&peer->conn, slot, len, false);
	if (!item) {
		ring_slot_put(pr->ring, slot);
		conn_close(&peer->conn, -ENOMEM);
		return false;
	}
	item->owner = p;
	item->owner_arg = x->next_read;
	item->owner_id = x->file_id;
	item->load_op.cb = peer_read_done;
	dst = slot->data + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE;
	if (p->image) {
		/* A relay's growing segment that the replica writes with O_DIRECT: copied from
		 * its image, never read through the page cache, which each direct write drops. */
		memcpy(dst, p->image + x->next_read, len);
		push_check_read(p, x->next_read, dst, len);
		conn_item_ready(&peer->conn, item,
				(uint32_t)msg_data_seal(slot->data, x->file_id, x->next_read, len));
		x->next_read += len;
		return !peer->conn.closing;
	}
	sqe = ring_sqe(pr->ring, &item->load_op);
	/*
	 * A plain READ into the slot's (registered) memory, not READ_FIXED: the kernel copies
	 * from the page cache with copy_to_user() for a READ and with memcpy() for a
	 * READ_FIXED, and on x86 CPUs without FSRM (AMD Zen 1 here) its memcpy() is a loop
	 * of 8-byte moves where copy_to_user() is `rep movs`.  The sender's CPU per GB was
	 * lower with READ in 6 of 6 alternated walship-module runs on such a CPU (median
	 * 1.07 against 1.21 s/GB) and in 4 of 6 on one with FSRM (docs/benchmark-notes.md).
	 * A buffered read does not pin the buffer either way; SEND_ZC still uses the
	 * slot's registration.
	 */
	io_uring_prep_read(sqe, p->fd, dst, len, x->next_read);
	conn_op_begin(&peer->conn);
	p->refs++;
	x->next_read += len;
	return true;
}

/* Whether @x is begun and everything that has arrived of its segment is queued, or not
 * begun because the replica holds more of it than has arrived (XFER_LATER): a streamed
 * segment waiting for more WAL. */
static bool xfer_waits_for_wal(const struct xfer *x)
{
	if (x->push->avail >= x->push->size)
		return false;
	return x->begin_queued ? x->next_read == x->push->avail : x->later;
}

/* Whether every transfer from @peer's fill position is queued whole or waits for WAL:
 * nothing there to queue now. */
static bool peer_fill_idle(const struct peer *peer)
{
	for (const struct xfer *x = peer->fill; x; x = x->next)
		if (!x->end_queued && !xfer_waits_for_wal(x))
			return false;
	return true;
}

/*
 * Queue what can be queued for @peer within its bounds, in order from its fill position.
 * A streamed segment waiting for WAL keeps the fill position but does not hold back the
 * files after it (held files of a replica catching up, pushes of older segments).
 */
void peer_fill(struct peer *peer)
{
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct xfer *x;

	if (peer->state == PEER_STREAMING && !peer->conn.closing)
		peer_fill_backlog(peer);
	x = peer->fill;
	while (peer->state == PEER_STREAMING && !peer->conn.closing && x) {
		struct push *p = x->push;
		struct xfer *next = x->next;

		if (conn_tx_backlog(&peer->conn) >= PEER_MAX_QUEUED)
			return;
		if (!x->begin_queued) {
			switch (peer_begin_xfer(peer, x)) {
			case XFER_WAIT:
				return;
			case XFER_LATER:
				x = next; /* (as a segment whose rest is not there yet) */
				continue;
			case XFER_SKIPPED:
				/* @x is freed, and the push it answered may have taken other
				 * transfers with it (push_others_to_spool()), @next among them:
				 * from the fill position again (each skip removes one) */
				x = peer->fill;
				continue;
			case XFER_BEGUN:
				continue;
			}
		}
		if (x->next_read < p->avail) {
			if (!(p->map ? peer_queue_mapped(peer, x) : peer_queue_read(peer, x)))
				return;
			continue;
		}
		if (p->avail < p->size) {
			x = next; /* the rest of this segment is not there yet */
			continue;
		}
		if (!x->end_queued) {
			struct msg_file_end fe = { .file_id = x->file_id, .size = p->size };

			if (peer_queue_small(peer, msg_file_end_encode(frame, sizeof(frame), &fe),
					     frame) < 0)
				return;
			x->end_queued = true;
		}
		if (peer->fill == x)
			peer->fill = next;
		x = next;
	}
}

/*
 * @peer answered ACK IO_ERROR for @file: stop sending it new pushes (they are held for it
 * in the spool, as for a replica that is away) and send it held files again after a
 * backoff that doubles while it keeps failing (primary_tick).
 */
static void peer_io_failed(struct peer *peer, const char *file, const char *why)
{
	if (peer->io == PEER_IO_WAIT)
		return; /* another file of the same burst */
	peer->io_backoff_ms =
		io_backoff_next(peer->io_backoff_ms, IO_RETRY_MIN_MS, IO_RETRY_MAX_MS);
	peer->io = PEER_IO_WAIT;
	peer->io_retry_ms = clock_now_ms() + peer->io_backoff_ms;
	log_warning("replica \"%s\" could not store \"%s\": %s", peer->name, file, why);
	log_detail("The files it lacks are held for it (in the spool, or in memory while they "
		   "stream) and sent to it again in %d ms.",
		   peer->io_backoff_ms);
}

/* PEER_IO_WAIT is over: send @peer the files held for it, one at a time. */
void peer_io_retry(struct peer *peer)
{
	log_log("sending replica \"%s\" again what it could not store", peer->name);
	peer->io = PEER_IO_RETRY;
	if (peer_load_backlog(peer) <= 0) {
		peer->io = PEER_IO_OK; /* nothing held (or unreadable: logged) */
		peer_add_pending(peer);
		if (peer->pr->relay)
			relay_peer_progress(peer); /* and a relay's growing segment */
	}
	peer_fill(peer);
}

/* A held file sent again was stored: back to normal, with everything it still lacks. */
static void peer_io_recovered(struct peer *peer)
{
	log_log("replica \"%s\" stores files again", peer->name);
	peer->io = PEER_IO_OK;
	peer->io_backoff_ms = 0;
	peer_load_backlog(peer);
	peer_add_pending(peer);
}

int peer_on_ack(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct primary *pr = peer->pr;
	struct msg_ack ack;
	struct xfer **xp, *x;
	uint16_t refused = 0; /* a streamed segment refused: push_stream_refused() */
	int ret = msg_ack_decode(payload, len, &ack);

	if (ret < 0) {
		log_log("malformed ACK from replica \"%s\"", peer->name);
		return ret;
	}
	for (xp = &peer->xfers; (x = *xp); xp = &x->next)
		if (x->file_id == ack.file_id)
			break;
	if (!x && peer_cancelled(peer, ack.file_id))
		return 0; /* its refusal crossed our FILE_CANCEL: nothing waits for it */
	if (!x || strcmp(ack.name, x->push->name) != 0 ||
	    !ack_in_time(x->end_queued, x->stream, ack.status)) {
		log_log("replica \"%s\" acknowledged unknown file %u (\"%s\")", peer->name,
			ack.file_id, ack.name);
		return -EPROTO;
	}
	switch (ack_decide(ack.status)) {
	case ACK_COUNTED:
		if (ack.durable_offset != x->push->size) {
			log_log("replica \"%s\" acknowledged %" PRIu64 " of %" PRIu64
				" bytes of \"%s\" as complete",
				peer->name, ack.durable_offset, x->push->size, ack.name);
			return -EPROTO;
		}
		peer->files_acked++;
		snprintf(peer->last_acked, sizeof(peer->last_acked), "%s", ack.name);
		peer->ack_ewma_ms = ack_ewma_next(peer->ack_ewma_ms, clock_now_ms() - x->begin_ms,
						  !peer->ack_seen);
		peer->ack_seen = true;
		if (ack.status == WIRE_ACK_DUPLICATE)
			pr->st.duplicates++;
		peer_stream_advance(peer, x->push, x->push->size);
		push_acked(x->push, peer->name);
		if (peer->io == PEER_IO_RETRY)
			peer_io_recovered(peer);
		break;
	case ACK_HELD:
		/* This replica's disk, not the cluster's: the file stays held for it. */
		pr->st.io_errors++;
		/* A relay's downstream: its run, and the floor saved from it, go back before
		 * the file (its PROGRESS may have reached the file's end, or a run begun at a
		 * later file gone past it): else the relay's retention could remove it, and
		 * its backlog, reloaded from that floor, never send it again.  (The primary
		 * counts streamed bytes up to the last one only, and keeps a failed segment
		 * held: stream_failed_add().) */
		if (pr->relay)
			relay_peer_failed(peer, x->push);
		peer_set_error(peer, "%s", ack.message);
		snprintf(x->push->io_error, sizeof(x->push->io_error),
			 "replica \"%s\" could not store it: %s", peer->name, ack.message);
		peer_io_failed(peer, ack.name, ack.message);
		break;
	case ACK_CONFLICT:
		peer_stream_refused(peer, x->push);
		pr->st.conflicts++;
		snprintf(pr->st.last_conflict, sizeof(pr->st.last_conflict), "replica \"%s\": %s",
			 peer->name, ack.message);
		log_warning("replica \"%s\" holds different content for \"%s\"", peer->name,
			    ack.name);
		log_detail("%s", ack.message);
		peer_set_error(peer, "%s", ack.message);
		if (x->push->stream) {
			snprintf(x->push->io_error, sizeof(x->push->io_error),
				 "replica \"%s\" refused it: %s", peer->name, ack.message);
			refused = CTL_ERR_CONFLICT; /* decided once its transfer is gone */
			break;
		}
		push_fail(x->push, CTL_ERR_CONFLICT, "replica \"%s\" refused it: %s", peer->name,
			  ack.message);
		break;
	case ACK_REFUSED:
		peer_stream_refused(peer, x->push);
		peer_set_error(peer, "%s", ack.message);
		if (x->push->stream) {
			snprintf(x->push->io_error, sizeof(x->push->io_error),
				 "replica \"%s\" refused it (%s): %s", peer->name,
				 wire_ack_status_name(ack.status), ack.message);
			refused = CTL_ERR_FAILED;
			break;
		}
		push_fail(x->push, CTL_ERR_FAILED, "replica \"%s\" refused it (%s): %s", peer->name,
			  wire_ack_status_name(ack.status), ack.message);
		break;
	}
	if (ack_releases_claim(ack.status) && (x->push->from_spool || x->push->spool_done)) {
		/* Refused for good (conflict, invalid, other system): holding it longer
		 * would only send it again.  The refusal is counted and shown. */
		primary_release(pr, peer->name, x->push->name);
	}
	if (!x->end_queued)
		peer_queue_cancel(peer, x); /* refused before its end: no more of it is sent */
	/* (found again: what ran above, a push answered, may have removed others) */
	for (xp = &peer->xfers; *xp != x; xp = &(*xp)->next)
		;
	*xp = x->next;
	if (peer->fill == x)
		peer->fill = x->next;
	peer->inflight_files--;
	if (ack.status == WIRE_ACK_IO_ERROR)
		push_io_error(x->push);
	else if (refused)
		push_stream_refused(x->push, refused, peer->name);
	xfer_free(x);
	if (pr->relay)
		relay_peer_progress(peer);
	peer_fill(peer);
	return 0;
}
