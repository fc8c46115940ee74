/* SPDX-License-Identifier: MIT */
/*
 * Retention on the replica (docs/operations.md, "Retention"): on a timer of the event
 * loop, the archive directory is listed on the worker thread, the files to remove are
 * chosen on the event loop (wal/retain.h, with the floor of the standbys served on
 * pg_listen, serve_retention_floor(), and of the files still being received or not yet
 * acknowledged to the primary), then removed on the worker thread, oldest first, each
 * unlinked and the directory fsynced once after the batch.  One pass at a time; a pass
 * starts when a file was stored since the last one or RETAIN_INTERVAL_MS passed.  After a
 * pass that removed files, the newest of them is told (the walsender endpoint answers
 * 58P01 for those from then on, serve_wal_removed()).
 */
#ifndef WALSHIP_ROLE_REPLICA_RETAIN_H
#define WALSHIP_ROLE_REPLICA_RETAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "ring/ring.h"
#include "ring/worker.h"
#include "status/status.h"
#include "wal/store.h"

/* A pass at least this often (retain_time's window moves with the clock), ... */
#define RETAIN_INTERVAL_MS (30 * 1000)
/* ... and, after a file is stored, at most this often (with retention off, when a pass
 * only refreshes the status, the second). */
#define RETAIN_MIN_INTERVAL_MS 1000
#define RETAIN_OFF_MIN_INTERVAL_MS (10 * 1000)

struct retain_job;

/* The oldest LSN still needed (UINT64_MAX: none), asked when a pass chooses. */
typedef uint64_t retain_floor_fn(void *ctx);
/* A pass removed files, @name the newest (they go oldest first, by segment number). */
typedef void retain_removed_fn(void *ctx, const char *name);

struct retainer {
	struct worker worker;
	const struct config *cfg; /* the role's: its policy, reloaded in place */
	const struct store *store;
	retain_floor_fn *floor_fn;
	retain_removed_fn *removed_fn; /* NULL: nobody is told */
	void *floor_ctx; /* of both */
	bool started;
	bool stopping;
	struct retain_job *job; /* the pass in progress, NULL none */
	int64_t last_pass_ms;
	uint64_t stored_seen; /* files_stored at the last pass */
	/* what the last listing found, for status */
	uint64_t kept_files, kept_bytes;
	char oldest[WAL_NAME_MAX + 1];
	uint64_t floor; /* UINT64_MAX: nothing needed */
	/* since start */
	uint64_t removed_files, removed_bytes, errors;
};

/*
 * Start the worker thread for the retention of @store with @cfg's policy (both live as
 * long as @rt; @cfg may change on reload); @floor_fn(@ctx) says what is still needed,
 * @removed_fn(@ctx, name) (may be NULL) is told what a pass removed, on the event loop.
 * Returns 0 or -errno (logged).
 */
int retain_start(struct retainer *rt, struct ring *ring, const struct config *cfg,
		 const struct store *store, retain_floor_fn *floor_fn,
		 retain_removed_fn *removed_fn, void *ctx);

/* Every role tick: start a pass when one is due; @stored is files_stored so far. */
void retain_tick(struct retainer *rt, uint64_t stored, int64_t now_ms);

/* Start no more passes. */
void retain_stop(struct retainer *rt);

/* After retain_stop(): no pass is in flight. */
bool retain_stopped(const struct retainer *rt);

/* Fill @n's retention values and its retain_oldest and retain_policy. */
void retain_fill_status(const struct retainer *rt, struct status_node *n);

/* Stop the worker thread (after the event loop stopped) and free what is left. */
void retain_free(struct retainer *rt);

#endif /* WALSHIP_ROLE_REPLICA_RETAIN_H */
