/* vlease.c: the volume writer lease of single-writer volumes (vlease.h):
 * acquire, renew, release through MetaService.VolumeLease in the thread
 * pool, and a 100 ms timer that renews every duration/3, notices expiry
 * and releases idle leases.
 *
 * The manager keeps the volumes whose lease is not NONE (or that have
 * waiters) in a list and holds one reference on each; each metad job
 * holds one more until its answer is applied on the loop.
 *
 * Validity: the answer's duration counts from when the request was sent;
 * the job stamps the send time (proxy_now_ms, monotonic) in the thread
 * just before the call, which is never later than the real send, so the
 * proxy's idea of the expiry is never later than metad's.
 *
 * Failure: see vlease.h; a refused renewal or an expiry logs a warning
 * with the reason and counts ombra_proxy_writer_leases_lost_total. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "meta.pb-c.h"
#include "metrics.h"
#include "proxy.h"
#include "vlease.h"

#define VLEASE_TICK_MS 100
#define VLEASE_ACQUIRE_TIMEOUT_MS 5000
#define VLEASE_RELEASE_TIMEOUT_MS 2000

struct vlease_waiter {
	vlease_cb cb;
	void *arg;
	struct vlease_waiter *next;
};

struct vlease_mgr {
	struct proxy *p;
	uv_timer_t timer;
	bool enabled, stopped;
	uint64_t duration_ms, idle_ms;
	char holder[160];
	struct proxy_volume *active; /* list through vlease.next_active */
	struct metric *held_gauge, *lost_total, *grants_total;
};

enum job_kind { JOB_ACQUIRE, JOB_RENEW, JOB_RELEASE };

struct vl_job {
	struct vlease_mgr *m;
	struct proxy_volume *vol; /* a reference */
	enum job_kind kind;
	Ombra__V1__VolumeLeaseRequest req;
	char reqid[48];
	char *name;
	uint64_t sent_ms;
	struct rpc_status st;
	uint64_t epoch, duration_ms; /* the answer */
};

static struct vlease_mgr *mgr_of(struct proxy_volume *vol)
{
	return proxy_volume_proxy(vol)->vlease;
}

struct segver *proxy_volume_segver(struct proxy_volume *vol)
{
	return &proxy_volume_vlease(vol)->sv;
}

bool vlease_enabled(const struct vlease_mgr *m)
{
	return m != NULL && m->enabled;
}

static void update_gauge(struct vlease_mgr *m)
{
	unsigned held = 0;

	for (struct proxy_volume *v = m->active; v != NULL;
	     v = proxy_volume_vlease(v)->next_active)
		held += proxy_volume_vlease(v)->state == VLEASE_HELD;
	if (m->held_gauge != NULL)
		metric_set(m->held_gauge, held);
}

/* Put vol in the active list (one reference) if it is not there. */
static void activate(struct vlease_mgr *m, struct proxy_volume *vol)
{
	struct vlease *vl = proxy_volume_vlease(vol);

	if (vl->active)
		return;
	vl->active = true;
	vl->next_active = m->active;
	m->active = proxy_volume_ref(vol);
}

/* Take vol out of the active list and drop its reference. */
static void deactivate(struct vlease_mgr *m, struct proxy_volume *vol)
{
	struct proxy_volume **pp = &m->active;
	struct vlease *vl = proxy_volume_vlease(vol);

	if (!vl->active)
		return;
	while (*pp != NULL && *pp != vol)
		pp = &proxy_volume_vlease(*pp)->next_active;
	if (*pp == vol)
		*pp = vl->next_active;
	vl->next_active = NULL;
	vl->active = false;
	proxy_volume_release(vol);
}

/* ------------------------------------------------------------ metad */

