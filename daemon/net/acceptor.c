// SPDX-License-Identifier: MIT
/*
 * The accept loop shared by the daemon's listening sockets (see acceptor.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/log.h"
#include "net/acceptor.h"
#include "net/conn.h"

static struct acceptor *acceptor_of(struct ring_op *op)
{
	return container_of(op, struct acceptor, op);
}

/* Write the line about what happened since the last one, and start counting afresh. */
static void acceptor_log(struct acceptor *a, int64_t now, bool recovered)
{
	if (recovered)
		log_log("accepted a %s again", a->what);
	else if (a->last_error)
		log_warning("could not accept %s: %s", a->what, strerror(a->last_error));
	else
		log_warning("closed %s at once: %s", a->what, a->last_reason);
	log_detail("%" PRIu64 " accept(s) failed and %" PRIu64
		   " connection(s) were closed at once since the previous message; "
		   "such messages are written at most every %d s.",
		   a->failed, a->shed, ACCEPTOR_LOG_INTERVAL_MS / 1000);
	a->logged_ms = now;
	a->failed = 0;
	a->shed = 0;
	a->last_error = 0;
	a->last_reason = NULL;
}

/* Count an event; write the line if the interval since the last one has passed. */
static void acceptor_note(struct acceptor *a, int error, const char *reason, unsigned int shed)
{
	int64_t now = clock_now_ms();

	if (error) {
		a->failed++;
		a->last_error = error;
	} else {
		a->last_reason = reason;
	}
	a->shed += shed;
	if (a->shed_count)
		*a->shed_count += shed;
	if (!a->logged_ms || now - a->logged_ms >= ACCEPTOR_LOG_INTERVAL_MS)
		acceptor_log(a, now, false);
}

/*
 * At the open-file limit: give up the reserve descriptor, accept and close the
 * connections waiting (without blocking: the listening socket is a blocking one), and take
 * the reserve again.  Returns how many were closed, 0 when none was waiting, -1 when that
 * could not be done (no reserve, or the accept failed all the same).
 */
static int acceptor_shed(struct acceptor *a)
{
	int closed = 0, failed = 0;

	if (a->reserve_fd < 0)
		a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (a->reserve_fd < 0)
		return -1;
	close(a->reserve_fd);
	a->reserve_fd = -1;
	while (closed < ACCEPTOR_SHED_MAX) {
		struct pollfd pfd = { .fd = a->listen_fd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
			break;
		fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == ECONNABORTED || errno == EINTR)
				continue;
			failed = 1;
			break;
		}
		close(fd);
		closed++;
	}
	/* Failing here (another thread took the slot) only means no shedding next time. */
	a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return closed == 0 && failed ? -1 : closed;
}

static void acceptor_back_off(struct acceptor *a)
{
	if (a->backoff_ms == 0)
		a->backoff_ms = ACCEPTOR_BACKOFF_MIN_MS;
	else if (a->backoff_ms < ACCEPTOR_BACKOFF_MAX_MS / 2)
		a->backoff_ms *= 2;
	else
		a->backoff_ms = ACCEPTOR_BACKOFF_MAX_MS;
	a->resume_ms = clock_now_ms() + a->backoff_ms;
}

/* The failure of the last round, now that the owner goes on. */
static void acceptor_handle_error(struct acceptor *a, int error)
{
	int closed;

	switch (error) {
	case EINTR:
	case ECANCELED:
	case ETIME: /* the back-off wait is over */
		return;
	case EAGAIN: /* no connection waits (a non-blocking socket): wait for one */
		a->poll_next = true;
		return;
	case EMFILE:
	case ENFILE:
		/*
		 * io_uring fails the accept before it looks for a connection: at the limit it
		 * fails at once whether one waits or not.  Close those waiting; when none does,
		 * wait for the next one to close it (POLLIN), instead of failing again at once.
		 */
		closed = acceptor_shed(a);
		acceptor_note(a, error, NULL, closed > 0 ? (unsigned int)closed : 0);
		if (closed == 0)
			a->poll_next = true;
		else if (closed < 0)
			acceptor_back_off(a);
		return;
	/* The connection went away or was refused by the network: it is off the queue. */
	case ECONNABORTED:
	case EPERM:
	case EPROTO:
	case ENETDOWN:
	case ENETUNREACH:
	case EHOSTDOWN:
	case EHOSTUNREACH:
	case ENONET:
		acceptor_note(a, error, NULL, 0);
		return;
	default: /* ENOBUFS, ENOMEM, and anything unexpected: do not spin on it */
		acceptor_note(a, error, NULL, 0);
		acceptor_back_off(a);
	}
}

