/* propagate.h: asynchronous propagation of this proxy's acknowledged
 * writes to the foreign copies of their segments (docs/shadows.md
 * "Propagation (proxy)", docs/proxy.md "Propagation to shadows").
 *
 * Two layers:
 *   - the queue (proxy/propq.c): pure logic, no sockets, driven by a send
 *     function and explicit times so that tests/unit/test_propq.c can run
 *     it deterministically: per (target node, segment) chains in chain
 *     order, batching of consecutive writes, the memory bound and the drop
 *     policy, lag counters;
 *   - the proxy glue (proxy/propagate.c): called by the I/O engine when a
 *     primary acknowledged a write, finds the targets (shadows from the
 *     shard map, the prefetch engine's cache holder), sends
 *     StoreService.Replicate (shadow = true) with retries, exports metrics.
 *
 * Units: bytes, ms, 4 KiB blocks numbered from the start of the volume.
 * Loop thread only.  Failure: out of memory drops the write for
 * propagation (counted as dropped); anti-entropy on stored repairs the
 * copy.  Nothing here can fail or delay a client's write. */
#ifndef OMBRA_PROXY_PROPAGATE_H
#define OMBRA_PROXY_PROPAGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROPQ_BLOCK 4096u

/* ---------------------------------------------------------------- queue */

/* One acknowledged write of one segment, as given to propq_add(). */
struct propq_write {
	uint64_t volume_id, seg, seg_size;
	uint64_t lease_epoch;	  /* the epoch the write was sent with */
	uint64_t primary_node_id; /* the node that acknowledged it */
	uint64_t prev_version;	  /* 0 = unknown (see propq_add) */
	uint64_t version;
	uint64_t acked_unix_ms;
	uint64_t off, len;   /* volume byte range, inside the segment */
	const uint8_t *data; /* len bytes (copied), or NULL: zeros (trim) */
};

/* What to send for one (target, segment): one or more consecutive writes
 * merged.  Arrays are owned by the queue and valid until propq_done(). */
struct propq_block {
	uint64_t index;	     /* block within the volume */
	uint64_t version;    /* of the write that last covered it wholly */
	const uint8_t *data; /* PROPQ_BLOCK bytes, NULL = zeros */
	uint32_t crc32c;     /* crc_block() of data + identity + version */
};

struct propq_batch {
	uint64_t node;
	uint64_t volume_id, seg, seg_size, lease_epoch, primary_node_id;
	/* prev_version of the first write, version of the last; when the
	 * first write's prev_version is unknown (0), prev_version = version
	 * so the receiver's watermark moves only if it was already there. */
	uint64_t prev_version, version;
	uint64_t acked_unix_ms; /* of the last write */
	struct propq_block *blocks;
	size_t n_blocks;
	uint64_t *invalidate; /* partial blocks the batch cannot rebuild */
	size_t n_invalidate;
	unsigned n_writes;
	uint64_t bytes; /* charged to the queue for these writes */
	void *priv;	/* the queue's */
};

/* Start sending b (the queue keeps ownership); the outcome must be
 * reported with propq_done(), never from inside this call.  Return
 * nonzero if the send could not be started (treated as PROPQ_RETRY). */
typedef int (*propq_send_fn)(void *ctx, struct propq_batch *b);

enum propq_outcome {
	PROPQ_OK,    /* applied (or the node holds no copy: dropped there) */
	PROPQ_RETRY, /* UNAVAILABLE & co: again after a backoff */
	PROPQ_DROP,  /* FAILED_PRECONDITION (epoch) or a bad request */
};

struct propq_config {
	uint64_t max_bytes;	  /* queue memory bound, > 0 */
	uint64_t max_batch_bytes; /* data bytes per Replicate, > 0 */
	unsigned max_batch_writes;
	uint64_t backoff_min_ms, backoff_max_ms;
	/* A chain that gets its first write waits this long (ms) before it
	 * is sent, unless hurried (propq_hurry): docs/proxy.md "Linger". */
	uint64_t linger_ms;
};

struct propq;

/* send/ctx: the transport.  Returns OMBRA_ENOMEM or 0. */
int propq_create(const struct propq_config *cfg, propq_send_fn send, void *ctx,
		 struct propq **out);
/* Frees everything, batches in flight included: call only when no
 * propq_done() can follow. */
void propq_destroy(struct propq *q);

/* Queue w for each of the n targets (node ids, duplicates ignored).  The
 * whole 4 KiB blocks of the range are copied once (shared by the targets);
 * the partial head/tail blocks of an unaligned write become
 * invalidate_blocks.  Each target is charged the copied bytes plus a fixed
 * overhead per entry; while the total is above max_bytes the oldest
 * queued (not in flight) entry of the target with the most queued bytes is
 * dropped and counted.  Returns the number of targets queued (0 on out of
 * memory, counted as dropped). */
unsigned propq_add(struct propq *q, const struct propq_write *w,
		   const uint64_t *targets, unsigned n, uint64_t now_ms);

/* Send every chain that is idle, has queued writes and whose linger or
 * backoff has passed.  Returns the time (ms, same clock as now_ms) of the
 * next linger or backoff expiry, or UINT64_MAX when nothing waits. */
