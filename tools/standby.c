// SPDX-License-Identifier: MIT
/*
 * `walship hold` and `walship release`: see standby.h.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "common/log.h"
#include "common/timestamp.h"
#include "proto/pgrepl.h"
#include "standby.h"
#include "walship/control.h"

#define STANDBY_TIMEOUT_MS (30 * 1000)

void hold_usage(FILE *out)
{
	fprintf(out,
		"Usage: walship hold [-c FILE] NAME\n"
		"\n"
		"Hold the standby of application name NAME served on pg_listen: it is sent no WAL\n"
		"past what it was sent so far, until `walship release NAME`.  The hold survives\n"
		"restarts of walshipd and shows in walship status.\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE  the replica's config file (default $%s, else %s)\n"
		"  -h, --help         show this help and exit\n"
		"\n"
		"Exit codes: 0 held; 1 refused or walshipd unreachable; 2 usage error.\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

void release_usage(FILE *out)
{
	fprintf(out,
		"Usage: walship release [-c FILE] NAME [--before TIME | --upto LSN]\n"
		"\n"
		"Release the standby NAME held with `walship hold`.  With --before, it is sent WAL\n"
		"up to just before the first commit at or after TIME (as recovery_target_time with\n"
		"recovery_target_inclusive = off): TIME as PostgreSQL prints a timestamptz or as ISO\n"
		"8601 (2026-12-02 21:10:00.123456+00, 2026-12-02T21:10:00Z), or as pg_waldump prints\n"
		"it with TZ=UTC (2026-12-02 21:10:00.123456 UTC); no zone: UTC, other zone names\n"
		"refused.  With --upto, up to LSN (X/X).  Without either, the hold is removed.\n"
		"\n"
		"Options:\n"
		"  -b, --before=TIME  up to just before the first commit at or after TIME\n"
		"  -u, --upto=LSN     up to LSN\n"
		"  -c, --config=FILE  the replica's config file (default $%s, else %s)\n"
		"  -h, --help         show this help and exit\n"
		"\n"
		"Exit codes: 0 released; 1 refused or walshipd unreachable; 2 usage error.\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

static int standby_call(uint16_t op, uint32_t flags, const char *config_option, const char *arg,
			const char *app)
{
	char what[128];

	snprintf(what, sizeof(what), "%s standby \"%s\"",
		 op == CTL_STANDBY_HOLD ? "hold" : "release", app);
	return cli_request(config_option, STANDBY_TIMEOUT_MS, op, flags, arg, what);
}

/* The application name as the control request carries it (room for " VALUE"). */
static bool app_valid(const char *app)
{
	return app[0] && strlen(app) < CTL_MAX_NAME - 22;
}

int hold_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_option = NULL;
	int opt;

	cli_log_init(false);
	while ((opt = getopt_long(argc, argv, "c:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_option = optarg;
			break;
		case 'h':
			hold_usage(stdout);
			return 0;
		default:
			hold_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1 || !app_valid(argv[optind])) {
		hold_usage(stderr);
		return 2;
	}
	return standby_call(CTL_STANDBY_HOLD, 0, config_option, argv[optind], argv[optind]);
}

/*
 * TIME that timestamp_parse() refused, said in PostgreSQL's words.  When only a zone name
 * after it is what was refused (pg_waldump prints local time with its abbreviation: CET),
 * name the zone and say what to give instead, rather than call the whole time malformed.
 */
static void release_bad_time(const char *text)
{
	const char *zone = strrchr(text, ' ');
	char head[64];
	int64_t unix_us;

	/* (a zone that is taken, UTC after an offset, is no unknown zone: two zones) */
	if (zone && isalpha((unsigned char)zone[1]) && strcasecmp(zone + 1, "UTC") &&
	    strcasecmp(zone + 1, "GMT") && (size_t)(zone - text) < sizeof(head)) {
		memcpy(head, text, (size_t)(zone - text));
		head[zone - text] = '\0';
		if (timestamp_parse(head, &unix_us) == 0) {
			log_error("time zone \"%s\" not recognized", zone + 1);
			log_hint(
				"Give the zone as \" UTC\" or \" GMT\" after the time, or as Z or "
				"an offset right after it (...00Z, ...00+01, ...00-05:30); without "
				"one the time is UTC.  pg_waldump prints times in UTC when run "
				"with TZ=UTC.");
			return;
		}
	}
	log_error("invalid input syntax for type timestamp with time zone: \"%s\"", text);
}

int release_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "before", required_argument, NULL, 'b' },
		{ "upto", required_argument, NULL, 'u' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_option = NULL, *before = NULL, *upto = NULL, *app;
	char arg[CTL_MAX_NAME];
	uint32_t flags = 0;
	int opt;

	cli_log_init(false);
	while ((opt = getopt_long(argc, argv, "b:u:c:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'b':
			before = optarg;
			break;
		case 'u':
			upto = optarg;
			break;
		case 'c':
			config_option = optarg;
			break;
		case 'h':
			release_usage(stdout);
			return 0;
		default:
			release_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1 || !app_valid(argv[optind]) || (before && upto)) {
		release_usage(stderr);
		return 2;
	}
	app = argv[optind];
	snprintf(arg, sizeof(arg), "%s", app);
	if (before) {
		int64_t unix_us;

		if (timestamp_parse(before, &unix_us) < 0) {
			release_bad_time(before);
			return 2;
		}
		snprintf(arg, sizeof(arg), "%s %" PRId64, app, pgrepl_time_from_unix_us(unix_us));
		flags = CTL_F_BEFORE;
	} else if (upto) {
		uint64_t lsn;

		if (pgrepl_lsn_parse(upto, &lsn) < 0) {
			log_error("invalid input syntax for type pg_lsn: \"%s\"", upto);
			return 2;
		}
		snprintf(arg, sizeof(arg), "%s %" PRIu64, app, lsn);
		flags = CTL_F_UPTO;
	}
	return standby_call(CTL_STANDBY_RELEASE, flags, config_option, arg, app);
}
