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
 * Pure bookkeeping, on the event loop's thread; the file is written synchronously (a few
 * hundred bytes, seldom).
 */
#ifndef WALSHIP_SERVE_SLOTS_H
#define WALSHIP_SERVE_SLOTS_H

#include <stdbool.h>
#include <stdint.h>

#include "serve/pgwire.h"
#include "wal/store.h"

/* Slots at most, as PostgreSQL's max_replication_slots (its default). */
#define SERVE_MAX_SLOTS 10
/* The file under archive_dir/.walship. */
#define SERVE_SLOTS_FILE "slots"
/* A slot name's longest length, as PostgreSQL's NAMEDATALEN - 1. */
#define SERVE_SLOT_NAME_MAX 63

struct serve_slot {
	char name[SERVE_SLOT_NAME_MAX + 1]; /* "" a free entry */
	uint64_t restart_lsn; /* 0: nothing reserved yet */
	uint64_t saved_lsn; /* a permanent slot's restart LSN as the file holds it */
	uint32_t restart_tli;
	bool temporary; /* dropped when the connection that made it, owner_pid, ends or is
			 * answered an ERROR */
	uint32_t owner_pid;
	uint32_t active_pid; /* the connection streaming through it, 0 none */
};

struct serve_slots {
	const struct store *store;
	struct serve_slot slot[SERVE_MAX_SLOTS];
	bool dirty; /* a permanent slot's restart LSN advanced since the file was written */
	int64_t saved_ms;
};

/*
 * Read the permanent slots of @store's archive_dir/.walship/slots (none when it does not
 * exist).  Returns 0, or -errno (logged): an unreadable or damaged file is an error, the
 * daemon must not forget what a slot keeps.
 */
int serve_slots_load(struct serve_slots *ss, const struct store *store);

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

/* Its client confirmed WAL up to @lsn on @tli flushed: the restart LSN moves there, never
 * back.  Written by the next serve_slots_tick(). */
void serve_slots_advance(struct serve_slots *ss, struct serve_slot *slot, uint64_t lsn,
			 uint32_t tli);

/* Write the file when a restart LSN advanced and the last write is a second old. */
void serve_slots_tick(struct serve_slots *ss, int64_t now_ms);

/* The oldest WAL any slot keeps (a permanent slot's restart LSN as written, a temporary
 * one's, or a permanent one's written as nothing reserved, as it is), UINT64_MAX when no
 * slot reserves WAL. */
uint64_t serve_slots_oldest(const struct serve_slots *ss);

#endif /* WALSHIP_SERVE_SLOTS_H */
