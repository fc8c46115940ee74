// SPDX-License-Identifier: MIT
/*
 * Retention on the replica: see replica_retain.h.  A pass is one job that goes twice
 * through the worker thread: RJ_LISTING (read archive_dir: names, sizes, times), then,
 * once the event loop has chosen (retain_select()), RJ_REMOVING (unlink the chosen files
 * oldest first, fsync the directory).  The worker thread touches only the job; it logs
 * nothing (errors are kept in the job and logged on the event loop).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/log.h"
#include "role/replica_retain.h"
#include "wal/name.h"
#include "wal/retain.h"

enum retain_job_state {
	RJ_LISTING,
	RJ_REMOVING,
};

struct retain_job {
	struct worker_job job;
	struct retainer *rt;
	enum retain_job_state state;
	int dir_fd; /* archive_dir, opened anew for the worker (its own offset) */
	struct retain_file *files;
	size_t nfiles, cap;
	struct retain_plan plan;
	size_t removed; /* of plan.remove, unlinked */
	uint64_t removed_bytes;
	int err; /* -errno of the failed step, 0 none */
	char err_what[WAL_NAME_MAX + 32];
};

/* ---- on the worker thread ---- */

static void job_fail(struct retain_job *j, int err, const char *what)
{
	j->err = -err;
	snprintf(j->err_what, sizeof(j->err_what), "%s", what);
}

