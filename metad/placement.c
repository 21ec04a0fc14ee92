/* placement.c: weighted rendezvous hashing for the default placement of
 * segment copies (see placement.h for the references).
 *
 * Every member of the metad cluster and every proxy must compute the same
 * answer, so the hash is a fixed integer function and the only floating
 * point is one log() per (segment, node) on IEEE doubles.  Pure functions:
 * they cannot fail; a node with weight 0 is never chosen, and when fewer
 * nodes than k have weight > 0 fewer ids are returned. */
#include "placement.h"

#include <math.h>
#include <stdbool.h>

/* The splitmix64 output function (Steele, Lea & Flood, "Fast Splittable
 * Pseudorandom Number Generators", OOPSLA 2014; constants from Stafford's
 * "Mix13" variant): a bijection on 64 bits with full avalanche. */
static uint64_t placement_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Absorb the three inputs one at a time, mixing fully after each, so that
 * any change in any input changes about half the output bits. */
static uint64_t placement_hash64(uint64_t volume_id, uint64_t segment,
				 uint64_t node_id)
{
	const uint64_t golden = UINT64_C(0x9e3779b97f4a7c15);
	uint64_t h;

	h = placement_mix64(volume_id + golden);
	h = placement_mix64(h ^ (segment + 2 * golden));
	h = placement_mix64(h ^ (node_id + 3 * golden));
	return h;
}

double placement_score(uint64_t volume_id, uint64_t segment,
		       const struct placement_node *node)
{
	uint64_t h;
	double u;

	if (node == NULL || node->weight == 0)
		return 0.0;
	h = placement_hash64(volume_id, segment, node->id);
	/* 53 random bits, centred in their bucket: u is in (0, 1). */
	u = ((double)(h >> 11) + 0.5) * 0x1p-53;
	return -(double)node->weight / log(u);
}

/* Order of candidates: higher score first, then lower id. */
static bool placement_better(double sa, uint64_t ida, double sb, uint64_t idb)
{
	if (sa != sb)
		return sa > sb;
	return ida < idb;
}

static bool placement_taken(const uint64_t *out, size_t m, uint64_t id)
{
	size_t i;

	for (i = 0; i < m; i++) {
		if (out[i] == id)
			return true;
	}
	return false;
}

/* k selection passes: pass j picks the best node ranked strictly below the
 * pick of pass j-1.  O(n * k) score evaluations and no allocation; n is
 * the number of nodes in one region and k at most a handful. */
size_t placement_pick(const struct placement_node *nodes, size_t n,
		      uint64_t volume_id, uint64_t segment, size_t k,
		      uint64_t *out)
{
	double prev_score = 0.0;
	uint64_t prev_id = 0;
	size_t m;
	size_t i;

	if (nodes == NULL || out == NULL)
		return 0;
	for (m = 0; m < k; m++) {
		double best_score = 0.0;
		uint64_t best_id = 0;
		bool found = false;

		for (i = 0; i < n; i++) {
			double s;

			if (nodes[i].weight == 0)
				continue;
			s = placement_score(volume_id, segment, &nodes[i]);
			if (m > 0 && !placement_better(prev_score, prev_id, s,
						       nodes[i].id))
				continue;
			if (placement_taken(out, m, nodes[i].id))
				continue;
			if (!found || placement_better(s, nodes[i].id,
						       best_score, best_id)) {
				best_score = s;
				best_id = nodes[i].id;
				found = true;
			}
		}
		if (!found)
			break;
		out[m] = best_id;
		prev_score = best_score;
		prev_id = best_id;
	}
	return m;
}
