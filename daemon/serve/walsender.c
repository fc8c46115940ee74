// SPDX-License-Identifier: MIT
/*
 * The walsender endpoint of a replica (walsender.h): accept, startup and access rules,
 * replication commands, and streaming from the store.
 */
#include "serve/walsender.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/hba.h"
#include "common/log.h"
#include "common/scram.h"
#include "net/acceptor.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/tls.h"
#include "proto/pgrepl.h"
#include "serve/pgwire.h"
#include "serve/sendlimit.h"
#include "serve/slots.h"
#include "wal/name.h"

/* Receive buffer: the largest message a standby may send, with its header. */
#define RX_CAP (PGWIRE_MAX_MESSAGE + 5)
/* Samples of (LSN sent, when) kept per standby to measure its lags. */
#define SERVE_LAG_SAMPLES 64
/* Ciphertext received per recv from a TLS standby. */
#define TLS_RX_CAP (32 * 1024)
/* A history file is read whole, on the loop: PostgreSQL's are a line per timeline. */
#define HISTORY_MAX (64 * 1024)

enum sb_state {
	SB_STARTUP, /* SSLRequest, GSSENCRequest, StartupMessage */
	SB_AUTH, /* SCRAM-SHA-256: SASLInitialResponse, SASLResponse */
	SB_QUERY, /* authenticated, between commands */
	SB_STREAMING, /* in START_REPLICATION's CopyBoth */
};

struct standby {
	struct serve *s;
	struct standby *next;
	int fd;
	enum sb_state state;
	unsigned int inflight;
	bool closing;
	bool close_when_sent;
	struct ring_op rx_op, tx_op, file_op;
	/* receiving */
	uint8_t rx[RX_CAP];
	size_t rx_len;
	bool rx_busy;
	bool ssl_done, gss_done;
	/* TLS, after SSLRequest was answered 'S': ciphertext is received into tls_rx and
	 * fed to OpenSSL (memory BIOs, net/tls.h); what is queued in @out is encrypted as it
	 * moves to @sending, after its first out_plain bytes (the 'S' itself) */
	struct tls_conn *tls;
	uint8_t *tls_rx;
	size_t out_plain;
	char cert_name[256]; /* the verified client certificate's common name, "" none */
	/* SCRAM-SHA-256, between AuthenticationSASL and AuthenticationOk */
	struct scram_exchange *scram;
	bool scram_first_done;
	uint8_t cbind[EVP_MAX_MD_SIZE]; /* tls-server-end-point, when PLUS is offered */
	int cbind_len; /* > 0 when it is */
	/* sending: @out collects, @sending is in flight (never moved while it is) */
	struct pgwire_buf out, sending;
	size_t sending_off;
	bool tx_busy;
	/* who */
	struct sockaddr_storage sa;
	char addr[64];
	char user[PGWIRE_MAX_NAME];
	char app[PGWIRE_MAX_NAME];
	char slot[PGWIRE_MAX_NAME];
	uint32_t pid; /* its backend pid, told at AuthenticationOk */
	struct serve_slot *slot_p; /* the slot streamed through (slots.h), NULL none */
	bool drop_waiting; /* DROP_REPLICATION_SLOT slot WAIT: until it is inactive */
	int64_t accepted_ms, last_rx_ms;
	int64_t connected_since;
	bool ping_sent;
	/* streaming */
	uint32_t tli;
	uint64_t next_lsn; /* the next byte to send */
	uint64_t write, flush, apply; /* reported by the standby */
	uint32_t xmin, catalog_xmin; /* its hot standby feedback */
	/* lags as walsender.c's LagTracker measures them: when the WAL up to each sample's
	 * LSN was sent; a report reaching a sample gives that position's lag */
	struct {
		uint64_t lsn;
		int64_t ms;
	} lag_samples[SERVE_LAG_SAMPLES];
	unsigned int lag_next; /* the next sample written (a ring; the oldest overwritten) */
	uint64_t lag_seen[3]; /* write, flush, apply: the newest sample used */
	int64_t lag_ms[3]; /* the last lag measured, -1 none */
	uint64_t bytes_sent;
	bool copy_done_sent;
	int file_fd; /* the segment of next_lsn, -1 none */
	uint64_t file_segno;
	uint32_t file_tli;
	char file_name[WAL_NAME_MAX + 1];
	uint64_t file_limit; /* bytes of it that are durable and may be sent */
	bool file_incoming; /* opened from .incoming */
	bool file_busy; /* an open or read in flight */
	bool waiting; /* for a hook: nothing more is durable yet */
	uint8_t *rbuf; /* SERVE_MAX_SEND bytes */
	uint32_t read_len;
	uint64_t stop_lsn; /* an older timeline: where it ends (its switch point), else 0 */
	uint32_t next_tli; /* and the timeline that follows it */
	uint64_t gen; /* of the stream: one per START_REPLICATION */
	uint64_t read_gen; /* of the open or read in flight */
};

/* Files in .incoming whose durable length the replica role reported, at most. */
#define SERVE_MAX_GROWING 16

/* A segment being received into .incoming, as the replica role last said. */
struct growing {
	char name[WAL_NAME_MAX + 1];
	char tmp_name[sizeof(((struct store_partial *)0)->tmp_name)];
	uint64_t durable;
};

struct serve {
	struct ring *ring;
	const struct store *store;
	struct acceptor acceptor;
	int listen_fd;
	bool accepting;
	bool stopping;
	struct hba_table *hba;
	struct scram_passwords *passwords; /* pg_password_file, NULL when not set */
	bool tls_on; /* tls = on: SSLRequest is answered 'S' */
	struct tls_ctx tls;
	char node_name[CONFIG_MAX_NAME];
	int keepalive_timeout_ms;
	int connect_timeout_ms;
	struct standby *standbys;
	unsigned int nstandbys;
	uint32_t next_pid;
	/* the WAL this replica holds: newest timeline, and its durable end on it */
	uint32_t tli;
	uint64_t end_lsn;
	/* the segments being received into .incoming (name "" for a free entry): more than
	 * one when pushes of whole files are in flight beside the stream */
	struct growing growing[SERVE_MAX_GROWING];
	uint64_t refused, hba_refused, shed;
	struct serve_slots slots;
	/* the furthest apply position a standby reported, and who is told of it */
	uint64_t applied_lsn;
	serve_applied_fn applied_fn;
	void *applied_arg;
	struct sendlimit *limits; /* delayed and held standbys */
};

static void serve_wake(struct serve *s);

/* The unix time in µs, the clock delays are measured by. */
static int64_t unix_now_us(void)
{
	return pgrepl_time_to_unix_us(pgrepl_time_now());
}

static struct growing *growing_find(struct serve *s, const char *name)
{
	for (unsigned int i = 0; i < SERVE_MAX_GROWING; i++)
		if (s->growing[i].name[0] && !strcmp(s->growing[i].name, name))
			return &s->growing[i];
	return NULL;
}

/* Record @name's durable length: its entry, a free one, or the oldest segment's. */
static void growing_set(struct serve *s, const char *name, const char *tmp_name, uint64_t durable)
{
	struct growing *g = growing_find(s, name);

	for (unsigned int i = 0; !g && i < SERVE_MAX_GROWING; i++)
		if (!s->growing[i].name[0])
			g = &s->growing[i];
	for (unsigned int i = 0; !g && i < SERVE_MAX_GROWING; i++)
		if (!g || strcmp(s->growing[i].name, g->name) < 0)
			g = &s->growing[i];
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(g->tmp_name, sizeof(g->tmp_name), "%s", tmp_name);
	g->durable = durable;
}

static void sb_pump(struct standby *sb);
static void sb_no_slot(struct standby *sb, const char *name);
static void serve_fill_slots(const struct serve *s, struct status_node *n);
static void sb_flush(struct standby *sb);
static void sb_stream_end(struct standby *sb);
static int sb_tls_seal(struct standby *sb);

