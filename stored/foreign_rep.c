/* foreign_rep.c: StoreService.Replicate with shadow = true, the writing
 * proxy's asynchronous propagation of acknowledged writes prev_version ->
 * version to a foreign copy on this node (docs/shadows.md "The watermark
 * and the write chain").
 *
 * Every block's crc is checked first (nothing is applied otherwise).  The
 * blocks are applied if newer (segstore_apply_if_newer, not synced: see
 * docs/stored.md "Foreign copies", durability): all of
 * them for a shadow (a whole-segment copy) or while a pull runs into the
 * copy (the pull may have read the source before this write), else only
 * those present in the cache entry.  Then, on the loop, fc_propagated()
 * drops invalidate_blocks from present and moves the watermark to version
 * iff it was >= prev_version, so a lost or reordered message never makes
 * the copy claim more than it holds.
 *
 * A Replicate for a segment with no foreign copy here is accepted only
 * when the shard map lists this node as one of the segment's shadows (an
 * empty shadow record is created, filled later by foreign_shadow.c;
 * a map older than STORED_MAP_RECHECK_MS is fetched again first);
 * otherwise FAILED_PRECONDITION, and the proxy forgets the target.
 *
 * Failure: INVALID_ARGUMENT (blocks outside the segment, crc mismatch,
 * version <= prev_version, unknown volume, bad size), FAILED_PRECONDITION
 * (no copy here, home copy, stale lease epoch), UNAVAILABLE (starting,
 * metad unreachable), INTERNAL (store). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "foreign.h"
#include "log.h"

struct frep {
	struct stored *sd;
	struct rpc_call *call;
	const Ombra__V1__ReplicateRequest *req;
	uint64_t gen, segsize, version;
	struct segstore_block *blk;
	size_t n_blk, n_applied;
	uint32_t *inval;
	size_t n_inval;
	bool refetched;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void frep_end(struct frep *op)
{
	struct stored *sd = op->sd;

	free(op->blk);
	free(op->inval);
	free(op);
	stored_call_end(sd);
}

static void frep_fail(struct frep *op, grpc_status_code code, const char *fmt,
		      ...) __attribute__((format(printf, 3, 4)));

static void frep_fail(struct frep *op, grpc_status_code code, const char *fmt,
		      ...)
{
	char msg[OMBRA_ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rpc_call_fail(op->call, code, "%s", msg);
	frep_end(op);
}

static void frep_work(void *arg)
{
	struct frep *op = arg;
	const Ombra__V1__ReplicateRequest *q = op->req;
	struct segstore_segment_info info;
	char errmsg[OMBRA_ERRMSG_LEN];

	/* Not synced (fua false), like a home write without FUA: a foreign
	 * copy is soft state, and a synced apply held the segment lock for
	 * an fdatasync, stalling the local reads of the writer. */
	op->rv = segstore_apply_if_newer(
	    op->sd->ss, q->volume_id, (uint32_t)op->segsize, op->blk, op->n_blk,
	    false, &op->n_applied, op->errmsg);
	if (op->rv == 0 &&
	    segstore_segment_info(op->sd->ss, q->volume_id, q->segment_index,
				  &info, NULL, 0, errmsg) == 0) {
		op->version = info.version;
	}
}

static void frep_done(void *arg)
{
	struct frep *op = arg;
	const Ombra__V1__ReplicateRequest *q = op->req;
	Ombra__V1__ReplicateResponse resp = OMBRA__V1__REPLICATE_RESPONSE__INIT;
	struct fcent *e;

	if (op->rv != 0) {
		log_error("Replicate (shadow) volume %llu segment %llu: %s",
			  (unsigned long long)q->volume_id,
			  (unsigned long long)q->segment_index, op->errmsg);
		frep_fail(op, ombra_err_to_grpc(op->rv), "%s", op->errmsg);
		return;
	}
	e = foreign_find(op->sd, q->volume_id, q->segment_index);
	if (e != NULL && e->gen == op->gen) {
		if (!fc_propagated(&e->c, q->prev_version, q->version,
				   op->inval, op->n_inval, q->acked_unix_ms)) {
			log_debug("Replicate (shadow) volume %llu segment "
				  "%llu: %llu -> %llu leaves watermark %llu",
				  (unsigned long long)q->volume_id,
				  (unsigned long long)q->segment_index,
				  (unsigned long long)q->prev_version,
				  (unsigned long long)q->version,
				  (unsigned long long)e->c.watermark);
		}
		resp.watermark = e->c.watermark;
		if (e->c.kind == FC_CACHE && e->c.n_present == 0 &&
		    e->pulls == 0) {
			foreign_remove(op->sd, e); /* all invalidated */
		}
	}
	resp.applied_version = op->version;
	resp.applied_blocks = (uint32_t)op->n_applied;
	metric_inc(op->sd->m.bytes_written,
		   (double)op->n_applied * SEGSTORE_BLOCK_SIZE);
	rpc_call_reply(op->call, &resp.base);
	frep_end(op);
}

