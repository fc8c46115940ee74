// SPDX-License-Identifier: MIT
/* Unit tests for daemon/common/config.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/compiler.h"
#include "common/config.h"
#include "common/log.h"
#include "log_capture.h"

#define SRC "/etc/walship/test.conf"

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

static int parse(struct config *cfg, const char *text)
{
	config_defaults(cfg);
	log_capture_clear();
	return config_parse_string(cfg, text, SRC);
}

/* Every key and its default. */
static void test_defaults(void **state)
{
	struct config cfg;
	char host[256] = "";

	(void)state;
	config_defaults(&cfg);
	assert_true(cfg.role != CONFIG_ROLE_PRIMARY && cfg.role != CONFIG_ROLE_REPLICA);
	gethostname(host, sizeof(host) - 1);
	assert_true(strlen(cfg.node_name) >= 1 && strlen(cfg.node_name) <= 63);
	for (size_t i = 0; cfg.node_name[i]; i++) {
		char c = cfg.node_name[i];

		assert_true(isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-');
		if (host[0])
			assert_true(c == host[i] || c == '_');
	}
	assert_string_equal(cfg.listen, "0.0.0.0:5480");
	assert_string_equal(cfg.upstream, "");
	assert_string_equal(cfg.archive_dir, "");
	assert_string_equal(cfg.spool_dir, "/var/lib/walship/spool");
	assert_string_equal(cfg.socket_path, "/run/walship/walshipd.sock");
	assert_string_equal(cfg.socket_group, "");
	assert_int_equal(cfg.socket_permissions, 0660);
	assert_int_equal(cfg.max_senders, 10);
	assert_int_equal(cfg.sync_replicas, 1);
	assert_int_equal(cfg.push_timeout_ms, 60000);
	assert_int_equal(cfg.connect_timeout_ms, 10000);
	assert_int_equal(cfg.reconnect_min_ms, 100);
	assert_int_equal(cfg.reconnect_max_ms, 10000);
	assert_int_equal(cfg.max_inflight_files, 8);
	assert_int_equal(cfg.max_queued_pushes, 64);
	assert_int_equal(cfg.io_buffers, 32);
	assert_int_equal(cfg.zero_copy, CONFIG_SWITCH_AUTO);
	assert_int_equal(cfg.log_level, LOG_LEVEL_LOG);
}

/* A minimal primary file: only role; everything else stays at its default. */
static void test_minimal_primary(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "role = primary\n"), 0);
	assert_int_equal(cfg.role, CONFIG_ROLE_PRIMARY);
	assert_int_equal(cfg.max_senders, 10);
	assert_string_equal(captured, "");
}

static void test_every_key_set(void **state)
{
	struct config cfg;
	const char *text = "# a replica\n"
			   "role = replica\n"
			   "node_name = db-2.example_b\n"
			   "listen = '[::1]:6000'\n"
			   "upstream = 10.0.0.1:5480\n"
			   "archive_dir = /srv/wal\n"
			   "spool_dir = /srv/spool\n"
			   "socket = /tmp/w.sock\n"
			   "socket_group = postgres\n"
			   "socket_permissions = 0600\n"
			   "max_senders = 64\n"
			   "sync_replicas = 0\n"
			   "push_timeout = 2min\n"
			   "connect_timeout = 1500\n"
			   "reconnect_min = '1 s'\n"
			   "reconnect_max = 1h\n"
			   "max_inflight_files = 1\n"
			   "max_queued_pushes = 4096\n"
			   "io_buffers = 4\n"
			   "zero_copy = off\n"
			   "log_level = DEBUG\n";

	(void)state;
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(cfg.role, CONFIG_ROLE_REPLICA);
	assert_string_equal(cfg.node_name, "db-2.example_b");
	assert_string_equal(cfg.listen, "[::1]:6000");
	assert_string_equal(cfg.upstream, "10.0.0.1:5480");
	assert_string_equal(cfg.archive_dir, "/srv/wal");
	assert_string_equal(cfg.spool_dir, "/srv/spool");
	assert_string_equal(cfg.socket_path, "/tmp/w.sock");
	assert_string_equal(cfg.socket_group, "postgres");
	assert_int_equal(cfg.socket_permissions, 0600);
	assert_int_equal(cfg.max_senders, 64);
	assert_int_equal(cfg.sync_replicas, 0);
	assert_int_equal(cfg.push_timeout_ms, 120000);
	assert_int_equal(cfg.connect_timeout_ms, 1500);
	assert_int_equal(cfg.reconnect_min_ms, 1000);
	assert_int_equal(cfg.reconnect_max_ms, 3600000);
	assert_int_equal(cfg.max_inflight_files, 1);
	assert_int_equal(cfg.max_queued_pushes, 4096);
	assert_int_equal(cfg.io_buffers, 4);
	assert_int_equal(cfg.zero_copy, CONFIG_SWITCH_OFF);
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
	assert_string_equal(captured, "");
}

static void test_duration_units(void **state)
{
	static const struct {
		const char *text;
		int ms;
	} cases[] = {
		{ "100", 100 },		  { "100ms", 100 },	 { "1s", 1000 },
		{ "90s", 90000 },	  { "1min", 60000 },	 { "1h", 3600000 },
		{ "1d", 86400000 },	  { "'5 min'", 300000 }, { "'250 ms'", 250 },
		{ "86400000", 86400000 },
	};
	struct config cfg;
	char text[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text),
			 "role = primary\nspool_delay = 50ms\npush_timeout = %s\n", cases[i].text);
		assert_int_equal(parse(&cfg, text), 0);
		assert_int_equal(cfg.push_timeout_ms, cases[i].ms);
	}
}

