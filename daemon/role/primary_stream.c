// SPDX-License-Identifier: MIT
/*
 * The primary's stream source: with pg_conninfo set, PostgreSQL's replication stream
 * (source/pgsource.c, a physical replication client on the io_uring loop) is cut into
 * segments, each a push held in memory (push_stream_begin) and sent to the replicas as its
 * bytes arrive (DATA after FILE_BEGIN with WIRE_BEGIN_STREAM).  The replicas make what they
 * received durable as it comes and say so (PROGRESS); what is durable on sync_replicas of
 * them is the flush position reported to PostgreSQL, which makes walship a synchronous
 * standby (durability rule 1 for every byte of a commit, not only whole segments).
 *
 * How a replica's durable WAL is counted (peer->stream.end): only a continuous run.  Its
 * durable prefix of a streamed segment counts when every byte before that segment is
 * durable on sync_replicas replicas: the replica stored the previous segment (streamed,
 * pushed by archive_command, or held in the spool for it) on this connection, or the
 * segment is the first this source streamed (everything before it was reported flushed
 * earlier, so it was durable on sync_replicas replicas then), or every streamed segment
 * before it that is not safe yet was acknowledged by this replica
 * (peer_holds_unsafe_before(): the safe ones are durable on the replicas that settled
 * them).  A segment's last byte counts once the replica stored it (ACK), not on PROGRESS,
 * and what a replica refused no longer counts (peer_stream_refused()): a stored segment,
 * not one set aside, is what lets its run go on into the next.  Acknowledgements and
 * PROGRESS of later segments that arrive first wait (struct stream_run, role/decide.c) and
 * join when the gap closes.  A timeline that forked before what the replicas hold cuts
 * their runs back to the fork (stream_rewind()).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/lagring.h"
#include "common/log.h"
#include "role/decide.h"
#include "role/primary_int.h"
#include "source/pgsource.h"
#include "wal/record.h"

/* Arrival times of the WAL, for the replicas' lag in time (as pg_stat_replication's
 * flush_lag): when the oldest WAL a replica lacks arrived.  One sample per 10 ms at most. */
#define LAG_SAMPLE_MS 10

/* The ends of the last commit records the stream carried (issue 13: "commits waiting" per
 * replica, those after its durable position); older ones are forgotten. */
#define COMMIT_ENDS 16384

/*
 * The stream's record (spool_dir/reported, wal/spool.h): the flush position reported, so
 * that a walshipd started again streams from it (pgsource.h, ops->reported_lsn) rather than
 * from wherever the slot is (a slot made anew is at PostgreSQL's last checkpoint, whatever
 * walship reported).  Written when its segment changes, on the worker (two fsyncs),
 * one write at a time, behind the spool copies queued there.  Streaming starts at the
 * record's segment start, so a record that lags the reports within a segment costs
 * nothing; one that lags by segments (a crash while it waited or was written) sends them
 * again, or, if a checkpoint removed them meanwhile, is set aside by the source.
 */
struct stream_record {
	struct worker_job job;
	struct primary *pr;
	struct spool_reported writing;
	bool busy; /* a write is on the worker */
};

/* History files the stream shipped, newest kept: apart from pr->recent, which completed
 * segments go through as well (16 of them, and a history shipped before would be shipped
 * again at each connection and each resume from then on). */
#define STREAM_HISTORIES 8

struct stream_state {
	struct pgsource source;
	struct {
		char name[WIRE_MAX_FILE_NAME + 1];
		uint32_t crc;
	} histories[STREAM_HISTORIES];
	unsigned int histories_next;
	/* the history file of the timeline streamed (TIMELINE_HISTORY's), for a replica
	 * registered after it was shipped (primary_stream_new_replica()); NULL on timeline 1 */
	char history_name[WIRE_MAX_FILE_NAME + 1];
	uint8_t *history;
	size_t history_len;
	struct spool_reported recorded; /* read at start, then the last one written or being
					   written */
	struct stream_record rec;
	struct lag_ring lag; /* pruned up to the streaming replicas' durable positions */
	uint64_t reported_flush;
	uint64_t reported_apply; /* applied by standbys on the replicas' pg_listen */
	struct wal_decoder dec; /* the stream's records, from a segment start */
	bool decoding;
	uint64_t commit_end[COMMIT_ENDS]; /* ring, in WAL order */
	unsigned int commit_head; /* next written */
	unsigned int commit_count;
	/* The forks (stream_rewind()): WAL of an older timeline counts up to its end only. */
	struct stream_forks forks;
};

static struct stream_state *stream_of(struct primary *pr)
{
	return (struct stream_state *)pr->source;
}

/* WAL up to @end arrived now; the samples every streaming replica holds go. */
static void lag_record(struct primary *pr, struct stream_state *ss, uint64_t end)
{
	uint64_t floor = UINT64_MAX;

	/* (closing ones too: one that leaves is remembered with its lag, primary_note_away(),
	 * once its connection is done) */
	for (const struct peer *peer = pr->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && peer->stream.end < floor)
			floor = peer->stream.end;
	if (floor != UINT64_MAX)
		lag_ring_prune(&ss->lag, floor);
	lag_ring_add(&ss->lag, end, clock_now_ms(), LAG_SAMPLE_MS);
}

static void commit_seen(void *arg, const struct wal_xact_end *x)
{
	struct stream_state *ss = arg;

	if (x->kind != WAL_XACT_COMMIT && x->kind != WAL_XACT_COMMIT_PREPARED)
		return;
	ss->commit_end[ss->commit_head] = x->end_lsn;
	ss->commit_head = (ss->commit_head + 1) % COMMIT_ENDS;
	if (ss->commit_count < COMMIT_ENDS)
		ss->commit_count++;
}

/* Decode @len bytes of the stream at @lsn for its commits; a piece that does not continue
 * what was decoded starts again at a segment start (after a reconnect or a timeline
 * switch), or waits for one. */
static void commits_feed(struct primary *pr, struct stream_state *ss, uint64_t lsn,
			 const uint8_t *data, uint32_t len)
{
	if (!ss->decoding || ss->dec.next_lsn != lsn) {
		wal_decoder_end(&ss->dec);
		ss->decoding = lsn % pr->id.seg_size == 0 && pr->id.block_size &&
			       wal_decoder_begin(&ss->dec, pr->id.seg_size, pr->id.block_size, lsn,
						 commit_seen, ss) == 0;
		if (!ss->decoding)
			return;
	}
	if (wal_decoder_feed(&ss->dec, lsn, data, len) < 0)
		ss->decoding = false; /* out of memory for a record: from the next segment */
}

