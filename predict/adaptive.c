/* adaptive.c: the online selector over all predictors (adaptive.h).
 * Fails only at creation (bad parameters, out of memory: every
 * sub-predictor created so far is destroyed); afterwards a volume whose
 * scores were forgotten starts again from no evidence. */
#include "predict/adaptive.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "predict/amp.h"
#include "predict/mithril.h"
#include "predict/obl.h"
#include "predict/pred_internal.h"
#include "predict/score.h"
#include "predict/settab.h"

#define AD_DEFAULT_CAP 16   /* sub-predictor candidates per access */
#define AD_MIN_EVIDENCE 8.0 /* decayed blocks before a score counts */
#define AD_DEFAULT_SCORES (4 * 1024 * 1024)
#define AD_MARGIN 0.05 /* coverage or precision that makes a difference */

struct ad_vol {
	uint32_t clock;	   /* accesses seen on the volume */
	uint32_t selected; /* index of the predictor used last, or n_pred */
	struct score_track t[ADAPTIVE_MAX_PREDICTORS];
};

struct adaptive {
	struct predictor base;
	struct adaptive_params prm;
	size_t n_pred;
	size_t sub_cap;
	struct predictor *pred[ADAPTIVE_MAX_PREDICTORS];
	struct predict_candidate *buf; /* n_pred * sub_cap */
	unsigned char *fresh;	       /* per buf entry: a new prediction */
	size_t n_out[ADAPTIVE_MAX_PREDICTORS];
	struct settab *vols;
};

/* Whether challenger x unseats incumbent y: coverage higher by over
 * AD_MARGIN; else (coverage within AD_MARGIN) precision higher by over
 * 2 * AD_MARGIN; else predictions over twice as long (amp's windows reach
 * further ahead than obl's next block) at a precision at most
 * AD_MARGIN / 2 lower.  The gap between the conditions is hysteresis: two
 * nearly equal predictors do not trade places (a window counts as issued
 * at once and is used over many accesses, so precision swings), which
 * would lose the predictions each made while the other was used. */
static int ad_better(const struct score_track *x, const struct score_track *y)
{
	double dc = x->coverage - y->coverage;
	double dp = score_precision(x) - score_precision(y);

	if (dc > AD_MARGIN || dc < -AD_MARGIN)
		return dc > 0;
	if (dp > 2 * AD_MARGIN)
		return 1;
	return dp >= -AD_MARGIN / 2 && x->span > 2 * y->span;
}

static int ad_eligible(const struct adaptive *ad, const struct score_track *t)
{
	return t->issued >= AD_MIN_EVIDENCE &&
	       score_precision(t) >= ad->prm.threshold;
}

/* The predictor to use: the last one while still eligible unless another
 * beats it (so a tie does not flip-flop and lose the predictions the
 * incumbent made), else the best eligible one; n_pred = none. */
static size_t ad_choose(const struct adaptive *ad, const struct ad_vol *v)
{
	size_t best = v->selected;

	if (best >= ad->n_pred || !ad_eligible(ad, &v->t[best]))
		best = ad->n_pred;
	for (size_t i = 0; i < ad->n_pred; i++) {
		if (i == best || !ad_eligible(ad, &v->t[i]))
			continue;
		if (best == ad->n_pred || ad_better(&v->t[i], &v->t[best]))
			best = i;
	}
	return best;
}

static size_t ad_access(struct predictor *p, const struct predict_access *a,
			struct predict_candidate *out, size_t cap)
{
	struct adaptive *ad = (struct adaptive *)p;
	struct ad_vol *v;
	size_t best, k;
	uint64_t b;
	uint32_t n;
	int fresh, switched;

	cap = pred_cap(p, cap, out);
	pred_blocks(&p->cfg, a, &b, &n);
	v = settab_get(ad->vols, a->volume_id, 0, &fresh);
	v->clock++;
	for (size_t i = 0; i < ad->n_pred; i++) {
		struct predict_candidate *c = ad->buf + i * ad->sub_cap;

		score_observe(&v->t[i], v->clock, b, n, ad->prm.decay);
		ad->n_out[i] = predictor_access(ad->pred[i], a, c, ad->sub_cap);
		for (size_t j = 0; j < ad->n_out[i]; j++)
			ad->fresh[i * ad->sub_cap + j] =
			    (unsigned char)score_record(&v->t[i], v->clock,
							ad->prm.horizon, &c[j]);
	}
	best = ad_choose(ad, v);
	switched = best != v->selected;
	v->selected = (uint32_t)best;
	if (best == ad->n_pred)
		return 0;
	/* New predictions only; on a switch, all of them (the new choice's
	 * earlier ones were never returned). */
	k = 0;
	for (size_t j = 0; j < ad->n_out[best] && k < cap; j++) {
		if (!switched && !ad->fresh[best * ad->sub_cap + j])
			continue;
		out[k] = ad->buf[best * ad->sub_cap + j];
		out[k].probability = (float)((out[k].probability +
					      score_precision(&v->t[best])) /
					     2);
		k++;
	}
	return k;
}

static void ad_destroy(struct predictor *p)
{
	struct adaptive *ad = (struct adaptive *)p;

	for (size_t i = 0; i < ad->n_pred; i++)
		predictor_destroy(ad->pred[i]);
	settab_destroy(ad->vols);
	free(ad->buf);
	free(ad->fresh);
	free(ad);
}

