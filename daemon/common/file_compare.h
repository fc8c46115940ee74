/* SPDX-License-Identifier: MIT */
/*
 * Comparing the contents of two open files: the "never overwrite" rule
 * (docs/architecture.md, "Durability rules") answers the same name again with the same
 * content as a duplicate and with other content as a conflict.  The replica's store and
 * the primary's spool both decide it here.  (A replica's HAVE is answered with CRCs
 * instead: the primary does not hold the replica's bytes.)
 */
#ifndef WALSHIP_COMMON_FILE_COMPARE_H
#define WALSHIP_COMMON_FILE_COMPARE_H

#include <stdint.h>

/*
 * Compare the whole contents of @a and @b (sizes first, from fstat, then the bytes with
 * pread: the file offsets are not used or moved).  Returns 1 when identical, 0 when they
 * differ (a file that shrinks while it is read differs), or -errno (-ENOMEM, or a failed
 * fstat or read).  Logs nothing: the caller names the files.  Blocks; thread-safe.
 */
int file_compare(int a, int b);

/* The same for the first @len bytes of @a and @b: 0 also when either is shorter. */
int file_compare_prefix(int a, int b, uint64_t len);

#endif /* WALSHIP_COMMON_FILE_COMPARE_H */
