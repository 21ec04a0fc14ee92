/* test_foreign_logic.c: the watermark and present-block rules of foreign
 * copies (stored/foreign_logic.c, docs/shadows.md): pulls into an empty
 * and a non-empty copy, propagation in chain order, out of order, with
 * a gap and with invalidated partial blocks, anti-entropy (which blocks
 * are behind, when a round may confirm), fill runs, drops, lag,
 * and every reason a foreign read is refused; the --cache-bytes and
 * --shadow-check-ms options.  Also the request-id LRU
 * remembering a write's prev_version (stored/wlogic.c).
 *
 * Failure: a cmocka assertion names the expectation that did not hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "foreign_logic.h"
#include "options.h"
#include "wlogic.h"

#define V(seq) ((UINT64_C(1) << 40) | (seq))

static void test_pull_empty_then_partial(void **state)
{
	struct fc_copy c;

	(void)state;
	fc_init(&c, 7, 2, FC_CACHE, 16, 1000);
	assert_int_equal(c.n_present, 0);
	assert_false(fc_all_present(&c, 0, 1));
	fc_pulled(&c, 4, 4, V(10), 1100);
	assert_int_equal(c.n_present, 4);
	assert_true(fc_all_present(&c, 4, 4));
	assert_false(fc_all_present(&c, 3, 2));
	assert_int_equal(c.watermark, V(10)); /* held nothing: V */
	assert_int_equal(c.confirmed_ms, 1100);
	/* A later pull of other blocks at a newer version: the old blocks
	 * are only as new as V(10). */
	fc_pulled(&c, 8, 2, V(12), 1200);
	assert_int_equal(c.watermark, V(10));
	assert_int_equal(c.confirmed_ms, 1100);
	assert_int_equal(c.n_present, 6);
	/* A pull at an older version (a lagging replica) lowers it. */
	fc_pulled(&c, 0, 1, V(9), 1300);
	assert_int_equal(c.watermark, V(9));
	assert_int_equal(c.confirmed_ms, 1300);
	/* Out of range blocks are ignored. */
	fc_pulled(&c, 15, 4, V(9), 1300);
	assert_int_equal(c.n_present, 8);
	assert_false(fc_all_present(&c, 15, 2));
}

/* Runs ahead of the watermark: folded in any order, a gap holds them,
 * the oldest is forgotten when the table is full, a lowered watermark or
 * an emptied copy forgets them, anti-entropy folds them too. */
static void test_propagation_runs(void **state)
{
	struct fc_copy c;

	(void)state;
	fc_init(&c, 1, 0, FC_SHADOW, 16, 0);
	fc_pulled(&c, 0, 16, V(1), 10);
	/* 4->5, 3->4, 2->3 arrive before 1->2: all folded at once. */
	assert_false(fc_propagated(&c, V(4), V(5), NULL, 0, 50));
	assert_false(fc_propagated(&c, V(3), V(4), NULL, 0, 40));
	assert_false(fc_propagated(&c, V(2), V(3), NULL, 0, 30));
	assert_int_equal(c.n_runs, 3);
	assert_true(fc_propagated(&c, V(1), V(2), NULL, 0, 20));
	assert_int_equal(c.watermark, V(5));
	assert_int_equal(c.confirmed_ms, 50);
	assert_int_equal(c.n_runs, 0);
	/* An unknown start (prev == version) is never remembered. */
	assert_false(fc_propagated(&c, V(9), V(9), NULL, 0, 60));
	assert_int_equal(c.n_runs, 0);
	/* Full: the oldest run (6->7) is forgotten, so 5->6 stops at 6. */
	for (uint64_t v = 6; v < 6 + FC_MAX_RUNS + 1; v++) {
		assert_false(fc_propagated(&c, V(v), V(v + 1), NULL, 0, 70));
	}
	assert_int_equal(c.n_runs, FC_MAX_RUNS);
	assert_true(fc_propagated(&c, V(5), V(6), NULL, 0, 65));
	assert_int_equal(c.watermark, V(6));
	/* Anti-entropy confirms 7: the remembered runs from 7 fold in. */
	fc_confirmed(&c, V(7), 80);
	assert_int_equal(c.watermark, V(6 + FC_MAX_RUNS + 1));
	assert_int_equal(c.n_runs, 0);
	/* A lowered watermark forgets runs claimed against the old one. */
	assert_false(fc_propagated(&c, V(20), V(21), NULL, 0, 90));
	fc_pulled(&c, 0, 1, V(3), 95);
	assert_int_equal(c.n_runs, 0);
	/* So does a copy emptied by drops. */
	assert_false(fc_propagated(&c, V(20), V(21), NULL, 0, 90));
	fc_drop(&c, 0, 16);
	assert_int_equal(c.n_runs, 0);
	assert_int_equal(c.watermark, 0);
}

