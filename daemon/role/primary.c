// SPDX-License-Identifier: MIT
/*
 * The primary role: takes WAL files from `walship push` over the control socket, validates
 * them, and sends each to every connected replica; a push succeeds once `sync_replicas`
 * replicas have acknowledged the file as durable and it is held in the spool for every
 * other registered replica, and fails (PostgreSQL keeps the file and retries) when a
 * replica refuses its content or push_timeout passes first.  A replica that cannot store
 * it (ACK IO_ERROR) fails nothing: the file is held for it and sent again later.
 *
 * Data path per replica, with send_source = map: each chunk is sent with
 * SENDMSG_ZC straight from a read-only mapping of the pushed file, behind the frame and
 * DATA headers (its CRC-32C computed on the mapping); with send_source = buffers (the
 * default) the chunk
 * is read with READ into a registered slot behind the room for the headers, sealed
 * in place and sent with SEND_ZC from the same slot, which returns to the pool on the
 * zero-copy notification.  Each connection has at most PEER_MAX_QUEUED frames queued
 * (reads included) and at most max_inflight_files files unacknowledged; the slot pool is
 * shared, so memory is bounded whatever the number of replicas and pushes (back-pressure,
 * durability rule 5).
 *
 * This file is the role as main.c sees it (start, pump, tick, stop, reload, free), its
 * status and its control requests; the parts it is made of are listed in primary_int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/compiler.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mapguard.h"
#include "common/textfile.h"
#include "role/primary_int.h"
#include "wal/page.h"

/* Fill @n with the primary's state; the caller releases it with status_node_release(). */

/* Wall-clock milliseconds (an away replica's note outlives a reboot; clock_now_ms()
 * does not). */
static int64_t primary_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct primary_away *primary_away_find(struct primary *pr, const char *name)
{
	for (unsigned int i = 0; i < PRIMARY_AWAY; i++)
		if (!strcmp(pr->away[i].name, name))
			return &pr->away[i];
	return NULL;
}

/*
 * Away replica @a's note in the spool, for its status after a restart: "LAST TLI END GAP
 * SINCE", LAST the last file it acknowledged ("-": none), TLI the timeline END was on,
 * END and GAP the positions in hex, SINCE its lag's start in wall-clock milliseconds.  A
 * note that could not be written is removed (one before it may say more than is true
 * now, past a fork).  A relay's downstream replicas have no folder in a spool: theirs
 * stay in memory.
 */
static void primary_away_write(struct primary *pr, struct primary_away *a)
{
	char note[SPOOL_AWAY_MAX];
	int ret;

	if (pr->relay)
		return;
	snprintf(note, sizeof(note), "%s %" PRIu32 " %" PRIx64 " %" PRIx64 " %" PRId64 "\n",
		 a->last_acked[0] ? a->last_acked : "-", a->tli, a->stream_end, a->gap_lsn,
		 primary_wall_ms() - (clock_now_ms() - a->since_ms));
	ret = spool_put_away(&pr->spool, a->name, note);
	a->noted = ret == 0;
	if (ret < 0) {
		spool_clear_away(&pr->spool, a->name);
		if (ret != -ENOENT) /* (its folder gone: being dropped, or by hand) */
			log_warning("could not note where replica \"%s\" stood in "
				    "\"%s/replicas/%s\": %s (its status forgets it if walshipd "
				    "restarts before it comes back)",
				    a->name, pr->spool.path, a->name, strerror(-ret));
	}
}

void primary_away_back(struct primary *pr, const char *name)
{
	struct primary_away *a = primary_away_find(pr, name);

	if (a)
		a->noted = false;
	/* (whether noted or not: a note whose entry the table has since given to another
	 * replica is still in its folder) */
	if (!pr->relay)
		spool_clear_away(&pr->spool, name);
}

