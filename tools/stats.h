/* SPDX-License-Identifier: MIT */
/*
 * `walship stats [-c FILE] [--json] [--interval N [--count M]]`: the BPF latency
 * histograms of the local walshipd, read from its pins (/sys/fs/bpf/walship/NODE/), as
 * biolatency-style text with p50/p90/p99, or JSON; with --interval, the deltas of each
 * interval, like iostat.  Needs the privileges to open the pins (root, or CAP_BPF).
 *
 * Exit codes: 0 printed; 1 no pins (probes off or walshipd not running); 2 usage.
 */
#ifndef WALSHIP_TOOLS_STATS_H
#define WALSHIP_TOOLS_STATS_H

#include <stdio.h>

int stats_main(int argc, char **argv);
void stats_usage(FILE *out);

#endif /* WALSHIP_TOOLS_STATS_H */
