/* io.c: the proxy's block I/O engine (proxy_io.h).
 *
 * A request is split at segment boundaries into parts; each part is one
 * StoreService call (Read/Write) on one node, sent with rpc_channel_* on
 * the loop.  Reads go to the lowest-latency STRONG copy (primary or in-sync
 * replica, ranked by nodes_rank) and are widened to whole 4 KiB blocks;
 * writes and zeroes go to the segment's primary with its lease epoch and a
 * request id "<client id>/<segment>" that is reused on every retry, so a
 * retried write is applied once.  Flush sends StoreService.Flush to every
 * distinct primary of the volume.
 *
 * Retries: FAILED_PRECONDITION (stale epoch, not a copy), UNAVAILABLE,
 * DEADLINE_EXCEEDED and connection failures are retried.  A read tries the
 * next copy at once; when every copy of the round failed, and for writes
 * at once, the part asks for a fresh shard map (volcache_refresh) and
 * retries after a backoff (50 ms doubling to 1 s) until IO_BUDGET_MS has
 * passed since the part started; then it fails UNAVAILABLE with the last
 * node's message.  Any other status fails the part with the node's
 * message.  A request completes when every part has; its status is the
 * first failure.
 *
 * Failure: see proxy_io.h; a failed write may or may not have been
 * applied on some segments (never acknowledged). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "log.h"
#include "metrics.h"
#include "propagate.h"
#include "proxy.h"
#include "store.pb-c.h"
#include "wtrack.h"

#define IO_BLOCK 4096u
#define IO_BUDGET_MS 15000u
#define IO_CALL_MS 5000
#define IO_BACKOFF_MIN_MS 50u
#define IO_BACKOFF_MAX_MS 1000u
#define IO_MAX_COPIES 8

enum io_op { IO_READ, IO_WRITE, IO_ZERO, IO_FLUSH };

struct io_req;

struct io_part {
	struct io_req *r;
	uint64_t seg;	   /* segment index; for flush: node id */
	uint64_t off, len; /* volume range (reads: as requested) */
	uint64_t deadline_ms;
	unsigned attempt;
	uint64_t copies[IO_MAX_COPIES];
	unsigned n_copies, next_copy;
	uint64_t node; /* node of the call in flight */
	uint64_t sent_ns;
	grpc_status_code last_code;
	char last_msg[OMBRA_ERRMSG_LEN];
	uint64_t due_ms;
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
	char reqid[80];
	proxy_io_cb cb;
	void *arg;
	unsigned n_parts, parts_left;
	struct io_part *parts;
	struct proxy_status st;
	uint64_t version;
	uint64_t t0_ns;
};

struct io_engine {
	struct proxy *p;
	uv_timer_t timer;
	struct io_part *retry; /* parts waiting for their due time */
	bool stopped;
};

static void part_send(struct io_part *pt);
static void on_timer(uv_timer_t *t);

/* ------------------------------------------------------------ status */

void proxy_status_ok(struct proxy_status *st)
{
	st->code = GRPC_STATUS_OK;
	st->message[0] = '\0';
}

void proxy_status_set(struct proxy_status *st, grpc_status_code code,
		      const char *fmt, ...)
{
	va_list ap;

	st->code = code;
	va_start(ap, fmt);
	vsnprintf(st->message, sizeof(st->message), fmt, ap);
	va_end(ap);
}

uint64_t proxy_now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

/* ------------------------------------------------------------ completion */

static void req_metrics(struct io_req *r)
{
	struct proxy_metrics *m = &r->e->p->m;
	double secs = (double)(uv_hrtime() - r->t0_ns) / 1e9;

	if (r->st.code != GRPC_STATUS_OK) {
		metric_inc(m->errors, 1);
		return;
	}
	switch (r->op) {
	case IO_READ:
		metric_inc(m->reads, 1);
		metric_inc(m->read_bytes, (double)r->len);
		metric_observe(m->read_seconds, secs);
		break;
	case IO_WRITE:
		metric_inc(m->writes, 1);
		metric_inc(m->write_bytes, (double)r->len);
		metric_observe(m->write_seconds, secs);
		break;
	case IO_ZERO:
		metric_inc(m->zeros, 1);
		metric_observe(m->write_seconds, secs);
		break;
	case IO_FLUSH:
		metric_inc(m->flushes, 1);
		break;
	}
}