/* Commit records the stream carried that end after @lsn (at most COMMIT_ENDS). */
static uint64_t commits_after(const struct stream_state *ss, uint64_t lsn)
{
	uint64_t n = 0;

	for (unsigned int i = 1; i <= ss->commit_count; i++) {
		if (ss->commit_end[(ss->commit_head + COMMIT_ENDS - i) % COMMIT_ENDS] <= lsn)
			break;
		n++;
	}
	return n;
}

/*
 * Whether @peer holds every streamed segment before @seg_start that is not safe yet: each
 * one still waiting is acknowledged by it.  The others are safe: settled (durable on
 * sync_replicas replicas then), or before the source's first segment (reported flushed
 * earlier).  So a run may begin, or jump a gap, at @seg_start: every byte before the
 * position it then counts towards is durable on sync_replicas replicas, on this one or on
 * those that made it safe.  Its HAVE listing the segment before is not enough: a replica
 * that stored a later segment before an earlier one (sent newest first after a
 * reconnect) lists it and lacks the earlier one.
 */
static bool peer_holds_unsafe_before(const struct peer *peer, uint64_t seg_start)
{
	const struct primary *pr = peer->pr;

	for (const struct push *q = pr->pushes; q; q = q->next)
		if (q->stream && push_waiting(q) && q->lsn < seg_start &&
		    !push_acked_by(q, peer->name))
			return false;
	/* A segment that failed is not safe either, and is sent to nobody any more. */
	for (unsigned int i = 0; i < STREAM_FAILED; i++) {
		const struct stream_failed *fl = &pr->failed[i];
		bool holds = false;

		if (!fl->lsn || fl->lsn >= seg_start)
			continue;
		for (unsigned int h = 0; h < fl->nholders && !holds; h++)
			holds = !strcmp(fl->holders[h], peer->name);
		if (!holds)
			return false;
	}
	return true;
}

/*
 * Whether the stream delivered every byte before @seg_start since its origin, so that
 * peer_holds_unsafe_before() sees each segment there that is not safe yet (a streamed
 * one, waiting or failed).  A segment pushed through archive_command ahead of the
 * stream (before its first segment, while the source connects, or past what it has
 * delivered) is not one of them: a run that jumped to its end over WAL the stream had
 * not delivered yet would, once the stream delivers it, count bytes this replica may
 * lack.  Without a source every run may jump (nothing is reported).
 */
static bool stream_delivered_before(const struct primary *pr, uint64_t seg_start)
{
	return !pr->source || (pr->stream_origin && seg_start <= pr->stream_end);
}

void primary_stream_forget_holder(struct primary *pr, const char *name)
{
	for (unsigned int i = 0; i < STREAM_FAILED; i++) {
		struct stream_failed *fl = &pr->failed[i];
		unsigned int kept = 0;

		for (unsigned int h = 0; h < fl->nholders; h++)
			if (strcmp(fl->holders[h], name))
				memmove(fl->holders[kept++], fl->holders[h],
					sizeof(fl->holders[0]));
		fl->nholders = kept;
	}
}

/*
 * Streamed segment @p failed (a replica refused it, the spool could not hold it for a
 * registered replica): it is not safe, and it is no longer sent.  Remembered with
 * the replicas that hold it durably (acknowledged it, or their run passed its end), so
 * that no other replica's run begins after it (peer_holds_unsafe_before()).
 */
static void stream_failed_add(struct primary *pr, const struct push *p)
{
	struct stream_failed *fl = &pr->failed[pr->failed_next % STREAM_FAILED];
	struct stream_failed *next = &pr->failed[++pr->failed_next % STREAM_FAILED];

	if (fl->lsn && next->lsn) {
		/* Full: the oldest is not forgotten but joins the next oldest, at the lower
		 * position with the replicas that hold both.  A run then waits for both
		 * where it waited for one: later, never past a failed segment. */
		unsigned int kept = 0;

		for (unsigned int i = 0; i < next->nholders; i++)
			for (unsigned int h = 0; h < fl->nholders; h++)
				if (!strcmp(next->holders[i], fl->holders[h])) {
					memmove(next->holders[kept++], next->holders[i],
						sizeof(next->holders[0]));
					break;
				}
		next->nholders = kept;
		if (fl->lsn < next->lsn)
			next->lsn = fl->lsn;
		next->merged = true;
	}
	*fl = (struct stream_failed){ .lsn = p->lsn, .tli = p->wn.timeline };
	for (const struct peer *peer = pr->peers; peer; peer = peer->next)
		if (fl->nholders < STREAM_FAILED_HOLDERS &&
		    (push_acked_by(p, peer->name) || peer->stream.end >= p->lsn + p->size))
			snprintf(fl->holders[fl->nholders++], sizeof(fl->holders[0]), "%s",
				 peer->name);
	log_warning("streamed segment \"%s\" failed: %u replica(s) hold it; no other replica's "
		    "durable position counts past it",
		    p->name, fl->nholders);
}

/*
 * @peer holds all of segment @p durably (it acknowledged it, or said it holds it): when
 * that is a segment that failed, it becomes one of its holders.  The segment pushed
 * again through archive_command, or sent to this replica again, once what refused it is
 * fixed: without this, a replica that reconnects never counts past it again (its run
 * may not jump over a failed segment it does not hold), and synchronous commits would
 * wait until walshipd restarts.  A later timeline's segment there counts when the
 * failed one's timeline ended before that segment's end (the segment cut at a switch:
 * the new timeline's holds its WAL up to the switch point, and what follows is the new
 * timeline's).  An entry that stands for two failed segments is left as it is.
 */
static void stream_failed_held(struct primary *pr, const struct peer *peer, const struct push *p,
			       uint64_t seg_start)
{
	const struct stream_state *ss = pr->relay ? NULL : stream_of(pr);

	for (unsigned int i = 0; i < STREAM_FAILED; i++) {
		struct stream_failed *fl = &pr->failed[i];
		bool holds = false, same = fl->tli == p->wn.timeline;

		if (!same && ss && fl->tli && p->wn.timeline > fl->tli)
			same = stream_forks_clamp(&ss->forks, fl->tli, fl->lsn,
						  fl->lsn + pr->id.seg_size) <
			       fl->lsn + pr->id.seg_size;
		if (fl->lsn != seg_start || !same || fl->merged)
			continue;
		for (unsigned int h = 0; h < fl->nholders && !holds; h++)
			holds = !strcmp(fl->holders[h], peer->name);
		if (holds || fl->nholders >= STREAM_FAILED_HOLDERS)
			continue;
		snprintf(fl->holders[fl->nholders++], sizeof(fl->holders[0]), "%s", peer->name);
		log_log("replica \"%s\" holds the failed segment \"%s\" now: its durable position "
			"counts past it",
			peer->name, p->name);
	}
}

