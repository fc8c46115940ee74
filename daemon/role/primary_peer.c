// SPDX-License-Identifier: MIT
/*
 * The primary's replica connections: the listening socket and its accept loop (bounded
 * handshakes in progress), the handshake (docs/protocol.md, section 1: HELLO checked and
 * answered, a name already connected probed with a PING, HAVE, then the PING whose PONG
 * registers the replica), the frames a streaming replica sends (ACK, PING, PONG, ERROR)
 * and the end of a connection.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/node_name.h"
#include "net/listen.h"
#include "proto/hello.h"
#include "role/primary_int.h"
#include "wal/page.h"

static const struct conn_ops peer_conn_ops;
static int peer_hello_accept(struct peer *peer);
static int peer_have_done(struct peer *peer);

static struct peer *peer_of(struct conn *c)
{
	return (struct peer *)c;
}

/* ---- replica connections ---- */

void peer_set_error(struct peer *peer, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(peer->last_error, sizeof(peer->last_error), fmt, ap);
	va_end(ap);
	peer->errors++;
}

/* Send ERROR and close. */
static int peer_refuse(struct peer *peer, uint32_t code, const char *fmt, ...) attr_printf(3, 4);

static int peer_refuse(struct peer *peer, uint32_t code, const char *fmt, ...)
{
	struct msg_error me = { .code = code };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	va_list ap;
	int len;

	va_start(ap, fmt);
	vsnprintf(me.message, sizeof(me.message), fmt, ap);
	va_end(ap);
	log_log("refusing replica connection from %s: %s", peer->conn.peer_addr, me.message);
	peer->pr->st.connections_refused++;
	len = msg_error_encode(frame, sizeof(frame), &me);
	if (len < 0 || conn_send_frame(&peer->conn, frame, (uint32_t)len) < 0)
		return -EPROTO;
	/* Let the ERROR go out before the socket is shut down (peer_tx_progress). */
	peer->state = PEER_HANDSHAKE;
	peer->refused = true;
	return 0;
}

/* The certificate's name is @in's node name (TLS), and the access rules (hba_file: first
 * match wins, none is a refusal) admit it.  Returns 0 (refused: peer->refused set), or
 * -errno. */
static int peer_admit(struct peer *peer, const struct msg_hello *in)
{
	struct primary *pr = peer->pr;
	char why[512];

	if (conn_peer_cert_name(&peer->conn) &&
	    strcmp(conn_peer_cert_name(&peer->conn), in->node_name) != 0)
		return peer_refuse(peer, WIRE_ERR_NAME,
				   "certificate name \"%s\" does not match node name \"%s\"",
				   conn_peer_cert_name(&peer->conn), in->node_name);
	if (pr->hba) {
		struct hba_request req = {
			.role = HBA_ROLE_REPLICA,
			.node_name = in->node_name,
			.cert_name = conn_peer_cert_name(&peer->conn),
			.addr = (const struct sockaddr *)&peer->conn.peer_sa,
		};
		struct hba_match match;

		if (hba_match(pr->hba, &req, &match) != HBA_ALLOW) {
			hba_format_refusal(pr->hba, &req, &match, why, sizeof(why));
			pr->st.hba_refused++;
			return peer_refuse(peer, WIRE_ERR_ACCESS, "%s", why);
		}
	}
	return 0;
}

static int peer_on_hello(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct primary *pr = peer->pr;
	struct msg_hello in;
	char why[512];
	int ret, code;

	ret = msg_hello_decode(payload, len, &in);
	if (ret < 0 && ret != -EPROTONOSUPPORT && ret != -EINVAL) {
		log_log("malformed HELLO from %s", peer->conn.peer_addr);
		return ret;
	}
	code = hello_check_compatible(&in, WIRE_ROLE_PRIMARY, &pr->id, why, sizeof(why));
	/* Who the peer is, and whether the access rules admit it, before what it holds: an
	 * INCOMPATIBLE names this primary's system identifier and WAL format, which a peer
	 * the rules refuse is not to learn.  (A HELLO not decoded whole, of another
	 * version, or naming no valid node is refused for that alone.) */
	if (ret == 0 && node_name_valid(in.node_name)) {
		ret = peer_admit(peer, &in);
		if (ret || peer->refused)
			return ret;
	}
	if (code)
		return peer_refuse(peer, (uint32_t)code, "%s", why);
	snprintf(peer->name, sizeof(peer->name), "%s", in.node_name);
	return peer_check_name(peer);
}

