// SPDX-License-Identifier: MIT
/* Unit tests for daemon/serve/pgwire.c: PostgreSQL's protocol 3.0, server side. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/pgrepl.h"
#include "serve/pgwire.h"

/* A startup packet: length, code, then @params (@plen bytes, terminator included). */
static size_t packet(uint8_t *buf, uint32_t code, const char *params, size_t plen)
{
	uint32_t len = htobe32((uint32_t)(8 + plen)), c = htobe32(code);

	memcpy(buf, &len, 4);
	memcpy(buf + 4, &c, 4);
	memcpy(buf + 8, params, plen);
	return 8 + plen;
}

/* What a PostgreSQL 15 walreceiver sends (after SSLRequest). */
static const char walreceiver[] = "user\0repl\0database\0replication\0replication\0true\0"
				  "application_name\0sb1\0";

static const char odd_names[] = "user\0r\xc3\xa9pl\0replication\0true\0"
				"application_name\0\x1b[2Jsb\xff\x7f\0";
static const char control_user[] = "user\0re\npl\0replication\0true\0";

static void test_startup(void **state)
{
	uint8_t buf[512];
	struct pgwire_startup st;
	size_t n;

	(void)state;
	n = packet(buf, PGWIRE_SSL_REQUEST, "", 0);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), 8);
	assert_int_equal(st.kind, PGWIRE_SSL);
	n = packet(buf, PGWIRE_GSSENC_REQUEST, "", 0);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), 8);
	assert_int_equal(st.kind, PGWIRE_GSSENC);
	n = packet(buf, PGWIRE_CANCEL_REQUEST, "12345678", 8);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), 16);
	assert_int_equal(st.kind, PGWIRE_CANCEL);

	n = packet(buf, PGWIRE_PROTOCOL_3_0, walreceiver, sizeof(walreceiver));
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_int_equal(st.kind, PGWIRE_STARTUP);
	assert_int_equal(st.replication, PGWIRE_REPL_PHYSICAL);
	assert_string_equal(st.user, "repl");
	assert_string_equal(st.database, "replication");
	assert_string_equal(st.application_name, "sb1");
	/* Byte by byte: more is needed until the whole packet is there. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pgwire_parse_startup(buf, i, &st), 0);

	/* application_name as PostgreSQL's pg_clean_ascii() leaves it (every byte outside
	 * printable ASCII '?'); a user name with a control character is marked, to be
	 * refused, one with UTF-8 is not. */
	n = packet(buf, PGWIRE_PROTOCOL_3_0, odd_names, sizeof(odd_names));
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_string_equal(st.application_name, "?[2Jsb??");
	assert_false(st.user_invalid);
	n = packet(buf, PGWIRE_PROTOCOL_3_0, control_user, sizeof(control_user));
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_true(st.user_invalid);

	/* An SQL session, logical replication, a bad boolean. */
	n = packet(buf, PGWIRE_PROTOCOL_3_0, "user\0u\0database\0d\0", 19);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_int_equal(st.replication, PGWIRE_REPL_NONE);
	n = packet(buf, PGWIRE_PROTOCOL_3_0, "user\0u\0replication\0database\0", 29);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_int_equal(st.replication, PGWIRE_REPL_LOGICAL);
	/* A bad boolean parses, to be refused with PostgreSQL's FATAL 22023 (not dropped
	 * without an answer). */
	n = packet(buf, PGWIRE_PROTOCOL_3_0, "user\0u\0replication\0maybe\0", 26);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_true(st.replication_invalid);
	assert_int_equal(st.replication, PGWIRE_REPL_NONE);
	assert_string_equal(st.replication_value, "maybe");
	/* PostgreSQL's parse_bool(): prefixes of true, yes, false, no; on and off from two
	 * characters; any case. */
	{
		static const struct {
			const char *v;
			int want; /* 1 physical, 0 none, -1 invalid */
		} cases[] = { { "t", 1 },   { "TRU", 1 },      { "y", 1 },	{ "On", 1 },
			      { "1", 1 },   { "f", 0 },	       { "no", 0 },	{ "OF", 0 },
			      { "0", 0 },   { "o", -1 },       { "truex", -1 }, { "", -1 },
			      { "01", -1 }, { "Database", -1 } };

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char params[64];
			int plen = snprintf(params, sizeof(params), "user%cu%creplication%c%s%c", 0,
					    0, 0, cases[i].v, 0);

			params[plen] = '\0';
			n = packet(buf, PGWIRE_PROTOCOL_3_0, params, (size_t)plen + 1);
			assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
			assert_int_equal(st.replication_invalid, cases[i].want < 0);
			assert_int_equal(st.replication, cases[i].want == 1 ? PGWIRE_REPL_PHYSICAL :
									      PGWIRE_REPL_NONE);
		}
	}

	/* No user: parses, to be refused with PostgreSQL's FATAL 28000. */
	n = packet(buf, PGWIRE_PROTOCOL_3_0, "database\0d\0", 12);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_string_equal(st.user, "");

	/* No final terminator; a name without a value; protocol 2; sizes. */
	n = packet(buf, PGWIRE_PROTOCOL_3_0, "user\0u\0", 7);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), -EINVAL);
	n = packet(buf, PGWIRE_PROTOCOL_3_0, "user\0u\0x\0", 10);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), -EINVAL);
	n = packet(buf, 2 << 16, "user\0u\0\0", 8);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), -EPROTONOSUPPORT);
	n = packet(buf, PGWIRE_SSL_REQUEST, "x", 1);
	assert_int_equal(pgwire_parse_startup(buf, n, &st), -EINVAL);
	memcpy(buf, "\0\0\0\4", 4);
	assert_int_equal(pgwire_parse_startup(buf, 8, &st), -EINVAL);
	memcpy(buf, "\0\1\0\0", 4); /* 65536 > PGWIRE_MAX_STARTUP */
	assert_int_equal(pgwire_parse_startup(buf, 8, &st), -EINVAL);
}

