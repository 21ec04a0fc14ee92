/* segstore_admin.c: whole-volume and whole-segment operations: listing
 * and deleting volumes and moving a segment between tiers.
 *
 * Both change the index in one transaction and touch data files around
 * it so that a crash at any point leaves the index pointing at good data:
 * a move copies and syncs before the commit and punches the old copy
 * after it; a delete commits first and unlinks after.  What a crash can
 * leave behind is unreferenced bytes, which seg_prepare() punches before a
 * range is used again.  Failure: OMBRA_EIO / OMBRA_ENOMEM with context;
 * the index is unchanged unless the call succeeded or says otherwise. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segstore_internal.h"

/* Remove the volume's records, adding what they held per tier to the
 * tiers' rows; one write transaction. */
static int seg_delete_records(struct segstore *s, uint64_t volume_id,
			      struct seg_rec *rec, char *errmsg)
{
	int64_t d_alloc[SEGSTORE_MAX_TIERS] = {0},
		d_used[SEGSTORE_MAX_TIERS] = {0};
	uint8_t key[SEG_KEY_LEN];
	MDB_val k = {SEG_KEY_LEN, key}, v;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	uint64_t vol, segment;
	size_t t;
	int rc, rv;

	rv = seg_txn_begin(s, true, &txn, errmsg);
	if (rv != 0)
		return rv;
	rc = mdb_cursor_open(txn, s->dbi[SEG_DB_SEGMENTS], &cur);
	if (rc != 0) {
		rv = seg_lmdb_error(errmsg, rc, "mdb_cursor_open");
		goto err;
	}
	seg_key_encode(key, volume_id, 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != SEG_KEY_LEN)
			break;
		seg_key_decode(k.mv_data, &vol, &segment);
		if (vol != volume_id)
			break;
		rv = seg_rec_decode(s, vol, segment, &v, rec, errmsg);
		if (rv != 0)
			goto err;
		d_alloc[rec->tier] -= (int64_t)rec->segment_size;
		d_used[rec->tier] -=
		    (int64_t)seg_rec_data_blocks(rec) * SEGSTORE_BLOCK_SIZE;
		rc = mdb_cursor_del(cur, 0);
		if (rc != 0) {
			rv = seg_lmdb_error(errmsg, rc, "mdb_cursor_del");
			goto err;
		}
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		rv = seg_lmdb_error(errmsg, rc, "mdb_cursor_get");
		goto err;
	}
	mdb_cursor_close(cur);
	cur = NULL;
	for (t = 0; t < s->n_tiers; t++) {
		rv = seg_tier_adjust(s, txn, t, d_alloc[t], d_used[t], errmsg);
		if (rv != 0)
			goto err;
	}
	rv = seg_volume_del(s, txn, volume_id, errmsg);
	if (rv != 0)
		goto err;
	rv = seg_txn_commit(txn, errmsg);
	if (rv == 0)
		rv = seg_env_sync(s, errmsg);
	return rv;

err:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rv;
}

int segstore_delete_volume(struct segstore *s, uint64_t volume_id, char *errmsg)
{
	struct seg_rec *rec;
	int rv;

	if (s == NULL) {
		ombra_errmsg_printf(errmsg,
				    "segstore_delete_volume(): no store");
		return OMBRA_EINVAL;
	}
	rec = malloc(sizeof(*rec));
	if (rec == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto out;
	}
	seg_vol_lock(s, volume_id, true);
	rv = seg_delete_records(s, volume_id, rec, errmsg);
	if (rv == 0)
		rv = seg_file_remove_volume(s, volume_id, errmsg);
	seg_vol_unlock(s, volume_id);
out:
	free(rec);
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg,
				   "segstore_delete_volume(volume %" PRIu64 ")",
				   volume_id);
	return rv;
}

