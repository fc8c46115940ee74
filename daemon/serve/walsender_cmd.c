// SPDX-License-Identifier: MIT
/*
 * The walsender endpoint's replication commands (walsender_int.h): IDENTIFY_SYSTEM, SHOW,
 * TIMELINE_HISTORY, the physical replication slots' commands and START_REPLICATION.
 */
#include "serve/walsender_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/pgrepl.h"
#include "serve/pgwire.h"
#include "serve/slots.h"
#include "wal/name.h"

static void sb_no_slot(struct standby *sb, const char *name);

/* The connection holding @slot, 0 none: the one streaming through it, or the owner of a
 * temporary slot, which PostgreSQL keeps acquired by the backend that made it for as long
 * as that backend lives (slot.c ReplicationSlotRelease() releases persistent slots only). */
static uint32_t slot_holder(const struct serve_slot *slot)
{
	if (slot->active_pid)
		return slot->active_pid;
	return slot->temporary ? slot->owner_pid : 0;
}

/* ---- commands ---- */

static void sb_row(struct standby *sb, unsigned int n, const char *const *names,
		   const uint32_t *oids, const char *const *values, const size_t *lens,
		   const char *tag)
{
	pgwire_row_description(&sb->out, n, names, oids);
	pgwire_data_row(&sb->out, n, values, lens);
	pgwire_command_complete(&sb->out, tag);
	pgwire_ready(&sb->out);
}

static void sb_identify_system(struct standby *sb)
{
	struct serve *s = sb->s;
	static const char *const names[] = { "systemid", "timeline", "xlogpos", "dbname" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_INT4, PGWIRE_OID_TEXT,
					 PGWIRE_OID_TEXT };
	char sysid[24], tli[12], pos[PGREPL_LSN_TEXT];
	const char *values[4] = { sysid, tli, pos, NULL };
	size_t lens[4];

	if (!s->store->id.system_identifier || !s->tli) {
		sb_error(sb, "ERROR", "55000", "this appliance holds no WAL yet");
		return;
	}
	snprintf(sysid, sizeof(sysid), "%" PRIu64, s->store->id.system_identifier);
	snprintf(tli, sizeof(tli), "%u", s->tli);
	pgrepl_lsn_format(s->end_lsn, pos, sizeof(pos));
	for (int i = 0; i < 3; i++)
		lens[i] = strlen(values[i]);
	lens[3] = 0;
	sb_row(sb, 4, names, oids, values, lens, "IDENTIFY_SYSTEM");
}

static void sb_show(struct standby *sb, const char *name)
{
	uint32_t seg_size = sb->s->store->id.seg_size;
	const uint32_t oid = PGWIRE_OID_TEXT;
	char value[32];
	const char *v = value;
	size_t len;

	if (!strcmp(name, "wal_segment_size") && seg_size) {
		if (seg_size % (1024 * 1024 * 1024) == 0)
			snprintf(value, sizeof(value), "%uGB", seg_size / (1024 * 1024 * 1024));
		else
			snprintf(value, sizeof(value), "%uMB", seg_size / (1024 * 1024));
	} else if (!strcmp(name, "data_directory_mode")) {
		snprintf(value, sizeof(value), "0700");
	} else if (!strcmp(name, "archive_mode")) {
		snprintf(value, sizeof(value), "off"); /* an appliance pushes nothing */
	} else {
		sb_error(sb, "ERROR", "42704", "unrecognized configuration parameter \"%s\"", name);
		return;
	}
	len = strlen(value);
	sb_row(sb, 1, (const char *const *)&name, &oid, &v, &len, "SHOW");
}

static void sb_timeline_history(struct standby *sb, uint32_t tli)
{
	static const char *const names[] = { "filename", "content" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_BYTEA };
	char name[32];
	char *content = malloc(WAL_HISTORY_MAX);
	const char *values[2] = { name, content };
	size_t lens[2];
	ssize_t n;

	snprintf(name, sizeof(name), "%08X.history", tli);
	if (!content) {
		sb_error(sb, "FATAL", "53200", "out of memory");
		return;
	}
	/* The RowDescription first, as walsender.c SendTimeLineHistory() sends it before it
	 * opens the file: a file not held is an ErrorResponse after it. */
	pgwire_row_description(&sb->out, 2, names, oids);
	n = wal_history_read(sb->s->store->dir_fd, tli, content);
	if (n < 0) {
		sb_error(sb, "ERROR", "58P01", "could not open file \"pg_wal/%s\": %s", name,
			 strerror((int)-n));
		free(content);
		return;
	}
	lens[0] = strlen(name);
	lens[1] = (size_t)n;
	pgwire_data_row(&sb->out, 2, values, lens);
	pgwire_command_complete(&sb->out, "TIMELINE_HISTORY");
	pgwire_ready(&sb->out);
	free(content);
}

