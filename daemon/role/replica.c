// SPDX-License-Identifier: MIT
/*
 * The replica role: connects to `upstream`, receives WAL files and stores them durably
 * in `archive_dir` (DESIGN §4.2), acknowledging each file only once it is there:
 *
 *   FILE_BEGIN  open archive_dir/.incoming/<name>.<seq> (O_EXCL)
 *   DATA        validate the chunk's pages in memory, WRITE_FIXED it from the slot it
 *               was received into (no copy), at its offset
 *   FILE_END    all writes done: fdatasync, close, rename to archive_dir/<name> with
 *               RENAME_NOREPLACE, fsync archive_dir, then ACK
 *
 * A name that already exists is the duplicate rule (DESIGN §4.3): same content is
 * acknowledged as a duplicate, different content refused, counted and logged.  A file
 * that fails validation is never renamed into place.  The first segment stored fixes
 * the store's system identifier; WAL of any other system is refused.
 *
 * Files in flight are bounded by the protocol's window (WIRE_MAX_INFLIGHT_FILES): a
 * primary that begins more is refused with ERROR PROTOCOL, and the files of that
 * connection are kept as partials or removed as for any lost connection.  A frame the
 * replica cannot accept is answered with ERROR (link_refuse) before the link closes.
 *
 * Resuming: while a segment arrives its CRC-32C is kept up to date from the frames' own
 * CRCs (no second pass over the bytes).  Every checkpoint_interval, and when the
 * connection is lost, what has been written is made durable and recorded with its CRC
 * (store_mark_durable, then fsync); such a file is kept in .incoming as a partial.
 * After HELLO the replica sends HAVE: its partials and its newest stored files, each
 * with a CRC.  The primary checks them against its own copy and sends a partial on from
 * its durable length (FILE_BEGIN start_offset), or skips a file the replica already
 * holds with the same content.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/node_name.h"
#include "control/control.h"
#include "net/conn.h"
#include "proto/codec.h"
#include "proto/hello.h"
#include "role/role.h"
#include "status/status.h"
#include "wal/name.h"
#include "wal/page.h"
#include "wal/store.h"

struct replica;
struct link;

/*
 * Segments are written with O_DIRECT from the registered slot they were received into
 * (the slot layout is in role.h): no copy into the page cache, the disk writes overlap
 * the transfer, and fdatasync at the end has little left to do.
 */
/* How long a stopping replica waits for complete files to be made durable and acked. */
#define DRAIN_MS 3000

enum infile_state {
	IN_RECEIVING,
	IN_SYNCING,
	IN_RENAMING,
	IN_DIR_SYNCING,
};

struct chunk_write {
	struct ring_op op;
	struct infile *f;
	struct ring_slot *slot;
	const uint8_t *data; /* the chunk's content inside slot */
	uint64_t offset;
	uint32_t len;
	struct chunk_write *next;
};

struct infile {
	struct infile *next;
	struct link *link;
	struct ring_op op;
	struct ring_op ck_op; /* a checkpoint's fsync, beside the writes */
	enum infile_state state;
	uint32_t file_id;
	char name[WIRE_MAX_FILE_NAME + 1];
	char tmp_name[WIRE_MAX_FILE_NAME + 32];
	struct wal_name wn;
	uint64_t size;
	uint64_t received;
	uint32_t crc; /* CRC-32C of the first @received bytes */
	uint64_t seq; /* of tmp_name */
	uint64_t durable; /* bytes recorded durable (a checkpoint) */
	uint64_t ck_pending; /* the checkpoint in flight covers this many */
	int64_t ck_ms; /* when the last checkpoint began (or the file, if none) */
	bool checkpointing;
	bool resumed; /* continues a partial file: open it, do not create it */
	int fd;
	bool direct; /* opened (or being opened) with O_DIRECT */
	bool opening;
	bool end_received;
	unsigned int writes_pending;
	struct chunk_write *waiting; /* chunks received before the open completed */
	struct chunk_write **waiting_tail;
	struct wal_validator wv;
	uint8_t fail_status; /* enum wire_ack_status, STORED while all is well */
	int64_t t_begin, t_end, t_written, t_synced; /* ms, for the debug log */
	char fail_msg[WIRE_MAX_MESSAGE + 1];
};

struct link {
	struct conn conn; /* first: conn callbacks find the link from it */
	struct replica *rp;
	bool established;
	char primary_name[WIRE_MAX_NAME + 1];
	struct infile *files;
	unsigned int nfiles; /* in @files: begun and not yet acknowledged */
	uint64_t files_received;
	uint64_t files_acked;
	char last_acked[WIRE_MAX_FILE_NAME + 1];
	char last_received[WIRE_MAX_FILE_NAME + 1];
};

struct replica {
	struct config cfg;
	struct ring *ring;
	struct control_server control;
	struct store store;
	struct link *link;
	/* connecting */
	int connect_fd;
	struct ring_op connect_op;
	struct ring_op connect_timeout_op;
	struct __kernel_timespec connect_ts;
	struct sockaddr_storage upstream_addr;
	socklen_t upstream_len;
	bool connecting;
	int64_t next_attempt_ms;
	int backoff_ms;
	bool stopping;
	int64_t drain_deadline_ms; /* stopping: close the link by then at the latest */
	bool no_direct_io; /* archive_dir refused O_DIRECT once */
	uint64_t seq;
	uint64_t reconnects;
	uint64_t errors;
	char last_error[STATUS_MAX_TEXT];
	struct tls_ctx tls; /* tls.ctx NULL: plaintext */
	struct status_node st;
};

static void replica_connect(struct replica *rp);

static struct link *link_of(struct conn *c)
{
	return (struct link *)c;
}

static void replica_set_error(struct replica *rp, const char *fmt, ...) attr_printf(2, 3);

