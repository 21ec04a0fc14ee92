/* rpc_server.c: generic gRPC server on the gRPC core C API, dispatching to
 * handlers on the daemon's libuv loop.
 *
 * Threads.  A bridge (rpc_bridge.h) drains the completion queue (the
 * process's shared one) on its thread and hands every completed tag to
 * the loop.  Everything else (decoding, handlers, starting batches,
 * freeing) runs on the loop thread, so handlers touch daemon state
 * without locks.
 *
 * A call's life.  Every method added with rpc_server_add_service() is
 * registered with gRPC (grpc_server_register_method) with its request
 * payload read before the call is reported, so a call arrives (tag_new)
 * with its request: we start RECV_CLOSE_ON_SERVER (tag_close: tells us when
 * the call is over, and whether it was cancelled), decode the request with
 * the method's input descriptor and run the handler.  Calls to other
 * methods arrive through grpc_server_request_call and get UNIMPLEMENTED.
 * The handler answers, now or later, which queues "send items" (messages
 * and the final status) that go out one batch at a time (tag_send); a
 * message followed by the final status (a unary reply) goes out as one
 * batch.  The call is freed when it has been answered, its close has
 * arrived and no batch is in flight, whichever happens last.
 *
 * Why: each completion costs a hand-off from the bridge thread to the loop
 * thread, and on an idle machine each hand-off wakes a CPU.  A unary call
 * used to take four (new call, request message, reply message, status)
 * where it now takes two (new call with its request, reply with status);
 * only the first is on the client's critical path.
 *
 * Failure.  Unknown methods get UNIMPLEMENTED and undecodable requests
 * INVALID_ARGUMENT from this layer; a batch that gRPC refuses to start is
 * logged and treated as a failed completion, never an abort. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "log.h"
#include "rpc_bridge.h"
#include "rpc_internal.h"

/* How many request slots are kept open for new calls, per registered
 * method and for unknown methods.  More calls than this wait inside gRPC
 * until the loop opens the next slot (each arrival opens one). */
#define SERVER_PENDING_PER_METHOD 8
#define SERVER_PENDING_UNKNOWN 2

struct method_entry {
	char *path;
	const ProtobufCServiceDescriptor *svc;
	const ProtobufCMethodDescriptor *method;
	rpc_handler_fn handler;
	void *data;
	void *registered; /* grpc_server_register_method() handle */
};

/* One queued output of a call: a message, or the final status. */
struct send_item {
	struct send_item *next;
	grpc_byte_buffer *message; /* NULL for the final status */
	grpc_status_code code;
	char *details;
	char *md_key, *md_value;
};

struct rpc_call {
	struct rpc_server *srv;
	grpc_call *call;
	grpc_call_details details; /* calls to unknown methods */
	gpr_timespec deadline;
	grpc_metadata_array request_md;
	char method_name[128];
	const struct method_entry *entry;
	ProtobufCMessage *request;
	grpc_byte_buffer *recv_buffer;
	int cancelled_flag; /* written by RECV_CLOSE_ON_SERVER */
	struct rpc_tag tag_new, tag_close, tag_send;
	bool accepted, close_done, send_pending;
	bool initial_md_sent, answered, done_fired;
	bool holding; /* rpc_call_reply(): do not start a batch yet */
	int pins;     /* > 0 while our code runs a callback that may answer */
	struct send_item *send_head, *send_tail;
	/* Resources of the batch in flight, released when it completes. */
	grpc_slice send_details;
	grpc_metadata send_md;
	bool send_has_details, send_has_md;
	grpc_byte_buffer *send_buffer;
	grpc_status_code final_code;
	uint64_t start_ns;
	rpc_call_done_cb done_cb;
	void *done_data;
	struct rpc_call *next_live, *prev_live;
};

struct rpc_server {
	uv_loop_t *loop;
	grpc_server *server;
	struct rpc_bridge bridge; /* its cq (shared) is the server's */
	char *listen;
	struct rpc_tls tls;
	char *tls_strings[4];
	struct method_entry *methods;
	size_t n_methods;
	bool started, stopping;
	struct rpc_tag tag_shutdown;
	bool shutdown_done;
	struct rpc_call *live; /* every accepted or pending call */
	size_t n_live;
	rpc_server_observe_fn observe;
	void *observe_data;
	rpc_server_stop_cb stop_cb;
	void *stop_data;
};

