/* foreign_logic.c: watermark and present-block rules of one foreign copy
 * (see foreign_logic.h and docs/shadows.md "The watermark and the write
 * chain").  Pure: no I/O, no allocation.
 *
 * Failure: none; block numbers outside the segment are ignored. */
#include <stdio.h>
#include <string.h>

#include "foreign_logic.h"

#define SEQ_MASK ((UINT64_C(1) << 40) - 1)

void fc_init(struct fc_copy *c, uint64_t vol, uint64_t seg, enum fc_kind kind,
	     uint32_t n_blocks, uint64_t now_ms)
{
	memset(c, 0, sizeof(*c));
	c->vol = vol;
	c->seg = seg;
	c->kind = kind;
	c->n_blocks = n_blocks > FC_MAX_BLOCKS ? FC_MAX_BLOCKS : n_blocks;
	c->last_use_ms = now_ms;
}

bool fc_present(const struct fc_copy *c, uint32_t block)
{
	return block < c->n_blocks &&
	       (c->present[block / 64] >> (block % 64) & 1) != 0;
}

bool fc_all_present(const struct fc_copy *c, uint32_t first, uint32_t n)
{
	if (n == 0 || first >= c->n_blocks || n > c->n_blocks - first) {
		return false;
	}
	for (uint32_t b = first; b < first + n; b++) {
		if (!fc_present(c, b)) {
			return false;
		}
	}
	return true;
}

static void set_present(struct fc_copy *c, uint32_t b)
{
	if (b < c->n_blocks && !fc_present(c, b)) {
		c->present[b / 64] |= UINT64_C(1) << (b % 64);
		c->n_present++;
	}
}

static bool clear_present(struct fc_copy *c, uint32_t b)
{
	if (!fc_present(c, b)) {
		return false;
	}
	c->present[b / 64] &= ~(UINT64_C(1) << (b % 64));
	c->n_present--;
	return true;
}

bool fc_next_missing(const struct fc_copy *c, uint32_t max, uint32_t *first,
		     uint32_t *n)
{
	uint32_t b = 0, k = 0;

	while (b < c->n_blocks && fc_present(c, b)) {
		b++;
	}
	while (b + k < c->n_blocks && k < max && !fc_present(c, b + k)) {
		k++;
	}
	*first = b;
	*n = k;
	return k > 0;
}

bool fc_behind_range(const struct fc_copy *c, const uint64_t *primary,
		     const uint64_t *local, uint32_t n, uint32_t *lo,
		     uint32_t *hi)
{
	bool any = false;

	for (uint32_t i = 0; i < n && i < c->n_blocks; i++) {
		if (fc_present(c, i) && primary[i] > local[i]) {
			if (!any) {
				*lo = i;
			}
			*hi = i;
			any = true;
		}
	}
	return any;
}

bool fc_ae_confirm(struct fc_copy *c, const uint64_t *present_then, uint64_t v,
		   uint64_t asked_ms)
{
	for (size_t i = 0; i < FC_MAX_BLOCKS / 64; i++) {
		if ((c->present[i] & ~present_then[i]) != 0) {
			return false;
		}
	}
	if (v >= c->watermark) {
		fc_confirmed(c, v, asked_ms);
	}
	return true;
}

void fc_primary_seen(struct fc_copy *c, uint64_t v, uint64_t now_ms)
{
	if (v > c->primary_version) {
		c->primary_version = v;
		c->primary_ms = now_ms;
	}
}

void fc_pulled(struct fc_copy *c, uint32_t first, uint32_t n, uint64_t v,
	       uint64_t now_ms)
{
	bool empty = c->n_present == 0;
	bool lowered = empty || v < c->watermark;

	for (uint32_t i = 0; i < n; i++) {
		set_present(c, first + i);
	}
	if (lowered) {
		c->watermark = v;
		c->n_runs = 0; /* claims made against the old watermark */
	}
	if (c->watermark == v && (lowered || now_ms > c->confirmed_ms)) {
		/* v was the primary's version when the read was sent. */
		c->confirmed_ms = now_ms;
	}
	fc_primary_seen(c, v, now_ms);
	c->last_use_ms = now_ms;
}

/* Move the watermark up to version (the writes up to it are applied). */
static void advance(struct fc_copy *c, uint64_t version, uint64_t acked_ms)
{
	c->watermark = version;
	if (acked_ms > c->confirmed_ms && version >= c->primary_version) {
		c->confirmed_ms = acked_ms;
	}
}

/* Fold the remembered runs the watermark has reached; drop the ones it
 * has passed. */
static void fold_runs(struct fc_copy *c)
{
	uint32_t i = 0;

	while (i < c->n_runs) {
		struct fc_run r = c->runs[i];

		if (r.prev > c->watermark && r.version > c->watermark) {
			i++; /* still ahead */
			continue;
		}
		c->runs[i] = c->runs[--c->n_runs]; /* look at i again */
		if (r.version > c->watermark) {
			advance(c, r.version, r.acked_ms);
			i = 0; /* earlier runs may continue it now */
		}
	}
}

