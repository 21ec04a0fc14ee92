/* shardmap.h: ombra-stored's cached copy of the shard maps of volumes
 * (AdminService.GetShardMap), in a compact form: per segment the primary,
 * in-sync replicas, nodes to re-sync and the lease epoch; per volume the
 * nodes named with their address and state.
 *
 * Building a volume (sm_volume_add_page) runs in the thread pool; the
 * cache (struct shardmap) is used on the loop thread only.
 * Failure: OMBRA_ENOMEM, or OMBRA_EPROTO when metad's answer is not
 * usable (a node id above 2^32, too many copies, segments out of order). */
#ifndef OMBRA_STORED_SHARDMAP_H
#define OMBRA_STORED_SHARDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume.pb-c.h"

#define SM_MAX_COPIES 8

struct sm_seg {
	uint32_t primary; /* node id; 0 = none */
	uint32_t epoch;	  /* lease epoch */
	uint8_t n_rep, n_resync;
	uint32_t rep[SM_MAX_COPIES];	/* in-sync replicas */
	uint32_t resync[SM_MAX_COPIES]; /* to re-sync */
	uint8_t n_shadow;
	uint32_t shadow[SM_MAX_COPIES]; /* nodes holding a shadow (other
					   regions, docs/shadows.md) */
};

struct sm_node {
	uint64_t id;
	char *address;
	int state; /* Ombra__V1__NodeState */
};

struct sm_volume {
	uint64_t id;
	char *name;
	uint64_t size;	  /* bytes */
	uint64_t segsize; /* bytes */
	uint64_t n_segs;
	struct sm_seg *segs; /* n_segs entries */
	struct sm_node *nodes;
	size_t n_nodes;
	/* Single-writer lease epoch: the highest of metad's Volume.writer_
	 * epoch and of the writer_epoch of writes accepted here (sm_put keeps
	 * the higher of the old and new volume's). */
	uint64_t writer_epoch;
	bool has_shadow_policy;
	uint64_t
	    fill_bytes_per_s; /* ShadowPolicy.fill_bytes_per_s (0 = default) */
	char *home_region;
	uint64_t fetched_ms; /* loop clock when installed */
	uint64_t fetch_seq;  /* stored's fetch counter when its fetch began */
	struct sm_volume *next; /* cache list */
};

/* Start a volume from the first page of GetShardMap (resp->volume must be
 * set).  *out owned by the caller (sm_volume_free).  OMBRA_ENOMEM or
 * OMBRA_EPROTO with errmsg. */
int sm_volume_new(const Ombra__V1__GetVolumeShardingInfoResponse *resp,
		  struct sm_volume **out, char *errmsg);

/* Add a page's segments and nodes (the first page too). */
int sm_volume_add_page(struct sm_volume *v,
		       const Ombra__V1__GetVolumeShardingInfoResponse *resp,
		       char *errmsg);

/* Replace one segment's placement (e.g. from ReplicaReportResponse). */
int sm_volume_set_segment(struct sm_volume *v,
			  const Ombra__V1__SegmentPlacement *p, char *errmsg);

void sm_volume_free(struct sm_volume *v);

/* The node's record in the volume, or NULL. */
const struct sm_node *sm_volume_node(const struct sm_volume *v, uint64_t id);

/* True when node is the primary or an in-sync replica of seg. */
bool sm_seg_in_sync(const struct sm_seg *s, uint64_t node);

/* True when node is listed among seg's shadows. */
bool sm_seg_has_shadow(const struct sm_seg *s, uint64_t node);

/* True when node holds a home role (primary, in-sync replica or re-sync
 * target) for some segment of v. */
bool sm_volume_has_home_role(const struct sm_volume *v, uint64_t node);

/* ------------------------------------------------ cache (loop only) */

struct shardmap {
	struct sm_volume *head;
};

struct sm_volume *sm_find(struct shardmap *m, uint64_t id);

/* Insert v, replacing (and freeing) a cached volume with the same id;
 * v keeps the higher writer_epoch of the two. */
void sm_put(struct shardmap *m, struct sm_volume *v);

/* Remove and free the volume; no-op if absent. */
void sm_remove(struct shardmap *m, uint64_t id);

void sm_clear(struct shardmap *m);

#endif
