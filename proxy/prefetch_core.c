/* prefetch_core.c: the prefetch engine's logic (prefetch_core.h): per
 * volume accounting, predictor and issue policy, candidates -> pulls on
 * the region's nodes, the proxy-wide token bucket, eviction and hint
 * handling.  Pure: the transport is the pf_io table, time comes in the
 * calls.  Failure: out of memory forgets state or skips a prefetch (never
 * reported to a client); see the header. */
#include "prefetch_core.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "metad/placement.h"
#include "predict/adaptive.h"
#include "predict/pfpolicy.h"
#include "predict/predict.h"

#define PF_MAX_CANDIDATES 16
/* Blocks per candidate of the issue policy's window in NORMAL mode. */
#define PF_WINDOW_MIN 1u
#define PF_WINDOW_MAX 256u
/* Sequentiality (pfpolicy's) from which candidates just ahead of the
 * stream are extended to a window ahead of it. */
#define PF_SEQ_EXTEND 0.5
/* Budget-deferred ranges kept per volume, and their life in accesses. */
#define PF_PENDING 4
#define PF_PENDING_TTL 256u

/* The part of an admitted candidate the byte budget held back: issued on
 * later accesses as tokens come (the predictor believes it issued it and
 * will not predict it again before its trigger). */
struct pf_pending {
	uint64_t first, end; /* volume blocks, end exclusive; first == end:
				free */
	float probability;
	uint32_t born; /* pf_vol.accesses when deferred */
	enum pf_src src;
};

struct pf_vol {
	uint64_t id;
	uint64_t last_use; /* c->clock at the last access (LRU) */
	enum pf_hint hint;
	uint32_t accesses; /* observed, wraps */
	struct pf_pending pend[PF_PENDING];
	struct pfpolicy pol;
	struct pf_volume_stats st;
};

struct pf_core {
	struct pf_core_config cfg;
	struct predictor *pred, *seq;
	struct pf_io io;
	struct pcache *pc;
	struct pf_vol **vols;
	size_t n_vols;
	uint64_t clock;
	struct pf_stats gone[PF_NSRC]; /* of volumes forgotten */
	struct pf_node *nodes;
	struct placement_node *pick; /* scratch, n_nodes entries */
	size_t n_nodes;
	struct pf_pull *slots; /* max_inflight */
	unsigned inflight;
	double tokens; /* bytes */
	uint64_t tokens_us;
};

static const char *const src_names[PF_NSRC] = {
    "request", "obl", "amp", "mithril", "lstm", "other",
};

const char *pf_src_name(enum pf_src s)
{
	return (unsigned)s < PF_NSRC ? src_names[s] : "other";
}

static enum pf_src src_of_name(const char *name)
{
	for (unsigned s = PF_SRC_OBL; s < PF_SRC_OTHER; s++)
		if (strcmp(name, src_names[s]) == 0)
			return (enum pf_src)s;
	return PF_SRC_OTHER;
}

double pf_stats_precision(const struct pf_stats *s)
{
	return s->prefetched > 0 ? (double)s->used / (double)s->prefetched
				 : 0.0;
}

double pf_stats_coverage(const struct pf_stats *s, uint64_t read_blocks)
{
	return read_blocks > 0 ? (double)s->hits / (double)read_blocks : 0.0;
}

/* ------------------------------------------------------------ volumes */

static struct pf_vol *vol_find(struct pf_core *c, uint64_t id)
{
	for (size_t i = 0; i < c->n_vols; i++)
		if (c->vols[i]->id == id)
			return c->vols[i];
	return NULL;
}

static void stats_add(struct pf_stats *dst, const struct pf_stats *s)
{
	dst->predicted += s->predicted;
	dst->issued += s->issued;
	dst->prefetched += s->prefetched;
	dst->used += s->used;
	dst->wasted += s->wasted;
	dst->hits += s->hits;
	dst->failed += s->failed;
}

static void vol_remove(struct pf_core *c, size_t i)
{
	for (unsigned s = 0; s < PF_NSRC; s++)
		stats_add(&c->gone[s], &c->vols[i]->st.src[s]);
	free(c->vols[i]);
	c->vols[i] = c->vols[--c->n_vols];
}

