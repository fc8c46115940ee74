/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL's synchronous_standby_names, parsed as the server parses it
 * (src/backend/replication/syncrep_scanner.l and syncrep_gram.y), so that `walship check`
 * can tell whether walshipd, connected as a standby under its application_name, is one
 * whose acknowledgement commits wait for:
 *
 *   s1, s2, "s 3"            FIRST 1 of the list (the list alone: priority order)
 *   2 (s1, s2, s3)           FIRST 2
 *   FIRST 2 (s1, s2, s3)     the first 2 connected in list order
 *   ANY 2 (s1, s2, s3)       any 2 of them (quorum)
 *   *                        any standby
 *   ''                       no synchronous standby at all
 *
 * Tokens: blanks separate; "quoted names" take "" for a quote; unquoted names are
 * letters, digits, `_`, `$` and bytes >= 0x80, not starting with a digit or `$`; a
 * number is also a name inside the list; FIRST and ANY are keywords in any case (quote
 * them to use them as names); `*` is the wildcard.  The server compares names with
 * application_name without regard to case, quoted or not, and so does
 * sync_standby_names_match().
 *
 * Written here rather than taken from a library: libpq does not expose the server's
 * parser, and the grammar is small.
 */
#ifndef WALSHIP_COMMON_SYNC_STANDBY_H
#define WALSHIP_COMMON_SYNC_STANDBY_H

#include <stdbool.h>

#define SYNC_STANDBY_MAX_NAMES 64
#define SYNC_STANDBY_NAME_MAX 128 /* bytes with the NUL; PostgreSQL's names have < 64 */

enum sync_standby_method {
	SYNC_STANDBY_FIRST, /* priority: the first num_sync connected, in list order */
	SYNC_STANDBY_ANY, /* quorum: any num_sync of the list */
};

struct sync_standby {
	enum sync_standby_method method;
	int num_sync; /* standbys a commit waits for; 0 when the setting is empty */
	unsigned int nnames;
	char names[SYNC_STANDBY_MAX_NAMES][SYNC_STANDBY_NAME_MAX];
};

/*
 * Parse @text, the value of synchronous_standby_names, into @out.  Returns 0 (an empty
 * or blank @text gives num_sync 0 and no names), -EINVAL when the server would refuse it
 * (a syntax error, or a number of standbys < 1), or -E2BIG when it has more names or
 * longer ones than the limits above.  Logs nothing: the caller says what was parsed.
 */
int sync_standby_parse(const char *text, struct sync_standby *out);

/* Does @ss name @application_name (without regard to case), or `*`? */
bool sync_standby_names_match(const struct sync_standby *ss, const char *application_name);

/* Does @ss name @application_name itself (without regard to case; `*` does not count)? */
bool sync_standby_names_name(const struct sync_standby *ss, const char *application_name);

#endif /* WALSHIP_COMMON_SYNC_STANDBY_H */
