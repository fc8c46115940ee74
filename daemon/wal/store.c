// SPDX-License-Identifier: MIT
/*
 * The replica's durable WAL store, synchronous parts (see store.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "wal/store.h"

#define SYSID_FILE "system_identifier"

static int store_mkdir(int dir_fd, const char *name, const char *path)
{
	if (mkdirat(dir_fd, name, 0750) < 0 && errno != EEXIST) {
		int err = -errno;

		log_error("could not create directory \"%s/%s\": %s", path, name, strerror(errno));
		return err;
	}
	return 0;
}

/* Remove every entry of the directory at @fd (files only; .incoming holds no dirs). */
static int store_empty_dir(int fd, const char *path)
{
	int dup_fd = dup(fd);
	DIR *dir;
	struct dirent *de;
	int removed = 0;

	if (dup_fd < 0)
		return -errno;
	dir = fdopendir(dup_fd);
	if (!dir) {
		close(dup_fd);
		return -errno;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.' &&
		    (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		if (unlinkat(fd, de->d_name, 0) < 0) {
			log_warning("could not remove incomplete file \"%s/%s\": %s", path,
				    de->d_name, strerror(errno));
			continue;
		}
		removed++;
	}
	closedir(dir);
	if (removed) {
		log_log("removed %d incomplete file(s) from \"%s\"", removed, path);
		log_detail("They were never acknowledged; the primary sends them again.");
		fsync(fd);
	}
	return 0;
}

int store_open(struct store *st, const char *path)
{
	char sub[4200];
	int ret;

	memset(st, 0, sizeof(*st));
	st->dir_fd = st->incoming_fd = -1;
	snprintf(st->path, sizeof(st->path), "%s", path);

	if (mkdir(path, 0750) < 0 && errno != EEXIST) {
		ret = -errno;
		log_error("could not create directory \"%s\": %s", path, strerror(errno));
		return ret;
	}
	st->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dir_fd < 0) {
		ret = -errno;
		log_error("could not open directory \"%s\": %s", path, strerror(errno));
		return ret;
	}
	ret = store_mkdir(st->dir_fd, STORE_INCOMING_DIR, path);
	if (ret < 0)
		goto out_close;
	ret = store_mkdir(st->dir_fd, STORE_STATE_DIR, path);
	if (ret < 0)
		goto out_close;
	st->incoming_fd =
		openat(st->dir_fd, STORE_INCOMING_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->incoming_fd < 0) {
		ret = -errno;
		log_error("could not open directory \"%s/%s\": %s", path, STORE_INCOMING_DIR,
			  strerror(errno));
		goto out_close;
	}
	snprintf(sub, sizeof(sub), "%s/%s", path, STORE_INCOMING_DIR);
	store_empty_dir(st->incoming_fd, sub);
	fsync(st->dir_fd);

	/* The system identifier this store belongs to, if it has stored anything. */
	{
		char buf[64] = { 0 };
		int fd = openat(st->dir_fd, STORE_STATE_DIR "/" SYSID_FILE, O_RDONLY | O_CLOEXEC);

		if (fd >= 0) {
			ssize_t n = read(fd, buf, sizeof(buf) - 1);
			char *end;

			close(fd);
			if (n > 0)
				st->system_identifier = strtoull(buf, &end, 10);
			if (n <= 0 || (*end != '\n' && *end != '\0') || !st->system_identifier) {
				log_error("invalid system identifier file \"%s/%s/%s\"", path,
					  STORE_STATE_DIR, SYSID_FILE);
				ret = -EINVAL;
				goto out_close;
			}
		} else if (errno != ENOENT) {
			ret = -errno;
			log_error("could not open file \"%s/%s/%s\": %s", path, STORE_STATE_DIR,
				  SYSID_FILE, strerror(errno));
			goto out_close;
		}
	}
	return 0;

out_close:
	store_close(st);
	return ret;
}

void store_close(struct store *st)
{
	if (st->incoming_fd >= 0)
		close(st->incoming_fd);
	if (st->dir_fd >= 0)
		close(st->dir_fd);
	st->incoming_fd = st->dir_fd = -1;
}

int store_set_system_identifier(struct store *st, uint64_t sysid)
{
	char buf[32];
	int state_fd, fd, ret = 0;
	int len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", sysid);

	state_fd = openat(st->dir_fd, STORE_STATE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (state_fd < 0) {
		ret = -errno;
		log_error("could not open directory \"%s/%s\": %s", st->path, STORE_STATE_DIR,
			  strerror(errno));
		return ret;
	}
	fd = openat(state_fd, SYSID_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		ret = -errno;
		log_error("could not create file \"%s/%s/%s.tmp\": %s", st->path, STORE_STATE_DIR,
			  SYSID_FILE, strerror(errno));
		goto out_close_dir;
	}
	errno = 0;
	if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0) {
		ret = errno ? -errno : -ENOSPC;
		log_error("could not write file \"%s/%s/%s.tmp\": %s", st->path, STORE_STATE_DIR,
			  SYSID_FILE, strerror(-ret));
		close(fd);
		goto out_close_dir;
	}
	close(fd);
	if (renameat(state_fd, SYSID_FILE ".tmp", state_fd, SYSID_FILE) < 0 ||
	    fsync(state_fd) < 0) {
		ret = -errno;
		log_error("could not rename file \"%s/%s/%s.tmp\": %s", st->path, STORE_STATE_DIR,
			  SYSID_FILE, strerror(errno));
		goto out_close_dir;
	}
	st->system_identifier = sysid;
out_close_dir:
	close(state_fd);
	return ret;
}

int store_same_content(struct store *st, const char *incoming_name, const char *name)
{
	static uint8_t a[1 << 16], b[1 << 16];
	struct stat sa, sb;
	int fa, fb, ret = 1;
	off_t off = 0;

	fa = openat(st->incoming_fd, incoming_name, O_RDONLY | O_CLOEXEC);
	if (fa < 0) {
		ret = -errno;
		log_error("could not open file \"%s/%s/%s\": %s", st->path, STORE_INCOMING_DIR,
			  incoming_name, strerror(errno));
		return ret;
	}
	fb = openat(st->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fb < 0) {
		ret = -errno;
		log_error("could not open file \"%s/%s\": %s", st->path, name, strerror(errno));
		goto out_close_a;
	}
	if (fstat(fa, &sa) < 0 || fstat(fb, &sb) < 0) {
		ret = -errno;
		goto out_close_b;
	}
	if (sa.st_size != sb.st_size) {
		ret = 0;
		goto out_close_b;
	}
	while (off < sa.st_size) {
		ssize_t na = pread(fa, a, sizeof(a), off);
		ssize_t nb = pread(fb, b, sizeof(b), off);

		if (na < 0 || nb < 0) {
			ret = -errno;
			log_error("could not read file \"%s/%s\": %s", st->path, name,
				  strerror(errno));
			goto out_close_b;
		}
		if (na != nb || na == 0 || memcmp(a, b, (size_t)na) != 0) {
			ret = 0;
			goto out_close_b;
		}
		off += na;
	}
out_close_b:
	close(fb);
out_close_a:
	close(fa);
	return ret;
}

int64_t store_file_size(struct store *st, const char *name)
{
	struct stat sb;

	if (fstatat(st->dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return sb.st_size;
}
