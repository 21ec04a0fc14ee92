/* test_rpc.c: the RPC layer end to end over real loopback sockets: a server
 * on a libuv loop thread (lib/rpc_server.c) called by the blocking client
 * and the leader-following cluster client.
 *
 * The server side uses AdminService's descriptor with test handlers:
 *   GetClusterStatus  answers at once, echoing a fixed member id;
 *   AddRegion         fails UNAVAILABLE with an "ombra-leader" hint on the
 *                     "follower" server, answers OK on the "leader";
 *   ListRegions       never answers until the client's deadline passed
 *                     (checks DEADLINE_EXCEEDED and a late answer);
 *   Watch             streams N events, then ends OK, or streams until
 *                     cancelled when from_index is 0.
 * The asynchronous client (rpc_channel_*) is driven from a second loop in
 * the test's own thread against the same server.
 * A test fails by assertion; a hang is caught by the harness timeout. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "admin.pb-c.h"
#include "rpc.h"
#include "volume.pb-c.h"

struct test_server {
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t stop;
	struct rpc_server *srv;
	int port;
	uint64_t member_id;
	char leader_hint[64];	  /* "" = this server is the leader */
	struct rpc_call *late;	  /* ListRegions call held until a timer */
	int64_t late_deadline_ms; /* its rpc_call_deadline_ms() on arrival */
	uv_timer_t late_timer;
	struct rpc_call *watch; /* endless Watch stream */
	uv_timer_t watch_timer;
	uint64_t watch_sent;
	int watch_done_calls;
	bool watch_silent; /* the endless Watch sends nothing */
};

static void h_status(struct rpc_call *call, const ProtobufCMessage *req,
		     void *data)
{
	struct test_server *ts = data;
	Ombra__V1__GetClusterStatusResponse resp =
	    OMBRA__V1__GET_CLUSTER_STATUS_RESPONSE__INIT;
	resp.member_id = ts->member_id;
	resp.state = "leader";
	rpc_call_reply(call, &resp.base);
}

static void h_add_region(struct rpc_call *call, const ProtobufCMessage *req,
			 void *data)
{
	struct test_server *ts = data;
	const Ombra__V1__AddRegionRequest *r =
	    (const Ombra__V1__AddRegionRequest *)req;
	if (ts->leader_hint[0]) {
		rpc_call_fail_md(call, GRPC_STATUS_UNAVAILABLE,
				 RPC_LEADER_MD_KEY, ts->leader_hint,
				 "not the leader; leader is at %s",
				 ts->leader_hint);
		return;
	}
	if (r->name[0] == '\0') {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "region name is empty");
		return;
	}
	Ombra__V1__Region region = OMBRA__V1__REGION__INIT;
	region.name = r->name;
	Ombra__V1__AddRegionResponse resp =
	    OMBRA__V1__ADD_REGION_RESPONSE__INIT;
	resp.region = &region;
	rpc_call_reply(call, &resp.base);
}

static void on_late_timer(uv_timer_t *t)
{
	struct test_server *ts = t->data;
	/* The client gave up long ago: answering must be harmless. */
	assert_true(rpc_call_cancelled(ts->late));
	Ombra__V1__ListRegionsResponse resp =
	    OMBRA__V1__LIST_REGIONS_RESPONSE__INIT;
	rpc_call_reply(ts->late, &resp.base);
	ts->late = NULL;
}

static void h_list_regions(struct rpc_call *call, const ProtobufCMessage *req,
			   void *data)
{
	struct test_server *ts = data;
	/* Recorded, not asserted: an assertion on this thread would end the
	 * test run without a report. */
	ts->late_deadline_ms = rpc_call_deadline_ms(call);
	ts->late = call;
	uv_timer_start(&ts->late_timer, on_late_timer, 600, 0);
}

