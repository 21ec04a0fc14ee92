/* foreign_pull.c: copy a block range of a segment from an up-to-date copy
 * into a foreign copy on this node (Pull, shadow fill, anti-entropy).
 *
 * Sources, in order: the segment's primary, then its in-sync replicas,
 * from this node's shard map.  Each piece (FOREIGN_PULL_CHUNK bytes) is a
 * StoreService.Read without any_copy (so the source answers only while it
 * is an in-sync copy holding its lease) that returns the data, each
 * block's version and crc, and the segment's version V read with the
 * data.  Every block's crc is checked against its data and version, the
 * blocks are stored with their source versions (segstore_apply_if_newer,
 * not synced: a block already newer here is kept), and only then are they
 * marked present and the watermark set by fc_pulled() (V for an empty
 * copy, else min(watermark, V)).  Blocks never written at the source
 * (version 0) are present zeros: nothing is stored for them.
 *
 * The pull keeps no pointer to the record across a callback: it finds it
 * again by (volume, segment) and checks its generation, so a copy dropped
 * (or dropped and created again) meanwhile is never written into.  A pull
 * into a volume whose dropped copies' data is being deleted is not
 * refused: its store jobs (foreign_apply()) wait for the deletion.
 *
 * Failure: a source that fails or answers something malformed is skipped
 * (logged) and the next asked; UNAVAILABLE with the last source's message
 * when none answered; DATA_LOSS-like OMBRA_EPROTO never happens (a bad
 * crc is treated as a failed source); OMBRA_EPRECOND when the copy was
 * dropped during the pull; store errors as they come. */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "err.h"
#include "foreign.h"
#include "log.h"

struct fpull {
	struct stored *sd;
	uint64_t vol, seg, segsize, gen;
	uint32_t first, n, cur, chunk; /* blocks inside the segment */
	uint64_t cand[SM_MAX_COPIES + 1];
	size_t n_cand, ci;
	uint64_t pulled, source;
	/* the piece being stored */
	unsigned char *buf;
	struct segstore_block *blk;
	size_t n_blk;
	uint64_t seg_version;
	/* foreign_unix_ms() when the Read of this piece was sent: a copy at
	 * seg_version is confirmed current then, not when the answer came
	 * (a write may be acknowledged in between) */
	uint64_t asked_ms;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
	foreign_pull_cb done;
	void *arg;
};

static struct fcent *fp_record(struct fpull *p)
{
	struct fcent *e = foreign_find(p->sd, p->vol, p->seg);

	return e != NULL && e->gen == p->gen ? e : NULL;
}

static void fp_finish(struct fpull *p, int rv)
{
	struct fcent *e = fp_record(p);
	struct stored *sd = p->sd;

	if (e != NULL) {
		e->pulls--;
	}
	p->done(p->arg, rv, rv != 0 ? p->errmsg : "", p->pulled, p->source);
	free(p->buf);
	free(p->blk);
	free(p);
	stored_call_end(sd);
}

static void fp_ask(struct fpull *p);

static void fp_next(struct fpull *p)
{
	if (p->cur >= p->n) {
		fp_finish(p, 0);
		return;
	}
	if (p->sd->stopping) {
		ombra_errmsg_printf(p->errmsg, "shutting down");
		fp_finish(p, OMBRA_EUNAVAIL);
		return;
	}
	p->chunk = p->n - p->cur;
	if (p->chunk > FOREIGN_PULL_CHUNK / SEGSTORE_BLOCK_SIZE) {
		p->chunk = (uint32_t)(FOREIGN_PULL_CHUNK / SEGSTORE_BLOCK_SIZE);
	}
	p->ci = 0;
	fp_ask(p);
}

static void fp_apply_work(void *arg)
{
	struct fpull *p = arg;

	p->rv = 0;
	if (p->n_blk > 0) {
		/* Not synced: a foreign copy is soft state (foreign_rep.c). */
		p->rv = segstore_apply_if_newer(
		    p->sd->ss, p->vol, (uint32_t)p->segsize, p->blk, p->n_blk,
		    false, NULL, p->errmsg);
	}
}

static void fp_applied(void *arg)
{
	struct fpull *p = arg;
	struct fcent *e = fp_record(p);
	uint32_t first = p->first + p->cur;

	if (p->rv != 0) {
		ombra_errmsg_wrapf(p->errmsg, "storing pulled blocks");
		fp_finish(p, p->rv);
		return;
	}
	if (e == NULL) {
		ombra_errmsg_printf(p->errmsg,
				    "the copy was dropped during the pull");
		fp_finish(p, OMBRA_EPRECOND);
		return;
	}
	for (uint32_t i = 0; i < p->chunk; i++) {
		p->pulled +=
		    fc_present(&e->c, first + i) ? 0 : SEGSTORE_BLOCK_SIZE;
	}
	fc_pulled(&e->c, first, p->chunk, p->seg_version, p->asked_ms);
	metric_inc(p->sd->fg.m_pulled,
		   (double)p->n_blk * SEGSTORE_BLOCK_SIZE); /* stored bytes */
	p->source = p->cand[p->ci];
	p->cur += p->chunk;
	fp_next(p);
}

