// SPDX-License-Identifier: MIT
/*
 * The check of a received control request (see request.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "control/request.h"

/*
 * Take the descriptors of @msg: the first CTL_MAX_FDS stay in @fds, the others are
 * closed at once.  Returns how many there were.  Sets *@other when ancillary data other
 * than SCM_RIGHTS came, or a header does not fit in the buffer.
 */
static unsigned int request_take_fds(struct msghdr *msg, int fds[CTL_MAX_FDS], bool *other)
{
	unsigned int count = 0;
	struct cmsghdr *cmsg;
	const char *end;

	*other = false;
	if (!msg->msg_control)
		return 0;
	end = (const char *)msg->msg_control + msg->msg_controllen;
	for (cmsg = CMSG_FIRSTHDR(msg); cmsg; cmsg = CMSG_NXTHDR(msg, cmsg)) {
		size_t n;

		if (cmsg->cmsg_len < CMSG_LEN(0) ||
		    cmsg->cmsg_len > (size_t)(end - (const char *)cmsg)) {
			*other = true;
			break;
		}
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
			*other = true;
			continue;
		}
		n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int passed;

			memcpy(&passed, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
			if (count < CTL_MAX_FDS)
				fds[count] = passed;
			else
				close(passed);
			count++;
		}
	}
	return count;
}

int control_request_check(const struct ctl_request *req, size_t len, struct msghdr *msg,
			  int fds[CTL_MAX_FDS], unsigned int *nfds, const char **why)
{
	bool other;
	unsigned int count = request_take_fds(msg, fds, &other);
	bool push = len == sizeof(*req) && req->op == CTL_PUSH;
	unsigned int most = push && (req->flags & CTL_F_AHEAD) ? CTL_MAX_FDS : 1;

	*why = NULL;
	if (count > most || (msg->msg_flags & MSG_CTRUNC))
		*why = most > 1 ? "more descriptors passed than CTL_F_AHEAD takes" :
				  "more than one descriptor passed";
	else if (other)
		*why = "unexpected ancillary data";
	else if (len != sizeof(*req) || (msg->msg_flags & MSG_TRUNC) || req->magic != CTL_MAGIC ||
		 req->version != CTL_VERSION || !memchr(req->name, '\0', sizeof(req->name)))
		*why = "malformed control request";
	else if (push && count == 0)
		*why = "no file descriptor passed";
	else if (!push && count > 0)
		*why = "a descriptor passed with a request that takes none";
	*nfds = *why ? 0 : count;
	if (!*why)
		return 0;
	for (unsigned int i = 0; i < count && i < CTL_MAX_FDS; i++)
		close(fds[i]);
	return -EBADMSG;
}
