/* segstore_apply.c: the per-block paths: apply-if-newer for shadows and
 * anti-entropy (idempotent and order-free: a block is stored only if its
 * version is higher than the stored one) and repair (which also replaces a
 * stored copy that fails verification, whatever its version).
 *
 * Every incoming checksum is verified before anything is touched; one
 * mismatch rejects the call (OMBRA_EPROTO).  The order of the steps and
 * what a crash leaves are those of segstore_write.c. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "segstore_internal.h"

enum seg_apply_mode {
	SEG_APPLY_IF_NEWER, /* newer versions only */
	SEG_APPLY_REPAIR,   /* also replace a stored copy that is bad */
};

/* qsort order of an apply batch: block ascending, then version
 * descending, so the first entry of each block is the one to keep; ties
 * are broken by content so that the input order never matters. */
static int seg_block_cmp(const void *a, const void *b)
{
	const struct segstore_block *x =
	    *(const struct segstore_block *const *)a;
	const struct segstore_block *y =
	    *(const struct segstore_block *const *)b;

	if (x->block != y->block)
		return x->block < y->block ? -1 : 1;
	if (x->version != y->version)
		return x->version > y->version ? -1 : 1;
	/* Two different blocks under one version cannot come from a fenced
	 * writer; still pick one by content, not by position. */
	if (x->crc != y->crc)
		return x->crc < y->crc ? -1 : 1;
	if ((x->data == NULL) != (y->data == NULL))
		return x->data == NULL ? -1 : 1;
	if (x->data == NULL)
		return 0;
	return memcmp(x->data, y->data, SEGSTORE_BLOCK_SIZE);
}

/* Check every incoming block; nothing is applied unless all pass. */
static int seg_apply_check(uint64_t volume_id, uint32_t segment_size,
			   const struct segstore_block *blocks, size_t n,
			   char *errmsg)
{
	size_t i;
	uint32_t crc;
	int rv;

	rv = seg_check_segment_size(segment_size, errmsg);
	if (rv != 0)
		return rv;
	if (blocks == NULL || n == 0) {
		ombra_errmsg_printf(errmsg, "no blocks given");
		return OMBRA_EINVAL;
	}
	for (i = 0; i < n; i++) {
		const struct segstore_block *b = &blocks[i];

		if (b->version == 0 || b->block >= SEGSTORE_MAX_VOLUME_BYTES /
						       SEGSTORE_BLOCK_SIZE) {
			ombra_errmsg_printf(
			    errmsg,
			    "block entry %zu: %s (block %" PRIu64
			    ", version %#" PRIx64 ")",
			    i,
			    b->version == 0 ? "version 0 is reserved"
					    : "block beyond the volume limit",
			    b->block, b->version);
			return OMBRA_EINVAL;
		}
		crc = crc_block(b->data, volume_id, b->block, b->version);
		if (crc != b->crc) {
			ombra_errmsg_printf(
			    errmsg,
			    "volume %" PRIu64 " block %" PRIu64
			    " version %#" PRIx64 ": checksum %#010" PRIx32
			    " does not match its data (%#010" PRIx32
			    "): corrupted in transit or sent for another "
			    "block",
			    volume_id, b->block, b->version, b->crc, crc);
			return OMBRA_EPROTO;
		}
	}
	return 0;
}

/* Should incoming block b replace slot idx of rec? */
static int seg_apply_wanted(struct segstore *s, enum seg_apply_mode mode,
			    uint64_t volume_id, uint64_t segment,
			    const struct seg_rec *rec, uint32_t idx,
			    const struct segstore_block *b,
			    unsigned char *scratch, bool *want, char *errmsg)
{
	const struct seg_block_rec *have = &rec->blocks[idx];
	uint32_t n_bad;
	bool bad;
	int rv;

	*want = b->version > have->version;
	if (*want || mode != SEG_APPLY_REPAIR || have->version == 0)
		return 0;
	rv = seg_read_verify(s, volume_id, segment, rec, idx, 1, scratch, &bad,
			     &n_bad, errmsg);
	if (rv != 0)
		return rv;
	*want = bad;
	return 0;
}

/* Apply the sorted, deduplicated blocks v[0..n) of one segment. */
static int seg_apply_segment(struct segstore *s, enum seg_apply_mode mode,
			     uint64_t volume_id, uint64_t segment,
			     const struct segstore_block *const *v, size_t n,
			     bool fua, struct seg_rec *rec,
			     unsigned char *scratch, size_t *n_applied,
			     char *errmsg)
{
	MDB_txn *txn;
	uint32_t old_data, idx;
	size_t i, applied = 0;
	bool want;
	int fd = -1, rv;

	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = seg_rec_get(s, txn, volume_id, segment, rec, errmsg);
	mdb_txn_abort(txn);
	if (rv != 0)
		return rv;
	old_data = seg_rec_data_blocks(rec);
	for (i = 0; i < n; i++) {
		idx = (uint32_t)(v[i]->block % rec->n_blocks);
		rv = seg_apply_wanted(s, mode, volume_id, segment, rec, idx,
				      v[i], scratch, &want, errmsg);
		if (rv != 0)
			return rv;
		if (!want)
			continue;
		if (fd < 0) {
			rv = seg_file_get(s, rec->tier, volume_id, true, &fd,
					  errmsg);
			if (rv != 0)
				return rv;
		}
		rv = seg_store_bytes(s, rec->tier, fd, v[i]->data,
				     SEGSTORE_BLOCK_SIZE,
				     v[i]->block * SEGSTORE_BLOCK_SIZE, errmsg);
		if (rv != 0)
			return rv;
		rec->blocks[idx].version = v[i]->version;
		rec->blocks[idx].crc = v[i]->crc;
		rec->blocks[idx].flags =
		    v[i]->data != NULL ? 0 : SEG_BLOCK_ZERO;
		applied++;
	}
	if (applied == 0)
		return 0;
	seg_data_done(s, rec->tier, volume_id, fua);
	seg_rec_refresh(rec);
	rv = seg_rec_commit(
	    s, volume_id, segment, rec,
	    ((int64_t)seg_rec_data_blocks(rec) - (int64_t)old_data) *
		SEGSTORE_BLOCK_SIZE,
	    fua ? fd : -1, fua, errmsg);
	if (rv == 0)
		*n_applied += applied;
	return rv;
}

