/* svc_read.c: StoreService.Read and the repair of bad blocks.
 *
 * Read: served when this node is the primary or an in-sync replica of the
 * segment in its shard map and holds a valid node lease (any_copy=true,
 * used by repair and re-sync sources, skips both checks).  Every block is
 * verified by the store; a block that fails is repaired from another copy
 * first (repair_blocks) and the read is retried once.  A source read
 * (any_copy) never repairs: it reports DATA_LOSS so that two bad copies
 * never ask each other in a loop.
 *
 * Repair: for each bad block, Read(any_copy) of that block from the other
 * copies of the segment (in-sync ones first), check the returned block's
 * crc against its data and version, and segstore_repair() it (which
 * re-verifies).  Counted in ombra_stored_repaired_blocks_total and logged.
 *
 * segment_version: the segment's highest version, read from the index
 * before and after the data (see read_work), so the data is at least as
 * new as the segment was at that version.
 *
 * Foreign reads (foreign_ok, docs/shadows.md "Which copy may serve a
 * read"): a node that is not an in-sync copy of the segment but holds a
 * foreign copy of it answers from that copy when fc_check_read() allows
 * (every block present; watermark >= min_version; confirmed within
 * max_staleness_ms with a valid node lease, the read lease), checked
 * before and again after the data is read; segment_version is then the
 * copy's watermark and foreign is true.  A block failing its checksum is
 * dropped from the copy (no repair) and the read refused.
 *
 * Failure: INVALID_ARGUMENT (range), NOT_FOUND (volume), FAILED_PRECONDITION
 * (not an in-sync copy; a foreign copy that may not serve the read, with
 * "not present" / "stale copy" and the numbers), UNAVAILABLE (starting, lease
 * expired), DATA_LOSS (a block no copy could repair, named in the message). */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "err.h"
#include "foreign.h"
#include "log.h"
#include "stored.h"

/* ------------------------------------------------ repair */

struct repair {
	struct stored *sd;
	uint64_t vol, seg, segsize;
	uint64_t *blocks;
	size_t n, i; /* block being repaired */
	uint64_t cand[2 * SM_MAX_COPIES + 1];
	size_t n_cand, ci; /* candidate being asked */
	size_t n_failed;
	uint64_t first_failed;
	/* the block fetched, for segstore_repair in the pool */
	unsigned char data[SEGSTORE_BLOCK_SIZE];
	struct segstore_block blk;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
	void (*done)(void *arg, int rv, const char *errmsg);
	void *arg;
};

static void repair_next_block(struct repair *rp);
static void repair_ask(struct repair *rp);

static void repair_work(void *arg)
{
	struct repair *rp = arg;
	size_t n_applied = 0;

	rp->rv = segstore_repair(rp->sd->ss, rp->vol, (uint32_t)rp->segsize,
				 &rp->blk, 1, true, &n_applied, rp->errmsg);
}

static void repair_stored(void *arg)
{
	struct repair *rp = arg;
	struct stored *sd = rp->sd;

	if (rp->rv != 0) {
		log_warn("volume %llu block %llu: repair from node %llu "
			 "failed: %s",
			 (unsigned long long)rp->vol,
			 (unsigned long long)rp->blocks[rp->i],
			 (unsigned long long)rp->cand[rp->ci], rp->errmsg);
		rp->ci++;
		repair_ask(rp);
		return;
	}
	metric_inc(sd->m.repaired, 1.0);
	log_warn("volume %llu segment %llu: block %llu failed its checksum; "
		 "repaired from node %llu (version %llu)",
		 (unsigned long long)rp->vol, (unsigned long long)rp->seg,
		 (unsigned long long)rp->blocks[rp->i],
		 (unsigned long long)rp->cand[rp->ci],
		 (unsigned long long)rp->blk.version);
	rp->i++;
	repair_next_block(rp);
}

