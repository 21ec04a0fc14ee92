/* stored.h: the state of the ombra-stored daemon and the interfaces
 * between its modules.  Everything in struct stored belongs to the libuv
 * loop thread, except what is marked otherwise (the segment store, which
 * is thread-safe, and the metad clients, each behind its own mutex).
 *
 * Modules: main.c (start-up, shutdown), node.c (registration, heartbeats,
 * node lease), mapcache.c (shard-map cache), meta.c (blocking metad calls
 * run in the thread pool), work.c (thread-pool jobs, segment table,
 * peers), svc_write.c + wrepl.c (Write at the primary: queue and local
 * write; replication and replica reports), svc_read.c (Read and block
 * repair, reads from foreign copies), svc_misc.c (Replicate,
 * GetSegmentInfo, Flush, Probe, service table), scrub.c, resync.c,
 * foreign.c + foreign_pull.c + foreign_shadow.c + foreign_rep.c +
 * svc_copy.c (foreign
 * copies: shadows and cache entries, see foreign.h); pure helpers in
 * options.c, wlogic.c, shardmap.c, foreign_logic.c (unit-tested).
 *
 * Failure: handlers answer every call with a gRPC status and a message;
 * nothing here aborts on bad input. */
#ifndef OMBRA_STORED_STORED_H
#define OMBRA_STORED_STORED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "foreign_t.h"
#include "meta.pb-c.h"
#include "metrics.h"
#include "options.h"
#include "rpc.h"
#include "segstore.h"
#include "shardmap.h"
#include "store.pb-c.h"
#include "wlogic.h"

/* Timeouts (ms). */
#define STORED_REPLICATE_TIMEOUT_MS 2000
#define STORED_META_TIMEOUT_MS 5000
#define STORED_PEER_READ_TIMEOUT_MS 5000
#define STORED_LRU_SIZE 4096
#define STORED_RECONNECT_MS 2000
/* A request that finds this node not in the copies of a segment refetches
 * the map first if it is older than this (the node may lag metad). */
#define STORED_MAP_RECHECK_MS 200

struct wop; /* a queued write (svc_write.c) */

/* What /healthz reports (read by the HTTP thread). */
enum {
	STORED_HEALTH_STARTING = 0,
	STORED_HEALTH_OK,
	STORED_HEALTH_LEASE_EXPIRED,
};
struct map_waiter;

/* Per-segment state on the loop (created on demand, kept until the
 * volume is dropped). */
struct segstate {
	uint64_t vol, seg;
	uint64_t max_epoch; /* highest lease epoch seen (map, Replicate) */
	uint64_t seq_epoch; /* epoch next_seq belongs to */
	uint64_t next_seq;  /* 0 = unknown: derive from the store */
	bool busy;	    /* a write is being processed */
	struct wop *cur;    /* that write */
	struct wop *q_head, *q_tail; /* waiting writes, arrival order */
	uint64_t forward_node;	     /* resync target receiving new writes */
	bool forward_failed;	     /* a forwarded write did not reach it */
	struct segstate *hnext;
};

struct segtab {
	struct segstate **b;
	size_t nb, count;
};

/* A connection to another storage node, cached by address. */
struct peer {
	char *address;
	struct rpc_channel *ch;
	uint64_t created_ms; /* loop clock */
	struct peer *next;
};

/* One metad connection used by one kind of work at a time. */
struct metaconn {
	pthread_mutex_t mu;
	struct rpc_cluster *cl;
};

struct stored_metrics {
	struct metric *bytes_read, *bytes_written, *write_latency;
	struct metric *repaired, *repair_failed, *scrub_checked, *scrub_bad,
	    *scrub_passes;
	struct metric *resync_segments, *resync_blocks;
	struct metric *lease_valid, *replica_failures;
};

struct stored {
	uv_loop_t *loop;
	struct stored_config cfg;
	struct audit *audit; /* --audit-log (lib/audit.h), NULL if off */
	struct rpc_tls tls;
	bool use_tls;
	struct segstore *ss;
	struct rpc_server *rpc;
	struct http_server *http;
	struct metrics_registry *reg;
	struct stored_metrics m;
	/* metad connections: maps and registration / heartbeats / replica
	 * reports (a write waiting on a report never queues behind a map
	 * refresh, a heartbeat never behind either). */
	struct metaconn meta_main, meta_hb, meta_report;

	uint64_t node_id;
	_Atomic int health; /* STORED_HEALTH_* */
	bool serving;	    /* shard maps fetched: data requests accepted */
	bool stopping;	    /* shutdown started: new data requests refused */
	int inflight;	    /* data-path calls not yet answered */

