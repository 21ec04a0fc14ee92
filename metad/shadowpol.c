/* shadowpol.c: checks, defaults and the pure add/remove decision of the
 * shadow policy (contract in shadowpol.h).
 *
 * The decision works on index arrays sorted by (segment, region) so every
 * lookup is a binary search: O((shadows + access) log(shadows + access))
 * per volume, plus O(nodes of a region) per addition for the rendezvous
 * pick.  Ties are broken by segment, region name and node id, so the same
 * input always gives the same changes on any leader.  Failure: only
 * OMBRA_ENOMEM (nothing is half-decided: *out is NULL then). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "err.h"
#include "shadowpol.h"

int shadowpol_check(const Ombra__V1__ShadowPolicy *p, char *errmsg)
{
	size_t i, j;

	if (p->n_regions > SHADOWPOL_REGIONS_MAX) {
		ombra_errmsg_printf(errmsg,
				    "a shadow policy lists %zu regions; at "
				    "most %u are allowed (none = every region "
				    "but the home one)",
				    p->n_regions, SHADOWPOL_REGIONS_MAX);
		return OMBRA_EINVAL;
	}
	for (i = 0; i < p->n_regions; i++) {
		if (cmd_validate_name("region", p->regions[i], errmsg) != 0)
			return OMBRA_EINVAL;
		for (j = 0; j < i; j++) {
			if (strcmp(p->regions[i], p->regions[j]) == 0) {
				ombra_errmsg_printf(
				    errmsg,
				    "region '%s' is listed twice in the "
				    "shadow policy",
				    p->regions[i]);
				return OMBRA_EINVAL;
			}
		}
	}
	if (p->max_shadows > SHADOWPOL_MAX_SHADOWS_MAX) {
		ombra_errmsg_printf(errmsg,
				    "max_shadows %u is out of range: 1..%u "
				    "shadows per segment (0 = 1)",
				    p->max_shadows, SHADOWPOL_MAX_SHADOWS_MAX);
		return OMBRA_EINVAL;
	}
	if (!isfinite(p->create_reads_per_s) || p->create_reads_per_s < 0 ||
	    p->create_reads_per_s > SHADOWPOL_CREATE_READS_MAX) {
		ombra_errmsg_printf(errmsg,
				    "create_reads_per_s %g is out of range: "
				    "0..1e9 reads per second (0 = 1)",
				    p->create_reads_per_s);
		return OMBRA_EINVAL;
	}
	if (p->idle_ms != 0 && (p->idle_ms < SHADOWPOL_IDLE_MS_MIN ||
				p->idle_ms > SHADOWPOL_IDLE_MS_MAX)) {
		ombra_errmsg_printf(errmsg,
				    "idle_ms %llu is out of range: %u ms..7 "
				    "days (%llu ms), 0 = 300000",
				    (unsigned long long)p->idle_ms,
				    SHADOWPOL_IDLE_MS_MIN,
				    (unsigned long long)SHADOWPOL_IDLE_MS_MAX);
		return OMBRA_EINVAL;
	}
	if (p->fill_bytes_per_s != 0 &&
	    (p->fill_bytes_per_s < SHADOWPOL_FILL_MIN ||
	     p->fill_bytes_per_s > SHADOWPOL_FILL_MAX)) {
		ombra_errmsg_printf(errmsg,
				    "fill_bytes_per_s %llu is out of range: "
				    "%u..%llu bytes per second (0 = 64 MiB/s)",
				    (unsigned long long)p->fill_bytes_per_s,
				    SHADOWPOL_FILL_MIN,
				    (unsigned long long)SHADOWPOL_FILL_MAX);
		return OMBRA_EINVAL;
	}
	return 0;
}

void shadowpol_effective(const Ombra__V1__ShadowPolicy *p,
			 struct shadowpol_params *out)
{
	out->regions = p->regions;
	out->n_regions = p->n_regions;
	out->max_shadows = p->max_shadows != 0 ? p->max_shadows
					       : SHADOWPOL_MAX_SHADOWS_DEFAULT;
	out->create_reads_per_s = p->create_reads_per_s > 0
				      ? p->create_reads_per_s
				      : SHADOWPOL_CREATE_READS_DEFAULT;
	out->idle_ms = p->idle_ms != 0 ? p->idle_ms : SHADOWPOL_IDLE_MS_DEFAULT;
	out->budget_bytes = p->budget_bytes;
	out->fill_bytes_per_s = p->fill_bytes_per_s != 0
				    ? p->fill_bytes_per_s
				    : SHADOWPOL_FILL_DEFAULT;
}

bool shadowpol_region_allowed(const struct shadowpol_params *pp,
			      const char *home, const char *region)
{
	size_t i;

	if (strcmp(home, region) == 0)
		return false;
	if (pp->n_regions == 0)
		return true;
	for (i = 0; i < pp->n_regions; i++) {
		if (strcmp(pp->regions[i], region) == 0)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ lookups */

