/* wlogic.c: pure data-path helpers of ombra-stored (see wlogic.h).
 * Nothing here does I/O; the only failure is out of memory at LRU
 * creation and OMBRA_EINVAL for bad ranges or versions. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "segstore.h"
#include "wlogic.h"

#define BLK ((uint64_t)SEGSTORE_BLOCK_SIZE)

uint64_t wl_next_seq(uint64_t highest, uint64_t epoch)
{
	if (highest != 0 && segstore_version_epoch(highest) == epoch) {
		return segstore_version_seq(highest) + 1;
	}
	return 1;
}

int wl_version(uint64_t epoch, uint64_t seq, uint64_t *out, char *errmsg)
{
	if (epoch == 0 || epoch > SEGSTORE_VERSION_MAX_EPOCH) {
		ombra_errmsg_printf(errmsg,
				    "lease epoch %llu out of range "
				    "1..%u",
				    (unsigned long long)epoch,
				    SEGSTORE_VERSION_MAX_EPOCH);
		return OMBRA_EINVAL;
	}
	if (seq == 0 || seq > SEGSTORE_VERSION_MAX_SEQ) {
		ombra_errmsg_printf(
		    errmsg, "sequence %llu of epoch %llu out of range",
		    (unsigned long long)seq, (unsigned long long)epoch);
		return OMBRA_EINVAL;
	}
	*out = epoch << SEGSTORE_VERSION_SEQ_BITS | seq;
	return 0;
}

int wl_check_range(uint64_t seg, uint64_t segsize, uint64_t vol_size,
		   uint64_t off, uint64_t len, bool aligned, struct wl_range *r,
		   char *errmsg)
{
	uint64_t seg_start, seg_end, end;

	if (segsize < SEGSTORE_MIN_SEGMENT_SIZE ||
	    segsize > SEGSTORE_MAX_SEGMENT_SIZE ||
	    (segsize & (segsize - 1)) != 0) {
		ombra_errmsg_printf(errmsg,
				    "segment size %llu is not a power of two "
				    "in 64KiB..4MiB",
				    (unsigned long long)segsize);
		return OMBRA_EINVAL;
	}
	if (seg >= SEGSTORE_MAX_VOLUME_BYTES / segsize) {
		ombra_errmsg_printf(errmsg, "segment index %llu out of range",
				    (unsigned long long)seg);
		return OMBRA_EINVAL;
	}
	if (len == 0) {
		ombra_errmsg_printf(errmsg, "length is 0 (nothing to do)");
		return OMBRA_EINVAL;
	}
	if (aligned && (off % BLK != 0 || len % BLK != 0)) {
		ombra_errmsg_printf(errmsg,
				    "offset %llu and length %llu must be "
				    "multiples of 4096",
				    (unsigned long long)off,
				    (unsigned long long)len);
		return OMBRA_EINVAL;
	}
	seg_start = seg * segsize;
	seg_end = seg_start + segsize;
	end = off + len;
	if (end < off || off < seg_start || end > seg_end) {
		ombra_errmsg_printf(
		    errmsg,
		    "offset %llu + length %llu is outside "
		    "segment %llu (volume bytes %llu..%llu)",
		    (unsigned long long)off, (unsigned long long)len,
		    (unsigned long long)seg, (unsigned long long)seg_start,
		    (unsigned long long)(seg_end - 1));
		return OMBRA_EINVAL;
	}
	if (vol_size != 0 && end > vol_size) {
		ombra_errmsg_printf(errmsg,
				    "offset %llu + length %llu beyond volume "
				    "size %llu",
				    (unsigned long long)off,
				    (unsigned long long)len,
				    (unsigned long long)vol_size);
		return OMBRA_EINVAL;
	}
	r->off = off;
	r->len = len;
	r->aoff = off - off % BLK;
	r->alen = (end + BLK - 1) / BLK * BLK - r->aoff;
	r->head_partial = off % BLK != 0;
	r->tail_partial = end % BLK != 0;
	r->first_block = r->aoff / BLK;
	r->n_blocks = r->alen / BLK;
	return 0;
}

void wl_merge(const struct wl_range *r, void *buf, const void *data)
{
	unsigned char *dst = (unsigned char *)buf + (r->off - r->aoff);

	if (data == NULL) {
		memset(dst, 0, r->len);
	} else {
		memcpy(dst, data, r->len);
	}
}

/* ------------------------------------------------ LRU */