	/* Node lease (uv_now() milliseconds). */
	uint64_t lease_until;
	uint64_t lease_ms, hb_interval_ms;
	uint64_t map_index;
	bool hb_running, refresh_running, refresh_again;
	bool reregistering;  /* RegisterNode after a NOT_FOUND heartbeat */
	bool hb_verify;	     /* next heartbeat checks the id with ListNodes */
	uint64_t hb_count;   /* heartbeats sent */
	bool refresh_failed; /* retried on the next heartbeat */
	/* The lease was lost and regained: the maps may be stale (a
	 * failover may have moved this node's segments meanwhile), so the
	 * lease counts as valid only once a refresh begun after the regain
	 * (fetch_seq >= maps_fresh_seq) has succeeded (node.c). */
	bool maps_suspect;
	uint64_t maps_fresh_seq;
	bool lease_ever_valid;
	uv_timer_t hb_timer, scrub_timer, resync_timer;
	int timers_open;

	struct shardmap maps;
	struct map_waiter *waiters; /* calls waiting for a volume's map */
	uint64_t fetch_seq;	    /* counts map fetches and refreshes begun */
	struct segtab segs;
	struct peer *peers;
	struct wl_lru *lru;

	/* Scrub (scrub.c). */
	struct segstore_scrub_cursor scrub_cursor;
	bool scrub_running;
	/* Resync (resync.c): at most one segment at a time. */
	bool resync_running;
	uint64_t resync_batch; /* segments re-synced since the last idle */

	/* Foreign copies: shadows and cache entries (foreign*.c). */
	struct foreign fg;

	void (*on_drained)(struct stored *sd); /* inflight reached 0 */
};

/* ------------------------------------------------ work.c */

/* Run fn(arg) in the libuv thread pool, then done(arg) on the loop.
 * Returns 0 or OMBRA_ENOMEM (nothing queued, done never runs). */
int work_submit(struct stored *sd, void (*fn)(void *arg),
		void (*done)(void *arg), void *arg);

/* The segment's state, created on demand (NULL on out of memory). */
struct segstate *segtab_get(struct segtab *t, uint64_t vol, uint64_t seg);
struct segstate *segtab_find(struct segtab *t, uint64_t vol, uint64_t seg);
/* Drop every idle segment of a volume (busy ones stay). */
void segtab_drop_volume(struct segtab *t, uint64_t vol);
void segtab_free(struct segtab *t);

/* The cached channel to address (created on first use), or NULL with
 * errmsg when it cannot be created or the daemon is stopping. */
struct rpc_channel *peer_channel(struct stored *sd, const char *address,
				 char *errmsg);
/* A call to node id failed with code: after UNAVAILABLE, a channel older
 * than STORED_RECONNECT_MS is dropped (its pending calls fail CANCELLED)
 * so that the next call connects afresh instead of waiting out gRPC's
 * reconnect backoff, which grows to minutes while a peer is down. */
void peer_failed(struct stored *sd, uint64_t id, grpc_status_code code);
/* Close every channel (their pending calls fail with CANCELLED). */
void peers_close(struct stored *sd);

/* The address of node id from any cached volume, or NULL. */
const char *stored_node_address(struct stored *sd, uint64_t id);

/* Count a data-path call in/out (shutdown waits for 0). */
void stored_call_begin(struct stored *sd);
void stored_call_end(struct stored *sd);

/* ------------------------------------------------ meta.c (thread pool) */

int meta_init(struct stored *sd, char *errmsg);
void meta_fini(struct stored *sd);

/* Blocking unary call on one metad connection (serialized by its mutex);
 * same contract as rpc_cluster_unary().  Thread pool only. */
int meta_call(struct metaconn *mc, const ProtobufCServiceDescriptor *svc,
	      const char *method, const ProtobufCMessage *req,
	      ProtobufCMessage **resp, int timeout_ms, struct rpc_status *st);

/* Fetch the whole shard map of a volume (pages of 65536 segments), by id
 * and, when name is NULL, looking the name up with ListVolumes if metad
 * needs it.  Thread pool only.  OMBRA_ENOTFOUND when the volume does not
 * exist (any more); other codes with errmsg. */
int meta_fetch_volume(struct stored *sd, uint64_t vol_id, const char *name,
		      struct sm_volume **out, char *errmsg);

/* ------------------------------------------------ node.c */

/* Initialize node.c's timers (call once, before anything can fail). */
void node_init(struct stored *sd);
/* Register, fetch maps, start heartbeats; `ready` runs on the loop once
 * the node serves data (or with an error when start-up failed). */
int node_start(struct stored *sd,
	       void (*ready)(struct stored *, int rv, const char *errmsg));
/* True while the node lease is valid (self-fencing otherwise): heartbeats
 * answered within the lease and, after the lease was lost and came back,
 * the shard maps refreshed since (maps_suspect). */
bool node_lease_valid(struct stored *sd);
/* A shard-map refresh begun as number seq (fetch_seq) succeeded
 * (mapcache.c): ends maps_suspect if it began after the lease came back. */
void node_maps_refreshed(struct stored *sd, uint64_t seq);
void node_stop_timers(struct stored *sd);