static void acceptor_accepted(struct ring_op *op, int res, uint32_t flags)
{
	struct acceptor *a = acceptor_of(op);

	(void)flags;
	if (res >= 0) {
		a->backoff_ms = 0;
		if ((a->failed || a->shed) &&
		    clock_now_ms() - a->logged_ms >= ACCEPTOR_LOG_INTERVAL_MS)
			acceptor_log(a, clock_now_ms(), true);
	} else {
		a->error = -res;
	}
	a->done(a, res);
}

static void acceptor_waited(struct ring_op *op, int res, uint32_t flags)
{
	struct acceptor *a = acceptor_of(op);

	(void)flags;
	(void)res; /* -ETIME when it expired, -ECANCELED when the ring goes away */
	a->resume_ms = 0;
	a->error = 0;
	a->done(a, -ETIME);
}

static void acceptor_polled(struct ring_op *op, int res, uint32_t flags)
{
	struct acceptor *a = acceptor_of(op);

	(void)flags;
	a->error = 0;
	/* Without POLLIN (POLLHUP: shut down, POLLERR) an accept now would fail at once. */
	if (res < 0 || !(res & POLLIN))
		acceptor_back_off(a);
	a->done(a, -EAGAIN);
}

void acceptor_post(struct acceptor *a)
{
	struct io_uring_sqe *sqe;
	int64_t now;

	if (a->error) {
		int error = a->error;

		a->error = 0;
		acceptor_handle_error(a, error);
	}
	if (a->poll_next) {
		a->poll_next = false;
		a->op.cb = acceptor_polled;
		sqe = ring_sqe(a->ring, &a->op);
		io_uring_prep_poll_add(sqe, a->listen_fd, POLLIN);
		return;
	}
	now = clock_now_ms();
	if (a->resume_ms > now) {
		int64_t wait_ms = a->resume_ms - now;

		a->wait_ts.tv_sec = wait_ms / 1000;
		a->wait_ts.tv_nsec = (wait_ms % 1000) * 1000000;
		a->op.cb = acceptor_waited;
		sqe = ring_sqe(a->ring, &a->op);
		io_uring_prep_timeout(sqe, &a->wait_ts, 0, 0);
		return;
	}
	a->op.cb = acceptor_accepted;
	sqe = ring_sqe(a->ring, &a->op);
	io_uring_prep_accept(sqe, a->listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

void acceptor_refuse(struct acceptor *a, int fd, const char *reason)
{
	close(fd);
	acceptor_closed(a, reason);
}

void acceptor_closed(struct acceptor *a, const char *reason)
{
	acceptor_note(a, 0, reason, 1);
}

int acceptor_init(struct acceptor *a, struct ring *r, int listen_fd, const char *what,
		  acceptor_fn done, uint64_t *shed_count)
{
	memset(a, 0, sizeof(*a));
	a->ring = r;
	a->listen_fd = listen_fd;
	a->what = what;
	a->done = done;
	a->shed_count = shed_count;
	a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (a->reserve_fd < 0) {
		int ret = -errno;

		log_error("could not open file \"%s\": %s", "/dev/null", strerror(errno));
		return ret;
	}
	return 0;
}

void acceptor_release(struct acceptor *a)
{
	if (a->reserve_fd >= 0)
		close(a->reserve_fd);
	a->reserve_fd = -1;
}
