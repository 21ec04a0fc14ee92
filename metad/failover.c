/* failover.c: region failover decided on the metad leader (docs/metad.md
 * "Region failover", docs/shadows.md).
 *
 * Node failures inside the home region are handled in the state machine
 * (fsm_lease.c promotes an in-sync replica).  When the primary and every
 * in-sync replica of a segment are DOWN, the home region is lost for that
 * segment: with ShadowPolicy.auto_promote_shadows the leader promotes the
 * freshest shadow; without it nothing happens and writes of the segment
 * stay unavailable.  "After the old write lease expired": a node is marked
 * DOWN only node_timeout_ms after its last acknowledged heartbeat, by which
 * time it has fenced itself (health.c), so a DOWN primary no longer
 * accepts writes.
 *
 * Rounds, driven by health.c's one-second check, one volume at a time
 * (round robin over the volumes with segments to promote):
 *   1. scan the volume's shard map for segments whose home copies are all
 *      DOWN and that have a shadow on an UP node;
 *   2. ask every such shadow node StoreService.ListCopies(volume) on an
 *      asynchronous channel (rpc_channel, replies on the loop; 3 s);
 *   3. per segment pick the freshest whole shadow (vlease_choose_shadow)
 *      and propose CmdPromoteShadow with lease_epoch + 1, the shadow's
 *      watermark and confirmation time and the leader's last known version
 *      of the segment (the highest watermark + lag_versions any shadow
 *      reported); the state machine re-checks everything (fsm_promote.c).
 * A node that does not answer simply offers no copy this round.  Channels
 * are cached per node and closed with the module.
 *
 * Failure: nothing here answers a client; a failed step is logged and the
 * next round tries again (a promotion decided twice is refused as stale by
 * the state machine). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "failover.h"
#include "fsm.h"
#include "log.h"
#include "raftnode.h"
#include "rpc.h"
#include "store.pb-c.h"
#include "vlease.h"

#define FO_CALL_TIMEOUT_MS 3000
#define FO_SEGS_MAX 1024u  /* promotions decided per round */
#define FO_SHADOWS_MAX 16u /* shadows of a segment considered */

struct fo_chan {
	uint64_t node_id;
	char address[128];
	struct rpc_channel *ch;
};

struct fo_seg {
	uint64_t index;
	uint64_t epoch;
	uint64_t primary;
	/* Nodes metad lists as its shadows: a copy a node still holds after
	 * its shadow was removed is never promoted (the state machine would
	 * refuse it). */
	uint64_t shadows[FO_SHADOWS_MAX];
	size_t n_shadows;
};

static bool fo_seg_shadow(const struct fo_seg *s, uint64_t node)
{
	for (size_t i = 0; i < s->n_shadows; i++) {
		if (s->shadows[i] == node)
			return true;
	}
	return false;
}

struct fo_target {
	uint64_t id;
	char address[128];
};

struct fo_round {
	struct failover *fo;
	uint64_t volume_id;
	char volume[96];
	struct fo_seg *segs;
	size_t n_segs;
	struct fo_target *targets; /* UP shadow nodes of segs, to ask */
	size_t n_targets;
	/* Copies of this volume reported by the shadow nodes asked; segment
	 * in seg_of[i]. */
	struct vlease_copy *copies;
	uint64_t *seg_of;
	size_t n_copies, cap;
	unsigned pending; /* calls and proposals in flight */
	bool deciding;	  /* every call answered */
};

struct failover {
	struct metad *md;
	struct rpc_tls tls;
	bool use_tls;
	struct fo_chan *chans;
	size_t n_chans;
	struct fo_round *round; /* at most one */
	char last_volume[96];	/* round robin (by name): the last round's */
	bool closing;
	unsigned closing_pending; /* channels still closing */
};

struct fo_call {
	struct fo_round *r;
	uint64_t node_id;
};

