/* test_cache.c: predict/cache (LRU, ARC, S3-FIFO, prefetch accounting)
 * and predict/cache_table against reference models and known answers:
 * the hash table against a plain array, LRU hit for hit against a naive
 * O(n) LRU, ARC's and S3-FIFO's list invariants under random load and
 * their scan resistance against LRU, and the prefetch FIFO's eviction
 * order and counters on hand-checked sequences.  Fails (cmocka) on the
 * first disagreement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "predict/cache.h"
#include "predict/cache_impl.h"
#include "predict/cache_table.h"

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct cache *mk(enum cache_policy p, size_t cap, unsigned pct)
{
	struct cache_config cfg = {
	    .policy = p, .capacity = cap, .prefetch_pct = pct};
	char err[OMBRA_ERRMSG_LEN];
	struct cache *c = cache_create(&cfg, err);

	assert_non_null(c);
	return c;
}

static void test_table_vs_array(void **state)
{
	enum { KEYS = 3000, OPS = 300000 };
	static uint32_t model[KEYS];
	struct cache_table t;

	(void)state;
	assert_int_equal(cache_table_init(&t, KEYS), 0);
	for (size_t i = 0; i < KEYS; i++)
		model[i] = CACHE_TABLE_NONE;
	for (size_t i = 0; i < OPS; i++) {
		uint64_t k = rnd() % KEYS;
		/* Keys far apart in value, same low bits: probe runs. */
		uint64_t key = k * 0x100000000ULL + (k & 7);

		switch (rnd() % 3) {
		case 0:
			model[k] = (uint32_t)(rnd() % 1000);
			cache_table_put(&t, key, model[k]);
			break;
		case 1:
			model[k] = CACHE_TABLE_NONE;
			cache_table_del(&t, key);
			break;
		default:
			assert_int_equal(cache_table_get(&t, key), model[k]);
		}
	}
	for (size_t k = 0; k < KEYS; k++)
		assert_int_equal(
		    cache_table_get(&t, k * 0x100000000ULL + (k & 7)),
		    model[k]);
	cache_table_close(&t);
}

/* Naive LRU: an array ordered most recent first. */
static bool naive_lru(uint64_t *slots, size_t *n, size_t cap, uint64_t key)
{
	size_t i;
	bool hit = false;

	for (i = 0; i < *n; i++)
		if (slots[i] == key)
			break;
	if (i < *n)
		hit = true;
	else if (*n < cap)
		i = (*n)++;
	else
		i = cap - 1;
	memmove(slots + 1, slots, i * sizeof(*slots));
	slots[0] = key;
	return hit;
}

static void test_lru_vs_naive(void **state)
{
	enum { CAP = 64, OPS = 100000 };
	uint64_t slots[CAP];
	size_t n = 0;
	struct cache *c = mk(CACHE_LRU, CAP, 0);
	struct cache_stats st;
	uint64_t hits = 0;

	(void)state;
	for (size_t i = 0; i < OPS; i++) {
		/* Skewed keys: a hot range and a long tail. */
		uint64_t key = rnd() % 4 ? rnd() % 80 : rnd() % 5000;
		bool want = naive_lru(slots, &n, CAP, key);

		assert_int_equal(cache_access(c, key, false), want);
		hits += want;
	}
	cache_get_stats(c, &st);
	assert_int_equal(st.read_hits, hits);
	assert_int_equal(st.reads, OPS);
	assert_int_equal(cache_resident(c), CAP);
	for (size_t i = 0; i < CAP; i++)
		assert_true(cache_contains(c, slots[i]));
	cache_destroy(c);
}

static void check_arc(struct cache *c)
{
	size_t cap = c->cfg.capacity;
	size_t t1 = cache_list_len(c, 0), t2 = cache_list_len(c, 1);
	size_t b1 = cache_list_len(c, 2), b2 = cache_list_len(c, 3);

	assert_true(t1 + t2 + cache_list_len(c, CACHE_PQ) <= cap);
	assert_int_equal(t1 + t2 + cache_list_len(c, CACHE_PQ),
			 cache_resident(c));
	assert_true(t1 + b1 <= cap);
	assert_true(t1 + t2 + b1 + b2 <= 2 * cap);
	assert_true(c->arc_p <= cap);
}

static void test_arc_invariants(void **state)
{
	struct cache *c = mk(CACHE_ARC, 100, 20);

	(void)state;
	for (size_t i = 0; i < 200000; i++) {
		uint64_t key = rnd() % 3 ? rnd() % 150 : rnd() % 3000;

		if (rnd() % 5 == 0)
			cache_prefetch(c, key + 1);
		else
			cache_access(c, key, rnd() % 7 == 0);
		if (i % 97 == 0)
			check_arc(c);
	}
	check_arc(c);
	cache_destroy(c);
}