/* Queue a PING with a fresh token of ours in *@token.  Returns 0 or -errno. */
static int peer_ping(struct peer *peer, uint64_t *token)
{
	struct msg_ping ping = { .token = PEER_TOKEN_BASE + ++peer->pr->next_token };
	uint8_t frame[WIRE_HEADER_SIZE + 8];
	int ret = peer_queue_small(peer, msg_ping_encode(frame, sizeof(frame), WIRE_PING, &ping),
				   frame);

	if (!ret)
		*token = ping.token;
	return ret;
}

/* The connection, other than @peer, of replica @name past its HELLO, or NULL. */
static struct peer *primary_named(struct primary *pr, const char *name, const struct peer *peer)
{
	for (struct peer *other = pr->peers; other; other = other->next)
		if (other != peer && other->state >= PEER_INVENTORY && !other->conn.closing &&
		    !other->refused && !strcmp(other->name, name))
			return other;
	return NULL;
}

/*
 * @peer's HELLO is valid.  If a connection of that name is up, it may be the replica's
 * own half-open one after a network cut or a restart, or the replica alive and @peer an
 * impostor: that connection is sent a PING.  Answered within NAME_PROBE_MS (or any frame
 * received on it meanwhile, or what was sent on it acknowledged), @peer is refused with ERROR NAME (peer_on_pong,
 * primary_probes_expire); otherwise that connection is closed and @peer
 * goes on (primary_tick, peer_closed, primary_pump).  Returns 0 or -errno.
 */
int peer_check_name(struct peer *peer)
{
	struct peer *rival = primary_named(peer->pr, peer->name, peer);

	if (!rival)
		return peer_hello_accept(peer);
	if (!rival->probe_token) {
		int ret = peer_ping(rival, &rival->probe_token);

		if (ret < 0)
			return ret;
		rival->probe_deadline_ms = clock_now_ms() + NAME_PROBE_MS;
		rival->probe_rx_bytes = rival->conn.stats.bytes_received;
		rival->probe_sent_ms = clock_now_ms();
		log_log("replica \"%s\" connects from %s while connected from %s; checking that "
			"connection",
			peer->name, peer->conn.peer_addr, rival->conn.peer_addr);
	}
	peer->rival = rival;
	peer->state = PEER_NAME_WAIT;
	return 0;
}

/* @peer's HELLO passed every check: answer it, if there is room (max_senders). */
static int peer_hello_accept(struct peer *peer)
{
	struct primary *pr = peer->pr;
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct msg_hello out = { 0 };
	unsigned int past_hello = 0;
	int ret;

	/* Connections still in the handshake do not count: they cannot lock replicas out. */
	for (struct peer *other = pr->peers; other; other = other->next)
		if (other != peer && other->state >= PEER_INVENTORY && !other->conn.closing &&
		    !other->refused)
			past_hello++;
	if (past_hello >= (unsigned int)pr->cfg.max_senders)
		return peer_refuse(peer, WIRE_ERR_TOO_MANY,
				   "too many replicas connected (max_senders = %d)",
				   pr->cfg.max_senders);
	/* Admitted (certificate, access rules, max_senders): its sends are measured per
	 * host from this answer on. */
	conn_tag_peer(&peer->conn);
	out.version = WIRE_VERSION;
	out.role = WIRE_ROLE_PRIMARY;
	out.system_identifier = pr->id.system_identifier;
	out.page_magic = pr->id.page_magic;
	out.seg_size = pr->id.seg_size;
	out.block_size = pr->id.block_size;
	snprintf(out.arch, sizeof(out.arch), "%s", wire_arch());
	snprintf(out.node_name, sizeof(out.node_name), "%s", pr->cfg.node_name);
	ret = peer_queue_small(peer, msg_hello_encode(frame, sizeof(frame), &out), frame);
	if (ret < 0)
		return ret;
	peer->state = PEER_INVENTORY; /* HAVE follows the replica's HELLO */
	if (peer->have_early)
		return peer_have_done(peer);
	return 0;
}

