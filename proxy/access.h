/* access.h: per-segment access statistics of this proxy, reported to metad
 * (MetaService.ReportAccessStats) for its shadow policy (docs/shadows.md
 * "Shadow policy", docs/proxy.md "Access statistics").
 *
 * The I/O engine calls access_note() once per segment a client request
 * touches; every report interval (the metad's last
 * AccessStatsResponse.report_interval_ms, 2000 ms until it answers) the
 * counts of the interval are sent and reset.  Memory is bounded: at most
 * 2 * max_segments entries are counted; when the table fills, the entries
 * are sorted by reads (then writes) and only the top max_segments kept, so
 * what is reported are (close to) the interval's most read segments.
 *
 * Failure: a report that fails is logged at debug level and its counts are
 * lost (metad's rates are soft state anyway).  Loop thread only. */
#ifndef OMBRA_PROXY_ACCESS_H
#define OMBRA_PROXY_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proxy;
struct access_stats;
struct access_table;

/* One counted segment. */
struct access_seg {
	uint64_t volume_id, seg;
	uint32_t reads, writes;
	uint64_t read_bytes;
};

/* The counting table alone (no reporting): for tests and for access.c.
 * max_segments > 0.  Returns NULL on out of memory. */
struct access_table *access_table_create(size_t max_segments);
void access_table_destroy(struct access_table *t);
/* Count one access of bytes to (volume, seg). */
void access_table_note(struct access_table *t, uint64_t volume_id, uint64_t seg,
		       bool write, uint64_t bytes);
/* The top max_segments entries by reads (then writes), sorted so;
 * *n: their count.  The array is owned by t and valid until the next
 * call on t.  Then the table is empty (next interval). */
const struct access_seg *access_table_take(struct access_table *t, size_t *n);

/* The reporter: proxy identity "region/listen address". */
int access_create(struct proxy *p, const char *listen, size_t max_segments,
		  struct access_stats **out, char *errmsg);
void access_note(struct access_stats *a, uint64_t volume_id, uint64_t seg,
		 bool write, uint64_t bytes);
/* Stop the timer (a report in flight still completes). */
void access_stop(struct access_stats *a);
/* After the metad jobs drained (mdc_busy() == 0). */
void access_destroy(struct access_stats *a);

#endif
