/* wrepl.c: the second half of a write at the primary: Replicate the
 * written blocks (with their crc) to every in-sync replica and to a
 * replica being re-synced, in parallel with a 2 s timeout; then, one by
 * one, ReportReplicaFailure to metad for each in-sync replica that failed,
 * and acknowledge only when metad accepted every report (RPO 0: an
 * acknowledged write is on every copy metad still calls in-sync).
 *
 * Failure: a re-sync target that fails only marks the re-sync as
 * incomplete; a report metad refuses or cannot receive fails the write
 * (FAILED_PRECONDITION when metad says this node is no longer the primary
 * or its epoch is stale, UNAVAILABLE otherwise). */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "err.h"
#include "log.h"
#include "wop.h"

/* ------------------------------------------------ metad reports */

struct report {
	struct wop *op;
	uint64_t node;
	const char *why; /* the replica's failure (its target's msg) */
	Ombra__V1__ReplicaReportResponse *resp;
	int rv;
	grpc_status_code code;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void report_work(void *arg)
{
	struct report *rp = arg;
	struct wop *op = rp->op;
	struct stored *sd = op->sd;
	Ombra__V1__ReplicaReportRequest req =
	    OMBRA__V1__REPLICA_REPORT_REQUEST__INIT;
	struct rpc_status st;
	char rid[64];

	req.volume_id = op->vol;
	req.segment_index = op->seg;
	req.node_id = rp->node;
	req.lease_epoch = op->epoch;
	req.primary_node_id = sd->node_id;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;
	rp->rv = meta_call(
	    &sd->meta_report, &ombra__v1__meta_service__descriptor,
	    "ReportReplicaFailure", &req.base, (ProtobufCMessage **)&rp->resp,
	    STORED_META_TIMEOUT_MS, &st);
	rp->code = st.code;
	if (rp->rv != 0) {
		ombra_errmsg_printf(rp->errmsg, "%s: %s",
				    rpc_status_name(st.code), st.message);
	}
}

static void report_next(struct wop *op);

/* node is an in-sync copy of op's segment in the current map. */
static bool now_in_sync(struct wop *op, uint64_t node)
{
	struct sm_volume *v = sm_find(&op->sd->maps, op->vol);

	return v != NULL && op->seg < v->n_segs &&
	       sm_seg_in_sync(&v->segs[op->seg], node);
}

/* Apply a placement metad returned to the cached map. */
static void apply_placement(struct stored *sd, uint64_t vol,
			    const Ombra__V1__SegmentPlacement *p)
{
	struct sm_volume *v = sm_find(&sd->maps, vol);
	char errmsg[OMBRA_ERRMSG_LEN];

	if (v != NULL && p != NULL &&
	    sm_volume_set_segment(v, p, errmsg) != 0) {
		log_warn("volume %llu: placement from metad: %s",
			 (unsigned long long)vol, errmsg);
	}
}

static void report_done(void *arg)
{
	struct report *rp = arg;
	struct wop *op = rp->op;
	struct stored *sd = op->sd;

	if (rp->rv != 0) {
		log_error("volume %llu segment %llu: replica %llu failed and "
			  "metad could not be told: %s; write not "
			  "acknowledged",
			  (unsigned long long)op->vol,
			  (unsigned long long)op->seg,
			  (unsigned long long)rp->node, rp->errmsg);
		wop_fail(op,
			 rp->code == GRPC_STATUS_FAILED_PRECONDITION
			     ? GRPC_STATUS_FAILED_PRECONDITION
			     : GRPC_STATUS_UNAVAILABLE,
			 "replica %llu of segment %llu failed (%s) and metad "
			 "could not remove it from the in-sync set: %s",
			 (unsigned long long)rp->node,
			 (unsigned long long)op->seg, rp->why, rp->errmsg);
		wop_phase_done(op);
	} else {
		log_warn("volume %llu segment %llu: replica %llu failed; "
			 "metad removed it from the in-sync set",
			 (unsigned long long)op->vol,
			 (unsigned long long)op->seg,
			 (unsigned long long)rp->node);
		metric_inc(sd->m.replica_failures, 1.0);
		apply_placement(sd, op->vol, rp->resp->placement);
		report_next(op);
	}
	if (rp->resp != NULL) {
		protobuf_c_message_free_unpacked(&rp->resp->base, NULL);
	}
	free(rp);
}

/* Report the next failed in-sync replica, or acknowledge. */
static void report_next(struct wop *op)
{
	struct report *rp;

	while (op->report_i < op->n_t) {
		struct target *t = &op->t[op->report_i++];

		if (t->code == GRPC_STATUS_OK) {
			continue;
		}
		if (!t->in_sync) {
			/* A re-sync target: best effort, but the re-sync
			 * must not declare it in sync now, and if it became
			 * in-sync meanwhile it must be reported. */
			op->ss->forward_failed = true;
			if (!now_in_sync(op, t->node)) {
				continue;
			}
		}
		if (op->sd->stopping) {
			wop_fail(op, GRPC_STATUS_UNAVAILABLE, "shutting down");
			wop_phase_done(op);
			return;
		}
		rp = calloc(1, sizeof(*rp));
		if (rp == NULL) {
			wop_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED,
				 "out of memory");
			wop_phase_done(op);
			return;
		}
		rp->op = op;
		rp->node = t->node;
		rp->why = t->msg;
		if (work_submit(op->sd, report_work, report_done, rp) != 0) {
			free(rp);
			wop_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED,
				 "out of memory");
			wop_phase_done(op);
		}
		return;
	}
	wop_phase_done(op);
}