static void call_maybe_free(struct rpc_call *c);
static void call_pump(struct rpc_call *c);
static int server_request_one(struct rpc_server *srv,
			      const struct method_entry *e);
static void server_maybe_finish_stop(struct rpc_server *srv);
static void server_after_tags(void *data);

/* ------------------------------------------------------------ helpers */

static uint64_t now_ns(void)
{
	return uv_hrtime();
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void live_add(struct rpc_server *srv, struct rpc_call *c)
{
	c->next_live = srv->live;
	c->prev_live = NULL;
	if (srv->live)
		srv->live->prev_live = c;
	srv->live = c;
	srv->n_live++;
}

static void live_remove(struct rpc_server *srv, struct rpc_call *c)
{
	if (c->prev_live)
		c->prev_live->next_live = c->next_live;
	else
		srv->live = c->next_live;
	if (c->next_live)
		c->next_live->prev_live = c->prev_live;
	srv->n_live--;
}

static grpc_call_error start_batch(struct rpc_call *c, const grpc_op *ops,
				   size_t n, struct rpc_tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
	if (e != GRPC_CALL_OK)
		log_error("rpc: %s: grpc_call_start_batch failed (%d)",
			  c->method_name, (int)e);
	return e;
}

static void send_item_free(struct send_item *it)
{
	if (it->message)
		grpc_byte_buffer_destroy(it->message);
	free(it->details);
	free(it->md_key);
	free(it->md_value);
	free(it);
}

static void fire_done(struct rpc_call *c)
{
	if (c->done_fired)
		return;
	c->done_fired = true;
	if (c->done_cb)
		c->done_cb(c, c->done_data);
}

/* ------------------------------------------------------------ send path */

static void release_send_resources(struct rpc_call *c)
{
	if (c->send_buffer) {
		grpc_byte_buffer_destroy(c->send_buffer);
		c->send_buffer = NULL;
	}
	if (c->send_has_details) {
		grpc_slice_unref(c->send_details);
		c->send_has_details = false;
	}
	if (c->send_has_md) {
		grpc_slice_unref(c->send_md.key);
		grpc_slice_unref(c->send_md.value);
		c->send_has_md = false;
	}
}

static void on_send(struct rpc_tag *tag, bool ok)
{
	struct rpc_call *c =
	    (struct rpc_call *)((char *)tag -
				offsetof(struct rpc_call, tag_send));
	c->send_pending = false;
	release_send_resources(c);
	if (!ok) {
		/* The client is gone: drop whatever is still queued. */
		while (c->send_head) {
			struct send_item *it = c->send_head;
			c->send_head = it->next;
			send_item_free(it);
		}
		c->send_tail = NULL;
	}
	call_pump(c);
	call_maybe_free(c);
}

/* Add the final status item it to the batch ops[*n], keeping what the
 * batch needs until it completes. */
static void add_status_op(struct rpc_call *c, const struct send_item *it,
			  grpc_op *ops, size_t *n)
{
	grpc_op *op = &ops[(*n)++];

	c->send_details =
	    grpc_slice_from_copied_string(it->details ? it->details : "");
	c->send_has_details = true;
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = it->code;
	op->data.send_status_from_server.status_details = &c->send_details;
	if (it->md_key) {
		c->send_md.key = grpc_slice_from_copied_string(it->md_key);
		c->send_md.value = grpc_slice_from_copied_string(it->md_value);
		c->send_has_md = true;
		op->data.send_status_from_server.trailing_metadata_count = 1;
		op->data.send_status_from_server.trailing_metadata =
		    &c->send_md;
	}
	c->final_code = it->code;
}

/* Take the head of the send queue. */
static struct send_item *send_pop(struct rpc_call *c)
{
	struct send_item *it = c->send_head;

	c->send_head = it->next;
	if (c->send_head == NULL)
		c->send_tail = NULL;
	return it;
}

/* Start the next queued send item if none is in flight: a message and the
 * final status right behind it go out together. */
static void call_pump(struct rpc_call *c)
{
	if (c->send_pending || c->send_head == NULL || c->holding)
		return;
	struct send_item *it = send_pop(c);

	grpc_op ops[4];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (!c->initial_md_sent) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[n].data.send_initial_metadata.count = 0;
		n++;
		c->initial_md_sent = true;
	}
	if (it->message) {
		c->send_buffer = it->message;
		it->message = NULL;
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->send_buffer;
		n++;
		if (c->send_head != NULL && c->send_head->message == NULL) {
			send_item_free(it);
			it = send_pop(c);
			add_status_op(c, it, ops, &n);
		}
	} else {
		add_status_op(c, it, ops, &n);
	}
	send_item_free(it);
	c->send_pending = true;
	if (start_batch(c, ops, n, &c->tag_send) != GRPC_CALL_OK) {
		c->send_pending = false;
		release_send_resources(c);
	}
}

