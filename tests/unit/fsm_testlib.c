/* fsm_testlib.c: the fixture and command builders shared by the state
 * machine unit tests (test_fsm.c, test_fsm_lease.c): a real LMDB
 * environment in a mkdtemp directory and one helper per MetaCommand that
 * applies it and returns the result.  Fails through cmocka assertions. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsm_testlib.h"

static void on_change(void *data, uint64_t index, const char *kind,
		      const char *name, bool deleted)
{
	struct fixture *fx = data;

	fx->changes++;
	fx->last_index = index;
	snprintf(fx->last_kind, sizeof(fx->last_kind), "%s", kind);
	snprintf(fx->last_name, sizeof(fx->last_name), "%s", name);
	fx->last_deleted = deleted;
}

struct fsm *open_at(struct fixture *fx, const char *sub)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	char dir[160];
	struct fsm *f = NULL;

	snprintf(dir, sizeof(dir), "%s/%s", fx->root, sub);
	assert_int_equal(fsm_open(dir, &f, errmsg), 0);
	assert_non_null(f);
	return f;
}

int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	snprintf(fx->root, sizeof(fx->root), "/tmp/ombra-test-fsm-XXXXXX");
	assert_non_null(mkdtemp(fx->root));
	snprintf(fx->dir, sizeof(fx->dir), "%s/a", fx->root);
	fx->f = open_at(fx, "a");
	fsm_set_change_listener(fx->f, on_change, fx);
	*state = fx;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int teardown(void **state)
{
	struct fixture *fx = *state;

	fsm_close(fx->f);
	nftw(fx->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* ---- command builders: apply one command, return the result ---- */

struct fsm_result apply(struct fsm *f, uint64_t index,
			Ombra__V1__MetaCommand *m, const char *rid)
{
	struct fsm_result res;

	m->request_id = (char *)(rid != NULL ? rid : "");
	m->time_unix_ms = 1000 + index;
	assert_int_equal(fsm_apply_command(f, index, m, &res), 0);
	return res;
}

struct fsm_result add_region(struct fsm *f, uint64_t index, const char *name,
			     const char *rid)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdAddRegion c = OMBRA__V1__CMD_ADD_REGION__INIT;

	c.name = (char *)name;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_REGION;
	m.add_region = &c;
	return apply(f, index, &m, rid);
}

struct fsm_result register_node(struct fsm *f, uint64_t index, const char *name,
				const char *region, const char *address,
				uint64_t capacity)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdRegisterNode c = OMBRA__V1__CMD_REGISTER_NODE__INIT;
	Ombra__V1__Tier t = OMBRA__V1__TIER__INIT;
	Ombra__V1__Tier *tiers[1] = {&t};

	t.name = "fast";
	t.path = "/srv/fast";
	t.capacity_bytes = capacity;
	c.name = (char *)name;
	c.region = (char *)region;
	c.address = (char *)address;
	c.n_tiers = 1;
	c.tiers = tiers;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_REGISTER_NODE;
	m.register_node = &c;
	return apply(f, index, &m, NULL);
}

struct fsm_result create_volume(struct fsm *f, uint64_t index, const char *name,
				const char *region, uint64_t size,
				uint64_t segment, uint32_t replicas,
				const char *rid)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdCreateVolume c = OMBRA__V1__CMD_CREATE_VOLUME__INIT;

	c.name = (char *)name;
	c.home_region = (char *)region;
	c.size_bytes = size;
	c.segment_size_bytes = segment;
	c.replicas = replicas;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_CREATE_VOLUME;
	m.create_volume = &c;
	return apply(f, index, &m, rid);
}

struct fsm_result resize_volume(struct fsm *f, uint64_t index, const char *name,
				uint64_t size)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdResizeVolume c = OMBRA__V1__CMD_RESIZE_VOLUME__INIT;

	c.name = (char *)name;
	c.new_size_bytes = size;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_RESIZE_VOLUME;
	m.resize_volume = &c;
	return apply(f, index, &m, NULL);
}

struct fsm_result delete_volume(struct fsm *f, uint64_t index, const char *name)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdDeleteVolume c = OMBRA__V1__CMD_DELETE_VOLUME__INIT;

	c.name = (char *)name;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_DELETE_VOLUME;
	m.delete_volume = &c;
	return apply(f, index, &m, NULL);
}

