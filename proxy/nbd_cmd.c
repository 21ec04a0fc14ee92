/* nbd_cmd.c: the NBD transmission phase: requests READ, WRITE (FUA),
 * FLUSH, TRIM, WRITE_ZEROES (with or without NO_HOLE) and DISC, many in
 * flight per connection, each answered with a simple reply as soon as its
 * engine call returns (so replies come in completion order, matched by
 * the client's handle).
 *
 * Failure: a request that breaks a rule gets an error reply and the
 * connection goes on: bad flags, unknown commands and READ/WRITE longer
 * than NBD_MAX_PAYLOAD get EINVAL; a range beyond the export gets EINVAL
 * (READ, TRIM) or ENOSPC (WRITE, WRITE_ZEROES); a refused WRITE's payload
 * is read and discarded.  A WRITE longer than NBD_MAX_DISCARD and a bad
 * request magic close the connection.  Engine errors map to EINVAL,
 * ENOSPC or EIO (nbd_errno_from_status()) and are logged with the
 * engine's message.  Out of memory for a buffer answers ENOMEM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "nbd_internal.h"

static unsigned nbd_cmd_index(uint16_t type)
{
	return type < NBD_CMD_COUNT ? type : NBD_CMD_COUNT;
}

void nbd_req_free(struct nbd_req *req)
{
	struct nbd_conn *c = req->c;

	c->inflight--;
	c->inflight_bytes -= req->charge;
	free(req->buf);
	free(req);
	nbd_conn_kick(c);
	nbd_conn_unref(c);
}

static void nbd_req_written(uv_write_t *wr, int status)
{
	struct nbd_req *req = wr->data;

	if (status < 0 && status != UV_ECANCELED) {
		log_debug("nbd %s: write: %s", req->c->peer,
			  uv_strerror(status));
		nbd_conn_close(req->c);
	}
	nbd_req_free(req);
}

static void nbd_req_count(const struct nbd_req *req)
{
	const struct nbd_metrics *m = &req->c->srv->m;
	unsigned i = nbd_cmd_index(req->hdr.type);

	nbd_metric_inc(m->reqs[i], 1);
	if (req->error != 0) {
		nbd_metric_inc(m->errors[i], 1);
		return;
	}
	if (m->seconds[i] != NULL) {
		metric_observe(m->seconds[i],
			       (double)(uv_hrtime() - req->start_ns) / 1e9);
	}
	if (req->hdr.type == NBD_CMD_READ) {
		nbd_metric_inc(m->read_bytes, req->hdr.length);
	} else if (req->hdr.type == NBD_CMD_WRITE) {
		nbd_metric_inc(m->written_bytes, req->hdr.length);
	}
}

/* Send the simple reply (with the data of a successful READ). */
static void nbd_req_reply(struct nbd_req *req)
{
	struct nbd_conn *c = req->c;
	uv_buf_t bufs[2];
	unsigned n = 1;
	int rv;

	if (c->state == NBD_CONN_CLOSED) {
		nbd_req_free(req);
		return;
	}
	nbd_req_count(req);
	nbd_simple_reply_encode(req->reply, req->error, req->hdr.handle);
	bufs[0] = uv_buf_init((char *)req->reply, sizeof(req->reply));
	if (req->hdr.type == NBD_CMD_READ && req->error == 0 &&
	    req->hdr.length > 0) {
		bufs[1] = uv_buf_init((char *)req->buf, req->hdr.length);
		n = 2;
	}
	req->wr.data = req;
	rv = uv_write(&req->wr, (uv_stream_t *)&c->tcp, bufs, n,
		      nbd_req_written);
	if (rv != 0) {
		log_debug("nbd %s: write: %s", c->peer, uv_strerror(rv));
		nbd_conn_close(c);
		nbd_req_free(req);
	}
}

static bool nbd_req_is_zero(const struct nbd_req *req)
{
	return req->hdr.type == NBD_CMD_TRIM ||
	       req->hdr.type == NBD_CMD_WRITE_ZEROES;
}

static void nbd_cmd_zero_next(struct nbd_req *req);

