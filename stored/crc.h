/* crc.h: CRC32C (Castagnoli) and the per-block checksum of the segment
 * store, both computed with Intel ISA-L's crc32_iscsi().
 *
 * The block checksum covers the 4096 data bytes and then the block's
 * identity (volume id, block index, version), so a block that lands at the
 * wrong offset, in the wrong volume or under the wrong version fails
 * verification even when its bytes are intact.  See docs/storage-format.md.
 *
 * Nothing here can fail or allocate; all functions are pure and
 * thread-safe. */
#ifndef OMBRA_STORED_CRC_H
#define OMBRA_STORED_CRC_H

#include <stddef.h>
#include <stdint.h>

/* Bytes covered by crc_block(): one 4 KiB block. */
#define CRC_BLOCK_SIZE 4096

/* Standard CRC32C (iSCSI polynomial 0x1EDC6F41, reflected, initial value
 * and final xor 0xFFFFFFFF; check value crc32c("123456789") = 0xE3069283,
 * RFC 3720 appendix B.4).  crc: 0 to start, or the result of a previous
 * call to continue over more bytes (like zlib's crc32()).  buf: len bytes,
 * may be NULL only when len is 0.  Any len is accepted (ISA-L takes an int,
 * so longer buffers are fed in pieces). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* Checksum of one block as stored in the segment index:
 *   crc32c over data[0..4095], then over volume_id, block and version,
 *   each as an 8-byte little-endian integer (4120 bytes in total).
 * data: CRC_BLOCK_SIZE bytes, or NULL for a block of zeros (a trimmed or
 * punched block).  block: index of the block inside the volume
 * (byte offset / 4096).  version: the block's 64-bit version. */
uint32_t crc_block(const void *data, uint64_t volume_id, uint64_t block,
		   uint64_t version);

#endif
