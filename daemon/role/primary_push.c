// SPDX-License-Identifier: MIT
/*
 * The primary's push lifecycle: a file passed by `walship push` is checked (name, regular
 * file, readable descriptor), validated as a replica would (page headers, cluster
 * identity; a segment read into the send slots has its first page checked at once and
 * the others as they are read, push_check_read()), then given to every streaming
 * replica.  Acknowledgements are counted as they
 * come (push_acked); the push is answered once it is safe (push_check: sync_replicas
 * acknowledgements, and held in the spool for every other registered replica), when a
 * replica refuses it, or at push_timeout (push_timed_out).  Held files sent to a replica
 * catching up are pushes too, with no client (push_from_spool), and so are the ready
 * segments passed with a push (CTL_F_AHEAD), shipped before their own push comes and
 * taken over by it (primary_push_ahead).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/mapguard.h"
#include "role/decide.h"
#include "role/primary_int.h"
#include "wal/page.h"

/* ---- pushes ---- */

static void push_send(struct push *p);
static void push_begin(struct push *p, struct ctl_client *client);
static void push_release_unlinked(struct push *p);
static void push_follower_go(struct push *leader, bool ok);
static void push_ahead_settled(struct push *p, bool ok);

/* Unmap and close @p's file, or keep a streamed segment's memory, zeroed, for the next
 * one (STREAM_SPARES).  Every user of the memory is gone by now: the transfers and spool
 * copies held references, and a zero-copy send its own until the kernel was done. */
static void push_memory_free(struct push *p)
{
	struct primary *pr = p->pr;

	if (p->memfd && p->stream && pr->nspares < STREAM_SPARES) {
		struct stream_spare *sp = &pr->spares[pr->nspares++];

		/* A fresh memfd reads as zeros, and so must this: a segment cut short by a
		 * timeline switch ships its unwritten tail (the .partial) as it lies.  All of
		 * it (2 ms): refused bytes were copied in beyond what was counted. */
		memset((void *)(uintptr_t)p->map, 0, p->size);
		sp->fd = p->fd;
		sp->map = p->map;
		sp->size = p->size;
		return;
	}
	if (p->map)
		munmap((void *)(uintptr_t)p->map, p->size);
	if (p->old_map)
		munmap((void *)(uintptr_t)p->old_map, p->size);
	if (p->has_old_fd)
		close(p->old_fd);
	if (p->fd >= 0)
		close(p->fd);
}

/*
 * @p is answered OK: PostgreSQL may recycle its segment's file at once (the same inode,
 * renamed and written over), while transfers to replicas that lack it may still read it.
 * Those replicas have it held in the spool (the rule for an OK), so the rest is read from
 * the spool's copy.  Where that cannot be opened, their transfers are cancelled: they are
 * sent the held copy when they connect again, never bytes PostgreSQL wrote later.
 */
static void push_read_from_spool(struct push *p);
static bool push_same_file(const struct push_file_id *a, const struct push_file_id *b);

/*
 * Cancel @p's transfers that still read its file.  One whose FILE_END is queued has read
 * it all (its acknowledgement may be what answers a push now, from the caller's stack):
 * left alone, as cancelling a whole file begun closes its connection.
 */
static void push_cancel_reading(struct push *p)
{
	p->refs++; /* not released here: the caller's release does, once nothing holds it */
	for (struct peer *peer = p->pr->peers; peer; peer = peer->next)
		for (struct xfer *x = peer->xfers; x; x = x->next)
			if (x->push == p) {
				if (!x->end_queued)
					peer_cancel_push(peer, p);
				break;
			}
	p->refs--;
}

static void push_source_to_spool(struct push *p)
{
	if (p->stream || p->from_spool || p->memfd || !p->spooled || p->fd < 0 || !p->refs ||
	    p->has_old_fd)
		return; /* (has_old_fd: moved already) */
	push_read_from_spool(p);
}

/*
 * @p is answered OK: earlier pushes of its file that failed (a timeout, a full spool: the
 * archiver tried again, and this one succeeded) may still have transfers reading the
 * same file, which PostgreSQL may now recycle (t_38b's case, for them).  Those read the
 * spool's copy of @p (held for the replicas that lack it) from here, or, where the spool
 * holds none, are cancelled: never bytes PostgreSQL wrote later.
 */
static void push_others_to_spool(struct push *p)
{
	struct primary *pr = p->pr;

	for (struct push *q = pr->pushes, *next; q; q = next) {
		next = q->next; /* (push_unref() below may release q) */
		if (q == p || strcmp(q->name, p->name) || push_waiting(q) || !q->refs ||
		    q->stream || q->from_spool || q->memfd || q->fd < 0 || q->has_old_fd)
			continue;
		q->refs++; /* released below if nothing else holds it */
		/* the same file (its inode, size and change time): the spool's copy holds its
		 * bytes; another file pushed under the name is not to be finished from it */
		if (p->spooled && push_same_file(&q->file, &p->file))
			push_read_from_spool(q);
		else
			push_cancel_reading(q);
		push_unref(q);
	}
}

/* Read the rest of @p's transfers from the spool's copy of its file (see above). */
static void push_read_from_spool(struct push *p)
{
	struct primary *pr = p->pr;
	int fd;

	fd = spool_open_file(&pr->spool, p->name);
	if (fd >= 0 && p->map) {
		void *map = mmap(NULL, p->size, PROT_READ, MAP_SHARED, fd, 0);

		if (map == MAP_FAILED) {
			close(fd);
			fd = -errno;
		} else {
			p->old_map = p->map; /* in-flight zero-copy sends may still use it */
			p->map = map;
		}
	}
	if (fd < 0) {
		log_warning("could not read \"%s\" from the spool (%s): its transfers still under "
			    "way are cancelled, to be sent the held copy later",
			    p->name, strerror(-fd));
		push_cancel_reading(p);
		return;
	}
	/* Reads in flight hold the file and complete; reads prepared and not yet submitted
	 * still name the old descriptor, which stays open with the push. */
	p->old_fd = p->fd;
	p->has_old_fd = true;
	p->fd = fd;
}

void push_spares_free(struct primary *pr)
{
	while (pr->nspares) {
		struct stream_spare *sp = &pr->spares[--pr->nspares];

		munmap((void *)(uintptr_t)sp->map, sp->size);
		close(sp->fd);
	}
}

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
	if (p->leader)
		p->leader->follower = NULL;
	if (p->follower)
		p->follower->leader = NULL;
	push_memory_free(p);
	free(p);
}

