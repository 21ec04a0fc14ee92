/* wop.h: a write at the primary (struct wop), shared by svc_write.c (the
 * queue and the local write) and wrepl.c (replication to the other copies
 * and replica failure reports to metad).  Loop thread only.
 *
 * Failure: each op ends exactly once, with wop_finish_ok() or
 * wop_finish_fail(), which answer its call (and its retried duplicates)
 * and start the segment's next write. */
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
	unsigned char *buf; /* r.alen bytes, NULL when trim */
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
	uint64_t bad_block; /* head/tail block that failed verification */
	bool has_bad;
	bool refetched; /* map refetched once after a refusal */
	uint64_t t0;
	/* replication */
	Ombra__V1__BlockData *blocks;
	Ombra__V1__BlockData **bptr;
	struct target t[2 * SM_MAX_COPIES];
	size_t n_t, outstanding, report_i;
};

/* Acknowledge op with its version (and every duplicate), next write. */
void wop_finish_ok(struct wop *op);

/* Fail op (and every duplicate) with code and a message, next write. */
void wop_finish_fail(struct wop *op, grpc_status_code code, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));

/* The local write succeeded: send it to every in-sync replica and re-sync
 * target, report failed in-sync replicas to metad, then finish op. */
void wop_replicate(struct wop *op);

#endif
