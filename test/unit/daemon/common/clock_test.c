// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/clock.c: the listening clock stands still for a stall of
 * the event loop (a gap between ticks longer than CLOCK_STALL_MS), all of it but one tick
 * period, and runs with the monotonic clock otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/clock.h"

/* How far the listening clock is behind the monotonic one: between *@lo and *@hi, the
 * monotonic clock read on both sides of the listening one (a thread descheduled between
 * them widens the range; nothing assumes the machine idle). */
static void listen_behind(int64_t *lo, int64_t *hi)
{
	int64_t before = clock_now_ms();
	int64_t listen = clock_listen_ms();
	int64_t after = clock_now_ms();

	*lo = before - listen;
	*hi = after - listen;
}

/* The listening clock is @stalled behind the monotonic one, as far as the readings tell. */
static void assert_behind(int64_t stalled)
{
	int64_t lo, hi;

	listen_behind(&lo, &hi);
	assert_true(lo <= stalled && stalled <= hi);
}

static void test_stall_is_not_listening(void **state)
{
	int64_t t = 1000000;

	(void)state;
	assert_int_equal(clock_loop_tick(t, 100), 0); /* the first tick: no gap to judge */
	assert_behind(0);

	t += 100;
	assert_int_equal(clock_loop_tick(t, 100), 0);
	t += CLOCK_STALL_MS; /* a slow tick, not yet a stall */
	assert_int_equal(clock_loop_tick(t, 100), 0);
	assert_behind(0);

	t += 3000; /* the loop did not run for 3 s */
	assert_int_equal(clock_loop_tick(t, 100), 3000);
	assert_behind(2900); /* all but one period */

	t += 100; /* running again: the two clocks move together */
	assert_int_equal(clock_loop_tick(t, 100), 0);
	assert_behind(2900);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stall_is_not_listening),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
