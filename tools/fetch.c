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
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "common/compiler.h"
#include "common/crc32c.h"
#include "common/durable.h"
#include "common/file_copy.h"
#include "common/log.h"
#include "fetch.h"
#include "wal/name.h"
#include "wal/page.h"
#include "wal/store.h"

/* deliver(): the final name appeared while a growing segment was read; serve that. */
#define FETCH_RETRY_FINAL (-1)
/* How often the final name may appear and vanish again before fetch gives up. */
#define FETCH_MAX_TRIES 3
#define READ_CHUNK (1024 * 1024)

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
		"A segment still being received is served as its durable prefix followed by\n"
		"zeros, like a segment PostgreSQL has not finished writing.\n"
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

/* Where DEST goes: its directory and the name inside it. */
struct fetch_dest {
	const char *path; /* DEST as given */
	char dir[PATH_MAX]; /* DEST's directory, "." when DEST has no slash */
	const char *base; /* DEST's last component, inside path */
};

/*
 * Split DEST into directory and name and check it can be a file: not empty, no trailing
 * slash, not "." or "..", not an existing directory.  Returns 0 or -EINVAL (logged).
 */
static int dest_parse(struct fetch_dest *dest, const char *path)
{
	const char *slash = strrchr(path, '/');
	struct durable_file df;
	size_t dir_len;
	struct stat st;

	memset(dest, 0, sizeof(*dest));
	dest->path = path;
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
	/* Its temporary name must fit too (the directory is opened later). */
	if (durable_init(&df, &(struct durable_dir){ -1, dest->dir }, NULL, dest->base, NULL, 0) <
	    0) {
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
 * Read back the first @partial->durable bytes of @fd (the copy of a growing segment),
 * feed them to @wv and check their CRC-32C against the record.  The zeros after them are
 * not pages and are not validated.  Returns 0, -EINVAL (reason in wv->message), or -errno.
 */
static int validate_prefix(int fd, const struct store_partial *partial, struct wal_validator *wv)
{
	uint8_t *buf = malloc(READ_CHUNK);
	uint64_t off = 0;
	uint32_t crc = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (off < partial->durable) {
		uint64_t left = partial->durable - off;
		ssize_t got =
			pread(fd, buf, left < READ_CHUNK ? (size_t)left : READ_CHUNK, (off_t)off);

		if (got <= 0) {
			ret = got < 0 ? -errno : -ENODATA;
			goto out_free;
		}
		crc = crc32c(crc, buf, (size_t)got);
		if (wal_validator_feed(wv, buf, (size_t)got) < 0) {
			ret = -EINVAL;
			goto out_free;
		}
		off += (uint64_t)got;
	}
	if (!wv->have_id) {
		snprintf(wv->message, sizeof(wv->message),
			 "its %" PRIu64 " durable bytes do not hold the first page header",
			 partial->durable);
		ret = -EINVAL;
	} else if (crc != partial->crc) {
		snprintf(wv->message, sizeof(wv->message),
			 "its %" PRIu64 " durable bytes do not match their record (CRC %08x, "
			 "recorded %08x)",
			 partial->durable, crc, partial->crc);
		ret = -EINVAL;
	}
out_free:
	free(buf);
	return ret;
}

/* The WAL of @name is a segment's: its first page names a cluster. */
static bool has_identity(const struct wal_name *name)
{
	return name->kind == WAL_FILE_SEGMENT || name->kind == WAL_FILE_PARTIAL;
}

/*
 * Read the cluster the archive open at @archive_fd holds (the store's identity, recorded
 * before its first segment was stored) into @id, for a segment about to be served from
 * it.  Returns 0, or the FETCH_EXIT_* code to exit with (logged).
 */
static int archive_identity(int archive_fd, const char *src_path, struct wal_identity *id)
{
	int ret = store_read_identity(archive_fd, id);

	if (ret == -ENOENT || ret == -EINVAL) {
		log_error("refusing to serve file \"%s\": the archive %s no cluster in %s/%s",
			  src_path, ret == -ENOENT ? "records" : "has an invalid record of its",
			  STORE_STATE_DIR, "system_identifier");
		log_detail("walshipd records it before it stores, or acknowledges, any WAL: WAL "
			   "in this archive without it was not stored by walshipd.");
		return FETCH_EXIT_INVALID;
	}
	if (ret < 0) {
		log_error("could not read the cluster of the archive of \"%s\": %s", src_path,
			  strerror(-ret));
		return FETCH_EXIT_IO;
	}
	return 0;
}

/* Whether the validated WAL in @wv is of the archive's cluster @archive; logs if not. */
static bool of_archive(const struct wal_validator *wv, const struct wal_identity *archive,
		       const char *src_path)
{
	const struct wal_identity *seen = &wv->id;

	if (wal_identity_mismatch(archive, seen) == WAL_IDENTITY_SAME)
		return true;
	log_error(
		"refusing to serve file \"%s\": it is WAL of system %" PRIu64
		" (PostgreSQL %s, segment size %u, block size %u), the archive holds system %" PRIu64
		" (PostgreSQL %s, segment size %u, block size %u)",
		src_path, seen->system_identifier, wal_page_magic_version(seen->page_magic) ?: "?",
		seen->seg_size, seen->block_size, archive->system_identifier,
		wal_page_magic_version(archive->page_magic) ?: "?", archive->seg_size,
		archive->block_size);
	return false;
}

/* Whether the file open at @fd is the one at @path still. */
/* Whether the file open as @fd is still what @path names, or was removed (retention
 * unlinked it while it was read: its link count is 0, and the copy read is the file that
 * was stored).  A file renamed away (set aside, another stored under the name) is
 * neither, even while the name is free. */
static bool same_file_named(int fd, const char *path)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return false;
	if (lstat(path, &b) < 0)
		return errno == ENOENT && a.st_nlink == 0;
	return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/*
 * Deliver @size bytes of @src to DEST: temporary file, copy (file_copy()), validate the
 * copy, then the durable write's steps (durable.h: fsync, rename, directory fsync).
 *
 * With @partial (@src is a growing segment in the store's .incoming, @size its segment
 * size): only its durable prefix is copied and validated, the rest of the segment is
 * zeros, as in a segment PostgreSQL has not finished writing; and if the segment's final
 * name appears in the archive (@archive_fd) before DEST is committed, nothing is
 * delivered and FETCH_RETRY_FINAL is returned, to serve the complete file instead.
 *
 * Returns FETCH_EXIT_DELIVERED, FETCH_EXIT_INVALID, FETCH_EXIT_IO or FETCH_RETRY_FINAL;
 * logs failures.
 */

/*
 * The temporary file under DEST's directory while it is being written: removed if a
 * signal ends the fetch there.  PostgreSQL signals restore_command's process group at a
 * standby's shutdown (SIGTERM, SIGQUIT), and never removes such a file itself (it clears
 * only its own xlogtemp.*): each shutdown during a catch-up would leave up to a segment.
 */
static volatile sig_atomic_t tmp_armed;
static int tmp_dir_fd = -1;
static char tmp_name[NAME_MAX + 1];
static const int tmp_signals[] = { SIGTERM, SIGINT, SIGQUIT, SIGHUP };

static void tmp_remove_and_die(int sig)
{
	if (tmp_armed)
		(void)unlinkat(tmp_dir_fd, tmp_name, 0);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * Create @df's temporary file under @dir and arm the handler for it, the signals blocked
 * in between: one that came after the file was made and before the handler was there
 * would leave it (a fetch slowed down, throttled, signalled then: t_20).
 */
static int tmp_begin(struct durable_file *df, struct durable_dir *dir, const char *base)
{
	struct sigaction sa = { .sa_handler = tmp_remove_and_die };
	sigset_t block, old_mask;
	int ret;

	sigemptyset(&block);
	for (size_t i = 0; i < ARRAY_SIZE(tmp_signals); i++)
		sigaddset(&block, tmp_signals[i]);
	sigprocmask(SIG_BLOCK, &block, &old_mask);
	ret = durable_begin(df, dir, NULL, base, 0, 0600);
	if (ret >= 0) {
		tmp_dir_fd = dir->fd;
		snprintf(tmp_name, sizeof(tmp_name), "%s", df->tmp_name);
		for (size_t i = 0; i < ARRAY_SIZE(tmp_signals); i++) {
			struct sigaction old;

			/* One the caller ignores stays ignored (PostgreSQL's startup process
			 * ignores SIGINT, and restore_command inherits it; nohup, SIGHUP). */
			if (sigaction(tmp_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
				sigaction(tmp_signals[i], &sa, NULL);
		}
		tmp_armed = 1;
	}
	sigprocmask(SIG_SETMASK, &old_mask, NULL); /* one pending is taken here */
	return ret;
}

static int deliver(int src, uint64_t size, const char *src_path, const struct wal_name *name,
		   const struct fetch_dest *dest, const struct store_partial *partial,
		   bool over_stored, int archive_fd)
{
	struct durable_dir dir = { .path = dest->dir };
	struct durable_file df = { .fd = -1 };
	struct wal_identity archive = { 0 };
	struct wal_validator wv;
	struct stat st;
	uint32_t recorded, copied;
	int exit_code = FETCH_EXIT_IO;
	int ret;

	/* WAL of the archive's cluster only (durability rule 4). */
	if (has_identity(name)) {
		ret = archive_identity(archive_fd, src_path, &archive);
		if (ret)
			return ret;
	}

	/* The size alone may rule the file out: do not copy a 10 GB "segment" first. */
	if (wal_validator_begin(&wv, name, size, 0) < 0) {
		log_error("refusing to serve file \"%s\": %s", src_path, wv.message);
		return FETCH_EXIT_INVALID;
	}

	dir.fd = open(dest->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir.fd < 0) {
		log_error("could not open directory \"%s\": %s", dest->dir, strerror(errno));
		return FETCH_EXIT_IO;
	}

	/* DEST.walship-tmp.PID, mode 0600; PostgreSQL's own file under DEST is replaced. */
	ret = tmp_begin(&df, &dir, dest->base);
	if (ret < 0) {
		log_error("%s", df.message);
		goto out_end;
	}

	ret = file_copy(src, df.fd, partial ? partial->durable : size, FILE_COPY_RANGE);
	if (ret == -ENODATA) {
		log_error("could not copy file \"%s\": it is shorter than %" PRIu64 " bytes",
			  src_path, partial ? partial->durable : size);
		goto out_end;
	}
	if (ret < 0) {
		log_error("could not copy file \"%s\" to \"%s/%s\": %s", src_path, dest->dir,
			  df.tmp_name, strerror(-ret));
		goto out_end;
	}

	/* The rest of a growing segment: zeros (a hole reads as zeros). */
	if (ret >= 0 && partial && ftruncate(df.fd, (off_t)size) < 0) {
		log_error("could not extend file \"%s/%s\" to %" PRIu64 " bytes: %s", dest->dir,
			  df.tmp_name, size, strerror(errno));
		goto out_end;
	}

	/* Validate what will be served, as read back from the copy. */
	if (partial)
		ret = validate_prefix(df.fd, partial, &wv);
	else
		ret = wal_validate_fd(df.fd, name, 0, &wv, NULL);
	if (ret == -EINVAL) {
		log_error("refusing to serve file \"%s\": %s", src_path, wv.message);
		exit_code = FETCH_EXIT_INVALID;
		goto out_end;
	}
	if (ret < 0) {
		log_error("could not read file \"%s/%s\": %s", dest->dir, df.tmp_name,
			  strerror(-ret));
		goto out_end;
	}
	if (has_identity(name) && !of_archive(&wv, &archive, src_path)) {
		exit_code = FETCH_EXIT_INVALID;
		goto out_end;
	}
	/* Bytes changed on disk since they were stored (inside a record, where the page
	 * checks above do not look): the CRC recorded at storing says so, and walship says
	 * it, not PostgreSQL's replay ending at a record that fails its own CRC. */
	if (!partial && store_recorded_crc(src, &recorded) == 0) {
		ret = store_crc_prefix(df.fd, size, &copied);
		if (ret < 0) {
			log_error("could not read file \"%s/%s\": %s", dest->dir, df.tmp_name,
				  strerror(-ret));
			goto out_end;
		}
		if (copied != recorded) {
			log_error("refusing to serve file \"%s\": its content is not what was "
				  "stored (CRC-32C %08x, recorded %08x when it was stored)",
				  src_path, copied, recorded);
			exit_code = FETCH_EXIT_INVALID;
			goto out_end;
		}
	}

	if (partial && !over_stored &&
	    fstatat(archive_fd, partial->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		log_debug("file \"%s\" got its final name while it was read", src_path);
		exit_code = FETCH_RETRY_FINAL;
		goto out_end;
	}
	/* A stored file replaced under its name while it was read (walshipd set a file put
	 * there by hand aside, and stored its own): serve the one there now.  One removed
	 * by retention meanwhile was the stored file: its validated copy is served. */
	if (!partial && !same_file_named(src, src_path)) {
		log_debug("file \"%s\" was replaced while it was read", src_path);
		exit_code = FETCH_RETRY_FINAL;
		goto out_end;
	}

	ret = durable_commit(&df);
	if (ret < 0) {
		log_error("%s", df.message);
		/* DEST replaced, its directory not synced: not delivered, so not left. */
		if (df.renamed)
			(void)unlinkat(dir.fd, dest->base, 0);
		goto out_end;
	}
	exit_code = FETCH_EXIT_DELIVERED;

out_end:
	durable_end(&df);
	tmp_armed = 0; /* renamed, or removed above (a signal between: its unlink finds none) */
	close(dir.fd);
	return exit_code;
}

/*
 * @name, a segment, is not in the archive under its final name (or, @over_stored, is
 * stored with other bytes than its incoming file's durable ones: fetch_one()): serve the
 * durable prefix of its incoming file with the largest durable length, if any
 * (docs/operations.md, "Recovering after losing the primary host").  The record is read
 * before the bytes, and the durable bytes of an incoming file never change afterwards, so
 * the prefix read is the one recorded.  Returns a FETCH_EXIT_* code, or FETCH_RETRY_FINAL.
 */
static int fetch_growing(int archive_fd, const char *archive_dir, const char *name_text,
			 const char *src_path, const struct wal_name *name,
			 const struct fetch_dest *dest, bool over_stored)
{
	char rel[sizeof(STORE_INCOMING_DIR) + sizeof(((struct store_partial *)0)->tmp_name)];
	char path[PATH_MAX + sizeof(rel)];
	struct store_partial partial;
	struct stat st;
	int exit_code;
	int ret;
	int src;

	ret = store_find_incoming(archive_fd, name_text, &partial);
	if ((ret == -ENOENT || (ret < 0 && partial.tmp_name[0])) &&
	    (over_stored || fstatat(archive_fd, name_text, &st, AT_SYMLINK_NOFOLLOW) == 0))
		return FETCH_RETRY_FINAL; /* stored meanwhile: serve that */
	if (ret == -ENOENT) {
		log_debug("file \"%s\" is not in the archive", src_path);
		return FETCH_EXIT_ABSENT;
	}
	if (ret < 0 && partial.tmp_name[0]) {
		/* a copy that may hold acknowledged WAL: "not in the archive" would end a
		 * recovery short of it, the server's log saying nothing */
		log_error("could not read file \"%s/%s/%s\": %s", archive_dir, STORE_INCOMING_DIR,
			  partial.tmp_name, strerror(-ret));
		return FETCH_EXIT_IO;
	}
	if (ret < 0) {
		log_error("could not read directory \"%s/%s\": %s", archive_dir, STORE_INCOMING_DIR,
			  strerror(-ret));
		return FETCH_EXIT_IO;
	}
	snprintf(rel, sizeof(rel), "%s/%s", STORE_INCOMING_DIR, partial.tmp_name);
	snprintf(path, sizeof(path), "%s/%s", archive_dir, rel);
	src = openat(archive_fd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (src < 0 && errno == ENOENT)
		return FETCH_RETRY_FINAL; /* renamed to its final name, or dropped: look again */
	if (src < 0) {
		log_error("could not open file \"%s\": %s", path, strerror(errno));
		return FETCH_EXIT_IO;
	}
	exit_code = deliver(src, partial.size, path, name, dest, &partial, over_stored, archive_fd);
	close(src);
	if (exit_code == FETCH_EXIT_DELIVERED)
		log_log("served partial segment \"%s\" with %" PRIu64 " durable bytes of %" PRIu64
			" from \"%s\", the rest zeros",
			name_text, partial.durable, partial.size, path);
	return exit_code;
}

/*
 * Serve @name from the archive open at @archive_fd: its file @src_path under its final
 * name, or else, for a segment, the durable prefix of its growing incoming file
 * (fetch_growing()).  Returns a FETCH_EXIT_* code, or FETCH_RETRY_FINAL when the files
 * changed names under us and a new try may succeed.
 */
static int fetch_one(int archive_fd, const char *archive_dir, const char *name_text,
		     const char *src_path, const struct wal_name *name,
		     const struct fetch_dest *dest)
{
	struct stat st;
	int exit_code;
	int src;

	/* O_NONBLOCK: a FIFO under that name must not hang us (regular files ignore it). */
	src = openat(archive_fd, name_text, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (src < 0) {
		int err = errno;

		if (err == ENOENT && name->kind == WAL_FILE_SEGMENT)
			return fetch_growing(archive_fd, archive_dir, name_text, src_path, name,
					     dest, false);
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

	/* A segment stored with other bytes than the durable ones of an incoming file of its
	 * name, which may have been acknowledged durable, so commits may be in them: a file
	 * put into the archive by hand (walshipd's record of a complete file is not on it)
	 * while the segment streamed, which walshipd sets aside at its next group commit or
	 * when the segment is resumed (docs/operations.md), not yet (the primary host lost
	 * meanwhile).  Its acknowledged bytes are served, as walshipd stores them.  A file
	 * walshipd stored stays what is served: an incoming file of its name that differs
	 * is one the primary did not resume, sent again from its start. */
	if (name->kind == WAL_FILE_SEGMENT && !store_file_recorded(src)) {
		struct store_partial partial;
		int found = store_find_incoming(archive_fd, name_text, &partial);

		/* A copy that could not be opened or made durable, or a folder of copies that
		 * could not be read, may hold acknowledged WAL the stored file contradicts:
		 * not served over it, as fetch_growing() does. */
		if (found < 0 && found != -ENOENT) {
			if (partial.tmp_name[0])
				log_error("could not read file \"%s/%s/%s\": %s", archive_dir,
					  STORE_INCOMING_DIR, partial.tmp_name, strerror(-found));
			else
				log_error("could not read directory \"%s/%s\": %s", archive_dir,
					  STORE_INCOMING_DIR, strerror(-found));
			log_detail("\"%s\" carries no record of a file walshipd stored; the copy "
				   "being received may hold acknowledged WAL that it lacks.",
				   src_path);
			exit_code = FETCH_EXIT_IO;
			goto out_close_src;
		}
		if (found == 0 && store_file_begins_with(src, &partial) == 0) {
			log_warning("\"%s\" is stored with other bytes than the %" PRIu64
				    " durable bytes of \"%s/%s/%s\", which may have been "
				    "acknowledged: serving those",
				    src_path, partial.durable, archive_dir, STORE_INCOMING_DIR,
				    partial.tmp_name);
			log_detail("Look into the stored file: walshipd sets it aside when it "
				   "next writes that segment.");
			close(src);
			return fetch_growing(archive_fd, archive_dir, name_text, src_path, name,
					     dest, true);
		}
	}
	exit_code =
		deliver(src, (uint64_t)st.st_size, src_path, name, dest, NULL, false, archive_fd);
	if (exit_code == FETCH_EXIT_DELIVERED)
		log_debug("restored file \"%s\" to \"%s\"", src_path, dest->path);

out_close_src:
	close(src);
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
	bool verbose = false;
	int exit_code;
	int archive_fd;
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
	for (int tries = 1;; tries++) {
		exit_code =
			fetch_one(archive_fd, cfg.archive_dir, name_text, src_path, &name, &dest);
		if (exit_code != FETCH_RETRY_FINAL)
			break;
		if (tries == FETCH_MAX_TRIES) {
			log_error("could not fetch file \"%s\": it kept changing while it was read",
				  src_path);
			exit_code = FETCH_EXIT_IO;
			break;
		}
	}
	close(archive_fd);
	return exit_code;
}
