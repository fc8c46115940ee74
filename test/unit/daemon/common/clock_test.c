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

/* How far the listening clock is behind the monotonic one. */
static int64_t listen_behind(void)
{
	int64_t now = clock_now_ms();
	int64_t listen = clock_listen_ms();

	/* the two readings are taken apart, the monotonic one first: the listening one may
	 * be a millisecond on when they cross a millisecond's boundary */
	return now - listen;
}

static void test_stall_is_not_listening(void **state)
{
	int64_t t = 1000000, before;

	(void)state;
	assert_int_equal(clock_loop_tick(t, 100), 0); /* the first tick: no gap to judge */
	before = listen_behind();
	assert_true(before >= -1 && before <= 0);

	t += 100;
	assert_int_equal(clock_loop_tick(t, 100), 0);
	t += CLOCK_STALL_MS; /* a slow tick, not yet a stall */
	assert_int_equal(clock_loop_tick(t, 100), 0);
	assert_true(listen_behind() - before <= 1);

	t += 3000; /* the loop did not run for 3 s */
	assert_int_equal(clock_loop_tick(t, 100), 3000);
	int64_t behind = listen_behind() - before;
	assert_true(behind >= 2898 && behind <= 2901); /* all but one period */

	t += 100; /* running again: the two clocks move together */
	assert_int_equal(clock_loop_tick(t, 100), 0);
	assert_true(listen_behind() - before - behind <= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stall_is_not_listening),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
