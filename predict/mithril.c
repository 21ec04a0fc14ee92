/* mithril.c: association mining over a look-ahead window (mithril.h;
 * Yang et al., SoCC'17).  Fails only at creation (bad parameters, out of
 * memory); afterwards the bounded tables replace old entries. */
#include "predict/mithril.h"

#include <stdlib.h>

#include "lib/err.h"
#include "predict/pred_internal.h"
#include "predict/settab.h"

#define MITHRIL_DEFAULT_BUDGET (4 * 1024 * 1024)
#define MITHRIL_AGE_EVERY 32
#define MITHRIL_WINDOW_KEY UINT64_MAX /* settab k2 of a volume's window */

struct mith_succ {
	uint64_t block;
	uint32_t count; /* 0 = free slot */
	uint16_t n_blocks;
	uint16_t dist; /* accesses after A, last seen */
};

struct mith_entry {
	uint32_t occ;
	uint32_t pad;
	struct mith_succ s[MITHRIL_SUCC];
};

struct mith_window {
	uint64_t blk[MITHRIL_MAX_WINDOW]; /* ring of recent first blocks */
	uint32_t head;			  /* next slot to write */
	uint32_t n;			  /* valid slots */
};

struct mithril {
	struct predictor base;
	struct mithril_params prm;
	struct settab *entries;
	struct settab *windows;
};

static int succ_before(const struct mith_succ *x, const struct mith_succ *y)
{
	if (x->count != y->count)
		return x->count > y->count;
	return x->dist < y->dist;
}

/* Candidates from A's entry: qualifying successors, best first. */
static size_t mith_predict(const struct mithril *m, const struct mith_entry *e,
			   uint64_t vol, struct predict_candidate *out,
			   size_t cap)
{
	const struct mith_succ *pick[MITHRIL_SUCC];
	size_t n = 0;

	for (size_t i = 0; i < MITHRIL_SUCC; i++) {
		const struct mith_succ *s = &e->s[i];
		size_t j;

		if (s->count == 0 || s->count < m->prm.min_support)
			continue;
		for (j = n; j > 0 && succ_before(s, pick[j - 1]); j--)
			pick[j] = pick[j - 1];
		pick[j] = s;
		n++;
	}
	if (n > cap)
		n = cap;
	for (size_t i = 0; i < n; i++) {
		float p = (float)pick[i]->count / (float)e->occ;

		out[i] = (struct predict_candidate){
		    .volume_id = vol,
		    .first_block = pick[i]->block,
		    .n_blocks = pick[i]->n_blocks,
		    .probability = p > 1.0f ? 1.0f : p,
		    .horizon = pick[i]->dist,
		};
	}
	return n;
}

