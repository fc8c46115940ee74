// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * walship.ko: walshipd's replication state under /sys/kernel/walship/, fed over the
 * generic netlink family "walship" (include/walship/netlink.h, docs/sysfs.md).
 *
 *   /sys/kernel/walship/{version,daemon,role,node_name,system_identifier,timeline}
 *   /sys/kernel/walship/peers/<name>/{state,sent_lsn,write_lsn,flush_lsn,lag_bytes,
 *       lag_us,segments_sent,bytes_sent,reconnects,commits_waiting,last_update_ns}
 *   /sys/kernel/walship/standbys/<application_name>/{state,sent_lsn,write_lsn,flush_lsn,
 *       replay_lsn,write_lag_ms,flush_lag_ms,replay_lag_ms,xmin,catalog_xmin,bytes_sent,
 *       delay_ms,hold,send_limit,last_update_ns}
 *
 * The module holds no replication logic: it keeps what the publishing daemon last said
 * and forgets that it was live when the daemon's netlink socket closes (daemon "none",
 * every peer and standby "unknown").
 *
 * Peers and standbys are entries of a directory (struct walship_dir): the same name rule,
 * bound, creation, lookup, removal, dump and events for both; only their values differ.
 *
 * Locking: walship_mutex serialises changes to the structure (the entry lists, kobjects,
 * the publisher's identity) and is taken by the netlink handlers and the socket release
 * notifier.  walship_values_lock (a spinlock) guards the values that show() reads, so
 * show() never waits for walship_mutex: removing an entry's kobject under walship_mutex
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

/* A directory's entry: peers/<name>/ or standbys/<name>/. */
struct walship_entry {
	struct kobject kobj;
	struct list_head list; /* on its directory's list, under walship_mutex */
	char name[WALSHIP_NAME_MAX + 1];
};

struct walship_peer {
	struct walship_entry e;
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
	u64 commits_waiting;
	u64 last_update_ns;
};

struct walship_standby_values {
	u32 state;
	u64 sent_lsn;
	u64 write_lsn;
	u64 flush_lsn;
	u64 replay_lsn;
	s64 write_lag_ms;
	s64 flush_lag_ms;
	s64 replay_lag_ms;
	u32 xmin;
	u32 catalog_xmin;
	u64 bytes_sent;
	s64 delay_ms;
	char hold[WALSHIP_HOLD_MAX + 1];
	u64 send_limit;
	u64 last_update_ns;
};

struct walship_standby {
	struct walship_entry e;
	struct walship_standby_values v; /* under walship_values_lock */
};

/*
 * A directory of entries and what differs between peers and standbys: the struct that
 * embeds the entry, its sysfs type, its netlink attributes and the words of refusals
 * (extended-ack messages are static strings).
 */
struct walship_dir {
	const char *dirname;
	size_t entry_size;
	const struct kobj_type *ktype;
	int name_attr; /* WALSHIP_A_PEER_NAME, WALSHIP_A_STANDBY_NAME */
	int gone_attr;
	unsigned int max;
	const char *msg_missing;
	const char *msg_bad_name;
	const char *msg_too_many;
	const char *msg_none;
	/* the entry's values into a message (under no lock: it takes walship_values_lock) */
	int (*put)(struct sk_buff *skb, struct walship_entry *e);
	/* the publisher is gone: the entry's state "unknown", under walship_values_lock */
	void (*forget)(struct walship_entry *e);
	/* under walship_mutex */
	struct kobject *kobj;
	struct list_head list;
	unsigned int count;
};

static DEFINE_MUTEX(walship_mutex);
static DEFINE_SPINLOCK(walship_values_lock);
static struct kobject *walship_kobj;

/*
 * The publisher: the netlink socket that set the node, 0 when none (before the first
 * SET_NODE, after its socket closed).  Written under walship_mutex; the release notifier
 * reads it without the lock first, as it runs for every generic netlink socket closed.
 */
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

/* ---- sysfs: peer and standby attributes ---- */

static struct walship_entry *to_entry(struct kobject *kobj)
{
	return container_of(kobj, struct walship_entry, kobj);
}

static struct walship_peer *to_peer(struct kobject *kobj)
{
	return container_of(to_entry(kobj), struct walship_peer, e);
}

static struct walship_standby *to_standby(struct kobject *kobj)
{
	return container_of(to_entry(kobj), struct walship_standby, e);
}

/*
 * The show() of file @file of a @kind ("peer", "standby"): the value @field read under
 * walship_values_lock, printed by @emit(buf, value).  The attribute is
 * walship_<kind>_<file>_attr.
 */
#define WALSHIP_SHOW(kind, file, type, field, emit)                                            \
	static ssize_t kind##_##file##_show(struct kobject *kobj, struct kobj_attribute *attr, \
					    char *buf)                                         \
	{                                                                                      \
		struct walship_##kind *entry = to_##kind(kobj);                                \
		type value;                                                                    \
                                                                                               \
		spin_lock(&walship_values_lock);                                               \
		value = entry->field;                                                          \
		spin_unlock(&walship_values_lock);                                             \
		return emit(buf, value);                                                       \
	}                                                                                      \
	static struct kobj_attribute walship_##kind##_##file##_attr =                          \
		__ATTR(file, 0444, kind##_##file##_show, NULL)

/* A PostgreSQL LSN as "X/X": the high and low 32 bits in upper-case hexadecimal. */
static ssize_t walship_emit_lsn(char *buf, u64 lsn)
{
	return sysfs_emit(buf, "%X/%X\n", upper_32_bits(lsn), lower_32_bits(lsn));
}

static ssize_t walship_emit_u64(char *buf, u64 value)
{
	return sysfs_emit(buf, "%llu\n", value);
}

static ssize_t walship_emit_s64(char *buf, s64 value)
{
	return sysfs_emit(buf, "%lld\n", value);
}

static ssize_t walship_emit_u32(char *buf, u32 value)
{
	return sysfs_emit(buf, "%u\n", value);
}

static ssize_t walship_emit_peer_state(char *buf, u32 state)
{
	return sysfs_emit(buf, "%s\n", walship_peer_state_name(state));
}

static ssize_t walship_emit_standby_state(char *buf, u32 state)
{
	return sysfs_emit(buf, "%s\n", walship_standby_state_name(state));
}

/* A send limit: an LSN, or "none" (U64_MAX). */
static ssize_t walship_emit_limit(char *buf, u64 lsn)
{
	return lsn == U64_MAX ? sysfs_emit(buf, "none\n") : walship_emit_lsn(buf, lsn);
}

WALSHIP_SHOW(peer, state, u32, state, walship_emit_peer_state);
WALSHIP_SHOW(peer, sent_lsn, u64, sent_lsn, walship_emit_lsn);
WALSHIP_SHOW(peer, write_lsn, u64, write_lsn, walship_emit_lsn);
WALSHIP_SHOW(peer, flush_lsn, u64, flush_lsn, walship_emit_lsn);
WALSHIP_SHOW(peer, lag_bytes, u64, lag_bytes, walship_emit_u64);
WALSHIP_SHOW(peer, lag_us, u64, lag_usec, walship_emit_u64);
WALSHIP_SHOW(peer, segments_sent, u64, segments_sent, walship_emit_u64);
WALSHIP_SHOW(peer, bytes_sent, u64, bytes_sent, walship_emit_u64);
WALSHIP_SHOW(peer, reconnects, u64, reconnects, walship_emit_u64);
WALSHIP_SHOW(peer, commits_waiting, u64, commits_waiting, walship_emit_u64);
WALSHIP_SHOW(peer, last_update_ns, u64, last_update_ns, walship_emit_u64);

static struct attribute *walship_peer_attrs[] = {
	&walship_peer_state_attr.attr,		&walship_peer_sent_lsn_attr.attr,
	&walship_peer_write_lsn_attr.attr,	&walship_peer_flush_lsn_attr.attr,
	&walship_peer_lag_bytes_attr.attr,	&walship_peer_lag_us_attr.attr,
	&walship_peer_segments_sent_attr.attr,	&walship_peer_bytes_sent_attr.attr,
	&walship_peer_reconnects_attr.attr,	&walship_peer_commits_waiting_attr.attr,
	&walship_peer_last_update_ns_attr.attr, NULL,
};
ATTRIBUTE_GROUPS(walship_peer);

WALSHIP_SHOW(standby, state, u32, v.state, walship_emit_standby_state);
WALSHIP_SHOW(standby, sent_lsn, u64, v.sent_lsn, walship_emit_lsn);
WALSHIP_SHOW(standby, write_lsn, u64, v.write_lsn, walship_emit_lsn);
WALSHIP_SHOW(standby, flush_lsn, u64, v.flush_lsn, walship_emit_lsn);
WALSHIP_SHOW(standby, replay_lsn, u64, v.replay_lsn, walship_emit_lsn);
WALSHIP_SHOW(standby, write_lag_ms, s64, v.write_lag_ms, walship_emit_s64);
WALSHIP_SHOW(standby, flush_lag_ms, s64, v.flush_lag_ms, walship_emit_s64);
WALSHIP_SHOW(standby, replay_lag_ms, s64, v.replay_lag_ms, walship_emit_s64);
WALSHIP_SHOW(standby, xmin, u32, v.xmin, walship_emit_u32);
WALSHIP_SHOW(standby, catalog_xmin, u32, v.catalog_xmin, walship_emit_u32);
WALSHIP_SHOW(standby, bytes_sent, u64, v.bytes_sent, walship_emit_u64);
WALSHIP_SHOW(standby, delay_ms, s64, v.delay_ms, walship_emit_s64);
WALSHIP_SHOW(standby, send_limit, u64, v.send_limit, walship_emit_limit);
WALSHIP_SHOW(standby, last_update_ns, u64, v.last_update_ns, walship_emit_u64);

static ssize_t standby_hold_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct walship_standby *sb = to_standby(kobj);
	ssize_t len;

	spin_lock(&walship_values_lock);
	len = sysfs_emit(buf, "%s\n", sb->v.hold);
	spin_unlock(&walship_values_lock);
	return len;
}

