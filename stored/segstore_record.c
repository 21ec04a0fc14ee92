/* segstore_record.c: byte encodings of the segment index: little- and
 * big-endian integers, (volume, segment) keys, and the segment record with
 * its own CRC32C.  Layouts: docs/storage-format.md "Index".
 *
 * Pure functions with no I/O.  Decoding never trusts its input: a record
 * with a bad length, unknown format, bad record checksum or inconsistent
 * fields is OMBRA_EIO naming the segment, never a crash. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crc.h"
#include "segstore_internal.h"

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
void seg_put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

uint64_t seg_get_be64(const uint8_t *p)
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

size_t seg_rec_len(uint32_t n_blocks)
{
	return SEG_REC_HEADER_LEN + (size_t)n_blocks * SEG_REC_BLOCK_LEN;
}

/* Header: format u32 | record crc u32 | segment size u32 | n_blocks u32 |
 * tier id u16 | flags u16 (0) | reserved u32 (0) | version u64; then per
 * block: version u64 | crc u32 | flags u32.  All little-endian.  The
 * record crc is CRC32C of the whole record with that field zeroed. */
void seg_rec_encode(const struct segstore *s, const struct seg_rec *rec,
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
