/* SPDX-License-Identifier: MIT */
/*
 * The walsender endpoint of a replica (`pg_listen`): PostgreSQL standbys, and
 * pg_receivewal, stream WAL from the replica's store as they would from a primary
 * (PostgreSQL's protocol 3.0, physical replication; docs/protocol.md, "Standbys on
 * pg_listen").
 *
 * What it serves: only WAL durable on this replica, from the complete segments of the
 * store and from the durable prefix of the segment being received (in .incoming), never
 * more.  The replica role tells it when more becomes durable (serve_wal_durable(),
 * serve_wal_stored()); a standby waiting for WAL is woken then, nothing polls.  Files are
 * opened and read through the ring (IORING_OP_OPENAT, IORING_OP_READ), at most 128 KiB a
 * message, one read per standby in flight, and only while what it was sent before has
 * left (its send buffer under SERVE_TX_LOW).
 *
 * Who is served: a connection the access rules (hba_file) admit as role standby, by its
 * address, user name, TLS and client certificate, then authenticated by the rule's
 * method: trust, scram-sha-256 (common/scram.h, against pg_password_file's verifiers,
 * with channel binding over TLS), or cert (the client certificate names the user).  With
 * tls = on, SSLRequest is answered 'S' and TLS from the daemon's certificate follows
 * (records made in user space over net/tls.h's memory BIOs); GSSENCRequest gets 'N'.  A
 * refusal, an SQL session or logical replication gets an ErrorResponse in PostgreSQL's
 * words and SQLSTATE.
 *
 * Slots: physical replication slots (serve/slots.h), permanent or temporary, created,
 * dropped and read with PostgreSQL's commands and streamed through with START_REPLICATION
 * SLOT; their restart LSN follows the flush each client confirms (serve_slots_floor()).
 * Apply: the furthest apply a standby reports goes to the replica role (serve_on_applied())
 * and upstream, for remote_apply.
 *
 * Everything runs on the event loop's thread; requests in flight are counted per standby,
 * which is freed only when none is left.
 */
#ifndef WALSHIP_SERVE_WALSENDER_H
#define WALSHIP_SERVE_WALSENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "ring/ring.h"
#include "serve/sendlimit.h"
#include "status/status.h"
#include "wal/store.h"

/* Connections at once on pg_listen: SERVE_MAX_STANDBYS past their authentication (more
 * are closed at once), and SERVE_MAX_AUTHENTICATING not yet authenticated (StartupMessage,
 * SCRAM), bounded apart: a new one closes the oldest of those, so that clients that say
 * nothing cannot lock the standbys out until connect_timeout closes them. */
#define SERVE_MAX_STANDBYS 64
#define SERVE_MAX_AUTHENTICATING 16
/* WAL is read for a standby only while less than this is waiting to be sent to it. */
#define SERVE_TX_LOW (256 * 1024)
/* A standby with more than this waiting to be sent (it does not read) is dropped. */
#define SERVE_TX_MAX (8 * 1024 * 1024)
/* The largest XLogData message, as PostgreSQL's walsender (MAX_SEND_SIZE). */
#define SERVE_MAX_SEND (128 * 1024)

struct serve;

/*
 * Listen on @cfg->pg_listen and serve the WAL of @store (the replica's; read only, and
 * only its directories and identity), through @ring.  Loads @cfg->hba_file and
 * @cfg->pg_password_file, and the TLS context when @cfg->tls.  Timeouts:
 * a standby silent for keepalive_timeout is dropped, asked for a reply at half of it;
 * one that does not finish its startup within connect_timeout is dropped.  Returns NULL
 * on error (logged), with *@config_error set when one of those files could not be loaded
 * (role.h).
 */
struct serve *serve_start(const struct config *cfg, struct ring *ring, const struct store *store,
			  bool *config_error);

/*
 * The first @durable bytes of segment @name, being received into .incoming/@tmp_name,
 * are durable (after the fsync that recorded it).  Wakes the standbys waiting for them.
 * @image, when not NULL, holds the segment's bytes in memory while the replica writes
 * the file with O_DIRECT: they are read from there, not through the page cache (which
 * each direct write drops), until serve_wal_image_gone().
 */
void serve_wal_durable(struct serve *s, const char *name, const char *tmp_name, uint64_t durable,
		       const uint8_t *image);

/* @image, given for @name to serve_wal_durable(), is about to be freed or reused: the file
 * is read from now on (its bytes are durable there, or written buffered from now on). */
