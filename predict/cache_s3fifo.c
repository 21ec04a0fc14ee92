/* cache_s3fifo.c: S3-FIFO, J. Yang, Y. Zhang, Z. Qiu, Y. Yue and K. V.
 * Rashmi, "FIFO queues are all you need for cache eviction", SOSP 2023
 * (Algorithm 1), written from the paper.
 *
 * S: small FIFO (10% of the capacity) for new blocks; M: main FIFO;
 * G: ghost FIFO of keys evicted from S, as many as M's share.  Each block
 * has a 2-bit access counter.  Evicting from S moves a block that was
 * accessed since insertion to M, otherwise drops it to G; evicting from M
 * reinserts blocks with a non-zero counter (decremented) and removes the
 * first with counter 0.  A miss on a key in G inserts into M. */
#include "predict/cache_impl.h"

enum { S = 0, M = 1, G = 2 };

#define S3_FREQ_MAX 3
/* Section 4: a block leaves S for M when it was accessed at least once
 * since insertion. */
#define S3_MOVE_MIN 1

static void s3_hit(struct cache *c, struct cache_node *n)
{
	(void)c;
	if (n->freq < S3_FREQ_MAX)
		n->freq++;
}

static bool evict_m(struct cache *c)
{
	struct cache_node *t;

	while ((t = cache_list_tail(c, M)) != NULL) {
		cache_list_unlink(c, t);
		if (t->freq > 0) {
			t->freq--;
			cache_list_push_head(c, M, t);
			continue;
		}
		cache_note_evicted(c);
		cache_node_free(c, t);
		return true;
	}
	return false;
}

static bool evict_s(struct cache *c)
{
	struct cache_node *t;

	while ((t = cache_list_tail(c, S)) != NULL) {
		cache_list_unlink(c, t);
		if (t->freq >= S3_MOVE_MIN) {
			cache_list_push_head(c, M, t);
			continue;
		}
		cache_note_evicted(c);
		t->ghost = 1;
		cache_list_push_head(c, G, t);
		while (cache_list_len(c, G) > c->ghost_max)
			cache_node_free(c, cache_list_tail(c, G));
		return true;
	}
	return false;
}

static bool s3_evict(struct cache *c, const struct cache_node *incoming)
{
	(void)incoming;
	if (cache_list_len(c, S) >= c->s3_small && evict_s(c))
		return true;
	return evict_m(c) || evict_s(c);
}

static void s3_insert(struct cache *c, struct cache_node *n, bool need_room)
{
	bool ghost_hit = n->ghost ? n->list == G : n->was == G;

	/* Leave G first: evictions below may trim G. */
	if (n->ghost) {
		cache_list_unlink(c, n);
		n->ghost = 0;
	}
	if (need_room)
		cache_make_room(c, n);
	n->freq = 0;
	cache_list_push_head(c, ghost_hit ? M : S, n);
}

static int s3_init(struct cache *c)
{
	c->s3_small = c->cfg.capacity / 10 > 0 ? c->cfg.capacity / 10 : 1;
	c->ghost_max = c->cfg.capacity - c->s3_small;
	if (c->ghost_max == 0)
		c->ghost_max = 1;
	return 0;
}

const struct cache_policy_ops cache_s3fifo_ops = {
    .init = s3_init,
    .hit = s3_hit,
    .insert = s3_insert,
    .evict = s3_evict,
};
