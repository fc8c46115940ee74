// SPDX-License-Identifier: MIT
/* Unit tests for daemon/common/crc32c.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/compiler.h"
#include "common/crc32c.h"
#include "common/crc32c_isal.h"

#define PATTERN_LEN (1024 * 1024)

static void test_empty(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "", 0), 0);
	assert_int_equal(crc32c_sw(0, "", 0), 0);
	assert_int_equal(crc32c(0x12345678, NULL, 0), 0x12345678);
}

static void test_check_value(void **state)
{
	(void)state;
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(crc32c_sw(0, "123456789", 9), 0xe3069283);
}

/* Vectors from RFC 3720 (iSCSI), appendix B.4. */
static void test_rfc3720_vectors(void **state)
{
	unsigned char buf[48];

	(void)state;
	memset(buf, 0, 32);
	assert_int_equal(crc32c(0, buf, 32), 0x8a9136aa);
	memset(buf, 0xff, 32);
	assert_int_equal(crc32c(0, buf, 32), 0x62a8ab43);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	assert_int_equal(crc32c(0, buf, 32), 0x46dd794e);
	for (int i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	assert_int_equal(crc32c(0, buf, 32), 0x113fdb5c);

	static const unsigned char iscsi_read[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	assert_int_equal(crc32c(0, iscsi_read, sizeof(iscsi_read)), 0xd9963a56);
	assert_int_equal(crc32c_sw(0, iscsi_read, sizeof(iscsi_read)), 0xd9963a56);
}

static unsigned char *make_pattern(void)
{
	unsigned char *buf = malloc(PATTERN_LEN + 64);
	uint32_t x = 2463534242u;

	assert_non_null(buf);
	for (size_t i = 0; i < PATTERN_LEN + 64; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
	return buf;
}

typedef uint32_t crc_fn(uint32_t crc, const void *data, size_t len);

/* @fn equals the table path at odd lengths and alignments, and chains. */
static void check_against_sw(crc_fn *fn)
{
	unsigned char *buf = make_pattern();
	static const size_t lengths[] = {
		1,
		3,
		7,
		8,
		9,
		15,
		16,
		17,
		63,
		255,
		256,
		257,
		767,
		768,
		769,
		1000,
		4095,
		4096,
		8191,
		8192,
		24575,
		24576,
		24577,
		24583,
		65536 + 5,
		100003,
		3 * 8192 * 7 + 3 * 256 + 13,
		PATTERN_LEN - 1,
		PATTERN_LEN,
	};

	for (size_t offset = 0; offset < 9; offset++) {
		for (size_t i = 0; i < ARRAY_SIZE(lengths); i++) {
			size_t len = lengths[i];

			assert_int_equal(fn(0, buf + offset, len), crc32c_sw(0, buf + offset, len));
			assert_int_equal(fn(0xdeadbeef, buf + offset, len),
					 crc32c_sw(0xdeadbeef, buf + offset, len));
		}
	}
	for (size_t len = 0; len < 2048; len += 1 + len / 16)
		for (size_t offset = 0; offset < 8; offset++)
			assert_int_equal(fn(0, buf + offset, len), crc32c_sw(0, buf + offset, len));
	for (size_t split = 0; split <= PATTERN_LEN; split += 1 + split / 3)
		assert_int_equal(fn(fn(0, buf, split), buf + split, PATTERN_LEN - split),
				 crc32c_sw(0, buf, PATTERN_LEN));
	assert_int_equal(fn(0, "123456789", 9), 0xe3069283);
	assert_int_equal(fn(0, "", 0), 0);
	free(buf);
}

/* The dispatched (hardware) path of this file. */
static void test_against_sw(void **state)
{
	(void)state;
	crc32c_set_impl(NULL);
	check_against_sw(crc32c);
}

/* ISA-L's (walshipd's), called directly and through crc32c() once chosen. */
static void test_isal(void **state)
{
	(void)state;
	check_against_sw(crc32c_isal);
	crc32c_use_isal();
	check_against_sw(crc32c);
	crc32c_set_impl(NULL);
}

/* crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n+m), for both implementations. */
static void test_chaining(void **state)
{
	unsigned char *buf = make_pattern();
	uint32_t whole = crc32c(0, buf, PATTERN_LEN);
	static const size_t splits[] = { 0, 1, 7, 8, 4097, 24576, 300001, PATTERN_LEN };

	(void)state;
	assert_int_equal(whole, crc32c_sw(0, buf, PATTERN_LEN));
	for (size_t i = 0; i < ARRAY_SIZE(splits); i++) {
		size_t split = splits[i];
		uint32_t crc = crc32c(0, buf, split);

		assert_int_equal(crc32c(crc, buf + split, PATTERN_LEN - split), whole);
		crc = crc32c_sw(0, buf, split);
		assert_int_equal(crc32c_sw(crc, buf + split, PATTERN_LEN - split), whole);
	}
	free(buf);
}

/* crc32c_combine() joins two CRCs as if computed over the concatenation, and
 * separates a known prefix from a CRC, at every length including 0 and 1 MiB. */
static void test_combine(void **state)
{
	static const size_t lens[] = { 0, 1, 3, 16, 255, 4096, 65537, PATTERN_LEN };
	unsigned char *buf = malloc(2 * PATTERN_LEN);

	(void)state;
	assert_non_null(buf);
	srand(7);
	for (size_t i = 0; i < 2 * PATTERN_LEN; i++)
		buf[i] = (unsigned char)rand();
	for (size_t ia = 0; ia < ARRAY_SIZE(lens); ia++) {
		for (size_t ib = 0; ib < ARRAY_SIZE(lens); ib++) {
			size_t la = lens[ia], lb = lens[ib];
			uint32_t crc_a = crc32c(0, buf, la);
			uint32_t crc_b = crc32c(0, buf + la, lb);
			uint32_t crc_ab = crc32c(0, buf, la + lb);

			assert_int_equal(crc32c_combine(crc_a, crc_b, lb), crc_ab);
			/* The content's CRC from the whole's, knowing the prefix's. */
			assert_int_equal(crc_ab ^ crc32c_combine(crc_a, 0, lb), crc_b);
		}
	}
	/* A prefix of 16 bytes and 1 MiB of content: what the replica does per DATA frame. */
	assert_int_equal(crc32c(0, buf + 16, PATTERN_LEN),
			 crc32c(0, buf, 16 + PATTERN_LEN) ^
				 crc32c_combine(crc32c(0, buf, 16), 0, PATTERN_LEN));
	/* Lengths past any buffer (a table entry each bit): appending m + n zero bytes is
	 * appending m, then n. */
	for (unsigned int bit = 20; bit < 64; bit += 7) {
		uint64_t m = (1ULL << bit) + 12345, n = (1ULL << (bit - 1)) - 777;

		assert_int_equal(crc32c_combine(0x12345678, 0, m + n),
				 crc32c_combine(crc32c_combine(0x12345678, 0, m), 0, n));
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_check_value),
		cmocka_unit_test(test_rfc3720_vectors),
		cmocka_unit_test(test_against_sw),
		cmocka_unit_test(test_chaining),
		cmocka_unit_test(test_combine),
		cmocka_unit_test(test_isal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