static void call_enqueue(struct rpc_call *c, struct send_item *it)
{
	if (c->send_tail)
		c->send_tail->next = it;
	else
		c->send_head = it;
	c->send_tail = it;
	call_pump(c);
}

/* Queue the final status; marks the call answered (once). */
static void call_finish_v(struct rpc_call *c, grpc_status_code code,
			  const char *key, const char *value, const char *fmt,
			  va_list ap)
{
	if (c->answered) {
		log_error("rpc: %s answered twice (bug); ignoring the second",
			  c->method_name);
		return;
	}
	c->answered = true;
	c->final_code = code;
	if (!c->close_done) {
		struct send_item *it = calloc(1, sizeof(*it));
		char msg[OMBRA_ERRMSG_LEN];
		if (fmt)
			vsnprintf(msg, sizeof(msg), fmt, ap);
		else
			msg[0] = '\0';
		if (it) {
			it->code = code;
			it->details = strdup(msg);
			it->md_key = xstrdup(key);
			it->md_value = xstrdup(value);
			call_enqueue(c, it);
		}
	}
	call_pump(c); /* a held message, if the status could not be queued */
	call_maybe_free(c);
}

/* ------------------------------------------------------------ public API */

void rpc_call_reply(struct rpc_call *c, const ProtobufCMessage *resp)
{
	/* Hold the message until the status is queued: one batch. */
	c->holding = true;
	rpc_call_stream_send(c, resp);
	c->holding = false;
	rpc_call_finish(c, GRPC_STATUS_OK, NULL);
}

void rpc_call_fail(struct rpc_call *c, grpc_status_code code, const char *fmt,
		   ...)
{
	va_list ap;
	va_start(ap, fmt);
	call_finish_v(c, code, NULL, NULL, fmt, ap);
	va_end(ap);
}

void rpc_call_fail_md(struct rpc_call *c, grpc_status_code code,
		      const char *key, const char *value, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	call_finish_v(c, code, key, value, fmt, ap);
	va_end(ap);
}

void rpc_call_finish(struct rpc_call *c, grpc_status_code code, const char *fmt,
		     ...)
{
	va_list ap;
	va_start(ap, fmt);
	call_finish_v(c, code, NULL, NULL, fmt, ap);
	va_end(ap);
}

void rpc_call_stream_send(struct rpc_call *c, const ProtobufCMessage *msg)
{
	if (c->answered || c->close_done)
		return;
	struct send_item *it = calloc(1, sizeof(*it));
	if (it == NULL)
		return;
	it->message = rpc_pack(msg);
	if (it->message == NULL) {
		free(it);
		return;
	}
	call_enqueue(c, it);
}

bool rpc_call_cancelled(const struct rpc_call *c)
{
	return c->close_done && c->cancelled_flag;
}

void rpc_call_on_done(struct rpc_call *c, rpc_call_done_cb cb, void *data)
{
	c->done_cb = cb;
	c->done_data = data;
}

