// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/wal/store.c: what survives in .incoming across a restart (the
 * resumable partial files and nothing else), the records behind them, and the newest
 * stored files the store offers the primary.  On a real directory (extended attributes
 * are the records), made under build/ so that it lives on the disk, not a tmpfs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "wal/record.h"
#include "wal/store.h"

#define MB (1024u * 1024u)
#define BLCKSZ 8192u
#define SEG3 "000000010000000000000003"
#define SEG4 "000000010000000000000004"
#define SYSID UINT64_C(7713288329218603033)

static char dir[256];

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int idx = 0; idx < bytes; idx++)
		p[idx] = (uint8_t)(v >> (8 * idx));
}

/* A 1 MiB PostgreSQL 15 segment, number 3 of timeline 1, every page valid. */
static uint8_t *build_segment(void)
{
	uint8_t *seg = calloc(1, MB);
	uint64_t start = 3ull * MB;

	assert_non_null(seg);
	for (uint32_t page = 0; page < MB / BLCKSZ; page++) {
		uint8_t *at = seg + (size_t)page * BLCKSZ;

		memset(at + 40, 0x5a, BLCKSZ - 40);
		put_le(at, 0xD110, 2);
		put_le(at + 2, page ? 0 : 0x0002, 2);
		put_le(at + 4, 1, 4);
		put_le(at + 8, start + (uint64_t)page * BLCKSZ, 8);
		put_le(at + 16, 0, 4);
		if (page == 0) {
			put_le(at + 24, SYSID, 8);
			put_le(at + 32, MB, 4);
			put_le(at + 36, BLCKSZ, 4);
		}
	}
	return seg;
}

/* Write @len bytes of @data to @name under the store's .incoming; return an open fd. */
static int write_incoming(struct store *st, const char *name, const uint8_t *data, size_t len)
{
	int fd = openat(st->incoming_fd, name, O_RDWR | O_CREAT | O_TRUNC, 0640);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static bool incoming_exists(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/.incoming/%s", dir, name);
	return access(path, F_OK) == 0;
}

static bool refused_exists(const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_REFUSED_DIR, name);
	return access(path, F_OK) == 0;
}

