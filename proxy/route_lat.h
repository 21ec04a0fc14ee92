/* route_lat.h: the latency estimator behind read routing: per storage
 * node an EWMA of call latency, a ring of recent samples for the p99, and
 * the number of calls in flight, combined into one expected latency that
 * ranks the copies of a segment (docs/proxy.md "Latency table").
 *
 * Pure logic (no clock, no sockets, no allocation): proxy/nodes.c feeds it
 * from data calls and probes, tests/unit/test_route_lat.c drives it.
 *
 * Model: base = 0.75 * EWMA + 0.25 * p99 (a node with a long tail ranks
 * behind one with the same mean), expected = base * (1 + 0.5 * in-flight)
 * (each call already queued on the node delays ours by about half its
 * service time: a crude M/M/1-style queueing correction, enough to spread
 * load between copies of equal speed).  A node with no sample yet is
 * assumed to answer in LAT_UNKNOWN_MS; a node marked down ranks after every
 * node that is up.
 *
 * The p99 counts only the samples of the last LAT_WINDOW_MS.  A node that
 * no read is sent to gets one sample a second (the probe), so a ring of
 * 128 samples would keep one slow answer as its p99 for two minutes (the
 * nearest-rank p99 of up to 100 samples is their maximum): a local cache
 * node that answered one probe in 287 ms under load ranked behind remote
 * home copies for the rest of test_prefetch_engine.  Without a sample in
 * the window the p99 is the EWMA (no tail known).
 *
 * Units: milliseconds (double).  Failure: none (out-of-range inputs are
 * clamped: negative samples count as 0). */
#ifndef OMBRA_PROXY_ROUTE_LAT_H
#define OMBRA_PROXY_ROUTE_LAT_H

#include <stdbool.h>
#include <stdint.h>

#define LAT_RING 128u		/* samples kept for the p99 */
#define LAT_EWMA_ALPHA 0.2	/* weight of a new sample */
#define LAT_UNKNOWN_MS 10.0	/* expected latency before any sample */
#define LAT_INFLIGHT_FACTOR 0.5 /* queueing penalty per call in flight */
#define LAT_DOWN_PENALTY_MS 1e9 /* added to a down node's cost */
#define LAT_WINDOW_MS 10000u	/* age beyond which a sample leaves the p99 */
#define LAT_FAILOVER_FACTOR 4.0 /* failover deadline: this many p99s */
#define LAT_FAILOVER_MIN_MS 300 /* ... but at least this long */

struct lat_est {
	double ewma_ms;		  /* 0 until the first sample */
	float ring[LAT_RING];	  /* recent samples, ms */
	uint64_t at_ms[LAT_RING]; /* when each was taken (caller's clock) */
	uint32_t n_samples;	  /* in the ring (<= LAT_RING) */
	uint32_t next;		  /* ring slot for the next sample */
	double p99_ms;		  /* cached; valid unless dirty or expired */
	uint64_t p99_until_ms;	  /* the cache expires: a sample leaves */
	bool dirty;
	uint32_t inflight; /* calls sent and not answered */
};

/* Start empty (equivalent to zeroing the struct). */
void lat_init(struct lat_est *e);
/* Record one answered call's latency (ms), answered at now_ms (any
 * monotonic millisecond clock, the same for every call on e). */
void lat_sample(struct lat_est *e, double ms, uint64_t now_ms);
/* A call was sent (+1) or answered/failed (-1); never goes below 0. */
void lat_inflight(struct lat_est *e, int delta);
/* p99 at now_ms of the samples in the ring taken in the last
 * LAT_WINDOW_MS (ms); the EWMA when none is that recent, 0 without
 * samples. */
double lat_p99(struct lat_est *e, uint64_t now_ms);
/* Expected latency of one more call at now_ms (ms), see the model above;
 * down adds LAT_DOWN_PENALTY_MS. */
double lat_expected(struct lat_est *e, bool down, uint64_t now_ms);

/* How long (ms) a read at this node may take before the proxy gives up on
 * it and asks the next copy of the segment (docs/proxy.md "Read
 * failover"): LAT_FAILOVER_FACTOR times the p99 at now_ms, at least
 * LAT_FAILOVER_MIN_MS and at most max_ms (the normal call deadline).  A
 * node without samples gets max(LAT_FAILOVER_MIN_MS, 4 x LAT_UNKNOWN_MS).
 * A cut-off answer costs one more read elsewhere; waiting for a node that
 * is gone (a partitioned region) costs the whole call deadline. */
int lat_failover_ms(struct lat_est *e, uint64_t now_ms, int max_ms);

#endif
