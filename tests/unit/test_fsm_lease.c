/* test_fsm_lease.c: unit tests of the lease-related placement maintenance
 * of the metadata state machine (metad/fsm_lease.c, fsm_place.c) on a real
 * LMDB environment: computed placement independent of node state,
 * promotion with lease_epoch + 1 and the resync list when a node goes
 * DOWN, replica reports (fencing by stale epoch and wrong primary,
 * idempotence, NODE_UP required to rejoin), pinning when a node registers,
 * volumes created or grown while a node is DOWN, map_index, and snapshot
 * and restore keeping the exceptions.  Fails through cmocka assertions. */
#include <grpc/status.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fsm_testlib.h"

#define SEGS 48u
#define MIB (1ull << 20)

/* The three nodes of build_cluster() as placement candidates. */
static const struct placement_node all3[3] = {
    {1, 1ull << 40}, {2, 2ull << 40}, {3, 3ull << 40}};

/* Whole shard map of a volume (asserted to succeed). */
static void map_of(struct fsm *f, const char *name,
		   Ombra__V1__GetVolumeShardingInfoResponse *resp)
{
	char errmsg[OMBRA_ERRMSG_LEN];

	ombra__v1__get_volume_sharding_info_response__init(resp);
	assert_int_equal(fsm_shard_map(f, name, 0, 0, resp, errmsg), 0);
}

static bool has(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == id)
			return true;
	}
	return false;
}

/* Same primary, replicas, resync list and epoch. */
static void assert_same_copies(const Ombra__V1__SegmentPlacement *a,
			       const Ombra__V1__SegmentPlacement *b)
{
	assert_int_equal(a->index, b->index);
	assert_int_equal(a->primary_node_id, b->primary_node_id);
	assert_int_equal(a->lease_epoch, b->lease_epoch);
	assert_int_equal(a->n_replica_node_ids, b->n_replica_node_ids);
	for (size_t i = 0; i < a->n_replica_node_ids; i++)
		assert_int_equal(a->replica_node_ids[i],
				 b->replica_node_ids[i]);
	assert_int_equal(a->n_resync_node_ids, b->n_resync_node_ids);
	for (size_t i = 0; i < a->n_resync_node_ids; i++)
		assert_int_equal(a->resync_node_ids[i], b->resync_node_ids[i]);
}

/* Expected placement after `down` failed, from the computed one over
 * all3 with k copies: checks p. */
static void check_evicted(const Ombra__V1__SegmentPlacement *p, uint64_t vol,
			  size_t k, uint64_t down)
{
	uint64_t want[3];
	size_t got = placement_pick(all3, 3, vol, p->index, k, want);
	size_t i;
	size_t r = 0;

	assert_int_equal(got, k);
	if (!has(want, got, down)) {
		assert_false(p->exception);
		assert_int_equal(p->primary_node_id, want[0]);
		assert_int_equal(p->lease_epoch, 1);
		assert_int_equal(p->n_resync_node_ids, 0);
		return;
	}
	if (k == 1) {
		/* Only copy: stays primary, the segment waits for it. */
		assert_false(p->exception);
		assert_int_equal(p->primary_node_id, down);
		assert_int_equal(p->lease_epoch, 1);
		assert_int_equal(p->n_resync_node_ids, 0);
		return;
	}
	assert_true(p->exception);
	assert_int_equal(p->n_resync_node_ids, 1);
	assert_int_equal(p->resync_node_ids[0], down);
	/* The survivors keep their order; the first is primary. */
	for (i = 0; i < got; i++) {
		if (want[i] == down)
			continue;
		if (r == 0)
			assert_int_equal(p->primary_node_id, want[i]);
		else
			assert_int_equal(p->replica_node_ids[r - 1], want[i]);
		r++;
	}
	assert_int_equal(p->n_replica_node_ids, r - 1);
	assert_int_equal(p->lease_epoch, want[0] == down ? 2 : 1);
}

