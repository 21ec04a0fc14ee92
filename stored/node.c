/* node.c: ombra-stored's relation with metad: registration, heartbeats and
 * the node lease (self-fencing), and the shard-map cache (fetched at
 * start-up, refreshed when the heartbeat's map_index grows, fetched on
 * demand for a volume or epoch the node does not know).
 *
 * Lease: the send time of the last acknowledged heartbeat + lease_ms -
 * lease_ms/4, on the monotonic clock; metad only moves a node's segments
 * lease_ms after its last heartbeat, so the node stops acting first.
 *
 * Failure: registration and the first map fetch are retried every second
 * until they succeed (metad may start later); a failed heartbeat or
 * refresh is logged and retried on the next tick.  Volumes that no longer
 * exist in metad are dropped and their data deleted. */
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "err.h"
#include "log.h"
#include "stored.h"
#include "volume.pb-c.h"

#define RETRY_MS 1000
#define DEFAULT_HB_MS 1000

static uint64_t mono_ms(void)
{
	return uv_hrtime() / 1000000u;
}

bool node_lease_valid(struct stored *sd)
{
	return sd->lease_until != 0 && mono_ms() < sd->lease_until;
}

/* Tier usage as protobuf Tiers (*out: n entries, free with tiers_free). */
static int tiers_make(struct stored *sd, Ombra__V1__Tier ***out, size_t *n,
		      char *errmsg)
{
	struct segstore_tier_usage u[SEGSTORE_MAX_TIERS];
	Ombra__V1__Tier **t;
	int rv;

	rv = segstore_usage(sd->ss, u, SEGSTORE_MAX_TIERS, n, errmsg);
	if (rv != 0) {
		return rv;
	}
	t = calloc(*n, sizeof(*t) + sizeof(**t));
	if (t == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	for (size_t i = 0; i < *n; i++) {
		Ombra__V1__Tier *x = (Ombra__V1__Tier *)(t + *n) + i;

		ombra__v1__tier__init(x);
		x->name = (char *)u[i].name;
		x->path = sd->cfg.tiers[i].dir;
		x->capacity_bytes = u[i].capacity;
		x->used_bytes = u[i].used;
		t[i] = x;
	}
	*out = t;
	return 0;
}

/* ------------------------------------------------ volume refresh */

/* One refresh of every volume the node cares about: those of its region
 * and those already cached. */
struct refresh {
	struct stored *sd;
	uint64_t *cached; /* ids cached when the job started */
	size_t n_cached;
	struct sm_volume *fetched; /* list */
	uint64_t *existing;	   /* every volume id metad knows */
	size_t n_existing;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
	void (*done)(struct stored *sd, int rv);
};

static bool id_in(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == id) {
			return true;
		}
	}
	return false;
}

static void refresh_work(void *arg)
{
	struct refresh *r = arg;
	struct stored *sd = r->sd;
	Ombra__V1__ListVolumesRequest req =
	    OMBRA__V1__LIST_VOLUMES_REQUEST__INIT;
	Ombra__V1__ListVolumesResponse *resp = NULL;
	struct rpc_status st;

	r->rv = meta_call(&sd->meta_main, &ombra__v1__admin_service__descriptor,
			  "ListVolumes", &req.base, (ProtobufCMessage **)&resp,
			  STORED_META_TIMEOUT_MS, &st);
	if (r->rv != 0) {
		ombra_errmsg_printf(r->errmsg, "ListVolumes: %s: %s",
				    rpc_status_name(st.code), st.message);
		return;
	}
	r->existing = calloc(resp->n_volumes + 1, sizeof(uint64_t));
	if (r->existing == NULL) {
		r->rv = OMBRA_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < resp->n_volumes; i++) {
		const Ombra__V1__Volume *vol = resp->volumes[i];
		struct sm_volume *v = NULL;

		r->existing[r->n_existing++] = vol->id;
		if (strcmp(vol->home_region, sd->cfg.region) != 0 &&
		    !id_in(r->cached, r->n_cached, vol->id)) {
			continue;
		}
		r->rv =
		    meta_fetch_volume(sd, vol->id, vol->name, &v, r->errmsg);
		if (r->rv == OMBRA_ENOTFOUND) {
			r->n_existing--; /* deleted meanwhile */
			r->rv = 0;
			continue;
		}
		if (r->rv != 0) {
			break;
		}
		v->next = r->fetched;
		r->fetched = v;
	}
out:
	protobuf_c_message_free_unpacked(&resp->base, NULL);
}