/* ------------------------------------------------ replication */

static void replicate_cb(void *data, const struct rpc_status *st,
			 const ProtobufCMessage *resp)
{
	struct target *t = data;
	struct wop *op = t->op;

	(void)resp;
	t->code = st->code;
	peer_failed(op->sd, t->node, st->code);
	if (st->code != GRPC_STATUS_OK) {
		snprintf(t->msg, sizeof(t->msg), "%s", st->message);
		log_warn("volume %llu segment %llu: Replicate to node %llu%s: "
			 "%s: %s",
			 (unsigned long long)op->vol,
			 (unsigned long long)op->seg,
			 (unsigned long long)t->node,
			 t->in_sync ? "" : " (re-sync target)",
			 rpc_status_name(st->code), st->message);
	}
	if (--op->outstanding == 0) {
		report_next(op);
	}
}

static int build_blocks(struct wop *op)
{
	size_t n = op->r.n_blocks;

	op->blocks = calloc(n, sizeof(*op->blocks));
	op->bptr = calloc(n, sizeof(*op->bptr));
	if (op->blocks == NULL || op->bptr == NULL) {
		return OMBRA_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		Ombra__V1__BlockData *b = &op->blocks[i];
		const void *data =
		    op->trim ? NULL : op->buf + i * SEGSTORE_BLOCK_SIZE;

		ombra__v1__block_data__init(b);
		b->block_index = op->r.first_block + i;
		b->version = op->version;
		b->crc32c =
		    crc_block(data, op->vol, b->block_index, op->version);
		if (data != NULL) {
			b->data.data = (uint8_t *)data;
			b->data.len = SEGSTORE_BLOCK_SIZE;
		}
		op->bptr[i] = b;
	}
	return 0;
}

static void add_target(struct wop *op, uint64_t node, bool in_sync)
{
	for (size_t i = 0; i < op->n_t; i++) {
		if (op->t[i].node == node) {
			return;
		}
	}
	if (node == op->sd->node_id || node == 0 ||
	    op->n_t == sizeof(op->t) / sizeof(op->t[0])) {
		return;
	}
	op->t[op->n_t++] =
	    (struct target){.op = op, .node = node, .in_sync = in_sync};
}

void wop_replicate(struct wop *op)
{
	struct stored *sd = op->sd;
	struct sm_volume *v = sm_find(&sd->maps, op->vol);
	Ombra__V1__ReplicateRequest rr = OMBRA__V1__REPLICATE_REQUEST__INIT;
	const struct sm_seg *p;

	if (v == NULL || op->seg >= v->n_segs) {
		wop_fail(op, GRPC_STATUS_UNAVAILABLE,
			 "volume %llu vanished from the shard map "
			 "during the write",
			 (unsigned long long)op->vol);
		wop_phase_done(op);
		return;
	}
	p = &v->segs[op->seg];
	for (unsigned i = 0; i < p->n_rep; i++) {
		add_target(op, p->rep[i], true);
	}
	if (op->ss->forward_node != 0) {
		add_target(op, op->ss->forward_node, false);
	}
	if (op->n_t == 0) {
		wop_phase_done(op);
		return;
	}
	if (build_blocks(op) != 0) {
		wop_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		wop_phase_done(op);
		return;
	}
	rr.volume_id = op->vol;
	rr.segment_index = op->seg;
	rr.lease_epoch = op->epoch;
	rr.segment_size_bytes = op->segsize;
	rr.primary_node_id = sd->node_id;
	rr.blocks = op->bptr;
	rr.n_blocks = op->r.n_blocks;
	op->outstanding = 1; /* held until every call is started */
	for (size_t i = 0; i < op->n_t; i++) {
		struct target *t = &op->t[i];
		const char *addr = stored_node_address(sd, t->node);
		struct rpc_channel *ch;
		char errmsg[OMBRA_ERRMSG_LEN];

		rr.resync = !t->in_sync;
		ch = addr != NULL ? peer_channel(sd, addr, errmsg) : NULL;
		if (addr == NULL) {
			ombra_errmsg_printf(errmsg, "address unknown");
		}
		if (ch == NULL ||
		    rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
				      "Replicate", &rr.base,
				      STORED_REPLICATE_TIMEOUT_MS, replicate_cb,
				      t, NULL) != 0) {
			t->code = GRPC_STATUS_UNAVAILABLE;
			snprintf(t->msg, sizeof(t->msg), "%s",
				 ch == NULL ? errmsg : "call not started");
			continue;
		}
		op->outstanding++;
	}
	if (--op->outstanding == 0) {
		report_next(op);
	}
}
