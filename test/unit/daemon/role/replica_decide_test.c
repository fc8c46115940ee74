// SPDX-License-Identifier: MIT
/*
 * Unit tests for daemon/role/replica_decide.c: the replica's decisions without sockets,
 * disks or PostgreSQL.  What it offers in HAVE, which FILE_BEGIN it accepts and from where,
 * the DATA and FILE_END that continue a file, the duplicate rule's verdict, when a file is
 * checkpointed or kept as a partial, and the reconnect backoff.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "role/replica_decide.h"
#include "role/role.h"

#define SEG_NAME "000000010000000000000003"
#define MB (1024u * 1024u)

static struct msg_file_begin begin_of(const char *name, uint64_t size, uint64_t start_offset)
{
	struct msg_file_begin fb = { .file_id = 7, .kind = WAL_FILE_SEGMENT, .size = size };

	fb.start_offset = start_offset;
	snprintf(fb.name, sizeof(fb.name), "%s", name);
	return fb;
}

static struct store_partial partial_of(const char *name, uint64_t size, uint64_t durable)
{
	struct store_partial p = { .seq = 3, .size = size, .durable = durable, .crc = 0xabcd };

	snprintf(p.name, sizeof(p.name), "%s", name);
	snprintf(p.tmp_name, sizeof(p.tmp_name), "%s.3", name);
	return p;
}

/* FILE_BEGIN from offset 0: fresh without a partial, restart (discard) with one. */
static void test_begin_from_start(void **state)
{
	struct msg_file_begin fb = begin_of(SEG_NAME, 16 * MB, 0);
	struct store_partial p = partial_of(SEG_NAME, 16 * MB, 4 * MB);

	(void)state;
	assert_int_equal(replica_begin_decide(&fb, false, 0, NULL), REPLICA_BEGIN_FRESH);
	assert_int_equal(replica_begin_decide(&fb, false, 0, &p), REPLICA_BEGIN_RESTART);
}

/* A start_offset is accepted only as exactly what was offered: same size, durable. */
static void test_begin_resume_offset(void **state)
{
	struct store_partial p = partial_of(SEG_NAME, 16 * MB, 4 * MB);
	struct msg_file_begin fb = begin_of(SEG_NAME, 16 * MB, 4 * MB);

	(void)state;
	assert_int_equal(replica_begin_decide(&fb, false, 0, &p), REPLICA_BEGIN_RESUME);
	fb.start_offset = 4 * MB - 1;
	assert_int_equal(replica_begin_decide(&fb, false, 0, &p), REPLICA_BEGIN_NOT_OFFERED);
	fb.start_offset = 4 * MB + 1;
	assert_int_equal(replica_begin_decide(&fb, false, 0, &p), REPLICA_BEGIN_NOT_OFFERED);
	fb.start_offset = 16 * MB; /* the whole file was never a partial's length */
	assert_int_equal(replica_begin_decide(&fb, false, 0, &p), REPLICA_BEGIN_NOT_OFFERED);
	fb = begin_of(SEG_NAME, 32 * MB, 4 * MB); /* another size: another file */
	assert_int_equal(replica_begin_decide(&fb, false, 0, &p), REPLICA_BEGIN_NOT_OFFERED);
	fb = begin_of(SEG_NAME, 16 * MB, 4 * MB); /* nothing was offered */
	assert_int_equal(replica_begin_decide(&fb, false, 0, NULL), REPLICA_BEGIN_NOT_OFFERED);
}

/* The window: WIRE_MAX_INFLIGHT_FILES - 1 in flight takes one more, the bound none; a
 * reused id is refused first, whatever the rest. */
