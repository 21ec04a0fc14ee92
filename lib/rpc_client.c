/* rpc_client.c: blocking gRPC client calls (unary and server streaming) on
 * the gRPC core C API, for the CLI, tests and benchmarks.
 *
 * Each call gets its own pluck completion queue, so one rpc_client may be
 * used by several threads at once (the channel is thread-safe).  Daemons do
 * not use this: nothing may block their loop.
 *
 * Failure: every outcome is a gRPC status in struct rpc_status: transport
 * problems arrive as UNAVAILABLE or DEADLINE_EXCEEDED from gRPC itself, a
 * reply that does not decode as the method's output type becomes INTERNAL
 * ("malformed response"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "rpc_internal.h"

struct rpc_client {
	grpc_channel *channel;
	char *target;
};

struct rpc_stream {
	grpc_call *call;
	grpc_completion_queue *cq;
	const ProtobufCMessageDescriptor *output;
	grpc_metadata_array initial_md, trailing_md;
	grpc_slice details;
	grpc_status_code code;
	bool ended;
	bool got_initial_md; /* received with the first message */
};

int rpc_client_create(const char *target, const struct rpc_tls *tls,
		      struct rpc_client **out, char *errmsg)
{
	struct rpc_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		ombra_errmsg_printf(errmsg, "rpc client: out of memory");
		return OMBRA_ENOMEM;
	}
	rpc_library_ref();
	int rv = rpc_open_channel(target, tls, &c->channel, errmsg);
	if (rv != 0) {
		rpc_library_unref();
		free(c);
		return rv;
	}
	c->target = strdup(target);
	*out = c;
	return 0;
}

void rpc_client_destroy(struct rpc_client *c)
{
	if (c == NULL)
		return;
	grpc_channel_destroy(c->channel);
	free(c->target);
	free(c);
	rpc_library_unref();
}

const char *rpc_client_target(const struct rpc_client *c)
{
	return c->target;
}

/* Create a call on its own pluck queue; NULL method -> st filled. */
static grpc_call *
call_create(struct rpc_client *c, const ProtobufCServiceDescriptor *svc,
	    const char *method, int timeout_ms, grpc_completion_queue **cq,
	    const ProtobufCMethodDescriptor **md, struct rpc_status *st)
{
	*cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_call *call =
	    rpc_call_create(c->channel, *cq, svc, method, timeout_ms, md, st);
	if (call == NULL) {
		grpc_completion_queue_destroy(*cq);
		*cq = NULL;
	}
	return call;
}

