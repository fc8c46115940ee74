// SPDX-License-Identifier: MIT
/*
 * `walship status`: print walshipd's status document.  See status.h.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "common/log.h"
#include "status.h"
#include "walship/control.h"

void status_usage(FILE *out)
{
	fprintf(out,
		"Usage: walship status [-c FILE] [--json]\n"
		"\n"
		"Print the local walshipd's state: role, peers, positions, lag, counters.\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE  config file (default $%s, else %s)\n"
		"  -j, --json         JSON instead of text\n"
		"  -h, --help         show this help and exit\n"
		"\n"
		"Exit codes: 0 printed; 1 walshipd unreachable or refused; 2 usage error or\n"
		"unusable config file.\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

int status_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_option = NULL;
	struct ctl_client_reply reply = { 0 };
	struct config cfg;
	uint32_t flags = 0;
	int exit_code = STATUS_EXIT_UNAVAILABLE;
	int sock;
	int opt;

	cli_log_init(false);
	while ((opt = getopt_long(argc, argv, "c:jh", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_option = optarg;
			break;
		case 'j':
			flags |= CTL_F_JSON;
			break;
		case 'h':
			status_usage(stdout);
			return CLI_EXIT_OK;
		default:
			status_usage(stderr);
			return STATUS_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("walship status takes no arguments, got \"%s\"", argv[optind]);
		status_usage(stderr);
		return STATUS_EXIT_USAGE;
	}

	if (cli_load_config(&cfg, cli_config_path(config_option)) < 0)
		return STATUS_EXIT_USAGE;

	/* Failures are logged by the client. */
	if (ctl_client_connect(cfg.socket_path, STATUS_TIMEOUT_MS, &sock) < 0)
		return STATUS_EXIT_UNAVAILABLE;
	if (ctl_client_call(sock, CTL_STATUS, flags, NULL, -1, &reply) < 0)
		goto out_close;

	if (reply.code != CTL_OK) {
		log_error("walshipd refused the status request: %s",
			  reply.text_len ? reply.text : ctl_code_name(reply.code));
		goto out_free;
	}
	if (fwrite(reply.text, 1, reply.text_len, stdout) != reply.text_len ||
	    fflush(stdout) != 0) {
		log_error("could not write status to standard output");
		goto out_free;
	}
	exit_code = STATUS_EXIT_OK;

out_free:
	ctl_client_reply_free(&reply);
out_close:
	close(sock);
	return exit_code;
}
