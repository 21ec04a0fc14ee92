/* adaptive.c: the online selector over all predictors by shadow-cache
 * evaluation (adaptive.h; sources: SARC, Gill & Modha, USENIX ATC'05;
 * Mithril, Yang et al., SoCC'17; AMP, Gill & Bathen, FAST'07; histogram
 * binning, Zadrozny & Elkan, KDD'02; Hedge, Freund & Schapire, 1997).
 * Fails only at creation and in adaptive_set_cache() (bad parameters, out
 * of memory: everything created so far is freed); afterwards a volume
 * whose scores were forgotten starts again from no evidence. */
#include "predict/adaptive.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "predict/amp.h"
#include "predict/cache.h"
#include "predict/mithril.h"
#include "predict/obl.h"
#include "predict/pred_internal.h"
#include "predict/settab.h"

#define AD_DEFAULT_CAP 16 /* sub-predictor candidates per access */
#define AD_DEFAULT_SCORES (4 * 1024 * 1024)
#define AD_GATES 3	    /* arms per predictor: calibration, 2 gates */
#define AD_PRECISE 0.5	    /* the higher gate (at least) */
#define AD_TOL 0.003	    /* "as good": hits within this share of reads */
#define AD_KEEP 0.05	    /* precision margin of the incumbent */
#define AD_CLASSES 24	    /* candidate classes: 8 probabilities x 3 lengths */
#define AD_PRIOR_USED 0.25  /* a class's precision before evidence: */
#define AD_PRIOR_ISSUED 1.0 /* (used + 0.25) / (issued + 1) */
#define AD_TAG_SLOTS 8192   /* per predictor: block -> class (default) */
#define AD_SHADOW_MAX ((size_t)1 << 22)
#define AD_MAX_ARMS (1 + (ADAPTIVE_MAX_PREDICTORS - 1) * AD_GATES)
#define AD_MAX_BLOCKS 1024 /* blocks of one access replayed in shadows */

struct ad_arm_score {
	double hits;   /* decayed shadow read hits */
	double issued; /* decayed blocks prefetched into the shadow */
	double used;   /* decayed prefetched blocks read before eviction */
};

struct ad_vol {
	uint32_t clock;	   /* accesses seen on the volume */
	uint32_t selected; /* arm chosen last; 0 = none */
	double reads;	   /* decayed shadow block reads */
	struct ad_arm_score arm[AD_MAX_ARMS];
	double cl_issued[ADAPTIVE_MAX_PREDICTORS][AD_CLASSES];
	double cl_used[ADAPTIVE_MAX_PREDICTORS][AD_CLASSES];
};

/* An arm: predictor pred's candidates replayed into shadow with gate
 * `gate` (-1 = calibration: all, and never selected). */
struct ad_arm {
	size_t pred;
	double gate;
	struct cache *shadow;
};

struct ad_tag {
	uint64_t key;
	uint32_t cls; /* class + 1; 0 = empty */
	uint32_t pad;
};

struct adaptive {
	struct predictor base;
	struct adaptive_params prm;
	size_t n_pred, n_arms;
	size_t sub_cap;
	uint32_t max_blocks; /* prefetched per access and arm */
	struct predictor *pred[ADAPTIVE_MAX_PREDICTORS];
	struct ad_arm arm[AD_MAX_ARMS];
	struct ad_tag *tags;	       /* n_pred * tag_slots, direct-mapped */
	size_t tag_slots;	       /* power of two */
	struct predict_candidate *buf; /* n_pred * sub_cap */
	float *est;		       /* per buf entry: estimated precision */
	unsigned char *cls;	       /* per buf entry: class */
	size_t n_out[ADAPTIVE_MAX_PREDICTORS];
	struct settab *vols;
};

static inline uint64_t ad_key(uint64_t volume, uint64_t block)
{
	return volume << 48 ^ block; /* as tools/sim keys its cache */
}

static unsigned ad_class(const struct predict_candidate *c)
{
	unsigned pb = (unsigned)(c->probability * 8);
	unsigned lc = c->n_blocks == 1 ? 0 : c->n_blocks <= 8 ? 1 : 2;

	return lc * 8 + (pb > 7 ? 7 : pb);
}

static double ad_arm_precision(const struct ad_arm_score *s)
{
	return s->issued > 0 ? (s->used < s->issued ? s->used / s->issued : 1)
			     : 0;
}

static struct ad_tag *ad_tag(struct adaptive *ad, size_t pred, uint64_t key)
{
	return &ad->tags[pred * ad->tag_slots +
			 (settab_hash(key, pred) & (ad->tag_slots - 1))];
}

