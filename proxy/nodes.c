/* nodes.c: the proxy's table of storage nodes: one asynchronous gRPC
 * channel per node address (created on first use, cached), a latency
 * estimate per node (route_lat.h: EWMA and p99 of observed call latencies
 * and of a StoreService.Probe sent to every known node each second, the
 * p99 over the last LAT_WINDOW_MS only, and the calls in flight; the first
 * answer on a new channel paid for the connection and is not a sample),
 * and a down/up flag: a node whose probe or data call (read, write,
 * propagation; not a prefetch Pull, whose failures are mostly the node's
 * own answer) failed in transport (UNAVAILABLE, DEADLINE_EXCEEDED) is
 * marked down, ranked after every healthy copy for reads, until a probe
 * succeeds again.
 *
 * Nodes are learned from shard maps (volcache.c): id, name, address,
 * region, state.  A node whose address changes gets a new channel.
 *
 * Failure: probes that fail only mark the node down; a channel that cannot
 * be created makes nodes_channel() return NULL with a message, and the
 * caller treats the node as unreachable. */
#include <stdlib.h>
#include <string.h>

#include "common.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "route_lat.h"
#include "store.pb-c.h"

#define PROBE_INTERVAL_MS 1000
#define PROBE_TIMEOUT_MS 1000
/* A down node's channel is replaced this often: gRPC's own reconnect
 * backoff grows to minutes, a new channel connects at once. */
#define RECONNECT_MS 2000

struct pnode {
	struct nodes *tab;
	uint64_t id;
	char *name, *address, *region;
	int state;
	struct rpc_channel *ch;
	struct lat_est lat;
	bool down;
	bool probing;
	uint64_t chan_ms; /* when the channel was made (proxy_now_ms) */
	/* An answer came on the current channel: the first one paid for the
	 * connection (tens of ms) and is not a latency sample. */
	bool warm;
	struct metric *gauge, *up_gauge;
	struct metric *p99_gauge, *expect_gauge, *inflight_gauge;
	struct pnode *next;
};

struct nodes {
	struct proxy *p;
	struct pnode *head;
	uv_timer_t timer;
	bool closing;
	int closing_channels;
	void (*done)(void *arg);
	void *done_arg;
};

/* n may be NULL once the table is closed (late callbacks): not found. */
static struct pnode *node_find(struct nodes *n, uint64_t id)
{
	if (n == NULL)
		return NULL;
	for (struct pnode *x = n->head; x != NULL; x = x->next)
		if (x->id == id)
			return x;
	return NULL;
}

/* Drop one count of things still closing (the timer and each channel);
 * once closing and the last is gone, free the table and report done. */
static void nodes_release(struct nodes *n)
{
	void (*done)(void *);
	void *arg;

	if (--n->closing_channels > 0 || !n->closing)
		return;
	done = n->done;
	arg = n->done_arg;
	free(n);
	if (done != NULL)
		done(arg);
}

static void channel_closed(void *arg)
{
	nodes_release(arg);
}

static void node_drop_channel(struct pnode *x)
{
	if (x->ch == NULL)
		return;
	x->tab->closing_channels++;
	rpc_channel_close(x->ch, channel_closed, x->tab);
	x->ch = NULL;
}

static void node_set_down(struct pnode *x, bool down)
{
	x->down = down;
	if (x->up_gauge != NULL)
		metric_set(x->up_gauge, down ? 0 : 1);
}