int failover_create(struct metad *md, struct failover **out, char *errmsg)
{
	struct failover *fo = calloc(1, sizeof(*fo));

	if (fo == NULL) {
		ombra_errmsg_printf(errmsg, "failover: out of memory");
		return OMBRA_ENOMEM;
	}
	fo->md = md;
	if (md->cfg->tls_ca[0] != '\0') {
		fo->use_tls = true;
		fo->tls.ca_file = md->cfg->tls_ca;
		fo->tls.cert_file = md->cfg->tls_cert;
		fo->tls.key_file = md->cfg->tls_key;
	}
	*out = fo;
	return 0;
}

static void fo_maybe_free(struct failover *fo)
{
	if (!fo->closing || fo->round != NULL || fo->closing_pending > 0)
		return;
	free(fo->chans);
	free(fo);
}

static void fo_round_free(struct fo_round *r)
{
	struct failover *fo = r->fo;

	free(r->segs);
	free(r->targets);
	free(r->copies);
	free(r->seg_of);
	free(r);
	fo->round = NULL;
	fo_maybe_free(fo);
}

static void on_chan_closed(void *data)
{
	struct failover *fo = data;

	fo->closing_pending--;
	fo_maybe_free(fo);
}

void failover_close(struct failover *fo)
{
	if (fo == NULL)
		return;
	fo->closing = true;
	fo->closing_pending++; /* held: a close callback may not free fo yet */
	for (size_t i = 0; i < fo->n_chans; i++) {
		fo->closing_pending++;
		rpc_channel_close(fo->chans[i].ch, on_chan_closed, fo);
	}
	fo->n_chans = 0;
	fo->closing_pending--;
	fo_maybe_free(fo);
}

/* Cached channel to node id at address (re-created if the address
 * changed).  NULL on failure (logged). */
static struct rpc_channel *fo_channel(struct failover *fo, uint64_t id,
				      const char *address)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct fo_chan *c = NULL;
	struct fo_chan *grown;

	for (size_t i = 0; i < fo->n_chans; i++) {
		if (fo->chans[i].node_id == id)
			c = &fo->chans[i];
	}
	if (c != NULL && strcmp(c->address, address) == 0)
		return c->ch;
	if (c != NULL) {
		fo->closing_pending++;
		rpc_channel_close(c->ch, on_chan_closed, fo);
		c->ch = NULL;
	} else {
		grown = realloc(fo->chans, (fo->n_chans + 1) * sizeof(*grown));
		if (grown == NULL)
			return NULL;
		fo->chans = grown;
		c = &fo->chans[fo->n_chans++];
		c->node_id = id;
		c->ch = NULL;
	}
	snprintf(c->address, sizeof(c->address), "%s", address);
	if (rpc_channel_create(fo->md->loop, address,
			       fo->use_tls ? &fo->tls : NULL, &c->ch,
			       errmsg) != 0) {
		log_warn("failover: channel to node %" PRIu64 " at %s: %s", id,
			 address, errmsg);
		*c = fo->chans[--fo->n_chans];
		return NULL;
	}
	return c->ch;
}

static const Ombra__V1__Node *
fo_node(const Ombra__V1__GetVolumeShardingInfoResponse *m, uint64_t id)
{
	for (size_t i = 0; i < m->n_nodes; i++) {
		if (m->nodes[i]->id == id)
			return m->nodes[i];
	}
	return NULL;
}

static bool fo_down(const Ombra__V1__GetVolumeShardingInfoResponse *m,
		    uint64_t id)
{
	const Ombra__V1__Node *n = fo_node(m, id);

	return n != NULL && n->state == OMBRA__V1__NODE_STATE__NODE_DOWN;
}

static bool fo_up(const Ombra__V1__GetVolumeShardingInfoResponse *m,
		  uint64_t id)
{
	const Ombra__V1__Node *n = fo_node(m, id);

	return n != NULL && n->state == OMBRA__V1__NODE_STATE__NODE_UP;
}

