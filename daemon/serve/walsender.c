// SPDX-License-Identifier: MIT
/*
 * The walsender endpoint of a replica (walsender.h): the connection plumbing (sends,
 * closes, errors), receiving and dispatching messages, accepting, and the API.  The
 * startup and access rules are in walsender_auth.c, the replication commands in
 * walsender_cmd.c, streaming from the store in walsender_stream.c (walsender_int.h).
 */
#include "serve/walsender_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "common/clock.h"
#include "common/hba.h"
#include "common/log.h"
#include "common/scram.h"
#include "common/textfile.h"
#include "net/acceptor.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/tls.h"
#include "proto/pgrepl.h"
#include "serve/pgwire.h"
#include "serve/sendlimit.h"
#include "serve/slots.h"

static void serve_wake(struct serve *s);
static void serve_fill_slots(const struct serve *s, struct status_node *n);
static int sb_tls_seal(struct standby *sb);

/* ---- connection plumbing ---- */

/* Drop the temporary slots @sb made: when it ends, and at an ERROR (PostgreSQL's
 * WalSndErrorCleanup() calls ReplicationSlotCleanup(), as its documentation of TEMPORARY
 * says: "automatically dropped on error or when the session has finished"). */
static void sb_drop_temporary_slots(struct standby *sb)
{
	struct serve *s = sb->s;

	for (unsigned int i = 0; sb->pid && i < SERVE_MAX_SLOTS; i++)
		if (s->slots.slot[i].name[0] && s->slots.slot[i].temporary &&
		    s->slots.slot[i].owner_pid == sb->pid)
			(void)serve_slots_drop(&s->slots, &s->slots.slot[i]);
}

static void sb_free(struct standby *sb)
{
	struct serve *s = sb->s;

	for (struct standby **pp = &s->standbys; *pp; pp = &(*pp)->next) {
		if (*pp == sb) {
			*pp = sb->next;
			break;
		}
	}
	s->nstandbys--;
	if (sb->slot_p)
		sb->slot_p->active_pid = 0;
	sb_drop_temporary_slots(sb);
	if (sb->file_fd >= 0)
		close(sb->file_fd);
	close(sb->fd);
	pgwire_buf_free(&sb->out);
	pgwire_buf_free(&sb->sending);
	if (sb->tls) {
		tls_conn_free(sb->tls);
		free(sb->tls);
	}
	free(sb->tls_rx);
	if (sb->scram) {
		scram_exchange_end(sb->scram);
		free(sb->scram);
	}
	free(sb->rbuf);
	free(sb);
}

/* Close once nothing is in flight: shutting the socket down completes its recv. */
void sb_close(struct standby *sb)
{
	if (!sb->closing) {
		sb->closing = true;
		shutdown(sb->fd, SHUT_RDWR);
	}
	if (!sb->inflight)
		sb_free(sb);
}

struct io_uring_sqe *sb_sqe(struct standby *sb, struct ring_op *op)
{
	sb->inflight++;
	return ring_sqe(sb->s->ring, op);
}

/*
 * The end of a completion's work: its request no longer counts; frees @sb when it is
 * closing and nothing else is in flight.  A completion calls it last, so that nothing
 * it calls before (sb_close() included) frees @sb under it.
 */
void sb_op_done(struct standby *sb)
{
	sb->inflight--;
	if (sb->closing && !sb->inflight)
		sb_free(sb);
}

static void sb_sent(struct ring_op *op, int res, uint32_t flags)
{
	struct standby *sb = container_of(op, struct standby, tx_op);

	(void)flags;
	sb->tx_busy = false;
	if (sb->closing) {
		sb_op_done(sb);
		return;
	}
	if (res <= 0) {
		if (res < 0 && res != -EPIPE && res != -ECONNRESET)
			log_log("could not send data to standby %s: %s", sb->addr, strerror(-res));
		sb_close(sb);
		sb_op_done(sb);
		return;
	}
	sb->sending_off += (size_t)res;
	if (sb->sending_off >= sb->sending.len) {
		sb->sending.len = 0;
		sb->sending_off = 0;
	}
	sb_flush(sb);
	sb_pump(sb);
	sb_op_done(sb);
}

/*
 * TLS: make @sending (empty) from @out: its first out_plain bytes as they are, the rest
 * encrypted once the handshake is done, then every byte OpenSSL has for the peer (its
 * handshake, alerts).  Returns 0, or -EPROTO (logged) when OpenSSL fails.
 *
 * Why not net/tls_pump.c: it drives the walship protocol's frames (struct conn); this
 * stream is PostgreSQL's messages, so only the per-connection TLS state (net/tls.h) is
 * shared, and records are made in user space (no kernel TLS on pg_listen).
 */
