/* service_vlease.c: MetaService.VolumeLease (the single-writer lease of
 * a volume, for proxies) and AdminService.ListFailovers (the RPO records
 * of region failovers), both served by the leader.
 *
 * VolumeLease: validated (vlease_validate), then proposed as
 * CmdVolumeLease; the state machine decides (fsm_vlease.c) and the answer
 * carries the epoch it granted or renewed and the duration, valid from
 * when the caller SENT the request.  An acquire first waits for a read
 * barrier (everything the previous leaders committed is applied here) and
 * is refused FAILED_PRECONDITION while this member has been leader for
 * less than the longest duration granted to the current writer, if the
 * writer is another holder (DESIGN.md "Leases": a new leader waits one full
 * lease duration before granting a conflicting lease, so a lease granted
 * by the old leader, whose clock may differ from ours, has run out on its
 * holder's clock first).  Renewals and releases are proposed at once.
 *
 * Failure: followers answer UNAVAILABLE with the leader's address; bad
 * input INVALID_ARGUMENT; unknown volume NOT_FOUND; a live lease of
 * another holder, the new-leader wait, a stale epoch FAILED_PRECONDITION
 * (the message names the holder and the remaining ms). */
#include <inttypes.h>
#include <string.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "err.h"
#include "fsm.h"
#include "meta.pb-c.h"
#include "raftnode.h"
#include "service.h"
#include "vlease.h"

/* The command of a request (strings point into r). */
static void vlease_cmd_of(const Ombra__V1__VolumeLeaseRequest *r,
			  Ombra__V1__CmdVolumeLease *c)
{
	ombra__v1__cmd_volume_lease__init(c);
	c->volume = r->volume;
	c->holder = r->holder;
	c->duration_ms = r->duration_ms;
	c->epoch = r->epoch;
	c->release = r->release;
}

static void vlease_written(struct metad *md, struct rpc_call *call,
			   const struct fsm_result *res,
			   const ProtobufCMessage *req)
{
	const Ombra__V1__VolumeLeaseRequest *r =
	    (const Ombra__V1__VolumeLeaseRequest *)req;
	Ombra__V1__VolumeLeaseResponse resp =
	    OMBRA__V1__VOLUME_LEASE_RESPONSE__INIT;

	(void)md;
	resp.epoch = res->object_id;
	resp.duration_ms = r->release		 ? 0
			   : r->duration_ms != 0 ? r->duration_ms
						 : VLEASE_DEFAULT_MS;
	rpc_call_reply(call, &resp.base);
}

static void vlease_propose(struct metad *md, struct rpc_call *call,
			   const Ombra__V1__VolumeLeaseRequest *r)
{
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdVolumeLease c;

	vlease_cmd_of(r, &c);
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_VOLUME_LEASE;
	cmd.volume_lease = &c;
	cmd.request_id = r->request_id;
	service_propose(md, call, &cmd, &r->base, vlease_written);
}

/* After the barrier: the new-leader wait of the header, then propose. */
static void vlease_acquire_ready(struct metad *md, struct rpc_call *call,
				 const ProtobufCMessage *req)
{
	const Ombra__V1__VolumeLeaseRequest *r =
	    (const Ombra__V1__VolumeLeaseRequest *)req;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct vlease_info info;
	uint64_t wait;
	int rv;

	rv = fsm_vlease_get(md->fsm, r->volume, &info, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "%s", errmsg);
		return;
	}
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	wait = vlease_wait_ms(&info, r->holder, raftnode_leader_since(md->rn),
			      uv_now(md->loop));
	if (wait > 0) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			      "volume '%s' is held by '%s' (writer epoch "
			      "%" PRIu64 "); this metad leader is new and "
			      "grants it to another holder only in %" PRIu64
			      " ms (one lease duration after its election)",
			      r->volume, info.writer, info.epoch, wait);
		return;
	}
	vlease_propose(md, call, r);
}

void vlease_handle(struct rpc_call *call, const ProtobufCMessage *req,
		   void *data)
{
	const Ombra__V1__VolumeLeaseRequest *r =
	    (const Ombra__V1__VolumeLeaseRequest *)req;
	struct metad *md = data;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__CmdVolumeLease c;

	if (!raftnode_is_leader(md->rn)) {
		service_fail_not_leader(md, call);
		return;
	}
	vlease_cmd_of(r, &c);
	if (vlease_validate(&c, errmsg) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", errmsg);
		return;
	}
	if (r->epoch == 0 && !r->release)
		service_read(md, call, req, false, vlease_acquire_ready);
	else
		vlease_propose(md, call, r);
}

/* ------------------------------------------------------------ failovers */

static void read_list_failovers(struct metad *md, struct rpc_call *call,
				const ProtobufCMessage *req)
{
	const Ombra__V1__ListFailoversRequest *r =
	    (const Ombra__V1__ListFailoversRequest *)req;
	Ombra__V1__ListFailoversResponse resp =
	    OMBRA__V1__LIST_FAILOVERS_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	rv = fsm_list_failovers(md->fsm, r->volume, &resp.events,
				&resp.n_events, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND, "%s", errmsg);
		return;
	}
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	rpc_call_reply(call, &resp.base);
	fsm_free_list(resp.events, resp.n_events);
}

void vlease_handle_list_failovers(struct rpc_call *call,
				  const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__ListFailoversRequest *r =
	    (const Ombra__V1__ListFailoversRequest *)req;
	char errmsg[OMBRA_ERRMSG_LEN];

	if (r->volume[0] != '\0' &&
	    cmd_validate_name("volume", r->volume, errmsg) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", errmsg);
		return;
	}
	service_read(data, call, req, false, read_list_failovers);
}
