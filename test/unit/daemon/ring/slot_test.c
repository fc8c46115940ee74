// SPDX-License-Identifier: MIT
/*
 * Unit tests for the slot pool of daemon/ring/ring.c: a capped user (a relay's sends)
 * never holds more than its cap, so the other users keep the rest of the pool; its
 * slots go back to the pool and to its count when put.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ring/ring.h"

#define NSLOTS 4
#define SLOT_SIZE 4096

static void test_capped_leaves_the_rest(void **state)
{
	struct ring ring;
	struct ring_slot *capped[NSLOTS], *other[NSLOTS];

	(void)state;
	assert_int_equal(ring_init(&ring, 8, NSLOTS, SLOT_SIZE), 0);
	capped[0] = ring_slot_get_capped(&ring, NSLOTS / 2);
	capped[1] = ring_slot_get_capped(&ring, NSLOTS / 2);
	assert_non_null(capped[0]);
	assert_non_null(capped[1]);
	/* Its cap is out: no third, though two slots are free... */
	assert_null(ring_slot_get_capped(&ring, NSLOTS / 2));
	assert_int_equal(ring.slots_free, NSLOTS - 2);
	assert_int_equal(ring.capped_out, 2);
	/* ...and they are the other users'. */
	other[0] = ring_slot_get(&ring);
	other[1] = ring_slot_get(&ring);
	assert_non_null(other[0]);
	assert_non_null(other[1]);
	assert_null(ring_slot_get(&ring));
	/* A capped slot put back counts again for its user; a plain one does not. */
	ring_slot_put(&ring, other[0]);
	assert_int_equal(ring.capped_out, 2);
	assert_null(ring_slot_get_capped(&ring, NSLOTS / 2));
	ring_slot_put(&ring, capped[0]);
	assert_int_equal(ring.capped_out, 1);
	assert_false(capped[0]->capped);
	/* Both free slots are there; the capped user may take one of them. */
	capped[0] = ring_slot_get_capped(&ring, NSLOTS / 2);
	assert_non_null(capped[0]);
	assert_null(ring_slot_get_capped(&ring, NSLOTS / 2));
	/* Taken plainly, the slot a capped user gave back carries no mark. */
	ring_slot_put(&ring, capped[1]);
	other[2] = ring_slot_get(&ring);
	assert_non_null(other[2]);
	assert_false(other[2]->capped);
	ring_slot_put(&ring, other[2]);
	assert_int_equal(ring.capped_out, 1);
	ring_slot_put(&ring, capped[0]);
	ring_slot_put(&ring, other[1]);
	assert_int_equal(ring.capped_out, 0);
	assert_int_equal(ring.slots_free, NSLOTS);
	ring_exit(&ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capped_leaves_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
