/* SPDX-License-Identifier: MIT */
/*
 * The streaming source: walshipd as a physical replication client of PostgreSQL (as
 * pg_receivewal is), driven by the daemon's io_uring loop.  libpq speaks the protocol and
 * runs non-blocking; the ring only tells when its socket is readable or writable (one-shot
 * POLL_ADD), so the event loop never waits for PostgreSQL.
 *
 * Each connection runs these steps (docs/architecture.md, "The streaming source"):
 *
 *   1. connect (libpq, replication=true, dbname=replication for .pgpass, application_name)
 *      and refuse servers older than PostgreSQL 15
 *   2. IDENTIFY_SYSTEM, SHOW wal_segment_size and SHOW archive_mode -> ops->identify (the
 *      role may refuse); SHOW wal_sender_timeout: status updates go at least twice per
 *      wal_sender_timeout, so that the server never times walship out, not even while it
 *      does not read (paused: the server's keepalives are not seen then)
 *   3. READ_REPLICATION_SLOT; when the slot does not exist, CREATE_REPLICATION_SLOT "slot"
 *      PHYSICAL (RESERVE_WAL) and read it again
 *   4. start = ops->resume_lsn(), else the segment start of ops->reported_lsn() (where a
 *      walshipd before reported flushed), else the slot's restart_lsn, else
 *      IDENTIFY_SYSTEM's xlogpos, the last two rounded down to a segment start, or
 *      ops->held_lsn() when before them (the slot's position may be none walship
 *      reported), waiting until the replicas said what they hold; a start timeline older than
 *      the server's is looked up in the server's history (TIMELINE_HISTORY of its
 *      timeline): a start past the point where that timeline ended on this server (WAL
 *      the server does not have, PostgreSQL refuses it) becomes the segment start of that
 *      point on the timeline that forked there; a start timeline other than 1 has its
 *      history fetched (TIMELINE_HISTORY -> ops->history) first
 *   5. START_REPLICATION SLOT "slot" PHYSICAL X/X TIMELINE t, then XLogData -> ops->wal in
 *      order (dataStart continuity checked), keepalives answered, status updates sent
 *   6. end of timeline (the server's CopyDone and its next_tli row): CopyDone back,
 *      TIMELINE_HISTORY next_tli -> ops->history, START_REPLICATION again at the switch
 *      point rounded down to a segment start, on the new timeline
 *   7. paused (pgsource_pause()) for two status intervals: CopyDone, the WAL still
 *      coming dropped up to the server's CopyDone and the end of the command; then,
 *      connected and out of streaming, READ_REPLICATION_SLOT every status interval; once
 *      unpaused, steps 2 to 5 again on the same connection, from ops->resume_lsn()
 *
 * Any failure (refused connection, authentication, ErrorResponse, server restart, a server
 * silent for two status intervals, EOF, a command unanswered for connect_timeout) is
 * logged once with libpq's message, the connection closed, and a new one tried after a
 * backoff (reconnect_min doubling up to reconnect_max).  Nothing is skipped: every new
 * connection asks the role where to go on.  A start the server has removed the WAL of
 * (its slot invalidated by max_slot_wal_keep_size: "requested WAL segment ... has already
 * been removed") is such a failure too, told to the role (ops->wal_removed) and kept in
 * the status until WAL arrives again.
 *
 * Liveness: a walsender that receives status updates sends nothing while idle, so after a
 * status interval without any message the status update asks for a reply
 * (replyRequested); no message within two intervals means the server is gone.  While
 * paused the source reads nothing and cannot tell a server that waits for it from one
 * that is gone (a stopped process, a host cut off: TCP sees neither soon, the first not
 * at all), so after two status intervals it leaves streaming (step 7), whose end and the
 * commands after it the server must answer within connect_timeout: a server gone while
 * paused is noticed within two status intervals and connect_timeout.
 *
 * One struct per source, owned by the caller; one thread (the ring's).
 */
#ifndef WALSHIP_SOURCE_PGSOURCE_H
#define WALSHIP_SOURCE_PGSOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "ring/ring.h"

