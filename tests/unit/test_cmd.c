/* test_cmd.c: unit tests of metad/cmd.c: the MetaCommand codec (round trip
 * of every command kind, malformed and empty input) and the static
 * validators with their messages.  Fails through cmocka assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "metad/cmd.h"

/* Encode, decode and return the decoded copy (caller frees). */
static Ombra__V1__MetaCommand *round_trip(const Ombra__V1__MetaCommand *in)
{
	struct raft_buffer buf = {NULL, 0};
	Ombra__V1__MetaCommand *out;

	assert_int_equal(cmd_encode(in, &buf), 0);
	assert_non_null(buf.base);
	assert_true(buf.len > 0);
	/* raft_uv needs 8-byte multiples; the padding decodes away. */
	assert_int_equal(buf.len % 8, 0);
	out = cmd_decode(buf.base, buf.len);
	raft_free(buf.base);
	assert_non_null(out);
	assert_int_equal(out->cmd_case, in->cmd_case);
	assert_string_equal(out->request_id, in->request_id);
	assert_int_equal(out->time_unix_ms, in->time_unix_ms);
	assert_string_equal(cmd_kind(out), cmd_kind(in));
	return out;
}

static void test_round_trip_regions_nodes(void **state)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdAddRegion ar = OMBRA__V1__CMD_ADD_REGION__INIT;
	Ombra__V1__CmdRegisterNode rn = OMBRA__V1__CMD_REGISTER_NODE__INIT;
	Ombra__V1__CmdSetNodeState ns = OMBRA__V1__CMD_SET_NODE_STATE__INIT;
	Ombra__V1__Tier t0 = OMBRA__V1__TIER__INIT;
	Ombra__V1__Tier t1 = OMBRA__V1__TIER__INIT;
	Ombra__V1__Tier *tiers[2] = {&t0, &t1};
	Ombra__V1__MetaCommand *out;

	(void)state;
	m.request_id = "req-1";
	m.time_unix_ms = 1700000000123ull;
	ar.name = "eu-west";
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_REGION;
	m.add_region = &ar;
	out = round_trip(&m);
	assert_string_equal(out->add_region->name, "eu-west");
	assert_string_equal(cmd_kind(out), "add_region");
	ombra__v1__meta_command__free_unpacked(out, NULL);

	t0.name = "fast";
	t0.path = "/srv/fast";
	t0.capacity_bytes = 1ull << 40;
	t1.name = "slow";
	t1.path = "/srv/slow";
	t1.capacity_bytes = 1ull << 42;
	t1.used_bytes = 77;
	rn.name = "n1";
	rn.region = "eu-west";
	rn.address = "10.0.0.1:7100";
	rn.n_tiers = 2;
	rn.tiers = tiers;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_REGISTER_NODE;
	m.register_node = &rn;
	out = round_trip(&m);
	assert_string_equal(out->register_node->name, "n1");
	assert_string_equal(out->register_node->address, "10.0.0.1:7100");
	assert_int_equal(out->register_node->n_tiers, 2);
	assert_string_equal(out->register_node->tiers[1]->path, "/srv/slow");
	assert_int_equal(out->register_node->tiers[1]->capacity_bytes,
			 1ull << 42);
	assert_int_equal(out->register_node->tiers[1]->used_bytes, 77);
	ombra__v1__meta_command__free_unpacked(out, NULL);

	ns.node_id = 42;
	ns.state = OMBRA__V1__NODE_STATE__NODE_DRAINING;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_NODE_STATE;
	m.set_node_state = &ns;
	out = round_trip(&m);
	assert_int_equal(out->set_node_state->node_id, 42);
	assert_int_equal(out->set_node_state->state,
			 OMBRA__V1__NODE_STATE__NODE_DRAINING);
	ombra__v1__meta_command__free_unpacked(out, NULL);
}

