// SPDX-License-Identifier: MIT
/*
 * Rendering of the status document (see status.h).
 *
 * A growable buffer and a JSON string escaper of our own: the document is small and
 * flat, and a JSON library would be a dependency for forty lines.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/compiler.h"
#include "common/utf8.h"
#include "status/status.h"
#include "wal/name.h"

#define STATUS_DEFAULT_SEG_SIZE (16u << 20)

#define STATUS_NODE_ENTRY(n, k, h) { #n, STATUS_##k, h, offsetof(struct status_node, n) },
#define STATUS_PEER_ENTRY(n, k, h) { #n, STATUS_##k, h, offsetof(struct status_peer, n) },

const struct status_value status_node_values[] = { STATUS_NODE_VALUES(STATUS_NODE_ENTRY) };
const size_t status_node_nvalues = ARRAY_SIZE(status_node_values);
const struct status_value status_peer_values[] = { STATUS_PEER_VALUES(STATUS_PEER_ENTRY) };
const size_t status_peer_nvalues = ARRAY_SIZE(status_peer_values);

struct sbuf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...) attr_printf(2, 3);

static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->failed)
		return;
	for (;;) {
		size_t room = sb->cap - sb->len;

		va_start(ap, fmt);
		n = vsnprintf(sb->data + sb->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			sb->failed = true;
			return;
		}
		if ((size_t)n < room) {
			sb->len += (size_t)n;
			return;
		}
		size_t cap = sb->cap * 2 + (size_t)n;
		char *p = realloc(sb->data, cap);

		if (!p) {
			sb->failed = true;
			return;
		}
		sb->data = p;
		sb->cap = cap;
	}
}

/* A JSON string literal for @s; a byte that is not part of a well-formed UTF-8 character
 * (a name a peer chose, or one cut inside a character) becomes U+FFFD, so that the
 * document stays valid JSON. */
