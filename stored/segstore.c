/* segstore.c: lifetime of the segment store (open, close, flush), usage
 * per tier, version helpers, the per-volume lock stripes and the argument
 * checks shared by every entry point.
 *
 * Failure: a bad config is OMBRA_EINVAL before anything is touched; a
 * directory or LMDB failure at open is OMBRA_EIO with the path and the
 * system's message, and everything acquired so far is released. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segstore_internal.h"

int segstore_version_make(uint32_t epoch, uint64_t seq, uint64_t *out,
			  char *errmsg)
{
	if (epoch > SEGSTORE_VERSION_MAX_EPOCH) {
		ombra_errmsg_printf(
		    errmsg, "version epoch %" PRIu32 " does not fit in %d bits",
		    epoch, SEGSTORE_VERSION_EPOCH_BITS);
		return OMBRA_EINVAL;
	}
	if (seq > SEGSTORE_VERSION_MAX_SEQ) {
		ombra_errmsg_printf(errmsg,
				    "version sequence %" PRIu64
				    " does not fit in %d bits",
				    seq, SEGSTORE_VERSION_SEQ_BITS);
		return OMBRA_EINVAL;
	}
	*out = ((uint64_t)epoch << SEGSTORE_VERSION_SEQ_BITS) | seq;
	return 0;
}

uint32_t segstore_version_epoch(uint64_t v)
{
	return (uint32_t)(v >> SEGSTORE_VERSION_SEQ_BITS);
}

uint64_t segstore_version_seq(uint64_t v)
{
	return v & SEGSTORE_VERSION_MAX_SEQ;
}

int segstore_version_cmp(uint64_t a, uint64_t b)
{
	return a < b ? -1 : (a > b ? 1 : 0);
}

/* Fibonacci hashing of the volume id onto a stripe (Knuth, TAOCP vol. 3,
 * 6.4): consecutive ids spread over all stripes. */
static size_t seg_vol_stripe(uint64_t volume_id)
{
	return (size_t)((volume_id * UINT64_C(0x9E3779B97F4A7C15)) >> 58) %
	       SEG_LOCK_STRIPES;
}

void seg_vol_lock(struct segstore *s, uint64_t volume_id, bool exclusive)
{
	pthread_rwlock_t *l = &s->vol_locks[seg_vol_stripe(volume_id)];

	/* Only EDEADLK/EAGAIN are possible, both bugs of the caller: the
	 * rules in segstore_internal.h rule them out. */
	if (exclusive)
		(void)pthread_rwlock_wrlock(l);
	else
		(void)pthread_rwlock_rdlock(l);
}

bool seg_vol_tryrdlock(struct segstore *s, uint64_t volume_id)
{
	return pthread_rwlock_tryrdlock(
		   &s->vol_locks[seg_vol_stripe(volume_id)]) == 0;
}

void seg_vol_unlock(struct segstore *s, uint64_t volume_id)
{
	(void)pthread_rwlock_unlock(&s->vol_locks[seg_vol_stripe(volume_id)]);
}

static size_t seg_seg_stripe(uint64_t volume_id, uint64_t segment)
{
	return seg_vol_stripe(volume_id ^
			      (segment * UINT64_C(0xC2B2AE3D27D4EB4F)));
}

void seg_seg_lock(struct segstore *s, uint64_t volume_id, uint64_t segment,
		  bool exclusive)
{
	pthread_rwlock_t *l = &s->seg_locks[seg_seg_stripe(volume_id, segment)];

	if (exclusive)
		(void)pthread_rwlock_wrlock(l);
	else
		(void)pthread_rwlock_rdlock(l);
}

bool seg_seg_tryrdlock(struct segstore *s, uint64_t volume_id, uint64_t segment)
{
	return pthread_rwlock_tryrdlock(
		   &s->seg_locks[seg_seg_stripe(volume_id, segment)]) == 0;
}

void seg_seg_unlock(struct segstore *s, uint64_t volume_id, uint64_t segment)
{
	(void)pthread_rwlock_unlock(
	    &s->seg_locks[seg_seg_stripe(volume_id, segment)]);
}

int seg_check_segment_size(uint32_t segment_size, char *errmsg)
{
	if (segment_size < SEGSTORE_MIN_SEGMENT_SIZE ||
	    segment_size > SEGSTORE_MAX_SEGMENT_SIZE ||
	    (segment_size & (segment_size - 1)) != 0) {
		ombra_errmsg_printf(
		    errmsg,
		    "segment size %" PRIu32
		    " is not a power of two from %u to %u bytes",
		    segment_size, SEGSTORE_MIN_SEGMENT_SIZE,
		    SEGSTORE_MAX_SEGMENT_SIZE);
		return OMBRA_EINVAL;
	}
	return 0;
}

