/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL's own settings, read from its configuration files the way the server reads
 * them (src/backend/utils/misc/guc-file.l), so that `walship check` (and later the
 * streaming roles) see the values the server runs with:
 *
 *   # a comment, to the end of the line
 *   wal_level = replica              the `=` is optional: `wal_level replica`
 *   archive_command = 'walship push -c ''/etc/walship/a b.conf'' %p'
 *   include 'extra.conf'             relative to the including file's directory
 *   include_if_exists 'local.conf'   a missing file is skipped
 *   include_dir 'conf.d'             its *.conf files (no dot files), in strcmp() order
 *
 * One setting per line: a name (letters, digits, `_`, and `.` for custom ones, compared
 * without regard to case), an optional `=`, and a value that is either a single-quoted
 * string or runs to the next blank or `#`.  In a quoted string `''` is a quote and a
 * backslash escapes as in the server: \b \f \n \r \t, \ooo (octal, up to three digits),
 * any other character stands for itself.  Includes nest at most PGCONF_MAX_DEPTH deep
 * (PostgreSQL's CONF_FILE_MAX_DEPTH).  The last assignment of a name wins, and the file
 * and line it came from are kept for messages.
 *
 * What it does not do: it does not check names or values against the server's list of
 * settings (it knows no defaults: the caller gives them), and it does not report syntax
 * errors (a line the server would refuse is read as far as it goes, or skipped when it
 * has no name): it reads files the server accepted.  It follows neither `config_file`
 * nor `data_directory` (it reads the files it is given, or those in one data directory),
 * and knows nothing of settings given on the server's command line or with ALTER
 * DATABASE / ALTER ROLE.
 *
 * Files are read whole (common/textfile, at most PGCONF_FILE_MAX bytes each); failures
 * are logged once, in PostgreSQL's words, and returned as -errno.
 */
#ifndef WALSHIP_COMMON_PGCONF_H
#define WALSHIP_COMMON_PGCONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#define PGCONF_MAX_DEPTH 10 /* include nesting, as PostgreSQL's CONF_FILE_MAX_DEPTH */
#define PGCONF_FILE_MAX (16 * 1024 * 1024) /* larger files are refused */

/* One setting: the last assignment of @name. */
struct pgconf_setting {
	char *name; /* as first spelled */
	char *value; /* quotes and escapes removed */
	char *file; /* the file of the last assignment, as opened (include paths resolved) */
	int line; /* its line, from 1 */
};

/* The settings read so far.  Zero-initialise it (`struct pgconf conf = { 0 };`). */
struct pgconf {
	struct pgconf_setting *settings;
	size_t count;
	size_t capacity;
};

/*
 * Read the server's configuration as it does: its config file (config_file on the command
 * line of its last start, @pgdata/postmaster.opts, as Debian's pg_ctlcluster passes it;
 * else @pgdata/postgresql.conf; for a Debian cluster /var/lib/postgresql/V/NAME without
 * either, /etc/postgresql/V/NAME/postgresql.conf) with its includes, then
 * @pgdata/postgresql.auto.conf if it exists (what ALTER SYSTEM writes), then the settings
 * of that command line (`-c name=value`): each overrides the ones before.  Returns 0, or
 * -errno (logged) when a file could not be read; the settings read until then stay in
 * @conf.
 */
int pgconf_read_data_dir(struct pgconf *conf, const char *pgdata);

/*
 * Read the configuration file @path and the files it includes into @conf.  A missing
 * @path is skipped when @missing_ok (as include_if_exists).  Returns 0, -ELOOP past
 * PGCONF_MAX_DEPTH, -ENOMEM, or -errno of a file that could not be read (logged).
 */
int pgconf_read_file(struct pgconf *conf, const char *path, bool missing_ok);

/*
 * Parse @text as the content of the file @source (named in the settings; includes are
 * resolved relative to its directory).  Returns as pgconf_read_file().
 */
int pgconf_parse_string(struct pgconf *conf, const char *text, const char *source);

/* The setting @name (any case), or NULL when no file assigned it. */
const struct pgconf_setting *pgconf_find(const struct pgconf *conf, const char *name);

/* The value of @name, or @dflt when no file assigned it. */
const char *pgconf_value(const struct pgconf *conf, const char *name, const char *dflt);

/* Free what @conf holds and leave it empty (zeroed). */
void pgconf_free(struct pgconf *conf);

/*
 * A size in PostgreSQL's memory units (B, kB, MB, GB, TB, factor 1024; no space), or a
 * bare number in @unit bytes (max_wal_size's unit is 1 MB, wal_segment_size's 1 B), into
 * *@bytes.  Returns 0, or -EINVAL for anything else (or an overflow).
 */
int pgconf_parse_bytes(const char *text, uint64_t unit, uint64_t *bytes);

#endif /* WALSHIP_COMMON_PGCONF_H */
