// SPDX-License-Identifier: MIT
/*
 * The streaming source (pgsource.h): a physical replication client of PostgreSQL driven by
 * the ring.  libpq does the protocol (connection, authentication, TLS, framing, errors);
 * this file only sequences the replication commands, parses their results and the CopyData
 * payloads (proto/pgrepl.h), and waits for socket readiness through the ring.
 *
 * Every libpq call is non-blocking.  The poll on PQsocket() is one-shot, at most one in
 * flight; a poll that no longer fits (another connection, or output now waiting while it
 * waits for input only) is cancelled, and its completion arms the one that fits.
 */
#include "source/pgsource.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/log.h"
#include "proto/pgrepl.h"
#include "wal/name.h"

#define PGSOURCE_MIN_SERVER_VERSION 150000
#define PGSOURCE_SQLSTATE_DUPLICATE_OBJECT "42710"
#define PGSOURCE_SQLSTATE_UNDEFINED_FILE "58P01" /* "requested WAL segment ... removed" */
/*
 * Requests for a reply while nothing moved (pgsource_keepalive()): answered at most this
 * often (or half the status interval, if less).  Those that come within
 * PGSOURCE_PING_RTT_MS of such an answer, within PGSOURCE_PING_GAP_MS of the one before,
 * with nothing received and the flush where it was, count in a row, and
 * PGSOURCE_SHUTDOWN_PINGS of them in a row while the server has sent more than is
 * flushed end the connection.  A walsender asks at wal_sender_timeout / 2 of silence
 * (never in a row: walship's status updates break the silence, and such a request comes
 * long after the last one); one shutting down asks again one round trip after each
 * answer until the client's flush reaches all it sent (WalSndDone()).
 */
#define PGSOURCE_IDLE_REPLY_MS 1000
#define PGSOURCE_PING_GAP_MS 3000
#define PGSOURCE_PING_RTT_MS 200 /* how soon after an answer the next request counts */
#define PGSOURCE_SHUTDOWN_PINGS 5

static void pgsource_arm(struct pgsource *s);
static void pgsource_drain(struct pgsource *s);
static void pgsource_collect(struct pgsource *s);
static void pgsource_leave_drain(struct pgsource *s);

/* ---- failures ---- */

/* Cancel the poll in flight, if any (its completion then arms what fits, or nothing). */
static void pgsource_cancel_poll(struct pgsource *s)
{
	struct io_uring_sqe *sqe;

	if (!s->poll_inflight || s->poll_cancelling)
		return;
	sqe = ring_sqe(s->ring, &s->cancel_op);
	io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&s->poll_op);
	s->poll_cancelling = true;
}

static void pgsource_close(struct pgsource *s)
{
	pgsource_cancel_poll(s);
	PQclear(s->result);
	s->result = NULL;
	if (s->conn) {
		if (s->state == PGSOURCE_COMMAND || s->state == PGSOURCE_STREAMING ||
		    s->state == PGSOURCE_PAUSED)
			s->disconnects++;
		PQfinish(s->conn);
		s->conn = NULL;
	}
	s->want_write = false;
	s->connected_since_ms = 0;
}

void pgsource_fail(struct pgsource *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->last_error, sizeof(s->last_error), fmt, ap);
	va_end(ap);
	log_error("%s", s->last_error);
	pgsource_close(s);
	s->state = PGSOURCE_WAITING;
	s->retry_at_ms = clock_now_ms() + s->backoff_ms;
	s->backoff_ms = s->backoff_ms > s->cfg.reconnect_max_ms / 2 ? s->cfg.reconnect_max_ms :
								      s->backoff_ms * 2;
}

/*
 * libpq's last error on this connection, on one line: libpq ends its messages with a
 * newline and continues them on tab-indented lines ("...failed: Connection refused\n\tIs
 * the server running...").  Into @buf.
 */
static const char *pgsource_pq_error(const char *text, char *buf, size_t len)
{
	size_t out = 0;

	for (const char *p = text; *p && out + 1 < len; p++) {
		if (*p == '\n' || *p == '\t') {
			if (out > 0 && buf[out - 1] != ' ')
				buf[out++] = ' ';
			continue;
		}
		buf[out++] = *p;
	}
	while (out > 0 && buf[out - 1] == ' ')
		out--;
	buf[out] = '\0';
	return buf;
}

#define PQ_ERROR(s, buf) pgsource_pq_error(PQerrorMessage((s)->conn), buf, sizeof(buf))

/* ---- sending ---- */

/* Push libpq's queued output to the socket; false when the connection failed (logged). */
static bool pgsource_flush(struct pgsource *s)
{
	char err[256];
	int ret = PQflush(s->conn);

	if (ret < 0) {
		pgsource_fail(s, "could not send data to the server: %s", PQ_ERROR(s, err));
		return false;
	}
	s->want_write = ret == 1;
	return true;
}

static const char *pgsource_step_what(enum pgsource_step step)
{
	switch (step) {
	case PGSOURCE_STEP_IDENTIFY:
		return "IDENTIFY_SYSTEM";
	case PGSOURCE_STEP_SEG_SIZE:
		return "SHOW wal_segment_size";
	case PGSOURCE_STEP_ARCHIVE_MODE:
		return "SHOW archive_mode";
	case PGSOURCE_STEP_SENDER_TIMEOUT:
		return "SHOW wal_sender_timeout";
	case PGSOURCE_STEP_READ_SLOT:
	case PGSOURCE_STEP_REREAD_SLOT:
	case PGSOURCE_STEP_PROBE:
		return "READ_REPLICATION_SLOT";
	case PGSOURCE_STEP_CREATE_SLOT:
		return "CREATE_REPLICATION_SLOT";
	case PGSOURCE_STEP_HISTORY:
	case PGSOURCE_STEP_SWITCH_HISTORY:
	case PGSOURCE_STEP_SERVER_HISTORY:
		return "TIMELINE_HISTORY";
	case PGSOURCE_STEP_START:
	case PGSOURCE_STEP_LEFT:
		return "START_REPLICATION";
	case PGSOURCE_STEP_END_OF_TIMELINE:
		return "the end of the WAL stream";
	case PGSOURCE_STEP_LEAVE:
		return "the end of WAL streaming (CopyDone)";
	}
	return "a replication command";
}

