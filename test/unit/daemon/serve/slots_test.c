// SPDX-License-Identifier: MIT
/* Unit tests for daemon/serve/slots.c: the slot table, its file and the order of its
 * writes, the retention floor. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "ring/ring.h"
#include "ring/worker.h"
#include "serve/slots.h"
#include "wal/store.h"

static char dir[64];
static struct store st;

static int setup(void **state)
{
	(void)state;
	mkdir("build", 0755);
	snprintf(dir, sizeof(dir), "build/slots-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	log_set_level(LOG_LEVEL_WARNING);
	return store_open(&st, dir) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	store_close(&st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_slots_file(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_STATE_DIR, SERVE_SLOTS_FILE);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(serve_slot_name_valid("pg_walreceiver_77"), 0);
	assert_int_equal(serve_slot_name_valid(""), -EINVAL);
	assert_int_equal(serve_slot_name_valid("Upper"), -EINVAL);
	assert_int_equal(serve_slot_name_valid("a-b"), -EINVAL);
	assert_int_equal(serve_slot_name_valid("a b"), -EINVAL);
	assert_int_equal(
		serve_slot_name_valid(
			"a123456789012345678901234567890123456789012345678901234567890123"),
		-EINVAL);
}

/* Create, advance, floor, persist, load, drop: the file holds the permanent slots only. */
static void test_lifecycle(void **state)
{
	struct serve_slots ss, again;
	struct serve_slot *a, *b, *t;
	int err;

	(void)state;
	assert_int_equal(serve_slots_load(&ss, &st, NULL), 0); /* no file: no slots */
	assert_int_equal(serve_slots_oldest(&ss), UINT64_MAX);
	a = serve_slots_create(&ss, "a", 0x5000000, 1, false, &err);
	assert_non_null(a);
	assert_null(serve_slots_create(&ss, "a", 0, 1, false, &err));
	assert_int_equal(err, -EEXIST);
	b = serve_slots_create(&ss, "b", 0, 1, false, &err); /* reserves nothing */
	assert_non_null(b);
	t = serve_slots_create(&ss, "t", 0x3000000, 1, true, &err);
	assert_non_null(t);
	assert_int_equal(serve_slots_oldest(&ss), 0x3000000);
	assert_int_equal(serve_slots_drop(&ss, t), 0);
	assert_int_equal(serve_slots_oldest(&ss), 0x5000000);
	serve_slots_advance(&ss, a, 0x4000000, 1); /* never back */
	assert_int_equal(a->restart_lsn, 0x5000000);
	serve_slots_advance(&ss, a, 0x6000100, 2);
	assert_true(ss.dirty);
	/* Until the file says so, retention keeps what a restart would restore. */
	serve_slots_tick(&ss, ss.saved_ms + 999);
	assert_true(ss.dirty);
	assert_int_equal(serve_slots_oldest(&ss), 0x5000000);
	serve_slots_tick(&ss, ss.saved_ms + 1000);
	assert_false(ss.dirty);
	assert_int_equal(serve_slots_oldest(&ss), 0x6000100);

	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_non_null(serve_slots_find(&again, "a"));
	assert_int_equal(serve_slots_find(&again, "a")->restart_lsn, 0x6000100);
	assert_int_equal(serve_slots_find(&again, "a")->restart_tli, 2);
	assert_non_null(serve_slots_find(&again, "b"));
	assert_null(serve_slots_find(&again, "t"));
	assert_int_equal(serve_slots_oldest(&again), 0x6000100);

	assert_int_equal(serve_slots_drop(&ss, serve_slots_find(&ss, "a")), 0);
	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_null(serve_slots_find(&again, "a"));
	assert_non_null(serve_slots_find(&again, "b"));
	assert_int_equal(serve_slots_drop(&ss, serve_slots_find(&ss, "b")), 0);

	for (int i = 0; i < SERVE_MAX_SLOTS; i++) {
		char name[8];

		snprintf(name, sizeof(name), "s%d", i);
		assert_non_null(serve_slots_create(&ss, name, 0, 1, true, &err));
	}
	assert_null(serve_slots_create(&ss, "full", 0, 1, true, &err));
	assert_int_equal(err, -ENOSPC);
}

/* The slots' file cannot be written: its directory replaced by a file (and back). */
static void state_dir_path(char *state_dir, size_t len, char *away, size_t away_len)
{
	snprintf(state_dir, len, "%s/%s", dir, STORE_STATE_DIR);
	snprintf(away, away_len, "%s/away", dir);
}

