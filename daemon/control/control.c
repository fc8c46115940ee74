// SPDX-License-Identifier: MIT
/*
 * The local control socket (see control.h).
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdbool.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/log.h"
#include "control/control.h"
#include "control/request.h"

struct ctl_client {
	struct ring_op op; /* the receive, then the reply's send */
	struct ring_op watch_op; /* POLL_ADD: did the client go away before its reply? */
	struct control_server *cs;
	struct ctl_client *next, *prev; /* cs->list */
	int fd;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	bool cred_ok;
	bool waiting; /* counted in cs->waiting: the request has not arrived */
	bool evicted; /* shut down to make room (control_evict_waiting()); no longer waiting */
	bool keep; /* the request asked for CTL_F_KEEP: wait for the next one after the reply */
	/* the request in hand: */
	bool answered; /* control_reply() was called */
	bool watching; /* watch_op is in flight (posted when on_request did not answer) */
	bool gone; /* the client closed its end first: nothing is written to it */
	bool reply_sent; /* the reply's send completed, with reply_res */
	int reply_res;
	struct ctl_request req;
	struct iovec iov[2];
	struct msghdr msg;
	union {
		/* room for one descriptor more than a request may carry: one too many is
		 * refused by count, more by MSG_CTRUNC */
		char buf[CMSG_SPACE(sizeof(int) * (CTL_MAX_FDS + 1))];
		struct cmsghdr align;
	} cmsg;
	struct ctl_reply reply;
	char *text;
};

static void client_free(struct ctl_client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		cl->cs->list = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	cl->cs->clients--;
	if (cl->waiting)
		cl->cs->waiting--;
	free(cl->text);
	free(cl);
}

pid_t control_client_pid(const struct ctl_client *client)
{
	return client->pid;
}

static void client_request_received(struct ring_op *op, int res, uint32_t flags);

/*
 * Wait for @cl's next request: counted in cs->waiting, like a client that has just
 * connected, so that kept connections fall under CONTROL_MAX_WAITING too.
 */
static void client_post_recv(struct ctl_client *cl)
{
	struct io_uring_sqe *sqe;

	cl->waiting = true;
	cl->cs->waiting++;
	cl->answered = cl->gone = cl->reply_sent = false;
	cl->reply_res = 0;
	memset(&cl->msg, 0, sizeof(cl->msg));
	memset(&cl->req, 0, sizeof(cl->req));
	cl->iov[0].iov_base = &cl->req;
	cl->iov[0].iov_len = sizeof(cl->req);
	cl->msg.msg_iov = cl->iov;
	cl->msg.msg_iovlen = 1;
	cl->msg.msg_control = cl->cmsg.buf;
	cl->msg.msg_controllen = sizeof(cl->cmsg.buf);
	cl->op.cb = client_request_received;
	sqe = ring_sqe(cl->cs->ring, &cl->op);
	io_uring_prep_recvmsg(sqe, cl->fd, &cl->msg, MSG_CMSG_CLOEXEC);
}

/* The reply is sent (or failed) and no watch is in flight: free @cl, or wait for its next
 * request (CTL_F_KEEP). */
static void client_reply_done(struct ctl_client *cl)
{
	/* A kept connection past the bound is closed: the client connects again. */
	if (cl->reply_res < 0 || !cl->keep || cl->cs->closing ||
	    cl->cs->waiting >= CONTROL_MAX_WAITING) {
		client_free(cl);
		return;
	}
	cl->keep = false;
	client_post_recv(cl);
}

static void client_reply_sent(struct ring_op *op, int res, uint32_t flags)
{
	struct ctl_client *cl = (struct ctl_client *)op;

	(void)flags;
	cl->reply_sent = true;
	cl->reply_res = res < 0 ? res : 0;
	if (res == -EPIPE || res == -ECONNRESET) /* gone as the reply left: no one waits */
		log_debug("control client (pid %d) went away before its reply", (int)cl->pid);
	else if (res == -ECANCELED) /* its linked timeout */
		log_log("closing control client (pid %d): it did not read its reply within %lld s",
			(int)cl->pid, (long long)cl->cs->reply_timeout.tv_sec);
	else if (res < 0)
		log_log("could not send reply to control client (pid %d): %s", (int)cl->pid,
			strerror(-res));
	if (!cl->watching) /* else its cancelled watch completes last */
		client_reply_done(cl);
}

