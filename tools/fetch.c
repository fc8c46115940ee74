// SPDX-License-Identifier: MIT
/*
 * `walship fetch`: serve a validated WAL file from the replica's archive to PostgreSQL.
 * See fetch.h.
 *
 * The file is copied into a temporary name in DEST's directory, and it is that copy, read
 * back, that is validated before it is fsynced and renamed onto DEST: what PostgreSQL
 * reads is exactly what passed validation, even if the archive file were to change under
 * us.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/log.h"
#include "fetch.h"
#include "wal/name.h"
#include "wal/page.h"

#define FETCH_COPY_BUFFER (1024 * 1024)
#define FETCH_TMP_INFIX ".walship-tmp."

void fetch_usage(FILE *out)
{
	fprintf(out,
		"Usage: walship fetch [-c FILE] [-v] NAME DEST\n"
		"\n"
		"Copy the WAL file NAME from the archive directory to DEST, after validating\n"
		"it.  Meant as PostgreSQL's restore_command:\n"
		"\n"
		"  restore_command = 'walship fetch -c /etc/walship/walship.conf %%f %%p'\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE  config file (default $%s, else %s)\n"
		"  -v, --verbose      report files that are not available\n"
		"  -h, --help         show this help and exit\n"
		"\n"
		"Exit codes: 0 delivered; 1 not in the archive (yet); 2 usage error, not a\n"
		"WAL file name, DEST is a directory, or unusable config file; 3 the archived\n"
		"file failed validation and was not served; 4 I/O or permission error.\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

/* Where DEST goes: its directory (opened) and the names inside it. */
struct fetch_dest {
	const char *path; /* DEST as given */
	char dir[PATH_MAX]; /* DEST's directory, "." when DEST has no slash */
	const char *base; /* DEST's last component, inside path */
	char tmp_base[NAME_MAX + 1]; /* temporary name in dir */
	int dir_fd;
};

/*
 * Split DEST into directory and name and check it can be a file: not empty, no trailing
 * slash, not "." or "..", not an existing directory.  Returns 0 or -EINVAL (logged).
 */
static int dest_parse(struct fetch_dest *dest, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dir_len;
	struct stat st;
	int len;

	memset(dest, 0, sizeof(*dest));
	dest->path = path;
	dest->dir_fd = -1;
	dest->base = slash ? slash + 1 : path;
	if (dest->base[0] == '\0' || strcmp(dest->base, ".") == 0 ||
	    strcmp(dest->base, "..") == 0) {
		log_error("invalid destination \"%s\": it must name a file", path);
		return -EINVAL;
	}
	if (!slash) {
		strcpy(dest->dir, ".");
	} else {
		dir_len = slash == path ? 1 : (size_t)(slash - path);
		if (dir_len >= sizeof(dest->dir)) {
			log_error("invalid destination \"%s\": path too long", path);
			return -EINVAL;
		}
		memcpy(dest->dir, path, dir_len);
		dest->dir[dir_len] = '\0';
	}
	len = snprintf(dest->tmp_base, sizeof(dest->tmp_base), "%s" FETCH_TMP_INFIX "%ld",
		       dest->base, (long)getpid());
	if (len < 0 || (size_t)len >= sizeof(dest->tmp_base)) {
		log_error("invalid destination \"%s\": file name too long", path);
		return -EINVAL;
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		log_error("invalid destination \"%s\": it is a directory", path);
		return -EINVAL;
	}
	return 0;
}

/*
 * Copy @size bytes from @src to @dst, both from offset 0: copy_file_range() (which may
 * share extents or copy in the kernel), falling back to pread/pwrite where the kernel or
 * file systems cannot.  Returns 0, -ENODATA when @src ends early, or -errno; logs.
 */
