/* svc_write.c: StoreService.Write at a segment's primary.
 *
 * Order of a write: checks (node serving, lease, primary of the segment in
 * the shard map, lease epoch, offsets) -> the segment's FIFO queue (one
 * write per segment at a time, in arrival order) -> in the thread pool:
 * version = epoch << 40 | next_seq, read and merge partial head/tail
 * blocks, segstore_write/segstore_trim with fua -> Replicate to every
 * in-sync replica and to a replica being re-synced, in parallel (2 s
 * timeout, wrepl.c) -> for each in-sync replica that failed,
 * ReportReplicaFailure to metad, and only when metad accepted every
 * report -> reply the version.  An aligned write whose sequence is already
 * known is replicated while it is stored locally (DESIGN.md: write
 * locally, send to the replicas, sync, acknowledge); its version is
 * reserved first, so a version that failed locally is never reused.  Retries
 * with a known request_id get the same version without being applied again (an
 * LRU of recent ids, plus ids still queued).
 *
 * The answer carries prev_version, the segment's highest version read
 * from the store just before the write is stored (the write chain that
 * shadows follow, docs/shadows.md).  A nonzero writer_epoch older than
 * the highest seen for the volume (metad's Volume.writer_epoch or an
 * earlier write's) is refused: a deposed single writer is fenced.
 *
 * Failure: INVALID_ARGUMENT (bad range or data length), NOT_FOUND (no such
 * volume), FAILED_PRECONDITION (not the primary, stale or unknown epoch,
 * stale writer epoch),
 * UNAVAILABLE (starting, shutting down, lease expired, a replica failed
 * and metad could not be told: the write is then NOT acknowledged although
 * it may be on some copies; the client retries with the same request id),
 * DATA_LOSS/INTERNAL from the store. */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "err.h"
#include "log.h"
#include "wop.h"

static void wop_reply_fail(struct wop *op, grpc_status_code code,
			   const char *msg)
{
	struct stored *sd = op->sd;

	while (op != NULL) {
		struct wop *d = op->dups;

		rpc_call_fail(op->call, code, "%s", msg);
		free(op);
		stored_call_end(sd);
		op = d;
	}
}

static void free_op_data(struct wop *op)
{
	free(op->buf);
	free(op->blocks);
	free(op->bptr);
	op->buf = NULL;
	op->blocks = NULL;
	op->bptr = NULL;
}