struct delvol {
	struct stored *sd;
	uint64_t vol;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void delvol_work(void *arg)
{
	struct delvol *d = arg;

	d->rv = segstore_delete_volume(d->sd->ss, d->vol, d->errmsg);
}

static void delvol_done(void *arg)
{
	struct delvol *d = arg;

	if (d->rv != 0) {
		log_error("volume %llu: deleting its data: %s",
			  (unsigned long long)d->vol, d->errmsg);
	} else {
		log_info("volume %llu no longer exists: its data was deleted",
			 (unsigned long long)d->vol);
	}
	free(d);
}

/* The volume is gone in metad: forget it and delete its data. */
static void drop_volume(struct stored *sd, uint64_t vol)
{
	struct delvol *d = calloc(1, sizeof(*d));

	sm_remove(&sd->maps, vol);
	segtab_drop_volume(&sd->segs, vol);
	if (d == NULL) {
		return;
	}
	d->sd = sd;
	d->vol = vol;
	if (work_submit(sd, delvol_work, delvol_done, d) != 0) {
		free(d);
	}
}

/* Install a fetched map: raise the epochs seen of its segments. */
static void install_volume(struct stored *sd, struct sm_volume *v)
{
	for (uint64_t i = 0; i < v->n_segs; i++) {
		struct segstate *s = segtab_find(&sd->segs, v->id, i);

		if (s != NULL && s->max_epoch < v->segs[i].epoch) {
			s->max_epoch = v->segs[i].epoch;
		}
	}
	v->fetched_ms = stored_now(sd);
	sm_put(&sd->maps, v);
}

static void refresh_start(struct stored *sd,
			  void (*done)(struct stored *, int));

static void refresh_done(void *arg)
{
	struct refresh *r = arg;
	struct stored *sd = r->sd;

	sd->refresh_running = false;
	if (r->rv != 0) {
		log_warn("shard-map refresh failed: %s", r->errmsg);
	} else {
		struct sm_volume *dead = NULL;

		while (r->fetched != NULL) {
			struct sm_volume *v = r->fetched;

			r->fetched = v->next;
			install_volume(sd, v);
		}
		for (struct sm_volume *v = sd->maps.head; v != NULL;
		     v = v->next) {
			if (!id_in(r->existing, r->n_existing, v->id)) {
				dead = v;
			}
		}
		/* One at a time: drop_volume frees the list entry. */
		while (dead != NULL) {
			drop_volume(sd, dead->id);
			dead = NULL;
			for (struct sm_volume *v = sd->maps.head; v != NULL;
			     v = v->next) {
				if (!id_in(r->existing, r->n_existing, v->id)) {
					dead = v;
				}
			}
		}
		resync_kick(sd);
	}
	while (r->fetched != NULL) {
		struct sm_volume *v = r->fetched;

		r->fetched = v->next;
		sm_volume_free(v);
	}
	if (r->done != NULL) {
		r->done(sd, r->rv);
	}
	free(r->cached);
	free(r->existing);
	free(r);
	if (sd->refresh_again && !sd->stopping) {
		sd->refresh_again = false;
		refresh_start(sd, NULL);
	}
}

static void refresh_start(struct stored *sd, void (*done)(struct stored *, int))
{
	struct refresh *r;
	size_t n = 0;

	if (sd->refresh_running) {
		sd->refresh_again = true;
		return;
	}
	r = calloc(1, sizeof(*r));
	for (struct sm_volume *v = sd->maps.head; v != NULL; v = v->next) {
		n++;
	}
	if (r == NULL ||
	    (r->cached = calloc(n + 1, sizeof(uint64_t))) == NULL) {
		free(r);
		log_error("shard-map refresh: out of memory");
		return;
	}
	for (struct sm_volume *v = sd->maps.head; v != NULL; v = v->next) {
		r->cached[r->n_cached++] = v->id;
	}
	r->sd = sd;
	r->done = done;
	if (work_submit(sd, refresh_work, refresh_done, r) != 0) {
		free(r->cached);
		free(r);
		return;
	}
	sd->refresh_running = true;
}

/* ------------------------------------------------ on-demand fetch */

struct map_waiter {
	uint64_t vol;
	void (*cb)(void *arg, int rv);
	void *arg;
	struct map_waiter *next;
};

struct fetch {
	struct stored *sd;
	uint64_t vol;
	char *name;
	struct sm_volume *v;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void fetch_work(void *arg)
{
	struct fetch *f = arg;