static struct kobj_attribute walship_standby_hold_attr =
	__ATTR(hold, 0444, standby_hold_show, NULL);

static struct attribute *walship_standby_attrs[] = {
	&walship_standby_state_attr.attr,	   &walship_standby_sent_lsn_attr.attr,
	&walship_standby_write_lsn_attr.attr,	   &walship_standby_flush_lsn_attr.attr,
	&walship_standby_replay_lsn_attr.attr,	   &walship_standby_write_lag_ms_attr.attr,
	&walship_standby_flush_lag_ms_attr.attr,   &walship_standby_replay_lag_ms_attr.attr,
	&walship_standby_xmin_attr.attr,	   &walship_standby_catalog_xmin_attr.attr,
	&walship_standby_bytes_sent_attr.attr,	   &walship_standby_delay_ms_attr.attr,
	&walship_standby_hold_attr.attr,	   &walship_standby_send_limit_attr.attr,
	&walship_standby_last_update_ns_attr.attr, NULL,
};
ATTRIBUTE_GROUPS(walship_standby);

static void walship_peer_release(struct kobject *kobj)
{
	kfree(to_peer(kobj));
}

static void walship_standby_release(struct kobject *kobj)
{
	kfree(to_standby(kobj));
}

static const struct kobj_type walship_peer_ktype = {
	.release = walship_peer_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = walship_peer_groups,
};

