// SPDX-License-Identifier: MIT
/* Unit tests for daemon/role/decide.c: the primary's decisions, without sockets or disks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "role/decide.h"

/* sync_replicas = 1, one registered replica that lacks it, spool_delay = 50 ms. */
static struct push_facts facts(void)
{
	return (struct push_facts){ .acks = 1,
				    .sync_replicas = 1,
				    .missing = 1,
				    .missing_keep_up = false,
				    .spool_delay_ms = 50 };
}

static void test_push_acks(void **state)
{
	struct push_facts f = facts();
	int64_t until = 0;

	(void)state;
	f.acks = 0;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_WAIT_ACKS);
	/* Nothing else is decided before the acknowledgements: no wait begins. */
	f.missing_keep_up = true;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_WAIT_ACKS);
	assert_int_equal(until, 0);
	/* sync_replicas = 0 with nobody registered: safe at once. */
	f = facts();
	f.acks = 0;
	f.sync_replicas = 0;
	f.missing = 0;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_SAFE);
	/* More acknowledgements than needed, every registered replica among them. */
	f = facts();
	f.acks = 3;
	f.missing = 0;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_SAFE);
}

static void test_push_hold(void **state)
{
	struct push_facts f = facts();
	int64_t until = 0;

	(void)state;
	/* A registered replica lacks it and is not keeping up: hold it now. */
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_HOLD);
	assert_int_equal(until, 0);
	/* sync_replicas = 0 still holds it for the registered replicas. */
	f.acks = 0;
	f.sync_replicas = 0;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_HOLD);
	/* The copy is under way, then done. */
	f = facts();
	f.spool_needed = true;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_WAIT_SPOOL);
	f.spooled = true;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_SAFE);
	/* Once the copy started, "missing" no longer matters. */
	f.missing = 5;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_SAFE);
}

static void test_push_delay(void **state)
{
	struct push_facts f = facts();
	int64_t until = 0;

	(void)state;
	f.missing_keep_up = true;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_WAIT_DELAY);
	assert_int_equal(until, 1050);
	/* The wait does not restart. */
	assert_int_equal(push_decide(&f, 1049, &until), PUSH_WAIT_DELAY);
	assert_int_equal(until, 1050);
	/* Over, and still lacking it: hold it. */
	assert_int_equal(push_decide(&f, 1050, &until), PUSH_HOLD);
	/* It acknowledged within the delay: no copy, and that is counted. */
	f.missing = 0;
	f.acks = 2;
	assert_int_equal(push_decide(&f, 1020, &until), PUSH_SAFE_AVOIDED);
	/* spool_delay = 0: no wait even for a replica keeping up. */
	f = facts();
	f.missing_keep_up = true;
	f.spool_delay_ms = 0;
	until = 0;
	assert_int_equal(push_decide(&f, 1000, &until), PUSH_HOLD);
	assert_int_equal(until, 0);
}

static void test_keeping_up(void **state)
{
	struct replica_pace pace = { .ack_seen = true, .ack_ewma_ms = 10, .being_sent = true };

	(void)state;
	assert_true(push_keeping_up(&pace, 50));
	/* The bound is strict: an average of spool_delay is not within it. */
	pace.ack_ewma_ms = 50;
	assert_false(push_keeping_up(&pace, 50));
	pace.ack_ewma_ms = 10;
	pace.being_sent = false;
	assert_false(push_keeping_up(&pace, 50));
	pace.being_sent = true;
	pace.backlog_left = true;
	assert_false(push_keeping_up(&pace, 50));
	pace.backlog_left = false;
	pace.ack_seen = false;
	assert_false(push_keeping_up(&pace, 50));
}

static void test_ack_ewma(void **state)
{
	(void)state;
	assert_int_equal(ack_ewma_next(0, 40, true), 40);
	assert_int_equal(ack_ewma_next(40, 80, false), 50);
	assert_int_equal(ack_ewma_next(100, 0, false), 75);
}

