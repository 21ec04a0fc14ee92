/* prefetch.c: the proxy glue of the prefetch engine (prefetch.h): the
 * predictors ("adaptive" selector, "amp" for the SEQUENTIAL hint), the
 * pf_io transport of prefetch_core.c (StoreService.Pull with kind
 * COPY_CACHE, DropCopy, copies from the shard map), the region's node
 * list (AdminService.ListNodes every PF_NODES_MS, also fed to the node
 * table so that channels exist) and the /metrics export.
 *
 * Failure: a pull that fails (node down, refused, the node has no Pull
 * yet: UNIMPLEMENTED) is logged at debug and counted as failed, and never
 * marks the node down (its probes do, nodes.c); a pull of an explicit
 * request (PrefetchData, WILLNEED) answered UNAVAILABLE (the node
 * starting, no source copy reachable; a node older than this release
 * also while deleting a volume's dropped copies) is retried up to
 * PF_RETRIES times, PF_RETRY_MS doubling, before it fails; a failed
 * ListNodes keeps the last list; a DropCopy that fails is logged at debug
 * (the node evicts the entry itself in time). */
#include "prefetch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "pcache.h"
#include "predict/adaptive.h"
#include "predict/cache.h"
#include "predict/predict.h"
#include "prefetch_core.h"
#include "proxy.h"
#include "store.pb-c.h"

#define PF_PULL_MS 30000
#define PF_DROP_MS 10000
#define PF_LIST_MS 5000
/* Shadow caches of the selector: the cache's size up to this (memory:
 * ~170 bytes per block per arm, 13 arms). */
#define PF_SHADOW_MAX_BLOCKS 16384u
#define PF_MAX_COPIES 16
#define PF_RETRIES 6
#define PF_RETRY_MS 50

struct pf_src_metrics {
	struct metric *precision, *coverage, *prefetched, *used, *wasted;
	uint64_t prefetched_seen, used_seen, wasted_seen;
};

struct prefetch {
	struct proxy *p;
	struct prefetch_config cfg;
	struct predictor *pred, *seq;
	struct pf_core *core;
	uv_timer_t tick, retry_timer;
	unsigned handles_open; /* of tick and retry_timer */
	bool stopped, listing;
	struct pf_call *retry; /* pulls waiting to be sent again */
	Ombra__V1__ListNodesRequest list_req;
	struct pf_src_metrics sm[PF_NSRC];
	struct metric *hit_ratio, *block_hit_ratio, *cache_bytes, *inflight;
};

struct pf_call {
	struct prefetch *pf;
	struct pf_pull *r;
	unsigned attempt;
	uint64_t due_ms; /* retry list: when to send again */
	struct pf_call *next;
};

static int pull_send(struct pf_call *pc);
static void on_retry(uv_timer_t *t);

/* ------------------------------------------------------------ transport */

/* The pull of pc ended with st: record it, answer its waiter. */
static void pull_end(struct pf_call *pc, const struct rpc_status *st)
{
	struct prefetch *pf = pc->pf;
	struct pf_pull *r = pc->r;
	void *waiter = r->waiter;
	uint64_t bytes = (uint64_t)r->n * PF_BLOCK, node = r->node;

	free(pc);
	if (st->code != GRPC_STATUS_OK)
		log_debug("prefetch: pull of volume %" PRIu64
			  " segment %" PRIu64 " blocks %u+%u on %s: %s: %s",
			  r->volume_id, r->seg, r->first, r->n,
			  nodes_address(pf->p->nodes, r->node),
			  rpc_status_name(st->code), st->message);
	pf_core_pull_done(pf->core, r, st->code == GRPC_STATUS_OK);
	/* r is free now */
	if (waiter != NULL)
		prefetch_rpc_pull_done(waiter, st, bytes,
				       nodes_address(pf->p->nodes, node));
}

static void retry_arm(struct prefetch *pf)
{
	uint64_t now = uv_now(pf->p->loop), first = UINT64_MAX;

	for (struct pf_call *x = pf->retry; x != NULL; x = x->next)
		if (x->due_ms < first)
			first = x->due_ms;
	if (first == UINT64_MAX)
		uv_timer_stop(&pf->retry_timer);
	else
		uv_timer_start(&pf->retry_timer, on_retry,
			       first > now ? first - now : 0, 0);
}