/* Completions of requests that need none (cancelling a watch, a reply's linked timeout):
 * user_data points here. */
static struct ring_op control_noop;

/*
 * The watch of a client whose request waits for its reply (a push: seconds, up to
 * push_timeout).  A poll for the end of its connection: the client closing it (PostgreSQL's
 * archiver stopped, walship push killed) completes it, and the owner is told
 * (on_gone), so that nothing is done or written for no one.  io_uring reports a hang-up
 * whatever the mask; POLLRDHUP asks for a close (or a shutdown of its writing side, which
 * our clients never do while they wait) and nothing else: a client that sends more before
 * its reply does not wake it.
 */
static void client_watch_done(struct ring_op *op, int res, uint32_t flags);

static void client_watch(struct ctl_client *cl)
{
	struct io_uring_sqe *sqe;

	cl->watch_op.cb = client_watch_done;
	sqe = ring_sqe(cl->cs->ring, &cl->watch_op);
	io_uring_prep_poll_add(sqe, cl->fd, POLLRDHUP);
	cl->watching = true;
}

static void client_watch_done(struct ring_op *op, int res, uint32_t flags)
{
	struct ctl_client *cl = container_of(op, struct ctl_client, watch_op);

	(void)flags;
	cl->watching = false;
	if (cl->answered) { /* cancelled by the reply (or both at once): the reply decides */
		if (cl->reply_sent)
			client_reply_done(cl);
		return;
	}
	if (res <= 0)
		return; /* the poll could not be made: the reply's send finds out */
	cl->gone = true;
	log_debug("control client (pid %d) went away before its reply", (int)cl->pid);
	if (cl->cs->on_gone)
		cl->cs->on_gone(cl->cs->ctx, cl); /* may answer, and so free, @cl */
}

bool control_client_gone(const struct ctl_client *client)
{
	return client->gone;
}

void control_reply(struct ctl_client *cl, uint16_t code, const char *text, size_t len)
{
	struct io_uring_sqe *sqe;

	cl->answered = true;
	if (cl->gone) {
		/* Its descriptor stays ours until here, so no other connection can have its
		 * number; but no one reads it any more. */
		client_free(cl);
		return;
	}
	if (cl->watching) {
		sqe = ring_sqe(cl->cs->ring, &control_noop);
		io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&cl->watch_op);
	}
	if (len > CTL_MAX_REPLY - sizeof(cl->reply))
		len = CTL_MAX_REPLY - sizeof(cl->reply);
	cl->reply.magic = CTL_MAGIC;
	cl->reply.version = CTL_VERSION;
	cl->reply.code = code;
	cl->reply.text_len = (uint32_t)len;
	free(cl->text);
	cl->text = NULL;
	if (len) {
		cl->text = malloc(len);
		if (!cl->text) {
			len = 0;
			cl->reply.text_len = 0;
		} else {
			memcpy(cl->text, text, len);
		}
	}
	memset(&cl->msg, 0, sizeof(cl->msg));
	cl->iov[0].iov_base = &cl->reply;
	cl->iov[0].iov_len = sizeof(cl->reply);
	cl->iov[1].iov_base = cl->text;
	cl->iov[1].iov_len = len;
	cl->msg.msg_iov = cl->iov;
	cl->msg.msg_iovlen = len ? 2 : 1;
	cl->op.cb = client_reply_sent;
	ring_reserve(cl->cs->ring, 2);
	sqe = ring_sqe(cl->cs->ring, &cl->op);
	io_uring_prep_sendmsg(sqe, cl->fd, &cl->msg, MSG_NOSIGNAL);
	/* A client that does not read its reply (a status of 200 kB, or kept replies piling
	 * up) would hold the send, its descriptor and the kernel's buffers for ever: the send
	 * is given CONTROL_REPLY_TIMEOUT_MS, then cancelled, and the client closed. */
	sqe->flags |= IOSQE_IO_LINK;
	sqe = ring_sqe(cl->cs->ring, &control_noop);
	io_uring_prep_link_timeout(sqe, &cl->cs->reply_timeout, 0);
}

