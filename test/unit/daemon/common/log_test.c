// SPDX-License-Identifier: MIT
/* Unit tests for daemon/common/log.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/log.h"

struct capture {
	char text[16384];
	size_t len;
	int lines;
	enum log_level last_level;
};

static void capture_sink(void *arg, enum log_level level, const char *line, size_t len)
{
	struct capture *cap = arg;

	assert_true(len > 0 && line[len - 1] == '\n');
	assert_true(cap->len + len < sizeof(cap->text));
	memcpy(cap->text + cap->len, line, len);
	cap->len += len;
	cap->text[cap->len] = '\0';
	cap->lines++;
	cap->last_level = level;
}

static int setup(void **state)
{
	struct capture *cap = calloc(1, sizeof(*cap));

	if (!cap)
		return -1;
	log_set_level(LOG_LEVEL_LOG);
	log_set_prefix(false);
	log_set_sink(capture_sink, cap);
	*state = cap;
	return 0;
}

static int teardown(void **state)
{
	log_set_sink(NULL, NULL);
	log_set_prefix(true);
	log_set_level(LOG_LEVEL_LOG);
	free(*state);
	return 0;
}

static void assert_matches(const char *text, const char *pattern)
{
	regex_t re;

	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, text, 0, NULL, 0) != 0)
		fail_msg("\"%s\" does not match /%s/", text, pattern);
	regfree(&re);
}

static void test_no_prefix(void **state)
{
	struct capture *cap = *state;

	log_error("could not open file \"%s\": %s", "x", strerror(ENOENT));
	assert_string_equal(cap->text,
			    "ERROR:  could not open file \"x\": No such file or directory\n");
	assert_int_equal(cap->last_level, LOG_LEVEL_ERROR);
}

static void test_prefix(void **state)
{
	struct capture *cap = *state;
	char pattern[128];

	log_set_prefix(true);
	log_log("replica \"%s\" connected", "r1");
	snprintf(pattern, sizeof(pattern),
		 "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} UTC "
		 "\\[%ld\\] LOG:  replica \"r1\" connected\n$",
		 (long)getpid());
	assert_matches(cap->text, pattern);
}

static void test_threshold(void **state)
{
	struct capture *cap = *state;

	assert_int_equal(log_get_level(), LOG_LEVEL_LOG);
	log_debug("hidden");
	log_info("hidden");
	log_log("shown log");
	log_warning("shown warning");
	log_set_level(LOG_LEVEL_ERROR);
	assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
	log_warning("hidden");
	log_error("shown error");
	log_fatal("shown fatal");
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("shown debug");
	assert_string_equal(cap->text, "LOG:  shown log\n"
				       "WARNING:  shown warning\n"
				       "ERROR:  shown error\n"
				       "FATAL:  shown fatal\n"
				       "DEBUG:  shown debug\n");
}

static void test_detail_hint(void **state)
{
	struct capture *cap = *state;

	log_error("invalid value for parameter \"%s\": \"%s\"", "max_senders", "abc");
	log_detail("Valid values are between %d and %d.", 1, 64);
	log_hint("Check line %d.", 3);
	log_debug("dropped");
	log_detail("Not printed.");
	log_hint("Not printed either.");
	assert_string_equal(cap->text,
			    "ERROR:  invalid value for parameter \"max_senders\": \"abc\"\n"
			    "DETAIL:  Valid values are between 1 and 64.\n"
			    "HINT:  Check line 3.\n");
	assert_int_equal(cap->lines, 3);
	assert_int_equal(cap->last_level, LOG_LEVEL_ERROR);
}

static void test_long_message(void **state)
{
	struct capture *cap = *state;
	char *big = malloc(10000);

	assert_non_null(big);
	memset(big, 'a', 9999);
	big[9999] = '\0';
	log_log("%s", big);
	free(big);
	assert_int_equal(cap->lines, 1);
	assert_true(cap->len < 4097);
	assert_memory_equal(cap->text + cap->len - 4, "...\n", 4);
	assert_memory_equal(cap->text, "LOG:  aaaa", 10);
}

/* A control character in a message (a peer's ERROR text, a file name) cannot make a line
 * of its own, nor reach the terminal: one entry, one line. */
static void test_control_characters(void **state)
{
	struct capture *cap = *state;

	log_log("replica \"%s\" reported an error: %s", "r1",
		"x\n2026-12-06 LOG:  forged\x1b[2J\x7f");
	assert_int_equal(cap->lines, 1);
	assert_string_equal(
		cap->text,
		"LOG:  replica \"r1\" reported an error: x?2026-12-06 LOG:  forged?[2J?\n");
}

static void test_level_names(void **state)
{
	static const char *const names[] = { "debug", "info", "log", "warning", "error", "fatal" };
	enum log_level level;

	(void)state;
	for (int i = LOG_LEVEL_DEBUG; i <= LOG_LEVEL_FATAL; i++) {
		assert_string_equal(log_level_name((enum log_level)i), names[i]);
		assert_int_equal(log_level_parse(names[i], &level), 0);
		assert_int_equal(level, i);
	}
	assert_int_equal(log_level_parse("WARNING", &level), 0);
	assert_int_equal(level, LOG_LEVEL_WARNING);
	assert_int_equal(log_level_parse("notice", &level), -EINVAL);
	assert_int_equal(log_level_parse("", &level), -EINVAL);
}

/* Without a sink, lines go to fd 2, one line per write. */
static void test_stderr(void **state)
{
	char path[] = "/tmp/walship-log-test-XXXXXX";
	char buf[256];
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	ssize_t n;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	log_set_sink(NULL, NULL);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	errno = EAGAIN;
	log_warning("disk \"%s\" is %d%% full", "spool", 91);
	log_hint("Free some space.");
	assert_int_equal(errno, EAGAIN); /* logging keeps errno for the caller */
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "WARNING:  disk \"spool\" is 91% full\nHINT:  Free some space.\n");
	close(fd);
	unlink(path);
}

/* Journal mode: "<N>" syslog priorities instead of the timestamp, even with the prefix on. */
static void test_journal(void **state)
{
	struct capture *cap = *state;

	log_set_prefix(true);
	log_set_journal(true);
	log_set_level(LOG_LEVEL_DEBUG);
	log_debug("d");
	log_info("i");
	log_log("l");
	log_warning("w");
	log_error("e");
	log_hint("Do it.");
	log_fatal("f");
	log_set_journal(false);
	assert_string_equal(cap->text, "<7>DEBUG:  d\n"
				       "<6>INFO:  i\n"
				       "<6>LOG:  l\n"
				       "<4>WARNING:  w\n"
				       "<3>ERROR:  e\n"
				       "<3>HINT:  Do it.\n"
				       "<2>FATAL:  f\n");
}

/* stderr is the journal only when JOURNAL_STREAM names its device and inode. */
static void test_stderr_is_journal(void **state)
{
	char path[] = "/tmp/walship-log-test-XXXXXX";
	char stream[64];
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	struct stat st;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	unsetenv("JOURNAL_STREAM");
	assert_false(log_stderr_is_journal());
	setenv("JOURNAL_STREAM", stream, 1);
	assert_true(log_stderr_is_journal());
	snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", stream, 1);
	assert_false(log_stderr_is_journal());
	setenv("JOURNAL_STREAM", "garbage", 1);
	assert_false(log_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detail_hint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_control_characters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_level_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stderr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stderr_is_journal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
