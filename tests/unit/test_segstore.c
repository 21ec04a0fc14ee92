/* test_segstore.c: the segment store against its contract (segstore.h):
 * round trips across segments, zeros for unwritten blocks, order-free
 * apply-if-newer, detection of flipped bytes, misdirected and torn writes
 * (read and scrub), repair, trim, reopen, two tiers with moves, usage
 * accounting, concurrency and every class of bad input.
 *
 * Each test gets a fresh temporary directory (removed afterwards) holding
 * the index and two tier directories; corruption is injected by writing
 * the data files directly, and disk faults (EIO on read, failing
 * fdatasync, ENOSPC, no hole punching) through struct segstore_io.  Random data
 * comes from a seeded xorshift generator, so a failure is reproducible.  Fails
 * (cmocka) on the first assertion, with the store's errmsg printed where one
 * exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "stored/crc.h"
#include "stored/segstore.h"

#define BS SEGSTORE_BLOCK_SIZE
#define SEG (64u * 1024u) /* 16 blocks per segment */
#define PER_SEG (SEG / BS)
#define MIB (1024u * 1024u)

/* Faults injected through struct segstore_io. */
static struct {
	bool pread_on;		/* fail preads covering pread_bad_off */
	uint64_t pread_bad_off; /* byte offset in any data file */
	int fdatasync_fail;	/* next N fdatasync calls fail with EIO */
	int pwrite_fail;	/* next N pwrite calls fail with ENOSPC */
	bool no_punch;		/* fallocate is not supported */
	int punches;		/* fallocate calls seen */
} faults;

static ssize_t fake_pread(int fd, void *buf, size_t len, off_t off)
{
	if (faults.pread_on && (uint64_t)off <= faults.pread_bad_off &&
	    faults.pread_bad_off < (uint64_t)off + len) {
		errno = EIO;
		return -1;
	}
	return pread(fd, buf, len, off);
}

static ssize_t fake_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (faults.pwrite_fail > 0) {
		faults.pwrite_fail--;
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, buf, len, off);
}

static int fake_fdatasync(int fd)
{
	if (faults.fdatasync_fail > 0) {
		faults.fdatasync_fail--;
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

static int fake_fallocate(int fd, int mode, off_t off, off_t len)
{
	faults.punches++;
	if (faults.no_punch) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return fallocate(fd, mode, off, len);
}

static const struct segstore_io fake_io = {fake_pread, fake_pwrite,
					   fake_fdatasync, fake_fallocate};

struct fx {
	char root[256];
	char index[320];
	char tier_dir[2][320];
	struct segstore *s;
	const struct segstore_io *io; /* NULL: the system calls */
	char errmsg[OMBRA_ERRMSG_LEN];
};

/* xorshift64 (Marsaglia 2003). */
static uint64_t rng_next(uint64_t *st)
{
	uint64_t x = *st;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*st = x;
	return x;
}

/* A block's content that depends on all three, so that blocks differ. */
static void fill_block(unsigned char *buf, uint64_t vol, uint64_t block,
		       uint64_t version)
{
	uint64_t st = (vol + 1) * 0x9E3779B97F4A7C15ull ^ (block + 7) * 31 ^
		      version * 0xBF58476D1CE4E5B9ull;
	size_t i;

	if (st == 0)
		st = 1;
	for (i = 0; i < BS; i += 8) {
		uint64_t v = rng_next(&st);

		memcpy(buf + i, &v, 8);
	}
}

static uint64_t ver(uint32_t epoch, uint64_t seq)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	uint64_t v = 0;

	assert_int_equal(segstore_version_make(epoch, seq, &v, errmsg), 0);
	return v;
}

static bool is_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] != 0)
			return false;
	}
	return true;
}

static int fx_open_tiers(struct fx *f, size_t n_tiers, uint64_t cap0,
			 uint64_t cap1)
{
	struct segstore_tier_config tiers[2] = {
	    {"fast", f->tier_dir[0], cap0},
	    {"slow", f->tier_dir[1], cap1},
	};
	struct segstore_config cfg = {f->index, tiers, n_tiers, 64u * MIB,
				      f->io};

	return segstore_open(&cfg, &f->s, f->errmsg);
}

static void fx_open(struct fx *f)
{
	int rv = fx_open_tiers(f, 1, UINT64_C(1) << 40, 0);

	if (rv != 0)
		fail_msg("segstore_open: %s", f->errmsg);
}

static void fx_reopen(struct fx *f)
{
	segstore_close(f->s);
	f->s = NULL;
	fx_open(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (f == NULL)
		return -1;
	snprintf(f->root, sizeof(f->root), "%s/ombra-segstore-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->root) == NULL) {
		free(f);
		return -1;
	}
	memset(&faults, 0, sizeof(faults));
	snprintf(f->index, sizeof(f->index), "%s/index", f->root);
	snprintf(f->tier_dir[0], sizeof(f->tier_dir[0]), "%s/fast", f->root);
	snprintf(f->tier_dir[1], sizeof(f->tier_dir[1]), "%s/slow", f->root);
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	segstore_close(f->s);
	(void)nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void must(struct fx *f, int rv, const char *what)
{
	if (rv != 0)
		fail_msg("%s: rv %d (%s): %s", what, rv, ombra_strerror(rv),
			 f->errmsg);
}

/* Write blocks [first, first+n) of vol with fill_block() content, split
 * per segment as a daemon would. */
static void write_pattern(struct fx *f, uint64_t vol, uint32_t seg_size,
			  uint64_t first, uint64_t n, uint64_t version)
{
	uint64_t per_seg = seg_size / BS, b = first, end = first + n;
	unsigned char *buf = malloc((size_t)seg_size);

	assert_non_null(buf);
	while (b < end) {
		uint64_t stop = (b / per_seg + 1) * per_seg;
		uint64_t cnt = (stop < end ? stop : end) - b, i;

		for (i = 0; i < cnt; i++)
			fill_block(buf + i * BS, vol, b + i, version);
		must(f,
		     segstore_write(f->s, vol, seg_size, b * BS, buf,
				    (size_t)(cnt * BS), version, false,
				    f->errmsg),
		     "segstore_write");
		b += cnt;
	}
	free(buf);
}

/* Read blocks [first, first+n) and check content, versions, no bad. */
static void expect_pattern(struct fx *f, uint64_t vol, uint64_t first,
			   uint64_t n, uint64_t version)
{
	unsigned char *buf = malloc((size_t)n * BS), want[BS];
	uint64_t *versions = calloc((size_t)n, sizeof(*versions));
	size_t n_bad = 99, i;

	assert_non_null(buf);
	assert_non_null(versions);
	must(f,
	     segstore_read(f->s, vol, first * BS, (size_t)n * BS, buf, versions,
			   NULL, &n_bad, f->errmsg),
	     "segstore_read");
	assert_int_equal(n_bad, 0);
	for (i = 0; i < n; i++) {
		fill_block(want, vol, first + i, version);
		if (memcmp(buf + i * BS, want, BS) != 0)
			fail_msg("volume %" PRIu64 " block %" PRIu64
				 ": wrong data",
				 vol, first + i);
		assert_int_equal(versions[i], version);
	}
	free(versions);
	free(buf);
}

static void data_path(const struct fx *f, int tier, uint64_t vol, char *out,
		      size_t len)
{
	snprintf(out, len, "%s/vol-%" PRIu64 ".data", f->tier_dir[tier], vol);
}

/* Overwrite bytes of a data file behind the store's back. */
static void poke(const struct fx *f, int tier, uint64_t vol, uint64_t off,
		 const void *bytes, size_t n)
{
	char path[512];
	int fd;

	data_path(f, tier, vol, path, sizeof(path));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

static void peek(const struct fx *f, int tier, uint64_t vol, uint64_t off,
		 void *bytes, size_t n)
{
	char path[512];
	int fd;

	data_path(f, tier, vol, path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, bytes, n, (off_t)off), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

static struct segstore_block mk_block(uint64_t vol, uint64_t block,
				      uint64_t version, const void *data)
{
	struct segstore_block b = {block, version,
				   crc_block(data, vol, block, version), data};

	return b;
}

/* Collects what a scrub reports. */
struct bad_list {
	size_t n;
	uint64_t vol[64], block[64], version[64];
};

static void scrub_cb(void *arg, uint64_t vol, uint64_t block, uint64_t version)
{
	struct bad_list *l = arg;

	if (l->n < 64) {
		l->vol[l->n] = vol;
		l->block[l->n] = block;
		l->version[l->n] = version;
	}
	l->n++;
}

/* One full scrub pass in steps of `step` blocks; returns blocks checked. */
static size_t scrub_pass(struct fx *f, size_t step, struct bad_list *l)
{
	struct segstore_scrub_cursor c = {0};
	size_t checked, total = 0;
	int guard = 0;

	while (c.passes == 0) {
		must(f,
		     segstore_scrub_step(f->s, &c, step, scrub_cb, l, &checked,
					 f->errmsg),
		     "segstore_scrub_step");
		assert_true(checked <= step);
		total += checked;
		assert_true(++guard < 100000);
	}
	return total;
}

/* --- checksums and versions --- */

static void test_crc32c_vectors(void **state)
{
	static const unsigned char ones[32] = {
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	unsigned char zeros[32] = {0}, blk[BS];
	uint32_t whole;
	size_t i;

	/* Check value of CRC-32C and RFC 3720 B.4 vectors. */
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(0, zeros, 32), 0x8A9136AAu);
	assert_int_equal(crc32c(0, ones, 32), 0x62A8AB43u);
	assert_int_equal(crc32c(0, NULL, 0), 0);
	/* Chaining equals one pass. */
	whole = crc32c(0, "123456789", 9);
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5), whole);

	/* The block checksum as defined in docs/storage-format.md (values
	 * computed independently with a bitwise CRC32C). */
	for (i = 0; i < BS; i++)
		blk[i] = (unsigned char)i;
	assert_int_equal(crc_block(blk, 7, 1000, (UINT64_C(5) << 40) | 9),
			 0x9568B10Au);
	assert_int_equal(crc_block(NULL, 1, 2, 3), 0x06357089u);

	/* It binds data to volume, block and version. */
	memset(blk, 0, sizeof(blk));
	assert_int_equal(crc_block(NULL, 1, 2, 3), crc_block(blk, 1, 2, 3));
	assert_int_not_equal(crc_block(blk, 1, 2, 3), crc_block(blk, 9, 2, 3));
	assert_int_not_equal(crc_block(blk, 1, 2, 3), crc_block(blk, 1, 9, 3));
	assert_int_not_equal(crc_block(blk, 1, 2, 3), crc_block(blk, 1, 2, 9));
	blk[4095] = 1;
	assert_int_not_equal(crc_block(blk, 1, 2, 3), crc_block(NULL, 1, 2, 3));
}

static void test_version_helpers(void **state)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	uint64_t v;

	assert_int_equal(segstore_version_make(5, 77, &v, errmsg), 0);
	assert_int_equal(v, (UINT64_C(5) << 40) | 77);
	assert_int_equal(segstore_version_epoch(v), 5);
	assert_int_equal(segstore_version_seq(v), 77);
	assert_int_equal(segstore_version_make(SEGSTORE_VERSION_MAX_EPOCH,
					       SEGSTORE_VERSION_MAX_SEQ, &v,
					       errmsg),
			 0);
	assert_int_equal(v, UINT64_MAX);
	/* A higher epoch wins over any sequence of a lower one. */
	assert_int_equal(
	    segstore_version_cmp(ver(2, 0), ver(1, SEGSTORE_VERSION_MAX_SEQ)),
	    1);
	assert_int_equal(segstore_version_cmp(ver(1, 3), ver(1, 4)), -1);
	assert_int_equal(segstore_version_cmp(ver(1, 4), ver(1, 4)), 0);
	assert_int_equal(segstore_version_make(1u << 24, 0, &v, errmsg),
			 OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "epoch"));
	assert_int_equal(
	    segstore_version_make(1, UINT64_C(1) << 40, &v, errmsg),
	    OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "sequence"));
}

