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

#endif
