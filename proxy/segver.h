/* segver.h: the latest version of each segment of one volume as known by
 * the proxy that holds the volume's writer lease (docs/shadows.md "Which
 * copy may serve a read", single-writer volumes; docs/proxy.md "What L
 * is").
 *
 * While this proxy holds the lease, every write of the volume passes
 * through it, so the highest version among (a) the versions its write
 * answers gave (StoreWriteResponse.version) and (b) the segment_version of
 * reads answered by the segment's primary is the segment's latest version
 * L.  A foreign copy whose watermark is >= L then holds every block at its
 * latest version; STRONG reads may use it with min_version = L (route.h).
 *
 * Tracking: a segment's slot is claimed when a request of it (a write, or
 * a read at its primary) is sent and the slot does not track it yet; from
 * then on every answer of the segment raises the slot's version (max).
 * The slot knows L once a request sent at or after the claim is answered
 * (segver_sent() gives each send a token; the claim remembers the
 * claiming send's token):
 *   - every write of the segment acknowledged before that request was
 *     sent was versioned by the primary before the request reached it, so
 *     the answer is at least its version;
 *   - every write acknowledged after the claim raised the slot itself.
 * Writes still in flight are acknowledged to no client yet and raise the
 * slot when they are.  An answer of a request sent before the claim (two
 * writes of a segment may be answered in any order) raises the version
 * but makes nothing known: it could be lower than an answer the slot
 * never saw.  This learns on write-heavy volumes too, where a read at the
 * primary rarely escapes a racing write (the first design learned only
 * from such unraced reads).
 *
 * Knowledge is tied to one lease epoch: segver_reset() at every new grant
 * forgets everything, and answers to requests sent under another epoch
 * are ignored (someone else may have written in between).  A write that
 * failed (may or may not have been applied at a version this proxy never
 * saw) forgets its segment.
 *
 * Bounded memory: a direct-mapped table of SEGVER_SLOTS segments (32 bytes
 * each, allocated on first use); a claim may evict a colliding segment,
 * which is simply unknown again (reads go home until it is known again).
 * A segment never written is known at version 0 from a read at its
 * primary.
 *
 * Failure: out of memory leaves the table empty (every segment unknown),
 * never an error.  Loop thread only; pure (tests/unit/test_segver.c). */
#ifndef OMBRA_PROXY_SEGVER_H
#define OMBRA_PROXY_SEGVER_H

#include <stdbool.h>
#include <stdint.h>

#define SEGVER_SLOTS 4096u

struct segver_slot {
	uint64_t seg_plus1; /* 0 = empty */
	uint64_t version;   /* max answer since the claim */
	uint64_t claim;	    /* token of the claiming send */
	bool known;	    /* version is L (see above) */
};

struct segver {
	uint64_t epoch;		   /* the lease epoch the table is for */
	uint64_t sends;		   /* last token given */
	struct segver_slot *slots; /* NULL until the first claim */
};

/* A new lease epoch (0: no lease): forget everything. */
void segver_reset(struct segver *s, uint64_t epoch);

/* A request of seg (a write, or a read at its primary) is being sent
 * (writes: the first send only): claims seg's slot if it does not track
 * seg, and it is empty or may_evict (the caller passes false for writes
 * of segments without a foreign copy: only segments read from foreign
 * copies need L, and on a volume with more written segments than slots
 * such writes evicted the read ones).  Returns the send's token for the
 * answer's call (never 0). */
uint64_t segver_sent(struct segver *s, uint64_t seg, bool may_evict);

/* A write of seg sent under lease epoch epoch with token was acknowledged
 * with version.  Ignored when epoch is 0 or not the table's. */
void segver_write_acked(struct segver *s, uint64_t epoch, uint64_t seg,
			uint64_t version, uint64_t token);

/* A write of seg failed (it may have been applied at a version this proxy
 * never saw): seg is unknown again, until a new claim. */
void segver_write_failed(struct segver *s, uint64_t seg);

/* A read of seg at its primary, sent under lease epoch epoch with token,
 * answered segment_version version (0: never written).  Ignored when
 * epoch is 0 or not the table's. */
void segver_read_primary(struct segver *s, uint64_t epoch, uint64_t seg,
			 uint64_t version, uint64_t token);

/* True if seg's latest version is known under epoch (not for another
 * epoch's table), in *version: 0 for a segment never written (a read at
 * the primary answered 0 and nothing was written since), whose copies all
 * hold zeros or nothing. */
bool segver_known(const struct segver *s, uint64_t epoch, uint64_t seg,
		  uint64_t *version);

/* Free the table (the struct itself is the caller's). */
void segver_free(struct segver *s);

#endif