static void policy_window(struct pf_vol *v)
{
	bool seq = v->hint == PF_HINT_SEQUENTIAL;

	v->pol.cfg.window_min = seq ? PF_SEQ_WINDOW : PF_WINDOW_MIN;
	v->pol.cfg.window_max = seq ? PF_SEQ_WINDOW : PF_WINDOW_MAX;
}

/* The volume's state, created (the least recently used one replaced when
 * the table is full); NULL when out of memory. */
static struct pf_vol *vol_get(struct pf_core *c, uint64_t id)
{
	struct pf_vol *v = vol_find(c, id);
	struct pfpolicy_config pc;

	if (v != NULL) {
		v->last_use = ++c->clock;
		return v;
	}
	if (c->n_vols >= c->cfg.max_volumes) {
		size_t old = 0;

		for (size_t i = 1; i < c->n_vols; i++)
			if (c->vols[i]->last_use < c->vols[old]->last_use)
				old = i;
		vol_remove(c, old);
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return NULL;
	memset(&pc, 0, sizeof(pc));
	pc.block_size = PF_BLOCK;
	pc.budget_bps = c->cfg.budget_bps;
	pc.cache_bytes = c->cfg.cache_bytes;
	pfpolicy_init(&v->pol, &pc);
	v->id = id;
	v->hint = PF_HINT_NORMAL;
	policy_window(v);
	v->st.active = "none";
	v->last_use = ++c->clock;
	c->vols[c->n_vols++] = v;
	return v;
}

/* ------------------------------------------------------------ eviction */

static void on_evict(void *arg, const struct pcache_gone *g)
{
	struct pf_core *c = arg;
	struct pf_vol *v = vol_find(c, g->volume_id);

	for (unsigned s = 0; s < PF_NSRC; s++)
		if (v != NULL)
			v->st.src[s].wasted += g->unused[s];
		else
			c->gone[s].wasted += g->unused[s];
	c->io.drop(c->io.ctx, g->volume_id, g->seg, g->node_id, 0, 0);
}

/* ------------------------------------------------------------ life */

int pf_core_create(const struct pf_core_config *cfg, struct predictor *pred,
		   struct predictor *seq, const struct pf_io *io,
		   struct pf_core **out)
{
	struct pf_core *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return OMBRA_ENOMEM;
	c->cfg = *cfg;
	if (c->cfg.max_inflight == 0)
		c->cfg.max_inflight = 32;
	if (c->cfg.max_volumes == 0)
		c->cfg.max_volumes = 1024;
	if (c->cfg.max_segments == 0)
		c->cfg.max_segments = 65536;
	c->pred = pred;
	c->seq = seq;
	c->io = *io;
	c->tokens = (double)c->cfg.budget_bps;
	c->vols = calloc(c->cfg.max_volumes, sizeof(*c->vols));
	c->slots = calloc(c->cfg.max_inflight, sizeof(*c->slots));
	if (c->vols == NULL || c->slots == NULL ||
	    pcache_create(c->cfg.max_segments, &c->pc) != 0) {
		pf_core_destroy(c);
		return OMBRA_ENOMEM;
	}
	pcache_set_evict(c->pc, c->cfg.cache_bytes / PF_BLOCK, on_evict, c);
	*out = c;
	return 0;
}

void pf_core_destroy(struct pf_core *c)
{
	if (c == NULL)
		return;
	if (c->pc != NULL) {
		pcache_set_evict(c->pc, 0, NULL, NULL);
		pcache_destroy(c->pc);
	}
	for (size_t i = 0; i < c->n_vols; i++)
		free(c->vols[i]);
	free(c->vols);
	free(c->slots);
	free(c->nodes);
	free(c->pick);
	free(c);
}

struct pcache *pf_core_pcache(struct pf_core *c)
{
	return c->pc;
}

void pf_core_set_nodes(struct pf_core *c, const struct pf_node *nodes, size_t n)
{
	struct pf_node *nn = NULL;
	struct placement_node *pk = NULL;

	if (n > 0) {
		nn = calloc(n, sizeof(*nn));
		pk = calloc(n, sizeof(*pk));
		if (nn == NULL || pk == NULL) {
			free(nn);
			free(pk);
			return; /* keep the old list */
		}
		memcpy(nn, nodes, n * sizeof(*nn));
	}
	free(c->nodes);
	free(c->pick);
	c->nodes = nn;
	c->pick = pk;
	c->n_nodes = n;
}

size_t pf_core_nodes_up(const struct pf_core *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n_nodes; i++)
		k += c->nodes[i].up;
	return k;
}

