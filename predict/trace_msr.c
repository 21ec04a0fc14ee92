/* trace_msr.c: MSR Cambridge block traces (SNIA IOTTA), CSV lines
 * "Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime" with the
 * timestamp in Windows filetime (100 ns ticks), offsets and sizes in
 * bytes.  A header line starting with a letter is skipped; zero-size
 * requests are skipped; anything else malformed is an error. */
#include "predict/trace_impl.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int volume_of(struct trace *t, const char *host, size_t hlen,
		     unsigned disk, uint64_t *out)
{
	if (hlen >= sizeof(t->vols[0].host))
		hlen = sizeof(t->vols[0].host) - 1;
	for (size_t i = 0; i < t->nvols; i++) {
		if (t->vols[i].disk == disk &&
		    strncmp(t->vols[i].host, host, hlen) == 0 &&
		    t->vols[i].host[hlen] == '\0') {
			*out = i;
			return 0;
		}
	}
	if (t->nvols == TRACE_MSR_MAX_VOLUMES)
		return trace_fail(t, "more than %d (host, disk) volumes",
				  TRACE_MSR_MAX_VOLUMES);
	if (t->vols == NULL) {
		t->vols = calloc(TRACE_MSR_MAX_VOLUMES, sizeof(*t->vols));
		if (t->vols == NULL)
			return trace_fail(t, "out of memory");
	}
	memcpy(t->vols[t->nvols].host, host, hlen);
	t->vols[t->nvols].host[hlen] = '\0';
	t->vols[t->nvols].disk = disk;
	*out = t->nvols++;
	return 0;
}

int trace_msr_next(struct trace *t, struct trace_req *out)
{
	for (;;) {
		ssize_t n = getline(&t->line, &t->line_cap, t->f);
		const char *p = t->line, *host, *type;
		size_t hlen, tlen;
		uint64_t ts, disk, off, size;

		if (n < 0)
			return 0;
		t->recno++;
		if (*p == '\n' || *p == '\r' || *p == '\0')
			continue;
		if (t->recno == 1 &&
		    ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
			continue; /* header */
		if (trace_parse_u64(&p, &ts) != 0 || *p++ != ',')
			return trace_fail(t, "expected Timestamp,");
		host = p;
		p = strchr(p, ',');
		if (p == NULL)
			return trace_fail(t, "expected Hostname,");
		hlen = (size_t)(p - host);
		p++;
		if (trace_parse_u64(&p, &disk) != 0 || *p++ != ',' ||
		    disk > 1u << 20)
			return trace_fail(t, "expected DiskNumber,");
		type = p;
		p = strchr(p, ',');
		if (p == NULL)
			return trace_fail(t, "expected Type,");
		tlen = (size_t)(p - type);
		p++;
		if (trace_parse_u64(&p, &off) != 0 || *p++ != ',')
			return trace_fail(t, "expected Offset,");
		if (trace_parse_u64(&p, &size) != 0)
			return trace_fail(t, "expected Size");
		if (tlen == 4 && strncasecmp(type, "Read", 4) == 0)
			out->write = false;
		else if (tlen == 5 && strncasecmp(type, "Write", 5) == 0)
			out->write = true;
		else
			return trace_fail(t, "Type is neither Read nor Write");
		if (size == 0)
			continue;
		if (volume_of(t, host, hlen, (unsigned)disk, &out->volume) != 0)
			return -1;
		if (!t->have_t0) {
			t->have_t0 = true;
			t->t0 = ts;
		}
		out->offset = off;
		out->length = size;
		out->time_us = ts >= t->t0 ? (ts - t->t0) / 10 : 0;
		return 1;
	}
}