static void nbd_cmd_io_done(void *arg, const struct proxy_status *st,
			    uint64_t version)
{
	struct nbd_req *req = arg;
	struct nbd_conn *c = req->c;

	(void)version;
	if (c->state == NBD_CONN_CLOSED) {
		nbd_req_free(req);
		return;
	}
	if (st->code != GRPC_STATUS_OK) {
		req->error = nbd_errno_from_status(st->code);
		log_warn("nbd %s: %s offset %llu length %u on %s: %s "
			 "(replying %s)",
			 c->peer, nbd_cmd_name(req->hdr.type),
			 (unsigned long long)req->hdr.offset, req->hdr.length,
			 c->export_name, st->message,
			 nbd_errno_name(req->error));
	} else if (nbd_req_is_zero(req) && req->zero_done < req->hdr.length) {
		nbd_cmd_zero_next(req);
		return;
	}
	nbd_req_reply(req);
}

/* TRIM and WRITE_ZEROES may be longer than one engine call: zero the
 * range in PROXY_IO_MAX_BYTES pieces, one after the other. */
static void nbd_cmd_zero_next(struct nbd_req *req)
{
	uint64_t left = req->hdr.length - req->zero_done;
	uint64_t n = left < PROXY_IO_MAX_BYTES ? left : PROXY_IO_MAX_BYTES;
	uint64_t off = req->hdr.offset + req->zero_done;

	req->zero_done += n;
	proxy_io_zero(req->c->vol, off, n,
		      (req->hdr.flags & NBD_CMD_FLAG_FUA) != 0, NULL,
		      nbd_cmd_io_done, req);
}

/* The NBD error for a request that breaks a rule (0 if none); why gets
 * the reason (OMBRA_ERRMSG_LEN). */
static uint32_t nbd_cmd_check(const struct nbd_conn *c,
			      const struct nbd_request *r, char *why)
{
	uint16_t allowed = NBD_CMD_FLAG_FUA;
	bool is_write = false;
	uint64_t size;

	switch (r->type) {
	case NBD_CMD_READ:
	case NBD_CMD_FLUSH:
	case NBD_CMD_TRIM:
		break;
	case NBD_CMD_WRITE:
		is_write = true;
		break;
	case NBD_CMD_WRITE_ZEROES:
		allowed |= NBD_CMD_FLAG_NO_HOLE;
		is_write = true;
		break;
	default:
		snprintf(why, OMBRA_ERRMSG_LEN,
			 "command %u (%s) is not supported", r->type,
			 nbd_cmd_name(r->type));
		return NBD_EINVAL;
	}
	if ((r->flags & ~allowed) != 0) {
		snprintf(why, OMBRA_ERRMSG_LEN,
			 "flags 0x%04x are not valid for this command",
			 r->flags);
		return NBD_EINVAL;
	}
	if ((r->type == NBD_CMD_READ || r->type == NBD_CMD_WRITE) &&
	    r->length > NBD_MAX_PAYLOAD) {
		snprintf(why, OMBRA_ERRMSG_LEN,
			 "length %u is more than the maximum block size %u",
			 r->length, NBD_MAX_PAYLOAD);
		return NBD_EINVAL;
	}
	if (r->type == NBD_CMD_FLUSH) {
		return 0;
	}
	size = proxy_volume_size(c->vol);
	if (r->offset > size || r->length > size - r->offset) {
		snprintf(why, OMBRA_ERRMSG_LEN,
			 "offset %llu + length %u beyond the export size %llu",
			 (unsigned long long)r->offset, r->length,
			 (unsigned long long)size);
		return is_write ? NBD_ENOSPC : NBD_EINVAL;
	}
	return 0;
}

/* A new request from a decoded header: counted in flight, holding a
 * reference on c.  NULL (connection closed) on out of memory. */
static struct nbd_req *nbd_req_new(struct nbd_conn *c,
				   const struct nbd_request *r)
{
	struct nbd_req *req = calloc(1, sizeof(*req));

	if (req == NULL) {
		log_error("nbd %s: out of memory for a request", c->peer);
		nbd_conn_close(c);
		return NULL;
	}
	req->c = c;
	req->hdr = *r;
	req->start_ns = uv_hrtime();
	req->charge = NBD_REQ_MIN_CHARGE;
	c->inflight++;
	c->inflight_bytes += req->charge;
	nbd_conn_ref(c);
	return req;
}

