/* segstore_index.c: the LMDB side of the segment store: transactions,
 * volume and segment records, making sure the segments of a mutation exist
 * (placing new ones) and the commit of an updated segment record.
 * Encodings are in segstore_record.c, tier rows in segstore_tier.c;
 * layouts in docs/storage-format.md.
 *
 * Failure: LMDB errors are OMBRA_EIO ("mdb_put: ...") except a full map,
 * which is OMBRA_ENOMEM with a hint to raise the map size.  A record that
 * fails to decode (bad length, unknown format, bad record checksum,
 * inconsistent fields) is OMBRA_EIO naming the segment: it is never
 * trusted or silently rewritten. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segstore_internal.h"

static const char *const seg_db_names[SEG_DB_COUNT] = {
    [SEG_DB_META] = "meta",
    [SEG_DB_VOLUMES] = "volumes",
    [SEG_DB_SEGMENTS] = "segments",
    [SEG_DB_TIERS] = "tiers",
};

int seg_lmdb_error(char *errmsg, int rc, const char *what)
{
	if (rc == MDB_MAP_FULL) {
		ombra_errmsg_printf(errmsg,
				    "%s: index map is full (%s): raise the "
				    "index map size",
				    what, mdb_strerror(rc));
		return OMBRA_ENOMEM;
	}
	ombra_errmsg_printf(errmsg, "%s: %s", what, mdb_strerror(rc));
	return OMBRA_EIO;
}

int seg_txn_begin(struct segstore *s, bool write, MDB_txn **txn, char *errmsg)
{
	int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);

	if (rc != 0) {
		*txn = NULL;
		return seg_lmdb_error(errmsg, rc, "mdb_txn_begin");
	}
	return 0;
}

int seg_txn_commit(MDB_txn *txn, char *errmsg)
{
	int rc = mdb_txn_commit(txn);

	return rc != 0 ? seg_lmdb_error(errmsg, rc, "mdb_txn_commit") : 0;
}

int seg_env_sync(struct segstore *s, char *errmsg)
{
	int rc = mdb_env_sync(s->env, 1);

	return rc != 0 ? seg_lmdb_error(errmsg, rc, "mdb_env_sync") : 0;
}

int seg_rec_get(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		uint64_t segment, struct seg_rec *rec, char *errmsg)
{
	uint8_t key[SEG_KEY_LEN];
	MDB_val k = {SEG_KEY_LEN, key}, v;
	uint32_t segment_size;
	int rc, rv;

	seg_key_encode(key, volume_id, segment);
	rc = mdb_get(txn, s->dbi[SEG_DB_SEGMENTS], &k, &v);
	if (rc == MDB_NOTFOUND)
		return OMBRA_ENOTFOUND;
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_get segment");
	rv = seg_rec_decode(s, volume_id, segment, &v, rec, errmsg);
	if (rv != 0)
		return rv;
	/* Callers index blocks by the volume's segment size: the record
	 * must agree with it. */
	rv = seg_volume_get(s, txn, volume_id, &segment_size, errmsg);
	if (rv == OMBRA_ENOTFOUND ||
	    (rv == 0 && segment_size != rec->segment_size)) {
		ombra_errmsg_printf(errmsg,
				    "index record of volume %" PRIu64
				    " segment %" PRIu64
				    " disagrees with its volume record",
				    volume_id, segment);
		return OMBRA_EIO;
	}
	return rv;
}

int seg_rec_put(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		uint64_t segment, const struct seg_rec *rec, char *errmsg)
{
	uint8_t key[SEG_KEY_LEN];
	MDB_val k = {SEG_KEY_LEN, key}, v;
	int rc;

	seg_key_encode(key, volume_id, segment);
	v.mv_size = seg_rec_len(rec->n_blocks);
	v.mv_data = NULL;
	/* Encode straight into LMDB's page. */
	rc = mdb_put(txn, s->dbi[SEG_DB_SEGMENTS], &k, &v, MDB_RESERVE);
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_put segment");
	seg_rec_encode(s, rec, v.mv_data);
	return 0;
}