static int cmp_seg_region(uint64_t sa, const char *ra, uint64_t sb,
			  const char *rb)
{
	if (sa != sb)
		return sa < sb ? -1 : 1;
	return strcmp(ra, rb);
}

/* qsort has no context argument: the array being sorted, set right
 * before each qsort (callers run on one thread, the metad loop). */
static const struct shadowpol_access *sort_access;

static int cmp_access_idx(const void *a, const void *b)
{
	const struct shadowpol_access *x = &sort_access[*(const size_t *)a];
	const struct shadowpol_access *y = &sort_access[*(const size_t *)b];

	return cmp_seg_region(x->segment, x->region, y->segment, y->region);
}

/* Decision state of one call. */
struct decide {
	const struct shadowpol_input *in;
	size_t *acc;   /* access indexes sorted by (segment, region) */
	bool *removed; /* per shadow */
	double *rate;  /* per shadow: read rate of its (segment, region) */
	struct shadowpol_change *out;
	size_t n_out;
};

static const struct shadowpol_access *
find_access(const struct decide *d, uint64_t segment, const char *region)
{
	size_t lo = 0, hi = d->in->n_access;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct shadowpol_access *a = &d->in->access[d->acc[mid]];
		int c = cmp_seg_region(a->segment, a->region, segment, region);

		if (c == 0)
			return a;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct shadowpol_region *find_region(const struct decide *d,
						  const char *name)
{
	size_t i;

	for (i = 0; i < d->in->n_regions; i++) {
		if (strcmp(d->in->regions[i].name, name) == 0)
			return &d->in->regions[i];
	}
	return NULL;
}

static const struct shadowpol_holders *find_holders(const struct decide *d,
						    uint64_t segment)
{
	size_t i;

	for (i = 0; i < d->in->n_holders; i++) {
		if (d->in->holders[i].segment == segment)
			return &d->in->holders[i];
	}
	return NULL;
}

static void emit(struct decide *d, uint64_t segment, uint64_t node,
		 const char *region, bool remove)
{
	struct shadowpol_change *c = &d->out[d->n_out++];

	c->segment = segment;
	c->node_id = node;
	c->region = region;
	c->remove = remove;
}

static void remove_shadow(struct decide *d, size_t i)
{
	const struct shadowpol_shadow *s = &d->in->shadows[i];

	d->removed[i] = true;
	emit(d, s->segment, s->node_id, s->region, true);
}

/* Is shadow a colder than shadow b (removed first)? */
static bool colder(const struct decide *d, size_t a, size_t b)
{
	const struct shadowpol_shadow *x = &d->in->shadows[a];
	const struct shadowpol_shadow *y = &d->in->shadows[b];

	if (d->rate[a] != d->rate[b])
		return d->rate[a] < d->rate[b];
	if (x->added_ms != y->added_ms)
		return x->added_ms > y->added_ms;
	return x->node_id > y->node_id;
}

/* Live shadows matching (segment, or region when region != NULL). */
static size_t count_live(const struct decide *d, bool by_region,
			 uint64_t segment, const char *region)
{
	size_t i, n = 0;

	for (i = 0; i < d->in->n_shadows; i++) {
		const struct shadowpol_shadow *s = &d->in->shadows[i];

		if (d->removed[i])
			continue;
		if (by_region ? strcmp(s->region, region) == 0
			      : s->segment == segment)
			n++;
	}
	return n;
}

/* Remove the coldest live shadows of a segment (or region) until at most
 * keep are left. */
static void trim(struct decide *d, bool by_region, uint64_t segment,
		 const char *region, size_t keep)
{
	size_t live = count_live(d, by_region, segment, region);

	while (live > keep) {
		size_t i, victim = SIZE_MAX;

		for (i = 0; i < d->in->n_shadows; i++) {
			const struct shadowpol_shadow *s = &d->in->shadows[i];

			if (d->removed[i] ||
			    !(by_region ? strcmp(s->region, region) == 0
					: s->segment == segment))
				continue;
			if (victim == SIZE_MAX || colder(d, i, victim))
				victim = i;
		}
		remove_shadow(d, victim);
		live--;
	}
}

/* Shadows a region may hold under the budget (SIZE_MAX = unlimited). */
static size_t budget_slots(const struct shadowpol_input *in)
{
	if (in->policy.budget_bytes == 0 || in->segment_size == 0)
		return SIZE_MAX;
	return (size_t)(in->policy.budget_bytes / in->segment_size);
}

static void decide_removals(struct decide *d)
{
	const struct shadowpol_input *in = d->in;
	size_t i;

	for (i = 0; i < in->n_shadows; i++) {
		const struct shadowpol_shadow *s = &in->shadows[i];
		const struct shadowpol_access *a =
		    find_access(d, s->segment, s->region);
		uint64_t last = s->added_ms;

		d->rate[i] = a != NULL ? a->reads_per_s : 0;
		if (in->since_ms > last)
			last = in->since_ms;
		if (a != NULL && a->last_read_ms > last)
			last = a->last_read_ms;
		if (!shadowpol_region_allowed(&in->policy, in->home_region,
					      s->region) ||
		    s->segment >= in->segment_count ||
		    in->now_ms >= last + in->policy.idle_ms)
			remove_shadow(d, i);
	}
	for (i = 0; i < in->n_shadows; i++) {
		if (!d->removed[i])
			trim(d, false, in->shadows[i].segment, NULL,
			     in->policy.max_shadows);
	}
	for (i = 0; i < in->n_shadows; i++) {
		if (!d->removed[i])
			trim(d, true, 0, in->shadows[i].region,
			     budget_slots(in));
	}
}

/* Does a shadow (live or being removed this round) of segment exist in
 * region?  A removed one is not replaced in the same round. */
static bool has_shadow_in(const struct decide *d, uint64_t segment,
			  const char *region)
{
	size_t i;

	for (i = 0; i < d->in->n_shadows; i++) {
		if (d->in->shadows[i].segment == segment &&
		    strcmp(d->in->shadows[i].region, region) == 0)
			return true;
	}
	for (i = 0; i < d->n_out; i++) {
		if (!d->out[i].remove && d->out[i].segment == segment &&
		    strcmp(d->out[i].region, region) == 0)
			return true;
	}
	return false;
}

static size_t added_count(const struct decide *d, bool by_region,
			  uint64_t segment, const char *region)
{
	size_t i, n = 0;

	for (i = 0; i < d->n_out; i++) {
		const struct shadowpol_change *c = &d->out[i];

		if (!c->remove && (by_region ? strcmp(c->region, region) == 0
					     : c->segment == segment))
			n++;
	}
	return n;
}

static bool holds(const struct decide *d, const struct shadowpol_holders *h,
		  uint64_t segment, uint64_t node)
{
	size_t i;

	for (i = 0; h != NULL && i < h->n; i++) {
		if (h->node_ids[i] == node)
			return true;
	}
	for (i = 0; i < d->in->n_shadows; i++) {
		if (d->in->shadows[i].segment == segment &&
		    d->in->shadows[i].node_id == node)
			return true;
	}
	return false;
}

/* First node of r by rendezvous over (volume, segment) that holds no copy
 * of the segment; 0 if none.  scratch: r->n_nodes entries. */
static uint64_t pick_node(const struct decide *d,
			  const struct shadowpol_region *r, uint64_t segment,
			  uint64_t *scratch)
{
	const struct shadowpol_holders *h = find_holders(d, segment);
	size_t got, i;

	got = placement_pick(r->nodes, r->n_nodes, d->in->volume_id, segment,
			     r->n_nodes, scratch);
	for (i = 0; i < got; i++) {
		if (!holds(d, h, segment, scratch[i]))
			return scratch[i];
	}
	return 0;
}

/* Candidate order: hottest first, then (segment, region). */
static int cmp_candidate(const void *a, const void *b)
{
	const struct shadowpol_access *x = &sort_access[*(const size_t *)a];
	const struct shadowpol_access *y = &sort_access[*(const size_t *)b];

	if (x->reads_per_s != y->reads_per_s)
		return x->reads_per_s > y->reads_per_s ? -1 : 1;
	return cmp_seg_region(x->segment, x->region, y->segment, y->region);
}

static int decide_additions(struct decide *d)
{
	const struct shadowpol_input *in = d->in;
	size_t *cand, n_cand = 0, adds = 0, i, max_nodes = 1;
	uint64_t *scratch;

	cand = malloc((in->n_access + 1) * sizeof(*cand));
	for (i = 0; i < in->n_regions; i++) {
		if (in->regions[i].n_nodes > max_nodes)
			max_nodes = in->regions[i].n_nodes;
	}
	scratch = malloc(max_nodes * sizeof(*scratch));
	if (cand == NULL || scratch == NULL) {
		free(cand);
		free(scratch);
		return OMBRA_ENOMEM;
	}
	for (i = 0; i < in->n_access; i++) {
		const struct shadowpol_access *a = &in->access[i];

		/* The decayed rate outlives the reads (half-life 10 s): a
		 * segment not read for idle_ms would get a shadow that is
		 * dropped as idle at once, every round. */
		if (a->reads_per_s >= in->policy.create_reads_per_s &&
		    a->last_read_ms + in->policy.idle_ms > in->now_ms &&
		    a->segment < in->segment_count &&
		    shadowpol_region_allowed(&in->policy, in->home_region,
					     a->region))
			cand[n_cand++] = i;
	}
	sort_access = in->access;
	qsort(cand, n_cand, sizeof(*cand), cmp_candidate);
	for (i = 0; i < n_cand && adds < in->max_adds; i++) {
		const struct shadowpol_access *a = &in->access[cand[i]];
		const struct shadowpol_region *r = find_region(d, a->region);
		uint64_t node;

		if (r == NULL || has_shadow_in(d, a->segment, a->region))
			continue;
		if (count_live(d, false, a->segment, NULL) +
			added_count(d, false, a->segment, NULL) >=
		    in->policy.max_shadows)
			continue;
		if (count_live(d, true, 0, a->region) +
			added_count(d, true, 0, a->region) >=
		    budget_slots(in))
			continue;
		node = pick_node(d, r, a->segment, scratch);
		if (node == 0)
			continue;
		emit(d, a->segment, node, r->name, false);
		adds++;
	}
	free(cand);
	free(scratch);
	return 0;
}

int shadowpol_decide(const struct shadowpol_input *in,
		     struct shadowpol_change **out, size_t *n)
{
	struct decide d = {.in = in};
	size_t i;
	int rv = OMBRA_ENOMEM;

	*out = NULL;
	*n = 0;
	d.acc = malloc((in->n_access + 1) * sizeof(*d.acc));
	d.removed = calloc(in->n_shadows + 1, sizeof(*d.removed));
	d.rate = calloc(in->n_shadows + 1, sizeof(*d.rate));
	/* Every shadow removed at most once, at most max_adds additions. */
	d.out = malloc((in->n_shadows + in->max_adds + 1) * sizeof(*d.out));
	if (d.acc == NULL || d.removed == NULL || d.rate == NULL ||
	    d.out == NULL)
		goto out;
	for (i = 0; i < in->n_access; i++)
		d.acc[i] = i;
	sort_access = in->access;
	qsort(d.acc, in->n_access, sizeof(*d.acc), cmp_access_idx);
	decide_removals(&d);
	rv = decide_additions(&d);
	if (rv != 0 || d.n_out == 0)
		goto out;
	*out = d.out;
	*n = d.n_out;
	d.out = NULL;
out:
	free(d.acc);
	free(d.removed);
	free(d.rate);
	free(d.out);
	return rv;
}
