/* prefetch_core.h: the logic of the proxy's online prefetch engine
 * (docs/prediction.md "Online engine in the proxy"), without sockets,
 * timers or clocks, so that tests/unit/test_prefetch_core.c drives it
 * deterministically.  proxy/prefetch.c is the glue (StoreService.Pull and
 * DropCopy calls, the region's node list from metad, metrics, RPCs).
 *
 * Per client access of a volume the core:
 *   1. accounts it: for a read, the blocks found in the prefetch cache
 *      (pcache_use(): hits per source, first uses); a read whose blocks
 *      are all there is a hit;
 *   2. feeds it to the predictor (normally "adaptive": the online selector
 *      over obl, amp, mithril and, with a model, lstm) and to the
 *      volume's issue policy (predict/pfpolicy.h: probability threshold
 *      adapted by its control loop, adaptive window, budget in bytes/s
 *      and cache bytes);
 *   3. turns each admitted candidate into pull requests (in a sequential
 *      stream a candidate just ahead of it is first extended to a window
 *      ahead of the stream, for timeliness; what the byte budget cuts off
 *      is deferred and issued on later accesses): cut at segment
 *      boundaries, blocks already cached or being pulled left out, one
 *      request per segment piece on the region node chosen by weighted
 *      rendezvous hashing of (volume, segment) over the UP nodes of the
 *      proxy's region that hold no home or shadow copy of the segment
 *      (the segment's current cache holder is kept while it is UP), cut
 *      to the proxy-wide token bucket (budget bytes/s, one second of
 *      burst) and to max_inflight pulls.
 * A pull that succeeds is recorded in the pcache with its source tag;
 * entries the pcache evicts (LRU over the cache-bytes bound) are dropped
 * on their node (io->drop) and their unused blocks counted as wasted.
 *
 * Hints per volume (VolumeService.SetPrefetchHint): NORMAL (the selector),
 * SEQUENTIAL (the selector is bypassed for the amp predictor's
 * candidates with a window of PF_SEQ_WINDOW blocks), RANDOM (no
 * predicted prefetch; accounting continues), WILLNEED / DONTNEED ranges
 * (pf_core_request() / pf_core_dontneed()).
 *
 * Statistics per volume and source (PF_SRC_*: the predictor that was
 * selected when a prefetch was issued, or "request" for explicit ones):
 * blocks predicted and issued, bytes prefetched, used (read at least once
 * before leaving the cache), wasted (left unused: evicted, dropped),
 * block hits; precision = used / prefetched, coverage = block reads
 * served by the source's prefetches / block reads.
 *
 * Units: bytes, 4 KiB blocks (PF_BLOCK), µs for time.  Single-threaded
 * (the proxy's loop).  Failure: out of memory makes the core forget a
 * volume's state or skip a prefetch, never fail a client request; pull
 * failures are counted and the blocks simply not cached. */
#ifndef OMBRA_PROXY_PREFETCH_CORE_H
#define OMBRA_PROXY_PREFETCH_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pcache.h"

#define PF_BLOCK 4096u
/* SEQUENTIAL hint: blocks per candidate. */
#define PF_SEQ_WINDOW 256u

/* Sources of prefetched blocks (pcache tags, stats rows). */
enum pf_src {
	PF_SRC_REQUEST = 0, /* PrefetchData, WILLNEED */
	PF_SRC_OBL,
	PF_SRC_AMP,
	PF_SRC_MITHRIL,
	PF_SRC_LSTM,
	PF_SRC_OTHER, /* a predictor the engine has no row for */
	PF_NSRC
};
const char *pf_src_name(enum pf_src s);

/* VolumeService PrefetchHint values (volume.proto). */
enum pf_hint {
	PF_HINT_NORMAL = 0,
	PF_HINT_SEQUENTIAL = 1,
	PF_HINT_RANDOM = 2,
	PF_HINT_WILLNEED = 3,
	PF_HINT_DONTNEED = 4,
};

/* One pull of blocks [first, first+n) of segment seg on node. */
struct pf_pull {
	uint64_t volume_id, seg, seg_size, node;
	uint32_t first, n; /* blocks inside the segment */
	enum pf_src src;
	void *waiter; /* pf_core_request()'s, NULL for predicted pulls */
	bool busy;    /* slot in use (the core's) */
	bool dropped; /* DONTNEED / forgotten while in flight: the blocks
			 are dropped on the node when it ends */
};

/* The transport and the shard map, supplied by the glue. */
struct pf_io {
	/* Start pulling r (owned by the core until pf_core_pull_done(),
	 * which must not be called from inside this call).  Nonzero: not
	 * started (counted as failed). */
	int (*pull)(void *ctx, struct pf_pull *r);
	/* Tell node to drop blocks [first, first+n) of the segment (n 0 =
	 * all); fire and forget. */
	void (*drop)(void *ctx, uint64_t volume_id, uint64_t seg, uint64_t node,
		     uint32_t first, uint32_t n);
	/* Whether node holds a home copy (primary, replica) or a shadow of
	 * the segment; volctx is pf_volinfo.ctx. */
	bool (*is_copy)(void *ctx, void *volctx, uint64_t seg, uint64_t node);
	void *ctx;
};

/* The volume an access or request is about. */
struct pf_volinfo {
	uint64_t id, size, seg_size; /* bytes */
	void *ctx;		     /* passed to io->is_copy */
};

/* A node of the proxy's region that may hold cache entries. */
struct pf_node {
	uint64_t id;
	uint64_t weight; /* capacity in bytes; 0 = 1 */
	bool up;
};

