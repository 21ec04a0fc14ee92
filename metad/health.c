/* health.c: storage node liveness from heartbeats, decided on the leader
 * and committed through Raft (DESIGN.md: "decisions made from soft state
 * are committed as Raft commands").
 *
 * The soft state is an array of (node id, last heartbeat, reported usage)
 * sorted by id, rebuilt from scratch after every election: a new leader
 * gives every node one node_timeout_ms of grace from the start of its
 * leadership plus one election timeout (or from the node's registration,
 * if later) before it may mark it down.  At most one state change per node
 * is in flight.
 *
 * Leases (DESIGN.md "Leases"; NodeHeartbeatResponse.lease_ms): a node acts
 * as primary only until node_timeout_ms after it SENT its last
 * acknowledged heartbeat, and marking it DOWN is what promotes its
 * replicas.  A heartbeat is acknowledged at or after it was sent, so the
 * leader that acknowledged it marks the node DOWN only after the node has
 * fenced itself.  A new leader does not know when the old one last
 * acknowledged; the old one stops acknowledging at most about one
 * election timeout after the new leader can be elected (libraft steps a
 * leader down once it has not heard from a majority for that long), hence
 * the extra election timeout in its grace.  The same check drives region
 * failover (failover.c: shadow promotion when every home copy of a
 * segment is DOWN) and the shadow policy (shadowpol_run.c: shadows added
 * and removed from the access statistics, every check).  Failure: a proposal
 * that fails (leadership lost) is logged and retried by the next check; nothing
 * here answers a client. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "failover.h"
#include "fsm.h"
#include "log.h"
#include "metad.h"
#include "raftnode.h"
#include "shadowpol_run.h"

#define HEALTH_CHECK_MS 1000

struct node_soft {
	uint64_t id;
	uint64_t last_heartbeat; /* uv_now() ms */
	uint64_t used_bytes;
	bool proposing; /* a CmdSetNodeState for it is in flight */
};

struct health {
	struct metad *md;
	uv_timer_t timer;
	bool leader;
	uint64_t generation; /* bumped on every leadership change */
	struct node_soft *nodes;
	size_t n, cap;
	struct failover *failover; /* region failover rounds (failover.c) */
	struct shadowpol_run *shadowpol; /* shadow policy (shadowpol_run.c) */
};

struct state_change {
	struct health *h;
	uint64_t generation;
	uint64_t node_id;
	Ombra__V1__NodeState state;
};

static struct node_soft *soft_find(struct health *h, uint64_t id)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->nodes[mid].id == id) {
			return &h->nodes[mid];
		}
		if (h->nodes[mid].id < id) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return NULL;
}

/* Find or insert (sorted) id.  NULL on out-of-memory. */
static struct node_soft *soft_get(struct health *h, uint64_t id)
{
	struct node_soft *s = soft_find(h, id);
	size_t pos = 0;

	if (s != NULL) {
		return s;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap == 0 ? 16 : h->cap * 2;
		struct node_soft *nodes =
		    realloc(h->nodes, cap * sizeof(*nodes));

		if (nodes == NULL) {
			return NULL;
		}
		h->nodes = nodes;
		h->cap = cap;
	}
	while (pos < h->n && h->nodes[pos].id < id) {
		pos++;
	}
	memmove(&h->nodes[pos + 1], &h->nodes[pos],
		(h->n - pos) * sizeof(*h->nodes));
	h->n++;
	s = &h->nodes[pos];
	memset(s, 0, sizeof(*s));
	s->id = id;
	return s;
}

int health_heartbeat(struct health *h, uint64_t node_id,
		     Ombra__V1__Tier *const *tiers, size_t n_tiers)
{
	struct node_soft *s = soft_get(h, node_id);
	uint64_t used = 0;

	if (s == NULL) {
		return OMBRA_ENOMEM;
	}
	for (size_t i = 0; i < n_tiers; i++) {
		used += tiers[i]->used_bytes;
	}
	s->last_heartbeat = uv_now(h->md->loop);
	s->used_bytes = used;
	return 0;
}

uint64_t health_heartbeat_age(struct health *h, uint64_t node_id,
			      uint64_t *used_bytes)
{
	struct node_soft *s = soft_find(h, node_id);
	uint64_t now = uv_now(h->md->loop);

	if (s == NULL || s->last_heartbeat == 0) {
		return 0;
	}
	if (used_bytes != NULL) {
		*used_bytes = s->used_bytes;
	}
	/* 0 means unknown: a heartbeat this very millisecond reads as 1. */
	return now > s->last_heartbeat ? now - s->last_heartbeat : 1;
}

void health_annotate(struct health *h, Ombra__V1__Node *const *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		nodes[i]->last_heartbeat_ms_ago = health_heartbeat_age(
		    h, nodes[i]->id, &nodes[i]->used_bytes);
	}
}

void health_set_leader(struct health *h, bool is_leader)
{
	h->leader = is_leader;
	h->generation++;
	h->n = 0; /* soft state is rebuilt after every election */
	shadowpol_run_set_leader(h->shadowpol, is_leader);
	if (is_leader) {
		log_info("health: leader now; nodes get %u ms of grace to "
			 "heartbeat (node timeout + election timeout)",
			 h->md->cfg->node_timeout_ms +
			     h->md->cfg->election_timeout_ms);
	}
}

