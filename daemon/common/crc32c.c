// SPDX-License-Identifier: MIT
/*
 * CRC-32C.  Two implementations behind crc32c():
 *
 *  - crc32c_sw(): slicing by 8 over eight 256-entry tables (reflected polynomial
 *    0x82f63b78), about 1-2 GB/s;
 *  - crc32c_hw() (x86-64 with SSE4.2): the crc32 instruction, 8 bytes at a time, and for
 *    long buffers three independent streams interleaved so the instruction's 3-cycle
 *    latency is hidden, the three partial CRCs joined with "append N zero bytes" tables
 *    (the method of Mark Adler's crc32c.c).  About 15-20 GB/s.
 *
 * Both work on the raw (non-inverted) register internally; crc32c() inverts on the way in
 * and out, so that a call's result chains into the next call.
 */
#include "common/crc32c.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define CRC32C_POLY 0x82f63b78u /* reflected 0x1edc6f41 */

/* Lengths of each of the three interleaved streams (bytes, multiples of 8). */
#define CRC32C_LONG 8192
#define CRC32C_SHORT 256

static uint32_t crc32c_table[8][256];
/* x^(2^k) modulo the polynomial for k < 64 + 3: x^(8n) for any 64-bit byte count n
 * (crc32c_combine()). */
static uint32_t crc32c_x2n_table[64 + 3];
static uint32_t crc32c_long_shift[4][256]; /* append CRC32C_LONG zero bytes */
static uint32_t crc32c_short_shift[4][256]; /* append CRC32C_SHORT zero bytes */
static bool crc32c_have_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static uint32_t (*crc32c_impl)(uint32_t crc, const void *data, size_t len); /* or NULL */

static uint32_t crc32c_multmodp(uint32_t a, uint32_t b);

/* Raw register after @count zero bytes (byte-at-a-time; used only to build tables). */
static uint32_t crc32c_zeros_slow(uint32_t crc, size_t count)
{
	while (count--)
		crc = (crc >> 8) ^ crc32c_table[0][crc & 0xff];
	return crc;
}

/*
 * The map "append @count zero bytes" is linear over GF(2): build it as four byte tables
 * from its value on each of the 32 basis vectors.
 */
static void crc32c_build_shift(uint32_t shift[4][256], size_t count)
{
	uint32_t basis[32];

	for (int bit = 0; bit < 32; bit++)
		basis[bit] = crc32c_zeros_slow(1u << bit, count);
	for (int byte = 0; byte < 4; byte++) {
		for (int value = 0; value < 256; value++) {
			uint32_t sum = 0;

			for (int bit = 0; bit < 8; bit++)
				if (value & (1 << bit))
					sum ^= basis[byte * 8 + bit];
			shift[byte][value] = sum;
		}
	}
}

static uint32_t crc32c_shift(const uint32_t shift[4][256], uint32_t crc)
{
	return shift[0][crc & 0xff] ^ shift[1][(crc >> 8) & 0xff] ^ shift[2][(crc >> 16) & 0xff] ^
	       shift[3][crc >> 24];
}

