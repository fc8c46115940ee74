// SPDX-License-Identifier: MIT
/*
 * Tests for daemon/serve/walsender_stream.c over a real io_uring, a real store directory
 * and a real TCP standby speaking PostgreSQL's protocol (startup packet,
 * START_REPLICATION, then reading what it is sent): which segment a standby is sent, when
 * it waits and when it is answered "requested WAL segment ... has already been removed"
 * (58P01).
 *
 *   - a caught-up standby waiting at segment K is not answered 58P01 when a later segment
 *     is stored before K (files in flight are stored in any order): it waits, and K's
 *     durable bytes, then K stored, wake it;
 *   - a segment stored, then removed (by hand, or by retention: serve_wal_removed()), or
 *     older than the store's oldest at start, is answered 58P01; so is a segment of the
 *     newest timeline older than that timeline's first (PostgreSQL's walsender answers
 *     the same);
 *   - a standby on an old timeline whose switch point's segment also holds the next
 *     switch (its next timeline's copy of the segment is only a .partial) is sent the
 *     switch point's segment from the first later timeline of the newest's history that
 *     has it (a sibling timeline's file is not read), or waits for the newest's when none
 *     is there yet, then gets the end of its timeline;
 *   - a start that fails on a file the configuration names says so (main.c exits 2), one
 *     that fails on pg_listen's address in use does not.
 *
 * Segments are 1 MiB; each file's bytes are its timeline's number, so what a standby is
 * sent says which file it was read from.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "ring/ring.h"
#include "serve/walsender.h"
#include "serve/walsender_int.h"
#include "wal/store.h"

#define SEG_SIZE (1024 * 1024)
/* What the standby is sent is kept for LSNs 0/1000000 up to 0/1400000. */
#define WAL_BASE 0x1000000ULL
#define WAL_SPAN (4ULL * SEG_SIZE)

static struct ring ring;
static struct store store;
static struct config cfg;
static char dir[256];

/* ---- the standby ---- */

