/* segstore_tier.c: tier rows of the segment index (id, allocated and used
 * bytes per tier), placement of new segments (first configured tier with
 * room for a whole segment) and the tier checks at open.
 *
 * Failure: a damaged row or accounting that would leave 0..2^64-1 is
 * OMBRA_EIO (the index is inconsistent); no room is OMBRA_ENOMEM naming
 * every tier's allocation; a tier missing from the config while the index
 * holds segments on it is OMBRA_ECONFIG. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "segstore_internal.h"

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
int seg_place(struct segstore *s, MDB_txn *txn, uint32_t segment_size,
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

/* Give each configured tier its row (and id), and refuse an index that
 * holds segments on a tier missing from the config. */
int seg_tiers_setup(struct segstore *s, MDB_txn *txn, char *errmsg)
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