struct fsm_result set_node_state(struct fsm *f, uint64_t index, uint64_t id,
				 Ombra__V1__NodeState st)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdSetNodeState c = OMBRA__V1__CMD_SET_NODE_STATE__INIT;

	c.node_id = id;
	c.state = st;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_NODE_STATE;
	m.set_node_state = &c;
	return apply(f, index, &m, NULL);
}

struct fsm_result set_placement(struct fsm *f, uint64_t index,
				uint64_t volume_id, uint64_t segment,
				uint64_t primary, uint64_t replica, bool clear)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdSetPlacement c = OMBRA__V1__CMD_SET_PLACEMENT__INIT;
	Ombra__V1__SegmentPlacement p = OMBRA__V1__SEGMENT_PLACEMENT__INIT;
	uint64_t replicas[1] = {replica};

	p.index = segment;
	p.primary_node_id = primary;
	if (replica != 0) {
		p.n_replica_node_ids = 1;
		p.replica_node_ids = replicas;
	}
	p.tier = "fast";
	c.volume_id = volume_id;
	c.placement = &p;
	c.clear = clear;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_PLACEMENT;
	m.set_placement = &c;
	return apply(f, index, &m, NULL);
}

void hash_of(struct fsm *f, char hex[65])
{
	assert_int_equal(fsm_state_hash(f, hex), 0);
	assert_int_equal(strlen(hex), 64);
}

/* Region r1 with nodes n1..n3 (ids 1..3, capacities 1, 2, 3 TiB) at
 * indexes 1..4. */
void build_cluster(struct fsm *f)
{
	assert_int_equal(add_region(f, 1, "r1", NULL).code, 0);
	assert_int_equal(
	    register_node(f, 2, "n1", "r1", "h1:7001", 1ull << 40).object_id,
	    1);
	assert_int_equal(
	    register_node(f, 3, "n2", "r1", "h2:7001", 2ull << 40).object_id,
	    2);
	assert_int_equal(
	    register_node(f, 4, "n3", "r1", "h3:7001", 3ull << 40).object_id,
	    3);
}

struct fsm_result replica_change(struct fsm *f, uint64_t index,
				 uint64_t volume_id, uint64_t segment,
				 uint64_t node, uint64_t epoch,
				 uint64_t primary, bool synced, const char *rid)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdReplicaChange c = OMBRA__V1__CMD_REPLICA_CHANGE__INIT;

	c.volume_id = volume_id;
	c.segment_index = segment;
	c.node_id = node;
	c.lease_epoch = epoch;
	c.primary_node_id = primary;
	c.synced = synced;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_REPLICA_CHANGE;
	m.replica_change = &c;
	return apply(f, index, &m, rid);
}

struct raft_buffer take_snapshot(struct fsm *f)
{
	struct raft_fsm rf;
	struct raft_buffer *bufs = NULL;
	struct raft_buffer copy;
	unsigned n = 0;

	fsm_bind_raft(f, NULL, &rf);
	/* Same sequence as libraft 0.15's takeSnapshot() for a version-3
	 * fsm: snapshot on the loop, then snapshot_async in the pool. */
	assert_int_equal(rf.version, 3);
	assert_int_equal(rf.snapshot(&rf, &bufs, &n), 0);
	assert_int_equal(rf.snapshot_async(&rf, &bufs, &n), 0);
	assert_int_equal(n, 1);
	assert_true(bufs[0].len > 56);
	assert_memory_equal(bufs[0].base, "OMBRASN1", 8);
	copy.len = bufs[0].len;
	copy.base = raft_malloc(copy.len);
	assert_non_null(copy.base);
	memcpy(copy.base, bufs[0].base, copy.len);
	assert_int_equal(rf.snapshot_finalize(&rf, &bufs, &n), 0);
	assert_null(bufs);
	return copy;
}

int restore(struct fsm *f, struct raft_buffer *buf)
{
	struct raft_fsm rf;

	fsm_bind_raft(f, NULL, &rf);
	return rf.restore(&rf, buf);
}
