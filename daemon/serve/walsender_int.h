/* SPDX-License-Identifier: MIT */
/*
 * The walsender endpoint's private state, shared by its parts (private to serve/):
 *
 *   walsender.c         connection plumbing, receiving and dispatch, accepting, the API
 *   walsender_auth.c    startup: SSLRequest and TLS, startup packet, access rules, SCRAM, cert
 *   walsender_cmd.c     the replication commands, slots and START_REPLICATION
 *   walsender_stream.c  what the store holds, streaming it, the standby's replies and lags
 */
#ifndef WALSHIP_SERVE_WALSENDER_INT_H
#define WALSHIP_SERVE_WALSENDER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "common/compiler.h"
#include "common/hba.h"
#include "common/scram.h"
#include "net/acceptor.h"
#include "net/tls.h"
#include "common/lagring.h"
#include "proto/pgrepl.h"
#include "serve/pgwire.h"
#include "serve/sendlimit.h"
#include "serve/slots.h"
#include "serve/walsender.h"
#include "wal/name.h"

/* Receive buffer: the largest message a standby may send, with its header. */
#define RX_CAP (PGWIRE_MAX_MESSAGE + 5)
/* Ciphertext received per recv from a TLS standby. */
#define TLS_RX_CAP (32 * 1024)
/* A history file is read whole, on the loop: PostgreSQL's are a line per timeline. */

enum sb_state {
	SB_STARTUP, /* SSLRequest, GSSENCRequest, StartupMessage */
	SB_AUTH, /* SCRAM-SHA-256: SASLInitialResponse, SASLResponse */
	SB_QUERY, /* authenticated, between commands */
	SB_STREAMING, /* in START_REPLICATION's CopyBoth */
};

struct standby {
	struct serve *s;
	struct standby *next;
	int fd;
	enum sb_state state;
	unsigned int inflight;
	bool closing;
	bool close_when_sent;
	struct ring_op rx_op, tx_op, file_op;
	/* receiving */
	uint8_t rx[RX_CAP];
	size_t rx_len;
	bool rx_busy;
	bool ssl_done, gss_done;
	/* the extended query protocol, refused as PostgreSQL's walsender refuses it: the
	 * message handled is one of it, so an ERROR skips what follows up to Sync (postgres.c
	 * doing_extended_query_message, ignore_till_sync) */
	bool extended, skip_till_sync;
	/* TLS, after SSLRequest was answered 'S': ciphertext is received into tls_rx and
	 * fed to OpenSSL (memory BIOs, net/tls.h); what is queued in @out is encrypted as it
	 * moves to @sending, after its first out_plain bytes (the 'S' itself) */
	struct tls_conn *tls;
	uint8_t *tls_rx;
	size_t out_plain;
	char cert_name[256]; /* the verified client certificate's common name, "" none */
	/* SCRAM-SHA-256, between AuthenticationSASL and AuthenticationOk */
	struct scram_exchange *scram;
	bool scram_first_done;
	uint8_t cbind[EVP_MAX_MD_SIZE]; /* tls-server-end-point, when PLUS is offered */
	int cbind_len; /* > 0 when it is */
	/* sending: @out collects, @sending is in flight (never moved while it is) */
	struct pgwire_buf out, sending;
	size_t sending_off;
	bool tx_busy;
	/* who */
	struct sockaddr_storage sa;
	char addr[64];
	char user[PGWIRE_MAX_NAME];
	char app[PGWIRE_MAX_NAME];
	char slot[PGWIRE_MAX_NAME];
	uint32_t pid; /* its backend pid, told at AuthenticationOk */
	struct serve_slot *slot_p; /* the slot streamed through (slots.h), NULL none */
	bool drop_waiting; /* DROP_REPLICATION_SLOT slot WAIT: until it is inactive */
	/* a permanent slot created or dropped, its file being written on the worker thread
	 * (serve_slots_save_async()): its commands wait for the answer, as for drop_waiting */
	bool slot_saving, saving_drop;
	bool processing; /* in sb_process(): a write that ends at once does not resume it */
	/* the slot created or dropped (held: active_pid, until written) */
	uint64_t saving_incarnation;
	int64_t accepted_ms; /* monotonic */
	int64_t last_rx_ms; /* on the listening clock (clock.h) */
	int64_t connected_since;
	bool ping_sent;
	/* streaming */
	uint32_t tli;
	uint64_t next_lsn; /* the next byte to send */
	uint64_t write, flush, apply; /* reported by the standby */
	uint32_t xmin, catalog_xmin; /* its hot standby feedback */
	/* lags as walsender.c's LagTracker measures them: when the WAL up to each sample's
	 * LSN was sent; a report reaching a sample gives that position's lag */
	struct lag_ring lag;
	uint64_t lag_seen[3]; /* write, flush, apply: the newest sample used */
	int64_t lag_ms[3]; /* the last lag measured, -1 none */
	uint64_t bytes_sent;
	bool copy_done_sent;
	int file_fd; /* the segment of next_lsn, -1 none */
	uint64_t file_segno;
	uint32_t file_tli;
	char file_name[WAL_NAME_MAX + 1];
	uint64_t file_limit; /* bytes of it that are durable and may be sent */
	bool file_incoming; /* opened from .incoming */
	/* the copy in .incoming it opens or opened (struct growing's tmp_name then) */
	char file_tmp[sizeof(((struct store_partial *)0)->tmp_name)];
	/* that incoming file was stored, or replaced by another copy of the segment (the
	 * upstream cancelled it and sends it again): open the segment again before reading */
	bool file_reopen;
	bool file_busy; /* an open or read in flight */
	uint32_t file_newest; /* the newest timeline when the open in flight was submitted */
	bool waiting; /* for a hook: nothing more is durable yet */
	/* waiting since gap_since_ms (monotonic; 0: not waiting so) for what gap_why says
	 * at segment gap_segno: a segment missing before the newest
	 * (serve_segment_may_come()), the newest timeline's history at a switch point, the
	 * next timeline's history (sb_waited_long(): gap_wait_ms at most each) */
	uint64_t gap_segno;
	int64_t gap_since_ms;
	enum sb_wait_why { SB_WAIT_GAP = 1, SB_WAIT_SWITCH_HISTORY, SB_WAIT_NEXT_HISTORY } gap_why;
	uint8_t *rbuf; /* SERVE_MAX_SEND bytes */
	uint32_t read_len;
	uint64_t stop_lsn; /* an older timeline: where it ends (its switch point), else 0 */
	uint32_t next_tli; /* and the timeline that follows it */
	uint64_t gen; /* of the stream: one per START_REPLICATION */
	uint64_t read_gen; /* of the open or read in flight */
};

