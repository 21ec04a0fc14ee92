/* test_nbd_cmd.c: protocol-layer unit test of the NBD server's
 * transmission phase, over real loopback sockets against the memory
 * backend (nbd_memio.c, not the proxy's engine): READ/WRITE/FLUSH/TRIM/
 * WRITE_ZEROES round trips, pipelining with out-of-order completion,
 * bounds, oversized requests, bad commands and garbage, engine errors,
 * clients that vanish mid-request, backpressure, several connections
 * and DISC. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "nbd_memio.h"
#include "nbd_testcli.h"

#define MiB (1024u * 1024u)

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void test_read_write(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t *buf = malloc(MiB);
	uint8_t *back = malloc(MiB);
	uint8_t small[777];
	char *text;
	int fd = tc_open(f->port, "vol1", NULL, NULL);

	assert_non_null(buf);
	assert_non_null(back);
	tc_fill(buf, MiB, 1);
	assert_int_equal(tc_write(fd, 4096, MiB, buf, 0), 0);
	assert_int_equal(tc_read(fd, 4096, MiB, back), 0);
	assert_memory_equal(buf, back, MiB);

	/* Unaligned, with FUA, then a flush. */
	tc_fill(small, sizeof(small), 2);
	assert_int_equal(
	    tc_write(fd, 12345, sizeof(small), small, NBD_CMD_FLAG_FUA), 0);
	assert_int_equal(tc_cmd(fd, NBD_CMD_FLUSH, 0, 0, 0), 0);
	assert_int_equal(tc_read(fd, 12345, sizeof(small), back), 0);
	assert_memory_equal(small, back, sizeof(small));
	assert_true(memio_peek(f->mem, "vol1", 12345, sizeof(small), back));
	assert_memory_equal(small, back, sizeof(small));

	/* The last byte of the export; zero-length requests. */
	assert_int_equal(tc_write(fd, TC_VOL1_SIZE - 1, 1, "z", 0), 0);
	assert_int_equal(tc_read(fd, TC_VOL1_SIZE - 1, 1, back), 0);
	assert_int_equal(back[0], 'z');
	assert_int_equal(tc_read(fd, TC_VOL1_SIZE, 0, back), 0);
	assert_int_equal(tc_write(fd, 0, 0, NULL, 0), 0);
	close(fd);

	text = metrics_render(f->reg);
	assert_non_null(text);
	assert_non_null(strstr(text, "nbd_requests_total{op=\"write\"} 4"));
	assert_non_null(strstr(text, "nbd_connections_total 1"));
	free(text);
	free(buf);
	free(back);
}

static void test_trim_and_zeroes(void **state)
{
	struct tc_fixture *f = *state;
	uint32_t len = 48 * MiB;
	uint8_t *buf = malloc(len);
	uint8_t *zeros = calloc(1, len);
	int fd = tc_open(f->port, "vol1", NULL, NULL);

	assert_non_null(buf);
	assert_non_null(zeros);
	tc_fill(buf, 8 * MiB, 3);
	assert_int_equal(tc_write(fd, 0, 8 * MiB, buf, 0), 0);

	assert_int_equal(tc_cmd(fd, NBD_CMD_TRIM, 0, 4096, 8192), 0);
	assert_int_equal(tc_read(fd, 0, 3 * 4096, buf), 0);
	assert_memory_equal(buf + 4096, zeros, 8192);

	assert_int_equal(tc_cmd(fd, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE,
				MiB + 3, 1000),
			 0);
	assert_int_equal(tc_read(fd, MiB + 3, 1000, buf), 0);
	assert_memory_equal(buf, zeros, 1000);

	/* Longer than one engine call (32 MiB): split by the server. */
	tc_fill(buf, len, 4);
	assert_int_equal(tc_write(fd, 8 * MiB, 32 * MiB, buf, 0), 0);
	assert_int_equal(tc_write(fd, 40 * MiB, 16 * MiB, buf, 0), 0);
	assert_int_equal(
	    tc_cmd(fd, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FUA, 2 * MiB, len),
	    0);
	assert_true(memio_peek(f->mem, "vol1", 2 * MiB, len, buf));
	assert_memory_equal(buf, zeros, len);
	close(fd);
	free(buf);
	free(zeros);
}

