/* main.c: ombra-proxy, Ombra's region gateway: the gRPC VolumeService and
 * the NBD export over one I/O engine, on one libuv loop.
 *
 * Start-up: parse flags (exit 2 on a usage error), then the metad client,
 * the volume cache, the node table (probes), the engine, the gRPC server,
 * HTTP (/metrics, /healthz), the NBD server and the Watch thread; a failing
 * step is logged with its name and the process exits 1.
 * Shutdown (SIGTERM/SIGINT): HTTP, NBD and Watch stop; the engine stops
 * retrying; the gRPC server stops (cancelling calls, waiting until each is
 * answered) while every node channel closes (calls in flight end
 * CANCELLED); then the last metad jobs in the thread pool are waited for,
 * the remaining handles close and the loop ends with nothing left, so the
 * sanitizers see no leak.  Exit 0 after a clean shutdown. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Autoconf's config.h (PACKAGE_VERSION). */
#include <config.h>

#include "access.h"
#include "args.h"
#include "busypoll.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "nbd.h"
#include "prefetch.h"
#include "propagate.h"
#include "proxy.h"
#include "rpc.h"
#include "vlease.h"

struct daemon {
	struct proxy p;
	struct proxy_args args;
	uv_loop_t loop;
	uv_signal_t sigint, sigterm;
	uv_timer_t drain;
	bool signals_ok, drain_ok;
	struct rpc_server *rpc;
	struct http_server *http;
	struct nbd_server *nbd;
	int closing;
	int exit_code;
};

/* ------------------------------------------------------------ metrics */

static const double latency_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,	 10.0};

static int metrics_setup(struct proxy *p, char *errmsg)
{
	struct metrics_registry *r = p->metrics;
	struct proxy_metrics *m = &p->m;
	size_t nb = sizeof(latency_bounds) / sizeof(latency_bounds[0]);

	m->reads = metrics_counter(r, "ombra_proxy_reads_total",
				   "Read requests completed", NULL);
	m->writes = metrics_counter(r, "ombra_proxy_writes_total",
				    "Write requests completed", NULL);
	m->zeros =
	    metrics_counter(r, "ombra_proxy_zeroes_total",
			    "Trim/write-zeroes requests completed", NULL);
	m->flushes = metrics_counter(r, "ombra_proxy_flushes_total",
				     "Flush requests completed", NULL);
	m->read_bytes = metrics_counter(r, "ombra_proxy_read_bytes_total",
					"Bytes read by clients", NULL);
	m->write_bytes = metrics_counter(r, "ombra_proxy_write_bytes_total",
					 "Bytes written by clients", NULL);
	m->read_seconds = metrics_histogram(
	    r, "ombra_proxy_read_duration_seconds",
	    "Read request latency, all segments and retries included", NULL,
	    latency_bounds, nb);
	m->write_seconds = metrics_histogram(
	    r, "ombra_proxy_write_duration_seconds",
	    "Write/zero request latency, all segments and retries included",
	    NULL, latency_bounds, nb);
	m->retries = metrics_counter(
	    r, "ombra_proxy_retries_total",
	    "Segment calls retried (another copy, or after a map refresh)",
	    NULL);
	m->errors = metrics_counter(r, "ombra_proxy_io_errors_total",
				    "I/O requests that failed", NULL);
	m->map_fetches = metrics_counter(r, "ombra_proxy_map_fetches_total",
					 "Shard-map fetches from metad", NULL);
	if (m->reads == NULL || m->writes == NULL || m->zeros == NULL ||
	    m->flushes == NULL || m->read_bytes == NULL ||
	    m->write_bytes == NULL || m->read_seconds == NULL ||
	    m->write_seconds == NULL || m->retries == NULL ||
	    m->errors == NULL || m->map_fetches == NULL) {
		ombra_errmsg_printf(errmsg, "metrics: out of memory");
		return OMBRA_ENOMEM;
	}
	return 0;
}