/*
 * START_REPLICATION on timeline @tli older than the newest: where it ended, from the
 * newest timeline's history (sb->stop_lsn, sb->next_tli), so that the stream stops there
 * with the end of timeline of walsender.c.  Returns 0, -EAGAIN when @wait and that
 * history is not stored yet, or -1 when the standby has been answered with an error.
 */
int sb_find_fork(struct standby *sb, uint32_t tli, uint64_t start, bool wait)
{
	struct serve *s = sb->s;
	char *text = malloc(WAL_HISTORY_MAX);
	char at[PGREPL_LSN_TEXT], fork[PGREPL_LSN_TEXT];
	ssize_t n = text ? wal_history_read(s->store->dir_fd, s->tli, text) : -ENOMEM;
	int ret = n < 0 ? (int)n :
			  wal_history_fork(text, (size_t)n, s->tli, tli, &sb->stop_lsn,
					   &sb->next_tli);

	free(text);
	if (wait && n == -ENOENT)
		return -EAGAIN;
	pgrepl_lsn_format(start, at, sizeof(at));
	/* PostgreSQL's words and SQLSTATE (XX000: errmsg() without errcode()) in
	 * timeline.c tliSwitchPoint() and walsender.c StartReplication() */
	if (ret < 0 || tli > s->tli) {
		if (ret < 0 && ret != -ENOENT)
			log_warning("could not read the history of timeline %u: %s", s->tli,
				    strerror(-ret));
		sb_error(sb, "ERROR", "XX000",
			 "requested timeline %u is not in this server's history", tli);
		return -1;
	}
	if (start > sb->stop_lsn) {
		char detail[128];

		pgrepl_lsn_format(sb->stop_lsn, fork, sizeof(fork));
		snprintf(detail, sizeof(detail),
			 "This server's history forked from timeline %u at %s.", tli, fork);
		sb_error_detail(sb, "ERROR", "XX000", detail, NULL,
				"requested starting point %s on timeline %u is not in this "
				"server's history",
				at, tli);
		return -1;
	}
	return 0;
}

static void sb_start_replication(struct standby *sb, const struct pgwire_command *cmd)
{
	struct serve *s = sb->s;
	char start[PGREPL_LSN_TEXT], end[PGREPL_LSN_TEXT];
	uint32_t tli = cmd->timeline ? cmd->timeline : s->tli;

	if (cmd->logical) {
		sb_error(sb, "ERROR", "0A000",
			 "logical replication is not supported: walship serves physical "
			 "replication only");
		return;
	}
	if (!s->store->id.system_identifier || !s->tli || !s->store->id.seg_size) {
		sb_error(sb, "ERROR", "55000", "this appliance holds no WAL yet");
		return;
	}
	pgrepl_lsn_format(cmd->start, start, sizeof(start));
	sb->stop_lsn = 0;
	sb->next_tli = 0;
	if (cmd->slot[0]) { /* walsender.c StartReplication(): ReplicationSlotAcquire() */
		struct serve_slot *slot = serve_slots_find(&s->slots, cmd->slot);

		if (!slot) {
			sb_no_slot(sb, cmd->slot);
			return;
		}
		if (slot_holder(slot) && slot_holder(slot) != sb->pid) {
			sb_error(sb, "ERROR", "55006",
				 "replication slot \"%s\" is active for PID %u", cmd->slot,
				 slot_holder(slot));
			return;
		}
		sb->slot_p = slot;
	}
	if (tli != s->tli && sb_find_fork(sb, tli, cmd->start, false) < 0)
		return; /* answered, the slot released */
	if (sb->slot_p)
		sb->slot_p->active_pid = sb->pid;
	snprintf(sb->slot, sizeof(sb->slot), "%s", cmd->slot);
	sb->tli = tli;
	sb->next_lsn = cmd->start;
	sb->copy_done_sent = false;
	sb->state = SB_STREAMING;
	sb->ping_sent = false;
	sb->last_rx_ms = clock_listen_ms();
	pgwire_copy_both(&sb->out);
	if (!sb->stop_lsn && cmd->start > s->end_lsn) {
		pgrepl_lsn_format(s->end_lsn, end, sizeof(end));
		sb_error(sb, "ERROR", "XX000",
			 "requested starting point %s is ahead of the WAL flush position of this "
			 "server %s",
			 start, end);
		return; /* the stream ended: the connection takes commands again */
	}
	log_log("standby \"%s\" (%s) streams from %s on timeline %u", sb->app, sb->addr, start,
		tli);
	sb_pump(sb);
}

