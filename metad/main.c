/* main.c: ombra-metad, the Ombra metadata service daemon: configuration,
 * start-up of the state machine, Raft, gRPC and HTTP on one libuv loop,
 * and graceful shutdown on SIGINT/SIGTERM.
 *
 * Shutdown: the HTTP thread stops, Watch streams end, then the gRPC server
 * stops (it cancels every call and waits until each one is answered) while
 * Raft closes (which fails every pending proposal and read, answering the
 * calls that wait on them); when both are done the health timer and the
 * signal handles close, LMDB is synced and closed, and the loop ends with
 * no handle left, so sanitizers see no leak.
 * Failure: exit 2 on a configuration error, 1 when start-up fails (the
 * message names the step), 0 after a clean shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <grpc/status.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Autoconf's config.h (PACKAGE_VERSION), found through -I. in the build
 * directory; "config.h" below is metad/config.h. */
#include <config.h>

#include "audit.h"
#include "config.h"
#include "err.h"
#include "fsm.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "metad.h"
#include "metrics.h"
#include "raftnode.h"
#include "rpc.h"
#include "service.h"

struct daemon {
	struct metad md;
	struct metad_config cfg;
	uv_loop_t loop;
	uv_signal_t sigint, sigterm;
	bool signals_ok;
	int lock_fd;	     /* flock on data_dir/lock, -1 if not held */
	struct audit *audit; /* --audit-log, NULL if off */
	int closing;	     /* asynchronous closes still running */
	int exit_code;
};

/* ------------------------------------------------------------ helpers */

/* Take an exclusive flock on dir/lock so that two members never share a
 * data directory (both would write the same Raft log).  The lock is
 * released when the process exits.  Returns 0 or OMBRA_EPRECOND/EIO. */
static int lock_data_dir(const char *dir, int *fd_out, char *errmsg)
{
	char path[PATH_MAX + 8];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		ombra_errmsg_printf(errmsg, "open %s: %s", path,
				    strerror(errno));
		return OMBRA_EIO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;

		close(fd);
		if (err == EWOULDBLOCK) {
			ombra_errmsg_printf(errmsg,
					    "data directory %s is in use by "
					    "another ombra-metad (%s is "
					    "locked)",
					    dir, path);
			return OMBRA_EPRECOND;
		}
		ombra_errmsg_printf(errmsg, "flock %s: %s", path,
				    strerror(err));
		return OMBRA_EIO;
	}
	*fd_out = fd;
	return 0;
}

/* rpc_server observer: request counts and latencies per method. */
static void observe_rpc(void *data, const char *method, grpc_status_code code,
			double seconds)
{
	static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
					0.025,	0.05,  0.1,    0.25,  0.5,
					1.0,	2.5,   5.0,    10.0};
	struct metrics_registry *reg = data;
	char labels[160];
	struct metric *m;

	snprintf(labels, sizeof(labels), "method=\"%s\",code=\"%s\"", method,
		 rpc_status_name(code));
	m = metrics_counter(reg, "ombra_rpc_requests_total",
			    "gRPC requests served, by method and status",
			    labels);
	if (m != NULL) {
		metric_inc(m, 1.0);
	}
	snprintf(labels, sizeof(labels), "method=\"%s\"", method);
	m = metrics_histogram(reg, "ombra_rpc_request_duration_seconds",
			      "gRPC request duration, by method", labels,
			      bounds, sizeof(bounds) / sizeof(bounds[0]));
	if (m != NULL) {
		metric_observe(m, seconds);
	}
}

/* HTTP thread: /healthz. */
static int healthz(void *data, char *msg, size_t len)
{
	struct metad *md = data;

	return raftnode_health(md->rn, msg, len);
}

static void on_leader(void *data, bool is_leader)
{
	struct metad *md = data;

	if (md->health != NULL) {
		health_set_leader(md->health, is_leader);
	}
}

/* ------------------------------------------------------------ shutdown */

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

