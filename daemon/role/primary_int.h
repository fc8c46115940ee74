/* SPDX-License-Identifier: MIT */
/*
 * The primary role's private state, shared by its parts:
 *
 *   primary.c        the role itself: start, pump, tick, stop, reload, status, requests
 *   primary_push.c   the push lifecycle: validate, account acknowledgements, answer;
 *                    the segments shipped ahead of their push (CTL_F_AHEAD)
 *   primary_hold.c   the spool policy and the registered replicas
 *   primary_peer.c   replica connections: accept, listen, handshake (HELLO, HAVE, PING)
 *   primary_xfer.c   transfers to a streaming replica and its acknowledgements
 *   primary_stream.c the stream source: PostgreSQL's replication stream into segment pushes,
 *                    and the flush position reported back (synchronous standby)
 *   decide.c         what they decide, as pure functions (role/decide.h, unit-tested)
 *   relay.c          the same sender in a replica (relay = on), with the replica's store as
 *                    its source instead of pushes and PostgreSQL (role/relay.h)
 *
 * One struct per lifetime: struct primary (the role), struct peer (a connection),
 * struct push (a file being shipped), struct xfer (a file being sent on one connection).
 * Nothing here is used outside daemon/role/primary*.c.
 */
#ifndef WALSHIP_ROLE_PRIMARY_INT_H
#define WALSHIP_ROLE_PRIMARY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/compiler.h"
#include "common/hba.h"
#include "control/control.h"
#include "net/acceptor.h"
#include "net/conn.h"
#include "proto/codec.h"
#include "ring/validate.h"
#include "ring/worker.h"
#include "role/decide.h"
#include "role/role.h"
#include "status/status.h"
#include "wal/name.h"
#include "wal/page.h"
#include "wal/spool.h"

/*
 * Frames queued per replica connection before its producer waits (reads included): one
 * chunk being read, one ready, one being sent.  A send completes once its bytes are in the
 * socket buffer, which holds what the network has in flight, so more queued here only
 * spreads the reads over more slots the CPU's caches do not hold: with 6, the module's
 * sender used 5 % more CPU per GB at the same throughput (docs/benchmark-notes.md).
 */
#define PEER_MAX_QUEUED 3
/* How long a stopping primary waits for acknowledgements of files in flight. */
#define DRAIN_MS 3000
/* Replicas whose acknowledgements a push remembers (max_senders' upper bound). */
#define PUSH_MAX_EARLY_ACKS 64
/* Replicas remembered as having refused one streamed segment (more count as away). */
#define PUSH_MAX_REFUSALS 8
/* How long a connected replica has to answer a PING when another connection announces its
 * name: alive, the newcomer is refused (ERROR NAME); silent, it is replaced. */
#define NAME_PROBE_MS 2000
/* Tokens of the primary's own PINGs (handshake and name probes); keepalive tokens are
 * monotonic milliseconds, far below. */
#define PEER_TOKEN_BASE (UINT64_C(1) << 63)

/*
 * The handshake (docs/protocol.md, section 1).  A connection counts against max_senders
 * once its HELLO is answered (PEER_INVENTORY on), never before.  It is complete, and the
 * replica registered, only once HELLO and HAVE were valid and the replica answered a PING
 * sent after its HAVE: a peer that does not read what it is sent, or breaks the protocol
 * right after its HAVE, never gets WAL held for it.
 */
enum peer_state {
	PEER_HANDSHAKE, /* waiting for HELLO */
	PEER_NAME_WAIT, /* HELLO valid, but its name is connected: is that connection alive? */
	PEER_INVENTORY, /* HELLO answered, waiting for HAVE */
	PEER_CONFIRM, /* HAVE valid, waiting for the PONG of our PING */
	PEER_STREAMING,
};

/* Whether a streaming replica stores what it is sent (ACK IO_ERROR says it could not). */
enum peer_io {
	PEER_IO_OK, /* sent every new push */
	PEER_IO_WAIT, /* failing: new pushes are held for it in the spool, none is sent */
	PEER_IO_RETRY, /* after the backoff: one held file at a time until one is stored */
};

struct primary;

/*
 * A pushed file as fstat() saw it: its inode, size and change time name its content (a
 * write changes the change time, which no one can set back).
 */
struct push_file_id {
	dev_t dev;
	ino_t ino;
	uint64_t size;
	struct timespec ctime;
};

