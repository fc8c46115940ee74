// SPDX-License-Identifier: MIT
/*
 * The primary's spool policy and its registered replicas: a push that a registered
 * replica lacks is copied into the spool (on the worker thread) before it is answered,
 * unless every replica that lacks it is about to acknowledge it (spool_delay); a bounded
 * spool fails the push or releases the replica furthest behind (spool_overflow).  The
 * registered replicas, and the files held and lost for each, are read from the spool.
 * The spool's identity file is written here too, on the worker thread, once the first
 * segment names the cluster.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "role/decide.h"
#include "role/primary_int.h"
#include "wal/page.h"

/* Copying a pushed file into the spool, on the worker thread. */
struct spool_job {
	struct worker_job job;
	struct push *push;
	struct spool *spool;
	char **replicas;
	bool *had; /* each of @replicas held it before the job (a push retried): not counted */
	bool *gone; /* each of @replicas found not registered any more (spool_store()) */
	int nreplicas;
	int ret;
	char err[256];
};

static void spool_job_run(struct worker_job *job)
{
	struct spool_job *sj = (struct spool_job *)job;
	struct push *p = sj->push;

	for (int i = 0; i < sj->nreplicas; i++)
		sj->had[i] = spool_holds(sj->spool, sj->replicas[i], p->name);
	sj->ret = spool_store(sj->spool, p->fd, p->name, p->size, sj->replicas, sj->nreplicas,
			      sj->gone, sj->err, sizeof(sj->err));
	/* Its room is counted in the spool's use now, if it was copied: not counted twice
	 * until the event loop sees the job end (a push deciding meanwhile would release a
	 * replica for room that is there). */
	__atomic_sub_fetch(&p->pr->spool_reserved, p->size, __ATOMIC_RELAXED);
}

static int spool_job_late(struct push *p);

static void spool_job_done(struct worker_job *job)
{
	struct spool_job *sj = (struct spool_job *)job;
	struct push *p = sj->push;
	struct primary *pr = p->pr;

	p->spool_done = true;
	/* Replicas whose folder the copy found gone (removed by hand) are forgotten, as a
	 * drop forgets them: kept, each such push was copied for them again and again
	 * (spool_job_late()), holding nothing.  Before @p counts as held (spooled): @p is
	 * not answered while this takes their acknowledgements back. */
	for (int i = 0; i < sj->nreplicas; i++)
		if (sj->gone[i])
			primary_registration_gone(pr, sj->replicas[i]);
	if (sj->ret < 0) {
		log_error("%s", sj->err);
		/* The claims of replicas that acknowledged it while the job ran (kept for the
		 * job's end) go, as on success: they hold the file. */
		for (unsigned int i = 0; i < p->nacked; i++)
			primary_release(pr, p->acked_names[i], p->name);
		push_fail(p, CTL_ERR_FAILED, "could not hold it in the spool: %s", sj->err);
	} else {
		p->spooled = true;
		pr->st.spool_copies++;
		/* Counted where the claim was made: a replica dropped while the copy ran
		 * (its folder renamed) got none, even if registered again since. */
		for (int i = 0; i < sj->nreplicas; i++) {
			int k = primary_registered_index(pr, sj->replicas[i]);

			if (k >= 0 && !sj->had[i] &&
			    spool_holds(&pr->spool, sj->replicas[i], p->name))
				pr->held[k]++;
		}
		for (unsigned int i = 0; i < p->nacked; i++)
			primary_release(pr, p->acked_names[i], p->name);
		/* A replica registered while the copy ran is not among its claims: held for
		 * it too (the copy is reused), before the push is answered. */
		if (spool_job_late(p) == 0)
			push_check(p);
	}
	spool_free_names(sj->replicas, sj->nreplicas);
	free(sj->had);
	free(sj->gone);
	free(sj);
	push_unref(p);
}

/*
 * Writing the spool's identity file, on the worker thread: durable_put()'s two fsyncs
 * must not hold up the event loop (on a busy disk they take seconds, and a loop that
 * does not run answers no PING).  The worker runs its jobs in order, so every spool copy
 * submitted after it finds the identity durable beside it.
 */
