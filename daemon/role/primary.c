// SPDX-License-Identifier: MIT
/*
 * The primary role: takes WAL files from `walship push` over the control socket, validates
 * them, and sends each to every connected replica; a push succeeds once `sync_replicas`
 * replicas have acknowledged the file as durable and it is held in the spool for every
 * other registered replica, and fails (PostgreSQL keeps the file and retries) when a
 * replica refuses its content or push_timeout passes first.  A replica that cannot store
 * it (ACK IO_ERROR) fails nothing: the file is held for it and sent again later.
 *
 * Data path per replica: the file is read with READ_FIXED into a registered slot, right
 * behind the room for the frame and DATA headers, sealed (CRC-32C) in place and sent with
 * SEND_ZC from the same slot; the slot returns to the pool on the zero-copy notification.
 * Each connection has at most PEER_MAX_QUEUED frames queued (reads included) and at most
 * max_inflight_files files unacknowledged; the slot pool is shared, so memory is bounded
 * whatever the number of replicas and pushes (back-pressure, DESIGN §4.5).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/crc32c.h"
#include "common/hba.h"
#include "common/log.h"
#include "common/mapguard.h"
#include "common/node_name.h"
#include "control/control.h"
#include "net/acceptor.h"
#include "net/conn.h"
#include "proto/codec.h"
#include "ring/worker.h"
#include "role/role.h"
#include "status/status.h"
#include "wal/name.h"
#include "wal/page.h"
#include "wal/spool.h"

/* Frames queued per replica connection before its producer waits (reads included). */
#define PEER_MAX_QUEUED 6
/* How long a stopping primary waits for acknowledgements of files in flight. */
#define DRAIN_MS 3000
/* Replicas whose acknowledgements a push remembers (max_senders' upper bound). */
#define PUSH_MAX_EARLY_ACKS 64
/* How long a connected replica has to answer a PING when another connection announces its
 * name: alive, the newcomer is refused (ERROR NAME); silent, it is replaced. */
#define NAME_PROBE_MS 2000
/* Tokens of the primary's own PINGs (handshake and name probes); keepalive tokens are
 * monotonic milliseconds, far below. */
#define PEER_TOKEN_BASE (UINT64_C(1) << 63)
/* A replica that answered ACK IO_ERROR gets held files again after this long, doubling
 * while it keeps failing (docs/protocol.md, "ACK statuses"). */
#define IO_RETRY_MIN_MS 1000
#define IO_RETRY_MAX_MS 30000

/*
 * The handshake (docs/protocol.md, section 1).  A connection counts against max_senders
 * once its HELLO is answered (PEER_INVENTORY on), never before.  It is complete, and the
 * replica registered, only once HELLO and HAVE were valid and the replica answered a PING
 * sent after its HAVE: a peer that does not read what it is sent, or breaks the protocol
 * right after its HAVE, never gets WAL held for it.
 */
enum peer_state {
	PEER_HANDSHAKE, /* waiting for HELLO */
	PEER_NAME_WAIT, /* HELLO valid, but its name is connected: is that connection alive? */
	PEER_INVENTORY, /* HELLO answered, waiting for HAVE */
	PEER_CONFIRM, /* HAVE valid, waiting for the PONG of our PING */
	PEER_STREAMING,
};

/* Whether a streaming replica stores what it is sent (ACK IO_ERROR says it could not). */
enum peer_io {
	PEER_IO_OK, /* sent every new push */
	PEER_IO_WAIT, /* failing: new pushes are held for it in the spool, none is sent */
	PEER_IO_RETRY, /* after the backoff: one held file at a time until one is stored */
};

struct primary;

struct push {
	struct push *next;
	struct primary *pr;
	uint64_t id;
	char name[CTL_MAX_NAME];
	struct wal_name wn;
	int fd;
	uint64_t size;
	const uint8_t *map; /* read-only mapping of the file (send_source = map), or NULL */
	struct ctl_client *client; /* NULL once replied */
	int64_t started_ms;
	int64_t deadline_ms;
	unsigned int acks;
	unsigned int refs; /* transfers and reads that still use fd */
	char acked_by[256];
	char io_error[192]; /* why a replica could not store it (ACK IO_ERROR), for the timeout */
	bool from_spool; /* a held file sent to a replica catching up: no client */
	bool spool_needed; /* registered replicas lack it: hold it before answering */
	bool spool_done; /* the spool job finished (successfully or not) */
	bool spooled; /* held durably in the spool */
	int64_t spool_wait_until_ms; /* spool_delay: copy into the spool then, if still needed */
	/* replicas that acknowledged it: they need no held copy (claims made while the
	 * spool job ran are released when it finishes) */
	unsigned int nacked;
	char acked_names[PUSH_MAX_EARLY_ACKS][WIRE_MAX_NAME + 1];
};

/* Copying a pushed file into the spool, on the worker thread. */
struct spool_job {
	struct worker_job job;
	struct push *push;
	struct spool *spool;
	char **replicas;
	int nreplicas;
	int ret;
	char err[256];
};

struct xfer {
	struct xfer *next;
	struct peer *peer;
	struct push *push;
	uint32_t file_id;
	uint64_t next_read;
	int64_t begin_ms; /* when FILE_BEGIN was queued */
	bool begin_queued;
	bool end_queued;
};

struct peer {
	struct conn conn; /* first: conn callbacks find the peer from it */
	struct peer *next;
	struct primary *pr;
	enum peer_state state;
	bool refused; /* an ERROR is queued: close once it is sent */
	struct peer *rival; /* PEER_NAME_WAIT: the connection of that name, being probed */
	bool have_early; /* PEER_NAME_WAIT: its HAVE came already (in have) */
	uint64_t confirm_token; /* PEER_CONFIRM: the PING whose PONG completes the handshake */
	uint64_t probe_token; /* a newcomer announced this name: our PING, or 0 */
	int64_t probe_deadline_ms; /* no PONG by then: closed, the newcomer goes on */
	char name[WIRE_MAX_NAME + 1];
	int64_t accepted_ms;
	int64_t connected_since;
	struct xfer *xfers; /* unacknowledged transfers, in order */
	struct xfer *fill; /* first transfer not completely queued */
	unsigned int inflight_files;
	char **backlog; /* held files this replica still needs, in WAL order */
	int nbacklog;
	int backlog_next;
	uint32_t next_file_id;
	struct msg_have have; /* what the replica said it holds; entries used are cleared */
	uint64_t files_sent;
	uint64_t files_acked;
	int64_t ack_ewma_ms; /* moving average of FILE_BEGIN to ACK, once ack_seen */
	bool ack_seen;
	uint64_t errors;
	enum peer_io io;
	int64_t io_retry_ms; /* PEER_IO_WAIT: when held files are sent again */
	int io_backoff_ms;
	char last_sent[WIRE_MAX_FILE_NAME + 1];
	char last_acked[WIRE_MAX_FILE_NAME + 1];
	char last_error[STATUS_MAX_TEXT];
};

struct primary {
	struct config cfg;
	struct ring *ring;
	struct control_server control;
	int listen_fd;
	struct acceptor acceptor; /* the accept loop on listen_fd */
	bool accepting;
	bool stopping;
	int64_t drain_deadline_ms; /* stopping: give up waiting for acknowledgements then */
	struct peer *peers;
	unsigned int npeers;
	struct push *pushes;
	unsigned int npushes;
	uint64_t next_push_id;
	uint64_t next_token; /* PEER_TOKEN_BASE + n: PINGs of the handshake and name probes */
	/* cluster identity, learned from the first page of shipped segments */
	uint64_t system_identifier;
	uint16_t page_magic;
	uint32_t seg_size;
	uint32_t block_size;
	struct spool spool;
	struct worker worker;
	struct tls_ctx tls; /* tls.ctx NULL: plaintext */
	struct hba_table *hba; /* access rules; NULL: every replica admitted */
	char **registered; /* registered replicas, sorted */
	uint64_t *held; /* files the spool holds for each of them */
	struct spool_lost *lost; /* what each lost to spool overflow */
	uint64_t spool_reserved; /* bytes of spool jobs in progress */
	int nregistered;
	struct status_node st;
};

static const struct conn_ops peer_conn_ops;
static int peer_check_name(struct peer *peer);
static int peer_hello_accept(struct peer *peer);
static int peer_have_done(struct peer *peer);
static int primary_registered_index(const struct primary *pr, const char *name);
static void primary_release(struct primary *pr, const char *replica, const char *file);

static struct peer *peer_of(struct conn *c)
{
	return (struct peer *)c;
}

/* ---- pushes ---- */