void primary_load_away(struct primary *pr)
{
	for (int k = 0; k < pr->nregistered && !pr->relay; k++) {
		char note[SPOOL_AWAY_MAX], last[WIRE_MAX_FILE_NAME + 2], end; /* (%64s) */
		unsigned long long stream_end, gap;
		unsigned int tli;
		long long since;
		struct primary_away *a;
		int n = spool_get_away(&pr->spool, pr->registered[k], note, sizeof(note));

		if (n <= 0)
			continue; /* (none: it was connected when walshipd stopped, or never left) */
		if (sscanf(note, "%64s %u %llx %llx %lld%c", last, &tli, &stream_end, &gap, &since,
			   &end) != 6 ||
		    end != '\n' || (strcmp(last, "-") && !wal_name_valid(last)) || since <= 0) {
			log_warning("ignored the invalid note \"%s/replicas/%s/AWAY\"",
				    pr->spool.path, pr->registered[k]);
			continue;
		}
		a = &pr->away[pr->away_next++ % PRIMARY_AWAY];
		*a = (struct primary_away){
			.stream_end = stream_end, .tli = tli, .gap_lsn = gap, .noted = true
		};
		snprintf(a->name, sizeof(a->name), "%s", pr->registered[k]);
		snprintf(a->last_acked, sizeof(a->last_acked), "%s", strcmp(last, "-") ? last : "");
		/* its lag counts from then on the monotonic clock (from now at most, should
		 * the wall clock have gone back) */
		since = primary_wall_ms() - since;
		a->since_ms = clock_now_ms() - (since > 0 ? since : 0);
	}
}

void primary_away_cut(struct primary *pr, uint64_t fork)
{
	for (unsigned int i = 0; i < PRIMARY_AWAY; i++) {
		struct primary_away *a = &pr->away[i];

		if (a->name[0] && a->stream_end > fork) {
			a->stream_end = fork;
			if (a->noted)
				primary_away_write(pr, a);
		}
	}
}

void primary_away_clamp(struct primary *pr, const struct stream_forks *forks)
{
	for (unsigned int i = 0; i < PRIMARY_AWAY; i++) {
		struct primary_away *a = &pr->away[i];
		uint64_t end = stream_forks_clamp(forks, a->tli, 0, a->stream_end);

		if (a->name[0] && end < a->stream_end) {
			a->stream_end = end;
			if (a->noted)
				primary_away_write(pr, a);
		}
	}
}

void primary_note_away(struct primary *pr, struct peer *peer)
{
	struct primary_away *a;
	uint64_t gap;
	int64_t since;

	if (primary_registered_index(pr, peer->name) < 0)
		return;
	/* An old connection closing after the replica connected again (its sends stuck):
	 * the replica is not away, and where that one stood is older. */
	for (const struct peer *other = pr->peers; other; other = other->next)
		if (other != peer && other->state == PEER_STREAMING && !other->conn.closing &&
		    !strcmp(other->name, peer->name))
			return;
	a = primary_away_find(pr, peer->name);
	/* a connection that learned nothing of it (it left before any acknowledgement):
	 * where it stood before stays (noted again: its connection cleared the note) */
	if (a && !peer->stream.end && !peer->last_acked[0]) {
		if (!a->noted)
			primary_away_write(pr, a);
		return;
	}
	if (!a)
		a = &pr->away[pr->away_next++ % PRIMARY_AWAY];
	*a = (struct primary_away){ .stream_end = peer->stream.end,
				    .tli = pr->stream_tli,
				    .since_ms = clock_now_ms() };
	snprintf(a->name, sizeof(a->name), "%s", peer->name);
	snprintf(a->last_acked, sizeof(a->last_acked), "%s", peer->last_acked);
	if (peer_lacks_from(peer, &gap, &since)) {
		a->gap_lsn = gap;
		if (since && since < a->since_ms)
			a->since_ms = since;
	}
	/* its oldest WAL not durable: streamed (when it arrived), or a whole file sent (on a
	 * relay, which keeps no arrival times, a growing segment's transfer too) */
	since = primary_stream_lag_since(pr, peer->stream.end);
	if (since && since < a->since_ms)
		a->since_ms = since;
	for (const struct xfer *x = peer->xfers; x; x = x->next)
		if ((pr->relay || !x->push->stream) && x->push->started_ms < a->since_ms)
			a->since_ms = x->push->started_ms;
	primary_away_write(pr, a);
}

/* Away replica @sp: where it stood when it left (primary_note_away()), if known; its lag
 * counts from then (status_derive()). */
static void primary_fill_away(const struct primary *pr, struct status_peer *sp)
{
	for (unsigned int i = 0; i < PRIMARY_AWAY; i++) {
		const struct primary_away *a = &pr->away[i];

		if (strcmp(a->name, sp->name))
			continue;
		snprintf(sp->last_acked, sizeof(sp->last_acked), "%s", a->last_acked);
		sp->write_lsn = a->stream_end;
		sp->flush_lsn = a->stream_end;
		sp->gap_lsn = a->gap_lsn;
		sp->oldest_unacked_ms = a->since_ms;
		return;
	}
}