static void test_computed_ignores_state(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__GetVolumeShardingInfoResponse a;
	Ombra__V1__GetVolumeShardingInfoResponse b;

	build_cluster(fx->f);
	/* Node 3 is DRAINING before the volume exists: still a candidate
	 * (only DOWN nodes are kept out, by exceptions). */
	assert_int_equal(
	    set_node_state(fx->f, 5, 3, OMBRA__V1__NODE_STATE__NODE_DRAINING)
		.code,
	    0);
	assert_int_equal(
	    create_volume(fx->f, 6, "v", "r1", SEGS * MIB, 0, 2, NULL).code, 0);
	map_of(fx->f, "v", &a);
	for (size_t i = 0; i < a.n_segments; i++) {
		check_evicted(a.segments[i], 1, 2, 99);
		assert_int_equal(a.segments[i]->lease_epoch, 1);
	}
	/* Back UP: nothing moves. */
	assert_int_equal(
	    set_node_state(fx->f, 7, 3, OMBRA__V1__NODE_STATE__NODE_UP).code,
	    0);
	map_of(fx->f, "v", &b);
	for (size_t i = 0; i < a.n_segments; i++)
		assert_same_copies(a.segments[i], b.segments[i]);
	fsm_free_shard_map(&a);
	fsm_free_shard_map(&b);
}

