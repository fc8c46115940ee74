// SPDX-License-Identifier: MIT
/* Unit tests for daemon/wal/identity.c: the cluster identity's one on-disk form. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/compiler.h"
#include "wal/identity.h"

static void test_round_trip(void **state)
{
	const struct wal_identity id = { .system_identifier = 7713288329218603033ull,
					 .page_magic = 0xD113,
					 .seg_size = 16u << 20,
					 .block_size = 8192,
					 .timeline = 3 };
	struct wal_identity back;
	char buf[WAL_IDENTITY_TEXT_MAX];
	size_t len;

	(void)state;
	len = wal_identity_format(&id, buf, sizeof(buf));
	assert_string_equal(buf, "7713288329218603033 D113 16777216 8192\n");
	assert_int_equal(len, strlen(buf));
	assert_int_equal(wal_identity_parse(buf, &back), 0);
	assert_true(back.system_identifier == id.system_identifier);
	assert_int_equal(back.page_magic, 0xD113);
	assert_int_equal(back.seg_size, 16u << 20);
	assert_int_equal(back.block_size, 8192);
	assert_int_equal(back.timeline, 0); /* not recorded */
}

/* What stores and spools wrote before the form was shared. */
static void test_older_forms(void **state)
{
	struct wal_identity id;

	(void)state;
	/* A store's first form: the system identifier alone. */
	assert_int_equal(wal_identity_parse("7713288329218603033\n", &id), 0);
	assert_true(id.system_identifier == 7713288329218603033ull);
	assert_int_equal(id.page_magic, 0);
	assert_int_equal(id.seg_size, 0);
	/* A spool's: the magic in decimal (53523 = 0xD113). */
	assert_int_equal(wal_identity_parse("42 53523 16777216 8192\n", &id), 0);
	assert_int_equal(id.page_magic, 0xD113);
	assert_int_equal(id.block_size, 8192);
	/* Lower-case hexadecimal and no final newline are read too. */
	assert_int_equal(wal_identity_parse("42 d110 1048576 8192", &id), 0);
	assert_int_equal(id.page_magic, 0xD110);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		"0 D113 16777216 8192\n", /* no system identifier */
		"0\n",
		"-5 D113 16777216 8192\n",
		"abc D113 16777216 8192\n",
		"42 XYZW 16777216 8192\n",
		"42 70000 16777216 8192\n", /* magic out of range */
		"42 D113 16777216\n",
		"42 D113 16777216 8192 9\n",
		"42 D113 16777216 8192\nmore",
	};
	struct wal_identity id;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		id.system_identifier = 1;
		if (wal_identity_parse(bad[i], &id) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(id.system_identifier == 0);
	}
}

/* A store's identity against a segment's first page: every field the store knows. */
static void test_mismatch(void **state)
{
	const struct wal_identity seg = { .system_identifier = 42,
					  .page_magic = 0xD110,
					  .seg_size = 16u << 20,
					  .block_size = 8192,
					  .timeline = 2 };
	struct wal_identity known = { 0 }, other;

	(void)state;
	/* Nothing known (an empty store): anything is of it, and it learns everything. */
	assert_int_equal(wal_identity_mismatch(&known, &seg), WAL_IDENTITY_SAME);
	assert_true(wal_identity_completes(&known, &seg));
	known = seg;
	known.timeline = 0; /* not part of the cluster's identity */
	assert_int_equal(wal_identity_mismatch(&known, &seg), WAL_IDENTITY_SAME);
	assert_false(wal_identity_completes(&known, &seg));

	other = seg;
	other.system_identifier = 43;
	other.page_magic = 0xD113;
	assert_int_equal(wal_identity_mismatch(&known, &other), WAL_IDENTITY_SYSTEM);
	other.system_identifier = 42;
	assert_int_equal(wal_identity_mismatch(&known, &other), WAL_IDENTITY_VERSION);
	/* The same system with another segment size: pg_resetwal --wal-segsize keeps the
	 * system identifier, and a store must not mix segments of two sizes. */
	other = seg;
	other.seg_size = 64u << 20;
	assert_int_equal(wal_identity_mismatch(&known, &other), WAL_IDENTITY_SEG_SIZE);
	other = seg;
	other.block_size = 16384;
	assert_int_equal(wal_identity_mismatch(&known, &other), WAL_IDENTITY_BLOCK_SIZE);

	/* A store's first form, the system identifier alone: what it lacks is learned. */
	memset(&known, 0, sizeof(known));
	known.system_identifier = 42;
	assert_int_equal(wal_identity_mismatch(&known, &seg), WAL_IDENTITY_SAME);
	assert_true(wal_identity_completes(&known, &seg));
	known.page_magic = 0xD110;
	known.seg_size = 16u << 20;
	assert_true(wal_identity_completes(&known, &seg)); /* the block size */
	known.block_size = 8192;
	assert_false(wal_identity_completes(&known, &seg));
}

/* What a refusal says: the field that differs, both values, and who holds what. */
static void test_explain(void **state)
{
	const struct wal_identity known = { .system_identifier = 42,
					    .page_magic = 0xD110,
					    .seg_size = 16u << 20,
					    .block_size = 8192 };
	struct wal_identity seen = known;
	char why[256] = "stale";

	(void)state;
	assert_int_equal(
		wal_identity_explain(&known, &seen, "N", "replica holds", why, sizeof(why)),
		WAL_IDENTITY_SAME);
	assert_string_equal(why, "");
	seen.system_identifier = 43;
	assert_int_equal(
		wal_identity_explain(&known, &seen, "N", "replica holds", why, sizeof(why)),
		WAL_IDENTITY_SYSTEM);
	assert_string_equal(why,
			    "WAL segment \"N\" belongs to system 43, this replica holds system 42");
	seen = known;
	seen.page_magic = 0xD113;
	assert_int_equal(
		wal_identity_explain(&known, &seen, "N", "primary ships", why, sizeof(why)),
		WAL_IDENTITY_VERSION);
	assert_string_equal(why, "WAL segment \"N\" is of PostgreSQL 16, this primary ships WAL "
				 "of PostgreSQL 15");
	seen = known;
	seen.seg_size = 64u << 20;
	assert_int_equal(
		wal_identity_explain(&known, &seen, "N", "primary ships", why, sizeof(why)),
		WAL_IDENTITY_SEG_SIZE);
	assert_string_equal(why, "WAL segment \"N\" has segment size 67108864, this primary "
				 "ships segments of 16777216 bytes");
	seen = known;
	seen.block_size = 16384;
	assert_int_equal(
		wal_identity_explain(&known, &seen, "N", "replica holds", why, sizeof(why)),
		WAL_IDENTITY_BLOCK_SIZE);
	assert_string_equal(why, "WAL segment \"N\" has WAL block size 16384, this replica holds "
				 "WAL of block size 8192");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_older_forms),
		cmocka_unit_test(test_refused),	   cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_explain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
