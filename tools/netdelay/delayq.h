/* delayq: hold items for a fixed per-queue delay and release them in order.
 *
 * What it is for: ombra-netdelay (tools/netdelay/ombra-netdelay.c) keeps
 * every packet the kernel hands it on an NFQUEUE until the queue's one-way
 * delay has passed, then accepts it.  This module is the scheduler, with no
 * knowledge of netfilter, so that it can be driven by unit tests with a
 * virtual clock (tests/unit/test_delayq.c).
 *
 * Design: every queue has ONE constant delay, so the release times of its
 * items are non-decreasing in arrival order as long as the clock given to
 * delayq_push() is monotonic: a FIFO ring per queue releases in deadline
 * order and preserves the packet order of the queue.  Across queues a
 * binary min-heap of the non-empty queues, keyed by the deadline of each
 * queue's head, gives the next deadline in O(1) and the next due item in
 * O(log Q) (Cormen et al., "Introduction to Algorithms", ch. 6, heaps).
 *
 * Memory is bounded: each queue has a fixed capacity allocated at init;
 * delayq_push() on a full queue fails with DELAYQ_FULL and counts a drop,
 * the caller then drops the packet.  Times are in nanoseconds of a
 * monotonic clock (CLOCK_MONOTONIC in the tool, virtual in the tests).
 *
 * How it fails: delayq_init() returns DELAYQ_NOMEM or DELAYQ_INVAL (and
 * leaves nothing allocated); nothing else allocates or fails except
 * delayq_push() with DELAYQ_FULL / DELAYQ_INVAL. */
#ifndef OMBRA_DELAYQ_H
#define OMBRA_DELAYQ_H

#include <stddef.h>
#include <stdint.h>

enum {
	DELAYQ_OK = 0,
	DELAYQ_FULL = 1,  /* the queue holds its capacity: drop the item */
	DELAYQ_NOMEM = 2, /* allocation failed in delayq_init() */
	DELAYQ_INVAL = 3, /* bad argument (queue index, zero capacity) */
};

#define DELAYQ_NEVER UINT64_MAX /* delayq_next_due() with nothing held */

/* One held item: the caller's id (the NFQUEUE packet id) and when it is
 * due, in ns of the caller's monotonic clock. */
struct delayq_item {
	uint32_t id;
	uint64_t due_ns;
};

/* Counters of one queue (read them directly). */
struct delayq_stats {
	uint64_t pushed;   /* items accepted by delayq_push() */
	uint64_t released; /* items handed to the release callback */
	uint64_t dropped;  /* delayq_push() calls refused with DELAYQ_FULL */
	size_t held_max;   /* most items held at once */
};

/* One FIFO with a constant delay.  Owned by struct delayq. */
struct delayq_queue {
	uint64_t delay_ns;
	struct delayq_item *ring; /* cap entries */
	size_t cap, head, len;
	size_t heap_pos; /* index in delayq.heap, or SIZE_MAX if empty */
	struct delayq_stats stats;
};

struct delayq {
	struct delayq_queue *queues; /* nqueues entries */
	size_t nqueues;
	size_t *heap; /* indices of non-empty queues, min-heap on head due */
	size_t heap_len;
};

/* Initialise dq with nqueues queues whose delays (ns) are delays_ns[i],
 * each able to hold cap items (memory: nqueues * cap * 16 bytes).  The
 * caller owns dq (any storage); on success delayq_close() must be called,
 * on failure nothing is allocated.  Returns DELAYQ_OK, DELAYQ_INVAL
 * (nqueues or cap is 0) or DELAYQ_NOMEM. */
int delayq_init(struct delayq *dq, const uint64_t *delays_ns, size_t nqueues,
		size_t cap);

/* Free what delayq_init() allocated.  Held items are forgotten: release
 * them first (delayq_release(dq, DELAYQ_NEVER - 1, ...)) if they matter. */
void delayq_close(struct delayq *dq);

/* Hold item id on queue q, due at now_ns + the queue's delay.  now_ns must
 * not be smaller than the now_ns of an earlier push (monotonic clock).
 * Returns DELAYQ_OK, DELAYQ_FULL (counted in stats.dropped; the caller
 * drops the item) or DELAYQ_INVAL (q out of range). */
int delayq_push(struct delayq *dq, size_t q, uint32_t id, uint64_t now_ns);

/* The earliest due time of any held item, or DELAYQ_NEVER. */
uint64_t delayq_next_due(const struct delayq *dq);

/* Called once per released item, in due order (per queue: push order).
 * A non-zero return stops delayq_release() after this item. */
typedef int (*delayq_release_cb)(size_t q, uint32_t id, void *arg);

/* Release every item due at or before now_ns, calling cb for each (the
 * item is removed before cb runs).  Returns the number released. */
size_t delayq_release(struct delayq *dq, uint64_t now_ns, delayq_release_cb cb,
		      void *arg);

/* Items held on queue q right now (0 for q out of range). */
size_t delayq_held(const struct delayq *dq, size_t q);

#endif /* OMBRA_DELAYQ_H */