static void test_s3fifo_invariants(void **state)
{
	struct cache *c = mk(CACHE_S3FIFO, 100, 20);

	(void)state;
	for (size_t i = 0; i < 200000; i++) {
		uint64_t key = rnd() % 3 ? rnd() % 150 : rnd() % 3000;

		if (rnd() % 5 == 0)
			cache_prefetch(c, key + 1);
		else
			cache_access(c, key, false);
		assert_true(cache_resident(c) <= 100);
		assert_int_equal(cache_list_len(c, 0) + cache_list_len(c, 1) +
				     cache_list_len(c, CACHE_PQ),
				 cache_resident(c));
		assert_true(cache_list_len(c, 2) <= c->ghost_max);
	}
	cache_destroy(c);
}

/* A hot set read twice between long one-time scans: ARC (the hot blocks
 * are in T2) and S3-FIFO (they move to M) keep it, LRU loses it to every
 * scan and hits only on the second read. */
static uint64_t hot_hits(enum cache_policy p)
{
	struct cache *c = mk(p, 100, 0);
	uint64_t scan = 1000000, hits = 0;

	for (int round = 0; round < 200; round++) {
		for (int pass = 0; pass < 2; pass++)
			for (uint64_t k = 0; k < 50; k++)
				hits += cache_access(c, k, false);
		for (int i = 0; i < 150; i++)
			cache_access(c, scan++, false);
	}
	cache_destroy(c);
	return hits;
}

static void test_scan_resistance(void **state)
{
	(void)state;
	assert_int_equal(hot_hits(CACHE_LRU), 200 * 50);
	/* All but the first pass of the first round. */
	assert_int_equal(hot_hits(CACHE_ARC), 199 * 100 + 50);
	assert_int_equal(hot_hits(CACHE_S3FIFO), 199 * 100 + 50);
}

/* ARC's learning: a B1 hit grows p and lands in T2 (Fig. 4 case II). */
static void arc_setup_b1(struct cache *c)
{
	/* 0 twice: T2 = {0}; 1, 2, 3: T1 = {3, 2, 1}; 4: L1 < c and the
	 * directory holds c pages, so REPLACE moves T1's LRU (1) to B1. */
	assert_false(cache_access(c, 0, false));
	assert_true(cache_access(c, 0, false));
	for (uint64_t k = 1; k < 5; k++)
		assert_false(cache_access(c, k, false));
	assert_int_equal(cache_list_len(c, 2), 1);
	assert_int_equal(c->nodes[cache_table_get(&c->table, 1)].list, 2);
	assert_int_equal(c->arc_p, 0);
}

static void test_arc_adapts(void **state)
{
	struct cache *c = mk(CACHE_ARC, 4, 0);

	(void)state;
	arc_setup_b1(c);
	assert_false(cache_access(c, 1, false));
	assert_int_equal(c->arc_p, 1);
	assert_int_equal(c->nodes[cache_table_get(&c->table, 1)].list, 1);
	/* REPLACE took T1's LRU (2) since |T1| = 3 > p = 0. */
	assert_false(cache_contains(c, 2));
	assert_int_equal(c->nodes[cache_table_get(&c->table, 2)].list, 2);
	assert_true(cache_access(c, 1, false));
	check_arc(c);
	cache_destroy(c);
}

static void test_prefetch_order(void **state)
{
	struct cache *c = mk(CACHE_LRU, 10, 50); /* FIFO share 5 */
	struct cache_stats st;

	(void)state;
	for (uint64_t k = 0; k < 10; k++)
		cache_access(c, k, false);
	/* Below its share, a prefetch evicts the LRU demand block. */
	assert_true(cache_prefetch(c, 100));
	assert_false(cache_contains(c, 0));
	/* A demand miss with the FIFO below its share: still LRU demand. */
	cache_access(c, 200, false);
	assert_false(cache_contains(c, 1));
	assert_true(cache_contains(c, 100));
	for (uint64_t k = 101; k < 105; k++)
		assert_true(cache_prefetch(c, k));
	/* FIFO at its share (5): a demand miss evicts the oldest prefetch. */
	cache_access(c, 201, false);
	assert_false(cache_contains(c, 100));
	assert_true(cache_contains(c, 6));
	/* Below its share again (4): the next prefetch takes demand 6. */
	assert_true(cache_prefetch(c, 105));
	assert_false(cache_contains(c, 6));
	/* At its share: a prefetch evicts the oldest prefetch (101). */
	assert_true(cache_prefetch(c, 106));
	assert_false(cache_contains(c, 101));
	/* Already resident: redundant, not issued. */
	assert_false(cache_prefetch(c, 106));
	assert_false(cache_prefetch(c, 7));
	/* Reading a prefetched block: hit, used; writing one: overwritten. */
	assert_true(cache_access(c, 102, false));
	assert_true(cache_access(c, 103, true));
	cache_get_stats(c, &st);
	assert_int_equal(st.prefetch_issued, 7);
	assert_int_equal(st.prefetch_redundant, 2);
	assert_int_equal(st.prefetch_evicted, 2);
	assert_int_equal(st.prefetch_used, 1);
	assert_int_equal(st.prefetch_overwritten, 1);
	assert_int_equal(cache_list_len(c, CACHE_PQ), 3); /* 104..106 */
	assert_int_equal(cache_resident(c), 10);
	cache_destroy(c);
}