void push_unref(struct push *p)
{
	if (--p->refs == 0 && !push_waiting(p))
		push_release(p);
}

void push_settle(struct push *p, bool ok)
{
	if (!p->unsettled)
		return;
	p->unsettled = false;
	if (p->ahead)
		push_ahead_settled(p, ok);
	else
		primary_stream_settled(p, ok);
	p->refs++;
	push_follower_go(p, ok);
	push_unref(p);
}

static void push_reply(struct push *p, uint16_t code, const char *text)
{
	struct primary *pr = p->pr;

	if (code == CTL_OK && push_waiting(p)) {
		p->refs++; /* the end of this function releases it, if nothing else holds it */
		for (struct peer *peer = pr->peers; peer; peer = peer->next)
			peer_defer_safe(peer, p);
		p->refs--;
	}
	if (p->unsettled) {
		/* Shipped ahead, now answered OK: its archiver's push is answered from it at
		 * once, and PostgreSQL may recycle the file while slow replicas still read it
		 * (their transfers go on from the spool's copy, as for any push answered OK). */
		if (code == CTL_OK && p->ahead) {
			push_source_to_spool(p);
			push_others_to_spool(p);
		}
		push_settle(p, code == CTL_OK);
		return;
	}
	if (!p->client)
		return;
	control_reply(p->client, code, text, strlen(text));
	p->client = NULL;
	if (code == CTL_OK) {
		pr->st.pushes_ok++;
		push_source_to_spool(p);
		push_others_to_spool(p);
	} else {
		pr->st.pushes_failed++;
		snprintf(pr->st.last_error, sizeof(pr->st.last_error), "%s", text);
	}
	if (p->refs == 0)
		push_release(p);
}

/*
 * A pushed file compared with the streamed copy of its segment, by CRC-32C: the push's
 * 16 MiB are read on the worker thread (about 4 ms), not on the event loop, where the
 * commits waiting for the replicas' acknowledgements would wait behind them.  The push
 * waits meanwhile, sent nowhere: a follower keeps its leader (and stays out of the
 * transfers: peer_add_pending()); one pushed after its segment settled is not linked yet.
 */
struct same_job {
	struct worker_job job;
	struct push *p;
	struct push *leader; /* the streamed copy, still in memory; NULL: settled before */
	struct ctl_client *client; /* the not yet linked push's client (no leader) */
	uint32_t want; /* the streamed copy's CRC-32C */
	bool want_known; /* else read from the leader's image, on the thread too */
	unsigned int acks; /* replicas the streamed copy is durable on (no leader) */
	int err; /* the pushed file could not be read (-errno): sent as any push */
	bool same;
};

/* On the worker: only the two files' bytes, which do not change, are read. */
static void same_job_run(struct worker_job *job)
{
	struct same_job *sj = (struct same_job *)job;
	uint32_t crc;

	sj->err = push_crc(sj->p, sj->p->size, &crc);
	if (!sj->err && !sj->want_known)
		sj->err = push_crc(sj->leader, sj->leader->size, &sj->want);
	sj->same = !sj->err && crc == sj->want;
}

static void same_job_done(struct worker_job *job)
{
	struct same_job *sj = (struct same_job *)job;
	struct push *p = sj->p, *leader = sj->leader;
	struct primary *pr = p->pr;
	char text[256];

	if (sj->err)
		log_warning("could not compare \"%s\" with its streamed copy: %s; sending it",
			    p->name, strerror(-sj->err));
	if (!leader) {
		uint32_t crc;
		unsigned int acks;

		pr->ncomparing--;
		/* Still safe as remembered?  A drop, or a SIGHUP raising sync_replicas, while
		 * the file was compared on the worker: then it is sent as any push. */
		if (sj->same && primary_stream_recent(p, &crc, &acks) && crc == sj->want)
			sj->acks = acks;
		else
			sj->same = false;
		if (sj->same && control_client_gone(sj->client)) {
			/* Safe already, and no one to tell: PostgreSQL pushes it again. */
			log_log("the client of the push of \"%s\" (pid %d) went away before its "
				"answer; the file is durable already (streamed)",
				p->name, (int)control_client_pid(sj->client));
			pr->st.skipped_files++;
			pr->st.pushes_abandoned++;
			control_reply(sj->client, CTL_ERR_FAILED, "", 0); /* releases it */
			push_release_unlinked(p);
		} else if (sj->same) {
			/* Streamed already and safe: the same bytes are not sent or stored
			 * again. */
			snprintf(text, sizeof(text), "streamed already: durable on %u replica(s)",
				 sj->acks);
			log_debug("archived \"%s\": %s", p->name, text);
			pr->st.skipped_files++;
			pr->st.pushes_ok++;
			control_reply_text(sj->client, CTL_OK, text);
			push_release_unlinked(p);
		} else {
			push_begin(p, sj->client); /* sent as any push: a replica refuses other
						    * content */
		}
		free(sj);
		return;
	}
	leader->follower = NULL;
	p->leader = NULL;
	if (push_waiting(p)) { /* not failed meanwhile (push_timeout) */
		uint32_t crc;
		unsigned int acks;

		/* Still safe as remembered?  A drop, a SIGHUP raising sync_replicas, or a
		 * replica that made it safe come back without it, while the file was compared:
		 * then it is sent as any push. */
		if (sj->same && (!primary_stream_recent(p, &crc, &acks) || crc != sj->want))
			sj->same = false; /* (also one streamed while PostgreSQL did not archive,
					   * remembered nowhere: the acknowledgements it counted may
					   * have been taken back since) */
		if (sj->same) {
			pr->st.skipped_files++;
			/* Durable where the streamed copy is: said so in its answer, and in a
			 * retry's when its client went away (push_ahead_settled()). */
			p->acks = leader->acks;
			snprintf(p->acked_by, sizeof(p->acked_by), "%s", leader->acked_by);
			snprintf(text, sizeof(text),
				 "streamed already: durable on %u replica(s): %s", p->acks,
				 p->acked_by);
			log_debug("archived \"%s\": %s", p->name, text);
			push_reply(p, CTL_OK, text);
		} else {
			push_send(p);
		}
	}
	push_unref(p);
	push_unref(leader);
	free(sj);
}

