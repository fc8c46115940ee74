/* SPDX-License-Identifier: MIT */
/*
 * The identity of the cluster whose WAL a node holds: system identifier, PostgreSQL major
 * version (XLOG_PAGE_MAGIC), segment and block size.  One type for the validator (read
 * from a segment's first page), the replica's store, the primary's spool and the
 * handshake, and one on-disk form for the store and the spool:
 *
 *   SYSID MAGIC SEG_SIZE BLOCK_SIZE\n     e.g. "7713288329218603033 D113 16777216 8192\n"
 *
 * SYSID and the sizes in decimal, MAGIC as 4 hexadecimal digits (as PostgreSQL prints it).
 * Read back too: "SYSID\n" alone (stores made before the rest was recorded: the rest is
 * 0, unknown) and a 5-digit decimal MAGIC (spools made before this form was shared; every
 * XLOG_PAGE_MAGIC is above 0xD000, so 4 characters are always hexadecimal).
 */
#ifndef WALSHIP_WAL_IDENTITY_H
#define WALSHIP_WAL_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wal_identity {
	uint64_t system_identifier; /* 0: not known yet */
	uint16_t page_magic; /* XLOG_PAGE_MAGIC: fixes the PostgreSQL major version; 0 unknown */
	uint32_t seg_size;
	uint32_t block_size;
	uint32_t timeline; /* xlp_tli of page 0 (the validator's; not recorded on disk) */
};

/* Which field of two identities differs (wal_identity_mismatch()). */
enum wal_identity_field {
	WAL_IDENTITY_SAME,
	WAL_IDENTITY_SYSTEM, /* another system identifier: another cluster */
	WAL_IDENTITY_VERSION, /* another page magic: another PostgreSQL major version */
	WAL_IDENTITY_SEG_SIZE, /* another WAL segment size */
	WAL_IDENTITY_BLOCK_SIZE, /* another WAL block size */
};

/*
 * Is WAL whose first page says @seen of the cluster @known (a store's, a spool's)?
 * Compares system identifier, page magic, segment size and block size, in that order,
 * each one @known knows (non-zero: a store's first form recorded the system identifier
 * alone).  Returns the first that differs, or WAL_IDENTITY_SAME.
 */
enum wal_identity_field wal_identity_mismatch(const struct wal_identity *known,
					      const struct wal_identity *seen);

/*
 * Say in @buf (@len bytes) why WAL file @name, whose first page says @seen, is not of the
 * cluster @known that this node has, @has saying how ("replica holds", "primary ships"):
 * `WAL segment "NAME" belongs to system X, this replica holds system Y`, and so on for the
 * version, the segment size and the block size.  Returns the field that differs
 * (wal_identity_mismatch()); on WAL_IDENTITY_SAME @buf is "".
 */
enum wal_identity_field wal_identity_explain(const struct wal_identity *known,
					     const struct wal_identity *seen, const char *name,
					     const char *has, char *buf, size_t len);

/* Whether @seen tells a field @known lacks (0 there, not in @seen): a record to complete. */
bool wal_identity_completes(const struct wal_identity *known, const struct wal_identity *seen);

/* Longest line wal_identity_format() writes, with its NUL. */
#define WAL_IDENTITY_TEXT_MAX 64

/* Write @id's line (with its newline) into @buf; returns its length. */
size_t wal_identity_format(const struct wal_identity *id, char *buf, size_t len);

/* Read a line written by wal_identity_format() (or an older form, above) into @id.
 * Returns 0, or -EINVAL (@id zeroed) when @text is not one, or its SYSID is 0. */
int wal_identity_parse(const char *text, struct wal_identity *id);

#endif /* WALSHIP_WAL_IDENTITY_H */
