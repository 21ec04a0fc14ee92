/* segver.h: the latest version of each segment of one volume as known by
 * the proxy that holds the volume's writer lease (docs/shadows.md "Which
 * copy may serve a read", single-writer volumes).
 *
 * While this proxy holds the lease, every write of the volume passes
 * through it, so the highest version among (a) the versions its write
 * answers gave (StoreWriteResponse.version) and (b) the segment_version of
 * reads answered by the segment's primary is the segment's latest version
 * L.  A foreign copy whose watermark is >= L then holds every block at its
 * latest version; STRONG reads may use it with min_version = L (route.h).
 *
 * Races: an entry, once learned, is raised by every later answer (max), so
 * it stays the latest as long as it stays in the table.  A new entry is
 * made only from a read at the primary, and only if no write of the
 * segment completed (acknowledged or failed) between the read's send and
 * its answer: the answer's segment_version might predate such a write.
 * Writes of other segments do not change this segment's version, so they
 * do not matter (a volume always writing somewhere still learns); each
 * slot remembers the write counter at the last completion of a segment
 * mapped to it (conservative for colliding segments; if the table cannot
 * be allocated, any completion counts).  Write answers only raise
 * existing entries (two writes of one segment in flight may be answered
 * in any order).
 *
 * Knowledge is tied to one lease epoch: segver_reset() at every new grant
 * forgets everything, and facts learned under another epoch (a read or
 * write sent before the grant) are ignored, since someone else may have
 * written in between.  A write that failed (may or may not have been
 * applied at a version this proxy never saw) forgets its segment.
 *
 * Bounded memory: a direct-mapped table of SEGVER_SLOTS segments (24 bytes
 * each, allocated on first use); a segment evicted by a colliding one is
 * simply unknown again (reads go home and relearn it).  Version 0 means
 * unknown: an empty segment is never served from a foreign copy by STRONG.
 *
 * Failure: out of memory leaves the table empty (every segment unknown),
 * never an error.  Loop thread only; pure (tests/unit/test_segver.c). */
#ifndef OMBRA_PROXY_SEGVER_H
#define OMBRA_PROXY_SEGVER_H

#include <stdint.h>

#define SEGVER_SLOTS 4096u

struct segver_slot {
	uint64_t seg_plus1; /* 0 = empty */
	uint64_t version;
	uint64_t last_write; /* writes after the slot's last completion */
};

struct segver {
	uint64_t epoch;		   /* the lease epoch the table is for */
	uint64_t writes;	   /* write completions, ever */
	uint64_t untracked;	   /* writes after a completion no slot kept */
	struct segver_slot *slots; /* NULL until the first fact or write */
};

/* A new lease epoch (0: no lease): forget everything. */
void segver_reset(struct segver *s, uint64_t epoch);

/* A write of seg sent under lease epoch epoch was acknowledged with
 * version: raises seg's entry if it has one.  Counts a write completion. */
void segver_write_acked(struct segver *s, uint64_t epoch, uint64_t seg,
			uint64_t version);

/* A write of seg failed (it may have been applied at a version this proxy
 * never saw): seg is unknown again.  Counts a write completion. */
void segver_write_failed(struct segver *s, uint64_t seg);

/* Write completions so far: a read at the primary records it when sent. */
uint64_t segver_writes(const struct segver *s);

/* A read of seg at its primary, sent under lease epoch epoch when
 * segver_writes() was writes_at_send, answered segment_version version:
 * raises seg's entry, or makes one if no write of seg completed since the
 * send.
 * Ignored when epoch is 0 or not the table's, or version is 0. */
void segver_read_primary(struct segver *s, uint64_t epoch, uint64_t seg,
			 uint64_t version, uint64_t writes_at_send);

/* The latest version of seg known under epoch; 0 if unknown or the table
 * is for another epoch. */
uint64_t segver_latest(const struct segver *s, uint64_t epoch, uint64_t seg);

/* Free the table (the struct itself is the caller's). */
void segver_free(struct segver *s);

#endif