static size_t ad_memory(const struct predictor *p)
{
	const struct adaptive *ad = (const struct adaptive *)p;
	size_t m = sizeof(*ad) + settab_memory(ad->vols) +
		   ad->n_pred * ad->sub_cap * (sizeof(*ad->buf) + 1);

	for (size_t i = 0; i < ad->n_pred; i++)
		m += predictor_memory(ad->pred[i]);
	return m;
}

static const struct predictor_ops adaptive_ops = {
    .name = "adaptive",
    .access = ad_access,
    .destroy = ad_destroy,
    .memory = ad_memory,
};

size_t adaptive_scores(struct predictor *p, uint64_t volume_id,
		       struct adaptive_score *out, size_t cap)
{
	struct adaptive *ad = (struct adaptive *)p;
	struct ad_vol *v;
	size_t k;

	if (p == NULL || p->ops != &adaptive_ops)
		return 0;
	v = settab_peek(ad->vols, volume_id, 0);
	if (v == NULL)
		return 0;
	k = ad->n_pred < cap ? ad->n_pred : cap;
	for (size_t i = 0; i < k; i++)
		out[i] = (struct adaptive_score){
		    .name = predictor_name(ad->pred[i]),
		    .precision = score_precision(&v->t[i]),
		    .coverage = v->t[i].coverage,
		    .issued = v->t[i].issued,
		    .selected = v->selected == i,
		};
	return k;
}

/* Creates the sub-predictors with their shares of the budget. */
static int ad_add_all(struct adaptive *ad, const struct predict_config *cfg,
		      const char *model_path, char *errmsg)
{
	struct predict_config sub = *cfg;
	char ignored[OMBRA_ERRMSG_LEN];
	size_t b = cfg->memory_bytes;

	ad->pred[ad->n_pred] = predictor_none_create(&sub, errmsg);
	if (ad->pred[ad->n_pred] == NULL)
		return -1;
	ad->n_pred++;
	ad->pred[ad->n_pred] = obl_predictor_create(&sub, errmsg);
	if (ad->pred[ad->n_pred] == NULL)
		return -1;
	ad->n_pred++;
	sub.memory_bytes = b / 8;
	ad->pred[ad->n_pred] = amp_predictor_create(&sub, NULL, errmsg);
	if (ad->pred[ad->n_pred] == NULL)
		return -1;
	ad->n_pred++;
	sub.memory_bytes = b / 2;
	ad->pred[ad->n_pred] = mithril_predictor_create(&sub, NULL, errmsg);
	if (ad->pred[ad->n_pred] == NULL)
		return -1;
	ad->n_pred++;
	sub.memory_bytes = b / 8;
	ad->pred[ad->n_pred] = predictor_lstm_create(&sub, model_path, ignored);
	if (ad->pred[ad->n_pred] != NULL)
		ad->n_pred++;
	return 0;
}

struct predictor *adaptive_predictor_create_params(
    const struct predict_config *cfg, const char *model_path,
    const struct adaptive_params *params, char *errmsg)
{
	struct adaptive_params prm = {0};
	struct adaptive *ad;
	size_t scores, fixed;

	if (params != NULL)
		prm = *params;
	if (prm.threshold == 0)
		prm.threshold = 0.1;
	if (prm.horizon == 0)
		prm.horizon = 96;
	if (prm.decay == 0)
		prm.decay = 0.999;
	if (prm.threshold < 0 || prm.threshold > 1 || prm.decay < 0 ||
	    prm.decay > 1) {
		ombra_errmsg_printf(errmsg,
				    "adaptive: threshold %g and decay %g must "
				    "be within 0..1",
				    prm.threshold, prm.decay);
		return NULL;
	}
	ad = calloc(1, sizeof(*ad));
	if (ad == NULL)
		goto err_nomem;
	ad->base.ops = &adaptive_ops;
	ad->base.cfg = *cfg;
	ad->prm = prm;
	ad->sub_cap =
	    cfg->max_candidates ? cfg->max_candidates : AD_DEFAULT_CAP;
	if (ad_add_all(ad, cfg, model_path, errmsg) != 0)
		goto err_after_alloc;
	ad->buf = calloc(ad->n_pred * ad->sub_cap, sizeof(*ad->buf));
	ad->fresh = calloc(ad->n_pred * ad->sub_cap, 1);
	if (ad->buf == NULL || ad->fresh == NULL)
		goto err_nomem_after_alloc;
	fixed = sizeof(*ad) + ad->n_pred * ad->sub_cap * (sizeof(*ad->buf) + 1);
	scores = cfg->memory_bytes ? cfg->memory_bytes / 4 : AD_DEFAULT_SCORES;
	scores = scores > fixed ? scores - fixed : 0;
	ad->vols = settab_create(sizeof(struct ad_vol), 2, scores);
	if (ad->vols == NULL)
		goto err_nomem_after_alloc;
	return &ad->base;

err_nomem_after_alloc:
	ombra_errmsg_printf(errmsg, "adaptive: out of memory");
err_after_alloc:
	ad_destroy(&ad->base);
	return NULL;
err_nomem:
	ombra_errmsg_printf(errmsg, "adaptive: out of memory");
	return NULL;
}

struct predictor *adaptive_predictor_create(const struct predict_config *cfg,
					    const char *model_path,
					    char *errmsg)
{
	return adaptive_predictor_create_params(cfg, model_path, NULL, errmsg);
}
