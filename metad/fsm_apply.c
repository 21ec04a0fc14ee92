/* fsm_apply.c: applying one MetaCommand to the LMDB state, in one write
 * transaction together with the applied index and the deduplication
 * record of its request_id.
 *
 * Determinism: every member applies the same log, so nothing here reads a
 * clock, a random source or local configuration; ids come from counters in
 * the meta DB and times from cmd->time_unix_ms (stamped by the leader).
 *
 * Failure: a command the state does not allow (duplicate name, unknown
 * region, shrinking a volume, malformed entry) is *refused*: the result
 * carries the gRPC code and message, and the applied index still advances.
 * Only LMDB failures are errors (OMBRA_EIO), after which nothing of the
 * command is stored. */
#include <grpc/status.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsm_internal.h"

int fsm_refuse(struct fsm_result *res, int code, const char *fmt, ...)
{
	va_list ap;

	res->code = code;
	va_start(ap, fmt);
	vsnprintf(res->message, sizeof(res->message), fmt, ap);
	va_end(ap);
	return 0;
}

void fsm_changed(struct fsm_change *ch, const char *kind, const char *name,
		 bool deleted)
{
	struct fsm_change_ev *ev;
	size_t i;

	for (i = 0; i < ch->n; i++) {
		if (strcmp(ch->ev[i].kind, kind) == 0 &&
		    strcmp(ch->ev[i].name, name) == 0)
			return;
	}
	if (ch->n == ch->cap) {
		size_t cap = ch->cap == 0 ? 4 : ch->cap * 2;

		ev = realloc(ch->ev, cap * sizeof(*ev));
		if (ev == NULL) {
			ch->oom = true;
			return;
		}
		ch->ev = ev;
		ch->cap = cap;
	}
	ev = &ch->ev[ch->n++];
	ev->kind = kind;
	snprintf(ev->name, sizeof(ev->name), "%s", name);
	ev->deleted = deleted;
}

/* Does any event change what shard maps say (NodeHeartbeat map_index)? */
static bool fsm_change_touches_map(const struct fsm_change *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++) {
		if (strcmp(ch->ev[i].kind, "volume") == 0 ||
		    strcmp(ch->ev[i].kind, "node") == 0 ||
		    strcmp(ch->ev[i].kind, "placement") == 0)
			return true;
	}
	return false;
}

