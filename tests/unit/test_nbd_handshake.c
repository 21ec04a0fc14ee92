/* test_nbd_handshake.c: protocol-layer unit test of the NBD server's
 * handshake and option haggling, over real loopback sockets against the
 * memory backend (nbd_memio.c, not the proxy's engine): greeting, client
 * flags, NBD_OPT_LIST/INFO/GO/ABORT/EXPORT_NAME, unknown and default
 * exports, unsupported, malformed and oversized options, garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "nbd_testcli.h"
#include "proxy/nbd_internal.h"

#define TFLAGS                                                                 \
	(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |        \
	 NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |                     \
	 NBD_FLAG_CAN_MULTI_CONN)

static int fixed_hello(int port)
{
	int fd = tc_connect(port);

	tc_hello(fd, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
	return fd;
}

/* A connection still works after whatever a test did to another one. */
static void assert_serving(int port)
{
	uint8_t buf[512];
	int fd = tc_open(port, "vol1", NULL, NULL);

	assert_int_equal(tc_read(fd, 0, sizeof(buf), buf), 0);
	close(fd);
}

static void test_go(void **state)
{
	struct tc_fixture *f = *state;
	uint64_t size;
	uint16_t flags;
	int fd = tc_open(f->port, "vol2", &size, &flags);

	assert_int_equal(size, TC_VOL2_SIZE);
	assert_int_equal(flags, TFLAGS);
	assert_int_equal(tc_cmd(fd, NBD_CMD_FLUSH, 0, 0, 0), 0);
	close(fd);
}

static void test_bad_client_flags(void **state)
{
	struct tc_fixture *f = *state;
	int fd = tc_connect(f->port);

	tc_hello(fd, NBD_FLAG_C_FIXED_NEWSTYLE | 0x80);
	assert_true(tc_closed(fd));
	close(fd);
	assert_serving(f->port);
}

static void test_garbage_before_handshake(void **state)
{
	struct tc_fixture *f = *state;
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	uint8_t g[NBD_GREETING_LEN];
	int fd;

	/* An HTTP client: its first bytes are unknown client flags. */
	fd = tc_connect(f->port);
	tc_recv(fd, g, sizeof(g));
	tc_send(fd, http, sizeof(http) - 1);
	assert_true(tc_closed(fd));
	close(fd);

	/* Valid flags, then an option with a bad magic. */
	fd = fixed_hello(f->port);
	tc_send(fd, http, sizeof(http) - 1);
	assert_true(tc_closed(fd));
	close(fd);

	/* Closed in the middle of the greeting exchange. */
	fd = tc_connect(f->port);
	tc_send(fd, "\0\0", 2);
	close(fd);
	assert_serving(f->port);
}

static void test_list(void **state)
{
	struct tc_fixture *f = *state;
	const char *want[] = {"vol1", "vol2", "broken"};
	struct tc_rep r;
	unsigned i;
	int fd = fixed_hello(f->port);

	tc_opt(fd, NBD_OPT_LIST, NULL, 0);
	for (i = 0; i < 3; i++) {
		tc_rep(fd, &r);
		assert_int_equal(r.opt, NBD_OPT_LIST);
		assert_int_equal(r.type, NBD_REP_SERVER);
		assert_int_equal(nbd_get32(r.data), strlen(want[i]));
		assert_int_equal(r.len, 4 + strlen(want[i]));
		assert_memory_equal(r.data + 4, want[i], strlen(want[i]));
	}
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ACK);

	/* LIST takes no data. */
	tc_opt(fd, NBD_OPT_LIST, "x", 1);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_INVALID);
	assert_non_null(strstr((char *)r.data, "no data"));
	close(fd);
}

static void test_info_then_go(void **state)
{
	struct tc_fixture *f = *state;
	const uint16_t reqs[] = {NBD_INFO_BLOCK_SIZE, NBD_INFO_NAME, 999};
	uint8_t d[256];
	uint8_t buf[4096];
	struct tc_rep r;
	size_t n;
	bool seen_export = false, seen_name = false, seen_bs = false;
	int fd = fixed_hello(f->port);

	n = tc_info_data(d, "vol1", reqs, 3);
	tc_opt(fd, NBD_OPT_INFO, d, (uint32_t)n);
	for (;;) {
		tc_rep(fd, &r);
		assert_int_equal(r.opt, NBD_OPT_INFO);
		if (r.type == NBD_REP_ACK) {
			break;
		}
		assert_int_equal(r.type, NBD_REP_INFO);
		switch (nbd_get16(r.data)) {
		case NBD_INFO_EXPORT:
			assert_int_equal(r.len, 12);
			assert_int_equal(nbd_get64(r.data + 2), TC_VOL1_SIZE);
			assert_int_equal(nbd_get16(r.data + 10), TFLAGS);
			seen_export = true;
			break;
		case NBD_INFO_NAME:
			assert_int_equal(r.len, 2 + 4);
			assert_memory_equal(r.data + 2, "vol1", 4);
			seen_name = true;
			break;
		case NBD_INFO_BLOCK_SIZE:
			assert_int_equal(r.len, 14);
			assert_int_equal(nbd_get32(r.data + 2), 1);
			assert_int_equal(nbd_get32(r.data + 6), 4096);
			assert_int_equal(nbd_get32(r.data + 10), 32u << 20);
			seen_bs = true;
			break;
		default:
			fail_msg("unexpected info %u", nbd_get16(r.data));
		}
	}
	assert_true(seen_export && seen_name && seen_bs);

	/* Still haggling: GO on the same connection, then I/O. */
	n = tc_info_data(d, "vol1", NULL, 0);
	tc_opt(fd, NBD_OPT_GO, d, (uint32_t)n);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_INFO);
	assert_int_equal(nbd_get16(r.data), NBD_INFO_EXPORT);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ACK);
	assert_int_equal(tc_read(fd, 0, sizeof(buf), buf), 0);
	close(fd);
}

