// SPDX-License-Identifier: MIT
/*
 * nlcheck: the guest's probe of walship.ko (test/kernel/guest-init.sh).
 *
 *   nlcheck policy           send requests the module must refuse, with raw netlink so
 *                            that malformed attributes can be built; prints one
 *                            "PASS: ..." or "FAIL: ..." line per check, then
 *                            "DONE: N check(s)" once all ran
 *   nlcheck poll FILE MS     read FILE and print "read: VALUE" (its first line), poll()
 *                            it for POLLPRI, print "woke: VALUE" with its new first line,
 *                            or "timeout"
 *   nlcheck gone FILE MS     read FILE and print "read: VALUE", then poll() it until it
 *                            is removed: print "woke: gone" once a read fails after a
 *                            wake-up (each other wake-up printed "woke: VALUE"), or
 *                            "timeout" when MS milliseconds pass in all
 *   nlcheck events NAME STATES MS
 *                            join the multicast group "events", print "subscribed", then
 *                            wait for a WALSHIP_CMD_EVENT about the peer or standby NAME
 *                            whose state is one of the comma-separated STATES ("gone" for
 *                            its removal; others are skipped): print "event: NAME STATE",
 *                            or "timeout" once MS milliseconds have passed in all ("timeout
 *                            after N overruns" when the socket's buffer overflowed and the
 *                            kernel dropped events meanwhile: multicast is best effort)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <walship/netlink.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

struct req {
	char buf[8192];
	size_t len;
};

static int failures;
static int results; /* PASS or FAIL lines printed */
static int events_group = -1; /* the "events" multicast group, from family_id() */

static void result(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void result(bool ok, const char *fmt, ...)
{
	va_list ap;

	results++;
	printf("%s: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failures += !ok;
}

static void req_begin(struct req *r, uint16_t type, uint8_t cmd)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)r->buf;
	struct genlmsghdr *g = NLMSG_DATA(nlh);

	memset(r->buf, 0, sizeof(r->buf));
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g->cmd = cmd;
	g->version = 1;
	r->len = NLMSG_HDRLEN + GENL_HDRLEN;
}

static void req_put(struct req *r, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)(r->buf + r->len);

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->len += NLA_ALIGN(a->nla_len);
}

static void req_put_str(struct req *r, uint16_t type, const char *s)
{
	req_put(r, type, s, (uint16_t)(strlen(s) + 1));
}

/* Each attribute nested in @a. */
#define NESTED_FOR_EACH(pos, a)                                                                    \
	for (pos = (struct nlattr *)((char *)(a) + NLA_HDRLEN);                                    \
	     (char *)pos + NLA_HDRLEN <= (char *)(a) + (a)->nla_len && pos->nla_len >= NLA_HDRLEN; \
	     pos = (struct nlattr *)((char *)pos + NLA_ALIGN(pos->nla_len)))

/* CTRL_ATTR_MCAST_GROUPS: one nested entry per group, with its name and id. */
static void find_events_group(const struct nlattr *groups)
{
	const struct nlattr *grp, *a;

	NESTED_FOR_EACH(grp, groups)
	{
		const char *name = NULL;
		int id = -1;

		NESTED_FOR_EACH(a, grp)
		{
			if (a->nla_type == CTRL_ATTR_MCAST_GRP_NAME)
				name = (const char *)a + NLA_HDRLEN;
			if (a->nla_type == CTRL_ATTR_MCAST_GRP_ID)
				id = (int)*(const uint32_t *)((const char *)a + NLA_HDRLEN);
		}
		if (name && !strcmp(name, WALSHIP_GENL_MCGRP))
			events_group = id;
	}
}

/*
 * Send @r and read the answer: returns the error (0 for an ACK) and copies the extended
 * ACK message into @msg; for a reply with CTRL_ATTR_FAMILY_ID, *family gets it.
 */
