/* test_predict.c: cmocka tests of the predictors in predict/ (obl, amp,
 * mithril; predictor_create's dispatch; the settab container; memory
 * bounds; determinism) on synthetic streams with known answers, scored by
 * test_predict_eval.c.  The bounds are the ones issue 4 states: pure
 * sequential coverage > 95% (obl, amp), strided > 90% (amp), two
 * interleaved streams > 90% (amp), a repeated random sequence > 80% on
 * its second repetition (mithril), pure random: precision < 5%.
 * Fails (cmocka) naming the predictor and the measured figure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "predict/amp.h"
#include "predict/mithril.h"
#include "predict/settab.h"
#include "tests/unit/test_predict_eval.h"

#define N 20000

static struct predict_access *alloc_acc(size_t n)
{
	struct predict_access *a = calloc(n, sizeof(*a));

	assert_non_null(a);
	return a;
}

static void report(const char *what, const char *name,
		   const struct eval_result *r)
{
	printf("# %-28s %-8s coverage %.4f precision %.4f cand_rate %.4f\n",
	       what, name, r->coverage, r->precision, r->cand_rate);
}

static struct eval_result run_h(const char *name,
				const struct predict_access *a, size_t n,
				size_t from, size_t horizon, const char *what)
{
	struct predictor *p = eval_create(name, 0);
	struct eval_result r;

	eval_run(p, a, n, from, EVAL_WINDOW, horizon, &r);
	report(what, name, &r);
	predictor_destroy(p);
	return r;
}

static struct eval_result run(const char *name, const struct predict_access *a,
			      size_t n, size_t from, const char *what)
{
	return run_h(name, a, n, from, EVAL_HORIZON, what);
}

static void test_create(void **state)
{
	const char *names[] = {"none", "obl", "amp", "mithril", "adaptive"};
	struct predict_config cfg = {.block_size = 4096, .max_candidates = 4};
	struct predict_candidate out[4];
	struct predict_access a = eval_acc(1, 10, 1, 0);
	char errmsg[OMBRA_ERRMSG_LEN];
	struct predictor *p;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		p = predictor_create(names[i], &cfg, NULL, errmsg);
		assert_non_null(p);
		assert_string_equal(predictor_name(p), names[i]);
		printf("# %s: %zu bytes\n", names[i], predictor_memory(p));
		assert_true(predictor_memory(p) > 0);
		predictor_destroy(p);
	}
	p = predictor_create("none", &cfg, NULL, errmsg);
	for (uint64_t b = 0; b < 100; b++) {
		a = eval_acc(1, b, 1, b);
		assert_int_equal(predictor_access(p, &a, out, 4), 0);
	}
	predictor_destroy(p);

	errmsg[0] = '\0';
	assert_null(predictor_create("oracle", &cfg, NULL, errmsg));
	assert_non_null(strstr(errmsg, "unknown predictor 'oracle'"));
	cfg.block_size = 1000;
	assert_null(predictor_create("obl", &cfg, NULL, errmsg));
	assert_non_null(strstr(errmsg, "block_size 1000"));
	cfg.block_size = 512;
	/* lstm: a predictor when its model loads, else a message. */
	errmsg[0] = '\0';
	p = predictor_create("lstm", &cfg, "/nonexistent/model", errmsg);
	assert_null(p);
	assert_true(errmsg[0] != '\0');
}

static void test_obl(void **state)
{
	struct predictor *p = eval_create("obl", 0);
	struct predict_candidate out[4];
	struct predict_access a = eval_acc(7, 100, 3, 0);

	(void)state;
	assert_int_equal(predictor_access(p, &a, out, 4), 1);
	assert_int_equal(out[0].volume_id, 7);
	assert_int_equal(out[0].first_block, 103);
	assert_int_equal(out[0].n_blocks, 1);
	assert_int_equal(predictor_access(p, &a, NULL, 0), 0);
	/* Unaligned: bytes 4095..4096 touch blocks 0 and 1. */
	a.offset = EVAL_BS - 1;
	a.length = 2;
	assert_int_equal(predictor_access(p, &a, out, 4), 1);
	assert_int_equal(out[0].first_block, 2);
	/* A range running past the 64-bit byte space is clipped. */
	a.offset = UINT64_MAX - 10;
	a.length = 100;
	assert_int_equal(predictor_access(p, &a, out, 4), 1);
	assert_int_equal(out[0].first_block, UINT64_MAX / EVAL_BS + 1);
	predictor_destroy(p);
}