struct client {
	int fd;
	uint8_t in[1 << 20];
	size_t in_len;
	uint8_t *wal; /* WAL_SPAN bytes from WAL_BASE, as sent */
	uint64_t sent_to; /* the end of the furthest XLogData */
	unsigned int errors;
	char sqlstate[6];
	char message[256];
	bool copy_both, copy_done;
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void client_send(struct client *c, const void *p, size_t n)
{
	assert_int_equal(send(c->fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void client_query(struct client *c, const char *q)
{
	uint8_t b[256];
	size_t l = strlen(q) + 1;

	b[0] = 'Q';
	put32(b + 1, (uint32_t)(l + 4));
	memcpy(b + 5, q, l);
	client_send(c, b, l + 5);
}

/* One backend message: an ErrorResponse's fields, XLogData's bytes, the COPY's ends. */
static void client_message(struct client *c, uint8_t type, const uint8_t *body, size_t len)
{
	if (type == 'E') {
		c->errors++;
		for (size_t i = 0; i < len && body[i];) {
			const char *v = (const char *)body + i + 1;

			if (body[i] == 'C')
				snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", v);
			else if (body[i] == 'M')
				snprintf(c->message, sizeof(c->message), "%s", v);
			i += strlen(v) + 2;
		}
	} else if (type == 'W') {
		c->copy_both = true;
	} else if (type == 'c') {
		c->copy_done = true;
	} else if (type == 'd' && len >= 25 && body[0] == 'w') {
		uint64_t start = get64(body + 1), n = len - 25;

		assert_true(start >= WAL_BASE && start + n <= WAL_BASE + WAL_SPAN);
		assert_true(start == c->sent_to || !c->sent_to); /* in order, no gap */
		memcpy(c->wal + (start - WAL_BASE), body + 25, n);
		c->sent_to = start + n;
	}
}

/* Read what arrived, without waiting, and take its whole messages. */
static void client_poll(struct client *c)
{
	size_t used = 0;
	ssize_t n;

	while ((n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT)) > 0)
		c->in_len += (size_t)n;
	while (c->in_len - used >= 5) {
		uint32_t len = get32(c->in + used + 1);

		assert_true(len >= 4);
		if (c->in_len - used < 1 + (size_t)len)
			break;
		client_message(c, c->in[used], c->in + used + 5, len - 4);
		used += 1 + len;
	}
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
}

/* Run the ring and read the standby's socket until @cond, at most 10 s. */
#define RUN_UNTIL(c, cond)                                                 \
	do {                                                               \
		for (int round_ = 0; round_ < 1000 && !(cond); round_++) { \
			ring_run(&ring, 10);                               \
			client_poll(c);                                    \
		}                                                          \
		assert_true(cond);                                         \
	} while (0)

/* Run the ring and read for a while: what is due comes in this time (~200 ms). */
static void run_a_while(struct client *c)
{
	for (int i = 0; i < 40; i++) {
		ring_run(&ring, 5);
		client_poll(c);
	}
}

/* Run the ring and the endpoint's tick (its timers: a wait's bound) and read, until the
 * standby is sent an error, at most 10 s. */
static void run_ticking_until_error(struct serve *s, struct client *c)
{
	for (int round = 0; round < 1000 && !c->errors; round++) {
		ring_run(&ring, 10);
		serve_tick(s, clock_now_ms());
		client_poll(c);
	}
}

/* The standby is waited for at first (no error for a while; the retention floor held at
 * @floor, unless 0), then, past gap_wait_ms, answered @sqlstate, once. */
static void waited_then_answered(struct serve *s, struct client *c, uint64_t floor,
				 const char *sqlstate)
{
	run_a_while(c);
	assert_int_equal(c->errors, 0);
	if (floor)
		assert_int_equal(serve_retention_floor(s), floor);
	run_ticking_until_error(s, c);
	assert_int_equal(c->errors, 1);
	assert_string_equal(c->sqlstate, sqlstate);
}

/* Connect to @s as a standby (trust) and wait for ReadyForQuery after the startup. */
static void client_connect(struct client *c, struct serve *s)
{
	static const char kv[] = "user\0rep\0replication\0true\0application_name\0sb1\0";
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	uint8_t b[128];
	size_t n = 8;

	static uint8_t wal[WAL_SPAN];

	memset(c, 0, sizeof(*c));
	memset(wal, 0, sizeof(wal));
	c->wal = wal;
	assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&sin, &sl), 0);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&sin, sl), 0);
	put32(b + 4, 196608);
	memcpy(b + n, kv, sizeof(kv)); /* its NUL ends the list */
	n += sizeof(kv);
	put32(b, (uint32_t)n);
	client_send(c, b, n);
	RUN_UNTIL(c, s->standbys && s->standbys->state == SB_QUERY && !s->standbys->out.len &&
			     !s->standbys->sending.len);
}

static void client_start(struct client *c, const char *start, unsigned int tli)
{
	char q[128];

	snprintf(q, sizeof(q), "START_REPLICATION %s TIMELINE %u", start, tli);
	client_query(c, q);
}

static void client_close(struct client *c)
{
	close(c->fd);
}

/* Every byte sent of [@from, @to) is @value (the timeline of the file it came from). */
static void assert_sent_bytes(const struct client *c, uint64_t from, uint64_t to, uint8_t value)
{
	assert_true(c->sent_to >= to);
	for (uint64_t lsn = from; lsn < to; lsn++)
		if (c->wal[lsn - WAL_BASE] != value) {
			print_error("byte at %llX is %u, not %u\n", (unsigned long long)lsn,
				    c->wal[lsn - WAL_BASE], value);
			fail();
		}
}

/* ---- the store ---- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return ftw->level ? remove(path) : 0;
}

/* @name in directory @dfd: @text, or @size bytes of @name's timeline number. */
static void put_at(int dfd, const char *name, const char *text, size_t size, uint8_t value)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	uint8_t *buf = size ? malloc(size) : NULL;

	assert_true(fd >= 0);
	if (text)
		assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	if (size) {
		assert_non_null(buf);
		memset(buf, value, size);
		assert_int_equal(write(fd, buf, size), (ssize_t)size);
	}
	free(buf);
	close(fd);
}

