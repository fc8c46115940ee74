// SPDX-License-Identifier: MIT
/*
 * fake_peer: a scriptable walship protocol peer for system tests (issue 11): a fake
 * replica at a primary's port, or a fake primary for a replica's upstream.  Frames are
 * built by the daemon's own codec (daemon/proto/codec.h), so they carry correct CRCs
 * unless a step breaks them on purpose.  Plaintext only.
 *
 *   fake_peer --connect ADDR:PORT | --listen ADDR:PORT
 *             [--name NAME] [--version N] [--sysid N] [--timeout SECONDS] STEP...
 *
 *   --connect    connect to ADDR:PORT (retrying while it is refused, up to the timeout),
 *                then run the steps
 *   --listen     listen on ADDR:PORT (logs "fake_peer: listening on ADDR:PORT" on stderr),
 *                accept one connection (waiting up to the timeout), then run the steps
 *   --name       node name in our HELLO (default "fake"); one the node-name rule refuses
 *                (".r2") is sent all the same
 *   --version    protocol version in our HELLO (default: this build's WIRE_VERSION)
 *   --sysid      system identifier in our HELLO (default: what the peer's HELLO said,
 *                if read-hello ran before, else 0 = not known)
 *   --timeout    how long connecting, accepting or a reading step waits for the peer
 *                (default 30 s)
 *
 * Steps, run in order:
 *   hello-replica       send a replica HELLO
 *   hello-primary       send a primary HELLO
 *   read-hello          read the peer's HELLO (PINGs are answered, PONGs skipped); fail if
 *                       an ERROR or anything else arrives (printed)
 *   have                send an empty HAVE inventory
 *   ping-flood N        send N PINGs and never read
 *   begin-flood N       (as a fake primary) send N FILE_BEGINs for distinct 16 MiB
 *                       segments (000000010000000000000001 on), no data
 *   garbage N           send N random bytes
 *   bad-crc             send a PING whose payload CRC is wrong
 *   hold SECONDS        keep the connection open without reading
 *   expect-error CODE   read frames until an ERROR arrives; print `error CODE_NAME: message`
 *                       (CODE_NAME upper case: PROTOCOL, VERSION, CHECKSUM, TOO_MANY, NAME,
 *                       ...); succeed if CODE_NAME is CODE (case-insensitive), fail
 *                       otherwise or at the end of the stream without an ERROR
 *   expect-close        read (and discard) until the end of the stream or a reset
 *   pong-until-close    read frames until the end of the stream, answering PINGs (a
 *                       replica's handshake completes with a PONG): an ERROR is printed
 *
 * Files, as a fake primary (synthetic WAL segments of PostgreSQL 15, block size 8192:
 * a valid first page naming SYSID, zeros after it):
 *   begin ID NAME SIZE          send FILE_BEGIN of segment NAME, SIZE bytes, as file ID
 *   begin-stream ID NAME SIZE   the same with flag STREAM (a segment still being written)
 *   seg-data ID SYSID FROM TO   send bytes FROM..TO of file ID's segment, of system SYSID,
 *                               in DATA frames of at most 1 MiB
 *   end ID                      send FILE_END of file ID
 *   expect-ack STATUS           read frames until an ACK arrives (PINGs answered, others
 *                               skipped); print `ack NAME STATUS: message`; succeed if its
 *                               status name (stored, duplicate, conflict, invalid,
 *                               io_error, sysid) is STATUS
 *   expect-progress             read frames until a PROGRESS arrives (PINGs answered,
 *                               others skipped); print `progress ID DURABLE`
 *
 * A sending step that finds the connection closed by the peer stops there, prints
 * "fake_peer: STEP: connection closed by the peer after K of N" on stderr and succeeds:
 * a following expect-close or expect-error says whether that was right.
 *
 * Exit status: 0 when every step succeeded, 1 with a one-line reason on stderr otherwise,
 * 2 for a usage error.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/crc32c.h"
#include "proto/codec.h"

#define FRAME_MAX (WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD)
/* Frames are written in batches of about this many bytes. */
#define BATCH_BYTES (256 * 1024)

struct peer_opts {
	const char *name;
	unsigned int version;
	uint64_t sysid;
	bool sysid_given;
	int timeout_ms;
};

static int fd = -1;
static struct peer_opts opts = { .name = "fake", .version = WIRE_VERSION, .timeout_ms = 30000 };
/* What the peer's HELLO said (read-hello). */
static struct msg_hello peer_hello;
static bool peer_hello_seen;
static uint8_t rx_buf[FRAME_MAX];