/* Send the due pulls of the retry list again. */
static void on_retry(uv_timer_t *t)
{
	struct prefetch *pf = t->data;
	uint64_t now = uv_now(pf->p->loop);
	struct pf_call **pp = &pf->retry, *due = NULL;

	while (*pp != NULL) {
		struct pf_call *x = *pp;

		if (x->due_ms <= now) {
			*pp = x->next;
			x->next = due;
			due = x;
		} else {
			pp = &x->next;
		}
	}
	retry_arm(pf);
	while (due != NULL) {
		struct pf_call *next = due->next;
		struct rpc_status st = {.code = GRPC_STATUS_UNAVAILABLE};

		due->next = NULL;
		if (pull_send(due) != 0) {
			snprintf(st.message, sizeof(st.message),
				 "the pull could not be sent again");
			pull_end(due, &st);
		}
		due = next;
	}
}

static void on_pulled(void *arg, const struct rpc_status *st,
		      const ProtobufCMessage *resp)
{
	struct pf_call *pc = arg;
	struct prefetch *pf = pc->pf;

	(void)resp;
	/* No nodes_observe(): a pull's status is the outcome of the node's
	 * work (reading the home copy, storing), and its UNAVAILABLE is
	 * mostly the node's own answer (deleting the volume's dropped
	 * copies, no source copy reachable, starting).  Taken as a transport
	 * failure it marked an answering node down and moved reads off its
	 * cache entries; the probe each second says whether it is reachable. */
	if (st->code == GRPC_STATUS_UNAVAILABLE && pc->r->waiter != NULL &&
	    pc->attempt < PF_RETRIES && !pf->stopped && !pf->p->stopping) {
		pc->due_ms = uv_now(pf->p->loop) +
			     ((uint64_t)PF_RETRY_MS << pc->attempt);
		pc->attempt++;
		pc->next = pf->retry;
		pf->retry = pc;
		retry_arm(pf);
		return;
	}
	pull_end(pc, st);
}

/* Send (again) the pull of pc; nonzero: not sent (pc untouched). */
static int pull_send(struct pf_call *pc)
{
	struct prefetch *pf = pc->pf;
	const struct pf_pull *r = pc->r;
	Ombra__V1__PullRequest q = OMBRA__V1__PULL_REQUEST__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct rpc_channel *ch;

	if (pf->stopped || pf->p->stopping)
		return OMBRA_EPRECOND;
	ch = nodes_channel(pf->p->nodes, r->node, errmsg);
	if (ch == NULL) {
		log_debug("prefetch: %s", errmsg);
		return OMBRA_EUNAVAIL;
	}
	q.volume_id = r->volume_id;
	q.segment_index = r->seg;
	q.segment_size_bytes = r->seg_size;
	q.offset_bytes = (uint64_t)r->first * PF_BLOCK;
	q.length_bytes = (uint64_t)r->n * PF_BLOCK;
	q.kind = OMBRA__V1__COPY_KIND__COPY_CACHE;
	return rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
				 "Pull", &q.base, PF_PULL_MS, on_pulled, pc,
				 NULL);
}

static int io_pull(void *ctx, struct pf_pull *r)
{
	struct pf_call *pc = calloc(1, sizeof(*pc));
	int rv;

	if (pc == NULL)
		return OMBRA_ENOMEM;
	pc->pf = ctx;
	pc->r = r;
	rv = pull_send(pc);
	if (rv != 0)
		free(pc);
	return rv;
}

static void on_dropped(void *arg, const struct rpc_status *st,
		       const ProtobufCMessage *resp)
{
	(void)resp;
	if (st->code != GRPC_STATUS_OK)
		log_debug("prefetch: DropCopy on node %" PRIu64 ": %s: %s",
			  (uint64_t)(uintptr_t)arg, rpc_status_name(st->code),
			  st->message);
}

static void io_drop(void *ctx, uint64_t volume_id, uint64_t seg, uint64_t node,
		    uint32_t first, uint32_t n)
{
	struct prefetch *pf = ctx;
	Ombra__V1__DropCopyRequest q = OMBRA__V1__DROP_COPY_REQUEST__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct rpc_channel *ch;

	if (pf->stopped || pf->p->stopping)
		return;
	ch = nodes_channel(pf->p->nodes, node, errmsg);
	if (ch == NULL)
		return;
	q.volume_id = volume_id;
	q.segment_index = seg;
	q.offset_bytes = (uint64_t)first * PF_BLOCK;
	q.length_bytes = (uint64_t)n * PF_BLOCK;
	q.cache_only = true; /* the entry may have become a shadow */
	rpc_channel_unary(ch, &ombra__v1__store_service__descriptor, "DropCopy",
			  &q.base, PF_DROP_MS, on_dropped,
			  (void *)(uintptr_t)node, NULL);
}

