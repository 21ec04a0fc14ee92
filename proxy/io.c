/* io.c: the proxy's block I/O engine (proxy_io.h).
 *
 * A request is split at segment boundaries into parts; each part is one
 * StoreService call (Read/Write) on one node, sent with rpc_channel_* on
 * the loop.  Reads are widened to whole 4 KiB blocks and go to the copies
 * route_plan() allows for their consistency (route.h: home copies, shadows,
 * the prefetch cache holder), the lowest expected latency first; a foreign
 * copy is asked with foreign_ok and its bound, and an answer whose
 * watermark is below the asked min_version is treated as stale.  Writes
 * and zeroes go to the segment's primary with its lease epoch, the
 * volume's writer epoch (vlease.h, taken before the first part is sent)
 * and a request id "<client id>/<segment>" that is reused on every retry,
 * so a retried write is applied once.  Write answers and reads at the
 * primary teach segver.h the segments' latest versions.  Flush sends
 * StoreService.Flush to every distinct primary of the volume.
 *
 * A read call that has another copy to go to has the failover deadline
 * of its node (nodes_failover_ms(): about 4 p99s, docs/proxy.md "Read
 * failover") instead of IO_CALL_MS.
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
#include "log.h"
#include "metrics.h"
#include "pcache.h"
#include "prefetch.h"
#include "propagate.h"
#include "proxy.h"
#include "route.h"
#include "store.pb-c.h"
#include "vlease.h"
#include "wflight.h"
#include "wtrack.h"

#define IO_BLOCK 4096u
#define IO_BUDGET_MS 15000u
#define IO_CALL_MS 5000
#define IO_BACKOFF_MIN_MS 50u
#define IO_BACKOFF_MAX_MS 1000u
#define IO_MAX_COPIES 8

enum io_op { IO_READ, IO_WRITE, IO_ZERO, IO_FLUSH };

/* Why a foreign copy did not serve a read part (refused_count). */
enum refused_why {
	REF_BEHIND,	 /* watermark below the version asked */
	REF_NOT_PRESENT, /* some block not held */
	REF_STALE,	 /* not confirmed recently enough, no read lease */
	REF_UNREACHABLE, /* transport failure */
	REF_OTHER,
	REF_N
};
static const char *const refused_why_names[REF_N] = {
    "behind", "not_present", "stale", "unreachable", "other"};

/* Why a read part went to a remote home copy first (plan_remote_count). */
enum remote_why {
	WHY_NO_WRITER_LEASE, /* STRONG, this proxy holds no writer lease */
	WHY_VERSION_UNKNOWN, /* STRONG, the writer does not know the version */
	WHY_WRITE_IN_FLIGHT, /* STRONG, the writer writes these blocks now */
	WHY_NO_FOREIGN_COPY, /* no shadow or cache entry of the segment */
	WHY_COST,	     /* foreign copies exist but cost more */
	WHY_N
};
static const char *const remote_why_names[WHY_N] = {
    "no_writer_lease", "version_unknown", "write_in_flight", "no_foreign_copy",
    "cost"};

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
};

struct io_engine {
	struct proxy *p;
	uv_timer_t timer;
	struct io_part *retry; /* parts waiting for their due time */
	bool stopped;
	/* Read parts served, [local?][kind]; foreign copies that refused. */
	struct metric *served[2][ROUTE_KINDS];
	struct metric *foreign_refused[REF_N];
	struct metric *prop_waits; /* part_wait_propagation() parks */
	struct metric *remote_plans[WHY_N];
	struct wflight wflight; /* write parts in flight (wflight.h) */
};

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
		due->parked = false;
		part_send(due);
		due = next;
	}
}

