/* fsm_query.c: the read side of the metadata state machine: volumes,
 * regions, nodes, members, counts and volume shard maps, each answered
 * from one LMDB read transaction (a consistent view at one applied index).
 *
 * Shard maps are computed, not stored (DESIGN.md, Placement): the default
 * copies of a segment come from weighted rendezvous hashing over all the
 * home region's registered nodes (fsm_place.c), and only exceptions (node
 * failures, pins, overrides) are read from LMDB.
 *
 * Failure: OMBRA_ENOTFOUND with a message naming the object, OMBRA_EINVAL
 * for a malformed name, OMBRA_ENOMEM, or OMBRA_EIO for LMDB errors.  On
 * error nothing is returned to the caller (outputs untouched or empty). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsm_internal.h"
#include "placement.h"

#define FSM_SHARD_DEFAULT 1024u
#define FSM_SHARD_MAX 65536u

/* Make room for one more element of elem bytes in *items (n used, *cap
 * allocated; doubling from `first`).  0 or OMBRA_ENOMEM (*items kept). */
static int fsm_grow(void **items, size_t n, size_t *cap, size_t elem,
		    size_t first)
{
	if (n < *cap)
		return 0;
	size_t want = *cap == 0 ? first : *cap * 2;
	void *grown = realloc(*items, want * elem);
	if (grown == NULL)
		return OMBRA_ENOMEM;
	*items = grown;
	*cap = want;
	return 0;
}

static int fsm_vec_push(struct fsm_vec *v, ProtobufCMessage *m)
{
	if (fsm_grow((void **)&v->items, v->n, &v->cap, sizeof(*v->items),
		     16) != 0)
		return OMBRA_ENOMEM;
	v->items[v->n++] = m;
	return 0;
}

