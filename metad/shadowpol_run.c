/* shadowpol_run.c: the leader's shadow policy evaluator (contract in
 * shadowpol_run.h): gathers, per volume with a policy, the inputs of
 * shadowpol_decide() from the state machine (shadows, current placements
 * of hot segments, nodes) and the access table, and proposes the decided
 * changes of every volume as one CmdShadowChanges.
 *
 * Cost per tick: one scan of the access table (sorted snapshot), one list
 * of volumes and nodes, and per volume with a policy one range scan of its
 * placement exceptions plus one placement read per hot segment (at most
 * RUN_HOT_MAX per volume).  The state machine re-checks every change
 * (fsm_shadow.c), so a decision made from a stale view is skipped, never
 * applied wrongly.  Failure: logged; retried on the next tick. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "raftnode.h"
#include "shadowpol.h"
#include "shadowpol_run.h"

/* Hot segments looked up per volume and tick. */
#define RUN_HOT_MAX 4096u

struct shadowpol_run {
	struct metad *md;
	struct access_table *access;
	bool leader;
	uint64_t since_ms; /* wall clock at the start of this leadership */
	struct run_proposal *inflight;
};

/* A proposal in flight; run is NULL once the evaluator is gone. */
struct run_proposal {
	struct shadowpol_run *run;
	size_t adds, removes;
};

/* One tick's batch of changes. */
struct run_batch {
	Ombra__V1__ShadowChange ch[SHADOWPOL_RUN_MAX_CHANGES];
	Ombra__V1__ShadowChange *ptr[SHADOWPOL_RUN_MAX_CHANGES];
	size_t n, adds, removes;
};

static uint64_t run_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int shadowpol_run_create(struct metad *md, struct shadowpol_run **out,
			 char *errmsg)
{
	struct shadowpol_run *r = calloc(1, sizeof(*r));

	if (r == NULL || access_create(ACCESS_CAPACITY_DEFAULT,
				       ACCESS_HALF_LIFE_MS, &r->access) != 0) {
		free(r);
		ombra_errmsg_printf(errmsg, "shadow policy: out of memory");
		return OMBRA_ENOMEM;
	}
	r->md = md;
	*out = r;
	return 0;
}

void shadowpol_run_destroy(struct shadowpol_run *r)
{
	if (r == NULL)
		return;
	if (r->inflight != NULL)
		r->inflight->run = NULL;
	access_destroy(r->access);
	free(r);
}

void shadowpol_run_set_leader(struct shadowpol_run *r, bool is_leader)
{
	r->leader = is_leader;
	r->since_ms = run_wall_ms();
	access_reset(r->access);
}

