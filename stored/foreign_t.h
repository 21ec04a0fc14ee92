/* foreign_t.h: the types of ombra-stored's table of foreign copies
 * (types only, so that stored.h can embed the table; the functions are in
 * foreign.h).  Loop thread only.  Failure: none (types). */
#ifndef OMBRA_STORED_FOREIGN_T_H
#define OMBRA_STORED_FOREIGN_T_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "foreign_logic.h"

struct fapply;
struct metric;
struct reclaim;

struct fcent {
	struct fc_copy c;
	uint64_t gen;	  /* unique per record: a read checks it is the same */
	int pulls;	  /* pulls running into it */
	bool ae_running;  /* anti-entropy round running */
	bool from_map;	  /* a shadow placed by the shard map (dropped when
			     the map no longer lists this node) */
	uint64_t ae_next; /* loop ms of the next anti-entropy round */
	uint64_t fill_retry; /* loop ms before which no fill step starts */
	struct fcent *hnext;
};

#define FOREIGN_BUCKETS 1024

struct foreign {
	struct fcent *b[FOREIGN_BUCKETS];
	size_t count;
	uint64_t next_gen;
	uv_timer_t timer; /* foreign_shadow.c: shadows, fill, anti-entropy */
	bool timer_open;
	bool scan_running;	  /* ListVolumes for shadow volumes in flight */
	uint64_t last_list_ms;	  /* loop ms of the last ListVolumes */
	bool fill_running;	  /* one shadow segment filled at a time */
	bool swept;		  /* foreign_sweep.c started (once per run) */
	uv_timer_t fill_timer;	  /* paces the fill */
	struct reclaim *reclaims; /* volume data deletions in flight */
	struct fapply *applies;	  /* store jobs running and waiting */
	/* /metrics (foreign.c; NULL before foreign_start, metric_* accept
	 * NULL): per kind (FC_SHADOW, FC_CACHE) copies and bytes held. */
	struct metric *m_copies[2], *m_bytes[2];
	struct metric *m_capacity, *m_lag_ms, *m_reads, *m_refused, *m_evicted,
	    *m_pulled;
};

#endif