static int req_send(int fd, struct req *r, char *msg, size_t msglen, int *family)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)r->buf;
	static char in[16384];
	ssize_t n;

	nlh->nlmsg_len = (uint32_t)r->len;
	msg[0] = '\0';
	if (send(fd, r->buf, r->len, 0) < 0)
		return -errno;
	for (;;) {
		n = recv(fd, in, sizeof(in), 0);
		if (n < 0)
			return -errno;
		for (nlh = (struct nlmsghdr *)in; NLMSG_OK(nlh, n); nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nlh);
				size_t off = NLMSG_HDRLEN + sizeof(*e);
				struct nlattr *a;

				if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
					off += e->msg.nlmsg_len - NLMSG_HDRLEN;
				if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
					for (a = (struct nlattr *)((char *)nlh + off);
					     (char *)a + NLA_HDRLEN <= (char *)nlh + nlh->nlmsg_len;
					     a = (struct nlattr *)((char *)a +
								   NLA_ALIGN(a->nla_len))) {
						if (a->nla_len < NLA_HDRLEN)
							break;
						if (a->nla_type == NLMSGERR_ATTR_MSG)
							snprintf(msg, msglen, "%s",
								 (char *)a + NLA_HDRLEN);
					}
				}
				return e->error;
			}
			if (family && nlh->nlmsg_type == GENL_ID_CTRL) {
				struct nlattr *a =
					(struct nlattr *)((char *)NLMSG_DATA(nlh) + GENL_HDRLEN);
				char *end = (char *)nlh + nlh->nlmsg_len;

				for (; (char *)a + NLA_HDRLEN <= end && a->nla_len >= NLA_HDRLEN;
				     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
					if (a->nla_type == CTRL_ATTR_FAMILY_ID)
						*family = *(uint16_t *)((char *)a + NLA_HDRLEN);
					if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_MCAST_GROUPS)
						find_events_group(a);
				}
			}
		}
	}
}

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	int one = 1;

	if (fd < 0 || setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) < 0) {
		perror("netlink socket");
		exit(2);
	}
	return fd;
}

static int family_id(int fd)
{
	struct req r;
	char msg[256];
	int family = -1;

	req_begin(&r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY);
	req_put_str(&r, CTRL_ATTR_FAMILY_NAME, WALSHIP_GENL_NAME);
	if (req_send(fd, &r, msg, sizeof(msg), &family) < 0 || family < 0) {
		fprintf(stderr, "generic netlink family \"%s\" not found\n", WALSHIP_GENL_NAME);
		exit(2);
	}
	return family;
}

/* Send @r; check the error is @want and the extended ACK contains @text (NULL: any text). */
static void expect(int fd, struct req *r, int want, const char *text, const char *what)
{
	char msg[512];
	int err = req_send(fd, r, msg, sizeof(msg), NULL);

	result(err == want && (!text || strstr(msg, text)) && (want == 0 || text == NULL || msg[0]),
	       "%s refused with error %d and extended ack \"%s\"", what, err, msg);
}

/* The first line of @path equals @want. */
static bool file_is(const char *path, const char *want)
{
	char buf[256];
	FILE *f = fopen(path, "r");
	bool ok = false;

	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		ok = !strcmp(buf, want);
	}
	fclose(f);
	return ok;
}

