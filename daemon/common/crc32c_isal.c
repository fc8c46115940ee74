// SPDX-License-Identifier: MIT
#include "common/crc32c_isal.h"

#include <isa-l/crc.h>

#include "common/crc32c.h"

/* crc32_iscsi() takes an int length: at most this much per call. */
#define CRC32C_ISAL_STEP (1u << 30)

uint32_t crc32c_isal(uint32_t crc, const void *data, size_t len)
{
	/* crc32_iscsi() works on the raw register: no inversion in or out, so the
	 * inversions of crc32c()'s contract are done here and its calls chain.  Its
	 * prototype takes a pointer to non-const bytes; it only reads them. */
	unsigned char *p = (unsigned char *)(uintptr_t)data;
	uint32_t reg = ~crc;

	while (len) {
		size_t n = len < CRC32C_ISAL_STEP ? len : CRC32C_ISAL_STEP;

		reg = crc32_iscsi(p, (int)n, reg);
		p += n;
		len -= n;
	}
	return ~reg;
}

void crc32c_use_isal(void)
{
	crc32c_set_impl(crc32c_isal);
}