static void push_release(struct push *p)
{
	struct primary *pr = p->pr;
	struct push **pp;

	for (pp = &pr->pushes; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pr->npushes--;
	if (p->map)
		munmap((void *)(uintptr_t)p->map, p->size);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

static void push_unref(struct push *p)
{
	if (--p->refs == 0 && !p->client)
		push_release(p);
}

static void push_reply(struct push *p, uint16_t code, const char *text)
{
	struct primary *pr = p->pr;

	if (!p->client)
		return;
	control_reply(p->client, code, text, strlen(text));
	p->client = NULL;
	if (code == CTL_OK) {
		pr->st.pushes_ok++;
	} else {
		pr->st.pushes_failed++;
		snprintf(pr->st.last_error, sizeof(pr->st.last_error), "%s", text);
	}
	if (p->refs == 0)
		push_release(p);
}

static void push_fail(struct push *p, uint16_t code, const char *fmt, ...) attr_printf(3, 4);

static void push_fail(struct push *p, uint16_t code, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (!p->client)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_log("could not archive \"%s\": %s", p->name, text);
	push_reply(p, code, text);
}

static int push_spool(struct push *p);
static bool primary_spool_room(struct primary *pr, struct push *p);
static bool primary_keeping_up(struct primary *pr, const char *replica, const struct push *p);

static bool push_acked_by(const struct push *p, const char *replica)
{
	for (unsigned int i = 0; i < p->nacked; i++)
		if (!strcmp(p->acked_names[i], replica))
			return true;
	return false;
}

/*
 * Answer the push once it is safe (DESIGN §4.1): durable on sync_replicas replicas, and
 * held in the spool for every registered replica that has not acknowledged it.  The copy
 * into the spool is made only then, and only if some registered replica still lacks the
 * file: with every registered replica quick enough, nothing is copied at all.
 */
static void push_check(struct push *p)
{
	struct primary *pr = p->pr;
	char text[512];

	if (!p->client || p->acks < (unsigned int)pr->cfg.sync_replicas)
		return;
	if (!p->spool_needed) {
		bool missing = false, wait = pr->cfg.spool_delay_ms > 0;

		for (int i = 0; i < pr->nregistered; i++) {
			if (push_acked_by(p, pr->registered[i]))
				continue;
			missing = true;
			wait = wait && primary_keeping_up(pr, pr->registered[i], p);
		}
		if (missing && wait) {
			/* Every replica that lacks it is connected, is being sent it and
			 * acknowledges within spool_delay: a copy is likely not needed. */
			if (!p->spool_wait_until_ms)
				p->spool_wait_until_ms = clock_now_ms() + pr->cfg.spool_delay_ms;
			if (clock_now_ms() < p->spool_wait_until_ms)
				return; /* push_acked() or primary_tick() looks again */
		}
		if (missing) {
			if (primary_spool_room(pr, p) && push_spool(p) < 0)
				push_fail(p, CTL_ERR_FAILED, "out of memory");
			return; /* answered when the spool job is done */
		}
		if (p->spool_wait_until_ms)
			pr->st.spool_avoided++;
	}
	if (p->spool_needed && !p->spooled)
		return;
	if (p->acks)
		snprintf(text, sizeof(text), "durable on %u replica(s): %s%s", p->acks, p->acked_by,
			 p->spooled ? "; held in the spool for the others" : "");
	else
		snprintf(text, sizeof(text), "%s (sync_replicas = 0)",
			 p->spooled ? "held in the spool for every registered replica" :
				      "no replica is registered to hold it for");
	log_debug("archived \"%s\" in %" PRId64 " ms: %s", p->name, clock_now_ms() - p->started_ms,
		  text);
	push_reply(p, CTL_OK, text);
}

/* @replica holds @p durably: count it, and drop its claim on the spool's copy. */
static void push_acked(struct push *p, const char *replica)
{
	struct primary *pr = p->pr;
	size_t used = strlen(p->acked_by);

	p->acks++;
	snprintf(p->acked_by + used, sizeof(p->acked_by) - used, "%s%s", used ? ", " : "", replica);
	if (p->nacked < PUSH_MAX_EARLY_ACKS)
		snprintf(p->acked_names[p->nacked++], WIRE_MAX_NAME + 1, "%s", replica);
	/* While the spool job runs it may be linking this very file: release after it. */
	if (p->from_spool || p->spool_done)
		primary_release(pr, replica, p->name);
	push_check(p);
}

static void spool_job_run(struct worker_job *job)
{
	struct spool_job *sj = (struct spool_job *)job;
	struct push *p = sj->push;

	sj->ret = spool_store(sj->spool, p->fd, p->name, p->size, sj->replicas, sj->nreplicas,
			      sj->err, sizeof(sj->err));
}

static void spool_job_done(struct worker_job *job)
{
	struct spool_job *sj = (struct spool_job *)job;
	struct push *p = sj->push;
	struct primary *pr = p->pr;

	p->spool_done = true;
	pr->spool_reserved -= p->size;
	if (sj->ret < 0) {
		log_error("%s", sj->err);
		push_fail(p, CTL_ERR_FAILED, "could not hold it in the spool: %s", sj->err);
	} else {
		p->spooled = true;
		pr->st.spool_copies++;
		for (int i = 0; i < sj->nreplicas; i++) {
			int k = primary_registered_index(pr, sj->replicas[i]);

			if (k >= 0)
				pr->held[k]++;
		}
		for (unsigned int i = 0; i < p->nacked; i++)
			primary_release(pr, p->acked_names[i], p->name);
		push_check(p);
	}
	spool_free_names(sj->replicas, sj->nreplicas);
	free(sj);
	push_unref(p);
}

/* Hand @p to the worker to be copied into the spool for every registered replica that
 * has not acknowledged it. */
static int push_spool(struct push *p)
{
	struct primary *pr = p->pr;
	struct spool_job *sj = calloc(1, sizeof(*sj));

	if (!sj)
		return -ENOMEM;
	sj->replicas = calloc((size_t)pr->nregistered + 1, sizeof(char *));
	if (!sj->replicas) {
		free(sj);
		return -ENOMEM;
	}
	for (int i = 0; i < pr->nregistered; i++) {
		if (push_acked_by(p, pr->registered[i]))
			continue;
		sj->replicas[sj->nreplicas] = strdup(pr->registered[i]);
		if (!sj->replicas[sj->nreplicas]) {
			spool_free_names(sj->replicas, sj->nreplicas);
			free(sj);
			return -ENOMEM;
		}
		sj->nreplicas++;
	}
	sj->push = p;
	sj->spool = &pr->spool;
	sj->job.run = spool_job_run;
	sj->job.done = spool_job_done;
	p->spool_needed = true;
	p->refs++;
	pr->spool_reserved += p->size;
	worker_submit(&pr->worker, &sj->job);
	return 0;
}

/*
 * Is registered replica @replica about to acknowledge @p?  It is connected and streaming,
 * has no held files left to catch up on, is being sent @p, and its acknowledgements have
 * been coming within spool_delay.
 */
static bool primary_keeping_up(struct primary *pr, const char *replica, const struct push *p)
{
	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		if (peer->state != PEER_STREAMING || peer->conn.closing ||
		    strcmp(peer->name, replica))
			continue;
		if (peer->backlog_next < peer->nbacklog || !peer->ack_seen ||
		    peer->ack_ewma_ms >= pr->cfg.spool_delay_ms)
			return false;
		for (const struct xfer *x = peer->xfers; x; x = x->next)
			if (x->push == p)
				return true;
		return false;
	}
	return false;
}

/* ---- registered replicas ---- */

static int primary_registered_index(const struct primary *pr, const char *name)
{
	for (int i = 0; i < pr->nregistered; i++)
		if (!strcmp(pr->registered[i], name))
			return i;
	return -1;
}

/* @replica no longer needs the held copy of @file. */
static void primary_release(struct primary *pr, const char *replica, const char *file)
{
	int i = primary_registered_index(pr, replica);

	if (spool_release(&pr->spool, replica, file) == 1 && i >= 0 && pr->held[i])
		pr->held[i]--;
}

/*
 * Bounded spool (DESIGN §4.5: overflow is explicit, never a silent drop).  Before @p is
 * copied in: if spool_max_size would be exceeded, either fail the push (spool_overflow =
 * fail: PostgreSQL keeps the WAL and retries) or release the claims of the replica
 * furthest behind, recording durably that it lost those files (release_slowest), until
 * the file fits.  Returns true when @p may be spooled (false: it has been failed).
 */
static bool primary_spool_room(struct primary *pr, struct push *p)
{
	uint64_t max = (uint64_t)pr->cfg.spool_max_size_mb << 20;

	if (!max)
		return true;
	for (;;) {
		uint64_t used = __atomic_load_n(&pr->spool.used_bytes, __ATOMIC_RELAXED) +
				pr->spool_reserved;
		int slowest = -1;
		struct spool_lost lost;
		uint64_t released;

		if (used + p->size <= max)
			return true;
		if (pr->cfg.spool_overflow == CONFIG_SPOOL_RELEASE_SLOWEST) {
			for (int i = 0; i < pr->nregistered; i++)
				if (pr->held[i] && (slowest < 0 || pr->held[i] > pr->held[slowest]))
					slowest = i;
		}
		if (slowest < 0) {
			push_fail(p, CTL_ERR_FAILED,
				  "the spool is full: it holds %" PRIu64
				  " MB of %d MB (spool_max_size) "
				  "for replicas that are behind",
				  used >> 20, pr->cfg.spool_max_size_mb);
			pr->st.spool_full++;
			return false;
		}
		if (spool_release_all_lost(&pr->spool, pr->registered[slowest], &lost, &released) <
		    0) {
			push_fail(p, CTL_ERR_FAILED,
				  "the spool is full and releasing a replica failed");
			return false;
		}
		log_warning("spool full: replica \"%s\" lost %" PRIu64
			    " held file(s), now %s to %s "
			    "(%" PRIu64 " in all)",
			    pr->registered[slowest], released, lost.first, lost.last, lost.files);
		log_detail("spool_overflow = release_slowest released the claims of the replica "
			   "furthest behind to make room.");
		log_hint("Its standby needs another archive or a new base backup; see walship "
			 "status.");
		pr->lost[slowest] = lost;
		pr->held[slowest] = 0;
		pr->st.lost_files += released;
	}
}

static int primary_load_registered(struct primary *pr)
{
	int n;

	spool_free_names(pr->registered, pr->nregistered);
	pr->registered = NULL;
	pr->nregistered = 0;
	free(pr->held);
	pr->held = NULL;
	free(pr->lost);
	pr->lost = NULL;
	n = spool_replicas(&pr->spool, &pr->registered);
	if (n < 0) {
		log_error("could not list registered replicas in \"%s\": %s", pr->spool.path,
			  strerror(-n));
		return n;
	}
	pr->nregistered = n;
	pr->held = calloc((size_t)n + 1, sizeof(*pr->held));
	pr->lost = calloc((size_t)n + 1, sizeof(*pr->lost));
	if (!pr->held || !pr->lost)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		char **names;
		int held = spool_backlog(&pr->spool, pr->registered[i], &names);

		spool_read_lost(&pr->spool, pr->registered[i], &pr->lost[i]);
		if (held > 0) {
			pr->held[i] = (uint64_t)held;
			spool_free_names(names, held);
		}
	}
	return 0;
}

/* ---- transfers ---- */

static void peer_add_xfer(struct peer *peer, struct push *p)
{
	struct xfer *x = calloc(1, sizeof(*x)), **xp;

	if (!x) {
		log_error("out of memory");
		conn_close(&peer->conn, -ENOMEM);
		return;
	}
	x->peer = peer;
	x->push = p;
	x->file_id = ++peer->next_file_id;
	p->refs++;
	for (xp = &peer->xfers; *xp; xp = &(*xp)->next)
		;
	*xp = x;
	if (!peer->fill)
		peer->fill = x;
}

static void xfer_free(struct xfer *x)
{
	struct push *p = x->push;

	free(x);
	push_unref(p);
}

/* Validating a pushed file through a mapping of it, under the SIGBUS guard. */
struct push_validation {
	const uint8_t *map;
	uint64_t size;
	const struct wal_name *wn;
	struct wal_validator *wv;
	struct wal_identity *id;
};

static int push_validate_mapped(void *arg)
{
	struct push_validation *pv = arg;

	return wal_validate_buffer(pv->map, pv->size, pv->wn, 0, pv->wv, pv->id);
}

