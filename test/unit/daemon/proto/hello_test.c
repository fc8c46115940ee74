// SPDX-License-Identifier: MIT
/* Unit tests for daemon/proto/hello.c: the handshake's compatibility checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/hello.h"

/* PostgreSQL 15 and 16 page magics (wal/page.c). */
#define MAGIC_15 0xD110
#define MAGIC_16 0xD113

static const struct wal_identity known = { .system_identifier = 7713288329218603033ULL,
					   .page_magic = MAGIC_15,
					   .seg_size = 16 << 20,
					   .block_size = 8192 };

/* A HELLO of role @role that matches @known in every respect. */
static struct msg_hello hello(enum wire_role role)
{
	struct msg_hello h = { .version = WIRE_VERSION,
			       .role = (uint8_t)role,
			       .system_identifier = known.system_identifier,
			       .page_magic = known.page_magic,
			       .seg_size = known.seg_size,
			       .block_size = known.block_size };

	snprintf(h.arch, sizeof(h.arch), "%s", wire_arch());
	snprintf(h.node_name, sizeof(h.node_name), "%s", "r1");
	return h;
}

static void expect(const struct msg_hello *h, enum wire_role ours, const struct wal_identity *id,
		   int code, const char *why)
{
	char got[512] = "";

	assert_int_equal(hello_check_compatible(h, ours, id, got, sizeof(got)), code);
	if (why)
		assert_string_equal(got, why);
}

static void test_compatible(void **state)
{
	struct msg_hello h = hello(WIRE_ROLE_REPLICA);
	struct wal_identity none = { 0 };

	(void)state;
	expect(&h, WIRE_ROLE_PRIMARY, &known, 0, NULL);
	/* What either side does not know yet is not compared. */
	expect(&h, WIRE_ROLE_PRIMARY, &none, 0, NULL);
	h.system_identifier = 0;
	h.page_magic = 0;
	h.seg_size = 0;
	h.block_size = 0;
	expect(&h, WIRE_ROLE_PRIMARY, &known, 0, NULL);
	h = hello(WIRE_ROLE_PRIMARY);
	expect(&h, WIRE_ROLE_REPLICA, &known, 0, NULL);
}

static void test_version(void **state)
{
	/* msg_hello_decode() leaves the rest zero for another version: version comes first. */
	struct msg_hello h = { .version = 1 };
	char want[128];

	(void)state;
	snprintf(want, sizeof(want),
		 "protocol version 1 is not supported: this primary speaks version %d",
		 WIRE_VERSION);
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_VERSION, want);
}

static void test_role(void **state)
{
	struct msg_hello h = hello(WIRE_ROLE_PRIMARY);

	(void)state;
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_ROLE,
	       "the peer is not a replica: WAL flows from primary to replica only");
	h = hello(WIRE_ROLE_REPLICA);
	expect(&h, WIRE_ROLE_REPLICA, &known, WIRE_ERR_ROLE,
	       "the peer is not a primary: WAL flows from primary to replica only");
	h.role = 0;
	expect(&h, WIRE_ROLE_REPLICA, &known, WIRE_ERR_ROLE, NULL);
}

static void test_name(void **state)
{
	static const char *const bad[] = { "", ".", "..", ".r1", "r 1", "r1/x" };
	struct msg_hello h = hello(WIRE_ROLE_REPLICA);

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(h.node_name, sizeof(h.node_name), "%s", bad[i]);
		expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_NAME, NULL);
	}
	/* The role is checked before the name. */
	h.role = WIRE_ROLE_PRIMARY;
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_ROLE, NULL);
}

static void test_arch(void **state)
{
	struct msg_hello h = hello(WIRE_ROLE_REPLICA);
	struct wal_identity none = { 0 };
	char want[128];

	(void)state;
	snprintf(h.arch, sizeof(h.arch), "%s", "sparc-be");
	snprintf(want, sizeof(want), "replica platform sparc-be differs from primary platform %s",
		 wire_arch());
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_INCOMPATIBLE, want);
	/* Checked even when nothing of the cluster is known. */
	expect(&h, WIRE_ROLE_PRIMARY, &none, WIRE_ERR_INCOMPATIBLE, want);
}

static void test_identity(void **state)
{
	struct msg_hello h = hello(WIRE_ROLE_REPLICA);

	(void)state;
	h.system_identifier = 7713288329218603034ULL;
	/* The wording of docs/protocol.md, and of t_70_sysid. */
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_INCOMPATIBLE,
	       "replica holds WAL of system 7713288329218603034, "
	       "this primary ships 7713288329218603033");
	h = hello(WIRE_ROLE_PRIMARY);
	h.system_identifier = 7713288329218603034ULL;
	expect(&h, WIRE_ROLE_REPLICA, &known, WIRE_ERR_INCOMPATIBLE,
	       "primary ships WAL of system 7713288329218603034, "
	       "this replica holds 7713288329218603033");

	h = hello(WIRE_ROLE_REPLICA);
	h.page_magic = MAGIC_16;
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_INCOMPATIBLE,
	       "replica holds WAL of PostgreSQL 16, this primary ships PostgreSQL 15");
	h.page_magic = 0x1234;
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_INCOMPATIBLE,
	       "replica holds WAL of PostgreSQL ?, this primary ships PostgreSQL 15");

	h = hello(WIRE_ROLE_PRIMARY);
	h.seg_size = 64 << 20;
	expect(&h, WIRE_ROLE_REPLICA, &known, WIRE_ERR_INCOMPATIBLE,
	       "primary WAL segment size 67108864 differs from replica's 16777216");
	h = hello(WIRE_ROLE_REPLICA);
	h.block_size = 16384;
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_INCOMPATIBLE,
	       "replica WAL block size 16384 differs from primary's 8192");
	/* The system identifier is named first when several differ. */
	h.system_identifier = 1;
	expect(&h, WIRE_ROLE_PRIMARY, &known, WIRE_ERR_INCOMPATIBLE,
	       "replica holds WAL of system 1, this primary ships 7713288329218603033");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compatible), cmocka_unit_test(test_version),
		cmocka_unit_test(test_role),	   cmocka_unit_test(test_name),
		cmocka_unit_test(test_arch),	   cmocka_unit_test(test_identity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
