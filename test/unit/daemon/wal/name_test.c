// SPDX-License-Identifier: MIT
/* Unit tests for daemon/wal/name.c. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/compiler.h"
#include "wal/name.h"

static void test_segment(void **state)
{
	struct wal_name name;

	(void)state;
	assert_int_equal(wal_name_parse("0000000100000002000000A3", &name), 0);
	assert_int_equal(name.kind, WAL_FILE_SEGMENT);
	assert_int_equal(name.timeline, 1);
	assert_int_equal(name.log, 2);
	assert_int_equal(name.seg, 0xA3);
	assert_int_equal(name.backup_offset, 0);
	assert_true(wal_name_valid("FFFFFFFFFFFFFFFFFFFFFFFF"));
	assert_string_equal(wal_file_kind_name(name.kind), "segment");
}

static void test_partial(void **state)
{
	struct wal_name name;

	(void)state;
	assert_int_equal(wal_name_parse("000000020000000000000003.partial", &name), 0);
	assert_int_equal(name.kind, WAL_FILE_PARTIAL);
	assert_int_equal(name.timeline, 2);
	assert_int_equal(name.log, 0);
	assert_int_equal(name.seg, 3);
	assert_string_equal(wal_file_kind_name(name.kind), "partial");
	assert_false(wal_name_valid("000000020000000000000003.partia"));
	assert_false(wal_name_valid("000000020000000000000003.partial2"));
	assert_false(wal_name_valid("000000020000000000000003.PARTIAL"));
	assert_false(wal_name_valid("000000020000000000000003xpartial"));
}

static void test_history(void **state)
{
	struct wal_name name;

	(void)state;
	assert_int_equal(wal_name_parse("0000000A.history", &name), 0);
	assert_int_equal(name.kind, WAL_FILE_HISTORY);
	assert_int_equal(name.timeline, 10);
	assert_string_equal(wal_file_kind_name(name.kind), "history");
	assert_false(wal_name_valid("0000000a.history"));
	assert_false(wal_name_valid("0000000A.histor"));
	assert_false(wal_name_valid("000000A.history"));
	assert_false(wal_name_valid("00000000.history"));
	assert_false(wal_name_valid("0000000A_history"));
}

static void test_backup(void **state)
{
	struct wal_name name;

	(void)state;
	assert_int_equal(wal_name_parse("000000010000000000000002.00000028.backup", &name), 0);
	assert_int_equal(name.kind, WAL_FILE_BACKUP);
	assert_int_equal(name.timeline, 1);
	assert_int_equal(name.log, 0);
	assert_int_equal(name.seg, 2);
	assert_int_equal(name.backup_offset, 0x28);
	assert_string_equal(wal_file_kind_name(name.kind), "backup");
	assert_false(wal_name_valid("000000010000000000000002.0000002g.backup"));
	assert_false(wal_name_valid("000000010000000000000002_00000028.backup"));
	assert_false(wal_name_valid("000000010000000000000002.00000028.backuP"));
	assert_false(wal_name_valid("000000010000000000000002.00000028.backup.partial"));
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"0",
		"00000001000000000000000", /* 23 */
		"0000000100000000000000001", /* 25 */
		"00000001000000000000000a", /* lower case */
		"0000000100000000000000aB",
		"00000001000000000000000G",
		"00000000000000000000000A", /* timeline 0 */
		"000000000000000000000001.partial", /* timeline 0 */
		"000000000000000000000001.00000000.backup",
		"../000000010000000000000001",
		"00000001/0000000000000001",
		"0000000100000000000000/1",
		"..",
		"000000010000000000000001.",
		"000000010000000000000001.gz",
		"000000010000000000000001.ready",
		"000000010000000000000001.done",
		"000000010000000000000001 ",
		" 000000010000000000000001",
		"0000000100000000000000-1",
		"0x0000010000000000000001",
		"000000010000000000000001000000010000000000000001000000010000000000000001",
		"archive_status",
		"00000001.history.partial",
	};
	struct wal_name name = { .kind = WAL_FILE_SEGMENT, .timeline = 77 };

	(void)state;
	for (size_t idx = 0; idx < ARRAY_SIZE(bad); idx++) {
		if (wal_name_parse(bad[idx], &name) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[idx]);
		assert_false(wal_name_valid(bad[idx]));
	}
	/* A failed parse leaves the output alone. */
	assert_int_equal(name.timeline, 77);
	assert_int_equal(wal_name_parse(NULL, &name), -EINVAL);
	assert_false(wal_name_valid(NULL));
}

