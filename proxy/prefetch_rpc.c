/* prefetch_rpc.c: VolumeService.PrefetchData, SetPrefetchHint and
 * GetPrefetchStats on the proxy (prefetch.h; docs/prediction.md "Online
 * engine in the proxy").
 *
 * Each call opens the volume (the I/O engine's cache), checks its ranges
 * against the volume's size, then:
 *   - PrefetchData, WILLNEED: pulls the ranges' blocks not cached yet into
 *     the region's cache entries now (outside the predicted-prefetch
 *     budget and threshold) and answers when every pull ended:
 *     bytes_scheduled = bytes of the blocks pulled (those already cached
 *     are not counted); a pull that fails fails the call with its status;
 *   - DONTNEED: drops the ranges' whole blocks from the cache (DropCopy);
 *   - NORMAL, SEQUENTIAL, RANDOM: set the volume's mode;
 *   - GetPrefetchStats: the volume's figures, one PredictorStats per
 *     source plus "adaptive" (every predicted prefetch).
 *
 * Failure: INVALID_ARGUMENT for a range beyond the volume or ranges larger
 * than the cache (--prefetch-cache), NOT_FOUND for an unknown volume,
 * FAILED_PRECONDITION when prefetching is off or no node of the region
 * can hold cache entries or a node answers Pull UNIMPLEMENTED,
 * UNAVAILABLE (or the node's code) when a pull fails. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "prefetch.h"
#include "prefetch_core.h"
#include "proxy.h"

enum pr_op { PR_DATA, PR_HINT, PR_STATS };

struct pr_req {
	struct proxy *p;
	struct rpc_call *call;
	enum pr_op op;
	enum pf_hint hint;
	Ombra__V1__ByteRange **ranges; /* the request's (owned by the call) */
	size_t n_ranges;
	const char *volume;
	struct proxy_volume *vol;
	/* PrefetchData / WILLNEED: pulls still running, bytes pulled, the
	 * first failure. */
	unsigned pending;
	bool planned;
	uint64_t bytes;
	grpc_status_code code;
	char message[OMBRA_ERRMSG_LEN];
};

static void pr_free(struct pr_req *q)
{
	if (q->vol != NULL)
		proxy_volume_release(q->vol);
	free(q);
}

static void pr_answer_data(struct pr_req *q)
{
	if (q->code != GRPC_STATUS_OK) {
		rpc_call_fail(q->call, q->code, "%s", q->message);
	} else if (q->op == PR_DATA) {
		Ombra__V1__PrefetchDataResponse r =
		    OMBRA__V1__PREFETCH_DATA_RESPONSE__INIT;

		r.bytes_scheduled = q->bytes;
		rpc_call_reply(q->call, &r.base);
	} else {
		Ombra__V1__SetPrefetchHintResponse r =
		    OMBRA__V1__SET_PREFETCH_HINT_RESPONSE__INIT;

		rpc_call_reply(q->call, &r.base);
	}
	pr_free(q);
}

void prefetch_rpc_pull_done(void *waiter, const struct rpc_status *st,
			    uint64_t bytes, const char *node)
{
	struct pr_req *q = waiter;

	q->pending--;
	if (st->code == GRPC_STATUS_OK) {
		q->bytes += bytes;
	} else if (q->code == GRPC_STATUS_OK) {
		/* A node that cannot pull at all (no Pull) is a fact about
		 * the region, not about the request: a precondition. */
		if (st->code == GRPC_STATUS_CANCELLED)
			q->code = GRPC_STATUS_UNAVAILABLE;
		else if (st->code == GRPC_STATUS_UNIMPLEMENTED)
			q->code = GRPC_STATUS_FAILED_PRECONDITION;
		else
			q->code = st->code;
		snprintf(q->message, sizeof(q->message),
			 "prefetch pull of %" PRIu64
			 " bytes on node %.100s failed: %s: %.300s",
			 bytes, node, rpc_status_name(st->code), st->message);
	}
	if (q->pending == 0 && q->planned)
		pr_answer_data(q);
}