int seg_check_range(uint64_t volume_id, uint64_t offset, size_t len,
		    char *errmsg)
{
	if (len == 0) {
		ombra_errmsg_printf(errmsg,
				    "volume %" PRIu64
				    ": length 0 at offset %" PRIu64
				    ": nothing to do",
				    volume_id, offset);
		return OMBRA_EINVAL;
	}
	if (offset % SEGSTORE_BLOCK_SIZE != 0 ||
	    len % SEGSTORE_BLOCK_SIZE != 0) {
		ombra_errmsg_printf(
		    errmsg,
		    "volume %" PRIu64 ": offset %" PRIu64 " and length %zu "
		    "must be multiples of the %u-byte block size",
		    volume_id, offset, len, SEGSTORE_BLOCK_SIZE);
		return OMBRA_EINVAL;
	}
	if (offset >= SEGSTORE_MAX_VOLUME_BYTES ||
	    len > SEGSTORE_MAX_VOLUME_BYTES - offset) {
		ombra_errmsg_printf(errmsg,
				    "volume %" PRIu64 ": offset %" PRIu64
				    " + length %zu beyond the %" PRIu64
				    "-byte volume limit",
				    volume_id, offset, len,
				    (uint64_t)SEGSTORE_MAX_VOLUME_BYTES);
		return OMBRA_EINVAL;
	}
	return 0;
}