static int sb_tls_seal(struct standby *sb)
{
	struct tls_conn *tc = sb->tls;
	size_t plain = sb->out_plain < sb->out.len ? sb->out_plain : sb->out.len;
	size_t rest = sb->out.len - plain, pending;
	uint8_t *p;

	pgwire_put(&sb->sending, sb->out.data, plain);
	sb->out_plain = 0;
	if (rest && tc->handshake_done) {
		if (SSL_write(tc->ssl, sb->out.data + plain, (int)rest) <= 0) {
			char why[256];

			tls_conn_error(tc, why, sizeof(why), "SSL_write failed");
			log_log("could not send data to standby %s: %s", sb->addr, why);
			return -EPROTO;
		}
		rest = 0;
	}
	pgwire_consume(&sb->out, sb->out.len - rest); /* kept until the handshake is done */
	pending = BIO_ctrl_pending(tc->wbio);
	if (pending && (p = pgwire_reserve(&sb->sending, pending))) {
		BIO_read(tc->wbio, p, (int)pending);
		sb->sending.len += pending;
	}
	return 0;
}

/* Send what is queued, one send in flight. */
void sb_flush(struct standby *sb)
{
	struct io_uring_sqe *sqe;

	if (sb->tx_busy || sb->closing)
		return;
	if (sb->out.failed || sb->sending.failed) {
		log_error("out of memory");
		sb_close(sb);
		return;
	}
	if (!sb->sending.len) {
		if (sb->tls) {
			if (sb_tls_seal(sb) < 0) {
				sb_close(sb);
				return;
			}
		} else if (sb->out.len) {
			struct pgwire_buf t = sb->sending;

			sb->sending = sb->out;
			sb->out = t;
			sb->out.len = 0;
		}
		if (!sb->sending.len) {
			if (sb->close_when_sent)
				sb_close(sb);
			return;
		}
		sb->sending_off = 0;
	}
	sb->tx_busy = true;
	sb->tx_op.cb = sb_sent;
	sqe = sb_sqe(sb, &sb->tx_op);
	io_uring_prep_send(sqe, sb->fd, sb->sending.data + sb->sending_off,
			   sb->sending.len - sb->sending_off, MSG_NOSIGNAL);
}

static void sb_verror(struct standby *sb, const char *severity, const char *sqlstate,
		      const char *detail, const char *hint, const char *fmt, va_list ap)
	attr_printf(6, 0);

void sb_error(struct standby *sb, const char *severity, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_verror(sb, severity, sqlstate, NULL, NULL, fmt, ap);
	va_end(ap);
}

void sb_error_detail(struct standby *sb, const char *severity, const char *sqlstate,
		     const char *detail, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sb_verror(sb, severity, sqlstate, detail, hint, fmt, ap);
	va_end(ap);
}

static void sb_verror(struct standby *sb, const char *severity, const char *sqlstate,
		      const char *detail, const char *hint, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	pgwire_error(&sb->out, severity, sqlstate, msg, detail, hint);
	if (!strcmp(severity, "FATAL")) {
		sb->close_when_sent = true;
		return;
	}
	if (sb->state == SB_STREAMING) {
		sb_stream_end(sb);
		sb->next_lsn = 0; /* nothing held for it (serve_retention_floor()) */
	} else if (sb->slot_p) {
		sb_stream_end(sb); /* refused after its slot was taken */
	}
	sb_drop_temporary_slots(sb);
	if (sb->extended)
		sb->skip_till_sync = true; /* ReadyForQuery at the Sync */
	else
		pgwire_ready(&sb->out);
}

/* ---- receiving ---- */

static void sb_received(struct ring_op *op, int res, uint32_t flags);

static void sb_recv(struct standby *sb)
{
	struct io_uring_sqe *sqe;

	/* Not while a DROP_REPLICATION_SLOT WAIT waits, or a slot's write: what the client sends meanwhile
	 * stays in the socket (as with PostgreSQL, which reads nothing then), not in rx,
	 * whose end a recv of no room would take for the client closing. */
	if (sb->rx_busy || sb->closing || sb->close_when_sent || sb->drop_waiting ||
	    sb->slot_saving)
		return;
	sb->rx_busy = true;
	sb->rx_op.cb = sb_received;
	sqe = sb_sqe(sb, &sb->rx_op);
	if (sb->tls)
		io_uring_prep_recv(sqe, sb->fd, sb->tls_rx, TLS_RX_CAP, 0);
	else
		io_uring_prep_recv(sqe, sb->fd, sb->rx + sb->rx_len, sizeof(sb->rx) - sb->rx_len,
				   0);
}

/*
 * A message between commands, as PostgreSQL's backend takes one (postgres.c SocketBackend()
 * and PostgresMain()): a simple Query runs; the extended query protocol (Parse, Bind,
 * Execute, Describe, Close) and function calls are refused with ERROR 08P01, as a
 * walsender refuses them (forbidden_in_wal_sender()), and after such an ERROR every message
 * up to Sync is skipped; Sync answers ReadyForQuery, Flush has nothing to flush; CopyData,
 * CopyDone and CopyFail are ignored.  Returns false for a type no client sends here.
 */
