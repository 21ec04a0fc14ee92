/* segstore_commit.c: group commit of segment-record updates.
 *
 * Every mutation ends by storing its segment's record (checksums and
 * versions) in LMDB.  One write transaction per mutation, each synced,
 * bounds a store to the sync rate of the index device no matter how many
 * threads write.  Instead:
 *
 * 1. each writer with fua first fdatasyncs the data file it wrote, itself
 *    and concurrently with the others (the device serves several flushes
 *    at once; a single committer doing them one after another was the
 *    longest stage of a batch);
 * 2. it then queues its record update and either becomes the committer
 *    (no commit in progress) or waits: the committer takes every queued
 *    update, applies the records in one transaction and commits it (LMDB
 *    writes the pages, fdatasyncs its file, then writes the meta page
 *    without syncing it: MDB_NOMETASYNC);
 * 3. the meta page of a committed batch becomes durable with the next
 *    fdatasync of LMDB's file: the commit of the next batch when updates
 *    are queued (pipelined: one index sync per batch under load instead
 *    of two), otherwise an explicit mdb_env_sync.  The batch's writers are
 *    released only then.
 *
 * The order data sync -> index commit -> meta sync is that of a single fua
 * write (segstore.h "Durability").  This is the group commit of database
 * logs (Gawlick and Kinkade, "Varieties of Concurrency Control in IMS/VS
 * Fast Path", IEEE Database Eng. 1985).
 *
 * Correctness: each caller holds its segment's lock exclusively until its
 * update is committed and durable, so one transaction never carries two
 * updates of the same segment, and the record it put is exactly the
 * caller's.  The records are copied into the transaction before the
 * committer releases the callers, so a caller may free its record right
 * after return.
 *
 * Failure: a failed data sync fails that writer alone (nothing queued).
 * If any put or the commit fails, the whole transaction is aborted and
 * every update in it fails with the same message (the caller treats it
 * like any index failure: its blocks may read as bad until rewritten or
 * repaired); the batch before it then gets an explicit meta sync.  Updates
 * queued later get their own transaction. */
#include <string.h>

#include "segstore_internal.h"

struct seg_commit {
	struct seg_commit *next;
	uint64_t volume_id;
	uint64_t segment;
	const struct seg_rec *rec;
	int64_t d_used;
	bool sync;
	bool done;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

/* Apply a batch in one transaction (committed, meta page not synced);
 * every entry gets the outcome, which is returned.  *sync: some entry
 * asked for durability. */
static int seg_commit_batch(struct segstore *s, struct seg_commit *batch,
			    bool *sync)
{
	char errmsg[OMBRA_ERRMSG_LEN] = "";
	struct seg_commit *c;
	MDB_txn *txn = NULL;
	int rv;

	*sync = false;
	rv = seg_txn_begin(s, true, &txn, errmsg);
	for (c = batch; rv == 0 && c != NULL; c = c->next) {
		rv = seg_rec_put(s, txn, c->volume_id, c->segment, c->rec,
				 errmsg);
		if (rv == 0)
			rv = seg_tier_adjust(s, txn, c->rec->tier, 0, c->d_used,
					     errmsg);
	}
	for (c = batch; c != NULL; c = c->next)
		*sync = *sync || c->sync;
	if (rv == 0)
		rv = seg_txn_commit(txn, errmsg);
	else if (txn != NULL)
		mdb_txn_abort(txn);
	for (c = batch; c != NULL; c = c->next) {
		c->rv = rv;
		if (rv != 0)
			memcpy(c->errmsg, errmsg, sizeof(errmsg));
	}
	return rv;
}

/* Give a batch's entries the outcome rv (if they have none yet) and
 * release them.  Commit lock held; the entries live on their callers'
 * stacks and must not be touched once done. */
static void seg_commit_release(struct seg_commit *batch, int rv,
			       const char *errmsg)
{
	struct seg_commit *c, *next;

	for (c = batch; c != NULL; c = next) {
		next = c->next;
		if (c->rv == 0 && rv != 0) {
			c->rv = rv;
			memcpy(c->errmsg, errmsg, OMBRA_ERRMSG_LEN);
		}
		c->done = true;
	}
}

int seg_rec_commit(struct segstore *s, uint64_t volume_id, uint64_t segment,
		   const struct seg_rec *rec, int64_t d_used, int sync_fd,
		   bool sync, char *errmsg)
{
	struct seg_commit me = {
	    .volume_id = volume_id,
	    .segment = segment,
	    .rec = rec,
	    .d_used = d_used,
	    .sync = sync,
	};
	char msg[OMBRA_ERRMSG_LEN] = "";
	int err;

	if (sync_fd >= 0) {
		err = seg_datasync(s, sync_fd);
		if (err != 0) {
			ombra_errmsg_printf(errmsg, "tier '%s': fdatasync: %s",
					    s->tiers[rec->tier].name,
					    strerror(err));
			return OMBRA_EIO;
		}
	}
	(void)pthread_mutex_lock(&s->commit_lock);
	*s->commit_tail = &me;
	s->commit_tail = &me.next;
	while (!me.done && s->committing)
		(void)pthread_cond_wait(&s->commit_cond, &s->commit_lock);
	if (!me.done) {
		/* Commit everything queued (ours included) until the queue
		 * is empty; the queue is appended to while we work.  unsynced:
		 * the last batch committed, waiting for its meta page sync. */
		struct seg_commit *unsynced = NULL;
		bool batch_sync;
		int rv, srv = 0;

		s->committing = true;
		while (s->commit_head != NULL) {
			struct seg_commit *batch = s->commit_head;

			s->commit_head = NULL;
			s->commit_tail = &s->commit_head;
			(void)pthread_mutex_unlock(&s->commit_lock);
			rv = seg_commit_batch(s, batch, &batch_sync);
			if (rv != 0 && unsynced != NULL)
				srv = seg_env_sync(s, msg); /* not synced */
			(void)pthread_mutex_lock(&s->commit_lock);
			/* This commit's fdatasync carried the meta page of
			 * the batch before it. */
			seg_commit_release(unsynced, srv, msg);
			unsynced = NULL;
			srv = 0;
			if (rv == 0 && batch_sync)
				unsynced = batch;
			else
				seg_commit_release(batch, 0, msg);
			(void)pthread_cond_broadcast(&s->commit_cond);
		}
		if (unsynced != NULL) {
			(void)pthread_mutex_unlock(&s->commit_lock);
			srv = seg_env_sync(s, msg);
			(void)pthread_mutex_lock(&s->commit_lock);
			seg_commit_release(unsynced, srv, msg);
		}
		s->committing = false;
		(void)pthread_cond_broadcast(&s->commit_cond);
	}
	(void)pthread_mutex_unlock(&s->commit_lock);
	if (me.rv != 0)
		memcpy(errmsg, me.errmsg, OMBRA_ERRMSG_LEN);
	return me.rv;
}