static void replica_set_error(struct replica *rp, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rp->last_error, sizeof(rp->last_error), fmt, ap);
	va_end(ap);
	rp->errors++;
}

/*
 * The primary sent what this replica cannot accept: log it, tell the primary why (ERROR
 * @code, docs/protocol.md), close once that is sent.  Returns -EPROTO for rx_frame.
 */
static int link_refuse(struct link *lk, uint32_t code, const char *fmt, ...) attr_printf(3, 4);

static int link_refuse(struct link *lk, uint32_t code, const char *fmt, ...)
{
	char why[WIRE_MAX_MESSAGE + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_error("closing connection to primary at %s: %s", lk->rp->cfg.upstream, why);
	replica_set_error(lk->rp, "%s", why);
	conn_fail(&lk->conn, code, -EPROTO, "%s", why);
	return -EPROTO;
}

/* ---- files ---- */

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

static void infile_free(struct infile *f)
{
	struct link *lk = f->link;
	struct infile **fp;
	struct chunk_write *cw, *next;

	for (cw = f->waiting; cw; cw = next) {
		next = cw->next;
		ring_slot_put(lk->rp->ring, cw->slot);
		free(cw);
	}
	if (f->fd >= 0)
		close(f->fd);
	for (fp = &lk->files; *fp; fp = &(*fp)->next) {
		if (*fp == f) {
			*fp = f->next;
			lk->nfiles--;
			break;
		}
	}
	free(f);
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
	f->tmp_name[0] = '\0';
}

static void infile_ack(struct infile *f, uint8_t status, const char *message)
{
	struct link *lk = f->link;
	struct msg_ack ack = { .file_id = f->file_id, .status = status };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	int len;

	ack.durable_offset =
		(status == WIRE_ACK_STORED || status == WIRE_ACK_DUPLICATE) ? f->size : 0;
	snprintf(ack.name, sizeof(ack.name), "%s", f->name);
	snprintf(ack.message, sizeof(ack.message), "%s", message ? message : "");
	len = msg_ack_encode(frame, sizeof(frame), &ack);
	if (len < 0) {
		log_error("could not encode ACK for \"%s\"", f->name);
		return;
	}
	if (conn_send_frame(&lk->conn, frame, (uint32_t)len) == 0) {
		lk->files_acked++;
		snprintf(lk->last_acked, sizeof(lk->last_acked), "%s", f->name);
	}
}

/* The file will not be stored: count, log, remove the temporary file, refuse it. */
static void infile_refuse(struct infile *f)
{
	struct replica *rp = f->link->rp;

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
	infile_discard(f);
	infile_ack(f, f->fail_status, f->fail_msg);
	infile_free(f);
}

static void infile_step(struct ring_op *op, int res, uint32_t flags);

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

	f->op.cb = infile_step;
	sqe = ring_sqe(rp->ring, &f->op);
	io_uring_prep_openat(sqe, rp->store.incoming_fd, f->tmp_name, flags, 0640);
	infile_submit(f, sqe);
}

static void infile_stored(struct infile *f)
{
	struct replica *rp = f->link->rp;

	int64_t now = clock_now_ms();

	rp->st.files_stored++;
	rp->st.bytes_stored += f->size;
	rp->st.seg_size = f->wv.have_id ? f->wv.id.seg_size : rp->st.seg_size;
	log_debug("stored \"%s\" (%" PRIu64 " bytes): received in %" PRId64
		  " ms, writes done +%" PRId64 " ms, fdatasync +%" PRId64
		  " ms, rename and directory fsync +%" PRId64 " ms",
		  f->name, f->size, f->t_end - f->t_begin, f->t_written - f->t_end,
		  f->t_synced - f->t_written, now - f->t_synced);
	store_recent_add(&rp->store, f->name, f->size, f->crc);
	infile_ack(f, WIRE_ACK_STORED, NULL);
	infile_free(f);
}