static void test_zero_copy_and_octal_spellings(void **state)
{
	static const struct {
		const char *text;
		enum config_switch value;
	} zero_copy[] = {
		{ "on", CONFIG_SWITCH_ON },	{ "off", CONFIG_SWITCH_OFF },
		{ "auto", CONFIG_SWITCH_AUTO }, { "AUTO", CONFIG_SWITCH_AUTO },
		{ "true", CONFIG_SWITCH_ON },	{ "no", CONFIG_SWITCH_OFF },
		{ "1", CONFIG_SWITCH_ON },	{ "0", CONFIG_SWITCH_OFF },
		{ "yes", CONFIG_SWITCH_ON },	{ "false", CONFIG_SWITCH_OFF },
	};
	struct config cfg;
	char text[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(zero_copy); i++) {
		snprintf(text, sizeof(text), "role primary\nzero_copy %s\n", zero_copy[i].text);
		assert_int_equal(parse(&cfg, text), 0);
		assert_int_equal(cfg.zero_copy, zero_copy[i].value);
	}
	assert_int_equal(parse(&cfg, "role = primary\nsocket_permissions = 640\n"), 0);
	assert_int_equal(cfg.socket_permissions, 0640);
	assert_int_equal(parse(&cfg, "role = primary\nsocket_permissions = 0\n"), 0);
	assert_int_equal(cfg.socket_permissions, 0);
	assert_int_equal(parse(&cfg, "role = primary\nsocket_permissions = 0770\n"), 0);
	assert_int_equal(cfg.socket_permissions, 0770);
}

/* Quotes, comments, the optional "=", case, CRLF, blank lines. */
static void test_syntax_accepted(void **state)
{
	struct config cfg;
	const char *text = "\n"
			   "   # comment line\n"
			   "\t\n"
			   "ROLE primary   # trailing comment\r\n"
			   "spool_dir = '/srv/spool # not a comment' # a comment\n"
			   "socket_group='it''s'\n"
			   "archive_dir = ''\n"
			   "  max_senders=5  \n"
			   "socket = '/tmp/a b.sock'";

	(void)state;
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(cfg.role, CONFIG_ROLE_PRIMARY);
	assert_string_equal(cfg.spool_dir, "/srv/spool # not a comment");
	assert_string_equal(cfg.socket_group, "it's");
	assert_string_equal(cfg.archive_dir, "");
	assert_int_equal(cfg.max_senders, 5);
	assert_string_equal(cfg.socket_path, "/tmp/a b.sock");
	assert_string_equal(captured, "");
}

struct bad_case {
	const char *line;
	const char *message;
	const char *extra; /* a DETAIL or HINT that must follow, or NULL */
};