static bool io_is_copy(void *ctx, void *volctx, uint64_t seg, uint64_t node)
{
	struct proxy_volume *vol = volctx;
	uint64_t ids[PF_MAX_COPIES], epoch;
	unsigned n;

	(void)ctx;
	if (seg >= proxy_volume_segments(vol))
		return false;
	n = proxy_volume_copies(vol, seg, ids, PF_MAX_COPIES, &epoch);
	for (unsigned i = 0; i < n; i++)
		if (ids[i] == node)
			return true;
	n = proxy_volume_shadows(vol, seg, ids, PF_MAX_COPIES);
	for (unsigned i = 0; i < n; i++)
		if (ids[i] == node)
			return true;
	return false;
}

void prefetch_volinfo(struct proxy_volume *vol, struct pf_volinfo *out)
{
	out->id = proxy_volume_id(vol);
	out->size = proxy_volume_size(vol);
	out->seg_size = proxy_volume_seg_size(vol);
	out->ctx = vol;
}

void prefetch_observe(struct prefetch *pf, struct proxy_volume *vol,
		      uint64_t off, uint64_t len, bool is_read)
{
	struct pf_volinfo vi;

	if (pf == NULL || pf->stopped)
		return;
	prefetch_volinfo(vol, &vi);
	pf_core_observe(pf->core, &vi, off, len, is_read, uv_hrtime() / 1000);
}

void prefetch_cache_refused(struct prefetch *pf, struct proxy_volume *vol,
			    uint64_t seg, uint64_t node)
{
	struct pf_volinfo vi;

	if (pf == NULL || pf->stopped)
		return;
	prefetch_volinfo(vol, &vi);
	if (pf_core_refused(pf->core, &vi, seg, node))
		log_debug("prefetch: cache entry of volume %" PRIu64
			  " segment %" PRIu64 " on %s refused a read: dropped",
			  vi.id, seg, nodes_address(pf->p->nodes, node));
}

/* ------------------------------------------------------------ nodes */

static void on_nodes(void *arg, const struct rpc_status *st,
		     const ProtobufCMessage *resp)
{
	struct prefetch *pf = arg;
	const Ombra__V1__ListNodesResponse *r =
	    (const Ombra__V1__ListNodesResponse *)resp;
	struct pf_node *nodes;
	size_t k = 0;

	pf->listing = false;
	if (pf->stopped)
		return;
	if (st->code != GRPC_STATUS_OK) {
		log_debug("prefetch: ListNodes of region %s: %s: %s",
			  pf->p->region, rpc_status_name(st->code),
			  st->message);
		return;
	}
	nodes = calloc(r->n_nodes + 1, sizeof(*nodes));
	if (nodes == NULL)
		return;
	for (size_t i = 0; i < r->n_nodes; i++) {
		const Ombra__V1__Node *x = r->nodes[i];

		if (x->region == NULL || strcmp(x->region, pf->p->region) != 0)
			continue;
		nodes_update(pf->p->nodes, x->id, x->name, x->address,
			     x->region, (int)x->state);
		nodes[k].id = x->id;
		nodes[k].weight = x->capacity_bytes;
		nodes[k].up = x->state == OMBRA__V1__NODE_STATE__NODE_UP;
		k++;
	}
	pf_core_set_nodes(pf->core, nodes, k);
	free(nodes);
}

static void list_nodes(struct prefetch *pf)
{
	if (pf->listing || pf->stopped || pf->p->mdc == NULL)
		return;
	pf->listing = true;
	mdc_call(pf->p->mdc, "ListNodes", &pf->list_req.base, PF_LIST_MS,
		 on_nodes, pf);
}

/* ------------------------------------------------------------ metrics */

