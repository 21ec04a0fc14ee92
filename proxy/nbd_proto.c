/* nbd_proto.c: NBD big-endian codec and names (nbd_proto.h).  Nothing here
 * can fail: callers pass buffers of the documented sizes. */
#include "nbd_proto.h"

void nbd_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void nbd_put32(uint8_t *p, uint32_t v)
{
	nbd_put16(p, (uint16_t)(v >> 16));
	nbd_put16(p + 2, (uint16_t)v);
}

void nbd_put64(uint8_t *p, uint64_t v)
{
	nbd_put32(p, (uint32_t)(v >> 32));
	nbd_put32(p + 4, (uint32_t)v);
}

uint16_t nbd_get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

uint32_t nbd_get32(const uint8_t *p)
{
	return (uint32_t)nbd_get16(p) << 16 | nbd_get16(p + 2);
}

uint64_t nbd_get64(const uint8_t *p)
{
	return (uint64_t)nbd_get32(p) << 32 | nbd_get32(p + 4);
}

void nbd_request_decode(const uint8_t *p, struct nbd_request *req)
{
	req->magic = nbd_get32(p);
	req->flags = nbd_get16(p + 4);
	req->type = nbd_get16(p + 6);
	req->handle = nbd_get64(p + 8);
	req->offset = nbd_get64(p + 16);
	req->length = nbd_get32(p + 24);
}

void nbd_simple_reply_encode(uint8_t *out, uint32_t error, uint64_t handle)
{
	nbd_put32(out, NBD_SIMPLE_REPLY_MAGIC);
	nbd_put32(out + 4, error);
	nbd_put64(out + 8, handle);
}

void nbd_opt_reply_encode(uint8_t *out, uint32_t opt, uint32_t type,
			  uint32_t len)
{
	nbd_put64(out, NBD_REP_MAGIC);
	nbd_put32(out + 8, opt);
	nbd_put32(out + 12, type);
	nbd_put32(out + 16, len);
}

uint32_t nbd_errno_from_status(grpc_status_code code)
{
	switch (code) {
	case GRPC_STATUS_OK:
		return 0;
	case GRPC_STATUS_INVALID_ARGUMENT:
	case GRPC_STATUS_OUT_OF_RANGE:
		return NBD_EINVAL;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		return NBD_ENOSPC;
	default:
		return NBD_EIO;
	}
}

const char *nbd_cmd_name(uint32_t type)
{
	static const char *const names[NBD_CMD_COUNT] = {
	    [NBD_CMD_READ] = "read",
	    [NBD_CMD_WRITE] = "write",
	    [NBD_CMD_DISC] = "disc",
	    [NBD_CMD_FLUSH] = "flush",
	    [NBD_CMD_TRIM] = "trim",
	    [NBD_CMD_CACHE] = "cache",
	    [NBD_CMD_WRITE_ZEROES] = "write_zeroes",
	    [NBD_CMD_BLOCK_STATUS] = "block_status",
	};

	return type < NBD_CMD_COUNT ? names[type] : "unknown";
}

const char *nbd_opt_name(uint32_t opt)
{
	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		return "NBD_OPT_EXPORT_NAME";
	case NBD_OPT_ABORT:
		return "NBD_OPT_ABORT";
	case NBD_OPT_LIST:
		return "NBD_OPT_LIST";
	case NBD_OPT_STARTTLS:
		return "NBD_OPT_STARTTLS";
	case NBD_OPT_INFO:
		return "NBD_OPT_INFO";
	case NBD_OPT_GO:
		return "NBD_OPT_GO";
	case NBD_OPT_STRUCTURED_REPLY:
		return "NBD_OPT_STRUCTURED_REPLY";
	case NBD_OPT_LIST_META_CONTEXT:
		return "NBD_OPT_LIST_META_CONTEXT";
	case NBD_OPT_SET_META_CONTEXT:
		return "NBD_OPT_SET_META_CONTEXT";
	case NBD_OPT_EXTENDED_HEADERS:
		return "NBD_OPT_EXTENDED_HEADERS";
	default:
		return "unknown";
	}
}

const char *nbd_errno_name(uint32_t error)
{
	switch (error) {
	case 0:
		return "OK";
	case NBD_EPERM:
		return "EPERM";
	case NBD_EIO:
		return "EIO";
	case NBD_ENOMEM:
		return "ENOMEM";
	case NBD_EINVAL:
		return "EINVAL";
	case NBD_ENOSPC:
		return "ENOSPC";
	case NBD_EOVERFLOW:
		return "EOVERFLOW";
	case NBD_ENOTSUP:
		return "ENOTSUP";
	case NBD_ESHUTDOWN:
		return "ESHUTDOWN";
	default:
		return "unknown";
	}
}