/*
 * Validate a pushed file before its push can succeed (DESIGN §4.4), with the validator
 * the replicas use (wal/page.h): the page headers of a segment or .partial, the text of a
 * history or backup file.  Read through @map, else through a mapping made for the purpose
 * (either way only the page headers of a segment are touched), else with pread.  Returns
 * 0 and fills @id, or a negative errno with the reason in wv->message.
 */
static int push_validate(int fd, const uint8_t *map, uint64_t size, const struct wal_name *wn,
			 struct wal_validator *wv, struct wal_identity *id)
{
	struct push_validation pv = { .map = map, .size = size, .wn = wn, .wv = wv, .id = id };
	void *own = NULL;
	int ret;

	if (!map && size) {
		own = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		if (own == MAP_FAILED)
			return wal_validate_fd(fd, wn, 0, wv, id);
		pv.map = own;
	}
	ret = mapguard_call(push_validate_mapped, &pv);
	if (ret == -EFAULT)
		snprintf(wv->message, sizeof(wv->message),
			 "the file shrank while it was being validated");
	if (own)
		munmap(own, size);
	return ret;
}

/*
 * A pushed segment's first page (@id, from the validator) names its cluster.  The first
 * one fixes (durably) the cluster this primary ships; a segment of another cluster is
 * refused before anything is sent (a replica would refuse it too, file by file), and the
 * handshake can refuse a replica of another cluster.  Returns 0, or -EINVAL with @why
 * filled.
 */
static int primary_check_identity(struct primary *pr, const struct wal_identity *id,
				  const char *name, char *why, size_t whylen)
{
	if (!pr->system_identifier) {
		struct spool_identity sid = { .system_identifier = id->system_identifier,
					      .page_magic = id->page_magic,
					      .seg_size = id->seg_size,
					      .block_size = id->block_size };

		pr->system_identifier = id->system_identifier;
		pr->page_magic = id->page_magic;
		pr->seg_size = id->seg_size;
		pr->block_size = id->block_size;
		log_log("primary holds WAL of system %" PRIu64 " (PostgreSQL %s)",
			pr->system_identifier, wal_page_magic_version(pr->page_magic));
		spool_set_identity(&pr->spool, &sid);
		return 0;
	}
	if (id->system_identifier != pr->system_identifier || id->page_magic != pr->page_magic) {
		snprintf(why, whylen,
			 "\"%s\" is WAL of system %" PRIu64 " (PostgreSQL %s); this primary ships "
			 "system %" PRIu64 " (PostgreSQL %s)",
			 name, id->system_identifier, wal_page_magic_version(id->page_magic),
			 pr->system_identifier, wal_page_magic_version(pr->page_magic) ?: "?");
		return -EINVAL;
	}
	return 0;
}

static void peer_read_done(struct ring_op *op, int res, uint32_t flags)
{
	struct conn_tx_item *item = container_of(op, struct conn_tx_item, load_op);
	struct xfer *x = item->owner;
	struct peer *peer = x->peer;
	struct push *p = x->push;
	uint64_t offset = item->owner_arg;
	uint32_t want = item->len;

	(void)flags;
	if (res < 0 || (uint32_t)res != want) {
		char msg[256];

		if (res < 0)
			snprintf(msg, sizeof(msg), "could not read file \"%s\": %s", p->name,
				 strerror(-res));
		else
			snprintf(
				msg, sizeof(msg),
				"could not read file \"%s\": read %d of %u bytes at offset %" PRIu64,
				p->name, res, want, offset);
		push_fail(p, CTL_ERR_FAILED, "%s", msg);
		conn_item_failed(&peer->conn, item, res < 0 ? res : -EIO);
	} else {
		conn_item_ready(
			&peer->conn, item,
			(uint32_t)msg_data_seal(item->slot->data, x->file_id, offset, want));
	}
	push_unref(p);
	conn_op_end(&peer->conn); /* may free peer */
}

static int peer_queue_small(struct peer *peer, int len, const uint8_t *frame)
{
	if (len < 0) {
		log_error("could not encode frame for %s: %s", peer->conn.peer_addr,
			  strerror(-len));
		return len;
	}
	return conn_send_frame(&peer->conn, frame, (uint32_t)len);
}

static void peer_mapped_release(struct conn_tx_item *item)
{
	push_unref(item->owner);
}

/*
 * Queue the next chunk of @x from the file's mapping: checksum it where it lies and send
 * headers and content with one SENDMSG(_ZC), so the content is never copied in user
 * space.  Returns false when the connection was closed.
 */
static bool peer_queue_mapped(struct peer *peer, struct xfer *x)
{
	struct push *p = x->push;
	uint64_t offset = x->next_read;
	uint32_t len =
		(uint32_t)(p->size - offset < WIRE_CHUNK_SIZE ? p->size - offset : WIRE_CHUNK_SIZE);
	uint8_t hdr[WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE];
	uint32_t crc = msg_data_split_begin(hdr, x->file_id, offset);
	int hdr_len;

	if (mapguard_crc32c(crc, p->map + offset, len, &crc) < 0) {
		/* The file shrank under us: this transfer cannot complete, and the
		 * protocol has no way to abandon one file, so the connection goes. */
		push_fail(p, CTL_ERR_FAILED, "file \"%s\" shrank while it was being sent", p->name);
		conn_close(&peer->conn, -EIO);
		return false;
	}
	hdr_len = msg_data_split_end(hdr, offset, len, crc);
	p->refs++;
	if (hdr_len < 0 || !conn_queue_mapped(&peer->conn, hdr, (uint32_t)hdr_len, p->map + offset,
					      len, peer_mapped_release, p)) {
		push_unref(p);
		conn_close(&peer->conn, hdr_len < 0 ? hdr_len : -ENOMEM);
		return false;
	}
	x->next_read += len;
	return true;
}

static bool peer_has_file(const struct peer *peer, const char *name)
{
	for (const struct xfer *x = peer->xfers; x; x = x->next)
		if (!strcmp(x->push->name, name))
			return true;
	return false;
}

/* A held file, opened from the spool, to send to a replica catching up. */
static struct push *push_from_spool(struct primary *pr, const char *name)
{
	struct stat sb;
	struct push *p;
	int fd = spool_open_file(&pr->spool, name);

	if (fd < 0)
		return NULL; /* released meanwhile */
	p = calloc(1, sizeof(*p));
	if (!p || fstat(fd, &sb) < 0 || wal_name_parse(name, &p->wn) < 0) {
		free(p);
		close(fd);
		return NULL;
	}
	p->pr = pr;
	p->id = ++pr->next_push_id;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->fd = fd;
	p->size = (uint64_t)sb.st_size;
	p->from_spool = true;
	p->started_ms = clock_now_ms();
	if (pr->cfg.send_source == CONFIG_SEND_MAP && p->size) {
		void *map = mmap(NULL, p->size, PROT_READ, MAP_SHARED, fd, 0);

		if (map != MAP_FAILED)
			p->map = map;
	}
	p->next = pr->pushes;
	pr->pushes = p;
	pr->npushes++;
	return p;
}

/*
 * A replica catching up: queue its next held files, in WAL order, keeping at most
 * max_inflight_files ahead.  Files it is already being sent (new pushes) are skipped.
 */
static void peer_fill_backlog(struct peer *peer)
{
	struct primary *pr = peer->pr;

	unsigned int window =
		peer->io == PEER_IO_RETRY ? 1 : (unsigned int)pr->cfg.max_inflight_files;

	if (peer->io == PEER_IO_WAIT)
		return;
	while (!pr->stopping && !peer->fill && peer->backlog_next < peer->nbacklog &&
	       peer->inflight_files < window) {
		const char *name = peer->backlog[peer->backlog_next++];
		struct push *p;

		if (peer_has_file(peer, name))
			continue;
		p = push_from_spool(pr, name);
		if (!p)
			continue;
		p->refs = 1;
		peer_add_xfer(peer, p);
		push_unref(p);
	}
}

/*
 * (Re)read the list of files the spool holds for @peer, to be sent in WAL order.  Files
 * it is being sent or has acknowledged meanwhile are skipped when their turn comes
 * (peer_fill_backlog).  Returns how many, or -errno (logged).
 */
static int peer_load_backlog(struct peer *peer)
{
	int ret;

	spool_free_names(peer->backlog, peer->nbacklog);
	peer->backlog = NULL;
	peer->nbacklog = 0;
	peer->backlog_next = 0;
	ret = spool_backlog(&peer->pr->spool, peer->name, &peer->backlog);
	if (ret < 0) {
		log_error("could not list the files held for replica \"%s\": %s", peer->name,
			  strerror(-ret));
		return ret;
	}
	peer->nbacklog = ret;
	return ret;
}

/* Pushes in progress that @peer has neither acknowledged nor been given: give them. */
static void peer_add_pending(struct peer *peer)
{
	for (struct push *p = peer->pr->pushes; p; p = p->next)
		if (p->client && !p->from_spool && !push_acked_by(p, peer->name) &&
		    !peer_has_file(peer, p->name))
			peer_add_xfer(peer, p);
}

/* CRC-32C of the first @len bytes of @p's file: through its mapping, else read. */
static int push_crc(const struct push *p, uint64_t len, uint32_t *crc)
{
	uint8_t *buf;
	uint64_t off = 0;

	if (p->map)
		return mapguard_crc32c(0, p->map, len, crc);
	buf = malloc(WIRE_CHUNK_SIZE);
	if (!buf)
		return -ENOMEM;
	*crc = 0;
	while (off < len) {
		size_t want = len - off < WIRE_CHUNK_SIZE ? (size_t)(len - off) : WIRE_CHUNK_SIZE;
		ssize_t got = pread(p->fd, buf, want, (off_t)off);

		if (got <= 0) {
			free(buf);
			return got < 0 ? -errno : -EIO;
		}
		*crc = crc32c(*crc, buf, (size_t)got);
		off += (uint64_t)got;
	}
	free(buf);
	return 0;
}

enum have_verdict {
	HAVE_NONE, /* send the file from its start */
	HAVE_RESUME, /* send it from the replica's durable length */
	HAVE_SKIP, /* the replica holds the same file: nothing to send */
};

/*
 * Before @x is begun: did the replica say (HAVE) that it holds the file, or a durable
 * part of it?  Taken only when the sizes agree and the CRC of those bytes equals this
 * side's copy; otherwise the file goes from its start (and where the replica holds other
 * content under the name, it refuses it as a conflict).  Each entry is used once.
 */
static enum have_verdict peer_check_have(struct peer *peer, struct xfer *x, uint64_t *start)
{
	struct push *p = x->push;
	struct msg_have_entry *e = NULL;
	uint32_t crc;

