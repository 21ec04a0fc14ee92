/* service_admin.c: AdminService's handler table and its region, node and
 * volume methods (the cluster-membership methods are in service_cluster.c,
 * Watch in watch.c).
 *
 * Writes: static validation with cmd.h's validators (INVALID_ARGUMENT, no
 * log entry), then a proposal; the answer comes from the applied result:
 * a refusal of the state machine is answered with its status and message,
 * success with the object read back from this (the leader's) state.
 * Reads: allow_stale answers from this member at once; otherwise the
 * leader answers after a read barrier (linearizable).  Failure: every
 * handler answers its call exactly once; followers answer UNAVAILABLE with
 * the leader's address. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "err.h"
#include "fsm.h"
#include "raftnode.h"
#include "service.h"
#include "shadowpol.h"
#include "volume.pb-c.h"

#define SHARD_MAP_DEFAULT 1024u
#define SHARD_MAP_MAX 65536u

static void fail_invalid(struct rpc_call *call, const char *errmsg)
{
	rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", errmsg);
}

/* Answer a missing volume the same way everywhere. */
static void fail_volume(struct metad *md, struct rpc_call *call, int rv,
			const char *name, const char *errmsg)
{
	if (rv == OMBRA_ENOTFOUND) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND,
			      "volume '%s' does not exist", name);
		return;
	}
	service_fail(md, call, rv, errmsg);
}

/* ------------------------------------------------------------ regions */

static void add_region_written(struct metad *md, struct rpc_call *call,
			       const struct fsm_result *res,
			       const ProtobufCMessage *req)
{
	const Ombra__V1__AddRegionRequest *r =
	    (const Ombra__V1__AddRegionRequest *)req;
	Ombra__V1__AddRegionResponse resp =
	    OMBRA__V1__ADD_REGION_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	rv = fsm_get_region(md->fsm, r->name, &resp.region, errmsg);
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	rpc_call_reply(call, &resp.base);
	protobuf_c_message_free_unpacked(&resp.region->base, NULL);
}

static void handle_add_region(struct rpc_call *call,
			      const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__AddRegionRequest *r =
	    (const Ombra__V1__AddRegionRequest *)req;
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdAddRegion c = OMBRA__V1__CMD_ADD_REGION__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	if (cmd_validate_name("region", r->name, errmsg) != 0) {
		fail_invalid(call, errmsg);
		return;
	}
	c.name = r->name;
	cmd.request_id = r->request_id;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_REGION;
	cmd.add_region = &c;
	service_propose(data, call, &cmd, req, add_region_written);
}

static void read_list_regions(struct metad *md, struct rpc_call *call,
			      const ProtobufCMessage *req)
{
	Ombra__V1__ListRegionsResponse resp =
	    OMBRA__V1__LIST_REGIONS_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	rv = fsm_list_regions(md->fsm, &resp.regions, &resp.n_regions, errmsg);
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	rpc_call_reply(call, &resp.base);
	fsm_free_list(resp.regions, resp.n_regions);
}

static void handle_list_regions(struct rpc_call *call,
				const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__ListRegionsRequest *r =
	    (const Ombra__V1__ListRegionsRequest *)req;

	service_read(data, call, req, r->allow_stale, read_list_regions);
}

/* ------------------------------------------------------------ nodes */

static void register_node_written(struct metad *md, struct rpc_call *call,
				  const struct fsm_result *res,
				  const ProtobufCMessage *req)
{
	Ombra__V1__RegisterNodeResponse resp =
	    OMBRA__V1__REGISTER_NODE_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	rv = fsm_get_node(md->fsm, res->object_id, &resp.node, errmsg);
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	health_annotate(md->health, &resp.node, 1);
	rpc_call_reply(call, &resp.base);
	protobuf_c_message_free_unpacked(&resp.node->base, NULL);
}

static void handle_register_node(struct rpc_call *call,
				 const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__RegisterNodeRequest *r =
	    (const Ombra__V1__RegisterNodeRequest *)req;
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdRegisterNode c = OMBRA__V1__CMD_REGISTER_NODE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	c.name = r->name;
	c.region = r->region;
	c.address = r->address;
	c.n_tiers = r->n_tiers;
	c.tiers = r->tiers;
	if (cmd_validate_register_node(&c, errmsg) != 0) {
		fail_invalid(call, errmsg);
		return;
	}
	cmd.request_id = r->request_id;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_REGISTER_NODE;
	cmd.register_node = &c;
	service_propose(data, call, &cmd, req, register_node_written);
}

