// SPDX-License-Identifier: MIT
/*
 * Control-socket client: one connection, one request, one reply.  See client.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"
#include "common/log.h"
#include "wal/name.h"

static int set_timeout(int sock, int optname, int timeout_ms)
{
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};

	if (setsockopt(sock, SOL_SOCKET, optname, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

/* ctl_client_connect() and ctl_client_connect_nowait(); @wait false: one attempt. */
static int client_connect(const char *socket_path, int timeout_ms, bool wait, int *sock)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t path_len = strlen(socket_path);
	int fd;
	int ret;

	if (path_len == 0 || path_len >= sizeof(addr.sun_path)) {
		log_error("invalid walshipd socket path \"%s\": length must be 1 to %zu bytes",
			  socket_path, sizeof(addr.sun_path) - 1);
		return path_len == 0 ? -EINVAL : -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, socket_path, path_len + 1);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (wait ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0) {
		ret = -errno;
		log_error("could not create socket: %s", strerror(-ret));
		return ret;
	}

	if (timeout_ms > 0) {
		ret = set_timeout(fd, SO_SNDTIMEO, timeout_ms);
		if (ret == 0)
			ret = set_timeout(fd, SO_RCVTIMEO, timeout_ms);
		if (ret < 0) {
			log_error("could not set socket timeout: %s", strerror(-ret));
			goto out_close;
		}
	}

	while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno == EINTR)
			continue;
		ret = -errno;
		if (!wait && ret == -EAGAIN)
			goto out_close; /* the backlog is full: the caller tries again */
		if (ret == -EAGAIN || ret == -EINPROGRESS)
			ret = -ETIMEDOUT;
		log_error("could not connect to walshipd at \"%s\": %s%s", socket_path,
			  strerror(-ret),
			  ret == -ENOENT || ret == -ECONNREFUSED ? " (is walshipd running?)" : "");
		goto out_close;
	}

	/* A UNIX socket connects at once or not at all: blocking from here on, the sends
	 * and receives bounded by the timeouts above. */
	if (!wait && fcntl(fd, F_SETFL, 0) < 0) {
		ret = -errno;
		log_error("could not make the socket blocking: %s", strerror(-ret));
		goto out_close;
	}
	*sock = fd;
	return 0;

out_close:
	close(fd);
	return ret;
}

int ctl_client_connect(const char *socket_path, int timeout_ms, int *sock)
{
	return client_connect(socket_path, timeout_ms, true, sock);
}

int ctl_client_connect_nowait(const char *socket_path, int timeout_ms, int *sock)
{
	return client_connect(socket_path, timeout_ms, false, sock);
}

static int send_request(int sock, struct ctl_request *req, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CTL_CLIENT_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = {
		.iov_base = req,
		.iov_len = sizeof(*req),
	};
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	struct cmsghdr *cmsg;
	ssize_t sent;

	if (nfds > 0) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
	}

	do {
		sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
	} while (sent < 0 && errno == EINTR);
	if (sent < 0)
		return errno == EAGAIN ? -ETIMEDOUT : -errno;
	/* SOCK_SEQPACKET sends a record whole or not at all. */
	if ((size_t)sent != sizeof(*req))
		return -EPROTO;
	return 0;
}

/* Check the fixed part of a reply of @len bytes in @buf; log what is wrong. */
static int check_reply(const char *buf, size_t len, struct ctl_reply *hdr)
{
	if (len < sizeof(*hdr)) {
		log_error("invalid reply from walshipd: %zu bytes, expected at least %zu", len,
			  sizeof(*hdr));
		return -EPROTO;
	}
	memcpy(hdr, buf, sizeof(*hdr));
	if (hdr->magic != CTL_MAGIC) {
		log_error("invalid reply from walshipd: magic %08x, expected %08x", hdr->magic,
			  CTL_MAGIC);
		return -EPROTO;
	}
	if (hdr->version != CTL_VERSION) {
		log_error("walshipd speaks control protocol version %u, this walship speaks %u",
			  hdr->version, CTL_VERSION);
		return -EPROTO;
	}
	if (hdr->text_len != len - sizeof(*hdr)) {
		log_error("invalid reply from walshipd: text length %u in a %zu-byte message",
			  hdr->text_len, len);
		return -EPROTO;
	}
	return 0;
}

int ctl_client_call(int sock, uint16_t op, uint32_t flags, const char *name, int pass_fd,
		    struct ctl_client_reply *reply)
{
	return ctl_client_call_fds(sock, op, flags, name, &pass_fd, pass_fd >= 0 ? 1 : 0, reply);
}

int ctl_client_send(int sock, uint16_t op, uint32_t flags, const char *name, const int *fds,
		    unsigned int nfds)
{
	struct ctl_request req = {
		.magic = CTL_MAGIC,
		.version = CTL_VERSION,
		.op = op,
		.flags = flags,
	};
	size_t name_len = name ? strlen(name) : 0;
	int ret;

	if (name_len >= sizeof(req.name)) {
		log_error("file name \"%s\" is too long for the control protocol", name);
		return -ENAMETOOLONG;
	}
	if (name_len)
		memcpy(req.name, name, name_len + 1);
	if (nfds > CTL_CLIENT_MAX_FDS) {
		log_error("at most %d descriptors can be passed", CTL_CLIENT_MAX_FDS);
		return -EINVAL;
	}

	ret = send_request(sock, &req, fds, nfds);
	if (ret < 0)
		log_error("could not send request to walshipd: %s", strerror(-ret));
	return ret;
}

