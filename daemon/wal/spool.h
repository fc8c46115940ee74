/* SPDX-License-Identifier: MIT */
/*
 * The primary's spool: WAL held durably for registered replicas that have not
 * acknowledged it (the idea of PostgreSQL's replication slots, per file).
 *
 *   spool_dir/wal/NAME            one durable copy of each held file
 *   spool_dir/replicas/R/         exists: replica R is registered
 *   spool_dir/replicas/R/NAME     hard link to wal/NAME: R still needs NAME
 *   spool_dir/replicas/R/LOST     what R lost (spool overflow), durable
 *   spool_dir/replicas/R/AWAY     where R stood when it left (status only, no fsync)
 *   spool_dir/.incoming/          copies being made (removed at start)
 *   spool_dir/identity            the cluster shipped (spool_set_identity())
 *   spool_dir/reported            where the stream's reported flush position was
 *                                 (spool_set_reported())
 *
 * A file is held as long as some replica directory links it; when the last claim goes,
 * wal/NAME goes.  Everything is plain directory state, so a restart resumes from exactly
 * what is on disk.  Creating a copy is durable before it is claimed: copy, fsync, rename
 * into wal/ (never replacing), fsync wal/, link into each replica's directory, fsync those.
 * Releasing a claim needs no fsync: a claim that reappears after a crash only makes the
 * file go again, and the replica answers it as a duplicate.
 *
 * These functions block (copy and fsync): the primary runs spool_store() on a worker
 * thread.  The others are quick metadata operations, run on the event loop, and may run
 * while spool_store() works on the same name: a release removes a claim, and the copy
 * once no claim links it, which must not happen between the moment spool_store() has the
 * copy in wal/ (made, or a held one reused) and the moment its claims link it.  So
 * spool_store() pins the name for as long as it works on it (a list under a mutex, held
 * only for that list and the release's check of the link count, never across I/O that
 * waits on the disk): a release of a pinned name removes the claim alone, and the store,
 * when it is done, removes the copy if nothing claims it any more.
 */
#ifndef WALSHIP_WAL_SPOOL_H
#define WALSHIP_WAL_SPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "wal/identity.h"

/* A name spool_store() works on (on its stack, in spool.pinned while it runs). */
struct spool_pin {
	const char *file;
	struct spool_pin *next;
};

struct spool {
	char path[4096];
	int dir_fd;
	int wal_fd;
	int replicas_fd;
	int incoming_fd;
	uint64_t used_bytes; /* sum of the sizes of wal/ files */
	/* of them, timeline history files, kept for good (spool_keep_history()): no release
	 * of a replica frees them (atomic: added on the worker thread) */
	uint64_t kept_bytes;
	/* set (atomically) when the daemon stops: a drop's release ends where it is and is
	 * finished at the next spool_open(), so that a stop is not held up by it */
	bool stopping;
	/* set (atomically) when a copy no claim holds could not be removed (an I/O error, an
	 * immutable file; logged) where no caller is told (a release, a store's end, a drop
	 * of a folder removed by hand): it still counts in used_bytes, and its removal is
	 * owed (spool_remove_unclaimed(), the primary's dropper) */
	bool unclaimed_left;
	/* failures to remove a copy no claim holds, ever (atomic: status) */
	uint64_t unremovable;
	/* such failures not logged yet, and when the last was (under @lock) */
	uint64_t left_unlogged;
	int64_t left_logged_ms;
	uint64_t files;
	pthread_mutex_t lock; /* guards pinned, and a release's removal of a copy */
	struct spool_pin *pinned; /* the names spool_store() works on */
};

/* Open (creating if needed) the spool at @path; discard leftovers of interrupted copies;
 * count what it holds.  Returns 0 or -errno (logged). */
int spool_open(struct spool *sp, const char *path);
void spool_close(struct spool *sp);

/* Register replica @name (durably).  Returns 1 if it was new, 0 if already registered,
 * -errno on error (logged); -EINVAL for a name node_name_valid() refuses. */
