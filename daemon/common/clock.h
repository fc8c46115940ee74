/* SPDX-License-Identifier: MIT */
/*
 * The daemon's one clock for timeouts, deadlines and lags: CLOCK_MONOTONIC in
 * milliseconds (never jumps with the wall clock; not comparable across boots).
 */
#ifndef WALSHIP_COMMON_CLOCK_H
#define WALSHIP_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds. */
static inline int64_t clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif /* WALSHIP_COMMON_CLOCK_H */
