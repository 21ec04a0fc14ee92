/* fsm.c: lifetime of the metadata state machine (open, close, sync), the
 * LMDB and protobuf helpers shared by the other fsm_*.c files, and the
 * state hash that lets tests and operators compare members.
 *
 * Failure: LMDB errors become OMBRA_EIO with the LMDB call and message in
 * errmsg; a record that does not decode is reported the same way (the
 * environment is damaged), never trusted. */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsm_internal.h"

const char *const fsm_db_names[FSM_DB_COUNT] = {
    [FSM_DB_META] = "meta",
    [FSM_DB_REGIONS] = "regions",
    [FSM_DB_NODES] = "nodes",
    [FSM_DB_NODE_NAMES] = "node_names",
    [FSM_DB_VOLUMES] = "volumes",
    [FSM_DB_VOLUME_NAMES] = "volume_names",
    [FSM_DB_PLACEMENTS] = "placements",
    [FSM_DB_MEMBERS] = "members",
    [FSM_DB_REQUESTS] = "requests",
    [FSM_DB_REQUEST_LOG] = "request_log",
    [FSM_DB_VLEASES] = "vleases",
    [FSM_DB_FAILOVERS] = "failovers",
};

int fsm_lmdb_error(char *errmsg, int rc, const char *what)
{
	ombra_errmsg_printf(errmsg, "%s: %s", what, mdb_strerror(rc));
	return OMBRA_EIO;
}

void fsm_u64_encode(uint8_t out[8], uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		out[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

uint64_t fsm_u64_decode(const void *in)
{
	const uint8_t *p = in;
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

void fsm_placement_key(uint8_t out[16], uint64_t volume_id, uint64_t segment)
{
	fsm_u64_encode(out, volume_id);
	fsm_u64_encode(out + 8, segment);
}

uint64_t fsm_segment_count(uint64_t size, uint64_t segment_size)
{
	if (segment_size == 0)
		return 0;
	return size / segment_size + (size % segment_size != 0 ? 1 : 0);
}

int fsm_env_open(struct fsm *f, char *errmsg)
{
	MDB_txn *txn = NULL;
	int rc;
	int i;

	rc = mdb_env_create(&f->env);
	if (rc != 0) {
		f->env = NULL;
		return fsm_lmdb_error(errmsg, rc, "mdb_env_create");
	}
	rc = mdb_env_set_maxdbs(f->env, FSM_DB_COUNT);
	if (rc != 0) {
		fsm_lmdb_error(errmsg, rc, "mdb_env_set_maxdbs");
		goto err_after_create;
	}
	rc = mdb_env_set_mapsize(f->env, FSM_MAP_SIZE);
	if (rc != 0) {
		fsm_lmdb_error(errmsg, rc, "mdb_env_set_mapsize");
		goto err_after_create;
	}
	rc = mdb_env_open(f->env, f->dir, MDB_NOSYNC, 0600);
	if (rc != 0) {
		fsm_lmdb_error(errmsg, rc, "mdb_env_open");
		ombra_errmsg_wrapf(errmsg, "%s", f->dir);
		goto err_after_create;
	}
	rc = mdb_txn_begin(f->env, NULL, 0, &txn);
	if (rc != 0) {
		fsm_lmdb_error(errmsg, rc, "mdb_txn_begin");
		goto err_after_create;
	}
	for (i = 0; i < FSM_DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, fsm_db_names[i], MDB_CREATE, &f->dbi[i]);
		if (rc != 0) {
			fsm_lmdb_error(errmsg, rc, "mdb_dbi_open");
			ombra_errmsg_wrapf(errmsg, "database '%s'",
					   fsm_db_names[i]);
			goto err_after_txn;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		fsm_lmdb_error(errmsg, rc, "mdb_txn_commit");
		goto err_after_create;
	}
	return 0;

err_after_txn:
	mdb_txn_abort(txn);
err_after_create:
	mdb_env_close(f->env);
	f->env = NULL;
	return OMBRA_EIO;
}

void fsm_env_close(struct fsm *f)
{
	if (f->env != NULL) {
		mdb_env_close(f->env);
		f->env = NULL;
	}
}

int fsm_open(const char *dir, struct fsm **out, char *errmsg)
{
	char tmp[4096];
	struct fsm *f;
	int rv;

	if (dir == NULL || dir[0] == '\0' || out == NULL) {
		ombra_errmsg_printf(errmsg, "fsm_open(): no directory given");
		return OMBRA_EINVAL;
	}
	*out = NULL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		ombra_errmsg_printf(errmsg, "fsm_open(): mkdir %s: %s", dir,
				    strerror(errno));
		return OMBRA_EIO;
	}
	/* A restore that crashed half way leaves its image behind. */
	if (snprintf(tmp, sizeof(tmp), "%s/data.mdb.tmp", dir) <
	    (int)sizeof(tmp))
		(void)unlink(tmp);
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		ombra_errmsg_printf(errmsg, "fsm_open(): out of memory");
		return OMBRA_ENOMEM;
	}
	f->dir = strdup(dir);
	if (f->dir == NULL) {
		ombra_errmsg_printf(errmsg, "fsm_open(): out of memory");
		rv = OMBRA_ENOMEM;
		goto err_after_alloc;
	}
	rv = fsm_env_open(f, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "fsm_open()");
		goto err_after_dir;
	}
	f->raft_counter = fsm_applied_index(f);
	*out = f;
	return 0;

err_after_dir:
	free(f->dir);
err_after_alloc:
	free(f);
	return rv;
}

