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

int file_compare(int a, int b)
{
	struct stat sa, sb;
	uint8_t *buf_a, *buf_b;
	off_t off = 0;
	int ret = 1;

	if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
		return -errno;
	if (sa.st_size != sb.st_size)
		return 0;
	buf_a = malloc(2 * COMPARE_CHUNK);
	if (!buf_a)
		return -ENOMEM;
	buf_b = buf_a + COMPARE_CHUNK;
	while (off < sa.st_size) {
		size_t want = sa.st_size - off < COMPARE_CHUNK ? (size_t)(sa.st_size - off) :
								 COMPARE_CHUNK;
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
