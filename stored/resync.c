/* resync.c: re-sync of replicas that return after a failure (DESIGN.md
 * "a replica that fails is re-synced when it returns").
 *
 * For a segment whose primary is this node and whose resync_node_ids hold
 * a node that metad reports NODE_UP: new writes of the segment are
 * forwarded to that node (best effort, svc_write.c), then its block
 * versions (GetSegmentInfo) are compared with ours and every block it
 * lacks or holds older is pushed (Replicate resync=true, <= 1 MiB per
 * call), then ReportReplicaSynced puts it back in the in-sync set.  A
 * block it holds NEWER than ours is a write that was never acknowledged
 * (its former primary died first): we rewrite our block under a fresh
 * version and push that, so the copies agree again.  One
 * segment at a time, in the background; checked every second and after
 * every shard-map change.
 *
 * Failure: any failed step (peer down again, a forwarded write that did
 * not reach it, a bad local block, metad unreachable) abandons the round
 * with a log line; the segment is tried again on the next tick. */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "err.h"
#include "log.h"
#include "stored.h"

#define TICK_MS 1000
#define BATCH_BLOCKS (1024 * 1024 / SEGSTORE_BLOCK_SIZE)

struct rs {
	struct stored *sd;
	uint64_t vol, seg, segsize, epoch, node;
	uint64_t first, n_blocks;
	uint64_t *peer_v;   /* n_blocks */
	uint64_t *our_v;    /* n_blocks */
	unsigned char *buf; /* segment */
	uint64_t bad[4];
	size_t n_bad;
	uint64_t *todo; /* block offsets inside the segment */
	size_t n_todo, pos, pushed;
	uint64_t *restamp; /* blocks the peer holds newer than we do */
	size_t n_restamp;
	uint64_t seq_hint, version;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__ReplicaReportResponse *report;
};

static void rs_end(struct rs *r, bool ok)
{
	struct stored *sd = r->sd;
	struct segstate *ss = segtab_find(&sd->segs, r->vol, r->seg);

	if (ss != NULL) {
		ss->forward_node = 0;
		ss->forward_failed = false;
	}
	if (!ok) {
		log_warn("resync of node %llu for volume %llu segment %llu "
			 "abandoned: %s; retrying later",
			 (unsigned long long)r->node,
			 (unsigned long long)r->vol, (unsigned long long)r->seg,
			 r->errmsg);
	}
	if (r->report != NULL) {
		protobuf_c_message_free_unpacked(&r->report->base, NULL);
	}
	free(r->peer_v);
	free(r->our_v);
	free(r->buf);
	free(r->todo);
	free(r->restamp);
	free(r);
	sd->resync_running = false;
	if (ok) {
		resync_kick(sd);
	}
}

static struct rpc_channel *rs_channel(struct rs *r)
{
	const char *addr = stored_node_address(r->sd, r->node);

	if (addr == NULL) {
		ombra_errmsg_printf(r->errmsg, "address of node %llu unknown",
				    (unsigned long long)r->node);
		return NULL;
	}
	return peer_channel(r->sd, addr, r->errmsg);
}

/* ------------------------------------------------ step 4: report */

static void report_work(void *arg)
{
	struct rs *r = arg;
	Ombra__V1__ReplicaReportRequest req =
	    OMBRA__V1__REPLICA_REPORT_REQUEST__INIT;
	struct rpc_status st;
	char rid[64];

	req.volume_id = r->vol;
	req.segment_index = r->seg;
	req.node_id = r->node;
	req.lease_epoch = r->epoch;
	req.primary_node_id = r->sd->node_id;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;
	r->rv = meta_call(
	    &r->sd->meta_report, &ombra__v1__meta_service__descriptor,
	    "ReportReplicaSynced", &req.base, (ProtobufCMessage **)&r->report,
	    STORED_META_TIMEOUT_MS, &st);
	if (r->rv != 0) {
		ombra_errmsg_printf(r->errmsg, "ReportReplicaSynced: %s: %s",
				    rpc_status_name(st.code), st.message);
	}
}

static void report_done(void *arg)
{
	struct rs *r = arg;
	struct stored *sd = r->sd;
	struct sm_volume *v;

	if (r->rv != 0) {
		rs_end(r, false);
		return;
	}
	v = sm_find(&sd->maps, r->vol);
	if (v != NULL && r->report->placement != NULL) {
		char errmsg[OMBRA_ERRMSG_LEN];

		if (sm_volume_set_segment(v, r->report->placement, errmsg) !=
		    0) {
			log_warn("resync: placement from metad: %s", errmsg);
		}
	}
	metric_inc(sd->m.resync_segments, 1.0);
	sd->resync_batch++;
	log_msg(r->pushed > 0 ? LOG_INFO : LOG_DEBUG,
		"resync: node %llu is in sync again for volume %llu segment "
		"%llu (%zu blocks pushed)",
		(unsigned long long)r->node, (unsigned long long)r->vol,
		(unsigned long long)r->seg, r->pushed);
	rs_end(r, true);
}

