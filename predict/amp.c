/* amp.c: sequential/stride detection with adaptive degree and trigger
 * distance (amp.h: AMP, Gill & Bathen FAST'07; Linux ondemand
 * readahead).  Fails only at creation (bad parameters, out of memory);
 * afterwards a volume that cannot get a table slot replaces another. */
#include "predict/amp.h"

#include <stdlib.h>

#include "lib/err.h"
#include "predict/pred_internal.h"
#include "predict/settab.h"

#define AMP_DEFAULT_BUDGET (256 * 1024)

enum amp_mode {
	AMP_FREE = 0, /* slot unused */
	AMP_NEW,      /* one access seen */
	AMP_CAND,     /* two accesses, delta = stride, not yet confirmed */
	AMP_SEQ,      /* sequential: each access starts where the last ended */
	AMP_STRIDE,   /* constant stride confirmed */
};

struct amp_stream {
	int64_t last;	  /* first block of the stream's last access */
	int64_t stride;	  /* AMP_CAND/AMP_STRIDE: delta between accesses */
	int64_t frontier; /* SEQ: block after the last predicted one;
			   * STRIDE: first block of the last predicted access */
	uint64_t stamp;	  /* LRU within the volume */
	uint32_t len;	  /* blocks of the last access */
	uint32_t seen;	  /* accesses in the stream */
	uint32_t degree;  /* current window, accesses; 0 = none issued */
	uint32_t mode;	  /* enum amp_mode */
};

struct amp_vol {
	struct amp_stream s[AMP_STREAMS];
	uint64_t clock;
	uint32_t init_degree;
};

struct amp {
	struct predictor base;
	struct amp_params prm;
	struct settab *vols;
};

/* AMP's degree adaptation when a stream ends (is replaced). */
static void amp_stream_ended(const struct amp *amp, struct amp_vol *v,
			     const struct amp_stream *s)
{
	if (s->mode != AMP_SEQ && s->mode != AMP_STRIDE)
		return;
	if (s->seen < 2 + v->init_degree && v->init_degree > 1)
		v->init_degree /= 2;
	else if (s->seen > 2 + 4 * v->init_degree &&
		 v->init_degree * 2 <= amp->prm.max_degree)
		v->init_degree *= 2;
}

/* The stream an access starting at block b continues, or NULL. */
static struct amp_stream *amp_match(struct amp_vol *v, int64_t b,
				    uint32_t max_stride)
{
	struct amp_stream *best = NULL;

	for (size_t i = 0; i < AMP_STREAMS; i++) {
		struct amp_stream *s = &v->s[i];

		if ((s->mode == AMP_SEQ && b == s->last + s->len) ||
		    ((s->mode == AMP_STRIDE || s->mode == AMP_CAND) &&
		     b == s->last + s->stride))
			return s;
	}
	/* A fresh stream: sequential continuation first, else the most
	 * recent one within max_stride becomes a stride candidate. */
	for (size_t i = 0; i < AMP_STREAMS; i++) {
		struct amp_stream *s = &v->s[i];
		int64_t d = b - s->last;

		if (s->mode != AMP_NEW)
			continue;
		if (b == s->last + s->len)
			return s;
		if (d != 0 && d >= -(int64_t)max_stride &&
		    d <= (int64_t)max_stride &&
		    (best == NULL || s->stamp > best->stamp))
			best = s;
	}
	return best;
}

static struct amp_stream *amp_new_stream(const struct amp *amp,
					 struct amp_vol *v)
{
	struct amp_stream *victim = &v->s[0];

	for (size_t i = 0; i < AMP_STREAMS; i++) {
		if (v->s[i].mode == AMP_FREE)
			return &v->s[i];
		if (v->s[i].stamp < victim->stamp)
			victim = &v->s[i];
	}
	amp_stream_ended(amp, v, victim);
	return victim;
}

/* Advances s by the access (b, n); returns 1 when it is (now) a
 * recognised sequential or strided stream. */
static int amp_advance(struct amp_stream *s, int64_t b, uint32_t n)
{
	int64_t d = b - s->last;

	switch (s->mode) {
	case AMP_NEW:
		s->mode = d == (int64_t)s->len ? AMP_SEQ : AMP_CAND;
		s->stride = d;
		break;
	case AMP_CAND:
		s->mode = AMP_STRIDE;
		break;
	default:
		break;
	}
	s->last = b;
	s->len = n;
	s->seen++;
	return s->mode == AMP_SEQ || s->mode == AMP_STRIDE;
}

static float amp_prob(const struct amp_stream *s)
{
	float p = (float)s->seen / (float)(s->seen + 2);

	return p > 0.95f ? 0.95f : p;
}

/* Candidates for a recognised stream, per the window rules in amp.h. */
static size_t amp_issue(const struct amp *amp, struct amp_vol *v,
			struct amp_stream *s, uint64_t vol,
			struct predict_candidate *out, size_t cap)
{
	int64_t ahead, step;
	size_t k = 0;

