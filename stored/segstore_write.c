/* segstore_write.c: the primary/in-sync write path: write and trim (one
 * version for a range inside one segment, refusing stale versions), and
 * the data-file steps shared with apply and repair (segstore_apply.c).
 *
 * Order of a mutation (the segment is held exclusively throughout): place
 * missing segments (own transaction), write the data file, then the group
 * commit (segstore_commit.c) fdatasyncs it when fua, commits the new
 * checksums and versions and syncs the index when fua.  A failure or crash
 * after the data write and before the commit leaves blocks whose data no longer
 * matches the index: they read as bad and are repaired from a replica
 * (docs/storage-format.md).  Arguments are checked before anything is touched.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "segstore_internal.h"

/* Write a data file region: data (len bytes) or zeros when data is NULL. */
int seg_store_bytes(struct segstore *s, size_t tier, int fd, const void *data,
		    size_t len, uint64_t off, char *errmsg)
{
	int err = data != NULL ? seg_pwrite_full(s, fd, data, len, off)
			       : seg_punch(s, fd, off, len);

	if (err != 0) {
		ombra_errmsg_printf(
		    errmsg, "tier '%s': %s %zu bytes at %" PRIu64 ": %s",
		    s->tiers[tier].name, data != NULL ? "pwrite" : "punch", len,
		    off, strerror(err));
		return OMBRA_EIO;
	}
	return 0;
}

/* After the data of a segment was written without fua: leave its sync to
 * segstore_flush().  (With fua the group commit syncs it: seg_rec_commit.) */
void seg_data_done(struct segstore *s, size_t tier, uint64_t volume_id,
		   bool fua)
{
	if (!fua)
		seg_file_mark_dirty(s, tier, volume_id);
}

/* Refuse the write if a block holds a version at least as new, unless it
 * is this very write again (same version, same checksum and kind). */
static int seg_check_stale(const struct seg_rec *rec, uint64_t volume_id,
			   uint64_t first_block, uint32_t in_seg, uint32_t n,
			   uint64_t version, const uint32_t *crcs,
			   uint32_t flags, char *errmsg)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		const struct seg_block_rec *b = &rec->blocks[in_seg + i];

		if (b->version < version ||
		    (b->version == version && b->crc == crcs[i] &&
		     b->flags == flags))
			continue;
		ombra_errmsg_printf(errmsg,
				    "volume %" PRIu64 " block %" PRIu64
				    " holds version %#" PRIx64
				    " (epoch %" PRIu32 " seq %" PRIu64
				    "), this write has %#" PRIx64
				    " (epoch %" PRIu32 " seq %" PRIu64
				    "): refusing a stale or conflicting write",
				    volume_id, first_block + i, b->version,
				    segstore_version_epoch(b->version),
				    segstore_version_seq(b->version), version,
				    segstore_version_epoch(version),
				    segstore_version_seq(version));
		return OMBRA_EPRECOND;
	}
	return 0;
}

/* Checks of the primary path; *segment, *in_seg, *n_blocks describe the
 * range. */
static int seg_range_args(uint64_t volume_id, uint32_t segment_size,
			  uint64_t offset, size_t len, uint64_t version,
			  uint64_t *segment, uint32_t *in_seg,
			  uint32_t *n_blocks, char *errmsg)
{
	uint64_t per_seg;
	int rv;

	rv = seg_check_segment_size(segment_size, errmsg);
	if (rv == 0)
		rv = seg_check_range(volume_id, offset, len, errmsg);
	if (rv != 0)
		return rv;
	if (version == 0) {
		ombra_errmsg_printf(errmsg,
				    "version 0 is reserved for never-written "
				    "blocks");
		return OMBRA_EINVAL;
	}
	per_seg = segment_size / SEGSTORE_BLOCK_SIZE;
	*segment = offset / segment_size;
	*in_seg = (uint32_t)(offset / SEGSTORE_BLOCK_SIZE % per_seg);
	if (len > segment_size - (uint64_t)*in_seg * SEGSTORE_BLOCK_SIZE) {
		ombra_errmsg_printf(errmsg,
				    "offset %" PRIu64 " + length %zu crosses "
				    "the end of %" PRIu32
				    "-byte segment %" PRIu64
				    ": split the request per segment",
				    offset, len, segment_size, *segment);
		return OMBRA_EINVAL;
	}
	*n_blocks = (uint32_t)(len / SEGSTORE_BLOCK_SIZE);
	return 0;
}