/* Where @p's WAL begins, into *@seg_start: a streamed segment's LSN, or a pushed
 * segment's (a pushed segment continues a run as well as a streamed one).  Returns false
 * for any other file. */
static bool push_seg_start(const struct push *p, uint64_t *seg_start)
{
	uint32_t seg_size = p->pr->id.seg_size;
	uint64_t segno;

	if (p->stream) {
		*seg_start = p->lsn;
		return true;
	}
	if (p->wn.kind != WAL_FILE_SEGMENT || !seg_size ||
	    wal_name_segno(&p->wn, seg_size, &segno) < 0)
		return false;
	*seg_start = segno * seg_size;
	return true;
}

void peer_stream_advance(struct peer *peer, const struct push *p, uint64_t durable)
{
	struct primary *pr = peer->pr;
	const struct stream_state *ss = pr->relay ? NULL : stream_of(pr);
	const struct stream_forks *forks = pr->relay ? relay_forks(pr) : ss ? &ss->forks : NULL;
	uint64_t seg_start, end;
	bool origin;

	if (!push_seg_start(p, &seg_start))
		return;
	if (durable == p->size)
		stream_failed_held(pr, peer, p, seg_start);
	end = seg_start + durable;
	/*
	 * The old timeline's WAL after a fork is not the new one's: its acknowledgements and
	 * PROGRESS that arrive after stream_rewind() (the segment being streamed is cut only
	 * when the new timeline's first WAL arrives; complete segments past the fork were
	 * streamed before a reconnection to the promoted server) count up to where that
	 * timeline ended in the newest history only (each its own end, after several forks
	 * in a row), or what the replicas hold of an old timeline would be reported durable
	 * for the new.  On a relay, after it stored a new timeline's history file: a
	 * downstream replica still being sent the old timeline's segments past the fork
	 * would count them as the new timeline's, and its floor pass the new segments it
	 * has not been sent.
	 */
	if (forks) {
		uint64_t counts = stream_forks_clamp(forks, p->wn.timeline, seg_start, end);

		if (counts < end) {
			if (counts <= seg_start)
				return;
			end = counts;
		}
	}
	if (end > peer->stream_received_lsn)
		peer->stream_received_lsn = end;
	/* After a gap it counts only once the gap closes (see the header). */
	origin = p->stream && pr->source && seg_start == pr->stream_origin;
	if (!stream_run_add(&peer->stream, seg_start, end,
			    pr->relay ? relay_peer_holds_before(peer, seg_start) :
					(origin || (stream_delivered_before(pr, seg_start) &&
						    peer_holds_unsafe_before(peer, seg_start)))))
		return;
	peer->stream_lsn_ms = clock_now_ms();
	primary_stream_report(pr);
}

void peer_stream_refused(struct peer *peer, const struct push *p)
{
	uint64_t seg_start;

	if (push_seg_start(p, &seg_start))
		stream_run_truncate(&peer->stream, seg_start);
}

int peer_on_progress(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct msg_progress pg;
	struct xfer *x;
	uint64_t durable;
	int ret = msg_progress_decode(payload, len, &pg);

	if (ret < 0) {
		log_log("malformed PROGRESS from replica \"%s\"", peer->name);
		return ret;
	}
	for (x = peer->xfers; x; x = x->next)
		if (x->file_id == pg.file_id)
			break;
	if (!x || !x->push->stream || pg.received > x->next_read) {
		log_log("replica \"%s\" reported progress of file %u that it was not sent",
			peer->name, pg.file_id);
		return -EPROTO;
	}
	if (x->push->lsn + pg.received > peer->stream_received_lsn)
		peer->stream_received_lsn = x->push->lsn + pg.received;
	/*
	 * A streamed segment's last byte counts once the replica stored it (its ACK), never on
	 * a PROGRESS: at its end the replica may still refuse it (another file stored under
	 * its name), its bytes set aside in archive_dir/.refused, which walship fetch does
	 * not serve.  A run that had reached the segment's end would go on into the next one
	 * without a gap, past a segment no replica may hold (peer_holds_unsafe_before() never
	 * asked).  Not in a relay, whose runs keep no flush (relay_peer_floor()).
	 */
	durable = pg.durable;
	if (!peer->pr->relay && durable >= x->push->size)
		durable = x->push->size - 1;
	peer_stream_advance(peer, x->push, durable);
	return 0;
}

int peer_on_applied(struct peer *peer, const uint8_t *payload, uint32_t len)
{
	struct msg_applied m;
	int ret = msg_applied_decode(payload, len, &m);

	if (ret < 0) {
		log_log("malformed APPLIED from replica \"%s\"", peer->name);
		return ret;
	}
	/* WAL applied on a timeline that ended counts up to its end, the rest diverged; on
	 * another timeline than before it may be less (a standby that followed the switch) */
	if (stream_of(peer->pr))
		m.apply_lsn =
			stream_forks_clamp(&stream_of(peer->pr)->forks, m.timeline, 0, m.apply_lsn);
	if (!msg_applied_newer(peer->apply_tli, peer->apply_lsn, m.timeline, m.apply_lsn))
		return 0; /* nothing new, or an earlier timeline's */
	peer->apply_lsn = m.apply_lsn;
	peer->apply_tli = m.timeline;
	primary_stream_report(peer->pr);
	return 0;
}

/* How many replicas a position must be durable on to count: sync_replicas, at least one
 * (with 0, the furthest replica's), at most max_senders' upper bound. */
static unsigned int stream_need(const struct primary *pr)
{
	unsigned int need = pr->cfg.sync_replicas > 0 ? (unsigned int)pr->cfg.sync_replicas : 1;

	return need < PUSH_MAX_EARLY_ACKS ? need : PUSH_MAX_EARLY_ACKS;
}

/* Insert @v (and @tag, when @tags is not NULL) into @best, kept in decreasing order, at
 * most @need long, of which *@n are used. */
