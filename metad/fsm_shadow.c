/* fsm_shadow.c: the shadow policy in the state machine: applying
 * CmdSetShadowPolicy (Volume.shadow_policy) and CmdShadowChanges
 * (SegmentPlacement.shadows), and the read-side queries the leader's
 * evaluator (shadowpol_run.c) uses to see a volume's shadows.
 *
 * Shadows live in placement exceptions (fsm_place.c): adding one to a
 * segment with a computed placement stores that placement plus the shadow;
 * removing the last shadow of an exception that is otherwise the computed
 * placement (epoch 1, no re-sync list, no tier override, same primary and
 * replicas) deletes the exception again, so shadows come and go without
 * leaving rows behind.
 *
 * The leader decided every change from its soft state; applying checks
 * them again, deterministically, against the state at that index: the
 * volume has a policy allowing the node's region, the node is UP and holds
 * no copy of the segment, the segment stays within max_shadows and the
 * region within budget_bytes.  A change that fails a check is skipped (the
 * rest of the batch applies); if none applies the command is refused
 * FAILED_PRECONDITION with the first reason.
 *
 * Failure: refusals in the result; OMBRA_ENOMEM / OMBRA_EIO abort the
 * command with errmsg. */
#include <grpc/status.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsm_internal.h"
#include "shadowpol.h"