static void test_propagation_chain(void **state)
{
	struct fc_copy c;
	uint32_t inval[] = {5};

	(void)state;
	fc_init(&c, 1, 0, FC_SHADOW, 16, 0);
	fc_pulled(&c, 0, 16, V(3), 10);
	assert_true(fc_propagated(&c, V(3), V(4), NULL, 0, 20));
	assert_int_equal(c.watermark, V(4));
	assert_int_equal(c.confirmed_ms, 20);
	/* Out of order: 5 -> 6 before 4 -> 5 does not move it... */
	assert_false(fc_propagated(&c, V(5), V(6), NULL, 0, 40));
	assert_int_equal(c.watermark, V(4));
	assert_int_equal(c.primary_version, V(6));
	assert_int_equal(fc_lag_versions(&c), 2);
	/* ...but is remembered: the late 4 -> 5 moves it through 5 to 6,
	 * confirmed when 6 was acknowledged (the newest known). */
	assert_true(fc_propagated(&c, V(4), V(5), NULL, 0, 30));
	assert_int_equal(c.watermark, V(6));
	assert_int_equal(c.confirmed_ms, 40);
	assert_int_equal(c.n_runs, 0);
	/* A replayed message changes nothing. */
	assert_false(fc_propagated(&c, V(4), V(5), NULL, 0, 30));
	assert_int_equal(c.watermark, V(6));
	/* A gap: 7 -> 8 waits for 6 -> 7, which then moves it to 8. */
	assert_false(fc_propagated(&c, V(7), V(8), NULL, 0, 45));
	assert_int_equal(c.watermark, V(6));
	assert_true(fc_propagated(&c, V(6), V(7), NULL, 0, 44));
	assert_int_equal(c.watermark, V(8));
	assert_int_equal(c.confirmed_ms, 45);
	fc_pulled(&c, 0, 16, V(5), 46); /* an old pull lowers it to 5 */
	assert_int_equal(c.watermark, V(5));
	/* An unaligned write's partial block is dropped from present even
	 * when the chain is broken. */
	assert_false(fc_propagated(&c, V(7), V(8), inval, 1, 50));
	assert_false(fc_present(&c, 5));
	assert_int_equal(c.n_present, 15);
	assert_int_equal(c.watermark, V(5));
	/* Anti-entropy: primary at 8 asked at 60. */
	fc_confirmed(&c, V(8), 60);
	assert_int_equal(c.watermark, V(8));
	assert_int_equal(c.confirmed_ms, 60);
	assert_int_equal(fc_lag_versions(&c), 0);
	assert_int_equal(fc_lag_ms(&c, 100), 0);
}

static void test_new_epoch_lag(void **state)
{
	struct fc_copy c;

	(void)state;
	fc_init(&c, 1, 0, FC_SHADOW, 16, 0);
	fc_pulled(&c, 0, 16, V(3), 10);
	fc_primary_seen(&c, (UINT64_C(2) << 40) | 4, 20);
	assert_int_equal(fc_lag_versions(&c), 4);
	assert_int_equal(fc_lag_ms(&c, 110), 100);
	fc_primary_seen(&c, V(1), 30); /* never goes back */
	assert_int_equal(c.primary_version, (UINT64_C(2) << 40) | 4);
}

/* A shadow of a segment never written at the primary (version 0) is
 * current at watermark 0; an empty copy is not. */
static void test_never_written_lag(void **state)
{
	struct fc_copy c;

	(void)state;
	fc_init(&c, 1, 0, FC_SHADOW, 16, 0);
	assert_int_equal(fc_lag_ms(&c, 50), 50);
	fc_pulled(&c, 0, 16, 0, 10);
	assert_int_equal(c.watermark, 0);
	assert_int_equal(fc_lag_versions(&c), 0);
	assert_int_equal(fc_lag_ms(&c, 5000), 0);
	fc_primary_seen(&c, V(1), 20); /* written since */
	assert_int_equal(fc_lag_ms(&c, 5000), 4990);
}

static void test_drop(void **state)
{
	struct fc_copy c;

	(void)state;
	fc_init(&c, 1, 0, FC_CACHE, 16, 0);
	fc_pulled(&c, 0, 8, V(3), 10);
	assert_int_equal(fc_drop(&c, 6, 10), 2);
	assert_int_equal(c.n_present, 6);
	assert_int_equal(c.watermark, V(3));
	assert_int_equal(fc_drop(&c, 6, 10), 0);
	assert_int_equal(fc_drop(&c, 0, 16), 6);
	assert_int_equal(c.watermark, 0); /* nothing held, nothing claimed */
	/* Pulled again after the drop: the watermark is the new pull's. */
	fc_pulled(&c, 0, 1, V(9), 20);
	assert_int_equal(c.watermark, V(9));
}

