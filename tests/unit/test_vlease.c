/* test_vlease.c: unit tests of the single-writer volume lease and of shadow
 * promotion in the metadata state machine (metad/fsm_vlease.c,
 * fsm_promote.c) on a real LMDB environment: grant, conflict, expiry judged
 * by the command's time, renewal (wrong epoch refused, after expiry while
 * nobody took it), release, retries by request_id, bad input, snapshot and
 * volume deletion; the new-leader wait (vlease_wait_ms); the choice of the
 * shadow to promote and the RPO arithmetic; CmdPromoteShadow refused
 * without auto_promote_shadows, while a home copy is not DOWN, with a stale
 * epoch or a node holding no shadow, and applied otherwise (new primary,
 * epoch + 1, the old home nodes to resync, a FailoverEvent), after which a
 * returning home node re-syncs into the in-sync set and takes over when the
 * promoted primary fails in turn (fsm_promote_node_down).  Fails through cmocka
 * assertions. */
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
#include "metad/fsm_internal.h"
#include "metad/vlease.h"

#define MIB (1ull << 20)

/* Apply CmdVolumeLease on volume "v" at index (time 1000 + index). */
static struct fsm_result vl(struct fsm *f, uint64_t index, const char *holder,
			    uint64_t epoch, bool release, uint64_t duration,
			    const char *rid)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdVolumeLease c = OMBRA__V1__CMD_VOLUME_LEASE__INIT;

	c.volume = (char *)"v";
	c.holder = (char *)holder;
	c.epoch = epoch;
	c.release = release;
	c.duration_ms = duration;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_VOLUME_LEASE;
	m.volume_lease = &c;
	return apply(f, index, &m, rid);
}

static void lease_of(struct fsm *f, struct vlease_info *info)
{
	char errmsg[OMBRA_ERRMSG_LEN];

	assert_int_equal(fsm_vlease_get(f, "v", info, errmsg), 0);
}

static void with_volume(struct fixture *fx)
{
	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v", "r1", 4 * MIB, 0, 2, NULL).code, 0);
}

static void test_grant_conflict_expiry(void **state)
{
	struct fixture *fx = *state;
	struct vlease_info info;
	struct fsm_result r;

	with_volume(fx);
	/* A at t=1010 for 200 ms: epoch 1, a volume event, map_index. */
	r = vl(fx->f, 10, "A", 0, false, 200, NULL);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 1);
	assert_string_equal(fx->last_kind, "volume");
	assert_int_equal(fsm_map_index(fx->f), 10);
	lease_of(fx->f, &info);
	assert_string_equal(info.writer, "A");
	assert_int_equal(info.epoch, 1);
	assert_int_equal(info.expires_unix_ms, 1210);
	/* Renewal at t=1020: expiry 1220, no event, map_index unchanged. */
	fx->changes = 0;
	r = vl(fx->f, 20, "A", 1, false, 200, NULL);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 1);
	assert_int_equal(fx->changes, 0);
	assert_int_equal(fsm_map_index(fx->f), 10);
	lease_of(fx->f, &info);
	assert_int_equal(info.expires_unix_ms, 1220);
	/* B at t=1100: A's lease is live for another 120 ms. */
	r = vl(fx->f, 100, "B", 0, false, 200, NULL);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "held by 'A'"));
	assert_non_null(strstr(r.message, "another 120 ms"));
	/* A renews with a wrong epoch. */
	r = vl(fx->f, 101, "A", 7, false, 200, NULL);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "stale"));
	/* t=1220: expired by the command's time; B gets epoch 2. */
	r = vl(fx->f, 220, "B", 0, false, 100, NULL);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 2);
	lease_of(fx->f, &info);
	assert_string_equal(info.writer, "B");
	assert_int_equal(info.duration_ms, 100);
	/* The deposed A can neither renew nor release. */
	assert_int_equal(vl(fx->f, 221, "A", 1, false, 200, NULL).code,
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(vl(fx->f, 222, "A", 1, true, 0, NULL).code,
			 GRPC_STATUS_FAILED_PRECONDITION);
	/* B releases (twice: the second is a no-op); the epoch stays. */
	assert_int_equal(vl(fx->f, 223, "B", 2, true, 0, NULL).code, 0);
	lease_of(fx->f, &info);
	assert_string_equal(info.writer, "");
	assert_int_equal(info.epoch, 2);
	assert_int_equal(info.expires_unix_ms, 0);
	assert_int_equal(vl(fx->f, 224, "B", 2, true, 0, NULL).code, 0);
	/* A at once: epoch 3; a retry by request id answers the same. */
	r = vl(fx->f, 225, "A", 0, false, 100, "rid-1");
	assert_int_equal(r.object_id, 3);
	r = vl(fx->f, 226, "A", 0, false, 100, "rid-1");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 3);
	/* Renewal after expiry while nobody took it: allowed. */
	r = vl(fx->f, 900, "A", 3, false, 100, NULL);
	assert_int_equal(r.code, 0);
	lease_of(fx->f, &info);
	assert_int_equal(info.expires_unix_ms, 2000);
	/* The same holder acquiring again fences its former self. */
	r = vl(fx->f, 901, "A", 0, false, 100, NULL);
	assert_int_equal(r.object_id, 4);
}