static void on_watch_timer(uv_timer_t *t)
{
	struct test_server *ts = t->data;
	if (ts->watch == NULL)
		return;
	Ombra__V1__WatchEvent ev = OMBRA__V1__WATCH_EVENT__INIT;
	ev.index = ++ts->watch_sent;
	ev.kind = "volume";
	ev.name = "v";
	rpc_call_stream_send(ts->watch, &ev.base);
}

static void on_watch_done(struct rpc_call *call, void *data)
{
	struct test_server *ts = data;
	ts->watch_done_calls++;
	if (ts->watch == call) {
		uv_timer_stop(&ts->watch_timer);
		ts->watch = NULL;
		rpc_call_finish(call, GRPC_STATUS_CANCELLED,
				"client went away");
	}
}

static void h_watch(struct rpc_call *call, const ProtobufCMessage *req,
		    void *data)
{
	struct test_server *ts = data;
	const Ombra__V1__WatchRequest *w = (const Ombra__V1__WatchRequest *)req;
	if (w->from_index > 0) {
		for (uint64_t i = 1; i <= w->from_index; i++) {
			Ombra__V1__WatchEvent ev = OMBRA__V1__WATCH_EVENT__INIT;
			ev.index = i;
			ev.kind = "region";
			ev.name = "r1";
			rpc_call_stream_send(call, &ev.base);
		}
		rpc_call_finish(call, GRPC_STATUS_OK, NULL);
		return;
	}
	ts->watch = call;
	rpc_call_on_done(call, on_watch_done, ts);
	if (!ts->watch_silent)
		uv_timer_start(&ts->watch_timer, on_watch_timer, 5, 5);
}

static void server_stopped(struct rpc_server *srv, void *data)
{
	struct test_server *ts = data;
	uv_close((uv_handle_t *)&ts->stop, NULL);
	uv_close((uv_handle_t *)&ts->late_timer, NULL);
	uv_close((uv_handle_t *)&ts->watch_timer, NULL);
}

static void on_stop(uv_async_t *a)
{
	struct test_server *ts = a->data;
	rpc_server_stop(ts->srv, server_stopped, ts);
}

static void loop_main(void *arg)
{
	struct test_server *ts = arg;
	uv_run(&ts->loop, UV_RUN_DEFAULT);
}

static void server_start(struct test_server *ts, uint64_t id, const char *hint)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	memset(ts, 0, sizeof(*ts));
	ts->member_id = id;
	snprintf(ts->leader_hint, sizeof(ts->leader_hint), "%s", hint);
	assert_int_equal(uv_loop_init(&ts->loop), 0);
	uv_async_init(&ts->loop, &ts->stop, on_stop);
	ts->stop.data = ts;
	uv_timer_init(&ts->loop, &ts->late_timer);
	ts->late_timer.data = ts;
	uv_timer_init(&ts->loop, &ts->watch_timer);
	ts->watch_timer.data = ts;

	const ProtobufCServiceDescriptor *d =
	    &ombra__v1__admin_service__descriptor;
	rpc_handler_fn handlers[32] = {0};
	assert_true(d->n_methods <= 32);
	for (unsigned i = 0; i < d->n_methods; i++) {
		const char *n = d->methods[i].name;
		if (strcmp(n, "GetClusterStatus") == 0)
			handlers[i] = h_status;
		else if (strcmp(n, "AddRegion") == 0)
			handlers[i] = h_add_region;
		else if (strcmp(n, "ListRegions") == 0)
			handlers[i] = h_list_regions;
		else if (strcmp(n, "Watch") == 0)
			handlers[i] = h_watch;
	}
	assert_int_equal(
	    rpc_server_create(&ts->loop, "127.0.0.1:0", NULL, &ts->srv, errmsg),
	    0);
	assert_int_equal(rpc_server_add_service(ts->srv, d, handlers, ts), 0);
	assert_int_equal(rpc_server_start(ts->srv, &ts->port, errmsg), 0);
	assert_true(ts->port > 0);
	assert_int_equal(uv_thread_create(&ts->thread, loop_main, ts), 0);
}