static void test_embedded_nul(void **state)
{
	char buf[64];

	(void)state;
	memcpy(buf, "000000010000000000000001\0.partial", 33);
	assert_true(wal_name_valid(buf)); /* the name ends at the NUL */
	memcpy(buf, "0000000100000000\0000000001", 25);
	assert_false(wal_name_valid(buf));
}

static void test_segno(void **state)
{
	static const struct {
		uint32_t seg_size;
		uint32_t segs_per_id;
	} sizes[] = {
		{ 1u << 20, 4096 },
		{ 16u << 20, 256 },
		{ 64u << 20, 64 },
		{ 1u << 30, 4 },
	};
	struct wal_name name;
	uint64_t segno;

	(void)state;
	for (size_t idx = 0; idx < ARRAY_SIZE(sizes); idx++) {
		uint32_t per = sizes[idx].segs_per_id;
		char buf[32];

		assert_int_equal(wal_name_parse("000000010000000300000002", &name), 0);
		assert_int_equal(wal_name_segno(&name, sizes[idx].seg_size, &segno), 0);
		assert_int_equal(segno, 3ull * per + 2);

		name.seg = per - 1;
		assert_int_equal(wal_name_segno(&name, sizes[idx].seg_size, &segno), 0);
		assert_int_equal(segno, 3ull * per + per - 1);
		wal_name_format_segment(buf, sizeof(buf), 1, segno, sizes[idx].seg_size);
		assert_int_equal(strlen(buf), 24);
		struct wal_name back;
		assert_int_equal(wal_name_parse(buf, &back), 0);
		assert_int_equal(back.log, 3);
		assert_int_equal(back.seg, per - 1);

		name.seg = per;
		assert_int_equal(wal_name_segno(&name, sizes[idx].seg_size, &segno), -EINVAL);
	}

	/* 16 MB: seg 0x100 is out of range, 0xFF is the last. */
	assert_int_equal(wal_name_parse("0000000100000000000000FF", &name), 0);
	assert_int_equal(wal_name_segno(&name, 16u << 20, &segno), 0);
	assert_int_equal(segno, 255);
	assert_int_equal(wal_name_parse("000000010000000000000100", &name), 0);
	assert_int_equal(wal_name_segno(&name, 16u << 20, &segno), -EINVAL);
	assert_int_equal(wal_name_segno(&name, 1u << 20, &segno), 0);
	assert_int_equal(segno, 256);

	/* Largest log id. */
	assert_int_equal(wal_name_parse("00000001FFFFFFFF000000FF", &name), 0);
	assert_int_equal(wal_name_segno(&name, 16u << 20, &segno), 0);
	assert_int_equal(segno, 0xFFFFFFFFull * 256 + 255);

	/* Bad segment sizes. */
	assert_int_equal(wal_name_parse("000000010000000000000001", &name), 0);
	assert_int_equal(wal_name_segno(&name, 0, &segno), -EINVAL);
	assert_int_equal(wal_name_segno(&name, 512u << 10, &segno), -EINVAL);
	assert_int_equal(wal_name_segno(&name, (16u << 20) + 1, &segno), -EINVAL);
	assert_int_equal(wal_name_segno(&name, 3u << 20, &segno), -EINVAL);
	assert_int_equal(wal_name_segno(&name, 2u << 30, &segno), -EINVAL);

	/* Partial and backup have segment numbers, history does not. */
	assert_int_equal(wal_name_parse("000000010000000100000004.partial", &name), 0);
	assert_int_equal(wal_name_segno(&name, 16u << 20, &segno), 0);
	assert_int_equal(segno, 260);
	assert_int_equal(wal_name_parse("000000010000000100000004.000000D0.backup", &name), 0);
	assert_int_equal(wal_name_segno(&name, 16u << 20, &segno), 0);
	assert_int_equal(segno, 260);
	assert_int_equal(wal_name_parse("00000001.history", &name), 0);
	assert_int_equal(wal_name_segno(&name, 16u << 20, &segno), -EINVAL);
}

