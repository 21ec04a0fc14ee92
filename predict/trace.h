/* trace.h: readers of recorded block I/O traces for the simulator and the
 * tests: CloudPhysics/VMware vSCSI binary (v1 32-byte and v2 40-byte
 * records), ARC .lis text (Megiddo & Modha's traces) and MSR Cambridge
 * CSV.  Files ending in .zst are decompressed on the fly by a `zstd -dc`
 * child process (Debian package zstd, see deploy/install-deps).
 *
 * Formats (byte offsets and lengths are what the reader returns):
 *  - vscsi v1: little-endian {u32 sn, u32 len (bytes), u32 nSG, u16 cmd,
 *    u16 ver (>>8 == 1), u64 lbn (512-byte sectors), u64 ts (us)};
 *    v2: {u16 cmd, u16 ver (>>8 == 2), u32 sn, u32 len, u32 nSG, u64 lbn,
 *    u64 ts, u64 rt}.  The version is read from the first record.  SCSI
 *    READ(6/10/12/16) are reads, WRITE(6/10/12/16) writes; other commands
 *    are skipped.
 *  - lis: lines "start count ignore reqno"; blocks of 512 bytes; a line is
 *    one read of count consecutive blocks; time = reqno (no timestamps).
 *  - msr: "Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime",
 *    Windows filetime (100 ns), Type Read/Write, Offset and Size in bytes;
 *    each distinct (Hostname, DiskNumber) is a volume numbered from 0 in
 *    order of appearance (at most 4096).
 *
 * Failure: trace_open() returns NULL + errmsg when the file cannot be
 * opened or the format is unknown; trace_next() returns -1 with a message
 * naming the file and record/line on a malformed record, a truncated
 * binary record or a failed decompressor. */
#ifndef OMBRA_PREDICT_TRACE_H
#define OMBRA_PREDICT_TRACE_H

#include <stdbool.h>
#include <stdint.h>

enum trace_format {
	TRACE_AUTO = 0, /* from the name: *.vscsi, *.lis, *.csv (+ .zst) */
	TRACE_VSCSI,
	TRACE_LIS,
	TRACE_MSR,
};

struct trace_req {
	uint64_t volume; /* 0 unless the format names volumes (msr) */
	uint64_t offset; /* bytes */
	uint64_t length; /* bytes, > 0 */
	bool write;
	uint64_t time_us; /* from the first record; lis: request number */
};

struct trace;

/* "vscsi", "lis", "msr", "auto"; -1 on anything else. */
int trace_format_parse(const char *name, enum trace_format *out);
const char *trace_format_name(enum trace_format f);

/* Open path (fmt TRACE_AUTO: guess from the name).  NULL + errmsg
 * (OMBRA_ERRMSG_LEN bytes) on failure. */
struct trace *trace_open(const char *path, enum trace_format fmt, char *errmsg);

/* Next request into out: 1, 0 at the end, -1 on error (trace_error()). */
int trace_next(struct trace *t, struct trace_req *out);

/* The message of the last -1 from trace_next(). */
const char *trace_error(const struct trace *t);

/* The format being read (never TRACE_AUTO). */
enum trace_format trace_get_format(const struct trace *t);

/* Close; reaps the decompressor.  NULL is a no-op. */
void trace_close(struct trace *t);

#endif
