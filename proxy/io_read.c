/* io_read.c: read routing of the proxy's I/O engine (io_internal.h):
 * which copies a read part tries and in what order (route.h's plan over
 * the segment's home copies, shadows and prefetch cache holder, ranked
 * by the latency table), the checks a foreign copy's answer must pass
 * (read-your-writes, the asked watermark), and the counters that tell an
 * operator where reads went and why (ombra_proxy_read_parts_total,
 * ..._foreign_refused_total, ..._remote_plans_total,
 * ..._propagation_waits_total; docs/proxy.md).
 *
 * Failure: none of its own; a plan may be empty (no placement yet) and a
 * failed check makes io.c try the next copy. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "io_internal.h"
#include "pcache.h"
#include "segver.h"
#include "vlease.h"
#include "wtrack.h"

static const char *const refused_why_names[REF_N] = {
    "behind", "not_present", "stale", "unreachable", "other"};
static const char *const remote_why_names[WHY_N] = {
    "no_writer_lease", "version_unknown", "write_in_flight", "no_foreign_copy",
    "cost"};

/* One counter per reason (label reason="names[i]") into out[0..n). */
static void by_reason(struct metrics_registry *reg, const char *name,
		      const char *help, const char *const *names, int n,
		      struct metric **out)
{
	char labels[64];

	for (int i = 0; i < n; i++) {
		snprintf(labels, sizeof(labels), "reason=\"%s\"", names[i]);
		out[i] = metrics_counter(reg, name, help, labels);
	}
}

void io_read_metrics_init(struct io_engine *e)
{
	struct proxy *p = e->p;
	char labels[64];

	if (p->metrics == NULL)
		return;
	for (int local = 0; local < 2; local++)
		for (int k = 0; k < ROUTE_KINDS; k++) {
			snprintf(labels, sizeof(labels),
				 "where=\"%s\",copy=\"%s\"",
				 local ? "local" : "remote",
				 route_kind_name((enum route_kind)k));
			e->rm.served[local][k] = metrics_counter(
			    p->metrics, "ombra_proxy_read_parts_total",
			    "Read parts served, by the copy's region "
			    "(local: this proxy's) and kind",
			    labels);
		}
	by_reason(p->metrics, "ombra_proxy_read_foreign_refused_total",
		  "Read parts a foreign copy (shadow, cache) could not serve, "
		  "read elsewhere, by reason (behind: watermark below the "
		  "version asked; not_present; stale: not confirmed within the "
		  "bound or no read lease; unreachable; other)",
		  refused_why_names, REF_N, e->rm.foreign_refused);
	by_reason(p->metrics, "ombra_proxy_read_remote_plans_total",
		  "Read parts sent to a home copy in another region first, by "
		  "reason (no_writer_lease, version_unknown: STRONG reads of a "
		  "non-writer or of a segment whose version the writer has not "
		  "learned; no_foreign_copy; cost)",
		  remote_why_names, WHY_N, e->rm.remote_plans);
	e->rm.prop_waits = metrics_counter(
	    p->metrics, "ombra_proxy_read_propagation_waits_total",
	    "Read parts that waited for this proxy's propagation to "
	    "bring a foreign copy to the version they need",
	    NULL);
}

/* Add n nodes of one kind to the candidates c (at most ROUTE_MAX_CANDS). */
static unsigned cands_add(struct nodes *nodes, const char *region,
			  struct route_cand *c, unsigned k, const uint64_t *ids,
			  unsigned n, enum route_kind kind)
{
	for (unsigned i = 0; i < n && k < ROUTE_MAX_CANDS; i++) {
		c[k].node = ids[i];
		c[k].kind = kind;
		c[k].cost = route_cost(
		    nodes_expected_ms(nodes, ids[i]),
		    strcmp(nodes_region(nodes, ids[i]), region) == 0);
		k++;
	}
	return k;
}

/* A read part planned to a home copy in another region first: count why
 * (ombra_proxy_read_remote_plans_total), so an operator can tell what
 * keeps reads from local copies.  n_foreign: foreign candidates. */