static bool sb_idle_message(struct standby *sb, const struct pgwire_msg *m)
{
	switch (m->type) {
	case 'Q':
	case 'F':
	case 'd':
	case 'c':
	case 'f':
		sb->extended = false;
		break;
	case 'P':
	case 'B':
	case 'E':
	case 'D':
	case 'C':
	case 'H':
		sb->extended = true;
		break;
	case 'S':
		sb->extended = false;
		sb->skip_till_sync = false;
		break;
	default:
		return false;
	}
	if (sb->skip_till_sync)
		return true;
	switch (m->type) {
	case 'Q':
		sb_query(sb, m);
		break;
	case 'F':
		sb_error(sb, "ERROR", "08P01",
			 "fastpath function calls not supported in a replication connection");
		break;
	case 'H':
	case 'S':
		if (m->len) /* pq_getmsgend() */
			sb_error(sb, "ERROR", "08P01", "invalid message format");
		else if (m->type == 'S')
			pgwire_ready(&sb->out);
		break;
	case 'd':
	case 'c':
	case 'f':
		/* PostgreSQL accepts and ignores them outside COPY (PostgresMain(): "we
		 * probably got here because a COPY failed, and the frontend is still sending
		 * data") */
		break;
	default:
		sb_error(sb, "ERROR", "08P01",
			 "extended query protocol not supported in a replication connection");
		break;
	}
	return true;
}

/*
 * One regular message.  Terminate closes the connection once what was answered before is
 * sent: PostgreSQL sent it before reading on (ReadyForQuery flushes; so does the
 * CopyBothResponse of START_REPLICATION).
 */
static void sb_message(struct standby *sb, const struct pgwire_msg *m)
{
	if (m->type == 'X') {
		sb->close_when_sent = true;
		return;
	}
	if (sb->state == SB_QUERY && sb_idle_message(sb, m))
		return;
	if (sb->state == SB_AUTH && m->type == 'p') {
		sb_sasl(sb, m);
		return;
	}
	if (sb->state == SB_STREAMING) {
		sb->extended = false;
		if (m->type == 'd') {
			sb_copydata(sb, m);
		} else if (m->type == 'c') {
			sb_copy_done(sb);
		} else { /* PostgreSQL's words (walsender.c ProcessRepliesIfAny()) */
			char type = m->type >= 32 && m->type < 127 ? (char)m->type : '?';

			log_log("invalid standby message type \"%c\" from %s", type, sb->addr);
			sb_error(sb, "FATAL", "08P01", "invalid standby message type \"%c\"", type);
		}
		return;
	}
	if (sb->state == SB_AUTH) { /* PostgreSQL's words (auth.c CheckSASLAuth()) */
		log_log("expected SASL response from %s, got message type %d", sb->addr, m->type);
		sb_error(sb, "FATAL", "08P01", "expected SASL response, got message type %d",
			 m->type);
		return;
	}
	log_log("invalid frontend message type %d from %s", m->type, sb->addr);
	sb_error(sb, "FATAL", "08P01", "invalid frontend message type %d", m->type);
}

/*
 * Whether a message of @type may come in @sb's state.  PostgreSQL checks the type byte
 * before it reads the length (postgres.c SocketBackend(), walsender.c
 * ProcessRepliesIfAny(), auth.c CheckSASLAuth()): another type is answered with a FATAL at
 * once, whatever length follows, where a length check would close without a word.
 */
static bool sb_type_expected(const struct standby *sb, uint8_t type)
{
	const char *types = sb->state == SB_STREAMING ? "dcX" :
			    sb->state == SB_AUTH      ? "pX" :
							"QFXBPCDEHSdcf";

	return type && strchr(types, type);
}