struct identity_job {
	struct worker_job job;
	struct spool *spool;
	struct wal_identity id;
};

static void identity_job_run(struct worker_job *job)
{
	struct identity_job *ij = (struct identity_job *)job;

	spool_set_identity(ij->spool, &ij->id); /* logs a failure */
}

static void job_done_free(struct worker_job *job)
{
	free(job);
}

void primary_check_spool_size(const struct primary *pr)
{
	uint64_t max = (uint64_t)pr->cfg.spool_max_size_mb << 20;
	uint64_t kept = __atomic_load_n(&pr->spool.kept_bytes, __ATOMIC_RELAXED);

	if (max && pr->id.seg_size && max < pr->id.seg_size + kept)
		log_warning("spool_max_size (%d MB) is smaller than one WAL segment (%u MB) and "
			    "the timeline history files the spool keeps (%" PRIu64
			    " bytes): no segment can be held for a replica that lacks it",
			    pr->cfg.spool_max_size_mb, pr->id.seg_size >> 20, kept);
}

void primary_fix_identity(struct primary *pr, const struct wal_identity *id)
{
	struct identity_job *ij = calloc(1, sizeof(*ij));

	pr->id = *id;
	pr->id.timeline = 0; /* the cluster's identity, not this segment's */
	log_log("primary holds WAL of system %" PRIu64 " (PostgreSQL %s)", pr->id.system_identifier,
		wal_page_magic_version(pr->id.page_magic));
	primary_check_spool_size(pr);
	if (!ij) {
		spool_set_identity(&pr->spool, &pr->id); /* out of memory: here, then */
		return;
	}
	ij->spool = &pr->spool;
	ij->id = pr->id;
	ij->job.run = identity_job_run;
	ij->job.done = job_done_free;
	worker_submit(&pr->worker, &ij->job);
}

/* A history file kept in the spool (spool_keep_history()), on the worker thread for the
 * same reason: in order, before any spool copy of the files after it. */
struct history_job {
	struct worker_job job;
	struct spool *spool;
	char name[WIRE_MAX_FILE_NAME + 1];
	size_t len;
	uint8_t content[];
};

static void history_job_run(struct worker_job *job)
{
	struct history_job *hj = (struct history_job *)job;

	spool_keep_history(hj->spool, hj->name, hj->content, hj->len); /* logs a failure */
}

void primary_keep_history(struct primary *pr, const char *name, const void *content, size_t len)
{
	struct history_job *hj = calloc(1, sizeof(*hj) + len);

	if (!hj) {
		log_warning("could not keep history file \"%s\" in the spool: out of memory", name);
		return;
	}
	hj->spool = &pr->spool;
	snprintf(hj->name, sizeof(hj->name), "%s", name);
	memcpy(hj->content, content, len);
	hj->len = len;
	hj->job.run = history_job_run;
	hj->job.done = job_done_free;
	worker_submit(&pr->worker, &hj->job);
}

static int push_spool_except(struct push *p, char *const *except, int nexcept);

/* After @p's spool job: held for the registered replicas that lack it now (no claim in the
 * spool, no acknowledgement: registered since the job listed them, or given no claim by
 * it), by another job for those only.  Returns 1 when one was submitted (its end
 * answers), 0 when none is needed (or @p is answered already), -1 when @p failed. */
