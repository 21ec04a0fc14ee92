/* test_route.c: copy choice per read part (proxy/route.h): argument
 * checks per consistency level, STRONG never asks a foreign copy unless a
 * writer version is known (and then with min_version = it), BOUNDED and
 * EVENTUAL ask foreign copies with the client's bound, ordering by expected
 * latency with stable ties, duplicates asked once (as home if they are
 * home).  Fails (cmocka) naming the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/route.h"

/* primary 1 (5 ms), replica 2 (3 ms), shadow 3 (0.5 ms), cache 4 (1 ms) */
static const struct route_cand cands[] = {
    {1, ROUTE_HOME, 5.0},
    {2, ROUTE_HOME, 3.0},
    {3, ROUTE_SHADOW, 0.5},
    {4, ROUTE_CACHE, 1.0},
};

static void test_check(void **state)
{
	char msg[200];

	(void)state;
	assert_true(route_check(0, 0, 0, msg, sizeof(msg)));
	assert_true(route_check(ROUTE_STRONG, 0, 0, msg, sizeof(msg)));
	assert_true(route_check(ROUTE_EVENTUAL, 0, 0, msg, sizeof(msg)));
	assert_true(route_check(ROUTE_BOUNDED, 100, 0, msg, sizeof(msg)));
	assert_true(route_check(ROUTE_BOUNDED, 0, 7, msg, sizeof(msg)));
	assert_true(route_check(ROUTE_BOUNDED, 100, 7, msg, sizeof(msg)));
	assert_false(route_check(ROUTE_BOUNDED, 0, 0, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "BOUNDED reads need"));
	assert_false(route_check(ROUTE_STRONG, 0, 5, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "BOUNDED reads only"));
	assert_false(route_check(ROUTE_EVENTUAL, 10, 0, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "EVENTUAL"));
	assert_false(route_check(9, 0, 0, msg, sizeof(msg)));
	assert_non_null(strstr(msg, "unknown consistency 9"));
	assert_false(route_check(-1, 0, 0, msg, sizeof(msg)));
}

static void test_strong_home_only(void **state)
{
	struct route_want w = {.level = ROUTE_STRONG};
	struct route_try t[8];
	unsigned n;

	(void)state;
	n = route_plan(&w, cands, 4, t, 8);
	assert_int_equal(n, 2);
	assert_int_equal(t[0].node, 2); /* faster replica first */
	assert_int_equal(t[1].node, 1);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(t[i].kind, ROUTE_HOME);
		assert_false(t[i].foreign_ok);
		assert_int_equal(t[i].min_version, 0);
	}
	/* UNSPECIFIED is STRONG. */
	w.level = ROUTE_UNSPECIFIED;
	assert_int_equal(route_plan(&w, cands, 4, t, 8), 2);
}

static void test_strong_with_writer_version(void **state)
{
	struct route_want w = {
	    .level = ROUTE_STRONG, .writer_version = 42, .writer_known = true};
	struct route_try t[8];
	unsigned n;

	(void)state;
	n = route_plan(&w, cands, 4, t, 8);
	assert_int_equal(n, 4);
	assert_int_equal(t[0].node, 3);
	assert_int_equal(t[0].kind, ROUTE_SHADOW);
	assert_true(t[0].foreign_ok);
	assert_int_equal(t[0].min_version, 42);
	assert_int_equal(t[0].max_staleness_ms, 0);
	assert_int_equal(t[1].node, 4);
	assert_int_equal(t[1].kind, ROUTE_CACHE);
	assert_int_equal(t[1].min_version, 42);
	/* Home copies come after, asked without foreign_ok. */
	assert_int_equal(t[2].node, 2);
	assert_false(t[2].foreign_ok);
	assert_int_equal(t[2].min_version, 0);
	assert_int_equal(t[3].node, 1);
	/* A segment known never written: foreign copies at min_version 0. */
	w.writer_version = 0;
	n = route_plan(&w, cands, 4, t, 8);
	assert_int_equal(n, 4);
	assert_true(t[0].foreign_ok);
	assert_int_equal(t[0].min_version, 0);
	/* Not known: home copies only. */
	w.writer_known = false;
	assert_int_equal(route_plan(&w, cands, 4, t, 8), 2);
	w.writer_known = true;
}

