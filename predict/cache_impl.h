/* cache_impl.h: internals shared by predict/cache.c and the eviction
 * policies (cache_lru.c, cache_arc.c, cache_s3fifo.c); not a public API.
 *
 * Every key the cache knows (resident or ghost) has one node in a
 * preallocated array, found through the hash table.  A node is on at most
 * one list; lists are intrusive, doubly linked by node index, head = most
 * recent insertion.  The policy owns lists 0..CACHE_PQ-1 and may keep
 * ghost (non-resident) nodes there; the generic layer owns CACHE_PQ, the
 * FIFO of unused prefetched blocks.  Nothing here fails: the node array
 * has room for capacity resident plus capacity ghost nodes. */
#ifndef OMBRA_PREDICT_CACHE_IMPL_H
#define OMBRA_PREDICT_CACHE_IMPL_H

#include "predict/cache.h"
#include "predict/cache_table.h"

#define CACHE_NIL UINT32_MAX
#define CACHE_NLISTS 5
#define CACHE_PQ (CACHE_NLISTS - 1) /* unused prefetched blocks */
#define CACHE_NOLIST 0xff

struct cache_node {
	uint64_t key;
	uint32_t prev; /* towards head (newer) */
	uint32_t next; /* towards tail (older) */
	uint8_t list;  /* CACHE_NOLIST when free */
	uint8_t ghost; /* on a policy ghost list (not resident) */
	uint8_t freq;  /* S3-FIFO access counter */
	uint8_t was;   /* prefetched ghost: the ghost list it left, or
			  CACHE_NOLIST */
};

struct cache_list {
	uint32_t head, tail;
	size_t len;
};

struct cache;

/* A policy's hooks.  Space for resident blocks is managed by the generic
 * layer: a policy inserting a resident block calls cache_make_room() at
 * the point its algorithm replaces, and implements evict() to remove one
 * resident block of its own (to a ghost list or free). */
struct cache_policy_ops {
	int (*init)(struct cache *c);
	/* Demand access hit node n, resident on a policy list. */
	void (*hit)(struct cache *c, struct cache_node *n);
	/* Make n (fresh, or ghost when n->ghost, or leaving the prefetch
	 * FIFO with need_room false and ghost history in n->was) a resident
	 * policy block. */
	void (*insert)(struct cache *c, struct cache_node *n, bool need_room);
	/* Evict one resident policy block; false when there is none.
	 * incoming: the node being inserted (may be on a ghost list). */
	bool (*evict)(struct cache *c, const struct cache_node *incoming);
};

struct cache {
	struct cache_config cfg;
	const struct cache_policy_ops *ops;
	struct cache_node *nodes;
	uint32_t nnodes;
	uint32_t free_head; /* free nodes chained through next */
	struct cache_table table;
	struct cache_list lists[CACHE_NLISTS];
	size_t resident; /* policy resident + prefetch FIFO */
	size_t pq_max;	 /* prefetch FIFO share, blocks */
	struct cache_stats st;
	/* Policy state. */
	size_t arc_p;	  /* ARC target size of T1 */
	size_t s3_small;  /* S3-FIFO small queue target */
	size_t ghost_max; /* ghost entries a policy may keep */
};

extern const struct cache_policy_ops cache_lru_ops;
extern const struct cache_policy_ops cache_arc_ops;
extern const struct cache_policy_ops cache_s3fifo_ops;

static inline struct cache_node *cache_node_at(struct cache *c, uint32_t i)
{
	return i == CACHE_NIL ? NULL : &c->nodes[i];
}

static inline uint32_t cache_node_idx(const struct cache *c,
				      const struct cache_node *n)
{
	return (uint32_t)(n - c->nodes);
}

/* List operations (O(1)). */
void cache_list_push_head(struct cache *c, unsigned l, struct cache_node *n);
void cache_list_unlink(struct cache *c, struct cache_node *n);
static inline struct cache_node *cache_list_tail(struct cache *c, unsigned l)
{
	return cache_node_at(c, c->lists[l].tail);
}

static inline size_t cache_list_len(const struct cache *c, unsigned l)
{
	return c->lists[l].len;
}

/* Forget node n entirely (unlink, drop from the table, free it). */
void cache_node_free(struct cache *c, struct cache_node *n);

/* A resident policy block leaves the cache (counts an eviction); the
 * policy then frees it or moves it to a ghost list itself. */
static inline void cache_note_evicted(struct cache *c)
{
	c->resident--;
	c->st.evictions++;
}

/* Evict until one more resident block fits, prefetched blocks first (see
 * cache.h); incoming is passed on to the policy's evict(). */
void cache_make_room(struct cache *c, const struct cache_node *incoming);

#endif