/* Send the replication command @sql for @step (simple query protocol). */
static void attr_printf(3, 4)
	pgsource_command(struct pgsource *s, enum pgsource_step step, const char *fmt, ...)
{
	char sql[256];
	char err[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	s->state = PGSOURCE_COMMAND;
	s->step = step;
	s->deadline_ms = clock_now_ms() + s->cfg.connect_timeout_ms;
	log_debug("sending replication command \"%s\"", sql);
	if (!PQsendQuery(s->conn, sql)) {
		pgsource_fail(s, "could not send replication command \"%s\": %s", sql,
			      PQ_ERROR(s, err));
		return;
	}
	pgsource_flush(s);
}

/* Send a status update ('r') with the role's positions; @ask_reply asks for an answer. */
static void pgsource_send_status(struct pgsource *s, bool ask_reply)
{
	uint8_t msg[PGREPL_STATUS_LEN];
	char err[256];
	int ret;

	if (s->state != PGSOURCE_STREAMING)
		return;
	pgrepl_build_status(msg, s->report_write, s->report_flush, s->report_apply,
			    pgrepl_time_now(), ask_reply);
	ret = PQputCopyData(s->conn, (const char *)msg, sizeof(msg));
	if (ret < 0) {
		pgsource_fail(s, "could not send standby status update: %s", PQ_ERROR(s, err));
		return;
	}
	if (ret == 0) {
		/* libpq could not grow its buffer (out of memory): due at once again, so the
		 * next tick tries again (an answer to a keepalive too). */
		s->last_status_ms = 0;
		return;
	}
	s->sent_write = s->report_write;
	s->sent_flush = s->report_flush;
	s->reply_due_ms = 0; /* answered */
	if (s->report_flush) /* the walsender moves the slot's restart_lsn to it */
		s->slot_restart_lsn = s->report_flush;
	s->last_status_ms = clock_now_ms();
	if (ask_reply)
		s->reply_requested = true;
	pgsource_flush(s);
}

/* ---- connection ---- */

/* A NOTICE or WARNING from the server goes to our log, not to libpq's stderr default. */
static void pgsource_notice(void *arg, const char *message)
{
	char text[512];

	(void)arg;
	log_log("server said: %s", pgsource_pq_error(message, text, sizeof(text)));
}

static void pgsource_connect(struct pgsource *s)
{
	const char *keys[6], *values[6];
	char err[256];
	int n = 0;

	keys[n] = "dbname"; /* first: expanded as the connection string */
	values[n++] = s->cfg.conninfo;
	keys[n] = "replication";
	values[n++] = "true";
	if (!s->conninfo_has_dbname) {
		/* ignored by a physical walsender, but used for .pgpass, as PostgreSQL does */
		keys[n] = "dbname";
		values[n++] = "replication";
	}
	if (s->cfg.application_name && s->cfg.application_name[0]) {
		keys[n] = "application_name";
		values[n++] = s->cfg.application_name;
	} else {
		keys[n] = "fallback_application_name";
		values[n++] = "walship";
	}
	keys[n] = NULL;
	values[n] = NULL;

	s->conn_gen++;
	s->status_ms = s->cfg.status_interval_ms;
	s->state = PGSOURCE_CONNECTING;
	s->deadline_ms = clock_now_ms() + s->cfg.connect_timeout_ms;
	s->want_write = false;
	s->connect_wants_write = true; /* libpq: wait for write-ready first */
	s->conn = PQconnectStartParams(keys, values, 1);
	if (!s->conn) {
		pgsource_fail(s, "could not connect to the server: out of memory");
		return;
	}
	if (PQstatus(s->conn) == CONNECTION_BAD) {
		pgsource_fail(s, "could not connect to the server: %s", PQ_ERROR(s, err));
		return;
	}
	PQsetNoticeProcessor(s->conn, pgsource_notice, s);
	log_debug("connecting to the server for WAL streaming");
}

static void pgsource_connected(struct pgsource *s)
{
	char err[256];
	int version = PQserverVersion(s->conn);

	if (version < PGSOURCE_MIN_SERVER_VERSION) {
		pgsource_fail(s,
			      "incompatible server version %d.%d: streaming needs PostgreSQL 15 "
			      "or later",
			      version / 10000, version % 10000);
		return;
	}
	if (PQsetnonblocking(s->conn, 1) != 0) {
		pgsource_fail(s, "could not set the connection to non-blocking mode: %s",
			      PQ_ERROR(s, err));
		return;
	}
	s->connects++;
	pgsource_command(s, PGSOURCE_STEP_IDENTIFY, "IDENTIFY_SYSTEM");
}

static void pgsource_connect_poll(struct pgsource *s)
{
	char err[256];

	switch (PQconnectPoll(s->conn)) {
	case PGRES_POLLING_READING:
		s->connect_wants_write = false;
		break;
	case PGRES_POLLING_WRITING:
		s->connect_wants_write = true;
		break;
	case PGRES_POLLING_OK:
		pgsource_connected(s);
		break;
	case PGRES_POLLING_FAILED:
	default:
		pgsource_fail(s, "could not connect to the server: %s", PQ_ERROR(s, err));
		break;
	}
}

/* ---- command results ---- */

/* Connected and out of streaming while paused (pgsource.h, step 7): the server is asked
 * READ_REPLICATION_SLOT every status interval (pgsource_tick()) until unpaused. */
static void pgsource_idle(struct pgsource *s)
{
	s->state = PGSOURCE_PAUSED;
	s->last_recv_ms = clock_listen_ms();
	s->connected_since_ms = 0;
}

/* Unpaused out of streaming: the steps of a new connection again (pgsource.h, 2 to 5). */
static void pgsource_resume(struct pgsource *s)
{
	if (s->held_wait)
		log_debug("asking again where to start streaming");
	else
		log_log("reading from the server goes on: streaming starts again");
	pgsource_command(s, PGSOURCE_STEP_IDENTIFY, "IDENTIFY_SYSTEM");
}

static void pgsource_send_start(struct pgsource *s)
{
	char lsn[PGREPL_LSN_TEXT];

	if (s->paused) { /* not before reading goes on (step 7) */
		pgsource_idle(s);
		return;
	}
	s->next_lsn = s->start_lsn;
	log_log("starting WAL streaming at %s on timeline %u",
		pgrepl_lsn_format(s->start_lsn, lsn, sizeof(lsn)), s->timeline);
	pgsource_command(s, PGSOURCE_STEP_START,
			 "START_REPLICATION SLOT \"%s\" PHYSICAL %s TIMELINE %u", s->cfg.slot, lsn,
			 s->timeline);
}

/* Start on s->timeline at s->start_lsn, its history first when it is not 1. */
static void pgsource_start_timeline(struct pgsource *s)
{
	if (s->timeline != 1)
		pgsource_command(s, PGSOURCE_STEP_HISTORY, "TIMELINE_HISTORY %u", s->timeline);
	else
		pgsource_send_start(s);
}

/*
 * The role holds nothing: the slot's position (*@lsn, a segment start, on *@timeline) may
 * be none walship reported (a slot made now, by walshipd before a restart or by anyone,
 * or one reserving nothing), so streaming starts where the replicas' WAL ends when that
 * is before it (ops->held_lsn()).  An earlier start only sends more: nothing is reported
 * from what the replicas say they hold.  Returns false when the source waits to learn it
 * (paused out of streaming until pgsource_replicas_known(), asking again at least every
 * connect_timeout).
 */
static bool pgsource_held_start(struct pgsource *s, uint64_t *lsn, uint32_t *timeline)
{
	char at[PGREPL_LSN_TEXT], slot_at[PGREPL_LSN_TEXT];
	uint32_t held_tli = 0, start_tli;
	uint64_t held;

	if (!s->ops->held_lsn || s->held_removed)
		return true;
	held = s->ops->held_lsn(s->arg, &held_tli);
	if (held == UINT64_MAX) {
		if (!s->held_wait)
			log_log("streaming would start at %s, a position walship may never have "
				"reported: waiting for the replicas to say what WAL they hold",
				pgrepl_lsn_format(*lsn, slot_at, sizeof(slot_at)));
		s->held_wait = true;
		pgsource_idle(s);
		return false;
	}
	s->held_wait = false;
	start_tli = *timeline ? *timeline : s->server.timeline;
	/* (a timeline newer than the server's is none of its history; an end at or past the
	 * start is kept from only on a timeline older than the start's: one that forked,
	 * at or before the start since the start's timeline is the server's history, where
	 * the server's history moves it to the fork) */
	if (!held || held_tli > s->server.timeline || (held >= *lsn && held_tli >= start_tli))
		return true;
	held -= held % s->server.seg_size;
	log_log("the replicas hold WAL up to %s on timeline %u, replication slot \"%s\" is at "
		"%s on timeline %u: streaming from where the replicas' WAL ends, so that no "
		"commit waiting for walship on WAL between is acknowledged without it",
		pgrepl_lsn_format(held, at, sizeof(at)), held_tli, s->cfg.slot,
		pgrepl_lsn_format(*lsn, slot_at, sizeof(slot_at)), start_tli);
	*lsn = held;
	*timeline = held_tli;
	s->held_start = true;
	return true;
}

/* The start where the replicas' WAL ends (pgsource_held_start()) failed (@why): the next
 * is from the slot's position, what lies between reaching the replicas through
 * archive_command alone. */
static void pgsource_held_fallback(struct pgsource *s, const char *why)
{
	char at[PGREPL_LSN_TEXT];

	s->held_removed = true;
	log_warning("streaming cannot start at %s on timeline %u, where the replicas' WAL ends: "
		    "%s; it starts at replication slot \"%s\"'s position instead",
		    pgrepl_lsn_format(s->start_lsn, at, sizeof(at)), s->timeline, why, s->cfg.slot);
	log_detail("Commits that waited for walship on WAL between are acknowledged without "
		   "it on a replica.");
}

/* The start at the record of a walshipd before (pgsource_reported_start()) cannot be
 * (@why): it is set aside, and the start chosen as without it. */
static void pgsource_reported_set_aside(struct pgsource *s, const char *why)
{
	char text[PGREPL_LSN_TEXT];
	uint32_t timeline = 0;
	uint64_t at = s->ops->reported_lsn(s->arg, &timeline);

	s->reported_set_aside = true;
	s->reported_start = false;
	log_warning("walship reported WAL flushed up to %s on timeline %u before it restarted, "
		    "but streaming cannot start there: %s; the start is chosen as without that "
		    "record",
		    pgrepl_lsn_format(at, text, sizeof(text)), timeline, why);
}

/*
 * The role holds nothing: where a walshipd before reported WAL flushed (ops->reported_lsn()),
 * on the server's history, is where streaming goes on, at its segment start (the WAL before
 * it was durable on sync_replicas replicas), or at the slot's position when that is before
 * it (an earlier start only sends more, and the slot's is this server's own: restored from
 * a snapshot on the same timeline, the server may have WAL other than the record's before
 * the record).  A slot made anew after it, or reserving nothing, is not where walship
 * stopped.  Returns false when there is no such record, or the server cannot stream from
 * it (set aside).
 */
static bool pgsource_reported_start(struct pgsource *s, uint64_t *lsn, uint32_t *timeline)
{
	char at[PGREPL_LSN_TEXT], pos[PGREPL_LSN_TEXT], why[160];
	uint32_t tli = 0, seg_size = s->server.seg_size;
	uint64_t reported, slot = s->slot_restart_lsn - s->slot_restart_lsn % seg_size;

	if (!s->ops->reported_lsn || s->reported_set_aside)
		return false;
	reported = s->ops->reported_lsn(s->arg, &tli);
	if (!reported || !tli)
		return false;
	if (tli > s->server.timeline) {
		snprintf(why, sizeof(why), "the server is on timeline %u, before it",
			 s->server.timeline);
		pgsource_reported_set_aside(s, why);
		return false;
	}
	if (tli == s->server.timeline && reported > s->server.xlogpos) {
		snprintf(why, sizeof(why), "the server's WAL ends at %s, before it",
			 pgrepl_lsn_format(s->server.xlogpos, pos, sizeof(pos)));
		pgsource_reported_set_aside(s, why);
		return false;
	}
	s->reported_start = true;
	s->reported_pin = false;
	/* (a slot on another timeline: the record's start, which the server's history moves
	 * to the fork when the record's timeline forked before it) */
	if (slot && s->slot_restart_tli == tli && slot < reported - reported % seg_size) {
		*lsn = slot;
		*timeline = s->slot_restart_tli;
		log_log("walship reported WAL flushed up to %s on timeline %u before it restarted: "
			"streaming goes on from replication slot \"%s\"'s position %s, before it",
			pgrepl_lsn_format(reported, at, sizeof(at)), tli, s->cfg.slot,
			pgrepl_lsn_format(s->slot_restart_lsn, pos, sizeof(pos)));
		return true;
	}
	*lsn = reported - reported % seg_size;
	*timeline = tli;
	s->reported_pin = true;
	log_log("walship reported WAL flushed up to %s on timeline %u before it restarted: "
		"streaming goes on from there",
		pgrepl_lsn_format(reported, at, sizeof(at)), tli);
	return true;
}

/* Decide where to start (pgsource.h, step 4). */
static void pgsource_choose_start(struct pgsource *s)
{
	uint32_t timeline = 0;
	uint64_t lsn;
	bool known; /* where walship stopped: the role's, or its record's */

	s->held_start = false; /* (set again by pgsource_held_start() for this start) */
	s->reported_start = false; /* (and by pgsource_reported_start()) */
	lsn = s->ops->resume_lsn(s->arg, &timeline);

	if (s->state != PGSOURCE_COMMAND) /* the role stopped the source */
		return;
	known = lsn != 0 || pgsource_reported_start(s, &lsn, &timeline);
	if (known && s->slot_restart_lsn == 0) {
		char at[PGREPL_LSN_TEXT];

		/* Not at a first use of a slot made by hand without reserving WAL: the
		 * walsender set restart_lsn to every flush position reported. */
		log_warning("replication slot \"%s\" reserves no WAL (its restart_lsn is NULL): "
			    "the server may have removed the WAL from %s that streaming needs",
			    s->cfg.slot, pgrepl_lsn_format(lsn, at, sizeof(at)));
		log_detail("PostgreSQL invalidates a slot that holds more WAL than "
			   "max_slot_wal_keep_size at a checkpoint.");
	}
	if (!known) {
		if (s->slot_restart_lsn != 0) {
			lsn = s->slot_restart_lsn;
			timeline = s->slot_restart_tli;
		} else {
			char at[PGREPL_LSN_TEXT];

			/* A slot someone made without reserving WAL, or one invalidated
			 * (max_slot_wal_keep_size): nothing says where walship stopped. */
			lsn = s->server.xlogpos;
			timeline = s->server.timeline;
			log_warning("replication slot \"%s\" reserves no WAL (its restart_lsn is "
				    "NULL): streaming from the server's position %s",
				    s->cfg.slot, pgrepl_lsn_format(lsn, at, sizeof(at)));
			log_detail("WAL before it is shipped only by archive_command; commits "
				   "that waited for walship on it are acknowledged with the WAL "
				   "after it.  Drop the slot and let walship create it (with "
				   "RESERVE_WAL) to avoid this.");
		}
		lsn -= lsn % s->server.seg_size;
		if (!pgsource_held_start(s, &lsn, &timeline))
			return;
	}
	if (timeline == 0)
		timeline = s->server.timeline;
	s->timeline = timeline;
	s->start_lsn = lsn;
	if (timeline > s->server.timeline) {
		pgsource_fail(s,
			      "the server is on timeline %u, before timeline %u that streaming "
			      "reached: it is not the server streamed from before",
			      s->server.timeline, timeline);
		return;
	}
	if (timeline != s->server.timeline) {
		/* An older timeline: where did it end on this server? */
		pgsource_command(s, PGSOURCE_STEP_SERVER_HISTORY, "TIMELINE_HISTORY %u",
				 s->server.timeline);
		return;
	}
	pgsource_start_timeline(s);
}

/* A result of exactly one row of at least @cols columns, or fail. */
static bool pgsource_row(struct pgsource *s, const PGresult *res, int cols)
{
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) >= cols)
		return true;
	pgsource_fail(s, "unexpected result of %s: %d rows and %d columns, expected 1 row and %d",
		      pgsource_step_what(s->step), PQntuples(res), PQnfields(res), cols);
	return false;
}