/* Handle the startup packets and messages received in rx, keeping what is incomplete. */
static void sb_process(struct standby *sb)
{
	size_t used = 0;

	sb->processing = true;
	while (!sb->closing && !sb->close_when_sent && !sb->drop_waiting && !sb->slot_saving &&
	       used < sb->rx_len) {
		int n;

		if (sb->state == SB_STARTUP) {
			memmove(sb->rx, sb->rx + used, sb->rx_len - used);
			sb->rx_len -= used;
			used = 0;
			n = sb_rx_startup(sb);
		} else {
			struct pgwire_msg m = { .type = sb->rx[used] };

			if (!sb_type_expected(sb, m.type)) {
				sb_message(sb, &m); /* a FATAL (the rest is not read) */
				break;
			}
			n = pgwire_next_message(sb->rx + used, sb->rx_len - used, &m);
			if (n < 0) { /* closed, no answer (pq_getmessage(): COMMERROR) */
				log_log("invalid message length from %s", sb->addr);
				sb->close_when_sent = true;
				break;
			}
			if (n > 0)
				sb_message(sb, &m);
		}
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	if (!sb->closing) {
		memmove(sb->rx, sb->rx + used, sb->rx_len - used);
		sb->rx_len -= used;
	}
	sb->processing = false;
}

/*
 * TLS: ciphertext was fed to OpenSSL.  Drive the handshake; once it is done, decrypt into
 * rx and handle what arrives, for as long as there is plaintext.  A failure closes the
 * connection once OpenSSL's alert is sent.
 */
void sb_tls_input(struct standby *sb)
{
	struct tls_conn *tc = sb->tls;
	char why[256];

	if (!tc->handshake_done) {
		int r = SSL_do_handshake(tc->ssl);

		if (r != 1) {
			if (SSL_get_error(tc->ssl, r) == SSL_ERROR_WANT_READ)
				return; /* its next bytes go out with sb_flush() */
			tls_conn_error(tc, why, sizeof(why), "handshake failed");
			/* PostgreSQL's words (be-secure-openssl.c be_tls_open_server()) */
			log_log("could not accept SSL connection from %s: %s", sb->addr, why);
			sb->s->refused++;
			sb->close_when_sent = true;
			return;
		}
		if (tls_conn_established(tc) == 0)
			snprintf(sb->cert_name, sizeof(sb->cert_name), "%s", tc->peer_name);
		log_log("TLS established with standby %s: %s, %s%s%s", sb->addr, tc->version,
			sb->cert_name[0] ? "client certificate \"" : "no client certificate",
			sb->cert_name, sb->cert_name[0] ? "\"" : "");
	}
	while (!sb->closing && !sb->close_when_sent) {
		bool got = false;

		while (sb->rx_len < sizeof(sb->rx)) {
			int n = SSL_read(tc->ssl, sb->rx + sb->rx_len,
					 (int)(sizeof(sb->rx) - sb->rx_len));
			int err;

			if (n > 0) {
				sb->rx_len += (size_t)n;
				got = true;
				continue;
			}
			err = SSL_get_error(tc->ssl, n);
			if (err == SSL_ERROR_WANT_READ)
				break;
			if (err != SSL_ERROR_ZERO_RETURN) {
				tls_conn_error(tc, why, sizeof(why), "SSL_read failed");
				log_log("could not receive data from standby %s: %s", sb->addr,
					why);
			}
			sb_close(sb);
			return;
		}
		if (!got)
			return;
		sb_process(sb);
	}
}

void sb_resume(struct standby *sb)
{
	sb_process(sb); /* what it sent before the answer */
	if (sb->tls && !sb->closing)
		sb_tls_input(sb); /* and what OpenSSL still holds */
	sb_flush(sb);
	sb_recv(sb); /* paused while it waited */
}

static void sb_received(struct ring_op *op, int res, uint32_t flags)
{
	struct standby *sb = container_of(op, struct standby, rx_op);

	(void)flags;
	sb->rx_busy = false;
	if (!sb->closing && res <= 0) {
		if (res < 0 && res != -ECONNRESET)
			log_log("could not receive data from standby %s: %s", sb->addr,
				strerror(-res));
		sb_close(sb); /* 0: the standby closed the connection */
	}
	if (sb->closing) {
		sb_op_done(sb);
		return;
	}
	sb->last_rx_ms = clock_listen_ms();
	sb->ping_sent = false;
	if (sb->tls) {
		BIO_write(sb->tls->rbio, sb->tls_rx, res);
		sb_tls_input(sb);
	} else {
		sb->rx_len += (size_t)res;
		sb_process(sb);
	}
	if (!sb->closing && sb->out.len + sb->sending.len > SERVE_TX_MAX) {
		log_log("closing connection of standby %s: it does not read what it is sent",
			sb->addr);
		sb_close(sb);
	}
	sb_flush(sb);
	sb_pump(sb);
	sb_recv(sb);
	sb_op_done(sb);
}

/* ---- accepting ---- */

static void serve_accept_post(struct serve *s)
{
	if (s->stopping || s->accepting)
		return;
	s->accepting = true;
	acceptor_post(&s->acceptor);
}

/* Connections on pg_listen not yet authenticated (SERVE_MAX_AUTHENTICATING), and the
 * oldest of them into *@oldest. */
static unsigned int serve_authenticating(struct serve *s, struct standby **oldest)
{
	unsigned int n = 0;

	*oldest = NULL;
	for (struct standby *sb = s->standbys; sb; sb = sb->next) {
		if (sb->closing || (sb->state != SB_STARTUP && sb->state != SB_AUTH))
			continue;
		n++;
		if (!*oldest || sb->accepted_ms < (*oldest)->accepted_ms)
			*oldest = sb;
	}
	return n;
}

static void serve_accepted(struct acceptor *a, int res)
{
	struct serve *s = container_of(a, struct serve, acceptor);
	struct standby *sb, *oldest;
	socklen_t sl;

	s->accepting = false;
	if (s->stopping) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0) {
		serve_accept_post(s);
		return;
	}
	/* Not yet authenticated: at most SERVE_MAX_AUTHENTICATING, the oldest closed for a
	 * new one, so that idle connections hold no standby out for connect_timeout (only
	 * a steady flood of new ones can); logged by the acceptor, at most a line per
	 * interval. */
	if (serve_authenticating(s, &oldest) >= SERVE_MAX_AUTHENTICATING) {
		sb_close(oldest);
		acceptor_closed(a, "the oldest connection not yet authenticated, for a new one");
	}
	if (s->nstandbys >= SERVE_MAX_STANDBYS + SERVE_MAX_AUTHENTICATING) {
		acceptor_refuse(a, res, "too many standby connections");
		serve_accept_post(s);
		return;
	}
	sb = calloc(1, sizeof(*sb));
	if (sb)
		sb->rbuf = malloc(SERVE_MAX_SEND);
	if (!sb || !sb->rbuf) {
		if (sb)
			free(sb);
		acceptor_refuse(a, res, "out of memory");
		serve_accept_post(s);
		return;
	}
	sb->s = s;
	sb->fd = res;
	sb->file_fd = -1;
	for (unsigned int k = 0; k < 3; k++)
		sb->lag_ms[k] = -1;
	sb->accepted_ms = clock_now_ms();
	sb->last_rx_ms = clock_listen_ms();
	sl = sizeof(sb->sa);
	if (getpeername(res, (struct sockaddr *)&sb->sa, &sl) < 0)
		memset(&sb->sa, 0, sizeof(sb->sa));
	conn_format_addr((struct sockaddr *)&sb->sa, sb->addr, sizeof(sb->addr));
	conn_tune_socket(res, s->keepalive_timeout_ms);
	sb->next = s->standbys;
	s->standbys = sb;
	s->nstandbys++;
	sb_recv(sb);
	serve_accept_post(s);
}

