/* seginfo.h: ask the storage nodes of a shard-map page, for "ombractl
 * volume shards": the primary of each segment for the segment's version
 * and tier (StoreService.GetSegmentInfo, one call per segment), and each
 * node holding shadows for the state of its copies of the volume
 * (StoreService.ListCopies, one call per node): fill progress and lag
 * behind the primary.  Storage nodes are called directly with the
 * blocking client, one connection per node.
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

/* What a shadow's node said of its copy (ListCopies' CopyInfo). */
struct seginfo_copy {
	bool ok;      /* the node answered (found tells if it has it) */
	bool found;   /* the node lists a copy of this segment */
	bool filling; /* background fill not finished */
	uint64_t present_blocks, total_blocks;
	uint64_t lag_versions; /* behind the primary, in sequence numbers */
	uint64_t lag_ms;       /* since the copy was last confirmed current */
};

/* What the primary of one segment said, and its shadows' nodes. */
struct seginfo {
	bool asked; /* false: the segment has no primary (nothing asked) */
	bool ok;    /* version and tier are the primary's answer */
	uint64_t version; /* highest block version; 0 = nothing stored */
	char tier[SEGINFO_TIER_LEN]; /* "" = none reported */
	char error[SEGINFO_ERR_LEN]; /* when asked && !ok */
	/* One per SegmentPlacement.shadows entry, same order; NULL when the
	 * segment has none or memory ran out.  Freed by seginfo_free(). */
	struct seginfo_copy *copies;
	size_t n_copies;
};

/* Fill out[i] for every r->segments[i] (out has r->n_segments entries,
 * zeroed by the caller).  cli: its TLS options and timeout are used.
 * Returns the number of segments asked whose answer is missing. */
size_t seginfo_fetch(const struct cli *cli,
		     const Ombra__V1__GetVolumeShardingInfoResponse *r,
		     struct seginfo *out);

/* Release what seginfo_fetch() allocated inside out[0..n) (not out). */
void seginfo_free(struct seginfo *out, size_t n);

#endif