int ctl_client_receive(int sock, struct ctl_client_reply *reply)
{
	struct ctl_reply hdr;
	struct iovec iov;
	struct msghdr msg = { 0 };
	char *buf;
	ssize_t got;
	int ret;

	memset(reply, 0, sizeof(*reply));
	/* One byte more than the largest legal reply, to tell "too long" from "full". */
	buf = malloc(CTL_MAX_REPLY + 1);
	if (!buf) {
		log_error("out of memory");
		return -ENOMEM;
	}
	iov.iov_base = buf;
	iov.iov_len = CTL_MAX_REPLY + 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;

	do {
		got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (got < 0 && errno == EINTR);
	if (got < 0) {
		ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (ret == -ETIMEDOUT)
			log_error("timed out waiting for a reply from walshipd");
		else
			log_error("could not receive reply from walshipd: %s", strerror(-ret));
		goto out_free;
	}
	if (got == 0) {
		ret = -ECONNRESET;
		log_error("walshipd closed the connection without replying");
		goto out_free;
	}
	if ((msg.msg_flags & MSG_TRUNC) || (size_t)got > CTL_MAX_REPLY) {
		ret = -EPROTO;
		log_error("invalid reply from walshipd: longer than %d bytes", CTL_MAX_REPLY);
		goto out_free;
	}
	ret = check_reply(buf, (size_t)got, &hdr);
	if (ret < 0)
		goto out_free;

	/* Reuse the buffer for the text: move it to the front and terminate it. */
	memmove(buf, buf + sizeof(hdr), hdr.text_len);
	buf[hdr.text_len] = '\0';
	reply->code = hdr.code;
	reply->text = buf;
	reply->text_len = hdr.text_len;
	return 0;

out_free:
	free(buf);
	return ret;
}

int ctl_client_call_fds(int sock, uint16_t op, uint32_t flags, const char *name, const int *fds,
			unsigned int nfds, struct ctl_client_reply *reply)
{
	int ret;

	memset(reply, 0, sizeof(*reply));
	ret = ctl_client_send(sock, op, flags, name, fds, nfds);
	if (ret < 0)
		return ret;
	return ctl_client_receive(sock, reply);
}

void ctl_client_reply_free(struct ctl_client_reply *reply)
{
	free(reply->text);
	reply->text = NULL;
	reply->text_len = 0;
}

const char *ctl_code_name(uint16_t code)
{
	switch (code) {
	case CTL_OK:
		return "ok";
	case CTL_ERR_INVALID:
		return "invalid request";
	case CTL_ERR_FAILED:
		return "failed";
	case CTL_ERR_TIMEOUT:
		return "timed out";
	case CTL_ERR_ROLE:
		return "not valid for this daemon's role";
	case CTL_ERR_BUSY:
		return "busy";
	case CTL_ERR_CONFLICT:
		return "conflicting content";
	case CTL_WARN_LOST:
		return "a replica lost WAL";
	}
	return "unknown code";
}

/*
 * O_NONBLOCK keeps a FIFO under that name from hanging us before we can see it is not a
 * regular file; it is cleared afterwards since the descriptor's status flags travel with
 * it, and io_uring honours O_NONBLOCK on reads (it would hand the daemon -EAGAIN instead
 * of waiting for the disk).  Failures are logged unless @quiet.
 */
static int open_push_file(const char *path, bool quiet)
{
	struct stat st;
	int flags;
	int fd;
	int ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		if (!quiet)
			log_error("could not open file \"%s\": %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		if (!quiet)
			log_error("could not stat file \"%s\": %s", path, strerror(-ret));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		if (!quiet)
			log_error("\"%s\" is not a regular file", path);
		goto out_close;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		ret = -errno;
		if (!quiet)
			log_error("could not set flags of file \"%s\": %s", path, strerror(-ret));
		goto out_close;
	}
	return fd;

out_close:
	close(fd);
	return ret;
}

int ctl_client_open_push_file(const char *path)
{
	return open_push_file(path, false);
}

unsigned int ctl_client_open_ahead(const char *path, int wal_fd, int depth, int fds[CTL_MAX_AHEAD])
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	int dirlen = (int)(name - path); /* "DIR/" or "" */
	char next[WAL_NAME_MAX + 1], file[PATH_MAX];
	unsigned int n = 0;
	struct stat st;

	if (depth > CTL_MAX_AHEAD)
		depth = CTL_MAX_AHEAD;
	if (depth <= 0 || fstat(wal_fd, &st) < 0 || st.st_size > UINT32_MAX)
		return 0;
	while (n < (unsigned int)depth) {
		int fd;

		if (wal_name_next_segment(name, (uint32_t)st.st_size, n + 1, next, sizeof(next)) <
		    0)
			break;
		if ((size_t)snprintf(file, sizeof(file), "%.*sarchive_status/%s.ready", dirlen,
				     path, next) >= sizeof(file) ||
		    access(file, F_OK) < 0)
			break;
		snprintf(file, sizeof(file), "%.*s%s", dirlen, path, next);
		fd = open_push_file(file, true);
		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	return n;
}

void ctl_client_one_line(char *text)
{
	size_t len = strlen(text);
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c == 0x7f)
			text[i] = ' ';
	}
	while (len > 0 && text[len - 1] == ' ')
		text[--len] = '\0';
}
