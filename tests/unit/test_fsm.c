/* test_fsm.c: unit tests of the metadata state machine (metad/fsm*.c) on a
 * real LMDB environment in a mkdtemp directory: apply sequences and
 * refusals, idempotent replay and request-id deduplication, snapshots and
 * restore (equal state hash, newer local state kept, corrupt buffers
 * refused), shard maps with pagination and exceptions, the raft_fsm apply
 * hook, and reopening.  Fails through cmocka assertions. */
#include <ftw.h>
#include <grpc/status.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "metad/cmd.h"
#include "metad/fsm.h"
#include "metad/placement.h"

#include "fsm_testlib.h"

static void test_apply_sequence(void **state)
{
	struct fixture *fx = *state;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;
	Ombra__V1__Region **regions = NULL;
	Ombra__V1__Node **nodes = NULL;
	Ombra__V1__Node *node = NULL;
	struct fsm_result r;
	uint32_t nr, nn, nv;
	size_t n;

	assert_int_equal(fsm_applied_index(fx->f), 0);
	build_cluster(fx->f);
	assert_int_equal(fx->changes, 4);
	assert_string_equal(fx->last_kind, "node");
	assert_string_equal(fx->last_name, "n3");
	assert_int_equal(add_region(fx->f, 5, "r0", NULL).code, 0);
	r = create_volume(fx->f, 6, "vol1", "r1", (1ull << 30) + 4096, 0, 0,
			  NULL);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 1);
	assert_int_equal(r.index, 6);
	assert_string_equal(fx->last_kind, "volume");
	assert_string_equal(fx->last_name, "vol1");
	assert_false(fx->last_deleted);
	assert_int_equal(fx->last_index, 6);
	assert_int_equal(fsm_applied_index(fx->f), 6);

	assert_int_equal(fsm_get_volume(fx->f, "vol1", &vol, errmsg), 0);
	assert_int_equal(vol->id, 1);
	assert_int_equal(vol->size_bytes, (1ull << 30) + 4096);
	assert_int_equal(vol->segment_size_bytes, 1u << 20);
	assert_int_equal(vol->block_size_bytes, 4096);
	assert_int_equal(vol->replicas, 2);
	assert_int_equal(vol->segment_count, 1025); /* rounded up */
	assert_int_equal(vol->state, OMBRA__V1__VOLUME_STATE__VOLUME_ACTIVE);
	assert_int_equal(vol->created_unix_ms, 1006);
	assert_int_equal(vol->modified_index, 6);
	assert_string_equal(vol->home_region, "r1");
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	assert_int_equal(fsm_get_volume_by_id(fx->f, 1, &vol, errmsg), 0);
	assert_string_equal(vol->name, "vol1");
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	assert_int_equal(fsm_get_volume_by_id(fx->f, 9, &vol, errmsg),
			 OMBRA_ENOTFOUND);

	assert_int_equal(fsm_list_regions(fx->f, &regions, &n, errmsg), 0);
	assert_int_equal(n, 2);
	assert_string_equal(regions[0]->name, "r0");
	assert_int_equal(regions[0]->node_count, 0);
	assert_string_equal(regions[1]->name, "r1");
	assert_int_equal(regions[1]->node_count, 3);
	assert_int_equal(regions[1]->created_unix_ms, 1001);
	fsm_free_list(regions, n);

	assert_int_equal(fsm_list_nodes(fx->f, "r1", &nodes, &n, errmsg), 0);
	assert_int_equal(n, 3);
	assert_int_equal(nodes[0]->id, 1);
	assert_int_equal(nodes[2]->id, 3);
	assert_int_equal(nodes[2]->capacity_bytes, 3ull << 40);
	assert_int_equal(nodes[2]->state, OMBRA__V1__NODE_STATE__NODE_UP);
	fsm_free_list(nodes, n);
	assert_int_equal(fsm_list_nodes(fx->f, "r0", &nodes, &n, errmsg), 0);
	assert_int_equal(n, 0);
	fsm_free_list(nodes, n);

	/* Re-registering a name keeps its id and updates the address. */
	r = register_node(fx->f, 7, "n2", "r1", "h9:7009", 5ull << 40);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 2);
	assert_int_equal(fsm_get_node(fx->f, 2, &node, errmsg), 0);
	assert_string_equal(node->address, "h9:7009");
	assert_int_equal(node->capacity_bytes, 5ull << 40);
	assert_int_equal(node->registered_unix_ms, 1003);
	protobuf_c_message_free_unpacked(&node->base, NULL);
	/* ... but a node does not move between regions. */
	r = register_node(fx->f, 8, "n2", "r0", "h9:7009", 5ull << 40);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "registered in region 'r1'"));

	r = set_node_state(fx->f, 9, 3, OMBRA__V1__NODE_STATE__NODE_DOWN);
	assert_int_equal(r.code, 0);
	assert_int_equal(fsm_get_node(fx->f, 3, &node, errmsg), 0);
	assert_int_equal(node->state, OMBRA__V1__NODE_STATE__NODE_DOWN);
	protobuf_c_message_free_unpacked(&node->base, NULL);
	assert_int_equal(fsm_get_node(fx->f, 77, &node, errmsg),
			 OMBRA_ENOTFOUND);

	assert_int_equal(fsm_counts(fx->f, &nr, &nn, &nv), 0);
	assert_int_equal(nr, 2);
	assert_int_equal(nn, 3);
	assert_int_equal(nv, 1);
}

