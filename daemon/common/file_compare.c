// SPDX-License-Identifier: MIT
/*
 * Comparing the contents of two open files (see file_compare.h).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_compare.h"

#define COMPARE_CHUNK (256 * 1024)

/* The first @len bytes of @a and @b, both at least that long. */
static int compare_bytes(int a, int b, off_t len)
{
	uint8_t *buf_a, *buf_b;
	off_t off = 0;
	int ret = 1;

	buf_a = malloc(2 * COMPARE_CHUNK);
	if (!buf_a)
		return -ENOMEM;
	buf_b = buf_a + COMPARE_CHUNK;
	while (off < len) {
		size_t want = len - off < COMPARE_CHUNK ? (size_t)(len - off) : COMPARE_CHUNK;
		ssize_t got_a = pread(a, buf_a, want, off);
		ssize_t got_b = pread(b, buf_b, want, off);

		if (got_a < 0 || got_b < 0) {
			ret = -errno;
			break;
		}
		if (got_a != got_b || got_a == 0 || memcmp(buf_a, buf_b, (size_t)got_a) != 0) {
			ret = 0;
			break;
		}
		off += got_a;
	}
	free(buf_a);
	return ret;
}

int file_compare(int a, int b)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return -errno;
	if (sa.st_size != sb.st_size)
		return 0;
	return compare_bytes(a, b, sa.st_size);
}

int file_compare_prefix(int a, int b, uint64_t len)
{
	struct stat sa, sb;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return -errno;
	if ((uint64_t)sa.st_size < len || (uint64_t)sb.st_size < len)
		return 0;
	return compare_bytes(a, b, (off_t)len);
}