/* Feed the newest WAL the store holds to the index of delayed and held standbys
 * (sendlimit_wal() reads it, after a step of the stored segments before it while it
 * catches up). */
static void serve_limits_feed(struct serve *s)
{
	uint32_t seg_size = s->store->id.seg_size;
	char name[WAL_NAME_MAX + 1];
	const struct growing *g;

	if (!seg_size || !s->end_lsn)
		return;
	wal_name_format_segment(name, sizeof(name), s->tli, (s->end_lsn - 1) / seg_size, seg_size);
	g = serve_growing_find(s, name);
	if (g) /* (from its image while written directly: never through the page cache) */
		sendlimit_wal(s->limits, name, s->store->incoming_fd, g->tmp_name, g->durable,
			      g->image);
	else
		sendlimit_wal(s->limits, name, s->store->dir_fd, name, seg_size, NULL);
}

/* At start, with delayed or held standbys, and when the first comes (a reload, a hold):
 * their index begins with the newest WAL the store holds, so that what was stored before
 * is delayed by its segments' times even while no new WAL arrives. */
static void serve_limits_start(struct serve *s)
{
	if (!sendlimit_indexing(s->limits))
		serve_limits_feed(s);
}
/* ---- the API ---- */

struct serve *serve_start(const struct config *cfg, struct ring *ring, const struct store *store,
			  bool *config_error)
{
	struct serve *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		log_error("out of memory");
		return NULL;
	}
	s->ring = ring;
	s->store = store;
	s->listen_fd = -1;
	s->next_pid = 0x10000 + ((uint32_t)getpid() & 0xffff) * 0x100;
	snprintf(s->node_name, sizeof(s->node_name), "%s", cfg->node_name);
	s->keepalive_timeout_ms = cfg->keepalive_timeout_ms;
	s->connect_timeout_ms = cfg->connect_timeout_ms;
	if ((ret = hba_load(cfg->hba_file, &s->hba)) < 0) {
		log_error("could not load access rules from \"%s\"", cfg->hba_file);
		*config_error = textfile_error_lasts(ret);
		goto out_free;
	}
	if (cfg->pg_password_file[0] &&
	    (ret = scram_passwords_load(cfg->pg_password_file, &s->passwords)) < 0) { /* logs */
		*config_error = textfile_error_lasts(ret);
		goto out_hba;
	}
	/* (the TLS files loaded a moment ago for the replica's own connection: a failure
	 * now is none of theirs, and no configuration error) */
	if (cfg->tls) {
		if (tls_ctx_init_pg(&s->tls, cfg->tls_ca_file, cfg->tls_cert_file,
				    cfg->tls_key_file) < 0) /* logs */
			goto out_passwords;
		s->tls_on = true;
	}
	if (worker_start(&s->worker, ring) < 0) /* logs */
		goto out_tls;
	if (serve_slots_load(&s->slots, store, &s->worker) < 0) /* logs */
		goto out_worker;
	s->limits = sendlimit_new(store, cfg->standby_delay); /* logs */
	if (!s->limits)
		goto out_worker;
	s->removed_below = UINT64_MAX;
	s->gap_wait_ms = SERVE_GAP_WAIT_MS;
	serve_scan(s);
	serve_limits_start(s);
	s->listen_fd = net_listen_tcp("pg_listen", cfg->pg_listen, 64); /* logs */
	if (s->listen_fd < 0)
		goto out_limits;
	if (acceptor_init(&s->acceptor, ring, s->listen_fd, "standby connection", serve_accepted,
			  &s->shed) < 0)
		goto out_listen;
	serve_accept_post(s);
	log_log("serving PostgreSQL standbys on %s (physical replication, %s, authenticated as "
		"hba_file says for role standby)",
		cfg->pg_listen, s->tls_on ? "TLS offered" : "no TLS");
	return s;

out_listen:
	close(s->listen_fd);
out_limits:
	sendlimit_free(s->limits);
out_worker:
	worker_stop(&s->worker);
out_tls:
	if (s->tls_on)
		tls_ctx_free(&s->tls);
out_passwords:
	scram_passwords_free(s->passwords);
out_hba:
	hba_free(s->hba);
out_free:
	free(s);
	return NULL;
}

