// SPDX-License-Identifier: MIT
/*
 * Delayed and held standbys: the commit index, the delays, the holds (see sendlimit.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/config.h"
#include "common/durable.h"
#include "common/log.h"
#include "proto/pgrepl.h"
#include "serve/pgwire.h"
#include "serve/sendlimit.h"
#include "wal/name.h"

#define SENDLIMIT_MAX_DELAYS CONFIG_STANDBY_DELAY_MAX_ENTRIES /* what the config admits */
#define SENDLIMIT_READ (1024 * 1024)
/* Stored segments back the decoder begins at an older hold's segment; further, it begins
 * at the newest, and that hold stays held. */
#define SENDLIMIT_MAX_CATCH_UP 16
/* Segments the decoder may fall behind the newest WAL while it catches up; further,
 * decoding starts again at the newest (a WAL rate above what the steps below read). */
#define SENDLIMIT_MAX_BEHIND (2 * SENDLIMIT_MAX_CATCH_UP)
/* Bytes read and decoded per call, on the event loop (a few milliseconds): the rest at
 * the next news of the WAL or the next tick (sendlimit_catching_up()), so that a first
 * hold or delay behind a lagging standby does not stall the replica for the whole read
 * of up to SENDLIMIT_MAX_CATCH_UP segments (256 MiB), nor a first delay for the newest
 * segment's. */
#define SENDLIMIT_CATCH_UP_STEP (4u * 1024u * 1024u)
/* Commits kept (24 bytes each); past this the older half leaves the index at once, and
 * the WAL it covered is delayed by its segments' times (below). */
#define SENDLIMIT_MAX_COMMITS (4u * 1024u * 1024u)
/* Stored segments looked at, newest first, for the newest one old enough (below); and
 * how many missing in a row end the look (none older is stored, as far as it goes). */
#define SENDLIMIT_LOOK_BACK 4096
#define SENDLIMIT_LOOK_GAP 64
/* Holes in what the index knows, kept apart (note_hole()). */
#define SENDLIMIT_HOLES 8
/* Timelines looked at under the index's for a stored segment's name (segment_written_us()). */
#define SENDLIMIT_TLI_LOOK 8

struct commit {
	uint64_t lsn, end_lsn;
	int64_t time; /* PostgreSQL timestamp */
};

/*
 * One delay of standby_delay.  Its boundary is the end of the last commit due for it:
 * commits[0 .. idx) are due.  Before the commits the index holds (WAL stored before
 * decoding began, after a restart or a gap, or left the index undue when it was full)
 * no commit is known: there whole stored segments are due once their last write
 * (mtime) is the delay old, since every commit in a segment was made before the
 * segment was written here, and the WAL before a due segment is older still.  A
 * segment's end is later than its commits' times, so that boundary is late, never
 * early.
 */
struct delay {
	char app[PGWIRE_MAX_NAME];
	int64_t us;
	/* moved by the timer alone (sendlimit_due()), so that what it reports as moved is
	 * what the waiting standbys are woken for (sendlimit_for() looks ahead of it) */
	size_t idx;
	uint64_t folded_end; /* the end of the last commit due for it that left the index */
	uint64_t seg_end; /* the end of the newest stored segment due (0: none) */
	uint64_t seg_next; /* the next segment to look at for it */
	int64_t seg_next_us; /* when that one becomes due (Unix µs), INT64_MAX: unknown */
	bool seg_known; /* seg_end looked for since the index (re)started */
};

enum hold_mode { HOLD_AT, HOLD_BEFORE, HOLD_UPTO };

struct hold {
	char app[PGWIRE_MAX_NAME];
	enum hold_mode mode;
	/* where it was held: AT's limit, where BEFORE searches from, and for every mode
	 * the retention floor (a release lets the standby go on, not the WAL go: it may
	 * disconnect before it got there, and asks again from where it was) */
	uint64_t lsn;
	int64_t time; /* BEFORE: a PostgreSQL timestamp */
	uint64_t upto; /* UPTO: the limit */
	/* BEFORE: where the search for the first commit at or after the time resumes (the
	 * commits from the hold's position up to here are older): sendlimit_for() runs at
	 * every wake of the standby, and a held delayed standby can have millions of commits
	 * between its hold and that time.  0: search from the hold's position. */
	size_t before_from;
};

