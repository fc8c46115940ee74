// SPDX-License-Identifier: MIT
/*
 * The Prometheus endpoint (see metrics.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/log.h"
#include "common/utf8.h"
#include "metrics/metrics.h"
#include "net/acceptor.h"
#include "net/listen.h"

#define METRICS_MAX_REQUEST 4096

_Static_assert(METRICS_CLIENT_TIMEOUT_MS == 10000, "the deadline's log line says 10 s");

struct metrics_client {
	struct ring_op op; /* the recv or the send: one is always in flight */
	struct metrics *m;
	struct metrics_client *next;
	int fd;
	int64_t accepted_ms; /* clock_now_ms(): the deadline runs from here */
	bool closing; /* shut down: freed when its request completes */
	size_t have;
	char *reply;
	size_t reply_len;
	size_t sent;
	char req[METRICS_MAX_REQUEST];
};

struct metrics {
	struct acceptor acceptor;
	struct metrics_source src;
	int listen_fd;
	unsigned int nclients; /* not closing: at most METRICS_MAX_CLIENTS */
	struct metrics_client *clients; /* oldest first (accepted in one millisecond, alike) */
	/* One timer for all the clients, at the oldest one's deadline, armed only while there
	 * are clients: a scrape costs at most one wake-up more. */
	struct ring_op timer_op;
	struct __kernel_timespec timer_ts;
	bool timer_armed;
};

