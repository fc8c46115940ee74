/* SPDX-License-Identifier: MIT */
/*
 * Logging in PostgreSQL's message style, to stderr:
 *
 *   2026-11-28 18:20:01.123 UTC [4242] LOG:  replica "r1" connected from 10.0.0.2:41234
 *   2026-11-28 18:20:01.124 UTC [4242] DETAIL:  Its system identifier is 7713288329218603033.
 *
 * Messages are lowercase without a trailing period; DETAIL and HINT lines are full
 * sentences.  A failure is logged once, where it happens.  Each line is one write(2), so
 * lines from several threads do not interleave; without the prefix (the CLI) a line is
 * just `ERROR:  could not open file "x": No such file or directory`.
 */
#ifndef WALSHIP_COMMON_LOG_H
#define WALSHIP_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/compiler.h"

enum log_level {
	LOG_LEVEL_DEBUG = 0, /* "DEBUG" */
	LOG_LEVEL_INFO, /* "INFO" */
	LOG_LEVEL_LOG, /* "LOG": normal operational messages (the default threshold) */
	LOG_LEVEL_WARNING, /* "WARNING" */
	LOG_LEVEL_ERROR, /* "ERROR": an operation failed, the process goes on */
	LOG_LEVEL_FATAL, /* "FATAL": the process is about to exit */
};

/* Messages below @level are dropped.  Default LOG_LEVEL_LOG. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Prefix timestamps and pids (daemon); the CLI turns them off for one-line errors. */
void log_set_prefix(bool on);

/*
 * True when stderr is a stream to the systemd journal: $JOURNAL_STREAM names stderr's
 * device and inode (systemd.exec(5)), so it was not redirected elsewhere since.
 */
bool log_stderr_is_journal(void);

/*
 * Journal mode: each line starts with "<N>", N the syslog priority of its level (as
 * sd-daemon(3) describes), and has no timestamp or pid (the journal records both):
 * DEBUG debug(7), INFO and LOG info(6), WARNING warning(4), ERROR err(3), FATAL crit(2).
 * DETAIL and HINT lines carry their message's priority.
 */
void log_set_journal(bool on);

/* Parse "debug", "info", "log", "warning", "error", "fatal"; returns -EINVAL otherwise. */
int log_level_parse(const char *text, enum log_level *level);
const char *log_level_name(enum log_level level);

/*
 * Write one message at @level.  log_detail() and log_hint() add DETAIL: and HINT: lines
 * belonging to the message just written (they print only if that message was printed).
 */
void log_msg(enum log_level level, const char *fmt, ...) attr_printf(2, 3);
void log_detail(const char *fmt, ...) attr_printf(1, 2);
void log_hint(const char *fmt, ...) attr_printf(1, 2);

/*
 * Where formatted lines go instead of stderr (tests capture messages this way).  @line is
 * one whole line, prefix and trailing newline included, @len its length; @level is the
 * level of the message (a DETAIL or HINT line carries its message's level).  NULL
 * restores stderr.  Not for use while other threads log.
 */
typedef void log_sink_fn(void *arg, enum log_level level, const char *line, size_t len);
void log_set_sink(log_sink_fn *sink, void *arg);

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_log(...) log_msg(LOG_LEVEL_LOG, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_fatal(...) log_msg(LOG_LEVEL_FATAL, __VA_ARGS__)

#endif /* WALSHIP_COMMON_LOG_H */
