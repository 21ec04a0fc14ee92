/* node.c: ombra-stored's relation with metad: registration, the first
 * shard-map fetch before data requests are served, heartbeats and the node
 * lease (self-fencing); a heartbeat whose map_index grew triggers a
 * shard-map refresh (mapcache.c).
 *
 * Lease: the send time of the last acknowledged heartbeat + lease_ms -
 * lease_ms/4, on the monotonic clock; metad only moves a node's segments
 * lease_ms after its last heartbeat, so the node stops acting first.  A
 * lease that comes back after running out (metad was unreachable, e.g. a
 * partitioned region) is not valid until a shard-map refresh begun after
 * it succeeds: a failover meanwhile may have fenced this node's segments
 * with a higher epoch that its old maps do not show.
 *
 * Failure: registration and the first map fetch are retried every second
 * until they succeed (metad may start later); a failed heartbeat is
 * logged and retried on the next tick, and the lease runs out if metad
 * stays unreachable. */
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "err.h"
#include "foreign.h"
#include "log.h"
#include "stored.h"
#include "volume.pb-c.h"

#define RETRY_MS 1000
#define DEFAULT_HB_MS 1000

static uint64_t mono_ms(void)
{
	return uv_hrtime() / 1000000u;
}

/* The lease as the heartbeats keep it, whatever the maps say. */
static bool lease_held(const struct stored *sd)
{
	return sd->lease_until != 0 && mono_ms() < sd->lease_until;
}

bool node_lease_valid(struct stored *sd)
{
	return lease_held(sd) && !sd->maps_suspect;
}

void node_maps_refreshed(struct stored *sd, uint64_t seq)
{
	if (sd->maps_suspect && seq >= sd->maps_fresh_seq) {
		sd->maps_suspect = false;
		log_info("shard maps refreshed after the lease came back: "
			 "serving as a home copy again");
	}
}

