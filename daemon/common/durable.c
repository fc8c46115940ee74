// SPDX-License-Identifier: MIT
/*
 * The durable write (see durable.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/durable.h"
#include "common/log.h"

static void durable_fail(struct durable_file *df, const char *fmt, ...) attr_printf(2, 3);

static void durable_fail(struct durable_file *df, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(df->message, sizeof(df->message), fmt, ap);
	va_end(ap);
}

int durable_init(struct durable_file *df, const struct durable_dir *dir,
		 const struct durable_dir *tmp_dir, const char *name, const char *tmp_name,
		 unsigned int flags)
{
	int len;

	memset(df, 0, sizeof(*df));
	df->fd = -1;
	df->dir = *dir;
	df->tmp_dir = tmp_dir ? *tmp_dir : *dir;
	df->flags = flags;
	len = snprintf(df->name, sizeof(df->name), "%s", name);
	if (len < 0 || (size_t)len >= sizeof(df->name))
		goto out_too_long;
	if (tmp_name)
		len = snprintf(df->tmp_name, sizeof(df->tmp_name), "%s", tmp_name);
	else
		len = snprintf(df->tmp_name, sizeof(df->tmp_name), "%s" DURABLE_TMP_INFIX "%ld",
			       name, (long)gettid());
	if (len < 0 || (size_t)len >= sizeof(df->tmp_name))
		goto out_too_long;
	return 0;

out_too_long:
	durable_fail(df, "could not create file \"%s/%s\": %s", dir->path, name,
		     strerror(ENAMETOOLONG));
	return -ENAMETOOLONG;
}

int durable_begin(struct durable_file *df, const struct durable_dir *dir,
		  const struct durable_dir *tmp_dir, const char *name, unsigned int flags,
		  mode_t mode)
{
	const int oflags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int ret = durable_init(df, dir, tmp_dir, name, NULL, flags);

	if (ret < 0)
		return ret;
	/* The name holds our thread id: one that exists was left by a dead writer. */
	df->fd = openat(df->tmp_dir.fd, df->tmp_name, oflags, mode);
	if (df->fd < 0 && errno == EEXIST && unlinkat(df->tmp_dir.fd, df->tmp_name, 0) == 0)
		df->fd = openat(df->tmp_dir.fd, df->tmp_name, oflags, mode);
	if (df->fd < 0) {
		ret = -errno;
		durable_fail(df, "could not create file \"%s/%s\": %s", df->tmp_dir.path,
			     df->tmp_name, strerror(errno));
		return ret;
	}
	df->tmp_exists = true;
	return 0;
}

int durable_write(struct durable_file *df, const void *buf, size_t len)
{
	const char *at = buf;

	while (len > 0) {
		ssize_t wrote;

		errno = 0;
		wrote = write(df->fd, at, len);
		if (wrote < 0 && errno == EINTR)
			continue;
		if (wrote <= 0) {
			/* A write that stops short without an errno is a full disk. */
			int err = errno ? errno : ENOSPC;

			durable_fail(df, "could not write file \"%s/%s\": %s", df->tmp_dir.path,
				     df->tmp_name, strerror(err));
			return -err;
		}
		at += wrote;
		len -= (size_t)wrote;
	}
	return 0;
}

unsigned int durable_rename_flags(const struct durable_file *df)
{
	return (df->flags & DURABLE_NOREPLACE) ? RENAME_NOREPLACE : 0;
}

int durable_step_run(const struct durable_file *df, enum durable_step step)
{
	int ret = 0;

	switch (step) {
	case DURABLE_STEP_SYNC_FILE:
		ret = fdatasync(df->fd);
		break;
	case DURABLE_STEP_RENAME:
		ret = renameat2(df->tmp_dir.fd, df->tmp_name, df->dir.fd, df->name,
				durable_rename_flags(df));
		break;
	case DURABLE_STEP_SYNC_DIR:
		ret = fsync(df->dir.fd);
		break;
	case DURABLE_STEP_DONE:
		break;
	}
	return ret < 0 ? -errno : 0;
}