static void job_work(void *arg, struct rpc_cluster *cl)
{
	struct vl_job *j = arg;
	ProtobufCMessage *resp = NULL;
	int timeout = j->kind == JOB_RELEASE ? VLEASE_RELEASE_TIMEOUT_MS
		      : j->kind == JOB_RENEW ? (int)(j->m->duration_ms / 3)
					     : VLEASE_ACQUIRE_TIMEOUT_MS;

	if (cl == NULL) {
		if (j->st.code == GRPC_STATUS_OK) {
			j->st.code = GRPC_STATUS_UNAVAILABLE;
			snprintf(j->st.message, sizeof(j->st.message),
				 "no metad client");
		}
		return;
	}
	j->sent_ms = proxy_now_ms();
	if (rpc_cluster_unary(cl, &ombra__v1__meta_service__descriptor,
			      "VolumeLease", &j->req.base, &resp, timeout,
			      &j->st) != 0)
		return;
	j->epoch = ((Ombra__V1__VolumeLeaseResponse *)resp)->epoch;
	j->duration_ms = ((Ombra__V1__VolumeLeaseResponse *)resp)->duration_ms;
	protobuf_c_message_free_unpacked(resp, NULL);
}

static void job_done(void *arg);

static void job_start(struct vlease_mgr *m, struct proxy_volume *vol,
		      enum job_kind kind, uint64_t epoch)
{
	struct vl_job *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->name = strdup(proxy_volume_name(vol))) == NULL) {
		log_error("writer lease: out of memory");
		abort();
	}
	j->m = m;
	j->vol = proxy_volume_ref(vol);
	j->kind = kind;
	ombra__v1__volume_lease_request__init(&j->req);
	rpc_request_id(j->reqid, sizeof(j->reqid));
	j->req.volume = j->name;
	j->req.holder = m->holder;
	j->req.duration_ms = m->duration_ms;
	j->req.epoch = epoch;
	j->req.release = kind == JOB_RELEASE;
	j->req.request_id = j->reqid;
	mdc_run(m->p->mdc, job_work, job_done, j);
}

static void waiters_answer(struct vlease *vl, const struct proxy_status *st,
			   uint64_t epoch)
{
	struct vlease_waiter *w = vl->waiters;

	vl->waiters = NULL;
	while (w != NULL) {
		struct vlease_waiter *next = w->next;

		w->cb(w->arg, st, epoch);
		free(w);
		w = next;
	}
}