/* Keep the blocks the copy must apply (see the header); 0 or EINVAL. */
static int frep_prepare(struct frep *op, const struct fcent *e, uint64_t first,
			uint64_t end)
{
	const Ombra__V1__ReplicateRequest *q = op->req;
	bool all = e->c.kind == FC_SHADOW || e->pulls > 0;

	op->blk = calloc(q->n_blocks + 1, sizeof(*op->blk));
	op->inval = calloc(q->n_invalidate_blocks + 1, sizeof(*op->inval));
	if (op->blk == NULL || op->inval == NULL) {
		ombra_errmsg_printf(op->errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	if (replicate_blocks_check(q, first, end, op->blk, op->errmsg) != 0) {
		return OMBRA_EINVAL;
	}
	for (size_t i = 0; i < q->n_blocks; i++) {
		if (all ||
		    fc_present(&e->c, (uint32_t)(op->blk[i].block - first))) {
			op->blk[op->n_blk++] = op->blk[i];
		}
	}
	for (size_t i = 0; i < q->n_invalidate_blocks; i++) {
		uint64_t b = q->invalidate_blocks[i];

		if (b < first || b >= end) {
			ombra_errmsg_printf(
			    op->errmsg,
			    "invalidate_blocks %llu is outside "
			    "segment %llu (blocks %llu..%llu)",
			    (unsigned long long)b,
			    (unsigned long long)q->segment_index,
			    (unsigned long long)first,
			    (unsigned long long)(end - 1));
			return OMBRA_EINVAL;
		}
		op->inval[op->n_inval++] = (uint32_t)(b - first);
	}
	return 0;
}

static void frep_mapped(void *arg, int rv)
{
	struct frep *op = arg;
	struct stored *sd = op->sd;
	const Ombra__V1__ReplicateRequest *q = op->req;
	struct sm_volume *v = sm_find(&sd->maps, q->volume_id);
	uint32_t n_blocks;
	uint64_t first, epoch;
	struct fcent *e;

	if (v == NULL && rv != 0 && rv != OMBRA_ENOTFOUND) {
		frep_fail(op, GRPC_STATUS_UNAVAILABLE,
			  "cannot fetch the volume's shard map from metad");
		return;
	}
	if (v == NULL) {
		frep_fail(op, GRPC_STATUS_INVALID_ARGUMENT,
			  "volume %llu does not exist",
			  (unsigned long long)q->volume_id);
		return;
	}
	n_blocks = foreign_seg_blocks(v, q->segment_index);
	if (n_blocks == 0 && !op->refetched) {
		op->refetched = true;
		maps_need(sd, q->volume_id, q->segment_index, MAPS_REFETCH,
			  frep_mapped, op);
		return;
	}
	if (n_blocks == 0 || n_blocks > FC_MAX_BLOCKS ||
	    (q->segment_size_bytes != 0 &&
	     q->segment_size_bytes != v->segsize)) {
		frep_fail(op, GRPC_STATUS_INVALID_ARGUMENT,
			  "segment %llu / size %llu do not match volume %s "
			  "(%llu segments of %llu bytes)",
			  (unsigned long long)q->segment_index,
			  (unsigned long long)q->segment_size_bytes, v->name,
			  (unsigned long long)v->n_segs,
			  (unsigned long long)v->segsize);
		return;
	}
	epoch = v->segs[q->segment_index].epoch;
	if (q->lease_epoch != 0 && q->lease_epoch < epoch) {
		frep_fail(op, GRPC_STATUS_FAILED_PRECONDITION,
			  "stale lease epoch %llu, current %llu",
			  (unsigned long long)q->lease_epoch,
			  (unsigned long long)epoch);
		return;
	}
	if (foreign_is_home(&v->segs[q->segment_index], sd->node_id)) {
		frep_fail(op, GRPC_STATUS_FAILED_PRECONDITION,
			  "node %llu holds a home copy of segment %llu of "
			  "volume %s, not a foreign one",
			  (unsigned long long)sd->node_id,
			  (unsigned long long)q->segment_index, v->name);
		return;
	}
	e = foreign_find(sd, q->volume_id, q->segment_index);
	if (e == NULL &&
	    sm_seg_has_shadow(&v->segs[q->segment_index], sd->node_id)) {
		e = foreign_get(sd, q->volume_id, q->segment_index, FC_SHADOW,
				n_blocks);
		if (e == NULL) {
			frep_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED,
				  "out of memory");
			return;
		}
	}
	if (e == NULL && !op->refetched && maps_may_lag(sd, v)) {
		/* The shadow may have been placed since our fetch. */
		op->refetched = true;
		maps_need(sd, q->volume_id, q->segment_index, MAPS_REFETCH,
			  frep_mapped, op);
		return;
	}
	if (e == NULL) {
		frep_fail(op, GRPC_STATUS_FAILED_PRECONDITION,
			  "node %llu holds no foreign copy of segment %llu of "
			  "volume %s (dropped or never pulled)",
			  (unsigned long long)sd->node_id,
			  (unsigned long long)q->segment_index, v->name);
		return;
	}
	op->gen = e->gen;
	op->segsize = v->segsize;
	first = q->segment_index * (v->segsize / SEGSTORE_BLOCK_SIZE);
	rv = frep_prepare(op, e, first, first + n_blocks);
	if (rv != 0) {
		frep_fail(op, ombra_err_to_grpc(rv), "%s", op->errmsg);
		return;
	}
	if (op->n_blk == 0) {
		frep_done(op);
		return;
	}
	if (foreign_apply(sd, q->volume_id, q->segment_index, frep_work,
			  frep_done, op) != 0) {
		frep_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
}

void svc_replicate_shadow(struct rpc_call *call, const ProtobufCMessage *req,
			  void *data)
{
	const Ombra__V1__ReplicateRequest *q =
	    (const Ombra__V1__ReplicateRequest *)req;
	struct stored *sd = data;
	struct frep *op;

	if (sd->stopping || !sd->serving) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "%s",
			      sd->stopping ? "shutting down" : "starting");
		return;
	}
	if (q->volume_id == 0 || q->version == 0 ||
	    q->version <= q->prev_version) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "Replicate shadow: volume_id and version are "
			      "required, version %llu must be above "
			      "prev_version %llu",
			      (unsigned long long)q->version,
			      (unsigned long long)q->prev_version);
		return;
	}
	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	stored_call_begin(sd);
	op->sd = sd;
	op->call = call;
	op->req = q;
	maps_need(sd, q->volume_id, q->segment_index, 0, frep_mapped, op);
}
