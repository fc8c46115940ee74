// SPDX-License-Identifier: MIT
/*
 * Tests for daemon/control/control.c over a real io_uring and a real control socket: a
 * request not answered at once (a push) is watched, and a client that closes its end
 * before the answer is reported gone, its reply written to no one and its descriptor
 * kept until then; a client that stays gets its answer, and a kept connection (CTL_F_KEEP,
 * pushes only) its next request, the watch of the first cancelled; silent clients past
 * CONTROL_MAX_WAITING make room, the oldest closed, for a new one.  Made under build/.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/control.h"
#include "log_capture.h"
#include "ring/ring.h"

static struct ring ring;
static struct control_server cs;
static char dir[256], sock_path[300];
static struct ctl_client *pending; /* the request not answered yet */
static unsigned int requests, gone_calls;
static bool answer_at_once;

static void on_request(void *ctx, struct ctl_client *client, const struct ctl_request *req,
		       const int *fds, unsigned int nfds)
{
	(void)ctx;
	(void)req;
	control_close_fds(fds, nfds);
	requests++;
	if (answer_at_once)
		control_reply_text(client, CTL_OK, "at once");
	else
		pending = client;
}

static void on_gone(void *ctx, struct ctl_client *client)
{
	(void)ctx;
	assert_ptr_equal(client, pending);
	assert_true(control_client_gone(client));
	gone_calls++;
}

/* Run the ring until @cond or a bounded number of rounds (each waits at most 100 ms). */
#define RUN_UNTIL(cond)                                                 \
	do {                                                            \
		for (int round_ = 0; round_ < 100 && !(cond); round_++) \
			ring_run(&ring, 100);                           \
		assert_true(cond);                                      \
	} while (0)

static int setup(void **state)
{
	(void)state;
	mkdir("build", 0755);
	snprintf(dir, sizeof(dir), "build/control-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/sock", dir);
	assert_int_equal(ring_init(&ring, 64, 2, 4096), 0);
	log_capture_start();
	assert_int_equal(control_start(&cs, &ring, sock_path, "", 0600, on_request, on_gone, NULL),
			 0);
	pending = NULL;
	requests = gone_calls = 0;
	answer_at_once = false;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	control_stop(&cs);
	RUN_UNTIL(cs.clients == 0);
	for (int i = 0; i < 5; i++) /* the accept's cancellation */
		ring_run(&ring, 10);
	log_capture_stop();
	ring_exit(&ring);
	return rmdir(dir);
}

/* A client connected to the control socket. */
static int client_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Send request @op with @flags; a push passes a descriptor (of /dev/null), as it must. */
static void client_send_op(int fd, uint16_t op, uint32_t flags)
{
	struct ctl_request req = {
		.magic = CTL_MAGIC, .version = CTL_VERSION, .op = op, .flags = flags
	};
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cmsg;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	int passed = -1;

	if (op == CTL_PUSH) {
		struct cmsghdr *c;

		passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(passed >= 0);
		msg.msg_control = cmsg.buf;
		msg.msg_controllen = sizeof(cmsg.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &passed, sizeof(int));
	}
	assert_int_equal(sendmsg(fd, &msg, 0), (ssize_t)sizeof(req));
	if (passed >= 0)
		close(passed);
}

static void client_send(int fd, uint32_t flags)
{
	client_send_op(fd, CTL_STATUS, flags);
}

/* The reply's code, received on @fd (waiting for it, running the ring meanwhile). */
static int client_receive(int fd)
{
	uint8_t buf[512];
	struct ctl_reply reply;
	ssize_t n = -1;

	for (int round = 0; round < 100 && n < 0; round++) {
		ring_run(&ring, 20);
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	}
	assert_true(n >= (ssize_t)sizeof(reply));
	memcpy(&reply, buf, sizeof(reply));
	assert_int_equal(reply.magic, CTL_MAGIC);
	return reply.code;
}