static bool pgsource_parse_u64(const char *text, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 10);
	return errno == 0 && end != text && *end == '\0' && text[0] != '-';
}

static void pgsource_identified(struct pgsource *s, const PGresult *res)
{
	const char *sysid = PQgetvalue(res, 0, 0), *tli = PQgetvalue(res, 0, 1),
		   *pos = PQgetvalue(res, 0, 2);
	uint64_t timeline;

	if (!pgsource_parse_u64(sysid, &s->server.system_identifier) ||
	    !pgsource_parse_u64(tli, &timeline) || timeline == 0 || timeline > UINT32_MAX ||
	    pgrepl_lsn_parse(pos, &s->server.xlogpos) != 0) {
		pgsource_fail(s,
			      "could not parse IDENTIFY_SYSTEM: system identifier \"%s\", "
			      "timeline \"%s\", position \"%s\"",
			      sysid, tli, pos);
		return;
	}
	s->server.timeline = (uint32_t)timeline;
	pgsource_command(s, PGSOURCE_STEP_SEG_SIZE, "SHOW wal_segment_size");
}

static void pgsource_seg_size(struct pgsource *s, const PGresult *res)
{
	const char *text = PQgetvalue(res, 0, 0);

	if (pgrepl_parse_seg_size(text, &s->server.seg_size) != 0) {
		pgsource_fail(s, "invalid WAL segment size \"%s\" reported by the server", text);
		return;
	}
	pgsource_command(s, PGSOURCE_STEP_ARCHIVE_MODE, "SHOW archive_mode");
}

static void pgsource_archive_mode(struct pgsource *s, const PGresult *res)
{
	/* "on" or "always" (a standby's own archiver); anything but "off" may push. */
	s->server.archiving = strcmp(PQgetvalue(res, 0, 0), "off") != 0;
	pgsource_command(s, PGSOURCE_STEP_SENDER_TIMEOUT, "SHOW wal_sender_timeout");
}

/*
 * The walsender drops a client it has heard nothing from for wal_sender_timeout.  Idle, it
 * asks for a reply at half of it, which is answered at once; but while the source is
 * paused it reads nothing, and only its periodic status updates keep the connection: they
 * go at least twice per wal_sender_timeout, whatever pg_status_interval says.
 */