struct pg_conn; /* libpq's PGconn */
struct pg_result; /* libpq's PGresult */

/* What a server said of itself, on one connection. */
struct pgsource_server {
	uint64_t system_identifier; /* IDENTIFY_SYSTEM */
	uint32_t timeline;
	uint64_t xlogpos;
	uint32_t seg_size; /* SHOW wal_segment_size */
	bool archiving; /* SHOW archive_mode is not "off": its archiver may push segments */
};

/* What the source hands the role (all called from the ring's thread). */
struct pgsource_ops {
	/*
	 * Identity of the server @sv, on every (re)connection, before anything is streamed.
	 * Return 0 to go on, or -EINVAL to refuse: the source logs @why (what the role wrote
	 * into it, @whylen bytes), drops the connection and retries after the backoff.
	 */
	int (*identify)(void *arg, const struct pgsource_server *sv, char *why, size_t whylen);
	/*
	 * Where to start streaming: the LSN the role holds everything before, and its
	 * timeline in *@timeline (0: the server's).  Return 0 when it holds nothing: then the
	 * slot's restart_lsn is used, else IDENTIFY_SYSTEM's xlogpos, rounded down to a
	 * segment start (as pg_receivewal does).  Asked on every connection, after identify.
	 */
	uint64_t (*resume_lsn)(void *arg, uint32_t *timeline);
	/*
	 * WAL bytes [@lsn, @lsn + @len) of @timeline, in order: contiguous with the previous
	 * call of the same connection (the source checks the server's dataStart and drops the
	 * connection otherwise), except after history(), when the new timeline starts at the
	 * segment start of its switch point.  Not split at segment ends (the role does that);
	 * @data is valid during the call only.  The role may call pgsource_pause() from here.
	 */
	void (*wal)(void *arg, uint32_t timeline, uint64_t lsn, const uint8_t *data, uint32_t len);
	/*
	 * After the wal() calls of the messages one read of the socket brought (the source
	 * hands over every message libpq holds complete, then calls this once): the moment to
	 * send what arrived, as one piece rather than a piece per message.  May be NULL.
	 */
	void (*wal_batch_end)(void *arg);
	/*
	 * The history file @name ("%08X.history") of @timeline arrived: at the start of a
	 * connection whose start timeline is not 1 (so the same file may come again), and at a
	 * timeline switch before the first wal() of the new timeline.  May be NULL.
	 */
	void (*history)(void *arg, uint32_t timeline, const char *name, const uint8_t *content,
			uint32_t len);
	/*
	 * The server has removed the WAL of @timeline from @lsn on, where streaming was to go
	 * on (SQLSTATE 58P01, "requested WAL segment ... has already been removed"): called
	 * once the source failed this connection; it retries as after any failure, from
	 * ops->resume_lsn(), which may have moved past WAL the role got otherwise.  May be NULL.
	 */
	void (*wal_removed)(void *arg, uint32_t timeline, uint64_t lsn);
	/*
	 * Where a walshipd that ran before reported WAL flushed (its record), on *@timeline;
	 * 0: none.  Asked when the role holds nothing (resume_lsn() 0), before the slot: the
	 * WAL before it was durable on sync_replicas replicas, so streaming starts at its
	 * segment start whatever the slot's position (a slot made anew, or reserving
	 * nothing, says nothing of where walship stopped).  A record the server cannot
	 * stream from (its WAL removed, its timeline not in the server's history or after
	 * the server's, or it is past the server's position) is set aside, warned, and the
	 * start chosen without it.  May be NULL.
	 */
	uint64_t (*reported_lsn)(void *arg, uint32_t *timeline);
	/*
	 * Where the replicas' own inventories say the WAL they hold durably ends (0: none
	 * holds any), its timeline in *@timeline.  Asked when the role holds nothing
	 * (resume_lsn() 0) and there is no record to start from (reported_lsn()), for the slot's restart_lsn may be no position walship reported
	 * (a slot made by CREATE_REPLICATION_SLOT's RESERVE_WAL at the last checkpoint, or
	 * reserving nothing): commits that waited for walship on WAL before it would be
	 * acknowledged by the first report without it on a replica.  Streaming then starts
	 * there when it is before the slot's position, or on a timeline older than the
	 * slot's (the server's history moves it to the fork when past it), if the server
	 * still has it: else from the slot's position, warned.  UINT64_MAX: not known yet (fewer replicas
	 * connected than the role waits for): the source waits out of streaming until
	 * pgsource_replicas_known(), asking again at least every connect_timeout.  May be
	 * NULL.
	 */
	uint64_t (*held_lsn)(void *arg, uint32_t *timeline);
};

