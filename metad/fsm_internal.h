/* fsm_internal.h: shared internals of the metadata state machine (fsm.c,
 * fsm_apply.c, fsm_query.c, fsm_snapshot.c): the LMDB layout and the small
 * helpers every part uses to read and write protobuf records.
 *
 * LMDB layout (one environment, named databases; integer keys are 8-byte
 * big-endian so that LMDB's byte order is numeric order):
 *   meta          "applied_index", "next_node_id", "next_volume_id",
 *                 "map_index" (last index that changed a volume, node or
 *                 placement) -> u64
 *   regions       name -> Region
 *   nodes         id -> Node
 *   node_names    name -> id
 *   volumes       id -> Volume
 *   volume_names  name -> id
 *   placements    (volume id, segment) -> SegmentPlacement (exceptions only)
 *   members       id -> MetadMember
 *   requests      request_id -> CommandResult (deduplication)
 *   request_log   index -> request_id (prunes requests older than
 *                 FSM_DEDUP_WINDOW indexes, deterministically during apply)
 *   vleases       volume id -> writer lease timing (fsm_vlease.c)
 *   failovers     (volume id, Raft index) -> FailoverEvent (fsm_promote.c)
 *
 * Failure: helpers return OMBRA_EIO with errmsg naming the LMDB call, or
 * OMBRA_ENOTFOUND (errmsg untouched) when a key is absent. */
#ifndef OMBRA_METAD_FSM_INTERNAL_H
#define OMBRA_METAD_FSM_INTERNAL_H

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>

#include "audit.h"
#include "fsm.h"
#include "placement.h"

#define FSM_MAP_SIZE (1024ull * 1024ull * 1024ull)
#define FSM_DEDUP_WINDOW 100000u
#define FSM_REQUEST_ID_MAX 128u

#define FSM_KEY_APPLIED "applied_index"
#define FSM_KEY_NEXT_NODE "next_node_id"
#define FSM_KEY_NEXT_VOLUME "next_volume_id"
#define FSM_KEY_MAP_INDEX "map_index"

/* The order here is the order fsm_state_hash() walks: never reorder. */
enum fsm_db {
	FSM_DB_META,
	FSM_DB_REGIONS,
	FSM_DB_NODES,
	FSM_DB_NODE_NAMES,
	FSM_DB_VOLUMES,
	FSM_DB_VOLUME_NAMES,
	FSM_DB_PLACEMENTS,
	FSM_DB_MEMBERS,
	FSM_DB_REQUESTS,
	FSM_DB_REQUEST_LOG,
	FSM_DB_VLEASES,
	FSM_DB_FAILOVERS,
	FSM_DB_COUNT
};

extern const char *const fsm_db_names[FSM_DB_COUNT];

struct fsm {
	MDB_env *env; /* NULL after a failed restore: every call -> EIO */
	MDB_dbi dbi[FSM_DB_COUNT];
	char *dir;	   /* owned */
	struct raft *raft; /* may be NULL (tests): index from raft_counter */
	uint64_t raft_counter;
	fsm_change_fn change_fn;
	void *change_data;
	uint64_t snapshots_taken;
	uint64_t snapshots_restored;
	/* fsm_audit.c: the audit log (NULL: off), the records of the entry
	 * being applied (written once its transaction committed), and that
	 * entry's index and leader time stamp. */
	struct audit *audit;
	struct audit_pending audit_pending;
	uint64_t audit_index, audit_cmd_ms;
};

/* Open f->env on f->dir and every named DB (created if missing).  On
 * failure f->env is NULL.  Returns 0 or OMBRA_EIO. */
int fsm_env_open(struct fsm *f, char *errmsg);
/* Close f->env (if open) and set it to NULL. */
void fsm_env_close(struct fsm *f);

/* mdb_txn_begin with flags (0 or MDB_RDONLY); OMBRA_EIO if closed. */
int fsm_txn_begin(struct fsm *f, unsigned flags, MDB_txn **txn, char *errmsg);

/* Format "<what>: <mdb_strerror(rc)>" into errmsg; returns OMBRA_EIO. */
int fsm_lmdb_error(char *errmsg, int rc, const char *what);

void fsm_u64_encode(uint8_t out[8], uint64_t v);
uint64_t fsm_u64_decode(const void *in);

