// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/lagring.c: lags read from a full ring are never shorter
 * than the true ones nor lost, however far behind the reader (before, a ring that
 * overwrote its oldest sample capped a replica's lag at the span of its last 128 samples);
 * pruning, cutting at a fork, and the newest sample a reader reached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/lagring.h"

/* One sample per 10 ms, 1000 bytes each: WAL before 1000 * (i + 1) there at 10 * i. */
static void fill(struct lag_ring *r, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		lag_ring_add(r, 1000 * (uint64_t)(i + 1), 10 * (int64_t)i, 10);
}

static void test_since_exact_while_not_full(void **state)
{
	struct lag_ring r = { 0 };

	(void)state;
	assert_int_equal(lag_ring_since(&r, 0), 0);
	fill(&r, 50);
	assert_int_equal(r.count, 50);
	assert_int_equal(lag_ring_since(&r, 0), 0); /* the first sample's time: 0 */
	assert_int_equal(lag_ring_since(&r, 1000), 10);
	assert_int_equal(lag_ring_since(&r, 1500), 10);
	assert_int_equal(lag_ring_since(&r, 49999), 490);
	assert_int_equal(lag_ring_since(&r, 50000), 0); /* holds everything sampled */
}

static void test_resolution_moves_the_newest(void **state)
{
	struct lag_ring r = { 0 };

	(void)state;
	lag_ring_add(&r, 100, 1000, 10);
	lag_ring_add(&r, 200, 1005, 10); /* within 10 ms: the same sample, moved on */
	lag_ring_add(&r, 150, 1030, 10); /* not past the newest: ignored */
	assert_int_equal(r.count, 1);
	assert_int_equal(lag_ring_since(&r, 150), 1000);
	lag_ring_add(&r, 300, 1010, 10);
	assert_int_equal(r.count, 2);
	assert_int_equal(lag_ring_since(&r, 250), 1010);
}

/* A reader far behind a ring that filled many times over: its lag is measured from the
 * oldest sample still; no reader's lag comes out shorter than the true one, nor longer by
 * more than a quarter of it (the ring thins out the old samples, not the new). */
static void test_full_ring_keeps_the_far_reader(void **state)
{
	struct lag_ring r = { 0 };
	const unsigned int n = 100 * LAG_RING_SAMPLES;
	const int64_t now = 10 * (int64_t)(n - 1);

	(void)state;
	fill(&r, n);
	assert_int_equal(r.count, LAG_RING_SAMPLES);
	assert_int_equal(lag_ring_since(&r, 0), 0); /* 128 s of samples, still from 0 */
	for (uint64_t lsn = 1000; lsn < 1000 * (uint64_t)n; lsn += 777) {
		/* the true time the WAL after lsn came: the sample past it, 10 * (lsn / 1000) */
		int64_t truth = 10 * (int64_t)(lsn / 1000);
		int64_t since = lag_ring_since(&r, lsn);

		assert_true(since <= truth);
		assert_true(4 * (truth - since) <= now - truth + 10);
	}
}

static void test_prune_and_cut(void **state)
{
	struct lag_ring r = { 0 };

	(void)state;
	fill(&r, 10); /* 1000..10000 at 0..90 */
	lag_ring_prune(&r, 3000); /* every reader holds up to 3000 */
	assert_int_equal(r.count, 7);
	assert_int_equal(lag_ring_since(&r, 3000), 30);
	lag_ring_cut(&r, 5500); /* a fork at 5500: the WAL after it was another timeline's */
	assert_int_equal(r.count, 3); /* 4000, 5000, and 6000's time for what reached 5500 */
	assert_int_equal(lag_ring_since(&r, 5000), 50);
	assert_int_equal(lag_ring_since(&r, 5500), 0);
	lag_ring_add(&r, 6000, 200, 10); /* the new timeline's WAL, sampled on */
	assert_int_equal(lag_ring_since(&r, 5500), 200);
	lag_ring_cut(&r, 0);
	assert_int_equal(r.count, 1);
	lag_ring_prune(&r, 0);
	assert_int_equal(r.count, 0);
}

static void test_reached(void **state)
{
	struct lag_ring r = { 0 };
	struct lag_ring_sample s;

	(void)state;
	fill(&r, 10);
	assert_false(lag_ring_reached(&r, 999, 0, &s)); /* before the first sample */
	assert_true(lag_ring_reached(&r, 4500, 0, &s));
	assert_int_equal(s.lsn, 4000);
	assert_int_equal(s.ms, 30);
	assert_false(lag_ring_reached(&r, 4500, 4000, &s)); /* nothing new to it */
	assert_true(lag_ring_reached(&r, 1000000, 4000, &s));
	assert_int_equal(s.lsn, 10000);
	/* full: a sample reached is never newer than the true time of the WAL it covers */
	fill(&r, 10 * LAG_RING_SAMPLES);
	for (uint64_t pos = 1000; pos < 10000 * LAG_RING_SAMPLES; pos += 913) {
		assert_true(lag_ring_reached(&r, pos, 0, &s));
		assert_true(s.ms <= 10 * (int64_t)(pos / 1000 - 1));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_since_exact_while_not_full),
		cmocka_unit_test(test_resolution_moves_the_newest),
		cmocka_unit_test(test_full_ring_keeps_the_far_reader),
		cmocka_unit_test(test_prune_and_cut),
		cmocka_unit_test(test_reached),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