int durable_step_done(struct durable_file *df, enum durable_step step, int res)
{
	switch (step) {
	case DURABLE_STEP_SYNC_FILE:
		if (res < 0) {
			durable_fail(df, "could not fsync file \"%s/%s\": %s", df->tmp_dir.path,
				     df->tmp_name, strerror(-res));
			return res;
		}
		return DURABLE_STEP_RENAME;
	case DURABLE_STEP_RENAME:
		if (res == -EEXIST && (df->flags & DURABLE_NOREPLACE)) {
			durable_fail(df, "could not rename file \"%s/%s\" to \"%s/%s\": %s",
				     df->tmp_dir.path, df->tmp_name, df->dir.path, df->name,
				     "a file of that name exists and is never replaced");
			return res;
		}
		if (res < 0) {
			durable_fail(df, "could not rename file \"%s/%s\" to \"%s/%s\": %s",
				     df->tmp_dir.path, df->tmp_name, df->dir.path, df->name,
				     strerror(-res));
			return res;
		}
		df->tmp_exists = false;
		df->renamed = true;
		return DURABLE_STEP_SYNC_DIR;
	case DURABLE_STEP_SYNC_DIR:
		if (res < 0) {
			durable_fail(df, "could not fsync directory \"%s\": %s", df->dir.path,
				     strerror(-res));
			/* Not known to survive: do not leave a file the caller calls failed, when
			 * this write created the name.  A replacing write keeps it: the rename
			 * already took the version before, so removing the new one would leave
			 * neither (a registry or hold file lost at the next start); the new one is
			 * whole and synced, and a crash leaves the one or the other. */
			if (df->renamed && (df->flags & DURABLE_NOREPLACE) &&
			    unlinkat(df->dir.fd, df->name, 0) == 0)
				df->renamed = false;
			return res;
		}
		return DURABLE_STEP_DONE;
	case DURABLE_STEP_DONE:
		break;
	}
	return DURABLE_STEP_DONE;
}

int durable_commit(struct durable_file *df)
{
	int step = DURABLE_STEP_SYNC_FILE;

	while (step != DURABLE_STEP_DONE) {
		int res = durable_step_run(df, (enum durable_step)step);

		step = durable_step_done(df, (enum durable_step)step, res);
		if (step < 0)
			return step;
	}
	return 0;
}

void durable_end(struct durable_file *df)
{
	if (df->fd >= 0)
		close(df->fd);
	df->fd = -1;
	if (df->tmp_exists)
		unlinkat(df->tmp_dir.fd, df->tmp_name, 0);
	df->tmp_exists = false;
}

int durable_put(const struct durable_dir *dir, const char *name, const void *buf, size_t len,
		unsigned int flags)
{
	struct durable_file df;
	int ret;

	ret = durable_begin(&df, dir, NULL, name, flags, 0640);
	if (ret == 0)
		ret = durable_write(&df, buf, len);
	if (ret == 0)
		ret = durable_commit(&df);
	if (ret < 0)
		log_error("%s", df.message);
	durable_end(&df);
	return ret;
}

/*
 * Directory @path was just created: its name in its parent is made durable (ext4 without a
 * journal keeps no new name without its directory's fsync), before anything stored in it
 * is acknowledged.  A failure is logged: the directory works all the same, its name at
 * the mercy of a crash until the file system writes the parent.
 */
static void durable_sync_parent(const char *path)
{
	char parent[PATH_MAX];
	char *slash;
	int fd;

	snprintf(parent, sizeof(parent), "%s", path);
	while ((slash = strrchr(parent, '/')) && slash != parent && !slash[1])
		*slash = '\0'; /* trailing slashes */
	slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else
		slash[slash == parent ? 1 : 0] = '\0';
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		log_warning("could not fsync directory \"%s\": %s", parent, strerror(errno));
	if (fd >= 0)
		close(fd);
}

int durable_dir_open(int at_fd, const char *at_path, const char *name)
{
	const char *sep = at_path ? "/" : "";
	int fd, err;

	if (!at_path)
		at_path = "";
	if (mkdirat(at_fd, name, 0750) == 0) {
		if (at_fd == AT_FDCWD)
			durable_sync_parent(name);
	} else if (errno != EEXIST) {
		err = errno;
		log_error("could not create directory \"%s%s%s\": %s", at_path, sep, name,
			  strerror(err));
		return -err;
	}
	fd = openat(at_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		log_error("could not open directory \"%s%s%s\": %s", at_path, sep, name,
			  strerror(err));
		return -err;
	}
	return fd;
}

int durable_remove_leftovers(int dir_fd)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(dir)) != NULL)
		if (strstr(de->d_name, DURABLE_TMP_INFIX) && unlinkat(dir_fd, de->d_name, 0) == 0)
			n++;
	closedir(dir);
	return n;
}