/* Protocol 3.x minor versions and "_pq_." options: NegotiateProtocolVersion. */
static void test_negotiate(void **state)
{
	static const char params[] = "user\0u\0_pq_.x\0"
				     "1\0replication\0true\0_pq_.yz\0\0";
	static const uint8_t want[] = { 'v', 0, 0, 0, 27, 0, 3, 0, 0, 0, 0, 0, 2, '_', 'p' };
	uint8_t buf[256];
	struct pgwire_startup st;
	struct pgwire_buf b = { 0 };
	struct pgwire_msg m;
	size_t n;

	(void)state;
	/* 3.0 without options: nothing to negotiate. */
	n = packet(buf, PGWIRE_PROTOCOL_3_0, walreceiver, sizeof(walreceiver));
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_false(pgwire_negotiate_protocol(&b, &st, buf, n));
	assert_int_equal(b.len, 0);

	/* 3.2 (libpq 18's max_protocol_version=latest): served as 3.0, no options. */
	n = packet(buf, PGWIRE_PROTOCOL_3_0 | 2, walreceiver, sizeof(walreceiver));
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_int_equal(st.replication, PGWIRE_REPL_PHYSICAL);
	assert_true(pgwire_negotiate_protocol(&b, &st, buf, n));
	assert_int_equal(pgwire_next_message(b.data, b.len, &m), 13);
	assert_int_equal(m.type, 'v');
	assert_memory_equal(m.body, "\0\3\0\0\0\0\0\0", 8);
	pgwire_buf_free(&b);

	/* 3.0 with two options: both named back, in order. */
	n = packet(buf, PGWIRE_PROTOCOL_3_0, params, sizeof(params));
	assert_int_equal(pgwire_parse_startup(buf, n, &st), (int)n);
	assert_int_equal(st.protocol_options, 2);
	assert_string_equal(st.user, "u");
	assert_true(pgwire_negotiate_protocol(&b, &st, buf, n));
	assert_int_equal(pgwire_next_message(b.data, b.len, &m), 28);
	assert_int_equal(b.len, 28);
	assert_memory_equal(b.data, want, sizeof(want));
	assert_memory_equal(m.body + 8, "_pq_.x\0_pq_.yz\0", 15);
	pgwire_buf_free(&b);
}