static void wop_finish_fail(struct wop *op, grpc_status_code code,
			    const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wop_finish_fail(struct wop *op, grpc_status_code code,
			    const char *fmt, ...)
{
	struct stored *sd = op->sd;
	struct segstate *ss = op->ss;
	char msg[OMBRA_ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	free_op_data(op);
	ss->busy = false;
	ss->cur = NULL;
	wop_reply_fail(op, code, msg);
	wop_pump(sd, ss);
}

static void wop_finish_ok(struct wop *op)
{
	struct stored *sd = op->sd;
	struct segstate *ss = op->ss;
	Ombra__V1__StoreWriteResponse resp =
	    OMBRA__V1__STORE_WRITE_RESPONSE__INIT;

	resp.version = op->version;
	resp.prev_version = op->prev_version;
	audit_log(sd->audit,
		  "\"ev\":\"write\",\"node\":%llu,\"volume\":%llu,"
		  "\"segment\":%llu,\"epoch\":%llu,\"version\":%llu,"
		  "\"writer_epoch\":%llu,\"accept_ms\":%llu,"
		  "\"lease_until_ms\":%llu",
		  (unsigned long long)sd->node_id, (unsigned long long)op->vol,
		  (unsigned long long)op->seg, (unsigned long long)op->epoch,
		  (unsigned long long)op->version,
		  (unsigned long long)op->req->writer_epoch,
		  (unsigned long long)op->accept_ms,
		  (unsigned long long)op->lease_until_ms);
	wl_lru_put_chain(sd->lru, op->req->request_id, op->version,
			 op->prev_version);
	metric_inc(sd->m.bytes_written, (double)op->r.len);
	metric_observe(sd->m.write_latency,
		       (double)(uv_hrtime() - op->t0) / 1e9);
	free_op_data(op);
	ss->busy = false;
	ss->cur = NULL;
	while (op != NULL) {
		struct wop *d = op->dups;

		rpc_call_reply(op->call, &resp.base);
		free(op);
		stored_call_end(sd);
		op = d;
	}
	wop_pump(sd, ss);
}

void wop_fail(struct wop *op, grpc_status_code code, const char *fmt, ...)
{
	va_list ap;

	if (op->fail_code != GRPC_STATUS_OK) {
		return; /* the first failure is the one answered */
	}
	op->fail_code = code;
	va_start(ap, fmt);
	vsnprintf(op->fail_msg, sizeof(op->fail_msg), fmt, ap);
	va_end(ap);
}

void wop_phase_done(struct wop *op)
{
	if (--op->phases > 0) {
		return;
	}
	if (op->fail_code != GRPC_STATUS_OK) {
		wop_finish_fail(op, op->fail_code, "%s", op->fail_msg);
	} else {
		wop_finish_ok(op);
	}
}

/* ------------------------------------------------ local write */

static int read_block(struct wop *op, uint64_t off, unsigned char *dst)
{
	uint64_t bad = 0;
	size_t n_bad = 0;
	int rv;

	rv = segstore_read(op->sd->ss, op->vol, off, SEGSTORE_BLOCK_SIZE, dst,
			   NULL, &bad, &n_bad, op->errmsg);
	if (rv != 0 && n_bad > 0) {
		op->has_bad = true;
		op->bad_block = bad;
	}
	return rv;
}

int wop_next_version(struct segstore *s, uint64_t vol, uint64_t seg,
		     uint64_t epoch, uint64_t seq_hint, uint64_t *version,
		     char *errmsg)
{
	uint64_t seq = seq_hint;

	if (seq == 0) {
		struct segstore_segment_info info;
		int rv =
		    segstore_segment_info(s, vol, seg, &info, NULL, 0, errmsg);

		if (rv != 0 && rv != OMBRA_ENOTFOUND) {
			return rv;
		}
		seq = wl_next_seq(rv == 0 ? info.version : 0, epoch);
	}
	return wl_version(epoch, seq, version, errmsg);
}

static void write_work(void *arg)
{
	struct wop *op = arg;
	struct segstore *s = op->sd->ss;
	uint64_t seq = op->seq_hint;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct segstore_segment_info info;

		/* prev_version: the segment's highest version now, which is
		 * the version of the write before this one (writes of a
		 * segment run one at a time, so nothing changes it until
		 * ours is stored). */
		op->rv = segstore_segment_info(s, op->vol, op->seg, &info, NULL,
					       0, op->errmsg);
		if (op->rv != 0 && op->rv != OMBRA_ENOTFOUND) {
			return;
		}
		op->prev_version = op->rv == 0 ? info.version : 0;
		/* A parallel write's version is fixed: it is on the wire. */
		if (!op->parallel) {
			if (seq == 0) {
				seq = wl_next_seq(op->prev_version, op->epoch);
			}
			op->rv = wl_version(op->epoch, seq, &op->version,
					    op->errmsg);
			if (op->rv != 0) {
				return;
			}
		}
		if (op->trim) {
			op->rv = segstore_trim(
			    s, op->vol, (uint32_t)op->segsize, op->r.aoff,
			    op->r.alen, op->version, true, op->errmsg);
		} else {
			op->rv = segstore_write(
			    s, op->vol, (uint32_t)op->segsize, op->r.aoff,
			    op->buf, op->r.alen, op->version, true, op->errmsg);
		}
		if (op->rv != OMBRA_EPRECOND || op->parallel) {
			return;
		}
		seq = 0; /* our sequence was behind the store: re-derive */
	}
}

/* Read the partial head/tail blocks and merge the new bytes. */
static void merge_work(void *arg)
{
	struct wop *op = arg;
	const Ombra__V1__StoreWriteRequest *q = op->req;
	uint64_t last = op->r.aoff + op->r.alen - SEGSTORE_BLOCK_SIZE;

	op->rv = 0;
	if (op->r.head_partial) {
		op->rv = read_block(op, op->r.aoff, op->buf);
	}
	if (op->rv == 0 && op->r.tail_partial &&
	    (last != op->r.aoff || !op->r.head_partial)) {
		op->rv = read_block(op, last, op->buf + (last - op->r.aoff));
	}
	if (op->rv != 0) {
		return;
	}
	wl_merge(&op->r, op->buf, q->zero ? NULL : q->data.data);
	write_work(op);
}

static void write_done(void *arg);

/* The bad head/tail block was repaired (or not): merge again, or fail. */
static void write_repaired(void *arg, int rv, const char *errmsg)
{
	struct wop *op = arg;

	if (rv != 0) {
		wop_finish_fail(op,
				rv == OMBRA_EIO ? GRPC_STATUS_DATA_LOSS
						: ombra_err_to_grpc(rv),
				"the partial block this write must merge with: "
				"%s",
				errmsg);
		return;
	}
	op->has_bad = false;
	op->repaired = true;
	if (work_submit(op->sd, merge_work, write_done, op) != 0) {
		wop_finish_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED,
				"out of memory");
	}
}