static void job_list(struct retain_job *j)
{
	int fd = openat(j->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!dir) {
		job_fail(j, errno, "open");
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dir))) {
		struct retain_file *f;
		struct stat st;

		if (!wal_name_valid(de->d_name))
			continue;
		if (fstatat(j->dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue; /* gone meanwhile, or not a file: not ours to remove */
		if (j->nfiles == j->cap) {
			size_t cap = j->cap ? j->cap * 2 : 256;
			struct retain_file *more = realloc(j->files, cap * sizeof(*more));

			if (!more) {
				job_fail(j, ENOMEM, "list");
				break;
			}
			j->files = more;
			j->cap = cap;
		}
		f = &j->files[j->nfiles++];
		memset(f, 0, sizeof(*f));
		snprintf(f->name, sizeof(f->name), "%s", de->d_name);
		f->size = (uint64_t)st.st_size;
		f->stored_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
	}
	closedir(dir);
}

/* Oldest first, each unlinked; then the directory fsynced once, which makes the batch
 * durable (a crash before it may bring some files back: they are removed again). */
static void job_remove(struct retain_job *j)
{
	for (size_t i = 0; i < j->plan.remove; i++) {
		const struct retain_file *f = &j->files[i];

		if (unlinkat(j->dir_fd, f->name, 0) < 0 && errno != ENOENT) {
			job_fail(j, errno, f->name);
			break;
		}
		j->removed++;
		j->removed_bytes += f->size;
	}
	if (j->removed && fsync(j->dir_fd) < 0 && !j->err)
		job_fail(j, errno, ".");
}

static void job_run(struct worker_job *job)
{
	struct retain_job *j = container_of(job, struct retain_job, job);

	if (j->state == RJ_LISTING)
		job_list(j);
	else
		job_remove(j);
}

/* ---- on the event loop ---- */

/* The policy of retain_time and retain_size. */
static struct retain_policy retain_policy_of(const struct config *cfg)
{
	return (struct retain_policy){
		.keep_ms = cfg->retain_time_ms,
		.keep_bytes = (uint64_t)cfg->retain_size_mb * 1024 * 1024,
	};
}

static void job_free(struct retain_job *j)
{
	if (j->dir_fd >= 0)
		close(j->dir_fd);
	free(j->files);
	free(j);
}

static void retain_note_kept(struct retainer *rt, const struct retain_job *j)
{
	rt->kept_files = j->plan.kept;
	rt->kept_bytes = j->plan.kept_bytes;
	if (j->plan.oldest_kept >= 0)
		snprintf(rt->oldest, sizeof(rt->oldest), "%s", j->files[j->plan.oldest_kept].name);
	else
		rt->oldest[0] = '\0';
}

static void retain_listed(struct retainer *rt, struct retain_job *j)
{
	struct retain_policy policy = retain_policy_of(rt->cfg);

	if (j->err) {
		log_warning("could not list directory \"%s\" for retention: %s", rt->store->path,
			    strerror(-j->err));
		rt->errors++;
		job_free(j);
		return;
	}
	/* Asked now, not when the pass began: positions only move forward, and a file
	 * stored meanwhile is not in the listing. */
	rt->floor = rt->floor_fn(rt->floor_ctx);
	if (retain_select(j->files, j->nfiles, rt->store->id.seg_size, rt->floor, &policy,
			  (int64_t)time(NULL) * 1000, &j->plan) < 0) {
		job_free(j); /* cannot be: only WAL names were listed */
		return;
	}
	retain_note_kept(rt, j);
	if (!j->plan.remove || rt->stopping) {
		job_free(j);
		return;
	}
	j->state = RJ_REMOVING;
	rt->job = j;
	worker_submit(&rt->worker, &j->job);
}

static void retain_removed(struct retainer *rt, struct retain_job *j)
{
	if (j->removed) {
		log_log("removed %zu WAL file(s) (%" PRIu64 " bytes) from \"%s\", \"%s\" to "
			"\"%s\"; oldest retained \"%s\"",
			j->removed, j->removed_bytes, rt->store->path, j->files[0].name,
			j->files[j->removed - 1].name, rt->oldest[0] ? rt->oldest : "-");
		rt->removed_files += j->removed;
		rt->removed_bytes += j->removed_bytes;
		if (rt->removed_fn) /* the oldest first: every file up to it is gone */
			rt->removed_fn(rt->floor_ctx, j->files[j->removed - 1].name);
	}
	if (j->err) {
		log_error("could not remove file \"%s/%s\": %s", rt->store->path, j->err_what,
			  strerror(-j->err));
		rt->errors++;
		/* what was not removed is still retained */
		rt->kept_files += j->plan.remove - j->removed;
		rt->kept_bytes += j->plan.remove_bytes - j->removed_bytes;
	}
	job_free(j);
}

static void job_done(struct worker_job *job)
{
	struct retain_job *j = container_of(job, struct retain_job, job);
	struct retainer *rt = j->rt;

	rt->job = NULL;
	if (j->state == RJ_LISTING)
		retain_listed(rt, j);
	else
		retain_removed(rt, j);
}

int retain_start(struct retainer *rt, struct ring *ring, const struct config *cfg,
		 const struct store *store, retain_floor_fn *floor_fn,
		 retain_removed_fn *removed_fn, void *ctx)
{
	int ret;

	memset(rt, 0, sizeof(*rt));
	rt->cfg = cfg;
	rt->store = store;
	rt->floor_fn = floor_fn;
	rt->removed_fn = removed_fn;
	rt->floor_ctx = ctx;
	rt->floor = UINT64_MAX;
	ret = worker_start(&rt->worker, ring); /* logs */
	rt->started = ret == 0;
	return ret;
}

void retain_tick(struct retainer *rt, uint64_t stored, int64_t now_ms)
{
	struct retain_policy policy;
	struct retain_job *j;

	if (!rt->started || rt->stopping || rt->job)
		return;
	/* With retention off a pass only refreshes the status (what is retained), and the
	 * archive of such a replica only grows: less often. */
	policy = retain_policy_of(rt->cfg);
	if (now_ms - rt->last_pass_ms <
	    (retain_policy_off(&policy) ? RETAIN_OFF_MIN_INTERVAL_MS : RETAIN_MIN_INTERVAL_MS))
		return;
	if (stored == rt->stored_seen && rt->last_pass_ms &&
	    now_ms - rt->last_pass_ms < RETAIN_INTERVAL_MS)
		return;
	rt->last_pass_ms = now_ms;
	rt->stored_seen = stored;
	j = calloc(1, sizeof(*j));
	if (!j) {
		log_error("out of memory");
		return;
	}
	j->rt = rt;
	j->state = RJ_LISTING;
	j->job.run = job_run;
	j->job.done = job_done;
	j->dir_fd = dup(rt->store->dir_fd); /* closed by the event loop, after the pass */
	if (j->dir_fd < 0) {
		log_error("could not duplicate the descriptor of \"%s\": %s", rt->store->path,
			  strerror(errno));
		free(j);
		return;
	}
	rt->job = j;
	worker_submit(&rt->worker, &j->job);
}

void retain_stop(struct retainer *rt)
{
	rt->stopping = true;
}

bool retain_stopped(const struct retainer *rt)
{
	return !rt->started || worker_pending(&rt->worker) == 0;
}

void retain_fill_status(const struct retainer *rt, struct status_node *n)
{
	const struct config *cfg = rt->cfg;
	struct retain_policy policy = retain_policy_of(cfg);

	n->retain_removed_files = rt->removed_files;
	n->retain_removed_bytes = rt->removed_bytes;
	n->retained_files = rt->kept_files;
	n->retained_bytes = rt->kept_bytes;
	n->retain_floor_lsn = rt->floor == UINT64_MAX ? 0 : rt->floor;
	n->io_errors += rt->errors;
	snprintf(n->retain_oldest, sizeof(n->retain_oldest), "%s", rt->oldest);
	if (retain_policy_off(&policy))
		snprintf(n->retain_policy, sizeof(n->retain_policy), "off");
	else if (cfg->retain_size_mb <= 0)
		snprintf(n->retain_policy, sizeof(n->retain_policy), "retain_time %ds",
			 cfg->retain_time_ms / 1000);
	else if (cfg->retain_time_ms <= 0)
		snprintf(n->retain_policy, sizeof(n->retain_policy), "retain_size %dMB",
			 cfg->retain_size_mb);
	else
		snprintf(n->retain_policy, sizeof(n->retain_policy),
			 "retain_time %ds, retain_size %dMB", cfg->retain_time_ms / 1000,
			 cfg->retain_size_mb);
}

void retain_free(struct retainer *rt)
{
	if (rt->started)
		worker_stop(&rt->worker);
	rt->started = false;
	if (rt->job) /* finished after the event loop stopped: done() was not called */
		job_free(rt->job);
	rt->job = NULL;
}
