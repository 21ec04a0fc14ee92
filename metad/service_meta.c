/* service_meta.c: MetaService, the API storage nodes call on metad.
 *
 * NodeHeartbeat (leader only): records the node's liveness and usage in
 * the leader's soft state (health.c) and returns the heartbeat interval
 * (node_timeout_ms / 6, at least 100 ms, so several lost heartbeats are
 * tolerated), the node's committed state, its lease (lease_ms =
 * node_timeout_ms: metad marks a node DOWN and promotes its replicas only
 * after that long without a heartbeat) and map_index (fsm_map_index()).
 *
 * ReportReplicaFailure / ReportReplicaSynced (leader only): a segment's
 * primary reports an in-sync replica that failed a write or has re-synced;
 * proposed as CmdReplicaChange (fenced by lease epoch and primary in the
 * state machine, deduplicated by request_id) and answered with the
 * segment's placement after the change.
 *
 * ReportAccessStats (leader only): a proxy's per-segment reads and writes
 * of the last interval in its region, added to the leader's decayed
 * access table (access.h, soft state) that drives the shadow policy
 * (shadowpol_run.c); answered with report_interval_ms.  The region must
 * be registered (NOT_FOUND), at most SHADOWPOL_REPORT_MAX_SEGMENTS
 * segments, volume ids non-zero (INVALID_ARGUMENT).  Volumes and segments
 * are not looked up: unknown ones only take (bounded) table room and are
 * never matched by a policy.
 *
 * Failure: followers answer UNAVAILABLE with the leader's address; bad ids
 * are INVALID_ARGUMENT; unknown node, volume or segment NOT_FOUND; a stale
 * epoch or a reporter that is not the primary FAILED_PRECONDITION. */
#include <inttypes.h>
#include <stdlib.h>

#include "cmd.h"
#include "err.h"
#include "fsm.h"
#include "meta.pb-c.h"
#include "raftnode.h"
#include "service.h"
#include "shadowpol_run.h"

static void handle_node_heartbeat(struct rpc_call *call,
				  const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__NodeHeartbeatRequest *r =
	    (const Ombra__V1__NodeHeartbeatRequest *)req;
	Ombra__V1__NodeHeartbeatResponse resp =
	    OMBRA__V1__NODE_HEARTBEAT_RESPONSE__INIT;
	struct metad *md = data;
	Ombra__V1__Node *node = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	if (!raftnode_is_leader(md->rn)) {
		service_fail_not_leader(md, call);
		return;
	}
	if (r->node_id == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "node_id is required (the id RegisterNode "
			      "returned)");
		return;
	}
	rv = fsm_get_node(md->fsm, r->node_id, &node, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND,
			      "node %llu is not registered; call "
			      "RegisterNode first",
			      (unsigned long long)r->node_id);
		return;
	}
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	rv = health_heartbeat(md->health, r->node_id, r->tiers, r->n_tiers);
	if (rv != 0) {
		protobuf_c_message_free_unpacked(&node->base, NULL);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory recording the heartbeat");
		return;
	}
	resp.heartbeat_interval_ms = md->cfg->node_timeout_ms / 6;
	if (resp.heartbeat_interval_ms < 100)
		resp.heartbeat_interval_ms = 100;
	resp.state = node->state;
	resp.lease_ms = md->cfg->node_timeout_ms;
	resp.map_index = fsm_map_index(md->fsm);
	rpc_call_reply(call, &resp.base);
	protobuf_c_message_free_unpacked(&node->base, NULL);
}

static void replica_report_written(struct metad *md, struct rpc_call *call,
				   const struct fsm_result *res,
				   const ProtobufCMessage *req)
{
	const Ombra__V1__ReplicaReportRequest *r =
	    (const Ombra__V1__ReplicaReportRequest *)req;
	Ombra__V1__ReplicaReportResponse resp =
	    OMBRA__V1__REPLICA_REPORT_RESPONSE__INIT;
	Ombra__V1__GetVolumeShardingInfoResponse map =
	    OMBRA__V1__GET_VOLUME_SHARDING_INFO_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	(void)res;
	rv = fsm_shard_map_by_id(md->fsm, r->volume_id, r->segment_index, 1,
				 &map, errmsg);
	if (rv == 0 && map.n_segments != 1) {
		/* Deleted or shrunk between apply and now. */
		rv = OMBRA_ENOTFOUND;
		ombra_errmsg_printf(errmsg,
				    "segment %" PRIu64 " of volume %" PRIu64
				    " no longer exists",
				    r->segment_index, r->volume_id);
	}
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		fsm_free_shard_map(&map);
		return;
	}
	resp.placement = map.segments[0];
	rpc_call_reply(call, &resp.base);
	fsm_free_shard_map(&map);
}

