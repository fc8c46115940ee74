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

#define REPLICA_TIMEOUT_MS (30 * 1000)

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
	struct ctl_client_reply reply = { 0 };
	struct config cfg;
	int opt, sock, exit_code = 1;

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
	if (cli_load_config(&cfg, cli_config_path(config_option)) < 0)
		return 2;
	/* Failures are logged by the client. */
	if (ctl_client_connect(cfg.socket_path, REPLICA_TIMEOUT_MS, &sock) < 0)
		return 1;
	if (ctl_client_call(sock, CTL_REPLICA_DROP, 0, name, -1, &reply) < 0)
		goto out_close;
	if (reply.code != CTL_OK) {
		log_error("could not drop replica \"%s\": %s", name,
			  reply.text_len ? reply.text : ctl_code_name(reply.code));
		goto out_free;
	}
	printf("%s\n", reply.text);
	exit_code = 0;
out_free:
	ctl_client_reply_free(&reply);
out_close:
	close(sock);
	return exit_code;
}
