// SPDX-License-Identifier: MIT
/*
 * store_incoming: make, in a replica's store, the incoming file of a segment being
 * received, as walshipd leaves it (for tests of `walship fetch` on a growing segment):
 *
 *   store_incoming ARCHIVE_DIR NAME SEQ SOURCE WRITTEN DURABLE
 *
 * Writes the first WRITTEN bytes of SOURCE (a whole segment) to ARCHIVE_DIR/.incoming
 * under store_tmp_name(NAME, SEQ) and records, with store_mark_durable(), that its first
 * DURABLE bytes (CRC-32C of SOURCE's) of SOURCE's size are durable.  Uses the store's own
 * functions, so the file is what walshipd writes.  Do not run it beside a walshipd on
 * the same archive: opening the store removes the incoming files it cannot resume.
 * Exits 0, or 1 with the error printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "wal/store.h"

int main(int argc, char **argv)
{
	uint64_t seq, written, durable;
	char tmp_name[96];
	struct store st;
	struct stat sb;
	uint8_t *buf;
	int src, fd;

	log_set_prefix(false);
	if (argc != 7) {
		fprintf(stderr,
			"usage: store_incoming ARCHIVE_DIR NAME SEQ SOURCE WRITTEN DURABLE\n");
		return 2;
	}
	seq = strtoull(argv[3], NULL, 10);
	written = strtoull(argv[5], NULL, 10);
	durable = strtoull(argv[6], NULL, 10);
	src = open(argv[4], O_RDONLY);
	if (src < 0 || fstat(src, &sb) < 0) {
		fprintf(stderr, "could not open file \"%s\": %s\n", argv[4], strerror(errno));
		return 1;
	}
	if (durable > written || written > (uint64_t)sb.st_size) {
		fprintf(stderr, "need DURABLE <= WRITTEN <= the size of SOURCE\n");
		return 1;
	}
	buf = malloc(written ? written : 1);
	if (!buf || pread(src, buf, written, 0) != (ssize_t)written) {
		fprintf(stderr, "could not read file \"%s\"\n", argv[4]);
		return 1;
	}
	if (store_open(&st, argv[1]) < 0 ||
	    store_tmp_name(tmp_name, sizeof(tmp_name), argv[2], seq) < 0)
		return 1;
	fd = openat(st.incoming_fd, tmp_name, O_RDWR | O_CREAT | O_EXCL, 0640);
	if (fd < 0 || write(fd, buf, written) != (ssize_t)written) {
		fprintf(stderr, "could not write file \"%s/%s\": %s\n", st.incoming_path, tmp_name,
			strerror(errno));
		return 1;
	}
	if (store_mark_durable(&st, fd, (uint64_t)sb.st_size, durable, crc32c(0, buf, durable)) <
		    0 ||
	    fsync(fd) < 0)
		return 1;
	close(fd);
	store_close(&st);
	free(buf);
	printf("%s/%s\n", st.incoming_path, tmp_name);
	return 0;
}