static int metrics_setup(struct prefetch *pf)
{
	struct metrics_registry *r = pf->p->metrics;
	char labels[64];

	if (r == NULL)
		return 0;
	for (unsigned s = 0; s < PF_NSRC; s++) {
		struct pf_src_metrics *m = &pf->sm[s];

		snprintf(labels, sizeof(labels), "predictor=\"%s\"",
			 pf_src_name((enum pf_src)s));
		m->precision = metrics_gauge(
		    r, "ombra_proxy_prefetch_precision",
		    "Prefetched blocks read before leaving the cache / "
		    "prefetched blocks",
		    labels);
		m->coverage = metrics_gauge(
		    r, "ombra_proxy_prefetch_coverage",
		    "Block reads served by the predictor's prefetches / block "
		    "reads",
		    labels);
		m->prefetched = metrics_counter(
		    r, "ombra_proxy_prefetch_bytes_total",
		    "Bytes pulled into the region's cache entries", labels);
		m->used = metrics_counter(
		    r, "ombra_proxy_prefetch_used_bytes_total",
		    "Prefetched bytes read before leaving the cache", labels);
		m->wasted = metrics_counter(
		    r, "ombra_proxy_prefetch_wasted_bytes_total",
		    "Prefetched bytes evicted or dropped unread", labels);
		if (m->precision == NULL || m->coverage == NULL ||
		    m->prefetched == NULL || m->used == NULL ||
		    m->wasted == NULL)
			return OMBRA_ENOMEM;
	}
	pf->hit_ratio = metrics_gauge(
	    r, "ombra_proxy_prefetch_hit_ratio",
	    "Client reads whose blocks were all in cache entries / reads",
	    NULL);
	pf->block_hit_ratio = metrics_gauge(
	    r, "ombra_proxy_prefetch_block_hit_ratio",
	    "Block reads found in cache entries / block reads", NULL);
	pf->cache_bytes = metrics_gauge(
	    r, "ombra_proxy_prefetch_cache_bytes",
	    "Bytes recorded in cache entries (bound: --prefetch-cache)", NULL);
	pf->inflight = metrics_gauge(r, "ombra_proxy_prefetch_pulls_inflight",
				     "Pulls in flight", NULL);
	if (pf->hit_ratio == NULL || pf->block_hit_ratio == NULL ||
	    pf->cache_bytes == NULL || pf->inflight == NULL)
		return OMBRA_ENOMEM;
	return 0;
}

static void counter_to(struct metric *m, uint64_t *seen, uint64_t now)
{
	if (now > *seen)
		metric_inc(m, (double)(now - *seen));
	*seen = now;
}

static void metrics_export(struct prefetch *pf)
{
	struct pf_volume_stats t;

	if (pf->p->metrics == NULL)
		return;
	pf_core_total_stats(pf->core, &t);
	for (unsigned s = 0; s < PF_NSRC; s++) {
		struct pf_src_metrics *m = &pf->sm[s];
		const struct pf_stats *x = &t.src[s];

		metric_set(m->precision, pf_stats_precision(x));
		metric_set(m->coverage, pf_stats_coverage(x, t.read_blocks));
		counter_to(m->prefetched, &m->prefetched_seen,
			   x->prefetched * PF_BLOCK);
		counter_to(m->used, &m->used_seen, x->used * PF_BLOCK);
		counter_to(m->wasted, &m->wasted_seen, x->wasted * PF_BLOCK);
	}
	metric_set(pf->hit_ratio,
		   t.reads ? (double)t.read_hits / (double)t.reads : 0.0);
	metric_set(pf->block_hit_ratio,
		   t.read_blocks ? (double)t.block_hits / (double)t.read_blocks
				 : 0.0);
	metric_set(pf->cache_bytes, (double)(t.cached_blocks * PF_BLOCK));
	metric_set(pf->inflight, (double)pf_core_inflight(pf->core));
}

static void on_tick(uv_timer_t *t)
{
	struct prefetch *pf = t->data;

	list_nodes(pf);
	metrics_export(pf);
}

/* ------------------------------------------------------------ life */

static int make_predictors(struct prefetch *pf, char *errmsg)
{
	struct predict_config pc = {
	    .block_size = PF_BLOCK,
	    .max_candidates = 16,
	    .memory_bytes = 0,
	};
	struct cache_config cc = {
	    .policy = CACHE_LRU,
	    .capacity = pf->cfg.cache_bytes / PF_BLOCK,
	    .prefetch_pct = 25,
	};

	if (pf->cfg.model_path != NULL) {
		struct predictor *l =
		    predictor_create("lstm", &pc, pf->cfg.model_path, errmsg);

		if (l == NULL) {
			ombra_errmsg_wrapf(errmsg, "--prefetch-model %s",
					   pf->cfg.model_path);
			return OMBRA_EINVAL;
		}
		predictor_destroy(l);
	}
	pf->pred = adaptive_predictor_create(&pc, pf->cfg.model_path, errmsg);
	if (pf->pred == NULL) {
		ombra_errmsg_wrapf(errmsg, "prefetch predictor");
		return OMBRA_ENOMEM;
	}
	if (cc.capacity > PF_SHADOW_MAX_BLOCKS)
		cc.capacity = PF_SHADOW_MAX_BLOCKS;
	if (cc.capacity < 64)
		cc.capacity = 64;
	if (adaptive_set_cache(pf->pred, &cc, 0, errmsg) != 0) {
		ombra_errmsg_wrapf(errmsg,
				   "prefetch predictor's shadow caches");
		return OMBRA_ENOMEM;
	}
	pf->seq = predictor_create("amp", &pc, NULL, errmsg);
	if (pf->seq == NULL) {
		ombra_errmsg_wrapf(errmsg, "prefetch predictor amp");
		return OMBRA_ENOMEM;
	}
	return 0;
}

