/* cache.c: the policy-independent part of the block cache (cache.h):
 * node allocation, lists, the prefetch FIFO, counters and dispatch to the
 * eviction policy.  Allocation happens only in cache_create(). */
#include "predict/cache_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static const char *const policy_names[] = {
    [CACHE_LRU] = "lru",
    [CACHE_ARC] = "arc",
    [CACHE_S3FIFO] = "s3fifo",
};

int cache_policy_parse(const char *name, enum cache_policy *out)
{
	for (size_t i = 0; i < sizeof(policy_names) / sizeof(*policy_names);
	     i++) {
		if (strcmp(name, policy_names[i]) == 0) {
			*out = (enum cache_policy)i;
			return 0;
		}
	}
	return -1;
}

const char *cache_policy_name(enum cache_policy p)
{
	return (unsigned)p < sizeof(policy_names) / sizeof(*policy_names)
		   ? policy_names[p]
		   : "?";
}

void cache_list_push_head(struct cache *c, unsigned l, struct cache_node *n)
{
	struct cache_list *L = &c->lists[l];
	uint32_t i = cache_node_idx(c, n);

	n->list = (uint8_t)l;
	n->prev = CACHE_NIL;
	n->next = L->head;
	if (L->head != CACHE_NIL)
		c->nodes[L->head].prev = i;
	else
		L->tail = i;
	L->head = i;
	L->len++;
}

void cache_list_unlink(struct cache *c, struct cache_node *n)
{
	struct cache_list *L = &c->lists[n->list];

	if (n->prev != CACHE_NIL)
		c->nodes[n->prev].next = n->next;
	else
		L->head = n->next;
	if (n->next != CACHE_NIL)
		c->nodes[n->next].prev = n->prev;
	else
		L->tail = n->prev;
	L->len--;
	n->list = CACHE_NOLIST;
}

void cache_node_free(struct cache *c, struct cache_node *n)
{
	if (n->list != CACHE_NOLIST)
		cache_list_unlink(c, n);
	cache_table_del(&c->table, n->key);
	n->ghost = 0;
	n->next = c->free_head;
	c->free_head = cache_node_idx(c, n);
}

static struct cache_node *node_new(struct cache *c, uint64_t key)
{
	struct cache_node *n = cache_node_at(c, c->free_head);

	/* The array holds every resident and ghost node plus slack, see
	 * cache_create(); running out is a bug. */
	if (n == NULL)
		abort();
	c->free_head = n->next;
	n->key = key;
	n->prev = n->next = CACHE_NIL;
	n->list = CACHE_NOLIST;
	n->ghost = 0;
	n->freq = 0;
	n->was = CACHE_NOLIST;
	cache_table_put(&c->table, key, cache_node_idx(c, n));
	return n;
}

static void evict_prefetched(struct cache *c)
{
	struct cache_node *t = cache_list_tail(c, CACHE_PQ);

	c->st.prefetch_evicted++;
	cache_note_evicted(c);
	cache_node_free(c, t);
}

void cache_make_room(struct cache *c, const struct cache_node *incoming)
{
	while (c->resident >= c->cfg.capacity) {
		size_t pq = cache_list_len(c, CACHE_PQ);

		if (pq > 0 && (pq >= c->pq_max || c->resident == pq))
			evict_prefetched(c);
		else if (!c->ops->evict(c, incoming)) {
			if (pq == 0)
				return; /* nothing resident: cannot happen */
			evict_prefetched(c);
		}
	}
}

struct cache *cache_create(const struct cache_config *cfg, char *errmsg)
{
	struct cache *c;
	size_t cap = cfg->capacity;

