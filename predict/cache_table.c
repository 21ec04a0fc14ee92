/* cache_table.c: the open-addressing block-key table (see cache_table.h).
 * Hash: the 64-bit finaliser of MurmurHash3 (Appleby), which spreads
 * sequential block numbers over the whole table. */
#include "predict/cache_table.h"

#include <assert.h>
#include <stdlib.h>

static inline size_t slot_of(const struct cache_table *t, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	key *= 0xc4ceb9fe1a85ec53ULL;
	key ^= key >> 33;
	return (size_t)key & t->mask;
}

int cache_table_init(struct cache_table *t, size_t max_entries)
{
	size_t n = 16;

	while (n < 2 * max_entries)
		n *= 2;
	t->slots = malloc(n * sizeof(*t->slots));
	if (t->slots == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		t->slots[i].val = CACHE_TABLE_NONE;
	t->mask = n - 1;
	t->count = 0;
	t->max = max_entries;
	return 0;
}

void cache_table_close(struct cache_table *t)
{
	free(t->slots);
	t->slots = NULL;
}

uint32_t cache_table_get(const struct cache_table *t, uint64_t key)
{
	for (size_t i = slot_of(t, key);; i = (i + 1) & t->mask) {
		const struct cache_table_slot *s = &t->slots[i];

		if (s->val == CACHE_TABLE_NONE)
			return CACHE_TABLE_NONE;
		if (s->key == key)
			return s->val;
	}
}

void cache_table_put(struct cache_table *t, uint64_t key, uint32_t val)
{
	assert(val != CACHE_TABLE_NONE);
	for (size_t i = slot_of(t, key);; i = (i + 1) & t->mask) {
		struct cache_table_slot *s = &t->slots[i];

		if (s->val == CACHE_TABLE_NONE) {
			assert(t->count < t->max);
			s->key = key;
			s->val = val;
			t->count++;
			return;
		}
		if (s->key == key) {
			s->val = val;
			return;
		}
	}
}

void cache_table_del(struct cache_table *t, uint64_t key)
{
	size_t i = slot_of(t, key);

	for (;; i = (i + 1) & t->mask) {
		if (t->slots[i].val == CACHE_TABLE_NONE)
			return;
		if (t->slots[i].key == key)
			break;
	}
	t->count--;
	/* Backward shift: move later entries of the probe run into the hole
	 * when their home slot is not inside (hole, entry]. */
	for (size_t j = (i + 1) & t->mask;; j = (j + 1) & t->mask) {
		struct cache_table_slot *s = &t->slots[j];

		if (s->val == CACHE_TABLE_NONE)
			break;
		size_t home = slot_of(t, s->key);
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slots[i] = *s;
			i = j;
		}
	}
	t->slots[i].val = CACHE_TABLE_NONE;
}
