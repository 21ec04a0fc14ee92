/* segstore.h: the storage engine of ombra-stored.  Holds the segments of
 * many volumes on one or more tiers (directories) with a per-block CRC32C
 * and version in an LMDB index, and never returns data that fails its
 * checksum.  The on-disk format is described in docs/storage-format.md.
 *
 * Units: offsets and lengths are bytes; blocks are SEGSTORE_BLOCK_SIZE
 * (4096) bytes and numbered from the start of the volume (block b is bytes
 * b*4096 .. b*4096+4095); a segment is segment_size bytes (a power of two
 * from 64 KiB to 4 MiB) and segment s holds blocks
 * s*segment_size/4096 .. (s+1)*segment_size/4096 - 1.  A volume's segment
 * size is fixed by the first call that stores data for it; later calls with
 * another size fail with OMBRA_EINVAL.
 *
 * Versions (DESIGN.md "Data model"): 64 bits = lease epoch (high 24 bits) |
 * sequence inside the epoch (low 40 bits).  Version 0 means "never
 * written": such a block reads as zeros.  Because the epoch is in the high
 * bits, comparing versions as unsigned integers orders them by epoch first.
 *
 * Durability: a mutating call writes the data file (pwrite, or a punched
 * hole for zeros), then commits the LMDB index.  With fua, the data file is
 * fdatasync'ed before the index commit and the index is synced after it,
 * so the call returns only when both are durable; without fua, durability
 * comes from the next successful segstore_flush().  A crash between the two
 * steps leaves data whose checksum no longer matches the index: the block
 * reads as bad (never as good) and is repaired from a replica with
 * segstore_repair().  Only an unacknowledged write is affected, so no
 * acknowledged data is lost inside a replicated region.
 *
 * Cost: every commit fdatasyncs the index's data pages (MDB_NOMETASYNC,
 * which is what keeps the index intact across a power loss), so one writer
 * is bounded by the index device's sync rate (about 1000 calls per second
 * on the development VM, with or without fua); concurrent writers share
 * commits (see Threads) and many blocks per call amortize it.
 *
 * Threads: thread-safe.  Every function except segstore_open() and
 * segstore_close() may be called concurrently from any threads on one
 * store (the daemon uses the libuv thread pool).  A call that changes a
 * segment holds that segment's lock exclusively for its whole duration
 * (disk I/O included) and reads and scrubs hold it shared, so a read never
 * sees a half-applied write; calls on different segments run in parallel.
 * Deleting a volume and moving a segment hold the whole volume
 * exclusively.  Index updates of concurrent calls are committed together
 * (group commit: one LMDB transaction and one sync for all of them), so
 * throughput grows with the number of concurrent writers.  All disk I/O is
 * synchronous.
 *
 * Resources: one open descriptor per (tier, volume) that holds data, kept
 * until the volume is deleted or the store closed; up to 1024 concurrent
 * readers; each call allocates scratch memory of at most one segment
 * (4 MiB) plus about 40 KiB, and apply/repair 16 bytes per block given.
 *
 * Errors: every function returns 0 or an OMBRA_E* code (err.h) and, on
 * error, writes a message with context into errmsg, a caller-owned buffer
 * of OMBRA_ERRMSG_LEN bytes that must not be NULL.  Bad arguments are
 * OMBRA_EINVAL and change nothing. */
#ifndef OMBRA_STORED_SEGSTORE_H
#define OMBRA_STORED_SEGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SEGSTORE_BLOCK_SIZE 4096u
#define SEGSTORE_MIN_SEGMENT_SIZE (64u * 1024u)
#define SEGSTORE_MAX_SEGMENT_SIZE (4u * 1024u * 1024u)
#define SEGSTORE_MAX_SEGMENT_BLOCKS                                            \
	(SEGSTORE_MAX_SEGMENT_SIZE / SEGSTORE_BLOCK_SIZE)
/* Highest byte offset + 1 that a volume may use (2^60 bytes, 1 EiB): keeps
 * every file offset inside off_t. */
#define SEGSTORE_MAX_VOLUME_BYTES (UINT64_C(1) << 60)
#define SEGSTORE_MAX_TIERS 16
/* Tier names: 1..SEGSTORE_TIER_NAME_MAX bytes of [A-Za-z0-9_.-]. */
#define SEGSTORE_TIER_NAME_MAX 63
/* LMDB map size used when the config gives 0: address space, not disk. */
#define SEGSTORE_DEFAULT_MAP_SIZE (UINT64_C(16) << 30)