/* Tier usage as protobuf Tiers (*out: n entries, free with tiers_free). */
static int tiers_make(struct stored *sd, Ombra__V1__Tier ***out, size_t *n,
		      char *errmsg)
{
	struct segstore_tier_usage u[SEGSTORE_MAX_TIERS];
	Ombra__V1__Tier **t;
	int rv;

	rv = segstore_usage(sd->ss, u, SEGSTORE_MAX_TIERS, n, errmsg);
	if (rv != 0) {
		return rv;
	}
	t = calloc(*n, sizeof(*t) + sizeof(**t));
	if (t == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	for (size_t i = 0; i < *n; i++) {
		Ombra__V1__Tier *x = (Ombra__V1__Tier *)(t + *n) + i;

		ombra__v1__tier__init(x);
		x->name = (char *)u[i].name;
		x->path = sd->cfg.tiers[i].dir;
		x->capacity_bytes = u[i].capacity;
		x->used_bytes = u[i].used;
		t[i] = x;
	}
	*out = t;
	return 0;
}

/* ------------------------------------------------ heartbeats */

struct hb {
	struct stored *sd;
	uint64_t sent_ms;
	Ombra__V1__NodeHeartbeatResponse *resp;
	int rv;
	grpc_status_code code;
	bool verify; /* check with ListNodes that node_id is still ours */
	bool lost;   /* it is not: metad lost this node, reused the id */
	char errmsg[OMBRA_ERRMSG_LEN];
};

/* Does metad still list node_id under this node's name?  A metad that
 * lost its state answers heartbeats NOT_FOUND, unless another node
 * registered meanwhile and was given this id (heartbeats carry only the
 * id).  True when it cannot tell (metad unreachable: the heartbeat
 * decides). */
static bool id_still_ours(struct stored *sd)
{
	Ombra__V1__ListNodesRequest req = OMBRA__V1__LIST_NODES_REQUEST__INIT;
	Ombra__V1__ListNodesResponse *resp = NULL;
	struct rpc_status st;
	bool ours = false;

	req.region = (char *)sd->cfg.region;
	if (meta_call(&sd->meta_hb, &ombra__v1__admin_service__descriptor,
		      "ListNodes", &req.base, (ProtobufCMessage **)&resp,
		      STORED_META_TIMEOUT_MS, &st) != 0) {
		return true;
	}
	for (size_t i = 0; i < resp->n_nodes; i++) {
		const Ombra__V1__Node *n = resp->nodes[i];

		ours |= n->id == sd->node_id && n->name != NULL &&
			strcmp(n->name, sd->cfg.name) == 0;
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return ours;
}

static void hb_work(void *arg)
{
	struct hb *h = arg;
	struct stored *sd = h->sd;
	Ombra__V1__NodeHeartbeatRequest req =
	    OMBRA__V1__NODE_HEARTBEAT_REQUEST__INIT;
	Ombra__V1__Tier **tiers = NULL;
	struct rpc_status st;

	req.node_id = sd->node_id;
	if (tiers_make(sd, &tiers, &req.n_tiers, h->errmsg) != 0) {
		req.n_tiers = 0; /* heartbeat anyway: the lease matters */
	}
	req.tiers = tiers;
	h->sent_ms = mono_ms();
	h->rv =
	    meta_call(&sd->meta_hb, &ombra__v1__meta_service__descriptor,
		      "NodeHeartbeat", &req.base, (ProtobufCMessage **)&h->resp,
		      (int)(sd->lease_ms > 0 ? sd->lease_ms / 2 : 2000), &st);
	h->code = st.code;
	if (h->rv != 0) {
		ombra_errmsg_printf(h->errmsg, "%s: %s",
				    rpc_status_name(st.code), st.message);
	} else if (h->verify) {
		h->lost = !id_still_ours(sd);
	}
	free(tiers);
}

static void hb_tick(uv_timer_t *t);
static void reregister(struct stored *sd);

/* Lease gauge and /healthz state. */
static void set_lease_state(struct stored *sd)
{
	bool valid = node_lease_valid(sd);

	metric_set(sd->m.lease_valid, valid ? 1.0 : 0.0);
	if (sd->serving) {
		atomic_store(&sd->health, valid ? STORED_HEALTH_OK
						: STORED_HEALTH_LEASE_EXPIRED);
	}
}

static void hb_done(void *arg)
{
	struct hb *h = arg;
	struct stored *sd = h->sd;

	sd->hb_running = false;
	if (h->rv == 0 && h->lost) {
		log_warn("metad lists node %llu under another name (it lost "
			 "this node and gave the id to another): registering "
			 "again as %s",
			 (unsigned long long)sd->node_id, sd->cfg.name);
		protobuf_c_message_free_unpacked(&h->resp->base, NULL);
		sd->hb_verify = true;
		reregister(sd);
	} else if (h->rv != 0) {
		sd->hb_verify = true; /* metad may come back without us */
		log_warn("heartbeat to metad failed: %s%s", h->errmsg,
			 node_lease_valid(sd) ? "" : " (lease expired)");
		if (h->code == GRPC_STATUS_NOT_FOUND) {
			/* metad lost this node (e.g. its state was rebuilt):
			 * register again under the same name. */
			reregister(sd);
		}
	} else {
		Ombra__V1__NodeHeartbeatResponse *r = h->resp;
		uint64_t interval = r->heartbeat_interval_ms != 0
					? r->heartbeat_interval_ms
					: DEFAULT_HB_MS;
		bool was_held = lease_held(sd);

		sd->hb_verify = false;

		sd->lease_ms = r->lease_ms != 0 ? r->lease_ms : 4 * interval;
		sd->lease_until = h->sent_ms + sd->lease_ms - sd->lease_ms / 4;
		if (!was_held && lease_held(sd) && sd->lease_ever_valid) {
			/* Fencing: while metad was unreachable a failover may
			 * have given this node's segments to others with a
			 * higher epoch; with the old maps it would accept the
			 * old epoch.  No home-copy service until refreshed. */
			sd->maps_suspect = true;
			sd->maps_fresh_seq = sd->fetch_seq + 1;
			maps_refresh(sd, NULL);
			log_info("node lease valid again (lease %llu ms): "
				 "refreshing the shard maps before serving",
				 (unsigned long long)sd->lease_ms);
		} else if (!was_held && lease_held(sd)) {
			log_info("node lease valid (lease %llu ms)",
				 (unsigned long long)sd->lease_ms);
		}
		sd->lease_ever_valid = true;
		if (interval != sd->hb_interval_ms && !sd->stopping) {
			sd->hb_interval_ms = interval;
			uv_timer_start(&sd->hb_timer, hb_tick, interval,
				       interval);
		}
		if (r->map_index > sd->map_index || sd->refresh_failed) {
			/* Also on the first heartbeat: a change may have
			 * landed since the start-up fetch. */
			maps_refresh(sd, NULL);
			sd->map_index = r->map_index;
		}
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
	set_lease_state(sd);
	free(h);
}

static void hb_tick(uv_timer_t *t)
{
	struct stored *sd = t->data;
	struct hb *h;

	set_lease_state(sd);
	if (sd->hb_running || sd->stopping) {
		return;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		return;
	}
	h->sd = sd;
	/* After a failure, and every 10th heartbeat in any case. */
	h->verify = sd->hb_verify || ++sd->hb_count % 10 == 0;
	if (work_submit(sd, hb_work, hb_done, h) != 0) {
		free(h);
		return;
	}
	sd->hb_running = true;
}

/* ------------------------------------------------ start-up */

struct reg {
	struct stored *sd;
	uint64_t node_id;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void (*ready_cb)(struct stored *, int, const char *);
static uv_timer_t retry_timer;

static void reg_work(void *arg)
{
	struct reg *g = arg;
	struct stored *sd = g->sd;
	Ombra__V1__RegisterNodeRequest req =
	    OMBRA__V1__REGISTER_NODE_REQUEST__INIT;
	Ombra__V1__RegisterNodeResponse *resp = NULL;
	Ombra__V1__Tier **tiers = NULL;
	struct rpc_status st;
	char rid[64];

	g->rv = tiers_make(sd, &tiers, &req.n_tiers, g->errmsg);
	if (g->rv != 0) {
		return;
	}
	req.tiers = tiers;
	req.name = (char *)sd->cfg.name;
	req.region = (char *)sd->cfg.region;
	req.address = (char *)sd->cfg.listen;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;
	g->rv = meta_call(&sd->meta_main, &ombra__v1__admin_service__descriptor,
			  "RegisterNode", &req.base, (ProtobufCMessage **)&resp,
			  STORED_META_TIMEOUT_MS, &st);
	if (g->rv != 0) {
		ombra_errmsg_printf(g->errmsg, "RegisterNode: %s: %s",
				    rpc_status_name(st.code), st.message);
	} else if (resp->node == NULL || resp->node->id == 0) {
		ombra_errmsg_printf(g->errmsg, "RegisterNode: no node id");
		g->rv = OMBRA_EPROTO;
	} else {
		g->node_id = resp->node->id;
	}
	if (resp != NULL) {
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	}
	free(tiers);
}

static void start_step(struct stored *sd);

static void retry_cb(uv_timer_t *t)
{
	start_step(t->data);
}

static void retry_later(struct stored *sd)
{
	if (!sd->stopping) {
		uv_timer_start(&retry_timer, retry_cb, RETRY_MS, 0);
	}
}

static void first_maps_done(struct stored *sd, int rv)
{
	if (sd->stopping) {
		return; /* the timers are closed or closing */
	}
	if (rv != 0) {
		retry_later(sd);
		return;
	}
	sd->serving = true;
	sd->hb_interval_ms = DEFAULT_HB_MS;
	uv_timer_start(&sd->hb_timer, hb_tick, 0, sd->hb_interval_ms);
	scrub_start(sd);
	resync_start(sd);
	foreign_start(sd);
	ready_cb(sd, 0, "");
}

static void reg_done(void *arg)
{
	struct reg *g = arg;
	struct stored *sd = g->sd;

	if (g->rv != 0) {
		log_warn("%s; retrying in %d ms", g->errmsg, RETRY_MS);
		retry_later(sd);
	} else {
		sd->node_id = g->node_id;
		log_info("registered with metad as node %llu (%s, region %s, "
			 "address %s)",
			 (unsigned long long)sd->node_id, sd->cfg.name,
			 sd->cfg.region, sd->cfg.listen);
		maps_refresh(sd, first_maps_done);
	}
	free(g);
}

/* Registration again after a heartbeat answered NOT_FOUND: the node
 * keeps serving with its lease running out until metad knows it again
 * (the new id, if metad gave another, is used from the next heartbeat;
 * the maps are refetched since they name nodes by id). */
static void rereg_done(void *arg)
{
	struct reg *g = arg;
	struct stored *sd = g->sd;

	sd->reregistering = false;
	if (g->rv != 0) {
		log_warn("%s; retried with the next heartbeat", g->errmsg);
	} else {
		if (g->node_id != sd->node_id) {
			log_warn("metad gave this node a new id %llu (was "
				 "%llu)",
				 (unsigned long long)g->node_id,
				 (unsigned long long)sd->node_id);
		}
		sd->node_id = g->node_id;
		sd->map_index = 0; /* a new metad counts from its own start */
		log_info("registered again with metad as node %llu (%s, "
			 "region %s, address %s)",
			 (unsigned long long)sd->node_id, sd->cfg.name,
			 sd->cfg.region, sd->cfg.listen);
		maps_refresh(sd, NULL);
	}
	free(g);
}

static void reregister(struct stored *sd)
{
	struct reg *g;

	if (sd->reregistering || sd->stopping) {
		return;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		return;
	}
	g->sd = sd;
	if (work_submit(sd, reg_work, rereg_done, g) != 0) {
		free(g);
		return;
	}
	sd->reregistering = true;
}

static void start_step(struct stored *sd)
{
	struct reg *g;

	if (sd->stopping) {
		return;
	}
	if (sd->node_id != 0) {
		maps_refresh(sd, first_maps_done);
		return;
	}
	g = calloc(1, sizeof(*g));
	if (g != NULL) {
		g->sd = sd;
	}
	if (g == NULL || work_submit(sd, reg_work, reg_done, g) != 0) {
		free(g);
		ready_cb(sd, OMBRA_ENOMEM, "out of memory");
	}
}

void node_init(struct stored *sd)
{
	uv_timer_init(sd->loop, &retry_timer);
	retry_timer.data = sd;
	uv_timer_init(sd->loop, &sd->hb_timer);
	sd->hb_timer.data = sd;
	sd->timers_open += 2;
	foreign_init(sd);
}

int node_start(struct stored *sd,
	       void (*ready)(struct stored *, int rv, const char *errmsg))
{
	ready_cb = ready;
	start_step(sd);
	return 0;
}

static void timer_closed(uv_handle_t *h)
{
	struct stored *sd = h->data;

	sd->timers_open--;
}

void node_stop_timers(struct stored *sd)
{
	if (!uv_is_closing((uv_handle_t *)&retry_timer)) {
		uv_close((uv_handle_t *)&retry_timer, timer_closed);
		uv_close((uv_handle_t *)&sd->hb_timer, timer_closed);
	}
	foreign_stop(sd);
}
