/* SPDX-License-Identifier: MIT */
/*
 * WAL page-header validation (PostgreSQL's XLogPageHeaderData / XLogLongPageHeaderData,
 * access/xlog_internal.h).  On disk, little-endian on x86_64:
 *
 *   short header (24 bytes): u16 xlp_magic, u16 xlp_info, u32 xlp_tli, u64 xlp_pageaddr,
 *                            u32 xlp_rem_len, 4 bytes padding
 *   long header (40 bytes, first page of a segment, xlp_info & XLP_LONG_HEADER):
 *                            the short header, then u64 xlp_sysid, u32 xlp_seg_size,
 *                            u32 xlp_xlog_blcksz
 *
 * Validation of a whole segment (or .partial) file, as a validator fed the file's bytes in
 * order, in pieces of any size (so the replica validates each DATA chunk as it arrives):
 *
 *  - page 0 must carry a long header: a known magic (PostgreSQL 9.6 .. 17, table in
 *    page.c), only known xlp_info bits, xlp_tli >= 1 and <= the file name's timeline,
 *    xlp_pageaddr == the segment's start address, xlp_seg_size == the file size (a power
 *    of two, 1 MiB .. 1 GiB), xlp_xlog_blcksz == the block size (a power of two 1..64 kB),
 *    and, when the validator was given an expected system identifier, xlp_sysid equal to it;
 *  - every later page either is a valid continuation (same magic, known info bits, no long
 *    header flag, tli non-decreasing and <= the name's timeline, pageaddr == segment start +
 *    page offset), or begins the unused tail of the segment: a page that does not claim the
 *    expected address (all zeros after a WAL switch, or stale content of a recycled file).
 *    Once the tail has begun, a page that does claim the expected address with a valid
 *    header is an error: valid WAL after a gap means a damaged page in between;
 *  - the file size must equal xlp_seg_size.
 *
 * .history and .backup files are text: validated as non-empty, at most 1 MiB, no NUL bytes.
 */
#ifndef WALSHIP_WAL_PAGE_H
#define WALSHIP_WAL_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal/identity.h"
#include "wal/name.h"

#define WAL_PAGE_SHORT_HEADER 24
#define WAL_PAGE_LONG_HEADER 40
#define WAL_TEXT_FILE_MAX (1024 * 1024)

/* xlp_info bits, access/xlog_internal.h. */
#define XLP_FIRST_IS_CONTRECORD 0x0001
#define XLP_LONG_HEADER 0x0002
#define XLP_BKP_REMOVABLE 0x0004
#define XLP_FIRST_IS_OVERWRITE_CONTRECORD 0x0008
#define XLP_ALL_FLAGS 0x000F

/* One page header, decoded. */
struct wal_page_header {
	uint16_t magic;
	uint16_t info;
	uint32_t tli;
	uint64_t pageaddr;
	uint32_t rem_len; /* bytes of a record continued from the previous page */
	/* Long header only (0 in a short one). */
	uint64_t sysid;
	uint32_t seg_size;
	uint32_t block_size;
};

/*
 * Decode the page header at @buf: WAL_PAGE_LONG_HEADER bytes when @is_long, else
 * WAL_PAGE_SHORT_HEADER.  No check: the validator and the record decoder (wal/record.h)
 * judge the fields.
 */
void wal_page_header_decode(const uint8_t *buf, bool is_long, struct wal_page_header *hdr);

/* Validator state for one file; opaque to callers but on the stack (no allocation). */
struct wal_validator {
	struct wal_name name;
	char fname[WAL_NAME_MAX + 1]; /* @name as PostgreSQL prints it, for messages */
	uint64_t expected_sysid; /* 0: accept any */
	uint64_t file_size; /* total size announced for the file */
	uint64_t offset; /* bytes consumed so far */
	uint8_t page_buf[WAL_PAGE_LONG_HEADER]; /* a header split across feed() calls */
	uint32_t page_buf_len;
	struct wal_identity id;
	bool have_id;
	bool in_tail;
	uint32_t last_tli;
	uint64_t valid_pages;
	int error; /* first error, sticky */
	char message[256]; /* why, in PostgreSQL's message style */
};

/*
 * Start validating a file named @name of @file_size bytes.  @expected_sysid 0 accepts any
 * system identifier.  Returns 0, or -EINVAL (with wv->message set) when the size alone is
 * already impossible for the kind.
 */
int wal_validator_begin(struct wal_validator *wv, const struct wal_name *name, uint64_t file_size,
			uint64_t expected_sysid);

/*
 * Feed the next @len bytes of the file.  Bytes must come in order without gaps.  Returns 0
 * or -EINVAL at the first bad page (sticky: later calls return -EINVAL too);
 * wv->message says what is wrong and where ("invalid magic number 0000 in segment
 * 000000010000000000000003, offset 8192").
 */
int wal_validator_feed(struct wal_validator *wv, const void *data, size_t len);

/*
 * Step over the next @len bytes of a segment without reading them: they must lie in one
 * page's body, past its header (the validator checks headers alone, so a reader may
 * fetch those and skip the rest: ring/validate.c).  Returns 0, or -EINVAL (a caller's
 * mistake: a skip into a header, or before the first page gave the block size).
 */
int wal_validator_skip(struct wal_validator *wv, uint64_t len);

/* Reading the file at @offset failed with -errno @err: record it (sticky, "could not read
 * file ... at offset ...") and return @err. */
int wal_validator_read_failed(struct wal_validator *wv, uint64_t offset, int err);

/*
 * Finish: checks that exactly file_size bytes were fed and that the first page was seen.
 * Returns 0 and fills @id (may be NULL; for text files id is zeroed), or -EINVAL.
 */
int wal_validator_end(struct wal_validator *wv, struct wal_identity *id);

/*
 * Validate a whole file held at @fd (read with pread, in 1 MiB pieces).  Used by
 * `walship fetch` before serving and by the duplicate check.  Returns 0 or -EINVAL
 * (message in @wv), or -errno when reading fails.
 */
int wal_validate_fd(int fd, const struct wal_name *name, uint64_t expected_sysid,
		    struct wal_validator *wv, struct wal_identity *id);

/*
 * Validate a whole file of @len bytes held in memory at @data (the primary passes a
 * read-only mapping of a pushed file): begin, feed and end in one call.  For segments only
 * the page headers are read, so the pages of a mapping in between are never touched.
 * Returns 0 and fills @id (may be NULL), or -EINVAL with the reason in wv->message.
 */
int wal_validate_buffer(const void *data, uint64_t len, const struct wal_name *name,
			uint64_t expected_sysid, struct wal_validator *wv, struct wal_identity *id);

/* Human-readable PostgreSQL major version for a page magic ("15"), or NULL if unknown. */
const char *wal_page_magic_version(uint16_t magic);

#endif /* WALSHIP_WAL_PAGE_H */
