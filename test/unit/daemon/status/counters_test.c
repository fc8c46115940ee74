// SPDX-License-Identifier: MIT
/*
 * Every status counter (the tables STATUS_NODE_VALUES and STATUS_PEER_VALUES in
 * daemon/status/status.h) reaches every place that shows it: the text of `walship
 * status` (daemon/status/status.c), its JSON, and /metrics (daemon/metrics/metrics.c).
 * Each value is given a distinct seven-digit number, and each number must appear.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/metrics.h"
#include "ring/ring.h"
#include "status/status.h"

#define NODE_BASE 7100000u
#define PEER_BASE 7200000u

static void set_value(void *base, const struct status_value *v, uint64_t value)
{
	*(uint64_t *)((char *)base + v->offset) = value;
}

/* A node of @role with one peer, every value distinct.  The peers array is malloc'd. */
static void fill_node(struct status_node *n, const char *role)
{
	memset(n, 0, sizeof(*n));
	n->role = role;
	snprintf(n->node_name, sizeof(n->node_name), "n1");
	for (size_t i = 0; i < status_node_nvalues; i++)
		set_value(n, &status_node_values[i], NODE_BASE + 13 * i);
	n->peers = calloc(1, sizeof(*n->peers));
	assert_non_null(n->peers);
	n->npeers = 1;
	snprintf(n->peers[0].name, sizeof(n->peers[0].name), "p1");
	snprintf(n->peers[0].addr, sizeof(n->peers[0].addr), "10.0.0.2:5480");
	n->peers[0].state = WALSHIP_PEER_STREAMING;
	for (size_t i = 0; i < status_peer_nvalues; i++)
		set_value(&n->peers[0], &status_peer_values[i], PEER_BASE + 13 * i);
}

static char *render(const char *role, bool json)
{
	struct status_node n;
	size_t len;
	char *text;

	fill_node(&n, role);
	text = status_render(&n, json, &len);
	status_node_release(&n);
	assert_non_null(text);
	return text;
}

/* /metrics as metrics_render() writes it for a node filled by @fill (freed by the caller). */
static char *render_metrics(void (*fill)(void *state, struct status_node *n))
{
	struct ring r;
	struct metrics_source src = { .ring = &r, .fill = fill };
	char *doc = NULL;
	size_t len = 0;
	FILE *out;

	memset(&r, 0, sizeof(r));
	out = open_memstream(&doc, &len);
	assert_non_null(out);
	metrics_render(out, &src);
	fclose(out);
	assert_non_null(doc);
	return doc;
}

static void test_json_has_every_value(void **state)
{
	char *json = render("primary", true);
	char want[128];

	(void)state;
	for (size_t i = 0; i < status_node_nvalues; i++) {
		snprintf(want, sizeof(want), "\"%s\":%zu", status_node_values[i].name,
			 (size_t)(NODE_BASE + 13 * i));
		if (!strstr(json, want))
			fail_msg("walship status --json lacks %s", want);
	}
	for (size_t i = 0; i < status_peer_nvalues; i++) {
		snprintf(want, sizeof(want), "\"%s\":%zu", status_peer_values[i].name,
			 (size_t)(PEER_BASE + 13 * i));
		if (!strstr(json, want))
			fail_msg("walship status --json lacks the peer's %s", want);
	}
	free(json);
}

/* A value may be said by one role's text only (files_stored by a replica's, the spool's
 * by a primary's), but by one of them. */
static void test_text_has_every_value(void **state)
{
	char *primary = render("primary", false);
	char *replica = render("replica", false);
	char want[32];

	(void)state;
	for (size_t i = 0; i < status_node_nvalues; i++) {
		snprintf(want, sizeof(want), "%zu", (size_t)(NODE_BASE + 13 * i));
		if (!strstr(primary, want) && !strstr(replica, want))
			fail_msg("walship status says nothing of %s", status_node_values[i].name);
	}
	for (size_t i = 0; i < status_peer_nvalues; i++) {
		snprintf(want, sizeof(want), "%zu", (size_t)(PEER_BASE + 13 * i));
		if (!strstr(primary, want) && !strstr(replica, want))
			fail_msg("walship status says nothing of the peer's %s",
				 status_peer_values[i].name);
	}
	free(primary);
	free(replica);
}