static void test_unknown_and_default_export(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t d[256];
	struct tc_rep r;
	size_t n;
	int fd = fixed_hello(f->port);

	n = tc_info_data(d, "nope", NULL, 0);
	tc_opt(fd, NBD_OPT_GO, d, (uint32_t)n);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_UNKNOWN);
	assert_non_null(strstr((char *)r.data, "nope"));
	assert_non_null(strstr((char *)r.data, "does not exist"));

	n = tc_info_data(d, "", NULL, 0);
	tc_opt(fd, NBD_OPT_INFO, d, (uint32_t)n);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_UNKNOWN);
	assert_non_null(strstr((char *)r.data, "no default export"));
	assert_non_null(strstr((char *)r.data, "export name"));

	/* The connection is still in option haggling. */
	n = tc_info_data(d, "vol2", NULL, 0);
	tc_opt(fd, NBD_OPT_GO, d, (uint32_t)n);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_INFO);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ACK);
	close(fd);
}

/* "VOLUME@LEVEL" opens VOLUME (reads at LEVEL); a suffix that is not a
 * level is refused NBD_REP_ERR_INVALID with a message, and the connection
 * stays in option haggling. */
static void test_export_consistency_suffix(void **state)
{
	static const char *const bad[] = {"vol1@weak", "vol1@bounded:0",
					  "vol1@bounded:x", "vol1@", "@strong"};
	struct tc_fixture *f = *state;
	uint8_t d[256], buf[512];
	struct tc_rep r;
	size_t n;
	int fd = fixed_hello(f->port);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = tc_info_data(d, bad[i], NULL, 0);
		tc_opt(fd, NBD_OPT_GO, d, (uint32_t)n);
		tc_rep(fd, &r);
		assert_int_equal(r.type, NBD_REP_ERR_INVALID);
		assert_non_null(strstr((char *)r.data, bad[i]));
		assert_non_null(strstr((char *)r.data, "VOLUME@LEVEL"));
	}
	close(fd);
	fd = tc_open(f->port, "vol1@eventual", NULL, NULL);
	assert_int_equal(tc_read(fd, 0, sizeof(buf), buf), 0);
	close(fd);
	fd = tc_open(f->port, "vol2@bounded:500", NULL, NULL);
	assert_int_equal(tc_read(fd, 0, sizeof(buf), buf), 0);
	close(fd);
}

static void test_malformed_options(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t d[64];
	uint8_t *big;
	struct tc_rep r;
	size_t n;
	int fd = fixed_hello(f->port);

	/* Name length beyond the option's data. */
	n = tc_info_data(d, "vol1", NULL, 0);
	nbd_put32(d, 200);
	tc_opt(fd, NBD_OPT_GO, d, (uint32_t)n);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_INVALID);

	/* Information request count that does not match. */
	n = tc_info_data(d, "vol1", NULL, 0);
	nbd_put16(d + 8, 3);
	tc_opt(fd, NBD_OPT_GO, d, (uint32_t)n);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_INVALID);

	/* Too short. */
	tc_opt(fd, NBD_OPT_INFO, "ab", 2);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_INVALID);

	/* A NUL inside the name. */
	n = tc_info_data(d, "vo\001", NULL, 0);
	d[6] = '\0';
	tc_opt(fd, NBD_OPT_GO, d, (uint32_t)n);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_INVALID);

	/* Oversized but bounded: skipped and refused. */
	big = calloc(1, 20000);
	assert_non_null(big);
	tc_opt(fd, NBD_OPT_GO, big, 20000);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_TOO_BIG);
	free(big);

	/* Unsupported options. */
	tc_opt(fd, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
	tc_rep(fd, &r);
	assert_int_equal(r.opt, NBD_OPT_STRUCTURED_REPLY);
	assert_int_equal(r.type, NBD_REP_ERR_UNSUP);
	tc_opt(fd, NBD_OPT_STARTTLS, NULL, 0);
	tc_rep(fd, &r);
	assert_int_equal(r.type, NBD_REP_ERR_UNSUP);
	tc_opt(fd, 4242, "zz", 2);
	tc_rep(fd, &r);
	assert_int_equal(r.opt, 4242);
	assert_int_equal(r.type, NBD_REP_ERR_UNSUP);
	assert_non_null(strstr((char *)r.data, "4242"));

	/* Absurd length: closed. */
	{
		uint8_t h[NBD_OPT_HDR_LEN];

		nbd_put64(h, NBD_OPTS_MAGIC);
		nbd_put32(h + 8, NBD_OPT_GO);
		nbd_put32(h + 12, 0xfffffff0u);
		tc_send(fd, h, sizeof(h));
	}
	assert_true(tc_closed(fd));
	close(fd);
	assert_serving(f->port);
}