/* ------------------------------------------------ mapcache.c */

/* Refetch every cached volume and those of the node's region (coalesced
 * with a refresh in flight); done (may be NULL) runs on the loop with 0
 * or the error. */
void maps_refresh(struct stored *sd, void (*done)(struct stored *, int rv));
/* min_epoch for maps_need(): fetch the volume again in any case. */
#define MAPS_REFETCH UINT64_MAX
/* True when the cached map of v is old enough that a request it refuses
 * (not primary, not in sync, beyond the volume) should refetch it once. */
bool maps_may_lag(struct stored *sd, const struct sm_volume *v);
/* True when [off, off + len) of segment seg lies (partly) beyond the
 * cached size of v: the volume may have grown since v was fetched, so a
 * request is only refused after one MAPS_REFETCH (whatever v's age). */
bool maps_beyond(const struct sm_volume *v, uint64_t seg, uint64_t off,
		 uint64_t len);
/* Make sure the map of vol is current enough: when it is not cached or
 * min_epoch > the segment's epoch in the cache, fetch it and then call
 * cb(arg, rv) on the loop (rv 0 or OMBRA_ENOTFOUND / other).  Calls cb
 * synchronously when nothing needs fetching.  Concurrent fetches of one
 * volume are coalesced; with MAPS_REFETCH the answer always comes from a
 * fetch that began after this call (one already in flight may have read
 * metad before the change the caller needs to see, e.g. a resize). */
void maps_need(struct stored *sd, uint64_t vol, uint64_t seg,
	       uint64_t min_epoch, void (*cb)(void *arg, int rv), void *arg);
/* In a maps_need() callback (rv its answer): the cached map of vol,
 * checked against a request's segment_size_bytes (0: any).  NULL when the
 * request cannot go on, with *code and msg (len bytes): UNAVAILABLE when
 * no map could be fetched, missing_code when the volume does not exist,
 * INVALID_ARGUMENT for another segment size.  A failed refetch leaves the
 * cached map, which is used. */
struct sm_volume *maps_checked(struct stored *sd, uint64_t vol, int rv,
			       uint64_t segsize, grpc_status_code missing_code,
			       grpc_status_code *code, char *msg, size_t len);

/* ------------------------------------------------ services */

int svc_register(struct stored *sd, char *errmsg);
/* Start the segment's next queued write if none is running (after
 * another user of ss->busy, e.g. a re-sync, released it). */
void wop_pump(struct stored *sd, struct segstate *ss);
/* The version for the next write of (vol, seg) in epoch: seq_hint when
 * non-zero, else the segment's highest stored sequence + 1 in this epoch
 * (1 in a new one).  Thread pool only (reads the store). */
int wop_next_version(struct segstore *s, uint64_t vol, uint64_t seg,
		     uint64_t epoch, uint64_t seq_hint, uint64_t *version,
		     char *errmsg);
void svc_write(struct rpc_call *call, const ProtobufCMessage *req, void *data);
void svc_read(struct rpc_call *call, const ProtobufCMessage *req, void *data);
/* Check the blocks of a Replicate against the segment's volume block
 * range [first, end) and their crcs, and fill out (q->n_blocks entries,
 * pointing into q).  0, or OMBRA_EINVAL with errmsg (nothing applied). */
int replicate_blocks_check(const Ombra__V1__ReplicateRequest *q, uint64_t first,
			   uint64_t end, struct segstore_block *out,
			   char *errmsg);
/* svc_copy.c: Pull, DropCopy, ListCopies; foreign_rep.c: Replicate with
 * shadow=true (svc_replicate hands those over). */
void svc_pull(struct rpc_call *call, const ProtobufCMessage *req, void *data);
void svc_drop_copy(struct rpc_call *call, const ProtobufCMessage *req,
		   void *data);
void svc_list_copies(struct rpc_call *call, const ProtobufCMessage *req,
		     void *data);
void svc_replicate_shadow(struct rpc_call *call, const ProtobufCMessage *req,
			  void *data);

/* Repair the given bad blocks of (vol, seg) from another copy (Read with
 * any_copy), verify and store them (segstore_repair), then call
 * done(arg, rv, errmsg) on the loop: rv 0 when every block was repaired,
 * OMBRA_EIO (DATA_LOSS) when some could not be.  blocks is copied. */
void repair_blocks(struct stored *sd, uint64_t vol, uint64_t seg,
		   const uint64_t *blocks, size_t n,
		   void (*done)(void *arg, int rv, const char *errmsg),
		   void *arg);

void scrub_start(struct stored *sd);
void resync_kick(struct stored *sd);
void resync_start(struct stored *sd);

/* ------------------------------------------------ helpers */

/* Milliseconds of the loop clock. */
static inline uint64_t stored_now(struct stored *sd)
{
	return uv_now(sd->loop);
}

#endif
