// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/net/acceptor.c with a real ring and a loopback listener: at the
 * open-file limit the connections waiting are closed at once, the loop then waits
 * without spinning, writes one log line, and accepts again once a descriptor is free.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "net/acceptor.h"

#define CLIENTS 20

static struct ring ring;
static struct acceptor acc;
static int accepted[CLIENTS + 1];
static int naccepted;
static int rounds; /* callbacks: completions of accepts, polls and timers */
static int log_lines;

static void count_line(void *arg, enum log_level level, const char *line, size_t len)
{
	(void)arg;
	(void)level;
	(void)line;
	(void)len;
	log_lines++;
}

static void done(struct acceptor *a, int res)
{
	rounds++;
	if (res >= 0) {
		assert_true(naccepted < CLIENTS + 1);
		accepted[naccepted++] = res;
	}
	acceptor_post(a);
}

static int listen_loopback(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

static int connect_loopback(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (const struct sockaddr *)addr, sizeof(*addr)), 0);
	return fd;
}

/* Has the daemon side closed @fd's connection (end of stream or reset)? */
static bool closed_by_peer(int fd)
{
	struct timeval tv = { .tv_sec = 2 };
	char byte;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return recv(fd, &byte, 1, 0) <= 0 && errno != EAGAIN;
}

static void test_descriptor_limit(void **state)
{
	struct rlimit old, low;
	struct sockaddr_in addr;
	int listen_fd, clients[CLIENTS], highest = 0, rounds_idle, extra;

	(void)state;
	assert_int_equal(ring_init(&ring, 64, 1, 4096), 0);
	listen_fd = listen_loopback(&addr);
	assert_int_equal(acceptor_init(&acc, &ring, listen_fd, "test connection", done, NULL), 0);
	for (int i = 0; i < CLIENTS; i++) {
		clients[i] = connect_loopback(&addr);
		if (clients[i] > highest)
			highest = clients[i];
	}
	/* No free descriptor number below the limit: only the reserve can be given up. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)highest + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	log_set_sink(count_line, NULL);

	acceptor_post(&acc);
	for (int i = 0; i < 10; i++)
		ring_run(&ring, 20);
	assert_int_equal(naccepted, 0);
	for (int i = 0; i < CLIENTS; i++)
		assert_true(closed_by_peer(clients[i]));
	/* At the limit with nothing waiting: no spinning, and one message (with its DETAIL). */
	rounds_idle = rounds;
	for (int i = 0; i < 10; i++)
		ring_run(&ring, 20);
	assert_true(rounds - rounds_idle <= 1);
	assert_int_equal(log_lines, 2);

	/* Two descriptors free up (the new client takes one): the new client is served. */
	close(clients[0]);
	close(clients[1]);
	extra = connect_loopback(&addr);
	for (int i = 0; i < 10 && naccepted == 0; i++)
		ring_run(&ring, 50);
	assert_int_equal(naccepted, 1);
	assert_int_equal(log_lines, 2); /* "accepted again" waits for the interval */

	log_set_sink(NULL, NULL);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	close(accepted[0]);
	close(extra);
	for (int i = 2; i < CLIENTS; i++)
		close(clients[i]);
	ring_exit(&ring);
	acceptor_release(&acc);
	close(listen_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_descriptor_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
