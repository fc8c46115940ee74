/* SPDX-License-Identifier: MIT */
/*
 * Reading the probes' histograms from their maps: from the daemon's own map descriptors,
 * or from the pins under PROBE_PIN_ROOT/<node_name>/ (what `walship stats` does, from
 * another process).  Apart from the loader (probe.c), so that the CLI reads the maps
 * without the BPF programs, the ring or the rest of the daemon, and without libbpf
 * (pins.c says why).
 *
 * A map is read only once the kernel says it has this build's layout (type, key and
 * value sizes, entries): a lookup writes the map's value size into a buffer sized for
 * this build's, and a pin may be another version's, or made by whoever can write the pin
 * folder (walshipd's user), for `walship stats` run as root to read.
 */
#ifndef WALSHIP_PROBE_PINS_H
#define WALSHIP_PROBE_PINS_H

#include <stddef.h>

#include "probe/hist.h"

/* The pin folder of node @node_name. */
void probe_pin_dir(const char *node_name, char *buf, size_t len);

/*
 * Read the three maps (fsync histograms, send histograms, peers) into @s, their ids into
 * s->map_id.  Returns 0;
 * -EPROTO when a map is not of this build's layout, with what differs in @why (@why_len
 * bytes; may be NULL), and nothing read; or -errno of the system call that failed (not
 * logged).
 */
int probe_read_maps(int fsync_fd, int send_fd, int peers_fd, struct probe_snapshot *s, char *why,
		    size_t why_len);

/* Read the histograms pinned in @dir (for the CLI), as probe_read_maps() does.  Returns
 * 0 or -errno (not logged): -ENOENT when a pin is missing, -EPROTO as above. */
int probe_read_pinned(const char *dir, struct probe_snapshot *s, char *why, size_t why_len);

#endif /* WALSHIP_PROBE_PINS_H */
