/* main.c: ombra-stored, the Ombra storage node daemon: command line,
 * start-up (segment store, gRPC StoreService, HTTP, registration with
 * metad) on one libuv loop, and graceful shutdown on SIGINT/SIGTERM.
 *
 * Shutdown: new data requests are refused (UNAVAILABLE "shutting down"),
 * in-flight ones finish, then timers, HTTP, the gRPC server and peer
 * channels stop; when the loop has no work left the store is flushed and
 * closed.  Exit codes: 2 usage error, 1 start-up failure (the message
 * names the step), 0 after a clean shutdown. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audit.h"
#include "err.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "stored.h"

static struct stored sd_global;
static uv_signal_t sig_int, sig_term;
static int exit_code;

static void observe_rpc(void *data, const char *method, grpc_status_code code,
			double seconds)
{
	static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
					0.005,	0.01,	 0.025,	 0.05,	0.1,
					0.25,	0.5,	 1.0,	 2.5,	5.0};
	struct metrics_registry *reg = data;
	char labels[160];
	struct metric *m;

	snprintf(labels, sizeof(labels), "method=\"%s\",code=\"%s\"", method,
		 rpc_status_name(code));
	m = metrics_counter(reg, "ombra_stored_requests_total",
			    "StoreService requests, by method and status",
			    labels);
	if (m != NULL) {
		metric_inc(m, 1.0);
	}
	snprintf(labels, sizeof(labels), "method=\"%s\"", method);
	m = metrics_histogram(reg, "ombra_stored_request_duration_seconds",
			      "StoreService request duration, by method",
			      labels, bounds,
			      sizeof(bounds) / sizeof(bounds[0]));
	if (m != NULL) {
		metric_observe(m, seconds);
	}
}

static int metrics_make(struct stored *sd, char *errmsg)
{
	static const double lat[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
				     0.05,   0.1,   0.25,   0.5,   1.0,	 2.5};
	struct metrics_registry *r = metrics_registry_create();
	struct stored_metrics *m = &sd->m;

	if (r == NULL) {
		ombra_errmsg_printf(errmsg, "metrics: out of memory");
		return OMBRA_ENOMEM;
	}
	sd->reg = r;
	m->bytes_read = metrics_counter(r, "ombra_stored_read_bytes_total",
					"Bytes returned by Read", NULL);
	m->bytes_written = metrics_counter(
	    r, "ombra_stored_written_bytes_total",
	    "Bytes stored by Write (primary) and Replicate", NULL);
	m->write_latency = metrics_histogram(
	    r, "ombra_stored_write_latency_seconds",
	    "Write at the primary, arrival to acknowledgement (replicated)",
	    NULL, lat, sizeof(lat) / sizeof(lat[0]));
	m->repaired =
	    metrics_counter(r, "ombra_stored_repaired_blocks_total",
			    "Bad blocks repaired from another copy", NULL);
	m->repair_failed =
	    metrics_counter(r, "ombra_stored_repair_failed_blocks_total",
			    "Bad blocks no copy could repair", NULL);
	m->scrub_checked =
	    metrics_counter(r, "ombra_stored_scrubbed_blocks_total",
			    "Blocks verified by the background scrub", NULL);
	m->scrub_bad = metrics_counter(r, "ombra_stored_scrub_bad_blocks_total",
				       "Bad blocks found by the scrub", NULL);
	m->scrub_passes =
	    metrics_counter(r, "ombra_stored_scrub_passes_total",
			    "Complete scrub passes over the store", NULL);
	m->resync_segments =
	    metrics_counter(r, "ombra_stored_resync_segments_total",
			    "Segments re-synced to a returning replica", NULL);
	m->resync_blocks =
	    metrics_counter(r, "ombra_stored_resync_blocks_total",
			    "Blocks pushed to returning replicas", NULL);
	m->lease_valid = metrics_gauge(
	    r, "ombra_stored_lease_valid",
	    "1 while the node lease from metad is valid (0: self-fenced)",
	    NULL);
	m->replica_failures =
	    metrics_counter(r, "ombra_stored_replica_failures_total",
			    "In-sync replicas reported failed to metad", NULL);
	if (m->bytes_read == NULL || m->bytes_written == NULL ||
	    m->write_latency == NULL || m->repaired == NULL ||
	    m->repair_failed == NULL || m->scrub_checked == NULL ||
	    m->scrub_bad == NULL || m->scrub_passes == NULL ||
	    m->resync_segments == NULL || m->resync_blocks == NULL ||
	    m->lease_valid == NULL || m->replica_failures == NULL) {
		ombra_errmsg_printf(errmsg, "metrics: out of memory");
		return OMBRA_ENOMEM;
	}
	return 0;
}

/* HTTP thread: /healthz. */
static int healthz(void *data, char *msg, size_t len)
{
	struct stored *sd = data;
	int h = atomic_load(&sd->health);

	if (h == STORED_HEALTH_OK) {
		return 0;
	}
	snprintf(msg, len, "%s",
		 h == STORED_HEALTH_STARTING ? "starting: not registered or "
					       "shard maps not fetched yet"
					     : "lease expired: metad "
					       "unreachable");
	return 1;
}