/* --- data path --- */

static void test_round_trip_across_segments(void **state)
{
	struct fx *f = *state;
	struct segstore_segment_info info;
	uint64_t versions[PER_SEG], last = (UINT64_C(1) << 30) / BS - 1;
	uint64_t v = ver(1, 1);
	size_t i;

	fx_open(f);
	/* Blocks 12..35 span segments 0 (12-15), 1 (16-31) and 2 (32-35). */
	write_pattern(f, 7, SEG, 12, 24, v);
	expect_pattern(f, 7, 12, 24, v);
	expect_pattern(f, 7, 16, PER_SEG, v);
	expect_pattern(f, 7, 35, 1, v);
	/* The last block of a 1 GiB volume with 1 MiB segments. */
	write_pattern(f, 8, MIB, last, 1, v);
	expect_pattern(f, 8, last, 1, v);

	must(f,
	     segstore_segment_info(f->s, 7, 0, &info, versions, PER_SEG,
				   f->errmsg),
	     "segment_info");
	assert_int_equal(info.version, v);
	assert_int_equal(info.segment_size, SEG);
	assert_int_equal(info.n_blocks, PER_SEG);
	assert_int_equal(info.n_data_blocks, 4);
	assert_int_equal(info.tier, 0);
	assert_string_equal(info.tier_name, "fast");
	for (i = 0; i < PER_SEG; i++)
		assert_int_equal(versions[i], i >= 12 ? v : 0);
}

static void test_unwritten_reads_zero(void **state)
{
	struct fx *f = *state;
	struct segstore_segment_info info;
	unsigned char *buf = malloc(3 * SEG);
	uint64_t versions[3 * PER_SEG];
	size_t n_bad, i;

	assert_non_null(buf);
	fx_open(f);
	/* A volume the store never saw. */
	memset(buf, 0xAA, 3 * SEG);
	memset(versions, 0xAA, sizeof(versions));
	must(f,
	     segstore_read(f->s, 3, 0, 3 * SEG, buf, versions, NULL, &n_bad,
			   f->errmsg),
	     "read unknown volume");
	assert_true(is_zero(buf, 3 * SEG));
	for (i = 0; i < 3 * PER_SEG; i++)
		assert_int_equal(versions[i], 0);
	/* Only block 17 written: the rest of its segment and the segments
	 * around it read as zeros with version 0. */
	write_pattern(f, 3, SEG, 17, 1, ver(1, 9));
	memset(buf, 0xAA, 3 * SEG);
	must(f,
	     segstore_read(f->s, 3, 0, 3 * SEG, buf, versions, NULL, &n_bad,
			   f->errmsg),
	     "read");
	assert_int_equal(n_bad, 0);
	for (i = 0; i < 3 * PER_SEG; i++) {
		if (i == 17) {
			assert_int_equal(versions[i], ver(1, 9));
			assert_false(is_zero(buf + i * BS, BS));
		} else {
			assert_int_equal(versions[i], 0);
			assert_true(is_zero(buf + i * BS, BS));
		}
	}
	assert_int_equal(
	    segstore_segment_info(f->s, 3, 2, &info, NULL, 0, f->errmsg),
	    OMBRA_ENOTFOUND);
	free(buf);
}

static void test_stale_write_refused(void **state)
{
	struct fx *f = *state;
	unsigned char a[BS], b[BS];

	fx_open(f);
	fill_block(a, 1, 0, ver(2, 5));
	fill_block(b, 1, 0, ver(1, 99));
	must(f,
	     segstore_write(f->s, 1, SEG, 0, a, BS, ver(2, 5), true, f->errmsg),
	     "write");
	/* Older epoch, even with a larger sequence. */
	assert_int_equal(segstore_write(f->s, 1, SEG, 0, b, BS, ver(1, 99),
					false, f->errmsg),
			 OMBRA_EPRECOND);
	assert_non_null(strstr(f->errmsg, "stale"));
	/* Same version, other data: a conflict. */
	assert_int_equal(
	    segstore_write(f->s, 1, SEG, 0, b, BS, ver(2, 5), false, f->errmsg),
	    OMBRA_EPRECOND);
	/* The same write retried is accepted. */
	must(
	    f,
	    segstore_write(f->s, 1, SEG, 0, a, BS, ver(2, 5), false, f->errmsg),
	    "retry");
	expect_pattern(f, 1, 0, 1, ver(2, 5));
}

/* One update of the order-free test. */
struct upd {
	uint64_t block, version;
	unsigned char *data; /* NULL: a trim */
};

static void apply_all(struct fx *f, struct upd *u, size_t n, size_t batch)
{
	struct segstore_block *blocks = calloc(batch, sizeof(*blocks));
	size_t i, j, applied;

	assert_non_null(blocks);
	for (i = 0; i < n; i += batch) {
		size_t m = n - i < batch ? n - i : batch;

		for (j = 0; j < m; j++)
			blocks[j] = mk_block(4, u[i + j].block,
					     u[i + j].version, u[i + j].data);
		must(f,
		     segstore_apply_if_newer(f->s, 4, SEG, blocks, m, false,
					     &applied, f->errmsg),
		     "apply_if_newer");
		assert_true(applied <= m);
	}
	free(blocks);
}

static void snapshot(struct fx *f, uint64_t n_blocks, unsigned char *buf,
		     uint64_t *versions)
{
	size_t n_bad;

	must(f,
	     segstore_read(f->s, 4, 0, (size_t)n_blocks * BS, buf, versions,
			   NULL, &n_bad, f->errmsg),
	     "read");
}

