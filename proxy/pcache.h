/* pcache.h: the cache entries (COPY_CACHE foreign copies, docs/shadows.md)
 * that this proxy's prefetch engine has placed on stored nodes of its
 * region: per (volume id, segment index) the node that holds them and a
 * bitmap of the blocks of the segment it was asked to pull.
 *
 * Users: the prefetch engine records pulls and drops; the read path asks
 * which node may hold a range (the node still checks presence and version
 * itself, so a wrong answer here only costs a refused read); write
 * propagation sends this proxy's writes to the holder so that a cached
 * block is refreshed, never left stale (and the read path always asks with
 * the segment's latest known version anyway).
 *
 * One holder per segment: adding blocks on another node replaces the
 * segment's entry.  Bounded: at most max_segments entries; adding one more
 * evicts the least recently used entry (the node keeps the data until its
 * own eviction; it only stops being used).
 *
 * Failure: pcache_create() returns OMBRA_ENOMEM; pcache_add() returns
 * false when memory runs out (the pull is then simply not used).  Loop
 * thread only. */
#ifndef OMBRA_PROXY_PCACHE_H
#define OMBRA_PROXY_PCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Blocks per segment: 4 MiB / 4 KiB. */
#define PCACHE_MAX_BLOCKS 1024u

struct pcache;

/* max_segments: > 0, entries kept before the least recently used goes. */
int pcache_create(size_t max_segments, struct pcache **out);
void pcache_destroy(struct pcache *c);

/* node_id holds blocks [first, first+n) of segment seg of the volume
 * (block numbers inside the segment, first + n <= PCACHE_MAX_BLOCKS). */
bool pcache_add(struct pcache *c, uint64_t volume_id, uint64_t seg,
		uint64_t node_id, uint32_t first, uint32_t n);

/* Forget blocks [first, first+n) of the segment; n == 0: the whole
 * segment.  Returns the number of blocks that were recorded. */
uint32_t pcache_drop(struct pcache *c, uint64_t volume_id, uint64_t seg,
		     uint32_t first, uint32_t n);

/* Forget every entry of a volume (deleted, re-created). */
void pcache_drop_volume(struct pcache *c, uint64_t volume_id);

/* The node recorded for every block of [first, first+n) of the segment,
 * or 0 when some block is not recorded.  Marks the entry recently used. */
uint64_t pcache_lookup(struct pcache *c, uint64_t volume_id, uint64_t seg,
		       uint32_t first, uint32_t n);

/* The node holding any block of the segment (a propagation target), or 0. */
uint64_t pcache_holder(const struct pcache *c, uint64_t volume_id,
		       uint64_t seg);

/* Entries and recorded blocks, for metrics. */
size_t pcache_segments(const struct pcache *c);
uint64_t pcache_blocks(const struct pcache *c);

#endif
