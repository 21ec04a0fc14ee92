/* access.h: decayed per-(segment, region) read and write rates from the
 * proxies' ReportAccessStats, in a fixed-size table on the metad leader
 * (soft state, docs/metad.md "Shadow policy and access statistics").
 *
 * Decay: exponential with half-life ACCESS_HALF_LIFE_MS, kept as forward
 * decay (Cormode, Shkapenyuk, Srivastava, Xu, "Forward Decay: A Practical
 * Time Decay Model for Streaming Systems", ICDE 2009): a count c reported
 * at time t is stored as c * 2^((t - L) / H) for a landmark L, and read at
 * time now as stored / 2^((now - L) / H).  Every entry decays by the same
 * factor, so their order never changes with time and a heap stays valid;
 * L moves forward (rescaling every entry once) before the factors grow
 * too large for a double.  A steady rate r (per second) gives a decayed
 * count of r * H / ln 2 (seconds), so rate = count * ln 2 / H.
 *
 * Bound: at most `capacity` (segment, region) entries, kept by the
 * Space-Saving algorithm (Metwally, Agrawal, El Abbadi, "Efficient
 * Computation of Frequent and Top-k Elements in Data Streams", ICDT 2005)
 * over the decayed weight reads + writes: a new key, when the table is
 * full, takes over the entry of least weight and inherits that weight as
 * its error.  The counts since an entry was (re)taken are lower bounds of
 * the truth, and they are what the rates report, so a cold segment never
 * looks hot; any (segment, region) whose decayed weight exceeds the total
 * over capacity is in the table.  Memory: about 72 bytes per entry plus
 * a bucket index, fixed at creation.  Regions are interned (at most
 * ACCESS_REGIONS_MAX).
 *
 * Times are wall-clock ms (they are compared with ShadowCopy.
 * added_unix_ms); a clock that steps back is treated as standing still.
 * Threads: not thread-safe (the metad loop).  Failure: OMBRA_ENOMEM at
 * creation, OMBRA_EINVAL for a report from one region too many. */
#ifndef OMBRA_METAD_ACCESS_H
#define OMBRA_METAD_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#define ACCESS_HALF_LIFE_MS 10000u
#define ACCESS_CAPACITY_DEFAULT 32768u
#define ACCESS_REGIONS_MAX 64u

struct access_table;

/* capacity: entries (>= 1); half_life_ms >= 1.  0 or OMBRA_ENOMEM. */
int access_create(size_t capacity, uint64_t half_life_ms,
		  struct access_table **out);
void access_destroy(struct access_table *t);

/* Forget everything (a new leader measures from scratch). */
void access_reset(struct access_table *t);

/* Add reads and writes of (volume_id, segment) seen in region (a valid
 * region name, copied) at now_ms.  0, or OMBRA_EINVAL when region would be
 * region number ACCESS_REGIONS_MAX + 1. */
int access_record(struct access_table *t, uint64_t now_ms, const char *region,
		  uint64_t volume_id, uint64_t segment, uint32_t reads,
		  uint32_t writes);

/* One entry as read at a time. region: interned, valid until
 * access_reset()/access_destroy(). */
struct access_rate {
	uint64_t volume_id;
	uint64_t segment;
	const char *region;
	double reads_per_s;    /* lower bound, decayed */
	double writes_per_s;   /* lower bound, decayed */
	uint64_t last_read_ms; /* last report with reads > 0 */
};

/* Every entry read at now_ms, sorted by (volume, segment, region);
 * *out malloc'd (free()), NULL when empty.  0 or OMBRA_ENOMEM. */
int access_snapshot(struct access_table *t, uint64_t now_ms,
		    struct access_rate **out, size_t *n);

/* Entries in use, and the capacity. */
size_t access_size(const struct access_table *t);
size_t access_capacity(const struct access_table *t);

#endif