/* Does tier have room for bytes more?  (read or write transaction) */
static int seg_tier_room(struct segstore *s, MDB_txn *txn, size_t tier,
			 uint32_t bytes, char *errmsg)
{
	struct seg_tier_row row;
	int rv;

	rv = seg_tier_row_get(s, txn, tier, &row, errmsg);
	if (rv != 0)
		return rv;
	if (row.allocated > s->tiers[tier].capacity ||
	    bytes > s->tiers[tier].capacity - row.allocated) {
		ombra_errmsg_printf(errmsg,
				    "tier '%s' has no room for %" PRIu32
				    " bytes (%" PRIu64 " of %" PRIu64
				    " allocated)",
				    s->tiers[tier].name, bytes, row.allocated,
				    s->tiers[tier].capacity);
		return OMBRA_ENOMEM;
	}
	return 0;
}

/* Copy the verified segment (buf: its blocks, never-written ones zero) to
 * tier `to` and sync it.  Trimmed and never-written blocks stay holes. */
static int seg_copy_to(struct segstore *s, uint64_t volume_id, uint64_t segment,
		       const struct seg_rec *rec, size_t to,
		       const unsigned char *buf, char *errmsg)
{
	uint64_t base = segment * rec->segment_size;
	uint32_t i;
	int fd, rv, err;

	rv = seg_file_get(s, to, volume_id, true, &fd, errmsg);
	if (rv != 0)
		return rv;
	err = seg_punch(s, fd, base, rec->segment_size);
	for (i = 0; err == 0 && i < rec->n_blocks; i++) {
		if (rec->blocks[i].version == 0 ||
		    (rec->blocks[i].flags & SEG_BLOCK_ZERO) != 0)
			continue;
		err = seg_pwrite_full(s, fd,
				      buf + (size_t)i * SEGSTORE_BLOCK_SIZE,
				      SEGSTORE_BLOCK_SIZE,
				      base + (uint64_t)i * SEGSTORE_BLOCK_SIZE);
	}
	if (err == 0)
		err = seg_datasync(s, fd);
	if (err != 0) {
		ombra_errmsg_printf(errmsg, "copying to tier '%s': %s",
				    s->tiers[to].name, strerror(err));
		return OMBRA_EIO;
	}
	return 0;
}

/* Point the record at tier `to` and move the accounting; one write
 * transaction, synced. */
