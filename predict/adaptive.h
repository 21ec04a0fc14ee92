/* adaptive.h: the online selector ("adaptive"): runs every predictor
 * (none, obl, amp, mithril, and lstm when it is built and its model
 * loads) on every access and, per volume, returns the predictions of the
 * one whose prefetches would have produced the most cache hits lately,
 * keeping only predictions whose estimated precision passes a gate, or
 * nothing when prefetching would not have helped (DESIGN.md "Prediction
 * and prefetch": "an online selector weights or picks predictors per
 * volume by their measured precision").
 *
 * Shadow evaluation.  Every predictor's candidates are replayed into
 * small simulated caches of their own ("shadow" caches, predict/cache.h,
 * keys only), which see the same demand stream as the real one: what is
 * scored is exactly what matters, the hits each predictor's prefetches
 * would have produced and the share of its prefetched blocks that were
 * read before eviction (precision), pollution and blocks that were
 * resident anyway included.  This is the ghost-cache evaluation of
 * SARC (Gill & Modha, USENIX ATC'05: sizing sequential prefetch against
 * demand by the marginal utility measured on ghost lists) and of
 * Mithril's and AMP's own evaluation by simulated prefetch hits (Yang
 * et al., SoCC'17; Gill & Bathen, FAST'07), applied across predictors.
 * Per predictor there are three shadows ("arms"):
 *   - calibration: every candidate is prefetched; each prefetched block
 *     is tagged with its candidate's class (probability in eighths x
 *     length 1, 2..8, over 8 blocks) and the class's precision is
 *     measured (decayed used / issued, prior 0.25 of one block): that is
 *     a candidate's estimated precision (online histogram binning, as
 *     in Zadrozny & Elkan, KDD'02);
 *   - gated at params.threshold, and gated at max(threshold, 0.5): only
 *     candidates whose estimated precision reaches the gate are
 *     prefetched.
 * The "none" arm prefetches nothing.  Sums decay by params.decay per
 * access of the volume.
 *
 * Selection (per volume, at every access), among "none" and the gated
 * arms: the arms whose decayed hits are within tol = 0.3% of the
 * volume's decayed reads (+1) of the best are "as good"; of those the one
 * with the highest measured precision is chosen ("none" counts as
 * precision 1: it wastes nothing), and the arm chosen last stays while it
 * is as good and its precision is within 0.05 of that one's (hysteresis:
 * near-equal arms do not trade places).  This is the "follow the leader
 * with a switching margin" form of online expert selection (cf. Hedge,
 * Freund & Schapire 1997), with hit ratio as the reward and precision as
 * the tie-break, as issue 4 asks (as good as the best predictor, and
 * precise).
 * Returned: the chosen arm's candidates that pass its gate, probability =
 * their estimated precision.
 *
 * Shadow caches: by default LRU of AD_SHADOW_BLOCKS blocks with a 25%
 * prefetch share, at most 256 blocks prefetched per access;
 * adaptive_set_cache() matches them to the real cache (the simulator
 * does; the proxy should pass its prefetch cache's size).  One set of
 * shadows serves every volume (blocks keyed by volume and block); hits
 * and precision are counted per volume.
 *
 * Memory: with cfg.memory_bytes = B > 0, amp gets B/8, mithril B/2, lstm
 * B/8, and the per-volume score table (~3 KiB per volume) the rest; 0 =
 * every part's default and 4 MiB of scores.  The shadow caches are apart
 * from B: about 170 bytes per block of shadow capacity per arm (13 arms
 * with lstm). */
#ifndef OMBRA_PREDICT_ADAPTIVE_H
#define OMBRA_PREDICT_ADAPTIVE_H

#include "predict/predict.h"

#define ADAPTIVE_MAX_PREDICTORS 5
#define AD_SHADOW_BLOCKS 8192 /* default shadow cache capacity */

struct adaptive_params {
	double threshold; /* minimum estimated precision of a candidate
			     returned (default 0.1) */
	uint32_t horizon; /* unused (kept for source compatibility) */
	double decay;	  /* per access, 0..1 (default 0.999) */
};

/* One predictor's standing on one volume. */
struct adaptive_score {
	const char *name; /* predictor_name() of the sub-predictor */
	double precision; /* 0..1 (0 before any evidence): of its ungated
			     prefetches in the shadow cache */
	double coverage;  /* 0..1: shadow reads served by its prefetches
			     / (shadow read misses + those reads) */
	double issued;	  /* decayed blocks prefetched: the evidence */
	double hits;	  /* decayed shadow read hits of its chosen-gate arm
			     ("none": without prefetch) */
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

struct cache_config;

/* Makes p's shadow caches like the real cache: cc's policy, capacity and
 * prefetch share (a capacity above 2^22 blocks is clipped to 2^22 to bound
 * memory), at most max_prefetch_blocks blocks per access (0 = 256).
 * Forgets every volume's scores.  -1 + errmsg when p is not "adaptive",
 * cc is invalid (cache_create()) or out of memory (p keeps its old
 * shadows). */
int adaptive_set_cache(struct predictor *p, const struct cache_config *cc,
		       uint32_t max_prefetch_blocks, char *errmsg);

#endif
