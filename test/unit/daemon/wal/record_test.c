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

#include "common/crc32c.h"
#include "wal/record.h"

#define SEG (64u * 1024u)
#define BLOCK 8192u
#define START ((uint64_t)3 * SEG)

static uint8_t seg[2 * SEG];
static uint64_t pos; /* offset in seg[] of the next byte written */
static uint64_t prev_lsn;

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void page_header(uint32_t rem)
{
	uint8_t *h = seg + pos;
	bool is_long = pos % SEG == 0;

	put_le(h, 0xD110, 2);
	put_le(h + 2, (rem ? XLP_FIRST_IS_CONTRECORD : 0) | (is_long ? XLP_LONG_HEADER : 0), 2);
	put_le(h + 4, 1, 4);
	put_le(h + 8, START + pos, 8);
	put_le(h + 16, rem, 4);
	if (is_long) {
		put_le(h + 24, 42, 8);
		put_le(h + 32, SEG, 4);
		put_le(h + 36, BLOCK, 4);
	}
	pos += is_long ? WAL_PAGE_LONG_HEADER : WAL_PAGE_SHORT_HEADER;
}

/* Write a record of rmgr @rmid, @info, main data @data (@len bytes); returns its LSN. */
static uint64_t put_record(uint8_t rmid, uint8_t info, const uint8_t *data, uint32_t len)
{
	static uint8_t rec[3 * BLOCK];
	uint32_t tot, off = WAL_RECORD_HEADER, written = 0, crc;
	uint64_t lsn;

	if (len < 256) {
		rec[off++] = 255;
		rec[off++] = (uint8_t)len;
	} else {
		rec[off++] = 254;
		put_le(rec + off, len, 4);
		off += 4;
	}
	memcpy(rec + off, data, len);
	tot = off + len;
	put_le(rec, tot, 4);
	put_le(rec + 4, 700, 4);
	put_le(rec + 8, prev_lsn, 8);
	rec[16] = info;
	rec[17] = rmid;
	rec[18] = rec[19] = 0;
	crc = crc32c(0, rec + WAL_RECORD_HEADER, tot - WAL_RECORD_HEADER);
	crc = crc32c(crc, rec, 20);
	put_le(rec + 20, crc, 4);

	pos = (pos + 7) & ~(uint64_t)7;
	if (pos % BLOCK == 0)
		page_header(0);
	lsn = START + pos;
	while (written < tot) {
		uint32_t n;

		if (pos % BLOCK == 0)
			page_header(tot - written);
		n = BLOCK - pos % BLOCK;
		if (n > tot - written)
			n = tot - written;
		memcpy(seg + pos, rec + written, n);
		pos += n;
		written += n;
	}
	prev_lsn = lsn;
	return lsn;
}

static uint64_t put_xact(uint8_t info, int64_t time)
{
	uint8_t body[8];

	put_le(body, (uint64_t)time, 8);
	return put_record(1, info, body, sizeof(body));
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
	pos = 0;
	prev_lsn = 0;
	page_header(0);
	c1 = put_xact(0x00, 1000);
	memset(filler, 0xab, sizeof(filler));
	big = put_record(10, 0x00, filler, sizeof(filler) - 100); /* crosses two pages */
	a1 = put_xact(0x20, 2000);
	c2 = put_xact(0x30, 3000); /* COMMIT_PREPARED */
	pos = SEG; /* the second segment */
	page_header(0);
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
