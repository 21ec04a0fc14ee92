/* fsm_lease.c: placement maintenance behind the write leases (DESIGN.md
 * "Leases"), applied inside the transaction of the command that causes it:
 *
 * - a node set DOWN leaves the in-sync set of every segment it holds
 *   (resync_node_ids gets it); where it was primary, the first in-sync
 *   replica is promoted with lease_epoch + 1, the fencing token that makes
 *   stored refuse the old primary's writes (an only copy stays primary:
 *   the segment is unavailable until the node returns);
 * - a new or grown volume gets the same treatment for nodes already DOWN;
 * - when the region's node set changes (a node registers, a capacity
 *   changes) the old computed placement of every segment it would move is
 *   pinned as an exception, so a segment never lands on a node without its
 *   data (a segment short of copies gets the new nodes as resync targets);
 * - CmdReplicaChange: the primary reports a replica failed or re-synced,
 *   fenced by (lease_epoch, primary).
 *
 * Everything is a function of the FSM state only (deterministic on every
 * member).  Cost: each walk visits every segment of the volumes concerned,
 * O(segments * region nodes * replicas) in the applying thread plus one
 * exception write per segment changed (docs/metad.md has measurements:
 * 0.3 s for a node DOWN over 100 000 segments in the debug build).
 *
 * Failure: refusals (unknown volume or node, stale epoch, wrong primary)
 * are recorded in the result; OMBRA_ENOMEM / OMBRA_EIO abort the command. */
#include <grpc/status.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsm_internal.h"

/* Changes one segment's placement; *changed = true to store it. */
typedef int (*lease_seg_fn)(Ombra__V1__SegmentPlacement *p, void *arg,
			    bool *changed);

/* Visit segments [first, segment_count) of vol with their current
 * placement (computed over rn) and store those fn changed. */
static int lease_walk(struct fsm *f, MDB_txn *txn, const Ombra__V1__Volume *vol,
		      uint64_t first, const struct fsm_region_nodes *rn,
		      lease_seg_fn fn, void *arg, struct fsm_change *ch,
		      char *errmsg)
{
	bool any = false;
	uint64_t s;
	int rv = 0;

	for (s = first; rv == 0 && s < vol->segment_count; s++) {
		Ombra__V1__SegmentPlacement *p = NULL;
		bool changed = false;

		rv = fsm_place_current(f, txn, vol, s, rn, &p, errmsg);
		if (rv != 0)
			break;
		rv = fn(p, arg, &changed);
		if (rv == OMBRA_ENOMEM)
			ombra_errmsg_printf(errmsg, "out of memory");
		if (rv == 0 && changed) {
			rv = fsm_place_put(f, txn, vol->id, p, errmsg);
			any = true;
		}
		protobuf_c_message_free_unpacked(&p->base, NULL);
	}
	if (rv == 0 && any)
		fsm_changed(ch, "placement", vol->name, false);
	return rv;
}

/* Every volume homed in region, walked from segment 0. */
static int lease_walk_region(struct fsm *f, MDB_txn *txn, const char *region,
			     const struct fsm_region_nodes *rn, lease_seg_fn fn,
			     void *arg, struct fsm_change *ch, char *errmsg)
{
	struct fsm_vec vols = {NULL, 0, 0};
	size_t i;
	int rv;

	rv = fsm_scan(f, txn, FSM_DB_VOLUMES, &ombra__v1__volume__descriptor,
		      fsm_keep_volume_region, region, &vols, errmsg);
	for (i = 0; rv == 0 && i < vols.n; i++)
		rv =
		    lease_walk(f, txn, (const Ombra__V1__Volume *)vols.items[i],
			       0, rn, fn, arg, ch, errmsg);
	fsm_free_list(vols.items, vols.n);
	return rv;
}

/* ---- eviction of failed nodes ---- */

/* Every DOWN node of the region is evicted, not only the one that just
 * failed: under the invariant the others hold no in-sync copy any more,
 * and should an exception name one (SetPlacement), it is never promoted. */
static bool lease_evicted(const struct fsm_region_nodes *rn, uint64_t id)
{
	return fsm_region_node_state(rn, id) ==
	       OMBRA__V1__NODE_STATE__NODE_DOWN;
}

