// SPDX-License-Identifier: MIT
/*
 * Tests for daemon/net/tls_pump.c over a real io_uring, a real socket pair and OpenSSL in
 * user space (no kernel TLS): a frame whose content stays in a file's mapping
 * (send_source = map) arrives whole through TLS, and one whose file shrank before the
 * frame was encrypted closes its connection, the item saying its content could not be
 * read, instead of killing the process with SIGBUS.  With ktls = on and no kernel TLS
 * (the module missing, or the keys refused), the accepting side closes its connection at
 * the handshake's end, and an owner that frees it in closed() (as the primary's
 * peer_closed() does) frees it once nothing touches it any more (ASan sees the rest).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/mapguard.h"
#include "net/conn.h"
#include "net/tls.h"
#include "proto/codec.h"
#include "ring/ring.h"
#include "tls_cert.h"

#define SLOT_SIZE (WIRE_HEADER_SIZE + WIRE_MAX_PAYLOAD + 4096 - 32)
#define CONTENT_SIZE (256 * 1024)

struct side {
	struct conn conn; /* first */
	unsigned int frames;
	uint8_t last_type;
	uint32_t last_len;
	uint8_t last_payload[WIRE_MAX_PAYLOAD];
	bool closed;
};

static struct ring ring;
static struct tls_ctx server_ctx, client_ctx;
static char dir[256], cert_path[300], key_path[300];
static unsigned int released, released_unreadable;

static uint8_t *side_rx_buffer(struct conn *c, const struct frame_header *hdr,
			       struct ring_slot **slot)
{
	(void)hdr;
	*slot = ring_slot_get(c->ring);
	return *slot ? (*slot)->data : NULL;
}

static int side_rx_frame(struct conn *c, const struct frame_header *hdr, uint8_t *payload,
			 struct ring_slot *slot)
{
	struct side *s = (struct side *)c;

	s->frames++;
	s->last_type = hdr->type;
	s->last_len = hdr->length;
	memcpy(s->last_payload, payload, hdr->length);
	if (slot)
		ring_slot_put(c->ring, slot);
	return 0;
}

static void side_closed(struct conn *c)
{
	((struct side *)c)->closed = true;
}

/* An accepting side on the heap, freed in closed() as peer_closed() frees a peer. */
static int heap_close_error;
static bool heap_closed;

static void heap_side_closed(struct conn *c)
{
	heap_closed = true;
	heap_close_error = c->close_error;
	free(c);
}

static const struct conn_ops heap_side_ops = {
	.rx_buffer = side_rx_buffer,
	.rx_frame = side_rx_frame,
	.closed = heap_side_closed,
};

/*
 * A kernel whose tls module attaches but refuses the keys (a cipher or version it lacks):
 * while @keys_refused, this setsockopt() (the executable's, before libc's) says yes to
 * TCP_ULP and EINVAL to SOL_TLS; otherwise it is the system call.
 */
static bool keys_refused;

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
	if (keys_refused && level == SOL_TCP && name == TCP_ULP)
		return 0;
	if (keys_refused && level == 282 /* SOL_TLS */) {
		errno = EINVAL;
		return -1;
	}
	return (int)syscall(SYS_setsockopt, fd, level, name, value, len);
}

static const struct conn_ops side_ops = {
	.rx_buffer = side_rx_buffer,
	.rx_frame = side_rx_frame,
	.closed = side_closed,
};

static void mapped_release(struct conn_tx_item *item)
{
	released++;
	released_unreadable += item->unreadable;
}

