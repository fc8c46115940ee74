// SPDX-License-Identifier: MIT
/*
 * Peer numbers for send tags (see peertag.h).
 */
#include <stdio.h>
#include <string.h>

#include "net/peertag.h"

static char peertag_hosts[PEERTAG_MAX + 1][PEERTAG_ADDR_LEN];
static unsigned int peertag_used;

unsigned int peertag_get(const char *addr)
{
	char host[PEERTAG_ADDR_LEN];
	const char *colon = strrchr(addr, ':');
	size_t len = colon ? (size_t)(colon - addr) : strlen(addr);

	if (len >= sizeof(host))
		len = sizeof(host) - 1;
	memcpy(host, addr, len);
	host[len] = '\0';
	for (unsigned int tag = 1; tag <= peertag_used; tag++) {
		if (strcmp(peertag_hosts[tag], host) == 0)
			return tag;
	}
	if (peertag_used == PEERTAG_MAX)
		return 0;
	peertag_used++;
	snprintf(peertag_hosts[peertag_used], PEERTAG_ADDR_LEN, "%s", host);
	return peertag_used;
}

const char *peertag_host(unsigned int tag)
{
	if (tag == 0 || tag > peertag_used)
		return NULL;
	return peertag_hosts[tag];
}

unsigned int peertag_count(void)
{
	return peertag_used;
}
