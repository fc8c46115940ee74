/* SPDX-License-Identifier: MIT */
/*
 * The framed connection's own steps that the TLS record pump (tls_pump.c) drives: private
 * to net/, not for the owners of a connection (they use conn.h).
 *
 * conn.c keeps framing (the receive state machine) and the ordered send queue; with
 * TLS in user space, tls_pump.c stands between them and the socket: it feeds decrypted
 * bytes into the same receive steps and sends the queue's items as records.  Every
 * function here may close the connection, and so free it through the owner's closed():
 * callers return at once.
 */
#ifndef WALSHIP_NET_CONN_INTERNAL_H
#define WALSHIP_NET_CONN_INTERNAL_H

#include <stdint.h>

#include "net/conn.h"

/* Set up @c for connected socket @fd (peer address, receive state, timers) without
 * receiving yet: conn_init() posts the first receive, conn_init_tls() the handshake. */
void conn_setup(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops, void *owner,
		enum config_switch zero_copy);

/* Receive what the receive state machine wants next (through the TLS pump when OpenSSL
 * decrypts).  Does nothing while closing, failing or already posted. */
void conn_rx_post(struct conn *c);

/*
 * The tag of the receive @c posts now (ring_sqe_tag()): its peer's number while it waits
 * for a DATA frame's payload, which is WAL, and 0 (untagged: the BPF probes pass it over)
 * for a frame header or another frame's payload.  A tagged receive starts the probes'
 * "received to durable" clock, which the next sync stops: a PING or PONG an idle replica
 * received started it too, and the first file after the idle time counted the idle time.
 * (FILE_BEGIN carries the name and size alone: its file's WAL comes in DATA frames.)
 */
static inline unsigned int conn_rx_tag(const struct conn *c)
{
	return !c->rx_in_header && c->rx_frame.type == WIRE_DATA ? c->peer_tag : 0;
}

/* The frame header in c->rx_hdr is complete: decode and check it, then find a buffer for
 * the payload (conn_fail() on a bad header). */
void conn_rx_header_done(struct conn *c);

/* The payload is complete: check its CRC and hand the frame to the owner, then wait for
 * the next header. */
void conn_rx_deliver(struct conn *c);

/* Post the next send: the queue's head (or, with TLS in user space, what the pump
 * chooses).  Does nothing while closing, with a send in flight, or nothing ready. */
void conn_tx_post(struct conn *c);

/* Completion of any send of the connection (ring_op callback of item->send_op). */
void conn_tx_complete(struct ring_op *op, int res, uint32_t flags);

/* The send queue is at CONN_TX_MAX_ITEMS: log once and close with -ENOBUFS. */
void conn_overflow(struct conn *c);

/* Call closed() once the connection is closing and nothing is in flight. */
void conn_maybe_finish(struct conn *c);

#endif /* WALSHIP_NET_CONN_INTERNAL_H */
