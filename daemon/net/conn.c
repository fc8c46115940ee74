// SPDX-License-Identifier: MIT
/*
 * Framed connections over io_uring (see conn.h): the receive state machine and the
 * ordered send queue.  With TLS, the handshake, the records OpenSSL makes and reads, and
 * the hand-over to kernel TLS are tls_pump.c's (tls_pump.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/log.h"
#include "net/conn.h"
#include "net/conn_internal.h"
#include "proto/codec.h"
#include "net/peertag.h"
#include "net/tls_pump.h"

/* After this many consecutive "copied" notifications, auto mode stops trying SEND_ZC:
 * a deferred copy costs more than a copy at send time (msg_zerocopy.rst). */
#define ZC_COPIED_STREAK_MAX 8

static void conn_frame_refused(struct conn *c, int err);

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

void conn_set_user_timeout(int fd, int timeout_ms)
{
	/* Data sent and not acknowledged (or a zero window: a receiver paused for want of
	 * buffers, which conn_keepalive() spares) for at least 30 s, and as long as
	 * keepalive_timeout lets a silent peer be when that is longer: a fixed 30 s closed a
	 * live connection whose receiver paused longer, whatever keepalive_timeout said (the
	 * kernel aborts on a zero window past TCP_USER_TIMEOUT since Linux 5.11); a short
	 * keepalive_timeout must not abort a disk stall of a few seconds, or three lost
	 * segments in a row. */
	unsigned int user_timeout = timeout_ms > 30000 ? (unsigned int)timeout_ms : 30000;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

void conn_tune_socket(int fd, int timeout_ms)
{
	int one = 1;
	int idle = 10, intvl = 5, cnt = 3;

	/* Frames are written whole; small control frames must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A dead peer is noticed by the kernel even when nothing is being sent. */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	conn_set_user_timeout(fd, timeout_ms);
}

int conn_tcp_heard(const struct conn *c, uint32_t *data_ago_ms, uint32_t *ack_ago_ms)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_last_ack_recv) + sizeof(ti.tcpi_last_ack_recv))
		return -1;
	*data_ago_ms = ti.tcpi_last_data_recv;
	*ack_ago_ms = ti.tcpi_last_ack_recv;
	return 0;
}

bool conn_keepalive(struct conn *c, int64_t now_ms, int interval_ms, int timeout_ms)
{
	int64_t silent_ms;
	uint32_t ago_ms, ack_ago_ms;

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
	silent_ms = clock_listen_ms() - c->last_rx_ms;
	/* A frame still arriving: the peer is alive while its bytes come.  A receive of a
	 * whole frame (MSG_WAITALL) completes only with the frame's last byte: on a link
	 * slower than a frame (up to 1 MiB) per keepalive_timeout the bytes arrive long
	 * before last_rx_ms moves, and the kernel's record says when they last did. */
	if (!c->rx_paused && silent_ms > timeout_ms && c->rx_posted &&
	    conn_tcp_heard(c, &ago_ms, &ack_ago_ms) == 0 && ago_ms <= (uint32_t)timeout_ms) {
		c->last_rx_ms = clock_listen_ms() - ago_ms;
		silent_ms = ago_ms;
	}
	if (!c->rx_paused && silent_ms > timeout_ms) {
		log_log("closing connection to %s: nothing received for %" PRId64 " ms "
			"(keepalive_timeout)",
			c->peer_addr, silent_ms);
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

void conn_maybe_finish(struct conn *c)
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

void conn_rx_deliver(struct conn *c)
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
	c->rx_last_type = c->rx_frame.type;
	c->rx_slot = NULL;
	/* The owner may close @c from rx_frame (a file it sends shrank, say): counted as
	 * busy meanwhile, so that it is freed only once this returns, and not used after. */
	c->ops_pending++;
	ret = c->ops->rx_frame(c, &c->rx_frame, c->rx_buf, slot);
	c->ops_pending--;
	if (c->closing) {
		conn_maybe_finish(c); /* may free c */
		return;
	}
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
void conn_rx_header_done(struct conn *c)
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
	/* The silence counts from here: nothing was read while the receive was paused. */
	if (c->rx_paused)
		c->last_rx_ms = clock_listen_ms();
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

static void conn_rx_complete(struct ring_op *op, int res, uint32_t flags)
{
	struct conn *c = container_of(op, struct conn, rx_op);

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
	c->last_rx_ms = clock_listen_ms();
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

void conn_rx_post(struct conn *c)
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
	ring_sqe_tag(c->ring, sqe, conn_rx_tag(c)); /* received to durable (BPF) */
	c->rx_posted = true;
	c->ops_pending++;
}

void conn_tag_peer(struct conn *c)
{
	c->peer_tag = peertag_get(c->peer_addr);
}

void conn_setup(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops, void *owner,
		enum config_switch zero_copy)
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
	c->rx_in_header = true;
	c->rx_want = WIRE_HEADER_SIZE;
	c->rx_buf = c->rx_hdr;
	c->last_rx_ms = clock_listen_ms();
	c->last_tx_ms = clock_now_ms();
	c->send_flags = MSG_WAITALL | MSG_NOSIGNAL;
}

void conn_init(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops, void *owner,
	       enum config_switch zero_copy)
{
	conn_setup(c, r, fd, ops, owner, zero_copy);
	conn_rx_post(c);
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

/*
 * A SEND_ZC notification (@res: its usage flags): the kernel is done with @item's memory.
 * In auto mode, a streak of sends the kernel copied after all turns zero-copy off.
 */
static void conn_tx_notified(struct conn *c, struct conn_tx_item *item, int res)
{
	item->notifs_pending--;
	if (c->zero_copy == CONFIG_SWITCH_AUTO) {
		if ((uint32_t)res & IORING_NOTIF_USAGE_ZC_COPIED) {
			c->stats.zc_copied++;
			if (++c->zc_copied_streak >= ZC_COPIED_STREAK_MAX) {
				log_log("zero-copy sends to %s are copied by the kernel; "
					"using copying sends",
					c->peer_addr);
				c->zero_copy = CONFIG_SWITCH_OFF;
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
}

void conn_tx_complete(struct ring_op *op, int res, uint32_t flags)
{
	struct conn_tx_item *item = container_of(op, struct conn_tx_item, send_op);
	struct conn *c = item->conn;

	if (flags & IORING_CQE_F_NOTIF) {
		conn_tx_notified(c, item, res);
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
		c->zero_copy = CONFIG_SWITCH_OFF;
		conn_tx_post(c);
		return;
	}
	if (res < 0) {
		log_log("could not send to %s: %s", c->peer_addr, strerror(-res));
		/* The kernel could not read the mapped content: its file shrank. */
		item->unreadable = res == -EFAULT && item->ext;
		conn_close(c, res); /* may free c */
		return;
	}
	item->sent += (uint32_t)res;
	c->stats.bytes_sent += (uint64_t)res;
	c->last_tx_ms = clock_now_ms();
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

void conn_tx_post(struct conn *c)
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
	zc = (item->slot || item->ext) && c->zero_copy != CONFIG_SWITCH_OFF;
	item->zc = zc;
	item->send_op.cb = conn_tx_complete;
	sqe = ring_sqe(c->ring, &item->send_op);
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
	ring_sqe_tag(c->ring, sqe, c->peer_tag); /* attributes the send to the peer (BPF) */
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
void conn_overflow(struct conn *c)
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
	c->fail_deadline_ms = clock_now_ms() + CONN_ERROR_LINGER_MS;
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