static void rs_report(struct rs *r)
{
	struct segstate *ss = segtab_find(&r->sd->segs, r->vol, r->seg);

	if (ss != NULL && ss->forward_failed) {
		ombra_errmsg_printf(r->errmsg,
				    "a forwarded write did not reach it");
		rs_end(r, false);
		return;
	}
	if (work_submit(r->sd, report_work, report_done, r) != 0) {
		ombra_errmsg_printf(r->errmsg, "out of memory");
		rs_end(r, false);
	}
}

/* ------------------------------------------------ step 3: push */

static void rs_push(struct rs *r);

static void push_cb(void *data, const struct rpc_status *st,
		    const ProtobufCMessage *resp)
{
	struct rs *r = data;

	(void)resp;
	peer_failed(r->sd, r->node, st->code);
	if (st->code != GRPC_STATUS_OK) {
		ombra_errmsg_printf(r->errmsg, "Replicate: %s: %s",
				    rpc_status_name(st->code), st->message);
		rs_end(r, false);
		return;
	}
	rs_push(r);
}

static void rs_push(struct rs *r)
{
	Ombra__V1__ReplicateRequest q = OMBRA__V1__REPLICATE_REQUEST__INIT;
	Ombra__V1__BlockData blocks[BATCH_BLOCKS];
	Ombra__V1__BlockData *bp[BATCH_BLOCKS];
	struct rpc_channel *ch;
	size_t n = 0;

	if (r->sd->stopping) {
		ombra_errmsg_printf(r->errmsg, "shutting down");
		rs_end(r, false);
		return;
	}
	if (r->pos == r->n_todo) {
		rs_report(r);
		return;
	}
	while (r->pos < r->n_todo && n < BATCH_BLOCKS) {
		uint64_t i = r->todo[r->pos++];
		Ombra__V1__BlockData *b = &blocks[n];
		unsigned char *data = r->buf + i * SEGSTORE_BLOCK_SIZE;

		ombra__v1__block_data__init(b);
		b->block_index = r->first + i;
		b->version = r->our_v[i];
		b->crc32c = crc_block(data, r->vol, b->block_index, b->version);
		b->data.data = data;
		b->data.len = SEGSTORE_BLOCK_SIZE;
		bp[n++] = b;
	}
	q.volume_id = r->vol;
	q.segment_index = r->seg;
	q.lease_epoch = r->epoch;
	q.segment_size_bytes = r->segsize;
	q.primary_node_id = r->sd->node_id;
	q.resync = true;
	q.blocks = bp;
	q.n_blocks = n;
	r->pushed += n;
	ch = rs_channel(r);
	if (ch == NULL ||
	    rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
			      "Replicate", &q.base, 10000, push_cb, r,
			      NULL) != 0) {
		if (ch != NULL) {
			ombra_errmsg_printf(r->errmsg, "Replicate not started");
		}
		rs_end(r, false);
	}
}

/* ------------------------------------------------ step 2b: restamp
 *
 * The peer holds a block newer than ours: a write its former primary
 * never acknowledged (it died before replicating it).  A block whose copy
 * verifies is only replaced by a newer version, so we rewrite our own
 * block under a fresh version of our epoch (as a write, with the segment's
 * write queue held) and push that. */

static void restamp_work(void *arg)
{
	struct rs *r = arg;
	struct segstore *s = r->sd->ss;
	size_t kept = 0;

	r->rv = wop_next_version(s, r->vol, r->seg, r->epoch, r->seq_hint,
				 &r->version, r->errmsg);
	/* Above every version the peer holds for these blocks. */
	for (size_t k = 0; r->rv == 0 && k < r->n_restamp; k++) {
		uint64_t pv = r->peer_v[r->restamp[k]];

		if (segstore_version_epoch(pv) > r->epoch) {
			ombra_errmsg_printf(
			    r->errmsg,
			    "node %llu holds epoch %u, newer than "
			    "ours (%llu)",
			    (unsigned long long)r->node,
			    segstore_version_epoch(pv),
			    (unsigned long long)r->epoch);
			r->rv = OMBRA_EPRECOND;
		} else if (pv >= r->version) {
			r->version = pv + 1;
		}
	}
	for (size_t k = 0; r->rv == 0 && k < r->n_restamp; k++) {
		uint64_t i = r->restamp[k];
		uint64_t off = (r->first + i) * SEGSTORE_BLOCK_SIZE;
		unsigned char *data = r->buf + i * SEGSTORE_BLOCK_SIZE;
		size_t n_bad = 0;

		/* Re-read under the queue: a write may have landed since. */
		r->rv = segstore_read(s, r->vol, off, SEGSTORE_BLOCK_SIZE, data,
				      &r->our_v[i], NULL, &n_bad, r->errmsg);
		if (r->rv != 0 || r->our_v[i] > r->peer_v[i]) {
			continue; /* newer now: pushed as it is */
		}
		r->rv = segstore_write(s, r->vol, (uint32_t)r->segsize, off,
				       data, SEGSTORE_BLOCK_SIZE, r->version,
				       true, r->errmsg);
		if (r->rv == 0) {
			r->our_v[i] = r->version;
			r->restamp[kept++] = i;
		}
	}
	r->n_restamp = kept;
}

