/* SPDX-License-Identifier: MIT */
/*
 * Retention of the replica's store: which files of archive_dir to remove, as a pure
 * function of what the directory holds, what is still needed and the policy
 * (docs/operations.md, "Retention").  The replica role lists the directory and removes
 * the files on its worker thread (role/replica_retain.c); nothing here touches a disk.
 *
 * The policy is two guarantees, each off at 0, and retention is off when both are:
 *   retain_time  a file stored less than this long ago is kept (a recovery window);
 *   retain_size  the newest files up to this many bytes are kept (as PostgreSQL's
 *                wal_keep_size: at least this much; alone, it bounds the archive to about
 *                this size plus what is needed).
 * A file either keeps is kept; so is every file that is needed: timeline history files
 * (never removed), the newest segment, and every segment at or after the floor (the
 * oldest position a standby or the link to the primary still needs).  Files are removed
 * oldest first (by position: segment number, then timeline) and only as a prefix: the
 * walk stops at the first file kept, so what remains has no hole.
 */
#ifndef WALSHIP_WAL_RETAIN_H
#define WALSHIP_WAL_RETAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal/name.h"

/* Nothing is needed: the floor when no standby and no transfer holds anything. */
#define RETAIN_NO_FLOOR UINT64_MAX

struct retain_policy {
	int64_t keep_ms; /* retain_time: 0 no time guarantee */
	uint64_t keep_bytes; /* retain_size: 0 no size guarantee */
};

/* A file of archive_dir, as listed. */
struct retain_file {
	char name[WAL_NAME_MAX + 1];
	uint64_t size;
	int64_t stored_ms; /* when it was stored (its mtime), unix ms */
	/* set by retain_select(): */
	struct wal_name wn;
	uint64_t segno; /* history files: UINT64_MAX (after every segment) */
};

struct retain_plan {
	size_t remove; /* the first @remove files (after sorting) are to be removed */
	uint64_t remove_bytes;
	size_t kept; /* files kept, history files included */
	uint64_t kept_bytes;
	/* the oldest file kept that is not a history file; -1 when there is none */
	long oldest_kept;
};

/* The policy removes nothing (both guarantees off): today's keep-everything. */
static inline bool retain_policy_off(const struct retain_policy *p)
{
	return p->keep_ms <= 0 && p->keep_bytes == 0;
}

/*
 * Decide which of @files (@n, as listed; names that are not WAL names must not be given)
 * to remove, at @now_ms, for segments of @seg_size bytes, keeping every segment that
 * holds a byte at or after @floor_lsn (RETAIN_NO_FLOOR: none is needed).  Sorts @files
 * oldest first (history files last) and fills @plan: the files to remove are
 * files[0 .. plan->remove - 1].  With the policy off or an invalid @seg_size nothing is
 * removed.  Returns 0, or -EINVAL when a name does not parse.
 */
int retain_select(struct retain_file *files, size_t n, uint32_t seg_size, uint64_t floor_lsn,
		  const struct retain_policy *policy, int64_t now_ms, struct retain_plan *plan);

#endif /* WALSHIP_WAL_RETAIN_H */
