/* fsm_apply_place.c: the placement commands of the state machine:
 * CmdSetPlacement (store or clear an exception, checked against the nodes
 * and the volume) and the removal of a deleted volume's exceptions.  Run
 * inside the applying transaction of fsm_apply_command().
 *
 * Failure: a bad exception (no primary, unknown node, duplicate replica,
 * segment beyond the volume) is refused in the result; LMDB errors are
 * OMBRA_EIO with errmsg. */
#include <grpc/status.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fsm_internal.h"

/* Delete every placement exception of a volume. */
int fsm_delete_placements(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
			  char *errmsg)
{
	uint8_t kb[16];
	MDB_cursor *cur;
	MDB_val k = {sizeof(kb), kb};
	MDB_val v;
	int rc;
	int rv = 0;

	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_PLACEMENTS], &cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_cursor_open");
	for (;;) {
		/* Seek again after each delete: simple and always valid. */
		fsm_placement_key(kb, volume_id, 0);
		k.mv_size = sizeof(kb);
		k.mv_data = kb;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size != 16 ||
		    fsm_u64_decode(k.mv_data) != volume_id)
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc != 0)
			break;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "delete placements");
	mdb_cursor_close(cur);
	return rv;
}

/* Every node named by an exception must exist; replicas distinct and not
 * the primary.  Returns 0 (res set on refusal) or OMBRA_EIO. */
static int fsm_check_placement_nodes(struct fsm *f, MDB_txn *txn,
				     const Ombra__V1__SegmentPlacement *p,
				     struct fsm_result *res, bool *ok,
				     char *errmsg)
{
	size_t n = 1 + p->n_replica_node_ids + p->n_shadows;
	size_t i;
	size_t j;

	*ok = false;
	if (p->primary_node_id == 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				  "placement of segment %" PRIu64 " has no "
				  "primary node",
				  p->index);
	for (i = 0; i < p->n_replica_node_ids; i++) {
		uint64_t a = p->replica_node_ids[i];

		if (a == p->primary_node_id)
			return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
					  "node %" PRIu64 " is both primary "
					  "and replica of segment %" PRIu64,
					  a, p->index);
		for (j = 0; j < i; j++) {
			if (p->replica_node_ids[j] == a)
				return fsm_refuse(
				    res, GRPC_STATUS_INVALID_ARGUMENT,
				    "node %" PRIu64 " is listed twice as "
				    "replica of segment %" PRIu64,
				    a, p->index);
		}
	}
	for (i = 0; i < n; i++) {
		uint8_t kb[8];
		MDB_val k = {sizeof(kb), kb};
		MDB_val v;
		uint64_t id;
		int rc;

		if (i == 0)
			id = p->primary_node_id;
		else if (i <= p->n_replica_node_ids)
			id = p->replica_node_ids[i - 1];
		else if (p->shadows[i - 1 - p->n_replica_node_ids] != NULL)
			id = p->shadows[i - 1 - p->n_replica_node_ids]->node_id;
		else
			return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
					  "empty shadow in placement");
		fsm_u64_encode(kb, id);
		rc = mdb_get(txn, f->dbi[FSM_DB_NODES], &k, &v);
		if (rc == MDB_NOTFOUND)
			return fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
					  "node %" PRIu64 " named by the "
					  "placement of segment %" PRIu64
					  " does not exist",
					  id, p->index);
		if (rc != 0)
			return fsm_lmdb_error(errmsg, rc, "mdb_get nodes");
	}
	*ok = true;
	return 0;
}

/* The lease epoch of an overriding placement never goes back, and a new
 * primary fences the old one: epoch = max(given, current + (primary
 * changed ? 1 : 0)). */
static int fsm_set_placement_epoch(struct fsm *f, MDB_txn *txn,
				   const Ombra__V1__Volume *vol,
				   Ombra__V1__SegmentPlacement *p, char *errmsg)
{
	struct fsm_region_nodes rn;
	Ombra__V1__SegmentPlacement *cur = NULL;
	uint64_t floor;
	int rv;

	rv = fsm_region_nodes_load(f, txn, vol->home_region, &rn, errmsg);
	if (rv == 0)
		rv =
		    fsm_place_current(f, txn, vol, p->index, &rn, &cur, errmsg);
	if (rv == 0) {
		floor = cur->lease_epoch +
			(cur->primary_node_id != p->primary_node_id ? 1 : 0);
		if (p->lease_epoch < floor)
			p->lease_epoch = floor;
		protobuf_c_message_free_unpacked(&cur->base, NULL);
	}
	fsm_region_nodes_free(&rn);
	return rv;
}

int fsm_apply_set_placement(struct fsm *f, MDB_txn *txn,
			    const Ombra__V1__CmdSetPlacement *c,
			    struct fsm_result *res, struct fsm_change *ch,
			    char *errmsg)
{
	Ombra__V1__SegmentPlacement p;
	ProtobufCMessage *m = NULL;
	Ombra__V1__Volume *vol;
	uint8_t kb[16];
	MDB_val k = {sizeof(kb), kb};
	bool ok;
	int rv;

	if (c->placement == NULL)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				  "set placement of volume %" PRIu64 " carries "
				  "no placement",
				  c->volume_id);
	rv = fsm_id_get(f, txn, FSM_DB_VOLUMES, c->volume_id,
			&ombra__v1__volume__descriptor, &m, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
				  "volume %" PRIu64 " does not exist",
				  c->volume_id);
	if (rv != 0)
		return rv;
	vol = (Ombra__V1__Volume *)m;
	res->object_id = vol->id;
	if (c->placement->index >= vol->segment_count) {
		fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
			   "segment %" PRIu64 " is beyond volume '%s' which "
			   "has %" PRIu64 " segments",
			   c->placement->index, vol->name, vol->segment_count);
		goto out;
	}
	fsm_placement_key(kb, vol->id, c->placement->index);
	if (c->clear) {
		rv = fsm_del_key(f, txn, FSM_DB_PLACEMENTS, kb, sizeof(kb),
				 errmsg);
		if (rv == 0) {
			fsm_changed(ch, "placement", vol->name, true);
			fsm_audit_placement_cleared(f, vol->id,
						    c->placement->index);
		}
		goto out;
	}
	rv = fsm_check_placement_nodes(f, txn, c->placement, res, &ok, errmsg);
	if (rv != 0 || !ok)
		goto out;
	p = *c->placement;
	p.exception = true;
	rv = fsm_set_placement_epoch(f, txn, vol, &p, errmsg);
	if (rv == 0)
		rv = fsm_pb_put(f, txn, FSM_DB_PLACEMENTS, &k, &p.base, errmsg);
	if (rv == 0) {
		fsm_changed(ch, "placement", vol->name, false);
		fsm_audit_placement(f, vol->id, &p);
	}
out:
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	return rv;
}
