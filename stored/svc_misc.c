/* svc_misc.c: StoreService.Replicate (replica side), GetSegmentInfo, Flush
 * and Probe, and the service table of ombra-stored.
 *
 * Replicate: each block's crc is verified, blocks must lie inside the
 * named segment, and a lease epoch older than the highest epoch known for
 * the segment (shard map or earlier Replicates) is refused, so a deposed
 * primary cannot overwrite a new one's data.  Blocks are applied only if
 * newer (segstore_apply_if_newer), or with segstore_repair for a re-sync
 * (a returning replica may hold blocks from a write that was never
 * acknowledged, which a repair replaces).
 *
 * Replicate with shadow = true goes to foreign_rep.c (foreign copies).
 *
 * Failure: INVALID_ARGUMENT (bad blocks, crc mismatch: nothing applied),
 * FAILED_PRECONDITION (stale epoch), NOT_FOUND (volume), UNAVAILABLE
 * (starting), INTERNAL (store). */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "err.h"
#include "log.h"
#include "stored.h"

/* ------------------------------------------------ Replicate */

struct rep {
	struct stored *sd;
	struct rpc_call *call;
	const Ombra__V1__ReplicateRequest *req;
	uint64_t segsize;
	struct segstore_block *blk;
	size_t n_applied;
	uint64_t version;
	bool refetched; /* map refetched once for a segment beyond it */
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void rep_end(struct rep *op)
{
	struct stored *sd = op->sd;

	free(op->blk);
	free(op);
	stored_call_end(sd);
}

static void rep_fail(struct rep *op, grpc_status_code code, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

static void rep_fail(struct rep *op, grpc_status_code code, const char *fmt,
		     ...)
{
	char msg[OMBRA_ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rpc_call_fail(op->call, code, "%s", msg);
	rep_end(op);
}

static void rep_work(void *arg)
{
	struct rep *op = arg;
	const Ombra__V1__ReplicateRequest *q = op->req;
	struct segstore_segment_info info;
	char errmsg[OMBRA_ERRMSG_LEN];

	if (q->resync) {
		op->rv = segstore_repair(
		    op->sd->ss, q->volume_id, (uint32_t)op->segsize, op->blk,
		    q->n_blocks, true, &op->n_applied, op->errmsg);
	} else {
		op->rv = segstore_apply_if_newer(
		    op->sd->ss, q->volume_id, (uint32_t)op->segsize, op->blk,
		    q->n_blocks, true, &op->n_applied, op->errmsg);
	}
	if (op->rv == 0 &&
	    segstore_segment_info(op->sd->ss, q->volume_id, q->segment_index,
				  &info, NULL, 0, errmsg) == 0) {
		op->version = info.version;
	}
}

static void rep_done(void *arg)
{
	struct rep *op = arg;
	Ombra__V1__ReplicateResponse resp = OMBRA__V1__REPLICATE_RESPONSE__INIT;

	if (op->rv == OMBRA_EPROTO) {
		rep_fail(op, GRPC_STATUS_INVALID_ARGUMENT, "%s", op->errmsg);
		return;
	}
	if (op->rv != 0) {
		log_error("Replicate volume %llu segment %llu: %s",
			  (unsigned long long)op->req->volume_id,
			  (unsigned long long)op->req->segment_index,
			  op->errmsg);
		rep_fail(op, ombra_err_to_grpc(op->rv), "%s", op->errmsg);
		return;
	}
	resp.applied_version = op->version;
	resp.applied_blocks = (uint32_t)op->n_applied;
	metric_inc(op->sd->m.bytes_written,
		   (double)op->n_applied * SEGSTORE_BLOCK_SIZE);
	rpc_call_reply(op->call, &resp.base);
	rep_end(op);
}

int replicate_blocks_check(const Ombra__V1__ReplicateRequest *q, uint64_t first,
			   uint64_t end, struct segstore_block *out,
			   char *errmsg)
{
	for (size_t i = 0; i < q->n_blocks; i++) {
		const Ombra__V1__BlockData *b = q->blocks[i];

		if (b->block_index < first || b->block_index >= end ||
		    b->version == 0 ||
		    (b->data.len != 0 && b->data.len != SEGSTORE_BLOCK_SIZE)) {
			ombra_errmsg_printf(
			    errmsg,
			    "block %zu (index %llu, version %llu, %zu "
			    "bytes): must lie in segment %llu (blocks "
			    "%llu..%llu), version > 0, 0 or 4096 bytes",
			    i, (unsigned long long)b->block_index,
			    (unsigned long long)b->version, b->data.len,
			    (unsigned long long)q->segment_index,
			    (unsigned long long)first,
			    (unsigned long long)(end - 1));
			return OMBRA_EINVAL;
		}
		if (crc_block(b->data.len != 0 ? b->data.data : NULL,
			      q->volume_id, b->block_index,
			      b->version) != b->crc32c) {
			ombra_errmsg_printf(
			    errmsg,
			    "block %llu: crc32c mismatch (corrupted in "
			    "transit); nothing applied",
			    (unsigned long long)b->block_index);
			return OMBRA_EINVAL;
		}
		out[i] = (struct segstore_block){
		    .block = b->block_index,
		    .version = b->version,
		    .crc = b->crc32c,
		    .data = b->data.len != 0 ? b->data.data : NULL};
	}
	return 0;
}

static void rep_mapped(void *arg, int rv)
{
	struct rep *op = arg;
	struct stored *sd = op->sd;
	const Ombra__V1__ReplicateRequest *q = op->req;
	struct sm_volume *v = sm_find(&sd->maps, q->volume_id);
	struct segstate *ss;
	uint64_t known = 0, first, end;

	if (v == NULL && rv != 0 && rv != OMBRA_ENOTFOUND) {
		rep_fail(op, GRPC_STATUS_UNAVAILABLE,
			 "cannot fetch the volume's shard map from metad");
		return;
	}
	if (v == NULL) {
		rep_fail(op, GRPC_STATUS_NOT_FOUND,
			 "volume %llu does not exist",
			 (unsigned long long)q->volume_id);
		return;
	}
	if (q->segment_index >= v->n_segs && !op->refetched) {
		/* The volume may have grown since our fetch (refusing would
		 * make the primary report this replica as failed). */
		op->refetched = true;
		maps_need(sd, q->volume_id, q->segment_index, MAPS_REFETCH,
			  rep_mapped, op);
		return;
	}
	if (q->segment_index >= v->n_segs ||
	    (q->segment_size_bytes != 0 &&
	     q->segment_size_bytes != v->segsize)) {
		rep_fail(op, GRPC_STATUS_INVALID_ARGUMENT,
			 "segment %llu / size %llu do not match volume %s "
			 "(%llu segments of %llu bytes)",
			 (unsigned long long)q->segment_index,
			 (unsigned long long)q->segment_size_bytes, v->name,
			 (unsigned long long)v->n_segs,
			 (unsigned long long)v->segsize);
		return;
	}
	op->segsize = v->segsize;
	ss = segtab_get(&sd->segs, q->volume_id, q->segment_index);
	if (ss == NULL) {
		rep_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	known = v->segs[q->segment_index].epoch;
	if (ss->max_epoch > known) {
		known = ss->max_epoch;
	}
	if (q->lease_epoch < known) {
		rep_fail(op, GRPC_STATUS_FAILED_PRECONDITION,
			 "stale lease epoch %llu, current %llu",
			 (unsigned long long)q->lease_epoch,
			 (unsigned long long)known);
		return;
	}
	ss->max_epoch = q->lease_epoch;
	first = q->segment_index * v->segsize / SEGSTORE_BLOCK_SIZE;
	end = first + v->segsize / SEGSTORE_BLOCK_SIZE;
	op->blk = calloc(q->n_blocks, sizeof(*op->blk));
	if (op->blk == NULL) {
		rep_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (replicate_blocks_check(q, first, end, op->blk, op->errmsg) != 0) {
		rep_fail(op, GRPC_STATUS_INVALID_ARGUMENT, "%s", op->errmsg);
		return;
	}
	if (work_submit(sd, rep_work, rep_done, op) != 0) {
		rep_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
}

static void svc_replicate(struct rpc_call *call, const ProtobufCMessage *req,
			  void *data)
{
	const Ombra__V1__ReplicateRequest *q =
	    (const Ombra__V1__ReplicateRequest *)req;
	struct stored *sd = data;
	struct rep *op;

	if (sd->stopping || !sd->serving) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "%s",
			      sd->stopping ? "shutting down" : "starting");
		return;
	}
	if (q->shadow) {
		svc_replicate_shadow(call, req, data); /* foreign_rep.c */
		return;
	}
	if (q->volume_id == 0 || q->lease_epoch == 0 || q->n_blocks == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume_id, lease_epoch and blocks are required");
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
	maps_need(sd, q->volume_id, q->segment_index, 0, rep_mapped, op);
}

/* ------------------------------------------------ GetSegmentInfo, Flush */

struct simple {
	struct stored *sd;
	struct rpc_call *call;
	const ProtobufCMessage *req;
	struct segstore_segment_info info;
	uint64_t *versions;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void info_work(void *arg)
{
	struct simple *op = arg;
	const Ombra__V1__SegmentInfoRequest *q =
	    (const Ombra__V1__SegmentInfoRequest *)op->req;

	op->rv = segstore_segment_info(
	    op->sd->ss, q->volume_id, q->segment_index, &op->info, op->versions,
	    SEGSTORE_MAX_SEGMENT_BLOCKS, op->errmsg);
}

static void info_done(void *arg)
{
	struct simple *op = arg;
	Ombra__V1__SegmentInfoResponse resp =
	    OMBRA__V1__SEGMENT_INFO_RESPONSE__INIT;

	if (op->rv == 0) {
		resp.version = op->info.version;
		resp.tier = (char *)op->info.tier_name;
		resp.block_versions = op->versions;
		resp.n_block_versions = op->info.n_blocks;
	}
	if (op->rv == 0 || op->rv == OMBRA_ENOTFOUND) {
		rpc_call_reply(op->call, &resp.base);
	} else {
		rpc_call_fail(op->call, ombra_err_to_grpc(op->rv), "%s",
			      op->errmsg);
	}
	free(op->versions);
	free(op);
}

static void flush_work(void *arg)
{
	struct simple *op = arg;

	op->rv = segstore_flush(op->sd->ss, op->errmsg);
}

static void flush_done(void *arg)
{
	struct simple *op = arg;
	Ombra__V1__StoreFlushResponse resp =
	    OMBRA__V1__STORE_FLUSH_RESPONSE__INIT;

	if (op->rv == 0) {
		rpc_call_reply(op->call, &resp.base);
	} else {
		rpc_call_fail(op->call, ombra_err_to_grpc(op->rv), "flush: %s",
			      op->errmsg);
	}
	free(op);
}

static void run_simple(struct stored *sd, struct rpc_call *call,
		       const ProtobufCMessage *req, bool versions,
		       void (*fn)(void *), void (*done)(void *))
{
	struct simple *op = calloc(1, sizeof(*op));

	if (op != NULL && versions) {
		op->versions =
		    calloc(SEGSTORE_MAX_SEGMENT_BLOCKS, sizeof(uint64_t));
	}
	if (op == NULL || (versions && op->versions == NULL)) {
		free(op);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	op->sd = sd;
	op->call = call;
	op->req = req;
	if (work_submit(sd, fn, done, op) != 0) {
		free(op->versions);
		free(op);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
	}
}

static void svc_segment_info(struct rpc_call *call, const ProtobufCMessage *req,
			     void *data)
{
	const Ombra__V1__SegmentInfoRequest *q =
	    (const Ombra__V1__SegmentInfoRequest *)req;

	if (q->volume_id == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume_id is required");
		return;
	}
	run_simple(data, call, req, true, info_work, info_done);
}

static void svc_flush(struct rpc_call *call, const ProtobufCMessage *req,
		      void *data)
{
	run_simple(data, call, req, false, flush_work, flush_done);
}

static void svc_probe(struct rpc_call *call, const ProtobufCMessage *req,
		      void *data)
{
	const Ombra__V1__ProbeRequest *q = (const Ombra__V1__ProbeRequest *)req;
	struct stored *sd = data;
	Ombra__V1__ProbeResponse resp = OMBRA__V1__PROBE_RESPONSE__INIT;

	resp.sent_unix_us = q->sent_unix_us;
	resp.node_id = sd->node_id;
	rpc_call_reply(call, &resp.base);
}

/* ------------------------------------------------ table */

int svc_register(struct stored *sd, char *errmsg)
{
	const ProtobufCServiceDescriptor *desc =
	    &ombra__v1__store_service__descriptor;
	static const struct {
		const char *name;
		rpc_handler_fn fn;
	} table[] = {
	    {"Read", svc_read},
	    {"Write", svc_write},
	    {"Replicate", svc_replicate},
	    {"GetSegmentInfo", svc_segment_info},
	    {"Flush", svc_flush},
	    {"Probe", svc_probe},
	    {"Pull", svc_pull},
	    {"DropCopy", svc_drop_copy},
	    {"ListCopies", svc_list_copies},
	};
	rpc_handler_fn handlers[16] = {0};

	if (desc->n_methods > sizeof(handlers) / sizeof(handlers[0])) {
		ombra_errmsg_printf(errmsg,
				    "StoreService has too many methods");
		return OMBRA_EINTERNAL;
	}
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const ProtobufCMethodDescriptor *m =
		    protobuf_c_service_descriptor_get_method_by_name(
			desc, table[i].name);

		if (m == NULL) {
			ombra_errmsg_printf(errmsg, "StoreService has no %s",
					    table[i].name);
			return OMBRA_EINTERNAL;
		}
		handlers[m - desc->methods] = table[i].fn;
	}
	return rpc_server_add_service(sd->rpc, desc, handlers, sd);
}
