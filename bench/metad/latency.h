/* latency.h: per-operation latency samples and their summary (count,
 * p50, p99, max, mean) for ombra-bench-metad.
 *
 * Every sample is kept (a 10 s phase at a few thousand ops/s is well under
 * a megabyte), so percentiles are exact, not estimated from buckets.
 *
 * Failure: bench_lat_add() and bench_lat_merge() return OMBRA_ENOMEM when
 * the sample array cannot grow; the samples recorded so far stay valid. */
#ifndef OMBRA_BENCH_LATENCY_H
#define OMBRA_BENCH_LATENCY_H

#include <stddef.h>
#include <stdint.h>

/* Growable array of latencies in nanoseconds; zero-initialize, or
 * bench_lat_init().  Owned by one thread at a time. */
struct bench_lat {
	int64_t *ns;
	size_t n;
	size_t cap;
};

struct bench_lat_summary {
	size_t count;
	double p50_ms;
	double p99_ms;
	double max_ms;
	double mean_ms;
};

void bench_lat_init(struct bench_lat *l);
void bench_lat_free(struct bench_lat *l);

/* Record one latency of ns nanoseconds (>= 0).  Returns 0 or
 * OMBRA_ENOMEM. */
int bench_lat_add(struct bench_lat *l, int64_t ns);

/* Append every sample of src to dst (src unchanged).  0 or OMBRA_ENOMEM. */
int bench_lat_merge(struct bench_lat *dst, const struct bench_lat *src);

/* Sort l's samples in place and summarize them.  Percentiles use the
 * nearest-rank definition: the p-th percentile is the smallest sample such
 * that at least p% of all samples are <= it (sample ceil(p/100 * n) in
 * sorted order).  With no samples every field is 0. */
void bench_lat_summarize(struct bench_lat *l, struct bench_lat_summary *out);

#endif