static void primary_fill_status(void *state, struct status_node *n)
{
	struct primary *pr = state;
	unsigned int i = 0;

	*n = pr->st;
	n->role = "primary";
	snprintf(n->node_name, sizeof(n->node_name), "%s", pr->cfg.node_name);
	n->system_identifier = pr->id.system_identifier;
	n->page_magic = pr->id.page_magic;
	n->seg_size = pr->id.seg_size;
	n->sync_replicas = pr->cfg.sync_replicas;
	n->max_senders = pr->cfg.max_senders;
	n->pushes_queued = pr->npushes;
	n->connections_refused = pr->st.connections_refused + pr->control.refused;
	n->spool_files = pr->spool.files;
	n->spool_bytes = pr->spool.used_bytes;
	n->spool_unremovable = __atomic_load_n(&pr->spool.unremovable, __ATOMIC_RELAXED);
	n->registered_replicas = (uint64_t)pr->nregistered;
	n->lost_files = 0;
	for (int k = 0; k < pr->nregistered; k++)
		n->lost_files += pr->lost[k].files;
	n->peers = calloc(pr->npeers + (unsigned int)pr->nregistered + 1, sizeof(*n->peers));
	for (struct peer *peer = pr->peers; peer && n->peers; peer = peer->next) {
		struct status_peer *sp = &n->peers[i++];

		snprintf(sp->name, sizeof(sp->name), "%s", peer->name);
		snprintf(sp->addr, sizeof(sp->addr), "%s", peer->conn.peer_addr);
		sp->state = peer->conn.closing		  ? WALSHIP_PEER_DISCONNECTED :
			    peer->state != PEER_STREAMING ? WALSHIP_PEER_HANDSHAKE :
			    peer->io != PEER_IO_OK	  ? WALSHIP_PEER_FAILING :
							    WALSHIP_PEER_STREAMING;
		snprintf(sp->last_sent, sizeof(sp->last_sent), "%s", peer->last_sent);
		snprintf(sp->last_acked, sizeof(sp->last_acked), "%s", peer->last_acked);
		sp->bytes_sent = peer->conn.stats.bytes_sent;
		sp->bytes_received = peer->conn.stats.bytes_received;
		sp->files_sent = peer->files_sent;
		sp->files_acked = peer->files_acked;
		sp->files_inflight = peer->inflight_files;
		sp->errors = peer->errors;
		sp->zc_sends = peer->conn.stats.zc_sends;
		sp->zc_copied = peer->conn.stats.zc_copied;
		sp->copy_sends = peer->conn.stats.copy_sends;
		sp->connected_since = peer->connected_since;
		snprintf(sp->tls, sizeof(sp->tls), "%s", conn_tls_version(&peer->conn));
		snprintf(sp->ktls, sizeof(sp->ktls), "%s", conn_ktls_state(&peer->conn));
		snprintf(sp->last_error, sizeof(sp->last_error), "%s", peer->last_error);
		sp->oldest_unacked_ms = peer->xfers ? peer->xfers->push->started_ms : 0;
		if (peer->state == PEER_STREAMING) {
			int k = primary_registered_index(pr, peer->name);

			if (k >= 0)
				primary_fill_registered(pr, k, sp);
		}
	}
	/* Registered replicas that are not connected: the spool holds WAL for them. */
	for (int k = 0; n->peers && k < pr->nregistered; k++) {
		struct status_peer *sp;
		bool connected = false;

		for (struct peer *peer = pr->peers; peer; peer = peer->next)
			if (peer->state == PEER_STREAMING && !peer->conn.closing &&
			    !strcmp(peer->name, pr->registered[k]))
				connected = true;
		if (connected)
			continue;
		sp = &n->peers[i++];
		snprintf(sp->name, sizeof(sp->name), "%s", pr->registered[k]);
		sp->state = WALSHIP_PEER_AWAY;
		primary_fill_registered(pr, k, sp);
		primary_fill_away(pr, sp);
	}
	n->npeers = n->peers ? i : 0;
	for (struct push *p = pr->pushes; p; p = p->next)
		if (p->wn.kind == WAL_FILE_SEGMENT && strcmp(p->name, n->newest_pushed) > 0)
			snprintf(n->newest_pushed, sizeof(n->newest_pushed), "%s", p->name);
	primary_stream_fill_status(pr, n);
	/* What each connected replica still lacks behind its positions: they count no
	 * further, and its lag is as old as that. */
	for (unsigned int k = 0; k < n->npeers; k++) {
		struct status_peer *sp = &n->peers[k];

		for (struct peer *peer = pr->peers; peer; peer = peer->next) {
			uint64_t gap;
			int64_t since;

			if (peer->state != PEER_STREAMING || peer->conn.closing ||
			    strcmp(peer->name, sp->name) || !peer_lacks_from(peer, &gap, &since))
				continue;
			sp->gap_lsn = gap;
			if (since && (!sp->oldest_unacked_ms || since < sp->oldest_unacked_ms))
				sp->oldest_unacked_ms = since;
		}
	}
	status_derive(n, clock_now_ms());
}