static void repair_read_cb(void *data, const struct rpc_status *st,
			   const ProtobufCMessage *resp)
{
	struct repair *rp = data;
	const Ombra__V1__StoreReadResponse *r =
	    (const Ombra__V1__StoreReadResponse *)resp;
	uint64_t b = rp->blocks[rp->i];
	const char *why = NULL;

	peer_failed(rp->sd, rp->cand[rp->ci], st->code);
	if (st->code != GRPC_STATUS_OK) {
		why = st->message;
	} else if (r->data.len != SEGSTORE_BLOCK_SIZE ||
		   r->n_block_versions != 1 || r->n_block_crcs != 1) {
		why = "malformed answer";
	} else if (r->block_versions[0] == 0) {
		why = "the copy never stored the block";
	} else if (crc_block(r->data.data, rp->vol, b, r->block_versions[0]) !=
		   r->block_crcs[0]) {
		why = "the copy's block fails its checksum in transit";
	}
	if (why != NULL) {
		log_warn("volume %llu block %llu: repair source node %llu: %s",
			 (unsigned long long)rp->vol, (unsigned long long)b,
			 (unsigned long long)rp->cand[rp->ci], why);
		rp->ci++;
		repair_ask(rp);
		return;
	}
	memcpy(rp->data, r->data.data, SEGSTORE_BLOCK_SIZE);
	rp->blk = (struct segstore_block){.block = b,
					  .version = r->block_versions[0],
					  .crc = r->block_crcs[0],
					  .data = rp->data};
	if (work_submit(rp->sd, repair_work, repair_stored, rp) != 0) {
		rp->ci++;
		repair_ask(rp);
	}
}

/* Ask the next candidate copy for block rp->blocks[rp->i]. */
static void repair_ask(struct repair *rp)
{
	struct stored *sd = rp->sd;
	Ombra__V1__StoreReadRequest q = OMBRA__V1__STORE_READ_REQUEST__INIT;
	uint64_t b = rp->blocks[rp->i];

	while (rp->ci < rp->n_cand) {
		const char *addr = stored_node_address(sd, rp->cand[rp->ci]);
		char errmsg[OMBRA_ERRMSG_LEN];
		struct rpc_channel *ch =
		    addr != NULL ? peer_channel(sd, addr, errmsg) : NULL;

		q.volume_id = rp->vol;
		q.segment_index = rp->seg;
		q.segment_size_bytes = rp->segsize;
		q.offset_bytes = b * SEGSTORE_BLOCK_SIZE;
		q.length_bytes = SEGSTORE_BLOCK_SIZE;
		q.any_copy = true;
		if (ch != NULL &&
		    rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
				      "Read", &q.base,
				      STORED_PEER_READ_TIMEOUT_MS,
				      repair_read_cb, rp, NULL) == 0) {
			return;
		}
		rp->ci++;
	}
	log_error("volume %llu segment %llu: block %llu failed its checksum "
		  "and no other copy could repair it",
		  (unsigned long long)rp->vol, (unsigned long long)rp->seg,
		  (unsigned long long)b);
	metric_inc(sd->m.repair_failed, 1.0);
	if (rp->n_failed++ == 0) {
		rp->first_failed = b;
	}
	rp->i++;
	repair_next_block(rp);
}

static void repair_next_block(struct repair *rp)
{
	if (rp->i < rp->n) {
		rp->ci = 0;
		repair_ask(rp);
		return;
	}
	if (rp->n_failed > 0) {
		ombra_errmsg_printf(rp->errmsg,
				    "block %llu of volume %llu failed its "
				    "checksum and no copy could repair it "
				    "(%zu such blocks)",
				    (unsigned long long)rp->first_failed,
				    (unsigned long long)rp->vol, rp->n_failed);
	}
	rp->done(rp->arg, rp->n_failed > 0 ? OMBRA_EIO : 0, rp->errmsg);
	free(rp->blocks);
	free(rp);
}

static void add_cand(struct repair *rp, uint64_t node)
{
	if (node == 0 || node == rp->sd->node_id) {
		return;
	}
	for (size_t i = 0; i < rp->n_cand; i++) {
		if (rp->cand[i] == node) {
			return;
		}
	}
	rp->cand[rp->n_cand++] = node;
}

