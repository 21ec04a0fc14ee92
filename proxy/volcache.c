/* volcache.c: the proxy's cache of volume records and shard maps.
 *
 * A volume is fetched from metad (AdminService.GetShardMap, paged on
 * next_segment, run in the thread pool) the first time it is opened and
 * again whenever the Watch stream reports a change to it ("volume" or
 * "placement" events), a node changes ("node": every cached volume), the
 * stream reconnects (events may have been missed), or the I/O engine was
 * refused by a node (volcache_refresh).  Fetches of one volume are
 * coalesced: at most one runs; requests that arrive while it runs are
 * served by one more fetch after it, so a caller that asks for a fresh map
 * never gets one that was read before it asked.
 *
 * A cached volume is reference-counted: the cache holds one reference,
 * every open and every fetch in flight one more.  A volume metad no longer
 * knows is marked deleted and dropped from the cache; holders see
 * proxy_volume_deleted() and fail their I/O with NOT_FOUND.
 *
 * Failure: a fetch that fails keeps the previous map (if any) and reports
 * metad's status to the waiters; NOT_FOUND means the volume is gone. */
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "vlease.h"
#include "wtrack.h"

/* Pages of the shard map: the metad maximum per call. */
#define FETCH_PAGE 65536
/* Refuse shard maps larger than this many segments (memory bound). */
#define FETCH_MAX_SEGMENTS (16u * 1024u * 1024u)
#define FETCH_TIMEOUT_MS 10000

struct waiter {
	proxy_open_cb cb;
	void *arg;
	bool give_ref;
	struct waiter *next;
};

struct fetch_node {
	uint64_t id;
	char *name, *address, *region;
	int state;
};

struct fetch {
	struct proxy_volume *vol;
	char *name;
	struct rpc_status st;
	uint64_t id, size, seg_size, seg_count;
	struct vol_seg *segs;
	uint64_t *reps;
	size_t n_reps, cap_reps;
	struct fetch_node *nodes;
	size_t n_nodes, cap_nodes;
};

struct proxy_volume {
	struct volcache *vc;
	struct proxy *p;
	int refs;
	char *name;
	uint64_t id, size, seg_size, seg_count;
	struct vol_seg *segs;
	uint64_t *reps;
	bool loaded, deleted, in_cache;
	bool fetching, again;
	struct wtrack wt;
	struct vlease vl; /* writer lease and segment versions (vlease.h) */
	struct waiter *cur, *pending; /* this fetch's / the next fetch's */
	struct proxy_volume *prev, *next;
};

struct volcache {
	struct proxy *p;
	struct proxy_volume *head;
	bool closed;
};

static void fetch_start(struct proxy_volume *vol);

/* ------------------------------------------------------------ accessors */

uint64_t proxy_volume_size(const struct proxy_volume *vol)
{
	return vol->size;
}

const char *proxy_volume_name(const struct proxy_volume *vol)
{
	return vol->name;
}

uint64_t proxy_volume_id(const struct proxy_volume *vol)
{
	return vol->id;
}

uint64_t proxy_volume_seg_size(const struct proxy_volume *vol)
{
	return vol->seg_size;
}

uint64_t proxy_volume_segments(const struct proxy_volume *vol)
{
	return vol->seg_count;
}

struct wtrack *proxy_volume_wtrack(struct proxy_volume *vol)
{
	return &vol->wt;
}

struct vlease *proxy_volume_vlease(struct proxy_volume *vol)
{
	return &vol->vl;
}

struct proxy *proxy_volume_proxy(const struct proxy_volume *vol)
{
	return vol->p;
}

bool proxy_volume_deleted(const struct proxy_volume *vol)
{
	return vol->deleted;
}

struct proxy_volume *proxy_volume_ref(struct proxy_volume *vol)
{
	vol->refs++;
	return vol;
}

