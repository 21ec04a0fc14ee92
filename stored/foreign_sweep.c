/* foreign_sweep.c: the start-up sweep of ombra-stored that reclaims the
 * disk space of foreign copies (shadows, cache entries) left in the
 * segment store by a previous run (docs/stored.md "Foreign copies").
 *
 * Foreign-copy records are soft state: after a restart none exist, so
 * nothing is served from the data left behind, but its space was only
 * reclaimed when the volume got a foreign copy here again and lost it.
 * Once, when the node starts serving: the volumes the store holds data
 * of are listed (segstore_list_volumes, thread pool); each one not homed
 * in this region has its shard map fetched (maps_need) and is handed to
 * foreign_maybe_reclaim(), which deletes its data only when this node
 * holds no home role of any of its segments (a region failover may have
 * made it a primary), no foreign copy of it and nothing deletes it
 * already.  A volume whose map lists this node as a shadow of one of its
 * segments is kept: the shadow is re-created and filled over that data.
 * Volumes homed in this region are never touched here.
 *
 * Failure: nothing here answers a client.  A failed listing or map fetch
 * is logged and that volume (or the sweep) is skipped until the next
 * start; a volume unknown to metad is left alone (the map cache deletes
 * the data of volumes it sees deleted). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "foreign.h"
#include "log.h"

struct sweep {
	struct stored *sd;
	uint64_t *ids;
	size_t n, next;
	bool in_call; /* inside maps_need(): its callback may run at once */
	bool waiting; /* a map fetch runs for ids[next] */
	size_t reclaimed;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static bool lists_shadow_here(const struct sm_volume *v, uint64_t node)
{
	for (uint64_t i = 0; i < v->n_segs; i++) {
		if (sm_seg_has_shadow(&v->segs[i], node)) {
			return true;
		}
	}
	return false;
}

static void sweep_check(struct sweep *s, uint64_t vol)
{
	struct sm_volume *v = sm_find(&s->sd->maps, vol);

	if (v == NULL || strcmp(v->home_region, s->sd->cfg.region) == 0) {
		return;
	}
	if (lists_shadow_here(v, s->sd->node_id)) {
		log_debug("start-up sweep: volume %llu keeps its data here "
			  "(a shadow is placed here)",
			  (unsigned long long)vol);
		return;
	}
	if (foreign_maybe_reclaim(s->sd, vol)) {
		log_info("start-up sweep: volume %llu (homed in %s) has data "
			 "here but no copy this node needs: deleting it",
			 (unsigned long long)vol, v->home_region);
		s->reclaimed++;
	}
}

static void sweep_end(struct sweep *s)
{
	struct stored *sd = s->sd;

	if (s->n > 0) {
		log_info("start-up sweep: %zu volume(s) with data here, %zu "
			 "reclaimed",
			 s->n, s->reclaimed);
	}
	free(s->ids);
	free(s);
	stored_call_end(sd);
}

static void sweep_next(struct sweep *s);

static void sweep_mapped(void *arg, int rv)
{
	struct sweep *s = arg;
	uint64_t vol = s->ids[s->next];

	s->waiting = false;
	s->next++;
	if (rv == 0) {
		sweep_check(s, vol);
	} else if (rv != OMBRA_ENOTFOUND) {
		log_warn("start-up sweep: volume %llu: shard map: %s (left "
			 "as it is)",
			 (unsigned long long)vol, ombra_strerror(rv));
	}
	if (!s->in_call) {
		sweep_next(s);
	}
}

/* One volume after the other; a cached map is checked at once, a missing
 * one fetched first (sweep_mapped continues). */
static void sweep_next(struct sweep *s)
{
	while (s->next < s->n && !s->sd->stopping) {
		uint64_t vol = s->ids[s->next];

		if (sm_find(&s->sd->maps, vol) != NULL) {
			s->next++;
			sweep_check(s, vol);
			continue;
		}
		s->waiting = true;
		s->in_call = true;
		maps_need(s->sd, vol, 0, 0, sweep_mapped, s);
		s->in_call = false;
		if (s->waiting) {
			return;
		}
	}
	sweep_end(s);
}

static void sweep_work(void *arg)
{
	struct sweep *s = arg;

	s->rv = segstore_list_volumes(s->sd->ss, &s->ids, &s->n, s->errmsg);
}

static void sweep_listed(void *arg)
{
	struct sweep *s = arg;

	if (s->rv != 0) {
		log_warn("start-up sweep: %s (foreign data left by a previous "
			 "run keeps its space)",
			 s->errmsg);
		s->n = 0;
	}
	sweep_next(s);
}

void foreign_sweep_start(struct stored *sd)
{
	struct sweep *s;

	if (sd->fg.swept) {
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return;
	}
	s->sd = sd;
	stored_call_begin(sd);
	if (work_submit(sd, sweep_work, sweep_listed, s) != 0) {
		stored_call_end(sd);
		free(s);
		return;
	}
	sd->fg.swept = true;
}
