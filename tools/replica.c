// SPDX-License-Identifier: MIT
/*
 * `walship replica drop`: see replica.h.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "common/log.h"
#include "common/node_name.h"
#include "replica.h"
#include "walship/control.h"

/* walshipd answers once the spool released what it held for the replica, on its worker
 * thread: thousands of files of a replica gone for days take a while on a busy disk. */
#define REPLICA_TIMEOUT_MS (10 * 60 * 1000)

void replica_usage(FILE *out)
{
	fprintf(out,
		"Usage: walship replica drop [-c FILE] NAME\n"
		"\n"
		"Forget the registered replica NAME on the primary: the spool stops holding WAL\n"
		"for it and releases what it held.  Its standby then needs the archive or a new\n"
		"base backup.  A connected replica is not dropped: stop its walshipd first.\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE  the primary's config file (default $%s, else %s)\n"
		"  -h, --help         show this help and exit\n"
		"\n"
		"Exit codes: 0 dropped; 1 refused or walshipd unreachable; 2 usage error.\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

int replica_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_option = NULL, *name;
	char what[128];
	int opt;

	cli_log_init(false);
	while ((opt = getopt_long(argc, argv, "c:h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_option = optarg;
			break;
		case 'h':
			replica_usage(stdout);
			return 0;
		default:
			replica_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "drop") != 0) {
		replica_usage(stderr);
		return 2;
	}
	name = argv[optind + 1];
	if (!node_name_valid(name)) {
		log_error("\"%s\" is not a replica name", name);
		return 2;
	}
	snprintf(what, sizeof(what), "drop replica \"%s\"", name);
	return cli_request(config_option, REPLICA_TIMEOUT_MS, CTL_REPLICA_DROP, 0, name, what);
}
