/* segstore_scrub.c: the background scrub: verifies every written block of
 * every segment in (volume, block) order, a bounded number per call, and
 * reports bad ones through a callback outside the store's locks.
 *
 * A cursor (volume, block, passes) is all the state, so a daemon can stop
 * and resume anywhere, and a volume deleted mid-pass is simply skipped.
 * Failure: index errors are returned (OMBRA_EIO); unreadable or corrupt
 * blocks are reported through the callback, never as an error. */
#include <stdio.h>
#include <stdlib.h>

#include "segstore_internal.h"

/* Where the scrub continues: the first segment record at or after the
 * cursor's block, as (*volume_id, *segment, *first block inside it).
 * 0, OMBRA_ENOTFOUND past the last record, or OMBRA_EIO. */
static int seg_scrub_locate(struct segstore *s,
			    const struct segstore_scrub_cursor *cursor,
			    uint64_t *volume_id, uint64_t *segment,
			    uint32_t *first, char *errmsg)
{
	uint8_t key[SEG_KEY_LEN];
	MDB_val k = {SEG_KEY_LEN, key}, v;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	uint32_t segment_size;
	uint64_t per_seg, vol = cursor->volume_id, seg = 0, in_seg = 0;
	int rc, rv;

	*first = 0;
	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = seg_volume_get(s, txn, cursor->volume_id, &segment_size, errmsg);
	if (rv == 0) {
		per_seg = segment_size / SEGSTORE_BLOCK_SIZE;
		seg = cursor->block / per_seg;
		in_seg = cursor->block % per_seg;
	} else if (rv != OMBRA_ENOTFOUND || vol == UINT64_MAX) {
		/* An index error, or the last possible volume is gone. */
		goto out;
	} else {
		/* The volume is gone (or never was): the next one. */
		vol++;
	}
	rv = 0;
	rc = mdb_cursor_open(txn, s->dbi[SEG_DB_SEGMENTS], &cur);
	if (rc != 0) {
		rv = seg_lmdb_error(errmsg, rc, "mdb_cursor_open");
		goto out;
	}
	seg_key_encode(key, vol, seg);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == MDB_NOTFOUND) {
		rv = OMBRA_ENOTFOUND;
		goto out;
	}
	if (rc != 0) {
		rv = seg_lmdb_error(errmsg, rc, "mdb_cursor_get");
		goto out;
	}
	if (k.mv_size != SEG_KEY_LEN) {
		ombra_errmsg_printf(errmsg, "segment key of %zu bytes",
				    k.mv_size);
		rv = OMBRA_EIO;
		goto out;
	}
	seg_key_decode(k.mv_data, volume_id, segment);
	/* Inside the cursor's segment: continue there; otherwise start the
	 * next record from its first block. */
	*first = (*volume_id == cursor->volume_id && *segment == seg)
		     ? (uint32_t)in_seg
		     : 0;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rv;
}

/* One bad block found by the scrub, reported after the locks are
 * released. */
struct seg_scrub_bad {
	uint64_t block;
	uint64_t version;
};

/* Scratch space of one scrub step. */
struct seg_scrub_ctx {
	struct seg_rec *rec;
	unsigned char *buf; /* one segment */
	bool *bad;
	struct seg_scrub_bad *found;
	uint32_t n_found;
};

/* Verify the written blocks of one segment from block `first` (inside the
 * segment), at most *budget of them (decremented).  *next: where to
 * continue inside the segment; UINT32_MAX when the segment is done. */
