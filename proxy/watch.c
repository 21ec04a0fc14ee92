/* watch.c: the proxy's AdminService.Watch stream, which keeps the volume
 * cache current.
 *
 * The stream is blocking (rpc_client_stream), so it runs on its own
 * thread.  Events are queued under a mutex and handed to the loop with
 * uv_async_send; the loop applies them to the cache (volcache_on_event).
 * Any member serves Watch (each fans out what it applies), so the thread
 * tries the metad endpoints in turn.  When a stream ends or cannot be
 * opened it reconnects with backoff (100 ms doubling to 5 s); after every
 * (re)connection the loop refetches every cached volume, because events may
 * have been missed while no stream was open.
 *
 * Failure: nothing fails outward; connection problems are logged (once per
 * outage) and retried until pwatch_stop(). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.pb-c.h"
#include "log.h"
#include "proxy.h"

#define WATCH_MAX_ENDPOINTS 16
/* A stream's deadline; it is simply reopened when it passes. */
#define WATCH_STREAM_MS (3600 * 1000)

struct wev {
	char kind[16];
	char *name;
	bool deleted;
	bool reconnected; /* not an event: a new stream was opened */
	struct wev *next;
};

struct pwatch {
	struct proxy *p;
	char *endpoints[WATCH_MAX_ENDPOINTS];
	size_t n_endpoints;
	pthread_t thread;
	bool thread_ok;
	uv_async_t async;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;		   /* under lock */
	struct rpc_stream *stream; /* under lock: the one to cancel */
	struct wev *head, *tail;   /* under lock */
};

static void push(struct pwatch *w, struct wev *e)
{
	pthread_mutex_lock(&w->lock);
	if (w->tail != NULL)
		w->tail->next = e;
	else
		w->head = e;
	w->tail = e;
	pthread_mutex_unlock(&w->lock);
	uv_async_send(&w->async);
}

static void on_async(uv_async_t *h)
{
	struct pwatch *w = h->data;
	struct wev *e;
	bool all = false;

	pthread_mutex_lock(&w->lock);
	e = w->head;
	w->head = w->tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while (e != NULL) {
		struct wev *next = e->next;

		if (e->reconnected)
			all = true;
		else if (!all)
			volcache_on_event(w->p->vc, e->kind, e->name,
					  e->deleted);
		free(e->name);
		free(e);
		e = next;
	}
	if (all)
		volcache_refresh_all(w->p->vc);
}

/* Sleep up to ms unless stopped; returns true if stopped. */
static bool nap(struct pwatch *w, int ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	if (!w->stop)
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

/* One stream on one endpoint until it ends.  Returns true if it delivered
 * anything (was really open). */
static bool watch_once(struct pwatch *w, const char *endpoint,
		       bool *logged_down)
{
	Ombra__V1__WatchRequest req = OMBRA__V1__WATCH_REQUEST__INIT;
	struct rpc_client *c = NULL;
	struct rpc_stream *s = NULL;
	struct rpc_status st;
	char errmsg[OMBRA_ERRMSG_LEN];
	bool opened = false;
	struct wev *mark;

	if (rpc_client_create(endpoint, w->p->tls, &c, errmsg) != 0) {
		if (!*logged_down)
			log_warn("watch: %s: %s", endpoint, errmsg);
		*logged_down = true;
		return false;
	}
	if (rpc_client_stream(c, &ombra__v1__admin_service__descriptor, "Watch",
			      &req.base, WATCH_STREAM_MS, &s, &st) != 0) {
		if (!*logged_down)
			log_warn("watch: %s: %s", endpoint, st.message);
		*logged_down = true;
		rpc_client_destroy(c);
		return false;
	}
	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		goto out;
	}
	w->stream = s;
	pthread_mutex_unlock(&w->lock);
	/* The stream is registered at the server only once the call starts;
	 * refetching after opening it cannot miss a change. */
	mark = calloc(1, sizeof(*mark));
	if (mark != NULL) {
		mark->reconnected = true;
		push(w, mark);
	}
	for (;;) {
		ProtobufCMessage *msg = NULL;
		const Ombra__V1__WatchEvent *ev;
		struct wev *e;
		int rv = rpc_stream_next(s, &msg, &st);

		if (rv != 1)
			break;
		if (!opened) {
			if (*logged_down)
				log_info("watch: streaming from %s", endpoint);
			*logged_down = false;
			opened = true;
		}
		ev = (const Ombra__V1__WatchEvent *)msg;
		e = calloc(1, sizeof(*e));
		if (e != NULL) {
			snprintf(e->kind, sizeof(e->kind), "%s",
				 ev->kind ? ev->kind : "");
			e->name = strdup(ev->name ? ev->name : "");
			e->deleted = ev->deleted;
			if (e->name == NULL) {
				free(e);
				e = NULL;
			}
		}
		protobuf_c_message_free_unpacked(msg, NULL);
		if (e == NULL) {
			/* Lost an event: refetch everything instead. */
			e = calloc(1, sizeof(*e));
			if (e == NULL)
				continue;
			e->reconnected = true;
		}
		push(w, e);
	}
	pthread_mutex_lock(&w->lock);
	w->stream = NULL;
	pthread_mutex_unlock(&w->lock);
	if (!w->stop && st.code != GRPC_STATUS_DEADLINE_EXCEEDED) {
		if (!*logged_down)
			log_warn("watch: stream from %s ended: %s: %s",
				 endpoint, rpc_status_name(st.code),
				 st.message);
		*logged_down = true;
	}
out:
	rpc_stream_close(s);
	rpc_client_destroy(c);
	return opened;
}