int seg_volume_get(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		   uint32_t *segment_size, char *errmsg)
{
	uint8_t key[8];
	MDB_val k = {sizeof(key), key}, v;
	int rc;

	seg_put_be64(key, volume_id);
	rc = mdb_get(txn, s->dbi[SEG_DB_VOLUMES], &k, &v);
	if (rc == MDB_NOTFOUND)
		return OMBRA_ENOTFOUND;
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_get volume");
	if (v.mv_size != SEG_VOLUME_REC_LEN ||
	    seg_get_le32(v.mv_data) != SEG_FORMAT ||
	    seg_check_segment_size(seg_get_le32((uint8_t *)v.mv_data + 4),
				   errmsg) != 0) {
		ombra_errmsg_printf(
		    errmsg, "index record of volume %" PRIu64 " is damaged",
		    volume_id);
		return OMBRA_EIO;
	}
	*segment_size = seg_get_le32((uint8_t *)v.mv_data + 4);
	return 0;
}

static int seg_volume_put(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
			  uint32_t segment_size, char *errmsg)
{
	uint8_t key[8], val[SEG_VOLUME_REC_LEN];
	MDB_val k = {sizeof(key), key}, v = {sizeof(val), val};
	int rc;

	seg_put_be64(key, volume_id);
	seg_put_le32(val, SEG_FORMAT);
	seg_put_le32(val + 4, segment_size);
	rc = mdb_put(txn, s->dbi[SEG_DB_VOLUMES], &k, &v, 0);
	return rc != 0 ? seg_lmdb_error(errmsg, rc, "mdb_put volume") : 0;
}

