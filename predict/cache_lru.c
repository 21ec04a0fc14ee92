/* cache_lru.c: least-recently-used eviction, the baseline policy.  One
 * list, head = most recently used; no ghost history. */
#include "predict/cache_impl.h"

enum { LRU_LIST = 0 };

static void lru_hit(struct cache *c, struct cache_node *n)
{
	cache_list_unlink(c, n);
	cache_list_push_head(c, LRU_LIST, n);
}

static void lru_insert(struct cache *c, struct cache_node *n, bool need_room)
{
	if (need_room)
		cache_make_room(c, n);
	cache_list_push_head(c, LRU_LIST, n);
}

static bool lru_evict(struct cache *c, const struct cache_node *incoming)
{
	struct cache_node *t = cache_list_tail(c, LRU_LIST);

	(void)incoming;
	if (t == NULL)
		return false;
	cache_note_evicted(c);
	cache_node_free(c, t);
	return true;
}

const struct cache_policy_ops cache_lru_ops = {
    .hit = lru_hit,
    .insert = lru_insert,
    .evict = lru_evict,
};