static void test_sequential(void **state)
{
	struct predict_access *a = alloc_acc(N);
	const char *names[] = {"obl", "amp"};
	struct eval_result r;

	(void)state;
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1, 5000 + i, 1, i);
	for (size_t k = 0; k < 2; k++) {
		r = run(names[k], a, N, 0, "sequential, 1 block");
		assert_true(r.coverage > 0.95);
		assert_true(r.precision > 0.95);
	}
	/* Requests of 8 blocks: obl only covers the first block of the
	 * next one, amp the whole of it. */
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1, 8 * i, 8, i);
	r = run("amp", a, N, 0, "sequential, 8 blocks");
	assert_true(r.coverage > 0.95);
	assert_true(r.precision > 0.95);
	/* amp's window grows: few accesses carry candidates. */
	assert_true(r.cand_rate < 0.2);
	free(a);
}

static void test_strided(void **state)
{
	struct predict_access *a = alloc_acc(N);
	struct eval_result r;

	(void)state;
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1, 1000 + 5 * i, 2, i);
	r = run("amp", a, N, 0, "stride +5, 2 blocks");
	assert_true(r.coverage > 0.90);
	assert_true(r.precision > 0.90);
	r = run("obl", a, N, 0, "stride +5, 2 blocks");
	assert_true(r.coverage < 0.05);
	/* Backwards. */
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1, 1000000 - 3 * i, 1, i);
	r = run("amp", a, N, 0, "stride -3, 1 block");
	assert_true(r.coverage > 0.90);
	assert_true(r.precision > 0.90);
	free(a);
}

static void test_interleaved(void **state)
{
	struct predict_access *a = alloc_acc(N);
	struct eval_result r;
	uint64_t rng = 42;
	uint64_t pos[4] = {0, 1u << 20, 1u << 21, 1u << 22};

	(void)state;
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1, pos[i % 2]++, 1, i);
	r = run("amp", a, N, 0, "2 interleaved sequential");
	assert_true(r.coverage > 0.90);
	assert_true(r.precision > 0.90);
	/* Four streams in random order, one of them strided, on two
	 * volumes. */
	for (size_t i = 0; i < N; i++) {
		size_t s = eval_rand(&rng) % 4;

		a[i] = eval_acc(s % 2, pos[s], 1, i);
		pos[s] += s == 3 ? 4 : 1;
	}
	/* Each stream gets a quarter of the accesses, so its window takes
	 * four times as long to be read. */
	r = run_h("amp", a, N, 0, 4 * EVAL_HORIZON, "4 random-order streams");
	assert_true(r.coverage > 0.90);
	assert_true(r.precision > 0.90);
	free(a);
}

/* A random sequence of len distinct blocks, played reps times. */
static struct predict_access *repeated(size_t len, size_t reps, uint64_t seed)
{
	struct predict_access *a = alloc_acc(len * reps);
	uint64_t rng = seed;

	for (size_t i = 0; i < len; i++)
		a[i] = eval_acc(3, eval_rand(&rng) % (1ULL << 30), 1, i);
	for (size_t r = 1; r < reps; r++)
		for (size_t i = 0; i < len; i++) {
			a[r * len + i] = a[i];
			a[r * len + i].time_us = r * len + i;
		}
	return a;
}