static void test_apply_if_newer_order_free(void **state)
{
	enum { N_BLOCKS = 3 * PER_SEG, N_UPD = 150 };
	struct fx *f = *state;
	struct upd u[N_UPD], tmp;
	unsigned char *data = malloc((size_t)N_UPD * BS);
	unsigned char *want = calloc(N_BLOCKS, BS),
		      *got = malloc(N_BLOCKS * BS);
	uint64_t want_v[N_BLOCKS] = {0}, got_v[N_BLOCKS], seed = 20261122;
	struct segstore_block blk;
	size_t i, j, applied;
	int round;

	assert_non_null(data);
	assert_non_null(want);
	assert_non_null(got);
	/* Random blocks, several versions each, some of them trims. */
	for (i = 0; i < N_UPD; i++) {
		u[i].block = rng_next(&seed) % N_BLOCKS;
		u[i].version = ver(1 + (uint32_t)(rng_next(&seed) % 3),
				   1 + i); /* distinct versions */
		u[i].data = data + i * BS;
		fill_block(u[i].data, 4, u[i].block, u[i].version);
		if (rng_next(&seed) % 8 == 0)
			u[i].data = NULL;
		if (u[i].version > want_v[u[i].block]) {
			want_v[u[i].block] = u[i].version;
			if (u[i].data != NULL)
				memcpy(want + u[i].block * BS, u[i].data, BS);
			else
				memset(want + u[i].block * BS, 0, BS);
		}
	}
	fx_open(f);
	for (round = 0; round < 4; round++) {
		/* Round 0 in generation order one by one; then shuffled,
		 * in batches of 7, and all at once with duplicates. */
		if (round > 0) {
			for (i = N_UPD - 1; i > 0; i--) {
				j = rng_next(&seed) % (i + 1);
				tmp = u[i];
				u[i] = u[j];
				u[j] = tmp;
			}
		}
		apply_all(f, u, N_UPD,
			  round == 0 ? 1 : (round == 1 ? 7 : N_UPD));
		snapshot(f, N_BLOCKS, got, got_v);
		for (i = 0; i < N_BLOCKS; i++) {
			if (got_v[i] != want_v[i] ||
			    memcmp(got + i * BS, want + i * BS, BS) != 0)
				fail_msg("round %d block %zu: version %#" PRIx64
					 ", want %#" PRIx64,
					 round, i, got_v[i], want_v[i]);
		}
		fx_reopen(f);
	}
	/* Equal and older versions change nothing. */
	for (i = 0; i < N_UPD; i++) {
		blk = mk_block(4, u[i].block, u[i].version, u[i].data);
		must(f,
		     segstore_apply_if_newer(f->s, 4, SEG, &blk, 1, true,
					     &applied, f->errmsg),
		     "reapply");
		assert_int_equal(applied, 0);
	}
	/* A newer one applies. */
	blk = mk_block(4, 5, ver(9, 1), data);
	must(f,
	     segstore_apply_if_newer(f->s, 4, SEG, &blk, 1, true, &applied,
				     f->errmsg),
	     "newer");
	assert_int_equal(applied, 1);
	snapshot(f, N_BLOCKS, got, got_v);
	assert_int_equal(got_v[5], ver(9, 1));
	assert_memory_equal(got + 5 * BS, data, BS);
	free(got);
	free(want);
	free(data);
}

static void test_bad_incoming_crc_rejected(void **state)
{
	struct fx *f = *state;
	struct segstore_segment_info info;
	unsigned char a[BS], b[BS];
	struct segstore_block blocks[2];
	size_t applied = 99;

	fx_open(f);
	fill_block(a, 2, 0, 1);
	fill_block(b, 2, 1, 1);
	blocks[0] = mk_block(2, 0, ver(1, 1), a);
	blocks[1] = mk_block(2, 1, ver(1, 1), b);
	blocks[1].crc ^= 0x10;
	assert_int_equal(segstore_apply_if_newer(f->s, 2, SEG, blocks, 2, false,
						 &applied, f->errmsg),
			 OMBRA_EPROTO);
	assert_int_equal(applied, 0);
	assert_non_null(strstr(f->errmsg, "block 1"));
	/* The good block of the batch was not applied either. */
	assert_int_equal(
	    segstore_segment_info(f->s, 2, 0, &info, NULL, 0, f->errmsg),
	    OMBRA_ENOTFOUND);
	/* A block sent for another index: its checksum names block 0. */
	blocks[0].block = 3;
	assert_int_equal(segstore_apply_if_newer(f->s, 2, SEG, blocks, 1, false,
						 &applied, f->errmsg),
			 OMBRA_EPROTO);
	/* Same for repair. */
	assert_int_equal(segstore_repair(f->s, 2, SEG, blocks, 1, false,
					 &applied, f->errmsg),
			 OMBRA_EPROTO);
}

static void test_flipped_byte_detected(void **state)
{
	struct fx *f = *state;
	unsigned char *buf = malloc(2 * SEG), byte, good[BS];
	uint64_t versions[2 * PER_SEG], bad[2 * PER_SEG], v = ver(3, 1);
	struct bad_list l = {0};
	struct segstore_block fix;
	size_t n_bad, applied;

	assert_non_null(buf);
	fx_open(f);
	write_pattern(f, 5, SEG, 0, 2 * PER_SEG, v);
	must(f, segstore_flush(f->s, f->errmsg), "flush");
	/* Flip one bit in block 20. */
	peek(f, 0, 5, 20 * BS + 1000, &byte, 1);
	byte ^= 0x04;
	poke(f, 0, 5, 20 * BS + 1000, &byte, 1);

	assert_int_equal(segstore_read(f->s, 5, 0, 2 * SEG, buf, versions, bad,
				       &n_bad, f->errmsg),
			 OMBRA_EIO);
	assert_int_equal(n_bad, 1);
	assert_int_equal(bad[0], 20);
	assert_non_null(strstr(f->errmsg, "block 20"));
	/* Never handed out: zeros, with the version a replica must supply. */
	assert_true(is_zero(buf + 20 * BS, BS));
	assert_int_equal(versions[20], v);
	fill_block(good, 5, 19, v);
	assert_memory_equal(buf + 19 * BS, good, BS);

	assert_int_equal(scrub_pass(f, 5, &l), 2 * PER_SEG);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.vol[0], 5);
	assert_int_equal(l.block[0], 20);
	assert_int_equal(l.version[0], v);

	/* Repair from "another copy" makes it good again. */
	fill_block(good, 5, 20, v);
	fix = mk_block(5, 20, v, good);
	must(f,
	     segstore_repair(f->s, 5, SEG, &fix, 1, true, &applied, f->errmsg),
	     "repair");
	assert_int_equal(applied, 1);
	expect_pattern(f, 5, 0, 2 * PER_SEG, v);
	/* Repairing a good block with the same version is a no-op. */
	must(f,
	     segstore_repair(f->s, 5, SEG, &fix, 1, true, &applied, f->errmsg),
	     "repair again");
	assert_int_equal(applied, 0);
	free(buf);
}

/* A scrub callback that repairs at once from "another copy" (the
 * fill_block() pattern), as the daemon's will. */
struct repair_ctx {
	struct fx *f;
	size_t repaired;
};

static void repair_cb(void *arg, uint64_t vol, uint64_t block, uint64_t version)
{
	struct repair_ctx *r = arg;
	unsigned char good[BS];
	struct segstore_block b;
	size_t applied = 0;

	fill_block(good, vol, block, version);
	b = mk_block(vol, block, version, good);
	if (segstore_repair(r->f->s, vol, SEG, &b, 1, true, &applied,
			    r->f->errmsg) == 0)
		r->repaired += applied;
}

static void test_scrub_repairs_from_callback(void **state)
{
	struct fx *f = *state;
	struct segstore_scrub_cursor c = {0};
	struct repair_ctx r = {f, 0};
	unsigned char junk = 0x33;
	struct bad_list l = {0};
	size_t checked;

	fx_open(f);
	write_pattern(f, 14, SEG, 0, 3 * PER_SEG, ver(2, 2));
	poke(f, 0, 14, 5 * BS, &junk, 1);
	poke(f, 0, 14, 40 * BS + 9, &junk, 1);
	while (c.passes == 0)
		must(f,
		     segstore_scrub_step(f->s, &c, 10, repair_cb, &r, &checked,
					 f->errmsg),
		     "scrub");
	assert_int_equal(r.repaired, 2);
	expect_pattern(f, 14, 0, 3 * PER_SEG, ver(2, 2));
	assert_int_equal(scrub_pass(f, 1000, &l), 3 * PER_SEG);
	assert_int_equal(l.n, 0);
}

/* Edit one value in the store's LMDB index (layout:
 * docs/storage-format.md) while the store is closed: at byte `at` of the
 * value under key in database db, xor (or copy, when !xor) n bytes; with
 * reseal, recompute a segment record's own checksum as the store would. */
