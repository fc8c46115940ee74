// SPDX-License-Identifier: MIT
/*
 * The replica's decisions, as pure functions (see replica_decide.h).
 */
#include <stdio.h>
#include <string.h>

#include "role/replica_decide.h"
#include "role/role.h"

void replica_offer(const struct store *st,
		   bool (*still_stored)(void *ctx, const struct store_recent *recent), void *ctx,
		   struct msg_have *have)
{
	memset(have, 0, sizeof(*have));
	for (unsigned int idx = 0; idx < st->npartials && have->count < WIRE_MAX_HAVE; idx++) {
		const struct store_partial *p = &st->partials[idx];
		struct msg_have_entry *e = &have->entries[have->count++];

		e->kind = WIRE_HAVE_PARTIAL;
		e->size = p->size;
		e->durable = p->durable;
		e->crc = p->crc;
		snprintf(e->name, sizeof(e->name), "%s", p->name);
	}
	for (unsigned int idx = 0; idx < st->nrecent && have->count < WIRE_MAX_HAVE; idx++) {
		const struct store_recent *r = &st->recent[idx];
		struct msg_have_entry *e;

		if (!r->name[0] || !still_stored(ctx, r)) /* forgotten: store_set_aside_stored() */
			continue;
		e = &have->entries[have->count++];
		e->kind = WIRE_HAVE_COMPLETE;
		e->size = e->durable = r->size;
		e->crc = r->crc;
		snprintf(e->name, sizeof(e->name), "%s", r->name);
	}
}

enum replica_begin replica_begin_decide(const struct msg_file_begin *fb, bool id_in_flight,
					unsigned int nfiles, const struct store_partial *partial)
{
	if (id_in_flight)
		return REPLICA_BEGIN_ID_IN_USE;
	/* A primary keeps at most max_inflight_files unacknowledged (at most this): more is
	 * a peer that does not follow the protocol, and each costs a descriptor and a file
	 * in .incoming. */
	if (nfiles >= WIRE_MAX_INFLIGHT_FILES)
		return REPLICA_BEGIN_OVER_WINDOW;
	if (fb->start_offset) {
		if (!partial || partial->size != fb->size || partial->durable != fb->start_offset)
			return REPLICA_BEGIN_NOT_OFFERED;
		return REPLICA_BEGIN_RESUME;
	}
	/* The primary did not take the offer (its copy differs, or it does not look at
	 * HAVE): the file comes again from its start. */
	return partial ? REPLICA_BEGIN_RESTART : REPLICA_BEGIN_FRESH;
}

bool replica_data_continues(bool end_received, uint64_t size, uint64_t received, uint64_t offset,
			    uint32_t len)
{
	return !end_received && offset == received && received <= size && len <= size - received;
}

uint64_t replica_record_len(uint64_t size, uint64_t received, uint32_t crc, uint32_t crc_head,
			    uint32_t *out_crc)
{
	if (size && received >= size) {
		*out_crc = crc_head;
		return size - 1;
	}
	*out_crc = crc;
	return received;
}

bool replica_end_matches(bool end_received, uint64_t size, uint64_t received, uint64_t end_size)
{
	return !end_received && end_size == size && received == size;
}

uint8_t replica_exists_verdict(int same)
{
	if (same == 1)
		return WIRE_ACK_DUPLICATE;
	return same == 0 ? WIRE_ACK_CONFLICT : WIRE_ACK_IO_ERROR;
}

uint64_t replica_ack_durable_offset(uint8_t status, uint64_t size)
{
	return status == WIRE_ACK_STORED || status == WIRE_ACK_DUPLICATE ? size : 0;
}

bool replica_kind_resumable(enum wal_file_kind kind)
{
	return kind == WAL_FILE_SEGMENT || kind == WAL_FILE_PARTIAL;
}

bool replica_direct_io_wanted(enum wal_file_kind kind, bool no_direct_io)
{
	return !no_direct_io && (kind == WAL_FILE_SEGMENT || kind == WAL_FILE_PARTIAL);
}

bool replica_stream_direct_wanted(enum wal_file_kind kind, bool resumed, uint64_t size,
				  bool no_direct_io)
{
	return kind == WAL_FILE_SEGMENT && !resumed && size <= REPLICA_STREAM_IMAGE_MAX &&
	       size % ROLE_DIO_ALIGN == 0 && !no_direct_io;
}

void replica_direct_span(uint64_t durable, uint64_t received, uint64_t *start, uint64_t *full_end,
			 uint32_t *tail)
{
	*start = durable - durable % ROLE_DIO_ALIGN;
	*full_end = received - received % ROLE_DIO_ALIGN;
	*tail = (uint32_t)(received % ROLE_DIO_ALIGN);
}

bool replica_chunk_direct_ok(uint64_t offset, uint32_t len, const void *addr)
{
	return (offset | len) % ROLE_DIO_ALIGN == 0 && (uintptr_t)addr % ROLE_DIO_ALIGN == 0;
}

bool replica_checkpoint_due(const struct infile *f, int64_t now_ms, int interval_ms)
{
	/* A streamed segment is made durable as it arrives (group commit): whenever no sync
	 * is in flight, one covers everything received. */
	bool due = f->stream || (interval_ms && now_ms - f->ck_ms >= interval_ms);

	return due && f->state == IN_RECEIVING && replica_kind_resumable(f->wn.kind) &&
	       !f->opening && !f->checkpointing && !f->end_received && f->fd >= 0 &&
	       !f->writes_pending && f->fail_status == WIRE_ACK_STORED && f->received > f->durable;
}

bool replica_holds_disk(const struct infile *f)
{
	return f->end_received && !f->cancelled && f->fail_status == WIRE_ACK_STORED &&
	       (f->state == IN_RECEIVING || f->state == IN_SYNCING);
}

bool replica_write_waits(const struct infile *f)
{
	if (f->opening || (f->direct && f->writes_inflight >= INFILE_MAX_DIRECT_WRITES))
		return true;
	if (f->stream)
		return false;
	for (const struct infile *g = f->next; g; g = g->next) /* the older files */
		if (replica_holds_disk(g))
			return true;
	return false;
}

bool replica_keep_partial(const struct infile *f)
{
	return f->state == IN_RECEIVING && replica_kind_resumable(f->wn.kind) && f->fd >= 0 &&
	       !f->opening && f->fail_status == WIRE_ACK_STORED && f->received > 0 &&
	       f->received < f->size && f->tmp_name[0];
}

enum walship_peer_state replica_peer_state(const struct link *lk, bool connecting)
{
	if (!lk)
		return connecting ? WALSHIP_PEER_CONNECTING : WALSHIP_PEER_DISCONNECTED;
	if (lk->conn.closing)
		return WALSHIP_PEER_DISCONNECTED;
	return lk->established ? WALSHIP_PEER_STREAMING : WALSHIP_PEER_HANDSHAKE;
}

int replica_backoff_delay(int backoff_ms, unsigned int random)
{
	int quarter = backoff_ms / 4;

	return backoff_ms + (quarter ? (int)(random % (unsigned int)quarter) : 0);
}

int replica_backoff_next(int backoff_ms, int max_ms)
{
	return backoff_ms * 2 > max_ms ? max_ms : backoff_ms * 2;
}
