/* settab.c: bounded set-associative record table (settab.h).
 *
 * Layout: one calloc'd array of n_sets * ways slots; a slot is a header
 * (key, recency stamp, used flag) followed by the payload.  Fails only at
 * creation (NULL when calloc fails). */
#include "predict/settab.h"

#include <stdlib.h>
#include <string.h>

struct slot_hdr {
	uint64_t k1;
	uint64_t k2;
	uint64_t stamp; /* 0 = empty; else last use, from t->clock */
};

struct settab {
	size_t payload_size; /* rounded up to 8 */
	size_t slot_size;
	size_t ways;
	size_t n_sets;
	uint64_t clock;
	unsigned char *slots;
};

uint64_t settab_hash(uint64_t k1, uint64_t k2)
{
	uint64_t z = k1 * 0x9e3779b97f4a7c15ULL ^ (k2 + 0x632be59bd9b4e019ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct settab *settab_create(size_t payload_size, size_t ways,
			     size_t budget_bytes)
{
	struct settab *t;
	size_t set_bytes;

	if (ways == 0)
		ways = 1;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->payload_size = (payload_size + 7) & ~(size_t)7;
	t->slot_size = sizeof(struct slot_hdr) + t->payload_size;
	t->ways = ways;
	set_bytes = t->slot_size * ways;
	t->n_sets = budget_bytes > sizeof(*t) + set_bytes
			? (budget_bytes - sizeof(*t)) / set_bytes
			: 1;
	t->slots = calloc(t->n_sets * ways, t->slot_size);
	if (t->slots == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

void settab_destroy(struct settab *t)
{
	if (t == NULL)
		return;
	free(t->slots);
	free(t);
}

static struct slot_hdr *slot_at(struct settab *t, size_t set, size_t way)
{
	return (struct slot_hdr *)(t->slots +
				   (set * t->ways + way) * t->slot_size);
}

static void *payload_of(struct slot_hdr *h)
{
	return h + 1;
}

static struct slot_hdr *lookup(struct settab *t, uint64_t k1, uint64_t k2)
{
	size_t set = settab_hash(k1, k2) % t->n_sets;

	for (size_t w = 0; w < t->ways; w++) {
		struct slot_hdr *h = slot_at(t, set, w);

		if (h->stamp != 0 && h->k1 == k1 && h->k2 == k2)
			return h;
	}
	return NULL;
}

void *settab_find(struct settab *t, uint64_t k1, uint64_t k2)
{
	struct slot_hdr *h = lookup(t, k1, k2);

	if (h == NULL)
		return NULL;
	h->stamp = ++t->clock;
	return payload_of(h);
}

void *settab_peek(struct settab *t, uint64_t k1, uint64_t k2)
{
	struct slot_hdr *h = lookup(t, k1, k2);

	return h != NULL ? payload_of(h) : NULL;
}

void *settab_get(struct settab *t, uint64_t k1, uint64_t k2, int *fresh)
{
	size_t set = settab_hash(k1, k2) % t->n_sets;
	struct slot_hdr *victim = NULL;

	for (size_t w = 0; w < t->ways; w++) {
		struct slot_hdr *h = slot_at(t, set, w);

		if (h->stamp != 0 && h->k1 == k1 && h->k2 == k2) {
			h->stamp = ++t->clock;
			*fresh = 0;
			return payload_of(h);
		}
		if (victim == NULL || h->stamp < victim->stamp)
			victim = h;
	}
	victim->k1 = k1;
	victim->k2 = k2;
	victim->stamp = ++t->clock;
	memset(payload_of(victim), 0, t->payload_size);
	*fresh = 1;
	return payload_of(victim);
}

size_t settab_memory(const struct settab *t)
{
	return sizeof(*t) + t->n_sets * t->ways * t->slot_size;
}

size_t settab_capacity(const struct settab *t)
{
	return t->n_sets * t->ways;
}