static void restamp_done(void *arg)
{
	struct rs *r = arg;
	struct segstate *ss = segtab_find(&r->sd->segs, r->vol, r->seg);

	ss->busy = false;
	if (r->rv == 0) {
		ss->seq_epoch = r->epoch;
		ss->next_seq = segstore_version_seq(r->version) + 1;
	} else {
		ss->next_seq = 0;
	}
	wop_pump(r->sd, ss);
	if (r->rv != 0) {
		rs_end(r, false);
		return;
	}
	for (uint64_t i = 0; i < r->n_blocks; i++) {
		bool queued = false;

		for (size_t k = 0; k < r->n_todo; k++) {
			queued |= r->todo[k] == i;
		}
		if (!queued && r->our_v[i] > r->peer_v[i]) {
			r->todo[r->n_todo++] = i;
		}
	}
	log_info("resync: volume %llu segment %llu: %zu blocks node %llu "
		 "holds newer (never acknowledged) rewritten as version %llu",
		 (unsigned long long)r->vol, (unsigned long long)r->seg,
		 r->n_restamp, (unsigned long long)r->node,
		 (unsigned long long)r->version);
	metric_inc(r->sd->m.resync_blocks, (double)r->n_todo);
	rs_push(r);
}

static void rs_restamp(struct rs *r)
{
	struct segstate *ss = segtab_find(&r->sd->segs, r->vol, r->seg);

	if (ss == NULL || ss->busy) {
		ombra_errmsg_printf(r->errmsg, "segment busy with a write");
		rs_end(r, false);
		return;
	}
	ss->busy = true;
	r->seq_hint = ss->seq_epoch == r->epoch ? ss->next_seq : 0;
	if (work_submit(r->sd, restamp_work, restamp_done, r) != 0) {
		ss->busy = false;
		wop_pump(r->sd, ss);
		ombra_errmsg_printf(r->errmsg, "out of memory");
		rs_end(r, false);
	}
}

/* ------------------------------------------------ step 2: our side */

static void local_work(void *arg)
{
	struct rs *r = arg;
	struct segstore_segment_info info;
	bool differ = false;

	/* Versions first: most segments of a returning node differ in a few
	 * blocks or none, and then nothing needs to be read. */
	r->rv = segstore_segment_info(r->sd->ss, r->vol, r->seg, &info,
				      r->our_v, r->n_blocks, r->errmsg);
	if (r->rv == OMBRA_ENOTFOUND) {
		memset(r->our_v, 0, r->n_blocks * sizeof(uint64_t));
		r->rv = 0;
	}
	for (uint64_t i = 0; r->rv == 0 && i < r->n_blocks; i++) {
		differ |= r->our_v[i] != r->peer_v[i];
	}
	if (r->rv != 0 || !differ) {
		return;
	}
	r->rv = segstore_read(r->sd->ss, r->vol, r->first * SEGSTORE_BLOCK_SIZE,
			      r->segsize, r->buf, r->our_v, NULL, &r->n_bad,
			      r->errmsg);
}

static void local_done(void *arg)
{
	struct rs *r = arg;

	if (r->rv != 0) {
		rs_end(r, false);
		return;
	}
	r->todo = calloc(r->n_blocks, sizeof(uint64_t));
	r->restamp = calloc(r->n_blocks, sizeof(uint64_t));
	if (r->todo == NULL || r->restamp == NULL) {
		ombra_errmsg_printf(r->errmsg, "out of memory");
		rs_end(r, false);
		return;
	}
	for (uint64_t i = 0; i < r->n_blocks; i++) {
		if (r->our_v[i] != 0 && r->our_v[i] > r->peer_v[i]) {
			r->todo[r->n_todo++] = i;
		} else if (r->peer_v[i] > r->our_v[i]) {
			r->restamp[r->n_restamp++] = i;
		}
	}
	if (r->n_restamp > 0) {
		rs_restamp(r);
		return;
	}
	log_msg(r->n_todo > 0 ? LOG_INFO : LOG_DEBUG,
		"resync: volume %llu segment %llu to node %llu: %zu of %llu "
		"blocks to push",
		(unsigned long long)r->vol, (unsigned long long)r->seg,
		(unsigned long long)r->node, r->n_todo,
		(unsigned long long)r->n_blocks);
	metric_inc(r->sd->m.resync_blocks, (double)r->n_todo);
	rs_push(r);
}

