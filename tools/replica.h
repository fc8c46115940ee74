/* SPDX-License-Identifier: MIT */
/*
 * `walship replica drop [-c FILE] NAME`: tell the primary's walshipd to forget a
 * registered replica and release the WAL its spool holds for it.
 */
#ifndef WALSHIP_TOOLS_REPLICA_H
#define WALSHIP_TOOLS_REPLICA_H

#include <stdio.h>

/* Run the subcommand; @argv[0] is "replica".  Returns the process exit code: 0 dropped,
 * 1 refused or daemon unreachable, 2 usage error. */
int replica_main(int argc, char **argv);

void replica_usage(FILE *out);

#endif /* WALSHIP_TOOLS_REPLICA_H */