struct sendlimit {
	const struct store *store;
	int meta_fd; /* archive_dir/.walship */
	char meta_path[sizeof(((struct store *)0)->path) + 16];
	struct wal_decoder dec;
	bool dec_on;
	uint64_t fed_end; /* the end of the newest WAL fed, where the decoder is to get */
	bool stuck; /* the last call moved the decoder nowhere (it waits for news) */
	uint64_t index_start; /* the first LSN decoded */
	uint32_t tli; /* the timeline decoding began on: the stored segments' names */
	struct commit *commits;
	size_t ncommits, cap;
	/* WAL whose commits are not all in the index (note_hole()): those that left it
	 * because it was full (SENDLIMIT_MAX_COMMITS), WAL that did not decode; the oldest
	 * two joined into one when more come */
	struct {
		uint64_t start, end;
	} holes[SENDLIMIT_HOLES];
	unsigned int nholes;
	bool overflow_logged;
	struct delay delays[SENDLIMIT_MAX_DELAYS];
	unsigned int ndelays;
	struct hold holds[SENDLIMIT_MAX_HOLDS];
	unsigned int nholds;
	int64_t next_due_us; /* the earliest time a delay's boundary moves, INT64_MAX none */
	uint64_t errors_logged;
};

/* The index of the first commit at or after @lsn (ncommits: none).  Commits are
 * indexed in WAL order, as decoded: a binary search, not a walk through millions. */
