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
 * Take the descriptors of @msg: the first stays in *@first, the others are closed at
 * once.  Returns how many there were.  Sets *@other when ancillary data other than
 * SCM_RIGHTS came, or a header does not fit in the buffer.
 */
static unsigned int request_take_fds(struct msghdr *msg, int *first, bool *other)
{
	unsigned int count = 0;
	struct cmsghdr *cmsg;
	const char *end;

	*first = -1;
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
			if (count++ == 0)
				*first = passed;
			else
				close(passed);
		}
	}
	return count;
}

int control_request_check(const struct ctl_request *req, size_t len, struct msghdr *msg, int *fd,
			  const char **why)
{
	bool other;
	unsigned int nfds = request_take_fds(msg, fd, &other);

	*why = NULL;
	if (nfds > 1 || (msg->msg_flags & MSG_CTRUNC))
		*why = "more than one descriptor passed";
	else if (other)
		*why = "unexpected ancillary data";
	else if (len != sizeof(*req) || (msg->msg_flags & MSG_TRUNC) || req->magic != CTL_MAGIC ||
		 req->version != CTL_VERSION || !memchr(req->name, '\0', sizeof(req->name)))
		*why = "malformed control request";
	else if (req->op == CTL_PUSH && nfds == 0)
		*why = "no file descriptor passed";
	else if (req->op != CTL_PUSH && nfds == 1)
		*why = "a descriptor passed with a request that takes none";
	if (!*why)
		return 0;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return -EBADMSG;
}
