/* adaptive.h: the online selector ("adaptive"): runs every predictor
 * (none, obl, amp, mithril, and lstm when it is built and its model
 * loads) on every access and, per volume, returns the candidates of the
 * one that has recently been right most usefully, or nothing when none is
 * precise enough (DESIGN.md "Prediction and prefetch": "an online
 * selector weights or picks predictors per volume by their measured
 * precision").
 *
 * Scoring, per volume and predictor, from the predictor's own candidates
 * (whether or not they were returned), by a scoreboard (score.h):
 * precision = predicted blocks accessed within params.horizon accesses
 * (plus the candidate's own horizon and length) over predicted blocks,
 * both decayed by params.decay per access; coverage = the weighted
 * fraction of accesses that were pending predictions.
 * A predictor is eligible once it has predicted at least 8 blocks' worth
 * (decayed) with precision >= params.threshold.  The one selected stays
 * while eligible unless another beats it: coverage higher by over 0.05;
 * else precision higher by over 0.1; else predictions over twice as long
 * on average (further ahead: amp's windows over obl's next block) at a
 * precision at most 0.025 lower.  The gaps are hysteresis.
 * Returned: the selected predictor's candidates that are new (not still
 * pending from it; all of them right after a switch), with probability
 * (candidate's own + measured precision) / 2.
 * No eligible predictor: nothing is returned (the "none" fallback).
 * This is the "pick the best expert" form of online expert selection
 * (cf. the multiplicative-weights / Hedge family, Freund & Schapire 1997)
 * with precision as the gate, as the issue asks.
 *
 * Memory: with cfg.memory_bytes = B > 0, amp gets B/8, mithril B/2, lstm
 * B/8, and the per-volume score table (~46 KiB per volume with lstm) the
 * rest; 0 = every part's default and 4 MiB of scores. */
#ifndef OMBRA_PREDICT_ADAPTIVE_H
#define OMBRA_PREDICT_ADAPTIVE_H

#include "predict/predict.h"

#define ADAPTIVE_MAX_PREDICTORS 5

struct adaptive_params {
	double threshold; /* minimum precision to be used (default 0.1) */
	uint32_t horizon; /* accesses a prediction stays pending (def. 96) */
	double decay;	  /* per access, 0..1 (default 0.999) */
};

/* One predictor's standing on one volume. */
struct adaptive_score {
	const char *name; /* predictor_name() of the sub-predictor */
	double precision; /* 0..1 (0 before any evidence) */
	double coverage;  /* 0..1 */
	double issued;	  /* decayed blocks predicted: the evidence weight */
	int selected;	  /* 1 for the one chosen at the last access */
};

/* Creates an "adaptive" predictor (cfg copied, params NULL = defaults,
 * zero fields take their default; model_path as for "lstm", which is
 * left out silently when it cannot be created).  NULL + errmsg when out
 * of memory or a parameter is out of range. */
struct predictor *adaptive_predictor_create(const struct predict_config *cfg,
					    const char *model_path,
					    char *errmsg);
struct predictor *adaptive_predictor_create_params(
    const struct predict_config *cfg, const char *model_path,
    const struct adaptive_params *params, char *errmsg);

/* Writes the scores of p's sub-predictors on volume_id (up to cap) into
 * out and returns how many; 0 when p is not an "adaptive" predictor or
 * has not seen the volume (or forgot it).  Names point into static
 * storage.  Does not change what p predicts. */
size_t adaptive_scores(struct predictor *p, uint64_t volume_id,
		       struct adaptive_score *out, size_t cap);

#endif