static void server_stop(struct test_server *ts)
{
	uv_async_send(&ts->stop);
	uv_thread_join(&ts->thread);
	assert_int_equal(uv_loop_close(&ts->loop), 0);
}

static struct rpc_client *client_for(struct test_server *ts)
{
	char target[64], errmsg[OMBRA_ERRMSG_LEN];
	struct rpc_client *c;
	snprintf(target, sizeof(target), "127.0.0.1:%d", ts->port);
	assert_int_equal(rpc_client_create(target, NULL, &c, errmsg), 0);
	return c;
}

static void test_unary_ok_and_errors(void **state)
{
	struct test_server ts;
	server_start(&ts, 7, "");
	struct rpc_client *c = client_for(&ts);
	struct rpc_status st;
	ProtobufCMessage *resp;

	Ombra__V1__GetClusterStatusRequest req =
	    OMBRA__V1__GET_CLUSTER_STATUS_REQUEST__INIT;
	assert_int_equal(
	    rpc_client_unary(c, &ombra__v1__admin_service__descriptor,
			     "GetClusterStatus", &req.base, &resp, 2000, &st),
	    0);
	assert_int_equal(st.code, GRPC_STATUS_OK);
	assert_int_equal(
	    ((Ombra__V1__GetClusterStatusResponse *)resp)->member_id, 7);
	assert_string_equal(
	    ((Ombra__V1__GetClusterStatusResponse *)resp)->state, "leader");
	protobuf_c_message_free_unpacked(resp, NULL);

	Ombra__V1__AddRegionRequest ar = OMBRA__V1__ADD_REGION_REQUEST__INIT;
	ar.name = "";
	assert_int_equal(
	    rpc_client_unary(c, &ombra__v1__admin_service__descriptor,
			     "AddRegion", &ar.base, &resp, 2000, &st),
	    OMBRA_EINVAL);
	assert_int_equal(st.code, GRPC_STATUS_INVALID_ARGUMENT);
	assert_string_equal(st.message, "region name is empty");
	assert_null(resp);

	/* A method the server does not serve (VolumeService). */
	Ombra__V1__ReadRequest rr = OMBRA__V1__READ_REQUEST__INIT;
	rpc_client_unary(c, &ombra__v1__volume_service__descriptor, "Read",
			 &rr.base, &resp, 2000, &st);
	assert_int_equal(st.code, GRPC_STATUS_UNIMPLEMENTED);
	assert_non_null(strstr(st.message, "/ombra.v1.VolumeService/Read"));

	/* A method the server registered without a handler. */
	Ombra__V1__ListNodesRequest ln = OMBRA__V1__LIST_NODES_REQUEST__INIT;
	rpc_client_unary(c, &ombra__v1__admin_service__descriptor, "ListNodes",
			 &ln.base, &resp, 2000, &st);
	assert_int_equal(st.code, GRPC_STATUS_UNIMPLEMENTED);

	/* A name the descriptor does not have fails locally. */
	assert_int_equal(
	    rpc_client_unary(c, &ombra__v1__admin_service__descriptor,
			     "NoSuchMethod", &req.base, &resp, 2000, &st),
	    OMBRA_EUNIMPL);

	/* The server still serves after all that. */
	assert_int_equal(
	    rpc_client_unary(c, &ombra__v1__admin_service__descriptor,
			     "GetClusterStatus", &req.base, &resp, 2000, &st),
	    0);
	protobuf_c_message_free_unpacked(resp, NULL);
	rpc_client_destroy(c);
	server_stop(&ts);
}