static void fsm_free_msg(void *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

/* Next id from a meta counter (first id is 1). */
static int fsm_next_id(struct fsm *f, MDB_txn *txn, const char *key,
		       uint64_t *id, char *errmsg)
{
	uint64_t last;
	int rv;

	rv = fsm_meta_get(f, txn, key, &last, errmsg);
	if (rv != 0)
		return rv;
	*id = last + 1;
	return fsm_meta_put(f, txn, key, *id, errmsg);
}

static int fsm_region_exists(struct fsm *f, MDB_txn *txn, const char *name,
			     bool *exists, char *errmsg)
{
	MDB_val k = {strlen(name), (void *)name};
	MDB_val v;
	int rc;

	rc = mdb_get(txn, f->dbi[FSM_DB_REGIONS], &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return fsm_lmdb_error(errmsg, rc, "mdb_get regions");
	*exists = rc == 0;
	return 0;
}

static int fsm_refuse_no_region(struct fsm_result *res, const char *region)
{
	return fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
			  "region '%s' does not exist; add it with `ombractl "
			  "region add %s`",
			  region, region);
}

static int fsm_put_name(struct fsm *f, MDB_txn *txn, enum fsm_db db,
			const char *name, uint64_t id, char *errmsg)
{
	uint8_t buf[8];
	MDB_val k = {strlen(name), (void *)name};
	MDB_val v = {sizeof(buf), buf};
	int rc;

	fsm_u64_encode(buf, id);
	rc = mdb_put(txn, f->dbi[db], &k, &v, 0);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_put name");
	return 0;
}

int fsm_del_key(struct fsm *f, MDB_txn *txn, enum fsm_db db, const void *key,
		size_t len, char *errmsg)
{
	MDB_val k = {len, (void *)key};
	int rc;

	rc = mdb_del(txn, f->dbi[db], &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		fsm_lmdb_error(errmsg, rc, "mdb_del");
		ombra_errmsg_wrapf(errmsg, "%s", fsm_db_names[db]);
		return OMBRA_EIO;
	}
	return 0;
}

static int fsm_put_id(struct fsm *f, MDB_txn *txn, enum fsm_db db, uint64_t id,
		      const ProtobufCMessage *m, char *errmsg)
{
	uint8_t kb[8];
	MDB_val k = {sizeof(kb), kb};

	fsm_u64_encode(kb, id);
	return fsm_pb_put(f, txn, db, &k, m, errmsg);
}

static int fsm_apply_add_region(struct fsm *f, MDB_txn *txn, uint64_t now_ms,
				const Ombra__V1__CmdAddRegion *c,
				struct fsm_result *res, struct fsm_change *ch,
				char *errmsg)
{
	Ombra__V1__Region region = OMBRA__V1__REGION__INIT;
	MDB_val k;
	bool exists;
	int rv;

	if (cmd_validate_name("region", c->name, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	rv = fsm_region_exists(f, txn, c->name, &exists, errmsg);
	if (rv != 0)
		return rv;
	if (exists)
		return fsm_refuse(res, GRPC_STATUS_ALREADY_EXISTS,
				  "region '%s' already exists", c->name);
	region.name = c->name;
	region.created_unix_ms = now_ms;
	k.mv_size = strlen(c->name);
	k.mv_data = c->name;
	rv = fsm_pb_put(f, txn, FSM_DB_REGIONS, &k, &region.base, errmsg);
	if (rv != 0)
		return rv;
	fsm_changed(ch, "region", c->name, false);
	return 0;
}

/* Sum of tier capacities and usages (validated not to overflow). */
static void fsm_tier_sums(Ombra__V1__Tier *const *tiers, size_t n,
			  uint64_t *capacity, uint64_t *used)
{
	size_t i;

	*capacity = 0;
	*used = 0;
	for (i = 0; i < n; i++) {
		*capacity += tiers[i]->capacity_bytes;
		if (tiers[i]->used_bytes <= UINT64_MAX - *used)
			*used += tiers[i]->used_bytes;
	}
}

static int fsm_apply_register_node(struct fsm *f, MDB_txn *txn, uint64_t now_ms,
				   const Ombra__V1__CmdRegisterNode *c,
				   struct fsm_result *res,
				   struct fsm_change *ch, char *errmsg)
{
	Ombra__V1__Node fresh = OMBRA__V1__NODE__INIT;
	struct fsm_region_nodes before = {NULL, NULL, 0};
	ProtobufCMessage *old = NULL;
	Ombra__V1__Node node;
	uint64_t id;
	bool exists;
	int rv;

	if (cmd_validate_register_node(c, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	rv = fsm_region_exists(f, txn, c->region, &exists, errmsg);
	if (rv != 0)
		return rv;
	if (!exists)
		return fsm_refuse_no_region(res, c->region);
	rv = fsm_name_get(f, txn, FSM_DB_NODE_NAMES, c->name, &id, errmsg);
	if (rv != 0 && rv != OMBRA_ENOTFOUND)
		return rv;
	if (rv == 0) {
		rv = fsm_id_get(f, txn, FSM_DB_NODES, id,
				&ombra__v1__node__descriptor, &old, errmsg);
		if (rv == OMBRA_ENOTFOUND) {
			ombra_errmsg_printf(errmsg,
					    "node '%s' names id %" PRIu64
					    " which has no record",
					    c->name, id);
			return OMBRA_EIO;
		}
		if (rv != 0)
			return rv;
		/* Shallow copy: only fields that point into c are changed. */
		node = *(Ombra__V1__Node *)old;
		if (strcmp(node.region, c->region) != 0) {
			fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
				   "node '%s' is registered in region '%s'; "
				   "a node cannot move to region '%s': "
				   "register it under a new name",
				   c->name, node.region, c->region);
			fsm_free_msg(old);
			return 0;
		}
	} else {
		rv = fsm_next_id(f, txn, FSM_KEY_NEXT_NODE, &id, errmsg);
		if (rv != 0)
			return rv;
		rv = fsm_put_name(f, txn, FSM_DB_NODE_NAMES, c->name, id,
				  errmsg);
		if (rv != 0)
			return rv;
		node = fresh;
		node.id = id;
		node.name = c->name;
		node.region = c->region;
		node.state = OMBRA__V1__NODE_STATE__NODE_UP;
		node.registered_unix_ms = now_ms;
	}
	node.address = c->address;
	node.n_tiers = c->n_tiers;
	node.tiers = c->tiers;
	node.last_heartbeat_ms_ago = 0;
	fsm_tier_sums(c->tiers, c->n_tiers, &node.capacity_bytes,
		      &node.used_bytes);
	/* The region's node set before, to pin what the change would move. */
	rv = fsm_region_nodes_load(f, txn, c->region, &before, errmsg);
	if (rv == 0)
		rv = fsm_put_id(f, txn, FSM_DB_NODES, id, &node.base, errmsg);
	fsm_free_msg(old);
	if (rv == 0) {
		res->object_id = id;
		fsm_changed(ch, "node", c->name, false);
		rv = fsm_lease_pin(f, txn, c->region, &before, ch, errmsg);
	}
	fsm_region_nodes_free(&before);
	return rv;
}

static int fsm_apply_set_node_state(struct fsm *f, MDB_txn *txn,
				    const Ombra__V1__CmdSetNodeState *c,
				    struct fsm_result *res,
				    struct fsm_change *ch, char *errmsg)
{
	ProtobufCMessage *m = NULL;
	Ombra__V1__Node *node;
	int rv;

	if (c->state < OMBRA__V1__NODE_STATE__NODE_UP ||
	    c->state > OMBRA__V1__NODE_STATE__NODE_DRAINING)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				  "node state %d is not one of UP (1), DOWN "
				  "(2), DRAINING (3)",
				  (int)c->state);
	rv = fsm_id_get(f, txn, FSM_DB_NODES, c->node_id,
			&ombra__v1__node__descriptor, &m, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
				  "node %" PRIu64 " does not exist; list nodes "
				  "with `ombractl node list`",
				  c->node_id);
	if (rv != 0)
		return rv;
	node = (Ombra__V1__Node *)m;
	res->object_id = node->id;
	if (node->state != c->state) {
		node->state = c->state;
		rv = fsm_put_id(f, txn, FSM_DB_NODES, node->id, m, errmsg);
		if (rv == 0) {
			fsm_changed(ch, "node", node->name, false);
			fsm_audit_node_state(f, node->id, c->state);
		}
		/* Failover: the node leaves every in-sync set it is in. */
		if (rv == 0 && c->state == OMBRA__V1__NODE_STATE__NODE_DOWN)
			rv = fsm_lease_node_down(f, txn, node->region, node->id,
						 ch, errmsg);
		if (rv == 0 && c->state == OMBRA__V1__NODE_STATE__NODE_DOWN)
			rv = fsm_promote_node_down(f, txn, node->region,
						   node->id, ch, errmsg);
	}
	fsm_free_msg(m);
	return rv;
}

static int fsm_apply_create_volume(struct fsm *f, MDB_txn *txn, uint64_t index,
				   uint64_t now_ms,
				   const Ombra__V1__CmdCreateVolume *cmd,
				   struct fsm_result *res,
				   struct fsm_change *ch, char *errmsg)
{
	Ombra__V1__CmdCreateVolume c = *cmd; /* validator fills defaults */
	Ombra__V1__Volume vol = OMBRA__V1__VOLUME__INIT;
	uint64_t id;
	bool exists;
	int rv;

	if (cmd_validate_create_volume(&c, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	rv = fsm_region_exists(f, txn, c.home_region, &exists, errmsg);
	if (rv != 0)
		return rv;
	if (!exists)
		return fsm_refuse_no_region(res, c.home_region);
	rv = fsm_name_get(f, txn, FSM_DB_VOLUME_NAMES, c.name, &id, errmsg);
	if (rv == 0) {
		res->object_id = id;
		return fsm_refuse(res, GRPC_STATUS_ALREADY_EXISTS,
				  "volume '%s' already exists (id %" PRIu64
				  "); pick another name or delete it first",
				  c.name, id);
	}
	if (rv != OMBRA_ENOTFOUND)
		return rv;
	rv = fsm_next_id(f, txn, FSM_KEY_NEXT_VOLUME, &id, errmsg);
	if (rv != 0)
		return rv;
	vol.id = id;
	vol.name = c.name;
	vol.size_bytes = c.size_bytes;
	vol.segment_size_bytes = c.segment_size_bytes;
	vol.block_size_bytes = CMD_BLOCK_SIZE;
	vol.home_region = c.home_region;
	vol.replicas = c.replicas;
	vol.state = OMBRA__V1__VOLUME_STATE__VOLUME_ACTIVE;
	vol.created_unix_ms = now_ms;
	vol.modified_index = index;
	vol.segment_count =
	    fsm_segment_count(c.size_bytes, c.segment_size_bytes);
	rv = fsm_put_id(f, txn, FSM_DB_VOLUMES, id, &vol.base, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_put_name(f, txn, FSM_DB_VOLUME_NAMES, c.name, id, errmsg);
	if (rv != 0)
		return rv;
	res->object_id = id;
	fsm_changed(ch, "volume", c.name, false);
	fsm_audit_volume_created(f, &vol);
	/* Never a DOWN primary or replica in a new volume. */
	return fsm_lease_evict_down(f, txn, &vol, 0, ch, errmsg);
}

static int fsm_apply_resize_volume(struct fsm *f, MDB_txn *txn, uint64_t index,
				   const Ombra__V1__CmdResizeVolume *c,
				   struct fsm_result *res,
				   struct fsm_change *ch, char *errmsg)
{
	Ombra__V1__Volume *vol = NULL;
	uint64_t old_count;
	int rv;

	if (cmd_validate_resize_volume(c, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	rv = fsm_volume_by_name(f, txn, c->name, &vol, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND, "%s", errmsg);
	if (rv != 0)
		return rv;
	res->object_id = vol->id;
	if (c->new_size_bytes < vol->size_bytes) {
		fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
			   "volume '%s' is %" PRIu64 " bytes; shrinking to "
			   "%" PRIu64 " bytes is not supported",
			   c->name, vol->size_bytes, c->new_size_bytes);
		goto out;
	}
	if (c->new_size_bytes == vol->size_bytes)
		goto out; /* already that size: nothing to change */
	old_count = vol->segment_count;
	vol->size_bytes = c->new_size_bytes;
	vol->segment_count =
	    fsm_segment_count(vol->size_bytes, vol->segment_size_bytes);
	vol->modified_index = index;
	rv = fsm_put_id(f, txn, FSM_DB_VOLUMES, vol->id, &vol->base, errmsg);
	if (rv == 0) {
		fsm_changed(ch, "volume", c->name, false);
		rv = fsm_lease_evict_down(f, txn, vol, old_count, ch, errmsg);
	}
out:
	fsm_free_msg(vol);
	return rv;
}

static int fsm_apply_delete_volume(struct fsm *f, MDB_txn *txn,
				   const Ombra__V1__CmdDeleteVolume *c,
				   struct fsm_result *res,
				   struct fsm_change *ch, char *errmsg)
{
	Ombra__V1__Volume *vol = NULL;
	uint8_t kb[8];
	int rv;

	if (cmd_validate_name("volume", c->name, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	rv = fsm_volume_by_name(f, txn, c->name, &vol, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND, "%s", errmsg);
	if (rv != 0)
		return rv;
	res->object_id = vol->id;
	fsm_u64_encode(kb, vol->id);
	rv = fsm_del_key(f, txn, FSM_DB_VOLUMES, kb, sizeof(kb), errmsg);
	if (rv == 0)
		rv = fsm_del_key(f, txn, FSM_DB_VOLUME_NAMES, c->name,
				 strlen(c->name), errmsg);
	if (rv == 0)
		rv = fsm_delete_placements(f, txn, vol->id, errmsg);
	if (rv == 0)
		rv = fsm_vlease_delete(f, txn, vol->id, errmsg);
	if (rv == 0)
		rv = fsm_failovers_delete(f, txn, vol->id, errmsg);
	if (rv == 0)
		fsm_changed(ch, "volume", c->name, true);
	fsm_free_msg(vol);
	return rv;
}

static int fsm_apply_add_member(struct fsm *f, MDB_txn *txn,
				const Ombra__V1__CmdAddMember *c,
				struct fsm_result *res, struct fsm_change *ch,
				char *errmsg)
{
	Ombra__V1__MetadMember m = OMBRA__V1__METAD_MEMBER__INIT;
	char name[24];
	int rv;

	if (c->id == 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				  "member id 0 is not allowed; ids start at 1");
	if (c->raft_address == NULL || c->raft_address[0] == '\0')
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				  "member %" PRIu64 " has no Raft address; "
				  "give host:port",
				  c->id);
	/* Re-adding an id updates its addresses (membership changes are
	 * retried by the leader after elections). */
	m.id = c->id;
	m.raft_address = c->raft_address;
	m.grpc_address = c->grpc_address;
	rv = fsm_put_id(f, txn, FSM_DB_MEMBERS, c->id, &m.base, errmsg);
	if (rv != 0)
		return rv;
	res->object_id = c->id;
	snprintf(name, sizeof(name), "%" PRIu64, c->id);
	fsm_changed(ch, "member", name, false);
	return 0;
}

static int fsm_apply_remove_member(struct fsm *f, MDB_txn *txn,
				   const Ombra__V1__CmdRemoveMember *c,
				   struct fsm_result *res,
				   struct fsm_change *ch, char *errmsg)
{
	uint8_t kb[8];
	MDB_val k = {sizeof(kb), kb};
	char name[24];
	int rc;

	fsm_u64_encode(kb, c->id);
	rc = mdb_del(txn, f->dbi[FSM_DB_MEMBERS], &k, NULL);
	if (rc == MDB_NOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
				  "member %" PRIu64 " does not exist; list "
				  "members with `ombractl status`",
				  c->id);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_del members");
	res->object_id = c->id;
	snprintf(name, sizeof(name), "%" PRIu64, c->id);
	fsm_changed(ch, "member", name, true);
	return 0;
}

static int fsm_dispatch(struct fsm *f, MDB_txn *txn, uint64_t index,
			const Ombra__V1__MetaCommand *cmd,
			struct fsm_result *res, struct fsm_change *ch,
			char *errmsg)
{
	uint64_t now = cmd->time_unix_ms;

	switch (cmd->cmd_case) {
	case OMBRA__V1__META_COMMAND__CMD_ADD_REGION:
		return fsm_apply_add_region(f, txn, now, cmd->add_region, res,
					    ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_REGISTER_NODE:
		return fsm_apply_register_node(f, txn, now, cmd->register_node,
					       res, ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_SET_NODE_STATE:
		return fsm_apply_set_node_state(f, txn, cmd->set_node_state,
						res, ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_CREATE_VOLUME:
		return fsm_apply_create_volume(
		    f, txn, index, now, cmd->create_volume, res, ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_RESIZE_VOLUME:
		return fsm_apply_resize_volume(
		    f, txn, index, cmd->resize_volume, res, ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_DELETE_VOLUME:
		return fsm_apply_delete_volume(f, txn, cmd->delete_volume, res,
					       ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_ADD_MEMBER:
		return fsm_apply_add_member(f, txn, cmd->add_member, res, ch,
					    errmsg);
	case OMBRA__V1__META_COMMAND__CMD_REMOVE_MEMBER:
		return fsm_apply_remove_member(f, txn, cmd->remove_member, res,
					       ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_SET_PLACEMENT:
		return fsm_apply_set_placement(f, txn, cmd->set_placement, res,
					       ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_REPLICA_CHANGE:
		return fsm_lease_replica_change(f, txn, cmd->replica_change,
						res, ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_SET_SHADOW_POLICY:
		return fsm_shadow_set_policy(
		    f, txn, index, cmd->set_shadow_policy, res, ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_SHADOW_CHANGES:
		return fsm_shadow_changes(f, txn, now, cmd->shadow_changes, res,
					  ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_VOLUME_LEASE:
		return fsm_vlease_apply(f, txn, index, now, cmd->volume_lease,
					res, ch, errmsg);
	case OMBRA__V1__META_COMMAND__CMD_PROMOTE_SHADOW:
		return fsm_promote_apply(f, txn, index, now,
					 cmd->promote_shadow, res, ch, errmsg);
	default:
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				  "command carries no operation");
	}
}

/* Contract in fsm.h.  cmd == NULL stands for an entry that did not decode
 * (the raft hook passes it so): it is applied as an INVALID_ARGUMENT
 * refusal, so that the applied index still moves with the log.  Order:
 * replay check, request-id lookup, validation and effect, dedup record,
 * applied index, commit, then the change listener. */
int fsm_apply_command(struct fsm *f, uint64_t index,
		      const Ombra__V1__MetaCommand *cmd, struct fsm_result *res)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct fsm_change ch = {NULL, 0, 0, false};
	const char *rid = NULL;
	MDB_txn *txn = NULL;
	uint64_t applied;
	bool found;
	int rc;
	int rv;

	if (f == NULL || res == NULL)
		return OMBRA_EINVAL;
	memset(res, 0, sizeof(*res));
	res->index = index;
	rv = fsm_txn_begin(f, 0, &txn, errmsg);
	if (rv != 0)
		goto err;
	rv = fsm_meta_get(f, txn, FSM_KEY_APPLIED, &applied, errmsg);
	if (rv != 0)
		goto err_after_txn;
	if (index <= applied) {
		/* Replay of an entry already in the state. */
		mdb_txn_abort(txn);
		return 0;
	}
	audit_discard(&f->audit_pending);
	f->audit_index = index;
	f->audit_cmd_ms = cmd != NULL ? cmd->time_unix_ms : 0;
	if (cmd == NULL) {
		fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
			   "malformed command at index %" PRIu64 " ignored",
			   index);
		goto commit;
	}
	if (cmd->request_id != NULL && cmd->request_id[0] != '\0') {
		if (strlen(cmd->request_id) > FSM_REQUEST_ID_MAX) {
			fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				   "request id longer than %u bytes",
				   FSM_REQUEST_ID_MAX);
			goto commit;
		}
		rid = cmd->request_id;
		rv = fsm_dedup_lookup(f, txn, rid, res, &found, errmsg);
		if (rv != 0)
			goto err_after_txn;
		if (found)
			goto commit;
	}
	rv = fsm_dispatch(f, txn, index, cmd, res, &ch, errmsg);
	if (rv == 0 && ch.oom) {
		ombra_errmsg_printf(errmsg, "out of memory recording changes");
		rv = OMBRA_ENOMEM;
	}
	if (rv == 0 && fsm_change_touches_map(&ch))
		rv = fsm_meta_put(f, txn, FSM_KEY_MAP_INDEX, index, errmsg);
	if (rv != 0)
		goto err_after_txn;
	res->index = index;
	if (rid != NULL) {
		rv = fsm_dedup_store(f, txn, index, rid, res, errmsg);
		if (rv != 0)
			goto err_after_txn;
	}
commit:
	rv = fsm_meta_put(f, txn, FSM_KEY_APPLIED, index, errmsg);
	if (rv != 0)
		goto err_after_txn;
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		rv = fsm_lmdb_error(errmsg, rc, "mdb_txn_commit");
		goto err;
	}
	audit_flush(f->audit, &f->audit_pending);
	for (size_t i = 0; f->change_fn != NULL && i < ch.n; i++)
		f->change_fn(f->change_data, index, ch.ev[i].kind,
			     ch.ev[i].name, ch.ev[i].deleted);
	free(ch.ev);
	return 0;

err_after_txn:
	mdb_txn_abort(txn);
err:
	audit_discard(&f->audit_pending);
	free(ch.ev);
	/* No errmsg parameter in the contract: the reason goes to res. */
	res->code = GRPC_STATUS_INTERNAL;
	snprintf(res->message, sizeof(res->message),
		 "fsm_apply_command(%s at %" PRIu64 "): %.200s", cmd_kind(cmd),
		 index, errmsg);
	return rv;
}
