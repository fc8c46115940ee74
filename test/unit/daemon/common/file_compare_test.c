// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/common/file_compare.c: same bytes are the same file; a different
 * byte anywhere (the last one of a chunk beyond the first too), or another size, is not;
 * the file offsets are not moved; an unreadable file is an error, not a verdict.
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
#include <unistd.h>

#include <cmocka.h>

#include "common/file_compare.h"

#define SIZE (1024u * 1024u + 777u) /* several chunks and a tail */

static char disk_dir[256];
static uint8_t *pattern;

/* A file holding @len bytes of @bytes, opened read-write (already unlinked). */
static int make_file(const uint8_t *bytes, size_t len)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/f-XXXXXX", disk_dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	unlink(path);
	return fd;
}

static int setup(void **state)
{
	(void)state;
	pattern = malloc(SIZE);
	if (!pattern)
		return -1;
	for (size_t idx = 0; idx < SIZE; idx++)
		pattern[idx] = (uint8_t)(idx * 7 + (idx >> 10));
	snprintf(disk_dir, sizeof(disk_dir), "build/file-compare-test-XXXXXX");
	return mkdtemp(disk_dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(pattern);
	return rmdir(disk_dir);
}

static void test_same(void **state)
{
	int a = make_file(pattern, SIZE), b = make_file(pattern, SIZE);

	(void)state;
	assert_int_equal(file_compare(a, b), 1);
	assert_int_equal(lseek(a, 0, SEEK_CUR), SIZE);
	close(a);
	close(b);
	a = make_file(pattern, 0);
	b = make_file(pattern, 0);
	assert_int_equal(file_compare(a, b), 1);
	close(a);
	close(b);
}

static void test_different_byte(void **state)
{
	const size_t at[] = { 0, 256 * 1024 - 1, SIZE - 1 };

	(void)state;
	for (size_t idx = 0; idx < sizeof(at) / sizeof(at[0]); idx++) {
		int a = make_file(pattern, SIZE), b = make_file(pattern, SIZE);
		uint8_t other = (uint8_t)(pattern[at[idx]] ^ 0x40);

		assert_int_equal(pwrite(b, &other, 1, (off_t)at[idx]), 1);
		assert_int_equal(file_compare(a, b), 0);
		assert_int_equal(file_compare(b, a), 0);
		close(a);
		close(b);
	}
}

static void test_different_size(void **state)
{
	int a = make_file(pattern, SIZE), b = make_file(pattern, SIZE - 1);

	(void)state;
	assert_int_equal(file_compare(a, b), 0);
	close(a);
	close(b);
}

static void test_unreadable(void **state)
{
	char path[300];
	int a = make_file(pattern, 4096), b;

	(void)state;
	snprintf(path, sizeof(path), "%s/wo-XXXXXX", disk_dir);
	b = mkstemp(path);
	assert_true(b >= 0);
	assert_int_equal(write(b, pattern, 4096), 4096);
	close(b);
	b = open(path, O_WRONLY);
	unlink(path);
	assert_true(b >= 0);
	assert_int_equal(file_compare(a, b), -EBADF);
	assert_int_equal(file_compare(a, -1), -EBADF);
	close(a);
	close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same),
		cmocka_unit_test(test_different_byte),
		cmocka_unit_test(test_different_size),
		cmocka_unit_test(test_unreadable),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