static void plan_remote_count(struct io_engine *e, const struct route_want *w,
			      uint64_t wepoch, bool wrflight,
			      unsigned n_foreign)
{
	enum remote_why why;

	if (w->level == ROUTE_STRONG && wepoch == 0)
		why = WHY_NO_WRITER_LEASE;
	else if (w->level == ROUTE_STRONG && wrflight)
		why = WHY_WRITE_IN_FLIGHT;
	else if (w->level == ROUTE_STRONG && !w->writer_known)
		why = WHY_VERSION_UNKNOWN;
	else if (n_foreign == 0)
		why = WHY_NO_FOREIGN_COPY;
	else
		why = WHY_COST;
	if (e->rm.remote_plans[why] != NULL)
		metric_inc(e->rm.remote_plans[why], 1);
}

unsigned io_read_plan(struct io_part *pt)
{
	struct io_req *r = pt->r;
	struct proxy *p = r->e->p;
	struct route_cand c[ROUTE_MAX_CANDS];
	struct route_want w = {
	    .level = (enum route_level)r->ro.consistency,
	    .min_version = r->ro.min_version,
	    .max_staleness_ms = r->ro.max_staleness_ms,
	};
	const char *rg = p->region != NULL ? p->region : "";
	uint64_t ids[ROUTE_MAX_CANDS], epoch = 0, wepoch;
	unsigned n, k, n_home;
	bool wrflight = false;

	n = proxy_volume_copies(r->vol, pt->seg, ids, IO_MAX_COPIES, &epoch);
	if (n == 0)
		return 0;
	pt->primary = ids[0];
	k = n_home = cands_add(p->nodes, rg, c, 0, ids, n, ROUTE_HOME);
	wepoch = vlease_valid_epoch(r->vol);
	if (w.level == ROUTE_UNSPECIFIED || w.level == ROUTE_STRONG) {
		w.level = ROUTE_STRONG;
		w.writer_known =
		    segver_known(proxy_volume_segver(r->vol), wepoch, pt->seg,
				 &w.writer_version);
		/* The writer does not know the segment's version yet: the
		 * primary's answer teaches it (segver.h), so ask it first. */
		if (wepoch != 0 && !w.writer_known)
			c[0].cost = 0;
		/* Blocks being written now: only the primary is sure to
		 * answer what other proxies' STRONG reads see (wflight.h). */
		if (w.writer_known && wflight_overlaps(&r->e->wflight, r->vol,
						       pt->off, pt->len)) {
			w.writer_known = false;
			wrflight = true;
		}
	}
	if (w.level != ROUTE_STRONG || w.writer_known) {
		uint64_t s0 = pt->seg * proxy_volume_seg_size(r->vol);
		uint64_t b0 = (pt->off - s0) / IO_BLOCK;
		uint64_t b1 =
		    (pt->off + pt->len - s0 + IO_BLOCK - 1) / IO_BLOCK;

		n = proxy_volume_shadows(r->vol, pt->seg, ids,
					 ROUTE_MAX_CANDS - k);
		k = cands_add(p->nodes, rg, c, k, ids, n, ROUTE_SHADOW);
		if (p->pcache != NULL && b1 <= PCACHE_MAX_BLOCKS) {
			ids[0] = pcache_lookup(
			    p->pcache, proxy_volume_id(r->vol), pt->seg,
			    (uint32_t)b0, (uint32_t)(b1 - b0));
			if (ids[0] != 0)
				k = cands_add(p->nodes, rg, c, k, ids, 1,
					      ROUTE_CACHE);
		}
	}
	n = route_plan(&w, c, k, pt->tries, ROUTE_MAX_CANDS);
	if (n > 0 && pt->tries[0].kind == ROUTE_HOME &&
	    strcmp(nodes_region(p->nodes, pt->tries[0].node), rg) != 0)
		plan_remote_count(r->e, &w, wepoch, wrflight,
				  k > n_home ? k - n_home : 0);
	return n;
}