/* Give req a buffer of its length (READ, WRITE); ENOMEM if none. */
static void nbd_req_alloc_buf(struct nbd_req *req)
{
	struct nbd_conn *c = req->c;

	if (req->error != 0 || req->hdr.length == 0) {
		return;
	}
	req->buf = malloc(req->hdr.length);
	if (req->buf == NULL) {
		log_error("nbd %s: out of memory for a %u-byte %s", c->peer,
			  req->hdr.length, nbd_cmd_name(req->hdr.type));
		req->error = NBD_ENOMEM;
		return;
	}
	if (req->hdr.length > req->charge) {
		c->inflight_bytes += req->hdr.length - req->charge;
		req->charge = req->hdr.length;
	}
}

void nbd_cmd_on_header(struct nbd_conn *c)
{
	char why[OMBRA_ERRMSG_LEN];
	struct nbd_request r;
	struct nbd_req *req;

	nbd_request_decode(c->hdr, &r);
	if (r.magic != NBD_REQUEST_MAGIC) {
		nbd_conn_proto_error(c, "bad request magic 0x%08x", r.magic);
		return;
	}
	if (r.type == NBD_CMD_DISC) {
		log_debug("nbd %s: disconnect requested (%u requests in "
			  "flight)",
			  c->peer, c->inflight);
		nbd_metric_inc(c->srv->m.reqs[NBD_CMD_DISC], 1);
		nbd_conn_set_state(c, NBD_CONN_DRAIN);
		return;
	}
	if (r.type == NBD_CMD_WRITE && r.length > NBD_MAX_DISCARD) {
		nbd_conn_proto_error(c,
				     "WRITE of %u bytes (the maximum is %u, "
				     "payloads up to %u are discarded)",
				     r.length, NBD_MAX_PAYLOAD,
				     NBD_MAX_DISCARD);
		return;
	}
	req = nbd_req_new(c, &r);
	if (req == NULL) {
		return;
	}
	req->error = nbd_cmd_check(c, &r, why);
	if (req->error != 0) {
		log_info("nbd %s: %s offset %llu length %u refused (%s): %s",
			 c->peer, nbd_cmd_name(r.type),
			 (unsigned long long)r.offset, r.length,
			 nbd_errno_name(req->error), why);
	}
	switch (r.type) {
	case NBD_CMD_WRITE:
		nbd_req_alloc_buf(req);
		if (r.length == 0) {
			break;
		}
		c->cur = req;
		if (req->buf != NULL) {
			nbd_conn_set_state(c, NBD_CONN_REQ_PAYLOAD);
		} else {
			c->skip_left = r.length;
			nbd_conn_set_state(c, NBD_CONN_REQ_SKIP);
		}
		return;
	case NBD_CMD_READ:
		nbd_req_alloc_buf(req);
		if (req->error != 0 || r.length == 0) {
			break;
		}
		if (c->read_opts_set)
			proxy_io_read_opts(c->vol, r.offset, r.length, req->buf,
					   &c->read_opts, nbd_cmd_io_done, req);
		else
			proxy_io_read(c->vol, r.offset, r.length, req->buf,
				      nbd_cmd_io_done, req);
		return;
	case NBD_CMD_FLUSH:
		if (req->error != 0) {
			break;
		}
		proxy_io_flush(c->vol, nbd_cmd_io_done, req);
		return;
	case NBD_CMD_TRIM:
	case NBD_CMD_WRITE_ZEROES:
		if (req->error != 0 || r.length == 0) {
			break;
		}
		nbd_cmd_zero_next(req);
		return;
	default:
		break;
	}
	nbd_req_reply(req);
}

void nbd_cmd_on_payload(struct nbd_conn *c)
{
	struct nbd_req *req = c->cur;

	c->cur = NULL;
	nbd_conn_set_state(c, NBD_CONN_REQ_HDR);
	proxy_io_write(c->vol, req->hdr.offset, req->hdr.length, req->buf,
		       (req->hdr.flags & NBD_CMD_FLAG_FUA) != 0, NULL,
		       nbd_cmd_io_done, req);
}

void nbd_cmd_on_skipped(struct nbd_conn *c)
{
	struct nbd_req *req = c->cur;

	c->cur = NULL;
	nbd_conn_set_state(c, NBD_CONN_REQ_HDR);
	nbd_req_reply(req);
}