/* The standby commands: the same name rule and bound as peers, their own value checks. */
static void check_standby_policy(int fd, int fam)
{
	static const char dir[] = "/sys/kernel/walship/standbys/";
	char name[300], path[256], msg[256];
	int64_t s64;
	uint32_t u32;
	struct req r;
	int err;

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "bad name");
	expect(fd, &r, -EINVAL, "standby name must be", "standby name with a space");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "..");
	expect(fd, &r, -EINVAL, "standby name must be", "standby name \"..\"");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	u32 = WALSHIP_STANDBY_STREAMING;
	req_put(&r, WALSHIP_A_STANDBY_STATE, &u32, sizeof(u32));
	expect(fd, &r, -EINVAL, "missing standby name", "SET_STANDBY without a name");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "sb");
	u32 = 99;
	req_put(&r, WALSHIP_A_STANDBY_STATE, &u32, sizeof(u32));
	expect(fd, &r, -ERANGE, NULL, "standby state 99 out of range");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "sb");
	s64 = -2;
	req_put(&r, WALSHIP_A_STANDBY_REPLAY_LAG_MS, &s64, sizeof(s64));
	expect(fd, &r, -ERANGE, NULL, "standby replay lag -2 (below -1, none)");

	memset(name, 'h', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "sb");
	req_put_str(&r, WALSHIP_A_STANDBY_HOLD, name);
	expect(fd, &r, -EINVAL, NULL, "oversized hold text (299 bytes)");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "sb");
	req_put_str(&r, WALSHIP_A_STANDBY_HOLD, "held at 0/1\nstate = streaming");
	expect(fd, &r, -EINVAL, "hold must be one line", "hold text with a newline");
	result(access("/sys/kernel/walship/standbys/sb", F_OK) < 0,
	       "a refused hold creates no standby");

	/* A standby given its name only shows what status says of one that reported nothing. */
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "sb");
	err = req_send(fd, &r, msg, sizeof(msg), NULL);
	result(err == 0 && file_is("/sys/kernel/walship/standbys/sb/replay_lag_ms", "-1") &&
		       file_is("/sys/kernel/walship/standbys/sb/delay_ms", "-1") &&
		       file_is("/sys/kernel/walship/standbys/sb/send_limit", "none") &&
		       file_is("/sys/kernel/walship/standbys/sb/state", "unknown") &&
		       file_is("/sys/kernel/walship/standbys/sb/hold", ""),
	       "a standby created with its name only: lags and delay -1, send_limit none, "
	       "state unknown, hold empty (error %d)",
	       err);

	for (int i = 0; i <= WALSHIP_MAX_STANDBYS; i++) {
		snprintf(name, sizeof(name), "sb%d", i);
		req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
		req_put_str(&r, WALSHIP_A_STANDBY_NAME, i ? name : "sb");
		err = req_send(fd, &r, msg, sizeof(msg), NULL);
		if (i < WALSHIP_MAX_STANDBYS && err) {
			result(false, "standby %d of %d refused: %d %s", i, WALSHIP_MAX_STANDBYS,
			       err, msg);
			break;
		}
		if (i == WALSHIP_MAX_STANDBYS)
			result(err == -ENOSPC && strstr(msg, "too many standbys"),
			       "standby %d beyond the maximum refused with error %d and extended ack "
			       "\"%s\"",
			       i + 1, err, msg);
	}
	for (int i = 0; i < WALSHIP_MAX_STANDBYS; i++) {
		snprintf(name, sizeof(name), "sb%d", i);
		req_begin(&r, (uint16_t)fam, WALSHIP_CMD_DEL_STANDBY);
		req_put_str(&r, WALSHIP_A_STANDBY_NAME, i ? name : "sb");
		req_send(fd, &r, msg, sizeof(msg), NULL);
	}
	snprintf(path, sizeof(path), "%ssb", dir);
	result(access(path, F_OK) < 0, "DEL_STANDBY removes standbys/sb/");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_DEL_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "sb");
	expect(fd, &r, -ENOENT, "no such standby", "DEL_STANDBY of a standby not there");
}

/*
 * One publisher at a time: while the socket that set the node is open, another socket's
 * changes are refused (two daemons on one host); once it closes, another may publish.
 */