/* Compare @p with its streamed copy (same_job), answering or sending it when known. */
static void push_compare(struct push *p, struct push *leader, struct ctl_client *client,
			 uint32_t want, bool want_known, unsigned int acks)
{
	struct same_job *sj = calloc(1, sizeof(*sj));

	if (!sj) { /* sent as any push: each replica answers that it holds it (DUPLICATE) */
		if (!leader) {
			push_begin(p, client);
			return;
		}
		leader->follower = NULL;
		p->leader = NULL;
		push_send(p);
		return;
	}
	sj->p = p;
	sj->leader = leader;
	sj->client = client;
	sj->want = want;
	sj->want_known = want_known;
	sj->acks = acks;
	if (leader) {
		p->refs++;
		leader->refs++;
	} else {
		p->pr->ncomparing++;
	}
	sj->job.run = same_job_run;
	sj->job.done = same_job_done;
	worker_submit(&p->pr->compare, &sj->job);
}

/*
 * Streamed segment @leader is settled (@ok: safe): its follower, the same segment pushed
 * by archive_command meanwhile, is answered at once when its content is the same, and
 * sent as any push otherwise.
 */
static void push_follower_go(struct push *leader, bool ok)
{
	struct push *p = leader->follower;

	if (!p)
		return;
	if (!ok || leader->avail != leader->size || p->size != leader->size) {
		leader->follower = NULL;
		p->leader = NULL;
		push_send(p);
		return;
	}
	push_compare(p, leader, NULL, leader->running_crc, leader->running_crc_on, 0);
}

void push_fail(struct push *p, uint16_t code, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (!push_waiting(p))
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (p->ahead && p->unsettled) /* its own push, when it comes, starts again */
		log_debug("shipping \"%s\" ahead of its push failed: %s", p->name, text);
	else
		log_log("could not archive \"%s\": %s", p->name, text);
	push_reply(p, code, text);
}

bool push_acked_by(const struct push *p, const char *replica)
{
	for (unsigned int i = 0; i < p->nacked; i++)
		if (!strcmp(p->acked_names[i], replica))
			return true;
	return false;
}

/*
 * Validate @p's pages up to @to (a page boundary) as far as they are not yet: from @data,
 * which holds the file's bytes from @data_off to @to, and through the validation ring for
 * pages before @data_off (all of them when @data is NULL; and the page @data_off falls
 * inside, when it is not a page boundary).  At the end of the file, the
 * validator's last checks.  Returns 0, or -1 when @p is found invalid or cannot be read:
 * then failed and answered (durability rule 4).
 */
static int push_check_upto(struct push *p, uint64_t to, const uint8_t *data, uint64_t data_off)
{
	struct primary *pr = p->pr;
	struct wal_validator *wv = &p->wv;
	uint32_t block = wv->id.block_size;
	uint64_t ring_to = data ? data_off : to;
	int ret = 0;

	if (!p->checking)
		return 0;
	/* Data that begins inside a page (a transfer resumed at a replica's durable length,
	 * the end of its last whole record): that page's header is before it, read through
	 * the ring with the pages before, to the page's end. */
	if (data && block && ring_to % block && wv->offset < ring_to) {
		ring_to += block - ring_to % block;
		if (ring_to > p->size)
			ring_to = p->size;
	}
	if (wv->offset < ring_to)
		ret = validate_fd_pages(&pr->vring, p->fd, wv, ring_to);
	/* Fed up to a page boundary only (but at the file's end): the validator stays on one,
	 * where the ring can go on from it for a read that starts further on (another
	 * replica's transfer resumed past it, reads completing out of order).  The page
	 * cut off is checked by the next read, or through the ring. */
	if (data && block && to != p->size)
		to -= to % block;
	if (!ret && data && wv->offset < to && wv->offset >= data_off)
		ret = wal_validator_feed(wv, data + (wv->offset - data_off),
					 (size_t)(to - wv->offset));
	if (!ret && wv->offset == p->size)
		ret = wal_validator_end(wv, NULL);
	if (!ret) {
		p->checking = wv->offset < p->size;
		return 0;
	}
	p->checking = false;
	if (!push_waiting(p))
		return -1;
	if (p->ahead && p->unsettled) { /* counted by its own push, which starts again */
		log_debug("shipping \"%s\" ahead of its push failed: %s", p->name, wv->message);
	} else {
		pr->st.invalid += ret == -EINVAL;
		log_warning("refused push of \"%s\": %s", p->name, wv->message);
	}
	push_reply(p, ret == -EINVAL ? CTL_ERR_INVALID : CTL_ERR_FAILED, wv->message);
	return -1;
}

void push_check_read(struct push *p, uint64_t offset, const uint8_t *data, uint32_t len)
{
	push_check_upto(p, offset + len, data, offset);
}

/*
 * Answer the push once it is safe (durability rule 1): durable on sync_replicas replicas, and
 * held in the spool for every registered replica that has not acknowledged it.  The copy
 * into the spool is made only then, and only if some registered replica still lacks the
 * file: with every registered replica quick enough, nothing is copied at all.
 */