void control_close_fds(const int *fds, unsigned int nfds)
{
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
}

void control_reply_text(struct ctl_client *cl, uint16_t code, const char *text)
{
	control_reply(cl, code, text, strlen(text));
}

/*
 * Requests that change what the daemon holds or sends, for good: forgetting a replica
 * releases the WAL the spool held for it, a hold or release moves what standbys replay.
 * The socket's group is there for PostgreSQL's archive_command and restore_command (user
 * postgres), and whatever runs as postgres (a superuser's COPY ... TO PROGRAM) must not
 * be able to do these: root and the daemon's own user only.
 */
static bool control_op_changes_state(uint16_t op)
{
	return op == CTL_REPLICA_DROP || op == CTL_STANDBY_HOLD || op == CTL_STANDBY_RELEASE;
}

static void client_request_received(struct ring_op *op, int res, uint32_t flags)
{
	struct ctl_client *cl = (struct ctl_client *)op;
	const char *why;
	int fds[CTL_MAX_FDS];
	unsigned int nfds;

	(void)flags;
	if (cl->waiting) {
		cl->waiting = false;
		cl->cs->waiting--;
	}
	if (cl->evicted) { /* a request that came as it was shut down: its descriptors closed */
		if (res >= 0 &&
		    control_request_check(&cl->req, (size_t)res, &cl->msg, fds, &nfds, &why) == 0)
			control_close_fds(fds, nfds);
		client_free(cl);
		return;
	}
	if (res < 0) {
		log_log("could not receive control request: %s", strerror(-res));
		client_free(cl); /* recvmsg() failed: the kernel installed no descriptor */
		return;
	}
	if (res == 0) {
		/* The end, or an empty message that may still carry descriptors: close them. */
		(void)control_request_check(&cl->req, 0, &cl->msg, fds, &nfds, &why);
		client_free(cl);
		return;
	}
	if (control_request_check(&cl->req, (size_t)res, &cl->msg, fds, &nfds, &why) < 0) {
		/* cl->keep stays false: a client that sent a bad request is not kept. */
		log_warning("refused control request from pid %d: %s", (int)cl->pid, why);
		control_reply_text(cl, CTL_ERR_INVALID, why);
		return;
	}
	if (!cl->cred_ok) {
		char text[256];
		struct passwd *pw = getpwuid(cl->uid);

		snprintf(text, sizeof(text),
			 "user \"%s\" (uid %d) may not use this walshipd's socket: only its owner "
			 "and group do (socket_group)",
			 pw ? pw->pw_name : "?", (int)cl->uid);
		log_warning("refused control request from pid %d: %s", (int)cl->pid, text);
		cl->cs->refused++;
		control_close_fds(fds, nfds);
		control_reply_text(cl, CTL_ERR_INVALID, text);
		return;
	}
	if (control_op_changes_state(cl->req.op) && cl->uid != 0 && cl->uid != geteuid()) {
		char text[256];

		snprintf(text, sizeof(text),
			 "uid %d may not change what this walshipd holds: only root and the "
			 "daemon's own user may (socket_group's members push, fetch and read "
			 "the status)",
			 (int)cl->uid);
		log_warning("refused control request from pid %d: %s", (int)cl->pid, text);
		cl->cs->refused++;
		control_close_fds(fds, nfds);
		control_reply_text(cl, CTL_ERR_INVALID, text);
		return;
	}
	/* Kept for pushes only (the archive module's): a kept client of any request could
	 * send the next without reading the replies. */
	cl->keep = (cl->req.flags & CTL_F_KEEP) != 0 && cl->req.op == CTL_PUSH;
	cl->cs->on_request(cl->cs->ctx, cl, &cl->req, fds, nfds);
	/* Not answered at once (a push): watch whether the client stays for the answer.  The
	 * client is still ours here: an answer frees it only once sent. */
	if (!cl->answered)
		client_watch(cl);
}

/*
 * The supplementary groups of the process at the other end of @fd, as they were when it
 * connected: SO_PEERGROUPS (Linux 4.13), else the Groups: line of /proc/PID/status (the
 * process as it is now).  Returns a malloc'd array and its length in *@count, or NULL.
 */
