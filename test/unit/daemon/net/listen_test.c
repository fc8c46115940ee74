// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/net/listen.c: a configured address becomes a listening socket
 * (0.0.0.0 is every address); a bad address and a port in use are errors, each logged
 * once.  (An unresolvable host is left out: its answer would depend on the resolver.)
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

#include "common/log.h"
#include "net/listen.h"

static int errors_logged;
static char last_error[512];

static void count_errors(void *arg, enum log_level level, const char *line, size_t len)
{
	(void)arg;
	if (level != LOG_LEVEL_ERROR)
		return;
	errors_logged++;
	snprintf(last_error, sizeof(last_error), "%.*s", (int)len, line);
}

static int setup(void **state)
{
	(void)state;
	log_set_sink(count_errors, NULL);
	return 0;
}

static int clean(void **state)
{
	(void)state;
	errors_logged = 0;
	last_error[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_sink(NULL, NULL);
	return 0;
}

static uint16_t local_port(int fd, struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);

	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	return ntohs(sin->sin_port);
}

/* A port the kernel picks, then released: free for the test to listen on. */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	port = local_port(fd, &sin);
	close(fd);
	return port;
}

static void test_listens(void **state)
{
	struct sockaddr_in sin;
	char addr[64];
	uint16_t port = free_port();
	int fd, type, accepting;
	socklen_t len = sizeof(int);

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	fd = net_listen_tcp("listen", addr, 8);
	assert_true(fd >= 0);
	assert_int_equal(local_port(fd, &sin), port);
	assert_int_equal(sin.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
	assert_int_equal(type, SOCK_STREAM);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len), 0);
	assert_int_equal(accepting, 1);

	/* The port is taken now: the second listener fails and says why. */
	assert_int_equal(net_listen_tcp("metrics_listen", addr, 8), -EADDRINUSE);
	assert_int_equal(errors_logged, 1);
	assert_non_null(strstr(last_error, "could not listen on"));
	assert_non_null(strstr(last_error, "metrics_listen"));
	close(fd);
}

/* 0.0.0.0 listens on every address. */
static void test_every_address(void **state)
{
	struct sockaddr_in sin;
	char addr[32];
	uint16_t port = free_port();
	int fd;

	(void)state;
	snprintf(addr, sizeof(addr), "0.0.0.0:%u", port);
	fd = net_listen_tcp("metrics_listen", addr, 8);
	assert_true(fd >= 0);
	assert_int_equal(local_port(fd, &sin), port);
	assert_int_equal(sin.sin_addr.s_addr, htonl(INADDR_ANY));
	close(fd);
	assert_int_equal(errors_logged, 0);
}

static void test_bad_address(void **state)
{
	(void)state;
	assert_int_equal(net_listen_tcp("listen", ":5480", 8), -EINVAL);
	assert_int_equal(net_listen_tcp("listen", "no-port", 8), -EINVAL);
	assert_non_null(strstr(last_error, "invalid listen address \"no-port\""));
	assert_int_equal(errors_logged, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_listens, clean),
		cmocka_unit_test_setup(test_every_address, clean),
		cmocka_unit_test_setup(test_bad_address, clean),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
