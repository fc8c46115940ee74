// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/wal/record.c on WAL built in memory with PostgreSQL 15's layout
 * (real WAL is compared with pg_waldump by test/system/t_99e_wal_record.sh): a commit, a
 * record longer than a page (continued after the next page header), an abort, a commit
 * after it; fed whole and byte by byte; a damaged record skips to the next segment.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wal/record.h"
#include "wal_records.h"

#define SEG (64u * 1024u)
#define BLOCK 8192u
#define START ((uint64_t)3 * SEG)

static uint8_t seg[2 * SEG];
static struct wal_build wb = { .buf = seg, .start = START, .seg_size = SEG, .block = BLOCK };

static uint64_t put_record(uint8_t rmid, uint8_t info, const uint8_t *data, uint32_t len)
{
	return wb_record(&wb, rmid, info, data, len);
}

static uint64_t put_xact(uint8_t info, int64_t time)
{
	return wb_xact(&wb, info, time);
}

struct seen {
	struct wal_xact_end x[8];
	unsigned int n;
};

static void note(void *arg, const struct wal_xact_end *x)
{
	struct seen *s = arg;

	if (s->n < 8)
		s->x[s->n++] = *x;
}

static uint64_t c1, big, a1, c2, c3;

static int build(void **state)
{
	static uint8_t filler[2 * BLOCK];

	(void)state;
	memset(seg, 0, sizeof(seg));
	wb.pos = 0;
	wb.prev_lsn = 0;
	wb_page_header(&wb, 0);
	c1 = put_xact(0x00, 1000);
	memset(filler, 0xab, sizeof(filler));
	big = put_record(10, 0x00, filler, sizeof(filler) - 100); /* crosses two pages */
	a1 = put_xact(0x20, 2000);
	c2 = put_xact(0x30, 3000); /* COMMIT_PREPARED */
	wb.pos = SEG; /* the second segment */
	wb_page_header(&wb, 0);
	c3 = put_xact(0x00, 4000);
	return 0;
}

static void decode(struct seen *s, size_t step, struct wal_decoder *d)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(wal_decoder_begin(d, SEG, BLOCK, START, note, s), 0);
	for (size_t off = 0; off < sizeof(seg); off += step) {
		size_t n = sizeof(seg) - off < step ? sizeof(seg) - off : step;

		assert_int_equal(wal_decoder_feed(d, START + off, seg + off, n), 0);
	}
}

static void test_transaction_ends(void **state)
{
	static const size_t steps[] = { sizeof(seg), BLOCK, 1, 7, 4099 };

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct wal_decoder d;
		struct seen s;

		decode(&s, steps[i], &d);
		assert_int_equal(d.errors, 0);
		assert_int_equal(d.records, 5);
		assert_int_equal(s.n, 4);
		assert_int_equal(s.x[0].lsn, c1);
		assert_int_equal(s.x[0].kind, WAL_XACT_COMMIT);
		assert_int_equal(s.x[0].xact_time, 1000);
		assert_int_equal(s.x[0].end_lsn, c1 + WAL_RECORD_HEADER + 2 + 8);
		assert_int_equal(s.x[1].lsn, a1);
		assert_int_equal(s.x[1].kind, WAL_XACT_ABORT);
		assert_int_equal(s.x[2].lsn, c2);
		assert_int_equal(s.x[2].kind, WAL_XACT_COMMIT_PREPARED);
		assert_int_equal(s.x[2].xact_time, 3000);
		assert_int_equal(s.x[3].lsn, c3);
		assert_int_equal(s.x[3].xact_time, 4000);
		wal_decoder_end(&d);
	}
}

static void test_damage_skips_to_next_segment(void **state)
{
	struct wal_decoder d;
	struct seen s;

	(void)state;
	seg[big - START + 3 * BLOCK / 2] ^= 1; /* inside the long record, on its second page */
	decode(&s, 1000, &d);
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.message, "incorrect resource manager data checksum"));
	assert_int_equal(s.n, 2); /* c1, then c3 in the next segment */
	assert_int_equal(s.x[0].lsn, c1);
	assert_int_equal(s.x[1].lsn, c3);
	wal_decoder_end(&d);
	seg[big - START + 3 * BLOCK / 2] ^= 1;
}

static void test_feed_contract(void **state)
{
	struct wal_decoder d;

	(void)state;
	assert_int_equal(wal_decoder_begin(&d, SEG, BLOCK, START + 8, NULL, NULL), -EINVAL);
	assert_int_equal(wal_decoder_begin(&d, SEG, 1000, START, NULL, NULL), -EINVAL);
	assert_int_equal(wal_decoder_begin(&d, SEG, BLOCK, START, NULL, NULL), 0);
	assert_int_equal(wal_decoder_feed(&d, START + 1, seg, 1), -EINVAL);
	assert_int_equal(wal_decoder_feed(&d, START, seg, 100), 0);
	assert_int_equal(d.next_lsn, START + 100);
	wal_decoder_end(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transaction_ends),
		cmocka_unit_test(test_damage_skips_to_next_segment),
		cmocka_unit_test(test_feed_contract),
	};

	return cmocka_run_group_tests(tests, build, NULL);
}