static const struct kobj_type walship_standby_ktype = {
	.release = walship_standby_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = walship_standby_groups,
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

static int walship_put_peer(struct sk_buff *skb, struct walship_entry *e)
{
	struct walship_peer *peer = container_of(e, struct walship_peer, e);
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
	v.commits_waiting = peer->commits_waiting;
	v.last_update_ns = peer->last_update_ns;
	spin_unlock(&walship_values_lock);

	if (nla_put_string(skb, WALSHIP_A_PEER_NAME, e->name) ||
	    nla_put_u32(skb, WALSHIP_A_PEER_STATE, v.state) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_SENT_LSN, v.sent_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_WRITE_LSN, v.write_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_FLUSH_LSN, v.flush_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_LAG_BYTES, v.lag_bytes, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_LAG_USEC, v.lag_usec, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_SEGMENTS_SENT, v.segments_sent, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_BYTES_SENT, v.bytes_sent, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_RECONNECTS, v.reconnects, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_COMMITS_WAITING, v.commits_waiting,
			      WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_PEER_LAST_UPDATE, v.last_update_ns, WALSHIP_A_PAD))
		return -EMSGSIZE;
	return 0;
}

static int walship_put_standby(struct sk_buff *skb, struct walship_entry *e)
{
	struct walship_standby *sb = container_of(e, struct walship_standby, e);
	struct walship_standby_values v;

	spin_lock(&walship_values_lock);
	v = sb->v;
	spin_unlock(&walship_values_lock);

	if (nla_put_string(skb, WALSHIP_A_STANDBY_NAME, e->name) ||
	    nla_put_u32(skb, WALSHIP_A_STANDBY_STATE, v.state) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_STANDBY_SENT_LSN, v.sent_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_STANDBY_WRITE_LSN, v.write_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_STANDBY_FLUSH_LSN, v.flush_lsn, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_STANDBY_REPLAY_LSN, v.replay_lsn, WALSHIP_A_PAD) ||
	    nla_put_s64(skb, WALSHIP_A_STANDBY_WRITE_LAG_MS, v.write_lag_ms, WALSHIP_A_PAD) ||
	    nla_put_s64(skb, WALSHIP_A_STANDBY_FLUSH_LAG_MS, v.flush_lag_ms, WALSHIP_A_PAD) ||
	    nla_put_s64(skb, WALSHIP_A_STANDBY_REPLAY_LAG_MS, v.replay_lag_ms, WALSHIP_A_PAD) ||
	    nla_put_u32(skb, WALSHIP_A_STANDBY_XMIN, v.xmin) ||
	    nla_put_u32(skb, WALSHIP_A_STANDBY_CATALOG_XMIN, v.catalog_xmin) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_STANDBY_BYTES_SENT, v.bytes_sent, WALSHIP_A_PAD) ||
	    nla_put_s64(skb, WALSHIP_A_STANDBY_DELAY_MS, v.delay_ms, WALSHIP_A_PAD) ||
	    nla_put_string(skb, WALSHIP_A_STANDBY_HOLD, v.hold) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_STANDBY_SEND_LIMIT, v.send_limit, WALSHIP_A_PAD) ||
	    nla_put_u64_64bit(skb, WALSHIP_A_STANDBY_LAST_UPDATE, v.last_update_ns, WALSHIP_A_PAD))
		return -EMSGSIZE;
	return 0;
}

