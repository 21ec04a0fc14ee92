/* fsm_promote.c: applying CmdPromoteShadow, the region failover of one
 * segment (docs/shadows.md "Region failover", docs/metad.md "Region
 * failover"), and the FailoverEvent records it leaves (RPO).
 *
 * The leader (failover.c) proposes a promotion only after it found the
 * segment's home copies lost and asked the shadows for their watermarks;
 * the state machine checks again, deterministically, that the promotion is
 * still right when it is applied:
 *   - the volume's ShadowPolicy.auto_promote_shadows is on;
 *   - lease_epoch is the segment's current epoch + 1 (a second promotion
 *     decided from the same view, or one overtaken by a replica change,
 *     is stale);
 *   - the primary and every in-sync replica are NODE_DOWN (their node
 *     leases, and so the old write lease, have expired: a node is marked
 *     DOWN only node_timeout_ms after its last heartbeat);
 *   - node_id holds a shadow of the segment and is NODE_UP.
 * Then node_id becomes the primary with the new epoch, it leaves the
 * shadow list (the other shadows stay shadows), the replica list empties
 * and the old primary and replicas join resync_node_ids: a returning home
 * node is fenced by the epoch and re-synced by the new primary, never
 * merged.  A FailoverEvent (old and new primary, lost versions and ms) is
 * stored under (Raft index, volume id) in the "failovers" DB, at most
 * FAILOVER_EVENTS_MAX of them (the oldest are pruned).
 *
 * Failure: refusals are recorded in the result; OMBRA_ENOMEM / OMBRA_EIO
 * abort the command. */
#include <grpc/status.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsm_internal.h"
#include "vlease.h"

#define SEQ_BITS 40u
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)

uint64_t vlease_lost_versions(uint64_t known, uint64_t shadow)
{
	if (known <= shadow)
		return 0;
	if ((known >> SEQ_BITS) == (shadow >> SEQ_BITS))
		return (known & SEQ_MASK) - (shadow & SEQ_MASK);
	return known & SEQ_MASK;
}

size_t vlease_choose_shadow(const struct vlease_copy *c, size_t n,
			    uint64_t *known)
{
	size_t best = n;

	*known = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = c[i].watermark;

		if (c[i].lag_versions <= SEQ_MASK - (k & SEQ_MASK))
			k += c[i].lag_versions;
		if (k > *known)
			*known = k;
		if (c[i].filling || c[i].total_blocks == 0 ||
		    c[i].present_blocks < c[i].total_blocks)
			continue;
		if (best == n || c[i].watermark > c[best].watermark ||
		    (c[i].watermark == c[best].watermark &&
		     c[i].node_id < c[best].node_id))
			best = i;
	}
	return best;
}

