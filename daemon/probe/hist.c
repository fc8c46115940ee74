// SPDX-License-Identifier: MIT
/*
 * Histogram arithmetic and rendering (see hist.h).
 */
#include <string.h>

#include "common/compiler.h"
#include "probe/hist.h"

struct hist_ref {
	const char *family; /* "fsync" or "send" */
	const char *label; /* io_uring, syscall, ext4; sent, released */
	const char *what; /* one line for the text output */
	const struct probe_hist *h;
};

static const char *const fsync_what[] = {
	"IORING_OP_FSYNC, submission to completion",
	"fsync(2)/fdatasync(2) system calls",
	"ext4_sync_file, every fsync by the daemon's threads",
	"a receive of WAL from a peer to the completion of the next IORING_OP_FSYNC",
};

uint64_t probe_hist_count(const struct probe_hist *h)
{
	uint64_t n = 0;

	for (int slot = 0; slot < PROBE_HIST_SLOTS; slot++)
		n += h->slots[slot];
	return n;
}

/* Bucket @slot holds [low, high) microseconds; the last one has no high (probes.h). */
#define LAST_SLOT (PROBE_HIST_SLOTS - 1)

static double slot_low_us(int slot)
{
	return slot == 0 ? 0.0 : (double)(1ULL << slot);
}

static double slot_high_us(int slot)
{
	return (double)(1ULL << (slot + 1));
}

double probe_hist_quantile_us(const struct probe_hist *h, double q)
{
	uint64_t total = probe_hist_count(h), seen = 0;
	double rank = q * (double)total;

	if (!total)
		return 0.0;
	for (int slot = 0; slot < PROBE_HIST_SLOTS; slot++) {
		uint64_t n = h->slots[slot];

		if (n && (double)(seen + n) >= rank) {
			double frac = (rank - (double)seen) / (double)n;

			/* the open-ended last bucket: its low, as Prometheus answers in +Inf */
			if (slot == LAST_SLOT)
				return slot_low_us(slot);
			return slot_low_us(slot) + (slot_high_us(slot) - slot_low_us(slot)) * frac;
		}
		seen += n;
	}
	return slot_low_us(LAST_SLOT);
}

/* @out = @a - @b; false (and @out untouched past the first slot that went back) when a
 * count of @a is below @b's: not the same histogram. */
static bool hist_sub(struct probe_hist *out, const struct probe_hist *a, const struct probe_hist *b)
{
	for (int slot = 0; slot < PROBE_HIST_SLOTS; slot++) {
		if (a->slots[slot] < b->slots[slot])
			return false;
		out->slots[slot] = a->slots[slot] - b->slots[slot];
	}
	if (a->count < b->count || a->sum_ns < b->sum_ns)
		return false;
	out->count = a->count - b->count;
	out->sum_ns = a->sum_ns - b->sum_ns;
	return true;
}

bool probe_snapshot_sub(struct probe_snapshot *out, const struct probe_snapshot *now,
			const struct probe_snapshot *before)
{
	bool ok = !memcmp(now->map_id, before->map_id, sizeof(now->map_id)) &&
		  hist_sub(&out->fsync.io_uring, &now->fsync.io_uring, &before->fsync.io_uring) &&
		  hist_sub(&out->fsync.syscall, &now->fsync.syscall, &before->fsync.syscall) &&
		  hist_sub(&out->fsync.ext4, &now->fsync.ext4, &before->fsync.ext4) &&
		  hist_sub(&out->fsync.received, &now->fsync.received, &before->fsync.received);

	for (int peer = 0; ok && peer < PROBE_MAX_PEERS; peer++) {
		/* a peer number naming another host now: counted afresh too */
		ok = !strcmp(now->peer[peer], before->peer[peer]) || !before->peer[peer][0];
		ok = ok &&
		     hist_sub(&out->send[peer].sent, &now->send[peer].sent,
			      &before->send[peer].sent) &&
		     hist_sub(&out->send[peer].released, &now->send[peer].released,
			      &before->send[peer].released);
		memcpy(out->peer[peer], now->peer[peer], sizeof(out->peer[peer]));
	}
	memcpy(out->map_id, now->map_id, sizeof(out->map_id));
	if (!ok)
		*out = *now;
	return ok;
}

/* Peers worth printing: named, or with counts. */
static bool peer_used(const struct probe_snapshot *s, int peer)
{
	return s->peer[peer][0] || probe_hist_count(&s->send[peer].sent) ||
	       probe_hist_count(&s->send[peer].released);
}

const char *probe_peer_label(const struct probe_snapshot *s, int peer, char *buf, size_t len)
{
	if (s->peer[peer][0])
		return s->peer[peer];
	snprintf(buf, len, "unknown #%d", peer);
	return buf;
}

