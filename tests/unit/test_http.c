/* test_http.c: the daemon HTTP endpoint on 127.0.0.1 with an ephemeral
 * port, driven by a plain-socket HTTP/1.0 client: /metrics, /healthz
 * (healthy and unhealthy), a registered route, a failing route, an unknown
 * path (404), a non-GET method (405), and malformed or unusable listen
 * addresses.  Fails (cmocka) on a wrong status line, header or body; every
 * socket has a 5 s receive timeout, so a hung server fails, not hangs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "err.h"
#include "http.h"
#include "metrics.h"

struct fixture {
	struct metrics_registry *reg;
	struct http_server *srv;
	atomic_int unhealthy; /* set by the test, read by the HTTP thread */
};

struct response {
	char status_line[128];
	char *head; /* headers, NUL-terminated */
	char *body;
};

static int health_cb(void *data, char *msg, size_t len)
{
	struct fixture *f = data;

	if (!atomic_load(&f->unhealthy)) {
		return 0;
	}
	snprintf(msg, len, "raft: no leader for 12000 ms");
	return 1;
}

static char *route_dashboard(void *data, const char **content_type)
{
	(void)data;
	*content_type = "text/html; charset=utf-8";
	return strdup("<h1>ombra</h1>");
}

static char *route_broken(void *data, const char **content_type)
{
	(void)data;
	(void)content_type;
	return NULL;
}

static int setup(void **state)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct fixture *f = calloc(1, sizeof(*f));
	struct metric *m;

	if (f == NULL) {
		return -1;
	}
	f->reg = metrics_registry_create();
	if (f->reg == NULL) {
		free(f);
		return -1;
	}
	m = metrics_counter(f->reg, "ombra_test_total", "A test counter.",
			    "kind=\"unit\"");
	metric_inc(m, 3);
	if (http_server_start("127.0.0.1:0", f->reg, health_cb, f, &f->srv,
			      errmsg) != 0) {
		print_error("http_server_start: %s\n", errmsg);
		metrics_registry_destroy(f->reg);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	http_server_stop(f->srv);
	metrics_registry_destroy(f->reg);
	free(f);
	return 0;
}

static void response_free(struct response *r)
{
	free(r->head);
}

/* Send "<method> <path> HTTP/1.0", read to EOF, split the response. */
static void request(int port, const char *method, const char *path,
		    struct response *out)
{
	struct sockaddr_in addr;
	struct timeval tv = {.tv_sec = 5};
	char req[256];
	char *buf = NULL;
	size_t len = 0;
	size_t cap = 0;
	char *eol, *sep;
	int fd;

	memset(out, 0, sizeof(*out));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)),
			 0);
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: test\r\n\r\n",
		 method, path);
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL),
			 (ssize_t)strlen(req));
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			cap = cap * 2 + 4096;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0) {
			fail_msg("recv from %s %s: timed out or failed", method,
				 path);
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';

	eol = strstr(buf, "\r\n");
	assert_non_null(eol);
	assert_true((size_t)(eol - buf) < sizeof(out->status_line));
	memcpy(out->status_line, buf, (size_t)(eol - buf));
	out->status_line[eol - buf] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	assert_non_null(sep);
	*sep = '\0';
	out->head = buf;
	out->body = sep + 4;
}

/* The server may answer HTTP/1.1 to a 1.0 request (RFC 9110 2.5), so only
 * the major version is checked, then code and reason. */
static void assert_status(const struct response *r, const char *want)
{
	const char *s = r->status_line;

	if (strncmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') ||
	    s[8] != ' ' || strcmp(s + 9, want) != 0) {
		fail_msg("status line \"%s\", want HTTP/1.x %s", r->status_line,
			 want);
	}
}

static void assert_header(const struct response *r, const char *line)
{
	if (strstr(r->head, line) == NULL) {
		fail_msg("header \"%s\" missing in:\n%s", line, r->head);
	}
}

static void test_port_is_bound(void **state)
{
	struct fixture *f = *state;

	assert_true(http_server_port(f->srv) > 0);
	assert_true(http_server_port(f->srv) <= 65535);
}

static void test_metrics(void **state)
{
	struct fixture *f = *state;
	struct response r;

	request(http_server_port(f->srv), "GET", "/metrics", &r);
	assert_status(&r, "200 OK");
	assert_header(&r, "Content-Type: text/plain; version=0.0.4");
	assert_string_equal(r.body, "# HELP ombra_test_total A test counter.\n"
				    "# TYPE ombra_test_total counter\n"
				    "ombra_test_total{kind=\"unit\"} 3\n");
	response_free(&r);
}