static int lease_evict_seg(Ombra__V1__SegmentPlacement *p, void *arg,
			   bool *changed)
{
	const struct fsm_region_nodes *e = arg;
	size_t keep = 0;
	size_t i;

	for (i = 0; i < p->n_replica_node_ids; i++) {
		uint64_t id = p->replica_node_ids[i];

		if (!lease_evicted(e, id)) {
			p->replica_node_ids[keep++] = id;
			continue;
		}
		if (fsm_ids_add(&p->resync_node_ids, &p->n_resync_node_ids,
				id) != 0)
			return OMBRA_ENOMEM;
		*changed = true;
	}
	p->n_replica_node_ids = keep;
	if (p->primary_node_id == 0 || !lease_evicted(e, p->primary_node_id) ||
	    p->n_replica_node_ids == 0)
		return 0; /* healthy primary, or the only copy: it stays */
	if (fsm_ids_add(&p->resync_node_ids, &p->n_resync_node_ids,
			p->primary_node_id) != 0)
		return OMBRA_ENOMEM;
	p->primary_node_id = p->replica_node_ids[0];
	memmove(p->replica_node_ids, p->replica_node_ids + 1,
		(p->n_replica_node_ids - 1) * sizeof(*p->replica_node_ids));
	p->n_replica_node_ids--;
	p->lease_epoch = (p->lease_epoch == 0 ? 1 : p->lease_epoch) + 1;
	*changed = true;
	return 0;
}

int fsm_lease_node_down(struct fsm *f, MDB_txn *txn, const char *region,
			uint64_t node_id, struct fsm_change *ch, char *errmsg)
{
	struct fsm_region_nodes rn;
	int rv;

	/* Loaded after the state change: node_id is DOWN in rn. */
	rv = fsm_region_nodes_load(f, txn, region, &rn, errmsg);
	if (rv == 0 && lease_evicted(&rn, node_id))
		rv = lease_walk_region(f, txn, region, &rn, lease_evict_seg,
				       &rn, ch, errmsg);
	fsm_region_nodes_free(&rn);
	return rv;
}

int fsm_lease_evict_down(struct fsm *f, MDB_txn *txn,
			 const Ombra__V1__Volume *vol, uint64_t first,
			 struct fsm_change *ch, char *errmsg)
{
	struct fsm_region_nodes rn;
	bool any_down = false;
	size_t i;
	int rv;

	rv = fsm_region_nodes_load(f, txn, vol->home_region, &rn, errmsg);
	for (i = 0; rv == 0 && i < rn.n; i++)
		any_down |= rn.state[i] == OMBRA__V1__NODE_STATE__NODE_DOWN;
	if (rv == 0 && any_down)
		rv = lease_walk(f, txn, vol, first, &rn, lease_evict_seg, &rn,
				ch, errmsg);
	fsm_region_nodes_free(&rn);
	return rv;
}

/* Position of id in ids[0..n), or n. */
static size_t lease_find(const uint64_t *ids, size_t n, uint64_t id)
{
	size_t i;

	for (i = 0; i < n && ids[i] != id; i++)
		;
	return i;
}

/* ---- pinning when the node set changes ---- */

struct lease_pin {
	const struct fsm_region_nodes *after;
	uint64_t volume_id;
	uint32_t replicas;
};

static bool lease_same_nodes(const struct fsm_region_nodes *a,
			     const struct fsm_region_nodes *b)
{
	size_t i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++) {
		if (a->pn[i].id != b->pn[i].id ||
		    a->pn[i].weight != b->pn[i].weight)
			return false;
	}
	return true;
}

/* Does p (primary + replicas) list exactly ids[0..n) in that order? */
static bool lease_same_copies(const Ombra__V1__SegmentPlacement *p,
			      const uint64_t *ids, size_t n)
{
	size_t i;

	if (n != 1 + p->n_replica_node_ids)
		return false;
	for (i = 0; i < n; i++) {
		if (ids[i] !=
		    (i == 0 ? p->primary_node_id : p->replica_node_ids[i - 1]))
			return false;
	}
	return true;
}

