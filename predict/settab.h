/* settab.h: a bounded, set-associative table of fixed-size records keyed
 * by two 64-bit words, the one container behind every predictor's state
 * (per-volume state, Mithril's association entries, the selector's
 * scores).  All memory is allocated at creation from a byte budget and
 * never grows; a full set replaces its least recently used record (as a
 * CPU cache does), so lookups and inserts cost O(ways).
 *
 * Deterministic: placement is a fixed hash of the key, recency a counter.
 * Fails only at creation (NULL when out of memory). */
#ifndef OMBRA_PREDICT_SETTAB_H
#define OMBRA_PREDICT_SETTAB_H

#include <stddef.h>
#include <stdint.h>

struct settab;

/* A table of records holding payload_size bytes each (kept 8-byte
 * aligned), as many as fit in budget_bytes in sets of ways records (at
 * least one set).  NULL when out of memory. */
struct settab *settab_create(size_t payload_size, size_t ways,
			     size_t budget_bytes);
void settab_destroy(struct settab *t);

/* The payload stored under (k1, k2), marked most recently used; NULL if
 * absent.  Valid until the next settab_insert(). */
void *settab_find(struct settab *t, uint64_t k1, uint64_t k2);

/* As settab_find() without marking the record used (for read-only
 * inspection that must not change what is replaced next). */
void *settab_peek(struct settab *t, uint64_t k1, uint64_t k2);

/* Find (k1, k2) or make room for it (replacing the set's least recently
 * used record) and return its payload; *fresh is set to 1 when the
 * payload is new and zero-filled, 0 when it already existed. */
void *settab_get(struct settab *t, uint64_t k1, uint64_t k2, int *fresh);

/* Bytes allocated by the table (the struct and every record). */
size_t settab_memory(const struct settab *t);

/* Records the table can hold. */
size_t settab_capacity(const struct settab *t);

/* A well-mixed 64-bit hash of (k1, k2) (splitmix64 finaliser, Steele et
 * al., OOPSLA'14). */
uint64_t settab_hash(uint64_t k1, uint64_t k2);

#endif