uint64_t propq_kick(struct propq *q, uint64_t now_ms);

/* Outcome of a batch handed to send; b is invalid afterwards. */
void propq_done(struct propq *q, struct propq_batch *b, enum propq_outcome o,
		uint64_t now_ms);

/* True if the queue holds, for node's copy of (volume_id, seg), a write
 * of version >= version, queued (lingering included) or in flight, and
 * that chain is not backing off after a failure: a Replicate that may
 * bring the copy to version is under way or about to be sent.
 * Read-only. */
bool propq_pending(const struct propq *q, uint64_t node, uint64_t volume_id,
		   uint64_t seg, uint64_t version, uint64_t now_ms);

/* End the linger of node's chain of (volume_id, seg): it is due at
 * now_ms (the caller then runs propq_kick).  No effect on a chain in
 * flight or backing off.  Returns true if a queued chain was made due. */
bool propq_hurry(struct propq *q, uint64_t node, uint64_t volume_id,
		 uint64_t seg, uint64_t now_ms);

/* Per target node, for metrics. */
struct propq_target_stats {
	uint64_t node;
	uint64_t queued_writes, queued_bytes; /* in flight included */
	uint64_t oldest_ms; /* enqueue time of the oldest entry; 0 = none */
	uint64_t sent_writes, dropped_writes; /* since creation */
	uint64_t inflight_batches;
};
/* Calls fn for every target ever queued to. */
void propq_targets(const struct propq *q,
		   void (*fn)(void *arg, const struct propq_target_stats *s),
		   void *arg);
/* Calls fn(arg, volume_id, oldest_ms) for every volume with queued writes
 * (oldest_ms: enqueue time of its oldest entry over every target). */
void propq_volumes(const struct propq *q,
		   void (*fn)(void *arg, uint64_t volume_id,
			      uint64_t oldest_ms),
		   void *arg);
/* Total charged bytes and entries. */
uint64_t propq_bytes(const struct propq *q);
uint64_t propq_entries(const struct propq *q);

/* ---------------------------------------------------------------- proxy */

struct proxy;
struct proxy_volume;
struct propagate;

/* max_bytes: the queue bound (--propagate-max-bytes); linger_ms: how long
 * a segment's first queued write waits before it is sent
 * (--propagate-linger-ms, 0 = at once).  Starts a timer on p->loop
 * (retries, metrics every second). */
int propagate_create(struct proxy *p, uint64_t max_bytes, uint64_t linger_ms,
		     struct propagate **out, char *errmsg);
/* Stop sending (shutdown): batches in flight finish CANCELLED. */
void propagate_stop(struct propagate *g);
/* After every node channel closed (no call can complete any more). */
void propagate_destroy(struct propagate *g);

/* Called after every Replicate answer to node for (volume_id, seg), OK or
 * not (not during shutdown).  Loop thread. */
typedef void (*propagate_done_fn)(void *ctx, uint64_t node, uint64_t volume_id,
				  uint64_t seg);

/* Set the one answer hook (the I/O engine: reads waiting for a copy to
 * catch up, see propagate_pending()); fn NULL removes it. */
void propagate_set_done_hook(struct propagate *g, propagate_done_fn fn,
			     void *ctx);

/* propq_pending() on the proxy's queue, now: a read that needs node's copy
 * of the segment at version may wait for this proxy's own propagation
 * (about one local round trip) instead of going to a remote home copy.
 * False when g is NULL or stopped. */
bool propagate_pending(const struct propagate *g, uint64_t node,
		       uint64_t volume_id, uint64_t seg, uint64_t version);

/* A read waits for the propagation propagate_pending() found: end its
 * linger (propq_hurry) so it is sent now.  No-op if g is NULL or
 * stopped. */
void propagate_hurry(struct propagate *g, uint64_t node, uint64_t volume_id,
		     uint64_t seg);

/* Wall clock (Unix ms) of ReplicateRequest.acked_unix_ms. */
uint64_t propagate_unix_ms(void);

/* The primary node acknowledged a write (data != NULL) or zero (data ==
 * NULL) of [off, off+len) inside segment seg with prev_version -> version,
 * sent with lease_epoch.  Queues it for every shadow of the segment in
 * vol's shard map and for the prefetch engine's cache holder, if any.
 * sent_unix_ms: propagate_unix_ms() when the write was first sent to the
 * primary; it becomes ReplicateRequest.acked_unix_ms, the time at which a
 * shadow at this version counts as confirmed current (docs/shadows.md):
 * every write acknowledged before the first send was applied before this
 * one, so none of them is newer.  The time of the acknowledgement would
 * overstate it: a newer write of the segment may be acknowledged first
 * (BOUNDED reads were served up to 22 ms staler than their bound).
 * data is copied; never blocks, never fails the write. */
void propagate_write(struct propagate *g, struct proxy_volume *vol,
		     uint64_t seg, uint64_t off, uint64_t len, const void *data,
		     uint64_t lease_epoch, uint64_t primary,
		     uint64_t prev_version, uint64_t version,
		     uint64_t sent_unix_ms);

#endif
