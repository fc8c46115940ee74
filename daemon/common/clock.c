// SPDX-License-Identifier: MIT
/* The listening clock (clock.h): monotonic time less the event loop's stalls. */
#include <stdbool.h>

#include "common/clock.h"

/* One event loop per process: its last tick and the stalls it has had. */
static int64_t last_tick_ms;
static int64_t stalled_ms;

int64_t clock_loop_tick(int64_t now_ms, int64_t period_ms)
{
	int64_t gap = now_ms - last_tick_ms;
	bool first = last_tick_ms == 0;

	last_tick_ms = now_ms;
	if (first || gap <= CLOCK_STALL_MS)
		return 0;
	stalled_ms += gap - period_ms;
	return gap;
}

int64_t clock_listen_ms(void)
{
	return clock_now_ms() - stalled_ms;
}
