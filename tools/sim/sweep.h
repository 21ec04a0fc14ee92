/* sweep.h: ombra-sim --sweep: every combination of cache sizes x
 * predictors x policies over one loaded trace; prints the table, writes
 * the CSV and a PNG plot of hit ratio against cache size (gnuplot, Debian
 * gnuplot-nox).
 *
 * Sizes are a comma list of block counts or percentages of the trace's
 * footprint ("0.1%,1%,10%"); a predictor that predictor_create() does not
 * know is reported once on stderr and skipped.  Returns 0, or -1 with
 * errmsg on a bad list, an unwritable output or a failed run; a missing
 * gnuplot only warns. */
#ifndef OMBRA_TOOLS_SIM_SWEEP_H
#define OMBRA_TOOLS_SIM_SWEEP_H

#include <stdio.h>

#include "tools/sim/sim.h"

struct sweep_spec {
	const char *sizes;	/* "0.1%,1%,10%" or "1000,5000" */
	const char *predictors; /* "none,obl,amp,mithril,lstm,adaptive" */
	const char *policies;	/* "lru,arc" */
	const char *csv_path;	/* NULL: none */
	const char *plot_path;	/* NULL: none */
	struct sim_config base; /* block size, prefetch share, ... */
};

int sweep_run(const struct sim_trace *t, const struct sweep_spec *s, FILE *out,
	      char *errmsg);

#endif
