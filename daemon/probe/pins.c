// SPDX-License-Identifier: MIT
/*
 * Reading the probes' maps (see pins.h).
 *
 * The two bpf(2) commands this takes, BPF_OBJ_GET and BPF_MAP_LOOKUP_ELEM, are called
 * directly rather than through libbpf: pins.c is linked into `walship`, which PostgreSQL
 * starts once per WAL segment (archive_command, restore_command), and libbpf would bring
 * libelf and libz with it, a few thousand symbol relocations by the dynamic loader at each
 * start, for two system calls whose ABI (linux/bpf.h) is stable.  Loading the programs
 * (probe.c) is libbpf's work and stays with it.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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

int probe_read_maps(int fsync_fd, int send_fd, int peers_fd, struct probe_snapshot *s)
{
	__u32 key = 0;
	int ret;

	memset(s, 0, sizeof(*s));
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
		memcpy(s->peer[key], peer.addr, sizeof(s->peer[key]));
	}
	return 0;
}

int probe_read_pinned(const char *dir, struct probe_snapshot *s)
{
	char path[512];
	int fds[3], ret;
	const char *names[3] = { PROBE_MAP_FSYNC, PROBE_MAP_SEND, PROBE_MAP_PEERS };

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fds[i] = pin_obj_get(path);
		if (fds[i] < 0) {
			ret = fds[i];
			while (i-- > 0)
				close(fds[i]);
			return ret;
		}
	}
	ret = probe_read_maps(fds[0], fds[1], fds[2], s);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	return ret;
}
