/* segstore_internal.h: what the segstore_*.c files share: the store
 * struct, the decoded index records, and the helpers for the index
 * (segstore_index.c, segstore_record.c, segstore_tier.c), the data files
 * (segstore_file.c), the data steps of mutations (segstore_write.c) and
 * block verification (segstore_read.c).  The entry points live in those
 * files and in segstore.c, segstore_apply.c, segstore_scrub.c and
 * segstore_admin.c.  Not for use outside stored/segstore*.
 *
 * Locking rules (see segstore.h "Threads"): two levels of striped
 * reader-writer locks.  Every call takes its volume's stripe: shared for
 * work on single segments (write, trim, apply, repair, read, scrub, info),
 * exclusive for whole-volume changes (delete, segment move).  Under a
 * shared volume lock, a segment's stripe is taken exclusively to change it
 * and shared to read or verify it, one segment at a time, and the
 * segment's LMDB transactions begin only after its lock is held (a read
 * transaction begun earlier could pair old checksums with new data).  At
 * most one volume stripe and one segment stripe are held at a time; a
 * thread never holds a read transaction while it begins a write
 * transaction.  files_lock only guards the file table and is never held
 * across disk I/O other than open(2)/close(2); commit_lock only guards the
 * group-commit queue (segstore_commit.c). */
#ifndef OMBRA_STORED_SEGSTORE_INTERNAL_H
#define OMBRA_STORED_SEGSTORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "segstore.h"

/* Index databases inside the one LMDB environment. */
enum seg_db {
	SEG_DB_META,	 /* "format" -> u32 SEG_FORMAT */
	SEG_DB_VOLUMES,	 /* volume id (BE u64) -> volume record */
	SEG_DB_SEGMENTS, /* volume id, segment (BE u64 each) -> segment rec */
	SEG_DB_TIERS,	 /* tier name -> tier row */
	SEG_DB_COUNT
};

#define SEG_FORMAT 1u
#define SEG_LOCK_STRIPES 64
#define SEG_MAX_READERS 1024
#define SEG_FILE_BUCKETS 256
#define SEG_KEY_LEN 16
#define SEG_REC_HEADER_LEN 32
#define SEG_REC_BLOCK_LEN 16
#define SEG_VOLUME_REC_LEN 8
#define SEG_TIER_ROW_LEN 24

/* Block flag: the block was trimmed; its data is a hole (zeros). */
#define SEG_BLOCK_ZERO 0x1u
#define SEG_BLOCK_FLAGS_KNOWN SEG_BLOCK_ZERO

struct seg_tier {
	char name[SEGSTORE_TIER_NAME_MAX + 1];
	char *dir;
	uint64_t capacity; /* bytes */
	uint16_t id;	   /* recorded in segment records */
};

/* One open data file (tier, volume) in the file table. */
struct seg_file {
	struct seg_file *next;
	size_t tier;
	uint64_t volume_id;
	int fd;
	bool dirty; /* written since the last flush */
};

struct segstore {
	struct segstore_io io; /* every field set */
	struct seg_tier tiers[SEGSTORE_MAX_TIERS];
	size_t n_tiers;
	char *index_dir;
	int lock_fd; /* flock'ed index_dir/segstore.lock; -1 when none */
	MDB_env *env;
	MDB_dbi dbi[SEG_DB_COUNT];
	pthread_rwlock_t vol_locks[SEG_LOCK_STRIPES];
	size_t n_vol_locks; /* initialized so far (for cleanup) */
	pthread_rwlock_t seg_locks[SEG_LOCK_STRIPES];
	size_t n_seg_locks;
	/* Group commit (segstore_commit.c): queued index updates, and whether
	 * a thread is committing them. */
	pthread_mutex_t commit_lock;
	pthread_cond_t commit_cond;
	bool commit_lock_ok;
	struct seg_commit *commit_head;
	struct seg_commit **commit_tail;
	bool committing;
	pthread_mutex_t files_lock;
	bool files_lock_ok;
	struct seg_file *files[SEG_FILE_BUCKETS];
};

struct seg_block_rec {
	uint64_t version; /* 0 = never written */
	uint32_t crc;	  /* crc_block(); 0 when never written */
	uint32_t flags;	  /* SEG_BLOCK_* */
};

/* A decoded segment record (about 16 KiB: allocate it, do not put it on a
 * thread-pool stack). */
struct seg_rec {
	size_t tier; /* index into segstore.tiers */
	uint32_t segment_size;
	uint32_t n_blocks;
	uint64_t version; /* max block version, kept by seg_rec_refresh() */
	struct seg_block_rec blocks[SEGSTORE_MAX_SEGMENT_BLOCKS];
};

/* Tier accounting row. */
struct seg_tier_row {
	uint16_t id;
	uint64_t allocated; /* bytes */
	uint64_t used;	    /* bytes */
};