/* Each bad value on line 3, after a comment and role: the message names file and line. */
static void test_bad_values(void **state)
{
	static const struct bad_case cases[] = {
		{ "max_senders = abc", "invalid value for parameter \"max_senders\": \"abc\"",
		  "HINT:  Valid values are integers between 1 and 64." },
		{ "max_senders = 65", "invalid value for parameter \"max_senders\": \"65\"",
		  "DETAIL:  The value is outside the valid range for this parameter (1 .. 64)." },
		{ "max_senders = 0", "invalid value for parameter \"max_senders\": \"0\"", NULL },
		{ "max_senders = 5x", "invalid value for parameter \"max_senders\": \"5x\"", NULL },
		{ "max_senders = 99999999999999999999",
		  "invalid value for parameter \"max_senders\"", NULL },
		{ "sync_replicas = -1", "invalid value for parameter \"sync_replicas\": \"-1\"",
		  NULL },
		{ "io_buffers = 2048", "invalid value for parameter \"io_buffers\": \"2048\"",
		  NULL },
		{ "max_queued_pushes = 0", "invalid value for parameter \"max_queued_pushes\"",
		  NULL },
		{ "max_inflight_files = 65", "invalid value for parameter \"max_inflight_files\"",
		  NULL },
		{ "push_timeout = 5sec", "invalid value for parameter \"push_timeout\": \"5sec\"",
		  "HINT:  Valid units for this parameter are \"ms\", \"s\", \"min\", \"h\", and \"d\"" },
		{ "push_timeout = 50ms", "invalid value for parameter \"push_timeout\": \"50ms\"",
		  "DETAIL:  The value is outside the valid range for this parameter (100ms .. 1d)." },
		{ "push_timeout = 2d", "invalid value for parameter \"push_timeout\": \"2d\"",
		  NULL },
		{ "push_timeout = -5s", "invalid value for parameter \"push_timeout\": \"-5s\"",
		  NULL },
		{ "push_timeout = 1.5s", "invalid value for parameter \"push_timeout\"", NULL },
		{ "connect_timeout = 99999999999999999999d",
		  "invalid value for parameter \"connect_timeout\"", NULL },
		{ "socket_permissions = 0666",
		  "invalid value for parameter \"socket_permissions\": \"0666\"",
		  "DETAIL:  Mode 0666 lets every local user reach the control socket" },
		{ "socket_permissions = 0661", "invalid value for parameter \"socket_permissions\"",
		  "HINT:  Use a mode without bits for others" },
		{ "socket_permissions = 0689", "invalid value for parameter \"socket_permissions\"",
		  NULL },
		{ "socket_permissions = 01660",
		  "invalid value for parameter \"socket_permissions\"", NULL },
		{ "zero_copy = maybe", "invalid value for parameter \"zero_copy\": \"maybe\"",
		  "HINT:  Available values: on, off, auto." },
		{ "log_level = verbose", "invalid value for parameter \"log_level\": \"verbose\"",
		  "HINT:  Available values: debug, info, log, warning, error, fatal." },
		{ "node_name = 'bad name'",
		  "invalid value for parameter \"node_name\": \"bad name\"",
		  "DETAIL:  A node name is 1 to 63 letters" },
		{ "node_name = ''", "invalid value for parameter \"node_name\": \"\"", NULL },
		{ "node_name = a/b", "invalid value for parameter \"node_name\"", NULL },
		{ "node_name = "
		  "a234567890123456789012345678901234567890123456789012345678901234",
		  "invalid value for parameter \"node_name\"",
		  "DETAIL:  The value is 64 bytes long" },
		{ "listen = nohost", "invalid value for parameter \"listen\": \"nohost\"",
		  "DETAIL:  An address is host:port" },
		{ "listen = :5480", "invalid value for parameter \"listen\"", NULL },
		{ "listen = ''", "invalid value for parameter \"listen\"", NULL },
		{ "listen = host:0", "invalid value for parameter \"listen\"", NULL },
		{ "upstream = host:65536", "invalid value for parameter \"upstream\"", NULL },
		{ "upstream = ::1:5480", "invalid value for parameter \"upstream\"", NULL },
		{ "upstream = [::1]5480", "invalid value for parameter \"upstream\"", NULL },
		{ "spool_dir = ''", "invalid value for parameter \"spool_dir\": \"\"",
		  "DETAIL:  The value must not be empty." },
		{ "archive_dir = archive",
		  "invalid value for parameter \"archive_dir\": \"archive\"",
		  "DETAIL:  A path must be absolute" },
		{ "socket = ./walshipd.sock", "invalid value for parameter \"socket\"",
		  "DETAIL:  A path must be absolute" },
		{ "role = master", "parameter \"role\" specified more than once", NULL },
	};
	struct config cfg;
	char text[512];
	char where[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "# bad value test\nrole = primary\n%s\n",
			 cases[i].line);
		config_defaults(&cfg);
		cfg.max_senders = 7; /* must survive a failed parse */
		log_capture_clear();
		if (config_parse_string(&cfg, text, SRC) != -EINVAL)
			fail_msg("line \"%s\" was accepted", cases[i].line);
		assert_int_equal(cfg.max_senders, 7);
		assert_true(cfg.role != CONFIG_ROLE_PRIMARY && cfg.role != CONFIG_ROLE_REPLICA);
		assert_logged(cases[i].message);
		snprintf(where, sizeof(where), " in file \"%s\" line 3\n", SRC);
		assert_logged(where);
		assert_memory_equal(captured, "ERROR:  ", 8);
		if (cases[i].extra)
			assert_logged(cases[i].extra);
	}
}

/* socket is at most 107 bytes (sun_path); paths up to PATH_MAX - 1. */
static void test_long_values(void **state)
{
	char text[PATH_MAX + 64];
	char value[PATH_MAX + 1];
	struct config cfg;

	(void)state;
	memset(value, 'a', sizeof(value));
	value[0] = '/';
	value[107] = '\0';
	snprintf(text, sizeof(text), "role = primary\nsocket = %s\n", value);
	assert_int_equal(parse(&cfg, text), 0);
	assert_int_equal(strlen(cfg.socket_path), 107);
	value[107] = 'a';
	value[108] = '\0';
	snprintf(text, sizeof(text), "role = primary\nsocket = %s\n", value);
	assert_int_equal(parse(&cfg, text), -EINVAL);
	assert_logged("invalid value for parameter \"socket\"");
	assert_logged("DETAIL:  The value is 108 bytes long; at most 107 are allowed.\n");

	memset(value, 'a', sizeof(value));
	value[0] = '/';
	value[PATH_MAX - 1] = '\0';
	snprintf(text, sizeof(text), "role = primary\nspool_dir = %s\n", value);
	assert_int_equal(parse(&cfg, text), 0);
	value[PATH_MAX - 1] = 'a';
	value[PATH_MAX] = '\0';
	snprintf(text, sizeof(text), "role = primary\nspool_dir = %s\n", value);
	assert_int_equal(parse(&cfg, text), -EINVAL);
	assert_logged("at most 4095 are allowed");
}

/* A role that is not an enum value, on the first line. */
static void test_bad_role(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "role = master\n"), -EINVAL);
	assert_string_equal(captured, "ERROR:  invalid value for parameter \"role\": \"master\" "
				      "in file \"" SRC "\" line 1\n"
				      "HINT:  Available values: primary, replica.\n");
}

static void test_unknown_key(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "role = primary\n\nfoo = 1\n"), -EINVAL);
	assert_string_equal(captured, "ERROR:  unrecognized configuration parameter \"foo\" in "
				      "file \"" SRC "\" line 3\n");
	assert_int_equal(parse(&cfg, "role = primary\nmax_sender = 3\n"), -EINVAL);
	assert_logged("unrecognized configuration parameter \"max_sender\" in file \"" SRC
		      "\" line 2");
}

