/* test_predict_eval.h: the predictor tests' evaluation helper and
 * synthetic access streams.  An independent oracle: it knows nothing of
 * how the predictors work, it only replays accesses and scores what comes
 * back.  Aborts (cmocka fail) on allocation failure. */
#ifndef OMBRA_TEST_PREDICT_EVAL_H
#define OMBRA_TEST_PREDICT_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "predict/predict.h"

#define EVAL_BS 4096 /* block size of every synthetic stream */
/* The tests' scoring: an access counts as covered when one of the last
 * EVAL_WINDOW candidates (a small prefetch cache) holds it; a predicted
 * block is used when read within EVAL_HORIZON accesses. */
#define EVAL_WINDOW 256
#define EVAL_HORIZON 256

struct eval_result {
	size_t accesses;    /* measured (index >= from) */
	size_t covered;	    /* first block within the last `window`
			     * candidates returned before it */
	size_t with_cands;  /* measured accesses that returned >= 1 */
	size_t cand_blocks; /* blocks predicted at measured accesses */
	size_t used_blocks; /* of those, accessed within `horizon` after */
	double coverage;    /* covered / accesses */
	double precision;   /* used_blocks / cand_blocks (0 if none) */
	double cand_rate;   /* with_cands / accesses */
};

/* Replays acc[0..n) through p (max 64 candidates per access) and scores
 * accesses and candidates from index `from` on: an access is covered if
 * its first block lies in one of the last `window` candidates; a
 * predicted block is used if accessed within the next `horizon`
 * accesses. */
void eval_run(struct predictor *p, const struct predict_access *acc, size_t n,
	      size_t from, size_t window, size_t horizon,
	      struct eval_result *r);

/* Deterministic PRNG (xorshift64*). */
uint64_t eval_rand(uint64_t *state);

/* An access of n_blocks EVAL_BS blocks at block b of volume vol; time is
 * the index (µs). */
struct predict_access eval_acc(uint64_t vol, uint64_t b, uint32_t n_blocks,
			       uint64_t t);

/* Creates predictor name with block size EVAL_BS and max_candidates 16 and
 * memory_bytes mem (0 = default); fails the test on NULL. */
struct predictor *eval_create(const char *name, size_t mem);

#endif
