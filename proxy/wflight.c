/* wflight.c: writes in flight, by block range (wflight.h).
 * Failure: none. */
#include <stddef.h>

#include "wflight.h"

void wflight_add(struct wflight *f, struct wflight_ent *e, const void *vol,
		 uint64_t off, uint64_t len)
{
	e->vol = vol;
	e->off = off;
	e->len = len;
	e->prev = NULL;
	e->next = f->head;
	if (f->head != NULL)
		f->head->prev = e;
	f->head = e;
	e->added = true;
}

void wflight_remove(struct wflight *f, struct wflight_ent *e)
{
	if (!e->added)
		return;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		f->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	e->prev = e->next = NULL;
	e->added = false;
}

/* [first, end) blocks of a byte range; empty ranges touch nothing. */
static void blocks_of(uint64_t off, uint64_t len, uint64_t *first,
		      uint64_t *end)
{
	*first = off / WFLIGHT_BLOCK;
	*end =
	    len == 0 ? *first : (off + len + WFLIGHT_BLOCK - 1) / WFLIGHT_BLOCK;
}

bool wflight_overlaps(const struct wflight *f, const void *vol, uint64_t off,
		      uint64_t len)
{
	uint64_t a0, a1;

	blocks_of(off, len, &a0, &a1);
	for (const struct wflight_ent *e = f->head; e != NULL; e = e->next) {
		uint64_t b0, b1;

		if (e->vol != vol)
			continue;
		blocks_of(e->off, e->len, &b0, &b1);
		if (a0 < b1 && b0 < a1)
			return true;
	}
	return false;
}