struct push {
	struct push *next;
	struct primary *pr;
	uint64_t id;
	char name[CTL_MAX_NAME];
	struct wal_name wn;
	int fd;
	uint64_t size;
	const uint8_t *map; /* read-only mapping of the file (send_source = map), or NULL */
	struct ctl_client *client; /* NULL once replied */
	int64_t started_ms;
	int64_t deadline_ms;
	int timeout_ms; /* push_timeout when the deadline was set, or a shorter one reloaded
			 * since (primary_reload: the deadline moved in with it) */
	unsigned int acks;
	unsigned int refs; /* transfers and reads that still use fd */
	char acked_by[256];
	char io_error[192]; /* why a replica could not store it (ACK IO_ERROR) or refused it
			     * (a streamed segment), for the timeout */
	/*
	 * A push with no client that waits to be safe (or to fail) is "unsettled", which
	 * keeps it as a client would: a segment streamed from PostgreSQL (stream), a file the
	 * stream ships from memory (push_mem_begin: a history file, a cut segment's
	 * .partial), or a segment shipped ahead of its push (ahead).
	 *
	 * A streamed segment (primary_stream.c) lives in memory (a memfd of the segment's
	 * size, fd and map), and avail says how much of it has arrived.  Every other push has
	 * avail = size.
	 */
	bool stream;
	bool unsettled;
	/*
	 * Passed with CTL_F_AHEAD after another push: shipped before PostgreSQL's archiver
	 * asks for it.  Its own push, when it comes, takes it over while it is unsettled
	 * (the same file: push_same_file), or is answered from pr->ahead_recent once it is
	 * safe.
	 */
	bool ahead;
	struct push_file_id file; /* the pushed file as fstat() saw it */
	bool memfd; /* its memory is a memfd of push_mem_new's, kept as a spare if streamed */
	/* relay: the growing segment in the replica's memory while the replica writes it with
	 * O_DIRECT (relay_wal_durable()), NULL otherwise: its chunks are copied from there,
	 * never read through the page cache that each direct write drops */
	const uint8_t *image;
	uint64_t avail;
	uint64_t lsn; /* stream: LSN of byte 0 */
	/*
	 * A streamed segment's pages are checked as they arrive.  A pushed segment read
	 * into the send slots (send_source = buffers) is checked there as the first transfer
	 * reads each chunk (push_check_read()), its first page at the push: "checking" while
	 * wv has not reached its end.  Before a push is answered or held, the pages no read
	 * brought are read for it (push_check()).
	 */
	struct wal_validator wv;
	bool checking;
	/* a streamed segment: CRC-32C of its first avail bytes, taken as they arrive, for
	 * stream_recent when it settles (not 16 MiB at once on the event loop then); only
	 * while the server archives (running_crc_on): otherwise no push of it can come */
	uint32_t running_crc;
	bool running_crc_on;
	/* A push of a segment being streamed waits for the stream's copy (follower of its
	 * leader): answered when that is safe, sent only if it fails. */
	struct push *follower;
	struct push *leader;
	bool from_spool; /* a held file sent to a replica catching up: no client */
	bool spool_needed; /* registered replicas lack it: hold it before answering */
	bool spool_done; /* the spool job finished (successfully or not) */
	bool spooled; /* held durably in the spool */
	/* the file's mapping before push_source_to_spool() moved the source to the spool's
	 * copy: zero-copy sends may still use it, so it goes with the push */
	const uint8_t *old_map;
	/* and its descriptor: reads prepared but not yet submitted name it by number, which
	 * a close would free for another file before they run (valid with has_old_fd) */
	int old_fd;
	bool has_old_fd;
	int64_t spool_wait_until_ms; /* spool_delay: copy into the spool then, if still needed */
	/* replicas that acknowledged it: they need no held copy (claims made while the
	 * spool job ran are released when it finishes) */
	unsigned int nacked;
	char acked_names[PUSH_MAX_EARLY_ACKS][WIRE_MAX_NAME + 1];
	/* a streamed segment: replicas that refused it for good (push_stream_refused()) */
	unsigned int nrefused;
	char refused_names[PUSH_MAX_REFUSALS][WIRE_MAX_NAME + 1];
};

/* Copying a pushed file into the spool, on the worker thread. */

struct xfer {
	struct xfer *next;
	struct peer *peer;
	struct push *push;
	uint32_t file_id;
	uint64_t next_read;
	int64_t begin_ms; /* when FILE_BEGIN was queued */
	bool begin_queued;
	bool later; /* not begun: the replica holds more of it than has arrived (HAVE_LATER) */
	bool end_queued;
	bool stream; /* begun with WIRE_BEGIN_STREAM: the replica may refuse it before its end */
};

/* Cancelled file ids a replica's late PROGRESS or ACK may still name (struct peer). */
#define PEER_CANCELLED_IDS 8