static void walship_peer_forget(struct walship_entry *e)
{
	container_of(e, struct walship_peer, e)->state = WALSHIP_PEER_UNKNOWN;
}

static void walship_standby_forget(struct walship_entry *e)
{
	container_of(e, struct walship_standby, e)->v.state = WALSHIP_STANDBY_UNKNOWN;
}

static struct walship_dir walship_peers = {
	.dirname = "peers",
	.entry_size = sizeof(struct walship_peer),
	.ktype = &walship_peer_ktype,
	.name_attr = WALSHIP_A_PEER_NAME,
	.gone_attr = WALSHIP_A_PEER_GONE,
	.max = WALSHIP_MAX_PEERS,
	.msg_missing = "missing peer name (WALSHIP_A_PEER_NAME)",
	.msg_bad_name = "peer name must be " WALSHIP_NODE_NAME_RULE,
	.msg_too_many = "too many peers: the module keeps at most " __stringify(WALSHIP_MAX_PEERS),
	.msg_none = "no such peer",
	.put = walship_put_peer,
	.forget = walship_peer_forget,
	.list = LIST_HEAD_INIT(walship_peers.list),
};

static struct walship_dir walship_standbys = {
	.dirname = "standbys",
	.entry_size = sizeof(struct walship_standby),
	.ktype = &walship_standby_ktype,
	.name_attr = WALSHIP_A_STANDBY_NAME,
	.gone_attr = WALSHIP_A_STANDBY_GONE,
	.max = WALSHIP_MAX_STANDBYS,
	.msg_missing = "missing standby name (WALSHIP_A_STANDBY_NAME)",
	.msg_bad_name = "standby name must be " WALSHIP_NODE_NAME_RULE,
	.msg_too_many =
		"too many standbys: the module keeps at most " __stringify(WALSHIP_MAX_STANDBYS),
	.msg_none = "no such standby",
	.put = walship_put_standby,
	.forget = walship_standby_forget,
	.list = LIST_HEAD_INIT(walship_standbys.list),
};

static struct walship_dir *const walship_dirs[] = { &walship_peers, &walship_standbys };

/*
 * Announce a change on the "events" group: the node (@dir NULL), an entry of @dir, or a
 * removed one (@gone_name).  Best effort: an event that cannot be built is dropped, since
 * the state itself is always in sysfs and in a WALSHIP_CMD_GET dump.
 */
static void walship_notify(struct walship_dir *dir, struct walship_entry *e, const char *gone_name)
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
		err = nla_put_string(skb, dir->name_attr, gone_name) ||
		      nla_put_flag(skb, dir->gone_attr);
	else if (e)
		err = dir->put(skb, e);
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

static struct walship_entry *walship_entry_find(struct walship_dir *dir, const char *name)
{
	struct walship_entry *e;

	list_for_each_entry(e, &dir->list, list) if (!strcmp(e->name, name)) return e;
	return NULL;
}

