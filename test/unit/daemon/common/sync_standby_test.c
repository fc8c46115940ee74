// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/sync_standby.c: synchronous_standby_names in each of the
 * server's forms, what the server refuses, and the name match (case, `*`).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/sync_standby.h"

static const struct {
	const char *text;
	int ret;
	enum sync_standby_method method;
	int num_sync;
	const char *names; /* the names joined with '|' */
} cases[] = {
	{ "", 0, SYNC_STANDBY_FIRST, 0, "" },
	{ "  \t ", 0, SYNC_STANDBY_FIRST, 0, "" },
	{ "walship", 0, SYNC_STANDBY_FIRST, 1, "walship" },
	{ "s1, s2,s3", 0, SYNC_STANDBY_FIRST, 1, "s1|s2|s3" },
	{ "*", 0, SYNC_STANDBY_FIRST, 1, "*" },
	{ "2 (s1, s2, s3)", 0, SYNC_STANDBY_FIRST, 2, "s1|s2|s3" },
	{ "FIRST 2 (s1, \"s 2\")", 0, SYNC_STANDBY_FIRST, 2, "s1|s 2" },
	{ "first 1(a)", 0, SYNC_STANDBY_FIRST, 1, "a" },
	{ "ANY 2 (a, b, *)", 0, SYNC_STANDBY_ANY, 2, "a|b|*" },
	{ "any 3 (\"Any\", \"first\", \"a\"\"b\")", 0, SYNC_STANDBY_ANY, 3, "Any|first|a\"b" },
	{ "1, s2", 0, SYNC_STANDBY_FIRST, 1, "1|s2" },
	{ "42", 0, SYNC_STANDBY_FIRST, 1, "42" },
	{ "2 (1, 2)", 0, SYNC_STANDBY_FIRST, 2, "1|2" },
	{ "anything, firstly", 0, SYNC_STANDBY_FIRST, 1, "anything|firstly" },
	{ "w$1, _x", 0, SYNC_STANDBY_FIRST, 1, "w$1|_x" },
	{ "0 (a)", -EINVAL, 0, 0, NULL },
	{ "ANY (a)", -EINVAL, 0, 0, NULL },
	{ "ANY 1", -EINVAL, 0, 0, NULL },
	{ "FIRST 1", -EINVAL, 0, 0, NULL },
	{ "any", -EINVAL, 0, 0, NULL },
	{ "a,", -EINVAL, 0, 0, NULL },
	{ ",a", -EINVAL, 0, 0, NULL },
	{ "a b", -EINVAL, 0, 0, NULL },
	{ "2 (a, b", -EINVAL, 0, 0, NULL },
	{ "2 (a) b", -EINVAL, 0, 0, NULL },
	{ "\"unterminated", -EINVAL, 0, 0, NULL },
	{ "a-b", -EINVAL, 0, 0, NULL },
	{ "$a", -EINVAL, 0, 0, NULL },
	{ "2 ()", -EINVAL, 0, 0, NULL },
};

static void test_parse(void **state)
{
	struct sync_standby ss;

	(void)state;
	for (size_t idx = 0; idx < sizeof(cases) / sizeof(cases[0]); idx++) {
		char joined[1024] = "";
		int ret = sync_standby_parse(cases[idx].text, &ss);

		if (ret != cases[idx].ret)
			fail_msg("\"%s\": %d, expected %d", cases[idx].text, ret, cases[idx].ret);
		if (ret < 0)
			continue;
		for (unsigned int n = 0; n < ss.nnames; n++) {
			if (n)
				strcat(joined, "|");
			strcat(joined, ss.names[n]);
		}
		if (ss.method != cases[idx].method || ss.num_sync != cases[idx].num_sync ||
		    strcmp(joined, cases[idx].names) != 0)
			fail_msg("\"%s\": method %d num_sync %d names \"%s\"", cases[idx].text,
				 ss.method, ss.num_sync, joined);
	}
}

static void test_limits(void **state)
{
	char text[SYNC_STANDBY_MAX_NAMES * 4 + 16], name[SYNC_STANDBY_NAME_MAX + 8];
	struct sync_standby ss;
	size_t len = 0;

	(void)state;
	for (int idx = 0; idx < SYNC_STANDBY_MAX_NAMES; idx++)
		len += (size_t)sprintf(text + len, "%sa%d", idx ? "," : "", idx % 10);
	assert_int_equal(sync_standby_parse(text, &ss), 0);
	assert_int_equal(ss.nnames, SYNC_STANDBY_MAX_NAMES);
	strcat(text, ",b");
	assert_int_equal(sync_standby_parse(text, &ss), -E2BIG);

	memset(name, 'n', SYNC_STANDBY_NAME_MAX - 1);
	name[SYNC_STANDBY_NAME_MAX - 1] = '\0';
	assert_int_equal(sync_standby_parse(name, &ss), 0);
	strcat(name, "n");
	assert_int_equal(sync_standby_parse(name, &ss), -E2BIG);
}

static void test_match(void **state)
{
	struct sync_standby ss;

	(void)state;
	assert_int_equal(sync_standby_parse("FIRST 1 (s1, \"WalShip\")", &ss), 0);
	assert_true(sync_standby_names_match(&ss, "walship"));
	assert_true(sync_standby_names_match(&ss, "S1"));
	assert_false(sync_standby_names_match(&ss, "walship2"));
	assert_int_equal(sync_standby_parse("ANY 1 (a, *)", &ss), 0);
	assert_true(sync_standby_names_match(&ss, "anyone"));
	assert_int_equal(sync_standby_parse("", &ss), 0);
	assert_false(sync_standby_names_match(&ss, "walship"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