#define SEGSTORE_VERSION_EPOCH_BITS 24
#define SEGSTORE_VERSION_SEQ_BITS 40
#define SEGSTORE_VERSION_MAX_EPOCH                                             \
	((UINT32_C(1) << SEGSTORE_VERSION_EPOCH_BITS) - 1)
#define SEGSTORE_VERSION_MAX_SEQ                                               \
	((UINT64_C(1) << SEGSTORE_VERSION_SEQ_BITS) - 1)

/* Opaque handle; created by segstore_open(), destroyed by
 * segstore_close(). */
struct segstore;

/* One tier: a directory for data files and a capacity.  Strings are
 * borrowed for the duration of segstore_open() only (the store copies
 * them). */
struct segstore_tier_config {
	const char *name;  /* stable identity, recorded in the index */
	const char *dir;   /* created (one level, mode 0700) if missing */
	uint64_t capacity; /* bytes that segments may be allocated on it */
};

/* The system calls used on data files.  Tests replace them to inject
 * faults (EIO from pread, a failing fdatasync, no hole punching); each
 * behaves like the call it replaces (-1 and errno on failure).  A NULL
 * table or field means the system's own. */
struct segstore_io {
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	int (*fdatasync)(int fd);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
};

struct segstore_config {
	const char *index_dir; /* LMDB environment; created if missing */
	const struct segstore_tier_config *tiers; /* placement preference
						     order: first fit */
	size_t n_tiers;				  /* 1..SEGSTORE_MAX_TIERS */
	uint64_t index_map_size;      /* bytes; 0 = SEGSTORE_DEFAULT_MAP_SIZE */
	const struct segstore_io *io; /* NULL: the system calls; copied */
};

/* One block handed to segstore_apply_if_newer() or segstore_repair().
 * data: SEGSTORE_BLOCK_SIZE bytes borrowed for the call, or NULL for a
 * block of zeros (a trim propagated to a shadow).  crc: crc_block() of
 * (data, volume, block, version) as computed by the sender. */
struct segstore_block {
	uint64_t block;	  /* block index inside the volume */
	uint64_t version; /* != 0 */
	uint32_t crc;
	const void *data;
};

/* What segstore_segment_info() reports about one segment. */
struct segstore_segment_info {
	uint64_t version;	/* highest block version; 0 = nothing written */
	size_t tier;		/* index into the config's tiers */
	const char *tier_name;	/* owned by the store, valid until close */
	uint32_t segment_size;	/* bytes */
	uint32_t n_blocks;	/* segment_size / 4096 */
	uint32_t n_data_blocks; /* blocks holding data (written, not trimmed) */
};

/* Space on one tier, in bytes. */
struct segstore_tier_usage {
	const char *name;   /* owned by the store, valid until close */
	uint64_t capacity;  /* from the config */
	uint64_t allocated; /* segment_size of every segment placed here */
	uint64_t used;	    /* 4096 per block holding data */
};

/* Position of a scrub; zero-initialize it to start at the beginning. */
struct segstore_scrub_cursor {
	uint64_t volume_id; /* next volume to check */
	uint64_t block;	    /* next block of that volume to check */
	uint64_t passes;    /* full passes over the index completed */
};

/* Called by segstore_scrub_step() for each block that fails verification;
 * version is the one the index expects (what a replica must supply).  Runs
 * on the scrubbing thread, with no store lock held; it may call into the
 * store (e.g. segstore_repair()). */
typedef void (*segstore_scrub_cb)(void *arg, uint64_t volume_id, uint64_t block,
				  uint64_t version);

/* Compose a version from a lease epoch (< 2^24) and a sequence number
 * (< 2^40).  *out set and 0 returned; OMBRA_EINVAL if either is out of
 * range (errmsg names it). */
int segstore_version_make(uint32_t epoch, uint64_t seq, uint64_t *out,
			  char *errmsg);

/* The lease epoch (high 24 bits) and the sequence (low 40 bits) of v. */
uint32_t segstore_version_epoch(uint64_t v);
uint64_t segstore_version_seq(uint64_t v);

/* -1, 0 or 1 as a is older than, equal to or newer than b: epoch first,
 * then sequence (which is plain unsigned order of the 64-bit values). */
int segstore_version_cmp(uint64_t a, uint64_t b);