	if (cap == 0 || cap > ((size_t)1 << 30)) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN,
			 "cache capacity %zu blocks: must be 1..2^30", cap);
		return NULL;
	}
	if (cfg->prefetch_pct > 100) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN,
			 "prefetch share %u%%: must be 0..100",
			 cfg->prefetch_pct);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto err_nomem;
	c->cfg = *cfg;
	switch (cfg->policy) {
	case CACHE_LRU:
		c->ops = &cache_lru_ops;
		break;
	case CACHE_ARC:
		c->ops = &cache_arc_ops;
		break;
	case CACHE_S3FIFO:
		c->ops = &cache_s3fifo_ops;
		break;
	default:
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "unknown cache policy %d",
			 (int)cfg->policy);
		free(c);
		return NULL;
	}
	/* Resident <= cap; ARC's directory <= 2 cap besides the prefetch
	 * FIFO (<= cap); S3-FIFO's ghosts <= cap; one node in flight. */
	c->nnodes = (uint32_t)(3 * cap + 2);
	c->nodes = malloc((size_t)c->nnodes * sizeof(*c->nodes));
	if (c->nodes == NULL)
		goto err_after_alloc;
	if (cache_table_init(&c->table, c->nnodes) != 0)
		goto err_after_nodes;
	for (uint32_t i = 0; i < c->nnodes; i++) {
		c->nodes[i].list = CACHE_NOLIST;
		c->nodes[i].next = i + 1 < c->nnodes ? i + 1 : CACHE_NIL;
	}
	c->free_head = 0;
	for (unsigned l = 0; l < CACHE_NLISTS; l++)
		c->lists[l] = (struct cache_list){CACHE_NIL, CACHE_NIL, 0};
	c->pq_max = cap * cfg->prefetch_pct / 100;
	if (c->ops->init != NULL && c->ops->init(c) != 0)
		goto err_after_table;
	return c;

err_after_table:
	cache_table_close(&c->table);
err_after_nodes:
	free(c->nodes);
err_after_alloc:
	free(c);
err_nomem:
	snprintf(errmsg, OMBRA_ERRMSG_LEN, "cache of %zu blocks: out of memory",
		 cap);
	return NULL;
}

void cache_destroy(struct cache *c)
{
	if (c == NULL)
		return;
	cache_table_close(&c->table);
	free(c->nodes);
	free(c);
}

static struct cache_node *lookup(const struct cache *c, uint64_t key)
{
	uint32_t i = cache_table_get(&c->table, key);

	return i == CACHE_TABLE_NONE ? NULL : &c->nodes[i];
}

enum cache_outcome cache_access_outcome(struct cache *c, uint64_t key,
					bool is_write)
{
	struct cache_node *n = lookup(c, key);
	enum cache_outcome hit = CACHE_HIT;

	if (is_write)
		c->st.writes++;
	else
		c->st.reads++;
	if (n != NULL && !n->ghost) {
		if (n->list == CACHE_PQ) {
			/* First demand touch of a prefetched block. */
			cache_list_unlink(c, n);
			if (is_write)
				c->st.prefetch_overwritten++;
			else
				c->st.prefetch_used++;
			c->ops->insert(c, n, false);
			n->was = CACHE_NOLIST;
			hit = CACHE_HIT_PREFETCHED;
		} else {
			c->ops->hit(c, n);
		}
		if (is_write)
			c->st.write_hits++;
		else
			c->st.read_hits++;
		return hit;
	}
	if (n == NULL)
		n = node_new(c, key);
	c->ops->insert(c, n, true);
	c->resident++;
	return CACHE_MISS;
}

bool cache_access(struct cache *c, uint64_t key, bool is_write)
{
	return cache_access_outcome(c, key, is_write) != CACHE_MISS;
}

bool cache_prefetch(struct cache *c, uint64_t key)
{
	struct cache_node *n;

	if (c->pq_max == 0)
		return false;
	n = lookup(c, key);
	if (n != NULL && !n->ghost) {
		c->st.prefetch_redundant++;
		return false;
	}
	if (n != NULL) {
		/* Keep the ghost history for the first demand access. */
		n->was = n->list;
		cache_list_unlink(c, n);
		n->ghost = 0;
	} else {
		n = node_new(c, key);
	}
	cache_make_room(c, n);
	cache_list_push_head(c, CACHE_PQ, n);
	c->resident++;
	c->st.prefetch_issued++;
	return true;
}

bool cache_contains(const struct cache *c, uint64_t key)
{
	const struct cache_node *n = lookup(c, key);

	return n != NULL && !n->ghost;
}

size_t cache_prefetched_unused(const struct cache *c)
{
	return cache_list_len(c, CACHE_PQ);
}

size_t cache_resident(const struct cache *c)
{
	return c->resident;
}

void cache_get_stats(const struct cache *c, struct cache_stats *out)
{
	*out = c->st;
}