/* A segment (or .partial) stored: its bytes are its timeline's number. */
static void put_segment(const char *name)
{
	struct wal_name wn;

	assert_int_equal(wal_name_parse(name, &wn), 0);
	put_at(store.dir_fd, name, NULL, SEG_SIZE, (uint8_t)wn.timeline);
}

static void put_history(unsigned int tli, const char *text)
{
	char name[32];

	snprintf(name, sizeof(name), "%08X.history", tli);
	put_at(store.dir_fd, name, text, 0, 0);
}

/* A free port for pg_listen (the config takes no port 0). */
static void pick_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	snprintf(cfg.pg_listen, sizeof(cfg.pg_listen), "127.0.0.1:%u", ntohs(sin.sin_port));
}

/* The endpoint on the store as it is now (serve_scan() reads it). */
static struct serve *serve_up(void)
{
	struct serve *s = NULL;

	for (int i = 0; i < 20 && !s; i++) {
		pick_port();
		s = serve_start(&cfg, &ring, &store, &(bool){ false });
	}
	assert_non_null(s);
	return s;
}

static void serve_down(struct serve *s)
{
	serve_stop(s);
	for (int i = 0; i < 1000 && !serve_stopped(s); i++)
		ring_run(&ring, 10);
	assert_true(serve_stopped(s));
	serve_free(s);
}

static int setup_one(void **state)
{
	char hba[300];

	(void)state;
	mkdir("build", 0755);
	snprintf(dir, sizeof(dir), "build/stream-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	memset(&store, 0, sizeof(store));
	snprintf(store.path, sizeof(store.path), "%s", dir);
	snprintf(store.incoming_path, sizeof(store.incoming_path), "%s/" STORE_INCOMING_DIR, dir);
	store.dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(store.dir_fd >= 0);
	assert_int_equal(mkdirat(store.dir_fd, STORE_INCOMING_DIR, 0700), 0);
	assert_int_equal(mkdirat(store.dir_fd, STORE_STATE_DIR, 0700), 0);
	store.incoming_fd = openat(store.dir_fd, STORE_INCOMING_DIR, O_RDONLY | O_DIRECTORY);
	assert_true(store.incoming_fd >= 0);
	store.id.system_identifier = 7714757620651245335ULL;
	store.id.seg_size = SEG_SIZE;
	store.id.block_size = 8192;
	put_at(store.dir_fd, "hba.conf", "hostnossl  standby  all  all  127.0.0.1/32\n", 0, 0);
	config_defaults(&cfg);
	snprintf(cfg.node_name, sizeof(cfg.node_name), "t");
	snprintf(hba, sizeof(hba), "%s/hba.conf", dir);
	snprintf(cfg.hba_file, sizeof(cfg.hba_file), "%s", hba);
	cfg.tls = false;
	cfg.pg_password_file[0] = '\0';
	return 0;
}

static int teardown_one(void **state)
{
	(void)state;
	close(store.incoming_fd);
	close(store.dir_fd);
	nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
	return rmdir(dir);
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_FATAL);
	return ring_init(&ring, 256, 4, 4096);
}

static int teardown(void **state)
{
	(void)state;
	ring_exit(&ring);
	return 0;
}

/* ---- files stored out of order ---- */

/*
 * A caught-up standby waits at segment 0x11, which is not received yet; 0x12 is stored
 * first (a backlog beside the live stream, pushes): it keeps waiting (it was answered
 * 58P01 for 0x11, and its restore_command found nothing either).  0x11's durable bytes
 * in .incoming are sent, then the rest once it is stored.
 */
static void test_later_segment_stored_first(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);
	run_a_while(&c);
	assert_int_equal(c.errors, 0);

	put_segment("000000010000000000000012");
	serve_wal_stored(s, "000000010000000000000012");
	run_a_while(&c);
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.sent_to, 0x1100000);

	/* 0x11 grows in .incoming: what is durable of it is sent */
	put_at(store.incoming_fd, "000000010000000000000011.7", NULL, SEG_SIZE, 1);
	serve_wal_durable(s, "000000010000000000000011", "000000010000000000000011.7", SEG_SIZE / 2,
			  NULL);
	RUN_UNTIL(&c, c.sent_to == 0x1180000);
	/* stored: the rest, and 0x12 after it */
	assert_int_equal(renameat(store.incoming_fd, "000000010000000000000011.7", store.dir_fd,
				  "000000010000000000000011"),
			 0);
	serve_wal_stored(s, "000000010000000000000011");
	RUN_UNTIL(&c, c.sent_to == 0x1300000);
	assert_int_equal(c.errors, 0);
	assert_sent_bytes(&c, 0x1000000, 0x1300000, 1);
	client_close(&c);
	serve_down(s);
}