int spool_register(struct spool *sp, const char *name);

/* Make the registrations durable (fsync of replicas/): for one found made but missing
 * from the caller's list, whose fsync may have failed.  Returns 0 or -errno (logged). */
int spool_sync_registered(struct spool *sp);

/* Names of the registered replicas, sorted, as a malloc'd array of malloc'd strings
 * (free with spool_free_names()).  Returns the count or -errno. */
int spool_replicas(struct spool *sp, char ***names);

/* WAL file names replica @name still needs, in WAL order (sorted by name).  Returns the
 * count or -errno. */
int spool_backlog(struct spool *sp, const char *name, char ***names);

void spool_free_names(char **names, int count);

/*
 * Store the @size bytes of @src_fd durably as wal/@file (file_copy(): in the kernel,
 * across file systems too) and claim it for each of the @nreplicas replicas.  If wal/@file already exists
 * with the same content (a retried push) it is reused; with different content the call
 * fails with -EEXIST.  On error nothing is claimed.  Fills @err (at least 256 bytes) with
 * the reason.  A replica of @replicas that is not registered any more (its directory
 * gone: dropped meanwhile by spool_drop(), or removed by hand) is skipped, and
 * @gone[i] set for it (@gone: NULL, or @nreplicas entries the caller cleared).  Other
 * threads may release claims on @file meanwhile (spool_release(),
 * spool_release_all_lost(), spool_drop()): the copy stays until the store is done, and
 * goes then if no claim is left.  The caller must not run two spool_store() for the same
 * name at once.
 */
int spool_store(struct spool *sp, int src_fd, const char *file, uint64_t size,
		char *const *replicas, int nreplicas, bool *gone, char *err, size_t errlen);

/* Replica @name no longer needs @file: drop its claim, and the file with the last claim
 * (unless a spool_store() of @file is under way: it drops the file then, when it is done).
 * Returns 1 if a claim was dropped, 0 if there was none, -errno on error. */
int spool_release(struct spool *sp, const char *name, const char *file);

/* Forget replica @name: every claim, then its registration (its directory), also against
 * a spool_store() claiming a file for it meanwhile; stores that begin after hold nothing
 * for it.  Returns 0 or -errno. */
int spool_drop(struct spool *sp, const char *name);

/* spool_drop() in two steps: spool_unregister() takes @name out of the registered
 * replicas durably (one rename: a crash after it leaves a drop that spool_open()
 * finishes, before it a registered replica), spool_release_dropped() then releases its
 * claims, however many.  Each returns 0 or -errno.  spool_unregister() returns 0 once
 * the rename is done, even if the fsync of replicas/ after it fails (logged as a
 * warning): @name is unregistered for every store from then on; and 0 when @name's
 * directory is not there (removed by hand), spool_release_dropped() then removing the
 * copies no claim holds (spool_remove_unclaimed(); returning 0 when one could not be,
 * which may be no copy of @name's: unclaimed_left is set). */
int spool_unregister(struct spool *sp, const char *name);
int spool_release_dropped(struct spool *sp, const char *name);

/* Whether replica @name is registered: false only when replicas/@name is known gone
 * (ENOENT), true when it exists or cannot be looked at. */
bool spool_registered(struct spool *sp, const char *name);

/* Remove the copies in wal/ that no claim holds (history files aside), as spool_open()
 * does: those of a replica whose directory was removed by hand, its claims with it.  A
 * store's copy not claimed yet is left (pinned).  Blocking (a listing of wal/): for a
 * worker thread.  Stops early when the daemon stops.  Returns the count removed, or
 * -errno when wal/ could not be listed or a copy no claim holds could not be removed
 * (logged; the others are removed all the same, and the failed ones still count in
 * used_bytes). */
int spool_remove_unclaimed(struct spool *sp);

/* WAL a replica was marked as having lost (spool overflow, release_slowest policy). */
struct spool_lost {
	uint64_t files; /* 0: nothing lost */
	char first[48], last[48]; /* the range, in WAL order */
};