/* Home copies all DOWN and a shadow on an UP node. */
static bool fo_candidate(const Ombra__V1__GetVolumeShardingInfoResponse *m,
			 const Ombra__V1__SegmentPlacement *p)
{
	bool shadow_up = false;

	if (p->primary_node_id == 0 || !fo_down(m, p->primary_node_id))
		return false;
	for (size_t i = 0; i < p->n_replica_node_ids; i++) {
		if (!fo_down(m, p->replica_node_ids[i]))
			return false;
	}
	for (size_t i = 0; i < p->n_shadows; i++)
		shadow_up |= fo_up(m, p->shadows[i]->node_id);
	return shadow_up;
}

/* Remember the UP shadow nodes of p as nodes to ask.  0 or
 * OMBRA_ENOMEM. */
static int fo_targets_add(struct fo_round *r,
			  const Ombra__V1__GetVolumeShardingInfoResponse *m,
			  const Ombra__V1__SegmentPlacement *p)
{
	for (size_t i = 0; i < p->n_shadows; i++) {
		const Ombra__V1__Node *n = fo_node(m, p->shadows[i]->node_id);
		struct fo_target *grown;
		size_t k;

		if (n == NULL || n->state != OMBRA__V1__NODE_STATE__NODE_UP)
			continue;
		for (k = 0; k < r->n_targets && r->targets[k].id != n->id; k++)
			;
		if (k < r->n_targets)
			continue;
		grown =
		    realloc(r->targets, (r->n_targets + 1) * sizeof(*grown));
		if (grown == NULL)
			return OMBRA_ENOMEM;
		r->targets = grown;
		grown[r->n_targets].id = n->id;
		snprintf(grown[r->n_targets].address,
			 sizeof(grown[r->n_targets].address), "%s", n->address);
		r->n_targets++;
	}
	return 0;
}