static void index_edit(struct fx *f, const char *db, const void *key,
		       size_t key_len, size_t at, const uint8_t *bytes,
		       size_t n, bool xor, bool reseal)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {key_len, (void *)key}, v;
	uint8_t copy[32 * 1024];
	uint32_t crc;
	size_t i;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 64u * MIB), 0);
	assert_int_equal(mdb_env_open(env, f->index, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_true(v.mv_size <= sizeof(copy) && at + n <= v.mv_size);
	memcpy(copy, v.mv_data, v.mv_size);
	for (i = 0; i < n; i++)
		copy[at + i] = xor? copy[at + i] ^ bytes[i] : bytes[i];
	if (reseal) {
		memset(copy + 4, 0, 4);
		crc = crc32c(0, copy, v.mv_size);
		for (i = 0; i < 4; i++)
			copy[4 + i] = (uint8_t)(crc >> (8 * i));
	}
	v.mv_data = copy;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Flip bits of one byte of an index value (no reseal). */
static void index_poke(struct fx *f, const char *db, const void *key,
		       size_t key_len, size_t at, uint8_t xor)
{
	index_edit(f, db, key, key_len, at, &xor, 1, true, false);
}
static void test_misdirected_write_detected(void **state)
{
	struct fx *f = *state;
	unsigned char copy[BS], buf[PER_SEG * BS];
	uint64_t bad[PER_SEG];
	struct bad_list l = {0};
	size_t n_bad;

	fx_open(f);
	write_pattern(f, 6, SEG, 0, PER_SEG, ver(1, 1));
	/* Block 2's bytes land on block 9 as well. */
	peek(f, 0, 6, 2 * BS, copy, BS);
	poke(f, 0, 6, 9 * BS, copy, BS);
	assert_int_equal(segstore_read(f->s, 6, 0, sizeof(buf), buf, NULL, bad,
				       &n_bad, f->errmsg),
			 OMBRA_EIO);
	assert_int_equal(n_bad, 1);
	assert_int_equal(bad[0], 9);
	(void)scrub_pass(f, 100, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.block[0], 9);

	/* A whole file of another volume in place of this one's (a
	 * misdirected file or volume id): every written block fails. */
	{
		char from[512], to[512];

		write_pattern(f, 60, SEG, 0, 2, ver(1, 3));
		write_pattern(f, 61, SEG, 0, 2, ver(1, 3));
		data_path(f, 0, 60, from, sizeof(from));
		data_path(f, 0, 61, to, sizeof(to));
		segstore_close(f->s);
		f->s = NULL;
		assert_int_equal(rename(from, to), 0);
		fx_open(f);
		assert_int_equal(segstore_read(f->s, 61, 0, 3 * BS, buf, NULL,
					       bad, &n_bad, f->errmsg),
				 OMBRA_EIO);
		assert_int_equal(n_bad, 2);
		assert_int_equal(bad[0], 0);
		assert_int_equal(bad[1], 1);
	}

	/* A write meant for block 2 (data and index entry) landed on block
	 * 9: the bytes and the entry agree with each other, but the
	 * checksum names block 2, so block 9 fails. */
	{
		static const uint8_t key[16] = {0, 0, 0, 0, 0, 0, 0, 6,
						0, 0, 0, 0, 0, 0, 0, 0};
		uint8_t entry[16];
		uint64_t v2 = ver(1, 7);
		uint32_t crc;
		int i;

		fill_block(copy, 6, 2, v2);
		crc = crc_block(copy, 6, 2, v2);
		for (i = 0; i < 8; i++)
			entry[i] = (uint8_t)(v2 >> (8 * i));
		for (i = 0; i < 4; i++)
			entry[8 + i] = (uint8_t)(crc >> (8 * i));
		memset(entry + 12, 0, 4);
		segstore_close(f->s);
		f->s = NULL;
		poke(f, 0, 6, 9 * BS, copy, BS);
		/* Block entry 9 of segment 0, and the segment version. */
		index_edit(f, "segments", key, sizeof(key), 32 + 9 * 16, entry,
			   sizeof(entry), false, false);
		index_edit(f, "segments", key, sizeof(key), 24, entry, 8, false,
			   true);
		fx_open(f);
		assert_int_equal(segstore_read(f->s, 6, 9 * BS, BS, buf, NULL,
					       bad, &n_bad, f->errmsg),
				 OMBRA_EIO);
		assert_int_equal(n_bad, 1);
		assert_int_equal(bad[0], 9);
		expect_pattern(f, 6, 0, 9, ver(1, 1));
	}
}

static void test_torn_update_detected(void **state)
{
	struct fx *f = *state;
	unsigned char v1[BS], v2[BS], buf[BS];
	uint64_t version, bad_block;
	struct segstore_block fix;
	struct bad_list l = {0};
	size_t n_bad, applied;

	fx_open(f);
	fill_block(v1, 9, 3, ver(1, 1));
	fill_block(v2, 9, 3, ver(1, 2));
	must(f,
	     segstore_write(f->s, 9, SEG, 3 * BS, v1, BS, ver(1, 1), true,
			    f->errmsg),
	     "write v1");
	segstore_close(f->s);
	f->s = NULL;
	/* Crash during the next write: half of the new data reached the
	 * file, the index commit did not happen. */
	poke(f, 0, 9, 3 * BS, v2, BS / 2);
	fx_open(f);
	assert_int_equal(segstore_read(f->s, 9, 3 * BS, BS, buf, &version,
				       &bad_block, &n_bad, f->errmsg),
			 OMBRA_EIO);
	assert_int_equal(n_bad, 1);
	assert_int_equal(bad_block, 3);
	assert_int_equal(version, ver(1, 1));
	(void)scrub_pass(f, 1, &l);
	assert_int_equal(l.n, 1);
	/* The replica holds v1 (the v2 write was never acknowledged). */
	fix = mk_block(9, 3, ver(1, 1), v1);
	must(f,
	     segstore_repair(f->s, 9, SEG, &fix, 1, true, &applied, f->errmsg),
	     "repair");
	assert_int_equal(applied, 1);
	expect_pattern(f, 9, 3, 1, ver(1, 1));

	/* The other order: the index commit reached the disk, the data did
	 * not (v2 acknowledged nowhere).  Simulated by putting v1's bytes
	 * back under v2's index entry. */
	must(f,
	     segstore_write(f->s, 9, SEG, 3 * BS, v2, BS, ver(1, 2), false,
			    f->errmsg),
	     "write v2");
	segstore_close(f->s);
	f->s = NULL;
	poke(f, 0, 9, 3 * BS, v1, BS);
	fx_open(f);
	assert_int_equal(segstore_read(f->s, 9, 3 * BS, BS, buf, &version,
				       &bad_block, &n_bad, f->errmsg),
			 OMBRA_EIO);
	assert_int_equal(version, ver(1, 2));
	/* apply_if_newer cannot fix it with the replica's older copy ... */
	must(f,
	     segstore_apply_if_newer(f->s, 9, SEG, &fix, 1, false, &applied,
				     f->errmsg),
	     "apply older");
	assert_int_equal(applied, 0);
	/* ... repair can, because the stored copy is bad. */
	must(f,
	     segstore_repair(f->s, 9, SEG, &fix, 1, false, &applied, f->errmsg),
	     "repair older");
	assert_int_equal(applied, 1);
	expect_pattern(f, 9, 3, 1, ver(1, 1));
	/* Once good, an older copy no longer replaces it. */
	fill_block(v1, 9, 3, ver(0, 5));
	fix = mk_block(9, 3, ver(0, 5), v1);
	must(f,
	     segstore_repair(f->s, 9, SEG, &fix, 1, false, &applied, f->errmsg),
	     "repair good");
	assert_int_equal(applied, 0);
	expect_pattern(f, 9, 3, 1, ver(1, 1));
}

static void test_trim(void **state)
{
	struct fx *f = *state;
	struct segstore_segment_info info;
	struct segstore_tier_usage u;
	unsigned char buf[4 * BS], zero[BS] = {0};
	uint64_t versions[4];
	char path[512];
	struct stat st_before, st_after;
	size_t n, n_bad;

	fx_open(f);
	write_pattern(f, 11, SEG, 0, 4, ver(1, 1));
	must(f, segstore_flush(f->s, f->errmsg), "flush");
	data_path(f, 0, 11, path, sizeof(path));
	assert_int_equal(stat(path, &st_before), 0);
	must(f,
	     segstore_trim(f->s, 11, SEG, BS, 2 * BS, ver(1, 2), true,
			   f->errmsg),
	     "trim");
	assert_int_equal(stat(path, &st_after), 0);
	/* Punched: fewer allocated blocks, same size. */
	assert_true(st_after.st_blocks < st_before.st_blocks);
	assert_int_equal(st_after.st_size, st_before.st_size);
	must(f,
	     segstore_read(f->s, 11, 0, sizeof(buf), buf, versions, NULL,
			   &n_bad, f->errmsg),
	     "read");
	assert_true(is_zero(buf + BS, 2 * BS));
	assert_int_equal(versions[0], ver(1, 1));
	assert_int_equal(versions[1], ver(1, 2));
	assert_int_equal(versions[2], ver(1, 2));
	assert_int_equal(versions[3], ver(1, 1));
	expect_pattern(f, 11, 0, 1, ver(1, 1));
	expect_pattern(f, 11, 3, 1, ver(1, 1));
	must(f, segstore_usage(f->s, &u, 1, &n, f->errmsg), "usage");
	assert_int_equal(u.used, 2 * BS);
	/* A trim is versioned like a write: an older one is refused. */
	assert_int_equal(
	    segstore_trim(f->s, 11, SEG, 0, BS, ver(1, 1), false, f->errmsg),
	    OMBRA_EPRECOND);
	/* Trimmed blocks still verify: data written into the hole shows. */
	poke(f, 0, 11, BS + 7, "x", 1);
	assert_int_equal(segstore_read(f->s, 11, 0, sizeof(buf), buf, versions,
				       NULL, &n_bad, f->errmsg),
			 OMBRA_EIO);
	assert_int_equal(n_bad, 1);
	poke(f, 0, 11, BS + 7, zero, 1);
	/* A trim propagates to a shadow as a zero block. */
	{
		struct segstore_block z = mk_block(12, 1, ver(1, 2), NULL);
		size_t applied;

		write_pattern(f, 12, SEG, 0, 2, ver(1, 1));
		must(f,
		     segstore_apply_if_newer(f->s, 12, SEG, &z, 1, false,
					     &applied, f->errmsg),
		     "apply trim");
		assert_int_equal(applied, 1);
		must(f,
		     segstore_read(f->s, 12, BS, BS, buf, versions, NULL,
				   &n_bad, f->errmsg),
		     "read");
		assert_true(is_zero(buf, BS));
		assert_int_equal(versions[0], ver(1, 2));
		/* The zero block holds no data any more. */
		must(f,
		     segstore_segment_info(f->s, 12, 0, &info, NULL, 0,
					   f->errmsg),
		     "info");
		assert_int_equal(info.n_data_blocks, 1);
		assert_int_equal(info.version, ver(1, 2));
	}
	/* Writes after a trim work as usual. */
	write_pattern(f, 11, SEG, 1, 1, ver(1, 3));
	expect_pattern(f, 11, 1, 1, ver(1, 3));
}

static void test_reopen_keeps_everything(void **state)
{
	struct fx *f = *state;
	struct segstore_tier_usage u1, u2;
	struct segstore_segment_info i1, i2;
	uint64_t v1[PER_SEG], v2[PER_SEG];
	unsigned char b1[2 * SEG], b2[2 * SEG];
	size_t n, n_bad;

	fx_open(f);
	write_pattern(f, 13, SEG, 3, 20, ver(4, 4));
	must(f,
	     segstore_trim(f->s, 13, SEG, 5 * BS, BS, ver(4, 5), false,
			   f->errmsg),
	     "trim");
	must(f, segstore_usage(f->s, &u1, 1, &n, f->errmsg), "usage");
	must(f, segstore_segment_info(f->s, 13, 0, &i1, v1, PER_SEG, f->errmsg),
	     "info");
	must(f,
	     segstore_read(f->s, 13, 0, sizeof(b1), b1, NULL, NULL, &n_bad,
			   f->errmsg),
	     "read");
	fx_reopen(f);
	must(f, segstore_usage(f->s, &u2, 1, &n, f->errmsg), "usage");
	must(f, segstore_segment_info(f->s, 13, 0, &i2, v2, PER_SEG, f->errmsg),
	     "info");
	must(f,
	     segstore_read(f->s, 13, 0, sizeof(b2), b2, NULL, NULL, &n_bad,
			   f->errmsg),
	     "read");
	assert_int_equal(u1.used, u2.used);
	assert_int_equal(u1.allocated, u2.allocated);
	assert_int_equal(u2.used, 19 * BS);
	assert_int_equal(u2.allocated, 2 * SEG);
	assert_int_equal(i1.version, i2.version);
	assert_int_equal(i2.version, ver(4, 5));
	assert_memory_equal(v1, v2, sizeof(v1));
	assert_memory_equal(b1, b2, sizeof(b1));
	expect_pattern(f, 13, 6, 17, ver(4, 4));
	/* One store per index, also within one process. */
	{
		struct segstore *saved = f->s;

		f->s = NULL;
		assert_int_equal(fx_open_tiers(f, 1, UINT64_C(1) << 40, 0),
				 OMBRA_EPRECOND);
		assert_non_null(strstr(f->errmsg, "already open"));
		assert_null(f->s);
		f->s = saved;
	}
	/* The volume's segment size is remembered too. */
	assert_int_equal(segstore_write(f->s, 13, 2 * SEG, 0, b1, BS, ver(5, 1),
					false, f->errmsg),
			 OMBRA_EINVAL);
	assert_non_null(strstr(f->errmsg, "65536-byte segments"));
}

static void test_two_tiers(void **state)
{
	struct fx *f = *state;
	struct segstore_segment_info info;
	struct segstore_tier_usage u[2];
	char path[512];
	size_t n;

	/* fast holds two segments, slow plenty. */
	must(f, fx_open_tiers(f, 2, 2 * SEG, 100 * SEG), "open");
	write_pattern(f, 20, SEG, 0, 3 * PER_SEG, ver(1, 1));
	must(f, segstore_segment_info(f->s, 20, 2, &info, NULL, 0, f->errmsg),
	     "info");
	assert_string_equal(info.tier_name, "slow");
	assert_int_equal(info.tier, 1);
	data_path(f, 1, 20, path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	must(f, segstore_usage(f->s, u, 2, &n, f->errmsg), "usage");
	assert_int_equal(n, 2);
	assert_string_equal(u[0].name, "fast");
	assert_int_equal(u[0].capacity, 2 * SEG);
	assert_int_equal(u[0].allocated, 2 * SEG);
	assert_int_equal(u[0].used, 2 * SEG);
	assert_int_equal(u[1].allocated, SEG);
	assert_int_equal(u[1].used, SEG);

	/* fast is full. */
	assert_int_equal(segstore_segment_move(f->s, 20, 2, "fast", f->errmsg),
			 OMBRA_ENOMEM);
	assert_non_null(strstr(f->errmsg, "no room"));
	/* Make room, then move: data follows, accounting follows. */
	must(f, segstore_segment_move(f->s, 20, 0, "slow", f->errmsg),
	     "move 0");
	must(f, segstore_segment_move(f->s, 20, 2, "fast", f->errmsg),
	     "move 2");
	must(f, segstore_segment_move(f->s, 20, 2, "fast", f->errmsg),
	     "move 2 again (no-op)");
	expect_pattern(f, 20, 0, 3 * PER_SEG, ver(1, 1));
	must(f, segstore_segment_info(f->s, 20, 0, &info, NULL, 0, f->errmsg),
	     "info");
	assert_string_equal(info.tier_name, "slow");
	must(f, segstore_usage(f->s, u, 2, &n, f->errmsg), "usage");
	assert_int_equal(u[0].allocated, 2 * SEG);
	assert_int_equal(u[1].allocated, SEG);
	assert_int_equal(u[0].used + u[1].used, 3 * SEG);

	assert_int_equal(segstore_segment_move(f->s, 20, 0, "nvme", f->errmsg),
			 OMBRA_EINVAL);
	assert_int_equal(segstore_segment_move(f->s, 20, 9, "fast", f->errmsg),
			 OMBRA_ENOTFOUND);
	/* A bad block blocks a move: moving it would spread bad data. */
	{
		unsigned char junk = 0x5a;

		poke(f, 1, 20, 3 * BS, &junk, 1);
		assert_int_equal(
		    segstore_segment_move(f->s, 20, 0, "fast", f->errmsg),
		    OMBRA_ENOMEM);
		must(f, segstore_segment_move(f->s, 20, 1, "slow", f->errmsg),
		     "move 1");
		assert_int_equal(
		    segstore_segment_move(f->s, 20, 0, "fast", f->errmsg),
		    OMBRA_EIO);
		assert_non_null(strstr(f->errmsg, "repair"));
	}
	/* Every placement and move survives a reopen with both tiers ... */
	segstore_close(f->s);
	f->s = NULL;
	must(f, fx_open_tiers(f, 2, 2 * SEG, 100 * SEG), "reopen");
	expect_pattern(f, 20, PER_SEG, 2 * PER_SEG, ver(1, 1));
	segstore_close(f->s);
	f->s = NULL;
	/* ... but not without the tier that holds data. */
	assert_int_equal(fx_open_tiers(f, 1, 2 * SEG, 0), OMBRA_ECONFIG);
	assert_non_null(strstr(f->errmsg, "'slow'"));
	assert_null(f->s);
}

static void test_no_room(void **state)
{
	struct fx *f = *state;
	unsigned char buf[BS] = {1};

	must(f, fx_open_tiers(f, 1, SEG, 0), "open");
	must(f, segstore_write(f->s, 1, SEG, 0, buf, BS, 1, false, f->errmsg),
	     "first segment");
	assert_int_equal(
	    segstore_write(f->s, 1, SEG, SEG, buf, BS, 1, false, f->errmsg),
	    OMBRA_ENOMEM);
	assert_non_null(strstr(f->errmsg, "no tier has room"));
	/* The full tier still takes writes to its existing segment. */
	must(f, segstore_write(f->s, 1, SEG, BS, buf, BS, 1, false, f->errmsg),
	     "existing segment");
}

static void test_usage_and_delete(void **state)
{
	struct fx *f = *state;
	struct segstore_tier_usage u;
	struct segstore_segment_info info;
	unsigned char buf[2 * BS];
	uint64_t versions[2];
	char path[512];
	size_t n, n_bad;

	fx_open(f);
	must(f, segstore_usage(f->s, &u, 1, &n, f->errmsg), "usage");
	assert_int_equal(u.allocated, 0);
	assert_int_equal(u.used, 0);
	write_pattern(f, 30, SEG, 0, 5, ver(1, 1));
	write_pattern(f, 31, MIB, 300, 2, ver(1, 1));
	must(f, segstore_usage(f->s, &u, 1, &n, f->errmsg), "usage");
	assert_int_equal(u.allocated, SEG + MIB);
	assert_int_equal(u.used, 7 * BS);
	/* Overwrites do not count twice. */
	write_pattern(f, 30, SEG, 0, 5, ver(1, 2));
	must(f, segstore_usage(f->s, &u, 1, &n, f->errmsg), "usage");
	assert_int_equal(u.used, 7 * BS);
	/* cap 0 only counts tiers. */
	must(f, segstore_usage(f->s, NULL, 0, &n, f->errmsg), "usage count");
	assert_int_equal(n, 1);

	must(f, segstore_delete_volume(f->s, 30, f->errmsg), "delete");
	data_path(f, 0, 30, path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	must(f, segstore_usage(f->s, &u, 1, &n, f->errmsg), "usage");
	assert_int_equal(u.allocated, MIB);
	assert_int_equal(u.used, 2 * BS);
	assert_int_equal(
	    segstore_segment_info(f->s, 30, 0, &info, NULL, 0, f->errmsg),
	    OMBRA_ENOTFOUND);
	memset(buf, 0xff, sizeof(buf));
	must(f,
	     segstore_read(f->s, 30, 0, sizeof(buf), buf, versions, NULL,
			   &n_bad, f->errmsg),
	     "read deleted");
	assert_true(is_zero(buf, sizeof(buf)));
	assert_int_equal(versions[0], 0);
	/* Deleting again (a retry) succeeds; the id can be reused with
	 * another segment size and starts empty. */
	must(f, segstore_delete_volume(f->s, 30, f->errmsg), "delete again");
	write_pattern(f, 30, MIB, 1, 1, ver(2, 1));
	expect_pattern(f, 30, 1, 1, ver(2, 1));
	must(f,
	     segstore_read(f->s, 30, 0, BS, buf, versions, NULL, &n_bad,
			   f->errmsg),
	     "read");
	assert_true(is_zero(buf, BS));
	expect_pattern(f, 31, 300, 2, ver(1, 1));
}

/* segstore_list_volumes: every volume holding data, ascending, a deleted
 * one no more; an empty store lists nothing. */
static void test_list_volumes(void **state)
{
	struct fx *f = *state;
	unsigned char buf[BS];
	uint64_t *ids = NULL;
	size_t n = 99;

	fx_open(f);
	must(f, segstore_list_volumes(f->s, &ids, &n, f->errmsg), "list");
	assert_int_equal(n, 0);
	free(ids);
	memset(buf, 0x3c, sizeof(buf));
	must(f, segstore_write(f->s, 300, SEG, 0, buf, BS, 1, false, f->errmsg),
	     "write 300");
	must(f, segstore_write(f->s, 5, SEG, SEG, buf, BS, 1, false, f->errmsg),
	     "write 5");
	must(f, segstore_write(f->s, 2, SEG, 0, buf, BS, 1, false, f->errmsg),
	     "write 2");
	must(f, segstore_list_volumes(f->s, &ids, &n, f->errmsg), "list");
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 5);
	assert_int_equal(ids[2], 300);
	free(ids);
	must(f, segstore_delete_volume(f->s, 5, f->errmsg), "delete");
	fx_reopen(f);
	must(f, segstore_list_volumes(f->s, &ids, &n, f->errmsg), "list");
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 300);
	free(ids);
	assert_int_equal(segstore_list_volumes(NULL, &ids, &n, f->errmsg),
			 OMBRA_EINVAL);
}

static void test_orphan_bytes_not_trusted(void **state)
{
	struct fx *f = *state;
	unsigned char junk[BS], buf[BS];
	uint64_t version;
	size_t n_bad;

	fx_open(f);
	/* A crash after a delete's commit left the old file behind. */
	memset(junk, 0x77, sizeof(junk));
	{
		char path[512];
		int fd;

		data_path(f, 0, 40, path, sizeof(path));
		fd = open(path, O_CREAT | O_WRONLY, 0600);
		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, junk, BS, 2 * BS), BS);
		assert_int_equal(close(fd), 0);
	}
	write_pattern(f, 40, SEG, 0, 1, ver(1, 1));
	/* Block 2 was never written in the new life of the volume. */
	must(f,
	     segstore_read(f->s, 40, 2 * BS, BS, buf, &version, NULL, &n_bad,
			   f->errmsg),
	     "read");
	assert_true(is_zero(buf, BS));
	assert_int_equal(version, 0);
	peek(f, 0, 40, 2 * BS, buf, BS);
	assert_true(is_zero(buf, BS)); /* punched at placement */
}

