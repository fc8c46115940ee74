// SPDX-License-Identifier: MIT
/*
 * WAL record decoder (wal/record.h): page headers through wal/page.h, records collected
 * across pages, CRC-32C checked, transaction ends reported.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/compiler.h"
#include "common/crc32c.h"
#include "wal/record.h"

/* xl_rmid and xl_info values (access/rmgrlist.h, access/xlog_internal.h, access/xact.h). */
#define RM_XLOG_ID 0
#define RM_XACT_ID 1
#define XLOG_SWITCH 0x40
#define XLR_RMGR_INFO_MASK 0xF0
#define XLOG_XACT_OPMASK 0x70
#define XLOG_XACT_COMMIT 0x00
#define XLOG_XACT_ABORT 0x20
#define XLOG_XACT_COMMIT_PREPARED 0x30
#define XLOG_XACT_ABORT_PREPARED 0x40

/* Block and data header ids and flags (access/xlogrecord.h, PostgreSQL 15). */
#define XLR_MAX_BLOCK_ID 32
#define XLR_BLOCK_ID_DATA_SHORT 255
#define XLR_BLOCK_ID_DATA_LONG 254
#define XLR_BLOCK_ID_ORIGIN 253
#define XLR_BLOCK_ID_TOPLEVEL_XID 252
#define BKPBLOCK_HAS_IMAGE 0x10
#define BKPBLOCK_SAME_REL 0x80
#define BKPIMAGE_HAS_HOLE 0x01
/* compressed, which adds the hole's length: PostgreSQL 15's pglz, lz4, zstd; before 15
 * (page magic below 0xD110) one bit, 0x02 (0x04 was BKPIMAGE_APPLY then) */
#define BKPIMAGE_COMPRESSED (0x04 | 0x08 | 0x10)
#define BKPIMAGE_COMPRESSED_V14 0x02
#define WAL_PAGE_MAGIC_V15 0xD110
#define SIZE_OF_RELFILENODE 12
#define SIZE_OF_BLOCK_NUMBER 4

/* Offset of xl_crc in XLogRecord: the CRC covers the header up to there. */
#define XL_CRC_OFFSET 20

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

const char *wal_xact_kind_name(enum wal_xact_kind kind)
{
	switch (kind) {
	case WAL_XACT_COMMIT:
		return "COMMIT";
	case WAL_XACT_COMMIT_PREPARED:
		return "COMMIT_PREPARED";
	case WAL_XACT_ABORT:
		return "ABORT";
	case WAL_XACT_ABORT_PREPARED:
		return "ABORT_PREPARED";
	}
	return "?";
}

/* Begin a new record at d->next_lsn. */
/* A record buffer grown past this for one huge record (up to WAL_RECORD_MAX, 1 GiB) is
 * given back before the next: the decoder runs for the daemon's life. */
#define WAL_DEC_KEEP_CAP (1u << 20)

static void record_expect(struct wal_decoder *d)
{
	if (d->rec_cap > WAL_DEC_KEEP_CAP) {
		free(d->rec);
		d->rec = NULL;
		d->rec_cap = 0;
	}
	d->state = WAL_DEC_RECORD;
	d->rec_len = 0;
	d->rec_tot = 0;
	d->rec_lsn = d->next_lsn;
}

/* Skip the padding after a record (or a continuation), then expect the next record. */
static void skip_to_aligned(struct wal_decoder *d)
{
	uint64_t pad = WAL_MAXALIGN(d->next_lsn) - d->next_lsn;

	d->skip_contrecord = false;
	if (pad) {
		d->state = WAL_DEC_SKIP;
		d->skip = pad;
	} else {
		record_expect(d);
	}
}

/* Damage at @at: count it, say why, and resume at the next segment. */
static void attr_printf(3, 4) damaged(struct wal_decoder *d, uint64_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(d->message, sizeof(d->message), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(d->message))
		snprintf(d->message + n, sizeof(d->message) - (size_t)n, " at %X/%08X",
			 (unsigned int)(at >> 32), (unsigned int)at);
	d->errors++;
	d->damaged_lsn = at;
	d->prev_lsn = 0;
	d->state = WAL_DEC_SEGMENT_END;
}