/* Mark the publisher gone: daemon "none", every entry "unknown".  Under walship_mutex. */
static void walship_publisher_gone(void)
{
	struct walship_entry *e;
	unsigned int i;

	WRITE_ONCE(walship_owner_portid, 0);
	spin_lock(&walship_values_lock);
	walship_daemon_pid = 0;
	for (i = 0; i < ARRAY_SIZE(walship_dirs); i++)
		list_for_each_entry(e, &walship_dirs[i]->list, list) walship_dirs[i]->forget(e);
	spin_unlock(&walship_values_lock);

	sysfs_notify(walship_kobj, NULL, "daemon");
	walship_notify(NULL, NULL, NULL);
	for (i = 0; i < ARRAY_SIZE(walship_dirs); i++) {
		list_for_each_entry(e, &walship_dirs[i]->list, list)
		{
			sysfs_notify(&e->kobj, NULL, "state");
			walship_notify(walship_dirs[i], e, NULL);
		}
	}
}

/*
 * While a publisher's socket is open, only it changes the state: a second daemon (two
 * walshipd publishing on one host) is refused instead of mixing its node and peers with
 * the first's and taking the publisher's place from it.  Any sender may change the state
 * when there is no publisher.  Under walship_mutex.
 */
static int walship_check_publisher(struct genl_info *info)
{
	if (!walship_owner_portid || walship_owner_portid == info->snd_portid)
		return 0;
	NL_SET_ERR_MSG(info->extack, "another socket publishes: one publisher at a time, "
				     "until its socket closes");
	return -EBUSY;
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
	if (walship_check_publisher(info)) {
		mutex_unlock(&walship_mutex);
		return -EBUSY;
	}
	WRITE_ONCE(walship_owner_portid, info->snd_portid);
	spin_lock(&walship_values_lock);
	/* sysfs is not per PID namespace: the pid as the initial namespace numbers it */
	daemon_changed = walship_daemon_pid != task_tgid_nr(current);
	walship_daemon_pid = task_tgid_nr(current);
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
	walship_notify(NULL, NULL, NULL);
	mutex_unlock(&walship_mutex);
	return 0;
}

/*
 * NL_SET_ERR_MSG() and NL_SET_ERR_MSG_ATTR() for a message chosen at run time (they take
 * a literal): @msg must be static, as a walship_dir's are.
 */
static void walship_extack(struct netlink_ext_ack *extack, const struct nlattr *attr,
			   const char *msg)
{
	if (!extack)
		return;
	extack->_msg = msg;
	extack->bad_attr = attr;
}

/* A new entry @name of @dir, zeroed but for its name.  Under walship_mutex. */
static struct walship_entry *walship_entry_new(struct walship_dir *dir, const char *name,
					       struct netlink_ext_ack *extack)
{
	struct walship_entry *e;
	int err;

	if (dir->count >= dir->max) {
		walship_extack(extack, NULL, dir->msg_too_many);
		return ERR_PTR(-ENOSPC);
	}
	e = kzalloc(dir->entry_size, GFP_KERNEL);
	if (!e)
		return ERR_PTR(-ENOMEM);
	strscpy(e->name, name, sizeof(e->name));
	err = kobject_init_and_add(&e->kobj, dir->ktype, dir->kobj, "%s", name);
	if (err) {
		NL_SET_ERR_MSG(extack, "could not create the sysfs directory");
		kobject_put(&e->kobj);
		return ERR_PTR(err);
	}
	list_add_tail(&e->list, &dir->list);
	dir->count++;
	return e;
}

/*
 * The entry of @dir that a SET command names, created (*created set) when it does not
 * exist yet.  Validates the name.  Takes walship_mutex, which the caller releases with
 * mutex_unlock() on success; returns an ERR_PTR (mutex not held) on failure.
 */
static struct walship_entry *walship_entry_get(struct walship_dir *dir, struct genl_info *info,
					       bool *created)
{
	struct nlattr *attr = info->attrs[dir->name_attr];
	struct walship_entry *e;
	const char *name;

	*created = false;
	if (!attr) {
		walship_extack(info->extack, NULL, dir->msg_missing);
		return ERR_PTR(-EINVAL);
	}
	name = nla_data(attr);
	if (!walship_node_name_valid(name)) {
		walship_extack(info->extack, attr, dir->msg_bad_name);
		return ERR_PTR(-EINVAL);
	}

	mutex_lock(&walship_mutex);
	if (walship_check_publisher(info)) {
		mutex_unlock(&walship_mutex);
		return ERR_PTR(-EBUSY);
	}
	e = walship_entry_find(dir, name);
	if (!e) {
		e = walship_entry_new(dir, name, info->extack);
		if (IS_ERR(e)) {
			mutex_unlock(&walship_mutex);
			return e;
		}
		*created = true;
	}
	return e;
}

