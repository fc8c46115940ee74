// SPDX-License-Identifier: MIT
/* Unit tests for daemon/common/hba.c: the access-rule parser and matcher. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/hba.h"
#include "common/log.h"
#include "log_capture.h"

#define SRC "/etc/walship/hba.conf"

static int setup(void **state)
{
	(void)state;
	log_capture_start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_capture_stop();
	return 0;
}

static struct hba_table *parse_ok(const char *text)
{
	struct hba_table *table = NULL;

	log_capture_clear();
	if (hba_parse_string(text, SRC, &table) != 0)
		fail_msg("rules did not parse:\n%s\nlog:\n%s", text, captured);
	assert_non_null(table);
	return table;
}

/* Parse @text, expect -EINVAL and @message in the log. */
static void parse_fails(const char *text, const char *message)
{
	struct hba_table *table = NULL;

	log_capture_clear();
	assert_int_equal(hba_parse_string(text, SRC, &table), -EINVAL);
	assert_null(table);
	assert_logged(message);
}

/* Storage for a request's address. */
struct addr {
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	};
};

static const struct sockaddr *make_addr(struct addr *a, const char *text)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &a->in4.sin_addr) == 1) {
		a->in4.sin_family = AF_INET;
		return &a->sa;
	}
	assert_int_equal(inet_pton(AF_INET6, text, &a->in6.sin6_addr), 1);
	a->in6.sin6_family = AF_INET6;
	return &a->sa;
}

/* Match and return the deciding line (0: none), checking the verdict is @allow. */
static int match_line(const struct hba_table *table, enum hba_role role, const char *node,
		      const char *cert, const char *address, bool allow)
{
	struct hba_request req = { .role = role, .node_name = node, .cert_name = cert };
	struct hba_match match;
	struct addr a;

	req.addr = address ? make_addr(&a, address) : NULL;
	assert_int_equal(hba_match(table, &req, &match), allow ? HBA_ALLOW : HBA_DENY);
	assert_int_equal(match.verdict, allow ? HBA_ALLOW : HBA_DENY);
	return match.line;
}

static const char example[] =
	"# TYPE     ROLE     NODE_NAME  CERT_NAME        ADDRESS\n"
	"hostssl    replica  r1         r1.example.net   10.0.0.0/24   # the first replica\n"
	"\n"
	"host       replica  r2,r3      all              10.0.1.0/24\n"
	"hostssl    replica  all        samenode         fd00:77::/64\n"
	"hostnossl  replica  lab        all              127.0.0.1\n"
	"reject     all      bad        all              all\n"
	"host       primary  up         all              10.0.9.9/32\n"
	"reject     replica  all        all              0.0.0.0/0\n";

/* The example of docs/security.md: each rule, first match wins. */
static void test_example(void **state)
{
	struct hba_table *table = parse_ok(example);

	(void)state;
	assert_int_equal(table->count, 7);
	assert_string_equal(table->source, SRC);
	assert_int_equal(table->rules[0].line, 2);
	assert_int_equal(table->rules[1].line, 4);

	/* hostssl with a named certificate. */
	assert_int_equal(
		match_line(table, HBA_ROLE_REPLICA, "r1", "r1.example.net", "10.0.0.7", true), 2);
	/* Wrong certificate, no certificate, wrong network: falls through to the reject. */
	assert_int_equal(
		match_line(table, HBA_ROLE_REPLICA, "r1", "r2.example.net", "10.0.0.7", false), 9);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r1", NULL, "10.0.0.7", false), 9);
	assert_int_equal(
		match_line(table, HBA_ROLE_REPLICA, "r1", "r1.example.net", "10.0.1.7", false), 9);
	/* host: with or without a certificate; lists. */
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r3", NULL, "10.0.1.200", true), 4);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r2", "x", "10.0.1.1", true), 4);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r4", NULL, "10.0.1.1", false), 9);
	/* samenode over IPv6. */
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r9", "r9", "fd00:77::9", true), 5);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r9", "r8", "fd00:77::9", false), 0);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r9", "r9", "fd00:78::9", false), 0);
	/* hostnossl: plaintext only; a bare address is a /32. */
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "lab", NULL, "127.0.0.1", true), 6);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "lab", "lab", "127.0.0.1", false), 9);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "lab", NULL, "127.0.0.2", false), 9);
	/* reject all roles, any address, IPv6 included. */
	assert_int_equal(match_line(table, HBA_ROLE_PRIMARY, "bad", NULL, "::1", false), 7);
	/* Roles. */
	assert_int_equal(match_line(table, HBA_ROLE_PRIMARY, "up", NULL, "10.0.9.9", true), 8);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "up", NULL, "10.0.9.9", false), 9);
	assert_int_equal(match_line(table, HBA_ROLE_PRIMARY, "up", NULL, "10.0.9.8", false), 0);
	hba_free(table);
}

