/* amp.h: the sequential/stride predictor ("amp") with an adaptive
 * prefetch degree and trigger distance.
 *
 * Sources: AMP, "Adaptive Multi-stream Prefetching in a Shared Cache",
 * B. S. Gill and L. A. D. Bathen, FAST'07 (per-stream degree p and
 * trigger distance g, adapted per stream); Linux mm/readahead.c "ondemand
 * readahead" (a window that starts from the request size and doubles each
 * time the stream reaches its asynchronous marker, up to a maximum).
 *
 * Per volume a bounded table of streams (LRU replacement) recognises:
 *  - sequential streams: an access starting where the stream's previous
 *    one ended (any request size);
 *  - strided streams: a constant delta d (0 < |d| <= max_stride blocks,
 *    either direction) between the first blocks of three consecutive
 *    accesses.
 * A recognised stream predicts `degree` accesses ahead (one merged range
 * for a sequential stream, one candidate per predicted access for a
 * strided one, up to the candidate cap); no more is predicted until the
 * stream has fewer than `trigger` = degree/2 predicted accesses left
 * ahead of it (AMP's trigger distance, Linux's async marker), when the
 * degree doubles up to max_degree and the next window follows the last.
 * The initial degree adapts per volume (AMP's degree adaptation, here
 * without cache feedback): a stream that ends after fewer accesses than
 * its first window halves it (its prefetches were mostly wasted), one
 * that runs past 4 windows doubles it.
 *
 * Probability of a candidate: n/(n+2) for a stream seen n times (capped
 * at 0.95); horizon: accesses ahead of the current one.
 * Memory: a settab of per-volume stream tables within cfg.memory_bytes
 * (default 256 KiB; ~470 bytes per volume with 8 streams); volumes beyond
 * it replace the least recently used one. */
#ifndef OMBRA_PREDICT_AMP_H
#define OMBRA_PREDICT_AMP_H

#include "predict/predict.h"

struct amp_params {
	uint32_t init_degree; /* first window, accesses (default 4) */
	uint32_t max_degree;  /* window cap, accesses (default 64) */
	uint32_t max_stride;  /* largest |delta| taken as a stride, blocks
			       * (default 64) */
};

#define AMP_STREAMS 8 /* streams tracked per volume */

/* Creates an "amp" predictor (cfg copied; params NULL = defaults; zero
 * fields take their default).  NULL + errmsg when out of memory or
 * init_degree > max_degree. */
struct predictor *amp_predictor_create(const struct predict_config *cfg,
				       const struct amp_params *params,
				       char *errmsg);

#endif
