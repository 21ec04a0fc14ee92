/* fsm.h: the metadata state machine: MetaCommands applied to an LMDB
 * environment, plus the read-side queries served to clients.
 *
 * Durability and idempotence: every apply runs in one LMDB write transaction
 * that also stores the Raft index it applied, so an entry applied twice (log
 * replay after restart) is a no-op, and a command carrying a request_id that
 * was already applied returns the stored CommandResult instead of running
 * again.  LMDB runs with MDB_NOSYNC and is synced by fsm_sync() and before
 * every snapshot: the Raft log is the durable record, and restart replays it
 * from the stored applied index.
 *
 * Snapshots (DESIGN.md: "Raft snapshots are LMDB copies"): a header (magic
 * "OMBRASN1", applied index) followed by a compacted LMDB copy.  Restore
 * swaps the LMDB file unless the local state is already at or past the
 * snapshot's index (a plain restart).
 *
 * Threads: not thread-safe; owned by the daemon's loop thread.
 * Failure: LMDB errors return OMBRA_EIO with errmsg; a state-dependent
 * refusal (duplicate name, unknown region) is not an error of apply: it is
 * recorded in the result and the applied index still advances. */
#ifndef OMBRA_METAD_FSM_H
#define OMBRA_METAD_FSM_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.pb-c.h"
#include "common.pb-c.h"
#include "err.h"
#include "meta.pb-c.h"
#include "volume.pb-c.h"

struct fsm;

/* Outcome of one applied command (also what the dedup table stores). */
struct fsm_result {
	int code; /* gRPC status code, 0 = OK */
	char message[256];
	uint64_t object_id; /* region/node/volume/member id touched */
	uint64_t index;	    /* Raft index applied at */
};

/* Called after each applied command that changed state (Watch streams,
 * caches).  kind: "region" | "node" | "volume" | "member" | "placement". */
typedef void (*fsm_change_fn)(void *data, uint64_t index, const char *kind,
			      const char *name, bool deleted);

/* Open or create the environment in dir (created if missing; map size 1
 * GiB).  Returns 0 or OMBRA_EIO with errmsg. */
int fsm_open(const char *dir, struct fsm **out, char *errmsg);
void fsm_close(struct fsm *f);

/* Fill out as a version-3 raft_fsm (apply, snapshot, snapshot_async in
 * the thread pool, snapshot_finalize, restore) backed by f.  apply's
 * *result is a malloc'd struct fsm_result when a local raft_apply() waits
 * for the entry (the proposer frees it), NULL otherwise.  r: the raft instance
 * that calls apply (its last_applied+1 is the entry's index); set before
 * raft_start(). */
void fsm_bind_raft(struct fsm *f, struct raft *r, struct raft_fsm *out);

/* Apply one decoded command at Raft index `index` (exposed for tests and
 * used by the raft apply hook).  res filled in every case where 0 is
 * returned; index <= applied index: no-op with res->code 0. */
int fsm_apply_command(struct fsm *f, uint64_t index,
		      const Ombra__V1__MetaCommand *cmd,
		      struct fsm_result *res);

void fsm_set_change_listener(struct fsm *f, fsm_change_fn fn, void *data);

/* Record every committed lease grant, writer lease change, node state
 * change and volume creation in a (lib/audit.h; docs/metad.md "Audit
 * log"), from the next applied entry on; NULL turns it off.  a is not
 * owned: the caller closes it after fsm_close(). */
struct audit;
void fsm_set_audit(struct fsm *f, struct audit *a);

/* Flush LMDB to disk (mdb_env_sync). */
int fsm_sync(struct fsm *f);

/* Last applied command index (0 when empty). */
uint64_t fsm_applied_index(struct fsm *f);

/* Raft index of the last applied command that changed a volume, a node or
 * a placement (NodeHeartbeatResponse.map_index); a state written before
 * this was tracked answers its applied index (conservative). */
uint64_t fsm_map_index(struct fsm *f);

