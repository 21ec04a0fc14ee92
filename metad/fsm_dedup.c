/* fsm_dedup.c: request-id deduplication of applied commands: the stored
 * CommandResult of every request id for FSM_DEDUP_WINDOW Raft indexes, so
 * that a client's retried write is applied once and answered with its
 * first result.  Pruning is driven by the log only (every member prunes
 * the same records at the same index).
 *
 * Failure: OMBRA_EIO with errmsg for LMDB errors and damaged records. */
#include <stdio.h>
#include <string.h>

#include "fsm_internal.h"

/* Stored result of an earlier command with this request_id, if any. */
int fsm_dedup_lookup(struct fsm *f, MDB_txn *txn, const char *rid,
		     struct fsm_result *res, bool *found, char *errmsg)
{
	ProtobufCMessage *m = NULL;
	Ombra__V1__CommandResult *r;
	MDB_val k = {strlen(rid), (void *)rid};
	int rv;

	*found = false;
	rv = fsm_pb_get(f, txn, FSM_DB_REQUESTS, &k,
			&ombra__v1__command_result__descriptor, &m, errmsg);
	if (rv == OMBRA_ENOTFOUND)
		return 0;
	if (rv != 0)
		return rv;
	r = (Ombra__V1__CommandResult *)m;
	res->code = r->code;
	snprintf(res->message, sizeof(res->message), "%s", r->message);
	res->object_id = r->object_id;
	res->index = r->index;
	*found = true;
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* Drop dedup records written more than FSM_DEDUP_WINDOW indexes before
 * index.  Driven by the log only, so every member prunes the same way. */
static int fsm_dedup_prune(struct fsm *f, MDB_txn *txn, uint64_t index,
			   char *errmsg)
{
	MDB_cursor *cur;
	MDB_val k;
	MDB_val v;
	int rc;
	int rv = 0;

	if (index <= FSM_DEDUP_WINDOW)
		return 0;
	rc = mdb_cursor_open(txn, f->dbi[FSM_DB_REQUEST_LOG], &cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_cursor_open");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) {
		char rid[FSM_REQUEST_ID_MAX];
		MDB_val rk = {v.mv_size, rid};
		int drc;

		if (k.mv_size != 8 ||
		    fsm_u64_decode(k.mv_data) >= index - FSM_DEDUP_WINDOW)
			break;
		/* Copy: the cursor's value is invalid after a write. */
		if (v.mv_size == 0 || v.mv_size > sizeof(rid)) {
			ombra_errmsg_printf(
			    errmsg,
			    "request_log: bad request id of %zu "
			    "bytes",
			    v.mv_size);
			mdb_cursor_close(cur);
			return OMBRA_EIO;
		}
		memcpy(rid, v.mv_data, v.mv_size);
		drc = mdb_del(txn, f->dbi[FSM_DB_REQUESTS], &rk, NULL);
		if (drc != 0 && drc != MDB_NOTFOUND) {
			rc = drc;
			break;
		}
		rc = mdb_cursor_del(cur, 0);
		if (rc != 0)
			break;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "prune request_log");
	mdb_cursor_close(cur);
	return rv;
}

int fsm_dedup_store(struct fsm *f, MDB_txn *txn, uint64_t index,
		    const char *rid, const struct fsm_result *res, char *errmsg)
{
	Ombra__V1__CommandResult r = OMBRA__V1__COMMAND_RESULT__INIT;
	MDB_val k = {strlen(rid), (void *)rid};
	uint8_t ib[8];
	MDB_val ik = {sizeof(ib), ib};
	int rc;
	int rv;

	r.code = res->code;
	r.message = (char *)res->message;
	r.object_id = res->object_id;
	r.index = res->index;
	rv = fsm_pb_put(f, txn, FSM_DB_REQUESTS, &k, &r.base, errmsg);
	if (rv != 0)
		return rv;
	fsm_u64_encode(ib, index);
	rc = mdb_put(txn, f->dbi[FSM_DB_REQUEST_LOG], &ik, &k, 0);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_put request_log");
	return fsm_dedup_prune(f, txn, index, errmsg);
}