/* A standby (pg_listen) is admitted only by a rule naming role standby, never by `all`. */
static void test_standby(void **state)
{
	struct hba_table *table = parse_ok("host all all all 10.0.0.0/8\n"
					   "hostnossl standby repl all 10.1.0.0/16\n");

	(void)state;
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r1", NULL, "10.1.0.2", true), 1);
	assert_int_equal(match_line(table, HBA_ROLE_STANDBY, "repl", NULL, "10.1.0.2", true), 2);
	assert_int_equal(match_line(table, HBA_ROLE_STANDBY, "other", NULL, "10.1.0.2", false), 0);
	assert_int_equal(match_line(table, HBA_ROLE_STANDBY, "repl", NULL, "10.2.0.2", false), 0);
	hba_free(table);
}

/* Standby methods, and hostssl/hostnossl for a standby over TLS without a certificate. */
static void test_standby_methods(void **state)
{
	struct hba_table *table = parse_ok("hostssl standby certuser all all cert\n"
					   "hostssl standby all all all scram-sha-256\n"
					   "hostnossl standby all all 10.1.0.0/16\n");
	struct hba_request req = { .role = HBA_ROLE_STANDBY, .node_name = "u" };
	struct hba_match match;
	struct addr a;

	(void)state;
	req.addr = make_addr(&a, "10.1.0.2");
	assert_int_equal(table->rules[0].method, HBA_METHOD_CERT);
	assert_int_equal(table->rules[1].method, HBA_METHOD_SCRAM);
	assert_int_equal(table->rules[2].method, HBA_METHOD_TRUST);
	assert_string_equal(hba_method_name(HBA_METHOD_SCRAM), "scram-sha-256");
	/* plaintext: the hostnossl rule */
	assert_int_equal(hba_match(table, &req, &match), HBA_ALLOW);
	assert_int_equal(match.line, 3);
	/* TLS without a certificate: hostssl matches */
	req.tls = true;
	assert_int_equal(hba_match(table, &req, &match), HBA_ALLOW);
	assert_int_equal(match.line, 2);
	req.node_name = "certuser";
	assert_int_equal(hba_match(table, &req, &match), HBA_ALLOW);
	assert_int_equal(match.line, 1);
	/* a certificate implies TLS */
	req.tls = false;
	req.cert_name = "certuser";
	assert_int_equal(hba_match(table, &req, &match), HBA_ALLOW);
	assert_int_equal(match.line, 1);
	hba_free(table);
}

/* An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d and matches IPv4 rules. */
static void test_v4_mapped(void **state)
{
	struct hba_table *table = parse_ok("host replica all all 192.168.7.0/24\n"
					   "host replica all all ::/0\n");

	(void)state;
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "a", NULL, "::ffff:192.168.7.3", true),
			 1);
	/* ::/0 is IPv6 only: an IPv4 address, mapped or not, outside rule 1 matches nothing. */
	assert_int_equal(
		match_line(table, HBA_ROLE_REPLICA, "a", NULL, "::ffff:192.168.8.3", false), 0);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "a", NULL, "192.168.8.3", false), 0);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "a", NULL, "fd00::1", true), 2);
	hba_free(table);
}

