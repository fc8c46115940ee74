// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the config parser (config_parse_string() in daemon/common/config.c), and
 * config_split_address() on the same text.
 *
 * Properties: any text either parses or is refused with -EINVAL; a refused text leaves
 * the config as it was (all or nothing); a text that parsed dumps (config_dump()) to a
 * file that parses again to the same config.
 */
#include <errno.h>

#include "common/config.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg, before, again;
	char *text = fuzz_strndup(data, size);
	char host[CONFIG_MAX_ADDR];
	uint16_t port;
	char *dump = NULL;
	size_t dump_len = 0;
	FILE *out;
	int ret;

	config_defaults(&cfg);
	before = cfg;
	ret = config_parse_string(&cfg, text, "fuzz.conf");
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret != 0) {
		FUZZ_ASSERT(memcmp(&cfg, &before, sizeof(cfg)) == 0);
	} else {
		/* What was accepted dumps to a file that loads back to the same values. */
		out = open_memstream(&dump, &dump_len);
		FUZZ_ASSERT(out != NULL);
		config_dump(&cfg, out);
		fclose(out);
		config_defaults(&again);
		FUZZ_ASSERT(config_parse_string(&again, dump, "dump.conf") == 0);
		FUZZ_ASSERT(memcmp(&cfg, &again, sizeof(cfg)) == 0);
		free(dump);
	}
	(void)config_split_address(text, host, sizeof(host), &port);
	free(text);
	return 0;
}
