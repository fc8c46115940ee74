/* SPDX-License-Identifier: MIT */
/*
 * The replica's decisions, as pure functions: what it offers the primary to resume, which
 * FILE_BEGIN it accepts and from which offset, which DATA and FILE_END continue a file,
 * what a name already stored means (duplicate or conflict), when a received chunk is
 * written (the files' order on the disk), when a file is checkpointed or kept as a
 * partial, how long it waits before connecting again.  No I/O, no clock, no
 * logging: replica.c and replica_infile.c act on the verdicts; the unit tests
 * (test/unit/daemon/role/replica_decide_test.c) check the edge cases.
 */
#ifndef WALSHIP_ROLE_REPLICA_DECIDE_H
#define WALSHIP_ROLE_REPLICA_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include <walship/netlink.h>

#include "proto/codec.h"
#include "role/replica_internal.h"
#include "wal/name.h"
#include "wal/page.h"
#include "wal/store.h"

/*
 * The HAVE sent right behind HELLO: every partial of @st with its durable length, then
 * the stored files @st remembers for which @still_stored(@ctx, recent) says they are
 * there as stored (archive_cleanup_command may have removed them), at most WIRE_MAX_HAVE
 * entries, partials first.
 */
void replica_offer(const struct store *st,
		   bool (*still_stored)(void *ctx, const struct store_recent *recent), void *ctx,
		   struct msg_have *have);

/* What to do with a FILE_BEGIN, in the order the checks apply. */
enum replica_begin {
	REPLICA_BEGIN_FRESH, /* from offset 0; no partial is kept for the name */
	REPLICA_BEGIN_RESTART, /* from offset 0: the partial kept for the name is discarded */
	REPLICA_BEGIN_RESUME, /* on the partial kept for the name, at its durable length */
	REPLICA_BEGIN_ID_IN_USE, /* refused: the file id is one of a file in flight */
	REPLICA_BEGIN_OVER_WINDOW, /* refused: WIRE_MAX_INFLIGHT_FILES are in flight */
	REPLICA_BEGIN_NOT_OFFERED, /* refused: start_offset is not what HAVE offered */
};

/*
 * @fb arrived while @nfiles files are in flight (@id_in_flight: its file id is one of
 * them); @partial is the partial kept for fb->name, or NULL.  A non-zero start_offset is
 * accepted only as the partial's durable length, for the same size.
 */
enum replica_begin replica_begin_decide(const struct msg_file_begin *fb, bool id_in_flight,
					unsigned int nfiles, const struct store_partial *partial);

/* True when DATA at @offset of @len bytes continues a file of @size bytes of which
 * @received have arrived and whose FILE_END has not (@end_received). */
bool replica_data_continues(bool end_received, uint64_t size, uint64_t received, uint64_t offset,
			    uint32_t len);

/*
 * How much of a file of @size bytes, @received of them arrived (CRC-32C @crc; @crc_head
 * that of the first @size - 1 once all arrived), its record may say is durable, into
 * *@out_crc that length's CRC: everything received but a whole file's last byte, which
 * counts once the file is stored under its name (as the primary counts it).  A record of
 * the whole file is none any reader takes (store_partial_check(), store_find_incoming()):
 * the file would be skipped by walship fetch and removed at the next start.
 */
uint64_t replica_record_len(uint64_t size, uint64_t received, uint32_t crc, uint32_t crc_head,
			    uint32_t *out_crc);

/* True when FILE_END announcing @end_size closes a file of @size bytes of which @received
 * have arrived and whose FILE_END has not (@end_received). */
bool replica_end_matches(bool end_received, uint64_t size, uint64_t received, uint64_t end_size);

/*
 * The rename found the name already stored; @same is store_same_content()'s result (1
 * same, 0 different, -errno).  Returns the ACK status: WIRE_ACK_DUPLICATE,
 * WIRE_ACK_CONFLICT or WIRE_ACK_IO_ERROR.
 */
uint8_t replica_exists_verdict(int same);

/* The durable_offset an ACK of @status carries for a file of @size bytes: the size when
 * the file is stored (or already was), else 0. */
uint64_t replica_ack_durable_offset(uint8_t status, uint64_t size);

/* Segments and .partial files can be resumed; .history and .backup files are small. */
bool replica_kind_resumable(enum wal_file_kind kind);

/* Files of @kind are written with O_DIRECT unless the archive refused it once. */
bool replica_direct_io_wanted(enum wal_file_kind kind, bool no_direct_io);