void fsm_close(struct fsm *f)
{
	if (f == NULL)
		return;
	if (f->env != NULL)
		(void)mdb_env_sync(f->env, 1);
	fsm_env_close(f);
	audit_pending_free(&f->audit_pending);
	free(f->dir);
	free(f);
}

int fsm_txn_begin(struct fsm *f, unsigned flags, MDB_txn **txn, char *errmsg)
{
	int rc;

	if (f == NULL || f->env == NULL) {
		ombra_errmsg_printf(errmsg,
				    "state machine is closed (a snapshot "
				    "restore failed); restart the member");
		return OMBRA_EIO;
	}
	rc = mdb_txn_begin(f->env, NULL, flags, txn);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_txn_begin");
	return 0;
}

int fsm_meta_get(struct fsm *f, MDB_txn *txn, const char *key, uint64_t *out,
		 char *errmsg)
{
	MDB_val k = {strlen(key), (void *)key};
	MDB_val v;
	int rc;

	rc = mdb_get(txn, f->dbi[FSM_DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		*out = 0;
		return 0;
	}
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_get meta");
	if (v.mv_size != 8) {
		ombra_errmsg_printf(errmsg,
				    "meta key '%s' has %zu bytes, not 8", key,
				    v.mv_size);
		return OMBRA_EIO;
	}
	*out = fsm_u64_decode(v.mv_data);
	return 0;
}

int fsm_meta_put(struct fsm *f, MDB_txn *txn, const char *key, uint64_t v,
		 char *errmsg)
{
	uint8_t buf[8];
	MDB_val k = {strlen(key), (void *)key};
	MDB_val val = {sizeof(buf), buf};
	int rc;

	fsm_u64_encode(buf, v);
	rc = mdb_put(txn, f->dbi[FSM_DB_META], &k, &val, 0);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_put meta");
	return 0;
}

int fsm_pb_get(struct fsm *f, MDB_txn *txn, enum fsm_db db, const MDB_val *key,
	       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
	       char *errmsg)
{
	MDB_val v;
	int rc;

	rc = mdb_get(txn, f->dbi[db], (MDB_val *)key, &v);
	if (rc == MDB_NOTFOUND)
		return OMBRA_ENOTFOUND;
	if (rc != 0) {
		fsm_lmdb_error(errmsg, rc, "mdb_get");
		ombra_errmsg_wrapf(errmsg, "%s", fsm_db_names[db]);
		return OMBRA_EIO;
	}
	*out = protobuf_c_message_unpack(desc, NULL, v.mv_size, v.mv_data);
	if (*out == NULL) {
		ombra_errmsg_printf(errmsg, "%s: stored %s does not decode",
				    fsm_db_names[db], desc->short_name);
		return OMBRA_EIO;
	}
	return 0;
}

int fsm_pb_put(struct fsm *f, MDB_txn *txn, enum fsm_db db, const MDB_val *key,
	       const ProtobufCMessage *m, char *errmsg)
{
	MDB_val v;
	int rc;

	v.mv_size = protobuf_c_message_get_packed_size(m);
	v.mv_data = NULL;
	rc = mdb_put(txn, f->dbi[db], (MDB_val *)key, &v, MDB_RESERVE);
	if (rc != 0) {
		fsm_lmdb_error(errmsg, rc, "mdb_put");
		ombra_errmsg_wrapf(errmsg, "%s", fsm_db_names[db]);
		return OMBRA_EIO;
	}
	if (v.mv_size > 0)
		protobuf_c_message_pack(m, v.mv_data);
	return 0;
}

int fsm_name_get(struct fsm *f, MDB_txn *txn, enum fsm_db db, const char *name,
		 uint64_t *id, char *errmsg)
{
	MDB_val k = {strlen(name), (void *)name};
	MDB_val v;
	int rc;

	if (k.mv_size == 0 ||
	    k.mv_size > (size_t)mdb_env_get_maxkeysize(f->env))
		return OMBRA_ENOTFOUND;
	rc = mdb_get(txn, f->dbi[db], &k, &v);
	if (rc == MDB_NOTFOUND)
		return OMBRA_ENOTFOUND;
	if (rc != 0) {
		fsm_lmdb_error(errmsg, rc, "mdb_get");
		ombra_errmsg_wrapf(errmsg, "%s", fsm_db_names[db]);
		return OMBRA_EIO;
	}
	if (v.mv_size != 8) {
		ombra_errmsg_printf(errmsg, "%s: id of '%s' has %zu bytes",
				    fsm_db_names[db], name, v.mv_size);
		return OMBRA_EIO;
	}
	*id = fsm_u64_decode(v.mv_data);
	return 0;
}

int fsm_id_get(struct fsm *f, MDB_txn *txn, enum fsm_db db, uint64_t id,
	       const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
	       char *errmsg)
{
	uint8_t kb[8];
	MDB_val k = {sizeof(kb), kb};

	fsm_u64_encode(kb, id);
	return fsm_pb_get(f, txn, db, &k, desc, out, errmsg);
}

int fsm_volume_by_name(struct fsm *f, MDB_txn *txn, const char *name,
		       Ombra__V1__Volume **out, char *errmsg)
{
	ProtobufCMessage *m = NULL;
	uint64_t id;
	int rv;

	rv = fsm_name_get(f, txn, FSM_DB_VOLUME_NAMES, name, &id, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		ombra_errmsg_printf(errmsg,
				    "volume '%s' does not exist; list volumes "
				    "with `ombractl volume list`",
				    name);
		return OMBRA_ENOTFOUND;
	}
	if (rv != 0)
		return rv;
	rv = fsm_id_get(f, txn, FSM_DB_VOLUMES, id,
			&ombra__v1__volume__descriptor, &m, errmsg);
	if (rv == OMBRA_ENOTFOUND) {
		ombra_errmsg_printf(errmsg,
				    "volume '%s' names id %" PRIu64
				    " which has no record",
				    name, id);
		return OMBRA_EIO;
	}
	if (rv != 0)
		return rv;
	*out = (Ombra__V1__Volume *)m;
	return 0;
}

void fsm_set_change_listener(struct fsm *f, fsm_change_fn fn, void *data)
{
	if (f == NULL)
		return;
	f->change_fn = fn;
	f->change_data = data;
}

int fsm_sync(struct fsm *f)
{
	int rc;

	if (f == NULL || f->env == NULL)
		return OMBRA_EIO;
	rc = mdb_env_sync(f->env, 1);
	return rc == 0 ? 0 : OMBRA_EIO;
}

/* One u64 of the meta DB in its own read transaction; 0 on any error. */
static uint64_t fsm_meta_read(struct fsm *f, const char *key)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	MDB_txn *txn;
	uint64_t v = 0;

	if (fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg) != 0)
		return 0;
	if (fsm_meta_get(f, txn, key, &v, errmsg) != 0)
		v = 0;
	mdb_txn_abort(txn);
	return v;
}

