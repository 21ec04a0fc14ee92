/* placement.h: default placement of segment copies by weighted rendezvous
 * (highest random weight) hashing.
 *
 * Rendezvous hashing: Thaler & Ravishankar, "Using Name-Based Mappings to
 * Increase Hit Rates", IEEE/ACM ToN 1998.  Weighted scores -w / ln(u), u in
 * (0,1) uniform from a hash of (volume, segment, node): Schindelhauer &
 * Schomaker, "Weighted Distributed Hash Tables", SPAA 2005.  Each node wins a
 * share of segments proportional to its weight, and adding a node moves only
 * the segments the new node wins.  Pure functions: no allocation, no I/O,
 * deterministic on every member. */
#ifndef OMBRA_METAD_PLACEMENT_H
#define OMBRA_METAD_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

struct placement_node {
	uint64_t id;	 /* node id, the hash input */
	uint64_t weight; /* capacity in bytes; 0 = never chosen */
};

/* Choose up to k distinct nodes for (volume_id, segment) from nodes[0..n).
 * Writes their ids to out[0..ret) in descending score: out[0] is the
 * primary, the rest are the in-sync replicas.  Returns min(k, number of nodes
 * with weight > 0). */
size_t placement_pick(const struct placement_node *nodes, size_t n,
		      uint64_t volume_id, uint64_t segment, size_t k,
		      uint64_t *out);

/* The score of one node for one segment (exposed for tests). */
double placement_score(uint64_t volume_id, uint64_t segment,
		       const struct placement_node *node);

#endif