static void test_duplicate_key(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "role = primary\nmax_senders = 3\n# x\nMAX_SENDERS = 3\n"),
			 -EINVAL);
	assert_string_equal(
		captured,
		"ERROR:  parameter \"max_senders\" specified more than once in file \"" SRC
		"\" line 4\n"
		"DETAIL:  It was first set on line 2.\n");
}

static void test_syntax_errors(void **state)
{
	static const struct bad_case cases[] = {
		{ "max_senders =", "syntax error in file \"" SRC "\" line 2, near end of line",
		  NULL },
		{ "max_senders", "syntax error in file \"" SRC "\" line 2, near end of line",
		  NULL },
		{ "max_senders = # nothing",
		  "syntax error in file \"" SRC "\" line 2, near end of line", NULL },
		{ "= 5", "syntax error in file \"" SRC "\" line 2, near token \"=\"", NULL },
		{ "1abc = 5", "syntax error in file \"" SRC "\" line 2, near token \"1abc\"",
		  NULL },
		{ "max_senders = 5 6", "syntax error in file \"" SRC "\" line 2, near token \"6\"",
		  NULL },
		{ "max_senders = 5 = 6",
		  "syntax error in file \"" SRC "\" line 2, near token \"=\"", NULL },
		{ "spool_dir = '/a' '/b'",
		  "syntax error in file \"" SRC "\" line 2, near token \"'/b'\"", NULL },
		{ "spool_dir = /a'b'",
		  "syntax error in file \"" SRC "\" line 2, near token \"'b'\"", NULL },
		{ "spool_dir = '/a",
		  "unterminated quoted string in file \"" SRC "\" line 2, near token \"'/a\"",
		  NULL },
		{ "spool_dir = 'it''s", "unterminated quoted string in file \"" SRC "\" line 2",
		  NULL },
	};
	struct config cfg;
	char text[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(text, sizeof(text), "role = primary\n%s\nmax_senders = 4\n",
			 cases[i].line);
		if (parse(&cfg, text) != -EINVAL)
			fail_msg("line \"%s\" was accepted", cases[i].line);
		assert_logged(cases[i].message);
	}
}

/* Every bad line is reported, not only the first. */
static void test_all_errors_reported(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	log_capture_clear();
	assert_int_equal(config_parse_string(&cfg, "foo = 1\n", NULL), -EINVAL);
	assert_logged("\"foo\" in file \"(unnamed)\" line 1\n");
	assert_int_equal(parse(&cfg, "role = primary\nfoo = 1\nmax_senders = x\nbar 2\n"), -EINVAL);
	assert_logged("\"foo\" in file \"" SRC "\" line 2\n");
	assert_logged("\"max_senders\": \"x\" in file \"" SRC "\" line 3\n");
	assert_logged("\"bar\" in file \"" SRC "\" line 4\n");
}

static void test_nul_byte(void **state)
{
	static const char path[] = "build/tmp-config-nul.conf";
	static const char text[] = "role = primary\nspool_dir = /a\0b\n";
	struct config cfg;
	FILE *file;

	(void)state;
	system("mkdir -p build");
	file = fopen(path, "w");
	assert_non_null(file);
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, file), sizeof(text) - 1);
	fclose(file);
	config_defaults(&cfg);
	log_capture_clear();
	assert_int_equal(config_load(&cfg, path), -EINVAL);
	assert_logged("invalid NUL byte in file \"build/tmp-config-nul.conf\" line 2");
	unlink(path);
}

static void test_missing_role(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "max_senders = 3\n"), -EINVAL);
	assert_logged("ERROR:  parameter \"role\" is required in file \"" SRC "\"\n");
	assert_logged("HINT:  Set role = primary or role = replica.\n");
	assert_int_equal(parse(&cfg, ""), -EINVAL);
	assert_logged("parameter \"role\" is required");
}

static void test_replica_requirements(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "role = replica\n"), -EINVAL);
	assert_logged("ERROR:  parameter \"upstream\" is required when role is replica in file "
		      "\"" SRC "\"\n");
	assert_logged("ERROR:  parameter \"archive_dir\" is required when role is replica");
	assert_int_equal(parse(&cfg, "role = replica\nupstream = 'db1:5480'\n"), -EINVAL);
	assert_logged("parameter \"archive_dir\" is required when role is replica");
	assert_int_equal(parse(&cfg, "role = replica\nupstream = db1:5480\narchive_dir = /w\n"), 0);
	assert_string_equal(captured, "");
	/* A primary needs neither. */
	assert_int_equal(parse(&cfg, "role = primary\n"), 0);
}