static void free_msg(void *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

/* Segments of a volume that have a stored exception, in order. */
static int shadow_exception_segments(struct fsm *f, MDB_txn *txn,
				     uint64_t volume_id, uint64_t **segs,
				     size_t *n, char *errmsg)
{
	uint8_t kb[16];
	MDB_val k = {sizeof(kb), kb};
	MDB_val v;
	MDB_cursor *cur;
	int rc;
	int rv = 0;

	*segs = NULL;
	*n = 0;
	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_PLACEMENTS], &cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_cursor_open");
	fsm_placement_key(kb, volume_id, 0);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 16 &&
	       fsm_u64_decode(k.mv_data) == volume_id) {
		if (fsm_ids_add(segs, n,
				fsm_u64_decode((uint8_t *)k.mv_data + 8)) !=
		    0) {
			ombra_errmsg_printf(errmsg, "out of memory");
			rv = OMBRA_ENOMEM;
			break;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_get placements");
	mdb_cursor_close(cur);
	if (rv != 0) {
		free(*segs);
		*segs = NULL;
		*n = 0;
	}
	return rv;
}

/* Is p (an exception without shadows) just the computed placement? */
static bool shadow_plain(const Ombra__V1__SegmentPlacement *p,
			 const Ombra__V1__SegmentPlacement *computed)
{
	return p->n_shadows == 0 && p->lease_epoch == 1 &&
	       p->n_resync_node_ids == 0 &&
	       (p->tier == NULL || p->tier[0] == '\0') &&
	       p->primary_node_id == computed->primary_node_id &&
	       p->n_replica_node_ids == computed->n_replica_node_ids &&
	       (p->n_replica_node_ids == 0 ||
		memcmp(p->replica_node_ids, computed->replica_node_ids,
		       p->n_replica_node_ids * sizeof(*p->replica_node_ids)) ==
		    0);
}

/* Store p after a shadow change: as an exception, or by deleting the
 * exception when p is the computed placement again. */
static int shadow_store(struct fsm *f, MDB_txn *txn,
			const Ombra__V1__Volume *vol,
			const struct fsm_region_nodes *rn,
			Ombra__V1__SegmentPlacement *p, char *errmsg)
{
	Ombra__V1__SegmentPlacement *computed;
	uint8_t kb[16];
	bool plain;

	if (p->n_shadows == 0) {
		computed =
		    fsm_place_computed(rn, vol->id, p->index, vol->replicas);
		if (computed == NULL) {
			ombra_errmsg_printf(errmsg, "out of memory");
			return OMBRA_ENOMEM;
		}
		plain = shadow_plain(p, computed);
		free_msg(computed);
		if (plain) {
			fsm_placement_key(kb, vol->id, p->index);
			return fsm_del_key(f, txn, FSM_DB_PLACEMENTS, kb,
					   sizeof(kb), errmsg);
		}
	}
	return fsm_place_put(f, txn, vol->id, p, errmsg);
}

static void shadow_drop_at(Ombra__V1__SegmentPlacement *p, size_t at)
{
	free_msg(p->shadows[at]);
	memmove(p->shadows + at, p->shadows + at + 1,
		(p->n_shadows - at - 1) * sizeof(*p->shadows));
	p->n_shadows--;
}

/* Drop the shadows of vol in regions its (new) policy does not allow;
 * every shadow when it has no policy. */
static int shadow_prune(struct fsm *f, MDB_txn *txn,
			const Ombra__V1__Volume *vol, struct fsm_change *ch,
			char *errmsg)
{
	struct fsm_region_nodes rn = {NULL, NULL, 0};
	struct shadowpol_params pp;
	uint64_t *segs = NULL;
	size_t n = 0, i, j;
	bool any = false;
	int rv;

	if (vol->shadow_policy != NULL)
		shadowpol_effective(vol->shadow_policy, &pp);
	rv = shadow_exception_segments(f, txn, vol->id, &segs, &n, errmsg);
	if (rv == 0)
		rv = fsm_region_nodes_load(f, txn, vol->home_region, &rn,
					   errmsg);
	for (i = 0; rv == 0 && i < n; i++) {
		Ombra__V1__SegmentPlacement *p = NULL;
		bool changed = false;

		rv = fsm_place_current(f, txn, vol, segs[i], &rn, &p, errmsg);
		if (rv != 0)
			break;
		for (j = p->n_shadows; j-- > 0;) {
			if (vol->shadow_policy == NULL ||
			    !shadowpol_region_allowed(&pp, vol->home_region,
						      p->shadows[j]->region)) {
				shadow_drop_at(p, j);
				changed = true;
			}
		}
		if (changed) {
			rv = shadow_store(f, txn, vol, &rn, p, errmsg);
			any = true;
		}
		free_msg(p);
	}
	if (rv == 0 && any)
		fsm_changed(ch, "placement", vol->name, false);
	fsm_region_nodes_free(&rn);
	free(segs);
	return rv;
}

int fsm_shadow_set_policy(struct fsm *f, MDB_txn *txn, uint64_t index,
			  const Ombra__V1__CmdSetShadowPolicy *c,
			  struct fsm_result *res, struct fsm_change *ch,
			  char *errmsg)
{
	const Ombra__V1__ShadowPolicy *pol = c->policy;
	Ombra__V1__ShadowPolicy *old;
	Ombra__V1__Volume *vol = NULL;
	uint8_t kb[8];
	MDB_val k = {sizeof(kb), kb};
	size_t i;
	int rv;

	if (cmd_validate_name("volume", c->volume, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	if (pol != NULL && shadowpol_check(pol, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	rv = fsm_volume_by_name(f, txn, c->volume, &vol, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND, "%s", errmsg);
	if (rv != 0)
		return rv;
	res->object_id = vol->id;
	for (i = 0; pol != NULL && i < pol->n_regions; i++) {
		MDB_val rk = {strlen(pol->regions[i]), pol->regions[i]};
		MDB_val rv_;
		int rc;

		if (strcmp(pol->regions[i], vol->home_region) == 0) {
			fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				   "region '%s' is the home region of volume "
				   "'%s': shadows live in other regions",
				   pol->regions[i], vol->name);
			goto out;
		}
		rc = mdb_get(txn, f->dbi[FSM_DB_REGIONS], &rk, &rv_);
		if (rc == MDB_NOTFOUND) {
			fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				   "region '%s' of the shadow policy does not "
				   "exist; list regions with `ombractl region "
				   "list`",
				   pol->regions[i]);
			goto out;
		}
		if (rc != 0) {
			rv = fsm_lmdb_error(errmsg, rc, "mdb_get regions");
			goto out;
		}
	}
	if (pol != NULL && pol->budget_bytes != 0 &&
	    pol->budget_bytes < vol->segment_size_bytes) {
		fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
			   "budget of %" PRIu64 " bytes is below one segment "
			   "of volume '%s' (%" PRIu64 " bytes): no shadow "
			   "would fit; use 0 for no limit",
			   pol->budget_bytes, vol->name,
			   vol->segment_size_bytes);
		goto out;
	}
	/* Borrow the command's policy for the put, then give the volume its
	 * own back before it is freed. */
	old = vol->shadow_policy;
	vol->shadow_policy = (Ombra__V1__ShadowPolicy *)pol;
	vol->modified_index = index;
	fsm_u64_encode(kb, vol->id);
	rv = fsm_pb_put(f, txn, FSM_DB_VOLUMES, &k, &vol->base, errmsg);
	if (rv == 0) {
		fsm_changed(ch, "volume", vol->name, false);
		rv = shadow_prune(f, txn, vol, ch, errmsg);
	}
	vol->shadow_policy = old;
out:
	free_msg(vol);
	return rv;
}

/* ------------------------------------------------------------ changes */

/* One batch's cached volume (changes come grouped by volume). */
struct shadow_batch {
	Ombra__V1__Volume *vol;
	struct fsm_region_nodes rn; /* home region's nodes */
	bool touched;
	char first_skip[160];
	size_t applied, skipped;
};

static void batch_skip(struct shadow_batch *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void batch_skip(struct shadow_batch *b, const char *fmt, ...)
{
	va_list ap;

	if (b->skipped++ == 0) {
		va_start(ap, fmt);
		vsnprintf(b->first_skip, sizeof(b->first_skip), fmt, ap);
		va_end(ap);
	}
}

static void batch_flush(struct shadow_batch *b, struct fsm_change *ch)
{
	if (b->vol != NULL && b->touched)
		fsm_changed(ch, "placement", b->vol->name, false);
	free_msg(b->vol);
	b->vol = NULL;
	b->touched = false;
	fsm_region_nodes_free(&b->rn);
}

/* Make b->vol the volume volume_id (NULL if it does not exist). */
static int batch_volume(struct fsm *f, MDB_txn *txn, struct shadow_batch *b,
			uint64_t volume_id, struct fsm_change *ch, char *errmsg)
{
	ProtobufCMessage *m = NULL;
	int rv;

	if (b->vol != NULL && b->vol->id == volume_id)
		return 0;
	batch_flush(b, ch);
	rv = fsm_id_get(f, txn, FSM_DB_VOLUMES, volume_id,
			&ombra__v1__volume__descriptor, &m, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return 0;
	if (rv != 0)
		return rv;
	b->vol = (Ombra__V1__Volume *)m;
	return fsm_region_nodes_load(f, txn, b->vol->home_region, &b->rn,
				     errmsg);
}

static bool placement_names(const Ombra__V1__SegmentPlacement *p, uint64_t node)
{
	size_t i;

	if (p->primary_node_id == node)
		return true;
	for (i = 0; i < p->n_replica_node_ids; i++) {
		if (p->replica_node_ids[i] == node)
			return true;
	}
	for (i = 0; i < p->n_resync_node_ids; i++) {
		if (p->resync_node_ids[i] == node)
			return true;
	}
	for (i = 0; i < p->n_shadows; i++) {
		if (p->shadows[i]->node_id == node)
			return true;
	}
	return false;
}

/* Shadows of vol in region, over all its exceptions. */
static int shadow_region_count(struct fsm *f, MDB_txn *txn,
			       const struct shadow_batch *b, const char *region,
			       uint64_t *count, char *errmsg)
{
	uint64_t *segs = NULL;
	size_t n = 0, i, j;
	int rv;

	*count = 0;
	rv = shadow_exception_segments(f, txn, b->vol->id, &segs, &n, errmsg);
	for (i = 0; rv == 0 && i < n; i++) {
		Ombra__V1__SegmentPlacement *p = NULL;

		rv = fsm_place_current(f, txn, b->vol, segs[i], &b->rn, &p,
				       errmsg);
		for (j = 0; rv == 0 && j < p->n_shadows; j++) {
			if (strcmp(p->shadows[j]->region, region) == 0)
				(*count)++;
		}
		free_msg(p);
	}
	free(segs);
	return rv;
}

/* Add a ShadowCopy of node to p (checks in the header). */
static int shadow_add(struct fsm *f, MDB_txn *txn, struct shadow_batch *b,
		      Ombra__V1__SegmentPlacement *p,
		      const Ombra__V1__Node *node, uint64_t now_ms, bool *done,
		      char *errmsg)
{
	const Ombra__V1__Volume *vol = b->vol;
	struct shadowpol_params pp;
	Ombra__V1__ShadowCopy **grown, *sc;
	uint64_t count;
	int rv;

	*done = false;
	shadowpol_effective(vol->shadow_policy, &pp);
	if (!shadowpol_region_allowed(&pp, vol->home_region, node->region)) {
		batch_skip(b, "policy of '%s' does not allow region '%s'",
			   vol->name, node->region);
		return 0;
	}
	if (node->state != OMBRA__V1__NODE_STATE__NODE_UP) {
		batch_skip(b, "node %" PRIu64 " is not UP", node->id);
		return 0;
	}
	if (placement_names(p, node->id)) {
		batch_skip(b, "node %" PRIu64 " already holds segment %" PRIu64,
			   node->id, p->index);
		return 0;
	}
	if (p->n_shadows >= pp.max_shadows) {
		batch_skip(b, "segment %" PRIu64 " has max_shadows (%u)",
			   p->index, pp.max_shadows);
		return 0;
	}
	if (pp.budget_bytes != 0) {
		rv = shadow_region_count(f, txn, b, node->region, &count,
					 errmsg);
		if (rv != 0)
			return rv;
		if ((count + 1) * vol->segment_size_bytes > pp.budget_bytes) {
			batch_skip(b, "region '%s' is at the budget of '%s'",
				   node->region, vol->name);
			return 0;
		}
	}
	sc = malloc(sizeof(*sc));
	grown = realloc(p->shadows, (p->n_shadows + 1) * sizeof(*grown));
	if (grown != NULL)
		p->shadows = grown;
	if (sc == NULL || grown == NULL) {
		free(sc);
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	ombra__v1__shadow_copy__init(sc);
	sc->node_id = node->id;
	sc->added_unix_ms = now_ms;
	sc->region = strdup(node->region);
	if (sc->region == NULL) {
		free(sc);
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	p->shadows[p->n_shadows++] = sc;
	*done = true;
	return 0;
}

static int shadow_change_one(struct fsm *f, MDB_txn *txn,
			     struct shadow_batch *b, uint64_t now_ms,
			     const Ombra__V1__ShadowChange *c,
			     struct fsm_change *ch, char *errmsg)
{
	Ombra__V1__SegmentPlacement *p = NULL;
	ProtobufCMessage *nm = NULL;
	bool done = false;
	size_t i;
	int rv;

	rv = batch_volume(f, txn, b, c->volume_id, ch, errmsg);
	if (rv != 0)
		return rv;
	if (b->vol == NULL) {
		batch_skip(b, "volume %" PRIu64 " does not exist",
			   c->volume_id);
		return 0;
	}
	if (c->segment_index >= b->vol->segment_count) {
		batch_skip(b, "segment %" PRIu64 " is beyond volume '%s'",
			   c->segment_index, b->vol->name);
		return 0;
	}
	rv = fsm_place_current(f, txn, b->vol, c->segment_index, &b->rn, &p,
			       errmsg);
	if (rv != 0)
		return rv;
	if (c->remove) {
		for (i = 0; i < p->n_shadows; i++) {
			if (p->shadows[i]->node_id == c->node_id)
				break;
		}
		if (i == p->n_shadows) {
			batch_skip(b,
				   "node %" PRIu64 " holds no shadow of "
				   "segment %" PRIu64 " of '%s'",
				   c->node_id, c->segment_index, b->vol->name);
		} else {
			shadow_drop_at(p, i);
			done = true;
		}
	} else if (b->vol->shadow_policy == NULL) {
		batch_skip(b, "volume '%s' has no shadow policy", b->vol->name);
	} else {
		rv = fsm_id_get(f, txn, FSM_DB_NODES, c->node_id,
				&ombra__v1__node__descriptor, &nm, errmsg);
		if (rv == OMBRA_ENOTFOUND) {
			rv = 0;
			batch_skip(b, "node %" PRIu64 " does not exist",
				   c->node_id);
		} else if (rv == 0) {
			rv = shadow_add(f, txn, b, p, (Ombra__V1__Node *)nm,
					now_ms, &done, errmsg);
		}
	}
	if (rv == 0 && done) {
		rv = shadow_store(f, txn, b->vol, &b->rn, p, errmsg);
		b->touched = true;
		b->applied++;
	}
	free_msg(nm);
	free_msg(p);
	return rv;
}

int fsm_shadow_changes(struct fsm *f, MDB_txn *txn, uint64_t now_ms,
		       const Ombra__V1__CmdShadowChanges *c,
		       struct fsm_result *res, struct fsm_change *ch,
		       char *errmsg)
{
	struct shadow_batch b;
	size_t i;
	int rv = 0;

	memset(&b, 0, sizeof(b));
	if (c->n_changes == 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT,
				  "shadow changes carry no change");
	for (i = 0; rv == 0 && i < c->n_changes; i++)
		rv = shadow_change_one(f, txn, &b, now_ms, c->changes[i], ch,
				       errmsg);
	batch_flush(&b, ch);
	if (rv != 0)
		return rv;
	res->object_id = b.applied;
	if (b.applied == 0)
		return fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
				  "no shadow change applied: %s", b.first_skip);
	if (b.skipped != 0)
		snprintf(res->message, sizeof(res->message),
			 "applied %zu of %zu shadow changes; first skipped: "
			 "%s",
			 b.applied, c->n_changes, b.first_skip);
	return 0;
}

/* ------------------------------------------------------------ queries */

int fsm_volume_shadows(struct fsm *f, uint64_t volume_id,
		       Ombra__V1__SegmentPlacement ***out, size_t *n,
		       char *errmsg)
{
	struct fsm_vec vec = {NULL, 0, 0};
	uint8_t kb[16];
	MDB_val k = {sizeof(kb), kb};
	MDB_val v;
	MDB_cursor *cur = NULL;
	MDB_txn *txn = NULL;
	int rc;
	int rv;

	*out = NULL;
	*n = 0;
	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_PLACEMENTS], &cur);
	if (rc != 0) {
		rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_open");
		goto out;
	}
	fsm_placement_key(kb, volume_id, 0);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size == 16 &&
	       fsm_u64_decode(k.mv_data) == volume_id) {
		Ombra__V1__SegmentPlacement *p =
		    ombra__v1__segment_placement__unpack(NULL, v.mv_size,
							 v.mv_data);
		ProtobufCMessage **grown;

		if (p == NULL) {
			ombra_errmsg_printf(errmsg,
					    "a placement of volume %" PRIu64
					    " does not decode",
					    volume_id);
			rv = OMBRA_EIO;
			goto out;
		}
		fsm_place_normalize(p,
				    fsm_u64_decode((uint8_t *)k.mv_data + 8));
		if (p->n_shadows == 0) {
			free_msg(p);
		} else {
			grown = realloc(vec.items,
					(vec.n + 1) * sizeof(*vec.items));
			if (grown == NULL) {
				free_msg(p);
				ombra_errmsg_printf(errmsg, "out of memory");
				rv = OMBRA_ENOMEM;
				goto out;
			}
			vec.items = grown;
			vec.items[vec.n++] = &p->base;
		}
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_get placements");
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rv != 0) {
		fsm_free_list(vec.items, vec.n);
		return rv;
	}
	*out = (Ombra__V1__SegmentPlacement **)vec.items;
	*n = vec.n;
	return 0;
}

int fsm_placements_of(struct fsm *f, const Ombra__V1__Volume *vol,
		      const uint64_t *segments, size_t n,
		      Ombra__V1__SegmentPlacement ***out, char *errmsg)
{
	struct fsm_region_nodes rn = {NULL, NULL, 0};
	Ombra__V1__SegmentPlacement **ps;
	MDB_txn *txn = NULL;
	size_t i;
	int rv;

	*out = NULL;
	ps = calloc(n + 1, sizeof(*ps));
	if (ps == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv == 0)
		rv = fsm_region_nodes_load(f, txn, vol->home_region, &rn,
					   errmsg);
	for (i = 0; rv == 0 && i < n; i++)
		rv = fsm_place_current(f, txn, vol, segments[i], &rn, &ps[i],
				       errmsg);
	fsm_region_nodes_free(&rn);
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rv != 0) {
		for (i = 0; i < n; i++)
			free_msg(ps[i]);
		free(ps);
		return rv;
	}
	*out = ps;
	return 0;
}
