/* SPDX-License-Identifier: MIT */
/*
 * Pieces shared by the `walship` subcommands: exit codes common to all of them, where the
 * config file is, and loading it.
 *
 * The CLI reads the same config file as walshipd (it needs `socket`, `push_timeout` and
 * `archive_dir`).  Messages go to stderr through common/log.h without the daemon's
 * timestamp prefix, so an error is one line: `ERROR:  could not open file "x": ...`.
 */
#ifndef WALSHIP_TOOLS_CLI_H
#define WALSHIP_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"

/* Exit codes shared by every subcommand (each subcommand documents the rest). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_USAGE 2 /* bad arguments, bad WAL name, unusable config file */

/* Environment variable naming the config file when -c is not given. */
#define CLI_CONFIG_ENV "WALSHIP_CONFIG"

/*
 * Set up logging for a CLI run: no prefix, threshold LOG, or DEBUG when @verbose.  Call
 * before anything may print.
 */
void cli_log_init(bool verbose);

/*
 * The config file to read: @option (from -c) when not NULL, else $WALSHIP_CONFIG when set
 * and not empty, else CONFIG_DEFAULT_PATH.
 */
const char *cli_config_path(const char *option);

/*
 * Fill @cfg with defaults and load @path into it.  Every failure is reported here (one
 * ERROR line, plus the parser's own lines); returns 0 or a negative errno.
 */
int cli_load_config(struct config *cfg, const char *path);

/*
 * One control request that passes no file (`walship replica drop`, `walship hold`,
 * `walship release`): load the config named by @config_option (cli_config_path()),
 * connect to its daemon within @timeout_ms, send @op with @flags and @name, and print the
 * reply's text when it is OK.  A refusal is logged as "could not WHAT: REASON" (@what,
 * e.g. `drop replica "r1"`); other failures by the client.  Returns the command's exit
 * code: 0 done, 1 refused or failed, 2 the config could not be loaded.
 */
int cli_request(const char *config_option, int timeout_ms, uint16_t op, uint32_t flags,
		const char *name, const char *what);

#endif /* WALSHIP_TOOLS_CLI_H */
