// SPDX-License-Identifier: MIT
/*
 * The relay of a replica (role/relay.h): the primary's sender (struct primary, its peers,
 * transfers and handshake) started inside a replica, with the replica's store as source.
 * What differs from a primary, and lives here:
 *
 *   source     relay_wal_stored(): a stored file becomes a push with no client, sent to
 *              every streaming downstream replica; relay_wal_durable(): the segment being
 *              received as a stream becomes a streamed push whose avail is its durable
 *              length on this replica (read from its file in .incoming), raised after
 *              each fsync; stored, it is whole (the same inode, renamed).
 *   backlog    a downstream replica that connects is sent, in WAL order, the stored
 *              files from the segment of its FLOOR on (a replica never seen holding
 *              anything: after the newest segment its HAVE lists, all of them when it
 *              lists none), then the files stored meanwhile (listed again), then the
 *              growing segment (relay_peer_progress()): all in WAL order.  Files it
 *              holds already are skipped by their HAVE entry or answered DUPLICATE.
 *   registry   archive_dir/.walship/downstream: one line per downstream replica, "NAME
 *              FLOOR" (hexadecimal LSN: it holds everything before the segment of FLOOR;
 *              0: nothing known), written durably on registration, when FLOOR goes
 *              back at once, and when it moves on at most once a second, on the
 *              relay's worker thread (relay_save_async()) (a FLOOR older than the
 *              truth keeps more WAL and sends more again, never less).  FLOOR
 *              moves only with what the replica acknowledged without a gap from it
 *              (relay_peer_floor()), never with its HAVE's newest entry: a replica can
 *              store a later file before earlier ones (each file's store is its own),
 *              and the earlier ones must still come.
 *
 * Pushes made here are never "waiting" (no client, not unsettled), so the primary's push
 * policy (sync_replicas, the spool) never applies: what a downstream replica
 * acknowledges changes nothing upstream.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/node_name.h"
#include "common/textfile.h"
#include "role/primary_int.h"
#include "role/relay.h"

/* A registry line: a node name, a space, 16 hex digits, a newline. */
#define RELAY_LINE_MAX (WIRE_MAX_NAME + 20)
/* How often, at most, a moved floor is written. */
#define RELAY_SAVE_MS 1000

struct relay_down {
	char name[WIRE_MAX_NAME + 1];
	uint64_t floor; /* it holds everything before the segment of this LSN; 0: nothing known */
	/* The floor the registry file holds: retention keeps from the lower of the two, for
	 * a floor that moves on is written within RELAY_SAVE_MS, and a crash meanwhile
	 * restarts from the file's (whose files must still be there: else its backlog begins
	 * past a gap its run never closes, and the floor stays there for good). */
	uint64_t saved;
};

/* Segments being received as a stream at once (the upstream's files in flight). */
#define RELAY_MAX_GROWING 8

/* A segment being received as a stream, relayed as far as it is durable. */
struct relay_growing {
	struct push *push; /* NULL: a free entry */
	char tmp_name[WIRE_MAX_FILE_NAME + 32]; /* its name in .incoming */
};

struct relay_state {
	const struct store *store;
	struct relay_growing grow[RELAY_MAX_GROWING];
	struct relay_down *down;
	int ndown;
	relay_applied_fn applied_fn; /* the downstream replicas' apply goes there */
	void *applied_arg;
	uint64_t applied_lsn; /* the furthest passed on (msg_applied_newer()) */
	uint32_t applied_tli;
	bool dirty; /* a floor moved since the registry was written */
	int64_t saved_ms;
	/* Writes: synchronous for a registration, a drop or a floor that goes back; on the
	 * worker thread for floors that move on (relay_tick()), one at a time (save_busy).
	 * Ordered by the generation of the text (taken on the event loop): a text older than
	 * one written already is not written, so the file always ends with the newest. */
	struct worker *worker;
	bool save_busy;
	struct relay_save_job *save_job; /* the one in flight (freed by relay_free() when the
					  * event loop stopped before its end) */
	uint64_t gen; /* texts taken (event loop) */
	pthread_mutex_t write_lock; /* one write at a time; guards written_gen */
	uint64_t written_gen; /* of the newest text written */
	/* From the history file of the newest timeline this replica holds a segment of
	 * (relay_forks()): a history file alone, of a timeline no segment of which came
	 * (one pushed by a server the cluster did not follow), does not end the others. */
	struct stream_forks forks;
	uint32_t seg_tli; /* the newest timeline of a segment stored */
	/* A first segment of timeline switch_tli stored before its history file (a relay
	 * catching up: the growing segment completes beside the backlog): the switch from
	 * switch_from is happening now when that history file comes. */
	uint32_t switch_tli, switch_from;
};

static struct relay_state *relay_of(const struct primary *pr)
{
	return pr->relay;
}

/* ---- the registry ---- */

static int relay_down_index(const struct relay_state *rs, const char *name)
{
	for (int i = 0; i < rs->ndown; i++)
		if (!strcmp(rs->down[i].name, name))
			return i;
	return -1;
}

/* The registry's text now, in *@text (@len bytes; the caller frees it).  Returns 0 or
 * -ENOMEM (logged). */