/* All bytes are written: check the file as a whole, then make it durable. */
static void infile_maybe_finish(struct infile *f)
{
	struct replica *rp = f->link->rp;
	struct io_uring_sqe *sqe;
	struct wal_identity id;

	if (!f->end_received || f->writes_pending || f->opening || f->checkpointing ||
	    f->state != IN_RECEIVING)
		return;
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

static void infile_step(struct ring_op *op, int res, uint32_t flags)
{
	struct infile *f = container_of(op, struct infile, op);
	struct link *lk = f->link;
	struct replica *rp = lk->rp;
	struct io_uring_sqe *sqe;

	(void)flags;
	switch (f->state) {
	case IN_SYNCING:
		if (res < 0) {
			infile_fail(f, WIRE_ACK_IO_ERROR, "could not fsync file \"%s\": %s",
				    f->tmp_name, strerror(-res));
			infile_refuse(f);
			break;
		}
		f->t_synced = clock_now_ms();
		close(f->fd);
		f->fd = -1;
		/* The first segment fixes the store's system identifier, durably, before
		 * anything of that system is acknowledged. */
		if (!rp->store.system_identifier && f->wv.have_id &&
		    store_set_identity(&rp->store, &f->wv.id) < 0) {
			infile_fail(f, WIRE_ACK_IO_ERROR, "could not record system identifier");
			infile_refuse(f);
			break;
		}
		f->state = IN_RENAMING;
		sqe = ring_sqe(rp->ring, &f->op);
		io_uring_prep_renameat(sqe, rp->store.incoming_fd, f->tmp_name, rp->store.dir_fd,
				       f->name, RENAME_NOREPLACE);
		infile_submit(f, sqe);
		break;
	case IN_RENAMING:
		if (res == -EEXIST) {
			int same = store_same_content(&rp->store, f->tmp_name, f->name);

			if (same == 1) {
				rp->st.duplicates++;
				log_log("\"%s\" is already stored with identical content", f->name);
				store_recent_add(&rp->store, f->name, f->size, f->crc);
				infile_discard(f);
				infile_ack(f, WIRE_ACK_DUPLICATE, NULL);
				infile_free(f);
				break;
			}
			if (same == 0)
				infile_fail(f, WIRE_ACK_CONFLICT,
					    "\"%s\" is already stored with different content; the "
					    "stored file is kept",
					    f->name);
			else
				infile_fail(f, WIRE_ACK_IO_ERROR,
					    "could not compare \"%s\" with the stored file: %s",
					    f->name, strerror(-same));
			infile_refuse(f);
			break;
		}
		if (res < 0) {
			infile_fail(f, WIRE_ACK_IO_ERROR, "could not rename \"%s\" to \"%s\": %s",
				    f->tmp_name, f->name, strerror(-res));
			infile_refuse(f);
			break;
		}
		f->tmp_name[0] = '\0';
		f->state = IN_DIR_SYNCING;
		sqe = ring_sqe(rp->ring, &f->op);
		io_uring_prep_fsync(sqe, rp->store.dir_fd, 0);
		infile_submit(f, sqe);
		break;
	case IN_DIR_SYNCING:
		if (res < 0) {
			/* The file is complete and fsynced but its name may not survive a
			 * crash: do not acknowledge; the primary sends it again and the
			 * duplicate rule applies. */
			log_error("could not fsync directory \"%s\": %s", rp->store.path,
				  strerror(-res));
			rp->st.io_errors++;
			infile_ack(f, WIRE_ACK_IO_ERROR, "could not fsync the archive directory");
			infile_free(f);
			break;
		}
		infile_stored(f);
		break;
	case IN_RECEIVING:
		/* the open */
		if (res == -EINVAL && f->direct) {
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
			break;
		}
		f->opening = false;
		if (res < 0) {
			infile_fail(f, WIRE_ACK_IO_ERROR, "could not create file \"%s/%s/%s\": %s",
				    rp->store.path, STORE_INCOMING_DIR, f->tmp_name,
				    strerror(-res));
			f->tmp_name[0] = '\0';
		} else {
			f->fd = res;
			if (!f->direct && f->wn.kind != WAL_FILE_HISTORY &&
			    f->wn.kind != WAL_FILE_BACKUP && !rp->no_direct_io)
				infile_clear_direct(f); /* a chunk came that needs it */
		}
		/* Chunks that arrived meanwhile. */
		while (f->waiting) {
			struct chunk_write *cw = f->waiting;

			f->waiting = cw->next;
			if (f->fd < 0 || f->fail_status != WIRE_ACK_STORED) {
				ring_slot_put(rp->ring, cw->slot);
				free(cw);
				continue;
			}
			cw->next = NULL;
			sqe = ring_sqe(rp->ring, &cw->op);
			if (rp->ring->fixed_buffers)
				io_uring_prep_write_fixed(sqe, f->fd, cw->data, cw->len, cw->offset,
							  (int)cw->slot->index);
			else
				io_uring_prep_write(sqe, f->fd, cw->data, cw->len, cw->offset);
			f->writes_pending++;
			infile_submit(f, sqe);
		}
		f->waiting_tail = &f->waiting;
		infile_maybe_finish(f);
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
	infile_maybe_finish(f);
	conn_op_end(&lk->conn); /* may free the link */
}

/* Segments and .partial files can be resumed; .history and .backup files are small. */
static bool infile_resumable(const struct infile *f)
{
	return f->wn.kind == WAL_FILE_SEGMENT || f->wn.kind == WAL_FILE_PARTIAL;
}

static void infile_checkpointed(struct ring_op *op, int res, uint32_t flags)
{
	struct infile *f = container_of(op, struct infile, ck_op);
	struct link *lk = f->link;
	struct replica *rp = lk->rp;

	(void)flags;
	f->checkpointing = false;
	if (res < 0) {
		/* An fsync error is not retried (the kernel may have dropped the pages). */
		infile_fail(f, WIRE_ACK_IO_ERROR, "could not fsync file \"%s\": %s", f->tmp_name,
			    strerror(-res));
	} else {
		f->durable = f->ck_pending;
		rp->st.checkpoints++;
		log_debug("\"%s\": %" PRIu64 " of %" PRIu64 " bytes durable", f->name, f->durable,
			  f->size);
	}
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
	if (store_mark_durable(&rp->store, f->fd, f->size, f->received, f->crc) < 0)
		return;
	f->ck_pending = f->received;
	f->checkpointing = true;
	f->ck_op.cb = infile_checkpointed;
	sqe = ring_sqe(rp->ring, &f->ck_op);
	io_uring_prep_fsync(sqe, f->fd, 0);
	infile_submit(f, sqe);
}

static void link_checkpoint_due(struct link *lk, int64_t now_ms)
{
	int interval = lk->rp->cfg.checkpoint_interval_ms;

	if (!interval || lk->conn.closing)
		return;
	for (struct infile *f = lk->files; f; f = f->next) {
		if (f->state == IN_RECEIVING && infile_resumable(f) && !f->opening &&
		    !f->checkpointing && !f->end_received && f->fd >= 0 && !f->writes_pending &&
		    f->fail_status == WIRE_ACK_STORED && f->received > f->durable &&
		    now_ms - f->ck_ms >= interval)
			infile_checkpoint(f, now_ms);
	}
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

	if (f->state != IN_RECEIVING || !infile_resumable(f) || f->fd < 0 || f->opening ||
	    f->fail_status != WIRE_ACK_STORED || f->received == 0 || f->received >= f->size ||
	    !f->tmp_name[0])
		goto out_discard;
	if (f->received > f->durable) {
		if (store_mark_durable(&rp->store, f->fd, f->size, f->received, f->crc) < 0)
			goto out_discard;
		if (fsync(f->fd) < 0) {
			log_warning("could not fsync file \"%s\": %s", f->tmp_name,
				    strerror(errno));
			goto out_discard;
		}
		rp->st.checkpoints++;
	}
	snprintf(p.name, sizeof(p.name), "%s", f->name);
	snprintf(p.tmp_name, sizeof(p.tmp_name), "%s", f->tmp_name);
	p.seq = f->seq;
	p.size = f->size;
	p.durable = f->received;
	p.crc = f->crc;
	p.wv = f->wv;
	store_partial_keep(&rp->store, &p);
	log_log("kept \"%s\" for resuming: %" PRIu64 " of %" PRIu64 " bytes are durable", f->name,
		p.durable, p.size);
	f->tmp_name[0] = '\0'; /* the store has it now */
out_discard:
	infile_discard(f);
}

static struct infile *link_find_file(struct link *lk, uint32_t file_id)
{
	for (struct infile *f = lk->files; f; f = f->next)
		if (f->file_id == file_id && f->state == IN_RECEIVING)
			return f;
	return NULL;
}

static int link_on_file_begin(struct link *lk, const uint8_t *payload, uint32_t len)
{
	struct replica *rp = lk->rp;
	struct msg_file_begin fb;
	struct store_partial *sp;
	struct infile *f;

	if (msg_file_begin_decode(payload, len, &fb) < 0)
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed FILE_BEGIN");
	if (link_find_file(lk, fb.file_id))
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "FILE_BEGIN reuses file id %u of a file in flight", fb.file_id);
	if (lk->nfiles >= WIRE_MAX_INFLIGHT_FILES) {
		/* A primary keeps at most max_inflight_files unacknowledged (at most this):
		 * more is a peer that does not follow the protocol, and each costs a
		 * descriptor and a file in .incoming. */
		rp->st.queue_overflows++;
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "FILE_BEGIN for \"%s\" while %u files are in flight: more than "
				   "the protocol's window of %d",
				   fb.name, lk->nfiles, WIRE_MAX_INFLIGHT_FILES);
	}
	sp = store_partial_find(&rp->store, fb.name);
	if (fb.start_offset && (!sp || sp->size != fb.size || sp->durable != fb.start_offset))
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "asked to resume \"%s\" at %" PRIu64 ", which this replica did "
				   "not offer",
				   fb.name, fb.start_offset);
	if (!fb.start_offset && sp) {
		/* The primary did not take the offer (its copy differs, or it does not look
		 * at HAVE): the file comes again from its start. */
		log_log("discarding partial file \"%s\": the primary sends \"%s\" from its start",
			sp->tmp_name, fb.name);
		store_partial_discard(&rp->store, sp);
		sp = NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		log_error("out of memory");
		return -ENOMEM;
	}
	f->link = lk;
	f->fd = -1;
	f->file_id = fb.file_id;
	f->size = fb.size;
	f->waiting_tail = &f->waiting;
	f->t_begin = f->ck_ms = clock_now_ms();
	snprintf(f->name, sizeof(f->name), "%s", fb.name);
	f->next = lk->files;
	lk->files = f;
	lk->nfiles++;
	lk->files_received++;
	snprintf(lk->last_received, sizeof(lk->last_received), "%s", fb.name);

	if (wal_name_parse(fb.name, &f->wn) < 0 || (uint8_t)f->wn.kind != fb.kind) {
		infile_fail(f, WIRE_ACK_INVALID, "\"%s\" is not a WAL file name of kind %u",
			    fb.name, fb.kind);
		return 0;
	}
	f->direct = !rp->no_direct_io &&
		    (f->wn.kind == WAL_FILE_SEGMENT || f->wn.kind == WAL_FILE_PARTIAL);
	if (sp) {
		/* Resume: the validator, CRC and name of the partial file go on. */
		f->resumed = true;
		f->wv = sp->wv;
		f->seq = sp->seq;
		f->received = f->durable = sp->durable;
		f->crc = sp->crc;
		snprintf(f->tmp_name, sizeof(f->tmp_name), "%s", sp->tmp_name);
		store_partial_take(&rp->store, sp);
		rp->st.resumed_files++;
		rp->st.resumed_bytes += f->received;
		log_log("resuming \"%s\" at offset %" PRIu64 " of %" PRIu64, f->name, f->received,
			f->size);
	} else {
		if (wal_validator_begin(&f->wv, &f->wn, fb.size, 0) < 0) {
			infile_fail(f, WIRE_ACK_INVALID, "%s", f->wv.message);
			return 0;
		}
		f->seq = ++rp->seq;
		snprintf(f->tmp_name, sizeof(f->tmp_name), "%s.%" PRIu64, fb.name, f->seq);
	}
	f->opening = true;
	infile_open(f);
	return 0;
}

