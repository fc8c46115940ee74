/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one clock for timeouts, deadlines and lags: CLOCK_MONOTONIC in
 * milliseconds (never jumps with the wall clock; not comparable across boots).
 *
 * Beside it, the listening clock: the same milliseconds less the time the event loop
 * did not run (the process stopped, starved of CPU, or held up in a system call).  A
 * peer's silence is measured on it (conn_keepalive(), the walsender's timeout), so
 * that a stall of our own is not taken for the peer's: after a stall, the replies that
 * arrived meanwhile are still waiting to be read, and the peer may itself have been
 * starved alongside.  PostgreSQL's walsender gets the same effect by reading what is
 * waiting before it checks wal_sender_timeout.
 */
#ifndef WALSHIP_COMMON_CLOCK_H
#define WALSHIP_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

/* A gap between two loop ticks longer than this is a stall of the loop. */
#define CLOCK_STALL_MS 500

/* Monotonic milliseconds. */
static inline int64_t clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The event loop's tick, every @period_ms when the loop runs: a gap since the previous
 * one longer than CLOCK_STALL_MS stops the listening clock for all of it but one
 * period.  Returns the gap when it was such a stall (for the caller to log), else 0.
 */
int64_t clock_loop_tick(int64_t now_ms, int64_t period_ms);

/* The listening clock: clock_now_ms() less the loop's stalls so far. */
int64_t clock_listen_ms(void);

#endif /* WALSHIP_COMMON_CLOCK_H */