static void test_begin_window_and_id(void **state)
{
	struct msg_file_begin fb = begin_of(SEG_NAME, 16 * MB, 0);
	struct store_partial p = partial_of(SEG_NAME, 16 * MB, 4 * MB);

	(void)state;
	assert_int_equal(replica_begin_decide(&fb, false, WIRE_MAX_INFLIGHT_FILES - 1, NULL),
			 REPLICA_BEGIN_FRESH);
	assert_int_equal(replica_begin_decide(&fb, false, WIRE_MAX_INFLIGHT_FILES, NULL),
			 REPLICA_BEGIN_OVER_WINDOW);
	assert_int_equal(replica_begin_decide(&fb, false, WIRE_MAX_INFLIGHT_FILES + 5, &p),
			 REPLICA_BEGIN_OVER_WINDOW);
	assert_int_equal(replica_begin_decide(&fb, true, 0, NULL), REPLICA_BEGIN_ID_IN_USE);
	assert_int_equal(replica_begin_decide(&fb, true, WIRE_MAX_INFLIGHT_FILES, NULL),
			 REPLICA_BEGIN_ID_IN_USE);
	/* A full window refuses even a valid resume: the partial stays for a later offer. */
	fb.start_offset = 4 * MB;
	assert_int_equal(replica_begin_decide(&fb, false, WIRE_MAX_INFLIGHT_FILES, &p),
			 REPLICA_BEGIN_OVER_WINDOW);
}

/* A record never says a whole file is durable: its last byte counts once it is stored. */
static void test_record_len(void **state)
{
	uint32_t crc = 0;

	(void)state;
	assert_int_equal(replica_record_len(16 * MB, 0, 1, 2, &crc), 0);
	assert_int_equal(crc, 1);
	assert_int_equal(replica_record_len(16 * MB, 16 * MB - 1, 3, 4, &crc), 16 * MB - 1);
	assert_int_equal(crc, 3);
	assert_int_equal(replica_record_len(16 * MB, 16 * MB, 5, 6, &crc), 16 * MB - 1);
	assert_int_equal(crc, 6);
}

static void test_data_continues(void **state)
{
	(void)state;
	assert_true(replica_data_continues(false, 16 * MB, 0, 0, MB));
	assert_true(replica_data_continues(false, 16 * MB, 15 * MB, 15 * MB, MB));
	assert_true(replica_data_continues(false, 16 * MB, 16 * MB, 16 * MB, 0));
	assert_false(replica_data_continues(false, 16 * MB, 15 * MB, 15 * MB, MB + 1));
	assert_false(replica_data_continues(false, 16 * MB, MB, 0, MB)); /* a repeat */
	assert_false(replica_data_continues(false, 16 * MB, MB, 2 * MB, MB)); /* a gap */
	assert_false(replica_data_continues(true, 16 * MB, MB, MB, MB)); /* after the end */
	/* no wrap-around of offset + len near 2^64 */
	assert_false(replica_data_continues(false, UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 1,
					    UINT32_MAX));
}

static void test_end_matches(void **state)
{
	(void)state;
	assert_true(replica_end_matches(false, 16 * MB, 16 * MB, 16 * MB));
	assert_false(replica_end_matches(false, 16 * MB, 15 * MB, 16 * MB)); /* bytes missing */
	assert_false(replica_end_matches(false, 16 * MB, 16 * MB, 15 * MB)); /* other size */
	assert_false(replica_end_matches(true, 16 * MB, 16 * MB, 16 * MB)); /* twice */
	assert_true(replica_end_matches(false, 0, 0, 0)); /* an empty file */
}

/* The duplicate rule: same content a duplicate, different a conflict, no answer an error;
 * the ACK's durable offset is the size only for a file the replica holds. */
static void test_exists_verdict(void **state)
{
	(void)state;
	assert_int_equal(replica_exists_verdict(1), WIRE_ACK_DUPLICATE);
	assert_int_equal(replica_exists_verdict(0), WIRE_ACK_CONFLICT);
	assert_int_equal(replica_exists_verdict(-EIO), WIRE_ACK_IO_ERROR);
	assert_int_equal(replica_exists_verdict(-ENOENT), WIRE_ACK_IO_ERROR);
	assert_int_equal(replica_ack_durable_offset(WIRE_ACK_STORED, 16 * MB), 16 * MB);
	assert_int_equal(replica_ack_durable_offset(WIRE_ACK_DUPLICATE, 16 * MB), 16 * MB);
	assert_int_equal(replica_ack_durable_offset(WIRE_ACK_CONFLICT, 16 * MB), 0);
	assert_int_equal(replica_ack_durable_offset(WIRE_ACK_INVALID, 16 * MB), 0);
	assert_int_equal(replica_ack_durable_offset(WIRE_ACK_IO_ERROR, 16 * MB), 0);
	assert_int_equal(replica_ack_durable_offset(WIRE_ACK_SYSID, 16 * MB), 0);
}