static int setup(void **state)
{
	(void)state;
	mkdir("build", 0755);
	snprintf(dir, sizeof(dir), "build/store-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	log_set_level(LOG_LEVEL_WARNING);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * A half-received segment whose first 512 KiB were recorded durable is kept across a
 * restart, with its CRC, its validator state and its sequence number; one without a
 * record and a text file are removed; one whose bytes no longer match their record is set
 * aside (they may have been acknowledged: never removed).
 */
static void test_partials_survive_restart(void **state)
{
	struct store st;
	uint8_t *seg = build_segment();
	uint32_t crc = crc32c(0, seg, MB / 2);
	struct store_partial *p;
	char tmp[96];
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(st.npartials, 0);

	/* Kept: 600 KiB written, 512 KiB of them recorded durable. */
	assert_int_equal(store_tmp_name(tmp, sizeof(tmp), SEG3, 7), 0);
	assert_string_equal(tmp, SEG3 ".7");
	fd = write_incoming(&st, tmp, seg, 600 * 1024);
	assert_int_equal(store_mark_durable(&st, fd, MB, MB / 2, crc), 0);
	close(fd);
	/* Removed: no record. */
	close(write_incoming(&st, "000000010000000000000004.8", seg, 4096));
	/* Set aside: a record whose CRC the bytes do not have (damaged after it). */
	fd = write_incoming(&st, "000000010000000000000005.9", seg, MB / 2);
	assert_int_equal(store_mark_durable(&st, fd, MB, MB / 2, crc ^ 1), 0);
	close(fd);
	/* Removed: a text file is never resumed. */
	fd = write_incoming(&st, "00000002.history.10", (const uint8_t *)"1\t0/3000000\tno\n", 15);
	assert_int_equal(store_mark_durable(&st, fd, 30, 15, crc32c(0, "1\t0/3000000\tno\n", 15)),
			 0);
	close(fd);
	store_close(&st);

	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(st.npartials, 1);
	p = store_partial_find(&st, SEG3);
	assert_non_null(p);
	assert_string_equal(p->tmp_name, SEG3 ".7");
	assert_int_equal(p->seq, 7);
	assert_true(p->size == MB && p->durable == MB / 2);
	assert_int_equal(p->crc, crc);
	assert_true(p->wv.have_id);
	assert_true(p->wv.id.system_identifier == SYSID);
	assert_true(p->wv.offset == MB / 2);
	assert_true(st.max_seq == 7);
	assert_true(incoming_exists(SEG3 ".7"));
	assert_false(incoming_exists("000000010000000000000004.8"));
	assert_false(incoming_exists("000000010000000000000005.9"));
	assert_true(refused_exists("000000010000000000000005.9"));
	assert_int_equal(st.set_aside, 1);
	assert_false(incoming_exists("00000002.history.10"));

	/* The rest of the file, fed to the kept validator, completes a valid segment. */
	assert_int_equal(wal_validator_feed(&p->wv, seg + MB / 2, MB / 2), 0);
	assert_int_equal(wal_validator_end(&p->wv, NULL), 0);
	assert_int_equal(crc32c(p->crc, seg + MB / 2, MB / 2), crc32c(0, seg, MB));

	/* Discarding removes the file; the next start finds nothing. */
	store_partial_discard(&st, p);
	assert_int_equal(st.npartials, 0);
	assert_false(incoming_exists(SEG3 ".7"));
	store_close(&st);
	free(seg);
}

/*
 * A streamed segment written in place (its full size, a record of durable length 0) that
 * failed after its first 300 KiB were synced and acknowledged: store_partial_check() with
 * those 300 KiB takes exactly them, whatever else the file holds (its record, and bytes
 * written after that were never synced), with their CRC and the validator after them;
 * without a synced length it would count the record's 0, and nothing would be resumed.
 */
static void test_partial_synced(void **state)
{
	struct store st;
	uint8_t *seg = build_segment();
	struct store_partial p;
	char tmp[96];
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(store_tmp_name(tmp, sizeof(tmp), SEG3, 12), 0);
	fd = write_incoming(&st, tmp, seg, MB);
	assert_int_equal(store_mark_durable(&st, fd, MB, 0, 0), 0);
	close(fd);

	assert_true(store_partial_check(&st, tmp, 300 * 1024, &p));
	assert_string_equal(p.name, SEG3);
	assert_int_equal(p.seq, 12);
	assert_true(p.size == MB && p.durable == 300 * 1024);
	assert_int_equal(p.crc, crc32c(0, seg, 300 * 1024));
	assert_true(p.wv.offset == 300 * 1024);
	assert_true(p.wv.have_id && p.wv.id.system_identifier == SYSID);
	/* Nothing past the segment's size counts, nor the whole of it (it is not stored). */
	assert_false(store_partial_check(&st, tmp, MB, &p));
	/* The file is looked at, never removed. */
	assert_true(incoming_exists(tmp));
	/* Bytes that are not valid WAL are not resumed. */
	memset(seg + 4096, 0, 8192);
	close(write_incoming(&st, tmp, seg, MB));
	assert_false(store_partial_check(&st, tmp, 300 * 1024, &p));
	store_close(&st);
	free(seg);
}

/*
 * store_find_incoming() picks, among the incoming files of a name, the one with the
 * largest recorded durable length, ignores files without a record and other names, and
 * removes nothing (walshipd may be writing them).
 */
static void test_find_incoming(void **state)
{
	struct store_partial found;
	struct store st;
	uint8_t *seg = build_segment();
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(store_find_incoming(st.dir_fd, SEG3, &found), -ENOENT);

	fd = write_incoming(&st, SEG3 ".7", seg, MB / 4);
	assert_int_equal(store_mark_durable(&st, fd, MB, MB / 4, crc32c(0, seg, MB / 4)), 0);
	close(fd);
	fd = write_incoming(&st, SEG3 ".9", seg, 600 * 1024);
	assert_int_equal(store_mark_durable(&st, fd, MB, MB / 2, crc32c(0, seg, MB / 2)), 0);
	close(fd);
	close(write_incoming(&st, SEG3 ".10", seg, 700 * 1024)); /* no record */
	fd = write_incoming(&st, "000000010000000000000004.11", seg, 800 * 1024);
	assert_int_equal(store_mark_durable(&st, fd, MB, 768 * 1024, 0), 0);
	close(fd);
	close(write_incoming(&st, "junk", seg, 10));

	assert_int_equal(store_find_incoming(st.dir_fd, SEG3, &found), 0);
	assert_string_equal(found.name, SEG3);
	assert_string_equal(found.tmp_name, SEG3 ".9");
	assert_int_equal(found.seq, 9);
	assert_true(found.size == MB && found.durable == MB / 2);
	assert_int_equal(found.crc, crc32c(0, seg, MB / 2));
	assert_int_equal(store_find_incoming(st.dir_fd, "000000010000000000000005", &found),
			 -ENOENT);
	assert_true(incoming_exists(SEG3 ".7") && incoming_exists(SEG3 ".10"));
	assert_true(incoming_exists("junk"));
	/* A later timeline's history that cannot be read (here a link, refused) may say
	 * where the copies' timeline ended: the copy is named as one that cannot be read,
	 * not taken for absent (walship fetch exits 4, not 1: "not in the archive"). */
	assert_int_equal(symlinkat("elsewhere", st.dir_fd, "00000003.history"), 0);
	assert_int_equal(store_find_incoming(st.dir_fd, SEG3, &found), -ELOOP);
	assert_string_equal(found.tmp_name, SEG3 ".9");
	assert_int_equal(unlinkat(st.dir_fd, "00000003.history", 0), 0);
	store_close(&st);
	free(seg);
}

/* ---- WAL records, for store_valid_records() ---- */

static uint8_t *wal; /* segments 3 and 4 (1 MiB each) */
static uint64_t wpos, wprev; /* offset in wal[] of the next byte; the last record's LSN */

static void wal_page(uint32_t rem)
{
	uint8_t *h = wal + wpos;
	bool is_long = wpos % MB == 0;

	put_le(h, 0xD110, 2);
	put_le(h + 2, (rem ? 0x0001 : 0) | (is_long ? 0x0002 : 0), 2);
	put_le(h + 4, 1, 4);
	put_le(h + 8, 3ull * MB + wpos, 8);
	put_le(h + 16, rem, 4);
	if (is_long) {
		put_le(h + 24, SYSID, 8);
		put_le(h + 32, MB, 4);
		put_le(h + 36, BLCKSZ, 4);
	}
	wpos += is_long ? 40 : 24;
}

/* A record of @len bytes of main data (at least 256); returns the offset of its end. */
static uint64_t wal_record(uint32_t len)
{
	static uint8_t rec[4 * BLCKSZ];
	uint32_t tot = 24 + 5 + len, written = 0, crc;

	memset(rec, 0, sizeof(rec));
	rec[24] = 254;
	put_le(rec + 25, len, 4);
	memset(rec + 29, 0x3c, len);
	put_le(rec, tot, 4);
	put_le(rec + 8, wprev, 8);
	rec[17] = 10;
	crc = crc32c(0, rec + 24, tot - 24);
	crc = crc32c(crc, rec, 20);
	put_le(rec + 20, crc, 4);
	wpos = (wpos + 7) & ~(uint64_t)7;
	if (wpos % BLCKSZ == 0)
		wal_page(0);
	wprev = 3ull * MB + wpos;
	while (written < tot) {
		uint32_t n;

		if (wpos % BLCKSZ == 0)
			wal_page(tot - written);
		n = BLCKSZ - wpos % BLCKSZ;
		n = n < tot - written ? n : tot - written;
		memcpy(wal + wpos, rec + written, n);
		wpos += n;
		written += n;
	}
	return wpos;
}

/* @len bytes of segment 4 (the rest zeros, the whole size written: preallocated) as
 * .incoming/@tmp with a record of durable length 0, as a new streamed segment has. */
static void write_in_place(struct store *st, const char *tmp, uint64_t len)
{
	uint8_t *copy = calloc(1, MB);
	int fd;

	assert_non_null(copy);
	memcpy(copy, wal + MB, len);
	fd = write_incoming(st, tmp, copy, MB);
	assert_int_equal(store_mark_durable(st, fd, MB, 0, 0), 0);
	close(fd);
	free(copy);
}

/*
 * The durable length of a segment written in place is the end of its whole records, with
 * their padding to 8 bytes: a torn record does not count; a record running in from segment 3 counts when segment 3 is
 * stored (it is decoded from there), not otherwise.  store_open() keeps such a file with
 * that length and the CRC of that prefix; store_find_incoming() finds it.
 */
static void test_valid_records(void **state)
{
	uint64_t cross_end, s1_end, s2_end, valid;
	struct store_partial found;
	char path[512];
	struct store st;
	int fd;

	(void)state;
	wal = calloc(2, MB);
	assert_non_null(wal);
	wpos = wprev = 0;
	wal_page(0);
	while (wpos < MB - 3 * BLCKSZ)
		wal_record(3000);
	cross_end = wal_record(4 * 8000) - MB; /* ends in segment 4 */
	assert_true(cross_end > 0 && cross_end < MB / 2);
	s1_end = wal_record(700) - MB;
	assert_true(s1_end % 8 != 0); /* it has padding */
	s2_end = wal_record(5000) - MB;
	/* Each end with its padding, where the next record begins (PostgreSQL's flush
	 * position after the record): the padding is zeros in wal and in the files. */
	cross_end = WAL_MAXALIGN(cross_end);
	s1_end = WAL_MAXALIGN(s1_end);
	s2_end = WAL_MAXALIGN(s2_end);

	assert_int_equal(store_open(&st, dir), 0);
	write_in_place(&st, SEG4 ".5", s2_end - 100); /* s2 torn */
	write_in_place(&st, SEG4 ".6", cross_end); /* only the tail of the crossing record */
	fd = openat(st.incoming_fd, SEG4 ".5", O_RDONLY);
	assert_int_equal(store_valid_records(st.dir_fd, -1, fd, SEG4, MB, &valid), 0);
	assert_true(valid == s1_end);
	close(fd);
	fd = openat(st.incoming_fd, SEG4 ".6", O_RDONLY);
	assert_int_equal(store_valid_records(st.dir_fd, -1, fd, SEG4, MB, &valid), 0);
	assert_true(valid == 0); /* segment 3 is not stored */
	/* ... but whole in .incoming (synced, not renamed when walshipd stopped): the
	 * record's start is read there, where .incoming is looked in */
	snprintf(path, sizeof(path), "%s/.incoming/%s.4", dir, SEG3);
	{
		int seg3 = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);

		assert_true(seg3 >= 0);
		assert_int_equal(write(seg3, wal, MB), (ssize_t)MB);
		close(seg3);
	}
	assert_int_equal(store_valid_records(st.dir_fd, st.incoming_fd, fd, SEG4, MB, &valid), 0);
	assert_true(valid == cross_end);
	/* stale copies beside it (zeros: a preallocated partial kept, a spare) do not hide
	 * it, whatever the directory's order */
	{
		char zpath[512];
		uint8_t *zeros = calloc(1, MB);

		assert_non_null(zeros);
		for (int seq = 1; seq <= 9; seq += 8) {
			int zf;

			snprintf(zpath, sizeof(zpath), "%s/.incoming/%s.%d", dir, SEG3, seq);
			zf = open(zpath, O_WRONLY | O_CREAT | O_EXCL, 0640);
			assert_true(zf >= 0);
			assert_int_equal(write(zf, zeros, MB), (ssize_t)MB);
			close(zf);
		}
		free(zeros);
		assert_int_equal(
			store_valid_records(st.dir_fd, st.incoming_fd, fd, SEG4, MB, &valid), 0);
		assert_true(valid == cross_end);
		for (int seq = 1; seq <= 9; seq += 8) {
			snprintf(zpath, sizeof(zpath), "%s/.incoming/%s.%d", dir, SEG3, seq);
			assert_int_equal(unlink(zpath), 0);
		}
	}
	assert_int_equal(store_valid_records(st.dir_fd, -1, fd, SEG4, MB, &valid), 0);
	assert_true(valid == 0);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, SEG3);
	{
		int seg3 = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);

		assert_true(seg3 >= 0);
		assert_int_equal(write(seg3, wal, MB), (ssize_t)MB);
		close(seg3);
	}
	assert_int_equal(store_valid_records(st.dir_fd, -1, fd, SEG4, MB, &valid), 0);
	assert_true(valid == cross_end);
	close(fd);
	assert_int_equal(store_find_incoming(st.dir_fd, SEG4, &found), 0);
	assert_string_equal(found.tmp_name, SEG4 ".5");
	assert_true(found.durable == s1_end);
	assert_int_equal(found.crc, crc32c(0, wal + MB, s1_end));
	store_close(&st);

	/* A restart keeps one partial per name, the one durable further (.5, to the end of
	 * its records); .6, whose bytes .5 begins with, is removed, not set aside. */
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(st.npartials, 1);
	assert_string_equal(st.partials[0].tmp_name, SEG4 ".5");
	assert_true(st.partials[0].durable == s1_end);
	assert_int_equal(st.partials[0].crc, crc32c(0, wal + MB, s1_end));
	assert_false(incoming_exists(SEG4 ".6"));
	assert_int_equal(st.set_aside, 0);
	store_close(&st);
	free(wal);
}

