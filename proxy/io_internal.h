/* io_internal.h: what the proxy's I/O engine (io.c: requests, parts,
 * sending, replies, retries) shares with its read routing (io_read.c:
 * which copies a read part tries, the checks of a foreign copy's answer
 * and the routing counters).  Not a public API: proxy_io.h is.
 *
 * Ownership: an io_req owns its parts; a part belongs to its request and
 * is on the engine's retry list at most once.  Everything runs on the
 * proxy's loop thread.  Failure: none here (see io.c, io_read.c). */
#ifndef OMBRA_PROXY_IO_INTERNAL_H
#define OMBRA_PROXY_IO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "metrics.h"
#include "proxy.h"
#include "route.h"
#include "store.pb-c.h"
#include "wflight.h"

#define IO_BLOCK 4096u
#define IO_BUDGET_MS 15000u
#define IO_CALL_MS 5000
#define IO_BACKOFF_MIN_MS 50u
#define IO_BACKOFF_MAX_MS 1000u
#define IO_MAX_COPIES 8

enum io_op { IO_READ, IO_WRITE, IO_ZERO, IO_FLUSH };

/* Why a foreign copy did not serve a read part (io_read_refused). */
enum refused_why {
	REF_BEHIND,	 /* watermark below the version asked */
	REF_NOT_PRESENT, /* some block not held */
	REF_STALE,	 /* not confirmed recently enough, no read lease */
	REF_UNREACHABLE, /* transport failure */
	REF_OTHER,
	REF_N
};

/* Why a read part went to a remote home copy first (io_read_plan). */
enum remote_why {
	WHY_NO_WRITER_LEASE, /* STRONG, this proxy holds no writer lease */
	WHY_VERSION_UNKNOWN, /* STRONG, the writer does not know the version */
	WHY_WRITE_IN_FLIGHT, /* STRONG, the writer writes these blocks now */
	WHY_NO_FOREIGN_COPY, /* no shadow or cache entry of the segment */
	WHY_COST,	     /* foreign copies exist but cost more */
	WHY_N
};

/* The read routing counters (/metrics; NULL without a registry). */
struct io_read_metrics {
	/* Read parts served, [local?][kind]; foreign copies that refused. */
	struct metric *served[2][ROUTE_KINDS];
	struct metric *foreign_refused[REF_N];
	struct metric *prop_waits; /* part_wait_propagation() parks */
	struct metric *remote_plans[WHY_N];
};

struct io_req;

struct io_part {
	struct io_req *r;
	uint64_t seg;	   /* segment index; for flush: node id */
	uint64_t off, len; /* volume range (reads: as requested) */
	uint64_t deadline_ms;
	unsigned attempt;
	struct route_try tries[ROUTE_MAX_CANDS]; /* writes: the primary */
	unsigned n_copies, next_copy;
	uint64_t primary; /* reads: the segment's primary */
	/* segver facts at the send (writes: the first send): the lease
	 * epoch (reads) and segver_sent()'s token (0: none) */
	uint64_t wepoch, sv_token;
	uint64_t node; /* node of the call in flight */
	uint64_t sent_ns;
	bool polled; /* the read in flight was busypoll_begin()-ed */
	uint64_t first_sent_unix_ms; /* writes: first send (propagate.h) */
	grpc_status_code last_code;
	char last_msg[OMBRA_ERRMSG_LEN];
	uint64_t due_ms;
	/* Parked (on the retry list) until this proxy's propagation to the
	 * foreign copy of the current try answers, or until park_until (ms,
	 * 0 = never parked): see part_wait_propagation(). */
	uint64_t park_until;
	bool parked;
	struct wflight_ent wf; /* writes: in e->wflight while in flight */
	bool done;
	struct io_part *next_retry;
};

struct io_req {
	struct io_engine *e;
	struct proxy_volume *vol;
	enum io_op op;
	uint64_t off, len;
	uint8_t *rbuf;
	const uint8_t *wbuf;
	bool fua;
	struct proxy_read_opts ro; /* reads */
	uint64_t writer_epoch;	   /* writes: vlease epoch, 0 = none */
	char reqid[80];
	proxy_io_cb cb;
	void *arg;
	unsigned n_parts, parts_left;
	struct io_part *parts;
	struct proxy_status st;
	uint64_t version;
	uint64_t t0_ns;
	bool starting; /* inside req_start(): finish through the loop */
};

struct io_engine {
	struct proxy *p;
	uv_timer_t timer;
	struct io_part *retry; /* parts waiting for their due time */
	bool stopped;
	struct io_read_metrics rm; /* io_read.c */
	struct wflight wflight;	   /* write parts in flight (wflight.h) */
};
/* ------------------------------------------------- io_read.c */

/* Create the read routing counters in e->p->metrics (if any). */
void io_read_metrics_init(struct io_engine *e);

/* The read part's attempts for this round (route.h) into pt->tries: home
 * copies, and the foreign copies its consistency may use (shadows, the
 * cache holder of the whole block range), by expected latency; sets
 * pt->primary.  Returns the count (0: the segment has no placement).
 * Counts why a plan starts at a home copy in another region
 * (ombra_proxy_read_remote_plans_total). */
unsigned io_read_plan(struct io_part *pt);

/* A STRONG read at a foreign copy asks for the segment's latest version
 * as known now (raises the try's min_version); false (pt->last_msg says
 * why) if the writer lease is no longer valid, the version no longer
 * known, or a write of the read's blocks is in flight (wflight.h). */
bool io_strong_foreign_bound(struct io_part *pt);

/* The read's current attempt is at a foreign copy (shadow, cache). */
bool io_part_foreign(const struct io_part *pt);

/* Count a foreign copy's refusal of a read part: code and msg are the
 * node's status, or OK and "" for the proxy's own check (behind). */
void io_read_refused(struct io_engine *e, grpc_status_code code,
		     const char *msg);

/* Read-your-writes: true if some block of the reply (blocks from byte a0
 * of the volume) is older than what this proxy's acknowledged writes gave
 * it (a stale copy); fills pt->last_msg. */
bool io_read_is_stale(struct io_part *pt,
		      const Ombra__V1__StoreReadResponse *rr, uint64_t a0);

/* A foreign answer must prove the bound it was asked for: its watermark
 * at least the try's min_version; true (pt->last_msg says why) if not. */
bool io_foreign_is_stale(struct io_part *pt,
			 const Ombra__V1__StoreReadResponse *rr);

/* Count a served read part by locality and copy kind (/metrics). */
void io_read_served(struct io_part *pt);

#endif