struct peer {
	struct conn conn; /* first: conn callbacks find the peer from it */
	struct peer *next;
	struct primary *pr;
	enum peer_state state;
	bool refused; /* an ERROR is queued: close once it is sent */
	struct peer *rival; /* PEER_NAME_WAIT: the connection of that name, being probed */
	/* a whole (not streamed) file begun on it had to be cancelled, which the protocol
	 * has no frame for, or its registration's folder in the spool is gone
	 * (primary_registration_gone()): the connection is closed at the next pump, and
	 * the replica is sent the file again, or registers anew, once it is back */
	bool close_pending;
	bool have_early; /* PEER_NAME_WAIT: its HAVE came already (in have) */
	uint64_t confirm_token; /* PEER_CONFIRM: the PING whose PONG completes the handshake */
	uint64_t probe_token; /* a newcomer announced this name: our PING, or 0 */
	uint64_t probe_rx_bytes; /* received on this connection when the PING was queued */
	int64_t probe_sent_ms; /* when it was (monotonic) */
	int64_t probe_deadline_ms; /* no PONG by then: closed, the newcomer goes on */
	char name[WIRE_MAX_NAME + 1];
	int64_t accepted_ms;
	int64_t connected_since;
	int64_t streaming_since_ms; /* clock_now_ms() when registered (stream_held_lsn()) */
	struct xfer *xfers; /* unacknowledged transfers, in order */
	struct xfer *fill; /* first transfer not completely queued */
	unsigned int inflight_files;
	char **backlog; /* held files this replica still needs, in WAL order */
	int nbacklog;
	int backlog_next;
	int backlog_floor; /* the entries before it are no longer held (peer_lacks_from()) */
	/* the backlog is to be listed again once it is sent: safe files deferred to the
	 * spool (peer_defer_safe()), or, on a relay, files stored after it was listed
	 * (relay_peer_progress()); relist_from is the oldest of them (a relay lists again
	 * from there: peer_relist_backlog()) */
	char relist_from[WIRE_MAX_FILE_NAME + 1];
	/* on a relay, the lowest WAL position among them (0: none): a new timeline's
	 * segments sort after the old one's by name but may begin before them (its floor
	 * counts them, relay_peer_floor()) */
	uint64_t relist_lsn;
	int64_t relist_retry_ms; /* a listing failed: not again before this */
	int64_t backlog_retry_ms; /* the backlog's next file could not be opened: not before */
	bool backlog_more;
	uint32_t next_file_id;
	/* the last files cancelled (FILE_CANCEL), a ring: a PROGRESS or refusal ACK of one
	 * that the replica sent before it read the cancel is ignored (peer_cancelled()) */
	uint32_t cancelled_ids[PEER_CANCELLED_IDS];
	unsigned int cancelled_next;
	struct msg_have have; /* what the replica said it holds; entries used are cleared */
	/* where the segments HAVE listed end (the newest, or a partial's durable bytes),
	 * 0 none, and its timeline: where a new slot's stream starts (stream_held_lsn()) */
	uint64_t have_end;
	uint32_t have_tli;
	uint64_t files_sent;
	uint64_t files_acked;
	int64_t ack_ewma_ms; /* moving average of FILE_BEGIN to ACK, once ack_seen */
	bool ack_seen;
	uint64_t errors;
	enum peer_io io;
	int64_t io_retry_ms; /* PEER_IO_WAIT: when held files are sent again */
	int io_backoff_ms;
	char last_sent[WIRE_MAX_FILE_NAME + 1];
	char last_acked[WIRE_MAX_FILE_NAME + 1];
	char last_error[STATUS_MAX_TEXT];
	/* Streamed WAL this connection holds: everything before stream.end is durable on the
	 * replica, as far as this primary knows (primary_stream.c says how it is counted);
	 * stream_received_lsn is what it received of the segment being streamed. */
	struct stream_run stream;
	uint64_t stream_received_lsn;
	int64_t stream_lsn_ms; /* when stream.end last advanced */
	/* The furthest WAL the replica's standbys on pg_listen applied (APPLIED), 0 none, as
	 * far as it is on the stream's timelines (cut back to where the timeline it was
	 * applied on ended), and that timeline. */
	uint64_t apply_lsn;
	uint32_t apply_tli;
};

/* Segments the stream keeps in memory unsettled before it stops reading PostgreSQL. */
#define STREAM_MAX_UNSETTLED 4
/* Settled streamed segments remembered, so that the same segment pushed by
 * archive_command is answered without being sent again. */
#define STREAM_RECENT 16
/* Streamed segments that failed (a replica refused one, the spool could not hold one)
 * remembered with the replicas that hold them durably, so that no other replica's run
 * counts past them (peer_holds_unsafe_before()): the last few, the older ones joined
 * into the oldest kept (stream_failed_add()). */
#define STREAM_FAILED 16
#define STREAM_FAILED_HOLDERS 8

struct stream_failed {
	uint64_t lsn; /* 0: unused */
	uint32_t tli; /* the failed segment's timeline */
	bool merged; /* stands for more than one failed segment (full: stream_failed_add()) */
	unsigned int nholders;
	char holders[STREAM_FAILED_HOLDERS][WIRE_MAX_NAME + 1];
};

/* Memory of released streamed segments kept for the next ones (push_mem_new): a new
 * memfd is faulted in page by page as the stream fills it, 4,096 faults and 16 MiB
 * zeroed per segment (100 ms of CPU per segment on the test machine, against 2 ms to
 * zero one already there). */
#define STREAM_SPARES 2

struct stream_spare {
	int fd;
	const uint8_t *map;
	uint64_t size;
};

struct pgsource;
struct relay_state;

/* Segments shipped ahead of their push (CTL_F_AHEAD) that are safe, remembered so that
 * their own push is answered at once: a few pushes' worth. */
#define AHEAD_RECENT (2 * CTL_MAX_AHEAD)

struct ahead_recent {
	char name[CTL_MAX_NAME];
	struct push_file_id file;
	unsigned int acks;
	char acked_by[256];
};

struct stream_recent {
	char name[WIRE_MAX_FILE_NAME + 1];
	uint32_t crc;
	unsigned int acks;
	bool safe; /* durable on sync_replicas replicas and held for the others */
};

/* Where a registered replica stood when it left, for its status while it is away (its
 * lag then grows from there): the last ones that left, a small table. */
#define PRIMARY_AWAY 32