static void observe_rpc(void *data, const char *method, grpc_status_code code,
			double seconds)
{
	struct metrics_registry *reg = data;
	char labels[160];
	struct metric *m;

	snprintf(labels, sizeof(labels), "method=\"%s\",code=\"%s\"", method,
		 rpc_status_name(code));
	m = metrics_counter(reg, "ombra_rpc_requests_total",
			    "gRPC requests served, by method and status",
			    labels);
	if (m != NULL)
		metric_inc(m, 1.0);
	snprintf(labels, sizeof(labels), "method=\"%s\"", method);
	m = metrics_histogram(
	    reg, "ombra_rpc_request_duration_seconds",
	    "gRPC request duration, by method", labels, latency_bounds,
	    sizeof(latency_bounds) / sizeof(latency_bounds[0]));
	if (m != NULL)
		metric_observe(m, seconds);
}

static int healthz(void *data, char *msg, size_t len)
{
	(void)data;
	(void)msg;
	(void)len;
	return 0;
}

/* ------------------------------------------------------------ NBD */

static int start_nbd(struct daemon *d, char *errmsg)
{
	int rv;

	if (d->args.nbd == NULL) {
		log_info("NBD: off");
		return 0;
	}
	rv = nbd_server_start(&d->loop, &d->p, d->args.nbd, d->p.metrics,
			      &d->nbd, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "NBD server on %s", d->args.nbd);
		return rv;
	}
	log_info("NBD: every volume exported on %s (port %d)", d->args.nbd,
		 nbd_server_port(d->nbd));
	return 0;
}

static void stop_nbd(struct daemon *d)
{
	nbd_server_stop(d->nbd);
	d->nbd = NULL;
}

/* ------------------------------------------------------------ shutdown */

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

/* Last step: nothing asynchronous is left but metad jobs. */
static void finish(struct daemon *d)
{
	if (d->drain_ok) {
		uv_close((uv_handle_t *)&d->drain, on_handle_closed);
		d->drain_ok = false;
	}
	if (d->p.io != NULL) {
		io_engine_destroy(d->p.io);
		d->p.io = NULL;
	}
	propagate_destroy(d->p.prop);
	d->p.prop = NULL;
	busypoll_close(d->p.bpoll);
	d->p.bpoll = NULL;
	/* After the node channels closed: no pull can answer any more. */
	prefetch_destroy(d->p.prefetch);
	d->p.prefetch = NULL;
	access_destroy(d->p.access);
	d->p.access = NULL;
	/* After the metad jobs drained (the lease releases among them). */
	vlease_mgr_destroy(d->p.vlease);
	d->p.vlease = NULL;
	if (d->signals_ok) {
		uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
		uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
		d->signals_ok = false;
	}
	if (d->p.defer != NULL) {
		defer_close(d->p.defer);
		d->p.defer = NULL;
	}
	log_info("shutdown complete");
}

static void on_drain(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (d->p.mdc == NULL || mdc_busy(d->p.mdc) == 0)
		finish(d);
}

static void close_step_done(struct daemon *d)
{
	if (--d->closing > 0)
		return;
	if (d->p.mdc != NULL && mdc_busy(d->p.mdc) > 0) {
		/* metad calls still in the thread pool: their callbacks must
		 * find the loop's helpers alive. */
		uv_timer_init(&d->loop, &d->drain);
		d->drain.data = d;
		d->drain_ok = true;
		uv_timer_start(&d->drain, on_drain, 10, 10);
		return;
	}
	finish(d);
}

static void on_rpc_stopped(struct rpc_server *srv, void *data)
{
	struct daemon *d = data;

	(void)srv;
	d->rpc = NULL;
	close_step_done(d);
}

static void on_nodes_closed(void *arg)
{
	struct daemon *d = arg;

	d->p.nodes = NULL;
	close_step_done(d);
}

