/* watch.c: AdminService.Watch: every change the state machine applies on
 * this member is fanned out to the open Watch streams.
 *
 * History: the hub keeps the last WATCH_HISTORY events in a ring, so a
 * client that listed the state at applied index N and then watches from N
 * gets every change after N even if some happened between its two calls
 * (the etcd pattern).  Events older than the ring (or from before this
 * process started, or before a snapshot was installed) are not kept: a
 * Watch from such an index fails FAILED_PRECONDITION and the client lists
 * again.  from_index 0 means "from now on".
 *
 * A stream ends only when the client cancels it or the server shuts down;
 * its done callback unsubscribes it and sends the final status the RPC
 * layer requires (it allows answering from that callback).
 * Failure: an event that cannot be copied (out of memory) is skipped for
 * the history and logged; live streams still get it. */
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "service.h"

#define WATCH_HISTORY 1024

struct watch_event {
	uint64_t index;
	char kind[16];
	char *name;
	bool deleted;
};

struct watcher {
	struct watch_hub *hub; /* NULL once the hub is gone */
	struct rpc_call *call;
	uint64_t from_index;
	bool finished; /* final status queued */
	bool linked;   /* in hub->live */
	struct watcher *prev, *next;
};

struct watch_hub {
	struct metad *md;
	struct watcher *live;
	struct watch_event ring[WATCH_HISTORY];
	size_t ring_start, ring_len;
	uint64_t floor; /* every event with index > floor is in the ring */
	uint64_t restored_seen;
};

static void event_send(struct rpc_call *call, uint64_t index, const char *kind,
		       const char *name, bool deleted)
{
	Ombra__V1__WatchEvent ev = OMBRA__V1__WATCH_EVENT__INIT;

	ev.index = index;
	ev.kind = (char *)kind;
	ev.name = (char *)name;
	ev.deleted = deleted;
	rpc_call_stream_send(call, &ev.base);
}

static void ring_clear(struct watch_hub *hub)
{
	for (size_t i = 0; i < hub->ring_len; i++) {
		free(hub->ring[(hub->ring_start + i) % WATCH_HISTORY].name);
	}
	hub->ring_start = 0;
	hub->ring_len = 0;
}

/* A snapshot install replaces the state without events: forget the
 * history and start it again at the installed index. */
static void ring_check_restore(struct watch_hub *hub)
{
	uint64_t restored = fsm_snapshots_restored(hub->md->fsm);

	if (restored != hub->restored_seen) {
		hub->restored_seen = restored;
		ring_clear(hub);
		hub->floor = fsm_applied_index(hub->md->fsm);
	}
}

static void ring_push(struct watch_hub *hub, uint64_t index, const char *kind,
		      const char *name, bool deleted)
{
	struct watch_event *ev;
	char *copy = strdup(name);

	if (copy == NULL) {
		log_warn("watch: out of memory; history restarts at %llu",
			 (unsigned long long)index);
		ring_clear(hub);
		hub->floor = index;
		return;
	}
	if (hub->ring_len == WATCH_HISTORY) {
		ev = &hub->ring[hub->ring_start];
		hub->floor = ev->index;
		free(ev->name);
		hub->ring_start = (hub->ring_start + 1) % WATCH_HISTORY;
		hub->ring_len--;
	}
	ev = &hub->ring[(hub->ring_start + hub->ring_len) % WATCH_HISTORY];
	hub->ring_len++;
	ev->index = index;
	snprintf(ev->kind, sizeof(ev->kind), "%s", kind);
	ev->name = copy;
	ev->deleted = deleted;
}

static void on_change(void *data, uint64_t index, const char *kind,
		      const char *name, bool deleted)
{
	struct watch_hub *hub = data;

	ring_check_restore(hub);
	ring_push(hub, index, kind, name, deleted);
	for (struct watcher *w = hub->live; w != NULL; w = w->next) {
		if (index > w->from_index) {
			event_send(w->call, index, kind, name, deleted);
		}
	}
}

static void unlink_watcher(struct watch_hub *hub, struct watcher *w)
{
	if (!w->linked) {
		return;
	}
	if (w->prev != NULL) {
		w->prev->next = w->next;
	} else {
		hub->live = w->next;
	}
	if (w->next != NULL) {
		w->next->prev = w->prev;
	}
	w->linked = false;
}

static void watch_done(struct rpc_call *call, void *data)
{
	struct watcher *w = data;

	if (w->hub != NULL) {
		unlink_watcher(w->hub, w);
	}
	if (!w->finished) {
		w->finished = true;
		rpc_call_finish(call, GRPC_STATUS_CANCELLED,
				"watch cancelled by the client");
	}
	free(w);
}

void watch_handle(struct rpc_call *call, const ProtobufCMessage *req,
		  void *data)
{
	const Ombra__V1__WatchRequest *r = (const Ombra__V1__WatchRequest *)req;
	struct metad *md = data;
	struct watch_hub *hub = md->watch;
	struct watcher *w;
	size_t i;

	ring_check_restore(hub);
	if (r->from_index != 0 && r->from_index < hub->floor) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			      "from_index %llu is older than the change "
			      "history metad-%llu keeps (it starts after "
			      "index %llu); list the state again and watch "
			      "from its applied_index",
			      (unsigned long long)r->from_index,
			      (unsigned long long)md->cfg->id,
			      (unsigned long long)hub->floor);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	w->hub = hub;
	w->call = call;
	w->from_index =
	    r->from_index != 0 ? r->from_index : fsm_applied_index(md->fsm);
	for (i = 0; i < hub->ring_len; i++) {
		const struct watch_event *ev =
		    &hub->ring[(hub->ring_start + i) % WATCH_HISTORY];

		if (ev->index > w->from_index) {
			event_send(call, ev->index, ev->kind, ev->name,
				   ev->deleted);
		}
	}
	w->next = hub->live;
	if (hub->live != NULL) {
		hub->live->prev = w;
	}
	hub->live = w;
	w->linked = true;
	rpc_call_on_done(call, watch_done, w);
	log_debug("watch: stream opened from index %llu",
		  (unsigned long long)w->from_index);
}

int watch_hub_create(struct metad *md, struct watch_hub **out, char *errmsg)
{
	struct watch_hub *hub = calloc(1, sizeof(*hub));

	if (hub == NULL) {
		ombra_errmsg_printf(errmsg, "watch hub: out of memory");
		return OMBRA_ENOMEM;
	}
	hub->md = md;
	hub->floor = fsm_applied_index(md->fsm);
	hub->restored_seen = fsm_snapshots_restored(md->fsm);
	fsm_set_change_listener(md->fsm, on_change, hub);
	*out = hub;
	return 0;
}

void watch_hub_destroy(struct watch_hub *hub)
{
	struct watcher *w;

	fsm_set_change_listener(hub->md->fsm, NULL, NULL);
	while ((w = hub->live) != NULL) {
		unlink_watcher(hub, w);
		w->hub = NULL;
		w->finished = true;
		rpc_call_finish(w->call, GRPC_STATUS_UNAVAILABLE,
				"metad-%llu is shutting down; watch another "
				"member",
				(unsigned long long)hub->md->cfg->id);
	}
	ring_clear(hub);
	free(hub);
}
