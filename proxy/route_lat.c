/* route_lat.c: latency estimator of a storage node (route_lat.h): EWMA,
 * p99 over a ring of recent samples, in-flight penalty.
 *
 * The p99 is recomputed lazily (at most once per query after new samples)
 * by sorting a copy of the ring: 128 floats, cheap next to a network call.
 * p99 is the nearest-rank percentile: the ceil(0.99 n)-th smallest sample.
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

void lat_sample(struct lat_est *e, double ms)
{
	if (!(ms >= 0)) /* negative or NaN */
		ms = 0;
	e->ewma_ms = e->n_samples == 0 ? ms
				       : LAT_EWMA_ALPHA * ms +
					     (1 - LAT_EWMA_ALPHA) * e->ewma_ms;
	e->ring[e->next] = (float)ms;
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

double lat_p99(struct lat_est *e)
{
	float tmp[LAT_RING];
	uint32_t rank;

	if (e->n_samples == 0)
		return 0;
	if (!e->dirty)
		return e->p99_ms;
	memcpy(tmp, e->ring, e->n_samples * sizeof(tmp[0]));
	qsort(tmp, e->n_samples, sizeof(tmp[0]), cmp_float);
	rank = (uint32_t)ceil(0.99 * e->n_samples); /* 1-based */
	if (rank == 0)
		rank = 1;
	e->p99_ms = tmp[rank - 1];
	e->dirty = false;
	return e->p99_ms;
}

double lat_expected(struct lat_est *e, bool down)
{
	double base;

	if (e->n_samples == 0)
		base = LAT_UNKNOWN_MS;
	else
		base = 0.75 * e->ewma_ms + 0.25 * lat_p99(e);
	base *= 1 + LAT_INFLIGHT_FACTOR * e->inflight;
	return base + (down ? LAT_DOWN_PENALTY_MS : 0);
}