/*
 * `walship replica drop`, on the dropper thread in two steps.  The spool may hold
 * thousands of files for a replica gone for days, and releasing each (an unlink of its
 * claim, and of the copy once unclaimed) on the event loop would stall the stream,
 * pushes and keepalives for as long; on the spool worker, spool copies (and the stream
 * waiting for them) would queue behind it.  First the registration goes, durably
 * (spool_unregister()); only then is the replica forgotten in memory (pushes hold
 * nothing more for it from then on: not before, or a crash in between would leave it
 * registered and missing what was pushed meanwhile); then its claims are released.
 * Answered once all are.
 */
struct drop_job {
	struct worker_job job;
	struct primary *pr;
	struct ctl_client *client;
	char name[WIRE_MAX_NAME + 1];
	uint64_t held;
	bool unregistered; /* the first step is done: this run releases */
	int ret;
	int retry_wait_ms; /* the last wait before a release failed was tried again */
};

static void drop_job_run(struct worker_job *job)
{
	struct drop_job *dj = (struct drop_job *)job;

	dj->ret = dj->unregistered ? spool_release_dropped(&dj->pr->spool, dj->name) :
				     spool_unregister(&dj->pr->spool, dj->name);
}

static void drop_job_done(struct worker_job *job)
{
	struct drop_job *dj = (struct drop_job *)job;
	struct primary *pr = dj->pr;
	char text[256];

	primary_unclaimed_poll(pr); /* (copies its release could not remove: owed now) */
	if (!dj->unregistered && dj->ret == 0) {
		dj->unregistered = true;
		primary_unregistered(pr, dj->name);
		worker_submit(&pr->dropper, &dj->job);
		return;
	}
	/* A release that failed is tried again: its files still count in the spool's use,
	 * and the drop goes on guarding their room (primary_spool_room()) until it is done,
	 * as after a stop cut it short (-EINTR), until the daemon exits. */
	if (dj->unregistered && dj->ret < 0 && dj->ret != -EINTR && !pr->stopping) {
		if (dj->client) {
			snprintf(text, sizeof(text),
				 "replica \"%s\" is no longer registered, but releasing what the "
				 "spool held for it failed (%s): tried again from %d s on, and at "
				 "walshipd's next start",
				 dj->name, strerror(-dj->ret), PRIMARY_DROP_RETRY_MS / 1000);
			log_warning("%s", text);
			control_reply(dj->client, CTL_ERR_FAILED, text, strlen(text));
			dj->client = NULL;
		}
		/* 10 s, doubling up to 5 min: a failure that lasts logs less and less */
		dj->retry_wait_ms =
			dj->retry_wait_ms ? dj->retry_wait_ms * 2 : PRIMARY_DROP_RETRY_MS;
		if (dj->retry_wait_ms > PRIMARY_DROP_RETRY_MAX_MS)
			dj->retry_wait_ms = PRIMARY_DROP_RETRY_MAX_MS;
		pr->drop_retry = dj;
		pr->drop_retry_ms = clock_now_ms() + dj->retry_wait_ms;
		return;
	}
	if (dj->ret != -EINTR)
		pr->dropping[0] = '\0';
	if (!dj->client) {
		/* (a retry: its client was answered) */
		if (dj->ret == 0)
			log_log("released what the spool held for replica \"%s\", dropped before",
				dj->name);
	} else if (!dj->unregistered) {
		snprintf(text, sizeof(text), "could not drop replica \"%s\": %s", dj->name,
			 strerror(-dj->ret));
		control_reply(dj->client, CTL_ERR_FAILED, text, strlen(text));
	} else if (dj->ret < 0) {
		snprintf(text, sizeof(text),
			 "replica \"%s\" is no longer registered, but releasing what the spool "
			 "held for it failed (%s): it is released at walshipd's next start",
			 dj->name, strerror(-dj->ret));
		log_warning("%s", text);
		control_reply(dj->client, CTL_ERR_FAILED, text, strlen(text));
	} else {
		snprintf(text, sizeof(text),
			 "replica \"%s\" dropped; %" PRIu64 " held file(s) released", dj->name,
			 dj->held);
		log_log("%s", text);
		control_reply(dj->client, CTL_OK, text, strlen(text));
	}
	free(dj);
}

