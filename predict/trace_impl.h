/* trace_impl.h: the reader state shared by predict/trace.c and the
 * per-format parsers (trace_vscsi.c, trace_lis.c, trace_msr.c); not a
 * public API.  Parsers return 1/0/-1 like trace_next() and write errors
 * with trace_fail(). */
#ifndef OMBRA_PREDICT_TRACE_IMPL_H
#define OMBRA_PREDICT_TRACE_IMPL_H

#include <stdio.h>
#include <sys/types.h>

#include "err.h"
#include "predict/trace.h"

#define TRACE_MSR_MAX_VOLUMES 4096

struct trace_msr_volume {
	char host[64];
	unsigned disk;
};

struct trace {
	FILE *f;
	pid_t child; /* zstd -dc, or -1 */
	char path[256];
	enum trace_format fmt;
	uint64_t recno; /* records or lines read */
	char err[OMBRA_ERRMSG_LEN];
	/* vscsi */
	int vscsi_version; /* 0 until the first record */
	/* lis, msr */
	char *line;
	size_t line_cap;
	/* time base */
	bool have_t0;
	uint64_t t0;
	/* msr */
	struct trace_msr_volume *vols;
	size_t nvols;
};

int trace_fail(struct trace *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int trace_vscsi_next(struct trace *t, struct trace_req *out);
int trace_lis_next(struct trace *t, struct trace_req *out);
int trace_msr_next(struct trace *t, struct trace_req *out);

/* Parse an unsigned decimal at *p, advancing it; -1 when there is none or
 * it overflows. */
int trace_parse_u64(const char **p, uint64_t *out);

#endif
