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

/*
 * A full-page image with a hole in WAL of PostgreSQL 14 (page magic 0xD10D), whose
 * block image flags differ from 15's: 0x04 was BKPIMAGE_APPLY then, compressed 0x02.  The
 * record is walked right (the build before read 0x04 as compressed, took two bytes too
 * many, called the record damaged and skipped the rest of the segment, the commit after
 * it too); the same bits in 15's WAL mean compressed (lz4), and a hole length follows.
 */
static void test_block_image_before_15(void **state)
{
	/* block 0: fork flags HAS_IMAGE (0x10), 0 bytes of block data; the image: 8 bytes,
	 * hole at 4, bimg_info HAS_HOLE | 0x04; RelFileNode (12), block number (4); then
	 * main data of 2 bytes; then the image's 8 bytes and the main data */
	uint8_t body[64];
	uint32_t n = 0;
	uint64_t lsn;
	struct wal_decoder d;
	struct seen s;

	(void)state;
	for (int v = 14; v <= 15; v++) {
		n = 0;
		body[n++] = 0; /* block id */
		body[n++] = 0x10; /* BKPBLOCK_HAS_IMAGE */
		wb_le(body + n, 0, 2);
		n += 2;
		wb_le(body + n, 8, 2); /* image length */
		wb_le(body + n + 2, 4, 2); /* hole offset */
		body[n + 4] = 0x01 | 0x04;
		n += 5;
		if (v == 15) {
			wb_le(body + n, 8192 - 8, 2); /* hole length: compressed in 15 */
			n += 2;
		}
		memset(body + n, 0, 12 + 4);
		n += 12 + 4;
		body[n++] = 255; /* main data, short */
		body[n++] = 2;
		memset(body + n, 0x5a, 8 + 2);
		n += 8 + 2;
		memset(seg, 0, sizeof(seg));
		wb.pos = 0;
		wb.prev_lsn = 0;
		wb.magic = v == 14 ? 0xD10D : 0;
		wb_page_header(&wb, 0);
		wb_record_body(&wb, 10, 0x00, body, n);
		lsn = put_xact(0x00, 5000);
		wb.pos = SEG; /* the second segment, empty */
		wb_page_header(&wb, 0);
		decode(&s, sizeof(seg), &d);
		if (d.errors)
			print_message("PostgreSQL %d: %s\n", v, d.message);
		assert_int_equal(d.errors, 0);
		assert_int_equal(s.n, 1);
		assert_int_equal(s.x[0].lsn, lsn);
		wal_decoder_end(&d);
	}
	wb.magic = 0;
	build(NULL); /* (the WAL of the other tests again) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transaction_ends),
		cmocka_unit_test(test_damage_skips_to_next_segment),
		cmocka_unit_test(test_feed_contract),
		cmocka_unit_test(test_block_image_before_15),
	};

	return cmocka_run_group_tests(tests, build, NULL);
}
