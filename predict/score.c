/* score.c: per-predictor precision/coverage scoreboard (score.h).  No
 * failure modes: fixed-size state, overflowing predictions replace older
 * ones. */
#include "predict/score.h"

#include "predict/settab.h"

#define SCORE_COVER_ALPHA (1.0 / 64)
#define SCORE_SPAN_ALPHA (1.0 / 16)
#define SCORE_LOOKUP_MAX 64 /* blocks of one access looked up */

static int after(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

static struct score_slot *slot_of(struct score_track *t, uint64_t block)
{
	return &t->slot[settab_hash(block, 0) & (SCORE_SLOTS - 1)];
}

static void range_mark(struct score_track *t, struct score_range *r, uint64_t b,
		       uint32_t n)
{
	uint64_t lo = (b > r->first ? b : r->first) - r->first;
	uint64_t end = b + n < r->first + r->n ? b + n : r->first + r->n;
	uint64_t hi = end - r->first;
	uint32_t used;
	uint64_t u;

	for (uint64_t c = lo / r->chunk; c <= (hi - 1) / r->chunk; c++)
		r->mask |= 1ULL << c;
	u = (uint64_t)__builtin_popcountll(r->mask) * r->chunk;
	used = u < r->n ? (uint32_t)u : r->n;
	if (used > r->used) {
		t->useful += used - r->used;
		r->used = used;
	}
}

void score_observe(struct score_track *t, uint32_t clock, uint64_t b,
		   uint32_t n, double decay)
{
	uint32_t look = n < SCORE_LOOKUP_MAX ? n : SCORE_LOOKUP_MAX;
	int covered = 0;

	t->useful *= decay;
	t->issued *= decay;
	for (uint32_t i = 0; i < look; i++) {
		struct score_slot *s = slot_of(t, b + i);

		if (s->state != 1 || s->block != b + i ||
		    after(clock, s->expire))
			continue;
		s->state = 2;
		t->useful += 1;
		if (i == 0)
			covered = 1;
	}
	for (uint32_t i = 0; i < t->n_ranges;) {
		struct score_range *r = &t->range[i];

		if (after(clock, r->expire)) {
			*r = t->range[--t->n_ranges];
			continue;
		}
		i++;
		if (b + n <= r->first || b >= r->first + r->n)
			continue;
		if (b >= r->first)
			covered = 1;
		range_mark(t, r, b, n);
	}
	t->coverage = t->coverage * (1 - SCORE_COVER_ALPHA) +
		      (covered ? SCORE_COVER_ALPHA : 0);
}

static int record_range(struct score_track *t, uint32_t expire,
			const struct predict_candidate *c)
{
	uint32_t oldest = 0;

	for (uint32_t i = 0; i < t->n_ranges; i++) {
		const struct score_range *r = &t->range[i];

		if (r->first == c->first_block && r->n == c->n_blocks)
			return 0;
		if (after(t->range[oldest].expire, r->expire))
			oldest = i;
	}
	if (t->n_ranges == SCORE_RANGES)
		t->range[oldest] = t->range[--t->n_ranges];
	t->range[t->n_ranges++] = (struct score_range){
	    .first = c->first_block,
	    .n = c->n_blocks,
	    .chunk = (uint32_t)(((uint64_t)c->n_blocks + 63) / 64),
	    .expire = expire,
	};
	t->issued += c->n_blocks;
	return 1;
}

static int record(struct score_track *t, uint32_t clock, uint32_t horizon,
		  const struct predict_candidate *c)
{
	uint32_t span = c->n_blocks < 256 ? c->n_blocks : 256;
	uint32_t expire = clock + horizon + c->horizon + span;
	int fresh = 0;

	if (c->n_blocks > SCORE_SMALL)
		return record_range(t, expire, c);
	for (uint32_t i = 0; i < c->n_blocks; i++) {
		uint64_t blk = c->first_block + i;
		struct score_slot *s = slot_of(t, blk);

		if (s->block == blk && s->state != 0 &&
		    !after(clock, s->expire))
			continue; /* pending (or used) already */
		*s = (struct score_slot){
		    .block = blk, .expire = expire, .state = 1};
		t->issued += 1;
		fresh = 1;
	}
	return fresh;
}

int score_record(struct score_track *t, uint32_t clock, uint32_t horizon,
		 const struct predict_candidate *c)
{
	int fresh = record(t, clock, horizon, c);

	if (fresh)
		t->span = t->span * (1 - SCORE_SPAN_ALPHA) +
			  SCORE_SPAN_ALPHA * c->n_blocks;
	return fresh;
}

double score_precision(const struct score_track *t)
{
	/* useful can briefly exceed issued: a range counts as issued at
	 * once and then decays while its blocks are used. */
	if (t->issued <= 0)
		return 0;
	return t->useful < t->issued ? t->useful / t->issued : 1;
}
