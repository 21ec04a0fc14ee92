/* nbd_testcli.h: for the NBD protocol-layer tests: a fixture that runs the
 * NBD server on its own loop thread over the memory backend
 * (nbd_memio.h), and a raw-bytes NBD client on blocking sockets whose
 * helpers fail the cmocka test on any unexpected byte.
 *
 * Every socket has a 10 s receive timeout, so a server that does not
 * answer fails the test instead of hanging it. */
#ifndef OMBRA_TESTS_NBD_TESTCLI_H
#define OMBRA_TESTS_NBD_TESTCLI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/nbd_proto.h"

/* Volumes of every fixture: "vol1" (TC_VOL1_SIZE), "vol2" (TC_VOL2_SIZE)
 * and "broken" (every I/O fails UNAVAILABLE). */
#define TC_VOL1_SIZE (64ull * 1024 * 1024)
#define TC_VOL2_SIZE (1024ull * 1024)

struct tc_fixture {
	uv_loop_t loop;
	uv_async_t stop;
	pthread_t thread;
	struct proxy *mem;
	struct metrics_registry *reg;
	struct nbd_server *srv;
	int port;
};

/* cmocka setup/teardown: *state is a struct tc_fixture.  Teardown checks
 * that the server released every volume reference and the loop closed
 * cleanly. */
int tc_setup(void **state);
int tc_teardown(void **state);

int tc_connect(int port);
void tc_send(int fd, const void *buf, size_t len);
void tc_recv(int fd, void *buf, size_t len);
/* True when the server closed the connection (EOF or reset) within the
 * receive timeout, discarding whatever came before. */
bool tc_closed(int fd);

/* Read the greeting (asserting magics and flags), send cflags. */
void tc_hello(int fd, uint32_t cflags);
void tc_opt(int fd, uint32_t opt, const void *data, uint32_t len);

struct tc_rep {
	uint32_t opt;
	uint32_t type;
	uint32_t len;
	uint8_t data[8192]; /* len bytes (truncated beyond) */
};
void tc_rep(int fd, struct tc_rep *r);

/* NBD_OPT_INFO/GO data for name with the given information requests. */
size_t tc_info_data(uint8_t *out, const char *name, const uint16_t *reqs,
		    unsigned nreq);

/* Connect, handshake with FIXED_NEWSTYLE|NO_ZEROES, NBD_OPT_GO name
 * (asserting success); size and flags from NBD_INFO_EXPORT (may be NULL). */
int tc_open(int port, const char *name, uint64_t *size, uint16_t *flags);

void tc_req(int fd, uint16_t type, uint16_t flags, uint64_t handle,
	    uint64_t off, uint32_t len);
/* Read a simple reply header; returns its error. */
uint32_t tc_reply(int fd, uint64_t *handle);

/* One request and its reply (handle 1): the NBD error. */
uint32_t tc_write(int fd, uint64_t off, uint32_t len, const void *buf,
		  uint16_t flags);
uint32_t tc_read(int fd, uint64_t off, uint32_t len, void *buf);
uint32_t tc_cmd(int fd, uint16_t type, uint16_t flags, uint64_t off,
		uint32_t len);

/* Deterministic test pattern: byte i of a buffer seeded with seed. */
void tc_fill(void *buf, size_t len, uint32_t seed);

#endif