static void test_abort(void **state)
{
	struct tc_fixture *f = *state;
	struct tc_rep r;
	int fd = fixed_hello(f->port);

	tc_opt(fd, NBD_OPT_ABORT, NULL, 0);
	tc_rep(fd, &r);
	assert_int_equal(r.opt, NBD_OPT_ABORT);
	assert_int_equal(r.type, NBD_REP_ACK);
	assert_true(tc_closed(fd));
	close(fd);
}

static void export_name(int port, bool no_zeroes)
{
	uint8_t r[10 + 124];
	uint8_t zeros[124];
	uint8_t buf[100];
	uint8_t back[100];
	int fd = tc_connect(port);

	tc_hello(fd, NBD_FLAG_C_FIXED_NEWSTYLE |
			 (no_zeroes ? NBD_FLAG_C_NO_ZEROES : 0));
	tc_opt(fd, NBD_OPT_EXPORT_NAME, "vol2", 4);
	tc_recv(fd, r, no_zeroes ? 10 : sizeof(r));
	assert_int_equal(nbd_get64(r), TC_VOL2_SIZE);
	assert_int_equal(nbd_get16(r + 8), TFLAGS);
	memset(zeros, 0, sizeof(zeros));
	if (!no_zeroes) {
		assert_memory_equal(r + 10, zeros, sizeof(zeros));
	}
	tc_fill(buf, sizeof(buf), no_zeroes);
	assert_int_equal(tc_write(fd, 1000, sizeof(buf), buf, 0), 0);
	assert_int_equal(tc_read(fd, 1000, sizeof(back), back), 0);
	assert_memory_equal(buf, back, sizeof(buf));
	close(fd);
}

static void test_export_name(void **state)
{
	struct tc_fixture *f = *state;
	int fd;

	export_name(f->port, false);
	export_name(f->port, true);

	/* Unknown or default export: no error reply exists, so closed. */
	fd = fixed_hello(f->port);
	tc_opt(fd, NBD_OPT_EXPORT_NAME, "nope", 4);
	assert_true(tc_closed(fd));
	close(fd);
	fd = fixed_hello(f->port);
	tc_opt(fd, NBD_OPT_EXPORT_NAME, NULL, 0);
	assert_true(tc_closed(fd));
	close(fd);
	assert_serving(f->port);
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

/* A client that never chooses an export is closed after the handshake
 * timeout; one that did is not. */
static void test_handshake_timeout(void **state)
{
	struct tc_fixture *f = *state;
	uint8_t g[NBD_GREETING_LEN];
	uint8_t buf[512];
	int idle;
	int slow;
	int fd;

	f->srv->handshake_timeout_ms = 300;
	idle = tc_connect(f->port);
	tc_recv(idle, g, sizeof(g));
	slow = fixed_hello(f->port);
	fd = tc_open(f->port, "vol1", NULL, NULL);
	sleep_ms(600);
	assert_true(tc_closed(idle));
	assert_true(tc_closed(slow));
	assert_int_equal(tc_read(fd, 0, sizeof(buf), buf), 0);
	close(idle);
	close(slow);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_go, tc_setup, tc_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_client_flags, tc_setup,
					    tc_teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_before_handshake,
					    tc_setup, tc_teardown),
	    cmocka_unit_test_setup_teardown(test_list, tc_setup, tc_teardown),
	    cmocka_unit_test_setup_teardown(test_info_then_go, tc_setup,
					    tc_teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_and_default_export,
					    tc_setup, tc_teardown),
	    cmocka_unit_test_setup_teardown(test_export_consistency_suffix,
					    tc_setup, tc_teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_options, tc_setup,
					    tc_teardown),
	    cmocka_unit_test_setup_teardown(test_abort, tc_setup, tc_teardown),
	    cmocka_unit_test_setup_teardown(test_export_name, tc_setup,
					    tc_teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_timeout, tc_setup,
					    tc_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