static void test_pipelined(void **state)
{
	struct tc_fixture *f = *state;
	enum { N = 64, LEN = 4096 };
	uint8_t *data = malloc((size_t)N * LEN);
	uint8_t back[LEN];
	bool seen[N];
	bool reordered = false;
	uint64_t handle;
	unsigned i;
	int fd = tc_open(f->port, "vol1", NULL, NULL);

	assert_non_null(data);
	memio_set_jitter(f->mem, 3);
	for (i = 0; i < N; i++) {
		tc_fill(data + (size_t)i * LEN, LEN, 100 + i);
		tc_req(fd, NBD_CMD_WRITE, 0, 1000 + i, (uint64_t)i * 3 * LEN,
		       LEN);
		tc_send(fd, data + (size_t)i * LEN, LEN);
	}
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < N; i++) {
		assert_int_equal(tc_reply(fd, &handle), 0);
		assert_true(handle >= 1000 && handle < 1000 + N);
		assert_false(seen[handle - 1000]);
		seen[handle - 1000] = true;
		reordered |= handle != 1000 + i;
	}
	for (i = 0; i < N; i++) {
		tc_req(fd, NBD_CMD_READ, 0, 5000 + i, (uint64_t)i * 3 * LEN,
		       LEN);
	}
	for (i = 0; i < N; i++) {
		assert_int_equal(tc_reply(fd, &handle), 0);
		assert_true(handle >= 5000 && handle < 5000 + N);
		tc_recv(fd, back, LEN);
		assert_memory_equal(back, data + (handle - 5000) * LEN, LEN);
		reordered |= handle != 5000 + i;
	}
	/* Completion order is random: replies came out of order. */
	assert_true(reordered);
	close(fd);
	free(data);
}

static void test_out_of_range(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t buf[8192];
	int fd = tc_open(f->port, "vol2", NULL, NULL);

	memset(buf, 0x11, sizeof(buf));
	assert_int_equal(tc_read(fd, TC_VOL2_SIZE - 4096, 8192, buf),
			 NBD_EINVAL);
	assert_int_equal(tc_read(fd, TC_VOL2_SIZE + 1, 0, buf), NBD_EINVAL);
	assert_int_equal(tc_read(fd, UINT64_MAX - 10, 4096, buf), NBD_EINVAL);
	/* The refused write's payload is consumed: the stream stays in
	 * step. */
	assert_int_equal(tc_write(fd, TC_VOL2_SIZE - 4096, 8192, buf, 0),
			 NBD_ENOSPC);
	assert_int_equal(tc_cmd(fd, NBD_CMD_WRITE_ZEROES, 0, TC_VOL2_SIZE, 1),
			 NBD_ENOSPC);
	assert_int_equal(tc_cmd(fd, NBD_CMD_TRIM, 0, TC_VOL2_SIZE - 1, 2),
			 NBD_EINVAL);
	assert_int_equal(tc_read(fd, TC_VOL2_SIZE - 4096, 4096, buf), 0);
	close(fd);
}

static void test_oversized(void **state)
{
	struct tc_fixture *f = *state;
	uint32_t len = 33 * MiB;
	uint8_t *buf = calloc(1, len);
	int fd = tc_open(f->port, "vol1", NULL, NULL);

	assert_non_null(buf);
	assert_int_equal(tc_cmd(fd, NBD_CMD_READ, 0, 0, len), NBD_EINVAL);
	/* Up to 64 MiB: payload read and discarded, EINVAL. */
	assert_int_equal(tc_write(fd, 0, len, buf, 0), NBD_EINVAL);
	assert_int_equal(tc_read(fd, 0, 4096, buf), 0);
	/* Beyond: the connection is closed. */
	tc_req(fd, NBD_CMD_WRITE, 0, 9, 0, 65 * MiB);
	assert_true(tc_closed(fd));
	close(fd);
	free(buf);
}