/*
 * The same wait, the later segment only durable in .incoming (the live stream ahead of
 * the backlog): 0x11 stored wakes the standby.
 */
static void test_later_segment_durable_first(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);

	put_at(store.incoming_fd, "000000010000000000000012.3", NULL, SEG_SIZE, 1);
	serve_wal_durable(s, "000000010000000000000012", "000000010000000000000012.3", 4096, NULL);
	run_a_while(&c);
	assert_int_equal(c.errors, 0);

	put_segment("000000010000000000000011");
	serve_wal_stored(s, "000000010000000000000011");
	RUN_UNTIL(&c, c.sent_to == 0x1201000);
	assert_int_equal(c.errors, 0);
	client_close(&c);
	serve_down(s);
}

/*
 * A store empty at start (a new replica): the live stream's segment 0x12 comes first, then
 * the backlog from 0x10.  A standby at 0x11 waits for it; one asking for 0x0F, older than
 * anything the store took, is answered 58P01.
 */
static void test_empty_at_start(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	s = serve_up();
	put_at(store.incoming_fd, "000000010000000000000012.1", NULL, SEG_SIZE, 1);
	serve_wal_durable(s, "000000010000000000000012", "000000010000000000000012.1", 8192, NULL);
	put_segment("000000010000000000000010");
	serve_wal_stored(s, "000000010000000000000010");
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);
	run_a_while(&c);
	assert_int_equal(c.errors, 0);
	put_segment("000000010000000000000011");
	serve_wal_stored(s, "000000010000000000000011");
	RUN_UNTIL(&c, c.sent_to == 0x1202000);
	assert_int_equal(c.errors, 0);
	client_close(&c);
	RUN_UNTIL(&c, !s->standbys);

	client_connect(&c, s);
	client_start(&c, "0/F00000", 1);
	RUN_UNTIL(&c, c.errors == 1);
	assert_string_equal(c.sqlstate, "58P01");
	client_close(&c);
	serve_down(s);
}

/* ---- what is answered 58P01 ---- */

/* Older than the oldest segment the store held at start: gone, answered at once. */
static void test_older_than_store_removed(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000011");
	put_segment("000000010000000000000012");
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.errors == 1);
	assert_string_equal(c.sqlstate, "58P01");
	assert_string_equal(
		c.message,
		"requested WAL segment 000000010000000000000010 has already been removed");
	client_close(&c);
	serve_down(s);
}

/*
 * Segments stored at start (0x11) and since (0x12), then removed by hand (as t_99g
 * does): gone, answered 58P01, not waited for as segments still to come.
 */
static void test_removed_by_hand(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	put_segment("000000010000000000000011");
	s = serve_up();
	put_segment("000000010000000000000012");
	serve_wal_stored(s, "000000010000000000000012");
	put_segment("000000010000000000000013");
	serve_wal_stored(s, "000000010000000000000013");
	assert_int_equal(unlinkat(store.dir_fd, "000000010000000000000011", 0), 0);
	assert_int_equal(unlinkat(store.dir_fd, "000000010000000000000012", 0), 0);
	for (int i = 0; i < 2; i++) {
		char start[16], name[32];

		snprintf(start, sizeof(start), "0/%X", 0x1100000 + i * SEG_SIZE);
		snprintf(name, sizeof(name), "00000001000000000000001%d", 1 + i);
		client_connect(&c, s);
		client_start(&c, start, 1);
		RUN_UNTIL(&c, c.errors == 1);
		assert_string_equal(c.sqlstate, "58P01");
		assert_true(strstr(c.message, name) != NULL);
		client_close(&c);
		RUN_UNTIL(&c, !s->standbys);
	}
	serve_down(s);
}

