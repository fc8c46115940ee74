/* SPDX-License-Identifier: MIT */
/*
 * The check of one control request as it arrived on the control socket
 * (include/walship/control.h): the bytes, the receive flags and the descriptors passed
 * as SCM_RIGHTS.  Pure (no socket, no ring), so that the fuzz target
 * test/fuzz/fuzz_control.c drives the very code control.c runs.
 *
 * A request is acted on only if all of these hold, else it is refused whole and every
 * descriptor that came with it is closed:
 *  - it is exactly one struct ctl_request (not truncated, MSG_TRUNC clear), with
 *    CTL_MAGIC, CTL_VERSION and a NUL-terminated name;
 *  - the ancillary data is SCM_RIGHTS only and arrived whole (MSG_CTRUNC clear: the
 *    kernel sets it when a client sent more descriptors than the daemon makes room for);
 *  - CTL_PUSH carries exactly one descriptor, or with CTL_F_AHEAD one to CTL_MAX_FDS;
 *    every other operation none.
 * The operation itself is the role's to judge (an unknown op is answered there).
 */
#ifndef WALSHIP_CONTROL_REQUEST_H
#define WALSHIP_CONTROL_REQUEST_H

#include <stddef.h>
#include <sys/socket.h>

#include <walship/control.h>

/*
 * Check @req, of which @len bytes arrived (recvmsg()'s result), with @msg's ancillary
 * data and msg_flags as recvmsg() left them.  Takes every descriptor passed in @msg.
 * Returns 0 with the request's descriptors in @fds, in the order they were passed, and
 * their number in *@nfds (0 for an operation that takes none), or -EBADMSG with every
 * descriptor closed, *@nfds = 0 and *@why saying what was wrong (a constant string,
 * lowercase, for the reply and the log).
 */
int control_request_check(const struct ctl_request *req, size_t len, struct msghdr *msg,
			  int fds[CTL_MAX_FDS], unsigned int *nfds, const char **why);

#endif /* WALSHIP_CONTROL_REQUEST_H */
