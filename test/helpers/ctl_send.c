// SPDX-License-Identifier: MIT
/*
 * ctl_send: send walshipd one control request with any number of descriptors, through the
 * CLI's own client code (tools/client.c), for tests of what the daemon refuses:
 *
 *   ctl_send SOCKET push|status NAME [FILE...]
 *
 * Each FILE is opened read-only and passed (all in one SCM_RIGHTS message).  Prints the
 * reply as "CODE TEXT" on one line (CODE the number of enum ctl_code) and exits 0 when a
 * reply came, 1 when none did (the error is printed), 2 on a usage error.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "common/log.h"

int main(int argc, char **argv)
{
	int fds[CTL_CLIENT_MAX_FDS];
	struct ctl_client_reply reply;
	unsigned int nfds = 0;
	uint16_t op;
	int sock;

	log_set_prefix(false);
	if (argc < 4 || argc - 4 > CTL_CLIENT_MAX_FDS) {
		fprintf(stderr, "usage: ctl_send SOCKET push|status NAME [FILE...] (at most %d)\n",
			CTL_CLIENT_MAX_FDS);
		return 2;
	}
	if (strcmp(argv[2], "push") == 0) {
		op = CTL_PUSH;
	} else if (strcmp(argv[2], "status") == 0) {
		op = CTL_STATUS;
	} else {
		fprintf(stderr, "ctl_send: unknown operation \"%s\"\n", argv[2]);
		return 2;
	}
	for (int i = 4; i < argc; i++) {
		fds[nfds] = open(argv[i], O_RDONLY | O_CLOEXEC);
		if (fds[nfds] < 0) {
			log_error("could not open file \"%s\": %m", argv[i]);
			return 1;
		}
		nfds++;
	}
	if (ctl_client_connect(argv[1], 10000, &sock) < 0 ||
	    ctl_client_call_fds(sock, op, 0, argv[3], fds, nfds, &reply) < 0)
		return 1; /* logged */
	printf("%u %s\n", reply.code, reply.text);
	ctl_client_reply_free(&reply);
	close(sock);
	return 0;
}
