/* rpc.h: Ombra's RPC layer on the gRPC core C API and protobuf-c.
 *
 * Server: services are registered from their ProtobufCServiceDescriptor; the
 * method table (path "/<package>.<Service>/<Method>" -> input descriptor +
 * handler) is built from the descriptor, so there is no per-method glue.
 * One thread drains the server's completion queue and hands every event to
 * the daemon's libuv loop with uv_async_send(); handlers run on the loop
 * thread, where all daemon state lives, and may answer later (after a Raft
 * commit, say).  Unary and server-streaming methods are supported (protobuf-c
 * does not record streaming: a handler streams by calling
 * rpc_call_stream_send() and ends with rpc_call_finish()).
 *
 * Client: a blocking unary and server-streaming client for CLIs, tests and
 * benchmarks (rpc_client_*); rpc_cluster_*, which follows the metad
 * leader: on UNAVAILABLE with an "ombra-leader" hint it retries there, and
 * it retries transient failures with backoff until the deadline; and
 * rpc_channel_*, the asynchronous unary client for daemons, whose replies
 * arrive as callbacks on the daemon's loop (same completion-queue bridge as
 * the server), so calling another daemon never blocks the loop.
 *
 * Failure: transport errors surface as gRPC status codes in struct
 * rpc_status; undecodable requests are answered INVALID_ARGUMENT and unknown
 * methods UNIMPLEMENTED by the layer itself, never reaching a handler. */
#ifndef OMBRA_RPC_H
#define OMBRA_RPC_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "err.h"

/* Trailing-metadata key that carries the leader's gRPC address. */
#define RPC_LEADER_MD_KEY "ombra-leader"

/* Transport security.  All NULL: insecure.  ca+cert+key: mutual TLS (the
 * server requires and verifies a client certificate signed by ca; the client
 * verifies the server against ca).  Paths are PEM files; copied at create. */
struct rpc_tls {
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	const char *server_name_override; /* client only: expected cert name */
};

/* ---------------------------------------------------------------- server */

struct rpc_server;
struct rpc_call; /* one inbound call; owned by the server */

/* Called on the loop thread with the decoded request (owned by the call,
 * valid until the call is answered).  The handler must answer exactly once,
 * now or later, with rpc_call_reply() or rpc_call_fail() (or stream and
 * rpc_call_finish()), even if the call was cancelled meanwhile. */
typedef void (*rpc_handler_fn)(struct rpc_call *call,
			       const ProtobufCMessage *req, void *data);

/* Called once, on the loop thread, when the server has fully stopped. */
typedef void (*rpc_server_stop_cb)(struct rpc_server *srv, void *data);

/* Observer for metrics: every call's method name and final status. */
typedef void (*rpc_server_observe_fn)(void *data, const char *method,
				      grpc_status_code code, double seconds);

/* listen: "host:port".  loop: the daemon's loop (not owned).  tls: NULL
 * or copied.  On error returns OMBRA_E* and fills errmsg. */
int rpc_server_create(uv_loop_t *loop, const char *listen,
		      const struct rpc_tls *tls, struct rpc_server **out,
		      char *errmsg);

/* handlers: array of desc->n_methods entries indexed like desc->methods
 * (NULL = UNIMPLEMENTED); copied.  data: passed to every handler.  Call
 * before rpc_server_start(). */
int rpc_server_add_service(struct rpc_server *srv,
			   const ProtobufCServiceDescriptor *desc,
			   const rpc_handler_fn *handlers, void *data);

void rpc_server_set_observer(struct rpc_server *srv, rpc_server_observe_fn fn,
			     void *data);

/* Bind and start accepting.  Returns the bound port in *port if not NULL. */
int rpc_server_start(struct rpc_server *srv, int *port, char *errmsg);

/* Cancel every in-flight call, stop, and free the server; cb (may be NULL)
 * runs on the loop thread once everything is released. */
void rpc_server_stop(struct rpc_server *srv, rpc_server_stop_cb cb, void *data);

/* Answer a unary call with resp (not owned; serialized immediately) and
 * status OK. */
void rpc_call_reply(struct rpc_call *call, const ProtobufCMessage *resp);