unsigned pf_core_inflight(const struct pf_core *c)
{
	return c->inflight;
}

unsigned pf_core_volume_inflight(const struct pf_core *c, uint64_t volume_id)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->cfg.max_inflight; i++)
		n += c->slots[i].busy && !c->slots[i].dropped &&
		     c->slots[i].volume_id == volume_id;
	return n;
}

/* Mark the pulls in flight of the volume overlapping blocks [first,
 * first+n) of seg as dropped. */
static void mark_dropped(struct pf_core *c, uint64_t volume_id, uint64_t seg,
			 uint32_t first, uint32_t n)
{
	for (unsigned i = 0; i < c->cfg.max_inflight; i++) {
		struct pf_pull *r = &c->slots[i];

		if (!r->busy || r->volume_id != volume_id)
			continue;
		if (r->seg == seg && r->first < first + n &&
		    first < r->first + r->n)
			r->dropped = true;
	}
}

/* ------------------------------------------------------------ planning */

/* The node to hold a cache entry of (v, seg), 0 = none. */
static uint64_t choose_node(struct pf_core *c, const struct pf_volinfo *v,
			    uint64_t seg)
{
	uint64_t holder = pcache_holder(c->pc, v->id, seg), best = 0;
	size_t k = 0;

	for (size_t i = 0; i < c->n_nodes; i++) {
		const struct pf_node *x = &c->nodes[i];

		if (!x->up || c->io.is_copy(c->io.ctx, v->ctx, seg, x->id))
			continue;
		if (x->id == holder)
			return holder;
		c->pick[k].id = x->id;
		c->pick[k].weight = x->weight > 0 ? x->weight : 1;
		k++;
	}
	if (k == 0 || placement_pick(c->pick, k, v->id, seg, 1, &best) != 1)
		return 0;
	return best;
}

/* Cut [*fb, *lb) of the segment so that it does not start or end in
 * blocks cached or being pulled.  For a request someone waits for
 * (waiter != NULL) only its own pulls count as being pulled: its answer
 * says the blocks are cached, and another pull of them (a predicted one)
 * may still be running when the request would answer, or fail
 * (test_prefetch_engine's "range not cached": PrefetchData answered at
 * once with 0 bytes while a predicted pull of the range was refused by a
 * node deleting the volume's dropped copies). */
static void trim_piece(struct pf_core *c, uint64_t vol, uint64_t seg,
		       const void *waiter, uint32_t *fb, uint32_t *lb)
{
	for (int pass = 0; pass < 2; pass++) {
		while (*fb < *lb && pcache_present(c->pc, vol, seg, *fb))
			(*fb)++;
		while (*lb > *fb && pcache_present(c->pc, vol, seg, *lb - 1))
			(*lb)--;
		for (unsigned i = 0; i < c->cfg.max_inflight; i++) {
			const struct pf_pull *r = &c->slots[i];
			uint32_t re = r->first + r->n;

			if (!r->busy || r->dropped || r->volume_id != vol ||
			    r->seg != seg || re <= *fb || r->first >= *lb ||
			    (waiter != NULL && r->waiter != waiter))
				continue;
			if (r->first <= *fb)
				*fb = re < *lb ? re : *lb;
			else if (re >= *lb)
				*lb = r->first;
		}
	}
}

static struct pf_pull *slot_get(struct pf_core *c)
{
	for (unsigned i = 0; i < c->cfg.max_inflight; i++)
		if (!c->slots[i].busy)
			return &c->slots[i];
	return NULL;
}

/* Pull blocks [b, end) of v (volume block numbers) not cached yet.
 * Adds the pulls started to *started (may be NULL) and their bytes to
 * *bytes (may be NULL).  Returns 0, or -1 with *why when one could not
 * be placed (the ones before it stay started). */