static void check_publisher(int fam)
{
	int first = nl_open(), second = nl_open();
	char msg[256];
	struct req r;
	int err;

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_NODE);
	req_put_str(&r, WALSHIP_A_NODE_NAME, "pub1");
	err = req_send(first, &r, msg, sizeof(msg), NULL);
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "pubpeer");
	err = err ? err : req_send(first, &r, msg, sizeof(msg), NULL);
	result(err == 0 && file_is("/sys/kernel/walship/node_name", "pub1"),
	       "a first socket publishes its node and a peer (error %d %s)", err, msg);

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_NODE);
	req_put_str(&r, WALSHIP_A_NODE_NAME, "pub2");
	expect(second, &r, -EBUSY, "another socket publishes", "SET_NODE from a second socket");
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "intruder");
	expect(second, &r, -EBUSY, "another socket publishes", "SET_PEER from a second socket");
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_DEL_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "pubpeer");
	expect(second, &r, -EBUSY, "another socket publishes", "DEL_PEER from a second socket");
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_STANDBY);
	req_put_str(&r, WALSHIP_A_STANDBY_NAME, "intruder");
	expect(second, &r, -EBUSY, "another socket publishes", "SET_STANDBY from a second socket");
	result(file_is("/sys/kernel/walship/node_name", "pub1") &&
		       access("/sys/kernel/walship/peers/intruder", F_OK) < 0 &&
		       access("/sys/kernel/walship/standbys/intruder", F_OK) < 0 &&
		       access("/sys/kernel/walship/peers/pubpeer", F_OK) == 0,
	       "the second socket changed nothing");

	close(first);
	result(file_is("/sys/kernel/walship/daemon", "none") &&
		       file_is("/sys/kernel/walship/peers/pubpeer/state", "unknown"),
	       "the publisher's socket closed: daemon none, its peer unknown");
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_NODE);
	req_put_str(&r, WALSHIP_A_NODE_NAME, "pub2");
	err = req_send(second, &r, msg, sizeof(msg), NULL);
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_DEL_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "pubpeer");
	err = err ? err : req_send(second, &r, msg, sizeof(msg), NULL);
	result(err == 0 && file_is("/sys/kernel/walship/node_name", "pub2") &&
		       access("/sys/kernel/walship/peers/pubpeer", F_OK) < 0,
	       "then a second socket publishes and removes the stale peer (error %d %s)", err, msg);
	close(second);
	result(file_is("/sys/kernel/walship/daemon", "none"),
	       "its socket closed: daemon none again");
}

