/* wop.h: a write at the primary (struct wop), shared by svc_write.c (the
 * queue and the local write) and wrepl.c (replication to the other copies
 * and replica failure reports to metad).  Loop thread only.
 *
 * Failure: each op ends exactly once, when its last phase calls
 * wop_phase_done(), which answers its call (and its retried duplicates)
 * and starts the segment's next write. */
#ifndef OMBRA_STORED_WOP_H
#define OMBRA_STORED_WOP_H

#include "stored.h"

struct target {
	struct wop *op;
	uint64_t node;
	bool in_sync;
	grpc_status_code code;
	char msg[OMBRA_ERRMSG_LEN];
};

struct wop {
	struct stored *sd;
	struct rpc_call *call;
	const Ombra__V1__StoreWriteRequest *req;
	struct wop *dups; /* retries of the same request id */
	struct wop *next;
	struct segstate *ss;
	uint64_t vol, seg, segsize, epoch;
	struct wl_range r;
	bool trim; /* aligned zero range: segstore_trim, empty blocks */
	uint64_t seq_hint, version;
	uint64_t prev_version; /* the segment's highest version before it */
	unsigned char *buf;    /* r.alen bytes, NULL when trim */
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
	uint64_t bad_block; /* head/tail block that failed verification */
	bool has_bad;
	bool repaired;	/* that block was repaired once already */
	bool refetched; /* map refetched once after a refusal */
	uint64_t t0;
	/* --audit-log only (wop_finish_ok records them): wall ms when the
	 * lease and epoch were checked, and the node lease's end then. */
	uint64_t accept_ms, lease_until_ms;
	/* An aligned write whose version is known before it is stored is
	 * replicated while it is written locally (parallel); otherwise the
	 * local write (with the head/tail merge) comes first.  phases counts
	 * what still runs; the first failure is kept until both ended. */
	bool parallel;
	int phases;
	grpc_status_code fail_code;
	char fail_msg[OMBRA_ERRMSG_LEN];
	/* replication */
	Ombra__V1__BlockData *blocks;
	Ombra__V1__BlockData **bptr;
	struct target t[2 * SM_MAX_COPIES];
	size_t n_t, outstanding, report_i;
};

/* Record a failure of op (the first one is answered). */
void wop_fail(struct wop *op, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One phase of op (local write, replication) ended; when none is left,
 * answer op and its duplicates (the first recorded failure, or the
 * version) and start the segment's next write. */
void wop_phase_done(struct wop *op);

/* Send op's blocks to every in-sync replica and re-sync target, report
 * failed in-sync replicas to metad, then end op's replication phase. */
void wop_replicate(struct wop *op);

#endif