/* Prefixes that do not fall on a byte boundary, and /0. */
static void test_prefixes(void **state)
{
	struct hba_table *table = parse_ok("host replica all all 10.1.2.128/25\n"
					   "host primary all all 0.0.0.0/0\n"
					   "host replica all all 2001:db8:8000::/33\n");

	(void)state;
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "a", NULL, "10.1.2.129", true), 1);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "a", NULL, "10.1.2.127", false), 0);
	assert_int_equal(match_line(table, HBA_ROLE_PRIMARY, "a", NULL, "203.0.113.1", true), 2);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "a", NULL, "2001:db8:ffff::1", true),
			 3);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "a", NULL, "2001:db8:7fff::1", false),
			 0);
	hba_free(table);
}

/* Requests lacking a field match only rules with `all` there; bad roles match nothing. */
static void test_incomplete_requests(void **state)
{
	struct hba_table *table = parse_ok("host replica r1 all 10.0.0.0/8\n"
					   "host replica all all all\n");
	struct hba_request req = { .role = 0, .node_name = "r1" };
	struct hba_match match;

	(void)state;
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, NULL, NULL, "10.0.0.1", true), 2);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r1", NULL, NULL, true), 2);
	assert_int_equal(hba_match(table, &req, &match), HBA_DENY);
	assert_null(match.rule);
	req.role = HBA_ROLE_ALL;
	assert_int_equal(hba_match(table, &req, &match), HBA_DENY);
	assert_int_equal(hba_match(NULL, &req, &match), HBA_DENY);
	hba_free(table);
}

/* Comments, blank lines, tabs, CRLF, a last line without newline. */
static void test_layout(void **state)
{
	struct hba_table *table =
		parse_ok("  # comment\r\n\t\r\nhost\treplica\tr1\tall\t10.0.0.1#no space\r\n"
			 "reject all all all all");

	(void)state;
	assert_int_equal(table->count, 2);
	assert_int_equal(table->rules[0].line, 3);
	assert_int_equal(table->rules[1].line, 4);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "r1", NULL, "10.0.0.1", true), 3);
	hba_free(table);
}

/* Each kind of mistake, named with file and line. */
static void test_errors(void **state)
{
	(void)state;
	parse_fails("hots replica all all all\n",
		    "invalid connection type \"hots\" in file \"" SRC "\" line 1");
	assert_logged("HINT:  Valid types are host, hostssl, hostnossl and reject.");
	parse_fails("# x\nhost stanby all all all\n",
		    "invalid role \"stanby\" in file \"" SRC "\" line 2");
	parse_fails("host replica,,primary all all all\n", "empty item in role list");
	parse_fails("host replica r1/x all all\n", "invalid node name \"r1/x\"");
	parse_fails("host replica r1, all all\n", "empty item in node name list \"r1,\"");
	parse_fails("host replica all,r1 all all\n",
		    "keyword \"all\" cannot be part of a node name list");
	parse_fails("host replica r1 a,samenode all\n",
		    "keyword \"samenode\" cannot be part of a certificate name list");
	parse_fails("host replica samenode all all\n",
		    "keyword \"samenode\" cannot be part of a node name list");
	parse_fails("host replica all all 10.0.0.0/33\n",
		    "invalid IP mask \"10.0.0.0/33\" in file \"" SRC "\" line 1");
	parse_fails("host replica all all 10.0.0.1/24\n", "invalid IP mask \"10.0.0.1/24\"");
	assert_logged("DETAIL:  The address has bits set to the right of the /24 prefix.");
	parse_fails("host replica all all fd00::/129\n", "invalid IP mask \"fd00::/129\"");
	parse_fails("host replica all all 10.0.0.0/\n", "invalid IP mask \"10.0.0.0/\"");
	parse_fails("host replica all all 10.0.0.0/+8\n", "invalid IP mask \"10.0.0.0/+8\"");
	/* a mapped address would never match (peers are matched as IPv4): a reject so
	 * written would let the host in */
	parse_fails("reject replica all all ::ffff:10.0.0.9\n",
		    "IPv4-mapped IPv6 address \"::ffff:10.0.0.9\"");
	parse_fails("host replica all all ::ffff:10.0.0.0/104\n",
		    "IPv4-mapped IPv6 address \"::ffff:10.0.0.0/104\"");
	parse_fails("host replica all all db.example.net\n",
		    "invalid IP address \"db.example.net\"");
	parse_fails("host replica all all\n",
		    "end-of-line before address specification in file \"" SRC "\" line 1");
	parse_fails("host\n", "end-of-line before role specification");
	parse_fails("host replica all all all trust x\n", "too many fields");
	parse_fails("host replica all all all trust\n", "applies to role standby only");
	parse_fails("host standby all all all password\n", "invalid authentication method");
	parse_fails("host standby all all all cert\n",
		    "cert authentication is only supported on hostssl connections");
	parse_fails("hostnossl replica all r1.example.net all\n",
		    "hostnossl rule cannot name a certificate");
	parse_fails("# nothing here\n\n", "configuration file \"" SRC "\" contains no entries");
	parse_fails("", "contains no entries");
	/* Every bad line is reported, not only the first; good lines do not count. */
	parse_fails("host replica all all all\nbad\nhost x all all all\n", "line 2");
	assert_logged("invalid role \"x\" in file \"" SRC "\" line 3");
}