/* Committed state of node id: NODE_STATE_UNSPECIFIED if unknown. */
static int promote_node_state(struct fsm *f, MDB_txn *txn, uint64_t id,
			      Ombra__V1__NodeState *state, char *errmsg)
{
	ProtobufCMessage *m = NULL;
	int rv;

	*state = OMBRA__V1__NODE_STATE__NODE_STATE_UNSPECIFIED;
	rv = fsm_id_get(f, txn, FSM_DB_NODES, id, &ombra__v1__node__descriptor,
			&m, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return 0;
	if (rv != 0)
		return rv;
	*state = ((Ombra__V1__Node *)m)->state;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* *lost = the primary and every in-sync replica of p are DOWN. */
static int promote_home_lost(struct fsm *f, MDB_txn *txn,
			     const Ombra__V1__SegmentPlacement *p, bool *lost,
			     char *errmsg)
{
	Ombra__V1__NodeState st;
	int rv;

	*lost = false;
	if (p->primary_node_id == 0)
		return 0;
	rv = promote_node_state(f, txn, p->primary_node_id, &st, errmsg);
	if (rv != 0 || st != OMBRA__V1__NODE_STATE__NODE_DOWN)
		return rv;
	for (size_t i = 0; i < p->n_replica_node_ids; i++) {
		rv = promote_node_state(f, txn, p->replica_node_ids[i], &st,
					errmsg);
		if (rv != 0 || st != OMBRA__V1__NODE_STATE__NODE_DOWN)
			return rv;
	}
	*lost = true;
	return 0;
}

/* Make shadow `at` of p its primary with epoch (header). */
static int promote_mutate(Ombra__V1__SegmentPlacement *p, size_t at,
			  uint64_t epoch)
{
	Ombra__V1__ShadowCopy *sc = p->shadows[at];
	uint64_t node = sc->node_id;

	if (fsm_ids_add(&p->resync_node_ids, &p->n_resync_node_ids,
			p->primary_node_id) != 0)
		return OMBRA_ENOMEM;
	for (size_t i = 0; i < p->n_replica_node_ids; i++) {
		if (fsm_ids_add(&p->resync_node_ids, &p->n_resync_node_ids,
				p->replica_node_ids[i]) != 0)
			return OMBRA_ENOMEM;
	}
	p->n_replica_node_ids = 0;
	/* The new primary is no resync target of its own. */
	for (size_t i = 0; i < p->n_resync_node_ids; i++) {
		if (p->resync_node_ids[i] == node) {
			memmove(p->resync_node_ids + i,
				p->resync_node_ids + i + 1,
				(p->n_resync_node_ids - i - 1) *
				    sizeof(*p->resync_node_ids));
			p->n_resync_node_ids--;
			break;
		}
	}
	protobuf_c_message_free_unpacked(&sc->base, NULL);
	memmove(p->shadows + at, p->shadows + at + 1,
		(p->n_shadows - at - 1) * sizeof(*p->shadows));
	p->n_shadows--;
	p->primary_node_id = node;
	p->lease_epoch = epoch;
	return 0;
}

/* 16-byte key of an event: Raft index, then volume id. */
static void promote_event_key(uint8_t out[16], uint64_t index,
			      uint64_t volume_id)
{
	fsm_u64_encode(out, index);
	fsm_u64_encode(out + 8, volume_id);
}

/* Store ev and prune the oldest events beyond FAILOVER_EVENTS_MAX. */
static int promote_record(struct fsm *f, MDB_txn *txn, uint64_t index,
			  const Ombra__V1__FailoverEvent *ev, char *errmsg)
{
	uint8_t kb[16];
	MDB_val k = {sizeof(kb), kb};
	MDB_cursor *cur = NULL;
	MDB_stat st;
	MDB_val ck, cv;
	int rc;
	int rv;

	promote_event_key(kb, index, ev->volume_id);
	rv = fsm_pb_put(f, txn, FSM_DB_FAILOVERS, &k, &ev->base, errmsg);
	if (rv != 0)
		return rv;
	rc = mdb_stat(txn, f->dbi[FSM_DB_FAILOVERS], &st);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_stat failovers");
	if (st.ms_entries <= FAILOVER_EVENTS_MAX)
		return 0;
	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_FAILOVERS], &cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_cursor_open failovers");
	rc = mdb_cursor_get(cur, &ck, &cv, MDB_FIRST);
	if (rc == 0)
		rc = mdb_cursor_del(cur, 0);
	mdb_cursor_close(cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "pruning failovers");
	return 0;
}

/* The checks and the change of the header, on vol (loaded). */
static int promote_segment(struct fsm *f, MDB_txn *txn, uint64_t index,
			   uint64_t now, const Ombra__V1__CmdPromoteShadow *c,
			   const Ombra__V1__Volume *vol, struct fsm_result *res,
			   struct fsm_change *ch, char *errmsg)
{
	Ombra__V1__FailoverEvent ev = OMBRA__V1__FAILOVER_EVENT__INIT;
	struct fsm_region_nodes rn = {NULL, NULL, 0};
	Ombra__V1__SegmentPlacement *p = NULL;
	Ombra__V1__NodeState st;
	size_t at;
	bool lost;
	int rv;

	rv = promote_node_state(f, txn, c->node_id, &st, errmsg);
	if (rv != 0)
		return rv;
	if (st != OMBRA__V1__NODE_STATE__NODE_UP)
		return fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
				  "node %" PRIu64 " is %s, not UP: it cannot "
				  "become a primary",
				  c->node_id,
				  st == 0 ? "unknown" : "not serving");
	rv = fsm_region_nodes_load(f, txn, vol->home_region, &rn, errmsg);
	if (rv == 0)
		rv = fsm_place_current(f, txn, vol, c->segment_index, &rn, &p,
				       errmsg);
	if (rv != 0)
		goto out;
	if (c->lease_epoch != p->lease_epoch + 1) {
		fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
			   "stale promotion of segment %" PRIu64 " of volume "
			   "'%s': epoch %" PRIu64 " is not its lease epoch "
			   "%" PRIu64 " + 1",
			   c->segment_index, vol->name, c->lease_epoch,
			   p->lease_epoch);
		goto out;
	}
	rv = promote_home_lost(f, txn, p, &lost, errmsg);
	if (rv != 0)
		goto out;
	if (!lost) {
		fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
			   "segment %" PRIu64 " of volume '%s' still has a "
			   "home copy that is not DOWN (primary node %" PRIu64
			   "): no shadow is promoted",
			   c->segment_index, vol->name, p->primary_node_id);
		goto out;
	}
	for (at = 0; at < p->n_shadows; at++) {
		if (p->shadows[at]->node_id == c->node_id)
			break;
	}
	if (at == p->n_shadows) {
		fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
			   "node %" PRIu64 " holds no shadow of segment "
			   "%" PRIu64 " of volume '%s'",
			   c->node_id, c->segment_index, vol->name);
		goto out;
	}
	ev.volume_id = vol->id;
	ev.segment_index = c->segment_index;
	ev.old_primary_node_id = p->primary_node_id;
	ev.new_primary_node_id = c->node_id;
	ev.lost_versions =
	    vlease_lost_versions(c->known_version, c->shadow_version);
	ev.lost_ms = c->watermark_unix_ms != 0 && now > c->watermark_unix_ms
			 ? now - c->watermark_unix_ms
			 : 0;
	ev.unix_ms = now;
	ev.shadow_version = c->shadow_version;
	ev.known_version = c->known_version;
	ev.lease_epoch = c->lease_epoch;
	rv = promote_mutate(p, at, c->lease_epoch);
	if (rv == OMBRA_ENOMEM)
		ombra_errmsg_printf(errmsg, "out of memory");
	if (rv == 0)
		rv = fsm_place_put(f, txn, vol->id, p, errmsg);
	if (rv == 0)
		rv = promote_record(f, txn, index, &ev, errmsg);
	if (rv == 0)
		fsm_changed(ch, "placement", vol->name, false);
