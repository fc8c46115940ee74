// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/source/pgsource.c with a real ring and loopback sockets, no
 * PostgreSQL (test/system/t_97_pgsource.sh runs it against one): the configuration it
 * refuses, a refused connection logged once per attempt with libpq's message and retried
 * with a doubling backoff up to its cap, a server that accepts and never answers timed
 * out, and pgsource_stop() with a poll in flight leaving the ring with nothing pending.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/log.h"
#include "source/pgsource.h"

static struct ring ring;
static char last_line[1024];
static int error_lines;

static void capture(void *arg, enum log_level level, const char *line, size_t len)
{
	(void)arg;
	if (level == LOG_LEVEL_ERROR)
		error_lines++;
	snprintf(last_line, sizeof(last_line), "%.*s", (int)len, line);
}

static int setup(void **state)
{
	(void)state;
	log_set_prefix(false);
	log_set_sink(capture, NULL);
	return ring_init(&ring, 16, 0, 0);
}

static int teardown(void **state)
{
	(void)state;
	ring_exit(&ring);
	log_set_sink(NULL, NULL);
	return 0;
}

static int rc_identify(void *arg, const struct pgsource_server *sv, char *why, size_t whylen)
{
	(void)arg, (void)sv, (void)why, (void)whylen;
	fail_msg("identify called without a server");
	return -EINVAL;
}

static uint64_t rc_resume(void *arg, uint32_t *tli)
{
	(void)arg;
	*tli = 0;
	return 0;
}

static void rc_wal(void *arg, uint32_t tli, uint64_t lsn, const uint8_t *data, uint32_t len)
{
	(void)arg, (void)tli, (void)lsn, (void)data, (void)len;
	fail_msg("wal called without a server");
}

static const struct pgsource_ops ops = {
	.identify = rc_identify,
	.resume_lsn = rc_resume,
	.wal = rc_wal,
};

/* A loopback TCP socket bound to a free port; listening (with a backlog that the kernel
 * completes connections into, never accepted) when @listening.  Returns the fd. */
static int loopback(bool listening, uint16_t *port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	if (listening)
		assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	*port = ntohs(addr.sin_port);
	return fd;
}

/* Run the ring and the source's timers until its state is @state (at most 5 s). */
static void run_until(struct pgsource *s, const char *state)
{
	int64_t deadline = clock_now_ms() + 5000;
	struct pgsource_status st;

	for (;;) {
		pgsource_get_status(s, &st);
		if (strcmp(st.state, state) == 0)
			return;
		if (clock_now_ms() > deadline)
			fail_msg("source is \"%s\", not \"%s\"", st.state, state);
		assert_true(ring_run(&ring, 10) >= 0);
		if (clock_now_ms() >= pgsource_next_tick(s))
			pgsource_tick(s, clock_now_ms());
	}
}

/* Let the ring deliver what is pending (cancellations); true when nothing is left. */
static bool ring_settles(void)
{
	for (int i = 0; i < 50 && ring.inflight > 0; i++)
		assert_true(ring_run(&ring, 10) >= 0);
	return ring.inflight == 0;
}

static void test_init_refuses(void **state)
{
	struct pgsource_config cfg = { .conninfo = "host=localhost", .slot = "walship" };
	struct pgsource_ops no_wal = ops;
	struct pgsource s;

	(void)state;
	assert_int_equal(pgsource_init(&s, &ring, &cfg, &ops, NULL), 0);
	assert_int_equal(pgsource_next_tick(&s), INT64_MAX);
	cfg.conninfo = "host=localhost nonsense";
	assert_int_equal(pgsource_init(&s, &ring, &cfg, &ops, NULL), -EINVAL);
	assert_non_null(strstr(last_line, "invalid connection string \"host=localhost nonsense\""));
	cfg.conninfo = "postgresql://db1:5432/?sslmode=require";
	assert_int_equal(pgsource_init(&s, &ring, &cfg, &ops, NULL), 0);
	cfg.slot = "";
	assert_int_equal(pgsource_init(&s, &ring, &cfg, &ops, NULL), -EINVAL);
	cfg.slot = "walship";
	no_wal.wal = NULL;
	assert_int_equal(pgsource_init(&s, &ring, &cfg, &no_wal, NULL), -EINVAL);
}