/*
 * Release every claim of replica @name and record (durably, in replicas/NAME/LOST) that
 * it lost them, merged with what it lost before; @out receives the merged record,
 * @released the number of claims released now, @kept how many could not be (the replica
 * still holds them: not in the record, so that a release of them again counts them
 * once), @unremoved how many files kept their room: those claims, and the copies no
 * claim holds any more that could not be removed (owed: unclaimed_left).  Returns 0 or
 * -errno (logged).
 */
int spool_release_all_lost(struct spool *sp, const char *name, struct spool_lost *out,
			   uint64_t *released, uint64_t *kept, uint64_t *unremoved);

/* What replica @name lost (zeroed when nothing).  Returns 0 or -errno. */
int spool_read_lost(struct spool *sp, const char *name, struct spool_lost *out);

/*
 * Replica @name's status note (replicas/NAME/AWAY, one line the caller formats): where it
 * stood when it left, so that `walship status` still says it after walshipd restarts.
 * Status only, so not durable: written to a temporary file renamed over the last one,
 * with no fsync (quick enough for the event loop); a crash may leave the one before, or
 * none.  spool_put_away() returns 0 or -errno; spool_get_away() the note's length (0:
 * none) or -errno; spool_clear_away() removes it (nothing when it is not there).
 */
#define SPOOL_AWAY_MAX 256
int spool_put_away(struct spool *sp, const char *name, const char *note);
int spool_get_away(struct spool *sp, const char *name, char *buf, size_t size);
void spool_clear_away(struct spool *sp, const char *name);

/* The cluster the primary ships, recorded durably at the first push (spool_dir/identity). */
/* Read the recorded identity (zeroed if none).  Returns 0 or -errno. */
int spool_get_identity(struct spool *sp, struct wal_identity *id);

/* Record @id: temporary file, fsync, rename, directory fsync.  Returns 0 or -errno. */
int spool_set_identity(struct spool *sp, const struct wal_identity *id);

/*
 * The stream's record (spool_dir/reported, one line "SYSID TIMELINE X/X CRC", CRC the
 * CRC-32C of the text before it, 8 hex digits): a flush
 * position the primary reported to PostgreSQL, of the WAL then durable on sync_replicas
 * replicas.  A walshipd started again streams from there (role/primary_stream.c).
 */
struct spool_reported {
	uint64_t system_identifier; /* 0: no record */
	uint32_t timeline;
	uint64_t lsn;
};

/* Read the record (zeroed if none).  Returns 0 or -errno (logged; -EINVAL: not valid). */
int spool_get_reported(struct spool *sp, struct spool_reported *out);

/* Write @r: temporary file, fsync, rename, directory fsync.  Returns 0 or -errno. */
int spool_set_reported(struct spool *sp, const struct spool_reported *r);

/*
 * Keep timeline history file @file (@len bytes of @content) in wal/ for good, claimed or
 * not: a held NAME.partial of the timeline it ends is compared with another push of it
 * (PostgreSQL's own, after a promotion) only up to the switch point this file gives
 * (store_same_wal()); without it the two, whose bytes past that point differ, conflict
 * and the push fails for as long as the replica it is held for stays away.  A durable
 * write (fsyncs) the first time, a read after: for a worker thread.  Returns 0 (also when
 * it is there already, the same), or -errno (logged).
 */
int spool_keep_history(struct spool *sp, const char *file, const void *content, size_t len);

/* Whether replica @name has a claim on @file (replicas/@name/@file exists). */
bool spool_holds(struct spool *sp, const char *name, const char *file);
/* The same, and when the copy was written (its modification time) in *@since. */
bool spool_holds_since(struct spool *sp, const char *name, const char *file, time_t *since);

/* Open wal/@file read-only.  Returns the descriptor or -errno. */
int spool_open_file(struct spool *sp, const char *file);

#endif /* WALSHIP_WAL_SPOOL_H */
