/* SPDX-License-Identifier: MIT */
/*
 * Copying the contents of one open file into another, as cheaply as the two file systems
 * allow (the primary's spool copies each held WAL segment this way).
 *
 * Three ways, tried in this order:
 *   FILE_COPY_RANGE      copy_file_range(2): on one file system the kernel may share the
 *                        extents (reflink on XFS, Btrfs) or copy without user-space buffers;
 *   FILE_COPY_SENDFILE   sendfile(2): across file systems (pg_wal on tmpfs or on another
 *                        volume than spool_dir, where copy_file_range says EXDEV), still a
 *                        copy inside the kernel through the page cache;
 *   FILE_COPY_READ_WRITE pread(2)/write(2) in 1 MiB chunks, where neither works.
 * A way is left for the next, from where it stopped, when it says it cannot do this copy
 * (EXDEV, EOPNOTSUPP, EINVAL, ENOSYS); any other error is the copy's.  What the fallback
 * costs against the fast path, measured with test/helpers/file_copy_bench, is in
 * docs/operations.md ("WAL on another file system").
 */
#ifndef WALSHIP_COMMON_FILE_COPY_H
#define WALSHIP_COMMON_FILE_COPY_H

#include <stdint.h>

enum file_copy_method {
	FILE_COPY_RANGE,
	FILE_COPY_SENDFILE,
	FILE_COPY_READ_WRITE,
};

/*
 * Copy bytes [0, @size) of @src_fd to @dst_fd at its current file offset (which ends
 * @size further on), starting with method @first and falling back as described above.
 * The offset of @src_fd is not used or moved.  Returns the method that copied the data,
 * -ENODATA if @src_fd ended before @size bytes, or -errno (ENOSPC for a write that
 * stopped short without one).  Logs nothing: the caller says what was being copied.
 * Blocks; thread-safe.
 */
int file_copy(int src_fd, int dst_fd, uint64_t size, enum file_copy_method first);

/* "copy_file_range", "sendfile", "read/write". */
const char *file_copy_method_name(enum file_copy_method method);

#endif /* WALSHIP_COMMON_FILE_COPY_H */
