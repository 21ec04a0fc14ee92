/* nbd_testcli.c: NBD server fixture on a loop thread and a raw-bytes NBD
 * client for the protocol-layer tests (nbd_testcli.h).  Any failure is a
 * cmocka assertion in the calling test. */
#include "nbd_testcli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "metrics.h"
#include "nbd_memio.h"
#include "proxy/nbd.h"

static void *tc_loop_thread(void *arg)
{
	struct tc_fixture *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void tc_stop_cb(uv_async_t *a)
{
	struct tc_fixture *f = a->data;

	memio_hold(f->mem, false);
	nbd_server_stop(f->srv);
	uv_close((uv_handle_t *)a, NULL);
}

int tc_setup(void **state)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct tc_fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->mem = memio_create(&f->loop);
	assert_non_null(f->mem);
	assert_int_equal(
	    memio_add_volume(f->mem, "vol1", TC_VOL1_SIZE, GRPC_STATUS_OK), 0);
	assert_int_equal(
	    memio_add_volume(f->mem, "vol2", TC_VOL2_SIZE, GRPC_STATUS_OK), 0);
	assert_int_equal(memio_add_volume(f->mem, "broken", TC_VOL2_SIZE,
					  GRPC_STATUS_UNAVAILABLE),
			 0);
	f->reg = metrics_registry_create();
	assert_non_null(f->reg);
	errmsg[0] = '\0';
	if (nbd_server_start(&f->loop, f->mem, "127.0.0.1:0", f->reg, &f->srv,
			     errmsg) != 0) {
		fail_msg("nbd_server_start: %s", errmsg);
	}
	f->port = nbd_server_port(f->srv);
	assert_true(f->port > 0);
	assert_int_equal(uv_async_init(&f->loop, &f->stop, tc_stop_cb), 0);
	f->stop.data = f;
	assert_int_equal(pthread_create(&f->thread, NULL, tc_loop_thread, f),
			 0);
	*state = f;
	return 0;
}

int tc_teardown(void **state)
{
	struct tc_fixture *f = *state;

	uv_async_send(&f->stop);
	pthread_join(f->thread, NULL);
	assert_int_equal(memio_open_refs(f->mem), 0);
	assert_int_equal(memio_started(f->mem), memio_completed(f->mem));
	assert_int_equal(uv_loop_close(&f->loop), 0);
	memio_destroy(f->mem);
	metrics_registry_destroy(f->reg);
	free(f);
	return 0;
}

