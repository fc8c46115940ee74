// SPDX-License-Identifier: MIT
/* Unit tests for daemon/proto/pgrepl.c: replication CopyData payloads, LSNs, timestamps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/pgrepl.h"

/* A 'w' as captured from PostgreSQL 15: dataStart 0/6040000, walEnd 0/604F478. */
static void test_xlogdata(void **state)
{
	uint8_t msg[PGREPL_XLOGDATA_HDR + 4] = { 'w', 0, 0, 0, 0,    0x06, 0x04, 0x00, 0x00,
						 0,   0, 0, 0, 0x06, 0x04, 0xF4, 0x78 };
	struct pgrepl_xlogdata x;

	(void)state;
	pgrepl_put64(msg + 17, 849500000000000ULL);
	memcpy(msg + PGREPL_XLOGDATA_HDR, "\xd1\x10\x02\x00", 4);
	assert_int_equal(pgrepl_parse_xlogdata(msg, sizeof(msg), &x), 0);
	assert_int_equal(x.data_start, 0x6040000ULL);
	assert_int_equal(x.wal_end, 0x604F478ULL);
	assert_int_equal(x.send_time, 849500000000000LL);
	assert_int_equal(x.len, 4);
	assert_ptr_equal(x.data, msg + PGREPL_XLOGDATA_HDR);

	/* A header alone is a valid, empty message. */
	assert_int_equal(pgrepl_parse_xlogdata(msg, PGREPL_XLOGDATA_HDR, &x), 0);
	assert_int_equal(x.len, 0);
	/* Shorter than the header, or another type. */
	assert_int_equal(pgrepl_parse_xlogdata(msg, PGREPL_XLOGDATA_HDR - 1, &x), -EINVAL);
	assert_int_equal(pgrepl_parse_xlogdata(msg, 0, &x), -EINVAL);
	msg[0] = 'k';
	assert_int_equal(pgrepl_parse_xlogdata(msg, sizeof(msg), &x), -EINVAL);
	/* Data that would run past the end of the LSN space. */
	msg[0] = 'w';
	pgrepl_put64(msg + 1, UINT64_MAX - 2);
	assert_int_equal(pgrepl_parse_xlogdata(msg, sizeof(msg), &x), -EINVAL);
}

static void test_keepalive(void **state)
{
	uint8_t msg[PGREPL_KEEPALIVE_LEN + 1] = { 'k' };
	struct pgrepl_keepalive k;

	(void)state;
	pgrepl_put64(msg + 1, 0x10E0000ULL);
	pgrepl_put64(msg + 9, 12345);
	msg[17] = 1;
	assert_int_equal(pgrepl_parse_keepalive(msg, PGREPL_KEEPALIVE_LEN, &k), 0);
	assert_int_equal(k.wal_end, 0x10E0000ULL);
	assert_int_equal(k.send_time, 12345);
	assert_true(k.reply_requested);
	msg[17] = 0;
	assert_int_equal(pgrepl_parse_keepalive(msg, PGREPL_KEEPALIVE_LEN, &k), 0);
	assert_false(k.reply_requested);
	/* Exactly 18 bytes, as PostgreSQL's walreceiver requires. */
	assert_int_equal(pgrepl_parse_keepalive(msg, PGREPL_KEEPALIVE_LEN + 1, &k), -EINVAL);
	assert_int_equal(pgrepl_parse_keepalive(msg, PGREPL_KEEPALIVE_LEN - 1, &k), -EINVAL);
	msg[17] = 2;
	assert_int_equal(pgrepl_parse_keepalive(msg, PGREPL_KEEPALIVE_LEN, &k), -EINVAL);
	msg[17] = 0;
	msg[0] = 'w';
	assert_int_equal(pgrepl_parse_keepalive(msg, PGREPL_KEEPALIVE_LEN, &k), -EINVAL);
}