/* SHA-256 over every replicated key and value except the applied index,
 * as 64 hex chars + NUL into hex[65]. */
int fsm_state_hash(struct fsm *f, char hex[65]);

/* Snapshot counters since open. */
uint64_t fsm_snapshots_taken(const struct fsm *f);
uint64_t fsm_snapshots_restored(const struct fsm *f);

/* ---- queries: each runs in its own read transaction.  Returned messages
 * are heap-allocated; free single ones with protobuf_c_message_free_unpacked
 * (&m->base, NULL) and lists with fsm_free_list().  OMBRA_ENOTFOUND with a
 * message when the named object does not exist. */

int fsm_get_volume(struct fsm *f, const char *name, Ombra__V1__Volume **out,
		   char *errmsg);
int fsm_get_volume_by_id(struct fsm *f, uint64_t id, Ombra__V1__Volume **out,
			 char *errmsg);
/* region: filter, NULL or "" = all.  Sorted by name. */
int fsm_list_volumes(struct fsm *f, const char *region,
		     Ombra__V1__Volume ***out, size_t *n, char *errmsg);
int fsm_get_region(struct fsm *f, const char *name, Ombra__V1__Region **out,
		   char *errmsg);
int fsm_list_regions(struct fsm *f, Ombra__V1__Region ***out, size_t *n,
		     char *errmsg);
int fsm_get_node(struct fsm *f, uint64_t id, Ombra__V1__Node **out,
		 char *errmsg);
/* Sorted by id.  region: filter, NULL or "" = all. */
int fsm_list_nodes(struct fsm *f, const char *region, Ombra__V1__Node ***out,
		   size_t *n, char *errmsg);
/* Members recorded by CmdAddMember (and not removed), sorted by id. */
int fsm_list_members(struct fsm *f, Ombra__V1__MetadMember ***out, size_t *n,
		     char *errmsg);
int fsm_counts(struct fsm *f, uint32_t *regions, uint32_t *nodes,
	       uint32_t *volumes);

/* Shard map of a volume: segments [first, first+max) with default placement
 * (weighted rendezvous over ALL the home region's registered nodes, any
 * state, weight = capacity, lease_epoch 1) overridden by stored exceptions
 * (node failures, pins, replica changes; see fsm_lease.c); every node
 * named (primary, replicas, resync list, shadows) is listed once in
 * resp->nodes.  resp: zero-initialized by the caller with
 * ombra__v1__get_volume_sharding_info_response__init(); fields are heap
 * allocated: free with fsm_free_shard_map(resp). */
int fsm_shard_map(struct fsm *f, const char *volume, uint64_t first,
		  uint32_t max, Ombra__V1__GetVolumeShardingInfoResponse *resp,
		  char *errmsg);
/* The same by volume id (OMBRA_ENOTFOUND "volume N does not exist"). */
int fsm_shard_map_by_id(struct fsm *f, uint64_t volume_id, uint64_t first,
			uint32_t max,
			Ombra__V1__GetVolumeShardingInfoResponse *resp,
			char *errmsg);
void fsm_free_shard_map(Ombra__V1__GetVolumeShardingInfoResponse *resp);

/* Shadows (fsm_shadow.c, for the leader's shadow policy evaluator).
 * fsm_volume_shadows: the stored placements of volume_id that have
 * shadows, by segment; free with fsm_free_list(*out, *n).
 * fsm_placements_of: the current placement of each of segments[0..n)
 * (each < vol->segment_count) of vol; *out is an array of n, free with
 * fsm_free_list(*out, n).  OMBRA_ENOMEM / OMBRA_EIO with errmsg. */
int fsm_volume_shadows(struct fsm *f, uint64_t volume_id,
		       Ombra__V1__SegmentPlacement ***out, size_t *n,
		       char *errmsg);
int fsm_placements_of(struct fsm *f, const Ombra__V1__Volume *vol,
		      const uint64_t *segments, size_t n,
		      Ombra__V1__SegmentPlacement ***out, char *errmsg);

void fsm_free_list(void *items, size_t n);

#endif