static gid_t *control_peer_groups(int fd, pid_t pid, int *count)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *groups = NULL;
	char path[64], line[4096];
	FILE *status;

	for (;;) {
		gid_t *bigger = realloc(groups, len ? len : sizeof(gid_t));

		if (!bigger)
			goto out_free;
		groups = bigger;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
			*count = (int)(len / sizeof(gid_t));
			return groups;
		}
		if (errno != ERANGE)
			break;
		/* len now says how much room the list needs. */
	}
	if (errno != ENOPROTOOPT)
		goto out_free;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	status = fopen(path, "re");
	if (!status)
		goto out_free;
	*count = 0;
	while (fgets(line, sizeof(line), status)) {
		char *p = line + 7, *end;

		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		for (;;) {
			unsigned long gid = strtoul(p, &end, 10);
			gid_t *bigger;

			if (end == p)
				break;
			bigger = realloc(groups, (size_t)(*count + 1) * sizeof(gid_t));
			if (!bigger) {
				fclose(status);
				goto out_free;
			}
			groups = bigger;
			groups[(*count)++] = (gid_t)gid;
			p = end;
		}
		fclose(status);
		return groups;
	}
	fclose(status);
out_free:
	free(groups);
	return NULL;
}

/*
 * Only the socket's owner and group may use it (as PostgreSQL's unix_socket_group): the
 * file mode says so, and the peer's credentials are checked too, so that a mode widened
 * by hand or a descriptor passed around does not let another user push WAL.  The
 * credentials are the peer's own, taken by the kernel at connect() (SO_PEERCRED,
 * SO_PEERGROUPS): a member of the group only through its supplementary groups (systemd's
 * SupplementaryGroups=) is let in, and /etc/group is never consulted.
 */
static bool control_cred_allowed(const struct control_server *cs, int fd, const struct ucred *cred)
{
	gid_t *groups;
	int count = 0;
	bool allowed = false;

	if (cred->uid == 0 || cred->uid == geteuid() || cred->gid == cs->group)
		return true;
	groups = control_peer_groups(fd, cred->pid, &count);
	for (int i = 0; groups && i < count && !allowed; i++)
		allowed = groups[i] == cs->group;
	free(groups);
	return allowed;
}

/*
 * CONTROL_MAX_WAITING clients have sent no request: the oldest of them is shut down (its
 * receive ends, and frees it), first one whose credentials were refused, to make room for
 * the one just accepted.  Closing the new one instead would let a few silent clients keep
 * every `walship push`, and so PostgreSQL's archiving, out for as long as they like; a
 * real client sends its request as it connects, and the archive module, whose kept
 * connection waits between segments, connects again when it finds it closed.
 */
static void control_evict_waiting(struct control_server *cs)
{
	struct ctl_client *oldest = NULL, *oldest_refused = NULL, *victim;

	for (struct ctl_client *cl = cs->list; cl; cl = cl->next) /* newest first */
		if (cl->waiting) {
			oldest = cl;
			if (!cl->cred_ok)
				oldest_refused = cl;
		}
	victim = oldest_refused ? oldest_refused : oldest;
	if (!victim)
		return;
	victim->waiting = false;
	victim->evicted = true;
	cs->waiting--;
	shutdown(victim->fd, SHUT_RDWR);
	acceptor_closed(&cs->acceptor, "too many clients that have not sent their request: "
				       "the oldest closed");
}

