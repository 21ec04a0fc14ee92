/* rpc_channel.c: the asynchronous unary client for daemons (rpc.h,
 * rpc_channel_*).  Each channel owns a gRPC channel and a bridge
 * (rpc_bridge.h: the process's shared completion queue and thread); a call's
 * single six-op batch completes on the loop thread, where its callback
 * runs.  Calls in flight are kept on a list so that closing the channel can
 * cancel them and wait for their callbacks before tearing the bridge down.
 *
 * Failure: errors detected before a call starts are returned and no
 * callback runs; everything after that (transport errors, deadline,
 * cancellation, a malformed reply) reaches the callback as a status. */
#include <stdlib.h>
#include <string.h>

#include "rpc_bridge.h"
#include "rpc_internal.h"

struct rpc_pending {
	struct rpc_tag tag; /* first: the batch's tag */
	struct rpc_channel *ch;
	grpc_call *call;
	const ProtobufCMethodDescriptor *md;
	struct rpc_unary_batch batch;
	rpc_reply_cb cb;
	void *data;
	struct rpc_pending *prev, *next;
};

struct rpc_channel {
	grpc_channel *channel;
	struct rpc_bridge bridge;
	struct rpc_pending *live;
	bool closing;
	rpc_channel_closed_cb closed;
	void *closed_data;
};

static void channel_maybe_finish_close(struct rpc_channel *ch);

static void pending_unlink(struct rpc_channel *ch, struct rpc_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		ch->live = p->next;
	if (p->next)
		p->next->prev = p->prev;
}

static void on_reply(struct rpc_tag *tag, bool ok)
{
	struct rpc_pending *p = (struct rpc_pending *)tag;
	struct rpc_channel *ch = p->ch;
	struct rpc_status st;
	ProtobufCMessage *resp = NULL;

	if (!ok)
		rpc_status_local(&st, GRPC_STATUS_INTERNAL,
				 "gRPC could not run the call");
	else
		resp = rpc_unary_batch_finish(&p->batch, p->md, &st);
	pending_unlink(ch, p);
	p->cb(p->data, &st, resp);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	rpc_unary_batch_destroy(&p->batch);
	grpc_call_unref(p->call);
	free(p);
	channel_maybe_finish_close(ch);
}

int rpc_channel_create(uv_loop_t *loop, const char *target,
		       const struct rpc_tls *tls, struct rpc_channel **out,
		       char *errmsg)
{
	struct rpc_channel *ch = calloc(1, sizeof(*ch));
	if (ch == NULL) {
		ombra_errmsg_printf(errmsg, "rpc channel: out of memory");
		return OMBRA_ENOMEM;
	}
	rpc_library_ref();
	int rv = rpc_open_channel(target, tls, &ch->channel, errmsg);
	if (rv == 0) {
		rv = rpc_bridge_init(&ch->bridge, loop, NULL, NULL, errmsg);
		if (rv != 0)
			grpc_channel_destroy(ch->channel);
	}
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "rpc channel %s", target);
		rpc_library_unref();
		free(ch);
		return rv;
	}
	rv = rpc_bridge_start(&ch->bridge, errmsg);
	if (rv != 0) {
		/* The async handle exists: release through the normal close,
		 * which frees ch on the loop. */
		ombra_errmsg_wrapf(errmsg, "rpc channel %s", target);
		rpc_channel_close(ch, NULL, NULL);
		return rv;
	}
	*out = ch;
	return 0;
}

int rpc_channel_unary(struct rpc_channel *ch,
		      const ProtobufCServiceDescriptor *svc, const char *method,
		      const ProtobufCMessage *req, int timeout_ms,
		      rpc_reply_cb cb, void *data, struct rpc_pending **pending)
{
	if (ch->closing)
		return OMBRA_EPRECOND;
	struct rpc_pending *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return OMBRA_ENOMEM;
	struct rpc_status st;
	p->call = rpc_call_create(ch->channel, ch->bridge.cq, svc, method,
				  timeout_ms, &p->md, &st);
	if (p->call == NULL) {
		free(p);
		return rpc_code_to_err(st.code);
	}
	grpc_op ops[6];
	rpc_unary_batch_init(&p->batch, req, ops);
	rpc_tag_init(&p->tag, &ch->bridge, on_reply);
	p->ch = ch;
	p->cb = cb;
	p->data = data;
	if (grpc_call_start_batch(p->call, ops, 6, &p->tag, NULL) !=
	    GRPC_CALL_OK) {
		rpc_unary_batch_destroy(&p->batch);
		grpc_call_unref(p->call);
		free(p);
		return OMBRA_EINTERNAL;
	}
	p->next = ch->live;
	if (ch->live)
		ch->live->prev = p;
	ch->live = p;
	if (pending)
		*pending = p;
	return 0;
}

void rpc_pending_cancel(struct rpc_pending *p)
{
	grpc_call_cancel(p->call, NULL);
}

static void on_bridge_closed(uv_handle_t *h)
{
	struct rpc_bridge *b = h->data;
	struct rpc_channel *ch =
	    (struct rpc_channel *)((char *)b -
				   offsetof(struct rpc_channel, bridge));
	rpc_channel_closed_cb closed = ch->closed;
	void *data = ch->closed_data;
	free(ch);
	rpc_library_unref();
	if (closed)
		closed(data);
}

/* Once every call's callback ran, no tag is queued: tear down. */
static void channel_maybe_finish_close(struct rpc_channel *ch)
{
	if (!ch->closing || ch->live != NULL || ch->channel == NULL)
		return;
	grpc_channel_destroy(ch->channel);
	ch->channel = NULL;
	rpc_bridge_close(&ch->bridge, on_bridge_closed);
}

void rpc_channel_close(struct rpc_channel *ch, rpc_channel_closed_cb closed,
		       void *data)
{
	ch->closing = true;
	ch->closed = closed;
	ch->closed_data = data;
	for (struct rpc_pending *p = ch->live; p; p = p->next)
		grpc_call_cancel(p->call, NULL);
	channel_maybe_finish_close(ch);
}