static void test_format(void **state)
{
	char buf[32];

	(void)state;
	wal_name_format_segment(buf, sizeof(buf), 1, 3, 16u << 20);
	assert_string_equal(buf, "000000010000000000000003");
	wal_name_format_segment(buf, sizeof(buf), 0x1A, 0x1FF, 16u << 20);
	assert_string_equal(buf, "0000001A00000001000000FF");
	wal_name_format_segment(buf, sizeof(buf), 2, 0x1FF, 1u << 20);
	assert_string_equal(buf, "0000000200000000000001FF");
	wal_name_format_segment(buf, sizeof(buf), 2, 9, 1u << 30);
	assert_string_equal(buf, "000000020000000200000001");
	wal_name_format_segment(buf, sizeof(buf), 2, 9, 12345);
	assert_string_equal(buf, "");
}

/* The segments after a segment: across a log boundary at each size; nothing else has one. */
static void test_next_segment(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(
		wal_name_next_segment("000000010000000000000003", 16u << 20, 1, buf, sizeof(buf)),
		0);
	assert_string_equal(buf, "000000010000000000000004");
	assert_int_equal(
		wal_name_next_segment("0000000100000000000000FE", 16u << 20, 2, buf, sizeof(buf)),
		0);
	assert_string_equal(buf, "000000010000000100000000");
	assert_int_equal(
		wal_name_next_segment("000000020000000000000FFF", 1u << 20, 1, buf, sizeof(buf)),
		0);
	assert_string_equal(buf, "000000020000000100000000");
	assert_int_equal(wal_name_next_segment("000000010000000000000003.partial", 16u << 20, 1,
					       buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(wal_name_next_segment("00000002.history", 16u << 20, 1, buf, sizeof(buf)),
			 -EINVAL);
	/* 0x100 is out of range for 16 MiB segments (256 per log). */
	assert_int_equal(
		wal_name_next_segment("000000010000000000000100", 16u << 20, 1, buf, sizeof(buf)),
		-EINVAL);
	assert_int_equal(
		wal_name_next_segment("000000010000000000000003", 12345, 1, buf, sizeof(buf)),
		-EINVAL);
}

/* Where a segment's WAL begins; nothing for the other names or an unknown size. */
static void test_segment_start(void **state)
{
	uint64_t start = 1;
	uint32_t tli = 0;

	(void)state;
	assert_int_equal(
		wal_name_segment_start("000000020000000100000003", 16u << 20, &start, &tli), 0);
	assert_int_equal(start, (UINT64_C(1) << 32) + 3 * (UINT64_C(16) << 20));
	assert_int_equal(tli, 2);
	assert_int_equal(
		wal_name_segment_start("000000010000000000000003", 64u << 20, &start, NULL), 0);
	assert_int_equal(start, 3 * (UINT64_C(64) << 20));
	/* segment 0x40 does not exist at 64 MiB (64 segments per log file) */
	assert_int_equal(
		wal_name_segment_start("000000010000000000000040", 64u << 20, &start, NULL),
		-EINVAL);
	assert_int_equal(wal_name_segment_start("000000010000000000000003", 0, &start, NULL),
			 -EINVAL);
	assert_int_equal(
		wal_name_segment_start("000000010000000000000003.partial", 16u << 20, &start, NULL),
		-EINVAL);
	assert_int_equal(wal_name_segment_start("00000002.history", 16u << 20, &start, NULL),
			 -EINVAL);
}

/* Where a timeline forked, from the newest timeline's history file. */
static void test_history_fork(void **state)
{
	static const char h[] = "1\t0/5000100\tno recovery target specified\n"
				"\n"
				"# a comment\n"
				"2\t1/E0000A0\tbefore 2026-12-02 17:00:00+00\n";
	uint64_t lsn = 0;
	uint32_t child = 0;

	(void)state;
	assert_int_equal(wal_history_fork(h, strlen(h), 3, 1, &lsn, &child), 0);
	assert_int_equal(lsn, 0x5000100);
	assert_int_equal(child, 2);
	assert_int_equal(wal_history_fork(h, strlen(h), 3, 2, &lsn, &child), 0);
	assert_int_equal(lsn, 0x10E0000A0ULL);
	assert_int_equal(child, 3);
	assert_int_equal(wal_history_fork(h, strlen(h), 3, 3, &lsn, &child), -ENOENT);
	assert_int_equal(wal_history_fork("x\n", 2, 3, 1, &lsn, &child), -EINVAL);
	assert_int_equal(wal_history_fork("", 0, 2, 1, &lsn, &child), -ENOENT);
	/* where timeline 3 begins: its last line's switch point */
	assert_int_equal(wal_history_start(h, strlen(h), &lsn), 0);
	assert_int_equal(lsn, 0x10E0000A0ULL);
	assert_int_equal(wal_history_start("# none\n", strlen("# none\n"), &lsn), -ENOENT);
	assert_int_equal(
		wal_history_start("1\t0/5000100\tx\nbad\n", strlen("1\t0/5000100\tx\nbad\n"), &lsn),
		-EINVAL);
}

/* A history file read whole; a FIFO or a link under its name refused, never waited on. */
static void test_history_read(void **state)
{
	static const char h[] = "1\t0/5000100\tno recovery target specified\n";
	char dir[] = "/tmp/name_test.XXXXXX", path[64];
	static char buf[WAL_HISTORY_MAX];
	size_t total = 0;
	int dfd, fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	fd = openat(dfd, "00000002.history", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, h, strlen(h)), (ssize_t)strlen(h));
	close(fd);
	assert_int_equal(wal_history_read(dfd, 2, buf), (ssize_t)strlen(h));
	assert_memory_equal(buf, h, strlen(h));
	assert_int_equal(wal_history_read(dfd, 3, buf), -ENOENT);
	assert_int_equal(mkfifoat(dfd, "00000003.history", 0600), 0);
	assert_true(wal_history_read(dfd, 3, buf) < 0);
	assert_int_equal(symlinkat("00000002.history", dfd, "00000004.history"), 0);
	assert_true(wal_history_read(dfd, 4, buf) < 0);
	/* A long history (1,600 timelines, 83 kB: the build before read its first 64 KiB
	 * and cut a line) is read whole; one longer than the buffer is refused, not cut. */
	fd = openat(dfd, "00000005.history", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	for (unsigned int t = 1; t <= 1600; t++) {
		char line[96];
		int n = snprintf(line, sizeof(line), "%u\t%X/%08X\tno recovery target specified\n",
				 t, t, t * 16u);

		assert_int_equal(write(fd, line, (size_t)n), n);
		total += (size_t)n;
	}
	close(fd);
	assert_true(total > 64 * 1024);
	assert_int_equal(wal_history_read(dfd, 5, buf), (ssize_t)total);
	fd = openat(dfd, "00000006.history", O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, WAL_HISTORY_MAX + 1), 0);
	close(fd);
	assert_int_equal(wal_history_read(dfd, 6, buf), -EFBIG);
	for (unsigned int t = 2; t <= 6; t++) {
		snprintf(path, sizeof(path), "%08X.history", t);
		assert_int_equal(unlinkat(dfd, path, 0), 0);
	}
	close(dfd);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment),	     cmocka_unit_test(test_partial),
		cmocka_unit_test(test_history),	     cmocka_unit_test(test_backup),
		cmocka_unit_test(test_refused),	     cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_segno),	     cmocka_unit_test(test_format),
		cmocka_unit_test(test_history_fork), cmocka_unit_test(test_next_segment),
		cmocka_unit_test(test_history_read), cmocka_unit_test(test_segment_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