void push_check(struct push *p)
{
	struct primary *pr = p->pr;
	struct push_facts f = { .acks = p->acks,
				.sync_replicas = (unsigned int)pr->cfg.sync_replicas,
				.missing_keep_up = true,
				.spool_delay_ms = pr->cfg.spool_delay_ms,
				.spool_needed = p->spool_needed,
				.spooled = p->spooled };
	char text[512];

	/* A streamed segment is not safe before it is whole. */
	if (!push_waiting(p) || p->avail < p->size)
		return;
	/* Registered replicas that lack it, and whether each is about to acknowledge it. */
	for (int i = 0; !p->spool_needed && i < pr->nregistered; i++) {
		if (push_acked_by(p, pr->registered[i]))
			continue;
		f.missing++;
		f.missing_keep_up = f.missing_keep_up && f.spool_delay_ms > 0 &&
				    primary_keeping_up(pr, pr->registered[i], p);
	}

	switch (push_decide(&f, clock_now_ms(), &p->spool_wait_until_ms)) {
	case PUSH_WAIT_ACKS:
	case PUSH_WAIT_SPOOL:
	case PUSH_WAIT_DELAY: /* push_acked() or primary_tick() looks again */
		return;
	case PUSH_HOLD:
		if (push_check_upto(p, p->size, NULL, 0) < 0)
			return; /* refused */
		if (primary_spool_room(pr, p) && push_spool(p) < 0)
			push_fail(p, CTL_ERR_FAILED, "out of memory");
		return; /* answered when the spool job is done */
	case PUSH_SAFE_AVOIDED:
		pr->st.spool_avoided++;
		break;
	case PUSH_SAFE:
		break;
	}
	if (push_check_upto(p, p->size, NULL, 0) < 0)
		return; /* refused */
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
void push_acked(struct push *p, const char *replica)
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

void push_unacked(struct push *p, const char *replica)
{
	unsigned int kept = 0;
	size_t used = 0;

	for (unsigned int i = 0; i < p->nacked; i++)
		if (strcmp(p->acked_names[i], replica))
			memmove(p->acked_names[kept++], p->acked_names[i], WIRE_MAX_NAME + 1);
	if (kept == p->nacked)
		return;
	p->nacked = kept;
	p->acks--;
	p->acked_by[0] = '\0';
	for (unsigned int i = 0; i < p->nacked && used < sizeof(p->acked_by); i++)
		used += (size_t)snprintf(p->acked_by + used, sizeof(p->acked_by) - used, "%s%s",
					 used ? ", " : "", p->acked_names[i]);
	/* Its claim on the spool's copy went with its acknowledgement: claimed again for it,
	 * in case it goes away before it stores the file again. */
	if (!p->pr->relay)
		push_spool_reclaim(p);
}

/* Whether the replicas still being sent @p (@sending, counted here) and those that hold it
 * can make up sync_replicas; if not, @p fails now with @code, p->io_error saying why. */
static bool push_quorum_left(struct push *p, uint16_t code, unsigned int *sending,
			     unsigned int away)
{
	struct primary *pr = p->pr;

	*sending = 0;
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    peer_has_file(peer, p->name))
			(*sending)++;
	if (push_quorum_reachable(p->acks, *sending + away, (unsigned int)pr->cfg.sync_replicas))
		return true;
	push_fail(p, code,
		  "%s (%u of %d required replica acknowledgements, and %u other replica(s) being "
		  "sent it)",
		  p->io_error, p->acks, pr->cfg.sync_replicas, *sending);
	return false;
}

/*
 * A replica could not store @p (ACK IO_ERROR; its transfer is gone): if the replicas still
 * being sent it can make up sync_replicas, the push goes on and @p is held for the failing
 * one (push_check); if they cannot, it fails now rather than at push_timeout.  A streamed
 * segment never fails so: no archiver would push it again.  It waits, as the commits in it
 * do, and the failing replica is sent it again after its backoff (peer_io_retry(), which
 * gives it the pushes still waiting).
 */
void push_io_error(struct push *p)
{
	unsigned int sending;

	if (!push_waiting(p))
		return;
	if (p->stream || push_quorum_left(p, CTL_ERR_FAILED, &sending, 0))
		push_check(p); /* it may have waited for that replica: hold it for it now */
}

/*
 * A replica refused streamed segment @p for good (its archive holds other content under
 * the name, the bytes did not validate there; counted and shown, and what it had
 * acknowledged of it set aside there, never removed).  A pushed file fails at once
 * (PostgreSQL keeps it and pushes it again); a streamed segment goes on to the other
 * replicas while they can still make up sync_replicas, as after a replica's I/O error
 * (push_io_error()): those being sent it, and the registered ones away or between I/O
 * retries, which are sent it when back (push_registered_away()).  One replica's stray
 * file does not fail it for the others.  The
 * refusing replica does not hold it (peer_stream_refused()): its durable position counts
 * past it only once the segment is safe on the others (peer_holds_unsafe_before()), never
 * if it fails (stream_failed_add()).  Refused before the segment is safe, while it is
 * registered, the segment is held for it in the spool and sent again when it reconnects
 * (its archive repaired, it stores it; else it refuses it again and the claim is
 * released); refused after, its claim is released at once (ack_releases_claim()).
 */
void push_forget_refusals(struct primary *pr, const char *replica)
{
	for (struct push *p = pr->pushes; p; p = p->next) {
		for (unsigned int i = 0; i < p->nrefused; i++) {
			if (strcmp(p->refused_names[i], replica))
				continue;
			p->nrefused--;
			memmove(p->refused_names[i], p->refused_names[p->nrefused],
				sizeof(p->refused_names[i]));
			break;
		}
	}
}

bool push_refused_by(const struct push *p, const char *replica)
{
	for (unsigned int i = 0; i < p->nrefused; i++)
		if (!strcmp(p->refused_names[i], replica))
			return true;
	return false;
}

/* Registered replicas that neither hold nor refused streamed segment @p and are not being
 * sent it: away, or between I/O retries; they are sent it when they are back
 * (peer_add_pending(), peer_io_retry()). */
static unsigned int push_registered_away(const struct push *p)
{
	const struct primary *pr = p->pr;
	unsigned int away = 0;

	for (int i = 0; i < pr->nregistered; i++) {
		const char *name = pr->registered[i];
		bool sending = false;

		if (push_acked_by(p, name) || push_refused_by(p, name))
			continue;
		for (const struct peer *peer = pr->peers; peer && !sending; peer = peer->next)
			sending = peer->state == PEER_STREAMING && !peer->conn.closing &&
				  !strcmp(peer->name, name) && peer_has_file(peer, p->name);
		away += !sending;
	}
	return away;
}

void push_stream_refused(struct push *p, uint16_t code, const char *replica)
{
	unsigned int sending, away;

	/* Recorded whether it waits or not: a relay's growing segment, which waits for no
	 * one, is not given again to the downstream that refused it (relay_peer_progress()
	 * at its next acknowledgement gave it back, refused again, for ever). */
	if (p->nrefused < PUSH_MAX_REFUSALS && !push_refused_by(p, replica))
		snprintf(p->refused_names[p->nrefused++], WIRE_MAX_NAME + 1, "%s", replica);
	if (!push_waiting(p))
		return;
	away = push_registered_away(p);
	if (!push_quorum_left(p, code, &sending, away))
		return;
	log_log("streamed segment \"%s\" goes on without the replica that refused it: durable "
		"on %u replica(s), %u other(s) being sent it, %u registered one(s) away (%s)",
		p->name, p->acks, sending, away, p->io_error);
	push_check(p);
}

