/* io.c: the proxy's block I/O engine (proxy_io.h).
 *
 * A request is split at segment boundaries into parts; each part is one
 * StoreService call (Read/Write) on one node, sent with rpc_channel_* on
 * the loop.  Reads are widened to whole 4 KiB blocks and go to the copies
 * route_plan() allows for their consistency (route.h: home copies, shadows,
 * the prefetch cache holder), the lowest expected latency first (the plan
 * and the checks of foreign answers are in io_read.c); a foreign
 * copy is asked with foreign_ok and its bound, and an answer whose
 * watermark is below the asked min_version is treated as stale.  Writes
 * and zeroes go to the segment's primary with its lease epoch, the
 * volume's writer epoch (vlease.h, taken before the first part is sent)
 * and a request id "<client id>/<segment>" that is reused on every retry,
 * so a retried write is applied once.  Write answers and reads at the
 * primary teach segver.h the segments' latest versions.  Flush sends
 * StoreService.Flush to every distinct primary of the volume.
 *
 * A read call of a segment with more than one copy has the failover
 * deadline of its node (nodes_failover_ms(): about 4 p99s, docs/proxy.md
 * "Read failover") instead of IO_CALL_MS, the last copy of its list too:
 * the retry goes back to the first (often a local copy that refused it
 * a moment earlier).
 *
 * Retries: FAILED_PRECONDITION (stale epoch, not a copy), UNAVAILABLE,
 * DEADLINE_EXCEEDED and connection failures are retried; a foreign copy's
 * failure of any kind only moves the read on.  A write refused for a stale
 * writer epoch is not retried: the lease is lost (vlease_fenced()).  A
 * read tries the next copy at once; when every copy of the round failed, and
 * for writes at once, the part asks for a fresh shard map (volcache_refresh)
 * and retries after a backoff (50 ms doubling to 1 s) until IO_BUDGET_MS has
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
#include "args.h"
#include "busypoll.h"
#include "io_internal.h"
#include "log.h"
#include "prefetch.h"
#include "propagate.h"
#include "segver.h"
#include "vlease.h"
#include "wtrack.h"

static void part_send(struct io_part *pt);
static void part_start(void *arg);
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
	wflight_remove(&r->e->wflight, &pt->wf);
	if (code != GRPC_STATUS_OK && (r->op == IO_WRITE || r->op == IO_ZERO))
		segver_write_failed(proxy_volume_segver(r->vol), pt->seg);
	if (code != GRPC_STATUS_OK && r->st.code == GRPC_STATUS_OK) {
		va_list ap;

		r->st.code = code;
		va_start(ap, fmt);
		vsnprintf(r->st.message, sizeof(r->st.message), fmt, ap);
		va_end(ap);
	}
	if (--r->parts_left == 0) {
		if (r->starting)
			defer_call(r->e->p->defer, req_finish, r);
		else
			req_finish(r);
	}
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

/* Take the parts of e's retry list that match(pt, arg) off it, re-arm
 * the timer for the others, and send them (their next attempt now).
 * Returns false (timer untouched) if none matched. */
static bool retry_release(struct io_engine *e,
			  bool (*match)(const struct io_part *pt,
					const void *arg),
			  const void *arg)
{
	struct io_part **pp = &e->retry, *go = NULL;

	while (*pp != NULL) {
		struct io_part *pt = *pp;

		if (match(pt, arg)) {
			*pp = pt->next_retry;
			pt->next_retry = go;
			go = pt;
		} else {
			pp = &pt->next_retry;
		}
	}
	if (go == NULL)
		return false;
	timer_arm(e);
	while (go != NULL) {
		struct io_part *next = go->next_retry;

		go->next_retry = NULL;
		go->parked = false;
		part_send(go);
		go = next;
	}
	return true;
}

static bool part_due(const struct io_part *pt, const void *now)
{
	return pt->due_ms <= *(const uint64_t *)now;
}

static void on_timer(uv_timer_t *t)
{
	struct io_engine *e = t->data;
	uint64_t now = proxy_now_ms();

	if (!retry_release(e, part_due, &now))
		timer_arm(e); /* fired early: nothing due yet */
}

struct prop_key {
	uint64_t node, volume_id, seg;
};

static bool part_parked_on(const struct io_part *pt, const void *arg)
{
	const struct prop_key *k = arg;

	return pt->parked && pt->node == k->node && pt->seg == k->seg &&
	       proxy_volume_id(pt->r->vol) == k->volume_id;
}

