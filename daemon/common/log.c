// SPDX-License-Identifier: MIT
/*
 * PostgreSQL-style log lines on stderr.  Each line is formatted into a buffer on the stack
 * and written with one write(2); an over-long message is cut to fit and marked with "...".
 */
#include "common/compiler.h"
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static enum log_level log_threshold = LOG_LEVEL_LOG;
static bool log_prefix = true;
static bool log_journal;
static log_sink_fn *log_sink;
static void *log_sink_arg;

/* Level of the last message this thread printed, or -1 when it was dropped. */
static _Thread_local int log_last_printed = -1;

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",	 [LOG_LEVEL_INFO] = "info",   [LOG_LEVEL_LOG] = "log",
	[LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_FATAL] = "fatal",
};

/*
 * Syslog priorities of the levels in journal mode.  PostgreSQL's own syslog mapping
 * (elog.c) makes ERROR a warning because there it is one query failing; here an ERROR is
 * an operation of the daemon failing, so it is err, and FATAL (the daemon exits) crit.
 */
static const int log_level_priorities[] = {
	[LOG_LEVEL_DEBUG] = LOG_DEBUG, [LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_LOG] = LOG_INFO,    [LOG_LEVEL_WARNING] = LOG_WARNING,
	[LOG_LEVEL_ERROR] = LOG_ERR,   [LOG_LEVEL_FATAL] = LOG_CRIT,
};

static const char *const log_level_labels[] = {
	[LOG_LEVEL_DEBUG] = "DEBUG",	 [LOG_LEVEL_INFO] = "INFO",   [LOG_LEVEL_LOG] = "LOG",
	[LOG_LEVEL_WARNING] = "WARNING", [LOG_LEVEL_ERROR] = "ERROR", [LOG_LEVEL_FATAL] = "FATAL",
};

void log_set_level(enum log_level level)
{
	if (level >= LOG_LEVEL_DEBUG && level <= LOG_LEVEL_FATAL)
		log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

void log_set_prefix(bool on)
{
	log_prefix = on;
}

bool log_stderr_is_journal(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!stream || sscanf(stream, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_journal(bool on)
{
	log_journal = on;
}

void log_set_sink(log_sink_fn *sink, void *arg)
{
	log_sink = sink;
	log_sink_arg = arg;
}

int log_level_parse(const char *text, enum log_level *level)
{
	for (int candidate = LOG_LEVEL_DEBUG; candidate <= LOG_LEVEL_FATAL; candidate++) {
		if (strcasecmp(text, log_level_names[candidate]) == 0) {
			*level = (enum log_level)candidate;
			return 0;
		}
	}
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	if (level >= LOG_LEVEL_DEBUG && level <= LOG_LEVEL_FATAL)
		return log_level_names[level];
	return "unknown";
}

/* Write @len bytes of @line, retrying only on EINTR or a short write. */
static void log_write_line(enum log_level level, const char *line, size_t len)
{
	int saved_errno = errno;

	if (log_sink) {
		log_sink(log_sink_arg, level, line, len);
		errno = saved_errno;
		return;
	}
	while (len > 0) {
		ssize_t written = write(STDERR_FILENO, line, len);

		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			break; /* nowhere left to report it */
		line += written;
		len -= (size_t)written;
	}
	errno = saved_errno;
}

/* Format "<prefix><label>:  <message>\n" and write it. */
attr_printf(3, 0) static void log_emit(enum log_level level, const char *label, const char *fmt,
				       va_list args)
{
	char line[LOG_LINE_MAX];
	size_t used = 0, msg;
	int n;

	if (log_journal) {
		n = snprintf(line, sizeof(line), "<%d>", log_level_priorities[level]);
		if (n > 0)
			used = (size_t)n;
	} else if (log_prefix) {
		struct timespec now;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		used = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		n = snprintf(line + used, sizeof(line) - used, ".%03ld UTC [%ld] ",
			     now.tv_nsec / 1000000, (long)getpid());
		if (n > 0)
			used += (size_t)n;
	}
	n = snprintf(line + used, sizeof(line) - used, "%s:  ", label);
	if (n > 0)
		used += (size_t)n;

	msg = used;
	/* Leave room for "...\n" so a long message still ends its line. */
	n = vsnprintf(line + used, sizeof(line) - used - 4, fmt, args);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(line) - used - 4) {
		used = sizeof(line) - 5;
		memcpy(line + used, "...", 3);
		used += 3;
	} else {
		used += (size_t)n;
	}
	/* One entry, one line: a control character in the message (from a peer's ERROR
	 * text, a file name, a server's message: a newline that would forge a line of the
	 * log, a terminal escape) becomes '?'. */
	for (size_t i = msg; i < used; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[used++] = '\n';
	log_write_line(level, line, used);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list args;

	if (level < LOG_LEVEL_DEBUG || level > LOG_LEVEL_FATAL)
		level = LOG_LEVEL_LOG;
	if (level < log_threshold) {
		log_last_printed = -1;
		return;
	}
	log_last_printed = level;
	va_start(args, fmt);
	log_emit(level, log_level_labels[level], fmt, args);
	va_end(args);
}

void log_detail(const char *fmt, ...)
{
	va_list args;

	if (log_last_printed < 0)
		return;
	va_start(args, fmt);
	log_emit((enum log_level)log_last_printed, "DETAIL", fmt, args);
	va_end(args);
}

void log_hint(const char *fmt, ...)
{
	va_list args;

	if (log_last_printed < 0)
		return;
	va_start(args, fmt);
	log_emit((enum log_level)log_last_printed, "HINT", fmt, args);
	va_end(args);
}
