// SPDX-License-Identifier: MIT
/*
 * Reading the probes' maps (see pins.h).
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "probe/pins.h"

void probe_pin_dir(const char *node_name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", PROBE_PIN_ROOT, node_name);
}

int probe_read_maps(int fsync_fd, int send_fd, int peers_fd, struct probe_snapshot *s)
{
	__u32 key = 0;

	memset(s, 0, sizeof(*s));
	if (bpf_map_lookup_elem(fsync_fd, &key, &s->fsync) < 0)
		return -errno;
	for (key = 0; key < PROBE_MAX_PEERS; key++) {
		struct probe_peer peer;

		if (bpf_map_lookup_elem(send_fd, &key, &s->send[key]) < 0)
			return -errno;
		if (bpf_map_lookup_elem(peers_fd, &key, &peer) < 0)
			return -errno;
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
		fds[i] = bpf_obj_get(path);
		if (fds[i] < 0) {
			ret = -errno;
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
