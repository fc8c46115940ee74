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

#endif /* WALSHIP_TOOLS_CLI_H */
