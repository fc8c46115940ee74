/* SPDX-License-Identifier: MIT */
/*
 * The accept loop of every listening socket of the daemon (the primary's replication
 * port, the control socket, the metrics endpoint), through io_uring.
 *
 * Why one loop: an accept that fails without taking the waiting connection off the queue
 * fails again at once when it is posted again.  At the open-file limit (EMFILE, ENFILE)
 * or short of kernel memory (ENOBUFS, ENOMEM) a plain "accept, post again" loop spins on
 * a core and logs every failure (hundreds of thousands of lines a second).  The acceptor:
 *
 *  - keeps a reserve descriptor (/dev/null, opened by acceptor_init()).  At EMFILE or
 *    ENFILE it closes the reserve, accepts and closes at once the connections waiting
 *    (up to ACCEPTOR_SHED_MAX), and opens the reserve again: a client over the limit has
 *    its connection closed at once instead of waiting in the backlog, and the loop has
 *    made progress, so it may post the next accept at once.  io_uring fails an accept at
 *    the limit before it looks for a connection, so when none was waiting the acceptor
 *    waits for one (a POLLIN poll through the ring) and tries again then;
 *  - backs off when it could not make progress that way (no reserve, ENOBUFS, ENOMEM, or
 *    an error that is not about one connection): the next accept waits for a timer
 *    through the ring, ACCEPTOR_BACKOFF_MIN_MS doubling up to ACCEPTOR_BACKOFF_MAX_MS,
 *    back to none after a connection is accepted;
 *  - logs at most one line per ACCEPTOR_LOG_INTERVAL_MS, with what happened since the
 *    previous line (failures, connections closed at once), and one when it accepts again
 *    after trouble (if the interval allows).
 *
 * Contract with the owner.  acceptor_post() starts one round; a round ends with exactly
 * one call of the owner's callback: with a new connection's descriptor (>= 0, the owner
 * takes it), or with a negative errno when the round produced none (a failed accept, or
 * the end of a back-off wait: -ETIME).  The owner calls acceptor_post() again to go on;
 * the failure is dealt with (counted, logged, shed, waited out) only then, so an owner
 * that is stopping (its listening socket shut down) simply does not call it and nothing
 * is logged.  The listening socket stays the owner's; one round at a time; the ring's
 * thread only.
 */
#ifndef WALSHIP_NET_ACCEPTOR_H
#define WALSHIP_NET_ACCEPTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "ring/ring.h"

/* Connections closed at once per EMFILE/ENFILE, before the next accept is posted. */
#define ACCEPTOR_SHED_MAX 256
/* Back-off after a failure that made no progress. */
#define ACCEPTOR_BACKOFF_MIN_MS 10
#define ACCEPTOR_BACKOFF_MAX_MS 1000
/* At most one line per listener and interval about failures and closed connections. */
#define ACCEPTOR_LOG_INTERVAL_MS 10000

struct acceptor;

/* The end of a round: @res is a connection's descriptor (owned by the callee) or -errno. */
typedef void (*acceptor_fn)(struct acceptor *a, int res);

struct acceptor {
	struct ring_op op; /* the accept, or the back-off timer */
	struct ring *ring;
	int listen_fd; /* the owner's */
	int reserve_fd; /* /dev/null, given up at EMFILE/ENFILE; -1 when it could not be had */
	const char *what; /* for messages: "replica connection", "control connection" */
	acceptor_fn done;
	uint64_t *shed_count; /* the owner's counter of connections closed at once, or NULL */
	struct __kernel_timespec wait_ts;
	int error; /* of the last round, dealt with at the next acceptor_post() */
	bool poll_next; /* at the limit with no connection waiting: wait for one */
	int backoff_ms; /* current back-off, 0 none */
	int64_t resume_ms; /* no accept before this (monotonic ms), 0 none */
	/* the log line: what happened since the last one */
	int64_t logged_ms; /* when the last line was written, 0 never */
	int last_error; /* the latest failure, 0 none */
	const char *last_reason; /* the latest reason given to acceptor_refuse(), or NULL */
	uint64_t failed; /* failed accepts */
	uint64_t shed; /* connections closed at once (by the acceptor or acceptor_refuse()) */
};

/*
 * Prepare @a for the listening socket @listen_fd of @r: @what names its connections in
 * messages, @done ends each round (see above), @shed_count (may be NULL) is also
 * incremented for each connection closed at once.  Opens the reserve descriptor.
 * Returns 0 or -errno (logged).
 */
int acceptor_init(struct acceptor *a, struct ring *r, int listen_fd, const char *what,
		  acceptor_fn done, uint64_t *shed_count);

/*
 * Start a round: deal with the failure of the previous round (count it, log it if the
 * interval allows, close waiting connections at once through the reserve, or arm the
 * back-off), then post the accept, or the back-off timer when one is due.
 */
void acceptor_post(struct acceptor *a);

/*
 * The owner refuses the connection @fd it was just given (e.g. too many handshakes in
 * progress): close it at once, count it, and note @reason (a constant string) for the
 * rate-limited log line.
 */
void acceptor_refuse(struct acceptor *a, int fd, const char *reason);

/*
 * The owner closed a connection it had taken before (e.g. the oldest of those in the
 * handshake, for a new one): count it with those closed at once, and note @reason (a
 * constant string) for the rate-limited log line, so that a flood of connections costs
 * no line each.
 */
void acceptor_closed(struct acceptor *a, const char *reason);

/* Close the reserve descriptor.  Call when no round is in flight or will be posted. */
void acceptor_release(struct acceptor *a);

#endif /* WALSHIP_NET_ACCEPTOR_H */
