/* SPDX-License-Identifier: MIT */
/*
 * The sysfs publisher: sends the daemon's state to walship.ko over the generic netlink
 * family "walship" (include/walship/netlink.h), which shows it under /sys/kernel/walship/:
 * the node, its peers, and a replica's standbys on pg_listen (docs/sysfs.md).
 *
 * Off the data path: main.c calls publish_tick() from its 100 ms tick with a fresh status
 * snapshot.  The netlink socket is non-blocking; a change is sent at most every
 * PUBLISH_MIN_INTERVAL_MS, coalescing what happened in between.  Without the module
 * (not loaded yet, unloaded, reloaded) the family is resolved again every
 * PUBLISH_RETRY_MS, and once found everything is published afresh, so loading the module
 * after the daemon, or rmmod + insmod, needs nothing from the operator.
 *
 * The config key sysfs (on | off | auto, docs/configuration.md) decides whether main.c
 * creates a publisher; walshipd --no-sysfs overrides it with off.
 */
#ifndef WALSHIP_PUBLISH_PUBLISH_H
#define WALSHIP_PUBLISH_PUBLISH_H

#include <stdbool.h>
#include <stdint.h>

#include <walship/netlink.h>

#include "status/status.h"

#define PUBLISH_MIN_INTERVAL_MS 200
#define PUBLISH_RETRY_MS 2000
/* How often a publisher the kernel does not allow (no CAP_NET_ADMIN) tries again. */
#define PUBLISH_DENIED_RETRY_MS 60000
/* A replica's upstream peer before any handshake named it (docs/sysfs.md). */
#define PUBLISH_UPSTREAM_NAME "upstream"

struct publisher;

/* A publisher that has not resolved the family yet, or NULL when out of memory (logged). */
struct publisher *publish_new(void);

/* Resolve the family now (sysfs = on checks it at start): false, with *@why saying why,
 * when walship.ko is not loaded or walshipd may not publish (no CAP_NET_ADMIN); the
 * publisher goes on trying either way. */
bool publish_ready(struct publisher *pb, int64_t now_ms, const char **why);

/* Publish @n if it differs from what walship.ko last received (see above). */
void publish_tick(struct publisher *pb, const struct status_node *n, int64_t now_ms);

/*
 * The peers of @n that walship.ko is to show, at most WALSHIP_MAX_PEERS: into @names the
 * name each is published under, into @index its place in n->peers; returns how many.  On
 * a replica the first peer is its upstream, under the name its last handshake gave (kept
 * in @pb), or PUBLISH_UPSTREAM_NAME before any; the others are the replicas it relays
 * to.  A name that is not a node name, or that an earlier peer has, is left out.
 * publish_tick() calls it; exposed for tests.
 */
unsigned int publish_peer_names(struct publisher *pb, const struct status_node *n,
				char names[][WALSHIP_NAME_MAX + 1], unsigned int *index);

/*
 * The standbys of @n that walship.ko is to show, at most WALSHIP_MAX_STANDBYS: into @index
 * their places in n->standbys, the most advanced first (streaming, then between commands,
 * then authenticating; in n's order among equals); returns how many.  Of a name several
 * have, the most advanced only; a name that is not a node name, none.  Exposed for tests.
 */
unsigned int publish_standby_pick(const struct status_node *n, unsigned int *index);

/* The largest role and states a module takes (its policy's NLA_POLICY_MAX): the header's
 * own for one built from it; less for one built before a state was appended. */
struct publish_limits {
	uint32_t role, peer_state, standby_state;
};

/* This header's maxima: what a module of this version takes. */
void publish_limits_default(struct publish_limits *lim);

/*
 * Lower @lim to what one message of a CTRL_CMD_GETPOLICY dump of the family says: the
 * NL_POLICY_TYPE_ATTR_MAX_VALUE_U of WALSHIP_A_ROLE, WALSHIP_A_PEER_STATE and
 * WALSHIP_A_STANDBY_STATE in the family's policy (index 0).  Anything else is left as it
 * is.  The publisher calls it on each reply as the family is resolved; exposed for tests.
 */
struct nlmsghdr;
void publish_policy_parse(struct nlmsghdr *nlh, struct publish_limits *lim);

/*
 * What the kernel's replies @errs (@n of them, libnl's -NLE_* codes, 0 for a reply that
 * was no error) say of why updates were refused, 0 for nothing: another publisher
 * (-NLE_BUSY) or no permission (-NLE_PERM) wherever they come, else the first error;
 * replies lost to an overrun of the socket (-NLE_NOMEM: ENOBUFS) only when nothing else
 * says.  The publisher calls it on what it drained; exposed for tests.
 */
int publish_refusal_reason(const int *errs, unsigned int n);

/* Close the socket: walship.ko then shows daemon "none", peers and standbys "unknown". */
void publish_free(struct publisher *pb);

#endif /* WALSHIP_PUBLISH_PUBLISH_H */