/* The slot named in a command is missing: PostgreSQL's words (slot.c). */
static void sb_no_slot(struct standby *sb, const char *name)
{
	sb_error(sb, "ERROR", "42704", "replication slot \"%s\" does not exist", name);
}

/* CREATE_REPLICATION_SLOT's answer: @slot exists (a permanent one durably). */
static void sb_slot_created(struct standby *sb, const struct serve_slot *slot)
{
	static const char *const names[] = { "slot_name", "consistent_point", "snapshot_name",
					     "output_plugin" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_TEXT, PGWIRE_OID_TEXT,
					 PGWIRE_OID_TEXT };
	char pos[PGREPL_LSN_TEXT];
	const char *values[4] = { slot->name, pos, NULL, NULL };
	size_t lens[4] = { strlen(slot->name), 0, 0, 0 };

	pgrepl_lsn_format(slot->restart_lsn, pos, sizeof(pos));
	log_log("replication slot \"%s\" created%s by \"%s\" (%s), restart LSN %s", slot->name,
		slot->temporary ? " (temporary)" : "", sb->app, sb->addr, pos);
	lens[1] = strlen(pos);
	sb_row(sb, 4, names, oids, values, lens, "CREATE_REPLICATION_SLOT");
}

/* DROP_REPLICATION_SLOT's answer: the slot @name is gone (a permanent one durably). */
static void sb_slot_dropped(struct standby *sb, const char *name)
{
	log_log("replication slot \"%s\" dropped by \"%s\" (%s)", name, sb->app, sb->addr);
	pgwire_command_complete(&sb->out, "DROP_REPLICATION_SLOT");
	pgwire_ready(&sb->out);
}

/* The write of sb_slot_save() ended: the command is answered, and @sb takes commands
 * again.  A failed write undoes the change in memory, the slot created gone, the slot
 * dropped kept (and has the file written again within a second: a newer text may have
 * been written after it). */
static void sb_slot_saved(void *ctx, int ret)
{
	struct standby *sb = ctx;
	struct serve_slots *ss = &sb->s->slots;
	struct serve_slot *slot = NULL;

	sb->slot_saving = false;
	for (unsigned int i = 0; !slot && i < SERVE_MAX_SLOTS; i++)
		if (ss->slot[i].name[0] && ss->slot[i].incarnation == sb->saving_incarnation)
			slot = &ss->slot[i];
	/* (held by @sb while written: nobody else dropped or used it) */
	if (slot && slot->active_pid == sb->pid)
		slot->active_pid = 0;
	if (sb->saving_drop) {
		char name[SERVE_SLOT_NAME_MAX + 1] = "";

		if (slot)
			snprintf(name, sizeof(name), "%s", slot->name);
		if (slot && ret < 0) {
			/* kept; the file is written again within a second (a later text
			 * without it may have been written after the failed one) */
			slot->dropping = false;
			ss->dirty = true;
		} else if (slot) {
			memset(slot, 0, sizeof(*slot));
		}
		if (ret < 0 && !sb->closing)
			sb_error(sb, "ERROR", "58030", "could not remove replication slot \"%s\"",
				 name);
		else if (ret < 0)
			log_warning("replication slot \"%s\" was not dropped", name);
		else if (!sb->closing)
			sb_slot_dropped(sb, name);
		else
			log_log("replication slot \"%s\" dropped", name);
	} else {
		if (slot && ret < 0) {
			if (!sb->closing)
				sb_error(sb, "ERROR", "58030",
					 "could not save replication slot \"%s\"", slot->name);
			memset(slot, 0, sizeof(*slot));
			ss->dirty = true;
		} else if (slot && !sb->closing) {
			sb_slot_created(sb, slot);
		} else if (slot) {
			log_log("replication slot \"%s\" created", slot->name);
		}
	}
	/* Ended within sb_process() (a worker that runs jobs where they are submitted, as
	 * the fuzz target's): its loop goes on by itself; resumed from there, it would run
	 * inside itself and take rx from under it. */
	if (!sb->closing && !sb->processing)
		sb_resume(sb);
	sb_op_done(sb); /* (held while written: sb_slot_save()) */
}

