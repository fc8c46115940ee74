// SPDX-License-Identifier: MIT
/*
 * One libFuzzer binary for every target in test/fuzz/ (build/fuzz/fuzz), run through its
 * links build/fuzz/fuzz_<name>: the name it is started by picks the target.
 *
 * Why one binary: linking libFuzzer with the address and undefined-behaviour sanitizers'
 * runtimes costs more than half a second of CPU per program, ten times over for ten
 * targets, and `make check` builds them all (test/system/t_95_fuzz.sh).  Each fuzz_<name>.c
 * is still written as a plain libFuzzer target; the build renames its two entry points to
 * fuzz_<name>_one and fuzz_<name>_init (test/fuzz/Makefile) and lists the targets in
 * targets.h, one FUZZ_TARGET(name) line each.
 */
#include "common/compiler.h"
#include "fuzz.h"

#define FUZZ_TARGET(name)                                        \
	int fuzz_##name##_one(const uint8_t *data, size_t size); \
	int fuzz_##name##_init(int *argc, char ***argv) __attribute__((weak));
#include "targets.h"
#undef FUZZ_TARGET

struct fuzz_target {
	const char *name;
	int (*one)(const uint8_t *data, size_t size);
	int (*init)(int *argc, char ***argv); /* NULL: the target has none */
};

static const struct fuzz_target targets[] = {
#define FUZZ_TARGET(name) { #name, fuzz_##name##_one, fuzz_##name##_init },
#include "targets.h"
#undef FUZZ_TARGET
};

static const struct fuzz_target *target;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *prog = (*argv)[0];
	const char *base = strrchr(prog, '/');

	base = base ? base + 1 : prog;
	if (strncmp(base, "fuzz_", 5) == 0) {
		for (size_t i = 0; i < ARRAY_SIZE(targets); i++) {
			if (strcmp(base + 5, targets[i].name) == 0)
				target = &targets[i];
		}
	}
	if (!target) {
		fprintf(stderr, "%s: run me as fuzz_<target> (a link to me), one of:", prog);
		for (size_t i = 0; i < ARRAY_SIZE(targets); i++)
			fprintf(stderr, " %s", targets[i].name);
		fprintf(stderr, "\n");
		exit(2);
	}
	return target->init ? target->init(argc, argv) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return target->one(data, size);
}
