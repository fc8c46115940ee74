// SPDX-License-Identifier: MIT
/*
 * flip_relay: a test-only TCP relay that corrupts one byte in transit, once
 * (test/system/t_37_flip.sh).
 *
 *   flip_relay LISTEN_ADDR:PORT TARGET_ADDR:PORT OFFSET
 *
 * Accepts connections on LISTEN, connects each to TARGET and copies bytes both ways.  In
 * the direction TARGET -> client of the first connection, the byte at stream offset
 * OFFSET (counted from 0) is XORed with 0x5a before it is passed on; every other byte of
 * every connection is relayed unchanged.  When one side closes or fails, both sockets of
 * that pair are closed (the peer sees a reset or an end of stream).
 *
 * Logs one line per event on stderr: "listening", "connection N", "flipped byte at offset
 * N of connection 1 (0xAA -> 0xBB)", "connection N closed".  Stops on SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 16
#define CHUNK 65536

struct pair {
	int client; /* accepted socket */
	int target; /* our connection to TARGET */
	unsigned int id; /* 1 for the first connection */
	uint64_t down; /* bytes relayed TARGET -> client */
};

static struct pair pairs[MAX_PAIRS];
static unsigned int npairs;
static uint64_t flip_offset;
static bool flipped;

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void close_pair(unsigned int i)
{
	fprintf(stderr, "flip_relay: connection %u closed\n", pairs[i].id);
	close(pairs[i].client);
	close(pairs[i].target);
	pairs[i] = pairs[--npairs];
}

/* Copy what is readable on @from to @to; false when the pair must close. */
static bool relay(struct pair *p, int from, int to, bool down)
{
	unsigned char buf[CHUNK];
	ssize_t n = read(from, buf, sizeof(buf));

	if (n <= 0)
		return false;
	if (down && p->id == 1 && !flipped && flip_offset >= p->down &&
	    flip_offset < p->down + (uint64_t)n) {
		size_t at = (size_t)(flip_offset - p->down);
		unsigned char old = buf[at];

		buf[at] ^= 0x5a;
		flipped = true;
		fprintf(stderr,
			"flip_relay: flipped byte at offset %llu of connection 1 (0x%02x -> 0x%02x)\n",
			(unsigned long long)flip_offset, old, buf[at]);
	}
	if (down)
		p->down += (uint64_t)n;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		off += w;
	}
	return true;
}

int main(int argc, char **argv)
{
	struct sockaddr_in lsa, tsa;
	unsigned int next_id = 1;
	int one = 1, lfd;

	if (argc != 4 || parse_addr(argv[1], &lsa) < 0 || parse_addr(argv[2], &tsa) < 0) {
		fprintf(stderr, "usage: flip_relay LISTEN_ADDR:PORT TARGET_ADDR:PORT OFFSET\n");
		return 2;
	}
	flip_offset = strtoull(argv[3], NULL, 10);
	/*
	 * The replica resets the connection as soon as it sees the flipped byte, while bytes
	 * of the same connection may still be on their way to it: a write to that socket
	 * must fail with EPIPE and close the pair, not kill the relay with SIGPIPE.
	 */
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&lsa, sizeof(lsa)) < 0 || listen(lfd, 8) < 0) {
		perror("flip_relay: listen");
		return 1;
	}
	fprintf(stderr, "flip_relay: listening on %s, relaying to %s, flipping offset %llu\n",
		argv[1], argv[2], (unsigned long long)flip_offset);

	for (;;) {
		struct pollfd pfd[1 + 2 * MAX_PAIRS];
		unsigned int n = 0;

		pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (unsigned int i = 0; i < npairs; i++) {
			pfd[n++] = (struct pollfd){ .fd = pairs[i].client, .events = POLLIN };
			pfd[n++] = (struct pollfd){ .fd = pairs[i].target, .events = POLLIN };
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("flip_relay: poll");
			return 1;
		}
		/* Pairs first, from the last, so that close_pair's swap does not skip one. */
		for (unsigned int i = npairs; i-- > 0;) {
			struct pollfd *c = &pfd[1 + 2 * i], *t = &pfd[2 + 2 * i];
			bool ok = true;

			if (c->revents)
				ok = relay(&pairs[i], pairs[i].client, pairs[i].target, false);
			if (ok && t->revents)
				ok = relay(&pairs[i], pairs[i].target, pairs[i].client, true);
			if (!ok)
				close_pair(i);
		}
		if (pfd[0].revents & POLLIN) {
			int c = accept(lfd, NULL, NULL), t;

			if (c < 0)
				continue;
			t = socket(AF_INET, SOCK_STREAM, 0);
			if (npairs == MAX_PAIRS || t < 0 ||
			    connect(t, (struct sockaddr *)&tsa, sizeof(tsa)) < 0) {
				perror("flip_relay: connect to target");
				close(c);
				if (t >= 0)
					close(t);
				continue;
			}
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			pairs[npairs++] = (struct pair){ .client = c, .target = t, .id = next_id };
			fprintf(stderr, "flip_relay: connection %u\n", next_id++);
		}
	}
}
