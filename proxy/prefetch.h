/* prefetch.h: ombra-proxy's online prefetch engine (DESIGN.md "Prediction
 * and prefetch", docs/prediction.md "Online engine in the proxy").
 *
 * The I/O engine calls prefetch_observe() for every client request it
 * accepts; the engine (logic in prefetch_core.h) predicts what the
 * volume will read next and asks a stored node of this proxy's region to
 * pull those blocks from an up-to-date copy into a COPY_CACHE entry
 * (StoreService.Pull), recorded in p->pcache so that the read path can
 * use it and propagation keeps it current; evicted entries are dropped
 * (StoreService.DropCopy).  The region's nodes come from metad
 * (AdminService.ListNodes, every PF_NODES_MS).
 *
 * The VolumeService calls PrefetchData, SetPrefetchHint and
 * GetPrefetchStats are answered here (prefetch_rpc_*()).  /metrics gets
 * per predictor precision, coverage, used, prefetched and wasted bytes,
 * the hit ratio and the cache size.
 *
 * Loop thread only.  Failure: creation fails with OMBRA_E* and a message
 * (bad --prefetch-model, out of memory); afterwards nothing here fails a
 * client's I/O: a failed pull only leaves the blocks uncached (counted),
 * RPCs answer a gRPC status with a message. */
#ifndef OMBRA_PROXY_PREFETCH_H
#define OMBRA_PROXY_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume.pb-c.h"

/* Refresh of the region's node list from metad (ms). */
#define PF_NODES_MS 2000

struct proxy;
struct proxy_volume;
struct rpc_call;
struct prefetch;

struct prefetch_config {
	uint64_t budget_bps;	/* predicted prefetch bytes/s, 0 = no limit */
	uint64_t cache_bytes;	/* cache entries' bound (bytes), > 0 */
	uint64_t max_segments;	/* cache entries tracked */
	const char *model_path; /* LSTM weights; NULL = the shipped model
				   when it loads, silently none if not */
};

/* Creates the engine, its predictors and p->pcache, and starts the node
 * list refresh on p->loop.  OMBRA_EINVAL when model_path is given and
 * cannot be loaded, OMBRA_ENOMEM; errmsg says which. */
int prefetch_create(struct proxy *p, const struct prefetch_config *cfg,
		    struct prefetch **out, char *errmsg);
/* Shutdown: stop the timer and stop starting pulls. */
void prefetch_stop(struct prefetch *pf);
/* After every node channel closed and the metad jobs drained (no
 * callback can come); frees p->pcache too.  NULL is a no-op. */
void prefetch_destroy(struct prefetch *pf);

/* A client request accepted by the I/O engine: read (is_read) or write
 * of [off, off+len) of vol, inside the volume.  pf NULL: no-op. */
void prefetch_observe(struct prefetch *pf, struct proxy_volume *vol,
		      uint64_t off, uint64_t len, bool is_read);

/* The read path's attempt at the cache entry of segment seg of vol on
 * node was refused (stale or not present): the entry is dropped
 * (pf_core_refused()).  pf NULL: no-op. */
void prefetch_cache_refused(struct prefetch *pf, struct proxy_volume *vol,
			    uint64_t seg, uint64_t node);

/* VolumeService handlers (arguments already checked for a volume name,
 * at least one range where needed, non-empty non-overflowing ranges);
 * each answers call exactly once.  p->prefetch NULL (--prefetch off):
 * FAILED_PRECONDITION. */
void prefetch_rpc_data(struct proxy *p, struct rpc_call *call,
		       const Ombra__V1__PrefetchDataRequest *r);
void prefetch_rpc_hint(struct proxy *p, struct rpc_call *call,
		       const Ombra__V1__SetPrefetchHintRequest *r);
void prefetch_rpc_stats(struct proxy *p, struct rpc_call *call,
			const Ombra__V1__GetPrefetchStatsRequest *r);

/* For prefetch_rpc.c: the engine's logic and its cache bound (bytes). */
struct pf_core *prefetch_core(struct prefetch *pf);
uint64_t prefetch_cache_bytes(const struct prefetch *pf);
/* The facts of vol the core needs (ctx = vol). */
struct pf_volinfo;
void prefetch_volinfo(struct proxy_volume *vol, struct pf_volinfo *out);
/* For prefetch.c: a pull started by pf_core_request() with waiter (a
 * request of prefetch_rpc.c) on node (its address) ended with st; bytes:
 * what it covered. */
struct rpc_status;
void prefetch_rpc_pull_done(void *waiter, const struct rpc_status *st,
			    uint64_t bytes, const char *node);

#endif