/* What a field of struct pgsource_config left 0 means. */
#define PGSOURCE_DEFAULT_STATUS_MS 10000
#define PGSOURCE_DEFAULT_CONNECT_MS 10000
#define PGSOURCE_DEFAULT_RECONNECT_MIN_MS 100
#define PGSOURCE_DEFAULT_RECONNECT_MAX_MS 10000

struct pgsource_config {
	const char *conninfo; /* libpq string or URI; replication=true and, unless it names a
				 database, dbname=replication (for .pgpass) are added */
	const char *slot; /* physical slot, [a-z0-9_]{1,63} (config.c checks pg_slot), created
			     with RESERVE_WAL if missing */
	const char *application_name; /* what synchronous_standby_names matches; NULL or "":
					 "walship" as fallback_application_name */
	int status_interval_ms; /* send 'r' at least this often (0: 10 s), and at least twice
				   per the server's wal_sender_timeout */
	int connect_timeout_ms; /* a connection attempt or a command times out (0: 10 s) */
	int reconnect_min_ms, reconnect_max_ms; /* backoff, doubling (0: 100 ms, 10 s) */
};

enum pgsource_state {
	PGSOURCE_STOPPED = 0,
	PGSOURCE_WAITING, /* backoff before the next connection */
	PGSOURCE_CONNECTING, /* libpq's PQconnectPoll() steps */
	PGSOURCE_COMMAND, /* a replication command before streaming (step 2 to 4, 6) */
	PGSOURCE_STREAMING, /* CopyBoth: START_REPLICATION sent, until its end */
	PGSOURCE_PAUSED, /* connected, out of streaming while paused (step 7) */
};

/* Which command PGSOURCE_COMMAND waits for. */
enum pgsource_step {
	PGSOURCE_STEP_IDENTIFY,
	PGSOURCE_STEP_SEG_SIZE,
	PGSOURCE_STEP_ARCHIVE_MODE,
	PGSOURCE_STEP_SENDER_TIMEOUT,
	PGSOURCE_STEP_READ_SLOT,
	PGSOURCE_STEP_CREATE_SLOT,
	PGSOURCE_STEP_REREAD_SLOT,
	PGSOURCE_STEP_HISTORY, /* of the start timeline */
	PGSOURCE_STEP_START,
	PGSOURCE_STEP_END_OF_TIMELINE, /* the results after the server's CopyDone */
	PGSOURCE_STEP_SWITCH_HISTORY, /* of the next timeline */
	PGSOURCE_STEP_SERVER_HISTORY, /* of the server's timeline, when starting on an older one */
	PGSOURCE_STEP_LEAVE, /* paused: our CopyDone sent, WAL dropped up to the server's */
	PGSOURCE_STEP_LEFT, /* the results of START_REPLICATION after its end */
	PGSOURCE_STEP_PROBE, /* paused, out of streaming: READ_REPLICATION_SLOT */
};

struct pgsource {
	struct ring *ring;
	struct pgsource_config cfg; /* strings owned by the caller, valid until stop */
	const struct pgsource_ops *ops;
	void *arg;

	enum pgsource_state state;
	enum pgsource_step step;
	struct pg_conn *conn;
	struct pg_result *result; /* the result the current command is kept for */
	uint64_t conn_gen; /* counts connections, for completions of an older one */
	bool conninfo_has_dbname; /* the connection string names a database */
	bool draining; /* pgsource_drain() is on the stack */
	bool wal_delivered; /* wal() was called since the last wal_batch_end() */