static void pgsource_sender_timeout(struct pgsource *s, const PGresult *res)
{
	const char *text = PQgetvalue(res, 0, 0);
	char why[256] = "";
	int64_t timeout;

	if (pgrepl_parse_timeout_ms(text, &timeout) != 0) {
		pgsource_fail(s, "invalid wal_sender_timeout \"%s\" reported by the server", text);
		return;
	}
	s->status_ms = s->cfg.status_interval_ms;
	if (timeout > 0 && timeout / 2 < s->status_ms) {
		s->status_ms = timeout / 2 > 10 ? (int)(timeout / 2) : 10;
		if (s->status_ms != s->status_logged_ms) /* (asked again on each resume) */
			log_log("the server's wal_sender_timeout is %s: status updates every %d "
				"ms, not %d",
				text, s->status_ms, s->cfg.status_interval_ms);
	}
	s->status_logged_ms = s->status_ms;
	if (s->ops->identify(s->arg, &s->server, why, sizeof(why)) != 0) {
		if (s->state == PGSOURCE_COMMAND)
			pgsource_fail(s, "%s", why[0] ? why : "server refused by the role");
		return;
	}
	if (s->state != PGSOURCE_COMMAND)
		return;
	pgsource_command(s, PGSOURCE_STEP_READ_SLOT, "READ_REPLICATION_SLOT \"%s\"", s->cfg.slot);
}

/*
 * A row of READ_REPLICATION_SLOT that names a slot: its restart_lsn (0: NULL) and timeline
 * into s->slot_restart_*.  False when it is not a physical slot or does not parse (the
 * connection failed).
 */
static bool pgsource_slot_parse(struct pgsource *s, const PGresult *res)
{
	uint64_t tli = 0;

	if (strcmp(PQgetvalue(res, 0, 0), "physical") != 0) {
		pgsource_fail(s, "replication slot \"%s\" is not a physical slot (it is %s)",
			      s->cfg.slot, PQgetvalue(res, 0, 0));
		return false;
	}
	s->slot_restart_lsn = 0;
	s->slot_restart_tli = 0;
	if (!PQgetisnull(res, 0, 1) &&
	    (pgrepl_lsn_parse(PQgetvalue(res, 0, 1), &s->slot_restart_lsn) != 0 ||
	     (!PQgetisnull(res, 0, 2) &&
	      (!pgsource_parse_u64(PQgetvalue(res, 0, 2), &tli) || tli > UINT32_MAX)))) {
		pgsource_fail(s, "could not parse replication slot \"%s\": restart_lsn \"%s\"",
			      s->cfg.slot, PQgetvalue(res, 0, 1));
		return false;
	}
	s->slot_restart_tli = (uint32_t)tli;
	return true;
}

static void pgsource_slot_read(struct pgsource *s, const PGresult *res)
{
	if (PQgetisnull(res, 0, 0)) {
		if (s->step == PGSOURCE_STEP_REREAD_SLOT) {
			pgsource_fail(s, "replication slot \"%s\" does not exist after creating it",
				      s->cfg.slot);
			return;
		}
		pgsource_command(s, PGSOURCE_STEP_CREATE_SLOT,
				 "CREATE_REPLICATION_SLOT \"%s\" PHYSICAL (RESERVE_WAL)",
				 s->cfg.slot);
		return;
	}
	if (pgsource_slot_parse(s, res))
		pgsource_choose_start(s);
}

/* Paused, out of streaming: the server answered (pgsource.h, step 7). */
static void pgsource_probed(struct pgsource *s, const PGresult *res)
{
	if (!PQgetisnull(res, 0, 0) && !pgsource_slot_parse(s, res))
		return;
	if (PQgetisnull(res, 0, 0))
		s->slot_restart_lsn = 0; /* dropped: made again once streaming starts */
	if (s->paused)
		pgsource_idle(s);
	else
		pgsource_resume(s);
}

/* The stream we ended while paused is over on the server's side too (step 7). */
static void pgsource_left(struct pgsource *s)
{
	log_debug("WAL streaming ended while reading waits");
	if (s->paused)
		pgsource_idle(s);
	else
		pgsource_resume(s);
}

/*
 * The history of the server's timeline, when the start is on an older one: a start past the
 * point where that timeline ended on this server (the WAL streamed from a server that went
 * on on it, or the first half of a record a cascading server sent before its promotion) is
 * not in the server's history, and START_REPLICATION there fails every time.  The WAL past
 * the fork is not this server's: streaming goes on from the segment start of the fork on
 * the timeline that forked (whose history tells the role to cut back to it).
 */
static void pgsource_server_history(struct pgsource *s, const PGresult *res)
{
	char expected[32], at[PGREPL_LSN_TEXT], fork_at[PGREPL_LSN_TEXT];
	const char *name = PQgetvalue(res, 0, 0);
	uint64_t fork;
	uint32_t child;
	int ret;

	snprintf(expected, sizeof(expected), "%08X.history", s->server.timeline);
	if (strcmp(name, expected) != 0) {
		pgsource_fail(s, "unexpected timeline history file name \"%s\", expected \"%s\"",
			      name, expected);
		return;
	}
	ret = wal_history_fork(PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1),
			       s->server.timeline, s->timeline, &fork, &child);
	if (ret == -ENOENT) {
		if (s->held_start)
			pgsource_held_fallback(s, "its timeline is not in the server's history");
		if (s->reported_start) {
			pgsource_reported_set_aside(s,
						    "its timeline is not in the server's history");
			pgsource_choose_start(s);
			return;
		}
		pgsource_fail(s, "timeline %u is not in the history of the server's timeline %u",
			      s->timeline, s->server.timeline);
		return;
	}
	if (ret < 0) {
		pgsource_fail(s, "could not parse timeline history file \"%s\"", name);
		return;
	}
	if (s->start_lsn > fork) {
		log_warning("streaming reached %s on timeline %u, past the server's fork from it "
			    "at %s: going on at the fork on timeline %u",
			    pgrepl_lsn_format(s->start_lsn, at, sizeof(at)), s->timeline,
			    pgrepl_lsn_format(fork, fork_at, sizeof(fork_at)), child);
		s->timeline = child;
		s->start_lsn = fork - fork % s->server.seg_size;
		pgsource_rewind(s, fork); /* nothing reported past this server's fork */
	} else if (s->report_write > fork || s->report_flush > fork || s->report_apply > fork) {
		/* Streaming goes on before the fork (it went back to a segment's start: the
		 * server before removed the rest), but what was reported as received and
		 * flushed is past it: that WAL is not this server's, and the first status
		 * update would tell it so, releasing its commits up to there.  The role
		 * learns of the fork now (it cuts the replicas' runs back and rewinds what
		 * is reported, pgsource_rewind()), not when the stream reaches it. */
		if (s->ops->history)
			s->ops->history(s->arg, s->server.timeline, name,
					(const uint8_t *)PQgetvalue(res, 0, 1),
					(uint32_t)PQgetlength(res, 0, 1));
		if (s->state != PGSOURCE_COMMAND)
			return;
		pgsource_rewind(s, fork);
	}
	pgsource_start_timeline(s);
}

static void pgsource_history(struct pgsource *s, const PGresult *res, uint32_t timeline)
{
	char expected[32];
	const char *name = PQgetvalue(res, 0, 0);
	int len = PQgetlength(res, 0, 1);

	snprintf(expected, sizeof(expected), "%08X.history", timeline);
	if (strcmp(name, expected) != 0) {
		pgsource_fail(s, "unexpected timeline history file name \"%s\", expected \"%s\"",
			      name, expected);
		return;
	}
	if (s->ops->history)
		s->ops->history(s->arg, timeline, name, (const uint8_t *)PQgetvalue(res, 0, 1),
				(uint32_t)len);
	if (s->state != PGSOURCE_COMMAND)
		return;
	if (s->step == PGSOURCE_STEP_SWITCH_HISTORY) {
		s->timeline = timeline;
		s->start_lsn = s->next_timeline_start - s->next_timeline_start % s->server.seg_size;
	}
	pgsource_send_start(s);
}

