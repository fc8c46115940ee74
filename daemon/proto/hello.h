/* SPDX-License-Identifier: MIT */
/*
 * The compatibility checks of the handshake (docs/protocol.md, section 1), the same on
 * both sides: the primary checks a replica's HELLO, the replica its primary's.
 */
#ifndef WALSHIP_PROTO_HELLO_H
#define WALSHIP_PROTO_HELLO_H

#include <stddef.h>

#include <walship/wire.h>

#include "proto/codec.h"
#include "wal/page.h"

/*
 * Can a node of role @ours, which knows the cluster as @known (zero fields: not known
 * yet), go on with a peer that sent @theirs?  @theirs is what msg_hello_decode() filled
 * when it returned 0, -EPROTONOSUPPORT or -EINVAL (the caller treats other results as a
 * malformed HELLO first).  Checked in this order: protocol version, role (the other one),
 * node name, platform, then system identifier, page magic, segment size and block size,
 * each only when both sides know it.  Returns 0, or the enum wire_error code to answer
 * with and the reason in @why (one wording on both sides, naming both values).
 */
int hello_check_compatible(const struct msg_hello *theirs, enum wire_role ours,
			   const struct wal_identity *known, char *why, size_t len);

#endif /* WALSHIP_PROTO_HELLO_H */