/* Wake the streaming standbys that wait for WAL. */
static void serve_wake(struct serve *s)
{
	for (struct standby *sb = s->standbys, *next; sb; sb = next) {
		next = sb->next; /* sb_pump() may not free, but stay safe */
		if (sb->state == SB_STREAMING && sb->waiting)
			sb_pump(sb);
	}
}

/* Standbys reading @name from .incoming open it again (by name, or the growing copy)
 * before their next read. */
static void serve_reopen(struct serve *s, const char *name)
{
	for (struct standby *sb = s->standbys; sb; sb = sb->next)
		if (sb->file_fd >= 0 && sb->file_incoming && !strcmp(sb->file_name, name))
			sb->file_reopen = true;
}

void serve_wal_durable(struct serve *s, const char *name, const char *tmp_name, uint64_t durable,
		       const uint8_t *image)
{
	const struct growing *g;

	if (!s)
		return;
	g = serve_growing_find(s, name);
	if (g && strcmp(g->tmp_name, tmp_name))
		serve_reopen(s, name); /* another copy: the one open may hold other bytes */
	serve_growing_set(s, name, tmp_name, durable, image);
	serve_note_wal(s, name, durable, false);
	sendlimit_wal(s->limits, name, s->store->incoming_fd, tmp_name, durable, image);
	for (struct standby *sb = s->standbys; sb; sb = sb->next) {
		if (sb->file_fd < 0 || !sb->file_incoming || strcmp(sb->file_name, name))
			continue;
		if (strcmp(sb->file_tmp, tmp_name))
			sb->file_reopen = true; /* another copy grows: not the one it has open */
		else if (durable > sb->file_limit)
			sb->file_limit = durable;
	}
	serve_wake(s);
}

void serve_wal_image_gone(struct serve *s, const char *name, const uint8_t *image)
{
	struct growing *g = s && image ? serve_growing_find(s, name) : NULL;

	if (g && g->image == image)
		g->image = NULL;
}

void serve_wal_stored(struct serve *s, const char *name)
{
	struct growing *g;

	if (!s)
		return;
	g = serve_growing_find(s, name);
	if (g)
		memset(g, 0, sizeof(*g));
	serve_note_wal(s, name, 0, true);
	serve_note_stored(s, name);
	sendlimit_wal(s->limits, name, s->store->dir_fd, name, s->store->id.seg_size, NULL);
	/* Opened from .incoming, it may be a copy the upstream cancelled (whose bytes end
	 * early), not the file stored: the stored file is opened by its name. */
	serve_reopen(s, name);
	serve_wake(s);
}

void serve_wal_dropped(struct serve *s, const char *name, const char *tmp_name)
{
	struct growing *g;

	if (!s)
		return;
	g = serve_growing_find(s, name);
	if (!g || strcmp(g->tmp_name, tmp_name))
		return; /* another copy grows, or it was stored: nothing of this one is left */
	memset(g, 0, sizeof(*g));
	/* Else a standby that read it to its last durable byte would wait for more for
	 * ever, and one that comes to the segment later find no file and still wait. */
	for (struct standby *sb = s->standbys; sb; sb = sb->next)
		if (sb->file_fd >= 0 && sb->file_incoming && !strcmp(sb->file_name, name) &&
		    !strcmp(sb->file_tmp, tmp_name))
			sb->file_reopen = true;
	serve_wake(s);
}

void serve_wal_removed(struct serve *s, const char *name)
{
	struct wal_name wn;
	uint64_t segno;
	uint32_t seg_size = s ? s->store->id.seg_size : 0;

	if (!s || !seg_size || wal_name_parse(name, &wn) < 0 || wn.kind == WAL_FILE_HISTORY ||
	    wal_name_segno(&wn, seg_size, &segno) < 0)
		return;
	if (s->removed_below == UINT64_MAX || segno + 1 > s->removed_below)
		s->removed_below = segno + 1;
	s->removed_known = true;
	serve_held_trim(s, s->removed_below); /* what is below needs no remembering */
	serve_wake(s); /* a standby waiting for one of them is answered */
}

uint64_t serve_retention_floor(const struct serve *s)
{
	uint64_t floor = serve_slots_floor(s), held = s ? sendlimit_floor(s->limits) : UINT64_MAX;

	if (held < floor)
		floor = held;
	for (const struct standby *sb = s ? s->standbys : NULL; sb; sb = sb->next) {
		uint64_t need = sb->next_lsn;

		/* Streaming, or between two timelines' START_REPLICATION (back to queries
		 * at a timeline's end while PostgreSQL replays up to the switch point). */
		if (sb->closing ||
		    (sb->state != SB_STREAMING && !(sb->state == SB_QUERY && sb->next_lsn)))
			continue;
		if (sb->flush && sb->flush < need)
			need = sb->flush;
		if (need < floor)
			floor = need;
	}
	return floor;
}