/* The streaming source's keys (pg_conninfo, pg_slot, application_name). */
static void test_stream_source_keys(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "role = primary\n"), 0);
	assert_string_equal(cfg.pg_conninfo, "");
	assert_string_equal(cfg.pg_slot, "walship");
	assert_string_equal(cfg.application_name, "");
	assert_int_equal(cfg.pg_status_interval_ms, 10000);
	assert_int_equal(parse(&cfg, "role = primary\n"
				     "pg_conninfo = 'host=/run/postgresql port=5432 user=walship'\n"
				     "pg_slot = walship_2\napplication_name = 'db1 stream'\n"
				     "pg_status_interval = 1s\n"),
			 0);
	assert_string_equal(cfg.pg_conninfo, "host=/run/postgresql port=5432 user=walship");
	assert_string_equal(cfg.pg_slot, "walship_2");
	assert_string_equal(cfg.application_name, "db1 stream");
	assert_int_equal(cfg.pg_status_interval_ms, 1000);
	assert_int_equal(parse(&cfg, "role = primary\npg_slot = Walship\n"), -EINVAL);
	assert_logged("invalid value for parameter \"pg_slot\": \"Walship\"");
	assert_logged("DETAIL:  Replication slot names may only contain lower case letters");
	assert_int_equal(parse(&cfg, "role = primary\npg_slot = 'a-b'\n"), -EINVAL);
	assert_int_equal(parse(&cfg, "role = primary\npg_slot = ''\n"), -EINVAL);
	assert_int_equal(
		parse(&cfg, "role = primary\npg_slot = "
			    "a123456789012345678901234567890123456789012345678901234567890123\n"),
		-EINVAL);
	assert_int_equal(parse(&cfg, "role = primary\napplication_name = 'caf\xc3\xa9'\n"),
			 -EINVAL);
	assert_logged("DETAIL:  An application name is printable ASCII characters only.");
	assert_int_equal(parse(&cfg, "role = replica\nupstream = db1:5480\narchive_dir = /w\n"
				     "pg_conninfo = 'host=db1'\n"),
			 -EINVAL);
	assert_logged("parameter \"pg_conninfo\" can only be set when role is primary");
}

/* pg_listen: a replica's, and only with access rules for its standbys. */
static void test_pg_listen(void **state)
{
	struct config cfg;
	static const char replica[] = "role = replica\nupstream = db1:5480\narchive_dir = /w\n";
	char text[256];

	(void)state;
	snprintf(text, sizeof(text), "%spg_listen = 0.0.0.0:5433\nhba_file = /etc/hba\n", replica);
	assert_int_equal(parse(&cfg, text), 0);
	assert_string_equal(cfg.pg_listen, "0.0.0.0:5433");
	snprintf(text, sizeof(text), "%spg_listen = 0.0.0.0:5433\n", replica);
	assert_int_equal(parse(&cfg, text), -EINVAL);
	assert_logged("parameter \"hba_file\" is required when pg_listen is set");
	assert_int_equal(parse(&cfg, "role = primary\npg_listen = 0.0.0.0:5433\n"), -EINVAL);
	assert_logged("parameter \"pg_listen\" can only be set when role is replica");
	snprintf(text, sizeof(text), "%spg_listen = nowhere\nhba_file = /etc/hba\n", replica);
	assert_int_equal(parse(&cfg, text), -EINVAL);
}

/* relay: a replica's (a primary always accepts replicas on listen). */
static void test_relay(void **state)
{
	struct config cfg;
	static const char replica[] = "role = replica\nupstream = db1:5480\narchive_dir = /w\n";
	char text[256];

	(void)state;
	assert_int_equal(parse(&cfg, replica), 0);
	assert_false(cfg.relay);
	snprintf(text, sizeof(text), "%srelay = on\nlisten = 10.0.0.2:5480\n", replica);
	assert_int_equal(parse(&cfg, text), 0);
	assert_true(cfg.relay);
	assert_string_equal(cfg.listen, "10.0.0.2:5480");
	assert_int_equal(parse(&cfg, "role = primary\nrelay = on\n"), -EINVAL);
	assert_logged("parameter \"relay\" can only be set when role is replica");
	/* listen set in a replica's file says it relays; relay = off says it does not. */
	snprintf(text, sizeof(text), "%slisten = 10.0.0.2:5480\n", replica);
	assert_int_equal(parse(&cfg, text), 0);
	assert_true(cfg.relay);
	snprintf(text, sizeof(text), "%slisten = 10.0.0.2:5480\nrelay = off\n", replica);
	assert_int_equal(parse(&cfg, text), 0);
	assert_false(cfg.relay);
	assert_int_equal(parse(&cfg, "role = primary\nlisten = 10.0.0.1:5480\n"), 0);
	assert_false(cfg.relay);
}

static void test_cross_key_rules(void **state)
{
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, "role = primary\nmax_senders = 2\nsync_replicas = 3\n"),
			 -EINVAL);
	assert_logged("\"sync_replicas\" (3) cannot be greater than \"max_senders\" (2)");
	assert_int_equal(parse(&cfg, "role = primary\nmax_senders = 3\nsync_replicas = 3\n"), 0);
	assert_int_equal(parse(&cfg, "role = primary\nreconnect_min = 20s\n"), -EINVAL);
	assert_logged("\"reconnect_min\" (20s) cannot be greater than \"reconnect_max\" (10s)");
	assert_int_equal(parse(&cfg, "role = primary\nreconnect_min = 10s\n"), 0);
	/* every replica that acknowledges is registered first */
	assert_int_equal(parse(&cfg, "role = primary\nmax_senders = 32\nsync_replicas = 20\n"),
			 -EINVAL);
	assert_logged("\"sync_replicas\" (20) cannot be greater than \"max_registered\" (16)");
	assert_int_equal(parse(&cfg, "role = primary\nmax_senders = 32\nsync_replicas = 16\n"), 0);
	/* a push waiting spool_delay would time out before it is held */
	assert_int_equal(parse(&cfg, "role = primary\nspool_delay = 1min\npush_timeout = 10s\n"),
			 -EINVAL);
	assert_logged("\"spool_delay\" (1min) must be shorter than \"push_timeout\" (10s)");
	assert_int_equal(parse(&cfg, "role = primary\nspool_delay = 5s\npush_timeout = 10s\n"), 0);
	assert_int_equal(parse(&cfg, "role = primary\nspool_delay = 0\npush_timeout = 1s\n"), 0);
}