static void *watch_thread(void *arg)
{
	struct pwatch *w = arg;
	size_t i = 0;
	int backoff = 100;
	bool logged_down = false;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		bool stop = w->stop;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;
		if (watch_once(w, w->endpoints[i], &logged_down))
			backoff = 100;
		i = (i + 1) % w->n_endpoints;
		if (nap(w, backoff))
			break;
		if (backoff < 5000)
			backoff *= 2;
	}
	return NULL;
}

static void free_endpoints(struct pwatch *w)
{
	for (size_t i = 0; i < w->n_endpoints; i++)
		free(w->endpoints[i]);
}

int pwatch_start(struct proxy *p, const char *endpoints, struct pwatch **out,
		 char *errmsg)
{
	struct pwatch *w = calloc(1, sizeof(*w));
	const char *s = endpoints;
	int rv;

	if (w == NULL) {
		ombra_errmsg_printf(errmsg, "watch: out of memory");
		return OMBRA_ENOMEM;
	}
	w->p = p;
	while (*s != '\0' && w->n_endpoints < WATCH_MAX_ENDPOINTS) {
		size_t len = strcspn(s, ",");

		if (len > 0) {
			w->endpoints[w->n_endpoints] = strndup(s, len);
			if (w->endpoints[w->n_endpoints] == NULL)
				break;
			w->n_endpoints++;
		}
		s += len;
		if (*s == ',')
			s++;
	}
	if (w->n_endpoints == 0) {
		free_endpoints(w);
		free(w);
		ombra_errmsg_printf(errmsg, "watch: no metad endpoint in '%s'",
				    endpoints);
		return OMBRA_EINVAL;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	uv_async_init(p->loop, &w->async, on_async);
	w->async.data = w;
	rv = pthread_create(&w->thread, NULL, watch_thread, w);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "watch: pthread_create: %s",
				    strerror(rv));
		pwatch_stop(w);
		return OMBRA_EINTERNAL;
	}
	w->thread_ok = true;
	*out = w;
	return 0;
}

static void async_closed(uv_handle_t *h)
{
	struct pwatch *w = h->data;
	struct wev *e = w->head, *next;

	for (; e != NULL; e = next) {
		next = e->next;
		free(e->name);
		free(e);
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free_endpoints(w);
	free(w);
}

void pwatch_stop(struct pwatch *w)
{
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	if (w->stream != NULL)
		rpc_stream_cancel(w->stream);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->thread_ok)
		pthread_join(w->thread, NULL);
	uv_close((uv_handle_t *)&w->async, async_closed);
}
