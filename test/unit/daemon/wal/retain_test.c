// SPDX-License-Identifier: MIT
/* Unit tests for daemon/wal/retain.c: which files retention removes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/compiler.h"
#include "wal/retain.h"

#define SEG (16u * 1024 * 1024)
#define NOW_MS 1000000000000LL
#define MIN_MS (60 * 1000LL)

/* Segments 1..@n of timeline 1, listed newest first (not sorted), segment i stored
 * (n - i) minutes before NOW_MS, plus the history file of timeline 2 at the start. */
static size_t make_files(struct retain_file *files, unsigned int n)
{
	size_t k = 0;

	snprintf(files[k].name, sizeof(files[k].name), "00000002.history");
	files[k].size = 42;
	files[k].stored_ms = NOW_MS - 100 * MIN_MS;
	k++;
	for (unsigned int i = n; i >= 1; i--, k++) {
		snprintf(files[k].name, sizeof(files[k].name), "0000000100000000%08X", i);
		files[k].size = SEG;
		files[k].stored_ms = NOW_MS - (int64_t)(n - i) * MIN_MS;
	}
	return k;
}

static void test_off_keeps_everything(void **state)
{
	struct retain_file files[16];
	struct retain_policy off = { 0 };
	struct retain_plan plan;
	size_t n = make_files(files, 8);

	(void)state;
	assert_int_equal(retain_select(files, n, SEG, RETAIN_NO_FLOOR, &off, NOW_MS, &plan), 0);
	assert_int_equal(plan.remove, 0);
	assert_int_equal(plan.kept, 9);
	assert_int_equal(plan.kept_bytes, 8ull * SEG + 42);
	/* sorted oldest first, the history file last */
	assert_string_equal(files[0].name, "000000010000000000000001");
	assert_string_equal(files[8].name, "00000002.history");
	assert_int_equal(plan.oldest_kept, 0);
}

/* retain_size alone: the newest segments up to that many bytes stay, oldest go first. */
static void test_size(void **state)
{
	struct retain_file files[16];
	struct retain_policy p = { .keep_bytes = 3ull * SEG };
	struct retain_plan plan;
	size_t n = make_files(files, 8);

	(void)state;
	assert_int_equal(retain_select(files, n, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan), 0);
	assert_int_equal(plan.remove, 5); /* 1..5 go, 6 7 8 stay */
	assert_int_equal(plan.remove_bytes, 5ull * SEG);
	assert_string_equal(files[4].name, "000000010000000000000005");
	assert_int_equal(plan.oldest_kept, 5);
	assert_string_equal(files[plan.oldest_kept].name, "000000010000000000000006");
	assert_int_equal(plan.kept, 4); /* three segments and the history file */
	assert_int_equal(plan.kept_bytes, 3ull * SEG + 42);
	/* at least: a size between two segments keeps one more */
	p.keep_bytes = 3ull * SEG - 1;
	n = make_files(files, 8);
	retain_select(files, n, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan);
	assert_int_equal(plan.remove, 5);
	p.keep_bytes = 3ull * SEG + 1;
	n = make_files(files, 8);
	retain_select(files, n, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan);
	assert_int_equal(plan.remove, 4);
}

/* retain_time: segments stored inside the window stay. */
static void test_time(void **state)
{
	struct retain_file files[16];
	struct retain_policy p = { .keep_ms = 3 * MIN_MS };
	struct retain_plan plan;
	size_t n = make_files(files, 8);

	(void)state;
	retain_select(files, n, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan);
	/* 8 (0 min), 7 (1), 6 (2) are inside 3 min; 5 is exactly 3 min old: outside */
	assert_int_equal(plan.remove, 5);
	/* both: each guarantee keeps what it keeps */
	p.keep_bytes = 5ull * SEG;
	n = make_files(files, 8);
	retain_select(files, n, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan);
	assert_int_equal(plan.remove, 3);
}

/* The floor keeps the segment that holds it and everything after, whatever the policy. */
static void test_floor(void **state)
{
	struct retain_file files[16];
	struct retain_policy p = { .keep_bytes = 1 };
	struct retain_plan plan;
	size_t n = make_files(files, 8);

	(void)state;
	retain_select(files, n, SEG, 3ull * SEG + 100, &p, NOW_MS, &plan);
	assert_int_equal(plan.remove, 2); /* 1, 2; 3 holds the floor */
	n = make_files(files, 8);
	retain_select(files, n, SEG, 3ull * SEG, &p, NOW_MS, &plan);
	assert_int_equal(plan.remove, 2);
	n = make_files(files, 8);
	retain_select(files, n, SEG, 0, &p, NOW_MS, &plan);
	assert_int_equal(plan.remove, 0);
}

