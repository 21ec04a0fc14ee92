/* busypoll.h: keep the proxy's event loop polling, instead of sleeping,
 * while a read to a nearby copy is in flight (adaptive busy polling).
 *
 * A read at a copy in the proxy's own region is answered in about 1 ms, so
 * the time the loop thread takes to wake up matters: an idle loop sleeps
 * in epoll_wait, and the RPC bridge thread (lib/rpc_bridge.h) that gets
 * the answer must wake it.  On the virtual machines we measured (two
 * vCPUs halted between events), that wake-up took 0.7 ms p50 and 1.2 ms
 * on average, as long as the read itself.  While polled reads are in
 * flight the loop runs with a zero poll timeout (a libuv idle handle), so
 * the answer is picked up at once; it stops when the last polled read
 * completes or when the budget since the last polled send has passed,
 * whichever comes first.  The price is one CPU busy for at most that
 * budget per read; docs/proxy.md "Busy polling" gives the measurements.
 * The same trade is made by Linux's NVMe hybrid polling and busy_poll
 * sockets (Documentation/networking/napi.rst), and by SPDK and Seastar,
 * which poll all the time.
 *
 * Use: for a read sent to a copy in the proxy's own region (not by its
 * measured latency, which the slow wake-ups themselves inflate),
 * busypoll_begin() once it is sent when busypoll_enabled(), and
 * busypoll_end() exactly once when its answer (or failure) is handled.
 * All on the loop thread.
 *
 * Failure: busypoll_create() fails (OMBRA_EIO with errmsg) only when libuv
 * cannot create the idle handle; nothing fails afterwards. */
#ifndef OMBRA_PROXY_BUSYPOLL_H
#define OMBRA_PROXY_BUSYPOLL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct busypoll;
struct metrics_registry;

/* budget_us: the longest the loop polls after a polled send (µs); 0 turns
 * busy polling off (every call below is then a no-op).  metrics (may be
 * NULL): registers ombra_proxy_read_poll_seconds_total, the wall time
 * spent polling.  *out is freed by busypoll_close(). */
int busypoll_create(uv_loop_t *loop, uint64_t budget_us,
		    struct metrics_registry *metrics, struct busypoll **out,
		    char *errmsg);

/* Is busy polling on (a budget above 0)? */
bool busypoll_enabled(const struct busypoll *bp);

/* A polled read was sent: poll until busypoll_end() has been called as
 * often as this, or the budget from now has passed. */
void busypoll_begin(struct busypoll *bp);
void busypoll_end(struct busypoll *bp);

/* Stop polling and close the handle; bp is freed once libuv released it.
 * NULL is a no-op. */
void busypoll_close(struct busypoll *bp);

#endif