static int check_policy(void)
{
	int fd = nl_open();
	int fam = family_id(fd);
	char name[300];
	uint32_t u32;
	struct req r;
	pid_t pid;
	int status;

	/* Without CAP_NET_ADMIN: a child that gave up root. */
	pid = fork();
	if (pid == 0) {
		static const struct {
			uint8_t cmd;
			uint16_t attr;
		} writes[] = {
			{ WALSHIP_CMD_SET_NODE, WALSHIP_A_NODE_NAME },
			{ WALSHIP_CMD_SET_PEER, WALSHIP_A_PEER_NAME },
			{ WALSHIP_CMD_DEL_PEER, WALSHIP_A_PEER_NAME },
			{ WALSHIP_CMD_SET_STANDBY, WALSHIP_A_STANDBY_NAME },
			{ WALSHIP_CMD_DEL_STANDBY, WALSHIP_A_STANDBY_NAME },
		};
		char msg[256];
		int err, bad = 0;

		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(3);
		for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
			req_begin(&r, (uint16_t)fam, writes[i].cmd);
			req_put_str(&r, writes[i].attr, "intruder");
			err = req_send(fd, &r, msg, sizeof(msg), NULL);
			bad += err != -EPERM;
		}
		_exit(bad ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	result(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "SET_NODE, SET_PEER, DEL_PEER, SET_STANDBY, DEL_STANDBY without CAP_NET_ADMIN "
	       "refused with EPERM");
	result(access("/sys/kernel/walship/peers/intruder", F_OK) < 0 &&
		       access("/sys/kernel/walship/standbys/intruder", F_OK) < 0 &&
		       file_is("/sys/kernel/walship/node_name", ""),
	       "the unprivileged sender changed nothing");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "");
	expect(fd, &r, -EINVAL, "peer name must be", "empty peer name");

	/* NLA_NUL_STRING: a name without its terminating NUL is refused by the policy. */
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put(&r, WALSHIP_A_PEER_NAME, "unterminated", 12);
	expect(fd, &r, -EINVAL, NULL, "peer name without a terminating NUL");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "bad/name");
	expect(fd, &r, -EINVAL, "peer name must be", "peer name with \"/\"");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "..");
	expect(fd, &r, -EINVAL, "peer name must be", "peer name \"..\"");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, ".r2");
	expect(fd, &r, -EINVAL, "not starting with", "peer name \".r2\" (leading dot)");

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, name);
	expect(fd, &r, -EINVAL, NULL, "oversized peer name (299 bytes)");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "short");
	u32 = 1;
	req_put(&r, WALSHIP_A_PEER_SENT_LSN, &u32, sizeof(u32));
	expect(fd, &r, -EINVAL, NULL, "4-byte value for a u64 attribute");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	req_put_str(&r, WALSHIP_A_PEER_NAME, "short");
	u32 = 99;
	req_put(&r, WALSHIP_A_PEER_STATE, &u32, sizeof(u32));
	expect(fd, &r, -ERANGE, NULL, "peer state 99 out of range");

	req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
	u32 = 1;
	req_put(&r, WALSHIP_A_PEER_STATE, &u32, sizeof(u32));
	expect(fd, &r, -EINVAL, "missing peer name", "SET_PEER without a name");

	for (int i = 0; i <= WALSHIP_MAX_PEERS; i++) {
		char msg[256];
		int err;

		snprintf(name, sizeof(name), "peer%d", i);
		req_begin(&r, (uint16_t)fam, WALSHIP_CMD_SET_PEER);
		req_put_str(&r, WALSHIP_A_PEER_NAME, name);
		err = req_send(fd, &r, msg, sizeof(msg), NULL);
		if (i < WALSHIP_MAX_PEERS && err) {
			result(false, "peer %d of %d refused: %d %s", i, WALSHIP_MAX_PEERS, err,
			       msg);
			break;
		}
		if (i == WALSHIP_MAX_PEERS)
			result(err == -ENOSPC && strstr(msg, "too many peers"),
			       "peer %d beyond the maximum refused with error %d and extended ack \"%s\"",
			       i + 1, err, msg);
	}
	for (int i = 0; i < WALSHIP_MAX_PEERS; i++) {
		char msg[256];

		snprintf(name, sizeof(name), "peer%d", i);
		req_begin(&r, (uint16_t)fam, WALSHIP_CMD_DEL_PEER);
		req_put_str(&r, WALSHIP_A_PEER_NAME, name);
		req_send(fd, &r, msg, sizeof(msg), NULL);
	}
	check_standby_policy(fd, fam);
	check_publisher(fam);
	close(fd);
	printf("DONE: %d check(s)\n", results);
	return failures ? 1 : 0;
}

static int read_first_line(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Open @path and read its first line into @value, printed as "read: VALUE": from then on
 * a change wakes a poll() on it (the caller waits for this line).  Returns the
 * descriptor, or -1 (said on stderr). */
static int open_read(const char *path, char *value, size_t len)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0 || read_first_line(fd, value, len) < 0) {
		perror(path);
		return -1;
	}
	printf("read: %s\n", value);
	fflush(stdout);
	return fd;
}

static int check_poll(const char *path, int timeout_ms)
{
	struct pollfd pfd = { .events = POLLPRI | POLLERR };
	char value[256];

	pfd.fd = open_read(path, value, sizeof(value));
	if (pfd.fd < 0)
		return 2;
	if (poll(&pfd, 1, timeout_ms) <= 0) {
		printf("timeout\n");
		return 1;
	}
	read_first_line(pfd.fd, value, sizeof(value));
	printf("woke: %s\n", value);
	return 0;
}

static int check_gone(const char *path, int timeout_ms)
{
	struct pollfd pfd = { .events = POLLPRI | POLLERR };
	struct timespec t0, t;
	char value[256];

	pfd.fd = open_read(path, value, sizeof(value));
	if (pfd.fd < 0)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long left;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = timeout_ms -
		       ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			printf("timeout\n");
			return 1;
		}
		if (read_first_line(pfd.fd, value, sizeof(value)) < 0) {
			printf("woke: gone\n");
			return 0;
		}
		printf("woke: %s\n", value);
		fflush(stdout);
	}
}

