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

#endif /* WALSHIP_TOOLS_STANDBY_H */
