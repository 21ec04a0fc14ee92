/* sim.h: the trace simulator core behind tools/ombra-sim: a trace loaded
 * into memory, replayed through a predict/ cache with any eviction policy
 * and any predict.h predictor, with the counters turned into the figures
 * of DESIGN.md "Prediction and prefetch" (hit ratio, precision, coverage,
 * bytes prefetched and wasted) and the replay speed.
 *
 * Replay: for each request, every block it covers is a demand access
 * (reads and writes; writes allocate); then the predictor observes the
 * request and each candidate with probability >= threshold is prefetched
 * block by block (at most max_prefetch_blocks per request); with
 * cfg.control, the issue policy (pfpolicy.h) admits candidates instead of
 * the fixed threshold and cuts them to its window and budgets.  Blocks are
 * keyed by (volume, block number).
 *
 * Errors: functions return 0, or -1 with errmsg (OMBRA_ERRMSG_LEN) naming
 * the trace, the record or the predictor. */
#ifndef OMBRA_TOOLS_SIM_H
#define OMBRA_TOOLS_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "predict/cache.h"
#include "predict/trace.h"

struct sim_trace {
	struct trace_req *reqs;
	size_t n;
	char path[256];
	double load_seconds; /* reading and parsing, decompression included */
};

struct sim_config {
	enum cache_policy policy;
	size_t cache_blocks;
	uint32_t block_size;	/* 512 or 4096 */
	const char *predictor;	/* predict.h name; "none" = no prefetch */
	const char *model_path; /* for "lstm"; NULL = default */
	unsigned prefetch_pct;	/* cache share of unused prefetched blocks */
	float threshold;	/* minimum candidate probability */
	size_t max_candidates;	/* per access */
	uint32_t max_prefetch_blocks; /* per access */
	/* Issue policy (predict/pfpolicy.h) between predictor and cache:
	 * threshold control loop (starting at `threshold`, or 0.1), adaptive
	 * window, budgets (0 = unlimited; time from the trace). */
	bool control;
	uint64_t budget_bps;	     /* prefetch bytes per trace second */
	uint64_t budget_cache_bytes; /* unused prefetched bytes */
};

struct sim_result {
	struct sim_config cfg;
	struct cache_stats st;
	double hit_ratio; /* read hits / reads, 0..1 */
	double precision; /* used / issued prefetched blocks; 0 if none */
	double coverage;  /* reads served by prefetch / (read misses + them) */
	uint64_t bytes_prefetched;
	uint64_t bytes_wasted; /* prefetched, never read */
	uint64_t accesses;     /* block accesses, reads + writes */
	double seconds;	       /* replay only */
	double accesses_per_s;
};

/* Defaults for everything but policy, size and predictor. */
void sim_config_default(struct sim_config *cfg);

/* Read the whole trace into t (owned; free with sim_trace_free()). */
int sim_trace_load(const char *path, enum trace_format fmt, struct sim_trace *t,
		   char *errmsg);
void sim_trace_free(struct sim_trace *t);

/* Distinct blocks of block_size touched by any request (the footprint);
 * 0 on out of memory. */
uint64_t sim_footprint(const struct sim_trace *t, uint32_t block_size);

/* Replay t once under cfg. */
int sim_run(const struct sim_trace *t, const struct sim_config *cfg,
	    struct sim_result *out, char *errmsg);

#endif