unsigned proxy_volume_copies(const struct proxy_volume *vol, uint64_t idx,
			     uint64_t *ids, unsigned max, uint64_t *epoch)
{
	const struct vol_seg *s;
	unsigned n = 0;

	*epoch = 0;
	if (vol->segs == NULL || idx >= vol->seg_count || max == 0)
		return 0;
	s = &vol->segs[idx];
	*epoch = s->epoch;
	if (s->primary == 0)
		return 0;
	ids[n++] = s->primary;
	for (uint32_t i = 0; i < s->n_replicas && n < max; i++)
		ids[n++] = vol->reps[s->replica_off + i];
	return n;
}

unsigned proxy_volume_shadows(const struct proxy_volume *vol, uint64_t idx,
			      uint64_t *ids, unsigned max)
{
	const struct vol_seg *s;
	unsigned n = 0;

	if (vol->segs == NULL || idx >= vol->seg_count)
		return 0;
	s = &vol->segs[idx];
	for (uint32_t i = 0; i < s->n_shadows && n < max; i++)
		ids[n++] = vol->reps[s->replica_off + s->n_replicas + i];
	return n;
}

unsigned proxy_volume_primaries(const struct proxy_volume *vol, uint64_t *ids,
				unsigned max)
{
	unsigned n = 0;

	for (uint64_t i = 0; vol->segs != NULL && i < vol->seg_count; i++) {
		uint64_t id = vol->segs[i].primary;
		unsigned j;

		if (id == 0)
			continue;
		for (j = 0; j < n && ids[j] != id; j++)
			;
		if (j == n && n < max)
			ids[n++] = id;
	}
	return n;
}

/* ------------------------------------------------------------ lifetime */

static void vol_unlink(struct proxy_volume *vol)
{
	struct volcache *vc = vol->vc;

	if (!vol->in_cache)
		return;
	if (vol->prev != NULL)
		vol->prev->next = vol->next;
	else
		vc->head = vol->next;
	if (vol->next != NULL)
		vol->next->prev = vol->prev;
	vol->prev = vol->next = NULL;
	vol->in_cache = false;
}

void proxy_volume_release(struct proxy_volume *vol)
{
	if (vol == NULL || --vol->refs > 0)
		return;
	vol_unlink(vol);
	wtrack_reset(&vol->wt);
	vlease_volume_free(&vol->vl);
	free(vol->segs);
	free(vol->reps);
	free(vol->name);
	free(vol);
}

