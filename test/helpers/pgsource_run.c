// SPDX-License-Identifier: MIT
/*
 * pgsource_run: the streaming source (daemon/source/pgsource.c) on a ring of its own, as a
 * pg_receivewal --synchronous would run, for system tests (test/system/t_97_pgsource.sh).
 *
 *   pgsource_run --conninfo CONNINFO --dir DIR [--slot NAME] [--application-name NAME]
 *                [--bytes N] [--sysid N] [--once] [--status-file FILE]
 *                [--status-interval MS] [--debug]
 *
 *   --dir          WAL is written into DIR as pg_receivewal names it: the segment being
 *                  received as NAME.partial, renamed to NAME (after fsync, then a fsync of
 *                  DIR) when complete; timeline history files as NNNNNNNN.history
 *   --bytes        exit 0 once N bytes of WAL have been received and made durable
 *   --sysid        the system identifier the server must have (the role's identify
 *                  callback refuses any other)
 *   --once         exit 1 at the first failure of a connection (its message is logged)
 *   --status-file  rewritten after every change: "state received_lsn flushed_lsn timeline
 *                  connects disconnects bytes paused", LSNs as X/X, paused 0 or 1
 *
 * After the messages of each read of the socket (wal_batch_end) the WAL written so far is
 * fdatasync'ed, and after each batch of completions reported as write = flush
 * (pgsource_report), so the server can count the helper as a synchronous standby.  A
 * wal_batch_end without WAL before it, or WAL without one after it, is an error (exit 1).
 * Within one run a reconnection continues where the written WAL ends (resume_lsn); a new
 * run starts from the slot.  SIGINT and SIGTERM stop it (exit 0);
 * SIGUSR1 pauses the source (pgsource_pause: it stops reading), SIGUSR2 resumes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "proto/pgrepl.h"
#include "ring/ring.h"
#include "source/pgsource.h"
#include "wal/name.h"

struct receiver {
	const char *dir;
	uint64_t expect_sysid; /* 0: any */
	uint32_t seg_size;
	uint32_t timeline; /* of the open segment, or of the last WAL */
	uint64_t written; /* end of the WAL written (the next byte's LSN); 0: none */
	uint64_t synced; /* end of the WAL fdatasync'ed */
	int fd; /* the open .partial segment, -1: none */
	uint64_t segno;
	char name[64]; /* its final name */
	int failed; /* set when a file operation failed: exit 1 */
	uint64_t messages, batches; /* wal() and wal_batch_end() calls */
	uint64_t unbatched; /* wal() calls since the last wal_batch_end() */
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t pause_requested;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		pause_requested = 1;
	else if (sig == SIGUSR2)
		pause_requested = 0;
	else
		stop_requested = 1;
}

static void fsync_dir(struct receiver *rc)
{
	int fd = open(rc->dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || fsync(fd) != 0) {
		log_error("could not fsync directory \"%s\": %s", rc->dir, strerror(errno));
		rc->failed = 1;
	}
	if (fd >= 0)
		close(fd);
}

/* Close the open segment; when complete, sync it and give it its final name. */
static void segment_close(struct receiver *rc, bool complete)
{
	char from[4096], to[4096];

	if (rc->fd < 0)
		return;
	if (fdatasync(rc->fd) != 0) {
		log_error("could not fsync file \"%s.partial\": %s", rc->name, strerror(errno));
		rc->failed = 1;
	}
	close(rc->fd);
	rc->fd = -1;
	if (!complete)
		return;
	snprintf(from, sizeof(from), "%s/%s.partial", rc->dir, rc->name);
	snprintf(to, sizeof(to), "%s/%s", rc->dir, rc->name);
	if (rename(from, to) != 0) {
		log_error("could not rename file \"%s\" to \"%s\": %s", from, to, strerror(errno));
		rc->failed = 1;
	}
	fsync_dir(rc);
}

static int rc_identify(void *arg, const struct pgsource_server *sv, char *why, size_t whylen)
{
	struct receiver *rc = arg;
	char lsn[PGREPL_LSN_TEXT];

	log_log("server: system identifier %" PRIu64 ", timeline %u, WAL at %s, segment size %u, "
		"archiving %s",
		sv->system_identifier, sv->timeline,
		pgrepl_lsn_format(sv->xlogpos, lsn, sizeof(lsn)), sv->seg_size,
		sv->archiving ? "on" : "off");
	if (rc->expect_sysid && sv->system_identifier != rc->expect_sysid) {
		snprintf(why, whylen, "server has system identifier %" PRIu64 ", expected %" PRIu64,
			 sv->system_identifier, rc->expect_sysid);
		return -EINVAL;
	}
	rc->seg_size = sv->seg_size;
	return 0;
}