static void read_list_nodes(struct metad *md, struct rpc_call *call,
			    const ProtobufCMessage *req)
{
	const Ombra__V1__ListNodesRequest *r =
	    (const Ombra__V1__ListNodesRequest *)req;
	Ombra__V1__ListNodesResponse resp =
	    OMBRA__V1__LIST_NODES_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	rv = fsm_list_nodes(md->fsm, r->region, &resp.nodes, &resp.n_nodes,
			    errmsg);
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	health_annotate(md->health, resp.nodes, resp.n_nodes);
	rpc_call_reply(call, &resp.base);
	fsm_free_list(resp.nodes, resp.n_nodes);
}

static void handle_list_nodes(struct rpc_call *call,
			      const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__ListNodesRequest *r =
	    (const Ombra__V1__ListNodesRequest *)req;

	service_read(data, call, req, r->allow_stale, read_list_nodes);
}

/* ------------------------------------------------------------ volumes */

/* Create/Get/ResizeVolumeResponse are all { Volume volume = 1; }: one
 * struct serves the three, with the right descriptor. */
_Static_assert(sizeof(Ombra__V1__GetVolumeResponse) ==
		       sizeof(Ombra__V1__CreateVolumeResponse) &&
		   sizeof(Ombra__V1__GetVolumeResponse) ==
		       sizeof(Ombra__V1__ResizeVolumeResponse) &&
		   offsetof(Ombra__V1__GetVolumeResponse, volume) ==
		       offsetof(Ombra__V1__CreateVolumeResponse, volume) &&
		   offsetof(Ombra__V1__GetVolumeResponse, volume) ==
		       offsetof(Ombra__V1__ResizeVolumeResponse, volume),
	       "volume responses must share a layout");

/* Reply with the volume named name (or with id when non-zero). */
static void reply_volume(struct metad *md, struct rpc_call *call, uint64_t id,
			 const char *name,
			 const ProtobufCMessageDescriptor *desc)
{
	Ombra__V1__GetVolumeResponse resp =
	    OMBRA__V1__GET_VOLUME_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	if (id != 0) {
		rv = fsm_get_volume_by_id(md->fsm, id, &resp.volume, errmsg);
	} else {
		rv = fsm_get_volume(md->fsm, name, &resp.volume, errmsg);
	}
	if (rv != 0) {
		fail_volume(md, call, rv, name, errmsg);
		return;
	}
	resp.base.descriptor = desc;
	rpc_call_reply(call, &resp.base);
	protobuf_c_message_free_unpacked(&resp.volume->base, NULL);
}

static void create_volume_written(struct metad *md, struct rpc_call *call,
				  const struct fsm_result *res,
				  const ProtobufCMessage *req)
{
	const Ombra__V1__CreateVolumeRequest *r =
	    (const Ombra__V1__CreateVolumeRequest *)req;

	reply_volume(md, call, res->object_id, r->name,
		     &ombra__v1__create_volume_response__descriptor);
}

static void handle_create_volume(struct rpc_call *call,
				 const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__CreateVolumeRequest *r =
	    (const Ombra__V1__CreateVolumeRequest *)req;
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdCreateVolume c = OMBRA__V1__CMD_CREATE_VOLUME__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	c.name = r->name;
	c.size_bytes = r->size_bytes;
	c.segment_size_bytes = r->segment_size_bytes;
	c.home_region = r->home_region;
	c.replicas = r->replicas;
	if (cmd_validate_create_volume(&c, errmsg) != 0) {
		fail_invalid(call, errmsg);
		return;
	}
	cmd.request_id = r->request_id;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_CREATE_VOLUME;
	cmd.create_volume = &c;
	service_propose(data, call, &cmd, req, create_volume_written);
}

static void resize_volume_written(struct metad *md, struct rpc_call *call,
				  const struct fsm_result *res,
				  const ProtobufCMessage *req)
{
	const Ombra__V1__ResizeVolumeRequest *r =
	    (const Ombra__V1__ResizeVolumeRequest *)req;

	reply_volume(md, call, 0, r->name,
		     &ombra__v1__resize_volume_response__descriptor);
}

