/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and PostgreSQL's WAL records).
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise; walshipd
 * switches to ISA-L's (crc32c_use_isal(), common/crc32c_isal.h), twice as fast.  This
 * code stays for the walship CLI, which links libc alone (PostgreSQL starts it per
 * segment, and each library linked is loaded at each start).
 */
#ifndef WALSHIP_COMMON_CRC32C_H
#define WALSHIP_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC over @len bytes at @data.  Start with crc = 0; the result of one call
 * is the @crc of the next, so crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n+m).
 * crc32c(0, "123456789", 9) == 0xe3069283.  Thread-safe; any alignment.
 */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/*
 * From now on crc32c() is computed by @fn, which must compute the same function (the
 * unit tests check that).  Set once, before any other thread runs; NULL returns to this
 * file's code.
 */
void crc32c_set_impl(uint32_t (*fn)(uint32_t crc, const void *data, size_t len));

/*
 * The same function computed with tables only (slicing by 8), whatever the CPU.  For
 * tests that check the hardware path against it; production code calls crc32c().
 */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

/*
 * The CRC of a||b from crc32c(0, a, ...) = @crc_a and crc32c(0, b, @len_b) = @crc_b,
 * without the bytes: crc32c_combine(crc_a, crc_b, len_b) == crc32c(crc_a, b, len_b).
 * O(log len_b).  Because the map is linear, the CRC of b alone also follows from the CRC
 * of a||b: crc_b == crc_ab ^ crc32c_combine(crc_a, 0, len_b); the replica derives the CRC
 * of a DATA frame's content from the frame's payload CRC that way.
 */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

#endif /* WALSHIP_COMMON_CRC32C_H */
