/* fsm_place.c: the current placement of a segment, read inside an LMDB
 * transaction of the state machine: a stored exception if there is one,
 * else the computed placement (weighted rendezvous over every registered
 * node of the home region, any state, lease_epoch 1).  Shared by the
 * shard-map queries (fsm_query.c) and the lease maintenance applied with
 * commands (fsm_lease.c), so both always agree.
 *
 * Failure: OMBRA_ENOMEM, or OMBRA_EIO with errmsg for LMDB errors and
 * stored records that do not decode. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsm_internal.h"

static bool fsm_keep_node_in(const ProtobufCMessage *m, const void *arg)
{
	return strcmp(((const Ombra__V1__Node *)m)->region,
		      (const char *)arg) == 0;
}

int fsm_region_nodes_load(struct fsm *f, MDB_txn *txn, const char *region,
			  struct fsm_region_nodes *out, char *errmsg)
{
	struct fsm_vec nodes = {NULL, 0, 0};
	size_t i;
	int rv;

	memset(out, 0, sizeof(*out));
	rv = fsm_scan(f, txn, FSM_DB_NODES, &ombra__v1__node__descriptor,
		      fsm_keep_node_in, region, &nodes, errmsg);
	if (rv == 0) {
		/* +1: calloc(0) may return NULL. */
		out->pn = calloc(nodes.n + 1, sizeof(*out->pn));
		out->state = calloc(nodes.n + 1, sizeof(*out->state));
		if (out->pn == NULL || out->state == NULL) {
			ombra_errmsg_printf(errmsg, "out of memory");
			rv = OMBRA_ENOMEM;
		}
	}
	for (i = 0; rv == 0 && i < nodes.n; i++) {
		const Ombra__V1__Node *node =
		    (const Ombra__V1__Node *)nodes.items[i];

		/* The nodes DB is keyed by big-endian id: sorted by id. */
		out->pn[i].id = node->id;
		out->pn[i].weight = node->capacity_bytes;
		out->state[i] = node->state;
		out->n++;
	}
	fsm_free_list(nodes.items, nodes.n);
	return rv;
}

void fsm_region_nodes_free(struct fsm_region_nodes *rn)
{
	free(rn->pn);
	free(rn->state);
	memset(rn, 0, sizeof(*rn));
}

Ombra__V1__NodeState fsm_region_node_state(const struct fsm_region_nodes *rn,
					   uint64_t id)
{
	size_t lo = 0;
	size_t hi = rn->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rn->pn[mid].id == id)
			return rn->state[mid];
		if (rn->pn[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return OMBRA__V1__NODE_STATE__NODE_STATE_UNSPECIFIED;
}

Ombra__V1__SegmentPlacement *
fsm_place_computed(const struct fsm_region_nodes *rn, uint64_t volume_id,
		   uint64_t segment, uint32_t replicas)
{
	uint64_t scratch[CMD_REPLICAS_MAX];
	Ombra__V1__SegmentPlacement *p;
	size_t got;

	if (replicas > CMD_REPLICAS_MAX)
		replicas = CMD_REPLICAS_MAX;
	p = malloc(sizeof(*p));
	if (p == NULL)
		return NULL;
	ombra__v1__segment_placement__init(p);
	p->index = segment;
	p->lease_epoch = 1;
	got = placement_pick(rn->pn, rn->n, volume_id, segment, replicas,
			     scratch);
	if (got == 0)
		return p;
	p->primary_node_id = scratch[0];
	if (got > 1) {
		p->replica_node_ids =
		    malloc((got - 1) * sizeof(*p->replica_node_ids));
		if (p->replica_node_ids == NULL) {
			free(p);
			return NULL;
		}
		memcpy(p->replica_node_ids, scratch + 1,
		       (got - 1) * sizeof(*p->replica_node_ids));
		p->n_replica_node_ids = got - 1;
	}
	return p;
}

void fsm_place_normalize(Ombra__V1__SegmentPlacement *p, uint64_t segment)
{
	p->index = segment;
	p->exception = true;
	if (p->lease_epoch == 0)
		p->lease_epoch = 1;
}

int fsm_place_current(struct fsm *f, MDB_txn *txn, const Ombra__V1__Volume *vol,
		      uint64_t segment, const struct fsm_region_nodes *rn,
		      Ombra__V1__SegmentPlacement **out, char *errmsg)
{
	uint8_t kb[16];
	MDB_val k = {sizeof(kb), kb};
	MDB_val v;
	int rc;

	fsm_placement_key(kb, vol->id, segment);
	rc = mdb_get(txn, f->dbi[FSM_DB_PLACEMENTS], &k, &v);
	if (rc == 0) {
		*out = ombra__v1__segment_placement__unpack(NULL, v.mv_size,
							    v.mv_data);
		if (*out == NULL) {
			ombra_errmsg_printf(errmsg,
					    "placement of segment %" PRIu64
					    " of volume %" PRIu64
					    " does not decode",
					    segment, vol->id);
			return OMBRA_EIO;
		}
		fsm_place_normalize(*out, segment);
		return 0;
	}
	if (rc != MDB_NOTFOUND)
		return fsm_lmdb_error(errmsg, rc, "mdb_get placements");
	*out = fsm_place_computed(rn, vol->id, segment, vol->replicas);
	if (*out == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	return 0;
}

int fsm_place_put(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
		  Ombra__V1__SegmentPlacement *p, char *errmsg)
{
	uint8_t kb[16];
	MDB_val k = {sizeof(kb), kb};
	int rv;

	p->exception = true;
	fsm_placement_key(kb, volume_id, p->index);
	rv = fsm_pb_put(f, txn, FSM_DB_PLACEMENTS, &k, &p->base, errmsg);
	if (rv == 0)
		fsm_audit_placement(f, volume_id, p);
	return rv;
}

int fsm_ids_add(uint64_t **ids, size_t *n, uint64_t id)
{
	uint64_t *grown;
	size_t i;

	for (i = 0; i < *n; i++) {
		if ((*ids)[i] == id)
			return 0;
	}
	grown = realloc(*ids, (*n + 1) * sizeof(**ids));
	if (grown == NULL)
		return OMBRA_ENOMEM;
	grown[(*n)++] = id;
	*ids = grown;
	return 0;
}
