// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the WAL record decoder (wal_decoder_begin/feed/end in daemon/wal/record.c),
 * fed as the walsender endpoint feeds it: WAL bytes in pieces of any size.
 *
 * Input: byte 0 bit 0 stamps a valid page header (long on the segment's first page) on
 * every 8 kB page, taking xlp_info's contrecord bits and xlp_rem_len from the input's
 * bytes there, so that the fuzzer reaches records and continuations without writing page
 * headers itself; bits 1-7 and byte 1 seed the piece lengths; the rest is the WAL of two
 * 64 kB segments from 0/10000, zero-filled.
 *
 * Properties: every feed returns 0; the transaction ends reported are the same whether the
 * WAL comes in one piece or in many; each lies inside the WAL fed, its end after its start,
 * in increasing order.
 */
#include <errno.h>

#include "fuzz.h"
#include "wal/record.h"

#define SEG (64u * 1024u)
#define BLOCK 8192u
#define START ((uint64_t)SEG)
#define FED (2 * SEG)
#define MAX_ENDS 4096

static uint8_t image[FED];

struct ends {
	struct wal_xact_end x[MAX_ENDS];
	unsigned int n;
};

static void note(void *arg, const struct wal_xact_end *x)
{
	struct ends *e = arg;

	FUZZ_ASSERT(x->lsn >= START && x->end_lsn > x->lsn && x->end_lsn <= START + FED);
	FUZZ_ASSERT(!e->n || x->lsn >= e->x[e->n - 1].end_lsn);
	if (e->n < MAX_ENDS)
		e->x[e->n++] = *x;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void decode(uint32_t seed, struct ends *e)
{
	struct wal_decoder d;
	size_t off = 0;

	FUZZ_ASSERT(wal_decoder_begin(&d, SEG, BLOCK, START, note, e) == 0);
	while (off < FED) {
		size_t n = FED - off;

		if (seed) {
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 8) % 9000;
			if (n > FED - off)
				n = FED - off;
		}
		FUZZ_ASSERT(wal_decoder_feed(&d, START + off, image + off, n) == 0);
		off += n;
	}
	FUZZ_ASSERT(wal_decoder_feed(&d, START, image, 1) == -EINVAL); /* not contiguous */
	wal_decoder_end(&d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ends one, many;
	uint32_t seed;

	if (size < 2)
		return 0;
	seed = (uint32_t)(data[0] >> 1) << 8 | data[1] | 1u;
	memset(image, 0, sizeof(image));
	memcpy(image, data + 2, size - 2 < FED ? size - 2 : FED);
	if (data[0] & 1) {
		for (uint32_t page = 0; page < FED; page += BLOCK) {
			uint8_t *h = image + page;
			bool is_long = page % SEG == 0;
			uint16_t info = (uint16_t)((h[2] & XLP_FIRST_IS_CONTRECORD) |
						   (is_long ? XLP_LONG_HEADER : 0));
			uint32_t rem = (uint32_t)(h[16] | h[17] << 8);

			put_le(h, 0xD110, 2);
			put_le(h + 2, info, 2);
			put_le(h + 4, 1, 4);
			put_le(h + 8, START + page, 8);
			put_le(h + 16, rem, 4);
			put_le(h + 20, 0, 4);
			if (is_long) {
				put_le(h + 24, 1, 8);
				put_le(h + 32, SEG, 4);
				put_le(h + 36, BLOCK, 4);
			}
		}
	}
	one.n = 0;
	many.n = 0;
	decode(0, &one);
	decode(seed, &many);
	FUZZ_ASSERT(one.n == many.n);
	FUZZ_ASSERT(!memcmp(one.x, many.x, one.n * sizeof(one.x[0])));
	return 0;
}
