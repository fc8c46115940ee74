// SPDX-License-Identifier: MIT
/*
 * File contents copy with in-kernel fast paths (see file_copy.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "common/file_copy.h"

#define FILE_COPY_CHUNK (1 << 20) /* bytes per pread/write */
#define FILE_COPY_MAX_CALL (1 << 30) /* bytes per copy_file_range or sendfile call */

/* The method cannot do this copy at all: try the next one. */
static bool file_copy_unsupported(int err)
{
	return err == EXDEV || err == EOPNOTSUPP || err == EINVAL || err == ENOSYS;
}

/* Write all @len bytes of @buf to @fd.  Returns 0 or -errno (-ENOSPC for a short write). */
static int file_copy_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n;

		errno = 0;
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return errno ? -errno : -ENOSPC;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* pread/write from *@off up to @size.  Returns 0 or -errno. */
static int file_copy_read_write(int src_fd, int dst_fd, uint64_t size, off_t *off)
{
	char *buf = malloc(FILE_COPY_CHUNK);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while ((uint64_t)*off < size) {
		uint64_t left = size - (uint64_t)*off;
		ssize_t n = pread(src_fd, buf,
				  left < FILE_COPY_CHUNK ? (size_t)left : FILE_COPY_CHUNK, *off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -ENODATA;
			break;
		}
		ret = file_copy_write_all(dst_fd, buf, (size_t)n);
		if (ret < 0)
			break;
		*off += n;
	}
	free(buf);
	return ret;
}

/*
 * One call of @method from *@off, at most @len bytes.  Returns the bytes copied (0: the
 * source ended) or -errno.
 */
static ssize_t file_copy_step(enum file_copy_method method, int src_fd, int dst_fd, off_t *off,
			      size_t len)
{
	ssize_t n;

	errno = 0;
	if (method == FILE_COPY_RANGE) {
		loff_t in_off = *off;

		n = copy_file_range(src_fd, &in_off, dst_fd, NULL, len, 0);
		if (n > 0)
			*off = in_off;
	} else {
		n = sendfile(dst_fd, src_fd, off, len);
	}
	return n < 0 ? -errno : n;
}

int file_copy(int src_fd, int dst_fd, uint64_t size, enum file_copy_method first)
{
	enum file_copy_method method = first;
	off_t off = 0;

	while (method != FILE_COPY_READ_WRITE && (uint64_t)off < size) {
		uint64_t left = size - (uint64_t)off;
		ssize_t n = file_copy_step(method, src_fd, dst_fd, &off,
					   left < FILE_COPY_MAX_CALL ? (size_t)left :
								       FILE_COPY_MAX_CALL);

		if (n == -EINTR)
			continue;
		if (n < 0 && file_copy_unsupported((int)-n)) {
			method++;
			continue;
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ENODATA;
	}
	if (method == FILE_COPY_READ_WRITE) {
		int ret = file_copy_read_write(src_fd, dst_fd, size, &off);

		if (ret < 0)
			return ret;
	}
	return (int)method;
}

const char *file_copy_method_name(enum file_copy_method method)
{
	switch (method) {
	case FILE_COPY_RANGE:
		return "copy_file_range";
	case FILE_COPY_SENDFILE:
		return "sendfile";
	case FILE_COPY_READ_WRITE:
		return "read/write";
	}
	return "unknown";
}