static void req_finish(void *arg)
{
	struct io_req *r = arg;

	if (r->e->p->metrics != NULL && r->e->p->m.reads != NULL)
		req_metrics(r);
	r->cb(r->arg, &r->st, r->st.code == GRPC_STATUS_OK ? r->version : 0);
	proxy_volume_release(r->vol);
	free(r->parts);
	free(r);
}

static void part_done(struct io_part *pt, grpc_status_code code,
		      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Finish a part with code (OK or the failure) and, if it was the last,
 * the request. */
static void part_done(struct io_part *pt, grpc_status_code code,
		      const char *fmt, ...)
{
	struct io_req *r = pt->r;

	if (pt->done)
		return;
	pt->done = true;
	if (code != GRPC_STATUS_OK && r->st.code == GRPC_STATUS_OK) {
		va_list ap;

		r->st.code = code;
		va_start(ap, fmt);
		vsnprintf(r->st.message, sizeof(r->st.message), fmt, ap);
		va_end(ap);
	}
	if (--r->parts_left == 0)
		req_finish(r);
}

/* ------------------------------------------------------------ retries */

static void timer_arm(struct io_engine *e)
{
	uint64_t now = proxy_now_ms(), first = UINT64_MAX;

	for (struct io_part *pt = e->retry; pt != NULL; pt = pt->next_retry)
		if (pt->due_ms < first)
			first = pt->due_ms;
	if (first == UINT64_MAX)
		uv_timer_stop(&e->timer);
	else
		uv_timer_start(&e->timer, on_timer,
			       first > now ? first - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct io_engine *e = t->data;
	uint64_t now = proxy_now_ms();
	struct io_part **pp = &e->retry, *due = NULL;

	while (*pp != NULL) {
		struct io_part *pt = *pp;

		if (pt->due_ms <= now) {
			*pp = pt->next_retry;
			pt->next_retry = due;
			due = pt;
		} else {
			pp = &pt->next_retry;
		}
	}
	timer_arm(e);
	while (due != NULL) {
		struct io_part *next = due->next_retry;

		due->next_retry = NULL;
		part_send(due);
		due = next;
	}
}

static void part_schedule(struct io_part *pt)
{
	struct io_engine *e = pt->r->e;
	uint64_t backoff = IO_BACKOFF_MIN_MS;

	for (unsigned i = 1; i < pt->attempt && backoff < IO_BACKOFF_MAX_MS;
	     i++)
		backoff *= 2;
	if (backoff > IO_BACKOFF_MAX_MS)
		backoff = IO_BACKOFF_MAX_MS;
	if (e->stopped) {
		part_done(pt, GRPC_STATUS_UNAVAILABLE, "proxy shutting down");
		return;
	}
	pt->due_ms = proxy_now_ms() + backoff;
	pt->next_retry = e->retry;
	e->retry = pt;
	timer_arm(e);
}

static void on_refreshed(void *arg, const struct proxy_status *st,
			 struct proxy_volume *vol)
{
	struct io_part *pt = arg;

	(void)vol;
	if (st->code == GRPC_STATUS_NOT_FOUND) {
		part_done(pt, GRPC_STATUS_NOT_FOUND, "volume %s does not exist",
			  proxy_volume_name(pt->r->vol));
		return;
	}
	/* Another failure (metad unreachable): retry on the map we have. */
	part_schedule(pt);
}

static bool retryable(grpc_status_code c)
{
	return c == GRPC_STATUS_FAILED_PRECONDITION ||
	       c == GRPC_STATUS_UNAVAILABLE ||
	       c == GRPC_STATUS_DEADLINE_EXCEEDED ||
	       c == GRPC_STATUS_CANCELLED || c == GRPC_STATUS_UNKNOWN;
}

/* The part's call failed with a retryable status (or no copy could be
 * tried): refresh the map and retry later, or give up. */
static void part_retry_later(struct io_part *pt)
{
	struct io_req *r = pt->r;
	struct proxy *p = r->e->p;

	if (r->e->stopped || p->stopping) {
		part_done(pt, GRPC_STATUS_UNAVAILABLE, "proxy shutting down");
		return;
	}
	if (proxy_now_ms() >= pt->deadline_ms) {
		if (r->op == IO_FLUSH)
			part_done(pt, GRPC_STATUS_UNAVAILABLE,
				  "flush on node %s: %s (gave up after %u s)",
				  nodes_address(p->nodes, pt->seg),
				  pt->last_msg, IO_BUDGET_MS / 1000);
		else
			part_done(pt, GRPC_STATUS_UNAVAILABLE,
				  "no copy of segment %" PRIu64
				  " reachable: %s (gave up after %u s)",
				  pt->seg, pt->last_msg, IO_BUDGET_MS / 1000);
		return;
	}
	metric_inc(p->m.retries, 1);
	pt->attempt++;
	pt->next_copy = 0;
	pt->n_copies = 0;
	volcache_refresh(r->vol, on_refreshed, pt);
}

/* ------------------------------------------------------------ replies */

/* A copy failed in a retryable way (pt->last_msg says how): reads try the
 * next copy at once if there is one; otherwise retry later. */
static void part_next_copy(struct io_part *pt)
{
	struct proxy *p = pt->r->e->p;

	log_debug("segment %" PRIu64 " of %s: %s; retrying", pt->seg,
		  proxy_volume_name(pt->r->vol), pt->last_msg);
	if (pt->r->op == IO_READ && pt->next_copy + 1 < pt->n_copies) {
		pt->next_copy++;
		metric_inc(p->m.retries, 1);
		part_send(pt);
		return;
	}
	part_retry_later(pt);
}

/* Read-your-writes: true if some block of the reply is older than what
 * this proxy's acknowledged writes gave it (a stale copy); fills
 * pt->last_msg. */
static bool read_is_stale(struct io_part *pt,
			  const Ombra__V1__StoreReadResponse *rr, uint64_t a0)
{
	struct wtrack *wt = proxy_volume_wtrack(pt->r->vol);
	uint64_t first = a0 / IO_BLOCK;

	for (size_t i = 0; i < rr->n_block_versions; i++) {
		uint64_t want = wtrack_expected(wt, first + i);

		if (want != 0 && rr->block_versions[i] < want) {
			ombra_errmsg_printf(
			    pt->last_msg,
			    "node %s answered block %" PRIu64
			    " at version %" PRIu64 ", older than the %" PRIu64
			    " this proxy wrote (stale copy)",
			    nodes_address(pt->r->e->p->nodes, pt->node),
			    first + i, rr->block_versions[i], want);
			return true;
		}
	}
	return false;
}

/* Common reply handling: latency, node health; returns true if the caller
 * should go on with a successful reply. */
static bool part_reply_check(struct io_part *pt, const struct rpc_status *st)
{
	struct proxy *p = pt->r->e->p;
	double ms = (double)(uv_hrtime() - pt->sent_ns) / 1e6;
	bool transport = st->code == GRPC_STATUS_UNAVAILABLE ||
			 st->code == GRPC_STATUS_DEADLINE_EXCEEDED;

	nodes_inflight(p->nodes, pt->node, -1);
	if (st->code == GRPC_STATUS_OK) {
		nodes_observe(p->nodes, pt->node, true, ms);
		return true;
	}
	if (p->stopping || pt->r->e->stopped) {
		part_done(pt, GRPC_STATUS_UNAVAILABLE, "proxy shutting down");
		return false;
	}
	if (transport)
		nodes_observe(p->nodes, pt->node, false, 0);
	pt->last_code = st->code;
	ombra_errmsg_printf(pt->last_msg, "node %s: %s: %s",
			    nodes_address(p->nodes, pt->node),
			    rpc_status_name(st->code), st->message);
	/* A copy that finds a range the proxy checked against the current
	 * map "beyond volume size" has a stale view of the volume (just
	 * resized): another copy may already know. */
	if (st->code == GRPC_STATUS_INVALID_ARGUMENT && pt->r->op == IO_READ &&
	    pt->next_copy + 1 < pt->n_copies) {
		part_next_copy(pt);
		return false;
	}
	if (!retryable(st->code)) {
		part_done(pt, st->code, "%s", pt->last_msg);
		return false;
	}
	part_next_copy(pt);
	return false;
}

static void on_read(void *arg, const struct rpc_status *st,
		    const ProtobufCMessage *resp)
{
	struct io_part *pt = arg;
	struct io_req *r = pt->r;
	const Ombra__V1__StoreReadResponse *rr =
	    (const Ombra__V1__StoreReadResponse *)resp;
	uint64_t a0 = pt->off & ~(uint64_t)(IO_BLOCK - 1);
	uint64_t a1 =
	    (pt->off + pt->len + IO_BLOCK - 1) & ~(uint64_t)(IO_BLOCK - 1);

	if (!part_reply_check(pt, st))
		return;
	if (rr->data.len != a1 - a0) {
		part_done(pt, GRPC_STATUS_INTERNAL,
			  "node %s answered %zu bytes for a read of %" PRIu64,
			  nodes_address(r->e->p->nodes, pt->node), rr->data.len,
			  a1 - a0);
		return;
	}
	if (read_is_stale(pt, rr, a0)) {
		pt->last_code = GRPC_STATUS_FAILED_PRECONDITION;
		part_next_copy(pt);
		return;
	}
	memcpy(r->rbuf + (pt->off - r->off), rr->data.data + (pt->off - a0),
	       pt->len);
	for (size_t i = 0; i < rr->n_block_versions; i++)
		if (rr->block_versions[i] > r->version)
			r->version = rr->block_versions[i];
	part_done(pt, GRPC_STATUS_OK, " ");
}

/* Queue an acknowledged write part for the segment's foreign copies
 * (propagate.h); copies the data, so it runs before the client's buffer
 * is given back. */
static void io_propagate(struct io_part *pt,
			 const Ombra__V1__StoreWriteResponse *wr)
{
	struct io_req *r = pt->r;
	uint64_t copies[IO_MAX_COPIES], epoch = 0;

	if (r->e->p->prop == NULL)
		return;
	proxy_volume_copies(r->vol, pt->seg, copies, IO_MAX_COPIES, &epoch);
	propagate_write(r->e->p->prop, r->vol, pt->seg, pt->off, pt->len,
			r->op == IO_ZERO ? NULL : r->wbuf + (pt->off - r->off),
			epoch, pt->node, wr->prev_version, wr->version);
}

static void on_write(void *arg, const struct rpc_status *st,
		     const ProtobufCMessage *resp)
{
	struct io_part *pt = arg;
	const Ombra__V1__StoreWriteResponse *wr =
	    (const Ombra__V1__StoreWriteResponse *)resp;

	uint64_t first = pt->off / IO_BLOCK;
	uint64_t n = (pt->off + pt->len + IO_BLOCK - 1) / IO_BLOCK - first;

	if (!part_reply_check(pt, st))
		return;
	if (pt->r->op == IO_ZERO)
		wtrack_forget(proxy_volume_wtrack(pt->r->vol), first, n);
	else
		wtrack_written(proxy_volume_wtrack(pt->r->vol), first, n,
			       wr->version);
	if (wr->version > pt->r->version)
		pt->r->version = wr->version;
	io_propagate(pt, wr);
	part_done(pt, GRPC_STATUS_OK, " ");
}

static void on_flush(void *arg, const struct rpc_status *st,
		     const ProtobufCMessage *resp)
{
	struct io_part *pt = arg;

	(void)resp;
	if (!part_reply_check(pt, st))
		return;
	part_done(pt, GRPC_STATUS_OK, " ");
}

/* ------------------------------------------------------------ sending */

static bool part_pick(struct io_part *pt)
{
	struct io_req *r = pt->r;
	uint64_t epoch;

	if (r->op == IO_FLUSH) {
		pt->node = pt->seg;
		return true;
	}

	if (pt->n_copies == 0) {
		pt->n_copies = proxy_volume_copies(r->vol, pt->seg, pt->copies,
						   IO_MAX_COPIES, &epoch);
		pt->next_copy = 0;
		if (pt->n_copies == 0)
			return false;
		if (r->op == IO_READ)
			nodes_rank(r->e->p->nodes, pt->copies, pt->n_copies);
		else
			pt->n_copies = 1; /* the primary only */
	}
	pt->node = pt->copies[pt->next_copy];
	return true;
}

/* Flush retries: a node that is no longer a primary of the volume holds
 * no write it still has to make durable (writes are synced before they
 * are acknowledged). */
static bool still_primary(struct io_part *pt)
{
	uint64_t ids[256];
	unsigned n = proxy_volume_primaries(pt->r->vol, ids, 256);

	for (unsigned i = 0; i < n; i++)
		if (ids[i] == pt->seg)
			return true;
	return false;
}

static void part_send(struct io_part *pt)
{
	struct io_req *r = pt->r;
	struct proxy *p = r->e->p;
	struct rpc_channel *ch;
	char errmsg[OMBRA_ERRMSG_LEN];
	char rid[120];
	uint64_t copies[IO_MAX_COPIES], epoch = 0;
	int rv;

	if (p->stopping || r->e->stopped) {
		part_done(pt, GRPC_STATUS_UNAVAILABLE, "proxy shutting down");
		return;
	}
	if (proxy_volume_deleted(r->vol)) {
		part_done(pt, GRPC_STATUS_NOT_FOUND, "volume %s does not exist",
			  proxy_volume_name(r->vol));
		return;
	}
	if (r->op == IO_FLUSH && pt->attempt > 0 && !still_primary(pt)) {
		part_done(pt, GRPC_STATUS_OK, " ");
		return;
	}
	if (!part_pick(pt)) {
		snprintf(pt->last_msg, sizeof(pt->last_msg),
			 "segment %" PRIu64 " has no placement", pt->seg);
		part_retry_later(pt);
		return;
	}
	ch = nodes_channel(p->nodes, pt->node, errmsg);
	if (ch == NULL) {
		snprintf(pt->last_msg, sizeof(pt->last_msg), "%s", errmsg);
		nodes_observe(p->nodes, pt->node, false, 0);
		if (r->op == IO_READ && pt->next_copy + 1 < pt->n_copies) {
			pt->next_copy++;
			part_send(pt);
		} else {
			part_retry_later(pt);
		}
		return;
	}
	pt->sent_ns = uv_hrtime();
	if (r->op == IO_READ) {
		Ombra__V1__StoreReadRequest q =
		    OMBRA__V1__STORE_READ_REQUEST__INIT;
		uint64_t a0 = pt->off & ~(uint64_t)(IO_BLOCK - 1);
		uint64_t a1 = (pt->off + pt->len + IO_BLOCK - 1) &
			      ~(uint64_t)(IO_BLOCK - 1);

		q.volume_id = proxy_volume_id(r->vol);
		q.segment_index = pt->seg;
		q.segment_size_bytes = proxy_volume_seg_size(r->vol);
		q.offset_bytes = a0;
		q.length_bytes = a1 - a0;
		rv = rpc_channel_unary(
		    ch, &ombra__v1__store_service__descriptor, "Read", &q.base,
		    IO_CALL_MS, on_read, pt, NULL);
	} else if (r->op == IO_FLUSH) {
		Ombra__V1__StoreFlushRequest q =
		    OMBRA__V1__STORE_FLUSH_REQUEST__INIT;

		q.volume_id = proxy_volume_id(r->vol);
		rv = rpc_channel_unary(
		    ch, &ombra__v1__store_service__descriptor, "Flush", &q.base,
		    IO_CALL_MS, on_flush, pt, NULL);
	} else {
		Ombra__V1__StoreWriteRequest q =
		    OMBRA__V1__STORE_WRITE_REQUEST__INIT;

		proxy_volume_copies(r->vol, pt->seg, copies, IO_MAX_COPIES,
				    &epoch);
		snprintf(rid, sizeof(rid), "%s/%" PRIu64, r->reqid, pt->seg);
		q.volume_id = proxy_volume_id(r->vol);
		q.segment_index = pt->seg;
		q.segment_size_bytes = proxy_volume_seg_size(r->vol);
		q.lease_epoch = epoch;
		q.offset_bytes = pt->off;
		q.fua = r->fua;
		q.request_id = rid;
		if (r->op == IO_ZERO) {
			q.zero = true;
			q.length_bytes = pt->len;
		} else {
			q.data.data = (uint8_t *)r->wbuf + (pt->off - r->off);
			q.data.len = pt->len;
			q.length_bytes = pt->len;
		}
		rv = rpc_channel_unary(
		    ch, &ombra__v1__store_service__descriptor, "Write", &q.base,
		    IO_CALL_MS, on_write, pt, NULL);
	}
	if (rv != 0) {
		snprintf(pt->last_msg, sizeof(pt->last_msg),
			 "cannot start a call to %s: %s",
			 nodes_address(p->nodes, pt->node), ombra_strerror(rv));
		part_retry_later(pt);
		return;
	}
	nodes_inflight(p->nodes, pt->node, +1);
}

/* ------------------------------------------------------------ requests */

/* defer_fn: a part's first attempt. */
static void part_start(void *arg)
{
	part_send(arg);
}

struct io_early {
	proxy_io_cb cb;
	void *arg;
	struct proxy_status st;
};

static void early_run(void *arg)
{
	struct io_early *x = arg;

	x->cb(x->arg, &x->st, 0);
	free(x);
}

/* Answer at once (through the loop) without touching any node. */
static void io_answer(struct proxy *p, proxy_io_cb cb, void *arg,
		      grpc_status_code code, const char *msg)
{
	struct io_early *x = calloc(1, sizeof(*x));

	if (x == NULL)
		abort();
	x->cb = cb;
	x->arg = arg;
	x->st.code = code;
	snprintf(x->st.message, sizeof(x->st.message), "%s", msg);
	defer_call(p->defer, early_run, x);
}

/* Validate and split [off, off+len) into per-segment parts, then send. */
static void io_submit(struct proxy_volume *vol, enum io_op op, uint64_t off,
		      uint64_t len, void *rbuf, const void *wbuf, bool fua,
		      const char *request_id, proxy_io_cb cb, void *arg)
{
	struct proxy *p = proxy_volume_proxy(vol);
	uint64_t size = proxy_volume_size(vol);
	uint64_t seg_size = proxy_volume_seg_size(vol);
	char msg[OMBRA_ERRMSG_LEN];
	struct io_req *r;
	uint64_t first, last, now = proxy_now_ms();

	if (p->stopping) {
		io_answer(p, cb, arg, GRPC_STATUS_UNAVAILABLE,
			  "proxy shutting down");
		return;
	}
	if (proxy_volume_deleted(vol)) {
		snprintf(msg, sizeof(msg), "volume %s does not exist",
			 proxy_volume_name(vol));
		io_answer(p, cb, arg, GRPC_STATUS_NOT_FOUND, msg);
		return;
	}
	if (len > PROXY_IO_MAX_BYTES) {
		snprintf(msg, sizeof(msg),
			 "length %" PRIu64 " is above the limit of %u bytes "
			 "per request",
			 len, PROXY_IO_MAX_BYTES);
		io_answer(p, cb, arg, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return;
	}
	if (off > size || len > size - off) {
		snprintf(msg, sizeof(msg),
			 "offset %" PRIu64 " + length %" PRIu64
			 " beyond volume size %" PRIu64,
			 off, len, size);
		io_answer(p, cb, arg, GRPC_STATUS_INVALID_ARGUMENT, msg);
		return;
	}
	if (len == 0 || seg_size == 0) {
		io_answer(p, cb, arg, GRPC_STATUS_OK, "");
		return;
	}
	r = calloc(1, sizeof(*r));
	first = off / seg_size;
	last = (off + len - 1) / seg_size;
	if (r != NULL)
		r->parts = calloc(last - first + 1, sizeof(*r->parts));
	if (r == NULL || r->parts == NULL) {
		free(r);
		io_answer(p, cb, arg, GRPC_STATUS_RESOURCE_EXHAUSTED,
			  "out of memory");
		return;
	}
	r->e = p->io;
	r->vol = proxy_volume_ref(vol);
	r->op = op;
	r->off = off;
	r->len = len;
	r->rbuf = rbuf;
	r->wbuf = wbuf;
	r->fua = fua;
	r->cb = cb;
	r->arg = arg;
	r->t0_ns = uv_hrtime();
	proxy_status_ok(&r->st);
	if (request_id != NULL && request_id[0] != '\0')
		snprintf(r->reqid, sizeof(r->reqid), "%s", request_id);
	else
		rpc_request_id(r->reqid, sizeof(r->reqid));
	r->n_parts = r->parts_left = (unsigned)(last - first + 1);
	for (uint64_t s = first; s <= last; s++) {
		struct io_part *pt = &r->parts[s - first];
		uint64_t s0 = s * seg_size, s1 = s0 + seg_size;

		pt->r = r;
		pt->seg = s;
		pt->off = off > s0 ? off : s0;
		pt->len = (off + len < s1 ? off + len : s1) - pt->off;
		pt->deadline_ms = now + IO_BUDGET_MS;
		access_note(p->access, proxy_volume_id(vol), s, op != IO_READ,
			    pt->len);
	}
	for (unsigned i = 0; i < r->n_parts; i++)
		defer_call(p->defer, part_start, &r->parts[i]);
}

void proxy_io_read(struct proxy_volume *vol, uint64_t off, uint64_t len,
		   void *buf, proxy_io_cb cb, void *arg)
{
	io_submit(vol, IO_READ, off, len, buf, NULL, false, NULL, cb, arg);
}

void proxy_io_write(struct proxy_volume *vol, uint64_t off, uint64_t len,
		    const void *buf, bool fua, const char *request_id,
		    proxy_io_cb cb, void *arg)
{
	io_submit(vol, IO_WRITE, off, len, NULL, buf, fua, request_id, cb, arg);
}

void proxy_io_zero(struct proxy_volume *vol, uint64_t off, uint64_t len,
		   bool fua, const char *request_id, proxy_io_cb cb, void *arg)
{
	io_submit(vol, IO_ZERO, off, len, NULL, NULL, fua, request_id, cb, arg);
}

void proxy_io_flush(struct proxy_volume *vol, proxy_io_cb cb, void *arg)
{
	struct proxy *p = proxy_volume_proxy(vol);
	uint64_t ids[256];
	unsigned n = proxy_volume_primaries(vol, ids, 256);
	uint64_t now = proxy_now_ms();
	struct io_req *r;

	if (p->stopping || n == 0) {
		io_answer(p, cb, arg,
			  p->stopping ? GRPC_STATUS_UNAVAILABLE
				      : GRPC_STATUS_OK,
			  p->stopping ? "proxy shutting down" : "");
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r != NULL)
		r->parts = calloc(n, sizeof(*r->parts));
	if (r == NULL || r->parts == NULL) {
		free(r);
		io_answer(p, cb, arg, GRPC_STATUS_RESOURCE_EXHAUSTED,
			  "out of memory");
		return;
	}
	r->e = p->io;
	r->vol = proxy_volume_ref(vol);
	r->op = IO_FLUSH;
	r->cb = cb;
	r->arg = arg;
	r->t0_ns = uv_hrtime();
	proxy_status_ok(&r->st);
	r->n_parts = r->parts_left = n;
	for (unsigned i = 0; i < n; i++) {
		r->parts[i].r = r;
		r->parts[i].seg = ids[i];
		r->parts[i].deadline_ms = now + IO_BUDGET_MS;
		defer_call(p->defer, part_start, &r->parts[i]);
	}
}

/* ------------------------------------------------------------ engine */

int io_engine_create(struct proxy *p, struct io_engine **out, char *errmsg)
{
	struct io_engine *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		ombra_errmsg_printf(errmsg, "I/O engine: out of memory");
		return OMBRA_ENOMEM;
	}
	e->p = p;
	uv_timer_init(p->loop, &e->timer);
	e->timer.data = e;
	*out = e;
	return 0;
}

void io_engine_stop(struct io_engine *e)
{
	struct io_part *pt = e->retry;

	e->stopped = true;
	e->retry = NULL;
	uv_timer_stop(&e->timer);
	while (pt != NULL) {
		struct io_part *next = pt->next_retry;

		pt->next_retry = NULL;
		part_done(pt, GRPC_STATUS_UNAVAILABLE, "proxy shutting down");
		pt = next;
	}
}

static void engine_closed(uv_handle_t *h)
{
	free(h->data);
}

void io_engine_destroy(struct io_engine *e)
{
	if (e == NULL)
		return;
	io_engine_stop(e);
	uv_close((uv_handle_t *)&e->timer, engine_closed);
}
