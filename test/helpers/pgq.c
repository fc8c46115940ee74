// SPDX-License-Identifier: MIT
/*
 * pgq: the system tests' SQL relay, behind psql_at in test/system/lib.sh.
 *
 *   pgq
 *	Listen on 127.0.0.1, an ephemeral port, print "PORT TOKEN" on stdout and serve
 *	requests until the process that started it (the test's shell) exits.
 *
 * A request is one TCP connection: the lines TOKEN, NS, HOST and PORT, then the SQL, ended
 * by a NUL byte.  pgq runs the SQL the way `psql -X -A -t -q -v ON_ERROR_STOP=1 -c SQL`
 * does (one simple query, every result's rows printed unaligned, fields separated by |,
 * notices and errors as psql prints them), as user postgres on database postgres at
 * HOST:PORT, reached from inside network namespace NS (/run/netns/NS), and answers: what
 * psql would print on stdout, NUL, what it would print on stderr, NUL, then psql's exit
 * status and a newline: 0, 1 (an SQL error), 2 (no connection, or it was lost), or 3 when
 * pgq could not enter NS (the caller then runs psql itself).
 *
 * Why: on this machine a psql costs about 90 ms of CPU, most of it in starting the psql
 * process and in forking and initialising a backend for it, and a make check's polls ran
 * about 1,300 of them.  pgq keeps each server's connection open between requests (one per
 * request in flight: a request that waits, e.g. a COMMIT behind synchronous replication,
 * does not hold up the others), so a request costs bash a connect on /dev/tcp and the
 * server one query.  Each connection is reset with DISCARD ALL before it is used again,
 * so that a SET of one request does not outlive it, as it does not outlive a psql.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libpq-fe.h>

#define REQUEST_MAX (1 << 20)
#define KEY_MAX 256

/* A growable text buffer for an answer's stdout and stderr parts. */
struct text {
	char *data;
	size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;

		while (t->len + n + 1 > cap)
			cap *= 2;
		char *data = realloc(t->data, cap);