static void test_round_trip_volumes(void **state)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdCreateVolume cv = OMBRA__V1__CMD_CREATE_VOLUME__INIT;
	Ombra__V1__CmdResizeVolume rv = OMBRA__V1__CMD_RESIZE_VOLUME__INIT;
	Ombra__V1__CmdDeleteVolume dv = OMBRA__V1__CMD_DELETE_VOLUME__INIT;
	Ombra__V1__MetaCommand *out;

	(void)state;
	m.time_unix_ms = 5;
	cv.name = "vol-a";
	cv.size_bytes = 10ull << 30;
	cv.segment_size_bytes = 4u << 20;
	cv.home_region = "us-east";
	cv.replicas = 3;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_CREATE_VOLUME;
	m.create_volume = &cv;
	out = round_trip(&m);
	assert_string_equal(out->create_volume->name, "vol-a");
	assert_int_equal(out->create_volume->size_bytes, 10ull << 30);
	assert_int_equal(out->create_volume->segment_size_bytes, 4u << 20);
	assert_string_equal(out->create_volume->home_region, "us-east");
	assert_int_equal(out->create_volume->replicas, 3);
	ombra__v1__meta_command__free_unpacked(out, NULL);

	rv.name = "vol-a";
	rv.new_size_bytes = 20ull << 30;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_RESIZE_VOLUME;
	m.resize_volume = &rv;
	out = round_trip(&m);
	assert_string_equal(out->resize_volume->name, "vol-a");
	assert_int_equal(out->resize_volume->new_size_bytes, 20ull << 30);
	ombra__v1__meta_command__free_unpacked(out, NULL);

	dv.name = "vol-a";
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_DELETE_VOLUME;
	m.delete_volume = &dv;
	out = round_trip(&m);
	assert_string_equal(out->delete_volume->name, "vol-a");
	assert_string_equal(cmd_kind(out), "delete_volume");
	ombra__v1__meta_command__free_unpacked(out, NULL);
}

static void test_round_trip_members_placement(void **state)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdAddMember am = OMBRA__V1__CMD_ADD_MEMBER__INIT;
	Ombra__V1__CmdRemoveMember rm = OMBRA__V1__CMD_REMOVE_MEMBER__INIT;
	Ombra__V1__CmdSetPlacement sp = OMBRA__V1__CMD_SET_PLACEMENT__INIT;
	Ombra__V1__SegmentPlacement p = OMBRA__V1__SEGMENT_PLACEMENT__INIT;
	Ombra__V1__ShadowCopy sh = OMBRA__V1__SHADOW_COPY__INIT;
	Ombra__V1__ShadowCopy *shadows[1] = {&sh};
	uint64_t replicas[2] = {7, 9};
	Ombra__V1__MetaCommand *out;

	(void)state;
	am.id = 3;
	am.raft_address = "127.0.0.1:9003";
	am.grpc_address = "127.0.0.1:8003";
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_MEMBER;
	m.add_member = &am;
	out = round_trip(&m);
	assert_int_equal(out->add_member->id, 3);
	assert_string_equal(out->add_member->raft_address, "127.0.0.1:9003");
	assert_string_equal(out->add_member->grpc_address, "127.0.0.1:8003");
	ombra__v1__meta_command__free_unpacked(out, NULL);

	rm.id = 3;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_REMOVE_MEMBER;
	m.remove_member = &rm;
	out = round_trip(&m);
	assert_int_equal(out->remove_member->id, 3);
	ombra__v1__meta_command__free_unpacked(out, NULL);

	sh.node_id = 11;
	sh.region = "ap-south";
	sh.version = 99;
	p.index = 17;
	p.primary_node_id = 5;
	p.n_replica_node_ids = 2;
	p.replica_node_ids = replicas;
	p.n_shadows = 1;
	p.shadows = shadows;
	p.tier = "fast";
	sp.volume_id = 8;
	sp.placement = &p;
	sp.clear = 1;
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_PLACEMENT;
	m.set_placement = &sp;
	out = round_trip(&m);
	assert_int_equal(out->set_placement->volume_id, 8);
	assert_true(out->set_placement->clear);
	assert_int_equal(out->set_placement->placement->index, 17);
	assert_int_equal(out->set_placement->placement->primary_node_id, 5);
	assert_int_equal(out->set_placement->placement->n_replica_node_ids, 2);
	assert_int_equal(out->set_placement->placement->replica_node_ids[1], 9);
	assert_int_equal(out->set_placement->placement->shadows[0]->node_id,
			 11);
	assert_string_equal(out->set_placement->placement->shadows[0]->region,
			    "ap-south");
	assert_string_equal(out->set_placement->placement->tier, "fast");
	ombra__v1__meta_command__free_unpacked(out, NULL);
}