uint64_t fsm_applied_index(struct fsm *f)
{
	return fsm_meta_read(f, FSM_KEY_APPLIED);
}

uint64_t fsm_map_index(struct fsm *f)
{
	uint64_t v = fsm_meta_read(f, FSM_KEY_MAP_INDEX);

	return v != 0 ? v : fsm_applied_index(f);
}

uint64_t fsm_snapshots_taken(const struct fsm *f)
{
	return f == NULL
		   ? 0
		   : __atomic_load_n(&f->snapshots_taken, __ATOMIC_RELAXED);
}

uint64_t fsm_snapshots_restored(const struct fsm *f)
{
	return f == NULL ? 0 : f->snapshots_restored;
}

/* Feed one length-prefixed field into the digest, so that (key, value)
 * boundaries are unambiguous. */
static int fsm_hash_field(EVP_MD_CTX *ctx, const void *data, size_t len)
{
	uint8_t lenbuf[8];

	fsm_u64_encode(lenbuf, len);
	if (EVP_DigestUpdate(ctx, lenbuf, sizeof(lenbuf)) != 1)
		return -1;
	if (len > 0 && EVP_DigestUpdate(ctx, data, len) != 1)
		return -1;
	return 0;
}

/* Walk one DB in key order into the digest. */
static int fsm_hash_db(struct fsm *f, MDB_txn *txn, int db, EVP_MD_CTX *ctx,
		       char *errmsg)
{
	const size_t applied_len = strlen(FSM_KEY_APPLIED);
	MDB_cursor *cur;
	MDB_val k;
	MDB_val v;
	uint8_t tag = (uint8_t)db;
	int rc;
	int rv = 0;

	rc = mdb_cursor_open(txn, f->dbi[db], &cur);
	if (rc != 0)
		return fsm_lmdb_error(errmsg, rc, "mdb_cursor_open");
	if (EVP_DigestUpdate(ctx, &tag, 1) != 1)
		goto err_digest;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (db == FSM_DB_META && k.mv_size == applied_len &&
		    memcmp(k.mv_data, FSM_KEY_APPLIED, applied_len) == 0)
			continue;
		if (fsm_hash_field(ctx, k.mv_data, k.mv_size) != 0 ||
		    fsm_hash_field(ctx, v.mv_data, v.mv_size) != 0)
			goto err_digest;
	}
	if (rc != MDB_NOTFOUND)
		rv = fsm_lmdb_error(errmsg, rc, "mdb_cursor_get");
	mdb_cursor_close(cur);
	return rv;