static int link_on_data(struct link *lk, const uint8_t *payload, uint32_t len, uint32_t payload_crc,
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
	if (!f || f->end_received || md.offset != f->received || md.len > f->size - f->received) {
		ring_slot_put(rp->ring, slot);
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "DATA for file %u at offset %" PRIu64 " does not continue any "
				   "file",
				   md.file_id, md.offset);
	}
	f->received += md.len;
	/* The content's CRC from the frame's (checked) payload CRC, without reading it
	 * again: payload = 16-byte DATA header || content. */
	f->crc = crc32c_combine(
		f->crc,
		payload_crc ^ crc32c_combine(crc32c(0, payload, WIRE_DATA_HEADER_SIZE), 0, md.len),
		md.len);
	if (f->fail_status == WIRE_ACK_STORED) {
		bool had_id = f->wv.have_id;

		if (wal_validator_feed(&f->wv, md.data, md.len) < 0)
			infile_fail(f, WIRE_ACK_INVALID, "%s", f->wv.message);
		else if (!had_id && f->wv.have_id && rp->store.system_identifier &&
			 f->wv.id.system_identifier != rp->store.system_identifier)
			infile_fail(f, WIRE_ACK_SYSID,
				    "WAL segment \"%s\" belongs to system %" PRIu64
				    ", this replica holds system %" PRIu64,
				    f->name, f->wv.id.system_identifier,
				    rp->store.system_identifier);
		else if (!had_id && f->wv.have_id && rp->store.page_magic &&
			 f->wv.id.page_magic != rp->store.page_magic)
			infile_fail(
				f, WIRE_ACK_SYSID,
				"WAL segment \"%s\" is of PostgreSQL %s, this replica holds WAL "
				"of PostgreSQL %s",
				f->name, wal_page_magic_version(f->wv.id.page_magic) ?: "?",
				wal_page_magic_version(rp->store.page_magic) ?: "?");
	}
	if (f->fail_status != WIRE_ACK_STORED || (!f->opening && f->fd < 0)) {
		ring_slot_put(rp->ring, slot);
		return 0;
	}
	cw = calloc(1, sizeof(*cw));
	if (!cw) {
		log_error("out of memory");
		ring_slot_put(rp->ring, slot);
		return -ENOMEM;
	}
	if (f->direct &&
	    ((md.offset | md.len) % ROLE_DIO_ALIGN || (uintptr_t)md.data % ROLE_DIO_ALIGN)) {
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
	if (f->opening) {
		*f->waiting_tail = cw;
		f->waiting_tail = &cw->next;
		return 0;
	}
	{
		struct io_uring_sqe *sqe = ring_sqe(rp->ring, &cw->op);

		if (rp->ring->fixed_buffers)
			io_uring_prep_write_fixed(sqe, f->fd, md.data, md.len, md.offset,
						  (int)slot->index);
		else
			io_uring_prep_write(sqe, f->fd, md.data, md.len, md.offset);
		f->writes_pending++;
		infile_submit(f, sqe);
	}
	return 0;
}