static uint64_t rc_resume_lsn(void *arg, uint32_t *timeline)
{
	struct receiver *rc = arg;

	*timeline = rc->timeline;
	return rc->written;
}

static void rc_wal(void *arg, uint32_t timeline, uint64_t lsn, const uint8_t *data, uint32_t len)
{
	struct receiver *rc = arg;

	rc->messages++;
	rc->unbatched++;
	while (len > 0 && !rc->failed) {
		uint64_t segno = lsn / rc->seg_size;
		uint32_t offset = (uint32_t)(lsn % rc->seg_size);
		uint32_t chunk = rc->seg_size - offset < len ? rc->seg_size - offset : len;
		ssize_t done;

		if (rc->fd >= 0 && (rc->segno != segno || rc->timeline != timeline))
			segment_close(rc, false);
		if (rc->fd < 0) {
			char path[4096];

			wal_name_format_segment(rc->name, sizeof(rc->name), timeline, segno,
						rc->seg_size);
			snprintf(path, sizeof(path), "%s/%s.partial", rc->dir, rc->name);
			rc->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (rc->fd < 0) {
				log_error("could not open file \"%s\": %s", path, strerror(errno));
				rc->failed = 1;
				return;
			}
			rc->segno = segno;
		}
		rc->timeline = timeline;
		errno = 0;
		done = pwrite(rc->fd, data, chunk, offset);
		if (done != (ssize_t)chunk) {
			log_error("could not write file \"%s.partial\": %s", rc->name,
				  errno ? strerror(errno) : "short write");
			rc->failed = 1;
			return;
		}
		lsn += chunk;
		data += chunk;
		len -= chunk;
		rc->written = lsn;
		if (offset + chunk == rc->seg_size) {
			segment_close(rc, true);
			rc->synced = lsn;
		}
	}
}

/* The messages of one read are written: make them durable (the pgsource_report() after
 * the ring's completions tells the server), as the daemon sends them on at this point. */
static void rc_batch_end(void *arg)
{
	struct receiver *rc = arg;

	if (!rc->unbatched) {
		log_error("wal_batch_end without WAL since the last one");
		rc->failed = 1;
	}
	rc->unbatched = 0;
	rc->batches++;
	if (rc->fd >= 0 && rc->written > rc->synced) {
		if (fdatasync(rc->fd) != 0) {
			log_error("could not fsync file \"%s.partial\": %s", rc->name,
				  strerror(errno));
			rc->failed = 1;
		}
		rc->synced = rc->written;
	}
}

static void rc_history(void *arg, uint32_t timeline, const char *name, const uint8_t *content,
		       uint32_t len)
{
	struct receiver *rc = arg;
	char path[4096];
	FILE *out;

	(void)timeline;
	snprintf(path, sizeof(path), "%s/%s", rc->dir, name);
	out = fopen(path, "wb");
	if (!out || fwrite(content, 1, len, out) != len || fflush(out) != 0 ||
	    fsync(fileno(out)) != 0) {
		log_error("could not write file \"%s\": %s", path, strerror(errno));
		rc->failed = 1;
	}
	if (out)
		fclose(out);
	fsync_dir(rc);
}

static void write_status(const char *path, const struct pgsource *src)
{
	char tmp[4096], recv[PGREPL_LSN_TEXT], flush[PGREPL_LSN_TEXT];
	struct pgsource_status st;
	FILE *out;

	pgsource_get_status(src, &st);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	out = fopen(tmp, "w");
	if (!out)
		return;
	fprintf(out, "%s %s %s %u %" PRIu64 " %" PRIu64 " %" PRIu64 " %d\n", st.state,
		pgrepl_lsn_format(st.received_lsn, recv, sizeof(recv)),
		pgrepl_lsn_format(st.reported_flush, flush, sizeof(flush)), st.timeline,
		st.connects, st.disconnects, st.bytes_received, src->paused ? 1 : 0);
	fclose(out);
	rename(tmp, path);
}