/* Unpack every value of db (key order) for which keep() says yes. */
int fsm_scan(struct fsm *f, MDB_txn *txn, enum fsm_db db,
	     const ProtobufCMessageDescriptor *desc, fsm_keep_fn keep,
	     const void *arg, struct fsm_vec *out, char *errmsg)
{
	MDB_cursor *cur;
	MDB_val k;
	MDB_val v;
	int rc;
	int rv = 0;

	rc = mdb_cursor_open(txn, f->dbi[db], &cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_cursor_open");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		ProtobufCMessage *m;

		m = protobuf_c_message_unpack(desc, NULL, v.mv_size, v.mv_data);
		if (m == NULL) {
			ombra_errmsg_printf(errmsg,
					    "%s: stored %s does not decode",
					    fsm_db_names[db], desc->short_name);
			rv = OMBRA_EIO;
			break;
		}
		if (keep != NULL && !keep(m, arg)) {
			protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		if (fsm_vec_push(out, m) != 0) {
			protobuf_c_message_free_unpacked(m, NULL);
			ombra_errmsg_printf(errmsg, "out of memory");
			rv = OMBRA_ENOMEM;
			break;
		}
	}
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_get");
	mdb_cursor_close(cur);
	return rv;
}

static int fsm_check_name(const char *what, const char *name, char *errmsg)
{
	return cmd_validate_name(what, name, errmsg) == 0 ? 0 : OMBRA_EINVAL;
}

int fsm_get_volume(struct fsm *f, const char *name, Ombra__V1__Volume **out,
		   char *errmsg)
{
	MDB_txn *txn;
	int rv;

	rv = fsm_check_name("volume", name, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_volume_by_name(f, txn, name, out, errmsg);
	mdb_txn_abort(txn);
	return rv;
}

int fsm_get_volume_by_id(struct fsm *f, uint64_t id, Ombra__V1__Volume **out,
			 char *errmsg)
{
	ProtobufCMessage *m = NULL;
	MDB_txn *txn;
	int rv;

	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_id_get(f, txn, FSM_DB_VOLUMES, id,
			&ombra__v1__volume__descriptor, &m, errmsg);
	mdb_txn_abort(txn);
	if (rv == OMBRA_ENOTFOUND)
		ombra_errmsg_printf(errmsg, "volume %" PRIu64 " does not exist",
				    id);
	if (rv == 0)
		*out = (Ombra__V1__Volume *)m;
	return rv;
}

bool fsm_keep_volume_region(const ProtobufCMessage *m, const void *arg)
{
	return strcmp(((const Ombra__V1__Volume *)m)->home_region,
		      (const char *)arg) == 0;
}

int fsm_list_volumes(struct fsm *f, const char *region,
		     Ombra__V1__Volume ***out, size_t *n, char *errmsg)
{
	struct fsm_vec vec = {NULL, 0, 0};
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k;
	MDB_val v;
	int rc;
	int rv;

	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	/* Walk volume_names so that the answer is sorted by name. */
	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_VOLUME_NAMES], &cur);
	if (rc != 0) {
		rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_open");
		goto out;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		ProtobufCMessage *m = NULL;

		if (v.mv_size != 8) {
			ombra_errmsg_printf(errmsg, "volume_names: bad id");
			rv = OMBRA_EIO;
			goto out;
		}
		rv = fsm_id_get(f, txn, FSM_DB_VOLUMES,
				fsm_u64_decode(v.mv_data),
				&ombra__v1__volume__descriptor, &m, errmsg);
		if (rv == OMBRA_ENOTFOUND) {
			ombra_errmsg_printf(
			    errmsg, "volume_names: name without volume");
			rv = OMBRA_EIO;
		}
		if (rv != 0)
			goto out;
		if (region != NULL && region[0] != '\0' &&
		    !fsm_keep_volume_region(m, region)) {
			protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		if (fsm_vec_push(&vec, m) != 0) {
			protobuf_c_message_free_unpacked(m, NULL);
			ombra_errmsg_printf(errmsg, "out of memory");
			rv = OMBRA_ENOMEM;
			goto out;
		}
	}
	if (rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_get");
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rv != 0) {
		fsm_free_list(vec.items, vec.n);
		return rv;
	}
	*out = (Ombra__V1__Volume **)vec.items;
	*n = vec.n;
	return 0;
}

/* Fill node_count of each region from the nodes DB. */
static int fsm_count_region_nodes(struct fsm *f, MDB_txn *txn,
				  Ombra__V1__Region **regions, size_t n,
				  char *errmsg)
{
	struct fsm_vec nodes = {NULL, 0, 0};
	size_t i;
	size_t j;
	int rv;

	rv = fsm_scan(f, txn, FSM_DB_NODES, &ombra__v1__node__descriptor, NULL,
		      NULL, &nodes, errmsg);
	if (rv == 0) {
		for (i = 0; i < n; i++) {
			regions[i]->node_count = 0;
			for (j = 0; j < nodes.n; j++) {
				const Ombra__V1__Node *node =
				    (const Ombra__V1__Node *)nodes.items[j];

				if (strcmp(node->region, regions[i]->name) == 0)
					regions[i]->node_count++;
			}
		}
	}
	fsm_free_list(nodes.items, nodes.n);
	return rv;
}

int fsm_get_region(struct fsm *f, const char *name, Ombra__V1__Region **out,
		   char *errmsg)
{
	ProtobufCMessage *m = NULL;
	Ombra__V1__Region *region;
	MDB_txn *txn;
	MDB_val k;
	int rv;

	rv = fsm_check_name("region", name, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	k.mv_size = strlen(name);
	k.mv_data = (void *)name;
	rv = fsm_pb_get(f, txn, FSM_DB_REGIONS, &k,
			&ombra__v1__region__descriptor, &m, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		ombra_errmsg_printf(errmsg,
				    "region '%s' does not exist; add it with "
				    "`ombractl region add %s`",
				    name, name);
	if (rv == 0) {
		region = (Ombra__V1__Region *)m;
		rv = fsm_count_region_nodes(f, txn, &region, 1, errmsg);
		if (rv != 0)
			protobuf_c_message_free_unpacked(m, NULL);
		else
			*out = region;
	}
	mdb_txn_abort(txn);
	return rv;
}

int fsm_list_regions(struct fsm *f, Ombra__V1__Region ***out, size_t *n,
		     char *errmsg)
{
	struct fsm_vec vec = {NULL, 0, 0};
	MDB_txn *txn;
	int rv;

	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_scan(f, txn, FSM_DB_REGIONS, &ombra__v1__region__descriptor,
		      NULL, NULL, &vec, errmsg);
	if (rv == 0)
		rv = fsm_count_region_nodes(
		    f, txn, (Ombra__V1__Region **)vec.items, vec.n, errmsg);
	mdb_txn_abort(txn);
	if (rv != 0) {
		fsm_free_list(vec.items, vec.n);
		return rv;
	}
	*out = (Ombra__V1__Region **)vec.items;
	*n = vec.n;
	return 0;
}

int fsm_get_node(struct fsm *f, uint64_t id, Ombra__V1__Node **out,
		 char *errmsg)
{
	ProtobufCMessage *m = NULL;
	MDB_txn *txn;
	int rv;

	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_id_get(f, txn, FSM_DB_NODES, id, &ombra__v1__node__descriptor,
			&m, errmsg);
	mdb_txn_abort(txn);
	if (rv == OMBRA_ENOTFOUND)
		ombra_errmsg_printf(errmsg,
				    "node %" PRIu64 " does not exist; list "
				    "nodes with `ombractl node list`",
				    id);
	if (rv == 0)
		*out = (Ombra__V1__Node *)m;
	return rv;
}

static bool fsm_keep_node_region(const ProtobufCMessage *m, const void *arg)
{
	return strcmp(((const Ombra__V1__Node *)m)->region,
		      (const char *)arg) == 0;
}

int fsm_list_nodes(struct fsm *f, const char *region, Ombra__V1__Node ***out,
		   size_t *n, char *errmsg)
{
	struct fsm_vec vec = {NULL, 0, 0};
	bool filter = region != NULL && region[0] != '\0';
	MDB_txn *txn;
	int rv;

	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_scan(f, txn, FSM_DB_NODES, &ombra__v1__node__descriptor,
		      filter ? fsm_keep_node_region : NULL, region, &vec,
		      errmsg);
	mdb_txn_abort(txn);
	if (rv != 0) {
		fsm_free_list(vec.items, vec.n);
		return rv;
	}
	*out = (Ombra__V1__Node **)vec.items;
	*n = vec.n;
	return 0;
}

int fsm_list_members(struct fsm *f, Ombra__V1__MetadMember ***out, size_t *n,
		     char *errmsg)
{
	struct fsm_vec vec = {NULL, 0, 0};
	MDB_txn *txn;
	int rv;

	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_scan(f, txn, FSM_DB_MEMBERS,
		      &ombra__v1__metad_member__descriptor, NULL, NULL, &vec,
		      errmsg);
	mdb_txn_abort(txn);
	if (rv != 0) {
		fsm_free_list(vec.items, vec.n);
		return rv;
	}
	*out = (Ombra__V1__MetadMember **)vec.items;
	*n = vec.n;
	return 0;
}

int fsm_counts(struct fsm *f, uint32_t *regions, uint32_t *nodes,
	       uint32_t *volumes)
{
	static const enum fsm_db dbs[3] = {FSM_DB_REGIONS, FSM_DB_NODES,
					   FSM_DB_VOLUMES};
	uint32_t *outs[3] = {regions, nodes, volumes};
	char errmsg[OMBRA_ERRMSG_LEN];
	MDB_txn *txn;
	MDB_stat st;
	int rv;
	int i;

	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	for (i = 0; i < 3; i++) {
		if (mdb_stat(txn, f->dbi[dbs[i]], &st) != 0) {
			rv = OMBRA_EIO;
			break;
		}
		if (outs[i] != NULL)
			*outs[i] = st.ms_entries > UINT32_MAX
				       ? UINT32_MAX
				       : (uint32_t)st.ms_entries;
	}
	mdb_txn_abort(txn);
	return rv;
}

/* ---- shard map ---- */

struct fsm_ids {
	uint64_t *ids;
	size_t n;
	size_t cap;
};

static int fsm_ids_push(struct fsm_ids *s, uint64_t id)
{
	if (id == 0)
		return 0;
	if (fsm_grow((void **)&s->ids, s->n, &s->cap, sizeof(*s->ids), 64) != 0)
		return OMBRA_ENOMEM;
	s->ids[s->n++] = id;
	return 0;
}

static int fsm_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Sort and drop duplicates in place. */
static void fsm_ids_unique(struct fsm_ids *s)
{
	size_t i;
	size_t m = 0;

	if (s->n == 0)
		return;
	qsort(s->ids, s->n, sizeof(*s->ids), fsm_cmp_u64);
	for (i = 1; i < s->n; i++) {
		if (s->ids[i] != s->ids[m])
			s->ids[++m] = s->ids[i];
	}
	s->n = m + 1;
}

static int fsm_placement_ids(const Ombra__V1__SegmentPlacement *p,
			     struct fsm_ids *ids)
{
	size_t i;
	int rv;

	rv = fsm_ids_push(ids, p->primary_node_id);
	for (i = 0; rv == 0 && i < p->n_replica_node_ids; i++)
		rv = fsm_ids_push(ids, p->replica_node_ids[i]);
	for (i = 0; rv == 0 && i < p->n_resync_node_ids; i++)
		rv = fsm_ids_push(ids, p->resync_node_ids[i]);
	for (i = 0; rv == 0 && i < p->n_shadows; i++) {
		if (p->shadows[i] != NULL)
			rv = fsm_ids_push(ids, p->shadows[i]->node_id);
	}
	return rv;
}

/* The segments [first, first+count) of vol into resp->segments. */
static int fsm_shard_segments(struct fsm *f, MDB_txn *txn,
			      const Ombra__V1__Volume *vol, uint64_t first,
			      uint64_t count,
			      Ombra__V1__GetVolumeShardingInfoResponse *resp,
			      struct fsm_ids *ids, char *errmsg)
{
	struct fsm_region_nodes rn;
	MDB_cursor *cur = NULL;
	uint8_t kb[16];
	MDB_val k = {sizeof(kb), kb};
	MDB_val v;
	uint64_t s;
	int rc;
	int rv;

	rv = fsm_region_nodes_load(f, txn, vol->home_region, &rn, errmsg);
	if (rv != 0)
		goto out;
	resp->segments = calloc(count, sizeof(*resp->segments));
	if (resp->segments == NULL) {
		rv = OMBRA_ENOMEM;
		goto out;
	}
	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_PLACEMENTS], &cur);
	if (rc != 0) {
		rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_open");
		goto out;
	}
	/* Merge: walk the volume's exceptions in key order alongside. */
	fsm_placement_key(kb, vol->id, first);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	for (s = first; s < first + count; s++) {
		Ombra__V1__SegmentPlacement *p = NULL;

		while (rc == 0 && k.mv_size == 16 &&
		       fsm_u64_decode(k.mv_data) == vol->id &&
		       fsm_u64_decode((uint8_t *)k.mv_data + 8) < s)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_get");
			goto out;
		}
		if (rc == 0 && k.mv_size == 16 &&
		    fsm_u64_decode(k.mv_data) == vol->id &&
		    fsm_u64_decode((uint8_t *)k.mv_data + 8) == s) {
			p = ombra__v1__segment_placement__unpack(
			    NULL, v.mv_size, v.mv_data);
			if (p == NULL) {
				ombra_errmsg_printf(errmsg,
						    "placement of segment "
						    "%" PRIu64
						    " does not decode",
						    s);
				rv = OMBRA_EIO;
				goto out;
			}
			fsm_place_normalize(p, s);
		} else {
			p = fsm_place_computed(&rn, vol->id, s, vol->replicas);
			if (p == NULL) {
				rv = OMBRA_ENOMEM;
				goto out;
			}
		}
		resp->segments[resp->n_segments++] = p;
		rv = fsm_placement_ids(p, ids);
		if (rv != 0)
			goto out;
	}
out:
	if (rv == OMBRA_ENOMEM)
		ombra_errmsg_printf(errmsg, "out of memory");
	if (cur != NULL)
		mdb_cursor_close(cur);
	fsm_region_nodes_free(&rn);
	return rv;
}