static void test_bad_commands(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t junk[NBD_REQ_HDR_LEN];
	uint8_t buf[4096];
	int fd = tc_open(f->port, "vol1", NULL, NULL);

	assert_int_equal(tc_cmd(fd, 99, 0, 0, 4096), NBD_EINVAL);
	assert_int_equal(tc_cmd(fd, NBD_CMD_CACHE, 0, 0, 4096), NBD_EINVAL);
	assert_int_equal(tc_cmd(fd, NBD_CMD_BLOCK_STATUS, 0, 0, 4096),
			 NBD_EINVAL);
	assert_int_equal(tc_cmd(fd, NBD_CMD_READ, NBD_CMD_FLAG_NO_HOLE, 0, 1),
			 NBD_EINVAL);
	assert_int_equal(tc_cmd(fd, NBD_CMD_READ, NBD_CMD_FLAG_DF, 0, 1),
			 NBD_EINVAL);
	assert_int_equal(
	    tc_cmd(fd, NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FAST_ZERO, 0, 1),
	    NBD_EINVAL);
	assert_int_equal(tc_read(fd, 0, sizeof(buf), buf), 0);

	/* Garbage after the handshake: closed. */
	memset(junk, 0xa5, sizeof(junk));
	tc_send(fd, junk, sizeof(junk));
	assert_true(tc_closed(fd));
	close(fd);

	fd = tc_open(f->port, "vol1", NULL, NULL);
	assert_int_equal(tc_read(fd, 0, sizeof(buf), buf), 0);
	close(fd);
}

static void test_engine_errors(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t buf[4096];
	int fd = tc_open(f->port, "broken", NULL, NULL);

	memset(buf, 1, sizeof(buf));
	assert_int_equal(tc_read(fd, 0, sizeof(buf), buf), NBD_EIO);
	assert_int_equal(tc_write(fd, 0, sizeof(buf), buf, 0), NBD_EIO);
	assert_int_equal(tc_cmd(fd, NBD_CMD_FLUSH, 0, 0, 0), NBD_EIO);
	assert_int_equal(tc_cmd(fd, NBD_CMD_TRIM, 0, 0, 4096), NBD_EIO);
	close(fd);
}

static void test_disconnect_mid_request(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t *buf = calloc(1, MiB);
	unsigned i;
	int fd;

	assert_non_null(buf);
	memio_hold(f->mem, true);

	/* Half a payload, then gone. */
	fd = tc_open(f->port, "vol1", NULL, NULL);
	tc_req(fd, NBD_CMD_WRITE, 0, 1, 0, MiB);
	tc_send(fd, buf, MiB / 2);
	close(fd);

	/* Requests held in the engine, then gone without the replies. */
	fd = tc_open(f->port, "vol1", NULL, NULL);
	for (i = 0; i < 4; i++) {
		tc_req(fd, NBD_CMD_WRITE, 0, i, (uint64_t)i * MiB, MiB);
		tc_send(fd, buf, MiB);
		tc_req(fd, NBD_CMD_READ, 0, 10 + i, 0, MiB);
	}
	for (i = 0; i < 100 && memio_started(f->mem) < 8; i++) {
		sleep_ms(10);
	}
	assert_int_equal(memio_started(f->mem), 8);
	close(fd);
	sleep_ms(50);
	memio_hold(f->mem, false);
	for (i = 0; i < 100 && memio_completed(f->mem) < 8; i++) {
		sleep_ms(10);
	}
	assert_int_equal(memio_completed(f->mem), 8);

	/* Still serving; teardown checks every volume was released. */
	fd = tc_open(f->port, "vol1", NULL, NULL);
	assert_int_equal(tc_read(fd, 0, 4096, buf), 0);
	close(fd);
	free(buf);
}

struct sender {
	int fd;
	unsigned n;
	uint32_t len;
	int ok;
};

/* Pipelined writes from a second thread (plain send: no cmocka here). */
static void *send_writes(void *arg)
{
	struct sender *s = arg;
	uint8_t *buf = calloc(1, s->len);
	uint8_t h[NBD_REQ_HDR_LEN];
	unsigned i;

	s->ok = buf != NULL;
	for (i = 0; s->ok && i < s->n; i++) {
		size_t off = 0;

		nbd_put32(h, NBD_REQUEST_MAGIC);
		nbd_put16(h + 4, 0);
		nbd_put16(h + 6, NBD_CMD_WRITE);
		nbd_put64(h + 8, i);
		nbd_put64(h + 16, (uint64_t)(i % 8) * s->len);
		nbd_put32(h + 24, s->len);
		s->ok = send(s->fd, h, sizeof(h), MSG_NOSIGNAL) ==
			(ssize_t)sizeof(h);
		while (s->ok && off < s->len) {
			ssize_t n =
			    send(s->fd, buf + off, s->len - off, MSG_NOSIGNAL);

			if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
				continue;
			}
			s->ok = n > 0;
			off += n > 0 ? (size_t)n : 0;
		}
	}
	free(buf);
	return NULL;
}

