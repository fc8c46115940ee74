// SPDX-License-Identifier: MIT
/*
 * `walship push`: hand a WAL file to walshipd and report whether it is safe.  See push.h.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "common/log.h"
#include "push.h"
#include "wal/name.h"
#include "walship/control.h"

void push_usage(FILE *out)
{
	fprintf(out,
		"Usage: walship push [-c FILE] [-v] PATH\n"
		"\n"
		"Hand the WAL file at PATH to the local walshipd and wait until it is safe.\n"
		"Meant as PostgreSQL's archive_command:\n"
		"\n"
		"  archive_command = 'exec walship push -c /etc/walship/walship.conf %%p'\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE  config file (default $%s, else %s)\n"
		"  -v, --verbose      say so on success\n"
		"  -h, --help         show this help and exit\n"
		"\n"
		"Exit codes: 0 safe; 1 not safe (PostgreSQL keeps the file and retries);\n"
		"2 usage error, not a WAL file name, or unusable config file.\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

/* Last component of @path ("" when @path ends with a slash). */
static const char *path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

int push_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_option = NULL;
	const char *path;
	const char *name;
	struct ctl_client_reply reply = { 0 };
	struct config cfg;
	bool verbose = false;
	int timeout_ms;
	int exit_code = PUSH_EXIT_NOT_SAFE;
	int wal_fd;
	int fds[CTL_MAX_FDS];
	unsigned int nahead = 0;
	int sock;
	int opt;
	int ret;

	cli_log_init(false);
	while ((opt = getopt_long(argc, argv, "c:vh", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_option = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			push_usage(stdout);
			return CLI_EXIT_OK;
		default:
			push_usage(stderr);
			return PUSH_EXIT_USAGE;
		}
	}
	cli_log_init(verbose);
	if (argc - optind != 1) {
		log_error("walship push needs exactly one PATH, got %d arguments", argc - optind);
		push_usage(stderr);
		return PUSH_EXIT_USAGE;
	}
	path = argv[optind];
	name = path_basename(path);
	if (!wal_name_valid(name)) {
		log_error("refusing to archive \"%s\": \"%s\" is not a WAL file name", path, name);
		return PUSH_EXIT_USAGE;
	}

	if (cli_load_config(&cfg, cli_config_path(config_option)) < 0)
		return PUSH_EXIT_USAGE;

	wal_fd = ctl_client_open_push_file(path);
	if (wal_fd == -EINVAL)
		return PUSH_EXIT_USAGE;
	if (wal_fd < 0)
		return PUSH_EXIT_NOT_SAFE;
	fds[0] = wal_fd;

	/*
	 * The daemon answers within push_timeout; our own limit is longer so that it is
	 * the daemon, not a client timeout, that normally gives the verdict.
	 */
	if (cfg.push_timeout_ms > INT_MAX - PUSH_CLIENT_GRACE_MS)
		timeout_ms = INT_MAX;
	else
		timeout_ms = cfg.push_timeout_ms + PUSH_CLIENT_GRACE_MS;

	/* Connection and exchange failures are logged by the client. */
	ret = ctl_client_connect(cfg.socket_path, timeout_ms, &sock);
	if (ret < 0)
		goto out_close_wal;
	/* The ready segments after it go along, for walshipd to ship meanwhile (push_ahead). */
	nahead = ctl_client_open_ahead(path, wal_fd, cfg.push_ahead, fds + 1);
	ret = ctl_client_call_fds(sock, CTL_PUSH, nahead ? CTL_F_AHEAD : 0, name, fds, 1 + nahead,
				  &reply);
	if (ret < 0)
		goto out_close_sock;

	ctl_client_one_line(reply.text);
	if (reply.code == CTL_OK) {
		exit_code = PUSH_EXIT_SAFE;
		if (verbose)
			log_log("archived \"%s\"%s%s", name, reply.text[0] != '\0' ? ": " : "",
				reply.text);
	} else {
		log_error("could not archive \"%s\": %s", name,
			  reply.text[0] != '\0' ? reply.text : ctl_code_name(reply.code));
	}
	ctl_client_reply_free(&reply);

out_close_sock:
	close(sock);
out_close_wal:
	for (unsigned int i = 0; i <= nahead; i++)
		close(fds[i]); /* fds[0] is wal_fd */
	return exit_code;
}
