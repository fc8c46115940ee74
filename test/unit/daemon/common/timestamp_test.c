// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/timestamp.c: the forms PostgreSQL prints and ISO 8601, the
 * zone names UTC and GMT and no other, and every field out of its range refused (timegm()
 * alone would move it on silently).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/compiler.h"
#include "common/timestamp.h"

/* 2026-12-02 21:10:00 UTC */
#define T0 INT64_C(1796245800)

static void test_accepted(void **state)
{
	static const struct {
		const char *text;
		int64_t unix_us;
	} cases[] = {
		{ "2026-12-02 21:10:00", T0 * 1000000 },
		{ "2026-12-02T21:10:00Z", T0 * 1000000 },
		{ "2026-12-02 21:10:00.123456+00", T0 * 1000000 + 123456 },
		{ "2026-12-02 21:10:00.5", T0 * 1000000 + 500000 },
		{ "2026-12-02 21:10:00.1234567", T0 * 1000000 + 123456 },
		{ "2026-12-02 22:10:00+01", T0 * 1000000 },
		{ "2026-12-03 02:40:00+05:30", T0 * 1000000 },
		{ "2026-12-02 15:40:00-0530", T0 * 1000000 },
		{ "2024-02-29 00:00:00", INT64_C(1709164800) * 1000000 },
		{ "2026-12-02 21:09:60", T0 * 1000000 }, /* a leap second: the next minute */
		/* pg_waldump with TZ=UTC, PostgreSQL's log with log_timezone = UTC */
		{ "2026-12-02 21:10:00.123456 UTC", T0 * 1000000 + 123456 },
		{ "2026-12-02 21:10:00 GMT", T0 * 1000000 },
		{ "2026-12-02T21:10:00 utc", T0 * 1000000 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t us = -1;

		print_message("%s\n", cases[i].text);
		assert_int_equal(timestamp_parse(cases[i].text, &us), 0);
		assert_int_equal(us, cases[i].unix_us);
	}
}

static void test_refused(void **state)
{
	static const char *const cases[] = {
		"",
		"2026-12-02",
		"2026-12-02 21:10",
		"2026-12-02 21:70:00", /* timegm() would make it 22:10 */
		"2026-12-02 24:00:00",
		"2026-12-02 21:10:61",
		"2026-02-31 00:00:00", /* ...3 March */
		"2026-02-29 00:00:00", /* not a leap year */
		"2026-13-01 00:00:00",
		"2026-00-01 00:00:00",
		"2026-12-00 00:00:00",
		"2026-12--1 00:00:00", /* a sign where a digit belongs */
		"2026-12- 1 00:00:00",
		"2026-1-02 21:10:00",
		"26-12-02 21:10:00",
		"2026-12-02 21:10:00.",
		"2026-12-02 21:10:00+16",
		"2026-12-02 21:10:00+05:60",
		"2026-12-02 21:10:00+05:",
		"2026-12-02 21:10:00+5",
		/* local time as pg_waldump prints it: no other name is known */
		"2026-12-02 22:10:00.123456 CET",
		"2026-12-02 16:10:00 EST",
		"2026-12-02 21:10:00 Europe/Paris",
		"2026-12-02 21:10:00 UTCX",
		"2026-12-02 21:10:00 UT",
		"2026-12-02 21:10:00UTC", /* the space is part of the form */
		"2026-12-02 21:10:00  UTC",
		"2026-12-02 21:10:00 UTC ",
		"2026-12-02 21:10:00+00 UTC", /* one zone at most */
		"2026-12-02 21:10:00Z GMT",
		"2026-12-02 21:10:00 ",
		"2026-12-02x21:10:00",
		"2026-12-02 21:10:00Zx",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t us = 42;

		print_message("\"%s\"\n", cases[i]);
		assert_int_equal(timestamp_parse(cases[i], &us), -EINVAL);
		assert_int_equal(us, 42);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
