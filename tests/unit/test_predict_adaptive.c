/* test_predict_adaptive.c: cmocka tests of the online selector
 * ("adaptive", predict/adaptive.h) on synthetic streams with known
 * answers: it follows the precise predictor of each volume (amp/obl on a
 * sequential scan, mithril on a repeated random sequence), prefetches
 * almost nothing on pure random accesses (< 5% of accesses produce
 * candidates after a warm-up), switches when the workload changes,
 * reports its per-predictor scores, and in a real cache (predict/cache.h)
 * gets within 2 points of the hit ratio of the best single predictor of
 * each phase at >= 50% precision (test_tracks_best).  Fails (cmocka) naming the
 * figure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "predict/adaptive.h"
#include "predict/cache.h"
#include "tests/unit/test_predict_eval.h"

#define N 20000

static void report(const char *what, const struct eval_result *r)
{
	printf("# %-32s coverage %.4f precision %.4f cand_rate %.4f\n", what,
	       r->coverage, r->precision, r->cand_rate);
}

/* The name of the predictor adaptive p selected last on vol ("" = none),
 * after checking the scores are well-formed. */
static const char *selected(struct predictor *p, uint64_t vol)
{
	struct adaptive_score s[ADAPTIVE_MAX_PREDICTORS];
	size_t n = adaptive_scores(p, vol, s, ADAPTIVE_MAX_PREDICTORS);
	const char *name = "";

	assert_true(n >= 4);
	for (size_t i = 0; i < n; i++) {
		printf("#   vol %lu %-8s precision %.3f coverage %.3f "
		       "issued %.1f%s\n",
		       (unsigned long)vol, s[i].name, s[i].precision,
		       s[i].coverage, s[i].issued, s[i].selected ? " *" : "");
		assert_true(s[i].precision >= 0 && s[i].precision <= 1);
		assert_true(s[i].coverage >= 0 && s[i].coverage <= 1);
		if (s[i].selected)
			name = s[i].name;
	}
	return name;
}

/* Gives adaptive p shadow caches of 1,024 blocks (LRU, 25% = 256 blocks
 * for prefetches, as EVAL_WINDOW): small enough that the tests' working
 * sets do not fit, so prefetching is what makes hits.  Returns p. */
static struct predictor *small_cache(struct predictor *p)
{
	struct cache_config cc = {
	    .policy = CACHE_LRU, .capacity = 1024, .prefetch_pct = 25};
	char errmsg[OMBRA_ERRMSG_LEN];

	assert_non_null(p);
	assert_int_equal(adaptive_set_cache(p, &cc, 0, errmsg), 0);
	return p;
}

static struct predictor *create_small(void)
{
	return small_cache(eval_create("adaptive", 0));
}

static struct predict_access *alloc_acc(size_t n)
{
	struct predict_access *a = calloc(n, sizeof(*a));

	assert_non_null(a);
	return a;
}

/* Read hit ratio (%) of accesses acc[from..n) in a real cache of 1,024
 * blocks (LRU, 25% prefetch share, the same as small_cache()) when every
 * candidate of p is prefetched (as ombra-sim replays, threshold 0);
 * *precision gets prefetched blocks used / issued (%). */
static double cache_hits(struct predictor *p, const struct predict_access *acc,
			 size_t n, size_t from, double *precision)
{
	struct cache_config cc = {
	    .policy = CACHE_LRU, .capacity = 1024, .prefetch_pct = 25};
	struct predict_candidate out[16];
	char errmsg[OMBRA_ERRMSG_LEN];
	struct cache *c = cache_create(&cc, errmsg);
	size_t reads = 0, hits = 0;
	struct cache_stats st;

	assert_non_null(c);
	for (size_t i = 0; i < n; i++) {
		uint64_t b = acc[i].offset / EVAL_BS;
		uint64_t k = acc[i].volume_id << 48 ^ b;
		bool hit = cache_access(c, k, false);
		size_t m = predictor_access(p, &acc[i], out, 16);

		if (i >= from) {
			reads++;
			hits += hit;
		}
		for (size_t j = 0; j < m; j++)
			for (uint32_t x = 0; x < out[j].n_blocks; x++)
				cache_prefetch(c, out[j].volume_id << 48 ^
						      (out[j].first_block + x));
	}
	cache_get_stats(c, &st);
	*precision = st.prefetch_issued ? 100.0 * (double)st.prefetch_used /
					      (double)st.prefetch_issued
					: 0;
	cache_destroy(c);
	return 100.0 * (double)hits / (double)reads;
}

/* Sequential, then a random sequence repeated three times: in each phase
 * one predictor is clearly best (amp, then mithril); the selector
 * converges to it and its hit ratio in a real cache of the shadows' size
 * is within 2 points of that predictor alone, with precision >= 50%. */
