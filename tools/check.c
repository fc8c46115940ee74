// SPDX-License-Identifier: MIT
/*
 * `walship check`: a preflight for one host.  See check.h and docs/security.md.
 *
 * Each item prints one line, PASS, FAIL, WARN or SKIP, with what was found, and a hint
 * after a FAIL or WARN.  Only FAIL changes the exit code: WARN is for what cannot be
 * decided here (a peer that is not reachable right now), SKIP for what does not apply.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/compiler.h"
#include "check.h"
#include "cli.h"
#include "client.h"
#include "common/log.h"
#include "common/pgconf.h"
#include "common/sync_standby.h"
#include "common/utf8.h"
#include "push.h"
#include "walship/control.h"
#include "walship/netlink.h"
#include "wal/name.h"
#include "wal/store.h"

struct check_run {
	const char *config_path;
	const char *pgdata;
	const char *pg_bin;
	bool streaming;
	bool standby;
	struct pgconf pg_settings; /* postgresql.conf and postgresql.auto.conf */
	int passed, failed, warned, skipped;
};

enum check_result { CHECK_PASS, CHECK_FAIL, CHECK_WARN, CHECK_SKIP };

/* Print one item; @hint (may be NULL) follows a FAIL or WARN. */
attr_printf(5, 6) static void check_item(struct check_run *run, enum check_result result,
					 const char *item, const char *hint, const char *fmt, ...)
{
	static const char *const labels[] = { "PASS", "FAIL", "WARN", "SKIP" };
	char what[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	/* Settings quoted here come from files a database superuser writes (ALTER SYSTEM):
	 * no control character reaches the terminal of the root running the check. */
	for (char *c = what; *c;) {
		size_t n = utf8_shown_len(c);

		if (n)
			c += n;
		else
			*c++ = '?';
	}
	printf("%s  %-24s %s\n", labels[result], item, what);
	if (hint && (result == CHECK_FAIL || result == CHECK_WARN))
		printf("      hint: %s\n", hint);
	switch (result) {
	case CHECK_PASS:
		run->passed++;
		break;
	case CHECK_FAIL:
		run->failed++;
		break;
	case CHECK_WARN:
		run->warned++;
		break;
	case CHECK_SKIP:
		run->skipped++;
		break;
	}
	fflush(stdout);
}

void check_usage(FILE *out)
{
	fprintf(out,
		"Usage: walship check [-c FILE] [-D PGDATA] [--pg-bin DIR] [--streaming]\n"
		"\n"
		"Check that this host's PostgreSQL and walshipd are set up to ship WAL, and\n"
		"print a checklist: PASS, FAIL (with a hint), WARN or SKIP per item.\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE  walship config file (default $%s, else %s)\n"
		"  -D, --pgdata=DIR   PostgreSQL data directory (default $PGDATA); without it,\n"
		"                     only walship's own items are checked\n"
		"  -B, --pg-bin=DIR   where pg_controldata is (default: PATH, then\n"
		"                     /usr/lib/postgresql/<version>/bin)\n"
		"  -s, --streaming    streaming is configured: also check max_wal_senders and a\n"
		"                     replication line in pg_hba.conf (primary)\n"
		"  -h, --help         show this help and exit\n"
		"\n"
		"Exit codes: 0 no item failed; 1 at least one failed; 2 usage error.\n",
		CLI_CONFIG_ENV, CONFIG_DEFAULT_PATH);
}

/* ---- postgresql.conf ------------------------------------------------------------- */

/* Where a setting came from, for messages: ` (file "x" line 3)` or ` (default)`. */
static const char *pg_setting_where(struct check_run *run, const char *name, char *buf, size_t len)
{
	const struct pgconf_setting *setting = pgconf_find(&run->pg_settings, name);

	if (!setting)
		snprintf(buf, len, " (default)");
	else
		snprintf(buf, len, " (file \"%s\" line %d)", setting->file, setting->line);
	return buf;
}

/* ---- pg_controldata ----------------------------------------------------------- */

struct controldata {
	bool ok;
	char version[16]; /* PG_VERSION */
	uint64_t system_identifier;
	uint64_t seg_size;
	uint64_t block_size;
	char cluster_state[64];
};

/*
 * pg_controldata @pgdata's output to read, run without a shell (the data directory's
 * name and its PG_VERSION are not ours to quote): @prog, or else "pg_controldata" on
 * PATH, or else @fallback.  LC_ALL=C, stderr with stdout.  NULL on failure (errno set);
 * else the child's pid in *@child, to wait for once the stream is closed.
 */
static FILE *controldata_open(const char *prog, const char *fallback, const char *pgdata,
			      pid_t *child)
{
	int fds[2];
	pid_t pid;
	FILE *in;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return NULL;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (pid == 0) {
		/* (the child's own copies: exec's arguments are not const) */
		char name[] = "pg_controldata", dir[PATH_MAX], bin[PATH_MAX];
		char *argv[] = { name, dir, NULL };

		snprintf(dir, sizeof(dir), "%s", pgdata);
		if (dup2(fds[1], STDOUT_FILENO) < 0 || dup2(fds[1], STDERR_FILENO) < 0)
			_exit(127);
		setenv("LC_ALL", "C", 1);
		if (prog) {
			snprintf(bin, sizeof(bin), "%s", prog);
			execv(bin, argv);
		} else {
			/* not on PATH, or one there this user may not run (EACCES): Debian's */
			execvp(name, argv);
			snprintf(bin, sizeof(bin), "%s", fallback);
			execv(bin, argv);
		}
		fprintf(stderr, "could not run pg_controldata: %s\n", strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	in = fdopen(fds[0], "r");
	if (!in) {
		close(fds[0]);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return NULL;
	}
	*child = pid;
	return in;
}

static void check_controldata(struct check_run *run, struct controldata *cd)
{
	char path[PATH_MAX], line[512];
	const char *prog = "pg_controldata";
	FILE *in;
	pid_t child;
	int status = -1;

	snprintf(path, sizeof(path), "%s/PG_VERSION", run->pgdata);
	in = fopen(path, "re");
	if (!in || !fgets(cd->version, sizeof(cd->version), in)) {
		check_item(run, CHECK_FAIL, "data directory",
			   "Give the data directory of this host's cluster with -D PGDATA.",
			   "could not read \"%s\": %m", path);
		if (in)
			fclose(in);
		return;
	}
	fclose(in);
	cd->version[strcspn(cd->version, "\n")] = '\0';
	/* PG_VERSION names the folder of Debian's binaries: digits (and a dot) only, for it
	 * is written by whoever runs as postgres (and not printed otherwise: it may hold
	 * terminal controls). */
	if (!cd->version[0] || strspn(cd->version, "0123456789.") != strlen(cd->version)) {
		check_item(run, CHECK_FAIL, "data directory", NULL,
			   "\"%s\" does not hold a PostgreSQL version", path);
		cd->version[0] = '\0';
		return;
	}
	check_item(run, CHECK_PASS, "data directory", NULL, "%s: PostgreSQL %s, %s", run->pgdata,
		   cd->version,
		   run->standby ? "standby (standby.signal or recovery.signal)" :
				  "primary (no standby.signal)");
	if (run->pg_bin)
		snprintf(path, sizeof(path), "%s/pg_controldata", run->pg_bin);
	else
		snprintf(path, sizeof(path), "/usr/lib/postgresql/%s/bin/pg_controldata",
			 cd->version);
	prog = run->pg_bin ? path : "pg_controldata";
	in = controldata_open(run->pg_bin ? path : NULL, path, run->pgdata, &child);
	if (!in) {
		check_item(run, CHECK_FAIL, "pg_controldata", NULL, "could not run \"%s\": %m",
			   prog);
		return;
	}
	while (fgets(line, sizeof(line), in)) {
		char *colon = strchr(line, ':');
		char *value;

		if (!colon)
			continue;
		*colon = '\0';
		value = colon + 1;
		while (*value == ' ')
			value++;
		value[strcspn(value, "\n")] = '\0';
		if (strcmp(line, "Database system identifier") == 0)
			cd->system_identifier = strtoull(value, NULL, 10);
		else if (strcmp(line, "Bytes per WAL segment") == 0)
			cd->seg_size = strtoull(value, NULL, 10);
		else if (strcmp(line, "WAL block size") == 0)
			cd->block_size = strtoull(value, NULL, 10);
		else if (strcmp(line, "Database cluster state") == 0)
			snprintf(cd->cluster_state, sizeof(cd->cluster_state), "%s", value);
	}
	fclose(in);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		; /* (another failure leaves status -1: a failure) */
	if (status != 0 || cd->system_identifier == 0) {
		check_item(run, CHECK_FAIL, "pg_controldata",
			   "Run it by hand to see why; give its directory with --pg-bin DIR.",
			   "\"%s %s\" failed", prog, run->pgdata);
		return;
	}
	cd->ok = true;
	check_item(run, CHECK_PASS, "pg_controldata", NULL,
		   "system identifier %" PRIu64 ", WAL segment %" PRIu64 " bytes, block %" PRIu64
		   " bytes, state \"%s\"",
		   cd->system_identifier, cd->seg_size, cd->block_size, cd->cluster_state);
}

/* ---- PostgreSQL settings ------------------------------------------------------- */

/*
 * What PostgreSQL's shell (/bin/sh -c) makes of archive_command or restore_command, cut
 * into words as far as it matters here: quotes and backslashes removed, each control
 * operator (`;`, `&`, `&&`, `|`, `||`, `(`, `)`, a newline) a word of its own, and the
 * redirections (`>file`, `2>&1`) left out with their targets.  Not a shell: `$VAR` and
 * `$(...)` stay as they are written, which is enough to tell walship's words apart.  Our
 * own splitter: glibc's wordexp(3) refuses the control operators (WRDE_BADCHAR), which
 * are what must be seen here, and would run `$(...)` without WRDE_NOCMD.
 */
struct shell_word {
	const char *text;
	bool op; /* a control operator */
};

#define SHELL_MAX_WORDS 64

struct shell_words {
	struct shell_word words[SHELL_MAX_WORDS];
	int n;
	char *buf; /* the words' text, NUL after each */
};

static bool shell_op_char(char c)
{
	return c == ';' || c == '&' || c == '|' || c == '(' || c == ')' || c == '\n';
}

/* Split @command into @sw (free sw->buf after).  Returns 0, or -E2BIG past SHELL_MAX_WORDS
 * words, -EINVAL for an unterminated quote, -ENOMEM. */
static int shell_split(const char *command, struct shell_words *sw)
{
	const char *p = command;
	char *out;
	bool redirect = false; /* the next word is a redirection's target */

	sw->n = 0;
	sw->buf = malloc(2 * strlen(command) + 2);
	if (!sw->buf)
		return -ENOMEM;
	out = sw->buf;
	for (;;) {
		const char *word = out;
		bool quoted = false;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			return 0;
		if (shell_op_char(*p)) {
			/* `&&` and `||` are one operator; a newline separates as `;` does */
			*out++ = *p == '\n' ? ';' : *p;
			if ((*p == '&' || *p == '|') && p[1] == *p)
				*out++ = *++p;
			p++;
			*out++ = '\0';
			redirect = false;
		} else if (*p == '<' || *p == '>') {
			/* `>`, `>>`, `>&`, `>|`, `<`, `<<`, `<&`, `<>`: its target follows */
			p++;
			if (*p == '>' || *p == '<' || *p == '&' || *p == '|')
				p++;
			redirect = true;
			continue;
		} else {
			for (; *p && *p != ' ' && *p != '\t' && !shell_op_char(*p) && *p != '<' &&
			       *p != '>';
			     p++) {
				if (*p == '\\' && p[1]) {
					*out++ = *++p;
				} else if (*p == '\'' || *p == '"') {
					char quote = *p++;

					for (; *p && *p != quote; p++) {
						if (quote == '"' && *p == '\\' && p[1] &&
						    strchr("\"\\$`", p[1]))
							p++;
						*out++ = *p;
					}
					if (!*p)
						return -EINVAL;
					quoted = true;
				} else {
					*out++ = *p;
				}
			}
			*out++ = '\0';
			/* the 2 of 2>&1 is part of the redirection, as is its target */
			if (!quoted && (*p == '<' || *p == '>') &&
			    strspn(word, "0123456789") == strlen(word))
				continue;
			if (redirect) {
				redirect = false;
				continue;
			}
		}
		if (sw->n == SHELL_MAX_WORDS)
			return -E2BIG;
		sw->words[sw->n].text = word;
		sw->words[sw->n].op = shell_op_char(word[0]);
		sw->n++;
	}
}

/* Whether @path, as a command that PostgreSQL runs in @pgdata names it, is the file
 * @file (as this process names it): the same absolute path, or the same inode (a relative
 * path, which PostgreSQL takes from @pgdata and we from our own folder, a symbolic
 * link). */
static bool same_file(const char *path, const char *file, const char *pgdata)
{
	char buf[PATH_MAX * 2];
	struct stat a, b;

	if (path[0] == '/' && strcmp(path, file) == 0)
		return true;
	if (path[0] != '/' && pgdata) {
		snprintf(buf, sizeof(buf), "%s/%s", pgdata, path);
		path = buf;
	}
	return stat(path, &a) == 0 && stat(file, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* The pid of the running postmaster of run->pgdata (postmaster.pid's first line, checked
 * to be a postgres program running in that data directory: a stale file's pid may be
 * another program's now, or another cluster's server; its program may have been
 * replaced by an upgrade since it started), or 0. */
static long postmaster_pid(const struct check_run *run)
{
	char path[PATH_MAX + 32], buf[PATH_MAX];
	long pid = 0;
	ssize_t n;
	FILE *in;

	if (!run->pgdata)
		return 0;
	snprintf(path, sizeof(path), "%s/postmaster.pid", run->pgdata);
	in = fopen(path, "re");
	if (!in)
		return 0;
	if (fscanf(in, "%ld", &pid) != 1)
		pid = 0;
	fclose(in);
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	if (n > 10 && !strcmp(buf + n - 10, " (deleted)"))
		buf[n - 10] = '\0';
	if (strcmp(basename(buf), "postgres") != 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/cwd", pid);
	return same_file(path, run->pgdata, NULL) ? pid : 0;
}

/*
 * The value of @name in the environment of the running postmaster of run->pgdata, into
 * @out ("" when unset).  Returns 1 when found, 0 when the environment was read and lacks
 * it, -1 when it cannot be read (no server running, or not this user's to read).
 */
static int postmaster_env(const struct check_run *run, const char *name, char *out, size_t len)
{
	char path[64], buf[65536];
	size_t n, name_len = strlen(name);
	long pid = postmaster_pid(run);
	FILE *in;

	out[0] = '\0';
	if (!pid)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/environ", pid);
	in = fopen(path, "re");
	if (!in)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, in);
	fclose(in);
	if (n == 0)
		return -1; /* (a process of another user reads as empty) */
	buf[n] = '\0';
	for (size_t at = 0; at < n; at += strlen(buf + at) + 1) {
		if (!strncmp(buf + at, name, name_len) && buf[at + name_len] == '=') {
			snprintf(out, len, "%s", buf + at + name_len + 1);
			return 1;
		}
	}
	return 0;
}

/* A VAR=value word, which sets the environment of the command after it. */
static bool shell_assignment(const char *word)
{
	size_t name =
		strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");

	return name > 0 && word[name] == '=' && !(word[0] >= '0' && word[0] <= '9');
}

enum walship_call {
	CALL_NONE, /* no walship SUB with exactly the arguments asked */
	CALL_OK, /* with this config */
	CALL_OTHER_CONFIG, /* with another config file */
};

/*
 * Does @command run walship's @sub (push, fetch) with the arguments @args ("%p", "%f %p")
 * and this config?  Compared word by word, as `walship` parses them (getopt_long: options
 * anywhere, -c FILE, -cFILE, --config[=]FILE and its abbreviations, -v): `-c
 * /etc/walship/walship.conf.old` names another file than /etc/walship/walship.conf, and
 * `walship push %p.tmp` is not `%p`.  The -c given goes to @config ("" without one); the
 * first control operator of @command (`||`, `;`, ...) to @op ("" when there is none): the
 * caller decides what that means.
 */
static enum walship_call command_calls_walship(struct check_run *run, const char *command,
					       const char *sub, const char *args, char *config,
					       size_t config_len, char *op, size_t op_len)
{
	enum walship_call call = CALL_NONE;
	struct shell_words sw;

	config[0] = '\0';
	op[0] = '\0';
	if (shell_split(command, &sw) < 0) {
		free(sw.buf);
		return CALL_NONE;
	}
	for (int i = 0; i < sw.n; i++)
		if (sw.words[i].op && !op[0])
			snprintf(op, op_len, "%s", sw.words[i].text);
	const char *env_config = NULL; /* WALSHIP_CONFIG=FILE before the command */

	for (int i = 0, command_word = 1; i + 1 < sw.n && call == CALL_NONE; i++) {
		const char *w = sw.words[i].text;
		const char *base = strrchr(w, '/');
		const char *given = NULL;
		char positional[64] = "";
		bool bad = false, options = true;
		int j;

		/* walship must be what runs, not an argument (`echo walship push %p`): the
		 * first word of a command, after `exec`, `env` or VAR=value words */
		if (sw.words[i].op) {
			command_word = 1;
			env_config = NULL;
			continue;
		}
		if (command_word &&
		    (strcmp(w, "exec") == 0 || strcmp(w, "env") == 0 || shell_assignment(w))) {
			/* WALSHIP_CONFIG=FILE before it: the config it reads without -c */
			if (strncmp(w, CLI_CONFIG_ENV "=", strlen(CLI_CONFIG_ENV) + 1) == 0)
				env_config = w + strlen(CLI_CONFIG_ENV) + 1;
			continue;
		}
		base = base ? base + 1 : w;
		if (!command_word || strcmp(base, "walship") != 0 ||
		    strcmp(sw.words[i + 1].text, sub) != 0) {
			command_word = 0;
			env_config = NULL;
			continue;
		}
		command_word = 0;
		for (j = i + 2; j < sw.n && !sw.words[j].op && !bad; j++) {
			const char *next =
				j + 1 < sw.n && !sw.words[j + 1].op ? sw.words[j + 1].text : NULL;

			w = sw.words[j].text;

			if (options && strcmp(w, "--") == 0) {
				options = false;
			} else if (options && strncmp(w, "--", 2) == 0) {
				size_t len = strcspn(w + 2, "=");

				if (len && strncmp(w + 2, "config", len) == 0 && len <= 6) {
					given = w[2 + len] == '=' ? w + 3 + len : next;
					j += w[2 + len] == '=' ? 0 : 1;
					bad = !given;
				} else {
					/* --verbose alone; --help or an unknown option: no push */
					bad = !(len && len <= 7 && !w[2 + len] &&
						strncmp(w + 2, "verbose", len) == 0);
				}
			} else if (options && w[0] == '-' && w[1]) {
				for (const char *c = w + 1; *c && !bad; c++) {
					if (*c == 'c') {
						given = c[1] ? c + 1 : next;
						j += c[1] ? 0 : 1;
						bad = !given;
						break;
					}
					bad = *c != 'v';
				}
			} else if (strlen(positional) + strlen(w) + 2 < sizeof(positional)) {
				snprintf(positional + strlen(positional),
					 sizeof(positional) - strlen(positional), "%s%s",
					 positional[0] ? " " : "", w);
			} else {
				bad = true;
			}
		}
		if (bad || strcmp(positional, args) != 0)
			continue;
		/* With a -c, it must name this config; without, walship reads the default path
		 * (or $WALSHIP_CONFIG, which PostgreSQL's environment may set as ours does). */
		if (given) {
			snprintf(config, config_len, "%s", given);
			call = same_file(given, run->config_path, run->pgdata) ? CALL_OK :
										 CALL_OTHER_CONFIG;
		} else if (env_config) {
			/* set by the command itself: that file, as -c would name it (empty:
			 * unset, the default file) */
			const char *file = env_config[0] ? env_config : CONFIG_DEFAULT_PATH;

			snprintf(config, config_len, "%s", file);
			call = same_file(file, run->config_path, run->pgdata) ? CALL_OK :
										CALL_OTHER_CONFIG;
		} else {
			char pm_env[PATH_MAX];
			const char *file = CONFIG_DEFAULT_PATH;
			int known = postmaster_env(run, CLI_CONFIG_ENV, pm_env, sizeof(pm_env));

			/* The postmaster's environment, which the archiver's commands inherit,
			 * when it can be read (running, and this user may); else this
			 * shell's, if it names this config (an empty one is not set, for
			 * walship as for us). */
			if (known > 0 && pm_env[0])
				file = pm_env; /* (relative: to the data directory, where the
						* archiver runs) */
			else if (known < 0 && getenv(CLI_CONFIG_ENV) && getenv(CLI_CONFIG_ENV)[0] &&
				 same_file(getenv(CLI_CONFIG_ENV), run->config_path, NULL))
				file = run->config_path;
			call = same_file(file, run->config_path, run->pgdata) ? CALL_OK :
										CALL_OTHER_CONFIG;
		}
	}
	free(sw.buf);
	return call;
}

static bool setting_on(const char *value)
{
	return strcasecmp(value, "on") == 0 || strcasecmp(value, "true") == 0 ||
	       strcasecmp(value, "yes") == 0 || strcasecmp(value, "1") == 0 ||
	       strcasecmp(value, "always") == 0;
}

/* The next field of a pg_hba.conf line at *@at into @out (quotes kept: a quoted keyword
 * is a name), or false at the line's end. */
static bool hba_field(char **at, char *out, size_t len)
{
	char *p = *at + strspn(*at, " \t\r\n");
	size_t n = 0;
	bool quoted = false;

	if (!*p)
		return false;
	while (*p && (quoted || !strchr(" \t\r\n", *p))) {
		if (*p == '"')
			quoted = !quoted;
		if (n + 1 < len)
			out[n++] = *p;
		p++;
	}
	out[n] = '\0';
	*at = p;
	return true;
}

/* Whether the comma list @list names the keyword @word (unquoted). */
static bool hba_list_has(char *list, const char *word)
{
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
		if (!strcmp(tok, word))
			return true;
	return false;
}

/* The kinds of connection a pg_hba.conf line matches: over the UNIX socket, IPv4, IPv6
 * (a host name, all, samehost, samenet: both). */
#define HBA_LOCAL 1u
#define HBA_IPV4 2u
#define HBA_IPV6 4u

static unsigned int hba_kinds(bool local, const char *addr)
{
	if (local)
		return HBA_LOCAL;
	if (strchr(addr, ':'))
		return HBA_IPV6;
	if (addr[0] >= '0' && addr[0] <= '9' && strchr(addr, '.'))
		return HBA_IPV4;
	return HBA_IPV4 | HBA_IPV6;
}

/*
 * Whether pg_hba.conf lets a replication connection in: a `host`/`hostssl`/`hostnossl`/
 * `local` line whose database is the keyword replication (quoted, "replication" is a
 * database of that name) and whose method is not reject, not behind lines that reject
 * every replication connection of its kinds (`host replication all all reject`, or
 * 0.0.0.0/0 for IPv4, ::/0 for IPv6; `local replication all reject`): PostgreSQL takes
 * the first line that matches.  Returns 1, 0, or -errno.
 */
static int hba_has_replication_line(const char *path)
{
	char type[32], database[256], user[256], addr[256], field[256], *line = NULL;
	unsigned int shut = 0;
	size_t cap = 0;
	int found = 0;
	FILE *in = fopen(path, "re");

	if (!in)
		return -errno;
	/* (whole lines, however long: a tail read as a line of its own would count) */
	while (!found && getline(&line, &cap, in) >= 0) {
		char *hash = strchr(line, '#'), *at = line, method[64] = "";
		unsigned int kinds;
		bool local;

		if (hash)
			*hash = '\0';
		if (!hba_field(&at, type, sizeof(type)) ||
		    !hba_field(&at, database, sizeof(database)) ||
		    !hba_field(&at, user, sizeof(user)))
			continue;
		local = !strcmp(type, "local");
		if (!local && strncmp(type, "host", 4) != 0)
			continue;
		addr[0] = '\0';
		if (!local && !hba_field(&at, addr, sizeof(addr)))
			continue;
		/* the method: the next field not an address mask; options after it have a '=' */
		while (hba_field(&at, field, sizeof(field))) {
			if (strchr(field, '='))
				break;
			snprintf(method, sizeof(method), "%s", field);
			if (!strchr(field, '.') && !strchr(field, ':'))
				break;
		}
		if (!hba_list_has(database, "replication"))
			continue;
		kinds = hba_kinds(local, addr);
		if (!strcmp(method, "reject")) {
			/* every replication connection of its kinds: all users, all addresses
			 * of a family (0.0.0.0/0 is IPv4's alone, ::/0 IPv6's) */
			if (!strcmp(user, "all") &&
			    (local || (!strcmp(type, "host") &&
				       (!strcmp(addr, "all") || !strcmp(addr, "0.0.0.0/0") ||
					!strcmp(addr, "::/0") || !strcmp(addr, "::0/0")))))
				shut |= kinds;
			continue;
		}
		if (kinds & ~shut)
			found = 1;
	}
	free(line);
	fclose(in);
	return found;
}

/* For a message: the config a walship call reads when it is not this one (@config: its -c,
 * "" without). */
static const char *other_config_words(const char *config, char *buf, size_t len)
{
	if (config[0])
		snprintf(buf, len, "with -c \"%s\"", config);
	else
		snprintf(buf, len, "without -c, so with \"%s\"", CONFIG_DEFAULT_PATH);
	return buf;
}

/*
 * The module's walship.timeout against walshipd's push_timeout: walshipd answers a push
 * within push_timeout, and `walship push` waits PUSH_CLIENT_GRACE_MS longer; a shorter
 * wait in the module fails pushes that walship push would see through (safe: PostgreSQL
 * retries, and the retry takes the push over), counted as failures in pg_stat_archiver.
 */
static void check_module_timeout(struct check_run *run, const struct config *cfg)
{
	const char *text = pgconf_value(&run->pg_settings, "walship.timeout", NULL);
	long long wait_ms = (long long)CONFIG_DEFAULT_PUSH_TIMEOUT_S * 1000 + PUSH_CLIENT_GRACE_MS;
	long long need_ms;
	char where[PATH_MAX + 64], hint[160];

	if (!cfg || (text && !config_parse_duration(text, &wait_ms)))
		return; /* PostgreSQL refuses a value it cannot read, and says so */
	need_ms = (long long)cfg->push_timeout_ms + PUSH_CLIENT_GRACE_MS;
	if (wait_ms >= need_ms)
		return;
	pg_setting_where(run, "walship.timeout", where, sizeof(where));
	snprintf(hint, sizeof(hint),
		 "Set walship.timeout = '%llds' (push_timeout and %d s) and "
		 "reload PostgreSQL.",
		 (need_ms + 999) / 1000, PUSH_CLIENT_GRACE_MS / 1000);
	check_item(run, CHECK_WARN, "walship.timeout", hint,
		   "walship.timeout = %lld ms%s is shorter than push_timeout (%d ms) and %d s: a "
		   "push walshipd answers late fails in the module, and PostgreSQL retries it",
		   wait_ms, where, cfg->push_timeout_ms, PUSH_CLIENT_GRACE_MS / 1000);
}

/*
 * archive_library set: it replaces archive_command, and passes only when it is walship's
 * module (docs/operations.md, "The archive module instead of archive_command") talking to
 * this config's walshipd: its walship.socket (default the daemon's default socket) is the
 * config's socket.  @cfg: NULL when the config did not load.
 */
static void check_archive_library(struct check_run *run, const struct config *cfg,
				  const struct controldata *cd, const char *library,
				  const char *command, const char *hint)
{
	static const char module[] = "walship_archive";
	const char *base = strrchr(library, '/');
	const char *socket =
		pgconf_value(&run->pg_settings, "walship.socket", CONFIG_DEFAULT_SOCKET);
	char where[PATH_MAX + 64], socket_where[PATH_MAX + 64], socket_hint[PATH_MAX + 128];
	int version = atoi(cd->version);
	size_t len;

	pg_setting_where(run, "archive_library", where, sizeof(where));
	pg_setting_where(run, "walship.socket", socket_where, sizeof(socket_where));
	/* PostgreSQL loads 'walship_archive', '$libdir/walship_archive' or a path, with or
	 * without .so */
	base = base ? base + 1 : library;
	len = strlen(base);
	if (len > 3 && strcmp(base + len - 3, ".so") == 0)
		len -= 3;
	if (len != strlen(module) || strncmp(base, module, len) != 0) {
		check_item(run, CHECK_FAIL, "archive_library", hint,
			   "archive_library = '%s'%s is not walship's module (%s), and PostgreSQL "
			   "archives with it instead of archive_command",
			   library, where, module);
		return;
	}
	/* Built for PostgreSQL 15's module API alone (16 changed it): another major version
	 * refuses to load it, and its archiver then archives nothing. */
	if (version != 0 && version != 15) {
		check_item(run, CHECK_FAIL, "archive_library",
			   "Use archive_command = 'walship push %%p' (and archive_library = '') "
			   "with this PostgreSQL, and reload it.",
			   "archive_library = '%s'%s: walship's module is built for PostgreSQL 15 "
			   "alone, and PostgreSQL %s cannot load it (nothing would be archived)",
			   library, where, cd->version);
		return;
	}
	/* PostgreSQL 16 and later refuse to archive with both set (version 0: unknown) */
	if (command[0] && (version == 0 || version >= 16)) {
		check_item(run, CHECK_FAIL, "archive_library",
			   "Leave archive_command unset (or '') with archive_library, and reload "
			   "PostgreSQL.",
			   "archive_library = '%s'%s and archive_command = '%s' are both set: "
			   "PostgreSQL %s refuses to archive",
			   library, where, command, version ? cd->version : "16 and later");
		return;
	}
	if (cfg && !same_file(socket, cfg->socket_path, run->pgdata)) {
		snprintf(socket_hint, sizeof(socket_hint),
			 "Set walship.socket = '%s' (this config's socket) and reload PostgreSQL.",
			 cfg->socket_path);
		check_item(run, CHECK_FAIL, "archive_library", socket_hint,
			   "archive_library = '%s'%s pushes to walship.socket = '%s'%s, not to "
			   "this config's socket \"%s\"",
			   library, where, socket, socket_where, cfg->socket_path);
		return;
	}
	check_item(run, CHECK_PASS, "archive_library", NULL,
		   "archive_library = '%s'%s: walship's module, walship.socket = '%s'%s%s", library,
		   where, socket, socket_where, command[0] ? " (archive_command is not used)" : "");
	check_module_timeout(run, cfg);
}

/*
 * On a primary: what PostgreSQL archives with.  archive_command must be walship push with
 * this config and nothing else: PostgreSQL recycles a segment when the whole command exits
 * 0, so `walship push %p || true` (or `;`, `&&`, `|`, `&` around it) could report a segment
 * archived that walshipd never made safe.
 */
static void check_archiver(struct check_run *run, const struct config *cfg,
			   const struct controldata *cd)
{
	const char *library = pgconf_value(&run->pg_settings, "archive_library", "");
	const char *command = pgconf_value(&run->pg_settings, "archive_command", "");
	char where[PATH_MAX + 64], hint[PATH_MAX + 256], config[PATH_MAX], words[PATH_MAX + 64];
	char op[4];
	enum walship_call call;

	snprintf(hint, sizeof(hint),
		 "Set archive_command = 'exec walship push -c %s %%p' alone (and no "
		 "archive_library), or archive_library = 'walship_archive' (docs/operations.md).",
		 run->config_path);
	if (library[0] != '\0') {
		check_archive_library(run, cfg, cd, library, command, hint);
		return;
	}
	pg_setting_where(run, "archive_command", where, sizeof(where));
	call = command_calls_walship(run, command, "push", "%p", config, sizeof(config), op,
				     sizeof(op));
	if (call != CALL_NONE && op[0])
		check_item(run, CHECK_FAIL, "archive_command", hint,
			   "archive_command = '%s'%s joins walship push to another command with "
			   "`%s`: PostgreSQL takes the exit status of the whole, and may recycle a "
			   "segment walshipd did not make safe",
			   command, where, op);
	else if (call == CALL_OK)
		check_item(run, CHECK_PASS, "archive_command", NULL, "archive_command = '%s'%s",
			   command, where);
	else if (call == CALL_OTHER_CONFIG)
		check_item(run, CHECK_FAIL, "archive_command", hint,
			   "archive_command = '%s'%s calls walship push %s, not \"%s\"", command,
			   where, other_config_words(config, words, sizeof(words)),
			   run->config_path);
	else
		check_item(run, CHECK_FAIL, "archive_command", hint,
			   "archive_command = '%s'%s does not call walship push %%p", command,
			   where);
}

static void check_pg_settings(struct check_run *run, const struct config *cfg,
			      const struct controldata *cd)
{
	char path[PATH_MAX], where[PATH_MAX + 64], hint[PATH_MAX + 256], config[PATH_MAX];
	char words[PATH_MAX + 64], op[4];
	const char *wal_level, *value;
	enum walship_call call;
	int ret;

	ret = pgconf_read_data_dir(&run->pg_settings, run->pgdata);
	if (ret < 0) {
		check_item(run, CHECK_FAIL, "postgresql.conf", NULL, "could not read the settings");
		return;
	}

	wal_level = pgconf_value(&run->pg_settings, "wal_level", "replica");
	pg_setting_where(run, "wal_level", where, sizeof(where));
	if (strcasecmp(wal_level, "replica") == 0 || strcasecmp(wal_level, "logical") == 0 ||
	    strcasecmp(wal_level, "archive") == 0 || strcasecmp(wal_level, "hot_standby") == 0)
		check_item(run, CHECK_PASS, "wal_level", NULL, "wal_level = %s%s", wal_level,
			   where);
	else
		check_item(
			run, CHECK_FAIL, "wal_level",
			"Set wal_level = replica and restart PostgreSQL: minimal leaves out what "
			"a replica needs to replay.",
			"wal_level = %s%s, at least replica is needed", wal_level, where);

	if (!run->standby) {
		value = pgconf_value(&run->pg_settings, "archive_mode", "off");
		pg_setting_where(run, "archive_mode", where, sizeof(where));
		if (setting_on(value))
			check_item(run, CHECK_PASS, "archive_mode", NULL, "archive_mode = %s%s",
				   value, where);
		else
			check_item(run, CHECK_FAIL, "archive_mode",
				   "Set archive_mode = on and restart PostgreSQL.",
				   "archive_mode = %s%s: completed segments are not handed to "
				   "archive_command",
				   value, where);

		check_archiver(run, cfg, cd);
	} else {
		check_item(run, CHECK_SKIP, "archive_mode", NULL, "standby: archiving not needed");
		snprintf(hint, sizeof(hint),
			 "Set restore_command = 'walship fetch -c %s %%f %%p' and restart "
			 "PostgreSQL.",
			 run->config_path);
		value = pgconf_value(&run->pg_settings, "restore_command", "");
		pg_setting_where(run, "restore_command", where, sizeof(where));
		/* A fallback after walship fetch (`|| cp ...`) is fine: PostgreSQL checks that
		 * the file is there after an exit 0, so nothing is refused for an operator.
		 * Any other operator first is not: `&` returns before the file is there, `&&`
		 * or `;` after a command that may not run it or changes what it reads. */
		call = command_calls_walship(run, value, "fetch", "%f %p", config, sizeof(config),
					     op, sizeof(op));
		if (call != CALL_NONE && op[0] && strcmp(op, "||") != 0)
			check_item(run, CHECK_FAIL, "restore_command", hint,
				   "restore_command = '%s'%s joins walship fetch to another "
				   "command with `%s`: only a fallback after it (`|| ...`) keeps "
				   "what walship fetch restores",
				   value, where, op);
		else if (call == CALL_OK)
			check_item(run, CHECK_PASS, "restore_command", NULL,
				   "restore_command = '%s'", value);
		else if (call == CALL_OTHER_CONFIG)
			check_item(run, CHECK_FAIL, "restore_command", hint,
				   "restore_command = '%s'%s calls walship fetch %s, not \"%s\"",
				   value, where, other_config_words(config, words, sizeof(words)),
				   run->config_path);
		else
			check_item(run, CHECK_FAIL, "restore_command", hint,
				   "restore_command = '%s'%s does not call walship fetch %%f %%p",
				   value, where);
	}

	if (!run->streaming || run->standby) {
		check_item(run, CHECK_SKIP, "max_wal_senders", NULL,
			   "streaming not configured (--streaming)");
		check_item(run, CHECK_SKIP, "pg_hba.conf replication", NULL,
			   "streaming not configured (--streaming)");
		return;
	}
	value = pgconf_value(&run->pg_settings, "max_wal_senders", "10");
	pg_setting_where(run, "max_wal_senders", where, sizeof(where));
	if (strtol(value, NULL, 0) > 0) /* (as PostgreSQL reads integers: 0x10 too) */
		check_item(run, CHECK_PASS, "max_wal_senders", NULL, "max_wal_senders = %s%s",
			   value, where);
	else
		check_item(run, CHECK_FAIL, "max_wal_senders",
			   "Set max_wal_senders to at least 1 (one per streaming reader) and "
			   "restart PostgreSQL.",
			   "max_wal_senders = %s%s: no replication connection is possible", value,
			   where);
	value = pgconf_value(&run->pg_settings, "hba_file", "");
	if (value[0] == '\0')
		snprintf(path, sizeof(path), "%s/pg_hba.conf", run->pgdata);
	else
		snprintf(path, sizeof(path), "%s", value);
	ret = hba_has_replication_line(path);
	if (ret > 0)
		check_item(run, CHECK_PASS, "pg_hba.conf replication", NULL,
			   "\"%s\" has a replication line", path);
	else if (ret == 0)
		check_item(run, CHECK_FAIL, "pg_hba.conf replication",
			   "Add a line such as \"host replication walship 127.0.0.1/32 "
			   "scram-sha-256\", before any line that rejects replication for "
			   "all, and reload PostgreSQL.",
			   "\"%s\" has no line that lets a replication connection in", path);
	else
		check_item(run, CHECK_FAIL, "pg_hba.conf replication", NULL,
			   "could not read \"%s\": %s", path, strerror(-ret));
}

/* ---- walshipd ------------------------------------------------------------------- */

static void json_string(const char *json, const char *key, char *out, size_t len);
static uint64_t json_number(const char *json, const char *key);

/* synchronous_commit values under which a commit waits for no standby. */
static bool sync_commit_local(const char *value)
{
	return strcasecmp(value, "off") == 0 || strcasecmp(value, "false") == 0 ||
	       strcasecmp(value, "no") == 0 || strcasecmp(value, "0") == 0 ||
	       strcasecmp(value, "local") == 0;
}

/*
 * On a primary host: does PostgreSQL wait for walshipd at commit (synchronous_standby_names
 * names its application_name and synchronous_commit is not off or local), and can walshipd
 * not answer: no stream source (pg_conninfo), not streaming from PostgreSQL (@json's
 * source_state; NULL: not known), or fewer than sync_replicas replicas connected?
 * @streaming is the number of replicas streaming, -1 when walshipd did not answer;
 * @failing, of those connected but not counted, the ones whose disk refuses files (peer
 * state "failing").
 */
static void check_sync_standby(struct check_run *run, const struct config *cfg, int streaming,
			       int failing, const char *json)
{
	char state[32] = "";
	const char *app_name = config_application_name(cfg);
	char where[PATH_MAX + 64], hint[512];
	const char *names, *commit;
	struct sync_standby ss;
	int ret, need;

	if (!run->pgdata || run->standby || cfg->role != CONFIG_ROLE_PRIMARY)
		return;
	names = pgconf_value(&run->pg_settings, "synchronous_standby_names", "");
	commit = pgconf_value(&run->pg_settings, "synchronous_commit", "on");
	pg_setting_where(run, "synchronous_standby_names", where, sizeof(where));
	ret = sync_standby_parse(names, &ss);
	if (ret < 0) {
		check_item(run, CHECK_WARN, "synchronous standby",
			   "PostgreSQL refuses this value too: see its log.",
			   "could not parse synchronous_standby_names = '%s'%s: %s", names, where,
			   ret == -E2BIG ? "too many or too long names" : "syntax error");
		return;
	}
	if (!sync_standby_names_match(&ss, app_name)) {
		check_item(run, CHECK_SKIP, "synchronous standby", NULL,
			   "synchronous_standby_names = '%s' does not name \"%s\": commits do not "
			   "wait for walshipd",
			   names, app_name);
		return;
	}
	if (sync_commit_local(commit)) {
		check_item(run, CHECK_SKIP, "synchronous standby", NULL,
			   "synchronous_commit = %s: commits do not wait for standbys", commit);
		return;
	}
	/* Only the stream source is PostgreSQL's standby: without it nothing answers, and
	 * `*` (any standby) is PostgreSQL's other standbys, not walshipd. */
	if (!cfg->pg_conninfo[0] && !sync_standby_names_name(&ss, app_name)) {
		check_item(run, CHECK_SKIP, "synchronous standby", NULL,
			   "synchronous_standby_names = '%s' does not name \"%s\", and walshipd "
			   "(no pg_conninfo) is no standby of PostgreSQL for `*` to take",
			   names, app_name);
		return;
	}
	if (!cfg->pg_conninfo[0]) {
		snprintf(hint, sizeof(hint),
			 "Set pg_conninfo for walshipd to stream from PostgreSQL as its standby "
			 "(docs/operations.md), or take \"%s\" out of synchronous_standby_names "
			 "and reload PostgreSQL.",
			 app_name);
		check_item(
			run, CHECK_WARN, "synchronous standby", hint,
			"synchronous_standby_names = '%s'%s names \"%s\" with synchronous_commit "
			"= %s, but walshipd has no pg_conninfo and never connects to PostgreSQL "
			"as a standby: commits will wait",
			names, where, app_name, commit);
		return;
	}
	if (json)
		json_string(json, "source_state", state, sizeof(state));
	/* (with sync_replicas = 0 walshipd still reports nothing before one replica streams) */
	need = cfg->sync_replicas > 0 ? cfg->sync_replicas : 1;
	if (streaming >= need && json && strcmp(state, "streaming") != 0) {
		check_item(
			run, CHECK_WARN, "synchronous standby",
			"walship status says why (the stream's last error), and so does "
			"PostgreSQL's log.",
			"synchronous_standby_names = '%s'%s names \"%s\" with synchronous_commit "
			"= %s, and %d of sync_replicas = %d replicas are connected, but walshipd "
			"is not streaming from PostgreSQL (%s): commits will wait",
			names, where, app_name, commit, streaming, cfg->sync_replicas,
			state[0] ? state : "no stream");
		return;
	}
	/* remote_apply: applied is what the standbys on the replicas' pg_listen report
	 * (docs/operations.md); with none, walshipd reports nothing applied. */
	if (streaming >= need && json && strcasecmp(commit, "remote_apply") == 0 &&
	    !json_number(json, "source_apply_lsn")) {
		check_item(
			run, CHECK_WARN, "synchronous standby",
			"remote_apply waits for a PostgreSQL standby on a replica's pg_listen to "
			"replay the commit (docs/operations.md): run one, or use "
			"synchronous_commit = on (durable on the replicas).",
			"synchronous_standby_names = '%s'%s names \"%s\" with synchronous_commit "
			"= remote_apply, and no standby on the replicas has reported WAL applied: "
			"commits will wait",
			names, where, app_name);
		return;
	}
	if (streaming >= need) {
		check_item(run, CHECK_PASS, "synchronous standby", NULL,
			   "synchronous_standby_names = '%s' names \"%s\"; %d of sync_replicas = "
			   "%d replicas connected",
			   names, app_name, streaming, cfg->sync_replicas);
		return;
	}
	if (failing > 0)
		snprintf(hint, sizeof(hint),
			 "A replica that cannot store files (its disk full or failing: walship "
			 "status shows why) is sent them again after a backoff: free or repair its "
			 "disk, or take \"%s\" out of synchronous_standby_names and reload "
			 "PostgreSQL.",
			 app_name);
	else
		snprintf(hint, sizeof(hint),
			 "walshipd answers PostgreSQL as a synchronous standby once sync_replicas "
			 "replicas are connected: start them, or take \"%s\" out of "
			 "synchronous_standby_names and reload PostgreSQL.",
			 app_name);
	if (streaming < 0)
		check_item(
			run, CHECK_WARN, "synchronous standby", hint,
			"synchronous_standby_names = '%s'%s names \"%s\" with synchronous_commit "
			"= %s, and walshipd does not answer: commits will wait",
			names, where, app_name, commit);
	else if (failing > 0)
		check_item(
			run, CHECK_WARN, "synchronous standby", hint,
			"synchronous_standby_names = '%s'%s names \"%s\" with synchronous_commit "
			"= %s, and %d of sync_replicas = %d replicas are connected and storing (%d "
			"failing to store files): commits will wait",
			names, where, app_name, commit, streaming, cfg->sync_replicas, failing);
	else if (cfg->sync_replicas == 0)
		check_item(
			run, CHECK_WARN, "synchronous standby", hint,
			"synchronous_standby_names = '%s'%s names \"%s\" with synchronous_commit "
			"= %s, and no replica is connected: walshipd reports WAL durable only once "
			"one streams, sync_replicas = 0 too: commits will wait",
			names, where, app_name, commit);
	else
		check_item(
			run, CHECK_WARN, "synchronous standby", hint,
			"synchronous_standby_names = '%s'%s names \"%s\" with synchronous_commit "
			"= %s, and %d of sync_replicas = %d replicas are connected: commits will "
			"wait",
			names, where, app_name, commit, streaming, cfg->sync_replicas);
}

/*
 * On a primary host with a stream source: does walship's slot make PostgreSQL keep more WAL
 * than max_wal_size (its own bound for pg_wal, default 1 GB)?  @retained: the daemon's
 * source_retained_bytes.
 */
static void check_slot_retention(struct check_run *run, const struct config *cfg, uint64_t retained)
{
	const char *max = pgconf_value(&run->pg_settings, "max_wal_size", "1GB");
	uint64_t limit;

	if (!run->pgdata || run->standby || cfg->role != CONFIG_ROLE_PRIMARY ||
	    !cfg->pg_conninfo[0])
		return;
	if (pgconf_parse_bytes(max, UINT64_C(1) << 20, &limit) < 0) {
		check_item(run, CHECK_SKIP, "slot retention", NULL,
			   "could not read max_wal_size = '%s'", max);
		return;
	}
	if (retained <= limit) {
		check_item(run, CHECK_PASS, "slot retention", NULL,
			   "slot \"%s\" retains %" PRIu64 " bytes of WAL, within max_wal_size = %s",
			   cfg->pg_slot, retained, max);
		return;
	}
	check_item(run, CHECK_WARN, "slot retention",
		   "The replicas are away or behind: pg_wal grows until they catch up. Bring them "
		   "back, or set PostgreSQL's max_slot_wal_keep_size if losing the slot is better "
		   "than a full disk.",
		   "slot \"%s\" retains %" PRIu64 " bytes of WAL not yet durable on sync_replicas "
		   "= %d replicas, more than max_wal_size = %s",
		   cfg->pg_slot, retained, cfg->sync_replicas, max);
}

/*
 * The status document, walked as JSON rather than searched as text: the standbys on
 * pg_listen have a "state" too ("streaming" as in pg_stat_replication), and any string may
 * hold what looks like a key.  Only what walshipd writes needs reading here: no
 * whitespace to speak of, strings with backslash escapes.
 */
static const char *json_skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Just past the string that starts at @p (its opening quote). */
static const char *json_skip_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

/* Just past the value that starts at @p: a string, an object, an array or a scalar. */
static const char *json_skip_value(const char *p)
{
	int depth = 0;

	if (*p == '"')
		return json_skip_string(p);
	if (*p != '{' && *p != '[') {
		while (*p && !strchr(",}] \t\r\n", *p))
			p++;
		return p;
	}
	while (*p) {
		if (*p == '"') {
			p = json_skip_string(p);
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return p;
}

/* The value of member @key of the object that starts at @obj, or NULL. */
static const char *json_member(const char *obj, const char *key)
{
	size_t key_len = strlen(key);
	const char *p = json_skip_space(obj);

	if (*p != '{')
		return NULL;
	for (p = json_skip_space(p + 1); *p == '"'; p = json_skip_space(p + 1)) {
		const char *name = p + 1;
		const char *end = json_skip_value(p);
		bool match =
			(size_t)(end - name - 1) == key_len && strncmp(name, key, key_len) == 0;

		p = json_skip_space(end);
		if (*p != ':')
			return NULL;
		p = json_skip_space(p + 1);
		if (match)
			return p;
		p = json_skip_space(json_skip_value(p));
		if (*p != ',')
			return NULL;
	}
	return NULL;
}

/* The number value of member @key of the object @json (0 when absent). */
static uint64_t json_number(const char *json, const char *key)
{
	const char *at = json_member(json, key);

	return at ? strtoull(at, NULL, 10) : 0;
}

/* The string value of member @key of the object @json ("" when absent), escapes undone
 * as far as a name or a path needs. */
static void json_string(const char *json, const char *key, char *out, size_t len)
{
	const char *at = json_member(json, key);
	size_t n = 0;

	out[0] = '\0';
	if (!at || *at != '"')
		return;
	for (at++; *at && *at != '"' && n + 1 < len; at++) {
		if (*at == '\\' && at[1])
			at++;
		out[n++] = *at;
	}
	out[n] = '\0';
}

/* What the "peers" array of the status document says (not its "standbys"). */
struct check_peers {
	int streaming; /* in state "streaming" */
	int failing; /* connected, whose disk refuses files ("failing") */
	int lost; /* replicas that lost WAL to spool overflow */
	uint64_t lost_files; /* their files, all together */
	char lost_name[64], lost_first[32], lost_last[32]; /* the first such replica */
};

static void json_peers(const char *json, struct check_peers *peers)
{
	const char *p = json_member(json, "peers");
	char state[32];

	memset(peers, 0, sizeof(*peers));
	if (!p || *p != '[')
		return;
	for (p = json_skip_space(p + 1); *p == '{'; p = json_skip_space(p + 1)) {
		uint64_t lost = json_number(p, "lost_files");

		json_string(p, "state", state, sizeof(state));
		if (strcmp(state, walship_peer_state_name(WALSHIP_PEER_STREAMING)) == 0)
			peers->streaming++;
		else if (strcmp(state, walship_peer_state_name(WALSHIP_PEER_FAILING)) == 0)
			peers->failing++;
		if (lost && !peers->lost++) {
			json_string(p, "name", peers->lost_name, sizeof(peers->lost_name));
			json_string(p, "lost_first", peers->lost_first, sizeof(peers->lost_first));
			json_string(p, "lost_last", peers->lost_last, sizeof(peers->lost_last));
		}
		peers->lost_files += lost;
		p = json_skip_space(json_skip_value(p));
		if (*p != ',')
			break;
	}
}

/*
 * The daemon answered CTL_WARN_LOST: a registered replica lost WAL to spool overflow
 * (docs/operations.md, "Spool full"), as `walship status` says with its exit 3.  Its
 * standbys cannot replay past the gap: a FAIL until it is rebuilt and dropped.
 */
static void check_lost(struct check_run *run, const char *json)
{
	struct check_peers peers;
	char hint[512];

	json_peers(json, &peers);
	if (!peers.lost) {
		/* the node's own count, when no peer entry says which */
		check_item(run, CHECK_FAIL, "replica lost WAL",
			   "walship status shows which replica and which files (its LOST line): "
			   "its standbys need those files from another archive, or a new base "
			   "backup (docs/operations.md, \"Failures\").",
			   "%" PRIu64 " file(s) released for a replica on spool overflow",
			   json_number(json, "lost_files"));
		return;
	}
	snprintf(hint, sizeof(hint),
		 "The standbys of \"%s\" cannot replay past the gap: give them those files from "
		 "another archive, or rebuild the replica and its standbys from a new base "
		 "backup; then walship replica drop %s clears the record (docs/operations.md, "
		 "\"Failures\").",
		 peers.lost_name, peers.lost_name);
	check_item(run, CHECK_FAIL, "replica lost WAL", hint,
		   "replica \"%s\" lost %" PRIu64 " file(s), %s to %s, released on spool "
		   "overflow%s",
		   peers.lost_name, peers.lost_files, peers.lost_first, peers.lost_last,
		   peers.lost > 1 ? " (and other replicas too: see walship status)" : "");
}

/*
 * On a primary with a stream source: does its slot reserve WAL, and does the server still
 * have the WAL the stream needs (docs/operations.md, "The slot")?  @json: the daemon's
 * `walship status --json`.
 */
static void check_stream_slot(struct check_run *run, const struct config *cfg, const char *json)
{
	uint64_t missing = json_number(json, "source_wal_missing_lsn");
	uint64_t restart = json_number(json, "source_slot_restart_lsn");
	uint64_t flush = json_number(json, "source_flush_lsn");
	uint64_t seg_size = json_number(json, "seg_size");
	uint64_t timeline = json_number(json, "timeline");
	char segment[32];

	if (cfg->role != CONFIG_ROLE_PRIMARY || !cfg->pg_conninfo[0])
		return;
	if (!json_number(json, "source_connects")) {
		check_item(run, CHECK_SKIP, "stream slot", NULL,
			   "walshipd has not connected to PostgreSQL yet");
		return;
	}
	if (missing && seg_size) {
		wal_name_format_segment(segment, sizeof(segment), timeline ? (uint32_t)timeline : 1,
					missing / seg_size, (uint32_t)seg_size);
		check_item(
			run, CHECK_FAIL, "stream slot",
			"Push the segments from that one on with walship push (archive_command "
			"does when it calls walship push; from another archive, by hand): "
			"streaming goes on after the last one the replicas hold. If no archive "
			"has them, stop walshipd, drop the slot (pg_drop_replication_slot) and "
			"start walshipd: it makes the slot again and streams from the server's "
			"position, and the standbys served by the replicas need a new base "
			"backup.",
			"PostgreSQL removed the WAL from %X/%X (segment %s) on, which the stream "
			"needs (slot \"%s\" invalidated by max_slot_wal_keep_size): the replicas "
			"hold WAL durably up to %X/%X",
			(unsigned int)(missing >> 32), (unsigned int)missing, segment, cfg->pg_slot,
			(unsigned int)(flush >> 32), (unsigned int)flush);
		return;
	}
	if (!restart) {
		check_item(
			run, CHECK_WARN, "stream slot",
			"PostgreSQL invalidates a slot that holds more than "
			"max_slot_wal_keep_size at a checkpoint, and removes the WAL it held once "
			"archived: bring the replicas back, and see walship status for what "
			"the stream still needs.",
			"slot \"%s\" reserves no WAL (its restart_lsn is NULL): PostgreSQL may "
			"remove WAL the replicas lack",
			cfg->pg_slot);
		return;
	}
	check_item(run, CHECK_PASS, "stream slot", NULL, "slot \"%s\" reserves WAL from %X/%X",
		   cfg->pg_slot, (unsigned int)(restart >> 32), (unsigned int)restart);
}

static void check_daemon(struct check_run *run, const struct config *cfg,
			 const struct controldata *cd)
{
	struct ctl_client_reply reply = { 0 };
	const char *cfg_role = cfg->role == CONFIG_ROLE_PRIMARY ? "primary" : "replica";
	const char *want_role = run->standby ? "replica" : "primary";
	char role[32], sysid_text[32], node[sizeof(cfg->node_name)], dir[PATH_MAX];
	struct check_peers peers;
	uint64_t sysid;
	int sock, ret;

	if (run->pgdata) {
		if (strcmp(cfg_role, want_role) == 0)
			check_item(run, CHECK_PASS, "walship role", NULL, "role = %s on a %s host",
				   cfg_role, run->standby ? "standby" : "primary");
		else
			check_item(run, CHECK_FAIL, "walship role",
				   run->standby ?
					   "A standby host runs walshipd with role = replica." :
					   "A primary host runs walshipd with role = primary.",
				   "role = %s in \"%s\", but this is a %s host", cfg_role,
				   run->config_path, run->standby ? "standby" : "primary");
	}

	/* The daemon's answer logs its own errors: keep them off this checklist. */
	log_set_level(LOG_LEVEL_FATAL);
	ret = ctl_client_connect(cfg->socket_path, CHECK_TIMEOUT_MS, &sock);
	if (ret == 0) {
		ret = ctl_client_call(sock, CTL_STATUS, CTL_F_JSON, NULL, -1, &reply);
		close(sock);
	}
	log_set_level(LOG_LEVEL_LOG);
	/* CTL_WARN_LOST is an answer, the document and a replica's lost WAL (below), as
	 * `walship status` prints it and exits 3: only other codes are refusals. */
	if (ret == 0 && reply.code != CTL_OK && reply.code != CTL_WARN_LOST)
		check_item(run, CHECK_FAIL, "walshipd socket",
			   "walshipd's log says why; walship status gets the same answer.",
			   "\"%s\" refused the status request: %s", cfg->socket_path,
			   reply.text_len ? reply.text : ctl_code_name(reply.code));
	else if (ret < 0)
		check_item(run, CHECK_FAIL, "walshipd socket",
			   "Start walshipd with this config (walshipd -c FILE), and check that "
			   "this user may use its socket (socket_group, socket_permissions).",
			   "could not get the status from \"%s\": %s", cfg->socket_path,
			   strerror(-ret));
	if (ret < 0 || (reply.code != CTL_OK && reply.code != CTL_WARN_LOST)) {
		ctl_client_reply_free(&reply);
		check_item(run, CHECK_SKIP, "system identifier", NULL, "walshipd not reachable");
		check_item(run, CHECK_SKIP, "peer", NULL, "walshipd not reachable");
		check_sync_standby(run, cfg, -1, 0, NULL);
		return;
	}
	json_string(reply.text, "role", role, sizeof(role));
	json_string(reply.text, "node_name", node, sizeof(node));
	json_string(reply.text, "archive_dir", dir, sizeof(dir));
	if (strcmp(role, cfg_role) != 0)
		check_item(run, CHECK_FAIL, "walshipd socket",
			   "The daemon on this socket runs with another config file: restart it "
			   "with this one.",
			   "\"%s\" answers with role %s, not %s as configured", cfg->socket_path,
			   role, cfg_role);
	else if (node[0] && strcmp(node, cfg->node_name) != 0)
		check_item(run, CHECK_FAIL, "walshipd socket",
			   "The daemon on this socket runs with another config file, or this one "
			   "changed since it started (node_name takes effect at a restart): "
			   "restart it with this one.",
			   "\"%s\" answers as node \"%s\", not \"%s\" as configured",
			   cfg->socket_path, node, cfg->node_name);
	/* walship fetch reads the configured archive_dir; the daemon keeps the one it
	 * started with (a restart key) */
	else if (cfg->role == CONFIG_ROLE_REPLICA && dir[0] &&
		 !same_file(dir, cfg->archive_dir, NULL))
		check_item(run, CHECK_FAIL, "walshipd socket",
			   "archive_dir takes effect at a restart: restart walshipd, or put "
			   "archive_dir back; until then walship fetch reads a folder walshipd "
			   "does not store into.",
			   "\"%s\" answers storing into \"%s\", not \"%s\" as configured",
			   cfg->socket_path, dir, cfg->archive_dir);
	else
		check_item(run, CHECK_PASS, "walshipd socket", NULL, "\"%s\" answers: role %s",
			   cfg->socket_path, role);

	json_string(reply.text, "system_identifier", sysid_text, sizeof(sysid_text));
	sysid = strtoull(sysid_text, NULL, 10);
	if (!cd || !cd->ok)
		check_item(run, CHECK_SKIP, "system identifier", NULL,
			   "no pg_controldata output to compare with (-D PGDATA)");
	else if (sysid == 0)
		check_item(run, CHECK_SKIP, "system identifier", NULL,
			   "walshipd has seen no WAL yet");
	else if (sysid == cd->system_identifier)
		check_item(run, CHECK_PASS, "system identifier", NULL,
			   "walshipd's %" PRIu64 " matches pg_controldata's", sysid);
	else
		check_item(run, CHECK_FAIL, "system identifier",
			   "This walshipd serves another cluster: point it at this one (its own "
			   "archive_dir), or this host at the right walshipd.",
			   "walshipd holds WAL of system %" PRIu64 ", pg_controldata says %" PRIu64,
			   sysid, cd->system_identifier);

	/* Peers only: a standby streaming from this replica's pg_listen is no upstream. */
	json_peers(reply.text, &peers);
	if (peers.streaming)
		check_item(run, CHECK_PASS, "peer", NULL, "a peer is streaming");
	else
		check_item(
			run, CHECK_WARN, "peer",
			cfg->role == CONFIG_ROLE_REPLICA ?
				"Check that the primary's walshipd runs and that upstream "
				"points at it." :
				"No replica is connected: WAL is held in the spool until one is.",
			"no peer is streaming right now");
	if (reply.code == CTL_WARN_LOST)
		check_lost(run, reply.text);
	check_sync_standby(run, cfg, peers.streaming, peers.failing, reply.text);
	check_slot_retention(run, cfg, json_number(reply.text, "source_retained_bytes"));
	check_stream_slot(run, cfg, reply.text);
	ctl_client_reply_free(&reply);
}

/*
 * The replica's archive_dir: what its file system gives walshipd.  Extended attributes
 * (user.walship.resume) let a cut transfer resume from its durable length; direct I/O
 * lets segments be written from the receive buffers without the page cache.  Without
 * either walshipd still works (it resends, or writes buffered): a WARN.  Probed with a
 * scratch file in archive_dir/.walship, removed again.
 */
static void check_archive_dir(struct check_run *run, const struct config *cfg)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/.walship/check.%d", cfg->archive_dir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		check_item(run, CHECK_SKIP, "archive_dir", NULL,
			   "cannot create a file in \"%s/.walship\" as this user (%m); walshipd "
			   "checks it at its start",
			   cfg->archive_dir);
		return;
	}
	if (fsetxattr(fd, "user.walship.check", "1", 1, 0) == 0)
		check_item(run, CHECK_PASS, "archive_dir xattrs", NULL,
			   "\"%s\" keeps extended attributes: cut transfers resume",
			   cfg->archive_dir);
	else
		check_item(
			run, CHECK_WARN, "archive_dir xattrs",
			"Use a file system with user extended attributes (ext4 and XFS have them "
			"by default) so that a cut transfer resumes instead of starting again.",
			"\"%s\" keeps no extended attributes (%m): a pushed segment cut by a "
			"crash is received again from its start",
			cfg->archive_dir);
	close(fd);
	fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fd >= 0) {
		check_item(run, CHECK_PASS, "archive_dir direct I/O", NULL,
			   "segments are written with O_DIRECT from the receive buffers");
		close(fd);
	} else {
		check_item(run, CHECK_WARN, "archive_dir direct I/O",
			   "walshipd writes through the page cache instead; a disk file system "
			   "(not tmpfs) takes direct I/O.",
			   "\"%s\" refuses O_DIRECT (%m)", cfg->archive_dir);
	}
	unlink(path);
}

/*
 * Files in archive_dir/.refused: streamed segments refused for their content (another
 * file of the name stored, WAL that does not validate) after part of them was
 * acknowledged durable.  walshipd keeps them there rather than removing commits that
 * may be on no other host: a WARN until the operator has looked.
 */
/* A replica with TLS names its upstream (upstream_name): else any node the CA signed is
 * taken for the primary (docs/security.md). */
static void check_upstream_name(struct check_run *run, const struct config *cfg)
{
	if (!cfg->tls) {
		check_item(run, CHECK_SKIP, "upstream name", NULL,
			   "tls = off: the upstream is not authenticated");
		return;
	}
	if (cfg->upstream_name[0]) {
		check_item(run, CHECK_PASS, "upstream name", NULL,
			   "the upstream's certificate must name \"%s\"", cfg->upstream_name);
		return;
	}
	check_item(run, CHECK_WARN, "upstream name",
		   "Set upstream_name to the primary's node name, which its certificate names.",
		   "upstream_name is empty: any node whose certificate the CA signed is taken "
		   "for the upstream");
}

static void check_refused(struct check_run *run, const struct config *cfg)
{
	char path[PATH_MAX + 64], first[256] = "";
	struct dirent *de;
	unsigned int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/%s", cfg->archive_dir, STORE_REFUSED_DIR);
	dir = opendir(path);
	if (!dir && errno != ENOENT) {
		check_item(run, CHECK_SKIP, "refused files", NULL,
			   "cannot read \"%s\" as this user (%m)", path);
		return;
	}
	while (dir && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (!n++)
			snprintf(first, sizeof(first), "%s", de->d_name);
	}
	if (dir)
		closedir(dir);
	if (!n) { /* none, or no .refused at all */
		check_item(run, CHECK_PASS, "refused files", NULL, "none set aside in \"%s\"",
			   path);
		return;
	}
	check_item(run, CHECK_WARN, "refused files",
		   "walshipd refused them after acknowledging part of them durable (its log says "
		   "why): compare them with the primary's pg_wal, keep what a recovery needs, then "
		   "remove them.",
		   "%u file(s) set aside in \"%s\" (\"%s\"%s)", n, path, first,
		   n > 1 ? ", ..." : "");
}

/* Whole megabytes, for the messages. */
static double mb(double bytes)
{
	return bytes / (1024.0 * 1024.0);
}

/*
 * The space of archive_dir's file system against the WAL arriving (docs/operations.md,
 * "Retention").  The rate is the bytes of the WAL files stored (by their mtime, set when
 * they were written) within the last CHECK_RATE_WINDOW_S, over that window, or over the
 * time since the oldest of them when the archive is younger (not measured under
 * CHECK_RATE_MIN_SPAN_S: a replica just started may be catching up on a backlog): the
 * store's recent growth, read from the directory alone, so it works with the daemon down.
 * With retention off the archive grows by rate x horizon; with it on it settles at about
 * the larger of retain_size and rate x retain_time (plus what standbys need, not known
 * here), so it grows at most up to there.  WARN when that growth does not fit in the
 * free space within CHECK_FILL_HORIZON_S, or, with retention off, when less than
 * CHECK_LOW_FREE_PCT percent is free.
 */
static void check_archive_space(struct check_run *run, const struct config *cfg)
{
	const double horizon = CHECK_FILL_HORIZON_S;
	bool off = cfg->retain_time_ms <= 0 && cfg->retain_size_mb <= 0;
	double window_bytes = 0, total = 0, rate, grow, settle, free_bytes, fs_bytes;
	time_t now = time(NULL), oldest = now, span;
	struct statvfs vfs;
	struct dirent *de;
	int dir_fd;
	DIR *dir;

	if (statvfs(cfg->archive_dir, &vfs) < 0) {
		check_item(run, CHECK_SKIP, "archive_dir space", NULL,
			   "could not read the file system of \"%s\": %m", cfg->archive_dir);
		return;
	}
	dir = opendir(cfg->archive_dir);
	if (!dir) {
		check_item(run, CHECK_SKIP, "archive_dir space", NULL,
			   "could not open directory \"%s\": %m", cfg->archive_dir);
		return;
	}
	dir_fd = dirfd(dir);
	while ((de = readdir(dir))) {
		struct stat st;

		if (!wal_name_valid(de->d_name) ||
		    fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		total += (double)st.st_size;
		if (st.st_mtime > now - CHECK_RATE_WINDOW_S) {
			window_bytes += (double)st.st_size;
			if (st.st_mtime < oldest)
				oldest = st.st_mtime;
		}
	}
	closedir(dir);
	free_bytes = (double)vfs.f_bavail * (double)vfs.f_frsize;
	fs_bytes = (double)vfs.f_blocks * (double)vfs.f_frsize;
	/* a younger archive: over its own age; under CHECK_RATE_MIN_SPAN_S (a replica just
	 * started, catching up) the rate says nothing yet */
	span = now - oldest < CHECK_RATE_WINDOW_S ? now - oldest : CHECK_RATE_WINDOW_S;
	rate = span >= CHECK_RATE_MIN_SPAN_S ? window_bytes / (double)span : 0;
	if (off) {
		grow = rate * horizon;
	} else {
		settle = (double)cfg->retain_size_mb * 1024 * 1024;
		if (rate * cfg->retain_time_ms / 1000.0 > settle)
			settle = rate * cfg->retain_time_ms / 1000.0;
		grow = settle > total ? settle - total : 0;
		if (grow > rate * horizon)
			grow = rate * horizon;
	}
	if (grow > free_bytes)
		check_item(
			run, CHECK_WARN, "archive_dir space",
			off ? "Set retain_time or retain_size (docs/operations.md, "
			      "\"Retention\"), or give archive_dir more space." :
			      "Lower retain_time or retain_size, or give archive_dir more space.",
			"at %.1f MB/h (the WAL stored in the last hour), \"%s\" fills in about "
			"%.1f h: %.0f MB free, %.0f MB held, retention %s",
			mb(rate * 3600), cfg->archive_dir, rate > 0 ? free_bytes / rate / 3600 : 0,
			mb(free_bytes), mb(total), off ? "off" : "on");
	else if (off && free_bytes * 100 < fs_bytes * CHECK_LOW_FREE_PCT)
		check_item(run, CHECK_WARN, "archive_dir space",
			   "Set retain_time or retain_size (docs/operations.md, \"Retention\"): "
			   "with retention off archive_dir only grows.",
			   "retention is off and \"%s\" has %.0f MB free, under %d%% of its file "
			   "system; %.0f MB held",
			   cfg->archive_dir, mb(free_bytes), CHECK_LOW_FREE_PCT, mb(total));
	else if (span < CHECK_RATE_MIN_SPAN_S)
		check_item(run, CHECK_SKIP, "archive_dir space", NULL,
			   "the WAL stored in \"%s\" spans %ld s, too little to measure a rate: "
			   "%.0f MB free, %.0f MB held, retention %s",
			   cfg->archive_dir, (long)span, mb(free_bytes), mb(total),
			   off ? "off" : "on");
	else
		check_item(
			run, CHECK_PASS, "archive_dir space", NULL,
			"at %.1f MB/h (the WAL stored in the last hour), %.0f MB free, enough for "
			"%d h: %.0f MB held, retention %s",
			mb(rate * 3600), mb(free_bytes), CHECK_FILL_HORIZON_S / 3600, mb(total),
			off ? "off" : "on");
}

/* The credentials walship's commands run with under PostgreSQL: the running postmaster's
 * (its groups as the service manager gave them), else the data directory owner's. */
struct pg_user {
	uid_t uid;
	gid_t gid;
	char name[64];
	gid_t groups[256];
	int ngroups;
};

/* Fill @u from /proc/@pid/status's Uid, Gid and Groups lines.  Returns 0 or -1. */
static int pg_user_of_process(long pid, struct pg_user *u)
{
	char path[64], line[4096];
	bool uid = false, gid = false;
	FILE *in;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	in = fopen(path, "re");
	if (!in)
		return -1;
	while (fgets(line, sizeof(line), in)) {
		unsigned long v;
		char *p;

		if (sscanf(line, "Uid: %lu", &v) == 1) {
			u->uid = (uid_t)v;
			uid = true;
		} else if (sscanf(line, "Gid: %lu", &v) == 1) {
			u->gid = (gid_t)v;
			gid = true;
		} else if (!strncmp(line, "Groups:", 7)) {
			p = line + 7;
			u->ngroups = 0;
			while (u->ngroups < (int)ARRAY_SIZE(u->groups)) {
				char *end;

				v = strtoul(p, &end, 10);
				if (end == p)
					break;
				u->groups[u->ngroups++] = (gid_t)v;
				p = end;
			}
		}
	}
	fclose(in);
	return uid && gid ? 0 : -1;
}

static bool pg_user_in_group(const struct pg_user *u, gid_t gid)
{
	if (u->gid == gid)
		return true;
	for (int i = 0; i < u->ngroups; i++)
		if (u->groups[i] == gid)
			return true;
	return false;
}

enum pg_access_fail {
	PG_ACCESS_OK,
	PG_ACCESS_CONFIG,
	PG_ACCESS_SOCKET,
	PG_ACCESS_ARCHIVE,
	PG_ACCESS_STORED,
	PG_ACCESS_NOT_TRIED,
};

/* In a child process with @u's credentials, what walship push or fetch would open: the
 * kernel's own rules (ACLs, symbolic links, the folders above) decide.  Returns what
 * failed first. */
static enum pg_access_fail pg_access_try(const struct check_run *run, const struct config *cfg,
					 const struct pg_user *u)
{
	char config[PATH_MAX];
	struct stat st;
	/* (no socket: walshipd does not run, which its own item says; seen as root, as a
	 * folder PostgreSQL cannot search must fail the try below, not skip it) */
	bool socket = !run->standby && stat(cfg->socket_path, &st) == 0;
	int status = 0;
	pid_t child;

	/* (made absolute here: a relative path's folders are the check's, whose own folder
	 * PostgreSQL's user may not search: its folder resolved, `..` included, the file's
	 * own name kept, a link left as the command opens it) */
	snprintf(config, sizeof(config), "%s", run->config_path);
	if (run->config_path[0] != '/') {
		char dir[PATH_MAX], resolved[PATH_MAX];
		const char *slash = strrchr(run->config_path, '/');
		const char *base = slash ? slash + 1 : run->config_path;

		snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - run->config_path) : 1,
			 slash ? run->config_path : ".");
		if (realpath(dir, resolved) && strlen(resolved) + 1 + strlen(base) < sizeof(config))
			snprintf(config, sizeof(config), "%s/%s", resolved, base);
	}
	child = fork();
	if (child < 0)
		return PG_ACCESS_NOT_TRIED;
	if (child == 0) {
		DIR *dir;

		alarm(CHECK_TIMEOUT_MS / 1000 + 1);
		if (setgroups((size_t)u->ngroups, u->groups) < 0 || setgid(u->gid) < 0 ||
		    setuid(u->uid) < 0)
			_exit(PG_ACCESS_NOT_TRIED);
		if (access(config, R_OK) < 0)
			_exit(PG_ACCESS_CONFIG);
		if (socket && access(cfg->socket_path, W_OK) < 0)
			_exit(PG_ACCESS_SOCKET);
		if (run->standby && cfg->role == CONFIG_ROLE_REPLICA) {
			struct dirent *de;
			int fd;

			dir = opendir(cfg->archive_dir);
			if (!dir)
				_exit(PG_ACCESS_ARCHIVE);
			/* a stored file (created 0640): readable, by its group */
			while ((de = readdir(dir)))
				if (wal_name_valid(de->d_name))
					break;
			if (de) {
				/* as walship fetch opens it: a FIFO must not hang us */
				fd = openat(dirfd(dir), de->d_name,
					    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
				if (fd < 0)
					_exit(PG_ACCESS_STORED);
				close(fd);
			}
			closedir(dir);
		}
		_exit(PG_ACCESS_OK);
	}
	/* Waited for CHECK_TIMEOUT_MS at most (a dead network file system; the child, now
	 * PostgreSQL's user's, stopped by it), then killed. */
	for (int waited = 0;; waited += 10) {
		pid_t got = waitpid(child, &status, WNOHANG);

		if (got == child)
			break;
		if (got < 0) /* (SIGCHLD ignored: reaped, its answer lost) */
			return PG_ACCESS_NOT_TRIED;
		if (waited >= CHECK_TIMEOUT_MS) {
			kill(child, SIGKILL);
			waitpid(child, &status, 0);
			return PG_ACCESS_NOT_TRIED;
		}
		usleep(10000);
	}
	if (!WIFEXITED(status))
		return PG_ACCESS_NOT_TRIED;
	return (enum pg_access_fail)WEXITSTATUS(status);
}

/* The group walshipd serves besides its user and root: socket_group's, else its own
 * (its user's primary group; the socket file @sock's group may be its folder's). */
static gid_t walshipd_group(const struct config *cfg, const struct stat *sock)
{
	struct group *gr = cfg->socket_group[0] ? getgrnam(cfg->socket_group) : NULL;
	struct passwd *pw = cfg->socket_group[0] ? NULL : getpwuid(sock->st_uid);

	return gr ? gr->gr_gid : pw ? pw->pw_gid : sock->st_gid;
}

/*
 * Checked as root, the check reaches everything; PostgreSQL runs walship push and fetch
 * with its own credentials, which must read the config, and reach the socket (a primary:
 * write on it, and be walshipd's user or in the socket's group, as walshipd's credential
 * check asks) or the archive (a standby: read archive_dir and the files stored there).
 * A push refused for that fails every segment while PostgreSQL keeps them in pg_wal.
 */
static void check_pg_access(struct check_run *run, const struct config *cfg)
{
	struct pg_user u = { .ngroups = (int)ARRAY_SIZE(u.groups) };
	char problem[PATH_MAX + 160] = "";
	long pid = postmaster_pid(run);
	enum pg_access_fail fail;
	struct passwd *pw;
	struct stat st;

	if (!run->pgdata || geteuid() != 0 || stat(run->pgdata, &st) < 0 || st.st_uid == 0)
		return;
	if (!pid || pg_user_of_process(pid, &u) < 0) {
		pw = getpwuid(st.st_uid);
		u.ngroups = (int)ARRAY_SIZE(u.groups);
		if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, u.groups, &u.ngroups) < 0) {
			check_item(
				run, CHECK_SKIP, "PostgreSQL's access", NULL,
				"the data directory's owner (uid %u) or its groups are not known",
				(unsigned int)st.st_uid);
			return;
		}
		u.uid = pw->pw_uid;
		u.gid = pw->pw_gid;
	}
	pw = getpwuid(u.uid);
	snprintf(u.name, sizeof(u.name), "%s", pw ? pw->pw_name : "?");
	fail = pg_access_try(run, cfg, &u);
	if (fail == PG_ACCESS_CONFIG)
		snprintf(problem, sizeof(problem), "cannot read the config \"%s\"",
			 run->config_path);
	else if (fail == PG_ACCESS_SOCKET)
		snprintf(problem, sizeof(problem), "cannot connect to the socket \"%s\"",
			 cfg->socket_path);
	else if (fail == PG_ACCESS_ARCHIVE)
		snprintf(problem, sizeof(problem), "cannot read the archive \"%s\"",
			 cfg->archive_dir);
	else if (fail == PG_ACCESS_STORED)
		snprintf(problem, sizeof(problem),
			 "cannot read the files stored in \"%s\" (walshipd creates them 0640: "
			 "PostgreSQL's user needs their group)",
			 cfg->archive_dir);
	else if (fail == PG_ACCESS_NOT_TRIED) {
		check_item(run, CHECK_SKIP, "PostgreSQL's access", NULL,
			   "could not take user \"%s\"'s credentials to try", u.name);
		return;
	} else if (!run->standby && stat(cfg->socket_path, &st) == 0 && u.uid != st.st_uid &&
		   !pg_user_in_group(&u, walshipd_group(cfg, &st)))
		/* walshipd serves its own user, root and its group (socket_group, else its
		 * own) */
		snprintf(problem, sizeof(problem),
			 "is neither walshipd's user nor in its group (socket_group, else "
			 "walshipd's own): walshipd refuses its pushes");
	if (problem[0])
		check_item(run, CHECK_FAIL, "PostgreSQL's access",
			   "walship push and fetch run as PostgreSQL's user: give it read access "
			   "to the config, and socket_group (docs/security.md) or read access to "
			   "the archive; a group given to PostgreSQL takes effect at its restart.",
			   "user \"%s\" (PostgreSQL's%s) %s", u.name,
			   pid ? ", as it runs now" : ": the data directory's owner", problem);
	else
		check_item(run, CHECK_PASS, "PostgreSQL's access", NULL,
			   "user \"%s\" reads the config and reaches the %s", u.name,
			   run->standby ? "archive" : "socket");
}

int check_main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "pgdata", required_argument, NULL, 'D' },
		{ "pg-bin", required_argument, NULL, 'B' },
		{ "streaming", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct check_run run;
	struct controldata cd = { 0 };
	const char *config_option = NULL;
	char path[PATH_MAX];
	struct config cfg;
	bool cfg_ok;
	int opt;

	cli_log_init(false);
	memset(&run, 0, sizeof(run));
	run.pgdata = getenv("PGDATA");
	while ((opt = getopt_long(argc, argv, "c:D:B:sh", long_options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_option = optarg;
			break;
		case 'D':
			run.pgdata = optarg;
			break;
		case 'B':
			run.pg_bin = optarg;
			break;
		case 's':
			run.streaming = true;
			break;
		case 'h':
			check_usage(stdout);
			return CLI_EXIT_OK;
		default:
			check_usage(stderr);
			return CHECK_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		log_error("walship check takes no arguments, got \"%s\"", argv[optind]);
		check_usage(stderr);
		return CHECK_EXIT_USAGE;
	}
	if (run.pgdata && run.pgdata[0] == '\0')
		run.pgdata = NULL;
	run.config_path = cli_config_path(config_option);
	if (run.pgdata) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/standby.signal", run.pgdata);
		run.standby = stat(path, &st) == 0;
		snprintf(path, sizeof(path), "%s/recovery.signal", run.pgdata);
		run.standby = run.standby || stat(path, &st) == 0;
	}

	printf("walship check: config \"%s\"%s%s\n", run.config_path,
	       run.pgdata ? ", data directory " : "", run.pgdata ? run.pgdata : "");
	/* The parser's own ERROR lines (file and line) go to stderr, the item here. */
	cfg_ok = cli_load_config(&cfg, run.config_path) == 0;
	if (cfg_ok)
		check_item(&run, CHECK_PASS, "walship config", NULL, "loads: role %s, node \"%s\"",
			   cfg.role == CONFIG_ROLE_PRIMARY ? "primary" : "replica", cfg.node_name);
	else
		check_item(&run, CHECK_FAIL, "walship config",
			   "Fix the errors printed above; walshipd refuses the same file.",
			   "\"%s\" does not load", run.config_path);

	if (run.pgdata) {
		check_controldata(&run, &cd);
		check_pg_settings(&run, cfg_ok ? &cfg : NULL, &cd);
	} else {
		check_item(&run, CHECK_SKIP, "PostgreSQL", NULL,
			   "no data directory given (-D PGDATA)");
	}
	if (cfg_ok)
		check_pg_access(&run, &cfg);
	if (cfg_ok)
		check_daemon(&run, &cfg, &cd);
	if (cfg_ok && cfg.role == CONFIG_ROLE_REPLICA) {
		check_archive_dir(&run, &cfg);
		check_archive_space(&run, &cfg);
		check_refused(&run, &cfg);
		check_upstream_name(&run, &cfg);
	}

	printf("%d passed, %d failed, %d warnings, %d skipped\n", run.passed, run.failed,
	       run.warned, run.skipped);
	pgconf_free(&run.pg_settings);
	return run.failed ? CHECK_EXIT_FAILED : CHECK_EXIT_OK;
}
