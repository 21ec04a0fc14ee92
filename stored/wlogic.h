/* wlogic.h: the pure parts of ombra-stored's data path, with no I/O and no
 * daemon state, so they are unit-tested on their own: version assignment,
 * range validation of StoreService requests, the unaligned-write merge
 * plan and the request-id LRU that makes retried writes idempotent.
 *
 * Offsets in StoreService requests are bytes from the start of the VOLUME
 * (not of the segment); the range must lie inside segment segment_index.
 *
 * Failure: validators return OMBRA_EINVAL with a message for the client;
 * the LRU returns OMBRA_ENOMEM only at creation. */
#ifndef OMBRA_STORED_WLOGIC_H
#define OMBRA_STORED_WLOGIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sequence number for the next write of a segment whose highest stored
 * version is `highest` (0 = nothing stored) when the writer holds lease
 * epoch `epoch`: seq(highest) + 1 if highest was written in this epoch,
 * else 1 (a new epoch restarts the sequence; its versions are still higher
 * because the epoch is in the high bits). */
uint64_t wl_next_seq(uint64_t highest, uint64_t epoch);

/* version = epoch << 40 | seq.  Returns 0 and *out, or OMBRA_EINVAL when
 * epoch is 0 or >= 2^24, or seq is 0 or >= 2^40 (errmsg). */
int wl_version(uint64_t epoch, uint64_t seq, uint64_t *out, char *errmsg);

/* A validated byte range of one request. */
struct wl_range {
	uint64_t off;	      /* volume byte offset as requested */
	uint64_t len;	      /* bytes as requested, > 0 */
	uint64_t aoff;	      /* off rounded down to 4096 */
	uint64_t alen;	      /* aligned length covering [off, off+len) */
	bool head_partial;    /* first aligned block only partly written */
	bool tail_partial;    /* last aligned block only partly written */
	uint64_t first_block; /* aoff / 4096 */
	uint64_t n_blocks;    /* alen / 4096 */
};

/* Validate [off, off+len) against segment seg of a volume with segment
 * size segsize (power of two) and volume size vol_size (bytes; 0 = not
 * known, then only the segment bound applies).  aligned: off and len must
 * be multiples of 4096 (reads).  Fills *r.  OMBRA_EINVAL with a message
 * like "offset 8192 + length 4096 beyond segment 0 (bytes 0..8191)". */
int wl_check_range(uint64_t seg, uint64_t segsize, uint64_t vol_size,
		   uint64_t off, uint64_t len, bool aligned, struct wl_range *r,
		   char *errmsg);

/* Copy len bytes of data into buf, which holds the r->alen bytes of the
 * aligned range starting at r->aoff (head and tail blocks already read);
 * data NULL writes zeros. */
void wl_merge(const struct wl_range *r, void *buf, const void *data);

/* ------------------------------------------------ request-id LRU */

/* Maps recent request ids (strings up to WL_LRU_ID_MAX bytes) to the
 * version their write received.  Fixed capacity; the least recently
 * inserted or looked-up id is evicted.  Not thread-safe (loop only). */
#define WL_LRU_ID_MAX 128
struct wl_lru;

/* capacity > 0 entries.  NULL on out of memory. */
struct wl_lru *wl_lru_create(size_t capacity);
void wl_lru_destroy(struct wl_lru *l);

/* The version for id, or 0 when not present ("" and over-long ids are
 * never present).  A hit makes the id most recent. */
uint64_t wl_lru_get(struct wl_lru *l, const char *id);

/* Remember id -> version (version != 0); replaces an existing entry.
 * Ids that are "" or longer than WL_LRU_ID_MAX are ignored. */
void wl_lru_put(struct wl_lru *l, const char *id, uint64_t version);

/* The same with the write's prev_version (StoreWriteResponse): put
 * remembers both, get returns the version (0 = absent) and sets *prev
 * (may be NULL; 0 when absent or stored by wl_lru_put). */
void wl_lru_put_chain(struct wl_lru *l, const char *id, uint64_t version,
		      uint64_t prev);
uint64_t wl_lru_get_chain(struct wl_lru *l, const char *id, uint64_t *prev);

size_t wl_lru_count(const struct wl_lru *l);

#endif