/* Is @state one of the comma-separated @states? */
static bool state_listed(const char *states, const char *state)
{
	size_t len = strlen(state);

	for (const char *p = states; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, state, len) && (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

static int check_events(const char *peer, const char *states, int timeout_ms)
{
	int fd = nl_open();
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	static char in[16384];
	int rcvbuf = 4 << 20, overruns = 0;

	family_id(fd);
	/* Every update of every entry is an event: room for bursts while this process waits
	 * for a CPU (TCG on a busy host); FORCE, as root, past rmem_max. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
	if (events_group < 0 || setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &events_group,
					   sizeof(events_group)) < 0) {
		fprintf(stderr, "cannot join multicast group \"%s\"\n", WALSHIP_GENL_MCGRP);
		return 2;
	}
	printf("subscribed\n");
	fflush(stdout);
	/* TIMEOUT_MS bounds the whole wait, whatever other events arrive meanwhile. */
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t deadline_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + timeout_ms;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t left = deadline_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		ssize_t n = recv(fd, in, sizeof(in), 0);
		struct nlmsghdr *nlh;

		if (n < 0 && errno == ENOBUFS) { /* events were dropped; later ones still come */
			overruns++;
			continue;
		}
		if (n < 0)
			break;
		for (nlh = (struct nlmsghdr *)in; NLMSG_OK(nlh, n); nlh = NLMSG_NEXT(nlh, n)) {
			struct genlmsghdr *g = NLMSG_DATA(nlh);
			struct nlattr *a = (struct nlattr *)((char *)g + GENL_HDRLEN);
			char *end = (char *)nlh + nlh->nlmsg_len;
			const char *name = NULL, *state = NULL;

			if (nlh->nlmsg_type < NLMSG_MIN_TYPE || g->cmd != WALSHIP_CMD_EVENT)
				continue;
			for (; (char *)a + NLA_HDRLEN <= end && a->nla_len >= NLA_HDRLEN;
			     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
				uint32_t v = a->nla_len >= NLA_HDRLEN + 4 ?
						     *(uint32_t *)((char *)a + NLA_HDRLEN) :
						     0;

				if (a->nla_type == WALSHIP_A_PEER_NAME ||
				    a->nla_type == WALSHIP_A_STANDBY_NAME)
					name = (const char *)a + NLA_HDRLEN;
				if (a->nla_type == WALSHIP_A_PEER_STATE)
					state = v <= WALSHIP_PEER_MAX ? walship_peer_state_name(v) :
									"?";
				if (a->nla_type == WALSHIP_A_STANDBY_STATE)
					state = v <= WALSHIP_STANDBY_MAX ?
							walship_standby_state_name(v) :
							"?";
				if (a->nla_type == WALSHIP_A_PEER_GONE ||
				    a->nla_type == WALSHIP_A_STANDBY_GONE)
					state = "gone";
			}
			if (name && state && !strcmp(name, peer) && state_listed(states, state)) {
				printf("event: %s %s\n", name, state);
				return 0;
			}
		}
	}
	if (overruns)
		printf("timeout after %d overruns\n", overruns);
	else
		printf("timeout\n");
	return 1;
}

int main(int argc, char **argv)
{
	/* A line at a time: a crash does not lose the results printed before it. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "policy"))
		return check_policy();
	if (argc == 4 && !strcmp(argv[1], "poll"))
		return check_poll(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "gone"))
		return check_gone(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "events"))
		return check_events(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: nlcheck policy | nlcheck poll FILE TIMEOUT_MS |\n"
			"       nlcheck gone FILE TIMEOUT_MS |\n"
			"       nlcheck events NAME STATE[,STATE...] TIMEOUT_MS\n");
	return 2;
}