/* After a SET: notify poll() on "state" when it changed, and the events group. */
static void walship_entry_changed(struct walship_dir *dir, struct walship_entry *e,
				  bool state_changed)
{
	if (state_changed)
		sysfs_notify(&e->kobj, NULL, "state");
	walship_notify(dir, e, NULL);
	mutex_unlock(&walship_mutex);
}

#define WALSHIP_SET(entry, attr, field, get)               \
	do {                                               \
		if (attrs[attr])                           \
			(entry)->field = get(attrs[attr]); \
	} while (0)

static int walship_set_peer(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct walship_entry *e;
	struct walship_peer *peer;
	bool state_changed;

	e = walship_entry_get(&walship_peers, info, &state_changed);
	if (IS_ERR(e))
		return PTR_ERR(e);
	peer = container_of(e, struct walship_peer, e);

	spin_lock(&walship_values_lock);
	if (attrs[WALSHIP_A_PEER_STATE]) {
		u32 state = nla_get_u32(attrs[WALSHIP_A_PEER_STATE]);

		state_changed |= peer->state != state;
		peer->state = state;
	}
	WALSHIP_SET(peer, WALSHIP_A_PEER_SENT_LSN, sent_lsn, nla_get_u64);
	WALSHIP_SET(peer, WALSHIP_A_PEER_WRITE_LSN, write_lsn, nla_get_u64);
	WALSHIP_SET(peer, WALSHIP_A_PEER_FLUSH_LSN, flush_lsn, nla_get_u64);
	WALSHIP_SET(peer, WALSHIP_A_PEER_LAG_BYTES, lag_bytes, nla_get_u64);
	WALSHIP_SET(peer, WALSHIP_A_PEER_LAG_USEC, lag_usec, nla_get_u64);
	WALSHIP_SET(peer, WALSHIP_A_PEER_SEGMENTS_SENT, segments_sent, nla_get_u64);
	WALSHIP_SET(peer, WALSHIP_A_PEER_BYTES_SENT, bytes_sent, nla_get_u64);
	WALSHIP_SET(peer, WALSHIP_A_PEER_RECONNECTS, reconnects, nla_get_u64);
	WALSHIP_SET(peer, WALSHIP_A_PEER_COMMITS_WAITING, commits_waiting, nla_get_u64);
	peer->last_update_ns = ktime_get_real_ns();
	spin_unlock(&walship_values_lock);

	walship_entry_changed(&walship_peers, e, state_changed);
	return 0;
}

/* True if @s is one line of text: no control characters (a sysfs file is one value a line). */
static bool walship_text_valid(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int walship_set_standby(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct walship_entry *e;
	struct walship_standby_values *sb;
	bool created, state_changed;

	if (attrs[WALSHIP_A_STANDBY_HOLD] &&
	    !walship_text_valid(nla_data(attrs[WALSHIP_A_STANDBY_HOLD]))) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[WALSHIP_A_STANDBY_HOLD],
				    "hold must be one line of text, without control characters");
		return -EINVAL;
	}
	e = walship_entry_get(&walship_standbys, info, &created);
	if (IS_ERR(e))
		return PTR_ERR(e);
	sb = &container_of(e, struct walship_standby, e)->v;
	state_changed = created;

	spin_lock(&walship_values_lock);
	if (created) {
		/* what the status says before anything is reported */
		sb->write_lag_ms = -1;
		sb->flush_lag_ms = -1;
		sb->replay_lag_ms = -1;
		sb->delay_ms = -1;
		sb->send_limit = U64_MAX;
	}
	if (attrs[WALSHIP_A_STANDBY_STATE]) {
		u32 state = nla_get_u32(attrs[WALSHIP_A_STANDBY_STATE]);

		state_changed |= sb->state != state;
		sb->state = state;
	}
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_SENT_LSN, sent_lsn, nla_get_u64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_WRITE_LSN, write_lsn, nla_get_u64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_FLUSH_LSN, flush_lsn, nla_get_u64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_REPLAY_LSN, replay_lsn, nla_get_u64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_WRITE_LAG_MS, write_lag_ms, nla_get_s64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_FLUSH_LAG_MS, flush_lag_ms, nla_get_s64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_REPLAY_LAG_MS, replay_lag_ms, nla_get_s64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_XMIN, xmin, nla_get_u32);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_CATALOG_XMIN, catalog_xmin, nla_get_u32);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_BYTES_SENT, bytes_sent, nla_get_u64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_DELAY_MS, delay_ms, nla_get_s64);
	WALSHIP_SET(sb, WALSHIP_A_STANDBY_SEND_LIMIT, send_limit, nla_get_u64);
	if (attrs[WALSHIP_A_STANDBY_HOLD])
		nla_strscpy(sb->hold, attrs[WALSHIP_A_STANDBY_HOLD], sizeof(sb->hold));
	sb->last_update_ns = ktime_get_real_ns();
	spin_unlock(&walship_values_lock);

	walship_entry_changed(&walship_standbys, e, state_changed);
	return 0;
}

