// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * walship.ko: walshipd's replication state under /sys/kernel/walship/, fed over the
 * generic netlink family "walship" (include/walship/netlink.h, docs/sysfs.md).
 *
 *   /sys/kernel/walship/{version,daemon,role,node_name,system_identifier,timeline}
 *   /sys/kernel/walship/peers/<name>/{state,sent_lsn,write_lsn,flush_lsn,lag_bytes,
 *       lag_us,segments_sent,bytes_sent,reconnects,last_update_ns}
 *
 * The module holds no replication logic: it keeps what the publishing daemon last said
 * and forgets that it was live when the daemon's netlink socket closes (daemon "none",
 * every peer "unknown").
 *
 * Locking: walship_mutex serialises changes to the structure (the peer list, kobjects,
 * the publisher's identity) and is taken by the netlink handlers and the socket release
 * notifier.  walship_values_lock (a spinlock) guards the values that show() reads, so
 * show() never waits for walship_mutex: removing a peer's kobject under walship_mutex
 * drains the show() calls in progress, which therefore must not take it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kobject.h>
#include <linux/ktime.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/stringify.h>
#include <linux/sysfs.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>

#include <walship/netlink.h>
#include <walship/node_name.h>

#ifndef WALSHIP_VERSION
#define WALSHIP_VERSION "0.0.0"
#endif

struct walship_peer {
	struct kobject kobj;
	struct list_head list; /* on walship_peers, under walship_mutex */
	char name[WALSHIP_NAME_MAX + 1];
	/* under walship_values_lock */
	u32 state;
	u64 sent_lsn;
	u64 write_lsn;
	u64 flush_lsn;
	u64 lag_bytes;
	u64 lag_usec;
	u64 segments_sent;
	u64 bytes_sent;
	u64 reconnects;
	u64 last_update_ns;
};

static DEFINE_MUTEX(walship_mutex);
static DEFINE_SPINLOCK(walship_values_lock);
static LIST_HEAD(walship_peers);
static unsigned int walship_npeers;
static struct kobject *walship_kobj;
static struct kobject *walship_peers_kobj;

/* The publisher: the netlink socket that last set the node, under walship_mutex. */
static u32 walship_owner_portid;

/* Node values, under walship_values_lock. */
static pid_t walship_daemon_pid; /* 0: none */
static u32 walship_role;
static char walship_node_name[WALSHIP_NAME_MAX + 1];
static u64 walship_system_identifier;
static u32 walship_timeline;

static const char *const walship_role_names[] = {
	[WALSHIP_ROLE_UNKNOWN] = "unknown",
	[WALSHIP_ROLE_PRIMARY] = "primary",
	[WALSHIP_ROLE_REPLICA] = "replica",
};

static struct genl_family walship_family;

/* ---- sysfs: node attributes ---- */

static ssize_t version_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%s\n", WALSHIP_VERSION);
}

static ssize_t daemon_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	pid_t pid;

	spin_lock(&walship_values_lock);
	pid = walship_daemon_pid;
	spin_unlock(&walship_values_lock);
	if (!pid)
		return sysfs_emit(buf, "none\n");
	return sysfs_emit(buf, "%d\n", pid);
}

static ssize_t role_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	u32 role;

	spin_lock(&walship_values_lock);
	role = walship_role;
	spin_unlock(&walship_values_lock);
	return sysfs_emit(buf, "%s\n", walship_role_names[role]);
}

static ssize_t node_name_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	ssize_t len;

	spin_lock(&walship_values_lock);
	len = sysfs_emit(buf, "%s\n", walship_node_name);
	spin_unlock(&walship_values_lock);
	return len;
}

static ssize_t system_identifier_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	u64 sysid;

	spin_lock(&walship_values_lock);
	sysid = walship_system_identifier;
	spin_unlock(&walship_values_lock);
	return sysfs_emit(buf, "%llu\n", sysid);
}

static ssize_t timeline_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	u32 tli;

	spin_lock(&walship_values_lock);
	tli = walship_timeline;
	spin_unlock(&walship_values_lock);
	return sysfs_emit(buf, "%u\n", tli);
}

