/* crc.c: CRC32C through ISA-L (hardware instructions where the CPU has
 * them) and the segment store's block checksum built on it.
 *
 * ISA-L's crc32_iscsi() works on the raw register: it neither inverts the
 * initial value nor the result, so the standard CRC32C is
 * ~crc32_iscsi(buf, len, ~crc).  Nothing here fails. */
#include "crc.h"

#include <isa-l/crc.h>

/* Longest piece handed to crc32_iscsi() at once (its length is an int). */
#define CRC_CHUNK ((size_t)1 << 30)

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	unsigned char *p = (unsigned char *)buf;
	unsigned int reg = ~crc;

	while (len > 0) {
		size_t n = len < CRC_CHUNK ? len : CRC_CHUNK;

		reg = crc32_iscsi(p, (int)n, reg);
		p += n;
		len -= n;
	}
	return ~reg;
}

static void crc_put_le64(unsigned char *out, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++) {
		out[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

uint32_t crc_block(const void *data, uint64_t volume_id, uint64_t block,
		   uint64_t version)
{
	static const unsigned char zeros[CRC_BLOCK_SIZE];
	unsigned char trailer[24];
	uint32_t crc;

	crc = crc32c(0, data != NULL ? data : zeros, CRC_BLOCK_SIZE);
	crc_put_le64(trailer, volume_id);
	crc_put_le64(trailer + 8, block);
	crc_put_le64(trailer + 16, version);
	return crc32c(crc, trailer, sizeof(trailer));
}
