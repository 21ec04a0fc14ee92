/* metad.h: the ombra-metad daemon context shared by its modules, and the
 * leader-only soft state of storage nodes (health.c).
 *
 * Threads: struct metad and everything it points to belong to the loop
 * thread; the HTTP thread only touches the metrics registry and
 * raftnode_health().  Failure: the functions here report OMBRA_E* codes with
 * errmsg; none of them exits. */
#ifndef OMBRA_METAD_METAD_H
#define OMBRA_METAD_METAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common.pb-c.h"
#include "config.h"

struct fsm;
struct raftnode;
struct rpc_server;
struct http_server;
struct metrics_registry;
struct health;
struct watch_hub;
struct service_table;

struct metad {
	uv_loop_t *loop;
	struct metad_config *cfg;
	const char *version; /* static */
	struct fsm *fsm;
	struct raftnode *rn;
	struct rpc_server *rpc;
	struct http_server *http;
	struct metrics_registry *metrics;
	struct health *health;
	struct watch_hub *watch;
	struct service_table *services; /* service.c */
	bool stopping;
};

/* ---- health.c: storage node liveness, on the leader only.
 *
 * Soft state (DESIGN.md): the last heartbeat of every node, kept in memory
 * on the leader and reset when leadership is gained.  Every second the
 * leader marks NODE_UP nodes whose last heartbeat (or, as a grace period,
 * the start of its leadership) is older than node_timeout_ms as NODE_DOWN,
 * and NODE_DOWN nodes with a fresh heartbeat as NODE_UP, each by proposing
 * CmdSetNodeState. */

/* Start the one-second check timer.  Returns 0 or OMBRA_ENOMEM. */
int health_create(struct metad *md, struct health **out, char *errmsg);

/* Close the timer and free h (asynchronously, on the loop). */
void health_close(struct health *h);

/* Leadership gained (reset the soft state, start the grace period) or
 * lost (drop it). */
void health_set_leader(struct health *h, bool is_leader);

/* Record a heartbeat of node_id now, with its tiers' current usage (not
 * owned; copied as a byte sum).  Returns 0 or OMBRA_ENOMEM. */
int health_heartbeat(struct health *h, uint64_t node_id,
		     Ombra__V1__Tier *const *tiers, size_t n_tiers);

/* Milliseconds since node_id's last heartbeat on this leader; 0 when none
 * was received (unknown).  *used_bytes (may be NULL) gets the reported
 * usage and is left alone when unknown. */
uint64_t health_heartbeat_age(struct health *h, uint64_t node_id,
			      uint64_t *used_bytes);

/* Fill last_heartbeat_ms_ago (and used_bytes when known) of nodes from the
 * soft state. */
void health_annotate(struct health *h, Ombra__V1__Node *const *nodes, size_t n);

#endif
