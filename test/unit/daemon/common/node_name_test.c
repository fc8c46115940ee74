// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/node_name.c and the rule it shares with walship.ko
 * (include/walship/node_name.h): one table of cases, run through the daemon's
 * node_name_valid() and through walship_node_name_valid(), the function the module calls,
 * so the two cannot drift apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <walship/node_name.h>

#include "common/compiler.h"
#include "common/node_name.h"

#define NAME_63 "a23456789012345678901234567890123456789012345678901234567890123"

static const struct {
	const char *name;
	bool valid;
} name_cases[] = {
	{ "a", true },
	{ "r2", true },
	{ "Replica_1.dc-2", true },
	{ "0", true },
	{ "_", true },
	{ "-", true },
	{ "r2.", true },
	{ "r..2", true },
	{ NAME_63, true },
	{ NAME_63 "4", false }, /* 64 characters */
	{ "", false },
	{ ".", false },
	{ "..", false },
	{ ".r2", false },
	{ "...", false },
	{ "a b", false },
	{ "a/b", false },
	{ "../r2", false },
	{ "r2/", false },
	{ "tab\t", false },
	{ "r\xc3\xa9plica", false },
	{ "r2\n", false },
	{ "r:2", false },
	{ "r,2", false },
	{ "r#2", false },
};

static void test_rule_table(void **state)
{
	(void)state;
	for (size_t idx = 0; idx < ARRAY_SIZE(name_cases); idx++) {
		const char *name = name_cases[idx].name;

		if (node_name_valid(name) != name_cases[idx].valid)
			fail_msg("node_name_valid(\"%s\") is not %d", name, name_cases[idx].valid);
		if (walship_node_name_valid(name) != name_cases[idx].valid)
			fail_msg("walship_node_name_valid(\"%s\") (walship.ko) is not %d", name,
				 name_cases[idx].valid);
	}
	assert_false(node_name_valid(NULL));
	assert_false(walship_node_name_valid(NULL));
}

/* A name longer than any buffer is refused without reading past the bound plus one. */
static void test_long_name(void **state)
{
	char name[4096];

	(void)state;
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_false(node_name_valid(name));
	name[WALSHIP_NODE_NAME_MAX] = '\0';
	assert_true(node_name_valid(name));
}

static void test_from_text(void **state)
{
	static const struct {
		const char *text;
		const char *name;
	} cases[] = {
		{ "db1", "db1" },	    { "db1.example.com", "db1.example.com" },
		{ ".hidden", "_hidden" },   { "..", "_." },
		{ "a b/c", "a_b_c" },	    { "", "" },
		{ NAME_63 "456", NAME_63 },
	};
	char buf[64], small[4];

	(void)state;
	for (size_t idx = 0; idx < ARRAY_SIZE(cases); idx++) {
		node_name_from_text(cases[idx].text, buf, sizeof(buf));
		assert_string_equal(buf, cases[idx].name);
		assert_true(!buf[0] || node_name_valid(buf));
	}
	node_name_from_text("abcdef", small, sizeof(small));
	assert_string_equal(small, "abc");
}

/* Messages say the rule with its bound. */
static void test_rule_words(void **state)
{
	(void)state;
	assert_string_equal(
		WALSHIP_NODE_NAME_RULE,
		"1 to 63 letters, digits, \"_\", \".\" or \"-\", not starting with \".\"");
}

/*
 * walship.ko cannot be built or loaded by the unit tests: check that its source applies
 * the shared rule (the function tested above) and keeps no copy of its own.
 */
static void test_module_uses_rule(void **state)
{
	FILE *f = fopen("kmod/walship.c", "r");
	static char text[1 << 17];
	size_t len;

	(void)state;
	assert_non_null(f);
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	assert_true(len > 0 && len < sizeof(text) - 1);
	text[len] = '\0';
	assert_non_null(strstr(text, "#include <walship/node_name.h>"));
	assert_non_null(strstr(text, "walship_node_name_valid("));
	assert_null(strstr(text, "isalnum("));
	assert_null(strstr(text, "_name_valid(const char"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_table),	 cmocka_unit_test(test_long_name),
		cmocka_unit_test(test_from_text),	 cmocka_unit_test(test_rule_words),
		cmocka_unit_test(test_module_uses_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