static void write_done(void *arg)
{
	struct wop *op = arg;
	struct stored *sd = op->sd;
	struct segstate *ss = op->ss;

	if (op->parallel) {
		/* next_seq was advanced when the version was taken, so a
		 * failed version is never given to another write. */
		if (op->rv == OMBRA_EPRECOND) {
			ss->next_seq = 0;
		}
		if (op->rv != 0) {
			log_error("volume %llu segment %llu: local write "
				  "failed: %s",
				  (unsigned long long)op->vol,
				  (unsigned long long)op->seg, op->errmsg);
			wop_fail(op, ombra_err_to_grpc(op->rv),
				 "local write: %s", op->errmsg);
		}
		wop_phase_done(op);
		return;
	}
	if (op->rv == 0) {
		ss->seq_epoch = op->epoch;
		ss->next_seq = segstore_version_seq(op->version) + 1;
		op->phases = 1;
		wop_replicate(op);
		return;
	}
	ss->next_seq = 0; /* derive it from the store next time */
	if (op->has_bad && !op->repaired) {
		/* The partial block we must merge with is bad: repair it
		 * from another copy (the segment's queue waits), then merge
		 * again. */
		repair_blocks(sd, op->vol, op->seg, &op->bad_block, 1,
			      write_repaired, op);
		return;
	}
	log_error("volume %llu segment %llu: local write failed: %s",
		  (unsigned long long)op->vol, (unsigned long long)op->seg,
		  op->errmsg);
	wop_finish_fail(
	    op, op->has_bad ? GRPC_STATUS_DATA_LOSS : ombra_err_to_grpc(op->rv),
	    "local write: %s", op->errmsg);
}

