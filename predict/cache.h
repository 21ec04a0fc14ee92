/* cache.h: a block cache with pluggable eviction (LRU, ARC, S3-FIFO) and
 * prefetch accounting, used by the trace simulator (tools/ombra-sim) and
 * meant for the stored fast tier's cache entries.
 *
 * The cache holds block keys only (no data): it answers "would this
 * access have hit" and counts what prefetching did.  Every operation is
 * O(1) (amortised; S3-FIFO's reinsertion loop is bounded by the 2-bit
 * frequency counters): keys live in an open-addressing hash table, each
 * policy keeps intrusive doubly linked lists over one node array.
 *
 * Prefetched blocks: a block inserted by cache_prefetch() that no demand
 * access has touched yet sits in a FIFO of its own, outside the policy's
 * recency/frequency lists (like Linux readahead pages on the inactive
 * list).  Those blocks are demoted first: once the FIFO holds
 * prefetch_share of the capacity, any insertion evicts its oldest entry
 * before touching a demand block, and a demand miss never evicts a demand
 * block while the FIFO is over its share.  The first demand access to a
 * prefetched block moves it into the policy as a first reference (or as a
 * ghost hit, if the key was in the policy's ghost history when it was
 * prefetched).
 *
 * Failure: cache_create() returns NULL with a message in errmsg on a bad
 * configuration or out of memory; nothing else allocates or fails. */
#ifndef OMBRA_PREDICT_CACHE_H
#define OMBRA_PREDICT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cache_policy {
	CACHE_LRU = 0,
	CACHE_ARC = 1,	  /* Megiddo & Modha, FAST'03 */
	CACHE_S3FIFO = 2, /* Yang et al., SOSP'23 */
};

struct cache_config {
	enum cache_policy policy;
	size_t capacity;       /* blocks, >= 1 */
	unsigned prefetch_pct; /* share of capacity for unused prefetched
				  blocks, 0..100; 0 disables prefetching */
};

/* Counters, all in blocks.  Reads and writes are demand accesses; the hit
 * ratio is read_hits / reads.  A prefetched block is "used" when a read
 * hits it before it is evicted (precision = used / issued); such a read is
 * "served by prefetch" (coverage = used / (read misses + used)). */
struct cache_stats {
	uint64_t reads;
	uint64_t read_hits;
	uint64_t writes;
	uint64_t write_hits;
	uint64_t prefetch_issued;      /* blocks inserted by cache_prefetch() */
	uint64_t prefetch_redundant;   /* asked for, already resident */
	uint64_t prefetch_used;	       /* first touched by a read */
	uint64_t prefetch_overwritten; /* first touched by a write */
	uint64_t prefetch_evicted;     /* evicted before any demand access */
	uint64_t evictions;	       /* resident blocks evicted, all kinds */
};

struct cache;

/* Name <-> policy ("lru", "arc", "s3fifo"); parse returns -1 on an
 * unknown name. */
int cache_policy_parse(const char *name, enum cache_policy *out);
const char *cache_policy_name(enum cache_policy p);

/* Create an empty cache; cfg copied.  Memory: about 40 bytes per block of
 * capacity times 2 (ghost history) plus the hash table.  NULL + errmsg
 * (OMBRA_ERRMSG_LEN bytes, see predict.h) on capacity 0, capacity above
 * 2^30 blocks, prefetch_pct above 100 or out of memory. */
struct cache *cache_create(const struct cache_config *cfg, char *errmsg);
void cache_destroy(struct cache *c);

/* A demand access to block key (any 64-bit value).  Returns true on a
 * hit.  A miss inserts the block (write-allocate for writes), evicting as
 * the policy says. */
bool cache_access(struct cache *c, uint64_t key, bool is_write);

/* What a demand access found: a miss, a hit, or the first demand touch
 * of a block that cache_prefetch() inserted (a hit "served by prefetch";
 * counted as prefetch_used when a read). */
enum cache_outcome {
	CACHE_MISS = 0,
	CACHE_HIT = 1,
	CACHE_HIT_PREFETCHED = 2,
};

/* As cache_access(), telling the kind of hit apart (used by the adaptive
 * selector's shadow caches, predict/adaptive.h). */
enum cache_outcome cache_access_outcome(struct cache *c, uint64_t key,
					bool is_write);

/* Insert key as a prefetched block unless it is resident already.
 * Returns true when it was inserted (and counted as issued). */
bool cache_prefetch(struct cache *c, uint64_t key);

/* True when key is resident (demand or prefetched); changes nothing. */
bool cache_contains(const struct cache *c, uint64_t key);

/* Prefetched blocks resident and not touched by a demand access yet. */
size_t cache_prefetched_unused(const struct cache *c);

/* Resident blocks now (<= capacity). */
size_t cache_resident(const struct cache *c);

void cache_get_stats(const struct cache *c, struct cache_stats *out);

#endif