static int relay_text(const struct relay_state *rs, char **text, size_t *len)
{
	size_t cap = (size_t)rs->ndown * RELAY_LINE_MAX + 1;

	*len = 0;
	*text = malloc(cap);
	if (!*text) {
		log_error("out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < rs->ndown; i++)
		*len += (size_t)snprintf(*text + *len, cap - *len, "%s %016" PRIX64 "\n",
					 rs->down[i].name, rs->down[i].floor);
	return 0;
}

/* Write text @gen durably, unless a newer one was written: 0, 1 (not written: a newer text
 * was), or -errno (logged).  On either thread. */
static int relay_write(struct relay_state *rs, uint64_t gen, const char *text, size_t len)
{
	int ret = 1;

	pthread_mutex_lock(&rs->write_lock);
	if (gen > rs->written_gen) {
		ret = store_state_put(rs->store, RELAY_REGISTRY_FILE, text, len); /* logs */
		if (ret == 0)
			rs->written_gen = gen;
	}
	pthread_mutex_unlock(&rs->write_lock);
	return ret;
}

/* Write the registry durably, now.  Returns 0 or -errno (logged). */
static int relay_save(struct relay_state *rs)
{
	size_t len;
	char *text;
	int ret = relay_text(rs, &text, &len);

	if (ret < 0)
		return ret;
	ret = relay_write(rs, ++rs->gen, text, len); /* (the newest text: never 1) */
	free(text);
	if (ret == 0) {
		rs->dirty = false;
		rs->saved_ms = clock_now_ms();
		for (int i = 0; i < rs->ndown; i++)
			rs->down[i].saved = rs->down[i].floor;
	}
	return ret;
}

/* Add downstream replica @name with @floor.  Returns its index or -ENOMEM. */
static int relay_down_add(struct relay_state *rs, const char *name, uint64_t floor)
{
	struct relay_down *down = realloc(rs->down, ((size_t)rs->ndown + 1) * sizeof(*down));

	if (!down) {
		log_error("out of memory");
		return -ENOMEM;
	}
	rs->down = down;
	snprintf(down[rs->ndown].name, sizeof(down[rs->ndown].name), "%s", name);
	down[rs->ndown].floor = floor;
	down[rs->ndown].saved = floor;
	return rs->ndown++;
}

/* Read the registry, if there is one.  A malformed line is logged and skipped: the
 * replica it named registers again when it connects.  Returns 0 or -errno (logged). */
static int relay_load(struct relay_state *rs)
{
	char line[RELAY_LINE_MAX + 2];
	int fd = openat(rs->store->dir_fd, STORE_STATE_DIR "/" RELAY_REGISTRY_FILE,
			O_RDONLY | O_CLOEXEC);
	FILE *f;

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		log_error("could not open file \"%s/%s/%s\": %s", rs->store->path, STORE_STATE_DIR,
			  RELAY_REGISTRY_FILE, strerror(errno));
		return -errno;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[RELAY_LINE_MAX + 2], *end;
		unsigned long long floor;
		char *space = strchr(line, ' ');

		if (!space || (size_t)(space - line) > WIRE_MAX_NAME)
			goto bad;
		memcpy(name, line, (size_t)(space - line));
		name[space - line] = '\0';
		errno = 0;
		floor = strtoull(space + 1, &end, 16);
		if (errno || end == space + 1 || *end != '\n' || !node_name_valid(name))
			goto bad;
		if (relay_down_index(rs, name) < 0 && relay_down_add(rs, name, floor) < 0)
			break;
		continue;
bad:
		log_warning("ignoring malformed line in \"%s/%s/%s\"", rs->store->path,
			    STORE_STATE_DIR, RELAY_REGISTRY_FILE);
	}
	fclose(f);
	return 0;
}

int relay_load_registered(struct primary *pr)
{
	struct relay_state *rs = relay_of(pr);

	spool_free_names(pr->registered, pr->nregistered);
	free(pr->held);
	free(pr->lost);
	pr->nregistered = 0;
	pr->registered = calloc((size_t)rs->ndown + 1, sizeof(char *));
	pr->held = calloc((size_t)rs->ndown + 1, sizeof(*pr->held));
	pr->lost = calloc((size_t)rs->ndown + 1, sizeof(*pr->lost));
	if (!pr->registered || !pr->held || !pr->lost) {
		log_error("out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < rs->ndown; i++) {
		pr->registered[i] = strdup(rs->down[i].name);
		if (!pr->registered[i]) {
			log_error("out of memory");
			return -ENOMEM;
		}
		pr->nregistered++;
	}
	return 0;
}

/*
 * Start LSN of the segment a WAL file of @name belongs to (a segment, its .partial, a
 * backup label), or UINT64_MAX for a history file (none) or when the size is not known.
 */
static uint64_t relay_file_start(const struct primary *pr, const char *name)
{
	uint32_t seg_size = pr->id.seg_size;
	struct wal_name wn;
	uint64_t segno;

	if (!seg_size || wal_name_parse(name, &wn) < 0 || wn.kind == WAL_FILE_HISTORY ||
	    wal_name_segno(&wn, seg_size, &segno) < 0)
		return UINT64_MAX;
	return segno * seg_size;
}

void relay_peer_failed(struct peer *peer, const struct push *p)
{
	uint64_t start = relay_file_start(peer->pr, p->name);

	if (start != UINT64_MAX)
		stream_run_truncate(&peer->stream, start);
}

/* The registry's FLOOR of @peer (0: nothing known, or not registered). */
static uint64_t relay_peer_known_floor(const struct peer *peer)
{
	const struct relay_state *rs = relay_of(peer->pr);
	int k = relay_down_index(rs, peer->name);

	return k < 0 ? 0 : rs->down[k].floor;
}

/* The newest segment @peer's HAVE lists as stored, into @out ("" none). */
static void peer_have_newest(const struct peer *peer, char *out, size_t len)
{
	out[0] = '\0';
	for (uint32_t i = 0; i < peer->have.count; i++) {
		const struct msg_have_entry *e = &peer->have.entries[i];
		struct wal_name wn;

		if (e->kind == WIRE_HAVE_COMPLETE && wal_name_parse(e->name, &wn) == 0 &&
		    wn.kind == WAL_FILE_SEGMENT && strcmp(e->name, out) > 0)
			snprintf(out, len, "%s", e->name);
	}
}

/*
 * Registered downstream replica @peer connected again: when the newest segment its HAVE
 * lists stored is older than its FLOOR's (its archive lost files, or was made anew under
 * the same name), it holds less than recorded: the FLOOR goes back to "nothing known",
 * so that it is sent what follows its newest file, as a replica never seen is.
 */
static void relay_check_floor(struct peer *peer, struct relay_down *d)
{
	const struct primary *pr = peer->pr;
	uint32_t seg_size = pr->id.seg_size;
	char newest[WIRE_MAX_FILE_NAME + 1];
	uint64_t held;

	if (!d->floor || !seg_size)
		return;
	peer_have_newest(peer, newest, sizeof(newest));
	held = newest[0] ? relay_file_start(pr, newest) : UINT64_MAX;
	if (held != UINT64_MAX && held + seg_size >= d->floor - d->floor % seg_size)
		return;
	log_warning("downstream replica \"%s\" holds less than it acknowledged (newest stored "
		    "segment: %s); it is sent what follows it",
		    peer->name, newest[0] ? newest : "none");
	d->floor = 0;
	/* At once: lower than the registry says (relay_peer_progress()). */
	relay_save(relay_of(pr));
}

int relay_register(struct peer *peer)
{
	struct primary *pr = peer->pr;
	struct relay_state *rs = relay_of(pr);
	int k, ret;

	k = relay_down_index(rs, peer->name);
	if (k >= 0) {
		relay_check_floor(peer, &rs->down[k]);
		return 0;
	}
	if (!node_name_valid(peer->name)) {
		log_error("could not register replica \"%s\": not a valid node name", peer->name);
		return -EINVAL;
	}
	/* Nothing known yet: everything is kept until its first acknowledgement. */
	ret = relay_down_add(rs, peer->name, 0);
	if (ret < 0)
		return ret;
	ret = relay_save(rs);
	if (ret < 0) {
		rs->ndown--; /* not registered: its next connection tries again, and saves */
		return ret;
	}
	log_log("downstream replica \"%s\" registered: this replica keeps the WAL it lacks from "
		"now on",
		peer->name);
	ret = relay_load_registered(pr);
	return ret < 0 ? ret : 1;
}

int relay_drop(struct primary *rl, const char *name, char *msg, size_t len)
{
	struct relay_down gone;
	struct relay_state *rs;
	int k;

	if (!rl) {
		snprintf(msg, len, "relay is off: this replica has no downstream replicas");
		return -ENOENT;
	}
	rs = relay_of(rl);
	k = relay_down_index(rs, name);
	if (k < 0) {
		snprintf(msg, len, "replica \"%s\" is not registered", name);
		return -ENOENT;
	}
	for (struct peer *peer = rl->peers; peer; peer = peer->next) {
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    !strcmp(peer->name, name)) {
			snprintf(msg, len,
				 "replica \"%s\" is connected from %s; stop its walshipd first",
				 name, peer->conn.peer_addr);
			return -EBUSY;
		}
	}
	/* Dropped only as the registry says: a failed save puts it back (the one moved into
	 * its place goes back to the end). */
	gone = rs->down[k];
	rs->down[k] = rs->down[--rs->ndown];
	if (relay_save(rs) < 0) {
		rs->down[rs->ndown++] = rs->down[k];
		rs->down[k] = gone;
		snprintf(msg, len, "the registry of downstream replicas could not be written");
		return -EIO;
	}
	if (relay_load_registered(rl) < 0) {
		snprintf(msg, len, "could not drop replica \"%s\"", name);
		return -EIO;
	}
	snprintf(msg, len, "downstream replica \"%s\" dropped; its WAL is no longer kept", name);
	log_log("%s", msg);
	return 0;
}

/* ---- what a downstream replica lacks ---- */

bool relay_peer_holds_before(const struct peer *peer, uint64_t seg_start)
{
	uint32_t seg_size = peer->pr->id.seg_size;
	uint64_t floor = relay_peer_known_floor(peer);
	bool any = false;

	if (floor)
		return seg_size && seg_start <= floor - floor % seg_size;
	/* Never seen holding anything: what it says it holds, as its backlog was chosen. */
	for (uint32_t i = 0; seg_size && i < peer->have.count; i++) {
		const struct msg_have_entry *e = &peer->have.entries[i];
		struct wal_name wn;
		uint64_t segno;

		if (e->kind != WIRE_HAVE_COMPLETE)
			continue;
		any = true; /* even an entry used up (its name cleared) */
		if (wal_name_parse(e->name, &wn) == 0 && wn.kind == WAL_FILE_SEGMENT &&
		    wal_name_segno(&wn, seg_size, &segno) == 0 &&
		    (segno + 1) * seg_size == seg_start)
			return true;
	}
	return !any && peer->stream.end == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * WAL names sort in WAL order as strings: segments by timeline then position, a
 * timeline's history file after every segment of the timelines before it and before its
 * own segments, a .partial right after its segment.
 */
int relay_backlog(struct peer *peer, const char *from_name, char ***names)
{
	struct primary *pr = peer->pr;
	struct relay_state *rs = relay_of(pr);
	char after[WIRE_MAX_FILE_NAME + 1] = "";
	uint64_t floor, from = UINT64_MAX;
	char **list = NULL;
	int n = 0, cap = 0, fd;
	struct dirent *de;
	DIR *dir;

	floor = relay_peer_known_floor(peer);
	if (floor && pr->id.seg_size)
		from = floor - floor % pr->id.seg_size;
	else
		peer_have_newest(peer, after, sizeof(after));
	fd = openat(rs->store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		int ret = -errno;

		if (fd >= 0)
			close(fd);
		log_error("could not open directory \"%s\": %s", rs->store->path, strerror(-ret));
		return ret;
	}
	while ((de = readdir(dir))) {
		struct wal_name wn;

		/* Only WAL names: .incoming and .walship are not.  From the floor: every
		 * history file (small, and not placed by position), the other files from the
		 * floor's segment on; else after the HAVE's newest. */
		if (wal_name_parse(de->d_name, &wn) < 0)
			continue;
		if (from_name	       ? strcmp(de->d_name, from_name) < 0 :
		    from != UINT64_MAX ? relay_file_start(pr, de->d_name) < from :
					 strcmp(de->d_name, after) <= 0)
			continue;
		if (n == cap) {
			char **grown =
				realloc(list, (size_t)(cap = cap ? cap * 2 : 64) * sizeof(char *));

			if (!grown)
				goto out_nomem;
			list = grown;
		}
		list[n] = strdup(de->d_name);
		if (!list[n])
			goto out_nomem;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(list, (size_t)n, sizeof(*list), cmp_names);
	*names = list;
	return n;

out_nomem:
	closedir(dir);
	spool_free_names(list, n);
	log_error("out of memory");
	return -ENOMEM;
}

/*
 * The relay's sends hold at most half the ring's slots: a downstream replica that reads
 * slowly (each may hold PEER_MAX_QUEUED) never takes from this replica's receive the
 * slots it needs, so the relay never slows what this replica acknowledges upstream (a
 * synchronous commit on the primary may wait for it).
 */
struct ring_slot *relay_slot_get(struct primary *pr)
{
	return ring_slot_get_capped(pr->ring, pr->ring->nslots / 2);
}

int relay_open_file(struct primary *pr, const char *name)
{
	int fd = openat(relay_of(pr)->store->dir_fd, name, O_RDONLY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/*
 * The oldest WAL @peer still needs: its unacknowledged transfers, the backlog it has not
 * been sent, and the end of the continuous run it holds durably (primary_stream.c's
 * stream.end, fed by its ACKs and PROGRESS; it begins only where the replica is known to
 * hold everything before, relay_peer_holds_before()).  While no run has begun, never
 * past the registry's FLOOR: a transfer refused or cut leaves the transfers and the
 * backlog without the file it lacks.  UINT64_MAX: nothing tells.
 */
static uint64_t relay_peer_floor(const struct peer *peer)
{
	const struct primary *pr = peer->pr;
	uint32_t seg_size = pr->id.seg_size;
	uint64_t floor = UINT64_MAX, v;

	for (const struct xfer *x = peer->xfers; x; x = x->next) {
		v = x->push->stream ? x->push->lsn : relay_file_start(pr, x->push->name);
		floor = v < floor ? v : floor;
	}
	for (int i = peer->backlog_next; i < peer->nbacklog; i++) {
		v = relay_file_start(pr, peer->backlog[i]);
		floor = v < floor ? v : floor;
	}
	if (peer->backlog_more && peer->relist_lsn && peer->relist_lsn < floor)
		floor = peer->relist_lsn; /* stored since, to be listed: a new timeline's too */
	if (peer->stream.end && seg_size) {
		v = peer->stream.end - peer->stream.end % seg_size;
		floor = v < floor ? v : floor;
	} else if ((v = relay_peer_known_floor(peer)) != 0) {
		floor = v < floor ? v : floor;
	}
	return floor;
}

/* @peer streams, stores files and has been sent its backlog: it takes what comes now. */
static bool relay_peer_ready(const struct peer *peer)
{
	return peer->state == PEER_STREAMING && !peer->conn.closing && peer->io == PEER_IO_OK &&
	       peer->backlog_next >= peer->nbacklog;
}

/* @peer is to be given @p: not being sent it, and it neither acknowledged nor refused it. */
static bool relay_peer_lacks(const struct peer *peer, const struct push *p)
{
	return !peer_has_file(peer, p->name) && !push_acked_by(p, peer->name) &&
	       !push_refused_by(p, peer->name);
}

void relay_peer_progress(struct peer *peer)
{
	struct primary *pr = peer->pr;
	struct relay_state *rs = relay_of(pr);
	int k = relay_down_index(rs, peer->name);
	uint64_t floor;

	/* Files stored while it was sent its backlog come after it, listed again from the
	 * oldest of them (relist_from): sent in WAL order, not before the files of the
	 * backlog. */
	if (peer->backlog_more && relay_peer_ready(peer))
		peer_relist_backlog(peer);
	/* The growing segments go to it once it has been sent its backlog. */
	for (int i = 0; i < RELAY_MAX_GROWING; i++) {
		struct push *p = rs->grow[i].push;

		if (p && relay_peer_ready(peer) && !peer->backlog_more && /* (listed, sent) */
		    relay_peer_lacks(peer, p))
			peer_add_xfer(peer, p);
	}
	if (k < 0)
		return;
	floor = relay_peer_floor(peer);
	if (floor != UINT64_MAX && floor != rs->down[k].floor) {
		bool lower = floor < rs->down[k].floor;

		rs->down[k].floor = floor;
		rs->dirty = true;
		/* A FLOOR that goes back (a file before it sent late, a replica holding less
		 * than recorded) is written at once, not within RELAY_SAVE_MS: a crash
		 * meanwhile would restart from the registry's higher FLOOR, whose retention
		 * may remove, and whose backlog never sends, the files before it.  Rare, so
		 * on the event loop; a FLOOR that moves on waits, older being safe. */
		if (lower)
			relay_save(rs); /* logs; dirty stays for the tick on failure */
	}
}

uint64_t relay_retention_floor(const struct primary *rl)
{
	const struct relay_state *rs;
	uint64_t floor = UINT64_MAX;

	if (!rl)
		return UINT64_MAX;
	rs = relay_of(rl);
	for (int i = 0; i < rs->ndown; i++) {
		uint64_t v = rs->down[i].floor < rs->down[i].saved ? rs->down[i].floor :
								     rs->down[i].saved;

		if (v < floor)
			floor = v;
	}
	/* A connected replica's transfers and backlog, even before its floor is recorded. */
	for (const struct peer *peer = rl->peers; peer; peer = peer->next) {
		uint64_t v;

		if (peer->state != PEER_STREAMING)
			continue;
		v = relay_peer_floor(peer);
		floor = v < floor ? v : floor;
	}
	return floor;
}

void relay_on_applied(struct primary *rl, relay_applied_fn fn, void *arg)
{
	if (!rl)
		return;
	relay_of(rl)->applied_fn = fn;
	relay_of(rl)->applied_arg = arg;
}

void relay_peer_applied(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct relay_state *rs = relay_of(peer->pr);
	struct msg_applied m;

	if (msg_applied_decode(payload, len, &m) < 0 ||
	    !msg_applied_newer(rs->applied_tli, rs->applied_lsn, m.timeline, m.apply_lsn))
		return;
	rs->applied_tli = m.timeline;
	rs->applied_lsn = m.apply_lsn;
	if (rs->applied_fn)
		rs->applied_fn(rs->applied_arg, m.timeline, m.apply_lsn);
}

/* ---- the source: the replica's store ---- */

static void relay_fill_all(struct primary *pr)
{
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		peer_fill(peer);
}

/* The growing segment of @g will not be completed from its file: cancel it downstream. */
static void relay_cancel(struct primary *pr, struct relay_growing *g)
{
	struct push *p = g->push;

	g->push = NULL;
	p->image = NULL; /* no longer the relay's to follow: relay_wal_image_gone() misses it */
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		peer_cancel_push(peer, p);
	push_unref(p);
}

/* The growing segment @name, or NULL. */
static struct relay_growing *relay_growing_find(struct relay_state *rs, const char *name)
{
	for (int i = 0; i < RELAY_MAX_GROWING; i++)
		if (rs->grow[i].push && !strcmp(rs->grow[i].push->name, name))
			return &rs->grow[i];
	return NULL;
}

/* The cluster identity the handshake checks downstream replicas against: the store's. */
static void relay_learn_identity(struct primary *pr)
{
	const struct store *st = relay_of(pr)->store;

	/* Once the store has one, and again when it completes a record of its first form
	 * (the system identifier alone). */
	if (!st->id.system_identifier || !wal_identity_completes(&pr->id, &st->id))
		return;
	pr->id = st->id;
	pr->id.timeline = 0;
}

void relay_wal_durable(struct primary *rl, const char *name, const char *tmp_name, uint64_t size,
		       uint64_t durable, const uint8_t *image)
{
	struct relay_state *rs;
	struct relay_growing *g;
	struct wal_name wn;
	uint64_t segno;
	int fd;

	if (!rl || rl->stopping || !size)
		return;
	/* The last byte goes with FILE_END, once this replica has stored the file
	 * (relay_wal_stored()): a downstream replica is never told a file is whole that may
	 * still be refused here (another file stored under its name, its directory fsync). */
	if (durable > size - 1)
		durable = size - 1;
	rs = relay_of(rl);
	g = relay_growing_find(rs, name);
	if (g && strcmp(g->tmp_name, tmp_name))
		relay_cancel(rl, g); /* another copy of it: relayed from its start again */
	else if (g) {
		g->push->image = image;
		if (durable > g->push->avail) {
			g->push->avail = durable;
			relay_fill_all(rl);
		}
		return;
	}
	if (wal_name_parse(name, &wn) < 0 || wn.kind != WAL_FILE_SEGMENT || !size ||
	    wal_name_segno(&wn, (uint32_t)size, &segno) < 0)
		return;
	/* A store that has stored no segment yet (a fresh one, on the cluster's first) knows
	 * no segment size; this one's is its size, which its long page header, validated
	 * before any of it was durable, says.  Without it the downstream replicas' runs,
	 * which count from a segment's start, would count nothing until this one is stored
	 * (relay_peer_holds_before()); relay_learn_identity() takes the store's whole
	 * identity later. */
	if (!rl->id.seg_size)
		rl->id.seg_size = (uint32_t)size;
	g = NULL;
	for (int i = 0; i < RELAY_MAX_GROWING; i++)
		if (!rs->grow[i].push && !g)
			g = &rs->grow[i];
	if (!g) {
		/* More at once than the upstream has in flight: the oldest is stale. */
		g = &rs->grow[0];
		for (int i = 1; i < RELAY_MAX_GROWING; i++)
			if (strcmp(rs->grow[i].push->name, g->push->name) < 0)
				g = &rs->grow[i];
		relay_cancel(rl, g);
	}
	fd = openat(rs->store->incoming_fd, tmp_name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warning("could not open file \"%s/%s/%s\": %s", rs->store->path,
			    STORE_INCOMING_DIR, tmp_name, strerror(errno));
		return;
	}
	g->push = push_relay_begin(rl, name, fd, size, durable, true, segno * size);
	if (!g->push)
		return;
	g->push->image = image;
	snprintf(g->tmp_name, sizeof(g->tmp_name), "%s", tmp_name);
	/* To the replicas that have their backlog; the others get it after theirs. */
	for (struct peer *peer = rl->peers; peer; peer = peer->next)
		relay_peer_progress(peer);
	relay_fill_all(rl);
}

void relay_wal_image_gone(struct primary *rl, const char *name, const uint8_t *image)
{
	struct relay_growing *g = rl && image ? relay_growing_find(relay_of(rl), name) : NULL;

	if (g && g->push->image == image)
		g->push->image = NULL;
}

/* Whether @name, stored, is the file of growing segment @g (renamed), not another copy of
 * it (one that replaced a partial the relay was reading). */
static bool relay_same_file(const struct relay_state *rs, const struct relay_growing *g,
			    const char *name)
{
	struct stat stored, growing;

	return fstatat(rs->store->dir_fd, name, &stored, 0) == 0 &&
	       fstat(g->push->fd, &growing) == 0 && stored.st_dev == growing.st_dev &&
	       stored.st_ino == growing.st_ino;
}

/* @name, stored, waits to be listed again for @peer: its position counts in the floor. */
static void relay_relist_note(struct peer *peer, const char *name)
{
	uint64_t v = relay_file_start(peer->pr, name);

	if (v != UINT64_MAX && (!peer->relist_lsn || v < peer->relist_lsn))
		peer->relist_lsn = v;
}

/*
 * File @name is stored: a downstream replica still being sent its backlog (listed before)
 * is sent it after that backlog, in WAL order, not before the rest of it: a replica that
 * stored later files first would hold a gap meanwhile, and its run of durable WAL, and so
 * the floor that retention keeps for it, could not pass the gap until the backlog is done
 * (and no further at all once more files were out of order than a run keeps).
 */
static void relay_later_for_backlogs(struct primary *rl, const char *name)
{
	for (struct peer *peer = rl->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    peer->backlog_next < peer->nbacklog && !peer_has_file(peer, name)) {
			relay_relist_note(peer, name);
			peer_relist_later(peer, name, 0);
			relay_peer_progress(peer); /* (its floor, if the file is before it) */
		}
}

const struct stream_forks *relay_forks(const struct primary *rl)
{
	return &relay_of(rl)->forks;
}

/* Timeline @tli's history file, @text (@n bytes), is stored: where the timelines before
 * it ended, once this replica holds a segment of @tli (and @tli is the newest). */
static void relay_note_forks(struct relay_state *rs, uint32_t tli, const char *text, ssize_t n)
{
	if (n > 0 && tli > rs->forks.newest && tli <= rs->seg_tli)
		stream_forks_note(&rs->forks, tli, 0, text, (size_t)n, 0);
}

/* At start: the newest timeline of a segment stored, and the forks of its history file
 * (one directory read). */
static void relay_learn_forks(struct relay_state *rs)
{
	int fd = openat(rs->store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint32_t older = 0; /* the newest timeline of a segment before seg_tli's */
	ssize_t n = 0;
	char *text;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return; /* (learned from the next segment of a new timeline stored) */
	}
	while ((de = readdir(dir))) {
		struct wal_name wn;

		if (wal_name_parse(de->d_name, &wn) != 0 || wn.kind != WAL_FILE_SEGMENT ||
		    wn.timeline == rs->seg_tli)
			continue;
		if (wn.timeline > rs->seg_tli) {
			older = rs->seg_tli;
			rs->seg_tli = wn.timeline;
		} else if (wn.timeline > older) {
			older = wn.timeline;
		}
	}
	closedir(dir);
	text = rs->seg_tli > 1 ? malloc(WAL_HISTORY_MAX) : NULL;
	if (text) {
		n = wal_history_read(rs->store->dir_fd, rs->seg_tli, text);
		relay_note_forks(rs, rs->seg_tli, text, n);
	} else {
		n = 1; /* (timeline 1, or no memory: nothing to cut) */
	}
	free(text);
	/* Segments of the newest timeline without its history file (the process ended
	 * between a first segment and its history, relay_new_history()): the switch from the
	 * timeline before is still to cut, when that file comes.  (An archive seeded by
	 * hand without it is cut then too: more sent again and kept, nothing lost.) */
	if (n <= 0 && older) {
		rs->switch_tli = rs->seg_tli;
		rs->switch_from = older;
	}
}

/* Whether the archive holds a segment of timeline @tli or later past segment @segno: one
 * directory read, for the rare history file stored (a timeline switch). */
static bool relay_holds_timeline_past(const struct relay_state *rs, uint32_t tli, uint64_t segno)
{
	uint32_t seg_size = rs->store->id.seg_size;
	int fd = openat(rs->store->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	bool found = false;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return false; /* not known: cut, which only sends and keeps more */
	}
	while (!found && (de = readdir(dir))) {
		struct wal_name wn;
		uint64_t n;

		found = wal_name_parse(de->d_name, &wn) == 0 && wn.kind == WAL_FILE_SEGMENT &&
			wn.timeline >= tli && wal_name_segno(&wn, seg_size, &n) == 0 && n > segno;
	}
	closedir(dir);
	return found;
}

/* The downstream replica @name connected to @rl, or NULL. */
static struct peer *relay_down_peer(struct primary *rl, const char *name)
{
	for (struct peer *peer = rl->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && !strcmp(peer->name, name))
			return peer;
	return NULL;
}

/* Whether @peer, on this connection, stored a segment of timeline @tli or a later one. */
static bool relay_peer_follows(const struct peer *peer, uint32_t tli)
{
	struct wal_name wn;

	return wal_name_parse(peer->last_acked, &wn) == 0 && wn.kind == WAL_FILE_SEGMENT &&
	       wn.timeline >= tli;
}

/*
 * The history file of timeline @tli is stored: the timeline before it ended at its fork,
 * and a downstream replica may hold that timeline's WAL past it (whole segments the old
 * primary wrote, acknowledged before the failover).  Its WAL after the fork no longer
 * counts, as on the primary (stream_cut()): each replica's run, and the FLOOR recorded
 * for it, go back to the fork's segment, so that the new timeline's segments from there
 * are sent to it (a replica away now gets them in its backlog) and kept for it; but not
 * those of one that stored the new timeline's WAL already (relay_peer_follows()).
 */
/* @from_tli: the newest timeline a segment was stored of before this one, when a first
 * segment of @tli calls (0: a history file stored): a switch from the parent happening
 * now, whatever of @tli is stored already (out of order: the first stored may be a later
 * one than the fork's). */
static void relay_new_history(struct primary *rl, uint32_t tli, uint32_t from_tli)
{
	struct relay_state *rs = relay_of(rl);
	uint32_t seg_size = rl->id.seg_size, child = 0;
	char *text = malloc(WAL_HISTORY_MAX);
	ssize_t n = text ? wal_history_read(rs->store->dir_fd, tli, text) : -ENOMEM;
	uint64_t fork = 0, from;
	uint32_t parent = 0;
	bool lowered = false;

	if (!from_tli && tli == rs->switch_tli)
		from_tli = rs->switch_from; /* (its first segment came before it) */
	if (n <= 0 && from_tli) {
		rs->switch_tli = tli; /* (not stored yet: this when it is) */
		rs->switch_from = from_tli;
	} else if (tli == rs->switch_tli) {
		rs->switch_tli = 0;
	}

	/* The parent: the timeline whose child is @tli. */
	for (uint32_t t = tli - 1; n > 0 && t >= 1 && child != tli; t--) {
		parent = t;
		if (wal_history_fork(text, (size_t)n, tli, t, &fork, &child) < 0)
			child = 0;
	}
	relay_note_forks(rs, tli, text, n);
	free(text);
	if (child != tli || !seg_size)
		return; /* unreadable, or no parent found: nothing known to cut */
	from = fork - fork % seg_size;
	/* A segment of the parent from the fork's on still being relayed (a partial kept
	 * when the upstream was lost mid-segment, which the new upstream never sends again,
	 * NAME.partial perhaps never pushed): ended now, each downstream keeping its durable
	 * part, as for any cancel.  Left open, its transfers would hold every downstream's
	 * floor, and this replica's retention, at that segment for good. */
	for (int i = 0; i < RELAY_MAX_GROWING; i++) {
		struct relay_growing *g = &rs->grow[i];
		struct wal_name wn;
		uint64_t segno;

		if (g->push && wal_name_parse(g->push->name, &wn) == 0 &&
		    wn.kind == WAL_FILE_SEGMENT && wn.timeline == parent &&
		    wal_name_segno(&wn, seg_size, &segno) == 0 && segno >= from / seg_size) {
			log_log("timeline %u forked at %X/%X: \"%s\" is no longer relayed", tli,
				(unsigned int)(fork >> 32), (unsigned int)fork, g->push->name);
			relay_cancel(rl, g);
		}
	}
	/* Only for a switch happening now: the history file of a timeline this replica
	 * holds WAL of well past the fork already (one it lacked, sent late: an archive
	 * seeded by hand, rebuilt) cuts nothing, or every replica would be sent, and kept,
	 * everything since an old fork again.  The fork's segment of @tli and the next may
	 * be stored before the history file (they travel beside it).  At the first segment
	 * of @tli stored after its parent's (@from_tli), the switch is happening now
	 * whichever of its segments that is. */
	if (from_tli != parent && relay_holds_timeline_past(rs, tli, from / seg_size + 1))
		return;
	/* A downstream replica connected that has stored a file of @tli already follows it:
	 * what its run counts from the fork on is @tli's WAL (the history file can be stored
	 * after the new timeline's first segments, which travel beside it), and cut back it
	 * would never grow again (their acknowledgements came already). */
	for (int k = 0; k < rs->ndown; k++) {
		struct peer *peer = relay_down_peer(rl, rs->down[k].name);

		if (peer && relay_peer_follows(peer, tli))
			continue;
		if (peer)
			stream_run_truncate(&peer->stream, from);
		if (rs->down[k].floor > from) {
			rs->down[k].floor = from;
			lowered = true;
		}
	}
	for (struct peer *peer = rl->peers; peer; peer = peer->next)
		relay_peer_progress(peer); /* a FLOOR that goes back is saved at once */
	if (lowered) {
		log_log("timeline %u forked at %X/%X: downstream replicas are sent its WAL from "
			"there, and it is kept for them",
			tli, (unsigned int)(fork >> 32), (unsigned int)fork);
		rs->dirty = true;
		relay_save(rs); /* logs; dirty stays for the tick on failure */
	}
}

/*
 * Stored file @wn, if the first segment of a newer timeline (its history file stored
 * before it, as they travel): the timelines before it end now (relay_note_forks()), and
 * what the downstream replicas' WAL counts goes back to the fork again, as at the history
 * file: acknowledgements of the old timeline past the fork counted in full until now.
 * Also while stopping: the registry saved then keeps the cut.
 */
static void relay_new_segment(struct primary *rl, const struct wal_name *wn)
{
	struct relay_state *rs = relay_of(rl);
	uint32_t before = rs->seg_tli;

	if (wn->kind != WAL_FILE_SEGMENT || wn->timeline <= rs->seg_tli)
		return;
	rs->seg_tli = wn->timeline;
	if (wn->timeline > 1 && wn->timeline > rs->forks.newest)
		relay_new_history(rl, wn->timeline, before);
}

void relay_wal_duplicate(struct primary *rl, const char *name, uint64_t size)
{
	if (rl && !rl->stopping && relay_growing_find(relay_of(rl), name))
		relay_wal_stored(rl, name, size);
}

/* Stored file @p to every streaming replica that has been sent its backlog, unless
 * it is being sent it or acknowledged it already; the others get it after their backlog.
 * One whose backlog is to be listed again (files stored meanwhile: backlog_more) has it
 * listed now, this file with them, so that they go in WAL order. */
static void relay_send_stored(struct primary *rl, struct push *p)
{
	for (struct peer *peer = rl->peers; peer; peer = peer->next) {
		if (!relay_peer_ready(peer))
			continue;
		if (peer->backlog_more) {
			/* (this file with them: it may fill a gap before them) */
			if (strcmp(p->name, peer->relist_from) < 0)
				snprintf(peer->relist_from, sizeof(peer->relist_from), "%s",
					 p->name);
			relay_relist_note(peer, p->name);
			peer_relist_backlog(peer);
		} else if (relay_peer_lacks(peer, p)) {
			peer_add_xfer(peer, p);
			/* Stored out of order (this replica catching up, several files in
			 * flight), before the floor recorded for it: lowered now and saved, not
			 * at its next acknowledgement (a crash or a disconnect before it, and
			 * its backlog began past the file, which retention could remove). */
			relay_peer_progress(peer);
		}
	}
}

void relay_wal_stored(struct primary *rl, const char *name, uint64_t size)
{
	struct relay_state *rs;
	struct relay_growing *g;
	struct wal_name wn;
	struct push *p;
	int fd;

	if (!rl)
		return;
	if (rl->stopping) {
		/* A history file the drain stored while stopping still cuts the downstream
		 * replicas' floors back to its fork, saved: the upstream, which got its
		 * acknowledgement, never sends it again, and the restarted relay would send
		 * the new timeline only from the old floors on. */
		if (wal_name_parse(name, &wn) == 0 && wn.kind == WAL_FILE_HISTORY) {
			relay_learn_identity(rl);
			relay_new_history(rl, wn.timeline, 0);
		} else if (wal_name_parse(name, &wn) == 0) {
			relay_new_segment(rl, &wn); /* (the same, for its first segment) */
		}
		return;
	}
	rs = relay_of(rl);
	relay_learn_identity(rl);
	if (wal_name_parse(name, &wn) == 0 && wn.kind == WAL_FILE_HISTORY)
		relay_new_history(rl, wn.timeline, 0);
	else if (wal_name_parse(name, &wn) == 0)
		relay_new_segment(rl, &wn);
	g = relay_growing_find(rs, name);
	if (g && !relay_same_file(rs, g, name))
		relay_cancel(rl, g); /* stored from another copy: sent whole below */
	else if (g) {
		/* The same file, renamed: whole and durable now, written directly no more, so
		 * the rest is read from it (the image goes once the replica is done with it). */
		p = g->push;
		g->push = NULL;
		p->image = NULL;
		p->avail = p->size;
		relay_later_for_backlogs(rl, name);
		/* A replica that finished its backlog since the segment began growing, and was
		 * not given it yet (relay_peer_progress() gives growing segments only at its
		 * next acknowledgement): given it now, whole, as a file stored otherwise is
		 * (below); else it is gone from the growing ones and never sent on this
		 * connection. */
		relay_send_stored(rl, p);
		relay_fill_all(rl);
		push_unref(p);
		return;
	}
	fd = openat(rs->store->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warning("could not open file \"%s/%s\": %s", rs->store->path, name,
			    strerror(errno));
		return;
	}
	p = push_relay_begin(rl, name, fd, size, size, false, 0);
	if (!p)
		return;
	/* To every streaming replica that has been sent its backlog, unless it is being sent
	 * it already; the others get it after their backlog. */
	relay_later_for_backlogs(rl, name);
	relay_send_stored(rl, p);
	push_unref(p);
	relay_fill_all(rl);
}

void relay_wal_dropped(struct primary *rl, const char *name, const char *tmp_name)
{
	struct relay_growing *g;

	if (!rl)
		return;
	g = relay_growing_find(relay_of(rl), name);
	if (g && !strcmp(g->tmp_name, tmp_name))
		relay_cancel(rl, g);
}

/* ---- the role's steps ---- */

struct primary *relay_start(const struct config *cfg, struct ring *r, const struct store *store,
			    bool *config_error)
{
	struct primary *pr = calloc(1, sizeof(*pr));
	struct relay_state *rs = calloc(1, sizeof(*rs));
	int ret;

	if (!pr || !rs) {
		log_error("out of memory");
		goto out_free;
	}
	pr->relay = rs;
	rs->store = store;
	rs->worker = &pr->worker;
	pthread_mutex_init(&rs->write_lock, NULL);
	pr->cfg = *cfg;
	pr->cfg.sync_replicas = 0; /* nobody waits for a downstream acknowledgement */
	pr->cfg.send_source = CONFIG_SEND_BUFFERS; /* growing files are never mapped */
	pr->ring = r;
	pr->listen_fd = -1;
	pr->st.started = time(NULL);
	/* No control socket (the replica's serves), no spool: their teardown skips them. */
	pr->control.closing = true;
	pr->spool.dir_fd = pr->spool.incoming_fd = pr->spool.replicas_fd = pr->spool.wal_fd = -1;
	relay_learn_identity(pr);
	/* (the TLS files loaded a moment ago for the replica's own connection: a failure
	 * now is none of theirs, and no configuration error) */
	if (cfg->tls && tls_ctx_init(&pr->tls, true, cfg->tls_ca_file, cfg->tls_cert_file,
				     cfg->tls_key_file, cfg->ktls, cfg->zero_copy) < 0)
		goto out_free;
	if (cfg->hba_file[0] && (ret = hba_load(cfg->hba_file, &pr->hba)) < 0) {
		log_error("could not load access rules from \"%s\"", cfg->hba_file);
		*config_error = textfile_error_lasts(ret);
		goto out_tls;
	}
	if (relay_load(rs) < 0 || relay_load_registered(pr) < 0)
		goto out_hba;
	relay_learn_forks(rs);
	/* the registry's periodic writes (relay_save_async()) */
	if (worker_start(&pr->worker, r) < 0) /* logs */
		goto out_hba;
	if (primary_listen(pr) < 0)
		goto out_hba;
	primary_accept_post(pr);
	/* The segments kept partial at the last stop (a stream cut by a restart or a lost
	 * link): their durable bytes go downstream now, not only once the upstream resumes
	 * them.  After the primary host's loss the upstream may never do so, and a downstream
	 * replica's `walship fetch` would lack WAL this replica acknowledged. */
	for (unsigned int i = 0; i < store->npartials; i++) {
		const struct store_partial *p = &store->partials[i];
		uint64_t servable = store_partial_servable(store->dir_fd, p), end_off;

		/* Not one of a timeline that a later stored history ends in or before it:
		 * relay_new_history() cancelled it downstream (whose replicas keep what they
		 * hold of it); followed again, its transfers would never end, and every
		 * downstream's retention, and this one's floor for them, would stay at it. */
		if (store_timeline_end_in(store->dir_fd, p->name, p->size, &end_off) == 0 &&
		    end_off != UINT64_MAX)
			continue;
		if (servable)
			relay_wal_durable(pr, p->name, p->tmp_name, p->size, servable, NULL);
	}
	log_log("relay: downstream replicas connect on %s (%d registered)", cfg->listen, rs->ndown);
	return pr;

out_hba:
	worker_stop(&pr->worker); /* (not started: nothing) */
	hba_free(pr->hba);
	spool_free_names(pr->registered, pr->nregistered);
	free(pr->held);
	free(pr->lost);
out_tls:
	tls_ctx_free(&pr->tls);
out_free:
	if (rs)
		free(rs->down);
	free(rs);
	free(pr);
	return NULL;
}

void relay_pump(struct primary *rl)
{
	if (rl)
		primary_role.pump(rl);
}

/* A floor that moved on, written on the worker thread (relay_tick()): its two fsyncs once a
 * segment must not hold up the event loop that receives the stream and relays it. */
struct relay_save_job {
	struct worker_job job;
	struct relay_state *rs;
	uint64_t gen;
	char *text;
	size_t len;
	int n;
	struct relay_down *entries; /* the floors written (name, floor) */
	int ret;
};

static void relay_save_run(struct worker_job *job)
{
	struct relay_save_job *sj = (struct relay_save_job *)job;

	sj->ret = relay_write(sj->rs, sj->gen, sj->text, sj->len);
}

static void relay_save_done(struct worker_job *job)
{
	struct relay_save_job *sj = (struct relay_save_job *)job;
	struct relay_state *rs = sj->rs;
	bool newest;

	rs->save_busy = false;
	rs->save_job = NULL;
	pthread_mutex_lock(&rs->write_lock);
	newest = rs->written_gen == sj->gen;
	pthread_mutex_unlock(&rs->write_lock);
	if (sj->ret < 0) {
		rs->dirty = true; /* (logged) tried again a RELAY_SAVE_MS after it began */
	} else if (sj->ret == 0 && newest) {
		/* what the file holds now: retention keeps from the lower of it and the floor */
		for (int i = 0; i < sj->n; i++) {
			int k = relay_down_index(rs, sj->entries[i].name);

			if (k >= 0)
				rs->down[k].saved = sj->entries[i].floor;
		}
	}
	free(sj->entries);
	free(sj->text);
	free(sj);
}

static void relay_save_async(struct relay_state *rs, int64_t now_ms)
{
	struct relay_save_job *sj = calloc(1, sizeof(*sj));

	rs->saved_ms = now_ms; /* (at most one a RELAY_SAVE_MS, written or failed) */
	if (!sj || relay_text(rs, &sj->text, &sj->len) < 0) {
		free(sj);
		return; /* (logged) dirty stays: tried again */
	}
	sj->entries = malloc(((size_t)rs->ndown + 1) * sizeof(*sj->entries));
	if (!sj->entries) {
		free(sj->text);
		free(sj);
		return;
	}
	for (int i = 0; i < rs->ndown; i++)
		sj->entries[i] = rs->down[i];
	sj->n = rs->ndown;
	sj->rs = rs;
	sj->gen = ++rs->gen;
	sj->job.run = relay_save_run;
	sj->job.done = relay_save_done;
	rs->dirty = false; /* what moves from now on is the next write's */
	rs->save_busy = true;
	rs->save_job = sj;
	worker_submit(rs->worker, &sj->job);
}

void relay_tick(struct primary *rl, int64_t now_ms)
{
	struct relay_state *rs;

	if (!rl)
		return;
	rs = relay_of(rl);
	primary_role.tick(rl, now_ms);
	if (rs->dirty && !rs->save_busy && now_ms - rs->saved_ms >= RELAY_SAVE_MS)
		relay_save_async(rs, now_ms);
	/* A backlog to list again (one that failed: once its second has passed) is listed,
	 * not only at the replica's next acknowledgement or the next file stored. */
	for (struct peer *peer = rl->peers; peer; peer = peer->next)
		if (peer->backlog_more && now_ms >= peer->relist_retry_ms &&
		    relay_peer_ready(peer)) {
			relay_peer_progress(peer);
			peer_fill(peer);
		}
}

void relay_stop(struct primary *rl)
{
	if (!rl)
		return;
	/* Not cancelled: the downstream replicas keep their durable part when the
	 * connections close, and resume it from the restarted relay. */
	for (int i = 0; i < RELAY_MAX_GROWING; i++) {
		struct push *p = relay_of(rl)->grow[i].push;

		relay_of(rl)->grow[i].push = NULL;
		if (!p)
			continue;
		/* No longer followed (relay_wal_image_gone() misses it): what is left is read
		 * from the file, never from an image the replica may give back meanwhile. */
		p->image = NULL;
		push_unref(p);
	}
	primary_role.stop(rl);
	if (relay_of(rl)->dirty)
		relay_save(relay_of(rl));
}

bool relay_stopped(struct primary *rl)
{
	return !rl || primary_role.stopped(rl);
}

void relay_reload(struct primary *rl, const struct config *cfg)
{
	if (!rl)
		return;
	primary_role.reload(rl, cfg);
	rl->cfg.sync_replicas = 0;
}

void relay_fill_status(struct primary *rl, struct status_node *n)
{
	struct status_node d;
	struct status_peer *peers;

	if (!rl)
		return;
	primary_role.status(rl, &d);
	/* Their positions, as a primary with a stream source shows its replicas'. */
	for (unsigned int i = 0; i < d.npeers; i++) {
		struct status_peer *sp = &d.peers[i];

		for (const struct peer *peer = rl->peers; peer; peer = peer->next) {
			if (peer->state != PEER_STREAMING || peer->conn.closing ||
			    strcmp(peer->name, sp->name))
				continue;
			peer_fill_stream_positions(peer, sp);
		}
	}
	n->connections_refused += d.connections_refused;
	n->connections_shed += d.connections_shed;
	n->hba_refused += d.hba_refused;
	n->registered_replicas = d.registered_replicas;
	n->max_senders = d.max_senders;
	if (d.npeers) {
		peers = realloc(n->peers, (n->npeers + d.npeers) * sizeof(*peers));
		if (peers) {
			memcpy(peers + n->npeers, d.peers, d.npeers * sizeof(*peers));
			n->peers = peers;
			n->npeers += d.npeers;
		}
	}
	d.npeers = 0;
	status_node_release(&d);
}

void relay_free(struct primary *rl)
{
	if (!rl)
		return;
	/* a registry write still queued runs now, with the state it uses (its end is not
	 * seen: the event loop has stopped) */
	worker_stop(&rl->worker);
	if (relay_of(rl)->save_job) {
		free(relay_of(rl)->save_job->entries);
		free(relay_of(rl)->save_job->text);
		free(relay_of(rl)->save_job);
	}
	free(relay_of(rl)->down);
	pthread_mutex_destroy(&relay_of(rl)->write_lock);
	free(relay_of(rl));
	rl->relay = NULL;
	primary_role.free(rl);
}