/* The slots' file written for a permanent slot @sb created or dropped, off the event loop;
 * its commands wait for the answer.  Returns 0, or -ENOMEM (nothing changed in @sb). */
static int sb_slot_save(struct standby *sb, bool drop)
{
	sb->slot_saving = true;
	sb->saving_drop = drop;
	sb->inflight++; /* released by sb_slot_saved() */
	if (serve_slots_save_async(&sb->s->slots, sb_slot_saved, sb) < 0) {
		sb->slot_saving = false;
		sb->inflight--;
		return -ENOMEM;
	}
	return 0;
}

/*
 * CREATE_REPLICATION_SLOT name [TEMPORARY] PHYSICAL [RESERVE_WAL] (slots.h): with
 * RESERVE_WAL the slot keeps, from now on, the WAL from the durable end of what this
 * appliance holds; without, nothing until a standby streams through it and confirms a
 * flush.  A temporary slot goes with this connection.
 */
static void sb_create_slot(struct standby *sb, const struct pgwire_command *cmd)
{
	struct serve *s = sb->s;
	struct serve_slot *slot;
	int err;

	if (cmd->logical) {
		sb_error(sb, "ERROR", "0A000",
			 "logical replication slots are not supported by walship: physical "
			 "slots only");
		return;
	}
	/* 1 to 63 characters (the grammar's identifier): PostgreSQL's words for the rest
	 * (slot.c ReplicationSlotValidateName()) */
	if (serve_slot_name_valid(cmd->slot) < 0) {
		sb_error_detail(sb, "ERROR", "42602", NULL,
				"Replication slot names may only contain lower case letters, "
				"numbers, and the underscore character.",
				"replication slot name \"%s\" contains invalid character",
				cmd->slot);
		return;
	}
	slot = serve_slots_add(&s->slots, cmd->slot, cmd->reserve_wal ? s->end_lsn : 0, s->tli,
			       cmd->temporary, &err);
	if (!slot) {
		if (err == -EEXIST)
			sb_error(sb, "ERROR", "42710", "replication slot \"%s\" already exists",
				 cmd->slot);
		else
			sb_error(sb, "ERROR", "53400", "all replication slots are in use");
		return;
	}
	slot->owner_pid = sb->pid;
	if (!slot->temporary) {
		/* Held by this connection until it is durable, as PostgreSQL's creating
		 * backend holds it: nobody streams through it, nor drops it, meanwhile. */
		slot->active_pid = sb->pid;
		sb->saving_incarnation = slot->incarnation;
		if (sb_slot_save(sb, false) < 0) {
			memset(slot, 0, sizeof(*slot));
			sb_error(sb, "ERROR", "58030", "could not save replication slot \"%s\"",
				 cmd->slot);
		}
		return; /* answered once written (sb_slot_saved()) */
	}
	sb_slot_created(sb, slot);
}

/* Drop the slot of DROP_REPLICATION_SLOT; with WAIT, once it is inactive.  Returns false
 * when it must wait (sb->drop_waiting set; tried again by serve_tick()). */
bool sb_drop_slot(struct standby *sb, const char *name, bool wait)
{
	struct serve *s = sb->s;
	struct serve_slot *slot = serve_slots_find(&s->slots, name);

	sb->drop_waiting = false;
	if (!slot) {
		sb_no_slot(sb, name);
		return true;
	}
	if (slot_holder(slot) && slot_holder(slot) != sb->pid) {
		if (wait) {
			/* serve_tick() tries again with @name = sb->slot: no copy onto itself
			 * (an overlapping snprintf(), which emptied the name) */
			if (name != sb->slot)
				snprintf(sb->slot, sizeof(sb->slot), "%s", name);
			sb->drop_waiting = true;
			return false;
		}
		sb_error(sb, "ERROR", "55006", "replication slot \"%s\" is active for PID %u", name,
			 slot_holder(slot));
		return true;
	}
	if (!slot->temporary) {
		/* Held by this connection, as PostgreSQL's dropping backend holds it, and kept
		 * (by retention too) until the file without it is durable. */
		slot->dropping = true;
		slot->active_pid = sb->pid;
		sb->saving_incarnation = slot->incarnation;
		if (sb_slot_save(sb, true) < 0) {
			slot->dropping = false;
			slot->active_pid = 0;
			sb_error(sb, "ERROR", "58030", "could not remove replication slot \"%s\"",
				 name);
		}
		return true; /* answered once written (sb_slot_saved()) */
	}
	(void)serve_slots_drop(&s->slots, slot); /* (temporary: nothing written) */
	sb_slot_dropped(sb, name);
	return true;
}