static size_t commit_lower_bound(const struct sendlimit *sl, uint64_t lsn)
{
	size_t lo = 0, hi = sl->ncommits;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sl->commits[mid].lsn < lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The index starts again, empty: no search of a hold resumes in it. */
static void index_emptied(struct sendlimit *sl)
{
	sl->ncommits = 0;
	for (unsigned int i = 0; i < sl->nholds; i++)
		sl->holds[i].before_from = 0;
}

/* The first @k commits leave the index: for the delays they were due for, their end is
 * kept; for the others, the WAL they cover is delayed by its segments' times. */
static void fold(struct sendlimit *sl, size_t k)
{
	for (unsigned int i = 0; i < sl->ndelays; i++) {
		struct delay *d = &sl->delays[i];
		size_t due = d->idx < k ? d->idx : k; /* of the k, those due for it */

		if (due)
			d->folded_end = sl->commits[due - 1].end_lsn;
		d->idx -= due;
	}
	for (unsigned int i = 0; i < sl->nholds; i++) {
		struct hold *h = &sl->holds[i];

		h->before_from = h->before_from > k ? h->before_from - k : 0;
	}
	memmove(sl->commits, sl->commits + k, (sl->ncommits - k) * sizeof(*sl->commits));
	sl->ncommits -= k;
	sl->next_due_us = INT64_MIN; /* the segments before the index reach further */
}

/*
 * The commits in [@start, @end) are not all known (they left the full index, WAL that
 * could not be decoded, a commit with no room to note it): a hold released --before
 * whose search would pass over them stays held (hole_between()), for a commit it never
 * saw may be the one it looks for.  Until the index starts again.
 */
static void note_hole(struct sendlimit *sl, uint64_t start, uint64_t end)
{
	if (sl->nholes == SENDLIMIT_HOLES) {
		/* the oldest two as one: it covers more, never less */
		if (sl->holes[1].start > sl->holes[0].start)
			sl->holes[1].start = sl->holes[0].start;
		if (sl->holes[1].end < sl->holes[0].end)
			sl->holes[1].end = sl->holes[0].end;
		memmove(&sl->holes[0], &sl->holes[1], sizeof(sl->holes[0]) * --sl->nholes);
	}
	sl->holes[sl->nholes].start = start;
	sl->holes[sl->nholes++].end = end;
}

/* Whether a hole overlaps [@lo, @hi). */
static bool hole_between(const struct sendlimit *sl, uint64_t lo, uint64_t hi)
{
	for (unsigned int i = 0; i < sl->nholes; i++)
		if (sl->holes[i].end > lo && sl->holes[i].start < hi)
			return true;
	return false;
}

/* The index is full: its older half leaves it at once (one move for half of its length,
 * not one per commit), due or not (said once per start of the index). */
static void drop_older_half(struct sendlimit *sl)
{
	size_t k = sl->ncommits / 2;

	if (!sl->overflow_logged)
		log_warning("delayed and held standbys: %zu commits are not due yet, the most "
			    "kept; the older half is delayed by its segments' times instead",
			    sl->ncommits);
	sl->overflow_logged = true;
	note_hole(sl, 0, sl->commits[k - 1].end_lsn);
	fold(sl, k);
}

static void note_commit(void *arg, const struct wal_xact_end *x)
{
	struct sendlimit *sl = arg;

	if (x->kind != WAL_XACT_COMMIT && x->kind != WAL_XACT_COMMIT_PREPARED)
		return;
	if (sl->ncommits == sl->cap) {
		size_t cap = sl->cap ? sl->cap * 2 : 1024;
		struct commit *c;

		if (cap <= SENDLIMIT_MAX_COMMITS && (c = realloc(sl->commits, cap * sizeof(*c)))) {
			sl->commits = c;
			sl->cap = cap;
		} else if (sl->ncommits < 2) {
			/* no room even for the first (out of memory): a hole in what is known */
			note_hole(sl, x->lsn, x->end_lsn);
			return;
		} else {
			drop_older_half(sl);
		}
	}
	sl->commits[sl->ncommits++] = (struct commit){ x->lsn, x->end_lsn, x->xact_time };
	/* a newly known commit may be due already (or set the timer) */
	sl->next_due_us = INT64_MIN;
}

static bool active(const struct sendlimit *sl)
{
	return sl->ndelays || sl->nholds;
}

/* Fold in the commits due for every delay and before every hold. */
static void prune(struct sendlimit *sl)
{
	size_t k = sl->ncommits;

	for (unsigned int i = 0; i < sl->ndelays; i++)
		if (sl->delays[i].idx < k)
			k = sl->delays[i].idx;
	for (unsigned int i = 0; i < sl->nholds; i++) {
		size_t held = commit_lower_bound(sl, sl->holds[i].lsn);

		/* a commit the hold's position cuts is one of its own (sendlimit_for()) */
		if (held > 0 && sl->commits[held - 1].end_lsn > sl->holds[i].lsn)
			held--;
		if (held < k)
			k = held;
	}
	if (k < 1024 || k < sl->ncommits / 2)
		return;
	fold(sl, k); /* due for every delay */
}

/* Nothing known due for @d: what the index holds is looked at again. */
static void delay_reset(struct delay *d)
{
	d->idx = 0;
	d->folded_end = 0;
	d->seg_end = 0;
	d->seg_known = false;
	d->seg_next_us = INT64_MAX;
}

/* A reload keeps what is known due for a delay of the same standby that did not grow. */
static void parse_delays(struct sendlimit *sl, const char *text)
{
	struct delay old[SENDLIMIT_MAX_DELAYS];
	unsigned int nold = sl->ndelays;
	const char *p = text;

	memcpy(old, sl->delays, sizeof(old));
	sl->ndelays = 0;
	while (*p && sl->ndelays < SENDLIMIT_MAX_DELAYS) {
		const char *colon = strchr(p, ':'), *end = strchr(p, ',');
		struct delay *d = &sl->delays[sl->ndelays];
		long long ms;

		if (!end)
			end = p + strlen(p);
		if (!colon || colon > end)
			break; /* checked by the config already */
		snprintf(d->app, sizeof(d->app), "%.*s", (int)(colon - p), p);
		if (config_standby_delay(text, d->app, &ms) == 0) {
			d->us = ms * 1000;
			delay_reset(d);
			for (unsigned int i = 0; i < nold; i++) {
				if (!strcmp(old[i].app, d->app) && old[i].us >= d->us) {
					int64_t us = d->us;

					*d = old[i];
					d->us = us;
					break;
				}
			}
			sl->ndelays++;
		}
		p = *end ? end + 1 : end;
	}
	sl->next_due_us = INT64_MIN;
}

static struct delay *delay_find(struct sendlimit *sl, const char *app)
{
	for (unsigned int i = 0; i < sl->ndelays; i++)
		if (!strcmp(sl->delays[i].app, app))
			return &sl->delays[i];
	return NULL;
}

static struct hold *hold_find(struct sendlimit *sl, const char *app)
{
	for (unsigned int i = 0; i < sl->nholds; i++)
		if (!strcmp(sl->holds[i].app, app))
			return &sl->holds[i];
	return NULL;
}

/* UPTO's line says where it was held, then the limit ("upto_from"); a line "upto LIMIT
 * ..." of the builds before, which kept no held position, is read as held there. */
static const char *const hold_words[] = { "at", "before", "upto_from" };

/* Write the holds file: one "MODE LSN VALUE APP" line per hold, VALUE the time of BEFORE
 * and the limit of UPTO (durability rule 2's temporary file, fsync, rename, directory
 * fsync, through durable_put()). */
static int holds_save(struct sendlimit *sl)
{
	struct durable_dir dir = { .fd = sl->meta_fd, .path = sl->meta_path };
	char buf[SENDLIMIT_MAX_HOLDS * (PGWIRE_MAX_NAME + 64)];
	size_t len = 0;

	for (unsigned int i = 0; i < sl->nholds; i++) {
		const struct hold *h = &sl->holds[i];

		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"%s %" PRIu64 " %" PRId64 " %s\n", hold_words[h->mode],
					h->lsn, h->mode == HOLD_UPTO ? (int64_t)h->upto : h->time,
					h->app);
	}
	return durable_put(&dir, SENDLIMIT_HOLDS_FILE, buf, len, 0); /* logs */
}