static int copy_fd(int src, int dst, uint64_t size, const char *src_path,
		   const struct fetch_dest *dest)
{
	bool use_cfr = true;
	char *buf = NULL;
	loff_t in_off = 0;
	loff_t out_off = 0;
	ssize_t done;
	ssize_t got;
	int ret = 0;

	while ((uint64_t)in_off < size) {
		uint64_t left = size - (uint64_t)in_off;

		if (use_cfr) {
			errno = 0;
			done = copy_file_range(src, &in_off, dst, &out_off,
					       left > SSIZE_MAX ? SSIZE_MAX : left, 0);
			if (done < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
					 errno == EINVAL)) {
				log_debug("copy_file_range not usable (%s), copying by hand",
					  strerror(errno));
				use_cfr = false;
				continue;
			}
			if (done < 0) {
				ret = -errno;
				log_error("could not copy file \"%s\" to \"%s/%s\": %s", src_path,
					  dest->dir, dest->tmp_base, strerror(-ret));
				goto out;
			}
			if (done == 0)
				goto out_short;
			continue;
		}

		if (!buf) {
			buf = malloc(FETCH_COPY_BUFFER);
			if (!buf) {
				ret = -ENOMEM;
				log_error("out of memory");
				goto out;
			}
		}
		got = pread(src, buf, left > FETCH_COPY_BUFFER ? FETCH_COPY_BUFFER : left, in_off);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			log_error("could not read file \"%s\": %s", src_path, strerror(-ret));
			goto out;
		}
		if (got == 0)
			goto out_short;
		for (done = 0; done < got;) {
			ssize_t wrote;

			errno = 0;
			wrote = pwrite(dst, buf + done, (size_t)(got - done), out_off);
			if (wrote < 0 && errno == EINTR)
				continue;
			if (wrote <= 0) {
				/* A short write with no errno is a full disk. */
				ret = errno ? -errno : -ENOSPC;
				log_error("could not write file \"%s/%s\": %s", dest->dir,
					  dest->tmp_base, strerror(-ret));
				goto out;
			}
			done += wrote;
			out_off += wrote;
		}
		in_off += got;
	}
	goto out;

out_short:
	ret = -ENODATA;
	log_error("could not copy file \"%s\": it ended after %lld of %llu bytes", src_path,
		  (long long)in_off, (unsigned long long)size);
out:
	free(buf);
	return ret;
}

/*
 * Deliver @size bytes of @src to DEST: temporary file, copy, validate the copy, fsync,
 * rename, fsync the directory.  Returns FETCH_EXIT_DELIVERED, FETCH_EXIT_INVALID or
 * FETCH_EXIT_IO; logs failures.
 */
static int deliver(int src, uint64_t size, const char *src_path, const struct wal_name *name,
		   struct fetch_dest *dest)
{
	struct wal_validator wv;
	int exit_code = FETCH_EXIT_IO;
	int tmp_fd;
	int ret;

	/* The size alone may rule the file out: do not copy a 10 GB "segment" first. */
	if (wal_validator_begin(&wv, name, size, 0) < 0) {
		log_error("refusing to serve file \"%s\": %s", src_path, wv.message);
		return FETCH_EXIT_INVALID;
	}

	dest->dir_fd = open(dest->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dest->dir_fd < 0) {
		log_error("could not open directory \"%s\": %s", dest->dir, strerror(errno));
		return FETCH_EXIT_IO;
	}

	/* Our pid makes the name ours; one left by a dead process of the same pid goes. */
	tmp_fd = openat(dest->dir_fd, dest->tmp_base,
			O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tmp_fd < 0 && errno == EEXIST && unlinkat(dest->dir_fd, dest->tmp_base, 0) == 0)
		tmp_fd = openat(dest->dir_fd, dest->tmp_base,
				O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tmp_fd < 0) {
		log_error("could not create file \"%s/%s\": %s", dest->dir, dest->tmp_base,
			  strerror(errno));
		goto out_close_dir;
	}

	ret = copy_fd(src, tmp_fd, size, src_path, dest);
	if (ret < 0)
		goto out_unlink;

	/* Validate what will be served, as read back from the copy. */
	ret = wal_validate_fd(tmp_fd, name, 0, &wv, NULL);
	if (ret == -EINVAL) {
		log_error("refusing to serve file \"%s\": %s", src_path, wv.message);
		exit_code = FETCH_EXIT_INVALID;
		goto out_unlink;
	}
	if (ret < 0) {
		log_error("could not read file \"%s/%s\": %s", dest->dir, dest->tmp_base,
			  strerror(-ret));
		goto out_unlink;
	}