static void test_replica_change(void **state)
{
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdReplicaChange c = OMBRA__V1__CMD_REPLICA_CHANGE__INIT;
	Ombra__V1__MetaCommand *out;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	c.volume_id = 4;
	c.segment_index = 1000;
	c.node_id = 2;
	c.lease_epoch = 3;
	c.primary_node_id = 5;
	c.synced = true;
	assert_int_equal(cmd_validate_replica_change(&c, errmsg), 0);
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_REPLICA_CHANGE;
	m.replica_change = &c;
	out = round_trip(&m);
	assert_string_equal(cmd_kind(out), "replica_change");
	assert_int_equal(out->replica_change->volume_id, 4);
	assert_int_equal(out->replica_change->segment_index, 1000);
	assert_int_equal(out->replica_change->node_id, 2);
	assert_int_equal(out->replica_change->lease_epoch, 3);
	assert_int_equal(out->replica_change->primary_node_id, 5);
	assert_true(out->replica_change->synced);
	ombra__v1__meta_command__free_unpacked(out, NULL);

	/* Segment 0 is a segment like any other. */
	c.segment_index = 0;
	assert_int_equal(cmd_validate_replica_change(&c, errmsg), 0);
	c.volume_id = 0;
	assert_int_equal(cmd_validate_replica_change(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "volume_id is required"));
	c.volume_id = 4;
	c.node_id = 0;
	assert_int_equal(cmd_validate_replica_change(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "node_id"));
	c.node_id = 5;
	assert_int_equal(cmd_validate_replica_change(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "its own replica"));
	c.node_id = 2;
	c.primary_node_id = 0;
	assert_int_equal(cmd_validate_replica_change(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "primary_node_id"));
	c.primary_node_id = 5;
	c.lease_epoch = 0;
	assert_int_equal(cmd_validate_replica_change(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "lease_epoch"));
	assert_int_equal(cmd_validate_replica_change(NULL, errmsg),
			 OMBRA_EINVAL);
}

/* Every member of the MetaCommand oneof, found through the descriptor so a
 * command added to meta.proto cannot be missed by the codec: each encodes
 * with an empty body and decodes back as the same kind. */