struct primary_away {
	char name[WIRE_MAX_NAME + 1];
	char last_acked[WIRE_MAX_FILE_NAME + 1];
	uint64_t stream_end; /* its run of durable streamed WAL */
	uint32_t tli; /* the timeline streamed then (0: none), whose WAL stream_end counts */
	uint64_t gap_lsn; /* the oldest WAL it lacked behind it (peer_lacks_from()), 0 */
	int64_t since_ms; /* its oldest WAL not durable then, or when it left */
	bool noted; /* its note is in the spool (spool_put_away()), for after a restart */
};

struct primary {
	struct config cfg;
	struct ring *ring;
	struct control_server control;
	int listen_fd;
	struct acceptor acceptor; /* the accept loop on listen_fd */
	bool accepting;
	bool stopping;
	int64_t drain_deadline_ms; /* stopping: give up waiting for acknowledgements then */
	bool drain_warned; /* the drain time ran out with something outstanding: said once */
	struct peer *peers;
	unsigned int npeers;
	struct push *pushes;
	unsigned int npushes;
	/* pushes compared with their streamed copy on the compare worker, not linked yet: counted
	 * against max_queued_pushes with npushes (each holds a client, a descriptor, a job) */
	unsigned int ncomparing;
	uint64_t next_push_id;
	uint64_t next_token; /* PEER_TOKEN_BASE + n: PINGs of the handshake and name probes */
	/* the cluster it ships, learned from the first page of shipped segments and recorded
	 * in the spool (id.system_identifier 0 until then) */
	struct wal_identity id;
	struct spool spool;
	struct worker worker; /* spool copies, the spool's identity file and stream record */
	/* Pushes compared with the streamed copy of their segment (same_job in
	 * primary_push.c): a thread of their own, so that an answer that takes milliseconds
	 * never waits behind spool copies that take seconds on a busy disk. */
	struct worker compare;
	/* `walship replica drop`: releasing what the spool held for a replica takes as long
	 * as its backlog (thousands of files after days away), on a thread of its own so
	 * that spool copies (and the stream waiting for them) do not wait behind it */
	struct worker dropper;
	struct validate_ring vring; /* pushed files' page headers (send_source = buffers) */
	struct tls_ctx tls; /* tls.ctx NULL: plaintext */
	struct hba_table *hba; /* access rules; NULL: every replica admitted */
	char **registered; /* registered replicas, sorted */
	uint64_t *held; /* files the spool holds for each of them */
	struct spool_lost *lost; /* what each lost to spool overflow */
	/* bytes of spool jobs in progress, until their copy is counted in the spool's use
	 * (atomic: the worker thread takes a job's out) */
	uint64_t spool_reserved;
	int nregistered;
	/* `walship replica drop` of this name runs on @dropper ("": none): it is left out
	 * of @registered (nothing more is held for it) and its registration is refused
	 * until then */
	char dropping[WIRE_MAX_NAME + 1];
	/* The removal of the copies no claim holds, owed since a replica was found gone
	 * (primary_registration_gone()) until one begun after that ended without a failure:
	 * they free room, which release_slowest waits for as for a drop, rather than make
	 * another replica lose WAL for it.  One job on the dropper (queued: submitted, not
	 * done; again: owed anew while it ran), tried again at retry_ms after a failure,
	 * waiting wait_ms, doubling. */
	struct worker_job unclaimed_job;
	int unclaimed_ret;
	bool unclaimed_owed, unclaimed_queued, unclaimed_again;
	bool unclaimed_again_gone; /* of those owed anew, a replica found gone */
	int64_t unclaimed_guard_until_ms; /* a replica found gone: its room waited for */
	int64_t unclaimed_retry_ms;
	int unclaimed_wait_ms;
	struct primary_away away[PRIMARY_AWAY];
	unsigned int away_next;
	/* a drop whose release failed (an I/O error, no descriptor): tried again on the
	 * dropper at drop_retry_ms, @dropping kept meanwhile (its files still count in the
	 * spool's use, and no other replica is to lose WAL for their room) */
	struct drop_job *drop_retry;
	int64_t drop_retry_ms;
	struct status_node st;
	/* the stream source (primary_stream.c); source NULL: pg_conninfo is empty */
	struct pgsource *source;
	struct push *stream_push; /* the segment being streamed, or NULL */
	uint64_t stream_origin; /* where the source began: peers count from there */
	uint64_t stream_end; /* end of the WAL the source delivered */
	uint32_t stream_tli;
	unsigned int stream_unsettled;
	bool stream_paused;
	bool stream_archiving; /* the server's archive_mode is not off: pushes may come */
	struct stream_recent recent[STREAM_RECENT];
	unsigned int recent_next;
	struct stream_failed failed[STREAM_FAILED];
	unsigned int failed_next;
	struct ahead_recent ahead_recent[AHEAD_RECENT];
	unsigned int ahead_next;
	/* relay mode (relay.c): this sender runs in a replica and sends what its store holds;
	 * NULL on a primary.  No control socket, spool, worker or stream source then. */
	struct relay_state *relay;
	struct stream_spare spares[STREAM_SPARES]; /* all zero, ready for the next segment */
	unsigned int nspares;
};

/* Whether @p still waits to be answered: a client's push, or an unsettled one. */
static inline bool push_waiting(const struct push *p)
{
	return p->client || p->unsettled;
}

/* Whether @p fails at its deadline_ms: a client's push, or one shipped ahead of it. */
static inline bool push_has_deadline(const struct push *p)
{
	return p->client || (p->ahead && p->unsettled);
}