static struct kobj_attribute walship_version_attr = __ATTR_RO(version);
static struct kobj_attribute walship_daemon_attr = __ATTR_RO(daemon);
static struct kobj_attribute walship_role_attr = __ATTR_RO(role);
static struct kobj_attribute walship_node_name_attr = __ATTR_RO(node_name);
static struct kobj_attribute walship_system_identifier_attr = __ATTR_RO(system_identifier);
static struct kobj_attribute walship_timeline_attr = __ATTR_RO(timeline);

static struct attribute *walship_node_attrs[] = {
	&walship_version_attr.attr,
	&walship_daemon_attr.attr,
	&walship_role_attr.attr,
	&walship_node_name_attr.attr,
	&walship_system_identifier_attr.attr,
	&walship_timeline_attr.attr,
	NULL,
};

static const struct attribute_group walship_node_group = {
	.attrs = walship_node_attrs,
};

/* ---- sysfs: peer attributes ---- */

static struct walship_peer *to_peer(struct kobject *kobj)
{
	return container_of(kobj, struct walship_peer, kobj);
}

static ssize_t state_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct walship_peer *peer = to_peer(kobj);
	u32 state;

	spin_lock(&walship_values_lock);
	state = peer->state;
	spin_unlock(&walship_values_lock);
	return sysfs_emit(buf, "%s\n", walship_peer_state_name(state));
}

/* A PostgreSQL LSN as "X/X": the high and low 32 bits in upper-case hexadecimal. */
#define WALSHIP_LSN_SHOW(field)                                                                   \
	static ssize_t field##_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf) \
	{                                                                                         \
		struct walship_peer *peer = to_peer(kobj);                                        \
		u64 lsn;                                                                          \
                                                                                                  \
		spin_lock(&walship_values_lock);                                                  \
		lsn = peer->field;                                                                \
		spin_unlock(&walship_values_lock);                                                \
		return sysfs_emit(buf, "%X/%X\n", upper_32_bits(lsn), lower_32_bits(lsn));        \
	}                                                                                         \
	static struct kobj_attribute walship_peer_##field##_attr = __ATTR_RO(field)

#define WALSHIP_U64_SHOW(file, field)                                                            \
	static ssize_t file##_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf) \
	{                                                                                        \
		struct walship_peer *peer = to_peer(kobj);                                       \
		u64 value;                                                                       \
                                                                                                 \
		spin_lock(&walship_values_lock);                                                 \
		value = peer->field;                                                             \
		spin_unlock(&walship_values_lock);                                               \
		return sysfs_emit(buf, "%llu\n", value);                                         \
	}                                                                                        \
	static struct kobj_attribute walship_peer_##file##_attr = __ATTR_RO(file)

WALSHIP_LSN_SHOW(sent_lsn);
WALSHIP_LSN_SHOW(write_lsn);
WALSHIP_LSN_SHOW(flush_lsn);
WALSHIP_U64_SHOW(lag_bytes, lag_bytes);
WALSHIP_U64_SHOW(lag_us, lag_usec);
WALSHIP_U64_SHOW(segments_sent, segments_sent);
WALSHIP_U64_SHOW(bytes_sent, bytes_sent);
WALSHIP_U64_SHOW(reconnects, reconnects);
WALSHIP_U64_SHOW(last_update_ns, last_update_ns);

static struct kobj_attribute walship_peer_state_attr = __ATTR_RO(state);

static struct attribute *walship_peer_attrs[] = {
	&walship_peer_state_attr.attr,
	&walship_peer_sent_lsn_attr.attr,
	&walship_peer_write_lsn_attr.attr,
	&walship_peer_flush_lsn_attr.attr,
	&walship_peer_lag_bytes_attr.attr,
	&walship_peer_lag_us_attr.attr,
	&walship_peer_segments_sent_attr.attr,
	&walship_peer_bytes_sent_attr.attr,
	&walship_peer_reconnects_attr.attr,
	&walship_peer_last_update_ns_attr.attr,
	NULL,
};
ATTRIBUTE_GROUPS(walship_peer);

static void walship_peer_release(struct kobject *kobj)
{
	kfree(to_peer(kobj));
}

static struct kobj_type walship_peer_ktype = {
	.release = walship_peer_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = walship_peer_groups,
};

/* ---- netlink messages ---- */

