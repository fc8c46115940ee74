// SPDX-License-Identifier: MIT
/* Unit tests for daemon/proto/codec.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/compiler.h"
#include "common/crc32c.h"
#include "proto/codec.h"

#define SEG "000000010000000000000003"

static uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD];

/* Decode the header of the frame in @buf of @total bytes, check its CRC, return payload. */
static const uint8_t *open_frame(const uint8_t *buf, int total, uint8_t type)
{
	struct frame_header hdr;

	assert_true(total >= WIRE_HEADER_SIZE);
	assert_int_equal(frame_header_decode(buf, &hdr), 0);
	assert_int_equal(hdr.type, type);
	assert_int_equal(hdr.flags, 0);
	assert_int_equal(hdr.length, (uint32_t)total - WIRE_HEADER_SIZE);
	assert_true(hdr.length <= frame_max_payload(type));
	assert_int_equal(frame_payload_check(&hdr, buf + WIRE_HEADER_SIZE), 0);
	return buf + WIRE_HEADER_SIZE;
}

typedef int (*decode_fn)(const uint8_t *payload, uint32_t len, void *out);

/*
 * Every strict prefix of a valid payload fails to decode (and never reads past it: the
 * copy is heap-allocated to its exact length so ASan sees any overrun), and one extra
 * trailing byte fails too.
 */
static void check_truncations(const uint8_t *payload, uint32_t len, decode_fn decode)
{
	uint8_t out[4096];

	for (uint32_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		int ret;

		assert_non_null(copy);
		memcpy(copy, payload, cut);
		ret = decode(copy, cut, out);
		if (ret != -EBADMSG && ret != -EPROTO)
			fail_msg("prefix of %u bytes of %u decoded: %d", cut, len, ret);
		free(copy);
	}
	{
		uint8_t *longer = malloc(len + 1);

		assert_non_null(longer);
		memcpy(longer, payload, len);
		longer[len] = 0;
		assert_int_equal(decode(longer, len + 1, out), -EBADMSG);
		free(longer);
	}
}

static int hello_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_hello_decode(p, l, o);
}

static int file_begin_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_file_begin_decode(p, l, o);
}

static int data_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_data_decode(p, l, o);
}

static int file_end_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_file_end_decode(p, l, o);
}

static int ack_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_ack_decode(p, l, o);
}

static int error_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_error_decode(p, l, o);
}

static int ping_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_ping_decode(p, l, o);
}

static int have_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_have_decode(p, l, o);
}

static struct msg_hello sample_hello(void)
{
	struct msg_hello m = {
		.version = WIRE_VERSION,
		.role = WIRE_ROLE_REPLICA,
		.system_identifier = UINT64_C(7713288329218603033),
		.page_magic = 0xD110,
		.seg_size = 16u << 20,
		.block_size = 8192,
	};

	strcpy(m.arch, wire_arch());
	strcpy(m.node_name, "replica-1.dc_2");
	return m;
}

static void test_hello(void **state)
{
	struct msg_hello in = sample_hello(), out;
	const uint8_t *payload;
	int total;

	(void)state;
	total = msg_hello_encode(frame, sizeof(frame), &in);
	assert_int_equal(total, WIRE_HEADER_SIZE + 41 + 14);
	payload = open_frame(frame, total, WIRE_HELLO);
	/* Layout spot checks (docs/protocol.md). */
	assert_int_equal(payload[0], WIRE_VERSION);
	assert_int_equal(payload[2], WIRE_ROLE_REPLICA);
	assert_int_equal(payload[12], 0x10);
	assert_int_equal(payload[13], 0xD1);
	assert_memory_equal(payload + 24, "x86_64-le", 9);
	assert_int_equal(payload[40], 14);

	assert_int_equal(msg_hello_decode(payload, (uint32_t)total - WIRE_HEADER_SIZE, &out), 0);
	assert_int_equal(out.version, in.version);
	assert_int_equal(out.role, in.role);
	assert_true(out.system_identifier == in.system_identifier);
	assert_int_equal(out.page_magic, in.page_magic);
	assert_int_equal(out.seg_size, in.seg_size);
	assert_int_equal(out.block_size, in.block_size);
	assert_string_equal(out.arch, in.arch);
	assert_string_equal(out.node_name, in.node_name);
	check_truncations(payload, (uint32_t)total - WIRE_HEADER_SIZE, hello_dec);

	/* An arch of exactly 16 characters: no NUL on the wire. */
	strcpy(in.arch, "0123456789abcdef");
	total = msg_hello_encode(frame, sizeof(frame), &in);
	assert_true(total > 0);
	assert_int_equal(msg_hello_decode(frame + WIRE_HEADER_SIZE,
					  (uint32_t)total - WIRE_HEADER_SIZE, &out),
			 0);
	assert_string_equal(out.arch, "0123456789abcdef");

	/* Nothing known yet, primary role, longest node name. */
	in = sample_hello();
	in.role = WIRE_ROLE_PRIMARY;
	in.system_identifier = 0;
	in.page_magic = 0;
	in.seg_size = 0;
	in.block_size = 0;
	memset(in.node_name, 'n', WIRE_MAX_NAME);
	in.node_name[WIRE_MAX_NAME] = '\0';
	total = msg_hello_encode(frame, sizeof(frame), &in);
	assert_int_equal(total, WIRE_HEADER_SIZE + 41 + WIRE_MAX_NAME);
	assert_int_equal(msg_hello_decode(frame + WIRE_HEADER_SIZE,
					  (uint32_t)total - WIRE_HEADER_SIZE, &out),
			 0);
	assert_string_equal(out.node_name, in.node_name);
}