	/* One-shot poll on PQsocket(): at most one in flight. */
	struct ring_op poll_op;
	struct ring_op cancel_op; /* POLL_REMOVE requests (their completions do nothing) */
	bool poll_inflight;
	bool poll_cancelling;
	uint32_t poll_mask; /* of the poll in flight */
	uint64_t poll_gen; /* conn_gen when it was armed */
	bool connect_wants_write; /* PQconnectPoll said PGRES_POLLING_WRITING */
	bool want_write; /* PQflush() left output queued */
	bool paused;

	/* this connection */
	struct pgsource_server server;
	uint64_t slot_restart_lsn; /* as read, then the flush position sent (the server sets a
				      physical slot's restart_lsn to it); 0: NULL, none reserved */
	uint32_t slot_restart_tli;
	bool held_wait; /* waiting, paused out of streaming, for ops->held_lsn() */
	int status_logged_ms; /* the status interval last logged as shortened */
	bool reported_start; /* this START_REPLICATION is at ops->reported_lsn() */
	bool reported_pin; /* at its segment start, not the slot's: reported once streamed */
	bool reported_set_aside; /* the server could not stream from it: not asked again */
	bool held_start; /* this START_REPLICATION is where the replicas' WAL ends */
	bool held_removed; /* the server no longer had it: from the slot's position */
	uint32_t timeline; /* being streamed (or about to be) */
	uint64_t start_lsn; /* of the current START_REPLICATION */
	uint64_t next_lsn; /* the dataStart the next XLogData must have */
	uint32_t next_timeline; /* end of timeline: the server's next_tli */
	uint64_t next_timeline_start; /* and next_tli_startpos */

	/* timers (clock_now_ms()) */
	int64_t deadline_ms; /* connecting or command: give up then */
	int64_t retry_at_ms; /* waiting: connect then */
	int backoff_ms; /* the next wait */
	int status_ms; /* this connection's status interval: cfg's, at most half the
			  server's wal_sender_timeout */
	int64_t last_recv_ms; /* streaming: last message from the server; paused, out of
				 streaming: its last answer (on the listening clock,
				 common/clock.h: a stall of ours is not its silence) */
	int64_t last_status_ms; /* streaming: last 'r' sent */
	bool reply_requested; /* an 'r' asked for a reply since last_recv_ms */
	/* the server's requests for a reply when nothing moved (pgsource_keepalive()): an
	 * answer deferred until reply_due_ms (0: none), and how many came in a row, each
	 * within PGSOURCE_PING_GAP_MS of the one before */
	int64_t reply_due_ms;
	int64_t last_ping_ms;
	uint64_t ping_received; /* received_lsn at the last one */
	uint64_t ping_flush; /* report_flush at the last one */
	unsigned int idle_pings;

	/* what the role reported (kept as the maximum) and what was last sent */
	uint64_t report_write, report_flush, report_apply;
	uint64_t sent_write, sent_flush;

	/* status */
	char last_error[256];
	uint64_t received_lsn; /* end of the last XLogData received */
	uint64_t connects, disconnects, bytes_received;
	int64_t connected_since_ms; /* clock_now_ms() when streaming began; 0: not streaming */
	uint64_t server_wal_end; /* walEnd of the last 'w' or 'k' */
	uint64_t wal_missing_lsn; /* the server removed WAL from here on (ops->wal_removed),
				     until WAL arrives again; 0: none */
};

/*
 * Set up @s (no connection yet): @cfg's strings must stay valid until pgsource_stop();
 * zero intervals take their defaults.  @ops->identify, resume_lsn and wal are required.
 * Returns 0 or -EINVAL (logged).
 */
int pgsource_init(struct pgsource *s, struct ring *ring, const struct pgsource_config *cfg,
		  const struct pgsource_ops *ops, void *arg);

