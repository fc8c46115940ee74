// SPDX-License-Identifier: MIT
/*
 * Physical replication slots of the walsender endpoint (slots.h): the table and its file.
 */
#include "serve/slots.h"

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

int serve_slot_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (!n || n > SERVE_SLOT_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '_'))
			return -EINVAL;
	return 0;
}

static void state_path(const struct store *st, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", st->path, STORE_STATE_DIR);
}

/* Parse one line "NAME RESTART_LSN RESTART_TLI" into @slot.  Returns 0 or -EINVAL. */
static int parse_line(char *line, struct serve_slot *slot)
{
	char *name = strtok(line, " "), *lsn = strtok(NULL, " "), *tli = strtok(NULL, " ");
	char *end;
	unsigned long v;

	if (!name || !lsn || !tli || strtok(NULL, " ") || serve_slot_name_valid(name) < 0 ||
	    pgrepl_lsn_parse(lsn, &slot->restart_lsn) < 0)
		return -EINVAL;
	errno = 0;
	v = strtoul(tli, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	slot->restart_tli = (uint32_t)v;
	return 0;
}

static void slots_save_run(struct worker_job *job);
static void slots_save_done(struct worker_job *job);

int serve_slots_load(struct serve_slots *ss, const struct store *store, struct worker *worker)
{
	char path[sizeof(store->path) + 16];
	char *text, *line, *save = NULL;
	ssize_t n;
	unsigned int i = 0;
	int fd, ret = 0;

	memset(ss, 0, sizeof(*ss));
	ss->store = store;
	ss->worker = worker;
	pthread_mutex_init(&ss->write_lock, NULL);
	ss->save.ss = ss;
	ss->save.job.run = slots_save_run;
	ss->save.job.done = slots_save_done;
	state_path(store, path, sizeof(path));
	fd = openat(store->dir_fd, STORE_STATE_DIR "/" SERVE_SLOTS_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		log_error("could not open file \"%s/%s\": %s", path, SERVE_SLOTS_FILE,
			  strerror(errno));
		return ret;
	}
	text = malloc(SERVE_SLOTS_TEXT_MAX + 1);
	if (!text) {
		close(fd);
		log_error("out of memory");
		return -ENOMEM;
	}
	n = read(fd, text, SERVE_SLOTS_TEXT_MAX + 1);
	if (n < 0) {
		ret = -errno;
		log_error("could not read file \"%s/%s\": %s", path, SERVE_SLOTS_FILE,
			  strerror(errno));
		goto out;
	}
	if (n > SERVE_SLOTS_TEXT_MAX) {
		ret = -EFBIG;
		log_error("file \"%s/%s\" is too large", path, SERVE_SLOTS_FILE);
		goto out;
	}
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (i >= SERVE_MAX_SLOTS || parse_line(line, &ss->slot[i]) < 0) {
			ret = -EINVAL;
			log_error("invalid replication slot line %u in file \"%s/%s\"", i + 1, path,
				  SERVE_SLOTS_FILE);
			goto out;
		}
		ss->slot[i].saved_lsn = ss->slot[i].restart_lsn;
		ss->slot[i].incarnation = ++ss->incarnations;
		i++;
	}
	if (i)
		log_log("%u replication slot(s) restored from \"%s/%s\"", i, path,
			SERVE_SLOTS_FILE);
out:
	free(text);
	close(fd);
	if (ret < 0)
		memset(ss->slot, 0, sizeof(ss->slot));
	return ret;
}