static void usage(void)
{
	fprintf(stderr, "usage: pgsource_run --conninfo CONNINFO --dir DIR [--slot NAME] "
			"[--application-name NAME] [--bytes N] [--sysid N] [--once] "
			"[--status-file FILE] [--status-interval MS] [--debug]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "conninfo", required_argument, NULL, 'c' },
		{ "dir", required_argument, NULL, 'd' },
		{ "slot", required_argument, NULL, 's' },
		{ "application-name", required_argument, NULL, 'a' },
		{ "bytes", required_argument, NULL, 'n' },
		{ "sysid", required_argument, NULL, 'i' },
		{ "once", no_argument, NULL, 'o' },
		{ "status-file", required_argument, NULL, 'f' },
		{ "status-interval", required_argument, NULL, 't' },
		{ "debug", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct pgsource_ops ops = {
		.identify = rc_identify,
		.resume_lsn = rc_resume_lsn,
		.wal = rc_wal,
		.wal_batch_end = rc_batch_end,
		.history = rc_history,
	};
	struct pgsource_config cfg = { .slot = "walship",
				       .connect_timeout_ms = 10000,
				       .reconnect_min_ms = 100,
				       .reconnect_max_ms = 2000 };
	struct receiver rc = { .fd = -1 };
	const char *status_file = NULL;
	uint64_t stop_after = 0;
	bool once = false;
	struct pgsource src;
	struct sigaction sa;
	struct ring ring;
	char last_status[512] = "";
	int opt, exit_code = 0;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			cfg.conninfo = optarg;
			break;
		case 'd':
			rc.dir = optarg;
			break;
		case 's':
			cfg.slot = optarg;
			break;
		case 'a':
			cfg.application_name = optarg;
			break;
		case 'n':
			stop_after = strtoull(optarg, NULL, 10);
			break;
		case 'i':
			rc.expect_sysid = strtoull(optarg, NULL, 10);
			break;
		case 'o':
			once = true;
			break;
		case 'f':
			status_file = optarg;
			break;
		case 't':
			cfg.status_interval_ms = atoi(optarg);
			break;
		case 'D':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		default:
			usage();
		}
	}
	if (!cfg.conninfo || !rc.dir || optind != argc)
		usage();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);

	if (ring_init(&ring, 64, 0, 0) < 0)
		return 1;
	if (pgsource_init(&src, &ring, &cfg, &ops, &rc) < 0) {
		ring_exit(&ring);
		return 2;
	}
	pgsource_start(&src);
	while (!stop_requested) {
		int64_t now = clock_now_ms(), next;
		struct pgsource_status st;
		char line[512];
		int timeout;

		next = pgsource_next_tick(&src);
		timeout = next <= now ? 0 : (next - now > 100 ? 100 : (int)(next - now));
		if (ring_run(&ring, timeout) < 0) {
			exit_code = 1;
			break;
		}
		pgsource_pause(&src, pause_requested);
		now = clock_now_ms();
		if (now >= pgsource_next_tick(&src))
			pgsource_tick(&src, now);
		if (rc.unbatched) {
			log_error("%" PRIu64 " WAL messages not followed by wal_batch_end",
				  rc.unbatched);
			rc.failed = 1;
		}
		if (rc.failed) {
			exit_code = 1;
			break;
		}
		if (rc.synced)
			pgsource_report(&src, rc.synced, rc.synced, 0);
		pgsource_get_status(&src, &st);
		if (status_file) {
			snprintf(line, sizeof(line), "%s %" PRIu64 " %" PRIu64 " %" PRIu64 " %d",
				 st.state, st.received_lsn, st.reported_flush, st.connects,
				 src.paused ? 1 : 0);
			if (strcmp(line, last_status) != 0) {
				write_status(status_file, &src);
				snprintf(last_status, sizeof(last_status), "%s", line);
			}
		}
		if (once && strcmp(st.state, "waiting") == 0) {
			exit_code = 1;
			break;
		}
		if (stop_after && st.bytes_received >= stop_after && rc.synced >= st.received_lsn)
			break;
	}
	if (!exit_code)
		segment_close(&rc, false);
	pgsource_stop(&src);
	/* Let the ring deliver the cancelled poll before it goes away. */
	ring_run(&ring, 100);
	ring_exit(&ring);
	{
		struct pgsource_status st;
		char recv[PGREPL_LSN_TEXT];

		pgsource_get_status(&src, &st);
		printf("pgsource_run: received %" PRIu64 " bytes up to %s in %" PRIu64
		       " messages, %" PRIu64 " reads, %" PRIu64 " connections%s%s\n",
		       st.bytes_received, pgrepl_lsn_format(st.received_lsn, recv, sizeof(recv)),
		       rc.messages, rc.batches, st.connects,
		       st.last_error[0] ? ", last error: " : "", st.last_error);
	}
	return exit_code;
}
