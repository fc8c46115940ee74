// SPDX-License-Identifier: MIT
/*
 * `walship status`: print walshipd's status document.  See status.h.
 */
#include <dirent.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
		"       walship status --sysfs\n"
		"\n"
		"Print the local walshipd's state: role, peers, positions, lag, counters.\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE  config file (default $%s, else %s)\n"
		"  -j, --json         JSON instead of text\n"
		"  -s, --sysfs        print the kernel's view instead: every file under\n"
		"                     %s (walship.ko, docs/sysfs.md) as PATH = VALUE\n"
		"  -h, --help         show this help and exit\n"
		"\n"
		"Exit codes: 0 printed; 1 walshipd unreachable or refused; 2 usage error or\n"
		"unusable config file; 3 printed, and a registered replica has lost WAL\n"
		"(released on spool overflow: see its LOST line).\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH, STATUS_SYSFS_DIR);
}

/* Print every regular file under @dir as "REL = VALUE" (first line), sorted, recursing
 * into directories.  Returns 0, or -1 when @dir cannot be read (logged). */
static int status_print_sysfs(const char *dir, const char *rel)
{
	struct dirent **entries;
	int n = scandir(dir, &entries, NULL, alphasort);
	int ret = 0;

	if (n < 0) {
		log_error("could not open directory \"%s\": %m", dir);
		if (!*rel)
			log_hint("Load walship.ko (modprobe walship) to see the kernel's view.");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096], name[1024], value[256] = "";
		struct dirent *e = entries[i];
		FILE *f;

		if (e->d_name[0] == '.' || ret < 0) {
			free(e);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(name, sizeof(name), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		if (e->d_type == DT_DIR) {
			ret = status_print_sysfs(path, name);
		} else if ((f = fopen(path, "r"))) {
			if (!fgets(value, sizeof(value), f))
				value[0] = '\0';
			value[strcspn(value, "\n")] = '\0';
			fclose(f);
			printf("%s = %s\n", name, value);
		}
		free(e);
	}
	free(entries);
	return ret;
}

int status_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "sysfs", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_option = NULL;
	struct ctl_client_reply reply = { 0 };
	struct config cfg;
	uint32_t flags = 0;
	bool sysfs = false;
	int exit_code = STATUS_EXIT_UNAVAILABLE;
	int sock;
	int opt;

	cli_log_init(false);
	while ((opt = getopt_long(argc, argv, "c:jsh", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_option = optarg;
			break;
		case 'j':
			flags |= CTL_F_JSON;
			break;
		case 's':
			sysfs = true;
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

	if (sysfs && (config_option || flags)) {
		/* (the kernel's view reads no configuration and has no JSON form: taking them
		 * and printing something else would mislead) */
		log_error("walship status --sysfs takes neither --config nor --json");
		status_usage(stderr);
		return STATUS_EXIT_USAGE;
	}
	if (sysfs)
		return status_print_sysfs(STATUS_SYSFS_DIR, "") < 0 ? STATUS_EXIT_UNAVAILABLE :
								      STATUS_EXIT_OK;

	if (cli_load_config(&cfg, cli_config_path(config_option)) < 0)
		return STATUS_EXIT_USAGE;

	/* Failures are logged by the client. */
	if (ctl_client_connect(cfg.socket_path, STATUS_TIMEOUT_MS, &sock) < 0)
		return STATUS_EXIT_UNAVAILABLE;
	if (ctl_client_call(sock, CTL_STATUS, flags, NULL, -1, &reply) < 0)
		goto out_close;

	if (reply.code != CTL_OK && reply.code != CTL_WARN_LOST) {
		log_error("walshipd refused the status request: %s",
			  reply.text_len ? reply.text : ctl_code_name(reply.code));
		goto out_free;
	}
	if (fwrite(reply.text, 1, reply.text_len, stdout) != reply.text_len ||
	    fflush(stdout) != 0) {
		log_error("could not write status to standard output");
		goto out_free;
	}
	exit_code = reply.code == CTL_WARN_LOST ? STATUS_EXIT_LOST : STATUS_EXIT_OK;

out_free:
	ctl_client_reply_free(&reply);
out_close:
	close(sock);
	return exit_code;
}
