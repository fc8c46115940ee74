// SPDX-License-Identifier: MIT
/*
 * WAL page-header validation (contract in page.h).
 *
 * The validator is a small state machine over the byte stream of one file.  For segments
 * it collects the header of each page into page_buf (40 bytes on page 0, 24 on the
 * others), checks it as soon as it is complete, and skips the page body.  The block size
 * is not known until page 0's long header has been read; page 0 is always at least 1 kB
 * long (the smallest legal block size), so its 40-byte header comes before that matters.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/compiler.h"
#include "wal/page.h"

/* A history file stored is read whole (wal_history_read()). */
_Static_assert(WAL_HISTORY_MAX >= WAL_TEXT_FILE_MAX, "history files are read whole");

#define WAL_SEG_SIZE_MIN (1024u * 1024u)
#define WAL_SEG_SIZE_MAX (1024u * 1024u * 1024u)
#define WAL_BLOCK_SIZE_MIN 1024u
#define WAL_BLOCK_SIZE_MAX 65536u

#define WAL_READ_CHUNK (1024 * 1024)

/*
 * XLOG_PAGE_MAGIC of each PostgreSQL major version that walship knows.  A new major
 * version changes the magic whenever the WAL format changes; add it here after checking
 * its xlog_internal.h.
 */
static const struct {
	uint16_t magic;
	const char *version;
} page_magics[] = {
	{ 0xD093, "9.6" }, { 0xD097, "10" }, { 0xD098, "11" }, { 0xD101, "12" }, { 0xD106, "13" },
	{ 0xD10D, "14" },  { 0xD110, "15" }, { 0xD113, "16" }, { 0xD116, "17" },
};

