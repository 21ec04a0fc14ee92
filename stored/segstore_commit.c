/* segstore_commit.c: group commit of segment-record updates.
 *
 * Every mutation ends by storing its segment's record (checksums and
 * versions) in LMDB.  One write transaction per mutation, each synced,
 * bounds a store to the sync rate of the index device (about 1000 per
 * second here) no matter how many threads write.  Instead, a caller queues
 * its update and either becomes the committer (no commit in progress) or
 * waits: the committer takes every queued update, fdatasyncs each distinct
 * data file they wrote with fua (once per file), applies the records in
 * one transaction, commits it, syncs the index once if any update asked
 * for sync, wakes the waiters, and repeats while updates are queued.  The
 * order data sync -> index commit is that of a single fua write
 * (segstore.h "Durability").  This is
 * the group commit of database logs (Gawlick and Kinkade, "Varieties of
 * Concurrency Control in IMS/VS Fast Path", IEEE Database Eng. 1985).
 *
 * Correctness: each caller holds its segment's lock exclusively until its
 * update is committed, so one transaction never carries two updates of
 * the same segment, and the record it put is exactly the caller's.  The
 * records are copied into the transaction before the committer releases
 * the callers, so a caller may free its record right after return.
 *
 * Failure: if any put or the commit fails, the whole transaction is
 * aborted and every update in it fails with the same message (the caller
 * treats it like any index failure: its blocks may read as bad until
 * rewritten or repaired).  Updates queued later get their own
 * transaction. */
#include <string.h>

#include "segstore_internal.h"

struct seg_commit {
	struct seg_commit *next;
	uint64_t volume_id;
	uint64_t segment;
	const struct seg_rec *rec;
	int64_t d_used;
	int sync_fd;
	bool sync;
	bool done;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

/* fdatasync each distinct sync_fd of the batch once. */
static int seg_commit_sync_data(struct segstore *s, struct seg_commit *batch,
				char *errmsg)
{
	struct seg_commit *c, *d;
	int err;

	for (c = batch; c != NULL; c = c->next) {
		if (c->sync_fd < 0)
			continue;
		for (d = batch; d != c && d->sync_fd != c->sync_fd; d = d->next)
			;
		if (d != c)
			continue; /* synced already */
		err = seg_datasync(s, c->sync_fd);
		if (err != 0) {
			ombra_errmsg_printf(errmsg, "tier '%s': fdatasync: %s",
					    s->tiers[c->rec->tier].name,
					    strerror(err));
			return OMBRA_EIO;
		}
	}
	return 0;
}

/* Apply a batch in one transaction; every entry gets the outcome. */
static void seg_commit_batch(struct segstore *s, struct seg_commit *batch)
{
	char errmsg[OMBRA_ERRMSG_LEN] = "";
	struct seg_commit *c;
	bool sync = false;
	MDB_txn *txn = NULL;
	int rv;

	rv = seg_commit_sync_data(s, batch, errmsg);
	if (rv == 0)
		rv = seg_txn_begin(s, true, &txn, errmsg);
	for (c = batch; rv == 0 && c != NULL; c = c->next) {
		rv = seg_rec_put(s, txn, c->volume_id, c->segment, c->rec,
				 errmsg);
		if (rv == 0)
			rv = seg_tier_adjust(s, txn, c->rec->tier, 0, c->d_used,
					     errmsg);
		sync = sync || c->sync;
	}
	if (rv == 0)
		rv = seg_txn_commit(txn, errmsg);
	else if (txn != NULL)
		mdb_txn_abort(txn);
	if (rv == 0 && sync)
		rv = seg_env_sync(s, errmsg);
	for (c = batch; c != NULL; c = c->next) {
		c->rv = rv;
		if (rv != 0)
			memcpy(c->errmsg, errmsg, sizeof(errmsg));
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
	    .sync_fd = sync_fd,
	    .sync = sync,
	};

	(void)pthread_mutex_lock(&s->commit_lock);
	*s->commit_tail = &me;
	s->commit_tail = &me.next;
	while (!me.done && s->committing)
		(void)pthread_cond_wait(&s->commit_cond, &s->commit_lock);
	if (!me.done) {
		/* Commit everything queued (ours included) until the queue
		 * is empty; the queue is appended to while we work. */
		s->committing = true;
		while (s->commit_head != NULL) {
			struct seg_commit *batch = s->commit_head, *c, *next;

			s->commit_head = NULL;
			s->commit_tail = &s->commit_head;
			(void)pthread_mutex_unlock(&s->commit_lock);
			seg_commit_batch(s, batch);
			(void)pthread_mutex_lock(&s->commit_lock);
			for (c = batch; c != NULL; c = next) {
				next = c->next;
				c->done = true;
			}
			(void)pthread_cond_broadcast(&s->commit_cond);
		}
		s->committing = false;
		(void)pthread_cond_broadcast(&s->commit_cond);
	}
	(void)pthread_mutex_unlock(&s->commit_lock);
	if (me.rv != 0)
		memcpy(errmsg, me.errmsg, OMBRA_ERRMSG_LEN);
	return me.rv;
}
