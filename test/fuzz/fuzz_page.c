// SPDX-License-Identifier: MIT
/*
 * Fuzz target: WAL page-header validation (wal_validator_begin/feed/end in
 * daemon/wal/page.c), as the replica runs it on DATA chunks of any size.
 *
 * Input: byte 0 picks the file kind (bits 0-1: segment, partial, history, backup), whether
 * an expected system identifier is set (bit 2) and how many later pages get a valid short
 * header stamped on them (bits 3-7, so that the fuzzer reaches the continuation and tail
 * rules without writing 8 kB pages itself); byte 1 picks the announced file size (1 MiB,
 * 2 MiB, the input's length, or a 16-bit count of kB); bytes 2-3 seed the piece lengths;
 * the rest is the start of the file, zero-filled up to the announced size.
 *
 * Properties: results are 0 or -EINVAL; the verdict is the same whether the file comes in
 * one piece or in many pieces of random sizes (a page header split across two DATA
 * chunks must not change anything); an accepted segment reports the identity it claims.
 */
#include <errno.h>

#include "fuzz.h"
#include "wal/page.h"

#define MB (1024u * 1024u)
#define FUZZ_SYSID UINT64_C(7713288329218603033)
#define FUZZ_FILE_MAX (2 * MB) /* bytes actually built and fed */

static const char *const kind_names[] = {
	"000000010000000000000001",
	"000000010000000000000001.partial",
	"00000002.history",
	"000000010000000000000001.00000028.backup",
};

static uint8_t image[FUZZ_FILE_MAX];

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* Validate the first @fed bytes of image[] as a @file_size file; @seed 0 = one piece. */
static int validate(const struct wal_name *name, uint64_t file_size, uint64_t sysid, size_t fed,
		    uint32_t seed, struct wal_identity *id)
{
	struct wal_validator wv;
	size_t off = 0;
	int ret;

	ret = wal_validator_begin(&wv, name, file_size, sysid);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret)
		return ret;
	while (off < fed) {
		size_t piece = fed - off;

		if (seed) {
			/* xorshift32: piece sizes from 1 byte to 64 kB, mostly small. */
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			piece = 1 + seed % ((seed & 0x100) ? 65536 : 61);
			if (piece > fed - off)
				piece = fed - off;
		}
		ret = wal_validator_feed(&wv, image + off, piece);
		FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
		FUZZ_ASSERT(wv.message[sizeof(wv.message) - 1] == '\0');
		if (ret)
			return ret;
		off += piece;
	}
	ret = wal_validator_end(&wv, id);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wal_identity id_whole, id_pieces;
	struct wal_name name;
	uint64_t file_size, sysid;
	uint32_t block_size, seed, stamps;
	size_t prefix_len, fed;
	int whole, pieces;

	if (size < 4)
		return 0;
	FUZZ_ASSERT(wal_name_parse(kind_names[data[0] & 3], &name) == 0);
	sysid = (data[0] & 4) ? FUZZ_SYSID : 0;
	stamps = data[0] >> 3;
	switch (data[1] & 3) {
	case 0:
		file_size = MB;
		break;
	case 1:
		file_size = 2 * MB;
		break;
	case 2:
		file_size = size - 4;
		break;
	default:
		file_size = (uint64_t)((data[1] >> 2) | (data[2] << 6)) * 1024;
		break;
	}
	seed = (uint32_t)(data[2] | (data[3] << 8)) | 1;
	data += 4;
	size -= 4;

	fed = file_size < FUZZ_FILE_MAX ? (size_t)file_size : FUZZ_FILE_MAX;
	prefix_len = size < fed ? size : fed;
	memset(image, 0, fed);
	memcpy(image, data, prefix_len);

	/* Valid short headers on pages 1..stamps, after the fuzzer's own bytes. */
	block_size = prefix_len >= 40 ? le32(image + 36) : 8192;
	if (block_size < 1024 || block_size > 65536 || (block_size & (block_size - 1)))
		block_size = 8192;
	for (uint32_t page = 1; page <= stamps; page++) {
		uint64_t off = (uint64_t)page * block_size;
		uint64_t addr = (uint64_t)name.seg * file_size + off;
		uint8_t *hdr = image + off;

		if (off + WAL_PAGE_SHORT_HEADER > fed)
			break;
		if (off < prefix_len)
			continue;
		memcpy(hdr, image, 2); /* page 0's magic */
		memcpy(hdr + 4, image + 4, 4); /* page 0's timeline */
		for (int idx = 0; idx < 8; idx++)
			hdr[8 + idx] = (uint8_t)(addr >> (8 * idx));
	}

	whole = validate(&name, file_size, sysid, fed, 0, &id_whole);
	pieces = validate(&name, file_size, sysid, fed, seed, &id_pieces);
	FUZZ_ASSERT(whole == pieces);
	if (whole == 0) {
		FUZZ_ASSERT(id_whole.system_identifier == id_pieces.system_identifier &&
			    id_whole.page_magic == id_pieces.page_magic &&
			    id_whole.seg_size == id_pieces.seg_size &&
			    id_whole.block_size == id_pieces.block_size &&
			    id_whole.timeline == id_pieces.timeline);
		FUZZ_ASSERT(file_size == fed); /* end() refuses a file not fed whole */
		if (name.kind == WAL_FILE_SEGMENT || name.kind == WAL_FILE_PARTIAL) {
			FUZZ_ASSERT(id_whole.seg_size == file_size);
			FUZZ_ASSERT(id_whole.page_magic == le16(image));
			FUZZ_ASSERT(wal_page_magic_version(id_whole.page_magic) != NULL);
			FUZZ_ASSERT(sysid == 0 || id_whole.system_identifier == sysid);
		}
	}
	return 0;
}