out:
	if (p != NULL)
		protobuf_c_message_free_unpacked(&p->base, NULL);
	fsm_region_nodes_free(&rn);
	return rv;
}

int fsm_promote_apply(struct fsm *f, MDB_txn *txn, uint64_t index,
		      uint64_t now_ms, const Ombra__V1__CmdPromoteShadow *c,
		      struct fsm_result *res, struct fsm_change *ch,
		      char *errmsg)
{
	ProtobufCMessage *vm = NULL;
	const Ombra__V1__Volume *vol;
	int rv;

	if (c->volume_id == 0 || c->node_id == 0 || c->lease_epoch < 2)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				  "a promotion needs volume_id, node_id and "
				  "lease_epoch >= 2");
	rv = fsm_id_get(f, txn, FSM_DB_VOLUMES, c->volume_id,
			&ombra__v1__volume__descriptor, &vm, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
				  "volume %" PRIu64 " does not exist",
				  c->volume_id);
	if (rv != 0)
		return rv;
	vol = (const Ombra__V1__Volume *)vm;
	res->object_id = vol->id;
	if (c->segment_index >= vol->segment_count)
		fsm_refuse(res, GRPC_STATUS_NOT_FOUND,
			   "segment %" PRIu64 " does not exist: volume '%s' "
			   "has %" PRIu64 " segments",
			   c->segment_index, vol->name, vol->segment_count);
	else if (vol->shadow_policy == NULL ||
		 !vol->shadow_policy->auto_promote_shadows)
		fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
			   "volume '%s' does not allow promoting shadows "
			   "(ShadowPolicy.auto_promote_shadows is off)",
			   vol->name);
	else
		rv = promote_segment(f, txn, index, now_ms, c, vol, res, ch,
				     errmsg);
	protobuf_c_message_free_unpacked(vm, NULL);
	return rv;
}

/* Evict DOWN nodes from p's in-sync set and replace a DOWN primary by the
 * first in-sync replica left (epoch + 1).  *changed when p changed. */