static void test_replay_is_noop(void **state)
{
	struct fixture *fx = *state;
	char before[65];
	char after[65];
	struct fsm_result r;
	unsigned changes;

	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v", "r1", 1 << 20, 0, 0, NULL).code, 0);
	hash_of(fx->f, before);
	changes = fx->changes;
	/* Index 3 again (log replay after restart), whatever it carries. */
	r = create_volume(fx->f, 3, "other", "r1", 1 << 20, 0, 0, NULL);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.index, 3);
	r = add_region(fx->f, 5, "r5", NULL);
	assert_int_equal(r.code, 0);
	hash_of(fx->f, after);
	assert_string_equal(before, after);
	assert_int_equal(fsm_applied_index(fx->f), 5);
	assert_int_equal(fx->changes, changes);
}

static void test_request_id_dedup(void **state)
{
	struct fixture *fx = *state;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume **vols = NULL;
	char before[65];
	char after[65];
	struct fsm_result r;
	unsigned changes;
	size_t n;

	build_cluster(fx->f);
	r = create_volume(fx->f, 5, "v1", "r1", 1 << 20, 0, 0, "req-42");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 1);
	hash_of(fx->f, before);
	changes = fx->changes;

	/* The client retried: same request id, later index. */
	r = create_volume(fx->f, 6, "v1", "r1", 1 << 20, 0, 0, "req-42");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 1);
	assert_int_equal(r.index, 5);
	/* Same id with another body still answers the original. */
	r = create_volume(fx->f, 7, "v2", "r1", 1 << 20, 0, 0, "req-42");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.index, 5);
	hash_of(fx->f, after);
	assert_string_equal(before, after);
	assert_int_equal(fsm_applied_index(fx->f), 7);
	assert_int_equal(fx->changes, changes);
	assert_int_equal(fsm_list_volumes(fx->f, NULL, &vols, &n, errmsg), 0);
	assert_int_equal(n, 1);
	fsm_free_list(vols, n);

	/* A refusal is remembered too. */
	r = create_volume(fx->f, 8, "v9", "nowhere", 1 << 20, 0, 0, "req-43");
	assert_int_equal(r.code, GRPC_STATUS_NOT_FOUND);
	assert_int_equal(add_region(fx->f, 9, "nowhere", NULL).code, 0);
	r = create_volume(fx->f, 10, "v9", "nowhere", 1 << 20, 0, 0, "req-43");
	assert_int_equal(r.code, GRPC_STATUS_NOT_FOUND);
	assert_int_equal(r.index, 8);
	/* A new request id does run. */
	r = create_volume(fx->f, 11, "v9", "nowhere", 1 << 20, 0, 0, "req-44");
	assert_int_equal(r.code, 0);
}

static void test_dedup_window_pruned(void **state)
{
	struct fixture *fx = *state;
	struct fsm_result r;

	assert_int_equal(add_region(fx->f, 1, "ra", "x").code, 0);
	assert_int_equal(add_region(fx->f, 2, "ra", "x").code, 0);
	/* 100000 indexes later the record of "x" is dropped by this apply. */
	assert_int_equal(add_region(fx->f, 200000, "rb", "y").code, 0);
	r = add_region(fx->f, 200001, "ra", "x");
	assert_int_equal(r.code, GRPC_STATUS_ALREADY_EXISTS);
	assert_int_equal(r.index, 200001);
}