static void top_insert(uint64_t *best, uint32_t *tags, unsigned int need, unsigned int *n,
		       uint64_t v, uint32_t tag)
{
	unsigned int i;

	for (i = *n < need ? (*n)++ : need; i > 0 && best[i - 1] < v; i--) {
		if (i < need) {
			best[i] = best[i - 1];
			if (tags)
				tags[i] = tags[i - 1];
		}
	}
	if (i < need) {
		best[i] = v;
		if (tags)
			tags[i] = tag;
	}
}

/*
 * What is durable on sync_replicas replicas (with sync_replicas = 0 the furthest
 * replica's, whose run may pass whole segments held only in the spool, which settle a
 * segment then as they settle a push: docs/configuration.md), never more than @cap
 * (what the stream delivered): the sync_replicas-th largest stream_lsn of the connected replicas.  With @apply, what their
 * standbys applied: each replica's apply_lsn (the best of its standbys'), counted only as
 * far as it is durable on that replica (its stream_lsn).
 */
static uint64_t stream_quorum(const struct primary *pr, bool apply, uint64_t cap)
{
	unsigned int need = stream_need(pr), n = 0;
	uint64_t best[PUSH_MAX_EARLY_ACKS] = { 0 };

	for (const struct peer *peer = pr->peers; peer; peer = peer->next) {
		uint64_t v = peer->stream.end;

		if (apply && peer->apply_lsn < v)
			v = peer->apply_lsn;

		if (peer->state != PEER_STREAMING || peer->conn.closing || !v)
			continue;
		top_insert(best, NULL, need, &n, v, 0);
	}
	if (n < need)
		return 0;
	return best[need - 1] < cap ? best[need - 1] : cap;
}

static void stream_record_run(struct worker_job *job)
{
	struct stream_record *rec = (struct stream_record *)job;

	spool_set_reported(&rec->pr->spool, &rec->writing); /* logs a failure */
}

static void stream_record_write(struct stream_state *ss)
{
	if (ss->rec.busy)
		return; /* stream_record_done() writes the newest */
	ss->rec.busy = true;
	ss->rec.writing = ss->recorded;
	worker_submit(&ss->rec.pr->worker, &ss->rec.job);
}

static void stream_record_done(struct worker_job *job)
{
	struct stream_record *rec = (struct stream_record *)job;
	struct stream_state *ss = stream_of(rec->pr);

	rec->busy = false;
	if (rec->writing.system_identifier != ss->recorded.system_identifier ||
	    rec->writing.timeline != ss->recorded.timeline || rec->writing.lsn != ss->recorded.lsn)
		stream_record_write(ss); /* it moved meanwhile */
}

/*
 * The flush position reported moved: recorded when its segment changed, with the
 * timeline of that segment's start (where a walshipd started again streams from).  Never
 * past the start of a streamed segment not settled yet (safe on sync_replicas replicas,
 * held in the spool for the registered ones that lack it): the flush reported counts what
 * sync_replicas replicas hold, and the spool's copy for a replica away comes after it; a
 * walshipd that died in between must stream that segment again, from PostgreSQL, or no
 * one would hold it for that replica.
 */
static void stream_record(struct primary *pr, struct stream_state *ss)
{
	struct spool_reported *r = &ss->recorded;
	uint64_t sysid = ss->source.server.system_identifier;
	/* (what the source reported may be more: a start at the record, reported at once,
	 * before the replicas' runs reach it again; never recorded backwards below it) */
	uint64_t flush = ss->reported_flush > ss->source.report_flush ? ss->reported_flush :
									ss->source.report_flush;
	uint32_t seg_size = pr->id.seg_size, tli;
	bool held = false;

	/* (stopping: the unsettled segments fail, which would lift the hold below before any
	 * replica away got them; a record that lags costs only streaming them again) */
	if (!sysid || !seg_size || !pr->stream_tli || !flush || pr->stopping)
		return;
	for (const struct push *p = pr->pushes; p; p = p->next) {
		if (!p->stream || !p->unsettled || !p->lsn || p->lsn >= flush)
			continue;
		flush = p->lsn; /* (its start: a restart there streams it again whole) */
		held = true;
	}
	if (held && r->system_identifier == sysid && r->lsn > flush)
		return; /* held back: the record stays where it is until that segment settles */
	tli = stream_forks_timeline(&ss->forks, flush - flush % seg_size, pr->stream_tli);
	if (r->system_identifier == sysid && r->timeline == tli &&
	    r->lsn / seg_size == flush / seg_size)
		return;
	*r = (struct spool_reported){ .system_identifier = sysid, .timeline = tli, .lsn = flush };
	stream_record_write(ss);
}

void primary_stream_report(struct primary *pr)
{
	struct stream_state *ss = stream_of(pr);
	uint64_t flush, apply;

	if (!ss)
		return;
	flush = stream_quorum(pr, false, pr->stream_end);
	apply = stream_quorum(pr, true, pr->stream_end);
	if (flush <= ss->reported_flush && apply <= ss->reported_apply)
		return;
	if (flush > ss->reported_flush)
		ss->reported_flush = flush;
	if (apply > ss->reported_apply)
		ss->reported_apply = apply;
	/* Nothing is written anywhere that is not durable: write = flush. */
	pgsource_report(&ss->source, ss->reported_flush, ss->reported_flush, ss->reported_apply);
	stream_record(pr, ss);
}

/* ---- the source's callbacks ---- */

static int stream_identify(void *arg, const struct pgsource_server *sv, char *why, size_t whylen)
{
	struct primary *pr = arg;
	struct push *p = pr->stream_push;

	if (pr->id.system_identifier && sv->system_identifier != pr->id.system_identifier) {
		snprintf(why, whylen,
			 "PostgreSQL at pg_conninfo is system %" PRIu64 ", this primary ships "
			 "system %" PRIu64,
			 sv->system_identifier, pr->id.system_identifier);
		pr->st.sysid_refused++;
		return -EINVAL;
	}
	if (pr->id.seg_size && sv->seg_size != pr->id.seg_size) {
		snprintf(why, whylen,
			 "PostgreSQL at pg_conninfo has wal_segment_size %u, this primary ships "
			 "segments of %u bytes",
			 sv->seg_size, pr->id.seg_size);
		return -EINVAL;
	}
	if (!pr->id.seg_size)
		pr->id.seg_size = sv->seg_size;
	if (!pr->stream_tli)
		pr->stream_tli = sv->timeline;
	/* Restarted with archiving on, the server may push the segment being streamed. */
	pr->stream_archiving = sv->archiving;
	if (p && sv->archiving && !p->running_crc_on) {
		p->running_crc = crc32c(0, p->map, p->avail);
		p->running_crc_on = true;
	}
	return 0;
}