	if (fsync(tmp_fd) < 0) {
		log_error("could not fsync file \"%s/%s\": %s", dest->dir, dest->tmp_base,
			  strerror(errno));
		goto out_unlink;
	}
	if (renameat(dest->dir_fd, dest->tmp_base, dest->dir_fd, dest->base) < 0) {
		log_error("could not rename file \"%s/%s\" to \"%s\": %s", dest->dir,
			  dest->tmp_base, dest->path, strerror(errno));
		goto out_unlink;
	}
	if (fsync(dest->dir_fd) < 0) {
		log_error("could not fsync directory \"%s\": %s", dest->dir, strerror(errno));
		/* Not durable: do not leave PostgreSQL a file we called failed. */
		unlinkat(dest->dir_fd, dest->base, 0);
		goto out_close_tmp;
	}
	exit_code = FETCH_EXIT_DELIVERED;
	goto out_close_tmp;

out_unlink:
	unlinkat(dest->dir_fd, dest->tmp_base, 0);
out_close_tmp:
	close(tmp_fd);
out_close_dir:
	close(dest->dir_fd);
	dest->dir_fd = -1;
	return exit_code;
}

int fetch_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_option = NULL;
	const char *name_text;
	char src_path[PATH_MAX];
	struct fetch_dest dest;
	struct wal_name name;
	struct config cfg;
	struct stat st;
	bool verbose = false;
	int exit_code;
	int archive_fd;
	int src;
	int opt;
	int len;

	cli_log_init(false);
	while ((opt = getopt_long(argc, argv, "c:vh", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_option = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			fetch_usage(stdout);
			return CLI_EXIT_OK;
		default:
			fetch_usage(stderr);
			return FETCH_EXIT_USAGE;
		}
	}
	cli_log_init(verbose);
	if (argc - optind != 2) {
		log_error("walship fetch needs NAME and DEST, got %d arguments", argc - optind);
		fetch_usage(stderr);
		return FETCH_EXIT_USAGE;
	}
	name_text = argv[optind];
	if (wal_name_parse(name_text, &name) < 0) {
		log_error("refusing to fetch \"%s\": not a WAL file name", name_text);
		return FETCH_EXIT_USAGE;
	}
	if (dest_parse(&dest, argv[optind + 1]) < 0)
		return FETCH_EXIT_USAGE;

	if (cli_load_config(&cfg, cli_config_path(config_option)) < 0)
		return FETCH_EXIT_USAGE;
	if (cfg.archive_dir[0] == '\0') {
		log_error("archive_dir is not set in configuration file \"%s\"",
			  cli_config_path(config_option));
		return FETCH_EXIT_USAGE;
	}
	len = snprintf(src_path, sizeof(src_path), "%s/%s", cfg.archive_dir, name_text);
	if (len < 0 || (size_t)len >= sizeof(src_path)) {
		log_error("archive path \"%s/%s\" is too long", cfg.archive_dir, name_text);
		return FETCH_EXIT_USAGE;
	}

	/*
	 * A missing archive directory is a set-up error worth a message; a missing file is
	 * the normal "not yet", which PostgreSQL asks about all the time.
	 */
	archive_fd = open(cfg.archive_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (archive_fd < 0) {
		log_error("could not open archive directory \"%s\": %s", cfg.archive_dir,
			  strerror(errno));
		return FETCH_EXIT_IO;
	}
	/* O_NONBLOCK: a FIFO under that name must not hang us (regular files ignore it). */
	src = openat(archive_fd, name_text, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (src < 0) {
		int err = errno;

		close(archive_fd);
		if (err == ENOENT) {
			log_debug("file \"%s\" is not in the archive", src_path);
			return FETCH_EXIT_ABSENT;
		}
		if (err == ELOOP) {
			log_error("refusing to serve file \"%s\": it is a symbolic link", src_path);
			return FETCH_EXIT_INVALID;
		}
		log_error("could not open file \"%s\": %s", src_path, strerror(err));
		return FETCH_EXIT_IO;
	}
	close(archive_fd);

	if (fstat(src, &st) < 0) {
		log_error("could not stat file \"%s\": %s", src_path, strerror(errno));
		exit_code = FETCH_EXIT_IO;
		goto out_close_src;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("refusing to serve file \"%s\": it is not a regular file", src_path);
		exit_code = FETCH_EXIT_INVALID;
		goto out_close_src;
	}

	exit_code = deliver(src, (uint64_t)st.st_size, src_path, &name, &dest);
	if (exit_code == FETCH_EXIT_DELIVERED)
		log_debug("restored file \"%s\" to \"%s\"", src_path, dest.path);

out_close_src:
	close(src);
	return exit_code;
}
