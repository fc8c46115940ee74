/* SPDX-License-Identifier: MIT */
/*
 * The primary's decisions, as pure functions of plain values: when a push is safe, what an
 * acknowledgement does, how long a replica that cannot store files waits, how room is
 * made in a bounded spool, and what the replica's HAVE changes in a transfer.  The role
 * (primary_*.c) gathers the values and acts; test/unit/daemon/role/decide_test.c checks
 * the edge cases without sockets, disks or PostgreSQL.
 */
#ifndef WALSHIP_ROLE_DECIDE_H
#define WALSHIP_ROLE_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <walship/wire.h>

#include "proto/codec.h"

/* ---- a push: when is it safe (docs/protocol.md, "ACK statuses"; operations.md) ---- */

enum push_verdict {
	PUSH_WAIT_ACKS, /* fewer than sync_replicas acknowledgements */
	PUSH_WAIT_DELAY, /* every replica that lacks it is keeping up: wait spool_delay */
	PUSH_HOLD, /* registered replicas lack it: copy it into the spool now */
	PUSH_WAIT_SPOOL, /* the copy into the spool is not done yet */
	PUSH_SAFE, /* answer it */
	PUSH_SAFE_AVOIDED, /* answer it: waiting spool_delay saved a copy into the spool */
};

/* What push_decide() looks at. */
struct push_facts {
	unsigned int acks; /* replicas that acknowledged it as durable */
	unsigned int sync_replicas;
	unsigned int missing; /* registered replicas that did not acknowledge it */
	bool missing_keep_up; /* each of those is about to (push_keeping_up) */
	int64_t spool_delay_ms; /* 0: hold at once */
	bool spool_needed; /* the copy into the spool was started */
	bool spooled; /* ... and is done */
};

/*
 * Is a push safe: sync_replicas acknowledgements, and held in the spool for every other
 * registered replica (or every one of those acknowledged it)?  *@wait_until_ms is the end
 * of its spool_delay wait, 0 before it began: set here when the wait begins at @now_ms.
 */
enum push_verdict push_decide(const struct push_facts *f, int64_t now_ms, int64_t *wait_until_ms);

/* What a replica's pace says (push_keeping_up). */
struct replica_pace {
	bool backlog_left; /* it has held files left to catch up on */
	bool ack_seen; /* it acknowledged a file on this connection */
	int64_t ack_ewma_ms; /* FILE_BEGIN to ACK, smoothed, once ack_seen */
	bool being_sent; /* the push is queued for it */
};

/* Is a connected, streaming replica about to acknowledge a push: it is being sent it, has
 * no held files left, and its acknowledgements come within @spool_delay_ms? */
bool push_keeping_up(const struct replica_pace *pace, int64_t spool_delay_ms);

/* FILE_BEGIN to ACK smoothed with 1/4 weight to the newest (@took_ms); @first: no value
 * yet in @ewma_ms. */
int64_t ack_ewma_next(int64_t ewma_ms, int64_t took_ms, bool first);

/*
 * A replica answered ACK IO_ERROR (its disk, not the cluster's): can the push still make
 * sync_replicas with the @acks it has and the @sending replicas still being sent it?
 * If not it fails now rather than at push_timeout.
 */
bool push_quorum_reachable(unsigned int acks, unsigned int sending, unsigned int sync_replicas);

/* ---- acknowledgements ---- */

enum ack_outcome {
	ACK_COUNTED, /* STORED or DUPLICATE: the replica holds it */
	ACK_HELD, /* IO_ERROR: held in the spool for it and sent again later; fails nothing */
	ACK_CONFLICT, /* CONFLICT: the push fails (conflict) */
	ACK_REFUSED, /* any other status: the push fails */
};

/* What an ACK of @status does to the push and the replica. */
enum ack_outcome ack_decide(uint8_t status);

/* Whether an ACK of @status releases the replica's claim on the held copy: refused for
 * good (holding it longer would only send it again). */
bool ack_releases_claim(uint8_t status);

/* Whether an ACK of @status may come for a file whose FILE_END is queued (@ended) or not:
 * after its end always; before it only to refuse a file begun as streamed (@stream), which
 * the replica refuses as soon as it cannot store it (docs/protocol.md). */
bool ack_in_time(bool ended, bool stream, uint8_t status);

/* A replica that answered ACK IO_ERROR is sent held files again after a backoff that
 * starts at @min_ms and doubles while it keeps failing, up to @max_ms.  @prev_ms: the
 * previous backoff, 0 when it was storing files.  Both ends use IO_RETRY_MIN_MS and
 * IO_RETRY_MAX_MS (docs/protocol.md, "ACK statuses"): the primary before it sends held
 * files again, a replica before it reconnects after closing its link on an I/O error. */
#define IO_RETRY_MIN_MS 1000
#define IO_RETRY_MAX_MS 30000
int io_backoff_next(int prev_ms, int min_ms, int max_ms);

/* ---- a bounded spool (spool_max_size, spool_overflow) ---- */