static uint64_t stream_resume_lsn(void *arg, uint32_t *timeline)
{
	struct primary *pr = arg;
	struct stream_state *ss = stream_of(pr);

	/*
	 * The server removed WAL the stream needs (stream_wal_removed()): the segments pushed
	 * meanwhile (archive_command, or walship push by hand from another archive) fill the
	 * gap as restore_command does for a standby.  What sync_replicas replicas hold
	 * durably past the stream's end, whole segments, is where it goes on.
	 */
	if (ss->source.wal_missing_lsn && pr->id.seg_size && pr->stream_end) {
		uint64_t held = stream_quorum(pr, false, UINT64_MAX);

		held -= held % pr->id.seg_size;
		if (held > pr->stream_end) {
			log_log("the replicas hold WAL up to %X/%X, pushed past what the server "
				"removed: streaming goes on there",
				(unsigned int)(held >> 32), (unsigned int)held);
			pr->stream_end = held;
		}
	}
	*timeline = pr->stream_tli;
	return pr->stream_end;
}

/* Where a walshipd before reported WAL flushed, of the server's cluster (pgsource.h,
 * ops->reported_lsn()). */
static uint64_t stream_reported_lsn(void *arg, uint32_t *timeline)
{
	struct stream_state *ss = stream_of(arg);

	if (ss->recorded.system_identifier != ss->source.server.system_identifier)
		return 0;
	*timeline = ss->recorded.timeline;
	return ss->recorded.lsn;
}

/* What @peer's HAVE says it holds without a gap (peer_have_end()), cut at the oldest
 * segment the spool holds for it, sent or not (it lacks that one), on any timeline: that
 * segment's timeline then, in *@tli. */
static uint64_t peer_held_end(const struct peer *peer, uint32_t *tli)
{
	uint64_t end = peer->have_end, segno;
	uint32_t seg_size = peer->pr->id.seg_size;

	*tli = peer->have_tli;
	for (int i = 0; seg_size && i < peer->nbacklog; i++) {
		struct wal_name wn;

		if (wal_name_parse(peer->backlog[i], &wn) == 0 && wn.kind == WAL_FILE_SEGMENT &&
		    wal_name_segno(&wn, seg_size, &segno) == 0 && segno * seg_size < end) {
			end = segno * seg_size;
			*tli = wn.timeline;
		}
	}
	return end;
}

/*
 * Where a stream on a slot walship may never have reported to starts (pgsource.h,
 * ops->held_lsn()): the sync_replicas-th furthest end of the WAL the connected replicas
 * hold, of those that hold any (the least of them when fewer do; 0 when none does).
 * UINT64_MAX while fewer than sync_replicas replicas are connected (no commit can be
 * acknowledged before; a start chosen with fewer could be before what the slot keeps
 * while nothing is reported), and, for connect_timeout after that many are, while fewer
 * than that hold any and a registered one is away (it may hold the WAL the others lack).
 */
static uint64_t stream_held_lsn(void *arg, uint32_t *timeline)
{
	const struct primary *pr = arg;
	unsigned int need = stream_need(pr), n = 0, nsome = 0, settled = 0;
	int64_t settle_before = clock_now_ms() - pr->cfg.connect_timeout_ms;
	uint64_t some[PUSH_MAX_EARLY_ACKS] = { 0 };
	uint32_t some_tli[PUSH_MAX_EARLY_ACKS] = { 0 };

	for (const struct peer *peer = pr->peers; peer; peer = peer->next) {
		uint64_t end;
		uint32_t tli;

		if (peer->state != PEER_STREAMING || peer->conn.closing)
			continue;
		n++;
		settled += peer->streaming_since_ms <= settle_before; /* connected that long */
		end = peer_held_end(peer, &tli);
		if (end)
			top_insert(some, some_tli, need, &nsome, end, tli);
	}
	if (n < need)
		return UINT64_MAX;
	if (nsome < need && n < (unsigned int)pr->nregistered && settled < need)
		return UINT64_MAX;
	if (!nsome)
		return 0;
	*timeline = some_tli[nsome - 1];
	return some[nsome - 1];
}

void primary_stream_new_replica(struct primary *pr, const char *name)
{
	struct stream_state *ss = pr->relay ? NULL : stream_of(pr);

	if (!ss || !ss->history)
		return;
	/* Shipped once per daemon when its timeline began: a replica that came after has
	 * none, and its walship fetch could not follow a recovery onto the timeline.  The
	 * others answer DUPLICATE. */
	log_log("replica \"%s\" is new: sending it \"%s\", the history of the timeline "
		"streamed",
		name, ss->history_name);
	if (push_mem_begin(pr, ss->history_name, ss->history, ss->history_len) < 0)
		log_warning("could not send history file \"%s\" to replica \"%s\"",
			    ss->history_name, name);
}

void primary_stream_peer_ready(struct primary *pr)
{
	struct stream_state *ss = pr->relay ? NULL : stream_of(pr);

	if (ss)
		pgsource_replicas_known(&ss->source);
}

/* The first page of a new cluster names it: the same rule as a pushed segment's.  Another
 * cluster's (any field the primary knows differs) is refused, said in p->wv.message. */
static int stream_check_identity(struct primary *pr, struct push *p)
{
	const struct wal_identity *id = &p->wv.id;

	if (!p->wv.have_id)
		return 0;
	if (!pr->id.system_identifier) {
		primary_fix_identity(pr, id);
		return 0;
	}
	if (wal_identity_explain(&pr->id, id, p->name, "primary ships", p->wv.message,
				 sizeof(p->wv.message)) != WAL_IDENTITY_SAME)
		return -EINVAL;
	return 0;
}

/* The segment being streamed is whole: it is sent to its end and settled like a push. */
static void stream_segment_done(struct primary *pr, struct push *p)
{
	struct wal_identity id;

	pr->stream_push = NULL;
	if (wal_validator_end(&p->wv, &id) < 0) {
		log_error("streamed segment \"%s\" is not valid: %s", p->name, p->wv.message);
		pr->st.invalid++;
	}
	push_check(p); /* sync_replicas = 0, or every replica acknowledged already */
	push_unref(p); /* the stream's reference (stream_wal()) */
}

