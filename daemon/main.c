// SPDX-License-Identifier: MIT
/*
 * walshipd: the walship daemon.  Runs in the foreground, logs to stderr, one io_uring
 * event loop; the role (primary or replica) comes from the config file.
 *
 *   walshipd -c FILE           run
 *   walshipd -c FILE --check   load and check the config, print it, exit
 *   walshipd --help            usage and every config key
 *   walshipd --describe-config the config key reference in Markdown
 *   walshipd --describe-config=man  the same in roff, for walship.conf(5)
 */
#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <walship/wire.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/config.h"
#include "common/crc32c_isal.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "metrics/metrics.h"
#include "probe/probe.h"
#include "ring/ring.h"
#include "publish/publish.h"
#include "role/role.h"

/* How long a stop waits for in-flight work before exiting anyway. */
#define STOP_GRACE_MS 5000

/* How often, at most, the STATUS= line for systemd is sent again (when it changed). */
#define NOTIFY_STATUS_MS 2000

struct daemon {
	struct ring ring;
	const struct role_ops *role;
	void *state;
	const char *config_path;
	struct config cfg;
	int signal_fd;
	struct signalfd_siginfo siginfo;
	struct ring_op signal_op;
	struct ring_op tick_op;
	struct __kernel_timespec tick_ts;
	bool stop_requested;
	struct probe *probe; /* NULL: BPF probes off */
	struct status_probes probe_status; /* the probes' quantiles for status replies */
	struct metrics *metrics; /* NULL: metrics_listen off */
	struct publisher *publisher; /* NULL with sysfs = off or --no-sysfs */
	bool notify; /* started by systemd with Type=notify ($NOTIFY_SOCKET) */
	int64_t notify_status_ms; /* when STATUS= was last considered */
	int64_t watchdog_ms; /* WATCHDOG=1 every this often, 0: no watchdog */
	int64_t watchdog_sent_ms;
};

static void signal_post(struct daemon *d);

static void daemon_reload(struct daemon *d)
{
	struct config fresh;

	log_log("received SIGHUP, reloading configuration file \"%s\"", d->config_path);
	sdnotify_reloading();
	config_defaults(&fresh);
	if (config_load(&fresh, d->config_path) < 0 ||
	    config_reload(&d->cfg, &fresh, d->config_path) < 0) {
		log_error("configuration file \"%s\" contains errors; no changes were applied",
			  d->config_path);
		sdnotify_ready(); /* still serving, with the old configuration */
		return;
	}
	log_set_level(d->cfg.log_level);
	d->role->reload(d->state, &d->cfg);
	sdnotify_ready();
}