static int spool_job_late(struct push *p)
{
	struct primary *pr = p->pr;
	int late = 0, nexcept = 0, ret;
	char **except;

	/* Failed meanwhile (push_timeout, a refusal): nothing waits for the copy, and
	 * PostgreSQL's retry is held when it comes; another 16 MiB copy and fsync on the
	 * worker would be for nobody. */
	if (!push_waiting(p))
		return 0;
	/* (names borrowed from pr->registered) */
	except = calloc((size_t)pr->nregistered + 1, sizeof(*except));
	if (!except) {
		push_fail(p, CTL_ERR_FAILED, "out of memory");
		return -1;
	}
	/* By the spool itself, not by the job's list: a replica of the list may have got no
	 * claim (dropped while the copy ran, its folder renamed, registered again since). */
	for (int i = 0; i < pr->nregistered; i++) {
		bool listed = push_acked_by(p, pr->registered[i]);
		bool held = spool_holds(&pr->spool, pr->registered[i], p->name);

		/* claimed already: left out, so that held[] counts it once */
		if (held)
			except[nexcept++] = pr->registered[i];
		/* one whose folder is gone (removed by hand, not seen yet by a copy: its
		 * acknowledgement of @p taken back) is forgotten by the copy that finds it,
		 * never held for here: a copy for it holds nothing */
		late += !listed && !held && spool_registered(&pr->spool, pr->registered[i]);
	}
	ret = late ? push_spool_except(p, except, nexcept) : 0;
	free(except);
	if (!late)
		return 0;
	if (ret < 0) {
		push_fail(p, CTL_ERR_FAILED, "could not hold it in the spool: %s", strerror(-ret));
		return -1;
	}
	p->spool_done = false;
	p->spooled = false; /* not held for every registered replica until this job's end */
	return 1;
}

void push_spool_reclaim(struct push *p)
{
	/* A job in flight claims for the replicas left out when it ends (spool_job_done()
	 * calls spool_job_late()); none ran: the spool is decided when @p is checked. */
	if (p->spool_done && p->spooled)
		spool_job_late(p);
}

/* Hand @p to the worker to be copied into the spool for every registered replica that
 * has not acknowledged it. */
int push_spool(struct push *p)
{
	return push_spool_except(p, NULL, 0);
}

/* push_spool() but for the replicas named in @except (@nexcept), held for already. */
static int push_spool_except(struct push *p, char *const *except, int nexcept)
{
	struct primary *pr = p->pr;
	struct spool_job *sj = calloc(1, sizeof(*sj));

	if (!sj)
		return -ENOMEM;
	sj->replicas = calloc((size_t)pr->nregistered + 1, sizeof(char *));
	sj->had = calloc((size_t)pr->nregistered + 1, sizeof(bool));
	sj->gone = calloc((size_t)pr->nregistered + 1, sizeof(bool));
	if (!sj->replicas || !sj->had || !sj->gone) {
		free(sj->replicas);
		free(sj->had);
		free(sj->gone);
		free(sj);
		return -ENOMEM;
	}
	for (int i = 0; i < pr->nregistered; i++) {
		bool skip = push_acked_by(p, pr->registered[i]);

		for (int k = 0; k < nexcept && !skip; k++)
			skip = !strcmp(except[k], pr->registered[i]);
		if (skip)
			continue;
		sj->replicas[sj->nreplicas] = strdup(pr->registered[i]);
		if (!sj->replicas[sj->nreplicas]) {
			spool_free_names(sj->replicas, sj->nreplicas);
			free(sj->had);
			free(sj->gone);
			free(sj);
			return -ENOMEM;
		}
		sj->nreplicas++;
	}
	sj->push = p;
	sj->spool = &pr->spool;
	sj->job.run = spool_job_run;
	sj->job.done = spool_job_done;
	p->spool_needed = true;
	p->refs++;
	__atomic_add_fetch(&pr->spool_reserved, p->size, __ATOMIC_RELAXED);
	worker_submit(&pr->worker, &sj->job);
	return 0;
}

/*
 * Is registered replica @replica about to acknowledge @p?  It is connected and streaming,
 * has no held files left to catch up on, is being sent @p, and its acknowledgements have
 * been coming within spool_delay.
 */
bool primary_keeping_up(struct primary *pr, const char *replica, const struct push *p)
{
	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		struct replica_pace pace = { .backlog_left = peer->backlog_next < peer->nbacklog,
					     .ack_seen = peer->ack_seen,
					     .ack_ewma_ms = peer->ack_ewma_ms };

		if (peer->state != PEER_STREAMING || peer->conn.closing ||
		    strcmp(peer->name, replica))
			continue;
		for (const struct xfer *x = peer->xfers; x && !pace.being_sent; x = x->next)
			pace.being_sent = x->push == p;
		return push_keeping_up(&pace, pr->cfg.spool_delay_ms);
	}
	return false;
}

/* ---- registered replicas ---- */

