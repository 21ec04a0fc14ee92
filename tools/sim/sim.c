/* sim.c: loading a trace and replaying it through a cache and a
 * predictor (contract in sim.h). */
#include "tools/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "predict/adaptive.h"
#include "predict/cache_table.h"
#include "predict/pfpolicy.h"
#include "predict/predict.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sim_config_default(struct sim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->policy = CACHE_LRU;
	cfg->block_size = 4096;
	cfg->predictor = "none";
	cfg->prefetch_pct = 25;
	cfg->threshold = 0.0f;
	cfg->max_candidates = 16;
	cfg->max_prefetch_blocks = 256;
}

int sim_trace_load(const char *path, enum trace_format fmt, struct sim_trace *t,
		   char *errmsg)
{
	struct trace *tr;
	size_t cap = 1 << 16;
	double t0 = now_s();
	int rc;

	memset(t, 0, sizeof(*t));
	snprintf(t->path, sizeof(t->path), "%s", path);
	tr = trace_open(path, fmt, errmsg);
	if (tr == NULL)
		return -1;
	t->reqs = malloc(cap * sizeof(*t->reqs));
	if (t->reqs == NULL)
		goto err_nomem;
	while ((rc = trace_next(tr, &t->reqs[t->n])) == 1) {
		if (++t->n == cap) {
			struct trace_req *r =
			    realloc(t->reqs, 2 * cap * sizeof(*r));

			if (r == NULL)
				goto err_nomem;
			t->reqs = r;
			cap *= 2;
		}
	}
	if (rc < 0) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "%s", trace_error(tr));
		trace_close(tr);
		sim_trace_free(t);
		return -1;
	}
	trace_close(tr);
	t->load_seconds = now_s() - t0;
	return 0;

err_nomem:
	trace_close(tr);
	sim_trace_free(t);
	snprintf(errmsg, OMBRA_ERRMSG_LEN, "%s: out of memory", path);
	return -1;
}

void sim_trace_free(struct sim_trace *t)
{
	free(t->reqs);
	t->reqs = NULL;
	t->n = 0;
}

static inline uint64_t block_key(uint64_t volume, uint64_t block)
{
	return volume << 48 ^ block;
}

uint64_t sim_footprint(const struct sim_trace *t, uint32_t block_size)
{
	struct cache_table set;
	size_t max = 1 << 20;
	uint64_t n = 0;

	if (cache_table_init(&set, max) != 0)
		return 0;
	for (size_t i = 0; i < t->n; i++) {
		const struct trace_req *r = &t->reqs[i];
		uint64_t last = (r->offset + r->length - 1) / block_size;

		for (uint64_t b = r->offset / block_size; b <= last; b++) {
			uint64_t k = block_key(r->volume, b);

			if (cache_table_get(&set, k) != CACHE_TABLE_NONE)
				continue;
			if (set.count == set.max) {
				/* Grow: rebuild twice as large. */
				struct cache_table big;

				if (cache_table_init(&big, 2 * set.max) != 0) {
					cache_table_close(&set);
					return 0;
				}
				for (size_t s = 0; s <= set.mask; s++)
					if (set.slots[s].val !=
					    CACHE_TABLE_NONE)
						cache_table_put(
						    &big, set.slots[s].key, 1);
				cache_table_close(&set);
				set = big;
			}
			cache_table_put(&set, k, 1);
			n++;
		}
	}
	cache_table_close(&set);
	return n;
}

static void prefetch(struct cache *c, const struct sim_config *cfg,
		     struct pfpolicy *pp, const struct predict_candidate *cand,
		     size_t n)
{
	uint32_t budget = cfg->max_prefetch_blocks;

	for (size_t i = 0; i < n && budget > 0; i++) {
		uint32_t nb = cand[i].n_blocks;

		if (pp != NULL)
			nb = pfpolicy_admit(
			    pp, &cand[i],
			    (uint64_t)cache_prefetched_unused(c) *
				cfg->block_size);
		else if (cand[i].probability < cfg->threshold)
			continue;
		for (uint32_t k = 0; k < nb && budget > 0; k++) {
			cache_prefetch(c, block_key(cand[i].volume_id,
						    cand[i].first_block + k));
			budget--;
		}
	}
}

