/* SPDX-License-Identifier: MIT */
/*
 * The relay of a replica (`relay = on`): downstream walship replicas connect to this
 * replica's `listen` as they would to a primary, and are sent the WAL durable here
 * (primary -> this replica -> downstream replicas, a cascade; docs/operations.md,
 * "Cascading replicas").
 *
 * It is the primary's sender (role/primary_peer.c, primary_xfer.c: the handshake with its
 * cluster checks and access rules, transfers, HAVE and resume, acknowledgements) with
 * another source: instead of `walship push` and PostgreSQL's stream, the replica's own
 * store.  A file stored under its final name is sent as a pushed file is; the segment
 * being received as a stream (FILE_BEGIN STREAM from upstream) is relayed as a streamed
 * segment of which only the durable prefix is available, grown each time the replica
 * records more of it durable (relay_wal_durable(), after the fsync): a downstream replica
 * is never sent a byte this replica could still lose.  Nothing polls: the replica's
 * incoming files call these hooks, as they call the walsender endpoint's (serve/).
 *
 * Downstream replicas are registered (in archive_dir/.walship/downstream, with the oldest
 * WAL each still needs: everything before it acknowledged without a gap) from their first
 * connection on; one that reconnects is sent the stored files from that point on, in WAL
 * order, from archive_dir (the first time, those after the newest its HAVE lists).
 * Retention keeps what they need (relay_retention_floor()).  Acknowledgements upstream
 * stay the replica's own: what is durable here, whatever the downstream replicas hold.
 *
 * Every function accepts NULL (no relay) and does nothing then.
 */
#ifndef WALSHIP_ROLE_RELAY_H
#define WALSHIP_ROLE_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "ring/ring.h"
#include "status/status.h"
#include "wal/store.h"

/* The registry of downstream replicas and their floors, in the store's state directory. */
#define RELAY_REGISTRY_FILE "downstream"

struct primary;

/*
 * Listen on @cfg->listen for downstream replicas (TLS and access rules as a primary's:
 * tls, hba_file with role replica) and relay the WAL of @store (read only; it must
 * outlive the relay).  Returns the relay, or NULL on error (logged), with *@config_error
 * set when the TLS files or hba_file could not be loaded (role.h).
 */
struct primary *relay_start(const struct config *cfg, struct ring *r, const struct store *store,
			    bool *config_error);

/*
 * The first @durable bytes of segment @name (@size bytes), received as a stream into
 * .incoming/@tmp_name, are durable: relay them.  @image, when not NULL, holds the
 * segment's bytes in memory while the replica writes the file with O_DIRECT: they are
 * copied from there, not read through the page cache, until relay_wal_image_gone().
 */
void relay_wal_durable(struct primary *rl, const char *name, const char *tmp_name, uint64_t size,
		       uint64_t durable, const uint8_t *image);

/* @image, given for @name to relay_wal_durable(), is about to be freed or reused: the file
 * is read from now on. */
void relay_wal_image_gone(struct primary *rl, const char *name, const uint8_t *image);

/* WAL file @name (@size bytes) is stored under its final name: relay it whole. */
void relay_wal_stored(struct primary *rl, const char *name, uint64_t size);

/* A copy of @name ended as a duplicate of the file stored under its name (@size bytes):
 * when a copy of @name is being relayed (this one, or one whose rename was not made
 * durable), the stored file is relayed whole instead; otherwise nothing (the stored
 * file went downstream when it was stored). */
void relay_wal_duplicate(struct primary *rl, const char *name, uint64_t size);

/* The incoming file .incoming/@tmp_name of @name is removed (cancelled, refused, or lost
 * with the upstream connection): its relay is cancelled downstream (FILE_CANCEL). */
void relay_wal_dropped(struct primary *rl, const char *name, const char *tmp_name);

/*
 * Called when the furthest apply position a downstream replica reports (APPLIED: what the
 * standbys on its pg_listen applied, never more than it holds, so never more than is
 * durable here) grows: @lsn on timeline @tli.  The replica passes it upstream, as its own
 * standbys' (remote_apply through a cascade).
 */
typedef void (*relay_applied_fn)(void *arg, uint32_t tli, uint64_t lsn);
void relay_on_applied(struct primary *rl, relay_applied_fn fn, void *arg);

/*
 * The oldest LSN a downstream replica, connected or registered, still needs: retention
 * keeps every segment holding a byte at or after it.  UINT64_MAX when none is registered
 * (or @rl is NULL).
 */
uint64_t relay_retention_floor(const struct primary *rl);

/* Append the downstream replicas, connected and registered, to @n->peers (as a primary
 * shows its replicas) and add the relay's counters to @n. */
void relay_fill_status(struct primary *rl, struct status_node *n);

/* `walship replica drop NAME` on this replica: forget downstream replica @name (not while
 * it is connected), so that retention no longer keeps WAL for it.  Returns 0, or -ENOENT
 * (not registered), -EBUSY (connected) or -errno, with @msg (@len bytes) saying so. */
int relay_drop(struct primary *rl, const char *name, char *msg, size_t len);

/* The role's steps, as the primary's (role/role.h). */
void relay_pump(struct primary *rl);
void relay_tick(struct primary *rl, int64_t now_ms);
void relay_stop(struct primary *rl);
bool relay_stopped(struct primary *rl);
void relay_reload(struct primary *rl, const struct config *cfg);
/* Free everything; call after ring_exit().  NULL is fine. */
void relay_free(struct primary *rl);

#endif /* WALSHIP_ROLE_RELAY_H */
