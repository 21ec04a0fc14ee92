/* route.c: copy choice per read part by consistency level and expected
 * latency (route.h).  Pure: no clock, no sockets, no allocation.
 *
 * Failure: none beyond route_check()'s messages. */
#include <inttypes.h>
#include <stdio.h>

#include "route.h"

bool route_check(int level, uint64_t max_staleness_ms, uint64_t min_version,
		 char *errmsg, size_t len)
{
	switch (level) {
	case ROUTE_UNSPECIFIED:
	case ROUTE_STRONG:
	case ROUTE_EVENTUAL:
		if (max_staleness_ms != 0 || min_version != 0) {
			snprintf(errmsg, len,
				 "max_staleness_ms and min_version apply to "
				 "BOUNDED reads only (consistency is %s)",
				 level == ROUTE_EVENTUAL ? "EVENTUAL"
							 : "STRONG");
			return false;
		}
		return true;
	case ROUTE_BOUNDED:
		if (max_staleness_ms == 0 && min_version == 0) {
			snprintf(errmsg, len,
				 "BOUNDED reads need max_staleness_ms > 0 or "
				 "min_version > 0 (a version token from "
				 "WriteResponse)");
			return false;
		}
		return true;
	default:
		snprintf(errmsg, len,
			 "unknown consistency %d (expected STRONG, BOUNDED or "
			 "EVENTUAL)",
			 level);
		return false;
	}
}

double route_cost(double expected_ms, bool local)
{
	if (local)
		return expected_ms;
	return expected_ms * ROUTE_REMOTE_FACTOR + ROUTE_REMOTE_MS;
}

const char *route_kind_name(enum route_kind k)
{
	switch (k) {
	case ROUTE_HOME:
		return "home";
	case ROUTE_SHADOW:
		return "shadow";
	case ROUTE_CACHE:
		return "cache";
	default:
		return "?";
	}
}

/* Fill t for candidate c under w; false if c may not serve the read. */
static bool eligible(const struct route_want *w, const struct route_cand *c,
		     struct route_try *t)
{
	t->node = c->node;
	t->kind = c->kind;
	t->foreign_ok = false;
	t->min_version = 0;
	t->max_staleness_ms = 0;
	if (c->kind == ROUTE_HOME)
		return true;
	switch (w->level) {
	case ROUTE_BOUNDED:
		t->min_version = w->min_version;
		t->max_staleness_ms = w->max_staleness_ms;
		if (t->min_version == 0 && t->max_staleness_ms == 0)
			return false; /* route_check() refuses it anyway */
		break;
	case ROUTE_EVENTUAL:
		break;
	default: /* STRONG */
		if (!w->writer_known)
			return false;
		t->min_version = w->writer_version;
		break;
	}
	t->foreign_ok = true;
	return true;
}

unsigned route_plan(const struct route_want *w, const struct route_cand *c,
		    unsigned n, struct route_try *out, unsigned max)
{
	double cost[ROUTE_MAX_CANDS];
	unsigned k = 0;

	for (unsigned i = 0; i < n && k < max && k < ROUTE_MAX_CANDS; i++) {
		struct route_try t;
		unsigned j;
		bool dup = false;

		/* A node listed twice: keep one entry, home if it is one. */
		for (j = 0; j < n; j++) {
			if (j == i || c[j].node != c[i].node)
				continue;
			if (c[j].kind == ROUTE_HOME && c[i].kind != ROUTE_HOME)
				dup = true; /* the home entry stands */
			else if (j < i && (c[j].kind == c[i].kind ||
					   c[i].kind != ROUTE_HOME))
				dup = true; /* an earlier entry stands */
		}
		if (dup || c[i].node == 0 || !eligible(w, &c[i], &t))
			continue;
		/* Insertion by cost, stable. */
		j = k;
		while (j > 0 && cost[j - 1] > c[i].cost) {
			out[j] = out[j - 1];
			cost[j] = cost[j - 1];
			j--;
		}
		out[j] = t;
		cost[j] = c[i].cost;
		k++;
	}
	return k;
}