/* ---- primary_push.c: the push lifecycle ---- */

/* Control request PUSH: check and validate the file passed as @fd (owned from here on),
 * then send it to every streaming replica; @client is answered once the push is safe,
 * fails or times out. */
void primary_push(struct primary *pr, struct ctl_client *client, const char *name, int fd);
/* The control client @client (a struct primary is @ctx) went away before its push was
 * answered: the push goes on as one shipped ahead of its push, for PostgreSQL's retry to
 * take over (control_gone_fn). */
void primary_client_gone(void *ctx, struct ctl_client *client);
/* The @nfds segments after @name, passed with its push (CTL_F_AHEAD), in order: ship
 * those not known yet (descriptors owned from here on). */
void primary_push_ahead(struct primary *pr, const char *name, const int *fds, unsigned int nfds);
/* Drop a reference to @p; it is freed once no transfer uses it and its client has its
 * answer. */
void push_unref(struct push *p);
/* @p, streamed or shipped ahead, is safe (@ok) or will not be: the stream (or push_ahead)
 * is told, and a push of the same segment waiting on it (its follower) goes on. */
void push_settle(struct push *p, bool ok);
/* Answer @p's client with @code and the formatted reason, logged; nothing if answered
 * already.  May free @p when it holds no reference. */
void push_fail(struct push *p, uint16_t code, const char *fmt, ...) attr_printf(3, 4);
/* Whether @replica acknowledged @p. */
bool push_acked_by(const struct push *p, const char *replica);
/* Answer @p if it is safe now (sync_replicas acknowledgements, held in the spool for
 * every other registered replica); starts the spool copy when that is what is missing. */
void push_check(struct push *p);
/* @replica holds @p durably: count it, release its claim on the spool's copy, and
 * push_check(). */
void push_acked(struct push *p, const char *replica);
/* @replica no longer holds @p, which it acknowledged (it came back without it): its
 * acknowledgement no longer counts, and the spool holds @p for it again. */
void push_unacked(struct push *p, const char *replica);
/* @p's spool copy, made before a registered replica lost it (push_unacked()): claimed
 * for the registered replicas that lack it now. */
void push_spool_reclaim(struct push *p);
/* A replica answered ACK IO_ERROR for @p (reason in p->io_error): fail @p now if the
 * replicas still being sent it cannot make up sync_replicas, else push_check(). */
void push_io_error(struct push *p);
/* Whether replica @replica refused streamed segment @p (push_stream_refused()). */
bool push_refused_by(const struct push *p, const char *replica);
/* Forget @replica's refusals of the pushes in flight (a relay's downstream that connects
 * again is offered its growing segments again). */
void push_forget_refusals(struct primary *pr, const char *replica);

/* @replica refused streamed segment @p for good (reason in p->io_error; @code the push's
 * answer, CTL_ERR_*): fail @p now if the replicas still being sent it and the registered
 * ones away cannot make up sync_replicas, else it goes on to them (push_check()). */
void push_stream_refused(struct push *p, uint16_t code, const char *replica);
/* A registered replica was dropped: the refused streamed segments waiting for it fail if
 * the others can no longer make up sync_replicas. */
void push_stream_refusals_recheck(struct primary *pr);
/* push_timeout is over and @p is not safe: fail it, saying what it waited for. */
void push_timed_out(struct push *p);
/* A held file opened from the spool, to send to a replica catching up, with no reference
 * taken (refs 0: the caller takes one), or NULL with -errno in *@err (-ENOENT: released
 * meanwhile; else it could not be opened now: no descriptor, no memory). */
struct push *push_from_spool(struct primary *pr, const char *name, int *err);
/* The streamed segment of @timeline that begins at @lsn, @seg_size bytes, in memory and empty:
 * linked and given to every streaming replica like a push (data follows as it arrives,
 * p->avail).  Returns NULL when it cannot be made (logged). */
struct push *push_stream_begin(struct primary *pr, uint32_t timeline, uint64_t lsn,
			       uint32_t seg_size);
/* Ship @len bytes of @content as WAL file @name (a history file, or a streamed segment's
 * .partial), from memory, validated first; nobody waits for its answer.  Returns 0, or
 * -EINVAL (not valid: logged and counted) or -ENOMEM. */
int push_mem_begin(struct primary *pr, const char *name, const void *content, uint64_t len);
/* Unmap and close the streamed segments' spare memory (STREAM_SPARES), when the role goes. */
void push_spares_free(struct primary *pr);
/* CRC-32C of the first @len bytes of @p's file into *@crc.  Returns 0 or -errno. */
int push_crc(const struct push *p, uint64_t len, uint32_t *crc);

/* Bytes [@offset, @offset + @len) of @p, read into a send slot as @data: validate the
 * pages among them not yet validated (and, through the validation ring, any before them
 * that no read brought).  @p found invalid fails (answered as refused); the chunk still
 * goes, and the replicas refuse the file by their own check. */
void push_check_read(struct push *p, uint64_t offset, const uint8_t *data, uint32_t len);
/* Relay mode: WAL file @name to send, open as @fd (owned from here on), @size bytes of
 * which the first @avail are there, nobody waiting for its answer; given to no replica yet
 * (the caller adds it with peer_add_xfer()).  @stream: a segment still growing (beginning
 * at LSN @lsn), whose avail the caller raises.
 * Returns the push with one reference for the caller (push_unref()), or NULL (logged;
 * @fd closed). */