void push_stream_refusals_recheck(struct primary *pr)
{
	for (struct push *p = pr->pushes, *next; p; p = next) {
		unsigned int sending;

		p->refs++;
		if (p->stream && p->nrefused && push_waiting(p) &&
		    push_quorum_left(p, CTL_ERR_FAILED, &sending, push_registered_away(p)))
			push_check(p);
		next = p->next;
		push_unref(p);
	}
}

/* push_timeout is over and @p is not safe yet: fail it, saying what it waited for. */
void push_timed_out(struct push *p)
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
			  p->timeout_ms);
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
		  p->acks, pr->cfg.sync_replicas, p->timeout_ms, connected, more,
		  p->io_error[0] ? "; " : "", p->io_error);
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
 * Validate a pushed file before its push can succeed (durability rule 4), with the validator
 * the replicas use (wal/page.h): the page headers of a segment or .partial, the text of a
 * history or backup file.  Read through @map (send_source = map), else a segment's page
 * headers alone through the primary's validation ring (ring/validate.h).
 *
 * Without a mapping for the send, none is made for the validation: the first touch of each
 * page of a fresh mapping is a page fault (on a guest with shadow page tables, an exit to
 * the hypervisor, MAP_POPULATE or not), and the validator touches every 8 KiB page header.
 * Profiled under load (perf record -g on the primary, send_source = buffers), that
 * validation was about 30 % of the sender's CPU.  Reading the whole file with pread, as
 * until 2026-12-03, cost about 2 ms of CPU per cached segment; its headers alone, one ring
 * read each, about 1 ms.  Returns 0 and fills @id, or a negative errno with the reason in
 * wv->message.
 */
static int push_validate(struct primary *pr, int fd, const uint8_t *map, uint64_t size,
			 const struct wal_name *wn, struct wal_validator *wv,
			 struct wal_identity *id)
{
	struct push_validation pv = { .map = map, .size = size, .wn = wn, .wv = wv, .id = id };
	int ret;

	if (!map)
		return validate_fd(&pr->vring, fd, wn, 0, wv, id);
	ret = mapguard_call(push_validate_mapped, &pv);
	if (ret == -EFAULT)
		snprintf(wv->message, sizeof(wv->message),
			 "the file shrank while it was being validated");
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
	if (!pr->id.system_identifier) {
		primary_fix_identity(pr, id);
		return 0;
	}
	if (wal_identity_explain(&pr->id, id, name, "primary ships", why, whylen) !=
	    WAL_IDENTITY_SAME)
		return -EINVAL;
	return 0;
}

/*
 * A push of file @name, open as @fd (owned by the push from here on), of @size bytes:
 * mapped read-only when send_source = map (else, or if that fails, read into slots).
 * Not yet in pr->pushes.  Returns NULL when out of memory (@fd is left open).
 */
static struct push *push_new(struct primary *pr, const char *name, const struct wal_name *wn,
			     int fd, uint64_t size)
{
	struct push *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->pr = pr;
	p->id = ++pr->next_push_id;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->wn = *wn;
	p->fd = fd;
	p->size = p->avail = size;
	if (pr->cfg.send_source == CONFIG_SEND_MAP && p->size) {
		void *map = mmap(NULL, p->size, PROT_READ, MAP_SHARED, fd, 0);

		if (map == MAP_FAILED)
			log_debug("could not map \"%s\" (%s); reading it into buffers", name,
				  strerror(errno));
		else
			p->map = map;
	}
	return p;
}

/* Free @p, never linked into the pushes in progress, with its mapping and descriptor. */
static void push_release_unlinked(struct push *p)
{
	push_memory_free(p);
	free(p);
}

/* Add @p to the pushes in progress. */
static void push_link(struct push *p)
{
	struct primary *pr = p->pr;

	p->started_ms = clock_now_ms();
	p->next = pr->pushes;
	pr->pushes = p;
	pr->npushes++;
}

/* A held file, opened from the spool, to send to a replica catching up. */
struct push *push_from_spool(struct primary *pr, const char *name, int *err)
{
	struct wal_name wn;
	struct stat sb;
	struct push *p = NULL;
	int fd = pr->relay ? relay_open_file(pr, name) : spool_open_file(&pr->spool, name);

	if (fd < 0) {
		*err = fd;
		return NULL;
	}
	if (fstat(fd, &sb) < 0)
		*err = -errno;
	else if (wal_name_parse(name, &wn) < 0)
		*err = -EINVAL; /* (the spool holds WAL names only) */
	else if (!(p = push_new(pr, name, &wn, fd, (uint64_t)sb.st_size)))
		*err = -ENOMEM;
	if (!p) {
		close(fd);
		return NULL;
	}
	p->from_spool = true;
	push_link(p);
	return p;
}

/* CRC-32C of the first @len bytes of @p's file: through its mapping, else read. */
int push_crc(const struct push *p, uint64_t len, uint32_t *crc)
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

/*
 * Can the file passed as @fd for @name be pushed at all: a WAL file name, a regular file,
 * a descriptor open for reading (every replica connection reads it: one that cannot be
 * read fails here, alone)?  Returns 0, or -EINVAL with @text filled.
 */
