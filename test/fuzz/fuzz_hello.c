// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the handshake message, HELLO (msg_hello_decode() in daemon/proto/codec.c),
 * as a peer that has just connected sends it, and what the receiver does with its fields
 * before the role code decides (node name check, PostgreSQL version from the page magic,
 * the protocol version answer).
 *
 * The compatibility decision itself (system identifier, page magic, sizes, architecture
 * against this node's) lives in the role code (daemon/role/primary.c) and is not reachable
 * without a connection; see docs/security.md.
 *
 * Properties: -EPROTONOSUPPORT (another version) leaves everything else zero; a HELLO that
 * decodes has a valid node name, a known role, a printable architecture, and encodes back
 * to the same payload.
 */
#include <errno.h>

#include "fuzz.h"
#include "proto/codec.h"
#include "wal/page.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t encoded[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	struct msg_hello hello, zero;
	uint8_t *copy;
	uint32_t len;
	int ret;

	/* The frame bound for HELLO: a longer payload never reaches the decoder. */
	if (size > frame_max_payload(WIRE_HELLO))
		return 0;
	len = (uint32_t)size;
	copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	if (size)
		memcpy(copy, data, size);

	ret = msg_hello_decode(copy, len, &hello);
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO || ret == -EPROTONOSUPPORT);
	FUZZ_ASSERT((ret == -EPROTONOSUPPORT) == (len >= 2 && hello.version != WIRE_VERSION));
	if (ret == -EPROTONOSUPPORT) {
		/* Another protocol version: only the version was read. */
		memset(&zero, 0, sizeof(zero));
		zero.version = hello.version;
		FUZZ_ASSERT(memcmp(&hello, &zero, sizeof(hello)) == 0);
	}
	if (ret == 0) {
		FUZZ_ASSERT(hello.role == WIRE_ROLE_PRIMARY || hello.role == WIRE_ROLE_REPLICA);
		FUZZ_ASSERT(node_name_valid(hello.node_name));
		FUZZ_ASSERT(strlen(hello.arch) >= 1 && strlen(hello.arch) <= WIRE_ARCH_LEN);
		(void)wal_page_magic_version(hello.page_magic);
		(void)strcmp(hello.arch, wire_arch());
		ret = msg_hello_encode(encoded, sizeof(encoded), &hello);
		FUZZ_ASSERT(ret == (int)(WIRE_HEADER_SIZE + len));
		FUZZ_ASSERT(memcmp(encoded + WIRE_HEADER_SIZE, copy, len) == 0);
	}
	free(copy);
	return 0;
}
