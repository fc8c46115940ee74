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
 *                         While the publisher's socket is open, every changing command
 *                         from another socket is refused with EBUSY (one daemon publishes
 *                         at a time).
 *   WALSHIP_CMD_SET_PEER  (CAP_NET_ADMIN)  create or update peers/<WALSHIP_A_PEER_NAME>/
 *                         with the peer attributes present in the message.
 *   WALSHIP_CMD_DEL_PEER  (CAP_NET_ADMIN)  remove peers/<WALSHIP_A_PEER_NAME>/.
 *   WALSHIP_CMD_GET       dump: one message with the node attributes, then one per peer,
 *                         then one per standby.
 *   WALSHIP_CMD_EVENT     multicast on group "events" after every change: the node's,
 *                         the peer's or the standby's attributes as they are now
 *                         (WALSHIP_A_PEER_NAME present for a peer, WALSHIP_A_STANDBY_NAME
 *                         for a standby; WALSHIP_A_PEER_GONE or WALSHIP_A_STANDBY_GONE for
 *                         a removed one).
 *   WALSHIP_CMD_SET_STANDBY (CAP_NET_ADMIN)  create or update
 *                         standbys/<WALSHIP_A_STANDBY_NAME>/ (a PostgreSQL standby on a
 *                         replica's pg_listen, by application name) with the standby
 *                         attributes present in the message.
 *   WALSHIP_CMD_DEL_STANDBY (CAP_NET_ADMIN)  remove standbys/<WALSHIP_A_STANDBY_NAME>/.
 *
 * The standby commands and attributes came after version 1's first modules, appended so
 * that the numbers of the others did not change: a publisher knows a module that has them
 * by the family's maxattr (at least WALSHIP_A_STANDBY_GONE) and sends none to one that
 * has not.
 *
 * Attribute numbers start at 1 (0 is never sent).  u64 attributes of the module's replies
 * and events are 8-byte aligned with WALSHIP_A_PAD where needed; requests carry no
 * WALSHIP_A_PAD (the module's policy refuses it, as any attribute it does not take).  Names follow the node-name rule of walship/node_name.h
 * (WALSHIP_NAME_MAX is its bound); the module keeps at most WALSHIP_MAX_PEERS peers and
 * as many standbys.
 */
#ifndef WALSHIP_NETLINK_H
#define WALSHIP_NETLINK_H

#define WALSHIP_GENL_NAME "walship"
#define WALSHIP_GENL_VERSION 1
#define WALSHIP_GENL_MCGRP "events"

#define WALSHIP_NAME_MAX 63 /* characters, without the terminating NUL */
#define WALSHIP_MAX_PEERS 64
#define WALSHIP_MAX_STANDBYS WALSHIP_MAX_PEERS

enum walship_cmd {
	WALSHIP_CMD_UNSPEC,
	WALSHIP_CMD_SET_NODE,
	WALSHIP_CMD_SET_PEER,
	WALSHIP_CMD_DEL_PEER,
	WALSHIP_CMD_GET,
	WALSHIP_CMD_EVENT,
	WALSHIP_CMD_SET_STANDBY,
	WALSHIP_CMD_DEL_STANDBY,

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

/*
 * A standby's state (WALSHIP_A_STANDBY_STATE, u32), as `walship status` names it (the
 * walsender's connection: authenticating, between commands, streaming); "unknown" once the
 * publisher is gone.  New states are appended (the numbers are ABI).
 */
enum walship_standby_state {
	WALSHIP_STANDBY_UNKNOWN,
	WALSHIP_STANDBY_STARTUP,
	WALSHIP_STANDBY_IDLE,
	WALSHIP_STANDBY_STREAMING,

	__WALSHIP_STANDBY_MAX,
	WALSHIP_STANDBY_MAX = __WALSHIP_STANDBY_MAX - 1
};

/* The name of @state as status, JSON and sysfs show it; "unknown" when out of range. */
static inline const char *walship_standby_state_name(unsigned int state)
{
	static const char *const names[] = {
		[WALSHIP_STANDBY_UNKNOWN] = "unknown",
		[WALSHIP_STANDBY_STARTUP] = "startup",
		[WALSHIP_STANDBY_IDLE] = "idle",
		[WALSHIP_STANDBY_STREAMING] = "streaming",
	};

	return state < sizeof(names) / sizeof(names[0]) && names[state] ? names[state] : "unknown";
}

/* The longest hold text (WALSHIP_A_STANDBY_HOLD), without the terminating NUL. */
#define WALSHIP_HOLD_MAX 95

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
	/* standby (appended: see the top) */
	WALSHIP_A_STANDBY_NAME, /* NUL-terminated string: its application_name */
	WALSHIP_A_STANDBY_STATE, /* u32, enum walship_standby_state */
	WALSHIP_A_STANDBY_SENT_LSN, /* u64 */
	WALSHIP_A_STANDBY_WRITE_LSN, /* u64, as the standby reports it */
	WALSHIP_A_STANDBY_FLUSH_LSN, /* u64 */
	WALSHIP_A_STANDBY_REPLAY_LSN, /* u64 */
	WALSHIP_A_STANDBY_WRITE_LAG_MS, /* s64, -1 none reported yet */
	WALSHIP_A_STANDBY_FLUSH_LAG_MS, /* s64 */
	WALSHIP_A_STANDBY_REPLAY_LAG_MS, /* s64 */
	WALSHIP_A_STANDBY_XMIN, /* u32, hot standby feedback, 0 none */
	WALSHIP_A_STANDBY_CATALOG_XMIN, /* u32 */
	WALSHIP_A_STANDBY_BYTES_SENT, /* u64 */
	WALSHIP_A_STANDBY_DELAY_MS, /* s64, standby_delay for it, -1 none */
	WALSHIP_A_STANDBY_HOLD, /* NUL-terminated string, "" none */
	WALSHIP_A_STANDBY_SEND_LIMIT, /* u64, sent up to here at most; UINT64_MAX none */
	WALSHIP_A_STANDBY_LAST_UPDATE, /* u64, replies and events only: unix time in ns */
	WALSHIP_A_STANDBY_GONE, /* flag, events only */
	/* peer, appended */
	WALSHIP_A_PEER_COMMITS_WAITING, /* u64, commit records past its durable position */

	__WALSHIP_A_MAX,
	WALSHIP_A_MAX = __WALSHIP_A_MAX - 1
};

#endif /* WALSHIP_NETLINK_H */