/* resp->nodes for every id in ids (sorted, unique).  A node id that has no
 * record (cannot happen: nodes are never deleted) is skipped. */
static int fsm_shard_nodes(struct fsm *f, MDB_txn *txn,
			   const struct fsm_ids *ids,
			   Ombra__V1__GetVolumeShardingInfoResponse *resp,
			   char *errmsg)
{
	size_t i;
	int rv;

	if (ids->n == 0)
		return 0;
	resp->nodes = calloc(ids->n, sizeof(*resp->nodes));
	if (resp->nodes == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	for (i = 0; i < ids->n; i++) {
		ProtobufCMessage *m = NULL;

		rv = fsm_id_get(f, txn, FSM_DB_NODES, ids->ids[i],
				&ombra__v1__node__descriptor, &m, errmsg);
		if (rv == OMBRA_ENOTFOUND)
			continue;
		if (rv != 0)
			return rv;
		resp->nodes[resp->n_nodes++] = (Ombra__V1__Node *)m;
	}
	return 0;
}

/* Shared body of fsm_shard_map() and fsm_shard_map_by_id(): the volume
 * is looked up by name when volume != NULL, else by id. */
static int fsm_shard_map_of(struct fsm *f, const char *volume, uint64_t id,
			    uint64_t first, uint32_t max,
			    Ombra__V1__GetVolumeShardingInfoResponse *resp,
			    char *errmsg)
{
	struct fsm_ids ids = {NULL, 0, 0};
	ProtobufCMessage *m = NULL;
	Ombra__V1__Volume *vol = NULL;
	uint64_t count = 0;
	MDB_txn *txn;
	int rv;

	if (resp == NULL) {
		ombra_errmsg_printf(errmsg, "fsm_shard_map(): no response");
		return OMBRA_EINVAL;
	}
	if (volume != NULL) {
		rv = fsm_check_name("volume", volume, errmsg);
		if (rv != 0)
			return rv;
	}
	if (max == 0)
		max = FSM_SHARD_DEFAULT;
	if (max > FSM_SHARD_MAX)
		max = FSM_SHARD_MAX;
	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	if (volume != NULL) {
		rv = fsm_volume_by_name(f, txn, volume, &vol, errmsg);
	} else {
		rv = fsm_id_get(f, txn, FSM_DB_VOLUMES, id,
				&ombra__v1__volume__descriptor, &m, errmsg);
		if (rv == OMBRA_ENOTFOUND)
			ombra_errmsg_printf(
			    errmsg, "volume %" PRIu64 " does not exist", id);
		vol = (Ombra__V1__Volume *)m;
	}
	if (rv != 0)
		goto out;
	resp->volume = vol;
	resp->next_segment = 0;
	if (first < vol->segment_count) {
		count = vol->segment_count - first;
		if (count > max)
			count = max;
		rv = fsm_shard_segments(f, txn, vol, first, count, resp, &ids,
					errmsg);
		if (rv != 0)
			goto out;
		fsm_ids_unique(&ids);
		rv = fsm_shard_nodes(f, txn, &ids, resp, errmsg);
		if (rv != 0)
			goto out;
		if (first + count < vol->segment_count)
			resp->next_segment = first + count;
	}
out:
	mdb_txn_abort(txn);
	free(ids.ids);
	if (rv != 0) {
		fsm_free_shard_map(resp);
		if (rv != OMBRA_ENOTFOUND && volume != NULL)
			ombra_errmsg_wrapf(errmsg, "shard map of '%s'", volume);
		else if (rv != OMBRA_ENOTFOUND)
			ombra_errmsg_wrapf(errmsg,
					   "shard map of volume %" PRIu64, id);
	}
	return rv;
}

int fsm_shard_map(struct fsm *f, const char *volume, uint64_t first,
		  uint32_t max, Ombra__V1__GetVolumeShardingInfoResponse *resp,
		  char *errmsg)
{
	if (volume == NULL) {
		ombra_errmsg_printf(errmsg, "fsm_shard_map(): no volume name");
		return OMBRA_EINVAL;
	}
	return fsm_shard_map_of(f, volume, 0, first, max, resp, errmsg);
}

int fsm_shard_map_by_id(struct fsm *f, uint64_t volume_id, uint64_t first,
			uint32_t max,
			Ombra__V1__GetVolumeShardingInfoResponse *resp,
			char *errmsg)
{
	return fsm_shard_map_of(f, NULL, volume_id, first, max, resp, errmsg);
}

void fsm_free_shard_map(Ombra__V1__GetVolumeShardingInfoResponse *resp)
{
	if (resp == NULL)
		return;
	if (resp->volume != NULL)
		protobuf_c_message_free_unpacked(&resp->volume->base, NULL);
	fsm_free_list(resp->segments, resp->n_segments);
	fsm_free_list(resp->nodes, resp->n_nodes);
	ombra__v1__get_volume_sharding_info_response__init(resp);
}
