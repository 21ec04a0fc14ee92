/* lstm.c: the LSTM access predictor (lstm.h): per volume the window of the
 * last seq_len delta classes, the network of lstm_model.c over it, the top
 * classes as candidate block ranges.
 *
 * Memory: bounded by cfg.memory_bytes (default 1 MiB) plus the model: a
 * quarter for the per-volume table (least recently used volume replaced
 * when its probe window is full), the rest for a memo of window -> top
 * classes (direct mapped; a window seen before, as in any regular stream,
 * costs no inference).  The memo changes speed only, never results.
 *
 * Failure: creation returns NULL with a message (bad cfg, model file, out
 * of memory); access never fails. */
#include "predict/lstm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "predict/lstm_model.h"

#define DEFAULT_MEMORY ((size_t)1 << 20)
#define TOPK 8	       /* classes remembered per window */
#define MIN_PROB 0.01f /* classes below this are never candidates */
#define PROBES 8       /* volume table probe window */
#define MAX_RUN 4096   /* cap of a candidate's length, model blocks */

struct lstm_vol {
	uint64_t volume_id;
	uint64_t
	    prev_end; /* end (exclusive) of the last access, model blocks */
	uint64_t last_use; /* access counter, for replacement; 0 = free slot */
	uint32_t last_len; /* blocks of the last access, model blocks */
	uint32_t n;	   /* deltas seen, saturating at seq_len */
	uint32_t head;	   /* next ring position */
};

struct lstm_memo {
	uint32_t n;	    /* valid classes; UINT32_MAX = empty slot */
	uint32_t cls[TOPK]; /* best first */
	float prob[TOPK];
};

struct lstm_predictor {
	struct predictor base;
	struct lstm_model *m;
	size_t n_vols;	       /* power of two */
	struct lstm_vol *vols; /* [n_vols] */
	uint16_t *rings;       /* [n_vols][seq_len] delta classes */
	size_t n_memo;	       /* power of two */
	struct lstm_memo *memo;
	uint16_t *memo_keys; /* [n_memo][seq_len] */
	uint64_t clock;
	uint32_t *window; /* [seq_len] scratch */
	float *probs;	  /* [vocab] scratch */
	float *work;	  /* lstm_model_work_floats() scratch */
};

const char *lstm_default_model_path(char *buf, size_t size)
{
	const char *env = getenv(LSTM_MODEL_ENV);
	const char *src = getenv("OMBRA_SRCDIR");

	if (env != NULL && env[0] != '\0')
		snprintf(buf, size, "%s", env);
	else if (src != NULL && src[0] != '\0')
		snprintf(buf, size, "%s/%s", src, LSTM_DEFAULT_MODEL_REL);
	else
#ifdef OMBRA_LSTM_SRCDIR
		snprintf(buf, size, "%s/%s", OMBRA_LSTM_SRCDIR,
			 LSTM_DEFAULT_MODEL_REL);
#else
		snprintf(buf, size, "%s", LSTM_DEFAULT_MODEL_REL);
#endif
	return buf;
}

static size_t pow2_floor(size_t x)
{
	size_t p = 1;

	while (p <= x / 2)
		p *= 2;
	return p;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* The volume's slot, a fresh one (replacing the least recently used in the
 * probe window) if it has none; *fresh tells which. */
static struct lstm_vol *vol_get(struct lstm_predictor *lp, uint64_t id,
				bool *fresh)
{
	size_t mask = lp->n_vols - 1, start = mix64(id) & mask;
	struct lstm_vol *victim = &lp->vols[start];

	for (size_t i = 0; i < PROBES && i < lp->n_vols; i++) {
		struct lstm_vol *v = &lp->vols[(start + i) & mask];

		if (v->last_use != 0 && v->volume_id == id) {
			*fresh = false;
			return v;
		}
		if (v->last_use < victim->last_use)
			victim = v;
	}
	memset(victim, 0, sizeof(*victim));
	victim->volume_id = id;
	*fresh = true;
	return victim;
}

/* Top classes of the current window, from the memo or the network. */
static const struct lstm_memo *predict_window(struct lstm_predictor *lp)
{
	const struct lstm_model *m = lp->m;
	size_t n = m->seq_len, other = m->vocab - 1;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++)
		h = (h ^ lp->window[i]) * 1099511628211ULL;
	size_t slot = mix64(h) & (lp->n_memo - 1);
	struct lstm_memo *e = &lp->memo[slot];
	uint16_t *key = lp->memo_keys + slot * n;

	if (e->n != UINT32_MAX) {
		size_t i = 0;

		while (i < n && key[i] == lp->window[i])
			i++;
		if (i == n)
			return e;
	}

	lstm_model_forward(m, lp->window, n, lp->probs, lp->work);
	e->n = 0;
	for (size_t i = 0; i < n; i++)
		key[i] = (uint16_t)lp->window[i];
	/* Selection of the TOPK most probable real deltas, best first. */
	for (size_t c = 0; c < other; c++) {
		float p = lp->probs[c];
		size_t j;

		if (p < MIN_PROB || (e->n == TOPK && p <= e->prob[TOPK - 1]))
			continue;
		j = e->n < TOPK ? e->n++ : TOPK - 1;
		while (j > 0 && e->prob[j - 1] < p) {
			e->prob[j] = e->prob[j - 1];
			e->cls[j] = e->cls[j - 1];
			j--;
		}
		e->prob[j] = p;
		e->cls[j] = (uint32_t)c;
	}
	return e;
}

/* Candidate for a predicted start and length in model blocks, in cfg
 * blocks; false when it falls before block 0 or overflows. */
static bool make_candidate(const struct lstm_predictor *lp, uint64_t vol,
			   int64_t start, uint32_t len, float prob,
			   struct predict_candidate *c)
{
	uint64_t mb = lp->m->block_bytes, cb = lp->base.cfg.block_size;