/* config_validate() on a struct built in code checks every key's bounds too. */
static void test_validate_programmatic(void **state)
{
	struct config cfg;

	(void)state;
	config_defaults(&cfg);
	cfg.role = CONFIG_ROLE_PRIMARY;
	log_capture_clear();
	assert_int_equal(config_validate(&cfg, NULL), 0);
	cfg.io_buffers = 2;
	assert_int_equal(config_validate(&cfg, NULL), -EINVAL);
	assert_logged("ERROR:  invalid value for parameter \"io_buffers\": \"2\"\n");
	cfg.io_buffers = 32;
	cfg.socket_permissions = 0777;
	assert_int_equal(config_validate(&cfg, "x.conf"), -EINVAL);
	assert_logged("invalid value for parameter \"socket_permissions\": \"0777\" in file "
		      "\"x.conf\"\n");
	cfg.socket_permissions = 0660;
	strcpy(cfg.node_name, "no spaces");
	assert_int_equal(config_validate(&cfg, NULL), -EINVAL);
	strcpy(cfg.node_name, "n1");
	strcpy(cfg.listen, "bad");
	assert_int_equal(config_validate(&cfg, NULL), -EINVAL);
}

static void test_split_address(void **state)
{
	static const struct {
		const char *addr;
		int ret;
		const char *host;
		uint16_t port;
	} cases[] = {
		{ "0.0.0.0:5480", 0, "0.0.0.0", 5480 },
		{ "db1.example.com:1", 0, "db1.example.com", 1 },
		{ "[::1]:65535", 0, "::1", 65535 },
		{ "[fe80::1%eth0]:5480", 0, "fe80::1%eth0", 5480 },
		{ "host:0", -EINVAL, NULL, 0 },
		{ "host:65536", -EINVAL, NULL, 0 },
		{ "host:099999", -EINVAL, NULL, 0 },
		{ "host:", -EINVAL, NULL, 0 },
		{ "host", -EINVAL, NULL, 0 },
		{ ":5480", -EINVAL, NULL, 0 },
		{ "::1:5480", -EINVAL, NULL, 0 },
		{ "[::1]", -EINVAL, NULL, 0 },
		{ "[::1]5480", -EINVAL, NULL, 0 },
		{ "[]:5480", -EINVAL, NULL, 0 },
		{ "[host]:5480", -EINVAL, NULL, 0 },
		{ "host:+80", -EINVAL, NULL, 0 },
		{ "host:80a", -EINVAL, NULL, 0 },
		{ "a b:80", -EINVAL, NULL, 0 },
		{ "", -EINVAL, NULL, 0 },
	};
	char host[CONFIG_MAX_ADDR];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int ret = config_split_address(cases[i].addr, host, sizeof(host), &port);

		if (ret != cases[i].ret)
			fail_msg("\"%s\": %d, expected %d", cases[i].addr, ret, cases[i].ret);
		if (ret == 0) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		}
	}
	assert_int_equal(config_split_address("db1:80", host, 3, &port), -ENAMETOOLONG);
	assert_int_equal(config_split_address("db1:80", host, 4, &port), 0);
	assert_int_equal(config_split_address("db1:80", NULL, 0, NULL), 0);
	assert_int_equal(config_split_address(NULL, NULL, 0, NULL), -EINVAL);
}

static void test_load_file(void **state)
{
	static const char path[] = "build/tmp-config-test.conf";
	struct config cfg;
	FILE *file;

	(void)state;
	system("mkdir -p build");
	file = fopen(path, "w");
	assert_non_null(file);
	fputs("role = primary\nmax_senders = 12\n", file);
	fclose(file);
	config_defaults(&cfg);
	log_capture_clear();
	assert_int_equal(config_load(&cfg, path), 0);
	assert_int_equal(cfg.max_senders, 12);

	file = fopen(path, "w");
	assert_non_null(file);
	fputs("role = primary\n\n\n\nwhatever = 12\n", file);
	fclose(file);
	config_defaults(&cfg);
	assert_int_equal(config_load(&cfg, path), -EINVAL);
	assert_logged("unrecognized configuration parameter \"whatever\" in file "
		      "\"build/tmp-config-test.conf\" line 5\n");
	unlink(path);

	log_capture_clear();
	assert_int_equal(config_load(&cfg, "build/does-not-exist.conf"), -ENOENT);
	assert_logged("ERROR:  could not open configuration file \"build/does-not-exist.conf\": No "
		      "such file or directory\n");
	assert_int_equal(config_load(&cfg, "build"), -EINVAL);
}