	for (uint32_t idx = 0; idx < peer->have.count && !e; idx++)
		if (peer->have.entries[idx].name[0] &&
		    !strcmp(peer->have.entries[idx].name, p->name))
			e = &peer->have.entries[idx];
	if (!e)
		return HAVE_NONE;
	e->name[0] = '\0';
	if (e->size != p->size || push_crc(p, e->durable, &crc) < 0)
		return HAVE_NONE;
	if (crc != e->crc) {
		log_log("replica \"%s\" holds %" PRIu64 " bytes of \"%s\" with other content; "
			"sending it from its start",
			peer->name, e->durable, p->name);
		return HAVE_NONE;
	}
	if (e->kind == WIRE_HAVE_COMPLETE)
		return HAVE_SKIP;
	*start = e->durable;
	return HAVE_RESUME;
}

/* @x is the fill position and the replica already holds its file: acknowledged as it is. */
static void peer_skip_xfer(struct peer *peer, struct xfer *x)
{
	struct primary *pr = peer->pr;
	struct xfer **xp;

	for (xp = &peer->xfers; *xp != x; xp = &(*xp)->next)
		;
	*xp = x->next;
	peer->fill = x->next;
	peer->files_acked++;
	pr->st.skipped_files++;
	snprintf(peer->last_acked, sizeof(peer->last_acked), "%s", x->push->name);
	log_log("replica \"%s\" already holds \"%s\" with the same content; not sent again",
		peer->name, x->push->name);
	push_acked(x->push, peer->name);
	xfer_free(x);
}

/* Queue what can be queued for @peer within its bounds. */
static void peer_fill(struct peer *peer)
{
	struct primary *pr = peer->pr;
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];

	if (peer->state == PEER_STREAMING && !peer->conn.closing)
		peer_fill_backlog(peer);
	while (peer->state == PEER_STREAMING && !peer->conn.closing && peer->fill) {
		struct xfer *x = peer->fill;
		struct push *p = x->push;

		if (conn_tx_backlog(&peer->conn) >= PEER_MAX_QUEUED)
			return;
		if (!x->begin_queued) {
			struct msg_file_begin fb = { .file_id = x->file_id,
						     .kind = (uint8_t)p->wn.kind,
						     .size = p->size };

			if (peer->inflight_files >= (unsigned int)pr->cfg.max_inflight_files)
				return;
			switch (peer_check_have(peer, x, &fb.start_offset)) {
			case HAVE_SKIP:
				peer_skip_xfer(peer, x);
				continue;
			case HAVE_RESUME:
				x->next_read = fb.start_offset;
				pr->st.resumed_files++;
				pr->st.resumed_bytes += fb.start_offset;
				log_log("resuming \"%s\" for replica \"%s\" at offset %" PRIu64
					", its durable length",
					p->name, peer->name, fb.start_offset);
				break;
			case HAVE_NONE:
				break;
			}
			snprintf(fb.name, sizeof(fb.name), "%s", p->name);
			if (peer_queue_small(peer, msg_file_begin_encode(frame, sizeof(frame), &fb),
					     frame) < 0)
				return;
			x->begin_queued = true;
			x->begin_ms = clock_now_ms();
			peer->inflight_files++;
			peer->files_sent++;
			snprintf(peer->last_sent, sizeof(peer->last_sent), "%s", p->name);
			continue;
		}
		if (x->next_read < p->size && p->map) {
			if (!peer_queue_mapped(peer, x))
				return;
			continue;
		}
		if (x->next_read < p->size) {
			uint32_t len = (uint32_t)(p->size - x->next_read < WIRE_CHUNK_SIZE ?
							  p->size - x->next_read :
							  WIRE_CHUNK_SIZE);
			struct ring_slot *slot = ring_slot_get(pr->ring);
			struct conn_tx_item *item;
			struct io_uring_sqe *sqe;
			uint8_t *dst;

			if (!slot)
				return; /* pool exhausted: primary_pump() retries */
			item = conn_queue_slot(&peer->conn, slot, len, false);
			if (!item) {
				ring_slot_put(pr->ring, slot);
				conn_close(&peer->conn, -ENOMEM);
				return;
			}
			item->owner = x;
			item->owner_arg = x->next_read;
			item->load_op.cb = peer_read_done;
			dst = slot->data + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE;
			sqe = ring_sqe(pr->ring, &item->load_op);
			if (pr->ring->fixed_buffers)
				io_uring_prep_read_fixed(sqe, p->fd, dst, len, x->next_read,
							 (int)slot->index);
			else
				io_uring_prep_read(sqe, p->fd, dst, len, x->next_read);
			conn_op_begin(&peer->conn);
			p->refs++;
			x->next_read += len;
			continue;
		}
		if (!x->end_queued) {
			struct msg_file_end fe = { .file_id = x->file_id, .size = p->size };

			if (peer_queue_small(peer, msg_file_end_encode(frame, sizeof(frame), &fe),
					     frame) < 0)
				return;
			x->end_queued = true;
		}
		peer->fill = x->next;
	}
}

/* ---- replica connections ---- */

static void peer_set_error(struct peer *peer, const char *fmt, ...) attr_printf(2, 3);

static void peer_set_error(struct peer *peer, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(peer->last_error, sizeof(peer->last_error), fmt, ap);
	va_end(ap);
	peer->errors++;
}

/* Send ERROR and close. */
static int peer_refuse(struct peer *peer, uint32_t code, const char *fmt, ...) attr_printf(3, 4);

static int peer_refuse(struct peer *peer, uint32_t code, const char *fmt, ...)
{
	struct msg_error me = { .code = code };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	va_list ap;
	int len;

	va_start(ap, fmt);
	vsnprintf(me.message, sizeof(me.message), fmt, ap);
	va_end(ap);
	log_log("refusing replica connection from %s: %s", peer->conn.peer_addr, me.message);
	peer->pr->st.connections_refused++;
	len = msg_error_encode(frame, sizeof(frame), &me);
	if (len < 0 || conn_send_frame(&peer->conn, frame, (uint32_t)len) < 0)
		return -EPROTO;
	/* Let the ERROR go out before the socket is shut down (peer_tx_progress). */
	peer->state = PEER_HANDSHAKE;
	peer->refused = true;
	return 0;
}

static int peer_on_hello(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct primary *pr = peer->pr;
	struct msg_hello in;
	int ret;

	ret = msg_hello_decode(payload, len, &in);
	if (ret == -EPROTONOSUPPORT)
		return peer_refuse(peer, WIRE_ERR_VERSION, "protocol version %u is not supported",
				   in.version);
	if (ret < 0 && ret != -EINVAL) {
		log_log("malformed HELLO from %s", peer->conn.peer_addr);
		return ret;
	}
	if (in.role != WIRE_ROLE_REPLICA)
		return peer_refuse(peer, WIRE_ERR_ROLE,
				   "only replicas connect to a primary: WAL flows from primary to "
				   "replica only");
	if (ret == -EINVAL) /* all else well formed: the name breaks the rule */
		return peer_refuse(peer, WIRE_ERR_NAME, "invalid node name: a node name is %s",
				   WALSHIP_NODE_NAME_RULE);
	if (strcmp(in.arch, wire_arch()) != 0)
		return peer_refuse(peer, WIRE_ERR_INCOMPATIBLE,
				   "replica platform %s differs from primary platform %s", in.arch,
				   wire_arch());
	if (in.system_identifier && pr->system_identifier &&
	    in.system_identifier != pr->system_identifier)
		return peer_refuse(peer, WIRE_ERR_INCOMPATIBLE,
				   "replica holds WAL of system %" PRIu64
				   ", this primary ships %" PRIu64,
				   in.system_identifier, pr->system_identifier);
	if (in.page_magic && pr->page_magic && in.page_magic != pr->page_magic)
		return peer_refuse(
			peer, WIRE_ERR_INCOMPATIBLE,
			"replica holds WAL of PostgreSQL %s, this primary ships PostgreSQL %s",
			wal_page_magic_version(in.page_magic) ?: "?",
			wal_page_magic_version(pr->page_magic) ?: "?");
	if (in.seg_size && pr->seg_size && in.seg_size != pr->seg_size)
		return peer_refuse(peer, WIRE_ERR_INCOMPATIBLE,
				   "replica WAL segment size %u differs from primary's %u",
				   in.seg_size, pr->seg_size);
	if (in.block_size && pr->block_size && in.block_size != pr->block_size)
		return peer_refuse(peer, WIRE_ERR_INCOMPATIBLE,
				   "replica WAL block size %u differs from primary's %u",
				   in.block_size, pr->block_size);
	/* With TLS, the certificate says who the peer is: its name must be the node name. */
	if (conn_peer_cert_name(&peer->conn) &&
	    strcmp(conn_peer_cert_name(&peer->conn), in.node_name) != 0)
		return peer_refuse(peer, WIRE_ERR_NAME,
				   "certificate name \"%s\" does not match node name \"%s\"",
				   conn_peer_cert_name(&peer->conn), in.node_name);
	/* Access rules (hba_file): first match wins; no match is a refusal. */
	if (pr->hba) {
		struct hba_request req = {
			.role = HBA_ROLE_REPLICA,
			.node_name = in.node_name,
			.cert_name = conn_peer_cert_name(&peer->conn),
			.addr = (const struct sockaddr *)&peer->conn.peer_sa,
		};
		struct hba_match match;
		char why[512];

		if (hba_match(pr->hba, &req, &match) != HBA_ALLOW) {
			hba_format_refusal(pr->hba, &req, &match, why, sizeof(why));
			pr->st.hba_refused++;
			return peer_refuse(peer, WIRE_ERR_ACCESS, "%s", why);
		}
	}
	snprintf(peer->name, sizeof(peer->name), "%s", in.node_name);
	return peer_check_name(peer);
}

/* Queue a PING with a fresh token of ours in *@token.  Returns 0 or -errno. */
static int peer_ping(struct peer *peer, uint64_t *token)
{
	struct msg_ping ping = { .token = PEER_TOKEN_BASE + ++peer->pr->next_token };
	uint8_t frame[WIRE_HEADER_SIZE + 8];
	int ret = peer_queue_small(peer, msg_ping_encode(frame, sizeof(frame), WIRE_PING, &ping),
				   frame);

	if (!ret)
		*token = ping.token;
	return ret;
}