/* ---- what the store holds ---- */

static int sb_find_fork(struct standby *sb, uint32_t tli, uint64_t start, bool wait);
static ssize_t read_history(const struct serve *s, uint32_t tli, char *buf);

/* The history of timeline @tli, newer than the newest so far, is stored: the WAL on it
 * ends, for now, where the previous one forked (what the new timeline shares with it). */
static void serve_new_history(struct serve *s, uint32_t tli)
{
	char *text = malloc(HISTORY_MAX);
	ssize_t n = text ? read_history(s, tli, text) : -ENOMEM;
	uint64_t fork = 0;
	uint32_t child;

	if (n < 0 || wal_history_fork(text, (size_t)n, tli, s->tli, &fork, &child) < 0)
		fork = 0; /* not known until its first segment */
	free(text);
	s->tli = tli;
	s->end_lsn = fork;
}

/* A newer timeline (its history, or a segment of it, which may come first) is stored: the
 * standbys streaming an older one learn where it ends from the newest history, and get
 * the end of their timeline once they are sent WAL up to there. */
static void serve_new_timeline(struct serve *s)
{
	for (struct standby *sb = s->standbys, *next; sb; sb = next) {
		int ret;

		next = sb->next; /* sb_flush() may free @sb (out of memory) */
		if (sb->closing || sb->state != SB_STREAMING || sb->stop_lsn || sb->tli >= s->tli)
			continue;
		ret = sb_find_fork(sb, sb->tli, sb->next_lsn, true);
		if (ret == -EAGAIN)
			continue; /* its history is not stored yet: it waits for it */
		if (ret < 0) {
			sb_stream_end(sb);
			sb->close_when_sent = true;
			sb_flush(sb);
		}
	}
}

/* Take @name, stored or @durable bytes of it durable, into the newest timeline's end. */
static void serve_note_wal(struct serve *s, const char *name, uint64_t durable, bool complete)
{
	struct wal_name wn;
	uint64_t segno, end;
	uint32_t seg_size = s->store->id.seg_size;

	if (wal_name_parse(name, &wn) < 0)
		return;
	if (wn.kind == WAL_FILE_HISTORY) {
		if (wn.timeline > s->tli)
			serve_new_history(s, wn.timeline);
		if (wn.timeline == s->tli)
			serve_new_timeline(s); /* also when a segment of it came first */
		return;
	}
	if (wn.kind != WAL_FILE_SEGMENT || !seg_size || wal_name_segno(&wn, seg_size, &segno) < 0)
		return;
	end = segno * seg_size + (complete ? seg_size : durable);
	if (wn.timeline > s->tli) {
		s->tli = wn.timeline;
		s->end_lsn = end;
		serve_new_timeline(s);
	} else if (wn.timeline == s->tli && end > s->end_lsn) {
		s->end_lsn = end;
	}
}

/* At start: the newest timeline and segment of the store, and its kept partials.  The
 * one directory scan of the daemon's start, as store_open() does its own. */
static void serve_scan(struct serve *s)
{
	int fd = dup(s->store->dir_fd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		log_warning("could not open directory \"%s\": %s", s->store->path, strerror(errno));
		return;
	}
	rewinddir(dir);
	while ((de = readdir(dir)))
		serve_note_wal(s, de->d_name, 0, true);
	closedir(dir);
	for (unsigned int i = 0; i < s->store->npartials; i++) {
		const struct store_partial *p = &s->store->partials[i];

		serve_note_wal(s, p->name, p->durable, false);
		growing_set(s, p->name, p->tmp_name, p->durable);
	}
}

/* ---- connection plumbing ---- */

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
	for (unsigned int i = 0; sb->pid && i < SERVE_MAX_SLOTS; i++)
		if (s->slots.slot[i].name[0] && s->slots.slot[i].temporary &&
		    s->slots.slot[i].owner_pid == sb->pid)
			(void)serve_slots_drop(&s->slots, &s->slots.slot[i]);
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
static void sb_close(struct standby *sb)
{
	if (!sb->closing) {
		sb->closing = true;
		shutdown(sb->fd, SHUT_RDWR);
	}
	if (!sb->inflight)
		sb_free(sb);
}

static struct io_uring_sqe *sb_sqe(struct standby *sb, struct ring_op *op)
{
	sb->inflight++;
	return ring_sqe(sb->s->ring, op);
}

/*
 * The end of a completion's work: its request no longer counts; frees @sb when it is
 * closing and nothing else is in flight.  A completion calls it last, so that nothing
 * it calls before (sb_close() included) frees @sb under it.
 */
static void sb_op_done(struct standby *sb)
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
static void sb_flush(struct standby *sb)
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

/* Queue an ErrorResponse; FATAL closes the connection once it is sent. */
static void sb_error(struct standby *sb, const char *severity, const char *sqlstate,
		     const char *fmt, ...) attr_printf(4, 5);

static void sb_error(struct standby *sb, const char *severity, const char *sqlstate,
		     const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pgwire_error(&sb->out, severity, sqlstate, msg);
	if (!strcmp(severity, "FATAL"))
		sb->close_when_sent = true;
}

/* ---- startup ---- */

static void sb_host(const struct standby *sb, char *host, size_t len)
{
	const struct sockaddr *sa = (const struct sockaddr *)&sb->sa;

	snprintf(host, len, "?");
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host,
			  (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
			  (socklen_t)len);
}

/* A refusal of the authentication step: counted, logged and answered in PostgreSQL's
 * words (auth.c auth_failed()), with @sqlstate 28P01 or 28000. */
static void sb_auth_failed(struct standby *sb, const char *sqlstate, const char *what,
			   const char *detail)
{
	sb->s->refused++;
	log_log("%s authentication failed for user \"%s\" from %s", what, sb->user, sb->addr);
	if (detail && detail[0])
		log_detail("%s", detail);
	sb_error(sb, "FATAL", sqlstate, "%s authentication failed for user \"%s\"", what, sb->user);
}

/*
 * The access rules: role standby, the startup's user as node name, the client
 * certificate's name if any, TLS or not.  Returns the rule's method, or -1 when refused
 * (answered).
 */
static int sb_admitted(struct standby *sb)
{
	struct serve *s = sb->s;
	struct hba_request req = { .role = HBA_ROLE_STANDBY,
				   .node_name = sb->user,
				   .cert_name = sb->cert_name[0] ? sb->cert_name : NULL,
				   .tls = sb->tls != NULL,
				   .addr = (const struct sockaddr *)&sb->sa };
	struct hba_match match = { 0 };
	char host[INET6_ADDRSTRLEN], why[768];
	const char *encryption = sb->tls ? "SSL encryption" : "no encryption";

	if (s->hba && hba_match(s->hba, &req, &match) == HBA_ALLOW)
		return (int)match.rule->method;
	s->refused++;
	s->hba_refused++;
	sb_host(sb, host, sizeof(host));
	hba_format_refusal(s->hba, &req, &match, why, sizeof(why));
	log_log("refused standby connection from %s: %s", sb->addr, why);
	/* PostgreSQL's words (auth.c ClientAuthentication()), so the standby logs them. */
	if (match.rule)
		sb_error(sb, "FATAL", "28000",
			 "pg_hba.conf rejects replication connection for host \"%s\", user \"%s\", "
			 "%s",
			 host, sb->user, encryption);
	else
		sb_error(sb, "FATAL", "28000",
			 "no pg_hba.conf entry for replication connection from host \"%s\", user "
			 "\"%s\", %s",
			 host, sb->user, encryption);
	return -1;
}

static void sb_auth_ok(struct standby *sb);

/*
 * SCRAM-SHA-256: offer the mechanisms (with channel binding when over TLS, as
 * PostgreSQL's SCRAM-SHA-256-PLUS) and wait for the SASLInitialResponse.
 */
