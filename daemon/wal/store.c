// SPDX-License-Identifier: MIT
/*
 * The replica's durable WAL store, synchronous parts (see store.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/durable.h"
#include "common/file_compare.h"
#include "common/log.h"
#include "wal/record.h"
#include "wal/store.h"

#define SYSID_FILE "system_identifier"

#define XATTR_RESUME "user.walship.resume"
#define XATTR_CRC "user.walship.crc32c"
/* user.walship.resume: magic(4) size(8) durable(8) crc(4) record_crc(4), little-endian */
#define RESUME_MAGIC 0x31525357u /* "WSR1" */
#define RESUME_LEN 28
/* user.walship.crc32c: magic(4) size(8) crc(4) record_crc(4) */
#define CRC_MAGIC 0x31435357u /* "WSC1" */
#define CRC_LEN 20
#define READ_CHUNK (1024 * 1024)

static void put_le(uint8_t *at, uint64_t value, int bytes)
{
	for (int idx = 0; idx < bytes; idx++)
		at[idx] = (uint8_t)(value >> (8 * idx));
}

static uint64_t get_le(const uint8_t *at, int bytes)
{
	uint64_t value = 0;

	for (int idx = 0; idx < bytes; idx++)
		value |= (uint64_t)at[idx] << (8 * idx);
	return value;
}

static bool xattr_unsupported(int err)
{
	return err == ENOTSUP || err == EOPNOTSUPP;
}

static void store_no_xattr(struct store *st)
{
	if (st->no_xattr)
		return;
	st->no_xattr = true;
	log_log("archive \"%s\" keeps no extended attributes: a pushed segment cut short is "
		"received again from its start",
		st->path);
}

/* Read the resume record of @fd: 0 with the fields, or -ENODATA when it has none or a bad one. */
static int store_read_resume(int fd, uint64_t *size, uint64_t *durable, uint32_t *crc)
{
	uint8_t rec[RESUME_LEN];
	ssize_t len = fgetxattr(fd, XATTR_RESUME, rec, sizeof(rec));

	if (len != RESUME_LEN || get_le(rec, 4) != RESUME_MAGIC ||
	    get_le(rec + 24, 4) != crc32c(0, rec, 24))
		return -ENODATA;
	*size = get_le(rec + 4, 8);
	*durable = get_le(rec + 12, 8);
	*crc = (uint32_t)get_le(rec + 20, 4);
	return 0;
}

void store_durable_dirs(const struct store *st, struct durable_dir *dir,
			struct durable_dir *incoming)
{
	*dir = (struct durable_dir){ st->dir_fd, st->path };
	*incoming = (struct durable_dir){ st->incoming_fd, st->incoming_path };
}

/* Move @name from directory @from_fd (@from: its path under archive_dir, "" for
 * archive_dir itself) into .refused: store_set_aside() and store_set_aside_stored(). */
static int store_set_aside_from(struct store *st, int from_fd, const char *from, const char *name,
				char *as, size_t as_len)
{
	int fd = durable_dir_open(st->dir_fd, st->path, STORE_REFUSED_DIR), err = 0;

	if (fd < 0)
		return fd;
	/* Never over one set aside before: sequence numbers start again with the store's
	 * life (.refused is not scanned), so a later NAME.SEQ may meet an earlier one. */
	snprintf(as, as_len, "%s", name);
	for (int i = 2; renameat2(from_fd, name, fd, as, RENAME_NOREPLACE) < 0; i++) {
		if (errno != EEXIST || i > 999) {
			err = errno;
			log_error("could not move \"%s%s%s/%s\" to \"%s/%s\": %s", st->path,
				  *from ? "/" : "", from, name, st->path, STORE_REFUSED_DIR,
				  strerror(err));
			goto out;
		}
		snprintf(as, as_len, "%s-%d", name, i);
	}
	st->set_aside++;
	/* .refused and its entry in archive_dir durable before the removal from the source
	 * directory is: at every crash, one directory or the other reaches the file.  It is
	 * moved either way: a failed fsync is logged, not a failure of the move. */
	if (fsync(fd) < 0 || fsync(st->dir_fd) < 0 || (from_fd != st->dir_fd && fsync(from_fd) < 0))
		log_error("could not fsync the directories of \"%s/%s/%s\": %s", st->path,
			  STORE_REFUSED_DIR, as, strerror(errno));
out:
	close(fd);
	return -err;
}

int store_set_aside(struct store *st, const char *tmp_name, char *as, size_t as_len)
{
	return store_set_aside_from(st, st->incoming_fd, STORE_INCOMING_DIR, tmp_name, as, as_len);
}

int store_set_aside_stored(struct store *st, const char *name, char *as, size_t as_len)
{
	int ret = store_set_aside_from(st, st->dir_fd, "", name, as, as_len);

	for (unsigned int idx = 0; ret == 0 && idx < st->nrecent; idx++)
		if (!strcmp(st->recent[idx].name, name))
			st->recent[idx].name[0] = '\0'; /* matches no name from now on */
	return ret;
}

/* CRC-32C of the first @len bytes of file @name in directory @dir_fd: 0, or -errno when
 * they cannot be read (the file is shorter: -EIO). */
static int store_crc_file_prefix(int dir_fd, const char *name, uint64_t len, uint32_t *crc)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = store_crc_prefix(fd, len, crc);
	close(fd);
	return ret;
}

int store_file_begins_with(int fd, const struct store_partial *p)
{
	uint32_t crc;
	int ret = store_crc_prefix(fd, p->durable, &crc);

	if (ret == -EIO)
		return 0; /* shorter than the partial's durable bytes */
	return ret < 0 ? ret : crc == p->crc;
}

static int store_read_crc_fd(int fd, uint64_t *size, uint32_t *crc);

bool store_file_recorded(int fd)
{
	uint64_t size;
	uint32_t crc;

	return store_read_crc_fd(fd, &size, &crc) == 0;
}

static void store_partial_gone(const struct store *st, const struct store_partial *p)
{
	if (st->partial_gone)
		st->partial_gone(st->partial_gone_arg, p->name, p->tmp_name);
}

