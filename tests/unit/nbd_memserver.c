/* nbd_memserver.c: the proxy's NBD server over the tests' memory backend
 * (nbd_memio.c), as a program, so that real NBD clients (qemu-io,
 * nbdinfo, nbdcopy, fio) can be run against the protocol layer alone.
 * A test tool, not a product: data lives in memory and is lost at exit.
 *
 * Usage: nbd_memserver [--size BYTES] [--listen HOST:PORT] NAME...
 * Prints the bound port on stdout (one line), serves until SIGTERM or
 * SIGINT, then stops cleanly.  Exits 1 with a message on bad arguments
 * or when the port cannot be bound. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "err.h"
#include "log.h"
#include "nbd_memio.h"
#include "proxy/nbd.h"

struct memserver {
	struct nbd_server *srv;
	uv_signal_t sigterm;
	uv_signal_t sigint;
};

static void on_signal(uv_signal_t *h, int signum)
{
	struct memserver *m = h->data;

	(void)signum;
	nbd_server_stop(m->srv);
	m->srv = NULL;
	uv_close((uv_handle_t *)&m->sigterm, NULL);
	uv_close((uv_handle_t *)&m->sigint, NULL);
}

static int usage(void)
{
	fprintf(stderr, "usage: nbd_memserver [--size BYTES] "
			"[--listen HOST:PORT] NAME...\n");
	return 1;
}

int main(int argc, char **argv)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	const char *addr = "127.0.0.1:0";
	uint64_t size = 64ull << 20;
	struct memserver m;
	struct proxy *p;
	uv_loop_t loop;
	int i = 1;
	int n = 0;

	log_init("nbd-memserver", LOG_INFO);
	uv_loop_init(&loop);
	p = memio_create(&loop);
	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
			size = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
			addr = argv[++i];
		} else if (argv[i][0] == '-') {
			return usage();
		} else if (memio_add_volume(p, argv[i], size, GRPC_STATUS_OK) !=
			   0) {
			fprintf(stderr, "cannot add volume %s\n", argv[i]);
			return 1;
		} else {
			n++;
		}
	}
	if (n == 0) {
		return usage();
	}
	if (nbd_server_start(&loop, p, addr, NULL, &m.srv, errmsg) != 0) {
		fprintf(stderr, "nbd_memserver: %s\n", errmsg);
		return 1;
	}
	uv_signal_init(&loop, &m.sigterm);
	uv_signal_init(&loop, &m.sigint);
	m.sigterm.data = &m;
	m.sigint.data = &m;
	uv_signal_start(&m.sigterm, on_signal, SIGTERM);
	uv_signal_start(&m.sigint, on_signal, SIGINT);
	printf("%d\n", nbd_server_port(m.srv));
	fflush(stdout);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0) {
		fprintf(stderr, "nbd_memserver: handles left open\n");
		return 1;
	}
	memio_destroy(p);
	return 0;
}