/* Every range inside the volume, and their sum within the cache. */
static bool pr_ranges_ok(struct pr_req *q, uint64_t *total)
{
	uint64_t size = proxy_volume_size(q->vol);

	*total = 0;
	for (size_t i = 0; i < q->n_ranges; i++) {
		uint64_t off = q->ranges[i]->offset_bytes;
		uint64_t len = q->ranges[i]->length_bytes;

		if (off > size || len > size - off) {
			rpc_call_fail(q->call, GRPC_STATUS_INVALID_ARGUMENT,
				      "range %zu: offset %" PRIu64
				      " + length %" PRIu64
				      " beyond volume size %" PRIu64,
				      i, off, len, size);
			return false;
		}
		*total += len;
	}
	if (q->op != PR_STATS && q->hint != PF_HINT_DONTNEED &&
	    *total > prefetch_cache_bytes(q->p->prefetch)) {
		rpc_call_fail(q->call, GRPC_STATUS_INVALID_ARGUMENT,
			      "ranges total %" PRIu64
			      " bytes, more than the prefetch cache of "
			      "%" PRIu64 " bytes (--prefetch-cache)",
			      *total, prefetch_cache_bytes(q->p->prefetch));
		return false;
	}
	return true;
}

static void pr_pull(struct pr_req *q, const struct pf_volinfo *vi)
{
	struct pf_core *core = prefetch_core(q->p->prefetch);

	for (size_t i = 0; i < q->n_ranges; i++) {
		const char *why;

		if (pf_core_request(core, vi, q->ranges[i]->offset_bytes,
				    q->ranges[i]->length_bytes, q, &q->pending,
				    NULL, &why) != 0) {
			q->code = GRPC_STATUS_FAILED_PRECONDITION;
			snprintf(
			    q->message, sizeof(q->message),
			    "range %zu of volume %.100s: %s (region %.60s)", i,
			    q->volume, why, q->p->region);
			break;
		}
	}
	/* The pulls started before a failure still answer through
	 * prefetch_rpc_pull_done(). */
	q->planned = true;
	if (q->pending == 0)
		pr_answer_data(q);
}

static void pr_stats(struct pr_req *q, const struct pf_volinfo *vi)
{
	Ombra__V1__GetPrefetchStatsResponse r =
	    OMBRA__V1__GET_PREFETCH_STATS_RESPONSE__INIT;
	Ombra__V1__PredictorStats ps[PF_NSRC + 1], *pp[PF_NSRC + 1];
	struct pf_stats all;
	struct pf_volume_stats st;
	size_t k = 0;

	pf_core_volume_stats(prefetch_core(q->p->prefetch), vi->id, &st);
	memset(&all, 0, sizeof(all));
	for (unsigned s = 0; s <= PF_NSRC; s++) {
		const struct pf_stats *x = s < PF_NSRC ? &st.src[s] : &all;
		Ombra__V1__PredictorStats *o = &ps[k];

		if (s < PF_NSRC && s != PF_SRC_REQUEST) {
			all.predicted += x->predicted;
			all.prefetched += x->prefetched;
			all.used += x->used;
			all.wasted += x->wasted;
			all.hits += x->hits;
		}
		if (s < PF_NSRC && s != PF_SRC_REQUEST && x->predicted == 0 &&
		    x->prefetched == 0)
			continue; /* a predictor that never issued anything */
		ombra__v1__predictor_stats__init(o);
		o->name = (char *)(s < PF_NSRC ? pf_src_name((enum pf_src)s)
					       : "adaptive");
		o->predictions = x->predicted;
		o->prefetched_bytes = x->prefetched * PF_BLOCK;
		o->used_bytes = x->used * PF_BLOCK;
		o->wasted_bytes = x->wasted * PF_BLOCK;
		o->precision = pf_stats_precision(x);
		o->coverage = pf_stats_coverage(x, st.read_blocks);
		pp[k] = o;
		k++;
	}
	r.volume = (char *)proxy_volume_name(q->vol);
	r.hint = (Ombra__V1__PrefetchHint)st.hint;
	r.threshold = st.threshold;
	r.reads = st.read_blocks;
	r.cache_hits = st.block_hits;
	r.pulls_in_flight =
	    pf_core_volume_inflight(prefetch_core(q->p->prefetch), vi->id);
	r.read_requests = st.reads;
	r.read_hits = st.read_hits;
	r.hit_ratio = st.reads ? (double)st.read_hits / (double)st.reads : 0.0;
	r.block_hit_ratio = st.read_blocks
				? (double)st.block_hits / (double)st.read_blocks
				: 0.0;
	r.cache_bytes = st.cached_blocks * PF_BLOCK;
	r.predictors = pp;
	r.n_predictors = k;
	r.active_predictor = (char *)st.active;
	rpc_call_reply(q->call, &r.base);
	pr_free(q);
}

