/* svc_copy.c: StoreService.Pull, DropCopy and ListCopies of ombra-stored,
 * the calls that manage foreign copies (docs/shadows.md, docs/stored.md
 * "Foreign copies"; the table is foreign.c, the copying foreign_pull.c).
 *
 * Pull: offset_bytes / length_bytes are relative to the segment's start
 * (PullRequest, like the prefetch engine's block numbers); length 0 = to
 * the segment's end.  A COPY_CACHE pull first makes room in the cache
 * capacity (--cache-bytes) by evicting least recently used cache entries;
 * a pull into an existing shadow keeps it a shadow.  A node holding a home
 * role for the segment keeps no foreign copy of it.
 *
 * DropCopy: drops present blocks of a copy (segment-relative range,
 * length 0 = the whole segment); a copy left with nothing is removed.
 * Dropping what is not held answers OK with dropped_bytes 0.
 *
 * Failure: INVALID_ARGUMENT (unknown volume, bad size, unaligned or
 * out-of-segment range, bad kind), FAILED_PRECONDITION (this node is a
 * home copy of the segment; the copy was dropped during the pull),
 * RESOURCE_EXHAUSTED (cache full of entries being pulled, memory),
 * UNAVAILABLE (starting, no source copy reachable, metad unreachable). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "foreign.h"
#include "log.h"

struct cop {
	struct stored *sd;
	struct rpc_call *call;
	const Ombra__V1__PullRequest *req;
	uint64_t gen;
	bool refetched;
};

static void cop_end(struct cop *op)
{
	struct stored *sd = op->sd;

	free(op);
	stored_call_end(sd);
}

static void cop_fail(struct cop *op, grpc_status_code code, const char *msg)
{
	rpc_call_fail(op->call, code, "%s", msg);
	cop_end(op);
}

static bool ready_or_fail(struct stored *sd, struct rpc_call *call)
{
	if (sd->stopping || !sd->serving) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "%s",
			      sd->stopping ? "shutting down" : "starting");
		return false;
	}
	return true;
}

/* ------------------------------------------------ Pull */

static void pull_done(void *arg, int rv, const char *errmsg, uint64_t pulled,
		      uint64_t source)
{
	struct cop *op = arg;
	const Ombra__V1__PullRequest *q = op->req;
	struct fcent *e = foreign_find(op->sd, q->volume_id, q->segment_index);
	Ombra__V1__PullResponse resp = OMBRA__V1__PULL_RESPONSE__INIT;

	if (e != NULL && e->gen != op->gen) {
		e = NULL;
	}
	if (rv != 0) {
		/* A record this pull created and left empty goes again. */
		if (e != NULL && e->c.n_present == 0 && e->pulls == 0 &&
		    e->c.kind == FC_CACHE) {
			foreign_remove(op->sd, e);
		}
		cop_fail(op, ombra_err_to_grpc(rv), errmsg);
		return;
	}
	if (e != NULL && e->c.kind == FC_CACHE) {
		/* Concurrent pulls may have overshot the capacity. */
		(void)foreign_cache_room(op->sd, 0, e);
		e = foreign_find(op->sd, q->volume_id, q->segment_index);
	}
	resp.pulled_bytes = pulled;
	resp.watermark = e != NULL ? e->c.watermark : 0;
	resp.source_node_id = source;
	rpc_call_reply(op->call, &resp.base);
	cop_end(op);
}