/*
 * Retention removed up to 0x12 (serve_wal_removed(): the newest name it removed),
 * segments 0x11 and 0x12 among them that were copied into the archive by hand, which
 * the endpoint was never told were stored: a standby asking for 0x11 is answered 58P01,
 * not left waiting for a segment that is not coming.
 */
static void test_removed_by_retention(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	put_segment("000000010000000000000013");
	s = serve_up();
	serve_wal_removed(s, "000000010000000000000012");
	assert_int_equal(unlinkat(store.dir_fd, "000000010000000000000010", 0), 0);
	client_connect(&c, s);
	client_start(&c, "0/1100000", 1);
	RUN_UNTIL(&c, c.errors == 1);
	assert_string_equal(c.sqlstate, "58P01");
	assert_string_equal(
		c.message,
		"requested WAL segment 000000010000000000000011 has already been removed");
	client_close(&c);
	serve_down(s);
}

/* @s's held runs are @n [lo, hi) pairs of @runs. */
static void assert_held(const struct serve *s, size_t n, const uint64_t *runs)
{
	assert_int_equal(s->nheld, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s->held[i].lo, runs[2 * i]);
		assert_int_equal(s->held[i].hi, runs[2 * i + 1]);
	}
}

/* What the endpoint remembers as stored of the newest timeline: runs, from the scan in
 * the directory's order, joined as the holes fill in any order, cut by retention, and
 * forgotten at a new timeline. */
static void test_held_runs(void **state)
{
	static const uint64_t at_start[] = { 0x10, 0x11, 0x12, 0x14, 0x15, 0x16 };
	static const uint64_t joined[] = { 0x10, 0x14, 0x15, 0x16 };
	static const uint64_t whole[] = { 0xF, 0x17 };
	static const uint64_t cut[] = { 0x12, 0x17 };
	static const char *const names[] = { "000000010000000000000015", "000000010000000000000010",
					     "000000010000000000000013",
					     "000000010000000000000012" };
	struct serve *s;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		put_segment(names[i]);
	s = serve_up();
	assert_held(s, 3, at_start);
	assert_int_equal(s->removed_below, 0x10);
	serve_wal_stored(s, "000000010000000000000011");
	assert_held(s, 2, joined);
	serve_wal_stored(s, "000000010000000000000014");
	serve_wal_stored(s, "000000010000000000000016");
	serve_wal_stored(s, "00000001000000000000000F");
	serve_wal_stored(s, "000000010000000000000013"); /* again */
	assert_held(s, 1, whole);
	serve_wal_removed(s, "000000010000000000000011");
	assert_int_equal(s->removed_below, 0x12);
	assert_held(s, 1, cut);
	serve_wal_stored(s, "000000020000000000000017");
	assert_int_equal(s->tli, 2);
	assert_int_equal(s->nheld, 1);
	assert_int_equal(s->held[0].lo, 0x17);
	serve_down(s);
}

/*
 * START_REPLICATION on the newest timeline (2, from 0/1180000) at a segment before its
 * first: timeline 2 never has that segment (its WAL is timeline 1's): answered 58P01 as
 * PostgreSQL's walsender answers it, not left waiting.
 */
static void test_newest_timeline_before_its_start(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	put_segment("000000010000000000000011.partial");
	put_segment("000000020000000000000011");
	put_history(2, "1\t0/1180000\tno recovery target specified\n");
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 2);
	RUN_UNTIL(&c, c.errors == 1);
	assert_string_equal(c.sqlstate, "58P01");
	assert_string_equal(
		c.message,
		"requested WAL segment 000000020000000000000010 has already been removed");
	client_close(&c);
	serve_down(s);
}

/* ---- two switches in one segment ---- */

/* Timeline 1 to 2 at 0/1180000, 2 to 3 at 0/11C0000: 2's segment 0x11 is a .partial. */
static void two_switches(void)
{
	put_segment("000000010000000000000010");
	put_segment("000000010000000000000011.partial");
	put_segment("000000020000000000000011.partial");
	put_history(2, "1\t0/1180000\tno recovery target specified\n");
	put_history(3, "1\t0/1180000\tno recovery target specified\n"
		       "2\t0/11C0000\tno recovery target specified\n");
}

