// SPDX-License-Identifier: MIT
/*
 * Tests for daemon/net/conn.c over a real io_uring and a real socket pair: framing, the
 * checksum checks, zero-copy fallback, back-pressure and the close protocol.  A UNIX
 * stream socket pair refuses SEND_ZC, which exercises the fallback to copying sends.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"
#include "net/conn.h"
#include "proto/codec.h"
#include "ring/ring.h"

#define SLOT_SIZE (WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD + 4096 - 32)

struct side {
	struct conn conn; /* first */
	unsigned int frames;
	uint8_t last_type;
	uint32_t last_len;
	uint8_t last_payload[WIRE_MAX_PAYLOAD];
	bool refuse_buffer; /* rx_buffer returns NULL: back-pressure */
	unsigned int buffer_asks;
	bool closed;
};

static struct ring ring;

static uint8_t *side_rx_buffer(struct conn *c, const struct frame_header *hdr,
			       struct ring_slot **slot)
{
	struct side *s = (struct side *)c;

	(void)hdr;
	s->buffer_asks++;
	if (s->refuse_buffer)
		return NULL;
	*slot = ring_slot_get(c->ring);
	return *slot ? (*slot)->data : NULL;
}

static int side_rx_frame(struct conn *c, const struct frame_header *hdr, uint8_t *payload,
			 struct ring_slot *slot)
{
	struct side *s = (struct side *)c;

	s->frames++;
	s->last_type = hdr->type;
	s->last_len = hdr->length;
	memcpy(s->last_payload, payload, hdr->length);
	if (slot)
		ring_slot_put(c->ring, slot);
	return 0;
}

static void side_closed(struct conn *c)
{
	((struct side *)c)->closed = true;
}

static const struct conn_ops side_ops = {
	.rx_buffer = side_rx_buffer,
	.rx_frame = side_rx_frame,
	.closed = side_closed,
};

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_FATAL);
	return ring_init(&ring, 64, 8, SLOT_SIZE);
}

static int teardown(void **state)
{
	(void)state;
	ring_exit(&ring);
	return 0;
}

static void pair(struct side *a, struct side *b, enum config_switch zero_copy)
{
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	conn_init(&a->conn, &ring, fds[0], &side_ops, a, zero_copy);
	conn_init(&b->conn, &ring, fds[1], &side_ops, b, zero_copy);
}

/* Run the ring until @cond or a bounded number of rounds (each waits at most 100 ms). */
#define RUN_UNTIL(cond)                                                 \
	do {                                                            \
		for (int round_ = 0; round_ < 100 && !(cond); round_++) \
			ring_run(&ring, 100);                           \
		assert_true(cond);                                      \
	} while (0)

static void close_both(struct side *a, struct side *b)
{
	conn_close(&a->conn, 0);
	conn_close(&b->conn, 0);
	RUN_UNTIL(a->closed && b->closed);
	assert_int_equal(ring.slots_free, ring.nslots);
}

static void test_small_frame(void **state)
{
	struct side a, b;
	uint8_t frame[WIRE_HEADER_SIZE + 8];
	struct msg_ping ping = { .token = 0x1122334455667788ull }, got;
	int len;

	(void)state;
	pair(&a, &b, CONFIG_SWITCH_OFF);
	len = msg_ping_encode(frame, sizeof(frame), WIRE_PING, &ping);
	assert_true(len > 0);
	assert_int_equal(conn_send_frame(&a.conn, frame, (uint32_t)len), 0);
	RUN_UNTIL(b.frames == 1);
	assert_int_equal(b.last_type, WIRE_PING);
	assert_int_equal(msg_ping_decode(b.last_payload, b.last_len, &got), 0);
	assert_true(got.token == ping.token);
	assert_int_equal(b.buffer_asks, 0); /* small frames use the connection's buffer */
	close_both(&a, &b);
}

/* A DATA frame built in a slot; SEND_ZC is refused on UNIX sockets, so the connection
 * falls back to copying sends and the frame still arrives intact. */
static void test_data_frame_zero_copy_fallback(void **state)
{
	struct side a, b;
	struct ring_slot *slot = ring_slot_get(&ring);
	uint8_t *content;
	struct msg_data md;
	uint32_t len = 300000;
	int total;

	(void)state;
	pair(&a, &b, CONFIG_SWITCH_ON);
	assert_non_null(slot);
	content = slot->data + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE;
	for (uint32_t i = 0; i < len; i++)
		content[i] = (uint8_t)(i * 7 + 3);
	total = msg_data_seal(slot->data, 42, 1 << 20, len);
	assert_int_equal(total, WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE + (int)len);
	assert_non_null(conn_queue_slot(&a.conn, slot, (uint32_t)total, true));
	RUN_UNTIL(b.frames == 1);
	assert_int_equal(b.last_type, WIRE_DATA);
	assert_int_equal(msg_data_decode(b.last_payload, b.last_len, &md), 0);
	assert_int_equal(md.file_id, 42);
	assert_true(md.offset == 1 << 20);
	assert_int_equal(md.len, len);
	for (uint32_t i = 0; i < len; i++)
		if (md.data[i] != (uint8_t)(i * 7 + 3))
			fail_msg("byte %u differs", i);
	assert_int_equal(b.buffer_asks, 1);
	assert_int_equal(a.conn.zero_copy, CONFIG_SWITCH_OFF); /* fell back */
	assert_true(a.conn.stats.copy_sends >= 1);
	close_both(&a, &b);
}

