/* load.h: one timed load phase of ombra-bench-metad: N client threads,
 * each with its own leader-following connection, issuing writes or
 * linearizable reads back to back for a fixed time.
 *
 * Failure: bench_load_run() returns OMBRA_E* with errmsg when the phase
 * could not start (a client could not connect or create its record);
 * failed operations during the phase are counted, not fatal. */
#ifndef OMBRA_BENCH_LOAD_H
#define OMBRA_BENCH_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "bench.h"
#include "err.h"
#include "latency.h"

/* Longest --prefix: leaves room for "-<client>-<seq>" within 64 bytes. */
#define BENCH_PREFIX_MAX 40

struct bench_load_opts {
	const struct bench_system *sys;
	const char *endpoints; /* "host:port,..." of the cluster's members */
	const char *prefix;    /* record names: <prefix>-<client>-<seq> */
	int clients;	       /* threads, >= 1 */
	double duration_s;     /* measured time, > 0 */
	bool write;	       /* true: writes; false: linearizable reads */
	int timeout_ms;	       /* budget of one operation, retries included */
};

struct bench_load_result {
	uint64_t ops;	  /* operations that succeeded */
	uint64_t errors;  /* operations that failed */
	double elapsed_s; /* from the common start to the last client's end */
	double ops_per_s; /* ops / elapsed_s */
	struct bench_lat_summary lat; /* successful operations only */
	double value_bytes; /* mean record size written (writes only) */
	char first_error[OMBRA_ERRMSG_LEN]; /* "" when errors == 0 */
};

/* Run one phase.  Before the clock starts every client connects and does
 * one untimed operation (a write; for reads it creates the record it will
 * read), so connection setup is not measured.  Returns 0 and fills r, or
 * OMBRA_E* with errmsg. */
int bench_load_run(const struct bench_load_opts *o, struct bench_load_result *r,
		   char *errmsg);

#endif