/* A standby on timeline 1 is sent its end from timeline 3's copy of 0x11, then the end of
 * its timeline (CopyDone). */
static void test_two_switches_in_one_segment(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	two_switches();
	put_segment("000000030000000000000011");
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.copy_done);
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.sent_to, 0x1180000);
	assert_sent_bytes(&c, 0x1000000, 0x1100000, 1);
	assert_sent_bytes(&c, 0x1100000, 0x1180000, 3);
	client_close(&c);
	serve_down(s);
}

/* The same with timeline 3's history there before its first segment: the standby waits,
 * and that segment's first durable bytes in .incoming end its timeline. */
static void test_two_switches_newest_not_yet_there(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	two_switches();
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);
	run_a_while(&c);
	assert_false(c.copy_done);
	assert_int_equal(c.errors, 0);

	put_at(store.incoming_fd, "000000030000000000000011.9", NULL, SEG_SIZE, 3);
	serve_wal_durable(s, "000000030000000000000011", "000000030000000000000011.9", 0x90000,
			  NULL);
	RUN_UNTIL(&c, c.copy_done);
	assert_int_equal(c.errors, 0);
	assert_int_equal(c.sent_to, 0x1180000);
	assert_sent_bytes(&c, 0x1100000, 0x1180000, 3);
	client_close(&c);
	serve_down(s);
}

/*
 * Timeline 3 forked from 1 at 0/1140000, a sibling of 2: its 0x11 holds its own WAL after
 * 0/1140000, not timeline 1's.  The newest, 4, came from 2 at 0/11C0000.  A standby on 1
 * is sent 0x11 from 4's copy, the next of 4's history after 2, never from 3's.
 */
static void test_two_switches_sibling_not_read(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	put_segment("000000020000000000000011.partial");
	put_segment("000000030000000000000011");
	put_segment("000000040000000000000011");
	put_history(2, "1\t0/1180000\tno recovery target specified\n");
	put_history(3, "1\t0/1140000\tno recovery target specified\n");
	put_history(4, "1\t0/1180000\tno recovery target specified\n"
		       "2\t0/11C0000\tno recovery target specified\n");
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.copy_done);
	assert_int_equal(c.errors, 0);
	assert_sent_bytes(&c, 0x1100000, 0x1180000, 4);
	client_close(&c);
	serve_down(s);
}

/*
 * A hole the store had at start (0x11: in flight when walshipd stopped, and sent again;
 * or released on the primary, removed by hand while walshipd was down, for good) is
 * waited for as a gap, not for ever: past gap_wait_ms (shortened here) the standby is
 * answered 58P01, as PostgreSQL's walsender answers, and no longer holds retention there.
 */
static void test_hole_at_start(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	put_segment("000000010000000000000012");
	put_segment("000000010000000000000013");
	s = serve_up();
	s->gap_wait_ms = 300;
	client_connect(&c, s);
	client_start(&c, "0/1100000", 1);
	waited_then_answered(s, &c, 0x1100000, "58P01");
	assert_int_equal(c.sent_to, 0);
	assert_true(serve_retention_floor(s) > 0x1100000);
	client_close(&c);
	serve_down(s);
}

/*
 * A gap after start (0x12 stored, 0x11 not) is waited for, but not for ever: past
 * gap_wait_ms (shortened here) the standby is answered 58P01, and no longer holds the
 * retention floor at the gap.
 */
static void test_gap_wait_bounded(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	s = serve_up();
	s->gap_wait_ms = 300;
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);
	put_segment("000000010000000000000012");
	serve_wal_stored(s, "000000010000000000000012");
	waited_then_answered(s, &c, 0x1100000, "58P01");
	assert_int_equal(c.sent_to, 0x1100000);
	assert_true(serve_retention_floor(s) > 0x1100000);
	client_close(&c);
	serve_down(s);
}

/*
 * The newest timeline is a sibling of the standby's next one: timeline 3 forked from 1
 * at 0/1140000, before 1's switch to 2 at 0/1180000, and 2's copy of 0x11 is not there.
 * The standby on 1 is not sent 3's copy (3's own WAL from 0/1140000, as 1's) but answered
 * 58P01 for 2's copy, as PostgreSQL's walsender answers.
 */