static void replica_report(struct rpc_call *call, const ProtobufCMessage *req,
			   void *data, bool synced)
{
	const Ombra__V1__ReplicaReportRequest *r =
	    (const Ombra__V1__ReplicaReportRequest *)req;
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdReplicaChange c = OMBRA__V1__CMD_REPLICA_CHANGE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];

	c.volume_id = r->volume_id;
	c.segment_index = r->segment_index;
	c.node_id = r->node_id;
	c.lease_epoch = r->lease_epoch;
	c.primary_node_id = r->primary_node_id;
	c.synced = synced;
	if (cmd_validate_replica_change(&c, errmsg) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", errmsg);
		return;
	}
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_REPLICA_CHANGE;
	cmd.replica_change = &c;
	cmd.request_id = r->request_id;
	service_propose(data, call, &cmd, req, replica_report_written);
}

static void handle_replica_failure(struct rpc_call *call,
				   const ProtobufCMessage *req, void *data)
{
	replica_report(call, req, data, false);
}

static void handle_replica_synced(struct rpc_call *call,
				  const ProtobufCMessage *req, void *data)
{
	replica_report(call, req, data, true);
}

static void handle_report_access(struct rpc_call *call,
				 const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__AccessStatsRequest *r =
	    (const Ombra__V1__AccessStatsRequest *)req;
	Ombra__V1__AccessStatsResponse resp =
	    OMBRA__V1__ACCESS_STATS_RESPONSE__INIT;
	struct metad *md = data;
	Ombra__V1__Region *region = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	size_t i;
	int rv;

	if (!raftnode_is_leader(md->rn)) {
		service_fail_not_leader(md, call);
		return;
	}
	if (cmd_validate_name("region", r->region, errmsg) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "access statistics: %s", errmsg);
		return;
	}
	if (r->n_segments > SHADOWPOL_REPORT_MAX_SEGMENTS) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "access statistics carry %zu segments; at most "
			      "%u per report",
			      r->n_segments, SHADOWPOL_REPORT_MAX_SEGMENTS);
		return;
	}
	for (i = 0; i < r->n_segments; i++) {
		if (r->segments[i]->volume_id == 0) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
				      "access statistics: segment entry %zu "
				      "has volume_id 0",
				      i);
			return;
		}
	}
	rv = fsm_get_region(md->fsm, r->region, &region, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND,
			      "region '%s' does not exist; add it with "
			      "`ombractl region add %s`",
			      r->region, r->region);
		return;
	}
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	protobuf_c_message_free_unpacked(&region->base, NULL);
	rv = shadowpol_run_report(health_shadowpol(md->health), r, errmsg);
	if (rv != 0) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s",
			      errmsg);
		return;
	}
	resp.report_interval_ms = SHADOWPOL_REPORT_INTERVAL_MS;
	rpc_call_reply(call, &resp.base);
}

static const struct service_method meta_methods[] = {
    {.name = "NodeHeartbeat", .fn = handle_node_heartbeat},
    {.name = "ReportReplicaFailure", .fn = handle_replica_failure},
    {.name = "ReportReplicaSynced", .fn = handle_replica_synced},
    {.name = "VolumeLease", .fn = vlease_handle},
    {.name = "ReportAccessStats", .fn = handle_report_access},
};

int service_meta_register(struct metad *md, struct rpc_server *srv,
			  char *errmsg)
{
	return service_register_table(
	    srv, &ombra__v1__meta_service__descriptor, meta_methods,
	    sizeof(meta_methods) / sizeof(meta_methods[0]), md, errmsg);
}