static void test_io_error(void **state)
{
	(void)state;
	/* sync_replicas = 2: one acknowledgement and one other replica being sent it. */
	assert_true(push_quorum_reachable(1, 1, 2));
	assert_false(push_quorum_reachable(1, 0, 2));
	assert_false(push_quorum_reachable(0, 0, 1));
	assert_true(push_quorum_reachable(0, 0, 0));
	assert_int_equal(ack_decide(WIRE_ACK_IO_ERROR), ACK_HELD);
	assert_false(ack_releases_claim(WIRE_ACK_IO_ERROR));
	/* Backoff: 1 s, doubling, up to 30 s; storing again starts over. */
	assert_int_equal(io_backoff_next(0, 1000, 30000), 1000);
	assert_int_equal(io_backoff_next(1000, 1000, 30000), 2000);
	assert_int_equal(io_backoff_next(16000, 1000, 30000), 30000);
	assert_int_equal(io_backoff_next(30000, 1000, 30000), 30000);
}

static void test_ack_statuses(void **state)
{
	(void)state;
	assert_int_equal(ack_decide(WIRE_ACK_STORED), ACK_COUNTED);
	assert_int_equal(ack_decide(WIRE_ACK_DUPLICATE), ACK_COUNTED);
	assert_int_equal(ack_decide(WIRE_ACK_CONFLICT), ACK_CONFLICT);
	assert_int_equal(ack_decide(WIRE_ACK_INVALID), ACK_REFUSED);
	assert_int_equal(ack_decide(WIRE_ACK_SYSID), ACK_REFUSED);
	assert_int_equal(ack_decide(200), ACK_REFUSED);
	/* A refusal for good releases the held copy; stored or duplicate leave that to the
	 * acknowledgement itself. */
	assert_false(ack_releases_claim(WIRE_ACK_STORED));
	assert_false(ack_releases_claim(WIRE_ACK_DUPLICATE));
	assert_true(ack_releases_claim(WIRE_ACK_CONFLICT));
	assert_true(ack_releases_claim(WIRE_ACK_INVALID));
	assert_true(ack_releases_claim(WIRE_ACK_SYSID));
	/* After FILE_END any status; before it only a refusal of a streamed file. */
	assert_true(ack_in_time(true, false, WIRE_ACK_STORED));
	assert_true(ack_in_time(true, true, WIRE_ACK_IO_ERROR));
	assert_true(ack_in_time(false, true, WIRE_ACK_IO_ERROR));
	assert_true(ack_in_time(false, true, WIRE_ACK_INVALID));
	assert_false(ack_in_time(false, true, WIRE_ACK_STORED));
	assert_false(ack_in_time(false, true, WIRE_ACK_DUPLICATE));
	assert_false(ack_in_time(false, false, WIRE_ACK_IO_ERROR));
}

#define MB (UINT64_C(1) << 20)

