/* nbd_conn.c: one NBD client connection: accept, input framing, output,
 * backpressure, close and reference counting (see nbd_internal.h).
 *
 * Input: bytes go into a 64 KiB buffer and are cut into the pieces the
 * current state expects (client flags, option header and data, request
 * header, WRITE payload); a large payload is read by the kernel straight
 * into the request's buffer once the buffer is empty.  Reading pauses
 * while an option waits for the engine, after DISC/ABORT, and while the
 * connection's requests hold NBD_CONN_MAX_INFLIGHT_BYTES or more.
 *
 * Failure: a read error or EOF closes the connection; requests still in
 * the engine finish later and their results are dropped.  A write that
 * cannot be queued closes the connection.  Out of memory for a
 * connection refuses it (logged). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "nbd_internal.h"

/* A handshake write: the bytes live after the request. */
struct nbd_tx {
	uv_write_t wr;
	struct nbd_conn *c;
	uint8_t data[];
};

void nbd_conn_ref(struct nbd_conn *c)
{
	c->refs++;
}

static void nbd_conn_free(struct nbd_conn *c)
{
	struct nbd_server *s = c->srv;

	if (c->vol != NULL) {
		proxy_volume_attach(c->vol, -1);
		proxy_volume_release(c->vol);
	}
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		s->conns = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	nbd_metric_inc(s->m.conns, -1);
	free(c->rx);
	free(c->opt_data);
	free(c->export_name);
	free(c->volume_name);
	free(c);
	nbd_server_unref(s);
}

void nbd_conn_unref(struct nbd_conn *c)
{
	if (--c->refs == 0) {
		nbd_conn_free(c);
	}
}

static void nbd_conn_closed_cb(uv_handle_t *h)
{
	nbd_conn_unref(h->data);
}

void nbd_conn_close(struct nbd_conn *c)
{
	if (c->state == NBD_CONN_CLOSED) {
		return;
	}
	if (c->inflight > 0) {
		log_debug("nbd %s: closing with %u requests in flight", c->peer,
			  c->inflight);
	}
	c->state = NBD_CONN_CLOSED;
	c->reading = false;
	uv_close((uv_handle_t *)&c->tcp, nbd_conn_closed_cb);
	uv_close((uv_handle_t *)&c->handshake_timer, nbd_conn_closed_cb);
	if (c->cur != NULL) {
		/* A WRITE whose payload never fully arrived. */
		struct nbd_req *req = c->cur;

		c->cur = NULL;
		nbd_req_free(req);
	}
}

