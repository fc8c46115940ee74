/* SPDX-License-Identifier: MIT */
/*
 * The generic netlink ABI between walshipd (the publisher) and walship.ko (the module
 * that shows the state under /sys/kernel/walship/).  Shared by both sides: fixed-width
 * types and constants only, no kernel or libc includes.  docs/sysfs.md describes it.
 *
 * Family "walship", version WALSHIP_GENL_VERSION.  Commands:
 *
 *   WALSHIP_CMD_SET_NODE  (CAP_NET_ADMIN)  role, node name, system identifier, timeline.
 *                         The sending socket becomes the publisher: when it closes, the
 *                         module shows daemon "none" and every peer's state "unknown".
 *   WALSHIP_CMD_SET_PEER  (CAP_NET_ADMIN)  create or update peers/<WALSHIP_A_PEER_NAME>/
 *                         with the peer attributes present in the message.
 *   WALSHIP_CMD_DEL_PEER  (CAP_NET_ADMIN)  remove peers/<WALSHIP_A_PEER_NAME>/.
 *   WALSHIP_CMD_GET       dump: one message with the node attributes, then one per peer.
 *   WALSHIP_CMD_EVENT     multicast on group "events" after every change: the node's or
 *                         the peer's attributes as they are now (WALSHIP_A_PEER_NAME
 *                         present for a peer; WALSHIP_A_PEER_GONE for a removed peer).
 *
 * Attribute numbers start at 1 (0 is never sent).  u64 attributes are 8-byte aligned with
 * WALSHIP_A_PAD where needed.  Names follow the node-name rule of walship/node_name.h
 * (WALSHIP_NAME_MAX is its bound); the module keeps at most WALSHIP_MAX_PEERS peers.
 */
#ifndef WALSHIP_NETLINK_H
#define WALSHIP_NETLINK_H

#define WALSHIP_GENL_NAME "walship"
#define WALSHIP_GENL_VERSION 1
#define WALSHIP_GENL_MCGRP "events"

#define WALSHIP_NAME_MAX 63 /* characters, without the terminating NUL */
#define WALSHIP_MAX_PEERS 64

enum walship_cmd {
	WALSHIP_CMD_UNSPEC,
	WALSHIP_CMD_SET_NODE,
	WALSHIP_CMD_SET_PEER,
	WALSHIP_CMD_DEL_PEER,
	WALSHIP_CMD_GET,
	WALSHIP_CMD_EVENT,

	__WALSHIP_CMD_MAX,
	WALSHIP_CMD_MAX = __WALSHIP_CMD_MAX - 1
};

/* The node's role (WALSHIP_A_ROLE, u32). */
enum walship_role {
	WALSHIP_ROLE_UNKNOWN,
	WALSHIP_ROLE_PRIMARY,
	WALSHIP_ROLE_REPLICA,

	__WALSHIP_ROLE_MAX,
	WALSHIP_ROLE_MAX = __WALSHIP_ROLE_MAX - 1
};

/*
 * A peer's state (WALSHIP_A_PEER_STATE, u32), the one list for `walship status`, its
 * JSON, sysfs and the publisher; "unknown" once the publisher is gone.  New states are
 * appended (the numbers are ABI).
 */
enum walship_peer_state {
	WALSHIP_PEER_UNKNOWN,
	WALSHIP_PEER_CONNECTING, /* replica: connecting to its upstream */
	WALSHIP_PEER_HANDSHAKE, /* connected, HELLO (and HAVE) not yet through */
	WALSHIP_PEER_STREAMING,
	WALSHIP_PEER_DISCONNECTED,
	WALSHIP_PEER_FAILING, /* primary: connected, but its disk refuses files (IO_ERROR) */
	WALSHIP_PEER_AWAY, /* primary: registered, not connected; the spool holds its WAL */

	__WALSHIP_PEER_MAX,
	WALSHIP_PEER_MAX = __WALSHIP_PEER_MAX - 1
};

/* The name of @state as status, JSON and sysfs show it; "unknown" when out of range. */
static inline const char *walship_peer_state_name(unsigned int state)
{
	static const char *const names[] = {
		[WALSHIP_PEER_UNKNOWN] = "unknown",
		[WALSHIP_PEER_CONNECTING] = "connecting",
		[WALSHIP_PEER_HANDSHAKE] = "handshake",
		[WALSHIP_PEER_STREAMING] = "streaming",
		[WALSHIP_PEER_DISCONNECTED] = "disconnected",
		[WALSHIP_PEER_FAILING] = "failing",
		[WALSHIP_PEER_AWAY] = "away",
	};

	return state < sizeof(names) / sizeof(names[0]) && names[state] ? names[state] : "unknown";
}

enum walship_attr {
	WALSHIP_A_UNSPEC,
	WALSHIP_A_PAD,
	/* node */
	WALSHIP_A_ROLE, /* u32, enum walship_role */
	WALSHIP_A_NODE_NAME, /* NUL-terminated string */
	WALSHIP_A_SYSTEM_IDENTIFIER, /* u64 */
	WALSHIP_A_TIMELINE, /* u32 */
	WALSHIP_A_DAEMON_PID, /* u32, replies and events only: 0 when none */
	/* peer */
	WALSHIP_A_PEER_NAME, /* NUL-terminated string */
	WALSHIP_A_PEER_STATE, /* u32, enum walship_peer_state */
	WALSHIP_A_PEER_SENT_LSN, /* u64 */
	WALSHIP_A_PEER_WRITE_LSN, /* u64 */
	WALSHIP_A_PEER_FLUSH_LSN, /* u64 */
	WALSHIP_A_PEER_LAG_BYTES, /* u64 */
	WALSHIP_A_PEER_LAG_USEC, /* u64 */
	WALSHIP_A_PEER_SEGMENTS_SENT, /* u64 */
	WALSHIP_A_PEER_BYTES_SENT, /* u64 */
	WALSHIP_A_PEER_RECONNECTS, /* u64 */
	WALSHIP_A_PEER_LAST_UPDATE, /* u64, replies and events only: unix time in ns */
	WALSHIP_A_PEER_GONE, /* flag, events only */

	__WALSHIP_A_MAX,
	WALSHIP_A_MAX = __WALSHIP_A_MAX - 1
};

#endif /* WALSHIP_NETLINK_H */