static void test_scrub_paced(void **state)
{
	struct fx *f = *state;
	struct bad_list l = {0};
	unsigned char junk = 0xEE;
	size_t total, i;
	bool seen[3] = {false, false, false};

	fx_open(f);
	/* 3 + 40 + 57 = 100 written blocks over three volumes. */
	write_pattern(f, 50, SEG, 0, 3, ver(1, 1));
	write_pattern(f, 51, SEG, 10, 40, ver(1, 1));
	write_pattern(f, 52, MIB, 1000, 57, ver(1, 1));
	poke(f, 0, 50, 2 * BS + 5, &junk, 1);
	poke(f, 0, 51, 33 * BS, &junk, 1);
	poke(f, 0, 52, 1056 * BS + 4095, &junk, 1);
	total = scrub_pass(f, 7, &l);
	assert_int_equal(total, 100);
	assert_int_equal(l.n, 3);
	for (i = 0; i < l.n; i++) {
		if (l.vol[i] == 50 && l.block[i] == 2)
			seen[0] = true;
		if (l.vol[i] == 51 && l.block[i] == 33)
			seen[1] = true;
		if (l.vol[i] == 52 && l.block[i] == 1056)
			seen[2] = true;
	}
	assert_true(seen[0] && seen[1] && seen[2]);
	/* An empty store finishes a pass at once. */
	must(f, segstore_delete_volume(f->s, 50, f->errmsg), "delete");
	must(f, segstore_delete_volume(f->s, 51, f->errmsg), "delete");
	must(f, segstore_delete_volume(f->s, 52, f->errmsg), "delete");
	l.n = 0;
	assert_int_equal(scrub_pass(f, 7, &l), 0);
	assert_int_equal(l.n, 0);
}

