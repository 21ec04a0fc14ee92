/* propagate.c: the proxy side of write propagation to foreign copies
 * (propagate.h "proxy"; docs/proxy.md "Propagation to shadows").
 *
 * The I/O engine calls propagate_write() when a segment's primary
 * acknowledged a write or zero, before it answers the client; this only
 * copies the whole blocks into the queue (proxy/propq.c) and arms a timer
 * for the end of the linger (--propagate-linger-ms, docs/proxy.md
 * "Linger"), so the client's acknowledgement never waits for a shadow and
 * the shadow's apply does not run next to the read the client usually
 * sends right after it.  The timer runs propq_kick(), which hands each ready
 * (target, segment) batch to send_batch(): one StoreService.Replicate with
 * shadow = true, prev_version -> version, the merged blocks with their
 * crc32c (stored/crc.c, linked in) and the partial blocks as
 * invalidate_blocks.
 *
 * Outcomes: OK -> sent; FAILED_PRECONDITION (stale lease epoch at the
 * copy), INVALID_ARGUMENT and other non-transient codes -> the batch is
 * dropped (counted, logged at debug; anti-entropy on the copy's node
 * repairs it); UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, UNKNOWN,
 * RESOURCE_EXHAUSTED, or no channel -> retried after a backoff (50 ms
 * doubling to 5 s) until the memory bound drops it.
 *
 * Metrics (every second, and /metrics): per target node queued writes,
 * queued bytes, oldest queued age (ms), sent and dropped writes; per
 * volume the oldest queued age over its segments and targets (max lag,
 * ms); the total charged queue bytes. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "pcache.h"
#include "propagate.h"
#include "proxy.h"
#include "store.pb-c.h"

#define PROP_CALL_MS 10000
#define PROP_METRICS_MS 1000
#define PROP_MAX_TARGETS 16

struct prop_target_metrics {
	uint64_t node;
	struct metric *writes, *bytes, *age, *sent, *dropped;
	uint64_t sent_seen, dropped_seen;
};

struct propagate {
	struct proxy *p;
	struct propq *q;
	uv_timer_t kick, tick;
	uint64_t linger_ms; /* --propagate-linger-ms */
	bool kick_armed, stopped, destroyed;
	unsigned open_handles; /* timers not yet closed */
	unsigned inflight;
	struct prop_target_metrics *tm;
	size_t n_tm, cap_tm;
	uint64_t *vols; /* volumes given a lag gauge */
	size_t n_vols, cap_vols;
	struct metric *total_bytes;
	uint64_t now_for_stats;
	propagate_done_fn done_fn;
	void *done_ctx;
};

struct prop_call {
	struct propagate *g;
	struct propq_batch *b;
	uint64_t sent_ns;
};

static void kick_soon(struct propagate *g, uint64_t delay_ms);

uint64_t propagate_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ sending */

static enum propq_outcome outcome_of(grpc_status_code c)
{
	switch (c) {
	case GRPC_STATUS_OK:
		return PROPQ_OK;
	case GRPC_STATUS_UNAVAILABLE:
	case GRPC_STATUS_DEADLINE_EXCEEDED:
	case GRPC_STATUS_CANCELLED:
	case GRPC_STATUS_UNKNOWN:
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
	case GRPC_STATUS_ABORTED:
		return PROPQ_RETRY;
	default:
		return PROPQ_DROP;
	}
}

static void on_replicated(void *arg, const struct rpc_status *st,
			  const ProtobufCMessage *resp)
{
	struct prop_call *pc = arg;
	struct propagate *g = pc->g;
	struct propq_batch *b = pc->b;
	enum propq_outcome o = outcome_of(st->code);
	double ms = (double)(uv_hrtime() - pc->sent_ns) / 1e6;

	(void)resp;
	g->inflight--;
	if (g->stopped) {
		/* Shutdown: the queue is freed by propagate_destroy(). */
		propq_done(g->q, b, PROPQ_DROP, proxy_now_ms());
		free(pc);
		return;
	}
	/* Health only: the latency table estimates reads (a Replicate
	 * writes and syncs a batch; io.c part_reply_check). */
	if (st->code == GRPC_STATUS_UNAVAILABLE ||
	    st->code == GRPC_STATUS_DEADLINE_EXCEEDED)
		nodes_observe(g->p->nodes, b->node, false, 0);
	if (o != PROPQ_OK)
		log_debug("propagate volume %" PRIu64 " segment %" PRIu64
			  " %" PRIu64 "->%" PRIu64
			  " to node %s after %.1f ms: %s: %s (%s)",
			  b->volume_id, b->seg, b->prev_version, b->version,
			  nodes_address(g->p->nodes, b->node), ms,
			  rpc_status_name(st->code), st->message,
			  o == PROPQ_RETRY ? "retrying" : "dropped");
	{
		uint64_t node = b->node, vol = b->volume_id, seg = b->seg;

		propq_done(g->q, b, o, proxy_now_ms());
		free(pc);
		kick_soon(g, 0);
		if (g->done_fn != NULL)
			g->done_fn(g->done_ctx, node, vol, seg);
	}
}

