/* SPDX-License-Identifier: MIT */
/*
 * Reading the probes' histograms from their maps: from the daemon's own map descriptors,
 * or from the pins under PROBE_PIN_ROOT/<node_name>/ (what `walship stats` does, from
 * another process).  Apart from the loader (probe.c), so that the CLI reads the maps
 * without the BPF programs, the ring or the rest of the daemon, and without libbpf
 * (pins.c says why).
 */
#ifndef WALSHIP_PROBE_PINS_H
#define WALSHIP_PROBE_PINS_H

#include <stddef.h>

#include "probe/hist.h"

/* The pin folder of node @node_name. */
void probe_pin_dir(const char *node_name, char *buf, size_t len);

/* Read the three maps (fsync histograms, send histograms, peers) into @s.  Returns 0 or
 * -errno of the lookup that failed (not logged). */
int probe_read_maps(int fsync_fd, int send_fd, int peers_fd, struct probe_snapshot *s);

/* Read the histograms pinned in @dir (for the CLI).  Returns -errno (not logged). */
int probe_read_pinned(const char *dir, struct probe_snapshot *s);

#endif /* WALSHIP_PROBE_PINS_H */