int store_partial_retire(struct store *st, const struct store_partial *p, int holder_dir,
			 const char *holder)
{
	char as[sizeof(p->tmp_name) + 16];
	uint32_t crc;

	store_partial_gone(st, p);
	if (holder && store_crc_file_prefix(holder_dir, holder, p->durable, &crc) == 0 &&
	    crc == p->crc) {
		if (unlinkat(st->incoming_fd, p->tmp_name, 0) < 0 && errno != ENOENT) {
			log_warning("could not remove file \"%s/%s/%s\": %s", st->path,
				    STORE_INCOMING_DIR, p->tmp_name, strerror(errno));
			return -1;
		}
		/* durable, or the next start finds it again and offers it for nothing */
		(void)fsync(st->incoming_fd);
		log_log("discarded \"%s\" (%" PRIu64 " durable bytes): \"%s\" holds them",
			p->tmp_name, p->durable, holder);
		return 0;
	}
	if (store_set_aside(st, p->tmp_name, as, sizeof(as)) < 0) {
		log_warning("left \"%s/%s/%s\" as it is: its %" PRIu64
			    " durable bytes may have been acknowledged",
			    st->path, STORE_INCOMING_DIR, p->tmp_name, p->durable);
		return -1;
	}
	if (holder)
		log_warning("set \"%s\" aside as \"%s/%s/%s\": its %" PRIu64
			    " durable bytes may have been acknowledged, and \"%s\" does not "
			    "begin with them",
			    p->tmp_name, st->path, STORE_REFUSED_DIR, as, p->durable, holder);
	else
		log_warning("set \"%s\" aside as \"%s/%s/%s\": its %" PRIu64
			    " durable bytes may have been acknowledged, and no other file holds "
			    "them",
			    p->tmp_name, st->path, STORE_REFUSED_DIR, as, p->durable);
	log_detail("Commits may be in them; look into it, then remove the file.");
	return 1;
}

int store_timeline_end_in(int dir_fd, const char *name, uint64_t size, uint64_t *end_off)
{
	uint64_t segno, start, fork, end = UINT64_MAX;
	struct wal_name wn;
	uint32_t child;
	char *text;

	*end_off = UINT64_MAX;
	if (wal_name_parse(name, &wn) < 0 ||
	    (wn.kind != WAL_FILE_SEGMENT && wn.kind != WAL_FILE_PARTIAL) ||
	    wal_name_segno(&wn, (uint32_t)size, &segno) < 0)
		return 0;
	text = malloc(WAL_HISTORY_MAX);
	if (!text)
		return -ENOMEM;
	/* The newest later timeline whose history holds @name's says where it ended (an
	 * older one may have branched off it earlier). */
	for (uint32_t t = wn.timeline + 1; t <= wn.timeline + STORE_HISTORY_LOOK; t++) {
		ssize_t n = wal_history_read(dir_fd, t, text);

		/* A history there that cannot be read (too long, no descriptor, I/O) may say
		 * where @name's timeline ended: not known then, rather than not ended. */
		if (n < 0 && n != -ENOENT) {
			log_warning("could not read history file \"%08X.history\": %s", t,
				    strerror((int)-n));
			free(text);
			return (int)n;
		}
		if (n > 0 && wal_history_fork(text, (size_t)n, t, wn.timeline, &fork, &child) == 0)
			end = fork;
	}
	free(text);
	start = segno * size;
	if (end != UINT64_MAX && end < start + size)
		*end_off = end > start ? end - start : 0;
	return 0;
}

uint64_t store_partial_servable(int archive_fd, const struct store_partial *p)
{
	uint64_t end;

	if (store_timeline_end_in(archive_fd, p->name, p->size, &end) < 0)
		return 0; /* not known: nothing served that could be past a fork */
	return end < p->durable ? end : p->durable;
}

int store_same_wal(int dir_fd, const char *name, int a, int b)
{
	struct wal_name wn;
	struct stat sb;
	uint64_t end;
	int same = file_compare(a, b), ret;

	if (same != 0 || wal_name_parse(name, &wn) < 0 || wn.kind != WAL_FILE_PARTIAL ||
	    fstat(a, &sb) < 0)
		return same;
	ret = store_timeline_end_in(dir_fd, name, (uint64_t)sb.st_size, &end);
	if (ret < 0)
		return ret;
	/* Unknown, or ended before the segment (nothing of it is WAL that goes on: a
	 * history that does not fit): only identical copies are the same. */
	if (end == UINT64_MAX || end == 0)
		return 0;
	return file_compare_prefix(a, b, end);
}