int seg_tier_find(const struct segstore *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n_tiers; i++) {
		if (strcmp(s->tiers[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

static bool seg_tier_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > SEGSTORE_TIER_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

static int seg_config_check(const struct segstore_config *cfg, char *errmsg)
{
	size_t i, j;

	if (cfg->index_dir == NULL || cfg->index_dir[0] == '\0') {
		ombra_errmsg_printf(errmsg, "no index directory given");
		return OMBRA_EINVAL;
	}
	if (cfg->tiers == NULL || cfg->n_tiers == 0 ||
	    cfg->n_tiers > SEGSTORE_MAX_TIERS) {
		ombra_errmsg_printf(errmsg, "%zu tiers given: need 1 to %d",
				    cfg->tiers == NULL ? 0 : cfg->n_tiers,
				    SEGSTORE_MAX_TIERS);
		return OMBRA_EINVAL;
	}
	for (i = 0; i < cfg->n_tiers; i++) {
		const struct segstore_tier_config *t = &cfg->tiers[i];

		if (t->name == NULL || !seg_tier_name_ok(t->name)) {
			ombra_errmsg_printf(
			    errmsg,
			    "tier %zu: name '%s' is not 1 to %d characters "
			    "of [A-Za-z0-9_.-]",
			    i, t->name == NULL ? "" : t->name,
			    SEGSTORE_TIER_NAME_MAX);
			return OMBRA_EINVAL;
		}
		if (t->dir == NULL || t->dir[0] == '\0') {
			ombra_errmsg_printf(
			    errmsg, "tier '%s': no directory given", t->name);
			return OMBRA_EINVAL;
		}
		if (t->capacity == 0) {
			ombra_errmsg_printf(
			    errmsg, "tier '%s': capacity is 0 bytes", t->name);
			return OMBRA_EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(cfg->tiers[j].name, t->name) == 0) {
				ombra_errmsg_printf(
				    errmsg, "tier name '%s' given twice",
				    t->name);
				return OMBRA_EINVAL;
			}
		}
	}
	return 0;
}

static int seg_mkdir(const char *dir, const char *what, char *errmsg)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		ombra_errmsg_printf(errmsg, "%s: mkdir %s: %s", what, dir,
				    strerror(errno));
		return OMBRA_EIO;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		ombra_errmsg_printf(errmsg, "%s: %s is not a directory", what,
				    dir);
		return OMBRA_EIO;
	}
	return 0;
}

static int seg_locks_init(struct segstore *s, char *errmsg)
{
	pthread_rwlockattr_t attr;
	int rc;

	rc = pthread_rwlockattr_init(&attr);
	if (rc != 0)
		goto err;
	/* Writers must not starve behind a steady stream of reads. */
	(void)pthread_rwlockattr_setkind_np(
	    &attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (; s->n_vol_locks < SEG_LOCK_STRIPES; s->n_vol_locks++) {
		rc = pthread_rwlock_init(&s->vol_locks[s->n_vol_locks], &attr);
		if (rc != 0)
			break;
	}
	for (; rc == 0 && s->n_seg_locks < SEG_LOCK_STRIPES; s->n_seg_locks++) {
		rc = pthread_rwlock_init(&s->seg_locks[s->n_seg_locks], &attr);
		if (rc != 0)
			break;
	}
	(void)pthread_rwlockattr_destroy(&attr);
	if (rc != 0)
		goto err;
	rc = pthread_mutex_init(&s->files_lock, NULL);
	if (rc != 0)
		goto err;
	s->files_lock_ok = true;
	rc = pthread_mutex_init(&s->commit_lock, NULL);
	if (rc != 0)
		goto err;
	rc = pthread_cond_init(&s->commit_cond, NULL);
	if (rc != 0) {
		(void)pthread_mutex_destroy(&s->commit_lock);
		goto err;
	}
	s->commit_lock_ok = true;
	s->commit_tail = &s->commit_head;
	return 0;

err:
	ombra_errmsg_printf(errmsg, "initializing locks: %s", strerror(rc));
	return OMBRA_ENOMEM;
}

/* One store per index: a second open (this process or another) would
 * interleave writes to the same data files.  flock() locks belong to the
 * open file description, so the kernel drops it if the process dies. */
static int seg_lock_index(struct segstore *s, char *errmsg)
{
	char path[4096];
	int n;

	n = snprintf(path, sizeof(path), "%s/segstore.lock", s->index_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		ombra_errmsg_printf(errmsg, "index path too long");
		return OMBRA_EINVAL;
	}
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		ombra_errmsg_printf(errmsg, "open %s: %s", path,
				    strerror(errno));
		return OMBRA_EIO;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		ombra_errmsg_printf(errmsg, "%s: %s", path,
				    errno == EWOULDBLOCK
					? "the store is already open"
					: strerror(errno));
		return errno == EWOULDBLOCK ? OMBRA_EPRECOND : OMBRA_EIO;
	}
	return 0;
}

static void seg_free(struct segstore *s)
{
	size_t i;

	if (s->env != NULL)
		mdb_env_close(s->env);
	if (s->lock_fd >= 0)
		(void)close(s->lock_fd);
	seg_files_close_all(s);
	if (s->files_lock_ok)
		(void)pthread_mutex_destroy(&s->files_lock);
	if (s->commit_lock_ok) {
		(void)pthread_cond_destroy(&s->commit_cond);
		(void)pthread_mutex_destroy(&s->commit_lock);
	}
	for (i = 0; i < s->n_vol_locks; i++)
		(void)pthread_rwlock_destroy(&s->vol_locks[i]);
	for (i = 0; i < s->n_seg_locks; i++)
		(void)pthread_rwlock_destroy(&s->seg_locks[i]);
	for (i = 0; i < s->n_tiers; i++)
		free(s->tiers[i].dir);
	free(s->index_dir);
	free(s);
}

static int seg_env_open(struct segstore *s, uint64_t map_size, char *errmsg)
{
	int rc;

	rc = mdb_env_create(&s->env);
	if (rc != 0) {
		s->env = NULL;
		return seg_lmdb_error(errmsg, rc, "mdb_env_create");
	}
	rc = mdb_env_set_maxdbs(s->env, SEG_DB_COUNT);
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_env_set_maxdbs");
	/* One reader slot per concurrent read (NOTLS): enough for a large
	 * libuv thread pool. */
	rc = mdb_env_set_maxreaders(s->env, SEG_MAX_READERS);
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_env_set_maxreaders");
	rc = mdb_env_set_mapsize(s->env, (size_t)map_size);
	if (rc != 0)
		return seg_lmdb_error(errmsg, rc, "mdb_env_set_mapsize");
	/* NOMETASYNC: each commit syncs LMDB's data pages but not its meta
	 * page, which keeps the index intact across a power loss (at worst
	 * the last commits are undone) at one fdatasync per commit;
	 * seg_env_sync() makes the meta page durable.  NOTLS: read
	 * transactions are not tied to thread-pool threads. */
	rc = mdb_env_open(s->env, s->index_dir, MDB_NOMETASYNC | MDB_NOTLS,
			  0600);
	if (rc != 0) {
		seg_lmdb_error(errmsg, rc, "mdb_env_open");
		ombra_errmsg_wrapf(errmsg, "index %s", s->index_dir);
		return OMBRA_EIO;
	}
	return 0;
}

int segstore_open(const struct segstore_config *cfg, struct segstore **out,
		  char *errmsg)
{
	struct segstore *s;
	size_t i;
	int rv;

	if (cfg == NULL || out == NULL) {
		ombra_errmsg_printf(errmsg, "segstore_open(): no config given");
		return OMBRA_EINVAL;
	}
	*out = NULL;
	rv = seg_config_check(cfg, errmsg);
	if (rv != 0)
		goto err;
	rv = seg_mkdir(cfg->index_dir, "index", errmsg);
	for (i = 0; rv == 0 && i < cfg->n_tiers; i++)
		rv = seg_mkdir(cfg->tiers[i].dir, cfg->tiers[i].name, errmsg);
	if (rv != 0)
		goto err;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		rv = OMBRA_ENOMEM;
		goto err;
	}
	s->io.pread =
	    cfg->io != NULL && cfg->io->pread != NULL ? cfg->io->pread : pread;
	s->io.pwrite = cfg->io != NULL && cfg->io->pwrite != NULL
			   ? cfg->io->pwrite
			   : pwrite;
	s->io.fdatasync = cfg->io != NULL && cfg->io->fdatasync != NULL
			      ? cfg->io->fdatasync
			      : fdatasync;
	s->io.fallocate = cfg->io != NULL && cfg->io->fallocate != NULL
			      ? cfg->io->fallocate
			      : fallocate;
	s->lock_fd = -1;
	s->index_dir = strdup(cfg->index_dir);
	if (s->index_dir == NULL)
		goto err_nomem;
	for (i = 0; i < cfg->n_tiers; i++) {
		struct seg_tier *t = &s->tiers[i];

		snprintf(t->name, sizeof(t->name), "%s", cfg->tiers[i].name);
		t->capacity = cfg->tiers[i].capacity;
		t->dir = strdup(cfg->tiers[i].dir);
		if (t->dir == NULL)
			goto err_nomem;
		s->n_tiers = i + 1;
	}
	rv = seg_lock_index(s, errmsg);
	if (rv != 0)
		goto err_after_alloc;
	rv = seg_locks_init(s, errmsg);
	if (rv != 0)
		goto err_after_alloc;
	rv = seg_env_open(s,
			  cfg->index_map_size != 0 ? cfg->index_map_size
						   : SEGSTORE_DEFAULT_MAP_SIZE,
			  errmsg);
	if (rv != 0)
		goto err_after_alloc;
	rv = seg_index_setup(s, errmsg);
	if (rv != 0)
		goto err_after_alloc;
	*out = s;
	return 0;

err_nomem:
	ombra_errmsg_printf(errmsg, "out of memory");
	rv = OMBRA_ENOMEM;
err_after_alloc:
	seg_free(s);
err:
	ombra_errmsg_wrapf(errmsg, "segstore_open()");
	return rv;
}

