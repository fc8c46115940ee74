/* SPDX-License-Identifier: MIT */
/*
 * Validating a WAL file by its page headers alone, read through a small io_uring of its
 * own used synchronously (beside the event loop's ring, which must never be waited on).
 * The validator checks a segment's page headers and nothing else (wal/page.h), yet
 * wal_validate_fd() reads the whole file for them: 16 MiB copied for 48 kB of headers.
 * Here each header is one read request, a batch of VALIDATE_BATCH to one
 * io_uring_enter(); reads of cached pages complete inside it, without the per-call cost
 * of pread().  Measured on this machine (20 cached 16 MiB segments of the benchmark's
 * corpus, CPU per segment, best of five rounds of 100, three times): wal_validate_fd()
 * 2.09, 2.37 and 2.28 ms, validate_fd() 1.11, 1.12 and 0.93 ms.  (Reading the headers
 * with 2048 pread() calls instead cost 3.26 ms: the calls, not the copy, are the cost;
 * a whole-file read into a buffer that stays in cache was no cheaper than 1 MiB pieces.)
 */
#ifndef WALSHIP_RING_VALIDATE_H
#define WALSHIP_RING_VALIDATE_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "wal/page.h"

/* Header reads per submission (and the ring's size). */
#define VALIDATE_BATCH 128

struct validate_ring {
	struct io_uring ring;
	bool ready;
};

/* Set up @vr.  Returns 0, or -errno: validate_fd() then reads the plain way. */
int validate_ring_init(struct validate_ring *vr);

void validate_ring_exit(struct validate_ring *vr);

/*
 * Validate the WAL file open as @fd, named @name, as wal_validate_fd() does (same results
 * and messages), reading a segment's page headers alone through @vr; other files, or
 * with @vr NULL or not set up, through wal_validate_fd().  Blocks while the headers are
 * read (as pread() would; cached, they are).  Returns 0 and fills @id (may be NULL), or
 * -EINVAL with the reason in wv->message, or -errno when reading fails.
 */
int validate_fd(struct validate_ring *vr, int fd, const struct wal_name *name,
		uint64_t expected_sysid, struct wal_validator *wv, struct wal_identity *id);

/*
 * The first page of the segment (or .partial) open as @fd, of @size bytes: begin @wv and
 * check that page's long header, which names the cluster (wv->id) and the block size.
 * Returns 0 with wv->offset at the end of the page, or -EINVAL with the reason in
 * wv->message, or -errno when reading fails.
 */
int validate_fd_first_page(int fd, const struct wal_name *name, uint64_t size,
			   uint64_t expected_sysid, struct wal_validator *wv);

/*
 * Go on with @wv, begun on the segment open as @fd and past its first page, up to @to:
 * the headers of the pages from wv->offset to @to (both on page boundaries), read
 * through @vr (one pread() each when @vr is NULL or not set up, or once the ring
 * failed).  Returns 0, or -EINVAL with the reason in wv->message, or -errno.
 */
int validate_fd_pages(struct validate_ring *vr, int fd, struct wal_validator *wv, uint64_t to);

#endif /* WALSHIP_RING_VALIDATE_H */
