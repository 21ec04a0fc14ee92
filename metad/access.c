/* access.c: the leader's bounded table of decayed access rates (contract,
 * algorithms and their sources in access.h).
 *
 * Layout: entries[capacity], a binary min-heap of entry indexes ordered by
 * forward-decayed weight (reads + writes + inherited error), and a bucket
 * array (power of two >= capacity) of singly linked chains through
 * entry.next for the (volume, segment, region) lookup.  Recording is
 * O(log capacity); a snapshot is O(n log n).  Failure: see access.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "cmd.h"
#include "err.h"

#define ACCESS_NONE UINT32_MAX
/* Rescale once the forward-decay factor reaches 2^ACCESS_RESCALE_EXP. */
#define ACCESS_RESCALE_EXP 256.0

struct access_entry {
	uint64_t volume_id;
	uint64_t segment;
	uint32_t region; /* index into regions */
	uint32_t next;	 /* bucket chain */
	uint32_t hpos;	 /* position in heap */
	uint64_t last_read_ms;
	double reads; /* forward-decayed, scaled by 2^((t-L)/H) */
	double writes;
	double error; /* inherited weight (Space-Saving) */
};

struct access_table {
	struct access_entry *entries;
	uint32_t *heap;
	uint32_t *buckets;
	size_t n, capacity, nbuckets;
	uint64_t half_life_ms;
	uint64_t landmark_ms; /* L */
	uint64_t last_ms;     /* latest time seen (monotonic) */
	char regions[ACCESS_REGIONS_MAX][CMD_NAME_MAX + 1];
	size_t n_regions;
};

static double weight(const struct access_entry *e)
{
	return e->reads + e->writes + e->error;
}

int access_create(size_t capacity, uint64_t half_life_ms,
		  struct access_table **out)
{
	struct access_table *t;

	if (capacity == 0 || capacity >= ACCESS_NONE || half_life_ms == 0)
		return OMBRA_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return OMBRA_ENOMEM;
	t->capacity = capacity;
	t->half_life_ms = half_life_ms;
	t->nbuckets = 1;
	while (t->nbuckets < capacity)
		t->nbuckets *= 2;
	t->entries = calloc(capacity, sizeof(*t->entries));
	t->heap = calloc(capacity, sizeof(*t->heap));
	t->buckets = malloc(t->nbuckets * sizeof(*t->buckets));
	if (t->entries == NULL || t->heap == NULL || t->buckets == NULL) {
		access_destroy(t);
		return OMBRA_ENOMEM;
	}
	access_reset(t);
	*out = t;
	return 0;
}

void access_destroy(struct access_table *t)
{
	if (t == NULL)
		return;
	free(t->entries);
	free(t->heap);
	free(t->buckets);
	free(t);
}

void access_reset(struct access_table *t)
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++)
		t->buckets[i] = ACCESS_NONE;
	t->n = 0;
	t->n_regions = 0;
	t->landmark_ms = 0;
	t->last_ms = 0;
}

size_t access_size(const struct access_table *t)
{
	return t->n;
}

size_t access_capacity(const struct access_table *t)
{
	return t->capacity;
}

/* splitmix64 finalizer (Steele, Lea, Flood, "Fast Splittable
 * Pseudorandom Number Generators", OOPSLA 2014) as a hash mixer. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static size_t bucket_of(const struct access_table *t, uint64_t volume_id,
			uint64_t segment, uint32_t region)
{
	uint64_t h = mix(volume_id ^ mix(segment ^ mix(region + 1)));

	return (size_t)(h & (t->nbuckets - 1));
}

static void heap_swap(struct access_table *t, size_t a, size_t b)
{
	uint32_t x = t->heap[a];

	t->heap[a] = t->heap[b];
	t->heap[b] = x;
	t->entries[t->heap[a]].hpos = (uint32_t)a;
	t->entries[t->heap[b]].hpos = (uint32_t)b;
}

static double heap_w(const struct access_table *t, size_t pos)
{
	return weight(&t->entries[t->heap[pos]]);
}

static void sift_up(struct access_table *t, size_t pos)
{
	while (pos > 0) {
		size_t parent = (pos - 1) / 2;

		if (heap_w(t, parent) <= heap_w(t, pos))
			break;
		heap_swap(t, parent, pos);
		pos = parent;
	}
}

static void sift_down(struct access_table *t, size_t pos)
{
	for (;;) {
		size_t l = 2 * pos + 1, r = l + 1, min = pos;

		if (l < t->n && heap_w(t, l) < heap_w(t, min))
			min = l;
		if (r < t->n && heap_w(t, r) < heap_w(t, min))
			min = r;
		if (min == pos)
			break;
		heap_swap(t, pos, min);
		pos = min;
	}
}

static void chain_unlink(struct access_table *t, uint32_t idx)
{
	const struct access_entry *e = &t->entries[idx];
	uint32_t *link =
	    &t->buckets[bucket_of(t, e->volume_id, e->segment, e->region)];

	while (*link != idx)
		link = &t->entries[*link].next;
	*link = e->next;
}

static void chain_link(struct access_table *t, uint32_t idx)
{
	struct access_entry *e = &t->entries[idx];
	size_t b = bucket_of(t, e->volume_id, e->segment, e->region);

	e->next = t->buckets[b];
	t->buckets[b] = idx;
}

static int region_intern(struct access_table *t, const char *region,
			 uint32_t *out)
{
	size_t i;

	for (i = 0; i < t->n_regions; i++) {
		if (strcmp(t->regions[i], region) == 0) {
			*out = (uint32_t)i;
			return 0;
		}
	}
	if (t->n_regions == ACCESS_REGIONS_MAX)
		return OMBRA_EINVAL;
	strncpy(t->regions[t->n_regions], region, CMD_NAME_MAX);
	t->regions[t->n_regions][CMD_NAME_MAX] = '\0';
	*out = (uint32_t)t->n_regions++;
	return 0;
}

/* 2^((now - L) / H), moving L to now first when it has grown large. */
static double forward_factor(struct access_table *t, uint64_t now)
{
	double exp = (double)(now - t->landmark_ms) / (double)t->half_life_ms;
	double scale;
	size_t i;

	if (t->n == 0) {
		t->landmark_ms = now;
		return 1.0;
	}
	if (exp < ACCESS_RESCALE_EXP)
		return exp2(exp);
	scale = exp2(-exp);
	for (i = 0; i < t->n; i++) {
		t->entries[i].reads *= scale;
		t->entries[i].writes *= scale;
		t->entries[i].error *= scale;
	}
	t->landmark_ms = now;
	return 1.0;
}