/* ------------------------------------------------ step 1: peer side */

static void info_cb(void *data, const struct rpc_status *st,
		    const ProtobufCMessage *resp)
{
	struct rs *r = data;
	const Ombra__V1__SegmentInfoResponse *s =
	    (const Ombra__V1__SegmentInfoResponse *)resp;

	peer_failed(r->sd, r->node, st->code);
	if (st->code != GRPC_STATUS_OK) {
		ombra_errmsg_printf(r->errmsg, "GetSegmentInfo: %s: %s",
				    rpc_status_name(st->code), st->message);
		rs_end(r, false);
		return;
	}
	for (size_t i = 0; i < s->n_block_versions && i < r->n_blocks; i++) {
		r->peer_v[i] = s->block_versions[i];
	}
	if (work_submit(r->sd, local_work, local_done, r) != 0) {
		ombra_errmsg_printf(r->errmsg, "out of memory");
		rs_end(r, false);
	}
}

static void rs_begin(struct stored *sd, const struct sm_volume *v, uint64_t seg,
		     uint64_t node)
{
	Ombra__V1__SegmentInfoRequest q = OMBRA__V1__SEGMENT_INFO_REQUEST__INIT;
	struct rs *r = calloc(1, sizeof(*r));
	struct segstate *ss = segtab_get(&sd->segs, v->id, seg);
	struct rpc_channel *ch;

	if (r == NULL || ss == NULL) {
		free(r);
		return;
	}
	sd->resync_running = true;
	r->sd = sd;
	r->vol = v->id;
	r->seg = seg;
	r->segsize = v->segsize;
	r->epoch = v->segs[seg].epoch;
	r->node = node;
	r->n_blocks = v->segsize / SEGSTORE_BLOCK_SIZE;
	r->first = seg * r->n_blocks;
	r->peer_v = calloc(r->n_blocks, sizeof(uint64_t));
	r->our_v = calloc(r->n_blocks, sizeof(uint64_t));
	r->buf = malloc(v->segsize);
	if (r->peer_v == NULL || r->our_v == NULL || r->buf == NULL) {
		ombra_errmsg_printf(r->errmsg, "out of memory");
		rs_end(r, false);
		return;
	}
	log_debug("resync: node %llu for volume %llu segment %llu starts "
		  "(new writes are forwarded to it)",
		  (unsigned long long)node, (unsigned long long)v->id,
		  (unsigned long long)seg);
	/* Forward first, compare after: every write either lands in our
	 * store before we read it or is forwarded. */
	ss->forward_node = node;
	ss->forward_failed = false;
	q.volume_id = r->vol;
	q.segment_index = r->seg;
	ch = rs_channel(r);
	if (ch == NULL ||
	    rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
			      "GetSegmentInfo", &q.base, 5000, info_cb, r,
			      NULL) != 0) {
		rs_end(r, false);
	}
}

void resync_kick(struct stored *sd)
{
	if (sd->resync_running || sd->stopping || !sd->serving ||
	    !node_lease_valid(sd)) {
		return;
	}
	for (struct sm_volume *v = sd->maps.head; v != NULL; v = v->next) {
		for (uint64_t i = 0; i < v->n_segs; i++) {
			const struct sm_seg *p = &v->segs[i];

			if (p->primary != sd->node_id || p->n_resync == 0) {
				continue;
			}
			for (unsigned k = 0; k < p->n_resync; k++) {
				const struct sm_node *n =
				    sm_volume_node(v, p->resync[k]);

				if (n != NULL &&
				    n->state ==
					OMBRA__V1__NODE_STATE__NODE_UP &&
				    n->id != sd->node_id) {
					rs_begin(sd, v, i, n->id);
					return;
				}
			}
		}
	}
	if (sd->resync_batch > 0) {
		log_info("resync: %llu segments re-synced, none left to do",
			 (unsigned long long)sd->resync_batch);
		sd->resync_batch = 0;
	}
}

static void resync_tick(uv_timer_t *t)
{
	resync_kick(t->data);
}

void resync_start(struct stored *sd)
{
	uv_timer_start(&sd->resync_timer, resync_tick, TICK_MS, TICK_MS);
}