/* The server ended our timeline: the next_tli row (pgsource.h, step 6). */
static void pgsource_timeline_ended(struct pgsource *s, const PGresult *res)
{
	char lsn[PGREPL_LSN_TEXT], got[PGREPL_LSN_TEXT];
	uint64_t next_tli, start;

	if (!pgsource_parse_u64(PQgetvalue(res, 0, 0), &next_tli) || next_tli > UINT32_MAX ||
	    pgrepl_lsn_parse(PQgetvalue(res, 0, 1), &start) != 0) {
		pgsource_fail(
			s, "could not parse the end of timeline %u: next timeline \"%s\" at \"%s\"",
			s->timeline, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		return;
	}
	if (next_tli <= s->timeline) {
		pgsource_fail(s,
			      "server reported unexpected next timeline %u, following timeline %u",
			      (uint32_t)next_tli, s->timeline);
		return;
	}
	if (start > s->next_lsn) {
		pgsource_fail(
			s,
			"server stopped streaming timeline %u at %s, but reported next timeline %u to begin at %s",
			s->timeline, pgrepl_lsn_format(s->next_lsn, got, sizeof(got)),
			(uint32_t)next_tli, pgrepl_lsn_format(start, lsn, sizeof(lsn)));
		return;
	}
	log_log("switched to timeline %u at %s", (uint32_t)next_tli,
		pgrepl_lsn_format(start, lsn, sizeof(lsn)));
	s->next_timeline = (uint32_t)next_tli;
	s->next_timeline_start = start;
	pgsource_command(s, PGSOURCE_STEP_SWITCH_HISTORY, "TIMELINE_HISTORY %u", s->next_timeline);
}

/* Every result of the current command has arrived; @res is the one kept (may be NULL). */
static void pgsource_command_done(struct pgsource *s, const PGresult *res)
{
	char err[256];
	ExecStatusType status = res ? PQresultStatus(res) : PGRES_EMPTY_QUERY;

	if (status == PGRES_FATAL_ERROR) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (s->step == PGSOURCE_STEP_CREATE_SLOT && state &&
		    strcmp(state, PGSOURCE_SQLSTATE_DUPLICATE_OBJECT) == 0) {
			/* created by someone else since we read it: read it again */
			pgsource_command(s, PGSOURCE_STEP_REREAD_SLOT,
					 "READ_REPLICATION_SLOT \"%s\"", s->cfg.slot);
			return;
		}
		pgsource_fail(s, "%s failed: %s", pgsource_step_what(s->step),
			      pgsource_pq_error(PQresultErrorMessage(res), err, sizeof(err)));
		return;
	}
	switch (s->step) {
	case PGSOURCE_STEP_IDENTIFY:
		if (pgsource_row(s, res, 3))
			pgsource_identified(s, res);
		break;
	case PGSOURCE_STEP_SEG_SIZE:
		if (pgsource_row(s, res, 1))
			pgsource_seg_size(s, res);
		break;
	case PGSOURCE_STEP_ARCHIVE_MODE:
		if (pgsource_row(s, res, 1))
			pgsource_archive_mode(s, res);
		break;
	case PGSOURCE_STEP_SENDER_TIMEOUT:
		if (pgsource_row(s, res, 1))
			pgsource_sender_timeout(s, res);
		break;
	case PGSOURCE_STEP_READ_SLOT:
	case PGSOURCE_STEP_REREAD_SLOT:
		if (pgsource_row(s, res, 3))
			pgsource_slot_read(s, res);
		break;
	case PGSOURCE_STEP_CREATE_SLOT:
		log_log("created replication slot \"%s\"", s->cfg.slot);
		pgsource_command(s, PGSOURCE_STEP_REREAD_SLOT, "READ_REPLICATION_SLOT \"%s\"",
				 s->cfg.slot);
		break;
	case PGSOURCE_STEP_HISTORY:
		if (pgsource_row(s, res, 2))
			pgsource_history(s, res, s->timeline);
		break;
	case PGSOURCE_STEP_SWITCH_HISTORY:
		if (pgsource_row(s, res, 2))
			pgsource_history(s, res, s->next_timeline);
		break;
	case PGSOURCE_STEP_SERVER_HISTORY:
		if (pgsource_row(s, res, 2))
			pgsource_server_history(s, res);
		break;
	case PGSOURCE_STEP_PROBE:
		if (pgsource_row(s, res, 3))
			pgsource_probed(s, res);
		break;
	case PGSOURCE_STEP_LEAVE: /* not before the COPY's end: pgsource_leave_drain() */
	case PGSOURCE_STEP_LEFT:
		pgsource_left(s);
		break;
	case PGSOURCE_STEP_START:
	case PGSOURCE_STEP_END_OF_TIMELINE:
		/* START_REPLICATION at the very end of a historic timeline answers with the
		 * next_tli row and no COPY at all; a CommandComplete alone after CopyDone is
		 * the server shutting down. */
		if (status == PGRES_TUPLES_OK) {
			if (pgsource_row(s, res, 2))
				pgsource_timeline_ended(s, res);
		} else {
			char lsn[PGREPL_LSN_TEXT];

			pgsource_fail(
				s, "replication stream on timeline %u ended by the server at %s",
				s->timeline, pgrepl_lsn_format(s->next_lsn, lsn, sizeof(lsn)));
		}
		break;
	}
}

static void pgsource_start_streaming(struct pgsource *s)
{
	int64_t now = clock_now_ms();

	s->state = PGSOURCE_STREAMING;
	s->last_recv_ms = clock_listen_ms();
	s->reply_requested = false;
	s->connected_since_ms = now;
	s->reply_due_ms = s->last_ping_ms = 0;
	s->idle_pings = 0;
	s->last_status_ms = 0; /* a status update at once: positions and reply_time */
	pgsource_send_status(s, false);
	pgsource_drain(s);
}

/* Read every result libpq has complete, while the command is in progress. */
static void pgsource_collect(struct pgsource *s)
{
	while (s->state == PGSOURCE_COMMAND && !PQisBusy(s->conn)) {
		PGresult *res = PQgetResult(s->conn);
		ExecStatusType status;

		if (!res) {
			PGresult *kept = s->result;

			s->result = NULL;
			pgsource_command_done(s, kept);
			PQclear(kept);
			continue;
		}
		status = PQresultStatus(res);
		if (status == PGRES_COPY_BOTH && s->step == PGSOURCE_STEP_START) {
			PQclear(res);
			pgsource_start_streaming(s);
			return;
		}
		if (!s->result || (status == PGRES_FATAL_ERROR &&
				   PQresultStatus(s->result) != PGRES_FATAL_ERROR)) {
			PQclear(s->result);
			s->result = res;
		} else {
			PQclear(res);
		}
	}
}

/* ---- streaming ---- */

static void pgsource_xlogdata(struct pgsource *s, const uint8_t *msg, size_t len)
{
	char got[PGREPL_LSN_TEXT], want[PGREPL_LSN_TEXT];
	struct pgrepl_xlogdata x;

	if (pgrepl_parse_xlogdata(msg, len, &x) != 0) {
		pgsource_fail(s, "invalid WAL message received from the server (%zu bytes)", len);
		return;
	}
	if (x.data_start != s->next_lsn) {
		pgsource_fail(s, "unexpected WAL data at %s from the server, expected %s",
			      pgrepl_lsn_format(x.data_start, got, sizeof(got)),
			      pgrepl_lsn_format(s->next_lsn, want, sizeof(want)));
		return;
	}
	s->server_wal_end = x.wal_end;
	if (x.len == 0)
		return;
	s->wal_missing_lsn = 0;
	s->held_start = false; /* it started there: a later failure is the stream's own */
	s->held_removed = false; /* (a fallback was for that start only) */
	if (s->reported_start && s->reported_pin) {
		/* The server has the WAL from the record's start (pgsource_reported_start(),
		 * or the fork before it that the server's history moved it to): reported at
		 * once, since the WAL before it was durable on sync_replicas replicas, so
		 * that the walsender moves the slot there and keeps what is streamed from it
		 * (a slot made anew is after it; a slot before it keeps it already). */
		pgsource_report(s, s->start_lsn, s->start_lsn, 0);
		if (s->state != PGSOURCE_STREAMING)
			return;
	}
	s->reported_start = false;
	s->next_lsn += x.len;
	s->received_lsn = s->next_lsn;
	s->bytes_received += x.len;
	s->wal_delivered = true;
	s->ops->wal(s->arg, s->timeline, x.data_start, x.data, x.len);
}

