/* http.c: the HTTP endpoint of every daemon, on libmicrohttpd with its own
 * polling thread: GET /metrics renders the registry, GET /healthz asks the
 * daemon's health callback, and daemons add exact-path GET routes.
 *
 * Failure: http_server_start() fails with OMBRA_EINVAL on a malformed
 * listen address and OMBRA_EIO when the socket cannot be bound (the
 * reason libmicrohttpd logged, e.g. "Failed to bind to port 80:
 * Permission denied", is in errmsg).  After start, a request that cannot
 * be answered (out of memory) makes libmicrohttpd close that connection;
 * the daemon is not affected.  Other methods than GET/HEAD get 405. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"

#define HTTP_HEALTH_MSG_LEN 512
#define HTTP_CONN_LIMIT 128
#define HTTP_CONN_TIMEOUT_S 30

#define HTTP_TEXT_TYPE "text/plain; charset=utf-8"
#define HTTP_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct http_route {
	char *path;
	http_route_fn fn;
	void *data;
};

struct http_server {
	struct MHD_Daemon *mhd;
	struct metrics_registry *reg;
	http_health_fn health;
	void *health_data;
	pthread_mutex_t routes_lock;
	struct http_route *routes;
	size_t n_routes;
	int port;
	/* Until started is set, libmicrohttpd's log lines are kept in
	 * start_err so that a failed start can say why; afterwards they go
	 * to the log. */
	atomic_bool started;
	char start_err[OMBRA_ERRMSG_LEN];
};

/* Marker stored in the per-request pointer after the first callback. */
static int http_request_seen;

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *s = cls;
	char line[OMBRA_ERRMSG_LEN];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n') {
		line[--n] = '\0';
	}
	if (!atomic_load(&s->started)) {
		snprintf(s->start_err, sizeof(s->start_err), "%s", line);
		return;
	}
	log_warn("http: %s", line);
}

/* Queue a response; body is either static (persistent) or malloc'd and
 * then owned (and freed) by libmicrohttpd. */
static enum MHD_Result http_reply(struct MHD_Connection *conn,
				  unsigned int status, char *body,
				  bool body_is_malloced,
				  const char *content_type)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(
	    strlen(body), body,
	    body_is_malloced ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		if (body_is_malloced) {
			free(body);
		}
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				    content_type) != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") !=
		MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Reply with a formatted, malloc'd text body. */
static enum MHD_Result http_reply_text(struct MHD_Connection *conn,
				       unsigned int status, const char *fmt,
				       ...)
    __attribute__((format(printf, 3, 4)));

static enum MHD_Result http_reply_text(struct MHD_Connection *conn,
				       unsigned int status, const char *fmt,
				       ...)
{
	char *body = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&body, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return MHD_NO;
	}
	return http_reply(conn, status, body, true, HTTP_TEXT_TYPE);
}

static enum MHD_Result http_serve_metrics(struct http_server *s,
					  struct MHD_Connection *conn)
{
	char *body;

	if (s->reg == NULL) {
		return http_reply_text(conn, MHD_HTTP_NOT_FOUND,
				       "no metrics registry");
	}
	body = metrics_render(s->reg);
	if (body == NULL) {
		return MHD_NO;
	}
	return http_reply(conn, MHD_HTTP_OK, body, true, HTTP_METRICS_TYPE);
}

static enum MHD_Result http_serve_health(struct http_server *s,
					 struct MHD_Connection *conn)
{
	char msg[HTTP_HEALTH_MSG_LEN];

	msg[0] = '\0';
	if (s->health == NULL ||
	    s->health(s->health_data, msg, sizeof(msg)) == 0) {
		return http_reply(conn, MHD_HTTP_OK, "ok", false,
				  HTTP_TEXT_TYPE);
	}
	msg[sizeof(msg) - 1] = '\0';
	return http_reply_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "%s",
			       msg[0] != '\0' ? msg : "unhealthy");
}

/* Look up a registered route; copies it out under the lock. */
static bool http_find_route(struct http_server *s, const char *url,
			    struct http_route *out)
{
	bool found = false;
	size_t i;

	pthread_mutex_lock(&s->routes_lock);
	for (i = 0; i < s->n_routes; i++) {
		if (strcmp(s->routes[i].path, url) == 0) {
			*out = s->routes[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&s->routes_lock);
	return found;
}

static enum MHD_Result http_serve_route(const struct http_route *route,
					struct MHD_Connection *conn)
{
	const char *content_type = NULL;
	char *body = route->fn(route->data, &content_type);

	if (body == NULL) {
		return http_reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				       "%s: handler failed", route->path);
	}
	return http_reply(conn, MHD_HTTP_OK, body, true,
			  content_type != NULL ? content_type : HTTP_TEXT_TYPE);
}

/* libmicrohttpd calls this once when the headers are in, then again for
 * every chunk of body, then with *upload_data_size == 0 at the end; we
 * answer on the last call and discard any body a GET carries. */
static enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn,
				   const char *url, const char *method,
				   const char *version, const char *upload_data,
				   size_t *upload_data_size, void **req_cls)
{
	struct http_server *s = cls;
	struct http_route route;

	if (*req_cls == NULL) {
		*req_cls = &http_request_seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		return http_reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				       "method %s not allowed; use GET",
				       method);
	}
	if (strcmp(url, "/metrics") == 0) {
		return http_serve_metrics(s, conn);
	}
	if (strcmp(url, "/healthz") == 0) {
		return http_serve_health(s, conn);
	}
	if (http_find_route(s, url, &route)) {
		return http_serve_route(&route, conn);
	}
	return http_reply_text(conn, MHD_HTTP_NOT_FOUND, "no such path: %s",
			       url);
}

