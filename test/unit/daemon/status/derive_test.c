// SPDX-License-Identifier: MIT
/*
 * Unit tests for status_derive() (daemon/status/status.c): a peer's durable position is
 * the end of what it acknowledged, never past WAL it still lacks (gap_lsn, filled by the
 * role: files held for it, being sent again), as docs/sysfs.md says ("with no gap
 * before it"); its lag in bytes follows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "status/status.h"

#define SEG (16u * 1024 * 1024)

static void segment_name(char *out, size_t len, unsigned int segno)
{
	snprintf(out, len, "00000001%08X%08X", segno >> 8, segno & 255);
}

static void test_acknowledged_whole_files(void **state)
{
	struct status_peer peer = { 0 };
	struct status_node n = { .seg_size = SEG, .peers = &peer, .npeers = 1 };

	(void)state;
	segment_name(peer.last_acked, sizeof(peer.last_acked), 9);
	segment_name(n.newest_pushed, sizeof(n.newest_pushed), 10);
	status_derive(&n, 1000);
	assert_int_equal(peer.flush_lsn, 10ull * SEG);
	assert_int_equal(peer.lag_bytes, 1ull * SEG);
}

/* Acknowledged out of order (segments shipped ahead, new pushes before a backlog): the
 * position stops where the first segment it lacks begins. */
static void test_not_past_a_gap(void **state)
{
	struct status_peer peer = { .gap_lsn = 3ull * SEG, .oldest_unacked_ms = 400 };
	struct status_node n = { .seg_size = SEG, .peers = &peer, .npeers = 1 };

	(void)state;
	segment_name(peer.last_acked, sizeof(peer.last_acked), 9);
	segment_name(n.newest_pushed, sizeof(n.newest_pushed), 10);
	status_derive(&n, 1000);
	assert_int_equal(peer.flush_lsn, 3ull * SEG);
	assert_int_equal(peer.write_lsn, 10ull * SEG); /* received: no claim of no gap */
	assert_int_equal(peer.lag_bytes, 8ull * SEG);
	assert_int_equal(peer.lag_us, 600000);
}

/* Streaming: the role's position (its durable run) is capped the same way; a gap past it
 * changes nothing. */
static void test_stream_position_capped(void **state)
{
	struct status_peer peers[2] = {
		{ .flush_lsn = 20ull * SEG + 4096,
		  .write_lsn = 20ull * SEG + 8192,
		  .gap_lsn = 12ull * SEG },
		{ .flush_lsn = 20ull * SEG + 4096, .gap_lsn = 21ull * SEG },
	};
	struct status_node n = { .seg_size = SEG,
				 .peers = peers,
				 .npeers = 2,
				 .source_received_lsn = 20ull * SEG + 8192 };

	(void)state;
	status_derive(&n, 1000);
	assert_int_equal(peers[0].flush_lsn, 12ull * SEG);
	assert_int_equal(peers[0].lag_bytes, 8ull * SEG + 8192);
	assert_int_equal(peers[1].flush_lsn, 20ull * SEG + 4096);
	assert_int_equal(peers[1].lag_bytes, 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acknowledged_whole_files),
		cmocka_unit_test(test_not_past_a_gap),
		cmocka_unit_test(test_stream_position_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
