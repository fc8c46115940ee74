/* SPDX-License-Identifier: MIT */
/*
 * WAL file names, as PostgreSQL's xlog_internal.h defines them:
 *
 *   segment   TTTTTTTTXXXXXXXXYYYYYYYY           24 upper-case hex digits
 *   partial   TTTTTTTTXXXXXXXXYYYYYYYY.partial   a segment cut short at promotion
 *   history   TTTTTTTT.history                    timeline history
 *   backup    TTTTTTTTXXXXXXXXYYYYYYYY.OOOOOOOO.backup  backup label (offset in hex)
 *
 * Anything else (lower-case hex, slashes, "..", other suffixes, empty, too long) is not a
 * WAL name and is refused everywhere a name comes from outside.
 */
#ifndef WALSHIP_WAL_NAME_H
#define WALSHIP_WAL_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WAL_NAME_MAX 40 /* longest legal name (backup), without NUL */

enum wal_file_kind {
	WAL_FILE_SEGMENT = 1, /* values match enum wire_file_kind */
	WAL_FILE_PARTIAL = 2,
	WAL_FILE_HISTORY = 3,
	WAL_FILE_BACKUP = 4,
};

struct wal_name {
	enum wal_file_kind kind;
	uint32_t timeline; /* TTTTTTTT, never 0 */
	uint32_t log; /* XXXXXXXX (segment, partial, backup) */
	uint32_t seg; /* YYYYYYYY (segment, partial, backup) */
	uint32_t backup_offset; /* OOOOOOOO (backup only) */
};

/*
 * Parse @name (NUL-terminated).  Returns 0 and fills @out, or -EINVAL when @name is not
 * a WAL file name.  Does not check the segment number against a segment size (see
 * wal_name_segno()).
 */
int wal_name_parse(const char *name, struct wal_name *out);

/* True when @name is a WAL file name (wal_name_parse() succeeds). */
bool wal_name_valid(const char *name);

/* "segment", "partial", "history", "backup". */
const char *wal_file_kind_name(enum wal_file_kind kind);

/* A segment size PostgreSQL accepts (initdb --wal-segsize): a power of two, 1 MiB .. 1 GiB. */
bool wal_seg_size_valid(uint32_t seg_size);

/*
 * Segment number of a segment/partial/backup name for @seg_size (a power of two between
 * 1 MiB and 1 GiB): log * (0x100000000 / seg_size) + seg.  Returns -EINVAL when seg is
 * out of range for that size (seg >= 0x100000000 / seg_size).
 */
int wal_name_segno(const struct wal_name *name, uint32_t seg_size, uint64_t *segno);

/*
 * Where the WAL of segment @name begins at @seg_size, in *@start, and its timeline in
 * *@tli (may be NULL).  Returns 0, or -EINVAL when @name is not a segment's name (a
 * history, .partial or .backup file: no position of its own here) or does not fit
 * @seg_size (0: not known yet).
 */
int wal_name_segment_start(const char *name, uint32_t seg_size, uint64_t *start, uint32_t *tli);

/*
 * Format the segment name for @timeline and @segno at @seg_size into @buf (at least 25
 * bytes).  Inverse of parse + segno for segments.
 */
void wal_name_format_segment(char *buf, size_t len, uint32_t timeline, uint64_t segno,
			     uint32_t seg_size);

/*
 * The name of the segment @n after segment @name on its timeline, at @seg_size, into
 * @buf (at least 25 bytes).  Returns 0, or -EINVAL when @name is not a segment's name,
 * @seg_size is not valid or its segment number is out of range for it.
 */
int wal_name_next_segment(const char *name, uint32_t seg_size, unsigned int n, char *buf,
			  size_t len);

/*
 * In @text (@len bytes), the content of the history file of timeline @newest (lines
 * "parentTLI<tab>switchpoint<tab>reason", as PostgreSQL writes them; blank lines and `#`
 * comments skipped), find where timeline @tli ended: *@switch_lsn, the LSN at which its
 * child began, and *@child, that child (the next line's timeline, or @newest after the
 * last line).  Returns 0, -ENOENT when @tli is not in the history, -EINVAL when a line
 * does not parse.
 */
int wal_history_fork(const char *text, size_t len, uint32_t newest, uint32_t tli,
		     uint64_t *switch_lsn, uint32_t *child);

/*
 * In @text (@len bytes), the content of a timeline's history file, where that timeline
 * begins: *@start, the switch point of its last line (its parent's end).  Returns 0,
 * -ENOENT when there is no line, -EINVAL when a line does not parse.
 */
int wal_history_start(const char *text, size_t len, uint64_t *start);

/* At most this many bytes of a timeline history file are read (wal_history_read()): as
 * many as the validator lets a text file be stored with (WAL_TEXT_FILE_MAX, wal/page.h). */
#define WAL_HISTORY_MAX (1024 * 1024)

/* Read the history file of timeline @tli in directory @dir_fd (an archive) into @buf
 * (WAL_HISTORY_MAX bytes): its length, or -errno (-EFBIG for a longer file: never cut
 * short, where a cut line would parse as another switch point).  A small file read on the
 * event loop, as PostgreSQL's walsender reads one. */
ssize_t wal_history_read(int dir_fd, uint32_t tli, char *buf);

#endif /* WALSHIP_WAL_NAME_H */