static int plan(struct pf_core *c, const struct pf_volinfo *v,
		struct pf_vol *pv, uint64_t b, uint64_t end, enum pf_src src,
		void *waiter, unsigned *started, uint64_t *bytes,
		const char **why)
{
	uint64_t bps = v->seg_size / PF_BLOCK;

	if (bps == 0 || bps > PCACHE_MAX_BLOCKS) {
		*why = "segment size not supported by the prefetch cache";
		return -1;
	}
	while (b < end) {
		uint64_t seg = b / bps, s0 = seg * bps;
		uint64_t pe = end < s0 + bps ? end : s0 + bps;
		uint32_t fb = (uint32_t)(b - s0), lb = (uint32_t)(pe - s0);
		struct pf_pull *r;
		uint64_t node;

		b = pe;
		trim_piece(c, v->id, seg, waiter, &fb, &lb);
		if (fb >= lb)
			continue;
		node = choose_node(c, v, seg);
		if (node == 0) {
			*why = "no storage node UP in the proxy's region can "
			       "hold a cache entry";
			return -1;
		}
		r = slot_get(c);
		if (r == NULL) {
			*why = "too many prefetch pulls in flight";
			return -1;
		}
		*r = (struct pf_pull){
		    .volume_id = v->id,
		    .seg = seg,
		    .seg_size = v->seg_size,
		    .node = node,
		    .first = fb,
		    .n = lb - fb,
		    .src = src,
		    .waiter = waiter,
		    .busy = true,
		};
		c->inflight++;
		if (pv != NULL)
			pv->st.src[src].issued += r->n;
		if (c->io.pull(c->io.ctx, r) != 0) {
			if (pv != NULL)
				pv->st.src[src].failed += r->n;
			r->busy = false;
			c->inflight--;
			*why = "the pull could not be sent";
			return -1;
		}
		if (bytes != NULL)
			*bytes += (uint64_t)r->n * PF_BLOCK;
		if (started != NULL)
			(*started)++;
	}
	return 0;
}

/* Whether a block of the ended pull r is cached or being pulled again. */
static bool wanted_again(struct pf_core *c, const struct pf_pull *r)
{
	for (uint32_t b = r->first; b < r->first + r->n; b++)
		if (pcache_present(c->pc, r->volume_id, r->seg, b))
			return true;
	for (unsigned i = 0; i < c->cfg.max_inflight; i++) {
		const struct pf_pull *x = &c->slots[i];

		if (x->busy && !x->dropped && x->volume_id == r->volume_id &&
		    x->seg == r->seg && x->first < r->first + r->n &&
		    r->first < x->first + x->n)
			return true;
	}
	return false;
}

void pf_core_pull_done(struct pf_core *c, struct pf_pull *r, bool ok)
{
	struct pf_vol *v = vol_find(c, r->volume_id);
	struct pf_stats *s = v != NULL ? &v->st.src[r->src] : &c->gone[r->src];

	r->busy = false;
	c->inflight--;
	if (!ok) {
		s->failed += r->n;
		return;
	}
	if (r->dropped) {
		/* Unwanted by now: the node drops what it pulled, unless the
		 * blocks were asked for again meanwhile (a DropCopy racing
		 * with that pull would leave the entry without them). */
		s->prefetched += r->n;
		s->wasted += r->n;
		if (!wanted_again(c, r))
			c->io.drop(c->io.ctx, r->volume_id, r->seg, r->node,
				   r->first, r->n);
		return;
	}
	if (pcache_add_src(c->pc, r->volume_id, r->seg, r->node, r->first, r->n,
			   r->src))
		s->prefetched += r->n;
	else
		s->failed += r->n;
}

/* ------------------------------------------------------------ accesses */

static void refill(struct pf_core *c, uint64_t now_us)
{
	double bps = (double)c->cfg.budget_bps;

	if (bps > 0 && now_us > c->tokens_us) {
		c->tokens += bps * (double)(now_us - c->tokens_us) / 1e6;
		if (c->tokens > bps)
			c->tokens = bps;
	}
	if (now_us > c->tokens_us)
		c->tokens_us = now_us;
}

/* Read accounting; returns whether every block was cached. */
static bool account_read(struct pf_core *c, const struct pf_volinfo *v,
			 struct pf_vol *pv, uint64_t fb, uint64_t lb)
{
	uint64_t bps = v->seg_size / PF_BLOCK, found = 0;
	uint64_t hits[PCACHE_SRCS] = {0}, first_use[PCACHE_SRCS] = {0};