static int set_str(char **dst, const char *src)
{
	char *s = strdup(src ? src : "");

	if (s == NULL)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

void nodes_update(struct nodes *n, uint64_t id, const char *name,
		  const char *address, const char *region, int state)
{
	struct pnode *x = node_find(n, id);
	char labels[200];

	if (n == NULL || n->closing)
		return;
	if (x == NULL) {
		x = calloc(1, sizeof(*x));
		if (x == NULL)
			return; /* unknown node: callers treat it as down */
		x->tab = n;
		x->id = id;
		x->next = n->head;
		n->head = x;
	}
	x->state = state;
	if (x->address == NULL || strcmp(x->address, address) != 0) {
		node_drop_channel(x);
		if (set_str(&x->address, address) != 0)
			log_error("out of memory updating node %llu",
				  (unsigned long long)id);
		lat_init(&x->lat);
		node_set_down(x, false);
	}
	if (x->name == NULL || strcmp(x->name, name) != 0) {
		set_str(&x->name, name);
		set_str(&x->region, region);
		snprintf(labels, sizeof(labels), "node=\"%s\"",
			 x->name ? x->name : "");
		x->gauge = metrics_gauge(
		    n->p->metrics, "ombra_proxy_node_latency_seconds",
		    "EWMA of observed and probed latency to each stored node",
		    labels);
		x->up_gauge = metrics_gauge(
		    n->p->metrics, "ombra_proxy_node_up",
		    "1 while the node answers, 0 after a transport failure "
		    "until a probe succeeds",
		    labels);
		x->p99_gauge = metrics_gauge(
		    n->p->metrics, "ombra_proxy_node_p99_latency_seconds",
		    "p99 of the last 128 observed and probed latencies to each "
		    "stored node",
		    labels);
		x->expect_gauge = metrics_gauge(
		    n->p->metrics, "ombra_proxy_node_expected_latency_seconds",
		    "Expected latency of the next call to each stored node "
		    "(EWMA and p99 blend times the in-flight penalty; reads "
		    "rank copies by it)",
		    labels);
		x->inflight_gauge = metrics_gauge(
		    n->p->metrics, "ombra_proxy_node_inflight",
		    "Data calls in flight to each stored node", labels);
		node_set_down(x, x->down);
	}
}

/* Refresh the latency gauges of x. */
static void node_gauges(struct pnode *x)
{
	if (x->gauge != NULL)
		metric_set(x->gauge, x->lat.ewma_ms / 1000.0);
	if (x->p99_gauge != NULL)
		metric_set(x->p99_gauge,
			   lat_p99(&x->lat, proxy_now_ms()) / 1000.0);
	if (x->expect_gauge != NULL)
		metric_set(x->expect_gauge,
			   lat_expected(&x->lat, false, proxy_now_ms()) /
			       1000.0);
	if (x->inflight_gauge != NULL)
		metric_set(x->inflight_gauge, x->lat.inflight);
}

struct rpc_channel *nodes_channel(struct nodes *n, uint64_t id, char *errmsg)
{
	struct pnode *x = node_find(n, id);
	int rv;

	if (n == NULL || n->closing) {
		ombra_errmsg_printf(errmsg, "proxy shutting down");
		return NULL;
	}
	if (x == NULL || x->address == NULL || x->address[0] == '\0') {
		ombra_errmsg_printf(errmsg, "node %llu has no known address",
				    (unsigned long long)id);
		return NULL;
	}
	if (x->ch == NULL) {
		rv = rpc_channel_create(n->p->loop, x->address, n->p->tls,
					&x->ch, errmsg);
		if (rv != 0) {
			ombra_errmsg_wrapf(errmsg, "channel to %s", x->address);
			x->ch = NULL;
			return NULL;
		}
		x->chan_ms = proxy_now_ms();
		x->warm = false;
	}
	return x->ch;
}

const char *nodes_address(struct nodes *n, uint64_t id)
{
	struct pnode *x = node_find(n, id);

	return x != NULL && x->address != NULL ? x->address : "?";
}

void nodes_observe(struct nodes *n, uint64_t id, bool ok, double ms)
{
	struct pnode *x = node_find(n, id);

	if (x == NULL)
		return;
	if (!ok) {
		if (!x->down)
			log_warn("node %s (%s) unreachable: reads move to "
				 "other copies until a probe succeeds",
				 x->name ? x->name : "?", x->address);
		node_set_down(x, true);
		return;
	}
	if (!x->warm) {
		/* Connection set-up would rank the node behind slower ones
		 * for minutes (EWMA decay, p99 of 128 samples). */
		x->warm = true;
		return;
	}
	lat_sample(&x->lat, ms, proxy_now_ms());
	node_gauges(x);
}

void nodes_inflight(struct nodes *n, uint64_t id, int delta)
{
	struct pnode *x = node_find(n, id);

	if (x == NULL)
		return;
	lat_inflight(&x->lat, delta);
	node_gauges(x);
}

double nodes_expected_ms(struct nodes *n, uint64_t id)
{
	struct pnode *x = node_find(n, id);

	if (x == NULL)
		return 2 * LAT_DOWN_PENALTY_MS; /* unknown: after down nodes */
	return lat_expected(&x->lat, x->down, proxy_now_ms());
}

int nodes_failover_ms(struct nodes *n, uint64_t id, int max_ms)
{
	struct pnode *x = node_find(n, id);

	if (x == NULL)
		return max_ms;
	return lat_failover_ms(&x->lat, proxy_now_ms(), max_ms);
}

const char *nodes_region(struct nodes *n, uint64_t id)
{
	struct pnode *x = node_find(n, id);

	return x != NULL && x->region != NULL ? x->region : "";
}

bool nodes_in_region(struct nodes *n, uint64_t id, const char *region)
{
	return region != NULL && strcmp(nodes_region(n, id), region) == 0;
}

/* Sort key: down nodes last, then by expected latency. */
static double node_cost(struct nodes *n, uint64_t id)
{
	return nodes_expected_ms(n, id);
}

void nodes_rank(struct nodes *n, uint64_t *ids, unsigned count)
{
	/* Insertion sort: count is the replication factor (2-5), stable. */
	for (unsigned i = 1; i < count; i++) {
		uint64_t id = ids[i];
		double c = node_cost(n, id);
		unsigned j = i;

		while (j > 0 && node_cost(n, ids[j - 1]) > c) {
			ids[j] = ids[j - 1];
			j--;
		}
		ids[j] = id;
	}
}

/* ------------------------------------------------------------ probes */

struct probe {
	struct nodes *n;
	uint64_t id;
	uint64_t t0;
	Ombra__V1__ProbeRequest req;
};

static void probe_done(void *arg, const struct rpc_status *st,
		       const ProtobufCMessage *resp)
{
	struct probe *pr = arg;
	struct pnode *x = node_find(pr->n, pr->id);
	double ms = (double)(uv_hrtime() - pr->t0) / 1e6;

	(void)resp;
	if (x != NULL) {
		x->probing = false;
		if (st->code == GRPC_STATUS_OK) {
			if (x->down)
				log_info("node %s (%s) answers again",
					 x->name ? x->name : "?", x->address);
			node_set_down(x, false);
			nodes_observe(pr->n, pr->id, true, ms);
		} else if (st->code != GRPC_STATUS_CANCELLED) {
			nodes_observe(pr->n, pr->id, false, 0);
		}
	}
	free(pr);
}

static void probe_tick(uv_timer_t *t)
{
	struct nodes *n = t->data;
	char errmsg[OMBRA_ERRMSG_LEN];

	for (struct pnode *x = n->head; x != NULL; x = x->next) {
		struct rpc_channel *ch;
		struct probe *pr;

		if (x->probing)
			continue;
		if (x->down && x->ch != NULL &&
		    proxy_now_ms() - x->chan_ms >= RECONNECT_MS)
			node_drop_channel(x);
		ch = nodes_channel(n, x->id, errmsg);
		if (ch == NULL)
			continue;
		pr = calloc(1, sizeof(*pr));
		if (pr == NULL)
			return;
		pr->n = n;
		pr->id = x->id;
		pr->t0 = uv_hrtime();
		ombra__v1__probe_request__init(&pr->req);
		pr->req.sent_unix_us = uv_hrtime() / 1000;
		if (rpc_channel_unary(ch, &ombra__v1__store_service__descriptor,
				      "Probe", &pr->req.base, PROBE_TIMEOUT_MS,
				      probe_done, pr, NULL) != 0) {
			free(pr);
			continue;
		}
		x->probing = true;
	}
}

int nodes_create(struct proxy *p, struct nodes **out, char *errmsg)
{
	struct nodes *n = calloc(1, sizeof(*n));

	if (n == NULL) {
		ombra_errmsg_printf(errmsg, "node table: out of memory");
		return OMBRA_ENOMEM;
	}
	n->p = p;
	uv_timer_init(p->loop, &n->timer);
	n->timer.data = n;
	uv_timer_start(&n->timer, probe_tick, PROBE_INTERVAL_MS,
		       PROBE_INTERVAL_MS);
	*out = n;
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	struct nodes *n = h->data;
	struct pnode *x, *next;

	for (x = n->head; x != NULL; x = next) {
		next = x->next;
		free(x->name);
		free(x->address);
		free(x->region);
		free(x);
	}
	n->head = NULL;
	nodes_release(n);
}

void nodes_close(struct nodes *n, void (*done)(void *arg), void *arg)
{
	n->closing = true;
	n->done = done;
	n->done_arg = arg;
	/* One count for the timer, one per open channel; the last release
	 * frees the table and reports done. */
	n->closing_channels++;
	for (struct pnode *x = n->head; x != NULL; x = x->next) {
		if (x->ch != NULL) {
			n->closing_channels++;
			rpc_channel_close(x->ch, channel_closed, n);
			x->ch = NULL;
		}
	}
	uv_timer_stop(&n->timer);
	uv_close((uv_handle_t *)&n->timer, timer_closed);
}
