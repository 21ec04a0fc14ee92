/* fsm_snapshot.c: the state machine as a libraft version-3 raft_fsm:
 * apply (decode + fsm_apply_command), snapshot (loop: nothing to capture),
 * snapshot_async (thread pool: compacted LMDB copy, so a snapshot never
 * stalls the loop), snapshot_finalize and restore (swap the LMDB file).
 *
 * Snapshot buffer layout (one raft_malloc'd buffer, integers big-endian):
 *   0   8  magic "OMBRASN1"
 *   8   8  applied index of the image
 *   16  8  image length in bytes
 *   24  32 SHA-256 of the image
 *   56  .. image: mdb_env_copyfd2(MDB_CP_COMPACT) of the environment
 * The checksum catches a snapshot damaged on disk or on the wire before it
 * replaces good state; LMDB itself does not checksum pages.
 *
 * libraft 0.15 (src/replication.c, src/snapshot.c): apply is called before
 * r->last_applied is advanced, so the entry's index is last_applied + 1
 * (dqlite relies on the same); with a version >= 2 fsm raft does not free the
 * snapshot buffers (snapshot_finalize does), and a successful restore
 * hands buf->base to the fsm, which frees it.
 *
 * apply's result: a malloc'd struct fsm_result when a local raft_apply()
 * is waiting for this entry (the proposer frees it), else NULL; see
 * fsm_has_proposer().
 *
 * Failure: a malformed entry is applied as a refusal (INVALID_ARGUMENT);
 * LMDB failure in apply returns RAFT_IOERR.  A bad snapshot header or
 * checksum returns RAFT_INVALID and leaves the state untouched; an I/O
 * error while swapping returns RAFT_IOERR and, if the old environment
 * could not be reopened, leaves the fsm closed (every call -> OMBRA_EIO).
 *
 * fsm_snapshots_restored() counts restores that replaced the state; a
 * restore skipped because the local state is already at or past the
 * snapshot (a plain restart) is not counted. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "fsm_internal.h"
#include "log.h"

#define FSM_SNAP_MAGIC "OMBRASN1"
#define FSM_SNAP_HEADER 56u

static int fsm_sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -1;
	return 0;
}

/* True when raft holds a pending raft_apply() request for `index`, i.e.
 * when libraft will hand the apply result to a proposer.  libraft 0.15
 * (applyCommand in src/replication.c) silently drops the result of an
 * entry nobody on this member proposed (every entry on a follower, entries
 * of earlier terms on a new leader), so a result malloc'd for it would
 * leak.  The pending requests are the public leader_state.requests queue
 * of raft.h, linked through the RAFT__REQUEST header's queue field. */
static bool fsm_has_proposer(struct raft *r, uint64_t index)
{
	void **head;
	void **q;

	if (r == NULL)
		return true; /* driven directly: the caller takes the result */
	if (raft_state(r) != RAFT_LEADER)
		return false;
	head = r->leader_state.requests;
	for (q = head[0]; q != NULL && q != head; q = q[0]) {
		const struct raft_apply *req =
		    (const struct raft_apply *)((char *)q -
						offsetof(struct raft_apply,
							 queue));

		if (req->type == RAFT_COMMAND && req->index == index)
			return true;
	}
	return false;
}

static int fsm_raft_apply(struct raft_fsm *rf, const struct raft_buffer *buf,
			  void **result)
{
	struct fsm *f = rf->data;
	Ombra__V1__MetaCommand *cmd;
	struct fsm_result local;
	struct fsm_result *res = &local;
	uint64_t index;
	int rv;

	if (f->raft != NULL) {
		index = f->raft->last_applied + 1;
	} else {
		uint64_t applied = fsm_applied_index(f);

		if (f->raft_counter < applied)
			f->raft_counter = applied;
		index = ++f->raft_counter;
	}
	if (fsm_has_proposer(f->raft, index)) {
		res = malloc(sizeof(*res));
		if (res == NULL)
			return RAFT_NOMEM;
	}
	cmd = cmd_decode(buf->base, buf->len);
	if (cmd == NULL)
		log_warn("fsm: malformed command at index %" PRIu64
			 " (%zu bytes): applied as INVALID_ARGUMENT",
			 index, buf->len);
	rv = fsm_apply_command(f, index, cmd, res);
	if (cmd != NULL)
		ombra__v1__meta_command__free_unpacked(cmd, NULL);
	if (rv != 0) {
		log_error("fsm: %s", res->message);
		if (res != &local)
			free(res);
		return RAFT_IOERR;
	}
	*result = res != &local ? res : NULL;
	return 0;
}

