/* route.h: which copies of a segment may serve a read part, in which order,
 * and what each is asked (docs/shadows.md "Which copy may serve a read",
 * docs/proxy.md "Routing and consistency").
 *
 * Pure logic: the I/O engine (proxy/io.c) gathers the candidates (primary,
 * in-sync replicas, shadows, the prefetch cache holder) with their
 * expected latency (nodes_expected_ms), the consistency the client asked
 * for and, for STRONG, the segment's latest version when this proxy holds
 * the volume's writer lease (segver.h); route_plan() answers the ordered
 * attempts.  tests/unit/test_route.c drives it.
 *
 * Eligibility of a foreign copy (shadow or cache entry; home copies always
 * qualify and are asked without foreign_ok, so they answer STRONG):
 *   STRONG    only with writer_known (the writer lease is valid and the
 *             segment's latest version L was learned under it, 0 for a
 *             segment never written): foreign_ok, min_version = L;
 *   BOUNDED   foreign_ok with the client's min_version and/or
 *             max_staleness_ms (at least one is set, route_check());
 *   EVENTUAL  foreign_ok, no bound.
 * The node itself enforces the bound (FAILED_PRECONDITION otherwise), so a
 * plan never makes a read return older data than the level allows; it only
 * decides where to ask first.
 *
 * Order: by expected latency, ascending; ties keep the input order (the
 * primary first, then replicas, shadows, cache).  A node listed twice is
 * asked once, as a home copy if it is one.
 *
 * Failure: route_check() returns false with a message for invalid
 * arguments (answered INVALID_ARGUMENT by the service). */
#ifndef OMBRA_PROXY_ROUTE_H
#define OMBRA_PROXY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Values of ombra.v1.Consistency (common.proto); 0 means STRONG. */
enum route_level {
	ROUTE_UNSPECIFIED = 0,
	ROUTE_STRONG = 1,
	ROUTE_BOUNDED = 2,
	ROUTE_EVENTUAL = 3,
};

enum route_kind { ROUTE_HOME, ROUTE_SHADOW, ROUTE_CACHE, ROUTE_KINDS };

/* Most candidates of one segment: replication factor + shadows + cache. */
#define ROUTE_MAX_CANDS 16

struct route_cand {
	uint64_t node;
	enum route_kind kind;
	double cost; /* expected latency, ms (lower first) */
};

struct route_want {
	enum route_level level;
	uint64_t min_version;	   /* BOUNDED: read-your-writes token */
	uint64_t max_staleness_ms; /* BOUNDED */
	/* STRONG: the segment's latest version known under a valid writer
	 * lease held by this proxy, if writer_known (else home copies
	 * only). */
	uint64_t writer_version;
	bool writer_known;
};

/* One attempt: ask node with these StoreReadRequest fields. */
struct route_try {
	uint64_t node;
	enum route_kind kind;
	bool foreign_ok;
	uint64_t min_version, max_staleness_ms;
};

/* Validate a client's read arguments (ReadRequest.consistency,
 * max_staleness_ms, min_version; level as the raw enum value).  Returns
 * true, or false with errmsg (len bytes) saying what is wrong: an unknown
 * level, BOUNDED without a bound, a bound with another level. */
bool route_check(int level, uint64_t max_staleness_ms, uint64_t min_version,
		 char *errmsg, size_t len);

/* Fill out (at most max entries) with the attempts for a read wanting w
 * from the n candidates c, in order.  Returns the count (0 when n is 0). */
unsigned route_plan(const struct route_want *w, const struct route_cand *c,
		    unsigned n, struct route_try *out, unsigned max);

/* Cost of a candidate for ordering (ms): its expected latency, times
 * ROUTE_REMOTE_FACTOR plus ROUTE_REMOTE_MS when it is in another region
 * than this proxy.  Cross-region reads are billed and share the WAN link,
 * so a copy in this region wins unless a remote one is clearly faster;
 * real WAN round trips (tens of ms) dwarf the bias, which mostly decides
 * between copies that measure alike (a LAN, loopback). */
#define ROUTE_REMOTE_FACTOR 1.5
#define ROUTE_REMOTE_MS 0.5
double route_cost(double expected_ms, bool local);

/* "home", "shadow", "cache" (static). */
const char *route_kind_name(enum route_kind k);

#endif