int64_t rpc_call_deadline_ms(const struct rpc_call *c)
{
	gpr_timespec deadline =
	    gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
	if (gpr_time_cmp(deadline, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0)
		return INT64_MAX;
	gpr_timespec left =
	    gpr_time_sub(deadline, gpr_now(GPR_CLOCK_MONOTONIC));
	return (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
}

const char *rpc_call_method(const struct rpc_call *c)
{
	return c->method_name;
}

/* ------------------------------------------------------------ call life */

static void call_maybe_free(struct rpc_call *c)
{
	if (!c->accepted) {
		/* request_call slot that never got a call (shutdown). */
		return;
	}
	if (c->pins > 0 || !c->close_done || c->send_pending || !c->answered ||
	    c->send_head != NULL)
		return;
	struct rpc_server *srv = c->srv;
	if (srv->observe) {
		double secs = (double)(now_ns() - c->start_ns) / 1e9;
		grpc_status_code code =
		    c->cancelled_flag ? GRPC_STATUS_CANCELLED : c->final_code;
		srv->observe(srv->observe_data, c->method_name, code, secs);
	}
	if (c->request)
		protobuf_c_message_free_unpacked(c->request, NULL);
	if (c->recv_buffer)
		grpc_byte_buffer_destroy(c->recv_buffer);
	grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->request_md);
	live_remove(srv, c);
	free(c);
}

static void on_close(struct rpc_tag *tag, bool ok)
{
	struct rpc_call *c =
	    (struct rpc_call *)((char *)tag -
				offsetof(struct rpc_call, tag_close));
	c->close_done = true;
	if (!ok)
		c->cancelled_flag = 1;
	c->pins++;
	fire_done(c);
	c->pins--;
	/* Anything still queued can no longer be delivered. */
	if (!c->send_pending) {
		while (c->send_head) {
			struct send_item *it = c->send_head;
			c->send_head = it->next;
			send_item_free(it);
		}
		c->send_tail = NULL;
	}
	call_maybe_free(c);
}

/* Decode the request of a call to a known method (c->recv_buffer, which
 * this consumes) and run its handler. */
static void call_dispatch(struct rpc_call *c)
{
	if (c->recv_buffer == NULL) {
		rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT,
			      "%s: the client sent no request message",
			      c->method_name);
		return;
	}
	const ProtobufCMethodDescriptor *m = c->entry->method;
	c->request = rpc_unpack(m->input, c->recv_buffer);
	grpc_byte_buffer_destroy(c->recv_buffer);
	c->recv_buffer = NULL;
	if (c->request == NULL) {
		rpc_call_fail(c, GRPC_STATUS_INVALID_ARGUMENT,
			      "%s: request is not a valid %s message "
			      "(malformed protobuf)",
			      c->method_name, m->input->name);
		return;
	}
	c->pins++;
	c->entry->handler(c, c->request, c->entry->data);
	c->pins--;
}

/* The method name (after the last '/') of a call to an unknown method. */
static void call_name_from_path(struct rpc_call *c)
{
	grpc_slice path = c->details.method;
	size_t plen = GRPC_SLICE_LENGTH(path);
	const char *pstr = (const char *)GRPC_SLICE_START_PTR(path);
	const char *slash = memrchr(pstr, '/', plen);
	size_t off = slash ? (size_t)(slash - pstr) + 1 : 0;
	size_t nlen = plen - off;
	if (nlen >= sizeof(c->method_name))
		nlen = sizeof(c->method_name) - 1;
	memcpy(c->method_name, pstr + off, nlen);
	c->method_name[nlen] = '\0';
	c->deadline = c->details.deadline;
}

static void on_new(struct rpc_tag *tag, bool ok)
{
	struct rpc_call *c =
	    (struct rpc_call *)((char *)tag -
				offsetof(struct rpc_call, tag_new));
	struct rpc_server *srv = c->srv;
	if (!ok || srv->stopping) {
		/* Server shutting down: the slot never became a call. */
		if (c->call)
			grpc_call_unref(c->call);
		if (c->recv_buffer)
			grpc_byte_buffer_destroy(c->recv_buffer);
		grpc_call_details_destroy(&c->details);
		grpc_metadata_array_destroy(&c->request_md);
		live_remove(srv, c);
		free(c);
		return;
	}
	server_request_one(srv, c->entry);
	c->accepted = true;
	c->start_ns = now_ns();
	if (c->entry == NULL)
		call_name_from_path(c);

	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled_flag;
	if (start_batch(c, &op, 1, &c->tag_close) != GRPC_CALL_OK) {
		c->close_done = true;
		c->cancelled_flag = 1;
	}

	if (c->entry == NULL) {
		grpc_slice path = c->details.method;
		rpc_call_fail(c, GRPC_STATUS_UNIMPLEMENTED,
			      "unknown method %.*s: this server does not "
			      "implement it",
			      (int)GRPC_SLICE_LENGTH(path),
			      (const char *)GRPC_SLICE_START_PTR(path));
		return;
	}
	if (c->entry->handler == NULL) {
		rpc_call_fail(c, GRPC_STATUS_UNIMPLEMENTED,
			      "unknown method %s: this server does not "
			      "implement it",
			      c->entry->path);
		return;
	}
	call_dispatch(c);
	call_maybe_free(c);
}

/* Open one slot for a new call: of method e, or of any unknown method when
 * e is NULL. */