static void sb_sasl_begin(struct standby *sb)
{
	static const char *const mechs[] = { SCRAM_MECHANISM_PLUS, SCRAM_MECHANISM };
	bool plus;

	sb->scram = calloc(1, sizeof(*sb->scram));
	if (!sb->scram) {
		log_error("out of memory");
		sb_error(sb, "FATAL", "53200", "out of memory");
		return;
	}
	if (!sb->s->passwords)
		log_log("user \"%s\" must authenticate with scram-sha-256, but pg_password_file is "
			"not set: it will fail",
			sb->user);
	sb->cbind_len = sb->tls ? tls_conn_server_end_point(sb->tls, sb->cbind, sizeof(sb->cbind)) :
				  -ENOTSUP;
	plus = sb->cbind_len > 0;
	sb->state = SB_AUTH;
	sb->scram_first_done = false;
	pgwire_auth_sasl(&sb->out, plus ? 2 : 1, plus ? mechs : mechs + 1);
}

/* Why a SCRAM step failed (scram.h's results), in PostgreSQL's words and SQLSTATEs. */
static void sb_sasl_refuse(struct standby *sb, int err)
{
	const char *detail = sb->scram->detail;

	switch (err) {
	case -EPERM:
		sb_auth_failed(sb, "28P01", "password", detail);
		return;
	case -EACCES:
		sb->s->refused++;
		log_log("SCRAM channel binding failed for user \"%s\" from %s", sb->user, sb->addr);
		log_detail("%s", detail);
		sb_error(sb, "FATAL", "28000",
			 sb->scram_first_done ? "SCRAM channel binding check failed" :
						"SCRAM channel binding negotiation error");
		return;
	default:
		sb->s->refused++;
		log_log("malformed SCRAM message from %s (user \"%s\")", sb->addr, sb->user);
		log_detail("%s", detail);
		sb_error(sb, "FATAL", "08P01", "malformed SCRAM message");
		return;
	}
}

/* A SASLInitialResponse, then a SASLResponse ('p'). */
static void sb_sasl(struct standby *sb, const struct pgwire_msg *m)
{
	struct scram_exchange *x = sb->scram;
	char out[SCRAM_MAX_MESSAGE];
	int n;

	if (!sb->scram_first_done) {
		struct pgwire_sasl_initial in;
		char nonce[SCRAM_NONCE_TEXT];
		bool plus;

		if (pgwire_parse_sasl_initial(m->body, m->len, &in) < 0) {
			log_log("invalid SASLInitialResponse from %s", sb->addr);
			sb_error(sb, "FATAL", "08P01", "malformed SCRAM message");
			return;
		}
		plus = !strcmp(in.mechanism, SCRAM_MECHANISM_PLUS) && sb->cbind_len > 0;
		if (!plus && strcmp(in.mechanism, SCRAM_MECHANISM)) {
			log_log("client %s selected an invalid SASL authentication mechanism",
				sb->addr);
			sb_error(sb, "FATAL", "08P01",
				 "client selected an invalid SASL authentication mechanism");
			return;
		}
		if (scram_nonce_new(nonce) < 0 ||
		    scram_exchange_begin(x, scram_passwords_find(sb->s->passwords, sb->user),
					 sb->user, plus, sb->cbind_len > 0 ? sb->cbind : NULL,
					 sb->cbind_len > 0 ? (size_t)sb->cbind_len : 0,
					 nonce) < 0) {
			log_error("could not generate random nonce");
			sb_error(sb, "FATAL", "XX000", "could not generate random nonce");
			return;
		}
		n = scram_exchange_first(x, in.data, in.len, out, sizeof(out));
		if (n < 0) {
			sb_sasl_refuse(sb, n);
			return;
		}
		sb->scram_first_done = true;
		pgwire_auth_sasl_step(&sb->out, false, out, (size_t)n);
		return;
	}
	n = scram_exchange_final(x, m->body, m->len, out, sizeof(out));
	if (n < 0) {
		sb_sasl_refuse(sb, n);
		return;
	}
	pgwire_auth_sasl_step(&sb->out, true, out, (size_t)n);
	scram_exchange_end(x);
	free(x);
	sb->scram = NULL;
	sb_auth_ok(sb);
}

static void sb_startup(struct standby *sb, const struct pgwire_startup *st)
{
	struct serve *s = sb->s;

	snprintf(sb->user, sizeof(sb->user), "%s", st->user);
	snprintf(sb->app, sizeof(sb->app), "%s", st->application_name);
	if (st->replication != PGWIRE_REPL_PHYSICAL) {
		s->refused++;
		log_log("refused connection from %s (user \"%s\"): not a physical replication "
			"connection",
			sb->addr, sb->user);
		if (st->replication == PGWIRE_REPL_LOGICAL)
			sb_error(sb, "FATAL", "0A000",
				 "logical replication is not supported: walship serves physical "
				 "replication only");
		else
			sb_error(sb, "FATAL", "0A000",
				 "walship serves physical replication only (replication=true), not "
				 "SQL sessions");
		return;
	}
	switch (sb_admitted(sb)) {
	case HBA_METHOD_TRUST:
		sb_auth_ok(sb);
		return;
	case HBA_METHOD_CERT:
		/* PostgreSQL's words (auth.c): a certificate is required, naming the user */
		if (!sb->cert_name[0]) {
			s->refused++;
			log_log("connection from %s (user \"%s\") requires a valid client "
				"certificate",
				sb->addr, sb->user);
			sb_error(sb, "FATAL", "28000",
				 "connection requires a valid client certificate");
		} else if (strcmp(sb->cert_name, sb->user)) {
			char detail[512];

			snprintf(detail, sizeof(detail),
				 "provided user name (%s) and authenticated user name (%s) do not "
				 "match",
				 sb->user, sb->cert_name);
			sb_auth_failed(sb, "28000", "certificate", detail);
		} else {
			sb_auth_ok(sb);
		}
		return;
	case HBA_METHOD_SCRAM:
		sb_sasl_begin(sb);
		return;
	default:
		return; /* refused, answered */
	}
}

/* Authenticated: AuthenticationOk and the session's parameters, ready for commands. */
static void sb_auth_ok(struct standby *sb)
{
	struct serve *s = sb->s;
	uint32_t pid = s->next_pid++;

	sb->pid = pid;

	log_log("replication connection authorized: user=%s application_name=%s host=%s%s%s",
		sb->user, sb->app, sb->addr, sb->tls ? " SSL enabled " : "",
		sb->tls ? sb->tls->version : "");
	sb->state = SB_QUERY;
	sb->connected_since = time(NULL);
	pgwire_auth_ok(&sb->out);
	/* What libpq and pg_receivewal look at (integer_datetimes: streamutil.c). */
	pgwire_parameter_status(&sb->out, "application_name", sb->app);
	pgwire_parameter_status(&sb->out, "client_encoding", "UTF8");
	pgwire_parameter_status(&sb->out, "DateStyle", "ISO, MDY");
	pgwire_parameter_status(&sb->out, "default_transaction_read_only", "on");
	pgwire_parameter_status(&sb->out, "in_hot_standby", "off");
	pgwire_parameter_status(&sb->out, "integer_datetimes", "on");
	pgwire_parameter_status(&sb->out, "IntervalStyle", "postgres");
	pgwire_parameter_status(&sb->out, "is_superuser", "off");
	pgwire_parameter_status(&sb->out, "server_encoding", "UTF8");
	pgwire_parameter_status(&sb->out, "server_version", "15.0 (walship)");
	pgwire_parameter_status(&sb->out, "session_authorization", sb->user);
	pgwire_parameter_status(&sb->out, "standard_conforming_strings", "on");
	pgwire_parameter_status(&sb->out, "TimeZone", "UTC");
	/* A pid unique among this daemon's standbys: the walreceiver names its temporary
	 * slot after it. */
	pgwire_backend_key(&sb->out, pid, (uint32_t)random());
	pgwire_ready(&sb->out);
}

/*
 * SSLRequest with tls = on: 'S', sent as it is, then the TLS handshake over what the
 * standby sends next (sb_tls_input()).  Returns 0, or -ENOMEM (the connection closed).
 */