/* The lease stopped being valid: writes fail, STRONG reads go home. */
static void lease_lost(struct vlease_mgr *m, struct proxy_volume *vol,
		       grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void lease_lost(struct vlease_mgr *m, struct proxy_volume *vol,
		       grpc_status_code code, const char *fmt, ...)
{
	struct vlease *vl = proxy_volume_vlease(vol);
	va_list ap;

	if (vl->state != VLEASE_HELD)
		return;
	vl->state = VLEASE_LOST;
	vl->lost_code = code;
	va_start(ap, fmt);
	vsnprintf(vl->lost_msg, sizeof(vl->lost_msg), fmt, ap);
	va_end(ap);
	segver_reset(&vl->sv, 0);
	log_warn("%s", vl->lost_msg);
	if (m->lost_total != NULL)
		metric_inc(m->lost_total, 1);
	update_gauge(m);
}

/* Not renewed within one duration (metad unreachable, or the proxy did
 * not run): lost. */
static void lease_expired(struct vlease_mgr *m, struct proxy_volume *vol)
{
	lease_lost(m, vol, GRPC_STATUS_UNAVAILABLE,
		   "writer lease of volume %s expired: not renewed for %" PRIu64
		   " ms (metad unreachable?)",
		   proxy_volume_name(vol),
		   proxy_volume_vlease(vol)->duration_ms);
}

static void acquire_done(struct vl_job *j)
{
	struct vlease_mgr *m = j->m;
	struct vlease *vl = proxy_volume_vlease(j->vol);
	struct proxy_status st;

	if (j->st.code == GRPC_STATUS_OK && m->stopped) {
		/* Granted while shutting down: give it back. */
		job_start(m, j->vol, JOB_RELEASE, j->epoch);
		vl->state = VLEASE_NONE;
		proxy_status_set(&st, GRPC_STATUS_UNAVAILABLE,
				 "proxy shutting down");
		waiters_answer(vl, &st, 0);
		return;
	}
	if (j->st.code != GRPC_STATUS_OK) {
		vl->state = VLEASE_NONE;
		proxy_status_set(
		    &st,
		    j->st.code == GRPC_STATUS_FAILED_PRECONDITION
			? GRPC_STATUS_FAILED_PRECONDITION
			: GRPC_STATUS_UNAVAILABLE,
		    "writer lease of volume %s not granted: %s: %s", j->name,
		    rpc_status_name(j->st.code), j->st.message);
		waiters_answer(vl, &st, 0);
		return;
	}
	vl->state = VLEASE_HELD;
	vl->epoch = j->epoch;
	vl->duration_ms = j->duration_ms ? j->duration_ms : m->duration_ms;
	vl->valid_until_ms = j->sent_ms + vl->duration_ms;
	vl->renew_at_ms = j->sent_ms + vl->duration_ms / 3;
	vl->last_use_ms = proxy_now_ms();
	vl->renewing = false;
	segver_reset(&vl->sv, j->epoch);
	log_info("writer lease of volume %s held (epoch %" PRIu64 ", %" PRIu64
		 " ms)",
		 j->name, j->epoch, vl->duration_ms);
	if (m->grants_total != NULL)
		metric_inc(m->grants_total, 1);
	update_gauge(m);
	proxy_status_ok(&st);
	waiters_answer(vl, &st, j->epoch);
}

static void renew_done(struct vl_job *j)
{
	struct vlease_mgr *m = j->m;
	struct vlease *vl = proxy_volume_vlease(j->vol);

	vl->renewing = false;
	if (vl->state != VLEASE_HELD || vl->epoch != j->req.epoch)
		return; /* lost or released meanwhile */
	if (j->st.code == GRPC_STATUS_OK && j->epoch == vl->epoch) {
		uint64_t d = j->duration_ms ? j->duration_ms : vl->duration_ms;

		if (j->sent_ms + d > vl->valid_until_ms)
			vl->valid_until_ms = j->sent_ms + d;
		vl->renew_at_ms = j->sent_ms + d / 3;
		return;
	}
	if (j->st.code == GRPC_STATUS_FAILED_PRECONDITION ||
	    j->st.code == GRPC_STATUS_OK) {
		lease_lost(m, j->vol, GRPC_STATUS_FAILED_PRECONDITION,
			   "writer lease of volume %s lost: renewal refused: "
			   "%s",
			   j->name,
			   j->st.code == GRPC_STATUS_OK ? "another epoch"
							: j->st.message);
		return;
	}
	/* metad unreachable: try again at the next tick until expiry. */
	log_debug("renewal of the writer lease of %s: %s: %s", j->name,
		  rpc_status_name(j->st.code), j->st.message);
	vl->renew_at_ms = proxy_now_ms() + VLEASE_TICK_MS;
}

static void job_done(void *arg)
{
	struct vl_job *j = arg;

	switch (j->kind) {
	case JOB_ACQUIRE:
		acquire_done(j);
		break;
	case JOB_RENEW:
		renew_done(j);
		break;
	case JOB_RELEASE:
		if (j->st.code != GRPC_STATUS_OK)
			log_warn("release of the writer lease of volume %s: "
				 "%s: %s (it expires by itself)",
				 j->name, rpc_status_name(j->st.code),
				 j->st.message);
		break;
	}
	proxy_volume_release(j->vol);
	free(j->name);
	free(j);
}

/* ------------------------------------------------------------ timer */

static void release_now(struct vlease_mgr *m, struct proxy_volume *vol)
{
	struct vlease *vl = proxy_volume_vlease(vol);

	if (vl->state != VLEASE_HELD && vl->state != VLEASE_LOST)
		return;
	if (vl->state == VLEASE_HELD)
		job_start(m, vol, JOB_RELEASE, vl->epoch);
	vl->state = VLEASE_NONE;
	segver_reset(&vl->sv, 0);
	update_gauge(m);
}

static void tick(uv_timer_t *t)
{
	struct vlease_mgr *m = t->data;
	uint64_t now = proxy_now_ms();
	struct proxy_volume *vol, *next;

	for (vol = m->active; vol != NULL; vol = next) {
		struct vlease *vl = proxy_volume_vlease(vol);

		next = vl->next_active;
		if (vl->state == VLEASE_HELD && now >= vl->valid_until_ms) {
			lease_expired(m, vol);
		} else if (vl->state == VLEASE_HELD && vl->pins == 0 &&
			   now - vl->last_use_ms >= m->idle_ms) {
			log_info("writer lease of volume %s released (idle)",
				 proxy_volume_name(vol));
			release_now(m, vol);
		} else if (vl->state == VLEASE_HELD && !vl->renewing &&
			   now >= vl->renew_at_ms) {
			vl->renewing = true;
			job_start(m, vol, JOB_RENEW, vl->epoch);
		}
		if ((vl->state == VLEASE_NONE || vl->state == VLEASE_LOST) &&
		    vl->pins == 0 && vl->waiters == NULL &&
		    now - vl->last_use_ms >= m->idle_ms) {
			vl->state = VLEASE_NONE;
			deactivate(m, vol);
		}
	}
}

/* ------------------------------------------------------------ public */

struct vl_now {
	vlease_cb cb;
	void *arg;
	struct proxy_status st;
	uint64_t epoch;
};

static void now_run(void *arg)
{
	struct vl_now *x = arg;

	x->cb(x->arg, &x->st, x->epoch);
	free(x);
}

/* Answer through the loop (never from inside the caller's call). */
static void answer_soon(struct proxy *p, vlease_cb cb, void *arg,
			grpc_status_code code, const char *msg, uint64_t epoch)
{
	struct vl_now *x = calloc(1, sizeof(*x));

	if (x == NULL)
		abort();
	x->cb = cb;
	x->arg = arg;
	x->st.code = code;
	snprintf(x->st.message, sizeof(x->st.message), "%s", msg);
	x->epoch = epoch;
	defer_call(p->defer, now_run, x);
}

void vlease_acquire(struct proxy_volume *vol, vlease_cb cb, void *arg)
{
	struct proxy *p = proxy_volume_proxy(vol);
	struct vlease_mgr *m = mgr_of(vol);
	struct vlease *vl = proxy_volume_vlease(vol);
	struct vlease_waiter *w;
	uint64_t epoch;

	if (vlease_use_now(vol, &epoch)) {
		answer_soon(p, cb, arg, GRPC_STATUS_OK, "", epoch);
		return;
	}
	if (m->stopped) {
		answer_soon(p, cb, arg, GRPC_STATUS_UNAVAILABLE,
			    "proxy shutting down", 0);
		return;
	}
	vl->last_use_ms = proxy_now_ms();
	if (vl->state == VLEASE_HELD) /* ran out before the timer saw it */
		lease_expired(m, vol);
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		abort();
	w->cb = cb;
	w->arg = arg;
	w->next = vl->waiters;
	vl->waiters = w;
	activate(m, vol);
	if (vl->state == VLEASE_ACQUIRING)
		return;
	vl->state = VLEASE_ACQUIRING;
	job_start(m, vol, JOB_ACQUIRE, 0);
}

bool vlease_use_now(struct proxy_volume *vol, uint64_t *epoch)
{
	struct vlease_mgr *m = mgr_of(vol);
	uint64_t ep;

	*epoch = 0;
	if (!vlease_enabled(m))
		return true;
	if (m->stopped || (ep = vlease_valid_epoch(vol)) == 0)
		return false;
	proxy_volume_vlease(vol)->last_use_ms = proxy_now_ms();
	*epoch = ep;
	return true;
}

uint64_t vlease_valid_epoch(struct proxy_volume *vol)
{
	struct vlease *vl = proxy_volume_vlease(vol);

	if (!vlease_enabled(mgr_of(vol)) || vl->state != VLEASE_HELD ||
	    proxy_now_ms() >= vl->valid_until_ms)
		return 0;
	return vl->epoch;
}

void vlease_why(struct proxy_volume *vol, struct proxy_status *st)
{
	struct vlease *vl = proxy_volume_vlease(vol);

	if (vl->state == VLEASE_LOST)
		proxy_status_set(st, vl->lost_code, "%s", vl->lost_msg);
	else if (vl->state == VLEASE_HELD)
		proxy_status_set(st, GRPC_STATUS_UNAVAILABLE,
				 "writer lease of volume %s expired: not "
				 "renewed for %" PRIu64 " ms",
				 proxy_volume_name(vol), vl->duration_ms);
	else
		proxy_status_set(st, GRPC_STATUS_UNAVAILABLE,
				 "writer lease of volume %s is no longer held "
				 "by this proxy",
				 proxy_volume_name(vol));
}

void vlease_fenced(struct proxy_volume *vol, const char *msg)
{
	struct vlease_mgr *m = mgr_of(vol);

	if (!vlease_enabled(m))
		return;
	lease_lost(m, vol, GRPC_STATUS_FAILED_PRECONDITION,
		   "writer lease of volume %s lost: a storage node fenced "
		   "this proxy's writes: %s",
		   proxy_volume_name(vol), msg);
}

void vlease_pin(struct proxy_volume *vol, int delta)
{
	struct vlease *vl = proxy_volume_vlease(vol);

	if (delta < 0 && vl->pins > 0 && --vl->pins == 0)
		vl->last_use_ms = 0; /* the next tick releases it */
	else if (delta > 0)
		vl->pins++;
}

void vlease_volume_free(struct vlease *vl)
{
	/* The manager holds a reference while there are waiters. */
	segver_free(&vl->sv);
}

int vlease_mgr_create(struct proxy *p, bool enabled, uint64_t duration_ms,
		      uint64_t idle_ms, const char *holder,
		      struct vlease_mgr **out, char *errmsg)
{
	struct vlease_mgr *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		ombra_errmsg_printf(errmsg, "writer leases: out of memory");
		return OMBRA_ENOMEM;
	}
	m->p = p;
	m->enabled = enabled;
	m->duration_ms = duration_ms;
	m->idle_ms = idle_ms;
	snprintf(m->holder, sizeof(m->holder), "%s", holder);
	if (p->metrics != NULL) {
		m->held_gauge = metrics_gauge(
		    p->metrics, "ombra_proxy_writer_leases",
		    "Volume writer leases this proxy holds", NULL);
		m->grants_total = metrics_counter(
		    p->metrics, "ombra_proxy_writer_lease_grants_total",
		    "Volume writer leases granted to this proxy", NULL);
		m->lost_total = metrics_counter(
		    p->metrics, "ombra_proxy_writer_leases_lost_total",
		    "Volume writer leases lost (renewal refused, expired, "
		    "fenced by a storage node)",
		    NULL);
	}
	uv_timer_init(p->loop, &m->timer);
	m->timer.data = m;
	uv_timer_start(&m->timer, tick, VLEASE_TICK_MS, VLEASE_TICK_MS);
	*out = m;
	return 0;
}