static void test_tracks_best(void **state)
{
	const size_t seq = 20000, len = 4000, n = seq + 3 * len;
	struct predict_access *a = alloc_acc(n);
	struct predictor *best, *p;
	double hb, ha, pb, pa;
	uint64_t rng = 41;

	(void)state;
	for (size_t i = 0; i < seq; i++)
		a[i] = eval_acc(3, 1000 + i, 1, i);
	for (size_t i = 0; i < len; i++)
		a[seq + i] =
		    eval_acc(3, eval_rand(&rng) % (1ULL << 30), 1, seq + i);
	for (size_t i = seq + len; i < n; i++) {
		a[i] = a[seq + (i - seq) % len];
		a[i].time_us = i;
	}
	/* Phase 1 (after a warm-up of 1,000): amp. */
	best = eval_create("amp", 0);
	p = create_small();
	hb = cache_hits(best, a, seq, 1000, &pb);
	ha = cache_hits(p, a, seq, 1000, &pa);
	printf("# sequential: amp %.2f%% (precision %.1f%%), adaptive %.2f%% "
	       "(%.1f%%)\n",
	       hb, pb, ha, pa);
	assert_true(ha >= hb - 2);
	assert_true(pa >= 50);
	predictor_destroy(best);
	predictor_destroy(p);
	/* Whole stream; measured over passes 2 and 3: mithril. */
	best = eval_create("mithril", 0);
	p = create_small();
	hb = cache_hits(best, a, n, seq + len, &pb);
	ha = cache_hits(p, a, n, seq + len, &pa);
	printf("# repeated random: mithril %.2f%% (precision %.1f%%), "
	       "adaptive %.2f%% (%.1f%%)\n",
	       hb, pb, ha, pa);
	assert_true(hb > 80);
	assert_true(ha >= hb - 2);
	assert_true(pa >= 50);
	assert_string_equal(selected(p, 3), "mithril");
	predictor_destroy(best);
	predictor_destroy(p);
	free(a);
}

static void test_sequential(void **state)
{
	struct predict_access *a = alloc_acc(N);
	struct predictor *p = create_small();
	struct eval_result r;
	const char *sel;

	(void)state;
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1, 300 + i, 1, i);
	/* After a warm-up of 500 accesses (obl has evidence first; amp
	 * takes over once its longer windows have proven as precise). */
	eval_run(p, a, N, 500, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("sequential (after 500)", &r);
	assert_true(r.coverage > 0.95);
	assert_true(r.precision > 0.95);
	sel = selected(p, 1);
	assert_true(strcmp(sel, "amp") == 0 || strcmp(sel, "obl") == 0);
	predictor_destroy(p);
	free(a);
}

static void test_strided(void **state)
{
	struct predict_access *a = alloc_acc(N);
	struct predictor *p = create_small();
	struct eval_result r;

	(void)state;
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1, 7 * i, 2, i);
	eval_run(p, a, N, 0, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("stride +7", &r);
	assert_true(r.coverage > 0.90);
	assert_string_equal(selected(p, 1), "amp");
	predictor_destroy(p);
	free(a);
}

