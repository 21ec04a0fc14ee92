/* test_lstm_predict.c: the LSTM predictor (lstm.h) with the shipped model
 * on synthetic streams with known answers.
 *
 * - Pure sequential 64 KiB reads: after a short warm-up the most probable
 *   candidate is exactly the next request (coverage above 95%), in 4 KiB
 *   and in 512-byte blocks.
 * - Two volumes read sequentially, interleaved: each keeps its own history,
 *   so both are still predicted.
 * - Pure random 4 KiB reads over 32 GiB: almost no candidate is confident
 *   (probability >= 0.5 on under 5% of accesses) and the rare ones miss.
 * - The memo changes nothing: a predictor with a tiny memory budget and one
 *   with a large one give identical candidates on a mixed stream; thousands
 *   of volumes in a tiny budget stay within bounds (ASan).
 * Fails (cmocka) with the measured numbers; needs $OMBRA_SRCDIR. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "predict/lstm.h"

#define KIB 1024ULL
#define CAP 8

static struct predictor *make(uint32_t bs, size_t mem)
{
	struct predict_config cfg = {
	    .block_size = bs, .max_candidates = CAP, .memory_bytes = mem};
	char err[OMBRA_ERRMSG_LEN];
	struct predictor *p = lstm_predictor_create(&cfg, NULL, err);

	if (p == NULL)
		fail_msg("%s", err);
	return p;
}

/* xorshift64: a fixed pseudo-random stream. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static bool covers(const struct predict_candidate *c, uint64_t vol,
		   uint64_t first, uint32_t n)
{
	return c->volume_id == vol && c->first_block == first &&
	       c->n_blocks == n;
}

static void sequential(uint32_t bs)
{
	struct predictor *p = make(bs, 0);
	struct predict_candidate out[CAP];
	const uint64_t len = 64 * KIB, total = 2000;
	uint64_t hits = 0;

	for (uint64_t i = 0; i < total; i++) {
		struct predict_access a = {.volume_id = 7,
					   .offset = (1000 + i) * len,
					   .length = len,
					   .op = PREDICT_READ};
		size_t n = predictor_access(p, &a, out, CAP);

		assert_true(n <= CAP);
		for (size_t k = 1; k < n; k++)
			assert_true(out[k - 1].probability >=
				    out[k].probability);
		if (i >= 10 && n > 0 &&
		    covers(&out[0], 7, (1000 + i + 1) * len / bs,
			   (uint32_t)(len / bs)) &&
		    out[0].probability > 0.5f && out[0].horizon == 1)
			hits++;
	}
	printf("sequential bs %u: top candidate right on %llu of %llu\n", bs,
	       (unsigned long long)hits, (unsigned long long)(total - 10));
	assert_true(hits > 0.95 * (total - 10));
	predictor_destroy(p);
}

static void test_sequential_4k(void **state)
{
	(void)state;
	sequential(4096);
}

static void test_sequential_512(void **state)
{
	(void)state;
	sequential(512);
}

static void test_two_volumes(void **state)
{
	struct predictor *p = make(4096, 0);
	struct predict_candidate out[CAP];
	uint64_t hits[2] = {0, 0};
	(void)state;

	for (uint64_t i = 0; i < 1000; i++) {
		for (uint64_t v = 0; v < 2; v++) {
			uint64_t base = v ? 1ULL << 30 : 0;
			struct predict_access a = {.volume_id = v,
						   .offset = base + i * 8 * KIB,
						   .length = 8 * KIB,
						   .op = PREDICT_READ};
			size_t n = predictor_access(p, &a, out, CAP);

			if (n > 0 &&
			    covers(&out[0], v,
				   (base + (i + 1) * 8 * KIB) / 4096, 2))
				hits[v]++;
		}
	}
	printf("two volumes: %llu and %llu of 1000\n",
	       (unsigned long long)hits[0], (unsigned long long)hits[1]);
	assert_true(hits[0] > 950 && hits[1] > 950);
	predictor_destroy(p);
}

static void test_random(void **state)
{
	struct predictor *p = make(4096, 0);
	struct predict_candidate out[CAP];
	uint64_t seed = 0x9e3779b97f4a7c15ULL, confident = 0, right = 0;
	uint64_t next = rnd(&seed) % (8ULL << 20);
	const uint64_t total = 5000;
	(void)state;

	for (uint64_t i = 0; i < total; i++) {
		uint64_t blk = next;
		struct predict_access a = {.volume_id = 1,
					   .offset = blk * 4096,
					   .length = 4096,
					   .op = PREDICT_READ};
		size_t n = predictor_access(p, &a, out, CAP);

		next = rnd(&seed) % (8ULL << 20);
		for (size_t k = 0; k < n; k++) {
			if (out[k].probability >= 0.5f)
				confident++;
			if (out[k].first_block == next)
				right++;
		}
	}
	printf("random: %llu confident candidates, %llu right, of %llu\n",
	       (unsigned long long)confident, (unsigned long long)right,
	       (unsigned long long)total);
	assert_true(confident < total / 20);
	assert_true(right < total / 100);
	predictor_destroy(p);
}

static void test_memo_and_bounds(void **state)
{
	struct predictor *tiny = make(4096, 1);
	struct predict_candidate a_out[CAP], b_out[CAP];
	uint64_t seed = 42;
	(void)state;

	/* 3000 volumes in a one-slot table: each is forgotten and restarted,
	 * candidates stay well formed. */
	for (uint64_t i = 0; i < 20000; i++) {
		uint64_t r = rnd(&seed), vol = r % 3000;
		struct predict_access a = {.volume_id = vol,
					   .offset = (i / 3000) * 16 * KIB,
					   .length = 4 * KIB * (1 + r % 4),
					   .op = (r >> 40) & 1 ? PREDICT_WRITE
							       : PREDICT_READ};
		size_t n = predictor_access(tiny, &a, a_out, CAP);

		assert_true(n <= CAP);
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(a_out[k].volume_id, vol);
			assert_true(a_out[k].n_blocks >= 1);
		}
	}
	predictor_destroy(tiny);

	/* Same predictions with and without a useful memo, one volume. */
	struct predictor *p1 = make(4096, 4 << 20);
	struct predictor *p2 = make(4096, 1);
	seed = 7;
	for (uint64_t i = 0; i < 5000; i++) {
		uint64_t r = rnd(&seed);
		uint64_t off =
		    r % 3 == 0 ? (r >> 16) % (1ULL << 32) : i * 8 * KIB;
		struct predict_access a = {.volume_id = 5,
					   .offset = off,
					   .length =
					       4 * KIB * (1 + (r >> 8) % 3),
					   .op = PREDICT_READ};
		size_t n1 = predictor_access(p1, &a, a_out, CAP);
		size_t n2 = predictor_access(p2, &a, b_out, CAP);

		assert_int_equal(n1, n2);
		for (size_t k = 0; k < n1; k++) {
			assert_int_equal(a_out[k].first_block,
					 b_out[k].first_block);
			assert_int_equal(a_out[k].n_blocks, b_out[k].n_blocks);
			assert_true(a_out[k].probability ==
				    b_out[k].probability);
		}
	}
	/* Observe only: out NULL, cap 0. */
	struct predict_access a = {.volume_id = 5, .offset = 0, .length = 1};
	assert_int_equal(predictor_access(p1, &a, NULL, 0), 0);
	predictor_destroy(p1);
	predictor_destroy(p2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sequential_4k),
	    cmocka_unit_test(test_sequential_512),
	    cmocka_unit_test(test_two_volumes),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test(test_memo_and_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
