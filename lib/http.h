/* http.h: the HTTP endpoint every daemon serves (libmicrohttpd, its own
 * thread): GET /metrics (Prometheus text from a registry), GET /healthz,
 * and extra GET routes a daemon registers (e.g. metad's dashboard).
 *
 * Handlers run on the HTTP thread: they must only read thread-safe state
 * (the metrics registry, or data they lock themselves).  /healthz calls
 * the health callback; 200 "ok" when it returns 0, 503 with its message
 * otherwise. */
#ifndef OMBRA_HTTP_H
#define OMBRA_HTTP_H

#include <stddef.h>

struct metrics_registry;
struct http_server;

/* Fill *msg (size len) with a reason and return non-zero when unhealthy. */
typedef int (*http_health_fn)(void *data, char *msg, size_t len);

/* Return a malloc'd body (caller of the route = http layer frees) and set
 * *content_type to a static string; NULL body gives 500. */
typedef char *(*http_route_fn)(void *data, const char **content_type);

/* listen: "host:port" (port 0 = any).  reg: not owned, must outlive the
 * server.  Returns 0 or OMBRA_E* with errmsg filled. */
int http_server_start(const char *listen, struct metrics_registry *reg,
		      http_health_fn health, void *health_data,
		      struct http_server **out, char *errmsg);

/* path: exact match, e.g. "/dashboard" (copied).  Call before traffic. */
int http_server_route(struct http_server *s, const char *path, http_route_fn fn,
		      void *data);

/* The port actually bound. */
int http_server_port(const struct http_server *s);

void http_server_stop(struct http_server *s);

#endif
