// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the walsender endpoint's message dispatch (daemon/serve/walsender*.c), the
 * state machine of one standby connection from its startup packet to streaming and back:
 * serve_start() on a store of a few sparse segments (timelines 1 and 2, the history of 2),
 * a connection accepted, and the input as what the client sends.
 *
 * Input: the first byte is the size of each receive (0: all at once), the rest the
 * client's bytes; when they are all received, the client closes.
 *
 * The daemon below the endpoint is reduced to what it is asked, with no io_uring: the
 * ring's requests (ring_sqe()) are queued and run here one after the other, as the kernel
 * would run them (a receive gets the client's next bytes, a send takes all, an open or a
 * read of the store is done for real); the acceptor hands over one connection; the
 * listening socket, the socket tuning and kTLS are not there; the slots' file is not
 * written (store_state_put()), and what would go to a worker thread runs at once.  Nothing of the endpoint itself is replaced.
 *
 * Properties: no more than its three requests (receive, send, file) are in flight; what
 * the server sends is a sequence of whole backend messages (after the one-byte answers to
 * SSLRequest and GSSENCRequest) of the types a walsender sends, nothing after a FATAL,
 * ReadyForQuery always 'I'; a slot is active only for a connection streaming through it;
 * once the client has closed, every request completes and the connection is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "fuzz.h"
#include "net/acceptor.h"
#include "net/conn.h"
#include "net/ktls.h"
#include "net/listen.h"
#include "serve/walsender_int.h"
#include "wal/store.h"

/* The smallest segment size PostgreSQL allows: streaming all the store is 2 MiB. */
#define SEG_SIZE (1024 * 1024)
/* Requests in flight at once: a standby's receive, send and file request. */
#define MAX_OPS 3

static struct {
	struct ring_op *op;
	struct io_uring_sqe sqe;
} ops[MAX_OPS];
static unsigned int nops;
static struct acceptor *acceptor;
static struct store store;
static struct config cfg;
static int listen_fd = -1;

/* ---- the daemon below the endpoint, reduced to what it is asked ---- */

struct io_uring_sqe *ring_sqe(struct ring *r, struct ring_op *op)
{
	(void)r;
	FUZZ_ASSERT(nops < MAX_OPS);
	ops[nops].op = op;
	memset(&ops[nops].sqe, 0, sizeof(ops[nops].sqe));
	return &ops[nops++].sqe;
}

int acceptor_init(struct acceptor *a, struct ring *r, int fd, const char *what, acceptor_fn done,
		  uint64_t *shed_count)
{
	memset(a, 0, sizeof(*a));
	a->ring = r;
	a->listen_fd = fd;
	a->what = what;
	a->done = done;
	a->shed_count = shed_count;
	acceptor = a;
	return 0;
}

void acceptor_post(struct acceptor *a)
{
	(void)a;
}

void acceptor_refuse(struct acceptor *a, int fd, const char *reason)
{
	(void)a;
	(void)reason;
	close(fd);
}

void acceptor_closed(struct acceptor *a, const char *reason)
{
	(void)a;
	(void)reason;
}

void acceptor_release(struct acceptor *a)
{
	(void)a;
}

int net_listen_tcp(const char *key, const char *addr, int backlog)
{
	(void)key;
	(void)addr;
	(void)backlog;
	return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* shut down and closed by serve */
}

void conn_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	(void)sa;
	snprintf(buf, len, "127.0.0.1:5432");
}

void conn_tune_socket(int fd, int timeout_ms)
{
	(void)fd;
	(void)timeout_ms;
}

void conn_set_user_timeout(int fd, int timeout_ms)
{
	(void)fd;
	(void)timeout_ms;
}

int ktls_derive(uint16_t suite, const uint8_t *secret, size_t secret_len, struct ktls_keys *out)
{
	(void)suite;
	(void)secret;
	(void)secret_len;
	(void)out;
	return -EOPNOTSUPP;
}

int store_state_put(const struct store *st, const char *name, const void *buf, size_t len)
{
	(void)st;
	(void)name;
	(void)buf;
	(void)len;
	return 0;
}

/* The worker thread (the slots' periodic writes): none; a job runs where it is submitted. */
int worker_start(struct worker *w, struct ring *r)
{
	(void)w;
	(void)r;
	return 0;
}

void worker_submit(struct worker *w, struct worker_job *job)
{
	(void)w;
	job->run(job);
	job->done(job);
}