static void test_deadline(void **state)
{
	struct test_server ts;
	server_start(&ts, 1, "");
	struct rpc_client *c = client_for(&ts);
	struct rpc_status st;
	ProtobufCMessage *resp;
	Ombra__V1__ListRegionsRequest req =
	    OMBRA__V1__LIST_REGIONS_REQUEST__INIT;
	assert_int_equal(
	    rpc_client_unary(c, &ombra__v1__admin_service__descriptor,
			     "ListRegions", &req.base, &resp, 200, &st),
	    OMBRA_ETIMEDOUT);
	assert_int_equal(st.code, GRPC_STATUS_DEADLINE_EXCEEDED);
	assert_true(ts.late_deadline_ms > 0 && ts.late_deadline_ms <= 200);
	rpc_client_destroy(c);
	/* Let the late answer happen before stopping. */
	uv_sleep(800);
	server_stop(&ts);
}

static void test_stream(void **state)
{
	struct test_server ts;
	server_start(&ts, 1, "");
	struct rpc_client *c = client_for(&ts);
	struct rpc_status st;
	struct rpc_stream *s;
	ProtobufCMessage *msg;

	Ombra__V1__WatchRequest req = OMBRA__V1__WATCH_REQUEST__INIT;
	req.from_index = 50;
	assert_int_equal(
	    rpc_client_stream(c, &ombra__v1__admin_service__descriptor, "Watch",
			      &req.base, 5000, &s, &st),
	    0);
	uint64_t want = 1;
	int r;
	while ((r = rpc_stream_next(s, &msg, &st)) == 1) {
		assert_int_equal(((Ombra__V1__WatchEvent *)msg)->index, want);
		want++;
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	assert_int_equal(r, 0);
	assert_int_equal(st.code, GRPC_STATUS_OK);
	assert_int_equal(want, 51);
	rpc_stream_close(s);

	/* Endless stream: read a few, then cancel; the server must see it. */
	req.from_index = 0;
	assert_int_equal(
	    rpc_client_stream(c, &ombra__v1__admin_service__descriptor, "Watch",
			      &req.base, 5000, &s, &st),
	    0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(rpc_stream_next(s, &msg, &st), 1);
		protobuf_c_message_free_unpacked(msg, NULL);
	}
	rpc_stream_close(s);
	for (int i = 0; i < 200 && ts.watch_done_calls == 0; i++)
		uv_sleep(10);
	rpc_client_destroy(c);
	server_stop(&ts);
	assert_int_equal(ts.watch_done_calls, 1);
}

static void *cancel_later(void *arg)
{
	uv_sleep(100);
	rpc_stream_cancel(arg);
	return NULL;
}

/* A stream whose server has sent nothing yet (no initial metadata either)
 * is open at once and can be cancelled from another thread (the proxy's
 * Watch thread at shutdown). */
static void test_stream_cancel_silent(void **state)
{
	struct test_server ts;
	server_start(&ts, 1, "");
	ts.watch_silent = true;
	struct rpc_client *c = client_for(&ts);
	struct rpc_status st;
	struct rpc_stream *s;
	ProtobufCMessage *msg;
	pthread_t t;

	Ombra__V1__WatchRequest req = OMBRA__V1__WATCH_REQUEST__INIT;
	uint64_t t0 = uv_hrtime();
	assert_int_equal(
	    rpc_client_stream(c, &ombra__v1__admin_service__descriptor, "Watch",
			      &req.base, 20000, &s, &st),
	    0);
	assert_true(uv_hrtime() - t0 < 2000000000ull);
	assert_int_equal(pthread_create(&t, NULL, cancel_later, s), 0);
	assert_int_not_equal(rpc_stream_next(s, &msg, &st), 1);
	assert_int_equal(st.code, GRPC_STATUS_CANCELLED);
	assert_true(uv_hrtime() - t0 < 5000000000ull);
	pthread_join(t, NULL);
	rpc_stream_close(s);
	rpc_client_destroy(c);
	server_stop(&ts);
}

static void test_cluster_follows_leader(void **state)
{
	struct test_server leader, follower;
	server_start(&leader, 2, "");
	char hint[64];
	snprintf(hint, sizeof(hint), "127.0.0.1:%d", leader.port);
	server_start(&follower, 3, hint);

	/* Endpoint list: a dead port first, then only the follower. */
	char eps[128], errmsg[OMBRA_ERRMSG_LEN];
	snprintf(eps, sizeof(eps), "127.0.0.1:1,127.0.0.1:%d", follower.port);
	struct rpc_cluster *cl;
	assert_int_equal(rpc_cluster_create(eps, NULL, &cl, errmsg), 0);
	Ombra__V1__AddRegionRequest ar = OMBRA__V1__ADD_REGION_REQUEST__INIT;
	ar.name = "r1";
	ProtobufCMessage *resp;
	struct rpc_status st;
	assert_int_equal(
	    rpc_cluster_unary(cl, &ombra__v1__admin_service__descriptor,
			      "AddRegion", &ar.base, &resp, 5000, &st),
	    0);
	assert_string_equal(
	    ((Ombra__V1__AddRegionResponse *)resp)->region->name, "r1");
	protobuf_c_message_free_unpacked(resp, NULL);
	rpc_cluster_destroy(cl);

	/* Nothing listening: a clear UNAVAILABLE within the budget. */
	assert_int_equal(rpc_cluster_create("127.0.0.1:1", NULL, &cl, errmsg),
			 0);
	assert_int_not_equal(
	    rpc_cluster_unary(cl, &ombra__v1__admin_service__descriptor,
			      "AddRegion", &ar.base, &resp, 300, &st),
	    0);
	assert_int_equal(st.code, GRPC_STATUS_UNAVAILABLE);
	assert_non_null(strstr(st.message, "no metad answered"));
	rpc_cluster_destroy(cl);

	/* Malformed endpoint lists are refused up front. */
	assert_int_equal(rpc_cluster_create("nohostport", NULL, &cl, errmsg),
			 OMBRA_EINVAL);
	assert_int_equal(rpc_cluster_create("", NULL, &cl, errmsg),
			 OMBRA_EINVAL);

	server_stop(&follower);
	server_stop(&leader);
}

/* A second server on a port already in use must fail, not share it. */
static void test_port_in_use(void **state)
{
	struct test_server ts;
	server_start(&ts, 1, "");
	uv_loop_t loop;
	struct rpc_server *srv;
	char listen[64], errmsg[OMBRA_ERRMSG_LEN];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", ts.port);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(rpc_server_create(&loop, listen, NULL, &srv, errmsg),
			 0);
	assert_int_equal(rpc_server_start(srv, NULL, errmsg), OMBRA_EIO);
	assert_non_null(strstr(errmsg, "cannot listen"));
	rpc_server_stop(srv, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT); /* the server is freed on its loop */
	assert_int_equal(uv_loop_close(&loop), 0);
	server_stop(&ts);
}