/* @e's segment number when it is a WAL segment of @seg_size bytes (0: any size). */
static bool have_segment(const struct msg_have_entry *e, uint64_t seg_size, uint64_t *segno,
			 uint32_t *tli)
{
	struct wal_name wn;

	if (wal_name_parse(e->name, &wn) < 0 || wn.kind != WAL_FILE_SEGMENT ||
	    e->size > UINT32_MAX || (seg_size && e->size != seg_size) ||
	    wal_name_segno(&wn, (uint32_t)e->size, segno) < 0)
		return false;
	*tli = wn.timeline;
	return true;
}

/*
 * Where the WAL segments of @peer's HAVE end without a gap, on the newest timeline it
 * lists (another timeline's segments of the same numbers hold other WAL past its fork):
 * from the oldest one it lists (its newest files: nothing older is known) on, each next
 * segment whole, then a partial's durable bytes.  A replica that stored a later segment
 * before an earlier one (a backlog is sent newest first) lists the later one and lacks
 * the earlier.
 */
static void peer_have_end(struct peer *peer)
{
	uint64_t lo = UINT64_MAX, seg_size = 0, segno, end;
	uint32_t tli = 0, newest = 0;
	bool more = true;

	peer->have_end = 0;
	peer->have_tli = 0;
	for (uint32_t i = 0; i < peer->have.count; i++)
		if (have_segment(&peer->have.entries[i], seg_size, &segno, &tli)) {
			seg_size = peer->have.entries[i].size;
			if (tli > newest)
				newest = tli;
		}
	for (uint32_t i = 0; i < peer->have.count; i++)
		if (have_segment(&peer->have.entries[i], seg_size, &segno, &tli) && tli == newest &&
		    segno < lo)
			lo = segno;
	if (!seg_size)
		return;
	end = lo * seg_size;
	while (more) {
		more = false;
		for (uint32_t i = 0; i < peer->have.count; i++) {
			const struct msg_have_entry *e = &peer->have.entries[i];

			if (have_segment(e, seg_size, &segno, &tli) && tli == newest &&
			    segno * seg_size == end) {
				end += e->durable;
				more = e->durable == seg_size; /* a partial ends it */
				break;
			}
		}
	}
	if (end > lo * seg_size) {
		peer->have_end = end;
		peer->have_tli = newest;
	}
}

/* The replica's inventory: the handshake completes with the answer to a PING. */
static int peer_on_have(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	int ret = msg_have_decode(payload, len, &peer->have);

	if (ret < 0) {
		log_log("malformed HAVE from replica \"%s\"", peer->name);
		return ret;
	}
	peer_have_end(peer);
	if (peer->state == PEER_NAME_WAIT) {
		peer->have_early = true; /* taken once its name is settled */
		return 0;
	}
	return peer_have_done(peer);
}

static int peer_have_done(struct peer *peer)
{
	peer->have_early = false;
	peer->state = PEER_CONFIRM;
	return peer_ping(peer, &peer->confirm_token);
}

/* Whether @peer's HAVE lists @p's file whole, at @p's size. */
static bool peer_have_whole(const struct peer *peer, const struct push *p)
{
	for (uint32_t i = 0; i < peer->have.count; i++) {
		const struct msg_have_entry *e = &peer->have.entries[i];

		if (!strcmp(e->name, p->name))
			return e->size == p->size && e->durable == e->size;
	}
	return false;
}

void primary_take_back_acks(struct primary *pr, const char *name, const struct peer *returning)
{
	for (struct push *p = pr->pushes, *next; p; p = next) {
		p->refs++; /* push_unacked() may fail it (no memory for the spool's claim) */
		if (push_waiting(p) && !p->from_spool && push_acked_by(p, name) &&
		    !(returning && peer_have_whole(returning, p))) {
			/* (its inventory lists its STORE_MAX_RECENT newest files with a CRC:
			 * one it holds may be missing from it, and is then answered
			 * DUPLICATE) */
			if (returning)
				log_log("replica \"%s\" does not list \"%s\", which it "
					"acknowledged, among the files it holds: sent to it again, "
					"it counts again once stored",
					name, p->name);
			push_unacked(p, name);
		}
		next = p->next;
		push_unref(p);
	}
}

/*
 * The handshake is complete: register the replica (bounded by max_registered) and stream.
 * Returns 0 or -errno.
 */
