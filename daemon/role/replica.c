// SPDX-License-Identifier: MIT
/*
 * The replica role: connects to `upstream`, receives WAL files and stores them durably
 * in `archive_dir` (durability rule 2), acknowledging each file only once it is there:
 *
 *   FILE_BEGIN  open archive_dir/.incoming/<name>.<seq> (O_EXCL)
 *   DATA        validate the chunk's pages in memory, WRITE_FIXED it from the slot it
 *               was received into (no copy), at its offset
 *   FILE_END    all writes done: fdatasync, close, rename to archive_dir/<name> with
 *               RENAME_NOREPLACE, fsync archive_dir, then ACK
 *
 * A name that already exists is the duplicate rule (durability rule 3): same content is
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
 *
 * This file holds the role and its link to the primary (connecting, the handshake, the
 * frames, status and control requests); replica_infile.c the incoming files, their
 * checkpoints and resume; replica_decide.c the decisions, as pure functions; the state
 * they share is in replica_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/node_name.h"
#include "common/textfile.h"
#include "control/control.h"
#include "net/conn.h"
#include "proto/codec.h"
#include "proto/hello.h"
#include "role/decide.h"
#include "role/replica_decide.h"
#include "role/replica_internal.h"
#include "role/role.h"
#include "serve/sendlimit.h"
#include "serve/slots.h"
#include "status/status.h"
#include "wal/name.h"
#include "wal/page.h"
#include "wal/store.h"

/* How long a stopping replica waits for complete files to be made durable and acked. */
#define DRAIN_MS 3000

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

/* See replica_internal.h. */
int link_refuse(struct link *lk, uint32_t code, const char *fmt, ...)
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

/* Tell the primary how far the standbys on pg_listen applied (APPLIED), once it answered
 * our HELLO (so it has our HAVE too). */
static void replica_send_applied(struct replica *rp)
{
	struct msg_applied m = { .timeline = rp->applied_tli, .apply_lsn = rp->applied_lsn };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	int len;

	if (!rp->link || !rp->link->established || rp->link->conn.closing || !m.apply_lsn)
		return;
	len = msg_applied_encode(frame, sizeof(frame), &m);
	if (len > 0)
		conn_send_frame(&rp->link->conn, frame, (uint32_t)len);
}

/* From the standbys on pg_listen and from the downstream replicas (relay): the furthest
 * goes upstream, on the newest timeline (msg_applied_newer()). */
static void replica_applied(void *arg, uint32_t tli, uint64_t lsn)
{
	struct replica *rp = arg;

	if (!msg_applied_newer(rp->applied_tli, rp->applied_lsn, tli, lsn))
		return;
	rp->applied_tli = tli;
	rp->applied_lsn = lsn;
	replica_send_applied(rp);
}

