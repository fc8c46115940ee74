/* SPDX-License-Identifier: MIT */
/*
 * `walship push [-c FILE] [-v] PATH`: PostgreSQL's archive_command.
 *
 *   archive_command = 'walship push -c /etc/walship/walship.conf %p'
 *
 * Opens PATH (a WAL file; its basename must be a WAL name) and hands the open descriptor
 * to the local walshipd over the control socket (SCM_RIGHTS, op CTL_PUSH), then waits for
 * the daemon's verdict.  Exit 0 only when the daemon answers CTL_OK, i.e. the segment is
 * safe per the durability rules of docs/architecture.md; PostgreSQL keeps the segment and
 * retries on any other exit code.
 */
#ifndef WALSHIP_TOOLS_PUSH_H
#define WALSHIP_TOOLS_PUSH_H

#include <stdio.h>

#define PUSH_EXIT_SAFE 0 /* the daemon made the segment safe */
#define PUSH_EXIT_NOT_SAFE 1 /* not (yet) safe: daemon refused, failed, timed out, is down */
#define PUSH_EXIT_USAGE 2 /* bad arguments, not a WAL name, not a regular file, bad config */

/* Seconds added to push_timeout for the client's own wait on the daemon's reply. */
#define PUSH_CLIENT_GRACE_MS (30 * 1000)

/* Run the subcommand; @argv[0] is "push".  Returns the process exit code. */
int push_main(int argc, char **argv);

/* Print the subcommand's usage to @out. */
void push_usage(FILE *out);

#endif /* WALSHIP_TOOLS_PUSH_H */