/*
 * The client closes its end while its request waits: the owner is told, the client's
 * descriptor stays open until the owner's answer, which is written to no one (no "could
 * not send reply" with EPIPE) and frees the client.
 */
static void test_client_gone(void **state)
{
	int fd = client_connect();

	(void)state;
	client_send(fd, 0);
	RUN_UNTIL(pending != NULL);
	close(fd);
	RUN_UNTIL(gone_calls == 1);
	assert_int_equal(cs.clients, 1); /* kept until answered */
	control_reply_text(pending, CTL_ERR_FAILED, "for no one");
	RUN_UNTIL(cs.clients == 0);
	for (int i = 0; i < 5; i++)
		ring_run(&ring, 10);
	assert_null(strstr(captured, "could not send reply"));
}

/* A client that waits gets its answer; a kept connection its next request, answered. */
static void test_client_stays_kept(void **state)
{
	int fd = client_connect();

	(void)state;
	client_send_op(fd, CTL_PUSH, CTL_F_KEEP);
	RUN_UNTIL(pending != NULL);
	for (int i = 0; i < 3; i++) /* the watch is in flight */
		ring_run(&ring, 10);
	control_reply_text(pending, CTL_OK, "later");
	assert_int_equal(client_receive(fd), CTL_OK);
	answer_at_once = true;
	client_send_op(fd, CTL_PUSH, CTL_F_KEEP);
	assert_int_equal(client_receive(fd), CTL_OK);
	assert_int_equal(requests, 2);
	assert_int_equal(gone_calls, 0);
	assert_int_equal(cs.clients, 1);
	close(fd);
	RUN_UNTIL(cs.clients == 0);
	assert_int_equal(gone_calls, 0); /* closed while waiting for a request: not "gone" */
	assert_null(strstr(captured, "could not"));
}

/* The end of @fd's connection: recv() returns 0 (running the ring meanwhile). */
static void client_sees_end(int fd)
{
	char buf[64];
	ssize_t n = -1;

	for (int round = 0; round < 100 && n < 0; round++) {
		ring_run(&ring, 20);
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	}
	assert_int_equal(n, 0);
}

/*
 * CONTROL_MAX_WAITING silent clients do not keep a real one out: the oldest of them is
 * closed to make room, and the new one's request is answered (before, the new one was
 * closed at once, for as long as the silent ones stayed).
 */
static void test_silent_clients_evicted(void **state)
{
	int silent[CONTROL_MAX_WAITING], fd;

	(void)state;
	answer_at_once = true;
	for (int i = 0; i < CONTROL_MAX_WAITING; i++) {
		silent[i] = client_connect();
		RUN_UNTIL(cs.waiting == (unsigned int)i + 1);
	}
	fd = client_connect();
	client_send(fd, 0);
	assert_int_equal(client_receive(fd), CTL_OK);
	client_sees_end(silent[0]);
	/* The 31 silent ones left (the answered one is closed after its reply). */
	RUN_UNTIL(cs.clients == CONTROL_MAX_WAITING - 1);
	assert_int_equal(cs.waiting, CONTROL_MAX_WAITING - 1);
	close(fd);
	for (int i = 0; i < CONTROL_MAX_WAITING; i++)
		close(silent[i]);
	RUN_UNTIL(cs.clients == 0);
	assert_int_equal(cs.waiting, 0);
}

/* CTL_F_KEEP keeps a push's connection only: a status request's is closed after its
 * reply, so that no client piles up replies it does not read. */
static void test_keep_pushes_only(void **state)
{
	int fd = client_connect();

	(void)state;
	answer_at_once = true;
	client_send(fd, CTL_F_KEEP);
	assert_int_equal(client_receive(fd), CTL_OK);
	client_sees_end(fd);
	close(fd);
	RUN_UNTIL(cs.clients == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_client_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_stays_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_clients_evicted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_pushes_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