		if (!data)
			abort();
		t->data = data;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

static void text_adds(struct text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

/* An open connection not in use, to the server named by key ("NS HOST PORT"). */
struct idle_conn {
	char key[KEY_MAX];
	PGconn *conn;
	struct idle_conn *next;
};

static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static struct idle_conn *idle_list;
static char token[33];

/* conn_take: an idle connection to key, still open, or NULL. */
static PGconn *conn_take(const char *key)
{
	struct idle_conn **p, *found = NULL;
	PGconn *conn;

	pthread_mutex_lock(&idle_lock);
	for (p = &idle_list; *p; p = &(*p)->next) {
		if (!strcmp((*p)->key, key)) {
			found = *p;
			*p = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&idle_lock);
	if (!found)
		return NULL;
	conn = found->conn;
	free(found);
	/* An idle connection has nothing to read unless the server is ending it (a stop, a
	 * restart, a crash, a terminated backend: a last message, then the end of the
	 * stream).  Such a connection is dropped, and the request gets a new one, as a psql
	 * started now would. */
	struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };

	if (poll(&pfd, 1, 0) != 0) {
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static void conn_give_back(const char *key, PGconn *conn)
{
	struct idle_conn *c;
	PGresult *res;

	if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE) {
		PQfinish(conn);
		return;
	}
	res = PQexec(conn, "DISCARD ALL");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		PQclear(res);
		PQfinish(conn);
		return;
	}
	PQclear(res);
	c = calloc(1, sizeof(*c));
	if (!c) {
		PQfinish(conn);
		return;
	}
	snprintf(c->key, sizeof(c->key), "%s", key);
	c->conn = conn;
	pthread_mutex_lock(&idle_lock);
	c->next = idle_list;
	idle_list = c;
	pthread_mutex_unlock(&idle_lock);
}

/* Notices go where psql prints them: to stderr, as the server worded them.  Between
 * requests (arg NULL) there is no one to print them to. */
static void on_notice(void *arg, const PGresult *res)
{
	if (arg)
		text_adds(arg, PQresultErrorMessage(res));
}

/* conn_open: connect to HOST:PORT from inside network namespace NS.  Only this thread
 * enters NS (setns changes the calling thread's namespace); it ends with the request.
 * Returns 0, 2 (no connection, *conn set for its message) or 3 (cannot enter NS). */
static int conn_open(const char *ns, const char *host, const char *port, PGconn **conn,
		     struct text *err)
{
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		text_adds(err, "pgq: cannot enter network namespace ");
		text_adds(err, ns);
		text_adds(err, ": ");
		text_adds(err, strerror(errno));
		text_adds(err, "\n");
		if (fd >= 0)
			close(fd);
		return 3;
	}
	close(fd);
	const char *keys[] = {
		"host", "port", "user", "dbname", "connect_timeout", "fallback_application_name",
		NULL
	};
	const char *values[] = { host, port, "postgres", "postgres", "10", "psql", NULL };

	*conn = PQconnectdbParams(keys, values, 0);
	if (PQstatus(*conn) != CONNECTION_OK) {
		text_adds(err, "psql: error: ");
		text_adds(err, PQerrorMessage(*conn));
		PQfinish(*conn);
		*conn = NULL;
		return 2;
	}
	return 0;
}

/* run_sql: what psql -A -t -q -v ON_ERROR_STOP=1 -c SQL prints, and its exit status. */
static int run_sql(PGconn *conn, const char *sql, struct text *out, struct text *err)
{
	PGresult *res;
	int rc = 0;

	PQsetNoticeReceiver(conn, on_notice, err);
	if (!PQsendQuery(conn, sql)) {
		text_adds(err, PQerrorMessage(conn));
		return PQstatus(conn) == CONNECTION_OK ? 1 : 2;
	}
	while ((res = PQgetResult(conn))) {
		switch (PQresultStatus(res)) {
		case PGRES_TUPLES_OK:
			for (int r = 0; r < PQntuples(res); r++) {
				for (int f = 0; f < PQnfields(res); f++) {
					if (f)
						text_add(out, "|", 1);
					text_add(out, PQgetvalue(res, r, f),
						 (size_t)PQgetlength(res, r, f));
				}
				text_add(out, "\n", 1);
			}
			break;
		case PGRES_COMMAND_OK:
		case PGRES_EMPTY_QUERY:
			break;
		case PGRES_COPY_OUT:
		case PGRES_COPY_IN:
		case PGRES_COPY_BOTH:
			text_adds(err, "pgq: COPY is not relayed; use psql\n");
			PQclear(res);
			PQsetNoticeReceiver(conn, on_notice, NULL);
			PQfinish(conn);
			return -1;
		default:
			text_adds(err, PQresultErrorMessage(res));
			rc = 1;
			break;
		}
		PQclear(res);
	}
	if (PQstatus(conn) != CONNECTION_OK)
		rc = 2;
	return rc;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* next_line: the text up to the next newline of *p (which it ends), advancing *p. */
static char *next_line(char **p)
{
	char *line = *p, *nl = strchr(line, '\n');

	if (!nl)
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return line;
}

static void *serve(void *arg)
{
	int fd = (int)(long)arg, rc = 2;
	struct text out = { 0 }, err = { 0 };
	char *req = malloc(REQUEST_MAX), *p, *tok, *ns, *host, *port;
	char key[KEY_MAX], status[16];
	size_t got = 0;
	PGconn *conn;

	if (!req)
		goto done;
	while (got < REQUEST_MAX) {
		ssize_t n = read(fd, req + got, REQUEST_MAX - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto done;
		if (memchr(req + got, '\0', (size_t)n)) {
			got += (size_t)n;
			break;
		}
		got += (size_t)n;
	}
	if (!memchr(req, '\0', got))
		goto done;
	p = req;
	tok = next_line(&p);
	ns = next_line(&p);
	host = next_line(&p);
	port = next_line(&p);
	if (!tok || strcmp(tok, token) || !ns || !host || !port)
		goto done;
	snprintf(key, sizeof(key), "%s %s %s", ns, host, port);
	conn = conn_take(key);
	if (!conn)
		rc = conn_open(ns, host, port, &conn, &err);
	else
		rc = 0;
	if (rc == 0) {
		rc = run_sql(conn, p, &out, &err);
		if (rc < 0) {
			rc = 1;
		} else {
			PQsetNoticeReceiver(conn, on_notice, NULL);
			if (rc == 2)
				PQfinish(conn);
			else
				conn_give_back(key, conn);
		}
	}
	snprintf(status, sizeof(status), "%d\n", rc);
	if (write_all(fd, out.data ? out.data : "", out.len) && write_all(fd, "", 1) &&
	    write_all(fd, err.data ? err.data : "", err.len) && write_all(fd, "", 1))
		write_all(fd, status, strlen(status));
done:
	close(fd);
	free(req);
	free(out.data);
	free(err.data);
	return NULL;
}

int main(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	unsigned char rnd[16];
	pid_t parent = getppid();
	pthread_attr_t attr;
	int lfd;

	/* Gone with the test's shell, whatever way it ends. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		perror("pgq: getrandom");
		return 1;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
		perror("pgq: listen on 127.0.0.1");
		return 1;
	}
	printf("%u %s\n", ntohs(sa.sin_port), token);
	fflush(stdout);
	fclose(stdout);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		pthread_t t;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("pgq: accept");
			return 1;
		}
		if (pthread_create(&t, &attr, serve, (void *)(long)fd) != 0)
			close(fd);
	}
}