void repair_blocks(struct stored *sd, uint64_t vol, uint64_t seg,
		   const uint64_t *blocks, size_t n,
		   void (*done)(void *arg, int rv, const char *errmsg),
		   void *arg)
{
	struct sm_volume *v = sm_find(&sd->maps, vol);
	struct repair *rp = calloc(1, sizeof(*rp));

	if (rp == NULL || (rp->blocks = malloc(n * sizeof(uint64_t))) == NULL) {
		free(rp);
		done(arg, OMBRA_ENOMEM, "out of memory");
		return;
	}
	memcpy(rp->blocks, blocks, n * sizeof(uint64_t));
	rp->sd = sd;
	rp->vol = vol;
	rp->seg = seg;
	rp->n = n;
	rp->done = done;
	rp->arg = arg;
	if (v != NULL && seg < v->n_segs) {
		const struct sm_seg *p = &v->segs[seg];

		rp->segsize = v->segsize;
		add_cand(rp, p->primary);
		for (unsigned i = 0; i < p->n_rep; i++) {
			add_cand(rp, p->rep[i]);
		}
		for (unsigned i = 0; i < p->n_resync; i++) {
			add_cand(rp, p->resync[i]);
		}
	}
	repair_next_block(rp);
}

/* ------------------------------------------------ Read */