/*
 * A segment written in place whose durable bytes hold only the rest of a record begun in
 * the segment before, which is not stored here: nothing decodes it, yet PROGRESS may have
 * acknowledged it (a commit record may end there).  At start it is set aside, not
 * removed.  A preallocated segment with nothing written is removed as before.
 */
static void test_continued_not_removed(void **state)
{
	uint64_t cross_end;
	struct store st;
	uint8_t *zeros;
	int fd;

	(void)state;
	wal = calloc(2, MB);
	assert_non_null(wal);
	wpos = wprev = 0;
	wal_page(0);
	while (wpos < MB - 3 * BLCKSZ)
		wal_record(3000);
	cross_end = WAL_MAXALIGN(wal_record(4 * 8000) - MB); /* ends in segment 4 */
	assert_int_equal(store_open(&st, dir), 0);
	write_in_place(&st, SEG4 ".7", cross_end);
	zeros = calloc(1, MB);
	assert_non_null(zeros);
	fd = write_incoming(&st, "000000010000000000000005.8", zeros, MB);
	assert_int_equal(store_mark_durable(&st, fd, MB, 0, 0), 0);
	close(fd);
	free(zeros);
	/* A pushed copy of the same bytes cut short (no record, shorter than a segment):
	 * nothing of a pushed file is acknowledged before it is stored; removed. */
	close(write_incoming(&st, SEG4 ".9", wal + MB, MB / 2));
	store_close(&st);

	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(st.npartials, 0);
	assert_false(incoming_exists(SEG4 ".7"));
	assert_true(refused_exists(SEG4 ".7"));
	assert_false(incoming_exists("000000010000000000000005.8"));
	assert_false(refused_exists("000000010000000000000005.8"));
	assert_false(incoming_exists(SEG4 ".9"));
	assert_false(refused_exists(SEG4 ".9"));
	assert_int_equal(st.set_aside, 1);
	store_close(&st);
	free(wal);
}