static int peer_register(struct peer *peer)
{
	struct primary *pr = peer->pr;
	bool newcomer;
	int ret;

	if (!strcmp(pr->dropping, peer->name))
		return peer_refuse(peer, WIRE_ERR_TOO_MANY,
				   "replica \"%s\" is being dropped (walship replica drop); it "
				   "registers again once that is done",
				   peer->name);
	/* Its folder in the spool removed by hand while it was away: dropped first (its
	 * held and lost counts were of the folder gone), then registered anew below. */
	primary_registration_gone(pr, peer->name);
	if (primary_registered_index(pr, peer->name) < 0 &&
	    pr->nregistered >= pr->cfg.max_registered)
		return peer_refuse(
			peer, WIRE_ERR_TOO_MANY,
			"replica \"%s\" cannot be registered: %d replicas are registered "
			"(max_registered = %d); \"walship replica drop\" one that is gone",
			peer->name, pr->nregistered, pr->cfg.max_registered);
	peer->state = PEER_STREAMING;
	peer->connected_since = time(NULL);
	peer->streaming_since_ms = clock_now_ms();
	log_log("replica \"%s\" connected from %s", peer->name, peer->conn.peer_addr);
	primary_away_back(pr, peer->name); /* (where it stood when it left is out of date) */

	/* From its first connection on, the spool holds WAL for it (durability rule 1); a
	 * relay's store holds it, and the relay records what the replica still needs. */
	/* New to the list, not only to the spool: a registration whose reload failed made
	 * its folder, and it is sent what a newcomer is (the stream's history) when it
	 * comes back. */
	newcomer = !pr->relay && primary_registered_index(pr, peer->name) < 0;
	ret = pr->relay ? relay_register(peer) : spool_register(&pr->spool, peer->name);
	if (ret < 0) /* (logged) told, so that its log says why it is not taken */
		return peer_refuse(peer, WIRE_ERR_TOO_MANY,
				   "replica \"%s\" cannot be registered now: %s (the primary's log "
				   "says more); it tries again",
				   peer->name, strerror(-ret));
	if (newcomer)
		log_log("replica \"%s\" registered: the spool holds WAL for it from now on",
			peer->name);
	/* Also when its folder was there already but the list lacks it (a registration
	 * whose fsync or reload failed before; rare, so the fsync on the event loop):
	 * pushes hold WAL only for the listed. */
	if (!pr->relay && primary_registered_index(pr, peer->name) < 0 &&
	    ((ret == 0 && spool_sync_registered(&pr->spool) < 0) ||
	     primary_load_registered(pr) < 0))
		return peer_refuse(peer, WIRE_ERR_TOO_MANY,
				   "replica \"%s\" cannot be registered now: the spool's list of "
				   "registered replicas could not be read (the primary's log says "
				   "why); it tries again",
				   peer->name);
	primary_take_back_acks(pr, peer->name, peer);
	push_recent_returning(pr, peer);
	ret = peer_load_backlog(peer);
	if (ret < 0)
		return ret;
	if (ret)
		log_log("replica \"%s\" catches up on %d held file(s), from %s", peer->name, ret,
			peer->backlog[0]);

	/* Files waiting for acknowledgements that the spool holds already: held for it too
	 * (a claim of the spool's copy, answered once durable), or the last acknowledgement
	 * of another replica would release the copy and answer the push while this one lacks
	 * the file, with nothing held for it. */
	for (struct push *p = pr->relay ? NULL : pr->pushes, *next; p; p = next) {
		p->refs++; /* the reclaim may fail it (no memory for the spool's claim) */
		if (push_waiting(p))
			push_spool_reclaim(p);
		next = p->next;
		push_unref(p);
	}
	/* Files waiting for acknowledgements go to the newcomer too (new ones first: the
	 * held backlog follows in WAL order); a relay's growing segment follows its backlog. */
	peer_add_pending(peer);
	if (pr->relay) {
		/* Its refusals of the growing segments were of its last connection: its archive
		 * may be repaired since (a stray set aside), and it is offered them again, as
		 * the files of its backlog are. */
		push_forget_refusals(pr, peer->name);
		relay_peer_progress(peer);
	}
	if (newcomer)
		primary_stream_new_replica(pr, peer->name);
	peer_fill(peer);
	primary_stream_peer_ready(pr);
	return 0;
}