void io_engine_propagated(void *ctx, uint64_t node, uint64_t volume_id,
			  uint64_t seg)
{
	struct io_engine *e = ctx;
	struct io_part **pp = &e->retry, *woken = NULL;

	while (*pp != NULL) {
		struct io_part *pt = *pp;

		if (pt->parked && pt->node == node && pt->seg == seg &&
		    proxy_volume_id(pt->r->vol) == volume_id) {
			*pp = pt->next_retry;
			pt->next_retry = woken;
			woken = pt;
		} else {
			pp = &pt->next_retry;
		}
	}
	if (woken == NULL)
		return;
	timer_arm(e);
	while (woken != NULL) {
		struct io_part *next = woken->next_retry;

		woken->next_retry = NULL;
		woken->parked = false;
		part_send(woken);
		woken = next;
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
	pt->parked = true;
	pt->due_ms = pt->park_until;
	pt->next_retry = e->retry;
	e->retry = pt;
	timer_arm(e);
	if (e->prop_waits != NULL)
		metric_inc(e->prop_waits, 1);
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

/* Count a foreign copy's refusal of a read part: code and msg are the
 * node's status, or OK and the proxy's own check (behind). */
static void refused_count(struct io_engine *e, grpc_status_code code,
			  const char *msg)
{
	enum refused_why why = REF_OTHER;

	if (code == GRPC_STATUS_OK || strstr(msg, "watermark") != NULL ||
	    strstr(msg, "older than") != NULL)
		why = REF_BEHIND;
	else if (code == GRPC_STATUS_UNAVAILABLE ||
		 code == GRPC_STATUS_DEADLINE_EXCEEDED)
		why = REF_UNREACHABLE;
	else if (strstr(msg, "not present") != NULL)
		why = REF_NOT_PRESENT;
	else if (strstr(msg, "stale copy") != NULL)
		why = REF_STALE;
	if (e->foreign_refused[why] != NULL)
		metric_inc(e->foreign_refused[why], 1);
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

/* The read's current attempt is at a foreign copy (shadow, cache). */
static bool part_foreign(const struct io_part *pt)
{
	return pt->r->op == IO_READ && pt->n_copies > 0 &&
	       pt->tries[pt->next_copy].foreign_ok;
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
	if (part_foreign(pt)) {
		refused_count(pt->r->e, st->code, st->message);
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

/* A foreign answer must prove the bound it was asked for: its watermark
 * (segment_version) at least the min_version (a node that ignores
 * foreign_ok and answers from some other state fails this).  fills
 * pt->last_msg. */
static bool foreign_is_stale(struct io_part *pt,
			     const Ombra__V1__StoreReadResponse *rr)
{
	const struct route_try *t = &pt->tries[pt->next_copy];

	if (!t->foreign_ok || t->min_version == 0 ||
	    rr->segment_version >= t->min_version)
		return false;
	ombra_errmsg_printf(pt->last_msg,
			    "%s copy on node %s answered at version %" PRIu64
			    ", below the %" PRIu64 " asked (stale copy)",
			    route_kind_name(t->kind),
			    nodes_address(pt->r->e->p->nodes, pt->node),
			    rr->segment_version, t->min_version);
	return true;
}

/* Count a served read part by locality and copy kind (/metrics). */
static void read_served(struct io_part *pt)
{
	struct io_engine *e = pt->r->e;
	const struct route_try *t = &pt->tries[pt->next_copy];
	const char *region = nodes_region(e->p->nodes, pt->node);
	int local = e->p->region != NULL && strcmp(region, e->p->region) == 0;

	if (e->served[local][t->kind] != NULL)
		metric_inc(e->served[local][t->kind], 1);
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
	if (read_is_stale(pt, rr, a0) || foreign_is_stale(pt, rr)) {
		pt->last_code = GRPC_STATUS_FAILED_PRECONDITION;
		if (part_foreign(pt))
			refused_count(r->e, GRPC_STATUS_OK, "");
		if (part_foreign(pt) &&
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
	read_served(pt);
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

/* Add n nodes of one kind to the candidates c (at most ROUTE_MAX_CANDS). */
static unsigned cands_add(struct nodes *nodes, const char *region,
			  struct route_cand *c, unsigned k, const uint64_t *ids,
			  unsigned n, enum route_kind kind)
{
	for (unsigned i = 0; i < n && k < ROUTE_MAX_CANDS; i++) {
		c[k].node = ids[i];
		c[k].kind = kind;
		c[k].cost = route_cost(
		    nodes_expected_ms(nodes, ids[i]),
		    strcmp(nodes_region(nodes, ids[i]), region) == 0);
		k++;
	}
	return k;
}

/* A read part planned to a home copy in another region first: count why
 * (ombra_proxy_read_remote_plans_total), so an operator can tell what
 * keeps reads from local copies.  n_foreign: foreign candidates. */
static void plan_remote_count(struct io_engine *e, const struct route_want *w,
			      uint64_t wepoch, bool wrflight,
			      unsigned n_foreign)
{
	enum remote_why why;

	if (w->level == ROUTE_STRONG && wepoch == 0)
		why = WHY_NO_WRITER_LEASE;
	else if (w->level == ROUTE_STRONG && wrflight)
		why = WHY_WRITE_IN_FLIGHT;
	else if (w->level == ROUTE_STRONG && !w->writer_known)
		why = WHY_VERSION_UNKNOWN;
	else if (n_foreign == 0)
		why = WHY_NO_FOREIGN_COPY;
	else
		why = WHY_COST;
	if (e->remote_plans[why] != NULL)
		metric_inc(e->remote_plans[why], 1);
}

/* The read part's attempts for this round (route.h): home copies, and the
 * foreign copies its consistency may use (shadows, the cache holder of
 * the whole block range), by expected latency. */
static unsigned read_plan(struct io_part *pt)
{
	struct io_req *r = pt->r;
	struct proxy *p = r->e->p;
	struct route_cand c[ROUTE_MAX_CANDS];
	struct route_want w = {
	    .level = (enum route_level)r->ro.consistency,
	    .min_version = r->ro.min_version,
	    .max_staleness_ms = r->ro.max_staleness_ms,
	};
	const char *rg = p->region != NULL ? p->region : "";
	uint64_t ids[ROUTE_MAX_CANDS], epoch = 0, wepoch;
	unsigned n, k, n_home;
	bool wrflight = false;

	n = proxy_volume_copies(r->vol, pt->seg, ids, IO_MAX_COPIES, &epoch);
	if (n == 0)
		return 0;
	pt->primary = ids[0];
	k = n_home = cands_add(p->nodes, rg, c, 0, ids, n, ROUTE_HOME);
	wepoch = vlease_valid_epoch(r->vol);
	if (w.level == ROUTE_UNSPECIFIED || w.level == ROUTE_STRONG) {
		w.level = ROUTE_STRONG;
		w.writer_known =
		    segver_known(proxy_volume_segver(r->vol), wepoch, pt->seg,
				 &w.writer_version);
		/* The writer does not know the segment's version yet: the
		 * primary's answer teaches it (segver.h), so ask it first. */
		if (wepoch != 0 && !w.writer_known)
			c[0].cost = 0;
		/* Blocks being written now: only the primary is sure to
		 * answer what other proxies' STRONG reads see (wflight.h). */
		if (w.writer_known && wflight_overlaps(&r->e->wflight, r->vol,
						       pt->off, pt->len)) {
			w.writer_known = false;
			wrflight = true;
		}
	}
	if (w.level != ROUTE_STRONG || w.writer_known) {
		uint64_t s0 = pt->seg * proxy_volume_seg_size(r->vol);
		uint64_t b0 = (pt->off - s0) / IO_BLOCK;
		uint64_t b1 =
		    (pt->off + pt->len - s0 + IO_BLOCK - 1) / IO_BLOCK;

		n = proxy_volume_shadows(r->vol, pt->seg, ids,
					 ROUTE_MAX_CANDS - k);
		k = cands_add(p->nodes, rg, c, k, ids, n, ROUTE_SHADOW);
		if (p->pcache != NULL && b1 <= PCACHE_MAX_BLOCKS) {
			ids[0] = pcache_lookup(
			    p->pcache, proxy_volume_id(r->vol), pt->seg,
			    (uint32_t)b0, (uint32_t)(b1 - b0));
			if (ids[0] != 0)
				k = cands_add(p->nodes, rg, c, k, ids, 1,
					      ROUTE_CACHE);
		}
	}
	n = route_plan(&w, c, k, pt->tries, ROUTE_MAX_CANDS);
	if (n > 0 && pt->tries[0].kind == ROUTE_HOME &&
	    strcmp(nodes_region(p->nodes, pt->tries[0].node), rg) != 0)
		plan_remote_count(r->e, &w, wepoch, wrflight,
				  k > n_home ? k - n_home : 0);
	return n;
}

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
			pt->n_copies = read_plan(pt);
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

/* A STRONG read at a foreign copy asks for the segment's latest version
 * as known now (a write acknowledged since the plan raised it); false
 * (pt->last_msg says why) if the writer lease is no longer valid, the
 * version no longer known, or a write of the read's blocks is in flight
 * (wflight.h). */
static bool strong_foreign_bound(struct io_part *pt)
{
	struct io_req *r = pt->r;
	struct route_try *t = &pt->tries[pt->next_copy];
	uint64_t v;

	if (!t->foreign_ok || (r->ro.consistency != ROUTE_STRONG &&
			       r->ro.consistency != ROUTE_UNSPECIFIED))
		return true;
	if (!segver_known(proxy_volume_segver(r->vol),
			  vlease_valid_epoch(r->vol), pt->seg, &v)) {
		ombra_errmsg_printf(pt->last_msg,
				    "writer lease of volume %s no longer "
				    "valid: STRONG reads go home",
				    proxy_volume_name(r->vol));
		return false;
	}
	if (wflight_overlaps(&r->e->wflight, r->vol, pt->off, pt->len)) {
		ombra_errmsg_printf(pt->last_msg,
				    "a write of these blocks of volume %s is "
				    "in flight: STRONG reads go home",
				    proxy_volume_name(r->vol));
		return false;
	}
	if (v > t->min_version)
		t->min_version = v;
	return true;
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
	if (r->op == IO_READ && !strong_foreign_bound(pt)) {
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
		    pt->next_copy + 1 < pt->n_copies
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
	if (r->op == IO_READ)
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
	/* Through the loop: a part may finish (and free r) at once. */
	for (unsigned i = 0; i < r->n_parts; i++)
		defer_call(r->e->p->defer, part_start, &r->parts[i]);
}

/* Validate and split [off, off+len) into per-segment parts, then send
 * (writes once the volume's writer lease is held).  ro: reads only. */
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
	prefetch_observe(p->prefetch, vol, off, len, op == IO_READ);
	if (op != IO_READ) {
		vlease_acquire(vol, write_leased, r); /* answers via the loop */
		return;
	}
	for (unsigned i = 0; i < r->n_parts; i++)
		defer_call(p->defer, part_start, &r->parts[i]);
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
	if (p->metrics != NULL) {
		char labels[64];

		for (int local = 0; local < 2; local++)
			for (int k = 0; k < ROUTE_KINDS; k++) {
				snprintf(labels, sizeof(labels),
					 "where=\"%s\",copy=\"%s\"",
					 local ? "local" : "remote",
					 route_kind_name((enum route_kind)k));
				e->served[local][k] = metrics_counter(
				    p->metrics, "ombra_proxy_read_parts_total",
				    "Read parts served, by the copy's region "
				    "(local: this proxy's) and kind",
				    labels);
			}
		for (int i = 0; i < REF_N; i++) {
			snprintf(labels, sizeof(labels), "reason=\"%s\"",
				 refused_why_names[i]);
			e->foreign_refused[i] = metrics_counter(
			    p->metrics,
			    "ombra_proxy_read_foreign_refused_total",
			    "Read parts a foreign copy (shadow, cache) could "
			    "not serve, read elsewhere, by reason (behind: "
			    "watermark below the version asked; not_present; "
			    "stale: not confirmed within the bound or no read "
			    "lease; unreachable; other)",
			    labels);
		}
		for (int i = 0; i < WHY_N; i++) {
			snprintf(labels, sizeof(labels), "reason=\"%s\"",
				 remote_why_names[i]);
			e->remote_plans[i] = metrics_counter(
			    p->metrics, "ombra_proxy_read_remote_plans_total",
			    "Read parts sent to a home copy in another region "
			    "first, by reason (no_writer_lease, "
			    "version_unknown: STRONG reads of a non-writer or "
			    "of a segment whose version the writer has not "
			    "learned; no_foreign_copy; cost)",
			    labels);
		}
		e->prop_waits = metrics_counter(
		    p->metrics, "ombra_proxy_read_propagation_waits_total",
		    "Read parts that waited for this proxy's propagation to "
		    "bring a foreign copy to the version they need",
		    NULL);
	}
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
