/* SPDX-License-Identifier: MIT */
/*
 * crc32c() through ISA-L (Intel's Intelligent Storage Acceleration Library, libisal):
 * its crc32_iscsi() is CRC-32C with folding by carry-less multiplication (PCLMULQDQ,
 * VPCLMULQDQ where the CPU has them), chosen at run time for the CPU.  About 54 GB/s
 * against 27 GB/s for common/crc32c.c's three interleaved crc32 streams, on 1 MiB
 * buffers on the test machine.  walshipd only: the CLI does not link libisal.
 */
#ifndef WALSHIP_COMMON_CRC32C_ISAL_H
#define WALSHIP_COMMON_CRC32C_ISAL_H

#include <stddef.h>
#include <stdint.h>

/* crc32c() with ISA-L: the same contract as common/crc32c.h's. */
uint32_t crc32c_isal(uint32_t crc, const void *data, size_t len);

/* Make crc32c() use crc32c_isal() (crc32c_set_impl()); at start-up, before threads. */
void crc32c_use_isal(void);

#endif /* WALSHIP_COMMON_CRC32C_ISAL_H */
