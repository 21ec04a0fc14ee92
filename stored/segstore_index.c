/* segstore_index.c: the LMDB side of the segment store: key and record
 * encoding, tier accounting rows, placement of new segments and the
 * commit of an updated segment record.  Layouts: docs/storage-format.md.
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

#include "crc.h"
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

void seg_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void seg_put_le32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void seg_put_le64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint16_t seg_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t seg_get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	int i;

	for (i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t seg_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Big-endian keys so that LMDB's byte order is (volume, segment) order. */
static void seg_put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t seg_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

void seg_key_encode(uint8_t key[SEG_KEY_LEN], uint64_t volume_id,
		    uint64_t segment)
{
	seg_put_be64(key, volume_id);
	seg_put_be64(key + 8, segment);
}

void seg_key_decode(const void *key, uint64_t *volume_id, uint64_t *segment)
{
	*volume_id = seg_get_be64(key);
	*segment = seg_get_be64((const uint8_t *)key + 8);
}

void seg_rec_init(struct seg_rec *rec, size_t tier, uint32_t segment_size)
{
	memset(rec, 0, sizeof(*rec));
	rec->tier = tier;
	rec->segment_size = segment_size;
	rec->n_blocks = segment_size / SEGSTORE_BLOCK_SIZE;
}

void seg_rec_refresh(struct seg_rec *rec)
{
	uint32_t i;

	rec->version = 0;
	for (i = 0; i < rec->n_blocks; i++) {
		if (rec->blocks[i].version > rec->version)
			rec->version = rec->blocks[i].version;
	}
}

uint32_t seg_rec_data_blocks(const struct seg_rec *rec)
{
	uint32_t i, n = 0;

	for (i = 0; i < rec->n_blocks; i++) {
		if (rec->blocks[i].version != 0 &&
		    (rec->blocks[i].flags & SEG_BLOCK_ZERO) == 0)
			n++;
	}
	return n;
}

static size_t seg_rec_len(uint32_t n_blocks)
{
	return SEG_REC_HEADER_LEN + (size_t)n_blocks * SEG_REC_BLOCK_LEN;
}

/* Header: format u32 | record crc u32 | segment size u32 | n_blocks u32 |
 * tier id u16 | flags u16 (0) | reserved u32 (0) | version u64; then per
 * block: version u64 | crc u32 | flags u32.  All little-endian.  The
 * record crc is CRC32C of the whole record with that field zeroed. */
static void seg_rec_encode(const struct segstore *s, const struct seg_rec *rec,
			   uint8_t *out)
{
	uint8_t *p;
	uint32_t i;

	memset(out, 0, SEG_REC_HEADER_LEN);
	seg_put_le32(out, SEG_FORMAT);
	seg_put_le32(out + 8, rec->segment_size);
	seg_put_le32(out + 12, rec->n_blocks);
	seg_put_le16(out + 16, s->tiers[rec->tier].id);
	seg_put_le64(out + 24, rec->version);
	p = out + SEG_REC_HEADER_LEN;
	for (i = 0; i < rec->n_blocks; i++, p += SEG_REC_BLOCK_LEN) {
		seg_put_le64(p, rec->blocks[i].version);
		seg_put_le32(p + 8, rec->blocks[i].crc);
		seg_put_le32(p + 12, rec->blocks[i].flags);
	}
	seg_put_le32(out + 4, crc32c(0, out, seg_rec_len(rec->n_blocks)));
}

static int seg_rec_damaged(char *errmsg, uint64_t volume_id, uint64_t segment,
			   const char *why)
{
	ombra_errmsg_printf(errmsg,
			    "index record of volume %" PRIu64
			    " segment %" PRIu64 " is damaged: %s",
			    volume_id, segment, why);
	return OMBRA_EIO;
}

int seg_rec_decode(const struct segstore *s, uint64_t volume_id,
		   uint64_t segment, const MDB_val *val, struct seg_rec *rec,
		   char *errmsg)
{
	const uint8_t *in = val->mv_data;
	uint8_t head[SEG_REC_HEADER_LEN];
	uint32_t crc, i;
	uint16_t tier_id;
	size_t t;

	if (val->mv_size < SEG_REC_HEADER_LEN)
		return seg_rec_damaged(errmsg, volume_id, segment, "short");
	if (seg_get_le32(in) != SEG_FORMAT)
		return seg_rec_damaged(errmsg, volume_id, segment,
				       "unknown format");
	rec->segment_size = seg_get_le32(in + 8);
	rec->n_blocks = seg_get_le32(in + 12);
	if (seg_check_segment_size(rec->segment_size, errmsg) != 0 ||
	    rec->n_blocks != rec->segment_size / SEGSTORE_BLOCK_SIZE ||
	    val->mv_size != seg_rec_len(rec->n_blocks))
		return seg_rec_damaged(errmsg, volume_id, segment,
				       "bad segment size or length");
	memcpy(head, in, sizeof(head));
	memset(head + 4, 0, 4);
	crc = crc32c(0, head, sizeof(head));
	crc = crc32c(crc, in + SEG_REC_HEADER_LEN,
		     val->mv_size - SEG_REC_HEADER_LEN);
	if (crc != seg_get_le32(in + 4))
		return seg_rec_damaged(errmsg, volume_id, segment,
				       "record checksum mismatch");
	tier_id = seg_get_le16(in + 16);
	for (t = 0; t < s->n_tiers && s->tiers[t].id != tier_id; t++)
		;
	if (t == s->n_tiers)
		return seg_rec_damaged(errmsg, volume_id, segment,
				       "unknown tier id");
	rec->tier = t;
	for (i = 0; i < rec->n_blocks; i++) {
		const uint8_t *p =
		    in + SEG_REC_HEADER_LEN + (size_t)i * SEG_REC_BLOCK_LEN;
		struct seg_block_rec *b = &rec->blocks[i];

		b->version = seg_get_le64(p);
		b->crc = seg_get_le32(p + 8);
		b->flags = seg_get_le32(p + 12);
		if ((b->flags & ~SEG_BLOCK_FLAGS_KNOWN) != 0 ||
		    (b->version == 0 && (b->flags != 0 || b->crc != 0)))
			return seg_rec_damaged(errmsg, volume_id, segment,
					       "bad block entry");
	}
	seg_rec_refresh(rec);
	if (rec->version != seg_get_le64(in + 24))
		return seg_rec_damaged(errmsg, volume_id, segment,
				       "segment version is not the maximum");
	return 0;
}