	step = s->mode == AMP_SEQ ? (int64_t)s->len : s->stride;
	if (s->degree == 0) {
		s->degree = v->init_degree;
		s->frontier = s->mode == AMP_SEQ ? s->last + s->len : s->last;
		ahead = 0;
	} else {
		int64_t from = s->mode == AMP_SEQ ? s->last + s->len : s->last;

		ahead = (s->frontier - from) / step;
		if (ahead < 0) {
			ahead = 0;
			s->frontier = from;
		}
		if (ahead > (int64_t)(s->degree / 2))
			return 0;
		if (s->degree * 2 <= amp->prm.max_degree)
			s->degree *= 2;
	}
	if (cap == 0)
		return 0;
	if (s->mode == AMP_SEQ) {
		uint64_t blocks = (uint64_t)s->degree * s->len;

		if (blocks > UINT32_MAX)
			blocks = UINT32_MAX;
		out[0] = (struct predict_candidate){
		    .volume_id = vol,
		    .first_block = (uint64_t)s->frontier,
		    .n_blocks = (uint32_t)blocks,
		    .probability = amp_prob(s),
		    .horizon = (uint32_t)ahead + 1,
		};
		s->frontier += (int64_t)blocks;
		return 1;
	}
	while (k < cap && k < s->degree) {
		int64_t pos = s->frontier + step;

		if (pos < 0)
			break;
		out[k++] = (struct predict_candidate){
		    .volume_id = vol,
		    .first_block = (uint64_t)pos,
		    .n_blocks = s->len,
		    .probability = amp_prob(s),
		    .horizon = (uint32_t)(ahead + (int64_t)k),
		};
		s->frontier = pos;
	}
	/* A window cut short by the cap is the window: the trigger stays
	 * within what was predicted. */
	if (k < s->degree)
		s->degree = k > 0 ? (uint32_t)k : 1;
	return k;
}

static size_t amp_access(struct predictor *p, const struct predict_access *a,
			 struct predict_candidate *out, size_t cap)
{
	struct amp *amp = (struct amp *)p;
	struct amp_stream *s;
	struct amp_vol *v;
	uint64_t first;
	uint32_t n;
	int fresh;

	cap = pred_cap(p, cap, out);
	pred_blocks(&p->cfg, a, &first, &n);
	if (first > INT64_MAX / 2)
		return 0; /* beyond any real volume; keeps int64 math safe */
	v = settab_get(amp->vols, a->volume_id, 0, &fresh);
	if (fresh)
		v->init_degree = amp->prm.init_degree;
	s = amp_match(v, (int64_t)first, amp->prm.max_stride);
	if (s == NULL) {
		s = amp_new_stream(amp, v);
		*s = (struct amp_stream){
		    .last = (int64_t)first,
		    .len = n,
		    .seen = 1,
		    .mode = AMP_NEW,
		};
		s->stamp = ++v->clock;
		return 0;
	}
	s->stamp = ++v->clock;
	if (!amp_advance(s, (int64_t)first, n))
		return 0;
	return amp_issue(amp, v, s, a->volume_id, out, cap);
}

static void amp_destroy(struct predictor *p)
{
	struct amp *amp = (struct amp *)p;

	settab_destroy(amp->vols);
	free(amp);
}

static size_t amp_memory(const struct predictor *p)
{
	const struct amp *amp = (const struct amp *)p;

	return sizeof(*amp) + settab_memory(amp->vols);
}

static const struct predictor_ops amp_ops = {
    .name = "amp",
    .access = amp_access,
    .destroy = amp_destroy,
    .memory = amp_memory,
};

struct predictor *amp_predictor_create(const struct predict_config *cfg,
				       const struct amp_params *params,
				       char *errmsg)
{
	struct amp_params prm = {0};
	size_t budget;
	struct amp *amp;

	if (params != NULL)
		prm = *params;
	if (prm.init_degree == 0)
		prm.init_degree = 4;
	if (prm.max_degree == 0)
		prm.max_degree = 64;
	if (prm.max_stride == 0)
		prm.max_stride = 64;
	if (prm.init_degree > prm.max_degree) {
		ombra_errmsg_printf(errmsg,
				    "amp: init_degree %u > max_degree %u",
				    prm.init_degree, prm.max_degree);
		return NULL;
	}
	amp = calloc(1, sizeof(*amp));
	if (amp == NULL)
		goto err;
	budget = cfg->memory_bytes ? cfg->memory_bytes : AMP_DEFAULT_BUDGET;
	budget = budget > sizeof(*amp) ? budget - sizeof(*amp) : 0;
	amp->vols = settab_create(sizeof(struct amp_vol), 4, budget);
	if (amp->vols == NULL)
		goto err_after_alloc;
	amp->base.ops = &amp_ops;
	amp->base.cfg = *cfg;
	amp->prm = prm;
	return &amp->base;

err_after_alloc:
	free(amp);
err:
	ombra_errmsg_printf(errmsg, "amp: out of memory");
	return NULL;
}
