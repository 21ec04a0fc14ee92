/* pfpolicy.c: prefetch issue policy (pfpolicy.h).  No failure modes. */
#include "predict/pfpolicy.h"

#define PF_SEQ_ALPHA (1.0 / 16)

void pfpolicy_init(struct pfpolicy *pp, const struct pfpolicy_config *cfg)
{
	struct pfpolicy_config c = *cfg;

	if (c.threshold == 0)
		c.threshold = 0.1;
	if (c.min_threshold == 0)
		c.min_threshold = 0.05;
	if (c.max_threshold == 0)
		c.max_threshold = 0.95;
	if (c.step == 0)
		c.step = 0.05;
	if (c.target_hit == 0)
		c.target_hit = 0.5;
	if (c.period == 0)
		c.period = 1024;
	if (c.window_min == 0)
		c.window_min = 1;
	if (c.window_max < c.window_min)
		c.window_max = c.window_min > 256 ? c.window_min : 256;
	if (c.block_size == 0)
		c.block_size = 4096;
	*pp = (struct pfpolicy){.cfg = c, .threshold = c.threshold};
	pp->tokens = (double)c.budget_bps;
}

static void control(struct pfpolicy *pp, uint64_t now, uint64_t unused)
{
	const struct pfpolicy_config *c = &pp->cfg;
	double hit = (double)pp->hits / pp->n;
	double secs = (double)(now - pp->period_us) / 1e6;
	double load = 0;

	if (c->budget_bps > 0)
		load = secs > 0
			   ? (double)pp->issued / ((double)c->budget_bps * secs)
			   : (pp->issued > 0 ? 1.0 : 0.0);
	if ((c->cache_bytes > 0 && unused * 10 >= c->cache_bytes * 9) ||
	    load > 0.9) {
		pp->threshold += c->step;
		pp->steps_up++;
	} else if (hit < c->target_hit && load < 0.5) {
		pp->threshold -= c->step;
		pp->steps_down++;
	}
	if (pp->threshold < c->min_threshold)
		pp->threshold = c->min_threshold;
	if (pp->threshold > c->max_threshold)
		pp->threshold = c->max_threshold;
	pp->n = pp->hits = 0;
	pp->issued = 0;
	pp->period_us = now;
}

void pfpolicy_observe(struct pfpolicy *pp, uint64_t first_block,
		      uint32_t n_blocks, bool hit, uint64_t time_us,
		      uint64_t unused_bytes)
{
	double bps = (double)pp->cfg.budget_bps;

	pp->seq = pp->seq * (1 - PF_SEQ_ALPHA) +
		  (first_block == pp->next_block ? PF_SEQ_ALPHA : 0);
	pp->next_block = first_block + n_blocks;
	if (bps > 0 && time_us > pp->last_us) {
		pp->tokens += bps * (double)(time_us - pp->last_us) / 1e6;
		if (pp->tokens > bps)
			pp->tokens = bps;
	}
	if (time_us > pp->last_us)
		pp->last_us = time_us;
	pp->n++;
	pp->hits += hit;
	if (pp->n >= pp->cfg.period)
		control(pp, pp->last_us, unused_bytes);
}

uint32_t pfpolicy_window(const struct pfpolicy *pp)
{
	const struct pfpolicy_config *c = &pp->cfg;

	return c->window_min +
	       (uint32_t)(pp->seq * (double)(c->window_max - c->window_min) +
			  0.5);
}

uint32_t pfpolicy_admit(struct pfpolicy *pp, const struct predict_candidate *c,
			uint64_t unused_bytes)
{
	uint64_t bs = pp->cfg.block_size;
	uint32_t n = c->n_blocks, w = pfpolicy_window(pp);

	if (c->probability < pp->threshold)
		return 0;
	if (n > w)
		n = w;
	if (pp->cfg.cache_bytes > 0) {
		uint64_t room = unused_bytes < pp->cfg.cache_bytes
				    ? (pp->cfg.cache_bytes - unused_bytes) / bs
				    : 0;

		if (n > room)
			n = (uint32_t)room;
	}
	if (pp->cfg.budget_bps > 0) {
		double t = pp->tokens / (double)bs;

		if ((double)n > t)
			n = t > 0 ? (uint32_t)t : 0;
		pp->tokens -= (double)n * (double)bs;
	}
	pp->issued += (uint64_t)n * bs;
	return n;
}
