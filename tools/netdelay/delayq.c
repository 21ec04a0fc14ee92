/* delayq: per-queue constant-delay FIFOs under a min-heap of queue heads.
 * See delayq.h for the design and the contract; this file only implements
 * it.  It never allocates after delayq_init(), so it cannot fail at run
 * time except by refusing an item of a full queue (DELAYQ_FULL). */
#include "delayq.h"

#include <stdlib.h>

static uint64_t head_due(const struct delayq *dq, size_t qi)
{
	const struct delayq_queue *q = &dq->queues[qi];
	return q->ring[q->head].due_ns;
}

static void heap_swap(struct delayq *dq, size_t a, size_t b)
{
	size_t t = dq->heap[a];
	dq->heap[a] = dq->heap[b];
	dq->heap[b] = t;
	dq->queues[dq->heap[a]].heap_pos = a;
	dq->queues[dq->heap[b]].heap_pos = b;
}

static void heap_up(struct delayq *dq, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (head_due(dq, dq->heap[parent]) <= head_due(dq, dq->heap[i]))
			break;
		heap_swap(dq, parent, i);
		i = parent;
	}
}

static void heap_down(struct delayq *dq, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < dq->heap_len &&
		    head_due(dq, dq->heap[l]) < head_due(dq, dq->heap[min]))
			min = l;
		if (r < dq->heap_len &&
		    head_due(dq, dq->heap[r]) < head_due(dq, dq->heap[min]))
			min = r;
		if (min == i)
			return;
		heap_swap(dq, i, min);
		i = min;
	}
}

int delayq_init(struct delayq *dq, const uint64_t *delays_ns, size_t nqueues,
		size_t cap)
{
	size_t i;

	if (nqueues == 0 || cap == 0)
		return DELAYQ_INVAL;
	dq->nqueues = nqueues;
	dq->heap_len = 0;
	dq->queues = calloc(nqueues, sizeof(*dq->queues));
	if (dq->queues == NULL)
		goto err;
	dq->heap = calloc(nqueues, sizeof(*dq->heap));
	if (dq->heap == NULL)
		goto err_after_queues;
	for (i = 0; i < nqueues; i++) {
		struct delayq_queue *q = &dq->queues[i];
		q->delay_ns = delays_ns[i];
		q->cap = cap;
		q->heap_pos = SIZE_MAX;
		q->ring = calloc(cap, sizeof(*q->ring));
		if (q->ring == NULL)
			goto err_after_rings;
	}
	return DELAYQ_OK;

err_after_rings:
	while (i-- > 0)
		free(dq->queues[i].ring);
	free(dq->heap);
err_after_queues:
	free(dq->queues);
err:
	dq->queues = NULL;
	dq->heap = NULL;
	dq->nqueues = 0;
	return DELAYQ_NOMEM;
}

void delayq_close(struct delayq *dq)
{
	for (size_t i = 0; i < dq->nqueues; i++)
		free(dq->queues[i].ring);
	free(dq->queues);
	free(dq->heap);
	dq->queues = NULL;
	dq->heap = NULL;
	dq->nqueues = 0;
	dq->heap_len = 0;
}

int delayq_push(struct delayq *dq, size_t qi, uint32_t id, uint64_t now_ns)
{
	struct delayq_queue *q;
	struct delayq_item *it;

	if (qi >= dq->nqueues)
		return DELAYQ_INVAL;
	q = &dq->queues[qi];
	if (q->len == q->cap) {
		q->stats.dropped++;
		return DELAYQ_FULL;
	}
	it = &q->ring[(q->head + q->len) % q->cap];
	it->id = id;
	/* saturate instead of wrapping to a time in the past */
	it->due_ns = now_ns > UINT64_MAX - 1 - q->delay_ns
			 ? UINT64_MAX - 1
			 : now_ns + q->delay_ns;
	q->len++;
	q->stats.pushed++;
	if (q->len > q->stats.held_max)
		q->stats.held_max = q->len;
	if (q->len == 1) {
		q->heap_pos = dq->heap_len;
		dq->heap[dq->heap_len++] = qi;
		heap_up(dq, q->heap_pos);
	}
	return DELAYQ_OK;
}

uint64_t delayq_next_due(const struct delayq *dq)
{
	return dq->heap_len == 0 ? DELAYQ_NEVER : head_due(dq, dq->heap[0]);
}

size_t delayq_release(struct delayq *dq, uint64_t now_ns, delayq_release_cb cb,
		      void *arg)
{
	size_t n = 0;

	while (dq->heap_len > 0 && head_due(dq, dq->heap[0]) <= now_ns) {
		size_t qi = dq->heap[0];
		struct delayq_queue *q = &dq->queues[qi];
		uint32_t id = q->ring[q->head].id;
		int stop;

		q->head = (q->head + 1) % q->cap;
		q->len--;
		q->stats.released++;
		if (q->len == 0) {
			q->heap_pos = SIZE_MAX;
			dq->heap_len--;
			if (dq->heap_len > 0) {
				dq->heap[0] = dq->heap[dq->heap_len];
				dq->queues[dq->heap[0]].heap_pos = 0;
			}
		}
		if (dq->heap_len > 0)
			heap_down(dq, 0);
		n++;
		stop = cb(qi, id, arg);
		if (stop)
			break;
	}
	return n;
}

size_t delayq_held(const struct delayq *dq, size_t qi)
{
	return qi < dq->nqueues ? dq->queues[qi].len : 0;
}