static void handle_resize_volume(struct rpc_call *call,
				 const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__ResizeVolumeRequest *r =
	    (const Ombra__V1__ResizeVolumeRequest *)req;
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdResizeVolume c = OMBRA__V1__CMD_RESIZE_VOLUME__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	c.name = r->name;
	c.new_size_bytes = r->new_size_bytes;
	if (cmd_validate_name("volume", r->name, errmsg) != 0 ||
	    cmd_validate_resize_volume(&c, errmsg) != 0) {
		fail_invalid(call, errmsg);
		return;
	}
	cmd.request_id = r->request_id;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_RESIZE_VOLUME;
	cmd.resize_volume = &c;
	service_propose(data, call, &cmd, req, resize_volume_written);
}

static void delete_volume_written(struct metad *md, struct rpc_call *call,
				  const struct fsm_result *res,
				  const ProtobufCMessage *req)
{
	Ombra__V1__DeleteVolumeResponse resp =
	    OMBRA__V1__DELETE_VOLUME_RESPONSE__INIT;

	rpc_call_reply(call, &resp.base);
}

static void handle_delete_volume(struct rpc_call *call,
				 const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__DeleteVolumeRequest *r =
	    (const Ombra__V1__DeleteVolumeRequest *)req;
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdDeleteVolume c = OMBRA__V1__CMD_DELETE_VOLUME__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	if (cmd_validate_name("volume", r->name, errmsg) != 0) {
		fail_invalid(call, errmsg);
		return;
	}
	c.name = r->name;
	cmd.request_id = r->request_id;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_DELETE_VOLUME;
	cmd.delete_volume = &c;
	service_propose(data, call, &cmd, req, delete_volume_written);
}

static void read_get_volume(struct metad *md, struct rpc_call *call,
			    const ProtobufCMessage *req)
{
	const Ombra__V1__GetVolumeRequest *r =
	    (const Ombra__V1__GetVolumeRequest *)req;

	reply_volume(md, call, 0, r->name,
		     &ombra__v1__get_volume_response__descriptor);
}

static void handle_get_volume(struct rpc_call *call,
			      const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__GetVolumeRequest *r =
	    (const Ombra__V1__GetVolumeRequest *)req;
	char errmsg[OMBRA_ERRMSG_LEN];

	if (cmd_validate_name("volume", r->name, errmsg) != 0) {
		fail_invalid(call, errmsg);
		return;
	}
	service_read(data, call, req, r->allow_stale, read_get_volume);
}

static void read_list_volumes(struct metad *md, struct rpc_call *call,
			      const ProtobufCMessage *req)
{
	const Ombra__V1__ListVolumesRequest *r =
	    (const Ombra__V1__ListVolumesRequest *)req;
	Ombra__V1__ListVolumesResponse resp =
	    OMBRA__V1__LIST_VOLUMES_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	resp.applied_index = fsm_applied_index(md->fsm);
	rv = fsm_list_volumes(md->fsm, r->home_region, &resp.volumes,
			      &resp.n_volumes, errmsg);
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	rpc_call_reply(call, &resp.base);
	fsm_free_list(resp.volumes, resp.n_volumes);
}

static void handle_list_volumes(struct rpc_call *call,
				const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__ListVolumesRequest *r =
	    (const Ombra__V1__ListVolumesRequest *)req;

	service_read(data, call, req, r->allow_stale, read_list_volumes);
}

static void read_shard_map(struct metad *md, struct rpc_call *call,
			   const ProtobufCMessage *req)
{
	const Ombra__V1__GetVolumeShardingInfoRequest *r =
	    (const Ombra__V1__GetVolumeShardingInfoRequest *)req;
	Ombra__V1__GetVolumeShardingInfoResponse resp =
	    OMBRA__V1__GET_VOLUME_SHARDING_INFO_RESPONSE__INIT;
	uint32_t max =
	    r->max_segments != 0 ? r->max_segments : SHARD_MAP_DEFAULT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	if (r->volume_id != 0)
		rv = fsm_shard_map_by_id(md->fsm, r->volume_id,
					 r->first_segment, max, &resp, errmsg);
	else
		rv = fsm_shard_map(md->fsm, r->volume, r->first_segment, max,
				   &resp, errmsg);
	if (rv != 0) {
		fsm_free_shard_map(&resp);
		if (r->volume_id != 0)
			service_fail(md, call, rv, errmsg);
		else
			fail_volume(md, call, rv, r->volume, errmsg);
		return;
	}
	health_annotate(md->health, resp.nodes, resp.n_nodes);
	rpc_call_reply(call, &resp.base);
	fsm_free_shard_map(&resp);
}