/* The connection, other than @peer, of replica @name past its HELLO, or NULL. */
static struct peer *primary_named(struct primary *pr, const char *name, const struct peer *peer)
{
	for (struct peer *other = pr->peers; other; other = other->next)
		if (other != peer && other->state >= PEER_INVENTORY && !other->conn.closing &&
		    !other->refused && !strcmp(other->name, name))
			return other;
	return NULL;
}

/*
 * @peer's HELLO is valid.  If a connection of that name is up, it may be the replica's
 * own half-open one after a network cut or a restart, or the replica alive and @peer an
 * impostor: that connection is sent a PING.  Answered within NAME_PROBE_MS, @peer is
 * refused with ERROR NAME (peer_on_pong); otherwise that connection is closed and @peer
 * goes on (primary_tick, peer_closed, primary_pump).  Returns 0 or -errno.
 */
static int peer_check_name(struct peer *peer)
{
	struct peer *rival = primary_named(peer->pr, peer->name, peer);

	if (!rival)
		return peer_hello_accept(peer);
	if (!rival->probe_token) {
		int ret = peer_ping(rival, &rival->probe_token);

		if (ret < 0)
			return ret;
		rival->probe_deadline_ms = clock_now_ms() + NAME_PROBE_MS;
		log_log("replica \"%s\" connects from %s while connected from %s; checking that "
			"connection",
			peer->name, peer->conn.peer_addr, rival->conn.peer_addr);
	}
	peer->rival = rival;
	peer->state = PEER_NAME_WAIT;
	return 0;
}

/* @peer's HELLO passed every check: answer it, if there is room (max_senders). */
static int peer_hello_accept(struct peer *peer)
{
	struct primary *pr = peer->pr;
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct msg_hello out = { 0 };
	unsigned int past_hello = 0;
	int ret;

	/* Connections still in the handshake do not count: they cannot lock replicas out. */
	for (struct peer *other = pr->peers; other; other = other->next)
		if (other != peer && other->state >= PEER_INVENTORY && !other->conn.closing &&
		    !other->refused)
			past_hello++;
	if (past_hello >= (unsigned int)pr->cfg.max_senders)
		return peer_refuse(peer, WIRE_ERR_TOO_MANY,
				   "too many replicas connected (max_senders = %d)",
				   pr->cfg.max_senders);
	out.version = WIRE_VERSION;
	out.role = WIRE_ROLE_PRIMARY;
	out.system_identifier = pr->system_identifier;
	out.page_magic = pr->page_magic;
	out.seg_size = pr->seg_size;
	out.block_size = pr->block_size;
	snprintf(out.arch, sizeof(out.arch), "%s", wire_arch());
	snprintf(out.node_name, sizeof(out.node_name), "%s", pr->cfg.node_name);
	ret = peer_queue_small(peer, msg_hello_encode(frame, sizeof(frame), &out), frame);
	if (ret < 0)
		return ret;
	peer->state = PEER_INVENTORY; /* HAVE follows the replica's HELLO */
	if (peer->have_early)
		return peer_have_done(peer);
	return 0;
}

/* The replica's inventory: the handshake completes with the answer to a PING. */
static int peer_on_have(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	int ret = msg_have_decode(payload, len, &peer->have);

	if (ret < 0) {
		log_log("malformed HAVE from replica \"%s\"", peer->name);
		return ret;
	}
	if (peer->state == PEER_NAME_WAIT) {
		peer->have_early = true; /* taken once its name is settled */
		return 0;
	}
	return peer_have_done(peer);
}

static int peer_have_done(struct peer *peer)
{
	peer->have_early = false;
	peer->state = PEER_CONFIRM;
	return peer_ping(peer, &peer->confirm_token);
}

/*
 * The handshake is complete: register the replica (bounded by max_registered) and stream.
 * Returns 0 or -errno.
 */
static int peer_register(struct peer *peer)
{
	struct primary *pr = peer->pr;
	int ret;

	if (primary_registered_index(pr, peer->name) < 0 &&
	    pr->nregistered >= pr->cfg.max_registered)
		return peer_refuse(
			peer, WIRE_ERR_TOO_MANY,
			"replica \"%s\" cannot be registered: %d replicas are registered "
			"(max_registered = %d); \"walship replica drop\" one that is gone",
			peer->name, pr->nregistered, pr->cfg.max_registered);
	peer->state = PEER_STREAMING;
	peer->connected_since = time(NULL);
	log_log("replica \"%s\" connected from %s", peer->name, peer->conn.peer_addr);

	/* From its first connection on, the spool holds WAL for it (DESIGN §4.1). */
	ret = spool_register(&pr->spool, peer->name);
	if (ret < 0)
		return ret;
	if (ret == 1) {
		log_log("replica \"%s\" registered: the spool holds WAL for it from now on",
			peer->name);
		if (primary_load_registered(pr) < 0)
			return -EIO;
	}
	ret = peer_load_backlog(peer);
	if (ret < 0)
		return ret;
	if (ret)
		log_log("replica \"%s\" catches up on %d held file(s), from %s", peer->name, ret,
			peer->backlog[0]);

	/* Files waiting for acknowledgements go to the newcomer too (new ones first: the
	 * held backlog follows in WAL order). */
	peer_add_pending(peer);
	peer_fill(peer);
	return 0;
}

/* A PONG: it completes the handshake, or proves alive a connection whose name was
 * announced by another one, which is then refused. */
static int peer_on_pong(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct msg_ping pong;

	if (msg_ping_decode(payload, len, &pong) < 0)
		return -EPROTO;
	if (peer->probe_token && pong.token == peer->probe_token) {
		struct peer *other, *next;

		peer->probe_token = 0;
		for (other = peer->pr->peers; other; other = next) {
			next = other->next; /* conn_close() may free it */
			if (other->rival != peer || other->state != PEER_NAME_WAIT)
				continue;
			other->rival = NULL;
			if (peer_refuse(other, WIRE_ERR_NAME,
					"replica \"%s\" is already connected from %s", peer->name,
					peer->conn.peer_addr) < 0)
				conn_close(&other->conn, -EPROTO);
		}
	}
	if (peer->state == PEER_CONFIRM && pong.token == peer->confirm_token)
		return peer_register(peer);
	return 0;
}

/*
 * @peer answered ACK IO_ERROR for @file: stop sending it new pushes (they are held for it
 * in the spool, as for a replica that is away) and send it held files again after a
 * backoff that doubles while it keeps failing (primary_tick).
 */
static void peer_io_failed(struct peer *peer, const char *file, const char *why)
{
	if (peer->io == PEER_IO_WAIT)
		return; /* another file of the same burst */
	peer->io_backoff_ms = peer->io_backoff_ms ? 2 * peer->io_backoff_ms : IO_RETRY_MIN_MS;
	if (peer->io_backoff_ms > IO_RETRY_MAX_MS)
		peer->io_backoff_ms = IO_RETRY_MAX_MS;
	peer->io = PEER_IO_WAIT;
	peer->io_retry_ms = clock_now_ms() + peer->io_backoff_ms;
	log_warning("replica \"%s\" could not store \"%s\": %s", peer->name, file, why);
	log_detail("The spool holds the files it lacks; they are sent to it again in %d ms.",
		   peer->io_backoff_ms);
}

/* PEER_IO_WAIT is over: send @peer the files held for it, one at a time. */
static void peer_io_retry(struct peer *peer)
{
	peer->io = PEER_IO_RETRY;
	if (peer_load_backlog(peer) <= 0) {
		peer->io = PEER_IO_OK; /* nothing held (or unreadable: logged) */
		peer_add_pending(peer);
	}
	peer_fill(peer);
}

/* A held file sent again was stored: back to normal, with everything it still lacks. */
static void peer_io_recovered(struct peer *peer)
{
	log_log("replica \"%s\" stores files again", peer->name);
	peer->io = PEER_IO_OK;
	peer->io_backoff_ms = 0;
	peer_load_backlog(peer);
	peer_add_pending(peer);
}

/*
 * A replica could not store @p (ACK IO_ERROR; its transfer is gone): if the replicas still
 * being sent it can make up sync_replicas, the push goes on and @p is held for the failing
 * one (push_check); if they cannot, it fails now rather than at push_timeout.
 */
static void push_io_error(struct push *p)
{
	struct primary *pr = p->pr;
	unsigned int sending = 0;

	if (!p->client)
		return;
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    peer_has_file(peer, p->name))
			sending++;
	if (p->acks + sending < (unsigned int)pr->cfg.sync_replicas) {
		push_fail(p, CTL_ERR_FAILED,
			  "%s (%u of %d required replica acknowledgements, and %u other replica(s) "
			  "being sent it)",
			  p->io_error, p->acks, pr->cfg.sync_replicas, sending);
		return;
	}
	push_check(p); /* it may have waited for that replica: hold it for it now */
}

static int peer_on_ack(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct primary *pr = peer->pr;
	struct msg_ack ack;
	struct xfer **xp, *x;
	int ret = msg_ack_decode(payload, len, &ack);

	if (ret < 0) {
		log_log("malformed ACK from replica \"%s\"", peer->name);
		return ret;
	}
	for (xp = &peer->xfers; (x = *xp); xp = &x->next)
		if (x->file_id == ack.file_id)
			break;
	if (!x || !x->end_queued || strcmp(ack.name, x->push->name) != 0) {
		log_log("replica \"%s\" acknowledged unknown file %u (\"%s\")", peer->name,
			ack.file_id, ack.name);
		return -EPROTO;
	}
	switch (ack.status) {
	case WIRE_ACK_STORED:
	case WIRE_ACK_DUPLICATE:
		if (ack.durable_offset != x->push->size) {
			log_log("replica \"%s\" acknowledged %" PRIu64 " of %" PRIu64
				" bytes of \"%s\" as complete",
				peer->name, ack.durable_offset, x->push->size, ack.name);
			return -EPROTO;
		}
		peer->files_acked++;
		snprintf(peer->last_acked, sizeof(peer->last_acked), "%s", ack.name);
		{
			/* FILE_BEGIN to ACK, smoothed (1/4 weight to the newest). */
			int64_t took = clock_now_ms() - x->begin_ms;

			peer->ack_ewma_ms =
				peer->ack_seen ? (3 * peer->ack_ewma_ms + took) / 4 : took;
			peer->ack_seen = true;
		}
		if (ack.status == WIRE_ACK_DUPLICATE)
			pr->st.duplicates++;
		push_acked(x->push, peer->name);
		if (peer->io == PEER_IO_RETRY)
			peer_io_recovered(peer);
		break;
	case WIRE_ACK_IO_ERROR:
		/* This replica's disk, not the cluster's: the file stays held for it. */
		pr->st.io_errors++;
		peer_set_error(peer, "%s", ack.message);
		snprintf(x->push->io_error, sizeof(x->push->io_error),
			 "replica \"%s\" could not store it: %s", peer->name, ack.message);
		peer_io_failed(peer, ack.name, ack.message);
		break;
	case WIRE_ACK_CONFLICT:
		pr->st.conflicts++;
		snprintf(pr->st.last_conflict, sizeof(pr->st.last_conflict), "replica \"%s\": %s",
			 peer->name, ack.message);
		log_warning("replica \"%s\" holds different content for \"%s\"", peer->name,
			    ack.name);
		log_detail("%s", ack.message);
		peer_set_error(peer, "%s", ack.message);
		push_fail(x->push, CTL_ERR_CONFLICT, "replica \"%s\" refused it: %s", peer->name,
			  ack.message);
		break;
	default:
		peer_set_error(peer, "%s", ack.message);
		push_fail(x->push, CTL_ERR_FAILED, "replica \"%s\" refused it (%s): %s", peer->name,
			  wire_ack_status_name(ack.status), ack.message);
		break;
	}
	if (ack.status != WIRE_ACK_STORED && ack.status != WIRE_ACK_DUPLICATE &&
	    ack.status != WIRE_ACK_IO_ERROR && (x->push->from_spool || x->push->spool_done)) {
		/* Refused for good (conflict, invalid, other system): holding it longer
		 * would only send it again.  The refusal is counted and shown. */
		primary_release(pr, peer->name, x->push->name);
	}
	*xp = x->next;
	if (peer->fill == x)
		peer->fill = x->next;
	peer->inflight_files--;
	if (ack.status == WIRE_ACK_IO_ERROR)
		push_io_error(x->push);
	xfer_free(x);
	peer_fill(peer);
	return 0;
}