static int server_request_one(struct rpc_server *srv,
			      const struct method_entry *e)
{
	struct rpc_call *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return OMBRA_ENOMEM;
	c->srv = srv;
	c->entry = e;
	rpc_tag_init(&c->tag_new, &srv->bridge, on_new);
	rpc_tag_init(&c->tag_close, &srv->bridge, on_close);
	rpc_tag_init(&c->tag_send, &srv->bridge, on_send);
	c->final_code = GRPC_STATUS_OK;
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->request_md);
	live_add(srv, c);
	grpc_call_error err;
	if (e != NULL) {
		snprintf(c->method_name, sizeof(c->method_name), "%s",
			 e->method->name);
		err = grpc_server_request_registered_call(
		    srv->server, e->registered, &c->call, &c->deadline,
		    &c->request_md, &c->recv_buffer, srv->bridge.cq,
		    srv->bridge.cq, &c->tag_new);
	} else {
		err = grpc_server_request_call(
		    srv->server, &c->call, &c->details, &c->request_md,
		    srv->bridge.cq, srv->bridge.cq, &c->tag_new);
	}
	if (err != GRPC_CALL_OK) {
		log_error("rpc: grpc_server_request%s_call failed (%d)",
			  e ? "_registered" : "", (int)err);
		grpc_call_details_destroy(&c->details);
		grpc_metadata_array_destroy(&c->request_md);
		live_remove(srv, c);
		free(c);
		return OMBRA_EINTERNAL;
	}
	return 0;
}

/* ------------------------------------------------------------ lifecycle */

int rpc_server_create(uv_loop_t *loop, const char *listen,
		      const struct rpc_tls *tls, struct rpc_server **out,
		      char *errmsg)
{
	struct rpc_server *srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		ombra_errmsg_printf(errmsg, "rpc_server_create: out of memory");
		return OMBRA_ENOMEM;
	}
	srv->loop = loop;
	srv->listen = strdup(listen);
	if (tls) {
		srv->tls_strings[0] = xstrdup(tls->ca_file);
		srv->tls_strings[1] = xstrdup(tls->cert_file);
		srv->tls_strings[2] = xstrdup(tls->key_file);
		srv->tls.ca_file = srv->tls_strings[0];
		srv->tls.cert_file = srv->tls_strings[1];
		srv->tls.key_file = srv->tls_strings[2];
	}
	rpc_library_ref();
	int rv =
	    rpc_bridge_init(&srv->bridge, loop, server_after_tags, srv, errmsg);
	if (rv != 0) {
		rpc_library_unref();
		free(srv->listen);
		for (int i = 0; i < 4; i++)
			free(srv->tls_strings[i]);
		free(srv);
		return rv;
	}
	/* gRPC turns SO_REUSEPORT on by default, which would let a second
	 * daemon bind the same port and silently share its traffic. */
	const grpc_channel_args *def = rpc_default_args();
	grpc_arg args[8];
	size_t n = 0;
	for (; n < def->num_args && n < 7; n++)
		args[n] = def->args[n];
	args[n].type = GRPC_ARG_INTEGER;
	args[n].key = GRPC_ARG_ALLOW_REUSEPORT;
	args[n].value.integer = 0;
	n++;
	grpc_channel_args server_args = {.num_args = n, .args = args};
	srv->server = grpc_server_create(&server_args, NULL);
	grpc_server_register_completion_queue(srv->server, srv->bridge.cq,
					      NULL);
	*out = srv;
	return 0;
}

int rpc_server_add_service(struct rpc_server *srv,
			   const ProtobufCServiceDescriptor *desc,
			   const rpc_handler_fn *handlers, void *data)
{
	size_t n = srv->n_methods + desc->n_methods;
	struct method_entry *m = realloc(srv->methods, n * sizeof(*m));
	if (m == NULL)
		return OMBRA_ENOMEM;
	srv->methods = m;
	for (unsigned i = 0; i < desc->n_methods; i++) {
		struct method_entry *e = &srv->methods[srv->n_methods + i];
		char path[256];
		if (rpc_method_path(desc, &desc->methods[i], path,
				    sizeof(path)) != 0)
			return OMBRA_EINVAL;
		e->path = strdup(path);
		e->svc = desc;
		e->method = &desc->methods[i];
		e->handler = handlers[i];
		e->data = data;
	}
	srv->n_methods = n;
	return 0;
}

void rpc_server_set_observer(struct rpc_server *srv, rpc_server_observe_fn fn,
			     void *data)
{
	srv->observe = fn;
	srv->observe_data = data;
}