static void test_sibling_newest(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	put_history(2, "1\t0/1180000\tno recovery target specified\n");
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);
	put_history(3, "1\t0/1140000\tno recovery target specified\n");
	serve_wal_stored(s, "00000003.history");
	put_segment("000000030000000000000011");
	serve_wal_stored(s, "000000030000000000000011");
	RUN_UNTIL(&c, c.errors == 1);
	assert_string_equal(c.sqlstate, "58P01");
	assert_int_equal(c.sent_to, 0x1100000);
	assert_false(c.copy_done);
	client_close(&c);
	serve_down(s);
}

/*
 * The newest timeline's segment comes before its history (the two switches in one
 * segment of test_two_switches_in_one_segment, timeline 3's history not stored yet): the
 * standby on 1 waits (which copy holds its WAL is not known yet) and is sent 3's copy
 * once the history says 3 follows 2 at the switch point; the build before answered 58P01
 * for 2's copy, a NAME.partial.
 */
static void test_newest_segment_before_its_history(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	put_segment("000000020000000000000011.partial");
	put_history(2, "1\t0/1180000\tno recovery target specified\n");
	s = serve_up();
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);
	put_at(store.incoming_fd, "000000030000000000000011.3", NULL, SEG_SIZE, 3);
	serve_wal_durable(s, "000000030000000000000011", "000000030000000000000011.3", 0xC0000,
			  NULL);
	run_a_while(&c);
	assert_int_equal(c.errors, 0);
	assert_false(c.copy_done);
	put_history(3, "1\t0/1180000\tno recovery target specified\n"
		       "2\t0/11C0000\tno recovery target specified\n");
	serve_wal_stored(s, "00000003.history");
	RUN_UNTIL(&c, c.copy_done);
	assert_int_equal(c.errors, 0);
	assert_sent_bytes(&c, 0x1100000, 0x1180000, 3);
	client_close(&c);
	serve_down(s);
}

/*
 * The same, and the newest timeline's history never comes (removed, never shipped): the
 * standby waits gap_wait_ms (shortened here), not for ever, then is answered 58P01 for
 * next_tli's copy, as PostgreSQL's walsender answers, and holds retention no more.
 */
static void test_newest_history_never_comes(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	put_segment("000000020000000000000011.partial");
	put_history(2, "1\t0/1180000\tno recovery target specified\n");
	s = serve_up();
	s->gap_wait_ms = 300;
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);
	put_at(store.incoming_fd, "000000030000000000000011.3", NULL, SEG_SIZE, 3);
	serve_wal_durable(s, "000000030000000000000011", "000000030000000000000011.3", 0xC0000,
			  NULL);
	waited_then_answered(s, &c, 0, "58P01");
	assert_int_equal(c.sent_to, 0x1100000);
	assert_true(serve_retention_floor(s) > 0x1100000);
	client_close(&c);
	serve_down(s);
}

/*
 * A standby streams the newest timeline, 1, and a segment of 2 comes without 2's history
 * (never shipped, or removed): where 1 ends is not known, and the standby waits
 * gap_wait_ms (shortened here), not for ever, then is answered as PostgreSQL's walsender
 * is for a missing history file (XX000: its timeline not in the newest's history), and
 * holds retention no more.
 */
static void test_next_history_never_comes(void **state)
{
	struct serve *s;
	static struct client c; /* (its buffers: not on the stack) */

	(void)state;
	put_segment("000000010000000000000010");
	s = serve_up();
	s->gap_wait_ms = 300;
	client_connect(&c, s);
	client_start(&c, "0/1000000", 1);
	RUN_UNTIL(&c, c.sent_to == 0x1100000);
	put_segment("000000020000000000000011");
	serve_wal_stored(s, "000000020000000000000011");
	waited_then_answered(s, &c, 0, "XX000");
	assert_string_equal(c.message, "requested timeline 1 is not in this server's history");
	assert_true(serve_retention_floor(s) > 0x1100000);
	client_close(&c);
	serve_down(s);
}

/* ---- start ---- */

