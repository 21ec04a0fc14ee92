/* proxy.h: ombra-proxy's daemon state and the internal interfaces between
 * its modules.  Everything here lives on the proxy's one libuv loop thread
 * unless a comment says otherwise.
 *
 *   main.c            flags, start-up, signals, shutdown
 *   args.c            command-line parsing (struct proxy_args)
 *   defer.c           run a function on the loop "soon" (never re-entrantly)
 *   metad_client.c    blocking metad calls in the libuv thread pool
 *   volcache.c        volume records and shard maps, fetch coalescing,
 *                     proxy_volume_* (proxy_io.h)
 *   watch.c           the AdminService.Watch stream on its own thread
 *   nodes.c           stored nodes: channels, latency EWMA, probes, health
 *   io.c              the engine: proxy_io_* (proxy_io.h), splits and retries
 *   io_read.c         read routing: plan, checks of foreign answers, counters
 *   route.c           copy choice per read part by consistency (route.h)
 *   route_lat.c       per-node latency estimator (route_lat.h)
 *   segver.c          latest segment versions under a writer lease
 *   vlease.c          volume writer leases, single-writer volumes
 *   propagate.c       acknowledged writes -> shadows and cache holders
 *                     (propagate.h; the queue itself is propq.c)
 *   access.c          per-segment access counts -> metad (access.h)
 *   service_volume.c  the gRPC VolumeService
 *
 * Failure: start-up functions return OMBRA_E* with errmsg filled; after
 * start-up, failures reach callers as struct proxy_status. */
#ifndef OMBRA_PROXY_H
#define OMBRA_PROXY_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proxy_io.h"
#include "rpc.h"

struct metrics_registry;
struct metric;
struct mdc;
struct volcache;
struct nodes;
struct pwatch;
struct defer;
struct io_engine;
struct pcache;
struct prefetch;
struct propagate;
struct access_stats;
struct vlease_mgr;
struct proxy_args;

/* Counters and histograms of the data path (created once at start). */
struct proxy_metrics {
	struct metric *reads, *writes, *zeros, *flushes;
	struct metric *read_bytes, *write_bytes;
	struct metric *read_seconds, *write_seconds;
	struct metric *retries, *errors, *map_fetches;
};

struct proxy {
	uv_loop_t *loop;
	const char *region;
	const struct rpc_tls *tls; /* NULL: insecure */
	struct metrics_registry *metrics;
	struct proxy_metrics m;
	struct defer *defer;
	struct mdc *mdc;
	struct volcache *vc;
	struct nodes *nodes;
	struct pwatch *watch;
	struct io_engine *io;
	/* Cache entries placed by the prefetch engine (pcache.h); NULL when
	 * prefetch is off.  Propagation sends writes to their holders. */
	struct pcache *pcache;
	struct prefetch *prefetch;     /* prefetch.h; NULL when off */
	struct propagate *prop;	       /* propagate.h */
	struct busypoll *bpoll;	       /* busypoll.h */
	struct access_stats *access;   /* access.h */
	struct vlease_mgr *vlease;     /* writer leases (vlease.h) */
	const struct proxy_args *args; /* the command line (args.h) */
	bool stopping;
};