/*
 * The stream goes on elsewhere (a new timeline from its switch point), or not at all (the
 * server removed the rest), while @p, the segment being streamed, is not whole (@why says
 * which): as PostgreSQL does with the old timeline's last segment, what arrived of it is
 * shipped as NAME.partial (the rest zero), and its transfers are cancelled (the replicas
 * discard their incoming copies once NAME.partial is stored: the new timeline's segment,
 * or the whole one pushed, begins with the same bytes).
 */
static void stream_segment_cut(struct primary *pr, struct push *p, const char *why)
{
	char partial[WIRE_MAX_FILE_NAME + 1];

	log_log("streamed segment \"%s\" ends at %" PRIu64 " of %" PRIu64 " bytes: %s", p->name,
		p->avail, p->size, why);
	pr->stream_push = NULL; /* its reference is dropped below */
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		peer_cancel_push(peer, p);
	push_settle(p, false); /* a push of the segment waiting on it is sent as any push */
	/* Whole-sized, zeros after what arrived, as PostgreSQL's .partial files are. */
	snprintf(partial, sizeof(partial), "%s.partial", p->name);
	if (p->avail)
		push_mem_begin(pr, partial, p->map, p->size);
	push_unref(p);
}

static void stream_wal(void *arg, uint32_t timeline, uint64_t lsn, const uint8_t *data,
		       uint32_t len)
{
	struct primary *pr = arg;
	struct stream_state *ss = stream_of(pr);
	uint32_t seg_size = pr->id.seg_size;

	if (!seg_size)
		return; /* identify() always set it first */
	while (len) {
		struct push *p = pr->stream_push;
		uint64_t off;
		uint32_t n;

		if (p && (timeline != pr->stream_tli || lsn != p->lsn + p->avail)) {
			char why[96];

			snprintf(why, sizeof(why), "the stream goes on at %X/%X on timeline %u",
				 (unsigned int)(lsn >> 32), (unsigned int)lsn, timeline);
			stream_segment_cut(pr, p, why);
			p = NULL;
		}
		pr->stream_tli = timeline;
		if (!p) {
			if (lsn % seg_size) {
				log_warning(
					"WAL at %X/%X does not begin a segment; skipped up to the "
					"next one",
					(unsigned int)(lsn >> 32), (unsigned int)lsn);
				n = seg_size - (uint32_t)(lsn % seg_size);
				n = n < len ? n : len;
				lsn += n;
				data += n;
				len -= n;
				continue;
			}
			p = push_stream_begin(pr, timeline, lsn, seg_size);
			if (!p) {
				/* Logged; the source reconnects and goes on from stream_end. */
				pgsource_fail(&ss->source,
					      "could not hold streamed segment of %X/%X",
					      (unsigned int)(lsn >> 32), (unsigned int)lsn);
				return;
			}
			/* The stream's own reference: the push may fail and its transfers go
			 * (a replica refuses it) while the stream still writes into it. */
			pr->stream_push = p;
			p->refs++;
			p->running_crc_on = pr->stream_archiving;
			pr->stream_unsettled++;
			if (!pr->stream_origin)
				pr->stream_origin = lsn;
		}
		off = lsn - p->lsn;
		n = (uint32_t)(p->size - off < len ? p->size - off : len);
		memcpy((uint8_t *)(uintptr_t)p->map + off, data, n);
		if (wal_validator_feed(&p->wv, data, n) < 0 || stream_check_identity(pr, p) < 0) {
			/* nothing past avail is the segment's: zeros, as a .partial cut from
			 * it ships them (stream_segment_cut()) */
			memset((uint8_t *)(uintptr_t)p->map + off, 0, n);
			log_error("streamed WAL refused: %s", p->wv.message);
			pr->st.invalid++;
			pgsource_fail(&ss->source, "streamed WAL refused: %s", p->wv.message);
			return;
		}
		if (p->running_crc_on) /* of what the segment holds: validated bytes only */
			p->running_crc = crc32c(p->running_crc, data, n);
		commits_feed(pr, ss, lsn, data, n);
		p->avail += n;
		lsn += n;
		data += n;
		len -= n;
		pr->stream_end = lsn;
		if (p->avail == p->size)
			stream_segment_done(pr, p);
	}
	lag_record(pr, ss, pr->stream_end);
	if (pr->stream_unsettled >= STREAM_MAX_UNSETTLED && !pr->stream_paused) {
		pr->stream_paused = true;
		log_log("%u streamed segments are not yet safe on the replicas; reading from "
			"PostgreSQL waits",
			pr->stream_unsettled);
		pgsource_pause(&ss->source, true);
	}
}

/*
 * The server no longer has the WAL the stream needs from @lsn on (its slot invalidated by
 * max_slot_wal_keep_size): the segment being streamed cannot be completed from it.  What
 * arrived of it is shipped as NAME.partial, for what the replicas acknowledged of it, and
 * the stream goes on from that segment's start: a push of the whole segment, or the
 * server's copy if it ever has one again, completes it (stream_resume_lsn()).
 */
static void stream_wal_removed(void *arg, uint32_t timeline, uint64_t lsn)
{
	struct primary *pr = arg;
	struct push *p = pr->stream_push;
	uint64_t seg_start;

	(void)timeline;
	if (!p || lsn < p->lsn || lsn > p->lsn + p->size)
		return;
	seg_start = p->lsn;
	stream_segment_cut(pr, p, "the server removed the rest"); /* may free it */
	pr->stream_end = seg_start;
}

/* The messages of one read are in: send what they brought, to each replica as one DATA
 * frame where it is contiguous (a frame, a send and a group commit on the replica per
 * read, not per message). */
static void stream_wal_batch_end(void *arg)
{
	struct primary *pr = arg;

	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		peer_fill(peer);
}

/* What the replicas hold past @fork, where timeline @left ended and @timeline began, no
 * longer counts: their runs, and what was reported, go back to it. */