static int link_on_file_end(struct link *lk, const uint8_t *payload, uint32_t len)
{
	struct msg_file_end fe;
	struct infile *f;

	if (msg_file_end_decode(payload, len, &fe) < 0)
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed FILE_END");
	f = link_find_file(lk, fe.file_id);
	if (!f || f->end_received || fe.size != f->size || f->received != f->size)
		return link_refuse(lk, WIRE_ERR_PROTOCOL,
				   "FILE_END for file %u does not match what was received",
				   fe.file_id);
	f->end_received = true;
	f->t_end = clock_now_ms();
	infile_maybe_finish(f);
	return 0;
}

static int link_on_hello(struct link *lk, const uint8_t *payload, uint32_t len)
{
	struct replica *rp = lk->rp;
	struct wal_identity known = { .system_identifier = rp->store.system_identifier,
				      .page_magic = rp->store.page_magic,
				      .seg_size = rp->store.seg_size,
				      .block_size = rp->store.block_size };
	struct msg_hello h;
	char why[512];
	int ret = msg_hello_decode(payload, len, &h), code;

	/* The same checks as the primary's, with the ERROR codes of docs/protocol.md. */
	if (ret < 0 && ret != -EPROTONOSUPPORT && ret != -EINVAL)
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed HELLO");
	code = hello_check_compatible(&h, WIRE_ROLE_REPLICA, &known, why, sizeof(why));
	if (code)
		return link_refuse(lk, (uint32_t)code, "%s", why);
	if (conn_peer_cert_name(&lk->conn) && strcmp(conn_peer_cert_name(&lk->conn), h.node_name))
		return link_refuse(lk, WIRE_ERR_NAME,
				   "primary presents certificate name \"%s\" but node name \"%s\"",
				   conn_peer_cert_name(&lk->conn), h.node_name);
	lk->established = true;
	snprintf(lk->primary_name, sizeof(lk->primary_name), "%s", h.node_name);
	rp->backoff_ms = rp->cfg.reconnect_min_ms;
	log_log("connected to primary \"%s\" at %s", h.node_name, rp->cfg.upstream);
	return 0;
}

static int link_rx_frame(struct conn *c, const struct frame_header *hdr, uint8_t *payload,
			 struct ring_slot *slot)
{
	struct link *lk = link_of(c);

	if (hdr->type == WIRE_DATA && lk->established)
		return link_on_data(lk, payload, hdr->length, hdr->payload_crc, slot);
	if (slot)
		ring_slot_put(c->ring, slot);
	if (hdr->type == WIRE_ERROR) {
		/* The primary says why it closes: log its reason (nothing is answered). */
		struct msg_error me;

		if (msg_error_decode(payload, hdr->length, &me) < 0)
			log_error("primary at %s sent a malformed ERROR", lk->rp->cfg.upstream);
		else if (!lk->established)
			log_error("primary at %s refused this replica: %s", lk->rp->cfg.upstream,
				  me.message);
		else
			log_error("primary at %s closed the connection with ERROR %s: %s",
				  lk->rp->cfg.upstream, wire_error_name(me.code), me.message);
		replica_set_error(lk->rp, "%s", me.message);
		return -ECONNREFUSED;
	}
	if (!lk->established) {
		if (hdr->type != WIRE_HELLO)
			return link_refuse(lk, WIRE_ERR_PROTOCOL, "expected HELLO, got %s",
					   wire_type_name(hdr->type));
		return link_on_hello(lk, payload, hdr->length);
	}
	switch (hdr->type) {
	case WIRE_FILE_BEGIN:
		return link_on_file_begin(lk, payload, hdr->length);
	case WIRE_FILE_END:
		return link_on_file_end(lk, payload, hdr->length);
	case WIRE_PING: {
		struct msg_ping ping;
		uint8_t frame[WIRE_HEADER_SIZE + 8];
		int n;

		if (msg_ping_decode(payload, hdr->length, &ping) < 0)
			return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed PING");
		n = msg_ping_encode(frame, sizeof(frame), WIRE_PONG, &ping);
		return n < 0 ? n : conn_send_frame(c, frame, (uint32_t)n);
	}
	case WIRE_PONG:
		return 0;
	default:
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "unexpected %s frame from a primary",
				   wire_type_name(hdr->type));
	}
}

