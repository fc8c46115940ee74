// SPDX-License-Identifier: MIT
/*
 * The listening TCP socket (see listen.h).
 */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "net/listen.h"

int net_listen_tcp(const char *key, const char *addr, int backlog)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	char host[CONFIG_MAX_ADDR], service[8];
	struct addrinfo *res;
	uint16_t port;
	int fd, one = 1, ret;

	if (config_split_address(addr, host, sizeof(host), &port) < 0) {
		log_error("invalid %s address \"%s\"", key, addr);
		return -EINVAL;
	}
	snprintf(service, sizeof(service), "%u", port);
	ret = getaddrinfo(host, service, &hints, &res);
	if (ret != 0) {
		log_error("could not resolve %s address \"%s\": %s", key, addr, gai_strerror(ret));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		ret = -errno;
		log_error("could not listen on \"%s\" (%s): %s", addr, key, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = ret;
	}
	freeaddrinfo(res);
	return fd;
}
