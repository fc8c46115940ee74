// SPDX-License-Identifier: MIT
/* Unit tests for daemon/common/pgconf.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/pgconf.h"
#include "log_capture.h"

#define SRC "/pgdata/postgresql.conf"

static char dir[] = "/tmp/pgconf_test.XXXXXX";

static int setup(void **state)
{
	(void)state;
	log_capture_start();
	strcpy(dir, "/tmp/pgconf_test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	log_capture_stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Write @len bytes of @text to @dir/@name (@len 0: strlen); returns the path (static). */
static const char *write_file_len(const char *name, const char *text, size_t len)
{
	static char path[PATH_MAX];
	FILE *out;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	out = fopen(path, "w");
	assert_non_null(out);
	assert_int_equal(fwrite(text, 1, len ? len : strlen(text), out), len ? len : strlen(text));
	assert_int_equal(fclose(out), 0);
	return path;
}

static const char *write_file(const char *name, const char *text)
{
	return write_file_len(name, text, 0);
}

static void assert_setting(const struct pgconf *conf, const char *name, const char *value,
			   const char *file, int line)
{
	const struct pgconf_setting *setting = pgconf_find(conf, name);

	if (!setting)
		fail_msg("no setting \"%s\"", name);
	assert_string_equal(setting->value, value);
	if (file)
		assert_string_equal(setting->file, file);
	if (line)
		assert_int_equal(setting->line, line);
}

/* The forms the server accepts: optional `=`, blanks, comments, quoted values. */
static void test_parse_bytes(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(pgconf_parse_bytes("1GB", 1 << 20, &v), 0);
	assert_true(v == UINT64_C(1) << 30);
	assert_int_equal(pgconf_parse_bytes("1024", 1 << 20, &v), 0); /* max_wal_size: MB */
	assert_true(v == UINT64_C(1) << 30);
	assert_int_equal(pgconf_parse_bytes("16MB", 1, &v), 0);
	assert_true(v == 16 << 20);
	assert_int_equal(pgconf_parse_bytes("8192kB", 1, &v), 0);
	assert_true(v == 8 << 20);
	assert_int_equal(pgconf_parse_bytes("0", 1, &v), 0);
	assert_true(v == 0);
	v = 7;
	assert_int_equal(pgconf_parse_bytes("", 1, &v), -EINVAL);
	assert_int_equal(pgconf_parse_bytes("1 GB", 1, &v), -EINVAL);
	assert_int_equal(pgconf_parse_bytes("1gb", 1, &v), -EINVAL);
	assert_int_equal(pgconf_parse_bytes("-1", 1, &v), -EINVAL);
	assert_int_equal(pgconf_parse_bytes("99999999999999999999", 1, &v), -EINVAL);
	assert_int_equal(pgconf_parse_bytes("99999999999TB", 1, &v), -EINVAL);
	assert_true(v == 7);
}

static void test_syntax(void **state)
{
	struct pgconf conf = { 0 };
	const char *text = "# a comment\n"
			   "\n"
			   "   \t\n"
			   "wal_level = replica\n"
			   "archive_mode on\n"
			   "max_wal_senders=4 # trailing comment\n"
			   "  shared_buffers   =   64MB\n"
			   "archive_command = 'cp %p /mnt/a b/%f'   # quoted, with a blank\n"
			   "restore_command = 'it''s'\n"
			   "log_line_prefix = '%m [%p] #1 '\n"
			   "custom.thing = 'x'\n"
			   "empty_one = ''\n"
			   "windows = crlf\r\n"
			   "windows_quoted = 'crlf'\r\n";

	(void)state;
	assert_int_equal(pgconf_parse_string(&conf, text, SRC), 0);
	assert_setting(&conf, "wal_level", "replica", SRC, 4);
	assert_setting(&conf, "archive_mode", "on", SRC, 5);
	assert_setting(&conf, "max_wal_senders", "4", SRC, 6);
	assert_setting(&conf, "shared_buffers", "64MB", SRC, 7);
	assert_setting(&conf, "archive_command", "cp %p /mnt/a b/%f", SRC, 8);
	assert_setting(&conf, "restore_command", "it's", SRC, 9);
	assert_setting(&conf, "log_line_prefix", "%m [%p] #1 ", SRC, 10);
	assert_setting(&conf, "custom.thing", "x", SRC, 11);
	assert_setting(&conf, "empty_one", "", SRC, 12);
	assert_setting(&conf, "windows", "crlf", SRC, 13);
	assert_setting(&conf, "windows_quoted", "crlf", SRC, 14);
	assert_int_equal(conf.count, 11);
	assert_string_equal(captured, "");
	pgconf_free(&conf);
	assert_int_equal(conf.count, 0);
	assert_null(conf.settings);
}

