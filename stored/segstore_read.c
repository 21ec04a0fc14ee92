/* segstore_read.c: block verification (shared with the scrub, repair and
 * moves), the read path and segment descriptions for anti-entropy.
 *
 * A block is good when crc_block(data, volume, block, version) equals the
 * checksum in the index.  Never-written blocks (version 0) are zeros by
 * definition and are not read.  A block that fails, or that the medium
 * cannot return, is reported as bad and zero-filled: corrupt data is never
 * handed out as good.  Index failures are returned as errors. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "segstore_internal.h"

/* Errors of pread() that mean the medium lost the data (the block is bad
 * and a replica has it), as opposed to a misuse or a missing file. */
static bool seg_media_error(int err)
{
	return err == EIO || err == ENODATA || err == EBADMSG;
}

/* After a media error on a multi-block read: read block by block so that
 * only the unreadable blocks are reported.  bad[i] marks them. */
static int seg_read_each(const struct segstore *s, int fd, unsigned char *buf,
			 uint64_t off, uint32_t count, bool *bad)
{
	uint32_t i;
	int err;

	for (i = 0; i < count; i++) {
		err =
		    seg_pread_full(s, fd, buf + (size_t)i * SEGSTORE_BLOCK_SIZE,
				   SEGSTORE_BLOCK_SIZE,
				   off + (uint64_t)i * SEGSTORE_BLOCK_SIZE);
		if (err != 0 && !seg_media_error(err))
			return err;
		bad[i] = err != 0;
	}
	return 0;
}

int seg_read_verify(struct segstore *s, uint64_t volume_id, uint64_t segment,
		    const struct seg_rec *rec, uint32_t first, uint32_t count,
		    unsigned char *buf, bool *bad, uint32_t *n_bad,
		    char *errmsg)
{
	uint64_t base = segment * (rec->segment_size / SEGSTORE_BLOCK_SIZE);
	uint64_t off = (base + first) * SEGSTORE_BLOCK_SIZE;
	uint32_t i;
	int fd, rv, err = 0;

	*n_bad = 0;
	memset(bad, 0, count * sizeof(*bad));
	rv = seg_file_get(s, rec->tier, volume_id, false, &fd, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		/* Zeros: written blocks will fail verification. */
		memset(buf, 0, (size_t)count * SEGSTORE_BLOCK_SIZE);
	} else if (rv != 0) {
		return rv;
	} else {
		err = seg_pread_full(s, fd, buf,
				     (size_t)count * SEGSTORE_BLOCK_SIZE, off);
		if (seg_media_error(err))
			err = seg_read_each(s, fd, buf, off, count, bad);
	}
	if (err != 0) {
		ombra_errmsg_printf(errmsg,
				    "tier '%s': reading volume %" PRIu64
				    " segment %" PRIu64 ": %s",
				    s->tiers[rec->tier].name, volume_id,
				    segment, strerror(err));
		return OMBRA_EIO;
	}
	for (i = 0; i < count; i++) {
		const struct seg_block_rec *b = &rec->blocks[first + i];
		unsigned char *data = buf + (size_t)i * SEGSTORE_BLOCK_SIZE;

		if (b->version == 0) {
			memset(data, 0, SEGSTORE_BLOCK_SIZE);
			bad[i] = false;
			continue;
		}
		if (bad[i] || crc_block(data, volume_id, base + first + i,
					b->version) != b->crc) {
			memset(data, 0, SEGSTORE_BLOCK_SIZE);
			bad[i] = true;
			(*n_bad)++;
		}
	}
	return 0;
}

/* Read the part [first, first + count) of one segment into buf, under the
 * segment's shared lock and with a transaction begun after taking it. */
static int seg_read_segment(struct segstore *s, struct seg_rec *rec, bool *bad,
			    uint64_t volume_id, uint64_t segment,
			    uint32_t first, uint32_t count, unsigned char *buf,
			    uint64_t *versions, uint64_t *bad_out,
			    size_t *n_bad, uint64_t *first_bad, char *errmsg)
{
	MDB_txn *txn = NULL;
	uint64_t base;
	uint32_t i, seg_bad;
	int rv;

	seg_seg_lock(s, volume_id, segment, false);
	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv == 0) {
		rv = seg_rec_get(s, txn, volume_id, segment, rec, errmsg);
		mdb_txn_abort(txn);
	}
	if (rv == 0)
		rv = seg_read_verify(s, volume_id, segment, rec, first, count,
				     buf, bad, &seg_bad, errmsg);
	seg_seg_unlock(s, volume_id, segment);
	if (rv == OMBRA_ENOTFOUND) {
		memset(buf, 0, (size_t)count * SEGSTORE_BLOCK_SIZE);
		if (versions != NULL)
			memset(versions, 0, count * sizeof(*versions));
		return 0;
	}
	if (rv != 0)
		return rv;
	base = segment * rec->n_blocks + first;
	for (i = 0; i < count; i++) {
		if (versions != NULL)
			versions[i] = rec->blocks[first + i].version;
		if (bad[i]) {
			if (*n_bad == 0)
				*first_bad = base + i;
			if (bad_out != NULL)
				bad_out[*n_bad] = base + i;
			(*n_bad)++;
		}
	}
	return 0;
}