/* Answer with a non-OK status and a message saying what was wrong. */
void rpc_call_fail(struct rpc_call *call, grpc_status_code code,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like rpc_call_fail() and also sets trailing metadata key=value. */
void rpc_call_fail_md(struct rpc_call *call, grpc_status_code code,
		      const char *key, const char *value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Server streaming: queue one message (serialized now, sent in order). */
void rpc_call_stream_send(struct rpc_call *call, const ProtobufCMessage *msg);

/* Server streaming: end the stream with a status (OK or an error). */
void rpc_call_finish(struct rpc_call *call, grpc_status_code code,
		     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True once the client cancelled or the deadline passed. */
bool rpc_call_cancelled(const struct rpc_call *call);

/* Called (loop thread) when the call ends for any reason: after the final
 * status is sent or the client went away.  One per call; replaces any
 * previous one.  Streaming handlers use it to drop their subscription. */
typedef void (*rpc_call_done_cb)(struct rpc_call *call, void *data);
void rpc_call_on_done(struct rpc_call *call, rpc_call_done_cb cb, void *data);

/* Milliseconds until the call's deadline (INT64_MAX if none). */
int64_t rpc_call_deadline_ms(const struct rpc_call *call);

/* Method name without the service ("CreateVolume"); valid for the call. */
const char *rpc_call_method(const struct rpc_call *call);

/* ---------------------------------------------------------------- client */

struct rpc_status {
	grpc_status_code code;
	char message[OMBRA_ERRMSG_LEN];
	char leader[128]; /* value of RPC_LEADER_MD_KEY, "" if absent */
};

struct rpc_client;

/* target: "host:port".  tls: NULL or copied.  Returns 0 or OMBRA_E*. */
int rpc_client_create(const char *target, const struct rpc_tls *tls,
		      struct rpc_client **out, char *errmsg);
void rpc_client_destroy(struct rpc_client *c);
const char *rpc_client_target(const struct rpc_client *c);

/* Blocking unary call of svc's method named method.  On status OK *resp is a
 * new message the caller frees with protobuf_c_message_free_unpacked(..,
 * NULL); otherwise *resp is NULL.  timeout_ms <= 0: 30 s.  Returns 0 when
 * the call completed with OK, else OMBRA_EUNAVAIL etc.; st always filled. */
int rpc_client_unary(struct rpc_client *c,
		     const ProtobufCServiceDescriptor *svc, const char *method,
		     const ProtobufCMessage *req, ProtobufCMessage **resp,
		     int timeout_ms, struct rpc_status *st);

/* Server-streaming call.  rpc_stream_next() blocks for the next message:
 * returns 1 and sets *msg (caller frees), 0 at the end of the stream (st
 * holds the final status), or -1 on transport failure (st filled).
 * rpc_stream_cancel() may be called from another thread to unblock it;
 * rpc_stream_close() frees the stream (cancelling it if still open). */
struct rpc_stream;
int rpc_client_stream(struct rpc_client *c,
		      const ProtobufCServiceDescriptor *svc, const char *method,
		      const ProtobufCMessage *req, int timeout_ms,
		      struct rpc_stream **out, struct rpc_status *st);
int rpc_stream_next(struct rpc_stream *s, ProtobufCMessage **msg,
		    struct rpc_status *st);
void rpc_stream_cancel(struct rpc_stream *s);
void rpc_stream_close(struct rpc_stream *s);

/* ----------------------------------------------------------- async client */

struct rpc_channel; /* a connection to one server, used from one loop */
struct rpc_pending; /* one call in flight */

/* The outcome of an asynchronous call, on the loop thread, exactly once:
 * st says how it ended; resp is the decoded reply when st->code is OK, else
 * NULL.  resp is owned by the layer and freed when the callback returns. */
typedef void (*rpc_reply_cb)(void *data, const struct rpc_status *st,
			     const ProtobufCMessage *resp);

/* Called once on the loop when a closed channel has released everything. */
typedef void (*rpc_channel_closed_cb)(void *data);

/* target "host:port"; loop: the caller's loop (not owned; outlives the
 * channel); tls: NULL or copied.  Returns 0 or OMBRA_E* with errmsg. */
int rpc_channel_create(uv_loop_t *loop, const char *target,
		       const struct rpc_tls *tls, struct rpc_channel **out,
		       char *errmsg);

/* Start a unary call of svc's method with req (serialized now, not kept).
 * On 0, cb(data, ...) will run on the loop, never from inside this call,
 * and *pending (if not NULL) identifies the call until cb runs.  On error
 * (OMBRA_EUNIMPL: svc has no such method; OMBRA_EPRECOND: channel closing;
 * OMBRA_ENOMEM; OMBRA_EINTERNAL: gRPC refused the batch) cb never runs.
 * timeout_ms <= 0: 30 s. */
int rpc_channel_unary(struct rpc_channel *ch,
		      const ProtobufCServiceDescriptor *svc, const char *method,
		      const ProtobufCMessage *req, int timeout_ms,
		      rpc_reply_cb cb, void *data,
		      struct rpc_pending **pending);

/* Ask gRPC to cancel the call; its callback still runs (CANCELLED unless
 * the reply won the race).  Only valid before the callback ran. */
void rpc_pending_cancel(struct rpc_pending *p);

/* Cancel every call in flight (their callbacks run with CANCELLED), then
 * release the channel; closed (may be NULL) runs on the loop at the end. */
void rpc_channel_close(struct rpc_channel *ch, rpc_channel_closed_cb closed,
		       void *data);

/* --------------------------------------------------------- leader-following */

struct rpc_cluster;

/* endpoints: "host:port,host:port,..." (copied).  Returns 0 or OMBRA_EINVAL
 * when the list is empty or malformed. */
int rpc_cluster_create(const char *endpoints, const struct rpc_tls *tls,
		       struct rpc_cluster **out, char *errmsg);
void rpc_cluster_destroy(struct rpc_cluster *cl);

/* Like rpc_client_unary() against the cluster: starts with the last known
 * leader, follows "ombra-leader" hints, tries the other endpoints on
 * UNAVAILABLE or connection failure, and backs off (50 ms doubling to
 * 1 s) until timeout_ms is spent.  Requests that carry a request_id are safe
 * to retry; the caller must set one on every write. */
int rpc_cluster_unary(struct rpc_cluster *cl,
		      const ProtobufCServiceDescriptor *svc, const char *method,
		      const ProtobufCMessage *req, ProtobufCMessage **resp,
		      int timeout_ms, struct rpc_status *st);

/* Canonical name of a status code ("NOT_FOUND"); static, never NULL. */
const char *rpc_status_name(grpc_status_code code);

/* Fill buf (len >= 37) with a random UUID-like request id. */
void rpc_request_id(char *buf, size_t len);

#endif
