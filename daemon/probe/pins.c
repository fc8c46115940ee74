// SPDX-License-Identifier: MIT
/*
 * Reading the probes' maps (see pins.h).
 *
 * The bpf(2) commands this takes, BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD and
 * BPF_MAP_LOOKUP_ELEM, are called directly rather than through libbpf: pins.c is linked
 * into `walship`, which PostgreSQL starts once per WAL segment (archive_command,
 * restore_command), and libbpf would bring libelf and libz with it, a few thousand symbol
 * relocations by the dynamic loader at each start, for three system calls whose ABI
 * (linux/bpf.h) is stable.  Loading the programs (probe.c) is libbpf's work and stays
 * with it.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/compiler.h"
#include "probe/pins.h"

/* bpf(2) with @attr zeroed by the caller past what @cmd uses.  Returns the result or
 * -errno. */
static int pin_bpf(enum bpf_cmd cmd, union bpf_attr *attr)
{
	long ret = syscall(__NR_bpf, cmd, attr, sizeof(*attr));

	return ret < 0 ? -errno : (int)ret;
}

static int pin_map_lookup(int map_fd, const void *key, void *value)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (__u32)map_fd;
	attr.key = (__u64)(uintptr_t)key;
	attr.value = (__u64)(uintptr_t)value;
	return pin_bpf(BPF_MAP_LOOKUP_ELEM, &attr);
}

static int pin_obj_get(const char *path)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = (__u64)(uintptr_t)path;
	/* the maps are only read here */
	attr.file_flags = BPF_F_RDONLY;
	return pin_bpf(BPF_OBJ_GET, &attr);
}

void probe_pin_dir(const char *node_name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", PROBE_PIN_ROOT, node_name);
}

/* What the kernel says of map @fd.  Returns 0 or -errno. */
static int pin_map_info(int fd, struct bpf_map_info *info)
{
	union bpf_attr attr;

	memset(info, 0, sizeof(*info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (__u32)fd;
	attr.info.info_len = sizeof(*info);
	attr.info.info = (__u64)(uintptr_t)info;
	return pin_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr);
}

/*
 * This build's maps (bpf/probes.bpf.c), in the order probe_read_maps() takes them: arrays
 * of __u32 keys, each value read into a buffer of exactly value_size bytes.  A map of
 * another layout would have the lookup write past it (a larger value, or one per CPU).
 */
static const struct {
	const char *name;
	__u32 value_size;
	__u32 max_entries;
} pin_layout[] = {
	{ PROBE_MAP_FSYNC, sizeof(struct probe_fsync), 1 },
	{ PROBE_MAP_SEND, sizeof(struct probe_send), PROBE_MAX_PEERS },
	{ PROBE_MAP_PEERS, sizeof(struct probe_peer), PROBE_MAX_PEERS },
};

/* Whether map @fd has the layout of pin_layout[@i]: 0 with its id in @id, -EPROTO (what
 * differs in @why), or -errno. */
static int pin_map_check(int fd, size_t i, uint32_t *id, char *why, size_t why_len)
{
	struct bpf_map_info info;
	int ret = pin_map_info(fd, &info);

	if (ret < 0)
		return ret;
	if (info.type == BPF_MAP_TYPE_ARRAY && info.key_size == sizeof(__u32) &&
	    info.value_size == pin_layout[i].value_size &&
	    info.max_entries == pin_layout[i].max_entries) {
		*id = info.id;
		return 0;
	}
	snprintf(why, why_len,
		 "%s has type %u, key_size %u, value_size %u, max_entries %u; this walship reads "
		 "type %u, key_size %zu, value_size %u, max_entries %u",
		 pin_layout[i].name, info.type, info.key_size, info.value_size, info.max_entries,
		 (unsigned int)BPF_MAP_TYPE_ARRAY, sizeof(__u32), pin_layout[i].value_size,
		 pin_layout[i].max_entries);
	return -EPROTO;
}

/*
 * A peer's address as printed: walshipd writes IP literals there (net/peertag.h), and
 * anything else (written by another process that could write the map) has each
 * character an address does not use replaced by '?', so that the text, the JSON and the
 * Prometheus labels print it as it is.
 */
static void pin_peer_addr(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i]; i++) {
		char ch = src[i];
		bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
			  (ch >= 'A' && ch <= 'Z') || (ch && strchr(".:[]%-_", ch));

		dst[i] = ok ? ch : '?';
	}
	dst[i] = '\0';
}

int probe_read_maps(int fsync_fd, int send_fd, int peers_fd, struct probe_snapshot *s, char *why,
		    size_t why_len)
{
	const int fds[] = { fsync_fd, send_fd, peers_fd };
	uint32_t ids[ARRAY_SIZE(fds)];
	__u32 key = 0;
	int ret;

	_Static_assert(ARRAY_SIZE(fds) == ARRAY_SIZE(pin_layout) &&
			       sizeof(ids) == sizeof(s->map_id),
		       "a layout and an id for every map read");
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		ret = pin_map_check(fds[i], i, &ids[i], why, why_len);
		if (ret < 0)
			return ret;
	}
	memcpy(s->map_id, ids, sizeof(s->map_id));
	ret = pin_map_lookup(fsync_fd, &key, &s->fsync);
	if (ret < 0)
		return ret;
	for (key = 0; key < PROBE_MAX_PEERS; key++) {
		struct probe_peer peer;

		ret = pin_map_lookup(send_fd, &key, &s->send[key]);
		if (ret < 0)
			return ret;
		ret = pin_map_lookup(peers_fd, &key, &peer);
		if (ret < 0)
			return ret;
		peer.addr[sizeof(peer.addr) - 1] = '\0';
		pin_peer_addr(s->peer[key], sizeof(s->peer[key]), peer.addr);
	}
	return 0;
}

int probe_read_pinned(const char *dir, struct probe_snapshot *s, char *why, size_t why_len)
{
	char path[512];
	int fds[3], ret;

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, pin_layout[i].name);
		fds[i] = pin_obj_get(path);
		if (fds[i] < 0) {
			ret = fds[i];
			while (i-- > 0)
				close(fds[i]);
			return ret;
		}
	}
	ret = probe_read_maps(fds[0], fds[1], fds[2], s, why, why_len);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	return ret;
}
