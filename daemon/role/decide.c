// SPDX-License-Identifier: MIT
/*
 * The primary's decisions (role/decide.h): pure functions, no state of their own, called
 * by primary_push.c, primary_hold.c and primary_xfer.c with the values they gather.
 */
#include "role/decide.h"

#include <string.h>

#include "wal/name.h"

enum push_verdict push_decide(const struct push_facts *f, int64_t now_ms, int64_t *wait_until_ms)
{
	if (f->acks < f->sync_replicas)
		return PUSH_WAIT_ACKS;
	if (!f->spool_needed) {
		if (f->missing && f->spool_delay_ms > 0 && f->missing_keep_up) {
			/* A copy is likely not needed: they acknowledge within spool_delay. */
			if (!*wait_until_ms)
				*wait_until_ms = now_ms + f->spool_delay_ms;
			if (now_ms < *wait_until_ms)
				return PUSH_WAIT_DELAY;
		}
		if (f->missing)
			return PUSH_HOLD;
		return *wait_until_ms ? PUSH_SAFE_AVOIDED : PUSH_SAFE;
	}
	return f->spooled ? PUSH_SAFE : PUSH_WAIT_SPOOL;
}

bool push_keeping_up(const struct replica_pace *pace, int64_t spool_delay_ms)
{
	return !pace->backlog_left && pace->ack_seen && pace->ack_ewma_ms < spool_delay_ms &&
	       pace->being_sent;
}

int64_t ack_ewma_next(int64_t ewma_ms, int64_t took_ms, bool first)
{
	return first ? took_ms : (3 * ewma_ms + took_ms) / 4;
}

bool push_quorum_reachable(unsigned int acks, unsigned int sending, unsigned int sync_replicas)
{
	return acks + sending >= sync_replicas;
}

enum ack_outcome ack_decide(uint8_t status)
{
	switch (status) {
	case WIRE_ACK_STORED:
	case WIRE_ACK_DUPLICATE:
		return ACK_COUNTED;
	case WIRE_ACK_IO_ERROR:
		return ACK_HELD;
	case WIRE_ACK_CONFLICT:
		return ACK_CONFLICT;
	default:
		return ACK_REFUSED;
	}
}

bool ack_releases_claim(uint8_t status)
{
	enum ack_outcome o = ack_decide(status);

	return o == ACK_CONFLICT || o == ACK_REFUSED;
}

bool ack_in_time(bool ended, bool stream, uint8_t status)
{
	return ended || (stream && ack_decide(status) != ACK_COUNTED);
}

int io_backoff_next(int prev_ms, int min_ms, int max_ms)
{
	int next = prev_ms ? 2 * prev_ms : min_ms;

	return next > max_ms ? max_ms : next;
}

enum spool_room spool_room_decide(uint64_t used, uint64_t fixed, uint64_t size, uint64_t max,
				  bool release_slowest, const uint64_t *held, int n, int *slowest)
{
	if (!max || used + size <= max)
		return SPOOL_FITS;
	*slowest = -1;
	/* Past what releasing every replica could free: no replica is made to lose WAL for
	 * a push that fails anyway (a file larger than the spool, copies in progress). */
	if (fixed + size > max)
		return SPOOL_FULL;
	if (release_slowest)
		for (int i = 0; i < n; i++)
			if (held[i] && (*slowest < 0 || held[i] > held[*slowest]))
				*slowest = i;
	return *slowest < 0 ? SPOOL_FULL : SPOOL_RELEASE;
}

bool have_later(const struct msg_have_entry *e, uint64_t size, uint64_t avail)
{
	return e->size == size && e->durable > avail;
}

enum have_verdict have_decide(const struct msg_have_entry *e, uint64_t size, const uint32_t *crc,
			      uint64_t *start)
{
	if (e->size != size || !crc)
		return HAVE_NONE;
	if (*crc != e->crc)
		return HAVE_OTHER;
	if (e->kind == WIRE_HAVE_COMPLETE)
		return HAVE_SKIP;
	*start = e->durable;
	return HAVE_RESUME;
}

void stream_run_truncate(struct stream_run *run, uint64_t lsn)
{
	if (run->end > lsn)
		run->end = lsn;
	for (unsigned int i = 0; i < run->nahead;) {
		if (run->ahead[i].start >= lsn) {
			run->ahead[i] = run->ahead[--run->nahead];
			continue;
		}
		if (run->ahead[i].end > lsn)
			run->ahead[i].end = lsn;
		i++;
	}
}

bool stream_run_add(struct stream_run *run, uint64_t start, uint64_t end, bool continues)
{
	uint64_t before = run->end;
	bool joined = true;

	if (end <= run->end)
		return false;
	if (run->end < start && !continues) {
		/* After a gap: keep it (the widest per start) until the gap closes. */
		for (unsigned int i = 0; i < run->nahead; i++) {
			if (run->ahead[i].start == start) {
				if (end > run->ahead[i].end)
					run->ahead[i].end = end;
				return false;
			}
		}
		if (run->nahead < STREAM_RUN_AHEAD) {
			run->ahead[run->nahead].start = start;
			run->ahead[run->nahead++].end = end;
		}
		return false;
	}
	run->end = end;
	/* Join what was reported ahead of the gap, as far as it now continues. */
	while (joined) {
		joined = false;
		for (unsigned int i = 0; i < run->nahead; i++) {
			if (run->ahead[i].start > run->end)
				continue;
			if (run->ahead[i].end > run->end)
				run->end = run->ahead[i].end;
			run->ahead[i] = run->ahead[--run->nahead];
			joined = true;
			break;
		}
	}
	return run->end > before;
}

void stream_forks_note(struct stream_forks *f, uint32_t newest, uint32_t left, const char *history,
		       size_t len, uint64_t fork)
{
	uint32_t tli = 1, child;
	uint64_t end;

	/* The history's lines from timeline 1 (every cluster begins on it), each naming the
	 * next: the newest STREAM_FORK_TLIS of them kept. */
	f->n = 0;
	while (tli < newest && wal_history_fork(history, len, newest, tli, &end, &child) == 0 &&
	       child > tli) {
		if (f->n == STREAM_FORK_TLIS) {
			memmove(&f->ended[0], &f->ended[1], sizeof(f->ended[0]) * (f->n - 1));
			f->n--;
		}
		f->ended[f->n].tli = tli;
		f->ended[f->n++].end = end;
		tli = child;
	}
	if (tli != newest) { /* not a chain from timeline 1: the one left, at least */
		f->ended[0].tli = left;
		f->ended[0].end = fork;
		f->n = 1;
	}
	f->newest = newest;
}

uint64_t stream_forks_clamp(const struct stream_forks *f, uint32_t tli, uint64_t start,
			    uint64_t end)
{
	uint64_t limit = 0;

	if (!f->newest || tli >= f->newest)
		return end;
	if (f->n && tli < f->ended[0].tli)
		limit = f->ended[0].end;
	for (unsigned int i = 0; i < f->n; i++)
		if (f->ended[i].tli == tli)
			limit = f->ended[i].end;
	if (end <= limit)
		return end;
	return start >= limit ? start : limit;
}

uint32_t stream_forks_timeline(const struct stream_forks *f, uint64_t lsn, uint32_t current)
{
	for (unsigned int i = 0; f->newest && i < f->n; i++)
		if (f->ended[i].end > lsn)
			return f->ended[i].tli;
	return current;
}
