/* segver.c: latest known version per segment under a writer lease
 * (segver.h): a direct-mapped table indexed by segment number.
 *
 * Failure: calloc failure leaves the table unallocated (nothing known;
 * write completions then count for every segment). */
#include <stdbool.h>
#include <stdlib.h>

#include "segver.h"

void segver_free(struct segver *s)
{
	free(s->slots);
	s->slots = NULL;
}

void segver_reset(struct segver *s, uint64_t epoch)
{
	segver_free(s);
	s->epoch = epoch;
}

/* Raise seg's entry to version, or make it if create. */
static void learn(struct segver *s, uint64_t epoch, uint64_t seg,
		  uint64_t version, bool create)
{
	struct segver_slot *x;

	if (epoch == 0 || epoch != s->epoch || version == 0)
		return;
	if (s->slots == NULL) {
		if (!create)
			return;
		s->slots = calloc(SEGVER_SLOTS, sizeof(*s->slots));
		if (s->slots == NULL)
			return;
	}
	x = &s->slots[seg % SEGVER_SLOTS];
	if (x->seg_plus1 == seg + 1) {
		if (version > x->version)
			x->version = version;
	} else if (create) {
		x->seg_plus1 = seg + 1; /* evicts a colliding segment */
		x->version = version;
	}
}

/* Count a write completion of seg: in its slot, or in untracked when the
 * table cannot be allocated. */
static void completed(struct segver *s, uint64_t seg)
{
	s->writes++;
	if (s->slots == NULL)
		s->slots = calloc(SEGVER_SLOTS, sizeof(*s->slots));
	if (s->slots == NULL)
		s->untracked = s->writes;
	else
		s->slots[seg % SEGVER_SLOTS].last_write = s->writes;
}

void segver_write_acked(struct segver *s, uint64_t epoch, uint64_t seg,
			uint64_t version)
{
	completed(s, seg);
	learn(s, epoch, seg, version, false);
}

void segver_write_failed(struct segver *s, uint64_t seg)
{
	struct segver_slot *x;

	completed(s, seg);
	if (s->slots == NULL)
		return;
	x = &s->slots[seg % SEGVER_SLOTS];
	if (x->seg_plus1 == seg + 1)
		x->seg_plus1 = 0;
}

uint64_t segver_writes(const struct segver *s)
{
	return s->writes;
}

void segver_read_primary(struct segver *s, uint64_t epoch, uint64_t seg,
			 uint64_t version, uint64_t writes_at_send)
{
	bool clean =
	    s->untracked <= writes_at_send &&
	    (s->slots == NULL ||
	     s->slots[seg % SEGVER_SLOTS].last_write <= writes_at_send);

	learn(s, epoch, seg, version, clean);
}

uint64_t segver_latest(const struct segver *s, uint64_t epoch, uint64_t seg)
{
	const struct segver_slot *x;

	if (s->slots == NULL || epoch == 0 || epoch != s->epoch)
		return 0;
	x = &s->slots[seg % SEGVER_SLOTS];
	return x->seg_plus1 == seg + 1 ? x->version : 0;
}
