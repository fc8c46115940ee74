// SPDX-License-Identifier: MIT
/*
 * Unit tests for the names the sysfs publisher gives peers (daemon/publish/publish.c,
 * publish_peer_names()): a relaying replica reports its downstream replicas after its
 * upstream, and only the first peer is the upstream, kept under the name of its last
 * handshake while disconnected; a name two peers have is published once; of standbys of
 * one name, the most advanced; what a module's policy dump says it takes (a module built
 * before a state was appended takes less); why updates were refused, from the kernel's
 * replies (an overrun of the socket only when no refusal says).  The module itself is
 * tested under QEMU
 * (test/kernel/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <linux/genetlink.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>

#include "publish/publish.h"
#include "status/status.h"

static char names[WALSHIP_MAX_PEERS][WALSHIP_NAME_MAX + 1];
static unsigned int idx[WALSHIP_MAX_PEERS];

/* @n as a node of @role whose peers are named @peer_names (NULL-terminated). */
static void fill_node(struct status_node *n, const char *role, const char *const *peer_names)
{
	unsigned int count = 0;

	while (peer_names[count])
		count++;
	memset(n, 0, sizeof(*n));
	n->role = role;
	snprintf(n->node_name, sizeof(n->node_name), "r1");
	n->peers = calloc(count ? count : 1, sizeof(*n->peers));
	assert_non_null(n->peers);
	n->npeers = count;
	for (unsigned int i = 0; i < count; i++) {
		snprintf(n->peers[i].name, sizeof(n->peers[i].name), "%s", peer_names[i]);
		n->peers[i].state = WALSHIP_PEER_STREAMING;
	}
}

/* The names @pb publishes for a node of @role with the peers @peer_names. */
static unsigned int names_of(struct publisher *pb, const char *role, const char *const *peer_names)
{
	struct status_node n;
	unsigned int count;

	fill_node(&n, role, peer_names);
	count = publish_peer_names(pb, &n, names, idx);
	status_node_release(&n);
	return count;
}

/* A relay's upstream streams, then is disconnected (no name): it stays under its own
 * name, not the last downstream replica's, and no downstream is published twice. */
static void test_relay_upstream_kept(void **state)
{
	static const char *const up[] = { "p1", "r2", "r3", NULL };
	static const char *const down[] = { "", "r2", "r3", NULL };
	struct publisher *pb = publish_new();

	(void)state;
	assert_non_null(pb);
	assert_int_equal(names_of(pb, "replica", up), 3);
	assert_string_equal(names[0], "p1");
	assert_string_equal(names[1], "r2");
	assert_string_equal(names[2], "r3");
	for (int round = 0; round < 3; round++) { /* every tick alike */
		assert_int_equal(names_of(pb, "replica", down), 3);
		assert_string_equal(names[0], "p1");
		assert_int_equal(idx[0], 0);
		assert_string_equal(names[1], "r2");
		assert_int_equal(idx[1], 1);
		assert_string_equal(names[2], "r3");
		assert_int_equal(idx[2], 2);
	}
	publish_free(pb);
}

/* Before any handshake the upstream is PUBLISH_UPSTREAM_NAME, beside the downstream ones. */
static void test_relay_upstream_unnamed(void **state)
{
	static const char *const peers[] = { "", "r2", NULL };
	struct publisher *pb = publish_new();

	(void)state;
	assert_non_null(pb);
	assert_int_equal(names_of(pb, "replica", peers), 2);
	assert_string_equal(names[0], PUBLISH_UPSTREAM_NAME);
	assert_string_equal(names[1], "r2");
	publish_free(pb);
}

/* A name two peers have is published once, for the first of them; a name that is not a
 * node name, not at all. */
static void test_duplicates_dropped(void **state)
{
	static const char *const relay[] = { "p1", "r2", "r2", "p1", "no good", "", NULL };
	static const char *const primary[] = { "r1", "r1", "", "r2", NULL };
	struct publisher *pb = publish_new();

	(void)state;
	assert_non_null(pb);
	assert_int_equal(names_of(pb, "replica", relay), 2);
	assert_string_equal(names[0], "p1");
	assert_int_equal(idx[0], 0);
	assert_string_equal(names[1], "r2");
	assert_int_equal(idx[1], 1);
	assert_int_equal(names_of(pb, "primary", primary), 2);
	assert_string_equal(names[0], "r1");
	assert_int_equal(idx[0], 0);
	assert_string_equal(names[1], "r2");
	assert_int_equal(idx[1], 3);
	publish_free(pb);
}