/* Files in .incoming whose durable length the replica role reported, at most. */
/* How long a gap in the store is waited for (struct serve's gap_wait_ms). */
#define SERVE_GAP_WAIT_MS 60000
#define SERVE_MAX_GROWING 16

/* A segment being received into .incoming, as the replica role last said. */
struct growing {
	char name[WAL_NAME_MAX + 1];
	char tmp_name[sizeof(((struct store_partial *)0)->tmp_name)];
	uint64_t durable;
	/* the segment's bytes in the replica's memory while it writes them directly, NULL
	 * otherwise: read from here then, never through the page cache (serve_wal_durable()) */
	const uint8_t *image;
};

struct serve {
	struct ring *ring;
	const struct store *store;
	struct acceptor acceptor;
	int listen_fd;
	bool accepting;
	bool stopping;
	struct hba_table *hba;
	struct scram_passwords *passwords; /* pg_password_file, NULL when not set */
	bool tls_on; /* tls = on: SSLRequest is answered 'S' */
	struct tls_ctx tls;
	char node_name[CONFIG_MAX_NAME];
	int keepalive_timeout_ms;
	int connect_timeout_ms;
	struct standby *standbys;
	unsigned int nstandbys;
	uint32_t next_pid;
	/* the WAL this replica holds: newest timeline, and its durable end on it */
	uint32_t tli;
	uint64_t end_lsn;
	/* where the newest timeline begins (its parent's switch point, from its history): 0
	 * on timeline 1, and while its history is not stored */
	uint64_t tli_start;
	/* segments below this number, on any timeline, the store no longer holds or never
	 * held: the oldest it held at start (holding none then: the oldest it took since,
	 * until removed_known), raised past what retention removes (serve_wal_removed());
	 * UINT64_MAX while it held none */
	uint64_t removed_below;
	bool removed_known; /* the store held segments at start, or retention removed some */
	/* the segments of the newest timeline stored, at start or since, as sorted runs
	 * [lo, hi) (one, unless the store has holes): one of them missing was removed, by
	 * retention or by hand.  A missing segment of the newest timeline at or above
	 * removed_below and not among them may still come (files in flight are stored in
	 * any order; a file in flight when walshipd stopped is sent again) and is waited
	 * for, for gap_wait_ms at most; any other is answered 58P01. */
	struct serve_run {
		uint64_t lo, hi;
	} * held;
	size_t nheld, held_cap;
	/* how long a standby waits for a missing segment before the newest one (a gap:
	 * files stored out of order close it in seconds; one that stays, WAL released on
	 * the primary or removed by hand while walshipd was down, never) before it is
	 * answered 58P01 and no longer holds retention there: SERVE_GAP_WAIT_MS (a test may
	 * shorten it) */
	int64_t gap_wait_ms;
	/* the segments being received into .incoming (name "" for a free entry): more than
	 * one when pushes of whole files are in flight beside the stream */
	struct growing growing[SERVE_MAX_GROWING];
	uint64_t refused, hba_refused, shed;
	struct serve_slots slots;
	struct worker worker; /* the slots' periodic writes (slots.h) */
	/* the furthest apply position a standby reported (msg_applied_newer()), and who is
	 * told of it */
	uint64_t applied_lsn;
	uint32_t applied_tli;
	serve_applied_fn applied_fn;
	void *applied_arg;
	struct sendlimit *limits; /* delayed and held standbys */
};