static int walship_put_node(struct sk_buff *skb)
{
	u64 sysid;
	u32 role, tli, pid;
	char name[WALSHIP_NAME_MAX + 1];

	spin_lock(&walship_values_lock);
	role = walship_role;
	tli = walship_timeline;
	pid = walship_daemon_pid;
	sysid = walship_system_identifier;
	strscpy(name, walship_node_name, sizeof(name));
	spin_unlock(&walship_values_lock);

	if (nla_put_u32(skb, WALSHIP_A_ROLE, role) ||
	    nla_put_string(skb, WALSHIP_A_NODE_NAME, name) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_SYSTEM_IDENTIFIER, sysid, WALSHIP_A_PAD) ||
	    nla_put_u32(skb, WALSHIP_A_TIMELINE, tli) ||
	    nla_put_u32(skb, WALSHIP_A_DAEMON_PID, pid))
		return -EMSGSIZE;
	return 0;
}

static int walship_put_peer(struct sk_buff *skb, struct walship_peer *peer)
{
	struct walship_peer v;

	spin_lock(&walship_values_lock);
	v.state = peer->state;
	v.sent_lsn = peer->sent_lsn;
	v.write_lsn = peer->write_lsn;
	v.flush_lsn = peer->flush_lsn;
	v.lag_bytes = peer->lag_bytes;
	v.lag_usec = peer->lag_usec;
	v.segments_sent = peer->segments_sent;
	v.bytes_sent = peer->bytes_sent;
	v.reconnects = peer->reconnects;
	v.last_update_ns = peer->last_update_ns;
	spin_unlock(&walship_values_lock);

	if (nla_put_string(skb, WALSHIP_A_PEER_NAME, peer->name) ||
	    nla_put_u32(skb, WALSHIP_A_PEER_STATE, v.state) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_SENT_LSN, v.sent_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_WRITE_LSN, v.write_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_FLUSH_LSN, v.flush_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_LAG_BYTES, v.lag_bytes, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_LAG_USEC, v.lag_usec, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_SEGMENTS_SENT, v.segments_sent, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_BYTES_SENT, v.bytes_sent, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_RECONNECTS, v.reconnects, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_LAST_UPDATE, v.last_update_ns, WALSHIP_A_PAD))
		return -EMSGSIZE;
	return 0;
}

/*
 * Announce a change on the "events" group: the node (@peer NULL), a peer, or a removed
 * peer (@gone_name).  Best effort: an event that cannot be built is dropped, since the
 * state itself is always in sysfs and in a WALSHIP_CMD_GET dump.
 */
static void walship_notify(struct walship_peer *peer, const char *gone_name)
{
	struct sk_buff *skb;
	void *hdr;
	int err;

	if (!genl_has_listeners(&walship_family, &init_net, 0))
		return;
	skb = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!skb)
		return;
	hdr = genlmsg_put(skb, 0, 0, &walship_family, 0, WALSHIP_CMD_EVENT);
	if (!hdr)
		goto out_free;
	if (gone_name)
		err = nla_put_string(skb, WALSHIP_A_PEER_NAME, gone_name) ||
		      nla_put_flag(skb, WALSHIP_A_PEER_GONE);
	else if (peer)
		err = walship_put_peer(skb, peer);
	else
		err = walship_put_node(skb);
	if (err)
		goto out_free;
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&walship_family, skb, 0, 0, GFP_KERNEL);
	return;

out_free:
	nlmsg_free(skb);
}

/* ---- netlink commands ---- */

static struct walship_peer *walship_peer_find(const char *name)
{
	struct walship_peer *peer;

	list_for_each_entry(peer, &walship_peers, list) if (!strcmp(peer->name, name)) return peer;
	return NULL;
}

/* Mark the publisher gone: daemon "none", every peer "unknown".  Under walship_mutex. */
static void walship_publisher_gone(void)
{
	struct walship_peer *peer;

	walship_owner_portid = 0;
	spin_lock(&walship_values_lock);
	walship_daemon_pid = 0;
	list_for_each_entry(peer, &walship_peers, list) peer->state = WALSHIP_PEER_UNKNOWN;
	spin_unlock(&walship_values_lock);

	sysfs_notify(walship_kobj, NULL, "daemon");
	walship_notify(NULL, NULL);
	list_for_each_entry(peer, &walship_peers, list)
	{
		sysfs_notify(&peer->kobj, NULL, "state");
		walship_notify(peer, NULL);
	}
}