static void test_node_down_promotes(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__GetVolumeShardingInfoResponse m;
	Ombra__V1__GetVolumeShardingInfoResponse again;
	unsigned before;

	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v", "r1", SEGS * MIB, 0, 2, NULL).code, 0);
	assert_int_equal(
	    create_volume(fx->f, 6, "w", "r1", SEGS * MIB, 0, 3, NULL).code, 0);
	assert_int_equal(
	    create_volume(fx->f, 7, "one", "r1", SEGS * MIB, 0, 1, NULL).code,
	    0);
	assert_int_equal(add_region(fx->f, 8, "r2", NULL).code, 0);
	assert_int_equal(fsm_map_index(fx->f), 7); /* a region: no change */

	before = fx->changes;
	assert_int_equal(
	    set_node_state(fx->f, 9, 2, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	/* One node event, then one placement event per volume. */
	assert_int_equal(fx->changes - before, 3);
	assert_string_equal(fx->last_kind, "placement");
	assert_int_equal(fx->last_index, 9);
	assert_int_equal(fsm_map_index(fx->f), 9);

	map_of(fx->f, "v", &m);
	for (size_t i = 0; i < m.n_segments; i++)
		check_evicted(m.segments[i], 1, 2, 2);
	fsm_free_shard_map(&m);
	map_of(fx->f, "w", &m);
	for (size_t i = 0; i < m.n_segments; i++)
		check_evicted(m.segments[i], 2, 3, 2);
	fsm_free_shard_map(&m);
	map_of(fx->f, "one", &m);
	for (size_t i = 0; i < m.n_segments; i++)
		check_evicted(m.segments[i], 3, 1, 2);
	fsm_free_shard_map(&m);

	/* UP again: no placement change (the primaries re-sync and report);
	 * DOWN once more: nothing left to evict, epochs stay. */
	map_of(fx->f, "v", &m);
	assert_int_equal(
	    set_node_state(fx->f, 10, 2, OMBRA__V1__NODE_STATE__NODE_UP).code,
	    0);
	assert_string_equal(fx->last_kind, "node");
	assert_int_equal(
	    set_node_state(fx->f, 11, 2, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	map_of(fx->f, "v", &again);
	for (size_t i = 0; i < m.n_segments; i++)
		assert_same_copies(m.segments[i], again.segments[i]);
	fsm_free_shard_map(&m);
	fsm_free_shard_map(&again);

	/* A second failure promotes again: epoch 3 where both primaries
	 * of a 3-copy segment are gone. */
	assert_int_equal(
	    set_node_state(fx->f, 12, 3, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	map_of(fx->f, "w", &m);
	for (size_t i = 0; i < m.n_segments; i++) {
		const Ombra__V1__SegmentPlacement *p = m.segments[i];

		/* Node 1 is the only in-sync copy left. */
		assert_int_equal(p->primary_node_id, 1);
		assert_int_equal(p->n_replica_node_ids, 0);
		assert_int_equal(p->n_resync_node_ids, 2);
		assert_true(p->lease_epoch >= 1 && p->lease_epoch <= 3);
	}
	fsm_free_shard_map(&m);
}

/* Segment of volume 1 (2 copies over all3) whose computed primary and
 * replica are p and r. */
static uint64_t segment_with(uint64_t p, uint64_t r)
{
	for (uint64_t s = 0; s < SEGS; s++) {
		uint64_t want[2];

		placement_pick(all3, 3, 1, s, 2, want);
		if (want[0] == p && want[1] == r)
			return s;
	}
	fail_msg("no segment with primary %llu and replica %llu",
		 (unsigned long long)p, (unsigned long long)r);
	return 0;
}

static void check_segment(struct fsm *f, uint64_t seg, uint64_t primary,
			  uint64_t replica, uint64_t resync, uint64_t epoch)
{
	Ombra__V1__GetVolumeShardingInfoResponse m;
	char errmsg[OMBRA_ERRMSG_LEN];
	const Ombra__V1__SegmentPlacement *p;

	ombra__v1__get_volume_sharding_info_response__init(&m);
	assert_int_equal(fsm_shard_map_by_id(f, 1, seg, 1, &m, errmsg), 0);
	assert_int_equal(m.n_segments, 1);
	p = m.segments[0];
	assert_int_equal(p->primary_node_id, primary);
	assert_int_equal(p->lease_epoch, epoch);
	assert_int_equal(p->n_replica_node_ids, replica != 0 ? 1 : 0);
	if (replica != 0)
		assert_int_equal(p->replica_node_ids[0], replica);
	assert_int_equal(p->n_resync_node_ids, resync != 0 ? 1 : 0);
	if (resync != 0)
		assert_int_equal(p->resync_node_ids[0], resync);
	fsm_free_shard_map(&m);
}

static void test_replica_change(void **state)
{
	struct fixture *fx = *state;
	struct fsm_result r;
	uint64_t s;

	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v", "r1", SEGS * MIB, 0, 2, NULL).code, 0);
	s = segment_with(3, 2);

	/* Fencing: a stale epoch, a reporter that is not the primary. */
	r = replica_change(fx->f, 6, 1, s, 2, 2, 3, false, NULL);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "stale epoch 2"));
	r = replica_change(fx->f, 7, 1, s, 3, 1, 1, false, NULL);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "node 1 is not the primary"));
	check_segment(fx->f, s, 3, 2, 0, 1);

	/* Unknown things, bad ids. */
	assert_int_equal(replica_change(fx->f, 8, 9, s, 2, 1, 3, 0, NULL).code,
			 GRPC_STATUS_NOT_FOUND);
	assert_int_equal(
	    replica_change(fx->f, 9, 1, SEGS, 2, 1, 3, 0, NULL).code,
	    GRPC_STATUS_NOT_FOUND);
	assert_int_equal(replica_change(fx->f, 10, 1, s, 7, 1, 3, 0, NULL).code,
			 GRPC_STATUS_NOT_FOUND);
	assert_int_equal(replica_change(fx->f, 11, 1, s, 3, 1, 3, 0, NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(replica_change(fx->f, 12, 1, s, 2, 0, 3, 0, NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	/* Node 1 holds no copy of s. */
	assert_int_equal(replica_change(fx->f, 13, 1, s, 1, 1, 3, 0, NULL).code,
			 GRPC_STATUS_FAILED_PRECONDITION);

	/* The replica failed: out of the in-sync set, into resync. */
	r = replica_change(fx->f, 14, 1, s, 2, 1, 3, false, "fail-1");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 1);
	assert_string_equal(fx->last_kind, "placement");
	assert_int_equal(fsm_map_index(fx->f), 14);
	check_segment(fx->f, s, 3, 0, 2, 1);
	/* Reported again (another request): already removed, OK. */
	assert_int_equal(
	    replica_change(fx->f, 15, 1, s, 2, 1, 3, false, "fail-2").code, 0);
	check_segment(fx->f, s, 3, 0, 2, 1);

	/* Synced while DOWN: refused; once UP: back in sync. */
	assert_int_equal(
	    set_node_state(fx->f, 16, 2, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	check_segment(fx->f, s, 3, 0, 2, 1);
	r = replica_change(fx->f, 17, 1, s, 2, 1, 3, true, NULL);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "not UP"));
	assert_int_equal(
	    set_node_state(fx->f, 18, 2, OMBRA__V1__NODE_STATE__NODE_UP).code,
	    0);
	check_segment(fx->f, s, 3, 0, 2, 1);
	assert_int_equal(
	    replica_change(fx->f, 19, 1, s, 2, 1, 3, true, "sync-1").code, 0);
	check_segment(fx->f, s, 3, 2, 0, 1);
	/* Idempotent. */
	assert_int_equal(
	    replica_change(fx->f, 20, 1, s, 2, 1, 3, true, "sync-2").code, 0);
	check_segment(fx->f, s, 3, 2, 0, 1);
	/* A retried request id answers its first result, changes nothing. */
	r = replica_change(fx->f, 21, 1, s, 2, 1, 3, false, "sync-1");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.index, 19);
	check_segment(fx->f, s, 3, 2, 0, 1);

	/* After a promotion the old epoch is stale and the old primary is
	 * not the primary any more. */
	assert_int_equal(
	    set_node_state(fx->f, 22, 3, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	check_segment(fx->f, s, 2, 0, 3, 2);
	r = replica_change(fx->f, 23, 1, s, 2, 1, 3, false, NULL);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "stale epoch 1"));
	r = replica_change(fx->f, 24, 1, s, 2, 2, 3, false, NULL);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "node 3 is not the primary"));
	/* The new primary re-syncs the old one once it is back. */
	assert_int_equal(
	    set_node_state(fx->f, 25, 3, OMBRA__V1__NODE_STATE__NODE_UP).code,
	    0);
	assert_int_equal(
	    replica_change(fx->f, 26, 1, s, 3, 2, 2, true, NULL).code, 0);
	check_segment(fx->f, s, 2, 3, 0, 2);
}

static void test_new_node_pinned(void **state)
{
	struct fixture *fx = *state;
	const struct placement_node all4[4] = {
	    {1, 1ull << 40}, {2, 2ull << 40}, {3, 3ull << 40}, {4, 4ull << 40}};
	Ombra__V1__GetVolumeShardingInfoResponse a;
	Ombra__V1__GetVolumeShardingInfoResponse b;
	unsigned pinned = 0;
	unsigned before;

	/* A volume created before any node: its segments have no copy to
	 * keep, so the first nodes take them without pinning. */
	assert_int_equal(add_region(fx->f, 1, "r1", NULL).code, 0);
	assert_int_equal(
	    create_volume(fx->f, 2, "e", "r1", SEGS * MIB, 0, 2, NULL).code, 0);
	assert_int_equal(
	    register_node(fx->f, 3, "n1", "r1", "h1:7001", 1ull << 40).code, 0);
	assert_string_equal(fx->last_kind, "node");
	map_of(fx->f, "e", &a);
	for (size_t i = 0; i < a.n_segments; i++) {
		assert_false(a.segments[i]->exception);
		assert_int_equal(a.segments[i]->primary_node_id, 1);
	}
	fsm_free_shard_map(&a);
	/* The second node: every segment of e is short of a copy and gets
	 * it as a resync target, nothing moves. */
	assert_int_equal(
	    register_node(fx->f, 4, "n2", "r1", "h2:7001", 2ull << 40).code, 0);
	assert_string_equal(fx->last_kind, "placement");
	map_of(fx->f, "e", &a);
	for (size_t i = 0; i < a.n_segments; i++) {
		const Ombra__V1__SegmentPlacement *p = a.segments[i];

		assert_true(p->exception);
		assert_int_equal(p->primary_node_id, 1);
		assert_int_equal(p->lease_epoch, 1);
		assert_int_equal(p->n_replica_node_ids, 0);
		assert_int_equal(p->n_resync_node_ids, 1);
		assert_int_equal(p->resync_node_ids[0], 2);
	}
	fsm_free_shard_map(&a);
	/* Once synced, the third node changes nothing for e: full again. */
	for (uint64_t i = 0; i < SEGS; i++)
		assert_int_equal(
		    replica_change(fx->f, 5 + i, 1, i, 2, 1, 1, true, NULL)
			.code,
		    0);
	assert_int_equal(
	    register_node(fx->f, 5 + SEGS, "n3", "r1", "h3:7001", 3ull << 40)
		.code,
	    0);
	assert_string_equal(fx->last_kind, "node");
	assert_int_equal(delete_volume(fx->f, 6 + SEGS, "e").code, 0);

	assert_int_equal(
	    create_volume(fx->f, 7 + SEGS, "v", "r1", SEGS * MIB, 0, 2, NULL)
		.code,
	    0);
	map_of(fx->f, "v", &a);
	before = fx->changes;
	assert_int_equal(
	    register_node(fx->f, 8 + SEGS, "n4", "r1", "h4:7001", 4ull << 40)
		.object_id,
	    4);
	assert_int_equal(fx->changes - before, 2); /* node, placement v */
	map_of(fx->f, "v", &b);
	for (size_t i = 0; i < a.n_segments; i++) {
		uint64_t want[2];
		bool moves;

		/* Nothing moved to the empty node... */
		assert_same_copies(a.segments[i], b.segments[i]);
		/* ...and exactly the segments it would win are pinned. */
		placement_pick(all4, 4, 2, i, 2, want);
		moves = has(want, 2, 4);
		assert_int_equal(b.segments[i]->exception, moves);
		pinned += moves;
	}
	assert_true(pinned > 0 && pinned < SEGS);
	fsm_free_shard_map(&a);
	fsm_free_shard_map(&b);

	/* Re-registering with the same capacity pins nothing more. */
	assert_int_equal(
	    register_node(fx->f, 9 + SEGS, "n4", "r1", "h4:7002", 4ull << 40)
		.code,
	    0);
	assert_string_equal(fx->last_kind, "node");
	/* A later volume uses all four nodes. */
	assert_int_equal(
	    create_volume(fx->f, 10 + SEGS, "w", "r1", SEGS * MIB, 0, 2, NULL)
		.code,
	    0);
	map_of(fx->f, "w", &b);
	pinned = 0;
	for (size_t i = 0; i < b.n_segments; i++) {
		uint64_t want[2];

		placement_pick(all4, 4, 3, i, 2, want);
		assert_false(b.segments[i]->exception);
		assert_int_equal(b.segments[i]->primary_node_id, want[0]);
		pinned += has(want, 2, 4);
	}
	assert_true(pinned > 0);
	fsm_free_shard_map(&b);
	/* A node in another region pins nothing here. */
	assert_int_equal(add_region(fx->f, 11 + SEGS, "r2", NULL).code, 0);
	assert_int_equal(
	    register_node(fx->f, 12 + SEGS, "m1", "r2", "m:1", 1 << 30).code,
	    0);
	assert_string_equal(fx->last_kind, "node");
}

/* An exception naming a DOWN node as replica (SetPlacement) never gets it
 * promoted: the primary's failure leaves the segment on the primary. */
static void test_down_replica_never_promoted(void **state)
{
	struct fixture *fx = *state;

	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v", "r1", SEGS * MIB, 0, 2, NULL).code, 0);
	assert_int_equal(
	    set_node_state(fx->f, 6, 3, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	assert_int_equal(set_placement(fx->f, 7, 1, 0, 1, 3, false).code, 0);
	assert_int_equal(
	    set_node_state(fx->f, 8, 1, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	/* Epoch: SetPlacement kept or raised it; eviction did not promote. */
	{
		Ombra__V1__GetVolumeShardingInfoResponse m;
		char errmsg[OMBRA_ERRMSG_LEN];
		const Ombra__V1__SegmentPlacement *p;

		ombra__v1__get_volume_sharding_info_response__init(&m);
		assert_int_equal(
		    fsm_shard_map_by_id(fx->f, 1, 0, 1, &m, errmsg), 0);
		p = m.segments[0];
		assert_int_equal(p->primary_node_id, 1);
		assert_int_equal(p->n_replica_node_ids, 0);
		assert_int_equal(p->n_resync_node_ids, 1);
		assert_int_equal(p->resync_node_ids[0], 3);
		fsm_free_shard_map(&m);
	}
}

static void test_volume_while_down(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__GetVolumeShardingInfoResponse m;

	build_cluster(fx->f);
	assert_int_equal(
	    set_node_state(fx->f, 5, 3, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	assert_int_equal(
	    create_volume(fx->f, 6, "v", "r1", (SEGS / 2) * MIB, 0, 2, NULL)
		.code,
	    0);
	assert_string_equal(fx->last_kind, "placement");
	assert_int_equal(resize_volume(fx->f, 7, "v", SEGS * MIB).code, 0);
	map_of(fx->f, "v", &m);
	assert_int_equal(m.n_segments, SEGS);
	for (size_t i = 0; i < m.n_segments; i++) {
		const Ombra__V1__SegmentPlacement *p = m.segments[i];

		/* Never a DOWN primary or replica. */
		assert_int_not_equal(p->primary_node_id, 3);
		assert_false(
		    has(p->replica_node_ids, p->n_replica_node_ids, 3));
		check_evicted(p, 1, 2, 3);
	}
	fsm_free_shard_map(&m);
}

/* Snapshot of a after failovers and reports restores into b with the same
 * state and the same shard map. */
static void test_snapshot_keeps_exceptions(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__GetVolumeShardingInfoResponse ma;
	Ombra__V1__GetVolumeShardingInfoResponse mb;
	struct raft_buffer snap;
	struct fsm *b;
	char ha[65];
	char hb[65];
	uint64_t s;

	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v", "r1", SEGS * MIB, 0, 2, NULL).code, 0);
	assert_int_equal(
	    set_node_state(fx->f, 6, 1, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	s = segment_with(3, 2);
	assert_int_equal(
	    replica_change(fx->f, 7, 1, s, 2, 1, 3, false, NULL).code, 0);

	snap = take_snapshot(fx->f);
	b = open_at(fx, "b");
	assert_int_equal(restore(b, &snap), 0);
	hash_of(fx->f, ha);
	hash_of(b, hb);
	assert_string_equal(ha, hb);
	assert_int_equal(fsm_map_index(b), 7);
	map_of(fx->f, "v", &ma);
	map_of(b, "v", &mb);
	for (size_t i = 0; i < ma.n_segments; i++) {
		assert_int_equal(ma.segments[i]->exception,
				 mb.segments[i]->exception);
		assert_same_copies(ma.segments[i], mb.segments[i]);
	}
	fsm_free_shard_map(&ma);
	fsm_free_shard_map(&mb);
	check_segment(b, s, 3, 0, 2, 1);
	fsm_close(b);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_computed_ignores_state),
	    T(test_node_down_promotes),
	    T(test_replica_change),
	    T(test_new_node_pinned),
	    T(test_volume_while_down),
	    T(test_down_replica_never_promoted),
	    T(test_snapshot_keeps_exceptions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
