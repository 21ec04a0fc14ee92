/* nbd_memio.c: memory-backed proxy_io.h for the NBD protocol tests (see
 * nbd_memio.h).  Failure: calls on unknown volumes report NOT_FOUND,
 * ranges beyond a volume INVALID_ARGUMENT, injected failures the
 * volume's code; out of memory reports RESOURCE_EXHAUSTED. */
#include "nbd_memio.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_io.h"

#define MEMIO_MAX_VOLUMES 16

struct proxy_volume {
	struct proxy *p;
	char name[128];
	uint64_t size;
	uint8_t *data;
	grpc_status_code fail;
};

struct proxy {
	uv_loop_t *loop;
	struct proxy_volume vols[MEMIO_MAX_VOLUMES];
	unsigned nvols;
	atomic_uint max_jitter_ms;
	unsigned seed;
	atomic_bool hold;
	atomic_uint started;
	atomic_uint completed;
	atomic_int refs;
};

enum memio_op {
	MEMIO_OPEN,
	MEMIO_LIST,
	MEMIO_READ,
	MEMIO_WRITE,
	MEMIO_ZERO,
	MEMIO_FLUSH
};

struct memio_call {
	uv_timer_t timer;
	struct proxy *p;
	enum memio_op op;
	struct proxy_volume *vol;
	char name[128];
	uint64_t off;
	uint64_t len;
	void *rbuf;
	const void *wbuf;
	proxy_open_cb open_cb;
	proxy_list_cb list_cb;
	proxy_io_cb io_cb;
	void *arg;
};

struct proxy *memio_create(uv_loop_t *loop)
{
	struct proxy *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		return NULL;
	}
	p->loop = loop;
	p->seed = 12345;
	atomic_init(&p->hold, false);
	atomic_init(&p->started, 0);
	atomic_init(&p->completed, 0);
	atomic_init(&p->refs, 0);
	atomic_init(&p->max_jitter_ms, 0);
	return p;
}

void memio_destroy(struct proxy *p)
{
	unsigned i;

	if (p == NULL) {
		return;
	}
	for (i = 0; i < p->nvols; i++) {
		free(p->vols[i].data);
	}
	free(p);
}

static struct proxy_volume *memio_find(struct proxy *p, const char *name)
{
	unsigned i;

	for (i = 0; i < p->nvols; i++) {
		if (strcmp(p->vols[i].name, name) == 0) {
			return &p->vols[i];
		}
	}
	return NULL;
}

int memio_add_volume(struct proxy *p, const char *name, uint64_t size,
		     grpc_status_code fail)
{
	struct proxy_volume *v;

	if (p->nvols == MEMIO_MAX_VOLUMES || memio_find(p, name) != NULL ||
	    strlen(name) >= sizeof(v->name)) {
		return -1;
	}
	v = &p->vols[p->nvols];
	v->data = calloc(1, size > 0 ? size : 1);
	if (v->data == NULL) {
		return -1;
	}
	v->p = p;
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->size = size;
	v->fail = fail;
	p->nvols++;
	return 0;
}

void memio_set_jitter(struct proxy *p, unsigned max_ms)
{
	atomic_store(&p->max_jitter_ms, max_ms);
}

void memio_hold(struct proxy *p, bool on)
{
	atomic_store(&p->hold, on);
}

unsigned memio_started(const struct proxy *p)
{
	return atomic_load(&p->started);
}

unsigned memio_completed(const struct proxy *p)
{
	return atomic_load(&p->completed);
}

int memio_open_refs(const struct proxy *p)
{
	return atomic_load(&p->refs);
}

bool memio_peek(struct proxy *p, const char *name, uint64_t off, uint64_t len,
		void *out)
{
	struct proxy_volume *v = memio_find(p, name);

	if (v == NULL || off > v->size || len > v->size - off) {
		return false;
	}
	memcpy(out, v->data + off, len);
	return true;
}

static void memio_status(struct proxy_status *st, grpc_status_code code,
			 const char *what, const char *name)
{
	st->code = code;
	snprintf(st->message, sizeof(st->message), "%s %s", what, name);
}

static void memio_call_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Run a held or delayed I/O call: check, copy, call back. */
static void memio_do_io(struct memio_call *call)
{
	struct proxy_volume *v = call->vol;
	struct proxy_status st = {.code = GRPC_STATUS_OK};

	if (v->fail != GRPC_STATUS_OK) {
		memio_status(&st, v->fail, "injected failure on", v->name);
	} else if (call->op != MEMIO_FLUSH &&
		   (call->off > v->size || call->len > v->size - call->off)) {
		memio_status(&st, GRPC_STATUS_INVALID_ARGUMENT,
			     "range beyond volume", v->name);
	} else if (call->op == MEMIO_READ) {
		memcpy(call->rbuf, v->data + call->off, call->len);
	} else if (call->op == MEMIO_WRITE) {
		memcpy(v->data + call->off, call->wbuf, call->len);
	} else if (call->op == MEMIO_ZERO) {
		memset(v->data + call->off, 0, call->len);
	}
	atomic_fetch_add(&call->p->completed, 1);
	call->io_cb(call->arg, &st, 1);
}

