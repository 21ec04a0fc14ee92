/* foreign_logic.h: the pure state of one foreign copy of a segment (a
 * shadow or a cache entry, docs/shadows.md) and the rules that keep its
 * watermark honest, with no I/O and no daemon state, so that they are
 * unit-tested on their own (tests/unit/test_foreign_logic.c).
 *
 * Invariant kept by every function here: every present block of the copy
 * is at least as new as its state at the primary when the segment's
 * version was `watermark`.  The caller applies data to the segment store
 * (apply-if-newer, durable) BEFORE telling these functions about it, and
 * filters what it applies by fc_present() first.
 *
 * Times are Unix milliseconds supplied by the caller.  Blocks are numbered
 * inside the segment (0 .. n_blocks-1).
 *
 * Failure: none (pure); out-of-range block numbers are ignored and
 * fc_check_read() explains a refusal in a message. */
#ifndef OMBRA_STORED_FOREIGN_LOGIC_H
#define OMBRA_STORED_FOREIGN_LOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest segment: 4 MiB of 4 KiB blocks. */
#define FC_MAX_BLOCKS 1024
/* Propagated runs remembered ahead of the watermark (fc_propagated). */
#define FC_MAX_RUNS 8

/* Writes prev -> version applied while the watermark was below prev. */
struct fc_run {
	uint64_t prev, version, acked_ms;
};

enum fc_kind {
	FC_SHADOW = 0, /* = COPY_SHADOW: metad's shadow policy, whole segment */
	FC_CACHE = 1,  /* = COPY_CACHE: prefetch entry, partial, evictable */
};

struct fc_copy {
	uint64_t vol, seg;
	enum fc_kind kind;
	uint32_t n_blocks; /* blocks in the segment, <= FC_MAX_BLOCKS */
	uint32_t n_present;
	uint64_t present[FC_MAX_BLOCKS / 64];
	uint64_t watermark;	  /* 0 = claims nothing */
	uint64_t confirmed_ms;	  /* watermark was the primary's version then */
	uint64_t primary_version; /* highest version of the primary known */
	uint64_t primary_ms;	  /* when primary_version was learnt */
	uint64_t last_read_ms;
	uint64_t last_use_ms; /* read, pulled or created: LRU order */
	uint64_t reads;
	bool filling;			 /* a background fill is running */
	struct fc_run runs[FC_MAX_RUNS]; /* in memory only */
	uint32_t n_runs;
};

/* An empty copy (nothing present, watermark 0). */
void fc_init(struct fc_copy *c, uint64_t vol, uint64_t seg, enum fc_kind kind,
	     uint32_t n_blocks, uint64_t now_ms);

bool fc_present(const struct fc_copy *c, uint32_t block);

/* True when blocks first .. first+n-1 are all present. */
bool fc_all_present(const struct fc_copy *c, uint32_t first, uint32_t n);

/* A pull stored blocks first .. first+n-1 read from an up-to-date copy
 * whose segment version was v (StoreReadResponse.segment_version) at
 * read time.  The watermark becomes v if the copy held nothing, else
 * min(watermark, v) (older blocks are only known to be as new as the old
 * watermark).  The blocks become present.  now_ms: when the read was
 * sent (not answered: a write may be acknowledged in between), the
 * confirmed time when v is the watermark (kept if later and v was it
 * already). */
void fc_pulled(struct fc_copy *c, uint32_t first, uint32_t n, uint64_t v,
	       uint64_t now_ms);

/* Propagation (ReplicateRequest shadow=true) of writes prev -> version
 * whose whole blocks the caller applied to the present blocks: drops the
 * invalidated (partial) blocks from present, then moves the watermark to
 * version iff it was >= prev.  A run that arrives ahead of the watermark
 * (watermark < prev: the proxy's acknowledgements, hence its batches,
 * came out of version order, or a batch is still on its way) is
 * remembered (at most FC_MAX_RUNS, the oldest forgotten first), and the
 * watermark moves through it once it reaches prev: writes up to prev and
 * writes prev -> version are then all applied, like TCP's reassembly of
 * out-of-order segments.  Without it a shadow stayed behind until
 * anti-entropy, and the single writer's STRONG reads went to another
 * region.  Returns true when the watermark moved.  acked_ms (0 =
 * unknown): when the primary acknowledged version; with the watermark
 * moved and version the newest known, the copy counts as confirmed at
 * acked_ms (a run's own acked_ms when it is folded in). */
bool fc_propagated(struct fc_copy *c, uint64_t prev, uint64_t version,
		   const uint32_t *invalidate, size_t n_invalidate,
		   uint64_t acked_ms);

/* Anti-entropy: the primary's version was v when asked at asked_ms and
 * every present block older at the primary has been pulled since: the
 * watermark becomes v and the copy is confirmed at asked_ms. */
void fc_confirmed(struct fc_copy *c, uint64_t v, uint64_t asked_ms);

/* Fill: the first run of missing blocks, at most max long, in *first and
 * *n; false when every block is present. */
bool fc_next_missing(const struct fc_copy *c, uint32_t max, uint32_t *first,
		     uint32_t *n);

/* Anti-entropy comparison: the smallest range [*lo, *hi] covering every
 * present block whose version at the primary (primary[i], n entries)
 * is newer than ours (local[i]); false when there is none. */
bool fc_behind_range(const struct fc_copy *c, const uint64_t *primary,
		     const uint64_t *local, uint32_t n, uint32_t *lo,
		     uint32_t *hi);

/* End of an anti-entropy round: present_then is the present bitmap when
 * the block versions were compared (and the behind blocks then pulled);
 * the primary's version was v when asked at asked_ms.  When no block
 * became present since (it could be older than v), fc_confirmed(v) if v
 * is not below the watermark (propagation may already have moved it
 * further) and true; else nothing changes and false (retry). */
bool fc_ae_confirm(struct fc_copy *c, const uint64_t *present_then, uint64_t v,
		   uint64_t asked_ms);

/* Remember the primary's highest version (for lag); never goes back. */
void fc_primary_seen(struct fc_copy *c, uint64_t v, uint64_t now_ms);

/* Drop blocks first .. first+n-1 from present; returns how many were. */
uint32_t fc_drop(struct fc_copy *c, uint32_t first, uint32_t n);

/* Lag in versions (sequence units, same epoch; the primary's newer epoch
 * counts the sequence of its version) and in ms (0 when current: watermark
 * >= the primary's version seen, also at 0 for a copy holding blocks of a
 * never written segment; else now - confirmed). */
uint64_t fc_lag_versions(const struct fc_copy *c);
uint64_t fc_lag_ms(const struct fc_copy *c, uint64_t now_ms);

/* Why a foreign read may not be served. */
enum fc_refusal {
	FC_OK = 0,
	FC_NOT_PRESENT,	 /* some requested block is not held */
	FC_BEHIND,	 /* watermark < min_version */
	FC_STALE,	 /* not confirmed within max_staleness_ms */
	FC_NO_READ_LEASE /* BOUNDED read while the node lease is invalid */
};

/* May the copy serve blocks first .. first+n-1 for a read asking
 * min_version (0 = none) and max_staleness_ms (0 = none)?  lease_valid:
 * the node's lease from metad (the read lease).  On refusal, msg (len
 * bytes) says why with the numbers. */
enum fc_refusal fc_check_read(const struct fc_copy *c, uint32_t first,
			      uint32_t n, uint64_t min_version,
			      uint64_t max_staleness_ms, bool lease_valid,
			      uint64_t now_ms, char *msg, size_t len);

/* Count a read served at now_ms. */
void fc_read_served(struct fc_copy *c, uint64_t now_ms);

#endif
