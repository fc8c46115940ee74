// SPDX-License-Identifier: MIT
/*
 * The cluster identity's one on-disk form (see identity.h).
 */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal/identity.h"
#include "wal/page.h"

size_t wal_identity_format(const struct wal_identity *id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%" PRIu64 " %04X %u %u\n", id->system_identifier,
			 id->page_magic, id->seg_size, id->block_size);

	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

enum wal_identity_field wal_identity_mismatch(const struct wal_identity *known,
					      const struct wal_identity *seen)
{
	if (known->system_identifier && seen->system_identifier != known->system_identifier)
		return WAL_IDENTITY_SYSTEM;
	if (known->page_magic && seen->page_magic != known->page_magic)
		return WAL_IDENTITY_VERSION;
	if (known->seg_size && seen->seg_size != known->seg_size)
		return WAL_IDENTITY_SEG_SIZE;
	if (known->block_size && seen->block_size != known->block_size)
		return WAL_IDENTITY_BLOCK_SIZE;
	return WAL_IDENTITY_SAME;
}

enum wal_identity_field wal_identity_explain(const struct wal_identity *known,
					     const struct wal_identity *seen, const char *name,
					     const char *has, char *buf, size_t len)
{
	enum wal_identity_field field = wal_identity_mismatch(known, seen);

	buf[0] = '\0';
	switch (field) {
	case WAL_IDENTITY_SYSTEM:
		snprintf(buf, len,
			 "WAL segment \"%s\" belongs to system %" PRIu64
			 ", this %s system %" PRIu64,
			 name, seen->system_identifier, has, known->system_identifier);
		break;
	case WAL_IDENTITY_VERSION:
		snprintf(buf, len,
			 "WAL segment \"%s\" is of PostgreSQL %s, this %s WAL of PostgreSQL %s",
			 name, wal_page_magic_version(seen->page_magic) ?: "?", has,
			 wal_page_magic_version(known->page_magic) ?: "?");
		break;
	case WAL_IDENTITY_SEG_SIZE:
		snprintf(buf, len,
			 "WAL segment \"%s\" has segment size %u, this %s segments of %u bytes",
			 name, seen->seg_size, has, known->seg_size);
		break;
	case WAL_IDENTITY_BLOCK_SIZE:
		snprintf(buf, len,
			 "WAL segment \"%s\" has WAL block size %u, this %s WAL of block size %u",
			 name, seen->block_size, has, known->block_size);
		break;
	case WAL_IDENTITY_SAME:
		break;
	}
	return field;
}

bool wal_identity_completes(const struct wal_identity *known, const struct wal_identity *seen)
{
	return (!known->system_identifier && seen->system_identifier) ||
	       (!known->page_magic && seen->page_magic) || (!known->seg_size && seen->seg_size) ||
	       (!known->block_size && seen->block_size);
}

/* True if @s is @n characters of which @ok holds each. */
static bool identity_all(const char *s, size_t n, int (*ok)(int))
{
	if (strlen(s) != n && n)
		return false;
	for (; *s; s++)
		if (!ok((unsigned char)*s))
			return false;
	return true;
}

/* True if the line ends at @rest: nothing, or one newline. */
static bool identity_line_end(const char *rest)
{
	return !strcmp(rest, "") || !strcmp(rest, "\n");
}

int wal_identity_parse(const char *text, struct wal_identity *id)
{
	char magic[8];
	uint64_t sysid;
	unsigned int seg, block;
	unsigned long value;
	int used = 0;

	memset(id, 0, sizeof(*id));
	if (!isdigit((unsigned char)text[0]))
		return -EINVAL;
	/* "SYSID\n": a store made before the rest was recorded. */
	if (sscanf(text, "%" SCNu64 "%n", &sysid, &used) == 1 && sysid &&
	    identity_line_end(text + used)) {
		id->system_identifier = sysid;
		return 0;
	}
	used = 0;
	if (sscanf(text, "%" SCNu64 " %7s %u %u%n", &sysid, magic, &seg, &block, &used) != 4 ||
	    !used || !sysid || !identity_line_end(text + used))
		return -EINVAL;
	/* MAGIC: 4 hexadecimal digits, or (older spools) a decimal number. */
	if (identity_all(magic, 4, isxdigit))
		value = strtoul(magic, NULL, 16);
	else if (identity_all(magic, 0, isdigit))
		value = strtoul(magic, NULL, 10);
	else
		return -EINVAL;
	if (value > 0xffff)
		return -EINVAL;
	id->system_identifier = sysid;
	id->page_magic = (uint16_t)value;
	id->seg_size = seg;
	id->block_size = block;
	return 0;
}