/* Records "b (n blocks) followed A at distance d" in A's entry. */
static void mith_note(struct mith_entry *e, uint64_t b, uint32_t n, uint32_t d)
{
	struct mith_succ *victim = NULL;

	for (size_t i = 0; i < MITHRIL_SUCC; i++) {
		struct mith_succ *s = &e->s[i];

		if (s->count != 0 && s->block == b) {
			if (s->count < UINT32_MAX)
				s->count++;
			s->dist = (uint16_t)d;
			s->n_blocks =
			    (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
			return;
		}
		if (s->count == 0) {
			if (victim == NULL || victim->count != 0)
				victim = s;
		} else if (s->count == 1 &&
			   (victim == NULL ||
			    (victim->count == 1 && s->dist > victim->dist))) {
			victim = s;
		}
	}
	if (victim == NULL || (victim->count == 1 && victim->dist < d))
		return;
	*victim = (struct mith_succ){
	    .block = b,
	    .count = 1,
	    .n_blocks = (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n),
	    .dist = (uint16_t)d,
	};
}

static void mith_age(struct mith_entry *e)
{
	e->occ /= 2;
	for (size_t i = 0; i < MITHRIL_SUCC; i++)
		e->s[i].count /= 2;
}

/* Whether the window's i-th most recent block (0 = newest) appeared
 * at a more recent position too (so A is mined once per access). */
static int mith_seen_newer(const struct mith_window *w, uint32_t i)
{
	uint32_t at =
	    (w->head + MITHRIL_MAX_WINDOW - 1 - i) % MITHRIL_MAX_WINDOW;

	for (uint32_t j = 0; j < i; j++) {
		uint32_t bt =
		    (w->head + MITHRIL_MAX_WINDOW - 1 - j) % MITHRIL_MAX_WINDOW;

		if (w->blk[bt] == w->blk[at])
			return 1;
	}
	return 0;
}

static void mith_mine(struct mithril *m, uint64_t vol, struct mith_window *w,
		      uint64_t b, uint32_t n)
{
	uint32_t limit = w->n < m->prm.window ? w->n : m->prm.window;

	for (uint32_t i = 0; i < limit; i++) {
		uint32_t at =
		    (w->head + MITHRIL_MAX_WINDOW - 1 - i) % MITHRIL_MAX_WINDOW;
		struct mith_entry *e;

		if (w->blk[at] == b || mith_seen_newer(w, i))
			continue;
		e = settab_find(m->entries, vol, w->blk[at]);
		if (e != NULL)
			mith_note(e, b, n, i + 1);
	}
	w->blk[w->head] = b;
	w->head = (w->head + 1) % MITHRIL_MAX_WINDOW;
	if (w->n < MITHRIL_MAX_WINDOW)
		w->n++;
}

static size_t mith_access(struct predictor *p, const struct predict_access *a,
			  struct predict_candidate *out, size_t cap)
{
	struct mithril *m = (struct mithril *)p;
	struct mith_window *w;
	struct mith_entry *e;
	size_t k = 0;
	uint64_t b;
	uint32_t n;
	int fresh;

	cap = pred_cap(p, cap, out);
	pred_blocks(&p->cfg, a, &b, &n);
	e = settab_get(m->entries, a->volume_id, b, &fresh);
	e->occ++;
	if (!fresh && cap > 0)
		k = mith_predict(m, e, a->volume_id, out, cap);
	if (e->occ >= MITHRIL_AGE_EVERY)
		mith_age(e);
	/* e may be replaced from here on. */
	w = settab_get(m->windows, a->volume_id, MITHRIL_WINDOW_KEY, &fresh);
	mith_mine(m, a->volume_id, w, b, n);
	return k;
}

static void mith_destroy(struct predictor *p)
{
	struct mithril *m = (struct mithril *)p;

	settab_destroy(m->entries);
	settab_destroy(m->windows);
	free(m);
}

static size_t mith_memory(const struct predictor *p)
{
	const struct mithril *m = (const struct mithril *)p;

	return sizeof(*m) + settab_memory(m->entries) +
	       settab_memory(m->windows);
}

static const struct predictor_ops mithril_ops = {
    .name = "mithril",
    .access = mith_access,
    .destroy = mith_destroy,
    .memory = mith_memory,
};

struct predictor *mithril_predictor_create(const struct predict_config *cfg,
					   const struct mithril_params *params,
					   char *errmsg)
{
	struct mithril_params prm = {0};
	struct mithril *m;
	size_t budget, wbytes;

	if (params != NULL)
		prm = *params;
	if (prm.window == 0)
		prm.window = 16;
	if (prm.min_support == 0)
		prm.min_support = 1;
	if (prm.window > MITHRIL_MAX_WINDOW) {
		ombra_errmsg_printf(errmsg, "mithril: window %u > %u",
				    prm.window, MITHRIL_MAX_WINDOW);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		goto err;
	budget = cfg->memory_bytes ? cfg->memory_bytes : MITHRIL_DEFAULT_BUDGET;
	budget = budget > sizeof(*m) ? budget - sizeof(*m) : 0;
	m->windows = settab_create(sizeof(struct mith_window), 2, budget / 8);
	if (m->windows == NULL)
		goto err_after_alloc;
	wbytes = settab_memory(m->windows);
	m->entries = settab_create(sizeof(struct mith_entry), 8,
				   budget > wbytes ? budget - wbytes : 0);
	if (m->entries == NULL)
		goto err_after_windows;
	m->base.ops = &mithril_ops;
	m->base.cfg = *cfg;
	m->prm = prm;
	return &m->base;

err_after_windows:
	settab_destroy(m->windows);
err_after_alloc:
	free(m);
err:
	ombra_errmsg_printf(errmsg, "mithril: out of memory");
	return NULL;
}