void serve_tick(struct serve *s, int64_t now_ms)
{
	if (!s)
		return;
	serve_slots_tick(&s->slots, now_ms);
	if (sendlimit_catching_up(s->limits)) {
		serve_limits_feed(s); /* the next step, while no WAL comes */
		serve_wake(s); /* commits found may let standbys go further */
	}
	if (sendlimit_due(s->limits, unix_now_us()))
		serve_wake(s); /* a delayed standby's next commit is due */
	for (struct standby *sb = s->standbys, *next; sb; sb = next) {
		int64_t silent_ms;

		next = sb->next;
		if (sb->closing)
			continue;
		if (sb->drop_waiting && sb_drop_slot(sb, sb->slot, true)) {
			bool closing;

			sb->slot[0] = '\0';
			/* held, as a completion holds it: no recv is in flight while it waited,
			 * so a close below would otherwise free it under these calls */
			sb->inflight++;
			sb_resume(sb);
			closing = sb->closing;
			sb_op_done(sb);
			if (closing)
				continue;
		}
		if ((sb->state == SB_STARTUP || sb->state == SB_AUTH) &&
		    now_ms - sb->accepted_ms > s->connect_timeout_ms) {
			log_log("closing connection from %s: no startup within connect_timeout",
				sb->addr);
			sb_close(sb);
			continue;
		}
		if (sb->state != SB_STREAMING)
			continue;
		/* a gap waited for long enough: the open again answers 58P01 (sb_opened()) */
		if (sb->waiting && sb->gap_since_ms && now_ms - sb->gap_since_ms >= s->gap_wait_ms)
			sb_pump(sb);
		silent_ms = clock_listen_ms() - sb->last_rx_ms;
		if (silent_ms > s->keepalive_timeout_ms) {
			/* PostgreSQL's words (walsender.c WalSndCheckTimeOut()) */
			log_log("terminating walsender process due to replication timeout: standby "
				"\"%s\" (%s) silent for longer than keepalive_timeout",
				sb->app, sb->addr);
			sb_close(sb);
			continue;
		}
		if (!sb->ping_sent && !sb->copy_done_sent && !sb->close_when_sent &&
		    silent_ms > s->keepalive_timeout_ms / 2) {
			pgwire_keepalive(&sb->out, s->end_lsn, pgrepl_time_now(), true);
			sb->ping_sent = true;
			sb_flush(sb);
		}
	}
}

void serve_reload(struct serve *s, const struct config *cfg)
{
	struct hba_table *fresh = NULL;
	struct scram_passwords *passwords = NULL;

	if (!s)
		return;
	if (cfg->keepalive_timeout_ms != s->keepalive_timeout_ms)
		for (struct standby *sb = s->standbys; sb; sb = sb->next)
			conn_set_user_timeout(sb->fd, cfg->keepalive_timeout_ms);
	s->keepalive_timeout_ms = cfg->keepalive_timeout_ms;
	s->connect_timeout_ms = cfg->connect_timeout_ms;
	/* standby_delay reloads: a shorter delay (or none) may let standbys go further */
	sendlimit_reload(s->limits, cfg->standby_delay);
	serve_limits_start(s); /* a first delay */
	serve_wake(s);
	if (hba_load(cfg->hba_file, &fresh) < 0) {
		log_error("could not load access rules from \"%s\": keeping the rules in effect",
			  cfg->hba_file);
	} else {
		hba_free(s->hba);
		s->hba = fresh;
	}
	if (!cfg->pg_password_file[0]) {
		scram_passwords_free(s->passwords);
		s->passwords = NULL;
	} else if (scram_passwords_load(cfg->pg_password_file, &passwords) < 0) {
		log_error("could not load pg_password_file \"%s\": keeping the verifiers in effect",
			  cfg->pg_password_file);
	} else {
		scram_passwords_free(s->passwords);
		s->passwords = passwords;
	}
}

void serve_stop(struct serve *s)
{
	if (!s || s->stopping)
		return;
	s->stopping = true;
	if (s->listen_fd >= 0)
		shutdown(s->listen_fd, SHUT_RDWR); /* the accept in flight completes */
	for (struct standby *sb = s->standbys, *next; sb; sb = next) {
		next = sb->next;
		sb_close(sb);
	}
}

bool serve_stopped(const struct serve *s)
{
	return !s || (!s->standbys && !s->accepting && !worker_pending(&s->worker));
}

void serve_fill_status(const struct serve *s, struct status_node *n)
{
	unsigned int i = 0;

	if (!s)
		return;
	serve_fill_slots(s, n);
	n->connections_refused += s->refused;
	n->hba_refused += s->hba_refused;
	n->connections_shed += s->shed;
	if (!s->nstandbys)
		return;
	n->standbys = calloc(s->nstandbys, sizeof(*n->standbys));
	if (!n->standbys)
		return;
	for (const struct standby *sb = s->standbys; sb && i < s->nstandbys; sb = sb->next) {
		struct status_standby *o = &n->standbys[i++];

		snprintf(o->user, sizeof(o->user), "%s", sb->user);
		snprintf(o->application_name, sizeof(o->application_name), "%s", sb->app);
		snprintf(o->addr, sizeof(o->addr), "%s", sb->addr);
		snprintf(o->state, sizeof(o->state), "%s",
			 sb->state == SB_STARTUP || sb->state == SB_AUTH ? "startup" :
			 sb->state == SB_STREAMING			 ? "streaming" :
									   "idle");
		snprintf(o->slot, sizeof(o->slot), "%s", sb->slot);
		o->timeline = sb->tli;
		o->sent_lsn = sb->next_lsn;
		o->write_lsn = sb->write;
		o->flush_lsn = sb->flush;
		o->apply_lsn = sb->apply;
		o->bytes_sent = sb->bytes_sent;
		o->xmin = sb->xmin;
		o->write_lag_ms = sb->lag_ms[0];
		o->flush_lag_ms = sb->lag_ms[1];
		o->replay_lag_ms = sb->lag_ms[2];
		o->catalog_xmin = sb->catalog_xmin;
		o->connected_since = sb->connected_since;
		sendlimit_fill_status(s->limits, sb->app, unix_now_us(), o);
	}
	n->nstandbys = i;
}

