// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the frame decoder (daemon/proto/codec.c): frame_header_decode(),
 * frame_payload_check() and every msg_*_decode().
 *
 * The first input byte picks how the rest is read:
 *   0  a byte stream as it comes off a socket: headers and payloads one after the other,
 *      with the CRCs the input carries (so the header CRC check itself is fuzzed);
 *   1  one frame whose header fields (type, flags, reserved, length) come from the input
 *      but whose CRCs are computed here, so the fuzzer reaches everything after the CRC
 *      checks without having to forge CRC-32C;
 *   2+ a payload given straight to the decoder of type (byte 1).
 *
 * Properties: decoders return 0, -EBADMSG or -EPROTO only (HELLO also -EPROTONOSUPPORT); a decoded DATA message points
 * inside its payload; a message that decodes encodes back to exactly the same payload
 * (the decoder accepts nothing the encoder would not write).
 */
#include <errno.h>

#include "common/crc32c.h"
#include "fuzz.h"
#include "proto/codec.h"

/* Room for the largest control frame the encoders write. */
static uint8_t encoded[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];

/* Check the encoded frame in @encoded (@ret from an encoder) equals the payload decoded. */
static void same_payload(int ret, const uint8_t *payload, uint32_t len)
{
	struct frame_header hdr;

	FUZZ_ASSERT(ret == (int)(WIRE_HEADER_SIZE + len));
	FUZZ_ASSERT(frame_header_decode(encoded, &hdr) == 0);
	FUZZ_ASSERT(hdr.length == len);
	FUZZ_ASSERT(frame_payload_check(&hdr, encoded + WIRE_HEADER_SIZE) == 0);
	FUZZ_ASSERT(memcmp(encoded + WIRE_HEADER_SIZE, payload, len) == 0);
}

/* Decode @payload as a message of @type; on success, re-encode it and compare. */
static void decode_payload(uint8_t type, const uint8_t *payload, uint32_t len)
{
	union {
		struct msg_hello hello;
		struct msg_file_begin begin;
		struct msg_data data;
		struct msg_file_end end;
		struct msg_ack ack;
		struct msg_error error;
		struct msg_ping ping;
		struct msg_have have;
		struct msg_progress progress;
		struct msg_file_cancel cancel;
		struct msg_applied applied;
	} m;
	int ret = -EPROTO;

	switch (type) {
	case WIRE_HELLO:
		ret = msg_hello_decode(payload, len, &m.hello);
		if (ret == 0)
			same_payload(msg_hello_encode(encoded, sizeof(encoded), &m.hello), payload,
				     len);
		break;
	case WIRE_FILE_BEGIN:
		ret = msg_file_begin_decode(payload, len, &m.begin);
		if (ret == 0)
			same_payload(msg_file_begin_encode(encoded, sizeof(encoded), &m.begin),
				     payload, len);
		break;
	case WIRE_DATA:
		ret = msg_data_decode(payload, len, &m.data);
		if (ret == 0) {
			FUZZ_ASSERT(m.data.data >= payload && m.data.len <= len &&
				    m.data.data + m.data.len == payload + len);
			FUZZ_ASSERT(m.data.len >= 1 && m.data.len <= WIRE_CHUNK_SIZE);
		}
		break;
	case WIRE_FILE_END:
		ret = msg_file_end_decode(payload, len, &m.end);
		if (ret == 0)
			same_payload(msg_file_end_encode(encoded, sizeof(encoded), &m.end), payload,
				     len);
		break;
	case WIRE_ACK:
		ret = msg_ack_decode(payload, len, &m.ack);
		if (ret == 0) {
			(void)wire_ack_status_name(m.ack.status);
			same_payload(msg_ack_encode(encoded, sizeof(encoded), &m.ack), payload,
				     len);
		}
		break;
	case WIRE_ERROR:
		ret = msg_error_decode(payload, len, &m.error);
		if (ret == 0) {
			(void)wire_error_name(m.error.code);
			same_payload(msg_error_encode(encoded, sizeof(encoded), &m.error), payload,
				     len);
		}
		break;
	case WIRE_PING:
	case WIRE_PONG:
		ret = msg_ping_decode(payload, len, &m.ping);
		if (ret == 0)
			same_payload(msg_ping_encode(encoded, sizeof(encoded), type, &m.ping),
				     payload, len);
		break;
	case WIRE_HAVE:
		ret = msg_have_decode(payload, len, &m.have);
		if (ret == 0) {
			FUZZ_ASSERT(m.have.count <= WIRE_MAX_HAVE);
			for (uint32_t idx = 0; idx < m.have.count; idx++)
				FUZZ_ASSERT(m.have.entries[idx].durable > 0 &&
					    m.have.entries[idx].durable <=
						    m.have.entries[idx].size);
			same_payload(msg_have_encode(encoded, sizeof(encoded), &m.have), payload,
				     len);
		}
		break;
	case WIRE_APPLIED:
		ret = msg_applied_decode(payload, len, &m.applied);
		if (ret == 0)
			same_payload(msg_applied_encode(encoded, sizeof(encoded), &m.applied),
				     payload, len);
		break;
	case WIRE_FILE_CANCEL:
		ret = msg_file_cancel_decode(payload, len, &m.cancel);
		if (ret == 0)
			same_payload(msg_file_cancel_encode(encoded, sizeof(encoded), &m.cancel),
				     payload, len);
		break;
	case WIRE_PROGRESS:
		ret = msg_progress_decode(payload, len, &m.progress);
		if (ret == 0) {
			FUZZ_ASSERT(m.progress.durable <= m.progress.received);
			same_payload(msg_progress_encode(encoded, sizeof(encoded), &m.progress),
				     payload, len);
		}
		break;
	default:
		return;
	}
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO ||
		    /* HELLO: another version, or all well but the node name (codec.h) */
		    (type == WIRE_HELLO && (ret == -EPROTONOSUPPORT || ret == -EINVAL)));
}

