/* SPDX-License-Identifier: MIT */
/*
 * WAL records written in memory with PostgreSQL 15's layout, for unit tests of what
 * decodes them (daemon/wal/record.c and its users): page headers (long at each segment's
 * start), records continued across pages, transaction ends with their times.  Real WAL
 * is compared with pg_waldump by test/system/t_99e_wal_record.sh.
 */
#ifndef WALSHIP_TEST_WAL_RECORDS_H
#define WALSHIP_TEST_WAL_RECORDS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/crc32c.h"
#include "wal/record.h"

/* WAL from LSN @start (a segment's start) into @buf; @pos is the offset of the next byte. */
struct wal_build {
	uint8_t *buf;
	uint64_t start, pos, prev_lsn;
	uint32_t seg_size, block;
	uint16_t magic; /* of the page headers: 0 is PostgreSQL 15's, 0xD110 */
};

static inline void wb_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A page header at wb->pos, @rem bytes of a record continued on it. */
static inline void wb_page_header(struct wal_build *wb, uint32_t rem)
{
	uint8_t *h = wb->buf + wb->pos;
	bool is_long = wb->pos % wb->seg_size == 0;

	wb_le(h, wb->magic ? wb->magic : 0xD110, 2);
	wb_le(h + 2, (rem ? XLP_FIRST_IS_CONTRECORD : 0) | (is_long ? XLP_LONG_HEADER : 0), 2);
	wb_le(h + 4, 1, 4);
	wb_le(h + 8, wb->start + wb->pos, 8);
	wb_le(h + 16, rem, 4);
	if (is_long) {
		wb_le(h + 24, 42, 8);
		wb_le(h + 32, wb->seg_size, 4);
		wb_le(h + 36, wb->block, 4);
	}
	wb->pos += is_long ? WAL_PAGE_LONG_HEADER : WAL_PAGE_SHORT_HEADER;
}

/* A record of rmgr @rmid, @info whose headers and data after XLogRecord are @body (@len
 * bytes, less than 3 pages); returns its LSN. */
static inline uint64_t wb_record_body(struct wal_build *wb, uint8_t rmid, uint8_t info,
				      const uint8_t *body, uint32_t len)
{
	static uint8_t rec[3 * 8192];
	uint32_t tot = WAL_RECORD_HEADER + len, written = 0, crc;
	uint64_t lsn;

	memcpy(rec + WAL_RECORD_HEADER, body, len);
	wb_le(rec, tot, 4);
	wb_le(rec + 4, 700, 4);
	wb_le(rec + 8, wb->prev_lsn, 8);
	rec[16] = info;
	rec[17] = rmid;
	rec[18] = rec[19] = 0;
	crc = crc32c(0, rec + WAL_RECORD_HEADER, tot - WAL_RECORD_HEADER);
	crc = crc32c(crc, rec, 20);
	wb_le(rec + 20, crc, 4);

	wb->pos = (wb->pos + 7) & ~(uint64_t)7;
	if (wb->pos % wb->block == 0)
		wb_page_header(wb, 0);
	lsn = wb->start + wb->pos;
	while (written < tot) {
		uint32_t n;

		if (wb->pos % wb->block == 0)
			wb_page_header(wb, tot - written);
		n = wb->block - (uint32_t)(wb->pos % wb->block);
		if (n > tot - written)
			n = tot - written;
		memcpy(wb->buf + wb->pos, rec + written, n);
		wb->pos += n;
		written += n;
	}
	wb->prev_lsn = lsn;
	return lsn;
}

/* A record of rmgr @rmid, @info, main data @data (@len bytes, less than 3 pages);
 * returns its LSN. */
static inline uint64_t wb_record(struct wal_build *wb, uint8_t rmid, uint8_t info,
				 const uint8_t *data, uint32_t len)
{
	static uint8_t body[3 * 8192];
	uint32_t off = 0;

	if (len < 256) {
		body[off++] = 255;
		body[off++] = (uint8_t)len;
	} else {
		body[off++] = 254;
		wb_le(body + off, len, 4);
		off += 4;
	}
	memcpy(body + off, data, len);
	return wb_record_body(wb, rmid, info, body, off + len);
}

/* A transaction's end (rmgr XACT, @info: 0x00 commit, 0x20 abort, 0x30 commit
 * prepared) at PostgreSQL timestamp @time; returns its LSN. */
static inline uint64_t wb_xact(struct wal_build *wb, uint8_t info, int64_t time)
{
	uint8_t body[8];

	wb_le(body, (uint64_t)time, 8);
	return wb_record(wb, 1, info, body, sizeof(body));
}

#endif /* WALSHIP_TEST_WAL_RECORDS_H */