int rpc_server_start(struct rpc_server *srv, int *port, char *errmsg)
{
	grpc_server_credentials *creds;
	int rv = rpc_creds_server(&srv->tls, &creds, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "rpc server %s", srv->listen);
		return rv;
	}
	int bound = grpc_server_add_http2_port(srv->server, srv->listen, creds);
	grpc_server_credentials_release(creds);
	if (bound == 0) {
		ombra_errmsg_printf(errmsg,
				    "rpc server: cannot listen on %s (address "
				    "in use or not local?)",
				    srv->listen);
		return OMBRA_EIO;
	}
	if (port)
		*port = bound;
	for (size_t m = 0; m < srv->n_methods; m++) {
		struct method_entry *e = &srv->methods[m];
		e->registered = grpc_server_register_method(
		    srv->server, e->path, NULL,
		    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		if (e->registered == NULL) {
			ombra_errmsg_printf(errmsg,
					    "rpc server: cannot register %s "
					    "(registered twice?)",
					    e->path);
			return OMBRA_EINTERNAL;
		}
	}
	grpc_server_start(srv->server);
	srv->started = true;
	rv = rpc_bridge_start(&srv->bridge, errmsg);
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "rpc server");
		return rv;
	}
	for (size_t m = 0; m <= srv->n_methods; m++) {
		const struct method_entry *e =
		    m < srv->n_methods ? &srv->methods[m] : NULL;
		int slots =
		    e ? SERVER_PENDING_PER_METHOD : SERVER_PENDING_UNKNOWN;
		for (int i = 0; i < slots; i++)
			if (server_request_one(srv, e) != 0) {
				ombra_errmsg_printf(
				    errmsg, "rpc server: cannot accept calls");
				return OMBRA_EINTERNAL;
			}
	}
	log_info("rpc: serving %zu methods on %s (%s)", srv->n_methods,
		 srv->listen, srv->tls.ca_file ? "mutual TLS" : "insecure");
	return 0;
}

static void on_shutdown(struct rpc_tag *tag, bool ok)
{
	struct rpc_server *srv =
	    (struct rpc_server *)((char *)tag -
				  offsetof(struct rpc_server, tag_shutdown));
	srv->shutdown_done = true;
}

/* Release the server's memory and the gRPC library reference, then run the
 * stop callback (last: it may free whatever owns the server). */
static void server_free(struct rpc_server *srv)
{
	rpc_server_stop_cb cb = srv->stop_cb;
	void *data = srv->stop_data;
	for (size_t i = 0; i < srv->n_methods; i++)
		free(srv->methods[i].path);
	free(srv->methods);
	for (int i = 0; i < 4; i++)
		free(srv->tls_strings[i]);
	free(srv->listen);
	free(srv);
	rpc_library_unref();
	if (cb)
		cb(NULL, data);
}

static void on_bridge_closed(uv_handle_t *h)
{
	struct rpc_bridge *b = h->data;
	server_free((struct rpc_server *)((char *)b -
					  offsetof(struct rpc_server, bridge)));
}

/* Once the shutdown tag and every call are done, tear down the queue. */
static void server_maybe_finish_stop(struct rpc_server *srv)
{
	if (!srv->stopping || !srv->shutdown_done || srv->n_live > 0)
		return;
	srv->stopping = false; /* run once */
	grpc_server_destroy(srv->server);
	/* n_live is 0 and the shutdown tag ran: no tag is left to handle. */
	rpc_bridge_close(&srv->bridge, on_bridge_closed);
}

static void server_after_tags(void *data)
{
	server_maybe_finish_stop(data);
}

void rpc_server_stop(struct rpc_server *srv, rpc_server_stop_cb cb, void *data)
{
	srv->stop_cb = cb;
	srv->stop_data = data;
	if (!srv->started) {
		grpc_server_destroy(srv->server);
		rpc_bridge_close(&srv->bridge, on_bridge_closed);
		return;
	}
	srv->stopping = true;
	rpc_tag_init(&srv->tag_shutdown, &srv->bridge, on_shutdown);
	grpc_server_shutdown_and_notify(srv->server, srv->bridge.cq,
					&srv->tag_shutdown);
	/* Cancelling every call makes each close complete; handlers that
	 * still owe an answer (waiting on Raft, say) answer when their work
	 * fails, and streaming handlers answer from their done callback. */
	grpc_server_cancel_all_calls(srv->server);
}