/* READ_REPLICATION_SLOT (PostgreSQL 15): its type, restart LSN and timeline, all NULL
 * when there is no such slot. */
static void sb_read_slot(struct standby *sb, const char *name)
{
	static const char *const names[] = { "slot_type", "restart_lsn", "restart_tli" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_TEXT, PGWIRE_OID_INT8 };
	const struct serve_slot *slot = serve_slots_find(&sb->s->slots, name);
	char lsn[PGREPL_LSN_TEXT], tli[12];
	const char *values[3] = { NULL, NULL, NULL };
	size_t lens[3] = { 0, 0, 0 };

	if (slot) {
		values[0] = "physical";
		lens[0] = strlen(values[0]);
	}
	if (slot && slot->restart_lsn) {
		pgrepl_lsn_format(slot->restart_lsn, lsn, sizeof(lsn));
		snprintf(tli, sizeof(tli), "%u", slot->restart_tli);
		values[1] = lsn;
		values[2] = tli;
		lens[1] = strlen(lsn);
		lens[2] = strlen(tli);
	}
	sb_row(sb, 3, names, oids, values, lens, "READ_REPLICATION_SLOT");
}

void sb_query(struct standby *sb, const struct pgwire_msg *m)
{
	struct pgwire_command cmd;
	const char *text = (const char *)m->body;
	int ret;

	/* The query string, then nothing: PostgreSQL's ERRORs when it is not (pqformat.c
	 * pq_getmsgstring(), pq_getmsgend()) */
	if (strnlen(text, m->len) >= m->len) {
		sb_error(sb, "ERROR", "08P01", "invalid string in message");
		return;
	}
	if (strlen(text) + 1 != m->len) {
		sb_error(sb, "ERROR", "08P01", "invalid message format");
		return;
	}
	ret = pgwire_parse_command(text, &cmd);
	if (ret == -ERANGE) {
		sb_error(sb, "ERROR", "42601", "invalid timeline 0");
		return;
	}
	if (ret < 0) { /* as repl_gram.y's, the bare words */
		log_log("syntax error in replication command %s from %s", cmd.word, sb->addr);
		sb_error(sb, "ERROR", "42601", "syntax error");
		return;
	}
	switch (cmd.kind) {
	case PGWIRE_CMD_IDENTIFY_SYSTEM:
		sb_identify_system(sb);
		return;
	case PGWIRE_CMD_SHOW:
		sb_show(sb, cmd.show);
		return;
	case PGWIRE_CMD_TIMELINE_HISTORY:
		sb_timeline_history(sb, cmd.timeline);
		return;
	case PGWIRE_CMD_START_REPLICATION:
		sb_start_replication(sb, &cmd);
		return;
	case PGWIRE_CMD_CREATE_SLOT:
		sb_create_slot(sb, &cmd);
		return;
	case PGWIRE_CMD_DROP_SLOT:
		sb_drop_slot(sb, cmd.slot, cmd.wait);
		return;
	case PGWIRE_CMD_READ_SLOT:
		sb_read_slot(sb, cmd.slot);
		return;
	case PGWIRE_CMD_BASE_BACKUP:
		sb_error(sb, "ERROR", "0A000",
			 "BASE_BACKUP is not supported: walship serves WAL only, take base "
			 "backups from a PostgreSQL server");
		return;
	case PGWIRE_CMD_EMPTY:
	case PGWIRE_CMD_OTHER:
		/* PostgreSQL 15's answer to SQL on a physical walsender (walsender.c
		 * exec_replication_command(): ERRCODE_FEATURE_NOT_SUPPORTED), an empty query
		 * included: what does not start with a replication command's keyword is SQL
		 * to it (repl_scanner.l replication_scanner_is_replication_command()), and
		 * it answers no EmptyQueryResponse. */
		sb_error(sb, "ERROR", "0A000",
			 "cannot execute SQL commands in WAL sender for physical replication");
		return;
	}
}