/* Last step: everything asynchronous has finished. */
static void shutdown_finish(struct daemon *d)
{
	struct metad *md = &d->md;

	if (md->health != NULL) {
		health_close(md->health);
		md->health = NULL;
	}
	if (d->signals_ok) {
		uv_close((uv_handle_t *)&d->sigint, on_handle_closed);
		uv_close((uv_handle_t *)&d->sigterm, on_handle_closed);
		d->signals_ok = false;
	}
	service_free_tables(md);
	if (md->fsm != NULL) {
		if (fsm_sync(md->fsm) != 0) {
			log_error("shutdown: final LMDB sync failed");
		}
		fsm_close(md->fsm);
		md->fsm = NULL;
	}
	log_info("shutdown complete");
}

static void close_step_done(struct daemon *d)
{
	if (--d->closing == 0) {
		shutdown_finish(d);
	}
}

static void on_rpc_stopped(struct rpc_server *srv, void *data)
{
	struct daemon *d = data;

	(void)srv;
	d->md.rpc = NULL;
	log_info("shutdown: gRPC server stopped");
	close_step_done(d);
}

static void on_raft_closed(void *data)
{
	struct daemon *d = data;

	d->md.rn = NULL;
	close_step_done(d);
}

/* Start tearing everything down; safe to call once per process. */
static void daemon_shutdown(struct daemon *d)
{
	struct metad *md = &d->md;

	if (md->stopping) {
		return;
	}
	md->stopping = true;
	if (md->http != NULL) {
		http_server_stop(md->http);
		md->http = NULL;
	}
	if (md->watch != NULL) {
		watch_hub_destroy(md->watch);
		md->watch = NULL;
	}
	d->closing = 1; /* released below */
	if (md->rpc != NULL) {
		d->closing++;
		rpc_server_stop(md->rpc, on_rpc_stopped, d);
	}
	if (md->rn != NULL) {
		d->closing++;
		raftnode_close(md->rn, on_raft_closed, d);
	}
	close_step_done(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	if (d->md.stopping) {
		log_info("signal %d: already shutting down", signum);
		return;
	}
	log_info("signal %d: shutting down", signum);
	daemon_shutdown(d);
}

/* ------------------------------------------------------------ start-up */

static int start_services(struct daemon *d, char *errmsg)
{
	struct metad *md = &d->md;
	const struct metad_config *cfg = &d->cfg;
	struct rpc_tls tls = {0};
	int port = 0;
	int rv;

	if (cfg->tls_ca[0] != '\0') {
		tls.ca_file = cfg->tls_ca;
		tls.cert_file = cfg->tls_cert;
		tls.key_file = cfg->tls_key;
	}
	rv = rpc_server_create(&d->loop, cfg->grpc_listen,
			       cfg->tls_ca[0] != '\0' ? &tls : NULL, &md->rpc,
			       errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "gRPC server on %s",
				   cfg->grpc_listen);
		return rv;
	}
	rpc_server_set_observer(md->rpc, observe_rpc, md->metrics);
	rv = service_admin_register(md, md->rpc, errmsg);
	if (rv == 0) {
		rv = service_meta_register(md, md->rpc, errmsg);
	}
	if (rv != 0) {
		return rv;
	}
	rv = rpc_server_start(md->rpc, &port, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "gRPC server on %s",
				   cfg->grpc_listen);
		return rv;
	}
	log_info("gRPC: AdminService and MetaService on %s%s", cfg->grpc_listen,
		 cfg->tls_ca[0] != '\0' ? " (mutual TLS)" : "");
	rv = http_server_start(cfg->http_listen, md->metrics, healthz, md,
			       &md->http, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "HTTP server on %s",
				   cfg->http_listen);
		return rv;
	}
	log_info("HTTP: /metrics and /healthz on %s", cfg->http_listen);
	return 0;
}

