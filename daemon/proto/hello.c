// SPDX-License-Identifier: MIT
/*
 * The handshake's compatibility checks (proto/hello.h), worded from the side that checks:
 * "replica holds WAL of system 1, this primary ships 2" on a primary, "primary ships WAL
 * of system 2, this replica holds 1" on a replica.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/node_name.h"
#include "proto/hello.h"

static const char *role_name(enum wire_role role)
{
	return role == WIRE_ROLE_PRIMARY ? "primary" : "replica";
}

/* What a node of @role does with WAL: a primary ships it, a replica holds it. */
static const char *role_verb(enum wire_role role)
{
	return role == WIRE_ROLE_PRIMARY ? "ships" : "holds";
}

int hello_check_compatible(const struct msg_hello *theirs, enum wire_role ours,
			   const struct wal_identity *known, char *why, size_t len)
{
	enum wire_role want = ours == WIRE_ROLE_PRIMARY ? WIRE_ROLE_REPLICA : WIRE_ROLE_PRIMARY;
	const char *we = role_name(ours), *they = role_name(want);

	if (theirs->version != WIRE_VERSION) {
		snprintf(why, len,
			 "protocol version %u is not supported: this %s speaks version %d",
			 theirs->version, we, WIRE_VERSION);
		return WIRE_ERR_VERSION;
	}
	if (theirs->role != want) {
		snprintf(why, len, "the peer is not a %s: WAL flows from primary to replica only",
			 they);
		return WIRE_ERR_ROLE;
	}
	if (!node_name_valid(theirs->node_name)) {
		snprintf(why, len, "invalid node name: a node name is %s", WALSHIP_NODE_NAME_RULE);
		return WIRE_ERR_NAME;
	}
	if (strcmp(theirs->arch, wire_arch()) != 0) {
		snprintf(why, len, "%s platform %s differs from %s platform %s", they, theirs->arch,
			 we, wire_arch());
		return WIRE_ERR_INCOMPATIBLE;
	}
	if (theirs->system_identifier && known->system_identifier &&
	    theirs->system_identifier != known->system_identifier) {
		snprintf(why, len, "%s %s WAL of system %" PRIu64 ", this %s %s %" PRIu64, they,
			 role_verb(want), theirs->system_identifier, we, role_verb(ours),
			 known->system_identifier);
		return WIRE_ERR_INCOMPATIBLE;
	}
	if (theirs->page_magic && known->page_magic && theirs->page_magic != known->page_magic) {
		snprintf(why, len, "%s %s WAL of PostgreSQL %s, this %s %s PostgreSQL %s", they,
			 role_verb(want), wal_page_magic_version(theirs->page_magic) ?: "?", we,
			 role_verb(ours), wal_page_magic_version(known->page_magic) ?: "?");
		return WIRE_ERR_INCOMPATIBLE;
	}
	if (theirs->seg_size && known->seg_size && theirs->seg_size != known->seg_size) {
		snprintf(why, len, "%s WAL segment size %u differs from %s's %u", they,
			 theirs->seg_size, we, known->seg_size);
		return WIRE_ERR_INCOMPATIBLE;
	}
	if (theirs->block_size && known->block_size && theirs->block_size != known->block_size) {
		snprintf(why, len, "%s WAL block size %u differs from %s's %u", they,
			 theirs->block_size, we, known->block_size);
		return WIRE_ERR_INCOMPATIBLE;
	}
	return 0;
}
