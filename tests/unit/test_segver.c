/* test_segver.c: latest segment versions under a writer lease
 * (proxy/segver.h): a segment is claimed when a request of it is sent and
 * known once a request sent at or after the claim is answered; answers
 * raise the version and never lower it; answers to requests sent before
 * the claim raise but make nothing known; a failed write forgets the
 * segment; a never written segment is known at 0; answers under another
 * epoch are ignored; a new epoch drops
 * everything; a colliding segment evicts without ever answering for the
 * wrong one.  Fails (cmocka) naming the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/segver.h"

/* The known version, or UNKNOWN. */
#define UNKNOWN 0xdeadull
static uint64_t latest(const struct segver *s, uint64_t epoch, uint64_t seg)
{
	uint64_t v;

	return segver_known(s, epoch, seg, &v) ? v : UNKNOWN;
}

static void test_learn_and_raise(void **state)
{
	struct segver s = {0};
	uint64_t t, t2;

	(void)state;
	segver_reset(&s, 3);
	assert_int_equal(latest(&s, 3, 7), UNKNOWN);
	/* A write sent and answered: known. */
	t = segver_sent(&s, 7, true);
	assert_int_equal(latest(&s, 3, 7), UNKNOWN); /* in flight */
	segver_write_acked(&s, 3, 7, 10, t);
	assert_int_equal(latest(&s, 3, 7), 10);
	/* Later answers raise it; an older one never lowers it. */
	t = segver_sent(&s, 7, true);
	t2 = segver_sent(&s, 7, true);
	segver_write_acked(&s, 3, 7, 12, t2);
	segver_write_acked(&s, 3, 7, 11, t);
	assert_int_equal(latest(&s, 3, 7), 12);
	segver_read_primary(&s, 3, 7, 11, segver_sent(&s, 7, true));
	assert_int_equal(latest(&s, 3, 7), 12);
	/* A read at the primary makes a segment known too. */
	segver_read_primary(&s, 3, 9, 4, segver_sent(&s, 9, true));
	assert_int_equal(latest(&s, 3, 9), 4);
	/* Version 0 at the primary: known never written, until a write. */
	segver_read_primary(&s, 3, 8, 0, segver_sent(&s, 8, true));
	assert_int_equal(latest(&s, 3, 8), 0);
	segver_write_acked(&s, 3, 8, 1, segver_sent(&s, 8, true));
	assert_int_equal(latest(&s, 3, 8), 1);
	segver_free(&s);
}

static void test_answers_before_the_claim(void **state)
{
	struct segver s = {0};
	uint64_t a, b, c;

	(void)state;
	segver_reset(&s, 1);
	/* Writes a and b of segment 4 in flight; a fails, forgetting the
	 * segment; c claims it again; b, sent before that claim, is answered
	 * 21: it raises but makes nothing known (an answer the slot never saw
	 * could be higher). */
	a = segver_sent(&s, 4, true);
	b = segver_sent(&s, 4, true);
	segver_write_failed(&s, 4);
	c = segver_sent(&s, 4, true); /* claims again */
	segver_write_acked(&s, 1, 4, 21, b);
	assert_int_equal(latest(&s, 1, 4), UNKNOWN);
	(void)a;
	/* c, sent at the claim, is answered: known, at the max seen. */
	segver_write_acked(&s, 1, 4, 20, c);
	assert_int_equal(latest(&s, 1, 4), 21);
	/* A failed write of the segment forgets it. */
	segver_write_failed(&s, 4);
	assert_int_equal(latest(&s, 1, 4), UNKNOWN);
	/* A read at the primary sent before the claim (here: before the
	 * failure) makes nothing known either. */
	a = segver_sent(&s, 4, true);
	segver_write_failed(&s, 4);
	b = segver_sent(&s, 4, true);
	segver_read_primary(&s, 1, 4, 30, a);
	assert_int_equal(latest(&s, 1, 4), UNKNOWN);
	segver_read_primary(&s, 1, 4, 30, b);
	assert_int_equal(latest(&s, 1, 4), 30);
	/* Requests of other segments do not matter. */
	a = segver_sent(&s, 5, true);
	segver_write_failed(&s, 6);
	segver_write_acked(&s, 1, 9, 50, segver_sent(&s, 9, true));
	segver_write_acked(&s, 1, 5, 3, a);
	assert_int_equal(latest(&s, 1, 5), 3);
	assert_int_equal(latest(&s, 1, 4), 30);
	segver_free(&s);
}