static void print_duration(FILE *out, double us)
{
	if (us >= 1000000.0)
		fprintf(out, "%.2f s", us / 1000000.0);
	else if (us >= 1000.0)
		fprintf(out, "%.2f ms", us / 1000.0);
	else
		fprintf(out, "%.0f us", us);
}

static void print_hist_head(FILE *out, const struct probe_hist *h)
{
	uint64_t n = probe_hist_count(h);

	fprintf(out, "%llu ops", (unsigned long long)n);
	if (!n)
		return;
	fprintf(out, ", p50 ");
	print_duration(out, probe_hist_quantile_us(h, 0.50));
	fprintf(out, ", p90 ");
	print_duration(out, probe_hist_quantile_us(h, 0.90));
	fprintf(out, ", p99 ");
	print_duration(out, probe_hist_quantile_us(h, 0.99));
	fprintf(out, ", avg ");
	print_duration(out, (double)h->sum_ns / 1000.0 / (double)n);
}

/* The biolatency layout: "low -> high : count |****|", 40-star bars. */
static void print_log2_hist(FILE *out, const struct probe_hist *h)
{
	int first = -1, last = -1;
	uint64_t max = 0;

	for (int slot = 0; slot < PROBE_HIST_SLOTS; slot++) {
		if (!h->slots[slot])
			continue;
		if (first < 0)
			first = slot;
		last = slot;
		if (h->slots[slot] > max)
			max = h->slots[slot];
	}
	if (first < 0)
		return;
	fprintf(out, "     usecs               : count    distribution\n");
	for (int slot = 0; slot <= last; slot++) {
		unsigned long long low = slot == 0 ? 0 : 1ULL << slot;
		char high[24] = "inf";
		int stars = (int)(h->slots[slot] * 40 / max);

		if (slot != LAST_SLOT)
			snprintf(high, sizeof(high), "%llu", (1ULL << (slot + 1)) - 1);
		fprintf(out, "%10llu -> %-10s : %-8llu |%-*.*s|\n", low, high,
			(unsigned long long)h->slots[slot], 40, stars,
			"****************************************");
	}
}

void probe_print_text(FILE *out, const struct probe_snapshot *s)
{
	const struct probe_hist *fs[] = { &s->fsync.io_uring, &s->fsync.syscall, &s->fsync.ext4,
					  &s->fsync.received };
	const char *names[] = { "fsync io_uring", "fsync syscall", "fsync ext4",
				"received to durable" };

	for (size_t i = 0; i < ARRAY_SIZE(fs); i++) {
		fprintf(out, "%s (%s): ", names[i], fsync_what[i]);
		print_hist_head(out, fs[i]);
		fprintf(out, "\n");
		print_log2_hist(out, fs[i]);
	}
	for (int peer = 0; peer < PROBE_MAX_PEERS; peer++) {
		char label[32];

		if (!peer_used(s, peer))
			continue;
		fprintf(out, "send to %s (submission to completion): ",
			probe_peer_label(s, peer, label, sizeof(label)));
		print_hist_head(out, &s->send[peer].sent);
		fprintf(out, "\n");
		print_log2_hist(out, &s->send[peer].sent);
		fprintf(out, "send to %s (submission to zero-copy release): ",
			probe_peer_label(s, peer, label, sizeof(label)));
		print_hist_head(out, &s->send[peer].released);
		fprintf(out, "\n");
		print_log2_hist(out, &s->send[peer].released);
	}
}

void probe_print_summary(FILE *out, const struct probe_snapshot *s)
{
	fprintf(out, "  fsync io_uring: ");
	print_hist_head(out, &s->fsync.io_uring);
	fprintf(out, "\n  fsync syscall:  ");
	print_hist_head(out, &s->fsync.syscall);
	fprintf(out, "\n  fsync ext4:     ");
	print_hist_head(out, &s->fsync.ext4);
	fprintf(out, "\n  received to durable: ");
	print_hist_head(out, &s->fsync.received);
	fprintf(out, "\n");
	for (int peer = 0; peer < PROBE_MAX_PEERS; peer++) {
		char label[32];

		if (!peer_used(s, peer))
			continue;
		fprintf(out, "  send %s: ", probe_peer_label(s, peer, label, sizeof(label)));
		print_hist_head(out, &s->send[peer].sent);
		fprintf(out, "\n  released %s: ", probe_peer_label(s, peer, label, sizeof(label)));
		print_hist_head(out, &s->send[peer].released);
		fprintf(out, "\n");
	}
}

