/* SPDX-License-Identifier: MIT */
/*
 * The replica role's parts (replica.c: the role and its link to the primary;
 * replica_infile.c: the incoming files, with their checkpoints and resume;
 * replica_decide.c: the decisions, pure), private to daemon/role/: the state they share,
 * one struct per lifetime, and the functions one part calls in another.
 *
 * Lifetimes: struct replica lives from start to free; struct link for one connection to
 * the primary (its conn first, so conn callbacks find it); struct infile from FILE_BEGIN
 * to its ACK or the link's end; struct chunk_write from a DATA frame to its write's
 * completion.  Every request an infile submits is counted on its link's connection
 * (conn_op_begin), so a link is freed only when none is in flight.
 */
#ifndef WALSHIP_ROLE_REPLICA_INTERNAL_H
#define WALSHIP_ROLE_REPLICA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/compiler.h"
#include "common/config.h"
#include "control/control.h"
#include "net/conn.h"
#include "net/tls.h"
#include "ring/ring.h"
#include "ring/worker.h"
#include "role/relay.h"
#include "role/replica_retain.h"
#include "serve/walsender.h"
#include "status/status.h"
#include "wal/name.h"
#include "wal/page.h"
#include "wal/store.h"

struct replica;
struct link;
struct identity_job;

/* Where an incoming file is after its data: each state is one request in flight. */
enum infile_state {
	IN_RECEIVING,
	IN_SYNCING,
	IN_IDENTIFYING, /* the store's first segment: its identity written on rp->worker */
	IN_RENAMING,
	IN_DIR_SYNCING,
};

/*
 * Direct writes of one file in flight at most.  A file being received grows, and ext4
 * serialises extending direct writes on the inode's lock: io_uring hands each one to a
 * worker of its own, and with 32 in flight (the replica's io_buffers) the workers spun
 * on that lock (rwsem_down_write_slowpath in perf) while the disk was busy with the
 * previous file's flush.  Two keep one write at the disk and the next one ready.
 */
#define INFILE_MAX_DIRECT_WRITES 2

struct chunk_write {
	struct ring_op op;
	struct infile *f;
	struct ring_slot *slot;
	const uint8_t *data; /* the chunk's content inside slot */
	uint64_t offset;
	uint32_t len;
	struct chunk_write *next;
};

struct infile {
	struct infile *next;
	struct link *link;
	struct ring_op op;
	struct ring_op ck_op; /* a checkpoint's fsync, beside the writes */
	enum infile_state state;
	uint32_t file_id;
	char name[WIRE_MAX_FILE_NAME + 1];
	char tmp_name[WIRE_MAX_FILE_NAME + 32];
	struct wal_name wn;
	uint64_t size;
	uint64_t received;
	uint32_t crc; /* CRC-32C of the first @received bytes */
	uint32_t crc_head; /* of the first @size - 1, once all arrived (replica_record_len()) */
	uint64_t seq; /* of tmp_name */
	uint64_t durable; /* bytes recorded durable (a checkpoint) */
	/* bytes the primary was told are durable (PROGRESS), or may have been: a resumed
	 * partial's (one found at start does not say whether it was streamed).  Never
	 * removed: kept, or set aside (infile_set_aside()) */
	uint64_t acked;
	/* the file stored under @name whose bytes the acknowledged ones were compared with
	 * (infile_ackable()): its device and inode, 0 while the name is free */
	uint64_t stored_dev, stored_ino;
	/* a partial of the same name the primary did not resume (it sends the file from its
	 * start): kept until this file is stored, then removed if the stored file begins
	 * with its bytes, else set aside (store_partial_retire()) */
	struct store_partial prior;
	bool has_prior;
	uint64_t ck_pending; /* the checkpoint in flight covers this many */
	int64_t ck_ms; /* when the last checkpoint began (or the file, if none) */
	bool checkpointing;
	bool resumed; /* continues a partial file: open it, do not create it */
	bool stream; /* WIRE_BEGIN_STREAM: made durable as it arrives, PROGRESS after each */
	/* a streamed segment written in place: preallocated (zeros, synced) after the open,
	 * so a group commit is an fdatasync of its bytes alone, with no record (the durable
	 * length is found again from its records: store_valid_records()) */
	bool in_place;
	uint64_t prefill_off; /* zeros written so far while preallocating */
	bool prefill_synced; /* they and the record are synced; then .incoming's entry */
	bool cancelled; /* FILE_CANCEL: discarded once idle, no ACK */
	/* a group commit made bytes durable that are not told yet (PROGRESS, the standbys,
	 * the relay): the store's identity is being recorded first (identity_job_done()) */
	bool durable_untold;
	/* a streamed file refused before its end (ACKed at once: infile_refuse()): what
	 * arrives for it is dropped until the primary's FILE_CANCEL, or its FILE_END */
	bool refused;
	int fd;
	bool direct; /* opened (or being opened) with O_DIRECT */
	bool open_direct; /* the open in flight asked for O_DIRECT (direct may be off since) */
	bool opening;
	bool end_received;
	unsigned int writes_pending; /* chunks received and not yet written (waiting too) */
	unsigned int writes_inflight; /* of which submitted to the ring */
	/* chunks received before the open completed, while INFILE_MAX_DIRECT_WRITES direct
	 * writes were in flight, or while an older file held the disk (replica_write_waits()) */
	struct chunk_write *waiting;
	struct chunk_write **waiting_tail;
	struct wal_validator wv;
	struct infile *identity_next; /* IN_IDENTIFYING: the next file waiting for it */
	uint8_t fail_status; /* enum wire_ack_status, STORED while all is well */
	int64_t t_begin, t_end, t_written, t_synced; /* ms, for the debug log */
	char fail_msg[WIRE_MAX_MESSAGE + 1];
	/*
	 * A streamed segment written directly (replica_stream_direct_wanted()): every byte
	 * received is copied into @image (size bytes, then one ROLE_DIO_ALIGN bounce block),
	 * and each group commit writes [durable rounded down to ROLE_DIO_ALIGN, received)
	 * from it with O_DIRECT and RWF_DSYNC, the last partial block through the bounce
	 * block.  NULL: buffered writes and fdatasync.
	 */
	uint8_t *image;
	bool image_direct; /* in place, and the descriptor has O_DIRECT */
	uint64_t ck_len; /* the bytes the direct write in flight writes */
	struct iovec ck_iov[2];
};

