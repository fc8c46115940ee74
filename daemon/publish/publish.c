// SPDX-License-Identifier: MIT
/*
 * The sysfs publisher (see publish.h): libnl-genl-3 on one non-blocking netlink socket.
 *
 * Messages go out without NLM_F_ACK: the kernel answers only failures, which are read
 * back (non-blocking) on the next tick.  Any failure, a send that fails or an error
 * reply, drops the family id: it is resolved again PUBLISH_RETRY_MS later and then
 * everything is sent afresh.  A full refresh also runs every PUBLISH_REFRESH_MS, so a
 * module reloaded between two ticks (same family id, empty state) is filled again.
 *
 * Taking over: once the family is resolved, the peers the module already has (left by a
 * previous publisher, shown "unknown") are read with a dump, so that those this daemon
 * does not report are removed rather than left behind.
 *
 * A replica always reports its upstream peer, but under the primary's node name only
 * once a handshake told it; until then, and while disconnected, the name is empty.  The
 * publisher keeps the last name the handshake gave (PUBLISH_UPSTREAM_NAME before any),
 * so the peer shows "connecting" or "disconnected" instead of vanishing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <walship/netlink.h>

#include "common/compiler.h"
#include "common/log.h"
#include "common/node_name.h"
#include "publish/publish.h"

#define PUBLISH_REFRESH_MS 5000

enum {
	PUB_SENT_LSN,
	PUB_WRITE_LSN,
	PUB_FLUSH_LSN,
	PUB_LAG_BYTES,
	PUB_LAG_USEC,
	PUB_SEGMENTS_SENT,
	PUB_BYTES_SENT,
	PUB_RECONNECTS,
	PUB_NVALUES
};

/* The netlink attribute of each value, in the order above. */
static const int pub_value_attrs[PUB_NVALUES] = {
	WALSHIP_A_PEER_SENT_LSN,   WALSHIP_A_PEER_WRITE_LSN,  WALSHIP_A_PEER_FLUSH_LSN,
	WALSHIP_A_PEER_LAG_BYTES,  WALSHIP_A_PEER_LAG_USEC,   WALSHIP_A_PEER_SEGMENTS_SENT,
	WALSHIP_A_PEER_BYTES_SENT, WALSHIP_A_PEER_RECONNECTS,
};

struct pub_peer {
	char name[WALSHIP_NAME_MAX + 1];
	uint32_t state;
	uint64_t values[PUB_NVALUES];
};

struct pub_node {
	uint32_t role;
	char name[WALSHIP_NAME_MAX + 1];
	uint64_t system_identifier;
	uint32_t timeline;
};

struct publisher {
	struct nl_sock *sk;
	int family; /* < 0: not resolved */
	int64_t next_resolve_ms;
	int64_t last_send_ms;
	int64_t last_refresh_ms;
	bool node_valid; /* node holds what the module has */
	bool announced_missing;
	char upstream_name[WALSHIP_NAME_MAX + 1]; /* replica: last name from a handshake */
	struct pub_node node;
	struct pub_peer peers[WALSHIP_MAX_PEERS]; /* what the module has */
	unsigned int npeers;
};

struct publisher *publish_new(void)
{
	struct publisher *pb = calloc(1, sizeof(*pb));

	if (!pb) {
		log_error("out of memory");
		return NULL;
	}
	pb->family = -1;
	return pb;
}

void publish_free(struct publisher *pb)
{
	if (!pb)
		return;
	if (pb->sk)
		nl_socket_free(pb->sk);
	free(pb);
}

/* Forget the family: resolve it again later and then send everything afresh. */
static void pub_lost(struct publisher *pb, int64_t now_ms, const char *why)
{
	if (pb->family >= 0)
		log_log("stopped publishing to walship.ko: %s", why);
	pb->family = -1;
	pb->node_valid = false;
	pb->npeers = 0;
	pb->next_resolve_ms = now_ms + PUBLISH_RETRY_MS;
}

/* A dump reply: remember a peer's name, with a state no snapshot has (never "same"). */
static int pub_adopt_one(struct nl_msg *msg, void *arg)
{
	struct publisher *pb = arg;
	struct nlattr *attrs[WALSHIP_A_MAX + 1];
	struct pub_peer *pp;
	const char *name;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, attrs, WALSHIP_A_MAX, NULL) < 0 ||
	    !attrs[WALSHIP_A_PEER_NAME] || pb->npeers >= WALSHIP_MAX_PEERS)
		return NL_OK;
	name = nla_get_string(attrs[WALSHIP_A_PEER_NAME]);
	if (!node_name_valid(name))
		return NL_OK;
	pp = &pb->peers[pb->npeers++];
	memset(pp, 0, sizeof(*pp));
	snprintf(pp->name, sizeof(pp->name), "%s", name);
	pp->state = UINT32_MAX;
	return NL_OK;
}