/* `walship replica drop NAME`: forget a registered replica and release what the spool
 * holds for it.  A connected replica is not dropped: it would register again at once. */
static void primary_replica_drop(struct primary *pr, struct ctl_client *client, const char *name)
{
	char text[256];
	int k = primary_registered_index(pr, name);
	struct drop_job *dj;

	if (k < 0) {
		snprintf(text, sizeof(text), "replica \"%s\" is not registered", name);
		control_reply(client, CTL_ERR_INVALID, text, strlen(text));
		return;
	}
	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    !strcmp(peer->name, name)) {
			snprintf(text, sizeof(text),
				 "replica \"%s\" is connected from %s; stop its walshipd first",
				 name, peer->conn.peer_addr);
			control_reply(client, CTL_ERR_FAILED, text, strlen(text));
			return;
		}
	}
	if (pr->dropping[0]) {
		snprintf(text, sizeof(text), "replica \"%s\" is being dropped; try again later",
			 pr->dropping);
		control_reply(client, CTL_ERR_FAILED, text, strlen(text));
		return;
	}
	dj = calloc(1, sizeof(*dj));
	if (!dj) {
		control_reply_text(client, CTL_ERR_FAILED, "out of memory");
		return;
	}
	dj->pr = pr;
	dj->client = client;
	dj->held = pr->held[k];
	snprintf(dj->name, sizeof(dj->name), "%s", name);
	/* Its registration is refused from now on (peer_register()), and a push that needs
	 * room in a full spool fails rather than release another replica
	 * (primary_spool_room()): its files count until the drop has unlinked them. */
	snprintf(pr->dropping, sizeof(pr->dropping), "%s", name);
	dj->job.run = drop_job_run;
	dj->job.done = drop_job_done;
	worker_submit(&pr->dropper, &dj->job);
}

static void primary_request(void *ctx, struct ctl_client *client, const struct ctl_request *req,
			    const int *fds, unsigned int nfds)
{
	struct primary *pr = ctx;

	if (req->op == CTL_PUSH) {
		/* The pushed file first: its transfers go before those of the segments
		 * that follow it. */
		primary_push(pr, client, req->name, fds[0]);
		primary_push_ahead(pr, req->name, fds + 1, nfds - 1);
		return;
	}
	control_close_fds(fds, nfds);
	switch (req->op) {
	case CTL_REPLICA_DROP:
		primary_replica_drop(pr, client, req->name);
		return;
	case CTL_STATUS:
		status_reply(client, primary_fill_status, pr, req->flags & CTL_F_JSON);
		return;
	case CTL_STANDBY_HOLD:
	case CTL_STANDBY_RELEASE:
		control_reply_text(client, CTL_ERR_ROLE,
				   "this walshipd is a primary: standbys are served by replicas "
				   "(pg_listen)");
		return;
	default:
		control_reply_text(client, CTL_ERR_INVALID, "unknown request");
	}
}

/* ---- role operations ---- */

/* The cluster this primary ships, as the spool recorded it; left 0 when not learnt yet
 * (the first pushed segment fixes it: primary_check_identity). */
static void primary_load_identity(struct primary *pr)
{
	struct wal_identity id;

	if (spool_get_identity(&pr->spool, &id) < 0 || !id.system_identifier)
		return;
	pr->id = id;
	log_log("primary ships WAL of system %" PRIu64 " (PostgreSQL %s)", pr->id.system_identifier,
		wal_page_magic_version(pr->id.page_magic) ?: "?");
	primary_check_spool_size(pr);
}

/* At start and at each reload (the file may have changed since): what the configuration
 * leaves unguarded, replicas admitted whoever they are, or pushes answered with no copy
 * anywhere.  Not for a relay (relay.c), whose start says neither. */
static void primary_say_unguarded(const struct primary *pr)
{
	if (pr->relay)
		return;
	if (!pr->cfg.hba_file[0])
		log_log("hba_file is not set: any replica that reaches %s is admitted",
			pr->cfg.listen);
	if (pr->cfg.sync_replicas == 0 && pr->nregistered == 0)
		log_warning("sync_replicas = 0 and no registered replica: pushes succeed with no "
			    "copy of the WAL anywhere until a replica connects once");
}

