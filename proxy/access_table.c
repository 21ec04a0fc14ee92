/* access_table.c: the bounded per-segment access counter of access.h.
 *
 * An open-addressing hash on (volume id, segment) with room for
 * 2 * max_segments entries (load at most one half of the slots).  When it
 * is full, the entries are sorted by reads (then writes) and only the top
 * max_segments are kept (amortized O(log n) per new segment): the
 * reported segments are the interval's most read ones, except that a
 * segment trimmed early in the interval may have lost some counts.
 *
 * Failure: access_table_create() returns NULL on out of memory or a bad
 * size; nothing else fails or allocates. */
#include <stdlib.h>
#include <string.h>

#include "access.h"

struct access_table {
	size_t max;	      /* kept after a trim */
	size_t cap;	      /* entries before a trim: 2 * max */
	size_t n_slots;	      /* power of two >= 2 * cap */
	struct access_seg *e; /* cap entries, n used */
	size_t n;
	int32_t *slots; /* index into e, -1 = free */
};

/* ------------------------------------------------------------ table */

static uint64_t mix(uint64_t vol, uint64_t seg)
{
	uint64_t h =
	    vol * 0x9E3779B97F4A7C15ull ^ (seg + 0x632BE59BD9B4E019ull);

	h ^= h >> 31;
	h *= 0xBF58476D1CE4E5B9ull;
	return h ^ (h >> 29);
}

struct access_table *access_table_create(size_t max_segments)
{
	struct access_table *t = calloc(1, sizeof(*t));
	size_t slots = 16;

	if (t == NULL || max_segments == 0 || max_segments > (1u << 24)) {
		free(t);
		return NULL;
	}
	t->max = max_segments;
	t->cap = 2 * max_segments;
	while (slots < 2 * t->cap)
		slots *= 2;
	t->n_slots = slots;
	t->e = calloc(t->cap, sizeof(*t->e));
	t->slots = malloc(slots * sizeof(*t->slots));
	if (t->e == NULL || t->slots == NULL) {
		access_table_destroy(t);
		return NULL;
	}
	memset(t->slots, 0xff, slots * sizeof(*t->slots));
	return t;
}

void access_table_destroy(struct access_table *t)
{
	if (t == NULL)
		return;
	free(t->e);
	free(t->slots);
	free(t);
}

static void table_rehash(struct access_table *t)
{
	memset(t->slots, 0xff, t->n_slots * sizeof(*t->slots));
	for (size_t i = 0; i < t->n; i++) {
		size_t s =
		    mix(t->e[i].volume_id, t->e[i].seg) & (t->n_slots - 1);

		while (t->slots[s] >= 0)
			s = (s + 1) & (t->n_slots - 1);
		t->slots[s] = (int32_t)i;
	}
}

static int by_reads(const void *a, const void *b)
{
	const struct access_seg *x = a, *y = b;

	if (x->reads != y->reads)
		return x->reads > y->reads ? -1 : 1;
	if (x->writes != y->writes)
		return x->writes > y->writes ? -1 : 1;
	if (x->volume_id != y->volume_id)
		return x->volume_id < y->volume_id ? -1 : 1;
	return x->seg < y->seg ? -1 : x->seg > y->seg;
}

/* Keep the top t->max entries. */
static void table_trim(struct access_table *t)
{
	qsort(t->e, t->n, sizeof(*t->e), by_reads);
	if (t->n > t->max)
		t->n = t->max;
	table_rehash(t);
}

void access_table_note(struct access_table *t, uint64_t volume_id, uint64_t seg,
		       bool write, uint64_t bytes)
{
	size_t s = mix(volume_id, seg) & (t->n_slots - 1);
	struct access_seg *e;

	while (t->slots[s] >= 0) {
		e = &t->e[t->slots[s]];
		if (e->volume_id == volume_id && e->seg == seg)
			goto found;
		s = (s + 1) & (t->n_slots - 1);
	}
	if (t->n == t->cap) {
		table_trim(t);
		access_table_note(t, volume_id, seg, write, bytes);
		return;
	}
	e = &t->e[t->n];
	memset(e, 0, sizeof(*e));
	e->volume_id = volume_id;
	e->seg = seg;
	t->slots[s] = (int32_t)t->n++;
found:
	if (write) {
		if (e->writes < UINT32_MAX)
			e->writes++;
	} else {
		if (e->reads < UINT32_MAX)
			e->reads++;
		e->read_bytes += bytes;
	}
}

const struct access_seg *access_table_take(struct access_table *t, size_t *n)
{
	qsort(t->e, t->n, sizeof(*t->e), by_reads);
	*n = t->n < t->max ? t->n : t->max;
	/* Emptied for the next interval; the entries stay readable until
	 * the next note. */
	t->n = 0;
	memset(t->slots, 0xff, t->n_slots * sizeof(*t->slots));
	return t->e;
}