/* The volume by id (internal callers: stored, proxies) when volume_id is
 * non-zero, else by name. */
static void handle_get_shard_map(struct rpc_call *call,
				 const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__GetVolumeShardingInfoRequest *r =
	    (const Ombra__V1__GetVolumeShardingInfoRequest *)req;
	char errmsg[OMBRA_ERRMSG_LEN];

	if (r->volume_id == 0 &&
	    cmd_validate_name("volume", r->volume, errmsg) != 0) {
		fail_invalid(call, errmsg);
		return;
	}
	if (r->max_segments > SHARD_MAP_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "max_segments %u is above the limit of %u per "
			      "call; page with first_segment/next_segment",
			      r->max_segments, SHARD_MAP_MAX);
		return;
	}
	service_read(data, call, req, r->allow_stale, read_shard_map);
}

/* ------------------------------------------------------------ policy */

_Static_assert(sizeof(Ombra__V1__GetVolumeResponse) ==
		       sizeof(Ombra__V1__SetShadowPolicyResponse) &&
		   offsetof(Ombra__V1__GetVolumeResponse, volume) ==
		       offsetof(Ombra__V1__SetShadowPolicyResponse, volume),
	       "SetShadowPolicyResponse must share the volume layout");

static void set_shadow_policy_written(struct metad *md, struct rpc_call *call,
				      const struct fsm_result *res,
				      const ProtobufCMessage *req)
{
	const Ombra__V1__SetShadowPolicyRequest *r =
	    (const Ombra__V1__SetShadowPolicyRequest *)req;

	reply_volume(md, call, res->object_id, r->name,
		     &ombra__v1__set_shadow_policy_response__descriptor);
}

/* SetShadowPolicy: static checks here (shadowpol_check), the checks that
 * need the state (regions exist and are not the home region, budget of at
 * least one segment) in the state machine (fsm_shadow.c), both
 * INVALID_ARGUMENT.  An absent policy clears it (and the volume's
 * shadows). */
static void handle_set_shadow_policy(struct rpc_call *call,
				     const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__SetShadowPolicyRequest *r =
	    (const Ombra__V1__SetShadowPolicyRequest *)req;
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdSetShadowPolicy c =
	    OMBRA__V1__CMD_SET_SHADOW_POLICY__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	if (cmd_validate_name("volume", r->name, errmsg) != 0 ||
	    (r->policy != NULL && shadowpol_check(r->policy, errmsg) != 0)) {
		fail_invalid(call, errmsg);
		return;
	}
	c.volume = r->name;
	c.policy = r->policy;
	cmd.request_id = r->request_id;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_SHADOW_POLICY;
	cmd.set_shadow_policy = &c;
	service_propose(data, call, &cmd, req, set_shadow_policy_written);
}

/* ------------------------------------------------------------ table */

static const struct service_method admin_methods[] = {
    {.name = "GetClusterStatus", .fn = cluster_handle_status},
    {.name = "AddRegion", .fn = handle_add_region},
    {.name = "ListRegions", .fn = handle_list_regions},
    {.name = "RegisterNode", .fn = handle_register_node},
    {.name = "ListNodes", .fn = handle_list_nodes},
    {.name = "AddMetadMember", .fn = cluster_handle_add_member},
    {.name = "RemoveMetadMember", .fn = cluster_handle_remove_member},
    {.name = "CreateVolume", .fn = handle_create_volume},
    {.name = "GetVolume", .fn = handle_get_volume},
    {.name = "ListVolumes", .fn = handle_list_volumes},
    {.name = "ResizeVolume", .fn = handle_resize_volume},
    {.name = "DeleteVolume", .fn = handle_delete_volume},
    {.name = "GetShardMap", .fn = handle_get_shard_map},
    {.name = "Watch", .fn = watch_handle},
    {.name = "ListFailovers", .fn = vlease_handle_list_failovers},
    {.name = "SetShadowPolicy", .fn = handle_set_shadow_policy},
};

int service_admin_register(struct metad *md, struct rpc_server *srv,
			   char *errmsg)
{
	return service_register_table(
	    srv, &ombra__v1__admin_service__descriptor, admin_methods,
	    sizeof(admin_methods) / sizeof(admin_methods[0]), md, errmsg);
}