/* ------------------------------------------------ shutdown */

static void handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void on_rpc_stopped(struct rpc_server *srv, void *data)
{
	struct stored *sd = data;

	(void)srv;
	sd->rpc = NULL;
	uv_close((uv_handle_t *)&sig_int, handle_closed);
	uv_close((uv_handle_t *)&sig_term, handle_closed);
	log_info("shutdown: gRPC server stopped");
}

static void shutdown_drained(struct stored *sd)
{
	log_info("shutdown: in-flight requests done");
	node_stop_timers(sd);
	uv_close((uv_handle_t *)&sd->scrub_timer, handle_closed);
	uv_close((uv_handle_t *)&sd->resync_timer, handle_closed);
	if (sd->http != NULL) {
		http_server_stop(sd->http);
		sd->http = NULL;
	}
	peers_close(sd);
	if (sd->rpc != NULL) {
		rpc_server_stop(sd->rpc, on_rpc_stopped, sd);
	} else {
		uv_close((uv_handle_t *)&sig_int, handle_closed);
		uv_close((uv_handle_t *)&sig_term, handle_closed);
	}
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct stored *sd = s->data;

	if (sd->stopping) {
		log_info("signal %d: already shutting down", signum);
		return;
	}
	log_info("signal %d: shutting down (%d requests in flight)", signum,
		 sd->inflight);
	sd->stopping = true;
	if (sd->inflight == 0) {
		shutdown_drained(sd);
	} else {
		sd->on_drained = shutdown_drained;
	}
}

/* ------------------------------------------------ start-up */

static void on_ready(struct stored *sd, int rv, const char *errmsg)
{
	if (rv != 0) {
		log_error("start-up failed: %s", errmsg);
		exit_code = 1;
		on_signal(&sig_term, SIGTERM);
		return;
	}
	log_info("serving data requests on %s", sd->cfg.listen);
}

static int open_store(struct stored *sd, char *errmsg)
{
	struct segstore_tier_config tiers[SEGSTORE_MAX_TIERS];
	struct segstore_config sc = {0};
	char index[4200];
	int rv;

	rv = ombra_mkdir_p(sd->cfg.data_dir, errmsg);
	if (rv == 0) {
		rv = stored_config_finish(&sd->cfg, errmsg);
	}
	if (rv != 0) {
		return rv;
	}
	for (size_t i = 0; i < sd->cfg.n_tiers; i++) {
		tiers[i] = (struct segstore_tier_config){
		    .name = sd->cfg.tiers[i].name,
		    .dir = sd->cfg.tiers[i].dir,
		    .capacity = sd->cfg.tiers[i].capacity};
	}
	snprintf(index, sizeof(index), "%s/index", sd->cfg.data_dir);
	sc.index_dir = index;
	sc.tiers = tiers;
	sc.n_tiers = sd->cfg.n_tiers;
	rv = segstore_open(&sc, &sd->ss, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "opening the store in %s",
				   sd->cfg.data_dir);
		return rv;
	}
	if (sd->cfg.audit_log != NULL) {
		rv = audit_open(sd->cfg.audit_log, &sd->audit, errmsg);
		if (rv != 0) {
			return rv;
		}
		log_info("audit log: %s", sd->cfg.audit_log);
	}
	for (size_t i = 0; i < sd->cfg.n_tiers; i++) {
		log_info("tier %s: %s, %llu bytes", sd->cfg.tiers[i].name,
			 sd->cfg.tiers[i].dir,
			 (unsigned long long)sd->cfg.tiers[i].capacity);
	}
	return 0;
}