int segstore_read(struct segstore *s, uint64_t volume_id, uint64_t offset,
		  size_t len, void *buf, uint64_t *versions, uint64_t *bad,
		  size_t *n_bad, char *errmsg)
{
	struct seg_rec *rec = NULL;
	bool *bad_flags = NULL;
	MDB_txn *txn = NULL;
	uint64_t block, end, per_seg, first_bad = 0;
	uint32_t segment_size;
	size_t done;
	int rv;

	if (n_bad != NULL)
		*n_bad = 0;
	if (s == NULL || buf == NULL || n_bad == NULL) {
		ombra_errmsg_printf(errmsg, "segstore_read(): bad arguments");
		return OMBRA_EINVAL;
	}
	rv = seg_check_range(volume_id, offset, len, errmsg);
	if (rv != 0)
		goto out_msg;
	rec = malloc(sizeof(*rec));
	bad_flags = malloc(SEGSTORE_MAX_SEGMENT_BLOCKS * sizeof(*bad_flags));
	if (rec == NULL || bad_flags == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto out_msg;
	}
	seg_vol_lock(s, volume_id, false);
	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv != 0)
		goto out;
	rv = seg_volume_get(s, txn, volume_id, &segment_size, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		/* Nothing stored for the volume: zeros, version 0. */
		memset(buf, 0, len);
		if (versions != NULL)
			memset(versions, 0,
			       len / SEGSTORE_BLOCK_SIZE * sizeof(*versions));
		rv = 0;
		goto out;
	}
	mdb_txn_abort(txn);
	txn = NULL;
	if (rv != 0)
		goto out;
	per_seg = segment_size / SEGSTORE_BLOCK_SIZE;
	block = offset / SEGSTORE_BLOCK_SIZE;
	end = block + len / SEGSTORE_BLOCK_SIZE;
	for (done = 0; block < end; block += per_seg - block % per_seg) {
		uint64_t stop = block - block % per_seg + per_seg;
		uint32_t count = (uint32_t)((stop < end ? stop : end) - block);

		rv = seg_read_segment(
		    s, rec, bad_flags, volume_id, block / per_seg,
		    (uint32_t)(block % per_seg), count,
		    (unsigned char *)buf + done * SEGSTORE_BLOCK_SIZE,
		    versions != NULL ? versions + done : NULL, bad, n_bad,
		    &first_bad, errmsg);
		if (rv != 0)
			goto out;
		done += count;
	}
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	seg_vol_unlock(s, volume_id);
	if (rv == 0 && *n_bad > 0) {
		ombra_errmsg_printf(errmsg,
				    "%zu of %zu blocks failed verification "
				    "(first: block %" PRIu64 ")",
				    *n_bad, len / SEGSTORE_BLOCK_SIZE,
				    first_bad);
		rv = OMBRA_EIO;
	} else if (rv != 0) {
		*n_bad = 0;
	}
out_msg:
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg,
				   "segstore_read(volume %" PRIu64
				   ", offset %" PRIu64 ", length %zu)",
				   volume_id, offset, len);
	free(bad_flags);
	free(rec);
	return rv;
}

int segstore_segment_info(struct segstore *s, uint64_t volume_id,
			  uint64_t segment, struct segstore_segment_info *info,
			  uint64_t *versions, size_t versions_cap, char *errmsg)
{
	struct seg_rec *rec;
	MDB_txn *txn = NULL;
	size_t i;
	int rv;

	if (s == NULL || info == NULL || (versions == NULL && versions_cap)) {
		ombra_errmsg_printf(errmsg,
				    "segstore_segment_info(): bad arguments");
		return OMBRA_EINVAL;
	}
	rec = malloc(sizeof(*rec));
	if (rec == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	seg_vol_lock(s, volume_id, false);
	rv = seg_txn_begin(s, false, &txn, errmsg);
	if (rv == 0)
		rv = seg_rec_get(s, txn, volume_id, segment, rec, errmsg);
	if (txn != NULL)
		mdb_txn_abort(txn);
	seg_vol_unlock(s, volume_id);
	if (rv == OMBRA_ENOTFOUND) {
		ombra_errmsg_printf(errmsg, "no data stored");
	} else if (rv == 0) {
		info->version = rec->version;
		info->tier = rec->tier;
		info->tier_name = s->tiers[rec->tier].name;
		info->segment_size = rec->segment_size;
		info->n_blocks = rec->n_blocks;
		info->n_data_blocks = seg_rec_data_blocks(rec);
		for (i = 0; i < versions_cap && i < rec->n_blocks; i++)
			versions[i] = rec->blocks[i].version;
	}
	free(rec);
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg,
				   "segstore_segment_info(volume %" PRIu64
				   ", segment %" PRIu64 ")",
				   volume_id, segment);
	return rv;
}
