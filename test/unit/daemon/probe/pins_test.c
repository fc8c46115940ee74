// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/probe/pins.c: maps not of this build's layout are refused before
 * anything is looked up in them (a lookup writes the map's value size into a buffer sized
 * for this build's), and the peers' addresses are printable whatever the map holds.  The
 * maps are made here with bpf(2), unpinned (root or CAP_BPF; skipped without).
 */
#include <errno.h>
#include <linux/bpf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "probe/pins.h"

static int sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr)
{
	long ret = syscall(__NR_bpf, cmd, attr, sizeof(*attr));

	return ret < 0 ? -errno : (int)ret;
}

/* A map of @type with @max_entries entries of @key_size and @value_size bytes, each
 * value filled with 0xab (so that a lookup into a snapshot would show); -errno. */
static int map_make(enum bpf_map_type type, __u32 key_size, __u32 value_size, __u32 max_entries)
{
	union bpf_attr attr;
	uint8_t *value;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = type;
	attr.key_size = key_size;
	attr.value_size = value_size;
	attr.max_entries = max_entries;
	fd = sys_bpf(BPF_MAP_CREATE, &attr);
	if (fd < 0 || type != BPF_MAP_TYPE_ARRAY)
		return fd;
	value = malloc(value_size);
	assert_non_null(value);
	memset(value, 0xab, value_size);
	for (__u64 key = 0; key < max_entries; key++) {
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (__u32)fd;
		attr.key = (__u64)(uintptr_t)&key; /* little-endian: the low bytes first */
		attr.value = (__u64)(uintptr_t)value;
		assert_int_equal(sys_bpf(BPF_MAP_UPDATE_ELEM, &attr), 0);
	}
	free(value);
	return fd;
}

/* The three maps of this build's layout in @fds, or skip() where maps cannot be made. */
static void maps_of_this_build(int fds[3])
{
	fds[0] = map_make(BPF_MAP_TYPE_ARRAY, 4, sizeof(struct probe_fsync), 1);
	if (fds[0] == -EPERM || fds[0] == -EACCES) {
		print_message("no BPF maps here (%s): root or CAP_BPF is needed\n",
			      strerror(-fds[0]));
		skip();
	}
	assert_true(fds[0] >= 0);
	fds[1] = map_make(BPF_MAP_TYPE_ARRAY, 4, sizeof(struct probe_send), PROBE_MAX_PEERS);
	fds[2] = map_make(BPF_MAP_TYPE_ARRAY, 4, sizeof(struct probe_peer), PROBE_MAX_PEERS);
	assert_true(fds[1] >= 0 && fds[2] >= 0);
}

static bool all_zero(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/*
 * Each map in turn replaced by one of another layout (a larger value, as a later version
 * might pin; a per-CPU array, whose lookup writes a value per CPU; other entries; wider
 * keys): refused with -EPROTO, naming the map, and the snapshot (exactly its size on the
 * heap, under ASan) holds none of the maps' 0xab bytes: nothing was looked up.
 */
static void test_other_layout_refused(void **state)
{
	static const struct {
		int map;
		enum bpf_map_type type;
		__u32 key_size, value_delta, max_entries;
		const char *name;
	} cases[] = {
		{ 0, BPF_MAP_TYPE_ARRAY, 4, 4096, 1, PROBE_MAP_FSYNC },
		{ 1, BPF_MAP_TYPE_ARRAY, 4, 64, PROBE_MAX_PEERS, PROBE_MAP_SEND },
		{ 2, BPF_MAP_TYPE_ARRAY, 4, 4096, PROBE_MAX_PEERS, PROBE_MAP_PEERS },
		{ 0, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 0, 1, PROBE_MAP_FSYNC },
		{ 1, BPF_MAP_TYPE_ARRAY, 4, 0, 2 * PROBE_MAX_PEERS, PROBE_MAP_SEND },
		{ 2, BPF_MAP_TYPE_HASH, 8, 0, PROBE_MAX_PEERS, PROBE_MAP_PEERS },
	};
	const __u32 sizes[] = { sizeof(struct probe_fsync), sizeof(struct probe_send),
				sizeof(struct probe_peer) };
	struct probe_snapshot *s = malloc(sizeof(*s));
	int fds[3];

	(void)state;
	assert_non_null(s);
	maps_of_this_build(fds);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int good = fds[cases[i].map], ret;
		char why[256] = "";

		fds[cases[i].map] =
			map_make(cases[i].type, cases[i].key_size,
				 sizes[cases[i].map] + cases[i].value_delta, cases[i].max_entries);
		assert_true(fds[cases[i].map] >= 0);
		memset(s, 0x5a, sizeof(*s));
		ret = probe_read_maps(fds[0], fds[1], fds[2], s, why, sizeof(why));
		assert_int_equal(ret, -EPROTO);
		assert_non_null(strstr(why, cases[i].name));
		assert_true(all_zero(s, sizeof(*s)));
		close(fds[cases[i].map]);
		fds[cases[i].map] = good;
	}
	/* The same maps of this build's layout are read (their 0xab bytes): the test above
	 * would see a lookup. */
	assert_int_equal(probe_read_maps(fds[0], fds[1], fds[2], s, NULL, 0), 0);
	assert_int_equal(s->fsync.io_uring.count, 0xababababababababULL);
	/* with the maps' ids, which tell another walshipd's maps (walship stats --interval) */
	assert_true(s->map_id[0] && s->map_id[1] && s->map_id[2]);
	assert_true(s->map_id[0] != s->map_id[1] && s->map_id[1] != s->map_id[2]);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	free(s);
}

/* Whatever the peers map holds (control characters, quotes, a backslash: another process
 * that could write it), what is read is address characters and '?', and the JSON and
 * text printed from it carry no control character. */
static void test_peer_addr_printable(void **state)
{
	static const char hostile[PROBE_PEER_ADDR_LEN] = "10.0.0.1\x1b[2J\"}, \"x\\\n\x7f\xc3\xa9";
	struct probe_snapshot *s = malloc(sizeof(*s));
	struct probe_peer peer;
	union bpf_attr attr;
	char *text = NULL;
	size_t len = 0;
	__u32 key;
	int fds[3];
	FILE *out;

	(void)state;
	assert_non_null(s);
	maps_of_this_build(fds);
	memset(&peer, 0, sizeof(peer));
	memcpy(peer.addr, hostile, sizeof(peer.addr));
	for (key = 1; key <= 2; key++) {
		if (key == 2)
			snprintf(peer.addr, sizeof(peer.addr), "[fe80::1%%eth0]");
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (__u32)fds[2];
		attr.key = (__u64)(uintptr_t)&key;
		attr.value = (__u64)(uintptr_t)&peer;
		assert_int_equal(sys_bpf(BPF_MAP_UPDATE_ELEM, &attr), 0);
	}
	assert_int_equal(probe_read_maps(fds[0], fds[1], fds[2], s, NULL, 0), 0);
	assert_string_equal(s->peer[1], "10.0.0.1?[2J?????x?????");
	assert_string_equal(s->peer[2], "[fe80::1%eth0]");
	out = open_memstream(&text, &len);
	assert_non_null(out);
	probe_print_json(out, s, 0, false);
	probe_print_text(out, s);
	fclose(out);
	assert_non_null(strstr(text, "\"addr\": \"10.0.0.1?[2J?????x?????\""));
	for (size_t i = 0; i < len; i++)
		assert_true(text[i] == '\n' || ((unsigned char)text[i] >= 0x20 && text[i] != 0x7f));
	free(text);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_other_layout_refused),
		cmocka_unit_test(test_peer_addr_printable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
