/* foreign_shadow.c: shadows of ombra-stored from the shard map, their
 * background fill and their anti-entropy (docs/shadows.md, docs/stored.md
 * "Foreign copies").  Runs on a FOREIGN_TICK_MS timer on the loop.
 *
 * Discovery: volumes homed in another region are cached by stored only
 * when something asks for them, so every --shadow-check-ms a ListVolumes
 * finds the volumes with a ShadowPolicy that allows this node's region
 * and fetches their maps (mapcache.c keeps cached volumes current).
 *
 * Reconcile (every tick): each segment of a cached volume homed elsewhere
 * whose SegmentPlacement.shadows lists this node (and where it holds no
 * home role) gets a COPY_SHADOW record; a record created that way whose
 * segment no longer lists this node (or the volume is gone, or the node
 * became a home copy after a failover) is removed.  Shadows made by an
 * explicit Pull with COPY_SHADOW stay until DropCopy.  Any record (cache
 * entries too) whose volume is gone (deleted at metad: mapcache.c deleted
 * its data) or whose segment this node now holds as a home copy is
 * removed as well.
 *
 * Fill: one shadow at a time, runs of missing blocks of up to
 * FOREIGN_FILL_BLOCKS pulled with foreign_pull(), paced to the volume's
 * ShadowPolicy.fill_bytes_per_s (FOREIGN_DEFAULT_FILL_BPS when 0) by
 * waiting bytes / rate after each step; a shadow whose step failed is
 * left alone for FOREIGN_FILL_BACKOFF_MS (others are filled meanwhile).
 * A fill that starts from nothing makes the record `filling` (it serves
 * nothing) until every block is present; a shadow that held blocks
 * before (it lost some to invalidation or DropCopy, or an explicit Pull
 * started it) keeps serving those while the rest is pulled.
 *
 * Anti-entropy (each complete shadow every --shadow-check-ms, at most
 * FOREIGN_AE_MAX at once; a free slot goes at once, on the tick or when a
 * round ends, to the due shadow known to lag (watermark below the
 * primary's version seen) first, then to the one due the longest, so
 * every shadow gets its turn however many there are; before, the first
 * shadows of the table took every slot again as soon as they were due
 * and shadows further on were never checked): GetSegmentInfo at the
 * primary (version V and
 * block versions, asked at time T), the local block versions, pull every
 * present block the primary holds newer, then the watermark becomes V and
 * the copy confirmed at T (fc_confirmed), unless another pull made blocks
 * present meanwhile (then the round is repeated at the next tick).
 *
 * Failure: every failure (metad or the primary unreachable, a failed
 * pull) is logged and retried on a later tick; nothing here answers a
 * client. */
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "err.h"
#include "foreign.h"
#include "log.h"

#define FOREIGN_TICK_MS 500
#define FOREIGN_FILL_BLOCKS 64 /* 256 KiB per fill step */
#define FOREIGN_FILL_RETRY_MS 1000
#define FOREIGN_FILL_BACKOFF_MS 5000 /* a shadow whose fill step failed */
#define FOREIGN_AE_MAX 4

/* ------------------------------------------------ discovery */

