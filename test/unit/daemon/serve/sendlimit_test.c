// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/serve/sendlimit.c: a delay after a restart (the WAL stored before
 * decoding began is delayed by its segments' last writes, not sent undelayed; after a
 * timeline switch too, the segments stored under the older timeline), the timer's
 * wake-up not taken by a look at the limit in between, a hold released --upto keeping
 * its position as the retention floor, across a reload of the holds file (names with
 * leading blanks or empty too), a holds file
 * of the builds before, a release --before (the first commit at or after the time; one
 * the hold's position cuts counts; commits hidden by damaged WAL keep the hold), a holds
 * file that cannot be read (no start), a
 * reload of standby_delay keeping what is due, and a first hold behind the newest WAL
 * read a step at a time (sendlimit_catching_up()), not started again when newer WAL comes
 * meanwhile.  The WAL is
 * built in memory (test/unit/wal_records.h) with commit times around the real clock.
 */
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "proto/pgrepl.h"
#include "serve/sendlimit.h"
#include "wal/name.h"
#include "wal/store.h"
#include "wal_records.h"

#define SEG (1024u * 1024u)
#define BLOCK 8192u
#define MIN_US (60 * 1000000LL)

static char dir[64];
static struct store st;
static uint8_t seg[SEG];
static int64_t now_us;

static int setup(void **state)
{
	struct timespec ts;

	(void)state;
	mkdir("build", 0755);
	snprintf(dir, sizeof(dir), "build/sendlimit-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	log_set_level(LOG_LEVEL_ERROR);
	if (store_open(&st, dir) < 0)
		return -1;
	st.id.seg_size = SEG;
	st.id.block_size = BLOCK;
	clock_gettime(CLOCK_REALTIME, &ts);
	now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	(void)state;
	store_close(&st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void segment_name(char *buf, uint64_t segno)
{
	wal_name_format_segment(buf, WAL_NAME_MAX + 1, 1, segno, SEG);
}

/* Segment @segno into seg[], with @n commits at @at_us (Unix µs); the last one's end
 * into *@last_end when not NULL.  Returns the bytes written. */
static uint64_t build_segment(uint64_t segno, int n, int64_t at_us, uint64_t *last_end)
{
	struct wal_build wb = { .buf = seg, .start = segno * SEG, .seg_size = SEG, .block = BLOCK };

	memset(seg, 0, sizeof(seg));
	wb_page_header(&wb, 0);
	for (int i = 0; i < n; i++)
		wb_xact(&wb, 0x00, pgrepl_time_from_unix_us(at_us));
	if (last_end)
		*last_end = wb.start + wb.pos;
	return wb.pos;
}

/* Segment @segno into seg[]: @n commits, commit i at @t0_us + i s, their LSNs into @lsn;
 * returns the bytes written. */
static uint64_t build_commits(uint64_t segno, int n, int64_t t0_us, uint64_t *lsn)
{
	struct wal_build wb = { .buf = seg, .start = segno * SEG, .seg_size = SEG, .block = BLOCK };

	memset(seg, 0, sizeof(seg));
	wb_page_header(&wb, 0);
	for (int i = 0; i < n; i++)
		lsn[i] = wb_xact(&wb, 0x00, pgrepl_time_from_unix_us(t0_us + i * 1000000LL));
	return wb.pos;
}

/* Segment @segno stored, last written at @written_us. */
static void store_segment(uint64_t segno, int64_t commits_us, int64_t written_us)
{
	char name[WAL_NAME_MAX + 1];
	struct timespec times[2];
	int fd;

	build_segment(segno, 3, commits_us, NULL);
	segment_name(name, segno);
	fd = openat(st.dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, seg, SEG), SEG);
	times[0].tv_sec = times[1].tv_sec = written_us / 1000000;
	times[0].tv_nsec = times[1].tv_nsec = (written_us % 1000000) * 1000;
	assert_int_equal(futimens(fd, times), 0);
	close(fd);
}

/* A sendlimit for @delays, fed segment 5 as the one being received (from memory), with
 * @n commits at @at_us; the last one's end into *@last_end. */
static struct sendlimit *limits_receiving(const char *delays, int n, int64_t at_us,
					  uint64_t *last_end)
{
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl = sendlimit_new(&st, delays);
	uint64_t len;

	assert_non_null(sl);
	len = build_segment(5, n, at_us, last_end);
	segment_name(name, 5);
	sendlimit_wal(sl, name, st.incoming_fd, "unused", len, seg);
	return sl;
}

/*
 * A restart: segments 3 and 4 were stored before it (3 two hours ago, 4 just now), 5 is
 * the one being received, with commits made now.  A standby delayed a minute is sent
 * segment 3 (written long ago), not 4, whose commits may be recent, nor 5; a minute on,
 * 4 and the commits of 5.  The build before sent everything before segment 5 at once.
 */
static void test_delay_after_restart(void **state)
{
	struct sendlimit *sl;
	uint64_t last_end;

	(void)state;
	store_segment(3, now_us - 3 * 60 * MIN_US, now_us - 2 * 60 * MIN_US);
	store_segment(4, now_us - 2 * MIN_US, now_us);
	sl = limits_receiving("sb:60s", 4, now_us, &last_end);

	assert_int_equal(sendlimit_for(sl, "sb", now_us), 0); /* nothing looked at yet */
	assert_int_equal(sendlimit_for(sl, "other", now_us), SENDLIMIT_NONE);
	assert_true(sendlimit_due(sl, now_us));
	assert_int_equal(sendlimit_for(sl, "sb", now_us), 4 * (uint64_t)SEG);
	assert_false(sendlimit_due(sl, now_us + MIN_US / 2)); /* nothing due meanwhile */
	assert_int_equal(sendlimit_for(sl, "sb", now_us + MIN_US / 2), 4 * (uint64_t)SEG);

	/* a minute after the commits and segment 4's write: both due */
	assert_true(sendlimit_due(sl, now_us + MIN_US + 1));
	assert_int_equal(sendlimit_for(sl, "sb", now_us + MIN_US + 1), last_end);
	sendlimit_free(sl);
}

/*
 * The same after a timeline switch: segment 5 is received on timeline 2, and the
 * segments before it are stored under timeline 1, where they were written.  The delayed
 * standby is sent segment 3 at once as above; the build before looked for them under
 * timeline 2 only, found none, and sent nothing before segment 5's commits were due.
 */
static void test_delay_after_switch(void **state)
{
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;
	uint64_t last_end, len;

	(void)state;
	store_segment(3, now_us - 3 * 60 * MIN_US, now_us - 2 * 60 * MIN_US);
	store_segment(4, now_us - 2 * MIN_US, now_us);
	sl = sendlimit_new(&st, "sb:60s");
	assert_non_null(sl);
	len = build_segment(5, 4, now_us, &last_end);
	wal_name_format_segment(name, sizeof(name), 2, 5, SEG);
	sendlimit_wal(sl, name, st.incoming_fd, "unused", len, seg);
	assert_true(sendlimit_due(sl, now_us));
	assert_int_equal(sendlimit_for(sl, "sb", now_us), 4 * (uint64_t)SEG);
	assert_true(sendlimit_due(sl, now_us + MIN_US + 1));
	assert_int_equal(sendlimit_for(sl, "sb", now_us + MIN_US + 1), last_end);
	sendlimit_free(sl);
}

/*
 * A look at the limit (walship status, another standby of the same name) when a commit
 * has become due does not take the timer's news: the timer still says the boundary moved,
 * so that the waiting standbys are woken.  The build before moved the cursor in the look
 * and the timer then saw nothing move.
 */
static void test_look_keeps_wakeup(void **state)
{
	struct sendlimit *sl;
	uint64_t last_end;

	(void)state;
	sl = limits_receiving("sb:60s", 2, now_us, &last_end);
	sendlimit_due(sl, now_us);
	assert_true(sendlimit_for(sl, "sb", now_us) < last_end);

	assert_int_equal(sendlimit_for(sl, "sb", now_us + MIN_US + 1), last_end);
	assert_true(sendlimit_due(sl, now_us + MIN_US + 1));
	assert_false(sendlimit_due(sl, now_us + MIN_US + 2));
	sendlimit_free(sl);
}

/*
 * A hold released --upto: the standby may be sent up to the new limit, and retention still
 * keeps the WAL from where it was held (it may go away before it got there); so after a
 * restart (the holds file read again).
 */
static void test_release_upto_keeps_floor(void **state)
{
	const uint64_t held = 5 * (uint64_t)SEG + 4096, upto = 7 * (uint64_t)SEG;
	struct sendlimit *sl;

	(void)state;
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	assert_int_equal(sendlimit_floor(sl), UINT64_MAX);
	assert_int_equal(sendlimit_hold(sl, "sb", held), 0);
	assert_int_equal(sendlimit_hold(sl, "sb", held + 1), -EEXIST);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), held);
	assert_int_equal(sendlimit_floor(sl), held);
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_UPTO, (int64_t)upto), 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), upto);
	assert_int_equal(sendlimit_floor(sl), held);
	sendlimit_free(sl);

	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), upto);
	assert_int_equal(sendlimit_floor(sl), held);
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_ALL, 0), 0);
	assert_int_equal(sendlimit_floor(sl), UINT64_MAX);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), SENDLIMIT_NONE);
	sendlimit_free(sl);
}

