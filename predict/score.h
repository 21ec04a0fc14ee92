/* score.h: a scoreboard of one predictor's recent predictions on one
 * volume, measuring its precision and coverage online (used by the
 * adaptive selector, adaptive.h).
 *
 * A prediction is pending from the access that made it until `horizon`
 * accesses (plus the candidate's own horizon and length) have passed.
 *  - precision: predicted blocks that were accessed while pending, over
 *    predicted blocks; both sums decay by `decay` per access (an
 *    exponentially weighted ratio, time constant 1/(1-decay) accesses).
 *    A block or range still pending is not predicted twice.
 *  - coverage: exponentially weighted (1/64 per access) fraction of
 *    accesses whose first block was pending.
 * Small predictions (<= SCORE_SMALL blocks) live in a direct-mapped table
 * of SCORE_SLOTS blocks (a colliding newer prediction replaces an older
 * one, which then simply never counts as used); larger ones in a list of
 * SCORE_RANGES ranges, tracked in 64 chunks each (the oldest pending
 * range is dropped when the list is full).  Fixed size, no allocation,
 * no failure modes. */
#ifndef OMBRA_PREDICT_SCORE_H
#define OMBRA_PREDICT_SCORE_H

#include <stdint.h>

#include "predict/predict.h"

#define SCORE_SLOTS 512 /* power of two */
#define SCORE_RANGES 32
#define SCORE_SMALL 4

struct score_slot {
	uint64_t block;
	uint32_t expire; /* clock after which it is no longer pending */
	uint32_t state;	 /* 0 empty, 1 pending, 2 used */
};

struct score_range {
	uint64_t first;
	uint64_t mask; /* chunks accessed */
	uint32_t n;    /* blocks */
	uint32_t chunk;
	uint32_t expire;
	uint32_t used; /* blocks counted useful so far */
};

struct score_track {
	struct score_slot slot[SCORE_SLOTS];
	struct score_range range[SCORE_RANGES];
	uint32_t n_ranges;
	uint32_t pad;
	double useful;	 /* decayed blocks predicted and accessed */
	double issued;	 /* decayed blocks predicted */
	double coverage; /* 0..1 */
	double span;	 /* weighted mean blocks per new prediction */
};

/* The access [b, b+n) at volume clock `clock` (one more than the last):
 * decays the sums, counts pending blocks it uses (at most 64 blocks of a
 * long access are looked up in the table), updates coverage. */
void score_observe(struct score_track *t, uint32_t clock, uint64_t b,
		   uint32_t n, double decay);

/* Records candidate c made at `clock`; returns 1 when it predicted
 * anything not already pending (a new prediction), else 0. */
int score_record(struct score_track *t, uint32_t clock, uint32_t horizon,
		 const struct predict_candidate *c);

/* useful / issued, 0 before any prediction. */
double score_precision(const struct score_track *t);

#endif