/* The holds saved before a restart.  Returns 0 (none saved is none held), or -errno when
 * the file cannot be read whole (logged): walshipd then does not start, as for its slots,
 * rather than stream a held standby freely and let retention remove what it holds. */
static int holds_load(struct sendlimit *sl)
{
	char line[PGWIRE_MAX_NAME + 80];
	FILE *f;
	int fd = openat(sl->meta_fd, SENDLIMIT_HOLDS_FILE, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || !(f = fdopen(fd, "r"))) {
		ret = -errno;
		log_error("could not read file \"%s/%s\": %s", sl->meta_path, SENDLIMIT_HOLDS_FILE,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	while (fgets(line, sizeof(line), f) && sl->nholds < SENDLIMIT_MAX_HOLDS) {
		struct hold *h = &sl->holds[sl->nholds];
		char word[16];
		int name_at = 0;

		line[strcspn(line, "\n")] = '\0';
		/* The name is what follows the one blank after VALUE, as saved: it may begin
		 * with blanks, or be empty (an application_name of ""). */
		if (sscanf(line, "%15s %" SCNu64 " %" SCNd64 "%n", word, &h->lsn, &h->time,
			   &name_at) < 3 ||
		    !name_at || line[name_at] != ' ') {
			log_warning("ignoring a malformed line in \"%s\": \"%s\"",
				    SENDLIMIT_HOLDS_FILE, line);
			continue;
		}
		h->upto = 0;
		h->before_from = 0;
		if (!strcmp(word, "before")) {
			h->mode = HOLD_BEFORE;
		} else if (!strcmp(word, "upto_from")) {
			h->mode = HOLD_UPTO;
			h->upto = (uint64_t)h->time;
			h->time = 0;
		} else if (!strcmp(word, "upto")) {
			h->mode = HOLD_UPTO;
			h->upto = h->lsn;
			h->time = 0;
		} else {
			h->mode = HOLD_AT;
		}
		snprintf(h->app, sizeof(h->app), "%s", line + name_at + 1);
		/* held by a build that took application_name as it came: cleaned as a standby's
		 * name now is, so that the hold still matches it */
		pgwire_clean_ascii(h->app);
		log_log("standby \"%s\" is held (%s %X/%08X), as before the restart", h->app, word,
			(unsigned int)(h->lsn >> 32), (unsigned int)h->lsn);
		sl->nholds++;
	}
	if (ferror(f)) {
		ret = -EIO;
		log_error("could not read file \"%s/%s\": %s", sl->meta_path, SENDLIMIT_HOLDS_FILE,
			  strerror(EIO));
	}
	fclose(f);
	return ret;
}

struct sendlimit *sendlimit_new(const struct store *store, const char *standby_delay)
{
	struct sendlimit *sl = calloc(1, sizeof(*sl));

	if (!sl) {
		log_error("out of memory");
		return NULL;
	}
	sl->store = store;
	snprintf(sl->meta_path, sizeof(sl->meta_path), "%s/.walship", store->path);
	sl->meta_fd = durable_dir_open(store->dir_fd, store->path, ".walship"); /* logs */
	if (sl->meta_fd < 0) {
		free(sl);
		return NULL;
	}
	parse_delays(sl, standby_delay);
	if (holds_load(sl) < 0) {
		close(sl->meta_fd);
		free(sl);
		return NULL;
	}
	return sl;
}

void sendlimit_reload(struct sendlimit *sl, const char *standby_delay)
{
	if (sl)
		parse_delays(sl, standby_delay);
}

/* After feeding the decoder: say once what it could not decode, and mark it as a hole (the
 * rest of the segment it was in is passed over). */
static void feed_done(struct sendlimit *sl)
{
	if (sl->dec.errors > sl->errors_logged) {
		uint64_t seg = sl->store->id.seg_size;

		log_warning("could not decode WAL for delayed and held standbys: %s",
			    sl->dec.message);
		sl->errors_logged = sl->dec.errors;
		if (seg)
			note_hole(sl, sl->dec.damaged_lsn, (sl->dec.damaged_lsn / seg + 1) * seg);
	}
}

/* Feed [d.next_lsn, @upto) of @fd, which holds the segment starting at @seg_lsn. */
static void feed_fd(struct sendlimit *sl, int fd, uint64_t seg_lsn, uint64_t upto)
{
	static uint8_t buf[SENDLIMIT_READ];

	while (sl->dec.next_lsn < upto) {
		uint64_t off = sl->dec.next_lsn - seg_lsn, want = upto - sl->dec.next_lsn;
		ssize_t got = pread(fd, buf, want < sizeof(buf) ? want : sizeof(buf), (off_t)off);

		if (got <= 0)
			return; /* short: the rest comes with the next news */
		if (wal_decoder_feed(&sl->dec, sl->dec.next_lsn, buf, (size_t)got) < 0)
			break; /* (out of memory: counted as damage, the rest of the segment skipped) */
	}
	feed_done(sl);
}

/* (Re)start the decoder at @lsn, a segment boundary: the commits known start there. */
static int decoder_start(struct sendlimit *sl, uint64_t lsn, uint32_t tli)
{
	wal_decoder_end(&sl->dec);
	sl->dec_on = false;
	sl->fed_end = lsn;
	if (wal_decoder_begin(&sl->dec, sl->store->id.seg_size, sl->store->id.block_size, lsn,
			      note_commit, sl) < 0)
		return -EINVAL;
	sl->dec_on = true;
	/* what was known before does not join what follows: forget it */
	sl->errors_logged = 0; /* (the new decoder counts from 0) */
	sl->index_start = lsn;
	sl->tli = tli;
	index_emptied(sl);
	sl->nholes = 0;
	sl->overflow_logged = false;
	for (unsigned int i = 0; i < sl->ndelays; i++)
		delay_reset(&sl->delays[i]);
	sl->next_due_us = INT64_MIN;
	return 0;
}

static void wal_feed(struct sendlimit *sl, const char *name, int dir_fd, const char *file,
		     uint64_t durable, const uint8_t *image);

void sendlimit_wal(struct sendlimit *sl, const char *name, int dir_fd, const char *file,
		   uint64_t durable, const uint8_t *image)
{
	uint64_t before = sl && sl->dec_on ? sl->dec.next_lsn : 0;
	uint32_t seg_size = sl ? sl->store->id.seg_size : 0;

	wal_feed(sl, name, dir_fd, file, durable, image);
	if (sl)
		sl->stuck = !sl->dec_on || sl->dec.next_lsn == before;
	/* decoded into another segment: with no commit known, the segments before what is
	 * indexed reach further, for the timer to look at */
	if (sl && sl->dec_on && seg_size && sl->dec.next_lsn / seg_size != before / seg_size)
		sl->next_due_us = INT64_MIN;
}

static void wal_feed(struct sendlimit *sl, const char *name, int dir_fd, const char *file,
		     uint64_t durable, const uint8_t *image)
{
	uint32_t seg_size = sl ? sl->store->id.seg_size : 0;
	uint64_t segno, seg_lsn, upto, budget = SENDLIMIT_CATCH_UP_STEP;
	struct wal_name wn;
	int fd;

	if (!sl || !seg_size || wal_name_parse(name, &wn) < 0 || wn.kind != WAL_FILE_SEGMENT ||
	    wal_name_segno(&wn, seg_size, &segno) < 0)
		return;
	if (!active(sl)) {
		/* nobody delayed or held: forget, and start afresh when someone is */
		if (sl->dec_on)
			wal_decoder_end(&sl->dec);
		sl->dec_on = false;
		sl->errors_logged = 0;
		index_emptied(sl);
		sl->index_start = 0;
		for (unsigned int i = 0; i < sl->ndelays; i++)
			delay_reset(&sl->delays[i]);
		return;
	}
	seg_lsn = segno * seg_size;
	if (sl->dec_on && wn.timeline < sl->tli)
		return; /* an older timeline's, stored late: what it holds is known or gone */
	if (sl->dec_on && wn.timeline > sl->tli && decoder_start(sl, seg_lsn, wn.timeline) < 0)
		return; /* a new timeline: its segments' names from here on */
	if (sl->dec_on && segno > sl->dec.next_lsn / seg_size + SENDLIMIT_MAX_BEHIND) {
		/* too far behind to catch up: start again here */
		for (unsigned int i = 0; i < sl->nholds; i++)
			if (sl->holds[i].mode == HOLD_BEFORE && sl->holds[i].lsn < seg_lsn)
				log_warning(
					"standby \"%s\" stays held at %X/%08X: the commits after "
					"it are not known (decoding fell %d segments behind the "
					"newest WAL and starts again there)",
					sl->holds[i].app, (unsigned int)(sl->holds[i].lsn >> 32),
					(unsigned int)sl->holds[i].lsn, SENDLIMIT_MAX_BEHIND);
		if (decoder_start(sl, seg_lsn, wn.timeline) < 0)
			return;
	}
	if (!sl->dec_on) {
		uint64_t first = segno;

		/* from where the oldest hold is: release --before looks for commits there,
		 * unless that is more stored segments back than are read on the event loop
		 * at once (a hold kept for hours, then a restart): then from here, and that
		 * hold stays held rather than guess */
		for (unsigned int i = 0; i < sl->nholds; i++)
			if (sl->holds[i].lsn && sl->holds[i].lsn / seg_size < first &&
			    segno - sl->holds[i].lsn / seg_size <= SENDLIMIT_MAX_CATCH_UP)
				first = sl->holds[i].lsn / seg_size;
		if (decoder_start(sl, first * seg_size, wn.timeline) < 0)
			return;
	}
	if (sl->fed_end < seg_lsn + durable)
		sl->fed_end = seg_lsn + durable;
	/* catch up through the stored segments in between, then @name's new bytes: at most
	 * SENDLIMIT_CATCH_UP_STEP of them in all (sendlimit_catching_up(): the rest later) */
	for (uint64_t s = sl->dec.next_lsn / seg_size; s < segno; s = sl->dec.next_lsn / seg_size) {
		char prev[WAL_NAME_MAX + 1];
		uint64_t from = sl->dec.next_lsn, end = (s + 1) * seg_size;
		int pfd;

		if (!budget)
			return;
		wal_name_format_segment(prev, sizeof(prev), wn.timeline, s, seg_size);
		pfd = openat(sl->store->dir_fd, prev, O_RDONLY | O_CLOEXEC);
		if (pfd < 0) {
			/* Still being stored (written buffered, its last bytes are durable only
			 * with its fsync before the rename, which this segment's first group
			 * commit may precede): its stored hook feeds it, then this one's next
			 * growth.  Taken for a gap, it would forget the commits known and let
			 * a delay's boundary jump to this segment. */
			if (store_has_incoming(sl->store, prev))
				return;
			if (decoder_start(sl, seg_lsn, wn.timeline) <
			    0) /* a gap: start again at @name */
				return;
			break;
		}
		if (end - from > budget)
			end = from + budget;
		feed_fd(sl, pfd, s * seg_size, end);
		close(pfd);
		if (sl->dec.next_lsn < end)
			return; /* short, or not decodable: the next news of the WAL tries again */
		budget -= end - from;
	}
	if (sl->fed_end < seg_lsn + durable) /* (a gap above started decoding again here) */
		sl->fed_end = seg_lsn + durable;
	if (sl->dec.next_lsn / seg_size != segno || sl->dec.next_lsn >= seg_lsn + durable ||
	    !budget)
		return;
	upto = seg_lsn + durable;
	if (upto - sl->dec.next_lsn > budget)
		upto = sl->dec.next_lsn + budget;
	if (image) {
		uint64_t from = sl->dec.next_lsn;

		wal_decoder_feed(&sl->dec, from, image + (from - seg_lsn), (size_t)(upto - from));
		feed_done(sl);
		prune(sl);
		return;
	}
	fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return; /* renamed meanwhile: the stored hook follows */
	feed_fd(sl, fd, seg_lsn, upto);
	close(fd);
	prune(sl);
}

/* How many of the commits are due for @d at @now_us (from its cursor on). */
static size_t delay_due(const struct sendlimit *sl, const struct delay *d, int64_t now_us)
{
	int64_t due = pgrepl_time_from_unix_us(now_us) - d->us;
	size_t idx = d->idx;

	while (idx < sl->ncommits && sl->commits[idx].time <= due)
		idx++;
	return idx;
}

/* @d's boundary with @idx commits due. */
static uint64_t delay_boundary(const struct sendlimit *sl, const struct delay *d, size_t idx)
{
	if (idx)
		return sl->commits[idx - 1].end_lsn;
	return d->folded_end > d->seg_end ? d->folded_end : d->seg_end;
}

/* Stored segment @segno's last write, in Unix µs; -1 when it is not stored. */
static int64_t segment_written_us(const struct sendlimit *sl, uint64_t segno)
{
	char name[WAL_NAME_MAX + 1];
	struct stat st;

	/* Under the index's timeline, or the newest of the few before it: after a switch the
	 * segments before the fork are stored under the timeline they were written on (the
	 * build before found none there, and held a delayed standby for a whole delay more). */
	for (uint32_t t = sl->tli; t >= 1 && t + SENDLIMIT_TLI_LOOK > sl->tli; t--) {
		wal_name_format_segment(name, sizeof(name), t, segno, sl->store->id.seg_size);
		if (fstatat(sl->store->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			return (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
	}
	return -1;
}

/*
 * Move @d's segment boundary (struct delay) over the stored segments before the commits
 * the index holds that are due at @now_us.  The first time since the index (re)started,
 * the newest due one is looked for newest first (at most SENDLIMIT_LOOK_BACK); then
 * the next ones in order, up to the first not due yet, whose due time is kept for the
 * timer.  Missing segments are passed over, once: a later one due says the WAL before
 * it is (one stored late, or being stored, holds older WAL than it).
 */
static void delay_segments(const struct sendlimit *sl, struct delay *d, int64_t now_us)
{
	uint32_t seg_size = sl->store->id.seg_size;
	uint64_t last = (sl->ncommits ? sl->commits[0].lsn : sl->dec.next_lsn) / seg_size;
	int64_t due = now_us - d->us;

	d->seg_next_us = INT64_MAX;
	if (!sl->dec_on || !seg_size)
		return;
	if (!d->seg_known) {
		uint64_t s = last,
			 floor = last > SENDLIMIT_LOOK_BACK ? last - SENDLIMIT_LOOK_BACK : 0;
		unsigned int missing = 0;

		/* none due: the oldest stored one seen is the first to become due (those
		 * before it were not looked at, and are older still) */
		d->seg_next = last;
		while (s > floor && missing < SENDLIMIT_LOOK_GAP) {
			int64_t at = segment_written_us(sl, --s);

			if (at < 0) {
				missing++;
				continue;
			}
			missing = 0;
			d->seg_next = s;
			if (at <= due) {
				d->seg_end = (s + 1) * seg_size;
				d->seg_next = s + 1;
				break;
			}
		}
		d->seg_known = true;
	}
	for (; d->seg_next < last; d->seg_next++) {
		int64_t at = segment_written_us(sl, d->seg_next);

		if (at < 0)
			continue;
		if (at > due) {
			d->seg_next_us = at + d->us;
			break;
		}
		d->seg_end = (d->seg_next + 1) * seg_size;
	}
}

uint64_t sendlimit_for(struct sendlimit *sl, const char *app, int64_t now_us)
{
	uint64_t limit = SENDLIMIT_NONE;
	struct delay *d;
	struct hold *h;

	if (!sl)
		return limit;
	d = delay_find(sl, app);
	if (d)
		limit = delay_boundary(sl, d, delay_due(sl, d, now_us));
	h = hold_find(sl, app);
	if (h) {
		uint64_t at = h->mode == HOLD_UPTO ? h->upto : h->lsn;

		if (h->mode == HOLD_BEFORE && (!sl->dec_on || sl->index_start > h->lsn)) {
			/* the commits after the hold are not known: stay held */
		} else if (h->mode == HOLD_BEFORE) {
			size_t i = commit_lower_bound(sl, h->lsn);

			/* A commit record the hold position falls inside (held at a flush
			 * position that cut it) is one of those after the hold: its rest is
			 * not sent when its time is at or after the release's. */
			if (i > 0 && sl->commits[i - 1].end_lsn > h->lsn)
				i--;
			/* the first commit at or after the time (commit times need not grow
			 * with the WAL: one by one): up to its start, not before the hold */
			if (h->before_from > i)
				i = h->before_from;
			while (i < sl->ncommits && sl->commits[i].time < h->time)
				i++;
			h->before_from = i;
			if (i < sl->ncommits)
				at = sl->commits[i].lsn > h->lsn ? sl->commits[i].lsn : h->lsn;
			else if (sl->dec_on && sl->dec.end_lsn > at)
				at = sl->dec.end_lsn; /* none yet: up to what was decoded */
			/* commits not all known between the hold and there: stay held */
			if (hole_between(sl, h->lsn, at))
				at = h->lsn;
		}
		if (at < limit)
			limit = at;
	}
	return limit;
}

uint64_t sendlimit_floor(const struct sendlimit *sl)
{
	uint64_t floor = UINT64_MAX;

	for (unsigned int i = 0; sl && i < sl->nholds; i++)
		if (sl->holds[i].lsn < floor)
			floor = sl->holds[i].lsn;
	return floor;
}

bool sendlimit_indexing(const struct sendlimit *sl)
{
	return sl && sl->dec_on;
}

bool sendlimit_catching_up(const struct sendlimit *sl)
{
	return sl && sl->dec_on && !sl->stuck && sl->dec.next_lsn < sl->fed_end;
}

bool sendlimit_due(struct sendlimit *sl, int64_t now_us)
{
	int64_t next = INT64_MAX;
	bool moved = false;

	if (!sl || !sl->ndelays || now_us < sl->next_due_us)
		return false;
	for (unsigned int i = 0; i < sl->ndelays; i++) {
		struct delay *d = &sl->delays[i];
		uint64_t before = delay_boundary(sl, d, d->idx);

		d->idx = delay_due(sl, d, now_us);
		delay_segments(sl, d, now_us);
		moved |= delay_boundary(sl, d, d->idx) != before;
		if (d->idx < sl->ncommits) {
			int64_t at = pgrepl_time_to_unix_us(sl->commits[d->idx].time) + d->us;

			if (at < next)
				next = at;
		}
		if (d->seg_next_us < next)
			next = d->seg_next_us;
	}
	sl->next_due_us = next;
	return moved;
}

int sendlimit_hold(struct sendlimit *sl, const char *app, uint64_t lsn)
{
	struct hold *h;
	int ret;

	if (hold_find(sl, app))
		return -EEXIST;
	if (sl->nholds == SENDLIMIT_MAX_HOLDS)
		return -EOVERFLOW;
	h = &sl->holds[sl->nholds++];
	memset(h, 0, sizeof(*h));
	snprintf(h->app, sizeof(h->app), "%s", app);
	h->mode = HOLD_AT;
	h->lsn = lsn;
	ret = holds_save(sl);
	if (ret < 0)
		sl->nholds--;
	return ret;
}

int sendlimit_release(struct sendlimit *sl, const char *app, enum sendlimit_release how,
		      int64_t value)
{
	struct hold *h = hold_find(sl, app), saved;
	int ret;

	if (!h)
		return -ENOENT;
	saved = *h;
	if (how == SENDLIMIT_RELEASE_ALL) {
		*h = sl->holds[--sl->nholds];
	} else if (how == SENDLIMIT_RELEASE_BEFORE) {
		h->mode = HOLD_BEFORE;
		h->time = value;
		h->before_from = 0;
	} else {
		h->mode = HOLD_UPTO;
		h->upto = (uint64_t)value;
	}
	ret = holds_save(sl);
	if (ret < 0) {
		if (how == SENDLIMIT_RELEASE_ALL)
			sl->holds[sl->nholds++] = saved;
		else
			*h = saved;
	}
	return ret;
}

void sendlimit_fill_status(struct sendlimit *sl, const char *app, int64_t now_us,
			   struct status_standby *o)
{
	struct delay *d;
	struct hold *h;

	o->delay_ms = -1;
	o->send_limit = SENDLIMIT_NONE;
	o->hold[0] = '\0';
	if (!sl)
		return;
	d = delay_find(sl, app);
	if (d)
		o->delay_ms = d->us / 1000;
	h = hold_find(sl, app);
	if (h) {
		char lsn[PGREPL_LSN_TEXT];

		pgrepl_lsn_format(h->lsn, lsn, sizeof(lsn));
		if (h->mode == HOLD_BEFORE) {
			int64_t us = pgrepl_time_to_unix_us(h->time);
			time_t secs = (time_t)(us / 1000000);
			char when[32];
			struct tm tm;

			gmtime_r(&secs, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
			snprintf(o->hold, sizeof(o->hold),
				 "released before %s.%06d+00 (held at %s)", when,
				 (int)(us % 1000000), lsn);
		} else if (h->mode == HOLD_UPTO) {
			char upto[PGREPL_LSN_TEXT];

			pgrepl_lsn_format(h->upto, upto, sizeof(upto));
			snprintf(o->hold, sizeof(o->hold), "released up to %s (held at %s)", upto,
				 lsn);
		} else {
			snprintf(o->hold, sizeof(o->hold), "held at %s", lsn);
		}
	}
	o->send_limit = sendlimit_for(sl, app, now_us);
}

void sendlimit_free(struct sendlimit *sl)
{
	if (!sl)
		return;
	wal_decoder_end(&sl->dec);
	free(sl->commits);
	if (sl->meta_fd >= 0)
		close(sl->meta_fd);
	free(sl);
}