static uint64_t clamp_now(struct access_table *t, uint64_t now_ms)
{
	if (now_ms < t->last_ms)
		return t->last_ms;
	t->last_ms = now_ms;
	return now_ms;
}

int access_record(struct access_table *t, uint64_t now_ms, const char *region,
		  uint64_t volume_id, uint64_t segment, uint32_t reads,
		  uint32_t writes)
{
	struct access_entry *e;
	uint32_t r, idx;
	uint64_t now;
	double g;

	if (reads == 0 && writes == 0)
		return 0;
	if (region_intern(t, region, &r) != 0)
		return OMBRA_EINVAL;
	now = clamp_now(t, now_ms);
	g = forward_factor(t, now);
	idx = t->buckets[bucket_of(t, volume_id, segment, r)];
	while (idx != ACCESS_NONE) {
		e = &t->entries[idx];
		if (e->volume_id == volume_id && e->segment == segment &&
		    e->region == r)
			break;
		idx = e->next;
	}
	if (idx == ACCESS_NONE) {
		if (t->n < t->capacity) {
			idx = (uint32_t)t->n;
			e = &t->entries[idx];
			memset(e, 0, sizeof(*e));
			e->hpos = (uint32_t)t->n;
			t->heap[t->n++] = idx;
		} else {
			/* Space-Saving: take over the least entry, whose
			 * weight becomes the newcomer's error. */
			idx = t->heap[0];
			e = &t->entries[idx];
			chain_unlink(t, idx);
			e->error = weight(e);
			e->reads = 0;
			e->writes = 0;
			e->last_read_ms = 0;
		}
		e->volume_id = volume_id;
		e->segment = segment;
		e->region = r;
		chain_link(t, idx);
	}
	e = &t->entries[idx];
	e->reads += (double)reads * g;
	e->writes += (double)writes * g;
	if (reads > 0)
		e->last_read_ms = now;
	sift_down(t, e->hpos);
	sift_up(t, e->hpos);
	return 0;
}

static int cmp_rate(const void *a, const void *b)
{
	const struct access_rate *x = a, *y = b;

	if (x->volume_id != y->volume_id)
		return x->volume_id < y->volume_id ? -1 : 1;
	if (x->segment != y->segment)
		return x->segment < y->segment ? -1 : 1;
	return strcmp(x->region, y->region);
}

int access_snapshot(struct access_table *t, uint64_t now_ms,
		    struct access_rate **out, size_t *n)
{
	struct access_rate *rates;
	double per_s, g;
	uint64_t now;
	size_t i;

	*out = NULL;
	*n = 0;
	if (t->n == 0)
		return 0;
	rates = malloc(t->n * sizeof(*rates));
	if (rates == NULL)
		return OMBRA_ENOMEM;
	now = clamp_now(t, now_ms);
	g = exp2((double)(now - t->landmark_ms) / (double)t->half_life_ms);
	/* count * ln 2 / H(s), see access.h. */
	per_s = log(2.0) / ((double)t->half_life_ms / 1000.0) / g;
	for (i = 0; i < t->n; i++) {
		const struct access_entry *e = &t->entries[i];

		rates[i].volume_id = e->volume_id;
		rates[i].segment = e->segment;
		rates[i].region = t->regions[e->region];
		rates[i].reads_per_s = e->reads * per_s;
		rates[i].writes_per_s = e->writes * per_s;
		rates[i].last_read_ms = e->last_read_ms;
	}
	qsort(rates, t->n, sizeof(*rates), cmp_rate);
	*out = rates;
	*n = t->n;
	return 0;
}
