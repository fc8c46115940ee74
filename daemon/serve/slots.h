/* SPDX-License-Identifier: MIT */
/*
 * Physical replication slots of the walsender endpoint (walsender.h), as PostgreSQL's
 * (slot.c, for physical slots only): a name and a restart LSN, the oldest WAL the slot's
 * client may still ask for, which the appliance keeps.  A permanent slot survives
 * restarts: the slots are written to archive_dir/.walship/slots (common/durable.h), one
 * line each, "NAME RESTART_LSN RESTART_TLI", when one is created or dropped, and when a
 * restart LSN advanced, at most once a second (serve_slots_tick()): after a crash a slot's
 * restart LSN may be older than it was, never newer, so it keeps at least what it must.
 * What retention keeps for a permanent slot is the restart LSN the file holds, not the
 * newer one in memory (as PostgreSQL saves its slots before a checkpoint removes WAL):
 * after a crash the slot never points at WAL already removed.  One whose file reserves
 * nothing yet (made without RESERVE_WAL) keeps its restart LSN in memory meanwhile: a
 * restart restores it reserving nothing.
 * A temporary slot lives in memory only and goes with its connection, or at the first
 * ERROR answered on it (as PostgreSQL drops temporary slots on error).
 *
 * Bookkeeping on the event loop's thread.  The file is written on the worker thread when a
 * client creates or drops a permanent slot (serve_slots_save_async(): the answer waits
 * until it is durable, the event loop does not), and when restart LSNs advanced (serve_slots_tick(): durable_put()'s two
 * fsyncs, once a second while a standby streams, must not hold up the loop that receives
 * the stream).  Writes are ordered by the generation of the text they write (taken on the
 * event loop): a text older than one written already is not written, so the file always
 * ends with the newest.
 */
#ifndef WALSHIP_SERVE_SLOTS_H
#define WALSHIP_SERVE_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>

#include "proto/pgrepl.h"
#include "ring/worker.h"
#include "serve/pgwire.h"
#include "wal/store.h"

/* Slots at most, as PostgreSQL's max_replication_slots (its default). */
#define SERVE_MAX_SLOTS 10
/* The file under archive_dir/.walship. */
#define SERVE_SLOTS_FILE "slots"
/* A slot name's longest length, as PostgreSQL's NAMEDATALEN - 1. */
#define SERVE_SLOT_NAME_MAX 63
/* The file's largest size: a line per slot. */
#define SERVE_SLOTS_TEXT_MAX (SERVE_MAX_SLOTS * (SERVE_SLOT_NAME_MAX + 2 * PGREPL_LSN_TEXT + 16))

struct serve_slot {
	char name[SERVE_SLOT_NAME_MAX + 1]; /* "" a free entry */
	uint64_t restart_lsn; /* 0: nothing reserved yet */
	uint64_t saved_lsn; /* a permanent slot's restart LSN as the file holds it */
	uint32_t restart_tli;
	bool temporary; /* dropped when the connection that made it, owner_pid, ends or is
			 * answered an ERROR */
	uint32_t owner_pid;
	uint32_t active_pid; /* the connection streaming through it, 0 none */
	uint64_t incarnation; /* which slot this entry holds (a name may be made again) */
	/* a client's drop being written (serve_slots_save_async()): held by the dropping
	 * connection (active_pid), left out of the file's text, still kept by retention
	 * until the file without it is durable */
	bool dropping;
};

struct serve_slots;

/* A text of the file and what it says each slot keeps. */
struct serve_slots_save {
	struct worker_job job; /* serve_slots_tick()'s, on serve_slots.worker */
	struct serve_slots *ss;
	uint64_t gen; /* serve_slots.gen when it was taken */
	size_t len;
	char text[SERVE_SLOTS_TEXT_MAX];
	uint64_t incarnation[SERVE_MAX_SLOTS]; /* of each entry written, 0: none */
	uint64_t lsn[SERVE_MAX_SLOTS]; /* its restart LSN as written */
	int ret; /* the write's: 0, 1 (not written: a newer text was), -errno */
	bool busy; /* submitted, its end not yet seen */
};

