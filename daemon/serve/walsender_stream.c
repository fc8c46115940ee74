// SPDX-License-Identifier: MIT
/*
 * The walsender endpoint's streaming (walsender_int.h): what the store holds (timelines,
 * the durable end, the segments growing in .incoming), reading it through the ring into
 * CopyData, the standby's replies and its lags.
 */
#include "serve/walsender_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/codec.h"
#include "proto/pgrepl.h"
#include "serve/pgwire.h"
#include "serve/sendlimit.h"
#include "serve/slots.h"
#include "wal/name.h"

struct growing *serve_growing_find(struct serve *s, const char *name)
{
	for (unsigned int i = 0; i < SERVE_MAX_GROWING; i++)
		if (s->growing[i].name[0] && !strcmp(s->growing[i].name, name))
			return &s->growing[i];
	return NULL;
}

/* Record @name's durable length: its entry, a free one, or the oldest segment's. */
void serve_growing_set(struct serve *s, const char *name, const char *tmp_name, uint64_t durable,
		       const uint8_t *image)
{
	struct growing *g = serve_growing_find(s, name);

	for (unsigned int i = 0; !g && i < SERVE_MAX_GROWING; i++)
		if (!s->growing[i].name[0])
			g = &s->growing[i];
	if (!g) {
		/* every entry taken: the oldest name (timeline, then segment) goes */
		g = &s->growing[0];
		for (unsigned int i = 1; i < SERVE_MAX_GROWING; i++)
			if (strcmp(s->growing[i].name, g->name) < 0)
				g = &s->growing[i];
	}
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(g->tmp_name, sizeof(g->tmp_name), "%s", tmp_name);
	g->durable = durable;
	g->image = image;
}

/* ---- what the store holds ---- */

/* The segments of the newest timeline held (struct serve's held): the index of the first
 * run that ends at or after @segno, nheld when none does. */
