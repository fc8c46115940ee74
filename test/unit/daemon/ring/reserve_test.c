// SPDX-License-Identifier: MIT
/*
 * Unit tests for the submission side of daemon/ring/ring.c, on a real ring of four
 * entries: ring_sqe() on a full queue hands what is queued to the kernel and returns an
 * entry (never NULL); ring_reserve() makes room for a request and its
 * IORING_OP_LINK_TIMEOUT in one submission when fewer entries are left, so that the pair
 * is never split (a timeout submitted alone, its request gone ahead in another
 * submission, completes -EINVAL and times nothing out); and every completion, of the
 * requests queued before and of the pair, runs its callback once.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/compiler.h"
#include "ring/ring.h"

#define ENTRIES 4

struct counted_op {
	struct ring_op op;
	int calls;
	int res;
};

static void counted_cb(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct counted_op *c = container_of(op, struct counted_op, op);

	(void)cqe_flags;
	c->calls++;
	c->res = res;
}

static void queue_nop(struct ring *ring, struct counted_op *c)
{
	c->op.cb = counted_cb;
	io_uring_prep_nop(ring_sqe(ring, &c->op));
}

/* Run the ring until every op of @ops has completed (each completes once). */
static void run_until_done(struct ring *ring, struct counted_op *ops, int n)
{
	for (int rounds = 0; rounds < 100; rounds++) {
		int done = 0;

		for (int i = 0; i < n; i++)
			done += ops[i].calls > 0;
		if (done == n)
			return;
		assert_true(ring_run(ring, 1000) >= 0);
	}
	fail_msg("completions missing after 100 rounds");
}

static void test_sqe_on_a_full_queue(void **state)
{
	struct ring ring;
	struct counted_op ops[ENTRIES + 2] = { 0 };

	(void)state;
	assert_int_equal(ring_init(&ring, ENTRIES, 1, 4096), 0);
	/* Two more than the queue holds: the fifth and sixth entries are had by submitting
	 * the first four. */
	for (int i = 0; i < ENTRIES + 2; i++)
		queue_nop(&ring, &ops[i]);
	assert_int_equal(io_uring_sq_ready(&ring.uring), 2);
	run_until_done(&ring, ops, ENTRIES + 2);
	for (int i = 0; i < ENTRIES + 2; i++) {
		assert_int_equal(ops[i].calls, 1);
		assert_int_equal(ops[i].res, 0);
	}
	assert_int_equal(ring.inflight, 0);
	ring_exit(&ring);
}

static void test_reserve_keeps_a_linked_pair_together(void **state)
{
	struct ring ring;
	struct counted_op before[ENTRIES - 1] = { 0 };
	struct counted_op pair[2] = { 0 };
	struct __kernel_timespec ts = { .tv_sec = 5 };
	struct io_uring_sqe *sqe;

	(void)state;
	assert_int_equal(ring_init(&ring, ENTRIES, 1, 4096), 0);
	/* One entry left: the request would take it, and its timeout the first entry of
	 * the next submission, alone. */
	for (int i = 0; i < ENTRIES - 1; i++)
		queue_nop(&ring, &before[i]);
	assert_int_equal(io_uring_sq_space_left(&ring.uring), 1);
	ring_reserve(&ring, 2);
	assert_true(io_uring_sq_space_left(&ring.uring) >= 2);
	assert_int_equal(io_uring_sq_ready(&ring.uring), 0); /* handed to the kernel */
	pair[0].op.cb = counted_cb;
	pair[1].op.cb = counted_cb;
	sqe = ring_sqe(&ring, &pair[0].op);
	io_uring_prep_nop(sqe);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_prep_link_timeout(ring_sqe(&ring, &pair[1].op), &ts, 0);
	run_until_done(&ring, before, ENTRIES - 1);
	run_until_done(&ring, pair, 2);
	assert_int_equal(pair[0].res, 0);
	/* The request completed before its timeout: the timeout is cancelled, not refused
	 * (-EINVAL: submitted alone) nor expired (-ETIME). */
	assert_int_equal(pair[1].res, -ECANCELED);
	for (int i = 0; i < ENTRIES - 1; i++)
		assert_int_equal(before[i].calls, 1);
	assert_int_equal(ring.inflight, 0);
	ring_exit(&ring);
}

/* ring_reserve() with room enough submits nothing. */
static void test_reserve_with_room(void **state)
{
	struct ring ring;
	struct counted_op op = { 0 };

	(void)state;
	assert_int_equal(ring_init(&ring, ENTRIES, 1, 4096), 0);
	queue_nop(&ring, &op);
	ring_reserve(&ring, 2);
	assert_int_equal(io_uring_sq_ready(&ring.uring), 1); /* still queued */
	run_until_done(&ring, &op, 1);
	ring_exit(&ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sqe_on_a_full_queue),
		cmocka_unit_test(test_reserve_keeps_a_linked_pair_together),
		cmocka_unit_test(test_reserve_with_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
