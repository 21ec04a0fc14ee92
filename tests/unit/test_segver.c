/* test_segver.c: latest segment versions under a writer lease
 * (proxy/segver.h): entries are made only by reads at the primary that no
 * write completion raced, raised by later answers and never lowered,
 * forgotten after a failed write, ignored under another epoch, dropped
 * by a new epoch, and a colliding segment evicts without ever answering
 * for the wrong one.  Fails (cmocka) naming the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/segver.h"

static void test_learn_and_raise(void **state)
{
	struct segver s = {0};
	uint64_t w;

	(void)state;
	segver_reset(&s, 3);
	assert_int_equal(segver_latest(&s, 3, 7), 0);
	/* A write answer alone does not make an entry. */
	segver_write_acked(&s, 3, 7, 10);
	assert_int_equal(segver_latest(&s, 3, 7), 0);
	/* A read at the primary does. */
	w = segver_writes(&s);
	segver_read_primary(&s, 3, 7, 10, w);
	assert_int_equal(segver_latest(&s, 3, 7), 10);
	/* Later writes raise it; an older answer never lowers it. */
	segver_write_acked(&s, 3, 7, 12);
	segver_write_acked(&s, 3, 7, 11);
	assert_int_equal(segver_latest(&s, 3, 7), 12);
	segver_read_primary(&s, 3, 7, 11, segver_writes(&s));
	assert_int_equal(segver_latest(&s, 3, 7), 12);
	/* Version 0 (empty segment, or an older stored) teaches nothing. */
	segver_read_primary(&s, 3, 8, 0, segver_writes(&s));
	assert_int_equal(segver_latest(&s, 3, 8), 0);
	segver_free(&s);
}

static void test_race_with_write(void **state)
{
	struct segver s = {0};
	uint64_t w;

	(void)state;
	segver_reset(&s, 1);
	/* Read sent, then a write of the segment is acknowledged (slot
	 * empty: not recorded), then the read's older answer arrives: it
	 * must not make an entry. */
	w = segver_writes(&s);
	segver_write_acked(&s, 1, 4, 20);
	segver_read_primary(&s, 1, 4, 19, w);
	assert_int_equal(segver_latest(&s, 1, 4), 0);
	/* A failed write of the segment also counts. */
	w = segver_writes(&s);
	segver_write_failed(&s, 4);
	segver_read_primary(&s, 1, 4, 20, w);
	assert_int_equal(segver_latest(&s, 1, 4), 0);
	/* Writes of other segments completing meanwhile do not: they do not
	 * change segment 4's version. */
	w = segver_writes(&s);
	segver_write_acked(&s, 1, 9, 50);
	segver_write_failed(&s, 10);
	segver_read_primary(&s, 1, 4, 19, w);
	assert_int_equal(segver_latest(&s, 1, 4), 19);
	/* ... but one of a segment sharing the slot does (conservative). */
	w = segver_writes(&s);
	segver_write_acked(&s, 1, 5 + SEGVER_SLOTS, 7);
	segver_read_primary(&s, 1, 5, 30, w);
	assert_int_equal(segver_latest(&s, 1, 5), 0);
	/* A clean read makes it. */
	segver_read_primary(&s, 1, 4, 20, segver_writes(&s));
	assert_int_equal(segver_latest(&s, 1, 4), 20);
	/* A failed write of the segment forgets it. */
	segver_write_failed(&s, 4);
	assert_int_equal(segver_latest(&s, 1, 4), 0);
	segver_free(&s);
}

static void test_epochs(void **state)
{
	struct segver s = {0};

	(void)state;
	/* Epoch 0 (no lease) learns nothing. */
	segver_read_primary(&s, 0, 1, 5, segver_writes(&s));
	assert_int_equal(segver_latest(&s, 0, 1), 0);
	segver_reset(&s, 2);
	segver_read_primary(&s, 2, 1, 5, segver_writes(&s));
	assert_int_equal(segver_latest(&s, 2, 1), 5);
	/* Asked or told under another epoch: unknown / ignored. */
	assert_int_equal(segver_latest(&s, 3, 1), 0);
	segver_read_primary(&s, 1, 2, 9, segver_writes(&s));
	assert_int_equal(segver_latest(&s, 2, 2), 0);
	/* A new grant forgets everything. */
	segver_reset(&s, 4);
	assert_int_equal(segver_latest(&s, 4, 1), 0);
	segver_free(&s);
}

static void test_collision(void **state)
{
	struct segver s = {0};
	uint64_t a = 5, b = 5 + SEGVER_SLOTS;

	(void)state;
	segver_reset(&s, 1);
	segver_read_primary(&s, 1, a, 30, segver_writes(&s));
	segver_read_primary(&s, 1, b, 40, segver_writes(&s));
	assert_int_equal(segver_latest(&s, 1, b), 40);
	assert_int_equal(segver_latest(&s, 1, a), 0); /* evicted */
	/* A write answer for the evicted segment does not come back in. */
	segver_write_acked(&s, 1, a, 31);
	assert_int_equal(segver_latest(&s, 1, a), 0);
	assert_int_equal(segver_latest(&s, 1, b), 40);
	segver_write_failed(&s, a); /* not present: b stays */
	assert_int_equal(segver_latest(&s, 1, b), 40);
	segver_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_learn_and_raise),
	    cmocka_unit_test(test_race_with_write),
	    cmocka_unit_test(test_epochs),
	    cmocka_unit_test(test_collision),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