/* u64 value under a meta key; absent -> *out = 0. */
int fsm_meta_get(struct fsm *f, MDB_txn *txn, const char *key, uint64_t *out,
		 char *errmsg);
int fsm_meta_put(struct fsm *f, MDB_txn *txn, const char *key, uint64_t v,
		 char *errmsg);

/* Read and unpack one record (malloc'd; free_unpacked with NULL).
 * OMBRA_ENOTFOUND if absent, OMBRA_EIO if LMDB fails or the bytes do not
 * decode. */
int fsm_pb_get(struct fsm *f, MDB_txn *txn, enum fsm_db db, const MDB_val *key,
	       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
	       char *errmsg);
/* Pack m straight into LMDB (MDB_RESERVE) under key. */
int fsm_pb_put(struct fsm *f, MDB_txn *txn, enum fsm_db db, const MDB_val *key,
	       const ProtobufCMessage *m, char *errmsg);

/* id stored under a name key (node_names, volume_names). */
int fsm_name_get(struct fsm *f, MDB_txn *txn, enum fsm_db db, const char *name,
		 uint64_t *id, char *errmsg);

/* Record by 8-byte id key (nodes, volumes, members). */
int fsm_id_get(struct fsm *f, MDB_txn *txn, enum fsm_db db, uint64_t id,
	       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
	       char *errmsg);

/* Volume by name: OMBRA_ENOTFOUND with "volume 'x' does not exist". */
int fsm_volume_by_name(struct fsm *f, MDB_txn *txn, const char *name,
		       Ombra__V1__Volume **out, char *errmsg);

/* 16-byte key of a placement exception. */
void fsm_placement_key(uint8_t out[16], uint64_t volume_id, uint64_t segment);

/* ceil(size / segment_size) without overflow; 0 if segment_size is 0. */
uint64_t fsm_segment_count(uint64_t size, uint64_t segment_size);

/* ---- fsm_query.c: a growable array of unpacked messages and a filtered
 * scan of one DB into it (key order).  OMBRA_ENOMEM / OMBRA_EIO. */
struct fsm_vec {
	ProtobufCMessage **items;
	size_t n;
	size_t cap;
};

typedef bool (*fsm_keep_fn)(const ProtobufCMessage *m, const void *arg);

int fsm_scan(struct fsm *f, MDB_txn *txn, enum fsm_db db,
	     const ProtobufCMessageDescriptor *desc, fsm_keep_fn keep,
	     const void *arg, struct fsm_vec *out, char *errmsg);

/* keep() for fsm_scan of FSM_DB_VOLUMES: home_region == (char *)arg. */
bool fsm_keep_volume_region(const ProtobufCMessage *m, const void *arg);

/* ---- fsm_apply.c: what one applied command changed, reported to the
 * change listener after commit, one event per (kind, name). */
struct fsm_change_ev {
	const char *kind; /* static string */
	char name[96];
	bool deleted;
};

struct fsm_change {
	struct fsm_change_ev *ev;
	size_t n, cap;
	bool oom; /* an event could not be recorded: apply fails ENOMEM */
};

/* Record an event (a repeat of the same kind and name is dropped). */
void fsm_changed(struct fsm_change *ch, const char *kind, const char *name,
		 bool deleted);

/* ---- fsm_place.c: the current placement of segments, shared by the
 * queries and the apply-side lease maintenance (fsm_lease.c).
 *
 * The computed (default) placement of a segment is weighted rendezvous
 * over ALL registered nodes of the volume's home region with capacity > 0,
 * whatever their state, with lease_epoch 1; node failures are recorded as
 * stored exceptions (fsm_lease.c), so that a computed placement never
 * changes when a node's state does. */
struct fsm_region_nodes {
	struct placement_node *pn;   /* candidates, sorted by id */
	Ombra__V1__NodeState *state; /* state of pn[i] */
	size_t n;
};

/* Load every node of region (any state).  out is zeroed first; free with
 * fsm_region_nodes_free() in every case.  OMBRA_ENOMEM / OMBRA_EIO. */
int fsm_region_nodes_load(struct fsm *f, MDB_txn *txn, const char *region,
			  struct fsm_region_nodes *out, char *errmsg);
void fsm_region_nodes_free(struct fsm_region_nodes *rn);

/* State of node id in rn; 0 (unspecified) if it is not there. */
Ombra__V1__NodeState fsm_region_node_state(const struct fsm_region_nodes *rn,
					   uint64_t id);