/* What `walship fetch` finds of @name in the store's .incoming, walshipd down: a copy. */
static void fetch_finds(const char *name, struct store_partial *found)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	assert_true(fd >= 0);
	assert_int_equal(store_find_incoming(fd, name, found), 0);
	close(fd);
}

/*
 * WAL in wal[] to past @ahead: whole records to 200 KiB, whose end is *@rec_end, then one
 * of which the disk holds part, up to *@torn (the bytes before a crash's torn write).
 */
static void wal_torn(uint64_t ahead, uint64_t *rec_end, uint64_t *torn)
{
	wal = calloc(2, MB);
	assert_non_null(wal);
	wpos = wprev = 0;
	wal_page(0);
	while (wpos < 200 * 1024)
		wal_record(3000);
	*rec_end = WAL_MAXALIGN(wpos);
	*torn = wal_record(3000) - 1000; /* part of the next record reached the disk */
	while (wpos < ahead + 8192)
		wal_record(3000);
}

/*
 * A host crash during the fsync of a checkpoint (or of the record made when the connection
 * was lost): the record says 400 KiB with their CRC, but the disk holds only what the
 * fsyncs before it made durable (whole records, then part of one, then nothing).  Those
 * bytes, acknowledged perhaps, are kept to the end of their whole records, and the record
 * is made to say so (store_find_incoming(), walship fetch, finds that length); they were
 * set aside before, out of reach of the primary's resume and of fetch.
 */
static void test_record_ahead_of_bytes(void **state)
{
	const uint64_t ahead = 400 * 1024;
	uint64_t rec_end, torn;
	struct store_partial found, *p;
	struct store st;
	uint8_t *disk;
	int fd;

	(void)state;
	wal_torn(ahead, &rec_end, &torn);
	disk = calloc(1, ahead);
	assert_non_null(disk);
	memcpy(disk, wal, torn);

	assert_int_equal(store_open(&st, dir), 0);
	fd = write_incoming(&st, SEG3 ".21", disk, ahead);
	assert_int_equal(store_mark_durable(&st, fd, MB, ahead, crc32c(0, wal, ahead)), 0);
	close(fd);
	store_close(&st);

	/* Read-only, with the record still ahead (walshipd not started since: what `walship
	 * fetch` finds): the whole records, as the start below keeps. */
	fetch_finds(SEG3, &found);
	assert_true(found.durable == rec_end);
	assert_int_equal(found.crc, crc32c(0, wal, rec_end));

	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(st.set_aside, 0);
	assert_false(refused_exists(SEG3 ".21"));
	p = store_partial_find(&st, SEG3);
	assert_non_null(p);
	assert_string_equal(p->tmp_name, SEG3 ".21");
	assert_true(p->durable == rec_end);
	assert_int_equal(p->crc, crc32c(0, wal, rec_end));
	assert_true(p->wv.offset == rec_end);
	store_close(&st);
	fetch_finds(SEG3, &found);
	assert_true(found.durable == rec_end);
	assert_int_equal(found.crc, crc32c(0, wal, rec_end));
	free(disk);
	free(wal);
}

/*
 * The same with the file shorter than its record (a pushed segment's partial, written as
 * it arrives: the record reached the disk, its size and bytes past the fsyncs before did
 * not): kept to the end of its whole records, not removed as it was.
 */
static void test_record_past_end(void **state)
{
	const uint64_t ahead = 400 * 1024;
	uint64_t rec_end, torn;
	struct store_partial *p, found;
	struct store st;
	int fd;

	(void)state;
	wal_torn(ahead, &rec_end, &torn);

	assert_int_equal(store_open(&st, dir), 0);
	fd = write_incoming(&st, SEG3 ".22", wal, torn); /* its size: torn < ahead */
	assert_int_equal(store_mark_durable(&st, fd, MB, ahead, crc32c(0, wal, ahead)), 0);
	close(fd);
	store_close(&st);

	/* walship fetch while walshipd is down finds what the start below keeps */
	fetch_finds(SEG3, &found);
	assert_true(found.durable == rec_end);

	assert_int_equal(store_open(&st, dir), 0);
	p = store_partial_find(&st, SEG3);
	assert_non_null(p);
	assert_string_equal(p->tmp_name, SEG3 ".22");
	assert_true(p->durable == rec_end);
	assert_int_equal(p->crc, crc32c(0, wal, rec_end));
	store_close(&st);
	free(wal);
}

/* A state file's temporary copy that a crash left (a durable write cut short) goes at the
 * next open; the state file itself stays. */
static void test_state_leftovers_removed(void **state)
{
	char path[512];
	struct store st;
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(store_state_put(&st, "slots", "a 0/0 1\n", 8), 0);
	store_close(&st);
	snprintf(path, sizeof(path), "%s/%s/slots.walship-tmp.4242", dir, STORE_STATE_DIR);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(&st, dir), 0);
	store_close(&st);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/%s/slots", dir, STORE_STATE_DIR);
	assert_int_equal(access(path, F_OK), 0);
}

/*
 * A file whose durable bytes do not check, and that cannot be set aside (.refused cannot
 * be made: a file has its name), is left in .incoming for the next start, never removed:
 * its bytes may have been acknowledged.  Its sequence number is not used again.
 */
static void test_damaged_not_removed(void **state)
{
	uint8_t *seg = build_segment();
	char path[512];
	struct store st;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_REFUSED_DIR);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(&st, dir), 0);
	fd = write_incoming(&st, SEG3 ".33", seg, MB / 2);
	assert_int_equal(store_mark_durable(&st, fd, MB, MB / 2, crc32c(0, seg, MB / 2) ^ 1), 0);
	close(fd);
	store_close(&st);

	assert_int_equal(store_open(&st, dir), 0);
	assert_true(incoming_exists(SEG3 ".33"));
	assert_int_equal(st.npartials, 0);
	assert_true(st.max_seq >= 33);
	store_close(&st);
	free(seg);
}

/* store_open() creates a missing archive_dir (its parent fsynced: its name is durable
 * before anything in it is acknowledged), with or without a trailing slash. */
static void test_open_creates(void **state)
{
	char path[512];
	struct store st;
	struct stat sb;

	(void)state;
	snprintf(path, sizeof(path), "%s/new/", dir);
	assert_int_equal(store_open(&st, path), 0);
	store_close(&st);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	snprintf(path, sizeof(path), "%s/new2", dir);
	assert_int_equal(store_open(&st, path), 0);
	store_close(&st);
	assert_int_equal(stat(path, &sb), 0);
}

/*
 * A host crash after a file's rename into archive_dir and that directory's fsync, but
 * before .incoming was written: the file is under both names (one inode).  A start does
 * not keep the .incoming name as a partial (offered for nothing, then set aside as the
 * 17th, or written into, the stored file with it); it goes, the stored file stays.
 */
