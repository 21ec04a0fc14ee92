/* pfpolicy.h: the prefetch issue policy of issue 4 part 2, between a
 * predictor's candidates and the cache: a probability threshold adapted
 * by a control loop, an adaptive window and a budget in bytes/s and in
 * cache bytes.  Used by the trace simulator (ombra-sim --control); meant
 * for the proxy's prefetch engine.  Pure state machine: time comes in
 * the calls, no allocation, no failure modes.
 *
 * Control loop, once per cfg.period accesses (a proportional step
 * controller, as Linux readahead and SARC adjust prefetch by measured
 * utility; the rule):
 *   - hit ratio of the period below cfg.target_hit and load below half
 *     the budget: threshold -= cfg.step (prefetch more);
 *   - prefetched-but-unused bytes at or above 90% of cfg.cache_bytes, or
 *     load above 90% of the budget: threshold += cfg.step (less);
 *   clamped to [cfg.min_threshold, cfg.max_threshold].  Load = bytes
 *   issued in the period / (budget_bps x the period's duration).
 * Window: blocks per candidate at most window_min + s x (window_max -
 * window_min), s the sequentiality of the stream, an exponentially
 * weighted (1/16) fraction of accesses that start where the previous one
 * ended (long for sequential streams, short for random ones).
 * Budget: a token bucket of budget_bps bytes/s (burst: one second's
 * worth) and unused prefetched bytes below cache_bytes; 0 = unlimited. */
#ifndef OMBRA_PREDICT_PFPOLICY_H
#define OMBRA_PREDICT_PFPOLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "predict/predict.h"

struct pfpolicy_config {
	double threshold;     /* initial (default 0.1) */
	double min_threshold; /* default 0.05 */
	double max_threshold; /* default 0.95 */
	double step;	      /* default 0.05 */
	double target_hit;    /* default 0.5 */
	uint32_t period;      /* accesses per control step (default 1024) */
	uint32_t window_min;  /* blocks (default 1) */
	uint32_t window_max;  /* blocks (default 256) */
	uint32_t block_size;  /* bytes (default 4096) */
	uint64_t budget_bps;  /* prefetch bytes per second; 0 = unlimited */
	uint64_t cache_bytes; /* unused prefetched bytes; 0 = unlimited */
};

struct pfpolicy {
	struct pfpolicy_config cfg;
	double threshold;
	double seq;	     /* sequentiality 0..1 */
	uint64_t next_block; /* where the last access ended */
	uint64_t last_us;    /* time of the last access */
	double tokens;	     /* bytes */
	uint32_t n, hits;    /* accesses and read hits this period */
	uint64_t period_us;  /* start of the period */
	uint64_t issued;     /* bytes issued this period */
	uint64_t steps_up, steps_down;
};

/* Zero fields of cfg take their defaults. */
void pfpolicy_init(struct pfpolicy *pp, const struct pfpolicy_config *cfg);

/* A demand access of the stream: first block, length in blocks, whether
 * it was a read hit, its time (µs); unused_bytes = prefetched blocks
 * resident and not yet read, in bytes.  Runs the control loop at the end
 * of a period. */
void pfpolicy_observe(struct pfpolicy *pp, uint64_t first_block,
		      uint32_t n_blocks, bool hit, uint64_t time_us,
		      uint64_t unused_bytes);

/* Blocks of candidate c to issue now (0 = none): c's probability must
 * reach the threshold, the range is cut to the window, to the tokens
 * left and to cache_bytes - unused_bytes.  Takes the tokens. */
uint32_t pfpolicy_admit(struct pfpolicy *pp, const struct predict_candidate *c,
			uint64_t unused_bytes);

/* Blocks per candidate now. */
uint32_t pfpolicy_window(const struct pfpolicy *pp);

#endif