static void test_refused_backoff(void **state)
{
	char conninfo[128];
	struct pgsource_config cfg = { .conninfo = conninfo,
				       .slot = "walship",
				       .reconnect_min_ms = 20,
				       .reconnect_max_ms = 70 };
	struct pgsource_status st;
	struct pgsource s;
	uint16_t port;
	int fd = loopback(false, &port);
	int64_t before, after;

	(void)state;
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%u user=walship", port);
	assert_int_equal(pgsource_init(&s, &ring, &cfg, &ops, NULL), 0);
	error_lines = 0;
	before = clock_now_ms();
	pgsource_start(&s);
	run_until(&s, "waiting");
	after = clock_now_ms();
	assert_int_equal(error_lines, 1);
	pgsource_get_status(&s, &st);
	assert_non_null(strstr(st.last_error, "could not connect to the server: "));
	assert_non_null(strstr(st.last_error, "Connection refused"));
	assert_null(strchr(st.last_error, '\n'));
	assert_int_equal(st.connects, 0);
	/* The waits double from reconnect_min up to reconnect_max: 20, 40, 70, 70. */
	assert_int_equal(s.backoff_ms, 40);
	/* the first wait, 20 ms from the refusal, which came between before and after (no
	 * bound on how long that took: the machine may be loaded) */
	assert_true(pgsource_next_tick(&s) >= before + 20 && pgsource_next_tick(&s) <= after + 20);
	run_until(&s, "connecting");
	run_until(&s, "waiting");
	assert_int_equal(error_lines, 2);
	assert_int_equal(s.backoff_ms, 70);
	run_until(&s, "connecting");
	run_until(&s, "waiting");
	assert_int_equal(s.backoff_ms, 70);
	/* A reload to shorter bounds cuts the wait scheduled and the next one. */
	s.retry_at_ms = clock_now_ms() + 3600 * 1000; /* as after a long reconnect_max */
	s.backoff_ms = 3600 * 1000;
	before = clock_now_ms();
	pgsource_set_backoff(&s, 10, 30);
	assert_int_equal(s.backoff_ms, 30);
	assert_true(pgsource_next_tick(&s) <= clock_now_ms() + 30);
	assert_true(pgsource_next_tick(&s) >= before);
	run_until(&s, "connecting");
	run_until(&s, "waiting");
	assert_int_equal(s.backoff_ms, 30);
	pgsource_set_backoff(&s, 50, 0); /* a maximum below the minimum: the default */
	assert_int_equal(s.cfg.reconnect_max_ms, PGSOURCE_DEFAULT_RECONNECT_MAX_MS);
	assert_int_equal(s.backoff_ms, 50);
	pgsource_stop(&s);
	pgsource_get_status(&s, &st);
	assert_string_equal(st.state, "stopped");
	assert_true(ring_settles());
	close(fd);
}

static void test_silent_server_and_stop(void **state)
{
	char conninfo[128];
	struct pgsource_config cfg = { .conninfo = conninfo,
				       .slot = "walship",
				       .connect_timeout_ms = 150,
				       .reconnect_min_ms = 5000 };
	struct pgsource_status st;
	struct pgsource s;
	uint16_t port;
	int fd = loopback(true, &port);

	(void)state;
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%u user=walship sslmode=disable",
		 port);
	assert_int_equal(pgsource_init(&s, &ring, &cfg, &ops, NULL), 0);
	error_lines = 0;
	pgsource_start(&s);
	run_until(&s, "waiting");
	assert_int_equal(error_lines, 1);
	pgsource_get_status(&s, &st);
	assert_string_equal(st.last_error, "timeout after 150 ms connecting to the server");
	assert_true(ring_settles());

	/* Stop with the poll in flight: the cancellation completes and does nothing. */
	pgsource_start(&s);
	for (int i = 0; i < 5; i++)
		assert_true(ring_run(&ring, 10) >= 0);
	assert_true(s.poll_inflight);
	pgsource_stop(&s);
	assert_true(ring_settles());
	assert_false(s.poll_inflight);
	pgsource_get_status(&s, &st);
	assert_string_equal(st.state, "stopped");
	assert_int_equal(pgsource_next_tick(&s), INT64_MAX);
	assert_int_equal(error_lines, 1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_refuses),
		cmocka_unit_test(test_refused_backoff),
		cmocka_unit_test(test_silent_server_and_stop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
