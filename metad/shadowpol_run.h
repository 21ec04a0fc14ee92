/* shadowpol_run.h: the shadow policy evaluator on the metad leader: it
 * keeps the proxies' access statistics (access.h, soft state) and, on
 * every health check (health.c, once a second), decides for each volume
 * with a ShadowPolicy which shadows to add and remove (shadowpol.h) and
 * commits them as one CmdShadowChanges (docs/metad.md "Shadow policy and
 * access statistics").
 *
 * Threads: loop thread only.  Failure: create returns OMBRA_ENOMEM; a
 * tick that cannot read the state or propose logs it and tries again on
 * the next tick; at most one proposal is in flight. */
#ifndef OMBRA_METAD_SHADOWPOL_RUN_H
#define OMBRA_METAD_SHADOWPOL_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "meta.pb-c.h"
#include "metad.h"

/* AccessStatsResponse.report_interval_ms: how often proxies report. */
#define SHADOWPOL_REPORT_INTERVAL_MS 2000u
/* At most this many segments per report. */
#define SHADOWPOL_REPORT_MAX_SEGMENTS 65536u
/* At most this many changes per CmdShadowChanges, additions per tick. */
#define SHADOWPOL_RUN_MAX_CHANGES 512u
#define SHADOWPOL_RUN_MAX_ADDS 64u

struct shadowpol_run;

/* md: not owned, outlives the evaluator.  0 or OMBRA_ENOMEM (errmsg). */
int shadowpol_run_create(struct metad *md, struct shadowpol_run **out,
			 char *errmsg);
/* Free r; a proposal still in flight finds it detached.  NULL: no-op. */
void shadowpol_run_destroy(struct shadowpol_run *r);

/* Leadership gained (measure from now, from an empty table) or lost
 * (drop the table). */
void shadowpol_run_set_leader(struct shadowpol_run *r, bool is_leader);

/* One evaluation round (leader only; no-op while a proposal is in
 * flight). */
void shadowpol_run_tick(struct shadowpol_run *r);

/* Record a proxy's report (validated by the caller: region registered,
 * volume ids non-zero).  0 or OMBRA_EINVAL with errmsg (one region too
 * many for the table). */
int shadowpol_run_report(struct shadowpol_run *r,
			 const Ombra__V1__AccessStatsRequest *req,
			 char *errmsg);

/* The evaluator of the daemon (health.c owns it). */
struct shadowpol_run *health_shadowpol(struct health *h);

#endif