static int walship_set_node(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	bool daemon_changed;

	if (attrs[WALSHIP_A_NODE_NAME] &&
	    !walship_node_name_valid(nla_data(attrs[WALSHIP_A_NODE_NAME]))) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[WALSHIP_A_NODE_NAME],
				    "node name must be " WALSHIP_NODE_NAME_RULE);
		return -EINVAL;
	}

	mutex_lock(&walship_mutex);
	walship_owner_portid = info->snd_portid;
	spin_lock(&walship_values_lock);
	daemon_changed = walship_daemon_pid != task_tgid_vnr(current);
	walship_daemon_pid = task_tgid_vnr(current);
	if (attrs[WALSHIP_A_ROLE])
		walship_role = nla_get_u32(attrs[WALSHIP_A_ROLE]);
	if (attrs[WALSHIP_A_NODE_NAME])
		nla_strscpy(walship_node_name, attrs[WALSHIP_A_NODE_NAME],
			    sizeof(walship_node_name));
	if (attrs[WALSHIP_A_SYSTEM_IDENTIFIER])
		walship_system_identifier = nla_get_u64(attrs[WALSHIP_A_SYSTEM_IDENTIFIER]);
	if (attrs[WALSHIP_A_TIMELINE])
		walship_timeline = nla_get_u32(attrs[WALSHIP_A_TIMELINE]);
	spin_unlock(&walship_values_lock);

	if (daemon_changed)
		sysfs_notify(walship_kobj, NULL, "daemon");
	walship_notify(NULL, NULL);
	mutex_unlock(&walship_mutex);
	return 0;
}

static struct walship_peer *walship_peer_new(const char *name, struct netlink_ext_ack *extack)
{
	struct walship_peer *peer;
	int err;

	if (walship_npeers >= WALSHIP_MAX_PEERS) {
		NL_SET_ERR_MSG(extack, "too many peers: the module keeps at most " __stringify(
					       WALSHIP_MAX_PEERS));
		return ERR_PTR(-ENOSPC);
	}
	peer = kzalloc(sizeof(*peer), GFP_KERNEL);
	if (!peer)
		return ERR_PTR(-ENOMEM);
	strscpy(peer->name, name, sizeof(peer->name));
	err = kobject_init_and_add(&peer->kobj, &walship_peer_ktype, walship_peers_kobj, "%s",
				   name);
	if (err) {
		NL_SET_ERR_MSG(extack, "could not create the peer's sysfs directory");
		kobject_put(&peer->kobj);
		return ERR_PTR(err);
	}
	list_add_tail(&peer->list, &walship_peers);
	walship_npeers++;
	return peer;
}

static int walship_set_peer(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct walship_peer *peer;
	const char *name;
	bool state_changed = false;
	int err = 0;

	if (!attrs[WALSHIP_A_PEER_NAME]) {
		NL_SET_ERR_MSG(info->extack, "missing peer name (WALSHIP_A_PEER_NAME)");
		return -EINVAL;
	}
	name = nla_data(attrs[WALSHIP_A_PEER_NAME]);
	if (!walship_node_name_valid(name)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[WALSHIP_A_PEER_NAME],
				    "peer name must be " WALSHIP_NODE_NAME_RULE);
		return -EINVAL;
	}

	mutex_lock(&walship_mutex);
	peer = walship_peer_find(name);
	if (!peer) {
		peer = walship_peer_new(name, info->extack);
		if (IS_ERR(peer)) {
			err = PTR_ERR(peer);
			goto out_unlock;
		}
		state_changed = true;
	}

	spin_lock(&walship_values_lock);
	if (attrs[WALSHIP_A_PEER_STATE]) {
		u32 state = nla_get_u32(attrs[WALSHIP_A_PEER_STATE]);

		state_changed |= peer->state != state;
		peer->state = state;
	}