static void daemon_shutdown(struct daemon *d)
{
	struct proxy *p = &d->p;

	if (p->stopping)
		return;
	p->stopping = true;
	if (d->http != NULL) {
		http_server_stop(d->http);
		d->http = NULL;
	}
	stop_nbd(d);
	if (p->watch != NULL) {
		pwatch_stop(p->watch);
		p->watch = NULL;
	}
	if (p->io != NULL)
		io_engine_stop(p->io);
	propagate_stop(p->prop);
	prefetch_stop(p->prefetch);
	access_stop(p->access);
	vlease_mgr_stop(p->vlease); /* releases held writer leases */
	d->closing = 1;
	if (d->rpc != NULL) {
		d->closing++;
		rpc_server_stop(d->rpc, on_rpc_stopped, d);
	}
	if (p->nodes != NULL) {
		d->closing++;
		nodes_close(p->nodes, on_nodes_closed, d);
	}
	close_step_done(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	log_info("signal %d: shutting down", signum);
	daemon_shutdown(d);
}

/* ------------------------------------------------------------ start-up */

/* This proxy's writer-lease identity (docs/metad.md "Volume writer
 * lease"): "<region>/<listen>", with this host's name for a wildcard or
 * empty listen host; printable, no spaces, at most 128 bytes. */
static void writer_identity(const struct proxy_args *a, char *out, size_t len)
{
	const char *colon = strrchr(a->listen, ':');
	size_t hlen = colon != NULL ? (size_t)(colon - a->listen) : 0;
	char host[64] = "";

	if (colon != NULL &&
	    (hlen == 0 || strncmp(a->listen, "0.0.0.0", hlen) == 0 ||
	     strncmp(a->listen, "[::]", hlen) == 0) &&
	    gethostname(host, sizeof(host) - 1) == 0)
		snprintf(out, len, "%s/%s%s", a->region, host, colon);
	else
		snprintf(out, len, "%s/%s", a->region, a->listen);
	for (char *c = out; *c != '\0'; c++)
		if (*c <= ' ' || *c > '~')
			*c = '_';
	if (strlen(out) > 128)
		out[128] = '\0';
}

static int daemon_start(struct daemon *d, char *errmsg)
{
	struct proxy *p = &d->p;
	char holder[160];
	int port = 0;
	int rv;

	p->metrics = metrics_registry_create();
	if (p->metrics == NULL) {
		ombra_errmsg_printf(errmsg, "metrics: out of memory");
		return OMBRA_ENOMEM;
	}
	if ((rv = metrics_setup(p, errmsg)) != 0 ||
	    (rv = defer_create(&d->loop, &p->defer, errmsg)) != 0 ||
	    (rv = busypoll_create(&d->loop, d->args.read_poll_us, p->metrics,
				  &p->bpoll, errmsg)) != 0 ||
	    (rv = mdc_create(p, d->args.metad, &p->mdc, errmsg)) != 0 ||
	    (rv = volcache_create(p, &p->vc, errmsg)) != 0 ||
	    (rv = nodes_create(p, &p->nodes, errmsg)) != 0 ||
	    (rv = io_engine_create(p, &p->io, errmsg)) != 0 ||
	    (rv = propagate_create(p, d->args.propagate_max_bytes,
				   d->args.propagate_linger_ms, &p->prop,
				   errmsg)) != 0 ||
	    (rv = access_create(p, d->args.listen,
				(size_t)d->args.access_max_segments, &p->access,
				errmsg)) != 0)
		return rv;
	propagate_set_done_hook(p->prop, io_engine_propagated, p->io);
	writer_identity(&d->args, holder, sizeof(holder));
	rv = vlease_mgr_create(p, d->args.single_writer,
			       d->args.writer_lease_ms, d->args.writer_idle_ms,
			       holder, &p->vlease, errmsg);
	if (rv != 0)
		return rv;
	log_info("single-writer volumes: %s (writer identity %s)",
		 d->args.single_writer ? "on" : "off", holder);
	if (d->args.prefetch) {
		struct prefetch_config pc = {
		    .budget_bps = d->args.prefetch_budget,
		    .cache_bytes = d->args.prefetch_cache,
		    .max_segments = d->args.pcache_segments,
		    .model_path = d->args.prefetch_model,
		};

		rv = prefetch_create(p, &pc, &p->prefetch, errmsg);
		if (rv != 0)
			return rv;
	} else {
		log_info("prefetch: off");
	}
	rv = rpc_server_create(&d->loop, d->args.listen, p->tls, &d->rpc,
			       errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "gRPC server on %s", d->args.listen);
		return rv;
	}
	rpc_server_set_observer(d->rpc, observe_rpc, p->metrics);
	rv = service_volume_register(p, d->rpc, errmsg);
	if (rv != 0)
		return rv;
	rv = rpc_server_start(d->rpc, &port, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "gRPC server on %s", d->args.listen);
		return rv;
	}
	log_info("gRPC: VolumeService on %s%s", d->args.listen,
		 p->tls != NULL ? " (mutual TLS)" : "");
	if (d->args.http != NULL) {
		rv = http_server_start(d->args.http, p->metrics, healthz, p,
				       &d->http, errmsg);
		if (rv != 0) {
			ombra_errmsg_wrapf(errmsg, "HTTP server on %s",
					   d->args.http);
			return rv;
		}
		log_info("HTTP: /metrics and /healthz on %s", d->args.http);
	}
	rv = start_nbd(d, errmsg);
	if (rv != 0)
		return rv;
	rv = pwatch_start(p, d->args.metad, &p->watch, errmsg);
	if (rv != 0)
		return rv;
	uv_signal_init(&d->loop, &d->sigint);
	uv_signal_init(&d->loop, &d->sigterm);
	d->sigint.data = d;
	d->sigterm.data = d;
	d->signals_ok = true;
	uv_signal_start(&d->sigint, on_signal, SIGINT);
	uv_signal_start(&d->sigterm, on_signal, SIGTERM);
	return 0;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	enum proxy_args_action action;
	char errmsg[OMBRA_ERRMSG_LEN];
	char name[64];
	int rv;

	rv = proxy_args_parse(&d.args, argc, argv, &action, errmsg);
	if (rv != 0) {
		fprintf(stderr, "ombra-proxy: %s\n", errmsg);
		return 2;
	}
	if (action == PROXY_ARGS_HELP) {
		fputs(proxy_args_usage(), stdout);
		return 0;
	}
	if (action == PROXY_ARGS_VERSION) {
		printf("ombra-proxy %s\n", PACKAGE_VERSION);
		return 0;
	}
	/* Metad calls run in libuv's thread pool; its default of 4 threads
	 * would let four slow metad calls stall every other one.  Must be set
	 * before the pool's first use. */
	setenv("UV_THREADPOOL_SIZE", "16", 0);
	signal(SIGPIPE, SIG_IGN);
	snprintf(name, sizeof(name), "proxy-%s", d.args.region);
	log_init(name, d.args.log_level);
	log_info("ombra-proxy %s starting: region %s, metad %s",
		 PACKAGE_VERSION, d.args.region, d.args.metad);
	rv = uv_loop_init(&d.loop);
	if (rv != 0) {
		log_error("uv_loop_init: %s", uv_strerror(rv));
		return 1;
	}
	d.p.loop = &d.loop;
	d.p.region = d.args.region;
	d.p.args = &d.args;
	d.p.tls = d.args.use_tls ? &d.args.tls : NULL;
	rv = daemon_start(&d, errmsg);
	if (rv != 0) {
		log_error("start-up failed: %s", errmsg);
		d.exit_code = 1;
		daemon_shutdown(&d);
	} else {
		log_info("proxy for region %s running", d.args.region);
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	rv = uv_loop_close(&d.loop);
	if (rv != 0) {
		log_error("uv_loop_close: %s (a handle was left open)",
			  uv_strerror(rv));
		d.exit_code = 1;
	}
	volcache_destroy(d.p.vc);
	mdc_destroy(d.p.mdc);
	/* On a failed start-up finish() may not have run. */
	prefetch_destroy(d.p.prefetch);
	if (d.p.metrics != NULL)
		metrics_registry_destroy(d.p.metrics);
	return d.exit_code;
}