static void control_accepted(struct acceptor *a, int res)
{
	struct control_server *cs = container_of(a, struct control_server, acceptor);
	struct ctl_client *cl;
	struct ucred cred;
	socklen_t cl_len = sizeof(cred);

	if (cs->closing) {
		if (res >= 0)
			close(res);
		return;
	}
	if (res < 0) {
		acceptor_post(a); /* it counts, logs and backs off */
		return;
	}
	if (cs->waiting >= CONTROL_MAX_WAITING)
		control_evict_waiting(cs);
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		acceptor_refuse(a, res, "out of memory");
		acceptor_post(a);
		return;
	}
	cl->cs = cs;
	cl->fd = res;
	cl->next = cs->list;
	if (cs->list)
		cs->list->prev = cl;
	cs->list = cl;
	cs->clients++;
	/* A SEQPACKET message must fit the send buffer whole: the default (212,960 bytes of
	 * message, net.core.wmem_default) is less than CTL_MAX_REPLY, and a status of many
	 * peers past it was never sent (EMSGSIZE).  The kernel doubles the value asked, up
	 * to net.core.wmem_max: twice its default is room enough. */
	{
		int sndbuf = CTL_MAX_REPLY + (int)sizeof(struct ctl_reply);

		if (setsockopt(res, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
			log_debug("could not size a control client's send buffer: %m");
	}
	if (getsockopt(res, SOL_SOCKET, SO_PEERCRED, &cred, &cl_len) == 0) {
		cl->pid = cred.pid;
		cl->uid = cred.uid;
		cl->gid = cred.gid;
		cl->cred_ok = control_cred_allowed(cs, res, &cred);
	}
	client_post_recv(cl);
	acceptor_post(a);
}

int control_start(struct control_server *cs, struct ring *r, const char *path, const char *group,
		  int mode, control_request_fn fn, control_gone_fn gone, void *ctx)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, ret;

	memset(cs, 0, sizeof(*cs));
	cs->ring = r;
	cs->group = getegid();
	cs->on_request = fn;
	cs->on_gone = gone;
	cs->ctx = ctx;
	cs->reply_timeout.tv_sec = CONTROL_REPLY_TIMEOUT_MS / 1000;
	cs->reply_timeout.tv_nsec = (CONTROL_REPLY_TIMEOUT_MS % 1000) * 1000000L;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("control socket path \"%s\" is too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(cs->path, sizeof(cs->path), "%s", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		log_error("could not create control socket: %s", strerror(errno));
		return ret;
	}
	/* A socket file that answers belongs to a running daemon: never steal it. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		log_error("control socket \"%s\" is in use by another walshipd", path);
		log_hint("Stop the other daemon, or give this one another \"socket\".");
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	{
		/* Made with @mode at once (no chmod after, which would follow a symbolic link
		 * put in its place): nobody can connect before listen(), below, by when the
		 * group is set too. */
		mode_t old = umask(~(mode_t)mode & 0777);

		ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
		umask(old);
	}
	if (ret < 0) {
		ret = -errno;
		log_error("could not bind control socket \"%s\": %s", path, strerror(errno));
		goto out_close;
	}
	if (group && group[0]) {
		struct group *gr = getgrnam(group);

		if (!gr) {
			log_error("group \"%s\" (socket_group) does not exist", group);
			ret = -ENOENT;
			goto out_unlink;
		}
		cs->group = gr->gr_gid;
		/* Not following a symbolic link: the socket's name replaced by one (a folder
		 * others may write), root would give its target the group. */
		if (fchownat(AT_FDCWD, path, (uid_t)-1, gr->gr_gid, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			log_error("could not set group of control socket \"%s\": %s", path,
				  strerror(errno));
			goto out_unlink;
		}
	}
	if (listen(fd, 64) < 0) {
		ret = -errno;
		log_error("could not listen on control socket \"%s\": %s", path, strerror(errno));
		goto out_unlink;
	}
	cs->listen_fd = fd;
	/* Connections closed at once for want of descriptors count as refused. */
	ret = acceptor_init(&cs->acceptor, r, fd, "control connection", control_accepted,
			    &cs->refused);
	if (ret < 0)
		goto out_unlink;
	acceptor_post(&cs->acceptor);
	return 0;

out_unlink:
	unlink(path);
out_close:
	close(fd);
	return ret;
}

void control_stop(struct control_server *cs)
{
	if (cs->closing)
		return;
	cs->closing = true;
	/*
	 * Clients waiting for a request (kept connections, mostly) get an end of file: their
	 * receive completes and frees them.  The others are freed once their reply is sent.
	 */
	for (struct ctl_client *cl = cs->list; cl; cl = cl->next)
		if (cl->waiting)
			shutdown(cl->fd, SHUT_RDWR);
	/* The pending accept completes with an error once the socket is shut down. */
	shutdown(cs->listen_fd, SHUT_RDWR);
	close(cs->listen_fd);
	acceptor_release(&cs->acceptor);
	unlink(cs->path);
}