static int daemon_start(struct daemon *d, char *errmsg)
{
	struct metad *md = &d->md;
	const struct metad_config *cfg = &d->cfg;
	struct raftnode_options ro;
	char dir[PATH_MAX + 8];
	int rv;

	md->metrics = metrics_registry_create();
	if (md->metrics == NULL) {
		ombra_errmsg_printf(errmsg, "metrics: out of memory");
		return OMBRA_ENOMEM;
	}
	snprintf(dir, sizeof(dir), "%s/raft", cfg->data_dir);
	rv = ombra_mkdir_p(dir, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "data directory");
		return rv;
	}
	rv = lock_data_dir(cfg->data_dir, &d->lock_fd, errmsg);
	if (rv != 0) {
		return rv;
	}
	snprintf(dir, sizeof(dir), "%s/state", cfg->data_dir);
	rv = fsm_open(dir, &md->fsm, errmsg);
	if (rv != 0) {
		return rv;
	}
	if (cfg->audit_log[0] != '\0') {
		rv = audit_open(cfg->audit_log, &d->audit, errmsg);
		if (rv != 0) {
			return rv;
		}
		fsm_set_audit(md->fsm, d->audit);
		log_info("audit log: %s", cfg->audit_log);
	}
	rv = watch_hub_create(md, &md->watch, errmsg);
	if (rv != 0) {
		return rv;
	}
	rv = health_create(md, &md->health, errmsg);
	if (rv != 0) {
		return rv;
	}
	ro = (struct raftnode_options){
	    .loop = &d->loop,
	    .cfg = cfg,
	    .fsm = md->fsm,
	    .metrics = md->metrics,
	    .on_leader = on_leader,
	    .data = md,
	};
	rv = raftnode_start(&ro, &md->rn, errmsg);
	if (rv != 0) {
		return rv;
	}
	rv = start_services(d, errmsg);
	if (rv != 0) {
		return rv;
	}
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
	static struct daemon d; /* large; keep it off the stack */
	enum metad_config_action action;
	char errmsg[OMBRA_ERRMSG_LEN];
	char name[32];
	int rv;

	rv = metad_config_from_args(&d.cfg, argc, argv, &action, errmsg);
	if (rv != 0) {
		fprintf(stderr, "ombra-metad: %s\n", errmsg);
		metad_config_free(&d.cfg);
		return 2;
	}
	if (action == METAD_CONFIG_HELP) {
		fputs(metad_config_usage(), stdout);
		metad_config_free(&d.cfg);
		return 0;
	}
	if (action == METAD_CONFIG_VERSION) {
		printf("ombra-metad %s\n", PACKAGE_VERSION);
		metad_config_free(&d.cfg);
		return 0;
	}
	/* A peer that closes its Raft or gRPC connection must give EPIPE on
	 * write, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(name, sizeof(name), "metad-%llu",
		 (unsigned long long)d.cfg.id);
	log_init(name, d.cfg.log_level);
	log_info("ombra-metad %s starting", PACKAGE_VERSION);
	metad_config_log(&d.cfg);

	rv = uv_loop_init(&d.loop);
	if (rv != 0) {
		log_error("uv_loop_init: %s", uv_strerror(rv));
		metad_config_free(&d.cfg);
		return 1;
	}
	d.lock_fd = -1;
	d.md.loop = &d.loop;
	d.md.cfg = &d.cfg;
	d.md.version = PACKAGE_VERSION;
	rv = daemon_start(&d, errmsg);
	if (rv != 0) {
		log_error("start-up failed: %s", errmsg);
		d.exit_code = 1;
		daemon_shutdown(&d);
	} else {
		log_info("metad-%llu running", (unsigned long long)d.cfg.id);
	}
	uv_run(&d.loop, UV_RUN_DEFAULT);
	rv = uv_loop_close(&d.loop);
	if (rv != 0) {
		log_error("uv_loop_close: %s (a handle was left open)",
			  uv_strerror(rv));
		d.exit_code = 1;
	}
	if (d.md.metrics != NULL) {
		metrics_registry_destroy(d.md.metrics);
	}
	if (d.lock_fd >= 0) {
		close(d.lock_fd);
	}
	audit_close(d.audit); /* after fsm_close: it wrote the last records */
	metad_config_free(&d.cfg);
	return d.exit_code;
}
