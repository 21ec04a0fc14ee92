/* mapcache.c: ombra-stored's cache of shard maps.  At start-up and
 * whenever the heartbeat's map_index grows, every volume of the node's
 * region (and every volume already cached) is fetched again; a request
 * that names a volume or epoch the cache does not know fetches that one
 * volume first (concurrent fetches of a volume are coalesced).  Volumes
 * that metad no longer knows are dropped and their data deleted.
 *
 * Failure: a failed refresh is logged and retried with the next map_index
 * change (or at once if another was requested meanwhile); a failed fetch
 * answers its waiters with the error (UNAVAILABLE to clients). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "err.h"
#include "log.h"
#include "stored.h"
#include "volume.pb-c.h"

/* ------------------------------------------------ volume refresh */

/* One refresh of every volume the node cares about: those of its region
 * and those already cached. */
struct refresh {
	struct stored *sd;
	uint64_t seq;	  /* sd->fetch_seq when it began */
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

/* Install a fetched map (owned by the cache from now on): raise the
 * epochs seen of its segments.  A map whose fetch began before the cached
 * one's is dropped: it may be older (e.g. a refresh that read metad
 * before a resize, finishing after an on-demand fetch saw it). */
static void install_volume(struct stored *sd, struct sm_volume *v)
{
	struct sm_volume *old = sm_find(&sd->maps, v->id);

	if (old != NULL && old->fetch_seq > v->fetch_seq) {
		sm_volume_free(v);
		return;
	}
	for (uint64_t i = 0; i < v->n_segs; i++) {
		struct segstate *s = segtab_find(&sd->segs, v->id, i);

		if (s != NULL && s->max_epoch < v->segs[i].epoch) {
			s->max_epoch = v->segs[i].epoch;
		}
	}
	v->fetched_ms = stored_now(sd);
	sm_put(&sd->maps, v);
}

static void refresh_done(void *arg)
{
	struct refresh *r = arg;
	struct stored *sd = r->sd;

	sd->refresh_running = false;
	sd->refresh_failed = r->rv != 0;
	if (r->rv != 0) {
		log_warn("shard-map refresh failed (retried with the next "
			 "heartbeat): %s",
			 r->errmsg);
	} else {
		struct sm_volume *dead = NULL;

		while (r->fetched != NULL) {
			struct sm_volume *v = r->fetched;

			r->fetched = v->next;
			v->fetch_seq = r->seq;
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
		node_maps_refreshed(sd, r->seq);
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
		maps_refresh(sd, NULL);
	}
}

void maps_refresh(struct stored *sd, void (*done)(struct stored *, int))
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
	r->seq = ++sd->fetch_seq;
	if (work_submit(sd, refresh_work, refresh_done, r) != 0) {
		free(r->cached);
		free(r);
		return;
	}
	sd->refresh_running = true;
}

/* Contract in stored.h. */
struct sm_volume *maps_checked(struct stored *sd, uint64_t vol, int rv,
			       uint64_t segsize, grpc_status_code missing_code,
			       grpc_status_code *code, char *msg, size_t len)
{
	struct sm_volume *v = sm_find(&sd->maps, vol);

	if (v == NULL && rv != 0 && rv != OMBRA_ENOTFOUND) {
		*code = GRPC_STATUS_UNAVAILABLE;
		snprintf(msg, len,
			 "cannot fetch the volume's shard map from metad");
		return NULL;
	}
	if (v == NULL) {
		*code = missing_code;
		snprintf(msg, len, "volume %llu does not exist",
			 (unsigned long long)vol);
		return NULL;
	}
	if (segsize != 0 && segsize != v->segsize) {
		*code = GRPC_STATUS_INVALID_ARGUMENT;
		snprintf(msg, len,
			 "segment_size_bytes %llu does not match volume %s's "
			 "%llu",
			 (unsigned long long)segsize, v->name,
			 (unsigned long long)v->segsize);
		return NULL;
	}
	return v;
}

/* ------------------------------------------------ on-demand fetch */

struct map_waiter {
	uint64_t vol;
	bool again; /* MAPS_REFETCH joined a fetch begun before it */
	void (*cb)(void *arg, int rv);
	void *arg;
	struct map_waiter *next;
};

struct fetch {
	struct stored *sd;
	uint64_t vol;
	uint64_t seq; /* sd->fetch_seq when it began */
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

static int fetch_start(struct stored *sd, uint64_t vol);

static void fetch_done(void *arg)
{
	struct fetch *f = arg;
	struct stored *sd = f->sd;
	struct map_waiter *mine = NULL;
	bool again = false;

	if (f->rv == 0) {
		f->v->fetch_seq = f->seq;
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

		if (w->vol == f->vol && w->again && f->rv == 0) {
			/* It needs a fetch that began after it arrived. */
			w->again = false;
			again = true;
			p = &w->next;
		} else if (w->vol == f->vol) {
			*p = w->next;
			w->next = mine;
			mine = w;
		} else {
			p = &w->next;
		}
	}
	if (again && fetch_start(sd, f->vol) != 0) {
		/* Out of memory: answer them with the map just fetched. */
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

/* Begin fetching vol for the waiters queued for it.  0 or OMBRA_ENOMEM. */
static int fetch_start(struct stored *sd, uint64_t vol)
{
	struct sm_volume *v = sm_find(&sd->maps, vol);
	struct fetch *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return OMBRA_ENOMEM;
	}
	f->sd = sd;
	f->vol = vol;
	f->seq = ++sd->fetch_seq;
	f->name = v != NULL && v->name[0] != '\0' ? strdup(v->name) : NULL;
	if (work_submit(sd, fetch_work, fetch_done, f) != 0) {
		free(f->name);
		free(f);
		return OMBRA_ENOMEM;
	}
	return 0;
}

bool maps_may_lag(struct stored *sd, const struct sm_volume *v)
{
	return stored_now(sd) - v->fetched_ms >= STORED_MAP_RECHECK_MS;
}

bool maps_beyond(const struct sm_volume *v, uint64_t seg, uint64_t off,
		 uint64_t len)
{
	return seg >= v->n_segs || off >= v->size || len > v->size - off;
}

void maps_need(struct stored *sd, uint64_t vol, uint64_t seg,
	       uint64_t min_epoch, void (*cb)(void *arg, int rv), void *arg)
{
	struct sm_volume *v = sm_find(&sd->maps, vol);
	struct map_waiter *w;
	bool in_flight = false;

	if (v != NULL && min_epoch != MAPS_REFETCH &&
	    (min_epoch == 0 || seg >= v->n_segs ||
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
	*w =
	    (struct map_waiter){.vol = vol,
				.again = in_flight && min_epoch == MAPS_REFETCH,
				.cb = cb,
				.arg = arg,
				.next = sd->waiters};
	sd->waiters = w;
	if (in_flight || fetch_start(sd, vol) == 0) {
		return;
	}
	sd->waiters = w->next;
	free(w);
	cb(arg, OMBRA_ENOMEM);
}