/* The slots into @n (n->slots, freed by status_node_release()). */
static void serve_fill_slots(const struct serve *s, struct status_node *n)
{
	unsigned int k = 0;

	n->slots = calloc(SERVE_MAX_SLOTS, sizeof(*n->slots));
	if (!n->slots)
		return;
	for (unsigned int i = 0; i < SERVE_MAX_SLOTS; i++) {
		const struct serve_slot *sl = &s->slots.slot[i];
		struct status_slot *o = &n->slots[k];

		if (!sl->name[0])
			continue;
		snprintf(o->name, sizeof(o->name), "%s", sl->name);
		o->temporary = sl->temporary;
		o->active = sl->active_pid != 0;
		o->restart_lsn = sl->restart_lsn;
		o->restart_tli = sl->restart_tli;
		o->retained_bytes = sl->restart_lsn && s->end_lsn > sl->restart_lsn ?
					    s->end_lsn - sl->restart_lsn :
					    0;
		k++;
	}
	n->nslots = k;
}

void serve_on_applied(struct serve *s, serve_applied_fn fn, void *arg)
{
	s->applied_fn = fn;
	s->applied_arg = arg;
}

uint64_t serve_slots_floor(const struct serve *s)
{
	return s ? serve_slots_oldest(&s->slots) : UINT64_MAX;
}

void serve_free(struct serve *s)
{
	if (!s)
		return;
	while (s->standbys)
		sb_free(s->standbys);
	worker_stop(&s->worker);
	serve_slots_flush(&s->slots); /* as PostgreSQL saves its slots at shutdown */
	acceptor_release(&s->acceptor);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->tls_on)
		tls_ctx_free(&s->tls);
	scram_passwords_free(s->passwords);
	hba_free(s->hba);
	sendlimit_free(s->limits);
	free(s->held);
	free(s);
}

int serve_hold(struct serve *s, const char *app, char *msg, size_t len)
{
	uint64_t at = 0;
	bool found = false;
	char lsn[PGREPL_LSN_TEXT];
	int ret;

	/* Where the least advanced of them stands: what it flushed (its reported flush,
	 * else what it was sent).  The hold's position is also its retention floor, kept
	 * while they are away: a standby of the name that had flushed less than another had
	 * been sent (several stream under PostgreSQL's default name, "walreceiver"; one
	 * crashes before its flush) asks again from where it flushed. */
	for (const struct standby *sb = s->standbys; sb; sb = sb->next)
		if (sb->state == SB_STREAMING && !strcmp(sb->app, app)) {
			uint64_t pos =
				sb->flush && sb->flush < sb->next_lsn ? sb->flush : sb->next_lsn;

			at = found && at < pos ? at : pos;
			found = true;
		}
	if (!found) {
		snprintf(msg, len, "no standby \"%s\" is streaming", app);
		return -ENOENT;
	}
	ret = sendlimit_hold(s->limits, app, at);
	if (ret == -EEXIST)
		snprintf(msg, len, "standby \"%s\" is held already", app);
	else if (ret == -EOVERFLOW)
		snprintf(msg, len,
			 "could not hold standby \"%s\": %d standbys are held already, the most "
			 "kept (a plain walship release of one frees its place)",
			 app, SENDLIMIT_MAX_HOLDS);
	else if (ret < 0)
		snprintf(msg, len, "could not hold standby \"%s\": %s", app, strerror(-ret));
	else
		snprintf(msg, len, "standby \"%s\" held at %s", app,
			 pgrepl_lsn_format(at, lsn, sizeof(lsn)));
	if (!ret) {
		log_log("standby \"%s\" held at %s", app, lsn);
		serve_limits_start(s); /* a first hold: its release --before needs the index */
	}
	return ret;
}

int serve_release(struct serve *s, const char *app, enum sendlimit_release how, int64_t value,
		  char *msg, size_t len)
{
	int ret = sendlimit_release(s->limits, app, how, value);

	if (ret == -ENOENT)
		snprintf(msg, len, "standby \"%s\" is not held", app);
	else if (ret < 0)
		snprintf(msg, len, "could not release standby \"%s\": %s", app, strerror(-ret));
	else
		snprintf(msg, len, "standby \"%s\" released%s", app,
			 how == SENDLIMIT_RELEASE_BEFORE ? " up to just before the commit time" :
			 how == SENDLIMIT_RELEASE_UPTO	 ? " up to the LSN" :
							   "");
	if (!ret) {
		log_log("%s", msg);
		serve_wake(s);
	}
	return ret;
}
