/* shardmap.c: compact shard-map cache of ombra-stored (see shardmap.h).
 * Failure: OMBRA_ENOMEM on allocation, OMBRA_EPROTO when metad sends a
 * map this node cannot represent; nothing is partially installed. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "shardmap.h"

int sm_volume_new(const Ombra__V1__GetVolumeShardingInfoResponse *resp,
		  struct sm_volume **out, char *errmsg)
{
	const Ombra__V1__Volume *vol = resp->volume;
	struct sm_volume *v;

	if (vol == NULL || vol->id == 0 || vol->segment_size_bytes == 0) {
		ombra_errmsg_printf(errmsg, "shard map without a volume");
		return OMBRA_EPROTO;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL) {
		goto oom;
	}
	v->id = vol->id;
	v->size = vol->size_bytes;
	v->segsize = vol->segment_size_bytes;
	v->n_segs = (v->size + v->segsize - 1) / v->segsize;
	v->writer_epoch = vol->writer_epoch;
	v->has_shadow_policy = vol->shadow_policy != NULL;
	v->fill_bytes_per_s = vol->shadow_policy != NULL
				  ? vol->shadow_policy->fill_bytes_per_s
				  : 0;
	v->name = strdup(vol->name != NULL ? vol->name : "");
	v->home_region =
	    strdup(vol->home_region != NULL ? vol->home_region : "");
	v->segs = calloc(v->n_segs > 0 ? v->n_segs : 1, sizeof(*v->segs));
	if (v->name == NULL || v->home_region == NULL || v->segs == NULL) {
		sm_volume_free(v);
		goto oom;
	}
	*out = v;
	return 0;
oom:
	ombra_errmsg_printf(errmsg, "out of memory for a shard map");
	return OMBRA_ENOMEM;
}

static int copy_ids(uint32_t *dst, uint8_t *n, uint64_t *const src,
		    size_t n_src, char *errmsg)
{
	if (n_src > SM_MAX_COPIES) {
		ombra_errmsg_printf(errmsg, "more than %d copies of a segment",
				    SM_MAX_COPIES);
		return OMBRA_EPROTO;
	}
	for (size_t i = 0; i < n_src; i++) {
		if (src[i] > UINT32_MAX) {
			ombra_errmsg_printf(errmsg, "node id %llu too large",
					    (unsigned long long)src[i]);
			return OMBRA_EPROTO;
		}
		dst[i] = (uint32_t)src[i];
	}
	*n = (uint8_t)n_src;
	return 0;
}

int sm_volume_set_segment(struct sm_volume *v,
			  const Ombra__V1__SegmentPlacement *p, char *errmsg)
{
	struct sm_seg s = {0};
	int rv;

	if (p->index >= v->n_segs) {
		ombra_errmsg_printf(errmsg,
				    "segment %llu beyond the volume's %llu",
				    (unsigned long long)p->index,
				    (unsigned long long)v->n_segs);
		return OMBRA_EPROTO;
	}
	if (p->primary_node_id > UINT32_MAX || p->lease_epoch > UINT32_MAX) {
		ombra_errmsg_printf(errmsg, "segment %llu: id out of range",
				    (unsigned long long)p->index);
		return OMBRA_EPROTO;
	}
	s.primary = (uint32_t)p->primary_node_id;
	s.epoch = (uint32_t)(p->lease_epoch != 0 ? p->lease_epoch : 1);
	rv = copy_ids(s.rep, &s.n_rep, p->replica_node_ids,
		      p->n_replica_node_ids, errmsg);
	if (rv == 0) {
		rv = copy_ids(s.resync, &s.n_resync, p->resync_node_ids,
			      p->n_resync_node_ids, errmsg);
	}
	if (rv == 0 && p->n_shadows > SM_MAX_COPIES) {
		ombra_errmsg_printf(errmsg, "more than %d shadows of a segment",
				    SM_MAX_COPIES);
		rv = OMBRA_EPROTO;
	}
	for (size_t i = 0; rv == 0 && i < p->n_shadows; i++) {
		if (p->shadows[i]->node_id > UINT32_MAX) {
			ombra_errmsg_printf(
			    errmsg, "shadow node id %llu too large",
			    (unsigned long long)p->shadows[i]->node_id);
			rv = OMBRA_EPROTO;
			break;
		}
		s.shadow[s.n_shadow++] = (uint32_t)p->shadows[i]->node_id;
	}
	if (rv == 0) {
		v->segs[p->index] = s;
	}
	return rv;
}

static int add_node(struct sm_volume *v, const Ombra__V1__Node *n)
{
	struct sm_node *nodes;
	char *addr;

	for (size_t i = 0; i < v->n_nodes; i++) {
		if (v->nodes[i].id == n->id) {
			return 0;
		}
	}
	nodes = realloc(v->nodes, (v->n_nodes + 1) * sizeof(*nodes));
	if (nodes == NULL) {
		return OMBRA_ENOMEM;
	}
	v->nodes = nodes;
	addr = strdup(n->address != NULL ? n->address : "");
	if (addr == NULL) {
		return OMBRA_ENOMEM;
	}
	nodes[v->n_nodes++] = (struct sm_node){
	    .id = n->id, .address = addr, .state = (int)n->state};
	return 0;
}

int sm_volume_add_page(struct sm_volume *v,
		       const Ombra__V1__GetVolumeShardingInfoResponse *resp,
		       char *errmsg)
{
	for (size_t i = 0; i < resp->n_segments; i++) {
		int rv = sm_volume_set_segment(v, resp->segments[i], errmsg);

		if (rv != 0) {
			return rv;
		}
	}
	for (size_t i = 0; i < resp->n_nodes; i++) {
		if (add_node(v, resp->nodes[i]) != 0) {
			ombra_errmsg_printf(errmsg, "out of memory");
			return OMBRA_ENOMEM;
		}
	}
	return 0;
}

void sm_volume_free(struct sm_volume *v)
{
	if (v == NULL) {
		return;
	}
	for (size_t i = 0; i < v->n_nodes; i++) {
		free(v->nodes[i].address);
	}
	free(v->nodes);
	free(v->segs);
	free(v->name);
	free(v->home_region);
	free(v);
}

const struct sm_node *sm_volume_node(const struct sm_volume *v, uint64_t id)
{
	for (size_t i = 0; i < v->n_nodes; i++) {
		if (v->nodes[i].id == id) {
			return &v->nodes[i];
		}
	}
	return NULL;
}

bool sm_seg_in_sync(const struct sm_seg *s, uint64_t node)
{
	if (s->primary == node) {
		return true;
	}
	for (unsigned i = 0; i < s->n_rep; i++) {
		if (s->rep[i] == node) {
			return true;
		}
	}
	return false;
}

bool sm_seg_has_shadow(const struct sm_seg *s, uint64_t node)
{
	for (unsigned i = 0; i < s->n_shadow; i++) {
		if (s->shadow[i] == node) {
			return true;
		}
	}
	return false;
}

bool sm_volume_has_home_role(const struct sm_volume *v, uint64_t node)
{
	for (uint64_t i = 0; i < v->n_segs; i++) {
		const struct sm_seg *s = &v->segs[i];

		if (sm_seg_in_sync(s, node)) {
			return true;
		}
		for (unsigned j = 0; j < s->n_resync; j++) {
			if (s->resync[j] == node) {
				return true;
			}
		}
	}
	return false;
}

struct sm_volume *sm_find(struct shardmap *m, uint64_t id)
{
	for (struct sm_volume *v = m->head; v != NULL; v = v->next) {
		if (v->id == id) {
			return v;
		}
	}
	return NULL;
}

void sm_put(struct shardmap *m, struct sm_volume *v)
{
	struct sm_volume *old = sm_find(m, v->id);

	if (old != NULL && old->writer_epoch > v->writer_epoch) {
		v->writer_epoch = old->writer_epoch;
	}
	sm_remove(m, v->id);
	v->next = m->head;
	m->head = v;
}

void sm_remove(struct shardmap *m, uint64_t id)
{
	for (struct sm_volume **p = &m->head; *p != NULL; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct sm_volume *v = *p;

			*p = v->next;
			sm_volume_free(v);
			return;
		}
	}
}

void sm_clear(struct shardmap *m)
{
	while (m->head != NULL) {
		struct sm_volume *v = m->head;

		m->head = v->next;
		sm_volume_free(v);
	}
}