static size_t serve_held_find(const struct serve *s, uint64_t segno)
{
	size_t lo = 0, hi = s->nheld;

	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;

		if (s->held[m].hi < segno)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

static bool serve_held_has(const struct serve *s, uint64_t segno)
{
	size_t i = serve_held_find(s, segno);

	return i < s->nheld && s->held[i].lo <= segno && segno < s->held[i].hi;
}

/* Segment @segno of the newest timeline is stored: a run grows (two may join), or a new
 * one begins.  Out of memory it is left out: its removal would then be waited for, as
 * for a segment still to come. */
static void serve_held_add(struct serve *s, uint64_t segno)
{
	size_t i = serve_held_find(s, segno);
	struct serve_run *r = s->held;

	if (i < s->nheld && r[i].lo <= segno && segno < r[i].hi)
		return;
	if (i < s->nheld && r[i].hi == segno) {
		r[i].hi++;
		if (i + 1 < s->nheld && r[i + 1].lo == r[i].hi) {
			r[i].hi = r[i + 1].hi;
			memmove(&r[i + 1], &r[i + 2], (s->nheld - i - 2) * sizeof(*r));
			s->nheld--;
		}
		return;
	}
	if (i < s->nheld && r[i].lo == segno + 1) {
		r[i].lo = segno; /* (the run before ends before segno: none to join) */
		return;
	}
	if (s->nheld == s->held_cap) {
		size_t cap = s->held_cap ? s->held_cap * 2 : 8;
		struct serve_run *more = realloc(s->held, cap * sizeof(*more));

		if (!more) {
			log_error("out of memory");
			return;
		}
		s->held = r = more;
		s->held_cap = cap;
	}
	memmove(&r[i + 1], &r[i], (s->nheld - i) * sizeof(*r));
	r[i].lo = segno;
	r[i].hi = segno + 1;
	s->nheld++;
}

void serve_held_trim(struct serve *s, uint64_t segno)
{
	size_t i = serve_held_find(s, segno + 1); /* the first run ending after segno */

	memmove(&s->held[0], &s->held[i], (s->nheld - i) * sizeof(*s->held));
	s->nheld -= i;
	if (s->nheld && s->held[0].lo < segno)
		s->held[0].lo = segno;
}

void serve_note_stored(struct serve *s, const char *name)
{
	struct wal_name wn;
	uint64_t segno;

	if (wal_name_parse(name, &wn) == 0 && wn.kind == WAL_FILE_SEGMENT &&
	    wn.timeline == s->tli && s->store->id.seg_size &&
	    wal_name_segno(&wn, s->store->id.seg_size, &segno) == 0)
		serve_held_add(s, segno);
}

/* The history of timeline @tli, newer than the newest so far or the newest's own (its
 * segment came first), is stored: where that timeline begins (s->tli_start), and, newer,
 * the WAL on it ends, for now, where the previous one forked (what the new timeline
 * shares with it). */
static void serve_new_history(struct serve *s, uint32_t tli)
{
	char *text = malloc(WAL_HISTORY_MAX);
	ssize_t n = text ? wal_history_read(s->store->dir_fd, tli, text) : -ENOMEM;
	uint64_t fork = 0, start = 0;
	uint32_t child;

	if (n < 0 || wal_history_start(text, (size_t)n, &start) < 0)
		start = 0; /* unknown: its segments are waited for from the first */
	if (tli == s->tli) {
		s->tli_start = start;
		free(text);
		return;
	}
	if (n < 0 || wal_history_fork(text, (size_t)n, tli, s->tli, &fork, &child) < 0)
		fork = 0; /* not known until its first segment */
	free(text);
	s->tli = tli;
	s->tli_start = start;
	s->end_lsn = fork;
	s->nheld = 0; /* none of its segments yet */
}

/* A newer timeline (its history, or a segment of it, which may come first) is stored: the
 * standbys streaming an older one learn where it ends from the newest history, and get
 * the end of their timeline once they are sent WAL up to there. */
static void serve_new_timeline(struct serve *s)
{
	for (struct standby *sb = s->standbys, *next; sb; sb = next) {
		int ret;

		next = sb->next; /* sb_flush() may free @sb (out of memory) */
		if (sb->closing || sb->close_when_sent || sb->state != SB_STREAMING ||
		    sb->stop_lsn || sb->tli >= s->tli)
			continue;
		ret = sb_find_fork(sb, sb->tli, sb->next_lsn, true);
		if (ret == -EAGAIN)
			continue; /* its history is not stored yet: it waits for it */
		if (ret < 0) { /* answered, the stream ended */
			sb->close_when_sent = true;
			sb_flush(sb);
		}
	}
}

/* Take @name, stored or @durable bytes of it durable, into the newest timeline's end. */
void serve_note_wal(struct serve *s, const char *name, uint64_t durable, bool complete)
{
	struct wal_name wn;
	uint64_t segno, end;
	uint32_t seg_size = s->store->id.seg_size;

	if (wal_name_parse(name, &wn) < 0)
		return;
	if (wn.kind == WAL_FILE_HISTORY) {
		if (wn.timeline >= s->tli)
			serve_new_history(s, wn.timeline); /* also when a segment came first */
		if (wn.timeline == s->tli)
			serve_new_timeline(s);
		return;
	}
	if (wn.kind != WAL_FILE_SEGMENT || !seg_size || wal_name_segno(&wn, seg_size, &segno) < 0)
		return;
	if (!s->removed_known && segno < s->removed_below)
		s->removed_below = segno; /* holding none at start: the oldest taken since */
	end = segno * seg_size + (complete ? seg_size : durable);
	if (wn.timeline > s->tli) {
		s->tli = wn.timeline;
		s->tli_start = 0; /* until its history is stored */
		s->end_lsn = end;
		s->nheld = 0; /* (this one is added once stored: serve_note_stored()) */
		serve_new_timeline(s);
	} else if (wn.timeline == s->tli && end > s->end_lsn) {
		s->end_lsn = end;
	}
}

/* A segment serve_scan() found stored. */
struct scan_seg {
	uint32_t tli;
	uint64_t segno;
};

/* What serve_scan() found: the oldest segment on any timeline, and the segments stored
 * (the newest timeline's are known at the scan's end). */
struct scan_found {
	uint64_t oldest;
	struct scan_seg *seg;
	size_t n, cap;
};

/* Note @name (stored, or a kept partial when !@stored) in @f. */
static void scan_note(const struct serve *s, struct scan_found *f, const char *name, bool stored)
{
	struct wal_name wn;
	uint64_t segno;

	if (wal_name_parse(name, &wn) < 0 || wn.kind == WAL_FILE_HISTORY ||
	    !s->store->id.seg_size || wal_name_segno(&wn, s->store->id.seg_size, &segno) < 0)
		return;
	if (segno < f->oldest) /* (a .partial or .backup file too: its segment was here) */
		f->oldest = segno;
	if (!stored || wn.kind != WAL_FILE_SEGMENT)
		return;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct scan_seg *more = realloc(f->seg, cap * sizeof(*more));

		if (!more) { /* left out of held: its removal would be waited for */
			log_error("out of memory");
			return;
		}
		f->seg = more;
		f->cap = cap;
	}
	f->seg[f->n].tli = wn.timeline;
	f->seg[f->n++].segno = segno;
}

