// SPDX-License-Identifier: MIT
/*
 * Tests for daemon/common/mapguard.c: a checksum over a mapping of a file that shrank
 * returns -EFAULT instead of killing the process with SIGBUS.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/mapguard.h"

#define FILE_SIZE (256 * 1024)

static int make_file(void)
{
	char path[] = "build/mapguard-test.XXXXXX";
	static uint8_t buf[FILE_SIZE];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31);
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	return fd;
}

static void test_whole_file(void **state)
{
	int fd = make_file();
	uint8_t *map = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	uint32_t got = 0;

	(void)state;
	assert_true(map != MAP_FAILED);
	assert_int_equal(mapguard_init(), 0);
	assert_int_equal(mapguard_crc32c(0, map, FILE_SIZE, &got), 0);
	assert_int_equal(got, crc32c(0, map, FILE_SIZE));
	munmap(map, FILE_SIZE);
	close(fd);
}

static void test_shrunk_file(void **state)
{
	int fd = make_file();
	uint8_t *map = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	uint32_t got = 12345;

	(void)state;
	assert_true(map != MAP_FAILED);
	assert_int_equal(mapguard_init(), 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(mapguard_crc32c(0, map, FILE_SIZE, &got), -EFAULT);
	assert_int_equal(got, 12345); /* untouched */
	/* The guard is disarmed again and usable afterwards. */
	assert_int_equal(mapguard_crc32c(0, map, 4096, &got), 0);
	assert_int_equal(got, crc32c(0, map, 4096));
	munmap(map, FILE_SIZE);
	close(fd);
}

struct sum_arg {
	const uint8_t *map;
	size_t len;
	uint64_t sum;
};

static int sum_bytes(void *arg)
{
	struct sum_arg *sa = arg;

	for (size_t i = 0; i < sa->len; i += 4096)
		sa->sum += sa->map[i];
	return 7;
}

/* mapguard_call(): the function's result, or -EFAULT when it touched a vanished page. */
static void test_call(void **state)
{
	int fd = make_file();
	uint8_t *map = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	struct sum_arg sa = { .map = map, .len = FILE_SIZE };

	(void)state;
	assert_true(map != MAP_FAILED);
	assert_int_equal(mapguard_init(), 0);
	assert_int_equal(mapguard_call(sum_bytes, &sa), 7);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(mapguard_call(sum_bytes, &sa), -EFAULT);
	sa.len = 4096;
	assert_int_equal(mapguard_call(sum_bytes, &sa), 7);
	munmap(map, FILE_SIZE);
	close(fd);
}

struct thread_arg {
	const uint8_t *map;
	int ret;
	uint32_t crc;
};

static void *crc_thread(void *arg)
{
	struct thread_arg *ta = arg;

	ta->ret = mapguard_crc32c(0, ta->map, FILE_SIZE, &ta->crc);
	return NULL;
}

/* Another thread (the primary's worker reads pushed files too): the SIGBUS of its read
 * jumps back in that thread, and this thread's guard still works afterwards. */
static void test_other_thread(void **state)
{
	int fd = make_file();
	uint8_t *map = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	struct thread_arg ta = { .map = map, .crc = 12345 };
	pthread_t t;
	uint32_t got = 0;

	(void)state;
	assert_true(map != MAP_FAILED);
	assert_int_equal(mapguard_init(), 0);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(pthread_create(&t, NULL, crc_thread, &ta), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(ta.ret, -EFAULT);
	assert_int_equal(ta.crc, 12345);
	assert_int_equal(mapguard_crc32c(0, map, FILE_SIZE, &got), -EFAULT);
	assert_int_equal(mapguard_crc32c(0, map, 4096, &got), 0);
	assert_int_equal(got, crc32c(0, map, 4096));
	munmap(map, FILE_SIZE);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_file),
		cmocka_unit_test(test_shrunk_file),
		cmocka_unit_test(test_call),
		cmocka_unit_test(test_other_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