static uint8_t *link_rx_buffer(struct conn *c, const struct frame_header *hdr,
			       struct ring_slot **slot)
{
	*slot = ring_slot_get(c->ring);
	if (!*slot)
		return NULL; /* wait for a write to free a slot */
	/* Place a DATA payload so that its content starts on a ROLE_DIO_ALIGN boundary: the
	 * chunk can then be written with O_DIRECT straight from the slot. */
	if (hdr->type == WIRE_DATA && ROLE_SLOT_DATA_OFFSET + hdr->length <= (*slot)->size)
		return (*slot)->data + ROLE_SLOT_DATA_OFFSET;
	return (*slot)->data;
}

static void link_closed(struct conn *c)
{
	struct link *lk = link_of(c);
	struct replica *rp = lk->rp;

	if (c->close_error == -ENOBUFS) {
		rp->st.queue_overflows++; /* logged by conn.c */
		replica_set_error(rp, "the primary did not read what this replica sent");
	}
	/* Files not completely received are kept for resuming where their bytes can be
	 * made durable, else discarded; the primary sends them on or again. */
	while (lk->files) {
		infile_keep_or_discard(lk->files);
		infile_free(lk->files);
	}
	if (lk->established)
		log_log("disconnected from primary at %s", rp->cfg.upstream);
	if (rp->link == lk)
		rp->link = NULL;
	free(lk);
	if (!rp->stopping)
		rp->next_attempt_ms = clock_now_ms() + rp->backoff_ms;
}

static const struct conn_ops link_conn_ops = {
	.rx_buffer = link_rx_buffer,
	.rx_frame = link_rx_frame,
	.closed = link_closed,
};

/* ---- connecting ---- */

static void replica_backoff(struct replica *rp)
{
	/* Exponential backoff with jitter, so replicas do not reconnect in lockstep. */
	int jitter = rp->backoff_ms / 4 ? rand() % (rp->backoff_ms / 4) : 0;

	rp->next_attempt_ms = clock_now_ms() + rp->backoff_ms + jitter;
	rp->backoff_ms *= 2;
	if (rp->backoff_ms > rp->cfg.reconnect_max_ms)
		rp->backoff_ms = rp->cfg.reconnect_max_ms;
}

/*
 * What this replica holds that the primary may be about to send: every partial file, with
 * its durable length, and the newest stored files, each with its CRC.
 */
static void replica_inventory(struct replica *rp, struct msg_have *have)
{
	struct store *st = &rp->store;

	memset(have, 0, sizeof(*have));
	for (unsigned int idx = 0; idx < st->npartials && have->count < WIRE_MAX_HAVE; idx++) {
		struct msg_have_entry *e = &have->entries[have->count++];

		e->kind = WIRE_HAVE_PARTIAL;
		e->size = st->partials[idx].size;
		e->durable = st->partials[idx].durable;
		e->crc = st->partials[idx].crc;
		snprintf(e->name, sizeof(e->name), "%s", st->partials[idx].name);
	}
	for (unsigned int idx = 0; idx < st->nrecent && have->count < WIRE_MAX_HAVE; idx++) {
		struct msg_have_entry *e;

		/* Still there as it was stored (archive_cleanup_command may have removed it). */
		if (store_file_size(st, st->recent[idx].name) != (int64_t)st->recent[idx].size)
			continue;
		e = &have->entries[have->count++];
		e->kind = WIRE_HAVE_COMPLETE;
		e->size = e->durable = st->recent[idx].size;
		e->crc = st->recent[idx].crc;
		snprintf(e->name, sizeof(e->name), "%s", st->recent[idx].name);
	}
	if (st->npartials)
		log_log("offering the primary %u partial file(s) to resume", st->npartials);
}

static void replica_connected(struct ring_op *op, int res, uint32_t flags)
{
	struct replica *rp = container_of(op, struct replica, connect_op);
	struct msg_hello h = { 0 };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct link *lk;
	int len;

	(void)flags;
	rp->connecting = false;
	if (res < 0 || rp->stopping) {
		if (res < 0) {
			if (res == -ECANCELED)
				res = -ETIMEDOUT;
			log_log("could not connect to primary at %s: %s", rp->cfg.upstream,
				strerror(-res));
			replica_set_error(rp, "could not connect to %s: %s", rp->cfg.upstream,
					  strerror(-res));
		}
		close(rp->connect_fd);
		rp->connect_fd = -1;
		replica_backoff(rp);
		return;
	}
	lk = calloc(1, sizeof(*lk));
	if (!lk) {
		log_error("out of memory");
		close(rp->connect_fd);
		rp->connect_fd = -1;
		replica_backoff(rp);
		return;
	}
	lk->rp = rp;
	rp->link = lk;
	conn_tune_socket(rp->connect_fd);
	if (rp->tls.ctx) {
		int fd = rp->connect_fd;

		rp->connect_fd = -1;
		if (conn_init_tls(&lk->conn, rp->ring, fd, &link_conn_ops, lk, &rp->tls) < 0) {
			replica_backoff(rp);
			return; /* closing; link_closed() frees it */
		}
	} else {
		conn_init(&lk->conn, rp->ring, rp->connect_fd, &link_conn_ops, lk, 0);
	}
	rp->connect_fd = -1;
	rp->reconnects++;

	h.version = WIRE_VERSION;
	h.role = WIRE_ROLE_REPLICA;
	h.system_identifier = rp->store.system_identifier;
	h.page_magic = rp->store.page_magic;
	h.seg_size = rp->store.seg_size;
	h.block_size = rp->store.block_size;
	snprintf(h.arch, sizeof(h.arch), "%s", wire_arch());
	snprintf(h.node_name, sizeof(h.node_name), "%s", rp->cfg.node_name);
	len = msg_hello_encode(frame, sizeof(frame), &h);
	if (len < 0 || conn_send_frame(&lk->conn, frame, (uint32_t)len) < 0) {
		conn_close(&lk->conn, -EPROTO);
	} else {
		/* HAVE right behind HELLO: the primary reads it before it sends anything. */
		struct msg_have have;

		replica_inventory(rp, &have);
		len = msg_have_encode(frame, sizeof(frame), &have);
		if (len < 0 || conn_send_frame(&lk->conn, frame, (uint32_t)len) < 0)
			conn_close(&lk->conn, -EPROTO);
	}
	/* A refused handshake must not be retried in a tight loop. */
	replica_backoff(rp);
}