/*
 * Walk the headers after XLogRecord to find the main data (access/xlogreader.c,
 * DecodeXLogRecord()): returns its offset in the record and sets *len, or -1 when the
 * headers do not add up to xl_tot_len.
 */
static int64_t main_data(const uint8_t *rec, uint32_t tot, uint16_t magic, uint32_t *len)
{
	uint64_t off = WAL_RECORD_HEADER, datatotal = 0;
	uint32_t main_len = 0;

	while (off + datatotal < tot) { /* the headers end where the data begins */
		uint8_t id = rec[off];

		if (id == XLR_BLOCK_ID_DATA_SHORT) {
			if (off + 2 > tot)
				return -1;
			main_len = rec[off + 1];
			off += 2;
			break;
		} else if (id == XLR_BLOCK_ID_DATA_LONG) {
			if (off + 5 > tot)
				return -1;
			main_len = get_le32(rec + off + 1);
			off += 5;
			break;
		} else if (id == XLR_BLOCK_ID_ORIGIN) {
			off += 3;
		} else if (id == XLR_BLOCK_ID_TOPLEVEL_XID) {
			off += 5;
		} else if (id <= XLR_MAX_BLOCK_ID) {
			uint8_t fork_flags;

			if (off + 4 > tot)
				return -1;
			fork_flags = rec[off + 1];
			datatotal += get_le16(rec + off + 2);
			off += 4;
			if (fork_flags & BKPBLOCK_HAS_IMAGE) {
				uint8_t bimg_info;

				if (off + 5 > tot)
					return -1;
				datatotal += get_le16(rec + off);
				bimg_info = rec[off + 4];
				off += 5;
				if ((bimg_info & BKPIMAGE_HAS_HOLE) &&
				    (bimg_info &
				     (magic >= WAL_PAGE_MAGIC_V15 ? BKPIMAGE_COMPRESSED :
								    BKPIMAGE_COMPRESSED_V14)))
					off += 2;
			}
			if (!(fork_flags & BKPBLOCK_SAME_REL))
				off += SIZE_OF_RELFILENODE;
			off += SIZE_OF_BLOCK_NUMBER;
		} else {
			return -1;
		}
	}
	if (off + datatotal + main_len != tot)
		return -1;
	*len = main_len;
	return (int64_t)(tot - main_len);
}

/* A whole record is in d->rec: check it and report what it ends. */
static void record_done(struct wal_decoder *d)
{
	const uint8_t *rec = d->rec;
	uint32_t tot = d->rec_tot, crc, main_len = 0;
	uint8_t info = rec[16], rmid = rec[17];
	int64_t main_off;

	crc = crc32c(0, rec + WAL_RECORD_HEADER, tot - WAL_RECORD_HEADER);
	crc = crc32c(crc, rec, XL_CRC_OFFSET);
	if (crc != get_le32(rec + XL_CRC_OFFSET)) {
		damaged(d, d->rec_lsn, "incorrect resource manager data checksum in record");
		return;
	}
	main_off = main_data(rec, tot, d->page_magic, &main_len);
	if (main_off < 0) {
		damaged(d, d->rec_lsn, "invalid record headers in record");
		return;
	}
	d->records++;
	d->prev_lsn = d->rec_lsn;
	d->end_lsn = d->next_lsn;
	if (rmid == RM_XACT_ID) {
		struct wal_xact_end x = {
			.lsn = d->rec_lsn,
			.end_lsn = d->next_lsn,
			.xid = get_le32(rec + 4),
		};
		bool known = true;

		switch (info & XLOG_XACT_OPMASK) {
		case XLOG_XACT_COMMIT:
			x.kind = WAL_XACT_COMMIT;
			break;
		case XLOG_XACT_COMMIT_PREPARED:
			x.kind = WAL_XACT_COMMIT_PREPARED;
			break;
		case XLOG_XACT_ABORT:
			x.kind = WAL_XACT_ABORT;
			break;
		case XLOG_XACT_ABORT_PREPARED:
			x.kind = WAL_XACT_ABORT_PREPARED;
			break;
		default:
			known = false;
		}
		if (known && main_len >= 8) {
			x.xact_time = (int64_t)get_le64(rec + main_off);
			d->xact_ends++;
			if (d->cb)
				d->cb(d->cb_arg, &x);
		}
	}
	if (rmid == RM_XLOG_ID && (info & XLR_RMGR_INFO_MASK) == XLOG_SWITCH) {
		d->state = WAL_DEC_SEGMENT_END; /* the rest of the segment is unused */
		return;
	}
	skip_to_aligned(d);
}