static void fill_primary(void *state, struct status_node *n)
{
	(void)state;
	fill_node(n, "primary");
}

static bool ends_with(const char *text, const char *suffix)
{
	size_t len = strlen(text), slen = strlen(suffix);

	return len >= slen && strcmp(text + len - slen, suffix) == 0;
}

/* Prometheus' naming conventions: a counter ends in _total and nothing else does; a
 * quantity of bytes (a name saying "bytes" or an LSN) ends in _bytes before any _total;
 * help text on every family (checked where the document is parsed, t_92b). */
static void check_convention(const char *name, const struct status_value *v)
{
	char base[128];

	if ((v->kind == STATUS_COUNTER) != ends_with(name, "_total"))
		fail_msg("%s: a counter ends in _total, a gauge does not", name);
	snprintf(base, sizeof(base), "%s", name);
	if (ends_with(base, "_total"))
		base[strlen(base) - strlen("_total")] = '\0';
	if ((strstr(base, "bytes") || ends_with(base, "_lsn")) && !ends_with(base, "_bytes"))
		fail_msg("%s: a quantity of bytes ends in _bytes (before _total)", name);
}

static void test_metrics_have_every_value(void **state)
{
	char name[96];
	char *doc = NULL;
	char want[160];

	(void)state;
	doc = render_metrics(fill_primary);
	for (size_t i = 0; i < status_node_nvalues; i++) {
		const struct status_value *v = &status_node_values[i];

		metrics_value_name(name, sizeof(name), "walship_", v);
		check_convention(name, v);
		snprintf(want, sizeof(want), "\n%s %zu\n", name, (size_t)(NODE_BASE + 13 * i));
		if (!strstr(doc, want))
			fail_msg("/metrics lacks%s", want);
	}
	for (size_t i = 0; i < status_peer_nvalues; i++) {
		const struct status_value *v = &status_peer_values[i];

		metrics_value_name(name, sizeof(name), "walship_peer_", v);
		check_convention(name, v);
		snprintf(want, sizeof(want), "\n%s{peer=\"p1\",addr=\"10.0.0.2:5480\"} %zu\n", name,
			 (size_t)(PEER_BASE + 13 * i));
		if (!strstr(doc, want))
			fail_msg("/metrics lacks%s", want);
	}
	assert_non_null(strstr(doc, "\nwalship_peer_state{peer=\"p1\",addr=\"10.0.0.2:5480\","
				    "state=\"streaming\"} 1\n"));
	assert_non_null(strstr(doc, "\nwalship_peer_state{peer=\"p1\",addr=\"10.0.0.2:5480\","
				    "state=\"away\"} 0\n"));
	free(doc);
}

/* A standby on pg_listen appears in the text and the JSON with its positions. */
static void test_standbys(void **state)
{
	struct status_node n;
	struct status_standby *sb;
	size_t len;
	char *text, *json;

	(void)state;
	fill_node(&n, "replica");
	n.standbys = calloc(1, sizeof(*n.standbys));
	assert_non_null(n.standbys);
	n.nstandbys = 1;
	sb = &n.standbys[0];
	snprintf(sb->user, sizeof(sb->user), "repl");
	snprintf(sb->application_name, sizeof(sb->application_name), "sb1");
	snprintf(sb->addr, sizeof(sb->addr), "10.0.0.3:41000");
	snprintf(sb->state, sizeof(sb->state), "streaming");
	sb->timeline = 2;
	sb->sent_lsn = 0x4A30000;
	sb->write_lsn = 0x4A20000;
	sb->flush_lsn = 0x4A10000;
	sb->apply_lsn = 0x4A00000;
	sb->xmin = 747;
	text = status_render(&n, false, &len);
	json = status_render(&n, true, &len);
	status_node_release(&n);
	assert_non_null(text);
	assert_non_null(json);
	assert_non_null(strstr(text, "standby sb1 (user repl, 10.0.0.3:41000): streaming on "
				     "timeline 2"));
	assert_non_null(strstr(text, "sent 0/4A30000, write 0/4A20000, flush 0/4A10000, replay "
				     "0/4A00000"));
	assert_non_null(strstr(json, "\"standbys\":[{\"user\":\"repl\",\"application_name\":"
				     "\"sb1\""));
	assert_non_null(strstr(json, "\"flush_lsn\":\"0/4A10000\",\"replay_lsn\":\"0/4A00000\""));
	assert_non_null(strstr(json, "\"xmin\":747,\"catalog_xmin\":0"));
	assert_non_null(strstr(text, "hot standby feedback: xmin 747, catalog xmin 0"));
	free(text);
	free(json);
}

