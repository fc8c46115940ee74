// SPDX-License-Identifier: MIT
/*
 * Shared CLI plumbing: logging set-up, config file location and loading.  See cli.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/log.h"

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
	 * by config_load() with file and line.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC);
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