static void test_check_read(void **state)
{
	struct fc_copy c;
	char msg[256];

	(void)state;
	fc_init(&c, 1, 0, FC_SHADOW, 16, 0);
	assert_int_equal(
	    fc_check_read(&c, 0, 1, 0, 0, true, 100, msg, sizeof(msg)),
	    FC_NOT_PRESENT);
	assert_non_null(strstr(msg, "not present"));
	fc_pulled(&c, 0, 4, V(5), 1000);
	/* EVENTUAL: any present data, lease or not. */
	assert_int_equal(
	    fc_check_read(&c, 0, 4, 0, 0, false, 5000, msg, sizeof(msg)),
	    FC_OK);
	assert_int_equal(
	    fc_check_read(&c, 2, 3, 0, 0, true, 5000, msg, sizeof(msg)),
	    FC_NOT_PRESENT);
	/* min_version. */
	assert_int_equal(
	    fc_check_read(&c, 0, 4, V(5), 0, true, 5000, msg, sizeof(msg)),
	    FC_OK);
	assert_int_equal(
	    fc_check_read(&c, 0, 4, V(6), 0, true, 5000, msg, sizeof(msg)),
	    FC_BEHIND);
	assert_non_null(strstr(msg, "watermark"));
	/* BOUNDED: confirmed at 1000. */
	assert_int_equal(
	    fc_check_read(&c, 0, 4, 0, 500, true, 1400, msg, sizeof(msg)),
	    FC_OK);
	assert_int_equal(
	    fc_check_read(&c, 0, 4, 0, 500, true, 1600, msg, sizeof(msg)),
	    FC_STALE);
	assert_non_null(strstr(msg, "600 ms ago"));
	assert_int_equal(
	    fc_check_read(&c, 0, 4, 0, 500, false, 1400, msg, sizeof(msg)),
	    FC_NO_READ_LEASE);
	/* A confirmation time ahead of our clock is age 0, not huge. */
	fc_confirmed(&c, V(5), 2000);
	assert_int_equal(
	    fc_check_read(&c, 0, 4, 0, 10, true, 1900, msg, sizeof(msg)),
	    FC_OK);
	fc_read_served(&c, 1900);
	assert_int_equal(c.reads, 1);
	assert_int_equal(c.last_read_ms, 1900);
}

static void test_fill_runs(void **state)
{
	struct fc_copy c;
	uint32_t first = 99, n = 99;

	(void)state;
	fc_init(&c, 1, 0, FC_SHADOW, 10, 0);
	assert_true(fc_next_missing(&c, 4, &first, &n));
	assert_int_equal(first, 0);
	assert_int_equal(n, 4);
	fc_pulled(&c, 0, 4, V(2), 10);
	fc_pulled(&c, 6, 1, V(2), 10);
	assert_true(fc_next_missing(&c, 64, &first, &n));
	assert_int_equal(first, 4); /* 4, 5: stops at the present 6 */
	assert_int_equal(n, 2);
	fc_pulled(&c, 4, 2, V(2), 10);
	assert_true(fc_next_missing(&c, 64, &first, &n));
	assert_int_equal(first, 7);
	assert_int_equal(n, 3); /* up to the segment's end */
	fc_pulled(&c, 7, 3, V(2), 10);
	assert_false(fc_next_missing(&c, 64, &first, &n));
}