static void test_bad_input(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdVolumeLease c = OMBRA__V1__CMD_VOLUME_LEASE__INIT;

	with_volume(fx);
	assert_int_equal(vl(fx->f, 10, "", 0, false, 0, NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(vl(fx->f, 11, "a b", 0, false, 0, NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(vl(fx->f, 12, "A", 0, false, 50, NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(vl(fx->f, 13, "A", 0, false, 60001, NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(vl(fx->f, 14, "A", 0, true, 0, NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	c.volume = (char *)"nope";
	c.holder = (char *)"A";
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_VOLUME_LEASE;
	m.volume_lease = &c;
	assert_int_equal(apply(fx->f, 15, &m, NULL).code,
			 GRPC_STATUS_NOT_FOUND);
	/* Default duration: 10 s. */
	assert_int_equal(vl(fx->f, 16, "A", 0, false, 0, NULL).code, 0);
	{
		struct vlease_info info;

		lease_of(fx->f, &info);
		assert_int_equal(info.expires_unix_ms, 1016 + 10000);
	}
}

static void test_snapshot_and_delete(void **state)
{
	struct fixture *fx = *state;
	struct vlease_info a, b;
	struct raft_buffer snap;
	struct fsm *other;
	char ha[65], hb[65];

	with_volume(fx);
	assert_int_equal(vl(fx->f, 10, "A", 0, false, 500, NULL).code, 0);
	hash_of(fx->f, ha);
	assert_int_equal(vl(fx->f, 11, "A", 1, false, 500, NULL).code, 0);
	hash_of(fx->f, hb);
	assert_string_not_equal(ha, hb); /* the expiry is replicated state */
	snap = take_snapshot(fx->f);
	other = open_at(fx, "b");
	assert_int_equal(restore(other, &snap), 0);
	hash_of(fx->f, ha);
	hash_of(other, hb);
	assert_string_equal(ha, hb);
	lease_of(fx->f, &a);
	lease_of(other, &b);
	assert_memory_equal(&a, &b, sizeof(a));
	fsm_close(other);
	/* A deleted and re-created volume starts without a writer. */
	assert_int_equal(delete_volume(fx->f, 12, "v").code, 0);
	assert_int_equal(
	    create_volume(fx->f, 13, "v", "r1", 4 * MIB, 0, 2, NULL).code, 0);
	lease_of(fx->f, &a);
	assert_string_equal(a.writer, "");
	assert_int_equal(a.expires_unix_ms, 0);
	assert_int_equal(vl(fx->f, 14, "B", 0, false, 500, NULL).code, 0);
}

static void test_new_leader_wait(void **state)
{
	struct vlease_info info;

	(void)state;
	memset(&info, 0, sizeof(info));
	/* Nobody holds it: no wait. */
	assert_int_equal(vlease_wait_ms(&info, "B", 1000, 1000), 0);
	snprintf(info.writer, sizeof(info.writer), "A");
	info.duration_ms = 10000;
	/* Another holder: one full duration from the election. */
	assert_int_equal(vlease_wait_ms(&info, "B", 1000, 1000), 10000);
	assert_int_equal(vlease_wait_ms(&info, "B", 1000, 7000), 4000);
	assert_int_equal(vlease_wait_ms(&info, "B", 1000, 11000), 0);
	/* The writer itself never waits. */
	assert_int_equal(vlease_wait_ms(&info, "A", 1000, 1000), 0);
}

#define V(e, s) (((uint64_t)(e) << 40) | (s))

static void test_choose_shadow(void **state)
{
	struct vlease_copy c[4] = {
	    /* whole, watermark 1/5, knew 1/9 */
	    {.node_id = 7,
	     .watermark = V(1, 5),
	     .lag_versions = 4,
	     .present_blocks = 16,
	     .total_blocks = 16},
	    /* partial: never chosen, but its knowledge counts */
	    {.node_id = 3,
	     .watermark = V(1, 8),
	     .lag_versions = 3,
	     .present_blocks = 15,
	     .total_blocks = 16},
	    /* whole and fresher */
	    {.node_id = 9,
	     .watermark = V(1, 7),
	     .present_blocks = 16,
	     .total_blocks = 16},
	    /* filling */
	    {.node_id = 2,
	     .watermark = V(1, 9),
	     .present_blocks = 16,
	     .total_blocks = 16,
	     .filling = true},
	};
	uint64_t known;

	(void)state;
	assert_int_equal(vlease_choose_shadow(c, 4, &known), 2);
	assert_int_equal(known, V(1, 11));
	/* A tie goes to the lowest node id. */
	c[0].watermark = V(1, 7);
	assert_int_equal(vlease_choose_shadow(c, 4, &known), 0);
	/* None whole: none chosen. */
	assert_int_equal(vlease_choose_shadow(c + 1, 1, &known), 1);
	assert_int_equal(vlease_choose_shadow(c, 0, &known), 0);
	assert_int_equal(known, 0);
	/* RPO in sequence units. */
	assert_int_equal(vlease_lost_versions(V(2, 9), V(2, 5)), 4);
	assert_int_equal(vlease_lost_versions(V(2, 5), V(2, 5)), 0);
	assert_int_equal(vlease_lost_versions(V(2, 5), V(2, 9)), 0);
	assert_int_equal(vlease_lost_versions(V(3, 2), V(2, 900)), 2);
}

/* Volume id's ShadowPolicy as CmdSetShadowPolicy leaves it (written
 * directly: that command belongs to the shadow-policy module). */
static void set_auto_promote(struct fsm *f, uint64_t volume_id, bool on)
{
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	ProtobufCMessage *m = NULL;
	Ombra__V1__Volume *v;
	uint8_t kb[8];
	MDB_val k = {sizeof(kb), kb};
	MDB_txn *txn;

	assert_int_equal(fsm_txn_begin(f, 0, &txn, errmsg), 0);
	assert_int_equal(fsm_id_get(f, txn, FSM_DB_VOLUMES, volume_id,
				    &ombra__v1__volume__descriptor, &m, errmsg),
			 0);
	v = (Ombra__V1__Volume *)m;
	pol.auto_promote_shadows = on;
	v->shadow_policy = &pol;
	fsm_u64_encode(kb, volume_id);
	assert_int_equal(fsm_pb_put(f, txn, FSM_DB_VOLUMES, &k, m, errmsg), 0);
	v->shadow_policy = NULL;
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(mdb_txn_commit(txn), 0);
}

/* Exception for segment 0 of volume vid: primary, one replica, shadows. */
static void place_vol(struct fsm *f, uint64_t index, uint64_t vid,
		      uint64_t primary, uint64_t replica, uint64_t s1,
		      uint64_t s2)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdSetPlacement c = OMBRA__V1__CMD_SET_PLACEMENT__INIT;
	Ombra__V1__SegmentPlacement p = OMBRA__V1__SEGMENT_PLACEMENT__INIT;
	Ombra__V1__ShadowCopy a = OMBRA__V1__SHADOW_COPY__INIT;
	Ombra__V1__ShadowCopy b = OMBRA__V1__SHADOW_COPY__INIT;
	Ombra__V1__ShadowCopy *shadows[2] = {&a, &b};
	uint64_t replicas[1] = {replica};

	a.node_id = s1;
	a.region = (char *)"r2";
	b.node_id = s2;
	b.region = (char *)"r2";
	p.primary_node_id = primary;
	p.n_replica_node_ids = 1;
	p.replica_node_ids = replicas;
	p.n_shadows = 2;
	p.shadows = shadows;
	c.volume_id = vid;
	c.placement = &p;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_PLACEMENT;
	m.set_placement = &c;
	assert_int_equal(apply(f, index, &m, NULL).code, 0);
}

static void place_with_shadows(struct fsm *f, uint64_t index, uint64_t primary,
			       uint64_t replica, uint64_t s1, uint64_t s2)
{
	place_vol(f, index, 1, primary, replica, s1, s2);
}

/* CmdPromoteShadow of segment 0 of volume vid. */
static struct fsm_result promote_vol(struct fsm *f, uint64_t index,
				     uint64_t vid, uint64_t node,
				     uint64_t epoch)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdPromoteShadow c = OMBRA__V1__CMD_PROMOTE_SHADOW__INIT;

	c.volume_id = vid;
	c.segment_index = 0;
	c.node_id = node;
	c.lease_epoch = epoch;
	c.shadow_version = V(2, 5);
	c.known_version = V(2, 9);
	c.watermark_unix_ms = 900;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_PROMOTE_SHADOW;
	m.promote_shadow = &c;
	return apply(f, index, &m, NULL);
}

static struct fsm_result promote(struct fsm *f, uint64_t index, uint64_t node,
				 uint64_t epoch)
{
	return promote_vol(f, index, 1, node, epoch);
}

static Ombra__V1__SegmentPlacement *
seg0(struct fsm *f, Ombra__V1__GetVolumeShardingInfoResponse *map)
{
	char errmsg[OMBRA_ERRMSG_LEN];

	ombra__v1__get_volume_sharding_info_response__init(map);
	assert_int_equal(fsm_shard_map(f, "v", 0, 1, map, errmsg), 0);
	assert_int_equal(map->n_segments, 1);
	return map->segments[0];
}

static bool has(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == id)
			return true;
	}
	return false;
}

static void test_promote(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__GetVolumeShardingInfoResponse map;
	Ombra__V1__SegmentPlacement *p;
	Ombra__V1__FailoverEvent **ev = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct raft_buffer snap;
	struct fsm *other;
	char ha[65], hb[65];
	struct fsm_result r;
	uint64_t e;
	size_t n = 0;

	with_volume(fx); /* r1: nodes 1..3; volume 1 "v" */
	assert_int_equal(add_region(fx->f, 6, "r2", NULL).code, 0);
	assert_int_equal(
	    register_node(fx->f, 7, "s4", "r2", "127.0.0.1:7004", 1ull << 40)
		.code,
	    0);
	assert_int_equal(
	    register_node(fx->f, 8, "s5", "r2", "127.0.0.1:7005", 1ull << 40)
		.code,
	    0);
	place_with_shadows(fx->f, 9, 1, 2, 4, 5);
	p = seg0(fx->f, &map);
	e = p->lease_epoch; /* SetPlacement may have raised it */
	fsm_free_shard_map(&map);
	/* Without auto_promote_shadows nothing is promoted. */
	r = promote(fx->f, 10, 4, e + 1);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "auto_promote_shadows"));
	set_auto_promote(fx->f, 1, true);
	/* The home copies are up. */
	r = promote(fx->f, 11, 4, e + 1);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "not DOWN"));
	/* Node 1 fails: node 2 promoted in-region (epoch e+1); node 2 fails
	 * too: the only copy stays primary, DOWN. */
	assert_int_equal(
	    set_node_state(fx->f, 12, 1, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	assert_int_equal(
	    set_node_state(fx->f, 13, 2, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	p = seg0(fx->f, &map);
	assert_int_equal(p->primary_node_id, 2);
	assert_int_equal(p->lease_epoch, e + 1);
	assert_int_equal(p->n_shadows, 2);
	fsm_free_shard_map(&map);
	/* Stale epoch, a node without a shadow, a DOWN shadow node. */
	assert_int_equal(promote(fx->f, 14, 4, e + 1).code,
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(promote(fx->f, 15, 3, e + 2).code,
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(
	    set_node_state(fx->f, 16, 5, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	assert_int_equal(promote(fx->f, 17, 5, e + 2).code,
			 GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(
	    set_node_state(fx->f, 18, 5, OMBRA__V1__NODE_STATE__NODE_UP).code,
	    0);
	/* The promotion: node 4 primary with epoch e+2; 5 stays a shadow. */
	r = promote(fx->f, 20, 4, e + 2);
	assert_int_equal(r.code, 0);
	assert_string_equal(fx->last_kind, "placement");
	p = seg0(fx->f, &map);
	assert_int_equal(p->primary_node_id, 4);
	assert_int_equal(p->lease_epoch, e + 2);
	assert_int_equal(p->n_replica_node_ids, 0);
	assert_int_equal(p->n_shadows, 1);
	assert_int_equal(p->shadows[0]->node_id, 5);
	assert_true(has(p->resync_node_ids, p->n_resync_node_ids, 1));
	assert_true(has(p->resync_node_ids, p->n_resync_node_ids, 2));
	assert_false(has(p->resync_node_ids, p->n_resync_node_ids, 4));
	fsm_free_shard_map(&map);
	/* Decided twice: stale. */
	assert_int_equal(promote(fx->f, 21, 5, e + 2).code,
			 GRPC_STATUS_FAILED_PRECONDITION);
	/* The RPO record. */
	assert_int_equal(fsm_list_failovers(fx->f, "v", &ev, &n, errmsg), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0]->old_primary_node_id, 2);
	assert_int_equal(ev[0]->new_primary_node_id, 4);
	assert_int_equal(ev[0]->lost_versions, 4);
	assert_int_equal(ev[0]->lost_ms, 1020 - 900);
	assert_int_equal(ev[0]->unix_ms, 1020);
	assert_int_equal(ev[0]->lease_epoch, e + 2);
	fsm_free_list(ev, n);
	/* The home region returns: node 1 UP, re-synced by the new primary
	 * across regions, joins the in-sync set; a report with the old
	 * epoch from the old primary is fenced. */
	assert_int_equal(
	    set_node_state(fx->f, 22, 1, OMBRA__V1__NODE_STATE__NODE_UP).code,
	    0);
	assert_int_equal(
	    replica_change(fx->f, 23, 1, 0, 1, e + 1, 2, true, NULL).code,
	    GRPC_STATUS_FAILED_PRECONDITION);
	assert_int_equal(
	    replica_change(fx->f, 24, 1, 0, 1, e + 2, 4, true, NULL).code, 0);
	p = seg0(fx->f, &map);
	assert_true(has(p->replica_node_ids, p->n_replica_node_ids, 1));
	assert_false(has(p->resync_node_ids, p->n_resync_node_ids, 1));
	fsm_free_shard_map(&map);
	/* The promoted primary (region r2) fails in turn: the re-synced
	 * home replica takes over with the next epoch. */
	assert_int_equal(
	    set_node_state(fx->f, 30, 4, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	p = seg0(fx->f, &map);
	assert_int_equal(p->primary_node_id, 1);
	assert_int_equal(p->lease_epoch, e + 3);
	assert_int_equal(p->n_replica_node_ids, 0);
	assert_true(has(p->resync_node_ids, p->n_resync_node_ids, 4));
	assert_int_equal(p->n_shadows, 1);
	fsm_free_shard_map(&map);
	/* Snapshots carry the events; deleting the volume drops them. */
	snap = take_snapshot(fx->f);
	other = open_at(fx, "b");
	assert_int_equal(restore(other, &snap), 0);
	hash_of(fx->f, ha);
	hash_of(other, hb);
	assert_string_equal(ha, hb);
	assert_int_equal(fsm_list_failovers(other, NULL, &ev, &n, errmsg), 0);
	assert_int_equal(n, 1);
	fsm_free_list(ev, n);
	fsm_close(other);
	assert_int_equal(delete_volume(fx->f, 35, "v").code, 0);
	assert_int_equal(fsm_list_failovers(fx->f, "", &ev, &n, errmsg), 0);
	assert_int_equal(n, 0);
	fsm_free_list(ev, n);
	assert_int_equal(fsm_list_failovers(fx->f, "v", &ev, &n, errmsg),
			 OMBRA_ENOTFOUND);
}

/* Two volumes fail over; deleting one keeps the other's events. */
static void test_failovers_of_two_volumes(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__FailoverEvent **ev = NULL;
	Ombra__V1__GetVolumeShardingInfoResponse map;
	char errmsg[OMBRA_ERRMSG_LEN];
	uint64_t ev_v, ev_x;
	size_t n = 0;

	with_volume(fx); /* volume 1 "v" */
	assert_int_equal(
	    create_volume(fx->f, 6, "x", "r1", 4 * MIB, 0, 2, NULL).code, 0);
	assert_int_equal(add_region(fx->f, 7, "r2", NULL).code, 0);
	assert_int_equal(
	    register_node(fx->f, 8, "s4", "r2", "127.0.0.1:7004", 1ull << 40)
		.code,
	    0);
	assert_int_equal(
	    register_node(fx->f, 9, "s5", "r2", "127.0.0.1:7005", 1ull << 40)
		.code,
	    0);
	place_vol(fx->f, 10, 1, 1, 2, 4, 5);
	place_vol(fx->f, 11, 2, 2, 1, 5, 4);
	set_auto_promote(fx->f, 1, true);
	set_auto_promote(fx->f, 2, true);
	assert_int_equal(
	    set_node_state(fx->f, 12, 1, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	assert_int_equal(
	    set_node_state(fx->f, 13, 2, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	ev_v = seg0(fx->f, &map)->lease_epoch + 1;
	fsm_free_shard_map(&map);
	ombra__v1__get_volume_sharding_info_response__init(&map);
	assert_int_equal(fsm_shard_map(fx->f, "x", 0, 1, &map, errmsg), 0);
	ev_x = map.segments[0]->lease_epoch + 1;
	fsm_free_shard_map(&map);
	assert_int_equal(promote_vol(fx->f, 14, 1, 4, ev_v).code, 0);
	assert_int_equal(promote_vol(fx->f, 15, 2, 5, ev_x).code, 0);
	assert_int_equal(fsm_list_failovers(fx->f, "", &ev, &n, errmsg), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0]->volume_id, 1); /* oldest first */
	assert_int_equal(ev[1]->volume_id, 2);
	fsm_free_list(ev, n);
	assert_int_equal(fsm_list_failovers(fx->f, "x", &ev, &n, errmsg), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0]->new_primary_node_id, 5);
	fsm_free_list(ev, n);
	assert_int_equal(delete_volume(fx->f, 16, "v").code, 0);
	assert_int_equal(fsm_list_failovers(fx->f, NULL, &ev, &n, errmsg), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ev[0]->volume_id, 2);
	fsm_free_list(ev, n);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_grant_conflict_expiry),
	    T(test_bad_input),
	    T(test_snapshot_and_delete),
	    cmocka_unit_test(test_new_leader_wait),
	    cmocka_unit_test(test_choose_shadow),
	    T(test_promote),
	    T(test_failovers_of_two_volumes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
