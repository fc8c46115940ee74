/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics over HTTP (metrics_listen): GET /metrics returns the status
 * counters and gauges, the ring's submission counters, and the BPF histograms in the
 * Prometheus text format (0.0.4).  Served through the daemon's io_uring (accept, recv,
 * send), never blocking the event loop; one request per connection.
 *
 * At most METRICS_MAX_CLIENTS at once, each closed METRICS_CLIENT_TIMEOUT_MS after it was
 * accepted whatever it is doing (sending nothing, not reading its reply, cut off by the
 * network), and the oldest closed for a new one when all are taken: idle connections
 * then keep no scraper out (refusing the new one would, for as long as they stay), and
 * only a steady flood of new ones can close a scraper before its reply.  Both closes are
 * counted and logged by the acceptor, at most a line per interval.
 */
#ifndef WALSHIP_METRICS_METRICS_H
#define WALSHIP_METRICS_METRICS_H

#include <stdio.h>

#include "ring/ring.h"
#include "status/status.h"

#define METRICS_MAX_CLIENTS 8
/* From accept to the end of the reply, at most: Prometheus' default scrape_timeout, after
 * which the scraper has given up anyway. */
#define METRICS_CLIENT_TIMEOUT_MS 10000

struct metrics_source {
	struct ring *ring;
	/* the role's status snapshot (role_ops.status) and its state */
	void (*fill)(void *state, struct status_node *n);
	void *state;
	/* more series appended to the document by a higher layer (main.c: the BPF
	 * histograms), or NULL */
	void (*more)(FILE *out, void *arg);
	void *more_arg;
};

struct metrics;

/* Listen on @addr ("host:port") and serve.  NULL on error (logged). */
struct metrics *metrics_start(const char *addr, const struct metrics_source *src);

/* Close everything; call after ring_exit() (requests in flight are gone). */
void metrics_free(struct metrics *m);

/*
 * The Prometheus name of the status value @v (status.h's table) under @prefix
 * ("walship_", "walship_peer_"), by the conventions of the text format: a counter ends in
 * "_total", a quantity of bytes in "_bytes" ("bytes_sent" becomes "sent_bytes"), and an
 * LSN, a position in bytes, in "_lsn_bytes".  docs/observability.md lists the names.
 */
void metrics_value_name(char *buf, size_t len, const char *prefix, const struct status_value *v);

/* The whole /metrics document for @src (exposed for tests and reuse). */
void metrics_render(FILE *out, const struct metrics_source *src);

#endif /* WALSHIP_METRICS_METRICS_H */