struct serve_slots {
	const struct store *store;
	struct serve_slot slot[SERVE_MAX_SLOTS];
	bool dirty; /* a permanent slot's restart LSN advanced since the file was written */
	int64_t saved_ms;
	uint64_t incarnations; /* entries made */
	struct worker *worker; /* serve_slots_tick()'s writes (NULL: on the caller's thread) */
	struct serve_slots_save save; /* serve_slots_tick()'s */
	uint64_t gen; /* texts taken (event loop) */
	pthread_mutex_t write_lock; /* one write at a time; guards written_gen */
	uint64_t written_gen; /* of the newest text written */
};

/*
 * Read the permanent slots of @store's archive_dir/.walship/slots (none when it does not
 * exist); the periodic writes go to @worker (NULL: on the caller's thread).  Returns 0,
 * or -errno (logged): an unreadable or damaged file is an error, the daemon must not
 * forget what a slot keeps.
 */
int serve_slots_load(struct serve_slots *ss, const struct store *store, struct worker *worker);

/* The slot named @name, NULL none. */
struct serve_slot *serve_slots_find(struct serve_slots *ss, const char *name);

/*
 * Check @name as PostgreSQL's ReplicationSlotValidateName(): 1 to 63 characters of a-z,
 * 0-9 and '_'.  Returns 0 or -EINVAL.
 */
int serve_slot_name_valid(const char *name);

/*
 * A new slot @name reserving @restart_lsn (0: nothing until it is streamed through) on
 * @tli; a permanent one is written durably before this returns.  Returns the slot, or NULL
 * with @err -EEXIST (the name is taken), -ENOSPC (SERVE_MAX_SLOTS in use) or the write's
 * -errno (logged; the slot is not created).
 */
struct serve_slot *serve_slots_create(struct serve_slots *ss, const char *name,
				      uint64_t restart_lsn, uint32_t tli, bool temporary, int *err);

/* Forget @slot; a permanent one is removed from the file durably.  Returns 0 or -errno
 * (logged; the slot is kept). */
int serve_slots_drop(struct serve_slots *ss, struct serve_slot *slot);

/* serve_slots_create() in memory only: the file is not written (serve_slots_save_async()
 * writes it). */
struct serve_slot *serve_slots_add(struct serve_slots *ss, const char *name, uint64_t restart_lsn,
				   uint32_t tli, bool temporary, int *err);

/* The end of serve_slots_save_async()'s write, on the event loop: @ret 0, or -errno
 * (logged). */
typedef void serve_slots_saved_fn(void *ctx, int ret);

/*
 * Write the permanent slots as they are now durably, on the worker thread (on the caller's
 * when there is none): a slot created or dropped by a client, whose answer waits for it,
 * and the event loop not for its two fsyncs.  @fn(@ctx, ret) is called once it is
 * written.  Returns 0, or -ENOMEM (@fn is not called).
 */
int serve_slots_save_async(struct serve_slots *ss, serve_slots_saved_fn *fn, void *ctx);

/* Its client confirmed WAL up to @lsn on @tli flushed: the restart LSN moves there, never
 * back.  Written by the next serve_slots_tick(). */
void serve_slots_advance(struct serve_slots *ss, struct serve_slot *slot, uint64_t lsn,
			 uint32_t tli);

/* Write the file, on the worker, when a restart LSN advanced and the last write is a
 * second old (one write at a time: the next tick after its end writes what advanced
 * meanwhile). */
void serve_slots_tick(struct serve_slots *ss, int64_t now_ms);

/* Take the text of the file as the slots are now (@sv: a new generation). */
void serve_slots_snapshot(struct serve_slots *ss, struct serve_slots_save *sv);

/* Write @sv's text unless a newer one was written; any thread.  Returns 0, 1 (not
 * written: a newer text was) or -errno (logged). */
int serve_slots_write(struct serve_slots *ss, struct serve_slots_save *sv);

/* @sv was written: what its slots keep is what it says, where it says more. */
void serve_slots_written(struct serve_slots *ss, const struct serve_slots_save *sv);

/* Write the file now if a restart LSN advanced since (at shutdown, the worker stopped). */
void serve_slots_flush(struct serve_slots *ss);

/* The oldest WAL any slot keeps (a permanent slot's restart LSN as written, a temporary
 * one's, or a permanent one's written as nothing reserved, as it is), UINT64_MAX when no
 * slot reserves WAL. */
uint64_t serve_slots_oldest(const struct serve_slots *ss);

#endif /* WALSHIP_SERVE_SLOTS_H */
