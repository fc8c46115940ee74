// SPDX-License-Identifier: MIT
/*
 * The TLS record pump of a framed connection and its hand-over to kernel TLS (see
 * tls_pump.h; the connection itself is conn.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tls.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/log.h"
#include "common/mapguard.h"
#include "net/conn.h"
#include "net/conn_internal.h"
#include "net/ktls.h"
#include "net/tls.h"
#include "net/tls_pump.h"
#include "proto/codec.h"

/* Ciphertext received per recv. */
#define TLS_RX_SIZE 65536
#define TLS_RECORD_ALERT 0x15
/* A TLS record: 5-byte header, then at most 2^14 + 256 bytes (RFC 8446, 5.2). */
#define TLS_RECORD_HEADER 5
#define TLS_RECORD_MAX (16384 + 256)
/* The most plaintext one record carries (RFC 8446, 5.1). */
#define TLS_RECORD_PLAINTEXT_MAX 16384

static void conn_tls_handshake(struct conn *c);
static void conn_tls_rx_complete(struct ring_op *op, int res, uint32_t flags);
static int conn_ktls_tx(struct conn *c);

/*
 * The kernel decrypts (kTLS RX) and a record that is not application data arrived: a
 * receive without room for its type fails with EIO.  Read it with its type, to say what
 * the peer meant (an alert: "certificate expired"); the connection closes either way.
 */
void conn_ktls_control_record(struct conn *c)
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