/* A PONG: it completes the handshake, or proves alive a connection whose name was
 * announced by another one, which is then refused. */
/* @peer, whose name a newcomer announced, is alive: the newcomers waiting on it are
 * refused. */
static void peer_probe_answered(struct peer *peer)
{
	struct peer *other, *next;

	peer->probe_token = 0;
	for (other = peer->pr->peers; other; other = next) {
		next = other->next; /* conn_close() may free it */
		if (other->rival != peer || other->state != PEER_NAME_WAIT)
			continue;
		other->rival = NULL;
		if (peer_refuse(other, WIRE_ERR_NAME, "replica \"%s\" is already connected from %s",
				peer->name, peer->conn.peer_addr) < 0)
			conn_close(&other->conn, -EPROTO);
	}
}

static int peer_on_pong(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct msg_ping pong;

	if (msg_ping_decode(payload, len, &pong) < 0)
		return -EPROTO;
	if (peer->probe_token && pong.token == peer->probe_token)
		peer_probe_answered(peer);
	if (peer->state == PEER_CONFIRM && pong.token == peer->confirm_token)
		return peer_register(peer);
	return 0;
}

static int peer_rx_frame(struct conn *c, const struct frame_header *hdr, uint8_t *payload,
			 struct ring_slot *slot)
{
	struct peer *peer = peer_of(c);

	if (slot)
		ring_slot_put(c->ring, slot); /* replicas send no DATA */
	if (peer->refused)
		return 0; /* waiting for our ERROR to go out */
	/* An ERROR in any state: the replica says why it closes (it refused our HELLO, say:
	 * another system, a name its upstream_name does not take), logged as such rather
	 * than answered as a frame out of place. */
	if (hdr->type == WIRE_ERROR && peer->state != PEER_STREAMING) {
		struct msg_error me;

		if (msg_error_decode(payload, hdr->length, &me) < 0)
			return -ECONNRESET;
		/* Before its HELLO the peer is nobody the rules admitted: its code only, not
		 * its text (which could forge lines of our log). */
		if (peer->state == PEER_HANDSHAKE) {
			log_log("the peer at %s sent ERROR %s before its HELLO", c->peer_addr,
				wire_error_name(me.code));
			return -ECONNRESET;
		}
		log_log("replica \"%s\" reported an error: %s", peer->name, me.message);
		peer_set_error(peer, "%s", me.message);
		return -ECONNRESET;
	}
	if (peer->state == PEER_HANDSHAKE) {
		if (hdr->type != WIRE_HELLO) {
			log_log("expected HELLO from %s, got %s", c->peer_addr,
				wire_type_name(hdr->type));
			return -EPROTO;
		}
		return peer_on_hello(peer, payload, hdr->length);
	}
	if (peer->state == PEER_INVENTORY || peer->state == PEER_NAME_WAIT) {
		if (hdr->type != WIRE_HAVE || peer->have_early) {
			log_log("expected HAVE from replica \"%s\", got %s", peer->name,
				wire_type_name(hdr->type));
			return -EPROTO;
		}
		return peer_on_have(peer, payload, hdr->length);
	}
	switch (hdr->type) {
	case WIRE_ACK:
		return peer_on_ack(peer, payload, hdr->length);
	case WIRE_PROGRESS: {
		struct msg_progress pg;

		/* Sent before the replica read our FILE_CANCEL of that file: nothing to count. */
		if (msg_progress_decode(payload, hdr->length, &pg) == 0 &&
		    peer_cancelled(peer, pg.file_id))
			return 0;
		return peer_on_progress(peer, payload, hdr->length);
	}
	case WIRE_APPLIED: {
		int ret = peer_on_applied(peer, payload, hdr->length);

		if (ret == 0 && peer->pr->relay)
			relay_peer_applied(peer, payload, hdr->length);
		return ret;
	}
	case WIRE_PING: {
		struct msg_ping ping;
		uint8_t frame[WIRE_HEADER_SIZE + 8];

		if (msg_ping_decode(payload, hdr->length, &ping) < 0)
			return -EPROTO;
		return peer_queue_small(
			peer, msg_ping_encode(frame, sizeof(frame), WIRE_PONG, &ping), frame);
	}
	case WIRE_PONG:
		return peer_on_pong(peer, payload, hdr->length);
	case WIRE_ERROR: {
		struct msg_error me;

		if (msg_error_decode(payload, hdr->length, &me) == 0) {
			log_log("replica \"%s\" reported an error: %s", peer->name, me.message);
			peer_set_error(peer, "%s", me.message);
		}
		return -ECONNRESET;
	}
	default:
		log_log("unexpected %s frame from replica \"%s\"", wire_type_name(hdr->type),
			peer->name);
		peer_set_error(peer, "protocol violation: unexpected %s frame",
			       wire_type_name(hdr->type));
		return -EPROTO;
	}
}