void propagate_set_done_hook(struct propagate *g, propagate_done_fn fn,
			     void *ctx)
{
	g->done_fn = fn;
	g->done_ctx = ctx;
}

bool propagate_pending(const struct propagate *g, uint64_t node,
		       uint64_t volume_id, uint64_t seg, uint64_t version)
{
	if (g == NULL || g->stopped)
		return false;
	return propq_pending(g->q, node, volume_id, seg, version,
			     proxy_now_ms());
}

void propagate_hurry(struct propagate *g, uint64_t node, uint64_t volume_id,
		     uint64_t seg)
{
	if (g != NULL && !g->stopped &&
	    propq_hurry(g->q, node, volume_id, seg, proxy_now_ms()))
		kick_soon(g, 0);
}

/* propq_send_fn: one Replicate call. */
static int send_batch(void *ctx, struct propq_batch *b)
{
	struct propagate *g = ctx;
	Ombra__V1__ReplicateRequest q = OMBRA__V1__REPLICATE_REQUEST__INIT;
	Ombra__V1__BlockData *bd = NULL, **bp = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct rpc_channel *ch;
	struct prop_call *pc;
	int rv;

	if (g->stopped || g->p->stopping)
		return OMBRA_EINTERNAL;
	ch = nodes_channel(g->p->nodes, b->node, errmsg);
	if (ch == NULL)
		return OMBRA_EINTERNAL;
	pc = calloc(1, sizeof(*pc));
	if (b->n_blocks > 0) {
		bd = calloc(b->n_blocks, sizeof(*bd));
		bp = calloc(b->n_blocks, sizeof(*bp));
	}
	if (pc == NULL || (b->n_blocks > 0 && (bd == NULL || bp == NULL))) {
		free(pc);
		free(bd);
		free(bp);
		return OMBRA_ENOMEM;
	}
	for (size_t i = 0; i < b->n_blocks; i++) {
		ombra__v1__block_data__init(&bd[i]);
		bd[i].block_index = b->blocks[i].index;
		bd[i].version = b->blocks[i].version;
		bd[i].crc32c = b->blocks[i].crc32c;
		if (b->blocks[i].data != NULL) {
			bd[i].data.data = (uint8_t *)b->blocks[i].data;
			bd[i].data.len = PROPQ_BLOCK;
		}
		bp[i] = &bd[i];
	}
	q.volume_id = b->volume_id;
	q.segment_index = b->seg;
	q.segment_size_bytes = b->seg_size;
	q.lease_epoch = b->lease_epoch;
	q.primary_node_id = b->primary_node_id;
	q.shadow = true;
	q.blocks = bp;
	q.n_blocks = b->n_blocks;
	q.prev_version = b->prev_version;
	q.version = b->version;
	q.invalidate_blocks = b->invalidate;
	q.n_invalidate_blocks = b->n_invalidate;
	q.acked_unix_ms = b->acked_unix_ms;
	pc->g = g;
	pc->b = b;
	pc->sent_ns = uv_hrtime();
	/* The request is serialized by the call: bd/bp can go now. */
	rv = rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
			       "Replicate", &q.base, PROP_CALL_MS,
			       on_replicated, pc, NULL);
	free(bd);
	free(bp);
	if (rv != 0) {
		free(pc);
		return rv;
	}
	g->inflight++;
	return 0;
}

static void on_kick(uv_timer_t *t)
{
	struct propagate *g = t->data;
	uint64_t now = proxy_now_ms(), next;

	g->kick_armed = false;
	if (g->stopped)
		return;
	next = propq_kick(g->q, now);
	if (next != UINT64_MAX)
		kick_soon(g, next > now ? next - now : 0);
}

/* Run propq_kick after delay_ms (or sooner if already armed sooner). */
static void kick_soon(struct propagate *g, uint64_t delay_ms)
{
	if (g->stopped)
		return;
	if (g->kick_armed && uv_timer_get_due_in(&g->kick) <= delay_ms)
		return;
	g->kick_armed = true;
	uv_timer_start(&g->kick, on_kick, delay_ms, 0);
}

/* ------------------------------------------------------------ enqueue */