/* The page header in d->page_hdr is complete. */
static void page_header_done(struct wal_decoder *d)
{
	uint64_t page_lsn = d->next_lsn - d->page_hdr_need;
	bool is_long = d->page_hdr_need == WAL_PAGE_LONG_HEADER;
	bool mid_record = d->resume == WAL_DEC_RECORD && d->rec_len > 0;
	struct wal_page_header hdr;

	wal_page_header_decode(d->page_hdr, is_long, &hdr);
	d->state = d->resume;
	if (hdr.magic == 0 && hdr.pageaddr == 0 && !mid_record && !d->skip_contrecord) {
		d->state = WAL_DEC_SEGMENT_END; /* the zeroed tail of a segment */
		return;
	}
	if (!wal_page_magic_version(hdr.magic)) {
		damaged(d, page_lsn, "invalid magic number %04X in WAL page", hdr.magic);
		return;
	}
	d->page_magic = hdr.magic;
	if (hdr.pageaddr != page_lsn) {
		damaged(d, page_lsn, "unexpected pageaddr %X/%08X in WAL page",
			(unsigned int)(hdr.pageaddr >> 32), (unsigned int)hdr.pageaddr);
		return;
	}
	if (!!(hdr.info & XLP_LONG_HEADER) != is_long ||
	    (is_long && (hdr.seg_size != d->seg_size || hdr.block_size != d->block_size))) {
		damaged(d, page_lsn, "invalid info bits %04X in WAL page", hdr.info);
		return;
	}
	if (d->resume == WAL_DEC_SKIP && d->skip_contrecord) {
		d->skip = hdr.info & XLP_FIRST_IS_CONTRECORD ? hdr.rem_len : 0;
		return;
	}
	if (mid_record && !(hdr.info & XLP_FIRST_IS_CONTRECORD) &&
	    (hdr.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD)) {
		record_expect(d); /* the record was never finished: a new one starts here */
		return;
	}
	if (mid_record != !!(hdr.info & XLP_FIRST_IS_CONTRECORD) ||
	    (mid_record && d->rec_tot && hdr.rem_len != d->rec_tot - d->rec_len)) {
		damaged(d, page_lsn, "invalid contrecord length %u in WAL page", hdr.rem_len);
		return;
	}
	if (d->resume == WAL_DEC_RECORD && !mid_record)
		d->rec_lsn = d->next_lsn; /* a record starts after the header */
}

/* Make room for the whole record being collected, as its bytes arrive. */
static int record_room(struct wal_decoder *d, uint32_t need)
{
	uint32_t cap = d->rec_cap ? d->rec_cap : 8192;
	uint8_t *p;

	if (need <= d->rec_cap)
		return 0;
	while (cap < need)
		cap = cap > WAL_RECORD_MAX / 2 ? WAL_RECORD_MAX : cap * 2;
	p = realloc(d->rec, cap);
	if (!p)
		return -ENOMEM;
	d->rec = p;
	d->rec_cap = cap;
	return 0;
}

