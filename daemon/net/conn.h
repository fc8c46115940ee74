/* SPDX-License-Identifier: MIT */
/*
 * A framed walship connection over a stream socket, driven by io_uring.
 *
 * Receiving: the 16-byte frame header is received (MSG_WAITALL), decoded and checked,
 * then the payload is received into a buffer the owner provides (a registered slot for
 * DATA, so it can be written to disk without a copy); the payload CRC is checked and the
 * frame handed to the owner.  If the owner has no buffer to give, receiving pauses until
 * conn_rx_resume(): the kernel's socket buffer fills and TCP pushes back on the sender.
 *
 * Sending: an ordered queue of items, one send in flight per socket (io_uring does not
 * order independent sends on one socket), each item either a small frame copied into the
 * item or a DATA frame built in a registered slot.  An item may be queued before its
 * bytes are ready (a read into its slot is in flight) and is sent when marked ready.
 * Slot items go out with SEND_ZC when the connection's zero-copy mode allows; the slot is
 * released only on the notification that the kernel is done with it.
 *
 * Bounds: the send queue holds at most CONN_TX_MAX_ITEMS items.  The owners queue data
 * within their own, smaller windows; what grows past the bound is answers to a peer that
 * does not read them (PONGs, ACKs), so the connection is closed with -ENOBUFS, logged
 * once, and the owner counts it from close_error.  Receiving needs no bound: a frame is
 * read only into the buffer the owner gives, one frame at a time.
 *
 * Errors: a frame that does not decode, or that the owner refuses as a protocol error,
 * is answered with ERROR (docs/protocol.md: CHECKSUM, PROTOCOL, VERSION) before the
 * connection closes; conn_fail() lets the owner choose the code and say why.
 *
 * Lifetime: every request submitted for the connection is counted; conn_close() shuts
 * the socket down and the owner's closed() callback runs once nothing is in flight.
 */
#ifndef WALSHIP_NET_CONN_H
#define WALSHIP_NET_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/compiler.h"
#include "common/clock.h"
#include "proto/codec.h"
#include "net/tls.h"
#include "ring/ring.h"

/*
 * Items a connection's send queue may hold (each at most a small frame's copy, or a slot
 * or mapping the owner bounds itself).  Far above what a reading peer ever has queued:
 * PEER_MAX_QUEUED data frames, an ACK per file in flight, a PONG per PING.
 */
#define CONN_TX_MAX_ITEMS 1024
/* How long a connection that sent ERROR waits for it to leave before it closes anyway. */
#define CONN_ERROR_LINGER_MS 2000

struct conn;

struct conn_tx_item {
	struct ring_op send_op;
	struct ring_op load_op; /* for the owner's read into the slot */
	struct conn *conn;
	struct conn_tx_item *next;
	uint8_t *buf;
	uint32_t len;
	uint32_t sent;
	struct ring_slot *slot; /* NULL for small frames (buf points into small[]) */
	bool ready;
	bool queued;
	unsigned int notifs_pending; /* SEND_ZC notifications still to come */
	bool send_finished;
	bool failed;
	bool zc; /* the last send of this item was SEND_ZC */
	bool raw; /* TLS: ciphertext OpenSSL produced on its own (handshake, alerts) */
	uint8_t *tls_out; /* TLS: the item's records, sent instead of its plaintext */
	void *owner; /* owner's context for load callbacks */
	uint64_t owner_arg;
	uint32_t owner_id;
	/* mapped items: the frame's headers in small[], its content at ext (not ours) */
	const uint8_t *ext;
	uint32_t ext_len;
	/* its content at ext could not be read (the mapped file shrank): the connection
	 * closed with -EFAULT, and @release tells the owner */
	bool unreadable;
	struct iovec iov[2];
	struct msghdr msg;
	/* called when the kernel no longer uses the item's memory (ext included) */
	void (*release)(struct conn_tx_item *item);
	uint8_t small[];
};

struct conn_ops {
	/*
	 * Return where to receive a payload of hdr->length bytes, or NULL to pause
	 * receiving (call conn_rx_resume() later).  Set *slot when the buffer is a slot
	 * whose ownership passes to rx_frame().
	 */
	uint8_t *(*rx_buffer)(struct conn *c, const struct frame_header *hdr,
			      struct ring_slot **slot);
	/*
	 * A whole frame with a good CRC.  Return 0, or -errno to close the connection
	 * (the callee has logged why).  Owns @slot if not NULL.
	 */
	int (*rx_frame)(struct conn *c, const struct frame_header *hdr, uint8_t *payload,
			struct ring_slot *slot);
	/* The send queue drained an item: the owner may queue more. */
	void (*tx_progress)(struct conn *c);
	/* Nothing is in flight any more after conn_close(); the owner frees @c. */
	void (*closed)(struct conn *c);
};

