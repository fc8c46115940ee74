/* SPDX-License-Identifier: MIT */
/*
 * For unit tests: capture what common/log writes, to assert on the messages.
 *
 *   log_capture_start()      in a test's setup: messages of LOG and above, without the
 *                            time and pid prefix, go to `captured` instead of stderr
 *   log_capture_clear()      forget what was captured so far
 *   assert_logged(NEEDLE)    fail the test unless NEEDLE is in what was captured
 *   log_capture_stop()       in its teardown: back to stderr with the prefix
 *
 * Included by one test file each (its definitions are static).  Needs <cmocka.h> first.
 */
#ifndef WALSHIP_TEST_UNIT_LOG_CAPTURE_H
#define WALSHIP_TEST_UNIT_LOG_CAPTURE_H

#include <string.h>

#include "common/log.h"

static char captured[65536];
static size_t captured_len;

static void log_capture_sink(void *arg, enum log_level level, const char *line, size_t len)
{
	(void)arg;
	(void)level;
	if (captured_len + len >= sizeof(captured))
		len = sizeof(captured) - captured_len - 1;
	memcpy(captured + captured_len, line, len);
	captured_len += len;
	captured[captured_len] = '\0';
}

static inline void log_capture_clear(void)
{
	captured[0] = '\0';
	captured_len = 0;
}

static inline void log_capture_start(void)
{
	log_capture_clear();
	log_set_prefix(false);
	log_set_level(LOG_LEVEL_LOG);
	log_set_sink(log_capture_sink, NULL);
}

static inline void log_capture_stop(void)
{
	log_set_sink(NULL, NULL);
	log_set_prefix(true);
}

static inline void assert_logged(const char *needle)
{
	if (!strstr(captured, needle))
		fail_msg("expected \"%s\" in the log, got:\n%s", needle, captured);
}

#endif /* WALSHIP_TEST_UNIT_LOG_CAPTURE_H */
