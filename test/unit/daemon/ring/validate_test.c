// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/ring/validate.c: a segment validated by its page headers alone,
 * read through a real io_uring, gives the verdict and the message that the validator
 * gives over the whole file in memory, for a damaged header anywhere (the first page, in
 * a batch, at the border of two batches of VALIDATE_BATCH, the last page), whole or in
 * pieces (validate_fd_first_page(), validate_fd_pages() and pages fed from memory, as a
 * pushed segment is validated in the send slots); other files and a missing ring go the
 * plain way.
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

#include "ring/validate.h"
#include "wal/page.h"
#include "wal_segment.h"

#define SEG_4MB "000000010000000000000001"

/* @ret and @wv, from validating @seg (4 MB) another way, against the validator over the
 * whole file in memory: the same verdict, and the same message or count of valid pages. */
static int agrees_with_memory(const uint8_t *seg, uint64_t sysid, int ret,
			      const struct wal_validator *wv)
{
	struct wal_validator wv_mem;
	struct wal_name name;

	assert_int_equal(wal_name_parse(SEG_4MB, &name), 0);
	assert_int_equal(ret, wal_validate_buffer(seg, 4 * MB, &name, sysid, &wv_mem, NULL));
	if (ret)
		assert_string_equal(wv->message, wv_mem.message);
	else
		assert_int_equal(wv->valid_pages, wv_mem.valid_pages);
	return ret;
}

/* Validate @seg (4 MB) through @vr, checked against the validator in memory. */
static int both_ways(struct validate_ring *vr, const uint8_t *seg, uint64_t sysid,
		     struct wal_validator *wv)
{
	struct wal_identity id;
	struct wal_name name;
	int fd = memfd_with(seg, 4 * MB), ret;

	assert_int_equal(wal_name_parse(SEG_4MB, &name), 0);
	ret = validate_fd(vr, fd, &name, sysid, wv, &id);
	close(fd);
	return agrees_with_memory(seg, sysid, ret, wv);
}

typedef int validate_way(struct validate_ring *vr, const uint8_t *seg, uint64_t sysid,
			 struct wal_validator *wv);

/* A 4 MB segment of 8 kB pages, its first @valid pages written. */
static uint8_t *segment_4mb(unsigned int valid)
{
	struct seg_spec spec = default_spec;

	spec.seg_size = 4 * MB;
	spec.segno = 1;
	spec.valid_pages = valid;
	return build_segment(&spec);
}

/*
 * @way on the whole, valid @seg (4 MB): it accepts all 512 pages with @sysid expected and
 * refuses them for another system; then damage the magic of each of the @n @pages in
 * turn: @way refuses it, naming it.
 */
static void check_way(validate_way *way, struct validate_ring *vr, uint8_t *seg, uint64_t sysid,
		      const unsigned int *pages, size_t n)
{
	struct wal_validator wv;

	assert_int_equal(way(vr, seg, sysid, &wv), 0);
	assert_int_equal(wv.valid_pages, 512);
	assert_int_equal(way(vr, seg, SYSID + 1, &wv), -EINVAL);
	assert_non_null(strstr(wv.message, "belongs to system"));
	for (size_t i = 0; i < n; i++) {
		uint8_t *page = seg + (size_t)pages[i] * 8192;
		uint16_t magic = (uint16_t)(page[0] | page[1] << 8);

		put_le16(page, 0xBEEF);
		assert_int_equal(way(vr, seg, 0, &wv), -EINVAL);
		assert_non_null(strstr(wv.message, "invalid magic number BEEF"));
		put_le16(page, magic);
	}
}

static void test_headers(void **state)
{
	/* pages of 8 kB: the first batch holds pages 1 to 128, the second 129 to 256 */
	static const unsigned int pages[] = { 0, 1, 2, 127, 128, 129, 130, 256, 257, 511 };
	struct validate_ring vr;
	struct wal_validator wv;
	uint8_t *seg;

	(void)state;
	assert_int_equal(validate_ring_init(&vr), 0);
	seg = segment_4mb(512);
	check_way(both_ways, &vr, seg, SYSID, pages, sizeof(pages) / sizeof(pages[0]));

	/* valid pages, then zeros to the end: a partly written segment */
	free(seg);
	seg = segment_4mb(200);
	assert_int_equal(both_ways(&vr, seg, 0, &wv), 0);
	assert_int_equal(wv.valid_pages, 200);
	/* a page claiming its address after the zeros began */
	put_header(seg + 300 * 8192, PG15_MAGIC, 0, 1, 4 * MB + 300 * 8192);
	assert_int_equal(both_ways(&vr, seg, 0, &wv), -EINVAL);
	assert_non_null(strstr(wv.message, "follows the end of WAL"));
	free(seg);
	validate_ring_exit(&vr);
}