/* segstore_write() and segstore_trim(): data NULL stores zeros. */
static int seg_write_range(struct segstore *s, uint64_t volume_id,
			   uint32_t segment_size, uint64_t offset,
			   const void *data, size_t len, uint64_t version,
			   bool fua, char *errmsg)
{
	uint32_t crcs[SEGSTORE_MAX_SEGMENT_BLOCKS];
	uint32_t flags = data != NULL ? 0 : SEG_BLOCK_ZERO;
	uint32_t in_seg, n, i, old_data;
	const unsigned char *p = data;
	struct seg_rec *rec;
	uint64_t segment, first_block;
	MDB_txn *txn;
	int fd, rv;

	rv = seg_range_args(volume_id, segment_size, offset, len, version,
			    &segment, &in_seg, &n, errmsg);
	if (rv != 0)
		return rv;
	first_block = offset / SEGSTORE_BLOCK_SIZE;
	/* Checksums before taking the lock: CPU work only. */
	for (i = 0; i < n; i++)
		crcs[i] = crc_block(
		    p != NULL ? p + (size_t)i * SEGSTORE_BLOCK_SIZE : NULL,
		    volume_id, first_block + i, version);
	rec = malloc(sizeof(*rec));
	if (rec == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	seg_vol_lock(s, volume_id, false);
	seg_seg_lock(s, volume_id, segment, true);
	rv = seg_prepare(s, volume_id, segment_size, &segment, 1, errmsg);
	if (rv != 0)
		goto out;
	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv != 0)
		goto out;
	rv = seg_rec_get(s, txn, volume_id, segment, rec, errmsg);
	mdb_txn_abort(txn);
	if (rv == 0)
		rv = seg_check_stale(rec, volume_id, first_block, in_seg, n,
				     version, crcs, flags, errmsg);
	if (rv == 0)
		rv = seg_file_get(s, rec->tier, volume_id, true, &fd, errmsg);
	if (rv == 0)
		rv = seg_store_bytes(s, rec->tier, fd, data, len, offset,
				     errmsg);
	if (rv != 0)
		goto out;
	seg_data_done(s, rec->tier, volume_id, fua);
	old_data = seg_rec_data_blocks(rec);
	for (i = 0; i < n; i++) {
		rec->blocks[in_seg + i].version = version;
		rec->blocks[in_seg + i].crc = crcs[i];
		rec->blocks[in_seg + i].flags = flags;
	}
	seg_rec_refresh(rec);
	rv = seg_rec_commit(
	    s, volume_id, segment, rec,
	    ((int64_t)seg_rec_data_blocks(rec) - (int64_t)old_data) *
		SEGSTORE_BLOCK_SIZE,
	    fua ? fd : -1, fua, errmsg);
out:
	seg_seg_unlock(s, volume_id, segment);
	seg_vol_unlock(s, volume_id);
	free(rec);
	return rv;
}

int segstore_write(struct segstore *s, uint64_t volume_id,
		   uint32_t segment_size, uint64_t offset, const void *data,
		   size_t len, uint64_t version, bool fua, char *errmsg)
{
	int rv;

	if (s == NULL || data == NULL) {
		ombra_errmsg_printf(errmsg, "no %s given",
				    s == NULL ? "store" : "data");
		rv = OMBRA_EINVAL;
	} else {
		rv = seg_write_range(s, volume_id, segment_size, offset, data,
				     len, version, fua, errmsg);
	}
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg,
				   "segstore_write(volume %" PRIu64
				   ", offset %" PRIu64 ", length %zu)",
				   volume_id, offset, len);
	return rv;
}

int segstore_trim(struct segstore *s, uint64_t volume_id, uint32_t segment_size,
		  uint64_t offset, size_t len, uint64_t version, bool fua,
		  char *errmsg)
{
	int rv;

	if (s == NULL) {
		ombra_errmsg_printf(errmsg, "no store given");
		rv = OMBRA_EINVAL;
	} else {
		rv = seg_write_range(s, volume_id, segment_size, offset, NULL,
				     len, version, fua, errmsg);
	}
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg,
				   "segstore_trim(volume %" PRIu64
				   ", offset %" PRIu64 ", length %zu)",
				   volume_id, offset, len);
	return rv;
}