static void stream_cut(struct primary *pr, uint32_t timeline, uint32_t left, uint64_t fork)
{
	struct stream_state *ss = stream_of(pr);
	/* (the source may have reported more than the role: a start at the record) */
	bool past = ss->reported_flush > fork || ss->reported_apply > fork ||
		    ss->source.report_write > fork || ss->source.report_flush > fork;

	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		past = past || peer->stream.end > fork || peer->stream_received_lsn > fork;
		stream_run_truncate(&peer->stream, fork);
		if (peer->stream_received_lsn > fork)
			peer->stream_received_lsn = fork;
		if (peer->apply_lsn > fork)
			peer->apply_lsn = fork; /* applied past the fork: diverged */
	}
	lag_ring_cut(&ss->lag, fork);
	if (!past)
		return;
	log_log("timeline %u forked at %X/%X: what the replicas hold of timeline %u after it "
		"no longer counts",
		timeline, (unsigned int)(fork >> 32), (unsigned int)fork, left);
	if (ss->reported_flush > fork)
		ss->reported_flush = fork;
	if (ss->reported_apply > fork)
		ss->reported_apply = fork;
	pgsource_rewind(&ss->source, fork);
	stream_record(pr, ss); /* (after the source's: it records the more of the two) */
}

/*
 * The stream goes on on a timeline that forked from the one streamed at @fork.  A cascading
 * server may have sent WAL of the old timeline past the fork (the first half of a record
 * its upstream never finished: PostgreSQL's walsender.c says so), and the replicas may
 * hold it durably; it is not the new timeline's.  Their runs and the positions reported
 * to PostgreSQL go back to @fork, so that the new timeline's WAL counts only as the
 * replicas make it durable (durability rule 1 across a failover).
 */
static void stream_rewind(struct primary *pr, uint32_t timeline, const uint8_t *history,
			  uint32_t len, uint64_t fork)
{
	stream_forks_note(&stream_of(pr)->forks, timeline, pr->stream_tli, (const char *)history,
			  len, fork);
	/* The new timeline's segment at the origin is not the one everything before was
	 * reported for: the origin goes back to the fork's segment, before which the two
	 * timelines' WAL is the same (and was reported). */
	if (pr->stream_origin > fork && pr->id.seg_size)
		pr->stream_origin = fork - fork % pr->id.seg_size;
	stream_cut(pr, timeline, pr->stream_tli, fork);
	primary_away_cut(pr, fork); /* (the away replicas' status) */
}

/* A timeline's history file, before its first WAL: shipped (before the timeline's
 * segments, in the replicas' order), once per daemon (the source delivers it again on each
 * connection that starts on that timeline). */
static void stream_history(void *arg, uint32_t timeline, const char *name, const uint8_t *content,
			   uint32_t len)
{
	struct primary *pr = arg;
	struct stream_state *ss = stream_of(pr);
	uint32_t crc = crc32c(0, content, len), child;
	uint64_t fork;

	if (pr->stream_tli && timeline > pr->stream_tli &&
	    wal_history_fork((const char *)content, len, timeline, pr->stream_tli, &fork, &child) ==
		    0)
		stream_rewind(pr, timeline, content, len, fork);
	else if (timeline > ss->forks.newest) {
		/* The history of the timeline streamed from the start (a process started on
		 * a promoted server): WAL of older timelines the replicas hold or the spool
		 * sends counts up to where each ended, as after a switch seen streaming, and
		 * what was counted before it came (acknowledgements of held segments) goes
		 * back to where the oldest of them ended (nothing is reported yet: the runs
		 * go on from the stream's origin). */
		stream_forks_note(&ss->forks, timeline, 0, (const char *)content, len, 0);
		if (ss->forks.n && ss->forks.ended[0].end) /* (the oldest kept: any after) */
			stream_cut(pr, timeline, ss->forks.ended[0].tli, ss->forks.ended[0].end);
		/* the away replicas' status: each up to where its own timeline ended (their
		 * notes, read at start, say it) */
		primary_away_clamp(pr, &ss->forks);
	}
	for (unsigned int i = 0; i < STREAM_RECENT; i++)
		if (!strcmp(pr->recent[i].name, name) && pr->recent[i].crc == crc)
			return;
	/* The newest timeline's (names sort so), once: the same file comes at each connection */
	if (!ss->history || strcmp(name, ss->history_name) > 0) {
		uint8_t *copy = malloc(len ? len : 1);

		if (copy) {
			memcpy(copy, content, len);
			free(ss->history);
			ss->history = copy;
			ss->history_len = len;
			snprintf(ss->history_name, sizeof(ss->history_name), "%s", name);
		}
	}
	for (unsigned int i = 0; i < STREAM_HISTORIES; i++)
		if (!strcmp(ss->histories[i].name, name) && ss->histories[i].crc == crc)
			return;
	log_log("timeline %u begins: shipping its history file \"%s\"", timeline, name);
	/* Kept in the spool for good, whoever acknowledges it: the old timeline's .partial
	 * held there for a replica away is compared with PostgreSQL's own by it. */
	primary_keep_history(pr, name, content, len);
	if (push_mem_begin(pr, name, content, len) < 0) {
		pgsource_fail(&stream_of(pr)->source, "could not ship history file \"%s\"", name);
		return;
	}
	pr->recent[pr->recent_next % STREAM_RECENT] =
		(struct stream_recent){ .crc = crc, .acks = 0 };
	snprintf(pr->recent[pr->recent_next % STREAM_RECENT].name, WIRE_MAX_FILE_NAME + 1, "%s",
		 name);
	pr->recent_next++;
	ss->histories[ss->histories_next % STREAM_HISTORIES].crc = crc;
	snprintf(ss->histories[ss->histories_next % STREAM_HISTORIES].name,
		 sizeof(ss->histories[0].name), "%s", name);
	ss->histories_next++;
}

void primary_stream_settled(struct push *p, bool ok)
{
	struct primary *pr = p->pr;
	struct stream_state *ss = stream_of(pr);

	if (!p->stream) {
		/* A file shipped from memory holds nothing back; its record says it is safe. */
		for (unsigned int i = 0; ok && i < STREAM_RECENT; i++) {
			if (!strcmp(pr->recent[i].name, p->name)) {
				pr->recent[i].safe = true;
				pr->recent[i].acks = p->acks;
			}
		}
		return;
	}
	/* Failed, not cut short at a timeline switch (its .partial follows; the stream has
	 * left it then, while one failing before its end is still being streamed). */
	if (!ok && (p->avail == p->size || p == pr->stream_push) && !pr->drain_deadline_ms)
		stream_failed_add(pr, p); /* (stopping: every push fails, and nothing follows) */
	if (ok && p->avail == p->size && p->running_crc_on) {
		struct stream_recent *r = &pr->recent[pr->recent_next++ % STREAM_RECENT];

		snprintf(r->name, sizeof(r->name), "%s", p->name);
		r->acks = p->acks;
		r->crc = p->running_crc;
		r->safe = true;
	}
	if (pr->stream_unsettled)
		pr->stream_unsettled--;
	if (ss)
		stream_record(pr, ss); /* held back by this segment, it may move on now */
	if (ss && pr->stream_paused && pr->stream_unsettled < STREAM_MAX_UNSETTLED) {
		pr->stream_paused = false;
		log_log("a streamed segment is settled; reading from PostgreSQL goes on");
		pgsource_pause(&ss->source, false);
	}
}