/* serve_start() on the store, expected to fail: whether it said the configuration. */
static bool start_fails(void)
{
	bool config_error = false;

	assert_null(serve_start(&cfg, &ring, &store, &config_error));
	return config_error;
}

/*
 * serve_start() says when what failed is a file the configuration names, which main.c
 * exits 2 for (systemd does not restart that: it would fail the same every 2 s): hba_file
 * missing, without rules or a FIFO (which the build before waited on for ever), a password
 * file others may read.  Not for what a later start
 * may not meet: hba_file unopenable for want of a descriptor (EMFILE), pg_listen's
 * address in use; nor for TLS files that are not there, which the replica's own start
 * loaded a moment before (and says there).
 */
static void test_start_config_error(void **state)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	int fd;

	(void)state;
	pick_port();
	snprintf(cfg.hba_file, sizeof(cfg.hba_file), "%s/no-such-hba.conf", dir);
	assert_true(start_fails());
	put_at(store.dir_fd, "no-rules.conf", "# nothing admitted\n", 0, 0);
	snprintf(cfg.hba_file, sizeof(cfg.hba_file), "%s/no-rules.conf", dir);
	assert_true(start_fails());
	/* a FIFO: refused as no regular file, not waited on for ever at its open */
	assert_int_equal(mkfifoat(store.dir_fd, "fifo.conf", 0600), 0);
	snprintf(cfg.hba_file, sizeof(cfg.hba_file), "%s/fifo.conf", dir);
	assert_true(start_fails());
	snprintf(cfg.hba_file, sizeof(cfg.hba_file), "%s/hba.conf", dir);

	put_at(store.dir_fd, "standby.passwords", "", 0, 0);
	assert_int_equal(fchmodat(store.dir_fd, "standby.passwords", 0644, 0), 0);
	snprintf(cfg.pg_password_file, sizeof(cfg.pg_password_file), "%s/standby.passwords", dir);
	assert_true(start_fails());
	cfg.pg_password_file[0] = '\0';

	cfg.tls = true;
	snprintf(cfg.tls_ca_file, sizeof(cfg.tls_ca_file), "%s/ca.pem", dir);
	snprintf(cfg.tls_cert_file, sizeof(cfg.tls_cert_file), "%s/node.pem", dir);
	snprintf(cfg.tls_key_file, sizeof(cfg.tls_key_file), "%s/node.key", dir);
	assert_false(start_fails());
	cfg.tls = false;

	{
		struct rlimit old, low;
		int fds[256], nfds = 0;

		assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
		low = old;
		low.rlim_cur = 128;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
		while (nfds < 256 && (fds[nfds] = dup(0)) >= 0)
			nfds++;
		assert_int_equal(errno, EMFILE);
		assert_false(start_fails());
		while (nfds > 0)
			close(fds[--nfds]);
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	}

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(cfg.pg_listen, sizeof(cfg.pg_listen), "127.0.0.1:%u", ntohs(sin.sin_port));
	assert_false(start_fails());
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_later_segment_stored_first, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_later_segment_durable_first, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_empty_at_start, setup_one, teardown_one),
		cmocka_unit_test_setup_teardown(test_older_than_store_removed, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_removed_by_hand, setup_one, teardown_one),
		cmocka_unit_test_setup_teardown(test_held_runs, setup_one, teardown_one),
		cmocka_unit_test_setup_teardown(test_removed_by_retention, setup_one, teardown_one),
		cmocka_unit_test_setup_teardown(test_newest_timeline_before_its_start, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_two_switches_in_one_segment, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_two_switches_newest_not_yet_there, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_two_switches_sibling_not_read, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_hole_at_start, setup_one, teardown_one),
		cmocka_unit_test_setup_teardown(test_gap_wait_bounded, setup_one, teardown_one),
		cmocka_unit_test_setup_teardown(test_sibling_newest, setup_one, teardown_one),
		cmocka_unit_test_setup_teardown(test_newest_segment_before_its_history, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_newest_history_never_comes, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_next_history_never_comes, setup_one,
						teardown_one),
		cmocka_unit_test_setup_teardown(test_start_config_error, setup_one, teardown_one),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