/*
 * The file of the next streamed segment, preallocated while the current one streams
 * (replica_infile.c), so that a segment begins without waiting for its zeros: named as
 * that segment's incoming file will be (NAME.SEQ), with a record of durable length 0.  Not
 * tied to a link; a spare nobody takes is removed at the next start (nothing durable).
 */
struct spare {
	struct ring_op op;
	struct replica *rp;
	int fd; /* -1: none */
	char name[WIRE_MAX_FILE_NAME + 1];
	char tmp_name[WIRE_MAX_FILE_NAME + 32];
	uint64_t seq, size, off;
	bool busy; /* a write or the fsync in flight */
	bool file_synced; /* its zeros and record synced; then .incoming's entry of it */
	bool ready; /* zeros written and synced, and its name in .incoming */
	bool abandoned; /* remove it once its request completes */
};

/* Images of streamed segments kept for the next ones (replica_infile.c): two cover the
 * segment being received and the one after it, begun while the first is being stored. */
#define REPLICA_STREAM_IMAGES 2

struct stream_image {
	uint8_t *mem; /* NULL: none */
	uint64_t size; /* the segment size it holds (plus one bounce block) */
};

struct link {
	struct conn conn; /* first: conn callbacks find the link from it */
	struct replica *rp;
	bool established;
	int64_t connected_ms; /* its TCP connection up: the handshake has connect_timeout */
	char primary_name[WIRE_MAX_NAME + 1];
	struct infile *files;
	unsigned int nfiles; /* in @files: begun and not yet acknowledged */
	uint64_t files_received;
	uint64_t files_acked;
	char last_acked[WIRE_MAX_FILE_NAME + 1];
	char last_received[WIRE_MAX_FILE_NAME + 1];
	/* a streamed file failed past bytes it acknowledged: replica_pump() closes the link
	 * (not its caller, which may still be inside the link's receive) */
	bool io_failed;
	/* when the handshake's HELLO came (a link the primary then refuses, or closes at
	 * once, was no success: replica_link_refused()) */
	int64_t hello_ms;
};

/* Files renamed whose directory fsync failed, not yet told to the relay (a ring). */
#define REPLICA_UNANNOUNCED 8