static int start(struct stored *sd, char *errmsg)
{
	int rv;

	/* Every handle first, so that a failed start closes them all. */
	node_init(sd);
	uv_timer_init(sd->loop, &sd->scrub_timer);
	uv_timer_init(sd->loop, &sd->resync_timer);
	sd->scrub_timer.data = sd;
	sd->resync_timer.data = sd;
	uv_signal_init(sd->loop, &sig_int);
	uv_signal_init(sd->loop, &sig_term);
	sig_int.data = sd;
	sig_term.data = sd;
	rv = open_store(sd, errmsg);
	if (rv == 0) {
		rv = metrics_make(sd, errmsg);
	}
	if (rv != 0) {
		return rv;
	}
	sd->lru = wl_lru_create(STORED_LRU_SIZE);
	if (sd->lru == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	rv = rpc_server_create(sd->loop, sd->cfg.listen,
			       sd->use_tls ? &sd->tls : NULL, &sd->rpc, errmsg);
	if (rv == 0) {
		rpc_server_set_observer(sd->rpc, observe_rpc, sd->reg);
		rv = svc_register(sd, errmsg);
	}
	if (rv == 0) {
		rv = rpc_server_start(sd->rpc, NULL, errmsg);
	}
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "gRPC server on %s", sd->cfg.listen);
		return rv;
	}
	log_info("gRPC: StoreService on %s%s", sd->cfg.listen,
		 sd->use_tls ? " (mutual TLS)" : "");
	if (sd->cfg.http != NULL) {
		rv = http_server_start(sd->cfg.http, sd->reg, healthz, sd,
				       &sd->http, errmsg);
		if (rv != 0) {
			ombra_errmsg_wrapf(errmsg, "HTTP server on %s",
					   sd->cfg.http);
			return rv;
		}
		log_info("HTTP: /metrics and /healthz on %s", sd->cfg.http);
	}
	rv = meta_init(sd, errmsg);
	if (rv != 0) {
		return rv;
	}
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	return node_start(sd, on_ready);
}

static void cleanup(struct stored *sd)
{
	char errmsg[OMBRA_ERRMSG_LEN];

	if (sd->ss != NULL) {
		if (segstore_flush(sd->ss, errmsg) != 0) {
			log_error("shutdown: final flush failed: %s", errmsg);
		}
		segstore_close(sd->ss);
		sd->ss = NULL;
	}
	audit_close(sd->audit);
	sd->audit = NULL;
	meta_fini(sd);
	sm_clear(&sd->maps);
	segtab_free(&sd->segs);
	wl_lru_destroy(sd->lru);
	if (sd->reg != NULL) {
		metrics_registry_destroy(sd->reg);
	}
	stored_config_free(&sd->cfg);
}

int main(int argc, char **argv)
{
	struct stored *sd = &sd_global;
	char errmsg[OMBRA_ERRMSG_LEN];
	uv_loop_t loop;
	int rv;

	if (stored_config_parse(&sd->cfg, argc, argv, errmsg) != 0) {
		fprintf(stderr, "ombra-stored: %s\n", errmsg);
		stored_config_free(&sd->cfg);
		return 2;
	}
	if (sd->cfg.help) {
		fputs(stored_config_usage(), stdout);
		stored_config_free(&sd->cfg);
		return 0;
	}
	/* Disk I/O and metad calls share the pool: more than libuv's 4. */
	setenv("UV_THREADPOOL_SIZE", "16", 0);
	signal(SIGPIPE, SIG_IGN);
	log_init(sd->cfg.name, sd->cfg.log_level);
	if (sd->cfg.tls_ca != NULL) {
		sd->use_tls = true;
		sd->tls.ca_file = sd->cfg.tls_ca;
		sd->tls.cert_file = sd->cfg.tls_cert;
		sd->tls.key_file = sd->cfg.tls_key;
	}
	atomic_init(&sd->health, STORED_HEALTH_STARTING);
	uv_loop_init(&loop);
	sd->loop = &loop;
	rv = start(sd, errmsg);
	if (rv != 0) {
		log_error("start-up failed: %s", errmsg);
		fprintf(stderr, "ombra-stored: %s\n", errmsg);
		exit_code = 1;
		sd->stopping = true;
		shutdown_drained(sd);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	rv = uv_loop_close(&loop);
	if (rv != 0) {
		log_warn("shutdown: loop still had handles (%s)",
			 uv_strerror(rv));
	}
	cleanup(sd);
	log_info("shutdown complete");
	return exit_code;
}
