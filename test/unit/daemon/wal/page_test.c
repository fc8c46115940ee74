// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/wal/page.c, on synthetic segments built in memory with the
 * layout PostgreSQL 15 writes (test/unit/wal_segment.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/compiler.h"
#include "wal/page.h"
#include "wal_segment.h"

/* Validate @seg of @size under @name fed in pieces of @piece bytes (0: whole). */
static int validate(const char *name, const uint8_t *seg, uint64_t size, size_t piece,
		    uint64_t sysid, struct wal_validator *wv, struct wal_identity *id)
{
	struct wal_name parsed;
	uint64_t off = 0;
	int ret;

	assert_int_equal(wal_name_parse(name, &parsed), 0);
	ret = wal_validator_begin(wv, &parsed, size, sysid);
	if (ret)
		return ret;
	if (piece == 0)
		piece = size;
	while (off < size) {
		size_t len = size - off < piece ? (size_t)(size - off) : piece;

		ret = wal_validator_feed(wv, seg + off, len);
		if (ret)
			return ret;
		off += len;
	}
	return wal_validator_end(wv, id);
}

#define SEG3 "000000010000000000000003"

static void test_valid_with_zero_tail(void **state)
{
	struct wal_validator wv;
	struct wal_identity id;
	uint8_t *seg = build_segment(&default_spec);

	(void)state;
	assert_int_equal(validate(SEG3, seg, MB, 0, SYSID, &wv, &id), 0);
	assert_true(id.system_identifier == SYSID);
	assert_int_equal(id.page_magic, PG15_MAGIC);
	assert_int_equal(id.seg_size, MB);
	assert_int_equal(id.block_size, 8192);
	assert_int_equal(id.timeline, 1);
	assert_int_equal(wv.valid_pages, 40);
	assert_true(wv.in_tail);
	/* Any system identifier when none is expected. */
	assert_int_equal(validate(SEG3, seg, MB, 0, 0, &wv, &id), 0);
	free(seg);
}

static void test_valid_full(void **state)
{
	struct seg_spec spec = default_spec;
	struct wal_validator wv;
	struct wal_identity id;
	uint8_t *seg;

	(void)state;
	spec.valid_pages = MB / 8192;
	seg = build_segment(&spec);
	assert_int_equal(validate(SEG3, seg, MB, 0, SYSID, &wv, &id), 0);
	assert_int_equal(wv.valid_pages, MB / 8192);
	assert_false(wv.in_tail);
	free(seg);
}

static void test_valid_16mb(void **state)
{
	struct seg_spec spec = default_spec;
	struct wal_validator wv;
	struct wal_identity id;
	uint8_t *seg;

	(void)state;
	spec.seg_size = 16 * MB;
	spec.segno = 0x1FF;
	spec.valid_pages = 1000;
	spec.tli = 2;
	seg = build_segment(&spec);
	assert_int_equal(validate("0000000300000001000000FF", seg, 16 * MB, 0, SYSID, &wv, &id), 0);
	assert_int_equal(id.seg_size, 16 * MB);
	assert_int_equal(id.timeline, 2);
	/* Same bytes as a .partial. */
	assert_int_equal(
		validate("0000000200000001000000FF.partial", seg, 16 * MB, 65536, SYSID, &wv, &id),
		0);
	free(seg);
}

static void test_block_sizes(void **state)
{
	static const uint32_t sizes[] = { 1024, 2048, 4096, 8192, 16384, 32768, 65536 };

	(void)state;
	for (size_t idx = 0; idx < ARRAY_SIZE(sizes); idx++) {
		struct seg_spec spec = default_spec;
		struct wal_validator wv;
		struct wal_identity id;
		uint8_t *seg;

		spec.block_size = sizes[idx];
		spec.valid_pages = 5;
		seg = build_segment(&spec);
		assert_int_equal(validate(SEG3, seg, MB, 3000, SYSID, &wv, &id), 0);
		assert_int_equal(id.block_size, sizes[idx]);
		assert_int_equal(wv.valid_pages, 5);
		free(seg);
	}
}

static void expect_error(const char *name, const uint8_t *seg, uint64_t size, uint64_t sysid,
			 const char *message)
{
	struct wal_validator wv;

	assert_int_equal(validate(name, seg, size, 0, sysid, &wv, NULL), -EINVAL);
	if (strstr(wv.message, message) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", wv.message, message);
}

static void test_stale_tail(void **state)
{
	struct wal_validator wv;
	uint8_t *seg = build_segment(&default_spec);

	(void)state;
	/* A recycled file: page 40 is stale content of segment 1, then zeros. */
	put_header(seg + 40 * 8192, PG15_MAGIC, 0, 1, 1 * MB + 40 * 8192);
	memset(seg + 40 * 8192 + 24, 0x77, 8192 - 24);
	assert_int_equal(validate(SEG3, seg, MB, 0, SYSID, &wv, NULL), 0);
	assert_int_equal(wv.valid_pages, 40);

	/* Stale pages all the way to the end are fine too. */
	for (uint32_t page = 40; page < MB / 8192; page++)
		put_header(seg + page * 8192, PG15_MAGIC, 0, 1, 1 * MB + page * 8192);
	assert_int_equal(validate(SEG3, seg, MB, 0, SYSID, &wv, NULL), 0);

	/* A page claiming its address after the tail began: a page before it is damaged. */
	put_header(seg + 50 * 8192, PG15_MAGIC, 0, 1, 3 * MB + 50 * 8192);
	expect_error(SEG3, seg, MB, SYSID,
		     "WAL page at offset 409600 of WAL segment " SEG3 " follows the end of WAL");
	free(seg);
}

static void test_damaged_magic(void **state)
{
	uint8_t *seg = build_segment(&default_spec);

	(void)state;
	put_le16(seg + 8192, 0xD111);
	expect_error(SEG3, seg, MB, SYSID,
		     "invalid magic number D111 in WAL segment " SEG3 ", offset 8192");
	/* A known magic of another version in the middle is as wrong. */
	put_le16(seg + 8192, 0xD113);
	expect_error(SEG3, seg, MB, SYSID,
		     "invalid magic number D113 in WAL segment " SEG3 ", offset 8192");
	put_le16(seg + 8192, PG15_MAGIC);
	put_le16(seg, 0x0000);
	expect_error(SEG3, seg, MB, SYSID,
		     "invalid magic number 0000 in WAL segment " SEG3 ", offset 0");
	free(seg);
}

static void test_zeroed_middle_page(void **state)
{
	uint8_t *seg = build_segment(&default_spec);

	(void)state;
	/* Page 20 zeroed: the tail starts there, and page 21 then proves damage. */
	memset(seg + 20 * 8192, 0, 8192);
	expect_error(SEG3, seg, MB, SYSID, "offset 172032 of WAL segment " SEG3);
	free(seg);
}

static void test_page_address(void **state)
{
	struct seg_spec spec = default_spec;
	uint8_t *seg;

	(void)state;
	spec.seg_size = 16 * MB;
	spec.segno = 3;
	seg = build_segment(&spec);
	expect_error(
		"000000010000000000000004", seg, 16 * MB, SYSID,
		"unexpected page address 0/3000000 in WAL segment 000000010000000000000004, offset 0: expected 0/4000000");
	free(seg);
}

static void test_sysid(void **state)
{
	uint8_t *seg = build_segment(&default_spec);

	(void)state;
	expect_error(SEG3, seg, MB, SYSID + 1,
		     "WAL segment " SEG3
		     " belongs to system 7713288329218603033, not 7713288329218603034");
	free(seg);
}

static void test_seg_size(void **state)
{
	uint8_t *seg = build_segment(&default_spec);
	struct wal_validator wv;
	struct wal_name name;

	(void)state;
	/* Header says 2 MB, file is 1 MB. */
	put_le32(seg + 32, 2 * MB);
	expect_error(SEG3, seg, MB, SYSID, "has segment size 2097152 in its page header");
	put_le32(seg + 32, 3 * MB);
	expect_error(SEG3, seg, MB, SYSID, "invalid WAL segment size 3145728");
	put_le32(seg + 32, MB);

	/* Announced sizes that no segment can have. */
	assert_int_equal(wal_name_parse(SEG3, &name), 0);
	assert_int_equal(wal_validator_begin(&wv, &name, MB - 1, 0), -EINVAL);
	assert_non_null(strstr(wv.message, "invalid size 1048575 of WAL segment " SEG3));
	assert_int_equal(wal_validator_begin(&wv, &name, 0, 0), -EINVAL);
	assert_int_equal(wal_validator_begin(&wv, &name, 512 * 1024, 0), -EINVAL);
	assert_int_equal(wal_validator_begin(&wv, &name, 2048ull * MB, 0), -EINVAL);
	/* Segment number out of range for the size: 0x100 with 16 MB. */
	assert_int_equal(wal_name_parse("000000010000000000000100", &name), 0);
	assert_int_equal(wal_validator_begin(&wv, &name, 16 * MB, 0), -EINVAL);
	assert_int_equal(wal_validator_begin(&wv, &name, MB, 0), 0);
	free(seg);
}

static void test_size_mismatch(void **state)
{
	uint8_t *seg = build_segment(&default_spec);
	struct wal_validator wv;
	struct wal_name name;

	(void)state;
	assert_int_equal(wal_name_parse(SEG3, &name), 0);
	/* Too short. */
	assert_int_equal(wal_validator_begin(&wv, &name, MB, 0), 0);
	assert_int_equal(wal_validator_feed(&wv, seg, MB - 1), 0);
	assert_int_equal(wal_validator_end(&wv, NULL), -EINVAL);
	assert_non_null(strstr(wv.message, "is too short: 1048575 of 1048576 bytes"));
	/* Too long. */
	assert_int_equal(wal_validator_begin(&wv, &name, MB, 0), 0);
	assert_int_equal(wal_validator_feed(&wv, seg, MB), 0);
	assert_int_equal(wal_validator_feed(&wv, seg, 1), -EINVAL);
	assert_non_null(strstr(wv.message, "is longer than the announced 1048576 bytes"));
	/* Only a piece of the first header. */
	assert_int_equal(wal_validator_begin(&wv, &name, MB, 0), 0);
	assert_int_equal(wal_validator_feed(&wv, seg, 30), 0);
	assert_int_equal(wal_validator_end(&wv, NULL), -EINVAL);
	free(seg);
}

static void test_info_and_timeline(void **state)
{
	uint8_t *seg = build_segment(&default_spec);

	(void)state;
	put_le16(seg + 2, 0x0012);
	expect_error(SEG3, seg, MB, SYSID,
		     "invalid info bits 0012 in WAL segment " SEG3 ", offset 0");
	put_le16(seg + 2, 0x0000);
	expect_error(SEG3, seg, MB, SYSID, "missing long page header");
	put_le16(seg + 2, 0x0002);
	put_le16(seg + 2 * 8192 + 2, 0x0002);
	expect_error(SEG3, seg, MB, SYSID,
		     "unexpected long page header in WAL segment " SEG3 ", offset 16384");
	put_le16(seg + 2 * 8192 + 2, 0x0008);
	put_le16(seg + 3 * 8192 + 2, 0x0004 | 0x0001);
	{
		struct wal_validator wv;

		assert_int_equal(validate(SEG3, seg, MB, 0, SYSID, &wv, NULL), 0);
	}

	/* Timeline beyond the name's, timeline 0, timeline going back. */
	put_le32(seg + 4, 2);
	expect_error(SEG3, seg, MB, SYSID,
		     "invalid timeline ID 2 in WAL segment " SEG3 ", offset 0");
	put_le32(seg + 4, 0);
	expect_error(SEG3, seg, MB, SYSID, "invalid timeline ID 0");
	put_le32(seg + 4, 1);
	free(seg);

	/* Switch to timeline 2 mid-segment, named on timeline 2: fine.  Then back to 1: not. */
	struct seg_spec spec = default_spec;
	struct wal_validator wv;

	spec.tli = 1;
	seg = build_segment(&spec);
	for (uint32_t page = 10; page < 40; page++)
		put_le32(seg + page * 8192 + 4, 2);
	assert_int_equal(validate("000000020000000000000003", seg, MB, 0, SYSID, &wv, NULL), 0);
	expect_error(SEG3, seg, MB, SYSID,
		     "invalid timeline ID 2 in WAL segment " SEG3 ", offset 81920");
	put_le32(seg + 20 * 8192 + 4, 1);
	expect_error(
		"000000020000000000000003", seg, MB, SYSID,
		"out-of-sequence timeline ID 1 (after 2) in WAL segment 000000020000000000000003, offset 163840");
	free(seg);
}

static void test_block_size_bad(void **state)
{
	static const uint32_t bad[] = { 0, 512, 1000, 3000, 8191, 131072, 2 * MB };
	uint8_t *seg = build_segment(&default_spec);

	(void)state;
	for (size_t idx = 0; idx < ARRAY_SIZE(bad); idx++) {
		char expect[64];

		put_le32(seg + 36, bad[idx]);
		snprintf(expect, sizeof(expect), "invalid WAL block size %u", bad[idx]);
		expect_error(SEG3, seg, MB, SYSID, expect);
	}
	free(seg);
}

/* Every outcome is the same whatever the piece size. */
static void check_pieces(const char *name, const uint8_t *seg, uint64_t size)
{
	static const size_t pieces[] = { 1, 7, 24, 40, 41, 8191, 8192, 8193, 65536, 0 };
	struct wal_validator whole, wv;
	int expected = validate(name, seg, size, 0, SYSID, &whole, NULL);

	for (size_t idx = 0; idx < ARRAY_SIZE(pieces); idx++) {
		assert_int_equal(validate(name, seg, size, pieces[idx], SYSID, &wv, NULL),
				 expected);
		assert_string_equal(wv.message, whole.message);
		assert_true(wv.valid_pages == whole.valid_pages);
	}
}

static void test_pieces(void **state)
{
	uint8_t *seg = build_segment(&default_spec);

	(void)state;
	check_pieces(SEG3, seg, MB);
	put_le16(seg + 8192, 0xD111);
	check_pieces(SEG3, seg, MB);
	put_le16(seg + 8192, PG15_MAGIC);
	put_le64(seg + 8 + 39 * 8192, 0);
	check_pieces(SEG3, seg, MB);
	put_le64(seg + 24, SYSID + 1);
	check_pieces(SEG3, seg, MB);
	free(seg);
}

/* A header split across two feed() calls at every possible point. */
static void test_split_header(void **state)
{
	uint8_t *seg = build_segment(&default_spec);
	struct wal_name name;

	(void)state;
	assert_int_equal(wal_name_parse(SEG3, &name), 0);
	put_le16(seg + 5 * 8192 + 2, 0x0100); /* bad info bits on page 5 */
	for (size_t cut = 5 * 8192; cut <= 5 * 8192 + 24; cut++) {
		struct wal_validator wv;

		assert_int_equal(wal_validator_begin(&wv, &name, MB, SYSID), 0);
		assert_int_equal(wal_validator_feed(&wv, seg, cut),
				 cut == 5 * 8192 + 24 ? -EINVAL : 0);
		assert_int_equal(wal_validator_feed(&wv, seg + cut, MB - cut), -EINVAL);
		assert_non_null(strstr(wv.message, "invalid info bits 0100"));
		assert_non_null(strstr(wv.message, "offset 40960"));
		/* Sticky. */
		assert_int_equal(wal_validator_feed(&wv, seg, 1), -EINVAL);
		assert_int_equal(wal_validator_end(&wv, NULL), -EINVAL);
	}
	for (size_t cut = 0; cut <= 40; cut++) {
		struct wal_validator wv;
		struct wal_identity id;

		put_le16(seg + 5 * 8192 + 2, 0);
		assert_int_equal(wal_validator_begin(&wv, &name, MB, SYSID), 0);
		assert_int_equal(wal_validator_feed(&wv, seg, cut), 0);
		assert_int_equal(wal_validator_feed(&wv, seg + cut, MB - cut), 0);
		assert_int_equal(wal_validator_end(&wv, &id), 0);
		assert_true(id.system_identifier == SYSID);
	}
	free(seg);
}

static void test_magic_table(void **state)
{
	(void)state;
	assert_string_equal(wal_page_magic_version(0xD093), "9.6");
	assert_string_equal(wal_page_magic_version(0xD097), "10");
	assert_string_equal(wal_page_magic_version(0xD098), "11");
	assert_string_equal(wal_page_magic_version(0xD101), "12");
	assert_string_equal(wal_page_magic_version(0xD106), "13");
	assert_string_equal(wal_page_magic_version(0xD10D), "14");
	assert_string_equal(wal_page_magic_version(0xD110), "15");
	assert_string_equal(wal_page_magic_version(0xD113), "16");
	assert_string_equal(wal_page_magic_version(0xD116), "17");
	assert_null(wal_page_magic_version(0xD111));
	assert_null(wal_page_magic_version(0));
}

static void test_other_versions(void **state)
{
	static const uint16_t magics[] = { 0xD093, 0xD097, 0xD098, 0xD101,
					   0xD106, 0xD10D, 0xD113, 0xD116 };

	(void)state;
	for (size_t idx = 0; idx < ARRAY_SIZE(magics); idx++) {
		struct seg_spec spec = default_spec;
		struct wal_validator wv;
		struct wal_identity id;
		uint8_t *seg;

		spec.magic = magics[idx];
		seg = build_segment(&spec);
		assert_int_equal(validate(SEG3, seg, MB, 0, 0, &wv, &id), 0);
		assert_int_equal(id.page_magic, magics[idx]);
		free(seg);
	}
}

static void test_text_files(void **state)
{
	static const char history[] = "1\t0/3000000\tno recovery target specified\n";
	static const char backup[] =
		"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n";
	struct wal_validator wv;
	struct wal_identity id;
	struct wal_name name;
	uint8_t *big;

	(void)state;
	memset(&id, 0xff, sizeof(id));
	assert_int_equal(validate("00000002.history", (const uint8_t *)history, sizeof(history) - 1,
				  0, SYSID, &wv, &id),
			 0);
	assert_true(id.system_identifier == 0 && id.seg_size == 0 && id.page_magic == 0);
	assert_int_equal(validate("00000002.history", (const uint8_t *)history, sizeof(history) - 1,
				  1, SYSID, &wv, &id),
			 0);
	assert_int_equal(validate("000000010000000000000002.00000028.backup",
				  (const uint8_t *)backup, sizeof(backup) - 1, 7, 0, &wv, &id),
			 0);
	/* A NUL byte: refused, naming the offset. */
	assert_int_equal(validate("00000002.history", (const uint8_t *)history, sizeof(history), 5,
				  SYSID, &wv, &id),
			 -EINVAL);
	assert_non_null(
		strstr(wv.message,
		       "timeline history file 00000002.history contains a NUL byte at offset 41"));

	assert_int_equal(wal_name_parse("00000002.history", &name), 0);
	assert_int_equal(wal_validator_begin(&wv, &name, 0, 0), -EINVAL);
	assert_non_null(strstr(wv.message, "is empty"));
	assert_int_equal(wal_validator_begin(&wv, &name, WAL_TEXT_FILE_MAX + 1, 0), -EINVAL);
	assert_non_null(strstr(wv.message, "is too large"));

	big = malloc(WAL_TEXT_FILE_MAX);
	assert_non_null(big);
	memset(big, 'a', WAL_TEXT_FILE_MAX);
	assert_int_equal(validate("00000002.history", big, WAL_TEXT_FILE_MAX, 8191, 0, &wv, &id),
			 0);
	free(big);

	/* Short. */
	assert_int_equal(wal_validator_begin(&wv, &name, 10, 0), 0);
	assert_int_equal(wal_validator_feed(&wv, history, 9), 0);
	assert_int_equal(wal_validator_end(&wv, &id), -EINVAL);
}

static void test_validate_fd(void **state)
{
	struct seg_spec spec = default_spec;
	struct wal_validator wv;
	struct wal_identity id;
	struct wal_name name;
	uint8_t *seg;
	int fd;

	(void)state;
	spec.seg_size = 4 * MB; /* several pread() pieces */
	spec.segno = 1;
	spec.valid_pages = 300;
	seg = build_segment(&spec);
	assert_int_equal(wal_name_parse("000000010000000000000001", &name), 0);

	fd = memfd_with(seg, 4 * MB);
	assert_int_equal(wal_validate_fd(fd, &name, SYSID, &wv, &id), 0);
	assert_int_equal(id.seg_size, 4 * MB);
	assert_int_equal(wv.valid_pages, 300);
	assert_int_equal(wal_validate_fd(fd, &name, SYSID + 1, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "belongs to system"));
	close(fd);

	/* Damage beyond the first read piece. */
	put_le16(seg + 2 * MB + 8192 * 3, 0xBEEF);
	fd = memfd_with(seg, 4 * MB);
	assert_int_equal(wal_validate_fd(fd, &name, 0, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "invalid magic number BEEF"));
	close(fd);

	/* A truncated file: size does not fit a segment. */
	fd = memfd_with(seg, 4 * MB - 8192);
	assert_int_equal(wal_validate_fd(fd, &name, 0, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "invalid size"));
	close(fd);

	/* A bad descriptor. */
	assert_int_equal(wal_validate_fd(-1, &name, 0, &wv, &id), -EBADF);
	assert_non_null(strstr(wv.message, "could not stat"));
	free(seg);
}

/* wal_validator_skip(): page bodies only, and only once the first page gave the block
 * size; the headers fed around the skips are checked as when everything is fed. */
static void test_skip(void **state)
{
	uint8_t *seg = build_segment(&default_spec);
	struct wal_validator wv;
	struct wal_identity id;
	struct wal_name name;

	(void)state;
	assert_int_equal(wal_name_parse("000000010000000000000003", &name), 0);

	/* before the first header: refused */
	assert_int_equal(wal_validator_begin(&wv, &name, MB, 0), 0);
	assert_int_equal(wal_validator_skip(&wv, 100), -EINVAL);

	/* headers fed, bodies skipped: the same verdict as the whole segment */
	assert_int_equal(wal_validator_begin(&wv, &name, MB, 0), 0);
	assert_int_equal(wal_validator_feed(&wv, seg, WAL_PAGE_LONG_HEADER), 0);
	assert_int_equal(wal_validator_skip(&wv, 8192 - WAL_PAGE_LONG_HEADER), 0);
	for (uint32_t page = 1; page < MB / 8192; page++) {
		assert_int_equal(wal_validator_feed(&wv, seg + page * 8192, WAL_PAGE_SHORT_HEADER),
				 0);
		assert_int_equal(wal_validator_skip(&wv, 8192 - WAL_PAGE_SHORT_HEADER), 0);
	}
	assert_int_equal(wal_validator_end(&wv, &id), 0);
	assert_int_equal(wv.valid_pages, default_spec.valid_pages);

	/* a skip that reaches into the next header, or one from inside a header: refused */
	assert_int_equal(wal_validator_begin(&wv, &name, MB, 0), 0);
	assert_int_equal(wal_validator_feed(&wv, seg, WAL_PAGE_LONG_HEADER), 0);
	assert_int_equal(wal_validator_skip(&wv, 8192 - WAL_PAGE_LONG_HEADER + 1), -EINVAL);
	assert_int_equal(wal_validator_begin(&wv, &name, MB, 0), 0);
	assert_int_equal(wal_validator_feed(&wv, seg, 8192 + 10), 0);
	assert_int_equal(wal_validator_skip(&wv, 100), -EINVAL);

	/* a text file has no pages to skip */
	assert_int_equal(wal_name_parse("00000002.history", &name), 0);
	assert_int_equal(wal_validator_begin(&wv, &name, 10, 0), 0);
	assert_int_equal(wal_validator_skip(&wv, 5), -EINVAL);
	free(seg);
}

/* A whole file in memory at once, as the primary validates a pushed file's mapping. */
static void test_validate_buffer(void **state)
{
	struct seg_spec spec = default_spec;
	struct wal_validator wv;
	struct wal_identity id;
	struct wal_name name;
	uint8_t *seg, *zeros;

	(void)state;
	seg = build_segment(&spec);
	assert_int_equal(wal_name_parse(SEG3, &name), 0);
	assert_int_equal(wal_validate_buffer(seg, MB, &name, 0, &wv, &id), 0);
	assert_int_equal(id.system_identifier, SYSID);
	assert_int_equal(id.page_magic, PG15_MAGIC);
	assert_int_equal(wal_validate_buffer(seg, MB, &name, SYSID + 1, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "belongs to system"));
	/* Zeros named like a segment: refused at its first page. */
	zeros = calloc(1, MB);
	assert_non_null(zeros);
	assert_int_equal(wal_validate_buffer(zeros, MB, &name, 0, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "invalid magic number 0000"));
	assert_non_null(strstr(wv.message, "offset 0"));
	/* A size the name cannot have. */
	assert_int_equal(wal_validate_buffer(seg, MB - 8192, &name, 0, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "invalid size"));
	/* Text files: no NUL byte. */
	assert_int_equal(wal_name_parse("00000002.history", &name), 0);
	assert_int_equal(
		wal_validate_buffer("1\t0/3000000\tno recovery target\n", 31, &name, 0, &wv, &id),
		0);
	assert_int_equal(wal_validate_buffer(zeros, 16, &name, 0, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "NUL byte"));
	free(zeros);
	free(seg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_with_zero_tail),
		cmocka_unit_test(test_valid_full),
		cmocka_unit_test(test_valid_16mb),
		cmocka_unit_test(test_block_sizes),
		cmocka_unit_test(test_stale_tail),
		cmocka_unit_test(test_damaged_magic),
		cmocka_unit_test(test_zeroed_middle_page),
		cmocka_unit_test(test_page_address),
		cmocka_unit_test(test_sysid),
		cmocka_unit_test(test_seg_size),
		cmocka_unit_test(test_size_mismatch),
		cmocka_unit_test(test_info_and_timeline),
		cmocka_unit_test(test_block_size_bad),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_split_header),
		cmocka_unit_test(test_magic_table),
		cmocka_unit_test(test_other_versions),
		cmocka_unit_test(test_text_files),
		cmocka_unit_test(test_validate_fd),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_validate_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
