/* test_pbjson.c: pbjson on real generated Ombra messages (nested, repeated,
 * enums, oneofs, bytes, 64-bit values, unset sub-messages, defaults) and on
 * a hand-built descriptor covering the scalar types our protos do not use
 * (float, double, sint32, sfixed64, repeated strings and bools).  The JSON
 * text is parsed back with json_tokener and checked field by field.
 * Fails (cmocka) on the first field that differs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "common.pb-c.h"
#include "meta.pb-c.h"
#include "pbjson.h"
#include "store.pb-c.h"

/* ----------------------------------------------------------- helpers */

/* Render msg to text and parse it back, as a script reading --json would. */
static struct json_object *round_trip(const ProtobufCMessage *msg)
{
	char *text = pbjson_to_string(msg);
	struct json_object *obj;

	assert_non_null(text);
	obj = json_tokener_parse(text);
	if (obj == NULL) {
		fail_msg("pbjson output is not JSON:\n%s", text);
	}
	free(text);
	return obj;
}

static struct json_object *get(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v)) {
		fail_msg("key \"%s\" missing in %s", key,
			 json_object_to_json_string(obj));
	}
	return v;
}

static void assert_absent(struct json_object *obj, const char *key)
{
	assert_false(json_object_object_get_ex(obj, key, NULL));
}

static void assert_str(struct json_object *obj, const char *key,
		       const char *want)
{
	struct json_object *v = get(obj, key);

	assert_true(json_object_is_type(v, json_type_string));
	assert_string_equal(json_object_get_string(v), want);
}

static void assert_u64(struct json_object *obj, const char *key, uint64_t want)
{
	struct json_object *v = get(obj, key);

	assert_true(json_object_is_type(v, json_type_int));
	assert_true(json_object_get_uint64(v) == want);
}

static void assert_i64(struct json_object *obj, const char *key, int64_t want)
{
	struct json_object *v = get(obj, key);

	assert_true(json_object_is_type(v, json_type_int));
	assert_true(json_object_get_int64(v) == want);
}

static void assert_bool(struct json_object *obj, const char *key, int want)
{
	struct json_object *v = get(obj, key);

	assert_true(json_object_is_type(v, json_type_boolean));
	assert_int_equal(json_object_get_boolean(v), want);
}

static struct json_object *get_array(struct json_object *obj, const char *key,
				     size_t want_len)
{
	struct json_object *v = get(obj, key);

	assert_true(json_object_is_type(v, json_type_array));
	assert_int_equal(json_object_array_length(v), want_len);
	return v;
}

/* --------------------------------------------- real generated messages */