/* --- segstore.c: locks and argument checks --- */
void seg_vol_lock(struct segstore *s, uint64_t volume_id, bool exclusive);
void seg_vol_unlock(struct segstore *s, uint64_t volume_id);
/* A segment's stripe (taken under the volume's shared lock). */
void seg_seg_lock(struct segstore *s, uint64_t volume_id, uint64_t segment,
		  bool exclusive);
void seg_seg_unlock(struct segstore *s, uint64_t volume_id, uint64_t segment);
/* Shared locks without waiting (segstore_nowait.c): true when taken. */
bool seg_vol_tryrdlock(struct segstore *s, uint64_t volume_id);
bool seg_seg_tryrdlock(struct segstore *s, uint64_t volume_id,
		       uint64_t segment);
/* 0 or OMBRA_EINVAL with a message naming the size. */
int seg_check_segment_size(uint32_t segment_size, char *errmsg);
/* 0 when [offset, offset+len) is a non-empty 4 KiB-aligned range below
 * SEGSTORE_MAX_VOLUME_BYTES, else OMBRA_EINVAL naming what is wrong. */
int seg_check_range(uint64_t volume_id, uint64_t offset, size_t len,
		    char *errmsg);
/* Tier index by name, or -1. */
int seg_tier_find(const struct segstore *s, const char *name);

/* --- segstore_index.c, segstore_record.c, segstore_tier.c: the index --- */
/* OMBRA_EIO, or OMBRA_ENOMEM for MDB_MAP_FULL, with "what: lmdb message". */
int seg_lmdb_error(char *errmsg, int rc, const char *what);
int seg_txn_begin(struct segstore *s, bool write, MDB_txn **txn, char *errmsg);
/* Commit (the transaction is gone either way). */
int seg_txn_commit(MDB_txn *txn, char *errmsg);
int seg_env_sync(struct segstore *s, char *errmsg);
void seg_put_be64(uint8_t *p, uint64_t v);
uint64_t seg_get_be64(const uint8_t *p);
void seg_key_encode(uint8_t key[SEG_KEY_LEN], uint64_t volume_id,
		    uint64_t segment);
void seg_key_decode(const void *key, uint64_t *volume_id, uint64_t *segment);
void seg_put_le16(uint8_t *p, uint16_t v);
void seg_put_le32(uint8_t *p, uint32_t v);
void seg_put_le64(uint8_t *p, uint64_t v);
uint16_t seg_get_le16(const uint8_t *p);
uint32_t seg_get_le32(const uint8_t *p);
uint64_t seg_get_le64(const uint8_t *p);
/* An empty record (all blocks never written) on tier. */
void seg_rec_init(struct seg_rec *rec, size_t tier, uint32_t segment_size);
/* Recompute rec->version from the blocks. */
void seg_rec_refresh(struct seg_rec *rec);
/* Blocks holding data (written and not trimmed). */
uint32_t seg_rec_data_blocks(const struct seg_rec *rec);
/* Bytes of an encoded record with n_blocks entries. */
size_t seg_rec_len(uint32_t n_blocks);
/* Encode rec into out (seg_rec_len(rec->n_blocks) bytes). */
void seg_rec_encode(const struct segstore *s, const struct seg_rec *rec,
		    uint8_t *out);
/* Decode and validate a stored value; OMBRA_EIO naming the segment if it
 * is damaged. */
int seg_rec_decode(const struct segstore *s, uint64_t volume_id,
		   uint64_t segment, const MDB_val *val, struct seg_rec *rec,
		   char *errmsg);
/* 0, OMBRA_ENOTFOUND or OMBRA_EIO. */
int seg_rec_get(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		uint64_t segment, struct seg_rec *rec, char *errmsg);
int seg_rec_put(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		uint64_t segment, const struct seg_rec *rec, char *errmsg);
/* The volume's segment size: 0, OMBRA_ENOTFOUND or OMBRA_EIO. */
int seg_volume_get(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		   uint32_t *segment_size, char *errmsg);
/* Remove the volume record (absent is fine): 0 or OMBRA_EIO. */
int seg_volume_del(struct segstore *s, MDB_txn *txn, uint64_t volume_id,
		   char *errmsg);
int seg_tier_row_get(struct segstore *s, MDB_txn *txn, size_t tier,
		     struct seg_tier_row *row, char *errmsg);
/* The first tier (config order) with room for segment_size more bytes:
 * 0, OMBRA_ENOMEM (message names every tier) or OMBRA_EIO. */
int seg_place(struct segstore *s, MDB_txn *txn, uint32_t segment_size,
	      size_t *tier, char *errmsg);
/* Give each configured tier its row and id; OMBRA_ECONFIG when the index
 * holds segments on a tier missing from the config. */