static int sb_tls_begin(struct standby *sb)
{
	sb->tls = calloc(1, sizeof(*sb->tls));
	sb->tls_rx = malloc(TLS_RX_CAP);
	if (!sb->tls || !sb->tls_rx || tls_conn_init(sb->tls, &sb->s->tls) < 0) {
		free(sb->tls);
		sb->tls = NULL;
		log_error("out of memory");
		sb_close(sb);
		return -ENOMEM;
	}
	pgwire_put_byte(&sb->out, 'S');
	sb->out_plain = sb->out.len; /* an 'N' to a GSSENCRequest before it too */
	return 0;
}

/* Returns bytes consumed, 0 for more, -1 when the connection is done. */
static int sb_rx_startup(struct standby *sb)
{
	struct pgwire_startup st;
	int n = pgwire_parse_startup(sb->rx, sb->rx_len, &st);

	if (n == 0)
		return 0;
	if (n == -EPROTONOSUPPORT) {
		sb_error(sb, "FATAL", "0A000",
			 "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
			 st.protocol >> 16, st.protocol & 0xffff);
		return -1;
	}
	if (n < 0) {
		log_log("invalid startup packet layout from %s: expected terminator as last byte",
			sb->addr);
		sb_close(sb);
		return -1;
	}
	switch (st.kind) {
	case PGWIRE_SSL:
	case PGWIRE_GSSENC: {
		bool *done = st.kind == PGWIRE_SSL ? &sb->ssl_done : &sb->gss_done;

		if (*done) {
			sb_close(sb);
			return -1;
		}
		*done = true;
		if (sb->rx_len > (size_t)n) { /* postmaster.c ProcessStartupPacket() */
			log_log("received unencrypted data after %s request from %s",
				st.kind == PGWIRE_SSL ? "SSL" : "GSSAPI encryption", sb->addr);
			sb_close(sb);
			return -1;
		}
		if (st.kind == PGWIRE_SSL && sb->s->tls_on)
			return sb_tls_begin(sb) < 0 ? -1 : n;
		pgwire_put_byte(&sb->out, 'N');
		return n;
	}
	case PGWIRE_CANCEL:
		sb_close(sb); /* nothing to cancel */
		return -1;
	case PGWIRE_STARTUP:
		sb_startup(sb, &st);
		return n;
	}
	return n;
}

/* ---- commands ---- */

static void sb_row(struct standby *sb, unsigned int n, const char *const *names,
		   const uint32_t *oids, const char *const *values, const size_t *lens,
		   const char *tag)
{
	pgwire_row_description(&sb->out, n, names, oids);
	pgwire_data_row(&sb->out, n, values, lens);
	pgwire_command_complete(&sb->out, tag);
	pgwire_ready(&sb->out);
}

static void sb_identify_system(struct standby *sb)
{
	struct serve *s = sb->s;
	static const char *const names[] = { "systemid", "timeline", "xlogpos", "dbname" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_INT4, PGWIRE_OID_TEXT,
					 PGWIRE_OID_TEXT };
	char sysid[24], tli[12], pos[PGREPL_LSN_TEXT];
	const char *values[4] = { sysid, tli, pos, NULL };
	size_t lens[4];

	if (!s->store->id.system_identifier || !s->tli) {
		sb_error(sb, "ERROR", "55000", "this appliance holds no WAL yet");
		pgwire_ready(&sb->out);
		return;
	}
	snprintf(sysid, sizeof(sysid), "%" PRIu64, s->store->id.system_identifier);
	snprintf(tli, sizeof(tli), "%u", s->tli);
	pgrepl_lsn_format(s->end_lsn, pos, sizeof(pos));
	for (int i = 0; i < 3; i++)
		lens[i] = strlen(values[i]);
	lens[3] = 0;
	sb_row(sb, 4, names, oids, values, lens, "IDENTIFY_SYSTEM");
}

static void sb_show(struct standby *sb, const char *name)
{
	uint32_t seg_size = sb->s->store->id.seg_size;
	const uint32_t oid = PGWIRE_OID_TEXT;
	char value[32];
	const char *v = value;
	size_t len;

	if (!strcmp(name, "wal_segment_size") && seg_size) {
		if (seg_size % (1024 * 1024 * 1024) == 0)
			snprintf(value, sizeof(value), "%uGB", seg_size / (1024 * 1024 * 1024));
		else
			snprintf(value, sizeof(value), "%uMB", seg_size / (1024 * 1024));
	} else if (!strcmp(name, "data_directory_mode")) {
		snprintf(value, sizeof(value), "0700");
	} else {
		sb_error(sb, "ERROR", "42704", "unrecognized configuration parameter \"%s\"", name);
		pgwire_ready(&sb->out);
		return;
	}
	len = strlen(value);
	sb_row(sb, 1, (const char *const *)&name, &oid, &v, &len, "SHOW");
}

/*
 * Read the stored history file of @tli into @buf (HISTORY_MAX bytes): a small file read
 * whole on the loop (a line per timeline).  Returns its length or -errno.
 */