static struct proxy_volume *vol_find(struct volcache *vc, const char *name)
{
	for (struct proxy_volume *v = vc->head; v != NULL; v = v->next)
		if (strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

static struct proxy_volume *vol_new(struct volcache *vc, const char *name)
{
	struct proxy_volume *vol = calloc(1, sizeof(*vol));

	if (vol == NULL || (vol->name = strdup(name)) == NULL) {
		free(vol);
		return NULL;
	}
	vol->vc = vc;
	vol->p = vc->p;
	vol->refs = 1; /* the cache's */
	vol->in_cache = true;
	vol->next = vc->head;
	if (vc->head != NULL)
		vc->head->prev = vol;
	vc->head = vol;
	return vol;
}

/* ------------------------------------------------------------ fetching */

static void fetch_free(struct fetch *f)
{
	for (size_t i = 0; i < f->n_nodes; i++) {
		free(f->nodes[i].name);
		free(f->nodes[i].address);
		free(f->nodes[i].region);
	}
	free(f->nodes);
	free(f->segs);
	free(f->reps);
	free(f->name);
	free(f);
}

static void fetch_fail(struct fetch *f, grpc_status_code code, const char *msg)
{
	f->st.code = code;
	snprintf(f->st.message, sizeof(f->st.message), "%s", msg);
}

/* Append a node id to f->reps (replicas, then shadows, per segment). */
static bool fetch_push_id(struct fetch *f, uint64_t id)
{
	if (f->n_reps == f->cap_reps) {
		size_t cap = f->cap_reps ? f->cap_reps * 2 : 64;
		uint64_t *n = realloc(f->reps, cap * sizeof(*n));

		if (n == NULL) {
			fetch_fail(f, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "out of memory");
			return false;
		}
		f->reps = n;
		f->cap_reps = cap;
	}
	f->reps[f->n_reps++] = id;
	return true;
}

/* Thread pool: copy one page into f.  Returns false on a bad answer. */
static bool fetch_page(struct fetch *f,
		       const Ombra__V1__GetVolumeShardingInfoResponse *r)
{
	const Ombra__V1__Volume *v = r->volume;

	if (v == NULL) {
		fetch_fail(f, GRPC_STATUS_INTERNAL,
			   "metad answered a shard map without a volume");
		return false;
	}
	if (f->segs == NULL) {
		if (v->segment_count > FETCH_MAX_SEGMENTS ||
		    v->segment_size_bytes == 0) {
			fetch_fail(f, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "shard map too large for this proxy");
			return false;
		}
		f->id = v->id;
		f->size = v->size_bytes;
		f->seg_size = v->segment_size_bytes;
		f->seg_count = v->segment_count;
		f->segs =
		    calloc(f->seg_count ? f->seg_count : 1, sizeof(*f->segs));
		if (f->segs == NULL) {
			fetch_fail(f, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "out of memory");
			return false;
		}
	}
	for (size_t i = 0; i < r->n_segments; i++) {
		const Ombra__V1__SegmentPlacement *sp = r->segments[i];
		struct vol_seg *s;

		if (sp->index >= f->seg_count)
			continue;
		s = &f->segs[sp->index];
		s->primary = sp->primary_node_id;
		s->epoch = sp->lease_epoch;
		s->replica_off = (uint32_t)f->n_reps;
		s->n_replicas = 0;
		for (size_t k = 0; k < sp->n_replica_node_ids; k++) {
			if (!fetch_push_id(f, sp->replica_node_ids[k]))
				return false;
			s->n_replicas++;
		}
		/* Shadows follow the replicas in the same array. */
		s->n_shadows = 0;
		for (size_t k = 0; k < sp->n_shadows; k++) {
			if (sp->shadows[k]->node_id == 0)
				continue;
			if (!fetch_push_id(f, sp->shadows[k]->node_id))
				return false;
			s->n_shadows++;
		}
	}
	for (size_t i = 0; i < r->n_nodes; i++) {
		const Ombra__V1__Node *n = r->nodes[i];
		struct fetch_node *fn;

		if (f->n_nodes == f->cap_nodes) {
			size_t cap = f->cap_nodes ? f->cap_nodes * 2 : 8;
			struct fetch_node *nn =
			    realloc(f->nodes, cap * sizeof(*nn));
			if (nn == NULL) {
				fetch_fail(f, GRPC_STATUS_RESOURCE_EXHAUSTED,
					   "out of memory");
				return false;
			}
			f->nodes = nn;
			f->cap_nodes = cap;
		}
		fn = &f->nodes[f->n_nodes];
		fn->id = n->id;
		fn->state = n->state;
		fn->name = strdup(n->name ? n->name : "");
		fn->address = strdup(n->address ? n->address : "");
		fn->region = strdup(n->region ? n->region : "");
		f->n_nodes++;
		if (fn->name == NULL || fn->address == NULL ||
		    fn->region == NULL) {
			fetch_fail(f, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "out of memory");
			return false;
		}
	}
	return true;
}

/* Thread pool: every page of the shard map. */
static void fetch_work(void *arg, struct rpc_cluster *cl)
{
	struct fetch *f = arg;
	Ombra__V1__GetVolumeShardingInfoRequest req =
	    OMBRA__V1__GET_VOLUME_SHARDING_INFO_REQUEST__INIT;
	uint64_t first = 0;

	if (cl == NULL) {
		if (f->st.code == GRPC_STATUS_OK)
			fetch_fail(f, GRPC_STATUS_UNAVAILABLE,
				   "no metad client");
		return;
	}
	req.volume = f->name;
	req.max_segments = FETCH_PAGE;
	do {
		ProtobufCMessage *resp = NULL;
		const Ombra__V1__GetVolumeShardingInfoResponse *r;
		bool ok;

		req.first_segment = first;
		if (rpc_cluster_unary(cl, &ombra__v1__admin_service__descriptor,
				      "GetShardMap", &req.base, &resp,
				      FETCH_TIMEOUT_MS, &f->st) != 0)
			return;
		r = (const Ombra__V1__GetVolumeShardingInfoResponse *)resp;
		ok = fetch_page(f, r);
		first = r->next_segment;
		protobuf_c_message_free_unpacked(resp, NULL);
		if (!ok)
			return;
	} while (first != 0);
	f->st.code = GRPC_STATUS_OK;
}

static void waiters_notify(struct waiter *w, struct proxy_volume *vol,
			   const struct rpc_status *rst)
{
	struct proxy_status st;

	st.code = rst->code;
	snprintf(st.message, sizeof(st.message), "%s", rst->message);
	while (w != NULL) {
		struct waiter *next = w->next;
		bool ok = st.code == GRPC_STATUS_OK;

		if (ok && w->give_ref)
			vol->refs++;
		w->cb(w->arg, &st, ok ? vol : NULL);
		free(w);
		w = next;
	}
}

/* Loop: install the fetched map. */
static void fetch_apply(struct proxy_volume *vol, struct fetch *f)
{
	struct proxy *p = vol->p;

	for (size_t i = 0; i < f->n_nodes; i++)
		nodes_update(p->nodes, f->nodes[i].id, f->nodes[i].name,
			     f->nodes[i].address, f->nodes[i].region,
			     f->nodes[i].state);
	free(vol->segs);
	free(vol->reps);
	vol->segs = f->segs;
	vol->reps = f->reps;
	f->segs = NULL;
	f->reps = NULL;
	if (vol->id != f->id) {
		/* Re-created under the same name: forget what was known. */
		wtrack_reset(&vol->wt);
		segver_reset(&vol->vl.sv, 0);
	}
	vol->id = f->id;
	vol->size = f->size;
	vol->seg_size = f->seg_size;
	vol->seg_count = f->seg_count;
	vol->loaded = true;
}

static void fetch_done(void *arg)
{
	struct fetch *f = arg;
	struct proxy_volume *vol = f->vol;
	struct waiter *w = vol->cur;

	vol->cur = NULL;
	vol->fetching = false;
	if (f->st.code == GRPC_STATUS_OK) {
		fetch_apply(vol, f);
	} else if (f->st.code == GRPC_STATUS_NOT_FOUND) {
		vol->deleted = true;
		vol->again = false;
		if (vol->in_cache) {
			vol_unlink(vol);
			vol->refs--; /* the cache's; f still holds one */
		}
	} else {
		log_warn("shard map of volume %s: %s: %s", vol->name,
			 rpc_status_name(f->st.code), f->st.message);
	}
	waiters_notify(w, vol, &f->st);
	if (vol->deleted) {
		/* Nobody else will fetch it: answer the later waiters too. */
		w = vol->pending;
		vol->pending = NULL;
		waiters_notify(w, vol, &f->st);
	} else if ((vol->again || vol->pending != NULL) && !vol->p->stopping) {
		fetch_start(vol);
	} else if (vol->pending != NULL) {
		struct rpc_status st = {.code = GRPC_STATUS_UNAVAILABLE};

		snprintf(st.message, sizeof(st.message), "proxy shutting down");
		w = vol->pending;
		vol->pending = NULL;
		waiters_notify(w, vol, &st);
	}
	fetch_free(f);
	proxy_volume_release(vol);
}

static void fetch_start(struct proxy_volume *vol)
{
	struct proxy *p = vol->p;
	struct fetch *f = calloc(1, sizeof(*f));

	vol->fetching = true;
	vol->again = false;
	vol->cur = vol->pending;
	vol->pending = NULL;
	vol->refs++;
	if (p->m.map_fetches != NULL)
		metric_inc(p->m.map_fetches, 1);
	if (f == NULL || (f->name = strdup(vol->name)) == NULL) {
		if (f == NULL)
			f = calloc(1, sizeof(*f)); /* last try */
		if (f == NULL) {
			log_error("out of memory fetching %s", vol->name);
			abort();
		}
		f->vol = vol;
		fetch_fail(f, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
		defer_call(p->defer, fetch_done, f);
		return;
	}
	f->vol = vol;
	mdc_run(p->mdc, fetch_work, fetch_done, f);
}

/* Queue a waiter for the next fetch that starts (and start one if none is
 * running).  fresh=false: joining a fetch already running is fine. */
static void vol_wait(struct proxy_volume *vol, bool fresh, bool give_ref,
		     proxy_open_cb cb, void *arg)
{
	struct waiter *w = NULL;

	if (cb != NULL) {
		w = calloc(1, sizeof(*w));
		if (w == NULL) {
			log_error("out of memory queueing a volume waiter");
			abort();
		}
		w->cb = cb;
		w->arg = arg;
		w->give_ref = give_ref;
	}
	if (vol->fetching && !fresh) {
		if (w != NULL) {
			w->next = vol->cur;
			vol->cur = w;
		}
		return;
	}
	if (w != NULL) {
		w->next = vol->pending;
		vol->pending = w;
	}
	if (vol->fetching)
		vol->again = true;
	else
		fetch_start(vol);
}

/* ------------------------------------------------------------ public */

struct open_hit {
	struct proxy_volume *vol;
	proxy_open_cb cb;
	void *arg;
};

static void open_hit_run(void *arg)
{
	struct open_hit *h = arg;
	struct proxy_status st;

	if (h->vol->deleted) {
		proxy_status_set(&st, GRPC_STATUS_NOT_FOUND,
				 "volume %s does not exist", h->vol->name);
		h->cb(h->arg, &st, NULL);
		proxy_volume_release(h->vol);
	} else {
		proxy_status_ok(&st);
		h->cb(h->arg, &st, h->vol); /* the reference moves */
	}
	free(h);
}

struct open_fail {
	struct proxy_status st;
	proxy_open_cb cb;
	void *arg;
};

static void open_fail_run(void *arg)
{
	struct open_fail *o = arg;

	o->cb(o->arg, &o->st, NULL);
	free(o);
}

void proxy_volume_open(struct proxy *p, const char *name, proxy_open_cb cb,
		       void *arg)
{
	struct volcache *vc = p->vc;
	struct proxy_volume *vol;

	if (name == NULL || name[0] == '\0' || p->stopping) {
		struct open_fail *o = calloc(1, sizeof(*o));

		if (o == NULL)
			abort();
		if (p->stopping)
			proxy_status_set(&o->st, GRPC_STATUS_UNAVAILABLE,
					 "proxy shutting down");
		else
			proxy_status_set(&o->st, GRPC_STATUS_INVALID_ARGUMENT,
					 "volume name is required");
		o->cb = cb;
		o->arg = arg;
		defer_call(p->defer, open_fail_run, o);
		return;
	}
	vol = vol_find(vc, name);
	if (vol != NULL && vol->loaded) {
		struct open_hit *h = calloc(1, sizeof(*h));

		if (h == NULL)
			abort();
		h->vol = proxy_volume_ref(vol);
		h->cb = cb;
		h->arg = arg;
		defer_call(p->defer, open_hit_run, h);
		return;
	}
	if (vol == NULL)
		vol = vol_new(vc, name);
	if (vol == NULL) {
		log_error("out of memory opening volume %s", name);
		abort();
	}
	vol_wait(vol, false, true, cb, arg);
}

void volcache_refresh(struct proxy_volume *vol, proxy_open_cb cb, void *arg)
{
	if (vol->deleted) {
		/* Still answer on the loop, not from inside this call. */
		struct open_fail *o = calloc(1, sizeof(*o));

		if (o == NULL)
			abort();
		proxy_status_set(&o->st, GRPC_STATUS_NOT_FOUND,
				 "volume %s does not exist", vol->name);
		o->cb = cb;
		o->arg = arg;
		defer_call(vol->p->defer, open_fail_run, o);
		return;
	}
	vol_wait(vol, true, false, cb, arg);
}

void volcache_on_event(struct volcache *vc, const char *kind, const char *name,
		       bool deleted)
{
	struct proxy_volume *vol;

	(void)deleted; /* a refetch finds out (NOT_FOUND) */
	if (vc->p->stopping)
		return;
	if (strcmp(kind, "node") == 0) {
		volcache_refresh_all(vc);
		return;
	}
	if (strcmp(kind, "volume") != 0 && strcmp(kind, "placement") != 0)
		return;
	vol = vol_find(vc, name);
	if (vol != NULL && (vol->loaded || vol->fetching))
		vol_wait(vol, true, false, NULL, NULL);
}

void volcache_forget(struct volcache *vc, const char *name)
{
	struct proxy_volume *vol = vol_find(vc, name);

	if (vol == NULL)
		return;
	vol->deleted = true;
	vol->again = false;
	vol_unlink(vol);
	proxy_volume_release(vol); /* the cache's reference */
}

void volcache_refresh_all(struct volcache *vc)
{
	struct proxy_volume *vol, *next;

	if (vc->p->stopping)
		return;
	for (vol = vc->head; vol != NULL; vol = next) {
		next = vol->next;
		vol_wait(vol, true, false, NULL, NULL);
	}
}

int volcache_create(struct proxy *p, struct volcache **out, char *errmsg)
{
	struct volcache *vc = calloc(1, sizeof(*vc));

	if (vc == NULL) {
		ombra_errmsg_printf(errmsg, "volume cache: out of memory");
		return OMBRA_ENOMEM;
	}
	vc->p = p;
	*out = vc;
	return 0;
}

void volcache_destroy(struct volcache *vc)
{
	struct proxy_volume *vol, *next;

	if (vc == NULL)
		return;
	for (vol = vc->head; vol != NULL; vol = next) {
		next = vol->next;
		vol_unlink(vol);
		vol->vc = NULL;
		proxy_volume_release(vol);
	}
	free(vc);
}

/* ------------------------------------------------------------ listing */

struct list_job {
	Ombra__V1__ListVolumesRequest req;
	proxy_list_cb cb;
	void *arg;
};

static void list_done(void *arg, const struct rpc_status *rst,
		      const ProtobufCMessage *resp)
{
	struct list_job *j = arg;
	struct proxy_status st;
	const Ombra__V1__ListVolumesResponse *r =
	    (const Ombra__V1__ListVolumesResponse *)resp;
	const char **names = NULL;
	uint64_t *sizes = NULL;
	size_t n = 0;

	st.code = rst->code;
	snprintf(st.message, sizeof(st.message), "%s", rst->message);
	if (r != NULL && r->n_volumes > 0) {
		names = calloc(r->n_volumes, sizeof(*names));
		sizes = calloc(r->n_volumes, sizeof(*sizes));
		if (names == NULL || sizes == NULL) {
			proxy_status_set(&st, GRPC_STATUS_RESOURCE_EXHAUSTED,
					 "out of memory");
		} else {
			for (; n < r->n_volumes; n++) {
				names[n] = r->volumes[n]->name;
				sizes[n] = r->volumes[n]->size_bytes;
			}
		}
	}
	j->cb(j->arg, &st, st.code == GRPC_STATUS_OK ? names : NULL,
	      st.code == GRPC_STATUS_OK ? sizes : NULL,
	      st.code == GRPC_STATUS_OK ? n : 0);
	free(names);
	free(sizes);
	free(j);
}

void proxy_volume_list(struct proxy *p, proxy_list_cb cb, void *arg)
{
	struct list_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		abort();
	ombra__v1__list_volumes_request__init(&j->req);
	j->req.home_region = "";
	j->cb = cb;
	j->arg = arg;
	mdc_call(p->mdc, "ListVolumes", &j->req.base, FETCH_TIMEOUT_MS,
		 list_done, j);
}
