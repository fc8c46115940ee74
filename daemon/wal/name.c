// SPDX-License-Identifier: MIT
/*
 * WAL file names (contract in name.h).  The checks follow PostgreSQL's IsXLogFileName(),
 * IsPartialXLogFileName(), IsTLHistoryFileName() and IsBackupHistoryFileName(), with one
 * addition: timeline 0 does not exist, so a name carrying it is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wal/name.h"

#define WAL_HEX_FIELD 8 /* TTTTTTTT, XXXXXXXX, YYYYYYYY, OOOOOOOO */
#define WAL_SEGMENT_NAME_LEN 24

#define WAL_SEG_SIZE_MIN (1024u * 1024u)
#define WAL_SEG_SIZE_MAX (1024u * 1024u * 1024u)

/*
 * Parse the 8 upper-case hex digits at @text into @value.  Returns false on any other
 * character (lower case included: PostgreSQL always writes upper case, so a lower-case
 * name is not one it produced).
 */
static bool parse_hex8(const char *text, uint32_t *value)
{
	uint32_t result = 0;

	for (int pos = 0; pos < WAL_HEX_FIELD; pos++) {
		char digit = text[pos];
		uint32_t nibble;

		if (digit >= '0' && digit <= '9')
			nibble = (uint32_t)(digit - '0');
		else if (digit >= 'A' && digit <= 'F')
			nibble = (uint32_t)(digit - 'A' + 10);
		else
			return false;
		result = (result << 4) | nibble;
	}
	*value = result;
	return true;
}

/* TTTTTTTTXXXXXXXXYYYYYYYY at @text into @out. */
static bool parse_segment_part(const char *text, struct wal_name *out)
{
	return parse_hex8(text, &out->timeline) && parse_hex8(text + 8, &out->log) &&
	       parse_hex8(text + 16, &out->seg);
}

int wal_name_parse(const char *name, struct wal_name *out)
{
	struct wal_name parsed = { 0 };
	size_t len;

	if (!name)
		return -EINVAL;
	/* Bounded scan: a name from outside may be long, and longer than any legal one. */
	len = strnlen(name, WAL_NAME_MAX + 1);

	switch (len) {
	case WAL_SEGMENT_NAME_LEN:
		parsed.kind = WAL_FILE_SEGMENT;
		if (!parse_segment_part(name, &parsed))
			return -EINVAL;
		break;
	case WAL_SEGMENT_NAME_LEN + sizeof(".partial") - 1:
		parsed.kind = WAL_FILE_PARTIAL;
		if (!parse_segment_part(name, &parsed) ||
		    strcmp(name + WAL_SEGMENT_NAME_LEN, ".partial") != 0)
			return -EINVAL;
		break;
	case WAL_HEX_FIELD + sizeof(".history") - 1:
		parsed.kind = WAL_FILE_HISTORY;
		if (!parse_hex8(name, &parsed.timeline) ||
		    strcmp(name + WAL_HEX_FIELD, ".history") != 0)
			return -EINVAL;
		break;
	case WAL_SEGMENT_NAME_LEN + 1 + WAL_HEX_FIELD + sizeof(".backup") - 1:
		parsed.kind = WAL_FILE_BACKUP;
		if (!parse_segment_part(name, &parsed) || name[WAL_SEGMENT_NAME_LEN] != '.' ||
		    !parse_hex8(name + WAL_SEGMENT_NAME_LEN + 1, &parsed.backup_offset) ||
		    strcmp(name + WAL_SEGMENT_NAME_LEN + 1 + WAL_HEX_FIELD, ".backup") != 0)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}

	if (parsed.timeline == 0)
		return -EINVAL;
	if (out)
		*out = parsed;
	return 0;
}

bool wal_name_valid(const char *name)
{
	return wal_name_parse(name, NULL) == 0;
}

const char *wal_file_kind_name(enum wal_file_kind kind)
{
	switch (kind) {
	case WAL_FILE_SEGMENT:
		return "segment";
	case WAL_FILE_PARTIAL:
		return "partial";
	case WAL_FILE_HISTORY:
		return "history";
	case WAL_FILE_BACKUP:
		return "backup";
	}
	return "unknown";
}

bool wal_seg_size_valid(uint32_t seg_size)
{
	return seg_size >= WAL_SEG_SIZE_MIN && seg_size <= WAL_SEG_SIZE_MAX &&
	       (seg_size & (seg_size - 1)) == 0;
}

int wal_name_segno(const struct wal_name *name, uint32_t seg_size, uint64_t *segno)
{
	uint64_t segs_per_id;

	if (!wal_seg_size_valid(seg_size))
		return -EINVAL;
	if (name->kind != WAL_FILE_SEGMENT && name->kind != WAL_FILE_PARTIAL &&
	    name->kind != WAL_FILE_BACKUP)
		return -EINVAL;

	segs_per_id = UINT64_C(0x100000000) / seg_size;
	if (name->seg >= segs_per_id)
		return -EINVAL;
	*segno = (uint64_t)name->log * segs_per_id + name->seg;
	return 0;
}

