/* SPDX-License-Identifier: MIT */
/*
 * For unit tests: synthetic WAL segments built in memory with the layout PostgreSQL 15
 * writes (a fresh archived segment after pg_switch_wal() has valid pages, then all-zero
 * pages to the end; page 0 xlp_info 2 or 6), for the validator's tests
 * (daemon/wal/page_test.c) and the ring's (daemon/ring/validate_test.c), and memory
 * files holding them.
 *
 * Needs <cmocka.h> and "wal/page.h" first.
 */
#ifndef WALSHIP_TEST_UNIT_WAL_SEGMENT_H
#define WALSHIP_TEST_UNIT_WAL_SEGMENT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MB (1024u * 1024u)
#define PG15_MAGIC 0xD110
#define SYSID UINT64_C(7713288329218603033)

struct seg_spec {
	uint32_t seg_size;
	uint32_t block_size;
	uint32_t tli;
	uint64_t segno;
	uint16_t magic;
	uint32_t valid_pages; /* pages with a header; the rest are zero */
};

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int idx = 0; idx < 4; idx++)
		p[idx] = (uint8_t)(v >> (8 * idx));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int idx = 0; idx < 8; idx++)
		p[idx] = (uint8_t)(v >> (8 * idx));
}

/* Write a short page header at @page. */
static inline void put_header(uint8_t *page, uint16_t magic, uint16_t info, uint32_t tli,
			      uint64_t addr)
{
	put_le16(page, magic);
	put_le16(page + 2, info);
	put_le32(page + 4, tli);
	put_le64(page + 8, addr);
	put_le32(page + 16, 0);
}

static inline uint8_t *build_segment(const struct seg_spec *spec)
{
	uint8_t *seg = calloc(1, spec->seg_size);
	uint64_t start = spec->segno * spec->seg_size;

	assert_non_null(seg);
	for (uint32_t page = 0; page < spec->valid_pages; page++) {
		uint8_t *at = seg + (size_t)page * spec->block_size;

		/* Record bytes: anything non-zero. */
		memset(at + WAL_PAGE_LONG_HEADER, 0x5a, spec->block_size - WAL_PAGE_LONG_HEADER);
		if (page == 0) {
			put_header(at, spec->magic, 0x0006, spec->tli, start);
			put_le64(at + 24, SYSID);
			put_le32(at + 32, spec->seg_size);
			put_le32(at + 36, spec->block_size);
		} else {
			put_header(at, spec->magic, page % 3 == 0 ? 0x0001 : 0x0000, spec->tli,
				   start + (uint64_t)page * spec->block_size);
		}
	}
	return seg;
}

static const struct seg_spec default_spec = {
	.seg_size = MB,
	.block_size = 8192,
	.tli = 1,
	.segno = 3,
	.magic = PG15_MAGIC,
	.valid_pages = 40,
};

/* A memory file holding @len bytes of @data (at offset 0, its offset at the end). */
static inline int memfd_with(const uint8_t *data, size_t len)
{
	int fd = memfd_create("wal_segment", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}
#endif /* WALSHIP_TEST_UNIT_WAL_SEGMENT_H */
