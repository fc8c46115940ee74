// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/file_copy.c: each way copies the bytes exactly, from any
 * starting way; a source that ends early is -ENODATA; from a tmpfs (/dev/shm) to the disk
 * (build/), where copy_file_range says EXDEV, the copy falls back to sendfile.
 */
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
#include <sys/vfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/file_copy.h"

#define SIZE (3u * 1024u * 1024u + 12345u) /* several chunks and a tail */
#define TMPFS_MAGIC 0x01021994

static char disk_dir[256];
static uint8_t *pattern;

/* A file of @len pattern bytes under @dir, opened read-only (already unlinked). */
static int make_source(const char *dir, size_t len)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/src-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pattern, len), (ssize_t)len);
	unlink(path);
	return fd;
}

static int make_dest(void)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/dst-XXXXXX", disk_dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

static void assert_copied(int dst_fd, size_t len)
{
	uint8_t *back = malloc(SIZE);
	struct stat sb;

	assert_non_null(back);
	assert_int_equal(fstat(dst_fd, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)len);
	assert_int_equal(pread(dst_fd, back, len, 0), (ssize_t)len);
	assert_memory_equal(back, pattern, len);
	free(back);
}

static int setup(void **state)
{
	(void)state;
	pattern = malloc(SIZE);
	if (!pattern)
		return -1;
	for (size_t idx = 0; idx < SIZE; idx++)
		pattern[idx] = (uint8_t)(idx * 31 + (idx >> 12));
	snprintf(disk_dir, sizeof(disk_dir), "build/file-copy-test-XXXXXX");
	return mkdtemp(disk_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(pattern);
	return rmdir(disk_dir);
}

/* On one file system: whichever way it starts with copies everything, with that way. */
static void test_each_way(void **state)
{
	(void)state;
	for (int first = FILE_COPY_RANGE; first <= FILE_COPY_READ_WRITE; first++) {
		int src = make_source(disk_dir, SIZE), dst = make_dest();

		/* The source's own offset is neither used nor moved. */
		assert_int_equal(lseek(src, 100, SEEK_SET), 100);
		assert_int_equal(file_copy(src, dst, SIZE, (enum file_copy_method)first), first);
		assert_int_equal(lseek(src, 0, SEEK_CUR), 100);
		assert_int_equal(lseek(dst, 0, SEEK_CUR), SIZE);
		assert_copied(dst, SIZE);
		close(src);
		close(dst);
	}
	assert_string_equal(file_copy_method_name(FILE_COPY_RANGE), "copy_file_range");
	assert_string_equal(file_copy_method_name(FILE_COPY_SENDFILE), "sendfile");
	assert_string_equal(file_copy_method_name(FILE_COPY_READ_WRITE), "read/write");
}

/* Fewer bytes than asked for: -ENODATA, whatever the way. */
static void test_short_source(void **state)
{
	(void)state;
	for (int first = FILE_COPY_RANGE; first <= FILE_COPY_READ_WRITE; first++) {
		int src = make_source(disk_dir, SIZE - 1), dst = make_dest();

		assert_int_equal(file_copy(src, dst, SIZE, (enum file_copy_method)first), -ENODATA);
		close(src);
		close(dst);
	}
}

/* Nothing to copy is no work. */
static void test_empty(void **state)
{
	int src = make_source(disk_dir, 0), dst = make_dest();

	(void)state;
	assert_int_equal(file_copy(src, dst, 0, FILE_COPY_RANGE), FILE_COPY_RANGE);
	assert_copied(dst, 0);
	close(src);
	close(dst);
}

/* A write-only source is the copy's error, not a reason to try another way. */
static void test_unreadable_source(void **state)
{
	char path[300];
	int src, dst = make_dest();

	(void)state;
	snprintf(path, sizeof(path), "%s/wo-XXXXXX", disk_dir);
	src = mkstemp(path);
	assert_true(src >= 0);
	assert_int_equal(write(src, pattern, 4096), 4096);
	close(src);
	src = open(path, O_WRONLY);
	unlink(path);
	assert_true(src >= 0);
	assert_int_equal(file_copy(src, dst, 4096, FILE_COPY_READ_WRITE), -EBADF);
	assert_true(file_copy(src, dst, 4096, FILE_COPY_RANGE) < 0);
	close(src);
	close(dst);
}

/* pg_wal on a tmpfs, the spool on the disk: copy_file_range says EXDEV, sendfile copies. */
static void test_across_file_systems(void **state)
{
	struct statfs shm, disk;
	int src, dst;

	(void)state;
	if (statfs("/dev/shm", &shm) < 0 || shm.f_type != TMPFS_MAGIC ||
	    statfs(disk_dir, &disk) < 0 || disk.f_type == TMPFS_MAGIC) {
		print_message("skipped: /dev/shm is no tmpfs, or the build folder is one\n");
		skip();
	}
	src = make_source("/dev/shm", SIZE);
	dst = make_dest();
	assert_int_equal(file_copy(src, dst, SIZE, FILE_COPY_RANGE), FILE_COPY_SENDFILE);
	assert_copied(dst, SIZE);
	close(src);
	close(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_way),
		cmocka_unit_test(test_short_source),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_unreadable_source),
		cmocka_unit_test(test_across_file_systems),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
