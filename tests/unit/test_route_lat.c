/* test_route_lat.c: the proxy's per-node latency estimator
 * (proxy/route_lat.h): EWMA arithmetic, nearest-rank p99 over the ring of
 * recent samples (and the ring forgetting old samples, the p99 window
 * forgetting a sparsely sampled node's old outlier), the in-flight
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
	assert_true(lat_p99(&e, 0) == 0);
	assert_true(lat_expected(&e, false, 0) == LAT_UNKNOWN_MS);
	assert_true(lat_expected(&e, true, 0) ==
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
	lat_sample(&e, 10, 0);
	assert_true(e.ewma_ms == 10); /* the first sample is taken as is */
	lat_sample(&e, 20, 0);
	/* 0.2 * 20 + 0.8 * 10 */
	assert_true(e.ewma_ms > 11.999 && e.ewma_ms < 12.001);
	lat_sample(&e, -5, 0); /* clamped to 0 */
	assert_true(e.ewma_ms > 9.599 && e.ewma_ms < 9.601);
}

static void test_p99_nearest_rank(void **state)
{
	struct lat_est e;

	(void)state;
	lat_init(&e);
	/* 100 samples 1..100: ceil(0.99 * 100) = 99th smallest = 99. */
	for (int i = 100; i >= 1; i--)
		lat_sample(&e, i, 0);
	assert_true(lat_p99(&e, 0) == 99);
	/* One sample: p99 is that sample. */
	lat_init(&e);
	lat_sample(&e, 7, 0);
	assert_true(lat_p99(&e, 0) == 7);
}

static void test_ring_forgets(void **state)
{
	struct lat_est e;

	(void)state;
	lat_init(&e);
	for (unsigned i = 0; i < LAT_RING; i++)
		lat_sample(&e, 1000, 0); /* an old slow period */
	assert_true(lat_p99(&e, 0) == 1000);
	for (unsigned i = 0; i < LAT_RING; i++)
		lat_sample(&e, 2, 0);
	assert_int_equal(e.n_samples, LAT_RING);
	assert_true(lat_p99(&e, 0) == 2);
}

static void test_inflight_penalty(void **state)
{
	struct lat_est e;
	double idle, busy;

	(void)state;
	lat_init(&e);
	for (int i = 0; i < 10; i++)
		lat_sample(&e, 4, 0);
	idle = lat_expected(&e, false, 0);
	assert_true(idle > 3.999 && idle < 4.001);
	lat_inflight(&e, 2);
	busy = lat_expected(&e, false, 0);
	/* 4 * (1 + 0.5 * 2) */
	assert_true(busy > 7.999 && busy < 8.001);
	lat_inflight(&e, -2);
	assert_true(lat_expected(&e, false, 0) == idle);
}

static void test_tail_ranks_behind(void **state)
{
	struct lat_est steady, tail;

	(void)state;
	lat_init(&steady);
	lat_init(&tail);
	/* Same EWMA at the end, but "tail" had 3 slow calls in the ring. */
	for (int i = 0; i < 100; i++) {
		lat_sample(&steady, 5, 0);
		lat_sample(&tail, i % 33 == 0 ? 200 : 5, 0);
	}
	for (int i = 0; i < 40; i++) {
		lat_sample(&steady, 5, 0);
		lat_sample(&tail, 5, 0);
	}
	assert_true(tail.ewma_ms < 5.01);
	assert_true(lat_expected(&tail, false, 0) >
		    lat_expected(&steady, false, 0) + 10);
	/* An idle node that is down still ranks after a busy node. */
	lat_inflight(&tail, 10);
	assert_true(lat_expected(&steady, true, 0) >
		    lat_expected(&tail, false, 0));
}

/* A node no read goes to is sampled once a second (the probe).  One slow
 * probe must not rank it behind remote copies for the next 128 probes:
 * the p99 counts the last LAT_WINDOW_MS only (test_prefetch_engine: a
 * local cache node whose probe took 287 ms under load lost every STRONG
 * read to the remote home copies for the 20 s the test waited).  A busy
 * node keeps its tail: many samples inside the window. */
static void test_window_forgets_old_tail(void **state)
{
	struct lat_est idle, busy, remote;
	uint64_t t = 5000;
	double cost_local, cost_remote;

	(void)state;
	lat_init(&idle);
	lat_init(&busy);
	lat_init(&remote);
	for (int i = 0; i < 20; i++, t += 1000)
		lat_sample(&idle, 5, t);
	lat_sample(&idle, 287, t); /* one slow probe under load */
	assert_true(lat_p99(&idle, t) == 287);
	for (int i = 0; i < 30; i++, t += 1000) {
		/* the remote home copy serves the reads meanwhile */
		for (int k = 0; k < 50; k++)
			lat_sample(&remote, 5, t + (uint64_t)k);
		if (i > 0)
			lat_sample(&idle, 5, t);
		cost_local = lat_expected(&idle, false, t);
		/* route_cost() of a remote node: 1.5 x + 0.5 ms */
		cost_remote = 1.5 * lat_expected(&remote, false, t) + 0.5;
		if (i < 9)
			/* the outlier still counts: the local node loses */
			assert_true(cost_local > cost_remote);
		if (i >= 11 && i < 20)
			/* out of the window; the EWMA decays per sample */
			assert_true(lat_p99(&idle, t) == 5);
		if (i >= 20)
			assert_true(cost_local < cost_remote);
	}
	/* No sample in the window at all: the p99 is the EWMA. */
	t += 2 * LAT_WINDOW_MS;
	assert_true(lat_p99(&idle, t) == idle.ewma_ms);
	/* A busy node's tail stays while it is recent. */
	for (int i = 0; i < 100; i++)
		lat_sample(&busy, i == 50 || i == 60 ? 200 : 5,
			   t + (uint64_t)i);
	assert_true(lat_p99(&busy, t + 100) == 200);
	assert_true(lat_p99(&busy, t + 100 + LAT_WINDOW_MS) == busy.ewma_ms);
}

/* The read failover deadline: 4 p99s, at least 300 ms, at most the call
 * deadline; a node without samples gets the floor. */
static void test_failover_deadline(void **state)
{
	struct lat_est e;
	uint64_t t = 1000;

	(void)state;
	lat_init(&e);
	assert_int_equal(lat_failover_ms(&e, t, 5000), LAT_FAILOVER_MIN_MS);
	for (int i = 0; i < 50; i++)
		lat_sample(&e, 2, t + (uint64_t)i);
	assert_int_equal(lat_failover_ms(&e, t + 50, 5000),
			 LAT_FAILOVER_MIN_MS);
	for (int i = 0; i < 50; i++)
		lat_sample(&e, 100, t + 100 + (uint64_t)i);
	assert_int_equal(lat_failover_ms(&e, t + 150, 5000), 400);
	for (int i = 0; i < 3; i++) /* a tail: 3 of 103 samples */
		lat_sample(&e, 3000, t + 200);
	assert_int_equal(lat_failover_ms(&e, t + 200, 5000), 5000);
	assert_int_equal(lat_failover_ms(&e, t + 200, 200), 200);
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
	    cmocka_unit_test(test_window_forgets_old_tail),
	    cmocka_unit_test(test_failover_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