static void test_round_trip_every_kind(void **state)
{
	const ProtobufCMessageDescriptor *d =
	    &ombra__v1__meta_command__descriptor;
	unsigned i, n = 0;

	(void)state;
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
		Ombra__V1__MetaCommand *out;
		const ProtobufCMessageDescriptor *bd = fd->descriptor;
		ProtobufCMessage *body;

		if (!(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
		    fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		body = calloc(1, bd->sizeof_message);
		assert_non_null(body);
		bd->message_init(body);
		m.request_id = "req-kind";
		*(uint32_t *)((char *)&m + fd->quantifier_offset) = fd->id;
		*(ProtobufCMessage **)((char *)&m + fd->offset) = body;
		out = round_trip(&m);
		assert_string_not_equal(cmd_kind(out), "none");
		ombra__v1__meta_command__free_unpacked(out, NULL);
		free(body);
		n++;
	}
	assert_true(n >= 14);
}

static void test_decode_malformed(void **state)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	/* field 13 (create_volume), length 10, but only 2 bytes follow */
	static const uint8_t truncated[] = {0x6a, 0x0a, 0x0a, 0x01};
	Ombra__V1__MetaCommand m = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdAddRegion ar = OMBRA__V1__CMD_ADD_REGION__INIT;
	struct raft_buffer buf = {NULL, 0};
	uint8_t packed[64];
	size_t len;

	(void)state;
	assert_null(cmd_decode(NULL, 0));
	assert_null(cmd_decode(garbage, 0));
	assert_null(cmd_decode(garbage, sizeof(garbage)));
	assert_null(cmd_decode(truncated, sizeof(truncated)));

	/* A well-formed message that carries no command is refused. */
	m.request_id = "only-an-id";
	m.time_unix_ms = 12;
	len = ombra__v1__meta_command__pack(&m, packed);
	assert_true(len > 0);
	assert_null(cmd_decode(packed, len));
	assert_int_equal(cmd_encode(&m, &buf), OMBRA_EINVAL);
	assert_null(buf.base);
	assert_string_equal(cmd_kind(&m), "none");
	assert_string_equal(cmd_kind(NULL), "none");

	/* Every strict prefix of a valid encoding is either refused or a
	 * shorter valid message; none crashes. */
	ar.name = "region-with-a-long-enough-name";
	m.cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_REGION;
	m.add_region = &ar;
	len = ombra__v1__meta_command__pack(&m, packed);
	for (size_t i = 1; i < len; i++) {
		Ombra__V1__MetaCommand *d = cmd_decode(packed, i);

		if (d != NULL) {
			assert_int_equal(
			    d->cmd_case,
			    OMBRA__V1__META_COMMAND__CMD_ADD_REGION);
			ombra__v1__meta_command__free_unpacked(d, NULL);
		}
	}
}

static void test_validate_name(void **state)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	char long_name[80];

	(void)state;
	assert_int_equal(cmd_validate_name("volume", "db-01.data_x", errmsg),
			 0);
	assert_int_equal(cmd_validate_name("volume", "_a", errmsg), 0);
	assert_int_equal(cmd_validate_name("volume", "", errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "volume name is empty"));
	assert_int_equal(cmd_validate_name("volume", NULL, errmsg),
			 OMBRA_EINVAL);
	assert_int_equal(cmd_validate_name("region", "a b", errmsg),
			 OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "region name 'a b' contains ' ' at "
				       "position 1"));
	assert_int_equal(cmd_validate_name("node", "x\001", errmsg),
			 OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "byte 0x01"));
	assert_int_equal(cmd_validate_name("volume", ".hidden", errmsg),
			 OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "starts with '.'"));
	assert_int_equal(cmd_validate_name("volume", "-x", errmsg),
			 OMBRA_EINVAL);
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_int_equal(cmd_validate_name("volume", long_name, errmsg), 0);
	long_name[64] = 'b';
	long_name[65] = '\0';
	assert_int_equal(cmd_validate_name("volume", long_name, errmsg),
			 OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "longer than 64"));
	/* NULL errmsg: only the code. */
	assert_int_equal(cmd_validate_name("volume", "", NULL), OMBRA_EINVAL);
}