static void test_cluster_status(void **state)
{
	Ombra__V1__GetClusterStatusResponse resp =
	    OMBRA__V1__GET_CLUSTER_STATUS_RESPONSE__INIT;
	Ombra__V1__MetadMember m1 = OMBRA__V1__METAD_MEMBER__INIT;
	Ombra__V1__MetadMember m2 = OMBRA__V1__METAD_MEMBER__INIT;
	Ombra__V1__MetadMember *members[] = {&m1, &m2};
	Ombra__V1__GetClusterStatusResponse *decoded;
	struct json_object *obj, *arr, *e;
	uint8_t *wire;
	size_t len;

	(void)state;
	m1.id = 1;
	m1.raft_address = "127.0.0.1:7001";
	m1.grpc_address = "127.0.0.1:8001";
	m1.role = "voter";
	m1.match_index = 41;
	m2.id = 2;
	m2.raft_address = "127.0.0.1:7002";
	m2.grpc_address = "127.0.0.1:8002";
	m2.role = "standby";
	resp.member_id = 1;
	resp.state = "leader";
	resp.term = 3;
	resp.leader_id = 1;
	resp.leader_address = "127.0.0.1:8001";
	resp.commit_index = UINT64_MAX; /* beyond int64 and double */
	resp.applied_index = (UINT64_C(1) << 53) + 1;
	resp.last_log_index = 42;
	resp.n_members = 2;
	resp.members = members;
	resp.region_count = 2;
	resp.node_count = 4;
	resp.volume_count = UINT32_MAX;
	resp.state_hash = "e3b0c44298fc1c149afbf4c8996fb924";
	resp.version = "ombra 0.1.0 \"dev\"\n";

	/* Go through the wire so the message is a decoded one. */
	len = ombra__v1__get_cluster_status_response__get_packed_size(&resp);
	wire = malloc(len);
	assert_non_null(wire);
	ombra__v1__get_cluster_status_response__pack(&resp, wire);
	decoded =
	    ombra__v1__get_cluster_status_response__unpack(NULL, len, wire);
	free(wire);
	assert_non_null(decoded);

	obj = round_trip(&decoded->base);
	ombra__v1__get_cluster_status_response__free_unpacked(decoded, NULL);

	assert_int_equal(json_object_object_length(obj), 16);
	assert_u64(obj, "member_id", 1);
	assert_str(obj, "state", "leader");
	assert_u64(obj, "term", 3);
	assert_u64(obj, "leader_id", 1);
	assert_str(obj, "leader_address", "127.0.0.1:8001");
	assert_u64(obj, "commit_index", UINT64_MAX);
	assert_u64(obj, "applied_index", (UINT64_C(1) << 53) + 1);
	assert_u64(obj, "last_log_index", 42);
	assert_u64(obj, "region_count", 2);
	assert_u64(obj, "node_count", 4);
	assert_u64(obj, "volume_count", UINT32_MAX);
	assert_str(obj, "state_hash", "e3b0c44298fc1c149afbf4c8996fb924");
	assert_u64(obj, "snapshots_taken", 0);
	assert_u64(obj, "snapshots_restored", 0);
	assert_str(obj, "version", "ombra 0.1.0 \"dev\"\n");
	assert_absent(obj, "memberId"); /* proto names, not lowerCamel */

	arr = get_array(obj, "members", 2);
	e = json_object_array_get_idx(arr, 0);
	assert_int_equal(json_object_object_length(e), 5);
	assert_u64(e, "id", 1);
	assert_str(e, "raft_address", "127.0.0.1:7001");
	assert_str(e, "grpc_address", "127.0.0.1:8001");
	assert_str(e, "role", "voter");
	assert_u64(e, "match_index", 41);
	e = json_object_array_get_idx(arr, 1);
	assert_u64(e, "id", 2);
	assert_str(e, "role", "standby");
	assert_u64(e, "match_index", 0);
	json_object_put(obj);
}

static void test_volume_enum(void **state)
{
	Ombra__V1__Volume vol = OMBRA__V1__VOLUME__INIT;
	struct json_object *obj;

	(void)state;
	vol.id = 7;
	vol.name = "db0";
	vol.size_bytes = UINT64_C(10) << 30;
	vol.segment_size_bytes = 1 << 20;
	vol.block_size_bytes = 4096;
	vol.home_region = "eu";
	vol.replicas = 2;
	vol.state = OMBRA__V1__VOLUME_STATE__VOLUME_ACTIVE;
	vol.created_unix_ms = UINT64_C(1795000000000);
	vol.modified_index = 12;
	vol.segment_count = 10240;

	obj = round_trip(&vol.base);
	/* 11 scalars plus shadow_policy, writer and writer_epoch. */
	assert_int_equal(json_object_object_length(obj), 14);
	assert_u64(obj, "id", 7);
	assert_str(obj, "name", "db0");
	assert_u64(obj, "size_bytes", UINT64_C(10737418240));
	assert_u64(obj, "segment_size_bytes", 1048576);
	assert_u64(obj, "block_size_bytes", 4096);
	assert_str(obj, "home_region", "eu");
	assert_u64(obj, "replicas", 2);
	assert_str(obj, "state", "VOLUME_ACTIVE");
	assert_u64(obj, "created_unix_ms", UINT64_C(1795000000000));
	assert_u64(obj, "modified_index", 12);
	assert_u64(obj, "segment_count", 10240);
	json_object_put(obj);

	/* A value the enum does not know is kept as its number. */
	vol.state = (Ombra__V1__VolumeState)42;
	obj = round_trip(&vol.base);
	assert_i64(obj, "state", 42);
	json_object_put(obj);
}