static int promote_evict(struct fsm *f, MDB_txn *txn,
			 Ombra__V1__SegmentPlacement *p, bool *changed,
			 char *errmsg)
{
	Ombra__V1__NodeState st;
	size_t keep = 0;
	int rv;

	for (size_t i = 0; i < p->n_replica_node_ids; i++) {
		uint64_t id = p->replica_node_ids[i];

		rv = promote_node_state(f, txn, id, &st, errmsg);
		if (rv != 0)
			return rv;
		if (st != OMBRA__V1__NODE_STATE__NODE_DOWN) {
			p->replica_node_ids[keep++] = id;
			continue;
		}
		if (fsm_ids_add(&p->resync_node_ids, &p->n_resync_node_ids,
				id) != 0)
			return OMBRA_ENOMEM;
		*changed = true;
	}
	p->n_replica_node_ids = keep;
	rv = promote_node_state(f, txn, p->primary_node_id, &st, errmsg);
	if (rv != 0 || st != OMBRA__V1__NODE_STATE__NODE_DOWN ||
	    p->n_replica_node_ids == 0)
		return rv; /* healthy, or the only copy: it stays */
	if (fsm_ids_add(&p->resync_node_ids, &p->n_resync_node_ids,
			p->primary_node_id) != 0)
		return OMBRA_ENOMEM;
	p->primary_node_id = p->replica_node_ids[0];
	memmove(p->replica_node_ids, p->replica_node_ids + 1,
		(p->n_replica_node_ids - 1) * sizeof(*p->replica_node_ids));
	p->n_replica_node_ids--;
	p->lease_epoch++;
	*changed = true;
	return 0;
}

static bool promote_names(const Ombra__V1__SegmentPlacement *p, uint64_t id)
{
	if (p->primary_node_id == id)
		return true;
	for (size_t i = 0; i < p->n_replica_node_ids; i++) {
		if (p->replica_node_ids[i] == id)
			return true;
	}
	return false;
}

/* Keys (volume id, segment) of the exceptions naming node_id as primary
 * or in-sync replica, into a malloc'd array of 2 * *n ids. */
static int promote_keys_naming(struct fsm *f, MDB_txn *txn, uint64_t node_id,
			       uint64_t **out, size_t *n, char *errmsg)
{
	MDB_cursor *cur = NULL;
	uint64_t *keys = NULL;
	size_t cap = 0;
	MDB_val k, v;
	int rc;
	int rv = 0;

	*n = 0;
	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_PLACEMENTS], &cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_cursor_open placements");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		Ombra__V1__SegmentPlacement *p;
		bool names;

		if (k.mv_size != 16)
			continue;
		p = ombra__v1__segment_placement__unpack(NULL, v.mv_size,
							 v.mv_data);
		if (p == NULL) {
			ombra_errmsg_printf(errmsg, "a placement record does "
						    "not decode");
			rv = OMBRA_EIO;
			break;
		}
		names = promote_names(p, node_id);
		protobuf_c_message_free_unpacked(&p->base, NULL);
		if (!names)
			continue;
		if (*n == cap) {
			size_t c2 = cap == 0 ? 16 : cap * 2;
			uint64_t *grown = realloc(keys, 2 * c2 * sizeof(*keys));

			if (grown == NULL) {
				ombra_errmsg_printf(errmsg, "out of memory");
				rv = OMBRA_ENOMEM;
				break;
			}
			keys = grown;
			cap = c2;
		}
		keys[2 * *n] = fsm_u64_decode(k.mv_data);
		keys[2 * *n + 1] = fsm_u64_decode((uint8_t *)k.mv_data + 8);
		(*n)++;
	}
	mdb_cursor_close(cur);
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "walking placements");
	if (rv != 0) {
		free(keys);
		*n = 0;
		keys = NULL;
	}
	*out = keys;
	return rv;
}