static void test_validate_create_volume(void **state)
{
	Ombra__V1__CmdCreateVolume c = OMBRA__V1__CMD_CREATE_VOLUME__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	c.name = "v1";
	c.home_region = "r1";
	c.size_bytes = 1ull << 30;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), 0);
	assert_int_equal(c.segment_size_bytes, CMD_SEGMENT_DEFAULT);
	assert_int_equal(c.replicas, CMD_REPLICAS_DEFAULT);

	c.size_bytes = 0;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "volume size is 0 bytes"));

	c.size_bytes = 10000;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "10000 bytes is not a multiple of the "
				       "4096-byte block size; use e.g. 12288"));

	c.size_bytes = 1ull << 30;
	c.segment_size_bytes = 100000;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "segment size 100000 bytes is not a "
				       "power of two"));
	c.segment_size_bytes = 32768; /* power of two, too small */
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), OMBRA_EINVAL);
	c.segment_size_bytes = 8u << 20; /* power of two, too large */
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), OMBRA_EINVAL);
	c.segment_size_bytes = CMD_SEGMENT_MIN;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), 0);
	c.segment_size_bytes = CMD_SEGMENT_MAX;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), 0);

	c.replicas = 6;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "replicas 6 out of range; use 1..5"));
	c.replicas = 5;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), 0);
	c.replicas = 0;
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), 0);
	assert_int_equal(c.replicas, 2);

	c.name = "bad name";
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "volume name 'bad name'"));
	c.name = "v1";
	c.home_region = "";
	assert_int_equal(cmd_validate_create_volume(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "home region name is empty"));
	assert_int_equal(cmd_validate_create_volume(NULL, errmsg),
			 OMBRA_EINVAL);
}

static void test_validate_resize_volume(void **state)
{
	Ombra__V1__CmdResizeVolume c = OMBRA__V1__CMD_RESIZE_VOLUME__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	c.name = "v1";
	c.new_size_bytes = 8192;
	assert_int_equal(cmd_validate_resize_volume(&c, errmsg), 0);
	c.new_size_bytes = 0;
	assert_int_equal(cmd_validate_resize_volume(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "new volume size is 0 bytes"));
	c.new_size_bytes = 4097;
	assert_int_equal(cmd_validate_resize_volume(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "use e.g. 8192"));
	c.new_size_bytes = 4096;
	c.name = "";
	assert_int_equal(cmd_validate_resize_volume(&c, errmsg), OMBRA_EINVAL);
}

static void test_validate_register_node(void **state)
{
	Ombra__V1__CmdRegisterNode c = OMBRA__V1__CMD_REGISTER_NODE__INIT;
	Ombra__V1__Tier t0 = OMBRA__V1__TIER__INIT;
	Ombra__V1__Tier t1 = OMBRA__V1__TIER__INIT;
	Ombra__V1__Tier *tiers[2] = {&t0, &t1};
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	t0.name = "fast";
	t0.capacity_bytes = 1000;
	t1.name = "slow";
	t1.capacity_bytes = 2000;
	c.name = "n1";
	c.region = "r1";
	c.address = "127.0.0.1:7001";
	c.n_tiers = 2;
	c.tiers = tiers;
	assert_int_equal(cmd_validate_register_node(&c, errmsg), 0);
	c.address = "[::1]:7001";
	assert_int_equal(cmd_validate_register_node(&c, errmsg), 0);

	c.address = "";
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "node address is empty"));
	c.address = "localhost";
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "is not host:port"));
	c.address = "h:70000";
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "bad port"));
	c.address = "h:0";
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	c.address = "h:12x";
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	c.address = "h:7001";

	t1.capacity_bytes = 0;
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "tier 'slow' has capacity 0"));
	t1.capacity_bytes = UINT64_MAX;
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "overflows"));
	t1.capacity_bytes = 5;
	t1.name = "fast";
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "listed twice"));
	t1.name = "slow";
	c.n_tiers = 0;
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "has no tiers"));
	c.n_tiers = 2;
	c.region = "r 1";
	assert_int_equal(cmd_validate_register_node(&c, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "region name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_regions_nodes),
	    cmocka_unit_test(test_round_trip_volumes),
	    cmocka_unit_test(test_round_trip_members_placement),
	    cmocka_unit_test(test_replica_change),
	    cmocka_unit_test(test_round_trip_every_kind),
	    cmocka_unit_test(test_decode_malformed),
	    cmocka_unit_test(test_validate_name),
	    cmocka_unit_test(test_validate_create_volume),
	    cmocka_unit_test(test_validate_resize_volume),
	    cmocka_unit_test(test_validate_register_node),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