/*
 * The server asks for a reply (@k).  Answered at once when a position moved since the
 * last status update, or none went for PGSOURCE_IDLE_REPLY_MS; else at that time
 * (pgsource_tick()).  A walsender that shuts down asks again as soon as it is answered,
 * until the flush position reaches all it sent (WalSndDone()): with the replicas away, an
 * answer each time was a ping-pong at the speed of the socket, the server never done
 * stopping.  Five in a row, the flush short of the server's end: the connection is closed,
 * so that the server can go on stopping; the slot keeps the WAL, streamed again once the
 * server is back and the replicas can make it durable.
 */
static void pgsource_keepalive(struct pgsource *s, const struct pgrepl_keepalive *k)
{
	int64_t now = clock_now_ms(), defer;
	bool moved = s->report_write != s->sent_write || s->report_flush != s->sent_flush ||
		     s->received_lsn != s->ping_received;
	bool idle;

	/* At most half the status interval late, which is at most a quarter of the server's
	 * wal_sender_timeout: the reply still comes well within it. */
	defer = s->status_ms / 2 < PGSOURCE_IDLE_REPLY_MS ? s->status_ms / 2 :
							    PGSOURCE_IDLE_REPLY_MS;
	/* One in a row: nothing received and the flush where it was at the last one (a flush
	 * that moves, sent as it moved, is replicas catching up: PostgreSQL is let wait), and
	 * it came soon after a status update, as a shutting-down walsender's do (one round
	 * trip after each answer), not at wal_sender_timeout / 2 of silence: within a round
	 * trip of it, and sooner than the status interval, the routine pings' period (with
	 * wal_sender_timeout under a second, a round trip plus the deferral was as long, and
	 * every routine ping counted). */
	idle = s->received_lsn == s->ping_received && s->report_flush == s->ping_flush &&
	       s->last_status_ms && now - s->last_status_ms <= PGSOURCE_PING_RTT_MS &&
	       now - s->last_status_ms < s->status_ms;
	if (idle && s->last_ping_ms && now - s->last_ping_ms < PGSOURCE_PING_GAP_MS)
		s->idle_pings++;
	else
		s->idle_pings = 0;
	s->last_ping_ms = now;
	s->ping_received = s->received_lsn;
	s->ping_flush = s->report_flush;
	if (s->idle_pings >= PGSOURCE_SHUTDOWN_PINGS && s->report_flush < k->wal_end) {
		pgsource_fail(s,
			      "the server asks again and again for a flush position walship cannot "
			      "reach now (%X/%08X of its %X/%08X): it waits to shut down; "
			      "disconnecting, so that it can",
			      (uint32_t)(s->report_flush >> 32), (uint32_t)s->report_flush,
			      (uint32_t)(k->wal_end >> 32), (uint32_t)k->wal_end);
		return;
	}
	if (!moved && now - s->last_status_ms < defer)
		s->reply_due_ms = s->last_status_ms + defer;
	else
		pgsource_send_status(s, false);
}

static void pgsource_message(struct pgsource *s, const uint8_t *msg, size_t len)
{
	struct pgrepl_keepalive k;

	s->last_recv_ms = clock_listen_ms();
	s->reply_requested = false;
	switch (msg[0]) {
	case PGREPL_MSG_XLOGDATA:
		pgsource_xlogdata(s, msg, len);
		break;
	case PGREPL_MSG_KEEPALIVE:
		if (pgrepl_parse_keepalive(msg, len, &k) != 0) {
			pgsource_fail(s, "invalid keepalive message received from the server");
			return;
		}
		s->server_wal_end = k.wal_end;
		if (k.reply_requested)
			pgsource_keepalive(s, &k);
		break;
	default:
		pgsource_fail(s, "unexpected message type 0x%02x in the WAL stream from the server",
			      msg[0]);
		break;
	}
	/* The server streams and the message was taken: a healthy connection.  Not before:
	 * one refused (a damaged page, an unexpected message) would have the next attempt
	 * come after reconnect_min every time. */
	if (s->state == PGSOURCE_STREAMING)
		s->backoff_ms = s->cfg.reconnect_min_ms;
}

/*
 * The server has removed the WAL streaming was to go on with (@err: "requested WAL segment
 * ... has already been removed"): a slot that held more than max_slot_wal_keep_size is
 * invalidated at a checkpoint, and the segments it no longer holds are removed once
 * archived.  Told to the role, kept for the status, and retried as any failure: the WAL
 * may come back from elsewhere (ops->wal_removed).
 */
static void pgsource_wal_removed(struct pgsource *s, const char *err)
{
	char at[PGREPL_LSN_TEXT];
	uint32_t timeline = s->timeline;
	uint64_t lsn = s->next_lsn;

	if (s->reported_start) {
		/* Not WAL the stream misses: the record's, set aside (for this process). */
		pgsource_reported_set_aside(s, s->reported_pin ?
						       "the server no longer has it" :
						       "the server no longer has the WAL from the "
						       "replication slot's position before it");
		pgsource_fail(s, "the server no longer has the WAL from %s on timeline %u: %s",
			      pgrepl_lsn_format(lsn, at, sizeof(at)), timeline, err);
		return;
	}
	s->wal_missing_lsn = lsn;
	if (s->held_start)
		pgsource_held_fallback(s, "the server no longer has it");
	pgsource_fail(s, "the server no longer has the WAL from %s on timeline %u: %s",
		      pgrepl_lsn_format(lsn, at, sizeof(at)), timeline, err);
	log_detail("Replication slot \"%s\" %s.", s->cfg.slot,
		   s->slot_restart_lsn ? "reserved WAL when this connection read it" :
					 "reserves no WAL (its restart_lsn is NULL): PostgreSQL "
					 "invalidated it for holding more than "
					 "max_slot_wal_keep_size, or it was made without "
					 "RESERVE_WAL");
	if (!s->held_start)
		log_hint(
			"Push the segments from the one named on with walship push (from the archive "
			"that has them): streaming goes on after the last one the replicas hold.  If "
			"none has them, stop walshipd, drop the slot and start walshipd: it makes the "
			"slot again and streams from the server's position; the standbys served by "
			"the replicas then need a new base backup.");
	if (s->ops->wal_removed)
		s->ops->wal_removed(s->arg, timeline, lsn);
}

/* The CopyBoth stream ended (PQgetCopyData() returned -1): why? */
static void pgsource_copy_ended(struct pgsource *s)
{
	char err[256];
	PGresult *res = PQgetResult(s->conn);
	ExecStatusType status = res ? PQresultStatus(res) : PGRES_EMPTY_QUERY;

	if (status == PGRES_COPY_IN) {
		/* The server sent CopyDone (end of our timeline): answer with ours, then read
		 * the next_tli row as the results of a command. */
		PQclear(res);
		if (PQputCopyEnd(s->conn, NULL) <= 0) {
			pgsource_fail(s,
				      "could not send end-of-streaming message to the server: %s",
				      PQ_ERROR(s, err));
			return;
		}
		s->state = PGSOURCE_COMMAND;
		s->step = PGSOURCE_STEP_END_OF_TIMELINE;
		s->deadline_ms = clock_now_ms() + s->cfg.connect_timeout_ms;
		s->connected_since_ms = 0;
		if (pgsource_flush(s))
			pgsource_collect(s);
		return;
	}
	if (status == PGRES_FATAL_ERROR) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* also an error after CopyBothResponse: START_REPLICATION refused */
		pgsource_pq_error(PQresultErrorMessage(res), err, sizeof(err));
		if (state && strcmp(state, PGSOURCE_SQLSTATE_UNDEFINED_FILE) == 0)
			pgsource_wal_removed(s, err);
		else
			pgsource_fail(s, "could not receive data from WAL stream: %s", err);
	} else {
		s->result = res;
		res = NULL;
		s->state = PGSOURCE_COMMAND;
		s->step = PGSOURCE_STEP_END_OF_TIMELINE;
		s->deadline_ms = clock_now_ms() + s->cfg.connect_timeout_ms;
		pgsource_collect(s);
	}
	PQclear(res);
}

/*
 * Paused for two status intervals (pgsource.h, step 7): end streaming with our CopyDone.
 * Whatever the server still sends up to its own CopyDone is dropped (it is after
 * next_lsn, where streaming starts again), and it must answer within connect_timeout.
 */