static void test_backpressure(void **state)
{
	struct tc_fixture *f = *state;
	struct sender s = {.n = 40, .len = 4 * MiB};
	unsigned before;
	unsigned i;
	pthread_t t;
	struct timeval tv = {.tv_sec = 60};

	s.fd = tc_open(f->port, "vol1", NULL, NULL);
	/* The sender blocks on a full socket while the server waits. */
	setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memio_hold(f->mem, true);
	assert_int_equal(pthread_create(&t, NULL, send_writes, &s), 0);
	do {
		before = memio_started(f->mem);
		sleep_ms(300);
	} while (memio_started(f->mem) != before);
	/* 64 MiB in flight: 16 writes of 4 MiB, then reading stops. */
	assert_true(before >= 8);
	assert_true(before <= 16);
	memio_hold(f->mem, false);
	for (i = 0; i < s.n; i++) {
		assert_int_equal(tc_reply(s.fd, NULL), 0);
	}
	pthread_join(t, NULL);
	assert_true(s.ok);
	close(s.fd);
}

static void test_multi_conn(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t buf[4096];
	uint8_t back[4096];
	int a = tc_open(f->port, "vol1", NULL, NULL);
	int b = tc_open(f->port, "vol1", NULL, NULL);

	tc_fill(buf, sizeof(buf), 77);
	assert_int_equal(tc_write(a, 8192, sizeof(buf), buf, 0), 0);
	assert_int_equal(tc_cmd(a, NBD_CMD_FLUSH, 0, 0, 0), 0);
	assert_int_equal(tc_read(b, 8192, sizeof(back), back), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	close(a);
	close(b);
}

static void test_disc(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t buf[8][4096];
	uint8_t back[4096];
	unsigned i;
	char *text;
	int fd = tc_open(f->port, "vol1", NULL, NULL);

	memio_set_jitter(f->mem, 5);
	for (i = 0; i < 8; i++) {
		tc_fill(buf[i], sizeof(buf[i]), 200 + i);
		tc_req(fd, NBD_CMD_WRITE, 0, i, (uint64_t)i * 4096, 4096);
		tc_send(fd, buf[i], 4096);
	}
	tc_req(fd, NBD_CMD_DISC, 0, 99, 0, 0);
	/* Outstanding requests are handled, then the server closes. */
	assert_true(tc_closed(fd));
	close(fd);
	memio_set_jitter(f->mem, 0);
	text = metrics_render(f->reg);
	assert_non_null(text);
	assert_non_null(strstr(text, "nbd_requests_total{op=\"disc\"} 1"));
	assert_non_null(strstr(text, "nbd_requests_total{op=\"write\"} 8"));
	free(text);
	fd = tc_open(f->port, "vol1", NULL, NULL);
	for (i = 0; i < 8; i++) {
		assert_int_equal(tc_read(fd, (uint64_t)i * 4096, 4096, back),
				 0);
		assert_memory_equal(back, buf[i], 4096);
	}
	close(fd);
}

/* nbd_server_stop() with requests held in the engine and clients still
 * connected: connections are closed, late results dropped, every volume
 * released (checked by tc_teardown(), called here). */
static void test_stop_in_flight(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t buf[4096];
	unsigned i;
	int a = tc_open(f->port, "vol1", NULL, NULL);
	int b = tc_open(f->port, "vol2", NULL, NULL);

	memset(buf, 3, sizeof(buf));
	memio_hold(f->mem, true);
	for (i = 0; i < 8; i++) {
		tc_req(a, NBD_CMD_WRITE, 0, i, (uint64_t)i * 4096, 4096);
		tc_send(a, buf, sizeof(buf));
		tc_req(a, NBD_CMD_READ, 0, 100 + i, 0, 4096);
	}
	for (i = 0; i < 100 && memio_started(f->mem) < 16; i++) {
		sleep_ms(10);
	}
	assert_int_equal(memio_started(f->mem), 16);
	assert_int_equal(tc_teardown(state), 0);
	assert_true(tc_closed(a));
	assert_true(tc_closed(b));
	close(a);
	close(b);
}

#define T(name) cmocka_unit_test_setup_teardown(name, tc_setup, tc_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_read_write),
	    T(test_trim_and_zeroes),
	    T(test_pipelined),
	    T(test_out_of_range),
	    T(test_oversized),
	    T(test_bad_commands),
	    T(test_engine_errors),
	    T(test_disconnect_mid_request),
	    T(test_backpressure),
	    T(test_multi_conn),
	    T(test_disc),
	    cmocka_unit_test_setup(test_stop_in_flight, tc_setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