void serve_wal_image_gone(struct serve *s, const char *name, const uint8_t *image);

/* @name (any WAL file: a segment, a history file) is stored under its final name. */
void serve_wal_stored(struct serve *s, const char *name);

/*
 * The copy of @name being received into .incoming/@tmp_name, which serve_wal_durable()
 * was told of, ends without being stored under @name (a duplicate of the stored file, a
 * conflict, a refusal, a cancel, a kept partial retired): it is forgotten, and standbys
 * reading it open the segment again (the stored file, another copy, or they wait).
 */
void serve_wal_dropped(struct serve *s, const char *name, const char *tmp_name);

/*
 * Retention removed WAL files of the store, @name (a segment, .partial or .backup file)
 * the newest of them: it removes the oldest first, by segment number, so no segment up to
 * @name's is coming back.  A standby asking for one is answered "requested WAL segment ...
 * has already been removed" (58P01), as PostgreSQL's walsender answers, not left waiting
 * for it as for a segment of the newest timeline still to be received.
 */
void serve_wal_removed(struct serve *s, const char *name);

/*
 * Called when the furthest apply position any standby on pg_listen reported grows: @lsn
 * on timeline @tli (never more than this replica holds durably: a standby is sent nothing
 * else).  The replica role passes it upstream (APPLIED, docs/protocol.md).
 */
typedef void (*serve_applied_fn)(void *arg, uint32_t tli, uint64_t lsn);
void serve_on_applied(struct serve *s, serve_applied_fn fn, void *arg);

/*
 * The oldest LSN a standby served here still needs: retention (wal/retain.h) keeps every
 * segment holding a byte at or after it.  For each streaming standby, its reported flush
 * position (what PostgreSQL's physical slot keeps, restart_lsn), or, before it reported
 * one or when that is past what it was sent, the next byte it is sent (its start point);
 * a temporary slot lives as long as its connection, so that connection's position covers
 * it; a permanent slot keeps its restart LSN (serve_slots_floor()), connected or not; so
 * does a hold its position (sendlimit_floor()), and a standby between two timelines'
 * START_REPLICATION its position.  What else holds WAL longer (delayed standbys) only
 * lowers the floor, here.
 * Returns UINT64_MAX when nothing is needed (no standby streams, no slot; @s NULL).
 */
uint64_t serve_retention_floor(const struct serve *s);

/* Every role tick: keepalives, timeouts. */
void serve_tick(struct serve *s, int64_t now_ms);

/* SIGHUP: reload hba_file and pg_password_file (each kept as it was when the new one is
 * bad) and the timeouts. */
void serve_reload(struct serve *s, const struct config *cfg);

/* Stop listening and close every standby's connection. */
void serve_stop(struct serve *s);

/* After serve_stop(): nothing is in flight any more. */
bool serve_stopped(const struct serve *s);

/*
 * Add the standbys to @n (n->standbys, freed by status_node_release()) and the refusals
 * to its connections_refused and hba_refused.
 */
void serve_fill_status(const struct serve *s, struct status_node *n);

/*
 * The retention floor of the replication slots: the oldest restart LSN any slot on
 * pg_listen (permanent or temporary) still needs, UINT64_MAX when no slot reserves WAL
 * (also for NULL: no pg_listen).  A retention policy must keep the segment holding this
 * LSN and every later one (on the slot's timeline and its successors).  A slot's restart
 * LSN only moves forward, to the flush position its client confirms; a permanent slot's
 * survives restarts, possibly a little older than it was (slots.h).
 */
uint64_t serve_slots_floor(const struct serve *s);

/*
 * `walship hold APP`: hold the standbys named @app where the least advanced of them
 * stands (its flush position, else what it was sent).  Returns 0, -ENOENT when none streams, -EEXIST
 * when held already, or -errno; @msg (@len bytes) says what was done or why not.
 */
int serve_hold(struct serve *s, const char *app, char *msg, size_t len);

/* `walship release APP [--before TIME | --upto LSN]` (sendlimit_release()); wakes the
 * standbys.  Returns as sendlimit_release(), with @msg as serve_hold(). */
int serve_release(struct serve *s, const char *app, enum sendlimit_release how, int64_t value,
		  char *msg, size_t len);

/* Free everything; call after ring_exit() (requests in flight are gone).  NULL is fine. */
void serve_free(struct serve *s);

#endif /* WALSHIP_SERVE_WALSENDER_H */
