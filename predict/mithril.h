/* mithril.h: the association (successor) predictor ("mithril").
 *
 * Source: J. Yang, R. Karimi, T. Sæmundsson, A. Wildani, Y. Vigfusson,
 * "Mithril: Mining Sporadic Associations for Cache Prefetching", ACM
 * SoCC'17.  Like Mithril it records accesses with logical timestamps,
 * associates a block A with a block B when B follows A within a
 * look-ahead window (the paper's lookahead range) at least min_support
 * times, keeps the associations in a bounded table and, when A is
 * accessed again, prefetches its associated blocks.  Simplifications
 * against the paper: every access is mined at once against the window
 * (no separate recording/mining tables and no frequency filter), and the
 * association table keeps counts, so a candidate carries a confidence.
 *
 * Per block A (key: volume, first block of the access) an entry holds how
 * often A was accessed (occ) and up to MITHRIL_SUCC successors
 * (block, blocks long, count, distance in accesses).  When an entry is
 * full a new successor replaces the one seen once that is farthest away,
 * if it is closer; every 32 occurrences of A halve its counts (aging, so
 * that a changed pattern can displace old associations).
 *
 * On an access to A, the successors with count >= min_support are
 * returned, most frequent first (then nearest), with probability
 * count / occ(A) (occ including this access, so a pair seen once after a
 * single earlier access of A gets 0.5) and horizon = distance.
 * Memory: two settabs within cfg.memory_bytes (default 4 MiB): 1/8 for
 * the per-volume windows (~0.8 KiB each), the rest for entries (~170
 * bytes each); least recently used entries are replaced. */
#ifndef OMBRA_PREDICT_MITHRIL_H
#define OMBRA_PREDICT_MITHRIL_H

#include "predict/predict.h"

#define MITHRIL_SUCC 8	      /* successors kept per block */
#define MITHRIL_MAX_WINDOW 64 /* largest look-ahead window */

struct mithril_params {
	uint32_t window;      /* look-ahead, accesses (default 16) */
	uint32_t min_support; /* pair count before predicting (default 1) */
};

/* Creates a "mithril" predictor (cfg copied; params NULL = defaults;
 * zero fields take their default).  NULL + errmsg when window >
 * MITHRIL_MAX_WINDOW or out of memory. */
struct predictor *mithril_predictor_create(const struct predict_config *cfg,
					   const struct mithril_params *params,
					   char *errmsg);

#endif
