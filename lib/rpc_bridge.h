/* rpc_bridge.h: hands gRPC completion-queue events to a libuv loop.
 *
 * gRPC core reports completed operations on a completion queue, which must
 * be drained by a thread blocking in grpc_completion_queue_next(); Ombra's
 * daemons keep all state on one libuv loop thread (DESIGN.md, "Threads and
 * I/O").  A bridge owns such a queue and a thread that drains it, pushes
 * every completed tag onto a locked list and wakes the loop with
 * uv_async_send(); on the loop each tag's fn runs with the operation's
 * success flag.  Used by the RPC server and by the asynchronous client.
 *
 * Failure: start fails (OMBRA_EIO with errmsg) only when libuv cannot create
 * the async handle or the thread.  Not internal to one user: any struct that
 * embeds a struct rpc_tag can be the tag of a gRPC batch on the queue. */
#ifndef OMBRA_RPC_BRIDGE_H
#define OMBRA_RPC_BRIDGE_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdbool.h>
#include <uv.h>

struct rpc_tag;
typedef void (*rpc_tag_fn)(struct rpc_tag *tag, bool ok);

/* Embed in whatever a batch completes for; fn runs on the loop thread. */
struct rpc_tag {
	rpc_tag_fn fn;
	struct rpc_tag *next; /* completion list link (bridge's) */
	bool ok;
};

struct rpc_bridge {
	grpc_completion_queue *cq; /* created by rpc_bridge_start */
	uv_async_t async;
	uv_thread_t thread;
	pthread_mutex_t lock;
	struct rpc_tag *head, *tail; /* guarded by lock */
	void (*after)(void *data);   /* after each batch of tags, or NULL */
	void *after_data;
	uv_close_cb closed;
	bool thread_started;
};

/* Create the completion queue (for grpc_completion_queue_next) and the
 * async handle on loop; b is caller storage that must stay valid until
 * closed runs (see rpc_bridge_close).  after (may be NULL) runs on the
 * loop once each wake-up's tags have been handled.  Returns 0 or OMBRA_EIO. */
int rpc_bridge_init(struct rpc_bridge *b, uv_loop_t *loop,
		    void (*after)(void *data), void *after_data, char *errmsg);

/* Start the draining thread.  Returns 0 or OMBRA_EIO. */
int rpc_bridge_start(struct rpc_bridge *b, char *errmsg);

/* Shut the queue down, wait for the thread to see it drained, destroy the
 * queue, then close the async handle; closed(&b->async) runs on the loop
 * when b may be freed.  Precondition: every operation started on the
 * queue has completed and its tag's fn has run (a tag still queued would
 * never run), which owners ensure by counting their operations. */
void rpc_bridge_close(struct rpc_bridge *b, uv_close_cb closed);

#endif