static void test_epochs(void **state)
{
	struct segver s = {0};
	uint64_t t;

	(void)state;
	/* Epoch 0 (no lease) learns nothing. */
	segver_read_primary(&s, 0, 1, 5, segver_sent(&s, 1, true));
	assert_int_equal(latest(&s, 0, 1), UNKNOWN);
	segver_reset(&s, 2);
	segver_read_primary(&s, 2, 1, 5, segver_sent(&s, 1, true));
	assert_int_equal(latest(&s, 2, 1), 5);
	/* Asked or told under another epoch: unknown / ignored. */
	assert_int_equal(latest(&s, 3, 1), UNKNOWN);
	segver_read_primary(&s, 1, 2, 9, segver_sent(&s, 2, true));
	assert_int_equal(latest(&s, 2, 2), UNKNOWN);
	/* A new grant forgets everything, and an answer to a request sent
	 * before it teaches nothing. */
	t = segver_sent(&s, 1, true);
	segver_reset(&s, 4);
	assert_int_equal(latest(&s, 4, 1), UNKNOWN);
	segver_write_acked(&s, 4, 1, 6, t);
	assert_int_equal(latest(&s, 4, 1), UNKNOWN);
	segver_free(&s);
}

static void test_collision(void **state)
{
	struct segver s = {0};
	uint64_t a = 5, b = 5 + SEGVER_SLOTS, ta;

	(void)state;
	segver_reset(&s, 1);
	ta = segver_sent(&s, a, true);
	segver_write_acked(&s, 1, a, 30, ta);
	assert_int_equal(latest(&s, 1, a), 30);
	/* b claims the slot: a is unknown, b is not known yet. */
	ta = segver_sent(&s, a, true);
	segver_read_primary(&s, 1, b, 40, segver_sent(&s, b, true));
	assert_int_equal(latest(&s, 1, b), 40);
	assert_int_equal(latest(&s, 1, a), UNKNOWN);
	/* An answer for the evicted segment does not come back in (it was
	 * sent before b's claim, and a no longer holds the slot). */
	segver_write_acked(&s, 1, a, 31, ta);
	assert_int_equal(latest(&s, 1, a), UNKNOWN);
	assert_int_equal(latest(&s, 1, b), 40);
	segver_write_failed(&s, a); /* not present: b stays */
	assert_int_equal(latest(&s, 1, b), 40);
	/* a claims it back; its answers before that claim do not count. */
	segver_write_acked(&s, 1, a, 32, segver_sent(&s, a, true));
	assert_int_equal(latest(&s, 1, a), 32);
	assert_int_equal(latest(&s, 1, b), UNKNOWN);
	/* A write of a segment without a foreign copy (may_evict false)
	 * claims only an empty slot: b stays known. */
	ta = segver_sent(&s, b, true);
	segver_read_primary(&s, 1, b, 42, ta);
	ta = segver_sent(&s, a, false);
	segver_write_acked(&s, 1, a, 33, ta);
	assert_int_equal(latest(&s, 1, a), UNKNOWN);
	assert_int_equal(latest(&s, 1, b), 42);
	ta = segver_sent(&s, 6, false); /* empty slot: claimed */
	segver_write_acked(&s, 1, 6, 2, ta);
	assert_int_equal(latest(&s, 1, 6), 2);
	segver_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_learn_and_raise),
	    cmocka_unit_test(test_answers_before_the_claim),
	    cmocka_unit_test(test_epochs),
	    cmocka_unit_test(test_collision),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