static void crc32c_init(void)
{
	for (uint32_t value = 0; value < 256; value++) {
		uint32_t crc = value;

		for (int bit = 0; bit < 8; bit++)
			crc = crc & 1 ? (crc >> 1) ^ CRC32C_POLY : crc >> 1;
		crc32c_table[0][value] = crc;
	}
	for (int value = 0; value < 256; value++) {
		uint32_t crc = crc32c_table[0][value];

		for (int slice = 1; slice < 8; slice++) {
			crc = (crc >> 8) ^ crc32c_table[0][crc & 0xff];
			crc32c_table[slice][value] = crc;
		}
	}
	crc32c_build_shift(crc32c_long_shift, CRC32C_LONG);
	crc32c_build_shift(crc32c_short_shift, CRC32C_SHORT);
	crc32c_x2n_table[0] = 1u << 30; /* x^1 */
	for (int k = 1; k < 64 + 3; k++)
		crc32c_x2n_table[k] =
			crc32c_multmodp(crc32c_x2n_table[k - 1], crc32c_x2n_table[k - 1]);
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc32c_have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static inline uint64_t crc32c_load64(const unsigned char *p)
{
	uint64_t word;

	memcpy(&word, p, sizeof(word));
	return word;
}

/* Raw register in, raw register out. */
static uint32_t crc32c_sw_raw(uint32_t crc, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
		len--;
	}
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (len >= 8) {
		uint64_t word = crc32c_load64(p) ^ crc;

		crc = crc32c_table[7][word & 0xff] ^ crc32c_table[6][(word >> 8) & 0xff] ^
		      crc32c_table[5][(word >> 16) & 0xff] ^ crc32c_table[4][(word >> 24) & 0xff] ^
		      crc32c_table[3][(word >> 32) & 0xff] ^ crc32c_table[2][(word >> 40) & 0xff] ^
		      crc32c_table[1][(word >> 48) & 0xff] ^ crc32c_table[0][word >> 56];
		p += 8;
		len -= 8;
	}
#endif
	while (len--)
		crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* Three streams of @stride bytes each from @p, joined; returns the raw register. */
__attribute__((target("sse4.2"))) static inline uint32_t
crc32c_hw_3way(uint32_t crc, const unsigned char *p, size_t stride, const uint32_t shift[4][256])
{
	uint64_t crc0 = crc, crc1 = 0, crc2 = 0;
	const unsigned char *end = p + stride;

	while (p < end) {
		crc0 = _mm_crc32_u64(crc0, crc32c_load64(p));
		crc1 = _mm_crc32_u64(crc1, crc32c_load64(p + stride));
		crc2 = _mm_crc32_u64(crc2, crc32c_load64(p + 2 * stride));
		p += 8;
	}
	crc0 = crc32c_shift(shift, (uint32_t)crc0) ^ crc1;
	return crc32c_shift(shift, (uint32_t)crc0) ^ (uint32_t)crc2;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_raw(uint32_t crc,
								const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		crc = _mm_crc32_u8(crc, *p++);
		len--;
	}
	while (len >= 3 * CRC32C_LONG) {
		crc = crc32c_hw_3way(crc, p, CRC32C_LONG, crc32c_long_shift);
		p += 3 * CRC32C_LONG;
		len -= 3 * CRC32C_LONG;
	}
	while (len >= 3 * CRC32C_SHORT) {
		crc = crc32c_hw_3way(crc, p, CRC32C_SHORT, crc32c_short_shift);
		p += 3 * CRC32C_SHORT;
		len -= 3 * CRC32C_SHORT;
	}
	uint64_t crc64 = crc;

	while (len >= 8) {
		crc64 = _mm_crc32_u64(crc64, crc32c_load64(p));
		p += 8;
		len -= 8;
	}
	crc = (uint32_t)crc64;
	while (len--)
		crc = _mm_crc32_u8(crc, *p++);
	return crc;
}
#endif

uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	return ~crc32c_sw_raw(~crc, data, len);
}

void crc32c_set_impl(uint32_t (*fn)(uint32_t crc, const void *data, size_t len))
{
	crc32c_impl = fn;
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	if (crc32c_impl)
		return crc32c_impl(crc, data, len);
	pthread_once(&crc32c_once, crc32c_init);
#if defined(__x86_64__)
	if (crc32c_have_hw)
		return ~crc32c_hw_raw(~crc, data, len);
#endif
	return ~crc32c_sw_raw(~crc, data, len);
}

/*
 * Combining CRCs (the method of zlib's crc32_combine): in the reflected representation a
 * CRC register is a polynomial over GF(2) with x^0 in bit 31.  Appending n zero bytes
 * multiplies the register by x^(8n) modulo the polynomial; the pre- and post-inversion
 * of crc32c() cancel out, so crc(a||b) = crc(a) * x^(8 |b|) + crc(b).
 */

/* a * b modulo the CRC polynomial (reflected). */
static uint32_t crc32c_multmodp(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;

	for (;;) {
		if (a & m) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = b & 1 ? (b >> 1) ^ CRC32C_POLY : b >> 1;
	}
	return p;
}

/* x^(n * 2^k) modulo the polynomial, for k <= 3: one product per bit set in n, from
 * the table of x^(2^k) (zlib's x2nmodp()). */
static uint32_t crc32c_x2nmodp(uint64_t n, unsigned int k)
{
	uint32_t p = 1u << 31; /* x^0 */

	for (; n; n >>= 1, k++)
		if (n & 1)
			p = crc32c_multmodp(crc32c_x2n_table[k], p);
	return p;
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	/* x^(8 len_b) = x^(len_b * 2^3).  Callers combine twice with one length (the replica,
	 * per DATA frame) or with one length over and over (1 MiB frames): remember the last
	 * operator, per thread. */
	static _Thread_local uint64_t cached_len = UINT64_MAX;
	static _Thread_local uint32_t cached_op;

	if (len_b != cached_len) {
		pthread_once(&crc32c_once, crc32c_init);
		cached_op = crc32c_x2nmodp(len_b, 3);
		cached_len = len_b;
	}
	return crc32c_multmodp(cached_op, crc_a) ^ crc_b;
}