static void pgsource_leave(struct pgsource *s, int64_t now_ms)
{
	/* (now_ms: the monotonic clock, for the deadline; the silence is on the listening one) */
	char err[256];

	log_log("nothing read from the server for %lld ms while reading waits: WAL streaming "
		"stops until it goes on, the server is asked every %d ms meanwhile",
		(long long)(clock_listen_ms() - s->last_recv_ms), s->status_ms);
	if (PQputCopyEnd(s->conn, NULL) <= 0) {
		pgsource_fail(s, "could not send end-of-streaming message to the server: %s",
			      PQ_ERROR(s, err));
		return;
	}
	s->state = PGSOURCE_COMMAND;
	s->step = PGSOURCE_STEP_LEAVE;
	s->deadline_ms = now_ms + s->cfg.connect_timeout_ms;
	s->connected_since_ms = 0;
	if (pgsource_flush(s))
		pgsource_leave_drain(s);
}

/* Drop the CopyData the server still sends after our CopyDone; at its end, the results. */
static void pgsource_leave_drain(struct pgsource *s)
{
	char err[256];

	while (s->state == PGSOURCE_COMMAND && s->step == PGSOURCE_STEP_LEAVE) {
		char *buf = NULL;
		int len = PQgetCopyData(s->conn, &buf, 1);

		if (len > 0) { /* the server is there: its answer may take as long again */
			PQfreemem(buf);
			s->deadline_ms = clock_now_ms() + s->cfg.connect_timeout_ms;
			continue;
		}
		if (len == 0)
			return;
		if (len == -1) {
			s->step = PGSOURCE_STEP_LEFT;
			pgsource_collect(s);
		} else {
			pgsource_fail(s, "could not read COPY data: %s", PQ_ERROR(s, err));
		}
		return;
	}
}

/* Hand every complete CopyData message libpq holds to the role, unless paused. */
static void pgsource_drain(struct pgsource *s)
{
	char err[256];

	if (s->draining) /* pgsource_pause(false) from inside ops->wal: the loop goes on */
		return;
	s->draining = true;
	while (s->state == PGSOURCE_STREAMING && !s->paused) {
		char *buf = NULL;
		int len = PQgetCopyData(s->conn, &buf, 1);

		if (len > 0) {
			pgsource_message(s, (const uint8_t *)buf, (size_t)len);
			PQfreemem(buf);
			continue;
		}
		if (len == 0)
			break;
		if (len == -1)
			pgsource_copy_ended(s);
		else
			pgsource_fail(s, "could not read COPY data: %s", PQ_ERROR(s, err));
		break;
	}
	s->draining = false;
	/* Also after a failure: what was delivered before it is the role's to send. */
	if (s->wal_delivered) {
		s->wal_delivered = false;
		if (s->ops->wal_batch_end)
			s->ops->wal_batch_end(s->arg);
	}
}

/* ---- the poll ---- */

static uint32_t pgsource_wanted_mask(const struct pgsource *s)
{
	uint32_t mask = s->want_write ? POLLOUT : 0;

	if (!s->conn)
		return 0;
	switch (s->state) {
	case PGSOURCE_CONNECTING:
		return s->connect_wants_write ? POLLOUT : POLLIN;
	case PGSOURCE_COMMAND:
		return mask | POLLIN;
	case PGSOURCE_STREAMING:
		return mask | (s->paused ? 0 : POLLIN);
	case PGSOURCE_PAUSED: /* nothing is expected: an error, the end of the connection */
		return mask | POLLIN;
	default:
		return 0;
	}
}

/* Arm the poll this state needs, or cancel the one in flight when it no longer fits. */
static void pgsource_arm(struct pgsource *s)
{
	uint32_t mask = pgsource_wanted_mask(s);
	struct io_uring_sqe *sqe;

	if (s->poll_inflight) {
		if (s->poll_gen != s->conn_gen || (mask & ~s->poll_mask))
			pgsource_cancel_poll(s);
		return;
	}
	if (!mask)
		return;
	sqe = ring_sqe(s->ring, &s->poll_op);
	io_uring_prep_poll_add(sqe, PQsocket(s->conn), mask);
	s->poll_inflight = true;
	s->poll_cancelling = false;
	s->poll_mask = mask;
	s->poll_gen = s->conn_gen;
}

static void pgsource_poll_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct pgsource *s = container_of(op, struct pgsource, poll_op);
	char err[256];
	bool current = s->poll_gen == s->conn_gen && s->conn;

	(void)cqe_flags;
	s->poll_inflight = false;
	s->poll_cancelling = false;
	if (!current || res == -ECANCELED || res == 0) {
		pgsource_arm(s);
		return;
	}
	if (res < 0) {
		pgsource_fail(s, "could not wait for the server's socket: %s", strerror(-res));
		return;
	}
	switch (s->state) {
	case PGSOURCE_CONNECTING:
		pgsource_connect_poll(s);
		break;
	case PGSOURCE_COMMAND:
	case PGSOURCE_STREAMING:
	case PGSOURCE_PAUSED:
		if (s->want_write && !pgsource_flush(s))
			break;
		if (s->state == PGSOURCE_STREAMING && s->paused)
			break;
		if ((res & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(s->conn)) {
			pgsource_fail(s, "could not receive data from the server: %s",
				      PQ_ERROR(s, err));
			break;
		}
		if (s->state == PGSOURCE_COMMAND && s->step == PGSOURCE_STEP_LEAVE)
			pgsource_leave_drain(s);
		else if (s->state == PGSOURCE_COMMAND)
			pgsource_collect(s);
		else if (s->state == PGSOURCE_STREAMING)
			pgsource_drain(s);
		else if (PQstatus(s->conn) == CONNECTION_BAD)
			pgsource_fail(s, "connection to the server lost: %s", PQ_ERROR(s, err));
		break;
	default:
		break;
	}
	pgsource_arm(s);
}

static void pgsource_cancel_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	/* -ENOENT: the poll had completed already; either way its own completion tells. */
	(void)op;
	(void)res;
	(void)cqe_flags;
}

/* ---- the API ---- */

/* The backoff's bounds into s->cfg, the defaults for what is not set. */
static void pgsource_backoff_bounds(struct pgsource *s, int min_ms, int max_ms)
{
	s->cfg.reconnect_min_ms = min_ms > 0 ? min_ms : PGSOURCE_DEFAULT_RECONNECT_MIN_MS;
	s->cfg.reconnect_max_ms = max_ms;
	if (s->cfg.reconnect_max_ms < s->cfg.reconnect_min_ms)
		s->cfg.reconnect_max_ms =
			s->cfg.reconnect_min_ms > PGSOURCE_DEFAULT_RECONNECT_MAX_MS ?
				s->cfg.reconnect_min_ms :
				PGSOURCE_DEFAULT_RECONNECT_MAX_MS;
}

void pgsource_set_backoff(struct pgsource *s, int reconnect_min_ms, int reconnect_max_ms)
{
	int64_t latest;

	pgsource_backoff_bounds(s, reconnect_min_ms, reconnect_max_ms);
	if (s->backoff_ms > s->cfg.reconnect_max_ms)
		s->backoff_ms = s->cfg.reconnect_max_ms;
	if (s->backoff_ms < s->cfg.reconnect_min_ms)
		s->backoff_ms = s->cfg.reconnect_min_ms;
	latest = clock_now_ms() + s->cfg.reconnect_max_ms;
	if (s->retry_at_ms > latest)
		s->retry_at_ms = latest;
}

int pgsource_init(struct pgsource *s, struct ring *ring, const struct pgsource_config *cfg,
		  const struct pgsource_ops *ops, void *arg)
{
	PQconninfoOption *options;
	char *errmsg = NULL;

	memset(s, 0, sizeof(*s));
	if (!ops || !ops->identify || !ops->resume_lsn || !ops->wal || !cfg->slot ||
	    !cfg->slot[0]) {
		log_error(
			"invalid streaming source configuration: slot and callbacks are required");
		return -EINVAL;
	}
	options = PQconninfoParse(cfg->conninfo ? cfg->conninfo : "", &errmsg);
	if (!options) {
		char err[256];

		log_error("invalid connection string \"%s\": %s", cfg->conninfo,
			  errmsg ? pgsource_pq_error(errmsg, err, sizeof(err)) : "out of memory");
		PQfreemem(errmsg);
		return -EINVAL;
	}
	for (PQconninfoOption *opt = options; opt->keyword; opt++)
		if (strcmp(opt->keyword, "dbname") == 0 && opt->val && opt->val[0])
			s->conninfo_has_dbname = true;
	PQconninfoFree(options);

	s->ring = ring;
	s->cfg = *cfg;
	if (!s->cfg.conninfo)
		s->cfg.conninfo = "";
	if (s->cfg.status_interval_ms <= 0)
		s->cfg.status_interval_ms = PGSOURCE_DEFAULT_STATUS_MS;
	if (s->cfg.connect_timeout_ms <= 0)
		s->cfg.connect_timeout_ms = PGSOURCE_DEFAULT_CONNECT_MS;
	pgsource_backoff_bounds(s, cfg->reconnect_min_ms, cfg->reconnect_max_ms);
	s->ops = ops;
	s->arg = arg;
	s->poll_op.cb = pgsource_poll_done;
	s->cancel_op.cb = pgsource_cancel_done;
	s->backoff_ms = s->cfg.reconnect_min_ms;
	s->status_ms = s->cfg.status_interval_ms;
	s->state = PGSOURCE_STOPPED;
	return 0;
}

