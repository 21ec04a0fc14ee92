/* failover.h: leader failover time of ombra-bench-metad: write until the
 * cluster is serving, SIGKILL the leader's process, and time how long it
 * takes until the first write succeeds again.
 *
 * Failure: OMBRA_E* with errmsg when the cluster does not serve before
 * the kill, the process cannot be signalled, or no write succeeds within
 * the limit (OMBRA_ETIMEDOUT). */
#ifndef OMBRA_BENCH_FAILOVER_H
#define OMBRA_BENCH_FAILOVER_H

#include <stdint.h>
#include <sys/types.h>

#include "bench.h"
#include "err.h"

struct bench_failover_opts {
	const struct bench_system *sys;
	const char *endpoints; /* every member, the leader included */
	const char *prefix;    /* record names: <prefix>-f-<seq> */
	pid_t leader_pid;      /* process to SIGKILL */
	int attempt_ms; /* budget of one write attempt after the kill; bounds
			   the measurement error (ms) */
	int limit_ms;	/* give up after this long without a write (ms) */
};

struct bench_failover_result {
	double failover_ms; /* SIGKILL to the end of the first good write */
	uint64_t attempts;  /* writes tried after the kill, the good one too */
	double last_write_ms; /* latency of that first good write */
	char last_error[OMBRA_ERRMSG_LEN]; /* last failure seen, "" if none */
};

/* Run the measurement; fills r on success.  The clock starts right after
 * kill(2) returns; attempts are back to back, each a fresh record. */
int bench_failover_run(const struct bench_failover_opts *o,
		       struct bench_failover_result *r, char *errmsg);

#endif