int wal_name_segment_start(const char *name, uint32_t seg_size, uint64_t *start, uint32_t *tli)
{
	struct wal_name wn;
	uint64_t segno;

	if (wal_name_parse(name, &wn) < 0 || wn.kind != WAL_FILE_SEGMENT ||
	    wal_name_segno(&wn, seg_size, &segno) < 0)
		return -EINVAL;
	*start = segno * seg_size;
	if (tli)
		*tli = wn.timeline;
	return 0;
}

void wal_name_format_segment(char *buf, size_t len, uint32_t timeline, uint64_t segno,
			     uint32_t seg_size)
{
	uint64_t segs_per_id;

	if (!wal_seg_size_valid(seg_size)) {
		/* Contract violation by the caller: leave an empty string rather than garbage. */
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	segs_per_id = UINT64_C(0x100000000) / seg_size;
	snprintf(buf, len, "%08X%08X%08X", timeline, (uint32_t)(segno / segs_per_id),
		 (uint32_t)(segno % segs_per_id));
}

int wal_name_next_segment(const char *name, uint32_t seg_size, unsigned int n, char *buf,
			  size_t len)
{
	struct wal_name wn;
	uint64_t segno;

	if (wal_name_parse(name, &wn) < 0 || wn.kind != WAL_FILE_SEGMENT ||
	    !wal_seg_size_valid(seg_size) || wal_name_segno(&wn, seg_size, &segno) < 0)
		return -EINVAL;
	wal_name_format_segment(buf, len, wn.timeline, segno + n, seg_size);
	return 0;
}

/* The next entry of a history's text from *@p (before @end), blank lines and comments
 * skipped: its parent timeline and switch point.  Returns 1, 0 at the end, or -EINVAL
 * when a line does not parse. */
static int history_next(const char **p, const char *end, uint32_t *parent, uint64_t *switch_lsn)
{
	while (*p < end) {
		const char *eol = memchr(*p, '\n', (size_t)(end - *p));
		char line[256];
		unsigned int tli, hi, lo;
		size_t n = (size_t)((eol ? eol : end) - *p);

		snprintf(line, sizeof(line), "%.*s",
			 (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), *p);
		*p = eol ? eol + 1 : end;
		if (strspn(line, " \t\r") == strlen(line) || line[strspn(line, " \t")] == '#')
			continue;
		if (sscanf(line, "%u\t%X/%X", &tli, &hi, &lo) != 3)
			return -EINVAL;
		*parent = tli;
		*switch_lsn = (uint64_t)hi << 32 | lo;
		return 1;
	}
	return 0;
}

int wal_history_fork(const char *text, size_t len, uint32_t newest, uint32_t tli,
		     uint64_t *switch_lsn, uint32_t *child)
{
	const char *p = text, *end = text + len;
	bool found = false;
	uint32_t parent;
	uint64_t lsn;
	int ret;

	while ((ret = history_next(&p, end, &parent, &lsn)) > 0) {
		if (found) { /* the line after @tli's names its child */
			*child = parent;
			return 0;
		}
		if (parent == tli) {
			*switch_lsn = lsn;
			found = true;
		}
	}
	if (ret < 0)
		return ret;
	if (!found)
		return -ENOENT;
	*child = newest;
	return 0;
}

int wal_history_start(const char *text, size_t len, uint64_t *start)
{
	const char *p = text, *end = text + len;
	bool found = false;
	uint32_t parent;
	uint64_t lsn;
	int ret;

	while ((ret = history_next(&p, end, &parent, &lsn)) > 0) {
		*start = lsn;
		found = true;
	}
	if (ret < 0)
		return ret;
	return found ? 0 : -ENOENT;
}

ssize_t wal_history_read(int dir_fd, uint32_t tli, char *buf)
{
	char name[WAL_NAME_MAX];
	struct stat sb;
	size_t got = 0;
	ssize_t n;
	int fd;

	snprintf(name, sizeof(name), "%08X.history", tli);
	/* Never waiting on a FIFO under that name (the event loop and walship fetch read
	 * it), never following a link out of the archive. */
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EINVAL; /* (fstat of an open descriptor fails on no regular file) */
	}
	if ((uint64_t)sb.st_size > WAL_HISTORY_MAX) {
		close(fd);
		return -EFBIG;
	}
	while (got < WAL_HISTORY_MAX) {
		n = read(fd, buf + got, WAL_HISTORY_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	/* grown past the buffer since its size was read: not a shorter history */
	if (got == WAL_HISTORY_MAX) {
		char more;

		while ((n = read(fd, &more, 1)) < 0 && errno == EINTR)
			;
		if (n != 0) {
			close(fd);
			return n < 0 ? -errno : -EFBIG;
		}
	}
	close(fd);
	return (ssize_t)got;
}
