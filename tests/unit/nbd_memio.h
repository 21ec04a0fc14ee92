/* nbd_memio.h: a memory-backed implementation of proxy/proxy_io.h for the
 * NBD server's protocol-layer tests (tests/unit/test_nbd_*.c and the
 * nbd_memserver program).  It is not the proxy's engine: volumes are
 * plain buffers, every call completes from a libuv timer on the loop
 * (never inside the call), after a random delay so that pipelined
 * requests complete out of order.
 *
 * Threads: everything runs on the loop's thread except memio_hold() and
 * the counters, which are atomic and may be used from any thread. */
#ifndef OMBRA_TESTS_NBD_MEMIO_H
#define OMBRA_TESTS_NBD_MEMIO_H

#include <grpc/status.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct proxy;

/* NULL on out of memory.  Free with memio_destroy() after the loop has
 * run to its end (no call pending). */
struct proxy *memio_create(uv_loop_t *loop);
void memio_destroy(struct proxy *p);

/* A zero-filled volume of size bytes.  fail: GRPC_STATUS_OK, or the code
 * every read/write/zero/flush on it fails with (message "injected
 * failure").  0, or -1 on out of memory or a duplicate name. */
int memio_add_volume(struct proxy *p, const char *name, uint64_t size,
		     grpc_status_code fail);

/* I/O calls complete after a random delay of 0..max_ms milliseconds
 * (uniform; 0, the default, completes on the next loop iteration). */
void memio_set_jitter(struct proxy *p, unsigned max_ms);

/* While on, I/O calls (not open/list) are held and complete only after
 * it is turned off again. */
void memio_hold(struct proxy *p, bool on);

/* Counters: I/O calls started and completed, volume references taken by
 * proxy_volume_open() and not released. */
unsigned memio_started(const struct proxy *p);
unsigned memio_completed(const struct proxy *p);
int memio_open_refs(const struct proxy *p);

/* Copy of a volume's bytes [off, off+len) for assertions (loop thread, or
 * after the loop stopped). */
bool memio_peek(struct proxy *p, const char *name, uint64_t off, uint64_t len,
		void *out);

#endif