static void test_spool_room(void **state)
{
	const uint64_t held[] = { 3, 7, 0, 7 };
	const uint64_t none[] = { 0, 0 };
	int slowest = -9;

	(void)state;
	/* Unbounded, or it fits exactly. */
	assert_int_equal(spool_room_decide(100 * MB, 0, 16 * MB, 0, false, held, 4, &slowest),
			 SPOOL_FITS);
	assert_int_equal(spool_room_decide(48 * MB, 0, 16 * MB, 64 * MB, false, held, 4, &slowest),
			 SPOOL_FITS);
	/* One byte over: spool_overflow = fail. */
	assert_int_equal(
		spool_room_decide(48 * MB + 1, 0, 16 * MB, 64 * MB, false, held, 4, &slowest),
		SPOOL_FULL);
	/* release_slowest: the most held files, the first of equals. */
	assert_int_equal(spool_room_decide(64 * MB, 0, 16 * MB, 64 * MB, true, held, 4, &slowest),
			 SPOOL_RELEASE);
	assert_int_equal(slowest, 1);
	/* Nobody holds anything: releasing cannot make room. */
	assert_int_equal(spool_room_decide(64 * MB, 0, 16 * MB, 64 * MB, true, none, 2, &slowest),
			 SPOOL_FULL);
	assert_int_equal(spool_room_decide(64 * MB, 0, 16 * MB, 64 * MB, true, NULL, 0, &slowest),
			 SPOOL_FULL);
	/* A file larger than the whole spool. */
	assert_int_equal(spool_room_decide(0, 0, 65 * MB, 64 * MB, false, held, 4, &slowest),
			 SPOOL_FULL);
	/* ... with release_slowest: nobody is released for it (spool_max_size under a
	 * segment's size released every replica, then failed the push anyway). */
	assert_int_equal(spool_room_decide(48 * MB, 0, 65 * MB, 64 * MB, true, held, 4, &slowest),
			 SPOOL_FULL);
	/* Nor when copies in progress leave too little room whatever is released. */
	assert_int_equal(
		spool_room_decide(60 * MB, 50 * MB, 16 * MB, 64 * MB, true, held, 4, &slowest),
		SPOOL_FULL);
	assert_int_equal(
		spool_room_decide(60 * MB, 48 * MB, 16 * MB, 64 * MB, true, held, 4, &slowest),
		SPOOL_RELEASE);
}

static struct msg_have_entry entry(uint8_t kind, uint64_t size, uint64_t durable, uint32_t crc)
{
	return (struct msg_have_entry){
		.kind = kind, .size = size, .durable = durable, .crc = crc
	};
}

static void test_have(void **state)
{
	struct msg_have_entry e = entry(WIRE_HAVE_PARTIAL, 16 * MB, 5 * MB, 0xabcd);
	uint32_t same = 0xabcd, other = 0xabce;
	uint64_t start = 0;

	(void)state;
	/* A durable part with the same content: resume from its length. */
	assert_int_equal(have_decide(&e, 16 * MB, &same, &start), HAVE_RESUME);
	assert_int_equal(start, 5 * MB);
	/* Other content under the name, sizes that differ, or a CRC not read: from the start,
	 * and the offset is left alone. */
	start = 0;
	assert_int_equal(have_decide(&e, 16 * MB, &other, &start), HAVE_OTHER);
	/* A streamed segment compares once the replica's part has arrived. */
	assert_true(have_later(&e, 16 * MB, e.durable - 1));
	assert_false(have_later(&e, 16 * MB, e.durable));
	assert_false(have_later(&e, 8 * MB, 0));
	assert_int_equal(have_decide(&e, 8 * MB, &same, &start), HAVE_NONE);
	assert_int_equal(have_decide(&e, 16 * MB, NULL, &start), HAVE_NONE);
	assert_int_equal(start, 0);
	/* The last byte short of complete. */
	e = entry(WIRE_HAVE_PARTIAL, 16 * MB, 16 * MB - 1, 0xabcd);
	assert_int_equal(have_decide(&e, 16 * MB, &same, &start), HAVE_RESUME);
	assert_int_equal(start, 16 * MB - 1);
	/* Complete with the same content: skipped; with other content: sent. */
	e = entry(WIRE_HAVE_COMPLETE, 16 * MB, 16 * MB, 0xabcd);
	start = 0;
	assert_int_equal(have_decide(&e, 16 * MB, &same, &start), HAVE_SKIP);
	assert_int_equal(start, 0);
	assert_int_equal(have_decide(&e, 16 * MB, &other, &start), HAVE_OTHER);
	/* An empty file held complete: the same size, CRC 0. */
	e = entry(WIRE_HAVE_COMPLETE, 0, 0, 0);
	same = 0;
	assert_int_equal(have_decide(&e, 0, &same, &start), HAVE_SKIP);
}