static void signal_done(struct ring_op *op, int res, uint32_t flags)
{
	struct daemon *d = container_of(op, struct daemon, signal_op);

	(void)flags;
	if (res == (int)sizeof(d->siginfo)) {
		if (d->siginfo.ssi_signo == SIGHUP) {
			daemon_reload(d);
		} else if (!d->stop_requested) {
			log_log("received %s, shutting down",
				d->siginfo.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			d->stop_requested = true;
			sdnotify_stopping();
		}
	}
	signal_post(d);
}

static void signal_post(struct daemon *d)
{
	struct io_uring_sqe *sqe;

	d->signal_op.cb = signal_done;
	sqe = ring_sqe(&d->ring, &d->signal_op);
	io_uring_prep_read(sqe, d->signal_fd, &d->siginfo, sizeof(d->siginfo), 0);
}

/*
 * The STATUS= line: the role, its peers and how far behind they are, e.g.
 *   primary "p1": 2 of 3 replicas streaming (sync_replicas 1), 0 pushes in progress,
 *   largest lag 0 kB, PostgreSQL stream streaming
 * Lag is rounded to kB so that the line changes with what an operator would notice.
 */
static void daemon_summary(const struct status_node *n, bool primary, char *buf, size_t size)
{
	unsigned int streaming = 0;
	uint64_t lag = 0;
	int used;

	for (unsigned int i = 0; i < n->npeers; i++) {
		if (n->peers[i].state == WALSHIP_PEER_STREAMING)
			streaming++;
		if (n->peers[i].lag_bytes > lag)
			lag = n->peers[i].lag_bytes;
	}
	if (primary)
		used = snprintf(buf, size,
				"primary \"%s\": %u of %u replicas streaming (sync_replicas %d), "
				"%llu pushes in progress, largest lag %llu kB",
				n->node_name, streaming, n->npeers, n->sync_replicas,
				(unsigned long long)n->pushes_queued,
				(unsigned long long)(lag / 1024));
	else
		used = snprintf(
			buf, size, "replica \"%s\": upstream %s %s, %llu files stored, lag %llu kB",
			n->node_name, n->upstream,
			n->npeers ? walship_peer_state_name(n->peers[0].state) : "connecting",
			(unsigned long long)n->files_stored, (unsigned long long)(lag / 1024));
	if (used > 0 && (size_t)used < size && n->source_state[0])
		snprintf(buf + used, size - (size_t)used, ", PostgreSQL stream %s",
			 n->source_state);
	else if (used > 0 && (size_t)used < size && n->nstandbys)
		snprintf(buf + used, size - (size_t)used, ", %u standbys", n->nstandbys);
}

/* From the event loop's tick, so that a stalled loop stops the watchdog's pings. */
static void daemon_notify_tick(struct daemon *d, int64_t now_ms)
{
	if (d->watchdog_ms && now_ms - d->watchdog_sent_ms >= d->watchdog_ms) {
		sdnotify_watchdog();
		d->watchdog_sent_ms = now_ms;
	}
	if (d->notify && now_ms - d->notify_status_ms >= NOTIFY_STATUS_MS) {
		char text[SDNOTIFY_STATUS_MAX];
		struct status_node n;

		d->role->status(d->state, &n);
		daemon_summary(&n, d->cfg.role == CONFIG_ROLE_PRIMARY, text, sizeof(text));
		status_node_release(&n);
		sdnotify_status(text);
		d->notify_status_ms = now_ms;
	}
}

static void tick_done(struct ring_op *op, int res, uint32_t flags)
{
	struct daemon *d = container_of(op, struct daemon, tick_op);
	struct io_uring_sqe *sqe;

	int64_t stall_ms;

	(void)res;
	(void)flags;
	stall_ms = clock_loop_tick(clock_now_ms(), ROLE_TICK_MS);
	if (stall_ms >= 1000)
		log_warning("the event loop did not run for %" PRId64 " ms (the host overloaded, "
			    "the process stopped, or a system call held up); peers' silence "
			    "meanwhile is not counted against keepalive_timeout",
			    stall_ms);
	d->role->tick(d->state, clock_now_ms());
	probe_tick(d->probe);
	if (d->publisher) {
		struct status_node n;

		d->role->status(d->state, &n);
		publish_tick(d->publisher, &n, clock_now_ms());
		status_node_release(&n);
	}
	daemon_notify_tick(d, clock_now_ms());
	sqe = ring_sqe(&d->ring, &d->tick_op);
	io_uring_prep_timeout(sqe, &d->tick_ts, 0, 0);
}

/* status_reply()'s hook: the probes' quantiles in `walship status`. */
static void daemon_status_probes(struct status_node *n, void *arg)
{
	struct daemon *d = arg;

	if (d->probe && probe_status(d->probe, &d->probe_status) == 0)
		n->probes = &d->probe_status;
}

static void usage(FILE *out)
{
	fprintf(out,
		"walshipd %s: ships PostgreSQL WAL from a primary to replicas\n\n"
		"Usage:\n"
		"  walshipd -c FILE            run in the foreground (logs to stderr)\n"
		"  walshipd -c FILE --check    check the configuration and print it\n"
		"  walshipd -c FILE --no-sysfs do not publish to walship.ko: overrides sysfs\n"
		"  walshipd --describe-config  print the key reference in Markdown\n"
		"  walshipd --describe-config=man  the same in roff (walship.conf(5))\n"
		"  walshipd --version\n\n"
		"Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the configuration.\n\n"
		"Configuration keys:\n",
		WALSHIP_VERSION);
	config_print_help(out);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'k' },
		{ "describe-config", optional_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "no-sysfs", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { .signal_fd = -1 };
	bool check_only = false;
	bool no_sysfs = false;
	bool config_error = false;
	sigset_t mask;
	int opt, ret = 1, loop_err = 0;
	int64_t stop_deadline = 0;

	d.config_path = CONFIG_DEFAULT_PATH;
	crc32c_use_isal(); /* before any thread: the frames', the store's and the spool's CRCs */
	while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			d.config_path = optarg;
			break;
		case 'k':
			check_only = true;
			break;
		case 'S':
			no_sysfs = true;
			break;
		case 'D':
			if (optarg && strcmp(optarg, "man") == 0) {
				config_print_man(stdout);
			} else if (optarg && strcmp(optarg, "markdown") != 0) {
				usage(stderr);
				return 2;
			} else {
				config_print_markdown(stdout);
			}
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("walshipd %s\n", WALSHIP_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	/* Under systemd, stderr goes to the journal: levels become syslog priorities. */
	log_set_journal(log_stderr_is_journal());
	config_defaults(&d.cfg);
	if (config_load(&d.cfg, d.config_path) < 0)
		return 2;
	log_set_level(d.cfg.log_level);
	if (check_only) {
		config_dump(&d.cfg, stdout);
		return 0;
	}
	d.role = d.cfg.role == CONFIG_ROLE_PRIMARY ? &primary_role : &replica_role;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	d.signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (d.signal_fd < 0) {
		log_fatal("could not create signalfd: %s", strerror(errno));
		return 1;
	}

	/* Before the role starts, so its start-up fsyncs are measured too. */
	if (probe_start(&d.cfg, &d.probe) < 0)
		goto out_close;
	status_reply_set_hook(daemon_status_probes, &d);
	if (ring_init(&d.ring, 512, (uint32_t)d.cfg.io_buffers, ROLE_SLOT_SIZE) < 0) {
		log_fatal("could not start the I/O engine");
		goto out_close;
	}
	log_log("walshipd %s starting as %s \"%s\" (io_uring, %d buffers of %d kB%s)",
		WALSHIP_VERSION, d.role->name, d.cfg.node_name, d.cfg.io_buffers,
		ROLE_SLOT_SIZE / 1024, d.ring.fixed_buffers ? ", registered" : "");
	d.state = d.role->start(&d.cfg, &d.ring, &config_error);
	if (!d.state) {
		log_fatal("could not start %s", d.role->name);
		/* A file the configuration names: exit 2 as for an error in the configuration
		 * file itself, which the unit does not restart (RestartPreventExitStatus=2):
		 * every start would fail the same, 2 s apart, for ever. */
		if (config_error)
			ret = 2;
		goto out_ring;
	}
	if (d.cfg.sysfs != CONFIG_SWITCH_OFF && !no_sysfs) {
		const char *why = NULL;

		d.publisher = publish_new();
		if (d.cfg.sysfs == CONFIG_SWITCH_ON &&
		    !publish_ready(d.publisher, clock_now_ms(), &why)) {
			log_fatal("sysfs = on, but %s (docs/sysfs.md)", why);
			publish_free(d.publisher);
			ring_exit(&d.ring);
			d.role->free(d.state);
			goto out_close;
		}
	}
	if (d.cfg.metrics_listen[0]) {
		struct metrics_source src = { &d.ring, d.role->status, d.state, probe_metrics,
					      d.probe };

		d.metrics = metrics_start(d.cfg.metrics_listen, &src);
		if (!d.metrics) {
			ring_exit(&d.ring);
			d.role->free(d.state);
			goto out_close;
		}
	}
	signal_post(&d);
	d.notify = getenv("NOTIFY_SOCKET") != NULL;
	d.watchdog_ms = sdnotify_watchdog_interval_ms();
	d.tick_ts.tv_nsec = (long long)ROLE_TICK_MS * 1000000;
	d.tick_op.cb = tick_done;
	tick_done(&d.tick_op, 0, 0);
	/*
	 * Serving: the role's listeners and control socket are bound and listening (the
	 * kernel queues connections from here; their accepts are posted), the probes are
	 * loaded or reported missing, /metrics listens.
	 */
	sdnotify_ready();

	for (;;) {
		loop_err = ring_run(&d.ring, stop_deadline ? 100 : -1);
		if (loop_err < 0)
			break; /* (logged) */
		d.role->pump(d.state);
		if (d.stop_requested && !stop_deadline) {
			d.role->stop(d.state);
			stop_deadline = clock_now_ms() + STOP_GRACE_MS;
		}
		if (stop_deadline) {
			if (d.role->stopped(d.state))
				break;
			if (clock_now_ms() > stop_deadline) {
				log_warning("stopping with work still in flight after %d ms",
					    STOP_GRACE_MS);
				break;
			}
		}
	}
	if (loop_err < 0) {
		/* Not a stop asked for: a non-zero exit has the service manager restart it
		 * (Restart=on-failure), which a 0 would not. */
		ret = 1;
		sdnotify_stopping();
		log_fatal("walshipd stops: its event loop failed: %s", strerror(-loop_err));
	} else {
		ret = 0;
		log_log("walshipd stopped");
	}
	/* The ring goes first: its polls and timeouts end with it; what io-wq still runs
	 * (after a stop that gave up waiting, 5 s) runs on, into nothing a role promised
	 * (bytes of .incoming files never acknowledged; a rename the next start's
	 * directory fsync covers). */
	ring_exit(&d.ring);
	metrics_free(d.metrics);
	d.role->free(d.state);
	publish_free(d.publisher);
	goto out_close;

out_ring:
	ring_exit(&d.ring);
out_close:
	probe_stop(d.probe);
	close(d.signal_fd);
	return ret;
}