/*
 * A hold released --before TIME: up to the start of the first commit at or after TIME
 * after the hold's position, commit times not in WAL order included; asked again (as at
 * each wake of the standby: the search resumes where it stopped) and after a release
 * --before an earlier time (searched afresh).
 */
static void test_release_before(void **state)
{
	struct wal_build wb = {
		.buf = seg, .start = 5 * (uint64_t)SEG, .seg_size = SEG, .block = BLOCK
	};
	const int n = 2000;
	uint64_t lsn[2000];
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;
	int64_t t0 = now_us - 3600 * 1000000LL;

	(void)state;
	memset(seg, 0, sizeof(seg));
	wb_page_header(&wb, 0);
	/* commit i at t0 + i s, but for 1500, made a second before 1499 */
	for (int i = 0; i < n; i++)
		lsn[i] = wb_xact(&wb, 0x00,
				 pgrepl_time_from_unix_us(t0 + (i == 1500 ? 1498 : i) * 1000000LL));
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	assert_int_equal(sendlimit_hold(sl, "sb", 5 * (uint64_t)SEG), 0);
	segment_name(name, 5);
	sendlimit_wal(sl, name, st.incoming_fd, "unused", wb.pos, seg);
	assert_true(sendlimit_indexing(sl));
	assert_int_equal(sendlimit_for(sl, "sb", now_us), 5 * (uint64_t)SEG); /* held */

	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 1499 * 1000000LL)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[1499]);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[1499]);
	/* 1500's time is before 1499's: the first at or after 1498.5 s is 1499 */
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 1498500000LL)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[1499]);
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 10 * 1000000LL)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[10]);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[10]);
	/* the floor stays where it was held */
	assert_int_equal(sendlimit_floor(sl), 5 * (uint64_t)SEG);
	sendlimit_free(sl);
}