/* --- concurrency --- */

struct worker {
	struct fx *f;
	int id;
	int failures;
	char errmsg[OMBRA_ERRMSG_LEN];
};

/* Writers own one segment each of volume 70 and rewrite it with rising
 * versions; readers read the whole volume and must never see a bad block
 * or a torn segment (blocks of one segment with different versions). */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(4 * SEG);
	uint64_t versions[4 * PER_SEG];
	size_t n_bad, i;
	int round, rv;

	if (buf == NULL) {
		w->failures++;
		return NULL;
	}
	for (round = 1; round <= 30; round++) {
		if (w->id < 4) {
			for (i = 0; i < PER_SEG; i++)
				fill_block(buf + i * BS, 70,
					   w->id * PER_SEG + i, round);
			rv = segstore_write(w->f->s, 70, SEG,
					    (uint64_t)w->id * SEG, buf, SEG,
					    (uint64_t)round, false, w->errmsg);
		} else {
			rv = segstore_read(w->f->s, 70, 0, 4 * SEG, buf,
					   versions, NULL, &n_bad, w->errmsg);
			for (i = 0; rv == 0 && i < 4 * PER_SEG; i++) {
				if (versions[i] != versions[i - i % PER_SEG])
					w->failures++;
			}
		}
		if (rv != 0)
			w->failures++;
	}
	free(buf);
	return NULL;
}