bool io_strong_foreign_bound(struct io_part *pt)
{
	struct io_req *r = pt->r;
	struct route_try *t = &pt->tries[pt->next_copy];
	uint64_t v;

	if (!t->foreign_ok || (r->ro.consistency != ROUTE_STRONG &&
			       r->ro.consistency != ROUTE_UNSPECIFIED))
		return true;
	if (!segver_known(proxy_volume_segver(r->vol),
			  vlease_valid_epoch(r->vol), pt->seg, &v)) {
		ombra_errmsg_printf(pt->last_msg,
				    "writer lease of volume %s no longer "
				    "valid: STRONG reads go home",
				    proxy_volume_name(r->vol));
		return false;
	}
	if (wflight_overlaps(&r->e->wflight, r->vol, pt->off, pt->len)) {
		ombra_errmsg_printf(pt->last_msg,
				    "a write of these blocks of volume %s is "
				    "in flight: STRONG reads go home",
				    proxy_volume_name(r->vol));
		return false;
	}
	if (v > t->min_version)
		t->min_version = v;
	return true;
}

bool io_part_foreign(const struct io_part *pt)
{
	return pt->r->op == IO_READ && pt->n_copies > 0 &&
	       pt->tries[pt->next_copy].foreign_ok;
}

void io_read_refused(struct io_engine *e, grpc_status_code code,
		     const char *msg)
{
	enum refused_why why = REF_OTHER;

	if (code == GRPC_STATUS_OK || strstr(msg, "watermark") != NULL ||
	    strstr(msg, "older than") != NULL)
		why = REF_BEHIND;
	else if (code == GRPC_STATUS_UNAVAILABLE ||
		 code == GRPC_STATUS_DEADLINE_EXCEEDED)
		why = REF_UNREACHABLE;
	else if (strstr(msg, "not present") != NULL)
		why = REF_NOT_PRESENT;
	else if (strstr(msg, "stale copy") != NULL)
		why = REF_STALE;
	if (e->rm.foreign_refused[why] != NULL)
		metric_inc(e->rm.foreign_refused[why], 1);
}

bool io_read_is_stale(struct io_part *pt,
		      const Ombra__V1__StoreReadResponse *rr, uint64_t a0)
{
	struct wtrack *wt = proxy_volume_wtrack(pt->r->vol);
	uint64_t first = a0 / IO_BLOCK;

	for (size_t i = 0; i < rr->n_block_versions; i++) {
		uint64_t want = wtrack_expected(wt, first + i);

		if (want != 0 && rr->block_versions[i] < want) {
			ombra_errmsg_printf(
			    pt->last_msg,
			    "node %s answered block %" PRIu64
			    " at version %" PRIu64 ", older than the %" PRIu64
			    " this proxy wrote (stale copy)",
			    nodes_address(pt->r->e->p->nodes, pt->node),
			    first + i, rr->block_versions[i], want);
			return true;
		}
	}
	return false;
}

bool io_foreign_is_stale(struct io_part *pt,
			 const Ombra__V1__StoreReadResponse *rr)
{
	const struct route_try *t = &pt->tries[pt->next_copy];

	if (!t->foreign_ok || t->min_version == 0 ||
	    rr->segment_version >= t->min_version)
		return false;
	ombra_errmsg_printf(pt->last_msg,
			    "%s copy on node %s answered at version %" PRIu64
			    ", below the %" PRIu64 " asked (stale copy)",
			    route_kind_name(t->kind),
			    nodes_address(pt->r->e->p->nodes, pt->node),
			    rr->segment_version, t->min_version);
	return true;
}

void io_read_served(struct io_part *pt)
{
	struct io_engine *e = pt->r->e;
	const struct route_try *t = &pt->tries[pt->next_copy];
	int local = nodes_in_region(e->p->nodes, pt->node, e->p->region);

	if (e->rm.served[local][t->kind] != NULL)
		metric_inc(e->rm.served[local][t->kind], 1);
}