int http_server_start(const char *listen, struct metrics_registry *reg,
		      http_health_fn health, void *health_data,
		      struct http_server **out, char *errmsg)
{
	struct addrinfo *ai = NULL;
	struct http_server *s;
	const union MHD_DaemonInfo *info;
	unsigned int flags =
	    MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int rv;

	if (out == NULL) {
		ombra_errmsg_printf(errmsg, "http_server_start(): out is NULL");
		rv = OMBRA_EINVAL;
		goto err;
	}
	*out = NULL;
	rv = netaddr_resolve_listen(listen, &ai, errmsg);
	if (rv != 0) {
		goto err;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto err_free_ai;
	}
	if (pthread_mutex_init(&s->routes_lock, NULL) != 0) {
		ombra_errmsg_printf(errmsg, "pthread_mutex_init failed");
		rv = OMBRA_EINTERNAL;
		goto err_free_s;
	}
	s->reg = reg;
	s->health = health;
	s->health_data = health_data;
	atomic_init(&s->started, false);

	/* IPv6: the unspecified address ("[::]" or "" resolving to it)
	 * takes IPv4 too; a specific IPv6 address only itself. */
	if (ai->ai_family == AF_INET6) {
		const struct sockaddr_in6 *a6 =
		    (const struct sockaddr_in6 *)ai->ai_addr;

		flags |= IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr)
			     ? MHD_USE_DUAL_STACK
			     : MHD_USE_IPv6;
	}
	errno = 0;
	/* The address comes from MHD_OPTION_SOCK_ADDR; the port argument
	 * only makes libmicrohttpd's error messages name the right port. */
	s->mhd = MHD_start_daemon(
	    flags, (uint16_t)netaddr_port(ai->ai_addr), NULL, NULL, http_handle,
	    s, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_EXTERNAL_LOGGER,
	    http_mhd_log, s, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned int)HTTP_CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)HTTP_CONN_TIMEOUT_S, MHD_OPTION_END);
	if (s->mhd == NULL) {
		if (s->start_err[0] != '\0') {
			ombra_errmsg_printf(errmsg, "%s", s->start_err);
		} else {
			ombra_errmsg_printf(errmsg, "%s",
					    errno != 0 ? strerror(errno)
						       : "cannot start");
		}
		ombra_errmsg_wrapf(errmsg, "http server on %s", listen);
		rv = OMBRA_EIO;
		goto err_destroy_lock;
	}
	info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0) {
		ombra_errmsg_printf(errmsg,
				    "http server on %s: cannot learn the bound "
				    "port",
				    listen);
		rv = OMBRA_EIO;
		goto err_stop;
	}
	s->port = info->port;
	atomic_store(&s->started, true);
	freeaddrinfo(ai);
	*out = s;
	return 0;

err_stop:
	MHD_stop_daemon(s->mhd);
err_destroy_lock:
	pthread_mutex_destroy(&s->routes_lock);
err_free_s:
	free(s);
err_free_ai:
	freeaddrinfo(ai);
err:
	return rv;
}

/* OMBRA_EINVAL for a path that does not start with '/' or is one of the
 * built-in paths, OMBRA_EEXIST if registered already, OMBRA_ENOMEM.  The
 * table is locked, so a route added while serving is safe, if late. */
int http_server_route(struct http_server *s, const char *path, http_route_fn fn,
		      void *data)
{
	struct http_route *routes;
	char *copy;

	if (s == NULL || path == NULL || path[0] != '/' || fn == NULL ||
	    strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0) {
		return OMBRA_EINVAL;
	}
	copy = strdup(path);
	if (copy == NULL) {
		return OMBRA_ENOMEM;
	}
	pthread_mutex_lock(&s->routes_lock);
	for (size_t i = 0; i < s->n_routes; i++) {
		if (strcmp(s->routes[i].path, path) == 0) {
			pthread_mutex_unlock(&s->routes_lock);
			free(copy);
			return OMBRA_EEXIST;
		}
	}
	routes = realloc(s->routes, (s->n_routes + 1) * sizeof(*routes));
	if (routes == NULL) {
		pthread_mutex_unlock(&s->routes_lock);
		free(copy);
		return OMBRA_ENOMEM;
	}
	routes[s->n_routes].path = copy;
	routes[s->n_routes].fn = fn;
	routes[s->n_routes].data = data;
	s->routes = routes;
	s->n_routes++;
	pthread_mutex_unlock(&s->routes_lock);
	return 0;
}

int http_server_port(const struct http_server *s)
{
	return s != NULL ? s->port : 0;
}

void http_server_stop(struct http_server *s)
{
	size_t i;

	if (s == NULL) {
		return;
	}
	MHD_stop_daemon(s->mhd);
	for (i = 0; i < s->n_routes; i++) {
		free(s->routes[i].path);
	}
	free(s->routes);
	pthread_mutex_destroy(&s->routes_lock);
	free(s);
}
