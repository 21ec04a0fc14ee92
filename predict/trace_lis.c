/* trace_lis.c: ARC traces (Megiddo & Modha, FAST'03) in .lis text: one
 * read of `count` 512-byte blocks from block `start` per line
 * "start count ignore reqno" (format in trace.h).  Blank lines are
 * skipped; a line with fewer than two numbers or count 0 is an error. */
#include "predict/trace_impl.h"

#include <stdlib.h>

int trace_lis_next(struct trace *t, struct trace_req *out)
{
	for (;;) {
		ssize_t n = getline(&t->line, &t->line_cap, t->f);
		const char *p = t->line;
		uint64_t start, count, ignore, reqno = t->recno;

		if (n < 0)
			return 0;
		t->recno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\n' || *p == '\r' || *p == '\0')
			continue;
		if (trace_parse_u64(&p, &start) != 0)
			return trace_fail(t, "expected a start block");
		while (*p == ' ' || *p == '\t')
			p++;
		if (trace_parse_u64(&p, &count) != 0 || count == 0)
			return trace_fail(t, "expected a block count >= 1");
		while (*p == ' ' || *p == '\t')
			p++;
		if (trace_parse_u64(&p, &ignore) == 0) {
			while (*p == ' ' || *p == '\t')
				p++;
			if (trace_parse_u64(&p, &reqno) != 0)
				reqno = t->recno - 1;
		}
		if (start > UINT64_MAX / 512 - count)
			return trace_fail(t, "block number out of range");
		out->volume = 0;
		out->offset = start * 512;
		out->length = count * 512;
		out->write = false;
		out->time_us = reqno;
		return 1;
	}
}