int primary_registered_index(const struct primary *pr, const char *name)
{
	for (int i = 0; i < pr->nregistered; i++)
		if (!strcmp(pr->registered[i], name))
			return i;
	return -1;
}

/* @replica no longer needs the held copy of @file. */
void primary_release(struct primary *pr, const char *replica, const char *file)
{
	int i = primary_registered_index(pr, replica);

	if (pr->relay)
		return; /* nothing is held for it: the store is its source */

	if (spool_release(&pr->spool, replica, file) == 1 && i >= 0 && pr->held[i])
		pr->held[i]--;
}

/* Drop, as primary_registration_gone() does, every registered replica holding files
 * whose folder is gone.  Returns how many. */
static int primary_drop_gone_holders(struct primary *pr, struct push *p)
{
	int dropped = 0;

	p->refs++; /* (what a drop sets off may answer pushes, @p among them) */
	for (int i = 0; i < pr->nregistered;) {
		char own[WIRE_MAX_NAME + 1];

		if (!pr->held[i] || spool_registered(&pr->spool, pr->registered[i])) {
			i++;
			continue;
		}
		snprintf(own, sizeof(own), "%s", pr->registered[i]);
		primary_registration_gone(pr, own);
		dropped++;
		if (i < pr->nregistered && !strcmp(pr->registered[i], own))
			i++; /* (not forgotten: being dropped by `walship replica drop`) */
	}
	push_unref(p);
	return dropped;
}

/*
 * Bounded spool (durability rule 5: overflow is explicit, never a silent drop).  Before @p is
 * copied in: if spool_max_size would be exceeded, either fail the push (spool_overflow =
 * fail: PostgreSQL keeps the WAL and retries) or release the claims of the replica
 * furthest behind, recording durably that it lost those files (release_slowest), until
 * the file fits.  Returns true when @p may be spooled (false: it has been failed).
 */