static void *primary_start(const struct config *cfg, struct ring *r, bool *config_error)
{
	struct primary *pr = calloc(1, sizeof(*pr));
	int ret;

	if (!pr) {
		log_error("out of memory");
		return NULL;
	}
	pr->cfg = *cfg;
	pr->ring = r;
	pr->listen_fd = -1;
	pr->st.started = time(NULL);
	if (cfg->tls) {
		if ((ret = tls_ctx_init(&pr->tls, true, cfg->tls_ca_file, cfg->tls_cert_file,
					cfg->tls_key_file, cfg->ktls, cfg->zero_copy)) < 0) {
			*config_error = textfile_error_lasts(ret);
			goto out_free;
		}
	} else {
		log_warning("tls = off: WAL travels between hosts in plaintext, and replicas are "
			    "not authenticated");
	}
	if (cfg->hba_file[0] && (ret = hba_load(cfg->hba_file, &pr->hba)) < 0) {
		log_error("could not load access rules from \"%s\"", cfg->hba_file);
		*config_error = textfile_error_lasts(ret);
		goto out_free;
	}
	if (mapguard_init() < 0) {
		log_error("could not install the SIGBUS handler: %s", strerror(errno));
		goto out_free;
	}
	if (spool_open(&pr->spool, cfg->spool_dir) < 0)
		goto out_free;
	if (primary_load_registered(pr) < 0)
		goto out_spool;
	primary_load_away(pr);
	primary_load_identity(pr);
	if (pr->spool.files)
		log_log("spool \"%s\" holds %" PRIu64 " file(s), %" PRIu64
			" bytes, for %d registered "
			"replica(s)",
			cfg->spool_dir, pr->spool.files, pr->spool.used_bytes, pr->nregistered);
	primary_say_unguarded(pr);
	if (worker_start(&pr->worker, r) < 0)
		goto out_spool;
	if (worker_start(&pr->compare, r) < 0 || worker_start(&pr->dropper, r) < 0)
		goto out_worker;
	if (validate_ring_init(&pr->vring) < 0) /* then pushed files are read whole */
		log_debug("no ring for validating page headers; reading pushed files whole");
	if (primary_listen(pr) < 0)
		goto out_worker;
	if (control_start(&pr->control, r, cfg->socket_path, cfg->socket_group,
			  cfg->socket_permissions, primary_request, primary_client_gone, pr) < 0)
		goto out_close;
	primary_accept_post(pr);
	/* After the listener: replicas connect while the source reaches PostgreSQL.  A
	 * failure here is only memory (connection errors are retried by the source). */
	if (primary_stream_start(pr) < 0)
		goto out_control;
	log_log("primary \"%s\" ready: sync_replicas = %d, max_senders = %d", cfg->node_name,
		cfg->sync_replicas, cfg->max_senders);
	return pr;

out_control:
	control_stop(&pr->control);

out_close:
	close(pr->listen_fd);
out_worker:
	worker_stop(&pr->dropper);
	worker_stop(&pr->compare);
	worker_stop(&pr->worker);
out_spool:
	spool_close(&pr->spool);
	spool_free_names(pr->registered, pr->nregistered);
	free(pr->held);
	free(pr->lost);
out_free:
	tls_ctx_free(&pr->tls);
	hba_free(pr->hba);
	free(pr);
	return NULL;
}

/*
 * Stopping: once no push waits for an acknowledgement and no file is in flight (or the
 * drain time is up: the pushes left fail and PostgreSQL retries them), close the
 * replicas' connections.
 */
static void primary_drain(struct primary *pr)
{
	bool busy = false;
	struct push *p, *next;

	/* A push compared with the stream's copy is not linked yet: its answer comes with
	 * the job's end (same_job in primary_push.c). */
	busy = worker_pending(&pr->compare) > 0;
	for (p = pr->pushes; p && !busy; p = p->next)
		busy = push_waiting(p) && p->avail == p->size;
	/* A streamed segment that is not whole will not be acknowledged: the replica keeps
	 * its durable part when the connection closes. */
	for (struct peer *peer = pr->peers; peer && !busy; peer = peer->next)
		for (struct xfer *x = peer->xfers; x && !busy && !peer->conn.closing; x = x->next)
			busy = x->begin_queued && x->push->avail == x->push->size;
	if (busy && clock_now_ms() < pr->drain_deadline_ms)
		return;
	if (busy && !pr->drain_warned)
		log_warning("stopping with acknowledgements still outstanding after %d ms",
			    DRAIN_MS);
	pr->drain_warned = busy;
	for (p = pr->pushes; p; p = next) {
		p->refs++;
		push_fail(p, CTL_ERR_FAILED, "walshipd is shutting down");
		next = p->next;
		push_unref(p);
	}
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		conn_close(&peer->conn, 0);
}