	f->rv = meta_fetch_volume(f->sd, f->vol, f->name, &f->v, f->errmsg);
}

static void fetch_done(void *arg)
{
	struct fetch *f = arg;
	struct stored *sd = f->sd;
	struct map_waiter *mine = NULL;

	if (f->rv == 0) {
		install_volume(sd, f->v);
		resync_kick(sd);
	} else if (f->rv == OMBRA_ENOTFOUND) {
		if (sm_find(&sd->maps, f->vol) != NULL) {
			drop_volume(sd, f->vol);
		}
	} else {
		log_warn("volume %llu: shard map fetch failed: %s",
			 (unsigned long long)f->vol, f->errmsg);
	}
	for (struct map_waiter **p = &sd->waiters; *p != NULL;) {
		struct map_waiter *w = *p;

		if (w->vol == f->vol) {
			*p = w->next;
			w->next = mine;
			mine = w;
		} else {
			p = &w->next;
		}
	}
	while (mine != NULL) {
		struct map_waiter *w = mine;

		mine = w->next;
		w->cb(w->arg, f->rv);
		free(w);
	}
	free(f->name);
	free(f);
}

void node_need_map(struct stored *sd, uint64_t vol, uint64_t seg,
		   uint64_t min_epoch, void (*cb)(void *arg, int rv), void *arg)
{
	struct sm_volume *v = sm_find(&sd->maps, vol);
	struct map_waiter *w;
	struct fetch *f;
	bool in_flight = false;

	if (v != NULL && (min_epoch == 0 || seg >= v->n_segs ||
			  v->segs[seg].epoch >= min_epoch)) {
		cb(arg, 0);
		return;
	}
	for (w = sd->waiters; w != NULL; w = w->next) {
		in_flight |= w->vol == vol;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		cb(arg, OMBRA_ENOMEM);
		return;
	}
	*w = (struct map_waiter){
	    .vol = vol, .cb = cb, .arg = arg, .next = sd->waiters};
	sd->waiters = w;
	if (in_flight) {
		return;
	}
	f = calloc(1, sizeof(*f));
	if (f != NULL) {
		f->sd = sd;
		f->vol = vol;
		f->name =
		    v != NULL && v->name[0] != '\0' ? strdup(v->name) : NULL;
		if (work_submit(sd, fetch_work, fetch_done, f) == 0) {
			return;
		}
		free(f->name);
		free(f);
	}
	sd->waiters = w->next;
	free(w);
	cb(arg, OMBRA_ENOMEM);
}

/* ------------------------------------------------ heartbeats */

struct hb {
	struct stored *sd;
	uint64_t sent_ms;
	Ombra__V1__NodeHeartbeatResponse *resp;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void hb_work(void *arg)
{
	struct hb *h = arg;
	struct stored *sd = h->sd;
	Ombra__V1__NodeHeartbeatRequest req =
	    OMBRA__V1__NODE_HEARTBEAT_REQUEST__INIT;
	Ombra__V1__Tier **tiers = NULL;
	struct rpc_status st;

	req.node_id = sd->node_id;
	if (tiers_make(sd, &tiers, &req.n_tiers, h->errmsg) != 0) {
		req.n_tiers = 0; /* heartbeat anyway: the lease matters */
	}
	req.tiers = tiers;
	h->sent_ms = mono_ms();
	h->rv =
	    meta_call(&sd->meta_hb, &ombra__v1__meta_service__descriptor,
		      "NodeHeartbeat", &req.base, (ProtobufCMessage **)&h->resp,
		      (int)(sd->lease_ms > 0 ? sd->lease_ms / 2 : 2000), &st);
	if (h->rv != 0) {
		ombra_errmsg_printf(h->errmsg, "%s: %s",
				    rpc_status_name(st.code), st.message);
	}
	free(tiers);
}

static void hb_tick(uv_timer_t *t);

/* Lease gauge and /healthz state. */
static void set_lease_state(struct stored *sd)
{
	bool valid = node_lease_valid(sd);

	metric_set(sd->m.lease_valid, valid ? 1.0 : 0.0);
	if (sd->serving) {
		atomic_store(&sd->health, valid ? STORED_HEALTH_OK
						: STORED_HEALTH_LEASE_EXPIRED);
	}
}

static void hb_done(void *arg)
{
	struct hb *h = arg;
	struct stored *sd = h->sd;

	sd->hb_running = false;
	if (h->rv != 0) {
		log_warn("heartbeat to metad failed: %s%s", h->errmsg,
			 node_lease_valid(sd) ? "" : " (lease expired)");
	} else {
		Ombra__V1__NodeHeartbeatResponse *r = h->resp;
		uint64_t interval = r->heartbeat_interval_ms != 0
					? r->heartbeat_interval_ms
					: DEFAULT_HB_MS;
		bool was_valid = node_lease_valid(sd);

		sd->lease_ms = r->lease_ms != 0 ? r->lease_ms : 4 * interval;
		sd->lease_until = h->sent_ms + sd->lease_ms - sd->lease_ms / 4;
		if (!was_valid && node_lease_valid(sd)) {
			log_info("node lease valid (lease %llu ms)",
				 (unsigned long long)sd->lease_ms);
		}
		if (interval != sd->hb_interval_ms && !sd->stopping) {
			sd->hb_interval_ms = interval;
			uv_timer_start(&sd->hb_timer, hb_tick, interval,
				       interval);
		}
		if (r->map_index > sd->map_index) {
			if (sd->map_index != 0) {
				refresh_start(sd, NULL);
			}
			sd->map_index = r->map_index;
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	set_lease_state(sd);
	free(h);
}

static void hb_tick(uv_timer_t *t)
{
	struct stored *sd = t->data;
	struct hb *h;

	set_lease_state(sd);
	if (sd->hb_running || sd->stopping) {
		return;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		return;
	}
	h->sd = sd;
	if (work_submit(sd, hb_work, hb_done, h) != 0) {
		free(h);
		return;
	}
	sd->hb_running = true;
}

/* ------------------------------------------------ start-up */

struct reg {
	struct stored *sd;
	uint64_t node_id;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void (*ready_cb)(struct stored *, int, const char *);
static uv_timer_t retry_timer;

static void reg_work(void *arg)
{
	struct reg *g = arg;
	struct stored *sd = g->sd;
	Ombra__V1__RegisterNodeRequest req =
	    OMBRA__V1__REGISTER_NODE_REQUEST__INIT;
	Ombra__V1__RegisterNodeResponse *resp = NULL;
	Ombra__V1__Tier **tiers = NULL;
	struct rpc_status st;
	char rid[64];

	g->rv = tiers_make(sd, &tiers, &req.n_tiers, g->errmsg);
	if (g->rv != 0) {
		return;
	}
	req.tiers = tiers;
	req.name = (char *)sd->cfg.name;
	req.region = (char *)sd->cfg.region;
	req.address = (char *)sd->cfg.listen;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;
	g->rv = meta_call(&sd->meta_main, &ombra__v1__admin_service__descriptor,
			  "RegisterNode", &req.base, (ProtobufCMessage **)&resp,
			  STORED_META_TIMEOUT_MS, &st);
	if (g->rv != 0) {
		ombra_errmsg_printf(g->errmsg, "RegisterNode: %s: %s",
				    rpc_status_name(st.code), st.message);
	} else if (resp->node == NULL || resp->node->id == 0) {
		ombra_errmsg_printf(g->errmsg, "RegisterNode: no node id");
		g->rv = OMBRA_EPROTO;
	} else {
		g->node_id = resp->node->id;
	}
	if (resp != NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	free(tiers);
}

static void start_step(struct stored *sd);

static void retry_cb(uv_timer_t *t)
{
	start_step(t->data);
}

static void retry_later(struct stored *sd)
{
	if (!sd->stopping) {
		uv_timer_start(&retry_timer, retry_cb, RETRY_MS, 0);
	}
}

static void first_maps_done(struct stored *sd, int rv)
{
	if (rv != 0) {
		retry_later(sd);
		return;
	}
	sd->serving = true;
	sd->hb_interval_ms = DEFAULT_HB_MS;
	uv_timer_start(&sd->hb_timer, hb_tick, 0, sd->hb_interval_ms);
	scrub_start(sd);
	resync_start(sd);
	ready_cb(sd, 0, "");
}

static void reg_done(void *arg)
{
	struct reg *g = arg;
	struct stored *sd = g->sd;

	if (g->rv != 0) {
		log_warn("%s; retrying in %d ms", g->errmsg, RETRY_MS);
		retry_later(sd);
	} else {
		sd->node_id = g->node_id;
		log_info("registered with metad as node %llu (%s, region %s, "
			 "address %s)",
			 (unsigned long long)sd->node_id, sd->cfg.name,
			 sd->cfg.region, sd->cfg.listen);
		refresh_start(sd, first_maps_done);
	}
	free(g);
}

static void start_step(struct stored *sd)
{
	struct reg *g;

	if (sd->stopping) {
		return;
	}
	if (sd->node_id != 0) {
		refresh_start(sd, first_maps_done);
		return;
	}
	g = calloc(1, sizeof(*g));
	if (g != NULL) {
		g->sd = sd;
	}
	if (g == NULL || work_submit(sd, reg_work, reg_done, g) != 0) {
		free(g);
		ready_cb(sd, OMBRA_ENOMEM, "out of memory");
	}
}

void node_init(struct stored *sd)
{
	uv_timer_init(sd->loop, &retry_timer);
	retry_timer.data = sd;
	uv_timer_init(sd->loop, &sd->hb_timer);
	sd->hb_timer.data = sd;
	sd->timers_open += 2;
}

int node_start(struct stored *sd,
	       void (*ready)(struct stored *, int rv, const char *errmsg))
{
	ready_cb = ready;
	start_step(sd);
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	struct stored *sd = h->data;

	sd->timers_open--;
}

void node_stop_timers(struct stored *sd)
{
	if (!uv_is_closing((uv_handle_t *)&retry_timer)) {
		uv_close((uv_handle_t *)&retry_timer, timer_closed);
		uv_close((uv_handle_t *)&sd->hb_timer, timer_closed);
	}
}
