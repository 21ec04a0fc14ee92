/* test_pfpolicy.c: cmocka tests of the prefetch issue policy
 * (predict/pfpolicy.h) with known answers: the threshold control loop
 * (down when hits are low and load is low, up when the prefetch cache
 * bytes are full or the load is high, clamped), the adaptive window
 * (long on a sequential stream, 1 block on a random one) and the budget
 * in bytes/s (a token bucket) and in cache bytes.  Fails (cmocka) naming
 * the figure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "predict/pfpolicy.h"

#define BS 4096

static struct predict_candidate cand(uint32_t n, float prob)
{
	return (struct predict_candidate){.volume_id = 1,
					  .first_block = 1000,
					  .n_blocks = n,
					  .probability = prob};
}

static void test_threshold_loop(void **state)
{
	struct pfpolicy_config cfg = {.period = 10, .cache_bytes = 10 * BS};
	struct pfpolicy pp;

	(void)state;
	pfpolicy_init(&pp, &cfg);
	assert_float_equal(pp.threshold, 0.1, 1e-9);
	/* A period of misses, nothing unused: lower (0.05, the floor). */
	for (uint64_t i = 0; i < 10; i++)
		pfpolicy_observe(&pp, 7 * i, 1, false, i, 0);
	assert_float_equal(pp.threshold, 0.05, 1e-9);
	for (uint64_t i = 0; i < 10; i++)
		pfpolicy_observe(&pp, 7 * i, 1, false, 10 + i, 0);
	assert_float_equal(pp.threshold, 0.05, 1e-9);
	/* Prefetch cache bytes full (>= 90%): raise, twice. */
	for (uint64_t i = 0; i < 20; i++)
		pfpolicy_observe(&pp, 7 * i, 1, false, 20 + i, 9 * BS);
	assert_float_equal(pp.threshold, 0.15, 1e-9);
	/* Hits high, cache not full: unchanged. */
	for (uint64_t i = 0; i < 10; i++)
		pfpolicy_observe(&pp, 7 * i, 1, true, 40 + i, 0);
	assert_float_equal(pp.threshold, 0.15, 1e-9);
	assert_int_equal(pp.steps_up, 2);
	assert_int_equal(pp.steps_down, 2); /* the second one clamped */
	/* Candidates below the threshold are not issued. */
	{
		struct predict_candidate lo = cand(1, 0.1f), hi = cand(1, 0.2f);

		assert_int_equal(pfpolicy_admit(&pp, &lo, 0), 0);
		assert_int_equal(pfpolicy_admit(&pp, &hi, 0), 1);
	}
}

static void test_load_raises(void **state)
{
	/* Budget 10 blocks/s; a period of 10 accesses over 1 s issuing 10
	 * blocks is a load of 1.0 > 0.9: raise despite the misses. */
	struct pfpolicy_config cfg = {.period = 10, .budget_bps = 10 * BS};
	struct pfpolicy pp;
	struct predict_candidate c = cand(1, 1.0f);

	(void)state;
	pfpolicy_init(&pp, &cfg);
	for (uint64_t i = 0; i < 10; i++) {
		pfpolicy_observe(&pp, 7 * i, 1, false, 100000 * (i + 1), 0);
		if (i < 9)
			assert_int_equal(pfpolicy_admit(&pp, &c, 0), 1);
	}
	assert_int_equal(pfpolicy_admit(&pp, &c, 0), 1);
	for (uint64_t i = 0; i < 10; i++)
		pfpolicy_observe(&pp, 7 * i, 1, false, 1000000 + i + 1, 0);
	assert_float_equal(pp.threshold, 0.15, 1e-9);
}

static void test_window(void **state)
{
	struct pfpolicy_config cfg = {.window_max = 64};
	struct pfpolicy pp;
	struct predict_candidate c = cand(200, 1.0f);

	(void)state;
	pfpolicy_init(&pp, &cfg);
	/* Random stream: window 1. */
	for (uint64_t i = 0; i < 200; i++)
		pfpolicy_observe(&pp, 1000 * i + 3, 1, false, i, 0);
	assert_int_equal(pfpolicy_window(&pp), 1);
	assert_int_equal(pfpolicy_admit(&pp, &c, 0), 1);
	/* Sequential: within a block of the maximum after 200 accesses. */
	for (uint64_t i = 0; i < 200; i++)
		pfpolicy_observe(&pp, 5000000 + 4 * i, 4, false, 200 + i, 0);
	assert_true(pfpolicy_window(&pp) >= 63);
	assert_true(pfpolicy_admit(&pp, &c, 0) >= 63);
}

static void test_budget(void **state)
{
	/* 4 blocks/s, 6 blocks of prefetch cache bytes. */
	struct pfpolicy_config cfg = {.budget_bps = 4 * BS,
				      .cache_bytes = 6 * BS};
	struct pfpolicy pp;
	struct predict_candidate c = cand(8, 1.0f);

	(void)state;
	pfpolicy_init(&pp, &cfg);
	pfpolicy_observe(&pp, 0, 1, false, 1, 0);
	for (uint64_t i = 1; i < 100; i++) /* sequential: window 256 */
		pfpolicy_observe(&pp, i, 1, false, 1, 0);
	assert_int_equal(pfpolicy_admit(&pp, &c, 0), 4); /* burst: 1 s */
	assert_int_equal(pfpolicy_admit(&pp, &c, 0), 0);
	pfpolicy_observe(&pp, 100, 1, false, 500001, 0); /* +0.5 s */
	assert_int_equal(pfpolicy_admit(&pp, &c, 0), 2);
	pfpolicy_observe(&pp, 101, 1, false, 10000001, 0); /* full bucket */
	/* Cache bytes: 5 blocks unused already leaves room for 1. */
	assert_int_equal(pfpolicy_admit(&pp, &c, 5 * BS), 1);
	assert_int_equal(pfpolicy_admit(&pp, &c, 6 * BS), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threshold_loop),
	    cmocka_unit_test(test_load_raises),
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_budget),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