	for (uint64_t b = fb; bps > 0 && bps <= PCACHE_MAX_BLOCKS && b < lb;) {
		uint64_t seg = b / bps, s0 = seg * bps;
		uint64_t pe = lb < s0 + bps ? lb : s0 + bps;

		found += pcache_use(c->pc, v->id, seg, (uint32_t)(b - s0),
				    (uint32_t)(pe - b), hits, first_use);
		b = pe;
	}
	pv->st.reads++;
	pv->st.read_blocks += lb - fb;
	pv->st.block_hits += found;
	for (unsigned s = 0; s < PF_NSRC; s++) {
		pv->st.src[s].hits += hits[s];
		pv->st.src[s].used += first_use[s];
	}
	if (found == lb - fb) {
		pv->st.read_hits++;
		return true;
	}
	return false;
}

/* Which predictor's candidates the selector returned. */
static enum pf_src active_src(struct pf_core *c, struct pf_vol *pv)
{
	struct adaptive_score sc[ADAPTIVE_MAX_PREDICTORS];
	size_t n =
	    adaptive_scores(c->pred, pv->id, sc, ADAPTIVE_MAX_PREDICTORS);

	if (n == 0) {
		pv->st.active = predictor_name(c->pred);
		return src_of_name(pv->st.active);
	}
	for (size_t i = 0; i < n; i++)
		if (sc[i].selected) {
			pv->st.active = sc[i].name;
			return src_of_name(sc[i].name);
		}
	pv->st.active = "none";
	return PF_SRC_OTHER;
}

/* Whether block blk of the segment is cached or being pulled. */
static bool block_busy(const struct pf_core *c, uint64_t vol, uint64_t seg,
		       uint32_t blk)
{
	if (pcache_present(c->pc, vol, seg, blk))
		return true;
	for (unsigned i = 0; i < c->cfg.max_inflight; i++) {
		const struct pf_pull *r = &c->slots[i];

		if (r->busy && !r->dropped && r->volume_id == vol &&
		    r->seg == seg && r->first <= blk && blk < r->first + r->n)
			return true;
	}
	return false;
}

/* Keep [first, end) for later (the budget held it back): a free slot,
 * else the one deferred longest ago. */
static void defer_range(struct pf_vol *pv, uint64_t first, uint64_t end,
			float probability, enum pf_src src, uint32_t born)
{
	struct pf_pending *slot = &pv->pend[0];

	for (unsigned i = 0; i < PF_PENDING; i++) {
		struct pf_pending *x = &pv->pend[i];

		if (x->first == x->end) {
			slot = x;
			break;
		}
		if (pv->accesses - x->born > pv->accesses - slot->born)
			slot = x;
	}
	*slot = (struct pf_pending){.first = first,
				    .end = end,
				    .probability = probability,
				    .born = born,
				    .src = src};
}

/* Admit and pull one candidate; what the byte budgets (the policy's and
 * the proxy-wide bucket) cut off is deferred (defer_range(), with age
 * born). */
static void issue(struct pf_core *c, const struct pf_volinfo *v,
		  struct pf_vol *pv, struct predict_candidate *cand,
		  enum pf_src src, uint32_t born, uint64_t pos)
{
	uint64_t vblocks = v->size / PF_BLOCK, bps = v->seg_size / PF_BLOCK;
	uint64_t b = cand->first_block, end;
	uint32_t k, want, w = pfpolicy_window(&pv->pol);
	const char *why;