struct lru_entry {
	char id[WL_LRU_ID_MAX + 1];
	uint64_t version;
	uint64_t prev_version; /* the write's StoreWriteResponse.prev_version */
	size_t hnext;	       /* next in hash chain, SIZE_MAX = end */
	size_t prev;	       /* towards older, SIZE_MAX = none */
	size_t next;	       /* towards newer */
};

struct wl_lru {
	struct lru_entry *e;
	size_t cap, count;
	size_t *buckets; /* nb heads, SIZE_MAX = empty */
	size_t nb;
	size_t oldest, newest;
};

#define NIL SIZE_MAX

static size_t hash_id(const char *s, size_t nb)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	}
	return (size_t)(h % nb);
}

struct wl_lru *wl_lru_create(size_t capacity)
{
	struct wl_lru *l = calloc(1, sizeof(*l));

	if (l == NULL || capacity == 0) {
		free(l);
		return NULL;
	}
	l->cap = capacity;
	l->nb = capacity * 2;
	l->e = calloc(capacity, sizeof(*l->e));
	l->buckets = malloc(l->nb * sizeof(*l->buckets));
	if (l->e == NULL || l->buckets == NULL) {
		wl_lru_destroy(l);
		return NULL;
	}
	for (size_t i = 0; i < l->nb; i++) {
		l->buckets[i] = NIL;
	}
	l->oldest = l->newest = NIL;
	return l;
}

void wl_lru_destroy(struct wl_lru *l)
{
	if (l == NULL) {
		return;
	}
	free(l->e);
	free(l->buckets);
	free(l);
}

static bool id_ok(const char *id)
{
	return id != NULL && id[0] != '\0' &&
	       strnlen(id, WL_LRU_ID_MAX + 1) <= WL_LRU_ID_MAX;
}

static size_t find(struct wl_lru *l, const char *id)
{
	for (size_t i = l->buckets[hash_id(id, l->nb)]; i != NIL;
	     i = l->e[i].hnext) {
		if (strcmp(l->e[i].id, id) == 0) {
			return i;
		}
	}
	return NIL;
}

static void list_unlink(struct wl_lru *l, size_t i)
{
	struct lru_entry *x = &l->e[i];

	if (x->prev != NIL) {
		l->e[x->prev].next = x->next;
	} else {
		l->oldest = x->next;
	}
	if (x->next != NIL) {
		l->e[x->next].prev = x->prev;
	} else {
		l->newest = x->prev;
	}
}

static void list_push_newest(struct wl_lru *l, size_t i)
{
	l->e[i].prev = l->newest;
	l->e[i].next = NIL;
	if (l->newest != NIL) {
		l->e[l->newest].next = i;
	} else {
		l->oldest = i;
	}
	l->newest = i;
}

static void hash_unlink(struct wl_lru *l, size_t i)
{
	size_t *p = &l->buckets[hash_id(l->e[i].id, l->nb)];

	while (*p != i) {
		p = &l->e[*p].hnext;
	}
	*p = l->e[i].hnext;
}

uint64_t wl_lru_get_chain(struct wl_lru *l, const char *id, uint64_t *prev)
{
	size_t i;

	if (prev != NULL) {
		*prev = 0;
	}
	if (!id_ok(id)) {
		return 0;
	}
	i = find(l, id);
	if (i == NIL) {
		return 0;
	}
	list_unlink(l, i);
	list_push_newest(l, i);
	if (prev != NULL) {
		*prev = l->e[i].prev_version;
	}
	return l->e[i].version;
}

uint64_t wl_lru_get(struct wl_lru *l, const char *id)
{
	return wl_lru_get_chain(l, id, NULL);
}

void wl_lru_put(struct wl_lru *l, const char *id, uint64_t version)
{
	wl_lru_put_chain(l, id, version, 0);
}

void wl_lru_put_chain(struct wl_lru *l, const char *id, uint64_t version,
		      uint64_t prev)
{
	size_t i, b;

	if (!id_ok(id) || version == 0) {
		return;
	}
	i = find(l, id);
	if (i != NIL) {
		l->e[i].version = version;
		l->e[i].prev_version = prev;
		list_unlink(l, i);
		list_push_newest(l, i);
		return;
	}
	if (l->count < l->cap) {
		i = l->count++;
	} else {
		i = l->oldest;
		list_unlink(l, i);
		hash_unlink(l, i);
	}
	strcpy(l->e[i].id, id);
	l->e[i].version = version;
	l->e[i].prev_version = prev;
	b = hash_id(id, l->nb);
	l->e[i].hnext = l->buckets[b];
	l->buckets[b] = i;
	list_push_newest(l, i);
}

size_t wl_lru_count(const struct wl_lru *l)
{
	return l->count;
}