int conn_init_tls(struct conn *c, struct ring *r, int fd, const struct conn_ops *ops, void *owner,
		  const struct tls_ctx *ctx)
{
	bool closing;

	conn_setup(c, r, fd, ops, owner, CONFIG_SWITCH_OFF);
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
	/* Its first step (a client's ClientHello) may close @c (no memory for the record):
	 * held meanwhile, so that the owner's closed() runs only once this returns failure,
	 * and the owner does not go on with a connection freed. */
	c->ops_pending++;
	conn_tls_handshake(c);
	closing = c->closing;
	c->ops_pending--;
	conn_maybe_finish(c); /* may free c */
	return closing ? -ECONNABORTED : 0;
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

/*
 * A mapped item's content, encrypted where it lies in a file's mapping (send_source =
 * map): a file truncated since its frame's checksum was taken raises SIGBUS on the read.
 * So the mapping is read under the SIGBUS guard (common/mapguard.h), a record's worth at
 * a time into a buffer of its own, and OpenSSL encrypts from that buffer: a fault cuts
 * short only the copy, never OpenSSL, which is not on the stack when the mapping is read.
 * The copy stays in the CPU's cache; encryption reads it again at once.
 */
struct tls_ext_write {
	SSL *ssl;
	const uint8_t *ext;
	uint32_t len;
	uint8_t piece[TLS_RECORD_PLAINTEXT_MAX];
};

static int conn_tls_write_ext(void *arg)
{
	struct tls_ext_write *w = arg;

	for (uint32_t off = 0; off < w->len;) {
		uint32_t n =
			w->len - off < sizeof(w->piece) ? w->len - off : (uint32_t)sizeof(w->piece);

		memcpy(w->piece, w->ext + off, n);
		if (SSL_write(w->ssl, w->piece, (int)n) <= 0)
			return -EPROTO;
		off += n;
	}
	return 0;
}

/* Encrypt @item into TLS records: its headers and content in order, as one stream.
 * Returns 0, -EFAULT when its mapped content could not be read (item->unreadable), or
 * -EPROTO or -ENOMEM (logged). */
static int conn_tls_encrypt(struct conn *c, struct conn_tx_item *item)
{
	uint32_t hdr_len = item->ext ? item->len - item->ext_len : item->len;
	size_t pending;
	int ret = 0;

	if (hdr_len && SSL_write(c->tls->ssl, item->buf, (int)hdr_len) <= 0)
		ret = -EPROTO;
	if (!ret && item->ext) {
		struct tls_ext_write *w = malloc(sizeof(*w));

		if (!w) {
			log_error("out of memory");
			return -ENOMEM;
		}
		w->ssl = c->tls->ssl;
		w->ext = item->ext;
		w->len = item->ext_len;
		ret = mapguard_call(conn_tls_write_ext, w);
		free(w);
	}
	if (ret == -EFAULT) {
		/* The owner says which file, and fails what it was for (net/conn.h). */
		log_log("could not encrypt for %s: the content to send could not be read (its "
			"file shrank)",
			c->peer_addr);
		item->unreadable = true;
		return ret;
	}
	if (ret < 0) {
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

void conn_tls_tx_post(struct conn *c)
{
	struct conn_tx_item *item = c->raw_head;
	struct io_uring_sqe *sqe;

	if (!item) {
		if (!c->tls->handshake_done)
			return; /* frames wait for the handshake */
		if (c->tls->ktls_tx_pending) {
			if (conn_ktls_tx(c) == 0)
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
	/* received to durable (BPF), by what the frame receive waits for, as conn_rx_post()
	 * tags; but a record read here holds whole frames, a DATA frame's header and payload
	 * together (one send of the peer's): a header awaited right after a DATA frame is
	 * taken for the next one's, or the WAL of a stream would go unmeasured (a PING
	 * that ends an idle stretch there starts the clock once too early) */
	ring_sqe_tag(c->ring, sqe,
		     c->rx_in_header && c->rx_last_type == WIRE_DATA ? c->peer_tag :
								       conn_rx_tag(c));
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
		if (tc->ktls == CONFIG_SWITCH_ON) {
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

/* The handshake's bytes are out: the kernel encrypts from now on (or OpenSSL goes on).
 * Returns -1 when it closed @c (ktls = on), which may have freed it. */
static int conn_ktls_tx(struct conn *c)
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
		if (tc->ktls == CONFIG_SWITCH_ON) {
			conn_close(c, ret);
			return -1;
		}
	} else {
		tc->ktls_tx = true;
		c->zero_copy = tc->zero_copy;
		/* tls_sw_sendmsg() refuses MSG_WAITALL; short sends are sent on anyway. */
		c->send_flags = MSG_NOSIGNAL;
	}
	if (tc->ktls == CONFIG_SWITCH_ON && !tc->ktls_rx) {
		log_error("kernel TLS receive is not available for the connection with %s",
			  c->peer_addr);
		conn_close(c, -EOPNOTSUPP);
		return -1;
	}
	log_log("kernel TLS for %s: %s", c->peer_addr, tls_conn_ktls_state(tc));
	return 0;
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
		if (tc->ktls != CONFIG_SWITCH_OFF)
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

/* What a receive of records brought (@res, as the completion says); may close @c, which the
 * caller's op reference keeps. */
static void conn_tls_rx_handle(struct conn *c, int res)
{
	struct tls_conn *tc = c->tls;

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
	c->last_rx_ms = clock_listen_ms();
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
 * The receive's op reference is kept until what arrived is handled: the handshake's end
 * may close the connection (ktls = on without kernel TLS), and with nothing else in
 * flight (a server has no last handshake bytes to send) the close would free @c under
 * conn_tls_handshake().
 */
static void conn_tls_rx_complete(struct ring_op *op, int res, uint32_t flags)
{
	struct conn *c = container_of(op, struct conn, tls_rx_op);

	(void)flags;
	c->tls_rx_posted = false;
	if (!c->closing)
		conn_tls_rx_handle(c, res);
	c->ops_pending--;
	conn_maybe_finish(c); /* may free c */
}

/*
 * Decrypt into the frame receive state machine for as long as plaintext is there and the
 * owner takes it.  Holds an op reference while it runs, so that a close in between
 * cannot free @c under it.
 */
void conn_tls_pump(struct conn *c)
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