/*
 * Take over from a previous publisher: read the peers the module has into pb->peers, so
 * the next tick removes those this daemon does not report.  The socket is blocking here;
 * the kernel builds the dump as it is read.  A failure leaves pb->peers empty.
 */
static void pub_adopt(struct publisher *pb)
{
	struct nl_cb *sock_cb = nl_socket_get_cb(pb->sk); /* sequence checks off */
	struct nl_cb *cb = nl_cb_clone(sock_cb);

	nl_cb_put(sock_cb);
	pb->npeers = 0;
	if (!cb)
		return;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, pub_adopt_one, pb);
	if (genl_send_simple(pb->sk, pb->family, WALSHIP_CMD_GET, WALSHIP_GENL_VERSION,
			     NLM_F_DUMP) >= 0 &&
	    nl_recvmsgs(pb->sk, cb) < 0)
		pb->npeers = 0;
	nl_cb_put(cb);
}

/* Set up the socket if needed and resolve the family.  Returns true when resolved. */
static bool pub_resolve(struct publisher *pb, int64_t now_ms)
{
	int fd, flags, family;

	if (pb->family >= 0)
		return true;
	if (now_ms < pb->next_resolve_ms)
		return false;
	pb->next_resolve_ms = now_ms + PUBLISH_RETRY_MS;
	if (!pb->sk) {
		pb->sk = nl_socket_alloc();
		if (!pb->sk)
			return false;
		if (genl_connect(pb->sk) < 0) {
			nl_socket_free(pb->sk);
			pb->sk = NULL;
			return false;
		}
		nl_socket_disable_seq_check(pb->sk);
		nl_socket_disable_auto_ack(pb->sk);
	}
	/* The controller answers within the send: blocking here does not wait. */
	fd = nl_socket_get_fd(pb->sk);
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	family = genl_ctrl_resolve(pb->sk, WALSHIP_GENL_NAME);
	if (family >= 0) {
		pb->family = family;
		pub_adopt(pb);
	}
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (family < 0) {
		if (!pb->announced_missing)
			log_log("walship.ko is not loaded; its sysfs state is published once it is");
		pb->announced_missing = true;
		return false;
	}
	pb->announced_missing = false;
	pb->node_valid = false;
	log_log("publishing state to walship.ko (generic netlink family \"%s\", id %d)",
		WALSHIP_GENL_NAME, family);
	return true;
}

bool publish_ready(struct publisher *pb, int64_t now_ms)
{
	return pb && pub_resolve(pb, now_ms);
}

/* Read the kernel's error replies, if any.  Returns false when one says we are off. */
static bool pub_drain(struct publisher *pb, int64_t now_ms)
{
	char why[128];
	int err;

	while ((err = nl_recvmsgs_default(pb->sk)) >= 0)
		;
	if (err == -NLE_AGAIN || pb->family < 0)
		return true;
	snprintf(why, sizeof(why), "the kernel refused an update: %s", nl_geterror(err));
	pub_lost(pb, now_ms, why);
	return false;
}