	if (b >= vblocks || bps == 0 || bps > PCACHE_MAX_BLOCKS)
		return;
	end = vblocks - b < cand->n_blocks ? vblocks : b + cand->n_blocks;
	/* Timeliness: a pull takes longer than a client's next read, so in
	 * a sequential stream a candidate just ahead of it is extended to a
	 * whole window ahead of the stream (Linux readahead's async window);
	 * later accesses then only add the window's new tail. */
	if (pv->pol.seq >= PF_SEQ_EXTEND && b >= pos && b - pos <= w &&
	    end < pos + w)
		end = pos + w < vblocks ? pos + w : vblocks;
	/* Leading blocks cached or being pulled cost no budget. */
	while (b < end && block_busy(c, v->id, b / bps, (uint32_t)(b % bps)))
		b++;
	if (b == end)
		return;
	cand->first_block = b;
	cand->n_blocks =
	    end - b > UINT32_MAX ? UINT32_MAX : (uint32_t)(end - b);
	if (cand->probability < pv->pol.threshold)
		return;
	want = cand->n_blocks < w ? cand->n_blocks : w;
	k = pfpolicy_admit(&pv->pol, cand,
			   pcache_unused_blocks(c->pc) * PF_BLOCK);
	if (c->cfg.budget_bps > 0) {
		double t = c->tokens / PF_BLOCK;
		uint32_t k0 = k;

		if ((double)k > t)
			k = t > 0 ? (uint32_t)t : 0;
		c->tokens -= (double)k * PF_BLOCK;
		/* The policy's bucket gets back what the proxy's refused. */
		pv->pol.tokens += (double)(k0 - k) * PF_BLOCK;
	}
	if (k < want)
		defer_range(pv, b + k, b + want, cand->probability, src, born);
	if (k == 0)
		return;
	plan(c, v, pv, b, b + k, src, NULL, NULL, NULL, &why);
}

/* Retry the deferred ranges of pv after an access of blocks [fb, lb):
 * blocks the access read are no longer worth prefetching, ranges older
 * than PF_PENDING_TTL accesses are forgotten. */
static void retry_pending(struct pf_core *c, const struct pf_volinfo *v,
			  struct pf_vol *pv, uint64_t fb, uint64_t lb)
{
	for (unsigned i = 0; i < PF_PENDING; i++) {
		struct pf_pending x = pv->pend[i];
		struct predict_candidate cand;

		if (x.first == x.end)
			continue;
		pv->pend[i].first = pv->pend[i].end = 0;
		if (pv->accesses - x.born > PF_PENDING_TTL)
			continue;
		if (fb <= x.first && x.first < lb)
			x.first = lb < x.end ? lb : x.end;
		if (x.first >= x.end)
			continue;
		cand = (struct predict_candidate){
		    .volume_id = v->id,
		    .first_block = x.first,
		    .n_blocks = (uint32_t)(x.end - x.first),
		    .probability = x.probability,
		};
		issue(c, v, pv, &cand, x.src, x.born, lb); /* keeps its age */
	}
}

void pf_core_observe(struct pf_core *c, const struct pf_volinfo *v,
		     uint64_t off, uint64_t len, bool is_read, uint64_t now_us)
{
	struct predict_candidate cand[PF_MAX_CANDIDATES];
	struct predict_access a;
	struct pf_vol *pv;
	uint64_t fb, lb;
	enum pf_src src;
	size_t n;
	bool hit = false;

	if (len == 0 || v->seg_size == 0)
		return;
	pv = vol_get(c, v->id);
	if (pv == NULL)
		return;
	fb = off / PF_BLOCK;
	lb = (off + len + PF_BLOCK - 1) / PF_BLOCK;
	if (is_read) {
		hit = account_read(c, v, pv, fb, lb);
		pfpolicy_observe(&pv->pol, fb, (uint32_t)(lb - fb), hit, now_us,
				 pcache_unused_blocks(c->pc) * PF_BLOCK);
	}
	refill(c, now_us);
	pv->accesses++;
	if (c->pred == NULL)
		return;
	a = (struct predict_access){
	    .volume_id = v->id,
	    .offset = off,
	    .length = len,
	    .op = is_read ? PREDICT_READ : PREDICT_WRITE,
	    .time_us = now_us,
	};
	if (pv->hint == PF_HINT_RANDOM) {
		predictor_access(c->pred, &a, NULL, 0); /* keep learning */
		return;
	}
	retry_pending(c, v, pv, fb, lb);
	if (pv->hint == PF_HINT_SEQUENTIAL && c->seq != NULL) {
		predictor_access(c->pred, &a, NULL, 0);
		n = predictor_access(c->seq, &a, cand, PF_MAX_CANDIDATES);
		src = PF_SRC_AMP;
		pv->st.active = "amp (hint)";
	} else {
		n = predictor_access(c->pred, &a, cand, PF_MAX_CANDIDATES);
		src = active_src(c, pv);
	}
	for (size_t i = 0; i < n; i++) {
		pv->st.src[src].predicted += cand[i].n_blocks;
		issue(c, v, pv, &cand[i], src, pv->accesses, lb);
	}
}