void nbd_conn_proto_error(struct nbd_conn *c, const char *fmt, ...)
{
	char msg[OMBRA_ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warn("nbd %s: %s: closing the connection", c->peer, msg);
	nbd_metric_inc(c->srv->m.proto_errors, 1);
	nbd_conn_close(c);
}

void nbd_conn_set_state(struct nbd_conn *c, enum nbd_conn_state state)
{
	if (c->state == NBD_CONN_CLOSED) {
		return;
	}
	if (state == NBD_CONN_REQ_HDR && c->state < NBD_CONN_REQ_HDR) {
		uv_timer_stop(&c->handshake_timer);
	}
	c->state = state;
	c->hdr_got = 0;
}

static void nbd_tx_done(uv_write_t *wr, int status)
{
	struct nbd_tx *tx = (struct nbd_tx *)wr;
	struct nbd_conn *c = tx->c;

	free(tx);
	c->pending_tx--;
	if (status < 0 && status != UV_ECANCELED) {
		log_debug("nbd %s: write: %s", c->peer, uv_strerror(status));
		nbd_conn_close(c);
	}
	nbd_conn_kick(c);
	nbd_conn_unref(c);
}

void nbd_conn_send_copy(struct nbd_conn *c, const uv_buf_t *bufs, unsigned n)
{
	struct nbd_tx *tx;
	size_t len = 0;
	size_t off = 0;
	uv_buf_t buf;
	unsigned i;
	int rv;

	if (c->state == NBD_CONN_CLOSED) {
		return;
	}
	for (i = 0; i < n; i++) {
		len += bufs[i].len;
	}
	tx = malloc(sizeof(*tx) + len);
	if (tx == NULL) {
		log_error("nbd %s: out of memory for a %zu-byte reply", c->peer,
			  len);
		nbd_conn_close(c);
		return;
	}
	for (i = 0; i < n; i++) {
		if (bufs[i].len > 0) {
			memcpy(tx->data + off, bufs[i].base, bufs[i].len);
		}
		off += bufs[i].len;
	}
	tx->c = c;
	buf = uv_buf_init((char *)tx->data, (unsigned)len);
	rv = uv_write(&tx->wr, (uv_stream_t *)&c->tcp, &buf, 1, nbd_tx_done);
	if (rv != 0) {
		log_debug("nbd %s: write: %s", c->peer, uv_strerror(rv));
		free(tx);
		nbd_conn_close(c);
		return;
	}
	c->pending_tx++;
	nbd_conn_ref(c);
}

/* Bytes the current state still needs in c->hdr (0: not a header). */
static size_t nbd_conn_hdr_need(const struct nbd_conn *c)
{
	switch (c->state) {
	case NBD_CONN_CFLAGS:
		return NBD_CFLAGS_LEN;
	case NBD_CONN_OPT_HDR:
		return NBD_OPT_HDR_LEN;
	case NBD_CONN_REQ_HDR:
		return NBD_REQ_HDR_LEN;
	default:
		return 0;
	}
}

static bool nbd_conn_blocked(const struct nbd_conn *c)
{
	switch (c->state) {
	case NBD_CONN_OPT_WAIT:
	case NBD_CONN_DRAIN:
	case NBD_CONN_CLOSED:
		return true;
	case NBD_CONN_REQ_HDR:
		return c->inflight_bytes >= NBD_CONN_MAX_INFLIGHT_BYTES;
	default:
		return false;
	}
}

static size_t nbd_min(size_t a, uint64_t b)
{
	return b < a ? (size_t)b : a;
}

/* Consume up to avail bytes at p in the current state; returns how many
 * were used.  Calls the handler when a piece is complete. */
static size_t nbd_conn_consume(struct nbd_conn *c, const uint8_t *p,
			       size_t avail)
{
	size_t need = nbd_conn_hdr_need(c);
	size_t n;

	if (need > 0) {
		n = nbd_min(avail, need - c->hdr_got);
		memcpy(c->hdr + c->hdr_got, p, n);
		c->hdr_got += n;
		if (c->hdr_got < need) {
			return n;
		}
		c->hdr_got = 0;
		if (c->state == NBD_CONN_CFLAGS) {
			nbd_opt_on_cflags(c);
		} else if (c->state == NBD_CONN_OPT_HDR) {
			nbd_opt_on_header(c);
		} else {
			nbd_cmd_on_header(c);
		}
		return n;
	}
	switch (c->state) {
	case NBD_CONN_OPT_DATA:
		n = nbd_min(avail, c->opt_len - c->opt_got);
		memcpy(c->opt_data + c->opt_got, p, n);
		c->opt_got += (uint32_t)n;
		if (c->opt_got == c->opt_len) {
			nbd_opt_on_data(c);
		}
		return n;
	case NBD_CONN_REQ_PAYLOAD:
		n = nbd_min(avail, c->cur->hdr.length - c->cur->got);
		memcpy(c->cur->buf + c->cur->got, p, n);
		c->cur->got += n;
		if (c->cur->got == c->cur->hdr.length) {
			nbd_cmd_on_payload(c);
		}
		return n;
	case NBD_CONN_OPT_SKIP:
	case NBD_CONN_REQ_SKIP:
		n = nbd_min(avail, c->skip_left);
		c->skip_left -= n;
		if (c->skip_left == 0) {
			if (c->state == NBD_CONN_OPT_SKIP) {
				nbd_opt_on_skipped(c);
			} else {
				nbd_cmd_on_skipped(c);
			}
		}
		return n;
	default:
		return 0;
	}
}

static void nbd_conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct nbd_conn *c = h->data;

	(void)suggested;
	if (c->state == NBD_CONN_REQ_PAYLOAD && c->rx_start == c->rx_end &&
	    c->cur->hdr.length - c->cur->got >= NBD_RXBUF_LEN / 2) {
		/* Large payload: straight into the request's buffer. */
		c->direct = true;
		*buf =
		    uv_buf_init((char *)c->cur->buf + c->cur->got,
				(unsigned)(c->cur->hdr.length - c->cur->got));
		return;
	}
	c->direct = false;
	if (c->rx_start > 0) {
		memmove(c->rx, c->rx + c->rx_start, c->rx_end - c->rx_start);
		c->rx_end -= c->rx_start;
		c->rx_start = 0;
	}
	/* Length 0 (buffer full) makes libuv report UV_ENOBUFS; that cannot
	 * happen: reading stops before the buffer fills. */
	*buf = uv_buf_init((char *)c->rx + c->rx_end,
			   (unsigned)(NBD_RXBUF_LEN - c->rx_end));
}

