/* SPDX-License-Identifier: MIT */
/*
 * `walship check [-c FILE] [-D PGDATA] [--pg-bin DIR] [--streaming]`: a preflight for one
 * host.  It reads PostgreSQL's settings from the data directory (postgresql.conf with its
 * include directives, then postgresql.auto.conf, as the server does: common/pgconf.h),
 * pg_controldata's output and walship's config; asks the local walshipd for its status;
 * and prints a checklist, one line per item:
 *
 *   PASS  wal_level          wal_level = replica
 *   FAIL  archive_command    archive_command does not call walship push
 *         hint: Set archive_command = 'walship push -c /etc/walship/walship.conf %p'.
 *
 * The host is a standby when PGDATA holds standby.signal or recovery.signal, else a
 * primary.  docs/security.md ("What walship check verifies") lists every item.
 */
#ifndef WALSHIP_TOOLS_CHECK_H
#define WALSHIP_TOOLS_CHECK_H

#include <stdio.h>

#define CHECK_EXIT_OK 0 /* every item passed (or was skipped) */
#define CHECK_EXIT_FAILED 1 /* at least one item failed */
#define CHECK_EXIT_USAGE 2 /* bad arguments */

/* Seconds to wait for the daemon's status reply. */
#define CHECK_TIMEOUT_MS (5 * 1000)

/* archive_dir space: warn when its file system fills within this horizon at the rate of
 * the WAL stored within the last CHECK_RATE_WINDOW_S (docs/operations.md, "Retention"), */
#define CHECK_FILL_HORIZON_S (24 * 3600)
#define CHECK_RATE_WINDOW_S 3600
/* A rate over less than this is not measured (a replica catching up on a backlog). */
#define CHECK_RATE_MIN_SPAN_S 600
/* ... and, with retention off, when less than this share (percent) of it is free. */
#define CHECK_LOW_FREE_PCT 10

/* Run the subcommand; @argv[0] is "check".  Returns the process exit code. */
int check_main(int argc, char **argv);

/* Print the subcommand's usage to @out. */
void check_usage(FILE *out);

#endif /* WALSHIP_TOOLS_CHECK_H */