void propagate_write(struct propagate *g, struct proxy_volume *vol,
		     uint64_t seg, uint64_t off, uint64_t len, const void *data,
		     uint64_t lease_epoch, uint64_t primary,
		     uint64_t prev_version, uint64_t version,
		     uint64_t sent_unix_ms)
{
	struct proxy *p;
	uint64_t targets[PROP_MAX_TARGETS], copies[8], epoch;
	unsigned n, nc, k = 0;
	struct propq_write w;

	if (g == NULL || g->stopped || len == 0 || version == 0)
		return;
	p = g->p;
	n = proxy_volume_shadows(vol, seg, targets, PROP_MAX_TARGETS - 1);
	if (p->pcache != NULL) {
		uint64_t h =
		    pcache_holder(p->pcache, proxy_volume_id(vol), seg);

		if (h != 0)
			targets[n++] = h;
	}
	if (n == 0)
		return;
	/* A home copy (after a promotion the map may still list it as a
	 * shadow for a moment) gets the write from its primary. */
	nc = proxy_volume_copies(vol, seg, copies, 8, &epoch);
	for (unsigned i = 0; i < n; i++) {
		unsigned j;

		for (j = 0; j < nc && copies[j] != targets[i]; j++)
			;
		if (j == nc)
			targets[k++] = targets[i];
	}
	if (k == 0)
		return;
	memset(&w, 0, sizeof(w));
	w.volume_id = proxy_volume_id(vol);
	w.seg = seg;
	w.seg_size = proxy_volume_seg_size(vol);
	w.lease_epoch = lease_epoch;
	w.primary_node_id = primary;
	w.prev_version = prev_version;
	w.version = version;
	w.acked_unix_ms = sent_unix_ms;
	w.off = off;
	w.len = len;
	w.data = data;
	propq_add(g->q, &w, targets, k, proxy_now_ms());
	kick_soon(g, g->linger_ms);
}

/* ------------------------------------------------------------ metrics */

static struct prop_target_metrics *target_metrics(struct propagate *g,
						  uint64_t node)
{
	struct metrics_registry *r = g->p->metrics;
	struct prop_target_metrics *tm;
	char labels[64];

	for (size_t i = 0; i < g->n_tm; i++)
		if (g->tm[i].node == node)
			return &g->tm[i];
	if (g->n_tm == g->cap_tm) {
		size_t cap = g->cap_tm ? g->cap_tm * 2 : 8;
		void *n = realloc(g->tm, cap * sizeof(*g->tm));

		if (n == NULL)
			return NULL;
		g->tm = n;
		g->cap_tm = cap;
	}
	tm = &g->tm[g->n_tm];
	memset(tm, 0, sizeof(*tm));
	tm->node = node;
	snprintf(labels, sizeof(labels), "node=\"%" PRIu64 "\"", node);
	tm->writes = metrics_gauge(
	    r, "ombra_proxy_propagate_queued_writes",
	    "Writes queued for a shadow/cache node (in flight included)",
	    labels);
	tm->bytes = metrics_gauge(r, "ombra_proxy_propagate_queued_bytes",
				  "Bytes charged to a node's queue", labels);
	tm->age = metrics_gauge(
	    r, "ombra_proxy_propagate_oldest_ms",
	    "Age of the oldest write queued for a node (ms)", labels);
	tm->sent = metrics_counter(r, "ombra_proxy_propagate_sent_total",
				   "Writes applied by a node", labels);
	tm->dropped = metrics_counter(
	    r, "ombra_proxy_propagate_dropped_total",
	    "Writes dropped for a node (queue bound, epoch, bad request)",
	    labels);
	if (tm->writes == NULL || tm->bytes == NULL || tm->age == NULL ||
	    tm->sent == NULL || tm->dropped == NULL)
		return NULL;
	g->n_tm++;
	return tm;
}

static void export_target(void *arg, const struct propq_target_stats *s)
{
	struct propagate *g = arg;
	struct prop_target_metrics *tm = target_metrics(g, s->node);
	uint64_t now = g->now_for_stats;

	if (tm == NULL)
		return;
	metric_set(tm->writes, (double)s->queued_writes);
	metric_set(tm->bytes, (double)s->queued_bytes);
	metric_set(tm->age, s->oldest_ms != 0 && now > s->oldest_ms
				? (double)(now - s->oldest_ms)
				: 0.0);
	metric_inc(tm->sent, (double)(s->sent_writes - tm->sent_seen));
	metric_inc(tm->dropped, (double)(s->dropped_writes - tm->dropped_seen));
	tm->sent_seen = s->sent_writes;
	tm->dropped_seen = s->dropped_writes;
}