struct rop {
	struct stored *sd;
	struct rpc_call *call;
	const Ombra__V1__StoreReadRequest *req;
	struct wl_range r;
	unsigned char *buf;
	uint64_t *versions, *bad;
	uint32_t *crcs;
	size_t n_bad;
	uint32_t repaired;
	uint64_t seg_version; /* segment_version of the answer */
	bool retried;
	bool refetched;	   /* map refetched once because we were not in sync */
	uint64_t fgen;	   /* foreign read: the record's generation */
	uint64_t seg_base; /* foreign read: first volume block of the seg */
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void rop_end(struct rop *op)
{
	struct stored *sd = op->sd;

	free(op->buf);
	free(op->versions);
	free(op->bad);
	free(op->crcs);
	free(op);
	stored_call_end(sd);
}

static void rop_fail(struct rop *op, grpc_status_code code, const char *msg)
{
	rpc_call_fail(op->call, code, "%s", msg);
	rop_end(op);
}

/* Allocate op's buffers for its r.n_blocks blocks (freed by rop_end),
 * then serve it on the loop if serve_inline() can do so without blocking,
 * else run work() in the thread pool; done() answers either way.  Out of
 * memory fails op with RESOURCE_EXHAUSTED. */
static void rop_start(struct rop *op, bool (*serve_inline)(struct rop *op),
		      void (*work)(void *arg), void (*done)(void *arg))
{
	size_t n = op->r.n_blocks;

	op->buf = malloc(op->r.alen);
	op->versions = calloc(n, sizeof(uint64_t));
	op->bad = calloc(n, sizeof(uint64_t));
	op->crcs = calloc(n, sizeof(uint32_t));
	if (op->buf == NULL || op->versions == NULL || op->bad == NULL ||
	    op->crcs == NULL) {
		rop_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	if (serve_inline(op)) {
		done(op);
		return;
	}
	if (work_submit(op->sd, work, done, op) != 0)
		rop_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
}

/* Each block's crc for the answer (the reader checks data in transit). */
static void fill_crcs(struct rop *op)
{
	for (uint64_t i = 0; i < op->r.n_blocks; i++) {
		op->crcs[i] = crc_block(op->buf + i * SEGSTORE_BLOCK_SIZE,
					op->req->volume_id,
					op->r.first_block + i, op->versions[i]);
	}
}

/* The segment's highest version (0 when nothing is stored), or
 * UINT64_MAX when the index cannot be read. */
static uint64_t seg_version_now(struct rop *op)
{
	struct segstore_segment_info info;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv = segstore_segment_info(op->sd->ss, op->req->volume_id,
				       op->req->segment_index, &info, NULL, 0,
				       errmsg);

	return rv == 0 ? info.version : rv == OMBRA_ENOTFOUND ? 0 : UINT64_MAX;
}

/* segment_version: the segment's version read before and after the data.
 * Writes of a segment are applied one at a time and a version is the
 * highest only once every earlier write is stored, so the version read
 * before the data is one the data is at least as new as; when the two
 * agree no write ran in between and the answer is exactly the segment at
 * that version (as if both were read under one lock).  A write in between
 * makes us read again (up to 3 times), then answer the earlier version,
 * which still never claims more than the data holds. */
#define READ_VERSION_TRIES 3

static void read_work(void *arg)
{
	struct rop *op = arg;
	const Ombra__V1__StoreReadRequest *q = op->req;

	for (int i = 0; i < READ_VERSION_TRIES; i++) {
		uint64_t before = seg_version_now(op), after;

		op->n_bad = 0;
		op->rv = segstore_read(op->sd->ss, q->volume_id, op->r.aoff,
				       op->r.alen, op->buf, op->versions,
				       op->bad, &op->n_bad, op->errmsg);
		if (op->rv != 0) {
			return;
		}
		after = seg_version_now(op);
		op->seg_version = before == UINT64_MAX ? 0 : before;
		if (before == after) {
			break;
		}
	}
	fill_crcs(op);
}

/* Small reads whose data and index are in memory are served on the loop
 * (segstore_read_nowait: no lock waits, no disk access), saving the trip
 * through the thread pool; anything else goes to read_work. */
#define READ_INLINE_MAX (64u * 1024u)

static bool read_inline(struct rop *op)
{
	const Ombra__V1__StoreReadRequest *q = op->req;

	uint64_t before;

	if (op->r.alen > READ_INLINE_MAX) {
		return false;
	}
	/* The index record is normally resident (it is for every read
	 * served here), so reading the version costs no disk access. */
	before = seg_version_now(op);
	if (before == UINT64_MAX ||
	    segstore_read_nowait(op->sd->ss, q->volume_id, q->segment_index,
				 op->r.aoff, op->r.alen, op->buf,
				 op->versions) != 0 ||
	    seg_version_now(op) != before) {
		return false;
	}
	op->seg_version = before;
	op->rv = 0;
	op->n_bad = 0;
	fill_crcs(op);
	return true;
}

static void read_done(void *arg);

static void read_repaired(void *arg, int rv, const char *errmsg)
{
	struct rop *op = arg;

	if (rv != 0) {
		rop_fail(op,
			 rv == OMBRA_EIO ? GRPC_STATUS_DATA_LOSS
					 : ombra_err_to_grpc(rv),
			 errmsg);
		return;
	}
	op->repaired += (uint32_t)op->n_bad;
	op->retried = true;
	if (work_submit(op->sd, read_work, read_done, op) != 0) {
		rop_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	}
}

static void read_done(void *arg)
{
	struct rop *op = arg;
	const Ombra__V1__StoreReadRequest *q = op->req;
	Ombra__V1__StoreReadResponse resp =
	    OMBRA__V1__STORE_READ_RESPONSE__INIT;

	if (op->rv == OMBRA_EIO && op->n_bad > 0) {
		if (q->any_copy || op->retried) {
			char msg[OMBRA_ERRMSG_LEN];

			snprintf(msg, sizeof(msg),
				 "block %llu of volume %llu failed its "
				 "checksum on node %llu%s",
				 (unsigned long long)op->bad[0],
				 (unsigned long long)q->volume_id,
				 (unsigned long long)op->sd->node_id,
				 op->retried ? " again after repair" : "");
			rop_fail(op, GRPC_STATUS_DATA_LOSS, msg);
			return;
		}
		repair_blocks(op->sd, q->volume_id, q->segment_index, op->bad,
			      op->n_bad, read_repaired, op);
		return;
	}
	if (op->rv != 0) {
		rop_fail(op, ombra_err_to_grpc(op->rv), op->errmsg);
		return;
	}
	resp.data.data = op->buf;
	resp.data.len = op->r.alen;
	resp.block_versions = op->versions;
	resp.n_block_versions = op->r.n_blocks;
	resp.block_crcs = op->crcs;
	resp.n_block_crcs = op->r.n_blocks;
	resp.repaired_blocks = op->repaired;
	resp.segment_version = op->seg_version;
	metric_inc(op->sd->m.bytes_read, (double)op->r.alen);
	rpc_call_reply(op->call, &resp.base);
	rop_end(op);
}

/* ------------------------------------------------ foreign reads */

/* May the foreign copy e serve op?  Sets msg when not. */
static bool foreign_may_serve(struct rop *op, struct fcent *e, char *msg,
			      size_t len)
{
	struct fc_copy *c = &e->c;
	uint64_t seg_first = op->r.first_block - op->seg_base;

	if (c->kind == FC_SHADOW && c->filling) {
		snprintf(msg, len,
			 "not present: the shadow is being filled (%u of %u "
			 "blocks)",
			 c->n_present, c->n_blocks);
		return false;
	}
	return fc_check_read(c, (uint32_t)seg_first, (uint32_t)op->r.n_blocks,
			     op->req->min_version, op->req->max_staleness_ms,
			     node_lease_valid(op->sd), foreign_unix_ms(), msg,
			     len) == FC_OK;
}

static void foreign_read_work(void *arg)
{
	struct rop *op = arg;

	op->n_bad = 0;
	op->rv = segstore_read(op->sd->ss, op->req->volume_id, op->r.aoff,
			       op->r.alen, op->buf, op->versions, op->bad,
			       &op->n_bad, op->errmsg);
	if (op->rv == 0) {
		fill_crcs(op);
	}
}

static void foreign_read_done(void *arg)
{
	struct rop *op = arg;
	const Ombra__V1__StoreReadRequest *q = op->req;
	struct fcent *e = foreign_find(op->sd, q->volume_id, q->segment_index);
	Ombra__V1__StoreReadResponse resp =
	    OMBRA__V1__STORE_READ_RESPONSE__INIT;
	char msg[OMBRA_ERRMSG_LEN];

	if (e == NULL || e->gen != op->fgen) {
		rop_fail(op, GRPC_STATUS_FAILED_PRECONDITION,
			 "not present: the foreign copy was dropped during "
			 "the read");
		return;
	}
	if (op->rv == OMBRA_EIO && op->n_bad > 0) {
		/* No repair of a foreign copy: forget the bad blocks (a
		 * pull or the fill brings them back) and read elsewhere. */
		for (size_t i = 0; i < op->n_bad; i++) {
			fc_drop(&e->c, (uint32_t)(op->bad[i] - op->seg_base),
				1);
		}
		snprintf(msg, sizeof(msg),
			 "not present: block %llu of the foreign copy failed "
			 "its checksum and was dropped from it",
			 (unsigned long long)op->bad[0]);
		rop_fail(op, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	if (op->rv != 0) {
		rop_fail(op, ombra_err_to_grpc(op->rv), op->errmsg);
		return;
	}
	/* Checked again: the copy may have changed while the data was read
	 * (the answer claims the lower of the two watermarks). */
	if (!foreign_may_serve(op, e, msg, sizeof(msg))) {
		rop_fail(op, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	if (e->c.watermark < op->seg_version) {
		op->seg_version = e->c.watermark;
	}
	fc_read_served(&e->c, foreign_unix_ms());
	metric_inc(op->sd->fg.m_reads, 1.0);
	resp.data.data = op->buf;
	resp.data.len = op->r.alen;
	resp.block_versions = op->versions;
	resp.n_block_versions = op->r.n_blocks;
	resp.block_crcs = op->crcs;
	resp.n_block_crcs = op->r.n_blocks;
	resp.segment_version = op->seg_version;
	resp.foreign = true;
	metric_inc(op->sd->m.bytes_read, (double)op->r.alen);
	rpc_call_reply(op->call, &resp.base);
	rop_end(op);
}

/* A foreign read served on the loop when it cannot block, as read_inline
 * does for home reads: through the thread pool it queued behind the
 * propagated writes' syncs of the same node, and the single writer's
 * reads at its local shadows took 8 ms (p50) against 3 ms at home. */
static bool foreign_read_inline(struct rop *op)
{
	const Ombra__V1__StoreReadRequest *q = op->req;

	if (op->r.alen > READ_INLINE_MAX ||
	    segstore_read_nowait(op->sd->ss, q->volume_id, q->segment_index,
				 op->r.aoff, op->r.alen, op->buf,
				 op->versions) != 0) {
		return false;
	}
	op->rv = 0;
	op->n_bad = 0;
	fill_crcs(op);
	return true;
}

/* Serve op from the foreign copy e or refuse FAILED_PRECONDITION. */
static void foreign_read(struct rop *op, struct fcent *e)
{
	char msg[OMBRA_ERRMSG_LEN];

	if (!foreign_may_serve(op, e, msg, sizeof(msg))) {
		metric_inc(op->sd->fg.m_refused, 1.0);
		rop_fail(op, GRPC_STATUS_FAILED_PRECONDITION, msg);
		return;
	}
	op->fgen = e->gen;
	op->seg_version = e->c.watermark;
	rop_start(op, foreign_read_inline, foreign_read_work,
		  foreign_read_done);
}

static void read_mapped(void *arg, int rv)
{
	struct rop *op = arg;
	struct stored *sd = op->sd;
	const Ombra__V1__StoreReadRequest *q = op->req;
	char msg[OMBRA_ERRMSG_LEN];
	grpc_status_code code;
	struct sm_volume *v =
	    maps_checked(sd, q->volume_id, rv, q->segment_size_bytes,
			 GRPC_STATUS_NOT_FOUND, &code, msg, sizeof(msg));

	if (v == NULL) {
		rop_fail(op, code, msg);
		return;
	}
	if (wl_check_range(q->segment_index, v->segsize, v->size,
			   q->offset_bytes, q->length_bytes, true, &op->r,
			   msg) != 0) {
		if (!op->refetched &&
		    (maps_beyond(v, q->segment_index, q->offset_bytes,
				 q->length_bytes) ||
		     maps_may_lag(sd, v))) {
			/* The volume may have grown since our fetch. */
			op->refetched = true;
			maps_need(sd, q->volume_id, q->segment_index,
				  MAPS_REFETCH, read_mapped, op);
			return;
		}
		rop_fail(op, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return;
	}
	if (q->foreign_ok && !q->any_copy &&
	    !sm_seg_in_sync(&v->segs[q->segment_index], sd->node_id)) {
		struct fcent *e =
		    foreign_find(sd, q->volume_id, q->segment_index);

		if (e != NULL) {
			op->seg_base = q->segment_index *
				       (v->segsize / SEGSTORE_BLOCK_SIZE);
			foreign_read(op, e);
			return;
		}
	}
	if (!q->any_copy) {
		if (!node_lease_valid(sd)) {
			rop_fail(op, GRPC_STATUS_UNAVAILABLE,
				 "lease expired: metad unreachable");
			return;
		}
		if (!sm_seg_in_sync(&v->segs[q->segment_index], sd->node_id) &&
		    !op->refetched && maps_may_lag(sd, v)) {
			op->refetched = true;
			maps_need(sd, q->volume_id, q->segment_index,
				  MAPS_REFETCH, read_mapped, op);
			return;
		}
		if (!sm_seg_in_sync(&v->segs[q->segment_index], sd->node_id)) {
			snprintf(
			    msg, sizeof(msg),
			    "%snode %llu is not an in-sync copy of segment "
			    "%llu of volume %s",
			    q->foreign_ok ? "not present: no foreign copy "
					    "here and "
					  : "",
			    (unsigned long long)sd->node_id,
			    (unsigned long long)q->segment_index, v->name);
			rop_fail(op, GRPC_STATUS_FAILED_PRECONDITION, msg);
			return;
		}
	}
	rop_start(op, read_inline, read_work, read_done);
}

void svc_read(struct rpc_call *call, const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__StoreReadRequest *q =
	    (const Ombra__V1__StoreReadRequest *)req;
	struct stored *sd = data;
	struct rop *op;

	if (sd->stopping || !sd->serving) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "%s",
			      sd->stopping ? "shutting down" : "starting");
		return;
	}
	if (q->volume_id == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume_id is required");
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
	maps_need(sd, q->volume_id, q->segment_index, 0, read_mapped, op);
}