static void json_hist(FILE *out, const struct probe_hist *h)
{
	uint64_t n = probe_hist_count(h);
	bool first = true;

	fprintf(out,
		"{\"count\": %llu, \"sum_us\": %.3f, \"p50_us\": %.1f, \"p90_us\": %.1f, "
		"\"p99_us\": %.1f, \"buckets\": [",
		(unsigned long long)n, (double)h->sum_ns / 1000.0, probe_hist_quantile_us(h, 0.5),
		probe_hist_quantile_us(h, 0.9), probe_hist_quantile_us(h, 0.99));
	for (int slot = 0; slot < PROBE_HIST_SLOTS; slot++) {
		char high[24] = "null"; /* the last bucket: open-ended */

		if (!h->slots[slot])
			continue;
		if (slot != LAST_SLOT)
			snprintf(high, sizeof(high), "%llu", (1ULL << (slot + 1)) - 1);
		fprintf(out, "%s{\"low_us\": %llu, \"high_us\": %s, \"count\": %llu}",
			first ? "" : ", ", slot == 0 ? 0ULL : 1ULL << slot, high,
			(unsigned long long)h->slots[slot]);
		first = false;
	}
	fprintf(out, "]}");
}

void probe_print_json(FILE *out, const struct probe_snapshot *s, long interval_s, bool afresh)
{
	bool first = true;

	fprintf(out, "{");
	if (interval_s > 0)
		fprintf(out, "\"interval_s\": %ld, \"afresh\": %s, ", interval_s,
			afresh ? "true" : "false");
	fprintf(out, "\"fsync\": {\"io_uring\": ");
	json_hist(out, &s->fsync.io_uring);
	fprintf(out, ", \"syscall\": ");
	json_hist(out, &s->fsync.syscall);
	fprintf(out, ", \"ext4\": ");
	json_hist(out, &s->fsync.ext4);
	fprintf(out, "}, \"received_to_durable\": ");
	json_hist(out, &s->fsync.received);
	fprintf(out, ", \"send\": [");
	for (int peer = 0; peer < PROBE_MAX_PEERS; peer++) {
		if (!peer_used(s, peer))
			continue;
		/* Address characters alone (probe_read_maps()): nothing to escape. */
		fprintf(out, "%s{\"peer\": %d, \"addr\": \"%s\", \"sent\": ", first ? "" : ", ",
			peer, s->peer[peer]);
		json_hist(out, &s->send[peer].sent);
		fprintf(out, ", \"released\": ");
		json_hist(out, &s->send[peer].released);
		fprintf(out, "}");
		first = false;
	}
	fprintf(out, "]}\n");
}

static void prom_hist(FILE *out, const char *name, const char *labels, const struct probe_hist *h)
{
	uint64_t cum = 0;

	for (int slot = 0; slot < LAST_SLOT; slot++) {
		cum += h->slots[slot];
		fprintf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
			slot_high_us(slot) / 1e6, (unsigned long long)cum);
	}
	cum += h->slots[LAST_SLOT];
	fprintf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
	fprintf(out, "%s_sum{%s} %.9f\n", name, labels, (double)h->sum_ns / 1e9);
	fprintf(out, "%s_count{%s} %llu\n", name, labels, (unsigned long long)cum);
}

void probe_print_prometheus(FILE *out, const struct probe_snapshot *s)
{
	char labels[128];

	fprintf(out, "# HELP walship_fsync_duration_seconds Latency of the daemon's fsyncs, "
		     "by where they were seen (BPF).\n"
		     "# TYPE walship_fsync_duration_seconds histogram\n");
	prom_hist(out, "walship_fsync_duration_seconds", "path=\"io_uring\"", &s->fsync.io_uring);
	prom_hist(out, "walship_fsync_duration_seconds", "path=\"syscall\"", &s->fsync.syscall);
	prom_hist(out, "walship_fsync_duration_seconds", "path=\"ext4\"", &s->fsync.ext4);
	fprintf(out, "# HELP walship_received_to_durable_seconds From a receive of WAL from a peer "
		     "to the completion of the next fsync the daemon submits, once per fsync "
		     "(BPF).\n"
		     "# TYPE walship_received_to_durable_seconds histogram\n");
	prom_hist(out, "walship_received_to_durable_seconds", "path=\"io_uring\"",
		  &s->fsync.received);
	fprintf(out, "# HELP walship_send_duration_seconds Latency of sends to a peer: to "
		     "completion (stage sent) and to the zero-copy release (stage released).\n"
		     "# TYPE walship_send_duration_seconds histogram\n");
	for (int peer = 0; peer < PROBE_MAX_PEERS; peer++) {
		char label[32];

		if (!peer_used(s, peer))
			continue;
		snprintf(labels, sizeof(labels), "peer=\"%s\",stage=\"sent\"",
			 probe_peer_label(s, peer, label, sizeof(label)));
		prom_hist(out, "walship_send_duration_seconds", labels, &s->send[peer].sent);
		snprintf(labels, sizeof(labels), "peer=\"%s\",stage=\"released\"",
			 probe_peer_label(s, peer, label, sizeof(label)));
		prom_hist(out, "walship_send_duration_seconds", labels, &s->send[peer].released);
	}
}