#undef WALSHIP_SET

/* Remove @e's directory and free it (when the last sysfs reader is done). */
static void walship_entry_free(struct walship_dir *dir, struct walship_entry *e)
{
	list_del(&e->list);
	dir->count--;
	/* Its directory goes now, not with the last reference: a reader's may outlive the
	 * module (CONFIG_DEBUG_KOBJECT_RELEASE delays every release). */
	kobject_del(&e->kobj);
	kobject_put(&e->kobj);
}

static int walship_del_entry(struct walship_dir *dir, struct genl_info *info)
{
	struct nlattr *attr = info->attrs[dir->name_attr];
	struct walship_entry *e;
	char name[WALSHIP_NAME_MAX + 1];
	int err = 0;

	if (!attr) {
		walship_extack(info->extack, NULL, dir->msg_missing);
		return -EINVAL;
	}
	nla_strscpy(name, attr, sizeof(name));

	mutex_lock(&walship_mutex);
	err = walship_check_publisher(info);
	if (err)
		goto out_unlock;
	e = walship_entry_find(dir, name);
	if (!e) {
		walship_extack(info->extack, attr, dir->msg_none);
		err = -ENOENT;
		goto out_unlock;
	}
	walship_entry_free(dir, e);
	walship_notify(dir, NULL, name);
out_unlock:
	mutex_unlock(&walship_mutex);
	return err;
}

static int walship_del_peer(struct sk_buff *skb, struct genl_info *info)
{
	return walship_del_entry(&walship_peers, info);
}

static int walship_del_standby(struct sk_buff *skb, struct genl_info *info)
{
	return walship_del_entry(&walship_standbys, info);
}

/*
 * Dump: cb->args[0] is 0 before the node's message, then 1 + the index of the next entry,
 * counting the peers, then the standbys.
 */
static int walship_get_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct walship_entry *e;
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
	for (unsigned int i = 0; i < ARRAY_SIZE(walship_dirs); i++) {
		list_for_each_entry(e, &walship_dirs[i]->list, list)
		{
			if (++index < cb->args[0])
				continue;
			hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
					  &walship_family, NLM_F_MULTI, WALSHIP_CMD_GET);
			if (!hdr || walship_dirs[i]->put(skb, e))
				goto out_full;
			genlmsg_end(skb, hdr);
			cb->args[0] = index + 1;
		}
	}
	mutex_unlock(&walship_mutex);
	return skb->len;

out_full:
	if (hdr)
		genlmsg_cancel(skb, hdr);
	mutex_unlock(&walship_mutex);
	return skb->len;
}

/*
 * The last peer state this module takes.  The tests build a module as one from before
 * the last states were appended would be (KCFLAGS=-DWALSHIP_POLICY_PEER_MAX=N), to check
 * that a newer daemon still publishes to it (docs/sysfs.md).
 */
#ifndef WALSHIP_POLICY_PEER_MAX
#define WALSHIP_POLICY_PEER_MAX WALSHIP_PEER_MAX
#endif