static void memio_list(struct memio_call *call)
{
	struct proxy *p = call->p;
	const char *names[MEMIO_MAX_VOLUMES];
	uint64_t sizes[MEMIO_MAX_VOLUMES];
	struct proxy_status st = {.code = GRPC_STATUS_OK};
	unsigned i;

	for (i = 0; i < p->nvols; i++) {
		names[i] = p->vols[i].name;
		sizes[i] = p->vols[i].size;
	}
	call->list_cb(call->arg, &st, names, sizes, p->nvols);
}

static void memio_timer_cb(uv_timer_t *t)
{
	struct memio_call *call = t->data;
	struct proxy_status st = {.code = GRPC_STATUS_OK};
	struct proxy_volume *v;

	switch (call->op) {
	case MEMIO_OPEN:
		v = memio_find(call->p, call->name);
		if (v == NULL) {
			st.code = GRPC_STATUS_NOT_FOUND;
			snprintf(st.message, sizeof(st.message),
				 "volume %s does not exist", call->name);
		} else {
			atomic_fetch_add(&call->p->refs, 1);
		}
		call->open_cb(call->arg, &st, v);
		break;
	case MEMIO_LIST:
		memio_list(call);
		break;
	default:
		if (atomic_load(&call->p->hold)) {
			uv_timer_start(t, memio_timer_cb, 1, 0);
			return;
		}
		memio_do_io(call);
		break;
	}
	uv_close((uv_handle_t *)t, memio_call_closed);
}

static unsigned memio_delay_ms(struct proxy *p)
{
	unsigned max = atomic_load(&p->max_jitter_ms);

	if (max == 0) {
		return 0;
	}
	p->seed = p->seed * 1103515245u + 12345u;
	return (p->seed >> 16) % (max + 1);
}

static struct memio_call *memio_call_start(struct proxy *p, enum memio_op op)
{
	struct memio_call *call = calloc(1, sizeof(*call));

	if (call == NULL) {
		abort(); /* a test backend: out of memory ends the test */
	}
	call->p = p;
	call->op = op;
	uv_timer_init(p->loop, &call->timer);
	call->timer.data = call;
	return call;
}

static void memio_call_go(struct memio_call *call)
{
	uv_timer_start(&call->timer, memio_timer_cb,
		       call->op >= MEMIO_READ ? memio_delay_ms(call->p) : 0, 0);
}

void proxy_volume_open(struct proxy *p, const char *name, proxy_open_cb cb,
		       void *arg)
{
	struct memio_call *call = memio_call_start(p, MEMIO_OPEN);

	snprintf(call->name, sizeof(call->name), "%s", name);
	call->open_cb = cb;
	call->arg = arg;
	memio_call_go(call);
}

/* No writer leases in the fake: attachments change nothing. */
void proxy_volume_attach(struct proxy_volume *vol, int delta)
{
	(void)vol;
	(void)delta;
}

void proxy_volume_release(struct proxy_volume *vol)
{
	atomic_fetch_sub(&vol->p->refs, 1);
}

uint64_t proxy_volume_size(const struct proxy_volume *vol)
{
	return vol->size;
}

const char *proxy_volume_name(const struct proxy_volume *vol)
{
	return vol->name;
}

void proxy_volume_list(struct proxy *p, proxy_list_cb cb, void *arg)
{
	struct memio_call *call = memio_call_start(p, MEMIO_LIST);

	call->list_cb = cb;
	call->arg = arg;
	memio_call_go(call);
}

static void memio_io(struct proxy_volume *vol, enum memio_op op, uint64_t off,
		     uint64_t len, void *rbuf, const void *wbuf, proxy_io_cb cb,
		     void *arg)
{
	struct memio_call *call = memio_call_start(vol->p, op);

	call->vol = vol;
	call->off = off;
	call->len = len;
	call->rbuf = rbuf;
	call->wbuf = wbuf;
	call->io_cb = cb;
	call->arg = arg;
	atomic_fetch_add(&vol->p->started, 1);
	memio_call_go(call);
}

void proxy_io_read(struct proxy_volume *vol, uint64_t off, uint64_t len,
		   void *buf, proxy_io_cb cb, void *arg)
{
	memio_io(vol, MEMIO_READ, off, len, buf, NULL, cb, arg);
}

/* The memory backend has one copy: every consistency level reads it. */
void proxy_io_read_opts(struct proxy_volume *vol, uint64_t off, uint64_t len,
			void *buf, const struct proxy_read_opts *o,
			proxy_io_cb cb, void *arg)
{
	(void)o;
	memio_io(vol, MEMIO_READ, off, len, buf, NULL, cb, arg);
}

void proxy_io_write(struct proxy_volume *vol, uint64_t off, uint64_t len,
		    const void *buf, bool fua, const char *request_id,
		    proxy_io_cb cb, void *arg)
{
	(void)fua;
	(void)request_id;
	memio_io(vol, MEMIO_WRITE, off, len, NULL, buf, cb, arg);
}

void proxy_io_zero(struct proxy_volume *vol, uint64_t off, uint64_t len,
		   bool fua, const char *request_id, proxy_io_cb cb, void *arg)
{
	(void)fua;
	(void)request_id;
	memio_io(vol, MEMIO_ZERO, off, len, NULL, NULL, cb, arg);
}

void proxy_io_flush(struct proxy_volume *vol, proxy_io_cb cb, void *arg)
{
	memio_io(vol, MEMIO_FLUSH, 0, 0, NULL, NULL, cb, arg);
}