/* Computed placement of one segment as a heap message shaped like an
 * unpacked one (free with protobuf_c_message_free_unpacked); NULL on
 * out-of-memory. */
Ombra__V1__SegmentPlacement *
fsm_place_computed(const struct fsm_region_nodes *rn, uint64_t volume_id,
		   uint64_t segment, uint32_t replicas);

/* Stored exception of (volume, segment) if any, else the computed one.
 * *out is heap allocated (as above).  OMBRA_ENOMEM / OMBRA_EIO. */
int fsm_place_current(struct fsm *f, MDB_txn *txn, const Ombra__V1__Volume *vol,
		      uint64_t segment, const struct fsm_region_nodes *rn,
		      Ombra__V1__SegmentPlacement **out, char *errmsg);

/* Normalize a stored exception after unpacking: index, exception flag,
 * lease_epoch 0 (written before epochs existed) read as 1. */
void fsm_place_normalize(Ombra__V1__SegmentPlacement *p, uint64_t segment);

/* Store p as the exception of (volume_id, p->index) (sets p->exception)
 * and queue its audit record (fsm_audit_placement). */
int fsm_place_put(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
		  Ombra__V1__SegmentPlacement *p, char *errmsg);

/* Append id to (*ids)[0..*n) unless present (realloc: the array must come
 * from malloc, as unpacked and computed placements' do). */
int fsm_ids_add(uint64_t **ids, size_t *n, uint64_t id);

/* ---- fsm_lease.c: placement maintenance for leases, in the applying
 * transaction.  Each walks every segment of the volumes concerned:
 * O(segments * nodes-in-region) time, one exception write per segment
 * changed.  Events: one "placement" per volume changed. */

/* Node node_id (of region) was set DOWN: every segment of every volume
 * homed in region whose current placement has it as primary or in-sync
 * replica loses it to resync_node_ids; a lost primary is replaced by the
 * first in-sync replica with lease_epoch + 1 (it stays primary if it was
 * the only copy).  Any other DOWN node an exception still names is evicted
 * the same way. */
int fsm_lease_node_down(struct fsm *f, MDB_txn *txn, const char *region,
			uint64_t node_id, struct fsm_change *ch, char *errmsg);

/* The same for every node of the home region that is DOWN, on segments
 * [first, segment_count) of vol (a new or grown volume). */
int fsm_lease_evict_down(struct fsm *f, MDB_txn *txn,
			 const Ombra__V1__Volume *vol, uint64_t first,
			 struct fsm_change *ch, char *errmsg);

/* The node set of region changed from `before` (a node registered or its
 * capacity changed): pin, as exceptions, the old computed placement of
 * every segment without an exception whose computed placement changes, so
 * that no segment moves to a node that does not hold its data; a segment
 * with fewer copies than the volume's replicas also gets the new set's
 * extra nodes in resync_node_ids.  Segments that had no copy at all (no
 * node in the region) take the computed placement. */
int fsm_lease_pin(struct fsm *f, MDB_txn *txn, const char *region,
		  const struct fsm_region_nodes *before, struct fsm_change *ch,
		  char *errmsg);

/* CmdReplicaChange (contract in proto/meta.proto); refusals in res. */
int fsm_lease_replica_change(struct fsm *f, MDB_txn *txn,
			     const Ombra__V1__CmdReplicaChange *c,
			     struct fsm_result *res, struct fsm_change *ch,
			     char *errmsg);

/* Delete key from db (absent is fine).  0 or OMBRA_EIO. */
int fsm_del_key(struct fsm *f, MDB_txn *txn, enum fsm_db db, const void *key,
		size_t len, char *errmsg);

/* ---- fsm_apply_place.c */

/* Delete every placement exception of a volume. */
int fsm_delete_placements(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
			  char *errmsg);
/* CmdSetPlacement; refusals in res. */
int fsm_apply_set_placement(struct fsm *f, MDB_txn *txn,
			    const Ombra__V1__CmdSetPlacement *c,
			    struct fsm_result *res, struct fsm_change *ch,
			    char *errmsg);

/* ---- fsm_vlease.c: CmdVolumeLease (contract in fsm_vlease.c and
 * proto/meta.proto); refusals in res, res->object_id = the writer epoch
 * granted or renewed.  now_ms: the command's time_unix_ms. */
