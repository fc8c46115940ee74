// SPDX-License-Identifier: MIT
/*
 * The Prometheus endpoint (see metrics.h).
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "metrics/metrics.h"

#define METRICS_MAX_REQUEST 4096

struct metrics_client {
	struct ring_op op;
	struct metrics *m;
	struct metrics_client *next;
	int fd;
	size_t have;
	char *reply;
	size_t reply_len;
	size_t sent;
	char req[METRICS_MAX_REQUEST];
};

struct metrics {
	struct ring_op accept_op;
	struct metrics_source src;
	int listen_fd;
	unsigned int nclients;
	struct metrics_client *clients;
};

static void metrics_accept_post(struct metrics *m);

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
	m->nclients--;
	close(cl->fd);
	free(cl->reply);
	free(cl);
}

/* A label value with \, " and newlines escaped (Prometheus text format). */
static void prom_label(FILE *out, const char *text)
{
	for (; *text; text++) {
		if (*text == '\\' || *text == '"')
			fprintf(out, "\\%c", *text);
		else if (*text == '\n')
			fputs("\\n", out);
		else
			fputc(*text, out);
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

#define PEER_METRIC(field, type, help)                                                    \
	do {                                                                              \
		prom_head(out, "walship_peer_" #field, type, help);                       \
		for (unsigned int i = 0; i < n.npeers; i++) {                             \
			fprintf(out, "walship_peer_" #field "{peer=\"");                  \
			prom_label(out, n.peers[i].name);                                 \
			fprintf(out, "\",addr=\"");                                       \
			prom_label(out, n.peers[i].addr);                                 \
			fprintf(out, "\"} %llu\n", (unsigned long long)n.peers[i].field); \
		}                                                                         \
	} while (0)

void metrics_render(FILE *out, const struct metrics_source *src)
{
	struct status_node n;
	struct probe_snapshot *snap;

	memset(&n, 0, sizeof(n));
	src->fill(src->state, &n);
	prom_head(out, "walship_info", "gauge", "The node: role and name (value 1).");
	fprintf(out, "walship_info{role=\"%s\",node=\"", n.role ? n.role : "");
	prom_label(out, n.node_name);
	fprintf(out, "\"} 1\n");
	prom_node(out, "walship_start_time_seconds", "gauge", "When walshipd started (unix time).",
		  (uint64_t)n.started);
	prom_node(out, "walship_pushes_ok_total", "counter", "Pushes answered with success.",
		  n.pushes_ok);
	prom_node(out, "walship_pushes_failed_total", "counter", "Pushes answered with failure.",
		  n.pushes_failed);
	prom_node(out, "walship_pushes_queued", "gauge", "Pushes in progress.", n.pushes_queued);
	prom_node(out, "walship_files_stored_total", "counter", "WAL files stored durably.",
		  n.files_stored);
	prom_node(out, "walship_bytes_stored_total", "counter", "Bytes of WAL stored durably.",
		  n.bytes_stored);
	prom_node(out, "walship_duplicates_total", "counter", "Files received again, identical.",
		  n.duplicates);
	prom_node(out, "walship_conflicts_total", "counter",
		  "Files refused: same name, different content.", n.conflicts);
	prom_node(out, "walship_invalid_total", "counter", "Files refused by validation.",
		  n.invalid);
	prom_node(out, "walship_sysid_refused_total", "counter",
		  "Files refused for another system identifier.", n.sysid_refused);
	prom_node(out, "walship_io_errors_total", "counter", "I/O errors.", n.io_errors);
	prom_node(out, "walship_connections_refused_total", "counter", "Connections refused.",
		  n.connections_refused);
	prom_node(out, "walship_queue_overflows_total", "counter",
		  "Connections dropped for exceeding a per-connection bound (a peer that does not "
		  "read, too many files in flight).",
		  n.queue_overflows);
	prom_node(out, "walship_peers", "gauge", "Peers known to this node.", n.npeers);
	PEER_METRIC(bytes_sent, "counter", "Bytes sent to the peer.");
	PEER_METRIC(bytes_received, "counter", "Bytes received from the peer.");
	PEER_METRIC(files_sent, "counter", "WAL files sent to the peer.");
	PEER_METRIC(files_acked, "counter", "WAL files the peer acknowledged.");
	PEER_METRIC(files_inflight, "gauge", "WAL files sent and not yet acknowledged.");
	PEER_METRIC(errors, "counter", "Errors on the peer's connections.");
	PEER_METRIC(reconnects, "counter", "Reconnections to or from the peer.");
	PEER_METRIC(zc_sends, "counter", "Zero-copy sends (SEND_ZC, SENDMSG_ZC) to the peer.");
	PEER_METRIC(zc_copied, "counter", "Zero-copy sends the kernel copied after all.");
	PEER_METRIC(copy_sends, "counter", "Copying sends to the peer.");
	status_node_release(&n);

	prom_node(out, "walship_io_uring_fsyncs_submitted_total", "counter",
		  "IORING_OP_FSYNC requests the daemon submitted.", src->ring->fsyncs_submitted);
	prom_node(out, "walship_sends_submitted_total", "counter",
		  "Sends to peers the daemon submitted (each is one send probe measurement).",
		  src->ring->tagged_submitted);
	prom_node(out, "walship_probes_enabled", "gauge",
		  "1 when the BPF latency probes are loaded.", src->probe != NULL);
	snap = src->probe ? malloc(sizeof(*snap)) : NULL;
	if (snap && probe_read(src->probe, snap) == 0)
		probe_print_prometheus(out, snap);
	free(snap);
}

static void client_sent(struct ring_op *op, int res, uint32_t flags)
{
	struct metrics_client *cl = (struct metrics_client *)op;
	struct io_uring_sqe *sqe;

	(void)flags;
	if (res <= 0) {
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
	if (res <= 0) {
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

static void metrics_accepted(struct ring_op *op, int res, uint32_t flags)
{
	struct metrics *m = (struct metrics *)((char *)op - offsetof(struct metrics, accept_op));
	struct metrics_client *cl;
	struct io_uring_sqe *sqe;

	(void)flags;
	metrics_accept_post(m);
	if (res < 0) {
		if (res != -ECANCELED)
			log_log("could not accept a metrics connection: %s", strerror(-res));
		return;
	}
	if (m->nclients >= METRICS_MAX_CLIENTS) {
		close(res); /* bounded: scrapers retry */
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(res);
		return;
	}
	cl->m = m;
	cl->fd = res;
	cl->next = m->clients;
	m->clients = cl;
	m->nclients++;
	cl->op.cb = client_received;
	sqe = ring_sqe(m->src.ring, &cl->op);
	io_uring_prep_recv(sqe, cl->fd, cl->req, sizeof(cl->req) - 1, 0);
}

static void metrics_accept_post(struct metrics *m)
{
	struct io_uring_sqe *sqe;

	m->accept_op.cb = metrics_accepted;
	sqe = ring_sqe(m->src.ring, &m->accept_op);
	io_uring_prep_accept(sqe, m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

struct metrics *metrics_start(const char *addr, const struct metrics_source *src)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	char host[256], service[8];
	struct metrics *m;
	uint16_t port;
	int fd, one = 1, ret;

	if (config_split_address(addr, host, sizeof(host), &port) < 0) {
		log_error("invalid metrics_listen address \"%s\"", addr);
		return NULL;
	}
	snprintf(service, sizeof(service), "%u", port);
	ret = getaddrinfo(host, service, &hints, &res);
	if (ret != 0) {
		log_error("could not resolve metrics_listen address \"%s\": %s", addr,
			  gai_strerror(ret));
		return NULL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("could not create metrics socket: %s", strerror(errno));
		goto out_free_addr;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		log_error("could not listen on \"%s\" for metrics: %s", addr, strerror(errno));
		goto out_close;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		log_error("out of memory");
		goto out_close;
	}
	freeaddrinfo(res);
	m->src = *src;
	m->listen_fd = fd;
	metrics_accept_post(m);
	log_log("serving Prometheus metrics on http://%s/metrics", addr);
	return m;

out_close:
	close(fd);
out_free_addr:
	freeaddrinfo(res);
	return NULL;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	while (m->clients)
		client_free(m->clients);
	close(m->listen_fd);
	free(m);
}