static void test_defaults_emitted(void **state)
{
	Ombra__V1__Volume vol = OMBRA__V1__VOLUME__INIT;
	Ombra__V1__AddRegionResponse add = OMBRA__V1__ADD_REGION_RESPONSE__INIT;
	Ombra__V1__SegmentPlacement sp = OMBRA__V1__SEGMENT_PLACEMENT__INIT;
	struct json_object *obj;

	(void)state;
	obj = round_trip(&vol.base);
	assert_int_equal(json_object_object_length(obj), 14);
	assert_u64(obj, "id", 0);
	assert_str(obj, "writer", "");
	assert_u64(obj, "writer_epoch", 0);
	assert_str(obj, "name", "");
	assert_str(obj, "state", "VOLUME_STATE_UNSPECIFIED");
	json_object_put(obj);

	/* An unset sub-message is null; the key is still there. */
	obj = round_trip(&add.base);
	assert_true(json_object_is_type(get(obj, "region"), json_type_null));
	json_object_put(obj);

	/* Empty repeated fields are empty arrays. */
	obj = round_trip(&sp.base);
	get_array(obj, "replica_node_ids", 0);
	get_array(obj, "shadows", 0);
	assert_bool(obj, "exception", 0);
	json_object_put(obj);
}

static void test_repeated_scalars_and_messages(void **state)
{
	Ombra__V1__SegmentPlacement sp = OMBRA__V1__SEGMENT_PLACEMENT__INIT;
	Ombra__V1__ShadowCopy sh = OMBRA__V1__SHADOW_COPY__INIT;
	Ombra__V1__ShadowCopy *shadows[] = {&sh};
	uint64_t replicas[] = {4, 5, UINT64_MAX};
	struct json_object *obj, *arr, *e;

	(void)state;
	sp.index = 9;
	sp.primary_node_id = 3;
	sp.n_replica_node_ids = 3;
	sp.replica_node_ids = replicas;
	sh.node_id = 8;
	sh.region = "us";
	sh.version = (UINT64_C(5) << 40) | 17;
	sp.n_shadows = 1;
	sp.shadows = shadows;
	sp.exception = 1;
	sp.tier = "fast";

	obj = round_trip(&sp.base);
	assert_u64(obj, "index", 9);
	assert_u64(obj, "primary_node_id", 3);
	arr = get_array(obj, "replica_node_ids", 3);
	assert_true(json_object_get_uint64(json_object_array_get_idx(arr, 0)) ==
		    4);
	assert_true(json_object_get_uint64(json_object_array_get_idx(arr, 1)) ==
		    5);
	assert_true(json_object_get_uint64(json_object_array_get_idx(arr, 2)) ==
		    UINT64_MAX);
	arr = get_array(obj, "shadows", 1);
	e = json_object_array_get_idx(arr, 0);
	assert_u64(e, "node_id", 8);
	assert_str(e, "region", "us");
	assert_u64(e, "version", (UINT64_C(5) << 40) | 17);
	assert_bool(obj, "exception", 1);
	assert_str(obj, "tier", "fast");
	json_object_put(obj);
}

static void test_oneof_only_set_member(void **state)
{
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdCreateVolume cv = OMBRA__V1__CMD_CREATE_VOLUME__INIT;
	Ombra__V1__CmdSetNodeState sn = OMBRA__V1__CMD_SET_NODE_STATE__INIT;
	struct json_object *obj, *sub;

	(void)state;
	cmd.request_id = "req-1";
	cmd.time_unix_ms = 1000;

	/* Nothing set: only the two plain fields. */
	obj = round_trip(&cmd.base);
	assert_int_equal(json_object_object_length(obj), 2);
	assert_str(obj, "request_id", "req-1");
	assert_u64(obj, "time_unix_ms", 1000);
	json_object_put(obj);

	cv.name = "vol";
	cv.size_bytes = 8192;
	cv.home_region = "eu";
	cv.replicas = 3;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_CREATE_VOLUME;
	cmd.create_volume = &cv;
	obj = round_trip(&cmd.base);
	assert_int_equal(json_object_object_length(obj), 3);
	assert_absent(obj, "add_region");
	assert_absent(obj, "set_node_state");
	sub = get(obj, "create_volume");
	assert_str(sub, "name", "vol");
	assert_u64(sub, "size_bytes", 8192);
	assert_u64(sub, "segment_size_bytes", 0);
	assert_str(sub, "home_region", "eu");
	assert_u64(sub, "replicas", 3);
	json_object_put(obj);

	sn.node_id = 6;
	sn.state = OMBRA__V1__NODE_STATE__NODE_DRAINING;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_NODE_STATE;
	cmd.set_node_state = &sn;
	obj = round_trip(&cmd.base);
	assert_int_equal(json_object_object_length(obj), 3);
	assert_absent(obj, "create_volume");
	sub = get(obj, "set_node_state");
	assert_u64(sub, "node_id", 6);
	assert_str(sub, "state", "NODE_DRAINING");
	json_object_put(obj);
}

