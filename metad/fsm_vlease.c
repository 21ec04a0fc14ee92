/* fsm_vlease.c: applying CmdVolumeLease, the single-writer lease of a
 * volume (RBD exclusive-lock style; DESIGN.md "Proxy", "Leases";
 * docs/metad.md "Volume writer lease").
 *
 * State: Volume.writer / writer_epoch (so shard maps, GetVolume and the
 * stored nodes' caches carry them) and, in the "vleases" DB, volume id ->
 * 16 bytes: expiry (unix ms, by the granting command's time) and the
 * longest duration granted to the current writer (the wait of a new
 * leader, service_vlease.c).  Transitions, with now = the command's
 * time_unix_ms:
 *
 *   acquire (epoch 0): refused FAILED_PRECONDITION while another holder's
 *     lease is live (now < expiry); otherwise writer = holder, writer_epoch
 *     + 1 (also for the same holder: a restarted proxy fences its former
 *     self), expiry = now + duration;
 *   renew (epoch = writer_epoch, holder = writer): expiry = max(expiry,
 *     now + duration); allowed after expiry as long as nobody took the
 *     lease (the epoch still fences nothing newer); any other epoch or
 *     holder is refused (stale);
 *   release (epoch = writer_epoch, holder = writer): writer = "", record
 *     dropped; writer_epoch stays, so the next grant is still newer.
 *     Releasing a lease nobody holds is OK (a retried release).
 *
 * Grants and releases change the volume (a "volume" event, map_index, so
 * stored refetches the map and fences writes carrying an older
 * writer_epoch); renewals change only the record (no event): a proxy
 * renewing every duration/3 costs one small Raft entry, nothing else.
 *
 * Failure: refusals are recorded in the result (the applied index still
 * moves); OMBRA_EIO / OMBRA_ENOMEM abort the command. */
#include <grpc/status.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "fsm_internal.h"
#include "vlease.h"

#define VLEASE_REC_LEN 16u

static char vlease_none[] = "";

int vlease_validate(Ombra__V1__CmdVolumeLease *c, char *errmsg)
{
	size_t len;

	if (cmd_validate_name("volume", c->volume, errmsg) != 0)
		return OMBRA_EINVAL;
	len = c->holder == NULL ? 0 : strlen(c->holder);
	if (len == 0 || len > VLEASE_HOLDER_MAX) {
		ombra_errmsg_printf(errmsg,
				    "holder must be 1..%u bytes (the proxy's "
				    "identity, e.g. \"r1/10.0.0.5:7300\")",
				    VLEASE_HOLDER_MAX);
		return OMBRA_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)c->holder[i];

		if (ch <= ' ' || ch > '~') {
			ombra_errmsg_printf(errmsg,
					    "holder may only hold printable "
					    "ASCII without spaces (byte %zu "
					    "is 0x%02x)",
					    i, ch);
			return OMBRA_EINVAL;
		}
	}
	if (c->duration_ms == 0)
		c->duration_ms = VLEASE_DEFAULT_MS;
	if (c->duration_ms < VLEASE_MIN_MS || c->duration_ms > VLEASE_MAX_MS) {
		ombra_errmsg_printf(errmsg,
				    "lease duration %" PRIu64 " ms is outside "
				    "%u..%u ms (0 = %u)",
				    c->duration_ms, VLEASE_MIN_MS,
				    VLEASE_MAX_MS, VLEASE_DEFAULT_MS);
		return OMBRA_EINVAL;
	}
	if (c->release && c->epoch == 0) {
		ombra_errmsg_printf(errmsg, "a release must carry the held "
					    "writer epoch");
		return OMBRA_EINVAL;
	}
	return 0;
}