static int peer_rx_frame(struct conn *c, const struct frame_header *hdr, uint8_t *payload,
			 struct ring_slot *slot)
{
	struct peer *peer = peer_of(c);

	if (slot)
		ring_slot_put(c->ring, slot); /* replicas send no DATA */
	if (peer->refused)
		return 0; /* waiting for our ERROR to go out */
	if (peer->state == PEER_HANDSHAKE) {
		if (hdr->type != WIRE_HELLO) {
			log_log("expected HELLO from %s, got %s", c->peer_addr,
				wire_type_name(hdr->type));
			return -EPROTO;
		}
		return peer_on_hello(peer, payload, hdr->length);
	}
	if (peer->state == PEER_INVENTORY || peer->state == PEER_NAME_WAIT) {
		if (hdr->type != WIRE_HAVE || peer->have_early) {
			log_log("expected HAVE from replica \"%s\", got %s", peer->name,
				wire_type_name(hdr->type));
			return -EPROTO;
		}
		return peer_on_have(peer, payload, hdr->length);
	}
	switch (hdr->type) {
	case WIRE_ACK:
		return peer_on_ack(peer, payload, hdr->length);
	case WIRE_PING: {
		struct msg_ping ping;
		uint8_t frame[WIRE_HEADER_SIZE + 8];

		if (msg_ping_decode(payload, hdr->length, &ping) < 0)
			return -EPROTO;
		return peer_queue_small(
			peer, msg_ping_encode(frame, sizeof(frame), WIRE_PONG, &ping), frame);
	}
	case WIRE_PONG:
		return peer_on_pong(peer, payload, hdr->length);
	case WIRE_ERROR: {
		struct msg_error me;

		if (msg_error_decode(payload, hdr->length, &me) == 0) {
			log_log("replica \"%s\" reported an error: %s", peer->name, me.message);
			peer_set_error(peer, "%s", me.message);
		}
		return -ECONNRESET;
	}
	default:
		log_log("unexpected %s frame from replica \"%s\"", wire_type_name(hdr->type),
			peer->name);
		peer_set_error(peer, "protocol violation: unexpected %s frame",
			       wire_type_name(hdr->type));
		return -EPROTO;
	}
}

static uint8_t *peer_rx_buffer(struct conn *c, const struct frame_header *hdr,
			       struct ring_slot **slot)
{
	/* Only DATA frames can be larger than rx_small, and replicas send none: take a
	 * slot so the frame can be read and refused as a protocol error. */
	(void)hdr;
	*slot = ring_slot_get(c->ring);
	return *slot ? (*slot)->data : NULL;
}

static void peer_tx_progress(struct conn *c)
{
	struct peer *peer = peer_of(c);

	if (peer->refused) {
		if (conn_tx_backlog(c) == 0)
			conn_close(c, -EPROTO); /* may free peer */
		return;
	}
	peer_fill(peer);
}

static void peer_closed(struct conn *c)
{
	struct peer *peer = peer_of(c), **pp;
	struct primary *pr = peer->pr;
	struct xfer *x, *next;

	spool_free_names(peer->backlog, peer->nbacklog);
	if (c->close_error == -ENOBUFS)
		pr->st.queue_overflows++; /* its send queue reached its bound (net/conn.h) */

	if (peer->state == PEER_STREAMING)
		log_log("replica \"%s\" (%s) disconnected", peer->name, c->peer_addr);
	/* Newcomers that waited to see whether it was alive go on (primary_pump). */
	for (struct peer *other = pr->peers; other; other = other->next)
		if (other->rival == peer)
			other->rival = NULL;
	for (x = peer->xfers; x; x = next) {
		next = x->next;
		xfer_free(x);
	}
	for (pp = &pr->peers; *pp; pp = &(*pp)->next) {
		if (*pp == peer) {
			*pp = peer->next;
			break;
		}
	}
	pr->npeers--;
	free(peer);
}

static const struct conn_ops peer_conn_ops = {
	.rx_buffer = peer_rx_buffer,
	.rx_frame = peer_rx_frame,
	.tx_progress = peer_tx_progress,
	.closed = peer_closed,
};

/*
 * Connections accepted but not past HELLO yet, at most: past it a new connection is closed
 * at once (and counted in connections_shed), so silent clients cannot hold every
 * descriptor until connect_timeout.
 */
#define PRIMARY_MAX_HANDSHAKES 16

static void primary_accept_post(struct primary *pr);

static void primary_accepted(struct acceptor *a, int res)
{
	struct primary *pr = container_of(a, struct primary, acceptor);
	unsigned int handshakes = 0;
	struct peer *peer;

	pr->accepting = false;
	if (pr->stopping) {
		if (res >= 0)
			close(res);
		acceptor_release(a);
		return;
	}
	if (res < 0) {
		primary_accept_post(pr); /* the acceptor counts, logs and backs off */
		return;
	}
	for (struct peer *o = pr->peers; o; o = o->next)
		if (o->state == PEER_HANDSHAKE && !o->conn.closing)
			handshakes++;
	if (handshakes >= PRIMARY_MAX_HANDSHAKES) {
		acceptor_refuse(a, res, "too many connections in the handshake");
		primary_accept_post(pr);
		return;
	}
	peer = calloc(1, sizeof(*peer));
	if (!peer) {
		acceptor_refuse(a, res, "out of memory");
		primary_accept_post(pr);
		return;
	}
	conn_tune_socket(res);
	peer->pr = pr;
	peer->accepted_ms = clock_now_ms();
	peer->next = pr->peers;
	pr->peers = peer;
	pr->npeers++;
	if (pr->tls.ctx) {
		if (conn_init_tls(&peer->conn, pr->ring, res, &peer_conn_ops, peer, &pr->tls) < 0) {
			primary_accept_post(pr);
			return; /* closing; peer_closed() frees it */
		}
	} else {
		conn_init(&peer->conn, pr->ring, res, &peer_conn_ops, peer, pr->cfg.zero_copy);
	}
	primary_accept_post(pr);
}

static void primary_accept_post(struct primary *pr)
{
	if (pr->stopping || pr->accepting)
		return;
	acceptor_post(&pr->acceptor);
	pr->accepting = true;
}

static int primary_listen(struct primary *pr)
{
	char host[CONFIG_MAX_ADDR], portstr[8];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	uint16_t port;
	int fd, one = 1, ret;

	if (config_split_address(pr->cfg.listen, host, sizeof(host), &port) < 0) {
		log_error("invalid listen address \"%s\"", pr->cfg.listen);
		return -EINVAL;
	}
	snprintf(portstr, sizeof(portstr), "%u", port);
	ret = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
	if (ret != 0) {
		log_error("could not resolve listen address \"%s\": %s", pr->cfg.listen,
			  gai_strerror(ret));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		log_error("could not create socket: %s", strerror(errno));
		goto out_free;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		log_error("could not listen on \"%s\": %s", pr->cfg.listen, strerror(errno));
		close(fd);
		goto out_free;
	}
	ret = acceptor_init(&pr->acceptor, pr->ring, fd, "replica connection", primary_accepted,
			    &pr->st.connections_shed);
	if (ret < 0) {
		close(fd);
		goto out_free;
	}
	pr->listen_fd = fd;
	log_log("listening for replicas on %s", pr->cfg.listen);
out_free:
	freeaddrinfo(res);
	return ret;
}

/* ---- control requests ---- */

/* The spool's view of registered replica @k: held and lost files. */
static void primary_fill_registered(const struct primary *pr, int k, struct status_peer *sp)
{
	sp->held = pr->held[k];
	sp->lost_files = pr->lost[k].files;
	snprintf(sp->lost_first, sizeof(sp->lost_first), "%s", pr->lost[k].first);
	snprintf(sp->lost_last, sizeof(sp->lost_last), "%s", pr->lost[k].last);
}