static struct metric *volume_lag_metric(struct propagate *g, uint64_t vol)
{
	char labels[64];

	snprintf(labels, sizeof(labels), "volume_id=\"%" PRIu64 "\"", vol);
	return metrics_gauge(
	    g->p->metrics, "ombra_proxy_propagate_volume_lag_ms",
	    "Age of the volume's oldest write not yet applied by every "
	    "foreign copy (ms, max over segments and nodes)",
	    labels);
}

static void export_volume(void *arg, uint64_t vol, uint64_t oldest_ms)
{
	struct propagate *g = arg;
	struct metric *m = volume_lag_metric(g, vol);
	size_t i;

	if (m == NULL)
		return;
	metric_set(m, g->now_for_stats > oldest_ms
			  ? (double)(g->now_for_stats - oldest_ms)
			  : 0.0);
	for (i = 0; i < g->n_vols && g->vols[i] != vol; i++)
		;
	if (i < g->n_vols)
		return;
	if (g->n_vols == g->cap_vols) {
		size_t cap = g->cap_vols ? g->cap_vols * 2 : 8;
		void *n = realloc(g->vols, cap * sizeof(*g->vols));

		if (n == NULL)
			return;
		g->vols = n;
		g->cap_vols = cap;
	}
	g->vols[g->n_vols++] = vol;
}

static void on_tick(uv_timer_t *t)
{
	struct propagate *g = t->data;

	if (g->p->metrics == NULL)
		return;
	g->now_for_stats = proxy_now_ms();
	/* Volumes that had a lag and have none now go back to 0. */
	for (size_t i = 0; i < g->n_vols; i++) {
		struct metric *m = volume_lag_metric(g, g->vols[i]);

		if (m != NULL)
			metric_set(m, 0);
	}
	propq_targets(g->q, export_target, g);
	propq_volumes(g->q, export_volume, g);
	if (g->total_bytes != NULL)
		metric_set(g->total_bytes, (double)propq_bytes(g->q));
}

/* ------------------------------------------------------------ life */

int propagate_create(struct proxy *p, uint64_t max_bytes, uint64_t linger_ms,
		     struct propagate **out, char *errmsg)
{
	struct propagate *g = calloc(1, sizeof(*g));
	struct propq_config cfg = {
	    .max_bytes = max_bytes,
	    .max_batch_bytes = 4u << 20,
	    .max_batch_writes = 64,
	    .backoff_min_ms = 50,
	    .backoff_max_ms = 5000,
	    .linger_ms = linger_ms,
	};

	if (g == NULL || propq_create(&cfg, send_batch, g, &g->q) != 0) {
		free(g);
		ombra_errmsg_printf(errmsg, "propagation: out of memory");
		return OMBRA_ENOMEM;
	}
	g->p = p;
	g->linger_ms = linger_ms;
	if (p->metrics != NULL)
		g->total_bytes = metrics_gauge(
		    p->metrics, "ombra_proxy_propagate_queue_bytes",
		    "Bytes charged to the propagation queue (bound: "
		    "--propagate-max-bytes)",
		    NULL);
	uv_timer_init(p->loop, &g->kick);
	uv_timer_init(p->loop, &g->tick);
	g->kick.data = g;
	g->tick.data = g;
	g->open_handles = 2;
	uv_timer_start(&g->tick, on_tick, PROP_METRICS_MS, PROP_METRICS_MS);
	*out = g;
	return 0;
}

static void g_free(struct propagate *g)
{
	propq_destroy(g->q);
	free(g->tm);
	free(g->vols);
	free(g);
}

static void on_closed(uv_handle_t *h)
{
	struct propagate *g = h->data;

	if (--g->open_handles == 0 && g->destroyed)
		g_free(g);
}

void propagate_stop(struct propagate *g)
{
	if (g == NULL || g->stopped)
		return;
	g->stopped = true;
	uv_timer_stop(&g->kick);
	uv_timer_stop(&g->tick);
	uv_close((uv_handle_t *)&g->kick, on_closed);
	uv_close((uv_handle_t *)&g->tick, on_closed);
	if (propq_entries(g->q) > 0)
		log_info("propagation: %" PRIu64 " queued writes (%" PRIu64
			 " bytes) not sent at shutdown (anti-entropy repairs "
			 "the copies)",
			 propq_entries(g->q), propq_bytes(g->q));
}

void propagate_destroy(struct propagate *g)
{
	if (g == NULL)
		return;
	propagate_stop(g);
	g->destroyed = true;
	if (g->open_handles == 0)
		g_free(g);
	/* else the last timer's close callback frees g */
}
