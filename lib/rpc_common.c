/* rpc_common.c: helpers shared by the RPC server and clients: the gRPC
 * library's reference count, protobuf-c <-> grpc_byte_buffer conversion,
 * method lookup by name, channel arguments and status code names.
 *
 * Failure: conversions return NULL on out-of-memory or malformed input;
 * nothing here aborts. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <sys/random.h>

#include "rpc_internal.h"

static pthread_mutex_t library_lock = PTHREAD_MUTEX_INITIALIZER;
static int library_refs;

void rpc_library_ref(void)
{
	pthread_mutex_lock(&library_lock);
	if (library_refs++ == 0)
		grpc_init();
	pthread_mutex_unlock(&library_lock);
}

void rpc_library_unref(void)
{
	pthread_mutex_lock(&library_lock);
	if (--library_refs == 0)
		grpc_shutdown();
	pthread_mutex_unlock(&library_lock);
}

grpc_byte_buffer *rpc_pack(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice slice = grpc_slice_malloc(len);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

ProtobufCMessage *rpc_unpack(const ProtobufCMessageDescriptor *desc,
			     grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader reader;
	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return NULL;
	grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	ProtobufCMessage *msg = protobuf_c_message_unpack(
	    desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	return msg;
}

const ProtobufCMethodDescriptor *
rpc_find_method(const ProtobufCServiceDescriptor *svc, const char *name)
{
	for (unsigned i = 0; i < svc->n_methods; i++)
		if (strcmp(svc->methods[i].name, name) == 0)
			return &svc->methods[i];
	return NULL;
}

int rpc_method_path(const ProtobufCServiceDescriptor *svc,
		    const ProtobufCMethodDescriptor *m, char *buf, size_t len)
{
	int n = snprintf(buf, len, "/%s/%s", svc->name, m->name);
	return (n < 0 || (size_t)n >= len) ? OMBRA_EINVAL : 0;
}

const grpc_channel_args *rpc_default_args(void)
{
	static grpc_arg args[2];
	static grpc_channel_args channel_args;
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = RPC_MAX_MESSAGE_BYTES;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
	args[1].value.integer = RPC_MAX_MESSAGE_BYTES;
	channel_args.num_args = 2;
	channel_args.args = args;
	return &channel_args;
}

const char *rpc_status_name(grpc_status_code code)
{
	static const char *const names[] = {
	    "OK",
	    "CANCELLED",
	    "UNKNOWN",
	    "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED",
	    "NOT_FOUND",
	    "ALREADY_EXISTS",
	    "PERMISSION_DENIED",
	    "RESOURCE_EXHAUSTED",
	    "FAILED_PRECONDITION",
	    "ABORTED",
	    "OUT_OF_RANGE",
	    "UNIMPLEMENTED",
	    "INTERNAL",
	    "UNAVAILABLE",
	    "DATA_LOSS",
	    "UNAUTHENTICATED",
	};
	if ((unsigned)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	return "UNKNOWN";
}

void rpc_request_id(char *buf, size_t len)
{
	unsigned char r[16];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* getrandom on Linux >= 3.17 only fails if interrupted before
		 * any entropy; fall back to a weaker but unique-enough id. */
		static unsigned long counter;
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)(rand() ^ (int)(++counter * 31));
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(buf, len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
		 r[10], r[11], r[12], r[13], r[14], r[15]);
}