static void test_messages(void **state)
{
	const uint8_t q[] = "Q\0\0\0\024IDENTIFY_SYSTEM";
	struct pgwire_msg m;

	(void)state;
	assert_int_equal(pgwire_next_message(q, sizeof(q), &m), 21);
	assert_int_equal(m.type, 'Q');
	assert_int_equal(m.len, 16);
	assert_memory_equal(m.body, "IDENTIFY_SYSTEM", 16);
	for (size_t i = 0; i < 21; i++)
		assert_int_equal(pgwire_next_message(q, i, &m), 0);
	assert_int_equal(pgwire_next_message((const uint8_t *)"X\0\0\0\3", 5, &m), -EINVAL);
	assert_int_equal(pgwire_next_message((const uint8_t *)"d\0\1\0\5", 5, &m), -EINVAL);
	assert_int_equal(pgwire_next_message((const uint8_t *)"X\0\0\0\4", 5, &m), 5);
	/* CopyDone, Sync and the like: 10000 bytes at most, length field included */
	assert_int_equal(pgwire_next_message((const uint8_t *)"c\0\0\x27\x11", 5, &m), -EINVAL);
	assert_int_equal(pgwire_next_message((const uint8_t *)"S\0\0\x27\x10", 5, &m), 0);
	assert_int_equal(pgwire_next_message((const uint8_t *)"d\0\0\x27\x11", 5, &m), 0);
	assert_int_equal(m.len, 0);
}