/* p: the computed placement over the old node set (or an exception, which
 * the node set does not affect).  If the new set computes another one, p
 * is stored as it is (pinned); a segment short of copies (the region had
 * fewer nodes than the volume's replicas) also gets the new set's extra
 * nodes as resync targets, which its primary fills and reports synced. */
static int lease_pin_seg(Ombra__V1__SegmentPlacement *p, void *arg,
			 bool *changed)
{
	const struct lease_pin *pin = arg;
	uint64_t now[CMD_REPLICAS_MAX];
	uint32_t k =
	    pin->replicas > CMD_REPLICAS_MAX ? CMD_REPLICAS_MAX : pin->replicas;
	size_t have;
	size_t got;
	size_t i;

	/* A segment that had no node at all holds no data and may go
	 * wherever it is computed. */
	if (p->exception || p->primary_node_id == 0)
		return 0;
	got = placement_pick(pin->after->pn, pin->after->n, pin->volume_id,
			     p->index, k, now);
	if (lease_same_copies(p, now, got))
		return 0;
	*changed = true;
	have = 1 + p->n_replica_node_ids;
	for (i = 0; i < got && have < k; i++) {
		if (now[i] == p->primary_node_id ||
		    lease_find(p->replica_node_ids, p->n_replica_node_ids,
			       now[i]) < p->n_replica_node_ids)
			continue;
		if (fsm_ids_add(&p->resync_node_ids, &p->n_resync_node_ids,
				now[i]) != 0)
			return OMBRA_ENOMEM;
		have++;
	}
	return 0;
}

int fsm_lease_pin(struct fsm *f, MDB_txn *txn, const char *region,
		  const struct fsm_region_nodes *before, struct fsm_change *ch,
		  char *errmsg)
{
	struct fsm_vec vols = {NULL, 0, 0};
	struct fsm_region_nodes after;
	struct lease_pin pin;
	size_t i;
	int rv;

	rv = fsm_region_nodes_load(f, txn, region, &after, errmsg);
	if (rv != 0 || lease_same_nodes(before, &after))
		goto out;
	rv = fsm_scan(f, txn, FSM_DB_VOLUMES, &ombra__v1__volume__descriptor,
		      fsm_keep_volume_region, region, &vols, errmsg);
	for (i = 0; rv == 0 && i < vols.n; i++) {
		const Ombra__V1__Volume *vol =
		    (const Ombra__V1__Volume *)vols.items[i];

		pin.after = &after;
		pin.volume_id = vol->id;
		pin.replicas = vol->replicas;
		rv = lease_walk(f, txn, vol, 0, before, lease_pin_seg, &pin, ch,
				errmsg);
	}
	fsm_free_list(vols.items, vols.n);
out:
	fsm_region_nodes_free(&after);
	return rv;
}

/* ---- replica reports ---- */

static void lease_remove_at(uint64_t *ids, size_t *n, size_t at)
{
	memmove(ids + at, ids + at + 1, (*n - at - 1) * sizeof(*ids));
	(*n)--;
}

/* Apply the report to p (its fencing already checked).  Returns 0 with
 * res set on refusal, OMBRA_ENOMEM. */
static int lease_report(Ombra__V1__SegmentPlacement *p,
			const Ombra__V1__CmdReplicaChange *c,
			const Ombra__V1__Node *node, const char *volume,
			struct fsm_result *res, bool *changed)
{
	size_t r =
	    lease_find(p->replica_node_ids, p->n_replica_node_ids, c->node_id);
	size_t s =
	    lease_find(p->resync_node_ids, p->n_resync_node_ids, c->node_id);
	bool in_sync = r < p->n_replica_node_ids;
	bool resyncing = s < p->n_resync_node_ids;