void serve_slots_snapshot(struct serve_slots *ss, struct serve_slots_save *sv)
{
	sv->gen = ++ss->gen;
	sv->len = 0;
	for (unsigned int i = 0; i < SERVE_MAX_SLOTS; i++) {
		const struct serve_slot *sl = &ss->slot[i];
		char lsn[PGREPL_LSN_TEXT];

		sv->incarnation[i] = 0;
		if (!sl->name[0] || sl->temporary || sl->dropping)
			continue;
		pgrepl_lsn_format(sl->restart_lsn, lsn, sizeof(lsn));
		sv->len += (size_t)snprintf(sv->text + sv->len, sizeof(sv->text) - sv->len,
					    "%s %s %u\n", sl->name, lsn, sl->restart_tli);
		sv->incarnation[i] = sl->incarnation;
		sv->lsn[i] = sl->restart_lsn;
	}
}

int serve_slots_write(struct serve_slots *ss, struct serve_slots_save *sv)
{
	int ret = 1;

	pthread_mutex_lock(&ss->write_lock);
	if (sv->gen > ss->written_gen) {
		ret = store_state_put(ss->store, SERVE_SLOTS_FILE, sv->text, sv->len); /* logs */
		if (ret == 0)
			ss->written_gen = sv->gen;
	}
	pthread_mutex_unlock(&ss->write_lock);
	return ret;
}

void serve_slots_written(struct serve_slots *ss, const struct serve_slots_save *sv)
{
	for (unsigned int i = 0; i < SERVE_MAX_SLOTS; i++) {
		struct serve_slot *sl = &ss->slot[i];

		if (sv->incarnation[i] && sl->name[0] && sl->incarnation == sv->incarnation[i] &&
		    sv->lsn[i] > sl->saved_lsn)
			sl->saved_lsn = sv->lsn[i];
	}
}

/* Write the permanent slots durably, now (a slot created or dropped).  Returns 0 or
 * -errno (logged). */
static int slots_save(struct serve_slots *ss)
{
	struct serve_slots_save *sv = malloc(sizeof(*sv));
	int ret;

	if (!sv) {
		log_error("out of memory");
		return -ENOMEM;
	}
	serve_slots_snapshot(ss, sv);
	ret = serve_slots_write(ss, sv); /* (the newest text: never 1) */
	if (ret == 0) {
		serve_slots_written(ss, sv);
		ss->dirty = false;
		ss->saved_ms = clock_now_ms();
	}
	free(sv);
	return ret;
}

struct serve_slot *serve_slots_find(struct serve_slots *ss, const char *name)
{
	for (unsigned int i = 0; i < SERVE_MAX_SLOTS; i++)
		if (ss->slot[i].name[0] && !strcmp(ss->slot[i].name, name))
			return &ss->slot[i];
	return NULL;
}

struct serve_slot *serve_slots_add(struct serve_slots *ss, const char *name, uint64_t restart_lsn,
				   uint32_t tli, bool temporary, int *err)
{
	struct serve_slot *sl = NULL;

	if (serve_slots_find(ss, name)) {
		*err = -EEXIST;
		return NULL;
	}
	for (unsigned int i = 0; !sl && i < SERVE_MAX_SLOTS; i++)
		if (!ss->slot[i].name[0])
			sl = &ss->slot[i];
	if (!sl) {
		*err = -ENOSPC;
		return NULL;
	}
	memset(sl, 0, sizeof(*sl));
	snprintf(sl->name, sizeof(sl->name), "%s", name);
	sl->incarnation = ++ss->incarnations;
	sl->restart_lsn = restart_lsn;
	sl->restart_tli = tli;
	sl->temporary = temporary;
	*err = 0;
	return sl;
}

struct serve_slot *serve_slots_create(struct serve_slots *ss, const char *name,
				      uint64_t restart_lsn, uint32_t tli, bool temporary, int *err)
{
	struct serve_slot *sl = serve_slots_add(ss, name, restart_lsn, tli, temporary, err);

	if (sl && !temporary) {
		*err = slots_save(ss);
		if (*err < 0) {
			memset(sl, 0, sizeof(*sl));
			return NULL;
		}
	}
	return sl;
}

