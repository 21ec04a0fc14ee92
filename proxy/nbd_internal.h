/* nbd_internal.h: the NBD server's objects and the functions its files
 * share (nbd_server.c: listener and metrics; nbd_conn.c: connection
 * lifecycle, input framing, output; nbd_option.c: option haggling;
 * nbd_cmd.c: transmission).  Not for use outside proxy/nbd*.c.
 *
 * A connection is a state machine (enum nbd_conn_state).  Input is framed
 * by nbd_conn.c, which calls the phase's handler each time a fixed-size
 * header, an option's data or a write's payload is complete.  A handler
 * may start engine calls; their callbacks run later on the loop.
 *
 * Lifetime: a connection is reference-counted: one reference for each of
 * its two handles, TCP and handshake timer (dropped in their close
 * callbacks), one per request (struct
 * nbd_req, from header to reply written), one per option reply being
 * written and one per engine call of the handshake.  It is freed when
 * the count reaches zero, so a client that disconnects mid-request only
 * makes the late results be dropped. */
#ifndef OMBRA_PROXY_NBD_INTERNAL_H
#define OMBRA_PROXY_NBD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "nbd_proto.h"
#include "proxy/proxy_io.h"

/* Input buffer of a connection (headers, small payloads). */
#define NBD_RXBUF_LEN (64u * 1024u)
/* Largest READ or WRITE payload (advertised as the maximum block size). */
#define NBD_MAX_PAYLOAD PROXY_IO_MAX_BYTES
/* A WRITE larger than NBD_MAX_PAYLOAD but at most this is read and
 * discarded and answered EINVAL; a larger one closes the connection. */
#define NBD_MAX_DISCARD (64u * 1024u * 1024u)
/* Payload bytes in flight per connection before the server stops reading
 * its requests (backpressure); requests without a buffer count
 * NBD_REQ_MIN_CHARGE. */
#define NBD_CONN_MAX_INFLIGHT_BYTES (64u * 1024u * 1024u)
#define NBD_REQ_MIN_CHARGE 4096u
/* Option data kept in memory (a 4096-byte export name with room for info
 * requests); longer data up to NBD_OPT_MAX_DISCARD is skipped and
 * answered NBD_REP_ERR_TOO_BIG, longer still closes the connection. */
#define NBD_OPT_MAX_LEN (16u * 1024u)
#define NBD_OPT_MAX_DISCARD (1024u * 1024u)
/* A client must have chosen an export this long after connecting. */
#define NBD_HANDSHAKE_TIMEOUT_MS 30000u
/* Advertised block sizes. */
#define NBD_BLOCK_MIN 1u
#define NBD_BLOCK_PREFERRED 4096u
#define NBD_BLOCK_MAX NBD_MAX_PAYLOAD

/* What every export supports. */
#define NBD_TRANSMISSION_FLAGS                                                 \
	(NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |        \
	 NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES |                     \
	 NBD_FLAG_CAN_MULTI_CONN)

/* Handshake states come before NBD_CONN_REQ_HDR (the code compares). */
enum nbd_conn_state {
	NBD_CONN_CFLAGS,      /* greeting sent, waiting for client flags */
	NBD_CONN_OPT_HDR,     /* waiting for an option header */
	NBD_CONN_OPT_DATA,    /* reading an option's data */
	NBD_CONN_OPT_SKIP,    /* skipping an oversized option's data */
	NBD_CONN_OPT_WAIT,    /* an option waits for the engine */
	NBD_CONN_REQ_HDR,     /* transmission: waiting for a request */
	NBD_CONN_REQ_PAYLOAD, /* reading a WRITE's payload into c->cur */
	NBD_CONN_REQ_SKIP,    /* skipping a refused WRITE's payload */
	NBD_CONN_DRAIN,	      /* DISC/ABORT: no input; close when all sent */
	NBD_CONN_CLOSED,      /* handle closing or closed */
};

struct metric;

struct nbd_metrics {
	struct metric *conns;	    /* gauge */
	struct metric *conns_total; /* counter */
	struct metric *proto_errors;
	struct metric *read_bytes;
	struct metric *written_bytes;
	struct metric *reqs[NBD_CMD_COUNT + 1]; /* last: unknown commands */
	struct metric *errors[NBD_CMD_COUNT + 1];
	struct metric *seconds[NBD_CMD_COUNT + 1];
};

struct nbd_conn;