static void test_bytes_and_int32(void **state)
{
	Ombra__V1__BlockData bd = OMBRA__V1__BLOCK_DATA__INIT;
	Ombra__V1__CommandResult cr = OMBRA__V1__COMMAND_RESULT__INIT;
	static const uint8_t bin[] = {0xff, 0x00, 0xfe, 0x7f};
	static const char *const want[] = {"", "aA==", "aGU=", "aGVs",
					   "aGVsbG8="};
	struct json_object *obj;
	size_t i;

	(void)state;
	bd.block_index = 3;
	bd.crc32c = UINT32_MAX;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		static const uint8_t hello[] = "hello";

		bd.data.len = i == 4 ? 5 : i;
		bd.data.data = (uint8_t *)hello;
		obj = round_trip(&bd.base);
		assert_str(obj, "data", want[i]);
		json_object_put(obj);
	}
	bd.data.len = sizeof(bin);
	bd.data.data = (uint8_t *)bin;
	obj = round_trip(&bd.base);
	assert_str(obj, "data", "/wD+fw==");
	assert_u64(obj, "crc32c", UINT32_MAX);
	assert_u64(obj, "block_index", 3);
	json_object_put(obj);

	cr.code = -5;
	cr.message = "tab\there";
	obj = round_trip(&cr.base);
	assert_i64(obj, "code", -5);
	assert_str(obj, "message", "tab\there");
	json_object_put(obj);
}

static void test_exact_text(void **state)
{
	Ombra__V1__Region region = OMBRA__V1__REGION__INIT;
	char *text;

	(void)state;
	region.name = "eu/west";
	region.created_unix_ms = 5;
	region.node_count = 2;
	text = pbjson_to_string(&region.base);
	assert_non_null(text);
	assert_string_equal(text, "{\n"
				  "  \"name\": \"eu/west\",\n"
				  "  \"created_unix_ms\": 5,\n"
				  "  \"node_count\": 2\n"
				  "}");
	free(text);

	text = pbjson_to_string(NULL);
	assert_string_equal(text, "null");
	free(text);
	assert_null(pbjson_from_message(NULL));
}

/* ---------------------------------------- a hand-built descriptor */

struct scalars {
	ProtobufCMessage base;
	float f;
	double d;
	int32_t s32;
	int64_t sf64;
	int64_t i64;
	size_t n_names;
	char **names;
	size_t n_flags;
	protobuf_c_boolean *flags;
	size_t n_ratios;
	double *ratios;
	size_t n_blobs;
	ProtobufCBinaryData *blobs;
};

#define SCALAR_FIELD(fname, fid, flabel, ftype, qoff, foff)                    \
	{                                                                      \
		fname, fid, flabel, ftype, qoff, foff, NULL, NULL, 0, 0, NULL, \
		    NULL                                                       \
	}

