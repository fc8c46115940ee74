// SPDX-License-Identifier: MIT
/*
 * Shared CLI plumbing: logging set-up, config file location and loading.  See cli.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "common/log.h"
#include "walship/control.h"

void cli_log_init(bool verbose)
{
	log_set_prefix(false);
	log_set_level(verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_LOG);
}

const char *cli_config_path(const char *option)
{
	const char *env;

	if (option)
		return option;
	env = getenv(CLI_CONFIG_ENV);
	if (env && env[0] != '\0')
		return env;
	return CONFIG_DEFAULT_PATH;
}

int cli_load_config(struct config *cfg, const char *path)
{
	int fd;
	int ret;

	/*
	 * Open the file once ourselves so that a missing or unreadable file gets one clear
	 * line naming it, whatever config_load() says about it; syntax errors are reported
	 * by config_load() with file and line.  (O_NONBLOCK: a FIFO would block the open
	 * for ever; config_load() refuses it as no regular file.)
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		log_error("could not open configuration file \"%s\": %s", path, strerror(-ret));
		if (ret == -ENOENT)
			log_hint("Give the file with -c FILE or the %s environment variable.",
				 CLI_CONFIG_ENV);
		return ret;
	}
	close(fd);

	config_defaults(cfg);
	ret = config_load(cfg, path);
	/* On failure config_load() has named the file and line already. */
	return ret < 0 ? ret : 0;
}

int cli_request(const char *config_option, int timeout_ms, uint16_t op, uint32_t flags,
		const char *name, const char *what)
{
	struct ctl_client_reply reply = { 0 };
	struct config cfg;
	int sock, exit_code = 1;

	if (cli_load_config(&cfg, cli_config_path(config_option)) < 0)
		return 2;
	/* Failures are logged by the client. */
	if (ctl_client_connect(cfg.socket_path, timeout_ms, &sock) < 0)
		return 1;
	if (ctl_client_call(sock, op, flags, name, -1, &reply) < 0)
		goto out_close;
	if (reply.code != CTL_OK) {
		log_error("could not %s: %s", what,
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