int fsm_vlease_apply(struct fsm *f, MDB_txn *txn, uint64_t index,
		     uint64_t now_ms, const Ombra__V1__CmdVolumeLease *c,
		     struct fsm_result *res, struct fsm_change *ch,
		     char *errmsg);
/* Drop the lease record of a deleted volume. */
int fsm_vlease_delete(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
		      char *errmsg);
/* Node node_id (of region) was set DOWN: the exceptions of volumes homed
 * in OTHER regions that name it as primary or in-sync replica (a shadow
 * promoted by a region failover, or home nodes re-synced by it) lose it to
 * resync_node_ids, and a lost primary is replaced by the first in-sync
 * replica that is not DOWN, with lease_epoch + 1 (an only copy stays).
 * Walks the placements DB once.  Complements fsm_lease_node_down(). */
int fsm_promote_node_down(struct fsm *f, MDB_txn *txn, const char *region,
			  uint64_t node_id, struct fsm_change *ch,
			  char *errmsg);
/* Drop the failover events of a deleted volume. */
int fsm_failovers_delete(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
			 char *errmsg);

/* ---- fsm_promote.c: CmdPromoteShadow (region failover), recording a
 * FailoverEvent; refusals in res.  now_ms: the command's time_unix_ms. */
int fsm_promote_apply(struct fsm *f, MDB_txn *txn, uint64_t index,
		      uint64_t now_ms, const Ombra__V1__CmdPromoteShadow *c,
		      struct fsm_result *res, struct fsm_change *ch,
		      char *errmsg);

/* ---- fsm_shadow.c: CmdSetShadowPolicy (also drops the shadows in
 * regions the new policy does not allow) and CmdShadowChanges (each
 * change re-checked, failing ones skipped; res->object_id = changes
 * applied).  Refusals in res.  now_ms: the command's time_unix_ms. */
int fsm_shadow_set_policy(struct fsm *f, MDB_txn *txn, uint64_t index,
			  const Ombra__V1__CmdSetShadowPolicy *c,
			  struct fsm_result *res, struct fsm_change *ch,
			  char *errmsg);
int fsm_shadow_changes(struct fsm *f, MDB_txn *txn, uint64_t now_ms,
		       const Ombra__V1__CmdShadowChanges *c,
		       struct fsm_result *res, struct fsm_change *ch,
		       char *errmsg);

/* ---- fsm_dedup.c */

/* Stored result of an earlier command with request id rid, if any
 * (*found). */
int fsm_dedup_lookup(struct fsm *f, MDB_txn *txn, const char *rid,
		     struct fsm_result *res, bool *found, char *errmsg);
/* Record res for rid at index and prune records older than the window. */
int fsm_dedup_store(struct fsm *f, MDB_txn *txn, uint64_t index,
		    const char *rid, const struct fsm_result *res,
		    char *errmsg);

/* ---- fsm_audit.c: records for the audit log (lib/audit.h; shapes in
 * docs/metad.md "Audit log"), queued in f->audit_pending and written by
 * fsm_apply_command only after the entry's transaction committed.  All
 * are no-ops while f->audit is NULL. */

/* The placement p of volume_id was stored: its primary, lease epoch and
 * in-sync copies (a lease grant when primary or epoch changed). */
void fsm_audit_placement(struct fsm *f, uint64_t volume_id,
			 const Ombra__V1__SegmentPlacement *p);
/* The stored exception of (volume_id, segment) was deleted (the segment
 * is back to its computed placement, epoch 1). */
void fsm_audit_placement_cleared(struct fsm *f, uint64_t volume_id,
				 uint64_t segment);
/* Volume vol was created: each segment's lease is epoch 1 at its
 * computed primary (GetShardMap names it). */
void fsm_audit_volume_created(struct fsm *f, const Ombra__V1__Volume *vol);
/* Node node_id was set to state. */
void fsm_audit_node_state(struct fsm *f, uint64_t node_id,
			  Ombra__V1__NodeState state);
/* A volume writer lease changed: op "acquire", "renew" or "release";
 * holder (printable), the volume's writer_epoch after it, and the
 * lease's expiry and duration (ms; 0 after a release). */
void fsm_audit_writer_lease(struct fsm *f, const Ombra__V1__Volume *vol,
			    const char *op, const char *holder,
			    uint64_t expires_ms, uint64_t duration_ms);

/* Refusal: fill res and return 0 (the command is applied as a no-op). */
int fsm_refuse(struct fsm_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