/*
 * A hold whose position falls inside a commit record (held at a flush position that cut
 * it), released --before a time at or before that commit's: the rest of that commit is
 * not sent, the limit stays at the hold.  The build before searched from the first commit
 * starting after the hold and sent this one whole.
 */
static void test_release_before_hold_inside_commit(void **state)
{
	static uint64_t lsn[2000];
	uint64_t hold, len;
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;
	int64_t t0 = now_us - 3600 * 1000000LL;

	(void)state;
	len = build_commits(5, 2000, t0, lsn);
	/* inside commit 1500's record, past the 1024 commits the index folds away before a
	 * hold (which must keep the commit it cuts) */
	hold = lsn[1500] + 8;
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	assert_int_equal(sendlimit_hold(sl, "sb", hold), 0);
	segment_name(name, 5);
	sendlimit_wal(sl, name, st.incoming_fd, "unused", len, seg);
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 1400 * 1000000LL)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), hold);
	/* a time after commit 1500's: up to the start of the first commit at or after it */
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 1502 * 1000000LL)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[1502]);
	sendlimit_free(sl);
}

/*
 * WAL that does not decode (a record's CRC damaged) hides the commits after it in its
 * segment: a hold before it, released --before a time that only a hidden commit could
 * be at, stays held, rather than going up to the first commit decoded after the damage
 * (the next segment's), which the build before sent.
 */
static void test_release_before_across_damage(void **state)
{
	uint64_t lsn[40];
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;
	int64_t t0 = now_us - 3600 * 1000000LL;

	(void)state;
	build_commits(5, 40, t0, lsn);
	seg[lsn[20] - 5 * (uint64_t)SEG + 20] ^= 0xff; /* commit 20's CRC */
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	assert_int_equal(sendlimit_hold(sl, "sb", lsn[5]), 0);
	segment_name(name, 5);
	sendlimit_wal(sl, name, st.incoming_fd, "unused", SEG, seg);
	build_segment(6, 3, t0 + 100 * 1000000LL, NULL);
	segment_name(name, 6);
	sendlimit_wal(sl, name, st.incoming_fd, "unused", SEG, seg);
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 25 * 1000000LL)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[5]);
	/* a time whose commit was decoded before the damage: up to it (no hidden commit
	 * lies between the hold and it) */
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 10 * 1000000LL)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[10]);
	/* a plain release lets it go */
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_ALL, 0), 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), SENDLIMIT_NONE);
	sendlimit_free(sl);
}