void io_engine_propagated(void *ctx, uint64_t node, uint64_t volume_id,
			  uint64_t seg)
{
	struct prop_key k = {node, volume_id, seg};

	retry_release(ctx, part_parked_on, &k);
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

/* A read whose current try is a foreign copy below the version it needs
 * waits for this proxy's own propagation to that copy, if one that brings
 * it there is under way (propagate_pending()): a local round trip instead
 * of the remote home copy.  Common for the single writer of a volume: a
 * read soon after a write of its segment asks for the write's version,
 * which is still on its way to the local shadow.  The wait ends when the
 * propagation answers (io_engine_propagated) and lasts at most the
 * expected latency of the home copy the read would go to instead (at
 * least 1 ms); after that the read is sent, refused if still behind, and
 * goes home.  Returns true if the part was parked. */
static bool part_wait_propagation(struct io_part *pt)
{
	struct io_req *r = pt->r;
	struct io_engine *e = r->e;
	const struct route_try *t = &pt->tries[pt->next_copy];
	uint64_t now = proxy_now_ms();

	if (!t->foreign_ok || t->min_version == 0 || e->stopped)
		return false;
	if (pt->park_until == 0) {
		double home = nodes_expected_ms(e->p->nodes, pt->primary);

		pt->park_until = now + (home >= 1.0 ? (uint64_t)home : 1u);
	}
	if (now >= pt->park_until ||
	    !propagate_pending(e->p->prop, pt->node, proxy_volume_id(r->vol),
			       pt->seg, t->min_version))
		return false;
	/* The propagation may still linger (docs/proxy.md "Linger"). */
	propagate_hurry(e->p->prop, pt->node, proxy_volume_id(r->vol), pt->seg);
	pt->parked = true;
	pt->due_ms = pt->park_until;
	pt->next_retry = e->retry;
	e->retry = pt;
	timer_arm(e);
	if (e->rm.prop_waits != NULL)
		metric_inc(e->rm.prop_waits, 1);
	return true;
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

/* Common reply handling: latency, node health; returns true if the caller
 * should go on with a successful reply. */
static bool part_reply_check(struct io_part *pt, const struct rpc_status *st)
{
	struct proxy *p = pt->r->e->p;
	double ms = (double)(uv_hrtime() - pt->sent_ns) / 1e6;
	bool transport = st->code == GRPC_STATUS_UNAVAILABLE ||
			 st->code == GRPC_STATUS_DEADLINE_EXCEEDED;
	bool write = pt->r->op == IO_WRITE || pt->r->op == IO_ZERO;

	/* The latency table estimates reads (routing is for reads): writes
	 * wait for the replicas' syncs, and would make a primary look slow
	 * to the reads it serves quickly. */
	if (pt->r->op == IO_READ)
		nodes_inflight(p->nodes, pt->node, -1);
	if (st->code == GRPC_STATUS_OK) {
		if (pt->r->op == IO_READ)
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
	/* Fenced: another proxy took the volume's writer lease since. */
	if (write && st->code == GRPC_STATUS_FAILED_PRECONDITION &&
	    strstr(st->message, "stale writer epoch") != NULL) {
		vlease_fenced(pt->r->vol, st->message);
		part_done(pt, st->code, "%s", pt->last_msg);
		return false;
	}
	/* A foreign copy that cannot serve the read (stale, not present,
	 * an older node that does not know foreign reads): the next. */
	if (io_part_foreign(pt)) {
		io_read_refused(pt->r->e, st->code, st->message);
		if (pt->tries[pt->next_copy].kind == ROUTE_CACHE &&
		    st->code == GRPC_STATUS_FAILED_PRECONDITION)
			prefetch_cache_refused(p->prefetch, pt->r->vol, pt->seg,
					       pt->node);
		part_next_copy(pt);
		return false;
	}
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

	if (pt->polled) {
		pt->polled = false;
		busypoll_end(r->e->p->bpoll);
	}
	if (!part_reply_check(pt, st))
		return;
	if (rr->data.len != a1 - a0) {
		part_done(pt, GRPC_STATUS_INTERNAL,
			  "node %s answered %zu bytes for a read of %" PRIu64,
			  nodes_address(r->e->p->nodes, pt->node), rr->data.len,
			  a1 - a0);
		return;
	}
	if (io_read_is_stale(pt, rr, a0) || io_foreign_is_stale(pt, rr)) {
		pt->last_code = GRPC_STATUS_FAILED_PRECONDITION;
		if (io_part_foreign(pt))
			io_read_refused(r->e, GRPC_STATUS_OK, "");
		if (io_part_foreign(pt) &&
		    pt->tries[pt->next_copy].kind == ROUTE_CACHE)
			prefetch_cache_refused(r->e->p->prefetch, r->vol,
					       pt->seg, pt->node);
		part_next_copy(pt);
		return;
	}
	/* The primary's answer (never a foreign one) tells the segment's
	 * latest version under the writer lease the read was sent under. */
	if (pt->node == pt->primary && !rr->foreign)
		segver_read_primary(proxy_volume_segver(r->vol), pt->wepoch,
				    pt->seg, rr->segment_version, pt->sv_token);
	io_read_served(pt);
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
			epoch, pt->node, wr->prev_version, wr->version,
			pt->first_sent_unix_ms);
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
	segver_write_acked(proxy_volume_segver(pt->r->vol), pt->r->writer_epoch,
			   pt->seg, wr->version, pt->sv_token);
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
	uint64_t ids[IO_MAX_COPIES], epoch;

	if (r->op == IO_FLUSH) {
		pt->node = pt->seg;
		return true;
	}

	if (pt->n_copies == 0) {
		pt->next_copy = 0;
		if (r->op == IO_READ) {
			pt->n_copies = io_read_plan(pt);
		} else if (proxy_volume_copies(r->vol, pt->seg, ids,
					       IO_MAX_COPIES, &epoch) > 0) {
			memset(&pt->tries[0], 0, sizeof(pt->tries[0]));
			pt->tries[0].node = ids[0]; /* the primary only */
			pt->n_copies = 1;
		}
		if (pt->n_copies == 0)
			return false;
	}
	pt->node = pt->tries[pt->next_copy].node;
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
	/* A write under a lease that is no longer valid would be fenced
	 * (or, worse, race the new writer): fail it with the reason. */
	if (r->writer_epoch != 0 &&
	    vlease_valid_epoch(r->vol) != r->writer_epoch) {
		struct proxy_status why;

		vlease_why(r->vol, &why);
		part_done(pt, why.code, "%s", why.message);
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
	if (r->op == IO_READ && !io_strong_foreign_bound(pt)) {
		part_next_copy(pt);
		return;
	}
	if (r->op == IO_READ && part_wait_propagation(pt))
		return;
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
		q.foreign_ok = pt->tries[pt->next_copy].foreign_ok;
		q.min_version = pt->tries[pt->next_copy].min_version;
		q.max_staleness_ms = pt->tries[pt->next_copy].max_staleness_ms;
		pt->wepoch = vlease_valid_epoch(r->vol);
		pt->sv_token =
		    pt->wepoch != 0 && pt->node == pt->primary && !q.foreign_ok
			? segver_sent(proxy_volume_segver(r->vol), pt->seg,
				      true)
			: 0;
		rv = rpc_channel_unary(
		    ch, &ombra__v1__store_service__descriptor, "Read", &q.base,
		    pt->n_copies > 1
			? nodes_failover_ms(p->nodes, pt->node, IO_CALL_MS)
			: IO_CALL_MS,
		    on_read, pt, NULL);
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
		q.writer_epoch = r->writer_epoch;
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
		if (pt->first_sent_unix_ms == 0) {
			pt->first_sent_unix_ms = propagate_unix_ms();
			wflight_add(&r->e->wflight, &pt->wf, r->vol, pt->off,
				    pt->len);
			if (r->writer_epoch != 0)
				pt->sv_token = segver_sent(
				    proxy_volume_segver(r->vol), pt->seg,
				    proxy_volume_shadows(r->vol, pt->seg,
							 copies, 1) > 0);
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
	if (r->op == IO_READ) {
		nodes_inflight(p->nodes, pt->node, +1);
		pt->polled = busypoll_enabled(p->bpoll) &&
			     nodes_in_region(p->nodes, pt->node, p->region);
		if (pt->polled)
			busypoll_begin(p->bpoll);
	}
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

/* Send the first attempt of each of r's parts now, in the caller's loop
 * callback: no loop turn between a client's request and its calls to the
 * nodes, where other work (write completions, propagation, prefetch)
 * would delay it.  A part that finishes at once (no placement, lease
 * gone) finishes the request through the loop (part_done), so that the
 * client's callback never runs inside io_submit() (proxy_io.h). */
static void req_start(struct io_req *r)
{
	r->starting = true;
	for (unsigned i = 0; i < r->n_parts; i++)
		part_send(&r->parts[i]);
	r->starting = false;
}

/* vlease_cb: the write's lease is held (or refused): send the parts. */
static void write_leased(void *arg, const struct proxy_status *st,
			 uint64_t epoch)
{
	struct io_req *r = arg;

	if (st->code != GRPC_STATUS_OK) {
		r->st = *st;
		req_finish(r); /* no part was sent */
		return;
	}
	r->writer_epoch = epoch;
	req_start(r);
}

/* defer_fn: a write (or zero) request, one loop turn after io_submit():
 * its parts are sent under the writer lease held now, or once
 * vlease_acquire() got it.  Reads are sent at once instead, so a read
 * decoded from the same client buffer as writes goes to its node first:
 * a write's send is the heavier work of the loop (its payload; a primary
 * maybe in another region), and a reader waits for its read while a
 * write is usually absorbed. */
static void write_begin(void *arg)
{
	struct io_req *r = arg;
	struct proxy *p = r->e->p;

	if (vlease_use_now(r->vol, &r->writer_epoch))
		req_start(r);
	else
		vlease_acquire(r->vol, write_leased, r); /* via the loop */
	prefetch_observe(p->prefetch, r->vol, r->off, r->len, false);
}

/* Validate and split [off, off+len) into per-segment parts, then send:
 * reads at once, writes after a loop turn (write_begin()).  ro: reads
 * only. */
static void io_submit(struct proxy_volume *vol, enum io_op op, uint64_t off,
		      uint64_t len, void *rbuf, const void *wbuf, bool fua,
		      const struct proxy_read_opts *ro, const char *request_id,
		      proxy_io_cb cb, void *arg)
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
	if (ro != NULL && !proxy_read_opts_check(ro, msg, sizeof(msg))) {
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
	if (ro != NULL)
		r->ro = *ro;
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
	if (op != IO_READ) {
		defer_call(p->defer, write_begin, r);
		return;
	}
	/* The read's own calls first, the prediction of what comes next
	 * after them: it is not on this read's path. */
	req_start(r);
	prefetch_observe(p->prefetch, vol, off, len, true);
}

bool proxy_read_opts_check(const struct proxy_read_opts *o, char *errmsg,
			   size_t len)
{
	return route_check(o->consistency, o->max_staleness_ms, o->min_version,
			   errmsg, len);
}

void proxy_io_read(struct proxy_volume *vol, uint64_t off, uint64_t len,
		   void *buf, proxy_io_cb cb, void *arg)
{
	const struct proxy_args *a = proxy_volume_proxy(vol)->args;
	struct proxy_read_opts o = {ROUTE_STRONG, 0, 0};

	if (a != NULL) {
		o.consistency = a->nbd_consistency;
		o.max_staleness_ms = a->nbd_staleness_ms;
	}
	io_submit(vol, IO_READ, off, len, buf, NULL, false, &o, NULL, cb, arg);
}

void proxy_io_read_opts(struct proxy_volume *vol, uint64_t off, uint64_t len,
			void *buf, const struct proxy_read_opts *o,
			proxy_io_cb cb, void *arg)
{
	static const struct proxy_read_opts strong = {ROUTE_STRONG, 0, 0};

	io_submit(vol, IO_READ, off, len, buf, NULL, false,
		  o != NULL ? o : &strong, NULL, cb, arg);
}

void proxy_io_write(struct proxy_volume *vol, uint64_t off, uint64_t len,
		    const void *buf, bool fua, const char *request_id,
		    proxy_io_cb cb, void *arg)
{
	io_submit(vol, IO_WRITE, off, len, NULL, buf, fua, NULL, request_id, cb,
		  arg);
}

void proxy_io_zero(struct proxy_volume *vol, uint64_t off, uint64_t len,
		   bool fua, const char *request_id, proxy_io_cb cb, void *arg)
{
	io_submit(vol, IO_ZERO, off, len, NULL, NULL, fua, NULL, request_id, cb,
		  arg);
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
	io_read_metrics_init(e);
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