static ssize_t read_history(const struct serve *s, uint32_t tli, char *buf)
{
	char name[32];
	ssize_t n;
	int fd;

	snprintf(name, sizeof(name), "%08X.history", tli);
	fd = openat(s->store->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, HISTORY_MAX);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

static void sb_timeline_history(struct standby *sb, uint32_t tli)
{
	static const char *const names[] = { "filename", "content" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_BYTEA };
	char name[32];
	char *content = malloc(HISTORY_MAX);
	const char *values[2] = { name, content };
	size_t lens[2];
	ssize_t n;

	snprintf(name, sizeof(name), "%08X.history", tli);
	if (!content) {
		sb_error(sb, "FATAL", "53200", "out of memory");
		return;
	}
	n = read_history(sb->s, tli, content);
	if (n < 0) {
		sb_error(sb, "ERROR", "58P01", "could not open file \"pg_wal/%s\": %s", name,
			 strerror((int)-n));
		pgwire_ready(&sb->out);
		free(content);
		return;
	}
	lens[0] = strlen(name);
	lens[1] = (size_t)n;
	sb_row(sb, 2, names, oids, values, lens, "TIMELINE_HISTORY");
	free(content);
}

/*
 * START_REPLICATION on timeline @tli older than the newest: where it ended, from the
 * newest timeline's history (sb->stop_lsn, sb->next_tli), so that the stream stops there
 * with the end of timeline of walsender.c.  Returns 0, -EAGAIN when @wait and that
 * history is not stored yet, or -1 when the standby has been answered with an error.
 */
static int sb_find_fork(struct standby *sb, uint32_t tli, uint64_t start, bool wait)
{
	struct serve *s = sb->s;
	char *text = malloc(HISTORY_MAX);
	char at[PGREPL_LSN_TEXT], fork[PGREPL_LSN_TEXT];
	ssize_t n = text ? read_history(s, s->tli, text) : -ENOMEM;
	int ret = n < 0 ? (int)n :
			  wal_history_fork(text, (size_t)n, s->tli, tli, &sb->stop_lsn,
					   &sb->next_tli);

	free(text);
	if (wait && n == -ENOENT)
		return -EAGAIN;
	pgrepl_lsn_format(start, at, sizeof(at));
	if (ret < 0 || tli > s->tli) {
		if (ret < 0 && ret != -ENOENT)
			log_warning("could not read the history of timeline %u: %s", s->tli,
				    strerror(-ret));
		sb_error(sb, "ERROR", "58P01",
			 "requested starting point %s on timeline %u is not in this server's "
			 "history",
			 at, tli);
		pgwire_ready(&sb->out);
		return -1;
	}
	if (start > sb->stop_lsn) {
		pgrepl_lsn_format(sb->stop_lsn, fork, sizeof(fork));
		sb_error(sb, "ERROR", "58P01",
			 "requested starting point %s on timeline %u is not in this server's "
			 "history: it forked from timeline %u at %s",
			 at, tli, tli, fork);
		pgwire_ready(&sb->out);
		return -1;
	}
	return 0;
}

static void sb_start_replication(struct standby *sb, const struct pgwire_command *cmd)
{
	struct serve *s = sb->s;
	char start[PGREPL_LSN_TEXT], end[PGREPL_LSN_TEXT];
	uint32_t tli = cmd->timeline ? cmd->timeline : s->tli;

	if (cmd->logical) {
		sb_error(sb, "ERROR", "0A000",
			 "logical replication is not supported: walship serves physical "
			 "replication only");
		pgwire_ready(&sb->out);
		return;
	}
	if (!s->store->id.system_identifier || !s->tli || !s->store->id.seg_size) {
		sb_error(sb, "ERROR", "55000", "this appliance holds no WAL yet");
		pgwire_ready(&sb->out);
		return;
	}
	pgrepl_lsn_format(cmd->start, start, sizeof(start));
	sb->stop_lsn = 0;
	sb->next_tli = 0;
	if (cmd->slot[0]) { /* walsender.c StartReplication(): ReplicationSlotAcquire() */
		struct serve_slot *slot = serve_slots_find(&s->slots, cmd->slot);

		if (!slot) {
			sb_no_slot(sb, cmd->slot);
			return;
		}
		if (slot->active_pid && slot->active_pid != sb->pid) {
			sb_error(sb, "ERROR", "55006",
				 "replication slot \"%s\" is active for PID %u", cmd->slot,
				 slot->active_pid);
			pgwire_ready(&sb->out);
			return;
		}
		sb->slot_p = slot;
	}
	if (tli != s->tli && sb_find_fork(sb, tli, cmd->start, false) < 0) {
		sb->slot_p = NULL;
		return; /* answered */
	}
	if (sb->slot_p)
		sb->slot_p->active_pid = sb->pid;
	snprintf(sb->slot, sizeof(sb->slot), "%s", cmd->slot);
	sb->tli = tli;
	sb->next_lsn = cmd->start;
	sb->copy_done_sent = false;
	sb->state = SB_STREAMING;
	sb->ping_sent = false;
	sb->last_rx_ms = clock_now_ms();
	pgwire_copy_both(&sb->out);
	if (!sb->stop_lsn && cmd->start > s->end_lsn) {
		pgrepl_lsn_format(s->end_lsn, end, sizeof(end));
		sb_error(sb, "ERROR", "XX000",
			 "requested starting point %s is ahead of the WAL flush position of this "
			 "server %s",
			 start, end);
		pgwire_ready(&sb->out);
		sb->close_when_sent = true;
		return;
	}
	log_log("standby \"%s\" (%s) streams from %s on timeline %u", sb->app, sb->addr, start,
		tli);
	sb_pump(sb);
}

/* The slot named in a command is missing: PostgreSQL's words (slot.c). */
static void sb_no_slot(struct standby *sb, const char *name)
{
	sb_error(sb, "ERROR", "42704", "replication slot \"%s\" does not exist", name);
	pgwire_ready(&sb->out);
}

/*
 * CREATE_REPLICATION_SLOT name [TEMPORARY] PHYSICAL [RESERVE_WAL] (slots.h): with
 * RESERVE_WAL the slot keeps, from now on, the WAL from the durable end of what this
 * appliance holds; without, nothing until a standby streams through it and confirms a
 * flush.  A temporary slot goes with this connection.
 */
static void sb_create_slot(struct standby *sb, const struct pgwire_command *cmd)
{
	static const char *const names[] = { "slot_name", "consistent_point", "snapshot_name",
					     "output_plugin" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_TEXT, PGWIRE_OID_TEXT,
					 PGWIRE_OID_TEXT };
	struct serve *s = sb->s;
	struct serve_slot *slot;
	char pos[PGREPL_LSN_TEXT];
	const char *values[4] = { cmd->slot, pos, NULL, NULL };
	size_t lens[4] = { strlen(cmd->slot), 0, 0, 0 };
	int err;

	if (cmd->logical) {
		sb_error(sb, "ERROR", "0A000",
			 "logical replication slots are not supported by walship: physical "
			 "slots only");
		pgwire_ready(&sb->out);
		return;
	}
	if (serve_slot_name_valid(cmd->slot) < 0) {
		sb_error(sb, "ERROR", "42602",
			 "replication slot name \"%s\" contains invalid character or is too long",
			 cmd->slot);
		pgwire_ready(&sb->out);
		return;
	}
	slot = serve_slots_create(&s->slots, cmd->slot, cmd->reserve_wal ? s->end_lsn : 0, s->tli,
				  cmd->temporary, &err);
	if (!slot) {
		if (err == -EEXIST)
			sb_error(sb, "ERROR", "42710", "replication slot \"%s\" already exists",
				 cmd->slot);
		else if (err == -ENOSPC)
			sb_error(sb, "ERROR", "53400", "all replication slots are in use");
		else
			sb_error(sb, "ERROR", "58030", "could not save replication slot \"%s\"",
				 cmd->slot);
		pgwire_ready(&sb->out);
		return;
	}
	slot->owner_pid = sb->pid;
	pgrepl_lsn_format(slot->restart_lsn, pos, sizeof(pos));
	log_log("replication slot \"%s\" created%s by \"%s\" (%s), restart LSN %s", slot->name,
		slot->temporary ? " (temporary)" : "", sb->app, sb->addr, pos);
	lens[1] = strlen(pos);
	sb_row(sb, 4, names, oids, values, lens, "CREATE_REPLICATION_SLOT");
}

/* Drop the slot of DROP_REPLICATION_SLOT; with WAIT, once it is inactive.  Returns false
 * when it must wait (sb->drop_waiting set; tried again by serve_tick()). */
static bool sb_drop_slot(struct standby *sb, const char *name, bool wait)
{
	struct serve *s = sb->s;
	struct serve_slot *slot = serve_slots_find(&s->slots, name);

	sb->drop_waiting = false;
	if (!slot) {
		sb_no_slot(sb, name);
		return true;
	}
	if (slot->active_pid && slot->active_pid != sb->pid) {
		if (wait) {
			snprintf(sb->slot, sizeof(sb->slot), "%s", name);
			sb->drop_waiting = true;
			return false;
		}
		sb_error(sb, "ERROR", "55006", "replication slot \"%s\" is active for PID %u", name,
			 slot->active_pid);
		pgwire_ready(&sb->out);
		return true;
	}
	if (serve_slots_drop(&s->slots, slot) < 0) { /* logs */
		sb_error(sb, "ERROR", "58030", "could not remove replication slot \"%s\"", name);
		pgwire_ready(&sb->out);
		return true;
	}
	log_log("replication slot \"%s\" dropped by \"%s\" (%s)", name, sb->app, sb->addr);
	pgwire_command_complete(&sb->out, "DROP_REPLICATION_SLOT");
	pgwire_ready(&sb->out);
	return true;
}

/* READ_REPLICATION_SLOT (PostgreSQL 15): its type, restart LSN and timeline, all NULL
 * when there is no such slot. */
static void sb_read_slot(struct standby *sb, const char *name)
{
	static const char *const names[] = { "slot_type", "restart_lsn", "restart_tli" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_TEXT, PGWIRE_OID_INT8 };
	const struct serve_slot *slot = serve_slots_find(&sb->s->slots, name);
	char lsn[PGREPL_LSN_TEXT], tli[12];
	const char *values[3] = { NULL, NULL, NULL };
	size_t lens[3] = { 0, 0, 0 };

	if (slot) {
		values[0] = "physical";
		lens[0] = strlen(values[0]);
	}
	if (slot && slot->restart_lsn) {
		pgrepl_lsn_format(slot->restart_lsn, lsn, sizeof(lsn));
		snprintf(tli, sizeof(tli), "%u", slot->restart_tli);
		values[1] = lsn;
		values[2] = tli;
		lens[1] = strlen(lsn);
		lens[2] = strlen(tli);
	}
	sb_row(sb, 3, names, oids, values, lens, "READ_REPLICATION_SLOT");
}

static void sb_query(struct standby *sb, const struct pgwire_msg *m)
{
	struct pgwire_command cmd;
	const char *text = (const char *)m->body;

	if (!m->len || m->body[m->len - 1] != '\0' || strlen(text) != m->len - 1) {
		sb_error(sb, "FATAL", "08P01", "invalid string in message");
		return;
	}
	if (pgwire_parse_command(text, &cmd) < 0) {
		sb_error(sb, "ERROR", "42601", "syntax error in replication command %s", cmd.word);
		pgwire_ready(&sb->out);
		return;
	}
	switch (cmd.kind) {
	case PGWIRE_CMD_EMPTY:
		pgwire_put(&sb->out, "I\0\0\0\4", 5); /* EmptyQueryResponse */
		pgwire_ready(&sb->out);
		return;
	case PGWIRE_CMD_IDENTIFY_SYSTEM:
		sb_identify_system(sb);
		return;
	case PGWIRE_CMD_SHOW:
		sb_show(sb, cmd.show);
		return;
	case PGWIRE_CMD_TIMELINE_HISTORY:
		sb_timeline_history(sb, cmd.timeline);
		return;
	case PGWIRE_CMD_START_REPLICATION:
		sb_start_replication(sb, &cmd);
		return;
	case PGWIRE_CMD_CREATE_SLOT:
		sb_create_slot(sb, &cmd);
		return;
	case PGWIRE_CMD_DROP_SLOT:
		sb_drop_slot(sb, cmd.slot, cmd.wait);
		return;
	case PGWIRE_CMD_READ_SLOT:
		sb_read_slot(sb, cmd.slot);
		return;
	case PGWIRE_CMD_OTHER:
		/* PostgreSQL's answer to SQL on a physical walsender (walsender.c). */
		sb_error(sb, "ERROR", "08P01",
			 "cannot execute SQL commands in WAL sender for physical replication");
		pgwire_ready(&sb->out);
		return;
	}
}

/* ---- streaming ---- */

static void sb_stream_end(struct standby *sb)
{
	if (sb->file_fd >= 0 && !sb->file_busy) {
		close(sb->file_fd);
		sb->file_fd = -1;
	}
	sb->state = SB_QUERY;
	sb->waiting = false;
	sb->gen++;
	if (sb->slot_p) {
		sb->slot_p->active_pid = 0;
		sb->slot_p = NULL;
	}
}

/* WAL up to next_lsn was just queued: note when (one sample per millisecond at most). */
static void sb_lag_sample(struct standby *sb)
{
	int64_t now = clock_now_ms();
	unsigned int last = (sb->lag_next + SERVE_LAG_SAMPLES - 1) % SERVE_LAG_SAMPLES;

	if (sb->lag_samples[last].ms == now) {
		sb->lag_samples[last].lsn = sb->next_lsn;
		return;
	}
	sb->lag_samples[sb->lag_next].lsn = sb->next_lsn;
	sb->lag_samples[sb->lag_next].ms = now;
	sb->lag_next = (sb->lag_next + 1) % SERVE_LAG_SAMPLES;
}

/* Position @k (0 write, 1 flush, 2 apply) reported at @pos: its lag is the time since the
 * newest sample it reached was sent, if that sample is new to it. */
static void sb_lag_report(struct standby *sb, unsigned int k, uint64_t pos)
{
	int64_t sent_ms = -1;
	uint64_t lsn = 0;

	for (unsigned int i = 0; i < SERVE_LAG_SAMPLES; i++) {
		if (!sb->lag_samples[i].ms || sb->lag_samples[i].lsn > pos ||
		    sb->lag_samples[i].lsn <= sb->lag_seen[k] || sb->lag_samples[i].lsn < lsn)
			continue;
		lsn = sb->lag_samples[i].lsn;
		sent_ms = sb->lag_samples[i].ms;
	}
	if (sent_ms < 0)
		return;
	sb->lag_seen[k] = lsn;
	sb->lag_ms[k] = clock_now_ms() - sent_ms;
}

static void sb_copydata(struct standby *sb, const struct pgwire_msg *m)
{
	struct pgrepl_status st;
	struct pgrepl_hs_feedback hs;

	if (m->len && m->body[0] == PGREPL_MSG_STATUS &&
	    pgrepl_parse_status(m->body, m->len, &st) == 0) {
		sb->write = st.write;
		sb->flush = st.flush;
		sb->apply = st.apply;
		if (st.apply > sb->s->applied_lsn && sb->tli) {
			sb->s->applied_lsn = st.apply;
			if (sb->s->applied_fn)
				sb->s->applied_fn(sb->s->applied_arg, sb->tli, st.apply);
		}
		/* PhysicalConfirmReceivedLocation(): what it flushed it never asks for again */
		if (sb->slot_p && st.flush)
			serve_slots_advance(&sb->s->slots, sb->slot_p, st.flush, sb->tli);
		sb_lag_report(sb, 0, st.write);
		sb_lag_report(sb, 1, st.flush);
		sb_lag_report(sb, 2, st.apply);
		if (st.reply_requested && !sb->copy_done_sent) /* ProcessStandbyReplyMessage() */
			pgwire_keepalive(&sb->out, sb->s->end_lsn, pgrepl_time_now(), false);
		return;
	}
	if (m->len && m->body[0] == PGREPL_MSG_HS_FEEDBACK &&
	    pgrepl_parse_hs_feedback(m->body, m->len, &hs) == 0) {
		/* shown in status; there is no primary here for them to hold back yet */
		sb->xmin = hs.xmin;
		sb->catalog_xmin = hs.catalog_xmin;
		return;
	}
	log_log("invalid standby message from %s", sb->addr);
	sb_error(sb, "FATAL", "08P01", "invalid standby message type \"%c\"",
		 m->len ? (m->body[0] >= 32 && m->body[0] < 127 ? m->body[0] : '?') : '?');
}

/* The standby ended the COPY (walsender.c: CopyDone, then both CommandCompletes). */
static void sb_copy_done(struct standby *sb)
{
	if (!sb->copy_done_sent)
		pgwire_copy_done(&sb->out);
	sb->copy_done_sent = true;
	if (sb->stop_lsn && sb->next_lsn >= sb->stop_lsn) {
		/* the end of the timeline: the next one and where it starts (section 3.9 of
		 * walsender.c's StartReplication(): a row, then both CommandCompletes) */
		static const char *const names[] = { "next_tli", "next_tli_startpos" };
		static const uint32_t oids[] = { PGWIRE_OID_INT8, PGWIRE_OID_TEXT };
		char next[12], pos[PGREPL_LSN_TEXT];
		const char *values[2] = { next, pos };
		size_t lens[2];

		snprintf(next, sizeof(next), "%u", sb->next_tli);
		pgrepl_lsn_format(sb->stop_lsn, pos, sizeof(pos));
		lens[0] = strlen(next);
		lens[1] = strlen(pos);
		pgwire_row_description(&sb->out, 2, names, oids);
		pgwire_data_row(&sb->out, 2, values, lens);
	}
	pgwire_command_complete(&sb->out, "START_STREAMING");
	pgwire_command_complete(&sb->out, "START_REPLICATION");
	pgwire_ready(&sb->out);
	sb_stream_end(sb);
}

/* The start point's segment is gone (removed, or never here): PostgreSQL's words. */
static void sb_removed(struct standby *sb)
{
	log_log("standby \"%s\" (%s) asked for WAL segment %s, which this appliance does not hold",
		sb->app, sb->addr, sb->file_name);
	sb_error(sb, "ERROR", "58P01", "requested WAL segment %s has already been removed",
		 sb->file_name);
	pgwire_ready(&sb->out);
	sb_stream_end(sb);
	sb->close_when_sent = true;
}

static void sb_read_done(struct ring_op *op, int res, uint32_t flags);

static void sb_read(struct standby *sb, uint64_t off, uint32_t len)
{
	struct io_uring_sqe *sqe;

	sb->file_busy = true;
	sb->read_len = len;
	sb->read_gen = sb->gen;
	sb->file_op.cb = sb_read_done;
	sqe = sb_sqe(sb, &sb->file_op);
	io_uring_prep_read(sqe, sb->file_fd, sb->rbuf, len, off);
}

static void sb_read_done(struct ring_op *op, int res, uint32_t flags)
{
	struct standby *sb = container_of(op, struct standby, file_op);

	(void)flags;
	sb->file_busy = false;
	if (sb->closing) {
		sb_op_done(sb);
		return;
	}
	if (sb->state != SB_STREAMING || sb->gen != sb->read_gen) {
		/* the stream ended meanwhile: close its file now that nothing is in flight */
		if (sb->state != SB_STREAMING)
			sb_stream_end(sb);
		else
			sb_pump(sb);
	} else if (res < 0) {
		log_error("could not read file \"%s\": %s", sb->file_name, strerror(-res));
		sb_error(sb, "ERROR", "58030", "could not read file \"%s\": %s", sb->file_name,
			 strerror(-res));
		pgwire_ready(&sb->out);
		sb_stream_end(sb);
		sb->close_when_sent = true;
		sb_flush(sb);
	} else if (res == 0) {
		sb->waiting = true; /* shorter than its durable length said: wait for news */
	} else {
		pgwire_xlogdata(&sb->out, sb->next_lsn, sb->s->end_lsn, pgrepl_time_now(), sb->rbuf,
				(uint32_t)res);
		sb->next_lsn += (uint64_t)res;
		sb->bytes_sent += (uint64_t)res;
		sb_lag_sample(sb);
		sb_flush(sb);
		sb_pump(sb);
	}
	sb_op_done(sb);
}

static void sb_opened(struct ring_op *op, int res, uint32_t flags);

/* Open sb->file_name: in .incoming as @g->tmp_name, or stored when @g is NULL. */
static void sb_open(struct standby *sb, const struct growing *g)
{
	const struct store *st = sb->s->store;
	bool incoming = g != NULL;
	struct io_uring_sqe *sqe;

	sb->file_busy = true;
	sb->read_gen = sb->gen;
	sb->file_incoming = incoming;
	sb->file_op.cb = sb_opened;
	sqe = sb_sqe(sb, &sb->file_op);
	io_uring_prep_openat(sqe, incoming ? st->incoming_fd : st->dir_fd,
			     incoming ? g->tmp_name : sb->file_name, O_RDONLY | O_CLOEXEC, 0);
}

static void sb_opened(struct ring_op *op, int res, uint32_t flags)
{
	struct standby *sb = container_of(op, struct standby, file_op);
	struct serve *s;

	(void)flags;
	sb->file_busy = false;
	s = sb->s;
	if (res >= 0 && (sb->closing || sb->state != SB_STREAMING || sb->gen != sb->read_gen)) {
		close(res); /* the stream ended meanwhile */
		if (!sb->closing && sb->state == SB_STREAMING)
			sb_pump(sb);
	} else if (sb->closing) {
		/* nothing to do */
	} else if (res == -ENOENT && sb->file_incoming) {
		/* Stored meanwhile (renamed): serve_wal_stored() wakes it to open the name. */
		if (growing_find(s, sb->file_name))
			sb->waiting = true; /* the same file name, another tmp: news will come */
		else
			sb_pump(sb);
	} else if (res == -ENOENT && growing_find(s, sb->file_name)) {
		sb_pump(sb); /* being received after all: open it in .incoming */
	} else if (res == -ENOENT) {
		sb_removed(sb);
		sb_flush(sb);
	} else if (res < 0) {
		log_error("could not open file \"%s\": %s", sb->file_name, strerror(-res));
		sb_error(sb, "ERROR", "58030", "could not open file \"%s\": %s", sb->file_name,
			 strerror(-res));
		pgwire_ready(&sb->out);
		sb_stream_end(sb);
		sb->close_when_sent = true;
		sb_flush(sb);
	} else {
		const struct growing *g = growing_find(s, sb->file_name);

		sb->file_fd = res;
		/* from .incoming and no longer listed: stored meanwhile, so complete */
		sb->file_limit = sb->file_incoming && g ? g->durable : s->store->id.seg_size;
		sb_pump(sb);
	}
	sb_op_done(sb);
}

/* Send what is durable past next_lsn, as far as the send buffer allows; on an older
 * timeline, up to its switch point, then CopyDone (the end of the timeline). */
static void sb_pump(struct standby *sb)
{
	struct serve *s = sb->s;
	uint32_t seg_size = s->store->id.seg_size;
	uint32_t file_tli = sb->tli;
	uint64_t segno, off, cap = seg_size, limit, send_to;

	if (sb->closing || sb->state != SB_STREAMING || sb->file_busy || sb->close_when_sent ||
	    sb->copy_done_sent || sb->out.len + sb->sending.len >= SERVE_TX_LOW)
		return;
	sb->waiting = false;
	if (sb->stop_lsn && sb->next_lsn >= sb->stop_lsn) {
		char at[PGREPL_LSN_TEXT];

		pgrepl_lsn_format(sb->stop_lsn, at, sizeof(at));
		log_log("standby \"%s\" (%s) reached the end of timeline %u at %s", sb->app,
			sb->addr, sb->tli, at);
		pgwire_copy_done(&sb->out);
		sb->copy_done_sent = true;
		sb_flush(sb);
		return;
	}
	if (sb->tli != s->tli && !sb->stop_lsn) {
		sb->waiting = true; /* a newer timeline whose history is not stored yet */
		return;
	}
	send_to = sendlimit_for(s->limits, sb->app, unix_now_us());
	if (send_to <= sb->next_lsn) {
		sb->waiting = true; /* delayed or held: the timer or a release wakes it */
		return;
	}
	segno = sb->next_lsn / seg_size;
	off = sb->next_lsn % seg_size;
	/* The segment of the switch point is read from the child's file, which holds the old
	 * timeline's WAL up to there (as walsender.c's XLogReadDetermineTimeline() does). */
	if (sb->stop_lsn && segno == sb->stop_lsn / seg_size) {
		file_tli = sb->next_tli;
		cap = sb->stop_lsn % seg_size;
	}
	if (sb->file_fd >= 0 && (sb->file_segno != segno || sb->file_tli != file_tli)) {
		close(sb->file_fd);
		sb->file_fd = -1;
	}
	if (sb->file_fd < 0) {
		const struct growing *g;

		sb->file_segno = segno;
		sb->file_tli = file_tli;
		wal_name_format_segment(sb->file_name, sizeof(sb->file_name), file_tli, segno,
					seg_size);
		g = growing_find(s, sb->file_name);
		if (g)
			sb_open(sb, g);
		else if (file_tli != s->tli || segno * seg_size < s->end_lsn)
			sb_open(sb, NULL); /* stored, or removed: the open says which */
		else
			sb->waiting = true; /* not received yet */
		return;
	}
	limit = sb->file_limit < cap ? sb->file_limit : cap;
	if (send_to - segno * seg_size < limit)
		limit = send_to - segno * seg_size;
	if (off < limit) {
		uint64_t n = limit - off;

		sb_read(sb, off, (uint32_t)(n < SERVE_MAX_SEND ? n : SERVE_MAX_SEND));
		return;
	}
	sb->waiting = true;
}

/* ---- receiving ---- */

static void sb_received(struct ring_op *op, int res, uint32_t flags);

static void sb_recv(struct standby *sb)
{
	struct io_uring_sqe *sqe;

	if (sb->rx_busy || sb->closing || sb->close_when_sent)
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

/* One regular message. */
static void sb_message(struct standby *sb, const struct pgwire_msg *m)
{
	switch (m->type) {
	case 'X':
		sb_close(sb);
		return;
	case 'p':
		if (sb->state == SB_AUTH) {
			sb_sasl(sb, m);
			return;
		}
		break;
	case 'Q':
		if (sb->state == SB_QUERY) {
			sb_query(sb, m);
			return;
		}
		break;
	case 'd':
		if (sb->state == SB_STREAMING) {
			sb_copydata(sb, m);
			return;
		}
		break;
	case 'c':
		if (sb->state == SB_STREAMING) {
			sb_copy_done(sb);
			return;
		}
		break;
	default:
		break;
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

/* Handle the startup packets and messages received in rx, keeping what is incomplete. */
static void sb_process(struct standby *sb)
{
	size_t used = 0;

	while (!sb->closing && !sb->close_when_sent && !sb->drop_waiting && used < sb->rx_len) {
		int n;

		if (sb->state == SB_STARTUP) {
			memmove(sb->rx, sb->rx + used, sb->rx_len - used);
			sb->rx_len -= used;
			used = 0;
			n = sb_rx_startup(sb);
		} else {
			struct pgwire_msg m;

			n = pgwire_next_message(sb->rx + used, sb->rx_len - used, &m);
			if (n < 0) {
				log_log("invalid message length from %s", sb->addr);
				sb_close(sb);
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
}

/*
 * TLS: ciphertext was fed to OpenSSL.  Drive the handshake; once it is done, decrypt into
 * rx and handle what arrives, for as long as there is plaintext.  A failure closes the
 * connection once OpenSSL's alert is sent.
 */
static void sb_tls_input(struct standby *sb)
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
	sb->last_rx_ms = clock_now_ms();
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

static void serve_accepted(struct acceptor *a, int res)
{
	struct serve *s = container_of(a, struct serve, acceptor);
	struct standby *sb;
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
	if (s->nstandbys >= SERVE_MAX_STANDBYS) {
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
	sb->last_rx_ms = sb->accepted_ms;
	sl = sizeof(sb->sa);
	if (getpeername(res, (struct sockaddr *)&sb->sa, &sl) < 0)
		memset(&sb->sa, 0, sizeof(sb->sa));
	conn_format_addr((struct sockaddr *)&sb->sa, sb->addr, sizeof(sb->addr));
	conn_tune_socket(res);
	sb->next = s->standbys;
	s->standbys = sb;
	s->nstandbys++;
	sb_recv(sb);
	serve_accept_post(s);
}

/* ---- the API ---- */

struct serve *serve_start(const struct config *cfg, struct ring *ring, const struct store *store)
{
	struct serve *s = calloc(1, sizeof(*s));

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
	sendlimit_reload(s->limits, cfg->standby_delay);
	serve_wake(s);
	if (hba_load(cfg->hba_file, &s->hba) < 0) {
		log_error("could not load access rules from \"%s\"", cfg->hba_file);
		goto out_free;
	}
	if (cfg->pg_password_file[0] &&
	    scram_passwords_load(cfg->pg_password_file, &s->passwords) < 0) /* logs */
		goto out_hba;
	if (cfg->tls) {
		if (tls_ctx_init_pg(&s->tls, cfg->tls_ca_file, cfg->tls_cert_file,
				    cfg->tls_key_file) < 0) /* logs */
			goto out_passwords;
		s->tls_on = true;
	}
	if (serve_slots_load(&s->slots, store) < 0) /* logs */
		goto out_tls;
	s->limits = sendlimit_new(store, cfg->standby_delay); /* logs */
	if (!s->limits)
		goto out_tls;
	serve_scan(s);
	s->listen_fd = net_listen_tcp("pg_listen", cfg->pg_listen, 64); /* logs */
	if (s->listen_fd < 0)
		goto out_tls;
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
out_tls:
	sendlimit_free(s->limits);
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

void serve_wal_durable(struct serve *s, const char *name, const char *tmp_name, uint64_t durable)
{
	if (!s)
		return;
	growing_set(s, name, tmp_name, durable);
	serve_note_wal(s, name, durable, false);
	sendlimit_wal(s->limits, name, s->store->incoming_fd, tmp_name, durable);
	for (struct standby *sb = s->standbys; sb; sb = sb->next)
		if (sb->file_fd >= 0 && sb->file_incoming && !strcmp(sb->file_name, name) &&
		    durable > sb->file_limit)
			sb->file_limit = durable;
	serve_wake(s);
}

void serve_wal_stored(struct serve *s, const char *name)
{
	struct growing *g;

	if (!s)
		return;
	g = growing_find(s, name);
	if (g)
		memset(g, 0, sizeof(*g));
	serve_note_wal(s, name, 0, true);
	sendlimit_wal(s->limits, name, s->store->dir_fd, name, s->store->id.seg_size);
	for (struct standby *sb = s->standbys; sb; sb = sb->next)
		if (sb->file_fd >= 0 && !strcmp(sb->file_name, name))
			sb->file_limit = s->store->id.seg_size;
	serve_wake(s);
}

uint64_t serve_retention_floor(const struct serve *s)
{
	uint64_t floor = serve_slots_floor(s);

	for (const struct standby *sb = s ? s->standbys : NULL; sb; sb = sb->next) {
		uint64_t need = sb->next_lsn;

		if (sb->closing || sb->state != SB_STREAMING)
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
	if (sendlimit_due(s->limits, unix_now_us()))
		serve_wake(s); /* a delayed standby's next commit is due */
	for (struct standby *sb = s->standbys, *next; sb; sb = next) {
		next = sb->next;
		if (sb->closing)
			continue;
		if (sb->drop_waiting && sb_drop_slot(sb, sb->slot, true)) {
			sb->slot[0] = '\0';
			sb_process(sb); /* what it sent meanwhile */
			sb_flush(sb);
			if (sb->closing)
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
		if (now_ms - sb->last_rx_ms > s->keepalive_timeout_ms) {
			/* PostgreSQL's words (walsender.c WalSndCheckTimeOut()) */
			log_log("terminating walsender process due to replication timeout: standby "
				"\"%s\" (%s) silent for longer than keepalive_timeout",
				sb->app, sb->addr);
			sb_close(sb);
			continue;
		}
		if (!sb->ping_sent && !sb->copy_done_sent &&
		    now_ms - sb->last_rx_ms > s->keepalive_timeout_ms / 2) {
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
	s->keepalive_timeout_ms = cfg->keepalive_timeout_ms;
	s->connect_timeout_ms = cfg->connect_timeout_ms;
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
	return !s || (!s->standbys && !s->accepting);
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
	acceptor_release(&s->acceptor);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->tls_on)
		tls_ctx_free(&s->tls);
	scram_passwords_free(s->passwords);
	hba_free(s->hba);
	sendlimit_free(s->limits);
	free(s);
}

int serve_hold(struct serve *s, const char *app, char *msg, size_t len)
{
	uint64_t at = 0;
	bool found = false;
	char lsn[PGREPL_LSN_TEXT];
	int ret;

	for (const struct standby *sb = s->standbys; sb; sb = sb->next)
		if (sb->state == SB_STREAMING && !strcmp(sb->app, app)) {
			at = found && at > sb->next_lsn ? at : sb->next_lsn;
			found = true;
		}
	if (!found) {
		snprintf(msg, len, "no standby \"%s\" is streaming", app);
		return -ENOENT;
	}
	ret = sendlimit_hold(s->limits, app, at);
	if (ret == -EEXIST)
		snprintf(msg, len, "standby \"%s\" is held already", app);
	else if (ret < 0)
		snprintf(msg, len, "could not hold standby \"%s\": %s", app, strerror(-ret));
	else
		snprintf(msg, len, "standby \"%s\" held at %s", app,
			 pgrepl_lsn_format(at, lsn, sizeof(lsn)));
	if (!ret)
		log_log("standby \"%s\" held at %s", app, lsn);
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
