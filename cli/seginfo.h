/* seginfo.h: ask the primary of each segment of a shard-map page for the
 * segment's version and tier (StoreService.GetSegmentInfo), for
 * "ombractl volume shards".  Storage nodes are called directly with the
 * blocking client, one connection per node, one call per segment.
 *
 * Failure: never fatal.  A segment whose primary cannot answer gets
 * ok = false and an error text ("r1-stored1 (127.0.0.1:7103):
 * UNAVAILABLE: ..."); a node that is unreachable (UNAVAILABLE or deadline)
 * is not asked again for the rest of the page, so a dead node costs one
 * timeout, not one per segment. */
#ifndef OMBRA_CLI_SEGINFO_H
#define OMBRA_CLI_SEGINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.pb-c.h"
#include "cli.h"

#define SEGINFO_TIER_LEN 64
#define SEGINFO_ERR_LEN 320
/* Upper bound of one GetSegmentInfo call, whatever --timeout-ms says. */
#define SEGINFO_TIMEOUT_MS 2000

/* What the primary of one segment said. */
struct seginfo {
	bool asked; /* false: the segment has no primary (nothing asked) */
	bool ok;    /* version and tier are the primary's answer */
	uint64_t version; /* highest block version; 0 = nothing stored */
	char tier[SEGINFO_TIER_LEN]; /* "" = none reported */
	char error[SEGINFO_ERR_LEN]; /* when asked && !ok */
};

/* Fill out[i] for every r->segments[i] (out has r->n_segments entries,
 * zeroed by the caller).  cli: its TLS options and timeout are used.
 * Returns the number of segments asked whose answer is missing. */
size_t seginfo_fetch(const struct cli *cli,
		     const Ombra__V1__GetVolumeShardingInfoResponse *r,
		     struct seginfo *out);

#endif