void vlease_mgr_stop(struct vlease_mgr *m)
{
	if (m == NULL || m->stopped)
		return;
	m->stopped = true;
	uv_timer_stop(&m->timer);
	for (struct proxy_volume *v = m->active; v != NULL;
	     v = proxy_volume_vlease(v)->next_active)
		release_now(m, v);
}

static void mgr_closed(uv_handle_t *h)
{
	free(h->data);
}

void vlease_mgr_destroy(struct vlease_mgr *m)
{
	if (m == NULL)
		return;
	vlease_mgr_stop(m);
	while (m->active != NULL)
		deactivate(m, m->active);
	uv_close((uv_handle_t *)&m->timer, mgr_closed);
}

/* vlease_cb of an attach: the lease is only taken early, nobody waits. */
static void attach_leased(void *arg, const struct proxy_status *st,
			  uint64_t epoch)
{
	struct proxy_volume *vol = arg;

	if (st->code != GRPC_STATUS_OK)
		log_warn("volume %s attached, writes will fail: %s",
			 proxy_volume_name(vol), st->message);
	else if (epoch != 0)
		log_debug("volume %s attached under writer epoch %" PRIu64,
			  proxy_volume_name(vol), epoch);
	proxy_volume_release(vol);
}

void proxy_volume_attach(struct proxy_volume *vol, int delta)
{
	vlease_pin(vol, delta);
	if (delta > 0 && vlease_enabled(mgr_of(vol)))
		vlease_acquire(vol, attach_leased, proxy_volume_ref(vol));
}