/*
 * Of the standbys of a name, the most advanced is published: a connection still
 * authenticating under a streaming standby's name (which anyone reaching pg_listen may
 * open) does not take its place, however new; and the most advanced come first under the
 * bound, so that such connections under new names do not push streaming standbys out.
 */
static void test_standby_most_advanced(void **state)
{
	/* newest first, as the serve role lists them */
	static const char *const sbs[][2] = {
		{ "sb1", "startup" },	{ "x1", "startup" },	     { "sb2", "idle" },
		{ "sb1", "streaming" }, { "bad name", "streaming" }, { "sb2", "streaming" },
		{ "sb3", "idle" },	{ "sb3", "idle" },
	};
	struct status_node n;
	unsigned int index[WALSHIP_MAX_STANDBYS], count;

	(void)state;
	memset(&n, 0, sizeof(n));
	n.nstandbys = sizeof(sbs) / sizeof(sbs[0]);
	n.standbys = calloc(n.nstandbys, sizeof(*n.standbys));
	assert_non_null(n.standbys);
	for (unsigned int i = 0; i < n.nstandbys; i++) {
		snprintf(n.standbys[i].application_name, sizeof(n.standbys[i].application_name),
			 "%s", sbs[i][0]);
		snprintf(n.standbys[i].state, sizeof(n.standbys[i].state), "%s", sbs[i][1]);
	}
	count = publish_standby_pick(&n, index);
	assert_int_equal(count, 4);
	assert_int_equal(index[0], 3); /* sb1 streaming, not its newer startup */
	assert_int_equal(index[1], 5); /* sb2 streaming, not its newer idle */
	assert_int_equal(index[2], 6); /* sb3, the first of two idle */
	assert_int_equal(index[3], 1); /* x1, authenticating, last */
	free(n.standbys);

	/* WALSHIP_MAX_STANDBYS connections authenticating under new names, newer than a
	 * streaming standby: it is published all the same. */
	n.nstandbys = WALSHIP_MAX_STANDBYS + 1;
	n.standbys = calloc(n.nstandbys, sizeof(*n.standbys));
	assert_non_null(n.standbys);
	for (unsigned int i = 0; i < WALSHIP_MAX_STANDBYS; i++) {
		snprintf(n.standbys[i].application_name, sizeof(n.standbys[i].application_name),
			 "x%u", i);
		snprintf(n.standbys[i].state, sizeof(n.standbys[i].state), "startup");
	}
	snprintf(n.standbys[WALSHIP_MAX_STANDBYS].application_name,
		 sizeof(n.standbys[0].application_name), "sb1");
	snprintf(n.standbys[WALSHIP_MAX_STANDBYS].state, sizeof(n.standbys[0].state), "streaming");
	count = publish_standby_pick(&n, index);
	assert_int_equal(count, WALSHIP_MAX_STANDBYS);
	assert_int_equal(index[0], WALSHIP_MAX_STANDBYS);
	free(n.standbys);
}

/* One message of a CTRL_CMD_GETPOLICY dump: attribute @attr of policy @policy, an NLA_U32
 * whose maximum is @max (none when UINT64_MAX). */
static struct nl_msg *policy_msg(int policy, int attr, uint64_t max)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct nlattr *top, *pol, *a;

	assert_non_null(msg);
	assert_non_null(
		genlmsg_put(msg, 1, 1, GENL_ID_CTRL, 0, NLM_F_MULTI, CTRL_CMD_GETPOLICY, 1));
	assert_int_equal(nla_put_u16(msg, CTRL_ATTR_FAMILY_ID, 33), 0);
	top = nla_nest_start(msg, CTRL_ATTR_POLICY);
	pol = nla_nest_start(msg, policy);
	a = nla_nest_start(msg, attr);
	assert_int_equal(nla_put_u32(msg, NL_POLICY_TYPE_ATTR_TYPE, NL_ATTR_TYPE_U32), 0);
	assert_int_equal(nla_put_u64(msg, NL_POLICY_TYPE_ATTR_MIN_VALUE_U, 0), 0);
	if (max != UINT64_MAX)
		assert_int_equal(nla_put_u64(msg, NL_POLICY_TYPE_ATTR_MAX_VALUE_U, max), 0);
	nla_nest_end(msg, a);
	nla_nest_end(msg, pol);
	nla_nest_end(msg, top);
	return msg;
}

