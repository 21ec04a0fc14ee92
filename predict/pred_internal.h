/* pred_internal.h: small helpers shared by the predictors in predict/
 * (not part of the public interface in predict.h).  Pure functions; no
 * failure modes. */
#ifndef OMBRA_PREDICT_INTERNAL_H
#define OMBRA_PREDICT_INTERNAL_H

#include "predict/predict.h"

/* Blocks of an access: *first = offset / block_size, *n = blocks touched
 * (>= 1; ranges longer than UINT32_MAX blocks or past the end of the
 * 64-bit byte space are clipped). */
static inline void pred_blocks(const struct predict_config *cfg,
			       const struct predict_access *a, uint64_t *first,
			       uint32_t *n)
{
	uint64_t bs = cfg->block_size;
	uint64_t len = a->length > 0 ? a->length : 1;
	uint64_t end = a->offset + len - 1;
	uint64_t last = (end >= a->offset ? end : UINT64_MAX) / bs;
	uint64_t cnt;

	*first = a->offset / bs;
	cnt = last - *first + 1;
	*n = cnt > UINT32_MAX ? UINT32_MAX : (uint32_t)cnt;
}

/* How many candidates access() may write: min(cap, cfg.max_candidates),
 * with max_candidates 0 meaning no cap beyond cap. */
static inline size_t pred_cap(const struct predictor *p, size_t cap,
			      const struct predict_candidate *out)
{
	if (out == NULL)
		return 0;
	if (p->cfg.max_candidates != 0 && p->cfg.max_candidates < cap)
		return p->cfg.max_candidates;
	return cap;
}

/* The "none" predictor (predict.c); NULL + errmsg when out of memory. */
struct predictor *predictor_none_create(const struct predict_config *cfg,
					char *errmsg);

/* The "lstm" predictor (lstm.h), so that adaptive.c need not know
 * where it lives; NULL + errmsg as lstm_predictor_create(). */
struct predictor *predictor_lstm_create(const struct predict_config *cfg,
					const char *model_path, char *errmsg);

#endif
