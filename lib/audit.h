/* audit.h: an optional audit record of fencing decisions, as JSON lines
 * appended to a file (`--audit-log FILE` of ombra-metad and ombra-stored).
 *
 * What it is for: a test that partitions regions must be able to prove
 * from the outside that no two nodes ever acted under overlapping leases
 * (issue 5, tests/integration/test_wan_partition.py).  metad records every
 * committed lease grant (a segment's primary and lease epoch, a volume's
 * writer lease), stored every write it accepted as primary (epoch,
 * version, when its lease was checked and until when that lease held).
 * The record shapes are documented in docs/metad.md and docs/stored.md
 * ("Audit log").
 *
 * Format: one JSON object per line, `{"t_ms":N,...}` where t_ms is the
 * wall clock (CLOCK_REALTIME, ms since the epoch) when the line was
 * written and the rest are the members the caller formats.  Each line is
 * one write(2) on an O_APPEND descriptor, so lines of concurrent writers
 * (threads, or processes sharing the file) never interleave.  No fsync:
 * a crash may lose the last lines.
 *
 * Failure: audit_open() fails (OMBRA_EIO with errmsg) when the file
 * cannot be opened; later write errors are logged once (log_warn) and the
 * record is dropped: auditing never stops or slows the daemon beyond one
 * write(2) per record.  Every function accepts a NULL audit (auditing
 * off) and then does nothing. */
#ifndef OMBRA_AUDIT_H
#define OMBRA_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct audit;

/* Open (create, append) path.  *out is owned by the caller (audit_close).
 * Returns 0, or OMBRA_EIO / OMBRA_ENOMEM with errmsg (OMBRA_ERRMSG_LEN)
 * naming the file. */
int audit_open(const char *path, struct audit **out, char *errmsg);

/* Close and free a (NULL: nothing). */
void audit_close(struct audit *a);

/* The wall clock in ms since the Unix epoch (CLOCK_REALTIME), the time
 * base of every t_ms and *_ms member. */
uint64_t audit_now_ms(void);

/* Append one line {"t_ms":<now>,<members>}.  fmt formats the members
 * without braces, e.g. "\"ev\":\"write\",\"epoch\":%u".  Lines longer
 * than 4096 bytes are dropped with a warning.  Thread-safe. */
void audit_log(struct audit *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records held back until an outcome is known (metad: until the Raft
 * entry's LMDB transaction has committed; an aborted transaction's
 * records must not appear).  Zero-initialise; not thread-safe. */
struct audit_pending {
	char *buf; /* member lists separated by '\n'; owned */
	size_t len, cap;
	bool dropped; /* out of memory: some records were lost */
};

/* Queue one record's members (as audit_log's fmt).  On out-of-memory the
 * record is dropped and p->dropped set (audit_flush warns). */
void audit_defer(struct audit_pending *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write every queued record to a (stamped now), then empty p (its buffer
 * is kept for reuse).  a NULL: p is only emptied. */
void audit_flush(struct audit *a, struct audit_pending *p);

/* Empty p without writing anything (the outcome did not happen). */
void audit_discard(struct audit_pending *p);

/* Free p's buffer. */
void audit_pending_free(struct audit_pending *p);

/* s as a JSON string (quotes included, control bytes and quotes escaped)
 * into out of cap bytes; truncated to fit (still quoted).  Returns out. */
char *audit_json_str(char *out, size_t cap, const char *s);

#endif