static int setup(void **state)
{
	(void)state;
	log_set_level(LOG_LEVEL_FATAL);
	mkdir("build", 0755);
	snprintf(dir, sizeof(dir), "build/tls-pump-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(cert_path, sizeof(cert_path), "%s/node.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/node.key", dir);
	tls_cert_make(cert_path, key_path);
	assert_int_equal(tls_ctx_init(&server_ctx, true, cert_path, cert_path, key_path,
				      CONFIG_SWITCH_OFF, CONFIG_SWITCH_OFF),
			 0);
	assert_int_equal(tls_ctx_init(&client_ctx, false, cert_path, cert_path, key_path,
				      CONFIG_SWITCH_OFF, CONFIG_SWITCH_OFF),
			 0);
	return ring_init(&ring, 64, 8, SLOT_SIZE);
}

static int teardown(void **state)
{
	(void)state;
	ring_exit(&ring);
	tls_ctx_free(&server_ctx);
	tls_ctx_free(&client_ctx);
	unlink(cert_path);
	unlink(key_path);
	return rmdir(dir);
}

/* Run the ring until @cond or a bounded number of rounds (each waits at most 100 ms). */
#define RUN_UNTIL(cond)                                                 \
	do {                                                            \
		for (int round_ = 0; round_ < 100 && !(cond); round_++) \
			ring_run(&ring, 100);                           \
		assert_true(cond);                                      \
	} while (0)

/* @a accepts, @b connects, over TLS in user space; the handshake runs with the ring. */
static void pair(struct side *a, struct side *b)
{
	int fds[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	assert_int_equal(conn_init_tls(&a->conn, &ring, fds[0], &side_ops, a, &server_ctx), 0);
	assert_int_equal(conn_init_tls(&b->conn, &ring, fds[1], &side_ops, b, &client_ctx), 0);
}

/* An unlinked file of CONTENT_SIZE bytes, mapped read-only into *@map. */
static int mapped_file(const uint8_t **map)
{
	char path[300];
	static uint8_t buf[CONTENT_SIZE];
	void *m;
	int fd;

	snprintf(path, sizeof(path), "%s/file-XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + 5);
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	m = mmap(NULL, CONTENT_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	*map = m;
	return fd;
}

/* The content of a mapped frame is encrypted from the mapping and arrives whole. */
static void test_mapped_frame(void **state)
{
	struct side a, b;
	const uint8_t *map;
	struct msg_data md;
	uint8_t hdr[WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE];
	uint32_t crc;
	int fd, hdr_len;

	(void)state;
	released = released_unreadable = 0;
	fd = mapped_file(&map);
	pair(&a, &b);
	crc = crc32c(msg_data_split_begin(hdr, 9, 0), map, CONTENT_SIZE);
	hdr_len = msg_data_split_end(hdr, 0, CONTENT_SIZE, crc);
	assert_true(hdr_len > 0);
	assert_non_null(conn_queue_mapped(&b.conn, hdr, (uint32_t)hdr_len, map, CONTENT_SIZE,
					  mapped_release, &b));
	RUN_UNTIL(a.frames == 1);
	assert_int_equal(a.last_type, WIRE_DATA);
	assert_int_equal(msg_data_decode(a.last_payload, a.last_len, &md), 0);
	assert_int_equal(md.len, CONTENT_SIZE);
	assert_memory_equal(md.data, map, CONTENT_SIZE);
	assert_int_equal(released, 1);
	assert_int_equal(released_unreadable, 0);
	conn_close(&a.conn, 0);
	conn_close(&b.conn, 0);
	RUN_UNTIL(a.closed && b.closed);
	munmap((void *)(uintptr_t)map, CONTENT_SIZE);
	close(fd);
}

/*
 * The file shrank after its frame's checksum was taken and before the frame reached the
 * head of the queue, where it is encrypted: the encryption's read of the mapping faults.
 * The connection closes (the protocol cannot abandon a file), the item says why, and the
 * process lives on.
 */
static void test_mapped_frame_file_shrank(void **state)
{
	struct side a, b;
	const uint8_t *map;
	uint8_t hdr[WIRE_HEADER_SIZE + WIRE_DATA_HEADER_SIZE];
	uint32_t crc;
	int fd, hdr_len;

	(void)state;
	/* Here, not in setup: cmocka installs its own SIGBUS handler for each test. */
	assert_int_equal(mapguard_init(), 0);
	released = released_unreadable = 0;
	fd = mapped_file(&map);
	pair(&a, &b);
	crc = crc32c(msg_data_split_begin(hdr, 9, 0), map, CONTENT_SIZE);
	hdr_len = msg_data_split_end(hdr, 0, CONTENT_SIZE, crc);
	assert_true(hdr_len > 0);
	/* Queued during the handshake: encrypted only once it is done. */
	assert_non_null(conn_queue_mapped(&b.conn, hdr, (uint32_t)hdr_len, map, CONTENT_SIZE,
					  mapped_release, &b));
	assert_int_equal(ftruncate(fd, 4096), 0);
	RUN_UNTIL(b.closed && a.closed);
	assert_int_equal(b.conn.close_error, -EFAULT);
	assert_int_equal(a.frames, 0);
	assert_int_equal(released, 1);
	assert_int_equal(released_unreadable, 1);
	assert_int_equal(ring.slots_free, ring.nslots);
	munmap((void *)(uintptr_t)map, CONTENT_SIZE);
	close(fd);
}

/* The accepting side with ktls = on; kernel TLS missing (a Unix socket takes no TCP_ULP)
 * or refusing the keys.  Its connection closes when the handshake is done, and is freed
 * by its owner with no access after (ASan). */
static void ktls_on_refused(bool module_present)
{
	struct tls_ctx ktls_ctx;
	struct side *a = calloc(1, sizeof(*a)), b;
	int fds[2];

	assert_non_null(a);
	assert_int_equal(tls_ctx_init(&ktls_ctx, true, cert_path, cert_path, key_path,
				      CONFIG_SWITCH_ON, CONFIG_SWITCH_OFF),
			 0);
	heap_closed = false;
	heap_close_error = 0;
	keys_refused = module_present;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	memset(&b, 0, sizeof(b));
	assert_int_equal(conn_init_tls(&a->conn, &ring, fds[0], &heap_side_ops, a, &ktls_ctx), 0);
	assert_int_equal(conn_init_tls(&b.conn, &ring, fds[1], &side_ops, &b, &client_ctx), 0);
	RUN_UNTIL(heap_closed && b.closed);
	keys_refused = false;
	assert_int_equal(heap_close_error, module_present ? -EINVAL : -EOPNOTSUPP);
	assert_int_equal(b.frames, 0);
	assert_int_equal(ring.slots_free, ring.nslots);
	tls_ctx_free(&ktls_ctx);
}

static void test_ktls_on_module_missing(void **state)
{
	(void)state;
	ktls_on_refused(false);
}

static void test_ktls_on_keys_refused(void **state)
{
	(void)state;
	ktls_on_refused(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mapped_frame),
		cmocka_unit_test(test_mapped_frame_file_shrank),
		cmocka_unit_test(test_ktls_on_module_missing),
		cmocka_unit_test(test_ktls_on_keys_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