/* Connect now (from stopped or waiting; otherwise nothing happens). */
void pgsource_start(struct pgsource *s);

/*
 * The role's positions: @write = received by enough replicas, @flush = durable on enough
 * replicas, @apply = applied by standbys served by enough replicas (0 while unknown).  Each
 * is kept as the maximum ever reported (never goes backwards); when one advanced and the
 * source is streaming, a status update is sent at once.  With a slot, PostgreSQL may
 * remove WAL before @flush.
 */
void pgsource_report(struct pgsource *s, uint64_t write, uint64_t flush, uint64_t apply);

/*
 * The one exception to "never backwards": the stream goes on on a new timeline that forked
 * at @lsn, before what the old one had carried to the replicas.  What they hold past @lsn
 * is the old timeline's WAL, not the new one's, so no position reported from now on is
 * above @lsn until the role reports again (the status update that starts the new
 * timeline's streaming carries these).
 */
void pgsource_rewind(struct pgsource *s, uint64_t lsn);

/* A replica connected: a source waiting to learn what they hold (ops->held_lsn()) asks
 * again. */
void pgsource_replicas_known(struct pgsource *s);

/*
 * A reload: the backoff's bounds (0: the defaults, as in pgsource_init()).  A wait already
 * scheduled, and the next one, are cut to the new longest.
 */
void pgsource_set_backoff(struct pgsource *s, int reconnect_min_ms, int reconnect_max_ms);

/*
 * Back-pressure: while paused the source does not read from the socket (PostgreSQL's
 * walsender then waits, and the receive timeout does not run); status updates still go
 * out.  Paused for two status intervals, it leaves streaming and checks the server every
 * interval (pgsource.h, step 7).  Unpausing reads again, including what libpq already
 * holds, or starts streaming again where the role says.
 */
void pgsource_pause(struct pgsource *s, bool paused);

/*
 * This connection failed (the source's own errors, or the role's, e.g. WAL it refuses):
 * log the reason once (ERROR), keep it as last_error, close the connection and connect
 * again after the backoff, going on from ops->resume_lsn().  Safe from inside ops->wal.
 */
void pgsource_fail(struct pgsource *s, const char *fmt, ...) attr_printf(2, 3);

/*
 * Timers: connection and command timeout, receive timeout (no message for two status
 * intervals: the server is gone), reconnect backoff, periodic status update, leaving
 * streaming while paused and checking the server then.  Call at
 * @now_ms (clock_now_ms()) when pgsource_next_tick() is due, or more often.
 */
void pgsource_tick(struct pgsource *s, int64_t now_ms);

/* The earliest time (clock_now_ms()) pgsource_tick() must run; INT64_MAX when stopped. */
int64_t pgsource_next_tick(const struct pgsource *s);

/*
 * Close the connection and cancel its poll; the source stays stopped until
 * pgsource_start().  Completions the ring still delivers afterwards do nothing, but @s must
 * stay allocated until the ring has delivered them (ring_exit() or a few ring_run()s).
 */
void pgsource_stop(struct pgsource *s);

struct pgsource_status {
	const char *state; /* "connecting", "identifying", "streaming", "paused" (out of
			      streaming, step 7), "waiting", "stopped" */
	char last_error[256]; /* "" when none yet */
	uint64_t received_lsn; /* end of the last WAL received */
	uint64_t reported_write, reported_flush; /* as sent to PostgreSQL last */
	uint32_t timeline;
	uint64_t connects, disconnects, bytes_received;
	int64_t connected_since_ms; /* clock_now_ms() when streaming began; 0: not streaming */
	uint64_t server_wal_end; /* the server's end of WAL, as it last said */
	uint64_t slot_restart_lsn; /* the slot's, as read or since reported; 0: NULL or unread */
	uint64_t wal_missing_lsn; /* the server removed the WAL streaming needs from here on */
};

void pgsource_get_status(const struct pgsource *s, struct pgsource_status *out);

#endif /* WALSHIP_SOURCE_PGSOURCE_H */