unsigned int worker_pending(const struct worker *w)
{
	(void)w;
	return 0;
}

void worker_stop(struct worker *w)
{
	(void)w;
}

/* The fuzzed store keeps no partials: never called for one. */
uint64_t store_partial_servable(int archive_fd, const struct store_partial *p)
{
	(void)archive_fd;
	return p->durable;
}

bool store_has_incoming(const struct store *st, const char *name)
{
	(void)st;
	(void)name;
	return false;
}

/* Nothing stored by this store's receiving (it receives nothing). */
bool store_recent_has(const struct store *st, const char *name)
{
	(void)st;
	(void)name;
	return false;
}

bool store_recent_older(const struct store *st, const char *name)
{
	(void)st;
	(void)name;
	return false;
}

/* ---- the store, the rules, the configuration: made once ---- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* At exit: the store's directory goes. */
static void remove_store(void)
{
	nftw(store.path, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void put_file(const char *name, const char *text, off_t size)
{
	int fd = openat(store.dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || (text && write(fd, text, strlen(text)) != (ssize_t)strlen(text)) ||
	    (size && ftruncate(fd, size) < 0))
		abort();
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/walship-fuzz-standby.XXXXXX";
	struct sockaddr_in sin = { .sin_family = AF_INET };

	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	if (!mkdtemp(dir))
		abort();
	snprintf(store.path, sizeof(store.path), "%s", dir);
	atexit(remove_store);
	snprintf(store.incoming_path, sizeof(store.incoming_path), "%s/" STORE_INCOMING_DIR, dir);
	store.dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store.dir_fd < 0 || mkdirat(store.dir_fd, STORE_INCOMING_DIR, 0700) < 0 ||
	    mkdirat(store.dir_fd, STORE_STATE_DIR, 0700) < 0)
		abort();
	store.incoming_fd = openat(store.dir_fd, STORE_INCOMING_DIR, O_RDONLY | O_DIRECTORY);
	store.id.system_identifier = 7714757620651245335ULL;
	store.id.seg_size = SEG_SIZE;
	store.id.block_size = 8192;
	/* timeline 1 from 0/1000000 to 0/1180000, then 2 up to 0/1200000: sparse segments
	 * (zeros), the history of 2 */
	put_file("000000010000000000000010", NULL, SEG_SIZE);
	put_file("000000010000000000000011", NULL, SEG_SIZE);
	put_file("000000020000000000000011", NULL, SEG_SIZE);
	put_file("00000002.history", "1\t0/1180000\tno recovery target specified\n", 0);
	put_file("hba.conf",
		 "reject     standby  nobody  all  all\n"
		 "hostnossl  standby  all     all  127.0.0.1/32\n",
		 0);
	config_defaults(&cfg);
	snprintf(cfg.node_name, sizeof(cfg.node_name), "fuzz");
	snprintf(cfg.hba_file, sizeof(cfg.hba_file), "%s/hba.conf", dir);
	snprintf(cfg.pg_listen, sizeof(cfg.pg_listen), "127.0.0.1:5432");
	snprintf(cfg.standby_delay, sizeof(cfg.standby_delay), "delayed:1h");
	cfg.tls = false;
	cfg.pg_password_file[0] = '\0';
	/* A listening socket: each input's connection is a real TCP one (its address is
	 * what the rules match), accepted here and handed to the endpoint. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(listen_fd, 8) < 0)
		abort();
	return 0;
}

/* ---- what the server sends ---- */

struct transcript {
	uint8_t buf[5];
	size_t have; /* bytes of the header of the message in progress */
	uint32_t left; /* of its body, after the header */
	uint8_t type;
	bool started; /* a regular message was seen: no more one-byte answers */
	bool fatal; /* a FATAL was sent: nothing may follow */
	bool error_seen; /* in the message in progress (an 'E'): its S field */
	uint8_t field[8];
	size_t field_len;
};

/* Take @len bytes sent: frame them into messages and check each. */
static void transcript_add(struct transcript *t, const uint8_t *p, size_t len)
{
	while (len) {
		if (t->left) {
			size_t n = len < t->left ? len : t->left;

			/* an ErrorResponse's first field: S and its severity */
			for (size_t i = 0; t->type == 'E' && i < n && t->field_len < 7; i++)
				t->field[t->field_len++] = p[i];
			if (t->type == 'Z')
				FUZZ_ASSERT(p[0] == 'I');
			t->left -= (uint32_t)n;
			p += n;
			len -= n;
			if (!t->left && t->type == 'E')
				t->fatal = t->field_len >= 6 && !memcmp(t->field, "SFATAL", 6);
			continue;
		}
		if (!t->started && !t->have && p[0] == 'N') {
			p++; /* the answer to SSLRequest or GSSENCRequest (no TLS here) */
			len--;
			continue;
		}
		FUZZ_ASSERT(!t->fatal);
		t->buf[t->have++] = *p++;
		len--;
		if (t->have == 5) {
			uint32_t mlen = (uint32_t)t->buf[1] << 24 | (uint32_t)t->buf[2] << 16 |
					(uint32_t)t->buf[3] << 8 | t->buf[4];

			t->type = t->buf[0];
			FUZZ_ASSERT(t->type && strchr("RSKZETDCWcdv", t->type));
			FUZZ_ASSERT(mlen >= 4);
			t->left = mlen - 4;
			t->have = 0;
			t->started = true;
			t->field_len = 0;
		}
	}
}

/* ---- the requests, run as the kernel would ---- */

struct client {
	const uint8_t *data;
	size_t size, chunk;
};

/* Run the oldest request in flight; false when there is none. */
static bool run_one(struct client *c, struct transcript *t)
{
	struct ring_op *op;
	struct io_uring_sqe sqe;
	int res;

	if (!nops)
		return false;
	op = ops[0].op;
	sqe = ops[0].sqe;
	memmove(&ops[0], &ops[1], (nops - 1) * sizeof(ops[0]));
	nops--;
	switch (sqe.opcode) {
	case IORING_OP_RECV: {
		size_t n = c->size < sqe.len ? c->size : sqe.len;

		if (c->chunk && n > c->chunk)
			n = c->chunk;
		memcpy((void *)(uintptr_t)sqe.addr, c->data, n);
		c->data += n;
		c->size -= n;
		res = (int)n; /* 0: the client closed */
		break;
	}
	case IORING_OP_SEND:
		transcript_add(t, (const uint8_t *)(uintptr_t)sqe.addr, sqe.len);
		res = (int)sqe.len;
		break;
	case IORING_OP_OPENAT:
		res = openat(sqe.fd, (const char *)(uintptr_t)sqe.addr, (int)sqe.open_flags);
		if (res < 0)
			res = -errno;
		break;
	case IORING_OP_READ:
		res = (int)pread(sqe.fd, (void *)(uintptr_t)sqe.addr, sqe.len, (off_t)sqe.off);
		if (res < 0)
			res = -errno;
		break;
	default:
		FUZZ_ASSERT(!"a request the endpoint does not make");
		return false;
	}
	op->cb(op, res, 0);
	return true;
}

/* A slot is active only for a connection streaming through it. */
static void check_slots(const struct serve *s)
{
	for (unsigned int i = 0; i < SERVE_MAX_SLOTS; i++) {
		const struct serve_slot *sl = &s->slots.slot[i];
		bool held = false;

		if (!sl->name[0] || !sl->active_pid)
			continue;
		for (const struct standby *sb = s->standbys; sb; sb = sb->next)
			held |= sb->pid == sl->active_pid && sb->slot_p == sl &&
				sb->state == SB_STREAMING;
		FUZZ_ASSERT(held);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript t = { 0 };
	struct client c = { data + 1, size ? size - 1 : 0, size ? data[0] : 0 };
	struct serve *s;
	int fd, peer;

	s = serve_start(&cfg, NULL, &store, &(bool){ false });
	FUZZ_ASSERT(s && acceptor);
	peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);

		if (peer < 0 || getsockname(listen_fd, (struct sockaddr *)&sin, &sl) < 0 ||
		    connect(peer, (struct sockaddr *)&sin, sl) < 0)
			abort();
	}
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		abort();
	acceptor->done(acceptor, fd);
	while (run_one(&c, &t))
		check_slots(s);
	/* the client closed and every request completed: the connection is gone */
	FUZZ_ASSERT(!s->standbys && !s->nstandbys);
	serve_stop(s);
	acceptor->done(acceptor, -EINVAL); /* the accept in flight, its socket shut down */
	FUZZ_ASSERT(!nops && serve_stopped(s));
	serve_free(s);
	acceptor = NULL;
	close(peer);
	return 0;
}