int prefetch_create(struct proxy *p, const struct prefetch_config *cfg,
		    struct prefetch **out, char *errmsg)
{
	struct prefetch *pf = calloc(1, sizeof(*pf));
	struct pf_core_config cc;
	struct pf_io io;
	int rv;

	if (pf == NULL) {
		ombra_errmsg_printf(errmsg, "prefetch engine: out of memory");
		return OMBRA_ENOMEM;
	}
	pf->p = p;
	pf->cfg = *cfg;
	rv = make_predictors(pf, errmsg);
	if (rv != 0)
		goto err;
	memset(&cc, 0, sizeof(cc));
	cc.budget_bps = cfg->budget_bps;
	cc.cache_bytes = cfg->cache_bytes;
	cc.max_segments = (size_t)cfg->max_segments;
	io = (struct pf_io){
	    .pull = io_pull, .drop = io_drop, .is_copy = io_is_copy, .ctx = pf};
	if (pf_core_create(&cc, pf->pred, pf->seq, &io, &pf->core) != 0 ||
	    metrics_setup(pf) != 0) {
		ombra_errmsg_printf(errmsg, "prefetch engine: out of memory");
		rv = OMBRA_ENOMEM;
		goto err;
	}
	ombra__v1__list_nodes_request__init(&pf->list_req);
	pf->list_req.region = (char *)p->region;
	pf->list_req.allow_stale = true;
	uv_timer_init(p->loop, &pf->tick);
	pf->tick.data = pf;
	uv_timer_init(p->loop, &pf->retry_timer);
	pf->retry_timer.data = pf;
	pf->handles_open = 2;
	uv_timer_start(&pf->tick, on_tick, 0, PF_NODES_MS);
	p->pcache = pf_core_pcache(pf->core);
	*out = pf;
	return 0;
err:
	pf_core_destroy(pf->core);
	predictor_destroy(pf->seq);
	predictor_destroy(pf->pred);
	free(pf);
	return rv;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct prefetch *pf = h->data;

	pf->handles_open--;
	if (pf->p == NULL && pf->handles_open == 0) /* destroyed meanwhile */
		free(pf);
}

void prefetch_stop(struct prefetch *pf)
{
	struct rpc_status st = {.code = GRPC_STATUS_UNAVAILABLE};

	if (pf == NULL || pf->stopped)
		return;
	pf->stopped = true;
	uv_timer_stop(&pf->tick);
	uv_timer_stop(&pf->retry_timer);
	uv_close((uv_handle_t *)&pf->tick, on_handle_closed);
	uv_close((uv_handle_t *)&pf->retry_timer, on_handle_closed);
	snprintf(st.message, sizeof(st.message), "proxy shutting down");
	while (pf->retry != NULL) {
		struct pf_call *x = pf->retry;

		pf->retry = x->next;
		pull_end(x, &st);
	}
}

void prefetch_destroy(struct prefetch *pf)
{
	if (pf == NULL)
		return;
	prefetch_stop(pf);
	if (pf->p->pcache == pf_core_pcache(pf->core))
		pf->p->pcache = NULL;
	pf_core_destroy(pf->core);
	predictor_destroy(pf->seq);
	predictor_destroy(pf->pred);
	pf->core = NULL;
	pf->p = NULL;
	if (pf->handles_open == 0)
		free(pf);
	/* else the close callback frees pf */
}

struct pf_core *prefetch_core(struct prefetch *pf)
{
	return pf->core;
}

uint64_t prefetch_cache_bytes(const struct prefetch *pf)
{
	return pf->cfg.cache_bytes;
}