int seg_rec_get(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		uint64_t segment, struct seg_rec *rec, char *errmsg)
{
	uint8_t key[SEG_KEY_LEN];
	MDB_val k = {SEG_KEY_LEN, key}, v;
	int rc;

	seg_key_encode(key, volume_id, segment);
	rc = mdb_get(txn, s->dbi[SEG_DB_SEGMENTS], &k, &v);
	if (rc == MDB_NOTFOUND)
		return OMBRA_ENOTFOUND;
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_get segment");
	return seg_rec_decode(s, volume_id, segment, &v, rec, errmsg);
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

/* Row: id u16 | 6 zero bytes | allocated u64 | used u64. */
static int seg_tier_row_decode(const char *name, const MDB_val *v,
			       struct seg_tier_row *row, char *errmsg)
{
	if (v->mv_size != SEG_TIER_ROW_LEN) {
		ombra_errmsg_printf(errmsg, "index row of tier '%s' is damaged",
				    name);
		return OMBRA_EIO;
	}
	row->id = seg_get_le16(v->mv_data);
	row->allocated = seg_get_le64((uint8_t *)v->mv_data + 8);
	row->used = seg_get_le64((uint8_t *)v->mv_data + 16);
	return 0;
}

static int seg_tier_row_put(struct segstore *s, MDB_txn *txn, const char *name,
			    const struct seg_tier_row *row, char *errmsg)
{
	uint8_t val[SEG_TIER_ROW_LEN] = {0};
	MDB_val k = {strlen(name), (void *)name}, v = {sizeof(val), val};
	int rc;

	seg_put_le16(val, row->id);
	seg_put_le64(val + 8, row->allocated);
	seg_put_le64(val + 16, row->used);
	rc = mdb_put(txn, s->dbi[SEG_DB_TIERS], &k, &v, 0);
	return rc != 0 ? seg_lmdb_error(errmsg, rc, "mdb_put tier") : 0;
}

int seg_tier_row_get(struct segstore *s, MDB_txn *txn, size_t tier,
		     struct seg_tier_row *row, char *errmsg)
{
	const char *name = s->tiers[tier].name;
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc;

	rc = mdb_get(txn, s->dbi[SEG_DB_TIERS], &k, &v);
	if (rc != 0) {
		/* seg_index_setup() created every configured tier's row. */
		seg_lmdb_error(errmsg, rc, "mdb_get tier");
		ombra_errmsg_wrapf(errmsg, "tier '%s'", name);
		return OMBRA_EIO;
	}
	return seg_tier_row_decode(name, &v, row, errmsg);
}

/* Add d (which may be negative) to *v; false if the result would leave
 * 0..UINT64_MAX. */
static bool seg_add(uint64_t *v, int64_t d)
{
	if (d < 0) {
		uint64_t m = (uint64_t)(-(d + 1)) + 1;

		if (m > *v)
			return false;
		*v -= m;
	} else {
		if ((uint64_t)d > UINT64_MAX - *v)
			return false;
		*v += (uint64_t)d;
	}
	return true;
}

int seg_tier_adjust(struct segstore *s, MDB_txn *txn, size_t tier,
		    int64_t d_allocated, int64_t d_used, char *errmsg)
{
	struct seg_tier_row row;
	int rv;

	if (d_allocated == 0 && d_used == 0)
		return 0;
	rv = seg_tier_row_get(s, txn, tier, &row, errmsg);
	if (rv != 0)
		return rv;
	if (!seg_add(&row.allocated, d_allocated) ||
	    !seg_add(&row.used, d_used)) {
		ombra_errmsg_printf(errmsg,
				    "tier '%s' accounting out of range "
				    "(allocated %" PRIu64 " %+" PRId64
				    ", used %" PRIu64 " %+" PRId64
				    "): the index is inconsistent",
				    s->tiers[tier].name, row.allocated,
				    d_allocated, row.used, d_used);
		return OMBRA_EIO;
	}
	return seg_tier_row_put(s, txn, s->tiers[tier].name, &row, errmsg);
}

/* The first tier (config order) with room for segment_size more bytes. */
static int seg_place(struct segstore *s, MDB_txn *txn, uint32_t segment_size,
		     size_t *tier, char *errmsg)
{
	struct seg_tier_row row;
	char detail[OMBRA_ERRMSG_LEN / 2] = "";
	size_t i, used = 0;
	int rv, n;

	for (i = 0; i < s->n_tiers; i++) {
		rv = seg_tier_row_get(s, txn, i, &row, errmsg);
		if (rv != 0)
			return rv;
		if (row.allocated <= s->tiers[i].capacity &&
		    segment_size <= s->tiers[i].capacity - row.allocated) {
			*tier = i;
			return 0;
		}
		/* Say why each tier was refused, as far as it fits. */
		n = snprintf(detail + used, sizeof(detail) - used,
			     "%s%s: %" PRIu64 " of %" PRIu64 " bytes allocated",
			     i > 0 ? "; " : "", s->tiers[i].name, row.allocated,
			     s->tiers[i].capacity);
		if (n > 0)
			used += (size_t)n < sizeof(detail) - used
				    ? (size_t)n
				    : sizeof(detail) - used - 1;
	}
	ombra_errmsg_printf(
	    errmsg, "no tier has room for a new %" PRIu32 "-byte segment (%s)",
	    segment_size, detail);
	return OMBRA_ENOMEM;
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
	/* The caller holds the volume exclusively, so nothing changed for
	 * it since the read; other volumes' placements may have. */
	rv = seg_txn_begin(s, true, &txn, errmsg);
	if (rv != 0)
		goto out;
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

int seg_rec_commit(struct segstore *s, uint64_t volume_id, uint64_t segment,
		   const struct seg_rec *rec, int64_t d_used, bool sync,
		   char *errmsg)
{
	MDB_txn *txn;
	int rv;

	rv = seg_txn_begin(s, true, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = seg_rec_put(s, txn, volume_id, segment, rec, errmsg);
	if (rv == 0)
		rv = seg_tier_adjust(s, txn, rec->tier, 0, d_used, errmsg);
	if (rv != 0) {
		mdb_txn_abort(txn);
		return rv;
	}
	rv = seg_txn_commit(txn, errmsg);
	if (rv == 0 && sync)
		rv = seg_env_sync(s, errmsg);
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

/* Give each configured tier its row (and id), and refuse an index that
 * holds segments on a tier missing from the config. */
static int seg_tiers_setup(struct segstore *s, MDB_txn *txn, char *errmsg)
{
	struct seg_tier_row row;
	MDB_cursor *cur;
	MDB_val k, v;
	char name[SEGSTORE_TIER_NAME_MAX + 1];
	uint32_t next_id = 0;
	size_t i;
	int rc, rv = 0;

	rc = mdb_cursor_open(txn, s->dbi[SEG_DB_TIERS], &cur);
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_cursor_open tiers");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		snprintf(name, sizeof(name), "%.*s",
			 (int)(k.mv_size < sizeof(name) ? k.mv_size
							: sizeof(name) - 1),
			 (const char *)k.mv_data);
		rv = seg_tier_row_decode(name, &v, &row, errmsg);
		if (rv != 0)
			break;
		if ((uint32_t)row.id + 1 > next_id)
			next_id = (uint32_t)row.id + 1;
		i = 0;
		while (i < s->n_tiers && strcmp(s->tiers[i].name, name) != 0)
			i++;
		if (i < s->n_tiers) {
			s->tiers[i].id = row.id;
			continue;
		}
		if (row.allocated != 0) {
			ombra_errmsg_printf(errmsg,
					    "the index holds %" PRIu64
					    " bytes of segments on tier '%s', "
					    "which is not configured",
					    row.allocated, name);
			rv = OMBRA_ECONFIG;
			break;
		}
	}
	mdb_cursor_close(cur);
	if (rv != 0)
		return rv;
	if (rc != MDB_NOTFOUND)
		return seg_lmdb_error(errmsg, rc, "mdb_cursor_get tiers");
	for (i = 0; i < s->n_tiers; i++) {
		MDB_val nk = {strlen(s->tiers[i].name), s->tiers[i].name};

		rc = mdb_get(txn, s->dbi[SEG_DB_TIERS], &nk, &v);
		if (rc == 0)
			continue;
		if (rc != MDB_NOTFOUND)
			return seg_lmdb_error(errmsg, rc, "mdb_get tier");
		if (next_id > UINT16_MAX) {
			ombra_errmsg_printf(errmsg, "out of tier ids");
			return OMBRA_ECONFIG;
		}
		memset(&row, 0, sizeof(row));
		row.id = (uint16_t)next_id++;
		s->tiers[i].id = row.id;
		rv = seg_tier_row_put(s, txn, s->tiers[i].name, &row, errmsg);
		if (rv != 0)
			return rv;
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
