/* report.h: ombra-sim's output of simulation results: a human summary,
 * one JSON object per run, CSV rows and the sweep's aligned table.  All
 * write to a caller's FILE and cannot fail beyond stdio errors, which the
 * caller checks with ferror(). */
#ifndef OMBRA_TOOLS_SIM_REPORT_H
#define OMBRA_TOOLS_SIM_REPORT_H

#include <stdio.h>

#include "tools/sim/sim.h"

void report_text(FILE *f, const struct sim_trace *t,
		 const struct sim_result *r);
void report_json(FILE *f, const struct sim_trace *t,
		 const struct sim_result *r);
void report_csv_header(FILE *f);
void report_csv_row(FILE *f, const struct sim_trace *t,
		    const struct sim_result *r);
void report_table_header(FILE *f);
void report_table_row(FILE *f, const struct sim_result *r);

#endif