/* Fields of a page header, decoded field by field from little-endian bytes. */
const char *wal_page_magic_version(uint16_t magic)
{
	for (size_t idx = 0; idx < ARRAY_SIZE(page_magics); idx++) {
		if (page_magics[idx].magic == magic)
			return page_magics[idx].version;
	}
	return NULL;
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

void wal_page_header_decode(const uint8_t *buf, bool is_long, struct wal_page_header *hdr)
{
	hdr->magic = get_le16(buf);
	hdr->info = get_le16(buf + 2);
	hdr->tli = get_le32(buf + 4);
	hdr->pageaddr = get_le64(buf + 8);
	hdr->rem_len = get_le32(buf + 16); /* buf + 20: padding */
	if (is_long) {
		hdr->sysid = get_le64(buf + 24);
		hdr->seg_size = get_le32(buf + 32);
		hdr->block_size = get_le32(buf + 36);
	} else {
		hdr->sysid = 0;
		hdr->seg_size = 0;
		hdr->block_size = 0;
	}
}

static bool is_segment_kind(enum wal_file_kind kind)
{
	return kind == WAL_FILE_SEGMENT || kind == WAL_FILE_PARTIAL;
}

static bool power_of_two_between(uint64_t value, uint64_t min, uint64_t max)
{
	return value >= min && value <= max && (value & (value - 1)) == 0;
}

/* The file's name as PostgreSQL would print it, from the parsed name. */
static void format_file_name(const struct wal_name *name, char *buf, size_t len)
{
	switch (name->kind) {
	case WAL_FILE_SEGMENT:
		snprintf(buf, len, "%08X%08X%08X", name->timeline, name->log, name->seg);
		return;
	case WAL_FILE_PARTIAL:
		snprintf(buf, len, "%08X%08X%08X.partial", name->timeline, name->log, name->seg);
		return;
	case WAL_FILE_HISTORY:
		snprintf(buf, len, "%08X.history", name->timeline);
		return;
	case WAL_FILE_BACKUP:
		snprintf(buf, len, "%08X%08X%08X.%08X.backup", name->timeline, name->log, name->seg,
			 name->backup_offset);
		return;
	}
	snprintf(buf, len, "(unknown)");
}

/* "WAL segment", "timeline history file", "backup history file": how messages name it. */
static const char *file_noun(enum wal_file_kind kind)
{
	switch (kind) {
	case WAL_FILE_SEGMENT:
	case WAL_FILE_PARTIAL:
		return "WAL segment";
	case WAL_FILE_HISTORY:
		return "timeline history file";
	case WAL_FILE_BACKUP:
		return "backup history file";
	}
	return "WAL file";
}

/*
 * Record the first error: format @fmt into wv->message and make the validator fail from
 * now on.  Returns -EINVAL for the caller to pass up.
 */
static int attr_printf(2, 3) fail(struct wal_validator *wv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(wv->message, sizeof(wv->message), fmt, ap);
	va_end(ap);
	wv->error = -EINVAL;
	return -EINVAL;
}

/* Segment start address: the name's segment number times the (announced) size. */
static uint64_t segment_start(const struct wal_validator *wv)
{
	uint64_t segno = 0;

	/* Cannot fail: wal_validator_begin() checked the same call. */
	(void)wal_name_segno(&wv->name, (uint32_t)wv->file_size, &segno);
	return segno * wv->file_size;
}

/* Checks shared by every page header: magic, info bits, timeline. */
static int check_common(struct wal_validator *wv, const struct wal_page_header *hdr,
			uint64_t page_offset)
{
	if (!wal_page_magic_version(hdr->magic) || (wv->have_id && hdr->magic != wv->id.page_magic))
		return fail(wv, "invalid magic number %04X in WAL segment %s, offset %llu",
			    hdr->magic, wv->fname, (unsigned long long)page_offset);
	if (hdr->info & ~XLP_ALL_FLAGS)
		return fail(wv, "invalid info bits %04X in WAL segment %s, offset %llu", hdr->info,
			    wv->fname, (unsigned long long)page_offset);
	if (hdr->tli == 0 || hdr->tli > wv->name.timeline)
		return fail(
			wv,
			"invalid timeline ID %u in WAL segment %s, offset %llu: the file name's timeline is %u",
			hdr->tli, wv->fname, (unsigned long long)page_offset, wv->name.timeline);
	if (hdr->tli < wv->last_tli)
		return fail(
			wv,
			"out-of-sequence timeline ID %u (after %u) in WAL segment %s, offset %llu",
			hdr->tli, wv->last_tli, wv->fname, (unsigned long long)page_offset);
	return 0;
}

/* Page 0: the long header that identifies the segment. */
static int check_first_page(struct wal_validator *wv)
{
	struct wal_page_header hdr;
	uint64_t expected = segment_start(wv);
	int ret;

	wal_page_header_decode(wv->page_buf, true, &hdr);
	ret = check_common(wv, &hdr, 0);
	if (ret)
		return ret;
	if (!(hdr.info & XLP_LONG_HEADER))
		return fail(wv, "missing long page header in WAL segment %s, offset 0", wv->fname);
	if (hdr.pageaddr != expected)
		return fail(
			wv,
			"unexpected page address %X/%X in WAL segment %s, offset 0: expected %X/%X",
			(uint32_t)(hdr.pageaddr >> 32), (uint32_t)hdr.pageaddr, wv->fname,
			(uint32_t)(expected >> 32), (uint32_t)expected);
	if (wv->expected_sysid != 0 && hdr.sysid != wv->expected_sysid)
		return fail(wv, "WAL segment %s belongs to system %llu, not %llu", wv->fname,
			    (unsigned long long)hdr.sysid, (unsigned long long)wv->expected_sysid);
	if (!power_of_two_between(hdr.seg_size, WAL_SEG_SIZE_MIN, WAL_SEG_SIZE_MAX))
		return fail(wv, "invalid WAL segment size %u in WAL segment %s, offset 0",
			    hdr.seg_size, wv->fname);
	if (hdr.seg_size != wv->file_size)
		return fail(
			wv,
			"WAL segment %s has segment size %u in its page header, but the file is %llu bytes",
			wv->fname, hdr.seg_size, (unsigned long long)wv->file_size);
	/* Power of two up to 64 kB, so it divides any legal segment size (at least 1 MB). */
	if (!power_of_two_between(hdr.block_size, WAL_BLOCK_SIZE_MIN, WAL_BLOCK_SIZE_MAX))
		return fail(wv, "invalid WAL block size %u in WAL segment %s, offset 0",
			    hdr.block_size, wv->fname);

	wv->id.system_identifier = hdr.sysid;
	wv->id.page_magic = hdr.magic;
	wv->id.seg_size = hdr.seg_size;
	wv->id.block_size = hdr.block_size;
	wv->id.timeline = hdr.tli;
	wv->have_id = true;
	wv->last_tli = hdr.tli;
	wv->valid_pages = 1;
	return 0;
}

/*
 * A later page.  It continues the segment when it claims the address it sits at;
 * anything else starts the unused tail.  A page claiming its address must be a valid
 * continuation, and must not come after the tail has begun.
 */
static int check_next_page(struct wal_validator *wv, uint64_t page_offset)
{
	struct wal_page_header hdr;
	uint64_t expected = segment_start(wv) + page_offset;
	int ret;

	wal_page_header_decode(wv->page_buf, false, &hdr);
	if (hdr.pageaddr != expected) {
		wv->in_tail = true;
		return 0;
	}
	if (wv->in_tail)
		return fail(
			wv,
			"WAL page at offset %llu of WAL segment %s follows the end of WAL: an earlier page is damaged",
			(unsigned long long)page_offset, wv->fname);
	ret = check_common(wv, &hdr, page_offset);
	if (ret)
		return ret;
	if (hdr.info & XLP_LONG_HEADER)
		return fail(wv, "unexpected long page header in WAL segment %s, offset %llu",
			    wv->fname, (unsigned long long)page_offset);
	wv->last_tli = hdr.tli;
	wv->valid_pages++;
	return 0;
}

int wal_validator_begin(struct wal_validator *wv, const struct wal_name *name, uint64_t file_size,
			uint64_t expected_sysid)
{
	uint64_t segno;

	memset(wv, 0, sizeof(*wv));
	wv->name = *name;
	wv->expected_sysid = expected_sysid;
	wv->file_size = file_size;
	format_file_name(name, wv->fname, sizeof(wv->fname));

	switch (name->kind) {
	case WAL_FILE_SEGMENT:
	case WAL_FILE_PARTIAL:
		if (!power_of_two_between(file_size, WAL_SEG_SIZE_MIN, WAL_SEG_SIZE_MAX))
			return fail(
				wv,
				"invalid size %llu of WAL segment %s: must be a power of two between 1 MB and 1 GB",
				(unsigned long long)file_size, wv->fname);
		if (wal_name_segno(name, (uint32_t)file_size, &segno) != 0)
			return fail(wv, "invalid WAL segment name %s for segment size %llu",
				    wv->fname, (unsigned long long)file_size);
		return 0;
	case WAL_FILE_HISTORY:
	case WAL_FILE_BACKUP:
		if (file_size == 0)
			return fail(wv, "%s %s is empty", file_noun(name->kind), wv->fname);
		if (file_size > WAL_TEXT_FILE_MAX)
			return fail(wv, "%s %s is too large: %llu bytes, at most %d allowed",
				    file_noun(name->kind), wv->fname, (unsigned long long)file_size,
				    WAL_TEXT_FILE_MAX);
		return 0;
	}
	return fail(wv, "unknown kind of WAL file %d", (int)name->kind);
}

static int feed_text(struct wal_validator *wv, const uint8_t *data, size_t len)
{
	const uint8_t *nul = memchr(data, '\0', len);

	if (nul) {
		return fail(wv, "%s %s contains a NUL byte at offset %llu",
			    file_noun(wv->name.kind), wv->fname,
			    (unsigned long long)(wv->offset + (uint64_t)(nul - data)));
	}
	wv->offset += len;
	return 0;
}

static int feed_segment(struct wal_validator *wv, const uint8_t *data, size_t len)
{
	while (len > 0) {
		/* Until page 0 is checked the block size is unknown; we are in page 0 then. */
		uint64_t block = wv->have_id ? wv->id.block_size : wv->file_size;
		uint64_t page_offset = wv->offset - wv->offset % block;
		uint64_t in_page = wv->offset - page_offset;
		uint64_t header_len =
			page_offset == 0 ? WAL_PAGE_LONG_HEADER : WAL_PAGE_SHORT_HEADER;
		size_t take;
		int ret;

		if (in_page < header_len) {
			take = (size_t)(header_len - in_page) < len ?
				       (size_t)(header_len - in_page) :
				       len;
			memcpy(wv->page_buf + in_page, data, take);
			wv->page_buf_len = (uint32_t)(in_page + take);
			if (wv->page_buf_len == header_len) {
				if (page_offset == 0)
					ret = check_first_page(wv);
				else
					ret = check_next_page(wv, page_offset);
				if (ret)
					return ret;
				wv->page_buf_len = 0;
			}
		} else {
			uint64_t rest = block - in_page;

			take = rest < len ? (size_t)rest : len;
		}
		wv->offset += take;
		data += take;
		len -= take;
	}
	return 0;
}

int wal_validator_feed(struct wal_validator *wv, const void *data, size_t len)
{
	if (wv->error)
		return wv->error;
	if (len == 0)
		return 0;
	if (len > wv->file_size - wv->offset) {
		return fail(wv, "%s %s is longer than the announced %llu bytes",
			    file_noun(wv->name.kind), wv->fname, (unsigned long long)wv->file_size);
	}
	if (is_segment_kind(wv->name.kind))
		return feed_segment(wv, data, len);
	return feed_text(wv, data, len);
}

int wal_validator_skip(struct wal_validator *wv, uint64_t len)
{
	uint64_t in_page;

	if (wv->error)
		return wv->error;
	if (!is_segment_kind(wv->name.kind) || !wv->have_id || wv->page_buf_len)
		return fail(wv, "internal error: skipping bytes before a page header was read");
	in_page = wv->offset % wv->id.block_size;
	if (in_page < WAL_PAGE_SHORT_HEADER || len > wv->id.block_size - in_page ||
	    len > wv->file_size - wv->offset)
		return fail(wv,
			    "internal error: skipping %llu bytes at offset %llu crosses a page "
			    "header",
			    (unsigned long long)len, (unsigned long long)wv->offset);
	wv->offset += len;
	return 0;
}

int wal_validator_read_failed(struct wal_validator *wv, uint64_t offset, int err)
{
	snprintf(wv->message, sizeof(wv->message), "could not read file \"%s\" at offset %llu: %s",
		 wv->fname, (unsigned long long)offset, strerror(-err));
	wv->error = err;
	return err;
}

int wal_validator_end(struct wal_validator *wv, struct wal_identity *id)
{
	if (wv->error)
		return wv->error;
	if (wv->offset != wv->file_size)
		return fail(wv, "%s %s is too short: %llu of %llu bytes", file_noun(wv->name.kind),
			    wv->fname, (unsigned long long)wv->offset,
			    (unsigned long long)wv->file_size);
	if (is_segment_kind(wv->name.kind) && !wv->have_id)
		return fail(wv, "WAL segment %s has no first page header", wv->fname);
	if (id) {
		if (is_segment_kind(wv->name.kind))
			*id = wv->id;
		else
			memset(id, 0, sizeof(*id));
	}
	return 0;
}

int wal_validate_buffer(const void *data, uint64_t len, const struct wal_name *name,
			uint64_t expected_sysid, struct wal_validator *wv, struct wal_identity *id)
{
	int ret = wal_validator_begin(wv, name, len, expected_sysid);

	if (!ret)
		ret = wal_validator_feed(wv, data, (size_t)len);
	if (!ret)
		ret = wal_validator_end(wv, id);
	return ret;
}

int wal_validate_fd(int fd, const struct wal_name *name, uint64_t expected_sysid,
		    struct wal_validator *wv, struct wal_identity *id)
{
	char fname[WAL_NAME_MAX + 1];
	struct stat st;
	uint8_t *buf;
	uint64_t offset = 0;
	int ret;

	format_file_name(name, fname, sizeof(fname));
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		memset(wv, 0, sizeof(*wv));
		snprintf(wv->message, sizeof(wv->message), "could not stat file \"%s\": %s", fname,
			 strerror(-ret));
		wv->error = ret;
		return ret;
	}
	if (!S_ISREG(st.st_mode)) {
		memset(wv, 0, sizeof(*wv));
		return fail(wv, "\"%s\" is not a regular file", fname);
	}

	ret = wal_validator_begin(wv, name, (uint64_t)st.st_size, expected_sysid);
	if (ret)
		return ret;

	buf = malloc(WAL_READ_CHUNK);
	if (!buf) {
		snprintf(wv->message, sizeof(wv->message), "out of memory");
		wv->error = -ENOMEM;
		return -ENOMEM;
	}

	while (offset < (uint64_t)st.st_size) {
		uint64_t want = (uint64_t)st.st_size - offset;
		ssize_t got;

		if (want > WAL_READ_CHUNK)
			want = WAL_READ_CHUNK;
		got = pread(fd, buf, (size_t)want, (off_t)offset);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			ret = wal_validator_read_failed(wv, offset, -errno);
			goto out_free_buf;
		}
		if (got == 0)
			break; /* shrank under us: wal_validator_end() reports the short file */
		ret = wal_validator_feed(wv, buf, (size_t)got);
		if (ret)
			goto out_free_buf;
		offset += (uint64_t)got;
	}
	ret = wal_validator_end(wv, id);

out_free_buf:
	free(buf);
	return ret;
}
