// SPDX-License-Identifier: MIT
/*
 * wal_xacts: list the transaction ends in WAL segments with the record decoder
 * (daemon/wal/record.h), in the words pg_waldump uses, for t_99e_wal_record to compare:
 *
 *   wal_xacts SEG_SIZE BLOCK_SIZE CHUNK SEGMENT...
 *
 * The segments (paths, consecutive, the first one's name giving the start address) are
 * fed to one decoder in pieces of CHUNK bytes (1 .. SEG_SIZE; 0 picks varying sizes, to
 * split records across calls anywhere).  Prints one line per transaction end:
 *
 *   LSN KIND YYYY-MM-DD HH:MM:SS.UUUUUU UTC END_LSN
 *
 * then "records N xact_ends N errors N" on stderr.  Exits 0, 1 on damage or error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/pgrepl.h"
#include "wal/name.h"
#include "wal/record.h"

static void print_xact(void *arg, const struct wal_xact_end *x)
{
	int64_t us = pgrepl_time_to_unix_us(x->xact_time);
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;
	char when[64];

	(void)arg;
	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%X/%08X %s %s.%06d UTC %X/%08X\n", (unsigned int)(x->lsn >> 32),
	       (unsigned int)x->lsn, wal_xact_kind_name(x->kind), when, (int)(us % 1000000),
	       (unsigned int)(x->end_lsn >> 32), (unsigned int)x->end_lsn);
}

int main(int argc, char **argv)
{
	struct wal_decoder d;
	struct wal_name wn;
	uint32_t seg_size, block_size;
	uint64_t segno, chunk, lsn;
	uint8_t *buf;
	unsigned int step = 0;
	const char *base;

	if (argc < 5) {
		fprintf(stderr, "usage: wal_xacts SEG_SIZE BLOCK_SIZE CHUNK SEGMENT...\n");
		return 1;
	}
	seg_size = (uint32_t)strtoul(argv[1], NULL, 10);
	block_size = (uint32_t)strtoul(argv[2], NULL, 10);
	chunk = strtoull(argv[3], NULL, 10);
	base = strrchr(argv[4], '/') ? strrchr(argv[4], '/') + 1 : argv[4];
	if (wal_name_parse(base, &wn) < 0 || wal_name_segno(&wn, seg_size, &segno) < 0) {
		fprintf(stderr, "wal_xacts: \"%s\" is not a WAL segment name\n", base);
		return 1;
	}
	lsn = segno * seg_size;
	if (wal_decoder_begin(&d, seg_size, block_size, lsn, print_xact, NULL) < 0) {
		fprintf(stderr, "wal_xacts: impossible sizes\n");
		return 1;
	}
	buf = malloc(seg_size);
	if (!buf)
		return 1;
	for (int i = 4; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY);
		ssize_t got;
		size_t off = 0;

		if (fd < 0) {
			fprintf(stderr, "could not open file \"%s\": %s\n", argv[i],
				strerror(errno));
			return 1;
		}
		got = read(fd, buf, seg_size);
		close(fd);
		if (got != (ssize_t)seg_size) {
			fprintf(stderr, "could not read file \"%s\"\n", argv[i]);
			return 1;
		}
		while (off < seg_size) {
			/* varying sizes: 1, 7, 100, 8191, 65536 bytes, ... */
			static const size_t sizes[] = { 1, 7, 100, 8191, 65536, 3, 24, 40, 131072 };
			size_t n =
				chunk ? chunk : sizes[step++ % (sizeof(sizes) / sizeof(sizes[0]))];

			if (n > seg_size - off)
				n = seg_size - off;
			if (wal_decoder_feed(&d, lsn, buf + off, n) < 0) {
				fprintf(stderr, "wal_xacts: feed failed at %" PRIu64 "\n", lsn);
				return 1;
			}
			off += n;
			lsn += n;
		}
	}
	fprintf(stderr, "records %" PRIu64 " xact_ends %" PRIu64 " errors %" PRIu64 "%s%s\n",
		d.records, d.xact_ends, d.errors, d.errors ? ": " : "", d.errors ? d.message : "");
	wal_decoder_end(&d);
	free(buf);
	fflush(stdout);
	return d.errors ? 1 : 0;
}