static void test_partial_of_stored_file(void **state)
{
	uint8_t *seg = build_segment();
	char from[512], to[512];
	struct store st;
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	fd = write_incoming(&st, SEG3 ".4", seg, MB);
	assert_int_equal(store_mark_durable(&st, fd, MB, MB / 2, crc32c(0, seg, MB / 2)), 0);
	close(fd);
	store_close(&st);
	snprintf(from, sizeof(from), "%s/.incoming/%s", dir, SEG3 ".4");
	snprintf(to, sizeof(to), "%s/%s", dir, SEG3);
	assert_int_equal(link(from, to), 0);

	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(st.npartials, 0);
	assert_int_equal(st.set_aside, 0);
	assert_false(incoming_exists(SEG3 ".4"));
	assert_int_equal(access(to, F_OK), 0);
	assert_true(store_file_size(&st, SEG3) == MB);
	store_close(&st);
	free(seg);
}

/* A partial of another system than the store's is not kept. */
static void test_partial_of_other_system(void **state)
{
	struct store st;
	uint8_t *seg = build_segment();
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	{
		struct wal_identity id = { .system_identifier = SYSID + 1,
					   .page_magic = 0xD110,
					   .seg_size = MB,
					   .block_size = BLCKSZ };

		assert_int_equal(store_write_identity(&st, &id), 0);
	}
	fd = write_incoming(&st, SEG3 ".3", seg, MB / 2);
	assert_int_equal(store_mark_durable(&st, fd, MB, MB / 2, crc32c(0, seg, MB / 2)), 0);
	close(fd);
	store_close(&st);
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(st.npartials, 0);
	assert_false(incoming_exists(SEG3 ".3"));
	/* The whole identity was recorded and read back. */
	assert_true(st.id.system_identifier == SYSID + 1);
	assert_int_equal(st.id.page_magic, 0xD110);
	assert_int_equal(st.id.seg_size, MB);
	assert_int_equal(st.id.block_size, BLCKSZ);
	store_close(&st);
	free(seg);
}

/* An archive seeded by hand (segments, no identity recorded) learns its cluster from its
 * newest segment, when that validates, and records it; else it learns nothing. */
static void test_learn_identity(void **state)
{
	struct store st;
	uint8_t *seg = build_segment();
	char path[512];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", dir, SEG3);
	f = fopen(path, "w");
	assert_non_null(f);
	seg[8192] ^= 0xff; /* page 1's magic: does not validate */
	assert_int_equal(fwrite(seg, 1, MB, f), MB);
	fclose(f);
	assert_int_equal(store_open(&st, dir), 0);
	assert_true(st.id.system_identifier == 0);
	store_close(&st);

	seg[8192] ^= 0xff;
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(seg, 1, MB, f), MB);
	fclose(f);
	assert_int_equal(store_open(&st, dir), 0);
	assert_true(st.id.system_identifier == SYSID);
	assert_int_equal(st.id.page_magic, 0xD110);
	assert_int_equal(st.id.seg_size, MB);
	assert_int_equal(st.id.block_size, BLCKSZ);
	store_close(&st);
	unlink(path); /* recorded: known without the segment */
	assert_int_equal(store_open(&st, dir), 0);
	assert_true(st.id.system_identifier == SYSID);
	store_close(&st);
	free(seg);
}

/* A store written before the identity held more than the system identifier still opens. */
static void test_old_identity_file(void **state)
{
	struct store st;
	char path[512];
	FILE *f;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	store_close(&st);
	snprintf(path, sizeof(path), "%s/.walship/system_identifier", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%llu\n", (unsigned long long)SYSID);
	fclose(f);
	assert_int_equal(store_open(&st, dir), 0);
	assert_true(st.id.system_identifier == SYSID);
	assert_int_equal(st.id.page_magic, 0);
	store_close(&st);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%llu garbage\n", (unsigned long long)SYSID);
	fclose(f);
	assert_int_equal(store_open(&st, dir), -EINVAL);
}

/*
 * The identity is written durably (no temporary file left in .walship) and read back at
 * the next open; the duplicate check tells the same bytes from other bytes and sizes;
 * the store's directories are handed out with their paths for durable writes.
 */
static void test_identity_compare_dirs(void **state)
{
	const struct wal_identity id = {
		.system_identifier = SYSID, .page_magic = 0xD110, .seg_size = MB, .block_size = 8192
	};
	struct durable_dir final, incoming;
	struct store st;
	char path[512];
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(store_write_identity(&st, &id), 0);
	store_close(&st);
	snprintf(path, sizeof(path), "%s/.walship", dir);
	{
		DIR *d = opendir(path);
		struct dirent *de;
		int entries = 0;

		assert_non_null(d);
		while ((de = readdir(d)) != NULL)
			entries += de->d_name[0] != '.';
		closedir(d);
		assert_int_equal(entries, 1);
	}
	assert_int_equal(store_open(&st, dir), 0);
	assert_true(st.id.system_identifier == SYSID);
	assert_int_equal(st.id.page_magic, 0xD110);
	assert_int_equal(st.id.seg_size, MB);
	assert_int_equal(st.id.block_size, 8192);

	store_durable_dirs(&st, &final, &incoming);
	assert_int_equal(final.fd, st.dir_fd);
	assert_string_equal(final.path, dir);
	assert_int_equal(incoming.fd, st.incoming_fd);
	snprintf(path, sizeof(path), "%s/.incoming", dir);
	assert_string_equal(incoming.path, path);

	snprintf(path, sizeof(path), "%s/" SEG3, dir);
	fd = open(path, O_WRONLY | O_CREAT, 0640);
	assert_int_equal(write(fd, "abcd", 4), 4);
	close(fd);
	close(write_incoming(&st, SEG3 ".1", (const uint8_t *)"abcd", 4));
	close(write_incoming(&st, SEG3 ".2", (const uint8_t *)"abce", 4));
	close(write_incoming(&st, SEG3 ".3", (const uint8_t *)"abc", 3));
	assert_int_equal(store_same_content(&st, SEG3 ".1", SEG3), 1);
	assert_int_equal(store_same_content(&st, SEG3 ".2", SEG3), 0);
	assert_int_equal(store_same_content(&st, SEG3 ".3", SEG3), 0);
	assert_int_equal(store_same_content(&st, SEG3 ".4", SEG3), -ENOENT);
	store_close(&st);
}

/*
 * A file in .incoming that a start cannot remove (immutable here; on a failing file system,
 * EIO) still holds its name: the next sequence numbers go past it, so that no new file is
 * created over it (EEXIST, and a segment refused again at each try).
 */
static void test_unremovable_incoming(void **state)
{
	struct store st;
	uint8_t byte = 0;
	bool kept;
	uint64_t max_seq;
	int fd, flags = FS_IMMUTABLE_FL;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	fd = write_incoming(&st, SEG3 ".41", &byte, 1); /* no record: removed at a start */
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) {
		close(fd);
		store_close(&st);
		print_message("skipped: no immutable files on this file system\n");
		skip();
	}
	close(fd);
	store_close(&st);

	assert_int_equal(store_open(&st, dir), 0);
	kept = incoming_exists(SEG3 ".41");
	max_seq = st.max_seq;
	flags = 0;
	fd = openat(st.incoming_fd, SEG3 ".41", O_RDONLY);
	assert_true(fd >= 0 && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0);
	close(fd);
	store_close(&st);
	assert_true(kept);
	assert_true(max_seq >= 41);
}