/* Backslash escapes as the server's DeescapeQuotedString(). */
static void test_escapes(void **state)
{
	struct pgconf conf = { 0 };
	const char *text = "a = 'one\\ttwo'\n"
			   "b = 'line\\nbreak\\r\\b\\f'\n"
			   "c = '\\101\\1012\\7'\n"
			   "d = 'quote\\'s and \\\\ and \\q'\n"
			   "e = 'trailing\\'\n";

	(void)state;
	assert_int_equal(pgconf_parse_string(&conf, text, SRC), 0);
	assert_string_equal(pgconf_value(&conf, "a", NULL), "one\ttwo");
	assert_string_equal(pgconf_value(&conf, "b", NULL), "line\nbreak\r\b\f");
	assert_string_equal(pgconf_value(&conf, "c", NULL), "AA2\a");
	assert_string_equal(pgconf_value(&conf, "d", NULL), "quote's and \\ and q");
	/* Unterminated (the server refuses it): the rest of the line. */
	assert_string_equal(pgconf_value(&conf, "e", NULL), "trailing'");
	pgconf_free(&conf);
}

/* The last assignment wins, names in any case; the first spelling stays. */
static void test_last_wins(void **state)
{
	struct pgconf conf = { 0 };
	const char *text = "Wal_Level = minimal\n"
			   "archive_mode = off\n"
			   "WAL_LEVEL = logical\n";

	(void)state;
	assert_int_equal(pgconf_parse_string(&conf, text, SRC), 0);
	assert_int_equal(conf.count, 2);
	assert_setting(&conf, "wal_level", "logical", SRC, 3);
	assert_string_equal(pgconf_find(&conf, "wal_level")->name, "Wal_Level");
	assert_null(pgconf_find(&conf, "archive_command"));
	assert_string_equal(pgconf_value(&conf, "archive_command", "dflt"), "dflt");
	pgconf_free(&conf);
}

/* Lines the server would refuse are skipped or read as far as they go, silently. */
static void test_bad_lines_ignored(void **state)
{
	struct pgconf conf = { 0 };
	const char *text = "= value\n"
			   "'quoted' = name\n"
			   "ok = yes\n";

	(void)state;
	assert_int_equal(pgconf_parse_string(&conf, text, SRC), 0);
	assert_int_equal(conf.count, 1);
	assert_setting(&conf, "ok", "yes", SRC, 3);
	assert_string_equal(captured, "");
	pgconf_free(&conf);
}

/* No limit on the length of a line, a name or a value (the old reader cut at 4 KiB). */
static void test_long_line(void **state)
{
	struct pgconf conf = { 0 };
	size_t vlen = 10000;
	char *text = malloc(vlen + 64);
	char *value = malloc(vlen + 1);

	(void)state;
	assert_non_null(text);
	assert_non_null(value);
	memset(value, 'v', vlen);
	value[vlen] = '\0';
	snprintf(text, vlen + 64, "long_one = '%s'\nnext = 1\n", value);
	assert_int_equal(pgconf_parse_string(&conf, text, SRC), 0);
	assert_string_equal(pgconf_value(&conf, "long_one", NULL), value);
	assert_setting(&conf, "next", "1", SRC, 2);
	free(text);
	free(value);
	pgconf_free(&conf);
}

