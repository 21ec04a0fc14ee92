/* wflight.h: the writes of a proxy in flight (sent, not yet answered or
 * failed), so that the single writer of a volume never serves a STRONG
 * read from a foreign copy while a write of the same blocks is in flight
 * (docs/proxy.md "What L is", docs/shadows.md).
 *
 * Why: the segment's latest version L known to the writer (segver.h) only
 * counts acknowledged writes.  A write in flight may already be applied
 * at the primary, where another proxy's STRONG read can see it; a later
 * STRONG read of the writer served by a shadow at L would then return the
 * older data after a read that returned the newer: not linearizable
 * (tests/integration/test_wan_partition.py's checker found it).  Blocks
 * no write in flight touches have their latest value at some version
 * <= L, so reads of them may still use a copy at L.
 *
 * Shape: an intrusive doubly linked list of entries owned by the callers
 * (the I/O engine embeds one in each write part); ranges are volume
 * bytes, compared by the 4 KiB blocks they touch.  Lookups are linear:
 * the list holds at most the writes in flight (the clients' queue
 * depths).  Loop thread only; pure (tests/unit/test_wflight.c).  Failure:
 * none (no allocation). */
#ifndef OMBRA_PROXY_WFLIGHT_H
#define OMBRA_PROXY_WFLIGHT_H

#include <stdbool.h>
#include <stdint.h>

#define WFLIGHT_BLOCK 4096u

struct wflight_ent {
	const void *vol;   /* the volume (identity only) */
	uint64_t off, len; /* volume bytes */
	struct wflight_ent *prev, *next;
	bool added;
};

struct wflight {
	struct wflight_ent *head;
};

/* Add e (not in any list) for [off, off+len) of vol. */
void wflight_add(struct wflight *f, struct wflight_ent *e, const void *vol,
		 uint64_t off, uint64_t len);

/* Remove e; nothing if e was never added or is already removed. */
void wflight_remove(struct wflight *f, struct wflight_ent *e);

/* True if a write in flight of vol touches a 4 KiB block of
 * [off, off+len). */
bool wflight_overlaps(const struct wflight *f, const void *vol, uint64_t off,
		      uint64_t len);

#endif