/*
 * store_set_aside() moves a file from .incoming into .refused, and never over one set
 * aside before under the same name (sequence numbers start again with a store's life):
 * the second NAME.SEQ becomes NAME.SEQ-2.  A start keeps .refused as it is.
 */
static void test_set_aside(void **state)
{
	struct store st;
	uint8_t one = 1, two = 2, got = 0;
	char as[128], path[512];
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	close(write_incoming(&st, SEG3 ".7", &one, 1));
	assert_int_equal(store_set_aside(&st, SEG3 ".7", as, sizeof(as)), 0);
	assert_string_equal(as, SEG3 ".7");
	assert_false(incoming_exists(SEG3 ".7"));
	close(write_incoming(&st, SEG3 ".7", &two, 1));
	assert_int_equal(store_set_aside(&st, SEG3 ".7", as, sizeof(as)), 0);
	assert_string_equal(as, SEG3 ".7-2");
	store_close(&st);
	assert_int_equal(store_open(&st, dir), 0);
	store_close(&st);

	snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_REFUSED_DIR, SEG3 ".7");
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0 && read(fd, &got, 1) == 1 && got == one);
	close(fd);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_REFUSED_DIR, SEG3 ".7-2");
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0 && read(fd, &got, 1) == 1 && got == two);
	close(fd);
	/* Nothing there to move: an error, nothing made up. */
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(store_set_aside(&st, SEG3 ".8", as, sizeof(as)), -ENOENT);
	store_close(&st);

	/* store_set_aside_stored(): a file under its final name goes into .refused too, and
	 * store.recent forgets it (no name: offered in no HAVE), the others kept. */
	snprintf(path, sizeof(path), "%s/%s", dir, SEG3);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0 && write(fd, &two, 1) == 1);
	close(fd);
	assert_int_equal(store_open(&st, dir), 0);
	store_recent_add(&st, SEG3, 1, 7);
	store_recent_add(&st, SEG4, 1, 8);
	assert_int_equal(store_set_aside_stored(&st, SEG3, as, sizeof(as)), 0);
	assert_string_equal(as, SEG3);
	assert_int_equal(st.set_aside, 1);
	assert_true(access(path, F_OK) < 0 && errno == ENOENT);
	for (unsigned int idx = 0; idx < st.nrecent; idx++)
		assert_string_not_equal(st.recent[idx].name, SEG3);
	assert_int_equal(st.nrecent, 2);
	assert_int_equal(store_set_aside_stored(&st, SEG3, as, sizeof(as)), -ENOENT);
	store_close(&st);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_REFUSED_DIR, SEG3);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0 && read(fd, &got, 1) == 1 && got == two);
	close(fd);
}

/*
 * store_partial_retire() removes a partial only where the holder it is given begins with
 * its durable bytes; otherwise (other bytes, a holder shorter than them, no holder) the
 * partial is set aside, since those bytes may have been acknowledged.  Of two partials of
 * one name, store_partial_keep() keeps the one durable further.
 */