static void test_anti_entropy(void **state)
{
	struct fc_copy c;
	uint64_t prim[8] = {V(5), V(2), V(7), 0, V(1), V(6), 0, 0};
	uint64_t loc[8] = {V(5), V(2), V(3), 0, V(1), V(4), 0, 0};
	uint64_t then[FC_MAX_BLOCKS / 64];
	uint32_t lo = 0, hi = 0;

	(void)state;
	fc_init(&c, 1, 0, FC_SHADOW, 8, 0);
	fc_pulled(&c, 0, 2, V(5), 100);
	fc_pulled(&c, 4, 1, V(5), 100);
	/* Only present blocks count: 2 and 5 are newer at the primary but
	 * not held, 0/1/4 are current. */
	assert_false(fc_behind_range(&c, prim, loc, 8, &lo, &hi));
	fc_pulled(&c, 2, 1, V(5), 100);
	fc_pulled(&c, 5, 1, V(5), 100);
	assert_true(fc_behind_range(&c, prim, loc, 8, &lo, &hi));
	assert_int_equal(lo, 2);
	assert_int_equal(hi, 5);
	/* A Replicate out of order left the watermark behind; the round
	 * confirms the primary's version. */
	memcpy(then, c.present, sizeof(then));
	assert_true(fc_ae_confirm(&c, then, V(7), 500));
	assert_int_equal(c.watermark, V(7));
	assert_int_equal(c.confirmed_ms, 500);
	assert_int_equal(fc_lag_versions(&c), 0);
	/* Propagation moved past v meanwhile: kept, not lowered. */
	assert_true(fc_propagated(&c, V(7), V(9), NULL, 0, 600));
	assert_true(fc_ae_confirm(&c, then, V(8), 550));
	assert_int_equal(c.watermark, V(9));
	/* A block pulled since the comparison (maybe older than v): no
	 * confirmation, the round is retried. */
	fc_pulled(&c, 7, 1, V(8), 700);
	assert_int_equal(c.watermark, V(8));
	assert_false(fc_ae_confirm(&c, then, V(10), 800));
	assert_int_equal(c.watermark, V(8));
	assert_int_equal(c.confirmed_ms, 700);
}

/* --cache-bytes and --shadow-check-ms (stored/options.c). */
static int parse_opts(struct stored_config *cfg, char *errmsg, char *a, char *b)
{
	char *argv[] = {"ombra-stored",
			"--name",
			"n1",
			"--region",
			"r1",
			"--listen",
			"127.0.0.1:7000",
			"--metad",
			"127.0.0.1:9000",
			"--data-dir",
			"/tmp/x",
			a,
			b,
			NULL};
	int argc = a != NULL ? 13 : 11;

	return stored_config_parse(cfg, argc, argv, errmsg);
}

static void test_options(void **state)
{
	struct stored_config cfg;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	assert_int_equal(parse_opts(&cfg, errmsg, NULL, NULL), 0);
	assert_int_equal(cfg.cache_bytes, UINT64_C(256) << 20);
	assert_int_equal(cfg.shadow_check_ms, 5000);
	stored_config_free(&cfg);
	assert_int_equal(parse_opts(&cfg, errmsg, "--cache-bytes", "512MiB"),
			 0);
	assert_int_equal(cfg.cache_bytes, UINT64_C(512) << 20);
	stored_config_free(&cfg);
	assert_int_equal(parse_opts(&cfg, errmsg, "--shadow-check-ms", "250"),
			 0);
	assert_int_equal(cfg.shadow_check_ms, 250);
	stored_config_free(&cfg);
	assert_int_equal(parse_opts(&cfg, errmsg, "--cache-bytes", "lots"),
			 OMBRA_ECONFIG);
	assert_non_null(strstr(errmsg, "--cache-bytes"));
	stored_config_free(&cfg);
	assert_int_equal(parse_opts(&cfg, errmsg, "--shadow-check-ms", "50"),
			 OMBRA_ECONFIG);
	assert_non_null(strstr(errmsg, "--shadow-check-ms"));
	stored_config_free(&cfg);
	assert_int_equal(parse_opts(&cfg, errmsg, "--shadow-check-ms", "-1"),
			 OMBRA_ECONFIG);
	stored_config_free(&cfg);
}

static void test_lru_prev_version(void **state)
{
	struct wl_lru *l = wl_lru_create(2);
	uint64_t prev = 99;

	(void)state;
	assert_non_null(l);
	wl_lru_put_chain(l, "a", V(5), V(4));
	wl_lru_put(l, "b", V(6));
	assert_int_equal(wl_lru_get_chain(l, "a", &prev), V(5));
	assert_int_equal(prev, V(4));
	assert_int_equal(wl_lru_get_chain(l, "b", &prev), V(6));
	assert_int_equal(prev, 0);
	assert_int_equal(wl_lru_get_chain(l, "zz", &prev), 0);
	assert_int_equal(prev, 0);
	wl_lru_destroy(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pull_empty_then_partial),
	    cmocka_unit_test(test_propagation_chain),
	    cmocka_unit_test(test_propagation_runs),
	    cmocka_unit_test(test_new_epoch_lag),
	    cmocka_unit_test(test_never_written_lag),
	    cmocka_unit_test(test_drop),
	    cmocka_unit_test(test_check_read),
	    cmocka_unit_test(test_fill_runs),
	    cmocka_unit_test(test_anti_entropy),
	    cmocka_unit_test(test_options),
	    cmocka_unit_test(test_lru_prev_version),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
