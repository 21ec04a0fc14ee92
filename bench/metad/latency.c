/* latency.c: latency samples and exact nearest-rank percentiles for
 * ombra-bench-metad (see latency.h).
 *
 * Failure: only allocation can fail (OMBRA_ENOMEM); a failed append leaves
 * the array as it was. */
#include <math.h>
#include <stdlib.h>

#include "err.h"
#include "latency.h"

void bench_lat_init(struct bench_lat *l)
{
	l->ns = NULL;
	l->n = 0;
	l->cap = 0;
}

void bench_lat_free(struct bench_lat *l)
{
	free(l->ns);
	bench_lat_init(l);
}

/* Make room for at least want samples in total. */
static int bench_lat_reserve(struct bench_lat *l, size_t want)
{
	size_t cap = l->cap ? l->cap : 1024;
	int64_t *p;

	if (want <= l->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	p = realloc(l->ns, cap * sizeof(*p));
	if (p == NULL)
		return OMBRA_ENOMEM;
	l->ns = p;
	l->cap = cap;
	return 0;
}

int bench_lat_add(struct bench_lat *l, int64_t ns)
{
	int rv = bench_lat_reserve(l, l->n + 1);

	if (rv != 0)
		return rv;
	l->ns[l->n++] = ns < 0 ? 0 : ns;
	return 0;
}

int bench_lat_merge(struct bench_lat *dst, const struct bench_lat *src)
{
	int rv = bench_lat_reserve(dst, dst->n + src->n);
	size_t i;

	if (rv != 0)
		return rv;
	for (i = 0; i < src->n; i++)
		dst->ns[dst->n++] = src->ns[i];
	return 0;
}

static int bench_lat_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a;
	int64_t y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: 1-based rank ceil(p/100 * n), clamped to 1..n. */
static double bench_lat_rank_ms(const struct bench_lat *l, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)l->n);

	if (rank < 1)
		rank = 1;
	if (rank > l->n)
		rank = l->n;
	return (double)l->ns[rank - 1] / 1e6;
}

void bench_lat_summarize(struct bench_lat *l, struct bench_lat_summary *out)
{
	double sum = 0;
	size_t i;

	out->count = l->n;
	out->p50_ms = out->p99_ms = out->max_ms = out->mean_ms = 0;
	if (l->n == 0)
		return;
	qsort(l->ns, l->n, sizeof(*l->ns), bench_lat_cmp);
	for (i = 0; i < l->n; i++)
		sum += (double)l->ns[i];
	out->p50_ms = bench_lat_rank_ms(l, 50.0);
	out->p99_ms = bench_lat_rank_ms(l, 99.0);
	out->max_ms = (double)l->ns[l->n - 1] / 1e6;
	out->mean_ms = sum / (double)l->n / 1e6;
}
