/* SPDX-License-Identifier: MIT */
/*
 * `walship hold [-c FILE] NAME` and `walship release [-c FILE] NAME [--before TIME |
 * --upto LSN]`: hold and release a standby served on pg_listen (docs/operations.md,
 * "Delayed and held standbys"), through the replica's walshipd.
 */
#ifndef WALSHIP_TOOLS_STANDBY_H
#define WALSHIP_TOOLS_STANDBY_H

#include <stdint.h>
#include <stdio.h>

/* Run `hold` or `release` (@argv[0]).  Returns the exit code: 0 done, 1 refused or daemon
 * unreachable, 2 usage error. */
int hold_main(int argc, char **argv);
int release_main(int argc, char **argv);

void hold_usage(FILE *out);
void release_usage(FILE *out);

/*
 * Parse a time as PostgreSQL prints timestamptz or as ISO 8601: "YYYY-MM-DD HH:MM:SS[.frac]"
 * with ' ' or 'T' between, then an optional zone: Z, +HH, +HH:MM, +HHMM (none: UTC).
 * Sets *@unix_us.  Returns 0 or -EINVAL.
 */
int standby_parse_time(const char *text, int64_t *unix_us);

#endif /* WALSHIP_TOOLS_STANDBY_H */