static int link_on_hello(struct link *lk, const uint8_t *payload, uint32_t len)
{
	struct replica *rp = lk->rp;
	struct msg_hello h;
	char why[512];
	int ret = msg_hello_decode(payload, len, &h), code;

	/* The same checks as the primary's, with the ERROR codes of docs/protocol.md. */
	if (ret < 0 && ret != -EPROTONOSUPPORT && ret != -EINVAL)
		return link_refuse(lk, WIRE_ERR_PROTOCOL, "malformed HELLO");
	code = hello_check_compatible(&h, WIRE_ROLE_REPLICA, &rp->store.id, why, sizeof(why));
	if (code)
		return link_refuse(lk, (uint32_t)code, "%s", why);
	if (conn_peer_cert_name(&lk->conn) && strcmp(conn_peer_cert_name(&lk->conn), h.node_name))
		return link_refuse(lk, WIRE_ERR_NAME,
				   "primary presents certificate name \"%s\" but node name \"%s\"",
				   conn_peer_cert_name(&lk->conn), h.node_name);
	/* Who the upstream must be (with TLS, its certificate's name is its node name,
	 * checked above): any other peer the CA signed is not taken for it. */
	if (rp->cfg.upstream_name[0] && strcmp(h.node_name, rp->cfg.upstream_name))
		return link_refuse(lk, WIRE_ERR_NAME,
				   "the upstream at %s is \"%s\", not \"%s\" (upstream_name)",
				   rp->cfg.upstream, h.node_name, rp->cfg.upstream_name);
	lk->established = true;
	snprintf(lk->primary_name, sizeof(lk->primary_name), "%s", h.node_name);
	lk->hello_ms = clock_now_ms();
	rp->backoff_ms = rp->cfg.reconnect_min_ms;
	log_log("connected to primary \"%s\" at %s", h.node_name, rp->cfg.upstream);
	replica_send_applied(rp);
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
	case WIRE_FILE_CANCEL:
		return link_on_file_cancel(lk, payload, hdr->length);
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

/* How long after the HELLO a link that received no file still counts as not taken. */
#define REPLICA_TAKEN_MS 2000

/* Whether @lk ended a handshake the primary did not complete: closed (by an ERROR it
 * sent, TOO_MANY past max_registered say, or without one) before any file began and
 * within REPLICA_TAKEN_MS of its HELLO.  A link that worked, whatever ends it later (an
 * ERROR CHECKSUM for a frame damaged in transit), is no refusal. */
static bool replica_link_refused(const struct link *lk)
{
	return lk->established && !lk->io_failed && lk->files_received == 0 &&
	       clock_now_ms() - lk->hello_ms < REPLICA_TAKEN_MS;
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
	link_files_release(lk);
	if (lk->established)
		log_log("disconnected from primary at %s", rp->cfg.upstream);
	if (lk->io_failed)
		rp->io_backoff_ms =
			io_backoff_next(rp->io_backoff_ms, IO_RETRY_MIN_MS, IO_RETRY_MAX_MS);
	if (rp->link == lk)
		rp->link = NULL;
	if (lk->established && !replica_link_refused(lk))
		rp->refused_streak = 0;
	if (!rp->stopping && replica_link_refused(lk)) {
		/* Refused after the HELLO (not registered: max_registered, the primary's
		 * spool) or closed before any file: a failed attempt, each in a row waiting
		 * twice as long as the one before, up to reconnect_max (going back to
		 * reconnect_min at each HELLO, the replica reconnected ten times a second
		 * for as long as the operator took to act). */
		int b = rp->cfg.reconnect_min_ms;

		for (unsigned int i = 0; i < rp->refused_streak && b < rp->cfg.reconnect_max_ms;
		     i++)
			b = replica_backoff_next(b, rp->cfg.reconnect_max_ms);
		rp->refused_streak++;
		rp->backoff_ms = b;
		rp->next_attempt_ms =
			clock_now_ms() + replica_backoff_delay(b, (unsigned int)rand());
		log_log("reconnecting in %" PRId64 " ms: the primary did not take this replica",
			rp->next_attempt_ms - clock_now_ms());
	} else if (!rp->stopping) {
		int wait_ms = lk->io_failed && rp->io_backoff_ms > rp->backoff_ms ?
				      rp->io_backoff_ms :
				      rp->backoff_ms;

		rp->next_attempt_ms = clock_now_ms() + wait_ms;
		if (lk->io_failed)
			log_log("reconnecting in %d ms: a file could not be stored here", wait_ms);
	}
	free(lk);
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
	rp->next_attempt_ms =
		clock_now_ms() + replica_backoff_delay(rp->backoff_ms, (unsigned int)rand());
	rp->backoff_ms = replica_backoff_next(rp->backoff_ms, rp->cfg.reconnect_max_ms);
}

/* Still there as it was stored (archive_cleanup_command may have removed it). */
static bool replica_still_stored(void *ctx, const struct store_recent *recent)
{
	return store_file_size(ctx, recent->name) == (int64_t)recent->size;
}

/*
 * What this replica holds that the primary may be about to send: every partial file, with
 * its durable length, and the newest stored files, each with its CRC.
 */
static void replica_inventory(struct replica *rp, struct msg_have *have)
{
	replica_offer(&rp->store, replica_still_stored, &rp->store, have);
	if (rp->store.npartials)
		log_log("offering the primary %u partial file(s) to resume", rp->store.npartials);
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
	lk->connected_ms = clock_now_ms();
	rp->link = lk;
	conn_tune_socket(rp->connect_fd, rp->cfg.keepalive_timeout_ms);
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
	conn_tag_peer(&lk->conn); /* the upstream it was configured with */
	rp->connect_fd = -1;
	rp->reconnects++;

	h.version = WIRE_VERSION;
	h.role = WIRE_ROLE_REPLICA;
	h.system_identifier = rp->store.id.system_identifier;
	h.page_magic = rp->store.id.page_magic;
	h.seg_size = rp->store.id.seg_size;
	h.block_size = rp->store.id.block_size;
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
	ring_reserve(rp->ring, 2); /* the connect and its timeout together */
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
	n->system_identifier = rp->store.id.system_identifier;
	n->set_aside = rp->store.set_aside; /* counted where it is done: store_set_aside() */
	snprintf(n->upstream, sizeof(n->upstream), "%s", rp->cfg.upstream);
	snprintf(n->archive_dir, sizeof(n->archive_dir), "%s", rp->cfg.archive_dir);
	n->peers = calloc(1, sizeof(*n->peers));
	n->npeers = n->peers ? 1 : 0;
	if (!n->peers)
		return;
	peer = n->peers;
	snprintf(peer->name, sizeof(peer->name), "%s", lk ? lk->primary_name : "");
	snprintf(peer->addr, sizeof(peer->addr), "%s", rp->cfg.upstream);
	peer->state = replica_peer_state(lk, rp->connecting);
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
	serve_fill_status(rp->serve, n);
	relay_fill_status(rp->relay, n);
	retain_fill_status(&rp->retain, n);
	status_derive(n, clock_now_ms());
}

/* `walship hold` and `walship release`: on the walsender endpoint's standbys. */
static void replica_standby_request(struct replica *rp, struct ctl_client *client,
				    const struct ctl_request *req)
{
	enum sendlimit_release how = SENDLIMIT_RELEASE_ALL;
	char app[CTL_MAX_NAME], msg[256];
	long long value = 0;
	int ret;

	if (!rp->serve) {
		control_reply_text(client, CTL_ERR_ROLE,
				   "pg_listen is not set: no standby is served");
		return;
	}
	snprintf(app, sizeof(app), "%s", req->name);
	if (req->op == CTL_STANDBY_RELEASE && (req->flags & (CTL_F_BEFORE | CTL_F_UPTO))) {
		char *space = strrchr(app, ' '), *end;

		if (!space) {
			control_reply_text(client, CTL_ERR_INVALID, "malformed release request");
			return;
		}
		*space = '\0';
		errno = 0;
		/* an LSN (--upto) is unsigned, all 64 bits of it (FFFFFFFF/FFFFFFFF too): carried
		 * in the int64_t as sendlimit_release() takes it back */
		if (req->flags & CTL_F_UPTO)
			value = (int64_t)strtoull(space + 1, &end, 10);
		else
			value = strtoll(space + 1, &end, 10);
		if (errno || *end || end == space + 1) {
			control_reply_text(client, CTL_ERR_INVALID, "malformed release request");
			return;
		}
		how = req->flags & CTL_F_BEFORE ? SENDLIMIT_RELEASE_BEFORE : SENDLIMIT_RELEASE_UPTO;
	}
	if (req->op == CTL_STANDBY_HOLD)
		ret = serve_hold(rp->serve, app, msg, sizeof(msg));
	else
		ret = serve_release(rp->serve, app, how, value, msg, sizeof(msg));
	control_reply_text(client, ret < 0 ? CTL_ERR_FAILED : CTL_OK, msg);
}

static void replica_request(void *ctx, struct ctl_client *client, const struct ctl_request *req,
			    const int *fds, unsigned int nfds)
{
	struct replica *rp = ctx;
	static const char not_primary[] =
		"this walshipd is a replica: WAL flows from primary to replica only";

	control_close_fds(fds, nfds);
	switch (req->op) {
	case CTL_STATUS:
		status_reply(client, replica_fill_status, rp, req->flags & CTL_F_JSON);
		return;
	case CTL_PUSH:
		log_warning("refused push of \"%s\": %s", req->name, not_primary);
		control_reply(client, CTL_ERR_ROLE, not_primary, sizeof(not_primary) - 1);
		return;
	case CTL_STANDBY_HOLD:
	case CTL_STANDBY_RELEASE:
		replica_standby_request(rp, client, req);
		return;
	case CTL_REPLICA_DROP: {
		char msg[256];
		int ret = relay_drop(rp->relay, req->name, msg, sizeof(msg));

		control_reply_text(client,
				   ret == -ENOENT ? CTL_ERR_INVALID :
				   ret < 0	  ? CTL_ERR_FAILED :
						    CTL_OK,
				   msg);
		return;
	}
	default:
		control_reply_text(client, CTL_ERR_INVALID, "unknown request");
	}
}

/* ---- role operations ---- */

/*
 * What retention must keep (role/replica_retain.h): the standbys' floor, and every file
 * still being received or whose ACK has not been queued yet (from its FILE_BEGIN to its
 * ACK it is on the link's list), so that nothing is removed that the primary has not
 * been told is stored.
 */
static uint64_t replica_retain_floor(void *ctx)
{
	struct replica *rp = ctx;
	uint64_t floor = serve_retention_floor(rp->serve), relayed;
	uint32_t seg_size = rp->store.id.seg_size;
	uint64_t segno;

	relayed = relay_retention_floor(rp->relay); /* downstream replicas */
	if (relayed < floor)
		floor = relayed;
	for (struct infile *f = rp->link ? rp->link->files : NULL; f; f = f->next) {
		if (f->wn.kind == WAL_FILE_HISTORY || !seg_size ||
		    wal_name_segno(&f->wn, seg_size, &segno) < 0)
			continue;
		if (segno * seg_size < floor)
			floor = segno * seg_size;
	}
	return floor;
}

/* Retention removed WAL files, @name the newest: the standbys on pg_listen asking for
 * one of them are answered that it was removed (a missing segment may otherwise be one
 * still to come, and be waited for). */
static void replica_retain_removed(void *ctx, const char *name)
{
	struct replica *rp = ctx;

	serve_wal_removed(rp->serve, name);
}

/* A kept partial left the store's table (removed, set aside: its segment was stored
 * as NAME.partial at a timeline switch, or sent again from its start, or more were kept
 * than the table holds): standbys and downstream replicas stop following it (the latter
 * with FILE_CANCEL). */
static void replica_partial_gone(void *arg, const char *name, const char *tmp_name)
{
	struct replica *rp = arg;

	serve_wal_dropped(rp->serve, name, tmp_name);
	relay_wal_dropped(rp->relay, name, tmp_name);
}

/*
 * What only a running walsender endpoint (pg_listen) or relay keeps from retention: the
 * permanent slots and holds, the downstream replicas' floors.  Left in archive_dir with
 * the key off, they keep nothing, as PostgreSQL's slots would with max_replication_slots
 * = 0 (where it refuses to start): said at start, for the operator to drop them or turn
 * the key back on.
 */
static void replica_warn_unkept(const struct replica *rp)
{
	static const struct {
		const char *file, *what, *key;
		bool relay;
	} kept[] = {
		{ SERVE_SLOTS_FILE, "replication slots", "pg_listen", false },
		{ SENDLIMIT_HOLDS_FILE, "standby holds", "pg_listen", false },
		{ RELAY_REGISTRY_FILE, "downstream replicas", "relay", true },
	};

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		char path[64];
		struct stat sb;

		if (kept[i].relay ? rp->relay != NULL : rp->serve != NULL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", STORE_STATE_DIR, kept[i].file);
		if (fstatat(rp->store.dir_fd, path, &sb, 0) == 0 && sb.st_size > 0)
			log_warning("\"%s/%s\" lists %s, but %s is off: retention keeps no WAL "
				    "for them",
				    rp->store.path, path, kept[i].what, kept[i].key);
	}
}

static void *replica_start(const struct config *cfg, struct ring *r, bool *config_error)
{
	struct replica *rp = calloc(1, sizeof(*rp));

	if (!rp) {
		log_error("out of memory");
		return NULL;
	}
	rp->cfg = *cfg;
	rp->ring = r;
	rp->connect_fd = -1;
	spare_init(rp);
	rp->backoff_ms = cfg->reconnect_min_ms;
	rp->st.started = time(NULL);
	srand((unsigned int)(time(NULL) ^ getpid()));
	if (cfg->tls) {
		int ret = tls_ctx_init(&rp->tls, false, cfg->tls_ca_file, cfg->tls_cert_file,
				       cfg->tls_key_file, cfg->ktls, cfg->zero_copy);

		if (ret < 0) {
			*config_error = textfile_error_lasts(ret);
			goto out_free;
		}
	} else {
		log_warning("tls = off: WAL travels between hosts in plaintext, and the primary is "
			    "not authenticated");
	}
	if (store_open(&rp->store, cfg->archive_dir) < 0)
		goto out_free;
	rp->seq = rp->store.max_seq; /* new names in .incoming never meet kept partials */
	if (worker_start(&rp->worker, r) < 0) /* logs */
		goto out_store;
	rp->worker_started = true;
	/* A kept partial retired (evicted, replaced, its segment stored as NAME.partial):
	 * the standbys and downstream replicas that follow it are told, whichever of the two
	 * runs (a standby on pg_listen waiting for it would wait for ever otherwise). */
	rp->store.partial_gone = replica_partial_gone;
	rp->store.partial_gone_arg = rp;
	if (cfg->pg_listen[0]) {
		rp->serve = serve_start(cfg, r, &rp->store, config_error); /* logs */
		if (!rp->serve)
			goto out_worker;
		serve_on_applied(rp->serve, replica_applied, rp);
	}
	if (cfg->relay) {
		rp->relay = relay_start(cfg, r, &rp->store, config_error); /* logs */
		if (!rp->relay)
			goto out_serve;
		relay_on_applied(rp->relay, replica_applied, rp);
	}
	replica_warn_unkept(rp);
	if (retain_start(&rp->retain, r, &rp->cfg, &rp->store, replica_retain_floor,
			 replica_retain_removed, rp) < 0)
		goto out_relay;
	if (control_start(&rp->control, r, cfg->socket_path, cfg->socket_group,
			  cfg->socket_permissions, replica_request, NULL, rp) < 0)
		goto out_retain;
	if (rp->store.id.system_identifier)
		log_log("replica \"%s\" ready: archive \"%s\" holds system %" PRIu64,
			cfg->node_name, cfg->archive_dir, rp->store.id.system_identifier);
	else
		log_log("replica \"%s\" ready: archive \"%s\" is empty", cfg->node_name,
			cfg->archive_dir);
	replica_connect(rp);
	return rp;

out_retain:
	retain_free(&rp->retain);
out_relay:
	relay_free(rp->relay); /* nothing in flight yet: the ring has not run */
out_serve:
	serve_free(rp->serve); /* nothing in flight yet: the ring has not run */
out_worker:
	worker_stop(&rp->worker);
out_store:
	store_close(&rp->store);
out_free:
	free(rp);
	return NULL;
}

/* Stopping: close the link once no complete file is still being made durable (files
 * still arriving are discarded: the primary sends them again) and what was queued to send
 * has gone (the last files' ACKs: closed before, they failed, and the primary counted
 * those files on this replica only once it reconnected), or the time is up. */
static void replica_drain(struct replica *rp)
{
	bool busy = false;

	if (!rp->link || rp->link->conn.closing)
		return;
	for (struct infile *f = rp->link->files; f && !busy; f = f->next)
		busy = f->end_received;
	busy = busy || conn_tx_backlog(&rp->link->conn) > 0;
	if (busy && clock_now_ms() < rp->drain_deadline_ms)
		return;
	conn_close(&rp->link->conn, 0);
}

static void replica_pump(void *state)
{
	struct replica *rp = state;

	if (rp->stopping)
		replica_drain(rp);

	relay_pump(rp->relay);
	if (rp->link && rp->link->io_failed)
		conn_close(&rp->link->conn, -EIO); /* infile_maybe_finish() asked for it */
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
	serve_tick(rp->serve, now_ms);
	relay_tick(rp->relay, now_ms);
	retain_tick(&rp->retain, rp->st.files_stored, now_ms);
	/* An upstream that took the connection but does not answer (a walshipd frozen, a
	 * listener that is not walshipd): its handshake has connect_timeout, as a primary
	 * gives a replica's. */
	if (rp->link && !rp->link->established && !rp->link->conn.closing &&
	    now_ms - rp->link->connected_ms > rp->cfg.connect_timeout_ms) {
		log_warning("closing connection to primary at %s: no handshake within %d ms",
			    rp->cfg.upstream, rp->cfg.connect_timeout_ms);
		replica_set_error(rp, "no handshake from the primary within connect_timeout");
		conn_close(&rp->link->conn, -ETIMEDOUT);
	}
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
	serve_stop(rp->serve);
	relay_stop(rp->relay);
	retain_stop(&rp->retain);
	if (rp->connecting && rp->connect_fd >= 0)
		shutdown(rp->connect_fd, SHUT_RDWR);
	replica_drain(rp);
}

static bool replica_stopped(void *state)
{
	struct replica *rp = state;

	return !rp->link && !rp->connecting && rp->control.clients == 0 &&
	       serve_stopped(rp->serve) && relay_stopped(rp->relay) &&
	       retain_stopped(&rp->retain) && !spare_busy(rp) && worker_pending(&rp->worker) == 0;
}

static void replica_reload(void *state, const struct config *cfg)
{
	struct replica *rp = state;
	int64_t latest;

	/* A wait scheduled with a longer reconnect_max is cut to the new one (not below the
	 * wait after a failed store, io_backoff_ms); any other reload keeps its jitter. */
	if (cfg->reconnect_max_ms < rp->cfg.reconnect_max_ms) {
		latest = clock_now_ms() + (rp->io_backoff_ms > cfg->reconnect_max_ms ?
						   rp->io_backoff_ms :
						   cfg->reconnect_max_ms);
		if (rp->next_attempt_ms > latest)
			rp->next_attempt_ms = latest;
	}
	rp->cfg.reconnect_min_ms = cfg->reconnect_min_ms;
	rp->cfg.reconnect_max_ms = cfg->reconnect_max_ms;
	if (rp->backoff_ms > cfg->reconnect_max_ms)
		rp->backoff_ms = cfg->reconnect_max_ms;
	if (rp->backoff_ms < cfg->reconnect_min_ms)
		rp->backoff_ms = cfg->reconnect_min_ms;
	rp->cfg.keepalive_interval_ms = cfg->keepalive_interval_ms;
	if (rp->link && cfg->keepalive_timeout_ms != rp->cfg.keepalive_timeout_ms)
		conn_set_user_timeout(rp->link->conn.fd, cfg->keepalive_timeout_ms);
	rp->cfg.keepalive_timeout_ms = cfg->keepalive_timeout_ms;
	rp->cfg.checkpoint_interval_ms = cfg->checkpoint_interval_ms;
	rp->cfg.retain_time_ms = cfg->retain_time_ms;
	rp->cfg.retain_size_mb = cfg->retain_size_mb;
	rp->cfg.log_level = cfg->log_level;
	serve_reload(rp->serve, cfg);
	relay_reload(rp->relay, cfg);
}

static void replica_free(void *state)
{
	struct replica *rp = state;

	retain_free(&rp->retain); /* the worker's thread uses the store */
	if (rp->worker_started)
		worker_stop(&rp->worker); /* its thread, too */
	free(rp->identity_job); /* finished after the event loop stopped: done() was not called */
	serve_free(rp->serve);
	relay_free(rp->relay);
	stream_images_free(rp);
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