static void test_commands(void **state)
{
	struct pgwire_command c;

	(void)state;
	assert_int_equal(pgwire_parse_command("IDENTIFY_SYSTEM", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_IDENTIFY_SYSTEM);
	assert_int_equal(pgwire_parse_command("  identify_system ; ", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_IDENTIFY_SYSTEM);
	assert_int_equal(pgwire_parse_command("IDENTIFY_SYSTEM x", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_EMPTY);
	assert_int_equal(pgwire_parse_command(";", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_EMPTY);

	assert_int_equal(pgwire_parse_command("SHOW wal_segment_size", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_SHOW);
	assert_string_equal(c.show, "wal_segment_size");
	assert_int_equal(pgwire_parse_command("SHOW \"Data_Directory_Mode\"", &c), 0);
	assert_string_equal(c.show, "Data_Directory_Mode");
	assert_int_equal(pgwire_parse_command("SHOW", &c), -EINVAL);

	assert_int_equal(pgwire_parse_command("TIMELINE_HISTORY 2", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_TIMELINE_HISTORY);
	assert_int_equal(c.timeline, 2);
	assert_int_equal(pgwire_parse_command("TIMELINE_HISTORY 0", &c), -ERANGE);
	assert_int_equal(pgwire_parse_command("TIMELINE_HISTORY 0 x", &c), -ERANGE);
	assert_int_equal(pgwire_parse_command("TIMELINE_HISTORY \"2\"", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("TIMELINE_HISTORY 4294967296", &c), -EINVAL);

	/* As the PG 15 walreceiver and pg_receivewal write it. */
	assert_int_equal(pgwire_parse_command("START_REPLICATION 0/3000000 TIMELINE 1", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_START_REPLICATION);
	assert_int_equal(c.start, 0x3000000);
	assert_int_equal(c.timeline, 1);
	assert_string_equal(c.slot, "");
	assert_int_equal(pgwire_parse_command("START_REPLICATION SLOT \"pg_walreceiver_77\" "
					      "PHYSICAL 1/E000000 TIMELINE 3",
					      &c),
			 0);
	assert_string_equal(c.slot, "pg_walreceiver_77");
	assert_int_equal(c.start, 0x10E000000ULL);
	assert_int_equal(c.timeline, 3);
	assert_int_equal(pgwire_parse_command("START_REPLICATION 0/0", &c), 0);
	assert_int_equal(c.timeline, 0);
	assert_false(c.logical);
	assert_int_equal(pgwire_parse_command("START_REPLICATION SLOT s LOGICAL 0/0", &c), 0);
	assert_true(c.logical);
	assert_int_equal(pgwire_parse_command("START_REPLICATION", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("START_REPLICATION 0/3000000 TIMELINE", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("START_REPLICATION 0/3000000 TIMELINE 1 x", &c),
			 -EINVAL);
	assert_int_equal(pgwire_parse_command("START_REPLICATION 0/3000000 TIMELINE 0 x", &c),
			 -ERANGE);
	assert_int_equal(pgwire_parse_command("START_REPLICATION \"0/3000000\"", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("START_REPLICATION SLOT \"unterminated", &c),
			 -EINVAL);

	/* What a walreceiver with wal_receiver_create_temp_slot = on sends. */
	assert_int_equal(pgwire_parse_command("CREATE_REPLICATION_SLOT \"pg_walreceiver_77\" "
					      "TEMPORARY PHYSICAL (RESERVE_WAL)",
					      &c),
			 0);
	assert_int_equal(c.kind, PGWIRE_CMD_CREATE_SLOT);
	assert_string_equal(c.slot, "pg_walreceiver_77");
	assert_true(c.temporary);
	assert_false(c.logical);
	assert_true(c.reserve_wal);
	assert_int_equal(pgwire_parse_command("CREATE_REPLICATION_SLOT s PHYSICAL RESERVE_WAL", &c),
			 0);
	assert_false(c.temporary);
	assert_true(c.reserve_wal);
	assert_int_equal(pgwire_parse_command("CREATE_REPLICATION_SLOT s PHYSICAL", &c), 0);
	assert_false(c.reserve_wal);
	assert_int_equal(
		pgwire_parse_command("CREATE_REPLICATION_SLOT s PHYSICAL (RESERVE_WAL false)", &c),
		0);
	assert_false(c.reserve_wal);
	/* The option list as PostgreSQL 15's grammar has it: RESERVE_WAL [boolean], blanks
	 * anywhere; anything else an error, not ignored (a misspelt option would otherwise
	 * make a slot that keeps nothing). */
	{
		static const struct {
			const char *opts;
			int reserve; /* -1: a syntax error */
		} cases[] = {
			{ "( RESERVE_WAL )", 1 },      { "(reserve_wal 'on')", 1 },
			{ "(\"reserve_wal\" 1);", 1 }, { "(RESERVE_WAL true, RESERVE_WAL off)", 0 },
			{ "(RESERVE_WALL)", -1 },      { "(RESERVE_WAL maybe)", -1 },
			{ "(RESERVE_WAL", -1 },	       { "()", -1 },
			{ "(RESERVE_WAL,)", -1 },      { "(RESERVE_WAL) x", -1 },
			{ "(RESERVE_WAL 'on)", -1 },   { "(TWO_PHASE)", -1 },
			{ "RESERVE_WAL x", -1 },       { "RESERVE_WAL; x", -1 },
			{ "RESERVE_WALL", -1 },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char text[128];

			snprintf(text, sizeof(text), "CREATE_REPLICATION_SLOT s PHYSICAL %s",
				 cases[i].opts);
			assert_int_equal(pgwire_parse_command(text, &c),
					 cases[i].reserve < 0 ? -EINVAL : 0);
			if (cases[i].reserve >= 0)
				assert_int_equal(c.reserve_wal, cases[i].reserve == 1);
		}
	}
	assert_int_equal(pgwire_parse_command("DROP_REPLICATION_SLOT \"S1\" WAIT;", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_DROP_SLOT);
	assert_string_equal(c.slot, "S1");
	assert_true(c.wait);
	assert_int_equal(pgwire_parse_command("drop_replication_slot s1", &c), 0);
	assert_false(c.wait);
	assert_int_equal(pgwire_parse_command("DROP_REPLICATION_SLOT s1 NOW", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("READ_REPLICATION_SLOT s1", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_READ_SLOT);
	assert_string_equal(c.slot, "s1");
	assert_int_equal(pgwire_parse_command("READ_REPLICATION_SLOT s1 WAIT", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("READ_REPLICATION_SLOT", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("CREATE_REPLICATION_SLOT s LOGICAL pgoutput", &c), 0);
	assert_true(c.logical);
	assert_int_equal(pgwire_parse_command("CREATE_REPLICATION_SLOT s TEMPORARY", &c), -EINVAL);
	assert_int_equal(pgwire_parse_command("CREATE_REPLICATION_SLOT", &c), -EINVAL);

	assert_int_equal(pgwire_parse_command("select 1", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_OTHER);
	/* BASE_BACKUP is a replication command, refused as such, not as SQL. */
	assert_int_equal(pgwire_parse_command("BASE_BACKUP", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_BASE_BACKUP);
	assert_string_equal(c.word, "BASE_BACKUP");
	assert_int_equal(pgwire_parse_command("base_backup (LABEL 'x', PROGRESS);", &c), 0);
	assert_int_equal(c.kind, PGWIRE_CMD_BASE_BACKUP);
}

/* Every message built frames correctly: walking them with pgwire_next_message() ends
 * exactly at the end of the buffer. */
static void test_builders(void **state)
{
	struct pgwire_buf b = { 0 };
	static const char *const names[] = { "systemid", "timeline" };
	static const uint32_t oids[] = { PGWIRE_OID_TEXT, PGWIRE_OID_INT4 };
	const char *values[] = { "7714757620651245335", NULL };
	const size_t lens[] = { 19, 0 };
	const uint8_t wal[3] = { 1, 2, 3 };
	const char types[] = "RSKZEETDCWcdd";
	struct pgwire_msg m;
	size_t at = 0, i = 0;

	(void)state;
	pgwire_put_byte(&b, 'N');
	pgwire_auth_ok(&b);
	pgwire_parameter_status(&b, "server_version", "15.0");
	pgwire_backend_key(&b, 42, 7);
	pgwire_ready(&b);
	pgwire_error(&b, "FATAL", "28000", "no pg_hba.conf entry", NULL, NULL);
	pgwire_error(&b, "ERROR", "XX000", "m", "The detail.", "The hint.");
	pgwire_row_description(&b, 2, names, oids);
	pgwire_data_row(&b, 2, values, lens);
	pgwire_command_complete(&b, "IDENTIFY_SYSTEM");
	pgwire_copy_both(&b);
	pgwire_copy_done(&b);
	pgwire_xlogdata(&b, 0x4000000, 0x4000003, 1, wal, sizeof(wal));
	pgwire_keepalive(&b, 0x4000003, 2, true);
	assert_false(b.failed);
	assert_int_equal(b.data[0], 'N');
	for (at = 1; at < b.len; i++) {
		int n = pgwire_next_message(b.data + at, b.len - at, &m);

		assert_true(n > 0);
		assert_int_equal(m.type, types[i]);
		if (m.type == 'E' && types[i + 1] == 'E') {
			static const char e[] = "SFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry\0";

			assert_int_equal(m.len, sizeof(e));
			assert_memory_equal(m.body, e, sizeof(e));
		} else if (m.type == 'E') {
			static const char e[] =
				"SERROR\0VERROR\0CXX000\0Mm\0DThe detail.\0HThe hint.\0";

			assert_int_equal(m.len, sizeof(e));
			assert_memory_equal(m.body, e, sizeof(e));
		}
		if (m.type == 'R')
			assert_int_equal(m.len, 4);
		if (m.type == 'W')
			assert_int_equal(m.len, 3);
		if (m.type == 'd' && m.body[0] == 'w') {
			struct pgrepl_xlogdata x;

			assert_int_equal(pgrepl_parse_xlogdata(m.body, m.len, &x), 0);
			assert_int_equal(x.len, 3);
			assert_memory_equal(x.data, wal, 3);
		}
		if (m.type == 'd' && m.body[0] == 'k') {
			struct pgrepl_keepalive k;

			assert_int_equal(pgrepl_parse_keepalive(m.body, m.len, &k), 0);
			assert_true(k.reply_requested);
		}
		at += (size_t)n;
	}
	assert_int_equal(at, b.len);
	assert_int_equal(i, strlen(types));
	pgwire_consume(&b, 1);
	assert_int_equal(b.data[0], 'R');
	pgwire_buf_free(&b);
}

/* SCRAM's messages: AuthenticationSASL, Continue, Final; the SASLInitialResponse. */
static void test_sasl(void **state)
{
	static const char *const mechs[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256" };
	static const uint8_t sasl[] = "\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
	static const uint8_t initial[] = "SCRAM-SHA-256\0\0\0\0\x08n,,n=,r=";
	struct pgwire_sasl_initial in;
	struct pgwire_buf b = { 0 };
	struct pgwire_msg m;
	int n;

	(void)state;
	pgwire_auth_sasl(&b, 2, mechs);
	pgwire_auth_sasl_step(&b, false, "r=ab,s=cd,i=4096", 16);
	pgwire_auth_sasl_step(&b, true, "v=xy", 4);
	n = pgwire_next_message(b.data, b.len, &m);
	assert_int_equal(m.type, 'R');
	assert_int_equal(m.len, sizeof(sasl)); /* the literal's own NUL ends the list */
	assert_memory_equal(m.body, sasl, sizeof(sasl));
	pgwire_consume(&b, (size_t)n);
	n = pgwire_next_message(b.data, b.len, &m);
	assert_int_equal(m.len, 4 + 16);
	assert_memory_equal(m.body, "\0\0\0\x0br=ab,s=cd,i=4096", 20);
	pgwire_consume(&b, (size_t)n);
	n = pgwire_next_message(b.data, b.len, &m);
	assert_int_equal(n, (int)b.len);
	assert_memory_equal(m.body, "\0\0\0\x0cv=xy", 8);
	pgwire_buf_free(&b);

	assert_int_equal(pgwire_parse_sasl_initial(initial, sizeof(initial) - 1, &in), 0);
	assert_string_equal(in.mechanism, "SCRAM-SHA-256");
	assert_int_equal(in.len, 8);
	assert_memory_equal(in.data, "n,,n=,r=", 8);
	/* the length must be the rest exactly; -1 (no data) is refused; a name ends */
	assert_int_equal(pgwire_parse_sasl_initial(initial, sizeof(initial) - 2, &in), -EINVAL);
	assert_int_equal(pgwire_parse_sasl_initial(
				 (const uint8_t *)"SCRAM-SHA-256\0\xff\xff\xff\xff", 18, &in),
			 -EINVAL);
	assert_int_equal(pgwire_parse_sasl_initial((const uint8_t *)"SCRAM", 5, &in), -EINVAL);
	assert_int_equal(pgwire_parse_sasl_initial((const uint8_t *)"\0\0\0\0\0", 5, &in), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_startup),	 cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_messages), cmocka_unit_test(test_commands),
		cmocka_unit_test(test_builders), cmocka_unit_test(test_sasl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
