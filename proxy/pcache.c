/* pcache.c: the proxy's registry of its prefetch cache entries (see
 * pcache.h): a chained hash table of (volume id, segment) -> holder node,
 * block bitmap, used bitmap and per-block source tags, with an intrusive
 * LRU list for the bounds (entries, blocks).  Failure: allocation failures
 * are reported by return values, never abort. */
#include "pcache.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

#define WORDS (PCACHE_MAX_BLOCKS / 64u)

struct pentry {
	uint64_t volume_id, seg, node_id;
	uint32_t n_blocks, n_unused;
	uint64_t bits[WORDS];
	uint64_t used[WORDS];		/* subset of bits */
	uint8_t src[PCACHE_MAX_BLOCKS]; /* tag of each recorded block */
	struct pentry *next_hash;
	struct pentry *lru_prev, *lru_next; /* head = most recently used */
};

struct pcache {
	struct pentry **buckets;
	size_t n_buckets; /* power of two */
	size_t count, max;
	uint64_t blocks, unused, max_blocks;
	struct pentry *lru_head, *lru_tail;
	pcache_evict_fn evict;
	void *evict_arg;
};

/* SplitMix64 finalizer (Steele et al., OOPSLA'14) over the key. */
static size_t bucket_of(const struct pcache *c, uint64_t vol, uint64_t seg)
{
	uint64_t z = vol * 0x9e3779b97f4a7c15ull ^ seg;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (size_t)(z & (c->n_buckets - 1));
}

int pcache_create(size_t max_segments, struct pcache **out)
{
	struct pcache *c;
	size_t nb = 16;

	if (max_segments == 0)
		return OMBRA_EINVAL;
	while (nb < max_segments * 2 && nb < ((size_t)1 << 30))
		nb <<= 1;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return OMBRA_ENOMEM;
	c->buckets = calloc(nb, sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return OMBRA_ENOMEM;
	}
	c->n_buckets = nb;
	c->max = max_segments;
	*out = c;
	return 0;
}

void pcache_destroy(struct pcache *c)
{
	struct pentry *e, *next;

	if (c == NULL)
		return;
	for (e = c->lru_head; e != NULL; e = next) {
		next = e->lru_next;
		free(e);
	}
	free(c->buckets);
	free(c);
}

static struct pentry *find(const struct pcache *c, uint64_t vol, uint64_t seg)
{
	struct pentry *e = c->buckets[bucket_of(c, vol, seg)];

	while (e != NULL && (e->volume_id != vol || e->seg != seg))
		e = e->next_hash;
	return e;
}

static void lru_unlink(struct pcache *c, struct pentry *e)
{
	if (e->lru_prev != NULL)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->lru_head = e->lru_next;
	if (e->lru_next != NULL)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct pcache *c, struct pentry *e)
{
	e->lru_prev = NULL;
	e->lru_next = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->lru_prev = e;
	c->lru_head = e;
	if (c->lru_tail == NULL)
		c->lru_tail = e;
}

static void entry_remove(struct pcache *c, struct pentry *e)
{
	struct pentry **pp = &c->buckets[bucket_of(c, e->volume_id, e->seg)];

	while (*pp != e)
		pp = &(*pp)->next_hash;
	*pp = e->next_hash;
	lru_unlink(c, e);
	c->blocks -= e->n_blocks;
	c->unused -= e->n_unused;
	c->count--;
	free(e);
}

/* Remove e, telling the eviction callback (unused blocks per tag). */
static void entry_evict(struct pcache *c, struct pentry *e)
{
	struct pcache_gone g;

	if (c->evict != NULL) {
		memset(&g, 0, sizeof(g));
		g.volume_id = e->volume_id;
		g.seg = e->seg;
		g.node_id = e->node_id;
		g.blocks = e->n_blocks;
		for (uint32_t b = 0; b < PCACHE_MAX_BLOCKS; b++) {
			uint64_t mask = UINT64_C(1) << (b % 64);

			if ((e->bits[b / 64] & mask) != 0 &&
			    (e->used[b / 64] & mask) == 0)
				g.unused[e->src[b]]++;
		}
		c->evict(c->evict_arg, &g);
	}
	entry_remove(c, e);
}

/* Set (on: tag src, unused) or clear bits [first, first+n); returns how
 * many changed.  Cleared blocks that were unused are added per tag to
 * unused (may be NULL). */
static uint32_t bits_change(struct pcache *c, struct pentry *e, uint32_t first,
			    uint32_t n, bool on, unsigned src, uint64_t *unused)
{
	uint32_t b, changed = 0;

	for (b = first; b < first + n; b++) {
		uint64_t mask = UINT64_C(1) << (b % 64);
		bool set = (e->bits[b / 64] & mask) != 0;
		bool used = (e->used[b / 64] & mask) != 0;

		if (set == on)
			continue;
		if (on) {
			e->bits[b / 64] |= mask;
			e->src[b] = (uint8_t)src;
			e->n_unused++;
			c->unused++;
		} else {
			e->bits[b / 64] &= ~mask;
			e->used[b / 64] &= ~mask;
			if (!used) {
				e->n_unused--;
				c->unused--;
				if (unused != NULL)
					unused[e->src[b]]++;
			}
		}
		changed++;
	}
	return changed;
}

static bool range_ok(uint32_t first, uint32_t n)
{
	return n <= PCACHE_MAX_BLOCKS && first <= PCACHE_MAX_BLOCKS - n;
}

void pcache_set_evict(struct pcache *c, uint64_t max_blocks, pcache_evict_fn fn,
		      void *arg)
{
	c->max_blocks = max_blocks;
	c->evict = fn;
	c->evict_arg = arg;
}