/* Still allowed to write this segment as primary? 0 or a status. */
static grpc_status_code check_primary(struct stored *sd, struct wop *op,
				      char *msg, size_t len)
{
	struct sm_volume *v = sm_find(&sd->maps, op->vol);
	const struct sm_seg *p;

	if (!node_lease_valid(sd)) {
		snprintf(msg, len, "lease expired: metad unreachable");
		return GRPC_STATUS_UNAVAILABLE;
	}
	if (v == NULL) {
		snprintf(msg, len, "volume %llu does not exist",
			 (unsigned long long)op->vol);
		return GRPC_STATUS_NOT_FOUND;
	}
	if (op->seg >= v->n_segs) {
		snprintf(msg, len, "segment %llu beyond volume %s's %llu",
			 (unsigned long long)op->seg, v->name,
			 (unsigned long long)v->n_segs);
		return GRPC_STATUS_INVALID_ARGUMENT;
	}
	p = &v->segs[op->seg];
	if (p->primary != sd->node_id) {
		snprintf(msg, len,
			 "node %llu is not the primary of segment %llu of "
			 "volume %s (node %u is)",
			 (unsigned long long)sd->node_id,
			 (unsigned long long)op->seg, v->name, p->primary);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (op->epoch < p->epoch) {
		snprintf(msg, len, "stale lease epoch %llu, current %u",
			 (unsigned long long)op->epoch, p->epoch);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (op->epoch > p->epoch) {
		snprintf(msg, len,
			 "lease epoch %llu is newer than this node's %u for "
			 "segment %llu; refresh the shard map",
			 (unsigned long long)op->epoch, p->epoch,
			 (unsigned long long)op->seg);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (op->req->writer_epoch != 0 &&
	    op->req->writer_epoch < v->writer_epoch) {
		snprintf(msg, len,
			 "stale writer epoch %llu, current %llu: another "
			 "proxy holds the writer lease of volume %s",
			 (unsigned long long)op->req->writer_epoch,
			 (unsigned long long)v->writer_epoch, v->name);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (op->ss != NULL && op->ss->max_epoch > op->epoch) {
		snprintf(msg, len,
			 "stale lease epoch %llu, current %llu (seen from "
			 "another primary)",
			 (unsigned long long)op->epoch,
			 (unsigned long long)op->ss->max_epoch);
		return GRPC_STATUS_FAILED_PRECONDITION;
	}
	if (op->req->writer_epoch > v->writer_epoch) {
		v->writer_epoch = op->req->writer_epoch; /* highest seen */
	}
	return GRPC_STATUS_OK;
}

/* Start op, the segment's current write.  An aligned write whose
 * sequence is known takes its version now and is replicated while it is
 * written locally (one disk sync less on the critical path); others are
 * stored first (version from the store, head/tail merge), then
 * replicated.  Returns 0 or OMBRA_ENOMEM (nothing started). */
static int start_write(struct stored *sd, struct segstate *ss, struct wop *op)
{
	char errmsg[OMBRA_ERRMSG_LEN];

	op->parallel =
	    !op->r.head_partial && !op->r.tail_partial && op->seq_hint != 0 &&
	    wl_version(op->epoch, op->seq_hint, &op->version, errmsg) == 0;
	if (!op->trim) {
		op->buf = malloc(op->r.alen);
		if (op->buf == NULL) {
			return OMBRA_ENOMEM;
		}
		if (op->parallel) {
			memcpy(op->buf, op->req->data.data, op->r.alen);
		}
	}
	if (work_submit(sd, op->trim || op->parallel ? write_work : merge_work,
			write_done, op) != 0) {
		return OMBRA_ENOMEM;
	}
	if (op->parallel) {
		ss->next_seq = op->seq_hint + 1;
		op->phases = 2;
		wop_replicate(op);
	}
	return 0;
}

void wop_pump(struct stored *sd, struct segstate *ss)
{
	while (!ss->busy && ss->q_head != NULL) {
		struct wop *op = ss->q_head;
		char msg[OMBRA_ERRMSG_LEN];
		grpc_status_code code;

		ss->q_head = op->next;
		if (ss->q_head == NULL) {
			ss->q_tail = NULL;
		}
		op->next = NULL;
		ss->busy = true;
		ss->cur = op;
		code = check_primary(sd, op, msg, sizeof(msg));
		if (code != GRPC_STATUS_OK) {
			ss->busy = false;
			ss->cur = NULL;
			wop_reply_fail(op, code, msg);
			continue;
		}
		if (sd->audit != NULL) {
			uint64_t mono = uv_hrtime() / 1000000u;

			op->accept_ms = audit_now_ms();
			op->lease_until_ms =
			    op->accept_ms + (sd->lease_until > mono
						 ? sd->lease_until - mono
						 : 0);
		}
		op->seq_hint = ss->seq_epoch == op->epoch ? ss->next_seq : 0;
		if (start_write(sd, ss, op) != 0) {
			wop_finish_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED,
					"out of memory");
			return; /* wop_finish_fail pumped */
		}
	}
}

/* ------------------------------------------------ handler */

static bool attach_dup(struct segstate *ss, struct wop *op)
{
	const char *id = op->req->request_id;

	if (id == NULL || id[0] == '\0') {
		return false;
	}
	for (struct wop *q = ss->cur != NULL ? ss->cur : ss->q_head; q != NULL;
	     q = q == ss->cur ? ss->q_head : q->next) {
		if (strcmp(q->req->request_id, id) == 0) {
			op->dups = q->dups;
			q->dups = op;
			return true;
		}
	}
	return false;
}

static void write_mapped(void *arg, int rv)
{
	struct wop *op = arg;
	struct stored *sd = op->sd;
	const Ombra__V1__StoreWriteRequest *q = op->req;
	struct sm_volume *v;
	char msg[OMBRA_ERRMSG_LEN];
	grpc_status_code code;
	uint64_t len = q->zero ? q->length_bytes : q->data.len;

	/* A failed refetch leaves the cached map, which is used. */
	v = sm_find(&sd->maps, op->vol);
	if (v == NULL) {
		bool gone = rv == 0 || rv == OMBRA_ENOTFOUND;

		snprintf(msg, sizeof(msg), "volume %llu %s",
			 (unsigned long long)op->vol,
			 gone ? "does not exist"
			      : "unavailable: cannot fetch its shard map from "
				"metad");
		wop_reply_fail(
		    op, gone ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_UNAVAILABLE,
		    msg);
		return;
	}
	if (q->segment_size_bytes != 0 && q->segment_size_bytes != v->segsize) {
		snprintf(msg, sizeof(msg),
			 "segment_size_bytes %llu does not match volume %s's "
			 "%llu",
			 (unsigned long long)q->segment_size_bytes, v->name,
			 (unsigned long long)v->segsize);
		wop_reply_fail(op, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return;
	}
	op->segsize = v->segsize;
	if (wl_check_range(op->seg, v->segsize, v->size, q->offset_bytes, len,
			   false, &op->r, msg) != 0) {
		if (!op->refetched &&
		    (maps_beyond(v, op->seg, q->offset_bytes, len) ||
		     maps_may_lag(sd, v))) {
			/* The volume may have grown since our fetch. */
			op->refetched = true;
			maps_need(sd, op->vol, op->seg, MAPS_REFETCH,
				  write_mapped, op);
			return;
		}
		wop_reply_fail(op, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return;
	}
	op->trim = q->zero && !op->r.head_partial && !op->r.tail_partial;
	op->ss = segtab_get(&sd->segs, op->vol, op->seg);
	if (op->ss == NULL) {
		wop_reply_fail(op, GRPC_STATUS_RESOURCE_EXHAUSTED,
			       "out of memory");
		return;
	}
	code = check_primary(sd, op, msg, sizeof(msg));
	if (code == GRPC_STATUS_FAILED_PRECONDITION && !op->refetched &&
	    maps_may_lag(sd, v)) {
		/* Our map may lag metad (a promotion just happened). */
		op->refetched = true;
		maps_need(sd, op->vol, op->seg, MAPS_REFETCH, write_mapped, op);
		return;
	}
	if (code != GRPC_STATUS_OK) {
		wop_reply_fail(op, code, msg);
		return;
	}
	if (attach_dup(op->ss, op)) {
		return;
	}
	if (op->ss->q_tail != NULL) {
		op->ss->q_tail->next = op;
	} else {
		op->ss->q_head = op;
	}
	op->ss->q_tail = op;
	wop_pump(sd, op->ss);
}

void svc_write(struct rpc_call *call, const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__StoreWriteRequest *q =
	    (const Ombra__V1__StoreWriteRequest *)req;
	struct stored *sd = data;
	struct wop *op;
	uint64_t done_version, done_prev;

	if (sd->stopping || !sd->serving) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE, "%s",
			      sd->stopping ? "shutting down" : "starting");
		return;
	}
	if (q->volume_id == 0 || q->lease_epoch == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume_id and lease_epoch are required");
		return;
	}
	if (q->zero ? (q->data.len != 0 || q->length_bytes == 0)
		    : (q->data.len == 0 || (q->length_bytes != 0 &&
					    q->length_bytes != q->data.len))) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      q->zero ? "zero write: data must be empty and "
					"length_bytes > 0"
				      : "write: data must be non-empty and "
					"length_bytes 0 or len(data)");
		return;
	}
	done_version = wl_lru_get_chain(sd->lru, q->request_id, &done_prev);
	if (done_version != 0) {
		Ombra__V1__StoreWriteResponse resp =
		    OMBRA__V1__STORE_WRITE_RESPONSE__INIT;

		resp.version = done_version;
		resp.prev_version = done_prev;
		rpc_call_reply(call, &resp.base);
		return;
	}
	if (!node_lease_valid(sd)) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE,
			      "lease expired: metad unreachable");
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
	op->vol = q->volume_id;
	op->seg = q->segment_index;
	op->epoch = q->lease_epoch;
	op->t0 = uv_hrtime();
	maps_need(sd, op->vol, op->seg, op->epoch, write_mapped, op);
}
