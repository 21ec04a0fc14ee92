/* test_predict_eval.c: scoring helper for the predictor tests
 * (test_predict_eval.h).  Fails the running cmocka test when out of
 * memory or when a predictor breaks the interface (more candidates than
 * the cap, n_blocks 0, probability outside 0..1). */
#include "tests/unit/test_predict_eval.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"

#define EVAL_CAP 64

uint64_t eval_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

struct predict_access eval_acc(uint64_t vol, uint64_t b, uint32_t n_blocks,
			       uint64_t t)
{
	return (struct predict_access){
	    .volume_id = vol,
	    .offset = b * EVAL_BS,
	    .length = (uint64_t)n_blocks * EVAL_BS,
	    .op = PREDICT_READ,
	    .time_us = t,
	};
}

struct predictor *eval_create(const char *name, size_t mem)
{
	struct predict_config cfg = {
	    .block_size = EVAL_BS,
	    .max_candidates = 16,
	    .memory_bytes = mem,
	};
	char errmsg[OMBRA_ERRMSG_LEN] = "";
	struct predictor *p = predictor_create(name, &cfg, NULL, errmsg);

	if (p == NULL)
		fail_msg("predictor_create(%s): %s", name, errmsg);
	return p;
}

static int in_range(const struct predict_candidate *c, uint64_t vol, uint64_t b)
{
	return c->volume_id == vol && b >= c->first_block &&
	       b - c->first_block < c->n_blocks;
}

/* Blocks of c accessed in acc[i+1 .. i+horizon]. */
static size_t used_blocks(const struct predict_candidate *c,
			  const struct predict_access *acc, size_t n, size_t i,
			  size_t horizon)
{
	size_t len = c->n_blocks, used = 0;
	unsigned char *hit = calloc(len, 1);

	assert_non_null(hit);
	for (size_t j = i + 1; j < n && j <= i + horizon; j++) {
		uint64_t b = acc[j].offset / EVAL_BS;
		uint64_t e = (acc[j].offset + acc[j].length - 1) / EVAL_BS;

		if (acc[j].volume_id != c->volume_id)
			continue;
		for (uint64_t x = b; x <= e; x++)
			if (x >= c->first_block && x - c->first_block < len)
				hit[x - c->first_block] = 1;
	}
	for (size_t k = 0; k < len; k++)
		used += hit[k];
	free(hit);
	return used;
}

void eval_run(struct predictor *p, const struct predict_access *acc, size_t n,
	      size_t from, size_t window, size_t horizon, struct eval_result *r)
{
	struct predict_candidate *ring = calloc(window, sizeof(*ring));
	struct predict_candidate out[EVAL_CAP];
	size_t head = 0, filled = 0;

	assert_non_null(ring);
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		uint64_t b = acc[i].offset / EVAL_BS;
		int covered = 0;
		size_t k;

		for (size_t j = 0; j < filled && !covered; j++)
			covered = in_range(&ring[j], acc[i].volume_id, b);
		k = predictor_access(p, &acc[i], out, EVAL_CAP);
		assert_true(k <= EVAL_CAP);
		for (size_t j = 0; j < k; j++) {
			assert_true(out[j].n_blocks >= 1);
			assert_true(out[j].probability >= 0 &&
				    out[j].probability <= 1);
			ring[head] = out[j];
			head = (head + 1) % window;
			if (filled < window)
				filled++;
		}
		if (i < from)
			continue;
		r->accesses++;
		r->covered += (size_t)covered;
		r->with_cands += k > 0;
		for (size_t j = 0; j < k; j++) {
			r->cand_blocks += out[j].n_blocks;
			r->used_blocks +=
			    used_blocks(&out[j], acc, n, i, horizon);
		}
	}
	free(ring);
	if (r->accesses > 0) {
		r->coverage = (double)r->covered / (double)r->accesses;
		r->cand_rate = (double)r->with_cands / (double)r->accesses;
	}
	if (r->cand_blocks > 0)
		r->precision = (double)r->used_blocks / (double)r->cand_blocks;
}