/* Remember a run ahead of the watermark, forgetting the oldest if full. */
static void remember_run(struct fc_copy *c, uint64_t prev, uint64_t version,
			 uint64_t acked_ms)
{
	uint32_t i = c->n_runs;

	if (i == FC_MAX_RUNS) {
		i = 0;
		for (uint32_t j = 1; j < c->n_runs; j++) {
			if (c->runs[j].version < c->runs[i].version) {
				i = j;
			}
		}
	} else {
		c->n_runs++;
	}
	c->runs[i] = (struct fc_run){prev, version, acked_ms};
}

bool fc_propagated(struct fc_copy *c, uint64_t prev, uint64_t version,
		   const uint32_t *invalidate, size_t n_invalidate,
		   uint64_t acked_ms)
{
	uint64_t before = c->watermark;

	for (size_t i = 0; i < n_invalidate; i++) {
		clear_present(c, invalidate[i]);
	}
	if (version > c->watermark && c->watermark >= prev) {
		advance(c, version, acked_ms);
	} else if (version > c->watermark && prev < version) {
		/* prev == version: a batch whose start is unknown (propq)
		 * claims nothing to fold. */
		remember_run(c, prev, version, acked_ms);
	}
	fc_primary_seen(c, version, acked_ms);
	fold_runs(c);
	return c->watermark > before;
}

void fc_confirmed(struct fc_copy *c, uint64_t v, uint64_t asked_ms)
{
	c->watermark = v;
	if (asked_ms > c->confirmed_ms) {
		c->confirmed_ms = asked_ms;
	}
	fc_primary_seen(c, v, asked_ms);
	fold_runs(c);
}

uint32_t fc_drop(struct fc_copy *c, uint32_t first, uint32_t n)
{
	uint32_t dropped = 0;

	for (uint64_t b = first; b < (uint64_t)first + n && b < c->n_blocks;
	     b++) {
		dropped += clear_present(c, (uint32_t)b) ? 1 : 0;
	}
	if (c->n_present == 0) {
		c->watermark = 0; /* nothing held, nothing claimed */
		c->n_runs = 0;
	}
	return dropped;
}

uint64_t fc_lag_versions(const struct fc_copy *c)
{
	uint64_t p = c->primary_version, w = c->watermark;

	if (w >= p) {
		return 0;
	}
	if ((p >> 40) != (w >> 40)) {
		return p & SEQ_MASK; /* a newer epoch: its whole sequence */
	}
	return (p & SEQ_MASK) - (w & SEQ_MASK);
}

uint64_t fc_lag_ms(const struct fc_copy *c, uint64_t now_ms)
{
	/* Current: the watermark is the primary's version known here.  A
	 * copy holding blocks of a segment never written at the primary
	 * (version 0 there too) is current at watermark 0; an empty copy
	 * claims nothing and is not. */
	if (c->watermark >= c->primary_version &&
	    (c->watermark != 0 || c->n_present > 0)) {
		return 0;
	}
	return now_ms > c->confirmed_ms ? now_ms - c->confirmed_ms : 0;
}

enum fc_refusal fc_check_read(const struct fc_copy *c, uint32_t first,
			      uint32_t n, uint64_t min_version,
			      uint64_t max_staleness_ms, bool lease_valid,
			      uint64_t now_ms, char *msg, size_t len)
{
	if (!fc_all_present(c, first, n)) {
		snprintf(msg, len,
			 "not present: the copy holds %u of the segment's %u "
			 "blocks, not all of blocks %u..%u",
			 c->n_present, c->n_blocks, first, first + n - 1);
		return FC_NOT_PRESENT;
	}
	if (min_version != 0 && c->watermark < min_version) {
		snprintf(msg, len,
			 "stale copy: watermark %llu < min_version %llu",
			 (unsigned long long)c->watermark,
			 (unsigned long long)min_version);
		return FC_BEHIND;
	}
	if (max_staleness_ms != 0) {
		uint64_t age =
		    c->confirmed_ms >= now_ms ? 0 : now_ms - c->confirmed_ms;

		if (!lease_valid) {
			snprintf(msg, len,
				 "stale copy: no read lease (node lease from "
				 "metad expired)");
			return FC_NO_READ_LEASE;
		}
		if (c->confirmed_ms == 0) {
			snprintf(msg, len,
				 "stale copy: never confirmed against the "
				 "primary, max_staleness_ms %llu",
				 (unsigned long long)max_staleness_ms);
			return FC_STALE;
		}
		if (age > max_staleness_ms) {
			snprintf(msg, len,
				 "stale copy: confirmed %llu ms ago, "
				 "max_staleness_ms %llu",
				 (unsigned long long)age,
				 (unsigned long long)max_staleness_ms);
			return FC_STALE;
		}
	}
	return FC_OK;
}

void fc_read_served(struct fc_copy *c, uint64_t now_ms)
{
	c->reads++;
	c->last_read_ms = now_ms;
	c->last_use_ms = now_ms;
}