static void test_repeated(void **state)
{
	const size_t len = 4000;
	struct predict_access *a = repeated(len, 3, 7);
	struct mithril_params prm = {.min_support = 2};
	struct predict_config cfg = {.block_size = EVAL_BS,
				     .max_candidates = 16};
	char errmsg[OMBRA_ERRMSG_LEN];
	struct eval_result r;
	struct predictor *p;

	(void)state;
	/* First repetition: nothing to know yet. */
	r = run("mithril", a, len, 0, "random sequence, 1st");
	assert_true(r.coverage < 0.01);
	r = run("mithril", a, 2 * len, len, "random sequence, 2nd");
	assert_true(r.coverage > 0.80);
	assert_true(r.precision > 0.80);
	r = run("amp", a, 2 * len, len, "random sequence, 2nd");
	assert_true(r.coverage < 0.05);
	/* min_support 2: the pairs seen once are not enough, so only the
	 * third repetition is covered. */
	p = mithril_predictor_create(&cfg, &prm, errmsg);
	assert_non_null(p);
	eval_run(p, a, 2 * len, len, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("random sequence, 2nd, sup 2", "mithril", &r);
	assert_true(r.coverage < 0.01);
	predictor_destroy(p);
	p = mithril_predictor_create(&cfg, &prm, errmsg);
	eval_run(p, a, 3 * len, 2 * len, EVAL_WINDOW, EVAL_HORIZON, &r);
	report("random sequence, 3rd, sup 2", "mithril", &r);
	assert_true(r.coverage > 0.80);
	predictor_destroy(p);
	free(a);
}

static void test_random(void **state)
{
	const char *names[] = {"obl", "amp", "mithril"};
	struct predict_access *a = alloc_acc(N);
	struct eval_result r;
	uint64_t rng = 99;

	(void)state;
	for (size_t i = 0; i < N; i++)
		a[i] = eval_acc(1 + i % 3, eval_rand(&rng) % (1ULL << 28),
				1 + (uint32_t)(eval_rand(&rng) % 4), i);
	for (size_t k = 0; k < 3; k++) {
		r = run(names[k], a, N, 0, "pure random");
		assert_true(r.precision < 0.05);
		assert_true(r.coverage < 0.05);
		if (k > 0) /* obl predicts after every access */
			assert_true(r.cand_rate < 0.05);
	}
	free(a);
}

/* Candidates never exceed cfg.max_candidates nor cap. */
static void test_caps(void **state)
{
	struct predict_config cfg = {.block_size = EVAL_BS,
				     .max_candidates = 2};
	struct predict_access *a = repeated(200, 3, 5);
	struct predict_candidate out[16];
	const char *names[] = {"obl", "amp", "mithril", "adaptive"};
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		struct predictor *p =
		    predictor_create(names[k], &cfg, NULL, errmsg);
		size_t most = 0;

		assert_non_null(p);
		for (size_t i = 0; i < 600; i++) {
			size_t c = predictor_access(p, &a[i], out, 16);

			assert_true(c <= 2);
			most = c > most ? c : most;
			assert_int_equal(
			    predictor_access(p, &a[i], out, 1) <= 1, 1);
			assert_int_equal(predictor_access(p, &a[i], NULL, 0),
					 0);
		}
		printf("# caps: %s returned up to %zu\n", names[k], most);
		predictor_destroy(p);
	}
	free(a);
}

/* Many volumes and blocks: the memory a predictor reports never grows
 * and stays within cfg.memory_bytes. */
static void test_memory(void **state)
{
	const char *names[] = {"obl", "amp", "mithril", "adaptive"};
	const size_t budget = 512 * 1024;
	struct predict_candidate out[16];
	uint64_t rng = 3;

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		struct predictor *p = eval_create(names[k], budget);
		size_t before = predictor_memory(p);

		for (size_t i = 0; i < 200000; i++) {
			uint64_t vol = eval_rand(&rng) % 5000;
			uint64_t b = eval_rand(&rng) % 100000;
			struct predict_access a = eval_acc(vol, b, 1, i);

			predictor_access(p, &a, out, 16);
			a = eval_acc(vol, b + 1, 1, i);
			predictor_access(p, &a, out, 16);
		}
		printf("# memory: %s %zu bytes (budget %zu)\n", names[k],
		       predictor_memory(p), budget);
		assert_int_equal(predictor_memory(p), before);
		assert_true(predictor_memory(p) <= budget);
		predictor_destroy(p);
	}
}

/* The same input gives the same candidates, byte for byte (DET_N
 * accesses: adaptive runs the LSTM too, slow under the sanitizers). */
#define DET_N 4000

static void test_determinism(void **state)
{
	const char *names[] = {"obl", "amp", "mithril", "adaptive"};
	struct predict_access *a = alloc_acc(DET_N);
	struct predict_candidate o1[16], o2[16];
	uint64_t rng = 11, pos = 0;

	(void)state;
	for (size_t i = 0; i < DET_N; i++) {
		uint64_t r = eval_rand(&rng);

		pos = r % 3 == 0 ? r % 100000 : pos + 1;
		a[i] = eval_acc(r % 2, pos, 1 + (uint32_t)(r >> 60), i);
	}
	for (size_t k = 0; k < 4; k++) {
		struct predictor *p1 = eval_create(names[k], 0);
		struct predictor *p2 = eval_create(names[k], 0);
		size_t total = 0;

		for (size_t i = 0; i < DET_N; i++) {
			size_t n1 = predictor_access(p1, &a[i], o1, 16);
			size_t n2 = predictor_access(p2, &a[i], o2, 16);

			assert_int_equal(n1, n2);
			for (size_t j = 0; j < n1; j++) {
				assert_int_equal(o1[j].first_block,
						 o2[j].first_block);
				assert_int_equal(o1[j].n_blocks,
						 o2[j].n_blocks);
				assert_true(o1[j].probability ==
					    o2[j].probability);
				assert_int_equal(o1[j].horizon, o2[j].horizon);
			}
			total += n1;
		}
		assert_true(total > 0);
		predictor_destroy(p1);
		predictor_destroy(p2);
	}
	free(a);
}