bool primary_spool_room(struct primary *pr, struct push *p)
{
	uint64_t max = (uint64_t)pr->cfg.spool_max_size_mb << 20;
	struct stat sb;

	/* A copy held already (the push retried after its copy was made): spool_store()
	 * compares and reuses it, and claims it for the others; no room is taken. */
	if (fstatat(pr->spool.wal_fd, p->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == p->size)
		return true;

	char stuck[WIRE_MAX_NAME + 1] = ""; /* a replica released whose copies stayed */

	for (;;) {
		uint64_t reserved = __atomic_load_n(&pr->spool_reserved, __ATOMIC_RELAXED);
		uint64_t used = __atomic_load_n(&pr->spool.used_bytes, __ATOMIC_RELAXED) + reserved;
		/* what no release frees: copies in progress, the history files kept for good */
		uint64_t fixed =
			reserved + __atomic_load_n(&pr->spool.kept_bytes, __ATOMIC_RELAXED);
		int slowest = -1;
		struct spool_lost lost;
		uint64_t released, kept, unremoved;
		enum spool_room room =
			spool_room_decide(used, fixed, p->size, max,
					  pr->cfg.spool_overflow == CONFIG_SPOOL_RELEASE_SLOWEST,
					  pr->held, pr->nregistered, &slowest);

		if (room == SPOOL_FITS)
			return true;
		/* Copies that no claim holds, or a replica being dropped, still count in the
		 * spool's use until they are unlinked: their removal frees the room, and no
		 * other replica is made to lose WAL for it (PostgreSQL keeps the segment and
		 * retries).  A replica holding files whose folder is gone by hand (or no
		 * folder any more: a link) is no registration: releasing it would free
		 * nothing, and with spool_overflow = fail nothing else would find it while
		 * every push fails here.  Every such one, not the slowest alone, is dropped
		 * as such (its copies removed on the dropper thread), and this push waits
		 * for that room too.  (Its own push found it gone only after this.) */
		primary_unclaimed_poll(pr);
		if (primary_unclaimed_guard(pr) || primary_drop_gone_holders(pr, p)) {
			push_fail(
				p, CTL_ERR_FAILED, "%s",
				clock_now_ms() < pr->unclaimed_guard_until_ms ?
					"the spool is full while the copies of a replica whose "
					"folder is gone are removed, which frees room: try again" :
					"the spool is full while copies no replica's claim holds "
					"are removed, which frees room: try again");
			pr->st.spool_full++;
			return false;
		}
		if (pr->dropping[0]) {
			push_fail(p, CTL_ERR_FAILED,
				  "the spool is full while replica \"%s\" is being dropped, which "
				  "frees its room: try again",
				  pr->dropping);
			pr->st.spool_full++;
			return false;
		}
		if (room == SPOOL_FULL) {
			push_fail(p, CTL_ERR_FAILED,
				  "the spool is full: it holds %" PRIu64
				  " MB of %d MB (spool_max_size) "
				  "for replicas that are behind",
				  used >> 20, pr->cfg.spool_max_size_mb);
			pr->st.spool_full++;
			return false;
		}
		/* The last release left copies it could not remove (an I/O error, an immutable
		 * file: said, and owed by the spool): their room is not free, and this push
		 * releases no other replica for it (on a failing directory each would free as
		 * little); it fails, and the next may release the next replica. */
		if (stuck[0]) {
			primary_unclaimed_poll(pr);
			push_fail(
				p, CTL_ERR_FAILED,
				"the spool is full, and releasing replica \"%s\" did not free "
				"its room: copies it held could not be removed (see the log); try "
				"again",
				stuck);
			pr->st.spool_full++;
			return false;
		}
		if (spool_release_all_lost(&pr->spool, pr->registered[slowest], &lost, &released,
					   &kept, &unremoved) < 0) {
			push_fail(p, CTL_ERR_FAILED,
				  "the spool is full and releasing a replica failed");
			return false;
		}
		if (released) {
			log_warning("spool full: replica \"%s\" lost %" PRIu64
				    " held file(s), now %s to %s "
				    "(%" PRIu64 " in all)",
				    pr->registered[slowest], released, lost.first, lost.last,
				    lost.files);
			log_detail("spool_overflow = release_slowest released the claims of the "
				   "replica furthest behind to make room.");
			log_hint("Its standby needs another archive or a new base backup; see "
				 "walship status.");
		}
		pr->lost[slowest] = lost;
		/* the claims that could not be released are still its own (it stays a choice,
		 * and is counted lost only for what a release of them frees) */
		pr->held[slowest] = kept;
		pr->st.lost_files += released;
		if (unremoved)
			snprintf(stuck, sizeof(stuck), "%s", pr->registered[slowest]);
	}
}

void primary_forget_registered(struct primary *pr, const char *name)
{
	int k = primary_registered_index(pr, name), after;

	if (k < 0)
		return;
	after = pr->nregistered - k - 1;
	free(pr->registered[k]);
	memmove(&pr->registered[k], &pr->registered[k + 1],
		(size_t)after * sizeof(*pr->registered));
	memmove(&pr->held[k], &pr->held[k + 1], (size_t)after * sizeof(*pr->held));
	memmove(&pr->lost[k], &pr->lost[k + 1], (size_t)after * sizeof(*pr->lost));
	pr->nregistered--;
}

void primary_unregistered(struct primary *pr, const char *name)
{
	char own[WIRE_MAX_NAME + 1]; /* (@name may be pr->registered's, freed below) */

	snprintf(own, sizeof(own), "%s", name);
	primary_forget_registered(pr, own);
	for (unsigned int i = 0; i < PRIMARY_AWAY; i++) /* (its away status) */
		if (!strcmp(pr->away[i].name, own))
			pr->away[i].name[0] = '\0';
	primary_take_back_acks(pr, own, NULL); /* gone for good */
	push_recent_distrust(pr); /* its acknowledgements counted there too */
	primary_stream_forget_holder(pr, own);
	push_stream_refusals_recheck(pr); /* one may have waited for it */
}

/*
 * Removing the copies no claim holds any more, on the dropper thread: owed from when a
 * replica is found gone (its claims went with its folder), or the spool could not remove
 * such a copy where no caller is told (unclaimed_left: a release, a store's end, a drop
 * of a folder removed by hand, a start), until a removal that began after that has ended
 * without a failure.  One job, run again when owed again while it ran (a removal that
 * began before may have passed a copy left unclaimed after), and tried again after a
 * failure (a copy it could not unlink, wal/ it could not list) 10 s later, doubling up
 * to 5 min, as a drop's release is; a failure the spool reports while a retry waits
 * waits for it (or a failing disk would set off a full pass at every release).
 *
 * What a full spool does meanwhile (primary_spool_room()):
 * - after a replica found gone, it waits for the room its copies free rather than make
 *   another replica lose WAL for it (release_slowest): while that removal runs, and for
 *   PRIMARY_UNCLAIMED_GUARD_MS after it was owed.  A failure that lasts (an immutable
 *   file, a bad block) leaves that room taken whatever waits, and release_slowest was
 *   chosen to release replicas rather than stall the archiver: it goes on then;
 * - a release of a replica whose copies the spool could not remove, freeing no room,
 *   ends the push (failed): it releases no other replica for that room (on a failing
 *   directory each would free as little); the next push may.
 */
static void unclaimed_job_run(struct worker_job *job)
{
	struct primary *pr = container_of(job, struct primary, unclaimed_job);

	pr->unclaimed_ret = spool_remove_unclaimed(&pr->spool); /* logs what it could not */
}

static void unclaimed_job_done(struct worker_job *job);

static void unclaimed_submit(struct primary *pr)
{
	pr->unclaimed_queued = true;
	pr->unclaimed_again = pr->unclaimed_again_gone = false;
	pr->unclaimed_retry_ms = 0;
	pr->unclaimed_job.run = unclaimed_job_run;
	pr->unclaimed_job.done = unclaimed_job_done;
	worker_submit(&pr->dropper, &pr->unclaimed_job);
}

static void unclaimed_job_done(struct worker_job *job)
{
	struct primary *pr = container_of(job, struct primary, unclaimed_job);

	pr->unclaimed_queued = false;
	if (pr->stopping)
		return; /* (cut short, or not: spool_open() removes them at the next start) */
	if (pr->unclaimed_ret < 0) {
		/* A replica found gone while it ran, whose copies it may have passed: their
		 * removal now (once), not after the wait, which the guard would not outlast;
		 * other failures reported meanwhile wait for the retry */
		if (pr->unclaimed_again_gone) {
			log_warning("could not remove every copy in \"%s/wal\" that no replica's "
				    "claim holds: %s; tried again now (a replica found gone "
				    "meanwhile)",
				    pr->spool.path, strerror(-pr->unclaimed_ret));
			unclaimed_submit(pr);
			return;
		}
		pr->unclaimed_wait_ms =
			pr->unclaimed_wait_ms ? pr->unclaimed_wait_ms * 2 : PRIMARY_DROP_RETRY_MS;
		if (pr->unclaimed_wait_ms > PRIMARY_DROP_RETRY_MAX_MS)
			pr->unclaimed_wait_ms = PRIMARY_DROP_RETRY_MAX_MS;
		pr->unclaimed_retry_ms = clock_now_ms() + pr->unclaimed_wait_ms;
		log_warning("could not remove every copy in \"%s/wal\" that no replica's claim "
			    "holds: %s; tried again in %d s",
			    pr->spool.path, strerror(-pr->unclaimed_ret),
			    pr->unclaimed_wait_ms / 1000);
		return;
	}
	if (pr->unclaimed_again) {
		unclaimed_submit(pr);
		return;
	}
	pr->unclaimed_owed = false; /* (their room is free now: release_slowest may choose) */
	pr->unclaimed_wait_ms = 0;
}

bool primary_unclaimed_guard(const struct primary *pr)
{
	return pr->unclaimed_owed &&
	       (pr->unclaimed_queued || clock_now_ms() < pr->unclaimed_guard_until_ms);
}

/* A removal of unclaimed copies is owed: on the dropper now, or once the one running
 * ends; one the spool reports (not @gone) while a retry waits, with the retry. */
static void unclaimed_owe(struct primary *pr, bool gone)
{
	pr->unclaimed_owed = true;
	if (gone) {
		pr->unclaimed_guard_until_ms = clock_now_ms() + PRIMARY_UNCLAIMED_GUARD_MS;
		pr->unclaimed_wait_ms = 0; /* (a failure of its pass retried 10 s later) */
	}
	if (pr->unclaimed_queued) {
		pr->unclaimed_again = true;
		pr->unclaimed_again_gone = pr->unclaimed_again_gone || gone;
	} else if (!pr->stopping && (gone || !pr->unclaimed_retry_ms))
		unclaimed_submit(pr);
}

bool primary_unclaimed_poll(struct primary *pr)
{
	if (pr->relay || !__atomic_exchange_n(&pr->spool.unclaimed_left, false, __ATOMIC_RELAXED))
		return false;
	unclaimed_owe(pr, false);
	return true;
}

void primary_unclaimed_tick(struct primary *pr, int64_t now_ms)
{
	primary_unclaimed_poll(pr);
	if (pr->unclaimed_retry_ms && now_ms >= pr->unclaimed_retry_ms && !pr->unclaimed_queued &&
	    !pr->stopping)
		unclaimed_submit(pr);
}

void primary_registration_gone(struct primary *pr, const char *name)
{
	char own[WIRE_MAX_NAME + 1];

	/* (a drop renames the folder, and forgets the replica itself) */
	if (pr->relay || primary_registered_index(pr, name) < 0 || !strcmp(pr->dropping, name) ||
	    spool_registered(&pr->spool, name))
		return;
	snprintf(own, sizeof(own), "%s", name);
	log_warning("replica \"%s\" is no longer registered: its folder \"%s/replicas/%s\" is "
		    "gone",
		    own, pr->spool.path, own);
	log_detail("It is dropped as by \"walship replica drop\": nothing is held for it from "
		   "now on, and it registers anew when it connects again.");
	/* Owed before what forgetting it sets off (pushes checked again), so that none of
	 * those makes another replica lose WAL for the room its copies still take. */
	unclaimed_owe(pr, true);
	primary_unregistered(pr, own);
	/* Connected, it would go on streaming unregistered, nothing held for it once it
	 * leaves: closed (at the next pump), it registers anew as it connects again. */
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    !strcmp(peer->name, own))
			peer->close_pending = true;
}