bool primary_stream_recent(const struct push *p, uint32_t *crc, unsigned int *acks)
{
	const struct primary *pr = p->pr;

	for (unsigned int i = 0; i < STREAM_RECENT; i++) {
		const struct stream_recent *r = &pr->recent[i];

		/* (safe as it was then: on fewer replicas than sync_replicas asks now, after a
		 * SIGHUP raised it, it is sent as any push) */
		if (r->safe && !strcmp(r->name, p->name) &&
		    r->acks >= (unsigned int)pr->cfg.sync_replicas) {
			*crc = r->crc;
			*acks = r->acks;
			return true;
		}
	}
	return false;
}

void primary_stream_reload(struct primary *pr, const struct config *cfg)
{
	if (!pr->relay && pr->source)
		pgsource_set_backoff(&stream_of(pr)->source, cfg->reconnect_min_ms,
				     cfg->reconnect_max_ms);
}

int primary_stream_start(struct primary *pr)
{
	struct stream_state *ss;
	struct pgsource_config sc = {
		.conninfo = pr->cfg.pg_conninfo,
		.slot = pr->cfg.pg_slot,
		.application_name = config_application_name(&pr->cfg),
		.status_interval_ms = pr->cfg.pg_status_interval_ms,
		.connect_timeout_ms = pr->cfg.connect_timeout_ms,
		.reconnect_min_ms = pr->cfg.reconnect_min_ms,
		.reconnect_max_ms = pr->cfg.reconnect_max_ms,
	};
	static const struct pgsource_ops ops = {
		.identify = stream_identify,
		.resume_lsn = stream_resume_lsn,
		.reported_lsn = stream_reported_lsn,
		.held_lsn = stream_held_lsn,
		.wal = stream_wal,
		.wal_batch_end = stream_wal_batch_end,
		.history = stream_history,
		.wal_removed = stream_wal_removed,
	};
	int ret;

	if (!pr->cfg.pg_conninfo[0])
		return 0;
	ss = calloc(1, sizeof(*ss));
	if (!ss) {
		log_error("out of memory");
		return -ENOMEM;
	}
	ret = pgsource_init(&ss->source, pr->ring, &sc, &ops, pr);
	if (ret < 0) {
		free(ss);
		return ret;
	}
	pr->source = (struct pgsource *)ss;
	ss->rec.pr = pr;
	ss->rec.job.run = stream_record_run;
	ss->rec.job.done = stream_record_done;
	if (spool_get_reported(&pr->spool, &ss->recorded) < 0) /* logged */
		memset(&ss->recorded, 0, sizeof(ss->recorded));
	pgsource_start(&ss->source);
	return 0;
}

void primary_stream_tick(struct primary *pr, int64_t now_ms)
{
	if (pr->source)
		pgsource_tick(&stream_of(pr)->source, now_ms);
}

void primary_stream_stop(struct primary *pr)
{
	if (pr->source)
		pgsource_stop(&stream_of(pr)->source);
}

void primary_stream_free(struct primary *pr)
{
	if (pr->source) {
		wal_decoder_end(&stream_of(pr)->dec);
		free(stream_of(pr)->history);
	}
	free(pr->source);
	pr->source = NULL;
}

int64_t primary_stream_lag_since(const struct primary *pr, uint64_t lsn)
{
	const struct stream_state *ss = pr->relay ? NULL : (const struct stream_state *)pr->source;

	return ss ? lag_ring_since(&ss->lag, lsn) : 0;
}

void peer_fill_stream_positions(const struct peer *peer, struct status_peer *sp)
{
	sp->write_lsn = peer->stream_received_lsn;
	sp->flush_lsn = peer->stream.end;
	for (const struct xfer *x = peer->xfers; x; x = x->next)
		if (x->push->stream && x->push->lsn + x->next_read > sp->sent_lsn)
			sp->sent_lsn = x->push->lsn + x->next_read;
}

void primary_stream_fill_status(struct primary *pr, struct status_node *n)
{
	struct stream_state *ss = stream_of(pr);
	struct pgsource_status s;

	if (!ss)
		return;
	pgsource_get_status(&ss->source, &s);
	snprintf(n->source_state, sizeof(n->source_state), "%s", s.state);
	snprintf(n->source_error, sizeof(n->source_error), "%s", s.last_error);
	n->source_received_lsn = pr->stream_end;
	/* (after a restart, until the replicas report, the source told PostgreSQL the
	 * stream's record, and the role nothing yet) */
	n->source_flush_lsn =
		s.reported_flush > ss->reported_flush ? s.reported_flush : ss->reported_flush;
	n->source_apply_lsn = ss->reported_apply;
	n->source_connects = s.connects;
	n->source_slot_restart_lsn = s.slot_restart_lsn;
	n->source_recorded_lsn = ss->recorded.lsn;
	n->source_recorded_timeline = ss->recorded.timeline;
	n->source_wal_missing_lsn = s.wal_missing_lsn;
	snprintf(n->source_slot, sizeof(n->source_slot), "%s", pr->cfg.pg_slot);
	/* What PostgreSQL has written (its last keepalive or XLogData said) that walship has
	 * not reported durable: the slot keeps at least that much in pg_wal. */
	n->source_retained_bytes =
		s.server_wal_end > n->source_flush_lsn ? s.server_wal_end - n->source_flush_lsn : 0;
	n->timeline = pr->stream_tli;
	for (unsigned int i = 0; i < n->npeers; i++) {
		struct status_peer *sp = &n->peers[i];

		for (struct peer *peer = pr->peers; peer; peer = peer->next) {
			int64_t since;

			if (peer->state != PEER_STREAMING || peer->conn.closing ||
			    strcmp(peer->name, sp->name))
				continue;
			peer_fill_stream_positions(peer, sp);
			since = lag_ring_since(&ss->lag, peer->stream.end);
			sp->oldest_unacked_ms = since;
			sp->commits_waiting = commits_after(ss, peer->stream.end);
		}
	}
}
