/* SPDX-License-Identifier: MIT */
/*
 * `walship password USER`: make the SCRAM-SHA-256 verifier of a standby's password, as
 * psql's \password does, and print the line to append to pg_password_file:
 *
 *   USER SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>
 *
 * On a terminal the password is asked twice without echo; otherwise the first line of
 * standard input is the password.  Nothing is stored and the password never appears in
 * the process's arguments.  Needs no config file and no daemon.
 */
#ifndef WALSHIP_TOOLS_PASSWORD_H
#define WALSHIP_TOOLS_PASSWORD_H

#include <stdio.h>

#define PASSWORD_EXIT_FAILED 1 /* the passwords differ, none given, or no randomness */

/* Run the subcommand; @argv[0] is "password".  Returns the process exit code. */
int password_main(int argc, char **argv);

/* Print the subcommand's usage to @out. */
void password_usage(FILE *out);

#endif /* WALSHIP_TOOLS_PASSWORD_H */