static void test_partial_retire(void **state)
{
	const uint8_t a[4] = { 1, 2, 3, 4 }, b[4] = { 1, 2, 9, 4 };
	struct store_partial p = { .name = SEG3, .size = MB, .durable = 3 };
	struct store st;
	int fd;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	p.crc = crc32c(0, a, 3);
	/* The stored file begins with the bytes: removed. */
	fd = openat(st.dir_fd, SEG3, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_int_equal(write(fd, a, 4), 4);
	close(fd);
	snprintf(p.tmp_name, sizeof(p.tmp_name), SEG3 ".5");
	close(write_incoming(&st, p.tmp_name, a, 3));
	assert_int_equal(store_partial_retire(&st, &p, st.dir_fd, SEG3), 0);
	assert_false(incoming_exists(SEG3 ".5"));
	assert_false(refused_exists(SEG3 ".5"));
	/* Other bytes, a holder shorter than the durable bytes, no holder: set aside. */
	close(write_incoming(&st, SEG3 ".other", b, 4));
	close(write_incoming(&st, SEG3 ".short", a, 2));
	snprintf(p.tmp_name, sizeof(p.tmp_name), SEG3 ".6");
	close(write_incoming(&st, p.tmp_name, a, 3));
	assert_int_equal(store_partial_retire(&st, &p, st.incoming_fd, SEG3 ".other"), 1);
	snprintf(p.tmp_name, sizeof(p.tmp_name), SEG3 ".7");
	close(write_incoming(&st, p.tmp_name, a, 3));
	assert_int_equal(store_partial_retire(&st, &p, st.incoming_fd, SEG3 ".short"), 1);
	snprintf(p.tmp_name, sizeof(p.tmp_name), SEG3 ".8");
	close(write_incoming(&st, p.tmp_name, a, 3));
	assert_int_equal(store_partial_retire(&st, &p, -1, NULL), 1);
	assert_true(refused_exists(SEG3 ".6") && refused_exists(SEG3 ".7") &&
		    refused_exists(SEG3 ".8"));
	assert_false(incoming_exists(SEG3 ".6") || incoming_exists(SEG3 ".7") ||
		     incoming_exists(SEG3 ".8"));
	assert_int_equal(st.set_aside, 3);

	/* Two partials of one name: the one durable further stays, whichever comes last; the
	 * other goes as store_partial_retire() says. */
	{
		struct store_partial longer = p, shorter = p, other = p;

		longer.durable = 4;
		longer.crc = crc32c(0, a, 4);
		snprintf(longer.tmp_name, sizeof(longer.tmp_name), SEG3 ".10");
		shorter.durable = 3;
		shorter.crc = crc32c(0, a, 3);
		snprintf(shorter.tmp_name, sizeof(shorter.tmp_name), SEG3 ".11");
		close(write_incoming(&st, longer.tmp_name, a, 4));
		close(write_incoming(&st, shorter.tmp_name, a, 3));
		store_partial_keep(&st, &longer);
		store_partial_keep(&st, &shorter); /* held by .10: removed */
		assert_string_equal(store_partial_find(&st, SEG3)->tmp_name, SEG3 ".10");
		assert_false(incoming_exists(SEG3 ".11"));
		other.durable = 2;
		other.crc = crc32c(0, b + 2, 2);
		snprintf(other.tmp_name, sizeof(other.tmp_name), SEG3 ".12");
		close(write_incoming(&st, other.tmp_name, b + 2, 2));
		store_partial_keep(&st, &other); /* not held by .10: set aside */
		assert_string_equal(store_partial_find(&st, SEG3)->tmp_name, SEG3 ".10");
		assert_true(refused_exists(SEG3 ".12"));
		assert_int_equal(st.set_aside, 4);
	}
	store_close(&st);
}

/* Write @text as file @name of the store's archive_dir. */
static void put_archive_file(const struct store *st, const char *name, const char *text)
{
	int fd = openat(st->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC, 0640);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/*
 * A kept partial's durable bytes are served after a restart only up to where a later
 * timeline's history says its timeline ended: all of them with no such history (or one
 * that does not hold its timeline), up to the fork inside the segment, none when the
 * timeline ended before the segment.  Segments of 1 MiB here: segment 3 spans 3 to 4 MiB.
 */
static void test_partial_servable(void **state)
{
	struct store_partial p = { .name = SEG3, .size = MB, .durable = 4096 };
	struct store st;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	assert_int_equal(store_partial_servable(st.dir_fd, &p), 4096);
	/* timeline 3 branches from 2: says nothing of 1 */
	put_archive_file(&st, "00000003.history", "2\t0/310000\tno recovery target\n");
	assert_int_equal(store_partial_servable(st.dir_fd, &p), 4096);
	/* timeline 1 ended inside the durable bytes: up to the fork */
	put_archive_file(&st, "00000002.history", "1\t0/300800\tno recovery target\n");
	assert_int_equal(store_partial_servable(st.dir_fd, &p), 0x800);
	/* past them: all */
	put_archive_file(&st, "00000002.history", "1\t0/302000\tno recovery target\n");
	assert_int_equal(store_partial_servable(st.dir_fd, &p), 4096);
	/* before the segment: none */
	put_archive_file(&st, "00000002.history", "1\t0/2F0000\tno recovery target\n");
	assert_int_equal(store_partial_servable(st.dir_fd, &p), 0);
	/* timeline 3 branched off timeline 1 later than 2 did: the newest history rules */
	put_archive_file(&st, "00000003.history", "1\t0/300C00\tno recovery target\n");
	assert_int_equal(store_partial_servable(st.dir_fd, &p), 0xC00);
	/* what `walship fetch` finds of it in .incoming: the same, with those bytes' CRC */
	{
		struct store_partial found;
		uint8_t *seg = build_segment();
		int fd = write_incoming(&st, SEG3 ".30", seg, 4096);

		assert_int_equal(store_mark_durable(&st, fd, MB, 4096, crc32c(0, seg, 4096)), 0);
		close(fd);
		assert_int_equal(store_find_incoming(st.dir_fd, SEG3, &found), 0);
		assert_int_equal(found.durable, 0xC00);
		assert_int_equal(found.crc, crc32c(0, seg, 0xC00));
		free(seg);
	}
	/* a partial of timeline 2 (none later that holds it): all */
	snprintf(p.name, sizeof(p.name), "000000020000000000000003");
	assert_int_equal(store_partial_servable(st.dir_fd, &p), 4096);
	store_close(&st);
}

/*
 * Two copies of a timeline's cut segment `NAME.partial` are the same WAL when they agree
 * up to where the timeline ended, as the newest later history in the directory says:
 * PostgreSQL archives its own (a recycled tail after the switch point), the stream its own
 * (zeros after it).  Without such a history, or differing before the fork, they are not;
 * a segment (not .partial) is compared whole.  Segments of 1 MiB: segment 3 is 3 to 4 MiB.
 */
static void test_same_wal_partial(void **state)
{
	uint8_t *a = calloc(1, MB), *b = calloc(1, MB);
	struct store st;
	int fa, fb;

	(void)state;
	assert_true(a && b);
	memset(a, 0x5a, 0x800);
	memcpy(b, a, MB);
	memset(b + 0x800, 0x77, 0x100); /* after the fork at 0/300800 */
	assert_int_equal(store_open(&st, dir), 0);
	fa = write_incoming(&st, "a", a, MB);
	fb = write_incoming(&st, "b", b, MB);
	assert_int_equal(store_same_wal(st.dir_fd, SEG3 ".partial", fa, fb), 0);
	put_archive_file(&st, "00000002.history", "1\t0/300800\tno recovery target\n");
	assert_int_equal(store_same_wal(st.dir_fd, SEG3 ".partial", fa, fb), 1);
	assert_int_equal(store_same_wal(st.dir_fd, SEG3, fa, fb), 0); /* whole */
	/* differing before the fork */
	put_archive_file(&st, "00000002.history", "1\t0/300900\tno recovery target\n");
	assert_int_equal(store_same_wal(st.dir_fd, SEG3 ".partial", fa, fb), 0);
	/* a history whose fork is before the segment: nothing compared is not "the same" */
	put_archive_file(&st, "00000002.history", "1\t0/200000\tno recovery target\n");
	assert_int_equal(store_same_wal(st.dir_fd, SEG3 ".partial", fa, fb), 0);
	close(fa);
	close(fb);
	free(a);
	free(b);
	store_close(&st);
}

/* What store.partial_gone was told: the partials that left the table, in order. */
struct gone_log {
	unsigned int n;
	char tmp_names[2 * STORE_MAX_PARTIALS + 4][96];
};

static void note_gone(void *arg, const char *name, const char *tmp_name)
{
	struct gone_log *g = arg;

	assert_true(!strncmp(tmp_name, name, strlen(name))); /* NAME.SEQ of NAME */
	assert_true(g->n < sizeof(g->tmp_names) / sizeof(g->tmp_names[0]));
	snprintf(g->tmp_names[g->n++], sizeof(g->tmp_names[0]), "%s", tmp_name);
}

/* At most STORE_MAX_PARTIALS are kept: the oldest (lowest sequence) goes first, set
 * aside (it may hold acknowledged bytes).  Every partial that leaves the table other than
 * to be resumed is told to store.partial_gone (what follows it downstream stops). */
static void test_partial_table_bound(void **state)
{
	struct store st;
	struct gone_log gone = { 0 };
	uint8_t byte = 0;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	st.partial_gone = note_gone;
	st.partial_gone_arg = &gone;
	for (unsigned int idx = 0; idx <= STORE_MAX_PARTIALS; idx++) {
		struct store_partial p = { .seq = idx + 1, .size = MB, .durable = 1 };

		snprintf(p.name, sizeof(p.name), "0000000100000000000000%02X", idx + 16);
		snprintf(p.tmp_name, sizeof(p.tmp_name), "%s.%u", p.name, idx + 1);
		close(write_incoming(&st, p.tmp_name, &byte, 1));
		store_partial_keep(&st, &p);
	}
	assert_int_equal(st.npartials, STORE_MAX_PARTIALS);
	assert_null(store_partial_find(&st, "000000010000000000000010"));
	assert_false(incoming_exists("000000010000000000000010.1"));
	assert_true(refused_exists("000000010000000000000010.1"));
	assert_int_equal(gone.n, 1);
	assert_string_equal(gone.tmp_names[0], "000000010000000000000010.1");
	assert_non_null(store_partial_find(&st, "000000010000000000000020"));
	/* A partial of a name durable further replaces the one kept; the old one's byte
	 * is not the new one's first (its recorded CRC is not theirs): set aside. */
	{
		struct store_partial p = { .seq = 99, .size = MB, .durable = 2 };

		snprintf(p.name, sizeof(p.name), "000000010000000000000020");
		snprintf(p.tmp_name, sizeof(p.tmp_name), "%s.99", p.name);
		close(write_incoming(&st, p.tmp_name, &byte, 1));
		store_partial_keep(&st, &p);
		assert_int_equal(st.npartials, STORE_MAX_PARTIALS);
		assert_true(store_partial_find(&st, p.name)->durable == 2);
		assert_false(incoming_exists("000000010000000000000020.17"));
		assert_true(refused_exists("000000010000000000000020.17"));
		assert_int_equal(gone.n, 2);
		assert_string_equal(gone.tmp_names[1], "000000010000000000000020.17");
	}
	/* taken to be resumed: not gone */
	store_partial_take(&st, store_partial_find(&st, "000000010000000000000020"));
	assert_int_equal(gone.n, 2);
	while (st.npartials)
		store_partial_discard(&st, &st.partials[0]);
	assert_int_equal(gone.n, 2 + STORE_MAX_PARTIALS - 1);
	store_close(&st);
}

/*
 * Files stored under their final names with a CRC record are remembered at start, the
 * newest STORE_MAX_RECENT of them by WAL order; files without a record, or whose size
 * changed since, are not offered.
 */
static void test_recent_files(void **state)
{
	struct store st;
	char name[64], path[512];
	bool seen_newest = false;

	(void)state;
	assert_int_equal(store_open(&st, dir), 0);
	for (unsigned int idx = 0; idx < STORE_MAX_RECENT + 4; idx++) {
		uint8_t data[64];
		int fd;

		memset(data, (int)idx, sizeof(data));
		snprintf(name, sizeof(name), "0000000100000000000000%02X", idx + 0x30);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
		store_mark_complete(&st, fd, sizeof(data), crc32c(0, data, sizeof(data)));
		if (idx == STORE_MAX_RECENT + 3)
			assert_int_equal(write(fd, data, 1), 1); /* grew after its record */
		close(fd);
	}
	store_close(&st);
	assert_int_equal(store_open(&st, dir), 0);
	/* 16 newest names; the very newest has a stale record, so 15 are offered. */
	assert_int_equal(st.nrecent, STORE_MAX_RECENT - 1);
	for (unsigned int idx = 0; idx < st.nrecent; idx++) {
		const struct store_recent *r = &st.recent[idx];
		uint8_t data[64];
		unsigned int number = (unsigned int)strtoul(r->name + 16, NULL, 16) - 0x30;

		memset(data, (int)number, sizeof(data));
		assert_true(number >= 4 && number < STORE_MAX_RECENT + 3);
		assert_true(r->size == sizeof(data));
		assert_int_equal(r->crc, crc32c(0, data, sizeof(data)));
		if (number == STORE_MAX_RECENT + 2)
			seen_newest = true;
	}
	assert_true(seen_newest);
	/* Adding an existing name refreshes it instead of taking a second entry. */
	store_recent_add(&st, st.recent[0].name, 1, 2);
	assert_int_equal(st.nrecent, STORE_MAX_RECENT - 1);
	store_recent_add(&st, "000000010000000000000099", 3, 4);
	store_recent_add(&st, "00000001000000000000009A", 3, 4);
	assert_int_equal(st.nrecent, STORE_MAX_RECENT);
	store_close(&st);
}

/* What the store stored lately, and what is older than all of it (serve's choice of a
 * stored file over a copy still arriving under its name). */
static void test_recent_window(void **state)
{
	static struct store rs; /* only its recent files are used */

	(void)state;
	memset(&rs, 0, sizeof(rs));
	assert_false(store_recent_older(&rs, "000000010000000000000001")); /* nothing known */
	for (int i = 0; i < STORE_MAX_RECENT + 2; i++) {
		char name[32];

		snprintf(name, sizeof(name), "0000000100000000000000%02X", 0x10 + i);
		store_recent_add(&rs, name, 16 * 1024 * 1024, 0);
	}
	/* the first two left the window */
	assert_false(store_recent_has(&rs, "000000010000000000000010"));
	assert_true(store_recent_has(&rs, "000000010000000000000012"));
	assert_true(store_recent_has(&rs, "000000010000000000000021"));
	assert_true(store_recent_older(&rs, "000000010000000000000011"));
	assert_false(store_recent_older(&rs, "000000010000000000000012"));
	assert_false(store_recent_older(&rs, "000000010000000000000022"));
	assert_false(store_recent_older(&rs, "000000020000000000000001")); /* a later timeline */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_partials_survive_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_of_other_system, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_incoming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_synced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_valid_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_creates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_of_stored_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_ahead_of_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_past_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_leftovers_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_continued_not_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_not_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_table_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_servable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_wal_partial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unremovable_incoming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_retire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_identity_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_learn_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent_files, setup, teardown),
		cmocka_unit_test(test_recent_window),
		cmocka_unit_test_setup_teardown(test_identity_compare_dirs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