int wal_decoder_begin(struct wal_decoder *d, uint32_t seg_size, uint32_t block_size,
		      uint64_t start_lsn, wal_xact_cb cb, void *cb_arg)
{
	memset(d, 0, sizeof(*d));
	if (!seg_size || (seg_size & (seg_size - 1)) || block_size < WAL_PAGE_LONG_HEADER ||
	    (block_size & (block_size - 1)) || block_size > seg_size || start_lsn % seg_size)
		return -EINVAL;
	d->seg_size = seg_size;
	d->block_size = block_size;
	d->next_lsn = start_lsn;
	d->state = WAL_DEC_SKIP; /* a record begun in the segment before is skipped */
	d->skip_contrecord = true;
	d->cb = cb;
	d->cb_arg = cb_arg;
	return 0;
}

void wal_decoder_end(struct wal_decoder *d)
{
	free(d->rec);
	d->rec = NULL;
	d->rec_cap = 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

int wal_decoder_feed(struct wal_decoder *d, uint64_t lsn, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (lsn != d->next_lsn || !d->seg_size)
		return -EINVAL;
	while (len) {
		uint64_t page_left = d->block_size - d->next_lsn % d->block_size;
		uint64_t n;

		if (d->state != WAL_DEC_PAGE_HEADER && page_left == d->block_size) {
			bool seg_start = d->next_lsn % d->seg_size == 0;

			if (d->state == WAL_DEC_SEGMENT_END && seg_start) {
				d->state = WAL_DEC_SKIP;
				d->skip = 0;
				d->skip_contrecord = true;
			}
			if (d->state != WAL_DEC_SEGMENT_END) {
				d->resume = d->state;
				d->state = WAL_DEC_PAGE_HEADER;
				d->page_hdr_len = 0;
				d->page_hdr_need =
					seg_start ? WAL_PAGE_LONG_HEADER : WAL_PAGE_SHORT_HEADER;
			}
		}
		switch (d->state) {
		case WAL_DEC_PAGE_HEADER:
			n = min_u64(len, d->page_hdr_need - d->page_hdr_len);
			memcpy(d->page_hdr + d->page_hdr_len, p, n);
			d->page_hdr_len += (uint32_t)n;
			d->next_lsn += n;
			if (d->page_hdr_len == d->page_hdr_need)
				page_header_done(d);
			break;
		case WAL_DEC_SEGMENT_END:
			n = min_u64(len, d->seg_size - d->next_lsn % d->seg_size);
			d->next_lsn += n;
			break;
		case WAL_DEC_SKIP:
			n = min_u64(min_u64(len, d->skip), page_left);
			d->skip -= n;
			d->next_lsn += n;
			if (!d->skip)
				skip_to_aligned(d);
			break;
		case WAL_DEC_RECORD:
		default: {
			uint32_t want = d->rec_len < WAL_RECORD_HEADER ?
						WAL_RECORD_HEADER - d->rec_len :
						d->rec_tot - d->rec_len;

			n = min_u64(min_u64(len, want), page_left);
			if (record_room(d, d->rec_len + (uint32_t)n) < 0) {
				damaged(d, d->rec_lsn, "out of memory for a record of %u bytes",
					d->rec_tot);
				return -ENOMEM;
			}
			memcpy(d->rec + d->rec_len, p, n);
			d->rec_len += (uint32_t)n;
			d->next_lsn += n;
			if (d->rec_len == WAL_RECORD_HEADER && !d->rec_tot) {
				uint32_t tot = get_le32(d->rec);
				uint64_t prev = get_le64(d->rec + 8);

				if (tot == 0) {
					d->state =
						WAL_DEC_SEGMENT_END; /* zeros: no more WAL here */
					break;
				}
				if (tot < WAL_RECORD_HEADER || tot > WAL_RECORD_MAX) {
					damaged(d, d->rec_lsn, "invalid record length %u in record",
						tot);
					break;
				}
				if (d->prev_lsn && prev != d->prev_lsn) {
					damaged(d, d->rec_lsn,
						"record with incorrect prev-link %X/%08X",
						(unsigned int)(prev >> 32), (unsigned int)prev);
					break;
				}
				d->rec_tot = tot;
			}
			if (d->rec_tot && d->rec_len == d->rec_tot)
				record_done(d);
			break;
		}
		}
		p += n;
		len -= n;
	}
	return 0;
}
