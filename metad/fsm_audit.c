/* fsm_audit.c: the state machine's audit records (lib/audit.h; record
 * shapes in docs/metad.md "Audit log"): every committed change of a
 * segment's placement (primary, lease epoch, in-sync copies: the write
 * lease grants of DESIGN.md "Leases"), every volume writer lease change,
 * node state change and volume creation.
 *
 * Records are queued in f->audit_pending while the entry is applied and
 * written by fsm_apply_command() once the LMDB transaction committed, so
 * the log never shows a grant that was rolled back.  Every member applies
 * the same entries, so every member's log holds the same records (with
 * its own t_ms, the time it applied them); index and cmd_ms (the
 * proposing leader's time stamp) identify the entry.
 *
 * Failure: none of its own; out-of-memory drops records with one warning
 * (audit_defer), and nothing here can fail an apply. */
#include <inttypes.h>
#include <stdio.h>

#include "fsm_internal.h"

void fsm_set_audit(struct fsm *f, struct audit *a)
{
	f->audit = a;
}

/* ids as a JSON array into out (cap bytes); truncated lists end early. */
static const char *ids_json(char *out, size_t cap, const uint64_t *ids,
			    size_t n)
{
	size_t o = 0;

	out[o++] = '[';
	for (size_t i = 0; i < n && o + 24 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%" PRIu64,
				      i == 0 ? "" : ",", ids[i]);
	out[o++] = ']';
	out[o] = '\0';
	return out;
}

#define AUDIT_HEAD "\"index\":%" PRIu64 ",\"cmd_ms\":%" PRIu64 ","

void fsm_audit_placement(struct fsm *f, uint64_t volume_id,
			 const Ombra__V1__SegmentPlacement *p)
{
	char rep[256], res[256];

	if (f->audit == NULL)
		return;
	audit_defer(&f->audit_pending,
		    AUDIT_HEAD "\"ev\":\"placement\",\"volume\":%" PRIu64
			       ",\"segment\":%" PRIu64 ",\"epoch\":%" PRIu64
			       ",\"primary\":%" PRIu64
			       ",\"replicas\":%s,\"resync\":%s",
		    f->audit_index, f->audit_cmd_ms, volume_id, p->index,
		    (uint64_t)p->lease_epoch, p->primary_node_id,
		    ids_json(rep, sizeof(rep), p->replica_node_ids,
			     p->n_replica_node_ids),
		    ids_json(res, sizeof(res), p->resync_node_ids,
			     p->n_resync_node_ids));
}

void fsm_audit_placement_cleared(struct fsm *f, uint64_t volume_id,
				 uint64_t segment)
{
	if (f->audit == NULL)
		return;
	audit_defer(&f->audit_pending,
		    AUDIT_HEAD
		    "\"ev\":\"placement_cleared\",\"volume\":%" PRIu64
		    ",\"segment\":%" PRIu64,
		    f->audit_index, f->audit_cmd_ms, volume_id, segment);
}

void fsm_audit_volume_created(struct fsm *f, const Ombra__V1__Volume *vol)
{
	char name[160], region[160];

	if (f->audit == NULL)
		return;
	audit_defer(&f->audit_pending,
		    AUDIT_HEAD
		    "\"ev\":\"volume_created\",\"volume\":%" PRIu64
		    ",\"name\":%s,\"region\":%s,\"segments\":%" PRIu64
		    ",\"epoch\":1",
		    f->audit_index, f->audit_cmd_ms, vol->id,
		    audit_json_str(name, sizeof(name), vol->name),
		    audit_json_str(region, sizeof(region), vol->home_region),
		    vol->segment_count);
}

void fsm_audit_node_state(struct fsm *f, uint64_t node_id,
			  Ombra__V1__NodeState state)
{
	const char *s = state == OMBRA__V1__NODE_STATE__NODE_UP	    ? "UP"
			: state == OMBRA__V1__NODE_STATE__NODE_DOWN ? "DOWN"
			: state == OMBRA__V1__NODE_STATE__NODE_DRAINING
			    ? "DRAINING"
			    : "UNSPECIFIED";

	if (f->audit == NULL)
		return;
	audit_defer(&f->audit_pending,
		    AUDIT_HEAD "\"ev\":\"node_state\",\"node\":%" PRIu64
			       ",\"state\":\"%s\"",
		    f->audit_index, f->audit_cmd_ms, node_id, s);
}

void fsm_audit_writer_lease(struct fsm *f, const Ombra__V1__Volume *vol,
			    const char *op, const char *holder,
			    uint64_t expires_ms, uint64_t duration_ms)
{
	char h[300];

	if (f->audit == NULL)
		return;
	audit_defer(&f->audit_pending,
		    AUDIT_HEAD
		    "\"ev\":\"writer_lease\",\"volume\":%" PRIu64
		    ",\"op\":\"%s\",\"holder\":%s,\"writer_epoch\":%" PRIu64
		    ",\"expires_ms\":%" PRIu64 ",\"duration_ms\":%" PRIu64,
		    f->audit_index, f->audit_cmd_ms, vol->id, op,
		    audit_json_str(h, sizeof(h), holder), vol->writer_epoch,
		    expires_ms, duration_ms);
}
