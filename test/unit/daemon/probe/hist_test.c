// SPDX-License-Identifier: MIT
/* Unit tests for daemon/probe/hist.c: how peers are named in what is printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "probe/hist.h"

/* Two peers whose hosts are not published yet (numbered, counted within one tick), one
 * named: each has labels of its own in the Prometheus text (the same "unknown" twice
 * was a duplicate series, which Prometheus drops and stricter parsers refuse). */
static void test_unnamed_peers_distinct(void **state)
{
	static struct probe_snapshot s;
	char buf[32], *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.send[1].sent.slots[3] = 1;
	s.send[2].sent.slots[3] = 1;
	snprintf(s.peer[3], sizeof(s.peer[3]), "10.0.0.3");
	s.send[3].sent.slots[3] = 1;
	assert_string_equal(probe_peer_label(&s, 1, buf, sizeof(buf)), "unknown #1");
	assert_string_equal(probe_peer_label(&s, 3, buf, sizeof(buf)), "10.0.0.3");
	out = open_memstream(&text, &len);
	assert_non_null(out);
	probe_print_prometheus(out, &s);
	fclose(out);
	assert_non_null(strstr(text, "peer=\"unknown #1\",stage=\"sent\""));
	assert_non_null(strstr(text, "peer=\"unknown #2\",stage=\"sent\""));
	assert_non_null(strstr(text, "peer=\"10.0.0.3\",stage=\"sent\""));
	assert_null(strstr(text, "peer=\"unknown\""));
	free(text);
}

/* walship stats --interval: a delta of two reads, or, when the histograms were made
 * afresh between them (other maps, a count went back, a peer number names another host),
 * the counts since then (before: wrapped-around counts near 2^64). */
static void test_delta_afresh(void **state)
{
	static struct probe_snapshot before, now, delta;

	(void)state;
	memset(&before, 0, sizeof(before));
	before.fsync.io_uring.slots[4] = 10;
	before.fsync.io_uring.count = 10;
	now = before;
	now.fsync.io_uring.slots[4] = 15;
	now.fsync.io_uring.count = 15;
	assert_true(probe_snapshot_sub(&delta, &now, &before));
	assert_int_equal(delta.fsync.io_uring.count, 5);
	now.fsync.io_uring.slots[4] = 2; /* restarted: fresh maps */
	now.fsync.io_uring.count = 2;
	assert_false(probe_snapshot_sub(&delta, &now, &before));
	assert_int_equal(delta.fsync.io_uring.count, 2);
	now = before;
	snprintf(before.peer[1], sizeof(before.peer[1]), "10.0.0.1");
	snprintf(now.peer[1], sizeof(now.peer[1]), "10.0.0.2");
	assert_false(probe_snapshot_sub(&delta, &now, &before));
	assert_string_equal(delta.peer[1], "10.0.0.2");
	/* A walshipd restarted with other maps whose counts are all at or above the old ones
	 * (it counted more since than the old one had): told by the maps' ids (before: a
	 * delta of two unrelated runs). */
	memset(&before, 0, sizeof(before));
	before.fsync.io_uring.slots[4] = 10;
	before.fsync.io_uring.count = 10;
	before.map_id[0] = 7;
	before.map_id[1] = 8;
	before.map_id[2] = 9;
	now = before;
	now.fsync.io_uring.slots[4] = 12;
	now.fsync.io_uring.count = 12;
	for (int i = 0; i < 3; i++)
		now.map_id[i] = before.map_id[i] + 10;
	assert_false(probe_snapshot_sub(&delta, &now, &before));
	assert_int_equal(delta.fsync.io_uring.count, 12);
	memcpy(now.map_id, before.map_id, sizeof(now.map_id));
	assert_true(probe_snapshot_sub(&delta, &now, &before));
	assert_int_equal(delta.fsync.io_uring.count, 2);
}

/* The last bucket is open-ended, from 2^26 us (67 s) up: no upper bound in the text
 * ("inf") nor the JSON (null), and a quantile in it is its lower bound (it was shown as
 * [67 s, 134 s), and quantiles interpolated up to 134 s). */
static void test_last_bucket_open(void **state)
{
	static struct probe_snapshot s;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.fsync.io_uring.slots[3] = 1;
	s.fsync.io_uring.slots[PROBE_HIST_SLOTS - 1] = 3; /* e.g. 10 minutes each */
	s.fsync.io_uring.count = 4;
	assert_true(probe_hist_quantile_us(&s.fsync.io_uring, 0.99) == 67108864.0);
	assert_true(probe_hist_quantile_us(&s.fsync.io_uring, 0.5) == 67108864.0);
	assert_true(probe_hist_quantile_us(&s.fsync.io_uring, 0.25) <= 16.0);
	out = open_memstream(&text, &len);
	assert_non_null(out);
	probe_print_json(out, &s, 0, false);
	probe_print_text(out, &s);
	fclose(out);
	assert_non_null(strstr(text, "{\"low_us\": 8, \"high_us\": 15, \"count\": 1}"));
	assert_non_null(strstr(text, "{\"low_us\": 67108864, \"high_us\": null, \"count\": 3}"));
	assert_non_null(strstr(text, "  67108864 -> inf        : 3 "));
	assert_null(strstr(text, "134217727"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_last_bucket_open),
		cmocka_unit_test(test_unnamed_peers_distinct),
		cmocka_unit_test(test_delta_afresh),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
