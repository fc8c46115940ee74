/* SPDX-License-Identifier: MIT */
/*
 * The BPF latency probes (bpf/probes.bpf.c): loading, attaching, pinning the histograms
 * under PROBE_PIN_ROOT/<node_name>/, and reading them back (here or from the pins).
 *
 * Probes are optional: with `probes = auto` a kernel without BTF or tracepoints, a
 * process without CAP_BPF/CAP_PERFMON, or no bpffs turn them off with one message
 * saying why, and walshipd replicates as before.
 */
#ifndef WALSHIP_PROBE_PROBE_H
#define WALSHIP_PROBE_PROBE_H

#include <stddef.h>
#include <stdio.h>

#include "common/config.h"
#include "probe/hist.h"
#include "status/status.h"

struct probe;

/*
 * Load and attach the probes for this process as @cfg says (probes, bpf_keep_pins,
 * node_name).  Sets *out to NULL when the probes are off (the reason logged once).
 * Returns -errno only when `probes = on` and they could not start.
 */
int probe_start(const struct config *cfg, struct probe **out);

/* Publish peer numbers assigned since the last call to the peers map (every tick). */
void probe_tick(struct probe *p);

/* Read the histograms. Returns -errno. */
int probe_read(struct probe *p, struct probe_snapshot *s);

/* The quantiles of every histogram, for `walship status` (@p non-NULL).  Returns -errno. */
int probe_status(struct probe *p, struct status_probes *out);

/* Detach, and unpin unless bpf_keep_pins.  @p may be NULL. */
void probe_stop(struct probe *p);

/*
 * The probes' part of /metrics, in the Prometheus text format: the gauge
 * walship_probes_enabled and, when @probe (a struct probe *, NULL when the probes are off)
 * is there, the fsync and send histograms.  Shaped as metrics_source.more.
 */
void probe_metrics(FILE *out, void *probe);

#endif /* WALSHIP_PROBE_PROBE_H */