/* Items queued before their bytes are ready go out in queue order, not ready order. */
static void test_send_order(void **state)
{
	struct side a, b;
	struct ring_slot *s1 = ring_slot_get(&ring), *s2 = ring_slot_get(&ring);
	struct conn_tx_item *i1, *i2;
	struct msg_data md;
	int t1, t2;

	(void)state;
	pair(&a, &b, CONFIG_SWITCH_OFF);
	i1 = conn_queue_slot(&a.conn, s1, 10, false);
	i2 = conn_queue_slot(&a.conn, s2, 10, false);
	memset(s2->data + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE, 2, 10);
	t2 = msg_data_seal(s2->data, 2, 0, 10);
	conn_item_ready(&a.conn, i2, (uint32_t)t2);
	ring_run(&ring, 50);
	assert_int_equal(b.frames, 0); /* the first item is not ready: nothing may pass it */
	memset(s1->data + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE, 1, 10);
	t1 = msg_data_seal(s1->data, 1, 0, 10);
	conn_item_ready(&a.conn, i1, (uint32_t)t1);
	RUN_UNTIL(b.frames == 2);
	assert_int_equal(msg_data_decode(b.last_payload, b.last_len, &md), 0);
	assert_int_equal(md.file_id, 2);
	close_both(&a, &b);
}

/* A payload whose CRC does not match closes the connection; nothing is delivered. */
static void test_payload_crc_mismatch(void **state)
{
	struct side b;
	uint8_t frame[WIRE_HEADER_SIZE + 8];
	struct msg_ping ping = { .token = 7 };
	int fds[2], len;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	memset(&b, 0, sizeof(b));
	conn_init(&b.conn, &ring, fds[1], &side_ops, &b, CONFIG_SWITCH_OFF);
	len = msg_ping_encode(frame, sizeof(frame), WIRE_PING, &ping);
	frame[WIRE_HEADER_SIZE + 3] ^= 0x10; /* a bit flipped in transit */
	assert_int_equal(write(fds[0], frame, (size_t)len), len);
	RUN_UNTIL(b.closed);
	assert_int_equal(b.frames, 0);
	assert_int_equal(b.conn.close_error, -EBADMSG);
	close(fds[0]);
}

/* A corrupted header (length) is caught by the header CRC before any payload wait. */
static void test_header_crc_mismatch(void **state)
{
	struct side b;
	uint8_t frame[WIRE_HEADER_SIZE + 8];
	struct msg_ping ping = { .token = 7 };
	int fds[2], len;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	memset(&b, 0, sizeof(b));
	conn_init(&b.conn, &ring, fds[1], &side_ops, &b, CONFIG_SWITCH_OFF);
	len = msg_ping_encode(frame, sizeof(frame), WIRE_PING, &ping);
	frame[5] ^= 0x01; /* length field */
	assert_int_equal(write(fds[0], frame, (size_t)len), len);
	RUN_UNTIL(b.closed);
	assert_int_equal(b.frames, 0);
	assert_int_equal(b.conn.close_error, -EBADMSG);
	close(fds[0]);
}

/* With no buffer to receive into, receiving pauses, and resumes on request. */
static void test_backpressure(void **state)
{
	struct side a, b;
	struct ring_slot *slot = ring_slot_get(&ring);
	int total;

	(void)state;
	pair(&a, &b, CONFIG_SWITCH_OFF);
	b.refuse_buffer = true;
	memset(slot->data + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE, 9, 5000);
	total = msg_data_seal(slot->data, 3, 0, 5000);
	conn_queue_slot(&a.conn, slot, (uint32_t)total, true);
	RUN_UNTIL(b.conn.rx_paused);
	assert_int_equal(b.frames, 0);
	b.refuse_buffer = false;
	conn_rx_resume(&b.conn);
	RUN_UNTIL(b.frames == 1);
	assert_int_equal(b.last_len, WIRE_DATA_HEADER_SIZE + 5000);
	close_both(&a, &b);
}

/* The peer going away closes the connection; closed() runs once, every slot returns. */
static void test_peer_close(void **state)
{
	struct side a, b;

	(void)state;
	pair(&a, &b, CONFIG_SWITCH_OFF);
	conn_close(&a.conn, 0);
	RUN_UNTIL(a.closed && b.closed);
	assert_int_equal(b.conn.close_error, -ECONNRESET);
	assert_int_equal(ring.slots_free, ring.nslots);
	assert_int_equal(conn_send_frame(&b.conn, (const uint8_t *)"x", 1), -EPIPE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_frame),
		cmocka_unit_test(test_data_frame_zero_copy_fallback),
		cmocka_unit_test(test_send_order),
		cmocka_unit_test(test_payload_crc_mismatch),
		cmocka_unit_test(test_header_crc_mismatch),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_peer_close),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
