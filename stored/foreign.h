/* foreign.h: the foreign copies (shadows and cache entries) held by
 * ombra-stored, docs/shadows.md and docs/stored.md "Foreign copies".
 *
 * A foreign copy's data lives in the segment store like any segment (the
 * first tier, which is the fast one); its record (struct fc_copy: kind,
 * present bitmap, watermark, confirmed time, read counters) lives in a
 * table on the loop thread.  Records are soft state: they are not
 * persisted, so after a restart a node holds no foreign copy (nothing is
 * served from the data left in the store, which is safe); shadows are
 * re-created from the shard map and filled again, cache entries are
 * pulled again by the prefetch engine.
 *
 * Modules: foreign.c (the table, cache capacity and LRU eviction, space
 * reclaimed when a volume's last foreign copy goes, store jobs serialized
 * per segment, metrics), foreign_sweep.c (space of foreign data left by
 * a previous run, at start-up), foreign_pull.c (copy a block range from the
 * primary or an in-sync replica), foreign_shadow.c (shadows from the
 * shard map, background fill, anti-entropy), foreign_rep.c (Replicate
 * with shadow=true), svc_copy.c (Pull, DropCopy, ListCopies), svc_read.c
 * (reads served from a foreign copy); the pure rules in foreign_logic.c.
 *
 * Loop thread only.  Failure: OMBRA_ENOMEM (allocation, cache full),
 * OMBRA_EPRECOND (this node is a home copy of the segment), others from
 * the pull's source with a message. */
#ifndef OMBRA_STORED_FOREIGN_H
#define OMBRA_STORED_FOREIGN_H

#include "foreign_logic.h"
#include "stored.h"

/* ShadowPolicy.fill_bytes_per_s 0 (proto/common.proto). */
#define FOREIGN_DEFAULT_FILL_BPS (UINT64_C(64) << 20)
/* Bytes read from the source per StoreService.Read of a pull. */
#define FOREIGN_PULL_CHUNK (UINT64_C(1) << 20)

/* ------------------------------------------------ foreign.c */

/* Wall clock, Unix ms: every time in struct fc_copy is one (they are
 * compared with the proxies' acked_unix_ms and shown in ListCopies). */
uint64_t foreign_unix_ms(void);

/* Initialize sd->fg and its timers (once, from node_init). */
void foreign_init(struct stored *sd);
/* Close the timers and free every record (shutdown, nothing in flight). */
void foreign_stop(struct stored *sd);

struct fcent *foreign_find(struct stored *sd, uint64_t vol, uint64_t seg);
/* The record of (vol, seg), created empty with kind and n_blocks if there
 * is none; a COPY_CACHE record asked for as a shadow becomes one.  NULL
 * on out of memory. */
struct fcent *foreign_get(struct stored *sd, uint64_t vol, uint64_t seg,
			  enum fc_kind kind, uint32_t n_blocks);
/* Remove and free the record; when it was the volume's last and this node
 * holds no home copy of the volume, the volume's data is deleted from the
 * store in the background (space reclaimed). */
void foreign_remove(struct stored *sd, struct fcent *e);
/* Delete vol's data from the store in the background when nothing here
 * needs it: vol is in the shard-map cache, homed in another region, this
 * node holds no home role (primary, in-sync replica, re-sync target) of
 * any of its segments and no foreign copy of it, and no deletion of it
 * runs.  True when the deletion was started (logged when it ends). */
bool foreign_maybe_reclaim(struct stored *sd, uint64_t vol);
/* The start-up sweep (foreign_sweep.c): every volume the segment store
 * holds data of is checked once with foreign_maybe_reclaim(), so the
 * space of foreign copies left by a previous run is reclaimed. */
void foreign_sweep_start(struct stored *sd);
/* Like work_submit(), but jobs of one (vol, seg) run one at a time in
 * submission order (one busy segment holds at most one thread-pool job),
 * and none while vol's data is being deleted (they start when the
 * deletion ends, foreign_maybe_reclaim()).  0 or OMBRA_ENOMEM (nothing
 * queued). */
int foreign_apply(struct stored *sd, uint64_t vol, uint64_t seg,
		  void (*work)(void *arg), void (*done)(void *arg), void *arg);
/* True while the data of vol's dropped foreign copies is being deleted
 * (foreign_apply() jobs of vol wait meanwhile: their blocks could be
 * deleted). */
bool foreign_reclaiming(struct stored *sd, uint64_t vol);
/* Call fn on every record (fn may remove the record it is given). */
void foreign_each(struct stored *sd,
		  void (*fn)(struct stored *sd, struct fcent *e, void *arg),
		  void *arg);

/* Blocks of segment seg of v (the last segment may be short); 0 when
 * seg is beyond the volume. */
uint32_t foreign_seg_blocks(const struct sm_volume *v, uint64_t seg);
/* True when node holds a home role for segment s (primary, in-sync
 * replica or re-sync target): such a node keeps no foreign copy of it. */
bool foreign_is_home(const struct sm_seg *s, uint64_t node);

/* Bytes held (present blocks * 4096) by COPY_CACHE / COPY_SHADOW records. */
uint64_t foreign_bytes(struct stored *sd, enum fc_kind kind);
/* Make room for add more cache bytes: drop least recently used COPY_CACHE
 * records other than keep (may be NULL) and those being pulled into.
 * OMBRA_ENOMEM when even that is not enough. */
int foreign_cache_room(struct stored *sd, uint64_t add,
		       const struct fcent *keep);

/* Create the foreign-copy metrics (once, from foreign_start) and set the
 * gauges from the table (every tick). */
void foreign_metrics_make(struct stored *sd);
void foreign_metrics_update(struct stored *sd);

/* ------------------------------------------------ foreign_pull.c */

/* Copy blocks [first, first + n) of segment seg (numbered inside the
 * segment) of volume vol into the foreign record e: StoreService.Read
 * from the segment's primary, else an in-sync replica (this node's shard
 * map), in FOREIGN_PULL_CHUNK pieces; each block's crc is checked, the
 * blocks are stored with their source versions (apply-if-newer, durable)
 * and then marked present with fc_pulled().  done runs on the loop, also
 * from inside this call when the pull cannot start (no memory, no
 * source reachable): rv 0, or an OMBRA_E* code with errmsg (UNAVAILABLE
 * when no source answered); pulled: bytes of blocks that were not present
 * before; source: the node that answered last.  e must stay in the table
 * until done runs (e->pulls counts the pull). */
typedef void (*foreign_pull_cb)(void *arg, int rv, const char *errmsg,
				uint64_t pulled, uint64_t source);
void foreign_pull(struct stored *sd, struct fcent *e, uint32_t first,
		  uint32_t n, foreign_pull_cb done, void *arg);

/* ------------------------------------------------ foreign_shadow.c */

/* Start the periodic work once the node serves (shadows from the shard
 * map, fill, anti-entropy). */
void foreign_start(struct stored *sd);

#endif
