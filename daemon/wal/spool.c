// SPDX-License-Identifier: MIT
/*
 * The primary's durable spool (see spool.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/crc32c.h"
#include "common/durable.h"
#include "common/file_compare.h"
#include "common/file_copy.h"
#include "common/log.h"
#include "common/node_name.h"
#include "wal/name.h"
#include "wal/spool.h"
#include "wal/store.h"

#define SPOOL_WAL "wal"
#define SPOOL_REPLICAS "replicas"
#define SPOOL_IDENTITY "identity"
#define SPOOL_REPORTED "reported"
#define SPOOL_INCOMING ".incoming"
#define SPOOL_LOST "LOST" /* not a WAL name: never taken for a held file */
#define SPOOL_AWAY "AWAY" /* (neither is this, nor its temporary file) */
#define SPOOL_AWAY_TMP "AWAY.tmp"
/* replicas/NAME renamed so by spool_drop() before its claims are released: no node name
 * (a node name never starts with '.'), so it is registered no more from that rename on */
#define SPOOL_DROPPING ".dropping-"

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void spool_free_names(char **names, int count)
{
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/*
 * The entries of directory @fd accepted by @keep, sorted.  @fd is not consumed.
 * Returns the count or -errno.
 */
static int spool_list(int fd, bool (*keep)(const char *name), char ***out)
{
	int dup_fd = dup(fd), count = 0, cap = 0;
	char **names = NULL;
	struct dirent *de;
	DIR *dir;

	*out = NULL;
	if (dup_fd < 0)
		return -errno;
	dir = fdopendir(dup_fd);
	if (!dir) {
		close(dup_fd);
		return -errno;
	}
	rewinddir(dir);
	/* (errno told apart: a listing cut short by an error is no shorter list) */
	while ((errno = 0, de = readdir(dir)) != NULL) {
		if (!keep(de->d_name))
			continue;
		if (count == cap) {
			char **grown;

			cap = cap ? cap * 2 : 64;
			grown = realloc(names, (size_t)cap * sizeof(*names));
			if (!grown)
				goto out_nomem;
			names = grown;
		}
		names[count] = strdup(de->d_name);
		if (!names[count])
			goto out_nomem;
		count++;
	}
	if (errno) {
		int err = -errno;

		closedir(dir);
		spool_free_names(names, count);
		return err;
	}
	closedir(dir);
	if (count)
		qsort(names, (size_t)count, sizeof(*names), cmp_names);
	*out = names;
	return count;

out_nomem:
	closedir(dir);
	spool_free_names(names, count);
	return -ENOMEM;
}

static bool is_wal_name(const char *name)
{
	return wal_name_valid(name);
}

/* A timeline history file: kept in wal/ with or without claims (spool_keep_history()). */
static bool is_history_name(const char *name)
{
	struct wal_name wn;

	return wal_name_parse(name, &wn) == 0 && wn.kind == WAL_FILE_HISTORY;
}

static bool is_replica_name(const char *name)
{
	return node_name_valid(name);
}

static bool is_any(const char *name)
{
	return strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static bool is_dropping_name(const char *name)
{
	return !strncmp(name, SPOOL_DROPPING, strlen(SPOOL_DROPPING)) &&
	       name[strlen(SPOOL_DROPPING)];
}

static int spool_drop_dir(struct spool *sp, const char *dir);

int spool_open(struct spool *sp, const char *path)
{
	char **names;
	int ret, n;

	memset(sp, 0, sizeof(*sp));
	pthread_mutex_init(&sp->lock, NULL);
	sp->dir_fd = sp->wal_fd = sp->replicas_fd = sp->incoming_fd = -1;
	snprintf(sp->path, sizeof(sp->path), "%s", path);
	ret = durable_dir_open(AT_FDCWD, NULL, path);
	if (ret < 0)
		return ret;
	sp->dir_fd = ret;
	if ((sp->wal_fd = durable_dir_open(sp->dir_fd, path, SPOOL_WAL)) < 0 ||
	    (sp->replicas_fd = durable_dir_open(sp->dir_fd, path, SPOOL_REPLICAS)) < 0 ||
	    (sp->incoming_fd = durable_dir_open(sp->dir_fd, path, SPOOL_INCOMING)) < 0) {
		ret = -EIO;
		goto out_close;
	}
	fsync(sp->dir_fd);
	/* State files (identity, reported) whose writing a crash cut short, and LOST records
	 * in the replicas' folders. */
	durable_remove_leftovers(sp->dir_fd);
	n = spool_list(sp->replicas_fd, is_any, &names);
	for (int i = 0; i < n; i++) {
		/* (never through a link: what it leads to is no replica's folder) */
		int fd = openat(sp->replicas_fd, names[i],
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (fd >= 0) {
			durable_remove_leftovers(fd);
			close(fd);
		}
	}
	if (n > 0)
		spool_free_names(names, n);

	/* Copies interrupted by a crash were never claimed: discard them. */
	n = spool_list(sp->incoming_fd, is_any, &names);
	for (int i = 0; i < n; i++)
		unlinkat(sp->incoming_fd, names[i], 0);
	if (n > 0)
		spool_free_names(names, n);

	n = spool_list(sp->wal_fd, is_wal_name, &names);
	if (n < 0) {
		ret = n;
		goto out_close;
	}
	for (int i = 0; i < n; i++) {
		struct stat sb;

		if (fstatat(sp->wal_fd, names[i], &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		/* Held for nobody (a crash between the copy and its claims, whose push was
		 * not answered: PostgreSQL pushes it again): it would count against
		 * spool_max_size for ever.  As spool_drop_unclaimed() does; history files
		 * are kept (spool_keep_history()). */
		if (sb.st_nlink <= 1 && !is_history_name(names[i])) {
			if (unlinkat(sp->wal_fd, names[i], 0) == 0) {
				log_log("removed \"%s/%s/%s\": no replica's claim holds it", path,
					SPOOL_WAL, names[i]);
				continue;
			}
			/* counted, and its removal owed (tried again by the daemon) */
			log_warning("could not remove \"%s/%s/%s\", which no replica's claim "
				    "holds: %s; tried again later",
				    path, SPOOL_WAL, names[i], strerror(errno));
			sp->unclaimed_left = true;
			sp->unremovable++;
		}
		sp->used_bytes += (uint64_t)sb.st_size;
		if (is_history_name(names[i]))
			sp->kept_bytes += (uint64_t)sb.st_size;
		sp->files++;
	}
	spool_free_names(names, n);

	/* Drops cut short (spool_drop()): their claims released now, after the copies were
	 * counted (the last claim's release removes a copy and uncounts it). */
	n = spool_list(sp->replicas_fd, is_dropping_name, &names);
	for (int i = 0; i < n; i++) {
		log_log("finishing the drop of replica \"%s\", cut short",
			names[i] + strlen(SPOOL_DROPPING));
		spool_drop_dir(sp, names[i]); /* logs */
	}
	if (n > 0)
		spool_free_names(names, n);

	return 0;

out_close:
	spool_close(sp);
	return ret;
}

void spool_close(struct spool *sp)
{
	int *fds[] = { &sp->incoming_fd, &sp->replicas_fd, &sp->wal_fd, &sp->dir_fd };

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/*
 * What replicas/@name is: 1 a folder, a registration; 0 none (not there, or not a folder
 * itself: a file, a link, even to a folder, which a drop could not remove, nor follow
 * the same way everywhere); -errno when it cannot be told (EIO, ENOMEM: not "none").
 * One rule for the listing, the registration and spool_registered().
 */
static int spool_replica_entry(struct spool *sp, const char *name)
{
	struct stat st;

	if (fstatat(sp->replicas_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	return S_ISDIR(st.st_mode) ? 1 : 0;
}

/*
 * Open replicas/@name, the folder itself, never through a link (one could lead into
 * another replica's folder, whose claims would be made, released or recorded lost as
 * this one's): a descriptor, -ENOENT when it is not there or not a folder (no
 * registration, as spool_replica_entry() says), or -errno.
 */
static int spool_replica_open(struct spool *sp, const char *name)
{
	int fd = openat(sp->replicas_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	return errno == ELOOP || errno == ENOTDIR ? -ENOENT : -errno;
}

int spool_register(struct spool *sp, const char *name)
{
	int ret;

	/* The listing (spool_replicas) keeps only valid names: never hold files for others. */
	if (!node_name_valid(name)) {
		log_error("could not register replica \"%s\": not a valid node name", name);
		return -EINVAL;
	}
	if (mkdirat(sp->replicas_fd, name, 0750) < 0) {
		/* there already: a folder (registered before), or something else, which
		 * registers nobody (spool_replica_entry()) and is not taken over */
		if (errno == EEXIST) {
			ret = spool_replica_entry(sp, name);
			if (ret == 1)
				return 0;
			log_error("could not register replica \"%s\": \"%s/%s/%s\" is there and is "
				  "not a folder%s%s",
				  name, sp->path, SPOOL_REPLICAS, name, ret < 0 ? ": " : "",
				  ret < 0 ? strerror(-ret) : "");
			log_hint("Remove it (a replica's folder is made by walshipd, not a link).");
			return ret < 0 ? ret : -ENOTDIR;
		}
		log_error("could not register replica \"%s\" in \"%s/%s\": %s", name, sp->path,
			  SPOOL_REPLICAS, strerror(errno));
		return -errno;
	}
	ret = spool_sync_registered(sp);
	return ret < 0 ? ret : 1;
}

int spool_sync_registered(struct spool *sp)
{
	if (fsync(sp->replicas_fd) < 0) {
		int ret = -errno;

		log_error("could not fsync directory \"%s/%s\": %s", sp->path, SPOOL_REPLICAS,
			  strerror(-ret));
		return ret;
	}
	return 0;
}

int spool_replicas(struct spool *sp, char ***names)
{
	int n = spool_list(sp->replicas_fd, is_replica_name, names), kept = 0;

	/* Only folders register (spool_replica_entry()): anything else is said and left
	 * out; an entry that cannot be told is kept (what it holds is then read, and the
	 * listing fails there rather than drop a registration). */
	for (int i = 0; i < n; i++) {
		if (spool_replica_entry(sp, (*names)[i]) == 0) {
			log_warning("\"%s/%s/%s\" is not a folder: no replica is registered by it",
				    sp->path, SPOOL_REPLICAS, (*names)[i]);
			free((*names)[i]);
		} else {
			(*names)[kept++] = (*names)[i];
		}
	}
	return n < 0 ? n : kept;
}

int spool_backlog(struct spool *sp, const char *name, char ***names)
{
	int fd = spool_replica_open(sp, name), n;

	*names = NULL;
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	n = spool_list(fd, is_wal_name, names);
	close(fd);
	return n;
}

/*
 * wal/@file exists already: is it the WAL of @fd (a retried push)?  Returns 1 same, 0
 * different, -errno.
 */
static int spool_same_as_held(struct spool *sp, const char *file, int fd)
{
	int held = openat(sp->wal_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), same;

	if (held < 0)
		return -errno;
	same = store_same_wal(sp->wal_fd, file, held, fd); /* a .partial: up to its fork */
	close(held);
	return same;
}

/* Make wal/@file a durable copy of @src_fd; returns 0 or -errno with @err filled. */
static int spool_copy(struct spool *sp, int src_fd, const char *file, uint64_t size, char *err,
		      size_t errlen)
{
	char wal_path[sizeof(sp->path) + 8], incoming_path[sizeof(sp->path) + 16];
	const struct durable_dir wal = { sp->wal_fd, wal_path };
	const struct durable_dir incoming = { sp->incoming_fd, incoming_path };
	struct durable_file df;
	struct stat sb;
	int ret;

	/* Held already (a retried push, a file shipped twice): compared with the source
	 * itself, not copied and fsynced first only to find the name taken.  (Pinned by the
	 * caller: no release removes it meanwhile.) */
	if (fstat(src_fd, &sb) == 0 && (uint64_t)sb.st_size == size) {
		int same = spool_same_as_held(sp, file, src_fd);

		if (same == 1)
			return 0;
		if (same == 0) {
			snprintf(err, errlen,
				 "the spool holds \"%s\" with different content; it is kept", file);
			return -EEXIST;
		}
		/* not held (-ENOENT), or not comparable now: the copy below decides */
	}
	snprintf(wal_path, sizeof(wal_path), "%s/%s", sp->path, SPOOL_WAL);
	snprintf(incoming_path, sizeof(incoming_path), "%s/%s", sp->path, SPOOL_INCOMING);
	/* Never replacing a held file: a different one of the same name is a conflict. */
	ret = durable_begin(&df, &wal, &incoming, file, DURABLE_NOREPLACE, 0640);
	if (ret < 0) {
		snprintf(err, errlen, "%s", df.message);
		goto out_end;
	}
	/* In the kernel where it can; pg_wal on another file system falls back (file_copy.h). */
	ret = file_copy(src_fd, df.fd, size, FILE_COPY_RANGE);
	if (ret < 0) {
		snprintf(err, errlen, "could not copy \"%s\" into the spool: %s", file,
			 ret == -ENODATA ? "the file is shorter than when it was pushed" :
					   strerror(-ret));
		goto out_end;
	}
	ret = durable_commit(&df);
	if (ret == -EEXIST) {
		/* A retried push: keep the held copy if it is the same WAL. */
		int same = spool_same_as_held(sp, file, df.fd);

		if (same == 1)
			ret = 0;
		else if (same == 0)
			snprintf(err, errlen,
				 "the spool holds \"%s\" with different content; it is kept", file);
		else
			snprintf(err, errlen, "could not compare \"%s\" with the held copy: %s",
				 file, strerror(-same));
	} else if (ret < 0) {
		snprintf(err, errlen, "%s", df.message);
	} else {
		__atomic_add_fetch(&sp->used_bytes, size, __ATOMIC_RELAXED);
		if (is_history_name(file))
			__atomic_add_fetch(&sp->kept_bytes, size, __ATOMIC_RELAXED);
		__atomic_add_fetch(&sp->files, 1, __ATOMIC_RELAXED);
	}
out_end:
	durable_end(&df);
	return ret;
}

/* Whether spool_store() works on @file (sp->lock held). */
static bool spool_pinned(const struct spool *sp, const char *file)
{
	for (const struct spool_pin *pin = sp->pinned; pin; pin = pin->next)
		if (!strcmp(pin->file, file))
			return true;
	return false;
}

/* A copy no claim holds could not be removed (@err): counted (status), and returned. */
static int spool_unremovable(struct spool *sp, int err)
{
	__atomic_add_fetch(&sp->unremovable, 1, __ATOMIC_RELAXED);
	return err;
}

/* Remove wal/@file if no claim links it (link count 1: only wal/ holds it), unless
 * spool_store() works on it (sp->lock held) or it is a history file (kept for good:
 * spool_keep_history()).  Returns 1 removed, 0 kept (claimed, pinned, a history file,
 * gone already), -errno when it could not be looked at or unlinked (it still counts). */
static int spool_drop_unclaimed(struct spool *sp, const char *file)
{
	struct stat sb;

	if (spool_pinned(sp, file) || is_history_name(file))
		return 0;
	if (fstatat(sp->wal_fd, file, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : spool_unremovable(sp, -errno);
	if (sb.st_nlink > 1)
		return 0;
	if (unlinkat(sp->wal_fd, file, 0) < 0)
		return errno == ENOENT ? 0 : spool_unremovable(sp, -errno);
	__atomic_sub_fetch(&sp->used_bytes, (uint64_t)sb.st_size, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&sp->files, 1, __ATOMIC_RELAXED);
	return 1;
}

/* spool_drop_unclaimed() where no caller is told of a failure (sp->lock held; returned
 * as it): it is logged, at most once a minute with the count since (a failing disk fails
 * every release: one line per acknowledged segment, thousands for a drop, would bury the
 * log), and the removal owed (unclaimed_left). */
#define SPOOL_LEFT_LOG_MS 60000
static int spool_drop_unclaimed_or_owe(struct spool *sp, const char *file)
{
	int ret = spool_drop_unclaimed(sp, file);
	int64_t now;

	if (ret >= 0)
		return ret;
	__atomic_store_n(&sp->unclaimed_left, true, __ATOMIC_RELAXED);
	sp->left_unlogged++;
	now = clock_now_ms();
	if (sp->left_logged_ms && now - sp->left_logged_ms < SPOOL_LEFT_LOG_MS)
		return ret;
	log_warning("could not remove \"%s/%s/%s\", which no replica's claim holds any more: "
		    "%s (%" PRIu64 " such failure(s) since the last said); tried again later",
		    sp->path, SPOOL_WAL, file, strerror(-ret), sp->left_unlogged);
	sp->left_unlogged = 0;
	sp->left_logged_ms = now;
	return ret;
}

static void spool_pin(struct spool *sp, struct spool_pin *pin, const char *file)
{
	pin->file = file;
	pthread_mutex_lock(&sp->lock);
	pin->next = sp->pinned;
	sp->pinned = pin;
	pthread_mutex_unlock(&sp->lock);
}

/* spool_store() is done with @pin's name: its copy goes if nothing claims it (the store
 * failed, claimed it for nobody, or every claim was released meanwhile). */
static void spool_unpin(struct spool *sp, struct spool_pin *pin)
{
	struct spool_pin **pp;

	pthread_mutex_lock(&sp->lock);
	for (pp = &sp->pinned; *pp != pin; pp = &(*pp)->next)
		;
	*pp = pin->next;
	spool_drop_unclaimed_or_owe(sp, pin->file);
	pthread_mutex_unlock(&sp->lock);
}

int spool_keep_history(struct spool *sp, const char *file, const void *content, size_t len)
{
	char err[256] = "";
	int fd, ret;

	if (!is_history_name(file))
		return -EINVAL;
	/* Through spool_copy(), whose source is a descriptor: one kept already (the stream
	 * ships it again at each start on its timeline) is only compared, not copied. */
	fd = memfd_create("walship-history", MFD_CLOEXEC);
	if (fd < 0)
		ret = -errno;
	else if (write(fd, content, len) != (ssize_t)len)
		ret = -EIO;
	else
		ret = spool_copy(sp, fd, file, len, err, sizeof(err));
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		log_warning("could not keep history file \"%s\" in the spool: %s", file,
			    err[0] ? err : strerror(-ret));
	return ret;
}

int spool_store(struct spool *sp, int src_fd, const char *file, uint64_t size,
		char *const *replicas, int nreplicas, bool *gone, char *err, size_t errlen)
{
	/* the claims this store makes: undone on a failure, never those made before */
	bool *made = calloc(nreplicas > 0 ? (size_t)nreplicas : 1, sizeof(*made));
	struct spool_pin pin;
	int ret;

	if (!made) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	spool_pin(sp, &pin, file);
	ret = spool_copy(sp, src_fd, file, size, err, errlen);
	if (ret < 0)
		goto out_unpin;
	for (int i = 0; i < nreplicas; i++) {
		int rfd = spool_replica_open(sp, replicas[i]);
		int linked = rfd < 0 ? (errno = -rfd, -1) : linkat(sp->wal_fd, file, rfd, file, 0);

		/* A replica's directory is its registration: one gone (ENOENT: spool_drop() ran
		 * since @replicas was taken, before the open or between it and the link, or
		 * an operator removed it) is not registered any more, so nothing is held for
		 * it, and the caller is told. */
		if (linked < 0 && errno == ENOENT) {
			if (rfd >= 0)
				close(rfd);
			if (gone)
				gone[i] = true;
			continue;
		}
		if (linked == 0)
			made[i] = true;
		else if (errno == EEXIST)
			linked = 0; /* claimed already (a retried push) */
		if (linked < 0 || fsync(rfd) < 0) {
			ret = -errno;
			snprintf(err, errlen, "could not hold \"%s\" for replica \"%s\": %s", file,
				 replicas[i], strerror(errno));
			if (rfd >= 0)
				close(rfd);
			/* Undo the claims this store made: all or nothing (the copy goes when
			 * unpinned, unless claims made before this store link it, which stay:
			 * a replica held it before this push). */
			for (int k = 0; k <= i; k++)
				if (made[k])
					spool_release(sp, replicas[k], file);
			goto out_unpin;
		}
		close(rfd);
	}
out_unpin:
	spool_unpin(sp, &pin); /* held for nobody (nreplicas 0, a failure): the copy goes */
	free(made);
	return ret;
}

/* spool_release(), counting in *@unremoved (not NULL) a file that kept its room: a claim
 * it could not release (or the replica's folder it could not open), a copy it could not
 * remove. */
static int spool_release_counted(struct spool *sp, const char *name, const char *file,
				 uint64_t *unremoved)
{
	int dropped = 0;

	/* (a claim that could not be released keeps its copy as surely as a copy that
	 * could not be removed: counted alike) */
	if (name[0]) {
		int rfd = spool_replica_open(sp, name);

		if (rfd < 0) {
			if (rfd != -ENOENT) {
				if (!unremoved ||
				    !*unremoved) /* (a batch: its first, then a sum) */
					log_warning(
						"could not release \"%s\" for replica \"%s\": %s",
						file, name, strerror(-rfd));
				if (unremoved)
					(*unremoved)++;
			}
			return rfd == -ENOENT ? 0 : rfd;
		}
		if (unlinkat(rfd, file, 0) == 0) {
			dropped = 1;
		} else if (errno != ENOENT) {
			dropped = -errno;
			if (!unremoved || !*unremoved)
				log_warning("could not release \"%s\" for replica \"%s\": %s", file,
					    name, strerror(errno));
			if (unremoved)
				(*unremoved)++;
		}
		close(rfd);
	}
	/* The last claim gone, the copy goes; under the lock, so that a store does not pin
	 * the name and link the copy between the check of its link count and its removal. */
	pthread_mutex_lock(&sp->lock);
	if (spool_drop_unclaimed_or_owe(sp, file) < 0 && unremoved)
		(*unremoved)++;
	pthread_mutex_unlock(&sp->lock);
	return dropped;
}

int spool_release(struct spool *sp, const char *name, const char *file)
{
	return spool_release_counted(sp, name, file, NULL);
}

int spool_remove_unclaimed(struct spool *sp)
{
	char **names, first[64] = "";
	int n = spool_list(sp->wal_fd, is_wal_name, &names), removed = 0, failed = 0, nfailed = 0;

	if (n < 0)
		return n;
	for (int i = 0; i < n && !__atomic_load_n(&sp->stopping, __ATOMIC_RELAXED); i++) {
		int dropped;

		pthread_mutex_lock(&sp->lock);
		dropped = spool_drop_unclaimed(sp, names[i]);
		pthread_mutex_unlock(&sp->lock);
		if (dropped > 0) {
			log_log("removed \"%s/%s/%s\": no replica's claim holds it", sp->path,
				SPOOL_WAL, names[i]);
			removed++;
		} else if (dropped < 0) {
			/* the rest is removed all the same; the caller is told it is not done */
			if (!nfailed++) {
				failed = dropped;
				snprintf(first, sizeof(first), "%s", names[i]);
			}
		}
	}
	spool_free_names(names, n);
	if (nfailed)
		log_warning("could not remove %d file(s) in \"%s/%s\" that no replica's claim "
			    "holds, the first \"%s\": %s",
			    nfailed, sp->path, SPOOL_WAL, first, strerror(-failed));
	return failed ? failed : removed;
}

bool spool_registered(struct spool *sp, const char *name)
{
	/* (only a folder known gone counts: an error looking (EIO, ENOMEM) is no removal) */
	return spool_replica_entry(sp, name) != 0;
}

static int spool_sync_replicas_dir(struct spool *sp)
{
	int ret;

	if (fsync(sp->replicas_fd) == 0)
		return 0;
	ret = -errno;
	log_error("could not fsync directory \"%s/%s\": %s", sp->path, SPOOL_REPLICAS,
		  strerror(errno));
	return ret;
}

/* Release every claim in replicas/@dir, its LOST record, and the folder itself. */
static int spool_drop_dir(struct spool *sp, const char *dir)
{
	int round = 0, ret;

	/* Not a folder (a link, which builds before c63fdcb took for a registration and
	 * renamed at a drop; a file): removed itself, never followed, where the claims and
	 * the LOST record it leads to are another's, or no replica's. */
	ret = spool_replica_entry(sp, dir);
	if (ret < 0)
		return ret;
	if (ret == 0) {
		if (unlinkat(sp->replicas_fd, dir, 0) < 0 && errno != ENOENT) {
			ret = -errno;
			log_error("could not remove \"%s/%s/%s\": %s", sp->path, SPOOL_REPLICAS,
				  dir, strerror(errno));
			return ret;
		}
		return spool_sync_replicas_dir(sp);
	}
	/* A spool_store() on the worker thread that opened the folder before it was renamed
	 * may still claim a file in it between the listing and the removal (ENOTEMPTY):
	 * listed and released again.  Each store claims a file once, so a few rounds are
	 * enough. */
	do {
		char **files;
		int n = spool_backlog(sp, dir, &files), fd;
		uint64_t unremoved = 0; /* (its first failure said, then their sum) */

		if (n < 0)
			return n;
		for (int i = 0; i < n; i++) {
			if (__atomic_load_n(&sp->stopping, __ATOMIC_RELAXED)) {
				spool_free_names(files, n);
				return -EINTR; /* the folder stays: spool_open() finishes it */
			}
			spool_release_counted(sp, dir, files[i], &unremoved);
		}
		if (unremoved > 1)
			log_warning("%" PRIu64 " of the %d file(s) released for \"%s/%s/%s\" kept "
				    "their room (claims or copies that could not be removed)",
				    unremoved, n, sp->path, SPOOL_REPLICAS, dir);
		spool_free_names(files, n);
		/* Its LOST record, and anything else left in it (a LOST record's temporary
		 * file, from a crash while it was written), which would keep the folder for
		 * ever: through the folder itself, never a link put in its place meanwhile. */
		fd = spool_replica_open(sp, dir);
		if (fd >= 0)
			unlinkat(fd, SPOOL_LOST, 0);
		n = fd < 0 ? 0 : spool_list(fd, is_any, &files);
		for (int i = 0; i < n; i++)
			if (!is_wal_name(files[i]))
				unlinkat(fd, files[i], 0);
		if (n > 0)
			spool_free_names(files, n);
		if (fd >= 0)
			close(fd);
		ret = unlinkat(sp->replicas_fd, dir, AT_REMOVEDIR) < 0 ? -errno : 0;
		if (ret == -ENOENT)
			ret = 0; /* gone already (removed by hand after a failed release) */
	} while (ret == -ENOTEMPTY && ++round < 16);
	if (ret < 0) {
		log_error("could not remove \"%s/%s/%s\": %s", sp->path, SPOOL_REPLICAS, dir,
			  strerror(-ret));
		return ret;
	}
	return spool_sync_replicas_dir(sp);
}

int spool_unregister(struct spool *sp, const char *name)
{
	char gone[256];
	int ret;

	/* Unregistered first, in one step that a crash cannot cut in two: renamed out of the
	 * registered names, durably.  Stores that begin after hold nothing for it (the name
	 * is not there), and a drop cut short (a crash, a stop) is finished by spool_open()
	 * rather than leaving a replica registered with half its claims.  A folder left by
	 * such a drop of the same name is finished first (a rename onto it would fail). */
	snprintf(gone, sizeof(gone), "%s%s", SPOOL_DROPPING, name);
	if (faccessat(sp->replicas_fd, gone, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		ret = spool_drop_dir(sp, gone);
		if (ret < 0)
			return ret;
	}
	if (renameat(sp->replicas_fd, name, sp->replicas_fd, gone) < 0) {
		ret = -errno;
		if (ret == -ENOENT) {
			/* Its folder removed by hand, its claims with it: not registered any
			 * more (spool_release_dropped() removes the copies they alone held). */
			log_log("replica \"%s\" is not registered in \"%s/%s\" any more", name,
				sp->path, SPOOL_REPLICAS);
			return 0;
		}
		log_error("could not rename \"%s/%s/%s\": %s", sp->path, SPOOL_REPLICAS, name,
			  strerror(errno));
		return ret;
	}
	/* Renamed, it is unregistered: stores from now on hold nothing for it (its folder
	 * is not there), durable or not, so the caller must forget it (kept, every push it
	 * lacked was copied for it again and again).  A crash finds either name, both
	 * handled by spool_open(); a failed fsync only leaves which one undecided. */
	if (fsync(sp->replicas_fd) < 0) {
		log_warning("could not fsync directory \"%s/%s\": %s", sp->path, SPOOL_REPLICAS,
			    strerror(errno));
		log_detail("Replica \"%s\" is unregistered; after a crash before the directory "
			   "reaches the disk it may be registered again, without what was "
			   "pushed meanwhile.",
			   name);
	}
	return 0;
}

int spool_release_dropped(struct spool *sp, const char *name)
{
	char gone[256];
	int ret;

	snprintf(gone, sizeof(gone), "%s%s", SPOOL_DROPPING, name);
	if (faccessat(sp->replicas_fd, gone, F_OK, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return spool_drop_dir(sp, gone);
	/* Not there: its claims went by hand with its folder (spool_unregister()), or a
	 * release before removed it and failed after; copies no claim holds are its.  One
	 * that cannot be removed (it may be no copy of its: a folder removed by hand does
	 * not say whose they were) fails no drop: its removal is owed (unclaimed_left). */
	ret = spool_remove_unclaimed(sp);
	if (ret < 0)
		__atomic_store_n(&sp->unclaimed_left, true, __ATOMIC_RELAXED);
	return 0;
}

int spool_drop(struct spool *sp, const char *name)
{
	int ret = spool_unregister(sp, name);

	return ret < 0 ? ret : spool_release_dropped(sp, name);
}

bool spool_holds_since(struct spool *sp, const char *name, const char *file, time_t *since)
{
	int rfd = spool_replica_open(sp, name);
	struct stat st;
	bool held;

	if (rfd < 0)
		return false;
	held = fstatat(rfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0;
	close(rfd);
	if (held && since)
		*since = st.st_mtime;
	return held;
}

bool spool_holds(struct spool *sp, const char *name, const char *file)
{
	return spool_holds_since(sp, name, file, NULL);
}

int spool_open_file(struct spool *sp, const char *file)
{
	int fd = openat(sp->wal_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	return fd < 0 ? -errno : fd;
}

/*
 * Read replicas/@name/@file, a small record, into @buf (NUL-terminated): its length,
 * -ENOENT when it or the folder is not there, -errno otherwise.  Through the folder
 * itself and never a link (spool_replica_open()).
 */
static int spool_replica_read(struct spool *sp, const char *name, const char *file, char *buf,
			      size_t size)
{
	ssize_t n;
	int fd, rfd;

	buf[0] = '\0';
	rfd = spool_replica_open(sp, name);
	if (rfd < 0)
		return rfd;
	fd = openat(rfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(rfd);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return (int)n;
}

int spool_read_lost(struct spool *sp, const char *name, struct spool_lost *out)
{
	char path[256], buf[256];
	unsigned long long files;
	int n;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "%s/%s", name, SPOOL_LOST);
	n = spool_replica_read(sp, name, SPOOL_LOST, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? 0 : n;
	if (sscanf(buf, "%llu %47s %47s", &files, out->first, out->last) != 3 ||
	    !wal_name_valid(out->first) || !wal_name_valid(out->last)) {
		log_error("invalid lost-WAL record \"%s/%s/%s\"", sp->path, SPOOL_REPLICAS, path);
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	out->files = files;
	return 0;
}

int spool_put_away(struct spool *sp, const char *name, const char *note)
{
	size_t len = strlen(note);
	int rfd = spool_replica_open(sp, name), fd, ret = 0;

	if (rfd < 0)
		return rfd;
	fd = openat(rfd, SPOOL_AWAY_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0640);
	if (fd < 0) {
		ret = -errno;
	} else {
		ssize_t n = write(fd, note, len); /* (a few dozen bytes: whole or failed) */

		if (n < 0 || (size_t)n != len)
			ret = n < 0 ? -errno : -ENOSPC;
		close(fd);
		if (!ret && renameat(rfd, SPOOL_AWAY_TMP, rfd, SPOOL_AWAY) < 0)
			ret = -errno;
		if (ret)
			unlinkat(rfd, SPOOL_AWAY_TMP, 0);
	}
	close(rfd);
	return ret;
}

int spool_get_away(struct spool *sp, const char *name, char *buf, size_t size)
{
	int n = spool_replica_read(sp, name, SPOOL_AWAY, buf, size);

	return n == -ENOENT ? 0 : n;
}

void spool_clear_away(struct spool *sp, const char *name)
{
	int rfd = spool_replica_open(sp, name);

	if (rfd < 0)
		return;
	unlinkat(rfd, SPOOL_AWAY, 0);
	close(rfd);
}

/* Write @lost as replicas/NAME/LOST, durably (durable_put(), which logs a failure). */
static int spool_write_lost(struct spool *sp, const char *name, const struct spool_lost *lost)
{
	char buf[160], path[sizeof(sp->path) + 300];
	struct durable_dir dir = { .path = path };
	int len, ret;

	snprintf(path, sizeof(path), "%s/%s/%s", sp->path, SPOOL_REPLICAS, name);
	len = snprintf(buf, sizeof(buf), "%llu %s %s\n", (unsigned long long)lost->files,
		       lost->first, lost->last);
	dir.fd = spool_replica_open(sp, name);
	if (dir.fd < 0) {
		ret = dir.fd;
		log_error("could not open directory \"%s\": %s", path, strerror(-ret));
		dir.fd = -1;
		return ret;
	}
	ret = durable_put(&dir, SPOOL_LOST, buf, (size_t)len, 0);
	close(dir.fd);
	return ret;
}

/* Remove replicas/@name/LOST, durably (a record written before a release that then
 * released nothing): a failure is logged, the record then saying more than was lost. */
static void spool_remove_lost(struct spool *sp, const char *name)
{
	int rfd = spool_replica_open(sp, name);

	if (rfd < 0)
		return;
	if ((unlinkat(rfd, SPOOL_LOST, 0) < 0 && errno != ENOENT) || fsync(rfd) < 0)
		log_warning("could not remove \"%s/%s/%s/%s\", which counts claims kept as lost: "
			    "%s",
			    sp->path, SPOOL_REPLICAS, name, SPOOL_LOST, strerror(errno));
	close(rfd);
}

/* Merge @files[0..@n) (in WAL order) into the record @lost. */
static void spool_lost_add(struct spool_lost *lost, char *const *files, int n)
{
	if (n <= 0)
		return;
	if (!lost->files || strcmp(files[0], lost->first) < 0)
		snprintf(lost->first, sizeof(lost->first), "%s", files[0]);
	if (!lost->files || strcmp(files[n - 1], lost->last) > 0)
		snprintf(lost->last, sizeof(lost->last), "%s", files[n - 1]);
	lost->files += (uint64_t)n;
}

int spool_release_all_lost(struct spool *sp, const char *name, struct spool_lost *out,
			   uint64_t *released, uint64_t *kept, uint64_t *unremoved)
{
	struct spool_lost before;
	char **files;
	int n = spool_backlog(sp, name, &files), ret, nlost = 0;

	*released = 0;
	*kept = 0;
	*unremoved = 0;
	if (n < 0)
		return n;
	ret = spool_read_lost(sp, name, out);
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	before = *out;
	if (n > 0) {
		spool_lost_add(out, files, n);
		/* Record the loss before releasing: a crash in between loses nothing more. */
		ret = spool_write_lost(sp, name, out);
		if (ret < 0) {
			spool_free_names(files, n);
			return ret;
		}
	}
	/* The claims released are moved to the front, in order, the ones kept dropped. */
	for (int i = 0; i < n; i++) {
		if (spool_release_counted(sp, name, files[i], unremoved) < 0) {
			(*kept)++;
			free(files[i]);
			continue;
		}
		files[nlost++] = files[i];
	}
	if (*unremoved > 1)
		log_warning("%" PRIu64 " of the %d file(s) released for replica \"%s\" kept their "
			    "room (claims or copies that could not be removed)",
			    *unremoved, n, name);
	/* Claims that stayed are still the replica's, and not lost: the record says only the
	 * ones released (else each release of them again counted them again).  A rewrite
	 * that fails (logged) leaves it saying more. */
	if (*kept) {
		*out = before;
		spool_lost_add(out, files, nlost);
		if (!out->files)
			spool_remove_lost(sp, name);
		else
			spool_write_lost(sp, name, out);
	}
	spool_free_names(files, nlost);
	*released = (uint64_t)nlost;
	return 0;
}

/* Read the small file @name of the spool's directory into @buf (@size bytes, NUL
 * terminated).  Returns its length, or -errno (logged but -ENOENT: it does not exist). */
static ssize_t spool_read_small(struct spool *sp, const char *name, char *buf, size_t size)
{
	int fd = openat(sp->dir_fd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0) {
		n = -errno;
		if (n != -ENOENT)
			log_error("could not open file \"%s/%s\": %s", sp->path, name,
				  strerror(errno));
		return n;
	}
	n = read(fd, buf, size - 1);
	if (n < 0) {
		n = -errno;
		log_error("could not read file \"%s/%s\": %s", sp->path, name, strerror(errno));
	}
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

int spool_get_identity(struct spool *sp, struct wal_identity *id)
{
	char buf[WAL_IDENTITY_TEXT_MAX];
	ssize_t n = spool_read_small(sp, SPOOL_IDENTITY, buf, sizeof(buf));

	memset(id, 0, sizeof(*id));
	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return (int)n;
	if (n == 0 || wal_identity_parse(buf, id) < 0) {
		log_error("invalid identity file \"%s/%s\"", sp->path, SPOOL_IDENTITY);
		return -EINVAL;
	}
	return 0;
}

int spool_set_identity(struct spool *sp, const struct wal_identity *id)
{
	const struct durable_dir dir = { sp->dir_fd, sp->path };
	char buf[WAL_IDENTITY_TEXT_MAX];
	size_t len = wal_identity_format(id, buf, sizeof(buf));

	return durable_put(&dir, SPOOL_IDENTITY, buf, len, 0); /* logs */
}

/* The record's line without its CRC: "SYSID TIMELINE X/X".  Returns its length. */
static int reported_text(const struct spool_reported *r, char *buf, size_t len)
{
	return snprintf(buf, len, "%llu %u %X/%X", (unsigned long long)r->system_identifier,
			r->timeline, (unsigned int)(r->lsn >> 32), (unsigned int)r->lsn);
}

int spool_get_reported(struct spool *sp, struct spool_reported *out)
{
	unsigned int hi, lo, tli, crc;
	unsigned long long sysid;
	char buf[128], text[128], end;
	ssize_t n = spool_read_small(sp, SPOOL_REPORTED, buf, sizeof(buf));
	struct spool_reported r;
	int len;

	memset(out, 0, sizeof(*out));
	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return (int)n;
	if (sscanf(buf, "%llu %u %X/%X %8X%c", &sysid, &tli, &hi, &lo, &crc, &end) == 6 &&
	    end == '\n') {
		r = (struct spool_reported){ .system_identifier = sysid,
					     .timeline = tli,
					     .lsn = (uint64_t)hi << 32 | lo };
		len = reported_text(&r, text, sizeof(text));
		/* (the CRC of the text as it is written back: a line that does not read
		 * back the same is not valid either) */
		if (len < 0 || crc32c(0, text, (size_t)len) != crc ||
		    strlen(buf) != (size_t)len + 10)
			sysid = 0;
	} else {
		sysid = 0;
	}
	if (!sysid || !tli || !(hi | lo)) {
		log_error("invalid stream record \"%s/%s\"", sp->path, SPOOL_REPORTED);
		return -EINVAL;
	}
	out->system_identifier = sysid;
	out->timeline = tli;
	out->lsn = (uint64_t)hi << 32 | lo;
	return 0;
}

int spool_set_reported(struct spool *sp, const struct spool_reported *r)
{
	const struct durable_dir dir = { sp->dir_fd, sp->path };
	char buf[128];
	int len = reported_text(r, buf, sizeof(buf));

	len += snprintf(buf + len, sizeof(buf) - (size_t)len, " %08X\n",
			crc32c(0, buf, (size_t)len));
	return durable_put(&dir, SPOOL_REPORTED, buf, (size_t)len, 0); /* logs */
}