/* Out-of-order acknowledgements of streamed segments join the run when the gap closes. */
static void test_stream_run(void **state)
{
	struct stream_run run = { 0 };
	const uint64_t seg = 16 * MB;

	(void)state;
	/* The first segment starts the run; its durable part advances it. */
	assert_true(stream_run_add(&run, 2 * seg, 2 * seg + 8192, true));
	assert_true(run.end == 2 * seg + 8192);
	assert_false(stream_run_add(&run, 2 * seg, 2 * seg + 4096, false)); /* nothing new */
	/* Segments 4 and 3 are acknowledged before 2 is whole: kept ahead. */
	assert_false(stream_run_add(&run, 4 * seg, 4 * seg + 100, false));
	assert_false(stream_run_add(&run, 3 * seg, 4 * seg, false));
	assert_false(stream_run_add(&run, 4 * seg, 5 * seg, false)); /* 4 whole now */
	assert_true(run.end == 2 * seg + 8192);
	assert_int_equal(run.nahead, 2);
	/* 2 completes: 3 and 4 join at once. */
	assert_true(stream_run_add(&run, 2 * seg, 3 * seg, false));
	assert_true(run.end == 5 * seg);
	assert_int_equal(run.nahead, 0);
	/* A segment after a gap that never closes does not count. */
	assert_false(stream_run_add(&run, 7 * seg, 7 * seg + 1, false));
	assert_true(run.end == 5 * seg);
	/* Unless the replica is known to hold what is before it. */
	assert_true(stream_run_add(&run, 9 * seg, 9 * seg + 1, true));
	assert_true(run.end == 9 * seg + 1);
	/* Entries left behind the run are dropped as it passes them. */
	assert_true(stream_run_add(&run, 9 * seg, 10 * seg, false));
	assert_int_equal(run.nahead, 0);
}

/* A timeline forked inside what the run holds: the run, and what waits ahead of it, end at
 * the fork; the new timeline's WAL from its segment start continues the run. */
static void test_stream_run_truncate(void **state)
{
	struct stream_run run = { 0 };
	const uint64_t seg = 16 * MB, fork = 3 * seg + 5000;

	(void)state;
	assert_true(stream_run_add(&run, 2 * seg, 3 * seg + 9000, true));
	assert_false(stream_run_add(&run, 5 * seg, 5 * seg + 10, false));
	assert_false(stream_run_add(&run, 3 * seg + 9500, 3 * seg + 9600, false));
	assert_int_equal(run.nahead, 2);
	stream_run_truncate(&run, fork);
	assert_true(run.end == fork);
	assert_int_equal(run.nahead, 0); /* both began after the fork */
	assert_false(stream_run_add(&run, 3 * seg, 3 * seg + 4000, false)); /* below the fork */
	assert_true(stream_run_add(&run, 3 * seg, 3 * seg + 6000, false));
	assert_true(run.end == 3 * seg + 6000);
	/* One that began before the fork is cut there. */
	assert_false(stream_run_add(&run, 4 * seg, 4 * seg + 100, false));
	stream_run_truncate(&run, 4 * seg + 50);
	assert_int_equal(run.nahead, 1);
	assert_true(run.ahead[0].end == 4 * seg + 50);
	stream_run_truncate(&run, 0);
	assert_true(run.end == 0);
	assert_int_equal(run.nahead, 0);
}

/* One fork: timeline 2 forked from 1 at 0/3001388.  What a replica acknowledges of timeline 1
 * after that counts up to the fork only; timeline 2's counts whole. */