static void test_refusals(void **state)
{
	struct fixture *fx = *state;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;
	struct fsm_result r;

	build_cluster(fx->f);
	assert_int_equal(add_region(fx->f, 5, "r1", NULL).code,
			 GRPC_STATUS_ALREADY_EXISTS);
	assert_int_equal(add_region(fx->f, 6, "bad name", NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	r = create_volume(fx->f, 7, "v1", "r9", 1 << 20, 0, 0, NULL);
	assert_int_equal(r.code, GRPC_STATUS_NOT_FOUND);
	assert_string_equal(r.message, "region 'r9' does not exist; add it "
				       "with `ombractl region add r9`");
	r = register_node(fx->f, 8, "n9", "r9", "h:1", 100);
	assert_int_equal(r.code, GRPC_STATUS_NOT_FOUND);
	r = create_volume(fx->f, 9, "v1", "r1", 0, 0, 0, NULL);
	assert_int_equal(r.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_non_null(strstr(r.message, "volume size is 0 bytes"));
	r = create_volume(fx->f, 10, "v1", "r1", 1 << 20, 0, 9, NULL);
	assert_int_equal(r.code, GRPC_STATUS_INVALID_ARGUMENT);
	/* Refusals still advance the applied index. */
	assert_int_equal(fsm_applied_index(fx->f), 10);

	r = create_volume(fx->f, 11, "v1", "r1", 8ull << 20, 0, 0, NULL);
	assert_int_equal(r.code, 0);
	r = create_volume(fx->f, 12, "v1", "r1", 8ull << 20, 0, 0, NULL);
	assert_int_equal(r.code, GRPC_STATUS_ALREADY_EXISTS);
	assert_int_equal(r.object_id, 1);
	assert_non_null(strstr(r.message, "volume 'v1' already exists"));

	/* Grow: ok, segment count and modified index follow. */
	r = resize_volume(fx->f, 13, "v1", 10ull << 20);
	assert_int_equal(r.code, 0);
	assert_int_equal(fsm_get_volume(fx->f, "v1", &vol, errmsg), 0);
	assert_int_equal(vol->size_bytes, 10ull << 20);
	assert_int_equal(vol->segment_count, 10);
	assert_int_equal(vol->modified_index, 13);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	/* Shrink: refused, nothing changes. */
	r = resize_volume(fx->f, 14, "v1", 4ull << 20);
	assert_int_equal(r.code, GRPC_STATUS_FAILED_PRECONDITION);
	assert_non_null(strstr(r.message, "shrinking"));
	assert_int_equal(fsm_get_volume(fx->f, "v1", &vol, errmsg), 0);
	assert_int_equal(vol->size_bytes, 10ull << 20);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	r = resize_volume(fx->f, 15, "nope", 4ull << 20);
	assert_int_equal(r.code, GRPC_STATUS_NOT_FOUND);
	r = resize_volume(fx->f, 16, "v1", 12345);
	assert_int_equal(r.code, GRPC_STATUS_INVALID_ARGUMENT);

	r = set_node_state(fx->f, 17, 99, OMBRA__V1__NODE_STATE__NODE_DOWN);
	assert_int_equal(r.code, GRPC_STATUS_NOT_FOUND);
	r = set_node_state(fx->f, 18, 1, (Ombra__V1__NodeState)7);
	assert_int_equal(r.code, GRPC_STATUS_INVALID_ARGUMENT);

	/* Delete, then it is gone. */
	r = delete_volume(fx->f, 19, "v1");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 1);
	assert_true(fx->last_deleted);
	assert_int_equal(fsm_get_volume(fx->f, "v1", &vol, errmsg),
			 OMBRA_ENOTFOUND);
	assert_non_null(strstr(errmsg, "volume 'v1' does not exist"));
	r = delete_volume(fx->f, 20, "v1");
	assert_int_equal(r.code, GRPC_STATUS_NOT_FOUND);
	/* The name is free again; ids are not reused. */
	r = create_volume(fx->f, 21, "v1", "r1", 8ull << 20, 0, 0, NULL);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.object_id, 2);

	/* Malformed input to queries is an error, not a crash. */
	assert_int_equal(fsm_get_volume(fx->f, "", &vol, errmsg), OMBRA_EINVAL);
	assert_int_equal(fsm_get_volume(fx->f, NULL, &vol, errmsg),
			 OMBRA_EINVAL);
	{
		Ombra__V1__Region *reg = NULL;

		assert_int_equal(fsm_get_region(fx->f, "r1", &reg, errmsg), 0);
		assert_int_equal(reg->node_count, 3);
		protobuf_c_message_free_unpacked(&reg->base, NULL);
		assert_int_equal(fsm_get_region(fx->f, "zz", &reg, errmsg),
				 OMBRA_ENOTFOUND);
		assert_non_null(strstr(errmsg, "ombractl region add zz"));
	}
}

static void test_members(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdAddMember am = OMBRA__V1__CMD_ADD_MEMBER__INIT;
	Ombra__V1__CmdRemoveMember rm = OMBRA__V1__CMD_REMOVE_MEMBER__INIT;
	Ombra__V1__MetadMember **members = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	size_t n;

	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_MEMBER;
	m.add_member = &am;
	am.id = 2;
	am.raft_address = "127.0.0.1:9002";
	am.grpc_address = "127.0.0.1:8002";
	assert_int_equal(apply(fx->f, 1, &m, NULL).code, 0);
	am.id = 1;
	am.raft_address = "127.0.0.1:9001";
	assert_int_equal(apply(fx->f, 2, &m, NULL).code, 0);
	assert_string_equal(fx->last_kind, "member");
	assert_string_equal(fx->last_name, "1");
	am.id = 0;
	assert_int_equal(apply(fx->f, 3, &m, NULL).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(fsm_list_members(fx->f, &members, &n, errmsg), 0);
	assert_int_equal(n, 2);
	assert_int_equal(members[0]->id, 1);
	assert_int_equal(members[1]->id, 2);
	assert_string_equal(members[1]->grpc_address, "127.0.0.1:8002");
	fsm_free_list(members, n);

	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_REMOVE_MEMBER;
	m.remove_member = &rm;
	rm.id = 2;
	assert_int_equal(apply(fx->f, 4, &m, NULL).code, 0);
	assert_true(fx->last_deleted);
	assert_int_equal(apply(fx->f, 5, &m, NULL).code, GRPC_STATUS_NOT_FOUND);
	assert_int_equal(fsm_list_members(fx->f, &members, &n, errmsg), 0);
	assert_int_equal(n, 1);
	fsm_free_list(members, n);
}

/* Take a snapshot of f through its raft_fsm: returns a raft_malloc'd copy
 * of the single buffer (for restore, which takes ownership). */
static void test_snapshot_restore(void **state)
{
	struct fixture *fx = *state;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;
	struct raft_buffer snap;
	char ha[65];
	char hb[65];
	struct fsm *b;

	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v1", "r1", 64ull << 20, 0, 0, "rq").code,
	    0);
	assert_int_equal(set_placement(fx->f, 6, 1, 3, 2, 1, false).code, 0);
	hash_of(fx->f, ha);
	snap = take_snapshot(fx->f);
	assert_int_equal(fsm_snapshots_taken(fx->f), 1);

	b = open_at(fx, "b");
	hash_of(b, hb);
	assert_string_not_equal(ha, hb);
	assert_int_equal(restore(b, &snap), 0); /* b now owns snap.base */
	assert_int_equal(fsm_snapshots_restored(b), 1);
	hash_of(b, hb);
	assert_string_equal(ha, hb);
	assert_int_equal(fsm_applied_index(b), 6);
	assert_int_equal(fsm_get_volume(b, "v1", &vol, errmsg), 0);
	assert_int_equal(vol->segment_count, 64);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	/* b keeps working on the swapped file, dedup records included. */
	assert_int_equal(
	    create_volume(b, 7, "v1", "r1", 64ull << 20, 0, 0, "rq").index, 5);
	assert_int_equal(
	    create_volume(b, 8, "v2", "r1", 1 << 20, 0, 0, NULL).object_id, 2);
	fsm_close(b);
	/* And the swapped state survives a reopen. */
	b = open_at(fx, "b");
	assert_int_equal(fsm_applied_index(b), 8);
	assert_int_equal(fsm_get_volume(b, "v2", &vol, errmsg), 0);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	fsm_close(b);
}

static void test_restore_keeps_newer_local(void **state)
{
	struct fixture *fx = *state;
	struct raft_buffer snap;
	char before[65];
	char after[65];
	struct fsm *b;

	build_cluster(fx->f);
	snap = take_snapshot(fx->f); /* index 4 */
	b = open_at(fx, "b");
	assert_int_equal(add_region(b, 1, "x1", NULL).code, 0);
	assert_int_equal(add_region(b, 7, "x7", NULL).code, 0);
	hash_of(b, before);
	assert_int_equal(restore(b, &snap), 0);
	hash_of(b, after);
	assert_string_equal(before, after);
	assert_int_equal(fsm_applied_index(b), 7);
	/* Nothing was replaced, so nothing counts as restored. */
	assert_int_equal(fsm_snapshots_restored(b), 0);
	fsm_close(b);
}

static void test_restore_corrupt(void **state)
{
	struct fixture *fx = *state;
	struct raft_buffer snap;
	struct raft_buffer bad;
	char before[65];
	char after[65];
	struct fsm *b;

	build_cluster(fx->f);
	snap = take_snapshot(fx->f);
	b = open_at(fx, "b");
	assert_int_equal(add_region(b, 1, "x1", NULL).code, 0);
	hash_of(b, before);

	/* Too short, wrong magic, truncated image, flipped image byte, lying
	 * length: all refused, state untouched, ownership stays here. */
	bad.base = snap.base;
	bad.len = 10;
	assert_int_not_equal(restore(b, &bad), 0);
	bad.len = snap.len - 1;
	assert_int_not_equal(restore(b, &bad), 0);
	((uint8_t *)snap.base)[0] ^= 0xff;
	assert_int_not_equal(restore(b, &snap), 0);
	((uint8_t *)snap.base)[0] ^= 0xff;
	((uint8_t *)snap.base)[snap.len / 2] ^= 0x01;
	assert_int_not_equal(restore(b, &snap), 0);
	((uint8_t *)snap.base)[snap.len / 2] ^= 0x01;
	((uint8_t *)snap.base)[23] ^= 0x10; /* image length */
	assert_int_not_equal(restore(b, &snap), 0);
	((uint8_t *)snap.base)[23] ^= 0x10;
	bad.base = NULL;
	bad.len = 0;
	assert_int_not_equal(restore(b, &bad), 0);
	/* Garbage after a valid header and matching checksum is not LMDB. */
	{
		struct raft_buffer g;
		uint8_t *p;
		unsigned int mdlen;

		g.len = 56 + 8192;
		g.base = raft_malloc(g.len);
		assert_non_null(g.base);
		p = g.base;
		memset(p, 0x5a, g.len);
		memcpy(p, "OMBRASN1", 8);
		memset(p + 8, 0, 8);
		p[15] = 99; /* index 99: newer than b */
		memset(p + 16, 0, 8);
		p[22] = 0x20; /* 8192 */
		assert_true(EVP_Digest(p + 56, 8192, p + 24, &mdlen,
				       EVP_sha256(), NULL) == 1);
		assert_int_not_equal(restore(b, &g), 0);
		raft_free(g.base);
	}
	hash_of(b, after);
	assert_string_equal(before, after);
	assert_int_equal(fsm_applied_index(b), 1);
	assert_int_equal(fsm_snapshots_restored(b), 0);
	/* Still usable, and the intact buffer still restores. */
	assert_int_equal(restore(b, &snap), 0);
	assert_int_equal(fsm_applied_index(b), 4);
	fsm_close(b);
}

static void check_default_segment(const struct placement_node *pn, size_t n,
				  uint64_t volume_id,
				  const Ombra__V1__SegmentPlacement *p,
				  size_t k)
{
	uint64_t want[5];
	size_t got = placement_pick(pn, n, volume_id, p->index, k, want);
	size_t i;

	assert_false(p->exception);
	assert_int_equal(p->primary_node_id, want[0]);
	assert_int_equal(p->n_replica_node_ids, got - 1);
	for (i = 1; i < got; i++)
		assert_int_equal(p->replica_node_ids[i - 1], want[i]);
}

static void test_shard_map(void **state)
{
	struct fixture *fx = *state;
	const struct placement_node up3[3] = {
	    {1, 1ull << 40}, {2, 2ull << 40}, {3, 3ull << 40}};
	Ombra__V1__GetVolumeShardingInfoResponse resp;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct fsm_result r;
	char h1[65];
	char h2[65];
	size_t i;

	build_cluster(fx->f);
	assert_int_equal(add_region(fx->f, 5, "r2", NULL).code, 0);
	assert_int_equal(
	    register_node(fx->f, 6, "m1", "r2", "m:1", 1 << 30).object_id, 4);
	/* 10 segments of 1 MiB, 2 copies each. */
	r = create_volume(fx->f, 7, "v", "r1", 10ull << 20, 0, 2, NULL);
	assert_int_equal(r.code, 0);

	ombra__v1__get_volume_sharding_info_response__init(&resp);
	assert_int_equal(fsm_shard_map(fx->f, "v", 0, 4, &resp, errmsg), 0);
	assert_non_null(resp.volume);
	assert_string_equal(resp.volume->name, "v");
	assert_int_equal(resp.n_segments, 4);
	assert_int_equal(resp.next_segment, 4);
	for (i = 0; i < resp.n_segments; i++) {
		assert_int_equal(resp.segments[i]->index, i);
		check_default_segment(up3, 3, 1, resp.segments[i], 2);
	}
	/* Only home-region nodes, each listed once, sorted by id. */
	assert_true(resp.n_nodes >= 2 && resp.n_nodes <= 3);
	for (i = 0; i < resp.n_nodes; i++) {
		assert_true(resp.nodes[i]->id >= 1 && resp.nodes[i]->id <= 3);
		if (i > 0)
			assert_true(resp.nodes[i]->id > resp.nodes[i - 1]->id);
	}
	fsm_free_shard_map(&resp);
	assert_null(resp.volume);

	/* Last page. */
	assert_int_equal(fsm_shard_map(fx->f, "v", 8, 4, &resp, errmsg), 0);
	assert_int_equal(resp.n_segments, 2);
	assert_int_equal(resp.segments[1]->index, 9);
	assert_int_equal(resp.next_segment, 0);
	fsm_free_shard_map(&resp);
	/* Beyond the end: empty. */
	assert_int_equal(fsm_shard_map(fx->f, "v", 10, 4, &resp, errmsg), 0);
	assert_int_equal(resp.n_segments, 0);
	assert_int_equal(resp.next_segment, 0);
	assert_non_null(resp.volume);
	fsm_free_shard_map(&resp);
	/* max 0 = default page (1024): everything. */
	assert_int_equal(fsm_shard_map(fx->f, "v", 0, 0, &resp, errmsg), 0);
	assert_int_equal(resp.n_segments, 10);
	assert_int_equal(resp.next_segment, 0);
	fsm_free_shard_map(&resp);
	assert_int_equal(fsm_shard_map(fx->f, "nope", 0, 0, &resp, errmsg),
			 OMBRA_ENOTFOUND);
	assert_null(resp.volume);

	/* An exception overrides segment 5; it may name any node. */
	hash_of(fx->f, h1);
	r = set_placement(fx->f, 8, 1, 5, 4, 3, false);
	assert_int_equal(r.code, 0);
	assert_string_equal(fx->last_kind, "placement");
	assert_string_equal(fx->last_name, "v");
	assert_int_equal(fsm_shard_map(fx->f, "v", 4, 3, &resp, errmsg), 0);
	assert_int_equal(resp.n_segments, 3);
	check_default_segment(up3, 3, 1, resp.segments[0], 2);
	assert_true(resp.segments[1]->exception);
	assert_int_equal(resp.segments[1]->index, 5);
	assert_int_equal(resp.segments[1]->primary_node_id, 4);
	assert_int_equal(resp.segments[1]->n_replica_node_ids, 1);
	assert_int_equal(resp.segments[1]->replica_node_ids[0], 3);
	assert_string_equal(resp.segments[1]->tier, "fast");
	check_default_segment(up3, 3, 1, resp.segments[2], 2);
	assert_int_equal(resp.nodes[resp.n_nodes - 1]->id, 4);
	fsm_free_shard_map(&resp);

	/* Bad exceptions are refused. */
	assert_int_equal(set_placement(fx->f, 9, 1, 10, 1, 2, false).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(set_placement(fx->f, 10, 1, 1, 1, 77, false).code,
			 GRPC_STATUS_NOT_FOUND);
	assert_int_equal(set_placement(fx->f, 11, 1, 1, 2, 2, false).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(set_placement(fx->f, 12, 1, 1, 0, 0, false).code,
			 GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(set_placement(fx->f, 13, 42, 1, 1, 0, false).code,
			 GRPC_STATUS_NOT_FOUND);

	/* The override moved the primary of segment 5: a new epoch. */
	assert_int_equal(fsm_shard_map(fx->f, "v", 5, 1, &resp, errmsg), 0);
	assert_int_equal(resp.segments[0]->lease_epoch, 2);
	fsm_free_shard_map(&resp);

	/* Clear it: back to the computed placement (only map_index, the
	 * index of the last map change, differs from before). */
	assert_int_equal(set_placement(fx->f, 14, 1, 5, 0, 0, true).code, 0);
	hash_of(fx->f, h2);
	assert_string_not_equal(h1, h2);
	assert_int_equal(fsm_map_index(fx->f), 14);
	assert_int_equal(fsm_shard_map(fx->f, "v", 0, 0, &resp, errmsg), 0);
	for (i = 0; i < resp.n_segments; i++) {
		check_default_segment(up3, 3, 1, resp.segments[i], 2);
		assert_int_equal(resp.segments[i]->lease_epoch, 1);
	}
	fsm_free_shard_map(&resp);

	/* A DOWN node does not change the computed placement: it is
	 * removed from in-sync sets by exceptions (test_fsm_lease.c). */
	assert_int_equal(
	    set_node_state(fx->f, 15, 3, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	assert_int_equal(fsm_shard_map(fx->f, "v", 0, 0, &resp, errmsg), 0);
	for (i = 0; i < resp.n_segments; i++) {
		const Ombra__V1__SegmentPlacement *p = resp.segments[i];
		uint64_t want[2];

		placement_pick(up3, 3, 1, p->index, 2, want);
		if (want[0] != 3 && want[1] != 3) {
			check_default_segment(up3, 3, 1, p, 2);
			continue;
		}
		assert_true(p->exception);
		assert_int_equal(p->n_resync_node_ids, 1);
		assert_int_equal(p->resync_node_ids[0], 3);
		assert_int_equal(p->n_replica_node_ids, 0);
		assert_int_equal(p->primary_node_id,
				 want[0] == 3 ? want[1] : want[0]);
		assert_int_equal(p->lease_epoch, want[0] == 3 ? 2 : 1);
	}
	/* Node 3 (resyncing) is still listed with the others. */
	assert_int_equal(resp.nodes[resp.n_nodes - 1]->id, 3);
	fsm_free_shard_map(&resp);

	/* Deleting a volume drops its exceptions. */
	assert_int_equal(set_placement(fx->f, 16, 1, 2, 1, 2, false).code, 0);
	assert_int_equal(delete_volume(fx->f, 17, "v").code, 0);
	{
		struct fsm *b = open_at(fx, "b");
		char hb[65];
		char ha[65];

		/* Same history without the exception. */
		build_cluster(b);
		assert_int_equal(add_region(b, 5, "r2", NULL).code, 0);
		assert_int_equal(
		    register_node(b, 6, "m1", "r2", "m:1", 1 << 30).code, 0);
		assert_int_equal(
		    create_volume(b, 7, "v", "r1", 10ull << 20, 0, 2, NULL)
			.code,
		    0);
		assert_int_equal(
		    set_node_state(b, 15, 3, OMBRA__V1__NODE_STATE__NODE_DOWN)
			.code,
		    0);
		assert_int_equal(delete_volume(b, 17, "v").code, 0);
		hash_of(b, hb);
		hash_of(fx->f, ha);
		assert_string_equal(ha, hb);
		fsm_close(b);
	}
}

static void test_shard_map_large(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__GetVolumeShardingInfoResponse resp;
	char errmsg[OMBRA_ERRMSG_LEN];
	uint64_t next = 0;
	uint64_t total = 0;
	unsigned pages = 0;

	build_cluster(fx->f);
	/* 100000 segments of 64 KiB. */
	assert_int_equal(create_volume(fx->f, 5, "big", "r1", 100000ull << 16,
				       1u << 16, 3, NULL)
			     .code,
			 0);
	assert_int_equal(set_placement(fx->f, 6, 1, 70000, 2, 3, false).code,
			 0);
	ombra__v1__get_volume_sharding_info_response__init(&resp);
	do {
		size_t i;

		assert_int_equal(
		    fsm_shard_map(fx->f, "big", next, 100000, &resp, errmsg),
		    0);
		assert_true(resp.n_segments <= 65536);
		for (i = 0; i < resp.n_segments; i++) {
			assert_int_equal(resp.segments[i]->index, next + i);
			assert_int_equal(resp.segments[i]->exception,
					 next + i == 70000);
			assert_int_equal(resp.segments[i]->n_replica_node_ids,
					 next + i == 70000 ? 1 : 2);
		}
		total += resp.n_segments;
		next = resp.next_segment;
		pages++;
		fsm_free_shard_map(&resp);
	} while (next != 0);
	assert_int_equal(total, 100000);
	assert_int_equal(pages, 2);
}

static void test_raft_apply_hook(void **state)
{
	struct fixture *fx = *state;
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdAddRegion c = OMBRA__V1__CMD_ADD_REGION__INIT;
	static const uint8_t junk[] = {0xde, 0xad, 0xbe, 0xef};
	struct raft_buffer buf;
	struct fsm_result *res = NULL;
	struct raft_fsm rf;
	struct raft r;

	fsm_bind_raft(fx->f, NULL, &rf);
	c.name = "r1";
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_REGION;
	m.add_region = &c;
	assert_int_equal(cmd_encode(&m, &buf), 0);
	assert_int_equal(rf.apply(&rf, &buf, (void **)&res), 0);
	assert_non_null(res);
	assert_int_equal(res->code, 0);
	assert_int_equal(res->index, 1);
	free(res);
	assert_int_equal(rf.apply(&rf, &buf, (void **)&res), 0);
	assert_int_equal(res->code, GRPC_STATUS_ALREADY_EXISTS);
	assert_int_equal(res->index, 2);
	free(res);
	raft_free(buf.base);

	/* Malformed entry: a refusal, never a crash; the index advances. */
	buf.base = (void *)junk;
	buf.len = sizeof(junk);
	assert_int_equal(rf.apply(&rf, &buf, (void **)&res), 0);
	assert_int_equal(res->code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_int_equal(res->index, 3);
	free(res);
	assert_int_equal(fsm_applied_index(fx->f), 3);

	/* With a raft instance the index is last_applied + 1 (barriers and
	 * configuration entries also take indexes).  A follower has no
	 * proposer waiting, so no result is allocated (libraft would drop
	 * it). */
	memset(&r, 0, sizeof(r));
	r.state = RAFT_FOLLOWER;
	r.last_applied = 9;
	fsm_bind_raft(fx->f, &r, &rf);
	c.name = "r10";
	assert_int_equal(cmd_encode(&m, &buf), 0);
	res = (void *)&r; /* must be overwritten */
	assert_int_equal(rf.apply(&rf, &buf, (void **)&res), 0);
	assert_null(res);
	assert_int_equal(fsm_applied_index(fx->f), 10);

	/* A leader with a pending raft_apply() for index 12 gets a result
	 * for 12 only. */
	{
		struct raft_apply req;

		memset(&req, 0, sizeof(req));
		r.state = RAFT_LEADER;
		r.last_applied = 10;
		req.type = RAFT_COMMAND;
		req.index = 12;
		r.leader_state.requests[0] = req.queue;
		r.leader_state.requests[1] = req.queue;
		req.queue[0] = r.leader_state.requests;
		req.queue[1] = r.leader_state.requests;
		c.name = "r11";
		raft_free(buf.base);
		assert_int_equal(cmd_encode(&m, &buf), 0);
		res = (void *)&r;
		assert_int_equal(rf.apply(&rf, &buf, (void **)&res), 0);
		assert_null(res);
		assert_int_equal(fsm_applied_index(fx->f), 11);
		r.last_applied = 11;
		c.name = "r12";
		raft_free(buf.base);
		assert_int_equal(cmd_encode(&m, &buf), 0);
		assert_int_equal(rf.apply(&rf, &buf, (void **)&res), 0);
		assert_non_null(res);
		assert_int_equal(res->code, 0);
		assert_int_equal(res->index, 12);
		free(res);
	}
	raft_free(buf.base);
	assert_int_equal(fsm_applied_index(fx->f), 12);
}

static void test_reopen(void **state)
{
	struct fixture *fx = *state;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume *vol = NULL;
	char before[65];
	char after[65];

	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v", "r1", 1 << 20, 0, 0, "q").code, 0);
	assert_int_equal(fsm_sync(fx->f), 0);
	hash_of(fx->f, before);
	fsm_close(fx->f);
	fx->f = open_at(fx, "a");
	assert_int_equal(fsm_applied_index(fx->f), 5);
	hash_of(fx->f, after);
	assert_string_equal(before, after);
	assert_int_equal(fsm_get_volume(fx->f, "v", &vol, errmsg), 0);
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	/* Counters continue: the next volume gets id 2. */
	assert_int_equal(
	    create_volume(fx->f, 6, "w", "r1", 1 << 20, 0, 0, NULL).object_id,
	    2);
	/* The dedup table survived too. */
	assert_int_equal(
	    create_volume(fx->f, 7, "v", "r1", 1 << 20, 0, 0, "q").index, 5);
}

static void test_open_errors(void **state)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct fsm *f = NULL;

	(void)state;
	assert_int_equal(fsm_open("", &f, errmsg), OMBRA_EINVAL);
	assert_int_equal(fsm_open("/nonexistent-ombra/deeper/x", &f, errmsg),
			 OMBRA_EIO);
	assert_non_null(strstr(errmsg, "mkdir"));
	assert_null(f);
	fsm_close(NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_apply_sequence),   T(test_replay_is_noop),
	    T(test_request_id_dedup), T(test_dedup_window_pruned),
	    T(test_refusals),	      T(test_members),
	    T(test_snapshot_restore), T(test_restore_keeps_newer_local),
	    T(test_restore_corrupt),  T(test_shard_map),
	    T(test_shard_map_large),  T(test_raft_apply_hook),
	    T(test_reopen),	      cmocka_unit_test(test_open_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
