/* SPDX-License-Identifier: MIT */
/*
 * The TLS record pump of a framed connection (net/conn.h), private to net/: the
 * handshake over memory BIOs (net/tls.h), ciphertext in and out through io_uring, the
 * records made and read by OpenSSL in user space, and the hand-over of the records to
 * kernel TLS (net/ktls.h) once the handshake is done.
 *
 * Order on the wire: raw items (bytes OpenSSL made on its own: handshake, alerts) go
 * before any frame; frames are encrypted only when they reach the head of the queue, so
 * records leave in the order OpenSSL made them.  Kernel TLS: RX is installed at once
 * (the handshake was read one record at a time, so nothing after it has left the
 * socket), TX once the handshake's last bytes are sent; from then on conn.c sends and
 * receives plaintext as without TLS.
 *
 * Every function here may close the connection, and so free it: callers return at once.
 */
#ifndef WALSHIP_NET_TLS_PUMP_H
#define WALSHIP_NET_TLS_PUMP_H

#include "net/conn.h"

/* The first byte of a TLS record carrying a handshake: never a frame type. */
#define TLS_RECORD_HANDSHAKE 0x16

/*
 * User-space TLS: decrypt into the frame receive state machine for as long as plaintext
 * is there and the owner takes it, and receive more ciphertext when OpenSSL wants it;
 * before the handshake is done, receive for the handshake.
 */
void conn_tls_pump(struct conn *c);

/* User-space TLS (or kernel TLS TX not installed yet): post the next send, raw items
 * first, then the queue's head encrypted; installs kernel TLS TX once the handshake's
 * bytes are out. */
void conn_tls_tx_post(struct conn *c);

/*
 * Kernel TLS RX refused a receive with EIO: a record that is not application data
 * arrived.  Read it with its type and log what the peer meant (an alert); the caller
 * closes the connection.
 */
void conn_ktls_control_record(struct conn *c);

#endif /* WALSHIP_NET_TLS_PUMP_H */