static void test_concurrent_readers_writers(void **state)
{
	struct fx *f = *state;
	struct worker w[7];
	pthread_t t[7];
	int i;

	fx_open(f);
	for (i = 0; i < 7; i++) {
		w[i].f = f;
		w[i].id = i;
		w[i].failures = 0;
		w[i].errmsg[0] = '\0';
		assert_int_equal(
		    pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < 7; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		if (w[i].failures != 0)
			fail_msg("worker %d: %d failures, last: %s", i,
				 w[i].failures, w[i].errmsg);
	}
	for (i = 0; i < 4; i++) {
		unsigned char want[BS], got[BS];
		size_t n_bad;
		uint64_t v;

		must(f,
		     segstore_read(f->s, 70, (uint64_t)i * SEG + BS, BS, got,
				   &v, NULL, &n_bad, f->errmsg),
		     "final read");
		fill_block(want, 70, (uint64_t)i * PER_SEG + 1, 30);
		assert_memory_equal(got, want, BS);
		assert_int_equal(v, 30);
	}
}

/* Concurrent first writes to one segment new on the node: every writer of
 * a round waits at a barrier, then stores its own block of the segment
 * (half with segstore_write, half with segstore_apply_if_newer, both of
 * which hold the volume lock shared).  Before seg_prepare() re-checked
 * inside its write transaction, a second creator re-placed the segment:
 * it punched the range and reset the record over the first one's blocks
 * (read as zeros or failing their checksum) and counted the segment's
 * space twice. */
#define FW_THREADS 8
#define FW_ROUNDS 24

struct first_writer {
	struct fx *f;
	pthread_barrier_t *go;
	uint64_t vol, block;
	bool apply;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void *first_writer_main(void *arg)
{
	struct first_writer *w = arg;
	unsigned char buf[BS];
	uint64_t v = ver(1, w->block + 1);

	fill_block(buf, w->vol, w->block, v);
	pthread_barrier_wait(w->go);
	if (w->apply) {
		struct segstore_block b = mk_block(w->vol, w->block, v, buf);

		w->rv = segstore_apply_if_newer(w->f->s, w->vol, SEG, &b, 1,
						false, NULL, w->errmsg);
	} else {
		w->rv = segstore_write(w->f->s, w->vol, SEG, w->block * BS, buf,
				       BS, v, false, w->errmsg);
	}
	return NULL;
}

static void test_concurrent_first_writes(void **state)
{
	struct fx *f = *state;
	struct first_writer w[FW_THREADS];
	pthread_t t[FW_THREADS];
	pthread_barrier_t go;
	struct segstore_tier_usage u;
	size_t n;

	fx_open(f);
	for (int round = 0; round < FW_ROUNDS; round++) {
		/* Even rounds: a new volume; odd ones: a new segment of the
		 * volume of the round before. */
		uint64_t vol = 80 + (uint64_t)round / 2;
		uint64_t seg = (uint64_t)round % 2;

		assert_int_equal(pthread_barrier_init(&go, NULL, FW_THREADS),
				 0);
		for (int i = 0; i < FW_THREADS; i++) {
			w[i] = (struct first_writer){
			    .f = f,
			    .go = &go,
			    .vol = vol,
			    .block = seg * PER_SEG + (uint64_t)i * 2,
			    .apply = i % 2 == 1,
			};
			assert_int_equal(pthread_create(&t[i], NULL,
							first_writer_main,
							&w[i]),
					 0);
		}
		for (int i = 0; i < FW_THREADS; i++) {
			assert_int_equal(pthread_join(t[i], NULL), 0);
			if (w[i].rv != 0)
				fail_msg("round %d writer %d: %s", round, i,
					 w[i].errmsg);
		}
		pthread_barrier_destroy(&go);
		for (int i = 0; i < FW_THREADS; i++) {
			unsigned char want[BS], got[BS];
			uint64_t v, bad[1];
			size_t n_bad = 0;
			int rv = segstore_read(f->s, vol, w[i].block * BS, BS,
					       got, &v, bad, &n_bad, f->errmsg);

			if (rv != 0)
				fail_msg("round %d block %" PRIu64 ": %s",
					 round, w[i].block, f->errmsg);
			fill_block(want, vol, w[i].block,
				   ver(1, w[i].block + 1));
			assert_int_equal(v, ver(1, w[i].block + 1));
			assert_memory_equal(got, want, BS);
		}
	}
	/* Each segment's space is counted once: FW_ROUNDS segments. */
	must(f, segstore_usage(f->s, &u, 1, &n, f->errmsg), "usage");
	assert_int_equal(u.allocated, (uint64_t)FW_ROUNDS * SEG);
	assert_int_equal(u.used, (uint64_t)FW_ROUNDS * FW_THREADS * BS);
}

static void test_damaged_index_detected(void **state)
{
	struct fx *f = *state;
	/* Volume 90, segment 1, big-endian. */
	static const uint8_t key[16] = {0, 0, 0, 0, 0, 0, 0, 90,
					0, 0, 0, 0, 0, 0, 0, 1};
	struct segstore_scrub_cursor c = {0};
	struct segstore_segment_info info;
	unsigned char buf[BS];
	size_t n_bad;

	fx_open(f);
	write_pattern(f, 90, SEG, PER_SEG, 2, ver(1, 1));
	segstore_close(f->s);
	f->s = NULL;
	/* One bit of block 0's checksum in the record of segment 1. */
	index_poke(f, "segments", key, sizeof(key), 32 + 8, 0x01);
	fx_open(f);
	assert_int_equal(segstore_read(f->s, 90, SEG, BS, buf, NULL, NULL,
				       &n_bad, f->errmsg),
			 OMBRA_EIO);
	assert_int_equal(n_bad, 0); /* not a bad block: a damaged index */
	assert_non_null(strstr(f->errmsg, "record checksum mismatch"));
	assert_int_equal(
	    segstore_segment_info(f->s, 90, 1, &info, NULL, 0, f->errmsg),
	    OMBRA_EIO);
	assert_int_equal(
	    segstore_scrub_step(f->s, &c, 100, NULL, NULL, NULL, f->errmsg),
	    OMBRA_EIO);
	segstore_close(f->s);
	f->s = NULL;
	/* An index of another format is refused at open. */
	index_poke(f, "meta", "format", 6, 0, 0x02);
	assert_int_equal(fx_open_tiers(f, 1, UINT64_C(1) << 40, 0),
			 OMBRA_ECONFIG);
	assert_non_null(strstr(f->errmsg, "format 3"));
}

/* --- injected faults --- */

static void test_media_error_per_block(void **state)
{
	struct fx *f = *state;
	unsigned char *buf = malloc(2 * SEG), want[BS];
	uint64_t bad[2 * PER_SEG], versions[2 * PER_SEG];
	struct bad_list l = {0};
	size_t n_bad;

	assert_non_null(buf);
	f->io = &fake_io;
	fx_open(f);
	write_pattern(f, 80, SEG, 0, 2 * PER_SEG, ver(1, 1));
	/* The medium cannot return block 20 (in segment 1). */
	faults.pread_on = true;
	faults.pread_bad_off = 20 * BS + 512;
	assert_int_equal(segstore_read(f->s, 80, 0, 2 * SEG, buf, versions, bad,
				       &n_bad, f->errmsg),
			 OMBRA_EIO);
	/* Only that block is reported: the rest is read block by block. */
	assert_int_equal(n_bad, 1);
	assert_int_equal(bad[0], 20);
	assert_true(is_zero(buf + 20 * BS, BS));
	fill_block(want, 80, 21, ver(1, 1));
	assert_memory_equal(buf + 21 * BS, want, BS);
	(void)scrub_pass(f, 64, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.block[0], 20);
	faults.pread_on = false;
	expect_pattern(f, 80, 0, 2 * PER_SEG, ver(1, 1));
	free(buf);
}

/* segstore_read_nowait: the loop's read serves verified data and
 * versions of one segment, and declines (OMBRA_EUNAVAIL) everything else
 * the full read must answer: unknown segments, bad blocks, I/O hooks,
 * ranges across segments. */
static void test_read_nowait(void **state)
{
	struct fx *f = *state;
	unsigned char buf[4 * BS], want[BS], byte;
	uint64_t versions[4], v = ver(2, 7);

	fx_open(f);
	write_pattern(f, 9, SEG, PER_SEG + 1, 2, v); /* segment 1 */
	must(f, segstore_flush(f->s, f->errmsg), "flush");
	memset(buf, 0xAA, sizeof(buf));
	/* Blocks PER_SEG..PER_SEG+3: unwritten, written, written, unwritten.
	 * The data was just written: it is in the page cache. */
	must(f,
	     segstore_read_nowait(f->s, 9, 1, PER_SEG * BS, 4 * BS, buf,
				  versions),
	     "read_nowait");
	assert_true(is_zero(buf, BS));
	assert_true(is_zero(buf + 3 * BS, BS));
	fill_block(want, 9, PER_SEG + 1, v);
	assert_memory_equal(buf + BS, want, BS);
	fill_block(want, 9, PER_SEG + 2, v);
	assert_memory_equal(buf + 2 * BS, want, BS);
	assert_int_equal(versions[0], 0);
	assert_int_equal(versions[1], v);
	assert_int_equal(versions[2], v);
	assert_int_equal(versions[3], 0);
	/* Nothing stored for segment 0, or another volume: the full read. */
	assert_int_equal(segstore_read_nowait(f->s, 9, 0, 0, BS, buf, versions),
			 OMBRA_EUNAVAIL);
	assert_int_equal(
	    segstore_read_nowait(f->s, 10, 1, PER_SEG * BS, BS, buf, versions),
	    OMBRA_EUNAVAIL);
	/* The range must lie in the named segment and be aligned. */
	assert_int_equal(segstore_read_nowait(f->s, 9, 1, (PER_SEG - 1) * BS,
					      2 * BS, buf, versions),
			 OMBRA_EUNAVAIL);
	assert_int_equal(segstore_read_nowait(f->s, 9, 1, PER_SEG * BS + 1, BS,
					      buf, versions),
			 OMBRA_EUNAVAIL);
	/* A flipped byte is never handed out: declined, the full read
	 * reports the block. */
	peek(f, 0, 9, (PER_SEG + 2) * BS + 7, &byte, 1);
	byte ^= 0x10;
	poke(f, 0, 9, (PER_SEG + 2) * BS + 7, &byte, 1);
	assert_int_equal(segstore_read_nowait(f->s, 9, 1, PER_SEG * BS, 4 * BS,
					      buf, versions),
			 OMBRA_EUNAVAIL);
	/* The block before it still verifies on its own. */
	must(f,
	     segstore_read_nowait(f->s, 9, 1, (PER_SEG + 1) * BS, BS, buf,
				  versions),
	     "read_nowait of a good block");
	fill_block(want, 9, PER_SEG + 1, v);
	assert_memory_equal(buf, want, BS);
}

/* With test I/O hooks installed the nowait read always declines (the
 * hooks inject faults only the full read handles). */
static void test_read_nowait_hooks(void **state)
{
	struct fx *f = *state;
	unsigned char buf[BS];
	uint64_t versions[1];

	f->io = &fake_io;
	fx_open(f);
	write_pattern(f, 9, SEG, 0, 1, ver(1, 1));
	assert_int_equal(segstore_read_nowait(f->s, 9, 0, 0, BS, buf, versions),
			 OMBRA_EUNAVAIL);
	expect_pattern(f, 9, 0, 1, ver(1, 1));
}

static void test_sync_failures(void **state)
{
	struct fx *f = *state;
	unsigned char v2[BS], buf[BS];
	uint64_t version;
	struct segstore_block fix;
	size_t n_bad, applied;

	f->io = &fake_io;
	fx_open(f);
	write_pattern(f, 81, SEG, 0, 2, ver(1, 1));
	/* A failed flush is reported and retried by the next one. */
	faults.fdatasync_fail = 1;
	assert_int_equal(segstore_flush(f->s, f->errmsg), OMBRA_EIO);
	assert_non_null(strstr(f->errmsg, "fdatasync"));
	must(f, segstore_flush(f->s, f->errmsg), "second flush");
	/* A fua write whose data sync fails is not committed: the block
	 * no longer matches its (old) checksum and reads as bad, never as
	 * the unacknowledged data. */
	fill_block(v2, 81, 1, ver(1, 2));
	faults.fdatasync_fail = 1;
	assert_int_equal(segstore_write(f->s, 81, SEG, BS, v2, BS, ver(1, 2),
					true, f->errmsg),
			 OMBRA_EIO);
	assert_non_null(strstr(f->errmsg, "fdatasync"));
	assert_int_equal(segstore_read(f->s, 81, BS, BS, buf, &version, NULL,
				       &n_bad, f->errmsg),
			 OMBRA_EIO);
	assert_int_equal(version, ver(1, 1));
	fill_block(buf, 81, 1, ver(1, 1));
	fix = mk_block(81, 1, ver(1, 1), buf);
	must(f,
	     segstore_repair(f->s, 81, SEG, &fix, 1, true, &applied, f->errmsg),
	     "repair");
	expect_pattern(f, 81, 0, 2, ver(1, 1));
	/* The retried write succeeds. */
	must(f,
	     segstore_write(f->s, 81, SEG, BS, v2, BS, ver(1, 2), true,
			    f->errmsg),
	     "retry");
	expect_pattern(f, 81, 1, 1, ver(1, 2));
}

static void test_write_failure_changes_nothing(void **state)
{
	struct fx *f = *state;
	unsigned char v2[BS];
	struct segstore_tier_usage u;
	size_t n;

	f->io = &fake_io;
	fx_open(f);
	write_pattern(f, 82, SEG, 0, 1, ver(1, 1));
	fill_block(v2, 82, 0, ver(1, 2));
	faults.pwrite_fail = 1;
	assert_int_equal(segstore_write(f->s, 82, SEG, 0, v2, BS, ver(1, 2),
					false, f->errmsg),
			 OMBRA_EIO);
	assert_non_null(strstr(f->errmsg, "No space left"));
	expect_pattern(f, 82, 0, 1, ver(1, 1));
	must(f, segstore_usage(f->s, &u, 1, &n, f->errmsg), "usage");
	assert_int_equal(u.used, BS);
}

static void test_no_hole_punching(void **state)
{
	struct fx *f = *state;
	unsigned char buf[3 * BS];
	uint64_t versions[3];
	size_t n_bad;

	f->io = &fake_io;
	faults.no_punch = true;
	fx_open(f);
	write_pattern(f, 83, SEG, 0, 3, ver(1, 1));
	/* Zeros are written instead; the trim still reads as zeros. */
	must(f,
	     segstore_trim(f->s, 83, SEG, BS, BS, ver(1, 2), true, f->errmsg),
	     "trim");
	assert_true(faults.punches > 0);
	must(f,
	     segstore_read(f->s, 83, 0, sizeof(buf), buf, versions, NULL,
			   &n_bad, f->errmsg),
	     "read");
	assert_true(is_zero(buf + BS, BS));
	assert_int_equal(versions[1], ver(1, 2));
	expect_pattern(f, 83, 2, 1, ver(1, 1));
	peek(f, 0, 83, BS, buf, BS);
	assert_true(is_zero(buf, BS));
}

/* --- bad input --- */

static void expect_einval(struct fx *f, int rv, const char *needle)
{
	if (rv != OMBRA_EINVAL)
		fail_msg("want OMBRA_EINVAL, got %d: %s", rv, f->errmsg);
	if (strstr(f->errmsg, needle) == NULL)
		fail_msg("message '%s' lacks '%s'", f->errmsg, needle);
}

static void test_bad_input(void **state)
{
	struct fx *f = *state;
	unsigned char buf[2 * SEG] = {0};
	struct segstore_block blk = mk_block(1, 0, 1, NULL);
	struct segstore_scrub_cursor c = {0};
	size_t n_bad, applied;

	fx_open(f);
	expect_einval(
	    f, segstore_write(f->s, 1, SEG, 100, buf, BS, 1, false, f->errmsg),
	    "multiples of the 4096-byte block size");
	expect_einval(
	    f, segstore_write(f->s, 1, SEG, 0, buf, 100, 1, false, f->errmsg),
	    "multiples");
	expect_einval(
	    f, segstore_write(f->s, 1, SEG, 0, buf, 0, 1, false, f->errmsg),
	    "length 0");
	expect_einval(f,
		      segstore_write(f->s, 1, SEG, SEG - BS, buf, 2 * BS, 1,
				     false, f->errmsg),
		      "crosses the end of 65536-byte segment 0");
	expect_einval(
	    f, segstore_write(f->s, 1, 0, 0, buf, BS, 1, false, f->errmsg),
	    "segment size 0 is not a power of two");
	expect_einval(
	    f,
	    segstore_write(f->s, 1, 3 * SEG, 0, buf, BS, 1, false, f->errmsg),
	    "not a power of two");
	expect_einval(
	    f,
	    segstore_write(f->s, 1, 32 * 1024, 0, buf, BS, 1, false, f->errmsg),
	    "segment size 32768");
	expect_einval(
	    f,
	    segstore_write(f->s, 1, 8 * MIB, 0, buf, BS, 1, false, f->errmsg),
	    "segment size 8388608");
	expect_einval(
	    f, segstore_write(f->s, 1, SEG, 0, buf, BS, 0, false, f->errmsg),
	    "version 0");
	expect_einval(
	    f, segstore_write(f->s, 1, SEG, 0, NULL, BS, 1, false, f->errmsg),
	    "no data");
	expect_einval(f,
		      segstore_write(f->s, 1, SEG, SEGSTORE_MAX_VOLUME_BYTES,
				     buf, BS, 1, false, f->errmsg),
		      "volume limit");
	expect_einval(f,
		      segstore_trim(f->s, 1, SEG, BS, 3, 1, false, f->errmsg),
		      "multiples");
	expect_einval(
	    f,
	    segstore_read(f->s, 1, 10, BS, buf, NULL, NULL, &n_bad, f->errmsg),
	    "multiples");
	expect_einval(
	    f, segstore_read(f->s, 1, 0, 0, buf, NULL, NULL, &n_bad, f->errmsg),
	    "length 0");
	expect_einval(
	    f, segstore_read(f->s, 1, 0, BS, buf, NULL, NULL, NULL, f->errmsg),
	    "bad arguments");
	expect_einval(f,
		      segstore_apply_if_newer(f->s, 1, SEG, &blk, 0, false,
					      &applied, f->errmsg),
		      "no blocks");
	blk.version = 0;
	expect_einval(f,
		      segstore_apply_if_newer(f->s, 1, SEG, &blk, 1, false,
					      &applied, f->errmsg),
		      "version 0");
	blk = mk_block(1, 0, 1, NULL);
	expect_einval(f,
		      segstore_apply_if_newer(f->s, 1, 1000, &blk, 1, false,
					      &applied, f->errmsg),
		      "segment size 1000");
	expect_einval(
	    f, segstore_scrub_step(f->s, &c, 0, NULL, NULL, NULL, f->errmsg),
	    "bad arguments");
	expect_einval(f, segstore_usage(f->s, NULL, 3, &n_bad, f->errmsg),
		      "bad arguments");
	/* The volume's segment size is fixed by its first write. */
	must(f, segstore_write(f->s, 1, SEG, 0, buf, BS, 1, false, f->errmsg),
	     "write");
	expect_einval(
	    f, segstore_write(f->s, 1, MIB, MIB, buf, BS, 2, false, f->errmsg),
	    "has 65536-byte segments, not 1048576");
	expect_einval(f,
		      segstore_apply_if_newer(f->s, 1, MIB, &blk, 1, false,
					      &applied, f->errmsg),
		      "has 65536-byte segments");
	/* Nothing was stored by the refused calls. */
	{
		struct segstore_tier_usage u;
		size_t n;

		must(f, segstore_usage(f->s, &u, 1, &n, f->errmsg), "usage");
		assert_int_equal(u.allocated, SEG);
		assert_int_equal(u.used, BS);
	}
}

static void test_bad_config(void **state)
{
	struct fx *f = *state;
	struct segstore_tier_config t[2] = {{"a", f->tier_dir[0], 1},
					    {"a", f->tier_dir[1], 1}};
	struct segstore_config cfg = {f->index, t, 2, 0, NULL};
	struct segstore *s = (struct segstore *)1;

	expect_einval(f, segstore_open(&cfg, &s, f->errmsg), "given twice");
	assert_null(s);
	cfg.n_tiers = 0;
	expect_einval(f, segstore_open(&cfg, &s, f->errmsg), "0 tiers");
	cfg.n_tiers = 1;
	t[0].capacity = 0;
	expect_einval(f, segstore_open(&cfg, &s, f->errmsg), "capacity is 0");
	t[0].capacity = 1;
	t[0].name = "bad/name";
	expect_einval(f, segstore_open(&cfg, &s, f->errmsg), "bad/name");
	t[0].name = "a";
	t[0].dir = "";
	expect_einval(f, segstore_open(&cfg, &s, f->errmsg), "no directory");
	t[0].dir = f->tier_dir[0];
	cfg.index_dir = NULL;
	expect_einval(f, segstore_open(&cfg, &s, f->errmsg), "no index");
	expect_einval(f, segstore_open(NULL, &s, f->errmsg), "no config");
	/* A tier directory that is a file. */
	cfg.index_dir = f->index;
	{
		char file[512];
		int fd;

		snprintf(file, sizeof(file), "%s/plainfile", f->root);
		fd = open(file, O_CREAT | O_WRONLY, 0600);
		assert_true(fd >= 0);
		close(fd);
		t[0].dir = file;
		assert_int_equal(segstore_open(&cfg, &s, f->errmsg), OMBRA_EIO);
		assert_non_null(strstr(f->errmsg, "not a directory"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c_vectors),
	    cmocka_unit_test(test_version_helpers),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	    T(test_round_trip_across_segments),
	    T(test_unwritten_reads_zero),
	    T(test_stale_write_refused),
	    T(test_apply_if_newer_order_free),
	    T(test_bad_incoming_crc_rejected),
	    T(test_flipped_byte_detected),
	    T(test_read_nowait),
	    T(test_read_nowait_hooks),
	    T(test_scrub_repairs_from_callback),
	    T(test_misdirected_write_detected),
	    T(test_torn_update_detected),
	    T(test_trim),
	    T(test_reopen_keeps_everything),
	    T(test_two_tiers),
	    T(test_no_room),
	    T(test_usage_and_delete),
	    T(test_list_volumes),
	    T(test_orphan_bytes_not_trusted),
	    T(test_scrub_paced),
	    T(test_concurrent_readers_writers),
	    T(test_concurrent_first_writes),
	    T(test_damaged_index_detected),
	    T(test_media_error_per_block),
	    T(test_sync_failures),
	    T(test_write_failure_changes_nothing),
	    T(test_no_hole_punching),
	    T(test_bad_input),
	    T(test_bad_config),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
