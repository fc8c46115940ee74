// SPDX-License-Identifier: MIT
/*
 * Framed connections over io_uring (see conn.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/tls.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "net/conn.h"
#include "proto/codec.h"
#include "net/peertag.h"

/* After this many consecutive "copied" notifications, auto mode stops trying SEND_ZC:
 * a deferred copy costs more than a copy at send time (msg_zerocopy.rst). */
#define ZC_COPIED_STREAK_MAX 8

static void conn_rx_post(struct conn *c);
static void conn_tx_post(struct conn *c);
static void conn_maybe_finish(struct conn *c);
static void conn_tls_pump(struct conn *c);
static void conn_tls_handshake(struct conn *c);
static void conn_ktls_tx(struct conn *c);
static void conn_ktls_control_record(struct conn *c);
static void conn_frame_refused(struct conn *c, int err);
static void conn_overflow(struct conn *c);

/* Ciphertext received per recv. */
#define TLS_RX_SIZE 65536
/* The first byte of a TLS record carrying a handshake: never a frame type. */
#define TLS_RECORD_HANDSHAKE 0x16
#define TLS_RECORD_ALERT 0x15
/* A TLS record: 5-byte header, then at most 2^14 + 256 bytes (RFC 8446, 5.2). */
#define TLS_RECORD_HEADER 5
#define TLS_RECORD_MAX (16384 + 256)

void conn_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "local");
	}
}

void conn_tune_socket(int fd)
{
	int one = 1;
	int idle = 10, intvl = 5, cnt = 3;
	unsigned int user_timeout = 30000;

	/* Frames are written whole; small control frames must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A dead peer is noticed by the kernel even when nothing is being sent. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

int64_t conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool conn_keepalive(struct conn *c, int64_t now_ms, int interval_ms, int timeout_ms)
{
	if (c->closing)
		return false;
	if (c->fail_item) {
		if (now_ms >= c->fail_deadline_ms) {
			log_log("closing connection to %s: it did not take the ERROR sent to it "
				"within %d ms",
				c->peer_addr, CONN_ERROR_LINGER_MS);
			conn_close(c, c->fail_error);
		}
		return false;
	}
	/* A receive paused for want of buffers is our own slowness, not the peer's. */
	if (!c->rx_paused && now_ms - c->last_rx_ms > timeout_ms) {
		log_log("closing connection to %s: nothing received for %" PRId64 " ms "
			"(keepalive_timeout)",
			c->peer_addr, now_ms - c->last_rx_ms);
		conn_close(c, -ETIMEDOUT);
		return true;
	}
	if (now_ms - c->last_tx_ms > interval_ms && c->tx_queued == 0) {
		struct msg_ping ping = { .token = (uint64_t)now_ms };
		uint8_t frame[WIRE_HEADER_SIZE + 8];
		int len = msg_ping_encode(frame, sizeof(frame), WIRE_PING, &ping);

		if (len > 0)
			conn_send_frame(c, frame, (uint32_t)len);
		c->last_tx_ms = now_ms; /* one PING per interval, even before it completes */
	}
	return false;
}

void conn_op_begin(struct conn *c)
{
	c->ops_pending++;
}

void conn_op_end(struct conn *c)
{
	c->ops_pending--;
	conn_maybe_finish(c);
}

unsigned int conn_tx_backlog(const struct conn *c)
{
	return c->tx_queued;
}

static void conn_item_free(struct conn *c, struct conn_tx_item *item)
{
	free(item->tls_out);
	if (item->release)
		item->release(item);
	if (item->slot)
		ring_slot_put(c->ring, item->slot);
	free(item);
}

void conn_close(struct conn *c, int err)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_error = err;
	/* Pending receives and sends complete (with errors) once the socket is shut down. */
	shutdown(c->fd, SHUT_RDWR);
	conn_maybe_finish(c);
}