/* A user name a standby sent before its authentication, not UTF-8 (or cut inside a
 * character): the JSON stays valid UTF-8 (U+FFFD for each stray byte), the text shows
 * '?' for it and for a C1 control (JSON may hold one as it is), and keeps well-formed
 * characters. */
static void test_standby_names_not_utf8(void **state)
{
	struct status_node n;
	size_t len;
	char *text, *json;

	(void)state;
	fill_node(&n, "replica");
	n.standbys = calloc(1, sizeof(*n.standbys));
	assert_non_null(n.standbys);
	n.nstandbys = 1;
	snprintf(n.standbys[0].user, sizeof(n.standbys[0].user), "r\xc3\xa9\xff\xc2\x9b\xe2\x82");
	snprintf(n.standbys[0].application_name, sizeof(n.standbys[0].application_name),
		 "sb\x1b[2J1");
	snprintf(n.standbys[0].state, sizeof(n.standbys[0].state), "startup");
	/* texts a peer sent (an upstream's ERROR, a replica's ACK): no escape sequence
	 * reaches the terminal either */
	snprintf(n.last_error, sizeof(n.last_error), "upstream says \x1b]0;owned\x07");
	snprintf(n.last_conflict, sizeof(n.last_conflict), "conflict \x1b[1A");
	text = status_render(&n, false, &len);
	json = status_render(&n, true, &len);
	status_node_release(&n);
	assert_non_null(text);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"user\":\"r\xc3\xa9\\ufffd\xc2\x9b\\ufffd\\ufffd\""));
	assert_non_null(strstr(text, "(user r\xc3\xa9????,"));
	assert_non_null(strstr(text, "standby sb?[2J1 (user"));
	assert_non_null(strstr(text, "last error:          upstream says ?]0;owned?\n"));
	assert_non_null(strstr(text, "last conflict:       conflict ?[1A\n"));
	assert_null(strchr(text, '\x1b'));
	free(text);
	free(json);
}

static void fill_replica_with_standby(void *state, struct status_node *n)
{
	(void)state;
	fill_node(n, "replica");
	n->standbys = calloc(1, sizeof(*n->standbys));
	assert_non_null(n->standbys);
	n->nstandbys = 1;
	snprintf(n->standbys[0].application_name, sizeof(n->standbys[0].application_name), "sb1");
	snprintf(n->standbys[0].addr, sizeof(n->standbys[0].addr), "10.0.0.3:41000");
	n->standbys[0].flush_lsn = 0x4A10000;
	n->standbys[0].apply_lsn = 0x4A00000;
	n->standbys[0].write_lag_ms = -1;
	n->standbys[0].flush_lag_ms = 1250;
	n->standbys[0].replay_lag_ms = 2;
	n->standbys[0].xmin = 747;
	n->slots = calloc(2, sizeof(*n->slots));
	assert_non_null(n->slots);
	n->nslots = 2;
	snprintf(n->slots[0].name, sizeof(n->slots[0].name), "sb1_slot");
	n->slots[0].active = true;
	n->slots[0].restart_lsn = 0x4A10000;
	n->slots[0].retained_bytes = 0x20000;
	snprintf(n->slots[1].name, sizeof(n->slots[1].name), "idle");
}