static struct fo_round *fo_round_new(struct failover *fo,
				     const Ombra__V1__Volume *vol)
{
	struct fo_round *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->fo = fo;
	r->volume_id = vol->id;
	snprintf(r->volume, sizeof(r->volume), "%s", vol->name);
	r->segs = calloc(FO_SEGS_MAX, sizeof(*r->segs));
	if (r->segs == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

/* Segments of vol to promote (at most FO_SEGS_MAX), and the nodes to ask,
 * as a new round; NULL when there are none (or out of memory, logged). */
static struct fo_round *fo_scan(struct failover *fo,
				const Ombra__V1__Volume *vol)
{
	Ombra__V1__GetVolumeShardingInfoResponse m =
	    OMBRA__V1__GET_VOLUME_SHARDING_INFO_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct fo_round *r = NULL;
	uint64_t first = 0;
	bool oom = false;

	do {
		fsm_free_shard_map(&m);
		ombra__v1__get_volume_sharding_info_response__init(&m);
		if (fsm_shard_map_by_id(fo->md->fsm, vol->id, first, 0, &m,
					errmsg) != 0) {
			log_warn("failover: shard map of '%s': %s", vol->name,
				 errmsg);
			break;
		}
		for (size_t i = 0; !oom && i < m.n_segments; i++) {
			const Ombra__V1__SegmentPlacement *p = m.segments[i];
			struct fo_seg *s;

			if (!fo_candidate(&m, p))
				continue;
			if (r == NULL && (r = fo_round_new(fo, vol)) == NULL) {
				oom = true;
				break;
			}
			s = &r->segs[r->n_segs++];
			s->index = p->index;
			s->epoch = p->lease_epoch;
			s->primary = p->primary_node_id;
			for (size_t k = 0;
			     k < p->n_shadows && s->n_shadows < FO_SHADOWS_MAX;
			     k++)
				s->shadows[s->n_shadows++] =
				    p->shadows[k]->node_id;
			oom = fo_targets_add(r, &m, p) != 0;
			if (r->n_segs == FO_SEGS_MAX)
				break;
		}
		first = m.next_segment;
	} while (!oom && first != 0 && (r == NULL || r->n_segs < FO_SEGS_MAX));
	fsm_free_shard_map(&m);
	if (oom) {
		log_warn("failover: out of memory scanning '%s'", vol->name);
		if (r != NULL) {
			free(r->segs);
			free(r->targets);
			free(r);
		}
		return NULL;
	}
	return r;
}

static void fo_promoted(void *data, int rv, const char *errmsg,
			const struct fsm_result *res)
{
	struct fo_round *r = data;

	if (rv != 0)
		log_warn("failover: promotion in volume '%s' not committed: "
			 "%s",
			 r->volume, errmsg);
	else if (res->code != 0)
		log_warn("failover: promotion in volume '%s' refused: %s",
			 r->volume, res->message);
	if (--r->pending == 0)
		fo_round_free(r);
}

/* Every call answered: choose and propose per segment. */
static void fo_decide(struct fo_round *r)
{
	struct failover *fo = r->fo;
	struct vlease_copy *c = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	uint64_t first_stuck = 0;
	size_t stuck = 0;

	r->deciding = true;
	c = malloc((r->n_copies + 1) * sizeof(*c));
	if (c == NULL)
		log_warn("failover: out of memory deciding '%s'", r->volume);
	for (size_t i = 0; c != NULL && !fo->closing && i < r->n_segs; i++) {
		Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
		Ombra__V1__CmdPromoteShadow ps =
		    OMBRA__V1__CMD_PROMOTE_SHADOW__INIT;
		const struct fo_seg *s = &r->segs[i];
		uint64_t known;
		size_t n = 0, best;

		for (size_t k = 0; k < r->n_copies; k++) {
			if (r->seg_of[k] == s->index &&
			    fo_seg_shadow(s, r->copies[k].node_id))
				c[n++] = r->copies[k];
		}
		best = vlease_choose_shadow(c, n, &known);
		if (best == n) {
			if (stuck++ == 0)
				first_stuck = s->index;
			continue;
		}
		ps.volume_id = r->volume_id;
		ps.segment_index = s->index;
		ps.node_id = c[best].node_id;
		ps.lease_epoch = s->epoch + 1;
		ps.shadow_version = c[best].watermark;
		ps.known_version = known;
		ps.watermark_unix_ms = c[best].confirmed_unix_ms;
		cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_PROMOTE_SHADOW;
		cmd.promote_shadow = &ps;
		if (raftnode_propose(fo->md->rn, &cmd, fo_promoted, r,
				     errmsg) != 0) {
			log_warn("failover: %s", errmsg);
			break;
		}
		log_warn("failover: volume '%s' segment %" PRIu64
			 ": home region lost (primary node %" PRIu64
			 " DOWN); promoting the shadow on node %" PRIu64
			 " (watermark %" PRIu64 ", last known %" PRIu64
			 ", %" PRIu64 " versions lost), epoch %" PRIu64,
			 r->volume, s->index, s->primary, ps.node_id,
			 ps.shadow_version, known,
			 vlease_lost_versions(known, ps.shadow_version),
			 ps.lease_epoch);
		r->pending++;
	}
	free(c);
	if (stuck > 0)
		log_warn("failover: volume '%s': %zu segments (first %" PRIu64
			 ") lost their home copies and no whole shadow of "
			 "them answered; their writes stay unavailable",
			 r->volume, stuck, first_stuck);
	if (r->pending == 0)
		fo_round_free(r);
}

static int fo_add_copy(struct fo_round *r, uint64_t node,
		       const Ombra__V1__CopyInfo *ci)
{
	struct vlease_copy *c;

	if (r->n_copies == r->cap) {
		size_t cap = r->cap == 0 ? 64 : r->cap * 2;
		struct vlease_copy *copies =
		    realloc(r->copies, cap * sizeof(*copies));
		uint64_t *seg_of;

		if (copies == NULL)
			return OMBRA_ENOMEM;
		r->copies = copies;
		seg_of = realloc(r->seg_of, cap * sizeof(*seg_of));
		if (seg_of == NULL)
			return OMBRA_ENOMEM;
		r->seg_of = seg_of;
		r->cap = cap;
	}
	c = &r->copies[r->n_copies];
	r->seg_of[r->n_copies++] = ci->segment_index;
	c->node_id = node;
	c->watermark = ci->watermark;
	c->lag_versions = ci->lag_versions;
	c->confirmed_unix_ms = ci->confirmed_unix_ms;
	c->present_blocks = ci->present_blocks;
	c->total_blocks = ci->total_blocks;
	c->filling = ci->filling;
	return 0;
}

static void fo_copies(void *data, const struct rpc_status *st,
		      const ProtobufCMessage *resp)
{
	struct fo_call *call = data;
	struct fo_round *r = call->r;

	if (st->code != GRPC_STATUS_OK) {
		log_warn("failover: ListCopies on node %" PRIu64 ": %s: %s",
			 call->node_id, rpc_status_name(st->code), st->message);
	} else {
		const Ombra__V1__ListCopiesResponse *lc =
		    (const Ombra__V1__ListCopiesResponse *)resp;

		for (size_t i = 0; i < lc->n_copies; i++) {
			const Ombra__V1__CopyInfo *ci = lc->copies[i];

			if (ci->volume_id != r->volume_id ||
			    ci->kind != OMBRA__V1__COPY_KIND__COPY_SHADOW)
				continue;
			if (fo_add_copy(r, call->node_id, ci) != 0) {
				log_warn("failover: out of memory");
				break;
			}
		}
	}
	free(call);
	if (--r->pending == 0)
		fo_decide(r);
}

/* Ask every UP shadow node of the round's segments. */
static void fo_ask(struct fo_round *r)
{
	Ombra__V1__ListCopiesRequest req = OMBRA__V1__LIST_COPIES_REQUEST__INIT;

	req.volume_id = r->volume_id;
	r->pending = 1; /* held until every call is started */
	for (size_t i = 0; i < r->n_targets; i++) {
		const struct fo_target *n = &r->targets[i];
		struct rpc_channel *ch;
		struct fo_call *call;

		ch = fo_channel(r->fo, n->id, n->address);
		call = ch == NULL ? NULL : calloc(1, sizeof(*call));
		if (call == NULL)
			continue;
		call->r = r;
		call->node_id = n->id;
		if (rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
				      "ListCopies", &req.base,
				      FO_CALL_TIMEOUT_MS, fo_copies, call,
				      NULL) != 0) {
			free(call);
			continue;
		}
		r->pending++;
	}
	if (--r->pending == 0)
		fo_decide(r);
}

void failover_tick(struct failover *fo)
{
	Ombra__V1__Volume **vols = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct fo_round *r = NULL;
	size_t n = 0;
	size_t start = 0;

	if (fo == NULL || fo->closing || fo->round != NULL ||
	    fo->md->rn == NULL || !raftnode_is_leader(fo->md->rn))
		return;
	if (fsm_list_volumes(fo->md->fsm, NULL, &vols, &n, errmsg) != 0) {
		log_warn("failover: %s", errmsg);
		return;
	}
	/* Round robin in name order (fsm_list_volumes sorts by name): start
	 * after the volume of the last round. */
	while (start < n && strcmp(vols[start]->name, fo->last_volume) <= 0)
		start++;
	for (size_t k = 0; r == NULL && k < n; k++) {
		const Ombra__V1__Volume *v = vols[(start + k) % n];

		if (v->shadow_policy == NULL ||
		    !v->shadow_policy->auto_promote_shadows)
			continue;
		r = fo_scan(fo, v);
		if (r != NULL)
			snprintf(fo->last_volume, sizeof(fo->last_volume), "%s",
				 v->name);
	}
	fsm_free_list(vols, n);
	if (r != NULL) {
		fo->round = r;
		fo_ask(r);
	}
}