int store_tmp_name(char *buf, size_t len, const char *name, uint64_t seq)
{
	int n = snprintf(buf, len, "%s.%" PRIu64, name, seq);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * Read back NAME and SEQ from @tmp_name (store_tmp_name()) into @p (zeroed first) and
 * parse NAME into @wn.  Returns 0, or -EINVAL when it is not such a name.
 */
static int store_parse_tmp_name(const char *tmp_name, struct store_partial *p, struct wal_name *wn)
{
	const char *dot = strrchr(tmp_name, '.');
	char *end;

	memset(p, 0, sizeof(*p));
	if (!dot || dot == tmp_name || (size_t)(dot - tmp_name) >= sizeof(p->name) ||
	    strlen(tmp_name) >= sizeof(p->tmp_name))
		return -EINVAL;
	memcpy(p->name, tmp_name, (size_t)(dot - tmp_name));
	p->seq = strtoull(dot + 1, &end, 10);
	if (*end || !p->seq || wal_name_parse(p->name, wn) < 0)
		return -EINVAL;
	snprintf(p->tmp_name, sizeof(p->tmp_name), "%s", tmp_name);
	return 0;
}

/* Feed @fd's first @len bytes to @d from @lsn, all of them when @whole, else until its
 * records end.  Returns 1 when done, 0 when the file ends before (then @d stopped before
 * @lsn + @len), or -errno when a read fails or -ENOMEM (then what follows is not known). */
static int store_decode_fd(struct wal_decoder *d, int fd, uint64_t lsn, uint64_t len, bool whole,
			   uint8_t *buf)
{
	for (uint64_t off = 0; off < len;) {
		size_t want = len - off < READ_CHUNK ? (size_t)(len - off) : READ_CHUNK;
		ssize_t got = pread(fd, buf, want, (off_t)off);
		int ret;

		if (got < 0)
			return -errno;
		if (got == 0)
			return 0;
		ret = wal_decoder_feed(d, lsn + off, buf, (size_t)got);
		if (ret < 0)
			return ret;
		off += (uint64_t)got;
		/* Zeros or damage: nothing more in this segment is WAL. */
		if (!whole && d->state == WAL_DEC_SEGMENT_END)
			break;
	}
	return 1;
}

/*
 * Begin @d at segment @seg_start - @size, fed the segment before @seg_start from @prev
 * (closed here) whole: true when it reached @seg_start (a record running on into the
 * segment is then known); false, @d ended, when it did not.
 */
static bool store_decode_prev(struct wal_decoder *d, int prev, const struct wal_page_header *hdr,
			      uint64_t seg_start, uint64_t size, uint8_t *buf)
{
	bool ok = wal_decoder_begin(d, hdr->seg_size, hdr->block_size, seg_start - size, NULL,
				    NULL) == 0;

	if (ok && (store_decode_fd(d, prev, seg_start - size, size, true, buf) <= 0 ||
		   d->next_lsn != seg_start)) {
		wal_decoder_end(d);
		ok = false;
	}
	close(prev);
	return ok;
}

/*
 * Decode segment @fd (at @seg_start, @size bytes) with @d, begun before it (at its start,
 * or fed the segment before), and end @d: *@valid is where its whole records end, with
 * their padding (0: none).  Returns 0, or -errno when a read failed (then only where
 * those read before end).
 */
static int store_records_in(struct wal_decoder *d, int fd, uint64_t seg_start, uint64_t size,
			    uint8_t *buf, uint64_t *valid)
{
	int ret = store_decode_fd(d, fd, seg_start, size, false, buf);

	/* The padding after a record is zeros in PostgreSQL's WAL, and in a preallocated
	 * segment: the bytes up to the aligned end are what PostgreSQL flushed. */
	*valid = 0;
	if (d->end_lsn > seg_start)
		*valid = WAL_MAXALIGN(d->end_lsn) - seg_start < size ?
				 WAL_MAXALIGN(d->end_lsn) - seg_start :
				 size;
	wal_decoder_end(d);
	return ret < 0 ? ret : 0;
}

int store_valid_records(int archive_fd, int incoming_fd, int fd, const char *name, uint64_t size,
			uint64_t *valid)
{
	uint8_t first[WAL_PAGE_LONG_HEADER];
	char prev_name[WAL_NAME_MAX + 1];
	struct wal_page_header hdr;
	struct wal_decoder d = { 0 };
	struct wal_name wn;
	uint64_t segno, seg_start, v;
	uint8_t *buf;
	ssize_t got;
	int prev, ret = 0, r;

	*valid = 0;
	if (wal_name_parse(name, &wn) < 0 || wn.kind != WAL_FILE_SEGMENT)
		return 0;
	got = pread(fd, first, sizeof(first), 0);
	if (got < 0)
		return -errno; /* not known, rather than none */
	if (got != (ssize_t)sizeof(first))
		return 0;
	wal_page_header_decode(first, true, &hdr);
	if (hdr.seg_size != size || wal_name_segno(&wn, hdr.seg_size, &segno) < 0)
		return 0;
	seg_start = segno * size;
	buf = malloc(READ_CHUNK);
	if (!buf)
		return -ENOMEM;
	/* A record running in from the segment before: decoded from its start, in the
	 * stored segment. */
	if (segno > 0) {
		wal_name_format_segment(prev_name, sizeof(prev_name), wn.timeline, segno - 1,
					hdr.seg_size);
		prev = openat(archive_fd, prev_name,
			      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (prev >= 0 && store_decode_prev(&d, prev, &hdr, seg_start, size, buf)) {
			ret = store_records_in(&d, fd, seg_start, size, buf, valid);
			goto out;
		}
	}
	/* Not stored: from the segment's start (a record running in is passed over), or
	 * from a copy of the segment before still in .incoming (whole, synced and not
	 * renamed yet when walshipd stopped, while this segment's first bytes were made
	 * durable already: those may be only the rest of a record).  Each copy is tried,
	 * for one may be stale (a partial kept, zeros): the furthest end counts. */
	if (wal_decoder_begin(&d, hdr.seg_size, hdr.block_size, seg_start, NULL, NULL) == 0)
		ret = store_records_in(&d, fd, seg_start, size, buf, valid);
	if (segno > 0 && incoming_fd >= 0) {
		int dfd = openat(incoming_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
		size_t plen = strlen(prev_name);
		struct dirent *de;

		if (!dir && dfd >= 0)
			close(dfd);
		while (dir && (de = readdir(dir))) {
			if (strncmp(de->d_name, prev_name, plen) != 0 || de->d_name[plen] != '.' ||
			    strspn(de->d_name + plen + 1, "0123456789") !=
				    strlen(de->d_name + plen + 1))
				continue;
			prev = openat(incoming_fd, de->d_name,
				      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
			if (prev < 0 || !store_decode_prev(&d, prev, &hdr, seg_start, size, buf))
				continue;
			r = store_records_in(&d, fd, seg_start, size, buf, &v);
			if (r < 0)
				ret = r;
			else if (v > *valid)
				*valid = v;
		}
		if (dir)
			closedir(dir);
	}
out:
	free(buf); /* (each prev is closed by store_decode_prev()) */
	return ret;
}

/*
 * The resume record of @fd (@sb its stat) into @p's size, durable and crc.  Without one,
 * in an archive that keeps no extended attributes, the file counts as @sb's size with
 * nothing recorded durable: a streamed segment is written in place there all the same
 * (preallocated, each group commit synced), so its whole records still tell how much of
 * it is durable (store_valid_records()), and acknowledged WAL is neither removed at a
 * restart nor missing from `walship fetch`.
 */
static bool store_partial_record(int fd, const struct stat *sb, struct store_partial *p)
{
	if (store_read_resume(fd, &p->size, &p->durable, &p->crc) == 0)
		return true;
	p->size = (uint64_t)sb->st_size;
	p->durable = 0;
	p->crc = 0;
	return false;
}

/*
 * Read back @fd's first @p->durable bytes into @p's CRC and validator (begun anew for
 * @wn), checking the CRC of the first @recorded of them against @p->crc (none when 0).
 * Returns true, or false with @p->damaged (logged).
 */
static bool store_partial_read(int fd, const char *tmp_name, const struct wal_name *wn,
			       uint64_t recorded, struct store_partial *p, uint8_t *buf)
{
	uint64_t off = 0;
	uint32_t crc = 0;

	if (wal_validator_begin(&p->wv, wn, p->size, 0) < 0)
		return false;
	while (off < p->durable) {
		uint64_t end = off < recorded ? recorded : p->durable;
		size_t want = end - off < READ_CHUNK ? (size_t)(end - off) : READ_CHUNK;
		ssize_t got = pread(fd, buf, want, (off_t)off);

		if (got <= 0) {
			log_log("could not read partial file \"%s\" at %" PRIu64 ": %s", tmp_name,
				off, got < 0 ? strerror(errno) : "it ends there");
			p->damaged = true;
			return false;
		}
		crc = crc32c(crc, buf, (size_t)got);
		if (wal_validator_feed(&p->wv, buf, (size_t)got) < 0) {
			log_log("partial file \"%s\" is not valid WAL: %s", tmp_name,
				p->wv.message);
			p->damaged = true;
			return false;
		}
		off += (uint64_t)got;
		if (off == recorded && crc != p->crc) {
			log_log("partial file \"%s\" does not match its record (CRC %08x, "
				"recorded %08x)",
				tmp_name, crc, p->crc);
			p->damaged = true;
			return false;
		}
	}
	p->crc = crc;
	return true;
}

/*
 * (store.h.)  A segment is durable at least to the end of its whole WAL records
 * (store_valid_records()): a streamed segment written in place (preallocated) records only
 * where it began, and its group commits are fdatasyncs of its bytes alone.  With @synced,
 * neither the record nor the records count: after a failure, only what was synced does.
 *
 * A record is set before the fsync that makes its bytes durable: a crash of the host
 * during that fsync can leave a record ahead of the bytes on disk (a checkpoint's, or the
 * one made when the connection was lost), whose CRC they then fail.  The bytes synced by
 * the fsyncs before it, acknowledged perhaps, are there all the same: a segment whose
 * whole WAL records (CRC-checked, as in an archive without records) still decode is kept
 * to their end, and its record made to say so, rather than set aside.
 */
/*
 * Whether streamed segment @fd, written in place, begins with WAL: its first page header
 * written, continuing a record from the segment before.  Where no whole record follows in
 * its durable bytes (store_valid_records() counts none: the segment before is not here to
 * decode the record from), those bytes may still have been acknowledged (PROGRESS counts
 * bytes, and a commit record may end there), so the file is not removed.
 */
static bool store_begins_continued(int fd, uint64_t size)
{
	uint8_t first[WAL_PAGE_LONG_HEADER];
	struct wal_page_header hdr;

	if (pread(fd, first, sizeof(first), 0) != (ssize_t)sizeof(first))
		return false;
	wal_page_header_decode(first, true, &hdr);
	return hdr.magic && hdr.seg_size == size && (hdr.info & XLP_FIRST_IS_CONTRECORD) &&
	       hdr.rem_len;
}

bool store_partial_check(struct store *st, const char *tmp_name, uint64_t synced,
			 struct store_partial *p)
{
	struct wal_name wn;
	struct stat sb;
	uint8_t *buf = NULL;
	uint64_t recorded, valid = 0;
	bool ok = false, have_valid = false;
	int fd;

	if (store_parse_tmp_name(tmp_name, p, &wn) < 0 ||
	    (wn.kind != WAL_FILE_SEGMENT && wn.kind != WAL_FILE_PARTIAL))
		return false;
	fd = openat(st->incoming_fd, tmp_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		/* Not read, so not known to hold nothing (gone is nothing) */
		p->damaged = errno != ENOENT;
		if (p->damaged)
			log_log("could not open partial file \"%s\": %s", tmp_name,
				strerror(errno));
		return false;
	}
	if (fstat(fd, &sb) < 0) {
		p->damaged = true;
		log_log("could not stat partial file \"%s\": %s", tmp_name, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(sb.st_mode))
		goto out_close;
	store_partial_record(fd, &sb, p);
	if (synced)
		p->durable = synced;
	/* A record past the file's end (a power loss after the record reached the disk and
	 * before its bytes did) is not a reason to remove it: as a record ahead of its bytes
	 * (below), its whole records count, or it is set aside (it may hold acknowledged
	 * bytes).  A length this daemon synced itself is one the file has. */
	if (p->durable >= p->size || (synced && (uint64_t)sb.st_size < p->durable) ||
	    wal_validator_begin(&p->wv, &wn, p->size, 0) < 0)
		goto out_close;
	recorded = synced ? 0 : p->durable;
	if (!synced) {
		bool extend;

		int vret = store_valid_records(st->dir_fd, st->incoming_fd, fd, p->name, p->size,
					       &valid);

		/* Its records could not all be read (a read error, no memory): where they end,
		 * which may be acknowledged bytes past the record, is not known.  Not removed. */
		if (vret < 0) {
			log_log("could not read the WAL records of partial file \"%s\": %s",
				tmp_name, strerror(-vret));
			p->damaged = true;
			goto out_close;
		}
		have_valid = valid > 0 && valid <= (uint64_t)sb.st_size;
		extend = have_valid && valid > p->durable;
		/* Whatever counts is synced first: whole records written before a crash of
		 * this daemon, and a recorded length too (the record is set before the fsync
		 * that makes its bytes durable, which may not have completed).  A failed sync
		 * is not tried again (its error is reported once): the file does not check,
		 * and is set aside when it holds bytes that may have been acknowledged. */
		if ((extend || p->durable) && fdatasync(fd) < 0) {
			log_warning("could not fsync file \"%s/%s/%s\": %s", st->path,
				    STORE_INCOMING_DIR, tmp_name, strerror(errno));
			p->damaged = p->durable > 0 || extend;
			goto out_close;
		}
		if (extend) /* a whole file stays a partial: the end comes with FILE_END */
			p->durable = valid < p->size ? valid : p->size - 1;
		/* Written in place (a segment as long as its header says segments are; a
		 * pushed one cut short is not, nor is a .partial), with only the rest of a
		 * record from the segment before: nothing here checks it, and it may have
		 * been acknowledged: set aside. */
		if (p->durable == 0 && !have_valid && wn.kind == WAL_FILE_SEGMENT &&
		    (uint64_t)sb.st_size == p->size && store_begins_continued(fd, p->size)) {
			p->damaged = true;
			goto out_close;
		}
	}
	if (p->durable == 0)
		goto out_close;
	buf = malloc(READ_CHUNK);
	if (!buf) {
		p->damaged = true; /* durable bytes not read back: not removed */
		goto out_close;
	}
	if (!store_partial_read(fd, tmp_name, &wn, recorded, p, buf)) {
		uint64_t ahead = recorded;

		/* A record ahead of the bytes (above): their whole records count. */
		if (!recorded || !have_valid)
			goto out_free;
		p->durable = valid < p->size ? valid : p->size - 1;
		p->damaged = false;
		if (!store_partial_read(fd, tmp_name, &wn, 0, p, buf))
			goto out_free;
		log_log("partial file \"%s\": %" PRIu64 " bytes of whole WAL records count, not "
			"the %" PRIu64 " of its record (a crash during its fsync)",
			tmp_name, p->durable, ahead);
		if (store_mark_durable(st, fd, p->size, p->durable, p->crc) == 0 && fsync(fd) < 0)
			log_warning("could not fsync file \"%s/%s/%s\": %s", st->path,
				    STORE_INCOMING_DIR, tmp_name, strerror(errno));
	}
	if (p->wv.have_id && wal_identity_mismatch(&st->id, &p->wv.id) != WAL_IDENTITY_SAME)
		goto out_free;
	ok = true;
out_free:
	free(buf);
out_close:
	close(fd);
	return ok;
}

/*
 * Go through .incoming after a start: keep the partial files that can be resumed, set
 * aside those whose durable bytes do not check (p.damaged: they may have been
 * acknowledged), remove the rest (nothing durable: the primary sends them again).
 */
static int store_scan_incoming(struct store *st, const char *path)
{
	int dup_fd = dup(st->incoming_fd);
	DIR *dir;
	struct dirent *de;
	int removed = 0, stored_names = 0;

	if (dup_fd < 0)
		return -errno;
	dir = fdopendir(dup_fd);
	if (!dir) {
		close(dup_fd);
		return -errno;
	}
	while ((de = readdir(dir)) != NULL) {
		struct store_partial p;

		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (store_partial_check(st, de->d_name, 0, &p)) {
			struct stat sb, pb;

			if (p.seq > st->max_seq)
				st->max_seq = p.seq;
			/* The stored file itself under its old name too: a crash after the rename
			 * out of .incoming, whose removal there no fsync made durable.  Never
			 * kept (a resume would write into the stored file): that name goes.  A
			 * partial of other content under a stored name is kept: its durable bytes
			 * may have been acknowledged, so walship fetch serves them rather than
			 * the stored file where this contradicts them, and a resume stores it
			 * under the name, that file set aside (role/replica_infile.c). */
			if (fstatat(st->dir_fd, p.name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
			    fstatat(st->incoming_fd, de->d_name, &pb, AT_SYMLINK_NOFOLLOW) == 0 &&
			    sb.st_ino == pb.st_ino && sb.st_dev == pb.st_dev) {
				if (unlinkat(st->incoming_fd, de->d_name, 0) == 0) {
					log_log("removed \"%s/%s\": it is the stored \"%s\"", path,
						de->d_name, p.name);
					stored_names++;
				} else {
					log_warning(
						"could not remove \"%s/%s\", stored as \"%s\": %s",
						path, de->d_name, p.name, strerror(errno));
				}
				continue;
			}
			log_log("kept partial file \"%s\": %" PRIu64 " of %" PRIu64
				" bytes are durable and checked",
				de->d_name, p.durable, p.size);
			store_partial_keep(st, &p);
			continue;
		}
		if (p.damaged) {
			char as[sizeof(p.tmp_name) + 16];

			if (store_set_aside(st, de->d_name, as, sizeof(as)) == 0) {
				log_warning("set \"%s\" aside as \"%s/%s/%s\": its %" PRIu64
					    " durable bytes may have been acknowledged, and do not "
					    "check",
					    de->d_name, st->path, STORE_REFUSED_DIR, as, p.durable);
				continue;
			}
			/* Not moved: never removed either (they may have been acknowledged). */
			log_warning("left \"%s/%s\" as it is: its %" PRIu64
				    " durable bytes may have been acknowledged",
				    path, de->d_name, p.durable);
			log_detail("The next start of walshipd looks at it again.");
		} else if (unlinkat(st->incoming_fd, de->d_name, 0) == 0) {
			removed++;
			continue;
		} else if (errno == ENOENT) {
			continue; /* set aside or removed meanwhile (store_partial_keep()) */
		} else {
			log_warning("could not remove incomplete file \"%s/%s\": %s", path,
				    de->d_name, strerror(errno));
		}
		{
			struct wal_name wn;

			/* Still there: no new file may take its name. */
			if (store_parse_tmp_name(de->d_name, &p, &wn) == 0 && p.seq > st->max_seq)
				st->max_seq = p.seq;
		}
	}
	closedir(dir);
	if (removed) {
		log_log("removed %d incomplete file(s) from \"%s\"", removed, path);
		log_detail("They were never acknowledged; the primary sends them again.");
	}
	/* The removals, and the names of the partials kept: a pushed file's name in
	 * .incoming was never synced (only its bytes and record were), and a partial
	 * resumed as a stream has its bytes acknowledged from now on. */
	if ((removed || stored_names || st->npartials) && fsync(st->incoming_fd) < 0)
		log_warning("could not fsync directory \"%s\": %s", path, strerror(errno));
	return 0;
}

/* The record store_mark_complete() left on @fd, valid and of its size: 0, or -ENODATA. */
static int store_read_crc_fd(int fd, uint64_t *size, uint32_t *crc)
{
	uint8_t rec[CRC_LEN];
	struct stat sb;
	ssize_t len = fgetxattr(fd, XATTR_CRC, rec, sizeof(rec));

	if (len != CRC_LEN || fstat(fd, &sb) < 0 || get_le(rec, 4) != CRC_MAGIC ||
	    get_le(rec + 16, 4) != crc32c(0, rec, 16) || get_le(rec + 4, 8) != (uint64_t)sb.st_size)
		return -ENODATA;
	*size = get_le(rec + 4, 8);
	*crc = (uint32_t)get_le(rec + 12, 4);
	return 0;
}

int store_recorded_crc(int fd, uint32_t *crc)
{
	uint64_t size;

	return store_read_crc_fd(fd, &size, crc);
}

/* Read the CRC record of @name in the store: 0, or -ENODATA. */
static int store_read_crc(struct store *st, const char *name, uint64_t *size, uint32_t *crc)
{
	int fd = openat(st->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), ret;

	if (fd < 0)
		return -ENODATA;
	ret = store_read_crc_fd(fd, size, crc);
	close(fd);
	return ret;
}

/* A directory stream over archive_dir from its start (closedir() closes it, not dir_fd),
 * NULL when none can be made. */
static DIR *store_dir_stream(const struct store *st)
{
	int dup_fd = dup(st->dir_fd);
	DIR *dir;

	if (dup_fd < 0)
		return NULL;
	dir = fdopendir(dup_fd);
	if (!dir) {
		close(dup_fd);
		return NULL;
	}
	rewinddir(dir); /* a dup shares its offset with dir_fd, which an earlier walk moved */
	return dir;
}

/*
 * A store with no identity recorded but segments in it was seeded by hand (files copied
 * from another archive, or from pg_wal): its cluster is that of its newest segment, read
 * and validated whole here, and recorded, so that the first file received is checked
 * against it rather than setting it.  Nothing is recorded when that segment does not
 * validate (the first file received sets the identity, as for an empty store).
 */
static void store_learn_identity(struct store *st)
{
	char newest[64] = "";
	struct wal_name wn;
	struct wal_validator wv;
	struct wal_identity id;
	DIR *dir = store_dir_stream(st);
	struct dirent *de;
	int fd, ret;

	if (!dir)
		return;
	while ((de = readdir(dir)) != NULL)
		if (strlen(de->d_name) < sizeof(newest) && wal_name_parse(de->d_name, &wn) == 0 &&
		    wn.kind == WAL_FILE_SEGMENT && strcmp(de->d_name, newest) > 0)
			snprintf(newest, sizeof(newest), "%s", de->d_name);
	closedir(dir);
	if (!newest[0] || wal_name_parse(newest, &wn) < 0)
		return;
	fd = openat(st->dir_fd, newest, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warning("could not open file \"%s/%s\": %s", st->path, newest, strerror(errno));
		return;
	}
	ret = wal_validate_fd(fd, &wn, 0, &wv, &id);
	close(fd);
	if (ret < 0) {
		log_warning("archive \"%s\" records no system identifier and its newest segment "
			    "does not validate: %s",
			    st->path, ret == -EINVAL ? wv.message : strerror(-ret));
		log_detail("The first file received sets it.");
		return;
	}
	id.timeline = 0;
	if (store_write_identity(st, &id) < 0) /* logs */
		return;
	store_adopt_identity(st, &id);
	log_log("archive \"%s\" holds WAL of system %" PRIu64 " (PostgreSQL %s), as its newest "
		"segment \"%s\" says: recorded",
		st->path, id.system_identifier,
		wal_page_magic_version(id.page_magic) ? wal_page_magic_version(id.page_magic) : "?",
		newest);
}

/*
 * Remember the newest files under final names (WAL names sort by timeline, then
 * position), with the CRCs recorded when they were stored.
 */
static void store_scan_recent(struct store *st)
{
	char newest[STORE_MAX_RECENT][64];
	unsigned int count = 0;
	DIR *dir = store_dir_stream(st);
	struct dirent *de;

	if (!dir)
		return;
	/* newest[] is kept sorted ascending; a name enters if it beats the smallest. */
	while ((de = readdir(dir)) != NULL) {
		struct wal_name wn;
		unsigned int at;

		if (strlen(de->d_name) >= sizeof(newest[0]) || wal_name_parse(de->d_name, &wn) < 0)
			continue;
		if (count == STORE_MAX_RECENT) {
			if (strcmp(de->d_name, newest[0]) <= 0)
				continue;
			memmove(newest[0], newest[1], (count - 1) * sizeof(newest[0]));
			count--;
		}
		for (at = count; at > 0 && strcmp(newest[at - 1], de->d_name) > 0; at--)
			memcpy(newest[at], newest[at - 1], sizeof(newest[0]));
		snprintf(newest[at], sizeof(newest[at]), "%s", de->d_name);
		count++;
	}
	closedir(dir);
	for (unsigned int idx = 0; idx < count; idx++) {
		uint64_t size;
		uint32_t crc;

		if (store_read_crc(st, newest[idx], &size, &crc) == 0)
			store_recent_add(st, newest[idx], size, crc);
	}
}

int store_open(struct store *st, const char *path)
{
	int ret;

	memset(st, 0, sizeof(*st));
	st->dir_fd = st->incoming_fd = -1;
	snprintf(st->path, sizeof(st->path), "%s", path);

	/* Created, its name is made durable (in its parent) by durable_dir_open(). */
	ret = durable_dir_open(AT_FDCWD, NULL, path);
	if (ret < 0)
		return ret;
	st->dir_fd = ret;
	ret = durable_dir_open(st->dir_fd, path, STORE_STATE_DIR); /* opened when written */
	if (ret < 0)
		goto out_close;
	durable_remove_leftovers(ret); /* of state files whose writing a crash cut short */
	close(ret);
	st->incoming_fd = durable_dir_open(st->dir_fd, path, STORE_INCOMING_DIR);
	if (st->incoming_fd < 0) {
		ret = st->incoming_fd;
		goto out_close;
	}
	snprintf(st->incoming_path, sizeof(st->incoming_path), "%s/%s", path, STORE_INCOMING_DIR);

	/* The cluster this store belongs to, if it has stored anything (wal/identity.h). */
	ret = store_read_identity(st->dir_fd, &st->id);
	if (ret == -EINVAL) {
		log_error("invalid system identifier file \"%s/%s/%s\"", path, STORE_STATE_DIR,
			  SYSID_FILE);
		goto out_close;
	} else if (ret < 0 && ret != -ENOENT) {
		log_error("could not read file \"%s/%s/%s\": %s", path, STORE_STATE_DIR, SYSID_FILE,
			  strerror(-ret));
		goto out_close;
	}
	if (ret == -ENOENT)
		store_learn_identity(st);
	/* After the system identifier: a partial of another system is not kept. */
	store_scan_incoming(st, st->incoming_path);
	fsync(st->dir_fd);
	store_scan_recent(st);
	return 0;

out_close:
	store_close(st);
	return ret;
}

void store_close(struct store *st)
{
	if (st->incoming_fd >= 0)
		close(st->incoming_fd);
	if (st->dir_fd >= 0)
		close(st->dir_fd);
	st->incoming_fd = st->dir_fd = -1;
}

int store_state_put(const struct store *st, const char *name, const void *buf, size_t len)
{
	char path[sizeof(st->path) + sizeof(STORE_STATE_DIR) + 1];
	struct durable_dir state = { .path = path };
	int ret;

	snprintf(path, sizeof(path), "%s/%s", st->path, STORE_STATE_DIR);
	state.fd = openat(st->dir_fd, STORE_STATE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (state.fd < 0) {
		ret = -errno;
		log_error("could not open directory \"%s\": %s", path, strerror(errno));
		return ret;
	}
	ret = durable_put(&state, name, buf, len, 0); /* logs */
	close(state.fd);
	return ret;
}

int store_write_identity(const struct store *st, const struct wal_identity *id)
{
	char buf[WAL_IDENTITY_TEXT_MAX];
	size_t len = wal_identity_format(id, buf, sizeof(buf));

	return store_state_put(st, SYSID_FILE, buf, len);
}

int store_read_identity(int archive_fd, struct wal_identity *id)
{
	char buf[WAL_IDENTITY_TEXT_MAX] = { 0 };
	int fd = openat(archive_fd, STORE_STATE_DIR "/" SYSID_FILE, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	memset(id, 0, sizeof(*id));
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	close(fd);
	return n > 0 && wal_identity_parse(buf, id) == 0 ? 0 : -EINVAL;
}

void store_adopt_identity(struct store *st, const struct wal_identity *id)
{
	st->id = *id;
	st->id.timeline = 0; /* the store's identity is the cluster's, not one segment's */
}

int store_same_content(struct store *st, const char *incoming_name, const char *name)
{
	int fa, fb, ret;

	fa = openat(st->incoming_fd, incoming_name, O_RDONLY | O_CLOEXEC);
	if (fa < 0) {
		ret = -errno;
		log_error("could not open file \"%s/%s/%s\": %s", st->path, STORE_INCOMING_DIR,
			  incoming_name, strerror(errno));
		return ret;
	}
	fb = openat(st->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fb < 0) {
		ret = -errno;
		log_error("could not open file \"%s/%s\": %s", st->path, name, strerror(errno));
		goto out_close_a;
	}
	ret = store_same_wal(st->dir_fd, name, fa, fb);
	if (ret < 0)
		log_error("could not compare file \"%s/%s/%s\" with \"%s/%s\": %s", st->path,
			  STORE_INCOMING_DIR, incoming_name, st->path, name, strerror(-ret));
	/* The same: the stored file stands for the incoming copy, which goes.  It may have
	 * been put there by other hands (cp, rsync: no fsync), so its bytes are made durable
	 * first, or a power loss could take both copies of acknowledged WAL. */
	if (ret == 1 && fdatasync(fb) < 0) {
		ret = -errno;
		log_error("could not fsync file \"%s/%s\": %s", st->path, name, strerror(errno));
	}
	close(fb);
out_close_a:
	close(fa);
	return ret;
}

int store_sync_stored(struct store *st, const char *name)
{
	int fd = openat(st->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), ret = 0;

	if (fd < 0 || fdatasync(fd) < 0) {
		ret = -errno;
		log_error("could not fsync file \"%s/%s\": %s", st->path, name, strerror(errno));
	} else if (fsync(st->dir_fd) < 0) {
		ret = -errno;
		log_error("could not fsync directory \"%s\": %s", st->path, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

int64_t store_file_size(struct store *st, const char *name)
{
	struct stat sb;

	if (fstatat(st->dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return sb.st_size;
}

int store_mark_durable(struct store *st, int fd, uint64_t size, uint64_t durable, uint32_t crc)
{
	uint8_t rec[RESUME_LEN];

	if (st->no_xattr)
		return -ENOTSUP;
	put_le(rec, RESUME_MAGIC, 4);
	put_le(rec + 4, size, 8);
	put_le(rec + 12, durable, 8);
	put_le(rec + 20, crc, 4);
	put_le(rec + 24, crc32c(0, rec, 24), 4);
	if (fsetxattr(fd, XATTR_RESUME, rec, sizeof(rec), 0) < 0) {
		int err = errno;

		if (xattr_unsupported(err)) {
			store_no_xattr(st);
			return -ENOTSUP;
		}
		log_warning("could not record the durable length of a file in \"%s/%s\": %s",
			    st->path, STORE_INCOMING_DIR, strerror(err));
		return -err;
	}
	return 0;
}

void store_mark_complete(struct store *st, int fd, uint64_t size, uint32_t crc)
{
	uint8_t rec[CRC_LEN];

	/* The resume record stays: the file's fdatasync follows, and a power loss before it
	 * must find the file resumable from its last checkpoint, not without a record (its
	 * size then what reached the disk, short of a segment's, and the file removed). */
	if (st->no_xattr)
		return;
	put_le(rec, CRC_MAGIC, 4);
	put_le(rec + 4, size, 8);
	put_le(rec + 12, crc, 4);
	put_le(rec + 16, crc32c(0, rec, 16), 4);
	if (fsetxattr(fd, XATTR_CRC, rec, sizeof(rec), 0) < 0 && xattr_unsupported(errno))
		store_no_xattr(st);
}

struct store_partial *store_partial_find(struct store *st, const char *name)
{
	for (unsigned int idx = 0; idx < st->npartials; idx++)
		if (!strcmp(st->partials[idx].name, name))
			return &st->partials[idx];
	return NULL;
}

void store_partial_take(struct store *st, struct store_partial *p)
{
	unsigned int idx = (unsigned int)(p - st->partials);

	if (idx >= st->npartials)
		return;
	st->partials[idx] = st->partials[--st->npartials];
}

void store_partial_discard(struct store *st, struct store_partial *p)
{
	store_partial_gone(st, p);
	if (unlinkat(st->incoming_fd, p->tmp_name, 0) < 0 && errno != ENOENT)
		log_warning("could not remove file \"%s/%s/%s\": %s", st->path, STORE_INCOMING_DIR,
			    p->tmp_name, strerror(errno));
	store_partial_take(st, p);
}

void store_partial_keep(struct store *st, const struct store_partial *p)
{
	struct store_partial *old = store_partial_find(st, p->name), keep = *p, gone;

	if (old) {
		gone = *old;
		store_partial_take(st, old);
		if (strcmp(gone.tmp_name, keep.tmp_name) != 0) {
			/* Two files of one name (a crash while a file sent again from its
			 * start was under way): the one durable further is kept. */
			if (gone.durable > keep.durable) {
				struct store_partial t = keep;

				keep = gone;
				gone = t;
			}
			store_partial_retire(st, &gone, st->incoming_fd, keep.tmp_name);
		}
	}
	if (st->npartials == STORE_MAX_PARTIALS) {
		struct store_partial *oldest = &st->partials[0];

		for (unsigned int idx = 1; idx < st->npartials; idx++)
			if (st->partials[idx].seq < oldest->seq)
				oldest = &st->partials[idx];
		log_log("no longer keeping partial file \"%s\" for resuming: at most %d are",
			oldest->tmp_name, STORE_MAX_PARTIALS);
		gone = *oldest;
		store_partial_take(st, oldest);
		store_partial_retire(st, &gone, -1, NULL);
	}
	st->partials[st->npartials++] = keep;
}

void store_recent_add(struct store *st, const char *name, uint64_t size, uint32_t crc)
{
	struct store_recent *r;

	/* The same name again (a duplicate acknowledged): refresh, do not repeat it. */
	for (unsigned int idx = 0; idx < st->nrecent; idx++) {
		if (!strcmp(st->recent[idx].name, name)) {
			st->recent[idx].size = size;
			st->recent[idx].crc = crc;
			return;
		}
	}
	r = &st->recent[st->recent_next];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->size = size;
	r->crc = crc;
	st->recent_next = (st->recent_next + 1) % STORE_MAX_RECENT;
	if (st->nrecent < STORE_MAX_RECENT)
		st->nrecent++;
}

bool store_recent_has(const struct store *st, const char *name)
{
	for (unsigned int idx = 0; idx < st->nrecent; idx++)
		if (!strcmp(st->recent[idx].name, name))
			return true;
	return false;
}

bool store_recent_older(const struct store *st, const char *name)
{
	bool any = false;

	for (unsigned int idx = 0; idx < st->nrecent; idx++) {
		if (!st->recent[idx].name[0])
			continue;
		if (strcmp(name, st->recent[idx].name) >= 0)
			return false;
		any = true;
	}
	return any;
}

int store_crc_prefix(int fd, uint64_t len, uint32_t *crc)
{
	uint8_t *buf = malloc(READ_CHUNK);
	uint32_t c = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (uint64_t off = 0; off < len;) {
		size_t want = len - off < READ_CHUNK ? (size_t)(len - off) : READ_CHUNK;
		ssize_t got = pread(fd, buf, want, (off_t)off);

		if (got <= 0) {
			ret = -EIO;
			break;
		}
		c = crc32c(c, buf, (size_t)got);
		off += (uint64_t)got;
	}
	free(buf);
	if (!ret)
		*crc = c;
	return ret;
}

bool store_has_incoming(const struct store *st, const char *name)
{
	int fd = dup(st->incoming_fd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct store_partial p;
	struct wal_name wn;
	struct dirent *de;
	bool found = false;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	rewinddir(dir); /* the descriptor's offset is shared with incoming_fd's */
	while (!found && (de = readdir(dir)) != NULL)
		found = store_parse_tmp_name(de->d_name, &p, &wn) == 0 && !strcmp(p.name, name);
	closedir(dir);
	return found;
}

int store_find_incoming(int archive_fd, const char *name, struct store_partial *found)
{
	struct store_partial p;
	struct wal_name wn;
	struct dirent *de;
	DIR *dir;
	int dir_fd, ret, first_err = 0;
	char err_name[sizeof(found->tmp_name)] = "";

	memset(found, 0, sizeof(*found));
	dir_fd = openat(archive_fd, STORE_INCOMING_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	dir = fdopendir(dir_fd);
	if (!dir) {
		ret = -errno;
		close(dir_fd);
		return ret;
	}
	while ((de = readdir(dir)) != NULL) {
		struct stat sb;
		int fd;

		if (store_parse_tmp_name(de->d_name, &p, &wn) < 0 || strcmp(p.name, name) != 0)
			continue;
		/* O_NONBLOCK: a FIFO under that name must not hang us. */
		fd = openat(dir_fd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 && errno != ENOENT && !first_err) { /* (EACCES, EMFILE): said */
			first_err = -errno;
			snprintf(err_name, sizeof(err_name), "%s", de->d_name);
		}
		if (fd < 0)
			continue; /* renamed or removed meanwhile */
		if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
			close(fd);
			continue;
		}
		store_partial_record(fd, &sb, &p);
		/* The record is set before the fsync that makes its bytes durable, and a
		 * checkpoint's may not have completed: synced here, or not counted. */
		if (p.durable && fdatasync(fd) < 0) {
			if (!first_err) {
				first_err = -errno;
				snprintf(err_name, sizeof(err_name), "%s", de->d_name);
			}
			close(fd); /* none of it is known durable (a second fdatasync would
				    * succeed: the error is reported once) */
			continue;
		}
		/* (a record past the file's end reads as one ahead of its bytes, below: its
		 * whole records count, as store_partial_check() keeps them) */
		if (p.durable < p.size) {
			uint64_t valid;
			uint32_t crc;
			bool ahead = false;

			/* A record ahead of its bytes (a crash of this host during that fsync):
			 * its whole records count instead, as at walshipd's start
			 * (store_partial_check()), so that a recovery while walshipd is down
			 * gets what walshipd would keep. */
			if (p.durable &&
			    (store_crc_prefix(fd, p.durable, &crc) < 0 || crc != p.crc)) {
				p.durable = 0;
				p.crc = 0;
				ahead = true;
			}

			/* Whole records past the record, in a streamed segment written in place
			 * (preallocated: its group commits record nothing), counted once synced:
			 * a file that grows keeps its record, and bytes written after it are not
			 * durable. */
			int vret = ((uint64_t)sb.st_size == p.size || ahead) ?
					   store_valid_records(archive_fd, dir_fd, fd, p.name,
							       p.size, &valid) :
					   -ENODATA;

			/* Its records could not all be read: it may hold more than its record
			 * says, acknowledged, so it is not served to its record's length: named
			 * instead, as a copy that cannot be opened */
			if (vret < 0 && vret != -ENODATA) {
				if (!first_err) {
					first_err = vret;
					snprintf(err_name, sizeof(err_name), "%s", de->d_name);
				}
				close(fd);
				continue;
			}
			if (vret == 0 && valid > p.durable && valid <= (uint64_t)sb.st_size &&
			    fdatasync(fd) == 0 &&
			    store_crc_prefix(fd, valid < p.size ? valid : p.size - 1, &p.crc) == 0)
				p.durable = valid < p.size ? valid : p.size - 1;
			/* A segment cut at a timeline switch: up to the fork only.  A later
			 * history that could not be read (permissions, I/O) may say where:
			 * the copy is named as one that cannot be read, not taken as absent
			 * (a recovery would end short of what it holds, without a word). */
			if (p.durable) {
				uint64_t end;
				int eret = store_timeline_end_in(archive_fd, p.name, p.size, &end);

				if (eret < 0) {
					if (!first_err) {
						first_err = eret;
						snprintf(err_name, sizeof(err_name), "%s",
							 de->d_name);
					}
					close(fd);
					continue;
				}
				if (end < p.durable && (p.durable = end) > 0 &&
				    store_crc_prefix(fd, end, &p.crc) < 0)
					p.durable = 0;
			}
			if (p.durable > found->durable)
				*found = p;
		}
		close(fd);
	}
	closedir(dir);
	if (found->durable && first_err)
		log_warning("could not read file \"%s/%s\": %s; a shorter copy of \"%s\" is served",
			    STORE_INCOMING_DIR, err_name, strerror(-first_err), name);
	if (found->durable)
		return 0;
	if (first_err) /* a copy of @name that may hold what was acknowledged: not "absent" */
		snprintf(found->tmp_name, sizeof(found->tmp_name), "%s", err_name);
	return first_err ? first_err : -ENOENT;
}
