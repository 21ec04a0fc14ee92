/* access.c: the periodic report of this proxy's per-segment access counts
 * (access_table.c) to metad (access.h).
 *
 * The report runs in the thread pool (mdc_run: MetaService.
 * ReportAccessStats through a leader-following cluster client); one report
 * at a time; the interval comes from the last answer.  Failure: see
 * access.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "log.h"
#include "meta.pb-c.h"
#include "proxy.h"

#define ACCESS_DEFAULT_INTERVAL_MS 2000u
#define ACCESS_MIN_INTERVAL_MS 100u
#define ACCESS_MAX_INTERVAL_MS 600000u
#define ACCESS_TIMEOUT_MS 5000

/* ------------------------------------------------------------ reporter */

struct access_stats {
	struct proxy *p;
	struct access_table *t;
	char identity[256];
	uv_timer_t timer;
	bool stopped, destroyed, busy, timer_open;
	uint64_t interval_ms, last_ms;
};

struct access_job {
	struct access_stats *a;
	Ombra__V1__AccessStatsRequest req;
	Ombra__V1__SegmentAccess *segs, **ptrs;
	struct rpc_status st;
	uint64_t interval_ms; /* answer, 0 = none */
};

static void access_free(struct access_stats *a)
{
	access_table_destroy(a->t);
	free(a);
}

static void report_work(void *arg, struct rpc_cluster *cl)
{
	struct access_job *j = arg;
	ProtobufCMessage *resp = NULL;

	if (cl == NULL)
		return;
	if (rpc_cluster_unary(cl, &ombra__v1__meta_service__descriptor,
			      "ReportAccessStats", &j->req.base, &resp,
			      ACCESS_TIMEOUT_MS, &j->st) != 0)
		return;
	j->interval_ms =
	    ((const Ombra__V1__AccessStatsResponse *)resp)->report_interval_ms;
	protobuf_c_message_free_unpacked(resp, NULL);
}

static void timer_set(struct access_stats *a);

static void report_done(void *arg)
{
	struct access_job *j = arg;
	struct access_stats *a = j->a;

	a->busy = false;
	if (j->st.code != GRPC_STATUS_OK)
		log_debug("access statistics to metad: %s: %s",
			  rpc_status_name(j->st.code), j->st.message);
	else if (j->interval_ms != 0)
		a->interval_ms = j->interval_ms < ACCESS_MIN_INTERVAL_MS
				     ? ACCESS_MIN_INTERVAL_MS
				 : j->interval_ms > ACCESS_MAX_INTERVAL_MS
				     ? ACCESS_MAX_INTERVAL_MS
				     : j->interval_ms;
	free(j->segs);
	free(j->ptrs);
	free(j);
	if (a->destroyed) {
		if (!a->timer_open)
			access_free(a);
		return;
	}
	timer_set(a);
}

static void on_report(uv_timer_t *t)
{
	struct access_stats *a = t->data;
	const struct access_seg *e;
	struct access_job *j;
	uint64_t now = proxy_now_ms();
	size_t n;

	if (a->stopped || a->busy)
		return;
	e = access_table_take(a->t, &n);
	j = calloc(1, sizeof(*j));
	if (j != NULL && n > 0) {
		j->segs = calloc(n, sizeof(*j->segs));
		j->ptrs = calloc(n, sizeof(*j->ptrs));
	}
	if (j == NULL || (n > 0 && (j->segs == NULL || j->ptrs == NULL))) {
		if (j != NULL) {
			free(j->segs);
			free(j->ptrs);
		}
		free(j);
		timer_set(a);
		return;
	}
	ombra__v1__access_stats_request__init(&j->req);
	for (size_t i = 0; i < n; i++) {
		ombra__v1__segment_access__init(&j->segs[i]);
		j->segs[i].volume_id = e[i].volume_id;
		j->segs[i].segment_index = e[i].seg;
		j->segs[i].reads = e[i].reads;
		j->segs[i].writes = e[i].writes;
		j->segs[i].read_bytes = e[i].read_bytes;
		j->ptrs[i] = &j->segs[i];
	}
	j->a = a;
	j->req.region = (char *)a->p->region;
	j->req.proxy = a->identity;
	j->req.interval_ms = now - a->last_ms;
	j->req.segments = j->ptrs;
	j->req.n_segments = n;
	a->last_ms = now;
	a->busy = true;
	mdc_run(a->p->mdc, report_work, report_done, j);
}

static void timer_set(struct access_stats *a)
{
	if (!a->stopped)
		uv_timer_start(&a->timer, on_report, a->interval_ms, 0);
}

int access_create(struct proxy *p, const char *listen, size_t max_segments,
		  struct access_stats **out, char *errmsg)
{
	struct access_stats *a = calloc(1, sizeof(*a));

	if (a == NULL || (a->t = access_table_create(max_segments)) == NULL) {
		free(a);
		ombra_errmsg_printf(errmsg, "access statistics: out of memory "
					    "(or --access-max-segments out of "
					    "range)");
		return OMBRA_ENOMEM;
	}
	a->p = p;
	snprintf(a->identity, sizeof(a->identity), "%s/%s", p->region, listen);
	a->interval_ms = ACCESS_DEFAULT_INTERVAL_MS;
	a->last_ms = proxy_now_ms();
	uv_timer_init(p->loop, &a->timer);
	a->timer.data = a;
	a->timer_open = true;
	timer_set(a);
	*out = a;
	return 0;
}

void access_note(struct access_stats *a, uint64_t volume_id, uint64_t seg,
		 bool write, uint64_t bytes)
{
	if (a != NULL && !a->stopped)
		access_table_note(a->t, volume_id, seg, write, bytes);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct access_stats *a = h->data;

	a->timer_open = false;
	if (a->destroyed && !a->busy)
		access_free(a);
}

void access_stop(struct access_stats *a)
{
	if (a == NULL || a->stopped)
		return;
	a->stopped = true;
	uv_timer_stop(&a->timer);
	uv_close((uv_handle_t *)&a->timer, on_timer_closed);
}

void access_destroy(struct access_stats *a)
{
	if (a == NULL)
		return;
	access_stop(a);
	a->destroyed = true;
	if (!a->timer_open && !a->busy)
		access_free(a);
}
