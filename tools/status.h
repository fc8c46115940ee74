/* SPDX-License-Identifier: MIT */
/*
 * `walship status [-c FILE] [--json]`: ask the local walshipd for its status document
 * (CTL_STATUS, with CTL_F_JSON for --json) and print it to stdout as it comes.
 */
#ifndef WALSHIP_TOOLS_STATUS_H
#define WALSHIP_TOOLS_STATUS_H

#include <stdio.h>

#define STATUS_EXIT_OK 0
#define STATUS_EXIT_UNAVAILABLE 1 /* daemon unreachable or its reply is not CTL_OK */
#define STATUS_EXIT_USAGE 2 /* bad arguments or unusable config file */
#define STATUS_EXIT_LOST 3 /* printed; a registered replica lost WAL (spool overflow) */

/* Seconds to wait for the daemon's status reply. */
#define STATUS_TIMEOUT_MS (10 * 1000)

/* Where walship.ko shows the state (`walship status --sysfs`). */
#define STATUS_SYSFS_DIR "/sys/kernel/walship"

/* Run the subcommand; @argv[0] is "status".  Returns the process exit code. */
int status_main(int argc, char **argv);

/* Print the subcommand's usage to @out. */
void status_usage(FILE *out);

#endif /* WALSHIP_TOOLS_STATUS_H */
