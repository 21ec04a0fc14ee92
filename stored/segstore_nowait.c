/* segstore_nowait.c: a read that never waits, for the daemon's event loop.
 *
 * segstore_read_nowait() serves a read of one segment only when nothing
 * on its way can block: the volume and segment locks are taken with
 * trylock (a writer holds its segment's lock through its disk sync), the
 * data file must already be open (its table lock is taken with trylock),
 * the index record's pages must be resident (mincore; the B-tree's upper
 * pages are touched by every request and stay in memory) and the data is
 * read with preadv2(RWF_NOWAIT), which fails with EAGAIN (or stops short)
 * instead of going to the disk.  Every block is verified exactly as
 * segstore_read() does.
 *
 * Failure: OMBRA_EUNAVAIL ("would block") whenever any of that does not
 * hold, and also when a block fails verification, the volume or segment
 * is unknown, or test I/O hooks are installed: the caller then runs
 * segstore_read() in a thread, which gives the full answer (repairable
 * bad blocks, zeros for unwritten data, errors).  Never returns data that
 * was not verified. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc.h"
#include "segstore_internal.h"

/* Are the pages holding [p, p + len) in memory? */
static bool seg_resident(const void *p, size_t len)
{
	static long page;
	unsigned char vec[64];
	uintptr_t start, end;
	size_t n;

	if (page <= 0)
		page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		return false;
	start = (uintptr_t)p & ~(uintptr_t)(page - 1);
	end = (uintptr_t)p + len;
	n = (end - start + (size_t)page - 1) / (size_t)page;
	if (n > sizeof(vec))
		return false;
	if (mincore((void *)start, end - start, vec) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((vec[i] & 1) == 0)
			return false;
	return true;
}

/* The record of (volume, segment) if its pages are resident. */
static int seg_rec_peek(struct segstore *s, uint64_t volume_id,
			uint64_t segment, struct seg_rec *rec)
{
	uint8_t key[SEG_KEY_LEN];
	MDB_val k = {SEG_KEY_LEN, key}, v;
	MDB_txn *txn = NULL;
	uint32_t segment_size;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv = OMBRA_EUNAVAIL;

	if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
		return OMBRA_EUNAVAIL;
	seg_key_encode(key, volume_id, segment);
	if (mdb_get(txn, s->dbi[SEG_DB_SEGMENTS], &k, &v) == 0 &&
	    seg_resident(v.mv_data, v.mv_size) &&
	    seg_rec_decode(s, volume_id, segment, &v, rec, errmsg) == 0 &&
	    seg_volume_get(s, txn, volume_id, &segment_size, errmsg) == 0 &&
	    segment_size == rec->segment_size)
		rv = 0;
	mdb_txn_abort(txn);
	return rv;
}

/* Read and verify count blocks from first; 0 when all are good. */
static int seg_read_nowait_rec(struct segstore *s, uint64_t volume_id,
			       uint64_t segment, const struct seg_rec *rec,
			       uint32_t first, uint32_t count,
			       unsigned char *buf, uint64_t *versions)
{
	uint64_t base = segment * rec->n_blocks;
	size_t len = (size_t)count * SEGSTORE_BLOCK_SIZE;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	bool any = false;
	ssize_t n;
	int fd;

	for (uint32_t i = 0; i < count; i++)
		any |= rec->blocks[first + i].version != 0;
	if (any) {
		fd = seg_file_peek(s, rec->tier, volume_id);
		if (fd < 0)
			return OMBRA_EUNAVAIL;
		n = preadv2(fd, &iov, 1,
			    (off_t)((base + first) * SEGSTORE_BLOCK_SIZE),
			    RWF_NOWAIT);
		if (n < 0)
			return OMBRA_EUNAVAIL; /* EAGAIN, or an error */
		/* Short: the end of the file (zeros, as for segstore_read)
		 * or uncached pages; either way a written block there fails
		 * its crc below and the read is declined. */
		memset(buf + n, 0, len - (size_t)n);
	}
	for (uint32_t i = 0; i < count; i++) {
		const struct seg_block_rec *b = &rec->blocks[first + i];
		unsigned char *data = buf + (size_t)i * SEGSTORE_BLOCK_SIZE;

		versions[i] = b->version;
		if (b->version == 0) {
			memset(data, 0, SEGSTORE_BLOCK_SIZE);
		} else if (crc_block(data, volume_id, base + first + i,
				     b->version) != b->crc) {
			return OMBRA_EUNAVAIL; /* the full path repairs it */
		}
	}
	return 0;
}

int segstore_read_nowait(struct segstore *s, uint64_t volume_id,
			 uint64_t segment, uint64_t offset, size_t len,
			 void *buf, uint64_t *versions)
{
	struct seg_rec *rec;
	uint64_t per_seg, block;
	uint32_t count;
	int rv = OMBRA_EUNAVAIL;

	if (s == NULL || buf == NULL || versions == NULL || len == 0 ||
	    offset % SEGSTORE_BLOCK_SIZE != 0 ||
	    len % SEGSTORE_BLOCK_SIZE != 0 || s->io.pread != pread)
		return OMBRA_EUNAVAIL;
	rec = malloc(sizeof(*rec));
	if (rec == NULL)
		return OMBRA_EUNAVAIL;
	if (!seg_vol_tryrdlock(s, volume_id)) {
		free(rec);
		return OMBRA_EUNAVAIL;
	}
	if (seg_seg_tryrdlock(s, volume_id, segment)) {
		if (seg_rec_peek(s, volume_id, segment, rec) == 0) {
			per_seg = rec->n_blocks;
			block = offset / SEGSTORE_BLOCK_SIZE;
			count = (uint32_t)(len / SEGSTORE_BLOCK_SIZE);
			if (block / per_seg == segment &&
			    (block % per_seg) + count <= per_seg)
				rv = seg_read_nowait_rec(
				    s, volume_id, segment, rec,
				    (uint32_t)(block % per_seg), count, buf,
				    versions);
		}
		seg_seg_unlock(s, volume_id, segment);
	}
	seg_vol_unlock(s, volume_id);
	free(rec);
	return rv;
}
