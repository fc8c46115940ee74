// SPDX-License-Identifier: MIT
/*
 * Effective capabilities (see caps.h), read from /proc/self/status's CapEff line rather
 * than through libcap: one hexadecimal field is all that is needed, and the daemon does
 * not link libcap otherwise.
 */
#include "common/caps.h"

#include <stdio.h>

bool caps_effective(unsigned int cap)
{
	unsigned long long eff = 0;
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return true; /* cannot tell: let the kernel say */
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			found = true;
			break;
		}
	fclose(f);
	return !found || (cap < 64 && ((eff >> cap) & 1));
}
