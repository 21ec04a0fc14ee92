/* fsm_testlib.h: fixture and MetaCommand builders shared by the state
 * machine unit tests (see fsm_testlib.c).  Every builder applies one
 * command at the given Raft index (time_unix_ms = 1000 + index), asserts
 * that fsm_apply_command() returned 0 and returns the result. */
#ifndef OMBRA_TESTS_FSM_TESTLIB_H
#define OMBRA_TESTS_FSM_TESTLIB_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "metad/cmd.h"
#include "metad/fsm.h"
#include "metad/placement.h"

/* One test's state: a temporary root, the fsm open on root/a, and the
 * change events it reported. */
struct fixture {
	char root[64];
	char dir[128];
	struct fsm *f;
	unsigned changes;
	char last_kind[32];
	char last_name[96];
	bool last_deleted;
	uint64_t last_index;
};

/* cmocka setup/teardown: *state is a struct fixture. */
int setup(void **state);
int teardown(void **state);

/* Open another fsm under the fixture's root (closed by the caller). */
struct fsm *open_at(struct fixture *fx, const char *sub);

/* Apply m (request id rid, NULL = none). */
struct fsm_result apply(struct fsm *f, uint64_t index,
			Ombra__V1__MetaCommand *m, const char *rid);
struct fsm_result add_region(struct fsm *f, uint64_t index, const char *name,
			     const char *rid);
/* One tier "fast" of capacity bytes. */
struct fsm_result register_node(struct fsm *f, uint64_t index, const char *name,
				const char *region, const char *address,
				uint64_t capacity);
struct fsm_result create_volume(struct fsm *f, uint64_t index, const char *name,
				const char *region, uint64_t size,
				uint64_t segment, uint32_t replicas,
				const char *rid);
struct fsm_result resize_volume(struct fsm *f, uint64_t index, const char *name,
				uint64_t size);
struct fsm_result delete_volume(struct fsm *f, uint64_t index,
				const char *name);
struct fsm_result set_node_state(struct fsm *f, uint64_t index, uint64_t id,
				 Ombra__V1__NodeState st);
/* Exception with tier "fast", one replica (0 = none). */
struct fsm_result set_placement(struct fsm *f, uint64_t index,
				uint64_t volume_id, uint64_t segment,
				uint64_t primary, uint64_t replica, bool clear);
struct fsm_result replica_change(struct fsm *f, uint64_t index,
				 uint64_t volume_id, uint64_t segment,
				 uint64_t node, uint64_t epoch,
				 uint64_t primary, bool synced,
				 const char *rid);

/* A snapshot of f taken like libraft does (snapshot, snapshot_async,
 * finalize); the returned copy is raft_malloc'd (restore() takes it). */
struct raft_buffer take_snapshot(struct fsm *f);
/* raft_fsm restore of buf into f; on success f owns buf->base. */
int restore(struct fsm *f, struct raft_buffer *buf);

/* fsm_state_hash() asserted to succeed. */
void hash_of(struct fsm *f, char hex[65]);

/* Region r1 with nodes n1..n3 (ids 1..3, capacities 1, 2, 3 TiB) at
 * indexes 1..4. */
void build_cluster(struct fsm *f);

#endif