void segstore_close(struct segstore *s)
{
	char errmsg[OMBRA_ERRMSG_LEN];

	if (s == NULL)
		return;
	(void)segstore_flush(s, errmsg);
	seg_free(s);
}

int segstore_flush(struct segstore *s, char *errmsg)
{
	int rv;

	if (s == NULL) {
		ombra_errmsg_printf(errmsg, "segstore_flush(): no store");
		return OMBRA_EINVAL;
	}
	rv = seg_files_sync(s, errmsg);
	if (rv == 0)
		rv = seg_env_sync(s, errmsg);
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg, "segstore_flush()");
	return rv;
}

int segstore_usage(struct segstore *s, struct segstore_tier_usage *out,
		   size_t cap, size_t *n, char *errmsg)
{
	struct seg_tier_row row;
	MDB_txn *txn = NULL;
	size_t i;
	int rv;

	if (s == NULL || n == NULL || (out == NULL && cap > 0)) {
		ombra_errmsg_printf(errmsg, "segstore_usage(): bad arguments");
		return OMBRA_EINVAL;
	}
	*n = s->n_tiers;
	rv = seg_txn_begin(s, false, &txn, errmsg);
	for (i = 0; rv == 0 && i < s->n_tiers && i < cap; i++) {
		rv = seg_tier_row_get(s, txn, i, &row, errmsg);
		if (rv != 0)
			break;
		out[i].name = s->tiers[i].name;
		out[i].capacity = s->tiers[i].capacity;
		out[i].allocated = row.allocated;
		out[i].used = row.used;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rv != 0)
		ombra_errmsg_wrapf(errmsg, "segstore_usage()");
	return rv;
}
