// SPDX-License-Identifier: MIT
/*
 * PostgreSQL configuration files, read as the server reads them (see pgconf.h).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/compiler.h"
#include "common/pgconf.h"
#include "common/textfile.h"

static int pgconf_read(struct pgconf *conf, const char *path, int depth, bool missing_ok);

/* The index of @name in @conf->settings, or @conf->count when absent. */
static size_t pgconf_index(const struct pgconf *conf, const char *name)
{
	size_t idx;

	for (idx = 0; idx < conf->count; idx++) {
		if (strcasecmp(conf->settings[idx].name, name) == 0)
			break;
	}
	return idx;
}

const struct pgconf_setting *pgconf_find(const struct pgconf *conf, const char *name)
{
	size_t idx = pgconf_index(conf, name);

	return idx < conf->count ? &conf->settings[idx] : NULL;
}

const char *pgconf_value(const struct pgconf *conf, const char *name, const char *dflt)
{
	const struct pgconf_setting *setting = pgconf_find(conf, name);

	return setting ? setting->value : dflt;
}

void pgconf_free(struct pgconf *conf)
{
	for (size_t idx = 0; idx < conf->count; idx++) {
		free(conf->settings[idx].name);
		free(conf->settings[idx].value);
		free(conf->settings[idx].file);
	}
	free(conf->settings);
	memset(conf, 0, sizeof(*conf));
}

/* Record @name = @value (taking both, malloc'd) from @file line @line: the last wins. */
static int pgconf_set(struct pgconf *conf, char *name, char *value, const char *file, int line)
{
	size_t idx = pgconf_index(conf, name);
	struct pgconf_setting *setting = idx < conf->count ? &conf->settings[idx] : NULL;
	char *file_copy = strdup(file);

	if (!file_copy)
		goto out_nomem;
	if (setting) {
		free(name);
		free(setting->value);
		free(setting->file);
	} else {
		if (conf->count == conf->capacity) {
			size_t capacity = conf->capacity ? conf->capacity * 2 : 32;
			struct pgconf_setting *grown =
				realloc(conf->settings, capacity * sizeof(*grown));

			if (!grown)
				goto out_nomem;
			conf->settings = grown;
			conf->capacity = capacity;
		}
		setting = &conf->settings[conf->count++];
		setting->name = name;
	}
	setting->value = value;
	setting->file = file_copy;
	setting->line = line;
	return 0;
out_nomem:
	free(file_copy);
	free(name);
	free(value);
	log_error("out of memory");
	return -ENOMEM;
}

/* @name relative to the directory of @from, as PostgreSQL resolves include paths. */
static void pgconf_resolve(const char *from, const char *name, char *out, size_t len)
{
	const char *slash = strrchr(from, '/');

	if (name[0] == '/' || !slash)
		snprintf(out, len, "%s", name);
	else
		snprintf(out, len, "%.*s/%s", (int)(slash - from), from, name);
}