#define WALSHIP_SET_U64(attr, field)                            \
	do {                                                    \
		if (attrs[attr])                                \
			peer->field = nla_get_u64(attrs[attr]); \
	} while (0)
	WALSHIP_SET_U64(WALSHIP_A_PEER_SENT_LSN, sent_lsn);
	WALSHIP_SET_U64(WALSHIP_A_PEER_WRITE_LSN, write_lsn);
	WALSHIP_SET_U64(WALSHIP_A_PEER_FLUSH_LSN, flush_lsn);
	WALSHIP_SET_U64(WALSHIP_A_PEER_LAG_BYTES, lag_bytes);
	WALSHIP_SET_U64(WALSHIP_A_PEER_LAG_USEC, lag_usec);
	WALSHIP_SET_U64(WALSHIP_A_PEER_SEGMENTS_SENT, segments_sent);
	WALSHIP_SET_U64(WALSHIP_A_PEER_BYTES_SENT, bytes_sent);
	WALSHIP_SET_U64(WALSHIP_A_PEER_RECONNECTS, reconnects);
#undef WALSHIP_SET_U64
	peer->last_update_ns = ktime_get_real_ns();
	spin_unlock(&walship_values_lock);

	if (state_changed)
		sysfs_notify(&peer->kobj, NULL, "state");
	walship_notify(peer, NULL);
out_unlock:
	mutex_unlock(&walship_mutex);
	return err;
}

/* Remove @peer's directory and free it (when the last sysfs reader is done). */
static void walship_peer_free(struct walship_peer *peer)
{
	list_del(&peer->list);
	walship_npeers--;
	kobject_put(&peer->kobj);
}

static int walship_del_peer(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *attr = info->attrs[WALSHIP_A_PEER_NAME];
	struct walship_peer *peer;
	char name[WALSHIP_NAME_MAX + 1];
	int err = 0;

	if (!attr) {
		NL_SET_ERR_MSG(info->extack, "missing peer name (WALSHIP_A_PEER_NAME)");
		return -EINVAL;
	}
	nla_strscpy(name, attr, sizeof(name));

	mutex_lock(&walship_mutex);
	peer = walship_peer_find(name);
	if (!peer) {
		NL_SET_ERR_MSG_ATTR(info->extack, attr, "no such peer");
		err = -ENOENT;
		goto out_unlock;
	}
	walship_peer_free(peer);
	walship_notify(NULL, name);
out_unlock:
	mutex_unlock(&walship_mutex);
	return err;
}

/* Dump: cb->args[0] is 0 before the node's message, then 1 + the next peer's index. */
static int walship_get_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct walship_peer *peer;
	unsigned long index = 0;
	void *hdr;

	mutex_lock(&walship_mutex);
	if (cb->args[0] == 0) {
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				  &walship_family, NLM_F_MULTI, WALSHIP_CMD_GET);
		if (!hdr || walship_put_node(skb))
			goto out_full;
		genlmsg_end(skb, hdr);
		cb->args[0] = 1;
	}
	list_for_each_entry(peer, &walship_peers, list)
	{
		if (++index < cb->args[0])
			continue;
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
				  &walship_family, NLM_F_MULTI, WALSHIP_CMD_GET);
		if (!hdr || walship_put_peer(skb, peer))
			goto out_full;
		genlmsg_end(skb, hdr);
		cb->args[0] = index + 1;
	}
	mutex_unlock(&walship_mutex);
	return skb->len;

out_full:
	if (hdr)
		genlmsg_cancel(skb, hdr);
	mutex_unlock(&walship_mutex);
	return skb->len;
}

static const struct nla_policy walship_policy[WALSHIP_A_MAX + 1] = {
	[WALSHIP_A_ROLE] = NLA_POLICY_MAX(NLA_U32, WALSHIP_ROLE_MAX),
	[WALSHIP_A_NODE_NAME] = { .type = NLA_NUL_STRING, .len = WALSHIP_NAME_MAX },
	[WALSHIP_A_SYSTEM_IDENTIFIER] = { .type = NLA_U64 },
	[WALSHIP_A_TIMELINE] = { .type = NLA_U32 },
	[WALSHIP_A_PEER_NAME] = { .type = NLA_NUL_STRING, .len = WALSHIP_NAME_MAX },
	[WALSHIP_A_PEER_STATE] = NLA_POLICY_MAX(NLA_U32, WALSHIP_PEER_MAX),
	[WALSHIP_A_PEER_SENT_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_WRITE_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_FLUSH_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_LAG_BYTES] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_LAG_USEC] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_SEGMENTS_SENT] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_BYTES_SENT] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_RECONNECTS] = { .type = NLA_U64 },
};