static void primary_pump(void *state)
{
	struct primary *pr = state;
	struct peer *peer, *next;

	for (peer = pr->peers; peer; peer = next) {
		next = peer->next; /* conn_close() may free it */
		/* The connection its name belonged to is gone: go on with the handshake. */
		if (peer->state == PEER_NAME_WAIT && !peer->rival && !peer->conn.closing &&
		    !peer->refused) {
			int ret = peer_check_name(peer);

			if (ret < 0)
				conn_close(&peer->conn, ret);
		}
		/* A whole file begun could not be cancelled (peer_cancel_push()) */
		if (peer->close_pending && !peer->conn.closing)
			conn_close(&peer->conn, -ECANCELED);
	}
	for (peer = pr->peers; peer; peer = peer->next)
		peer_fill(peer);
	if (pr->stopping)
		primary_drain(pr);
}

static void primary_tick(void *state, int64_t now_ms)
{
	struct primary *pr = state;
	struct push *p, *next;

	if (pr->drop_retry && now_ms >= pr->drop_retry_ms && !pr->stopping) {
		struct drop_job *dj = pr->drop_retry;

		pr->drop_retry = NULL;
		worker_submit(&pr->dropper, &dj->job);
	}
	primary_unclaimed_tick(pr, now_ms);

	for (p = pr->pushes; p; p = next) {
		next = p->next; /* push_check may release p */
		if (push_waiting(p) && p->spool_wait_until_ms && !p->spool_needed &&
		    now_ms >= p->spool_wait_until_ms) {
			p->refs++;
			push_check(p); /* spool_delay is over: hold it in the spool now */
			next = p->next;
			push_unref(p);
		}
	}
	for (p = pr->pushes; p; p = next) {
		next = p->next; /* push_fail may release p */
		if (push_has_deadline(p) && now_ms >= p->deadline_ms) {
			p->refs++;
			push_timed_out(p);
			next = p->next;
			push_unref(p);
		}
	}
	for (struct peer *peer = pr->peers; peer; peer = peer->next)
		if (peer->state == PEER_STREAMING && !peer->conn.closing &&
		    peer->io == PEER_IO_WAIT && now_ms >= peer->io_retry_ms)
			peer_io_retry(peer);
	primary_probes_expire(pr, now_ms);
	primary_stream_tick(pr, now_ms);
	for (struct peer *peer = pr->peers; peer; peer = peer->next) {
		if (peer->state == PEER_STREAMING &&
		    conn_keepalive(&peer->conn, clock_now_ms(), pr->cfg.keepalive_interval_ms,
				   pr->cfg.keepalive_timeout_ms))
			peer_set_error(peer, "no data for longer than keepalive_timeout");
		if (peer->state != PEER_STREAMING && !peer->conn.closing &&
		    now_ms - peer->accepted_ms > pr->cfg.connect_timeout_ms) {
			log_log("closing connection from %s: no handshake within %d ms",
				peer->conn.peer_addr, pr->cfg.connect_timeout_ms);
			pr->st.connections_refused++;
			conn_close(&peer->conn, -ETIMEDOUT);
		}
	}
}

static void primary_stop(void *state)
{
	struct primary *pr = state;

	/* No new pushes or replicas; files in flight get DRAIN_MS to be acknowledged. */
	pr->stopping = true;
	pr->drain_deadline_ms = clock_now_ms() + DRAIN_MS;
	/* a drop releasing files on its thread ends where it is (finished at the next start) */
	__atomic_store_n(&pr->spool.stopping, true, __ATOMIC_RELAXED);
	primary_stream_stop(pr);
	control_stop(&pr->control);
	if (pr->listen_fd >= 0) {
		shutdown(pr->listen_fd, SHUT_RDWR);
		close(pr->listen_fd);
		pr->listen_fd = -1;
	}
	primary_drain(pr);
}

static bool primary_stopped(void *state)
{
	struct primary *pr = state;

	return pr->peers == NULL && pr->control.clients == 0 && !pr->accepting &&
	       worker_pending(&pr->worker) == 0 && worker_pending(&pr->compare) == 0 &&
	       worker_pending(&pr->dropper) == 0;
}