/* A stream of frames, as the receive path sees it; stops at the first bad header. */
static void decode_stream(const uint8_t *at, size_t left)
{
	struct frame_header hdr;

	while (left >= WIRE_HEADER_SIZE) {
		int ret = frame_header_decode(at, &hdr);

		FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO);
		if (ret != 0)
			return;
		FUZZ_ASSERT(hdr.length <= frame_max_payload(hdr.type));
		(void)wire_type_name(hdr.type);
		at += WIRE_HEADER_SIZE;
		left -= WIRE_HEADER_SIZE;
		if (hdr.length > left)
			return; /* the rest has not arrived */
		if (frame_payload_check(&hdr, at) == 0)
			decode_payload(hdr.type, at, hdr.length);
		at += hdr.length;
		left -= hdr.length;
	}
}

/* One frame whose CRCs are made right here; header fields from the input. */
static void decode_sealed(const uint8_t *data, size_t size)
{
	static uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct frame_header hdr;
	size_t len;

	if (size < 4)
		return;
	len = size - 4;
	if (len > WIRE_MAX_CONTROL_PAYLOAD)
		len = WIRE_MAX_CONTROL_PAYLOAD;
	memcpy(frame + WIRE_HEADER_SIZE, data + 4, len);
	frame_header_encode(frame, data[0], data[1], (uint32_t)len,
			    crc32c(0, frame + WIRE_HEADER_SIZE, len));
	/* The reserved field is outside what frame_header_encode() writes: set it, re-CRC. */
	frame[2] = data[2];
	frame[3] = data[3];
	for (int idx = 0; idx < 4; idx++)
		frame[12 + idx] = (uint8_t)(crc32c(0, frame, 12) >> (8 * idx));
	if (frame_header_decode(frame, &hdr) != 0)
		return;
	FUZZ_ASSERT(hdr.length == len && data[1] == 0 && data[2] == 0 && data[3] == 0);
	FUZZ_ASSERT(frame_payload_check(&hdr, frame + WIRE_HEADER_SIZE) == 0);
	decode_payload(hdr.type, frame + WIRE_HEADER_SIZE, hdr.length);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 1)
		return 0;
	/* A heap copy of exactly the bytes given, so ASan catches any read past them. */
	copy = malloc(size);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	switch (copy[0]) {
	case 0:
		decode_stream(copy + 1, size - 1);
		break;
	case 1:
		decode_sealed(copy + 1, size - 1);
		break;
	default:
		if (size >= 2)
			decode_payload(copy[1], copy + 2, (uint32_t)(size - 2));
		break;
	}
	free(copy);
	return 0;
}