/* Order of include_dir: the server sorts the names with strcmp(), whatever the locale. */
static int pgconf_name_order(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* include_dir @dir: its files named *.conf, not starting with a dot, in name order. */
static int pgconf_include_dir(struct pgconf *conf, const char *dir, int depth)
{
	struct dirent **entries;
	int count = scandir(dir, &entries, NULL, pgconf_name_order);
	char path[PATH_MAX];
	struct stat st;
	int ret = 0;

	if (count < 0) {
		ret = -errno;
		log_error("could not open configuration directory \"%s\": %s", dir, strerror(-ret));
		return ret;
	}
	for (int idx = 0; idx < count; idx++) {
		const char *name = entries[idx]->d_name;
		size_t len = strlen(name);

		if (ret == 0 && name[0] != '.' && len > 5 && strcmp(name + len - 5, ".conf") == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			if (stat(path, &st) < 0) {
				ret = -errno;
				log_error("could not stat file \"%s\": %s", path, strerror(-ret));
			} else if (!S_ISDIR(st.st_mode)) {
				ret = pgconf_read(conf, path, depth, false);
			}
		}
		free(entries[idx]);
	}
	free(entries);
	return ret;
}

/*
 * The value at @p: a quoted string, de-escaped as the server's DeescapeQuotedString()
 * does, or the characters up to a blank or `#`.  Returns it malloc'd, or NULL.
 */
static char *pgconf_value_parse(const char *p)
{
	char *value = malloc(strlen(p) + 1);
	size_t len = 0;

	if (!value)
		return NULL;
	if (*p != '\'') {
		while (*p && !isspace((unsigned char)*p) && *p != '#')
			value[len++] = *p++;
		value[len] = '\0';
		return value;
	}
	for (p++; *p; p++) {
		if (*p == '\'' && p[1] == '\'') {
			p++;
		} else if (*p == '\'') {
			break; /* the closing quote: what follows is not ours to judge */
		} else if (*p == '\\' && p[1]) {
			static const char letters[] = "bfnrt", meanings[] = "\b\f\n\r\t";
			const char *letter = strchr(letters, *++p);
			int octal = 0, digits;

			if (letter) {
				value[len++] = meanings[letter - letters];
				continue;
			}
			if (*p >= '0' && *p <= '7') {
				for (digits = 0; digits < 3 && p[digits] >= '0' && p[digits] <= '7';
				     digits++)
					octal = (octal << 3) + (p[digits] - '0');
				p += digits - 1;
				value[len++] = (char)octal;
				continue;
			}
		}
		value[len++] = *p;
	}
	value[len] = '\0';
	return value;
}

/* One line: `name [=] value`, a comment, an include directive, or nothing. */
static int pgconf_line(struct pgconf *conf, const char *p, const char *path, int line, int depth)
{
	char target[PATH_MAX];
	const char *name_start;
	char *name, *value;
	size_t name_len;
	int ret;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	name_start = p;
	while (*p && (isalnum((unsigned char)*p) || *p == '_' || *p == '.'))
		p++;
	name_len = (size_t)(p - name_start);
	if (name_len == 0)
		return 0; /* the server would refuse it; not ours to report */
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '=')
		p++;
	while (isspace((unsigned char)*p))
		p++;
	name = strndup(name_start, name_len);
	value = pgconf_value_parse(p);
	if (!name || !value) {
		free(name);
		free(value);
		log_error("out of memory");
		return -ENOMEM;
	}
	if (strcasecmp(name, "include") == 0 || strcasecmp(name, "include_if_exists") == 0) {
		pgconf_resolve(path, value, target, sizeof(target));
		ret = pgconf_read(conf, target, depth + 1,
				  strcasecmp(name, "include_if_exists") == 0);
	} else if (strcasecmp(name, "include_dir") == 0) {
		pgconf_resolve(path, value, target, sizeof(target));
		ret = pgconf_include_dir(conf, target, depth + 1);
	} else {
		return pgconf_set(conf, name, value, path, line); /* takes both */
	}
	free(name);
	free(value);
	return ret;
}

/* The lines of @text (@len bytes) of file @path; a NUL byte ends its line. */
static int pgconf_parse(struct pgconf *conf, const char *text, size_t len, const char *path,
			int depth)
{
	const char *end = text + len;
	char *line_text;
	int line = 0, ret = 0;

	while (ret == 0 && text < end) {
		const char *eol = memchr(text, '\n', (size_t)(end - text));
		size_t line_len = (size_t)((eol ? eol : end) - text);

		line++;
		line_text = strndup(text, line_len);
		if (!line_text) {
			log_error("out of memory");
			return -ENOMEM;
		}
		ret = pgconf_line(conf, line_text, path, line, depth);
		free(line_text);
		if (!eol)
			break;
		text = eol + 1;
	}
	return ret;
}

static int pgconf_read(struct pgconf *conf, const char *path, int depth, bool missing_ok)
{
	char *text;
	size_t len;
	int ret;

	if (depth > PGCONF_MAX_DEPTH) {
		log_error(
			"could not open configuration file \"%s\": maximum nesting depth exceeded",
			path);
		return -ELOOP;
	}
	if (missing_ok && access(path, F_OK) < 0 && errno == ENOENT)
		return 0;
	ret = textfile_read(path, "configuration file", PGCONF_FILE_MAX, &text, &len);
	if (ret < 0)
		return ret; /* logged */
	ret = pgconf_parse(conf, text, len, path, depth);
	free(text);
	return ret;
}

int pgconf_read_file(struct pgconf *conf, const char *path, bool missing_ok)
{
	return pgconf_read(conf, path, 0, missing_ok);
}

int pgconf_parse_string(struct pgconf *conf, const char *text, const char *source)
{
	return pgconf_parse(conf, text, strlen(text), source, 0);
}

/*
 * The next word of @text at *@at as the shell splits it (pg_ctl starts the server again
 * from this file through the shell): quoted and unquoted runs next to each other join,
 * no escapes (postmaster.opts writes each argument in double quotes, as it is).  Returns
 * false at the end.
 */
static bool opts_word(const char **at, char *out, size_t len)
{
	const char *p = *at + strspn(*at, " \t\r\n");
	size_t n = 0;
	char quote = 0;

	if (!*p)
		return false;
	for (; *p && (quote || !strchr(" \t\r\n", *p)); p++) {
		if (!quote && (*p == '"' || *p == '\'')) {
			quote = *p;
			continue;
		}
		if (quote && *p == quote) {
			quote = 0;
			continue;
		}
		if (n + 1 < len)
			out[n++] = *p;
	}
	out[n] = '\0';
	*at = p;
	return true;
}

