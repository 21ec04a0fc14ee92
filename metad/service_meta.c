/* service_meta.c: MetaService, the API storage nodes call on metad.
 *
 * NodeHeartbeat (leader only): records the node's liveness and usage in
 * the leader's soft state (health.c) and returns the heartbeat interval
 * (node_timeout_ms / 4, so three lost heartbeats are tolerated) and the
 * node's committed state.  Failure: followers answer UNAVAILABLE with the
 * leader's address; an unknown node id is NOT_FOUND ("register it first"). */
#include <stdlib.h>

#include "err.h"
#include "fsm.h"
#include "meta.pb-c.h"
#include "raftnode.h"
#include "service.h"

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
	resp.heartbeat_interval_ms = md->cfg->node_timeout_ms / 4;
	resp.state = node->state;
	rpc_call_reply(call, &resp.base);
	protobuf_c_message_free_unpacked(&node->base, NULL);
}

static const struct service_method meta_methods[] = {
    {.name = "NodeHeartbeat", .fn = handle_node_heartbeat},
};

int service_meta_register(struct metad *md, struct rpc_server *srv,
			  char *errmsg)
{
	return service_register_table(
	    srv, &ombra__v1__meta_service__descriptor, meta_methods,
	    sizeof(meta_methods) / sizeof(meta_methods[0]), md, errmsg);
}