/* include, include_if_exists and include_dir, relative to the including file. */
static void test_includes(void **state)
{
	struct pgconf conf = { 0 };
	char main_path[PATH_MAX], sub[PATH_MAX], path[PATH_MAX], nested[PATH_MAX];

	(void)state;
	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/conf.d/dir.conf", dir);
	assert_int_equal(mkdir(path, 0700), 0); /* a directory named *.conf: skipped */
	write_file("conf.d/b.conf", "order = b\nfrom_b = 1\n");
	write_file("conf.d/a.conf", "order = a\nfrom_a = 1\n");
	write_file("conf.d/B.conf", "upper = first\n"); /* 'B' < 'a' < 'b' in strcmp() */
	write_file("conf.d/.hidden.conf", "hidden = 1\n");
	write_file("conf.d/notes.txt", "txt = 1\n");
	write_file("extra.conf", "archive_command = 'from extra'\ninclude 'conf.d/nested.inc'\n");
	/* Relative to the directory of extra.conf, then of conf.d/nested.inc. */
	snprintf(nested, sizeof(nested), "%s",
		 write_file("conf.d/nested.inc", "nested = yes\ninclude 'nested2.inc'\n"));
	write_file("conf.d/nested2.inc", "nested2 = yes\n");
	snprintf(main_path, sizeof(main_path), "%s",
		 write_file("postgresql.conf", "archive_command = 'main'\n"
					       "include 'extra.conf'\n"
					       "include_if_exists 'missing.conf'\n"
					       "include_dir 'conf.d'\n"
					       "after = 1\n"));

	assert_int_equal(pgconf_read_file(&conf, main_path, false), 0);
	snprintf(path, sizeof(path), "%s/extra.conf", dir);
	assert_setting(&conf, "archive_command", "from extra", path, 1);
	assert_setting(&conf, "nested", "yes", nested, 1);
	assert_setting(&conf, "nested2", "yes", NULL, 1);
	snprintf(path, sizeof(path), "%s/conf.d/b.conf", dir);
	assert_setting(&conf, "order", "b", path, 1);
	assert_setting(&conf, "from_a", "1", NULL, 0);
	assert_setting(&conf, "from_b", "1", NULL, 0);
	assert_setting(&conf, "upper", "first", NULL, 0);
	assert_setting(&conf, "after", "1", main_path, 5);
	assert_null(pgconf_find(&conf, "hidden"));
	assert_null(pgconf_find(&conf, "txt"));
	assert_null(pgconf_find(&conf, "include"));
	assert_null(pgconf_find(&conf, "include_dir"));
	assert_string_equal(captured, "");
	pgconf_free(&conf);
}

/* A missing include is an error, logged once with the resolved path. */
static void test_missing_include(void **state)
{
	struct pgconf conf = { 0 };
	char want[PATH_MAX + 128];
	const char *path;

	(void)state;
	path = write_file("postgresql.conf", "a = 1\ninclude 'gone.conf'\nb = 2\n");
	assert_int_equal(pgconf_read_file(&conf, path, false), -ENOENT);
	snprintf(want, sizeof(want),
		 "could not open configuration file \"%s/gone.conf\": No such file or directory",
		 dir);
	assert_logged(want);
	assert_string_equal(pgconf_value(&conf, "a", ""), "1");
	assert_null(pgconf_find(&conf, "b"));
	pgconf_free(&conf);

	log_capture_clear();
	path = write_file("postgresql.conf", "include_dir 'nodir'\n");
	assert_int_equal(pgconf_read_file(&conf, path, false), -ENOENT);
	assert_logged("could not open configuration directory");
	pgconf_free(&conf);
}

/* A file that includes itself stops at PGCONF_MAX_DEPTH. */
static void test_nesting_depth(void **state)
{
	struct pgconf conf = { 0 };
	const char *path;

	(void)state;
	path = write_file("loop.conf", "x = 1\ninclude 'loop.conf'\n");
	assert_int_equal(pgconf_read_file(&conf, path, false), -ELOOP);
	assert_logged("maximum nesting depth exceeded");
	assert_string_equal(pgconf_value(&conf, "x", ""), "1");
	pgconf_free(&conf);
}