static void replica_connect_timeout_done(struct ring_op *op, int res, uint32_t flags)
{
	(void)op;
	(void)res;
	(void)flags;
}

static int replica_resolve(struct replica *rp)
{
	char host[CONFIG_MAX_ADDR], portstr[8];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	uint16_t port;
	int ret;

	if (config_split_address(rp->cfg.upstream, host, sizeof(host), &port) < 0) {
		log_error("invalid upstream address \"%s\"", rp->cfg.upstream);
		return -EINVAL;
	}
	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(host, portstr, &hints, &res);
	if (ret != 0) {
		log_warning("could not resolve upstream \"%s\": %s", rp->cfg.upstream,
			    gai_strerror(ret));
		return -EAGAIN;
	}
	memcpy(&rp->upstream_addr, res->ai_addr, res->ai_addrlen);
	rp->upstream_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void replica_connect(struct replica *rp)
{
	struct io_uring_sqe *sqe;

	if (rp->connecting || rp->link || rp->stopping)
		return;
	if (replica_resolve(rp) < 0) {
		replica_backoff(rp);
		return;
	}
	rp->connect_fd = socket(rp->upstream_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (rp->connect_fd < 0) {
		log_error("could not create socket: %s", strerror(errno));
		replica_backoff(rp);
		return;
	}
	rp->connect_op.cb = replica_connected;
	sqe = ring_sqe(rp->ring, &rp->connect_op);
	io_uring_prep_connect(sqe, rp->connect_fd, (struct sockaddr *)&rp->upstream_addr,
			      rp->upstream_len);
	sqe->flags |= IOSQE_IO_LINK;
	rp->connect_ts.tv_sec = rp->cfg.connect_timeout_ms / 1000;
	rp->connect_ts.tv_nsec = (long long)(rp->cfg.connect_timeout_ms % 1000) * 1000000;
	rp->connect_timeout_op.cb = replica_connect_timeout_done;
	sqe = ring_sqe(rp->ring, &rp->connect_timeout_op);
	io_uring_prep_link_timeout(sqe, &rp->connect_ts, 0);
	rp->connecting = true;
}

/* ---- control requests ---- */

/* Fill @n with the replica's state; the caller releases it with status_node_release(). */
static void replica_fill_status(void *state, struct status_node *n)
{
	struct replica *rp = state;
	struct status_peer *peer;
	struct link *lk = rp->link;

	*n = rp->st;
	n->role = "replica";
	snprintf(n->node_name, sizeof(n->node_name), "%s", rp->cfg.node_name);
	n->system_identifier = rp->store.system_identifier;
	snprintf(n->upstream, sizeof(n->upstream), "%s", rp->cfg.upstream);
	snprintf(n->archive_dir, sizeof(n->archive_dir), "%s", rp->cfg.archive_dir);
	n->peers = calloc(1, sizeof(*n->peers));
	n->npeers = n->peers ? 1 : 0;
	if (!n->peers)
		return;
	peer = n->peers;
	snprintf(peer->name, sizeof(peer->name), "%s", lk ? lk->primary_name : "");
	snprintf(peer->addr, sizeof(peer->addr), "%s", rp->cfg.upstream);
	peer->state = !lk ? (rp->connecting ? WALSHIP_PEER_CONNECTING : WALSHIP_PEER_DISCONNECTED) :
		      lk->conn.closing ? WALSHIP_PEER_DISCONNECTED :
		      lk->established  ? WALSHIP_PEER_STREAMING :
					 WALSHIP_PEER_HANDSHAKE;
	if (lk) {
		snprintf(peer->last_sent, sizeof(peer->last_sent), "%s", lk->last_received);
		snprintf(peer->last_acked, sizeof(peer->last_acked), "%s", lk->last_acked);
		peer->bytes_sent = lk->conn.stats.bytes_sent;
		peer->bytes_received = lk->conn.stats.bytes_received;
		peer->files_sent = lk->files_received;
		peer->files_acked = lk->files_acked;
		peer->zc_sends = lk->conn.stats.zc_sends;
		peer->zc_copied = lk->conn.stats.zc_copied;
		peer->copy_sends = lk->conn.stats.copy_sends;
		snprintf(peer->tls, sizeof(peer->tls), "%s", conn_tls_version(&lk->conn));
		snprintf(peer->ktls, sizeof(peer->ktls), "%s", conn_ktls_state(&lk->conn));
		for (struct infile *f = lk->files; f; f = f->next)
			peer->files_inflight++;
	}
	peer->errors = rp->errors;
	peer->reconnects = rp->reconnects ? rp->reconnects - 1 : 0;
	snprintf(peer->last_error, sizeof(peer->last_error), "%s", rp->last_error);
	status_derive(n, clock_now_ms());
}

static void replica_request(void *ctx, struct ctl_client *client, const struct ctl_request *req,
			    int fd)
{
	struct replica *rp = ctx;
	static const char not_primary[] =
		"this walshipd is a replica: WAL flows from primary to replica only";

	if (fd >= 0)
		close(fd);
	switch (req->op) {
	case CTL_STATUS:
		status_reply(client, replica_fill_status, rp, req->flags & CTL_F_JSON);
		return;
	case CTL_PUSH:
		log_warning("refused push of \"%s\": %s", req->name, not_primary);
		control_reply(client, CTL_ERR_ROLE, not_primary, sizeof(not_primary) - 1);
		return;
	default:
		control_reply(client, CTL_ERR_INVALID, "unknown request", 15);
	}
}

/* ---- role operations ---- */

static void *replica_start(const struct config *cfg, struct ring *r)
{
	struct replica *rp = calloc(1, sizeof(*rp));

	if (!rp) {
		log_error("out of memory");
		return NULL;
	}
	rp->cfg = *cfg;
	rp->ring = r;
	rp->connect_fd = -1;
	rp->backoff_ms = cfg->reconnect_min_ms;
	rp->st.started = time(NULL);
	srand((unsigned int)(time(NULL) ^ getpid()));
	if (cfg->tls) {
		if (tls_ctx_init(&rp->tls, false, cfg->tls_ca_file, cfg->tls_cert_file,
				 cfg->tls_key_file, cfg->ktls, cfg->zero_copy) < 0)
			goto out_free;
	} else {
		log_warning("tls = off: WAL travels between hosts in plaintext, and the primary is "
			    "not authenticated");
	}
	if (store_open(&rp->store, cfg->archive_dir) < 0)
		goto out_free;
	rp->seq = rp->store.max_seq; /* new names in .incoming never meet kept partials */
	if (control_start(&rp->control, r, cfg->socket_path, cfg->socket_group,
			  cfg->socket_permissions, replica_request, rp) < 0)
		goto out_store;
	if (rp->store.system_identifier)
		log_log("replica \"%s\" ready: archive \"%s\" holds system %" PRIu64,
			cfg->node_name, cfg->archive_dir, rp->store.system_identifier);
	else
		log_log("replica \"%s\" ready: archive \"%s\" is empty", cfg->node_name,
			cfg->archive_dir);
	replica_connect(rp);
	return rp;

out_store:
	store_close(&rp->store);
out_free:
	free(rp);
	return NULL;
}

/* Stopping: close the link once no complete file is still being made durable (files
 * still arriving are discarded: the primary sends them again), or the time is up. */
static void replica_drain(struct replica *rp)
{
	bool busy = false;

	if (!rp->link || rp->link->conn.closing)
		return;
	for (struct infile *f = rp->link->files; f && !busy; f = f->next)
		busy = f->end_received;
	if (busy && clock_now_ms() < rp->drain_deadline_ms)
		return;
	conn_close(&rp->link->conn, 0);
}

static void replica_pump(void *state)
{
	struct replica *rp = state;

	if (rp->stopping)
		replica_drain(rp);

	/* Receiving waits for a free slot; writes that completed may have freed some. */
	if (rp->link && rp->link->conn.rx_paused && rp->ring->slots_free)
		conn_rx_resume(&rp->link->conn);
}

static void replica_tick(void *state, int64_t now_ms)
{
	struct replica *rp = state;

	if (!rp->link && !rp->connecting && !rp->stopping && now_ms >= rp->next_attempt_ms)
		replica_connect(rp);
	if (rp->link)
		link_checkpoint_due(rp->link, now_ms);
	/* conn_keepalive() also closes a link whose ERROR the primary does not take. */
	if (rp->link && (rp->link->established || conn_failing(&rp->link->conn)) &&
	    conn_keepalive(&rp->link->conn, clock_now_ms(), rp->cfg.keepalive_interval_ms,
			   rp->cfg.keepalive_timeout_ms))
		replica_set_error(rp, "no data from the primary for longer than keepalive_timeout");
}

static void replica_drain(struct replica *rp);

static void replica_stop(void *state)
{
	struct replica *rp = state;

	/* Files already complete finish their fsync, rename and acknowledgement first. */
	rp->stopping = true;
	rp->drain_deadline_ms = clock_now_ms() + DRAIN_MS;
	control_stop(&rp->control);
	if (rp->connecting && rp->connect_fd >= 0)
		shutdown(rp->connect_fd, SHUT_RDWR);
	replica_drain(rp);
}

static bool replica_stopped(void *state)
{
	struct replica *rp = state;

	return !rp->link && !rp->connecting && rp->control.clients == 0;
}

static void replica_reload(void *state, const struct config *cfg)
{
	struct replica *rp = state;

	rp->cfg.reconnect_min_ms = cfg->reconnect_min_ms;
	rp->cfg.reconnect_max_ms = cfg->reconnect_max_ms;
	rp->cfg.keepalive_interval_ms = cfg->keepalive_interval_ms;
	rp->cfg.keepalive_timeout_ms = cfg->keepalive_timeout_ms;
	rp->cfg.checkpoint_interval_ms = cfg->checkpoint_interval_ms;
	rp->cfg.log_level = cfg->log_level;
}

static void replica_free(void *state)
{
	struct replica *rp = state;

	store_close(&rp->store);
	tls_ctx_free(&rp->tls);
	free(rp);
}

const struct role_ops replica_role = {
	.name = "replica",
	.start = replica_start,
	.pump = replica_pump,
	.tick = replica_tick,
	.stop = replica_stop,
	.stopped = replica_stopped,
	.reload = replica_reload,
	.status = replica_fill_status,
	.free = replica_free,
};