/* The unix time in µs, the clock delays are measured by. */
static inline int64_t unix_now_us(void)
{
	return pgrepl_time_to_unix_us(pgrepl_time_now());
}

/* ---- walsender.c: connection plumbing ---- */

/* Close once nothing is in flight: shutting the socket down completes its recv. */
void sb_close(struct standby *sb);
/* The ring's submission entry for @op of @sb (ring_sqe()), counted in flight. */
struct io_uring_sqe *sb_sqe(struct standby *sb, struct ring_op *op);
/* The end of a completion's work, called last by it: may free @sb (closing, none in flight). */
void sb_op_done(struct standby *sb);
/* Send what is queued, one send in flight; may free @sb (out of memory). */
void sb_flush(struct standby *sb);
/*
 * Queue an ErrorResponse (@severity "ERROR" or "FATAL").  FATAL closes the connection once
 * it is sent.  ERROR is recovered from as PostgreSQL's walsender recovers (postgres.c
 * PostgresMain(), walsender.c WalSndErrorCleanup()): a stream in progress ends (its slot
 * released), the temporary slots the connection made are dropped, ReadyForQuery follows
 * (at the next Sync after a message of the extended query protocol) and the connection
 * takes the next command.
 */
void sb_error(struct standby *sb, const char *severity, const char *sqlstate, const char *fmt, ...)
	attr_printf(4, 5);
/* The same with a DETAIL and a HINT field (@detail, @hint: full sentences, or NULL). */
void sb_error_detail(struct standby *sb, const char *severity, const char *sqlstate,
		     const char *detail, const char *hint, const char *fmt, ...) attr_printf(6, 7);
/* TLS: drive the handshake on the ciphertext fed, then decrypt and handle what arrives. */
void sb_tls_input(struct standby *sb);
/* A wait of its commands is over (drop_waiting, slot_saving): what it sent meanwhile is
 * handled and receiving goes on.  The caller holds @sb (inflight). */
void sb_resume(struct standby *sb);

/* ---- walsender_auth.c: startup ---- */

/* A SASLInitialResponse, then a SASLResponse ('p'): the SCRAM exchange, then AuthenticationOk. */
void sb_sasl(struct standby *sb, const struct pgwire_msg *m);
/* Handle a startup-phase packet in rx: returns bytes consumed, 0 for more, -1 when done. */
int sb_rx_startup(struct standby *sb);

/* ---- walsender_cmd.c: commands ---- */

/* Where timeline @tli forks from the newest (sb->stop_lsn, sb->next_tli): 0, -EAGAIN when
 * @wait and its history is not stored yet, -1 when the standby was answered an error. */
int sb_find_fork(struct standby *sb, uint32_t tli, uint64_t start, bool wait);
/* DROP_REPLICATION_SLOT: false when it must wait (WAIT, slot active; serve_tick() retries). */
bool sb_drop_slot(struct standby *sb, const char *name, bool wait);
/* A simple Query ('Q') between commands: parse the replication command and run it. */
void sb_query(struct standby *sb, const struct pgwire_msg *m);

/* ---- walsender_stream.c: what the store holds, streaming ---- */

/* The entry of segment @name growing in .incoming, NULL none. */
struct growing *serve_growing_find(struct serve *s, const char *name);
/* Record @name's durable length: its entry, a free one, or the oldest segment's. */
void serve_growing_set(struct serve *s, const char *name, const char *tmp_name, uint64_t durable,
		       const uint8_t *image);
/* Take @name, stored or @durable bytes of it durable, into the newest timeline's end. */
void serve_note_wal(struct serve *s, const char *name, uint64_t durable, bool complete);
/* @name was stored: a segment of the newest timeline counts as held (struct serve's held). */
void serve_note_stored(struct serve *s, const char *name);
/* Forget the held segments below @segno (removed). */
void serve_held_trim(struct serve *s, uint64_t segno);
/* At start: the newest timeline and segment of the store, and its kept partials. */
void serve_scan(struct serve *s);
/* A CopyData from a streaming standby: its status update or hot standby feedback (one
 * too short: an ERROR; of another type: the connection closed). */
void sb_copydata(struct standby *sb, const struct pgwire_msg *m);
/* The standby ended the COPY (CopyDone, then both CommandCompletes). */
void sb_copy_done(struct standby *sb);
/* The stream ends (or its start was refused): back to commands, the slot released, the
 * segment closed (once no read is in flight). */
void sb_stream_end(struct standby *sb);
/* Send what is durable past next_lsn, as far as the send buffer allows; on an older
 * timeline, up to its switch point, then CopyDone (the end of the timeline). */
void sb_pump(struct standby *sb);

#endif