/* The newest segment stays even when the policy would take it; history files always. */
static void test_newest_and_history(void **state)
{
	struct retain_file files[16];
	struct retain_policy p = { .keep_ms = 1 };
	struct retain_plan plan;
	size_t n = make_files(files, 4);

	(void)state;
	for (size_t i = 0; i < n; i++)
		files[i].stored_ms = NOW_MS - 1000 * MIN_MS;
	retain_select(files, n, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan);
	assert_int_equal(plan.remove, 3);
	assert_string_equal(files[3].name, "000000010000000000000004");
	assert_string_equal(files[4].name, "00000002.history");
	assert_int_equal(plan.kept, 2);
}

/* A name out of range for the segment size (a stray file, another cluster's size) has no
 * position: it sorts after every segment and stays, and the newest real segment stays
 * too: the stray file is not taken for the newest. */
static void test_unknown_position_not_newest(void **state)
{
	struct retain_file files[16];
	struct retain_policy p = { .keep_ms = 1 };
	struct retain_plan plan;
	size_t n = make_files(files, 4);

	(void)state;
	/* segment 0x100 of log 0: past the 256 segments of 16 MiB a log holds */
	snprintf(files[n].name, sizeof(files[n].name), "000000010000000000000100");
	files[n].size = SEG;
	n++;
	for (size_t i = 0; i < n; i++)
		files[i].stored_ms = NOW_MS - 1000 * MIN_MS;
	assert_int_equal(retain_select(files, n, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan), 0);
	assert_int_equal(plan.remove, 3); /* 1..3 go: 4, the newest, stays */
	assert_string_equal(files[3].name, "000000010000000000000004");
	assert_string_equal(files[4].name, "000000010000000000000100");
	assert_int_equal(plan.kept, 3);
	/* only strays: none is removed */
	n = 0;
	snprintf(files[n++].name, sizeof(files[0].name), "000000010000000000000100");
	snprintf(files[n++].name, sizeof(files[0].name), "000000010000000000000200");
	files[0].stored_ms = files[1].stored_ms = 0;
	assert_int_equal(retain_select(files, n, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan), 0);
	assert_int_equal(plan.remove, 0);
}

/* Removal is a prefix: a young file stops the walk, older-looking files after it stay. */
static void test_prefix_and_timelines(void **state)
{
	struct retain_file files[8] = {
		{ .name = "000000020000000000000003", .size = SEG, .stored_ms = 0 },
		{ .name = "000000010000000000000003.partial", .size = SEG, .stored_ms = 0 },
		{ .name = "000000010000000000000002", .size = SEG, .stored_ms = NOW_MS },
		{ .name = "000000010000000000000001", .size = SEG, .stored_ms = 0 },
		{ .name = "000000020000000000000004", .size = SEG, .stored_ms = 0 },
		{ .name = "000000010000000000000001.00000028.backup", .size = 300, .stored_ms = 0 },
	};
	struct retain_policy p = { .keep_ms = MIN_MS };
	struct retain_plan plan;

	(void)state;
	assert_int_equal(retain_select(files, 6, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan), 0);
	assert_string_equal(files[0].name, "000000010000000000000001");
	assert_string_equal(files[1].name, "000000010000000000000001.00000028.backup");
	assert_string_equal(files[2].name, "000000010000000000000002");
	assert_string_equal(files[3].name, "000000010000000000000003.partial");
	assert_string_equal(files[4].name, "000000020000000000000003");
	assert_int_equal(plan.remove, 2); /* segment 2 is young: nothing after it goes */
	assert_int_equal(plan.remove_bytes, SEG + 300);
	/* an unparseable name is the caller's error */
	snprintf(files[0].name, sizeof(files[0].name), "junk");
	assert_int_equal(retain_select(files, 6, SEG, RETAIN_NO_FLOOR, &p, NOW_MS, &plan), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_off_keeps_everything),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_floor),
		cmocka_unit_test(test_newest_and_history),
		cmocka_unit_test(test_unknown_position_not_newest),
		cmocka_unit_test(test_prefix_and_timelines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