static void test_kinds_and_direct_io(void **state)
{
	static uint8_t buf[2 * ROLE_DIO_ALIGN] __attribute__((aligned(ROLE_DIO_ALIGN)));

	(void)state;
	assert_true(replica_kind_resumable(WAL_FILE_SEGMENT));
	assert_true(replica_kind_resumable(WAL_FILE_PARTIAL));
	assert_false(replica_kind_resumable(WAL_FILE_HISTORY));
	assert_false(replica_kind_resumable(WAL_FILE_BACKUP));
	assert_true(replica_direct_io_wanted(WAL_FILE_SEGMENT, false));
	assert_false(replica_direct_io_wanted(WAL_FILE_SEGMENT, true));
	assert_false(replica_direct_io_wanted(WAL_FILE_HISTORY, false));
	assert_true(replica_chunk_direct_ok(MB, MB, buf));
	assert_true(replica_chunk_direct_ok(0, ROLE_DIO_ALIGN, buf + ROLE_DIO_ALIGN));
	assert_false(replica_chunk_direct_ok(MB, MB, buf + 16)); /* the address */
	assert_false(replica_chunk_direct_ok(MB + 512, MB, buf)); /* the offset */
	assert_false(replica_chunk_direct_ok(MB, MB - 512, buf)); /* the length */
}

static void test_direct_span(void **state)
{
	uint64_t start, full_end;
	uint32_t tail;

	(void)state;
	/* the first commit, inside the first block: the bounce block alone */
	replica_direct_span(0, 100, &start, &full_end, &tail);
	assert_int_equal(start, 0);
	assert_int_equal(full_end, 0);
	assert_int_equal(tail, 100);
	/* from a block boundary to a block boundary: full blocks alone */
	replica_direct_span(ROLE_DIO_ALIGN, 3 * ROLE_DIO_ALIGN, &start, &full_end, &tail);
	assert_int_equal(start, ROLE_DIO_ALIGN);
	assert_int_equal(full_end, 3 * ROLE_DIO_ALIGN);
	assert_int_equal(tail, 0);
	/* the durable end's block is written again (its received bytes with the new ones) */
	replica_direct_span(5000, 13000, &start, &full_end, &tail);
	assert_int_equal(start, ROLE_DIO_ALIGN);
	assert_int_equal(full_end, 3 * ROLE_DIO_ALIGN);
	assert_int_equal(tail, 13000 - 3 * ROLE_DIO_ALIGN);
	/* one byte on each side of a boundary */
	replica_direct_span(ROLE_DIO_ALIGN - 1, ROLE_DIO_ALIGN + 1, &start, &full_end, &tail);
	assert_int_equal(start, 0);
	assert_int_equal(full_end, ROLE_DIO_ALIGN);
	assert_int_equal(tail, 1);
	/* the last bytes of a 16 MiB segment */
	replica_direct_span(16 * MB - 10, 16 * MB, &start, &full_end, &tail);
	assert_int_equal(start, 16 * MB - ROLE_DIO_ALIGN);
	assert_int_equal(full_end, 16 * MB);
	assert_int_equal(tail, 0);
}