struct scan {
	struct stored *sd;
	uint64_t *ids;
	size_t n;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static bool policy_allows(const Ombra__V1__Volume *v, const char *region)
{
	const Ombra__V1__ShadowPolicy *p = v->shadow_policy;

	if (p == NULL || strcmp(v->home_region, region) == 0) {
		return false;
	}
	if (p->n_regions == 0) {
		return true;
	}
	for (size_t i = 0; i < p->n_regions; i++) {
		if (strcmp(p->regions[i], region) == 0) {
			return true;
		}
	}
	return false;
}

static void scan_work(void *arg)
{
	struct scan *s = arg;
	Ombra__V1__ListVolumesRequest req =
	    OMBRA__V1__LIST_VOLUMES_REQUEST__INIT;
	Ombra__V1__ListVolumesResponse *resp = NULL;
	struct rpc_status st;

	s->rv =
	    meta_call(&s->sd->meta_main, &ombra__v1__admin_service__descriptor,
		      "ListVolumes", &req.base, (ProtobufCMessage **)&resp,
		      STORED_META_TIMEOUT_MS, &st);
	if (s->rv != 0) {
		ombra_errmsg_printf(s->errmsg, "ListVolumes: %s: %s",
				    rpc_status_name(st.code), st.message);
		return;
	}
	s->ids = calloc(resp->n_volumes + 1, sizeof(uint64_t));
	if (s->ids == NULL) {
		s->rv = OMBRA_ENOMEM;
		ombra_errmsg_printf(s->errmsg, "out of memory");
	} else {
		for (size_t i = 0; i < resp->n_volumes; i++) {
			if (policy_allows(resp->volumes[i],
					  s->sd->cfg.region)) {
				s->ids[s->n++] = resp->volumes[i]->id;
			}
		}
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
}

static void scan_fetched(void *arg, int rv)
{
	(void)arg;
	if (rv != 0) {
		log_debug("shadows: fetching a volume's map: %s",
			  ombra_strerror(rv));
	}
}

static void scan_done(void *arg)
{
	struct scan *s = arg;
	struct stored *sd = s->sd;

	sd->fg.scan_running = false;
	if (s->rv != 0) {
		log_warn("shadows: looking for volumes with shadows: %s",
			 s->errmsg);
	} else if (!sd->stopping) {
		for (size_t i = 0; i < s->n; i++) {
			if (sm_find(&sd->maps, s->ids[i]) == NULL) {
				maps_need(sd, s->ids[i], 0, 0, scan_fetched,
					  NULL);
			}
		}
	}
	free(s->ids);
	free(s);
}

static void scan_start(struct stored *sd)
{
	struct scan *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		return;
	}
	s->sd = sd;
	if (work_submit(sd, scan_work, scan_done, s) != 0) {
		free(s);
		return;
	}
	sd->fg.scan_running = true;
	sd->fg.last_list_ms = stored_now(sd);
}

/* ------------------------------------------------ reconcile */

static void reconcile_volume(struct stored *sd, const struct sm_volume *v)
{
	for (uint64_t i = 0; i < v->n_segs; i++) {
		const struct sm_seg *s = &v->segs[i];
		uint32_t n = foreign_seg_blocks(v, i);
		struct fcent *e;

		if (!sm_seg_has_shadow(s, sd->node_id) ||
		    foreign_is_home(s, sd->node_id) || n == 0 ||
		    n > FC_MAX_BLOCKS) {
			continue;
		}
		e = foreign_find(sd, v->id, i);
		if (e == NULL) {
			log_info("shadow of volume %s segment %llu placed "
				 "here: filling it",
				 v->name, (unsigned long long)i);
		}
		e = foreign_get(sd, v->id, i, FC_SHADOW, n);
		if (e != NULL) {
			e->from_map = true;
		}
	}
}

static void unlisted_one(struct stored *sd, struct fcent *e, void *arg)
{
	struct sm_volume *v = sm_find(&sd->maps, e->c.vol);
	const struct sm_seg *s;
	const char *why;

	(void)arg;
	if (e->pulls > 0 || e->ae_running) {
		return;
	}
	s = v != NULL && e->c.seg < v->n_segs ? &v->segs[e->c.seg] : NULL;
	if (s == NULL) {
		why = "volume or segment gone";
	} else if (foreign_is_home(s, sd->node_id)) {
		why = "now a home copy";
	} else if (e->from_map && e->c.kind == FC_SHADOW &&
		   !sm_seg_has_shadow(s, sd->node_id)) {
		why = "removed from the map";
	} else {
		return;
	}
	log_info("%s of volume %llu segment %llu dropped: %s",
		 e->c.kind == FC_SHADOW ? "shadow" : "cache entry",
		 (unsigned long long)e->c.vol, (unsigned long long)e->c.seg,
		 why);
	foreign_remove(sd, e);
}

static void reconcile(struct stored *sd)
{
	for (struct sm_volume *v = sd->maps.head; v != NULL; v = v->next) {
		if (strcmp(v->home_region, sd->cfg.region) != 0) {
			reconcile_volume(sd, v);
		}
	}
	foreign_each(sd, unlisted_one, NULL);
}

/* ------------------------------------------------ fill */

struct fill {
	struct stored *sd;
	uint64_t vol, seg, gen, bps;
};

static void fill_next(struct stored *sd);

static void fill_timer_cb(uv_timer_t *t)
{
	struct stored *sd = t->data;

	sd->fg.fill_running = false;
	fill_next(sd);
}

static void fill_done(void *arg, int rv, const char *errmsg, uint64_t pulled,
		      uint64_t source)
{
	struct fill *f = arg;
	struct stored *sd = f->sd;
	struct fcent *e = foreign_find(sd, f->vol, f->seg);
	uint64_t delay = FOREIGN_FILL_RETRY_MS;

	(void)source;
	if (e != NULL && e->gen != f->gen) {
		e = NULL;
	}
	if (rv != 0) {
		log_warn("shadow of volume %llu segment %llu: fill: %s (this "
			 "shadow retried in %d ms)",
			 (unsigned long long)f->vol, (unsigned long long)f->seg,
			 errmsg, FOREIGN_FILL_BACKOFF_MS);
		if (e != NULL) {
			/* Other shadows are filled meanwhile. */
			e->fill_retry =
			    stored_now(sd) + FOREIGN_FILL_BACKOFF_MS;
		}
	} else {
		delay = pulled * 1000u / f->bps;
		if (e != NULL && e->c.n_present == e->c.n_blocks) {
			e->c.filling = false;
			e->ae_next = stored_now(sd) + sd->cfg.shadow_check_ms;
			log_info("shadow of volume %llu segment %llu filled "
				 "(watermark %llu)",
				 (unsigned long long)f->vol,
				 (unsigned long long)f->seg,
				 (unsigned long long)e->c.watermark);
		}
	}
	free(f);
	if (sd->stopping || !sd->fg.timer_open) {
		sd->fg.fill_running = false;
		return;
	}
	uv_timer_start(&sd->fg.fill_timer, fill_timer_cb, delay, 0);
}

struct pick {
	struct fcent *e;
	uint64_t now;
};

static void pick_one(struct stored *sd, struct fcent *e, void *arg)
{
	struct pick *p = arg;

	(void)sd;
	if (p->e == NULL && e->c.kind == FC_SHADOW &&
	    e->c.n_present < e->c.n_blocks && e->pulls == 0 && !e->ae_running &&
	    e->fill_retry <= p->now) {
		p->e = e;
	}
}

static void fill_next(struct stored *sd)
{
	struct pick p = {.now = stored_now(sd)};
	struct sm_volume *v;
	struct fill *f;
	uint32_t first = 0, n = 0;

	if (sd->fg.fill_running || sd->stopping) {
		return;
	}
	foreign_each(sd, pick_one, &p);
	if (p.e == NULL) {
		return;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL ||
	    !fc_next_missing(&p.e->c, FOREIGN_FILL_BLOCKS, &first, &n)) {
		free(f);
		return;
	}
	v = sm_find(&sd->maps, p.e->c.vol);
	f->sd = sd;
	f->vol = p.e->c.vol;
	f->seg = p.e->c.seg;
	f->gen = p.e->gen;
	f->bps = v != NULL && v->fill_bytes_per_s != 0
		     ? v->fill_bytes_per_s
		     : FOREIGN_DEFAULT_FILL_BPS;
	if (p.e->c.n_present == 0) {
		/* A fresh fill: serves nothing until complete.  A filled
		 * shadow that lost blocks (invalidated, dropped) keeps
		 * serving the others while they are pulled again. */
		p.e->c.filling = true;
	}
	sd->fg.fill_running = true;
	foreign_pull(sd, p.e, first, n, fill_done, f);
}

/* ------------------------------------------------ anti-entropy */

struct ae {
	struct stored *sd;
	uint64_t vol, seg, gen, segsize;
	uint64_t asked_ms, version; /* the primary's version V at asked_ms */
	uint64_t primary;
	uint64_t pv[FC_MAX_BLOCKS];	      /* the primary's block versions */
	uint64_t lv[FC_MAX_BLOCKS];	      /* ours */
	uint64_t present[FC_MAX_BLOCKS / 64]; /* when compared */
	uint32_t n_pv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static struct fcent *ae_record(struct ae *a)
{
	struct fcent *e = foreign_find(a->sd, a->vol, a->seg);

	return e != NULL && e->gen == a->gen ? e : NULL;
}

static const char AE_RETRY[] = "blocks pulled meanwhile, retried";

static void ae_schedule(struct stored *sd);

static void ae_finish(struct ae *a, const char *why)
{
	struct fcent *e = ae_record(a);
	struct stored *sd = a->sd;

	if (e != NULL) {
		e->ae_running = false;
		/* Only a round spoilt by a concurrent pull is repeated at
		 * once; failures wait for the next period like successes. */
		e->ae_next = stored_now(sd) + (why == AE_RETRY
						   ? FOREIGN_TICK_MS
						   : sd->cfg.shadow_check_ms);
	}
	if (why != NULL) {
		log_debug("shadow of volume %llu segment %llu: anti-entropy: "
			  "%s",
			  (unsigned long long)a->vol,
			  (unsigned long long)a->seg, why);
	}
	free(a);
	ae_schedule(sd); /* the slot goes to the next due shadow */
	stored_call_end(sd);
}

static void ae_pulled(void *arg, int rv, const char *errmsg, uint64_t pulled,
		      uint64_t source)
{
	struct ae *a = arg;
	struct fcent *e = ae_record(a);

	(void)source;
	(void)pulled;
	if (rv != 0) {
		ombra_errmsg_printf(a->errmsg, "pull: %s", errmsg);
		ae_finish(a, a->errmsg);
		return;
	}
	if (e == NULL) {
		ae_finish(a, "copy dropped");
		return;
	}
	/* A block made present by another pull since the comparison may
	 * be older than V: confirm only what was compared. */
	if (e->pulls > 0 ||
	    !fc_ae_confirm(&e->c, a->present, a->version, a->asked_ms)) {
		ae_finish(a, AE_RETRY);
		return;
	}
	ae_finish(a, NULL);
}

static void ae_local_work(void *arg)
{
	struct ae *a = arg;
	struct segstore_segment_info info;

	if (segstore_segment_info(a->sd->ss, a->vol, a->seg, &info, a->lv,
				  FC_MAX_BLOCKS, a->errmsg) != 0) {
		memset(a->lv, 0, sizeof(a->lv));
	}
}

static void ae_compared(void *arg)
{
	struct ae *a = arg;
	struct fcent *e = ae_record(a);
	uint32_t lo = 0, hi = 0;

	if (e == NULL || a->sd->stopping) {
		ae_finish(a, "copy dropped");
		return;
	}
	memcpy(a->present, e->c.present, sizeof(a->present));
	fc_primary_seen(&e->c, a->version, a->asked_ms);
	if (!fc_behind_range(&e->c, a->pv, a->lv, a->n_pv, &lo, &hi)) {
		ae_pulled(a, 0, "", 0, 0);
		return;
	}
	log_debug("shadow of volume %llu segment %llu: blocks %u..%u behind "
		  "the primary",
		  (unsigned long long)a->vol, (unsigned long long)a->seg, lo,
		  hi);
	foreign_pull(a->sd, e, lo, hi - lo + 1, ae_pulled, a);
}

static void ae_info_cb(void *data, const struct rpc_status *st,
		       const ProtobufCMessage *resp)
{
	struct ae *a = data;
	const Ombra__V1__SegmentInfoResponse *r =
	    (const Ombra__V1__SegmentInfoResponse *)resp;

	peer_failed(a->sd, a->primary, st->code);
	if (st->code != GRPC_STATUS_OK) {
		ombra_errmsg_printf(
		    a->errmsg, "GetSegmentInfo at node %llu: %s",
		    (unsigned long long)a->primary, st->message);
		ae_finish(a, a->errmsg);
		return;
	}
	a->version = r->version;
	a->n_pv = r->n_block_versions < FC_MAX_BLOCKS
		      ? (uint32_t)r->n_block_versions
		      : FC_MAX_BLOCKS;
	if (a->n_pv > 0) { /* none: block_versions may be NULL */
		memcpy(a->pv, r->block_versions, a->n_pv * sizeof(uint64_t));
	}
	if (work_submit(a->sd, ae_local_work, ae_compared, a) != 0) {
		ae_finish(a, "out of memory");
	}
}

static void ae_start(struct stored *sd, struct fcent *e)
{
	struct sm_volume *v = sm_find(&sd->maps, e->c.vol);
	Ombra__V1__SegmentInfoRequest q = OMBRA__V1__SEGMENT_INFO_REQUEST__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	const char *addr;
	struct rpc_channel *ch;
	struct ae *a;

	e->ae_next = stored_now(sd) + sd->cfg.shadow_check_ms;
	if (v == NULL || e->c.seg >= v->n_segs ||
	    v->segs[e->c.seg].primary == 0) {
		return;
	}
	addr = stored_node_address(sd, v->segs[e->c.seg].primary);
	ch = addr != NULL ? peer_channel(sd, addr, errmsg) : NULL;
	a = ch != NULL ? calloc(1, sizeof(*a)) : NULL;
	if (a == NULL) {
		return;
	}
	a->sd = sd;
	a->vol = e->c.vol;
	a->seg = e->c.seg;
	a->gen = e->gen;
	a->primary = v->segs[e->c.seg].primary;
	a->asked_ms = foreign_unix_ms();
	q.volume_id = a->vol;
	q.segment_index = a->seg;
	stored_call_begin(sd);
	if (rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
			      "GetSegmentInfo", &q.base,
			      STORED_PEER_READ_TIMEOUT_MS, ae_info_cb, a,
			      NULL) != 0) {
		free(a);
		stored_call_end(sd);
		return;
	}
	e->ae_running = true;
}

struct ae_scan {
	uint64_t now;
	int running;
	struct fcent *best; /* the due shadow whose round starts next */
};

static void ae_count(struct stored *sd, struct fcent *e, void *arg)
{
	struct ae_scan *s = arg;

	(void)sd;
	s->running += e->ae_running ? 1 : 0;
}

static bool ae_lagging(const struct fcent *e)
{
	return e->c.watermark < e->c.primary_version;
}

/* Whether e's round should start before the current best's: a shadow
 * known to lag first, then the one due the longest. */
static bool ae_before(const struct fcent *e, const struct fcent *best)
{
	if (best == NULL) {
		return true;
	}
	if (ae_lagging(e) != ae_lagging(best)) {
		return ae_lagging(e);
	}
	return e->ae_next < best->ae_next;
}

static void ae_pick(struct stored *sd, struct fcent *e, void *arg)
{
	struct ae_scan *s = arg;

	(void)sd;
	if (e->c.kind != FC_SHADOW || e->c.filling || e->c.n_present == 0 ||
	    e->pulls > 0 || e->ae_running || e->ae_next > s->now) {
		return;
	}
	if (ae_before(e, s->best)) {
		s->best = e;
	}
}

/* Fill the free anti-entropy slots with the due shadows, best first
 * (ae_before).  ae_start() moves a shadow's ae_next past now whether or
 * not its round starts, so no shadow is picked twice.  O(slots x
 * records) per call. */
static void ae_schedule(struct stored *sd)
{
	struct ae_scan s = {.now = stored_now(sd)};

	if (sd->stopping || !sd->serving) {
		return;
	}
	foreign_each(sd, ae_count, &s);
	while (s.running < FOREIGN_AE_MAX) {
		s.best = NULL;
		foreign_each(sd, ae_pick, &s);
		if (s.best == NULL) {
			return;
		}
		ae_start(sd, s.best);
		s.running += s.best->ae_running ? 1 : 0;
	}
}

/* ------------------------------------------------ timer */

static void tick(uv_timer_t *t)
{
	struct stored *sd = t->data;
	uint64_t now = stored_now(sd);

	if (sd->stopping || !sd->serving) {
		return;
	}
	if (!sd->fg.scan_running &&
	    (sd->fg.last_list_ms == 0 ||
	     now - sd->fg.last_list_ms >= sd->cfg.shadow_check_ms)) {
		scan_start(sd);
	}
	reconcile(sd);
	fill_next(sd);
	ae_schedule(sd);
	foreign_metrics_update(sd);
}

void foreign_start(struct stored *sd)
{
	foreign_metrics_make(sd);
	if (sd->fg.timer_open) {
		uv_timer_start(&sd->fg.timer, tick, FOREIGN_TICK_MS,
			       FOREIGN_TICK_MS);
	}
	foreign_sweep_start(sd);
}