int fsm_promote_node_down(struct fsm *f, MDB_txn *txn, const char *region,
			  uint64_t node_id, struct fsm_change *ch, char *errmsg)
{
	ProtobufCMessage *vm = NULL;
	uint64_t *keys = NULL;
	size_t n = 0;
	int rv;

	rv = promote_keys_naming(f, txn, node_id, &keys, &n, errmsg);
	for (size_t i = 0; rv == 0 && i < n; i++) {
		Ombra__V1__SegmentPlacement *p = NULL;
		const Ombra__V1__Volume *vol;
		bool changed = false;
		uint8_t kb[16];
		MDB_val k = {sizeof(kb), kb};

		if (vm == NULL ||
		    ((Ombra__V1__Volume *)vm)->id != keys[2 * i]) {
			if (vm != NULL)
				protobuf_c_message_free_unpacked(vm, NULL);
			vm = NULL;
			rv = fsm_id_get(f, txn, FSM_DB_VOLUMES, keys[2 * i],
					&ombra__v1__volume__descriptor, &vm,
					errmsg);
			if (rv == OMBRA_ENOTFOUND) {
				rv = 0;
				continue;
			}
			if (rv != 0)
				break;
		}
		vol = (const Ombra__V1__Volume *)vm;
		/* Volumes homed in region: fsm_lease_node_down did them. */
		if (strcmp(vol->home_region, region) == 0)
			continue;
		fsm_placement_key(kb, keys[2 * i], keys[2 * i + 1]);
		rv = fsm_pb_get(f, txn, FSM_DB_PLACEMENTS, &k,
				&ombra__v1__segment_placement__descriptor,
				(ProtobufCMessage **)&p, errmsg);
		if (rv != 0)
			break;
		fsm_place_normalize(p, keys[2 * i + 1]);
		rv = promote_evict(f, txn, p, &changed, errmsg);
		if (rv == OMBRA_ENOMEM)
			ombra_errmsg_printf(errmsg, "out of memory");
		if (rv == 0 && changed)
			rv = fsm_place_put(f, txn, vol->id, p, errmsg);
		if (rv == 0 && changed)
			fsm_changed(ch, "placement", vol->name, false);
		protobuf_c_message_free_unpacked(&p->base, NULL);
	}
	if (vm != NULL)
		protobuf_c_message_free_unpacked(vm, NULL);
	free(keys);
	return rv;
}

int fsm_failovers_delete(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
			 char *errmsg)
{
	MDB_cursor *cur = NULL;
	uint8_t(*keys)[16] = NULL;
	size_t n = 0, cap = 0;
	MDB_val k, v;
	int rc;
	int rv = 0;

	/* Keys first, deletes after: no cursor is moved under a delete. */
	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_FAILOVERS], &cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_cursor_open failovers");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 16 ||
		    fsm_u64_decode((const uint8_t *)k.mv_data + 8) != volume_id)
			continue;
		if (n == cap) {
			size_t c2 = cap == 0 ? 16 : cap * 2;
			uint8_t(*grown)[16] = realloc(keys, c2 * sizeof(*keys));

			if (grown == NULL) {
				ombra_errmsg_printf(errmsg, "out of memory");
				rv = OMBRA_ENOMEM;
				break;
			}
			keys = grown;
			cap = c2;
		}
		memcpy(keys[n++], k.mv_data, 16);
	}
	mdb_cursor_close(cur);
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "walking failovers");
	for (size_t i = 0; rv == 0 && i < n; i++)
		rv = fsm_del_key(f, txn, FSM_DB_FAILOVERS, keys[i], 16, errmsg);
	free(keys);
	return rv;
}

static bool keep_event_of(const ProtobufCMessage *m, const void *arg)
{
	return ((const Ombra__V1__FailoverEvent *)m)->volume_id ==
	       *(const uint64_t *)arg;
}

int fsm_list_failovers(struct fsm *f, const char *volume,
		       Ombra__V1__FailoverEvent ***out, size_t *n, char *errmsg)
{
	struct fsm_vec vec = {NULL, 0, 0};
	Ombra__V1__Volume *vol = NULL;
	MDB_txn *txn = NULL;
	uint64_t id = 0;
	int rv;

	*out = NULL;
	*n = 0;
	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	if (volume != NULL && volume[0] != '\0') {
		rv = fsm_volume_by_name(f, txn, volume, &vol, errmsg);
		if (rv != 0)
			goto out;
		id = vol->id;
		protobuf_c_message_free_unpacked(&vol->base, NULL);
	}
	rv = fsm_scan(f, txn, FSM_DB_FAILOVERS,
		      &ombra__v1__failover_event__descriptor,
		      id != 0 ? keep_event_of : NULL, &id, &vec, errmsg);
	if (rv == 0) {
		*out = (Ombra__V1__FailoverEvent **)vec.items;
		*n = vec.n;
	} else {
		fsm_free_list(vec.items, vec.n);
	}
out:
	mdb_txn_abort(txn);
	return rv;
}
