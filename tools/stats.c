// SPDX-License-Identifier: MIT
/*
 * `walship stats`: the probes' histograms from their pins.  See stats.h.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/log.h"
#include "probe/pins.h"
#include "stats.h"

void stats_usage(FILE *out)
{
	fprintf(out,
		"Usage: walship stats [-c FILE] [--json] [--interval N [--count M]]\n"
		"\n"
		"Print the fsync and send latency histograms the local walshipd's BPF probes\n"
		"keep in %s/NODE (docs/observability.md).\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE   config file, for node_name (default $%s, else %s)\n"
		"  -j, --json          JSON instead of text\n"
		"  -i, --interval=N    print what happened in each N seconds (deltas), like iostat;\n"
		"                      after the first read, waits while the pins are gone\n"
		"                      (walshipd stopped), however long\n"
		"  -n, --count=M       with --interval: stop after M intervals printed\n"
		"  -h, --help          show this help and exit\n"
		"\n"
		"Exit codes: 0 printed; 1 no probes' pins (probes off, walshipd stopped, or no\n"
		"permission), or pins of another version of walshipd; 2 usage error or unusable\n"
		"config file.\n",
		PROBE_PIN_ROOT, CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

/* Say why the pins in @dir could not be read (@ret, probe_read_pinned()'s @why). */
static void stats_read_failed(const char *dir, int ret, const char *why)
{
	if (ret == -EPROTO) {
		log_error("the probes' histograms in \"%s\" were pinned by another version of "
			  "walshipd: %s",
			  dir, why);
		log_hint("Read them with the walship of the walshipd that pinned them.");
		return;
	}
	log_error("could not read the probes' histograms in \"%s\": %s", dir, strerror(-ret));
	log_hint("The probes are on while walshipd runs with probes = on or auto and the "
		 "privileges for BPF; reading the pins needs access to their folder and files "
		 "(root, or walshipd's user) and, before Linux 6.5, CAP_BPF.");
}

/* @interval_s > 0: @s is one interval's counts (afresh: since walshipd restarted). */
static void stats_print(const struct probe_snapshot *s, bool json, long interval_s, bool afresh)
{
	if (json)
		probe_print_json(stdout, s, interval_s, afresh);
	else
		probe_print_text(stdout, s);
	fflush(stdout);
}

int stats_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct probe_snapshot *now, *before, *delta;
	const char *config_option = NULL;
	long interval = 0, count = -1, span = 0; /* span: intervals since @before was read */
	bool gone = false; /* the pins were missing at the last read (said once) */
	struct config cfg;
	char dir[256], why[256], *end;
	bool json = false;
	int opt, ret;

	cli_log_init(false);
	while ((opt = getopt_long(argc, argv, "c:ji:n:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_option = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'i':
		case 'n': {
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			/* (an interval past a day, or a count past INT_MAX, is a typo) */
			if (end == optarg || *end || errno || v < 1 ||
			    v > (opt == 'i' ? 86400L : (long)INT_MAX)) {
				log_error("invalid --%s \"%s\": a number from 1 to %ld is expected",
					  opt == 'i' ? "interval" : "count", optarg,
					  opt == 'i' ? 86400L : (long)INT_MAX);
				return CLI_EXIT_USAGE;
			}
			if (opt == 'i')
				interval = v;
			else
				count = v;
			break;
		}
		case 'h':
			stats_usage(stdout);
			return CLI_EXIT_OK;
		default:
			stats_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("walship stats takes no arguments, got \"%s\"", argv[optind]);
		stats_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (cli_load_config(&cfg, cli_config_path(config_option)) < 0)
		return CLI_EXIT_USAGE;
	probe_pin_dir(cfg.node_name, dir, sizeof(dir));

	now = calloc(3, sizeof(*now));
	if (!now) {
		log_error("out of memory");
		return 1;
	}
	before = now + 1;
	delta = now + 2;
	ret = probe_read_pinned(dir, now, why, sizeof(why));
	if (ret < 0) {
		stats_read_failed(dir, ret, why);
		free(now);
		return 1;
	}
	if (!interval) {
		stats_print(now, json, 0, false);
		free(now);
		return CLI_EXIT_OK;
	}
	*before = *now;
	for (long printed = 0; count < 0 || printed < count;) {
		bool afresh;

		sleep((unsigned int)interval);
		span++;
		ret = probe_read_pinned(dir, now, why, sizeof(why));
		if (ret == -ENOENT) {
			/* walshipd stopped (its pins go unless bpf_keep_pins), or restarting: its
			 * next run's pins are read when they are there, counted afresh */
			if (!gone)
				log_log("the probes' pins in \"%s\" are gone (walshipd stopped?): "
					"waiting for them",
					dir);
			gone = true;
			continue;
		}
		if (ret < 0) {
			stats_read_failed(dir, ret, why);
			free(now);
			return 1;
		}
		gone = false;
		printed++;
		afresh = !probe_snapshot_sub(delta, now, before);
		if (afresh)
			log_log("the histograms were made afresh (walshipd restarted): what follows "
				"is counted since then");
		if (!json) {
			time_t t = time(NULL);
			char stamp[32];

			strftime(stamp, sizeof(stamp), "%H:%M:%S", localtime(&t));
			if (afresh)
				printf("%s (since walshipd restarted)\n", stamp);
			else
				printf("%s (last %ld s)\n", stamp, span * interval);
		}
		stats_print(delta, json, span * interval, afresh);
		*before = *now;
		span = 0;
	}
	free(now);
	return CLI_EXIT_OK;
}