static int die(const char *fmt, ...) attr_printf(1, 2);

static int die(const char *fmt, ...)
{
	va_list ap;

	fputs("fake_peer: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static int open_connection(bool listen_mode, const char *addr)
{
	struct sockaddr_in sa;
	int one = 1, s, c;

	if (parse_addr(addr, &sa) < 0)
		die("invalid address \"%s\" (want IPv4ADDR:PORT)", addr);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die("could not create socket: %s", strerror(errno));
	if (!listen_mode) {
		/* Refused: the daemon may still be starting; try again every 100 ms. */
		for (int waited = 0; connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0;
		     waited += 100) {
			if (errno != ECONNREFUSED || waited >= opts.timeout_ms)
				die("could not connect to %s: %s", addr, strerror(errno));
			close(s);
			usleep(100 * 1000);
			s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (s < 0)
				die("could not create socket: %s", strerror(errno));
		}
		c = s;
	} else {
		struct pollfd pfd = { .fd = s, .events = POLLIN };

		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0)
			die("could not listen on %s: %s", addr, strerror(errno));
		fprintf(stderr, "fake_peer: listening on %s\n", addr);
		if (poll(&pfd, 1, opts.timeout_ms) == 0)
			die("nobody connected to %s within %d ms", addr, opts.timeout_ms);
		c = accept(s, NULL, NULL);
		if (c < 0)
			die("could not accept on %s: %s", addr, strerror(errno));
		close(s);
		fprintf(stderr, "fake_peer: accepted a connection on %s\n", addr);
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return c;
}

/* Write all of @buf; false when the peer closed the connection (EPIPE, ECONNRESET). */
static bool write_all(const uint8_t *buf, size_t len, const char *step)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return false;
		if (n < 0)
			die("%s: could not send: %s", step, strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* Send one encoded frame (@len from an encoder, < 0 when it refused). */
static void send_frame(const uint8_t *frame, int len, const char *step)
{
	if (len < 0)
		die("%s: could not encode the frame: %s", step, strerror(-len));
	if (!write_all(frame, (size_t)len, step))
		die("%s: connection closed by the peer", step);
}

/*
 * Read exactly @len bytes, waiting at most the timeout.  Returns 1, 0 at the end of the
 * stream (or a reset), and dies on a timeout.
 */
static int read_exact(uint8_t *buf, size_t len, const char *step)
{
	while (len > 0) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int ret = poll(&pfd, 1, opts.timeout_ms);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret == 0)
			die("%s: nothing from the peer for %d ms", step, opts.timeout_ms);
		n = read(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0)
			die("%s: could not receive: %s", step, strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
	return 1;
}

/* Read one frame into rx_buf: 1, or 0 at the end of the stream; dies on a bad frame. */
static int read_frame(struct frame_header *hdr, const char *step)
{
	int ret;

	if (!read_exact(rx_buf, WIRE_HEADER_SIZE, step))
		return 0;
	ret = frame_header_decode(rx_buf, hdr);
	if (ret < 0)
		die("%s: invalid frame header from the peer (%s)", step, strerror(-ret));
	if (!read_exact(rx_buf + WIRE_HEADER_SIZE, hdr->length, step))
		return 0;
	if (frame_payload_check(hdr, rx_buf + WIRE_HEADER_SIZE) < 0)
		die("%s: payload checksum mismatch in a %s frame from the peer", step,
		    wire_type_name(hdr->type));
	return 1;
}

static const char *error_code_name(uint32_t code, char *buf, size_t len)
{
	snprintf(buf, len, "%s", wire_error_name(code));
	for (char *p = buf; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return buf;
}

static void print_error(const uint8_t *payload, uint32_t len, struct msg_error *me)
{
	char name[32];

	if (msg_error_decode(payload, len, me) < 0)
		die("malformed ERROR from the peer");
	printf("error %s: %s\n", error_code_name(me->code, name, sizeof(name)), me->message);
	fflush(stdout);
}

/* Answer a PING (so that a reading step does not starve a well-behaved peer). */
static void answer_ping(const uint8_t *payload, uint32_t len, const char *step)
{
	struct msg_ping ping;
	uint8_t frame[WIRE_HEADER_SIZE + 8];

	if (msg_ping_decode(payload, len, &ping) < 0)
		die("%s: malformed PING from the peer", step);
	send_frame(frame, msg_ping_encode(frame, sizeof(frame), WIRE_PONG, &ping), step);
}

static void step_hello(uint8_t role, const char *step)
{
	struct msg_hello h = { .version = (uint16_t)opts.version, .role = role };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	size_t name_len;
	bool forged;
	int len;

	/* Whatever the peer told of the cluster: a plausible identity unless told. */
	if (peer_hello_seen) {
		h.system_identifier = peer_hello.system_identifier;
		h.page_magic = peer_hello.page_magic;
		h.seg_size = peer_hello.seg_size;
		h.block_size = peer_hello.block_size;
	}
	if (opts.sysid_given)
		h.system_identifier = opts.sysid;
	snprintf(h.arch, sizeof(h.arch), "%s", wire_arch());
	snprintf(h.node_name, sizeof(h.node_name), "%s", opts.name);
	name_len = strlen(h.node_name);
	/* A name against the rule (--name .r2) is sent all the same, the receiver's check
	 * being what is tested: encode one of the same length, then put it in its place (the
	 * last field) and seal the frame again. */
	forged = name_len > 0 && !node_name_valid(h.node_name);
	if (forged)
		memset(h.node_name, 'x', name_len);
	len = msg_hello_encode(frame, sizeof(frame), &h);
	if (forged && len > 0) {
		memcpy(frame + len - name_len, opts.name, name_len);
		frame_header_encode(
			frame, WIRE_HELLO, 0, (uint32_t)len - WIRE_HEADER_SIZE,
			crc32c(0, frame + WIRE_HEADER_SIZE, (size_t)len - WIRE_HEADER_SIZE));
	}
	send_frame(frame, len, step);
}

static void step_read_hello(void)
{
	struct frame_header hdr;
	struct msg_error me;
	int ret;

	for (;;) {
		if (!read_frame(&hdr, "read-hello"))
			die("read-hello: the peer closed the connection without a HELLO");
		if (hdr.type == WIRE_PING) {
			answer_ping(rx_buf + WIRE_HEADER_SIZE, hdr.length, "read-hello");
			continue;
		}
		if (hdr.type == WIRE_PONG)
			continue;
		break;
	}
	if (hdr.type == WIRE_ERROR) {
		print_error(rx_buf + WIRE_HEADER_SIZE, hdr.length, &me);
		die("read-hello: the peer sent ERROR %s instead of a HELLO",
		    wire_error_name(me.code));
	}
	if (hdr.type != WIRE_HELLO)
		die("read-hello: expected HELLO, got %s", wire_type_name(hdr.type));
	ret = msg_hello_decode(rx_buf + WIRE_HEADER_SIZE, hdr.length, &peer_hello);
	if (ret < 0)
		die("read-hello: malformed HELLO from the peer (version %u): %s",
		    peer_hello.version, strerror(-ret));
	peer_hello_seen = true;
	fprintf(stderr, "fake_peer: HELLO from \"%s\": version %u, role %s, system %llu\n",
		peer_hello.node_name, peer_hello.version,
		peer_hello.role == WIRE_ROLE_PRIMARY ? "primary" : "replica",
		(unsigned long long)peer_hello.system_identifier);
}

static void step_have(void)
{
	static struct msg_have have; /* count 0 */
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];

	send_frame(frame, msg_have_encode(frame, sizeof(frame), &have), "have");
}

/*
 * Send @count frames made by @make(index, out) in batches.  Stops early, without failing,
 * when the peer closes the connection.
 */
static void flood(const char *step, unsigned long count,
		  int (*make)(unsigned long index, uint8_t *out, size_t cap))
{
	static uint8_t batch[BATCH_BYTES + WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];
	unsigned long done = 0, sent = 0;
	size_t used = 0;

	while (done < count) {
		int len = make(done, batch + used, sizeof(batch) - used);

		if (len < 0)
			die("%s: could not encode frame %lu: %s", step, done, strerror(-len));
		used += (size_t)len;
		done++;
		if (used < BATCH_BYTES && done < count)
			continue;
		if (!write_all(batch, used, step)) {
			fprintf(stderr,
				"fake_peer: %s: connection closed by the peer after %lu of %lu\n",
				step, sent, count);
			return;
		}
		sent = done;
		used = 0;
	}
	fprintf(stderr, "fake_peer: %s: sent %lu\n", step, sent);
}

static int make_ping(unsigned long index, uint8_t *out, size_t cap)
{
	struct msg_ping ping = { .token = index };

	return msg_ping_encode(out, cap, WIRE_PING, &ping);
}

static int make_begin(unsigned long index, uint8_t *out, size_t cap)
{
	struct msg_file_begin fb = {
		.file_id = (uint32_t)index + 1,
		.kind = WIRE_FILE_SEGMENT,
		.size = 16 * 1024 * 1024,
	};
	uint64_t segno = index + 1;

	/* Timeline 1, 16 MiB segments: 256 per "log" number. */
	snprintf(fb.name, sizeof(fb.name), "00000001%08llX%08llX", (unsigned long long)(segno >> 8),
		 (unsigned long long)(segno & 0xff));
	return msg_file_begin_encode(out, cap, &fb);
}

static void step_garbage(unsigned long count)
{
	uint8_t buf[4096];

	srandom((unsigned int)(time(NULL) ^ getpid()));
	while (count > 0) {
		size_t n = count < sizeof(buf) ? count : sizeof(buf);

		for (size_t idx = 0; idx < n; idx++)
			buf[idx] = (uint8_t)random();
		if (!write_all(buf, n, "garbage")) {
			fprintf(stderr, "fake_peer: garbage: connection closed by the peer\n");
			return;
		}
		count -= n;
	}
}

static void step_bad_crc(void)
{
	struct msg_ping ping = { .token = 42 };
	uint8_t frame[WIRE_HEADER_SIZE + 8];
	int len = msg_ping_encode(frame, sizeof(frame), WIRE_PING, &ping);

	if (len < 0)
		die("bad-crc: could not encode the frame");
	/* Change a payload byte: the header (and its CRC) stays good, the payload CRC
	 * no longer matches. */
	frame[WIRE_HEADER_SIZE] ^= 0xff;
	send_frame(frame, len, "bad-crc");
}

static void step_expect_error(const char *want)
{
	struct frame_header hdr;
	struct msg_error me;
	char name[32];

	for (;;) {
		if (!read_frame(&hdr, "expect-error"))
			die("expect-error: the peer closed the connection without an ERROR");
		if (hdr.type == WIRE_ERROR)
			break;
	}
	print_error(rx_buf + WIRE_HEADER_SIZE, hdr.length, &me);
	error_code_name(me.code, name, sizeof(name));
	if (strcasecmp(name, want) != 0)
		die("expect-error: got ERROR %s, expected %s", name, want);
}

static void step_pong_until_close(void)
{
	struct frame_header hdr;
	struct msg_error me;

	while (read_frame(&hdr, "pong-until-close")) {
		if (hdr.type == WIRE_PING)
			answer_ping(rx_buf + WIRE_HEADER_SIZE, hdr.length, "pong-until-close");
		else if (hdr.type == WIRE_ERROR)
			print_error(rx_buf + WIRE_HEADER_SIZE, hdr.length, &me);
	}
}

static void step_expect_close(void)
{
	uint8_t buf[65536];

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int ret = poll(&pfd, 1, opts.timeout_ms);
		ssize_t n;

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret == 0)
			die("expect-close: the connection is still open after %d ms",
			    opts.timeout_ms);
		n = read(fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return;
		if (n < 0 && errno != EINTR)
			die("expect-close: could not receive: %s", strerror(errno));
	}
}

/* The files begun (begin), by ID. */
#define MAX_FILES 16
static struct {
	uint32_t id;
	uint64_t size;
	char name[WIRE_MAX_FILE_NAME + 1];
} files[MAX_FILES];
static unsigned int nfiles;

static unsigned int file_of(unsigned long id, const char *step)
{
	for (unsigned int i = 0; i < nfiles; i++)
		if (files[i].id == id)
			return i;
	die("%s: no file %lu was begun", step, id);
	return 0;
}

static void step_begin(unsigned long id, const char *name, unsigned long size, uint8_t flags)
{
	struct msg_file_begin fb = {
		.file_id = (uint32_t)id, .kind = WIRE_FILE_SEGMENT, .flags = flags, .size = size
	};
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];

	if (nfiles == MAX_FILES)
		die("begin: more than %d files", MAX_FILES);
	snprintf(fb.name, sizeof(fb.name), "%s", name);
	files[nfiles].id = (uint32_t)id;
	files[nfiles].size = size;
	snprintf(files[nfiles].name, sizeof(files[nfiles].name), "%s", name);
	nfiles++;
	send_frame(frame, msg_file_begin_encode(frame, sizeof(frame), &fb), "begin");
}

/* Byte @off of a PostgreSQL 15 segment named @name of @size bytes, of system @sysid, whose
 * first page alone holds WAL: its long header, and zeros everywhere else. */
static uint8_t segment_byte(const char *name, uint64_t size, uint64_t sysid, uint64_t off)
{
	unsigned int tli = 0, log = 0, seg = 0;
	uint8_t hdr[40] = { 0 };
	uint64_t addr;

	if (off >= sizeof(hdr))
		return 0;
	if (sscanf(name, "%8X%8X%8X", &tli, &log, &seg) != 3)
		die("seg-data: \"%s\" is not a segment name", name);
	addr = ((uint64_t)log * (UINT64_C(0x100000000) / size) + seg) * size;
	hdr[0] = 0x10; /* XLOG_PAGE_MAGIC 0xD110: PostgreSQL 15 */
	hdr[1] = 0xD1;
	hdr[2] = 0x02; /* XLP_LONG_HEADER */
	for (int i = 0; i < 4; i++)
		hdr[4 + i] = (uint8_t)(tli >> (8 * i));
	for (int i = 0; i < 8; i++) {
		hdr[8 + i] = (uint8_t)(addr >> (8 * i));
		hdr[24 + i] = (uint8_t)(sysid >> (8 * i));
	}
	for (int i = 0; i < 4; i++) {
		hdr[32 + i] = (uint8_t)(size >> (8 * i));
		hdr[36 + i] = (uint8_t)(8192u >> (8 * i));
	}
	return hdr[off];
}

static void step_seg_data(unsigned long id, uint64_t sysid, uint64_t from, uint64_t to)
{
	static uint8_t frame[WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE + WIRE_CHUNK_SIZE];
	unsigned int f = file_of(id, "seg-data");

	if (to > files[f].size || from > to)
		die("seg-data: %llu..%llu is not inside the file's %llu bytes",
		    (unsigned long long)from, (unsigned long long)to,
		    (unsigned long long)files[f].size);
	while (from < to) {
		uint32_t len =
			to - from < WIRE_CHUNK_SIZE ? (uint32_t)(to - from) : WIRE_CHUNK_SIZE;
		uint8_t *content = frame + WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE;

		for (uint32_t i = 0; i < len; i++)
			content[i] = segment_byte(files[f].name, files[f].size, sysid, from + i);
		send_frame(frame, msg_data_seal(frame, (uint32_t)id, from, len), "seg-data");
		from += len;
	}
}

static void step_end(unsigned long id)
{
	unsigned int f = file_of(id, "end");
	struct msg_file_end fe = { .file_id = (uint32_t)id, .size = files[f].size };
	uint8_t frame[WIRE_HEADER_SIZE + WIRE_MAX_CONTROL_PAYLOAD];

	send_frame(frame, msg_file_end_encode(frame, sizeof(frame), &fe), "end");
}

static void step_expect_ack(const char *want)
{
	struct frame_header hdr;
	struct msg_ack ack;
	const char *name;

	for (;;) {
		if (!read_frame(&hdr, "expect-ack"))
			die("expect-ack: the peer closed the connection without an ACK");
		if (hdr.type == WIRE_PING)
			answer_ping(rx_buf + WIRE_HEADER_SIZE, hdr.length, "expect-ack");
		if (hdr.type == WIRE_ACK)
			break;
	}
	if (msg_ack_decode(rx_buf + WIRE_HEADER_SIZE, hdr.length, &ack) < 0)
		die("expect-ack: malformed ACK from the peer");
	name = wire_ack_status_name(ack.status);
	printf("ack %s %s: %s\n", ack.name, name, ack.message);
	fflush(stdout);
	if (strcasecmp(name, want) != 0)
		die("expect-ack: %s was acknowledged %s, expected %s", ack.name, name, want);
}

static void step_expect_progress(void)
{
	struct frame_header hdr;
	struct msg_progress pg;

	for (;;) {
		if (!read_frame(&hdr, "expect-progress"))
			die("expect-progress: the peer closed the connection without a PROGRESS");
		if (hdr.type == WIRE_PING)
			answer_ping(rx_buf + WIRE_HEADER_SIZE, hdr.length, "expect-progress");
		if (hdr.type == WIRE_ACK)
			die("expect-progress: got an ACK");
		if (hdr.type == WIRE_PROGRESS)
			break;
	}
	if (msg_progress_decode(rx_buf + WIRE_HEADER_SIZE, hdr.length, &pg) < 0)
		die("expect-progress: malformed PROGRESS from the peer");
	printf("progress %u %llu\n", pg.file_id, (unsigned long long)pg.durable);
	fflush(stdout);
}

static unsigned long number_arg(char **argv, int *idx, int argc, const char *step)
{
	char *end;
	unsigned long v;

	if (*idx + 1 >= argc)
		die("%s needs a number", step);
	v = strtoul(argv[++*idx], &end, 10);
	if (*end != '\0')
		die("%s: \"%s\" is not a number", step, argv[*idx]);
	return v;
}

static void usage(void)
{
	fprintf(stderr, "usage: fake_peer --connect ADDR:PORT | --listen ADDR:PORT [--name NAME] "
			"[--version N] [--sysid N] [--timeout SECONDS] STEP...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = NULL;
	bool listen_mode = false;
	int idx;

	signal(SIGPIPE, SIG_IGN);
	for (idx = 1; idx < argc && strncmp(argv[idx], "--", 2) == 0; idx++) {
		const char *opt = argv[idx];

		if (idx + 1 >= argc)
			usage();
		if (!strcmp(opt, "--connect") || !strcmp(opt, "--listen")) {
			listen_mode = !strcmp(opt, "--listen");
			addr = argv[++idx];
		} else if (!strcmp(opt, "--name")) {
			opts.name = argv[++idx];
		} else if (!strcmp(opt, "--version")) {
			opts.version = (unsigned int)strtoul(argv[++idx], NULL, 10);
		} else if (!strcmp(opt, "--sysid")) {
			opts.sysid = strtoull(argv[++idx], NULL, 10);
			opts.sysid_given = true;
		} else if (!strcmp(opt, "--timeout")) {
			opts.timeout_ms = atoi(argv[++idx]) * 1000;
		} else {
			usage();
		}
	}
	if (!addr || idx >= argc)
		usage();
	fd = open_connection(listen_mode, addr);

	for (; idx < argc; idx++) {
		const char *step = argv[idx];

		if (!strcmp(step, "hello-replica")) {
			step_hello(WIRE_ROLE_REPLICA, step);
		} else if (!strcmp(step, "hello-primary")) {
			step_hello(WIRE_ROLE_PRIMARY, step);
		} else if (!strcmp(step, "read-hello")) {
			step_read_hello();
		} else if (!strcmp(step, "have")) {
			step_have();
		} else if (!strcmp(step, "ping-flood")) {
			flood(step, number_arg(argv, &idx, argc, step), make_ping);
		} else if (!strcmp(step, "begin-flood")) {
			flood(step, number_arg(argv, &idx, argc, step), make_begin);
		} else if (!strcmp(step, "garbage")) {
			step_garbage(number_arg(argv, &idx, argc, step));
		} else if (!strcmp(step, "bad-crc")) {
			step_bad_crc();
		} else if (!strcmp(step, "hold")) {
			sleep((unsigned int)number_arg(argv, &idx, argc, step));
		} else if (!strcmp(step, "expect-error")) {
			if (idx + 1 >= argc)
				die("expect-error needs an error code name");
			step_expect_error(argv[++idx]);
		} else if (!strcmp(step, "begin") || !strcmp(step, "begin-stream")) {
			unsigned long id = number_arg(argv, &idx, argc, step);
			const char *name = idx + 1 < argc ? argv[++idx] : "";

			step_begin(id, name, number_arg(argv, &idx, argc, step),
				   !strcmp(step, "begin-stream") ? WIRE_BEGIN_STREAM : 0);
		} else if (!strcmp(step, "seg-data")) {
			unsigned long id = number_arg(argv, &idx, argc, step);
			uint64_t sysid = number_arg(argv, &idx, argc, step);
			uint64_t from = number_arg(argv, &idx, argc, step);

			step_seg_data(id, sysid, from, number_arg(argv, &idx, argc, step));
		} else if (!strcmp(step, "end")) {
			step_end(number_arg(argv, &idx, argc, step));
		} else if (!strcmp(step, "expect-progress")) {
			step_expect_progress();
		} else if (!strcmp(step, "expect-ack")) {
			if (idx + 1 >= argc)
				die("expect-ack needs a status name");
			step_expect_ack(argv[++idx]);
		} else if (!strcmp(step, "expect-close")) {
			step_expect_close();
		} else if (!strcmp(step, "pong-until-close")) {
			step_pong_until_close();
		} else {
			die("unknown step \"%s\"", step);
		}
	}
	close(fd);
	return 0;
}
