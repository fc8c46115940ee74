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
 * A replica always reports its upstream peer, first, but under the primary's node name
 * only once a handshake told it; until then, and while disconnected, the name is empty.
 * The publisher keeps the last name the handshake gave (PUBLISH_UPSTREAM_NAME before
 * any), so the peer shows "connecting" or "disconnected" instead of vanishing.  A
 * relaying replica reports its downstream replicas after it (role/relay.c), under their
 * own names: only the first peer is the upstream, or each of them would overwrite the
 * name kept, and a disconnected upstream would be published under the last one's.  Of
 * two peers with one name (the upstream's also a downstream's, a downstream reconnected
 * while its old connection is not closed yet) the first is published, as for standbys.
 *
 * Standbys (a replica's PostgreSQL standbys on pg_listen) are published as peers are,
 * under their application_name, when it follows the node-name rule: one directory per
 * name (two standbys left with the default application_name "walreceiver" share one),
 * the most advanced standby of a name shown (streaming, then between commands, then
 * authenticating; in the status's order among equals), and those most advanced first under
 * the bound: a connection that names itself as a streaming standby and never finishes
 * its authentication, which anyone reaching pg_listen may open, neither takes that
 * standby's directory nor pushes streaming ones out.  A module from before the standby
 * commands (its family's maxattr says so) is sent none.
 *
 * States are appended too (the numbers are ABI), and a module's policy refuses a value
 * past its last one (NLA_POLICY_MAX): the whole update, for good, when a daemon that
 * knows a newer state runs over a module loaded before the upgrade.  The publisher reads
 * the largest role and states the module takes from its policy (CTRL_CMD_GETPOLICY) and
 * sends "unknown" for one it does not know (pub_limit()).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <walship/netlink.h>

#include "common/compiler.h"
#include "common/caps.h"
#include "common/log.h"
#include "common/node_name.h"
#include "publish/publish.h"

#define PUBLISH_REFRESH_MS 5000
/* Replies read at most per tick: more than one tick can send (node, deletions, updates). */
#define PUB_DRAIN_MAX (4 * (1 + WALSHIP_MAX_PEERS + WALSHIP_MAX_STANDBYS))

enum {
	PUB_SENT_LSN,
	PUB_WRITE_LSN,
	PUB_FLUSH_LSN,
	PUB_LAG_BYTES,
	PUB_LAG_USEC,
	PUB_SEGMENTS_SENT,
	PUB_BYTES_SENT,
	PUB_RECONNECTS,
	PUB_COMMITS_WAITING,
	PUB_NVALUES
};

/* The netlink attribute of each value, in the order above. */
static const int pub_value_attrs[PUB_NVALUES] = {
	WALSHIP_A_PEER_SENT_LSN,   WALSHIP_A_PEER_WRITE_LSN,  WALSHIP_A_PEER_FLUSH_LSN,
	WALSHIP_A_PEER_LAG_BYTES,  WALSHIP_A_PEER_LAG_USEC,   WALSHIP_A_PEER_SEGMENTS_SENT,
	WALSHIP_A_PEER_BYTES_SENT, WALSHIP_A_PEER_RECONNECTS, WALSHIP_A_PEER_COMMITS_WAITING,
};

struct pub_peer {
	char name[WALSHIP_NAME_MAX + 1];
	uint32_t state;
	uint64_t values[PUB_NVALUES];
};

struct pub_standby {
	char name[WALSHIP_NAME_MAX + 1];
	uint32_t state;
	uint64_t sent_lsn, write_lsn, flush_lsn, replay_lsn;
	int64_t write_lag_ms, flush_lag_ms, replay_lag_ms;
	uint32_t xmin, catalog_xmin;
	uint64_t bytes_sent;
	int64_t delay_ms;
	char hold[WALSHIP_HOLD_MAX + 1];
	uint64_t send_limit;
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
	bool busy; /* refused: another socket publishes (logged once, until we publish) */
	/* not allowed: walshipd lacks CAP_NET_ADMIN (in the host's user namespace, which
	 * walship.ko's GENL_ADMIN_PERM asks for): logged once, tried again every
	 * PUBLISH_DENIED_RETRY_MS, not every PUBLISH_RETRY_MS with two lines each time */
	bool denied;
	const char *unready; /* why the family is not resolved, for publish_ready() */
	char upstream_name[WALSHIP_NAME_MAX + 1]; /* replica: last name from a handshake */
	struct pub_node node;
	struct pub_peer peers[WALSHIP_MAX_PEERS]; /* what the module has */
	unsigned int npeers;
	int module_maxattr; /* the module's last attribute: what it knows (netlink.h) */
	bool module_standbys; /* the module knows the standby commands */
	struct publish_limits limits; /* the largest role and states the module takes */
	struct pub_standby standbys[WALSHIP_MAX_STANDBYS]; /* what the module has */
	unsigned int nstandbys;
};

struct publisher *publish_new(void)
{
	struct publisher *pb = calloc(1, sizeof(*pb));

	if (!pb) {
		log_error("out of memory");
		return NULL;
	}
	pb->family = -1;
	publish_limits_default(&pb->limits);
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

/* Forget the family: resolve it again later and then send everything afresh.  @why NULL:
 * the caller logged. */
static void pub_lost(struct publisher *pb, int64_t now_ms, const char *why)
{
	if (pb->family >= 0 && why)
		log_log("stopped publishing to walship.ko: %s", why);
	pb->family = -1;
	pb->node_valid = false;
	pb->npeers = 0;
	pb->nstandbys = 0;
	pb->next_resolve_ms = now_ms + PUBLISH_RETRY_MS;
}

/* A dump reply: remember a peer's or a standby's name, with a state no snapshot has
 * (never "same"). */
static int pub_adopt_one(struct nl_msg *msg, void *arg)
{
	/* names NUL-terminated within the bound before they are read */
	static struct nla_policy policy[WALSHIP_A_MAX + 1] = {
		[WALSHIP_A_PEER_NAME] = { .type = NLA_STRING, .maxlen = WALSHIP_NAME_MAX + 1 },
		[WALSHIP_A_STANDBY_NAME] = { .type = NLA_STRING, .maxlen = WALSHIP_NAME_MAX + 1 },
	};
	struct publisher *pb = arg;
	struct nlattr *attrs[WALSHIP_A_MAX + 1];
	const char *name;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, attrs, WALSHIP_A_MAX, policy) < 0)
		return NL_OK;
	if (attrs[WALSHIP_A_PEER_NAME] && pb->npeers < WALSHIP_MAX_PEERS) {
		struct pub_peer *pp = &pb->peers[pb->npeers];

		name = nla_get_string(attrs[WALSHIP_A_PEER_NAME]);
		if (!node_name_valid(name))
			return NL_OK;
		memset(pp, 0, sizeof(*pp));
		snprintf(pp->name, sizeof(pp->name), "%s", name);
		pp->state = UINT32_MAX;
		pb->npeers++;
	} else if (attrs[WALSHIP_A_STANDBY_NAME] && pb->nstandbys < WALSHIP_MAX_STANDBYS) {
		struct pub_standby *ps = &pb->standbys[pb->nstandbys];

		name = nla_get_string(attrs[WALSHIP_A_STANDBY_NAME]);
		if (!node_name_valid(name))
			return NL_OK;
		memset(ps, 0, sizeof(*ps));
		snprintf(ps->name, sizeof(ps->name), "%s", name);
		ps->state = UINT32_MAX;
		pb->nstandbys++;
	}
	return NL_OK;
}

/*
 * After a dump read only in part (nl_recvmsgs() failed: out of memory): what is left of it
 * is read and dropped, or the next read on the socket would take it for its answer.  The
 * kernel goes on with the dump as it is read; a read that finds nothing ends it.
 */
static void pub_discard_replies(struct publisher *pb)
{
	int fd = nl_socket_get_fd(pb->sk), flags = fcntl(fd, F_GETFL);
	static char buf[16384];

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	for (int i = 0; i < PUB_DRAIN_MAX && recv(fd, buf, sizeof(buf), MSG_TRUNC) >= 0; i++)
		;
	fcntl(fd, F_SETFL, flags);
}

/* A dump request of @cmd to @family, or NULL when out of memory. */
static struct nl_msg *pub_dump_msg(int family, uint8_t cmd, uint8_t version)
{
	struct nl_msg *msg = nlmsg_alloc();

	if (msg &&
	    !genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, NLM_F_DUMP, cmd, version)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/*
 * Send @msg (a dump request; NULL: none, out of memory; freed here) and read its replies
 * to the end, each to @one(@arg), with the socket's callbacks (sequence checks off).  The
 * socket is blocking here (pub_resolve()); the kernel builds the dump as it is read.
 * Returns false when the request did not go or its replies were not all read (what is
 * left of them is dropped: pub_discard_replies()).
 */
static bool pub_dump(struct publisher *pb, struct nl_msg *msg, nl_recvmsg_msg_cb_t one, void *arg)
{
	struct nl_cb *sock_cb = nl_socket_get_cb(pb->sk);
	struct nl_cb *cb = nl_cb_clone(sock_cb);
	bool ok = false;

	nl_cb_put(sock_cb);
	if (cb && msg && nl_send_auto(pb->sk, msg) >= 0) {
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, one, arg);
		ok = nl_recvmsgs(pb->sk, cb) >= 0;
		if (!ok)
			pub_discard_replies(pb);
	}
	if (msg)
		nlmsg_free(msg);
	if (cb)
		nl_cb_put(cb);
	return ok;
}

/*
 * Take over from a previous publisher: read the peers and standbys the module has into
 * pb->peers and pb->standbys, so the next tick removes those this daemon does not report.
 * The socket is blocking here; the kernel builds the dump as it is read.  A failure
 * leaves both empty.
 */
static void pub_adopt(struct publisher *pb)
{
	struct nl_msg *msg = pub_dump_msg(pb->family, WALSHIP_CMD_GET, WALSHIP_GENL_VERSION);

	pb->npeers = 0;
	pb->nstandbys = 0;
	if (!pub_dump(pb, msg, pub_adopt_one, pb)) {
		pb->npeers = 0;
		pb->nstandbys = 0;
	}
}

/*
 * The family's id (-1 when the module is not loaded) and its maxattr: attributes are
 * appended (include/walship/netlink.h), so a module from before stops short of the newer
 * ones, which it would refuse; it is sent none of them.
 */
static int pub_lookup(struct publisher *pb, int *maxattr)
{
	struct nl_cache *cache;
	struct genl_family *fam;
	int family = -1;

	*maxattr = 0;
	if (genl_ctrl_alloc_cache(pb->sk, &cache) < 0)
		return -1;
	fam = genl_ctrl_search_by_name(cache, WALSHIP_GENL_NAME);
	if (fam) {
		family = (int)genl_family_get_id(fam);
		*maxattr = (int)genl_family_get_maxattr(fam);
		genl_family_put(fam);
	}
	nl_cache_free(cache);
	return family;
}

void publish_limits_default(struct publish_limits *lim)
{
	lim->role = WALSHIP_ROLE_MAX;
	lim->peer_state = WALSHIP_PEER_MAX;
	lim->standby_state = WALSHIP_STANDBY_MAX;
}

void publish_policy_parse(struct nlmsghdr *nlh, struct publish_limits *lim)
{
	struct nlattr *attrs[CTRL_ATTR_MAX + 1], *policy, *attr;
	int rem, rem_attr;

	if (genlmsg_parse(nlh, 0, attrs, CTRL_ATTR_MAX, NULL) < 0 || !attrs[CTRL_ATTR_POLICY])
		return;
	/* CTRL_ATTR_POLICY { policy index { attribute { NL_POLICY_TYPE_ATTR_* } } }; the
	 * family's own policy is index 0 (the first an operation names; every walship
	 * command takes it), others would be nested attributes' (walship has none). */
	nla_for_each_nested(policy, attrs[CTRL_ATTR_POLICY], rem)
	{
		if (nla_type(policy) != 0)
			continue;
		nla_for_each_nested(attr, policy, rem_attr)
		{
			struct nlattr *type[NL_POLICY_TYPE_ATTR_MAX + 1];
			uint32_t *max =
				nla_type(attr) == WALSHIP_A_ROLE	  ? &lim->role :
				nla_type(attr) == WALSHIP_A_PEER_STATE	  ? &lim->peer_state :
				nla_type(attr) == WALSHIP_A_STANDBY_STATE ? &lim->standby_state :
									    NULL;
			uint64_t v;

			if (!max ||
			    nla_parse_nested(type, NL_POLICY_TYPE_ATTR_MAX, attr, NULL) < 0 ||
			    !type[NL_POLICY_TYPE_ATTR_MAX_VALUE_U] ||
			    nla_len(type[NL_POLICY_TYPE_ATTR_MAX_VALUE_U]) < (int)sizeof(v))
				continue;
			v = nla_get_u64(type[NL_POLICY_TYPE_ATTR_MAX_VALUE_U]);
			if (v < *max)
				*max = (uint32_t)v;
		}
	}
}

static int pub_policy_one(struct nl_msg *msg, void *arg)
{
	publish_policy_parse(nlmsg_hdr(msg), arg);
	return NL_OK;
}

/*
 * What the module takes (see the top): the family's policy dump.  Without it (a kernel
 * before 5.8 has no CTRL_CMD_GETPOLICY) every value this daemon knows is sent, as
 * before.  The socket is blocking here, as for pub_adopt().
 */
static void pub_policy(struct publisher *pb)
{
	struct nl_msg *msg = pub_dump_msg(GENL_ID_CTRL, CTRL_CMD_GETPOLICY, 1);
	struct publish_limits lim;

	if (msg && nla_put_u16(msg, CTRL_ATTR_FAMILY_ID, (uint16_t)pb->family) < 0) {
		nlmsg_free(msg);
		msg = NULL;
	}
	publish_limits_default(&lim);
	if (!pub_dump(pb, msg, pub_policy_one, &lim))
		publish_limits_default(&lim); /* none, or not all of it: as before */
	if (memcmp(&lim, &pb->limits, sizeof(lim)) &&
	    (lim.role < WALSHIP_ROLE_MAX || lim.peer_state < WALSHIP_PEER_MAX ||
	     lim.standby_state < WALSHIP_STANDBY_MAX))
		log_log("walship.ko is older than this walshipd: it is sent \"unknown\" for the "
			"states it does not know (reload the module to show them)");
	pb->limits = lim;
}

/* @value, or 0 ("unknown" in each enum) when past @max, what the module takes. */
static uint32_t pub_limit(uint32_t value, uint32_t max)
{
	return value <= max ? value : 0;
}

/* Set up the socket if needed and resolve the family.  Returns true when resolved. */
static bool pub_resolve(struct publisher *pb, int64_t now_ms)
{
	int fd, flags, family, maxattr;
	bool standbys;

	if (pb->family >= 0)
		return true;
	if (now_ms < pb->next_resolve_ms)
		return false;
	pb->next_resolve_ms = now_ms + PUBLISH_RETRY_MS;
	/* Every update would be refused (EPERM): said once, before any netlink traffic. */
	if (!caps_effective(CAPS_NET_ADMIN)) {
		pb->unready = "walshipd lacks CAP_NET_ADMIN, which walship.ko's updates need";
		if (!pb->denied)
			log_log("the state is not published to walship.ko: %s (docs/sysfs.md)",
				pb->unready);
		pb->denied = true;
		pb->next_resolve_ms = now_ms + PUBLISH_DENIED_RETRY_MS;
		return false;
	}
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
		/* Error replies without a copy of the refused request (a kilobyte each): a
		 * refused tick of many peers and standbys then fits the socket's buffer. */
		(void)setsockopt(nl_socket_get_fd(pb->sk), SOL_NETLINK, NETLINK_CAP_ACK,
				 &(int){ 1 }, sizeof(int));
	}
	/* The controller answers within the send: blocking here does not wait. */
	fd = nl_socket_get_fd(pb->sk);
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	family = pub_lookup(pb, &maxattr);
	standbys = maxattr >= WALSHIP_A_STANDBY_GONE;
	if (family >= 0) {
		pb->family = family;
		pb->module_maxattr = maxattr;
		pb->module_standbys = standbys;
		pub_policy(pb);
		pub_adopt(pb);
	}
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (family < 0) {
		pb->unready = "walship.ko is not loaded";
		if (!pb->announced_missing)
			log_log("walship.ko is not loaded; its sysfs state is published once it is");
		pb->announced_missing = true;
		return false;
	}
	pb->announced_missing = false;
	pb->node_valid = false;
	if (pb->busy || pb->denied) /* said once; pub_drain() says when we publish */
		return true;
	log_log("publishing state to walship.ko (generic netlink family \"%s\", id %d)%s",
		WALSHIP_GENL_NAME, family,
		standbys ? "" : "; the module is too old to show standbys");
	return true;
}

bool publish_ready(struct publisher *pb, int64_t now_ms, const char **why)
{
	if (!pb) {
		*why = "out of memory";
		return false;
	}
	pb->unready = "no netlink socket";
	if (pub_resolve(pb, now_ms))
		return true;
	*why = pb->unready;
	return false;
}

/*
 * Read the kernel's error replies, all of them: a refusal is followed by one per message
 * sent after it, and one left in the socket would be read as the answer to the family
 * lookup or the dump of pub_resolve().  Returns false when one says we are off.
 *
 * EBUSY is walship.ko saying another socket publishes (another walshipd, docs/sysfs.md):
 * logged once, then retried quietly every PUBLISH_RETRY_MS until the module takes our
 * updates, which is logged too.
 */
int publish_refusal_reason(const int *errs, unsigned int n)
{
	int first = 0;
	bool busy = false, denied = false, overrun = false;

	for (unsigned int i = 0; i < n; i++) {
		/* Replies that overflowed the socket (ENOBUFS, which libnl calls NLE_NOMEM,
		 * read before those still queued) say nothing of why: the others do. */
		if (errs[i] == -NLE_NOMEM) {
			overrun = true;
			continue;
		}
		if (errs[i] < 0 && !first)
			first = errs[i];
		busy = busy || errs[i] == -NLE_BUSY;
		denied = denied || errs[i] == -NLE_PERM;
	}
	/* Another publisher, or no permission, whatever came first. */
	if (busy)
		return -NLE_BUSY;
	if (denied)
		return -NLE_PERM;
	return !first && overrun ? -NLE_NOMEM : first;
}

static bool pub_drain(struct publisher *pb, int64_t now_ms)
{
	char why[128];
	int errs[PUB_DRAIN_MAX], first;
	unsigned int n = 0;

	while (n < PUB_DRAIN_MAX) {
		int err = nl_recvmsgs_default(pb->sk);

		if (err == -NLE_AGAIN)
			break;
		errs[n++] = err;
	}
	first = publish_refusal_reason(errs, n);
	if (pb->family < 0) /* refusals of what was sent before the family was dropped */
		return true;
	if (!first) {
		if (pb->busy && pb->node_valid) {
			log_log("publishing state to walship.ko: the other publisher is gone");
			pb->busy = false;
		}
		if (pb->denied && pb->node_valid) {
			log_log("publishing state to walship.ko: its updates are allowed now");
			pb->denied = false;
		}
		return true;
	}
	if (first == -NLE_PERM) {
		/* CAP_NET_ADMIN in a user namespace of our own is not the host's. */
		if (!pb->denied)
			log_log("walship.ko refused the update: %s (CAP_NET_ADMIN in the host's user "
				"namespace is needed, docs/sysfs.md); trying again every %d s",
				nl_geterror(first), PUBLISH_DENIED_RETRY_MS / 1000);
		pb->denied = true;
		pub_lost(pb, now_ms, NULL);
		pb->next_resolve_ms = now_ms + PUBLISH_DENIED_RETRY_MS;
		return false;
	}
	if (first == -NLE_BUSY) {
		if (!pb->busy)
			log_log("walship.ko refused the update: another process publishes there (one "
				"publisher per host, docs/sysfs.md); trying again every %d s",
				PUBLISH_RETRY_MS / 1000);
		pb->busy = true;
		pub_lost(pb, now_ms, NULL);
		return false;
	}
	snprintf(why, sizeof(why), "the kernel refused an update: %s", nl_geterror(first));
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
		if (pub_value_attrs[i] <= pb->module_maxattr &&
		    nla_put_u64(msg, pub_value_attrs[i], peer->values[i]) < 0)
			goto out_free;
	return pub_send(pb, msg, now_ms);

out_free:
	nlmsg_free(msg);
	return false;
}

static bool pub_send_standby(struct publisher *pb, const struct pub_standby *sb, int64_t now_ms)
{
	struct nl_msg *msg = pub_msg(pb, WALSHIP_CMD_SET_STANDBY);

	if (!msg || nla_put_string(msg, WALSHIP_A_STANDBY_NAME, sb->name) < 0 ||
	    nla_put_u32(msg, WALSHIP_A_STANDBY_STATE, sb->state) < 0 ||
	    nla_put_u64(msg, WALSHIP_A_STANDBY_SENT_LSN, sb->sent_lsn) < 0 ||
	    nla_put_u64(msg, WALSHIP_A_STANDBY_WRITE_LSN, sb->write_lsn) < 0 ||
	    nla_put_u64(msg, WALSHIP_A_STANDBY_FLUSH_LSN, sb->flush_lsn) < 0 ||
	    nla_put_u64(msg, WALSHIP_A_STANDBY_REPLAY_LSN, sb->replay_lsn) < 0 ||
	    nla_put_s64(msg, WALSHIP_A_STANDBY_WRITE_LAG_MS, sb->write_lag_ms) < 0 ||
	    nla_put_s64(msg, WALSHIP_A_STANDBY_FLUSH_LAG_MS, sb->flush_lag_ms) < 0 ||
	    nla_put_s64(msg, WALSHIP_A_STANDBY_REPLAY_LAG_MS, sb->replay_lag_ms) < 0 ||
	    nla_put_u32(msg, WALSHIP_A_STANDBY_XMIN, sb->xmin) < 0 ||
	    nla_put_u32(msg, WALSHIP_A_STANDBY_CATALOG_XMIN, sb->catalog_xmin) < 0 ||
	    nla_put_u64(msg, WALSHIP_A_STANDBY_BYTES_SENT, sb->bytes_sent) < 0 ||
	    nla_put_s64(msg, WALSHIP_A_STANDBY_DELAY_MS, sb->delay_ms) < 0 ||
	    nla_put_string(msg, WALSHIP_A_STANDBY_HOLD, sb->hold) < 0 ||
	    nla_put_u64(msg, WALSHIP_A_STANDBY_SEND_LIMIT, sb->send_limit) < 0) {
		nlmsg_free(msg);
		return false;
	}
	return pub_send(pb, msg, now_ms);
}

/* Remove the peer (@cmd WALSHIP_CMD_DEL_PEER) or standby (WALSHIP_CMD_DEL_STANDBY) @name. */
static bool pub_send_del(struct publisher *pb, uint8_t cmd, const char *name, int64_t now_ms)
{
	struct nl_msg *msg = pub_msg(pb, cmd);
	int attr = cmd == WALSHIP_CMD_DEL_PEER ? WALSHIP_A_PEER_NAME : WALSHIP_A_STANDBY_NAME;

	if (!msg || nla_put_string(msg, attr, name) < 0) {
		nlmsg_free(msg);
		return false;
	}
	return pub_send(pb, msg, now_ms);
}

unsigned int publish_peer_names(struct publisher *pb, const struct status_node *n,
				char names[][WALSHIP_NAME_MAX + 1], unsigned int *index)
{
	bool replica = !strcmp(n->role, "replica");
	unsigned int count = 0;

	for (unsigned int i = 0; i < n->npeers && count < WALSHIP_MAX_PEERS; i++) {
		const char *name = n->peers[i].name;
		bool dup = false;

		/* A replica's first peer is its upstream, named or not; the others are the
		 * replicas it relays to, under their own names (see the top). */
		if (replica && i == 0 && node_name_valid(name))
			snprintf(pb->upstream_name, sizeof(pb->upstream_name), "%s", name);
		else if (replica && i == 0)
			name = pb->upstream_name[0] ? pb->upstream_name : PUBLISH_UPSTREAM_NAME;
		if (!node_name_valid(name))
			continue;
		for (unsigned int j = 0; j < count && !dup; j++)
			dup = !strcmp(names[j], name);
		if (dup)
			continue;
		snprintf(names[count], sizeof(names[count]), "%s", name);
		index[count++] = i;
	}
	return count;
}

/* The module's view of @n: at most WALSHIP_MAX_PEERS peers with valid names. */
static unsigned int pub_snapshot(struct publisher *pb, const struct status_node *n,
				 struct pub_node *node, struct pub_peer *peers)
{
	char names[WALSHIP_MAX_PEERS][WALSHIP_NAME_MAX + 1];
	unsigned int index[WALSHIP_MAX_PEERS];
	unsigned int count;

	memset(node, 0, sizeof(*node));
	node->role = pub_limit(!strcmp(n->role, "primary") ? WALSHIP_ROLE_PRIMARY :
			       !strcmp(n->role, "replica") ? WALSHIP_ROLE_REPLICA :
							     WALSHIP_ROLE_UNKNOWN,
			       pb->limits.role);
	snprintf(node->name, sizeof(node->name), "%s", n->node_name);
	node->system_identifier = n->system_identifier;
	node->timeline = n->timeline;
	count = publish_peer_names(pb, n, names, index);
	for (unsigned int i = 0; i < count; i++) {
		const struct status_peer *sp = &n->peers[index[i]];
		struct pub_peer *pp = &peers[i];

		memset(pp, 0, sizeof(*pp));
		snprintf(pp->name, sizeof(pp->name), "%s", names[i]);
		pp->state = pub_limit((uint32_t)sp->state, pb->limits.peer_state);
		pp->values[PUB_SENT_LSN] = sp->sent_lsn;
		pp->values[PUB_WRITE_LSN] = sp->write_lsn;
		pp->values[PUB_FLUSH_LSN] = sp->flush_lsn;
		pp->values[PUB_LAG_BYTES] = sp->lag_bytes;
		pp->values[PUB_LAG_USEC] = sp->lag_us;
		pp->values[PUB_SEGMENTS_SENT] = sp->files_sent;
		pp->values[PUB_BYTES_SENT] = sp->bytes_sent;
		pp->values[PUB_RECONNECTS] = sp->reconnects;
		pp->values[PUB_COMMITS_WAITING] = sp->commits_waiting;
	}
	return count;
}

/* The module's state of standby @s. */
static uint32_t pub_standby_state(const struct status_standby *s)
{
	for (uint32_t st = 0; st <= WALSHIP_STANDBY_MAX; st++)
		if (!strcmp(s->state, walship_standby_state_name(st)))
			return st;
	return WALSHIP_STANDBY_UNKNOWN;
}

unsigned int publish_standby_pick(const struct status_node *n, unsigned int *index)
{
	unsigned int count = 0;

	/* One pass per state, the most advanced first (the states are numbered in that
	 * order, see the top). */
	for (uint32_t want = WALSHIP_STANDBY_MAX + 1; want-- > 0;) {
		for (unsigned int i = 0; i < n->nstandbys && count < WALSHIP_MAX_STANDBYS; i++) {
			const char *name = n->standbys[i].application_name;
			bool dup = false;

			if (pub_standby_state(&n->standbys[i]) != want || !node_name_valid(name))
				continue;
			for (unsigned int j = 0; j < count && !dup; j++)
				dup = !strcmp(n->standbys[index[j]].application_name, name);
			if (!dup)
				index[count++] = i;
		}
	}
	return count;
}

/* The module's view of @n's standbys (publish_standby_pick()). */
static unsigned int pub_snapshot_standbys(const struct publisher *pb, const struct status_node *n,
					  struct pub_standby *out)
{
	static unsigned int index[WALSHIP_MAX_STANDBYS];
	unsigned int count = publish_standby_pick(n, index);

	for (unsigned int k = 0; k < count; k++) {
		const struct status_standby *s = &n->standbys[index[k]];
		struct pub_standby *ps = &out[k];

		memset(ps, 0, sizeof(*ps));
		snprintf(ps->name, sizeof(ps->name), "%s", s->application_name);
		ps->state = pub_limit(pub_standby_state(s), pb->limits.standby_state);
		ps->sent_lsn = s->sent_lsn;
		ps->write_lsn = s->write_lsn;
		ps->flush_lsn = s->flush_lsn;
		ps->replay_lsn = s->apply_lsn;
		ps->write_lag_ms = s->write_lag_ms;
		ps->flush_lag_ms = s->flush_lag_ms;
		ps->replay_lag_ms = s->replay_lag_ms;
		ps->xmin = s->xmin;
		ps->catalog_xmin = s->catalog_xmin;
		ps->bytes_sent = s->bytes_sent;
		ps->delay_ms = s->delay_ms;
		snprintf(ps->hold, sizeof(ps->hold), "%s", s->hold);
		ps->send_limit = s->send_limit;
	}
	return count;
}

static const struct pub_standby *pub_find_standby(const struct pub_standby *sbs, unsigned int n,
						  const char *name)
{
	for (unsigned int i = 0; i < n; i++)
		if (!strcmp(sbs[i].name, name))
			return &sbs[i];
	return NULL;
}

/* Send what changed in the standbys since the module last received them.  Returns false
 * when a send failed (the family is then forgotten); *sent tells whether any went. */
static bool pub_tick_standbys(struct publisher *pb, const struct status_node *n, bool refresh,
			      int64_t now_ms, bool *sent)
{
	static struct pub_standby fresh[WALSHIP_MAX_STANDBYS];
	unsigned int nfresh = pub_snapshot_standbys(pb, n, fresh);

	for (unsigned int i = 0; i < pb->nstandbys; i++) {
		if (pub_find_standby(fresh, nfresh, pb->standbys[i].name))
			continue;
		if (!pub_send_del(pb, WALSHIP_CMD_DEL_STANDBY, pb->standbys[i].name, now_ms))
			return false;
		*sent = true;
	}
	for (unsigned int i = 0; i < nfresh; i++) {
		const struct pub_standby *old =
			pub_find_standby(pb->standbys, pb->nstandbys, fresh[i].name);

		if (!refresh && old && !memcmp(old, &fresh[i], sizeof(fresh[i])))
			continue;
		if (!pub_send_standby(pb, &fresh[i], now_ms))
			return false;
		*sent = true;
	}
	memcpy(pb->standbys, fresh, nfresh * sizeof(fresh[0]));
	pb->nstandbys = nfresh;
	return true;
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
		if (!pub_send_del(pb, WALSHIP_CMD_DEL_PEER, pb->peers[i].name, now_ms))
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
	if (pb->module_standbys && !pub_tick_standbys(pb, n, refresh, now_ms, &sent))
		return;
	if (sent)
		pb->last_send_ms = now_ms;
}