/* The largest streamed segment written directly from a memory image of it: the replica
 * keeps one image per streamed segment in flight (REPLICA_STREAM_IMAGES are kept for
 * reuse), so larger segments are streamed with buffered writes. */
#define REPLICA_STREAM_IMAGE_MAX (64ULL << 20)
/* What the images may take in all, in use and kept: the streamed segments past it (a
 * burst of short segments in flight at once) are written buffered. */
#define REPLICA_STREAM_IMAGE_BUDGET (128ULL << 20)

/*
 * Whether a streamed file is written with O_DIRECT from a memory image of it, each group
 * commit one write with RWF_DSYNC (replica_infile.c, "Streamed segments written
 * directly"): a new segment (@kind, not @resumed) of at most REPLICA_STREAM_IMAGE_MAX
 * bytes, in an archive that takes direct I/O (@no_direct_io false).  The replica's own
 * readers of the growing segment, pg_listen's standbys and relay's downstream replicas,
 * read the image itself (serve_wal_durable(), relay_wal_durable()), never the page cache
 * that each direct write drops.
 */
bool replica_stream_direct_wanted(enum wal_file_kind kind, bool resumed, uint64_t size,
				  bool no_direct_io);

/*
 * The blocks of ROLE_DIO_ALIGN bytes a direct group commit of a streamed segment writes
 * (replica_infile.c), from the one holding @durable to the one holding @received
 * (@durable < @received): the full blocks [*@start, *@full_end) from the segment's image,
 * then, when @received ends inside a block (*@tail bytes of it received, 0 when not), the
 * block at *@full_end through the bounce block, zeros after the tail.
 */
void replica_direct_span(uint64_t durable, uint64_t received, uint64_t *start, uint64_t *full_end,
			 uint32_t *tail);

/* True when a chunk at file @offset of @len bytes, held at @addr, can be written with
 * O_DIRECT (all three multiples of ROLE_DIO_ALIGN). */
bool replica_chunk_direct_ok(uint64_t offset, uint32_t len, const void *addr);

/*
 * True when @f is due a checkpoint at @now_ms with @interval_ms (0: never): still
 * receiving, resumable, open, no write or checkpoint in flight, no FILE_END yet, well so
 * far, with bytes written since the last checkpoint and the interval passed.  A streamed
 * segment (f->stream) needs no interval: it is due whenever the rest holds (group commit).
 */
bool replica_checkpoint_due(const struct infile *f, int64_t now_ms, int interval_ms);

/*
 * Whether @f, all received and to be stored, is on its way to the disk: its last writes
 * or its fdatasync.  Until they are done, the files received after it do not write
 * (replica_write_waits()).
 */
bool replica_holds_disk(const struct infile *f);

/*
 * Whether a chunk of @f must wait (on f->waiting) rather than be written now: the file is
 * being opened, INFILE_MAX_DIRECT_WRITES direct writes of it are in flight, or a file
 * received before it (further along f->next: a link's files are newest first) holds the
 * disk.  That last rule writes pushed files to the disk one after the other: an
 * fdatasync is a journal commit and a cache flush, which the next file's writes (each
 * extending write a journal update of its own) would join and lengthen, so that every
 * file in flight was acknowledged late (an acknowledgement p99 about 30 % lower with the
 * rule, at the same throughput: docs/benchmark-notes.md, 2026-12-04).  The next file
 * writes during the rename and the directory fsync.  A streamed segment, written as it
 * arrives for its group commits, never waits for another file; a file still being
 * received holds nothing back.
 */
bool replica_write_waits(const struct infile *f);

/*
 * The connection is lost: true when @f is kept as a partial for resuming (still
 * receiving, resumable, open, well so far, some but not all bytes received, its file in
 * .incoming), false when it is removed.
 */
bool replica_keep_partial(const struct infile *f);

/* The state status shows for the link to the primary. */
enum walship_peer_state replica_peer_state(const struct link *lk, bool connecting);

/* The wait before the next connection attempt: @backoff_ms plus up to a quarter of it as
 * jitter taken from @random, so replicas do not reconnect in lockstep. */
int replica_backoff_delay(int backoff_ms, unsigned int random);

/* The backoff after a failed attempt: doubled, at most @max_ms. */
int replica_backoff_next(int backoff_ms, int max_ms);

#endif /* WALSHIP_ROLE_REPLICA_DECIDE_H */
