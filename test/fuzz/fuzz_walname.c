// SPDX-License-Identifier: MIT
/*
 * Fuzz target: WAL file names (daemon/wal/name.c).
 *
 * Properties: a name that parses is at most WAL_NAME_MAX characters of [0-9A-Z.a-z] with
 * no slash; a segment name formats back to itself from its segment number (at every
 * segment size for which the number is in range).
 */
#include <errno.h>

#include "fuzz.h"
#include "wal/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = fuzz_strndup(data, size);
	struct wal_name parsed;
	char again[64];
	uint64_t segno;
	int ret;

	ret = wal_name_parse(name, &parsed);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	FUZZ_ASSERT(wal_name_valid(name) == (ret == 0));
	if (ret == 0) {
		FUZZ_ASSERT(strlen(name) <= WAL_NAME_MAX);
		FUZZ_ASSERT(strchr(name, '/') == NULL && strstr(name, "..") == NULL);
		FUZZ_ASSERT(parsed.timeline != 0);
		FUZZ_ASSERT(wal_file_kind_name(parsed.kind) != NULL);
		for (uint32_t seg_size = 1u << 20; seg_size != 0 && seg_size <= (1u << 30);
		     seg_size <<= 1) {
			if (parsed.kind == WAL_FILE_HISTORY)
				break;
			if (wal_name_segno(&parsed, seg_size, &segno) != 0)
				continue;
			if (parsed.kind != WAL_FILE_SEGMENT)
				continue;
			wal_name_format_segment(again, sizeof(again), parsed.timeline, segno,
						seg_size);
			FUZZ_ASSERT(strcmp(again, name) == 0);
		}
	}
	free(name);
	return 0;
}