static void conn_maybe_finish(struct conn *c)
{
	struct conn_tx_item *item, *next;

	if (!c->closing || c->ops_pending || c->closed_called)
		return;
	/* Nothing is in flight: every item's buffer is ours again. */
	for (item = c->tx_head; item; item = next) {
		next = item->next;
		conn_item_free(c, item);
	}
	c->tx_head = c->tx_tail = NULL;
	c->tx_queued = 0;
	for (item = c->raw_head; item; item = next) {
		next = item->next;
		conn_item_free(c, item);
	}
	c->raw_head = c->raw_tail = NULL;
	c->raw_queued = 0;
	c->fail_item = NULL;
	if (c->tls) {
		tls_conn_free(c->tls);
		free(c->tls);
		c->tls = NULL;
	}
	free(c->tls_rx);
	c->tls_rx = NULL;
	if (c->rx_slot) {
		ring_slot_put(c->ring, c->rx_slot);
		c->rx_slot = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->closed_called = true;
	c->ops->closed(c);
}

/* ---- receive ---- */

static void conn_rx_deliver(struct conn *c)
{
	struct ring_slot *slot = c->rx_slot;
	int ret;

	if (frame_payload_check(&c->rx_frame, c->rx_buf) < 0) {
		log_error("checksum mismatch in %s frame of %u bytes from %s",
			  wire_type_name(c->rx_frame.type), c->rx_frame.length, c->peer_addr);
		log_detail("The connection is reset; unacknowledged data is sent again.");
		conn_fail(c, WIRE_ERR_CHECKSUM, -EBADMSG,
			  "checksum mismatch in %s frame of %u bytes: the stream is corrupt",
			  wire_type_name(c->rx_frame.type), c->rx_frame.length);
		return;
	}
	c->stats.frames_received++;
	c->rx_slot = NULL;
	ret = c->ops->rx_frame(c, &c->rx_frame, c->rx_buf, slot);
	if (ret < 0) {
		conn_frame_refused(c, ret);
		return;
	}
	if (c->fail_item)
		return; /* the owner said why (conn_fail): nothing more is received */
	c->rx_in_header = true;
	c->rx_want = WIRE_HEADER_SIZE;
	c->rx_have = 0;
	c->rx_buf = c->rx_hdr;
	conn_rx_post(c);
}

/* The header is complete: decode it and find a buffer for the payload. */
static void conn_rx_header_done(struct conn *c)
{
	int ret = frame_header_decode(c->rx_hdr, &c->rx_frame);

	if (ret < 0 && c->stats.frames_received == 0 && c->rx_hdr[0] == TLS_RECORD_HANDSHAKE) {
		log_error("a TLS client connected from %s, but this walshipd has tls = off",
			  c->peer_addr);
		conn_close(c, -EPROTO);
		return;
	}
	if (ret == -EBADMSG && frame_header_plausible(c->rx_hdr)) {
		/* A frame header damaged in transit. */
		log_error("invalid frame header from %s: header checksum mismatch", c->peer_addr);
		conn_fail(c, WIRE_ERR_CHECKSUM, -EBADMSG,
			  "frame header checksum mismatch: the stream is corrupt");
		return;
	}
	if (ret < 0) {
		/* Not a walship frame at all (garbage, another protocol), or one the protocol
		 * forbids: unknown type, flags or reserved bits, length over its bound. */
		log_error("invalid frame header from %s: %s", c->peer_addr,
			  ret == -EBADMSG ? "not a walship frame header" :
					    "unknown type, reserved bits or length over bound");
		conn_fail(c, WIRE_ERR_PROTOCOL, -EBADMSG, "%s",
			  ret == -EBADMSG ? "not a walship frame header" :
					    "invalid frame header: unknown type, reserved bits or "
					    "length over the bound of its type");
		return;
	}
	c->rx_in_header = false;
	c->rx_have = 0;
	c->rx_want = c->rx_frame.length;
	c->rx_buf = NULL;
	conn_rx_resume(c);
}

void conn_rx_resume(struct conn *c)
{
	if (c->closing || c->fail_item)
		return;
	c->rx_paused = false;
	if (c->rx_in_header) {
		conn_rx_post(c);
		return;
	}
	if (!c->rx_buf) {
		struct ring_slot *slot = NULL;

		if (c->rx_frame.length <= sizeof(c->rx_small) && c->rx_frame.type != WIRE_DATA) {
			c->rx_buf = c->rx_small;
		} else {
			c->rx_buf = c->ops->rx_buffer(c, &c->rx_frame, &slot);
			if (!c->rx_buf) {
				c->rx_paused = true;
				return;
			}
			c->rx_slot = slot;
		}
	}
	if (c->rx_want == 0)
		conn_rx_deliver(c);
	else
		conn_rx_post(c);
}

/*
 * The kernel decrypts (kTLS RX) and a record that is not application data arrived: a
 * receive without room for its type fails with EIO.  Read it with its type, to say what
 * the peer meant (an alert: "certificate expired"); the connection closes either way.
 */
static void conn_ktls_control_record(struct conn *c)
{
	uint8_t data[64], control[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control,
			      .msg_controllen = sizeof(control) };
	struct cmsghdr *cmsg;
	ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT);
	int type = -1;

	for (cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg))
		if (cmsg->cmsg_level == SOL_TLS && cmsg->cmsg_type == TLS_GET_RECORD_TYPE)
			type = *CMSG_DATA(cmsg);
	if (type == TLS_RECORD_ALERT && n >= 2)
		log_error("TLS error on connection from %s: the peer sent alert \"%s\"",
			  c->peer_addr, SSL_alert_desc_string_long(data[1]));
	else if (type >= 0)
		log_error("TLS error on connection from %s: unexpected TLS record of type %d "
			  "(kernel TLS carries application data only)",
			  c->peer_addr, type);
	else
		log_log("could not receive from %s: %s", c->peer_addr, strerror(EIO));
}