static int push_check_file(const char *name, int fd, struct wal_name *wn, struct stat *sb,
			   char *text, size_t len)
{
	int flags;

	if (wal_name_parse(name, wn) < 0) {
		snprintf(text, len, "\"%s\" is not a WAL file name", name);
		return -EINVAL;
	}
	if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode)) {
		snprintf(text, len, "\"%s\" is not a regular file", name);
		return -EINVAL;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_PATH) || (flags & O_ACCMODE) == O_WRONLY) {
		snprintf(text, len, "the descriptor passed for \"%s\" is not open for reading",
			 name);
		return -EINVAL;
	}
	/* io_uring honours O_NONBLOCK on a regular file: a read of pages not cached would
	 * fail with EAGAIN.  walship's clients clear it; another client on the socket may
	 * not.  (The open file description is the client's too: it closes it after.) */
	if ((flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		snprintf(text, len, "could not clear O_NONBLOCK on the descriptor of \"%s\": %s",
			 name, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/*
 * Whether @p's pages are validated as they are read into the send slots rather than
 * here: a segment (or .partial) read into buffers, with the validation ring there for
 * the pages no read brings.  The validator checks page headers alone, and the slots hold
 * them anyway: checking them there costs nothing more, where reading them for the
 * validation cost about 1 ms of CPU per segment (ring/validate.h), 2,048 reads each one
 * more event for the BPF probes.
 */
static bool push_checks_as_read(const struct push *p)
{
	return !p->map && !p->memfd && p->pr->vring.ready &&
	       (p->wn.kind == WAL_FILE_SEGMENT || p->wn.kind == WAL_FILE_PARTIAL);
}

/*
 * Nothing unchecked is answered or held: the same checks as a replica's (content, then
 * the cluster it belongs to).  A file of another cluster, or whose first page is not
 * right, is refused before anything is sent; a segment read into the send slots has its
 * other pages checked there (push_check_read()), and whatever no read brought before it
 * is answered or held (push_check()).  Returns 0, or -EINVAL with @text filled (counted
 * when @count: a segment passed ahead is counted by its own push).
 */
static int push_check_content(struct push *p, char *text, size_t len, bool count)
{
	struct primary *pr = p->pr;
	struct wal_validator wv;
	struct wal_identity id;

	if (push_checks_as_read(p)) {
		if (validate_fd_first_page(p->fd, &p->wn, p->size, 0, &p->wv) < 0) {
			snprintf(text, len, "%s", p->wv.message);
			pr->st.invalid += count;
			return -EINVAL;
		}
		id = p->wv.id;
		p->checking = true;
	} else if (push_validate(pr, p->fd, p->map, p->size, &p->wn, &wv, &id) < 0) {
		snprintf(text, len, "%s", wv.message);
		pr->st.invalid += count;
		return -EINVAL;
	}
	if ((p->wn.kind == WAL_FILE_SEGMENT || p->wn.kind == WAL_FILE_PARTIAL) &&
	    primary_check_identity(pr, &id, p->name, text, len) < 0) {
		pr->st.sysid_refused += count;
		return -EINVAL;
	}
	return 0;
}

/*
 * The client of @p went away before its answer (PostgreSQL's archiver stopped or gave up,
 * walship push was killed).  Nothing is written to it, and the push is not failed: it goes
 * on with no one waiting for it, as a segment shipped ahead of its push does, under the
 * same rules and the same push_timeout.  PostgreSQL pushes the file again: that push takes
 * this one over while it is in progress, or is answered at once once it is safe
 * (push_ahead_take), rather than shipping the same file a second time beside it.
 */
static void push_client_gone(struct push *p)
{
	struct ctl_client *client = p->client;

	log_log("the client of the push of \"%s\" (pid %d) went away before its answer; the "
		"file is shipped on for the push that retries it",
		p->name, (int)control_client_pid(client));
	p->pr->st.pushes_abandoned++;
	p->client = NULL;
	p->ahead = true;
	p->unsettled = true;
	control_reply(client, CTL_ERR_FAILED, "", 0); /* releases it; nothing is sent */
}

void primary_client_gone(void *ctx, struct ctl_client *client)
{
	struct primary *pr = ctx;

	for (struct push *p = pr->pushes; p; p = p->next) {
		if (p->client == client) {
			push_client_gone(p);
			return;
		}
	}
	/* Not linked: compared with the stream's copy (same_job), whose end sees it gone. */
}

/* @p is valid: send it to every streaming replica that stores files, and answer it once
 * it is safe (@client NULL: a streamed segment, settled instead). */
static void push_begin(struct push *p, struct ctl_client *client)
{
	struct primary *pr = p->pr;
	struct push *leader;

	p->client = client;
	push_link(p);
	p->timeout_ms = pr->cfg.push_timeout_ms;
	p->deadline_ms = p->started_ms + p->timeout_ms;
	if (client)
		log_debug("push of \"%s\" (%" PRIu64 " bytes) from pid %d", p->name, p->size,
			  (int)control_client_pid(client));
	if (client && control_client_gone(client))
		push_client_gone(p);
	for (leader = client ? pr->pushes : NULL; leader; leader = leader->next)
		if (leader->stream && leader->unsettled && !leader->follower &&
		    !strcmp(leader->name, p->name))
			break;
	if (leader) {
		/* The stream has this segment in flight: wait for it rather than send it. */
		leader->follower = p;
		p->leader = leader;
		return;
	}
	push_send(p);
}

/* Send @p, linked, to every streaming replica that stores files, and answer it (or settle
 * it) once it is safe. */
static void push_send(struct push *p)
{
	struct primary *pr = p->pr;

	unsigned int xfers = 0;

	p->refs++; /* held until the loop below has added every transfer */
	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    peer->io == PEER_IO_OK) {
			peer_add_xfer(peer, p);
			xfers++;
		}
	}
	/* No transfer reads it: its pages are validated now, so that a bad file is refused
	 * at once rather than when push_timeout ends. */
	if (!xfers)
		push_check_upto(p, p->size, NULL, 0);
	push_check(p); /* sync_replicas = 0: hold it for the registered replicas now */
	push_unref(p);
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		peer_fill(peer);
}

/* ---- shipping ahead of the archiver (CTL_F_AHEAD) ---- */

/*
 * PostgreSQL's archiver pushes one segment at a time and waits for each: alone, every
 * segment would cost its transfer, then the replica's flush, then the turn to the next
 * push, one after the other.  The segments after the pushed one that are ready already
 * (walship push and the archive module pass them, CTL_F_AHEAD) are shipped meanwhile, as
 * pushes with no client, under the same rules; when the archiver pushes one of them, its
 * push takes over what was started instead of sending it again.
 */

/* The identity of the file @sb describes. */
static struct push_file_id push_file_id_of(const struct stat *sb)
{
	return (struct push_file_id){ .dev = sb->st_dev,
				      .ino = sb->st_ino,
				      .size = (uint64_t)sb->st_size,
				      .ctime = sb->st_ctim };
}

/*
 * Whether @a and @b are the same file, not written between: the same inode, size and
 * change time.  WAL segments are not written once ready; a file that is, or another one
 * under the name, is pushed as any other (a replica refuses other content).
 */
static bool push_same_file(const struct push_file_id *a, const struct push_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* The segment shipped ahead @p is settled: remembered if it is safe. */
static void push_ahead_settled(struct push *p, bool ok)
{
	struct primary *pr = p->pr;
	struct ahead_recent *r;

	if (!ok)
		return;
	r = &pr->ahead_recent[pr->ahead_next++ % AHEAD_RECENT];
	snprintf(r->name, sizeof(r->name), "%s", p->name);
	r->file = p->file;
	r->acks = p->acks;
	snprintf(r->acked_by, sizeof(r->acked_by), "%s", p->acked_by);
}

void push_recent_distrust(struct primary *pr)
{
	for (unsigned int i = 0; i < AHEAD_RECENT; i++)
		pr->ahead_recent[i].acks = 0;
	for (unsigned int i = 0; i < STREAM_RECENT; i++)
		pr->recent[i].acks = 0;
}

/* Whether @peer's inventory lists @name whole. */
static bool peer_lists_whole(const struct peer *peer, const char *name)
{
	for (uint32_t i = 0; i < peer->have.count; i++)
		if (!strcmp(peer->have.entries[i].name, name))
			return peer->have.entries[i].durable == peer->have.entries[i].size;
	return false;
}

void push_recent_returning(struct primary *pr, const struct peer *peer)
{
	/* One it lacks, with no claim on the spool's copy for it, it held once (it
	 * acknowledged it before or after the segment settled, the claim released then) or
	 * was never given: either way a push of it is sent, not answered from memory.
	 * Forgotten, not counted down: with sync_replicas = 0 any count would do. */
	if (pr->relay)
		return;
	for (unsigned int i = 0; i < AHEAD_RECENT; i++) {
		struct ahead_recent *r = &pr->ahead_recent[i];

		if (r->name[0] && !peer_lists_whole(peer, r->name) &&
		    !spool_holds(&pr->spool, peer->name, r->name))
			r->name[0] = '\0';
	}
	for (unsigned int i = 0; i < STREAM_RECENT; i++) {
		struct stream_recent *r = &pr->recent[i];

		if (r->safe && r->name[0] && !peer_lists_whole(peer, r->name) &&
		    !spool_holds(&pr->spool, peer->name, r->name))
			r->safe = false;
	}
}

/* The segment @name, the file @id, shipped ahead and safe, or NULL.  Safe as it was then:
 * with sync_replicas raised since (SIGHUP), on fewer replicas than it asks now, it is sent
 * as any push (the replicas that hold it answer DUPLICATE). */
static const struct ahead_recent *push_ahead_safe(const struct primary *pr, const char *name,
						  const struct push_file_id *id)
{
	for (unsigned int i = 0; i < AHEAD_RECENT; i++)
		if (!strcmp(pr->ahead_recent[i].name, name) &&
		    push_same_file(&pr->ahead_recent[i].file, id) &&
		    pr->ahead_recent[i].acks >= (unsigned int)pr->cfg.sync_replicas)
			return &pr->ahead_recent[i];
	return NULL;
}

/*
 * The push of @name (the file @id, open as @fd) from @client: was it shipped ahead?
 * While that is in progress the push takes it over (answered when it is safe, within its
 * own push_timeout); once it is safe, the push is answered at once.  Returns true when
 * @fd was taken (closed) and the push is taken care of.
 */
static bool push_ahead_take(struct primary *pr, struct ctl_client *client, const char *name, int fd,
			    const struct push_file_id *id)
{
	const struct ahead_recent *r;
	struct push *p;
	char text[384];

	for (p = pr->pushes; p; p = p->next) {
		if (!p->ahead || !p->unsettled || strcmp(p->name, name) ||
		    !push_same_file(&p->file, id))
			continue;
		close(fd);
		p->unsettled = false;
		p->client = client;
		p->timeout_ms = pr->cfg.push_timeout_ms;
		p->deadline_ms = clock_now_ms() + p->timeout_ms;
		pr->st.ahead_taken++;
		log_debug("push of \"%s\" from pid %d takes over its shipping, begun %" PRId64
			  " ms ago",
			  name, (int)control_client_pid(client), clock_now_ms() - p->started_ms);
		return true;
	}
	r = push_ahead_safe(pr, name, id);
	if (!r)
		return false;
	close(fd);
	pr->st.ahead_taken++;
	pr->st.pushes_ok++;
	snprintf(text, sizeof(text), "shipped ahead: durable on %u replica(s): %s", r->acks,
		 r->acked_by);
	log_debug("archived \"%s\": %s", name, text);
	control_reply(client, CTL_OK, text, strlen(text));
	return true;
}

/* Whether a push of @name is in progress or known safe (streamed, or shipped ahead of
 * the same file @id): shipping it ahead would add nothing. */
static bool push_known(const struct primary *pr, const char *name, const struct push_file_id *id)
{
	for (const struct push *p = pr->pushes; p; p = p->next)
		if (!p->from_spool && !strcmp(p->name, name))
			return true;
	for (unsigned int i = 0; i < STREAM_RECENT; i++)
		if (pr->recent[i].safe && !strcmp(pr->recent[i].name, name))
			return true;
	return push_ahead_safe(pr, name, id) != NULL;
}

/* Ship segment @name, open as @fd (owned), ahead of its push, unless there is no need
 * or no room: at most half of max_queued_pushes, so that pushes are never refused for
 * shipping ahead.  Nothing is answered for it; what stops it is logged at debug level. */
static void push_ahead_start(struct primary *pr, const char *name, int fd)
{
	struct wal_name wn;
	struct stat sb;
	struct push_file_id id;
	struct push *p;
	char text[384];

	if (push_check_file(name, fd, &wn, &sb, text, sizeof(text)) < 0) {
		close(fd);
		return;
	}
	id = push_file_id_of(&sb);
	if (push_known(pr, name, &id) ||
	    pr->npushes >= (unsigned int)pr->cfg.max_queued_pushes / 2) {
		close(fd);
		return;
	}
	p = push_new(pr, name, &wn, fd, (uint64_t)sb.st_size);
	if (!p) {
		close(fd);
		return;
	}
	p->file = id;
	if (push_check_content(p, text, sizeof(text), false) < 0) {
		log_debug("not shipping \"%s\" ahead of its push: %s", name, text);
		push_release_unlinked(p);
		return;
	}
	p->ahead = true;
	p->unsettled = true;
	pr->st.pushes_ahead++;
	log_debug("shipping \"%s\" (%" PRIu64 " bytes) ahead of its push", name, p->size);
	push_begin(p, NULL);
}

void primary_push_ahead(struct primary *pr, const char *name, const int *fds, unsigned int nfds)
{
	char next[WAL_NAME_MAX + 1];
	struct stat sb;

	for (unsigned int i = 0; i < nfds; i++) {
		/* Each one's name from the pushed segment's and its own (whole-segment) size. */
		if (pr->stopping || fstat(fds[i], &sb) < 0 || sb.st_size > UINT32_MAX ||
		    wal_name_next_segment(name, (uint32_t)sb.st_size, i + 1, next, sizeof(next)) <
			    0) {
			control_close_fds(fds + i, nfds - i);
			return;
		}
		push_ahead_start(pr, next, fds[i]);
	}
}

void primary_push(struct primary *pr, struct ctl_client *client, const char *name, int fd)
{
	struct push_file_id id;
	struct wal_name wn;
	struct stat sb;
	struct push *p;
	char text[384];
	unsigned int acks;
	uint32_t want;

	if (fd < 0) {
		control_reply_text(client, CTL_ERR_INVALID, "no file descriptor passed");
		return;
	}
	if (push_check_file(name, fd, &wn, &sb, text, sizeof(text)) < 0)
		goto out_refuse;
	if (pr->stopping) {
		close(fd);
		control_reply_text(client, CTL_ERR_FAILED, "walshipd is shutting down");
		pr->st.pushes_failed++;
		return;
	}
	id = push_file_id_of(&sb);
	if (push_ahead_take(pr, client, name, fd, &id))
		return;
	if (pr->npushes + pr->ncomparing >= (unsigned int)pr->cfg.max_queued_pushes) {
		close(fd);
		snprintf(text, sizeof(text), "too many pushes in progress (max_queued_pushes = %d)",
			 pr->cfg.max_queued_pushes);
		log_warning("could not archive \"%s\": %s", name, text);
		control_reply(client, CTL_ERR_BUSY, text, strlen(text));
		pr->st.pushes_failed++;
		return;
	}
	p = push_new(pr, name, &wn, fd, (uint64_t)sb.st_size);
	if (!p) {
		close(fd);
		control_reply_text(client, CTL_ERR_FAILED, "out of memory");
		return;
	}
	p->file = id;
	if (push_check_content(p, text, sizeof(text), true) < 0)
		goto out_refuse_push;
	if (primary_stream_recent(p, &want, &acks)) {
		push_compare(p, NULL, client, want, true, acks);
		return;
	}
	push_begin(p, client);
	return;

out_refuse_push:
	push_release_unlinked(p);
	goto out_refused;
out_refuse:
	close(fd);
out_refused:
	log_warning("refused push of \"%s\": %s", name, text);
	pr->st.pushes_failed++;
	control_reply(client, CTL_ERR_INVALID, text, strlen(text));
}

/* A push of @name held in memory (a memfd of @size bytes, mapped writable, all zero), not
 * linked: the stream fills it; a streamed segment (@stream) takes a spare's memory when
 * one of its size is there.  Returns NULL when it cannot be made (logged). */
static struct push *push_mem_new(struct primary *pr, const char *name, uint64_t size, bool stream)
{
	struct push *p;
	void *map;
	int fd = -1;

	p = calloc(1, sizeof(*p));
	if (!p) {
		log_error("out of memory");
		return NULL;
	}
	if (stream && pr->nspares && pr->spares[pr->nspares - 1].size == size) {
		struct stream_spare *sp = &pr->spares[--pr->nspares];

		fd = sp->fd;
		map = (void *)(uintptr_t)sp->map;
	} else {
		fd = memfd_create("walship-stream", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
			log_error("could not make room in memory for \"%s\": %s", name,
				  strerror(errno));
			goto out_close;
		}
		map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (map == MAP_FAILED) {
			log_error("could not map \"%s\" in memory: %s", name, strerror(errno));
			goto out_close;
		}
	}
	p->pr = pr;
	p->stream = stream;
	p->memfd = true;
	p->id = ++pr->next_push_id;
	snprintf(p->name, sizeof(p->name), "%s", name);
	wal_name_parse(p->name, &p->wn);
	p->fd = fd;
	p->map = map;
	p->size = size;
	p->unsettled = true;
	return p;

out_close:
	if (fd >= 0)
		close(fd);
	free(p);
	return NULL;
}

struct push *push_stream_begin(struct primary *pr, uint32_t timeline, uint64_t lsn,
			       uint32_t seg_size)
{
	char name[WAL_NAME_MAX + 1];
	struct push *p;

	wal_name_format_segment(name, sizeof(name), timeline, lsn / seg_size, seg_size);
	p = push_mem_new(pr, name, seg_size, true);
	if (!p)
		return NULL;
	p->lsn = lsn;
	if (wal_validator_begin(&p->wv, &p->wn, seg_size, 0) < 0) {
		log_error("could not stream \"%s\": %s", p->name, p->wv.message);
		push_release_unlinked(p);
		return NULL;
	}
	push_begin(p, NULL);
	return p;
}

int push_mem_begin(struct primary *pr, const char *name, const void *content, uint64_t len)
{
	struct wal_validator wv;
	struct wal_identity id;
	struct push *p;

	if (!len || !wal_name_valid(name))
		return -EINVAL; /* a history file or a .partial is never empty */
	p = push_mem_new(pr, name, len, false);
	if (!p)
		return -ENOMEM;
	p->avail = len;
	memcpy((uint8_t *)(uintptr_t)p->map, content, len);
	if (wal_validate_buffer(p->map, len, &p->wn, pr->id.system_identifier, &wv, &id) < 0) {
		log_error("could not ship \"%s\": %s", name, wv.message);
		pr->st.invalid++;
		push_release_unlinked(p);
		return -EINVAL;
	}
	push_begin(p, NULL);
	return 0;
}

struct push *push_relay_begin(struct primary *pr, const char *name, int fd, uint64_t size,
			      uint64_t avail, bool stream, uint64_t lsn)
{
	struct wal_name wn;
	struct push *p;

	if (wal_name_parse(name, &wn) < 0 || pr->stopping) {
		close(fd);
		return NULL;
	}
	/* Never mapped (relay_start() sets send_source = buffers): a growing file is
	 * shorter than its mapping would be. */
	p = push_new(pr, name, &wn, fd, size);
	if (!p) {
		log_error("out of memory");
		close(fd);
		return NULL;
	}
	p->avail = avail;
	p->stream = stream;
	p->lsn = lsn;
	p->refs = 1; /* the caller's */
	push_link(p); /* the caller gives it to the replicas that lack it */
	return p;
}
