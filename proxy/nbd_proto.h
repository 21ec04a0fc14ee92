/* nbd_proto.h: NBD wire constants (proto.md, "Values") and the big-endian
 * codec the server uses.  Pure functions on byte buffers: they cannot
 * fail; the caller checks lengths before decoding. */
#ifndef OMBRA_PROXY_NBD_PROTO_H
#define OMBRA_PROXY_NBD_PROTO_H

#include <grpc/status.h>
#include <stddef.h>
#include <stdint.h>

/* Handshake. */
#define NBD_INIT_MAGIC 0x4e42444d41474943ull /* "NBDMAGIC" */
#define NBD_OPTS_MAGIC 0x49484156454f5054ull /* "IHAVEOPT" */
#define NBD_REP_MAGIC 0x0003e889045565a9ull

#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES (1u << 1)

/* Sizes of the fixed parts on the wire (bytes). */
#define NBD_GREETING_LEN 18	     /* magic, IHAVEOPT, handshake flags */
#define NBD_CFLAGS_LEN 4	     /* client flags */
#define NBD_OPT_HDR_LEN 16	     /* IHAVEOPT, option, length */
#define NBD_REP_HDR_LEN 20	     /* magic, option, type, length */
#define NBD_EXPORT_NAME_REPLY_LEN 10 /* size, transmission flags */
#define NBD_EXPORT_NAME_PAD 124
#define NBD_REQ_HDR_LEN 28
#define NBD_SIMPLE_REPLY_LEN 16

/* Options. */
#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT 2u
#define NBD_OPT_LIST 3u
#define NBD_OPT_STARTTLS 5u
#define NBD_OPT_INFO 6u
#define NBD_OPT_GO 7u
#define NBD_OPT_STRUCTURED_REPLY 8u
#define NBD_OPT_LIST_META_CONTEXT 9u
#define NBD_OPT_SET_META_CONTEXT 10u
#define NBD_OPT_EXTENDED_HEADERS 11u

/* Option replies. */
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_FLAG_ERROR (1u << 31)
#define NBD_REP_ERR_UNSUP (NBD_REP_FLAG_ERROR | 1u)
#define NBD_REP_ERR_POLICY (NBD_REP_FLAG_ERROR | 2u)
#define NBD_REP_ERR_INVALID (NBD_REP_FLAG_ERROR | 3u)
#define NBD_REP_ERR_PLATFORM (NBD_REP_FLAG_ERROR | 4u)
#define NBD_REP_ERR_TLS_REQD (NBD_REP_FLAG_ERROR | 5u)
#define NBD_REP_ERR_UNKNOWN (NBD_REP_FLAG_ERROR | 6u)
#define NBD_REP_ERR_SHUTDOWN (NBD_REP_FLAG_ERROR | 7u)
#define NBD_REP_ERR_BLOCK_SIZE_REQD (NBD_REP_FLAG_ERROR | 8u)
#define NBD_REP_ERR_TOO_BIG (NBD_REP_FLAG_ERROR | 9u)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT 0u
#define NBD_INFO_NAME 1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE 3u

/* Transmission flags. */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_ROTATIONAL (1u << 4)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)

/* Transmission. */
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u

#define NBD_CMD_READ 0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC 2u
#define NBD_CMD_FLUSH 3u
#define NBD_CMD_TRIM 4u
#define NBD_CMD_CACHE 5u
#define NBD_CMD_WRITE_ZEROES 6u
#define NBD_CMD_BLOCK_STATUS 7u
#define NBD_CMD_COUNT 8u /* commands with a name (for metrics, logs) */

#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)
#define NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* Error values (the Linux errno numbers the protocol fixes). */
#define NBD_EPERM 1u
#define NBD_EIO 5u
#define NBD_ENOMEM 12u
#define NBD_EINVAL 22u
#define NBD_ENOSPC 28u
#define NBD_EOVERFLOW 75u
#define NBD_ENOTSUP 95u
#define NBD_ESHUTDOWN 108u

/* A request header, decoded.  handle is opaque: it goes back as it came. */
struct nbd_request {
	uint32_t magic;
	uint16_t flags;
	uint16_t type;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
};

/* Big-endian stores and loads. */
void nbd_put16(uint8_t *p, uint16_t v);
void nbd_put32(uint8_t *p, uint32_t v);
void nbd_put64(uint8_t *p, uint64_t v);
uint16_t nbd_get16(const uint8_t *p);
uint32_t nbd_get32(const uint8_t *p);
uint64_t nbd_get64(const uint8_t *p);

/* p: NBD_REQ_HDR_LEN bytes. */
void nbd_request_decode(const uint8_t *p, struct nbd_request *req);

/* out: NBD_SIMPLE_REPLY_LEN bytes. */
void nbd_simple_reply_encode(uint8_t *out, uint32_t error, uint64_t handle);

/* out: NBD_REP_HDR_LEN bytes. */
void nbd_opt_reply_encode(uint8_t *out, uint32_t opt, uint32_t type,
			  uint32_t len);

/* The NBD error for an engine status (OK -> 0, INVALID_ARGUMENT and
 * OUT_OF_RANGE -> EINVAL, RESOURCE_EXHAUSTED -> ENOSPC, others -> EIO). */
uint32_t nbd_errno_from_status(grpc_status_code code);

/* Static names for logs and metric labels ("read", "NBD_OPT_GO"); unknown
 * values get "unknown". */
const char *nbd_cmd_name(uint32_t type);
const char *nbd_opt_name(uint32_t opt);
const char *nbd_errno_name(uint32_t error);

#endif
