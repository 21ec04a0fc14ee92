/* rpc_call.c: what every client call needs, shared by the blocking client
 * (rpc_client.c) and the loop-driven one (rpc_channel.c): opening a
 * channel with our credentials and limits, creating a call with a
 * deadline, the six-op batch of a unary call, and turning gRPC's outcome
 * into a struct rpc_status.
 *
 * Failure: a method the descriptor does not have is UNIMPLEMENTED before
 * anything is sent; a reply that does not decode is INTERNAL ("malformed
 * response from server"). */
#include <stdio.h>
#include <string.h>

#include <grpc/support/time.h>

#include "rpc_internal.h"

int rpc_open_channel(const char *target, const struct rpc_tls *tls,
		     grpc_channel **out, char *errmsg)
{
	grpc_channel_credentials *creds;
	int rv = rpc_creds_channel(tls, &creds, errmsg);
	if (rv != 0)
		return rv;
	grpc_arg args[3];
	const grpc_channel_args *def = rpc_default_args();
	size_t n = 0;
	for (; n < def->num_args; n++)
		args[n] = def->args[n];
	if (tls && tls->server_name_override && tls->server_name_override[0]) {
		args[n].type = GRPC_ARG_STRING;
		args[n].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
		args[n].value.string = (char *)tls->server_name_override;
		n++;
	}
	grpc_channel_args cargs = {.num_args = n, .args = args};
	*out = grpc_channel_create(target, creds, &cargs);
	grpc_channel_credentials_release(creds);
	return 0;
}

grpc_call *rpc_call_create(grpc_channel *channel, grpc_completion_queue *cq,
			   const ProtobufCServiceDescriptor *svc,
			   const char *method, int timeout_ms,
			   const ProtobufCMethodDescriptor **md,
			   struct rpc_status *st)
{
	*md = rpc_find_method(svc, method);
	if (*md == NULL) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s has no method %s", svc->name,
			 method);
		rpc_status_local(st, GRPC_STATUS_UNIMPLEMENTED, msg);
		return NULL;
	}
	char path[256];
	rpc_method_path(svc, *md, path, sizeof(path));
	if (timeout_ms <= 0)
		timeout_ms = 30000;
	gpr_timespec deadline =
	    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			 gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	grpc_slice mslice = grpc_slice_from_copied_string(path);
	grpc_call *call =
	    grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
				     mslice, NULL, deadline, NULL);
	grpc_slice_unref(mslice);
	return call;
}

void rpc_unary_batch_init(struct rpc_unary_batch *b,
			  const ProtobufCMessage *req, grpc_op ops[6])
{
	memset(b, 0, sizeof(*b));
	b->send = rpc_pack(req);
	grpc_metadata_array_init(&b->initial_md);
	grpc_metadata_array_init(&b->trailing_md);
	b->code = GRPC_STATUS_UNKNOWN;
	b->details = grpc_empty_slice();
	memset(ops, 0, 6 * sizeof(*ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = b->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata =
	    &b->initial_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &b->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &b->trailing_md;
	ops[5].data.recv_status_on_client.status = &b->code;
	ops[5].data.recv_status_on_client.status_details = &b->details;
}

ProtobufCMessage *rpc_unary_batch_finish(struct rpc_unary_batch *b,
					 const ProtobufCMethodDescriptor *md,
					 struct rpc_status *st)
{
	rpc_status_fill(st, b->code, b->details, &b->trailing_md);
	if (st->code != GRPC_STATUS_OK)
		return NULL;
	ProtobufCMessage *resp =
	    b->recv ? rpc_unpack(md->output, b->recv) : NULL;
	if (resp == NULL)
		rpc_status_local(st, GRPC_STATUS_INTERNAL,
				 "malformed response from server");
	return resp;
}

void rpc_unary_batch_destroy(struct rpc_unary_batch *b)
{
	if (b->recv)
		grpc_byte_buffer_destroy(b->recv);
	if (b->send)
		grpc_byte_buffer_destroy(b->send);
	grpc_slice_unref(b->details);
	grpc_metadata_array_destroy(&b->initial_md);
	grpc_metadata_array_destroy(&b->trailing_md);
}

void rpc_status_fill(struct rpc_status *st, grpc_status_code code,
		     grpc_slice details, const grpc_metadata_array *trailing)
{
	st->code = code;
	size_t len = GRPC_SLICE_LENGTH(details);
	if (len >= sizeof(st->message))
		len = sizeof(st->message) - 1;
	memcpy(st->message, GRPC_SLICE_START_PTR(details), len);
	st->message[len] = '\0';
	st->leader[0] = '\0';
	for (size_t i = 0; trailing && i < trailing->count; i++) {
		const grpc_metadata *m = &trailing->metadata[i];
		if (grpc_slice_str_cmp(m->key, RPC_LEADER_MD_KEY) != 0)
			continue;
		size_t vl = GRPC_SLICE_LENGTH(m->value);
		if (vl >= sizeof(st->leader))
			vl = sizeof(st->leader) - 1;
		memcpy(st->leader, GRPC_SLICE_START_PTR(m->value), vl);
		st->leader[vl] = '\0';
	}
}

void rpc_status_local(struct rpc_status *st, grpc_status_code code,
		      const char *msg)
{
	st->code = code;
	snprintf(st->message, sizeof(st->message), "%s", msg);
	st->leader[0] = '\0';
}

int rpc_code_to_err(grpc_status_code code)
{
	switch (code) {
	case GRPC_STATUS_OK:
		return 0;
	case GRPC_STATUS_INVALID_ARGUMENT:
	case GRPC_STATUS_OUT_OF_RANGE:
		return OMBRA_EINVAL;
	case GRPC_STATUS_NOT_FOUND:
		return OMBRA_ENOTFOUND;
	case GRPC_STATUS_ALREADY_EXISTS:
		return OMBRA_EEXIST;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return OMBRA_ETIMEDOUT;
	case GRPC_STATUS_CANCELLED:
		return OMBRA_ECANCELED;
	case GRPC_STATUS_FAILED_PRECONDITION:
		return OMBRA_EPRECOND;
	case GRPC_STATUS_UNIMPLEMENTED:
		return OMBRA_EUNIMPL;
	case GRPC_STATUS_UNAVAILABLE:
		return OMBRA_EUNAVAIL;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		return OMBRA_ENOMEM;
	default:
		return OMBRA_EINTERNAL;
	}
}