/* Sorted, one entry per block (the highest version), and the distinct
 * segments they fall in.  Both arrays are allocated here. */
static int seg_apply_plan(const struct segstore_block *blocks, size_t n,
			  uint32_t segment_size,
			  const struct segstore_block ***sorted,
			  size_t *n_sorted, uint64_t **segments,
			  size_t *n_segments, char *errmsg)
{
	uint64_t per_seg = segment_size / SEGSTORE_BLOCK_SIZE, seg;
	const struct segstore_block **v;
	uint64_t *segs;
	size_t i, m = 0, k = 0;

	v = malloc(n * sizeof(*v));
	segs = malloc(n * sizeof(*segs));
	if (v == NULL || segs == NULL) {
		free(v);
		free(segs);
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	for (i = 0; i < n; i++)
		v[i] = &blocks[i];
	qsort(v, n, sizeof(*v), seg_block_cmp);
	for (i = 0; i < n; i++) {
		if (m > 0 && v[m - 1]->block == v[i]->block)
			continue;
		v[m++] = v[i];
		seg = v[i]->block / per_seg;
		if (k == 0 || segs[k - 1] != seg)
			segs[k++] = seg;
	}
	*sorted = v;
	*n_sorted = m;
	*segments = segs;
	*n_segments = k;
	return 0;
}

static int seg_apply(struct segstore *s, enum seg_apply_mode mode,
		     uint64_t volume_id, uint32_t segment_size,
		     const struct segstore_block *blocks, size_t n, bool fua,
		     size_t *n_applied, char *errmsg)
{
	const struct segstore_block **v = NULL;
	unsigned char *scratch = NULL;
	struct seg_rec *rec = NULL;
	uint64_t *segs = NULL, per_seg;
	size_t m, n_segs, i, j, applied = 0;
	int rv;

	rv = seg_apply_check(volume_id, segment_size, blocks, n, errmsg);
	if (rv != 0)
		goto out;
	rv = seg_apply_plan(blocks, n, segment_size, &v, &m, &segs, &n_segs,
			    errmsg);
	if (rv != 0)
		goto out;
	rec = malloc(sizeof(*rec));
	scratch = malloc(SEGSTORE_BLOCK_SIZE);
	if (rec == NULL || scratch == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto out;
	}
	per_seg = segment_size / SEGSTORE_BLOCK_SIZE;
	seg_vol_lock(s, volume_id, false);
	rv = seg_prepare(s, volume_id, segment_size, segs, n_segs, errmsg);
	for (i = 0; rv == 0 && i < m; i = j) {
		uint64_t segment = v[i]->block / per_seg;

		for (j = i; j < m && v[j]->block / per_seg == segment; j++)
			;
		seg_seg_lock(s, volume_id, segment, true);
		rv =
		    seg_apply_segment(s, mode, volume_id, segment, v + i, j - i,
				      fua, rec, scratch, &applied, errmsg);
		seg_seg_unlock(s, volume_id, segment);
	}
	seg_vol_unlock(s, volume_id);
out:
	if (n_applied != NULL)
		*n_applied = applied;
	free(scratch);
	free(rec);
	free(segs);
	free(v);
	return rv;
}

int segstore_apply_if_newer(struct segstore *s, uint64_t volume_id,
			    uint32_t segment_size,
			    const struct segstore_block *blocks, size_t n,
			    bool fua, size_t *n_applied, char *errmsg)
{
	int rv;

	if (n_applied != NULL)
		*n_applied = 0;
	if (s == NULL) {
		ombra_errmsg_printf(errmsg, "no store given");
		rv = OMBRA_EINVAL;
	} else {
		rv = seg_apply(s, SEG_APPLY_IF_NEWER, volume_id, segment_size,
			       blocks, n, fua, n_applied, errmsg);
	}
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg,
				   "segstore_apply_if_newer(volume %" PRIu64
				   ", %zu blocks)",
				   volume_id, n);
	return rv;
}

int segstore_repair(struct segstore *s, uint64_t volume_id,
		    uint32_t segment_size, const struct segstore_block *blocks,
		    size_t n, bool fua, size_t *n_applied, char *errmsg)
{
	int rv;

	if (n_applied != NULL)
		*n_applied = 0;
	if (s == NULL) {
		ombra_errmsg_printf(errmsg, "no store given");
		rv = OMBRA_EINVAL;
	} else {
		rv = seg_apply(s, SEG_APPLY_REPAIR, volume_id, segment_size,
			       blocks, n, fua, n_applied, errmsg);
	}
	if (rv != 0)
		ombra_errmsg_wrapf(
		    errmsg, "segstore_repair(volume %" PRIu64 ", %zu blocks)",
		    volume_id, n);
	return rv;
}
