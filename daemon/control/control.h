/* SPDX-License-Identifier: MIT */
/*
 * The local control socket (include/walship/control.h): a UNIX SOCK_SEQPACKET socket the
 * CLI talks to.  Accepting, receiving requests (with a WAL file's descriptor passed as
 * SCM_RIGHTS) and sending replies all go through io_uring.  One request per connection:
 * the reply is sent, then the connection is closed, unless the request carried CTL_F_KEEP
 * (PostgreSQL's archive module): then the next request is awaited on it, the connection
 * counted again among those waiting for a request.  Accepting goes through the shared
 * accept loop (net/acceptor.h): at the open-file limit a client is closed at once and the
 * failure logged once per interval.  A request is checked by control/request.h (one
 * or more descriptors with CTL_PUSH only; anything else is refused and every descriptor
 * closed), the client's credentials as the kernel took them at connect().  A request not
 * answered at once (a push) is watched until it is (a poll for the end of the
 * connection): a client that closes its end first is reported gone, and its reply is
 * written to no one.  The connection's descriptor stays open until the reply in every
 * case, so a reply never reaches a descriptor number reused by another connection.
 */
#ifndef WALSHIP_CONTROL_CONTROL_H
#define WALSHIP_CONTROL_CONTROL_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <walship/control.h>

#include "net/acceptor.h"
#include "ring/ring.h"

struct ctl_client;

/*
 * Clients connected whose request has not arrived yet, at most: past it the oldest of them
 * is closed (and counted in refused), so silent clients can take neither every descriptor
 * nor the room of real clients, which send their request as soon as they have connected.
 */
#define CONTROL_MAX_WAITING 32

/* How long a reply's send may take: a client that does not read it is closed then. */
#define CONTROL_REPLY_TIMEOUT_MS 10000

/*
 * Called for every well-formed request.  @fds are the @nfds passed descriptors (none but
 * with CTL_PUSH: control/request.h); the callee owns them.  The callee must eventually
 * call control_reply() exactly once.
 */
typedef void (*control_request_fn)(void *ctx, struct ctl_client *client,
				   const struct ctl_request *req, const int *fds,
				   unsigned int nfds);

/*
 * Called when @client, whose request was not answered in control_request_fn, closed its
 * connection before its reply: no one will read the reply.  The callee still owes its
 * control_reply(), which then frees the client and writes nothing; it may give it here.
 * Until then the client's descriptor stays open, so its number is never another
 * connection's.
 */
typedef void (*control_gone_fn)(void *ctx, struct ctl_client *client);

/* Close the @nfds descriptors @fds. */
void control_close_fds(const int *fds, unsigned int nfds);

struct control_server {
	struct ring *ring;
	struct acceptor acceptor;
	int listen_fd;
	char path[108];
	control_request_fn on_request;
	control_gone_fn on_gone; /* may be NULL */
	void *ctx;
	struct ctl_client *list; /* every client */
	unsigned int clients;
	unsigned int waiting; /* of which their request has not arrived yet */
	bool closing;
	gid_t group; /* the socket's group: its members may use it */
	uint64_t refused; /* clients refused by their credentials, or closed at once (no
			   * descriptor to spare) */
	struct __kernel_timespec reply_timeout; /* CONTROL_REPLY_TIMEOUT_MS (tests: less) */
};

/*
 * Create the socket at @path (refusing if a live daemon answers there, replacing a stale
 * one), owned by group @group ("" for the daemon's own) with mode @mode, and start
 * accepting; requests go to @fn, clients gone before their reply to @gone (NULL: none
 * is told), each with @ctx.  Returns 0 or -errno (logged).
 */
int control_start(struct control_server *cs, struct ring *r, const char *path, const char *group,
		  int mode, control_request_fn fn, control_gone_fn gone, void *ctx);

/* Stop accepting and remove the socket file. */
void control_stop(struct control_server *cs);

/* Send the reply for @client's request and release the client (at once, sending
 * nothing, when it is gone: control_client_gone()). */
void control_reply(struct ctl_client *client, uint16_t code, const char *text, size_t len);

/* Whether @client closed its connection before its reply (control_gone_fn). */
bool control_client_gone(const struct ctl_client *client);

/* control_reply() with a NUL-terminated @text (its length counted here, never by hand). */
void control_reply_text(struct ctl_client *client, uint16_t code, const char *text);

/* Credentials of the client process (SO_PEERCRED), for messages. */
pid_t control_client_pid(const struct ctl_client *client);

#endif /* WALSHIP_CONTROL_CONTROL_H */