static void test_hello_encode_refuses(void **state)
{
	struct msg_hello m;

	(void)state;
	m = sample_hello();
	m.role = 3;
	assert_int_equal(msg_hello_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_hello();
	m.flags = 1;
	assert_int_equal(msg_hello_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_hello();
	m.node_name[0] = '\0';
	assert_int_equal(msg_hello_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_hello();
	strcpy(m.node_name, "bad/name");
	assert_int_equal(msg_hello_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_hello();
	memset(m.node_name, 'a', sizeof(m.node_name)); /* no NUL */
	assert_int_equal(msg_hello_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_hello();
	m.arch[0] = '\0';
	assert_int_equal(msg_hello_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_hello();
	strcpy(m.arch, "x86 64");
	assert_int_equal(msg_hello_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_hello();
	memset(m.arch, 'a', sizeof(m.arch));
	assert_int_equal(msg_hello_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_hello();
	assert_int_equal(msg_hello_encode(frame, WIRE_HEADER_SIZE + 41 + 13, &m), -ENOSPC);
	assert_int_equal(msg_hello_encode(frame, 0, &m), -ENOSPC);
}

/* Encode @m, change payload byte @at to @value, fix the CRCs, decode. */
static int hello_with(size_t at, uint8_t value, struct msg_hello *out)
{
	struct msg_hello m = sample_hello();
	int total = msg_hello_encode(frame, sizeof(frame), &m);

	assert_true(total > 0);
	frame[WIRE_HEADER_SIZE + at] = value;
	return msg_hello_decode(frame + WIRE_HEADER_SIZE, (uint32_t)total - WIRE_HEADER_SIZE, out);
}

static void test_hello_decode_refuses(void **state)
{
	struct msg_hello out;
	int total;

	(void)state;
	/* Another version: -EPROTONOSUPPORT with the version readable. */
	assert_int_equal(hello_with(0, WIRE_VERSION + 1, &out), -EPROTONOSUPPORT);
	assert_int_equal(out.version, WIRE_VERSION + 1);
	assert_int_equal(hello_with(0, 1, &out), -EPROTONOSUPPORT); /* version 1: no HAVE */
	assert_int_equal(out.version, 1);
	assert_int_equal(hello_with(1, 1, &out), -EPROTONOSUPPORT);
	assert_int_equal(out.version, 0x0100 | WIRE_VERSION);
	/* Role out of range, flags, reserved. */
	assert_int_equal(hello_with(2, 0, &out), -EPROTO);
	assert_int_equal(hello_with(2, 3, &out), -EPROTO);
	assert_int_equal(hello_with(3, 1, &out), -EPROTO);
	assert_int_equal(hello_with(14, 1, &out), -EPROTO);
	assert_int_equal(hello_with(15, 0x80, &out), -EPROTO);
	/* Arch: empty, junk after the NUL padding, control characters. */
	assert_int_equal(hello_with(24, 0, &out), -EPROTO);
	assert_int_equal(hello_with(24 + 12, 'x', &out), -EPROTO);
	assert_int_equal(hello_with(24 + 1, '\n', &out), -EPROTO);
	/* Node name: against the rule (ERROR NAME), NUL inside, over-long length, length past
	 * the end. */
	assert_int_equal(hello_with(41 + 3, '/', &out), -EINVAL);
	assert_int_equal(hello_with(41, '.', &out), -EINVAL);
	assert_string_equal(out.node_name, ".eplica-1.dc_2");
	assert_int_equal(hello_with(41 + 3, 0, &out), -EPROTO);
	assert_int_equal(hello_with(40, 64, &out), -EPROTO);
	assert_int_equal(hello_with(40, 255, &out), -EPROTO);
	assert_int_equal(hello_with(40, 15, &out), -EBADMSG);
	assert_int_equal(hello_with(40, 13, &out), -EBADMSG);
	assert_int_equal(hello_with(40, 0, &out), -EBADMSG);

	/* An empty node name with a matching length. */
	{
		struct msg_hello m = sample_hello();

		total = msg_hello_encode(frame, sizeof(frame), &m);
		frame[WIRE_HEADER_SIZE + 40] = 0;
		assert_int_equal(msg_hello_decode(frame + WIRE_HEADER_SIZE, 41, &out), -EINVAL);
		(void)total;
	}
}

static struct msg_file_begin sample_begin(void)
{
	struct msg_file_begin m = {
		.file_id = 0xA1B2C3D4,
		.kind = WIRE_FILE_SEGMENT,
		.size = 16u << 20,
		.start_offset = 0,
	};

	strcpy(m.name, SEG);
	return m;
}

static void test_file_begin(void **state)
{
	static const struct {
		const char *name;
		uint8_t kind;
	} names[] = {
		{ SEG, WIRE_FILE_SEGMENT },
		{ SEG ".partial", WIRE_FILE_PARTIAL },
		{ "00000002.history", WIRE_FILE_HISTORY },
		{ SEG ".00000028.backup", WIRE_FILE_BACKUP },
	};

	(void)state;
	for (size_t idx = 0; idx < ARRAY_SIZE(names); idx++) {
		struct msg_file_begin in = sample_begin(), out;
		const uint8_t *payload;
		int total;

		strcpy(in.name, names[idx].name);
		in.kind = names[idx].kind;
		in.start_offset = idx * 1000;
		total = msg_file_begin_encode(frame, sizeof(frame), &in);
		assert_int_equal(total, WIRE_HEADER_SIZE + 25 + strlen(in.name));
		payload = open_frame(frame, total, WIRE_FILE_BEGIN);
		assert_int_equal(payload[0], 0xD4);
		assert_int_equal(payload[4], in.kind);
		assert_int_equal(
			msg_file_begin_decode(payload, (uint32_t)total - WIRE_HEADER_SIZE, &out),
			0);
		assert_int_equal(out.file_id, in.file_id);
		assert_int_equal(out.kind, in.kind);
		assert_int_equal(out.flags, 0);
		assert_true(out.size == in.size);
		assert_true(out.start_offset == in.start_offset);
		assert_string_equal(out.name, in.name);
		check_truncations(payload, (uint32_t)total - WIRE_HEADER_SIZE, file_begin_dec);
	}
}

/* Flag STREAM: carried for a segment, refused for any other kind. */
static void test_file_begin_stream(void **state)
{
	struct msg_file_begin in = sample_begin(), out;
	const uint8_t *payload;
	int total;

	(void)state;
	in.flags = WIRE_BEGIN_STREAM;
	total = msg_file_begin_encode(frame, sizeof(frame), &in);
	assert_true(total > 0);
	payload = open_frame(frame, total, WIRE_FILE_BEGIN);
	assert_int_equal(payload[5], WIRE_BEGIN_STREAM);
	assert_int_equal(msg_file_begin_decode(payload, (uint32_t)total - WIRE_HEADER_SIZE, &out),
			 0);
	assert_int_equal(out.flags, WIRE_BEGIN_STREAM);
	/* A history file is never streamed. */
	in = sample_begin();
	in.flags = WIRE_BEGIN_STREAM;
	strcpy(in.name, "00000002.history");
	in.kind = WIRE_FILE_HISTORY;
	in.start_offset = 0;
	in.size = 40;
	total = msg_file_begin_encode(frame, sizeof(frame), &in);
	assert_true(total > 0);
	payload = open_frame(frame, total, WIRE_FILE_BEGIN);
	assert_int_equal(msg_file_begin_decode(payload, (uint32_t)total - WIRE_HEADER_SIZE, &out),
			 -EPROTO);
}

static int progress_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_progress_decode(p, l, o);
}

static void test_progress(void **state)
{
	struct msg_progress in = { .file_id = 3, .received = 8192 * 3, .durable = 8192 }, out;
	const uint8_t *payload;
	int total;

	(void)state;
	total = msg_progress_encode(frame, sizeof(frame), &in);
	assert_int_equal(total, WIRE_HEADER_SIZE + 24);
	payload = open_frame(frame, total, WIRE_PROGRESS);
	assert_int_equal(msg_progress_decode(payload, 24, &out), 0);
	assert_int_equal(out.file_id, 3);
	assert_true(out.received == in.received && out.durable == in.durable);
	check_truncations(payload, 24, progress_dec);
	assert_int_equal(frame_max_payload(WIRE_PROGRESS), 24);
	/* Reserved bytes, and durable beyond received. */
	frame[WIRE_HEADER_SIZE + 5] = 1;
	assert_int_equal(msg_progress_decode(payload, 24, &out), -EPROTO);
	in.durable = in.received + 1;
	assert_int_equal(msg_progress_encode(frame, sizeof(frame), &in), -EINVAL);
	in.durable = 0;
	total = msg_progress_encode(frame, sizeof(frame), &in);
	frame[WIRE_HEADER_SIZE + 23] = 0xff; /* durable > received */
	assert_int_equal(msg_progress_decode(frame + WIRE_HEADER_SIZE, 24, &out), -EPROTO);
	assert_int_equal(msg_progress_encode(frame, WIRE_HEADER_SIZE + 23, &in), -ENOSPC);
	assert_string_equal(wire_type_name(WIRE_PROGRESS), "PROGRESS");
}

static int cancel_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_file_cancel_decode(p, l, o);
}

static void test_file_cancel(void **state)
{
	struct msg_file_cancel in = { .file_id = 0xabcdef01 }, out;
	const uint8_t *payload;
	int total;

	(void)state;
	total = msg_file_cancel_encode(frame, sizeof(frame), &in);
	assert_int_equal(total, WIRE_HEADER_SIZE + 8);
	payload = open_frame(frame, total, WIRE_FILE_CANCEL);
	assert_int_equal(msg_file_cancel_decode(payload, 8, &out), 0);
	assert_int_equal(out.file_id, in.file_id);
	check_truncations(payload, 8, cancel_dec);
	assert_int_equal(frame_max_payload(WIRE_FILE_CANCEL), 8);
	frame[WIRE_HEADER_SIZE + 6] = 1; /* reserved */
	assert_int_equal(msg_file_cancel_decode(payload, 8, &out), -EPROTO);
	assert_int_equal(msg_file_cancel_encode(frame, WIRE_HEADER_SIZE + 7, &in), -ENOSPC);
	assert_string_equal(wire_type_name(WIRE_FILE_CANCEL), "FILE_CANCEL");
}

static int applied_dec(const uint8_t *p, uint32_t l, void *o)
{
	return msg_applied_decode(p, l, o);
}

static void test_applied(void **state)
{
	struct msg_applied in = { .timeline = 2, .apply_lsn = 0x1234567890ull }, out;
	const uint8_t *payload;
	int total;

	(void)state;
	total = msg_applied_encode(frame, sizeof(frame), &in);
	assert_int_equal(total, WIRE_HEADER_SIZE + 16);
	payload = open_frame(frame, total, WIRE_APPLIED);
	assert_int_equal(msg_applied_decode(payload, 16, &out), 0);
	assert_int_equal(out.timeline, 2);
	assert_int_equal(out.apply_lsn, in.apply_lsn);
	check_truncations(payload, 16, applied_dec);
	assert_int_equal(frame_max_payload(WIRE_APPLIED), 16);
	frame[WIRE_HEADER_SIZE + 5] = 1; /* reserved */
	assert_int_equal(msg_applied_decode(payload, 16, &out), -EPROTO);
	in.apply_lsn = 0;
	assert_int_equal(msg_applied_encode(frame, sizeof(frame), &in), -EINVAL);
	assert_string_equal(wire_type_name(WIRE_APPLIED), "APPLIED");
	/* news: further on the timeline, or a later timeline however far (a switch that
	 * forked behind what was applied); an earlier timeline's is stale */
	assert_false(msg_applied_newer(1, 0x5000, 1, 0x5000));
	assert_true(msg_applied_newer(1, 0x5000, 1, 0x5001));
	assert_true(msg_applied_newer(1, 0x5000, 2, 0x3000));
	assert_false(msg_applied_newer(2, 0x3000, 1, 0x9000));
	assert_true(msg_applied_newer(0, 0, 1, 1));
}

static int begin_with(size_t at, uint8_t value)
{
	struct msg_file_begin m = sample_begin(), out;
	int total = msg_file_begin_encode(frame, sizeof(frame), &m);

	assert_true(total > 0);
	frame[WIRE_HEADER_SIZE + at] = value;
	return msg_file_begin_decode(frame + WIRE_HEADER_SIZE, (uint32_t)total - WIRE_HEADER_SIZE,
				     &out);
}

static void test_file_begin_refuses(void **state)
{
	struct msg_file_begin m;

	(void)state;
	/* Decoder. */
	assert_int_equal(begin_with(4, 0), -EPROTO); /* kind 0 */
	assert_int_equal(begin_with(4, 5), -EPROTO); /* kind out of range */
	assert_int_equal(begin_with(4, WIRE_FILE_PARTIAL), -EPROTO); /* kind != name */
	assert_int_equal(begin_with(5, 2), -EPROTO); /* unknown flag */
	assert_int_equal(begin_with(6, 1), -EPROTO); /* reserved */
	assert_int_equal(begin_with(7, 1), -EPROTO);
	assert_int_equal(begin_with(23, 1), -EPROTO); /* start_offset > size */
	assert_int_equal(begin_with(25, 'a'), -EPROTO); /* lower-case hex */
	assert_int_equal(begin_with(25 + 5, '/'), -EPROTO);
	assert_int_equal(begin_with(25 + 5, 0), -EPROTO);
	assert_int_equal(begin_with(24, 64), -EPROTO); /* name_len over the bound */
	assert_int_equal(begin_with(24, 25), -EBADMSG);
	assert_int_equal(begin_with(24, 23), -EBADMSG);

	/* Encoder. */
	m = sample_begin();
	strcpy(m.name, "../" SEG);
	assert_int_equal(msg_file_begin_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_begin();
	strcpy(m.name, SEG ".gz");
	assert_int_equal(msg_file_begin_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_begin();
	m.kind = WIRE_FILE_HISTORY;
	assert_int_equal(msg_file_begin_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_begin();
	m.flags = 0x80;
	assert_int_equal(msg_file_begin_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_begin();
	m.start_offset = m.size + 1;
	assert_int_equal(msg_file_begin_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_begin();
	memset(m.name, 'A', sizeof(m.name));
	assert_int_equal(msg_file_begin_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_begin();
	assert_int_equal(msg_file_begin_encode(frame, WIRE_HEADER_SIZE + 25 + 23, &m), -ENOSPC);
	assert_int_equal(msg_file_begin_encode(frame, WIRE_HEADER_SIZE + 25 + 24, &m),
			 WIRE_HEADER_SIZE + 25 + 24);
}

static void test_data(void **state)
{
	struct msg_data out;
	const uint8_t *payload;
	uint8_t *content = frame + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE;
	int total;

	(void)state;
	for (uint32_t idx = 0; idx < 1000; idx++)
		content[idx] = (uint8_t)(idx * 7);
	total = msg_data_seal(frame, 42, UINT64_C(0x123456789), 1000);
	assert_int_equal(total, WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE + 1000);
	payload = open_frame(frame, total, WIRE_DATA);
	assert_int_equal(msg_data_decode(payload, (uint32_t)total - WIRE_HEADER_SIZE, &out), 0);
	assert_int_equal(out.file_id, 42);
	assert_true(out.offset == UINT64_C(0x123456789));
	assert_int_equal(out.len, 1000);
	assert_ptr_equal(out.data, content);
	assert_int_equal(out.data[999], (uint8_t)(999 * 7));

	/* Truncations: below the data header it is malformed, at it the content is empty. */
	for (uint32_t cut = 0; cut <= WIRE_DATA_HEADER_SIZE; cut++) {
		int ret = msg_data_decode(payload, cut, &out);

		assert_int_equal(ret, cut < WIRE_DATA_HEADER_SIZE ? -EBADMSG : -EPROTO);
	}

	/* Largest chunk, and one byte more. */
	total = msg_data_seal(frame, 1, 0, WIRE_CHUNK_SIZE);
	assert_int_equal(total, WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD);
	payload = open_frame(frame, total, WIRE_DATA);
	assert_int_equal(msg_data_decode(payload, WIRE_MAX_PAYLOAD, &out), 0);
	assert_int_equal(out.len, WIRE_CHUNK_SIZE);
	assert_int_equal(msg_data_decode(payload, WIRE_MAX_PAYLOAD + 1, &out), -EPROTO);

	/* Reserved field, offset overflow. */
	total = msg_data_seal(frame, 1, 0, 10);
	frame[WIRE_HEADER_SIZE + 5] = 1;
	assert_int_equal(msg_data_decode(frame + WIRE_HEADER_SIZE, 26, &out), -EPROTO);
	assert_int_equal(msg_data_seal(frame, 1, UINT64_MAX - 5, 10), -EINVAL);
	total = msg_data_seal(frame, 1, UINT64_MAX - 10, 10);
	assert_true(total > 0);
	frame[WIRE_HEADER_SIZE + 8] = 0xff;
	assert_int_equal(msg_data_decode(frame + WIRE_HEADER_SIZE, 26, &out), -EPROTO);

	assert_int_equal(msg_data_seal(frame, 1, 0, 0), -EINVAL);
	assert_int_equal(msg_data_seal(frame, 1, 0, WIRE_CHUNK_SIZE + 1), -EINVAL);
}

static void test_file_end(void **state)
{
	struct msg_file_end in = { .file_id = 7, .size = UINT64_C(1) << 40 }, out;
	const uint8_t *payload;
	int total;

	(void)state;
	total = msg_file_end_encode(frame, sizeof(frame), &in);
	assert_int_equal(total, WIRE_HEADER_SIZE + 16);
	payload = open_frame(frame, total, WIRE_FILE_END);
	assert_int_equal(msg_file_end_decode(payload, 16, &out), 0);
	assert_int_equal(out.file_id, 7);
	assert_true(out.size == in.size);
	check_truncations(payload, 16, file_end_dec);
	frame[WIRE_HEADER_SIZE + 7] = 1;
	assert_int_equal(msg_file_end_decode(payload, 16, &out), -EPROTO);
	assert_int_equal(msg_file_end_encode(frame, WIRE_HEADER_SIZE + 15, &in), -ENOSPC);
}

static struct msg_ack sample_ack(void)
{
	struct msg_ack m = {
		.file_id = 99,
		.status = WIRE_ACK_CONFLICT,
		.durable_offset = 16u << 20,
	};

	strcpy(m.name, SEG);
	strcpy(m.message, "WAL file \"" SEG "\" already exists with different content");
	return m;
}

static void test_ack(void **state)
{
	(void)state;
	for (uint8_t status = WIRE_ACK_STORED; status <= WIRE_ACK_SYSID; status++) {
		struct msg_ack in = sample_ack(), out;
		const uint8_t *payload;
		int total;

		in.status = status;
		if (status <= WIRE_ACK_DUPLICATE)
			in.message[0] = '\0';
		total = msg_ack_encode(frame, sizeof(frame), &in);
		assert_int_equal(total, WIRE_HEADER_SIZE + 19 + 24 + strlen(in.message));
		payload = open_frame(frame, total, WIRE_ACK);
		assert_int_equal(msg_ack_decode(payload, (uint32_t)total - WIRE_HEADER_SIZE, &out),
				 0);
		assert_int_equal(out.file_id, in.file_id);
		assert_int_equal(out.status, status);
		assert_true(out.durable_offset == in.durable_offset);
		assert_string_equal(out.name, in.name);
		assert_string_equal(out.message, in.message);
		check_truncations(payload, (uint32_t)total - WIRE_HEADER_SIZE, ack_dec);
	}

	/* Longest message. */
	{
		struct msg_ack in = sample_ack(), out;
		int total;

		memset(in.message, 'm', WIRE_MAX_MESSAGE);
		in.message[WIRE_MAX_MESSAGE] = '\0';
		total = msg_ack_encode(frame, sizeof(frame), &in);
		assert_true(total > 0);
		assert_true((uint32_t)total - WIRE_HEADER_SIZE <= frame_max_payload(WIRE_ACK));
		assert_int_equal(msg_ack_decode(frame + WIRE_HEADER_SIZE,
						(uint32_t)total - WIRE_HEADER_SIZE, &out),
				 0);
		assert_int_equal(strlen(out.message), WIRE_MAX_MESSAGE);
	}
}

static int ack_with(size_t at, uint8_t value)
{
	struct msg_ack m = sample_ack(), out;
	int total = msg_ack_encode(frame, sizeof(frame), &m);

	assert_true(total > 0);
	frame[WIRE_HEADER_SIZE + at] = value;
	return msg_ack_decode(frame + WIRE_HEADER_SIZE, (uint32_t)total - WIRE_HEADER_SIZE, &out);
}

static void test_ack_refuses(void **state)
{
	struct msg_ack m;

	(void)state;
	assert_int_equal(ack_with(4, 6), -EPROTO); /* status */
	assert_int_equal(ack_with(5, 1), -EPROTO); /* reserved */
	assert_int_equal(ack_with(7, 1), -EPROTO);
	assert_int_equal(ack_with(17, '.'), -EPROTO); /* name */
	assert_int_equal(ack_with(16, 64), -EPROTO); /* name_len over bound */
	assert_int_not_equal(ack_with(16, 25), 0); /* lengths no longer add up */
	assert_int_not_equal(ack_with(16, 0), 0);
	assert_int_equal(ack_with(17 + 24 + 1, 0xff), -EPROTO); /* msg_len over bound */
	assert_int_equal(ack_with(17 + 24, 0xff), -EBADMSG); /* msg_len past the end */
	assert_int_equal(ack_with(17 + 24 + 2 + 3, 0), -EPROTO); /* NUL in text */

	/* An empty name with lengths that add up. */
	{
		uint8_t payload[19] = { 0 };
		struct msg_ack out;

		assert_int_equal(msg_ack_decode(payload, sizeof(payload), &out), -EPROTO);
	}

	m = sample_ack();
	m.status = 9;
	assert_int_equal(msg_ack_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_ack();
	m.name[0] = '\0';
	assert_int_equal(msg_ack_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_ack();
	memset(m.message, 'x', sizeof(m.message));
	assert_int_equal(msg_ack_encode(frame, sizeof(frame), &m), -EINVAL);
	m = sample_ack();
	assert_int_equal(msg_ack_encode(frame, 40, &m), -ENOSPC);
}

static void test_error(void **state)
{
	(void)state;
	for (uint32_t code = WIRE_ERR_PROTOCOL; code <= WIRE_ERR_ACCESS; code++) {
		struct msg_error in = { .code = code }, out;
		const uint8_t *payload;
		int total;

		snprintf(in.message, sizeof(in.message), "error %s", wire_error_name(code));
		total = msg_error_encode(frame, sizeof(frame), &in);
		payload = open_frame(frame, total, WIRE_ERROR);
		assert_int_equal(
			msg_error_decode(payload, (uint32_t)total - WIRE_HEADER_SIZE, &out), 0);
		assert_int_equal(out.code, code);
		assert_string_equal(out.message, in.message);
		check_truncations(payload, (uint32_t)total - WIRE_HEADER_SIZE, error_dec);
	}
	{
		struct msg_error in = { .code = WIRE_ERR_SHUTDOWN }, out;
		int total = msg_error_encode(frame, sizeof(frame), &in);

		assert_int_equal(total, WIRE_HEADER_SIZE + 6);
		assert_int_equal(msg_error_decode(frame + WIRE_HEADER_SIZE, 6, &out), 0);
		assert_string_equal(out.message, "");
		/* Unknown codes. */
		frame[WIRE_HEADER_SIZE] = 0;
		assert_int_equal(msg_error_decode(frame + WIRE_HEADER_SIZE, 6, &out), -EPROTO);
		frame[WIRE_HEADER_SIZE] = WIRE_ERR_ACCESS + 1;
		assert_int_equal(msg_error_decode(frame + WIRE_HEADER_SIZE, 6, &out), -EPROTO);
		/* Text over the bound. */
		frame[WIRE_HEADER_SIZE] = 1;
		frame[WIRE_HEADER_SIZE + 4] = 0x01;
		frame[WIRE_HEADER_SIZE + 5] = 0x04; /* 1025 */
		assert_int_equal(msg_error_decode(frame + WIRE_HEADER_SIZE, 6 + 1025, &out),
				 -EPROTO);
		in.code = 0;
		assert_int_equal(msg_error_encode(frame, sizeof(frame), &in), -EINVAL);
		in.code = 99;
		assert_int_equal(msg_error_encode(frame, sizeof(frame), &in), -EINVAL);
		in.code = 1;
		assert_int_equal(msg_error_encode(frame, WIRE_HEADER_SIZE + 5, &in), -ENOSPC);
	}
}

static void test_ping_pong(void **state)
{
	struct msg_ping in = { .token = UINT64_C(0x0102030405060708) }, out;
	const uint8_t *payload;
	int total;

	(void)state;
	total = msg_ping_encode(frame, sizeof(frame), WIRE_PING, &in);
	assert_int_equal(total, WIRE_HEADER_SIZE + 8);
	payload = open_frame(frame, total, WIRE_PING);
	assert_int_equal(payload[0], 0x08);
	assert_int_equal(msg_ping_decode(payload, 8, &out), 0);
	assert_true(out.token == in.token);
	check_truncations(payload, 8, ping_dec);

	total = msg_ping_encode(frame, sizeof(frame), WIRE_PONG, &in);
	payload = open_frame(frame, total, WIRE_PONG);
	assert_int_equal(msg_ping_decode(payload, 8, &out), 0);
	assert_true(out.token == in.token);

	assert_int_equal(msg_ping_encode(frame, sizeof(frame), WIRE_ACK, &in), -EINVAL);
	assert_int_equal(msg_ping_encode(frame, WIRE_HEADER_SIZE + 7, WIRE_PING, &in), -ENOSPC);
}

static void test_have(void **state)
{
	struct msg_have in = { .count = 3 }, out;
	const uint8_t *payload;
	uint8_t bad[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	int total;

	(void)state;
	in.entries[0] = (struct msg_have_entry){
		.kind = WIRE_HAVE_PARTIAL, .crc = 0xdeadbeef, .size = 16u << 20, .durable = 5u << 20
	};
	strcpy(in.entries[0].name, SEG);
	in.entries[1] = (struct msg_have_entry){
		.kind = WIRE_HAVE_COMPLETE, .crc = 1, .size = 16u << 20, .durable = 16u << 20
	};
	strcpy(in.entries[1].name, "000000010000000000000002");
	in.entries[2] = (struct msg_have_entry){
		.kind = WIRE_HAVE_COMPLETE, .crc = 2, .size = 42, .durable = 42
	};
	strcpy(in.entries[2].name, "00000002.history");

	total = msg_have_encode(frame, sizeof(frame), &in);
	assert_int_equal(total, WIRE_HEADER_SIZE + 4 + 3 * 25 + 24 + 24 + 16);
	payload = open_frame(frame, total, WIRE_HAVE);
	assert_int_equal(msg_have_decode(payload, (uint32_t)total - WIRE_HEADER_SIZE, &out), 0);
	assert_int_equal(out.count, 3);
	for (int idx = 0; idx < 3; idx++) {
		assert_int_equal(out.entries[idx].kind, in.entries[idx].kind);
		assert_int_equal(out.entries[idx].crc, in.entries[idx].crc);
		assert_true(out.entries[idx].size == in.entries[idx].size);
		assert_true(out.entries[idx].durable == in.entries[idx].durable);
		assert_string_equal(out.entries[idx].name, in.entries[idx].name);
	}
	check_truncations(payload, (uint32_t)total - WIRE_HEADER_SIZE, have_dec);

	/* An empty inventory is a valid HAVE (a replica with nothing to offer). */
	out.count = 0;
	total = msg_have_encode(frame, sizeof(frame), &out);
	assert_int_equal(total, WIRE_HEADER_SIZE + 4);
	payload = open_frame(frame, total, WIRE_HAVE);
	assert_int_equal(msg_have_decode(payload, 4, &out), 0);
	assert_int_equal(out.count, 0);

	/* The largest HAVE fits the bound of its type. */
	in.count = WIRE_MAX_HAVE;
	for (int idx = 0; idx < WIRE_MAX_HAVE; idx++) {
		in.entries[idx] = in.entries[0];
		strcpy(in.entries[idx].name, "000000010000000000000003.00000028.backup");
		in.entries[idx].kind = WIRE_HAVE_COMPLETE;
		in.entries[idx].durable = in.entries[idx].size;
	}
	total = msg_have_encode(frame, sizeof(frame), &in);
	assert_true(total > 0);
	assert_true((uint32_t)total - WIRE_HEADER_SIZE <= frame_max_payload(WIRE_HAVE));

	/* Encoder refusals: too many entries, sizes that do not fit the kind, bad names. */
	in.count = WIRE_MAX_HAVE + 1;
	assert_int_equal(msg_have_encode(frame, sizeof(frame), &in), -EINVAL);
	in.count = 1;
	in.entries[0].kind = WIRE_HAVE_PARTIAL;
	in.entries[0].durable = in.entries[0].size;
	assert_int_equal(msg_have_encode(frame, sizeof(frame), &in), -EINVAL);
	in.entries[0].durable = 0;
	assert_int_equal(msg_have_encode(frame, sizeof(frame), &in), -EINVAL);
	in.entries[0].kind = WIRE_HAVE_COMPLETE;
	in.entries[0].durable = 1;
	assert_int_equal(msg_have_encode(frame, sizeof(frame), &in), -EINVAL);
	in.entries[0].kind = 3;
	assert_int_equal(msg_have_encode(frame, sizeof(frame), &in), -EINVAL);
	in.entries[0].kind = WIRE_HAVE_PARTIAL;
	strcpy(in.entries[0].name, "../etc/passwd");
	assert_int_equal(msg_have_encode(frame, sizeof(frame), &in), -EINVAL);
	strcpy(in.entries[0].name, SEG);
	assert_int_equal(msg_have_encode(frame, WIRE_HEADER_SIZE + 10, &in), -ENOSPC);

	/* Decoder refusals, each from a valid one-entry HAVE with one field changed. */
	in.entries[0].durable = 4096;
	total = msg_have_encode(bad, sizeof(bad), &in);
	assert_true(total > 0);
	{
		uint8_t *pl = bad + WIRE_HEADER_SIZE;
		uint32_t len = (uint32_t)total - WIRE_HEADER_SIZE;

		pl[0] = WIRE_MAX_HAVE + 1; /* count over the bound */
		assert_int_equal(msg_have_decode(pl, len, &out), -EPROTO);
		pl[0] = 2; /* count says two, one is there */
		assert_int_equal(msg_have_decode(pl, len, &out), -EBADMSG);
		pl[0] = 1;
		pl[2] = 1; /* reserved */
		assert_int_equal(msg_have_decode(pl, len, &out), -EPROTO);
		pl[2] = 0;
		pl[4] = 7; /* kind */
		assert_int_equal(msg_have_decode(pl, len, &out), -EPROTO);
		pl[4] = WIRE_HAVE_PARTIAL;
		pl[5] = 1; /* entry reserved */
		assert_int_equal(msg_have_decode(pl, len, &out), -EPROTO);
		pl[5] = 0;
		pl[4 + 25 + 3] = '/'; /* a slash in the name */
		assert_int_equal(msg_have_decode(pl, len, &out), -EPROTO);
		pl[4 + 25 + 3] = '0';
		assert_int_equal(msg_have_decode(pl, len, &out), 0);
	}
}

/* Every decoder on filler bytes of every length: no crash, no overrun, no false success. */
static void test_garbage(void **state)
{
	static const decode_fn decoders[] = { hello_dec, file_begin_dec, file_end_dec, ack_dec,
					      error_dec, ping_dec,	 have_dec };
	static const uint8_t fillers[] = { 0x00, 0xff, 0x30, 0x01 };
	uint8_t out[4096];

	(void)state;
	for (size_t fill = 0; fill < sizeof(fillers); fill++) {
		for (uint32_t len = 0; len <= 1200; len++) {
			uint8_t *buf = malloc(len ? len : 1);

			assert_non_null(buf);
			memset(buf, fillers[fill], len);
			for (size_t dec = 0; dec < ARRAY_SIZE(decoders); dec++) {
				int ret = decoders[dec](buf, len, out);

				/* Only PING/PONG (any 8 bytes), FILE_END (16 bytes, zero
				 * reserved) and an empty HAVE (4 zero bytes) can be valid by
				 * accident. */
				if (ret == 0 && !(decoders[dec] == ping_dec && len == 8) &&
				    !(decoders[dec] == file_end_dec && len == 16) &&
				    !(decoders[dec] == have_dec && len == 4 && !fillers[fill]))
					fail_msg("decoder %zu accepted %u bytes of %02x", dec, len,
						 fillers[fill]);
			}
			free(buf);
		}
	}
	/* DATA: below its header malformed, empty content refused. */
	for (uint32_t len = 0; len <= WIRE_DATA_HEADER_SIZE; len++) {
		uint8_t buf[WIRE_DATA_HEADER_SIZE] = { 0 };
		struct msg_data m;

		assert_int_not_equal(data_dec(buf, len, &m), 0);
	}
}

static void test_header(void **state)
{
	struct frame_header hdr;
	uint8_t buf[WIRE_HEADER_SIZE];

	(void)state;
	frame_header_encode(buf, WIRE_DATA, 0, 1234, 0xDEADBEEF);
	assert_int_equal(buf[0], WIRE_DATA);
	assert_int_equal(buf[4], 1234 & 0xff);
	assert_int_equal(buf[5], 1234 >> 8);
	assert_int_equal(buf[8], 0xEF);
	assert_int_equal(frame_header_decode(buf, &hdr), 0);
	assert_int_equal(hdr.type, WIRE_DATA);
	assert_int_equal(hdr.length, 1234);
	assert_int_equal(hdr.payload_crc, 0xDEADBEEF);

	/* Every single-bit flip anywhere in the header is caught by the header CRC. */
	for (int bit = 0; bit < WIRE_HEADER_SIZE * 8; bit++) {
		uint8_t copy[WIRE_HEADER_SIZE];

		memcpy(copy, buf, sizeof(copy));
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(frame_header_decode(copy, &hdr), -EBADMSG);
	}

	/* A damaged header that still looks like one (a flip in a CRC field) is told apart
	 * from bytes that are no frame header at all (ERROR CHECKSUM vs PROTOCOL). */
	for (int bit = 64; bit < WIRE_HEADER_SIZE * 8; bit++) {
		uint8_t copy[WIRE_HEADER_SIZE];

		memcpy(copy, buf, sizeof(copy));
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_true(frame_header_plausible(copy));
	}
	{
		static const uint8_t http[WIRE_HEADER_SIZE] = "GET / HTTP/1.1\r\n";
		uint8_t copy[WIRE_HEADER_SIZE];

		assert_false(frame_header_plausible(http));
		memcpy(copy, buf, sizeof(copy));
		copy[2] = 1; /* reserved */
		assert_false(frame_header_plausible(copy));
		memcpy(copy, buf, sizeof(copy));
		copy[0] = WIRE_PING; /* 1234 bytes: over the bound of PING */
		assert_false(frame_header_plausible(copy));
	}

	/* Valid CRC but forbidden contents. */
	frame_header_encode(buf, 0, 0, 0, 0);
	assert_int_equal(frame_header_decode(buf, &hdr), -EPROTO);
	frame_header_encode(buf, 0x16, 0, 0, 0); /* a TLS record, never a frame type */
	assert_int_equal(frame_header_decode(buf, &hdr), -EPROTO);
	frame_header_encode(buf, WIRE_APPLIED + 1, 0, 0, 0);
	assert_int_equal(frame_header_decode(buf, &hdr), -EPROTO);
	frame_header_encode(buf, WIRE_PING, 1, 8, 0);
	assert_int_equal(frame_header_decode(buf, &hdr), -EPROTO);
	frame_header_encode(buf, WIRE_PING, 0, 9, 0);
	assert_int_equal(frame_header_decode(buf, &hdr), -EPROTO);
	frame_header_encode(buf, WIRE_DATA, 0, WIRE_MAX_PAYLOAD + 1, 0);
	assert_int_equal(frame_header_decode(buf, &hdr), -EPROTO);
	frame_header_encode(buf, WIRE_DATA, 0, UINT32_MAX, 0);
	assert_int_equal(frame_header_decode(buf, &hdr), -EPROTO);
	frame_header_encode(buf, WIRE_DATA, 0, WIRE_MAX_PAYLOAD, 0);
	assert_int_equal(frame_header_decode(buf, &hdr), 0);
	/* Reserved bytes, with the header CRC recomputed. */
	frame_header_encode(buf, WIRE_PING, 0, 8, 0);
	buf[2] = 1;
	{
		uint32_t crc = crc32c(0, buf, 12);

		for (int idx = 0; idx < 4; idx++)
			buf[12 + idx] = (uint8_t)(crc >> (8 * idx));
	}
	assert_int_equal(frame_header_decode(buf, &hdr), -EPROTO);

	/* Bounds per type. */
	assert_int_equal(frame_max_payload(WIRE_DATA), WIRE_MAX_PAYLOAD);
	assert_int_equal(frame_max_payload(WIRE_PING), 8);
	assert_int_equal(frame_max_payload(WIRE_FILE_END), 16);
	assert_int_equal(frame_max_payload(WIRE_ACK), 19 + 63 + 1024);
	assert_int_equal(frame_max_payload(WIRE_ERROR), 6 + 1024);
	assert_int_equal(frame_max_payload(WIRE_FILE_BEGIN), 25 + 63);
	assert_int_equal(frame_max_payload(WIRE_HELLO), WIRE_MAX_CONTROL_PAYLOAD);
	assert_int_equal(frame_max_payload(0), 0);
	assert_int_equal(frame_max_payload(0x16), 0);
	for (unsigned type = 1; type <= WIRE_PONG; type++)
		assert_true(frame_max_payload((uint8_t)type) <= WIRE_MAX_PAYLOAD);
}

static void test_payload_crc(void **state)
{
	struct msg_ack m = sample_ack();
	struct frame_header hdr;
	int total;

	(void)state;
	total = msg_ack_encode(frame, sizeof(frame), &m);
	assert_int_equal(frame_header_decode(frame, &hdr), 0);
	assert_int_equal(frame_payload_check(&hdr, frame + WIRE_HEADER_SIZE), 0);
	for (int at = WIRE_HEADER_SIZE; at < total; at++) {
		frame[at] ^= 0x20;
		assert_int_equal(frame_payload_check(&hdr, frame + WIRE_HEADER_SIZE), -EBADMSG);
		frame[at] ^= 0x20;
	}
	hdr.payload_crc ^= 1;
	assert_int_equal(frame_payload_check(&hdr, frame + WIRE_HEADER_SIZE), -EBADMSG);
	/* The empty payload has CRC 0. */
	hdr.length = 0;
	hdr.payload_crc = 0;
	assert_int_equal(frame_payload_check(&hdr, frame), 0);
}

static void test_names(void **state)
{
	char name[80];

	(void)state;
	assert_true(node_name_valid("a"));
	assert_true(node_name_valid("Replica_1.dc-2"));
	memset(name, 'x', 63);
	name[63] = '\0';
	assert_true(node_name_valid(name));
	name[63] = 'x';
	name[64] = '\0';
	assert_false(node_name_valid(name));
	assert_false(node_name_valid(""));
	assert_false(node_name_valid(NULL));
	assert_false(node_name_valid("a b"));
	assert_false(node_name_valid("a/b"));
	assert_false(node_name_valid("r\xc3\xa9plica"));
	assert_false(node_name_valid("tab\t"));

	assert_string_equal(wire_type_name(WIRE_HELLO), "HELLO");
	assert_string_equal(wire_type_name(WIRE_FILE_BEGIN), "FILE_BEGIN");
	assert_string_equal(wire_type_name(WIRE_DATA), "DATA");
	assert_string_equal(wire_type_name(WIRE_FILE_END), "FILE_END");
	assert_string_equal(wire_type_name(WIRE_ACK), "ACK");
	assert_string_equal(wire_type_name(WIRE_ERROR), "ERROR");
	assert_string_equal(wire_type_name(WIRE_PING), "PING");
	assert_string_equal(wire_type_name(WIRE_PONG), "PONG");
	assert_string_equal(wire_type_name(0x16), "unknown");
	assert_string_equal(wire_ack_status_name(WIRE_ACK_STORED), "stored");
	assert_string_equal(wire_ack_status_name(WIRE_ACK_SYSID), "sysid");
	assert_string_equal(wire_ack_status_name(200), "unknown");
	assert_string_equal(wire_error_name(WIRE_ERR_CHECKSUM), "checksum");
	assert_string_equal(wire_error_name(0), "unknown");
#if defined(__x86_64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	assert_string_equal(wire_arch(), "x86_64-le");
#endif
	assert_true(strlen(wire_arch()) <= WIRE_ARCH_LEN);
}

/* A DATA frame built in two pieces (headers here, content elsewhere) is byte for byte the
 * frame msg_data_seal() builds in one buffer. */
static void test_data_split(void **state)
{
	static uint8_t sealed[WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD];
	uint8_t hdr[WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE];
	uint32_t lens[] = { 1, 8191, WIRE_CHUNK_SIZE };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		uint32_t len = lens[i], crc;
		uint8_t *content = sealed + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE;
		int total;

		for (uint32_t b = 0; b < len; b++)
			content[b] = (uint8_t)(b * 13 + i);
		total = msg_data_seal(sealed, 77, 3u << 20, len);
		assert_int_equal(total, WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE + (int)len);
		crc = msg_data_split_begin(hdr, 77, 3u << 20);
		crc = crc32c(crc, content, len);
		assert_int_equal(msg_data_split_end(hdr, 3u << 20, len, crc), (int)sizeof(hdr));
		assert_memory_equal(hdr, sealed, sizeof(hdr));
	}
	assert_int_equal(msg_data_split_end(hdr, 0, 0, 0), -EINVAL);
	assert_int_equal(msg_data_split_end(hdr, 0, WIRE_CHUNK_SIZE + 1, 0), -EINVAL);
	assert_int_equal(msg_data_split_end(hdr, UINT64_MAX - 2, 3, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_payload_crc),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_hello_encode_refuses),
		cmocka_unit_test(test_hello_decode_refuses),
		cmocka_unit_test(test_file_begin),
		cmocka_unit_test(test_file_begin_refuses),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_file_end),
		cmocka_unit_test(test_file_begin_stream),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_file_cancel),
		cmocka_unit_test(test_applied),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_ack_refuses),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_have),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_data_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
