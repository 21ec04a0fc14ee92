/* test_shadowpol_fsm.c: the shadow policy in the metadata state machine
 * (metad/fsm_shadow.c): CmdSetShadowPolicy validation and effect,
 * CmdShadowChanges re-checks (region, UP, max_shadows, budget, duplicate
 * holder), the exception going away with the last shadow, a policy change
 * dropping shadows of regions it no longer allows, and policy and shadows
 * surviving a snapshot and a reopen.  Real LMDB in a temporary directory
 * (fsm_testlib.c). */
#include <grpc/status.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fsm_testlib.h"

#define MIB (1024ull * 1024ull)

static struct fsm_result set_policy(struct fsm *f, uint64_t index,
				    const char *vol,
				    Ombra__V1__ShadowPolicy *pol)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdSetShadowPolicy c =
	    OMBRA__V1__CMD_SET_SHADOW_POLICY__INIT;

	c.volume = (char *)vol;
	c.policy = pol;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_SHADOW_POLICY;
	m.set_shadow_policy = &c;
	return apply(f, index, &m, NULL);
}

/* One change (add, or remove when remove is true). */
static struct fsm_result change(struct fsm *f, uint64_t index, uint64_t vol,
				uint64_t seg, uint64_t node, bool remove)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdShadowChanges c = OMBRA__V1__CMD_SHADOW_CHANGES__INIT;
	Ombra__V1__ShadowChange ch = OMBRA__V1__SHADOW_CHANGE__INIT;
	Ombra__V1__ShadowChange *chp = &ch;

	ch.volume_id = vol;
	ch.segment_index = seg;
	ch.node_id = node;
	ch.remove = remove;
	c.n_changes = 1;
	c.changes = &chp;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_SHADOW_CHANGES;
	m.shadow_changes = &c;
	return apply(f, index, &m, NULL);
}

/* r1: nodes 1..3 (build_cluster, indexes 1..4); r2: nodes 4, 5 and r3:
 * node 6 (indexes 5..9); volume v (id 1, 8 segments of 1 MiB, home r1) at
 * index 10. */
static void build(struct fsm *f)
{
	build_cluster(f);
	assert_int_equal(add_region(f, 5, "r2", NULL).code, 0);
	assert_int_equal(
	    register_node(f, 6, "n4", "r2", "127.0.0.1:9004", 1ull << 40).code,
	    0);
	assert_int_equal(
	    register_node(f, 7, "n5", "r2", "127.0.0.1:9005", 1ull << 40).code,
	    0);
	assert_int_equal(add_region(f, 8, "r3", NULL).code, 0);
	assert_int_equal(
	    register_node(f, 9, "n6", "r3", "127.0.0.1:9006", 1ull << 40).code,
	    0);
	assert_int_equal(
	    create_volume(f, 10, "v", "r1", 8 * MIB, MIB, 2, NULL).code, 0);
}

static Ombra__V1__SegmentPlacement *
segment(struct fsm *f, uint64_t seg,
	Ombra__V1__GetVolumeShardingInfoResponse *m)
{
	char errmsg[OMBRA_ERRMSG_LEN];

	ombra__v1__get_volume_sharding_info_response__init(m);
	assert_int_equal(fsm_shard_map(f, "v", seg, 1, m, errmsg), 0);
	assert_int_equal(m->n_segments, 1);
	return m->segments[0];
}

static void test_set_policy_validation(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	char *home[] = {"r1"};
	char *unknown[] = {"r9"};
	char *twice[] = {"r2", "r2"};
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;
	struct fsm_result res;

	build(fx->f);
	pol.n_regions = 1;
	pol.regions = home;
	res = set_policy(fx->f, 11, "v", &pol);
	assert_int_equal(res.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(res.message, "home region"));
	pol.regions = unknown;
	res = set_policy(fx->f, 12, "v", &pol);
	assert_int_equal(res.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(res.message, "'r9'"));
	pol.n_regions = 2;
	pol.regions = twice;
	res = set_policy(fx->f, 13, "v", &pol);
	assert_int_equal(res.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(res.message, "twice"));
	pol.n_regions = 0;
	pol.max_shadows = 9;
	res = set_policy(fx->f, 14, "v", &pol);
	assert_int_equal(res.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(res.message, "max_shadows"));
	pol.max_shadows = 0;
	pol.budget_bytes = 4096;
	res = set_policy(fx->f, 15, "v", &pol);
	assert_int_equal(res.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(res.message, "below one segment"));
	pol.budget_bytes = 0;
	pol.idle_ms = 10;
	res = set_policy(fx->f, 16, "v", &pol);
	assert_int_equal(res.code, GRPC_STATUS_INVALID_ARGUMENT);
	pol.idle_ms = 0;
	res = set_policy(fx->f, 17, "nope", &pol);
	assert_int_equal(res.code, GRPC_STATUS_NOT_FOUND);
	/* Nothing stuck. */
	assert_int_equal(fsm_get_volume(fx->f, "v", &vol, errmsg), 0);
	assert_null(vol->shadow_policy);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
}

