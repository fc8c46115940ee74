/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the libFuzzer targets in test/fuzz/ (one fuzz_<name>.c per target).
 *
 * A target must never abort on bad input: every input is "bad input" for a parser.  It
 * aborts (FUZZ_ASSERT) only when a property that must hold for every input is broken,
 * e.g. a message that decoded does not encode back to the same bytes.
 */
#ifndef WALSHIP_TEST_FUZZ_H
#define WALSHIP_TEST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property every input must keep; a failure is a crash libFuzzer records. */
#define FUZZ_ASSERT(cond)                                                                   \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                     \
			abort();                                                            \
		}                                                                           \
	} while (0)

/* Discards every log line, but only after it has been formatted (that code runs too). */
static inline void fuzz_log_discard(void *arg, enum log_level level, const char *line, size_t len)
{
	(void)arg;
	(void)level;
	(void)line;
	(void)len;
}

/* Parsers log their errors: keep them quiet but formatted.  Call from LLVMFuzzerInitialize. */
static inline void fuzz_quiet_logs(void)
{
	log_set_prefix(false);
	log_set_level(LOG_LEVEL_DEBUG);
	log_set_sink(fuzz_log_discard, NULL);
}

/* @data as a NUL-terminated heap string (ASan sees reads past its end); free() it. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (!text)
		abort();
	if (size > 0)
		memcpy(text, data, size);
	text[size] = '\0';
	return text;
}

#endif /* WALSHIP_TEST_FUZZ_H */
