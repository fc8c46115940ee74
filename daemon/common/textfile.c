// SPDX-License-Identifier: MIT
/*
 * Small text files read whole (see textfile.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/textfile.h"

/* The file behind @fd: a regular file of at most @max bytes, with its access as @private
 * asks (textfile_read_private()).  Returns 0 or -errno, logged. */
static int textfile_check(int fd, const char *path, const char *what, size_t max, bool private,
			  struct stat *st)
{
	if (fstat(fd, st) < 0) {
		int ret = -errno;

		log_error("could not stat %s \"%s\": %s", what, path, strerror(-ret));
		return ret;
	}
	if (!S_ISREG(st->st_mode) || (size_t)st->st_size > max) {
		if (max == SIZE_MAX)
			log_error("%s \"%s\" is not a regular file", what, path);
		else
			log_error("%s \"%s\" is not a regular file of at most %zu bytes", what,
				  path, max);
		return -EINVAL;
	}
	/* PostgreSQL's check of ssl_key_file (be-secure-common.c check_ssl_key_file()):
	 * owned by the daemon's user or root, ... */
	if (private && st->st_uid != geteuid() && st->st_uid != 0) {
		log_error("%s \"%s\" is owned by another user (uid %u)", what, path,
			  (unsigned int)st->st_uid);
		log_detail("File must be owned by the daemon's user or root.");
		return -EACCES;
	}
	/* ... with no more access than these */
	if (private && ((st->st_uid != 0 && (st->st_mode & (S_IRWXG | S_IRWXO))) ||
			(st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))))) {
		log_error("%s \"%s\" has group or world access", what, path);
		log_detail(
			"File must have permissions u=rw (0600) or less if owned by the "
			"daemon's user, or permissions u=rw,g=r (0640) or less if owned by root.");
		return -EACCES;
	}
	return 0;
}

/* @path opened and checked (textfile_check()): its descriptor, or -errno, logged. */
static int textfile_open(const char *path, const char *what, size_t max, bool private,
			 struct stat *st)
{
	/* (O_NONBLOCK: a FIFO named here would block the open for ever; it is refused as
	 * no regular file, whose reads the flag does not change) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), ret;

	if (fd < 0) {
		ret = -errno;
		log_error("could not open %s \"%s\": %s", what, path, strerror(-ret));
		return ret;
	}
	ret = textfile_check(fd, path, what, max, private, st);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int textfile_check_path(const char *path, const char *what)
{
	struct stat st;
	int fd = textfile_open(path, what, SIZE_MAX, false, &st);

	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int textfile_read_mode(const char *path, const char *what, size_t max, bool private,
			      char **out, size_t *out_len)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd = textfile_open(path, what, max, private, &st), ret;

	if (fd < 0)
		return fd;
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		log_error("out of memory");
		ret = -ENOMEM;
		goto out_close;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, text + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			log_error("could not read %s \"%s\": %s", what, path, strerror(-ret));
			free(text);
			goto out_close;
		}
		if (n == 0)
			break; /* shrank under us: what is there */
		len += (size_t)n;
	}
	text[len] = '\0';
	*out = text;
	*out_len = len;
	ret = 0;
out_close:
	close(fd);
	return ret;
}

bool textfile_error_lasts(int err)
{
	switch (-err) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EACCES:
	case EPERM:
	case EISDIR:
	case EFBIG:
	case EINVAL:
		return true;
	default:
		return false;
	}
}

int textfile_read(const char *path, const char *what, size_t max, char **out, size_t *out_len)
{
	return textfile_read_mode(path, what, max, false, out, out_len);
}

int textfile_read_private(const char *path, const char *what, size_t max, char **out,
			  size_t *out_len)
{
	return textfile_read_mode(path, what, max, true, out, out_len);
}