static int seg_scrub_segment(struct segstore *s, struct seg_scrub_ctx *c,
			     uint64_t volume_id, uint64_t segment,
			     uint32_t first, size_t *budget, uint32_t *next,
			     char *errmsg)
{
	struct seg_rec *rec = c->rec;
	MDB_txn *txn = NULL;
	uint32_t end, i, n_bad;
	size_t counted = 0;
	int rv;

	c->n_found = 0;
	*next = UINT32_MAX;
	seg_vol_lock(s, volume_id, false);
	seg_seg_lock(s, volume_id, segment, false);
	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv == 0)
		rv = seg_rec_get(s, txn, volume_id, segment, rec, errmsg);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rv == OMBRA_ENOTFOUND) {
		/* Deleted since it was located. */
		rec->n_blocks = 0;
		rv = 0;
		goto out;
	}
	if (rv != 0)
		goto out;
	for (end = first; end < rec->n_blocks && counted < *budget; end++) {
		if (rec->blocks[end].version != 0)
			counted++;
	}
	/* A never-written run up to the end costs nothing to skip. */
	while (end < rec->n_blocks && rec->blocks[end].version == 0)
		end++;
	if (counted > 0) {
		rv = seg_read_verify(s, volume_id, segment, rec, first,
				     end - first, c->buf, c->bad, &n_bad,
				     errmsg);
		if (rv != 0)
			goto out;
		for (i = 0; i < end - first; i++) {
			if (!c->bad[i])
				continue;
			c->found[c->n_found].block =
			    segment * rec->n_blocks + first + i;
			c->found[c->n_found].version =
			    rec->blocks[first + i].version;
			c->n_found++;
		}
	}
	*budget -= counted;
	if (end < rec->n_blocks)
		*next = end;
out:
	seg_seg_unlock(s, volume_id, segment);
	seg_vol_unlock(s, volume_id);
	return rv;
}

/* Move the cursor to the start of the volume after volume_id (wrapping
 * after the last possible id). */
static void seg_scrub_next_volume(struct segstore_scrub_cursor *cursor,
				  uint64_t volume_id)
{
	if (volume_id == UINT64_MAX) {
		cursor->volume_id = 0;
		cursor->passes++;
	} else {
		cursor->volume_id = volume_id + 1;
	}
	cursor->block = 0;
}

int segstore_scrub_step(struct segstore *s,
			struct segstore_scrub_cursor *cursor, size_t max_blocks,
			segstore_scrub_cb cb, void *arg, size_t *n_checked,
			char *errmsg)
{
	struct seg_scrub_ctx c = {0};
	size_t budget = max_blocks, visited = 0;
	uint64_t volume_id = 0, segment = 0;
	uint32_t first = 0, next, i;
	int rv = 0;

	if (n_checked != NULL)
		*n_checked = 0;
	if (s == NULL || cursor == NULL || max_blocks == 0) {
		ombra_errmsg_printf(errmsg,
				    "segstore_scrub_step(): bad arguments");
		return OMBRA_EINVAL;
	}
	c.rec = malloc(sizeof(*c.rec));
	c.buf = malloc(SEGSTORE_MAX_SEGMENT_SIZE);
	c.bad = malloc(SEGSTORE_MAX_SEGMENT_BLOCKS * sizeof(*c.bad));
	c.found = malloc(SEGSTORE_MAX_SEGMENT_BLOCKS * sizeof(*c.found));
	if (c.rec == NULL || c.buf == NULL || c.bad == NULL ||
	    c.found == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto out;
	}
	/* visited bounds the work on segments that hold no written block,
	 * which do not use up the budget. */
	while (budget > 0 && visited < max_blocks) {
		rv = seg_scrub_locate(s, cursor, &volume_id, &segment, &first,
				      errmsg);
		if (rv == OMBRA_ENOTFOUND) {
			/* End of the index: one pass done. */
			cursor->volume_id = 0;
			cursor->block = 0;
			cursor->passes++;
			rv = 0;
			break;
		}
		if (rv != 0)
			break;
		rv = seg_scrub_segment(s, &c, volume_id, segment, first,
				       &budget, &next, errmsg);
		if (rv != 0)
			break;
		visited++;
		for (i = 0; cb != NULL && i < c.n_found; i++)
			cb(arg, volume_id, c.found[i].block,
			   c.found[i].version);
		if (next != UINT32_MAX) {
			cursor->volume_id = volume_id;
			cursor->block = segment * c.rec->n_blocks + next;
		} else if (segment < UINT64_MAX / SEGSTORE_MAX_SEGMENT_BLOCKS) {
			/* The next segment; if it holds nothing,
			 * seg_scrub_locate() moves on to the next record. */
			cursor->volume_id = volume_id;
			cursor->block =
			    (segment + 1) *
			    (c.rec->n_blocks != 0 ? c.rec->n_blocks : 1);
		} else {
			seg_scrub_next_volume(cursor, volume_id);
		}
	}
	if (n_checked != NULL)
		*n_checked = max_blocks - budget;
out:
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg, "segstore_scrub_step()");
	free(c.found);
	free(c.bad);
	free(c.buf);
	free(c.rec);
	return rv;
}
