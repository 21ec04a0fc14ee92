/* fsm_internal.h: shared internals of the metadata state machine (fsm.c,
 * fsm_apply.c, fsm_query.c, fsm_snapshot.c): the LMDB layout and the small
 * helpers every part uses to read and write protobuf records.
 *
 * LMDB layout (one environment, named databases; integer keys are 8-byte
 * big-endian so that LMDB's byte order is numeric order):
 *   meta          "applied_index", "next_node_id", "next_volume_id" -> u64
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
 *
 * Failure: helpers return OMBRA_EIO with errmsg naming the LMDB call, or
 * OMBRA_ENOTFOUND (errmsg untouched) when a key is absent. */
#ifndef OMBRA_METAD_FSM_INTERNAL_H
#define OMBRA_METAD_FSM_INTERNAL_H

#include <lmdb.h>
#include <protobuf-c/protobuf-c.h>

#include "fsm.h"

#define FSM_MAP_SIZE (1024ull * 1024ull * 1024ull)
#define FSM_DEDUP_WINDOW 100000u
#define FSM_REQUEST_ID_MAX 128u

#define FSM_KEY_APPLIED "applied_index"
#define FSM_KEY_NEXT_NODE "next_node_id"
#define FSM_KEY_NEXT_VOLUME "next_volume_id"

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

#endif