void pgsource_start(struct pgsource *s)
{
	if (s->state != PGSOURCE_STOPPED && s->state != PGSOURCE_WAITING)
		return;
	pgsource_connect(s);
	pgsource_arm(s);
}

void pgsource_report(struct pgsource *s, uint64_t write, uint64_t flush, uint64_t apply)
{
	bool advanced = false;

	if (apply > s->report_apply) {
		s->report_apply = apply;
		advanced = true;
	}
	if (write > s->report_write) {
		s->report_write = write;
		advanced = true;
	}
	if (flush > s->report_flush) {
		s->report_flush = flush;
		advanced = true;
	}
	if (advanced && s->state == PGSOURCE_STREAMING) {
		pgsource_send_status(s, false);
		pgsource_arm(s);
	}
}

void pgsource_rewind(struct pgsource *s, uint64_t lsn)
{
	if (s->report_write > lsn)
		s->report_write = lsn;
	if (s->report_flush > lsn)
		s->report_flush = lsn;
	if (s->report_apply > lsn)
		s->report_apply = lsn;
}

void pgsource_replicas_known(struct pgsource *s)
{
	if (s->state == PGSOURCE_PAUSED && s->held_wait && !s->paused) {
		pgsource_resume(s);
		pgsource_arm(s);
	}
}

/* How often the server is asked while paused out of streaming: the status interval, and
 * while waiting for the replicas' inventories at most connect_timeout (the role's wait
 * for registered replicas is that long, stream_held_lsn()). */
static int pgsource_paused_interval(const struct pgsource *s)
{
	return s->held_wait && s->cfg.connect_timeout_ms < s->status_ms ?
		       s->cfg.connect_timeout_ms :
		       s->status_ms;
}

void pgsource_pause(struct pgsource *s, bool paused)
{
	if (s->paused == paused)
		return;
	s->paused = paused;
	if (!paused && s->state == PGSOURCE_STREAMING) {
		s->last_recv_ms = clock_listen_ms(); /* the silence was ours */
		s->reply_requested = false;
		pgsource_drain(s);
	} else if (!paused && s->state == PGSOURCE_PAUSED) {
		pgsource_resume(s);
	} /* a command in progress looks at paused when it is answered */
	pgsource_arm(s);
}

void pgsource_tick(struct pgsource *s, int64_t now_ms)
{
	int interval = s->status_ms;
	char err[256];
	/* The server's silence, counted on the listening clock (common/clock.h): while this
	 * event loop did not run, a reply may have waited unread, and an idle walsender sends
	 * nothing unasked; a stall of ours is not taken for the server's silence. */
	int64_t silent_ms = clock_listen_ms() - s->last_recv_ms;

	switch (s->state) {
	case PGSOURCE_WAITING:
		if (now_ms >= s->retry_at_ms)
			pgsource_connect(s);
		break;
	case PGSOURCE_CONNECTING:
		if (now_ms >= s->deadline_ms)
			pgsource_fail(s, "timeout after %d ms connecting to the server",
				      s->cfg.connect_timeout_ms);
		break;
	case PGSOURCE_COMMAND:
		if (now_ms >= s->deadline_ms)
			pgsource_fail(s,
				      "timeout after %d ms waiting for the server's answer to %s%s",
				      s->cfg.connect_timeout_ms, pgsource_step_what(s->step),
				      s->paused ? " while reading from it waits (paused)" : "");
		break;
	case PGSOURCE_PAUSED:
		if (silent_ms >= pgsource_paused_interval(s))
			pgsource_command(s, PGSOURCE_STEP_PROBE, "READ_REPLICATION_SLOT \"%s\"",
					 s->cfg.slot);
		break;
	case PGSOURCE_STREAMING:
		if (!s->paused) {
			/* Bytes may wait in libpq or TLS buffers with the socket not readable. */
			if (!PQconsumeInput(s->conn)) {
				pgsource_fail(s, "could not receive data from the server: %s",
					      PQ_ERROR(s, err));
				break;
			}
			pgsource_drain(s);
			if (s->state != PGSOURCE_STREAMING)
				break;
			silent_ms = clock_listen_ms() - s->last_recv_ms; /* (what it just read) */
			if (silent_ms >= 2LL * interval) {
				pgsource_fail(
					s,
					"terminating WAL streaming: no message from the server for %lld ms",
					(long long)(silent_ms));
				break;
			}
			if (silent_ms >= interval && !s->reply_requested) {
				pgsource_send_status(s, true);
				break;
			}
		} else if (silent_ms >= 2LL * interval) {
			/* Nothing tells a server that waits for us from one that is gone. */
			pgsource_leave(s, now_ms);
			break;
		}
		if (now_ms - s->last_status_ms >= interval ||
		    (s->reply_due_ms && now_ms >= s->reply_due_ms))
			pgsource_send_status(s, false);
		break;
	default:
		break;
	}
	pgsource_arm(s);
}

int64_t pgsource_next_tick(const struct pgsource *s)
{
	int64_t interval = s->status_ms, next;
	/* last_recv_ms is on the listening clock: on the monotonic one, it is this much later */
	int64_t recv_ms = s->last_recv_ms + (clock_now_ms() - clock_listen_ms());

	switch (s->state) {
	case PGSOURCE_WAITING:
		return s->retry_at_ms;
	case PGSOURCE_CONNECTING:
	case PGSOURCE_COMMAND:
		return s->deadline_ms;
	case PGSOURCE_STREAMING:
		next = s->last_status_ms + interval;
		if (s->reply_due_ms && s->reply_due_ms < next)
			next = s->reply_due_ms;
		if (!s->paused) {
			int64_t recv = recv_ms + (s->reply_requested ? 2 : 1) * interval;

			if (recv < next)
				next = recv;
		} else if (recv_ms + 2 * interval < next) {
			next = recv_ms + 2 * interval;
		}
		return next;
	case PGSOURCE_PAUSED:
		return recv_ms + pgsource_paused_interval(s);
	default:
		return INT64_MAX;
	}
}

void pgsource_stop(struct pgsource *s)
{
	pgsource_close(s);
	s->state = PGSOURCE_STOPPED;
}

static const char *pgsource_state_name(const struct pgsource *s)
{
	switch (s->state) {
	case PGSOURCE_STOPPED:
		return "stopped";
	case PGSOURCE_WAITING:
		return "waiting";
	case PGSOURCE_CONNECTING:
		return "connecting";
	case PGSOURCE_COMMAND:
		return "identifying";
	case PGSOURCE_STREAMING:
		return "streaming";
	case PGSOURCE_PAUSED:
		return "paused";
	}
	return "unknown";
}

void pgsource_get_status(const struct pgsource *s, struct pgsource_status *out)
{
	memset(out, 0, sizeof(*out));
	out->state = pgsource_state_name(s);
	snprintf(out->last_error, sizeof(out->last_error), "%s", s->last_error);
	out->received_lsn = s->received_lsn;
	out->reported_write = s->sent_write;
	out->reported_flush = s->sent_flush;
	out->timeline = s->timeline;
	out->connects = s->connects;
	out->disconnects = s->disconnects;
	out->bytes_received = s->bytes_received;
	out->connected_since_ms = s->connected_since_ms;
	out->server_wal_end = s->server_wal_end;
	out->slot_restart_lsn = s->slot_restart_lsn;
	out->wal_missing_lsn = s->wal_missing_lsn;
}