/* The registered replicas as the spool lists them, with what each holds and lost.  Built
 * aside and taken only whole: a listing that fails (no descriptor, no memory) keeps the
 * list there was, for pushes count the listed when they decide what is safe, and an
 * empty one would answer them with nothing held for the away. */
int primary_load_registered(struct primary *pr)
{
	uint64_t *held_counts;
	struct spool_lost *lost;
	char **names;
	int n;

	if (pr->relay)
		return relay_load_registered(pr);
	n = spool_replicas(&pr->spool, &names);
	if (n < 0) {
		log_error("could not list registered replicas in \"%s\": %s", pr->spool.path,
			  strerror(-n));
		return n;
	}
	/* One listed before and not now: its folder went by hand (a drop renames it first,
	 * and forgets it itself), and it is dropped as primary_registration_gone() drops it,
	 * not forgotten without a word (its acknowledgements counted, its connection left,
	 * the copies only it held left in the spool).  Before the counts are read: what a
	 * drop sets off (a push answered, release_slowest releasing another) changes them. */
	for (int i = pr->nregistered - 1; i >= 0; i--) {
		bool listed = false;

		if (i >= pr->nregistered)
			continue; /* (forgotten meanwhile, by what a drop set off) */
		for (int k = 0; k < n && !listed; k++)
			listed = !strcmp(names[k], pr->registered[i]);
		if (!listed) {
			char own[WIRE_MAX_NAME + 1];

			snprintf(own, sizeof(own), "%s", pr->registered[i]);
			primary_registration_gone(pr, own);
		}
	}
	held_counts = calloc((size_t)n + 1, sizeof(*held_counts));
	lost = calloc((size_t)n + 1, sizeof(*lost));
	if (!held_counts || !lost) {
		free(held_counts);
		free(lost);
		spool_free_names(names, n);
		log_error("out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		char **backlog;
		int held = spool_backlog(&pr->spool, names[i], &backlog);
		/* (a record that does not parse is said, and counts as none: it stays so) */
		int ret = spool_read_lost(&pr->spool, names[i], &lost[i]);

		if (held > 0) {
			held_counts[i] = (uint64_t)held;
			spool_free_names(backlog, held);
		}
		/* What it holds and lost, counted: they choose whom release_slowest releases,
		 * and a loss stays visible.  A count that failed (no descriptor, no memory) is
		 * no zero: the reload fails, the list there was kept. */
		if (held < 0 || (ret < 0 && ret != -EINVAL)) {
			ret = held < 0 ? held : ret;
			log_error("could not read what the spool holds for replica \"%s\" in "
				  "\"%s\": %s",
				  names[i], pr->spool.path, strerror(-ret));
			free(held_counts);
			free(lost);
			spool_free_names(names, n);
			return ret;
		}
	}
	spool_free_names(pr->registered, pr->nregistered);
	free(pr->held);
	free(pr->lost);
	pr->registered = names;
	pr->nregistered = n;
	pr->held = held_counts;
	pr->lost = lost;
	return 0;
}

/* The start of the WAL of segment @name (0 when @name is no segment, or the size is not
 * known yet). */
static uint64_t segment_start(const struct primary *pr, const char *name)
{
	uint64_t start;

	return wal_name_segment_start(name, pr->id.seg_size, &start, NULL) == 0 ? start : 0;
}

/* Monotonic ms of wall-clock time @t (a file's modification time). */
static int64_t monotonic_of(time_t t)
{
	int64_t ago_ms = ((int64_t)time(NULL) - (int64_t)t) * 1000;

	return clock_now_ms() - (ago_ms > 0 ? ago_ms : 0);
}

/* @name's start in *@lsn and since when in *@since_ms, if it is a segment older than
 * what *@lsn holds (0: nothing yet). */
static void lacks_older(const struct primary *pr, const char *name, int64_t since, uint64_t *lsn,
			int64_t *since_ms)
{
	uint64_t start = segment_start(pr, name);

	if (!start || (*lsn && start >= *lsn))
		return;
	*lsn = start;
	*since_ms = since;
}

bool peer_lacks_from(struct peer *peer, uint64_t *lsn, int64_t *since_ms)
{
	struct primary *pr = peer->pr;
	time_t written;

	*lsn = 0;
	*since_ms = 0;
	if (pr->relay)
		return false;
	/* its backlog: in WAL order, released as acknowledged (one check per status: the
	 * floor moves past the released ones once) */
	while (peer->backlog_floor < peer->nbacklog) {
		const char *name = peer->backlog[peer->backlog_floor];

		if (segment_start(pr, name) &&
		    spool_holds_since(&pr->spool, peer->name, name, &written)) {
			lacks_older(pr, name, monotonic_of(written), lsn, since_ms);
			break;
		}
		peer->backlog_floor++;
	}
	if (peer->relist_from[0] &&
	    spool_holds_since(&pr->spool, peer->name, peer->relist_from, &written))
		lacks_older(pr, peer->relist_from, monotonic_of(written), lsn, since_ms);
	/* whole files being sent to it: held ones, and, with a stream source, pushes past
	 * what its stream holds (a push of a segment it streamed, sent as the archiver
	 * catches up, is answered DUPLICATE: not WAL it lacks; a streamed segment's durable
	 * part counts already); without one every push (its run follows the
	 * acknowledgements, in any order) */
	for (const struct xfer *x = peer->xfers; x; x = x->next)
		if (!x->push->stream && (x->push->from_spool || !pr->source ||
					 segment_start(pr, x->push->name) >= peer->stream.end))
			lacks_older(pr, x->push->name, x->push->started_ms, lsn, since_ms);
	return *lsn != 0;
}

/* ---- control requests ---- */

/* The spool's view of registered replica @k: held and lost files. */
void primary_fill_registered(const struct primary *pr, int k, struct status_peer *sp)
{
	sp->held = pr->held[k];
	sp->lost_files = pr->lost[k].files;
	snprintf(sp->lost_first, sizeof(sp->lost_first), "%s", pr->lost[k].first);
	snprintf(sp->lost_last, sizeof(sp->lost_last), "%s", pr->lost[k].last);
}