static int seg_move_commit(struct segstore *s, uint64_t volume_id,
			   uint64_t segment, struct seg_rec *rec, size_t to,
			   char *errmsg)
{
	int64_t used = (int64_t)seg_rec_data_blocks(rec) * SEGSTORE_BLOCK_SIZE;
	int64_t alloc = (int64_t)rec->segment_size;
	size_t from = rec->tier;
	MDB_txn *txn;
	int rv;

	rv = seg_txn_begin(s, true, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = seg_tier_room(s, txn, to, rec->segment_size, errmsg);
	if (rv == 0)
		rv = seg_tier_adjust(s, txn, from, -alloc, -used, errmsg);
	if (rv == 0)
		rv = seg_tier_adjust(s, txn, to, alloc, used, errmsg);
	rec->tier = to;
	if (rv == 0)
		rv = seg_rec_put(s, txn, volume_id, segment, rec, errmsg);
	if (rv != 0) {
		rec->tier = from;
		mdb_txn_abort(txn);
		return rv;
	}
	rv = seg_txn_commit(txn, errmsg);
	if (rv == 0)
		rv = seg_env_sync(s, errmsg);
	if (rv != 0)
		rec->tier = from;
	return rv;
}

/* The move itself; the caller holds the volume exclusively. */
static int seg_move_locked(struct segstore *s, uint64_t volume_id,
			   uint64_t segment, size_t to, struct seg_rec *rec,
			   bool *bad, char *errmsg)
{
	unsigned char *buf = NULL;
	MDB_txn *txn;
	uint32_t n_bad;
	size_t from;
	int fd, rv;

	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = seg_rec_get(s, txn, volume_id, segment, rec, errmsg);
	if (rv == 0 && rec->tier != to)
		rv = seg_tier_room(s, txn, to, rec->segment_size, errmsg);
	mdb_txn_abort(txn);
	if (rv == OMBRA_ENOTFOUND)
		ombra_errmsg_printf(errmsg, "no such segment");
	if (rv != 0 || rec->tier == to)
		return rv;
	from = rec->tier;
	buf = malloc(rec->segment_size);
	if (buf == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	rv = seg_read_verify(s, volume_id, segment, rec, 0, rec->n_blocks, buf,
			     bad, &n_bad, errmsg);
	if (rv == 0 && n_bad > 0) {
		ombra_errmsg_printf(errmsg,
				    "%" PRIu32 " blocks fail verification: "
				    "repair them before moving",
				    n_bad);
		rv = OMBRA_EIO;
	}
	if (rv == 0)
		rv = seg_copy_to(s, volume_id, segment, rec, to, buf, errmsg);
	if (rv == 0)
		rv = seg_move_commit(s, volume_id, segment, rec, to, errmsg);
	free(buf);
	if (rv != 0)
		return rv;
	/* Committed: the old copy is garbage now.  Failing to punch it only
	 * wastes space until the range is placed again. */
	if (seg_file_get(s, from, volume_id, false, &fd, errmsg) == 0)
		(void)seg_punch(s, fd, segment * rec->segment_size,
				rec->segment_size);
	return 0;
}

int segstore_segment_move(struct segstore *s, uint64_t volume_id,
			  uint64_t segment, const char *tier, char *errmsg)
{
	struct seg_rec *rec = NULL;
	bool *bad = NULL;
	int to, rv;

	if (s == NULL || tier == NULL) {
		ombra_errmsg_printf(errmsg, "no %s given",
				    s == NULL ? "store" : "tier");
		rv = OMBRA_EINVAL;
		goto out;
	}
	to = seg_tier_find(s, tier);
	if (to < 0) {
		ombra_errmsg_printf(errmsg, "no tier named '%s'", tier);
		rv = OMBRA_EINVAL;
		goto out;
	}
	rec = malloc(sizeof(*rec));
	bad = malloc(SEGSTORE_MAX_SEGMENT_BLOCKS * sizeof(*bad));
	if (rec == NULL || bad == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto out;
	}
	seg_vol_lock(s, volume_id, true);
	rv = seg_move_locked(s, volume_id, segment, (size_t)to, rec, bad,
			     errmsg);
	seg_vol_unlock(s, volume_id);
out:
	free(bad);
	free(rec);
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg,
				   "segstore_segment_move(volume %" PRIu64
				   ", segment %" PRIu64 ", tier %s)",
				   volume_id, segment,
				   tier != NULL ? tier : "(none)");
	return rv;
}

int segstore_list_volumes(struct segstore *s, uint64_t **ids, size_t *n,
			  char *errmsg)
{
	MDB_val k, v;
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	uint64_t *out = NULL;
	size_t cap = 0, count = 0;
	int rc, rv;

	if (s == NULL || ids == NULL || n == NULL) {
		ombra_errmsg_printf(errmsg,
				    "segstore_list_volumes(): bad arguments");
		return OMBRA_EINVAL;
	}
	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv != 0)
		goto out;
	rc = mdb_cursor_open(txn, s->dbi[SEG_DB_VOLUMES], &cur);
	if (rc != 0) {
		rv = seg_lmdb_error(errmsg, rc, "mdb_cursor_open");
		goto out;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8)
			continue; /* not a volume key */
		if (count == cap) {
			size_t ncap = cap != 0 ? cap * 2 : 64;
			uint64_t *p = realloc(out, ncap * sizeof(*out));

			if (p == NULL) {
				ombra_errmsg_printf(errmsg, "out of memory");
				rv = OMBRA_ENOMEM;
				goto out;
			}
			out = p;
			cap = ncap;
		}
		out[count++] = seg_get_be64((const uint8_t *)k.mv_data);
	}
	if (rc != MDB_NOTFOUND)
		rv = seg_lmdb_error(errmsg, rc, "mdb_cursor_get");
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rv != 0) {
		free(out);
		ombra_errmsg_wrapf(errmsg, "segstore_list_volumes()");
		return rv;
	}
	*ids = out;
	*n = count;
	return 0;
}
