// SPDX-License-Identifier: MIT
/*
 * Fuzz target: a request as it arrives on the control socket (control_request_check() in
 * daemon/control/request.c): the bytes, the receive flags and the descriptors passed.
 *
 * Input: byte 0 the receive flags (bit 0 MSG_TRUNC, bit 1 MSG_CTRUNC, bit 2 no ancillary
 * buffer at all); byte 1 the number of control messages (low two bits); then one byte per
 * control message (bit 7: another level than SOL_SOCKET, bit 6: another type than
 * SCM_RIGHTS, low three bits: how many descriptors, at most 4); the rest is the request
 * as received.  More bytes than a request are cut and flagged MSG_TRUNC, as the kernel
 * does with SOCK_SEQPACKET.  The descriptors are real (/dev/null), so that what the check
 * closes can be seen.
 *
 * Properties: the result is 0 or -EBADMSG; a refused request has every descriptor closed,
 * none returned and a reason; an accepted one is a whole, well-formed request whose
 * operation has the descriptors it takes (one with CTL_PUSH, up to CTL_MAX_FDS with
 * CTL_F_AHEAD, none otherwise), returned open in the order they were passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include "control/request.h"
#include "fuzz.h"

#define MAX_CMSGS 3
#define MAX_FDS_PER_CMSG 4

static int devnull = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0)
		abort();
	return 0;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	union {
		char buf[MAX_CMSGS * CMSG_SPACE(sizeof(int) * MAX_FDS_PER_CMSG)];
		struct cmsghdr align;
	} control;
	int passed[MAX_CMSGS * MAX_FDS_PER_CMSG];
	unsigned int npassed = 0, ncmsgs;
	struct ctl_request req;
	struct msghdr msg = { 0 };
	struct cmsghdr *cmsg;
	size_t controllen = 0, len;
	const char *why = "unset";
	int fds[CTL_MAX_FDS], ret;
	unsigned int nfds = 99;

	if (size < 2)
		return 0;
	ncmsgs = data[1] & 3;
	if (size < 2 + ncmsgs || ncmsgs > MAX_CMSGS)
		return 0;
	memset(&control, 0, sizeof(control));
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	cmsg = CMSG_FIRSTHDR(&msg);
	for (unsigned int i = 0; i < ncmsgs; i++) {
		uint8_t plan = data[2 + i];
		unsigned int n = plan & 7;

		if (n > MAX_FDS_PER_CMSG)
			n = MAX_FDS_PER_CMSG;
		cmsg->cmsg_level = (plan & 0x80) ? IPPROTO_IP : SOL_SOCKET;
		cmsg->cmsg_type = (plan & 0x40) ? SCM_CREDENTIALS : SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n);
		for (unsigned int k = 0; k < n; k++) {
			/* Only SCM_RIGHTS at SOL_SOCKET carries descriptors the check owns. */
			int value = -1;

			if (!(plan & 0xc0)) {
				value = fcntl(devnull, F_DUPFD_CLOEXEC, 0);
				if (value < 0)
					abort();
				passed[npassed++] = value;
			}
			memcpy(CMSG_DATA(cmsg) + k * sizeof(int), &value, sizeof(int));
		}
		controllen += CMSG_SPACE(sizeof(int) * n);
		cmsg = (struct cmsghdr *)((char *)cmsg + CMSG_SPACE(sizeof(int) * n));
	}
	msg.msg_controllen = controllen;
	if (data[0] & 4 || controllen == 0) {
		/* No room for ancillary data: the kernel delivers no descriptor. */
		for (unsigned int i = 0; i < npassed; i++)
			close(passed[i]);
		npassed = 0;
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
	}
	if (data[0] & 1)
		msg.msg_flags |= MSG_TRUNC;
	if (data[0] & 2)
		msg.msg_flags |= MSG_CTRUNC;

	data += 2 + ncmsgs;
	size -= 2 + ncmsgs;
	memset(&req, 0, sizeof(req));
	len = size;
	if (len > sizeof(req)) {
		len = sizeof(req);
		msg.msg_flags |= MSG_TRUNC;
	}
	memcpy(&req, data, len);

	ret = control_request_check(&req, len, &msg, fds, &nfds, &why);
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG);
	if (ret < 0) {
		FUZZ_ASSERT(nfds == 0);
		FUZZ_ASSERT(why && why[0]);
		for (unsigned int i = 0; i < npassed; i++)
			FUZZ_ASSERT(!fd_open(passed[i]));
		return 0;
	}
	FUZZ_ASSERT(len == sizeof(req) && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)));
	FUZZ_ASSERT(req.magic == CTL_MAGIC && req.version == CTL_VERSION);
	FUZZ_ASSERT(memchr(req.name, '\0', sizeof(req.name)) != NULL);
	FUZZ_ASSERT(nfds == npassed);
	if (req.op == CTL_PUSH)
		FUZZ_ASSERT(npassed >= 1 &&
			    npassed <=
				    ((req.flags & CTL_F_AHEAD) ? (unsigned int)CTL_MAX_FDS : 1u));
	else
		FUZZ_ASSERT(npassed == 0);
	for (unsigned int i = 0; i < nfds; i++) {
		FUZZ_ASSERT(fds[i] == passed[i] && fd_open(fds[i]));
		close(fds[i]);
	}
	return 0;
}