/* The bytes PostgreSQL's receivelog.c sendFeedback() would build. */
static void test_status(void **state)
{
	static const uint8_t expected[PGREPL_STATUS_LEN] = {
		'r', 0, 0, 0, 0,    0x0E, 0x02, 0x84, 0x00, /* write 0/E028400 */
		0,   0, 0, 0, 0x0E, 0x00, 0x00, 0x00, /* flush 0/E000000 */
		0,   0, 0, 0, 0,    0,	  0,	0, /* apply 0 */
		0,   0, 0, 0, 0,    0,	  0x01, 0x02, /* sendTime 258 */
		1,
	};
	uint8_t buf[PGREPL_STATUS_LEN];

	(void)state;
	memset(buf, 0xAA, sizeof(buf));
	pgrepl_build_status(buf, 0xE028400ULL, 0xE000000ULL, 0, 258, true);
	assert_memory_equal(buf, expected, sizeof(buf));
}

static void test_lsn(void **state)
{
	char buf[PGREPL_LSN_TEXT];
	uint64_t lsn;

	(void)state;
	assert_int_equal(pgrepl_lsn_parse("0/604F478", &lsn), 0);
	assert_int_equal(lsn, 0x604F478ULL);
	assert_int_equal(pgrepl_lsn_parse("16/B374D848", &lsn), 0);
	assert_int_equal(lsn, 0x16B374D848ULL);
	/* PostgreSQL 16+ pads the low half ("%X/%08X"); lower case parses too. */
	assert_int_equal(pgrepl_lsn_parse("0/0604f478", &lsn), 0);
	assert_int_equal(lsn, 0x604F478ULL);
	assert_int_equal(pgrepl_lsn_parse("FFFFFFFF/FFFFFFFF", &lsn), 0);
	assert_int_equal(lsn, UINT64_MAX);
	assert_string_equal(pgrepl_lsn_format(UINT64_MAX, buf, sizeof(buf)), "FFFFFFFF/FFFFFFFF");
	assert_string_equal(pgrepl_lsn_format(0x604F478ULL, buf, sizeof(buf)), "0/604F478");
	assert_string_equal(pgrepl_lsn_format(0, buf, sizeof(buf)), "0/0");

	static const char *const bad[] = { "",	   "/",		  "0/",		 "/0",
					   "0",	   "0/0/0",	  "G/0",	 "0/1 ",
					   " 0/1", "100000000/0", "0/100000000", "-1/0",
					   "0x1/0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lsn = 42;
		assert_int_equal(pgrepl_lsn_parse(bad[i], &lsn), -EINVAL);
		assert_int_equal(lsn, 42);
	}
}

static void test_time(void **state)
{
	int64_t now = pgrepl_time_now();

	(void)state;
	/* 2000-01-01 00:00:00 UTC is 0; a Unix time of 946684800 s is that instant. */
	assert_int_equal(pgrepl_time_from_unix_us(946684800LL * 1000000LL), 0);
	assert_int_equal(pgrepl_time_to_unix_us(0), 946684800LL * 1000000LL);
	/* Today is well after 2020 (631152000 s after 2000) and before 2100. */
	assert_true(now > 631152000LL * 1000000LL);
	assert_true(now < 3155760000LL * 1000000LL);
}

