/* cache_table.h: open-addressing hash table from a 64-bit block key to a
 * 32-bit slot index, the O(1) lookup under predict/cache.c and the
 * simulator's footprint count.
 *
 * Linear probing over a power-of-two array kept at most half full, with
 * backward-shift deletion (no tombstones), so lookups stay short however
 * long the run.  The table never grows: its size is fixed at creation for
 * a maximum entry count; inserting beyond it is a caller bug (asserted).
 * Failure: cache_table_init() returns -1 when out of memory. */
#ifndef OMBRA_PREDICT_CACHE_TABLE_H
#define OMBRA_PREDICT_CACHE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define CACHE_TABLE_NONE UINT32_MAX

struct cache_table_slot {
	uint64_t key;
	uint32_t val; /* CACHE_TABLE_NONE = empty */
};

struct cache_table {
	struct cache_table_slot *slots;
	size_t mask; /* slots - 1 */
	size_t count;
	size_t max;
};

/* Room for max_entries entries (>= 1).  0, or -1 when out of memory. */
int cache_table_init(struct cache_table *t, size_t max_entries);
void cache_table_close(struct cache_table *t);

/* The value stored for key, or CACHE_TABLE_NONE. */
uint32_t cache_table_get(const struct cache_table *t, uint64_t key);

/* Store val (!= CACHE_TABLE_NONE) for key, replacing any value. */
void cache_table_put(struct cache_table *t, uint64_t key, uint32_t val);

/* Remove key if present. */
void cache_table_del(struct cache_table *t, uint64_t key);

#endif