static void pr_run(struct pr_req *q)
{
	struct pf_core *core = prefetch_core(q->p->prefetch);
	struct pf_volinfo vi;
	uint64_t total;

	prefetch_volinfo(q->vol, &vi);
	if (!pr_ranges_ok(q, &total)) {
		pr_free(q);
		return;
	}
	if (q->op == PR_STATS) {
		pr_stats(q, &vi);
		return;
	}
	if (q->op == PR_DATA || q->hint == PF_HINT_WILLNEED) {
		pr_pull(q, &vi);
		return;
	}
	if (q->hint == PF_HINT_DONTNEED) {
		for (size_t i = 0; i < q->n_ranges; i++)
			pf_core_dontneed(core, &vi, q->ranges[i]->offset_bytes,
					 q->ranges[i]->length_bytes);
	} else {
		pf_core_set_hint(core, vi.id, q->hint);
	}
	pr_answer_data(q);
}

static void pr_opened(void *arg, const struct proxy_status *st,
		      struct proxy_volume *vol)
{
	struct pr_req *q = arg;

	if (st->code != GRPC_STATUS_OK) {
		rpc_call_fail(q->call, st->code, "%s", st->message);
		pr_free(q);
		return;
	}
	q->vol = vol;
	if (q->p->stopping || q->p->prefetch == NULL) {
		rpc_call_fail(q->call, GRPC_STATUS_UNAVAILABLE,
			      "proxy shutting down");
		pr_free(q);
		return;
	}
	pr_run(q);
}

static void pr_start(struct proxy *p, struct rpc_call *call, enum pr_op op,
		     const char *volume, enum pf_hint hint,
		     Ombra__V1__ByteRange **ranges, size_t n_ranges)
{
	struct pr_req *q;

	if (p->prefetch == NULL) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			      "prefetching is off on this proxy (started with "
			      "--prefetch off)");
		return;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	q->p = p;
	q->call = call;
	q->op = op;
	q->hint = hint;
	q->volume = volume;
	q->ranges = ranges;
	q->n_ranges = n_ranges;
	q->code = GRPC_STATUS_OK;
	proxy_volume_open(p, volume, pr_opened, q);
}

void prefetch_rpc_data(struct proxy *p, struct rpc_call *call,
		       const Ombra__V1__PrefetchDataRequest *r)
{
	pr_start(p, call, PR_DATA, r->volume, PF_HINT_WILLNEED, r->ranges,
		 r->n_ranges);
}

void prefetch_rpc_hint(struct proxy *p, struct rpc_call *call,
		       const Ombra__V1__SetPrefetchHintRequest *r)
{
	pr_start(p, call, PR_HINT, r->volume, (enum pf_hint)r->hint, r->ranges,
		 r->n_ranges);
}

void prefetch_rpc_stats(struct proxy *p, struct rpc_call *call,
			const Ombra__V1__GetPrefetchStatsRequest *r)
{
	if (r->volume == NULL || r->volume[0] == '\0') {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume name is required");
		return;
	}
	pr_start(p, call, PR_STATS, r->volume, PF_HINT_NORMAL, NULL, 0);
}