/* Decays the volume's sums (one access passed). */
static void ad_decay(const struct adaptive *ad, struct ad_vol *v)
{
	double d = ad->prm.decay;

	v->reads *= d;
	for (size_t k = 0; k < ad->n_arms; k++) {
		v->arm[k].hits *= d;
		v->arm[k].issued *= d;
		v->arm[k].used *= d;
	}
	for (size_t i = 0; i < ad->n_pred; i++)
		for (unsigned c = 0; c < AD_CLASSES; c++) {
			v->cl_issued[i][c] *= d;
			v->cl_used[i][c] *= d;
		}
}

/* The demand access [b, b+n) in every shadow. */
static void ad_demand(struct adaptive *ad, struct ad_vol *v, uint64_t vol,
		      uint64_t b, uint32_t n, bool write)
{
	uint32_t look = n < AD_MAX_BLOCKS ? n : AD_MAX_BLOCKS;

	if (!write)
		v->reads += look;
	for (size_t k = 0; k < ad->n_arms; k++) {
		struct ad_arm *arm = &ad->arm[k];
		struct ad_arm_score *s = &v->arm[k];

		for (uint32_t i = 0; i < look; i++) {
			uint64_t key = ad_key(vol, b + i);
			enum cache_outcome o =
			    cache_access_outcome(arm->shadow, key, write);

			if (write || o == CACHE_MISS)
				continue;
			s->hits += 1;
			if (o != CACHE_HIT_PREFETCHED)
				continue;
			s->used += 1;
			if (arm->gate < 0) {
				struct ad_tag *t = ad_tag(ad, arm->pred, key);

				if (t->cls != 0 && t->key == key)
					v->cl_used[arm->pred][t->cls - 1] += 1;
			}
		}
	}
}

/* Predictor i's candidates into its arms' shadows; fills est and cls. */
static void ad_prefetch(struct adaptive *ad, struct ad_vol *v, size_t i)
{
	const struct predict_candidate *c = ad->buf + i * ad->sub_cap;
	float *est = ad->est + i * ad->sub_cap;
	unsigned char *cls = ad->cls + i * ad->sub_cap;

	for (size_t j = 0; j < ad->n_out[i]; j++) {
		cls[j] = (unsigned char)ad_class(&c[j]);
		double e = (v->cl_used[i][cls[j]] + AD_PRIOR_USED) /
			   (v->cl_issued[i][cls[j]] + AD_PRIOR_ISSUED);

		/* Used can briefly exceed issued (decay in between). */
		est[j] = (float)(e < 1 ? e : 1);
	}
	for (size_t k = 0; k < ad->n_arms; k++) {
		struct ad_arm *arm = &ad->arm[k];
		uint32_t budget = ad->max_blocks;

		if (arm->pred != i)
			continue;
		for (size_t j = 0; j < ad->n_out[i] && budget > 0; j++) {
			if (arm->gate >= 0 && est[j] < arm->gate)
				continue;
			for (uint32_t x = 0; x < c[j].n_blocks && budget > 0;
			     x++, budget--) {
				uint64_t key = ad_key(c[j].volume_id,
						      c[j].first_block + x);

				if (!cache_prefetch(arm->shadow, key))
					continue;
				v->arm[k].issued += 1;
				if (arm->gate < 0) {
					*ad_tag(ad, i, key) = (struct ad_tag){
					    .key = key, .cls = cls[j] + 1u};
					v->cl_issued[i][cls[j]] += 1;
				}
			}
		}
	}
}

/* Precision used to rank arms: "none" (arm 0) and arms that issued
 * nothing waste nothing. */
static double ad_rank_precision(const struct ad_vol *v, size_t k)
{
	const struct ad_arm_score *s = &v->arm[k];

	return k == 0 || s->issued < 1 ? 1.0 : ad_arm_precision(s);
}

/* The arm to use (see adaptive.h "Selection"). */
static size_t ad_choose(const struct adaptive *ad, const struct ad_vol *v)
{
	double max = v->arm[0].hits, tol = AD_TOL * v->reads + 1;
	size_t best = 0, cur = v->selected;

	for (size_t k = 1; k < ad->n_arms; k++)
		if (ad->arm[k].gate >= 0 && v->arm[k].hits > max)
			max = v->arm[k].hits;
	for (size_t k = 1; k < ad->n_arms; k++) {
		if (ad->arm[k].gate < 0 || v->arm[k].hits < max - tol)
			continue;
		if (v->arm[best].hits < max - tol ||
		    ad_rank_precision(v, k) > ad_rank_precision(v, best))
			best = k;
	}
	if (cur < ad->n_arms && cur != best && v->arm[cur].hits >= max - tol &&
	    (cur == 0 || ad->arm[cur].gate >= 0) &&
	    ad_rank_precision(v, cur) >= ad_rank_precision(v, best) - AD_KEEP)
		return cur;
	return best;
}

