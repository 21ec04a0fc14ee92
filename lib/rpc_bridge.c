/* rpc_bridge.c: completion queue -> libuv loop handoff; see rpc_bridge.h.
 * The thread only moves tags; it never touches their owners, so the owners
 * need no locking. */
#include <grpc/support/time.h>

#include "err.h"
#include "rpc_bridge.h"

static void bridge_thread(void *arg)
{
	struct rpc_bridge *b = arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
		    b->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct rpc_tag *tag = ev.tag;
		tag->ok = ev.success != 0;
		tag->next = NULL;
		pthread_mutex_lock(&b->lock);
		if (b->tail)
			b->tail->next = tag;
		else
			b->head = tag;
		b->tail = tag;
		pthread_mutex_unlock(&b->lock);
		uv_async_send(&b->async);
	}
}

static void bridge_wake(uv_async_t *async)
{
	struct rpc_bridge *b = async->data;
	pthread_mutex_lock(&b->lock);
	struct rpc_tag *tag = b->head;
	b->head = b->tail = NULL;
	pthread_mutex_unlock(&b->lock);
	while (tag) {
		struct rpc_tag *next = tag->next;
		tag->fn(tag, tag->ok);
		tag = next;
	}
	if (b->after)
		b->after(b->after_data);
}

int rpc_bridge_init(struct rpc_bridge *b, uv_loop_t *loop,
		    void (*after)(void *data), void *after_data, char *errmsg)
{
	int rv = uv_async_init(loop, &b->async, bridge_wake);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "uv_async_init: %s",
				    uv_strerror(rv));
		return OMBRA_EIO;
	}
	b->async.data = b;
	pthread_mutex_init(&b->lock, NULL);
	b->head = b->tail = NULL;
	b->after = after;
	b->after_data = after_data;
	b->thread_started = false;
	b->cq = grpc_completion_queue_create_for_next(NULL);
	return 0;
}

int rpc_bridge_start(struct rpc_bridge *b, char *errmsg)
{
	int rv = uv_thread_create(&b->thread, bridge_thread, b);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "completion queue thread: %s",
				    uv_strerror(rv));
		return OMBRA_EIO;
	}
	b->thread_started = true;
	return 0;
}

void rpc_bridge_close(struct rpc_bridge *b, uv_close_cb closed)
{
	grpc_completion_queue_shutdown(b->cq);
	if (b->thread_started) {
		uv_thread_join(&b->thread);
	} else {
		grpc_event ev;
		do {
			ev = grpc_completion_queue_next(
			    b->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		} while (ev.type != GRPC_QUEUE_SHUTDOWN);
	}
	grpc_completion_queue_destroy(b->cq);
	pthread_mutex_destroy(&b->lock);
	uv_close((uv_handle_t *)&b->async, closed);
}
