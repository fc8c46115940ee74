// SPDX-License-Identifier: MIT
/*
 * Fuzz target: PostgreSQL replication payloads and LSN text (daemon/proto/pgrepl.c).
 *
 * The input is what PQgetCopyData() would hand the source, and the same bytes as text.
 * Properties: a parsed XLogData's data lies inside the message and ends at or before the
 * end of the LSN space; a parsed keepalive is exactly 18 bytes and builds back into the
 * same fields; an LSN that parses formats back to text that parses to the same LSN; a
 * segment size that parses is one PostgreSQL allows.
 */
#include <errno.h>

#include "fuzz.h"
#include "proto/pgrepl.h"
#include "wal/name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly @size bytes, so that ASan sees any read past the end. */
	uint8_t *msg = malloc(size ? size : 1);
	char *text = fuzz_strndup(data, size);
	struct pgrepl_xlogdata x;
	struct pgrepl_keepalive k;
	char lsn_text[PGREPL_LSN_TEXT];
	uint8_t status[PGREPL_STATUS_LEN];
	uint64_t lsn, again;
	uint32_t seg_size;
	int ret;

	if (!msg)
		abort();
	memcpy(msg, data, size);

	ret = pgrepl_parse_xlogdata(msg, size, &x);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0) {
		FUZZ_ASSERT(size >= PGREPL_XLOGDATA_HDR);
		FUZZ_ASSERT(x.data == msg + PGREPL_XLOGDATA_HDR);
		FUZZ_ASSERT((size_t)x.len == size - PGREPL_XLOGDATA_HDR);
		FUZZ_ASSERT(x.data_start + x.len >= x.data_start);
		if (x.len > 0) /* touch the last byte: it must be ours */
			FUZZ_ASSERT(x.data[x.len - 1] == data[size - 1]);
	}

	ret = pgrepl_parse_keepalive(msg, size, &k);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0) {
		FUZZ_ASSERT(size == PGREPL_KEEPALIVE_LEN);
		/* The 'r' carrying the keepalive's fields holds them at the same offsets. */
		pgrepl_build_status(status, k.wal_end, 0, 0, k.send_time, k.reply_requested);
		FUZZ_ASSERT(status[0] == PGREPL_MSG_STATUS);
		FUZZ_ASSERT(memcmp(status + 1, msg + 1, 8) == 0);
		FUZZ_ASSERT(memcmp(status + 25, msg + 9, 8) == 0);
		FUZZ_ASSERT(status[33] == msg[17]);
	}

	ret = pgrepl_lsn_parse(text, &lsn);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0) {
		pgrepl_lsn_format(lsn, lsn_text, sizeof(lsn_text));
		FUZZ_ASSERT(pgrepl_lsn_parse(lsn_text, &again) == 0 && again == lsn);
		FUZZ_ASSERT(strlen(text) <= PGREPL_LSN_TEXT - 1);
	}

	ret = pgrepl_parse_seg_size(text, &seg_size);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0)
		FUZZ_ASSERT(wal_seg_size_valid(seg_size));

	free(text);
	free(msg);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}