static void sb_json_str(struct sbuf *sb, const char *s)
{
	sb_printf(sb, "\"");
	while (*s) {
		unsigned char ch = (unsigned char)*s;
		size_t n = utf8_char_len(s);

		if (!n)
			sb_printf(sb, "\\ufffd");
		else if (ch == '"' || ch == '\\')
			sb_printf(sb, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			sb_printf(sb, "\\u%04x", ch);
		else
			sb_printf(sb, "%.*s", (int)n, s);
		s += n ? n : 1;
	}
	sb_printf(sb, "\"");
}

/* @s for a terminal (utf8_shown_len()): a name a peer chose, before its authentication,
 * must not move the operator's cursor. */
static void sb_text(struct sbuf *sb, const char *s)
{
	while (*s) {
		size_t n = utf8_char_len(s); /* (one '?' for a whole C1 character) */

		if (utf8_shown_len(s))
			sb_printf(sb, "%.*s", (int)n, s);
		else
			sb_printf(sb, "?");
		s += n ? n : 1;
	}
}

/* @label, then @text as sb_text() shows it (text a peer sent: an ERROR's, an ACK's), and
 * a new line. */
static void sb_text_line(struct sbuf *sb, const char *label, const char *text)
{
	sb_printf(sb, "%s", label);
	sb_text(sb, text);
	sb_printf(sb, "\n");
}

static void json_quantiles(struct sbuf *sb, const char *key, const struct status_quantiles *q)
{
	/* The precision of `walship stats --json`, so both can be compared as they are. */
	sb_printf(sb,
		  "\"%s\":{\"count\":%" PRIu64 ",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f}",
		  key, q->count, q->p50_us, q->p90_us, q->p99_us);
}

/* "probes": null when off, else the quantiles shaped like `walship stats --json`. */
static void render_json_probes(struct sbuf *sb, const struct status_probes *pr)
{
	sb_printf(sb, ",\"probes\":");
	if (!pr) {
		sb_printf(sb, "null");
		return;
	}
	sb_printf(sb, "{\"fsync\":{");
	json_quantiles(sb, "io_uring", &pr->fsync_io_uring);
	sb_printf(sb, ",");
	json_quantiles(sb, "syscall", &pr->fsync_syscall);
	sb_printf(sb, ",");
	json_quantiles(sb, "ext4", &pr->fsync_ext4);
	sb_printf(sb, "},");
	json_quantiles(sb, "received_to_durable", &pr->received_durable);
	sb_printf(sb, ",\"send\":[");
	for (unsigned int i = 0; i < pr->npeers; i++) {
		sb_printf(sb, "%s{\"addr\":", i ? "," : "");
		sb_json_str(sb, pr->peers[i].addr);
		sb_printf(sb, ",");
		json_quantiles(sb, "sent", &pr->peers[i].sent);
		sb_printf(sb, ",");
		json_quantiles(sb, "released", &pr->peers[i].released);
		sb_printf(sb, "}");
	}
	sb_printf(sb, "]}");
}

/* ,"name":value for each of the @nvalues values of @base. */
static void json_values(struct sbuf *sb, const void *base, const struct status_value *values,
			size_t nvalues)
{
	for (size_t i = 0; i < nvalues; i++)
		sb_printf(sb, ",\"%s\":%" PRIu64, values[i].name,
			  status_value_get(base, &values[i]));
}

static void json_lsn(struct sbuf *sb, const char *key, uint64_t lsn)
{
	sb_printf(sb, ",\"%s\":\"%X/%X\"", key, (unsigned int)(lsn >> 32), (unsigned int)lsn);
}

/* "standbys": PostgreSQL standbys on pg_listen, positions as "X/X" like pg_stat_replication. */
static void render_json_standbys(struct sbuf *sb, const struct status_node *n)
{
	sb_printf(sb, ",\"standbys\":[");
	for (unsigned int i = 0; i < n->nstandbys; i++) {
		const struct status_standby *s = &n->standbys[i];

		sb_printf(sb, "%s{\"user\":", i ? "," : "");
		sb_json_str(sb, s->user);
		sb_printf(sb, ",\"application_name\":");
		sb_json_str(sb, s->application_name);
		sb_printf(sb, ",\"addr\":");
		sb_json_str(sb, s->addr);
		sb_printf(sb, ",\"state\":");
		sb_json_str(sb, s->state);
		sb_printf(sb, ",\"slot\":");
		sb_json_str(sb, s->slot);
		sb_printf(sb, ",\"timeline\":%u", s->timeline);
		json_lsn(sb, "sent_lsn", s->sent_lsn);
		json_lsn(sb, "write_lsn", s->write_lsn);
		json_lsn(sb, "flush_lsn", s->flush_lsn);
		json_lsn(sb, "replay_lsn", s->apply_lsn);
		sb_printf(sb, ",\"write_lag_ms\":%lld,\"flush_lag_ms\":%lld,\"replay_lag_ms\":%lld",
			  (long long)s->write_lag_ms, (long long)s->flush_lag_ms,
			  (long long)s->replay_lag_ms);
		sb_printf(sb,
			  ",\"xmin\":%u,\"catalog_xmin\":%u,\"bytes_sent\":%" PRIu64
			  ",\"connected_since\":%lld",
			  s->xmin, s->catalog_xmin, s->bytes_sent, (long long)s->connected_since);
		sb_printf(sb, ",\"delay_ms\":%lld,\"hold\":", (long long)s->delay_ms);
		sb_json_str(sb, s->hold);
		if (s->send_limit == UINT64_MAX)
			sb_printf(sb, ",\"send_limit\":null}");
		else {
			json_lsn(sb, "send_limit", s->send_limit);
			sb_printf(sb, "}");
		}
	}
	sb_printf(sb, "]");
}

/* "slots": replication slots on pg_listen, like pg_replication_slots. */
static void render_json_slots(struct sbuf *sb, const struct status_node *n)
{
	sb_printf(sb, ",\"slots\":[");
	for (unsigned int i = 0; i < n->nslots; i++) {
		const struct status_slot *s = &n->slots[i];

		sb_printf(sb, "%s{\"slot_name\":", i ? "," : "");
		sb_json_str(sb, s->name);
		sb_printf(sb, ",\"slot_type\":\"physical\",\"temporary\":%s,\"active\":%s",
			  s->temporary ? "true" : "false", s->active ? "true" : "false");
		json_lsn(sb, "restart_lsn", s->restart_lsn);
		sb_printf(sb, ",\"restart_tli\":%u,\"retained_bytes\":%" PRIu64 "}", s->restart_tli,
			  s->retained_bytes);
	}
	sb_printf(sb, "]");
}

static void render_json(struct sbuf *sb, const struct status_node *n)
{
	sb_printf(sb, "{\"role\":");
	sb_json_str(sb, n->role);
	sb_printf(sb, ",\"node_name\":");
	sb_json_str(sb, n->node_name);
	sb_printf(sb, ",\"system_identifier\":\"%" PRIu64 "\"", n->system_identifier);
	sb_printf(sb, ",\"page_magic\":%u,\"seg_size\":%u,\"timeline\":%u,\"started\":%" PRId64,
		  n->page_magic, n->seg_size, n->timeline, n->started);
	sb_printf(sb, ",\"sync_replicas\":%d,\"max_senders\":%d", n->sync_replicas, n->max_senders);
	sb_printf(sb, ",\"upstream\":");
	sb_json_str(sb, n->upstream);
	sb_printf(sb, ",\"archive_dir\":");
	sb_json_str(sb, n->archive_dir);
	sb_printf(sb, ",\"retain_policy\":");
	sb_json_str(sb, n->retain_policy);
	sb_printf(sb, ",\"retain_oldest\":");
	sb_json_str(sb, n->retain_oldest);
	json_values(sb, n, status_node_values, status_node_nvalues);
	sb_printf(sb, ",\"source_state\":");
	sb_json_str(sb, n->source_state);
	sb_printf(sb, ",\"source_error\":");
	sb_json_str(sb, n->source_error);
	sb_printf(sb, ",\"source_slot\":");
	sb_json_str(sb, n->source_slot);
	sb_printf(sb, ",\"last_conflict\":");
	sb_json_str(sb, n->last_conflict);
	sb_printf(sb, ",\"last_error\":");
	sb_json_str(sb, n->last_error);
	sb_printf(sb, ",\"peers\":[");
	for (unsigned int i = 0; i < n->npeers; i++) {
		const struct status_peer *p = &n->peers[i];

		sb_printf(sb, "%s{\"name\":", i ? "," : "");
		sb_json_str(sb, p->name);
		sb_printf(sb, ",\"addr\":");
		sb_json_str(sb, p->addr);
		sb_printf(sb, ",\"state\":");
		sb_json_str(sb, walship_peer_state_name(p->state));
		sb_printf(sb, ",\"last_sent\":");
		sb_json_str(sb, p->last_sent);
		sb_printf(sb, ",\"last_acked\":");
		sb_json_str(sb, p->last_acked);
		json_values(sb, p, status_peer_values, status_peer_nvalues);
		sb_printf(sb, ",\"connected_since\":%" PRId64, p->connected_since);
		sb_printf(sb,
			  ",\"sent_lsn\":\"%X/%X\",\"write_lsn\":\"%X/%X\",\"flush_lsn\":\"%X/%X\""
			  ",\"lag_bytes\":%" PRIu64 ",\"lag_us\":%" PRIu64,
			  (unsigned int)(p->sent_lsn >> 32), (unsigned int)p->sent_lsn,
			  (unsigned int)(p->write_lsn >> 32), (unsigned int)p->write_lsn,
			  (unsigned int)(p->flush_lsn >> 32), (unsigned int)p->flush_lsn,
			  p->lag_bytes, p->lag_us);
		sb_printf(sb, ",\"tls\":");
		sb_json_str(sb, p->tls);
		sb_printf(sb, ",\"ktls\":");
		sb_json_str(sb, p->ktls);
		sb_printf(sb, ",\"lost_first\":");
		sb_json_str(sb, p->lost_first);
		sb_printf(sb, ",\"lost_last\":");
		sb_json_str(sb, p->lost_last);
		sb_printf(sb, ",\"last_error\":");
		sb_json_str(sb, p->last_error);
		sb_printf(sb, "}");
	}
	sb_printf(sb, "]");
	render_json_standbys(sb, n);
	render_json_slots(sb, n);
	render_json_probes(sb, n->probes);
	sb_printf(sb, "}\n");
}

static void text_duration(struct sbuf *sb, double us)
{
	if (us >= 1000000.0)
		sb_printf(sb, "%.2f s", us / 1000000.0);
	else if (us >= 1000.0)
		sb_printf(sb, "%.2f ms", us / 1000.0);
	else
		sb_printf(sb, "%.0f us", us);
}

static void text_quantiles(struct sbuf *sb, const char *what, const struct status_quantiles *q)
{
	sb_printf(sb, "  %-27s %" PRIu64 " ops", what, q->count);
	if (q->count) {
		sb_printf(sb, ", p50 ");
		text_duration(sb, q->p50_us);
		sb_printf(sb, ", p90 ");
		text_duration(sb, q->p90_us);
		sb_printf(sb, ", p99 ");
		text_duration(sb, q->p99_us);
	}
	sb_printf(sb, "\n");
}

static void render_text_probes(struct sbuf *sb, const struct status_probes *pr)
{
	char what[96];

	if (!pr) {
		sb_printf(sb, "latency probes:      off\n");
		return;
	}
	sb_printf(sb, "latency probes:      on (BPF; walship stats for the histograms)\n");
	text_quantiles(sb, "fsync io_uring:", &pr->fsync_io_uring);
	text_quantiles(sb, "fsync syscall:", &pr->fsync_syscall);
	text_quantiles(sb, "fsync ext4:", &pr->fsync_ext4);
	text_quantiles(sb, "received to durable:", &pr->received_durable);
	for (unsigned int i = 0; i < pr->npeers; i++) {
		snprintf(what, sizeof(what), "send to %s:", pr->peers[i].addr);
		text_quantiles(sb, what, &pr->peers[i].sent);
		snprintf(what, sizeof(what), "released by %s:", pr->peers[i].addr);
		text_quantiles(sb, what, &pr->peers[i].released);
	}
}

/*
 * The stream's slot, once read, and WAL the server removed that the stream needs
 * (docs/operations.md, "The slot"): what is missing, and what the operator can do.
 */
static void render_text_slot(struct sbuf *sb, const struct status_node *n)
{
	uint32_t seg_size = n->seg_size ? n->seg_size : STATUS_DEFAULT_SEG_SIZE;
	uint64_t missing = n->source_wal_missing_lsn;
	char segment[32];

	if (!n->source_connects)
		return;
	if (n->source_slot_restart_lsn)
		sb_printf(sb, "source slot:         \"%s\", restart_lsn %X/%X (%" PRIu64 ")\n",
			  n->source_slot, (unsigned int)(n->source_slot_restart_lsn >> 32),
			  (unsigned int)n->source_slot_restart_lsn, n->source_slot_restart_lsn);
	else
		sb_printf(sb,
			  "source slot:         \"%s\", restart_lsn NULL: it reserves no WAL "
			  "(invalidated by max_slot_wal_keep_size, or made without RESERVE_WAL)\n",
			  n->source_slot);
	if (n->source_recorded_lsn)
		sb_printf(sb,
			  "source record:       %X/%X (%" PRIu64 ") on timeline %" PRIu64
			  ": a restart streams from its segment start\n",
			  (unsigned int)(n->source_recorded_lsn >> 32),
			  (unsigned int)n->source_recorded_lsn, n->source_recorded_lsn,
			  n->source_recorded_timeline);
	if (!missing)
		return;
	wal_name_format_segment(segment, sizeof(segment), n->timeline ? n->timeline : 1,
				missing / seg_size, seg_size);
	sb_printf(sb,
		  "WAL MISSING:         PostgreSQL removed the WAL from %X/%X (%" PRIu64
		  ", segment %s) on; the replicas hold WAL durably up to %X/%X, so streaming "
		  "waits: push the segments from %s on with walship push (from the archive "
		  "that has them) and it goes on after the last one they hold; if none has them, "
		  "stop walshipd, drop the slot and start walshipd: it makes the slot again and "
		  "streams from the server's position, and the standbys served by the replicas "
		  "need a new base backup\n",
		  (unsigned int)(missing >> 32), (unsigned int)missing, missing, segment,
		  (unsigned int)(n->source_flush_lsn >> 32), (unsigned int)n->source_flush_lsn,
		  segment);
}

static void render_text(struct sbuf *sb, const struct status_node *n)
{
	sb_printf(sb, "role:                %s\n", n->role);
	sb_printf(sb, "node name:           %s\n", n->node_name);
	if (n->system_identifier)
		sb_printf(sb, "system identifier:   %" PRIu64 "\n", n->system_identifier);
	else
		sb_printf(sb, "system identifier:   (not yet known)\n");
	if (n->upstream[0])
		sb_printf(sb, "upstream:            %s\n", n->upstream);
	if (n->archive_dir[0])
		sb_printf(sb, "archive directory:   %s\n", n->archive_dir);
	if (strcmp(n->role, "primary") && n->registered_replicas)
		sb_printf(sb, "relay:               %" PRIu64 " downstream replica(s) registered\n",
			  n->registered_replicas);
	if (!strcmp(n->role, "primary")) {
		sb_printf(sb, "sync replicas:       %d of at most %d\n", n->sync_replicas,
			  n->max_senders);
		sb_printf(sb,
			  "pushes:              %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64
			  " abandoned by their client, %" PRIu64 " in progress\n",
			  n->pushes_ok, n->pushes_failed, n->pushes_abandoned, n->pushes_queued);
		sb_printf(sb,
			  "spool:               %" PRIu64 " file(s), %" PRIu64
			  " bytes, for %" PRIu64 " registered replica(s)\n",
			  n->spool_files, n->spool_bytes, n->registered_replicas);
		sb_printf(sb,
			  "spool copies:        %" PRIu64 " made, %" PRIu64
			  " not needed (replicas acknowledged within spool_delay)\n",
			  n->spool_copies, n->spool_avoided);
		if (n->source_state[0] || n->source_received_lsn || n->source_connects)
			sb_printf(sb,
				  "stream source:       %s, %" PRIu64
				  " connection(s); received %X/%X"
				  " (%" PRIu64 "), durable on sync_replicas %X/%X (%" PRIu64 ")"
				  ", applied by standbys %X/%X (%" PRIu64 ")\n",
				  n->source_state[0] ? n->source_state : "?", n->source_connects,
				  (unsigned int)(n->source_received_lsn >> 32),
				  (unsigned int)n->source_received_lsn, n->source_received_lsn,
				  (unsigned int)(n->source_flush_lsn >> 32),
				  (unsigned int)n->source_flush_lsn, n->source_flush_lsn,
				  (unsigned int)(n->source_apply_lsn >> 32),
				  (unsigned int)n->source_apply_lsn, n->source_apply_lsn);
		if (n->source_state[0] || n->source_retained_bytes)
			sb_printf(sb,
				  "slot retains:        %" PRIu64
				  " bytes of WAL past the flush position reported\n",
				  n->source_retained_bytes);
		if (n->source_error[0])
			sb_text_line(sb, "stream source error: ", n->source_error);
		render_text_slot(sb, n);
		if (n->spool_full || n->lost_files)
			sb_printf(sb,
				  "spool overflow:      %" PRIu64 " push(es) refused, %" PRIu64
				  " file(s) lost by replicas\n",
				  n->spool_full, n->lost_files);
		if (n->spool_unremovable)
			sb_printf(sb,
				  "spool removals:      %" PRIu64
				  " failure(s) to remove a copy no claim holds (its room stays "
				  "taken; tried again; see the log)\n",
				  n->spool_unremovable);
	} else {
		sb_printf(sb, "files stored:        %" PRIu64 " (%" PRIu64 " bytes)\n",
			  n->files_stored, n->bytes_stored);
		sb_printf(sb,
			  "checkpoints:         %" PRIu64
			  " (partial files made durable and recorded)\n",
			  n->checkpoints);
		sb_printf(sb,
			  "stream syncs:        %" PRIu64
			  " (group commits of streamed segments; %" PRIu64 " written directly)\n",
			  n->stream_syncs, n->stream_direct_syncs);
		sb_printf(sb, "retention:           %s\n",
			  n->retain_policy[0] ? n->retain_policy : "off");
		sb_printf(sb,
			  "retained:            %" PRIu64 " file(s), %" PRIu64
			  " bytes, oldest %s; standbys need WAL from %X/%X (%" PRIu64 ")\n",
			  n->retained_files, n->retained_bytes,
			  n->retain_oldest[0] ? n->retain_oldest : "-",
			  (unsigned int)(n->retain_floor_lsn >> 32),
			  (unsigned int)n->retain_floor_lsn, n->retain_floor_lsn);
		sb_printf(sb, "removed:             %" PRIu64 " file(s), %" PRIu64 " bytes\n",
			  n->retain_removed_files, n->retain_removed_bytes);
	}
	sb_printf(sb,
		  "refused:             %" PRIu64 " invalid, %" PRIu64 " other system, %" PRIu64
		  " I/O errors\n",
		  n->invalid, n->sysid_refused, n->io_errors);
	if (n->set_aside)
		sb_printf(sb,
			  "set aside:           %" PRIu64
			  " refused streamed file(s) in .refused, part acknowledged durable: "
			  "look into them, then remove them\n",
			  n->set_aside);
	sb_printf(sb,
		  "connections refused: %" PRIu64 " (%" PRIu64 " by the access rules); %" PRIu64
		  " closed at once (descriptor or handshake limit)\n",
		  n->connections_refused, n->hba_refused, n->connections_shed);
	sb_printf(sb, "duplicates:          %" PRIu64 " identical, %" PRIu64 " conflicting\n",
		  n->duplicates, n->conflicts);
	if (n->resumed_files || n->skipped_files)
		sb_printf(sb,
			  "resumed:             %" PRIu64 " file(s), %" PRIu64
			  " bytes not sent again; %" PRIu64 " file(s) already held, not sent\n",
			  n->resumed_files, n->resumed_bytes, n->skipped_files);
	if (n->pushes_ahead)
		sb_printf(sb,
			  "shipped ahead:       %" PRIu64 " segment(s) before their push; %" PRIu64
			  " push(es) answered from them\n",
			  n->pushes_ahead, n->ahead_taken);
	if (n->queue_overflows)
		sb_printf(sb,
			  "peers dropped:       %" PRIu64
			  " connection(s) over a bound (unread send queue, files in flight)\n",
			  n->queue_overflows);
	if (n->last_conflict[0])
		sb_text_line(sb, "last conflict:       ", n->last_conflict);
	if (n->last_error[0])
		sb_text_line(sb, "last error:          ", n->last_error);
	render_text_probes(sb, n->probes);
	sb_printf(sb, "peers:               %u\n", n->npeers);
	for (unsigned int i = 0; i < n->npeers; i++) {
		const struct status_peer *p = &n->peers[i];

		sb_printf(sb, "\n  peer %s (%s): %s\n", p->name[0] ? p->name : "?", p->addr,
			  walship_peer_state_name(p->state));
		sb_printf(sb, "    last sent:       %s\n", p->last_sent[0] ? p->last_sent : "-");
		sb_printf(sb, "    last acked:      %s\n", p->last_acked[0] ? p->last_acked : "-");
		sb_printf(sb,
			  "    files:           %" PRIu64 " sent, %" PRIu64 " acked, %" PRIu64
			  " in flight\n",
			  p->files_sent, p->files_acked, p->files_inflight);
		sb_printf(sb, "    bytes:           %" PRIu64 " sent, %" PRIu64 " received\n",
			  p->bytes_sent, p->bytes_received);
		sb_printf(sb,
			  "    sends:           %" PRIu64 " zero-copy (%" PRIu64
			  " copied by the kernel), %" PRIu64 " copying\n",
			  p->zc_sends, p->zc_copied, p->copy_sends);
		if (p->flush_lsn || p->sent_lsn)
			sb_printf(
				sb,
				"    position:        sent %X/%X, received %X/%X, durable %X/%X; lag "
				"%" PRIu64 " bytes, %" PRIu64 " ms\n",
				(unsigned int)(p->sent_lsn >> 32), (unsigned int)p->sent_lsn,
				(unsigned int)(p->write_lsn >> 32), (unsigned int)p->write_lsn,
				(unsigned int)(p->flush_lsn >> 32), (unsigned int)p->flush_lsn,
				p->lag_bytes, p->lag_us / 1000);
		if (p->commits_waiting)
			sb_printf(sb, "    commits waiting: %" PRIu64 "\n", p->commits_waiting);
		if (p->tls[0])
			sb_printf(sb, "    tls:             %s, kernel TLS %s\n", p->tls, p->ktls);
		sb_printf(sb, "    errors:          %" PRIu64 ", reconnects: %" PRIu64 "\n",
			  p->errors, p->reconnects);
		if (!strcmp(n->role, "primary"))
			sb_printf(sb, "    held in spool:   %" PRIu64 " file(s)\n", p->held);
		if (p->lost_files)
			sb_printf(sb,
				  "    LOST:            %" PRIu64 " file(s), %s to %s: released on "
				  "spool overflow; its standby needs another archive or a new base "
				  "backup\n",
				  p->lost_files, p->lost_first, p->lost_last);
		if (p->last_error[0])
			sb_text_line(sb, "    last error:      ", p->last_error);
	}
	if (n->nstandbys)
		sb_printf(sb, "\nstandbys:            %u\n", n->nstandbys);
	for (unsigned int i = 0; i < n->nstandbys; i++) {
		const struct status_standby *s = &n->standbys[i];

		sb_printf(sb, "\n  standby ");
		sb_text(sb, s->application_name);
		sb_printf(sb, " (user ");
		sb_text(sb, s->user);
		sb_printf(sb, ", %s): %s", s->addr, s->state);
		if (s->timeline)
			sb_printf(sb, " on timeline %u", s->timeline);
		sb_printf(sb, "\n    sent %X/%X, write %X/%X, flush %X/%X, replay %X/%X\n",
			  (unsigned int)(s->sent_lsn >> 32), (unsigned int)s->sent_lsn,
			  (unsigned int)(s->write_lsn >> 32), (unsigned int)s->write_lsn,
			  (unsigned int)(s->flush_lsn >> 32), (unsigned int)s->flush_lsn,
			  (unsigned int)(s->apply_lsn >> 32), (unsigned int)s->apply_lsn);
		if (s->replay_lag_ms >= 0 || s->flush_lag_ms >= 0 || s->write_lag_ms >= 0)
			sb_printf(
				sb,
				"    lag:             write %lld ms, flush %lld ms, replay %lld ms\n",
				(long long)s->write_lag_ms, (long long)s->flush_lag_ms,
				(long long)s->replay_lag_ms);
		if (s->xmin || s->catalog_xmin)
			sb_printf(sb, "    hot standby feedback: xmin %u, catalog xmin %u\n",
				  s->xmin, s->catalog_xmin);
		if (s->delay_ms >= 0)
			sb_printf(sb, "    delay:           %lld ms\n", (long long)s->delay_ms);
		if (s->hold[0])
			sb_printf(sb, "    hold:            %s\n", s->hold);
		if (s->send_limit != UINT64_MAX)
			sb_printf(sb, "    send limit:      %X/%X\n",
				  (unsigned int)(s->send_limit >> 32), (unsigned int)s->send_limit);
	}
	if (n->nslots)
		sb_printf(sb, "\nreplication slots:   %u\n", n->nslots);
	for (unsigned int i = 0; i < n->nslots; i++) {
		const struct status_slot *s = &n->slots[i];

		sb_printf(sb, "  slot %s%s: restart %X/%X, %s, retains %" PRIu64 " bytes\n",
			  s->name, s->temporary ? " (temporary)" : "",
			  (unsigned int)(s->restart_lsn >> 32), (unsigned int)s->restart_lsn,
			  s->active ? "active" : "inactive", s->retained_bytes);
	}
}

char *status_render(const struct status_node *n, bool json, size_t *len)
{
	struct sbuf sb = { .data = malloc(4096), .cap = 4096 };

	if (!sb.data)
		return NULL;
	sb.data[0] = '\0';
	if (json)
		render_json(&sb, n);
	else
		render_text(&sb, n);
	if (sb.failed) {
		free(sb.data);
		return NULL;
	}
	*len = sb.len;
	return sb.data;
}

/* The LSN just past segment @name, or 0 when @name is not a segment; *tli its timeline. */
static uint64_t status_segment_end(const char *name, uint32_t seg_size, uint32_t *tli)
{
	uint64_t start;

	if (!name[0] || wal_name_segment_start(name, seg_size, &start, tli) < 0)
		return 0;
	return start + seg_size;
}

void status_derive(struct status_node *n, int64_t now_ms)
{
	uint32_t seg_size = n->seg_size ? n->seg_size : STATUS_DEFAULT_SEG_SIZE;
	uint32_t tli = 0;
	uint64_t newest = status_segment_end(n->newest_pushed, seg_size, &tli);

	for (unsigned int i = 0; i < n->npeers; i++) {
		struct status_peer *p = &n->peers[i];
		uint64_t end = status_segment_end(p->last_sent, seg_size, NULL);

		if (end > newest)
			newest = status_segment_end(p->last_sent, seg_size, &tli);
		if (end && !p->sent_lsn) /* the role may know better (a streamed segment) */
			p->sent_lsn = end;
		/* A streamed segment's durable part may be ahead of the last whole one. */
		end = status_segment_end(p->last_acked, seg_size, NULL);
		if (end > p->write_lsn)
			p->write_lsn = end;
		if (end > p->flush_lsn)
			p->flush_lsn = end;
		/* Durable with no gap before it: not past a file it still lacks (files are
		 * acknowledged out of order: a backlog after new pushes, segments shipped
		 * ahead before the one pushed). */
		if (p->gap_lsn && p->flush_lsn > p->gap_lsn)
			p->flush_lsn = p->gap_lsn;
	}
	/* With a stream source, what it received is the newest WAL (its open segment does
	 * not end yet). */
	if (n->source_received_lsn)
		newest = n->source_received_lsn;
	for (unsigned int i = 0; i < n->npeers; i++) {
		struct status_peer *p = &n->peers[i];

		p->lag_bytes = newest > p->flush_lsn ? newest - p->flush_lsn : 0;
		/* (nothing lacking, no lag in time either: an away replica that left holding
		 * everything, while no WAL came) */
		p->lag_us = p->lag_bytes && p->oldest_unacked_ms && now_ms > p->oldest_unacked_ms ?
				    (uint64_t)(now_ms - p->oldest_unacked_ms) * 1000 :
				    0;
	}
	if (!n->timeline)
		n->timeline = tli;
}

void status_node_release(struct status_node *n)
{
	free(n->peers);
	n->peers = NULL;
	n->npeers = 0;
	free(n->standbys);
	n->standbys = NULL;
	n->nstandbys = 0;
	free(n->slots);
	n->slots = NULL;
	n->nslots = 0;
}
