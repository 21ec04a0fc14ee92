/* rpc_bridge.c: completion queue -> libuv loop handoff; see rpc_bridge.h.
 *
 * One completion queue and one draining thread per process, shared by
 * every bridge (reference counted: created with the first bridge, shut
 * down with the last).  The thread only moves tags to their bridge's list
 * and wakes that bridge's loop; it never touches the tags' owners, so the
 * owners need no locking.  It wakes the loop while holding the bridge's
 * lock, so once rpc_bridge_close() has taken that lock the thread is done
 * with the bridge.
 *
 * Failure: creating the thread can fail (OMBRA_EIO); nothing after that. */
#include <grpc/support/time.h>

#include "err.h"
#include "rpc_bridge.h"

static struct {
	pthread_mutex_t lock; /* guards the fields below */
	int refs;	      /* bridges initialised and not closed */
	grpc_completion_queue *cq;
	uv_thread_t thread;
	bool thread_started;
} shared = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void bridge_thread(void *arg)
{
	grpc_completion_queue *cq = arg;

	for (;;) {
		grpc_event ev = grpc_completion_queue_next(
		    cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		struct rpc_tag *tag = ev.tag;
		struct rpc_bridge *b = tag->bridge;
		tag->ok = ev.success != 0;
		tag->next = NULL;
		pthread_mutex_lock(&b->lock);
		if (b->tail)
			b->tail->next = tag;
		else
			b->head = tag;
		b->tail = tag;
		uv_async_send(&b->async);
		pthread_mutex_unlock(&b->lock);
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

void rpc_tag_init(struct rpc_tag *tag, struct rpc_bridge *b, rpc_tag_fn fn)
{
	tag->fn = fn;
	tag->bridge = b;
	tag->next = NULL;
	tag->ok = false;
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
	pthread_mutex_lock(&shared.lock);
	if (shared.refs++ == 0)
		shared.cq = grpc_completion_queue_create_for_next(NULL);
	b->cq = shared.cq;
	pthread_mutex_unlock(&shared.lock);
	return 0;
}

int rpc_bridge_start(struct rpc_bridge *b, char *errmsg)
{
	int rv = 0;

	pthread_mutex_lock(&shared.lock);
	if (!shared.thread_started) {
		rv = uv_thread_create(&shared.thread, bridge_thread, b->cq);
		shared.thread_started = rv == 0;
	}
	pthread_mutex_unlock(&shared.lock);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "completion queue thread: %s",
				    uv_strerror(rv));
		return OMBRA_EIO;
	}
	return 0;
}

/* The last bridge is gone: every operation on the queue has completed
 * (each owner waited for its own), so the thread sees the shutdown. */
static void shared_unref(void)
{
	pthread_mutex_lock(&shared.lock);
	if (--shared.refs == 0) {
		grpc_completion_queue_shutdown(shared.cq);
		if (shared.thread_started) {
			uv_thread_join(&shared.thread);
			shared.thread_started = false;
		} else {
			grpc_event ev;
			do {
				ev = grpc_completion_queue_next(
				    shared.cq,
				    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
			} while (ev.type != GRPC_QUEUE_SHUTDOWN);
		}
		grpc_completion_queue_destroy(shared.cq);
		shared.cq = NULL;
	}
	pthread_mutex_unlock(&shared.lock);
}

void rpc_bridge_close(struct rpc_bridge *b, uv_close_cb closed)
{
	/* The thread wakes the loop under this lock: past it, it is done
	 * with b (no operation of b's owner is left to complete). */
	pthread_mutex_lock(&b->lock);
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_destroy(&b->lock);
	b->cq = NULL;
	shared_unref();
	uv_close((uv_handle_t *)&b->async, closed);
}
