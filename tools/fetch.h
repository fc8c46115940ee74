/* SPDX-License-Identifier: MIT */
/*
 * `walship fetch [-c FILE] [-v] NAME DEST`: the standby's restore_command.
 *
 *   restore_command = 'walship fetch -c /etc/walship/walship.conf %f %p'
 *
 * Serves `archive_dir/NAME` (segments, .partial, .history, .backup) to DEST after
 * validating the whole file (wal_validate_fd()): copied into a temporary file in DEST's
 * directory, fsynced, renamed onto DEST, directory fsynced.  A segment not stored under
 * its name but being received (archive_dir/.incoming, store_find_incoming()) is served as
 * its durable prefix, CRC-checked and validated, followed by zeros to the segment size.
 *
 * PostgreSQL treats any exit code from 1 to 125 as "file not available": a standby then
 * retries (or streams), so a damaged file (exit 3) never stops a standby and is never
 * applied.  Codes above 125 and signals would abort recovery; fetch never uses them.
 */
#ifndef WALSHIP_TOOLS_FETCH_H
#define WALSHIP_TOOLS_FETCH_H

#include <stdio.h>

#define FETCH_EXIT_DELIVERED 0 /* DEST holds a validated copy */
#define FETCH_EXIT_ABSENT 1 /* NAME is not in the archive (yet); silent */
#define FETCH_EXIT_USAGE 2 /* bad arguments, not a WAL name, DEST a directory, bad config */
#define FETCH_EXIT_INVALID 3 /* NAME is in the archive but failed validation; not served */
#define FETCH_EXIT_IO 4 /* I/O or permission error reading the archive or writing DEST */

/* Run the subcommand; @argv[0] is "fetch".  Returns the process exit code. */
int fetch_main(int argc, char **argv);

/* Print the subcommand's usage to @out. */
void fetch_usage(FILE *out);

#endif /* WALSHIP_TOOLS_FETCH_H */