/*
 * Validate @seg (4 MB) in pieces, as a push read into send slots is: its first page, then
 * the pages of [8 kB, 1 MB) through @vr, [1 MB, 2 MB) from memory, [2 MB, 3 MB) through no
 * ring (one pread each), [3 MB, 4 MB) from memory; checked against the validator in memory.
 */
static int in_pieces(struct validate_ring *vr, const uint8_t *seg, uint64_t sysid,
		     struct wal_validator *wv)
{
	struct wal_name name;
	int fd = memfd_with(seg, 4 * MB), ret;

	assert_int_equal(wal_name_parse(SEG_4MB, &name), 0);
	ret = validate_fd_first_page(fd, &name, 4 * MB, sysid, wv);
	if (!ret) {
		assert_int_equal(wv->offset, 8192);
		ret = validate_fd_pages(vr, fd, wv, MB);
	}
	if (!ret)
		ret = wal_validator_feed(wv, seg + MB, MB);
	if (!ret)
		ret = validate_fd_pages(NULL, fd, wv, 3 * MB);
	if (!ret)
		ret = wal_validator_feed(wv, seg + 3 * MB, MB);
	if (!ret)
		ret = wal_validator_end(wv, NULL);
	close(fd);
	return agrees_with_memory(seg, sysid, ret, wv);
}

static void test_pieces(void **state)
{
	/* the first page; through the ring; from memory; one pread each; from memory again */
	static const unsigned int pages[] = { 0, 1, 127, 128, 129, 200, 256, 300, 383, 384, 511 };
	struct validate_ring vr;
	struct wal_validator wv;
	uint8_t *seg;

	(void)state;
	assert_int_equal(validate_ring_init(&vr), 0);
	seg = segment_4mb(512);
	check_way(in_pieces, &vr, seg, 0, pages, sizeof(pages) / sizeof(pages[0]));
	/* partly written: the zeros begin in the piece read one pread at a time */
	free(seg);
	seg = segment_4mb(300);
	assert_int_equal(in_pieces(&vr, seg, 0, &wv), 0);
	assert_int_equal(wv.valid_pages, 300);
	/* a caller's mistake: pages from an offset that is not a page boundary */
	wv.offset += 100;
	assert_int_equal(validate_fd_pages(&vr, -1, &wv, 4 * MB), -EINVAL);
	free(seg);
	validate_ring_exit(&vr);
}

/* Files that are not segments, and no ring: wal_validate_fd()'s verdicts and words. */
static void test_plain_way(void **state)
{
	static const char history[] = "1\t0/3000000\tno recovery target\n";
	struct validate_ring vr;
	struct wal_validator wv;
	struct wal_identity id;
	struct wal_name name;
	uint8_t *seg;
	int fd;

	(void)state;
	assert_int_equal(validate_ring_init(&vr), 0);
	assert_int_equal(wal_name_parse("00000002.history", &name), 0);
	fd = memfd_with((const uint8_t *)history, sizeof(history) - 1);
	assert_int_equal(validate_fd(&vr, fd, &name, 0, &wv, &id), 0);
	close(fd);
	fd = memfd_with((const uint8_t *)"1\t0/3\0x\n", 8);
	assert_int_equal(validate_fd(&vr, fd, &name, 0, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "NUL byte"));
	close(fd);

	/* a segment with no ring, and a bad descriptor */
	seg = build_segment(&default_spec);
	assert_int_equal(wal_name_parse("000000010000000000000003", &name), 0);
	fd = memfd_with(seg, MB);
	assert_int_equal(validate_fd(NULL, fd, &name, 0, &wv, &id), 0);
	assert_int_equal(wv.valid_pages, default_spec.valid_pages);
	close(fd);
	assert_int_equal(validate_fd(&vr, -1, &name, 0, &wv, &id), -EBADF);
	assert_non_null(strstr(wv.message, "could not stat"));

	/* a file shorter than a segment: refused by its size before any read */
	fd = memfd_with(seg, MB - 8192);
	assert_int_equal(validate_fd(&vr, fd, &name, 0, &wv, &id), -EINVAL);
	assert_non_null(strstr(wv.message, "invalid size"));
	close(fd);
	free(seg);
	validate_ring_exit(&vr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_plain_way),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