static void test_stream_fork(void **state)
{
	static const char history2[] = "1\t0/3001388\tno recovery target specified\n";
	struct stream_forks forks = { 0 };
	const uint64_t seg = 16 * MB, fork = 0x3001388;

	(void)state;
	assert_true(stream_forks_clamp(&forks, 1, 3 * seg, 4 * seg) == 4 * seg); /* no fork yet */
	stream_forks_note(&forks, 2, 1, history2, sizeof(history2) - 1, fork);
	assert_true(stream_forks_clamp(&forks, 1, 2 * seg, 3 * seg) == 3 * seg); /* before it */
	assert_true(stream_forks_clamp(&forks, 1, 3 * seg, 4 * seg) == fork);
	assert_true(stream_forks_clamp(&forks, 1, 4 * seg, 5 * seg) <= 4 * seg); /* none of it */
	assert_true(stream_forks_clamp(&forks, 2, 3 * seg, 4 * seg) == 4 * seg);
	/* A history that is no chain from timeline 1: the timeline left ends at the fork. */
	stream_forks_note(&forks, 8, 7, "7\t0/3001388\tx\n", 14, fork);
	assert_true(stream_forks_clamp(&forks, 7, 3 * seg, 4 * seg) == fork);
	assert_true(stream_forks_clamp(&forks, 8, 3 * seg, 4 * seg) == 4 * seg);
}

/*
 * Two forks in quick succession: timeline 2 forked from 1 at 0/3001388, then 3 from 2 at
 * 0/5000100.  An acknowledgement of timeline 1's WAL that arrives after both counts up
 * to where timeline 1 ended (the first fork), not to the last fork; timeline 2's up to
 * the second.
 */
static void test_stream_two_forks(void **state)
{
	static const char history2[] = "1\t0/3001388\tno recovery target specified\n";
	static const char history3[] = "1\t0/3001388\tno recovery target specified\n"
				       "\n"
				       "2\t0/5000100\tno recovery target specified\n";
	struct stream_forks forks = { 0 };
	const uint64_t seg = 16 * MB, fork1 = 0x3001388, fork2 = 0x5000100;

	(void)state;
	stream_forks_note(&forks, 2, 1, history2, sizeof(history2) - 1, fork1);
	stream_forks_note(&forks, 3, 2, history3, sizeof(history3) - 1, fork2);
	assert_true(stream_forks_clamp(&forks, 1, 2 * seg, 3 * seg) == 3 * seg);
	assert_true(stream_forks_clamp(&forks, 1, 3 * seg, 4 * seg) == fork1);
	assert_true(stream_forks_clamp(&forks, 1, 4 * seg, 5 * seg) <= 4 * seg);
	assert_true(stream_forks_clamp(&forks, 2, 4 * seg, 5 * seg) == 5 * seg);
	assert_true(stream_forks_clamp(&forks, 2, 5 * seg, 6 * seg) == fork2);
	assert_true(stream_forks_clamp(&forks, 2, 6 * seg, 7 * seg) <= 6 * seg);
	assert_true(stream_forks_clamp(&forks, 3, 5 * seg, 6 * seg) == 6 * seg);
	/* The timeline a start at a position must name (the stream's record). */
	assert_int_equal(stream_forks_timeline(&forks, 2 * seg, 3), 1);
	assert_int_equal(stream_forks_timeline(&forks, 3 * seg, 3), 1); /* the fork's segment */
	assert_int_equal(stream_forks_timeline(&forks, fork1, 3), 2);
	assert_int_equal(stream_forks_timeline(&forks, 5 * seg, 3), 2);
	assert_int_equal(stream_forks_timeline(&forks, fork2, 3), 3);
	assert_int_equal(stream_forks_timeline(&forks, 6 * seg, 3), 3);
	forks = (struct stream_forks){ 0 };
	assert_int_equal(stream_forks_timeline(&forks, 2 * seg, 1), 1); /* none known */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_acks),
		cmocka_unit_test(test_push_hold),
		cmocka_unit_test(test_push_delay),
		cmocka_unit_test(test_keeping_up),
		cmocka_unit_test(test_ack_ewma),
		cmocka_unit_test(test_io_error),
		cmocka_unit_test(test_ack_statuses),
		cmocka_unit_test(test_spool_room),
		cmocka_unit_test(test_have),
		cmocka_unit_test(test_stream_run),
		cmocka_unit_test(test_stream_run_truncate),
		cmocka_unit_test(test_stream_fork),
		cmocka_unit_test(test_stream_two_forks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
