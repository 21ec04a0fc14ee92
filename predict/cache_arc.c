/* cache_arc.c: Adaptive Replacement Cache, N. Megiddo and D. S. Modha,
 * "ARC: A Self-Tuning, Low Overhead Replacement Cache", USENIX FAST 2003,
 * Fig. 4 (cases I-IV and REPLACE), written from the paper.
 *
 * T1/T2 hold resident blocks seen once / at least twice recently, B1/B2
 * their ghosts; p is the adaptive target size of T1.  With prefetched
 * blocks in the generic FIFO the resident lists hold c minus that FIFO;
 * REPLACE then runs only when the generic layer picks a policy victim,
 * which with no prefetching is exactly when the paper's ARC replaces. */
#include "predict/cache_impl.h"

enum { T1 = 0, T2 = 1, B1 = 2, B2 = 3 };

static void arc_hit(struct cache *c, struct cache_node *n)
{
	/* Case I: move x to the MRU position of T2. */
	cache_list_unlink(c, n);
	cache_list_push_head(c, T2, n);
}

static void to_ghost(struct cache *c, unsigned from, unsigned ghost)
{
	struct cache_node *t = cache_list_tail(c, from);

	cache_note_evicted(c);
	cache_list_unlink(c, t);
	t->ghost = 1;
	cache_list_push_head(c, ghost, t);
}

/* REPLACE(x, p). */
static bool arc_evict(struct cache *c, const struct cache_node *incoming)
{
	size_t t1 = cache_list_len(c, T1);
	bool x_in_b2 =
	    incoming != NULL && incoming->ghost && incoming->list == B2;

	if (t1 == 0 && cache_list_len(c, T2) == 0)
		return false;
	if (t1 >= 1 && (t1 > c->arc_p || (x_in_b2 && t1 == c->arc_p) ||
			cache_list_len(c, T2) == 0))
		to_ghost(c, T1, B1);
	else
		to_ghost(c, T2, B2);
	return true;
}

/* The directory bounds of the paper (|T1| + |B1| <= c, all four lists
 * <= 2c).  The paper's cases keep them by themselves; a block coming out
 * of the prefetch FIFO adds to the directory without a case doing so, and
 * this trims the oldest ghosts then. */
static void arc_trim(struct cache *c)
{
	size_t cap = c->cfg.capacity;

	while (cache_list_len(c, T1) + cache_list_len(c, B1) > cap &&
	       cache_list_len(c, B1) > 0)
		cache_node_free(c, cache_list_tail(c, B1));
	while (cache_list_len(c, T1) + cache_list_len(c, T2) +
		   cache_list_len(c, B1) + cache_list_len(c, B2) >
	       2 * cap) {
		unsigned g = cache_list_len(c, B2) > 0 ? B2 : B1;

		if (cache_list_len(c, g) == 0)
			break;
		cache_node_free(c, cache_list_tail(c, g));
	}
}

static void arc_insert(struct cache *c, struct cache_node *n, bool need_room)
{
	size_t cap = c->cfg.capacity;
	unsigned g = n->ghost ? n->list : n->was;
	size_t b1 = cache_list_len(c, B1), b2 = cache_list_len(c, B2);

	if (g == B1) {
		/* Case II: adapt p towards T1, replace, x to T2. */
		size_t d = (b1 >= b2 || b1 == 0) ? 1 : b2 / b1;

		c->arc_p = c->arc_p + d < cap ? c->arc_p + d : cap;
	} else if (g == B2) {
		/* Case III: adapt p towards T2, replace, x to T2. */
		size_t d = (b2 >= b1 || b2 == 0) ? 1 : b1 / b2;

		c->arc_p = c->arc_p > d ? c->arc_p - d : 0;
	} else {
		/* Case IV: x in no list. */
		size_t l1 = cache_list_len(c, T1) + b1;
		size_t all = l1 + cache_list_len(c, T2) + b2;

		if (l1 >= cap) {
			if (cache_list_len(c, T1) < cap) {
				cache_node_free(c, cache_list_tail(c, B1));
			} else {
				struct cache_node *t = cache_list_tail(c, T1);

				cache_note_evicted(c);
				cache_node_free(c, t);
			}
		} else if (all >= 2 * cap && b2 > 0) {
			cache_node_free(c, cache_list_tail(c, B2));
		}
		if (need_room)
			cache_make_room(c, n);
		cache_list_push_head(c, T1, n);
		arc_trim(c);
		return;
	}
	if (need_room)
		cache_make_room(c, n);
	if (n->ghost) {
		cache_list_unlink(c, n);
		n->ghost = 0;
	}
	cache_list_push_head(c, T2, n);
	arc_trim(c);
}

static int arc_init(struct cache *c)
{
	c->arc_p = 0;
	return 0;
}

const struct cache_policy_ops cache_arc_ops = {
    .init = arc_init,
    .hit = arc_hit,
    .insert = arc_insert,
    .evict = arc_evict,
};