static void cq_destroy(grpc_completion_queue *cq)
{
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(
		   cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
		   .type != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
}

/* Start a batch and wait for it on the call's pluck queue. */
static bool run_batch(grpc_call *call, grpc_completion_queue *cq,
		      const grpc_op *ops, size_t n)
{
	int tag;
	if (grpc_call_start_batch(call, ops, n, &tag, NULL) != GRPC_CALL_OK)
		return false;
	grpc_event ev = grpc_completion_queue_pluck(
	    cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

int rpc_client_unary(struct rpc_client *c,
		     const ProtobufCServiceDescriptor *svc, const char *method,
		     const ProtobufCMessage *req, ProtobufCMessage **resp,
		     int timeout_ms, struct rpc_status *st)
{
	*resp = NULL;
	grpc_completion_queue *cq;
	const ProtobufCMethodDescriptor *md;
	grpc_call *call = call_create(c, svc, method, timeout_ms, &cq, &md, st);
	if (call == NULL)
		return rpc_code_to_err(st->code);

	struct rpc_unary_batch batch;
	grpc_op ops[6];
	rpc_unary_batch_init(&batch, req, ops);
	if (!run_batch(call, cq, ops, 6))
		rpc_status_local(st, GRPC_STATUS_INTERNAL,
				 "gRPC could not run the call");
	else
		*resp = rpc_unary_batch_finish(&batch, md, st);
	rpc_unary_batch_destroy(&batch);
	grpc_call_unref(call);
	cq_destroy(cq);
	return rpc_code_to_err(st->code);
}

int rpc_client_stream(struct rpc_client *c,
		      const ProtobufCServiceDescriptor *svc, const char *method,
		      const ProtobufCMessage *req, int timeout_ms,
		      struct rpc_stream **out, struct rpc_status *st)
{
	*out = NULL;
	struct rpc_stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rpc_status_local(st, GRPC_STATUS_RESOURCE_EXHAUSTED,
				 "out of memory");
		return OMBRA_ENOMEM;
	}
	const ProtobufCMethodDescriptor *md;
	s->call = call_create(c, svc, method, timeout_ms, &s->cq, &md, st);
	if (s->call == NULL) {
		free(s);
		return rpc_code_to_err(st->code);
	}
	s->output = md->output;
	grpc_metadata_array_init(&s->initial_md);
	grpc_metadata_array_init(&s->trailing_md);
	s->details = grpc_empty_slice();

	/* Only the sending ops: a server may send its initial metadata with
	 * its first message, which can be much later (a Watch stream with no
	 * event yet).  Waiting for it here kept the stream from being
	 * cancellable, because the caller gets it only when this returns
	 * (the proxy could not shut down until the first event). */
	grpc_byte_buffer *send = rpc_pack(req);
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	bool ok = run_batch(s->call, s->cq, ops, 3);
	grpc_byte_buffer_destroy(send);
	if (!ok) {
		rpc_status_local(st, GRPC_STATUS_UNAVAILABLE,
				 "could not send the request");
		rpc_stream_close(s);
		return OMBRA_EUNAVAIL;
	}
	rpc_status_local(st, GRPC_STATUS_OK, "");
	*out = s;
	return 0;
}

/* Collect the final status once the server ended the stream. */
static void stream_end(struct rpc_stream *s, struct rpc_status *st)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
	op.data.recv_status_on_client.status = &s->code;
	op.data.recv_status_on_client.status_details = &s->details;
	if (run_batch(s->call, s->cq, &op, 1))
		rpc_status_fill(st, s->code, s->details, &s->trailing_md);
	else
		rpc_status_local(st, GRPC_STATUS_INTERNAL,
				 "could not receive the final status");
	s->ended = true;
}

int rpc_stream_next(struct rpc_stream *s, ProtobufCMessage **msg,
		    struct rpc_status *st)
{
	*msg = NULL;
	if (s->ended) {
		rpc_status_fill(st, s->code, s->details, &s->trailing_md);
		return 0;
	}
	grpc_byte_buffer *recv = NULL;
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!s->got_initial_md) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n].data.recv_initial_metadata.recv_initial_metadata =
		    &s->initial_md;
		n++;
		s->got_initial_md = true;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n].data.recv_message.recv_message = &recv;
	n++;
	if (!run_batch(s->call, s->cq, ops, n) || recv == NULL) {
		if (recv)
			grpc_byte_buffer_destroy(recv);
		stream_end(s, st);
		return st->code == GRPC_STATUS_OK ? 0 : -1;
	}
	*msg = rpc_unpack(s->output, recv);
	grpc_byte_buffer_destroy(recv);
	if (*msg == NULL) {
		rpc_status_local(st, GRPC_STATUS_INTERNAL,
				 "malformed stream message from server");
		grpc_call_cancel(s->call, NULL);
		return -1;
	}
	rpc_status_local(st, GRPC_STATUS_OK, "");
	return 1;
}

void rpc_stream_cancel(struct rpc_stream *s)
{
	grpc_call_cancel(s->call, NULL);
}

void rpc_stream_close(struct rpc_stream *s)
{
	if (s == NULL)
		return;
	if (!s->ended) {
		struct rpc_status st;
		grpc_call_cancel(s->call, NULL);
		stream_end(s, &st);
	}
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->initial_md);
	grpc_metadata_array_destroy(&s->trailing_md);
	grpc_call_unref(s->call);
	cq_destroy(s->cq);
	free(s);
}