static void finish(struct sim_result *out, const struct cache *c, uint32_t bs)
{
	const struct cache_stats *s = &out->st;
	uint64_t misses;

	cache_get_stats(c, &out->st);
	misses = s->reads - s->read_hits;
	out->accesses = s->reads + s->writes;
	out->hit_ratio =
	    s->reads ? (double)s->read_hits / (double)s->reads : 0.0;
	out->precision = s->prefetch_issued ? (double)s->prefetch_used /
						  (double)s->prefetch_issued
					    : 0.0;
	out->coverage =
	    misses + s->prefetch_used
		? (double)s->prefetch_used / (double)(misses + s->prefetch_used)
		: 0.0;
	out->bytes_prefetched = s->prefetch_issued * bs;
	out->bytes_wasted = (s->prefetch_issued - s->prefetch_used) * bs;
	out->accesses_per_s =
	    out->seconds > 0 ? (double)out->accesses / out->seconds : 0.0;
}

int sim_run(const struct sim_trace *t, const struct sim_config *cfg,
	    struct sim_result *out, char *errmsg)
{
	struct cache_config cc = {
	    .policy = cfg->policy,
	    .capacity = cfg->cache_blocks,
	    .prefetch_pct = cfg->prefetch_pct,
	};
	struct predict_config pc = {
	    .block_size = cfg->block_size,
	    .max_candidates = cfg->max_candidates,
	};
	struct predict_candidate *cand = NULL;
	struct predictor *p = NULL;
	struct pfpolicy pp;
	const uint32_t bs = cfg->block_size;
	struct cache *c;
	double t0;

	memset(out, 0, sizeof(*out));
	out->cfg = *cfg;
	if (bs != 512 && bs != 4096) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN,
			 "block size %u: must be 512 or 4096", bs);
		return -1;
	}
	if (strcmp(cfg->predictor, "none") != 0) {
		p = predictor_create(cfg->predictor, &pc, cfg->model_path,
				     errmsg);
		if (p == NULL)
			return -1;
		if (strcmp(cfg->predictor, "adaptive") == 0 &&
		    adaptive_set_cache(p, &cc, cfg->max_prefetch_blocks,
				       errmsg) != 0) {
			predictor_destroy(p);
			return -1;
		}
		cand = calloc(cfg->max_candidates ? cfg->max_candidates : 1,
			      sizeof(*cand));
		if (cand == NULL) {
			predictor_destroy(p);
			snprintf(errmsg, OMBRA_ERRMSG_LEN, "out of memory");
			return -1;
		}
	} else {
		cc.prefetch_pct = 0;
	}
	c = cache_create(&cc, errmsg);
	if (c == NULL) {
		free(cand);
		predictor_destroy(p);
		return -1;
	}
	if (cfg->control) {
		struct pfpolicy_config pcfg = {
		    .threshold = cfg->threshold,
		    .block_size = bs,
		    .window_max = cfg->max_prefetch_blocks,
		    .budget_bps = cfg->budget_bps,
		    .cache_bytes = cfg->budget_cache_bytes,
		};

		pfpolicy_init(&pp, &pcfg);
	}
	t0 = now_s();
	for (size_t i = 0; i < t->n; i++) {
		const struct trace_req *r = &t->reqs[i];
		uint64_t last = (r->offset + r->length - 1) / bs;
		bool hit = true;

		for (uint64_t b = r->offset / bs; b <= last; b++)
			hit &=
			    cache_access(c, block_key(r->volume, b), r->write);
		if (cfg->control)
			pfpolicy_observe(&pp, r->offset / bs,
					 (uint32_t)(last - r->offset / bs + 1),
					 hit && !r->write, r->time_us,
					 (uint64_t)cache_prefetched_unused(c) *
					     bs);
		if (p != NULL) {
			struct predict_access a = {
			    .volume_id = r->volume,
			    .offset = r->offset,
			    .length = r->length,
			    .op = r->write ? PREDICT_WRITE : PREDICT_READ,
			    .time_us = r->time_us,
			};
			size_t n =
			    predictor_access(p, &a, cand, cfg->max_candidates);

			prefetch(c, cfg, cfg->control ? &pp : NULL, cand, n);
		}
	}
	out->seconds = now_s() - t0;
	finish(out, c, bs);
	cache_destroy(c);
	free(cand);
	predictor_destroy(p);
	return 0;
}