/* ... and in /metrics. */
static void test_standbys_metrics(void **state)
{
	char *doc = NULL;

	(void)state;
	doc = render_metrics(fill_replica_with_standby);
	assert_non_null(strstr(doc, "\nwalship_standbys 1\n"));
	assert_non_null(strstr(doc, "\nwalship_standby_flush_lsn_bytes{application_name=\"sb1\","
				    "addr=\"10.0.0.3:41000\"} 77660160\n"));
	assert_non_null(strstr(doc, "\nwalship_standby_replay_lsn_bytes{application_name=\"sb1\","
				    "addr=\"10.0.0.3:41000\"} 77594624\n"));
	assert_non_null(strstr(doc, "\nwalship_standby_flush_lag_seconds{application_name=\"sb1\","
				    "addr=\"10.0.0.3:41000\"} 1.250\n"));
	assert_non_null(strstr(doc, "\nwalship_standby_replay_lag_seconds{application_name=\"sb1\","
				    "addr=\"10.0.0.3:41000\"} 0.002\n"));
	/* not reported yet: no sample (as pg_stat_replication's NULL) */
	assert_null(strstr(doc, "\nwalship_standby_write_lag_seconds{"));
	assert_non_null(strstr(doc, "\nwalship_standby_xmin{application_name=\"sb1\","
				    "addr=\"10.0.0.3:41000\"} 747\n"));
	free(doc);
}

static void fill_standby_not_utf8(void *state, struct status_node *n)
{
	fill_replica_with_standby(state, n);
	snprintf(n->standbys[0].application_name, sizeof(n->standbys[0].application_name),
		 "s\"b\xff\xe2\x82");
}

/* A label value that is not UTF-8 (Prometheus refuses the whole scrape for one): each
 * stray byte becomes U+FFFD, the quote is escaped. */
static void test_metrics_label_not_utf8(void **state)
{
	char *doc = NULL;

	(void)state;
	doc = render_metrics(fill_standby_not_utf8);
	assert_non_null(strstr(doc, "\nwalship_standby_flush_lsn_bytes{application_name="
				    "\"s\\\"b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\","));
	free(doc);
}

/* The replication slots in /metrics, like pg_replication_slots. */
static void test_slots_metrics(void **state)
{
	char *doc = NULL;

	(void)state;
	doc = render_metrics(fill_replica_with_standby);
	assert_non_null(strstr(doc, "\nwalship_slots 2\n"));
	assert_non_null(
		strstr(doc, "\nwalship_slot_restart_lsn_bytes{slot=\"sb1_slot\"} 77660160\n"));
	assert_non_null(strstr(doc, "\nwalship_slot_retained_bytes{slot=\"sb1_slot\"} 131072\n"));
	assert_non_null(strstr(doc, "\nwalship_slot_active{slot=\"sb1_slot\"} 1\n"));
	assert_non_null(strstr(doc, "\nwalship_slot_restart_lsn_bytes{slot=\"idle\"} 0\n"));
	assert_non_null(strstr(doc, "\nwalship_slot_active{slot=\"idle\"} 0\n"));
	free(doc);
}

/* Every sample of /metrics belongs to a family with # HELP and # TYPE, a counter's name ends
 * in _total and only a counter's (the text format's conventions; t_92b parses a real
 * document with the probes' histograms too). */
static void test_metrics_families_typed(void **state)
{
	char *doc = NULL, *line, *save = NULL, *copy;
	int samples = 0;

	(void)state;
	doc = render_metrics(fill_replica_with_standby);
	copy = strdup(doc);
	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128], help[160], type[160];
		const char *kind;

		if (strncmp(line, "# TYPE ", 7) == 0) {
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(line + 7, " "), line + 7);
			kind = line + 7 + strlen(name) + 1;
			if ((strcmp(kind, "counter") == 0) != ends_with(name, "_total"))
				fail_msg("%s is a %s: only counters end in _total", name, kind);
			continue;
		}
		if (line[0] == '#')
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(line, "{ "), line);
		snprintf(help, sizeof(help), "# HELP %s ", name);
		snprintf(type, sizeof(type), "# TYPE %s ", name);
		if (!strstr(doc, help) || !strstr(doc, type))
			fail_msg("/metrics: %s has no # HELP or # TYPE", name);
		samples++;
	}
	assert_true(samples > 50);
	free(copy);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_has_every_value),
		cmocka_unit_test(test_text_has_every_value),
		cmocka_unit_test(test_metrics_have_every_value),
		cmocka_unit_test(test_metrics_families_typed),
		cmocka_unit_test(test_standbys),
		cmocka_unit_test(test_standby_names_not_utf8),
		cmocka_unit_test(test_metrics_label_not_utf8),
		cmocka_unit_test(test_standbys_metrics),
		cmocka_unit_test(test_slots_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