/* A module of this version takes every state this daemon sends; one built before the
 * last peer state ("away") was appended takes one less, and the publisher learns so; the
 * same attribute number in another policy (a nested attribute's), or without a maximum,
 * changes nothing, nor does a larger maximum than this daemon knows. */
static void test_policy_limits(void **state)
{
	static const struct {
		int policy, attr;
		uint64_t max;
	} msgs[] = {
		{ 0, WALSHIP_A_ROLE, WALSHIP_ROLE_MAX },
		{ 0, WALSHIP_A_PEER_STATE, WALSHIP_PEER_AWAY - 1 },
		{ 1, WALSHIP_A_STANDBY_STATE, 1 },
		{ 0, WALSHIP_A_STANDBY_STATE, UINT64_MAX },
		{ 0, WALSHIP_A_PEER_NAME, 0 },
	};
	struct publish_limits lim;

	(void)state;
	publish_limits_default(&lim);
	assert_int_equal(lim.role, WALSHIP_ROLE_MAX);
	assert_int_equal(lim.peer_state, WALSHIP_PEER_MAX);
	assert_int_equal(lim.standby_state, WALSHIP_STANDBY_MAX);
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct nl_msg *msg = policy_msg(msgs[i].policy, msgs[i].attr, msgs[i].max);

		publish_policy_parse(nlmsg_hdr(msg), &lim);
		nlmsg_free(msg);
	}
	assert_int_equal(lim.role, WALSHIP_ROLE_MAX);
	assert_int_equal(lim.peer_state, WALSHIP_PEER_AWAY - 1);
	assert_int_equal(lim.standby_state, WALSHIP_STANDBY_MAX);

	/* a newer module's larger maximum: still only what this daemon knows */
	struct nl_msg *msg = policy_msg(0, WALSHIP_A_STANDBY_STATE, WALSHIP_STANDBY_MAX + 5);

	publish_policy_parse(nlmsg_hdr(msg), &lim);
	nlmsg_free(msg);
	assert_int_equal(lim.standby_state, WALSHIP_STANDBY_MAX);
}

/* Why updates were refused, from the replies drained: an overrun (ENOBUFS, libnl's
 * NLE_NOMEM, read first) is no reason when a refusal says one (the build before logged
 * a burst refused for lack of CAP_NET_ADMIN as "Out of memory" and retried every 2 s);
 * another publisher and no permission win wherever they come. */
static void test_refusal_reason(void **state)
{
	const int denied[] = { -NLE_NOMEM, -NLE_PERM, -NLE_PERM };
	const int busy_late[] = { -NLE_INVAL, -NLE_NOMEM, -NLE_BUSY };
	const int both[] = { -NLE_PERM, -NLE_BUSY };
	const int overrun[] = { -NLE_NOMEM, 0 };
	const int other[] = { 0, -NLE_NOMEM, -NLE_INVAL, -NLE_RANGE };
	const int fine[] = { 0, 0 };

	(void)state;
	assert_int_equal(publish_refusal_reason(denied, 3), -NLE_PERM);
	assert_int_equal(publish_refusal_reason(busy_late, 3), -NLE_BUSY);
	assert_int_equal(publish_refusal_reason(both, 2), -NLE_BUSY);
	assert_int_equal(publish_refusal_reason(overrun, 2), -NLE_NOMEM);
	assert_int_equal(publish_refusal_reason(other, 4), -NLE_INVAL);
	assert_int_equal(publish_refusal_reason(fine, 2), 0);
	assert_int_equal(publish_refusal_reason(NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_upstream_kept),
		cmocka_unit_test(test_relay_upstream_unnamed),
		cmocka_unit_test(test_duplicates_dropped),
		cmocka_unit_test(test_standby_most_advanced),
		cmocka_unit_test(test_policy_limits),
		cmocka_unit_test(test_refusal_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
