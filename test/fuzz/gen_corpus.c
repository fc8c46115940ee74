// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpus of the fuzz targets into test/fuzz/corpus/<target>/ (run from
 * the repository root: `make -f test/fuzz/Makefile corpus`).  Frames come from the codec's
 * own encoders, so they are valid by construction; the WAL prefix is the first page of a
 * synthetic PostgreSQL 15 segment; texts are config files, rules and names as an
 * operator writes them.  The output is committed; rerun this after a wire change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/codec.h"
#include "proto/pgrepl.h"
#include "serve/pgwire.h"
#include "walship/control.h"

#define CORPUS "test/fuzz/corpus"

static void write_seed(const char *target, const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *out;

	snprintf(path, sizeof(path), CORPUS "/%s", target);
	mkdir(CORPUS, 0755);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), CORPUS "/%s/%s", target, name);
	out = fopen(path, "wb");
	if (!out || fwrite(data, 1, len, out) != len || fclose(out) != 0) {
		fprintf(stderr, "could not write file \"%s\": %s\n", path, strerror(errno));
		exit(1);
	}
}

static void write_text(const char *target, const char *name, const char *text)
{
	write_seed(target, name, text, strlen(text));
}

/* A frame seed for fuzz_frame: mode byte, then the bytes. */
static void write_frame(const char *name, uint8_t mode, const uint8_t *frame, size_t len)
{
	uint8_t buf[8192];

	buf[0] = mode;
	if (mode == 0) {
		memcpy(buf + 1, frame, len);
		write_seed("frame", name, buf, len + 1);
	} else if (mode == 1) {
		/* type flags reserved(2), then the payload; the target computes the CRCs. */
		buf[1] = frame[0];
		buf[2] = buf[3] = buf[4] = 0;
		memcpy(buf + 5, frame + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
		write_seed("frame", name, buf, len - WIRE_HEADER_SIZE + 5);
	} else {
		buf[1] = frame[0];
		memcpy(buf + 2, frame + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE);
		write_seed("frame", name, buf, len - WIRE_HEADER_SIZE + 2);
	}
}

static void put_le(uint8_t *at, uint64_t v, int bytes)
{
	for (int idx = 0; idx < bytes; idx++)
		at[idx] = (uint8_t)(v >> (8 * idx));
}

static void frames(void)
{
	static uint8_t stream[65536];
	struct msg_hello hello = { .version = WIRE_VERSION,
				   .role = WIRE_ROLE_REPLICA,
				   .system_identifier = UINT64_C(7713288329218603033),
				   .page_magic = 0xD110,
				   .seg_size = 16 * 1024 * 1024,
				   .block_size = 8192 };
	struct msg_file_begin begin = { .file_id = 1,
					.kind = WIRE_FILE_SEGMENT,
					.size = 16 * 1024 * 1024,
					.name = "000000010000000000000003" };
	struct msg_file_end end = { .file_id = 1, .size = 16 * 1024 * 1024 };
	struct msg_ack ack = {
		.file_id = 1,
		.status = WIRE_ACK_CONFLICT,
		.durable_offset = 4096,
		.name = "000000010000000000000003",
		.message = "file \"000000010000000000000003\" exists with other content"
	};
	struct msg_error error = { .code = WIRE_ERR_INCOMPATIBLE,
				   .message = "system identifier differs" };
	struct msg_ping ping = { .token = 42 };
	struct msg_have have = {
		.count = 2,
		.entries = { { .kind = WIRE_HAVE_PARTIAL,
			       .crc = 0x1234abcd,
			       .size = 16 * 1024 * 1024,
			       .durable = 3 * 1024 * 1024,
			       .name = "000000010000000000000004" },
			     { .kind = WIRE_HAVE_COMPLETE,
			       .crc = 0x89abcdef,
			       .size = 16 * 1024 * 1024,
			       .durable = 16 * 1024 * 1024,
			       .name = "000000010000000000000003" } },
	};
	struct msg_progress progress = { .file_id = 1, .received = 81920, .durable = 65536 };
	struct msg_file_cancel cancel = { .file_id = 1 };
	uint8_t frame[8192];
	size_t at = 0;
	int len;

	strcpy(hello.arch, wire_arch());
	strcpy(hello.node_name, "r1");

#define ADD(name, expr)                                                    \
	do {                                                               \
		len = (expr);                                              \
		if (len < 0)                                               \
			exit(1);                                           \
		for (uint8_t mode = 0; mode < 3; mode++) {                 \
			char seed[64];                                     \
			snprintf(seed, sizeof(seed), "%s-%u", name, mode); \
			write_frame(seed, mode, frame, (size_t)len);       \
		}                                                          \
		memcpy(stream + at, frame, (size_t)len);                   \
		at += (size_t)len;                                         \
	} while (0)

	ADD("hello", msg_hello_encode(frame, sizeof(frame), &hello));
	write_seed("hello", "replica", frame + WIRE_HEADER_SIZE, (size_t)len - WIRE_HEADER_SIZE);
	hello.role = WIRE_ROLE_PRIMARY;
	hello.system_identifier = 0;
	hello.page_magic = 0;
	hello.seg_size = 0;
	hello.block_size = 0;
	strcpy(hello.node_name, "ws-primary.example_1");
	len = msg_hello_encode(frame, sizeof(frame), &hello);
	write_seed("hello", "primary-unknown-ids", frame + WIRE_HEADER_SIZE,
		   (size_t)len - WIRE_HEADER_SIZE);
	/* A later protocol version: only the version is read. */
	put_le(frame + WIRE_HEADER_SIZE, WIRE_VERSION + 1, 2);
	write_seed("hello", "version-later", frame + WIRE_HEADER_SIZE,
		   (size_t)len - WIRE_HEADER_SIZE);

	ADD("file-begin", msg_file_begin_encode(frame, sizeof(frame), &begin));
	memset(frame + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE, 0x5a, 64);
	ADD("data", msg_data_seal(frame, 1, 0, 64));
	ADD("file-end", msg_file_end_encode(frame, sizeof(frame), &end));
	ADD("ack", msg_ack_encode(frame, sizeof(frame), &ack));
	ADD("error", msg_error_encode(frame, sizeof(frame), &error));
	ADD("ping", msg_ping_encode(frame, sizeof(frame), WIRE_PING, &ping));
	ADD("pong", msg_ping_encode(frame, sizeof(frame), WIRE_PONG, &ping));
	ADD("have", msg_have_encode(frame, sizeof(frame), &have));
	ADD("progress", msg_progress_encode(frame, sizeof(frame), &progress));
	ADD("file-cancel", msg_file_cancel_encode(frame, sizeof(frame), &cancel));
	begin.flags = WIRE_BEGIN_STREAM;
	ADD("file-begin-stream", msg_file_begin_encode(frame, sizeof(frame), &begin));
	begin.flags = 0;
	begin.kind = WIRE_FILE_HISTORY;
	begin.size = 42;
	strcpy(begin.name, "00000002.history");
	ADD("file-begin-history", msg_file_begin_encode(frame, sizeof(frame), &begin));
#undef ADD
	memmove(stream + 1, stream, at);
	stream[0] = 0;
	write_seed("frame", "stream", stream, at + 1);
}

/* fuzz_page seeds: control bytes, then the first page of a PG 15 segment 1 (1 MiB). */
static void pages(void)
{
	uint8_t seed[4 + 8192] = { 0 };
	uint8_t *page = seed + 4;

	put_le(page, 0xD110, 2); /* xlp_magic, PostgreSQL 15 */
	put_le(page + 2, 0x0002 | 0x0004, 2); /* XLP_LONG_HEADER | XLP_BKP_REMOVABLE */
	put_le(page + 4, 1, 4); /* xlp_tli */
	put_le(page + 8, 1024 * 1024, 8); /* xlp_pageaddr: segment 1 of 1 MiB */
	put_le(page + 24, UINT64_C(7713288329218603033), 8);
	put_le(page + 32, 1024 * 1024, 4); /* xlp_seg_size */
	put_le(page + 36, 8192, 4); /* xlp_xlog_blcksz */
	memset(page + 40, 0x5a, 200); /* record bytes */

	/* segment, expected sysid, 12 stamped pages; 1 MiB; pieces seeded. */
	seed[0] = 0 | 4 | (12 << 3);
	seed[1] = 0;
	seed[2] = 0x34;
	seed[3] = 0x12;
	write_seed("page", "segment-1m-header", seed, 4 + 256);
	seed[0] = 1 | (3 << 3); /* partial, any sysid */
	write_seed("page", "partial-1m", seed, 4 + 256);
	seed[0] = 0 | (31 << 3);
	write_seed("page", "segment-full-first-page", seed, sizeof(seed));
	/* A history file: text of its own length. */
	memcpy(seed + 4, "1\t0/3000000\tno recovery target specified\n", 42);
	seed[0] = 2;
	seed[1] = 2;
	write_seed("page", "history", seed, 4 + 42);
}

/*
 * A seed for fuzz_control: receive flags, the control messages (one byte each, see the
 * target), then the request.
 */
static void control_seed(const char *name, uint8_t flags, const uint8_t *plans, uint8_t nplans,
			 uint16_t op, uint32_t magic)
{
	struct ctl_request req = { .magic = magic, .version = CTL_VERSION, .op = op };
	uint8_t buf[8 + sizeof(req)];

	snprintf(req.name, sizeof(req.name), "%s", "000000010000000000000003");
	buf[0] = flags;
	buf[1] = nplans;
	if (nplans)
		memcpy(buf + 2, plans, nplans);
	memcpy(buf + 2 + nplans, &req, sizeof(req));
	write_seed("control", name, buf, 2 + nplans + sizeof(req));
}

static void control_requests(void)
{
	static const uint8_t one[] = { 1 }, two[] = { 2 }, split[] = { 1, 1 }, creds[] = { 0x41 };

	control_seed("push", 0, one, 1, CTL_PUSH, CTL_MAGIC);
	control_seed("status", 0, NULL, 0, CTL_STATUS, CTL_MAGIC);
	control_seed("drop", 0, NULL, 0, CTL_REPLICA_DROP, CTL_MAGIC);
	control_seed("push-two-fds", 0, two, 1, CTL_PUSH, CTL_MAGIC);
	control_seed("push-two-cmsgs", 0, split, 2, CTL_PUSH, CTL_MAGIC);
	control_seed("push-ctrunc", 2, one, 1, CTL_PUSH, CTL_MAGIC);
	control_seed("push-no-fd", 0, NULL, 0, CTL_PUSH, CTL_MAGIC);
	control_seed("status-with-fd", 0, one, 1, CTL_STATUS, CTL_MAGIC);
	control_seed("push-creds", 0, creds, 1, CTL_PUSH, CTL_MAGIC);
	control_seed("bad-magic", 0, one, 1, CTL_PUSH, 0x12345678);
}

/* Replication payloads as PostgreSQL 15 sends them, and LSN and segment-size texts. */
static void pgrepl_seeds(void)
{
	uint8_t w[PGREPL_XLOGDATA_HDR + 16] = { PGREPL_MSG_XLOGDATA };
	uint8_t k[PGREPL_KEEPALIVE_LEN] = { PGREPL_MSG_KEEPALIVE };
	uint8_t r[PGREPL_STATUS_LEN];

	pgrepl_put64(w + 1, 0x6040000ULL);
	pgrepl_put64(w + 9, 0x604F478ULL);
	pgrepl_put64(w + 17, 849500000000000ULL);
	memcpy(w + PGREPL_XLOGDATA_HDR, "\x10\xd1\x02\x00\x01\x00\x00\x00", 8);
	write_seed("pgrepl", "xlogdata", w, sizeof(w));
	write_seed("pgrepl", "xlogdata-empty", w, PGREPL_XLOGDATA_HDR);
	pgrepl_put64(k + 1, 0x10E0000ULL);
	pgrepl_put64(k + 9, 849500000000000ULL);
	k[17] = 1;
	write_seed("pgrepl", "keepalive", k, sizeof(k));
	pgrepl_build_status(r, 0xE028400ULL, 0xE000000ULL, 0, 849500000000000LL, false);
	write_seed("pgrepl", "status", r, sizeof(r));
	write_text("pgrepl", "lsn", "0/604F478");
	write_text("pgrepl", "lsn-padded", "16/0B374D84");
	write_text("pgrepl", "seg-size", "16MB");
}

/* Append the simple Query @text to @b. */
static void put_query(struct pgwire_buf *b, const char *text)
{
	size_t n = strlen(text) + 1;
	uint8_t *p = pgwire_reserve(b, 5 + n);

	if (!p)
		exit(1);
	p[0] = 'Q';
	p[1] = 0;
	p[2] = 0;
	p[3] = (uint8_t)((n + 4) >> 8);
	p[4] = (uint8_t)(n + 4);
	memcpy(p + 5, text, n);
	b->len += 5 + n;
}

/*
 * Whole sessions for fuzz_standby: the size of each receive (0: all at once), then what
 * a client sends, from its startup packet on: a walreceiver streaming an older timeline
 * to its end and the next one through a temporary slot, pg_receivewal, a client that errs
 * (the extended query protocol, a stream refused, messages out of place), and one whose
 * FATAL comes while a read of WAL is in flight.
 */
static void standby_seeds(void)
{
	static const char params[] = "user\0postgres\0replication\0true\0"
				     "application_name\0sb1\0";
	static const uint8_t ssl[] = { 0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F };
	uint8_t startup[8 + sizeof(params)] = { 0, 0, 0, 8 + sizeof(params), 0, 3, 0, 0 };
	uint8_t r[PGREPL_STATUS_LEN];
	struct pgwire_buf b = { 0 };

	memcpy(startup + 8, params, sizeof(params));
	pgrepl_build_status(r, 0x1100000ULL, 0x1100000ULL, 0x1100000ULL, 849500000000000LL, true);

	pgwire_put_byte(&b, 0);
	pgwire_put(&b, ssl, sizeof(ssl));
	pgwire_put(&b, startup, sizeof(startup));
	put_query(&b, "IDENTIFY_SYSTEM");
	put_query(&b,
		  "CREATE_REPLICATION_SLOT \"pg_walreceiver_9\" TEMPORARY PHYSICAL (RESERVE_WAL)");
	put_query(&b, "START_REPLICATION SLOT \"pg_walreceiver_9\" 0/1100000 TIMELINE 1");
	pgwire_put(&b, "d\0\0\0\x26", 5);
	pgwire_put(&b, r, sizeof(r));
	pgwire_put(&b, "c\0\0\0\4", 5);
	put_query(&b, "TIMELINE_HISTORY 2");
	put_query(&b, "START_REPLICATION SLOT \"pg_walreceiver_9\" 0/1180000 TIMELINE 2");
	pgwire_put(&b, "c\0\0\0\4X\0\0\0\4", 10);
	write_seed("standby", "walreceiver", b.data, b.len);

	b.len = 0;
	pgwire_put_byte(&b, 64);
	pgwire_put(&b, startup, sizeof(startup));
	put_query(&b, "SHOW wal_segment_size");
	put_query(&b, "CREATE_REPLICATION_SLOT rw PHYSICAL");
	put_query(&b, "READ_REPLICATION_SLOT rw");
	put_query(&b, "START_REPLICATION SLOT rw 0/11F0000");
	pgwire_put(&b, "d\0\0\0\x26", 5);
	pgwire_put(&b, r, sizeof(r));
	write_seed("standby", "receivewal", b.data, b.len);

	b.len = 0;
	pgwire_put_byte(&b, 7);
	pgwire_put(&b, startup, sizeof(startup));
	put_query(&b, "");
	pgwire_put(&b, "P\0\0\0\x08\0x\0\0\0\0", 9);
	put_query(&b, "IDENTIFY_SYSTEM");
	pgwire_put(&b, "S\0\0\0\4H\0\0\0\4F\0\0\0\4d\0\0\0\4", 20);
	put_query(&b, "START_REPLICATION FFFF/0");
	put_query(&b, "START_REPLICATION 0/0");
	put_query(&b, "START_REPLICATION 0/1000000 TIMELINE 7");
	put_query(&b, "START_REPLICATION 0/1100000");
	pgwire_put(&b, "d\0\0\0\7r\0\0", 8);
	put_query(&b, "DROP_REPLICATION_SLOT nosuch WAIT");
	put_query(&b, "START_REPLICATION 0/1100000");
	pgwire_put(&b, "f\0\0\0\6x\0", 7);
	write_seed("standby", "errors", b.data, b.len);

	/* a FATAL while a read of WAL is in flight: nothing may follow it */
	b.len = 0;
	pgwire_put_byte(&b, 7);
	pgwire_put(&b, startup, sizeof(startup));
	put_query(&b, "START_REPLICATION 0/1100000");
	pgwire_put(&b, "`\0\0\0\4", 5);
	write_seed("standby", "fatal-while-streaming", b.data, b.len);
	pgwire_buf_free(&b);
}

/* What a PostgreSQL 15 walreceiver and pg_receivewal send to pg_listen. */
static void pgwire_seeds(void)
{
	static const uint8_t ssl[] = { 0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F };
	static const char params[] = "user\0repl\0database\0replication\0replication\0true\0"
				     "application_name\0sb1\0";
	uint8_t startup[8 + sizeof(params)] = { 0, 0, 0, 8 + sizeof(params), 0, 3, 0, 0 };
	struct pgwire_buf b = { 0 };
	uint8_t r[PGREPL_STATUS_LEN];
	static const char *const queries[] = { "IDENTIFY_SYSTEM", "SHOW wal_segment_size",
					       "TIMELINE_HISTORY 2",
					       "START_REPLICATION 0/3000000 TIMELINE 1" };

	write_seed("pgwire", "ssl-request", ssl, sizeof(ssl));
	memcpy(startup + 8, params, sizeof(params));
	write_seed("pgwire", "startup", startup, sizeof(startup));
	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		size_t n = strlen(queries[i]) + 1;
		uint8_t *p = pgwire_reserve(&b, 5 + n);

		p[0] = 'Q';
		p[1] = 0;
		p[2] = 0;
		p[3] = (uint8_t)((n + 4) >> 8);
		p[4] = (uint8_t)(n + 4);
		memcpy(p + 5, queries[i], n);
		b.len += 5 + n;
	}
	pgrepl_build_status(r, 0x3000000ULL, 0x3000000ULL, 0x3000000ULL, 849500000000000LL, true);
	pgwire_put(&b, "d\0\0\0\x26", 5);
	pgwire_put(&b, r, sizeof(r));
	pgwire_put(&b, "c\0\0\0\4X\0\0\0\4", 10);
	write_seed("pgwire", "session", b.data, b.len);
	pgwire_buf_free(&b);
	/* a SCRAM-SHA-256 exchange: SASLInitialResponse, then SASLResponse */
	{
		static const char first[] = "n,,n=,r=rOprNGfwEbeRWgbNEkqO";
		static const char final[] = "c=biws,r=rOprNGfwEbeRWgbNEkqOservernonce,p="
					    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
		static const char mech[] = "SCRAM-SHA-256";
		size_t n = sizeof(mech) + 4 + strlen(first);
		uint8_t *p = pgwire_reserve(&b, 5 + n);

		p[0] = 'p';
		p[1] = p[2] = 0;
		p[3] = (uint8_t)((n + 4) >> 8);
		p[4] = (uint8_t)(n + 4);
		memcpy(p + 5, mech, sizeof(mech));
		p[5 + sizeof(mech)] = p[6 + sizeof(mech)] = p[7 + sizeof(mech)] = 0;
		p[8 + sizeof(mech)] = (uint8_t)strlen(first);
		memcpy(p + 9 + sizeof(mech), first, strlen(first));
		b.len += 5 + n;
		n = strlen(final);
		p = pgwire_reserve(&b, 5 + n);
		p[0] = 'p';
		p[1] = p[2] = 0;
		p[3] = (uint8_t)((n + 4) >> 8);
		p[4] = (uint8_t)(n + 4);
		memcpy(p + 5, final, n);
		b.len += 5 + n;
		write_seed("pgwire", "scram", b.data, b.len);
		pgwire_buf_free(&b);
	}
	write_text(
		"pgwire", "create-temp-slot",
		"CREATE_REPLICATION_SLOT \"pg_walreceiver_77\" TEMPORARY PHYSICAL (RESERVE_WAL)");
	write_text("pgwire", "start-slot",
		   "START_REPLICATION SLOT \"pg_walreceiver_77\" PHYSICAL 1/E000000 TIMELINE 3");
}