/*
 * The same damage after the decoder started again (a gap: segments 6 to 19 not stored)
 * having counted damage before: it is a hole too.  The build before compared the new
 * decoder's count, from 0, with the old one's and saw nothing.
 */
static void test_release_before_damage_after_restart(void **state)
{
	uint64_t lsn[40];
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;
	int64_t t0 = now_us - 3600 * 1000000LL;

	(void)state;
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	for (uint64_t segno = 5; segno <= 20; segno += 15) {
		build_commits(segno, 40, t0, lsn);
		seg[lsn[20] - segno * SEG + 20] ^= 0xff; /* commit 20's CRC */
		assert_int_equal(sendlimit_hold(sl, segno == 5 ? "a" : "sb", lsn[5]), 0);
		segment_name(name, segno);
		sendlimit_wal(sl, name, st.incoming_fd, "unused", SEG, seg);
	}
	build_segment(21, 3, t0 + 100 * 1000000LL, NULL);
	segment_name(name, 21);
	sendlimit_wal(sl, name, st.incoming_fd, "unused", SEG, seg);
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 25 * 1000000LL)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), lsn[5]);
	sendlimit_free(sl);
}

/* A holds file that cannot be read (here a folder in its place): walshipd does not start
 * (sendlimit_new() fails), as for its slots, rather than stream the held standbys freely;
 * the build before started with no hold. */
static void test_holds_file_unreadable(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_STATE_DIR, SENDLIMIT_HOLDS_FILE);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_null(sendlimit_new(&st, ""));
	assert_int_equal(rmdir(path), 0);
}

/* A holds file of the builds before, whose "upto" line kept no held position: the limit
 * is read as the limit and the floor, not the time field after it as the limit. */
static void test_holds_file_before(void **state)
{
	char path[128];
	struct sendlimit *sl;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_STATE_DIR, SENDLIMIT_HOLDS_FILE);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("upto 117440512 849000000000000000 sb\nat 4096 0 other\n", f);
	fclose(f);
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), 117440512);
	assert_int_equal(sendlimit_for(sl, "other", now_us), 4096);
	assert_int_equal(sendlimit_floor(sl), 4096);
	assert_int_equal(sendlimit_release(sl, "other", SENDLIMIT_RELEASE_ALL, 0), 0);
	assert_int_equal(sendlimit_floor(sl), 117440512);
	sendlimit_free(sl);
}

/* Holds of names that begin with blanks, or are empty (application_name may be either),
 * are read back after a restart as they were held: the build before skipped the blanks
 * and dropped the empty name's line as malformed, so the standby was no longer held. */
static void test_hold_names_survive_restart(void **state)
{
	static const char *const names[] = { "  lead", "", "sb 2" };
	struct sendlimit *sl;

	(void)state;
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(sendlimit_hold(sl, names[i], 4096 * (i + 1)), 0);
	sendlimit_free(sl);
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(sendlimit_for(sl, names[i], now_us), 4096 * (i + 1));
	assert_int_equal(sendlimit_for(sl, "lead", now_us), SENDLIMIT_NONE);
	sendlimit_free(sl);
}

/* A hold saved by a build that kept application_name as it came (not ASCII) is read back
 * as the cleaned name its standby has now, so that it still holds it. */
static void test_hold_name_cleaned(void **state)
{
	char path[128];
	struct sendlimit *sl;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s/%s", dir, STORE_STATE_DIR, SENDLIMIT_HOLDS_FILE);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("at 4096 0 caf\xc3\xa9\n", f);
	fclose(f);
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	assert_int_equal(sendlimit_for(sl, "caf??", now_us), 4096);
	sendlimit_free(sl);
}

/* A reload (SIGHUP) keeps what is due for a delay that did not grow; a longer one
 * starts over (what was due under the shorter one may not be now). */
