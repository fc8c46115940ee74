/* SPDX-License-Identifier: MIT */
/*
 * The probes' histograms as one snapshot, and what is computed and printed from it:
 * quantiles, biolatency-style text, JSON, the Prometheus text format.  Pure functions:
 * the daemon (metrics), `walship stats` and `walship status` share them.
 */
#ifndef WALSHIP_PROBE_HIST_H
#define WALSHIP_PROBE_HIST_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "probes.h" /* bpf/probes.h: the map layouts shared with the BPF programs */

struct probe_snapshot {
	struct probe_fsync fsync;
	struct probe_send send[PROBE_MAX_PEERS];
	/* "" when unused; address characters alone, others replaced (probe_read_maps()) */
	char peer[PROBE_MAX_PEERS][PROBE_PEER_ADDR_LEN];
	/* the kernel's ids of the maps read (fsync_hist, send_hist, peers): another id is
	 * another map, made by a walshipd started since (0: not read from maps) */
	uint32_t map_id[3];
};

/* How peer number @peer of @s is named: its host, or "unknown #N" (in @buf, @len bytes)
 * while its host is not published yet, so that no two peers print alike. */
const char *probe_peer_label(const struct probe_snapshot *s, int peer, char *buf, size_t len);

/* Operations counted in @h: the sum of its slots (consistent with the buckets). */
uint64_t probe_hist_count(const struct probe_hist *h);

/* Quantile @q (0..1) of @h in microseconds, interpolated inside its log2 bucket as
 * Prometheus' histogram_quantile() does (in the last, open-ended one, from 67 s up, its
 * lower bound); 0 when @h is empty. */
double probe_hist_quantile_us(const struct probe_hist *h, double q);

/* @out = @now - @before, slot by slot (for --interval deltas); peers are kept.  False,
 * with @out = @now, when the maps are others (their ids), a count went back or a peer
 * number names another host: the histograms were made afresh between the two (walshipd
 * restarted; its new counts may all be at or above the old ones). */
bool probe_snapshot_sub(struct probe_snapshot *out, const struct probe_snapshot *now,
			const struct probe_snapshot *before);

/* biolatency-style histograms with p50/p90/p99 and counts; empty ones are one line. */
void probe_print_text(FILE *out, const struct probe_snapshot *s);

/* One line per histogram: "fsync io_uring: 12 ops, p50 1.2 ms, ..." (walship status). */
void probe_print_summary(FILE *out, const struct probe_snapshot *s);

/* The snapshot as a JSON object.  @interval_s > 0: @s holds the counts of one interval of
 * that many seconds (walship stats --interval), said in "interval_s", and "afresh" says
 * whether the histograms were made afresh within it (walshipd restarted: the counts are
 * those since then). */
void probe_print_json(FILE *out, const struct probe_snapshot *s, long interval_s, bool afresh);

/* walship_fsync_duration_seconds and walship_send_duration_seconds as Prometheus
 * histograms (cumulative _bucket{le}, _sum, _count). */
void probe_print_prometheus(FILE *out, const struct probe_snapshot *s);

#endif /* WALSHIP_PROBE_HIST_H */
