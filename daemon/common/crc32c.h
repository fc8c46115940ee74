/* SPDX-License-Identifier: MIT */
/*
 * CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 and PostgreSQL's WAL records).
 * Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
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
 * The same function computed with tables only (slicing by 8), whatever the CPU.  For
 * tests that check the hardware path against it; production code calls crc32c().
 */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif /* WALSHIP_COMMON_CRC32C_H */