static uint8_t *peer_rx_buffer(struct conn *c, const struct frame_header *hdr,
			       struct ring_slot **slot)
{
	/* Only DATA frames can be larger than rx_small, and replicas send none: refused at
	 * their header, before a buffer is taken.  A peer that has not said HELLO (or a
	 * replica gone wrong) would otherwise hold one of the ring's buffers for as long as
	 * it sends nothing more: 16 such peers hold half the default io_buffers. */
	*slot = NULL;
	if (!conn_failing(c)) {
		log_warning("closing the connection from %s: unexpected %s frame of %" PRIu32
			    " bytes (replicas send none)",
			    c->peer_addr, wire_type_name(hdr->type), hdr->length);
		conn_fail(c, WIRE_ERR_PROTOCOL, -EPROTO, "unexpected %s frame of %" PRIu32 " bytes",
			  wire_type_name(hdr->type), hdr->length);
	}
	return NULL;
}

static void peer_tx_progress(struct conn *c)
{
	struct peer *peer = peer_of(c);

	if (peer->refused) {
		if (conn_tx_backlog(c) == 0)
			conn_close(c, -EPROTO); /* may free peer */
		return;
	}
	peer_fill(peer);
}

static void peer_closed(struct conn *c)
{
	struct peer *peer = peer_of(c), **pp;
	struct primary *pr = peer->pr;
	struct xfer *x, *next;

	if (peer->state == PEER_STREAMING)
		primary_note_away(pr, peer); /* (its backlog still listed) */
	spool_free_names(peer->backlog, peer->nbacklog);
	if (c->close_error == -ENOBUFS)
		pr->st.queue_overflows++; /* its send queue reached its bound (net/conn.h) */

	if (peer->state == PEER_STREAMING)
		log_log("replica \"%s\" (%s) disconnected", peer->name, c->peer_addr);
	/* Newcomers that waited to see whether it was alive go on (primary_pump). */
	for (struct peer *other = pr->peers; other; other = other->next)
		if (other->rival == peer)
			other->rival = NULL;
	for (x = peer->xfers; x; x = next) {
		next = x->next;
		xfer_free(x);
	}
	for (pp = &pr->peers; *pp; pp = &(*pp)->next) {
		if (*pp == peer) {
			*pp = peer->next;
			break;
		}
	}
	pr->npeers--;
	free(peer);
}

static const struct conn_ops peer_conn_ops = {
	.rx_buffer = peer_rx_buffer,
	.rx_frame = peer_rx_frame,
	.tx_progress = peer_tx_progress,
	.closed = peer_closed,
};

/*
 * Connections accepted but not past HELLO yet, at most: past it a new connection closes
 * the oldest of them (counted in connections_shed, logged by the acceptor), so that clients that say nothing
 * cannot lock replicas out until connect_timeout closes them (only a steady flood of new
 * connections can), and hold at most this many descriptors.
 */
#define PRIMARY_MAX_HANDSHAKES 16

/* Connections not past HELLO yet, and the oldest of them into *@oldest. */
static unsigned int primary_handshakes(struct primary *pr, struct peer **oldest)
{
	unsigned int n = 0;

	*oldest = NULL;
	for (struct peer *o = pr->peers; o; o = o->next) {
		if (o->state != PEER_HANDSHAKE || o->conn.closing)
			continue;
		n++;
		if (!*oldest || o->accepted_ms < (*oldest)->accepted_ms)
			*oldest = o;
	}
	return n;
}