static size_t ad_access(struct predictor *p, const struct predict_access *a,
			struct predict_candidate *out, size_t cap)
{
	struct adaptive *ad = (struct adaptive *)p;
	struct ad_vol *v;
	const struct ad_arm *arm;
	size_t best, k, i;
	uint64_t b;
	uint32_t n;
	int fresh;

	cap = pred_cap(p, cap, out);
	pred_blocks(&p->cfg, a, &b, &n);
	v = settab_get(ad->vols, a->volume_id, 0, &fresh);
	v->clock++;
	ad_decay(ad, v);
	ad_demand(ad, v, a->volume_id, b, n, a->op == PREDICT_WRITE);
	for (i = 0; i < ad->n_pred; i++) {
		ad->n_out[i] = predictor_access(
		    ad->pred[i], a, ad->buf + i * ad->sub_cap, ad->sub_cap);
		ad_prefetch(ad, v, i);
	}
	best = ad_choose(ad, v);
	v->selected = (uint32_t)best;
	if (best == 0)
		return 0;
	arm = &ad->arm[best];
	i = arm->pred;
	k = 0;
	for (size_t j = 0; j < ad->n_out[i] && k < cap; j++) {
		float e = ad->est[i * ad->sub_cap + j];

		if (e < arm->gate)
			continue;
		out[k] = ad->buf[i * ad->sub_cap + j];
		out[k].probability = e;
		k++;
	}
	return k;
}

static void ad_free_shadows(struct ad_arm *arms, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		cache_destroy(arms[k].shadow);
		arms[k].shadow = NULL;
	}
}

static void ad_destroy(struct predictor *p)
{
	struct adaptive *ad = (struct adaptive *)p;

	for (size_t i = 0; i < ad->n_pred; i++)
		predictor_destroy(ad->pred[i]);
	ad_free_shadows(ad->arm, ad->n_arms);
	settab_destroy(ad->vols);
	free(ad->tags);
	free(ad->buf);
	free(ad->est);
	free(ad->cls);
	free(ad);
}

static size_t ad_memory(const struct predictor *p)
{
	const struct adaptive *ad = (const struct adaptive *)p;
	size_t m = sizeof(*ad) + settab_memory(ad->vols) +
		   ad->n_pred * ad->tag_slots * sizeof(*ad->tags) +
		   ad->n_pred * ad->sub_cap * (sizeof(*ad->buf) + 5);

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
	for (size_t i = 0; i < k; i++) {
		/* Calibration arm of predictor i (none: arm 0), and the
		 * arm reported for hits: the selected one when it is i's,
		 * else i's lower gate. */
		size_t cal = i == 0 ? 0 : 1 + (i - 1) * AD_GATES;
		size_t shown = i == 0 ? 0 : cal + 1;
		const struct ad_arm_score *s = &v->arm[cal];
		double miss = v->reads - s->hits;
		int sel = ad->arm[v->selected].pred == i;

		if (sel)
			shown = v->selected;
		out[i] = (struct adaptive_score){
		    .name = predictor_name(ad->pred[i]),
		    .precision = ad_arm_precision(s),
		    .coverage =
			miss > 0 || s->used > 0
			    ? s->used / ((miss > 0 ? miss : 0) + s->used)
			    : 0,
		    .issued = s->issued,
		    .hits = v->arm[shown].hits,
		    .selected = sel && i != 0, /* "none": nothing chosen */
		};
	}
	return k;
}

/* Shadows for every arm as cc says; 0, or -1 + errmsg (arms untouched). */
static int ad_make_shadows(struct adaptive *ad, const struct cache_config *cc,
			   char *errmsg)
{
	struct ad_arm arms[AD_MAX_ARMS];
	struct cache_config c = *cc;

	if (c.capacity > AD_SHADOW_MAX)
		c.capacity = AD_SHADOW_MAX;
	for (size_t k = 0; k < ad->n_arms; k++) {
		arms[k] = ad->arm[k];
		c.prefetch_pct = k == 0 ? 0 : cc->prefetch_pct;
		arms[k].shadow = cache_create(&c, errmsg);
		if (arms[k].shadow == NULL) {
			ad_free_shadows(arms, k);
			return -1;
		}
	}
	ad_free_shadows(ad->arm, ad->n_arms);
	memcpy(ad->arm, arms, ad->n_arms * sizeof(*arms));
	return 0;
}