static void test_repeated(void **state)
{
	const size_t len = 4000;
	struct predict_access *a = alloc_acc(3 * len);
	struct predictor *p = create_small();
	struct eval_result r;
	uint64_t rng = 17;

	(void)state;
	for (size_t i = 0; i < len; i++)
		a[i] = eval_acc(2, eval_rand(&rng) % (1ULL << 30), 1, i);
	for (size_t i = len; i < 3 * len; i++) {
		a[i] = a[i % len];
		a[i].time_us = i;
	}
	eval_run(p, a, 3 * len, len, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("repeated random, 2nd+3rd", &r);
	assert_true(r.coverage > 0.80);
	assert_true(r.precision > 0.80);
	assert_string_equal(selected(p, 2), "mithril");
	predictor_destroy(p);
	free(a);
}

static void test_random(void **state)
{
	struct predict_access *a = alloc_acc(N);
	struct predictor *p = create_small();
	struct adaptive_score s[ADAPTIVE_MAX_PREDICTORS];
	struct eval_result r;
	uint64_t rng = 23;
	size_t n;

	(void)state;
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(4, eval_rand(&rng) % (1ULL << 28),
				1 + (uint32_t)(eval_rand(&rng) % 8), i);
	eval_run(p, a, N, 1000, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("pure random (after 1000)", &r);
	assert_true(r.cand_rate < 0.05);
	assert_string_equal(selected(p, 4), "");
	n = adaptive_scores(p, 4, s, ADAPTIVE_MAX_PREDICTORS);
	for (size_t i = 0; i < n; i++)
		assert_true(s[i].precision < 0.1); /* the default gate */
	predictor_destroy(p);
	free(a);
}

/* One predictor object, two volumes with different workloads, their
 * accesses interleaved: each volume gets its own choice. */
static void test_per_volume(void **state)
{
	const size_t len = 3000;
	struct predict_access *a = alloc_acc(6 * len);
	struct predictor *p = create_small();
	struct eval_result r;
	uint64_t rng = 5, seqpos = 0;
	uint64_t *seq = calloc(len, sizeof(*seq));

	(void)state;
	assert_non_null(seq);
	for (size_t i = 0; i < len; i++)
		seq[i] = eval_rand(&rng) % (1ULL << 30);
	for (size_t i = 0; i < 6 * len; i += 2) {
		a[i] = eval_acc(10, seqpos++, 1, i);
		a[i + 1] = eval_acc(20, seq[(i / 2) % len], 1, i + 1);
	}
	eval_run(p, a, 6 * len, 2 * len, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("two volumes, after 1 rep", &r);
	assert_true(r.coverage > 0.80);
	{
		const char *s10 = selected(p, 10);

		assert_true(strcmp(s10, "amp") == 0 || strcmp(s10, "obl") == 0);
	}
	assert_string_equal(selected(p, 20), "mithril");
	predictor_destroy(p);
	free(seq);
	free(a);
}

/* A sequential phase, then random: the selector stops prefetching soon
 * after the switch. */
static void test_phase_change(void **state)
{
	struct predict_access *a = alloc_acc(2 * N);
	struct predictor *p = create_small();
	struct eval_result r;
	uint64_t rng = 31;

	(void)state;
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1, i, 1, i);
	for (size_t i = N; i < 2 * N; i++)
		a[i] = eval_acc(1, eval_rand(&rng) % (1ULL << 28), 1, i);
	eval_run(p, a, 2 * N, N + 2000, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("random after sequential", &r);
	assert_true(r.cand_rate < 0.05);
	predictor_destroy(p);
	free(a);
}

/* The precision gate.  A sequence replayed three times whose odd
 * positions are fresh random blocks on every pass: mithril learns each
 * even block's successors, of which only those at even distance come
 * back, so about half of its predictions are right overall.  The gate is
 * per candidate class (adaptive.h), so with a 0.9 threshold only the
 * classes measured at 0.9 or more are returned: what comes back is at
 * least 90% precise (the oracle's count) and covers at most the even
 * half; with the default threshold the even positions (half the
 * accesses) are covered. */
static void test_threshold(void **state)
{
	const size_t len = 2000;
	struct predict_config cfg = {.block_size = EVAL_BS,
				     .max_candidates = 16};
	struct adaptive_params strict = {.threshold = 0.9};
	struct predict_access *a = alloc_acc(3 * len);
	char errmsg[OMBRA_ERRMSG_LEN];
	struct eval_result r;
	struct predictor *p;
	uint64_t rng = 77;

	(void)state;
	for (size_t i = 0; i < 3 * len; i++) {
		uint64_t b = eval_rand(&rng) % (1ULL << 30);

		a[i] = eval_acc(
		    2, i >= len && i % 2 == 0 ? a[i % len].offset / EVAL_BS : b,
		    1, i);
	}
	p = small_cache(
	    adaptive_predictor_create_params(&cfg, NULL, &strict, errmsg));
	eval_run(p, a, 3 * len, len, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("half repeated, threshold 0.9", &r);
	assert_true(r.cand_rate < 0.01 || r.precision >= 0.9);
	assert_true(r.coverage <= 0.51);
	predictor_destroy(p);
	p = small_cache(
	    adaptive_predictor_create_params(&cfg, NULL, NULL, errmsg));
	eval_run(p, a, 3 * len, len, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("half repeated, default threshold", &r);
	assert_true(r.coverage > 0.45);
	assert_string_equal(selected(p, 2), "mithril");
	predictor_destroy(p);
	free(a);
}

static void test_scores_api(void **state)
{
	struct predictor *obl = eval_create("obl", 0);
	struct predictor *p = create_small();
	struct adaptive_score s[ADAPTIVE_MAX_PREDICTORS];
	struct predict_config cfg = {.block_size = 512};
	struct adaptive_params bad = {.threshold = 2};
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	assert_int_equal(adaptive_scores(obl, 1, s, 5), 0);
	assert_int_equal(adaptive_scores(p, 1, s, 5), 0); /* unseen */
	assert_null(adaptive_predictor_create_params(&cfg, NULL, &bad, errmsg));
	assert_non_null(strstr(errmsg, "threshold"));
	predictor_destroy(obl);
	predictor_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sequential),
	    cmocka_unit_test(test_strided),
	    cmocka_unit_test(test_repeated),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test(test_per_volume),
	    cmocka_unit_test(test_phase_change),
	    cmocka_unit_test(test_threshold),
	    cmocka_unit_test(test_scores_api),
	    cmocka_unit_test(test_tracks_best),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
