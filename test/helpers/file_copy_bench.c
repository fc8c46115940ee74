// SPDX-License-Identifier: MIT
/*
 * file_copy_bench: what each way of daemon/common/file_copy.c costs, as the spool uses it.
 *
 *   file_copy_bench SRC DIR [ROUNDS]
 *	Copy the file SRC into a new file in DIR ROUNDS times (default 20) with each way
 *	(copy_file_range, falling back as file_copy() does; sendfile; read/write), and
 *	fdatasync() it as spool_store() does.  Print per way the median and the minimum,
 *	in milliseconds, of the copy alone and of copy plus fdatasync, and which way
 *	actually copied.  The source stays in the page cache (pg_wal just wrote it).
 *
 * docs/operations.md ("WAL on another file system") gives the figures measured here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file_copy.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = argc > 3 ? atoi(argv[3]) : 20, src;
	double *copy_ms, *total_ms;
	struct stat sb;

	if (argc < 3 || rounds < 1) {
		fprintf(stderr, "usage: file_copy_bench SRC DIR [ROUNDS]\n");
		return 2;
	}
	src = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &sb) < 0) {
		fprintf(stderr, "could not open file \"%s\": %s\n", argv[1], strerror(errno));
		return 1;
	}
	copy_ms = calloc((size_t)rounds, sizeof(*copy_ms));
	total_ms = calloc((size_t)rounds, sizeof(*total_ms));
	if (!copy_ms || !total_ms)
		return 1;
	printf("%-16s %-16s %10s %10s %14s %14s\n", "first way", "copied with", "copy_med",
	       "copy_min", "+fdatasync_med", "+fdatasync_min");
	for (int first = FILE_COPY_RANGE; first <= FILE_COPY_READ_WRITE; first++) {
		int used = -1;

		for (int round = 0; round < rounds; round++) {
			char path[4096];
			double t0, t1;
			int dst;

			snprintf(path, sizeof(path), "%s/file_copy_bench.%d", argv[2],
				 (int)getpid());
			dst = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
			if (dst < 0) {
				fprintf(stderr, "could not create file \"%s\": %s\n", path,
					strerror(errno));
				return 1;
			}
			t0 = now_ms();
			used = file_copy(src, dst, (uint64_t)sb.st_size,
					 (enum file_copy_method)first);
			t1 = now_ms();
			if (used < 0 || fdatasync(dst) < 0) {
				fprintf(stderr, "could not copy \"%s\": %s\n", argv[1],
					strerror(used < 0 ? -used : errno));
				return 1;
			}
			copy_ms[round] = t1 - t0;
			total_ms[round] = now_ms() - t0;
			close(dst);
			unlink(path);
		}
		qsort(copy_ms, (size_t)rounds, sizeof(*copy_ms), cmp_double);
		qsort(total_ms, (size_t)rounds, sizeof(*total_ms), cmp_double);
		printf("%-16s %-16s %10.2f %10.2f %14.2f %14.2f\n",
		       file_copy_method_name((enum file_copy_method)first),
		       file_copy_method_name((enum file_copy_method)used), copy_ms[rounds / 2],
		       copy_ms[0], total_ms[rounds / 2], total_ms[0]);
	}
	free(copy_ms);
	free(total_ms);
	close(src);
	return 0;
}