static void test_bounded_and_eventual(void **state)
{
	struct route_want w = {.level = ROUTE_BOUNDED, .min_version = 9};
	struct route_try t[8];
	unsigned n;

	(void)state;
	n = route_plan(&w, cands, 4, t, 8);
	assert_int_equal(n, 4);
	assert_int_equal(t[0].node, 3);
	assert_true(t[0].foreign_ok);
	assert_int_equal(t[0].min_version, 9);
	assert_int_equal(t[0].max_staleness_ms, 0);
	w.min_version = 0;
	w.max_staleness_ms = 250;
	n = route_plan(&w, cands, 4, t, 8);
	assert_int_equal(t[1].node, 4);
	assert_int_equal(t[1].max_staleness_ms, 250);
	assert_int_equal(t[1].min_version, 0);
	/* BOUNDED with no bound (refused by route_check): home only. */
	w.max_staleness_ms = 0;
	assert_int_equal(route_plan(&w, cands, 4, t, 8), 2);
	/* EVENTUAL: foreign_ok without bounds; a writer version is not
	 * used. */
	w.level = ROUTE_EVENTUAL;
	w.writer_version = 77;
	n = route_plan(&w, cands, 4, t, 8);
	assert_int_equal(n, 4);
	assert_true(t[0].foreign_ok);
	assert_int_equal(t[0].min_version, 0);
	assert_int_equal(t[0].max_staleness_ms, 0);
}

static void test_ties_dups_and_limits(void **state)
{
	/* Equal costs keep the input order; node 2 listed as shadow and as
	 * home is asked once, as home; node 5 listed twice as foreign once;
	 * node 0 is never asked. */
	const struct route_cand c[] = {
	    {2, ROUTE_SHADOW, 1.0}, {1, ROUTE_HOME, 1.0},
	    {2, ROUTE_HOME, 1.0},   {5, ROUTE_SHADOW, 1.0},
	    {5, ROUTE_CACHE, 0.1},  {0, ROUTE_CACHE, 0.0},
	};
	struct route_want w = {.level = ROUTE_EVENTUAL};
	struct route_try t[8];
	unsigned n;

	(void)state;
	n = route_plan(&w, c, 6, t, 8);
	assert_int_equal(n, 3);
	assert_int_equal(t[0].node, 1);
	assert_int_equal(t[1].node, 2);
	assert_int_equal(t[1].kind, ROUTE_HOME);
	assert_false(t[1].foreign_ok);
	assert_int_equal(t[2].node, 5);
	assert_int_equal(t[2].kind, ROUTE_SHADOW);
	/* max bounds the output; 0 candidates plan nothing. */
	assert_int_equal(route_plan(&w, c, 6, t, 1), 1);
	assert_int_equal(route_plan(&w, c, 0, t, 8), 0);
	assert_string_equal(route_kind_name(ROUTE_CACHE), "cache");
}

/* A down node (cost + 1e9) is asked after every up copy, foreign or not. */
static void test_down_last(void **state)
{
	const struct route_cand c[] = {
	    {1, ROUTE_HOME, 1e9 + 1},
	    {2, ROUTE_HOME, 4.0},
	    {3, ROUTE_SHADOW, 40.0},
	};
	struct route_want w = {.level = ROUTE_BOUNDED, .max_staleness_ms = 5};
	struct route_try t[8];

	(void)state;
	assert_int_equal(route_plan(&w, c, 3, t, 8), 3);
	assert_int_equal(t[0].node, 2);
	assert_int_equal(t[1].node, 3);
	assert_int_equal(t[2].node, 1);
}

/* A copy in another region costs 1.5x + 0.5 ms: it loses to a local copy
 * that measures alike, wins when it is clearly faster. */
static void test_remote_cost(void **state)
{
	struct route_cand c[2];
	struct route_try t[2];
	struct route_want w = {.level = ROUTE_EVENTUAL};

	(void)state;
	assert_true(route_cost(2.0, true) == 2.0);
	assert_true(route_cost(2.0, false) == 3.5);
	/* Remote home 1 ms, local cache 1.2 ms: the local one first. */
	c[0] = (struct route_cand){1, ROUTE_HOME, route_cost(1.0, false)};
	c[1] = (struct route_cand){2, ROUTE_CACHE, route_cost(1.2, true)};
	assert_int_equal(route_plan(&w, c, 2, t, 2), 2);
	assert_int_equal(t[0].node, 2);
	/* Remote home 1 ms, local cache 5 ms: the remote one first. */
	c[1].cost = route_cost(5.0, true);
	assert_int_equal(route_plan(&w, c, 2, t, 2), 2);
	assert_int_equal(t[0].node, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_strong_home_only),
	    cmocka_unit_test(test_strong_with_writer_version),
	    cmocka_unit_test(test_bounded_and_eventual),
	    cmocka_unit_test(test_ties_dups_and_limits),
	    cmocka_unit_test(test_down_last),
	    cmocka_unit_test(test_remote_cost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