/* Open (creating if needed) the store described by cfg.  cfg and its
 * strings are borrowed for the call.  On success *out owns the store,
 * released with segstore_close().  Errors: OMBRA_EINVAL for a bad config
 * (no tiers, duplicate or malformed tier name, zero capacity),
 * OMBRA_ECONFIG when the index holds data on a tier that is not in cfg or
 * was written in an unknown format, OMBRA_EPRECOND when the store is
 * already open (in this or another process), OMBRA_EIO for directory or LMDB
 * failures, OMBRA_ENOMEM. */
int segstore_open(const struct segstore_config *cfg, struct segstore **out,
		  char *errmsg);

/* Flush (data files, then the index) and release everything.  s may be
 * NULL.  No other call on s may be running or follow.  Errors of the final
 * flush cannot be reported: call segstore_flush() first when they
 * matter. */
void segstore_close(struct segstore *s);

/* Write len bytes at offset of a volume: the primary and in-sync replica
 * path.  offset and len are multiples of 4096, len > 0, and the range lies
 * inside one segment (the caller splits larger writes).  All blocks get
 * the same version, which must be newer than what each block holds; a
 * block that already holds exactly this version and data is accepted (a
 * retried write).  data: len bytes, borrowed.  fua: durable on return
 * (see the top of this file).  A new segment is placed on the first tier
 * with room for a whole segment.
 * Errors: OMBRA_EINVAL (alignment, len 0, crossing a segment, bad segment
 * size or one that differs from the volume's, version 0, beyond
 * SEGSTORE_MAX_VOLUME_BYTES); OMBRA_EPRECOND when a block holds a version
 * at least as new (a stale writer: nothing is written); OMBRA_ENOMEM when
 * no tier has room for a new segment or the index map is full; OMBRA_EIO
 * for disk or index failures (the blocks may then read as bad until
 * rewritten or repaired). */
int segstore_write(struct segstore *s, uint64_t volume_id,
		   uint32_t segment_size, uint64_t offset, const void *data,
		   size_t len, uint64_t version, bool fua, char *errmsg);

/* Zero len bytes at offset (a trim or write-zeroes): punches a hole in the
 * data file (fallocate PUNCH_HOLE | KEEP_SIZE; zeros are written where the
 * file system cannot punch) and records version and the checksum of a zero
 * block, so the range reads as zeros with that version.  Same arguments,
 * rules and errors as segstore_write() without data. */
int segstore_trim(struct segstore *s, uint64_t volume_id, uint32_t segment_size,
		  uint64_t offset, size_t len, uint64_t version, bool fua,
		  char *errmsg);

/* Shadow and anti-entropy path: for each of the n blocks (any segments,
 * any order, duplicates allowed) store it only if its version is higher
 * than the version the store holds for that block, so applying the same
 * set in any order and any number of times gives the same state.  Every
 * incoming crc is verified first: one mismatch rejects the whole call with
 * OMBRA_EPROTO and nothing is applied.  blocks: borrowed for the call.
 * *n_applied (may be NULL): blocks actually stored, also on error.
 * Errors: OMBRA_EINVAL (n 0, version 0, block beyond the volume limit, bad
 * segment size), OMBRA_EPROTO, OMBRA_ENOMEM, OMBRA_EIO; on an error after
 * some segments were applied those stay applied (harmless: idempotent). */
int segstore_apply_if_newer(struct segstore *s, uint64_t volume_id,
			    uint32_t segment_size,
			    const struct segstore_block *blocks, size_t n,
			    bool fua, size_t *n_applied, char *errmsg);

/* Repair path: like segstore_apply_if_newer(), but a block whose stored
 * copy fails verification is replaced even by an older version (the
 * replica's copy after a crash that lost an unacknowledged write); a block
 * whose stored copy verifies is replaced only by a newer version. */
int segstore_repair(struct segstore *s, uint64_t volume_id,
		    uint32_t segment_size, const struct segstore_block *blocks,
		    size_t n, bool fua, size_t *n_applied, char *errmsg);

/* Read len bytes at offset into buf (len bytes, caller-owned).  offset and
 * len are multiples of 4096, len > 0; the range may span segments.  Every
 * block is verified against the index.  versions (may be NULL):
 * len/4096 entries, receives each block's version (0 = never written:
 * zeros).  bad: len/4096 entries (may be NULL), receives the block indices
 * that failed verification; *n_bad (required) their number.  A bad block
 * is zero-filled in buf and its versions[] entry is the version the index
 * expects.  Returns 0 when every block verified, OMBRA_EIO with *n_bad > 0
 * when some did not (errmsg names the first; the caller repairs them from
 * another copy), OMBRA_EINVAL for bad arguments and other codes for index
 * failures (with *n_bad 0). */
