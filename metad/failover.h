/* failover.h: region failover on the metad leader (failover.c): promote
 * the freshest shadow of segments whose home copies are all DOWN, for
 * volumes with ShadowPolicy.auto_promote_shadows.
 *
 * Threads: loop thread only.  Failure: create returns OMBRA_ENOMEM with
 * errmsg; everything else logs and retries on the next tick. */
#ifndef OMBRA_METAD_FAILOVER_H
#define OMBRA_METAD_FAILOVER_H

#include "metad.h"

struct failover;

/* md: not owned, outlives the module.  0 or OMBRA_ENOMEM. */
int failover_create(struct metad *md, struct failover **out, char *errmsg);

/* Start a round if this member is leader and none is running (called by
 * health.c's one-second check). */
void failover_tick(struct failover *fo);

/* Cancel the calls in flight, close the channels and free fo once they
 * are released (asynchronously, on the loop).  NULL is a no-op. */
void failover_close(struct failover *fo);

#endif
