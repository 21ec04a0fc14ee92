/* defer.c: run a function on the loop after the current callback returns.
 *
 * proxy_io.h promises that a callback never runs from inside the call that
 * started it; answers known at once (cache hits, bad arguments) go through
 * here.  One uv_async_t per loop and a FIFO list; uv_async_send coalesces,
 * so the handler drains everything queued so far.
 *
 * Failure: out of memory while queueing aborts (a lost completion would
 * hang a client forever); nothing else can fail after defer_create(). */
#include <stdio.h>
#include <stdlib.h>

#include "proxy.h"

struct defer_item {
	defer_fn fn;
	void *arg;
	struct defer_item *next;
};

struct defer {
	uv_async_t async;
	struct defer_item *head, *tail;
};

static void defer_run(uv_async_t *h)
{
	struct defer *d = h->data;
	struct defer_item *it = d->head;

	d->head = d->tail = NULL;
	while (it != NULL) {
		struct defer_item *next = it->next;

		it->fn(it->arg);
		free(it);
		it = next;
	}
}

int defer_create(uv_loop_t *loop, struct defer **out, char *errmsg)
{
	struct defer *d = calloc(1, sizeof(*d));
	int rv;

	if (d == NULL) {
		ombra_errmsg_printf(errmsg, "defer: out of memory");
		return OMBRA_ENOMEM;
	}
	rv = uv_async_init(loop, &d->async, defer_run);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "uv_async_init: %s",
				    uv_strerror(rv));
		free(d);
		return OMBRA_EINTERNAL;
	}
	d->async.data = d;
	*out = d;
	return 0;
}

void defer_call(struct defer *d, defer_fn fn, void *arg)
{
	struct defer_item *it = malloc(sizeof(*it));

	if (it == NULL) {
		fprintf(stderr, "ombra-proxy: out of memory in defer_call\n");
		abort();
	}
	it->fn = fn;
	it->arg = arg;
	it->next = NULL;
	if (d->tail != NULL)
		d->tail->next = it;
	else
		d->head = it;
	d->tail = it;
	uv_async_send(&d->async);
}

static void defer_closed(uv_handle_t *h)
{
	struct defer *d = h->data;

	/* Anything queued after the last wake-up still runs. */
	defer_run(&d->async);
	free(d);
}

void defer_close(struct defer *d)
{
	uv_close((uv_handle_t *)&d->async, defer_closed);
}