int segstore_read(struct segstore *s, uint64_t volume_id, uint64_t offset,
		  size_t len, void *buf, uint64_t *versions, uint64_t *bad,
		  size_t *n_bad, char *errmsg);

/* The same read, restricted to one segment (offset and len multiples of
 * 4096 inside segment `segment`), done only if it cannot block: for a
 * caller on an event loop.  Returns 0 with buf and versions (len/4096
 * entries) filled and every block verified, or OMBRA_EUNAVAIL when it
 * would have to wait (a lock held by a writer, data or index pages not in
 * memory, file not open yet) or when the answer is not a plain success
 * (a bad block, an unknown segment, I/O hooks installed): then call
 * segstore_read() from a thread.  See segstore_nowait.c. */
int segstore_read_nowait(struct segstore *s, uint64_t volume_id,
			 uint64_t segment, uint64_t offset, size_t len,
			 void *buf, uint64_t *versions);

/* Describe segment `segment` of a volume.  versions (may be NULL):
 * versions_cap entries, receives min(versions_cap, n_blocks) block
 * versions.  Errors: OMBRA_ENOTFOUND when the store holds nothing for the
 * segment (its version is then 0 for anti-entropy), OMBRA_EIO. */
int segstore_segment_info(struct segstore *s, uint64_t volume_id,
			  uint64_t segment, struct segstore_segment_info *info,
			  uint64_t *versions, size_t versions_cap,
			  char *errmsg);

/* Move one segment to another tier (named as in the config): copies and
 * verifies its blocks, syncs the copy, commits the index, then punches the
 * old copy.  A no-op when it is already there.  Errors: OMBRA_ENOTFOUND
 * (no such segment), OMBRA_EINVAL (unknown tier), OMBRA_ENOMEM (no room
 * on the target), OMBRA_EIO (a block fails verification: repair it first;
 * or a disk/index failure; the segment stays where it was). */
int segstore_segment_move(struct segstore *s, uint64_t volume_id,
			  uint64_t segment, const char *tier, char *errmsg);

/* Verify up to max_blocks (> 0) written blocks, starting at *cursor and
 * walking volumes and blocks in ascending order; the cursor is advanced
 * past what was checked and wraps to the start (passes + 1) at the end of
 * the index.  Never-written blocks are skipped and not counted.  cb (may
 * be NULL) is called once per bad block after the store's locks are
 * released.  *n_checked (may be NULL): blocks verified.  The caller paces
 * the scrub by how often it calls this.  Errors: OMBRA_EINVAL, OMBRA_EIO
 * for index failures (a block that cannot be read is reported through cb,
 * not as an error). */
int segstore_scrub_step(struct segstore *s,
			struct segstore_scrub_cursor *cursor, size_t max_blocks,
			segstore_scrub_cb cb, void *arg, size_t *n_checked,
			char *errmsg);

/* Make every write, trim and apply that returned before this call durable:
 * fdatasync every data file written since the last flush, then sync the
 * index.  Errors: OMBRA_EIO.  After a failed flush the kernel may have
 * dropped the unsynced pages: blocks written since the last successful
 * flush must be treated as unacknowledged (they read as bad if lost). */
int segstore_flush(struct segstore *s, char *errmsg);

/* The ids of every volume the store holds data of (ascending), into
 * *ids (malloc'ed, the caller frees it; NULL when *n is 0).  A snapshot:
 * volumes written or deleted meanwhile may or may not be listed.  Errors:
 * OMBRA_EINVAL, OMBRA_ENOMEM, OMBRA_EIO. */
int segstore_list_volumes(struct segstore *s, uint64_t **ids, size_t *n,
			  char *errmsg);

/* Delete everything stored for a volume: index records first (one
 * transaction), then its data files on every tier.  Deleting a volume the
 * store does not hold succeeds (retry after a crash).  Errors: OMBRA_EIO. */
int segstore_delete_volume(struct segstore *s, uint64_t volume_id,
			   char *errmsg);

/* Usage of each tier in config order into out (cap entries); *n receives
 * the number of tiers (all of them, even if more than cap).  Errors:
 * OMBRA_EINVAL, OMBRA_EIO. */
int segstore_usage(struct segstore *s, struct segstore_tier_usage *out,
		   size_t cap, size_t *n, char *errmsg);

#endif