static void change_applied(void *data, int rv, const char *errmsg,
			   const struct fsm_result *res)
{
	struct state_change *c = data;
	struct health *h = c->h;
	struct node_soft *s;
	const char *name =
	    c->state == OMBRA__V1__NODE_STATE__NODE_UP ? "UP" : "DOWN";

	if (c->generation == h->generation &&
	    (s = soft_find(h, c->node_id)) != NULL) {
		s->proposing = false;
	}
	if (rv != 0) {
		log_warn("health: node %llu -> %s not committed: %s",
			 (unsigned long long)c->node_id, name, errmsg);
	} else if (res->code != 0) {
		log_warn("health: node %llu -> %s refused: %s",
			 (unsigned long long)c->node_id, name, res->message);
	} else {
		log_info("health: node %llu marked %s at index %llu",
			 (unsigned long long)c->node_id, name,
			 (unsigned long long)res->index);
	}
	free(c);
}

static void propose_state(struct health *h, struct node_soft *s,
			  Ombra__V1__NodeState state)
{
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdSetNodeState set = OMBRA__V1__CMD_SET_NODE_STATE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct state_change *c = calloc(1, sizeof(*c));
	int rv;

	if (c == NULL) {
		log_warn("health: out of memory");
		return;
	}
	c->h = h;
	c->generation = h->generation;
	c->node_id = s->id;
	c->state = state;
	set.node_id = s->id;
	set.state = state;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_SET_NODE_STATE;
	cmd.set_node_state = &set;
	rv = raftnode_propose(h->md->rn, &cmd, change_applied, c, errmsg);
	if (rv != 0) {
		log_warn("health: node %llu: %s", (unsigned long long)s->id,
			 errmsg);
		free(c);
		return;
	}
	s->proposing = true;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Loop time (ms) from which a node that never heartbeat to this leader is
 * given node_timeout_ms of grace: the later of the start of this
 * leadership plus one election timeout (see the header) and the node's
 * registration (registered_unix_ms is the
 * proposing leader's wall clock, converted here to loop time), so a node
 * registered late in a term is not marked down at once. */
static uint64_t grace_start(struct health *h, const Ombra__V1__Node *node,
			    uint64_t now)
{
	uint64_t since =
	    raftnode_leader_since(h->md->rn) + h->md->cfg->election_timeout_ms;
	uint64_t wall = wall_ms();
	uint64_t age, registered;

	age = wall > node->registered_unix_ms ? wall - node->registered_unix_ms
					      : 0;
	registered = now > age ? now - age : 0;
	return registered > since ? registered : since;
}

static void check_node(struct health *h, const Ombra__V1__Node *node,
		       uint64_t now, uint64_t timeout)
{
	struct node_soft *s = soft_get(h, node->id);
	uint64_t last;

	if (s == NULL || s->proposing) {
		return;
	}
	last = s->last_heartbeat != 0 ? s->last_heartbeat
				      : grace_start(h, node, now);
	/* last may lie ahead of now (grace of a new leader). */
	if (node->state == OMBRA__V1__NODE_STATE__NODE_UP && now > last &&
	    now - last > timeout) {
		log_warn("health: node %llu (%s) silent for %llu ms; marking "
			 "it DOWN",
			 (unsigned long long)node->id, node->name,
			 (unsigned long long)(now - last));
		propose_state(h, s, OMBRA__V1__NODE_STATE__NODE_DOWN);
	} else if (node->state == OMBRA__V1__NODE_STATE__NODE_DOWN &&
		   s->last_heartbeat != 0 && now - last <= timeout) {
		log_info("health: node %llu (%s) heartbeats again; marking "
			 "it UP",
			 (unsigned long long)node->id, node->name);
		propose_state(h, s, OMBRA__V1__NODE_STATE__NODE_UP);
	}
}

static void on_check(uv_timer_t *t)
{
	struct health *h = t->data;
	Ombra__V1__Node **nodes = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	size_t n = 0;
	uint64_t now = uv_now(h->md->loop);
	bool any_down = false;

	if (h->md->stopping || h->md->rn == NULL || !h->leader ||
	    !raftnode_is_leader(h->md->rn)) {
		return;
	}
	if (fsm_list_nodes(h->md->fsm, NULL, &nodes, &n, errmsg) != 0) {
		log_error("health: %s", errmsg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		check_node(h, nodes[i], now, h->md->cfg->node_timeout_ms);
		any_down |= nodes[i]->state == OMBRA__V1__NODE_STATE__NODE_DOWN;
	}
	fsm_free_list(nodes, n);
	/* Segments whose home copies are all DOWN: shadow promotion (only
	 * worth a look while some node is DOWN). */
	if (any_down) {
		failover_tick(h->failover);
	}
	shadowpol_run_tick(h->shadowpol);
}

struct shadowpol_run *health_shadowpol(struct health *h)
{
	return h->shadowpol;
}

int health_create(struct metad *md, struct health **out, char *errmsg)
{
	struct health *h = calloc(1, sizeof(*h));

	if (h == NULL) {
		ombra_errmsg_printf(errmsg, "health: out of memory");
		return OMBRA_ENOMEM;
	}
	h->md = md;
	if (failover_create(md, &h->failover, errmsg) != 0) {
		free(h);
		return OMBRA_ENOMEM;
	}
	if (shadowpol_run_create(md, &h->shadowpol, errmsg) != 0) {
		failover_close(h->failover);
		free(h);
		return OMBRA_ENOMEM;
	}
	uv_timer_init(md->loop, &h->timer);
	h->timer.data = h;
	uv_timer_start(&h->timer, on_check, HEALTH_CHECK_MS, HEALTH_CHECK_MS);
	*out = h;
	return 0;
}

static void on_closed(uv_handle_t *handle)
{
	struct health *h = handle->data;

	shadowpol_run_destroy(h->shadowpol);
	free(h->nodes);
	free(h);
}

void health_close(struct health *h)
{
	failover_close(h->failover);
	h->failover = NULL;
	uv_timer_stop(&h->timer);
	uv_close((uv_handle_t *)&h->timer, on_closed);
}