int seg_volume_del(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		   char *errmsg)
{
	uint8_t key[8];
	MDB_val k = {sizeof(key), key};
	int rc;

	seg_put_be64(key, volume_id);
	rc = mdb_del(txn, s->dbi[SEG_DB_VOLUMES], &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return seg_lmdb_error(errmsg, rc, "mdb_del volume");
	return 0;
}

/* Place one missing segment: tier, punched range, empty record. */
static int seg_create_segment(struct segstore *s, MDB_txn *txn,
			      uint64_t volume_id, uint64_t segment,
			      uint32_t segment_size, struct seg_rec *rec,
			      char *errmsg)
{
	size_t tier;
	int fd, rv, err;

	rv = seg_place(s, txn, segment_size, &tier, errmsg);
	if (rv != 0)
		return rv;
	rv = seg_file_get(s, tier, volume_id, true, &fd, errmsg);
	if (rv != 0)
		return rv;
	/* A crash after a delete or a move can leave old bytes in the
	 * range; a new segment must start as zeros. */
	err = seg_punch(s, fd, segment * segment_size, segment_size);
	if (err != 0) {
		ombra_errmsg_printf(errmsg,
				    "tier '%s': clearing the range of new "
				    "segment %" PRIu64 ": %s",
				    s->tiers[tier].name, segment,
				    strerror(err));
		return OMBRA_EIO;
	}
	seg_rec_init(rec, tier, segment_size);
	rv = seg_rec_put(s, txn, volume_id, segment, rec, errmsg);
	if (rv != 0)
		return rv;
	return seg_tier_adjust(s, txn, tier, (int64_t)segment_size, 0, errmsg);
}

/* Which of the n segments lack a record, into missing[]; also checks the
 * volume's segment size.  *have_volume: the volume record exists. */
static int seg_find_missing(struct segstore *s, MDB_txn *txn,
			    uint64_t volume_id, uint32_t segment_size,
			    const uint64_t *segments, size_t n, bool *missing,
			    size_t *n_missing, bool *have_volume, char *errmsg)
{
	uint8_t key[SEG_KEY_LEN];
	MDB_val k = {SEG_KEY_LEN, key}, v;
	uint32_t have_size;
	size_t i;
	int rv, rc;

	*n_missing = 0;
	rv = seg_volume_get(s, txn, volume_id, &have_size, errmsg);
	if (rv != 0 && rv != OMBRA_ENOTFOUND)
		return rv;
	*have_volume = rv == 0;
	if (rv == 0 && have_size != segment_size) {
		ombra_errmsg_printf(errmsg,
				    "volume %" PRIu64 " has %" PRIu32
				    "-byte segments, not %" PRIu32,
				    volume_id, have_size, segment_size);
		return OMBRA_EINVAL;
	}
	for (i = 0; i < n; i++) {
		seg_key_encode(key, volume_id, segments[i]);
		rc = mdb_get(txn, s->dbi[SEG_DB_SEGMENTS], &k, &v);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return seg_lmdb_error(errmsg, rc, "mdb_get segment");
		missing[i] = rc == MDB_NOTFOUND;
		if (missing[i])
			(*n_missing)++;
	}
	return 0;
}

int seg_prepare(struct segstore *s, uint64_t volume_id, uint32_t segment_size,
		const uint64_t *segments, size_t n, char *errmsg)
{
	struct seg_rec *rec = NULL;
	MDB_txn *txn = NULL;
	bool *missing, have_volume;
	size_t i, n_missing;
	int rv;

	missing = calloc(n > 0 ? n : 1, sizeof(*missing));
	if (missing == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	/* The common case (everything exists) needs no write transaction. */
	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv != 0)
		goto out;
	rv = seg_find_missing(s, txn, volume_id, segment_size, segments, n,
			      missing, &n_missing, &have_volume, errmsg);
	mdb_txn_abort(txn);
	txn = NULL;
	if (rv != 0 || (n_missing == 0 && have_volume))
		goto out;

	rec = malloc(sizeof(*rec));
	if (rec == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto out;
	}
	/* Callers hold the volume lock shared (segstore_write.c,
	 * segstore_apply.c), so another first write of the same segment may
	 * have created it since the read: look again inside the write
	 * transaction.  LMDB runs one write transaction at a time, so the
	 * check and the creation are atomic and a segment is never placed
	 * (punched, its record reset, its space counted) twice.  Deletions
	 * and moves hold the volume exclusively and cannot interleave. */
	rv = seg_txn_begin(s, true, &txn, errmsg);
	if (rv != 0)
		goto out;
	rv = seg_find_missing(s, txn, volume_id, segment_size, segments, n,
			      missing, &n_missing, &have_volume, errmsg);
	if (rv != 0 || (n_missing == 0 && have_volume))
		goto out; /* aborts the unused write transaction */
	if (!have_volume) {
		rv = seg_volume_put(s, txn, volume_id, segment_size, errmsg);
		if (rv != 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		if (!missing[i])
			continue;
		rv = seg_create_segment(s, txn, volume_id, segments[i],
					segment_size, rec, errmsg);
		if (rv != 0)
			goto out;
	}
	rv = seg_txn_commit(txn, errmsg);
	txn = NULL;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	free(rec);
	free(missing);
	return rv;
}

static int seg_format_check(struct segstore *s, MDB_txn *txn, char *errmsg)
{
	uint8_t val[4];
	MDB_val k = {6, "format"}, v;
	int rc;

	rc = mdb_get(txn, s->dbi[SEG_DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		seg_put_le32(val, SEG_FORMAT);
		v.mv_size = sizeof(val);
		v.mv_data = val;
		rc = mdb_put(txn, s->dbi[SEG_DB_META], &k, &v, 0);
		return rc != 0 ? seg_lmdb_error(errmsg, rc, "mdb_put format")
			       : 0;
	}
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_get format");
	if (v.mv_size != 4 || seg_get_le32(v.mv_data) != SEG_FORMAT) {
		ombra_errmsg_printf(
		    errmsg,
		    "index was written in format %" PRIu32
		    ", this build reads format %u",
		    v.mv_size == 4 ? seg_get_le32(v.mv_data) : 0, SEG_FORMAT);
		return OMBRA_ECONFIG;
	}
	return 0;
}

int seg_index_setup(struct segstore *s, char *errmsg)
{
	MDB_txn *txn;
	int i, rc, rv;

	rv = seg_txn_begin(s, true, &txn, errmsg);
	if (rv != 0)
		return rv;
	for (i = 0; i < SEG_DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, seg_db_names[i], MDB_CREATE, &s->dbi[i]);
		if (rc != 0) {
			rv = seg_lmdb_error(errmsg, rc, "mdb_dbi_open");
			ombra_errmsg_wrapf(errmsg, "database '%s'",
					   seg_db_names[i]);
			goto err;
		}
	}
	rv = seg_format_check(s, txn, errmsg);
	if (rv == 0)
		rv = seg_tiers_setup(s, txn, errmsg);
	if (rv != 0)
		goto err;
	rv = seg_txn_commit(txn, errmsg);
	if (rv == 0)
		rv = seg_env_sync(s, errmsg);
	return rv;

err:
	mdb_txn_abort(txn);
	return rv;
}