/* config_dump() writes a file that loads back to the same values. */
static void test_dump_round_trip(void **state)
{
	struct config cfg, again;
	char *first = NULL, *second = NULL;
	size_t first_len = 0, second_len = 0;
	FILE *out;

	(void)state;
	assert_int_equal(parse(&cfg, "role = replica\nupstream = '[::1]:7000'\n"
				     "archive_dir = '/srv/it''s wal'\nsocket_group = pg\n"
				     "push_timeout = 90s\nreconnect_min = 1500\nzero_copy = on\n"
				     "socket_permissions = 0640\nlog_level = warning\n"),
			 0);
	out = open_memstream(&first, &first_len);
	assert_non_null(out);
	config_dump(&cfg, out);
	fclose(out);
	assert_non_null(strstr(first, "\narchive_dir = '/srv/it''s wal'\n"));
	assert_non_null(strstr(first, "\npush_timeout = 90s\n"));
	assert_non_null(strstr(first, "\nreconnect_min = 1500ms\n"));
	assert_non_null(strstr(first, "\nsocket_permissions = 0640\n"));

	assert_int_equal(parse(&again, first), 0);
	out = open_memstream(&second, &second_len);
	assert_non_null(out);
	config_dump(&again, out);
	fclose(out);
	assert_string_equal(first, second);
	assert_string_equal(again.archive_dir, "/srv/it's wal");
	assert_int_equal(again.zero_copy, CONFIG_SWITCH_ON);
	assert_int_equal(again.log_level, LOG_LEVEL_WARNING);
	free(first);
	free(second);

	/* Without a role the dump still lists it, commented out. */
	config_defaults(&cfg);
	out = open_memstream(&first, &first_len);
	assert_non_null(out);
	config_dump(&cfg, out);
	fclose(out);
	assert_non_null(strstr(first, "\n#role ="));
	free(first);
}