bool pcache_add(struct pcache *c, uint64_t volume_id, uint64_t seg,
		uint64_t node_id, uint32_t first, uint32_t n)
{
	return pcache_add_src(c, volume_id, seg, node_id, first, n, 0);
}

bool pcache_add_src(struct pcache *c, uint64_t volume_id, uint64_t seg,
		    uint64_t node_id, uint32_t first, uint32_t n, unsigned src)
{
	struct pentry *e;
	uint32_t added;

	if (node_id == 0 || n == 0 || !range_ok(first, n) || src >= PCACHE_SRCS)
		return false;
	e = find(c, volume_id, seg);
	if (e != NULL && e->node_id != node_id) {
		entry_evict(c, e); /* one holder per segment */
		e = NULL;
	}
	if (e == NULL) {
		size_t b;

		if (c->count >= c->max && c->lru_tail != NULL)
			entry_evict(c, c->lru_tail);
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return false;
		e->volume_id = volume_id;
		e->seg = seg;
		e->node_id = node_id;
		b = bucket_of(c, volume_id, seg);
		e->next_hash = c->buckets[b];
		c->buckets[b] = e;
		c->count++;
	} else {
		lru_unlink(c, e);
	}
	lru_push_front(c, e);
	added = bits_change(c, e, first, n, true, src, NULL);
	e->n_blocks += added;
	c->blocks += added;
	/* The block bound: older entries go first, never the one just
	 * added to (it is at the head). */
	while (c->max_blocks > 0 && c->blocks > c->max_blocks &&
	       c->lru_tail != NULL && c->lru_tail != e)
		entry_evict(c, c->lru_tail);
	return true;
}

uint32_t pcache_drop(struct pcache *c, uint64_t volume_id, uint64_t seg,
		     uint32_t first, uint32_t n)
{
	return pcache_drop_src(c, volume_id, seg, first, n, NULL);
}

uint32_t pcache_drop_src(struct pcache *c, uint64_t volume_id, uint64_t seg,
			 uint32_t first, uint32_t n, uint64_t *unused)
{
	struct pentry *e = find(c, volume_id, seg);
	uint32_t dropped;

	if (e == NULL)
		return 0;
	if (n == 0) {
		first = 0;
		n = PCACHE_MAX_BLOCKS;
	}
	if (!range_ok(first, n))
		return 0;
	dropped = bits_change(c, e, first, n, false, 0, unused);
	e->n_blocks -= dropped;
	c->blocks -= dropped;
	if (e->n_blocks == 0)
		entry_remove(c, e);
	return dropped;
}

void pcache_drop_volume(struct pcache *c, uint64_t volume_id)
{
	struct pentry *e = c->lru_head, *next;

	for (; e != NULL; e = next) {
		next = e->lru_next;
		if (e->volume_id == volume_id)
			entry_remove(c, e);
	}
}

uint64_t pcache_lookup(struct pcache *c, uint64_t volume_id, uint64_t seg,
		       uint32_t first, uint32_t n)
{
	struct pentry *e = find(c, volume_id, seg);
	uint32_t b;

	if (e == NULL || n == 0 || !range_ok(first, n))
		return 0;
	for (b = first; b < first + n; b++)
		if ((e->bits[b / 64] & (UINT64_C(1) << (b % 64))) == 0)
			return 0;
	lru_unlink(c, e);
	lru_push_front(c, e);
	return e->node_id;
}

uint64_t pcache_holder(const struct pcache *c, uint64_t volume_id, uint64_t seg)
{
	const struct pentry *e = find(c, volume_id, seg);

	return e != NULL ? e->node_id : 0;
}

uint32_t pcache_use(struct pcache *c, uint64_t volume_id, uint64_t seg,
		    uint32_t first, uint32_t n, uint64_t *hits,
		    uint64_t *first_use)
{
	struct pentry *e = find(c, volume_id, seg);
	uint32_t b, found = 0;

	if (e == NULL || n == 0 || !range_ok(first, n))
		return 0;
	for (b = first; b < first + n; b++) {
		uint64_t mask = UINT64_C(1) << (b % 64);

		if ((e->bits[b / 64] & mask) == 0)
			continue;
		found++;
		if (hits != NULL)
			hits[e->src[b]]++;
		if ((e->used[b / 64] & mask) != 0)
			continue;
		e->used[b / 64] |= mask;
		e->n_unused--;
		c->unused--;
		if (first_use != NULL)
			first_use[e->src[b]]++;
	}
	if (found > 0) {
		lru_unlink(c, e);
		lru_push_front(c, e);
	}
	return found;
}

bool pcache_present(const struct pcache *c, uint64_t volume_id, uint64_t seg,
		    uint32_t b)
{
	const struct pentry *e = find(c, volume_id, seg);

	return e != NULL && b < PCACHE_MAX_BLOCKS &&
	       (e->bits[b / 64] & (UINT64_C(1) << (b % 64))) != 0;
}

uint64_t pcache_unused_blocks(const struct pcache *c)
{
	return c->unused;
}

uint64_t pcache_volume_blocks(const struct pcache *c, uint64_t volume_id)
{
	uint64_t n = 0;

	for (const struct pentry *e = c->lru_head; e != NULL; e = e->lru_next)
		if (e->volume_id == volume_id)
			n += e->n_blocks;
	return n;
}

size_t pcache_segments(const struct pcache *c)
{
	return c->count;
}

uint64_t pcache_blocks(const struct pcache *c)
{
	return c->blocks;
}