static const ProtobufCFieldDescriptor scalars_fields[] = {
    SCALAR_FIELD("f", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_FLOAT, 0,
		 offsetof(struct scalars, f)),
    SCALAR_FIELD("d", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_DOUBLE, 0,
		 offsetof(struct scalars, d)),
    SCALAR_FIELD("s32", 3, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_SINT32, 0,
		 offsetof(struct scalars, s32)),
    SCALAR_FIELD("sf64", 4, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_SFIXED64, 0,
		 offsetof(struct scalars, sf64)),
    SCALAR_FIELD("i64", 5, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT64, 0,
		 offsetof(struct scalars, i64)),
    SCALAR_FIELD("names", 6, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_STRING,
		 offsetof(struct scalars, n_names),
		 offsetof(struct scalars, names)),
    SCALAR_FIELD("flags", 7, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_BOOL,
		 offsetof(struct scalars, n_flags),
		 offsetof(struct scalars, flags)),
    SCALAR_FIELD("ratios", 8, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_DOUBLE,
		 offsetof(struct scalars, n_ratios),
		 offsetof(struct scalars, ratios)),
    SCALAR_FIELD("blobs", 9, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_BYTES,
		 offsetof(struct scalars, n_blobs),
		 offsetof(struct scalars, blobs)),
};

static const ProtobufCMessageDescriptor scalars_descriptor = {
    .magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
    .name = "test.Scalars",
    .short_name = "Scalars",
    .c_name = "Scalars",
    .package_name = "test",
    .sizeof_message = sizeof(struct scalars),
    .n_fields = sizeof(scalars_fields) / sizeof(scalars_fields[0]),
    .fields = scalars_fields,
};

static void test_other_scalar_types(void **state)
{
	struct scalars s;
	char *names[] = {"a", "b\"c"};
	protobuf_c_boolean flags[] = {1, 0, 1};
	double ratios[] = {NAN, INFINITY, -INFINITY};
	ProtobufCBinaryData blobs[] = {{3, (uint8_t *)"abc"}};
	struct json_object *obj, *arr;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.base.descriptor = &scalars_descriptor;
	s.f = 0.1f;
	s.d = -2.5e300;
	s.s32 = INT32_MIN;
	s.sf64 = INT64_MIN;
	s.i64 = -1;
	s.n_names = 2;
	s.names = names;
	s.n_flags = 3;
	s.flags = flags;
	s.n_ratios = 3;
	s.ratios = ratios;
	s.n_blobs = 1;
	s.blobs = blobs;

	obj = round_trip(&s.base);
	assert_true(json_object_is_type(get(obj, "f"), json_type_double));
	/* Shortest text for the float, so it reads back as 0.1, not
	 * 0.10000000149011612. */
	assert_true(json_object_get_double(get(obj, "f")) == 0.1);
	assert_true(json_object_get_double(get(obj, "d")) == -2.5e300);
	assert_i64(obj, "s32", INT32_MIN);
	assert_i64(obj, "sf64", INT64_MIN);
	assert_i64(obj, "i64", -1);
	arr = get_array(obj, "names", 2);
	assert_string_equal(
	    json_object_get_string(json_object_array_get_idx(arr, 1)), "b\"c");
	arr = get_array(obj, "flags", 3);
	assert_true(json_object_get_boolean(json_object_array_get_idx(arr, 0)));
	assert_false(
	    json_object_get_boolean(json_object_array_get_idx(arr, 1)));
	arr = get_array(obj, "ratios", 3);
	assert_string_equal(
	    json_object_get_string(json_object_array_get_idx(arr, 0)), "NaN");
	assert_string_equal(
	    json_object_get_string(json_object_array_get_idx(arr, 1)),
	    "Infinity");
	assert_string_equal(
	    json_object_get_string(json_object_array_get_idx(arr, 2)),
	    "-Infinity");
	arr = get_array(obj, "blobs", 1);
	assert_string_equal(
	    json_object_get_string(json_object_array_get_idx(arr, 0)), "YWJj");
	json_object_put(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cluster_status),
	    cmocka_unit_test(test_volume_enum),
	    cmocka_unit_test(test_defaults_emitted),
	    cmocka_unit_test(test_repeated_scalars_and_messages),
	    cmocka_unit_test(test_oneof_only_set_member),
	    cmocka_unit_test(test_bytes_and_int32),
	    cmocka_unit_test(test_exact_text),
	    cmocka_unit_test(test_other_scalar_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
