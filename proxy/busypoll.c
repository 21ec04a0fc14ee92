/* busypoll.c: adaptive busy polling of the proxy's loop; see busypoll.h.
 *
 * Failure: none after busypoll_create(); a missed busypoll_end() only
 * costs polling until the budget runs out. */
#include <sched.h>
#include <stdlib.h>

#include "busypoll.h"
#include "err.h"
#include "metrics.h"

struct busypoll {
	uv_idle_t idle;
	uint64_t budget_ns;
	uint64_t until_ns;   /* poll no longer than this (uv_hrtime) */
	uint64_t started_ns; /* when the current polling began */
	unsigned in_flight;  /* polled reads not yet ended */
	bool polling;
	struct metric *seconds;
};

static void poll_stop(struct busypoll *bp, uint64_t now)
{
	if (!bp->polling)
		return;
	bp->polling = false;
	uv_idle_stop(&bp->idle);
	metric_inc(bp->seconds, (double)(now - bp->started_ns) / 1e9);
}

/* Runs once per loop turn while polling; an active idle handle is what
 * makes libuv poll with a zero timeout.  Each turn yields the CPU, so a
 * thread that is ready to run on it (a storage node's, the client's) goes
 * first: on a busy machine polling costs little, on an idle one it keeps
 * this CPU awake. */
static void on_idle(uv_idle_t *h)
{
	struct busypoll *bp = h->data;
	uint64_t now = uv_hrtime();

	if (bp->in_flight == 0 || now >= bp->until_ns)
		poll_stop(bp, now);
	else
		sched_yield();
}

int busypoll_create(uv_loop_t *loop, uint64_t budget_us,
		    struct metrics_registry *metrics, struct busypoll **out,
		    char *errmsg)
{
	struct busypoll *bp = calloc(1, sizeof(*bp));
	int rv;

	if (bp == NULL) {
		ombra_errmsg_printf(errmsg, "busypoll: out of memory");
		return OMBRA_ENOMEM;
	}
	rv = uv_idle_init(loop, &bp->idle);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "busypoll: uv_idle_init: %s",
				    uv_strerror(rv));
		free(bp);
		return OMBRA_EIO;
	}
	bp->idle.data = bp;
	bp->budget_ns = budget_us * 1000;
	if (metrics != NULL)
		bp->seconds = metrics_counter(
		    metrics, "ombra_proxy_read_poll_seconds_total",
		    "Wall time the event loop spent busy polling for reads "
		    "at nearby copies (--read-poll-us)",
		    NULL);
	*out = bp;
	return 0;
}

bool busypoll_enabled(const struct busypoll *bp)
{
	return bp != NULL && bp->budget_ns > 0;
}

void busypoll_begin(struct busypoll *bp)
{
	uint64_t now = uv_hrtime();

	bp->in_flight++;
	bp->until_ns = now + bp->budget_ns;
	if (!bp->polling) {
		bp->polling = true;
		bp->started_ns = now;
		uv_idle_start(&bp->idle, on_idle);
	}
}

void busypoll_end(struct busypoll *bp)
{
	if (bp->in_flight > 0)
		bp->in_flight--;
}

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

void busypoll_close(struct busypoll *bp)
{
	if (bp == NULL)
		return;
	poll_stop(bp, uv_hrtime());
	uv_close((uv_handle_t *)&bp->idle, on_closed);
}