/* Fill @n with the primary's state; the caller releases it with status_node_release(). */
static void primary_fill_status(void *state, struct status_node *n)
{
	struct primary *pr = state;
	unsigned int i = 0;

	*n = pr->st;
	n->role = "primary";
	snprintf(n->node_name, sizeof(n->node_name), "%s", pr->cfg.node_name);
	n->system_identifier = pr->system_identifier;
	n->page_magic = pr->page_magic;
	n->seg_size = pr->seg_size;
	n->sync_replicas = pr->cfg.sync_replicas;
	n->max_senders = pr->cfg.max_senders;
	n->pushes_queued = pr->npushes;
	n->connections_refused = pr->st.connections_refused + pr->control.refused;
	n->spool_files = pr->spool.files;
	n->spool_bytes = pr->spool.used_bytes;
	n->registered_replicas = (uint64_t)pr->nregistered;
	n->lost_files = 0;
	for (int k = 0; k < pr->nregistered; k++)
		n->lost_files += pr->lost[k].files;
	n->peers = calloc(pr->npeers + (unsigned int)pr->nregistered + 1, sizeof(*n->peers));
	for (struct peer *peer = pr->peers; peer && n->peers; peer = peer->next) {
		struct status_peer *sp = &n->peers[i++];

		snprintf(sp->name, sizeof(sp->name), "%s", peer->name);
		snprintf(sp->addr, sizeof(sp->addr), "%s", peer->conn.peer_addr);
		sp->state = peer->conn.closing		  ? WALSHIP_PEER_DISCONNECTED :
			    peer->state != PEER_STREAMING ? WALSHIP_PEER_HANDSHAKE :
			    peer->io != PEER_IO_OK	  ? WALSHIP_PEER_FAILING :
							    WALSHIP_PEER_STREAMING;
		snprintf(sp->last_sent, sizeof(sp->last_sent), "%s", peer->last_sent);
		snprintf(sp->last_acked, sizeof(sp->last_acked), "%s", peer->last_acked);
		sp->bytes_sent = peer->conn.stats.bytes_sent;
		sp->bytes_received = peer->conn.stats.bytes_received;
		sp->files_sent = peer->files_sent;
		sp->files_acked = peer->files_acked;
		sp->files_inflight = peer->inflight_files;
		sp->errors = peer->errors;
		sp->zc_sends = peer->conn.stats.zc_sends;
		sp->zc_copied = peer->conn.stats.zc_copied;
		sp->copy_sends = peer->conn.stats.copy_sends;
		sp->connected_since = peer->connected_since;
		snprintf(sp->tls, sizeof(sp->tls), "%s", conn_tls_version(&peer->conn));
		snprintf(sp->ktls, sizeof(sp->ktls), "%s", conn_ktls_state(&peer->conn));
		snprintf(sp->last_error, sizeof(sp->last_error), "%s", peer->last_error);
		sp->oldest_unacked_ms = peer->xfers ? peer->xfers->push->started_ms : 0;
		if (peer->state == PEER_STREAMING) {
			int k = primary_registered_index(pr, peer->name);

			if (k >= 0)
				primary_fill_registered(pr, k, sp);
		}
	}
	/* Registered replicas that are not connected: the spool holds WAL for them. */
	for (int k = 0; n->peers && k < pr->nregistered; k++) {
		struct status_peer *sp;
		bool connected = false;

		for (struct peer *peer = pr->peers; peer; peer = peer->next)
			if (peer->state == PEER_STREAMING && !peer->conn.closing &&
			    !strcmp(peer->name, pr->registered[k]))
				connected = true;
		if (connected)
			continue;
		sp = &n->peers[i++];
		snprintf(sp->name, sizeof(sp->name), "%s", pr->registered[k]);
		sp->state = WALSHIP_PEER_AWAY;
		primary_fill_registered(pr, k, sp);
	}
	n->npeers = n->peers ? i : 0;
	for (struct push *p = pr->pushes; p; p = p->next)
		if (p->wn.kind == WAL_FILE_SEGMENT && strcmp(p->name, n->newest_pushed) > 0)
			snprintf(n->newest_pushed, sizeof(n->newest_pushed), "%s", p->name);
	status_derive(n, clock_now_ms());
}

static void primary_push(struct primary *pr, struct ctl_client *client, const char *name, int fd)
{
	struct wal_validator wv;
	struct wal_identity id;
	struct wal_name wn;
	struct stat sb;
	struct push *p;
	char text[384];
	int flags;

	if (fd < 0) {
		control_reply(client, CTL_ERR_INVALID, "no file descriptor passed", 25);
		return;
	}
	if (wal_name_parse(name, &wn) < 0) {
		snprintf(text, sizeof(text), "\"%s\" is not a WAL file name", name);
		goto out_refuse;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(text, sizeof(text), "\"%s\" is not a regular file", name);
		goto out_refuse;
	}
	/* Every replica connection reads it: one that cannot be read fails here, alone. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_PATH) || (flags & O_ACCMODE) == O_WRONLY) {
		snprintf(text, sizeof(text),
			 "the descriptor passed for \"%s\" is not open for reading", name);
		goto out_refuse;
	}
	if (pr->stopping) {
		close(fd);
		control_reply(client, CTL_ERR_FAILED, "walshipd is shutting down", 25);
		pr->st.pushes_failed++;
		return;
	}
	if (pr->npushes >= (unsigned int)pr->cfg.max_queued_pushes) {
		close(fd);
		snprintf(text, sizeof(text), "too many pushes in progress (max_queued_pushes = %d)",
			 pr->cfg.max_queued_pushes);
		log_warning("could not archive \"%s\": %s", name, text);
		control_reply(client, CTL_ERR_BUSY, text, strlen(text));
		pr->st.pushes_failed++;
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		control_reply(client, CTL_ERR_FAILED, "out of memory", 13);
		return;
	}
	p->pr = pr;
	p->id = ++pr->next_push_id;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->wn = wn;
	p->fd = fd;
	p->size = (uint64_t)sb.st_size;
	if (pr->cfg.send_source == CONFIG_SEND_MAP && p->size) {
		void *map = mmap(NULL, p->size, PROT_READ, MAP_SHARED, fd, 0);

		if (map == MAP_FAILED)
			log_debug("could not map \"%s\" (%s); reading it into buffers", name,
				  strerror(errno));
		else
			p->map = map;
	}
	/* Nothing unchecked is answered, held or sent: the same checks as a replica's. */
	if (push_validate(fd, p->map, p->size, &wn, &wv, &id) < 0) {
		snprintf(text, sizeof(text), "%s", wv.message);
		pr->st.invalid++;
		goto out_refuse_push;
	}
	if ((wn.kind == WAL_FILE_SEGMENT || wn.kind == WAL_FILE_PARTIAL) &&
	    primary_check_identity(pr, &id, name, text, sizeof(text)) < 0) {
		pr->st.sysid_refused++;
		goto out_refuse_push;
	}
	p->client = client;
	p->started_ms = clock_now_ms();
	p->deadline_ms = p->started_ms + pr->cfg.push_timeout_ms;
	p->next = pr->pushes;
	pr->pushes = p;
	pr->npushes++;
	p->refs = 1; /* held until the loop below has added every transfer */
	log_debug("push of \"%s\" (%" PRIu64 " bytes) from pid %d", name, p->size,
		  (int)control_client_pid(client));
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && !peer->conn.closing && peer->io == PEER_IO_OK)
			peer_add_xfer(peer, p);
	push_check(p); /* sync_replicas = 0: hold it for the registered replicas now */
	push_unref(p);
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		peer_fill(peer);
	return;

out_refuse_push:
	if (p->map)
		munmap((void *)(uintptr_t)p->map, p->size);
	free(p);
out_refuse:
	close(fd);
	log_warning("refused push of \"%s\": %s", name, text);
	pr->st.pushes_failed++;
	control_reply(client, CTL_ERR_INVALID, text, strlen(text));
}

/* `walship replica drop NAME`: forget a registered replica and release what the spool
 * holds for it.  A connected replica is not dropped: it would register again at once. */
static void primary_replica_drop(struct primary *pr, struct ctl_client *client, const char *name)
{
	char text[256];
	int k = primary_registered_index(pr, name), ret;
	uint64_t held;

	if (k < 0) {
		snprintf(text, sizeof(text), "replica \"%s\" is not registered", name);
		control_reply(client, CTL_ERR_INVALID, text, strlen(text));
		return;
	}
	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    !strcmp(peer->name, name)) {
			snprintf(text, sizeof(text),
				 "replica \"%s\" is connected from %s; stop its walshipd first",
				 name, peer->conn.peer_addr);
			control_reply(client, CTL_ERR_FAILED, text, strlen(text));
			return;
		}
	}
	held = pr->held[k];
	ret = spool_drop(&pr->spool, name);
	if (ret < 0 || primary_load_registered(pr) < 0) {
		snprintf(text, sizeof(text), "could not drop replica \"%s\": %s", name,
			 strerror(ret < 0 ? -ret : EIO));
		control_reply(client, CTL_ERR_FAILED, text, strlen(text));
		return;
	}
	snprintf(text, sizeof(text), "replica \"%s\" dropped; %" PRIu64 " held file(s) released",
		 name, held);
	log_log("%s", text);
	control_reply(client, CTL_OK, text, strlen(text));
}

static void primary_request(void *ctx, struct ctl_client *client, const struct ctl_request *req,
			    int fd)
{
	struct primary *pr = ctx;

	switch (req->op) {
	case CTL_PUSH:
		primary_push(pr, client, req->name, fd);
		return;
	case CTL_REPLICA_DROP:
		if (fd >= 0)
			close(fd);
		primary_replica_drop(pr, client, req->name);
		return;
	case CTL_STATUS:
		if (fd >= 0)
			close(fd);
		status_reply(client, primary_fill_status, pr, req->flags & CTL_F_JSON);
		return;
	default:
		if (fd >= 0)
			close(fd);
		control_reply(client, CTL_ERR_INVALID, "unknown request", 15);
	}
}

/* ---- role operations ---- */

