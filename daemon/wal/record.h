/* SPDX-License-Identifier: MIT */
/*
 * WAL record decoder: walks PostgreSQL 15's XLogRecords through a stream of WAL bytes and
 * reports the ends of transactions (commit and abort records, with their xact_time).
 * Used by the walsender endpoint (serve/) to hold a delayed or held standby at a commit
 * boundary, as recovery_min_apply_delay and recovery_target_time measure.
 *
 * Layout (access/xlogrecord.h, access/xact.h, access/xlog_internal.h; little-endian):
 *
 *  - each page starts with a page header (wal/page.h decodes it): the long one (40 bytes)
 *    on the first page of a segment, the short one (24 bytes) on the others; a record
 *    that does not fit a page continues after the next page's header, whose xlp_rem_len
 *    says how many of its bytes remain (XLP_FIRST_IS_CONTRECORD);
 *  - a record starts MAXALIGNed (8 bytes) with XLogRecord (24 bytes): u32 xl_tot_len,
 *    u32 xl_xid, u64 xl_prev, u8 xl_info, u8 xl_rmid, 2 bytes padding, u32 xl_crc; then
 *    the block and main-data headers, the block data, and the main data last;
 *  - xl_crc is CRC-32C over the bytes after the header, then the header up to xl_crc;
 *  - an XLOG_SWITCH record ends the segment: the next record starts the next segment;
 *  - a transaction's end is a record of rmgr RM_XACT_ID (1) whose xl_info & 0x70 is
 *    XLOG_XACT_COMMIT (0x00), COMMIT_PREPARED (0x30), ABORT (0x20) or ABORT_PREPARED
 *    (0x40); its main data starts with TimestampTz xact_time (microseconds since
 *    2000-01-01 00:00 UTC).
 *
 * Written here rather than taken from PostgreSQL because its xlogreader is server code
 * (palloc, elog, the backend's headers) that no library exports.
 *
 * The decoder is fed bytes in order, in pieces of any size, starting at a segment's first
 * byte; it keeps its state across calls (a record split across pages, segments or calls).
 * Damage (a bad page header, a bad length, a wrong xl_prev, a bad CRC) is counted with a
 * message, and the decoder resumes at the next segment: what lies between is skipped.
 */
#ifndef WALSHIP_WAL_RECORD_H
#define WALSHIP_WAL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal/page.h"

/* The largest record accepted (PostgreSQL's XLogRecordMaxSize, 1020 MiB). */
#define WAL_RECORD_MAX (1020u * 1024u * 1024u)
/* sizeof(XLogRecord) */
#define WAL_RECORD_HEADER 24
/* Records begin at 8-byte boundaries (PostgreSQL's MAXALIGN); the padding is zeros. */
#define WAL_MAXALIGN(x) (((x) + 7) & ~(uint64_t)7)

enum wal_xact_kind {
	WAL_XACT_COMMIT,
	WAL_XACT_COMMIT_PREPARED,
	WAL_XACT_ABORT,
	WAL_XACT_ABORT_PREPARED,
};

/* The end of a transaction, as its record says. */
struct wal_xact_end {
	uint64_t lsn; /* where the record starts (pg_waldump's "lsn:") */
	uint64_t end_lsn; /* the byte after its last (recovery's EndRecPtr) */
	int64_t xact_time; /* TimestampTz: microseconds since 2000-01-01 00:00 UTC */
	uint32_t xid; /* xl_xid */
	enum wal_xact_kind kind;
};

/* Called for each transaction end, in WAL order. */
typedef void (*wal_xact_cb)(void *arg, const struct wal_xact_end *x);

enum wal_decoder_state {
	WAL_DEC_PAGE_HEADER, /* collecting a page header */
	WAL_DEC_SKIP, /* skipping bytes: alignment, or the tail of a record begun before */
	WAL_DEC_RECORD, /* collecting a record */
	WAL_DEC_SEGMENT_END, /* skipping to the next segment (switch, zeros, damage) */
};

struct wal_decoder {
	uint32_t seg_size, block_size;
	uint64_t next_lsn; /* the address of the next byte fed */
	enum wal_decoder_state state, resume; /* resume: after the page header */
	uint8_t page_hdr[WAL_PAGE_LONG_HEADER];
	uint32_t page_hdr_len, page_hdr_need;
	bool skip_contrecord; /* skipping a record whose start was not seen */
	uint64_t skip; /* bytes of WAL_DEC_SKIP left (not counting page headers) */
	uint8_t *rec; /* the record being collected */
	uint32_t rec_cap, rec_len, rec_tot;
	uint64_t rec_lsn;
	uint64_t prev_lsn; /* start of the last good record, 0 unknown */
	uint16_t page_magic; /* of the last page header: the block image flags' layout */
	uint64_t end_lsn; /* the end of the last good record, 0 none yet */
	uint64_t records, xact_ends, errors;
	uint64_t damaged_lsn; /* where the last error was (the rest of its segment skipped) */
	char message[256]; /* the last error, in PostgreSQL's message style */
	wal_xact_cb cb;
	void *cb_arg;
};

/*
 * Start decoding at @start_lsn, which must be a segment boundary (a record running into
 * that segment from the one before is skipped).  @seg_size and @block_size as the
 * cluster's identity says.  @cb (may be NULL) gets each transaction end.  Returns 0, or
 * -EINVAL when the sizes are impossible or @start_lsn is not a segment boundary.
 */
int wal_decoder_begin(struct wal_decoder *d, uint32_t seg_size, uint32_t block_size,
		      uint64_t start_lsn, wal_xact_cb cb, void *cb_arg);

/*
 * Feed @len bytes of WAL from address @lsn, which must be d->next_lsn (-EINVAL
 * otherwise, nothing consumed).  Reports transaction ends through the callback as their
 * records complete.  Returns 0, or -ENOMEM when a record's buffer cannot grow (the
 * decoder then resumes at the next segment).  Damage is not an error of the call: it
 * increments d->errors and sets d->message.
 */
int wal_decoder_feed(struct wal_decoder *d, uint64_t lsn, const void *data, size_t len);

/* Free the record buffer.  The decoder may be begun again. */
void wal_decoder_end(struct wal_decoder *d);

/* "COMMIT", "COMMIT_PREPARED", "ABORT", "ABORT_PREPARED": pg_waldump's words. */
const char *wal_xact_kind_name(enum wal_xact_kind kind);

#endif /* WALSHIP_WAL_RECORD_H */