static void state_dir_block(void)
{
	char state_dir[128], away[128];
	int fd;

	state_dir_path(state_dir, sizeof(state_dir), away, sizeof(away));
	assert_int_equal(rename(state_dir, away), 0);
	fd = open(state_dir, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static void state_dir_unblock(void)
{
	char state_dir[128], away[128];

	state_dir_path(state_dir, sizeof(state_dir), away, sizeof(away));
	assert_int_equal(unlink(state_dir), 0);
	assert_int_equal(rename(away, state_dir), 0);
}

/*
 * A permanent slot made without reserving WAL (CREATE_REPLICATION_SLOT without
 * RESERVE_WAL: its file says 0, nothing) and then advanced by its client keeps WAL from
 * there while the file does not say so yet: for up to a second, and for as long as the
 * file cannot be written.  A restart restores it reserving nothing, which points at no
 * removed WAL.
 */
static void test_unreserved_advanced(void **state)
{
	struct serve_slots ss;
	struct serve_slot *b;
	int err;

	(void)state;
	assert_int_equal(serve_slots_load(&ss, &st, NULL), 0);
	b = serve_slots_create(&ss, "b", 0, 1, false, &err);
	assert_non_null(b);
	assert_int_equal(serve_slots_oldest(&ss), UINT64_MAX);
	serve_slots_advance(&ss, b, 0x6000100, 1);
	assert_int_equal(serve_slots_oldest(&ss), 0x6000100);

	/* The file cannot be written (its directory replaced by a file): still kept. */
	state_dir_block();
	log_set_level(LOG_LEVEL_FATAL); /* the failed write is logged */
	serve_slots_tick(&ss, ss.saved_ms + 1000);
	log_set_level(LOG_LEVEL_WARNING);
	assert_true(ss.dirty);
	assert_int_equal(serve_slots_oldest(&ss), 0x6000100);
	state_dir_unblock();
	serve_slots_tick(&ss, ss.saved_ms + 1000);
	assert_false(ss.dirty);
	assert_int_equal(serve_slots_oldest(&ss), 0x6000100);
}

/*
 * The periodic write runs on a worker thread, after the event loop took its text: a slot
 * created meanwhile (written at once) must not be undone by the older text written after
 * it, and a slot dropped and made again under the same name must not take what the older
 * text said of the first one as what the file keeps for it.
 */
static void test_write_order(void **state)
{
	static struct serve_slots_save older;
	struct serve_slots ss, again;
	struct serve_slot *a;
	int err;

	(void)state;
	assert_int_equal(serve_slots_load(&ss, &st, NULL), 0);
	a = serve_slots_create(&ss, "a", 0x5000000, 1, false, &err);
	assert_non_null(a);
	serve_slots_advance(&ss, a, 0x7000000, 1);
	serve_slots_snapshot(&ss, &older); /* the worker's, not yet written */
	assert_non_null(serve_slots_create(&ss, "b", 0x6000000, 1, false, &err));
	assert_int_equal(serve_slots_write(&ss, &older), 1); /* older: not written */
	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_non_null(serve_slots_find(&again, "b"));
	assert_int_equal(serve_slots_find(&again, "a")->restart_lsn, 0x7000000);

	/* "a" dropped and made again, reserving nothing, before an older text's end. */
	serve_slots_advance(&ss, a, 0x8000000, 1);
	serve_slots_snapshot(&ss, &older);
	assert_int_equal(serve_slots_write(&ss, &older), 0);
	assert_int_equal(serve_slots_drop(&ss, a), 0);
	a = serve_slots_create(&ss, "a", 0, 1, false, &err);
	assert_non_null(a);
	serve_slots_advance(&ss, a, 0x2000000, 1);
	serve_slots_written(&ss, &older);
	assert_true(a->saved_lsn == 0); /* its file says nothing reserved */
	assert_int_equal(serve_slots_oldest(&ss), 0x2000000);
	assert_true(serve_slots_find(&ss, "b")->saved_lsn == 0x6000000);
}

/*
 * The periodic write on a real worker thread: the tick submits it and returns with the
 * slot's restart LSN not yet counted as written; its end (on the loop) counts it; a write
 * that fails is tried again at the next tick a second later; one the worker finished after
 * the loop stopped (its end not seen), failed, is written at shutdown (serve_slots_flush()).
 */
static void test_worker(void **state)
{
	struct serve_slots ss, again;
	struct serve_slot *a;
	struct worker w = { 0 };
	struct ring r;
	int err;

	(void)state;
	assert_int_equal(ring_init(&r, 16, 0, 0), 0);
	assert_int_equal(worker_start(&w, &r), 0);
	assert_int_equal(serve_slots_load(&ss, &st, &w), 0);
	a = serve_slots_create(&ss, "a", 0x5000000, 1, false, &err);
	assert_non_null(a);
	serve_slots_advance(&ss, a, 0x6000000, 1);
	serve_slots_tick(&ss, ss.saved_ms + 1000);
	assert_true(ss.save.busy);
	assert_int_equal(serve_slots_oldest(&ss), 0x5000000);
	while (worker_pending(&w))
		assert_true(ring_run(&r, 100) >= 0);
	assert_false(ss.save.busy);
	assert_int_equal(serve_slots_oldest(&ss), 0x6000000);
	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_int_equal(serve_slots_find(&again, "a")->restart_lsn, 0x6000000);

	/* The file cannot be written (its directory replaced by a file). */
	state_dir_block();
	log_set_level(LOG_LEVEL_FATAL); /* the failed writes are logged */
	serve_slots_advance(&ss, a, 0x7000000, 1);
	serve_slots_tick(&ss, ss.saved_ms + 1000);
	while (worker_pending(&w))
		assert_true(ring_run(&r, 100) >= 0);
	assert_true(ss.dirty); /* tried again */
	assert_int_equal(serve_slots_oldest(&ss), 0x6000000);
	serve_slots_tick(&ss, ss.saved_ms + 1000);
	worker_stop(&w); /* the loop stopped: its end is not seen */
	log_set_level(LOG_LEVEL_WARNING);
	assert_true(ss.save.busy && ss.save.ret < 0);
	state_dir_unblock();
	serve_slots_flush(&ss);
	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_int_equal(serve_slots_find(&again, "a")->restart_lsn, 0x7000000);
	ring_exit(&r);
}

static int saved_calls, saved_ret;

static void saved(void *ctx, int ret)
{
	assert_ptr_equal(ctx, &saved_calls);
	saved_calls++;
	saved_ret = ret;
}

/* A slot made or dropped by a client: its file written on the worker thread, the caller
 * told on the event loop once it is durable, or that it failed. */
static void test_save_async(void **state)
{
	struct serve_slots ss, again;
	struct serve_slot *a, *b;
	struct worker w = { 0 };
	struct ring r;
	int err;

	(void)state;
	assert_int_equal(ring_init(&r, 16, 0, 0), 0);
	assert_int_equal(worker_start(&w, &r), 0);
	assert_int_equal(serve_slots_load(&ss, &st, &w), 0);
	a = serve_slots_add(&ss, "a", 0x5000000, 1, false, &err);
	assert_non_null(a);
	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_null(serve_slots_find(&again, "a")); /* in memory only */
	saved_calls = 0;
	assert_int_equal(serve_slots_save_async(&ss, saved, &saved_calls), 0);
	assert_int_equal(saved_calls, 0); /* not on the caller's thread */
	while (worker_pending(&w))
		assert_true(ring_run(&r, 100) >= 0);
	assert_int_equal(saved_calls, 1);
	assert_int_equal(saved_ret, 0);
	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_int_equal(serve_slots_find(&again, "a")->restart_lsn, 0x5000000);
	assert_int_equal(serve_slots_oldest(&ss), 0x5000000); /* as written */

	/* Two writes in flight: each told, the file ends with the newer text. */
	memset(a, 0, sizeof(*a));
	assert_int_equal(serve_slots_save_async(&ss, saved, &saved_calls), 0);
	assert_non_null(serve_slots_add(&ss, "b", 0x6000000, 1, false, &err));
	assert_int_equal(serve_slots_save_async(&ss, saved, &saved_calls), 0);
	while (worker_pending(&w))
		assert_true(ring_run(&r, 100) >= 0);
	assert_int_equal(saved_calls, 3);
	assert_int_equal(saved_ret, 0);
	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_null(serve_slots_find(&again, "a"));
	assert_int_equal(serve_slots_find(&again, "b")->restart_lsn, 0x6000000);

	/* A slot whose drop is being written: left out of the file, still kept by retention
	 * until the drop is durable (its entry cleared by the caller then). */
	b = serve_slots_find(&ss, "b");
	b->dropping = true;
	assert_int_equal(serve_slots_save_async(&ss, saved, &saved_calls), 0);
	assert_int_equal(serve_slots_oldest(&ss), 0x6000000);
	while (worker_pending(&w))
		assert_true(ring_run(&r, 100) >= 0);
	assert_int_equal(saved_calls, 4);
	assert_int_equal(serve_slots_load(&again, &st, NULL), 0);
	assert_null(serve_slots_find(&again, "b"));
	assert_int_equal(serve_slots_oldest(&ss), 0x6000000);
	b->dropping = false;

	/* The file cannot be written: the caller is told. */
	state_dir_block();
	log_set_level(LOG_LEVEL_FATAL); /* the failed write is logged */
	assert_int_equal(serve_slots_save_async(&ss, saved, &saved_calls), 0);
	while (worker_pending(&w))
		assert_true(ring_run(&r, 100) >= 0);
	log_set_level(LOG_LEVEL_WARNING);
	state_dir_unblock();
	assert_int_equal(saved_calls, 5);
	assert_true(saved_ret < 0);
	worker_stop(&w);
	ring_exit(&r);
}

/* A damaged file is an error: what a slot keeps must not be forgotten. */
static void test_damaged(void **state)
{
	struct serve_slots ss;

	(void)state;
	write_slots_file("a 0/5000000 1\n");
	assert_int_equal(serve_slots_load(&ss, &st, NULL), 0);
	write_slots_file("a 0/5000000\n");
	assert_int_equal(serve_slots_load(&ss, &st, NULL), -EINVAL);
	write_slots_file("A 0/5000000 1\n");
	assert_int_equal(serve_slots_load(&ss, &st, NULL), -EINVAL);
	write_slots_file("a zz 1\n");
	assert_int_equal(serve_slots_load(&ss, &st, NULL), -EINVAL);
	write_slots_file("a 0/5000000 1 x\n");
	assert_int_equal(serve_slots_load(&ss, &st, NULL), -EINVAL);
	assert_null(serve_slots_find(&ss, "a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreserved_advanced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_async, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
