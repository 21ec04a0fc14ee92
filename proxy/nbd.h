/* nbd.h: the proxy's NBD server (protocol: the NBD project's proto.md).
 * It exports every volume under its name: fixed newstyle handshake with
 * NBD_OPT_GO/INFO/LIST/ABORT/EXPORT_NAME, then simple replies to READ,
 * WRITE (FUA), FLUSH, TRIM, WRITE_ZEROES and DISC, pipelined (replies in
 * completion order, matched by handle), several connections per export
 * (NBD_FLAG_CAN_MULTI_CONN).  All data goes through proxy/proxy_io.h.
 * An export name "VOLUME@LEVEL" reads VOLUME at that consistency level
 * (nbd_consistency_parse()) instead of the proxy's --nbd-consistency.
 *
 * Threads: everything runs on the proxy's libuv loop; nothing here blocks.
 *
 * Failure: nbd_server_start() fails with OMBRA_EINVAL on a bad listen
 * address and OMBRA_EIO when the socket cannot be bound.  After start, a
 * client that breaks the protocol (bad magic, unknown client flags,
 * oversized payload) loses its connection and the server logs why; other
 * clients are not affected.  Engine errors become NBD errno values in the
 * reply (EINVAL, ENOSPC, EIO) and are logged with the engine's message. */
#ifndef OMBRA_PROXY_NBD_H
#define OMBRA_PROXY_NBD_H

#include <uv.h>

/* The port the IANA assigned to NBD. */
#define NBD_DEFAULT_PORT 10809

struct proxy;
struct metrics_registry;
struct nbd_server;
struct proxy_read_opts;

/* Read consistency of NBD reads, "strong", "eventual" or "bounded:MS"
 * (MS 1 .. 86400000, the staleness bound in ms): the proxy's
 * --nbd-consistency and the export-name suffix "VOLUME@LEVEL" (e.g.
 * "vol1@eventual", docs/nbd.md).  Fills *o (min_version 0) and returns 0;
 * -1 when word is none of them (*o untouched). */
int nbd_consistency_parse(const char *word, struct proxy_read_opts *o);

/* Listen on listen ("host:port", "[v6]:port", ":port"; port 0 picks a free
 * one, see nbd_server_port()).  loop, p: not owned, must outlive the
 * server (p until the last in-flight engine call has returned).  reg: NULL
 * or the daemon's metrics registry (not owned, must outlive the server):
 * nbd_connections, nbd_connections_total, nbd_requests_total{op},
 * nbd_request_errors_total{op}, nbd_request_seconds{op},
 * nbd_read_bytes_total, nbd_written_bytes_total,
 * nbd_protocol_errors_total.  The host name is resolved with
 * getaddrinfo(): call this before the loop runs or with a numeric host.
 * *out: the server on success (stop it with nbd_server_stop()), NULL on
 * error with the reason in errmsg (OMBRA_ERRMSG_LEN). */
int nbd_server_start(uv_loop_t *loop, struct proxy *p, const char *listen,
		     struct metrics_registry *reg, struct nbd_server **out,
		     char *errmsg);

/* The bound TCP port (useful after listening on port 0). */
int nbd_server_port(const struct nbd_server *s);

/* Close the listener and every connection (in-flight requests get no
 * reply).  Safe with engine calls in flight: their results are dropped
 * when they return.  The server frees itself once its handles are closed
 * and the last call has returned, so the loop must keep running (as it
 * does when the daemon closes its handles and runs the loop to the end).
 * s is invalid after this call; NULL is a no-op. */
void nbd_server_stop(struct nbd_server *s);

#endif