/* ------------------------------------------------------------ requests */

int pf_core_request(struct pf_core *c, const struct pf_volinfo *v, uint64_t off,
		    uint64_t len, void *waiter, unsigned *started,
		    uint64_t *bytes, const char **why)
{
	struct pf_vol *pv = vol_get(c, v->id);
	uint64_t fb = off / PF_BLOCK;
	uint64_t lb = (off + len + PF_BLOCK - 1) / PF_BLOCK;

	*why = "";
	if (len == 0)
		return 0;
	return plan(c, v, pv, fb, lb, PF_SRC_REQUEST, waiter, started, bytes,
		    why);
}

uint64_t pf_core_dontneed(struct pf_core *c, const struct pf_volinfo *v,
			  uint64_t off, uint64_t len)
{
	struct pf_vol *pv = vol_find(c, v->id);
	uint64_t bps = v->seg_size / PF_BLOCK, dropped = 0;
	uint64_t b = (off + PF_BLOCK - 1) / PF_BLOCK,
		 end = (off + len) / PF_BLOCK;

	if (bps == 0 || bps > PCACHE_MAX_BLOCKS)
		return 0;
	while (b < end) {
		uint64_t seg = b / bps, s0 = seg * bps;
		uint64_t pe = end < s0 + bps ? end : s0 + bps;
		uint64_t unused[PCACHE_SRCS] = {0};
		uint64_t holder = pcache_holder(c->pc, v->id, seg);
		uint32_t k;

		k = pcache_drop_src(c->pc, v->id, seg, (uint32_t)(b - s0),
				    (uint32_t)(pe - b), unused);
		mark_dropped(c, v->id, seg, (uint32_t)(b - s0),
			     (uint32_t)(pe - b));
		if (holder != 0)
			c->io.drop(c->io.ctx, v->id, seg, holder,
				   (uint32_t)(b - s0), (uint32_t)(pe - b));
		dropped += k;
		for (unsigned s = 0; s < PF_NSRC; s++) {
			if (pv != NULL)
				pv->st.src[s].wasted += unused[s];
			else
				c->gone[s].wasted += unused[s];
		}
		b = pe;
	}
	return dropped * PF_BLOCK;
}

bool pf_core_refused(struct pf_core *c, const struct pf_volinfo *v,
		     uint64_t seg, uint64_t node)
{
	if (node == 0 || pcache_holder(c->pc, v->id, seg) != node ||
	    v->seg_size == 0 || seg > UINT64_MAX / v->seg_size)
		return false;
	pf_core_dontneed(c, v, seg * v->seg_size, v->seg_size);
	return true;
}

void pf_core_set_hint(struct pf_core *c, uint64_t volume_id, enum pf_hint hint)
{
	struct pf_vol *pv;

	if (hint == PF_HINT_WILLNEED || hint == PF_HINT_DONTNEED)
		return;
	pv = vol_get(c, volume_id);
	if (pv == NULL)
		return;
	pv->hint = hint;
	policy_window(pv);
}

/* ------------------------------------------------------------ stats */

void pf_core_volume_stats(struct pf_core *c, uint64_t volume_id,
			  struct pf_volume_stats *out)
{
	struct pf_vol *pv = vol_find(c, volume_id);

	memset(out, 0, sizeof(*out));
	out->active = "none";
	if (pv != NULL) {
		*out = pv->st;
		out->hint = pv->hint;
		out->threshold = pv->pol.threshold;
		out->window = pfpolicy_window(&pv->pol);
	}
	out->cached_blocks = pcache_volume_blocks(c->pc, volume_id);
}

void pf_core_total_stats(struct pf_core *c, struct pf_volume_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->active = "";
	for (unsigned s = 0; s < PF_NSRC; s++)
		out->src[s] = c->gone[s];
	for (size_t i = 0; i < c->n_vols; i++) {
		const struct pf_volume_stats *v = &c->vols[i]->st;

		out->reads += v->reads;
		out->read_blocks += v->read_blocks;
		out->read_hits += v->read_hits;
		out->block_hits += v->block_hits;
		for (unsigned s = 0; s < PF_NSRC; s++)
			stats_add(&out->src[s], &v->src[s]);
	}
	out->cached_blocks = pcache_blocks(c->pc);
}
