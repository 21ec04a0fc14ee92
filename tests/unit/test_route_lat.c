/* test_route_lat.c: the proxy's per-node latency estimator
 * (proxy/route_lat.h): EWMA arithmetic, nearest-rank p99 over the ring of
 * recent samples (and the ring forgetting old samples), the in-flight
 * penalty, the unknown and down costs, and that a node with a long tail
 * ranks behind one with the same mean.  Fails (cmocka) naming the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/route_lat.h"

static void test_empty_and_down(void **state)
{
	struct lat_est e;

	(void)state;
	lat_init(&e);
	assert_true(lat_p99(&e) == 0);
	assert_true(lat_expected(&e, false) == LAT_UNKNOWN_MS);
	assert_true(lat_expected(&e, true) ==
		    LAT_UNKNOWN_MS + LAT_DOWN_PENALTY_MS);
	/* Answered calls never drive the count below zero. */
	lat_inflight(&e, -1);
	assert_int_equal(e.inflight, 0);
}

static void test_ewma(void **state)
{
	struct lat_est e;

	(void)state;
	lat_init(&e);
	lat_sample(&e, 10);
	assert_true(e.ewma_ms == 10); /* the first sample is taken as is */
	lat_sample(&e, 20);
	/* 0.2 * 20 + 0.8 * 10 */
	assert_true(e.ewma_ms > 11.999 && e.ewma_ms < 12.001);
	lat_sample(&e, -5); /* clamped to 0 */
	assert_true(e.ewma_ms > 9.599 && e.ewma_ms < 9.601);
}

static void test_p99_nearest_rank(void **state)
{
	struct lat_est e;

	(void)state;
	lat_init(&e);
	/* 100 samples 1..100: ceil(0.99 * 100) = 99th smallest = 99. */
	for (int i = 100; i >= 1; i--)
		lat_sample(&e, i);
	assert_true(lat_p99(&e) == 99);
	/* One sample: p99 is that sample. */
	lat_init(&e);
	lat_sample(&e, 7);
	assert_true(lat_p99(&e) == 7);
}

static void test_ring_forgets(void **state)
{
	struct lat_est e;

	(void)state;
	lat_init(&e);
	for (unsigned i = 0; i < LAT_RING; i++)
		lat_sample(&e, 1000); /* an old slow period */
	assert_true(lat_p99(&e) == 1000);
	for (unsigned i = 0; i < LAT_RING; i++)
		lat_sample(&e, 2);
	assert_int_equal(e.n_samples, LAT_RING);
	assert_true(lat_p99(&e) == 2);
}

static void test_inflight_penalty(void **state)
{
	struct lat_est e;
	double idle, busy;

	(void)state;
	lat_init(&e);
	for (int i = 0; i < 10; i++)
		lat_sample(&e, 4);
	idle = lat_expected(&e, false);
	assert_true(idle > 3.999 && idle < 4.001);
	lat_inflight(&e, 2);
	busy = lat_expected(&e, false);
	/* 4 * (1 + 0.5 * 2) */
	assert_true(busy > 7.999 && busy < 8.001);
	lat_inflight(&e, -2);
	assert_true(lat_expected(&e, false) == idle);
}

static void test_tail_ranks_behind(void **state)
{
	struct lat_est steady, tail;

	(void)state;
	lat_init(&steady);
	lat_init(&tail);
	/* Same EWMA at the end, but "tail" had 3 slow calls in the ring. */
	for (int i = 0; i < 100; i++) {
		lat_sample(&steady, 5);
		lat_sample(&tail, i % 33 == 0 ? 200 : 5);
	}
	for (int i = 0; i < 40; i++) {
		lat_sample(&steady, 5);
		lat_sample(&tail, 5);
	}
	assert_true(tail.ewma_ms < 5.01);
	assert_true(lat_expected(&tail, false) >
		    lat_expected(&steady, false) + 10);
	/* An idle node that is down still ranks after a busy node. */
	lat_inflight(&tail, 10);
	assert_true(lat_expected(&steady, true) > lat_expected(&tail, false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_and_down),
	    cmocka_unit_test(test_ewma),
	    cmocka_unit_test(test_p99_nearest_rank),
	    cmocka_unit_test(test_ring_forgets),
	    cmocka_unit_test(test_inflight_penalty),
	    cmocka_unit_test(test_tail_ranks_behind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