static void test_stream_direct(void **state)
{
	(void)state;
	assert_true(replica_stream_direct_wanted(WAL_FILE_SEGMENT, false, 16 * MB, false));
	assert_true(replica_stream_direct_wanted(WAL_FILE_SEGMENT, false, REPLICA_STREAM_IMAGE_MAX,
						 false));
	/* resumed: its first bytes are on disk only, not in an image */
	assert_false(replica_stream_direct_wanted(WAL_FILE_SEGMENT, true, 16 * MB, false));
	assert_false(replica_stream_direct_wanted(WAL_FILE_HISTORY, false, 4096, false));
	assert_false(replica_stream_direct_wanted(WAL_FILE_PARTIAL, false, 16 * MB, false));
	assert_false(replica_stream_direct_wanted(WAL_FILE_SEGMENT, false,
						  2 * REPLICA_STREAM_IMAGE_MAX, false));
	assert_false(replica_stream_direct_wanted(WAL_FILE_SEGMENT, false, 16 * MB + 512, false));
	/* the archive refused O_DIRECT */
	assert_false(replica_stream_direct_wanted(WAL_FILE_SEGMENT, false, 16 * MB, true));
}

/* A file as a checkpoint or a lost connection finds it, well and half received. */
static struct infile infile_receiving(void)
{
	struct infile f = { .state = IN_RECEIVING, .fd = 5, .size = 16 * MB };

	f.wn.kind = WAL_FILE_SEGMENT;
	f.received = 6 * MB;
	f.durable = 4 * MB;
	f.ck_ms = 1000;
	f.fail_status = WIRE_ACK_STORED;
	snprintf(f.tmp_name, sizeof(f.tmp_name), SEG_NAME ".9");
	return f;
}

static void test_checkpoint_due(void **state)
{
	struct infile f = infile_receiving();

	(void)state;
	assert_true(replica_checkpoint_due(&f, 1000 + 5000, 5000));
	assert_false(replica_checkpoint_due(&f, 1000 + 4999, 5000)); /* not yet */
	assert_false(replica_checkpoint_due(&f, 1000 + 5000, 0)); /* turned off */
	f.received = f.durable; /* nothing new */
	assert_false(replica_checkpoint_due(&f, 1000 + 5000, 5000));
#define NOT_DUE_WHEN(field, value)                                           \
	do {                                                                 \
		f = infile_receiving();                                      \
		f.field = value;                                             \
		assert_false(replica_checkpoint_due(&f, 1000 + 5000, 5000)); \
	} while (0)
	NOT_DUE_WHEN(opening, true);
	NOT_DUE_WHEN(checkpointing, true);
	NOT_DUE_WHEN(end_received, true);
	NOT_DUE_WHEN(fd, -1);
	NOT_DUE_WHEN(writes_pending, 1);
	NOT_DUE_WHEN(fail_status, WIRE_ACK_INVALID);
	NOT_DUE_WHEN(state, IN_SYNCING);
	NOT_DUE_WHEN(wn.kind, WAL_FILE_HISTORY);
#undef NOT_DUE_WHEN
}

static void test_keep_partial(void **state)
{
	struct infile f = infile_receiving();

	(void)state;
	assert_true(replica_keep_partial(&f));
	f.received = 1;
	assert_true(replica_keep_partial(&f));
	f.received = f.size - 1;
	assert_true(replica_keep_partial(&f));
#define DISCARDED_WHEN(field, value)                    \
	do {                                            \
		f = infile_receiving();                 \
		f.field = value;                        \
		assert_false(replica_keep_partial(&f)); \
	} while (0)
	DISCARDED_WHEN(received, 0); /* nothing to keep */
	DISCARDED_WHEN(received, 16 * MB); /* complete: sent again, the duplicate rule */
	DISCARDED_WHEN(fd, -1);
	DISCARDED_WHEN(opening, true);
	DISCARDED_WHEN(fail_status, WIRE_ACK_IO_ERROR);
	DISCARDED_WHEN(state, IN_RENAMING);
	DISCARDED_WHEN(wn.kind, WAL_FILE_BACKUP);
	DISCARDED_WHEN(tmp_name[0], '\0');
#undef DISCARDED_WHEN
}