/* standby_delay: NAME:DURATION[,...]; each name's delay, and malformed lists refused. */
static void test_standby_delay(void **state)
{
	long long ms = -1;

	(void)state;
	assert_int_equal(config_standby_delay("sb1:20s,late:1h", "sb1", &ms), 0);
	assert_int_equal(ms, 20000);
	assert_int_equal(config_standby_delay("sb1:20s,late:1h", "late", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(config_standby_delay("sb1:20s,late:1h", "sb", &ms), -ENOENT);
	assert_int_equal(config_standby_delay("", "sb1", &ms), -ENOENT);
	assert_int_equal(config_standby_delay("sb1:20s", NULL, NULL), -ENOENT);
	assert_int_equal(config_standby_delay("sb1", NULL, NULL), -EINVAL);
	assert_int_equal(config_standby_delay("sb1:", NULL, NULL), -EINVAL);
	assert_int_equal(config_standby_delay(":20s", NULL, NULL), -EINVAL);
	/* a name no cleaned application_name can be (PostgreSQL's pg_clean_ascii()) */
	assert_int_equal(config_standby_delay("caf\xc3\xa9:1h", NULL, NULL), -EINVAL);
	assert_int_equal(config_standby_delay("caf??:1h", "caf??", &ms), 0);
	assert_int_equal(config_standby_delay("sb1:20 parsecs", NULL, NULL), -EINVAL);
	assert_int_equal(config_standby_delay("sb1:20s,", NULL, NULL), -ENOENT);
	/* recovery_min_apply_delay's bound: longer would overflow the µs it is kept in */
	assert_int_equal(config_standby_delay("sb1:2147483647ms", "sb1", &ms), 0);
	assert_int_equal(ms, 2147483647LL);
	assert_int_equal(config_standby_delay("sb1:2147483648ms", NULL, NULL), -EINVAL);
	assert_int_equal(config_standby_delay("sb1:999999999d", NULL, NULL), -EINVAL);
	/* Names as PostgreSQL keeps them (63 bytes at most: longer would never match), and
	 * as many entries as are tracked (more would go undelayed). */
	{
		char list[CONFIG_STANDBY_DELAY_MAX_ENTRIES * 8 + 80],
			name[CONFIG_PG_NAMEDATALEN + 1];
		size_t len = 0;

		memset(name, 'n', sizeof(name) - 1);
		name[CONFIG_PG_NAMEDATALEN - 1] = '\0';
		snprintf(list, sizeof(list), "%s:1s", name);
		assert_int_equal(config_standby_delay(list, name, &ms), 0);
		name[CONFIG_PG_NAMEDATALEN - 1] = 'n';
		name[CONFIG_PG_NAMEDATALEN] = '\0';
		snprintf(list, sizeof(list), "%s:1s", name);
		assert_int_equal(config_standby_delay(list, NULL, NULL), -EINVAL);
		for (int i = 0; i < CONFIG_STANDBY_DELAY_MAX_ENTRIES; i++)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%ss%d:1s",
						i ? "," : "", i);
		assert_int_equal(config_standby_delay(list, "s31", &ms), 0);
		snprintf(list + len, sizeof(list) - len, ",s32:1s");
		assert_int_equal(config_standby_delay(list, NULL, NULL), -EINVAL);
	}
}

static void test_reload(void **state)
{
	struct config cur, next;
	int ret;

	(void)state;
	assert_int_equal(parse(&cur, "role = primary\nmax_senders = 4\n"), 0);
	assert_int_equal(parse(&next, "role = primary\nmax_senders = 8\nsync_replicas = 2\n"
				      "push_timeout = 30s\nlog_level = debug\n"),
			 0);
	log_capture_clear();
	ret = config_reload(&cur, &next, SRC);
	assert_int_equal(ret, 3);
	assert_int_equal(cur.max_senders, 4);
	assert_int_equal(cur.sync_replicas, 2);
	assert_int_equal(cur.push_timeout_ms, 30000);
	assert_int_equal(cur.log_level, LOG_LEVEL_DEBUG);
	assert_logged("LOG:  parameter \"max_senders\" cannot be changed without restarting the "
		      "server\n");
	assert_logged("LOG:  parameter \"push_timeout\" changed to \"30s\"\n");
	assert_logged("LOG:  parameter \"sync_replicas\" changed to \"2\"\n");

	/* sync_replicas 6 fits the file's max_senders 8, not the running 4: refused whole. */
	assert_int_equal(parse(&next, "role = primary\nmax_senders = 8\nsync_replicas = 6\n"
				      "push_timeout = 5s\n"),
			 0);
	log_capture_clear();
	assert_int_equal(config_reload(&cur, &next, SRC), -EINVAL);
	assert_int_equal(cur.sync_replicas, 2);
	assert_int_equal(cur.push_timeout_ms, 30000);
	assert_logged("ERROR:  \"sync_replicas\" (6) cannot be greater than \"max_senders\" (4)");
	/* once, by the caller (walshipd's reload), which says it for errors in the file too */
	assert_null(strstr(captured, "no changes were applied"));

	/* Nothing changed: nothing logged. */
	next = cur;
	log_capture_clear();
	assert_int_equal(config_reload(&cur, &next, SRC), 0);
	assert_string_equal(captured, "");
}

static char *read_whole(const char *path)
{
	FILE *file = fopen(path, "r");
	char *text;
	long len;

	if (!file)
		fail_msg("could not open \"%s\" (run from the repository root)", path);
	fseek(file, 0, SEEK_END);
	len = ftell(file);
	fseek(file, 0, SEEK_SET);
	text = malloc((size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, file), (size_t)len);
	text[len] = '\0';
	fclose(file);
	return text;
}

static char *markdown(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	config_print_markdown(out);
	fclose(out);
	return text;
}

/* Every key of the table is documented, and the generated block is current. */
static void test_docs_list_every_key(void **state)
{
	static const char begin[] =
		"<!-- BEGIN KEYS (generated by walshipd --describe-config) -->\n";
	static const char end[] = "<!-- END KEYS -->";
	char *docs = read_whole("docs/configuration.md");
	char *table = markdown();
	char *block, *block_end, *help = NULL;
	size_t help_len = 0;
	FILE *out;
	int keys = 0;

	(void)state;
	out = open_memstream(&help, &help_len);
	assert_non_null(out);
	config_print_help(out);
	fclose(out);
	/* the longest range (standby_delay's) printed whole, not cut to a buffer */
	assert_non_null(strstr(table, "as `recovery_min_apply_delay`), or empty |"));
	assert_non_null(strstr(help, "as recovery_min_apply_delay), or empty"));

	for (char *line = strstr(table, "\n| `"); line; line = strstr(line + 1, "\n| `")) {
		char name[CONFIG_MAX_NAME], needle[CONFIG_MAX_NAME + 16];
		const char *name_end = strchr(line + 4, '`');

		assert_non_null(name_end);
		snprintf(name, sizeof(name), "%.*s", (int)(name_end - line - 4), line + 4);
		snprintf(needle, sizeof(needle), "`%s`", name);
		if (!strstr(docs, needle))
			fail_msg("key \"%s\" is missing from docs/configuration.md", name);
		snprintf(needle, sizeof(needle), "\n  %s (", name);
		if (!strstr(help, needle))
			fail_msg("key \"%s\" is missing from config_print_help()", name);
		keys++;
	}
	assert_int_equal(keys, 50);

	block = strstr(docs, begin);
	assert_non_null(block);
	block += strlen(begin);
	block_end = strstr(block, end);
	assert_non_null(block_end);
	*block_end = '\0';
	/* Allow blank lines around the table inside the markers. */
	while (*block == '\n')
		block++;
	while (block_end > block + 1 && block_end[-1] == '\n' && block_end[-2] == '\n')
		*--block_end = '\0';
	if (strcmp(block, table) != 0)
		fail_msg(
			"docs/configuration.md is stale; regenerate the key reference (make docs):\n%s",
			table);
	free(help);
	free(table);
	free(docs);
}

/* walship.conf(5)'s key reference is current: the block between its markers is what
 * config_print_man() prints (scripts/gen-docs.sh, `make docs`, writes it). */
static void test_man_page_current(void **state)
{
	static const char begin[] =
		".\\\" BEGIN KEYS (generated by walshipd --describe-config=man)\n";
	static const char end[] = ".\\\" END KEYS\n";
	char *page = read_whole("man/walship.conf.5");
	char *man = NULL, *block, *block_end;
	size_t man_len = 0;
	FILE *out = open_memstream(&man, &man_len);

	(void)state;
	assert_non_null(out);
	config_print_man(out);
	fclose(out);
	block = strstr(page, begin);
	assert_non_null(block);
	block += strlen(begin);
	block_end = strstr(block, end);
	assert_non_null(block_end);
	*block_end = '\0';
	if (strcmp(block, man) != 0)
		fail_msg(
			"man/walship.conf.5 is stale; regenerate its key reference with make docs");
	free(man);
	free(page);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_minimal_primary),
		T(test_every_key_set),
		T(test_duration_units),
		T(test_zero_copy_and_octal_spellings),
		T(test_syntax_accepted),
		T(test_bad_values),
		T(test_long_values),
		T(test_bad_role),
		T(test_unknown_key),
		T(test_duplicate_key),
		T(test_syntax_errors),
		T(test_all_errors_reported),
		T(test_nul_byte),
		T(test_missing_role),
		T(test_replica_requirements),
		T(test_stream_source_keys),
		T(test_cross_key_rules),
		T(test_pg_listen),
		T(test_relay),
		T(test_validate_programmatic),
		T(test_split_address),
		T(test_load_file),
		T(test_dump_round_trip),
		T(test_reload),
		T(test_standby_delay),
		T(test_docs_list_every_key),
		T(test_man_page_current),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