struct push *push_relay_begin(struct primary *pr, const char *name, int fd, uint64_t size,
			      uint64_t avail, bool stream, uint64_t lsn);

/* ---- primary_stream.c: the stream source ---- */

/* Start the stream source when pg_conninfo is set.  Returns 0 or -errno (logged). */
int primary_stream_start(struct primary *pr);
/* Timers of the source (reconnection, status updates). */
void primary_stream_tick(struct primary *pr, int64_t now_ms);
/* Keep history file @name in the spool for good (spool_keep_history()), on the worker. */
void primary_keep_history(struct primary *pr, const char *name, const void *content, size_t len);
/* SIGHUP: the source's reconnection backoff (reconnect_min, reconnect_max). */
void primary_stream_reload(struct primary *pr, const struct config *cfg);
/* Stop the source (the role stops). */
void primary_stream_stop(struct primary *pr);
/* Free the source's memory (the role is freed). */
void primary_stream_free(struct primary *pr);
/* Recompute what is durable on sync_replicas replicas and report it to PostgreSQL. */
void primary_stream_report(struct primary *pr);
/* A replica connected (its inventory known): a source waiting for it goes on. */
void primary_stream_peer_ready(struct primary *pr);
/* Replica @name registered for the first time: it is sent the history file of the
 * timeline streamed, if not the first (it was shipped before the replica came). */
void primary_stream_new_replica(struct primary *pr, const char *name);
/* Streamed segment @p is safe (@ok) or failed for good: it no longer holds the source
 * back. */
void primary_stream_settled(struct push *p, bool ok);
/* Whether pushed file @p is named as a streamed segment already safe: then *@crc is that
 * segment's CRC-32C and *@acks the replicas it is durable on (the push's own CRC, taken
 * on the worker thread, tells whether it is the same content). */
bool primary_stream_recent(const struct push *p, uint32_t *crc, unsigned int *acks);
/* A replica that acknowledged what the recently settled segments remember may hold it no
 * more (dropped): their counts go to 0, so that a push of one of them is sent as any
 * (those that hold it answer DUPLICATE) rather than answered from the memory. */
void push_recent_distrust(struct primary *pr);
/* Registered replica @peer is back, its inventory in @peer->have: a recently settled
 * segment it does not list, and the spool holds no copy of for it (it acknowledged it, and
 * came back without it: a new disk, a restore), is not answered from that memory any
 * more, as primary_take_back_acks() does for the files still waiting. */
void push_recent_returning(struct primary *pr, const struct peer *peer);
/* @peer holds the first @durable bytes of @p durably (PROGRESS, resume, ACK): advance its
 * stream.end when that continues what it holds (or once the gap before it closes). */
void peer_stream_advance(struct peer *peer, const struct push *p, uint64_t durable);
/* Replica @name was dropped: it holds none of the failed streamed segments any more (a
 * replica registered again under its name would otherwise have its run pass them). */
void primary_stream_forget_holder(struct primary *pr, const char *name);
/* @peer refused @p for its content (CONFLICT, INVALID, SYSID): what it acknowledged of it
 * (PROGRESS, a resumed partial) is set aside there, in archive_dir/.refused, which walship
 * fetch does not serve, so its run no longer reaches into @p's segment (the flush reported
 * never goes back); it goes past it only once the segment is safe on others
 * (peer_holds_unsafe_before()).  In a relay, the floor kept for that downstream replica
 * goes back to the segment's start with it (relay_peer_floor(), written at once by
 * relay_peer_progress()): the relay keeps the segment it lacks. */
void peer_stream_refused(struct peer *peer, const struct push *p);
/* A PROGRESS from @peer.  Returns 0, or -errno to close the connection. */
int peer_on_progress(struct peer *peer, const uint8_t *payload, uint32_t len);
/* An APPLIED from @peer.  Returns 0, or -errno to close the connection. */
int peer_on_applied(struct peer *peer, const uint8_t *payload, uint32_t len);
/* The source's state for status. */
void primary_stream_fill_status(struct primary *pr, struct status_node *st);
/* @sp, the status of replica @peer (streaming): what it received and holds durably of the
 * stream, and the furthest streamed WAL sent to it (a primary's stream source or a relay's
 * growing segments alike). */
void peer_fill_stream_positions(const struct peer *peer, struct status_peer *sp);

/* ---- primary_hold.c: the spool policy and the registered replicas ---- */

/* Hand @p to the worker to be copied into the spool for every registered replica that
 * has not acknowledged it; push_check() runs again when the copy is done.  Returns 0 or
 * -ENOMEM. */
int push_spool(struct push *p);
/* The first segment's @id fixes the cluster this primary ships: in memory at once, in the
 * spool's identity file durably, on the worker thread. */
void primary_fix_identity(struct primary *pr, const struct wal_identity *id);
/* Warn when spool_max_size is smaller than a segment of the cluster shipped (known). */
void primary_check_spool_size(const struct primary *pr);
/* Whether registered replica @replica is about to acknowledge @p (spool_delay). */
bool primary_keeping_up(struct primary *pr, const char *replica, const struct push *p);
/* Make room in a bounded spool for @p (spool_overflow).  Returns true when @p may be
 * spooled; false when it has been failed. */