static void test_timeout_ms(void **state)
{
	int64_t ms = -1;

	(void)state;
	assert_int_equal(pgrepl_parse_timeout_ms("1min", &ms), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(pgrepl_parse_timeout_ms("60s", &ms), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(pgrepl_parse_timeout_ms("500ms", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(pgrepl_parse_timeout_ms("2h", &ms), 0);
	assert_int_equal(ms, 7200000);
	assert_int_equal(pgrepl_parse_timeout_ms("1d", &ms), 0);
	assert_int_equal(ms, 86400000);
	assert_int_equal(pgrepl_parse_timeout_ms("0", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(pgrepl_parse_timeout_ms("1500", &ms), 0);
	assert_int_equal(ms, 1500);
	assert_int_equal(pgrepl_parse_timeout_ms("", &ms), -EINVAL);
	assert_int_equal(pgrepl_parse_timeout_ms("-1", &ms), -EINVAL);
	assert_int_equal(pgrepl_parse_timeout_ms("1 min", &ms), -EINVAL);
	assert_int_equal(pgrepl_parse_timeout_ms("5us", &ms), -EINVAL);
	assert_int_equal(pgrepl_parse_timeout_ms("99999999999999999999", &ms), -EINVAL);
}

static void test_seg_size(void **state)
{
	uint32_t bytes = 0;

	(void)state;
	assert_int_equal(pgrepl_parse_seg_size("16MB", &bytes), 0);
	assert_int_equal(bytes, 16u << 20);
	assert_int_equal(pgrepl_parse_seg_size("1GB", &bytes), 0);
	assert_int_equal(bytes, 1u << 30);
	assert_int_equal(pgrepl_parse_seg_size("1024kB", &bytes), 0);
	assert_int_equal(bytes, 1u << 20);
	assert_int_equal(pgrepl_parse_seg_size("67108864", &bytes), 0);
	assert_int_equal(bytes, 64u << 20);

	static const char *const bad[] = { "",	   "MB",    "16",  "16mb",	 "16 MB",
					   "24MB", "512kB", "2GB", "4294967296", "-16MB" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pgrepl_parse_seg_size(bad[i], &bytes), -EINVAL);
}

/* The server side: 'r' and 'h' parsed, 'w' header and 'k' built (serve/walsender.c). */
static void test_server_side(void **state)
{
	uint8_t r[PGREPL_STATUS_LEN], k[PGREPL_KEEPALIVE_LEN], w[PGREPL_XLOGDATA_HDR + 1];
	uint8_t h[PGREPL_HS_FEEDBACK_LEN] = { 'h', 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0x02, 0x9A };
	struct pgrepl_status st;
	struct pgrepl_hs_feedback hs;
	struct pgrepl_keepalive ka;
	struct pgrepl_xlogdata x;

	(void)state;
	pgrepl_build_status(r, 0x3000000, 0x2FFF000, 0x2000000, 12345, true);
	assert_int_equal(pgrepl_parse_status(r, sizeof(r), &st), 0);
	assert_int_equal(st.write, 0x3000000);
	assert_int_equal(st.flush, 0x2FFF000);
	assert_int_equal(st.apply, 0x2000000);
	assert_int_equal(st.send_time, 12345);
	assert_true(st.reply_requested);
	assert_int_equal(pgrepl_parse_status(r, sizeof(r) - 1, &st), -EINVAL);
	/* As PostgreSQL reads it: any non-zero replyRequested, bytes past the fields ignored. */
	r[33] = 2;
	assert_int_equal(pgrepl_parse_status(r, sizeof(r), &st), 0);
	assert_true(st.reply_requested);
	{
		uint8_t longer[PGREPL_STATUS_LEN + 4] = { 0 };

		memcpy(longer, r, sizeof(r));
		longer[33] = 0;
		assert_int_equal(pgrepl_parse_status(longer, sizeof(longer), &st), 0);
		assert_false(st.reply_requested);
		assert_int_equal(st.flush, 0x2FFF000);
	}
	r[0] = 'h';
	assert_int_equal(pgrepl_parse_status(r, sizeof(r), &st), -EINVAL);

	assert_int_equal(pgrepl_parse_hs_feedback(h, sizeof(h), &hs), 0);
	assert_int_equal(hs.send_time, 7);
	assert_int_equal(hs.xmin, 0x29A);
	assert_int_equal(pgrepl_parse_hs_feedback(h, sizeof(h) + 0 - 1, &hs), -EINVAL);
	h[0] = 'r';
	assert_int_equal(pgrepl_parse_hs_feedback(h, sizeof(h), &hs), -EINVAL);

	/* What the server builds, the client side parses back. */
	pgrepl_build_keepalive(k, 0x4A24750, 99, true);
	assert_int_equal(pgrepl_parse_keepalive(k, sizeof(k), &ka), 0);
	assert_int_equal(ka.wal_end, 0x4A24750);
	assert_int_equal(ka.send_time, 99);
	assert_true(ka.reply_requested);
	pgrepl_build_xlogdata_header(w, 0x4000000, 0x4A24750, 5);
	w[PGREPL_XLOGDATA_HDR] = 0xAB;
	assert_int_equal(pgrepl_parse_xlogdata(w, sizeof(w), &x), 0);
	assert_int_equal(x.data_start, 0x4000000);
	assert_int_equal(x.wal_end, 0x4A24750);
	assert_int_equal(x.send_time, 5);
	assert_int_equal(x.len, 1);
	assert_int_equal(x.data[0], 0xAB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xlogdata),   cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_status),	   cmocka_unit_test(test_lsn),
		cmocka_unit_test(test_time),	   cmocka_unit_test(test_seg_size),
		cmocka_unit_test(test_timeout_ms), cmocka_unit_test(test_server_side),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