	if (start < 0 || (uint64_t)start > UINT64_MAX / mb - MAX_RUN - 1)
		return false;
	uint64_t b0 = (uint64_t)start * mb, b1 = b0 + (uint64_t)len * mb;
	c->volume_id = vol;
	c->first_block = b0 / cb;
	c->n_blocks = (uint32_t)((b1 + cb - 1) / cb - c->first_block);
	c->probability = prob;
	c->horizon = 1;
	return true;
}

static size_t lstm_access(struct predictor *p, const struct predict_access *a,
			  struct predict_candidate *out, size_t cap)
{
	struct lstm_predictor *lp = (struct lstm_predictor *)p;
	const struct lstm_model *m = lp->m;
	uint64_t mb = m->block_bytes, len = a->length ? a->length : 1;
	uint64_t first = a->offset / mb;
	uint64_t end = first + (a->offset % mb + len - 1) / mb + 1;
	uint64_t run = end - first;
	size_t n = m->seq_len, k = 0;
	bool fresh;

	if (out == NULL)
		cap = 0;
	if (p->cfg.max_candidates != 0 && p->cfg.max_candidates < cap)
		cap = p->cfg.max_candidates;
	struct lstm_vol *v = vol_get(lp, a->volume_id, &fresh);
	uint16_t *ring = lp->rings + (size_t)(v - lp->vols) * n;
	v->last_use = ++lp->clock;
	if (!fresh) {
		int64_t delta = (int64_t)(first - v->prev_end);

		ring[v->head] = (uint16_t)lstm_model_class(m, delta);
		v->head = (v->head + 1) % (uint32_t)n;
		if (v->n < n)
			v->n++;
	}
	v->prev_end = end;
	v->last_len = run > MAX_RUN ? MAX_RUN : (uint32_t)run;
	if (cap == 0 || v->n == 0)
		return 0;

	/* Window oldest first; missing history is "other". */
	for (size_t i = 0; i < n; i++) {
		size_t back = n - i; /* 1 = newest */

		lp->window[i] = back <= v->n ? ring[(v->head + n - back) % n]
					     : m->vocab - 1;
	}
	const struct lstm_memo *e = predict_window(lp);
	for (size_t i = 0; i < e->n && k < cap; i++) {
		int64_t start;

		if (__builtin_add_overflow((int64_t)v->prev_end,
					   m->deltas[e->cls[i]], &start))
			continue;
		if (make_candidate(lp, a->volume_id, start, v->last_len,
				   e->prob[i], &out[k]))
			k++;
	}
	return k;
}

static void lstm_destroy(struct predictor *p)
{
	struct lstm_predictor *lp = (struct lstm_predictor *)p;

	if (lp == NULL)
		return;
	lstm_model_free(lp->m);
	free(lp->vols);
	free(lp->rings);
	free(lp->memo);
	free(lp->memo_keys);
	free(lp->window);
	free(lp->probs);
	free(lp->work);
	free(lp);
}

static const struct predictor_ops lstm_ops = {
    .name = "lstm",
    .access = lstm_access,
    .destroy = lstm_destroy,
};

struct predictor *lstm_predictor_create(const struct predict_config *cfg,
					const char *model_path, char *errmsg)
{
	char def[4096];
	struct lstm_predictor *lp;

	if (cfg == NULL ||
	    (cfg->block_size != 512 && cfg->block_size != 4096)) {
		ombra_errmsg_printf(errmsg,
				    "lstm: block_size %u is not 512 or "
				    "4096",
				    cfg ? cfg->block_size : 0);
		return NULL;
	}
	if (model_path == NULL)
		model_path = lstm_default_model_path(def, sizeof(def));
	lp = calloc(1, sizeof(*lp));
	if (lp == NULL)
		goto err_nomem;
	lp->base.ops = &lstm_ops;
	lp->base.cfg = *cfg;
	if (lstm_model_load(model_path, &lp->m, errmsg) != 0) {
		ombra_errmsg_wrapf(errmsg, "lstm");
		free(lp);
		return NULL;
	}

	const struct lstm_model *m = lp->m;
	size_t n = m->seq_len;
	size_t budget = cfg->memory_bytes ? cfg->memory_bytes : DEFAULT_MEMORY;
	size_t vol_bytes = sizeof(struct lstm_vol) + n * sizeof(uint16_t);
	size_t memo_bytes = sizeof(struct lstm_memo) + n * sizeof(uint16_t);
	lp->n_vols = pow2_floor(budget / 4 / vol_bytes);
	lp->n_memo = pow2_floor(budget * 3 / 4 / memo_bytes);
	lp->vols = calloc(lp->n_vols, sizeof(*lp->vols));
	lp->rings = calloc(lp->n_vols * n, sizeof(uint16_t));
	lp->memo = malloc(lp->n_memo * sizeof(*lp->memo));
	lp->memo_keys = calloc(lp->n_memo * n, sizeof(uint16_t));
	lp->window = calloc(n, sizeof(uint32_t));
	lp->probs = calloc(m->vocab, sizeof(float));
	lp->work = calloc(lstm_model_work_floats(m), sizeof(float));
	if (lp->vols == NULL || lp->rings == NULL || lp->memo == NULL ||
	    lp->memo_keys == NULL || lp->window == NULL || lp->probs == NULL ||
	    lp->work == NULL)
		goto err_nomem;
	for (size_t i = 0; i < lp->n_memo; i++)
		lp->memo[i].n = UINT32_MAX;
	return &lp->base;

err_nomem:
	ombra_errmsg_printf(errmsg, "lstm: out of memory");
	lstm_destroy(lp ? &lp->base : NULL);
	return NULL;
}