static const struct genl_small_ops walship_ops[] = {
	{
		.cmd = WALSHIP_CMD_SET_NODE,
		.doit = walship_set_node,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = WALSHIP_CMD_SET_PEER,
		.doit = walship_set_peer,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = WALSHIP_CMD_DEL_PEER,
		.doit = walship_del_peer,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = WALSHIP_CMD_GET,
		.dumpit = walship_get_dump,
	},
};

static const struct genl_multicast_group walship_mcgrps[] = {
	{ .name = WALSHIP_GENL_MCGRP },
};

static struct genl_family walship_family __ro_after_init = {
	.name = WALSHIP_GENL_NAME,
	.version = WALSHIP_GENL_VERSION,
	.maxattr = WALSHIP_A_MAX,
	.policy = walship_policy,
	.small_ops = walship_ops,
	.n_small_ops = ARRAY_SIZE(walship_ops),
	.resv_start_op = 0, /* strict validation for every command */
	.mcgrps = walship_mcgrps,
	.n_mcgrps = ARRAY_SIZE(walship_mcgrps),
	.module = THIS_MODULE,
};

/* The publisher's socket closed (exit, crash, close): its numbers are no longer live. */
static int walship_netlink_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	struct netlink_notify *n = ptr;

	if (event != NETLINK_URELEASE || n->protocol != NETLINK_GENERIC ||
	    !net_eq(n->net, &init_net))
		return NOTIFY_DONE;
	mutex_lock(&walship_mutex);
	if (walship_owner_portid && n->portid == walship_owner_portid)
		walship_publisher_gone();
	mutex_unlock(&walship_mutex);
	return NOTIFY_DONE;
}

static struct notifier_block walship_netlink_notifier = {
	.notifier_call = walship_netlink_event,
};

static int __init walship_init(void)
{
	int err;

	walship_kobj = kobject_create_and_add("walship", kernel_kobj);
	if (!walship_kobj)
		return -ENOMEM;
	err = sysfs_create_group(walship_kobj, &walship_node_group);
	if (err)
		goto out_put_kobj;
	walship_peers_kobj = kobject_create_and_add("peers", walship_kobj);
	if (!walship_peers_kobj) {
		err = -ENOMEM;
		goto out_put_kobj;
	}
	err = netlink_register_notifier(&walship_netlink_notifier);
	if (err)
		goto out_put_peers;
	err = genl_register_family(&walship_family);
	if (err) {
		pr_err("could not register generic netlink family \"%s\": %d\n", WALSHIP_GENL_NAME,
		       err);
		goto out_unregister_notifier;
	}
	pr_info("version %s loaded, generic netlink family \"%s\" version %d\n", WALSHIP_VERSION,
		WALSHIP_GENL_NAME, WALSHIP_GENL_VERSION);
	return 0;

out_unregister_notifier:
	netlink_unregister_notifier(&walship_netlink_notifier);
out_put_peers:
	kobject_put(walship_peers_kobj);
out_put_kobj:
	kobject_put(walship_kobj);
	return err;
}

static void __exit walship_exit(void)
{
	struct walship_peer *peer, *tmp;

	/* No handler runs after this returns, so the list is ours alone. */
	genl_unregister_family(&walship_family);
	netlink_unregister_notifier(&walship_netlink_notifier);
	mutex_lock(&walship_mutex);
	list_for_each_entry_safe(peer, tmp, &walship_peers, list) walship_peer_free(peer);
	mutex_unlock(&walship_mutex);
	kobject_put(walship_peers_kobj);
	kobject_put(walship_kobj);
}

module_init(walship_init);
module_exit(walship_exit);

MODULE_LICENSE("Dual MIT/GPL");
MODULE_AUTHOR("walship");
MODULE_DESCRIPTION("walship replication state in sysfs, fed over generic netlink");
MODULE_VERSION(WALSHIP_VERSION);
