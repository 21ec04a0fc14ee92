/* wtrack.c: the read-your-writes guard (wtrack.h): a direct-mapped table
 * of block -> version.  Failure: see wtrack.h (out of memory = no guard). */
#include <stdlib.h>

#include "wtrack.h"

static uint64_t slot_of(uint64_t block)
{
	/* Fibonacci hashing: neighbouring blocks spread over the table. */
	return (block * 0x9E3779B97F4A7C15ull) >> (64 - 16);
}

void wtrack_written(struct wtrack *t, uint64_t first, uint64_t n,
		    uint64_t version)
{
	if (version == 0)
		return;
	if (t->slots == NULL) {
		t->slots = calloc(WTRACK_SLOTS, sizeof(*t->slots));
		if (t->slots == NULL)
			return;
	}
	for (uint64_t b = first; b < first + n; b++) {
		struct wtrack_slot *s = &t->slots[slot_of(b)];

		if (s->block_plus1 == b + 1 && s->version > version)
			continue; /* a later write already answered */
		s->block_plus1 = b + 1;
		s->version = version;
	}
}

void wtrack_forget(struct wtrack *t, uint64_t first, uint64_t n)
{
	if (t->slots == NULL)
		return;
	for (uint64_t b = first; b < first + n; b++) {
		struct wtrack_slot *s = &t->slots[slot_of(b)];

		if (s->block_plus1 == b + 1)
			s->block_plus1 = 0;
	}
}

uint64_t wtrack_expected(const struct wtrack *t, uint64_t block)
{
	const struct wtrack_slot *s;

	if (t->slots == NULL)
		return 0;
	s = &t->slots[slot_of(block)];
	return s->block_plus1 == block + 1 ? s->version : 0;
}

void wtrack_reset(struct wtrack *t)
{
	free(t->slots);
	t->slots = NULL;
}