/* A file of a link, all received: holds the disk through its writes and its fdatasync. */
static void test_holds_disk(void **state)
{
	struct infile f = infile_receiving();

	(void)state;
	assert_false(replica_holds_disk(&f)); /* still receiving */
	f.end_received = true;
	assert_true(replica_holds_disk(&f)); /* its last writes */
	f.state = IN_SYNCING;
	assert_true(replica_holds_disk(&f));
	f.state = IN_IDENTIFYING; /* synced: the next file may write */
	assert_false(replica_holds_disk(&f));
	f.state = IN_RENAMING;
	assert_false(replica_holds_disk(&f));
	f.state = IN_DIR_SYNCING;
	assert_false(replica_holds_disk(&f));
	f.state = IN_SYNCING;
	f.fail_status = WIRE_ACK_IO_ERROR; /* refused next: not stored */
	assert_false(replica_holds_disk(&f));
	f.fail_status = WIRE_ACK_STORED;
	f.cancelled = true;
	assert_false(replica_holds_disk(&f));
}

/* A link's files are newest first: @newer waits for the older ones that hold the disk. */
static void test_write_waits(void **state)
{
	struct infile oldest = infile_receiving(), older = infile_receiving();
	struct infile newer = infile_receiving();

	(void)state;
	newer.next = &older;
	older.next = &oldest;
	newer.direct = true;
	assert_false(replica_write_waits(&newer)); /* nothing older holds the disk */
	newer.writes_inflight = INFILE_MAX_DIRECT_WRITES - 1;
	assert_false(replica_write_waits(&newer));
	newer.writes_inflight = INFILE_MAX_DIRECT_WRITES;
	assert_true(replica_write_waits(&newer)); /* its own writes in flight */
	newer.direct = false; /* buffered: no bound */
	assert_false(replica_write_waits(&newer));
	newer.opening = true;
	assert_true(replica_write_waits(&newer));
	newer.opening = false;

	oldest.end_received = true; /* two files back, writing its last chunks */
	assert_true(replica_write_waits(&newer));
	assert_true(replica_write_waits(&older));
	assert_false(replica_write_waits(&oldest)); /* nothing is older than it */
	newer.stream = true; /* a streamed segment never waits for another file */
	assert_false(replica_write_waits(&newer));
	newer.stream = false;
	oldest.state = IN_RENAMING; /* synced */
	assert_false(replica_write_waits(&newer));
	older.end_received = true;
	older.state = IN_SYNCING;
	assert_true(replica_write_waits(&newer));
	older.fail_status = WIRE_ACK_INVALID;
	assert_false(replica_write_waits(&newer));
	/* A newer file never holds an older one back. */
	newer.end_received = true;
	older.fail_status = WIRE_ACK_STORED;
	older.end_received = false;
	older.state = IN_RECEIVING;
	assert_false(replica_write_waits(&older));
}

static bool stored_unless_odd(void *ctx, const struct store_recent *recent)
{
	(*(unsigned int *)ctx)++;
	return recent->size % 2 == 0;
}

/* HAVE: partials first with their durable length, then the stored files still there;
 * never more than WIRE_MAX_HAVE entries. */
static void test_offer(void **state)
{
	static struct store st;
	struct msg_have have;
	unsigned int asked = 0;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.partials[0] = partial_of(SEG_NAME, 16 * MB, 4 * MB);
	st.npartials = 1;
	snprintf(st.recent[0].name, sizeof(st.recent[0].name), "000000010000000000000001");
	st.recent[0].size = 16 * MB;
	st.recent[0].crc = 1;
	snprintf(st.recent[1].name, sizeof(st.recent[1].name), "000000010000000000000002");
	st.recent[1].size = 16 * MB + 1; /* removed: odd */
	st.recent[2].size = 16 * MB; /* forgotten (store_set_aside_stored()): no name */
	st.nrecent = 3;
	replica_offer(&st, stored_unless_odd, &asked, &have);
	assert_int_equal(asked, 2);
	assert_int_equal(have.count, 2);
	assert_int_equal(have.entries[0].kind, WIRE_HAVE_PARTIAL);
	assert_string_equal(have.entries[0].name, SEG_NAME);
	assert_int_equal(have.entries[0].durable, 4 * MB);
	assert_int_equal(have.entries[0].size, 16 * MB);
	assert_int_equal(have.entries[0].crc, 0xabcd);
	assert_int_equal(have.entries[1].kind, WIRE_HAVE_COMPLETE);
	assert_int_equal(have.entries[1].durable, 16 * MB);
	assert_int_equal(have.entries[1].crc, 1);

	/* Nothing held: an empty HAVE. */
	memset(&st, 0, sizeof(st));
	replica_offer(&st, stored_unless_odd, &asked, &have);
	assert_int_equal(have.count, 0);
}