enum spool_room {
	SPOOL_FITS, /* copy it in */
	SPOOL_RELEASE, /* release the claims of registered replica *slowest, then ask again */
	SPOOL_FULL, /* fail the push */
};

/*
 * A file of @size bytes is to be copied into a spool holding @used bytes (jobs in
 * progress included) of @max (0: unbounded), @fixed of them not held for any replica
 * (jobs in progress: no release frees them).  With @release_slowest, the replica furthest
 * behind (the most held files, @held[0..@n), the first of equals) makes room; one holding
 * nothing cannot, nor can any when the file would not fit beside @fixed bytes.
 */
enum spool_room spool_room_decide(uint64_t used, uint64_t fixed, uint64_t size, uint64_t max,
				  bool release_slowest, const uint64_t *held, int n, int *slowest);

/* ---- the replica's HAVE ---- */

enum have_verdict {
	HAVE_NONE, /* send the file from its start */
	HAVE_RESUME, /* send it from the replica's durable length */
	HAVE_SKIP, /* the replica holds the same file: nothing to send */
	HAVE_OTHER, /* it holds other content under the name: send it from its start */
	HAVE_LATER, /* a segment still streaming: decide once the replica's part has arrived */
};

/*
 * A segment being streamed, @avail of its @size bytes arrived: the replica's HAVE entry @e
 * can be compared only once as much has arrived as it holds (else its durable bytes would
 * look like other content and be discarded).  True: wait (HAVE_LATER).
 */
bool have_later(const struct msg_have_entry *e, uint64_t size, uint64_t avail);

/*
 * The replica said (HAVE entry @e) it holds the file of @size bytes being begun, or a
 * durable part of it.  @crc: CRC-32C of this side's first e->durable bytes, NULL when it
 * could not be read (worth reading only when e->size == @size).  Taken only when the sizes
 * agree and the CRCs do; on HAVE_RESUME *@start is the offset to send from.
 */
enum have_verdict have_decide(const struct msg_have_entry *e, uint64_t size, const uint32_t *crc,
			      uint64_t *start);

/* ---- a replica's durable stream ---- */

/*
 * What a replica holds durably of the stream, as a continuous run: everything before @end
 * (0: nothing known yet), and the durable parts it reported of segments after a gap
 * (@ahead: acknowledgements and PROGRESS may arrive out of order, each file's sync and
 * rename being independent), joined to the run as soon as the gap closes.
 */
#define STREAM_RUN_AHEAD WIRE_MAX_INFLIGHT_FILES
struct stream_run {
	uint64_t end;
	struct {
		uint64_t start, end;
	} ahead[STREAM_RUN_AHEAD];
	unsigned int nahead;
};

/*
 * The replica holds [@start, @end) durably.  @continues: it is known to hold everything
 * before @start (the stream's first segment, or a segment its HAVE listed before it).
 * Returns true when @run->end advanced.
 */
bool stream_run_add(struct stream_run *run, uint64_t start, uint64_t end, bool continues);

/* The replica's WAL after @lsn no longer counts (a timeline forked there: it is the old
 * timeline's): the run and what waits ahead of it end at @lsn at most. */
void stream_run_truncate(struct stream_run *run, uint64_t lsn);

/* ---- timeline forks ---- */

/*
 * Where each timeline before the one the stream went on on ended, as that timeline's
 * history says (its last STREAM_FORK_TLIS lines): WAL of an older timeline past that point
 * is not the new timeline's, and a replica's acknowledgement of it (one that arrives after
 * the fork) counts up to that point only.  Several forks in a row keep each timeline's
 * own end, not only the last fork's.
 */
#define STREAM_FORK_TLIS 16
struct stream_forks {
	uint32_t newest; /* the timeline of the last fork (0: none yet) */
	unsigned int n;
	struct {
		uint32_t tli;
		uint64_t end;
	} ended[STREAM_FORK_TLIS]; /* oldest first */
};

/*
 * The stream goes on on timeline @newest, whose history file is @history (@len bytes),
 * after timeline @left, which ended at @fork in that history.
 */
void stream_forks_note(struct stream_forks *f, uint32_t newest, uint32_t left, const char *history,
		       size_t len, uint64_t fork);

/*
 * A replica holds [@start, @end) of timeline @tli durably: the end that counts, cut back
 * to where @tli ended in the newest history (one older than the lines kept: where the
 * oldest kept ended; one it does not name: nothing); @start or less when none of it does.
 */
uint64_t stream_forks_clamp(const struct stream_forks *f, uint32_t tli, uint64_t start,
			    uint64_t end);

/*
 * The timeline whose WAL is at @lsn in the newest history: the oldest kept that ended
 * after it, else @current (the one streamed).  What START_REPLICATION at @lsn must name:
 * the server has the segments of an older timeline under that timeline's name.
 */
uint32_t stream_forks_timeline(const struct stream_forks *f, uint64_t lsn, uint32_t current);

#endif /* WALSHIP_ROLE_DECIDE_H */