/* Extreme offsets and lengths (UBSan checks the arithmetic). */
static void test_extremes(void **state)
{
	const char *names[] = {"obl", "amp", "mithril", "adaptive"};
	const uint64_t offs[] = {
	    0,	       1, UINT64_MAX - 4095, UINT64_MAX, (uint64_t)INT64_MAX,
	    1ULL << 62};
	const uint64_t lens[] = {1, 4096, UINT64_MAX, 1ULL << 40};
	struct predict_candidate out[16];

	(void)state;
	for (size_t k = 0; k < 4; k++) {
		struct predictor *p = eval_create(names[k], 0);

		for (size_t r = 0; r < 3; r++)
			for (size_t i = 0; i < 6; i++)
				for (size_t j = 0; j < 4; j++) {
					struct predict_access a = {
					    .volume_id = j,
					    .offset = offs[i],
					    .length = lens[j],
					};
					size_t n =
					    predictor_access(p, &a, out, 16);

					for (size_t c = 0; c < n; c++)
						assert_true(out[c].n_blocks >=
							    1);
				}
		/* Sequential accesses of UINT32_MAX blocks each: windows
		 * of clipped length. */
		for (uint64_t i = 0; i < 12; i++) {
			struct predict_access a = eval_acc(9, 0, 1, i);

			a.offset = i * (uint64_t)UINT32_MAX * EVAL_BS;
			a.length = (uint64_t)UINT32_MAX * EVAL_BS;
			predictor_access(p, &a, out, 16);
		}
		predictor_destroy(p);
	}
}

static void test_settab(void **state)
{
	struct settab *t = settab_create(sizeof(uint64_t), 4, 4096);
	size_t cap, present = 0;
	uint64_t *v;
	int fresh;

	(void)state;
	assert_non_null(t);
	cap = settab_capacity(t);
	assert_true(cap >= 4 && settab_memory(t) <= 4096);
	for (uint64_t k = 0; k < 10 * cap; k++) {
		v = settab_get(t, 1, k, &fresh);
		assert_int_equal(fresh, 1);
		assert_int_equal(*v, 0);
		*v = k + 1;
	}
	for (uint64_t k = 0; k < 10 * cap; k++) {
		v = settab_peek(t, 1, k);
		if (v != NULL) {
			assert_int_equal(*v, k + 1);
			present++;
		}
	}
	assert_true(present <= cap);
	/* The last inserted key is always there (LRU replacement). */
	assert_non_null(settab_find(t, 1, 10 * cap - 1));
	v = settab_get(t, 1, 10 * cap - 1, &fresh);
	assert_int_equal(fresh, 0);
	assert_int_equal(*v, 10 * cap);
	settab_destroy(t);

	/* One set of 2 ways: a used record outlives an unused one. */
	t = settab_create(8, 2, 1);
	assert_int_equal(settab_capacity(t), 2);
	*(uint64_t *)settab_get(t, 0, 1, &fresh) = 1;
	*(uint64_t *)settab_get(t, 0, 2, &fresh) = 2;
	assert_non_null(settab_find(t, 0, 1));
	settab_get(t, 0, 3, &fresh);
	assert_non_null(settab_peek(t, 0, 1));
	assert_null(settab_peek(t, 0, 2));
	settab_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create),
	    cmocka_unit_test(test_obl),
	    cmocka_unit_test(test_sequential),
	    cmocka_unit_test(test_strided),
	    cmocka_unit_test(test_interleaved),
	    cmocka_unit_test(test_repeated),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_memory),
	    cmocka_unit_test(test_determinism),
	    cmocka_unit_test(test_extremes),
	    cmocka_unit_test(test_settab),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