/* proxy_status helpers. */
void proxy_status_ok(struct proxy_status *st);
void proxy_status_set(struct proxy_status *st, grpc_status_code code,
		      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Monotonic clock in milliseconds (uv_hrtime based). */
uint64_t proxy_now_ms(void);

/* ---------------------------------------------------------------- defer */

typedef void (*defer_fn)(void *arg);

int defer_create(uv_loop_t *loop, struct defer **out, char *errmsg);
/* Run fn(arg) on the loop after the current callback returns.  Never
 * fails: on out-of-memory it aborts the process (a lost callback would hang
 * a client forever). */
void defer_call(struct defer *d, defer_fn fn, void *arg);
/* Close the handle; pending functions still run first. */
void defer_close(struct defer *d);

/* ---------------------------------------------------------- metad client */

/* Outcome of a metad call on the loop: st says how it ended; resp (owned
 * by the layer, freed after the callback) is set when st->code is OK. */
typedef void (*mdc_cb)(void *arg, const struct rpc_status *st,
		       const ProtobufCMessage *resp);

/* endpoints: "host:port[,...]" (copied). */
int mdc_create(struct proxy *p, const char *endpoints, struct mdc **out,
	       char *errmsg);
void mdc_destroy(struct mdc *m);
/* The endpoint list as given (owned by m). */
const char *mdc_endpoints(const struct mdc *m);

/* Call AdminService.method with req in the thread pool.  req is owned by
 * the caller and must stay valid until cb runs.  timeout_ms: total time
 * including leader-following retries.  cb always runs, on the loop, never
 * from inside this call. */
void mdc_call(struct mdc *m, const char *method, const ProtobufCMessage *req,
	      int timeout_ms, mdc_cb cb, void *arg);

/* Run work(arg, cluster) in the thread pool with a cluster client reserved
 * for it, then done(arg) on the loop.  For multi-call jobs (shard map
 * paging).  done always runs. */
typedef void (*mdc_work_fn)(void *arg, struct rpc_cluster *cl);
typedef void (*mdc_done_fn)(void *arg);
void mdc_run(struct mdc *m, mdc_work_fn work, mdc_done_fn done, void *arg);

/* Jobs still running in the thread pool. */
unsigned mdc_busy(const struct mdc *m);

/* ------------------------------------------------------------- volcache */

int volcache_create(struct proxy *p, struct volcache **out, char *errmsg);
/* Drop every cached volume (references held elsewhere stay valid). */
void volcache_destroy(struct volcache *vc);

/* Metad told us something changed (Watch). kind: region|node|volume|
 * member|placement; name: the object's name. */
void volcache_on_event(struct volcache *vc, const char *kind, const char *name,
		       bool deleted);
/* The volume was deleted (this proxy forwarded the delete): mark it so
 * at once, before metad's Watch event arrives. */
void volcache_forget(struct volcache *vc, const char *name);
/* Refetch every cached volume (watch stream reconnected). */
void volcache_refresh_all(struct volcache *vc);

/* Cached segment placement (valid until the next refresh of the volume;
 * copy what you need). */
struct vol_seg {
	uint64_t primary;
	uint64_t epoch;
	uint32_t n_replicas;
	uint32_t replica_off; /* into the volume's replica array */
	uint32_t n_shadows;   /* after the replicas in the same array */
};

/* Ask for a fresh shard map of vol (after a node refused or failed).
 * cb(arg, st, vol) runs on the loop once a fetch that started after this
 * call has finished.  Concurrent requests share one fetch. */
void volcache_refresh(struct proxy_volume *vol, proxy_open_cb cb, void *arg);

/* Shard-map accessors.  idx < proxy_volume_segments(vol). */
uint64_t proxy_volume_id(const struct proxy_volume *vol);
uint64_t proxy_volume_seg_size(const struct proxy_volume *vol);
uint64_t proxy_volume_segments(const struct proxy_volume *vol);
/* A new reference on the same volume. */
struct proxy_volume *proxy_volume_ref(struct proxy_volume *vol);
/* The volume's read-your-writes guard (wtrack.h), owned by vol. */
struct wtrack *proxy_volume_wtrack(struct proxy_volume *vol);
/* The daemon that opened vol. */
struct proxy *proxy_volume_proxy(const struct proxy_volume *vol);
/* true once metad said the volume no longer exists. */
bool proxy_volume_deleted(const struct proxy_volume *vol);
/* Copies of segment idx: fills ids (primary first, then in-sync
 * replicas), at most max; returns the count.  *epoch: the lease epoch. */
unsigned proxy_volume_copies(const struct proxy_volume *vol, uint64_t idx,
			     uint64_t *ids, unsigned max, uint64_t *epoch);
/* Shadow nodes of segment idx (SegmentPlacement.shadows, other regions):
 * fills ids, at most max; returns the count. */
unsigned proxy_volume_shadows(const struct proxy_volume *vol, uint64_t idx,
			      uint64_t *ids, unsigned max);
/* Distinct primary node ids of the volume (for Flush): fills ids (max
 * entries), returns the count. */
unsigned proxy_volume_primaries(const struct proxy_volume *vol, uint64_t *ids,
				unsigned max);

/* ---------------------------------------------------------------- nodes */

int nodes_create(struct proxy *p, struct nodes **out, char *errmsg);
/* Stop probing and close every channel (calls in flight get CANCELLED);
 * done(arg) runs on the loop when every channel is released. */
void nodes_close(struct nodes *n, void (*done)(void *arg), void *arg);

/* Learn or update a node (from a shard map). Strings are copied. */
void nodes_update(struct nodes *n, uint64_t id, const char *name,
		  const char *address, const char *region, int state);

/* The channel to node id, created on first use; NULL if the node is
 * unknown or its channel cannot be made (errmsg says why). */
struct rpc_channel *nodes_channel(struct nodes *n, uint64_t id, char *errmsg);
/* Address of node id ("?" if unknown); owned by the table. */
const char *nodes_address(struct nodes *n, uint64_t id);

/* Report the outcome of a call to node id: ok with its latency (ms), or a
 * transport failure (marks the node down until a probe succeeds). */
void nodes_observe(struct nodes *n, uint64_t id, bool ok, double ms);

/* A data call to node id was sent (delta +1) or answered (-1): the
 * in-flight count of the latency estimate (route_lat.h). */
void nodes_inflight(struct nodes *n, uint64_t id, int delta);

/* Expected latency (ms) of one more call to node id (route_lat.h: EWMA
 * and p99 blend times the in-flight penalty; a down node adds 1e9, an
 * unknown node costs 2e9). */
double nodes_expected_ms(struct nodes *n, uint64_t id);

/* Deadline (ms) for a read at node id when another copy could serve it:
 * route_lat.h lat_failover_ms(), capped at max_ms; max_ms for an unknown
 * node. */
int nodes_failover_ms(struct nodes *n, uint64_t id, int max_ms);

/* Region of node id ("" if unknown); owned by the table. */
const char *nodes_region(struct nodes *n, uint64_t id);

/* Is node id in region (false when region is NULL)? */
bool nodes_in_region(struct nodes *n, uint64_t id, const char *region);

/* Order ids (count entries) by expected latency: nodes that are up first,
 * then by nodes_expected_ms(); ties keep their order (primary first). */
void nodes_rank(struct nodes *n, uint64_t *ids, unsigned count);

/* ------------------------------------------------------------- watch */

int pwatch_start(struct proxy *p, const char *endpoints, struct pwatch **out,
		 char *errmsg);
/* Cancel the stream and join the thread (may block up to a few ms). */
void pwatch_stop(struct pwatch *w);

/* ---------------------------------------------------------------- io */

int io_engine_create(struct proxy *p, struct io_engine **out, char *errmsg);
/* Stop retrying: requests waiting for a retry fail UNAVAILABLE now. */
void io_engine_stop(struct io_engine *e);
/* propagate_done_fn (propagate.h), ctx = the engine: wakes the reads
 * waiting for this proxy's propagation to node's copy of the segment. */
void io_engine_propagated(void *ctx, uint64_t node, uint64_t volume_id,
			  uint64_t seg);
void io_engine_destroy(struct io_engine *e);

/* --------------------------------------------------------- VolumeService */

struct rpc_server;
int service_volume_register(struct proxy *p, struct rpc_server *srv,
			    char *errmsg);

#endif
