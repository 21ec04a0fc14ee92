/* wtrack.h: read-your-writes guard for one volume: the versions this
 * proxy's acknowledged writes gave to recently written blocks.
 *
 * A STRONG read may be served by an in-sync replica.  If the replica's
 * view of the in-sync set is stale (it was just dropped from it, or it
 * refused a replication the primary then gave up on), it could answer an
 * older version of a block this proxy has just written.  Every read reply
 * carries each block's version; the engine compares them with the
 * versions recorded here and treats a lower one as a stale copy (tries
 * the next copy).  Versions only grow (epoch high bits, sequence low
 * bits), so "lower than what we wrote" always means stale.
 *
 * Bounded: a direct-mapped table of WTRACK_SLOTS blocks (16 bytes each,
 * allocated on the first write); a block evicted by a colliding one simply
 * loses the guard.  Trimmed blocks are forgotten (a trimmed block may read
 * back with version 0).
 *
 * Failure: out of memory leaves the table disabled (no guard), never an
 * error.  Loop thread only. */
#ifndef OMBRA_PROXY_WTRACK_H
#define OMBRA_PROXY_WTRACK_H

#include <stdint.h>

#define WTRACK_SLOTS 65536u

struct wtrack_slot {
	uint64_t block_plus1; /* 0 = empty */
	uint64_t version;
};

struct wtrack {
	struct wtrack_slot *slots; /* NULL until the first write */
};

/* Record that blocks [first, first+n) were written with version. */
void wtrack_written(struct wtrack *t, uint64_t first, uint64_t n,
		    uint64_t version);
/* Forget blocks [first, first+n) (trimmed). */
void wtrack_forget(struct wtrack *t, uint64_t first, uint64_t n);
/* The version this proxy last wrote to block, 0 if unknown. */
uint64_t wtrack_expected(const struct wtrack *t, uint64_t block);
/* Drop everything (the volume was re-created under the same name). */
void wtrack_reset(struct wtrack *t);

#endif