bool primary_spool_room(struct primary *pr, struct push *p);
/* Index of registered replica @name in pr->registered, or -1. */
int primary_registered_index(const struct primary *pr, const char *name);
/* @replica no longer needs the held copy of @file. */
void primary_release(struct primary *pr, const char *replica, const char *file);
/* (Re)read the registered replicas, their held and lost files, from the spool.
 * Returns 0 or -errno (logged). */
int primary_load_registered(struct primary *pr);
/* Replica @name out of the registered list in memory (its drop begins), its held and lost
 * counts with it; the spool is not read. */
void primary_forget_registered(struct primary *pr, const char *name);
/* Replica @name is not registered any more (a drop renamed its folder in the spool, or it
 * was removed by hand): forgotten in memory (primary_forget_registered()), its away
 * status too, and what counted it taken back (primary_take_back_acks(), the recent
 * segments, the failed streamed segments it held); a streamed segment that waited for it
 * may go on. */
void primary_unregistered(struct primary *pr, const char *name);
/* How long a drop's release that failed (or a removal of unclaimed copies) waits before
 * it is tried again, doubling up to the most. */
#define PRIMARY_DROP_RETRY_MS 10000
#define PRIMARY_DROP_RETRY_MAX_MS (5 * 60 * 1000)
/*
 * If registered replica @name's folder in the spool is gone (found so by a spool copy,
 * spool_store()'s @gone, or at its handshake): removed by hand, not by a drop (which
 * renames it, and forgets the replica itself).  It is dropped then, as `walship replica
 * drop` does: primary_unregistered(), its connection closed (it registers anew when it
 * connects again), and the copies that no claim holds any more removed on the dropper
 * thread (spool_remove_unclaimed()).  Kept registered, every push it lacked was copied
 * into the spool for it again and again, holding nothing.
 */
void primary_registration_gone(struct primary *pr, const char *name);
/* The removal of unclaimed copies that failed, tried again once its wait is over, and one
 * the spool owes (unclaimed_left) begun (from primary_tick()). */
void primary_unclaimed_tick(struct primary *pr, int64_t now_ms);
/* A removal the spool owes (unclaimed_left) begun (or left to the retry that waits);
 * returns whether one was owed. */
bool primary_unclaimed_poll(struct primary *pr);
/* Whether a full spool waits for copies no claim holds to be removed rather than release a
 * replica: while their removal is owed, and runs, or for PRIMARY_UNCLAIMED_GUARD_MS after
 * a replica was found gone (a failure that lasts would stall the archiver for good). */
#define PRIMARY_UNCLAIMED_GUARD_MS 30000
bool primary_unclaimed_guard(const struct primary *pr);
/*
 * Pushes still waiting (fewer than sync_replicas acknowledged them) count replica @name
 * among those that hold them.  One that comes back without such a file (its disk lost,
 * a fresh archive_dir, another host under its name: @returning, whose HAVE does not list
 * it whole), or is dropped for good (@returning NULL), must not go on counting: with the
 * next acknowledgement the segment would settle, and its commits be reported durable,
 * with its WAL on fewer than sync_replicas replicas.  Those acknowledgements are taken
 * back (push_unacked()); a returning replica is sent the files again.
 */
void primary_take_back_acks(struct primary *pr, const char *name, const struct peer *returning);
/* The spool's view of registered replica @k (held and lost files) into @sp. */
void primary_fill_registered(const struct primary *pr, int k, struct status_peer *sp);

/* ---- primary_peer.c: replica connections and the handshake ---- */

/* Open the listening socket on cfg.listen and its acceptor.  Returns 0 or -errno
 * (logged). */
int primary_listen(struct primary *pr);
/* Post the next accept, unless stopping or one is posted already. */
void primary_accept_post(struct primary *pr);
/* @peer's HELLO is valid: go on with it unless its name is connected (then probe that
 * connection, and wait in PEER_NAME_WAIT).  Returns 0 or -errno. */
int peer_check_name(struct peer *peer);
/* Close connections that did not answer a name probe within NAME_PROBE_MS. */
void primary_probes_expire(struct primary *pr, int64_t now_ms);
/* Record @peer's last error (shown by status) and count it. */
void peer_set_error(struct peer *peer, const char *fmt, ...) attr_printf(2, 3);

/* ---- primary_xfer.c: transfers to a replica ---- */

/* Queue a small frame of @len bytes (a negative @len is an encoding error: logged and
 * returned).  Returns 0 or -errno. */
int peer_queue_small(struct peer *peer, int len, const uint8_t *frame);
/* Add a transfer of @p to @peer's queue (taking a reference); closes @peer when out of
 * memory. */
void peer_add_xfer(struct peer *peer, struct push *p);
/* Free @x and drop its reference to its push. */
void xfer_free(struct xfer *x);
/* Whether @peer has a transfer of file @name. */
bool peer_has_file(const struct peer *peer, const char *name);
/* Whether @file_id is one of the last files @peer was sent FILE_CANCEL for. */
bool peer_cancelled(const struct peer *peer, uint32_t file_id);
/* (Re)read the files the spool holds for @peer.  Returns how many, or -errno (logged). */
int peer_load_backlog(struct peer *peer);
/* The same, for backlog_more: a relay lists from relist_from on, not the files it listed
 * before again (sent, and acknowledged perhaps: a floor held back by a gap would have them
 * sent over and over). */