/* Read all of fd (size bytes) into dst. */
static int fsm_read_all(int fd, void *dst, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n =
		    pread(fd, (char *)dst + done, size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int fsm_write_all(int fd, const void *src, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = write(fd, (const char *)src + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int fsm_image_applied(const char *path, size_t image, uint64_t *applied);

/* Loop thread, at raft's snapshot index: nothing to capture here, because
 * the copy made by fsm_raft_snapshot_async() carries its own applied index
 * (see there). */
static int fsm_raft_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[],
			     unsigned *n_bufs)
{
	struct fsm *f = rf->data;

	*bufs = NULL;
	*n_bufs = 0;
	if (f->env == NULL) {
		log_error("fsm snapshot: state machine is closed");
		return RAFT_IOERR;
	}
	return 0;
}

/* libuv thread pool (libraft's io->async_work), while the loop goes on
 * applying entries: a compacted copy of the environment in one read
 * transaction of its own, so the image may be *newer* than raft's snapshot
 * index.  That is safe because the header records the image's own applied
 * index (read back from the copy) and applying an entry at or below it is a
 * no-op: after an install, raft replays the entries past its snapshot index
 * and those the image already holds are skipped.  LMDB allows readers in
 * other threads (one reader slot per thread; the copy's transaction begins
 * and ends inside mdb_env_copyfd2). */
static int fsm_raft_snapshot_async(struct raft_fsm *rf,
				   struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct fsm *f = rf->data;
	struct raft_buffer *arr = NULL;
	uint8_t *base = NULL;
	struct stat st;
	uint64_t applied = 0;
	char path[64];
	size_t image;
	int fd;
	int rc;

	fd = memfd_create("ombra-fsm-snapshot", MFD_CLOEXEC);
	if (fd < 0) {
		log_error("fsm snapshot: memfd_create: %s", strerror(errno));
		return RAFT_IOERR;
	}
	rc = mdb_env_copyfd2(f->env, fd, MDB_CP_COMPACT);
	if (rc != 0) {
		log_error("fsm snapshot: mdb_env_copyfd2: %s",
			  mdb_strerror(rc));
		goto err_io;
	}
	if (fstat(fd, &st) != 0 || st.st_size <= 0) {
		log_error("fsm snapshot: fstat: %s", strerror(errno));
		goto err_io;
	}
	image = (size_t)st.st_size;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (fsm_image_applied(path, image, &applied) != 0)
		goto err_io;
	base = raft_malloc(FSM_SNAP_HEADER + image);
	arr = raft_malloc(sizeof(*arr));
	if (base == NULL || arr == NULL) {
		log_error("fsm snapshot: out of memory for %zu bytes", image);
		raft_free(base);
		raft_free(arr);
		close(fd);
		return RAFT_NOMEM;
	}
	if (fsm_read_all(fd, base + FSM_SNAP_HEADER, image) != 0) {
		log_error("fsm snapshot: read image: %s", strerror(errno));
		goto err_io;
	}
	memcpy(base, FSM_SNAP_MAGIC, 8);
	fsm_u64_encode(base + 8, applied);
	fsm_u64_encode(base + 16, image);
	if (fsm_sha256(base + FSM_SNAP_HEADER, image, base + 24) != 0) {
		log_error("fsm snapshot: SHA-256 failed");
		goto err_io;
	}
	close(fd);
	arr[0].base = base;
	arr[0].len = FSM_SNAP_HEADER + image;
	*bufs = arr;
	*n_bufs = 1;
	__atomic_add_fetch(&f->snapshots_taken, 1, __ATOMIC_RELAXED);
	return 0;

err_io:
	raft_free(base);
	raft_free(arr);
	close(fd);
	return RAFT_IOERR;
}

static int fsm_raft_snapshot_finalize(struct raft_fsm *rf,
				      struct raft_buffer *bufs[],
				      unsigned *n_bufs)
{
	unsigned i;

	if (*bufs != NULL) {
		for (i = 0; i < *n_bufs; i++)
			raft_free((*bufs)[i].base);
		raft_free(*bufs);
	}
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

/* Open the LMDB image at path (image bytes) read-only and read its
 * applied index into *applied.  0 or RAFT_INVALID / RAFT_NOMEM. */
static int fsm_image_applied(const char *path, size_t image, uint64_t *applied)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = {strlen(FSM_KEY_APPLIED), (void *)FSM_KEY_APPLIED};
	MDB_val v;
	int rc;
	int rv = RAFT_INVALID;

	rc = mdb_env_create(&env);
	if (rc != 0)
		return RAFT_NOMEM;
	if (mdb_env_set_maxdbs(env, FSM_DB_COUNT) != 0 ||
	    mdb_env_set_mapsize(env, image > FSM_MAP_SIZE ? image
							  : FSM_MAP_SIZE) != 0)
		goto out;
	rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK,
			  0600);
	if (rc != 0) {
		log_error("fsm: snapshot image is not an LMDB file: %s",
			  mdb_strerror(rc));
		goto out;
	}
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		goto out;
	rc = mdb_dbi_open(txn, fsm_db_names[FSM_DB_META], 0, &dbi);
	if (rc == 0)
		rc = mdb_get(txn, dbi, &k, &v);
	if (rc == 0 && v.mv_size == 8) {
		*applied = fsm_u64_decode(v.mv_data);
		rv = 0;
	} else if (rc == MDB_NOTFOUND) {
		*applied = 0; /* an empty state machine */
		rv = 0;
	}
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rv;
}

/* Check that the image at path is an LMDB environment whose applied index
 * is `want` (the snapshot header's). */
static int fsm_check_image(const char *path, size_t image, uint64_t want)
{
	uint64_t got = 0;
	int rv = fsm_image_applied(path, image, &got);

	if (rv != 0)
		return rv;
	if (got != want) {
		log_error("fsm restore: image's applied index %" PRIu64
			  " does not match its header (%" PRIu64 ")",
			  got, want);
		return RAFT_INVALID;
	}
	return 0;
}

/* Write the image to dir/data.mdb.tmp and fsync it. */
static int fsm_write_image(const char *path, const void *data, size_t len)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("fsm restore: open %s: %s", path, strerror(errno));
		return RAFT_IOERR;
	}
	if (fsm_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		log_error("fsm restore: write %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return RAFT_IOERR;
	}
	if (close(fd) != 0) {
		unlink(path);
		return RAFT_IOERR;
	}
	return 0;
}

static void fsm_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Swap dir/data.mdb for the image; reopen the environment. */
static int fsm_swap_in(struct fsm *f, const uint8_t *image, size_t len,
		       uint64_t index)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	char tmp[4096];
	char dst[4096];
	int rv;

	if (snprintf(tmp, sizeof(tmp), "%s/data.mdb.tmp", f->dir) >=
		(int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/data.mdb", f->dir) >=
		(int)sizeof(dst))
		return RAFT_IOERR;
	rv = fsm_write_image(tmp, image, len);
	if (rv != 0)
		return rv;
	rv = fsm_check_image(tmp, len, index);
	if (rv != 0) {
		unlink(tmp);
		return rv;
	}
	fsm_env_close(f);
	if (rename(tmp, dst) != 0) {
		log_error("fsm restore: rename %s: %s", tmp, strerror(errno));
		unlink(tmp);
		rv = RAFT_IOERR;
		/* fall through: reopen the old environment */
	} else {
		fsm_fsync_dir(f->dir);
	}
	if (fsm_env_open(f, errmsg) != 0) {
		log_error("fsm restore: reopen: %s", errmsg);
		return RAFT_IOERR;
	}
	return rv;
}

static int fsm_raft_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
	struct fsm *f = rf->data;
	const uint8_t *p = buf->base;
	unsigned char sum[32];
	uint64_t index;
	uint64_t image;
	int rv;

	if (p == NULL || buf->len < FSM_SNAP_HEADER ||
	    memcmp(p, FSM_SNAP_MAGIC, 8) != 0) {
		log_error("fsm restore: not an Ombra snapshot (%zu bytes)",
			  buf->len);
		return RAFT_INVALID;
	}
	index = fsm_u64_decode(p + 8);
	image = fsm_u64_decode(p + 16);
	if (image == 0 || image != buf->len - FSM_SNAP_HEADER) {
		log_error("fsm restore: image length %" PRIu64
			  " does not match buffer of %zu bytes",
			  image, buf->len);
		return RAFT_INVALID;
	}
	if (fsm_sha256(p + FSM_SNAP_HEADER, image, sum) != 0 ||
	    memcmp(sum, p + 24, sizeof(sum)) != 0) {
		log_error("fsm restore: snapshot at index %" PRIu64
			  " fails its checksum",
			  index);
		return RAFT_INVALID;
	}
	if (f->env == NULL)
		return RAFT_IOERR;
	if (fsm_applied_index(f) < index) {
		rv = fsm_swap_in(f, p + FSM_SNAP_HEADER, image, index);
		if (rv != 0)
			return rv;
		f->snapshots_restored++;
		log_info("fsm: restored snapshot at index %" PRIu64, index);
	} else {
		/* A restart: the local environment already has it all. */
		log_info("fsm: kept local state at index %" PRIu64
			 " over snapshot at %" PRIu64,
			 fsm_applied_index(f), index);
	}
	if (f->raft_counter < fsm_applied_index(f))
		f->raft_counter = fsm_applied_index(f);
	raft_free(buf->base);
	return 0;
}

void fsm_bind_raft(struct fsm *f, struct raft *r, struct raft_fsm *out)
{
	memset(out, 0, sizeof(*out));
	f->raft = r;
	f->raft_counter = fsm_applied_index(f);
	out->version = 3;
	out->data = f;
	out->apply = fsm_raft_apply;
	out->snapshot = fsm_raft_snapshot;
	out->snapshot_async = fsm_raft_snapshot_async;
	out->restore = fsm_raft_restore;
	out->snapshot_finalize = fsm_raft_snapshot_finalize;
}
