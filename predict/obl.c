/* obl.c: one-block lookahead (obl.h; Smith 1978).  Fails only at
 * creation, out of memory. */
#include "predict/obl.h"

#include <stdlib.h>

#include "lib/err.h"
#include "predict/pred_internal.h"

static size_t obl_access(struct predictor *p, const struct predict_access *a,
			 struct predict_candidate *out, size_t cap)
{
	uint64_t first;
	uint32_t n;

	if (pred_cap(p, cap, out) == 0)
		return 0;
	pred_blocks(&p->cfg, a, &first, &n);
	out[0] = (struct predict_candidate){
	    .volume_id = a->volume_id,
	    .first_block = first + n,
	    .n_blocks = 1,
	    .probability = 0.5f,
	    .horizon = 1,
	};
	return 1;
}

static void obl_destroy(struct predictor *p)
{
	free(p);
}

static size_t obl_memory(const struct predictor *p)
{
	return sizeof(*p);
}

static const struct predictor_ops obl_ops = {
    .name = "obl",
    .access = obl_access,
    .destroy = obl_destroy,
    .memory = obl_memory,
};

struct predictor *obl_predictor_create(const struct predict_config *cfg,
				       char *errmsg)
{
	struct predictor *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		ombra_errmsg_printf(errmsg, "obl: out of memory");
		return NULL;
	}
	p->ops = &obl_ops;
	p->cfg = *cfg;
	return p;
}