static void pull_mapped(void *arg, int rv)
{
	struct cop *op = arg;
	struct stored *sd = op->sd;
	const Ombra__V1__PullRequest *q = op->req;
	enum fc_kind kind =
	    q->kind == OMBRA__V1__COPY_KIND__COPY_CACHE ? FC_CACHE : FC_SHADOW;
	char msg[OMBRA_ERRMSG_LEN];
	grpc_status_code code;
	struct sm_volume *v =
	    maps_checked(sd, q->volume_id, rv, q->segment_size_bytes,
			 GRPC_STATUS_INVALID_ARGUMENT, &code, msg, sizeof(msg));
	struct wl_range r;
	uint64_t len, missing = 0;
	uint32_t n_blocks, first;
	struct fcent *e;

	if (v == NULL) {
		cop_fail(op, code, msg);
		return;
	}
	n_blocks = foreign_seg_blocks(v, q->segment_index);
	if (n_blocks == 0 && !op->refetched) {
		op->refetched = true; /* the volume may have grown */
		maps_need(sd, q->volume_id, q->segment_index, MAPS_REFETCH,
			  pull_mapped, op);
		return;
	}
	if (n_blocks == 0 || n_blocks > FC_MAX_BLOCKS) {
		snprintf(msg, sizeof(msg),
			 "segment %llu is beyond volume %s (%llu segments)",
			 (unsigned long long)q->segment_index, v->name,
			 (unsigned long long)v->n_segs);
		cop_fail(op, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return;
	}
	len = q->length_bytes;
	if (len == 0 && q->offset_bytes < (uint64_t)n_blocks * 4096u) {
		len =
		    (uint64_t)n_blocks * SEGSTORE_BLOCK_SIZE - q->offset_bytes;
	}
	if (q->offset_bytes >= v->segsize ||
	    wl_check_range(q->segment_index, v->segsize, v->size,
			   q->segment_index * v->segsize + q->offset_bytes, len,
			   true, &r, msg) != 0) {
		char why[2 * OMBRA_ERRMSG_LEN];

		snprintf(why, sizeof(why),
			 "Pull offset_bytes %llu length_bytes %llu (relative "
			 "to segment %llu of %llu bytes): %s",
			 (unsigned long long)q->offset_bytes,
			 (unsigned long long)q->length_bytes,
			 (unsigned long long)q->segment_index,
			 (unsigned long long)v->segsize,
			 q->offset_bytes >= v->segsize
			     ? "offset outside the segment"
			     : msg);
		cop_fail(op, GRPC_STATUS_INVALID_ARGUMENT, why);
		return;
	}
	if (foreign_is_home(&v->segs[q->segment_index], sd->node_id)) {
		snprintf(msg, sizeof(msg),
			 "node %llu holds a home copy of segment %llu of "
			 "volume %s: no foreign copy is kept",
			 (unsigned long long)sd->node_id,
			 (unsigned long long)q->segment_index, v->name);
		cop_fail(op, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	first = (uint32_t)(q->offset_bytes / SEGSTORE_BLOCK_SIZE);
	e = foreign_find(sd, q->volume_id, q->segment_index);
	for (uint32_t b = first; b < first + r.n_blocks; b++) {
		missing +=
		    e != NULL && fc_present(&e->c, b) ? 0 : SEGSTORE_BLOCK_SIZE;
	}
	if ((e == NULL || e->c.kind == FC_CACHE) && kind == FC_CACHE &&
	    foreign_cache_room(sd, missing, e) != 0) {
		snprintf(msg, sizeof(msg),
			 missing > sd->cfg.cache_bytes
			     ? "cache full: %llu bytes needed, more than the "
			       "whole capacity of %llu bytes (--cache-bytes)"
			     : "cache full: %llu bytes needed, the capacity of "
			       "%llu bytes (--cache-bytes) is held by entries "
			       "being pulled",
			 (unsigned long long)missing,
			 (unsigned long long)sd->cfg.cache_bytes);
		cop_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
		return;
	}
	e = foreign_get(sd, q->volume_id, q->segment_index, kind, n_blocks);
	if (e == NULL) {
		cop_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	op->gen = e->gen;
	foreign_pull(sd, e, first, (uint32_t)r.n_blocks, pull_done, op);
}

void svc_pull(struct rpc_call *call, const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__PullRequest *q = (const Ombra__V1__PullRequest *)req;
	struct stored *sd = data;
	struct cop *op;

	if (!ready_or_fail(sd, call)) {
		return;
	}
	if (q->volume_id == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume_id is required");
		return;
	}
	if (q->kind != OMBRA__V1__COPY_KIND__COPY_CACHE &&
	    q->kind != OMBRA__V1__COPY_KIND__COPY_SHADOW) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "kind %d is not COPY_SHADOW or COPY_CACHE",
			      (int)q->kind);
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
	maps_need(sd, q->volume_id, q->segment_index, 0, pull_mapped, op);
}

/* ------------------------------------------------ DropCopy */

void svc_drop_copy(struct rpc_call *call, const ProtobufCMessage *req,
		   void *data)
{
	const Ombra__V1__DropCopyRequest *q =
	    (const Ombra__V1__DropCopyRequest *)req;
	struct stored *sd = data;
	Ombra__V1__DropCopyResponse resp = OMBRA__V1__DROP_COPY_RESPONSE__INIT;
	struct fcent *e;
	uint64_t first, n;

	if (!ready_or_fail(sd, call)) {
		return;
	}
	if (q->volume_id == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume_id is required");
		return;
	}
	if (q->offset_bytes % SEGSTORE_BLOCK_SIZE != 0 ||
	    q->length_bytes % SEGSTORE_BLOCK_SIZE != 0 ||
	    q->offset_bytes > SEGSTORE_MAX_SEGMENT_SIZE ||
	    q->length_bytes > SEGSTORE_MAX_SEGMENT_SIZE) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "DropCopy offset_bytes %llu and length_bytes "
			      "%llu must be multiples of 4096 inside a segment "
			      "(relative to its start)",
			      (unsigned long long)q->offset_bytes,
			      (unsigned long long)q->length_bytes);
		return;
	}
	e = foreign_find(sd, q->volume_id, q->segment_index);
	if (e != NULL && q->cache_only && e->c.kind == FC_SHADOW) {
		/* A prefetch engine's eviction of a cache entry that the
		 * shadow policy has turned into a shadow since: its blocks
		 * stay (dropping them made the shadow refuse reads as "not
		 * present" until anti-entropy). */
		log_debug("DropCopy (cache only): volume %llu segment %llu is "
			  "a shadow here: kept",
			  (unsigned long long)q->volume_id,
			  (unsigned long long)q->segment_index);
		e = NULL;
	}
	if (e != NULL) {
		first = q->offset_bytes / SEGSTORE_BLOCK_SIZE;
		n = q->length_bytes == 0
			? FC_MAX_BLOCKS
			: q->length_bytes / SEGSTORE_BLOCK_SIZE;
		if (first < e->c.n_blocks) {
			resp.dropped_bytes =
			    (uint64_t)fc_drop(&e->c, (uint32_t)first,
					      (uint32_t)n) *
			    SEGSTORE_BLOCK_SIZE;
		}
		if (q->length_bytes == 0 && q->offset_bytes == 0) {
			log_info("DropCopy: volume %llu segment %llu dropped",
				 (unsigned long long)q->volume_id,
				 (unsigned long long)q->segment_index);
			foreign_remove(sd, e);
		} else if (e->c.n_present == 0 && e->c.kind == FC_CACHE &&
			   e->pulls == 0) {
			foreign_remove(sd, e);
		}
	}
	rpc_call_reply(call, &resp.base);
}

/* ------------------------------------------------ ListCopies */

struct list {
	uint64_t vol, now;
	Ombra__V1__CopyInfo *infos;
	Ombra__V1__CopyInfo **ptrs;
	size_t n, cap;
};

static void list_one(struct stored *sd, struct fcent *e, void *arg)
{
	struct list *l = arg;
	Ombra__V1__CopyInfo *ci;

	(void)sd;
	if ((l->vol != 0 && e->c.vol != l->vol) || l->n >= l->cap) {
		return;
	}
	ci = &l->infos[l->n];
	ombra__v1__copy_info__init(ci);
	ci->volume_id = e->c.vol;
	ci->segment_index = e->c.seg;
	ci->kind = e->c.kind == FC_CACHE ? OMBRA__V1__COPY_KIND__COPY_CACHE
					 : OMBRA__V1__COPY_KIND__COPY_SHADOW;
	/* A shadow being filled claims nothing yet (docs/shadows.md). */
	ci->watermark = e->c.filling ? 0 : e->c.watermark;
	ci->present_blocks = e->c.n_present;
	ci->total_blocks = e->c.n_blocks;
	ci->confirmed_unix_ms = e->c.confirmed_ms;
	ci->lag_versions = fc_lag_versions(&e->c);
	ci->lag_ms = fc_lag_ms(&e->c, l->now);
	ci->last_read_unix_ms = e->c.last_read_ms;
	ci->reads = e->c.reads;
	ci->filling = e->c.filling;
	l->ptrs[l->n++] = ci;
}

void svc_list_copies(struct rpc_call *call, const ProtobufCMessage *req,
		     void *data)
{
	const Ombra__V1__ListCopiesRequest *q =
	    (const Ombra__V1__ListCopiesRequest *)req;
	struct stored *sd = data;
	Ombra__V1__ListCopiesResponse resp =
	    OMBRA__V1__LIST_COPIES_RESPONSE__INIT;
	struct list l = {.vol = q->volume_id, .now = foreign_unix_ms()};

	l.cap = sd->fg.count;
	l.infos = calloc(l.cap + 1, sizeof(*l.infos));
	l.ptrs = calloc(l.cap + 1, sizeof(*l.ptrs));
	if (l.infos == NULL || l.ptrs == NULL) {
		free(l.infos);
		free(l.ptrs);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	foreign_each(sd, list_one, &l);
	resp.copies = l.ptrs;
	resp.n_copies = l.n;
	resp.cache_bytes = foreign_bytes(sd, FC_CACHE);
	resp.cache_capacity_bytes = sd->cfg.cache_bytes;
	resp.shadow_bytes = foreign_bytes(sd, FC_SHADOW);
	rpc_call_reply(call, &resp.base);
	free(l.infos);
	free(l.ptrs);
}
