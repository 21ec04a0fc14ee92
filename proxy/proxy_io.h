/* proxy_io.h: the proxy's block I/O engine, the one interface the gRPC
 * VolumeService (proxy/service_volume.c) and the NBD server (proxy/nbd*.c)
 * use to reach volume data.  It resolves a volume by name (cached volume
 * record and shard map, kept current by metad's Watch stream), splits I/O
 * at segment boundaries, sends writes to each segment's primary with its
 * lease epoch, reads from the lowest-latency copy the read's consistency
 * allows (route.h), and retries on a refreshed shard map when a node refuses
 * (FAILED_PRECONDITION: stale epoch / not an in-sync copy) or is
 * unreachable.
 *
 * Threads: every function must be called on the proxy's loop thread, and
 * every callback runs there, never from inside the call that started it.
 *
 * Units: bytes.  Offsets and lengths need not be 4 KiB-aligned: reads are
 * widened to whole blocks and trimmed; unaligned writes are merged at the
 * primary (read-modify-write in the segment's write order).  At most
 * PROXY_IO_MAX_BYTES per call.
 *
 * Errors: every callback gets a struct proxy_status: code GRPC_STATUS_OK,
 * or a gRPC code with a message that says what was wrong, e.g.
 * INVALID_ARGUMENT "offset 8192 + length 4096 beyond volume size 8192",
 * NOT_FOUND "volume x does not exist", UNAVAILABLE "no copy of segment 3
 * reachable", DATA_LOSS.  A write that fails may or may not have been
 * applied (like a disk); it was never acknowledged. */
#ifndef OMBRA_PROXY_IO_H
#define OMBRA_PROXY_IO_H

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Largest read, write or zero range in one call (bytes). */
#define PROXY_IO_MAX_BYTES (32u * 1024u * 1024u)

struct proxy;	     /* the daemon (proxy/proxy.h) */
struct proxy_volume; /* an open volume: reference-counted */

struct proxy_status {
	grpc_status_code code;
	char message[OMBRA_ERRMSG_LEN];
};

/* vol: a new reference on success (release with proxy_volume_release()),
 * NULL on error. */
typedef void (*proxy_open_cb)(void *arg, const struct proxy_status *st,
			      struct proxy_volume *vol);

/* Look up a volume by name (cache first, metad otherwise). */
void proxy_volume_open(struct proxy *p, const char *name, proxy_open_cb cb,
		       void *arg);

/* Drop a reference taken by proxy_volume_open(). */
void proxy_volume_release(struct proxy_volume *vol);

/* The volume's current size in bytes (grows after a resize) and name
 * (owned by vol). */
uint64_t proxy_volume_size(const struct proxy_volume *vol);
const char *proxy_volume_name(const struct proxy_volume *vol);

/* names/sizes: n entries owned by the engine, valid during the callback. */
typedef void (*proxy_list_cb)(void *arg, const struct proxy_status *st,
			      const char *const *names, const uint64_t *sizes,
			      size_t n);

/* A block-device client attached vol read-write (delta +1: take the
 * volume's writer lease now rather than at the first write, and keep it
 * while attached) or detached (-1: the last detach releases it).  No-op
 * with single-writer volumes off.  Never fails: a lease that cannot be
 * taken is logged, and writes then fail with the reason. */
void proxy_volume_attach(struct proxy_volume *vol, int delta);

/* Every volume in the cluster (for NBD_OPT_LIST). */
void proxy_volume_list(struct proxy *p, proxy_list_cb cb, void *arg);

/* version: for writes, the highest version the written blocks received
 * (a read-your-writes token); for reads, the highest version read. */
typedef void (*proxy_io_cb)(void *arg, const struct proxy_status *st,
			    uint64_t version);

/* Read len bytes at off into buf (len bytes, caller-owned, must stay valid
 * until cb) at the proxy's block-device consistency (--nbd-consistency,
 * STRONG by default).  len 0 succeeds at once (still through cb). */
void proxy_io_read(struct proxy_volume *vol, uint64_t off, uint64_t len,
		   void *buf, proxy_io_cb cb, void *arg);

/* What a read may return (ReadRequest.consistency and its bounds,
 * docs/proxy.md "Routing and consistency"): consistency is the raw
 * ombra.v1.Consistency value (0 = STRONG); max_staleness_ms and
 * min_version (a WriteResponse.version_token) apply to BOUNDED only. */
struct proxy_read_opts {
	int consistency;
	uint64_t max_staleness_ms;
	uint64_t min_version;
};

/* true if o is valid; otherwise false with errmsg (len bytes) saying why
 * (answered INVALID_ARGUMENT). */
bool proxy_read_opts_check(const struct proxy_read_opts *o, char *errmsg,
			   size_t len);

/* proxy_io_read() at the consistency o (copied; NULL = STRONG; checked
 * with proxy_read_opts_check(), INVALID_ARGUMENT through cb otherwise).
 * STRONG reads go to home copies (and, while this proxy holds the
 * volume's writer lease, to foreign copies at the segment's latest
 * version); BOUNDED and EVENTUAL reads may be served by shadows and cache
 * entries, the nearest first. */
void proxy_io_read_opts(struct proxy_volume *vol, uint64_t off, uint64_t len,
			void *buf, const struct proxy_read_opts *o,
			proxy_io_cb cb, void *arg);

/* Write len bytes from buf (caller-owned until cb).  Acknowledged (OK) only
 * when durable on the primary and every in-sync replica; fua is implied and
 * accepted.  With single-writer volumes (vlease.h) the first write takes
 * the volume's writer lease and every write carries its epoch; a write
 * fails FAILED_PRECONDITION (another proxy holds the lease, or a node
 * fenced this one) or UNAVAILABLE (the lease expired, metad unreachable)
 * while this proxy does not hold it.  request_id: NULL (the engine makes one)
 * or the client's id, reused on retries so a retried write is not applied
 * twice. */
void proxy_io_write(struct proxy_volume *vol, uint64_t off, uint64_t len,
		    const void *buf, bool fua, const char *request_id,
		    proxy_io_cb cb, void *arg);

/* Write zeros over [off, off+len): TRIM and WRITE_ZEROES (the range reads
 * back as zeros afterwards). */
void proxy_io_zero(struct proxy_volume *vol, uint64_t off, uint64_t len,
		   bool fua, const char *request_id, proxy_io_cb cb, void *arg);

/* Every write acknowledged before this call is durable when cb runs OK. */
void proxy_io_flush(struct proxy_volume *vol, proxy_io_cb cb, void *arg);

#endif