static void test_set_policy_and_changes(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	Ombra__V1__GetVolumeShardingInfoResponse m;
	Ombra__V1__SegmentPlacement *p;
	char *r2[] = {"r2"};
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;
	struct fsm_result res;

	build(fx->f);
	pol.n_regions = 1;
	pol.regions = r2;
	pol.max_shadows = 1;
	pol.budget_bytes = 2 * MIB;
	pol.idle_ms = 5000;
	pol.auto_promote_shadows = true;
	res = set_policy(fx->f, 11, "v", &pol);
	assert_int_equal(res.code, 0);
	assert_string_equal(fx->last_kind, "volume");
	assert_int_equal(fsm_get_volume(fx->f, "v", &vol, errmsg), 0);
	assert_non_null(vol->shadow_policy);
	assert_int_equal(vol->shadow_policy->n_regions, 1);
	assert_string_equal(vol->shadow_policy->regions[0], "r2");
	assert_int_equal(vol->shadow_policy->budget_bytes, 2 * MIB);
	assert_true(vol->shadow_policy->auto_promote_shadows);
	assert_int_equal(vol->modified_index, 11);
	protobuf_c_message_free_unpacked(&vol->base, NULL);

	/* Add on r2's node 4: a placement exception with the shadow. */
	res = change(fx->f, 12, 1, 3, 4, false);
	assert_int_equal(res.code, 0);
	assert_int_equal(res.object_id, 1);
	assert_string_equal(fx->last_kind, "placement");
	assert_int_equal(fsm_map_index(fx->f), 12);
	p = segment(fx->f, 3, &m);
	assert_int_equal(p->n_shadows, 1);
	assert_int_equal(p->shadows[0]->node_id, 4);
	assert_string_equal(p->shadows[0]->region, "r2");
	assert_int_equal(p->shadows[0]->added_unix_ms, 1000 + 12);
	assert_true(p->exception);
	fsm_free_shard_map(&m);

	/* Refused: max_shadows, region not allowed, home node, unknown. */
	res = change(fx->f, 13, 1, 3, 5, false);
	assert_int_equal(res.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(res.message, "max_shadows"));
	res = change(fx->f, 14, 1, 4, 6, false);
	assert_int_equal(res.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(res.message, "'r3'"));
	res = change(fx->f, 15, 1, 4, 1, false);
	assert_int_equal(res.code, GRPC_STATUS_FAILED_PRECONDITION);
	res = change(fx->f, 16, 1, 99, 4, false);
	assert_int_equal(res.code, GRPC_STATUS_FAILED_PRECONDITION);
	res = change(fx->f, 17, 7, 0, 4, false);
	assert_int_equal(res.code, GRPC_STATUS_FAILED_PRECONDITION);

	/* Budget 2 MiB: a second segment fits, a third does not. */
	assert_int_equal(change(fx->f, 18, 1, 5, 5, false).code, 0);
	res = change(fx->f, 19, 1, 6, 4, false);
	assert_int_equal(res.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(res.message, "budget"));

	/* A DOWN node gets no shadow. */
	assert_int_equal(
	    set_node_state(fx->f, 20, 4, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	assert_int_equal(change(fx->f, 21, 1, 5, 4, true).code,
			 GRPC_STATUS_FAILED_PRECONDITION); /* not its shadow */

	/* Removing the last shadow drops the exception altogether. */
	assert_int_equal(change(fx->f, 22, 1, 3, 4, true).code, 0);
	p = segment(fx->f, 3, &m);
	assert_int_equal(p->n_shadows, 0);
	assert_false(p->exception);
	fsm_free_shard_map(&m);
	res = change(fx->f, 23, 1, 6, 4, false);
	assert_int_equal(res.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(res.message, "not UP"));
}

static void test_policy_change_prunes(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	Ombra__V1__GetVolumeShardingInfoResponse m;
	Ombra__V1__SegmentPlacement *p;
	char *r3[] = {"r3"};
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;

	build(fx->f);
	pol.max_shadows = 2;
	assert_int_equal(set_policy(fx->f, 11, "v", &pol).code, 0);
	assert_int_equal(change(fx->f, 12, 1, 2, 4, false).code, 0);
	assert_int_equal(change(fx->f, 13, 1, 2, 6, false).code, 0);
	p = segment(fx->f, 2, &m);
	assert_int_equal(p->n_shadows, 2);
	fsm_free_shard_map(&m);
	/* Only r3 now: r2's shadow goes, r3's stays. */
	pol.n_regions = 1;
	pol.regions = r3;
	assert_int_equal(set_policy(fx->f, 14, "v", &pol).code, 0);
	p = segment(fx->f, 2, &m);
	assert_int_equal(p->n_shadows, 1);
	assert_int_equal(p->shadows[0]->node_id, 6);
	fsm_free_shard_map(&m);
	/* No policy: no shadows. */
	assert_int_equal(set_policy(fx->f, 15, "v", NULL).code, 0);
	p = segment(fx->f, 2, &m);
	assert_int_equal(p->n_shadows, 0);
	assert_false(p->exception);
	fsm_free_shard_map(&m);
	assert_int_equal(fsm_get_volume(fx->f, "v", &vol, errmsg), 0);
	assert_null(vol->shadow_policy);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	assert_int_equal(change(fx->f, 16, 1, 2, 4, false).code,
			 GRPC_STATUS_FAILED_PRECONDITION);
}

/* Policy and shadows are in the snapshot and survive a reopen. */
static void test_snapshot(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	Ombra__V1__GetVolumeShardingInfoResponse m;
	Ombra__V1__SegmentPlacement *p;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;
	struct raft_buffer snap;
	char ha[65], hb[65];
	struct fsm *b;

	build(fx->f);
	pol.create_reads_per_s = 2.5;
	pol.fill_bytes_per_s = 1 * MIB;
	assert_int_equal(set_policy(fx->f, 11, "v", &pol).code, 0);
	assert_int_equal(change(fx->f, 12, 1, 1, 5, false).code, 0);
	hash_of(fx->f, ha);
	snap = take_snapshot(fx->f);
	b = open_at(fx, "b");
	assert_int_equal(restore(b, &snap), 0);
	hash_of(b, hb);
	assert_string_equal(ha, hb);
	fsm_close(b);
	b = open_at(fx, "b");
	assert_int_equal(fsm_get_volume(b, "v", &vol, errmsg), 0);
	assert_non_null(vol->shadow_policy);
	assert_true(vol->shadow_policy->create_reads_per_s == 2.5);
	assert_int_equal(vol->shadow_policy->fill_bytes_per_s, MIB);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	p = segment(b, 1, &m);
	assert_int_equal(p->n_shadows, 1);
	assert_int_equal(p->shadows[0]->node_id, 5);
	fsm_free_shard_map(&m);
	fsm_close(b);
}

/* fsm_volume_shadows and fsm_placements_of (the evaluator's view). */
static void test_queries(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	Ombra__V1__SegmentPlacement **ps = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;
	uint64_t segs[] = {0, 6};
	size_t n = 0;

	build(fx->f);
	assert_int_equal(set_policy(fx->f, 11, "v", &pol).code, 0);
	assert_int_equal(change(fx->f, 12, 1, 6, 4, false).code, 0);
	assert_int_equal(fsm_volume_shadows(fx->f, 1, &ps, &n, errmsg), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ps[0]->index, 6);
	assert_int_equal(ps[0]->shadows[0]->node_id, 4);
	fsm_free_list(ps, n);
	assert_int_equal(fsm_get_volume(fx->f, "v", &vol, errmsg), 0);
	assert_int_equal(fsm_placements_of(fx->f, vol, segs, 2, &ps, errmsg),
			 0);
	assert_int_equal(ps[0]->n_shadows, 0);
	assert_int_not_equal(ps[0]->primary_node_id, 0);
	assert_int_equal(ps[1]->n_shadows, 1);
	fsm_free_list(ps, 2);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_set_policy_validation),
	    T(test_set_policy_and_changes),
	    T(test_policy_change_prunes),
	    T(test_snapshot),
	    T(test_queries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