int serve_slots_drop(struct serve_slots *ss, struct serve_slot *slot)
{
	struct serve_slot old = *slot;
	int ret;

	memset(slot, 0, sizeof(*slot));
	if (old.temporary)
		return 0;
	ret = slots_save(ss);
	if (ret < 0)
		*slot = old;
	return ret;
}

/* A write of serve_slots_save_async(): the text, and whom to tell. */
struct slots_async {
	struct serve_slots_save save; /* first: its job is the worker's */
	serve_slots_saved_fn *fn;
	void *ctx;
};

static void slots_async_done(struct worker_job *job)
{
	struct slots_async *a = (struct slots_async *)job;
	/* 1: a newer text, which holds this one's change, was written first */
	int ret = a->save.ret > 0 ? 0 : a->save.ret;

	if (ret == 0)
		serve_slots_written(a->save.ss, &a->save);
	a->fn(a->ctx, ret);
	free(a);
}

int serve_slots_save_async(struct serve_slots *ss, serve_slots_saved_fn *fn, void *ctx)
{
	struct slots_async *a = malloc(sizeof(*a));

	if (!a)
		return -ENOMEM;
	memset(&a->save.job, 0, sizeof(a->save.job));
	a->save.ss = ss;
	a->save.job.run = slots_save_run;
	a->save.job.done = slots_async_done;
	a->fn = fn;
	a->ctx = ctx;
	serve_slots_snapshot(ss, &a->save);
	if (ss->worker) {
		worker_submit(ss->worker, &a->save.job);
		return 0;
	}
	slots_save_run(&a->save.job);
	slots_async_done(&a->save.job);
	return 0;
}

void serve_slots_advance(struct serve_slots *ss, struct serve_slot *slot, uint64_t lsn,
			 uint32_t tli)
{
	if (lsn <= slot->restart_lsn)
		return;
	slot->restart_lsn = lsn;
	slot->restart_tli = tli;
	if (!slot->temporary)
		ss->dirty = true;
}

static void slots_save_run(struct worker_job *job)
{
	struct serve_slots_save *sv = (struct serve_slots_save *)job;

	sv->ret = serve_slots_write(sv->ss, sv);
}

static void slots_save_done(struct worker_job *job)
{
	struct serve_slots_save *sv = (struct serve_slots_save *)job;

	sv->busy = false;
	if (sv->ret == 0)
		serve_slots_written(sv->ss, sv);
	else if (sv->ret < 0)
		sv->ss->dirty = true; /* (logged) tried again a second after it began */
}

void serve_slots_tick(struct serve_slots *ss, int64_t now_ms)
{
	struct serve_slots_save *sv = &ss->save;

	if (!ss->dirty || sv->busy || now_ms - ss->saved_ms < 1000)
		return;
	ss->saved_ms = now_ms;
	ss->dirty = false; /* what advances from now on is the next write's */
	serve_slots_snapshot(ss, sv);
	sv->busy = true;
	if (ss->worker) {
		worker_submit(ss->worker, &sv->job);
		return;
	}
	slots_save_run(&sv->job);
	slots_save_done(&sv->job);
}

void serve_slots_flush(struct serve_slots *ss)
{
	/* (a write the worker finished after the event loop stopped was not seen ending) */
	if (ss->dirty || (ss->save.busy && ss->save.ret < 0))
		(void)slots_save(ss); /* logs */
}

uint64_t serve_slots_oldest(const struct serve_slots *ss)
{
	uint64_t oldest = UINT64_MAX;

	for (unsigned int i = 0; i < SERVE_MAX_SLOTS; i++) {
		const struct serve_slot *sl = &ss->slot[i];
		/* A permanent slot whose file reserves nothing yet is restored reserving
		 * nothing: until the file says more, what it reserves in memory is kept. */
		uint64_t kept = sl->temporary || !sl->saved_lsn ? sl->restart_lsn : sl->saved_lsn;

		if (sl->name[0] && kept && kept < oldest)
			oldest = kept;
	}
	return oldest;
}
