/* rpc_bridge.h: hands gRPC completion-queue events to a libuv loop.
 *
 * gRPC core reports completed operations on a completion queue, which must
 * be drained by a thread blocking in grpc_completion_queue_next(); Ombra's
 * daemons keep all state on one libuv loop thread (DESIGN.md, "Threads and
 * I/O").  Every bridge of a process shares one such queue and one thread
 * that drains it (reference counted), which pushes every completed tag
 * onto its bridge's locked list and wakes that bridge's loop with
 * uv_async_send(); on the loop each tag's fn runs with the operation's
 * success flag.  Used by the RPC server and by the asynchronous client.
 *
 * Why one queue: gRPC core lets one thread at a time poll the process's
 * sockets (its epoll1 engine), among all the threads waiting in
 * grpc_completion_queue_next().  With a queue per channel and per server,
 * the thread that polled was often not the one whose queue got the
 * completion, and had to wake it: three threads woken per answer (poller,
 * bridge, loop) instead of two.  Measured on test_wan_locality's idle
 * machine (2026-12-08), where each wake-up costs a halted vCPU's exit.
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

/* Embed in whatever a batch completes for; fn runs on the loop thread of
 * bridge.  Set both with rpc_tag_init() before the batch starts. */
struct rpc_tag {
	rpc_tag_fn fn;
	struct rpc_bridge *bridge;
	struct rpc_tag *next; /* completion list link (bridge's) */
	bool ok;
};

struct rpc_bridge {
	grpc_completion_queue *cq; /* the process's shared queue */
	uv_async_t async;
	pthread_mutex_t lock;
	struct rpc_tag *head, *tail; /* guarded by lock */
	void (*after)(void *data);   /* after each batch of tags, or NULL */
	void *after_data;
};

/* A tag whose completion runs fn on b's loop. */
void rpc_tag_init(struct rpc_tag *tag, struct rpc_bridge *b, rpc_tag_fn fn);

/* Take a reference on the shared completion queue (created on the first;
 * for grpc_completion_queue_next) and create the async handle on loop; b is
 * caller storage that must stay valid until closed runs (see rpc_bridge_close).
 * after (may be NULL) runs on the loop once each wake-up's tags have been
 * handled.  Returns 0 or OMBRA_EIO. */
int rpc_bridge_init(struct rpc_bridge *b, uv_loop_t *loop,
		    void (*after)(void *data), void *after_data, char *errmsg);

/* Start the draining thread if it is not running yet.  Returns 0 or
 * OMBRA_EIO. */
int rpc_bridge_start(struct rpc_bridge *b, char *errmsg);

/* Drop the reference on the shared queue (the last one shuts it down,
 * waits for the thread to see it drained and destroys it), then close
 * the async handle; closed(&b->async) runs on the loop
 * when b may be freed.  Precondition: every operation started on the
 * queue has completed and its tag's fn has run (a tag still queued would
 * never run), which owners ensure by counting their operations. */
void rpc_bridge_close(struct rpc_bridge *b, uv_close_cb closed);

#endif