struct conn_stats {
	uint64_t bytes_sent;
	uint64_t bytes_received;
	uint64_t frames_sent;
	uint64_t frames_received;
	uint64_t zc_sends;
	uint64_t zc_copied; /* notifications saying the kernel copied after all */
	uint64_t copy_sends;
};

struct conn {
	struct ring *ring;
	const struct conn_ops *ops;
	void *owner;
	int fd;
	char peer_addr[64]; /* "10.0.0.2:41234" */
	struct sockaddr_storage peer_sa; /* the same, for access rules */
	unsigned int peer_tag; /* the peer host's number in send tags (peertag.h), 0 until
				  conn_tag_peer() */
	enum config_switch zero_copy; /* auto: zero-copy until the kernel copies */
	int send_flags; /* MSG_WAITALL | MSG_NOSIGNAL; MSG_NOSIGNAL under kernel TLS */
	unsigned int zc_copied_streak;

	/* receive */
	struct ring_op rx_op;
	uint8_t rx_hdr[WIRE_HEADER_SIZE];
	struct frame_header rx_frame;
	uint8_t *rx_buf;
	struct ring_slot *rx_slot;
	uint32_t rx_want;
	uint32_t rx_have;
	bool rx_in_header;
	uint8_t rx_last_type; /* the last frame delivered (user-space TLS's probe tag) */
	bool rx_paused;
	bool rx_posted;
	uint8_t rx_small[WIRE_MAX_CONTROL_PAYLOAD];

	/* send */
	struct conn_tx_item *tx_head;
	struct conn_tx_item *tx_tail;
	unsigned int tx_queued; /* items queued and not yet fully sent */
	unsigned int raw_queued; /* TLS: raw items queued */
	bool tx_posted;

	/* conn_fail(): the ERROR item, sent next; the connection closes after it */
	struct conn_tx_item *fail_item;
	int fail_error;
	int64_t fail_deadline_ms;

	int64_t last_rx_ms; /* the last bytes received, on the listening clock (clock.h) */
	int64_t last_tx_ms; /* ... and sent, on the monotonic clock */
	/* TLS (NULL: plaintext): ciphertext is received into tls_rx and fed to OpenSSL;
	 * items are encrypted when they reach the head of the queue, so records leave in
	 * the order OpenSSL made them; raw items (handshake) go first. */
	struct tls_conn *tls;
	uint8_t *tls_rx;
	struct ring_op tls_rx_op;
	bool tls_rx_posted;
	uint32_t tls_rec_have, tls_rec_want; /* kernel TLS: the handshake record being read */
	struct conn_tx_item *raw_head, *raw_tail;

	unsigned int ops_pending;
	bool closing;
	bool closed_called;
	int close_error; /* first error that closed it (-errno), 0 for a clean close;
			  * -ENOBUFS: the send queue reached CONN_TX_MAX_ITEMS */
	struct conn_stats stats;
};

/*
 * Give @c its peer host's number in send tags (peertag.h), so that the BPF probes measure
 * its sends and receives per host.  Not at setup: the numbers are few (PEERTAG_MAX), and
 * connections that never get past their handshake (scanners, health checks) must not
 * take them; the owner calls this once the peer is admitted.
 */
void conn_tag_peer(struct conn *c);

/* Take over connected socket @fd and start receiving. */
void conn_init(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops, void *owner,
	       enum config_switch zero_copy);

/*
 * The same over TLS (@ctx's role: accept or connect): the handshake runs first; frames
 * queued meanwhile wait for it.  With kernel TLS (@ctx->ktls) the kernel takes the records
 * over after the handshake, and frames are sent and received as in plaintext (zero-copy
 * as @ctx->zero_copy says); otherwise OpenSSL makes them in memory and zero-copy does not
 * apply.  A failed handshake closes the connection with the reason logged.  Returns 0, or
 * -errno when the connection closed already (no memory, its first handshake step failed):
 * then its owner's closed() has run, and @c may be gone.
 */
int conn_init_tls(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops, void *owner,
		  const struct tls_ctx *ctx);

/* The peer certificate's common name once TLS is established, NULL without TLS. */
const char *conn_peer_cert_name(const struct conn *c);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once TLS is established, "" otherwise. */
const char *conn_tls_version(const struct conn *c);

/* Which directions the kernel encrypts (net/ktls.h): "tx+rx", "tx", "rx", "off"; "" without
 * TLS or before the handshake. */
const char *conn_ktls_state(const struct conn *c);

/* Queue a small frame (already encoded, at most WIRE_HEADER_SIZE +
 * WIRE_MAX_CONTROL_PAYLOAD bytes).  Returns -ENOMEM, -EPIPE when closing, or -ENOBUFS
 * when the queue was at its bound (the connection is then closing). */
