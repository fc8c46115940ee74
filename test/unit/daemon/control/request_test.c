// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/control/request.c: real requests through a SOCK_SEQPACKET pair,
 * received as control.c receives them (room for CTL_MAX_FDS + 1 descriptors,
 * MSG_CMSG_CLOEXEC).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/request.h"

struct received {
	struct ctl_request req;
	size_t len;
	struct msghdr msg;
	struct iovec iov;
	union {
		char buf[CMSG_SPACE(sizeof(int) * (CTL_MAX_FDS + 1))];
		struct cmsghdr align;
	} cmsg;
};

/* Send @len bytes of @req with @nfds dups of /dev/null (their numbers in @sent). */
static void send_request(int sock, const struct ctl_request *req, size_t len, int nfds, int *sent)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)req, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;

	assert_true(nfds <= 8);
	if (nfds) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		for (int i = 0; i < nfds; i++) {
			sent[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
			assert_true(sent[i] >= 0);
		}
		memcpy(CMSG_DATA(cmsg), sent, sizeof(int) * nfds);
	}
	assert_int_equal(sendmsg(sock, &msg, 0), (ssize_t)len);
	for (int i = 0; i < nfds; i++)
		close(sent[i]); /* the message holds its own references */
}

static void receive_request(int sock, struct received *r)
{
	ssize_t got;

	memset(r, 0, sizeof(*r));
	r->iov.iov_base = &r->req;
	r->iov.iov_len = sizeof(r->req);
	r->msg.msg_iov = &r->iov;
	r->msg.msg_iovlen = 1;
	r->msg.msg_control = r->cmsg.buf;
	r->msg.msg_controllen = sizeof(r->cmsg.buf);
	got = recvmsg(sock, &r->msg, MSG_CMSG_CLOEXEC);
	assert_true(got >= 0);
	r->len = (size_t)got;
}

static int open_fds(void)
{
	int count = 0;

	for (int fd = 0; fd < 1024; fd++)
		count += fcntl(fd, F_GETFD) >= 0;
	return count;
}

/* Send, receive and check one request; returns the check's result. */
static int roundtrip(uint16_t op, uint32_t flags, uint32_t magic, size_t len, int nfds,
		     int fds[CTL_MAX_FDS], unsigned int *count, const char **why)
{
	struct ctl_request req = {
		.magic = magic, .version = CTL_VERSION, .op = op, .flags = flags
	};
	struct received r;
	int pair[2], sent[8], ret;

	snprintf(req.name, sizeof(req.name), "000000010000000000000003");
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
	send_request(pair[0], &req, len, nfds, sent);
	receive_request(pair[1], &r);
	ret = control_request_check(&r.req, r.len, &r.msg, fds, count, why);
	close(pair[0]);
	close(pair[1]);
	return ret;
}

/* A push takes one descriptor, or with CTL_F_AHEAD up to CTL_MAX_FDS, kept in order. */
static void test_push_descriptors(void **state)
{
	const size_t whole = sizeof(struct ctl_request);
	const char *why;
	int before = open_fds(), fds[CTL_MAX_FDS];
	unsigned int count = 99;

	(void)state;
	assert_int_equal(roundtrip(CTL_PUSH, 0, CTL_MAGIC, whole, 1, fds, &count, &why), 0);
	assert_int_equal(count, 1);
	assert_true(fds[0] >= 0);
	assert_int_equal(open_fds(), before + 1);
	close(fds[0]);
	assert_int_equal(roundtrip(CTL_STATUS, 0, CTL_MAGIC, whole, 0, fds, &count, &why), 0);
	assert_int_equal(count, 0);
	for (int n = 1; n <= CTL_MAX_FDS; n++) {
		assert_int_equal(
			roundtrip(CTL_PUSH, CTL_F_AHEAD, CTL_MAGIC, whole, n, fds, &count, &why),
			0);
		assert_int_equal(count, (unsigned int)n);
		assert_int_equal(open_fds(), before + n);
		for (int i = 1; i < n; i++)
			assert_true(fds[i] > fds[i - 1]); /* installed in the order passed */
		for (int i = 0; i < n; i++)
			close(fds[i]);
	}
	assert_int_equal(open_fds(), before);
}

static void expect_refused(uint16_t op, uint32_t flags, uint32_t magic, size_t len, int nfds,
			   const char *want)
{
	const char *why = NULL;
	int before = open_fds(), fds[CTL_MAX_FDS];
	unsigned int count = 1234;

	assert_int_equal(roundtrip(op, flags, magic, len, nfds, fds, &count, &why), -EBADMSG);
	assert_int_equal(count, 0);
	assert_non_null(why);
	assert_string_equal(why, want);
	assert_int_equal(open_fds(), before); /* every descriptor passed was closed */
}

static void test_refused(void **state)
{
	const size_t whole = sizeof(struct ctl_request);

	(void)state;
	expect_refused(CTL_PUSH, 0, CTL_MAGIC, whole, 2, "more than one descriptor passed");
	/* More than the receiver makes room for: MSG_CTRUNC. */
	expect_refused(CTL_PUSH, 0, CTL_MAGIC, whole, 7, "more than one descriptor passed");
	expect_refused(CTL_STATUS, 0, CTL_MAGIC, whole, 2, "more than one descriptor passed");
	expect_refused(CTL_PUSH, CTL_F_AHEAD, CTL_MAGIC, whole, CTL_MAX_FDS + 1,
		       "more descriptors passed than CTL_F_AHEAD takes");
	expect_refused(CTL_PUSH, CTL_F_AHEAD, CTL_MAGIC, whole, 8,
		       "more descriptors passed than CTL_F_AHEAD takes");
	expect_refused(CTL_STATUS, CTL_F_AHEAD, CTL_MAGIC, whole, 2,
		       "more than one descriptor passed");
	expect_refused(CTL_PUSH, 0, CTL_MAGIC, whole, 0, "no file descriptor passed");
	expect_refused(CTL_PUSH, CTL_F_AHEAD, CTL_MAGIC, whole, 0, "no file descriptor passed");
	expect_refused(CTL_STATUS, 0, CTL_MAGIC, whole, 1,
		       "a descriptor passed with a request that takes none");
	expect_refused(CTL_PUSH, 0, 0x12345678, whole, 1, "malformed control request");
	expect_refused(CTL_PUSH, 0, CTL_MAGIC, whole - 1, 1, "malformed control request");
	expect_refused(CTL_PUSH, 0, CTL_MAGIC, 0, 2, "more than one descriptor passed");
	expect_refused(CTL_PUSH, 0, CTL_MAGIC, 0, 1, "malformed control request");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_descriptors),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