static void conn_rx_complete(struct ring_op *op, int res, uint32_t flags)
{
	struct conn *c = (struct conn *)((char *)op - offsetof(struct conn, rx_op));

	(void)flags;
	c->rx_posted = false;
	c->ops_pending--;
	if (c->closing) {
		conn_maybe_finish(c);
		return;
	}
	if (c->fail_item)
		return; /* the ERROR is going out: what the peer sends now is not read */
	if (res <= 0) {
		if (res == -EIO && c->tls && c->tls->ktls_rx)
			conn_ktls_control_record(c);
		else if (res == 0)
			log_log("connection from %s closed by peer", c->peer_addr);
		else
			log_log("could not receive from %s: %s", c->peer_addr, strerror(-res));
		conn_close(c, res == 0 ? -ECONNRESET : res);
		return;
	}
	c->stats.bytes_received += (uint64_t)res;
	c->last_rx_ms = conn_now_ms();
	c->rx_have += (uint32_t)res;
	if (c->rx_have < c->rx_want) {
		conn_rx_post(c);
		return;
	}
	if (c->rx_in_header)
		conn_rx_header_done(c);
	else
		conn_rx_deliver(c);
}

static void conn_rx_post(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->closing || c->rx_posted || c->fail_item)
		return;
	if (c->tls && !c->tls->ktls_rx) {
		conn_tls_pump(c);
		return;
	}
	c->rx_op.cb = conn_rx_complete;
	sqe = ring_sqe(c->ring, &c->rx_op);
	io_uring_prep_recv(sqe, c->fd, c->rx_buf + c->rx_have, c->rx_want - c->rx_have,
			   MSG_WAITALL);
	c->rx_posted = true;
	c->ops_pending++;
}

static void conn_setup(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops,
		       void *owner, int zero_copy)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	memset(c, 0, sizeof(*c));
	c->ring = r;
	c->fd = fd;
	c->ops = ops;
	c->owner = owner;
	c->zero_copy = zero_copy;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		conn_format_addr((struct sockaddr *)&ss, c->peer_addr, sizeof(c->peer_addr));
		c->peer_sa = ss;
	} else
		snprintf(c->peer_addr, sizeof(c->peer_addr), "unknown");
	c->peer_tag = peertag_get(c->peer_addr);
	c->rx_in_header = true;
	c->rx_want = WIRE_HEADER_SIZE;
	c->rx_buf = c->rx_hdr;
	c->last_rx_ms = c->last_tx_ms = conn_now_ms();
	c->send_flags = MSG_WAITALL | MSG_NOSIGNAL;
}

void conn_init(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops, void *owner,
	       int zero_copy)
{
	conn_setup(c, r, fd, ops, owner, zero_copy);
	conn_rx_post(c);
}

int conn_init_tls(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops, void *owner,
		  const struct tls_ctx *ctx)
{
	conn_setup(c, r, fd, ops, owner, 0);
	c->tls = calloc(1, sizeof(*c->tls));
	c->tls_rx = malloc(TLS_RX_SIZE);
	c->tls_rec_want = TLS_RECORD_HEADER;
	if (!c->tls || !c->tls_rx || tls_conn_init(c->tls, ctx) < 0) {
		free(c->tls);
		c->tls = NULL;
		log_error("out of memory");
		conn_close(c, -ENOMEM);
		return -ENOMEM;
	}
	conn_tls_handshake(c);
	return 0;
}

const char *conn_peer_cert_name(const struct conn *c)
{
	return c->tls && c->tls->handshake_done ? c->tls->peer_name : NULL;
}

const char *conn_tls_version(const struct conn *c)
{
	return c->tls && c->tls->handshake_done ? c->tls->version : "";
}

const char *conn_ktls_state(const struct conn *c)
{
	return c->tls && c->tls->handshake_done ? tls_conn_ktls_state(c->tls) : "";
}

/* ---- send ---- */

static void conn_tx_pop(struct conn *c)
{
	struct conn_tx_item *item = c->tx_head;

	c->tx_head = item->next;
	if (!c->tx_head)
		c->tx_tail = NULL;
	item->queued = false;
	c->tx_queued--;
}