static void test_offer_bound(void **state)
{
	static struct store st;
	struct msg_have have;
	unsigned int asked = 0;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.npartials = STORE_MAX_PARTIALS < WIRE_MAX_HAVE ? STORE_MAX_PARTIALS : WIRE_MAX_HAVE;
	for (unsigned int idx = 0; idx < st.npartials; idx++)
		st.partials[idx] = partial_of(SEG_NAME, 16 * MB, MB);
	st.nrecent = STORE_MAX_RECENT;
	for (unsigned int idx = 0; idx < st.nrecent; idx++) {
		snprintf(st.recent[idx].name, sizeof(st.recent[idx].name), "%024X", idx + 1);
		st.recent[idx].size = 16 * MB;
	}
	replica_offer(&st, stored_unless_odd, &asked, &have);
	/* A full store fills a HAVE to its bound and no further. */
	assert_true(st.npartials + st.nrecent >= WIRE_MAX_HAVE);
	assert_int_equal(have.count, WIRE_MAX_HAVE);
	assert_int_equal(have.entries[0].kind, WIRE_HAVE_PARTIAL);
	assert_int_equal(have.entries[st.npartials - 1].kind, WIRE_HAVE_PARTIAL);
}

static void test_peer_state(void **state)
{
	struct link lk = { 0 };

	(void)state;
	assert_int_equal(replica_peer_state(NULL, false), WALSHIP_PEER_DISCONNECTED);
	assert_int_equal(replica_peer_state(NULL, true), WALSHIP_PEER_CONNECTING);
	assert_int_equal(replica_peer_state(&lk, false), WALSHIP_PEER_HANDSHAKE);
	lk.established = true;
	assert_int_equal(replica_peer_state(&lk, false), WALSHIP_PEER_STREAMING);
	lk.conn.closing = true;
	assert_int_equal(replica_peer_state(&lk, false), WALSHIP_PEER_DISCONNECTED);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(replica_backoff_delay(1000, 0), 1000);
	assert_int_equal(replica_backoff_delay(1000, 249), 1249); /* at most a quarter */
	assert_int_equal(replica_backoff_delay(1000, 250), 1000);
	assert_int_equal(replica_backoff_delay(3, 12345), 3); /* no quarter: no jitter */
	assert_int_equal(replica_backoff_next(1000, 30000), 2000);
	assert_int_equal(replica_backoff_next(20000, 30000), 30000);
	assert_int_equal(replica_backoff_next(30000, 30000), 30000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_begin_from_start),
		cmocka_unit_test(test_begin_resume_offset),
		cmocka_unit_test(test_begin_window_and_id),
		cmocka_unit_test(test_record_len),
		cmocka_unit_test(test_data_continues),
		cmocka_unit_test(test_end_matches),
		cmocka_unit_test(test_exists_verdict),
		cmocka_unit_test(test_kinds_and_direct_io),
		cmocka_unit_test(test_stream_direct),
		cmocka_unit_test(test_direct_span),
		cmocka_unit_test(test_checkpoint_due),
		cmocka_unit_test(test_keep_partial),
		cmocka_unit_test(test_holds_disk),
		cmocka_unit_test(test_write_waits),
		cmocka_unit_test(test_offer),
		cmocka_unit_test(test_offer_bound),
		cmocka_unit_test(test_peer_state),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
