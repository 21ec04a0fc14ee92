/* shadowpol.h: the shadow policy of a volume (ShadowPolicy in
 * proto/common.proto, docs/shadows.md "Shadow policy"): its static checks,
 * its effective values (0 = default), and the pure decision of which
 * shadows to add and remove given the access rates the leader measured.
 *
 * Everything here is a pure function of its input: no clock, no I/O, no
 * state, so the leader's evaluator (shadowpol_run.c) and the unit tests
 * (tests/unit/test_shadowpol.c) drive the same code.  Failure: checks
 * return OMBRA_EINVAL with a message naming the field and the allowed
 * range; shadowpol_decide() returns only OMBRA_ENOMEM. */
#ifndef OMBRA_METAD_SHADOWPOL_H
#define OMBRA_METAD_SHADOWPOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.pb-c.h"
#include "placement.h"

/* Defaults of the fields left 0 (proto/common.proto). */
#define SHADOWPOL_MAX_SHADOWS_DEFAULT 1u
#define SHADOWPOL_CREATE_READS_DEFAULT 1.0
#define SHADOWPOL_IDLE_MS_DEFAULT 300000u
#define SHADOWPOL_FILL_DEFAULT (64ull * 1024ull * 1024ull)

/* Accepted ranges (shadowpol_check). */
#define SHADOWPOL_REGIONS_MAX 16u
#define SHADOWPOL_MAX_SHADOWS_MAX 8u
#define SHADOWPOL_CREATE_READS_MAX 1e9
#define SHADOWPOL_IDLE_MS_MIN 1000u
#define SHADOWPOL_IDLE_MS_MAX (7ull * 24u * 3600u * 1000u)
#define SHADOWPOL_FILL_MIN 4096u
#define SHADOWPOL_FILL_MAX (16ull * 1024ull * 1024ull * 1024ull)

/* Static checks (no cluster state): at most 16 regions, each a valid name
 * and listed once; max_shadows 0..8; create_reads_per_s finite, 0..1e9;
 * idle_ms 0 or 1 s..7 days; fill_bytes_per_s 0 or 4 KiB/s..16 GiB/s.
 * budget_bytes is any value here (the state machine checks it against the
 * segment size, and the regions against the registered ones).  p may not
 * be NULL.  0 or OMBRA_EINVAL with errmsg (OMBRA_ERRMSG_LEN). */
int shadowpol_check(const Ombra__V1__ShadowPolicy *p, char *errmsg);

/* The policy with defaults applied.  regions points into the message
 * (n_regions 0 = every region but the home one). */
struct shadowpol_params {
	char *const *regions;
	size_t n_regions;
	uint32_t max_shadows;	   /* >= 1 */
	double create_reads_per_s; /* > 0 */
	uint64_t idle_ms;	   /* > 0 */
	uint64_t budget_bytes;	   /* per region; 0 = unlimited */
	uint64_t fill_bytes_per_s; /* > 0 */
};

/* p: the volume's policy (not NULL). */
void shadowpol_effective(const Ombra__V1__ShadowPolicy *p,
			 struct shadowpol_params *out);

/* May region hold shadows of a volume homed in home under pp? */
bool shadowpol_region_allowed(const struct shadowpol_params *pp,
			      const char *home, const char *region);

/* ---- decision input.  Every pointer is borrowed for the call. */

/* A region that may hold shadows, with its nodes that may get a new one
 * (UP, capacity > 0 as weight), sorted by id. */
struct shadowpol_region {
	const char *name;
	const struct placement_node *nodes;
	size_t n_nodes;
};

/* A shadow the state holds. added_ms: ShadowCopy.added_unix_ms. */
struct shadowpol_shadow {
	uint64_t segment;
	uint64_t node_id;
	const char *region;
	uint64_t added_ms;
};

/* The measured access of (segment, region) of the volume: decayed read
 * rate (a lower bound, access.h) and the wall time of the last report that
 * had reads (0 = none). */
struct shadowpol_access {
	uint64_t segment;
	const char *region;
	double reads_per_s;
	uint64_t last_read_ms;
};

/* Nodes that already hold a copy of a segment (primary, replicas, resync
 * list, shadows): never chosen for a new shadow of it.  Segments without a
 * row have no holder to avoid. */
struct shadowpol_holders {
	uint64_t segment;
	const uint64_t *node_ids;
	size_t n;
};

struct shadowpol_input {
	uint64_t volume_id;
	const char *home_region;
	uint64_t segment_size; /* bytes per shadow for the budget */
	uint64_t segment_count;
	struct shadowpol_params policy;
	const struct shadowpol_region *regions; /* allowed ones with nodes */
	size_t n_regions;
	const struct shadowpol_shadow *shadows;
	size_t n_shadows;
	const struct shadowpol_access *access;
	size_t n_access;
	const struct shadowpol_holders *holders;
	size_t n_holders;
	uint64_t now_ms;   /* wall clock */
	uint64_t since_ms; /* wall clock when this leader started measuring */
	size_t max_adds;   /* at most this many additions (0 = none) */
};

struct shadowpol_change {
	uint64_t segment;
	uint64_t node_id;
	bool remove;
	const char *region; /* borrowed from the input */
};

/* Decide the changes for one volume, removals first:
 *  1. a shadow in a region the policy does not allow, or idle: no read of
 *     its segment in its region for idle_ms, counting from the latest of
 *     its creation, since_ms (a new leader has not measured before) and
 *     the last report with reads;
 *  2. shadows beyond max_shadows of a segment, and beyond budget_bytes of
 *     a region (segment_size each), the coldest first (lowest read rate in
 *     its region, then the newest, then the highest node id);
 *  3. additions: every (segment, region) whose read rate is at least
 *     create_reads_per_s, that was read within idle_ms (else the shadow
 *     would be idle at birth) and that has no shadow there, hottest first,
 *     while
 *     the segment has fewer than max_shadows and the region's budget has
 *     room; the node is the first by weighted rendezvous hashing of
 *     (volume, segment) over the region's nodes that does not hold a copy
 *     of the segment (placement.h).  A full budget does not evict a colder
 *     shadow for a hotter one: the colder one leaves when it goes idle.
 * *out: malloc'd array (free()) of *n changes, NULL when none.
 * 0 or OMBRA_ENOMEM. */
int shadowpol_decide(const struct shadowpol_input *in,
		     struct shadowpol_change **out, size_t *n);

#endif