int seg_tiers_setup(struct segstore *s, MDB_txn *txn, char *errmsg);
/* Add the deltas (bytes) to a tier's row; OMBRA_EIO if it would go
 * negative (the index is inconsistent). */
int seg_tier_adjust(struct segstore *s, MDB_txn *txn, size_t tier,
		    int64_t d_allocated, int64_t d_used, char *errmsg);
/* Make sure the volume record (with this segment size) and a record for
 * each of the n segments exist, placing new segments on the first tier
 * with room and punching their range in its data file.  Errors:
 * OMBRA_EINVAL (segment size differs from the volume's), OMBRA_ENOMEM (no
 * room), OMBRA_EIO.  Safe for concurrent callers holding the volume lock
 * shared: the missing segments are found again inside the write
 * transaction that creates them. */
int seg_prepare(struct segstore *s, uint64_t volume_id, uint32_t segment_size,
		const uint64_t *segments, size_t n, char *errmsg);
/* Store rec (updated by the caller, which holds the segment's lock
 * exclusively) and add d_used bytes to its tier.  Group commit
 * (segstore_commit.c): concurrent callers' updates share one write
 * transaction and one sync; returns when this update is committed (and
 * synced, with sync).  sync_fd: the data file written for this update,
 * fdatasynced by the caller before its update is queued (fua), or -1 (a
 * failed data sync fails this update alone, nothing is stored).  An index
 * error fails every update of that transaction. */
int seg_rec_commit(struct segstore *s, uint64_t volume_id, uint64_t segment,
		   const struct seg_rec *rec, int64_t d_used, int sync_fd,
		   bool sync, char *errmsg);
/* Tier ids and the format marker at open (one write transaction). */
int seg_index_setup(struct segstore *s, char *errmsg);

/* --- segstore_file.c: data files --- */
/* The data file of (tier, volume), opened once and cached.  create: make
 * it if missing; otherwise OMBRA_ENOTFOUND when it does not exist.  The
 * fd stays owned by the store. */
int seg_file_get(struct segstore *s, size_t tier, uint64_t volume_id,
		 bool create, int *fd, char *errmsg);
void seg_file_mark_dirty(struct segstore *s, size_t tier, uint64_t volume_id);
/* The fd of an already open data file, or -1 (not open, or the table
 * lock is busy): never waits, never opens. */
int seg_file_peek(struct segstore *s, size_t tier, uint64_t volume_id);
/* Close the volume's cached files (caller holds the volume exclusively)
 * and unlink them on every tier. */
int seg_file_remove_volume(struct segstore *s, uint64_t volume_id,
			   char *errmsg);
/* fdatasync every dirty file. */
int seg_files_sync(struct segstore *s, char *errmsg);
void seg_files_close_all(struct segstore *s);
/* Whole-buffer pread/pwrite (retrying EINTR and short transfers).  pread
 * zero-fills what lies past the end of the file.  0, or the errno. */
int seg_pread_full(const struct segstore *s, int fd, void *buf, size_t len,
		   uint64_t off);
int seg_pwrite_full(const struct segstore *s, int fd, const void *buf,
		    size_t len, uint64_t off);
/* Make [off, off+len) of the file read as zeros without growing it: punch
 * a hole, or write zeros where the file system cannot punch.  0 or the
 * errno. */
int seg_punch(const struct segstore *s, int fd, uint64_t off, uint64_t len);
/* fdatasync, retrying EINTR; 0 or the errno. */
int seg_datasync(const struct segstore *s, int fd);

/* --- segstore_write.c: data-file steps of every mutation --- */
/* Write len bytes of data at off, or punch the range when data is NULL;
 * OMBRA_EIO naming the tier. */
int seg_store_bytes(struct segstore *s, size_t tier, int fd, const void *data,
		    size_t len, uint64_t off, char *errmsg);
/* After a segment's data was written: without fua, mark the file for
 * segstore_flush() (with fua, seg_rec_commit() syncs it). */
void seg_data_done(struct segstore *s, size_t tier, uint64_t volume_id,
		   bool fua);

/* --- segstore_read.c: verification --- */
/* Read blocks [first, first + count) of a segment (indices inside the
 * segment) into buf (count * 4096 bytes) and verify them against rec.
 * bad[i] (count entries) is set for each block that fails; never-written
 * and bad blocks are zero-filled in buf.  *n_bad: number of bad blocks.
 * A read error of the medium marks the blocks bad; other failures (cannot
 * open the file) return OMBRA_EIO. */
int seg_read_verify(struct segstore *s, uint64_t volume_id, uint64_t segment,
		    const struct seg_rec *rec, uint32_t first, uint32_t count,
		    unsigned char *buf, bool *bad, uint32_t *n_bad,
		    char *errmsg);

#endif
