/* rpc_internal.h: pieces shared by the RPC server, client and cluster
 * client: gRPC library lifetime, protobuf <-> byte buffer conversion,
 * method lookup and credentials.  Not a public API. */
#ifndef OMBRA_RPC_INTERNAL_H
#define OMBRA_RPC_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

#include "rpc.h"

/* Largest message either side accepts (bytes); data-path writes are
 * bounded well below this. */
#define RPC_MAX_MESSAGE_BYTES (64 * 1024 * 1024)

/* grpc_init()/grpc_shutdown() reference counting for our objects. */
void rpc_library_ref(void);
void rpc_library_unref(void);

/* Serialize msg into a new byte buffer (caller destroys), NULL on OOM. */
grpc_byte_buffer *rpc_pack(const ProtobufCMessage *msg);

/* Decode bb as desc; NULL when malformed (caller frees the message). */
ProtobufCMessage *rpc_unpack(const ProtobufCMessageDescriptor *desc,
			     grpc_byte_buffer *bb);

/* Method of svc by name, NULL if none. */
const ProtobufCMethodDescriptor *
rpc_find_method(const ProtobufCServiceDescriptor *svc, const char *name);

/* "/<package>.<Service>/<Method>" into buf (len bytes); 0 or OMBRA_EINVAL. */
int rpc_method_path(const ProtobufCServiceDescriptor *svc,
		    const ProtobufCMethodDescriptor *m, char *buf, size_t len);

/* Credentials from struct rpc_tls (NULL or all-empty = insecure).  Return 0
 * or OMBRA_ECONFIG with errmsg naming the file that could not be read. */
int rpc_creds_server(const struct rpc_tls *tls, grpc_server_credentials **out,
		     char *errmsg);
int rpc_creds_channel(const struct rpc_tls *tls, grpc_channel_credentials **out,
		      char *errmsg);

/* Channel/server args shared by both sides (message size limits). */
const grpc_channel_args *rpc_default_args(void);

/* ---- client calls (rpc_call.c), shared by rpc_client.c and rpc_channel.c */

/* A channel to target with tls's credentials and rpc_default_args(); the
 * caller destroys it.  0 or OMBRA_ECONFIG with errmsg. */
int rpc_open_channel(const char *target, const struct rpc_tls *tls,
		     grpc_channel **out, char *errmsg);

/* A call of svc's method on channel, completing on cq, with a deadline
 * timeout_ms from now (<= 0: 30 s).  Sets *md.  NULL with st filled
 * (UNIMPLEMENTED) when svc has no such method. */
grpc_call *rpc_call_create(grpc_channel *channel, grpc_completion_queue *cq,
			   const ProtobufCServiceDescriptor *svc,
			   const char *method, int timeout_ms,
			   const ProtobufCMethodDescriptor **md,
			   struct rpc_status *st);

/* The buffers of one unary call: init fills ops[0..6) for a single
 * grpc_call_start_batch(); after it completed, finish decodes the outcome
 * into st and returns the reply (caller frees) or NULL; destroy releases
 * the buffers in every case. */
struct rpc_unary_batch {
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array initial_md, trailing_md;
	grpc_status_code code;
	grpc_slice details;
};
void rpc_unary_batch_init(struct rpc_unary_batch *b,
			  const ProtobufCMessage *req, grpc_op ops[6]);
ProtobufCMessage *rpc_unary_batch_finish(struct rpc_unary_batch *b,
					 const ProtobufCMethodDescriptor *md,
					 struct rpc_status *st);
void rpc_unary_batch_destroy(struct rpc_unary_batch *b);

/* st from a finished call: code, details, and the leader hint found in the
 * trailing metadata (RPC_LEADER_MD_KEY). */
void rpc_status_fill(struct rpc_status *st, grpc_status_code code,
		     grpc_slice details, const grpc_metadata_array *trailing);
/* st for an outcome decided locally (no call made or a local failure). */
void rpc_status_local(struct rpc_status *st, grpc_status_code code,
		      const char *msg);
/* The OMBRA_E* code a status maps to (0 for OK). */
int rpc_code_to_err(grpc_status_code code);

#endif
