/* segver.c: latest known version per segment under a writer lease
 * (segver.h): a direct-mapped table indexed by segment number, claimed
 * at send, known after an answer to a send at or after the claim.
 *
 * Failure: calloc failure leaves the table unallocated (nothing known). */
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

uint64_t segver_sent(struct segver *s, uint64_t seg, bool may_evict)
{
	struct segver_slot *x;
	uint64_t token = ++s->sends;

	if (s->slots == NULL) {
		s->slots = calloc(SEGVER_SLOTS, sizeof(*s->slots));
		if (s->slots == NULL)
			return token;
	}
	x = &s->slots[seg % SEGVER_SLOTS];
	if (x->seg_plus1 != seg + 1 && (x->seg_plus1 == 0 || may_evict)) {
		/* Claim (evicting a colliding segment). */
		x->seg_plus1 = seg + 1;
		x->version = 0;
		x->claim = token;
		x->known = false;
	}
	return token;
}

/* An answer of seg to the send with token, under epoch. */
static void answered(struct segver *s, uint64_t epoch, uint64_t seg,
		     uint64_t version, uint64_t token)
{
	struct segver_slot *x;

	if (epoch == 0 || epoch != s->epoch || s->slots == NULL)
		return;
	x = &s->slots[seg % SEGVER_SLOTS];
	if (x->seg_plus1 != seg + 1)
		return;
	if (version > x->version)
		x->version = version;
	if (token >= x->claim)
		x->known = true;
}

void segver_write_acked(struct segver *s, uint64_t epoch, uint64_t seg,
			uint64_t version, uint64_t token)
{
	answered(s, epoch, seg, version, token);
}

void segver_write_failed(struct segver *s, uint64_t seg)
{
	struct segver_slot *x;

	if (s->slots == NULL)
		return;
	x = &s->slots[seg % SEGVER_SLOTS];
	if (x->seg_plus1 == seg + 1)
		x->seg_plus1 = 0;
}

void segver_read_primary(struct segver *s, uint64_t epoch, uint64_t seg,
			 uint64_t version, uint64_t token)
{
	answered(s, epoch, seg, version, token);
}

bool segver_known(const struct segver *s, uint64_t epoch, uint64_t seg,
		  uint64_t *version)
{
	const struct segver_slot *x;

	*version = 0;
	if (s->slots == NULL || epoch == 0 || epoch != s->epoch)
		return false;
	x = &s->slots[seg % SEGVER_SLOTS];
	if (x->seg_plus1 != seg + 1 || !x->known)
		return false;
	*version = x->version;
	return true;
}