struct nbd_server {
	uv_loop_t *loop;
	struct proxy *proxy;
	uv_tcp_t listener;
	int port;
	bool stopping;
	unsigned handshake_timeout_ms; /* NBD_HANDSHAKE_TIMEOUT_MS; tests */
	unsigned refs; /* the listener handle + one per connection */
	struct nbd_conn *conns;
	struct nbd_metrics m;
};

/* One transmission request, from its header until its reply is written. */
struct nbd_req {
	struct nbd_conn *c;
	struct nbd_request hdr;
	uint32_t error;	    /* NBD errno for the reply */
	uint8_t *buf;	    /* READ data / WRITE payload, or NULL */
	uint64_t got;	    /* WRITE payload bytes received */
	uint64_t charge;    /* counted in c->inflight_bytes */
	uint64_t zero_done; /* TRIM/WRITE_ZEROES bytes already zeroed */
	uint64_t start_ns;
	uint8_t reply[NBD_SIMPLE_REPLY_LEN];
	uv_write_t wr;
};

struct nbd_conn {
	struct nbd_server *srv;
	struct nbd_conn *prev;
	struct nbd_conn *next;
	uv_tcp_t tcp;
	uv_timer_t handshake_timer; /* running until transmission */
	enum nbd_conn_state state;
	unsigned refs;
	unsigned inflight;	 /* live struct nbd_req */
	unsigned pending_tx;	 /* handshake writes not yet completed */
	uint64_t inflight_bytes; /* sum of the requests' charge */
	bool reading;
	bool direct;	 /* the last alloc handed out c->cur's buffer */
	bool processing; /* inside nbd_conn_process() */
	bool no_zeroes;
	char peer[64];

	/* Input framing. */
	uint8_t *rx;
	size_t rx_start;
	size_t rx_end;
	uint8_t hdr[NBD_REQ_HDR_LEN];
	size_t hdr_got;
	uint64_t skip_left;

	/* Option haggling. */
	uint32_t opt;
	uint32_t opt_len;
	uint32_t opt_got;
	uint8_t *opt_data;
	bool want_name;
	bool want_block_size;
	char *export_name; /* as the client sent it */
	char *volume_name; /* export_name without an "@LEVEL" suffix */
	/* With a suffix: what its reads may return; else the proxy's
	 * default (proxy_io_read()). */
	struct proxy_read_opts read_opts;
	bool read_opts_set;

	/* Transmission. */
	struct proxy_volume *vol;
	struct nbd_req *cur;
};

/* nbd_server.c */
void nbd_metric_inc(struct metric *m, double by);
void nbd_server_unref(struct nbd_server *s);

/* nbd_conn.c */
/* Accept a pending connection on s's listener and send the greeting. */
void nbd_conn_accept(struct nbd_server *s);
/* Close the connection (idempotent).  In-flight requests keep it alive
 * until they return; their results are dropped. */
void nbd_conn_close(struct nbd_conn *c);
void nbd_conn_ref(struct nbd_conn *c);
void nbd_conn_unref(struct nbd_conn *c);
/* Close for a protocol violation: log fmt at warn level, count it. */
void nbd_conn_proto_error(struct nbd_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Queue a copy of n buffers as one write.  On failure the connection is
 * closed (the caller need not check). */
void nbd_conn_send_copy(struct nbd_conn *c, const uv_buf_t *bufs, unsigned n);
/* Parse buffered input and resume or pause reading; call after a state
 * change that may unblock input (engine call done, reply written). */
void nbd_conn_kick(struct nbd_conn *c);
/* Enter state, resetting the framing counters. */
void nbd_conn_set_state(struct nbd_conn *c, enum nbd_conn_state state);

/* nbd_option.c */
void nbd_opt_greet(struct nbd_conn *c);
void nbd_opt_on_cflags(struct nbd_conn *c);  /* c->hdr: 4 bytes */
void nbd_opt_on_header(struct nbd_conn *c);  /* c->hdr: 16 bytes */
void nbd_opt_on_data(struct nbd_conn *c);    /* c->opt_data complete */
void nbd_opt_on_skipped(struct nbd_conn *c); /* oversized data skipped */

/* nbd_cmd.c */
void nbd_cmd_on_header(struct nbd_conn *c);  /* c->hdr: 28 bytes */
void nbd_cmd_on_payload(struct nbd_conn *c); /* c->cur's payload read */
void nbd_cmd_on_skipped(struct nbd_conn *c); /* c->cur's payload skipped */
/* Free a request and drop its reference on the connection. */
void nbd_req_free(struct nbd_req *req);

#endif
