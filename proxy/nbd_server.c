/* nbd_server.c: the NBD listener on the proxy's loop, its connections'
 * registry and metrics, and stop (nbd.h).
 *
 * The listening socket is created, bound and put in listen state with
 * plain syscalls before libuv adopts it, so a bad address or a busy port
 * fails nbd_server_start() at once with the exact reason.
 *
 * Failure: see nbd.h.  An accept that fails is logged and the server goes
 * on listening. */
#include "nbd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "metrics.h"
#include "nbd_internal.h"
#include "netaddr.h"

#define NBD_BACKLOG 128

void nbd_metric_inc(struct metric *m, double by)
{
	if (m != NULL) {
		metric_inc(m, by);
	}
}

static void nbd_server_metrics(struct nbd_server *s,
			       struct metrics_registry *reg)
{
	static const double bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
					0.005,	0.01,	 0.025,	 0.05,	0.1,
					0.25,	0.5,	 1,	 2.5,	10};
	char labels[64];
	unsigned i;

	if (reg == NULL) {
		return;
	}
	s->m.conns = metrics_gauge(reg, "nbd_connections",
				   "Open NBD client connections", NULL);
	s->m.conns_total =
	    metrics_counter(reg, "nbd_connections_total",
			    "NBD client connections accepted", NULL);
	s->m.proto_errors = metrics_counter(
	    reg, "nbd_protocol_errors_total",
	    "NBD connections closed for breaking the protocol", NULL);
	s->m.read_bytes = metrics_counter(reg, "nbd_read_bytes_total",
					  "Bytes read by NBD clients", NULL);
	s->m.written_bytes =
	    metrics_counter(reg, "nbd_written_bytes_total",
			    "Bytes written by NBD clients", NULL);
	for (i = 0; i <= NBD_CMD_COUNT; i++) {
		snprintf(labels, sizeof(labels), "op=\"%s\"", nbd_cmd_name(i));
		s->m.reqs[i] = metrics_counter(reg, "nbd_requests_total",
					       "NBD requests answered", labels);
		s->m.errors[i] = metrics_counter(
		    reg, "nbd_request_errors_total",
		    "NBD requests answered with an error", labels);
		s->m.seconds[i] = metrics_histogram(
		    reg, "nbd_request_seconds",
		    "Time from an NBD request's header to its reply "
		    "(successful requests)",
		    labels, bounds, sizeof(bounds) / sizeof(bounds[0]));
	}
}

void nbd_server_unref(struct nbd_server *s)
{
	if (--s->refs == 0) {
		free(s);
	}
}

static void nbd_server_listener_closed(uv_handle_t *h)
{
	nbd_server_unref(h->data);
}

static void nbd_server_on_connection(uv_stream_t *listener, int status)
{
	struct nbd_server *s = listener->data;

	if (status < 0) {
		log_warn("nbd: accept: %s", uv_strerror(status));
		return;
	}
	if (s->stopping) {
		return;
	}
	nbd_conn_accept(s);
}

/* A listening socket for ai's first address; -1 with errmsg on error. */
static int nbd_server_socket(const char *addr, const struct addrinfo *ai,
			     char *errmsg)
{
	int one = 1;
	int zero = 0;
	int fd;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0) {
		ombra_errmsg_printf(errmsg, "nbd server on %s: socket: %s",
				    addr, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (ai->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) !=
		 0)) {
		ombra_errmsg_printf(errmsg, "nbd server on %s: setsockopt: %s",
				    addr, strerror(errno));
		close(fd);
		return -1;
	}
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		ombra_errmsg_printf(errmsg, "nbd server on %s: bind: %s", addr,
				    strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, NBD_BACKLOG) != 0) {
		ombra_errmsg_printf(errmsg, "nbd server on %s: listen: %s",
				    addr, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int nbd_server_start(uv_loop_t *loop, struct proxy *p, const char *listen,
		     struct metrics_registry *reg, struct nbd_server **out,
		     char *errmsg)
{
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct nbd_server *s;
	int fd;
	int rv;

	if (out == NULL || loop == NULL) {
		ombra_errmsg_printf(errmsg, "nbd_server_start(): %s is NULL",
				    out == NULL ? "out" : "loop");
		return OMBRA_EINVAL;
	}
	*out = NULL;
	rv = netaddr_resolve_listen(listen, &ai, errmsg);
	if (rv != 0) {
		return rv;
	}
	fd = nbd_server_socket(listen, ai, errmsg);
	freeaddrinfo(ai);
	if (fd < 0) {
		return OMBRA_EIO;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	s->loop = loop;
	s->proxy = p;
	s->refs = 1;
	s->handshake_timeout_ms = NBD_HANDSHAKE_TIMEOUT_MS;
	nbd_server_metrics(s, reg);
	rv = uv_tcp_init(loop, &s->listener);
	if (rv != 0) {
		close(fd);
		free(s);
		ombra_errmsg_printf(errmsg, "nbd server on %s: %s", listen,
				    uv_strerror(rv));
		return OMBRA_EIO;
	}
	s->listener.data = s;
	rv = uv_tcp_open(&s->listener, fd);
	if (rv != 0) {
		close(fd);
		goto err_close;
	}
	rv = uv_listen((uv_stream_t *)&s->listener, NBD_BACKLOG,
		       nbd_server_on_connection);
	if (rv != 0) {
		goto err_close;
	}
	rv = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sslen);
	if (rv != 0) {
		goto err_close;
	}
	s->port = netaddr_port((struct sockaddr *)&ss);
	log_info("nbd: listening on %s (port %d)", listen, s->port);
	*out = s;
	return 0;

err_close:
	ombra_errmsg_printf(errmsg, "nbd server on %s: %s", listen,
			    uv_strerror(rv));
	/* Freed in the close callback when the loop runs next. */
	uv_close((uv_handle_t *)&s->listener, nbd_server_listener_closed);
	return OMBRA_EIO;
}

int nbd_server_port(const struct nbd_server *s)
{
	return s != NULL ? s->port : 0;
}

void nbd_server_stop(struct nbd_server *s)
{
	struct nbd_conn *c;

	if (s == NULL || s->stopping) {
		return;
	}
	s->stopping = true;
	uv_close((uv_handle_t *)&s->listener, nbd_server_listener_closed);
	for (c = s->conns; c != NULL; c = c->next) {
		nbd_conn_close(c);
	}
}