/* SIGHUP: load the access rules again; keep the old ones if the file has errors. */
static void primary_reload_hba(struct primary *pr, const char *path)
{
	struct hba_table *fresh = NULL;

	if (path[0] && hba_load(path, &fresh) < 0) {
		log_error("access rules in \"%s\" not reloaded; the previous rules stay", path);
		return;
	}
	hba_free(pr->hba);
	pr->hba = fresh;
	snprintf(pr->cfg.hba_file, sizeof(pr->cfg.hba_file), "%s", path);
	if (path[0])
		log_log("access rules reloaded from \"%s\" (%zu rule(s))", path, fresh->count);
}

static void primary_reload(void *state, const struct config *cfg)
{
	struct primary *pr = state;

	pr->cfg.sync_replicas = cfg->sync_replicas;
	pr->cfg.spool_max_size_mb = cfg->spool_max_size_mb;
	primary_check_spool_size(pr);
	pr->cfg.spool_overflow = cfg->spool_overflow;
	/* A shorter spool_delay applies to the pushes waiting to be held too, each counted
	 * from when its wait began (the old delay before its end), or a push_timeout
	 * shortened with it below could fail a push before it is held, which the rule
	 * across the two keys forbids. */
	if (cfg->spool_delay_ms < pr->cfg.spool_delay_ms)
		for (struct push *p = pr->pushes; p; p = p->next)
			if (p->spool_wait_until_ms)
				p->spool_wait_until_ms -=
					pr->cfg.spool_delay_ms - cfg->spool_delay_ms;
	pr->cfg.spool_delay_ms = cfg->spool_delay_ms;
	pr->cfg.keepalive_interval_ms = cfg->keepalive_interval_ms;
	primary_reload_hba(pr, cfg->hba_file);
	if (cfg->keepalive_timeout_ms != pr->cfg.keepalive_timeout_ms)
		for (struct peer *peer = pr->peers; peer; peer = peer->next)
			conn_set_user_timeout(peer->conn.fd, cfg->keepalive_timeout_ms);
	pr->cfg.keepalive_timeout_ms = cfg->keepalive_timeout_ms;
	/* A shorter push_timeout applies to the pushes waiting too, each counted from when
	 * its deadline was set (failed at the next tick if that is past); a longer one only
	 * to the pushes after: a client waiting may have set its own limit by the old one
	 * (tools/push.c). */
	for (struct push *p = pr->pushes; p; p = p->next) {
		if (cfg->push_timeout_ms < p->timeout_ms) {
			p->deadline_ms -= p->timeout_ms - cfg->push_timeout_ms;
			p->timeout_ms = cfg->push_timeout_ms;
		}
	}
	pr->cfg.push_timeout_ms = cfg->push_timeout_ms;
	pr->cfg.log_level = cfg->log_level;
	pr->cfg.reconnect_min_ms = cfg->reconnect_min_ms;
	pr->cfg.reconnect_max_ms = cfg->reconnect_max_ms;
	primary_say_unguarded(pr);
	primary_stream_reload(pr, cfg);
	/* A lower sync_replicas may make waiting pushes, and the stream's flush, safe now. */
	for (struct push *p = pr->pushes, *next; p; p = next) {
		p->refs++;
		push_check(p);
		next = p->next;
		push_unref(p);
	}
	primary_stream_report(pr);
	primary_stream_peer_ready(pr); /* a source waiting for fewer replicas now goes on */
}

static void primary_free(void *state)
{
	struct primary *pr = state;

	worker_stop(&pr->dropper);
	free(pr->drop_retry); /* (its release is done at the next start) */
	worker_stop(&pr->compare);
	worker_stop(&pr->worker);
	validate_ring_exit(&pr->vring);
	primary_stream_free(pr);
	push_spares_free(pr);
	spool_close(&pr->spool);
	spool_free_names(pr->registered, pr->nregistered);
	free(pr->held);
	free(pr->lost);
	tls_ctx_free(&pr->tls);
	hba_free(pr->hba);
	free(pr);
}

const struct role_ops primary_role = {
	.name = "primary",
	.start = primary_start,
	.pump = primary_pump,
	.tick = primary_tick,
	.stop = primary_stop,
	.stopped = primary_stopped,
	.reload = primary_reload,
	.status = primary_fill_status,
	.free = primary_free,
};