int conn_send_frame(struct conn *c, const uint8_t *frame, uint32_t len);

/*
 * Queue a slot item: @slot holds (or will hold) a frame of @len bytes at slot->data.
 * When @ready is false the owner fills it later and calls conn_item_ready().  The
 * returned item stays valid until it is sent (or the connection closes).  NULL when out
 * of memory or when the queue was at its bound (the connection is then closing).
 */
struct conn_tx_item *conn_queue_slot(struct conn *c, struct ring_slot *slot, uint32_t len,
				     bool ready);
void conn_item_ready(struct conn *c, struct conn_tx_item *item, uint32_t len);

/*
 * Queue a frame made of @hdr_len header bytes (copied) and @ext_len content bytes at
 * @ext, which stay where they are (a mapping of the file) and go out with the header in
 * one SENDMSG or SENDMSG_ZC.  @release(item) runs once the kernel is done with @ext
 * (after the zero-copy notification); item->owner is set to @owner first.  With TLS in
 * user space, OpenSSL encrypts @ext when the frame reaches the head of the queue, reading
 * it under the SIGBUS guard (common/mapguard.h: mapguard_init() first).  A mapping that
 * cannot be read then (its file shrank), or that the kernel's send cannot read (-EFAULT),
 * closes the connection with -EFAULT and sets item->unreadable before @release runs.
 */
struct conn_tx_item *conn_queue_mapped(struct conn *c, const uint8_t *hdr, uint32_t hdr_len,
				       const uint8_t *ext, uint32_t ext_len,
				       void (*release)(struct conn_tx_item *item), void *owner);
/* The owner's load failed: the connection is closed with @err. */
void conn_item_failed(struct conn *c, struct conn_tx_item *item, int err);

/* Count a request the owner submits on the connection's behalf (e.g. a file read that
 * fills a slot item), and its completion: closed() waits for these too. */
void conn_op_begin(struct conn *c);
void conn_op_end(struct conn *c);

/* Start receiving again after rx_buffer() returned NULL. */
void conn_rx_resume(struct conn *c);

/* Items queued and not yet fully sent. */
unsigned int conn_tx_backlog(const struct conn *c);

/*
 * Keepalive: send a PING when nothing was sent for @interval_ms; close the connection
 * (-ETIMEDOUT) when nothing was received for @timeout_ms while it was ready to receive
 * (measured on the listening clock of clock.h: a stall of our own loop does not count).
 * Also closes a connection whose ERROR (conn_fail) the peer has not taken within
 * CONN_ERROR_LINGER_MS.  Call it periodically.  Returns true if it closed the connection
 * for want of keepalive.
 */
bool conn_keepalive(struct conn *c, int64_t now_ms, int interval_ms, int timeout_ms);

/* Shut the connection down (@err: reason, 0 clean); closed() follows. */
void conn_close(struct conn *c, int err);

/*
 * Tell the peer why, then close (docs/protocol.md, "Other protocol errors"): ERROR @code
 * (enum wire_error) with the formatted message goes out next, at a frame boundary, ahead
 * of frames queued and not yet begun; received frames are no longer handed to the owner;
 * the connection closes with @err once the ERROR is sent, or after CONN_ERROR_LINGER_MS
 * (conn_keepalive) if the peer does not take it.  The caller has logged the reason.  A
 * connection already failing or closing is left as it is.
 */
void conn_fail(struct conn *c, uint32_t code, int err, const char *fmt, ...) attr_printf(4, 5);

/* True once conn_fail() ran or the connection is closing: nothing more is received. */
bool conn_failing(const struct conn *c);

/* Format @sa as "addr:port". */
void conn_format_addr(const struct sockaddr *sa, char *buf, size_t len);

/* Set TCP_NODELAY and keepalive on a data socket, and conn_set_user_timeout(). */
void conn_tune_socket(int fd, int timeout_ms);

/* Let data sent on socket @fd stay unacknowledged (TCP_USER_TIMEOUT) for 30 s, or
 * @timeout_ms (keepalive_timeout) when that is longer; again on every live connection when
 * a reload changes keepalive_timeout.  A negative @fd (closed) is left alone. */
void conn_set_user_timeout(int fd, int timeout_ms);

/* How long ago the kernel last received data on @c's socket, and an acknowledgement of
 * what was sent on it (TCP_INFO), in ms: each moves while the peer's host takes part,
 * though its process reads what comes only later.  Returns 0, or -1 when the socket does
 * not say (not TCP). */
int conn_tcp_heard(const struct conn *c, uint32_t *data_ago_ms, uint32_t *ack_ago_ms);

#endif /* WALSHIP_NET_CONN_H */
