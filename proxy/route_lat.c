/* route_lat.c: latency estimator of a storage node (route_lat.h): EWMA,
 * p99 over a ring of recent samples, in-flight penalty.
 *
 * The p99 is recomputed lazily (at most once per query after new samples
 * or once a counted sample has left the window) by sorting a copy of the
 * samples of the last LAT_WINDOW_MS: at most 128 floats, cheap next to a
 * network call.  p99 is the nearest-rank percentile: the ceil(0.99 n)-th
 * smallest of those n samples.
 *
 * Failure: none. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "route_lat.h"

void lat_init(struct lat_est *e)
{
	memset(e, 0, sizeof(*e));
}

void lat_sample(struct lat_est *e, double ms, uint64_t now_ms)
{
	if (!(ms >= 0)) /* negative or NaN */
		ms = 0;
	e->ewma_ms = e->n_samples == 0 ? ms
				       : LAT_EWMA_ALPHA * ms +
					     (1 - LAT_EWMA_ALPHA) * e->ewma_ms;
	e->ring[e->next] = (float)ms;
	e->at_ms[e->next] = now_ms;
	e->next = (e->next + 1) % LAT_RING;
	if (e->n_samples < LAT_RING)
		e->n_samples++;
	e->dirty = true;
}

void lat_inflight(struct lat_est *e, int delta)
{
	if (delta < 0 && (uint32_t)-delta > e->inflight)
		e->inflight = 0;
	else
		e->inflight = (uint32_t)((int64_t)e->inflight + delta);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

double lat_p99(struct lat_est *e, uint64_t now_ms)
{
	float tmp[LAT_RING];
	uint64_t until = UINT64_MAX;
	uint32_t n = 0, rank;

	if (e->n_samples == 0)
		return 0;
	if (!e->dirty && now_ms < e->p99_until_ms)
		return e->p99_ms;
	for (uint32_t i = 0; i < e->n_samples; i++) {
		/* A sample "from the future" (clock skew between callers)
		 * counts as fresh. */
		if (e->at_ms[i] <= now_ms &&
		    now_ms - e->at_ms[i] >= LAT_WINDOW_MS)
			continue;
		tmp[n++] = e->ring[i];
		if (e->at_ms[i] + LAT_WINDOW_MS < until)
			until = e->at_ms[i] + LAT_WINDOW_MS;
	}
	if (n == 0) {
		/* Nothing recent: no tail known beyond the mean. */
		e->p99_ms = e->ewma_ms;
		e->p99_until_ms = UINT64_MAX;
	} else {
		qsort(tmp, n, sizeof(tmp[0]), cmp_float);
		rank = (uint32_t)ceil(0.99 * n); /* 1-based */
		if (rank == 0)
			rank = 1;
		e->p99_ms = tmp[rank - 1];
		e->p99_until_ms = until;
	}
	e->dirty = false;
	return e->p99_ms;
}

double lat_expected(struct lat_est *e, bool down, uint64_t now_ms)
{
	double base;

	if (e->n_samples == 0)
		base = LAT_UNKNOWN_MS;
	else
		base = 0.75 * e->ewma_ms + 0.25 * lat_p99(e, now_ms);
	base *= 1 + LAT_INFLIGHT_FACTOR * e->inflight;
	return base + (down ? LAT_DOWN_PENALTY_MS : 0);
}

int lat_failover_ms(struct lat_est *e, uint64_t now_ms, int max_ms)
{
	double p99 = e->n_samples == 0 ? LAT_UNKNOWN_MS : lat_p99(e, now_ms);
	double ms = LAT_FAILOVER_FACTOR * p99;

	if (ms < LAT_FAILOVER_MIN_MS)
		ms = LAT_FAILOVER_MIN_MS;
	if (ms > max_ms)
		ms = max_ms;
	return (int)ms;
}