int shadowpol_run_report(struct shadowpol_run *r,
			 const Ombra__V1__AccessStatsRequest *req, char *errmsg)
{
	uint64_t now = run_wall_ms();
	size_t i;

	for (i = 0; i < req->n_segments; i++) {
		const Ombra__V1__SegmentAccess *s = req->segments[i];

		if (access_record(r->access, now, req->region, s->volume_id,
				  s->segment_index, s->reads, s->writes) != 0) {
			ombra_errmsg_printf(errmsg,
					    "access statistics are kept for at "
					    "most %u regions; region '%s' is "
					    "one too many",
					    ACCESS_REGIONS_MAX, req->region);
			return OMBRA_EINVAL;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ proposal */

static void run_applied(void *data, int rv, const char *errmsg,
			const struct fsm_result *res)
{
	struct run_proposal *p = data;

	if (p->run != NULL && p->run->inflight == p)
		p->run->inflight = NULL;
	if (rv != 0)
		log_warn("shadowpol: %zu additions, %zu removals not "
			 "committed: %s",
			 p->adds, p->removes, errmsg);
	else if (res->code != 0)
		log_warn("shadowpol: changes refused: %s", res->message);
	else
		log_info("shadowpol: %zu additions, %zu removals proposed, "
			 "%llu applied at index %llu%s%s",
			 p->adds, p->removes,
			 (unsigned long long)res->object_id,
			 (unsigned long long)res->index,
			 res->message[0] != '\0' ? "; " : "", res->message);
	free(p);
}

static void run_propose(struct shadowpol_run *r, struct run_batch *b)
{
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdShadowChanges c = OMBRA__V1__CMD_SHADOW_CHANGES__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct run_proposal *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		log_warn("shadowpol: out of memory");
		return;
	}
	p->run = r;
	p->adds = b->adds;
	p->removes = b->removes;
	c.n_changes = b->n;
	c.changes = b->ptr;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_SHADOW_CHANGES;
	cmd.shadow_changes = &c;
	if (raftnode_propose(r->md->rn, &cmd, run_applied, p, errmsg) != 0) {
		log_warn("shadowpol: %s", errmsg);
		free(p);
		return;
	}
	r->inflight = p;
}

/* ------------------------------------------------------------ inputs */

/* Regions of the cluster with their UP nodes of capacity > 0 (nodes come
 * sorted by id, so each region's list is too). */
struct run_regions {
	struct shadowpol_region *r;
	struct placement_node *pn; /* storage of every region's nodes */
	size_t n;
};

static int run_regions_build(Ombra__V1__Node *const *nodes, size_t n,
			     struct run_regions *out)
{
	size_t i, j, used = 0;

	out->r = calloc(n + 1, sizeof(*out->r));
	out->pn = calloc(n + 1, sizeof(*out->pn));
	out->n = 0;
	if (out->r == NULL || out->pn == NULL)
		return OMBRA_ENOMEM;
	/* Group by region: one pass per distinct region (few regions). */
	for (i = 0; i < n; i++) {
		struct shadowpol_region *reg;

		for (j = 0; j < out->n; j++) {
			if (strcmp(out->r[j].name, nodes[i]->region) == 0)
				break;
		}
		if (j < out->n)
			continue;
		reg = &out->r[out->n++];
		reg->name = nodes[i]->region;
		reg->nodes = &out->pn[used];
		for (j = i; j < n; j++) {
			if (strcmp(nodes[j]->region, reg->name) != 0 ||
			    nodes[j]->state != OMBRA__V1__NODE_STATE__NODE_UP ||
			    nodes[j]->capacity_bytes == 0)
				continue;
			out->pn[used].id = nodes[j]->id;
			out->pn[used].weight = nodes[j]->capacity_bytes;
			used++;
			reg->n_nodes++;
		}
	}
	return 0;
}

/* Per-volume inputs, freed by run_vol_free. */
struct run_vol {
	struct shadowpol_shadow *sh;
	size_t n_sh;
	Ombra__V1__SegmentPlacement **with_shadows;
	size_t n_with;
	struct shadowpol_access *acc;
	size_t n_acc;
	uint64_t *hot;
	size_t n_hot;
	Ombra__V1__SegmentPlacement **hot_p;
	struct shadowpol_holders *holders;
	uint64_t *holder_ids;
};

static void run_vol_free(struct run_vol *v)
{
	free(v->sh);
	fsm_free_list(v->with_shadows, v->n_with);
	free(v->acc);
	if (v->hot_p != NULL)
		fsm_free_list(v->hot_p, v->n_hot);
	free(v->hot);
	free(v->holders);
	free(v->holder_ids);
	memset(v, 0, sizeof(*v));
}

static int run_vol_shadows(struct shadowpol_run *r,
			   const Ombra__V1__Volume *vol, struct run_vol *v,
			   char *errmsg)
{
	size_t i, j, total = 0;
	int rv;

	rv = fsm_volume_shadows(r->md->fsm, vol->id, &v->with_shadows,
				&v->n_with, errmsg);
	if (rv != 0)
		return rv;
	for (i = 0; i < v->n_with; i++)
		total += v->with_shadows[i]->n_shadows;
	v->sh = calloc(total + 1, sizeof(*v->sh));
	if (v->sh == NULL)
		return OMBRA_ENOMEM;
	for (i = 0; i < v->n_with; i++) {
		const Ombra__V1__SegmentPlacement *p = v->with_shadows[i];

		for (j = 0; j < p->n_shadows; j++) {
			struct shadowpol_shadow *s = &v->sh[v->n_sh++];

			s->segment = p->index;
			s->node_id = p->shadows[j]->node_id;
			s->region = p->shadows[j]->region;
			s->added_ms = p->shadows[j]->added_unix_ms;
		}
	}
	return 0;
}

/* The slice of the sorted snapshot for vol, and its hot segments. */
static int run_vol_access(const Ombra__V1__Volume *vol,
			  const struct shadowpol_params *pp,
			  const struct access_rate *rates, size_t n_rates,
			  struct run_vol *v)
{
	size_t lo = 0, hi = n_rates, i;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rates[mid].volume_id < vol->id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (hi = lo; hi < n_rates && rates[hi].volume_id == vol->id; hi++)
		;
	v->acc = calloc(hi - lo + 1, sizeof(*v->acc));
	v->hot = calloc(hi - lo + 1, sizeof(*v->hot));
	if (v->acc == NULL || v->hot == NULL)
		return OMBRA_ENOMEM;
	for (i = lo; i < hi; i++) {
		struct shadowpol_access *a = &v->acc[v->n_acc++];

		a->segment = rates[i].segment;
		a->region = rates[i].region;
		a->reads_per_s = rates[i].reads_per_s;
		a->last_read_ms = rates[i].last_read_ms;
		/* Sorted by segment: a repeat is the previous one. */
		if (a->reads_per_s >= pp->create_reads_per_s &&
		    a->segment < vol->segment_count && v->n_hot < RUN_HOT_MAX &&
		    (v->n_hot == 0 || v->hot[v->n_hot - 1] != a->segment))
			v->hot[v->n_hot++] = a->segment;
	}
	return 0;
}

/* Holders of the hot segments (every node their placement names). */
static int run_vol_holders(struct shadowpol_run *r,
			   const Ombra__V1__Volume *vol, struct run_vol *v,
			   char *errmsg)
{
	size_t i, j, total = 0, at = 0;
	int rv;

	if (v->n_hot == 0)
		return 0;
	rv = fsm_placements_of(r->md->fsm, vol, v->hot, v->n_hot, &v->hot_p,
			       errmsg);
	if (rv != 0)
		return rv;
	for (i = 0; i < v->n_hot; i++) {
		const Ombra__V1__SegmentPlacement *p = v->hot_p[i];

		total += 1 + p->n_replica_node_ids + p->n_resync_node_ids +
			 p->n_shadows;
	}
	v->holders = calloc(v->n_hot, sizeof(*v->holders));
	v->holder_ids = calloc(total + 1, sizeof(*v->holder_ids));
	if (v->holders == NULL || v->holder_ids == NULL)
		return OMBRA_ENOMEM;
	for (i = 0; i < v->n_hot; i++) {
		const Ombra__V1__SegmentPlacement *p = v->hot_p[i];
		struct shadowpol_holders *h = &v->holders[i];

		h->segment = v->hot[i];
		h->node_ids = &v->holder_ids[at];
		v->holder_ids[at++] = p->primary_node_id;
		for (j = 0; j < p->n_replica_node_ids; j++)
			v->holder_ids[at++] = p->replica_node_ids[j];
		for (j = 0; j < p->n_resync_node_ids; j++)
			v->holder_ids[at++] = p->resync_node_ids[j];
		for (j = 0; j < p->n_shadows; j++)
			v->holder_ids[at++] = p->shadows[j]->node_id;
		h->n = (size_t)(&v->holder_ids[at] - h->node_ids);
	}
	return 0;
}

/* Decide for one volume and append to b. */
static int run_volume(struct shadowpol_run *r, const Ombra__V1__Volume *vol,
		      const struct run_regions *regs,
		      const struct access_rate *rates, size_t n_rates,
		      uint64_t now, struct run_batch *b, char *errmsg)
{
	struct shadowpol_input in;
	struct shadowpol_change *out = NULL;
	struct run_vol v;
	size_t n_out = 0, i, room;
	int rv;

	memset(&v, 0, sizeof(v));
	memset(&in, 0, sizeof(in));
	shadowpol_effective(vol->shadow_policy, &in.policy);
	rv = run_vol_shadows(r, vol, &v, errmsg);
	if (rv == 0)
		rv = run_vol_access(vol, &in.policy, rates, n_rates, &v);
	if (rv == 0)
		rv = run_vol_holders(r, vol, &v, errmsg);
	if (rv != 0)
		goto out;
	in.volume_id = vol->id;
	in.home_region = vol->home_region;
	in.segment_size = vol->segment_size_bytes;
	in.segment_count = vol->segment_count;
	in.regions = regs->r;
	in.n_regions = regs->n;
	in.shadows = v.sh;
	in.n_shadows = v.n_sh;
	in.access = v.acc;
	in.n_access = v.n_acc;
	in.holders = v.holders;
	in.n_holders = v.n_hot;
	in.now_ms = now;
	in.since_ms = r->since_ms;
	room = SHADOWPOL_RUN_MAX_CHANGES - b->n;
	in.max_adds = SHADOWPOL_RUN_MAX_ADDS - b->adds;
	if (in.max_adds > room)
		in.max_adds = room;
	rv = shadowpol_decide(&in, &out, &n_out);
	for (i = 0; rv == 0 && i < n_out && b->n < SHADOWPOL_RUN_MAX_CHANGES;
	     i++) {
		Ombra__V1__ShadowChange *c = &b->ch[b->n];

		ombra__v1__shadow_change__init(c);
		c->volume_id = vol->id;
		c->segment_index = out[i].segment;
		c->node_id = out[i].node_id;
		c->remove = out[i].remove;
		b->ptr[b->n++] = c;
		if (out[i].remove)
			b->removes++;
		else
			b->adds++;
	}
	free(out);
out:
	if (rv == OMBRA_ENOMEM)
		ombra_errmsg_printf(errmsg, "out of memory");
	run_vol_free(&v);
	return rv;
}

void shadowpol_run_tick(struct shadowpol_run *r)
{
	struct metad *md = r->md;
	struct run_regions regs = {NULL, NULL, 0};
	struct access_rate *rates = NULL;
	Ombra__V1__Volume **vols = NULL;
	Ombra__V1__Node **nodes = NULL;
	struct run_batch *b = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	size_t n_rates = 0, n_vols = 0, n_nodes = 0, i;
	uint64_t now = run_wall_ms();
	int rv;

	if (md->stopping || md->rn == NULL || !r->leader ||
	    r->inflight != NULL || !raftnode_is_leader(md->rn))
		return;
	errmsg[0] = '\0';
	rv = fsm_list_volumes(md->fsm, NULL, &vols, &n_vols, errmsg);
	if (rv == 0)
		rv = fsm_list_nodes(md->fsm, NULL, &nodes, &n_nodes, errmsg);
	if (rv == 0 &&
	    (rv = access_snapshot(r->access, now, &rates, &n_rates)) != 0)
		ombra_errmsg_printf(errmsg, "out of memory");
	if (rv == 0 && (rv = run_regions_build(nodes, n_nodes, &regs)) != 0)
		ombra_errmsg_printf(errmsg, "out of memory");
	if (rv == 0 && (b = calloc(1, sizeof(*b))) == NULL) {
		rv = OMBRA_ENOMEM;
		ombra_errmsg_printf(errmsg, "out of memory");
	}
	for (i = 0; rv == 0 && i < n_vols && b->n < SHADOWPOL_RUN_MAX_CHANGES;
	     i++) {
		if (vols[i]->shadow_policy == NULL ||
		    vols[i]->state != OMBRA__V1__VOLUME_STATE__VOLUME_ACTIVE)
			continue;
		rv = run_volume(r, vols[i], &regs, rates, n_rates, now, b,
				errmsg);
	}
	if (rv != 0)
		log_warn("shadowpol: evaluation failed: %s", errmsg);
	else if (b->n > 0)
		run_propose(r, b);
	free(b);
	free(regs.r);
	free(regs.pn);
	free(rates);
	fsm_free_list(vols, n_vols);
	fsm_free_list(nodes, n_nodes);
}