/* postgresql.auto.conf overrides postgresql.conf and may be absent; postgresql.conf not. */
static void test_data_dir(void **state)
{
	struct pgconf conf = { 0 };
	char auto_path[PATH_MAX];

	(void)state;
	assert_int_equal(pgconf_read_data_dir(&conf, dir), -ENOENT);
	assert_logged("postgresql.conf\": No such file or directory");
	pgconf_free(&conf);

	write_file("postgresql.conf", "wal_level = replica\narchive_mode = on\n");
	assert_int_equal(pgconf_read_data_dir(&conf, dir), 0);
	assert_string_equal(pgconf_value(&conf, "wal_level", ""), "replica");
	pgconf_free(&conf);

	snprintf(auto_path, sizeof(auto_path), "%s",
		 write_file("postgresql.auto.conf", "# Do not edit this file manually!\n"
						    "wal_level = 'minimal'\n"));
	assert_int_equal(pgconf_read_data_dir(&conf, dir), 0);
	assert_setting(&conf, "wal_level", "minimal", auto_path, 2);
	assert_string_equal(pgconf_value(&conf, "archive_mode", ""), "on");
	pgconf_free(&conf);
}

/* Debian's layout: the config file named on the server's command line (postmaster.opts,
 * as pg_ctlcluster starts it), auto.conf from the data directory, the command line's own
 * settings over both (the build before read only the data directory's postgresql.conf:
 * a FAIL, and nothing checked). */
static void test_data_dir_command_line(void **state)
{
	struct pgconf conf = { 0 };
	char etc[PATH_MAX], opts[PATH_MAX * 2];

	(void)state;
	snprintf(etc, sizeof(etc), "%s",
		 write_file("etc.conf", "wal_level = replica\narchive_mode = on\n"
					"hba_file = '/etc/postgresql/15/main/pg_hba.conf'\n"
					"archive_command = 'cp %p x'\n"));
	/* (as the postmaster writes it: each argument in double quotes, as it is; pg_ctl
	 * reads it back through the shell, where quoted pieces next to each other join) */
	snprintf(
		opts, sizeof(opts),
		"/usr/lib/postgresql/15/bin/postgres \"-D\" \"%s\" \"-c\" "
		"\"config_file=%s\" \"-c\" \"archive_command=walship push 'a' \"%%p\" x\" "
		"\"--max-wal-senders=7\" \"-cwal_level=logical\" \"-c\" \"log_line_prefix=a\\tb\"\n",
		dir, etc);
	write_file("postmaster.opts", opts);
	write_file("postgresql.auto.conf", "archive_mode = 'off'\nmax_wal_senders = 3\n");
	assert_int_equal(pgconf_read_data_dir(&conf, dir), 0);
	assert_string_equal(pgconf_value(&conf, "hba_file", ""),
			    "/etc/postgresql/15/main/pg_hba.conf");
	assert_string_equal(pgconf_value(&conf, "archive_mode", ""), "off");
	assert_string_equal(pgconf_value(&conf, "archive_command", ""), "walship push 'a' %p x");
	assert_string_equal(pgconf_value(&conf, "max_wal_senders", ""), "7");
	assert_string_equal(pgconf_value(&conf, "wal_level", ""), "logical");
	assert_string_equal(pgconf_value(&conf, "log_line_prefix", ""), "a\\tb");
	pgconf_free(&conf);
}

/* A NUL byte ends its line, not the file; include_if_exists of a missing file is quiet. */
static void test_nul_byte_and_missing_ok(void **state)
{
	struct pgconf conf = { 0 };
	static const char text[] = "a = 'x\0junk'\nb = 2\n";
	char path[PATH_MAX];

	(void)state;
	snprintf(path, sizeof(path), "%s", write_file_len("nul.conf", text, sizeof(text) - 1));
	assert_int_equal(pgconf_read_file(&conf, path, false), 0);
	assert_string_equal(pgconf_value(&conf, "a", ""), "x");
	assert_string_equal(pgconf_value(&conf, "b", ""), "2");
	pgconf_free(&conf);

	snprintf(path, sizeof(path), "%s/none.conf", dir);
	assert_int_equal(pgconf_read_file(&conf, path, true), 0);
	assert_int_equal(conf.count, 0);
	assert_string_equal(captured, "");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_parse_bytes),
		T(test_syntax),
		T(test_escapes),
		T(test_last_wins),
		T(test_bad_lines_ignored),
		T(test_long_line),
		T(test_includes),
		T(test_missing_include),
		T(test_nesting_depth),
		T(test_data_dir),
		T(test_data_dir_command_line),
		T(test_nul_byte_and_missing_ok),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