int main(void)
{
	pgwire_seeds();
	standby_seeds();
	pgrepl_seeds();
	control_requests();
	frames();
	pages();

	write_text("config", "primary.conf",
		   "# walshipd on the primary host\n"
		   "role = primary\n"
		   "node_name = 'db1'\n"
		   "listen = 10.0.0.1:5480\n"
		   "spool_dir = '/var/lib/walship/spool'\n"
		   "socket = /run/walship/walshipd.sock\n"
		   "socket_group = postgres\n"
		   "socket_permissions = 0660\n"
		   "max_senders = 4\n"
		   "sync_replicas = 1\n"
		   "push_timeout = 1min\n"
		   "keepalive_interval = 5s\n"
		   "keepalive_timeout = 30s\n"
		   "spool_max_size = 2048\n"
		   "spool_overflow = fail\n"
		   "zero_copy = auto\n"
		   "log_level = log\n");
	write_text("config", "replica.conf",
		   "role replica   # '=' is optional\n"
		   "node_name = r1\n"
		   "upstream = '[fd00:77::1]:5480'\n"
		   "archive_dir = '/var/lib/walship/archive'\n"
		   "reconnect_min = 100ms\n"
		   "reconnect_max = 10s\n"
		   "connect_timeout = 5s\n"
		   "metrics_listen = '127.0.0.1:9187'\n"
		   "probes = off\n");
	write_text("config", "errors.conf",
		   "role = standby\nfoo = 1\nmax_senders = 99999\nnode_name = 'it''s'\n"
		   "push_timeout = 3 fortnights\nrole = primary\n");

	write_text("walname", "segment", "000000010000000000000003");
	write_text("walname", "partial", "00000001000000000000000A.partial");
	write_text("walname", "history", "00000002.history");
	write_text("walname", "backup", "000000010000000000000002.00000028.backup");
	write_text("walname", "lowercase", "00000001000000000000000a");
	write_text("walname", "traversal", "../000000010000000000000003");

	write_text("hba", "example.hba",
		   "# TYPE     ROLE     NODE_NAME  CERT_NAME        ADDRESS\n"
		   "hostssl    replica  r1         r1.example.net   10.0.0.0/24   # first\n"
		   "host       replica  r2,r3      all              10.0.1.0/24\n"
		   "hostssl    replica  all        samenode         fd00:77::/64\n"
		   "hostnossl  replica  lab        all              127.0.0.1\n"
		   "reject     all      bad        all              all\n"
		   "host       primary  up         all              ::ffff:10.0.9.9/128\n"
		   "reject     replica  all        all              0.0.0.0/0\n");
	write_text("hba", "errors.hba",
		   "hots replica all all all\nhost replica all all 10.0.0.1/24\n"
		   "host replica r1, all all\nhostnossl replica all c all\n");
	return 0;
}