int adaptive_set_cache(struct predictor *p, const struct cache_config *cc,
		       uint32_t max_prefetch_blocks, char *errmsg)
{
	struct adaptive *ad = (struct adaptive *)p;
	struct settab *vols;

	if (p == NULL || p->ops != &adaptive_ops) {
		ombra_errmsg_printf(errmsg, "adaptive_set_cache: not an "
					    "\"adaptive\" predictor");
		return -1;
	}
	if (cc->prefetch_pct == 0) {
		ombra_errmsg_printf(errmsg, "adaptive: shadow caches need a "
					    "prefetch share above 0%%");
		return -1;
	}
	/* A fresh score table: the old scores were for other shadows. */
	vols = settab_create(sizeof(struct ad_vol), 2, settab_memory(ad->vols));
	if (vols == NULL) {
		ombra_errmsg_printf(errmsg, "adaptive: out of memory");
		return -1;
	}
	if (ad_make_shadows(ad, cc, errmsg) != 0) {
		settab_destroy(vols);
		return -1;
	}
	settab_destroy(ad->vols);
	ad->vols = vols;
	ad->max_blocks = max_prefetch_blocks ? max_prefetch_blocks : 256;
	memset(ad->tags, 0, ad->n_pred * ad->tag_slots * sizeof(*ad->tags));
	return 0;
}

/* Creates the sub-predictors with their shares of the budget, and the
 * arms (none; then calibration and two gates per predictor). */
static int ad_add_all(struct adaptive *ad, const struct predict_config *cfg,
		      const char *model_path, char *errmsg)
{
	struct predict_config sub = *cfg;
	char ignored[OMBRA_ERRMSG_LEN];
	size_t b = cfg->memory_bytes;
	double hi =
	    ad->prm.threshold > AD_PRECISE ? ad->prm.threshold : AD_PRECISE;

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
	ad->arm[0] = (struct ad_arm){.pred = 0, .gate = 0};
	ad->n_arms = 1;
	for (size_t i = 1; i < ad->n_pred; i++) {
		ad->arm[ad->n_arms++] = (struct ad_arm){.pred = i, .gate = -1};
		ad->arm[ad->n_arms++] =
		    (struct ad_arm){.pred = i, .gate = ad->prm.threshold};
		ad->arm[ad->n_arms++] = (struct ad_arm){.pred = i, .gate = hi};
	}
	return 0;
}

struct predictor *adaptive_predictor_create_params(
    const struct predict_config *cfg, const char *model_path,
    const struct adaptive_params *params, char *errmsg)
{
	struct cache_config shadow = {
	    .policy = CACHE_LRU,
	    .capacity = AD_SHADOW_BLOCKS,
	    .prefetch_pct = 25,
	};
	struct adaptive_params prm = {0};
	struct adaptive *ad;
	size_t scores, fixed, nbuf;

	if (params != NULL)
		prm = *params;
	if (prm.threshold == 0)
		prm.threshold = 0.1;
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
	ad->max_blocks = 256;
	ad->sub_cap =
	    cfg->max_candidates ? cfg->max_candidates : AD_DEFAULT_CAP;
	if (ad_add_all(ad, cfg, model_path, errmsg) != 0)
		goto err_after_alloc;
	nbuf = ad->n_pred * ad->sub_cap;
	ad->buf = calloc(nbuf, sizeof(*ad->buf));
	ad->est = calloc(nbuf, sizeof(*ad->est));
	ad->cls = calloc(nbuf, 1);
	/* Tags: at most an eighth of a budget (B/4 holds tags and scores). */
	ad->tag_slots = AD_TAG_SLOTS;
	while (cfg->memory_bytes && ad->tag_slots > 64 &&
	       ad->n_pred * ad->tag_slots * sizeof(*ad->tags) >
		   cfg->memory_bytes / 8)
		ad->tag_slots /= 2;
	ad->tags = calloc(ad->n_pred * ad->tag_slots, sizeof(*ad->tags));
	if (ad->buf == NULL || ad->est == NULL || ad->cls == NULL ||
	    ad->tags == NULL)
		goto err_nomem_after_alloc;
	if (ad_make_shadows(ad, &shadow, errmsg) != 0)
		goto err_after_alloc;
	fixed = sizeof(*ad) + nbuf * (sizeof(*ad->buf) + 5) +
		ad->n_pred * ad->tag_slots * sizeof(*ad->tags);
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
