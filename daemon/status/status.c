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

#include "status/status.h"
#include "wal/name.h"

#define STATUS_DEFAULT_SEG_SIZE (16u << 20)

struct sbuf {
	char *data;
	size_t len;
	size_t cap;
	bool failed;
};

static void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

/* A JSON string literal for @s. */
static void sb_json_str(struct sbuf *sb, const char *s)
{
	sb_printf(sb, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			sb_printf(sb, "\\%c", ch);
		else if (ch < 0x20)
			sb_printf(sb, "\\u%04x", ch);
		else
			sb_printf(sb, "%c", ch);
	}
	sb_printf(sb, "\"");
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
	sb_printf(sb,
		  ",\"pushes_ok\":%" PRIu64 ",\"pushes_failed\":%" PRIu64
		  ",\"pushes_queued\":%" PRIu64 ",\"files_stored\":%" PRIu64
		  ",\"bytes_stored\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"conflicts\":%" PRIu64
		  ",\"invalid\":%" PRIu64 ",\"sysid_refused\":%" PRIu64 ",\"io_errors\":%" PRIu64
		  ",\"connections_refused\":%" PRIu64,
		  n->pushes_ok, n->pushes_failed, n->pushes_queued, n->files_stored,
		  n->bytes_stored, n->duplicates, n->conflicts, n->invalid, n->sysid_refused,
		  n->io_errors, n->connections_refused);
	sb_printf(sb,
		  ",\"spool_files\":%" PRIu64 ",\"spool_bytes\":%" PRIu64
		  ",\"registered_replicas\":%" PRIu64,
		  n->spool_files, n->spool_bytes, n->registered_replicas);
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
		sb_json_str(sb, p->state);
		sb_printf(sb, ",\"last_sent\":");
		sb_json_str(sb, p->last_sent);
		sb_printf(sb, ",\"last_acked\":");
		sb_json_str(sb, p->last_acked);
		sb_printf(sb,
			  ",\"bytes_sent\":%" PRIu64 ",\"bytes_received\":%" PRIu64
			  ",\"files_sent\":%" PRIu64 ",\"files_acked\":%" PRIu64
			  ",\"files_inflight\":%" PRIu64 ",\"errors\":%" PRIu64
			  ",\"reconnects\":%" PRIu64 ",\"zc_sends\":%" PRIu64
			  ",\"zc_copied\":%" PRIu64 ",\"copy_sends\":%" PRIu64
			  ",\"connected_since\":%" PRId64 ",\"held\":%" PRIu64,
			  p->bytes_sent, p->bytes_received, p->files_sent, p->files_acked,
			  p->files_inflight, p->errors, p->reconnects, p->zc_sends, p->zc_copied,
			  p->copy_sends, p->connected_since, p->held);
		sb_printf(sb,
			  ",\"sent_lsn\":\"%X/%X\",\"write_lsn\":\"%X/%X\",\"flush_lsn\":\"%X/%X\""
			  ",\"lag_bytes\":%" PRIu64 ",\"lag_us\":%" PRIu64,
			  (unsigned int)(p->sent_lsn >> 32), (unsigned int)p->sent_lsn,
			  (unsigned int)(p->write_lsn >> 32), (unsigned int)p->write_lsn,
			  (unsigned int)(p->flush_lsn >> 32), (unsigned int)p->flush_lsn,
			  p->lag_bytes, p->lag_us);
		sb_printf(sb, ",\"last_error\":");
		sb_json_str(sb, p->last_error);
		sb_printf(sb, "}");
	}
	sb_printf(sb, "]}\n");
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
	if (!strcmp(n->role, "primary")) {
		sb_printf(sb, "sync replicas:       %d of at most %d\n", n->sync_replicas,
			  n->max_senders);
		sb_printf(sb,
			  "pushes:              %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64
			  " in progress\n",
			  n->pushes_ok, n->pushes_failed, n->pushes_queued);
		sb_printf(sb,
			  "spool:               %" PRIu64 " file(s), %" PRIu64
			  " bytes, for %" PRIu64 " registered replica(s)\n",
			  n->spool_files, n->spool_bytes, n->registered_replicas);
	} else {
		sb_printf(sb, "files stored:        %" PRIu64 " (%" PRIu64 " bytes)\n",
			  n->files_stored, n->bytes_stored);
		sb_printf(sb,
			  "refused:             %" PRIu64 " invalid, %" PRIu64
			  " other system, %" PRIu64 " I/O errors\n",
			  n->invalid, n->sysid_refused, n->io_errors);
	}
	sb_printf(sb, "duplicates:          %" PRIu64 " identical, %" PRIu64 " conflicting\n",
		  n->duplicates, n->conflicts);
	if (n->last_conflict[0])
		sb_printf(sb, "last conflict:       %s\n", n->last_conflict);
	if (n->last_error[0])
		sb_printf(sb, "last error:          %s\n", n->last_error);
	sb_printf(sb, "peers:               %u\n", n->npeers);
	for (unsigned int i = 0; i < n->npeers; i++) {
		const struct status_peer *p = &n->peers[i];

		sb_printf(sb, "\n  peer %s (%s): %s\n", p->name[0] ? p->name : "?", p->addr,
			  p->state);
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
		sb_printf(sb, "    errors:          %" PRIu64 ", reconnects: %" PRIu64 "\n",
			  p->errors, p->reconnects);
		if (!strcmp(n->role, "primary"))
			sb_printf(sb, "    held in spool:   %" PRIu64 " file(s)\n", p->held);
		if (p->last_error[0])
			sb_printf(sb, "    last error:      %s\n", p->last_error);
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
	struct wal_name wn;
	uint64_t segno;

	if (!name[0] || wal_name_parse(name, &wn) < 0 || wn.kind != WAL_FILE_SEGMENT ||
	    wal_name_segno(&wn, seg_size, &segno) < 0)
		return 0;
	if (tli)
		*tli = wn.timeline;
	return (segno + 1) * seg_size;
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
		if (end)
			p->sent_lsn = end;
		end = status_segment_end(p->last_acked, seg_size, NULL);
		if (end)
			p->write_lsn = p->flush_lsn = end;
	}
	for (unsigned int i = 0; i < n->npeers; i++) {
		struct status_peer *p = &n->peers[i];

		p->lag_bytes = newest > p->flush_lsn ? newest - p->flush_lsn : 0;
		p->lag_us = p->oldest_unacked_ms && now_ms > p->oldest_unacked_ms ?
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
}