static const struct nla_policy walship_policy[WALSHIP_A_MAX + 1] = {
	[WALSHIP_A_ROLE] = NLA_POLICY_MAX(NLA_U32, WALSHIP_ROLE_MAX),
	[WALSHIP_A_NODE_NAME] = { .type = NLA_NUL_STRING, .len = WALSHIP_NAME_MAX },
	[WALSHIP_A_SYSTEM_IDENTIFIER] = { .type = NLA_U64 },
	[WALSHIP_A_TIMELINE] = { .type = NLA_U32 },
	[WALSHIP_A_PEER_NAME] = { .type = NLA_NUL_STRING, .len = WALSHIP_NAME_MAX },
	[WALSHIP_A_PEER_STATE] = NLA_POLICY_MAX(NLA_U32, WALSHIP_POLICY_PEER_MAX),
	[WALSHIP_A_PEER_SENT_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_WRITE_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_FLUSH_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_LAG_BYTES] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_LAG_USEC] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_SEGMENTS_SENT] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_BYTES_SENT] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_RECONNECTS] = { .type = NLA_U64 },
	[WALSHIP_A_PEER_COMMITS_WAITING] = { .type = NLA_U64 },
	[WALSHIP_A_STANDBY_NAME] = { .type = NLA_NUL_STRING, .len = WALSHIP_NAME_MAX },
	[WALSHIP_A_STANDBY_STATE] = NLA_POLICY_MAX(NLA_U32, WALSHIP_STANDBY_MAX),
	[WALSHIP_A_STANDBY_SENT_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_STANDBY_WRITE_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_STANDBY_FLUSH_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_STANDBY_REPLAY_LSN] = { .type = NLA_U64 },
	[WALSHIP_A_STANDBY_WRITE_LAG_MS] = NLA_POLICY_MIN(NLA_S64, -1),
	[WALSHIP_A_STANDBY_FLUSH_LAG_MS] = NLA_POLICY_MIN(NLA_S64, -1),
	[WALSHIP_A_STANDBY_REPLAY_LAG_MS] = NLA_POLICY_MIN(NLA_S64, -1),
	[WALSHIP_A_STANDBY_XMIN] = { .type = NLA_U32 },
	[WALSHIP_A_STANDBY_CATALOG_XMIN] = { .type = NLA_U32 },
	[WALSHIP_A_STANDBY_BYTES_SENT] = { .type = NLA_U64 },
	[WALSHIP_A_STANDBY_DELAY_MS] = NLA_POLICY_MIN(NLA_S64, -1),
	[WALSHIP_A_STANDBY_HOLD] = { .type = NLA_NUL_STRING, .len = WALSHIP_HOLD_MAX },
	[WALSHIP_A_STANDBY_SEND_LIMIT] = { .type = NLA_U64 },
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
	{
		.cmd = WALSHIP_CMD_SET_STANDBY,
		.doit = walship_set_standby,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = WALSHIP_CMD_DEL_STANDBY,
		.doit = walship_del_standby,
		.flags = GENL_ADMIN_PERM,
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
	    !net_eq(n->net, &init_net) || !n->portid ||
	    n->portid != READ_ONCE(walship_owner_portid))
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

/* Remove every entry and the directories.  No handler may run any more. */
static void walship_dirs_free(void)
{
	struct walship_entry *e, *tmp;

	mutex_lock(&walship_mutex);
	for (unsigned int i = 0; i < ARRAY_SIZE(walship_dirs); i++) {
		list_for_each_entry_safe(e, tmp, &walship_dirs[i]->list, list)
			walship_entry_free(walship_dirs[i], e);
		kobject_put(walship_dirs[i]->kobj); /* NULL: not created */
		walship_dirs[i]->kobj = NULL;
	}
	mutex_unlock(&walship_mutex);
}

static int __init walship_init(void)
{
	int err;

	walship_kobj = kobject_create_and_add("walship", kernel_kobj);
	if (!walship_kobj)
		return -ENOMEM;
	err = sysfs_create_group(walship_kobj, &walship_node_group);
	if (err)
		goto out_put_kobj;
	for (unsigned int i = 0; i < ARRAY_SIZE(walship_dirs); i++) {
		walship_dirs[i]->kobj =
			kobject_create_and_add(walship_dirs[i]->dirname, walship_kobj);
		if (!walship_dirs[i]->kobj) {
			err = -ENOMEM;
			goto out_put_dirs;
		}
	}
	err = netlink_register_notifier(&walship_netlink_notifier);
	if (err)
		goto out_put_dirs;
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
out_put_dirs:
	walship_dirs_free();
out_put_kobj:
	kobject_put(walship_kobj);
	return err;
}

static void __exit walship_exit(void)
{
	/* The notifier first: a publisher closing between the two would otherwise announce
	 * its departure on the family's group, unregistered already.  No handler runs after
	 * the family is unregistered, so the lists are ours alone. */
	netlink_unregister_notifier(&walship_netlink_notifier);
	genl_unregister_family(&walship_family);
	walship_dirs_free();
	kobject_put(walship_kobj);
}

module_init(walship_init);
module_exit(walship_exit);

MODULE_LICENSE("Dual MIT/GPL");
MODULE_AUTHOR("walship");
MODULE_DESCRIPTION("walship replication state in sysfs, fed over generic netlink");
MODULE_VERSION(WALSHIP_VERSION);