/* Prefetched-but-unused blocks are demoted first in every policy: with
 * the prefetch FIFO at its share, a demand miss evicts the oldest unused
 * prefetched block and no demand block; cache_access_outcome() tells a
 * first touch of a prefetched block from a plain hit and a miss. */
static void test_demote_unused_all_policies(void **state)
{
	(void)state;
	for (int p = CACHE_LRU; p <= CACHE_S3FIFO; p++) {
		struct cache *c = mk((enum cache_policy)p, 10, 50);

		for (uint64_t k = 0; k < 5; k++)
			cache_access(c, k, false);
		for (uint64_t k = 100; k < 105; k++)
			assert_true(cache_prefetch(c, k));
		assert_int_equal(cache_resident(c), 10);
		assert_int_equal(cache_access_outcome(c, 200, false),
				 CACHE_MISS);
		for (uint64_t k = 0; k < 5; k++)
			assert_true(cache_contains(c, k));
		assert_true(cache_contains(c, 200));
		assert_false(cache_contains(c, 100));
		assert_int_equal(cache_access_outcome(c, 101, false),
				 CACHE_HIT_PREFETCHED);
		assert_int_equal(cache_access_outcome(c, 101, false),
				 CACHE_HIT);
		cache_destroy(c);
	}
}

/* Perfect next-block prefetching on a sequential read: every read after
 * the first is served by prefetch, in every policy. */
static void test_sequential_prefetch(void **state)
{
	(void)state;
	for (int p = CACHE_LRU; p <= CACHE_S3FIFO; p++) {
		struct cache *c = mk((enum cache_policy)p, 8, 25);
		struct cache_stats st;

		for (uint64_t k = 0; k < 10000; k++) {
			assert_int_equal(cache_access(c, k, false), k > 0);
			cache_prefetch(c, k + 1);
		}
		cache_get_stats(c, &st);
		assert_int_equal(st.prefetch_issued, 10000);
		assert_int_equal(st.prefetch_used, 9999);
		assert_int_equal(st.read_hits, 9999);
		cache_destroy(c);
	}
}

/* A key in ARC's B1 that is prefetched and then read counts as the B1
 * hit it would have been: it lands in T2 and p grows. */
static void test_arc_prefetched_ghost(void **state)
{
	struct cache *c = mk(CACHE_ARC, 4, 50);

	(void)state;
	arc_setup_b1(c);
	assert_true(cache_prefetch(c, 1));
	assert_true(cache_access(c, 1, false));
	assert_int_equal(c->nodes[cache_table_get(&c->table, 1)].list, 1);
	assert_int_equal(c->arc_p, 1);
	check_arc(c);
	cache_destroy(c);
}

static void test_bad_config(void **state)
{
	char err[OMBRA_ERRMSG_LEN];
	struct cache_config cfg = {.policy = CACHE_LRU, .capacity = 0};
	enum cache_policy p;

	(void)state;
	assert_null(cache_create(&cfg, err));
	assert_non_null(strstr(err, "capacity"));
	cfg.capacity = 10;
	cfg.prefetch_pct = 101;
	assert_null(cache_create(&cfg, err));
	assert_non_null(strstr(err, "prefetch share"));
	assert_int_equal(cache_policy_parse("s3fifo", &p), 0);
	assert_int_equal(p, CACHE_S3FIFO);
	assert_int_equal(cache_policy_parse("lfu", &p), -1);
	assert_string_equal(cache_policy_name(CACHE_ARC), "arc");
	/* No prefetch share: prefetching is off. */
	cfg.prefetch_pct = 0;
	struct cache *c = cache_create(&cfg, err);
	assert_non_null(c);
	assert_false(cache_prefetch(c, 1));
	assert_false(cache_contains(c, 1));
	cache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_vs_array),
	    cmocka_unit_test(test_lru_vs_naive),
	    cmocka_unit_test(test_arc_invariants),
	    cmocka_unit_test(test_s3fifo_invariants),
	    cmocka_unit_test(test_scan_resistance),
	    cmocka_unit_test(test_arc_adapts),
	    cmocka_unit_test(test_prefetch_order),
	    cmocka_unit_test(test_sequential_prefetch),
	    cmocka_unit_test(test_demote_unused_all_policies),
	    cmocka_unit_test(test_arc_prefetched_ghost),
	    cmocka_unit_test(test_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