static void test_reload_keeps_due(void **state)
{
	struct sendlimit *sl;
	uint64_t last_end;

	(void)state;
	sl = limits_receiving("sb:60s", 3, now_us - 2 * MIN_US, &last_end);
	assert_true(sendlimit_due(sl, now_us));
	assert_int_equal(sendlimit_for(sl, "sb", now_us), last_end);
	sendlimit_reload(sl, "sb:30s,other:1h");
	assert_int_equal(sendlimit_for(sl, "sb", now_us), last_end);
	sendlimit_reload(sl, "sb:1h");
	assert_true(sendlimit_for(sl, "sb", now_us) < last_end);
	sendlimit_free(sl);
}

/* Segment @segno into seg[] as build_segment() makes it, each record's prev-link
 * following on from *@prev (the last record of the segment before), which it then
 * becomes: segments that read as one WAL.  Returns the bytes written. */
static uint64_t build_chained(uint64_t segno, int64_t at_us, uint64_t *prev)
{
	struct wal_build wb = { .buf = seg, .start = segno * SEG, .seg_size = SEG, .block = BLOCK };

	memset(seg, 0, sizeof(seg));
	wb.prev_lsn = *prev;
	wb_page_header(&wb, 0);
	for (int i = 0; i < 3; i++)
		wb_xact(&wb, 0x00, pgrepl_time_from_unix_us(at_us));
	*prev = wb.prev_lsn;
	return wb.pos;
}

/*
 * Segments 1 to @last stored, chained (build_chained()), the commits of segment s at @t0
 * plus s minutes, the last record's LSN into *@prev; and a sendlimit with standby "sb"
 * held at segment 1, released --before the commits of segment @before.
 */
static struct sendlimit *held_over_chained(uint64_t last, int64_t t0, int64_t before,
					   uint64_t *prev)
{
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;

	for (uint64_t s = 1; s <= last; s++) {
		int fd;

		build_chained(s, t0 + (int64_t)s * MIN_US, prev);
		segment_name(name, s);
		fd = openat(st.dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, seg, SEG), SEG);
		close(fd);
	}
	sl = sendlimit_new(&st, "");
	assert_non_null(sl);
	assert_int_equal(sendlimit_hold(sl, "sb", 1 * (uint64_t)SEG), 0);
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + before * MIN_US)),
			 0);
	return sl;
}

/* The first commit of segment @segno as build_segment() makes it, at @at_us. */
static uint64_t first_commit(uint64_t segno, int64_t at_us)
{
	static uint8_t page[2 * BLOCK];
	struct wal_build wb = {
		.buf = page, .start = segno * (uint64_t)SEG, .seg_size = SEG, .block = BLOCK
	};

	memset(page, 0, sizeof(page));
	wb_page_header(&wb, 0);
	return wb_xact(&wb, 0x00, pgrepl_time_from_unix_us(at_us));
}

/*
 * A first hold ten segments behind the newest: the stored segments between and the
 * newest's bytes are read a bounded step at a time (4 MiB, four of these 1 MiB segments),
 * not all on the first call, and a newer segment coming meanwhile does not start the
 * decoding again; a release --before a commit of the ninth goes no further than what was
 * read until the steps (news of the WAL, the caller's ticks) reach it, then to that
 * commit exactly; the newest segment's commits are indexed at the end.
 */
static void test_hold_catches_up_by_steps(void **state)
{
	int64_t t0 = now_us - 3600 * 1000000LL;
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;
	uint64_t len, limit, prev = 0;
	int calls = 2;

	(void)state;
	sl = held_over_chained(11, t0, 9, &prev);
	/* the stored segment 11 is the newest: one step, segments 1 to 4 */
	segment_name(name, 11);
	sendlimit_wal(sl, name, st.dir_fd, name, SEG, NULL);
	assert_true(sendlimit_indexing(sl));
	assert_true(sendlimit_catching_up(sl));
	limit = sendlimit_for(sl, "sb", now_us);
	assert_true(limit > 1 * (uint64_t)SEG); /* the commits of 1 to 4 are none of 9's */
	assert_true(limit <= 5 * (uint64_t)SEG);
	/* segment 12 arrives (received, from memory): the next step, from where it was */
	len = build_chained(12, t0 + 12 * MIN_US, &prev);
	segment_name(name, 12);
	sendlimit_wal(sl, name, st.incoming_fd, "unused", len, seg);
	assert_true(sendlimit_catching_up(sl));
	assert_true(sendlimit_for(sl, "sb", now_us) > limit);
	while (sendlimit_catching_up(sl) && calls < 10) {
		sendlimit_wal(sl, name, st.incoming_fd, "unused", len, seg);
		calls++;
	}
	assert_false(sendlimit_catching_up(sl));
	assert_int_equal(calls, 3); /* eleven segments of 1 MiB and 12's bytes, 4 MiB a step */
	assert_int_equal(sendlimit_for(sl, "sb", now_us), first_commit(9, t0 + 9 * MIN_US));
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 12 * MIN_US)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), first_commit(12, t0 + 12 * MIN_US));
	sendlimit_free(sl);
}

