/* SPDX-License-Identifier: MIT */
/*
 * Samples of (LSN, time) from which lags in time are read, as PostgreSQL's LagTracker
 * (walsender.c) keeps them for pg_stat_replication: a bounded FIFO in LSN order, fed as
 * WAL arrives or is sent, pruned as the readers' positions pass it.
 *
 * Bounded, it must not lose a reader that is far behind: when it is full, two neighbouring
 * samples (never the oldest sample), the pair spanning the least time for its age, become
 * one with the newer LSN and the older time.  A lag read from it can then only come out longer than it was,
 * by at most that pair's interval, never shorter nor lost: a replica minutes behind shows
 * minutes, not the span of the last 128 samples.  (PostgreSQL overwrites its newest
 * sample when its 8192 are full, which keeps the same property more coarsely.)
 */
#ifndef WALSHIP_COMMON_LAGRING_H
#define WALSHIP_COMMON_LAGRING_H

#include <stdbool.h>
#include <stdint.h>

#define LAG_RING_SAMPLES 128

struct lag_ring_sample {
	uint64_t lsn; /* the WAL before this... */
	int64_t ms; /* ...was there (arrived, sent) at this time */
};

struct lag_ring {
	struct lag_ring_sample s[LAG_RING_SAMPLES];
	unsigned int first; /* the oldest sample */
	unsigned int count;
};

/* WAL before @lsn is there at @ms: a new sample, or, within @resolution_ms of the newest,
 * that one moved on to @lsn (its time kept).  An @lsn not past the newest is ignored. */
void lag_ring_add(struct lag_ring *r, uint64_t lsn, int64_t ms, int64_t resolution_ms);
/* Forget the samples at or before @lsn: every reader is past them. */
void lag_ring_prune(struct lag_ring *r, uint64_t lsn);
/* Forget the samples past @lsn (the WAL after it was another timeline's). */
void lag_ring_cut(struct lag_ring *r, uint64_t lsn);
/* Since when WAL after @lsn has been there: the time of the oldest sample past @lsn (0:
 * nothing past @lsn was sampled). */
int64_t lag_ring_since(const struct lag_ring *r, uint64_t lsn);
/* The newest sample at or before @pos and past @after, in *@out: what a reader at @pos
 * reached since it was at @after.  Returns false when there is none. */
bool lag_ring_reached(const struct lag_ring *r, uint64_t pos, uint64_t after,
		      struct lag_ring_sample *out);

#endif