static void client_free(struct metrics_client *cl)
{
	struct metrics *m = cl->m;
	struct metrics_client **pp;

	for (pp = &m->clients; *pp; pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	if (!cl->closing)
		m->nclients--;
	close(cl->fd);
	free(cl->reply);
	free(cl);
}

/*
 * Close @cl, whose recv or send is in flight: shutting the socket down completes it, and
 * its completion frees @cl (the descriptor stays open until then, so the request never
 * meets a number reused by another connection).
 */
static void client_close(struct metrics_client *cl, const char *reason)
{
	cl->closing = true;
	cl->m->nclients--;
	shutdown(cl->fd, SHUT_RDWR);
	acceptor_closed(&cl->m->acceptor, reason);
}

/* A label value with \, " and newlines escaped (Prometheus text format), and a byte that is
 * not part of a well-formed UTF-8 character written as U+FFFD: Prometheus refuses a
 * whole scrape for one label value that is not UTF-8. */
static void prom_label(FILE *out, const char *text)
{
	while (*text) {
		size_t n = utf8_char_len(text);

		if (!n)
			fputs("\xef\xbf\xbd", out);
		else if (*text == '\\' || *text == '"')
			fprintf(out, "\\%c", *text);
		else if (*text == '\n')
			fputs("\\n", out);
		else
			fwrite(text, 1, n, out);
		text += n ? n : 1;
	}
}

static void prom_head(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_node(FILE *out, const char *name, const char *type, const char *help,
		      uint64_t value)
{
	prom_head(out, name, type, help);
	fprintf(out, "%s %llu\n", name, (unsigned long long)value);
}

void metrics_value_name(char *buf, size_t len, const char *prefix, const struct status_value *v)
{
	static const char bytes[] = "bytes_";
	const char *total = v->kind == STATUS_COUNTER ? "_total" : "";
	size_t name_len = strlen(v->name);

	if (strncmp(v->name, bytes, strlen(bytes)) == 0)
		snprintf(buf, len, "%s%s_bytes%s", prefix, v->name + strlen(bytes), total);
	else if (name_len > 4 && strcmp(v->name + name_len - 4, "_lsn") == 0)
		snprintf(buf, len, "%s%s_bytes%s", prefix, v->name, total);
	else
		snprintf(buf, len, "%s%s%s", prefix, v->name, total);
}

/* One unlabelled sample per value of @base (status.h's table). */
static void prom_values(FILE *out, const char *prefix, const void *base,
			const struct status_value *values, size_t nvalues)
{
	char name[96];

	for (size_t i = 0; i < nvalues; i++) {
		metrics_value_name(name, sizeof(name), prefix, &values[i]);
		prom_node(out, name, values[i].kind == STATUS_COUNTER ? "counter" : "gauge",
			  values[i].help, status_value_get(base, &values[i]));
	}
}

/* walship_peer_<value>{peer,addr}: one family per peer value, one sample per peer. */
static void prom_peer_values(FILE *out, const struct status_node *n)
{
	char name[96];

	for (size_t v = 0; v < status_peer_nvalues; v++) {
		const struct status_value *val = &status_peer_values[v];

		metrics_value_name(name, sizeof(name), "walship_peer_", val);
		prom_head(out, name, val->kind == STATUS_COUNTER ? "counter" : "gauge", val->help);
		for (unsigned int i = 0; i < n->npeers; i++) {
			fprintf(out, "%s{peer=\"", name);
			prom_label(out, n->peers[i].name);
			fprintf(out, "\",addr=\"");
			prom_label(out, n->peers[i].addr);
			fprintf(out, "\"} %llu\n",
				(unsigned long long)status_value_get(&n->peers[i], val));
		}
	}
}

/* A peer's position (status_derive()), one family per field, LSNs as byte positions. */
static void prom_peer_positions(FILE *out, const struct status_node *n)
{
	static const struct {
		const char *name;
		const char *help;
		size_t offset;
		double scale;
	} fields[] = {
		{ "walship_peer_sent_lsn_bytes", "WAL sent to the peer, as an LSN in bytes.",
		  offsetof(struct status_peer, sent_lsn), 1 },
		{ "walship_peer_write_lsn_bytes", "WAL the peer received, as an LSN in bytes.",
		  offsetof(struct status_peer, write_lsn), 1 },
		{ "walship_peer_flush_lsn_bytes", "WAL durable on the peer, as an LSN in bytes.",
		  offsetof(struct status_peer, flush_lsn), 1 },
		{ "walship_peer_lag_bytes",
		  "WAL known to this node and not yet durable on the peer.",
		  offsetof(struct status_peer, lag_bytes), 1 },
		{ "walship_peer_lag_seconds",
		  "How long the oldest WAL not yet durable on the peer has waited.",
		  offsetof(struct status_peer, lag_us), 1e-6 },
	};

	for (size_t f = 0; f < ARRAY_SIZE(fields); f++) {
		prom_head(out, fields[f].name, "gauge", fields[f].help);
		for (unsigned int i = 0; i < n->npeers; i++) {
			uint64_t v =
				*(const uint64_t *)((const char *)&n->peers[i] + fields[f].offset);

			fprintf(out, "%s{peer=\"", fields[f].name);
			prom_label(out, n->peers[i].name);
			fprintf(out, "\",addr=\"");
			prom_label(out, n->peers[i].addr);
			if (fields[f].scale == 1)
				fprintf(out, "\"} %llu\n", (unsigned long long)v);
			else
				fprintf(out, "\"} %.6f\n", (double)v * fields[f].scale);
		}
	}
}

/* The labels of standby @sb: {application_name="...",addr="..."}. */
static void prom_standby_labels(FILE *out, const struct status_standby *sb)
{
	fprintf(out, "{application_name=\"");
	prom_label(out, sb->application_name);
	fprintf(out, "\",addr=\"");
	prom_label(out, sb->addr);
	fprintf(out, "\"}");
}

/* A replica's standbys on pg_listen (status_standby), like pg_stat_replication's rows:
 * positions (LSNs as byte positions), bytes sent, and the three lags in seconds (no
 * sample until the standby has reported one). */
static void prom_standbys(FILE *out, const struct status_node *n)
{
	static const struct {
		const char *name;
		const char *type;
		const char *help;
		size_t offset;
	} fields[] = {
		{ "walship_standby_sent_lsn_bytes", "gauge",
		  "WAL sent to the standby, as an LSN in bytes.",
		  offsetof(struct status_standby, sent_lsn) },
		{ "walship_standby_write_lsn_bytes", "gauge",
		  "WAL the standby reports written, as an LSN in bytes.",
		  offsetof(struct status_standby, write_lsn) },
		{ "walship_standby_flush_lsn_bytes", "gauge",
		  "WAL the standby reports flushed, as an LSN in bytes.",
		  offsetof(struct status_standby, flush_lsn) },
		{ "walship_standby_replay_lsn_bytes", "gauge",
		  "WAL the standby reports replayed, as an LSN in bytes.",
		  offsetof(struct status_standby, apply_lsn) },
		{ "walship_standby_sent_bytes_total", "counter",
		  "Bytes of WAL sent to the standby on this connection.",
		  offsetof(struct status_standby, bytes_sent) },
	};
	static const struct {
		const char *name;
		const char *help;
		size_t offset;
	} lags[] = {
		{ "walship_standby_write_lag_seconds",
		  "From sending WAL to the standby's report of it written (pg_stat_replication.write_lag).",
		  offsetof(struct status_standby, write_lag_ms) },
		{ "walship_standby_flush_lag_seconds",
		  "From sending WAL to the standby's report of it flushed (pg_stat_replication.flush_lag).",
		  offsetof(struct status_standby, flush_lag_ms) },
		{ "walship_standby_replay_lag_seconds",
		  "From sending WAL to the standby's report of it replayed (pg_stat_replication.replay_lag).",
		  offsetof(struct status_standby, replay_lag_ms) },
	};

	prom_node(out, "walship_standbys", "gauge", "PostgreSQL standbys connected to pg_listen.",
		  n->nstandbys);
	for (size_t f = 0; f < ARRAY_SIZE(fields); f++) {
		prom_head(out, fields[f].name, fields[f].type, fields[f].help);
		for (unsigned int i = 0; i < n->nstandbys; i++) {
			uint64_t v = *(const uint64_t *)((const char *)&n->standbys[i] +
							 fields[f].offset);

			fputs(fields[f].name, out);
			prom_standby_labels(out, &n->standbys[i]);
			fprintf(out, " %llu\n", (unsigned long long)v);
		}
	}
	for (size_t f = 0; f < ARRAY_SIZE(lags); f++) {
		prom_head(out, lags[f].name, "gauge", lags[f].help);
		for (unsigned int i = 0; i < n->nstandbys; i++) {
			int64_t ms =
				*(const int64_t *)((const char *)&n->standbys[i] + lags[f].offset);

			if (ms < 0)
				continue;
			fputs(lags[f].name, out);
			prom_standby_labels(out, &n->standbys[i]);
			fprintf(out, " %.3f\n", (double)ms / 1e3);
		}
	}
}

/* The standbys' hot standby feedback (pg_stat_replication.backend_xmin): a transaction id,
 * no sample for a standby that sent none. */
static void prom_standby_xmin(FILE *out, const struct status_node *n)
{
	prom_head(out, "walship_standby_xmin", "gauge",
		  "The standby's hot standby feedback xmin (pg_stat_replication.backend_xmin).");
	for (unsigned int i = 0; i < n->nstandbys; i++) {
		if (!n->standbys[i].xmin)
			continue;
		fputs("walship_standby_xmin", out);
		prom_standby_labels(out, &n->standbys[i]);
		fprintf(out, " %u\n", n->standbys[i].xmin);
	}
}

/* A replica's replication slots on pg_listen (status_slot), like pg_replication_slots:
 * restart LSN (as a byte position), WAL retained for it, and whether a standby streams
 * through it. */
static void prom_slots(FILE *out, const struct status_node *n)
{
	static const struct {
		const char *name;
		const char *help;
		size_t offset;
	} fields[] = {
		{ "walship_slot_restart_lsn_bytes",
		  "The slot's restart LSN as bytes: the oldest WAL it keeps (0: none reserved).",
		  offsetof(struct status_slot, restart_lsn) },
		{ "walship_slot_retained_bytes",
		  "WAL kept for the slot: from its restart LSN to the durable end.",
		  offsetof(struct status_slot, retained_bytes) },
	};

	prom_node(out, "walship_slots", "gauge", "Replication slots on pg_listen.", n->nslots);
	for (size_t f = 0; f < ARRAY_SIZE(fields); f++) {
		prom_head(out, fields[f].name, "gauge", fields[f].help);
		for (unsigned int i = 0; i < n->nslots; i++) {
			uint64_t v =
				*(const uint64_t *)((const char *)&n->slots[i] + fields[f].offset);

			fprintf(out, "%s{slot=\"", fields[f].name);
			prom_label(out, n->slots[i].name);
			fprintf(out, "\"} %llu\n", (unsigned long long)v);
		}
	}
	prom_head(out, "walship_slot_active", "gauge",
		  "1 while a standby streams through the slot, 0 otherwise.");
	for (unsigned int i = 0; i < n->nslots; i++) {
		fprintf(out, "walship_slot_active{slot=\"");
		prom_label(out, n->slots[i].name);
		fprintf(out, "\"} %d\n", n->slots[i].active);
	}
}

/* walship_peer_state{peer,addr,state}: 1 for the peer's state, 0 for the others (one
 * sample per state, so that a query need not know which ones exist). */
static void prom_peer_states(FILE *out, const struct status_node *n)
{
	prom_head(out, "walship_peer_state", "gauge",
		  "The peer's state: 1 for the one it is in (walship status names them).");
	for (unsigned int i = 0; i < n->npeers; i++) {
		for (unsigned int state = 0; state <= WALSHIP_PEER_MAX; state++) {
			fprintf(out, "walship_peer_state{peer=\"");
			prom_label(out, n->peers[i].name);
			fprintf(out, "\",addr=\"");
			prom_label(out, n->peers[i].addr);
			fprintf(out, "\",state=\"%s\"} %d\n", walship_peer_state_name(state),
				n->peers[i].state == state);
		}
	}
}

void metrics_render(FILE *out, const struct metrics_source *src)
{
	struct status_node n;

	memset(&n, 0, sizeof(n));
	src->fill(src->state, &n);
	prom_head(out, "walship_info", "gauge", "The node: role and name (value 1).");
	fprintf(out, "walship_info{role=\"%s\",node=\"", n.role ? n.role : "");
	prom_label(out, n.node_name);
	fprintf(out, "\"} 1\n");
	prom_node(out, "walship_start_time_seconds", "gauge", "When walshipd started (unix time).",
		  (uint64_t)n.started);
	prom_values(out, "walship_", &n, status_node_values, status_node_nvalues);
	prom_node(out, "walship_peers", "gauge", "Peers known to this node.", n.npeers);
	prom_peer_values(out, &n);
	prom_peer_positions(out, &n);
	prom_peer_states(out, &n);
	prom_standbys(out, &n);
	prom_standby_xmin(out, &n);
	prom_slots(out, &n);
	prom_head(out, "walship_source_state", "gauge",
		  "Primary: the stream source's state, as the label (value 1); none without "
		  "pg_conninfo.");
	if (n.source_state[0]) {
		fprintf(out, "walship_source_state{state=\"");
		prom_label(out, n.source_state);
		fprintf(out, "\"} 1\n");
	}
	status_node_release(&n);

	prom_node(out, "walship_io_uring_fsyncs_submitted_total", "counter",
		  "IORING_OP_FSYNC requests and writes with RWF_DSYNC the daemon submitted.",
		  src->ring->fsyncs_submitted);
	prom_node(out, "walship_sends_submitted_total", "counter",
		  "Sends to peers the daemon submitted (each is one send probe measurement).",
		  src->ring->tagged_submitted);
	if (src->more)
		src->more(out, src->more_arg);
}

static void client_sent(struct ring_op *op, int res, uint32_t flags)
{
	struct metrics_client *cl = (struct metrics_client *)op;
	struct io_uring_sqe *sqe;

	(void)flags;
	if (res <= 0 || cl->closing) {
		client_free(cl);
		return;
	}
	cl->sent += (size_t)res;
	if (cl->sent >= cl->reply_len) {
		client_free(cl); /* one request per connection: close */
		return;
	}
	sqe = ring_sqe(cl->m->src.ring, &cl->op);
	io_uring_prep_send(sqe, cl->fd, cl->reply + cl->sent, cl->reply_len - cl->sent,
			   MSG_NOSIGNAL);
}

static void client_reply(struct metrics_client *cl, const char *status, const char *body,
			 size_t body_len, const char *type)
{
	struct io_uring_sqe *sqe;
	FILE *out = open_memstream(&cl->reply, &cl->reply_len);

	if (!out) {
		client_free(cl);
		return;
	}
	fprintf(out,
		"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		"Connection: close\r\n\r\n",
		status, type, body_len);
	fwrite(body, 1, body_len, out);
	if (fclose(out) != 0) {
		client_free(cl);
		return;
	}
	cl->op.cb = client_sent;
	sqe = ring_sqe(cl->m->src.ring, &cl->op);
	io_uring_prep_send(sqe, cl->fd, cl->reply, cl->reply_len, MSG_NOSIGNAL);
}

static void client_request(struct metrics_client *cl)
{
	static const char not_found[] = "not found: try /metrics\n";
	static const char bad[] = "bad request\n";
	char *body = NULL;
	size_t body_len = 0;
	FILE *out;

	if (strncmp(cl->req, "GET ", 4) != 0) {
		client_reply(cl, "400 Bad Request", bad, sizeof(bad) - 1, "text/plain");
		return;
	}
	if (strncmp(cl->req + 4, "/metrics ", 9) != 0 &&
	    strncmp(cl->req + 4, "/metrics?", 9) != 0) {
		client_reply(cl, "404 Not Found", not_found, sizeof(not_found) - 1, "text/plain");
		return;
	}
	out = open_memstream(&body, &body_len);
	if (!out) {
		client_free(cl);
		return;
	}
	metrics_render(out, &cl->m->src);
	if (fclose(out) != 0) {
		free(body);
		client_free(cl);
		return;
	}
	client_reply(cl, "200 OK", body, body_len, "text/plain; version=0.0.4; charset=utf-8");
	free(body);
}

static void client_received(struct ring_op *op, int res, uint32_t flags)
{
	struct metrics_client *cl = (struct metrics_client *)op;
	struct io_uring_sqe *sqe;

	(void)flags;
	if (res <= 0 || cl->closing) {
		client_free(cl);
		return;
	}
	cl->have += (size_t)res;
	cl->req[cl->have] = '\0';
	if (strstr(cl->req, "\r\n\r\n") || strstr(cl->req, "\n\n")) {
		client_request(cl);
		return;
	}
	if (cl->have >= sizeof(cl->req) - 1) {
		static const char big[] = "request too large\n";

		client_reply(cl, "431 Request Header Fields Too Large", big, sizeof(big) - 1,
			     "text/plain");
		return;
	}
	sqe = ring_sqe(cl->m->src.ring, &cl->op);
	io_uring_prep_recv(sqe, cl->fd, cl->req + cl->have, sizeof(cl->req) - 1 - cl->have, 0);
}

/* The client not closing that was accepted first, or NULL. */
static struct metrics_client *metrics_oldest(struct metrics *m)
{
	struct metrics_client *cl = m->clients;

	while (cl && cl->closing)
		cl = cl->next;
	return cl;
}

static void metrics_timer_done(struct ring_op *op, int res, uint32_t flags);

/* Arm the timer for the oldest client's deadline, unless it is armed (for a deadline no
 * later: clients only get younger) or no client is left. */
static void metrics_timer_arm(struct metrics *m, int64_t now_ms)
{
	struct metrics_client *oldest = metrics_oldest(m);
	struct io_uring_sqe *sqe;
	int64_t wait_ms;

	if (m->timer_armed || !oldest)
		return;
	wait_ms = oldest->accepted_ms + METRICS_CLIENT_TIMEOUT_MS - now_ms;
	if (wait_ms < 1)
		wait_ms = 1;
	m->timer_ts.tv_sec = wait_ms / 1000;
	m->timer_ts.tv_nsec = (wait_ms % 1000) * 1000000;
	m->timer_op.cb = metrics_timer_done;
	sqe = ring_sqe(m->src.ring, &m->timer_op);
	io_uring_prep_timeout(sqe, &m->timer_ts, 0, 0);
	m->timer_armed = true;
}

/* Close the clients past their deadline, and wait for the next one's. */
static void metrics_timer_done(struct ring_op *op, int res, uint32_t flags)
{
	struct metrics *m = container_of(op, struct metrics, timer_op);
	int64_t now_ms = clock_now_ms();

	(void)res; /* -ETIME */
	(void)flags;
	m->timer_armed = false;
	/* client_close() frees nothing here (the completions do): the walk is safe */
	for (struct metrics_client *cl = m->clients; cl; cl = cl->next)
		if (!cl->closing && now_ms - cl->accepted_ms >= METRICS_CLIENT_TIMEOUT_MS)
			client_close(cl, "a metrics client that had not finished within 10 s");
	metrics_timer_arm(m, now_ms);
}

static void metrics_accepted(struct acceptor *a, int res)
{
	struct metrics *m = container_of(a, struct metrics, acceptor);
	struct metrics_client *cl, **pp;
	struct io_uring_sqe *sqe;

	acceptor_post(a); /* a failure is counted, logged and backed off there */
	if (res < 0)
		return;
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		acceptor_refuse(a, res, "out of memory");
		return;
	}
	/* Full: the oldest makes room.  Refusing the new one instead let connections that
	 * sit idle (or never read their reply) keep every scraper out, and clients that
	 * connect again as they are closed, for good; this way a scraper gets in at once,
	 * and only a steady flood of new connections can close it before its reply. */
	if (m->nclients >= METRICS_MAX_CLIENTS) {
		struct metrics_client *oldest = metrics_oldest(m);

		if (oldest) /* always, with nclients > 0 */
			client_close(oldest, "the oldest metrics client, for a new one");
	}
	cl->m = m;
	cl->fd = res;
	cl->accepted_ms = clock_now_ms();
	for (pp = &m->clients; *pp; pp = &(*pp)->next) /* at most 8 and those closing */
		;
	*pp = cl;
	m->nclients++;
	cl->op.cb = client_received;
	sqe = ring_sqe(m->src.ring, &cl->op);
	io_uring_prep_recv(sqe, cl->fd, cl->req, sizeof(cl->req) - 1, 0);
	metrics_timer_arm(m, cl->accepted_ms);
}

struct metrics *metrics_start(const char *addr, const struct metrics_source *src)
{
	struct metrics *m;
	int fd = net_listen_tcp("metrics_listen", addr, 16); /* logs */

	if (fd < 0)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		log_error("out of memory");
		close(fd);
		return NULL;
	}
	m->src = *src;
	m->listen_fd = fd;
	if (acceptor_init(&m->acceptor, src->ring, fd, "metrics connection", metrics_accepted,
			  NULL) < 0) {
		free(m);
		close(fd);
		return NULL;
	}
	acceptor_post(&m->acceptor);
	log_log("serving Prometheus metrics on http://%s/metrics", addr);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	while (m->clients)
		client_free(m->clients);
	acceptor_release(&m->acceptor);
	close(m->listen_fd);
	free(m);
}