static void *primary_start(const struct config *cfg, struct ring *r)
{
	struct primary *pr = calloc(1, sizeof(*pr));

	if (!pr) {
		log_error("out of memory");
		return NULL;
	}
	pr->cfg = *cfg;
	pr->ring = r;
	pr->listen_fd = -1;
	pr->st.started = time(NULL);
	if (cfg->tls) {
		if (tls_ctx_init(&pr->tls, true, cfg->tls_ca_file, cfg->tls_cert_file,
				 cfg->tls_key_file, cfg->ktls, cfg->zero_copy) < 0)
			goto out_free;
	} else {
		log_warning("tls = off: WAL travels between hosts in plaintext, and replicas are "
			    "not authenticated");
	}
	if (cfg->hba_file[0] && hba_load(cfg->hba_file, &pr->hba) < 0) {
		log_error("could not load access rules from \"%s\"", cfg->hba_file);
		goto out_free;
	}
	if (!cfg->hba_file[0])
		log_log("hba_file is not set: any replica that reaches %s is admitted",
			cfg->listen);
	if (mapguard_init() < 0) {
		log_error("could not install the SIGBUS handler: %s", strerror(errno));
		goto out_free;
	}
	if (spool_open(&pr->spool, cfg->spool_dir) < 0)
		goto out_free;
	if (primary_load_registered(pr) < 0)
		goto out_spool;
	{
		struct spool_identity id;

		if (spool_get_identity(&pr->spool, &id) == 0 && id.system_identifier) {
			pr->system_identifier = id.system_identifier;
			pr->page_magic = id.page_magic;
			pr->seg_size = id.seg_size;
			pr->block_size = id.block_size;
			log_log("primary ships WAL of system %" PRIu64 " (PostgreSQL %s)",
				pr->system_identifier,
				wal_page_magic_version(pr->page_magic) ?: "?");
		}
	}
	if (pr->spool.files)
		log_log("spool \"%s\" holds %" PRIu64 " file(s), %" PRIu64
			" bytes, for %d registered "
			"replica(s)",
			cfg->spool_dir, pr->spool.files, pr->spool.used_bytes, pr->nregistered);
	if (cfg->sync_replicas == 0 && pr->nregistered == 0)
		log_warning("sync_replicas = 0 and no registered replica: pushes succeed with no "
			    "copy of the WAL anywhere until a replica connects once");
	if (worker_start(&pr->worker, r) < 0)
		goto out_spool;
	if (primary_listen(pr) < 0)
		goto out_worker;
	if (control_start(&pr->control, r, cfg->socket_path, cfg->socket_group,
			  cfg->socket_permissions, primary_request, pr) < 0)
		goto out_close;
	primary_accept_post(pr);
	log_log("primary \"%s\" ready: sync_replicas = %d, max_senders = %d", cfg->node_name,
		cfg->sync_replicas, cfg->max_senders);
	return pr;

out_close:
	close(pr->listen_fd);
out_worker:
	worker_stop(&pr->worker);
out_spool:
	spool_close(&pr->spool);
	spool_free_names(pr->registered, pr->nregistered);
	free(pr->held);
	free(pr->lost);
out_free:
	tls_ctx_free(&pr->tls);
	hba_free(pr->hba);
	free(pr);
	return NULL;
}

/*
 * Stopping: once no push waits for an acknowledgement and no file is in flight (or the
 * drain time is up: the pushes left fail and PostgreSQL retries them), close the
 * replicas' connections.
 */
static void primary_drain(struct primary *pr)
{
	bool busy = false;
	struct push *p, *next;

	for (p = pr->pushes; p && !busy; p = p->next)
		busy = p->client != NULL;
	for (struct peer *peer = pr->peers; peer && !busy; peer = peer->next)
		busy = peer->inflight_files > 0 && !peer->conn.closing;
	if (busy && clock_now_ms() < pr->drain_deadline_ms)
		return;
	if (busy)
		log_warning("stopping with acknowledgements still outstanding after %d ms",
			    DRAIN_MS);
	for (p = pr->pushes; p; p = next) {
		p->refs++;
		push_fail(p, CTL_ERR_FAILED, "walshipd is shutting down");
		next = p->next;
		push_unref(p);
	}
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		conn_close(&peer->conn, 0);
}

static void primary_pump(void *state)
{
	struct primary *pr = state;
	struct peer *peer, *next;

	for (peer = pr->peers; peer; peer = next) {
		next = peer->next; /* conn_close() may free it */
		/* The connection its name belonged to is gone: go on with the handshake. */
		if (peer->state == PEER_NAME_WAIT && !peer->rival && !peer->conn.closing &&
		    !peer->refused) {
			int ret = peer_check_name(peer);

			if (ret < 0)
				conn_close(&peer->conn, ret);
		}
	}
	for (peer = pr->peers; peer; peer = peer->next)
		peer_fill(peer);
	if (pr->stopping)
		primary_drain(pr);
}

/*
 * A connection whose name another one announced, and which did not answer our PING within
 * NAME_PROBE_MS, is taken for dead (a half-open connection after a cut or a restart) and
 * closed; the newcomers waiting on it go on (peer_closed, primary_pump).
 */
static void primary_probes_expire(struct primary *pr, int64_t now_ms)
{
	struct peer *peer, *next;

	for (peer = pr->peers; peer; peer = next) {
		const struct peer *waiter = NULL;

		next = peer->next; /* conn_close() may free it */
		if (!peer->probe_token || now_ms < peer->probe_deadline_ms || peer->conn.closing)
			continue;
		peer->probe_token = 0;
		for (const struct peer *other = pr->peers; other && !waiter; other = other->next)
			if (other->rival == peer && other->state == PEER_NAME_WAIT &&
			    !other->conn.closing)
				waiter = other;
		if (!waiter)
			continue;
		log_log("replica \"%s\" did not answer on its connection from %s within %d ms; "
			"closing it for the one from %s",
			peer->name, peer->conn.peer_addr, NAME_PROBE_MS, waiter->conn.peer_addr);
		peer_set_error(peer, "replaced by a connection from %s", waiter->conn.peer_addr);
		conn_close(&peer->conn, -ECONNRESET);
	}
}

/* push_timeout is over and @p is not safe yet: fail it, saying what it waited for. */
static void push_timed_out(struct push *p)
{
	struct primary *pr = p->pr;
	unsigned int connected = 0, failing = 0;
	char more[64] = "";

	if (p->acks >= (unsigned int)pr->cfg.sync_replicas) {
		/* Enough acknowledgements: what is missing is the hold for the others. */
		char on[320] = "";

		if (p->acks)
			snprintf(on, sizeof(on), "durable on %u replica(s) (%s), but ", p->acks,
				 p->acked_by);
		push_fail(p, CTL_ERR_TIMEOUT, "%s%s within %d ms", on,
			  p->spool_needed ? "the copy into the spool for the registered "
					    "replica(s) that lack it did not finish" :
					    "the registered replica(s) that lack it neither "
					    "acknowledged it nor got it held for them",
			  pr->cfg.push_timeout_ms);
		return;
	}
	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		if (peer->state == PEER_STREAMING && !peer->conn.closing) {
			connected++;
			failing += peer->io != PEER_IO_OK;
		}
	}
	if (failing)
		snprintf(more, sizeof(more), ", %u of them failing to store files", failing);
	push_fail(p, CTL_ERR_TIMEOUT,
		  "only %u of %d required replica acknowledgements within %d ms "
		  "(%u replica(s) connected%s)%s%s",
		  p->acks, pr->cfg.sync_replicas, pr->cfg.push_timeout_ms, connected, more,
		  p->io_error[0] ? "; " : "", p->io_error);
}

static void primary_tick(void *state, int64_t now_ms)
{
	struct primary *pr = state;
	struct push *p, *next;

	for (p = pr->pushes; p; p = next) {
		next = p->next; /* push_check may release p */
		if (p->client && p->spool_wait_until_ms && !p->spool_needed &&
		    now_ms >= p->spool_wait_until_ms) {
			p->refs++;
			push_check(p); /* spool_delay is over: hold it in the spool now */
			next = p->next;
			push_unref(p);
		}
	}
	for (p = pr->pushes; p; p = next) {
		next = p->next; /* push_fail may release p */
		if (p->client && now_ms >= p->deadline_ms) {
			p->refs++;
			push_timed_out(p);
			next = p->next;
			push_unref(p);
		}
	}
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    peer->io == PEER_IO_WAIT && now_ms >= peer->io_retry_ms)
			peer_io_retry(peer);
	primary_probes_expire(pr, now_ms);
	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		if (peer->state == PEER_STREAMING &&
		    conn_keepalive(&peer->conn, clock_now_ms(), pr->cfg.keepalive_interval_ms,
				   pr->cfg.keepalive_timeout_ms))
			peer_set_error(peer, "no data for longer than keepalive_timeout");
		if (peer->state != PEER_STREAMING && !peer->conn.closing &&
		    now_ms - peer->accepted_ms > pr->cfg.connect_timeout_ms) {
			log_log("closing connection from %s: no handshake within %d ms",
				peer->conn.peer_addr, pr->cfg.connect_timeout_ms);
			pr->st.connections_refused++;
			conn_close(&peer->conn, -ETIMEDOUT);
		}
	}
}

static void primary_drain(struct primary *pr);

static void primary_stop(void *state)
{
	struct primary *pr = state;

	/* No new pushes or replicas; files in flight get DRAIN_MS to be acknowledged. */
	pr->stopping = true;
	pr->drain_deadline_ms = clock_now_ms() + DRAIN_MS;
	control_stop(&pr->control);
	if (pr->listen_fd >= 0) {
		shutdown(pr->listen_fd, SHUT_RDWR);
		close(pr->listen_fd);
		pr->listen_fd = -1;
	}
	primary_drain(pr);
}

static bool primary_stopped(void *state)
{
	struct primary *pr = state;

	return pr->peers == NULL && pr->control.clients == 0 && !pr->accepting &&
	       worker_pending(&pr->worker) == 0;
}

/* SIGHUP: load the access rules again; keep the old ones if the file has errors. */
static void primary_reload_hba(struct primary *pr, const char *path)
{
	struct hba_table *fresh = NULL;

	if (path[0] && hba_load(path, &fresh) < 0) {
		log_error("access rules in \"%s\" not reloaded; the previous rules stay", path);
		return;
	}
	hba_free(pr->hba);
	pr->hba = fresh;
	snprintf(pr->cfg.hba_file, sizeof(pr->cfg.hba_file), "%s", path);
	if (path[0])
		log_log("access rules reloaded from \"%s\" (%zu rule(s))", path, fresh->count);
}

static void primary_reload(void *state, const struct config *cfg)
{
	struct primary *pr = state;

	pr->cfg.sync_replicas = cfg->sync_replicas;
	pr->cfg.spool_max_size_mb = cfg->spool_max_size_mb;
	pr->cfg.spool_overflow = cfg->spool_overflow;
	pr->cfg.spool_delay_ms = cfg->spool_delay_ms;
	pr->cfg.keepalive_interval_ms = cfg->keepalive_interval_ms;
	primary_reload_hba(pr, cfg->hba_file);
	pr->cfg.keepalive_timeout_ms = cfg->keepalive_timeout_ms;
	pr->cfg.push_timeout_ms = cfg->push_timeout_ms;
	pr->cfg.log_level = cfg->log_level;
}

static void primary_free(void *state)
{
	struct primary *pr = state;

	worker_stop(&pr->worker);
	spool_close(&pr->spool);
	spool_free_names(pr->registered, pr->nregistered);
	free(pr->held);
	free(pr->lost);
	tls_ctx_free(&pr->tls);
	hba_free(pr->hba);
	free(pr);
}

const struct role_ops primary_role = {
	.name = "primary",
	.start = primary_start,
	.pump = primary_pump,
	.tick = primary_tick,
	.stop = primary_stop,
	.stopped = primary_stopped,
	.reload = primary_reload,
	.status = primary_fill_status,
	.free = primary_free,
};