err_digest:
	mdb_cursor_close(cur);
	ombra_errmsg_printf(errmsg, "EVP_DigestUpdate failed");
	return OMBRA_EINTERNAL;
}

int fsm_state_hash(struct fsm *f, char hex[65])
{
	char errmsg[OMBRA_ERRMSG_LEN];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	MDB_txn *txn;
	unsigned i;
	int db;
	int rv;

	if (hex == NULL)
		return OMBRA_EINVAL;
	hex[0] = '\0';
	rv = fsm_txn_begin(f, MDB_RDONLY, &txn, errmsg);
	if (rv != 0)
		return rv;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		rv = OMBRA_ENOMEM;
		goto out_txn;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		rv = OMBRA_EINTERNAL;
		goto out_ctx;
	}
	for (db = 0; db < FSM_DB_COUNT; db++) {
		rv = fsm_hash_db(f, txn, db, ctx, errmsg);
		if (rv != 0)
			goto out_ctx;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		rv = OMBRA_EINTERNAL;
		goto out_ctx;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	rv = 0;
out_ctx:
	EVP_MD_CTX_free(ctx);
out_txn:
	mdb_txn_abort(txn);
	return rv;
}

void fsm_free_list(void *items, size_t n)
{
	ProtobufCMessage **list = items;
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (list[i] != NULL)
			protobuf_c_message_free_unpacked(list[i], NULL);
	}
	free(list);
}
