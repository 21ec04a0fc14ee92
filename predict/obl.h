/* obl.h: the one-block-lookahead predictor ("obl"), the classic
 * sequential baseline: after each access, predict the block right after
 * it (A. J. Smith, "Sequential program prefetching in memory
 * hierarchies", IEEE Computer 11(12), 1978; "prefetch on miss/always").
 * Stateless, so it needs no memory beyond its struct. */
#ifndef OMBRA_PREDICT_OBL_H
#define OMBRA_PREDICT_OBL_H

#include "predict/predict.h"

/* Creates an "obl" predictor (cfg copied).  Each access yields one
 * candidate: the block after its last block, probability 0.5 (no
 * evidence either way), horizon 1.  NULL + errmsg when out of memory. */
struct predictor *obl_predictor_create(const struct predict_config *cfg,
				       char *errmsg);

#endif