/* Lease record of volume_id: both 0 when absent. */
static int vlease_rec_get(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
			  uint64_t *expires, uint64_t *duration, char *errmsg)
{
	uint8_t kb[8];
	MDB_val k = {sizeof(kb), kb};
	MDB_val v;
	int rc;

	*expires = 0;
	*duration = 0;
	fsm_u64_encode(kb, volume_id);
	rc = mdb_get(txn, f->dbi[FSM_DB_VLEASES], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_get vleases");
	if (v.mv_size != VLEASE_REC_LEN) {
		ombra_errmsg_printf(errmsg,
				    "lease record of volume %" PRIu64
				    " is %zu bytes, not %u",
				    volume_id, v.mv_size, VLEASE_REC_LEN);
		return OMBRA_EIO;
	}
	*expires = fsm_u64_decode(v.mv_data);
	*duration = fsm_u64_decode((const uint8_t *)v.mv_data + 8);
	return 0;
}

static int vlease_rec_put(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
			  uint64_t expires, uint64_t duration, char *errmsg)
{
	uint8_t kb[8];
	uint8_t vb[VLEASE_REC_LEN];
	MDB_val k = {sizeof(kb), kb};
	MDB_val v = {sizeof(vb), vb};
	int rc;

	fsm_u64_encode(kb, volume_id);
	fsm_u64_encode(vb, expires);
	fsm_u64_encode(vb + 8, duration);
	rc = mdb_put(txn, f->dbi[FSM_DB_VLEASES], &k, &v, 0);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_put vleases");
	return 0;
}

int fsm_vlease_delete(struct fsm *f, MDB_txn *txn, uint64_t volume_id,
		      char *errmsg)
{
	uint8_t kb[8];

	fsm_u64_encode(kb, volume_id);
	return fsm_del_key(f, txn, FSM_DB_VLEASES, kb, sizeof(kb), errmsg);
}

static int vlease_put_volume(struct fsm *f, MDB_txn *txn,
			     Ombra__V1__Volume *vol, uint64_t index,
			     struct fsm_change *ch, char *errmsg)
{
	uint8_t kb[8];
	MDB_val k = {sizeof(kb), kb};
	int rv;

	vol->modified_index = index;
	fsm_u64_encode(kb, vol->id);
	rv = fsm_pb_put(f, txn, FSM_DB_VOLUMES, &k, &vol->base, errmsg);
	if (rv == 0)
		fsm_changed(ch, "volume", vol->name, false);
	return rv;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* The transitions of the header on vol (loaded) and its record. */
static int vlease_step(struct fsm *f, MDB_txn *txn, uint64_t index,
		       uint64_t now, const Ombra__V1__CmdVolumeLease *c,
		       Ombra__V1__Volume *vol, struct fsm_result *res,
		       struct fsm_change *ch, char *errmsg)
{
	const char *writer = vol->writer != NULL ? vol->writer : "";
	bool held = writer[0] != '\0';
	bool mine = held && strcmp(writer, c->holder) == 0;
	uint64_t expires, duration;
	int rv;

	rv = vlease_rec_get(f, txn, vol->id, &expires, &duration, errmsg);
	if (rv != 0)
		return rv;
	res->object_id = vol->writer_epoch;
	if (c->release) {
		if (!held)
			return 0; /* nobody holds it: a retried release */
		if (!mine || c->epoch != vol->writer_epoch)
			return fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
					  "'%s' (epoch %" PRIu64 ") cannot "
					  "release volume '%s': it is held "
					  "by '%s' with writer epoch %" PRIu64,
					  c->holder, c->epoch, vol->name,
					  writer, vol->writer_epoch);
		vol->writer = vlease_none;
		rv = fsm_vlease_delete(f, txn, vol->id, errmsg);
		if (rv == 0)
			rv = vlease_put_volume(f, txn, vol, index, ch, errmsg);
		return rv;
	}
	if (c->epoch == 0) {
		if (held && !mine && now < expires)
			return fsm_refuse(
			    res, GRPC_STATUS_FAILED_PRECONDITION,
			    "volume '%s' is held by '%s' (writer epoch "
			    "%" PRIu64 ") for another %" PRIu64 " ms; write "
			    "without the lease or retry after it expires",
			    vol->name, writer, vol->writer_epoch,
			    expires - now);
		if (vol->writer_epoch == UINT64_MAX)
			return fsm_refuse(res, GRPC_STATUS_RESOURCE_EXHAUSTED,
					  "writer epoch of volume '%s' "
					  "exhausted",
					  vol->name);
		duration =
		    mine ? max_u64(duration, c->duration_ms) : c->duration_ms;
		vol->writer = c->holder;
		vol->writer_epoch++;
		res->object_id = vol->writer_epoch;
		rv = vlease_rec_put(f, txn, vol->id, now + c->duration_ms,
				    duration, errmsg);
		if (rv == 0)
			rv = vlease_put_volume(f, txn, vol, index, ch, errmsg);
		return rv;
	}
	if (!mine || c->epoch != vol->writer_epoch)
		return fsm_refuse(res, GRPC_STATUS_FAILED_PRECONDITION,
				  "stale writer lease: '%s' renews volume "
				  "'%s' with epoch %" PRIu64 " but it is held "
				  "by '%s' with writer epoch %" PRIu64
				  "; stop writing and acquire it again",
				  c->holder, vol->name, c->epoch,
				  held ? writer : "(nobody)",
				  vol->writer_epoch);
	return vlease_rec_put(f, txn, vol->id,
			      max_u64(expires, now + c->duration_ms),
			      max_u64(duration, c->duration_ms), errmsg);
}

/* Audit record of an applied (not refused) lease command c on vol (after
 * vlease_step: vol's writer and writer_epoch are the new ones). */
static int vlease_audit(struct fsm *f, MDB_txn *txn,
			const Ombra__V1__CmdVolumeLease *c,
			const Ombra__V1__Volume *vol, char *errmsg)
{
	uint64_t expires = 0, duration = 0;
	int rv = 0;

	if (!c->release)
		rv = vlease_rec_get(f, txn, vol->id, &expires, &duration,
				    errmsg);
	if (rv == 0)
		fsm_audit_writer_lease(f, vol,
				       c->release      ? "release"
				       : c->epoch == 0 ? "acquire"
						       : "renew",
				       c->holder, expires, duration);
	return rv;
}

int fsm_vlease_apply(struct fsm *f, MDB_txn *txn, uint64_t index,
		     uint64_t now_ms, const Ombra__V1__CmdVolumeLease *cmd,
		     struct fsm_result *res, struct fsm_change *ch,
		     char *errmsg)
{
	Ombra__V1__CmdVolumeLease c = *cmd; /* the validator fills defaults */
	Ombra__V1__Volume *vol = NULL;
	char *orig;
	int rv;

	if (vlease_validate(&c, errmsg) != 0)
		return fsm_refuse(res, GRPC_STATUS_INVALID_ARGUMENT, "%s",
				  errmsg);
	rv = fsm_volume_by_name(f, txn, c.volume, &vol, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return fsm_refuse(res, GRPC_STATUS_NOT_FOUND, "%s", errmsg);
	if (rv != 0)
		return rv;
	orig = vol->writer;
	rv = vlease_step(f, txn, index, now_ms, &c, vol, res, ch, errmsg);
	if (rv == 0 && res->code == 0 && f->audit != NULL)
		rv = vlease_audit(f, txn, &c, vol, errmsg);
	/* vol->writer may point into c or at a static "": restore it. */
	vol->writer = orig;
	protobuf_c_message_free_unpacked(&vol->base, NULL);
	return rv;
}

uint64_t vlease_wait_ms(const struct vlease_info *info, const char *holder,
			uint64_t leader_since, uint64_t now)
{
	uint64_t until = leader_since + info->duration_ms;

	if (info->writer[0] == '\0' || strcmp(info->writer, holder) == 0)
		return 0;
	return now < until ? until - now : 0;
}

int fsm_vlease_get(struct fsm *f, const char *volume, struct vlease_info *out,
		   char *errmsg)
{
	Ombra__V1__Volume *vol = NULL;
	MDB_txn *txn = NULL;
	int rv;

	memset(out, 0, sizeof(*out));
	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_volume_by_name(f, txn, volume, &vol, errmsg);
	if (rv == 0) {
		out->volume_id = vol->id;
		out->epoch = vol->writer_epoch;
		snprintf(out->writer, sizeof(out->writer), "%s",
			 vol->writer != NULL ? vol->writer : "");
		rv = vlease_rec_get(f, txn, vol->id, &out->expires_unix_ms,
				    &out->duration_ms, errmsg);
		protobuf_c_message_free_unpacked(&vol->base, NULL);
	}
	mdb_txn_abort(txn);
	return rv;
}