/*
 * The server's command line as it was last started, @pgdata/postmaster.opts (written by
 * the postmaster: the program, then each argument in double quotes): its settings (`-c
 * name=value`, `-cname=value`, `--name=value`; a `-` in a name is a `_`, as the server
 * reads them) into @args, one "name = 'value'" line each, and config_file's value into
 * @config_file ("" without).  Returns 0, or -ENOENT without the file (a server never
 * started, or a copy of its data directory).
 */
static int postmaster_opts(const char *pgdata, char *args, size_t args_len, char *config_file,
			   size_t config_len)
{
	char path[PATH_MAX], text[8192], word[4096], line[2 * 4096 + 16];
	const char *at = text;
	size_t n, used = 0;
	bool setting_next = false, first = true;
	FILE *in;

	args[0] = '\0';
	config_file[0] = '\0';
	snprintf(path, sizeof(path), "%s/postmaster.opts", pgdata);
	in = fopen(path, "re");
	if (!in)
		return -ENOENT;
	n = fread(text, 1, sizeof(text) - 1, in);
	fclose(in);
	text[n] = '\0';
	while (opts_word(&at, word, sizeof(word))) {
		char *setting = word, *eq;

		if (first) { /* the program */
			first = false;
			continue;
		}
		if (setting_next)
			setting_next = false;
		else if (!strcmp(word, "-c"))
			setting_next = true;
		else if (!strncmp(word, "-c", 2))
			setting = word + 2;
		else if (!strncmp(word, "--", 2) && strchr(word, '='))
			setting = word + 2;
		else
			continue;
		if (setting_next)
			continue;
		eq = strchr(setting, '=');
		if (!eq || eq == setting)
			continue;
		for (char *c = setting; c < eq; c++)
			if (*c == '-')
				*c = '_';
		if (!strncmp(setting, "config_file=", 12)) {
			snprintf(config_file, config_len, "%s", eq + 1);
			continue;
		}
		/* name = 'value', its quotes and backslashes doubled (the parser takes them
		 * as escapes); a line that does not fit is left out whole */
		n = (size_t)snprintf(line, sizeof(line), "%.*s = '", (int)(eq - setting), setting);
		for (const char *v = eq + 1; *v && n + 4 < sizeof(line); v++) {
			if (*v == '\'' || *v == '\\')
				line[n++] = *v;
			line[n++] = *v;
		}
		line[n++] = '\'';
		line[n++] = '\n';
		line[n] = '\0';
		if (used + n < args_len) {
			memcpy(args + used, line, n + 1);
			used += n;
		}
	}
	return 0;
}

int pgconf_read_data_dir(struct pgconf *conf, const char *pgdata)
{
	char path[PATH_MAX], config_file[PATH_MAX], args[8192];
	unsigned int major;
	char cluster[256];
	struct stat st;
	int ret;

	/* Where the server reads its configuration: config_file on its command line (as
	 * Debian's pg_ctlcluster gives it), else the data directory's; one of Debian's
	 * clusters never started has it in /etc/postgresql/VERSION/CLUSTER. */
	postmaster_opts(pgdata, args, sizeof(args), config_file, sizeof(config_file));
	if (config_file[0])
		snprintf(path, sizeof(path), "%s", config_file);
	else
		snprintf(path, sizeof(path), "%s/postgresql.conf", pgdata);
	if (!config_file[0] && stat(path, &st) < 0 &&
	    sscanf(pgdata, "/var/lib/postgresql/%u/%255[^/]", &major, cluster) == 2)
		snprintf(path, sizeof(path), "/etc/postgresql/%u/%s/postgresql.conf", major,
			 cluster);
	ret = pgconf_read(conf, path, 0, false);
	if (ret < 0)
		return ret;
	snprintf(path, sizeof(path), "%s/postgresql.auto.conf", pgdata);
	ret = pgconf_read(conf, path, 0, true);
	if (ret < 0)
		return ret;
	/* the command line's settings override the files' */
	snprintf(path, sizeof(path), "%s/postmaster.opts", pgdata);
	return args[0] ? pgconf_parse(conf, args, strlen(args), path, 0) : 0;
}

int pgconf_parse_bytes(const char *text, uint64_t unit, uint64_t *bytes)
{
	static const struct {
		const char *name;
		uint64_t factor;
	} units[] = { { "B", 1 },
		      { "kB", UINT64_C(1) << 10 },
		      { "MB", UINT64_C(1) << 20 },
		      { "GB", UINT64_C(1) << 30 },
		      { "TB", UINT64_C(1) << 40 } };
	uint64_t number = 0, factor = unit;
	const char *p = text;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (number > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		number = number * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		factor = 0;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (!strcmp(p, units[i].name))
				factor = units[i].factor;
		if (!factor)
			return -EINVAL;
	}
	if (factor && number > UINT64_MAX / factor)
		return -EINVAL;
	*bytes = number * factor;
	return 0;
}
