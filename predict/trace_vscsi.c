/* trace_vscsi.c: VMware vSCSI binary records (CloudPhysics traces, as
 * distributed with libCacheSim): layout and version detection in
 * trace.h.  A short final record is an error (truncated file). */
#include "predict/trace_impl.h"

#include <string.h>

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* SCSI opcodes: 1 read, 0 write, -1 other. */
static int scsi_is_read(unsigned cmd)
{
	switch (cmd) {
	case 0x08: /* READ(6) */
	case 0x28: /* READ(10) */
	case 0xa8: /* READ(12) */
	case 0x88: /* READ(16) */
		return 1;
	case 0x0a: /* WRITE(6) */
	case 0x2a: /* WRITE(10) */
	case 0xaa: /* WRITE(12) */
	case 0x8a: /* WRITE(16) */
		return 0;
	default:
		return -1;
	}
}

int trace_vscsi_next(struct trace *t, struct trace_req *out)
{
	unsigned char r[40];

	for (;;) {
		size_t size = t->vscsi_version == 2 ? 40 : 32;
		size_t got = fread(r, 1, size, t->f);
		unsigned cmd, len;
		uint64_t lbn, ts;
		int rd;

		if (got == 0)
			return 0;
		t->recno++;
		if (t->vscsi_version == 0) {
			/* v2 has its version at byte 2, v1 at byte 14. */
			if (got == 32 && (le16(r + 2) >> 8) == 2) {
				size_t more = fread(r + 32, 1, 8, t->f);

				got += more;
				size = 40;
				t->vscsi_version = 2;
			} else if (got == 32 && (le16(r + 14) >> 8) == 1) {
				t->vscsi_version = 1;
			} else {
				return trace_fail(t,
						  "not a vscsi v1 or v2 "
						  "record (version "
						  "bytes %#x/%#x)",
						  le16(r + 14), le16(r + 2));
			}
		}
		if (got != size)
			return trace_fail(t, "truncated: %zu of %zu bytes", got,
					  size);
		if (t->vscsi_version == 1) {
			len = le32(r + 4);
			cmd = le16(r + 12);
			lbn = le64(r + 16);
			ts = le64(r + 24);
		} else {
			cmd = le16(r);
			len = le32(r + 8);
			lbn = le64(r + 16);
			ts = le64(r + 24);
		}
		rd = scsi_is_read(cmd & 0xff);
		if (rd < 0 || len == 0)
			continue;
		if (!t->have_t0) {
			t->have_t0 = true;
			t->t0 = ts;
		}
		out->volume = 0;
		out->offset = lbn * 512;
		out->length = len;
		out->write = rd == 0;
		out->time_us = ts >= t->t0 ? ts - t->t0 : 0;
		return 1;
	}
}
