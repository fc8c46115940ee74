// SPDX-License-Identifier: MIT
/*
 * push_fd: a test-only `walship push` that passes a descriptor opened the way it is told
 * (test/system/t_40c_unreadable_fd.sh), to see what the daemon does with one it cannot
 * read.
 *
 *   push_fd SOCKET PATH rdonly|wronly|path
 *
 * Opens PATH with O_RDONLY, O_WRONLY or O_PATH, sends a CTL_PUSH request named after
 * PATH's last component with that descriptor (SCM_RIGHTS) over the control socket SOCKET
 * (include/walship/control.h), and prints the reply as "code N: TEXT".  Exits 0 when the
 * daemon answered CTL_OK, 1 for any other answer, 2 when it could not ask.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "walship/control.h"

static int usage_error(const char *what)
{
	fprintf(stderr, "push_fd: %s\nusage: push_fd SOCKET PATH rdonly|wronly|path\n", what);
	return 2;
}

int main(int argc, char **argv)
{
	struct ctl_request req = { .magic = CTL_MAGIC, .version = CTL_VERSION, .op = CTL_PUSH };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &req, .iov_len = sizeof(req) };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	static char reply[CTL_MAX_REPLY];
	struct ctl_reply hdr;
	struct cmsghdr *cm;
	const char *base;
	ssize_t got;
	int flags, fd, sock;

	if (argc != 4)
		return usage_error("wrong number of arguments");
	if (!strcmp(argv[3], "rdonly"))
		flags = O_RDONLY;
	else if (!strcmp(argv[3], "wronly"))
		flags = O_WRONLY;
	else if (!strcmp(argv[3], "path"))
		flags = O_PATH;
	else
		return usage_error("unknown open mode");
	base = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
	snprintf(req.name, sizeof(req.name), "%s", base);
	if (strlen(argv[1]) >= sizeof(sa.sun_path))
		return usage_error("socket path too long");
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);

	fd = open(argv[2], flags | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "push_fd: could not open file \"%s\": %s\n", argv[2],
			strerror(errno));
		return 2;
	}
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "push_fd: could not connect to \"%s\": %s\n", argv[1],
			strerror(errno));
		return 2;
	}
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm)
		return usage_error("no room for the descriptor");
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &msg, 0) < 0) {
		fprintf(stderr, "push_fd: could not send the request: %s\n", strerror(errno));
		return 2;
	}
	close(fd);
	got = recv(sock, reply, sizeof(reply), 0);
	if (got < (ssize_t)sizeof(hdr)) {
		fprintf(stderr, "push_fd: no reply (%s)\n", got < 0 ? strerror(errno) : "short");
		return 2;
	}
	memcpy(&hdr, reply, sizeof(hdr));
	if (hdr.magic != CTL_MAGIC || hdr.text_len > (size_t)got - sizeof(hdr)) {
		fprintf(stderr, "push_fd: malformed reply\n");
		return 2;
	}
	printf("code %u: %.*s\n", hdr.code, (int)hdr.text_len, reply + sizeof(hdr));
	close(sock);
	return hdr.code == CTL_OK ? 0 : 1;
}