/* Check the answer and prepare the blocks to store; NULL or why not. */
static const char *fp_take(struct fpull *p,
			   const Ombra__V1__StoreReadResponse *r)
{
	uint64_t base =
	    p->seg * (p->segsize / SEGSTORE_BLOCK_SIZE) + p->first + p->cur;

	if (r->data.len != (size_t)p->chunk * SEGSTORE_BLOCK_SIZE ||
	    r->n_block_versions != p->chunk || r->n_block_crcs != p->chunk) {
		return "malformed answer";
	}
	memcpy(p->buf, r->data.data, r->data.len);
	p->n_blk = 0;
	for (uint32_t i = 0; i < p->chunk; i++) {
		unsigned char *d = p->buf + (size_t)i * SEGSTORE_BLOCK_SIZE;
		uint64_t v = r->block_versions[i];

		if (crc_block(d, p->vol, base + i, v) != r->block_crcs[i]) {
			return "a block fails its checksum in transit";
		}
		/* A block newer than segment_version is fine: a write ran
		 * during the source's read, and the data is still at least
		 * as new as the segment at that version. */
		if (v != 0) {
			p->blk[p->n_blk++] =
			    (struct segstore_block){.block = base + i,
						    .version = v,
						    .crc = r->block_crcs[i],
						    .data = d};
		}
	}
	p->seg_version = r->segment_version;
	return NULL;
}

static void fp_read_cb(void *data, const struct rpc_status *st,
		       const ProtobufCMessage *resp)
{
	struct fpull *p = data;
	const char *why = NULL;

	peer_failed(p->sd, p->cand[p->ci], st->code);
	if (st->code != GRPC_STATUS_OK) {
		why = st->message;
	} else {
		why = fp_take(p, (const Ombra__V1__StoreReadResponse *)resp);
	}
	if (why != NULL) {
		log_warn("pull of volume %llu segment %llu from node %llu: %s",
			 (unsigned long long)p->vol, (unsigned long long)p->seg,
			 (unsigned long long)p->cand[p->ci], why);
		ombra_errmsg_printf(p->errmsg, "node %llu: %s",
				    (unsigned long long)p->cand[p->ci], why);
		p->ci++;
		fp_ask(p);
		return;
	}
	if (foreign_apply(p->sd, p->vol, p->seg, fp_apply_work, fp_applied,
			  p) != 0) {
		ombra_errmsg_printf(p->errmsg, "out of memory");
		fp_finish(p, OMBRA_ENOMEM);
	}
}

static void fp_ask(struct fpull *p)
{
	struct stored *sd = p->sd;
	Ombra__V1__StoreReadRequest q = OMBRA__V1__STORE_READ_REQUEST__INIT;

	q.volume_id = p->vol;
	q.segment_index = p->seg;
	q.segment_size_bytes = p->segsize;
	q.offset_bytes = p->seg * p->segsize +
			 (uint64_t)(p->first + p->cur) * SEGSTORE_BLOCK_SIZE;
	q.length_bytes = (uint64_t)p->chunk * SEGSTORE_BLOCK_SIZE;
	while (p->ci < p->n_cand) {
		const char *addr = stored_node_address(sd, p->cand[p->ci]);
		char errmsg[OMBRA_ERRMSG_LEN];
		struct rpc_channel *ch =
		    addr != NULL ? peer_channel(sd, addr, errmsg) : NULL;

		p->asked_ms = foreign_unix_ms();
		if (ch != NULL &&
		    rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
				      "Read", &q.base,
				      STORED_PEER_READ_TIMEOUT_MS, fp_read_cb,
				      p, NULL) == 0) {
			return;
		}
		ombra_errmsg_printf(p->errmsg, "node %llu: not reachable",
				    (unsigned long long)p->cand[p->ci]);
		p->ci++;
	}
	ombra_errmsg_wrapf(p->errmsg,
			   "no up-to-date copy of segment %llu "
			   "could be read",
			   (unsigned long long)p->seg);
	fp_finish(p, OMBRA_EUNAVAIL);
}

static void fp_add_cand(struct fpull *p, uint64_t node)
{
	if (node != 0 && node != p->sd->node_id) {
		p->cand[p->n_cand++] = node;
	}
}

void foreign_pull(struct stored *sd, struct fcent *e, uint32_t first,
		  uint32_t n, foreign_pull_cb done, void *arg)
{
	struct sm_volume *v = sm_find(&sd->maps, e->c.vol);
	struct fpull *p = calloc(1, sizeof(*p));
	size_t chunk_blocks = FOREIGN_PULL_CHUNK / SEGSTORE_BLOCK_SIZE;

	if (p != NULL) {
		p->buf = malloc(FOREIGN_PULL_CHUNK);
		p->blk = calloc(chunk_blocks, sizeof(*p->blk));
	}
	if (p == NULL || p->buf == NULL || p->blk == NULL) {
		if (p != NULL) {
			free(p->buf);
			free(p->blk);
		}
		free(p);
		done(arg, OMBRA_ENOMEM, "out of memory", 0, 0);
		return;
	}
	stored_call_begin(sd);
	e->pulls++;
	p->sd = sd;
	p->vol = e->c.vol;
	p->seg = e->c.seg;
	p->gen = e->gen;
	p->first = first;
	p->n = n;
	p->done = done;
	p->arg = arg;
	if (v != NULL && p->seg < v->n_segs) {
		const struct sm_seg *s = &v->segs[p->seg];

		p->segsize = v->segsize;
		fp_add_cand(p, s->primary);
		for (unsigned i = 0; i < s->n_rep; i++) {
			fp_add_cand(p, s->rep[i]);
		}
	}
	if (p->n_cand == 0 || n == 0) {
		ombra_errmsg_printf(p->errmsg,
				    n == 0 ? "nothing to pull"
					   : "segment %llu of volume %llu has "
					     "no primary or in-sync replica "
					     "in this node's shard map",
				    (unsigned long long)p->seg,
				    (unsigned long long)p->vol);
		fp_finish(p, n == 0 ? OMBRA_EINVAL : OMBRA_EUNAVAIL);
		return;
	}
	fp_next(p);
}