static void nbd_conn_read_cb(uv_stream_t *stream, ssize_t nread,
			     const uv_buf_t *buf)
{
	struct nbd_conn *c = stream->data;

	(void)buf;
	if (nread < 0) {
		if (nread == UV_EOF) {
			if (c->state == NBD_CONN_REQ_HDR && c->hdr_got == 0) {
				log_debug("nbd %s: client closed the "
					  "connection",
					  c->peer);
			} else {
				log_info("nbd %s: client closed the "
					 "connection in the middle of a "
					 "message (%u requests in flight)",
					 c->peer, c->inflight);
			}
		} else {
			log_info("nbd %s: read: %s", c->peer,
				 uv_strerror((int)nread));
		}
		nbd_conn_close(c);
		return;
	}
	if (nread == 0) {
		return;
	}
	if (c->direct) {
		c->direct = false;
		c->cur->got += (uint64_t)nread;
		if (c->cur->got == c->cur->hdr.length) {
			nbd_cmd_on_payload(c);
		}
	} else {
		c->rx_end += (size_t)nread;
	}
	nbd_conn_kick(c);
}

void nbd_conn_kick(struct nbd_conn *c)
{
	size_t n;
	int rv;

	if (c->processing || c->state == NBD_CONN_CLOSED) {
		return;
	}
	c->processing = true;
	while (c->rx_start < c->rx_end && !nbd_conn_blocked(c)) {
		n = nbd_conn_consume(c, c->rx + c->rx_start,
				     c->rx_end - c->rx_start);
		c->rx_start += n;
		if (n == 0 && c->state != NBD_CONN_CLOSED) {
			/* Zero-length pieces are handled by the handlers
			 * themselves; a state that takes no input here is a
			 * bug, not a client's fault. */
			log_error("nbd %s: input stalled in state %d", c->peer,
				  (int)c->state);
			nbd_conn_close(c);
		}
	}
	c->processing = false;
	if (c->state == NBD_CONN_CLOSED) {
		return;
	}
	if (c->rx_start == c->rx_end) {
		c->rx_start = c->rx_end = 0;
	}
	if (c->state == NBD_CONN_DRAIN) {
		if (c->inflight == 0 && c->pending_tx == 0) {
			nbd_conn_close(c);
		} else if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = false;
		}
		return;
	}
	if (nbd_conn_blocked(c)) {
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = false;
		}
	} else if (!c->reading) {
		rv = uv_read_start((uv_stream_t *)&c->tcp, nbd_conn_alloc_cb,
				   nbd_conn_read_cb);
		if (rv != 0) {
			log_warn("nbd %s: read: %s", c->peer, uv_strerror(rv));
			nbd_conn_close(c);
			return;
		}
		c->reading = true;
	}
}

/* "ip:port" of the client for log lines. */
static void nbd_conn_peer_name(struct nbd_conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[48];
	int port = 0;

	snprintf(c->peer, sizeof(c->peer), "(unknown peer)");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) {
		return;
	}
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		uv_ip4_name(a, ip, sizeof(ip));
		port = ntohs(a->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		uv_ip6_name(a, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%d", ip, port);
	}
}

static void nbd_conn_handshake_timeout(uv_timer_t *t)
{
	struct nbd_conn *c = t->data;

	nbd_conn_proto_error(c, "no export chosen within %u ms of connecting",
			     c->srv->handshake_timeout_ms);
}

static void nbd_conn_refused_cb(uv_handle_t *h)
{
	struct nbd_conn *c = h->data;

	free(c->rx);
	free(c);
}

void nbd_conn_accept(struct nbd_server *s)
{
	struct nbd_conn *c;
	int rv;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		log_error("nbd: out of memory for a new connection");
		return;
	}
	c->rx = malloc(NBD_RXBUF_LEN);
	rv = uv_tcp_init(s->loop, &c->tcp);
	if (rv != 0) {
		log_error("nbd: new connection: %s", uv_strerror(rv));
		free(c->rx);
		free(c);
		return;
	}
	c->tcp.data = c;
	c->srv = s;
	rv = uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&c->tcp);
	if (rv != 0 || c->rx == NULL) {
		log_error("nbd: accept: %s",
			  rv != 0 ? uv_strerror(rv) : "out of memory");
		uv_close((uv_handle_t *)&c->tcp, nbd_conn_refused_cb);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	/* Find peers that vanished without a FIN (60 s idle). */
	uv_tcp_keepalive(&c->tcp, 1, 60);
	nbd_conn_peer_name(c);
	uv_timer_init(s->loop, &c->handshake_timer);
	c->handshake_timer.data = c;
	uv_timer_start(&c->handshake_timer, nbd_conn_handshake_timeout,
		       s->handshake_timeout_ms, 0);
	c->refs = 2; /* the TCP handle and the timer */
	s->refs++;
	c->next = s->conns;
	if (s->conns != NULL) {
		s->conns->prev = c;
	}
	s->conns = c;
	nbd_metric_inc(s->m.conns, 1);
	nbd_metric_inc(s->m.conns_total, 1);
	log_debug("nbd %s: connected", c->peer);
	nbd_opt_greet(c);
	nbd_conn_kick(c);
}