static int scan_seg_cmp(const void *a, const void *b)
{
	const struct scan_seg *x = a, *y = b;

	return x->segno < y->segno ? -1 : x->segno > y->segno;
}

/* At start: the newest timeline and segment of the store, its oldest segment (what is
 * older was removed, or never here: s->removed_below), the newest timeline's segments
 * (s->held) and its kept partials.  The one directory scan of the daemon's start, as
 * store_open() does its own. */
void serve_scan(struct serve *s)
{
	int fd = dup(s->store->dir_fd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char history[WAL_NAME_MAX + 1] = "";
	uint32_t newest_history = 0;
	struct scan_found found = { .oldest = UINT64_MAX };

	if (!dir) {
		if (fd >= 0)
			close(fd);
		log_warning("could not open directory \"%s\": %s", s->store->path, strerror(errno));
		return;
	}
	rewinddir(dir);
	while ((de = readdir(dir))) {
		struct wal_name wn;

		/* The newest history last, whatever the directory's order: where a timeline
		 * whose segments are not stored yet ends is the fork of the newest timeline
		 * that has some (noted before it, that timeline was unknown: its end was 0/0,
		 * and the older timeline's segments read after it were passed over). */
		if (wal_name_parse(de->d_name, &wn) == 0 && wn.kind == WAL_FILE_HISTORY) {
			if (wn.timeline > newest_history) {
				newest_history = wn.timeline;
				snprintf(history, sizeof(history), "%s", de->d_name);
			}
			continue;
		}
		scan_note(s, &found, de->d_name, true);
		serve_note_wal(s, de->d_name, 0, true);
	}
	closedir(dir);
	for (unsigned int i = 0; i < s->store->npartials; i++) {
		const struct store_partial *p = &s->store->partials[i];
		uint64_t servable = store_partial_servable(s->store->dir_fd, p);

		if (!servable)
			continue; /* a cut segment's bytes, all past its timeline's end */
		scan_note(s, &found, p->name, false);
		serve_note_wal(s, p->name, servable, false);
		serve_growing_set(s, p->name, p->tmp_name, servable, NULL);
	}
	if (newest_history)
		serve_note_wal(s, history, 0, true);
	if (found.oldest != UINT64_MAX) {
		s->removed_below = found.oldest;
		s->removed_known = true;
	}
	/* in order, each segment extends the last run, or begins one after a hole */
	if (found.n)
		qsort(found.seg, found.n, sizeof(*found.seg), scan_seg_cmp);
	for (size_t i = 0; i < found.n; i++)
		if (found.seg[i].tli == s->tli)
			serve_held_add(s, found.seg[i].segno);
	free(found.seg);
}

/* ---- streaming ---- */

void sb_stream_end(struct standby *sb)
{
	if (sb->file_fd >= 0 && !sb->file_busy) {
		close(sb->file_fd);
		sb->file_fd = -1;
	}
	sb->state = SB_QUERY;
	sb->waiting = false;
	sb->gen++;
	if (sb->slot_p) {
		sb->slot_p->active_pid = 0;
		sb->slot_p = NULL;
	}
}

/* WAL up to next_lsn was just queued: note when (one sample per millisecond at most). */
static void sb_lag_sample(struct standby *sb)
{
	lag_ring_add(&sb->lag, sb->next_lsn, clock_now_ms(), 1);
}

/* Position @k (0 write, 1 flush, 2 apply) reported at @pos: its lag is the time since the
 * newest sample it reached was sent, if that sample is new to it. */
static void sb_lag_report(struct standby *sb, unsigned int k, uint64_t pos)
{
	struct lag_ring_sample reached;

	if (!lag_ring_reached(&sb->lag, pos, sb->lag_seen[k], &reached))
		return;
	sb->lag_seen[k] = reached.lsn;
	sb->lag_ms[k] = clock_now_ms() - reached.ms;
}

/* The samples every position the standby reports has used go (one it reports as 0, as
 * pg_receivewal does apply, uses none and waits for none). */
static void sb_lag_prune(struct standby *sb)
{
	const uint64_t pos[3] = { sb->write, sb->flush, sb->apply };
	uint64_t floor = UINT64_MAX;

	for (unsigned int k = 0; k < 3; k++)
		if (pos[k] && sb->lag_seen[k] < floor)
			floor = sb->lag_seen[k];
	if (floor != UINT64_MAX)
		lag_ring_prune(&sb->lag, floor);
}

void sb_copydata(struct standby *sb, const struct pgwire_msg *m)
{
	struct pgrepl_status st;
	struct pgrepl_hs_feedback hs;

	if (m->len && m->body[0] == PGREPL_MSG_STATUS &&
	    pgrepl_parse_status(m->body, m->len, &st) == 0) {
		sb->write = st.write;
		sb->flush = st.flush;
		sb->apply = st.apply;
		if (sb->tli && st.apply &&
		    msg_applied_newer(sb->s->applied_tli, sb->s->applied_lsn, sb->tli, st.apply)) {
			sb->s->applied_tli = sb->tli;
			sb->s->applied_lsn = st.apply;
			if (sb->s->applied_fn)
				sb->s->applied_fn(sb->s->applied_arg, sb->tli, st.apply);
		}
		/* PhysicalConfirmReceivedLocation(): what it flushed it never asks for again */
		if (sb->slot_p && st.flush)
			serve_slots_advance(&sb->s->slots, sb->slot_p, st.flush, sb->tli);
		sb_lag_report(sb, 0, st.write);
		sb_lag_report(sb, 1, st.flush);
		sb_lag_report(sb, 2, st.apply);
		sb_lag_prune(sb);
		if (st.reply_requested && !sb->copy_done_sent) /* ProcessStandbyReplyMessage() */
			pgwire_keepalive(&sb->out, sb->s->end_lsn, pgrepl_time_now(), false);
		return;
	}
	if (m->len && m->body[0] == PGREPL_MSG_HS_FEEDBACK &&
	    pgrepl_parse_hs_feedback(m->body, m->len, &hs) == 0) {
		/* shown in status; there is no primary here for them to hold back yet */
		sb->xmin = hs.xmin;
		sb->catalog_xmin = hs.catalog_xmin;
		return;
	}
	/* As walsender.c ProcessStandbyMessage() reads it: an ERROR from pqformat.c for a
	 * message too short (the stream ends, the connection goes on), and for a type it
	 * does not know, the connection closed with no answer (COMMERROR, then exit). */
	log_log("invalid standby message from %s", sb->addr);
	if (!m->len)
		sb_error(sb, "ERROR", "08P01", "no data left in message");
	else if (m->body[0] == PGREPL_MSG_STATUS || m->body[0] == PGREPL_MSG_HS_FEEDBACK)
		sb_error(sb, "ERROR", "08P01", "insufficient data left in message");
	else
		sb->close_when_sent = true;
}

/* The standby ended the COPY (walsender.c: CopyDone, then both CommandCompletes). */
void sb_copy_done(struct standby *sb)
{
	if (!sb->copy_done_sent)
		pgwire_copy_done(&sb->out);
	sb->copy_done_sent = true;
	if (sb->stop_lsn && sb->next_lsn >= sb->stop_lsn) {
		/* the end of the timeline: the next one and where it starts (section 3.9 of
		 * walsender.c's StartReplication(): a row, then both CommandCompletes) */
		static const char *const names[] = { "next_tli", "next_tli_startpos" };
		static const uint32_t oids[] = { PGWIRE_OID_INT8, PGWIRE_OID_TEXT };
		char next[12], pos[PGREPL_LSN_TEXT];
		const char *values[2] = { next, pos };
		size_t lens[2];

		snprintf(next, sizeof(next), "%u", sb->next_tli);
		pgrepl_lsn_format(sb->stop_lsn, pos, sizeof(pos));
		lens[0] = strlen(next);
		lens[1] = strlen(pos);
		pgwire_row_description(&sb->out, 2, names, oids);
		pgwire_data_row(&sb->out, 2, values, lens);
	}
	pgwire_command_complete(&sb->out, "START_STREAMING");
	pgwire_command_complete(&sb->out, "START_REPLICATION");
	pgwire_ready(&sb->out);
	sb_stream_end(sb);
}

/*
 * Whether segment @segno of timeline @tli, not in the store, may still come: a segment of
 * the newest timeline, from the one it begins in, that the store never held (s->held) and
 * held no older segment than (s->removed_below).  Files in flight are stored in any order
 * (a backlog beside the stream, several pushes): one after it may be there first.  So is
 * the newest segment, whose copy was dropped before it was stored (refused, retired:
 * serve_wal_dropped()), and the switch point's segment read from the newest timeline's
 * file whose history came first (sb_switch_file_tli()).  Any other is gone, or was never
 * here: PostgreSQL's walsender answers 58P01 for it.
 */
static bool serve_segment_may_come(const struct serve *s, uint32_t tli, uint64_t segno)
{
	uint32_t seg_size = s->store->id.seg_size;

	if (tli != s->tli)
		return false;
	if ((segno + 1) * seg_size >= s->end_lsn)
		return true; /* the newest segment */
	return segno >= s->removed_below && segno >= s->tli_start / seg_size &&
	       !serve_held_has(s, segno); /* stored, then removed (retention, by hand) */
}

/* The start point's segment is gone (removed, or never here): PostgreSQL's words. */
static void sb_removed(struct standby *sb)
{
	log_log("standby \"%s\" (%s) asked for WAL segment %s, which this appliance does not hold",
		sb->app, sb->addr, sb->file_name);
	sb_error(sb, "ERROR", "58P01", "requested WAL segment %s has already been removed",
		 sb->file_name);
}

static void sb_read_done(struct ring_op *op, int res, uint32_t flags);

/* How far @sb may be sent now: its delay and hold (sendlimit_for()), and on an older
 * timeline its switch point. */
static uint64_t sb_send_cap(const struct standby *sb)
{
	uint64_t cap = sendlimit_for(sb->s->limits, sb->app, unix_now_us());

	return sb->stop_lsn && sb->stop_lsn < cap ? sb->stop_lsn : cap;
}

/* @len bytes read at next_lsn into rbuf: send them, then go on.  A read in flight may
 * have begun before a hold or the end of its timeline was known: what it read past
 * them now is not sent. */
static void sb_send_read(struct standby *sb, uint32_t len)
{
	uint64_t cap = sb_send_cap(sb);

	if (cap <= sb->next_lsn) {
		sb_pump(sb);
		return;
	}
	if (cap - sb->next_lsn < len)
		len = (uint32_t)(cap - sb->next_lsn);
	pgwire_xlogdata(&sb->out, sb->next_lsn, sb->s->end_lsn, pgrepl_time_now(), sb->rbuf, len);
	sb->next_lsn += len;
	sb->bytes_sent += len;
	sb_lag_sample(sb);
	sb_flush(sb);
	sb_pump(sb);
}

static void sb_read(struct standby *sb, uint64_t off, uint32_t len)
{
	const struct growing *g =
		sb->file_incoming ? serve_growing_find(sb->s, sb->file_name) : NULL;
	struct io_uring_sqe *sqe;

	if (g && g->image && off + len <= g->durable) {
		/* The replica writes this segment with O_DIRECT from memory: read it there,
		 * never through the page cache, which each direct write drops (a copy of at
		 * most SERVE_MAX_SEND bytes, on the event loop). */
		memcpy(sb->rbuf, g->image + off, len);
		sb_send_read(sb, len);
		return;
	}
	sb->file_busy = true;
	sb->read_len = len;
	sb->read_gen = sb->gen;
	sb->file_op.cb = sb_read_done;
	sqe = sb_sqe(sb, &sb->file_op);
	io_uring_prep_read(sqe, sb->file_fd, sb->rbuf, len, off);
}

static void sb_read_done(struct ring_op *op, int res, uint32_t flags)
{
	struct standby *sb = container_of(op, struct standby, file_op);

	(void)flags;
	sb->file_busy = false;
	if (sb->closing || sb->close_when_sent) { /* after a FATAL nothing is sent */
		sb_op_done(sb);
		return;
	}
	if (sb->state != SB_STREAMING || sb->gen != sb->read_gen) {
		/* the stream ended meanwhile: close its file now that nothing is in flight */
		if (sb->state != SB_STREAMING)
			sb_stream_end(sb);
		else
			sb_pump(sb);
	} else if (res < 0) {
		log_error("could not read file \"%s\": %s", sb->file_name, strerror(-res));
		sb_error(sb, "ERROR", "58030", "could not read file \"%s\": %s", sb->file_name,
			 strerror(-res));
		sb_flush(sb);
	} else if (res == 0) {
		sb->waiting = true; /* shorter than its durable length said: wait for news */
	} else {
		sb_send_read(sb, (uint32_t)res);
	}
	sb_op_done(sb);
}

static void sb_opened(struct ring_op *op, int res, uint32_t flags);

/* Open sb->file_name: in .incoming as @g->tmp_name, or stored when @g is NULL. */
static void sb_open(struct standby *sb, const struct growing *g)
{
	const struct store *st = sb->s->store;
	bool incoming = g != NULL;
	struct io_uring_sqe *sqe;

	sb->file_busy = true;
	sb->file_reopen = false;
	sb->file_newest = sb->s->tli;
	sb->read_gen = sb->gen;
	sb->file_incoming = incoming;
	snprintf(sb->file_tmp, sizeof(sb->file_tmp), "%s", incoming ? g->tmp_name : "");
	sb->file_op.cb = sb_opened;
	sqe = sb_sqe(sb, &sb->file_op);
	io_uring_prep_openat(sqe, incoming ? st->incoming_fd : st->dir_fd,
			     incoming ? g->tmp_name : sb->file_name, O_RDONLY | O_CLOEXEC, 0);
}

/*
 * Whether @sb, waiting at segment @segno for @why (the file or history @name, @what
 * saying why in the log), has waited gap_wait_ms: the clock starts at the first call for
 * that segment and reason (gap_segno, gap_why, gap_since_ms; serve_tick() pumps it again
 * once it has run out).  Logged when it has.
 */
static bool sb_waited_long(struct standby *sb, enum sb_wait_why why, uint64_t segno,
			   const char *name, const char *what)
{
	const struct serve *s = sb->s;
	int64_t now = clock_now_ms();

	if (!sb->gap_since_ms || sb->gap_segno != segno || sb->gap_why != why) {
		sb->gap_segno = segno;
		sb->gap_why = why;
		sb->gap_since_ms = now;
		return false;
	}
	if (now - sb->gap_since_ms < s->gap_wait_ms)
		return false;
	log_log("standby \"%s\" (%s) waited %" PRId64 " s for %s: %s", sb->app, sb->addr,
		(now - sb->gap_since_ms) / 1000, name, what);
	sb->gap_since_ms = 0;
	return true;
}

/*
 * Whether @sb has waited long enough for its segment (sb->file_segno), missing before the
 * newest one: a gap that files stored out of order close in seconds, but one that stays
 * (WAL the primary released, or never had) would hold the standby, and retention with
 * it, for good, where PostgreSQL's walsender answers 58P01 and the standby turns to its
 * restore_command.  The newest segment itself is waited for as long as it takes.
 */
static bool sb_gap_waited(struct standby *sb)
{
	if ((sb->file_segno + 1) * sb->s->store->id.seg_size >= sb->s->end_lsn) {
		sb->gap_since_ms = 0;
		return false;
	}
	return sb_waited_long(sb, SB_WAIT_GAP, sb->file_segno, sb->file_name,
			      "missing while later WAL is here");
}

static void sb_opened(struct ring_op *op, int res, uint32_t flags)
{
	struct standby *sb = container_of(op, struct standby, file_op);
	struct serve *s;

	(void)flags;
	sb->file_busy = false;
	s = sb->s;
	if (sb->closing || sb->close_when_sent || sb->state != SB_STREAMING ||
	    sb->gen != sb->read_gen) {
		/* The stream ended meanwhile, whatever the open gave: a failure is of a file
		 * the stream now running (if any) did not ask for, not to be answered to it. */
		if (res >= 0)
			close(res);
		if (!sb->closing && !sb->close_when_sent && sb->state == SB_STREAMING)
			sb_pump(sb); /* (after a FATAL nothing is sent) */
	} else if (res == -ENOENT && sb->file_incoming) {
		/* Stored meanwhile (renamed): serve_wal_stored() wakes it to open the name. */
		if (serve_growing_find(s, sb->file_name))
			sb->waiting = true; /* the same file name, another tmp: news will come */
		else
			sb_pump(sb);
	} else if (res == -ENOENT && serve_growing_find(s, sb->file_name)) {
		sb_pump(sb); /* being received after all: open it in .incoming */
	} else if (res == -ENOENT && s->tli != sb->file_newest) {
		sb_pump(sb); /* a newer timeline came meanwhile: which file, chosen again */
	} else if (res == -ENOENT && serve_segment_may_come(s, sb->file_tli, sb->file_segno) &&
		   !sb_gap_waited(sb)) {
		/* Not received yet: its durable bytes, or its stored file, wake the standby
		 * (serve_wake()).  It was not removed. */
		sb->waiting = true;
	} else if (res == -ENOENT) {
		sb_removed(sb);
		sb_flush(sb);
	} else if (res < 0) {
		log_error("could not open file \"%s\": %s", sb->file_name, strerror(-res));
		sb_error(sb, "ERROR", "58030", "could not open file \"%s\": %s", sb->file_name,
			 strerror(-res));
		sb_flush(sb);
	} else {
		const struct growing *g = serve_growing_find(s, sb->file_name);

		sb->file_fd = res;
		sb->gap_since_ms = 0;
		if (!sb->file_incoming) {
			sb->file_limit = s->store->id.seg_size; /* stored: complete */
		} else if (g && !strcmp(g->tmp_name, sb->file_tmp)) {
			sb->file_limit = g->durable;
		} else {
			/* Stored meanwhile, or replaced by another copy (the one opened may be
			 * a cancelled copy, zeros after what was durable): nothing is read from
			 * it; the segment is opened again (serve_reopen() missed it: the open
			 * was in flight). */
			sb->file_limit = 0;
			sb->file_reopen = true;
		}
		sb_pump(sb);
	}
	sb_op_done(sb);
}

/*
 * The timeline whose file @sb reads the switch point's segment @segno from: the first of
 * the newest timeline's history after sb->tli (next_tli, its child, ... up to the newest)
 * whose copy of the segment is stored or growing.  Each of them holds sb->tli's WAL up to
 * its own start, at or after the switch point, where the read stops.  The next timeline's
 * copy is not always there: when the next switch falls in the same segment, that timeline
 * was cut within it and its copy stored only as NAME.partial (its timeline's end).  None
 * there: the newest's, which may still come (its history came first) and is waited for.
 * A timeline off that history (a sibling forked from sb->tli before the switch point) is
 * never read: its copy holds its own WAL there; when the newest timeline is such a
 * sibling, next_tli's own copy is the one (answered 58P01 when it is not there).  0 while
 * the newest timeline's history cannot be read yet (not stored: a segment of it came
 * first): the standby waits for it.
 */
static uint32_t sb_switch_file_tli(struct standby *sb, uint64_t segno)
{
	struct serve *s = sb->s;
	uint32_t seg_size = s->store->id.seg_size, tli = sb->next_tli, child;
	char *text = NULL, history[WAL_NAME_MAX + 1];
	uint64_t at;
	ssize_t n = 0;

	while (tli < s->tli) {
		char name[WAL_NAME_MAX + 1];

		wal_name_format_segment(name, sizeof(name), tli, segno, seg_size);
		if (serve_growing_find(s, name) ||
		    faccessat(s->store->dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			break;
		if (!text) { /* read on the loop, as sb_find_fork() reads it */
			snprintf(history, sizeof(history), "%08X.history", s->tli);
			text = malloc(WAL_HISTORY_MAX);
			n = text ? wal_history_read(s->store->dir_fd, s->tli, text) : -ENOMEM;
			/* The newest's history not stored yet (a segment of it may come first),
			 * or not readable now (no descriptor, no memory): which copy is the one
			 * is not known yet, and the standby waits (the history stored wakes
			 * it), as for a gap, a minute at most; then, as for a history that
			 * cannot be read at all (logged), next_tli's copy is the one. */
			if ((n == -ENOENT || n == -EMFILE || n == -ENFILE || n == -ENOMEM) &&
			    !sb_waited_long(sb, SB_WAIT_SWITCH_HISTORY, segno, history,
					    "the newest timeline's history, at the switch point")) {
				tli = 0;
				break;
			}
			if (n < 0 && n != -ENOENT && n != -EMFILE && n != -ENFILE && n != -ENOMEM)
				log_warning("could not read history file of timeline %u: %s",
					    s->tli, strerror((int)-n));
			/* The newest timeline descends from sb->tli through next_tli at the
			 * switch point, or it is a sibling (forked from sb->tli, or from
			 * next_tli, elsewhere), whose copies hold WAL of their own there:
			 * next_tli's file is the one, and its absence is answered. */
			if (n < 0 ||
			    wal_history_fork(text, (size_t)n, s->tli, sb->tli, &at, &child) < 0 ||
			    at != sb->stop_lsn || child != sb->next_tli) {
				tli = sb->next_tli;
				break;
			}
		}
		if (wal_history_fork(text, (size_t)n, s->tli, tli, &at, &child) < 0 ||
		    child <= tli) {
			tli = sb->next_tli; /* (cannot be, after the check above) */
			break;
		}
		tli = child;
	}
	free(text);
	return tli;
}

/* Send what is durable past next_lsn, as far as the send buffer allows; on an older
 * timeline, up to its switch point, then CopyDone (the end of the timeline). */
void sb_pump(struct standby *sb)
{
	struct serve *s = sb->s;
	uint32_t seg_size = s->store->id.seg_size;
	uint32_t file_tli = sb->tli;
	uint64_t segno, off, cap = seg_size, limit, send_to;

	if (sb->closing || sb->state != SB_STREAMING || sb->file_busy || sb->close_when_sent ||
	    sb->copy_done_sent || sb->out.len + sb->sending.len >= SERVE_TX_LOW)
		return;
	sb->waiting = false;
	if (sb->stop_lsn && sb->next_lsn >= sb->stop_lsn) {
		char at[PGREPL_LSN_TEXT];

		pgrepl_lsn_format(sb->stop_lsn, at, sizeof(at));
		log_log("standby \"%s\" (%s) reached the end of timeline %u at %s", sb->app,
			sb->addr, sb->tli, at);
		pgwire_copy_done(&sb->out);
		sb->copy_done_sent = true;
		sb_flush(sb);
		return;
	}
	if (sb->tli != s->tli && !sb->stop_lsn) {
		/* A newer timeline whose history is not stored yet (a segment of it came
		 * first): where this one ends is not known, and the standby waits, a minute at
		 * most; then it is answered as PostgreSQL's walsender is when that file is
		 * missing (its timeline not in the newest's history), and holds retention no
		 * more. */
		char history[WAL_NAME_MAX + 1];

		snprintf(history, sizeof(history), "%08X.history", s->tli);
		if (!sb_waited_long(sb, SB_WAIT_NEXT_HISTORY, sb->next_lsn / seg_size, history,
				    "where its timeline ends is not known")) {
			sb->waiting = true;
			return;
		}
		/* (PostgreSQL reads a missing history as one without parents, and its
		 * tliSwitchPoint() then answers so; so does sb_find_fork() at the next
		 * START_REPLICATION) */
		sb_error(sb, "ERROR", "XX000",
			 "requested timeline %u is not in this server's history", sb->tli);
		sb_flush(sb);
		return;
	}
	send_to = sb_send_cap(sb);
	if (send_to <= sb->next_lsn) {
		sb->waiting = true; /* delayed or held: the timer or a release wakes it */
		return;
	}
	segno = sb->next_lsn / seg_size;
	off = sb->next_lsn % seg_size;
	/* The segment of the switch point is read from a later timeline's file, which holds
	 * the old timeline's WAL up to there (as walsender.c's WalSndSegmentOpen() reads it
	 * from the next timeline's): the one open, else the one sb_switch_file_tli() finds. */
	if (sb->stop_lsn && segno == sb->stop_lsn / seg_size) {
		if (sb->file_fd >= 0 && sb->file_segno == segno && sb->file_tli != sb->tli &&
		    !sb->file_reopen)
			file_tli = sb->file_tli;
		else
			file_tli = sb_switch_file_tli(sb, segno);
		if (!file_tli) {
			sb->waiting = true; /* the newest timeline's history first */
			return;
		}
		cap = sb->stop_lsn % seg_size;
	}
	if (sb->file_fd >= 0 &&
	    (sb->file_segno != segno || sb->file_tli != file_tli || sb->file_reopen)) {
		close(sb->file_fd);
		sb->file_fd = -1;
	}
	if (sb->file_fd < 0) {
		const struct growing *g;

		sb->file_segno = segno;
		sb->file_tli = file_tli;
		wal_name_format_segment(sb->file_name, sizeof(sb->file_name), file_tli, segno,
					seg_size);
		g = serve_growing_find(s, sb->file_name);
		/* A copy received under the name of a file this replica stored (a push sent
		 * again, a stream's segment also pushed) may still end refused: the stored
		 * file, one it stored lately or one older than those.  Not any file under a
		 * newer name: one put there by hand is not looked at until the replica's
		 * next group commit of the copy. */
		if (g && !store_recent_has(s->store, sb->file_name) &&
		    !(store_recent_older(s->store, sb->file_name) &&
		      faccessat(s->store->dir_fd, sb->file_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0))
			sb_open(sb, g);
		else if (g)
			sb_open(sb, NULL);
		else if (file_tli != s->tli || segno * seg_size < s->end_lsn)
			sb_open(sb, NULL); /* stored, or removed: the open says which */
		else
			sb->waiting = true; /* not received yet */
		return;
	}
	limit = sb->file_limit < cap ? sb->file_limit : cap;
	if (send_to - segno * seg_size < limit)
		limit = send_to - segno * seg_size;
	if (off < limit) {
		uint64_t n = limit - off;

		sb_read(sb, off, (uint32_t)(n < SERVE_MAX_SEND ? n : SERVE_MAX_SEND));
		return;
	}
	sb->waiting = true;
}