static void primary_accepted(struct acceptor *a, int res)
{
	struct primary *pr = container_of(a, struct primary, acceptor);
	struct peer *peer, *oldest;

	pr->accepting = false;
	if (pr->stopping) {
		if (res >= 0)
			close(res);
		acceptor_release(a);
		return;
	}
	if (res < 0) {
		primary_accept_post(pr); /* the acceptor counts, logs and backs off */
		return;
	}
	if (primary_handshakes(pr, &oldest) >= PRIMARY_MAX_HANDSHAKES) {
		conn_close(&oldest->conn, -ECONNRESET);
		acceptor_closed(a, "the oldest connection in the handshake, for a new one");
	}
	peer = calloc(1, sizeof(*peer));
	if (!peer) {
		acceptor_refuse(a, res, "out of memory");
		primary_accept_post(pr);
		return;
	}
	conn_tune_socket(res, pr->cfg.keepalive_timeout_ms);
	peer->pr = pr;
	peer->accepted_ms = clock_now_ms();
	peer->next = pr->peers;
	pr->peers = peer;
	pr->npeers++;
	if (pr->tls.ctx) {
		if (conn_init_tls(&peer->conn, pr->ring, res, &peer_conn_ops, peer, &pr->tls) < 0) {
			primary_accept_post(pr);
			return; /* closing; peer_closed() frees it */
		}
	} else {
		conn_init(&peer->conn, pr->ring, res, &peer_conn_ops, peer, pr->cfg.zero_copy);
	}
	primary_accept_post(pr);
}

void primary_accept_post(struct primary *pr)
{
	if (pr->stopping || pr->accepting)
		return;
	acceptor_post(&pr->acceptor);
	pr->accepting = true;
}

int primary_listen(struct primary *pr)
{
	int fd = net_listen_tcp("listen", pr->cfg.listen, 128), ret; /* logs */

	if (fd < 0)
		return fd;
	ret = acceptor_init(&pr->acceptor, pr->ring, fd, "replica connection", primary_accepted,
			    &pr->st.connections_shed);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	pr->listen_fd = fd;
	log_log("listening for replicas on %s", pr->cfg.listen);
	return 0;
}

/*
 * A connection whose name another one announced, and which did not answer our PING within
 * NAME_PROBE_MS, nor sent any other frame or acknowledged what it was sent meanwhile, is
 * taken for dead (a half-open connection after a cut or a restart) and
 * closed; the newcomers waiting on it go on (peer_closed, primary_pump).
 */
void primary_probes_expire(struct primary *pr, int64_t now_ms)
{
	struct peer *peer, *next;

restart:
	for (peer = pr->peers; peer; peer = next) {
		const struct peer *waiter = NULL;
		uint32_t data_ago_ms, ack_ago_ms;

		next = peer->next; /* conn_close() may free it */
		if (!peer->probe_token || now_ms < peer->probe_deadline_ms || peer->conn.closing)
			continue;
		/* Frames received since the PING, or our bytes acknowledged by the peer's host
		 * since (the PING's own, at the latest): alive, its PONG behind the DATA queued
		 * before the PING (a replica catching up over a slow link, whose frames may
		 * be keepalive_interval apart).  A half-open connection (the peer's host gone,
		 * or cut off) neither sends nor acknowledges anything. */
		if (peer->conn.stats.bytes_received > peer->probe_rx_bytes ||
		    (conn_tcp_heard(&peer->conn, &data_ago_ms, &ack_ago_ms) == 0 &&
		     ack_ago_ms < (uint32_t)(now_ms - peer->probe_sent_ms))) {
			log_log("replica \"%s\" is alive on its connection from %s (%s since it was "
				"checked): keeping it",
				peer->name, peer->conn.peer_addr,
				peer->conn.stats.bytes_received > peer->probe_rx_bytes ?
					"frames received" :
					"what was sent acknowledged");
			peer_probe_answered(peer);
			goto restart; /* a waiter refused may be closed: @next too */
		}
		peer->probe_token = 0;
		for (const struct peer *other = pr->peers; other && !waiter; other = other->next)
			if (other->rival == peer && other->state == PEER_NAME_WAIT &&
			    !other->conn.closing)
				waiter = other;
		if (!waiter)
			continue;
		log_log("replica \"%s\" did not answer on its connection from %s within %d ms; "
			"closing it for the one from %s",
			peer->name, peer->conn.peer_addr, NAME_PROBE_MS, waiter->conn.peer_addr);
		peer_set_error(peer, "replaced by a connection from %s", waiter->conn.peer_addr);
		conn_close(&peer->conn, -ECONNRESET);
	}
}
