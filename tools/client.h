/* SPDX-License-Identifier: MIT */
/*
 * Client side of the local control protocol (include/walship/control.h): connect to
 * walshipd's UNIX SOCK_SEQPACKET socket, send one request (optionally with one file
 * descriptor as SCM_RIGHTS), receive and check one reply.
 *
 * Every function logs its failure once, as one ERROR line, and returns a negative errno;
 * callers add nothing but their exit code.
 */
#ifndef WALSHIP_TOOLS_CLIENT_H
#define WALSHIP_TOOLS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "walship/control.h"

struct ctl_client_reply {
	uint16_t code; /* enum ctl_code */
	char *text; /* reply text, NUL added; malloc'd, never NULL after success */
	size_t text_len; /* bytes of text, without the added NUL */
};

/*
 * Connect to the daemon at @socket_path.  @timeout_ms bounds every later send and
 * receive on the socket (SO_SNDTIMEO, SO_RCVTIMEO), and the connect itself.  On success
 * stores the socket in *@sock (close-on-exec) and returns 0.  Returns -ENAMETOOLONG for a
 * path that does not fit sun_path, or the connect error (-ENOENT, -ECONNREFUSED: the
 * daemon is not running).
 */
int ctl_client_connect(const char *socket_path, int timeout_ms, int *sock);

/*
 * As ctl_client_connect(), but one attempt that never waits: -EAGAIN, not logged, when the
 * daemon's backlog is full (it is not accepting: stopped, frozen, overwhelmed), for a
 * caller that waits its own way between attempts (the archive module, on its latch).
 */
int ctl_client_connect_nowait(const char *socket_path, int timeout_ms, int *sock);

/*
 * Send one request (@op, @flags, @name; @name may be NULL or "" for none, and must be
 * shorter than CTL_MAX_NAME) with @pass_fd attached as SCM_RIGHTS when it is >= 0, then
 * wait for the reply and fill @reply (free it with ctl_client_reply_free()).  Returns 0
 * for any well-formed reply, whatever its code; -ETIMEDOUT when none came in time;
 * -EPROTO for a malformed, truncated or mismatched reply; -ECONNRESET when the daemon
 * closed the connection without replying; other -errno from the socket calls.
 */
int ctl_client_call(int sock, uint16_t op, uint32_t flags, const char *name, int pass_fd,
		    struct ctl_client_reply *reply);

/*
 * The same with @nfds descriptors @fds (at most CTL_CLIENT_MAX_FDS) in one SCM_RIGHTS
 * message.  The protocol takes one with CTL_PUSH, up to CTL_MAX_FDS with CTL_F_AHEAD;
 * more are for tests that check the daemon refuses them (test/helpers/ctl_send.c).
 */
#define CTL_CLIENT_MAX_FDS 8
int ctl_client_call_fds(int sock, uint16_t op, uint32_t flags, const char *name, const int *fds,
			unsigned int nfds, struct ctl_client_reply *reply);

/*
 * The two halves of ctl_client_call_fds(), for a caller that waits for the reply its own
 * way (PostgreSQL's archive module waits on its latch and the socket together):
 * ctl_client_send() sends the request and returns 0, or -ENAMETOOLONG, -EINVAL, -ETIMEDOUT
 * or the socket's -errno (-EPIPE: the daemon closed the connection);
 * ctl_client_receive() waits for the reply (bounded by the connection's timeout) and
 * returns as ctl_client_call() does.
 */
int ctl_client_send(int sock, uint16_t op, uint32_t flags, const char *name, const int *fds,
		    unsigned int nfds);
int ctl_client_receive(int sock, struct ctl_client_reply *reply);

/*
 * Open the WAL file at @path for CTL_PUSH: read-only, close-on-exec, without hanging on a
 * FIFO and without O_NONBLOCK left in the descriptor's flags (they travel with it).
 * Returns the descriptor, -EINVAL when @path is not a regular file, or -errno.
 */
int ctl_client_open_push_file(const char *path);

/*
 * The segments after the one at @path (open as @wal_fd) that PostgreSQL has marked ready
 * to archive (archive_status/NAME.ready beside it), at most @depth (capped at
 * CTL_MAX_AHEAD) and without a gap: opened as ctl_client_open_push_file() opens a file,
 * into @fds, for CTL_F_AHEAD.
 * Returns how many; 0 when @path is not a segment or nothing after it is ready.  Quiet:
 * a file that cannot be opened ends the list, and its own push will say why.
 */
unsigned int ctl_client_open_ahead(const char *path, int wal_fd, int depth, int fds[CTL_MAX_AHEAD]);

/*
 * Make a reply's text printable on one line, in place: control characters become
 * spaces, trailing spaces go.  @text is NUL-terminated.
 */
void ctl_client_one_line(char *text);

/* Release the text of @reply (safe on a zeroed or already freed reply). */
void ctl_client_reply_free(struct ctl_client_reply *reply);

/* "ok", "invalid request", ... for an enum ctl_code; "unknown code" otherwise. */
const char *ctl_code_name(uint16_t code);

#endif /* WALSHIP_TOOLS_CLIENT_H */