int peer_relist_backlog(struct peer *peer);
/* @p is answered OK (safe): @peer's transfer of it, not begun behind others not begun,
 * goes to its backlog, the spool's copy (primary_xfer.c). */
void peer_defer_safe(struct peer *peer, struct push *p);
/* Held file @name goes to @peer from its backlog, listed again (a relay's from @name on)
 * once what it is being sent is queued; @retry_ms: not before that many ms (a failure
 * that may last: no descriptor, no memory).  Nothing else sends it while its link stays
 * up. */
void peer_relist_later(struct peer *peer, const char *name, int retry_ms);
/* Where the oldest WAL connected @peer lacks begins (held for it in the spool, or a whole
 * file being sent to it), in *@lsn, and since when (monotonic ms) in *@since_ms (0:
 * unknown): what its status's durable position counts no further than.  Returns false
 * when it lacks none known (primary_hold.c). */
bool peer_lacks_from(struct peer *peer, uint64_t *lsn, int64_t *since_ms);
/* When the oldest streamed WAL past @lsn arrived (monotonic ms; 0: none known, or no
 * stream source). */
int64_t primary_stream_lag_since(const struct primary *pr, uint64_t lsn);
/* Streaming @peer leaves: where it stood is kept for its status while away (primary.c). */
void primary_note_away(struct primary *pr, struct peer *peer);
/* Registered replica @name connected: its note in the spool, if any, is out of date. */
void primary_away_back(struct primary *pr, const char *name);
/* At start: the notes of the registered replicas, where they stood when they left. */
void primary_load_away(struct primary *pr);
/* The timeline forked at @fork: what the away replicas held after it no longer counts. */
void primary_away_cut(struct primary *pr, uint64_t fork);
/* The timelines' forks first known (the history the stream starts with): each away
 * replica's position counts up to where the timeline it was on ended. */
void primary_away_clamp(struct primary *pr, const struct stream_forks *forks);
/* Streamed segment @p will not be completed: cancel its transfer to @peer (FILE_CANCEL
 * when it was begun). */
void peer_cancel_push(struct peer *peer, struct push *p);
/* Give @peer the pushes in progress it has neither acknowledged nor been given. */
void peer_add_pending(struct peer *peer);
/* Queue what can be queued for @peer within its bounds. */
void peer_fill(struct peer *peer);
/* An ACK from @peer.  Returns 0, or -errno to close the connection. */
int peer_on_ack(struct peer *peer, const uint8_t *payload, uint32_t len);
/* PEER_IO_WAIT is over: send @peer the files held for it, one at a time. */
void peer_io_retry(struct peer *peer);

/* ---- relay.c: the sender in a replica (role/relay.h) ---- */

/* Relay mode: @peer completed its handshake: register it (durably, the first time) and
 * load what it lacks.  Returns 0 or -errno. */
int relay_register(struct peer *peer);
/* Relay mode: the stored files @peer lacks (from the segment of the FLOOR recorded for it;
 * for one never seen holding anything, after the newest segment its HAVE lists; with
 * @from, from that name on), in WAL order, into *@names (spool_free_names()).  Returns
 * how many, or -errno (logged). */
int relay_backlog(struct peer *peer, const char *from, char ***names);
/*
 * Relay mode: whether @peer, a downstream replica, holds everything before @seg_start,
 * where its run of durable WAL may begin: at or before the segment of the FLOOR recorded
 * for it; for one never seen holding anything, right after a segment its HAVE listed
 * stored, or anywhere while it listed none and no run has begun (an empty replica: the
 * backlog goes oldest first).  A relay streams nothing itself, so no segment there waits
 * (the primary's rule, peer_holds_unsafe_before(), does not apply).
 */
bool relay_peer_holds_before(const struct peer *peer, uint64_t seg_start);
/* Relay mode: where the timelines before the newest this replica stored ended (from its
 * newest history file): a downstream replica's acknowledgements of an ended timeline
 * count up to there only (stream_forks_clamp()), as on the primary. */
const struct stream_forks *relay_forks(const struct primary *rl);
/* Relay mode: a slot for a send, or NULL (none free, or the relay's share is out). */
struct ring_slot *relay_slot_get(struct primary *pr);
/* Relay mode: open stored file @name for reading.  Returns the descriptor or -errno. */
int relay_open_file(struct primary *pr, const char *name);
/* Relay mode: @peer acknowledged a file: what it still needs may have moved. */
void relay_peer_progress(struct peer *peer);
/* Relay mode: @peer could not store @p (ACK IO_ERROR): its run goes back before the file,
 * whatever its kind (a segment, NAME.partial, a .backup file), so that the floor saved
 * for it keeps the file and its backlog sends it again. */
void relay_peer_failed(struct peer *peer, const struct push *p);
/* Relay mode: an APPLIED from @peer (taken by peer_on_applied() already): pass it on. */
void relay_peer_applied(struct peer *peer, const uint8_t *payload, uint32_t len);
/* Relay mode: (re)build pr->registered from the registered downstream replicas.
 * Returns 0 or -ENOMEM. */
int relay_load_registered(struct primary *pr);

#endif /* WALSHIP_ROLE_PRIMARY_INT_H */