/* A certificate name may be long, but not beyond 255 characters. */
static void test_long_names(void **state)
{
	char text[1024], name[300];
	struct hba_table *table;

	(void)state;
	memset(name, 'c', 255);
	name[255] = '\0';
	snprintf(text, sizeof(text), "hostssl replica all %s all\n", name);
	table = parse_ok(text);
	assert_int_equal(match_line(table, HBA_ROLE_REPLICA, "n", name, "10.0.0.1", true), 1);
	hba_free(table);
	name[255] = 'c';
	name[256] = '\0';
	snprintf(text, sizeof(text), "hostssl replica all %s all\n", name);
	parse_fails(text, "invalid certificate name");
	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), "host replica %s all all\n", name);
	parse_fails(text, "invalid node name");
}

/* Refusal messages, in PostgreSQL's words. */
static void test_refusal_message(void **state)
{
	struct hba_table *table = parse_ok("reject replica bad all all\n");
	struct hba_request req = { .role = HBA_ROLE_REPLICA, .node_name = "bad" };
	struct hba_match match;
	struct addr a;
	char buf[1024];

	(void)state;
	req.addr = make_addr(&a, "10.0.0.9");
	assert_int_equal(hba_match(table, &req, &match), HBA_DENY);
	assert_string_equal(hba_format_refusal(table, &req, &match, buf, sizeof(buf)),
			    "hba_file \"" SRC "\" line 1 rejects connection for node \"bad\", "
			    "role replica, host \"10.0.0.9\", no certificate");
	req.node_name = "r3";
	req.cert_name = "r3.example.net";
	req.addr = make_addr(&a, "fd00::3");
	assert_int_equal(hba_match(table, &req, &match), HBA_DENY);
	assert_string_equal(hba_format_refusal(table, &req, &match, buf, sizeof(buf)),
			    "no hba_file entry for node \"r3\", role replica, host \"fd00::3\", "
			    "certificate \"r3.example.net\"");
	hba_free(table);
}

/* hba_load(): a file, a missing file, a NUL byte. */
static void test_load(void **state)
{
	char path[] = "/tmp/hba_test.XXXXXX";
	struct hba_table *table = NULL;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "host replica all all all\n", 25), 25);
	assert_int_equal(hba_load(path, &table), 0);
	assert_string_equal(table->source, path);
	hba_free(table);
	table = NULL;
	assert_int_equal(write(fd, "\0", 1), 1);
	assert_int_equal(hba_load(path, &table), -EINVAL);
	assert_logged("invalid NUL byte in file");
	close(fd);
	unlink(path);
	assert_int_equal(hba_load(path, &table), -ENOENT);
	assert_logged("could not open file");
	assert_null(table);
	hba_free(NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_example),	 T(test_v4_mapped), T(test_standby_methods),
		T(test_standby),	 T(test_prefixes),  T(test_incomplete_requests),
		T(test_layout),		 T(test_errors),    T(test_long_names),
		T(test_refusal_message), T(test_load),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