static void conn_tx_complete(struct ring_op *op, int res, uint32_t flags)
{
	struct conn_tx_item *item =
		(struct conn_tx_item *)((char *)op - offsetof(struct conn_tx_item, send_op));
	struct conn *c = item->conn;

	if (flags & IORING_CQE_F_NOTIF) {
		/* The kernel is done with the buffer. */
		item->notifs_pending--;
		if (c->zero_copy == -1) {
			if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED) {
				c->stats.zc_copied++;
				if (++c->zc_copied_streak >= ZC_COPIED_STREAK_MAX) {
					log_log("zero-copy sends to %s are copied by the kernel; "
						"using copying sends",
						c->peer_addr);
					c->zero_copy = 0;
				}
			} else {
				c->zc_copied_streak = 0;
			}
		} else if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED) {
			c->stats.zc_copied++;
		}
		c->ops_pending--;
		if (item->send_finished && !item->notifs_pending)
			conn_item_free(c, item);
		conn_maybe_finish(c);
		return;
	}

	if (flags & IORING_CQE_F_MORE)
		item->notifs_pending++;
	else
		c->ops_pending--;
	c->tx_posted = false;

	if (c->closing) {
		/* The item stays queued; it is freed when the connection finishes. */
		conn_maybe_finish(c);
		return;
	}
	if (item->zc && (res == -EOPNOTSUPP || res == -EINVAL)) {
		/* Zero-copy refused for this socket: copy from now on, resend this item. */
		log_log("zero-copy send refused for %s (%s); using copying sends", c->peer_addr,
			strerror(-res));
		c->zero_copy = 0;
		conn_tx_post(c);
		return;
	}
	if (res < 0) {
		log_log("could not send to %s: %s", c->peer_addr, strerror(-res));
		conn_close(c, res); /* may free c */
		return;
	}
	item->sent += (uint32_t)res;
	c->stats.bytes_sent += (uint64_t)res;
	c->last_tx_ms = conn_now_ms();
	if (item->sent < item->len) {
		/* Short send (signal, memory pressure): the rest goes next.  The kernel
		 * may still hold the first part for zero-copy; it only reads it. */
		conn_tx_post(c);
		return;
	}
	c->stats.frames_sent++;
	if (item->raw) {
		c->raw_head = item->next;
		if (!c->raw_head)
			c->raw_tail = NULL;
		c->raw_queued--;
	} else {
		conn_tx_pop(c);
	}
	item->send_finished = true;
	if (item == c->fail_item) {
		/* The peer has our ERROR (in its socket, at least): close as promised. */
		c->fail_item = NULL;
		conn_item_free(c, item);
		conn_close(c, c->fail_error); /* may free c */
		return;
	}
	if (!item->notifs_pending)
		conn_item_free(c, item);
	conn_tx_post(c);
	if (c->ops->tx_progress && !c->closing)
		c->ops->tx_progress(c);
}

/* ---- TLS ---- */

/* Move what OpenSSL wrote into its memory BIO to a raw item, sent before any frame. */
static void conn_tls_flush_raw(struct conn *c)
{
	size_t pending = BIO_ctrl_pending(c->tls->wbio);
	struct conn_tx_item *item;

	if (!pending)
		return;
	if (c->raw_queued >= CONN_TX_MAX_ITEMS) {
		conn_overflow(c);
		return;
	}
	item = calloc(1, sizeof(*item) + pending);
	if (!item) {
		log_error("out of memory");
		conn_close(c, -ENOMEM);
		return;
	}
	BIO_read(c->tls->wbio, item->small, (int)pending);
	item->buf = item->small;
	item->len = (uint32_t)pending;
	item->ready = true;
	item->raw = true;
	item->conn = c;
	c->raw_queued++;
	if (c->raw_tail)
		c->raw_tail->next = item;
	else
		c->raw_head = item;
	c->raw_tail = item;
	conn_tx_post(c);
}

/* Best effort, for a connection about to be closed: send what OpenSSL has for the peer
 * (an alert saying why) without waiting. */