	if (!in_sync && !resyncing)
		return fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
				  "node %" PRIu64 " holds no copy of segment "
				  "%" PRIu64 " of volume '%s' (neither "
				  "in-sync replica nor resyncing)",
				  c->node_id, c->segment_index, volume);
	if (!c->synced) {
		if (!in_sync)
			return 0; /* already removed */
		lease_remove_at(p->replica_node_ids, &p->n_replica_node_ids, r);
		if (fsm_ids_add(&p->resync_node_ids, &p->n_resync_node_ids,
				c->node_id) != 0)
			return OMBRA_ENOMEM;
		*changed = true;
		return 0;
	}
	if (in_sync)
		return 0; /* already back */
	if (node->state != OMBRA__V1__NODE_STATE__NODE_UP)
		return fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
				  "node %" PRIu64 " is not UP; it rejoins the "
				  "in-sync set of segment %" PRIu64
				  " of volume '%s' once it heartbeats again",
				  c->node_id, c->segment_index, volume);
	lease_remove_at(p->resync_node_ids, &p->n_resync_node_ids, s);
	if (fsm_ids_add(&p->replica_node_ids, &p->n_replica_node_ids,
			c->node_id) != 0)
		return OMBRA_ENOMEM;
	*changed = true;
	return 0;
}

int fsm_lease_replica_change(struct fsm *f, MDB_txn *txn,
			     const Ombra__V1__CmdReplicaChange *c,
			     struct fsm_result *res, struct fsm_change *ch,
			     char *errmsg)
{
	struct fsm_region_nodes rn = {NULL, NULL, 0};
	Ombra__V1__SegmentPlacement *p = NULL;
	ProtobufCMessage *vm = NULL;
	ProtobufCMessage *nm = NULL;
	Ombra__V1__Volume *vol;
	bool changed = false;
	int rv;

	if (cmd_validate_replica_change(c, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	rv = fsm_id_get(f, txn, FSM_DB_VOLUMES, c->volume_id,
			&ombra__v1__volume__descriptor, &vm, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
				  "volume %" PRIu64 " does not exist",
				  c->volume_id);
	if (rv != 0)
		return rv;
	vol = (Ombra__V1__Volume *)vm;
	res->object_id = vol->id;
	if (c->segment_index >= vol->segment_count) {
		fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
			   "segment %" PRIu64 " does not exist: volume '%s' "
			   "has %" PRIu64 " segments",
			   c->segment_index, vol->name, vol->segment_count);
		goto out;
	}
	rv = fsm_id_get(f, txn, FSM_DB_NODES, c->node_id,
			&ombra__v1__node__descriptor, &nm, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		rv = fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
				"node %" PRIu64 " does not exist", c->node_id);
		goto out;
	}
	if (rv != 0)
		goto out;
	rv = fsm_region_nodes_load(f, txn, vol->home_region, &rn, errmsg);
	if (rv == 0)
		rv = fsm_place_current(f, txn, vol, c->segment_index, &rn, &p,
				       errmsg);
	if (rv != 0)
		goto out;
	if (p->lease_epoch != c->lease_epoch) {
		fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
			   "stale epoch %" PRIu64 " for segment %" PRIu64
			   " of volume '%s': its lease epoch is %" PRIu64
			   " (primary node %" PRIu64 "); refetch the shard map",
			   c->lease_epoch, c->segment_index, vol->name,
			   p->lease_epoch, p->primary_node_id);
		goto out;
	}
	if (p->primary_node_id != c->primary_node_id) {
		fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
			   "node %" PRIu64 " is not the primary of segment "
			   "%" PRIu64 " of volume '%s' (node %" PRIu64 " is)",
			   c->primary_node_id, c->segment_index, vol->name,
			   p->primary_node_id);
		goto out;
	}
	rv = lease_report(p, c, (const Ombra__V1__Node *)nm, vol->name, res,
			  &changed);
	if (rv == OMBRA_ENOMEM)
		ombra_errmsg_printf(errmsg, "out of memory");
	if (rv == 0 && changed) {
		rv = fsm_place_put(f, txn, vol->id, p, errmsg);
		if (rv == 0)
			fsm_changed(ch, "placement", vol->name, false);
	}
out:
	if (p != NULL)
		protobuf_c_message_free_unpacked(&p->base, NULL);
	if (nm != NULL)
		protobuf_c_message_free_unpacked(nm, NULL);
	protobuf_c_message_free_unpacked(vm, NULL);
	fsm_region_nodes_free(&rn);
	return rv;
}
