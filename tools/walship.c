// SPDX-License-Identifier: MIT
/*
 * walship: the command-line side of walshipd.  Dispatches to a subcommand:
 *
 *   walship push  [-c FILE] PATH        archive_command (push.h)
 *   walship fetch [-c FILE] NAME DEST   restore_command (fetch.h)
 *   walship status [-c FILE] [--json]   the daemon's state (status.h)
 *   walship stats [-c FILE] [--json] [--interval N [--count M]]   BPF latency histograms (stats.h)
 *   walship password USER               a standby's SCRAM verifier (password.h)
 *
 * docs/cli.md documents them, their exit codes and the permissions they need.
 */
#include <stdio.h>
#include <string.h>

#include "common/compiler.h"
#include "check.h"
#include "cli.h"
#include "common/log.h"
#include "fetch.h"
#include "password.h"
#include "push.h"
#include "replica.h"
#include "standby.h"
#include "stats.h"
#include "status.h"

#ifndef WALSHIP_VERSION
#define WALSHIP_VERSION "unknown"
#endif

struct subcommand {
	const char *name;
	int (*main)(int argc, char **argv);
	void (*usage)(FILE *out);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{ "push", push_main, push_usage, "hand a WAL file to walshipd (archive_command)" },
	{ "fetch", fetch_main, fetch_usage,
	  "restore a WAL file from the archive (restore_command)" },
	{ "status", status_main, status_usage, "print walshipd's state (text or --json)" },
	{ "stats", stats_main, stats_usage, "print the BPF fsync and send latency histograms" },
	{ "replica", replica_main, replica_usage,
	  "replica drop NAME: forget a registered replica (primary or relay)" },
	{ "check", check_main, check_usage, "preflight: is this host set up to ship WAL" },
	{ "hold", hold_main, hold_usage,
	  "hold a standby served on pg_listen where it is (replica)" },
	{ "release", release_main, release_usage,
	  "release a held standby, all or up to just before a time or up to an LSN (replica)" },
	{ "password", password_main, password_usage,
	  "print a standby's SCRAM-SHA-256 verifier for pg_password_file" },
};

#define N_SUBCOMMANDS (ARRAY_SIZE(subcommands))

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "walship ships PostgreSQL WAL through the local walshipd.\n"
		     "\n"
		     "Usage:\n"
		     "  walship COMMAND [OPTIONS] ...\n"
		     "  walship COMMAND --help\n"
		     "\n"
		     "Commands:\n");
	for (i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(out, "  %-10s%s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out,
		"\n"
		"Options:\n"
		"  -h, --help     show this help and exit\n"
		"  -V, --version  show the version and exit\n"
		"\n"
		"Every command reads the config file given with -c FILE, else $%s,\n"
		"else %s.\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
	const char *command;
	size_t i;

	cli_log_init(false);
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	command = argv[1];
	if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 ||
	    strcmp(command, "help") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(command, "--version") == 0 || strcmp(command, "-V") == 0) {
		printf("walship %s\n", WALSHIP_VERSION);
		return CLI_EXIT_OK;
	}
	for (i = 0; i < N_SUBCOMMANDS; i++) {
		if (strcmp(command, subcommands[i].name) == 0)
			return subcommands[i].main(argc - 1, argv + 1);
	}
	log_error("unknown command \"%s\"", command);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