static void conn_tls_send_now(struct conn *c)
{
	uint8_t buf[4096];
	int n = BIO_read(c->tls->wbio, buf, sizeof(buf));

	if (n > 0 && send(c->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("could not send TLS alert to %s: %s", c->peer_addr, strerror(errno));
}

/* Encrypt @item into TLS records: its headers and content in order, as one stream. */
static int conn_tls_encrypt(struct conn *c, struct conn_tx_item *item)
{
	uint32_t hdr_len = item->ext ? item->len - item->ext_len : item->len;
	size_t pending;

	if ((hdr_len && SSL_write(c->tls->ssl, item->buf, (int)hdr_len) <= 0) ||
	    (item->ext && SSL_write(c->tls->ssl, item->ext, (int)item->ext_len) <= 0)) {
		char why[256];

		tls_conn_error(c->tls, why, sizeof(why), "SSL_write failed");
		log_error("could not encrypt for %s: %s", c->peer_addr, why);
		return -EPROTO;
	}
	/* Everything OpenSSL produced so far, in its order: this item's records and any
	 * protocol bytes made while reading. */
	pending = BIO_ctrl_pending(c->tls->wbio);
	item->tls_out = malloc(pending ? pending : 1);
	if (!item->tls_out)
		return -ENOMEM;
	BIO_read(c->tls->wbio, item->tls_out, (int)pending);
	item->buf = item->tls_out;
	item->len = (uint32_t)pending;
	item->ext = NULL;
	item->ext_len = 0;
	item->sent = 0;
	return 0;
}

static void conn_tx_complete(struct ring_op *op, int res, uint32_t flags);

static void conn_tls_tx_post(struct conn *c)
{
	struct conn_tx_item *item = c->raw_head;
	struct io_uring_sqe *sqe;

	if (!item) {
		if (!c->tls->handshake_done)
			return; /* frames wait for the handshake */
		if (c->tls->ktls_tx_pending) {
			conn_ktls_tx(c);
			if (!c->closing)
				conn_tx_post(c);
			return;
		}
		item = c->tx_head;
		if (!item || !item->ready) {
			if (!c->tls->pumping && BIO_ctrl_pending(c->tls->wbio))
				conn_tls_flush_raw(c);
			return;
		}
		if (!item->tls_out) {
			int ret = conn_tls_encrypt(c, item);

			if (ret < 0) {
				conn_close(c, ret);
				return;
			}
		}
	}
	item->zc = false;
	item->send_op.cb = conn_tx_complete;
	sqe = ring_sqe(c->ring, &item->send_op);
	io_uring_prep_send(sqe, c->fd, item->buf + item->sent, item->len - item->sent,
			   MSG_WAITALL | MSG_NOSIGNAL);
	c->stats.copy_sends++;
	c->tx_posted = true;
	c->ops_pending++;
}

static void conn_tls_rx_complete(struct ring_op *op, int res, uint32_t flags);

static void conn_tls_recv_post(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->closing || c->tls_rx_posted)
		return;
	c->tls_rx_op.cb = conn_tls_rx_complete;
	sqe = ring_sqe(c->ring, &c->tls_rx_op);
	if (c->tls->ktls && !c->tls->handshake_done)
		/* One record at a time, so that nothing after the handshake leaves the socket
		 * before the kernel takes over (kernel TLS). */
		io_uring_prep_recv(sqe, c->fd, c->tls_rx + c->tls_rec_have,
				   c->tls_rec_want - c->tls_rec_have, MSG_WAITALL);
	else
		io_uring_prep_recv(sqe, c->fd, c->tls_rx, TLS_RX_SIZE, 0);
	c->tls_rx_posted = true;
	c->ops_pending++;
}

/* A plaintext client at a TLS server: tell it in plaintext, so its log says why. */
static void conn_tls_refuse_plaintext(struct conn *c)
{
	struct msg_error me = { .code = WIRE_ERR_PROTOCOL };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	int len;

	snprintf(me.message, sizeof(me.message),
		 "this walshipd requires TLS (tls = on): set tls = on and the certificate "
		 "files on the replica");
	log_log("refusing plaintext connection from %s: this walshipd requires TLS", c->peer_addr);
	len = msg_error_encode(frame, sizeof(frame), &me);
	if (len > 0 && send(c->fd, frame, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("could not send to %s: %s", c->peer_addr, strerror(errno));
	conn_close(c, -EPROTO);
}

/* Forget the captured traffic secrets (kernel TLS will not be used for them). */
static void conn_ktls_forget(struct tls_conn *tc)
{
	OPENSSL_cleanse(tc->secret_tx, sizeof(tc->secret_tx));
	OPENSSL_cleanse(tc->secret_rx, sizeof(tc->secret_rx));
	tc->have_tx = tc->have_rx = false;
}

/*
 * The handshake is done: hand the records to the kernel (net/ktls.h).  RX at once: the
 * handshake was read one record at a time, so nothing after it has left the socket.  TX
 * once the handshake's last bytes (the client's Finished) have been sent: see
 * conn_tls_tx_post().  Without kernel TLS, ktls = auto stays in user space (said once),
 * ktls = on closes the connection.
 */
static void conn_ktls_begin(struct conn *c)
{
	struct tls_conn *tc = c->tls;
	static bool missing_logged;
	struct ktls_keys keys;
	int ret = ktls_attach(c->fd);

	if (ret < 0) {
		conn_ktls_forget(tc);
		if (tc->ktls == 1) {
			log_error("kernel TLS is not available for the connection with %s: %s",
				  c->peer_addr, strerror(-ret));
			log_hint(
				"Load the kernel's tls module (modprobe tls), or set ktls = auto to "
				"encrypt in user space.");
			conn_close(c, -EOPNOTSUPP);
		} else if (!missing_logged) {
			missing_logged = true;
			log_log("kernel TLS is not available (%s): TLS records are made in user "
				"space",
				strerror(-ret));
		}
		return;
	}
	if (BIO_ctrl_pending(tc->rbio) == 0 && SSL_pending(tc->ssl) == 0) {
		ret = tls_conn_ktls_keys(tc, false, &keys);
		if (ret == 0)
			ret = ktls_install(c->fd, 0, &keys);
		OPENSSL_cleanse(&keys, sizeof(keys));
		if (ret == 0)
			tc->ktls_rx = true;
		else
			log_log("kernel TLS receive not set up for %s: %s", c->peer_addr,
				strerror(-ret));
	}
	tc->ktls_tx_pending = true;
}

/* The handshake's bytes are out: the kernel encrypts from now on (or OpenSSL goes on). */
static void conn_ktls_tx(struct conn *c)
{
	struct tls_conn *tc = c->tls;
	struct ktls_keys keys;
	int ret;

	tc->ktls_tx_pending = false;
	ret = tls_conn_ktls_keys(tc, true, &keys);
	if (ret == 0)
		ret = ktls_install(c->fd, 1, &keys);
	OPENSSL_cleanse(&keys, sizeof(keys));
	if (ret < 0) {
		log_log("kernel TLS send not set up for %s: %s", c->peer_addr, strerror(-ret));
		if (tc->ktls == 1) {
			conn_close(c, ret);
			return;
		}
	} else {
		tc->ktls_tx = true;
		c->zero_copy = tc->zero_copy;
		/* tls_sw_sendmsg() refuses MSG_WAITALL; short sends are sent on anyway. */
		c->send_flags = MSG_NOSIGNAL;
	}
	if (tc->ktls == 1 && !tc->ktls_rx) {
		log_error("kernel TLS receive is not available for the connection with %s",
			  c->peer_addr);
		conn_close(c, -EOPNOTSUPP);
		return;
	}
	log_log("kernel TLS for %s: %s", c->peer_addr, tls_conn_ktls_state(tc));
}

/* Drive the handshake with what arrived; may close (and so free) @c: callers return. */
static void conn_tls_handshake(struct conn *c)
{
	struct tls_conn *tc = c->tls;
	char why[256];
	int r = SSL_do_handshake(tc->ssl);

	if (r == 1) {
		conn_tls_flush_raw(c);
		if (tls_conn_established(tc) < 0) {
			log_error("TLS peer %s presented no certificate with a common name",
				  c->peer_addr);
			conn_close(c, -EPERM);
			return;
		}
		log_log("TLS established with %s: %s, peer certificate \"%s\"", c->peer_addr,
			tc->version, tc->peer_name);
		if (tc->ktls)
			conn_ktls_begin(c);
		if (c->closing)
			return;
		conn_tx_post(c);
		if (tc->ktls_rx)
			conn_rx_post(c);
		else
			conn_tls_pump(c);
		return;
	}
	if (SSL_get_error(tc->ssl, r) == SSL_ERROR_WANT_READ) {
		conn_tls_flush_raw(c);
		conn_tls_recv_post(c);
		return;
	}
	tls_conn_error(tc, why, sizeof(why), "handshake failed");
	log_error("TLS handshake with %s failed: %s", c->peer_addr, why);
	conn_tls_send_now(c);
	conn_close(c, -EPROTO);
}

static void conn_tls_rx_complete(struct ring_op *op, int res, uint32_t flags)
{
	struct conn *c = (struct conn *)((char *)op - offsetof(struct conn, tls_rx_op));
	struct tls_conn *tc = c->tls;

	(void)flags;
	c->tls_rx_posted = false;
	c->ops_pending--;
	if (c->closing) {
		conn_maybe_finish(c);
		return;
	}
	if (res <= 0) {
		if (res == 0)
			log_log("connection from %s closed by peer%s", c->peer_addr,
				tc->handshake_done ?
					"" :
					" during the TLS handshake (does it use TLS?)");
		else
			log_log("could not receive from %s: %s", c->peer_addr, strerror(-res));
		conn_close(c, res == 0 ? -ECONNRESET : res);
		return;
	}
	if (!tc->first_byte_seen) {
		tc->first_byte_seen = true;
		if (tc->server && c->tls_rx[0] != TLS_RECORD_HANDSHAKE) {
			conn_tls_refuse_plaintext(c);
			return;
		}
	}
	c->stats.bytes_received += (uint64_t)res;
	c->last_rx_ms = conn_now_ms();
	if (tc->ktls && !tc->handshake_done) {
		c->tls_rec_have += (uint32_t)res;
		if (c->tls_rec_have == TLS_RECORD_HEADER && c->tls_rec_want == TLS_RECORD_HEADER) {
			uint32_t body = (uint32_t)c->tls_rx[3] << 8 | c->tls_rx[4];

			if (body > TLS_RECORD_MAX) {
				log_error(
					"TLS record of %u bytes from %s during the handshake: not TLS",
					body, c->peer_addr);
				conn_close(c, -EPROTO);
				return;
			}
			c->tls_rec_want += body;
		}
		if (c->tls_rec_have < c->tls_rec_want) {
			conn_tls_recv_post(c);
			return;
		}
		res = (int)c->tls_rec_want;
		c->tls_rec_have = 0;
		c->tls_rec_want = TLS_RECORD_HEADER;
	}
	BIO_write(tc->rbio, c->tls_rx, res);
	if (!tc->handshake_done)
		conn_tls_handshake(c);
	else
		conn_tls_pump(c);
}

/*
 * Decrypt into the frame receive state machine for as long as plaintext is there and the
 * owner takes it.  Holds an op reference while it runs, so that a close in between
 * cannot free @c under it.
 */
static void conn_tls_pump(struct conn *c)
{
	struct tls_conn *tc = c->tls;

	if (tc->pumping || c->closing)
		return;
	if (!tc->handshake_done) {
		conn_tls_recv_post(c);
		return;
	}
	tc->pumping = true;
	c->ops_pending++;
	while (!c->closing && !c->fail_item && !c->rx_paused && c->rx_buf) {
		int n;

		if (c->rx_want == c->rx_have) {
			/* a zero-length payload */
			conn_rx_deliver(c);
			continue;
		}
		n = SSL_read(tc->ssl, c->rx_buf + c->rx_have, (int)(c->rx_want - c->rx_have));
		if (n > 0) {
			c->rx_have += (uint32_t)n;
			if (c->rx_have < c->rx_want)
				continue;
			if (c->rx_in_header)
				conn_rx_header_done(c);
			else
				conn_rx_deliver(c);
			continue;
		}
		switch (SSL_get_error(tc->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			conn_tls_recv_post(c);
			break;
		case SSL_ERROR_ZERO_RETURN:
			log_log("TLS connection from %s closed by peer", c->peer_addr);
			conn_close(c, -ECONNRESET);
			break;
		default: {
			char why[256];

			tls_conn_error(tc, why, sizeof(why), "SSL_read failed");
			log_error("TLS error on connection from %s: %s", c->peer_addr, why);
			conn_close(c, -EPROTO);
			break;
		}
		}
		break;
	}
	tc->pumping = false;
	if (!c->closing && !c->tx_posted)
		conn_tx_post(c); /* protocol bytes OpenSSL made while reading */
	c->ops_pending--;
	conn_maybe_finish(c); /* may free c */
}

static void conn_tx_post(struct conn *c)
{
	struct conn_tx_item *item = c->tx_head;
	struct io_uring_sqe *sqe;
	bool zc;

	if (c->tls && !c->tls->ktls_tx && !c->closing && !c->tx_posted) {
		conn_tls_tx_post(c);
		return;
	}
	if (c->closing || c->tx_posted || !item || !item->ready)
		return;
	zc = (item->slot || item->ext) && c->zero_copy != 0;
	item->zc = zc;
	item->send_op.cb = conn_tx_complete;
	sqe = ring_sqe(c->ring, &item->send_op);
	ring_sqe_tag(c->ring, sqe, c->peer_tag); /* attributes the send to the peer (BPF) */
	if (item->ext) {
		uint32_t hdr_len = item->len - item->ext_len;
		int n = 0;

		if (item->sent < hdr_len) {
			item->iov[n].iov_base = item->buf + item->sent;
			item->iov[n++].iov_len = hdr_len - item->sent;
			item->iov[n].iov_base = (void *)(uintptr_t)item->ext;
			item->iov[n++].iov_len = item->ext_len;
		} else {
			item->iov[n].iov_base =
				(void *)(uintptr_t)(item->ext + item->sent - hdr_len);
			item->iov[n++].iov_len = item->len - item->sent;
		}
		memset(&item->msg, 0, sizeof(item->msg));
		item->msg.msg_iov = item->iov;
		item->msg.msg_iovlen = (size_t)n;
		if (zc) {
			io_uring_prep_sendmsg_zc(sqe, c->fd, &item->msg, c->send_flags);
			sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
		} else {
			io_uring_prep_sendmsg(sqe, c->fd, &item->msg, c->send_flags);
		}
	} else {
		ring_prep_send_slot(sqe, c->fd, c->ring, item->slot, item->buf + item->sent,
				    item->len - item->sent, zc, c->send_flags);
	}
	if (zc)
		c->stats.zc_sends++;
	else
		c->stats.copy_sends++;
	c->tx_posted = true;
	c->ops_pending++;
}

/* Queue @item last; false, with the connection closing, when the queue is at its bound. */
static bool conn_tx_append(struct conn *c, struct conn_tx_item *item)
{
	if (c->tx_queued >= CONN_TX_MAX_ITEMS) {
		conn_overflow(c);
		return false;
	}
	item->conn = c;
	item->queued = true;
	if (c->tx_tail)
		c->tx_tail->next = item;
	else
		c->tx_head = item;
	c->tx_tail = item;
	c->tx_queued++;
	return true;
}

int conn_send_frame(struct conn *c, const uint8_t *frame, uint32_t len)
{
	struct conn_tx_item *item;

	if (c->closing)
		return -EPIPE;
	item = calloc(1, sizeof(*item) + len);
	if (!item) {
		log_error("out of memory");
		return -ENOMEM;
	}
	memcpy(item->small, frame, len);
	item->buf = item->small;
	item->len = len;
	item->ready = true;
	if (!conn_tx_append(c, item)) {
		free(item);
		return -ENOBUFS;
	}
	conn_tx_post(c);
	return 0;
}

struct conn_tx_item *conn_queue_slot(struct conn *c, struct ring_slot *slot, uint32_t len,
				     bool ready)
{
	struct conn_tx_item *item = calloc(1, sizeof(*item));

	if (!item) {
		log_error("out of memory");
		return NULL;
	}
	item->slot = slot;
	item->buf = slot->data;
	item->len = len;
	item->ready = ready;
	if (!conn_tx_append(c, item)) {
		free(item);
		return NULL;
	}
	if (ready)
		conn_tx_post(c);
	return item;
}

struct conn_tx_item *conn_queue_mapped(struct conn *c, const uint8_t *hdr, uint32_t hdr_len,
				       const uint8_t *ext, uint32_t ext_len,
				       void (*release)(struct conn_tx_item *item), void *owner)
{
	struct conn_tx_item *item;

	if (c->closing)
		return NULL;
	item = calloc(1, sizeof(*item) + hdr_len);
	if (!item) {
		log_error("out of memory");
		return NULL;
	}
	memcpy(item->small, hdr, hdr_len);
	item->buf = item->small;
	item->ext = ext;
	item->ext_len = ext_len;
	item->len = hdr_len + ext_len;
	item->owner = owner;
	item->release = release;
	item->ready = true;
	if (!conn_tx_append(c, item)) {
		free(item); /* not conn_item_free: @release is for items the kernel used */
		return NULL;
	}
	conn_tx_post(c);
	return item;
}

void conn_item_ready(struct conn *c, struct conn_tx_item *item, uint32_t len)
{
	item->len = len;
	item->ready = true;
	conn_tx_post(c);
}

void conn_item_failed(struct conn *c, struct conn_tx_item *item, int err)
{
	item->failed = true;
	conn_close(c, err);
}

/* The send queue is at its bound: the peer does not read what is sent to it. */
static void conn_overflow(struct conn *c)
{
	log_warning("closing connection to %s: its send queue reached the bound of %u frames",
		    c->peer_addr, CONN_TX_MAX_ITEMS);
	log_detail("The peer does not read what is sent to it.");
	conn_close(c, -ENOBUFS);
}

bool conn_failing(const struct conn *c)
{
	return c->closing || c->fail_item;
}

void conn_fail(struct conn *c, uint32_t code, int err, const char *fmt, ...)
{
	struct msg_error me = { .code = code };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct conn_tx_item *item, *head = c->tx_head;
	va_list ap;
	int len;

	if (conn_failing(c))
		return;
	va_start(ap, fmt);
	vsnprintf(me.message, sizeof(me.message), fmt, ap);
	va_end(ap);
	len = msg_error_encode(frame, sizeof(frame), &me);
	item = len > 0 ? calloc(1, sizeof(*item) + (size_t)len) : NULL;
	if (!item) {
		conn_close(c, err);
		return;
	}
	memcpy(item->small, frame, (size_t)len);
	item->buf = item->small;
	item->len = (uint32_t)len;
	item->ready = true;
	item->conn = c;
	item->queued = true;
	/* Next after the item being sent, if one is (its bytes must not be split), else
	 * first.  Items behind it are never sent: the connection closes after it. */
	if (head && (head->sent > 0 || head->tls_out || (c->tx_posted && !c->raw_head))) {
		item->next = head->next;
		head->next = item;
		if (c->tx_tail == head)
			c->tx_tail = item;
	} else {
		item->next = head;
		c->tx_head = item;
		if (!c->tx_tail)
			c->tx_tail = item;
	}
	c->tx_queued++;
	c->fail_item = item;
	c->fail_error = err;
	c->fail_deadline_ms = conn_now_ms() + CONN_ERROR_LINGER_MS;
	conn_tx_post(c);
}

/*
 * The owner refused a frame with @err: tell the peer, unless the owner already did
 * (conn_fail) or the error is not the peer's doing (out of memory, I/O: a plain close).
 */
static void conn_frame_refused(struct conn *c, int err)
{
	const char *type = wire_type_name(c->rx_frame.type);

	switch (err) {
	case -EPROTONOSUPPORT:
		conn_fail(c, WIRE_ERR_VERSION, err,
			  "protocol version not supported: this walshipd speaks version %d",
			  WIRE_VERSION);
		break;
	case -EPROTO:
	case -EBADMSG:
		conn_fail(c, WIRE_ERR_PROTOCOL, err, "%s %s frame",
			  err == -EBADMSG ? "malformed" : "unexpected or invalid", type);
		break;
	default:
		conn_close(c, err);
		break;
	}
}
