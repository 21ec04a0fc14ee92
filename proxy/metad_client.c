/* metad_client.c: blocking calls to metad's AdminService, run in libuv's
 * thread pool so the loop never waits for metad.
 *
 * rpc_cluster (leader-following, blocking) is not thread-safe, so the
 * client keeps a pool of them behind a mutex: a job takes a free one (or
 * makes one), uses it alone, and gives it back.  The pool grows to the
 * number of jobs that ran at the same time (at most the thread pool size).
 *
 * Failure: a cluster client that cannot be created, or a job that cannot be
 * queued, reaches the callback as an UNAVAILABLE/INTERNAL status; callbacks
 * always run, on the loop. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "log.h"
#include "proxy.h"

struct mdc_slot {
	struct rpc_cluster *cl;
	struct mdc_slot *next;
};

struct mdc {
	struct proxy *p;
	char *endpoints;
	pthread_mutex_t lock;
	struct mdc_slot *free_list;
	unsigned busy;
};

struct mdc_job {
	uv_work_t work;
	struct mdc *m;
	/* generic unary call */
	const char *method;
	const ProtobufCMessage *req;
	int timeout_ms;
	ProtobufCMessage *resp;
	struct rpc_status st;
	mdc_cb cb;
	/* custom work */
	mdc_work_fn work_fn;
	mdc_done_fn done_fn;
	void *arg;
};

int mdc_create(struct proxy *p, const char *endpoints, struct mdc **out,
	       char *errmsg)
{
	struct mdc *m = calloc(1, sizeof(*m));
	struct rpc_cluster *probe = NULL;
	int rv;

	if (m == NULL || (m->endpoints = strdup(endpoints)) == NULL) {
		free(m);
		ombra_errmsg_printf(errmsg, "metad client: out of memory");
		return OMBRA_ENOMEM;
	}
	/* Validate the endpoint list now, so a typo is a start-up error. */
	rv = rpc_cluster_create(endpoints, p->tls, &probe, errmsg);
	if (rv != 0) {
		free(m->endpoints);
		free(m);
		return rv;
	}
	m->p = p;
	pthread_mutex_init(&m->lock, NULL);
	m->free_list = calloc(1, sizeof(*m->free_list));
	if (m->free_list == NULL) {
		rpc_cluster_destroy(probe);
		mdc_destroy(m);
		ombra_errmsg_printf(errmsg, "metad client: out of memory");
		return OMBRA_ENOMEM;
	}
	m->free_list->cl = probe;
	*out = m;
	return 0;
}

void mdc_destroy(struct mdc *m)
{
	struct mdc_slot *s, *next;

	if (m == NULL)
		return;
	for (s = m->free_list; s != NULL; s = next) {
		next = s->next;
		rpc_cluster_destroy(s->cl);
		free(s);
	}
	pthread_mutex_destroy(&m->lock);
	free(m->endpoints);
	free(m);
}

const char *mdc_endpoints(const struct mdc *m)
{
	return m->endpoints;
}

unsigned mdc_busy(const struct mdc *m)
{
	return m->busy;
}

/* Thread pool: take a cluster client from the pool or make one. */
static struct mdc_slot *slot_take(struct mdc *m, struct rpc_status *st)
{
	struct mdc_slot *s;
	char errmsg[OMBRA_ERRMSG_LEN];

	pthread_mutex_lock(&m->lock);
	s = m->free_list;
	if (s != NULL)
		m->free_list = s->next;
	pthread_mutex_unlock(&m->lock);
	if (s != NULL)
		return s;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		st->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(st->message, sizeof(st->message), "out of memory");
		return NULL;
	}
	if (rpc_cluster_create(m->endpoints, m->p->tls, &s->cl, errmsg) != 0) {
		st->code = GRPC_STATUS_INTERNAL;
		ombra_errmsg_printf(st->message, "metad client: %s", errmsg);
		free(s);
		return NULL;
	}
	return s;
}

static void slot_give(struct mdc *m, struct mdc_slot *s)
{
	pthread_mutex_lock(&m->lock);
	s->next = m->free_list;
	m->free_list = s;
	pthread_mutex_unlock(&m->lock);
}

static void job_work(uv_work_t *w)
{
	struct mdc_job *j = w->data;
	struct mdc_slot *s = slot_take(j->m, &j->st);

	if (s == NULL) {
		if (j->work_fn != NULL)
			j->work_fn(j->arg, NULL);
		return;
	}
	if (j->work_fn != NULL)
		j->work_fn(j->arg, s->cl);
	else
		rpc_cluster_unary(s->cl, &ombra__v1__admin_service__descriptor,
				  j->method, j->req, &j->resp, j->timeout_ms,
				  &j->st);
	slot_give(j->m, s);
}

static void job_done(uv_work_t *w, int status)
{
	struct mdc_job *j = w->data;

	(void)status; /* UV_ECANCELED cannot happen: we never cancel */
	j->m->busy--;
	if (j->done_fn != NULL) {
		j->done_fn(j->arg);
	} else {
		j->cb(j->arg, &j->st,
		      j->st.code == GRPC_STATUS_OK ? j->resp : NULL);
		if (j->resp != NULL)
			protobuf_c_message_free_unpacked(j->resp, NULL);
	}
	free(j);
}

static void job_queue(struct mdc *m, struct mdc_job *j)
{
	int rv;

	j->m = m;
	j->work.data = j;
	m->busy++;
	rv = uv_queue_work(m->p->loop, &j->work, job_work, job_done);
	if (rv != 0) {
		/* Cannot happen with valid arguments; still answer. */
		log_error("uv_queue_work: %s", uv_strerror(rv));
		j->st.code = GRPC_STATUS_INTERNAL;
		snprintf(j->st.message, sizeof(j->st.message),
			 "cannot queue metad call: %s", uv_strerror(rv));
		m->busy--;
		if (j->done_fn != NULL)
			j->done_fn(j->arg);
		else
			j->cb(j->arg, &j->st, NULL);
		free(j);
	}
}

void mdc_call(struct mdc *m, const char *method, const ProtobufCMessage *req,
	      int timeout_ms, mdc_cb cb, void *arg)
{
	struct mdc_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		struct rpc_status st = {.code = GRPC_STATUS_RESOURCE_EXHAUSTED};

		snprintf(st.message, sizeof(st.message), "out of memory");
		cb(arg, &st, NULL);
		return;
	}
	j->method = method;
	j->req = req;
	j->timeout_ms = timeout_ms;
	j->cb = cb;
	j->arg = arg;
	job_queue(m, j);
}

void mdc_run(struct mdc *m, mdc_work_fn work, mdc_done_fn done, void *arg)
{
	struct mdc_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		work(arg, NULL);
		done(arg);
		return;
	}
	j->work_fn = work;
	j->done_fn = done;
	j->arg = arg;
	job_queue(m, j);
}
