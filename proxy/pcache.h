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
 * segment's entry.  Bounded: at most max_segments entries, and at most
 * max_blocks recorded blocks when pcache_set_evict() set a bound; adding
 * more evicts the least recently used entries (the node keeps the data
 * until it is told to drop it: the eviction callback is where the prefetch
 * engine sends DropCopy).
 *
 * Accounting for the prefetch engine's statistics: every recorded block
 * carries a source tag (0..PCACHE_SRCS-1, who asked for it: the engine's
 * predictors, an explicit request) and a "used" flag set by pcache_use()
 * when a client read finds it; unused blocks that go (eviction, drop) are
 * reported per source as wasted.  Memory: about 1.2 KiB per entry.
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
/* Source tags of recorded blocks (pcache_add_src()). */
#define PCACHE_SRCS 8u

struct pcache;

/* max_segments: > 0, entries kept before the least recently used goes. */
int pcache_create(size_t max_segments, struct pcache **out);
void pcache_destroy(struct pcache *c);

/* node_id holds blocks [first, first+n) of segment seg of the volume
 * (block numbers inside the segment, first + n <= PCACHE_MAX_BLOCKS). */
bool pcache_add(struct pcache *c, uint64_t volume_id, uint64_t seg,
		uint64_t node_id, uint32_t first, uint32_t n);

/* Like pcache_add(); the newly recorded blocks get source tag src
 * (< PCACHE_SRCS) and are unused.  Blocks already recorded keep their tag
 * and flag.  pcache_add() is pcache_add_src() with src 0. */
bool pcache_add_src(struct pcache *c, uint64_t volume_id, uint64_t seg,
		    uint64_t node_id, uint32_t first, uint32_t n, unsigned src);

/* Forget blocks [first, first+n) of the segment; n == 0: the whole
 * segment.  Returns the number of blocks that were recorded. */
uint32_t pcache_drop(struct pcache *c, uint64_t volume_id, uint64_t seg,
		     uint32_t first, uint32_t n);

/* pcache_drop() that also adds, per source tag, the dropped blocks that
 * were never used to unused[PCACHE_SRCS] (may be NULL). */
uint32_t pcache_drop_src(struct pcache *c, uint64_t volume_id, uint64_t seg,
			 uint32_t first, uint32_t n, uint64_t *unused);

/* What left the table without being asked to (pcache_add() made room or
 * replaced the segment's holder): the whole entry of (volume_id, seg) on
 * node_id with its blocks and, per source tag, those never used. */
struct pcache_gone {
	uint64_t volume_id, seg, node_id;
	uint32_t blocks;
	uint32_t unused[PCACHE_SRCS];
};
/* Called from inside pcache_add*() for every evicted entry; it must not
 * call back into the pcache. */
typedef void (*pcache_evict_fn)(void *arg, const struct pcache_gone *g);

/* Bound the recorded blocks (0 = only the segment bound) and set the
 * eviction callback (fn NULL = none). */
void pcache_set_evict(struct pcache *c, uint64_t max_blocks, pcache_evict_fn fn,
		      void *arg);

/* A client read of blocks [first, first+n) of the segment: counts the
 * recorded ones per source tag into hits[PCACHE_SRCS] and those read for
 * the first time into first_use[PCACHE_SRCS] (either may be NULL), marks
 * them used and the entry recently used.  Returns how many of the n
 * blocks are recorded (n: the whole range is in the cache). */
uint32_t pcache_use(struct pcache *c, uint64_t volume_id, uint64_t seg,
		    uint32_t first, uint32_t n, uint64_t *hits,
		    uint64_t *first_use);

/* Whether block b of the segment is recorded (no LRU change). */
bool pcache_present(const struct pcache *c, uint64_t volume_id, uint64_t seg,
		    uint32_t b);

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
/* Recorded blocks never used by a read (the prefetch policy's "unused
 * prefetched bytes" / 4096). */
uint64_t pcache_unused_blocks(const struct pcache *c);
/* Recorded blocks of one volume (walks every entry). */
uint64_t pcache_volume_blocks(const struct pcache *c, uint64_t volume_id);

#endif