static struct nl_msg *pub_msg(struct publisher *pb, uint8_t cmd)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (msg && !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, pb->family, 0, 0, cmd,
				WALSHIP_GENL_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/* Send and free @msg.  Returns false (and forgets the family) when it could not go. */
static bool pub_send(struct publisher *pb, struct nl_msg *msg, int64_t now_ms)
{
	int err = nl_send_auto(pb->sk, msg);

	nlmsg_free(msg);
	if (err < 0) {
		pub_lost(pb, now_ms, nl_geterror(err));
		return false;
	}
	return true;
}

static bool pub_send_node(struct publisher *pb, const struct pub_node *node, int64_t now_ms)
{
	struct nl_msg *msg = pub_msg(pb, WALSHIP_CMD_SET_NODE);

	if (!msg || nla_put_u32(msg, WALSHIP_A_ROLE, node->role) < 0 ||
	    nla_put_string(msg, WALSHIP_A_NODE_NAME, node->name) < 0 ||
	    nla_put_u64(msg, WALSHIP_A_SYSTEM_IDENTIFIER, node->system_identifier) < 0 ||
	    nla_put_u32(msg, WALSHIP_A_TIMELINE, node->timeline) < 0) {
		nlmsg_free(msg);
		return false;
	}
	return pub_send(pb, msg, now_ms);
}

static bool pub_send_peer(struct publisher *pb, const struct pub_peer *peer, int64_t now_ms)
{
	struct nl_msg *msg = pub_msg(pb, WALSHIP_CMD_SET_PEER);

	if (!msg || nla_put_string(msg, WALSHIP_A_PEER_NAME, peer->name) < 0 ||
	    nla_put_u32(msg, WALSHIP_A_PEER_STATE, peer->state) < 0)
		goto out_free;
	for (int i = 0; i < PUB_NVALUES; i++)
		if (nla_put_u64(msg, pub_value_attrs[i], peer->values[i]) < 0)
			goto out_free;
	return pub_send(pb, msg, now_ms);

out_free:
	nlmsg_free(msg);
	return false;
}

static bool pub_send_del(struct publisher *pb, const char *name, int64_t now_ms)
{
	struct nl_msg *msg = pub_msg(pb, WALSHIP_CMD_DEL_PEER);

	if (!msg || nla_put_string(msg, WALSHIP_A_PEER_NAME, name) < 0) {
		nlmsg_free(msg);
		return false;
	}
	return pub_send(pb, msg, now_ms);
}

/* The module's view of @n: at most WALSHIP_MAX_PEERS peers with valid names. */
static unsigned int pub_snapshot(struct publisher *pb, const struct status_node *n,
				 struct pub_node *node, struct pub_peer *peers)
{
	bool replica;
	unsigned int count = 0;

	memset(node, 0, sizeof(*node));
	node->role = !strcmp(n->role, "primary") ? WALSHIP_ROLE_PRIMARY :
		     !strcmp(n->role, "replica") ? WALSHIP_ROLE_REPLICA :
						   WALSHIP_ROLE_UNKNOWN;
	replica = node->role == WALSHIP_ROLE_REPLICA;
	snprintf(node->name, sizeof(node->name), "%s", n->node_name);
	node->system_identifier = n->system_identifier;
	node->timeline = n->timeline;
	for (unsigned int i = 0; i < n->npeers && count < WALSHIP_MAX_PEERS; i++) {
		const struct status_peer *sp = &n->peers[i];
		struct pub_peer *pp = &peers[count];
		const char *name = sp->name;

		/* A replica's one peer is its upstream, named or not (see the top). */
		if (replica && node_name_valid(name))
			snprintf(pb->upstream_name, sizeof(pb->upstream_name), "%s", name);
		else if (replica)
			name = pb->upstream_name[0] ? pb->upstream_name : PUBLISH_UPSTREAM_NAME;
		if (!node_name_valid(name))
			continue;
		memset(pp, 0, sizeof(*pp));
		snprintf(pp->name, sizeof(pp->name), "%s", name);
		pp->state = (uint32_t)sp->state;
		pp->values[PUB_SENT_LSN] = sp->sent_lsn;
		pp->values[PUB_WRITE_LSN] = sp->write_lsn;
		pp->values[PUB_FLUSH_LSN] = sp->flush_lsn;
		pp->values[PUB_LAG_BYTES] = sp->lag_bytes;
		pp->values[PUB_LAG_USEC] = sp->lag_us;
		pp->values[PUB_SEGMENTS_SENT] = sp->files_sent;
		pp->values[PUB_BYTES_SENT] = sp->bytes_sent;
		pp->values[PUB_RECONNECTS] = sp->reconnects;
		count++;
	}
	return count;
}

static const struct pub_peer *pub_find(const struct pub_peer *peers, unsigned int npeers,
				       const char *name)
{
	for (unsigned int i = 0; i < npeers; i++)
		if (!strcmp(peers[i].name, name))
			return &peers[i];
	return NULL;
}

void publish_tick(struct publisher *pb, const struct status_node *n, int64_t now_ms)
{
	static struct pub_peer fresh[WALSHIP_MAX_PEERS];
	struct pub_node node;
	unsigned int nfresh;
	bool refresh, sent = false;

	if (!pb || (pb->sk && !pub_drain(pb, now_ms)))
		return;
	if (!pub_resolve(pb, now_ms))
		return;
	if (now_ms - pb->last_send_ms < PUBLISH_MIN_INTERVAL_MS)
		return;
	refresh = now_ms - pb->last_refresh_ms >= PUBLISH_REFRESH_MS;
	if (refresh) {
		pb->node_valid = false;
		pb->last_refresh_ms = now_ms;
	}

	nfresh = pub_snapshot(pb, n, &node, fresh);
	if (!pb->node_valid || memcmp(&node, &pb->node, sizeof(node))) {
		if (!pub_send_node(pb, &node, now_ms))
			return;
		pb->node = node;
		pb->node_valid = true;
		sent = true;
	}
	for (unsigned int i = 0; i < pb->npeers; i++) {
		if (pub_find(fresh, nfresh, pb->peers[i].name))
			continue;
		if (!pub_send_del(pb, pb->peers[i].name, now_ms))
			return;
		sent = true;
	}
	for (unsigned int i = 0; i < nfresh; i++) {
		const struct pub_peer *old = pub_find(pb->peers, pb->npeers, fresh[i].name);

		if (!refresh && old && !memcmp(old, &fresh[i], sizeof(fresh[i])))
			continue;
		if (!pub_send_peer(pb, &fresh[i], now_ms))
			return;
		sent = true;
	}
	memcpy(pb->peers, fresh, nfresh * sizeof(fresh[0]));
	pb->npeers = nfresh;
	if (sent)
		pb->last_send_ms = now_ms;
}