/*
 * A hold sixteen segments behind the newest (the most the decoder begins at), and newer
 * WAL arriving thirteen segments further while it catches up: decoding goes on from
 * where it was (a restart at the newest would leave the hold, released --before a commit
 * of segment 20, held for good); the build before a0dcd34's review restarted once the
 * newest was 16 segments ahead of the decoder.
 */
static void test_hold_catch_up_not_restarted(void **state)
{
	int64_t t0 = now_us - 3600 * 1000000LL;
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;
	uint64_t len, prev = 0;
	int calls = 1;

	(void)state;
	sl = held_over_chained(29, t0, 20, &prev);
	segment_name(name, 17);
	sendlimit_wal(sl, name, st.dir_fd, name, SEG, NULL);
	assert_true(sendlimit_catching_up(sl));
	len = build_chained(30, t0 + 30 * MIN_US, &prev);
	segment_name(name, 30);
	while (sendlimit_catching_up(sl) || calls == 1) {
		sendlimit_wal(sl, name, st.incoming_fd, "unused", len, seg);
		assert_true(++calls < 20);
	}
	assert_int_equal(sendlimit_for(sl, "sb", now_us), first_commit(20, t0 + 20 * MIN_US));
	sendlimit_free(sl);
}

/*
 * A hold whose decoding falls more than SENDLIMIT_MAX_BEHIND segments behind the newest WAL
 * (segment 60 arriving while it has read segments 1 to 4 of 17): decoding starts again at
 * the newest, and the hold, released --before a commit of segment 10 that was never read,
 * stays held at its own position (logged) rather than guess, also when released --before a
 * later time (the commits between are not known); released up to an LSN, it goes there.
 */
static void test_hold_catch_up_restarted(void **state)
{
	int64_t t0 = now_us - 3600 * 1000000LL;
	char name[WAL_NAME_MAX + 1];
	struct sendlimit *sl;
	uint64_t len, limit, prev = 0;
	int calls = 0;

	(void)state;
	sl = held_over_chained(17, t0, 10, &prev);
	segment_name(name, 17);
	sendlimit_wal(sl, name, st.dir_fd, name, SEG, NULL);
	assert_true(sendlimit_catching_up(sl));
	limit = sendlimit_for(sl, "sb", now_us);
	assert_true(limit <= 5 * (uint64_t)SEG); /* segments 1 to 4 read */
	len = build_chained(60, t0 + 60 * MIN_US, &prev);
	segment_name(name, 60);
	log_set_level(LOG_LEVEL_ERROR); /* "stays held": expected */
	do {
		sendlimit_wal(sl, name, st.incoming_fd, "unused", len, seg);
		assert_true(++calls < 10);
	} while (sendlimit_catching_up(sl));
	log_set_level(LOG_LEVEL_WARNING);
	/* held where the hold was made: the commits after it are not known */
	assert_int_equal(sendlimit_for(sl, "sb", now_us), 1 * (uint64_t)SEG);
	/* nor does a later time release it: the commits between are not known either */
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_BEFORE,
					   pgrepl_time_from_unix_us(t0 + 60 * MIN_US)),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), 1 * (uint64_t)SEG);
	/* an LSN does */
	assert_int_equal(sendlimit_release(sl, "sb", SENDLIMIT_RELEASE_UPTO, 60 * (uint64_t)SEG),
			 0);
	assert_int_equal(sendlimit_for(sl, "sb", now_us), 60 * (uint64_t)SEG);
	sendlimit_free(sl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delay_after_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delay_after_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_look_keeps_wakeup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_upto_keeps_floor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_before, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_before_hold_inside_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_release_before_across_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_before_damage_after_restart, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_holds_file_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_holds_file_before, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_names_survive_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_name_cleaned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload_keeps_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_catches_up_by_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_catch_up_not_restarted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_catch_up_restarted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