struct replica {
	struct config cfg;
	struct ring *ring;
	struct control_server control;
	struct store store;
	struct link *link;
	/* stored under their names, the directory fsync after failed (infile_dir_synced()):
	 * not relayed downstream then; relayed when a copy sent again ends DUPLICATE */
	char unannounced[REPLICA_UNANNOUNCED][WIRE_MAX_FILE_NAME + 1];
	unsigned int unannounced_next;
	/* the furthest WAL its standbys on pg_listen applied (serve_on_applied()), passed
	 * upstream as APPLIED */
	uint64_t applied_lsn;
	uint32_t applied_tli;
	/* connecting */
	int connect_fd;
	struct ring_op connect_op;
	struct ring_op connect_timeout_op;
	struct __kernel_timespec connect_ts;
	struct sockaddr_storage upstream_addr;
	socklen_t upstream_len;
	bool connecting;
	int64_t next_attempt_ms;
	int backoff_ms;
	/* the link was last closed for an I/O error of this disk (link->io_failed): the
	 * next connection waits this long at least, doubling while files fail so, 0 once
	 * a file is stored (a reconnect at reconnect_min would only be sent the same file
	 * and fail again) */
	int io_backoff_ms;
	/* links in a row the primary did not take after the HELLO (replica_link_refused()):
	 * the wait before the next is reconnect_min doubled as many times */
	unsigned int refused_streak;
	bool stopping;
	int64_t drain_deadline_ms; /* stopping: close the link by then at the latest */
	bool no_direct_io; /* archive_dir refused O_DIRECT once */
	uint64_t seq;
	uint64_t reconnects;
	uint64_t errors;
	char last_error[STATUS_MAX_TEXT];
	struct tls_ctx tls; /* tls.ctx NULL: plaintext */
	struct serve *serve; /* pg_listen: the walsender endpoint for standbys, or NULL */
	struct primary *relay; /* relay = on: the sender to downstream replicas, or NULL */
	struct retainer retain; /* retention of the store (retain_time, retain_size) */
	struct spare spare;
	struct stream_image images[REPLICA_STREAM_IMAGES]; /* free for reuse */
	uint64_t image_bytes; /* mapped for images, in use and kept */
	/* Blocking writes of the store's state (its identity) off the event loop.  A thread
	 * of its own, not the retainer's: a retention pass over a large archive_dir must not
	 * hold up the first acknowledgement. */
	struct worker worker;
	bool worker_started;
	struct identity_job *identity_job; /* in flight, NULL none */
	struct infile *identity_waiting; /* IN_IDENTIFYING files, waiting for it */
	struct status_node st;
};

/* ---- replica.c ---- */

/*
 * The primary sent what this replica cannot accept: log it, tell the primary why (ERROR
 * @code, docs/protocol.md), close once that is sent.  Returns -EPROTO for rx_frame.
 */
int link_refuse(struct link *lk, uint32_t code, const char *fmt, ...) attr_printf(3, 4);

/* ---- replica_infile.c ---- */

/*
 * The file frames from an established primary: each returns 0, or -errno to close the
 * link (logged; a protocol error is answered with ERROR through link_refuse()).  A file
 * the replica cannot store is not a protocol error: it is refused with its ACK.
 * link_on_data() owns @slot.
 */
int link_on_file_begin(struct link *lk, const uint8_t *payload, uint32_t len);
int link_on_data(struct link *lk, const uint8_t *payload, uint32_t len, uint32_t payload_crc,
		 struct ring_slot *slot);
int link_on_file_end(struct link *lk, const uint8_t *payload, uint32_t len);
/* FILE_CANCEL: a streamed file will not be completed; discard it once its writes are done,
 * without an ACK.  Returns 0 or -errno (the link is refused). */
int link_on_file_cancel(struct link *lk, const uint8_t *payload, uint32_t len);

/* No spare yet (before the ring runs). */
void spare_init(struct replica *rp);

/* Stopping: whether the spare's request is still in flight; its descriptor is closed
 * once it is not (its file stays for the next start to remove). */
bool spare_busy(struct replica *rp);

/* Unmap the images kept for reuse (at the end: no file holds one any more). */
void stream_images_free(struct replica *rp);

/* Begin a checkpoint of each file of @lk due one (checkpoint_interval). */
void link_checkpoint_due(struct link *lk, int64_t now_ms);

/*
 * The link is gone and nothing of it is in flight: keep each file not completely received
 * as a partial where its bytes can be made durable, else remove it; free them all.
 */
void link_files_release(struct link *lk);

#endif /* WALSHIP_ROLE_REPLICA_INTERNAL_H */