int tc_connect(int port)
{
	struct sockaddr_in a;
	struct timeval tv = {.tv_sec = 10};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

void tc_send(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			fail_msg("send: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
}

void tc_recv(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n == 0) {
			fail_msg("recv: connection closed with %zu bytes "
				 "missing",
				 len);
		}
		if (n < 0) {
			fail_msg("recv: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
}

bool tc_closed(int fd)
{
	uint8_t buf[4096];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			return true;
		}
		if (n < 0 && errno != EINTR) {
			return false; /* timeout */
		}
	}
}

void tc_hello(int fd, uint32_t cflags)
{
	uint8_t g[NBD_GREETING_LEN];
	uint8_t cf[4];

	tc_recv(fd, g, sizeof(g));
	assert_true(nbd_get64(g) == NBD_INIT_MAGIC);
	assert_true(nbd_get64(g + 8) == NBD_OPTS_MAGIC);
	assert_int_equal(nbd_get16(g + 16),
			 NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	nbd_put32(cf, cflags);
	tc_send(fd, cf, sizeof(cf));
}

void tc_opt(int fd, uint32_t opt, const void *data, uint32_t len)
{
	uint8_t h[NBD_OPT_HDR_LEN];

	nbd_put64(h, NBD_OPTS_MAGIC);
	nbd_put32(h + 8, opt);
	nbd_put32(h + 12, len);
	tc_send(fd, h, sizeof(h));
	if (len > 0) {
		tc_send(fd, data, len);
	}
}

void tc_rep(int fd, struct tc_rep *r)
{
	uint8_t h[NBD_REP_HDR_LEN];
	uint8_t skip[256];
	uint32_t keep;
	uint32_t left;

	tc_recv(fd, h, sizeof(h));
	assert_true(nbd_get64(h) == NBD_REP_MAGIC);
	r->opt = nbd_get32(h + 8);
	r->type = nbd_get32(h + 12);
	r->len = nbd_get32(h + 16);
	keep = r->len < sizeof(r->data) ? r->len : (uint32_t)sizeof(r->data);
	tc_recv(fd, r->data, keep);
	for (left = r->len - keep; left > 0;) {
		uint32_t n = left < sizeof(skip) ? left : sizeof(skip);

		tc_recv(fd, skip, n);
		left -= n;
	}
	if (r->len < sizeof(r->data)) {
		r->data[r->len] = '\0';
	}
}

size_t tc_info_data(uint8_t *out, const char *name, const uint16_t *reqs,
		    unsigned nreq)
{
	size_t n = strlen(name);
	unsigned i;

	nbd_put32(out, (uint32_t)n);
	memcpy(out + 4, name, n);
	nbd_put16(out + 4 + n, (uint16_t)nreq);
	for (i = 0; i < nreq; i++) {
		nbd_put16(out + 6 + n + 2 * i, reqs[i]);
	}
	return 6 + n + 2 * nreq;
}

int tc_open(int port, const char *name, uint64_t *size, uint16_t *flags)
{
	uint8_t d[512];
	struct tc_rep r;
	size_t n;
	int fd = tc_connect(port);

	tc_hello(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	n = tc_info_data(d, name, NULL, 0);
	tc_opt(fd, NBD_OPT_GO, d, (uint32_t)n);
	tc_rep(fd, &r);
	assert_int_equal(r.opt, NBD_OPT_GO);
	if (r.type != NBD_REP_INFO) {
		fail_msg("NBD_OPT_GO %s: reply type 0x%x: %s", name, r.type,
			 (const char *)r.data);
	}
	assert_int_equal(r.len, 12);
	assert_int_equal(nbd_get16(r.data), NBD_INFO_EXPORT);
	if (size != NULL) {
		*size = nbd_get64(r.data + 2);
	}
	if (flags != NULL) {
		*flags = nbd_get16(r.data + 10);
	}
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ACK);
	assert_int_equal(r.len, 0);
	return fd;
}

void tc_req(int fd, uint16_t type, uint16_t flags, uint64_t handle,
	    uint64_t off, uint32_t len)
{
	uint8_t h[NBD_REQ_HDR_LEN];

	nbd_put32(h, NBD_REQUEST_MAGIC);
	nbd_put16(h + 4, flags);
	nbd_put16(h + 6, type);
	nbd_put64(h + 8, handle);
	nbd_put64(h + 16, off);
	nbd_put32(h + 24, len);
	tc_send(fd, h, sizeof(h));
}

uint32_t tc_reply(int fd, uint64_t *handle)
{
	uint8_t h[NBD_SIMPLE_REPLY_LEN];

	tc_recv(fd, h, sizeof(h));
	assert_int_equal(nbd_get32(h), NBD_SIMPLE_REPLY_MAGIC);
	if (handle != NULL) {
		*handle = nbd_get64(h + 8);
	}
	return nbd_get32(h + 4);
}

uint32_t tc_write(int fd, uint64_t off, uint32_t len, const void *buf,
		  uint16_t flags)
{
	uint64_t handle;
	uint32_t err;

	tc_req(fd, NBD_CMD_WRITE, flags, 1, off, len);
	tc_send(fd, buf, len);
	err = tc_reply(fd, &handle);
	assert_int_equal(handle, 1);
	return err;
}

uint32_t tc_read(int fd, uint64_t off, uint32_t len, void *buf)
{
	uint64_t handle;
	uint32_t err;

	tc_req(fd, NBD_CMD_READ, 0, 1, off, len);
	err = tc_reply(fd, &handle);
	assert_int_equal(handle, 1);
	if (err == 0) {
		tc_recv(fd, buf, len);
	}
	return err;
}

uint32_t tc_cmd(int fd, uint16_t type, uint16_t flags, uint64_t off,
		uint32_t len)
{
	uint64_t handle;
	uint32_t err;

	tc_req(fd, type, flags, 7, off, len);
	err = tc_reply(fd, &handle);
	assert_int_equal(handle, 7);
	return err;
}

void tc_fill(void *buf, size_t len, uint32_t seed)
{
	uint8_t *p = buf;
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (uint8_t)(x >> 24);
	}
}