/* ---- asynchronous client (rpc_channel_*) on a loop in this thread */

struct reply_log {
	int calls;
	grpc_status_code codes[8];
	char messages[8][128];
	uint64_t member_id;
	bool closed;
};

static void on_reply(void *data, const struct rpc_status *st,
		     const ProtobufCMessage *resp)
{
	struct reply_log *log = data;
	assert_true(log->calls < 8);
	log->codes[log->calls] = st->code;
	snprintf(log->messages[log->calls], 128, "%.100s", st->message);
	if (st->code == GRPC_STATUS_OK &&
	    resp->descriptor ==
		&ombra__v1__get_cluster_status_response__descriptor)
		log->member_id =
		    ((const Ombra__V1__GetClusterStatusResponse *)resp)
			->member_id;
	else if (st->code == GRPC_STATUS_OK)
		assert_non_null(resp);
	else
		assert_null(resp);
	log->calls++;
}

static void on_closed(void *data)
{
	((struct reply_log *)data)->closed = true;
}

static void run_until(uv_loop_t *loop, const int *calls, int want)
{
	for (int i = 0; i < 500 && *calls < want; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		uv_sleep(10);
	}
	assert_int_equal(*calls, want);
}

static void test_channel_async(void **state)
{
	struct test_server ts;
	server_start(&ts, 9, "");
	uv_loop_t loop;
	struct rpc_channel *ch;
	char target[64], errmsg[OMBRA_ERRMSG_LEN];
	const ProtobufCServiceDescriptor *d =
	    &ombra__v1__admin_service__descriptor;
	struct reply_log log = {0};
	struct rpc_pending *p;

	assert_int_equal(uv_loop_init(&loop), 0);
	snprintf(target, sizeof(target), "127.0.0.1:%d", ts.port);
	assert_int_equal(rpc_channel_create(&loop, target, NULL, &ch, errmsg),
			 0);

	/* OK, a server error, a deadline; an unknown name fails at once. */
	Ombra__V1__GetClusterStatusRequest sreq =
	    OMBRA__V1__GET_CLUSTER_STATUS_REQUEST__INIT;
	Ombra__V1__AddRegionRequest areq = OMBRA__V1__ADD_REGION_REQUEST__INIT;
	Ombra__V1__ListRegionsRequest lreq =
	    OMBRA__V1__LIST_REGIONS_REQUEST__INIT;
	areq.name = "";
	assert_int_equal(rpc_channel_unary(ch, d, "GetClusterStatus",
					   &sreq.base, 2000, on_reply, &log,
					   NULL),
			 0);
	assert_int_equal(rpc_channel_unary(ch, d, "AddRegion", &areq.base, 2000,
					   on_reply, &log, NULL),
			 0);
	assert_int_equal(rpc_channel_unary(ch, d, "ListRegions", &lreq.base,
					   200, on_reply, &log, NULL),
			 0);
	assert_int_equal(rpc_channel_unary(ch, d, "NoSuchMethod", &sreq.base,
					   2000, on_reply, &log, NULL),
			 OMBRA_EUNIMPL);
	assert_int_equal(log.calls, 0); /* never from inside the call */
	run_until(&loop, &log.calls, 3);
	int ok = 0, invalid = 0, deadline = 0;
	for (int i = 0; i < 3; i++) {
		ok += log.codes[i] == GRPC_STATUS_OK;
		invalid += log.codes[i] == GRPC_STATUS_INVALID_ARGUMENT;
		deadline += log.codes[i] == GRPC_STATUS_DEADLINE_EXCEEDED;
	}
	assert_int_equal(ok, 1);
	assert_int_equal(invalid, 1);
	assert_int_equal(deadline, 1);
	assert_int_equal(log.member_id, 9);
	uv_sleep(700); /* the server answers the late call */

	/* Explicit cancel: the callback says CANCELLED. */
	assert_int_equal(rpc_channel_unary(ch, d, "ListRegions", &lreq.base,
					   5000, on_reply, &log, &p),
			 0);
	rpc_pending_cancel(p);
	run_until(&loop, &log.calls, 4);
	assert_int_equal(log.codes[3], GRPC_STATUS_CANCELLED);
	uv_sleep(700);

	/* Closing with a call in flight cancels it, then closes. */
	assert_int_equal(rpc_channel_unary(ch, d, "ListRegions", &lreq.base,
					   5000, on_reply, &log, NULL),
			 0);
	rpc_channel_close(ch, on_closed, &log);
	run_until(&loop, &log.calls, 5);
	assert_int_equal(log.codes[4], GRPC_STATUS_CANCELLED);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_true(log.closed);
	assert_int_equal(uv_loop_close(&loop), 0);
	uv_sleep(700);
	server_stop(&ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unary_ok_and_errors),
	    cmocka_unit_test(test_deadline),
	    cmocka_unit_test(test_stream),
	    cmocka_unit_test(test_stream_cancel_silent),
	    cmocka_unit_test(test_cluster_follows_leader),
	    cmocka_unit_test(test_port_in_use),
	    cmocka_unit_test(test_channel_async),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