struct pf_core_config {
	uint64_t budget_bps;  /* predicted prefetch bytes/s; 0 = unlimited */
	uint64_t cache_bytes; /* cached blocks bound, bytes, > 0 */
	unsigned max_inflight;
	size_t max_volumes;  /* volumes with state; LRU beyond */
	size_t max_segments; /* pcache entries */
};

/* Per source, per volume. */
struct pf_stats {
	uint64_t
	    predicted;	 /* blocks the predictor returned (admitted or not) */
	uint64_t issued; /* blocks asked to pull */
	uint64_t prefetched; /* blocks pulled and recorded */
	uint64_t used;	     /* prefetched blocks read before leaving */
	uint64_t wasted;     /* prefetched blocks that left unread */
	uint64_t hits;	     /* block reads served by its prefetches */
	uint64_t failed;     /* blocks whose pull failed */
};

struct pf_volume_stats {
	enum pf_hint hint;
	double threshold; /* the issue policy's now */
	uint32_t window;  /* blocks per candidate now */
	uint64_t reads, read_blocks, read_hits, block_hits;
	uint64_t cached_blocks;
	struct pf_stats src[PF_NSRC];
	const char *active; /* the selector's choice, "none" before any */
};

struct predictor;
struct pf_core;

/* pred: the predictor (owned by the caller, outlives the core; NULL = no
 * predicted prefetch); seq: an "amp" predictor for the SEQUENTIAL hint
 * (same ownership; NULL = the hint only widens the window).  io copied.
 * Creates the pcache (pf_core_pcache()).  OMBRA_ENOMEM or 0. */
int pf_core_create(const struct pf_core_config *cfg, struct predictor *pred,
		   struct predictor *seq, const struct pf_io *io,
		   struct pf_core **out);
/* Pulls in flight are forgotten (their pf_core_pull_done() must not
 * come any more). */
void pf_core_destroy(struct pf_core *c);

/* The cache-entry table (owned by the core). */
struct pcache *pf_core_pcache(struct pf_core *c);

/* Replace the region's node list (copied). */
void pf_core_set_nodes(struct pf_core *c, const struct pf_node *nodes,
		       size_t n);
size_t pf_core_nodes_up(const struct pf_core *c);

/* A client access [off, off+len) of v (already validated against its
 * size) at now_us: accounting, prediction, pulls. */
void pf_core_observe(struct pf_core *c, const struct pf_volinfo *v,
		     uint64_t off, uint64_t len, bool is_read, uint64_t now_us);

/* A pull ended: ok (blocks recorded) or failed. r is free afterwards. */
void pf_core_pull_done(struct pf_core *c, struct pf_pull *r, bool ok);

/* Explicit prefetch of [off, off+len) (PrefetchData, WILLNEED): blocks
 * not yet cached nor being pulled are pulled now, outside the budget and
 * the threshold.  waiter is put in every pull started; with a waiter,
 * blocks being pulled by pulls of another waiter (or none: predicted
 * pulls) are pulled again, so that the waiter's answer means they are
 * cached (the other pull may fail or end later).  Adds the number
 * of pulls started to *started and the bytes they cover to *bytes (each
 * may be NULL).  Returns 0, or -1 when a pull could not be placed (no UP
 * node in the region, max_inflight busy, not sent): *why says so (static
 * string); the pulls started before it run on.  The range must be inside
 * the volume. */
int pf_core_request(struct pf_core *c, const struct pf_volinfo *v, uint64_t off,
		    uint64_t len, void *waiter, unsigned *started,
		    uint64_t *bytes, const char **why);

/* DONTNEED: forget [off, off+len) (whole blocks inside it) and tell the
 * holders to drop them; unused ones count as wasted.  Pulls in flight
 * that overlap the range are marked: when they end their blocks are
 * dropped on the node instead of recorded (wasted).  Returns the bytes
 * that were cached. */
uint64_t pf_core_dontneed(struct pf_core *c, const struct pf_volinfo *v,
			  uint64_t off, uint64_t len);

/* The read path found the cache entry of segment seg on node unusable
 * (stale: its watermark stuck below the segment's version after writes
 * this proxy did not propagate; or no longer present on the node): when
 * node is the segment's holder, the whole entry is dropped like DONTNEED
 * (a partial drop would keep the old watermark) so that a later pull
 * starts it afresh.  Returns whether it was dropped. */
bool pf_core_refused(struct pf_core *c, const struct pf_volinfo *v,
		     uint64_t seg, uint64_t node);

/* Set the volume's hint (NORMAL, SEQUENTIAL, RANDOM; WILLNEED/DONTNEED
 * leave the mode as it is). */
void pf_core_set_hint(struct pf_core *c, uint64_t volume_id, enum pf_hint hint);

/* Statistics of a volume (zeros when it has none). */
void pf_core_volume_stats(struct pf_core *c, uint64_t volume_id,
			  struct pf_volume_stats *out);
/* Proxy-wide sums over every volume with state, plus the evictions of
 * forgotten volumes. */
void pf_core_total_stats(struct pf_core *c, struct pf_volume_stats *out);

/* Ratios of a stats row (0 when the denominator is 0). */
double pf_stats_precision(const struct pf_stats *s);
double pf_stats_coverage(const struct pf_stats *s, uint64_t read_blocks);

/* Pulls in flight. */
unsigned pf_core_inflight(const struct pf_core *c);
/* Pulls in flight for one volume. */
unsigned pf_core_volume_inflight(const struct pf_core *c, uint64_t volume_id);

#endif