static void test_healthz(void **state)
{
	struct fixture *f = *state;
	struct response r;

	request(http_server_port(f->srv), "GET", "/healthz", &r);
	assert_status(&r, "200 OK");
	assert_string_equal(r.body, "ok");
	response_free(&r);

	atomic_store(&f->unhealthy, 1);
	request(http_server_port(f->srv), "GET", "/healthz", &r);
	assert_status(&r, "503 Service Unavailable");
	assert_string_equal(r.body, "raft: no leader for 12000 ms");
	response_free(&r);
}

static void test_not_found_and_method(void **state)
{
	struct fixture *f = *state;
	struct response r;

	request(http_server_port(f->srv), "GET", "/nope", &r);
	assert_status(&r, "404 Not Found");
	assert_string_equal(r.body, "no such path: /nope");
	response_free(&r);

	request(http_server_port(f->srv), "POST", "/metrics", &r);
	assert_status(&r, "405 Method Not Allowed");
	assert_header(&r, "Allow: GET, HEAD");
	response_free(&r);

	/* HEAD gets the headers of GET and no body. */
	request(http_server_port(f->srv), "HEAD", "/healthz", &r);
	assert_status(&r, "200 OK");
	assert_string_equal(r.body, "");
	response_free(&r);
}

static void test_routes(void **state)
{
	struct fixture *f = *state;
	struct response r;

	assert_int_equal(
	    http_server_route(f->srv, "/dashboard", route_dashboard, NULL), 0);
	assert_int_equal(
	    http_server_route(f->srv, "/dashboard", route_dashboard, NULL),
	    OMBRA_EEXIST);
	assert_int_equal(
	    http_server_route(f->srv, "/broken", route_broken, NULL), 0);
	assert_int_equal(
	    http_server_route(f->srv, "/metrics", route_dashboard, NULL),
	    OMBRA_EINVAL);
	assert_int_equal(
	    http_server_route(f->srv, "relative", route_dashboard, NULL),
	    OMBRA_EINVAL);

	request(http_server_port(f->srv), "GET", "/dashboard", &r);
	assert_status(&r, "200 OK");
	assert_header(&r, "Content-Type: text/html; charset=utf-8");
	assert_string_equal(r.body, "<h1>ombra</h1>");
	response_free(&r);

	request(http_server_port(f->srv), "GET", "/broken", &r);
	assert_status(&r, "500 Internal Server Error");
	assert_string_equal(r.body, "/broken: handler failed");
	response_free(&r);
}

static void test_bad_listen(void **state)
{
	static const char *const bad[] = {
	    "",
	    "127.0.0.1",
	    "127.0.0.1:",
	    "127.0.0.1:x",
	    "127.0.0.1:65536",
	    "::1:80",
	    "127.0.0.1:-1",
	    "[::1]",
	};
	char errmsg[OMBRA_ERRMSG_LEN];
	struct http_server *s = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errmsg[0] = '\0';
		if (http_server_start(bad[i], NULL, NULL, NULL, &s, errmsg) !=
		    OMBRA_EINVAL) {
			fail_msg("listen \"%s\" was not rejected", bad[i]);
		}
		assert_true(strlen(errmsg) > 0);
	}
	assert_int_equal(http_server_start(NULL, NULL, NULL, NULL, &s, errmsg),
			 OMBRA_EINVAL);
	assert_null(s);
}

static void test_port_in_use(void **state)
{
	struct fixture *f = *state;
	char listen[64];
	char errmsg[OMBRA_ERRMSG_LEN];
	struct http_server *s = NULL;

	snprintf(listen, sizeof(listen), "127.0.0.1:%d",
		 http_server_port(f->srv));
	assert_int_equal(
	    http_server_start(listen, NULL, NULL, NULL, &s, errmsg), OMBRA_EIO);
	assert_null(s);
	assert_non_null(strstr(errmsg, listen));
}

static void test_ipv6_and_no_registry(void **state)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct http_server *s = NULL;
	struct response r;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	(void)state;
	/* Without a registry /metrics is 404; without a callback, healthy. */
	assert_int_equal(http_server_start(":0", NULL, NULL, NULL, &s, errmsg),
			 0);
	request(http_server_port(s), "GET", "/metrics", &r);
	assert_status(&r, "404 Not Found");
	response_free(&r);
	request(http_server_port(s), "GET", "/healthz", &r);
	assert_string_equal(r.body, "ok");
	response_free(&r);
	http_server_stop(s);

	/* IPv6 loopback, if this host has it. */
	if (fd >= 0) {
		close(fd);
		s = NULL;
		if (http_server_start("[::1]:0", NULL, NULL, NULL, &s,
				      errmsg) == 0) {
			assert_true(http_server_port(s) > 0);
			http_server_stop(s);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_port_is_bound, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found_and_method, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
	    cmocka_unit_test(test_bad_listen),
	    cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
	    cmocka_unit_test(test_ipv6_and_no_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
