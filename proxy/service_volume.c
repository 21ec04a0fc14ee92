/* service_volume.c: the gRPC VolumeService served by ombra-proxy.
 *
 * Volume management (CreateVolume, GetVolume, ListVolumes, DeleteVolume,
 * ResizeVolume) and GetVolumeShardingInfo are forwarded unchanged to
 * metad's AdminService (GetShardMap for the last) in the thread pool, and
 * metad's status is passed through.  Read, Write, Flush and Trim run on
 * the data path through the engine (proxy_io.h) after validating their
 * arguments.  PrefetchData, SetPrefetchHint and GetPrefetchStats are
 * validated here and served by the prefetch engine (prefetch_rpc.c).
 *
 * Failure: every call is answered exactly once, with OK or a status whose
 * message says what was wrong ("offset X + length Y beyond volume size Z",
 * "volume x does not exist", the node's or metad's message). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "log.h"
#include "prefetch.h"
#include "proxy.h"
#include "volume.pb-c.h"

#define FORWARD_TIMEOUT_MS 20000
/* GetVolumeShardingInfo: metad's limit per call. */
#define SHARDING_MAX 65536

/* ------------------------------------------------------------ forwarding */

struct fwd {
	struct proxy *p;
	struct rpc_call *call;
	char *refresh; /* volume to refetch after success, or NULL */
	bool deleted;  /* ... or to drop: it was deleted */
};

static void fwd_done(void *arg, const struct rpc_status *st,
		     const ProtobufCMessage *resp)
{
	struct fwd *f = arg;

	if (st->code == GRPC_STATUS_OK) {
		if (f->refresh != NULL && f->deleted)
			volcache_forget(f->p->vc, f->refresh);
		else if (f->refresh != NULL)
			volcache_on_event(f->p->vc, "volume", f->refresh,
					  false);
		rpc_call_reply(f->call, resp);
	} else {
		rpc_call_fail(f->call, st->code, "%s", st->message);
	}
	free(f->refresh);
	free(f);
}

/* Forward req (owned by the call, valid until it is answered) to metad's
 * AdminService.method; refresh: volume name to refetch on success. */
static void forward(struct proxy *p, struct rpc_call *call, const char *method,
		    const ProtobufCMessage *req, const char *refresh)
{
	struct fwd *f = calloc(1, sizeof(*f));
	int64_t left;

	if (f == NULL ||
	    (refresh != NULL && (f->refresh = strdup(refresh)) == NULL)) {
		free(f);
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	f->p = p;
	f->call = call;
	f->deleted = strcmp(method, "DeleteVolume") == 0;
	/* No point in trying longer than the client waits. */
	left = rpc_call_deadline_ms(call);
	if (left < 100)
		left = 100;
	mdc_call(p->mdc, method, req,
		 left < FORWARD_TIMEOUT_MS ? (int)left : FORWARD_TIMEOUT_MS,
		 fwd_done, f);
}

static void h_create(struct rpc_call *call, const ProtobufCMessage *req,
		     void *data)
{
	forward(data, call, "CreateVolume", req, NULL);
}

static void h_get(struct rpc_call *call, const ProtobufCMessage *req,
		  void *data)
{
	forward(data, call, "GetVolume", req, NULL);
}

static void h_list(struct rpc_call *call, const ProtobufCMessage *req,
		   void *data)
{
	forward(data, call, "ListVolumes", req, NULL);
}

static void h_delete(struct rpc_call *call, const ProtobufCMessage *req,
		     void *data)
{
	const Ombra__V1__DeleteVolumeRequest *r =
	    (const Ombra__V1__DeleteVolumeRequest *)req;

	forward(data, call, "DeleteVolume", req, r->name);
}

static void h_resize(struct rpc_call *call, const ProtobufCMessage *req,
		     void *data)
{
	const Ombra__V1__ResizeVolumeRequest *r =
	    (const Ombra__V1__ResizeVolumeRequest *)req;

	forward(data, call, "ResizeVolume", req, r->name);
}

static void h_sharding(struct rpc_call *call, const ProtobufCMessage *req,
		       void *data)
{
	const Ombra__V1__GetVolumeShardingInfoRequest *r =
	    (const Ombra__V1__GetVolumeShardingInfoRequest *)req;

	if ((r->volume == NULL || r->volume[0] == '\0') && r->volume_id == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume name is required");
		return;
	}
	if (r->max_segments > SHARDING_MAX) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "max_segments %u is above the limit of %u per "
			      "call; page with first_segment/next_segment",
			      r->max_segments, SHARDING_MAX);
		return;
	}
	forward(data, call, "GetShardMap", req, NULL);
}

/* ------------------------------------------------------------ data path */

enum dp_op { DP_READ, DP_WRITE, DP_FLUSH, DP_TRIM };

/* One data-path call: the volume is opened first, then the engine runs. */
struct dp {
	struct proxy *p;
	struct rpc_call *call;
	enum dp_op op;
	uint64_t off, len;
	const uint8_t *wdata;
	bool fua;
	const char *request_id;	   /* owned by the call's request */
	uint8_t *buf;		   /* reads */
	struct proxy_read_opts ro; /* reads: consistency */
	struct proxy_volume *vol;
	bool refreshed; /* the map was refetched once for a range check */
};

static void dp_free(struct dp *d)
{
	if (d->vol != NULL)
		proxy_volume_release(d->vol);
	free(d->buf);
	free(d);
}

static void dp_io_done(void *arg, const struct proxy_status *st,
		       uint64_t version)
{
	struct dp *d = arg;

	if (st->code != GRPC_STATUS_OK) {
		rpc_call_fail(d->call, st->code, "%s", st->message);
		dp_free(d);
		return;
	}
	switch (d->op) {
	case DP_READ: {
		Ombra__V1__ReadResponse r = OMBRA__V1__READ_RESPONSE__INIT;

		r.data.data = d->buf;
		r.data.len = d->len;
		r.version = version;
		rpc_call_reply(d->call, &r.base);
		break;
	}
	case DP_WRITE: {
		Ombra__V1__WriteResponse r = OMBRA__V1__WRITE_RESPONSE__INIT;

		r.version_token = version;
		rpc_call_reply(d->call, &r.base);
		break;
	}
	case DP_FLUSH: {
		Ombra__V1__FlushResponse r = OMBRA__V1__FLUSH_RESPONSE__INIT;

		rpc_call_reply(d->call, &r.base);
		break;
	}
	case DP_TRIM: {
		Ombra__V1__TrimResponse r = OMBRA__V1__TRIM_RESPONSE__INIT;

		rpc_call_reply(d->call, &r.base);
		break;
	}
	}
	dp_free(d);
}

static void dp_run(struct dp *d);

/* volcache_refresh callback: the map was refetched after a range check
 * failed on the cached size (the volume may have grown since). */
static void dp_refreshed(void *arg, const struct proxy_status *st,
			 struct proxy_volume *vol)
{
	struct dp *d = arg;

	(void)vol;
	if (st->code != GRPC_STATUS_OK) {
		rpc_call_fail(d->call, st->code, "%s", st->message);
		dp_free(d);
		return;
	}
	dp_run(d);
}

static bool dp_in_range(const struct dp *d)
{
	uint64_t size = proxy_volume_size(d->vol);

	return d->off <= size && d->len <= size - d->off;
}

static void dp_run(struct dp *d)
{
	struct proxy_volume *vol = d->vol;

	if (d->op != DP_FLUSH && !dp_in_range(d)) {
		if (!d->refreshed) {
			d->refreshed = true;
			volcache_refresh(vol, dp_refreshed, d);
			return;
		}
		rpc_call_fail(d->call, GRPC_STATUS_INVALID_ARGUMENT,
			      "offset %" PRIu64 " + length %" PRIu64
			      " beyond volume size %" PRIu64,
			      d->off, d->len, proxy_volume_size(vol));
		dp_free(d);
		return;
	}
	switch (d->op) {
	case DP_READ:
		d->buf = malloc(d->len ? d->len : 1);
		if (d->buf == NULL) {
			rpc_call_fail(d->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
				      "out of memory for a read of %" PRIu64
				      " bytes",
				      d->len);
			dp_free(d);
			return;
		}
		proxy_io_read_opts(vol, d->off, d->len, d->buf, &d->ro,
				   dp_io_done, d);
		break;
	case DP_WRITE:
		proxy_io_write(vol, d->off, d->len, d->wdata, d->fua,
			       d->request_id, dp_io_done, d);
		break;
	case DP_FLUSH:
		proxy_io_flush(vol, dp_io_done, d);
		break;
	case DP_TRIM:
		proxy_io_zero(vol, d->off, d->len, false, d->request_id,
			      dp_io_done, d);
		break;
	}
}

static void dp_opened(void *arg, const struct proxy_status *st,
		      struct proxy_volume *vol)
{
	struct dp *d = arg;

	if (st->code != GRPC_STATUS_OK) {
		rpc_call_fail(d->call, st->code, "%s", st->message);
		dp_free(d);
		return;
	}
	d->vol = vol;
	dp_run(d);
}

/* Checks shared by every data-path call; starts the open on success.
 * ro: reads' consistency (copied), NULL otherwise. */
static void dp_start(struct proxy *p, struct rpc_call *call, enum dp_op op,
		     const char *volume, uint64_t off, uint64_t len,
		     const uint8_t *wdata, bool fua, const char *request_id,
		     const struct proxy_read_opts *ro)
{
	struct dp *d;

	if (volume == NULL || volume[0] == '\0') {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume name is required");
		return;
	}
	if (len > PROXY_IO_MAX_BYTES) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "length %" PRIu64 " is above the limit of %u "
			      "bytes per request",
			      len, PROXY_IO_MAX_BYTES);
		return;
	}
	if (off > UINT64_MAX - len) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "offset %" PRIu64 " + length %" PRIu64
			      " overflows",
			      off, len);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	d->p = p;
	d->call = call;
	d->op = op;
	d->off = off;
	d->len = len;
	d->wdata = wdata;
	d->fua = fua;
	d->request_id = request_id;
	if (ro != NULL)
		d->ro = *ro;
	proxy_volume_open(p, volume, dp_opened, d);
}

static void h_read(struct rpc_call *call, const ProtobufCMessage *req,
		   void *data)
{
	const Ombra__V1__ReadRequest *r = (const Ombra__V1__ReadRequest *)req;
	struct proxy_read_opts ro = {
	    .consistency = (int)r->consistency,
	    .max_staleness_ms = r->max_staleness_ms,
	    .min_version = r->min_version,
	};
	char msg[OMBRA_ERRMSG_LEN];

	/* The level decides which copies may answer (proxy_io.h). */
	if (!proxy_read_opts_check(&ro, msg, sizeof(msg))) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		return;
	}
	dp_start(data, call, DP_READ, r->volume, r->offset_bytes,
		 r->length_bytes, NULL, false, NULL, &ro);
}

static void h_write(struct rpc_call *call, const ProtobufCMessage *req,
		    void *data)
{
	const Ombra__V1__WriteRequest *r = (const Ombra__V1__WriteRequest *)req;

	if (r->volume != NULL && r->volume[0] != '\0' && r->data.len == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "write data is empty");
		return;
	}
	dp_start(data, call, DP_WRITE, r->volume, r->offset_bytes, r->data.len,
		 r->data.data, r->fua, r->request_id, NULL);
}

static void h_flush(struct rpc_call *call, const ProtobufCMessage *req,
		    void *data)
{
	const Ombra__V1__FlushRequest *r = (const Ombra__V1__FlushRequest *)req;

	dp_start(data, call, DP_FLUSH, r->volume, 0, 0, NULL, false, NULL,
		 NULL);
}

static void h_trim(struct rpc_call *call, const ProtobufCMessage *req,
		   void *data)
{
	const Ombra__V1__TrimRequest *r = (const Ombra__V1__TrimRequest *)req;

	dp_start(data, call, DP_TRIM, r->volume, r->offset_bytes,
		 r->length_bytes, NULL, false, r->request_id, NULL);
}

/* ------------------------------------------------------------ prefetch */

static bool ranges_ok(struct rpc_call *call, Ombra__V1__ByteRange **ranges,
		      size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ranges[i]->length_bytes == 0) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
				      "range %zu has length 0", i);
			return false;
		}
		if (ranges[i]->offset_bytes >
		    UINT64_MAX - ranges[i]->length_bytes) {
			rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
				      "range %zu overflows", i);
			return false;
		}
	}
	return true;
}

static void h_prefetch(struct rpc_call *call, const ProtobufCMessage *req,
		       void *data)
{
	const Ombra__V1__PrefetchDataRequest *r =
	    (const Ombra__V1__PrefetchDataRequest *)req;

	if (r->volume == NULL || r->volume[0] == '\0') {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume name is required");
		return;
	}
	if (r->n_ranges == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "at least one range is required");
		return;
	}
	if (!ranges_ok(call, r->ranges, r->n_ranges))
		return;
	prefetch_rpc_data(data, call, r);
}

static void h_hint(struct rpc_call *call, const ProtobufCMessage *req,
		   void *data)
{
	const Ombra__V1__SetPrefetchHintRequest *r =
	    (const Ombra__V1__SetPrefetchHintRequest *)req;

	if (r->volume == NULL || r->volume[0] == '\0') {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "volume name is required");
		return;
	}
	if (protobuf_c_enum_descriptor_get_value(
		&ombra__v1__prefetch_hint__descriptor, (int)r->hint) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "unknown prefetch hint %d", (int)r->hint);
		return;
	}
	if ((r->hint == OMBRA__V1__PREFETCH_HINT__PREFETCH_HINT_WILLNEED ||
	     r->hint == OMBRA__V1__PREFETCH_HINT__PREFETCH_HINT_DONTNEED) &&
	    r->n_ranges == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "WILLNEED and DONTNEED need at least one range");
		return;
	}
	if (!ranges_ok(call, r->ranges, r->n_ranges))
		return;
	prefetch_rpc_hint(data, call, r);
}

static void h_prefetch_stats(struct rpc_call *call, const ProtobufCMessage *req,
			     void *data)
{
	prefetch_rpc_stats(data, call,
			   (const Ombra__V1__GetPrefetchStatsRequest *)req);
}

/* ------------------------------------------------------------ table */

static const struct {
	const char *name;
	rpc_handler_fn fn;
} methods[] = {
    {"CreateVolume", h_create},
    {"GetVolume", h_get},
    {"ListVolumes", h_list},
    {"DeleteVolume", h_delete},
    {"ResizeVolume", h_resize},
    {"Read", h_read},
    {"Write", h_write},
    {"Flush", h_flush},
    {"Trim", h_trim},
    {"GetVolumeShardingInfo", h_sharding},
    {"PrefetchData", h_prefetch},
    {"SetPrefetchHint", h_hint},
    {"GetPrefetchStats", h_prefetch_stats},
};

int service_volume_register(struct proxy *p, struct rpc_server *srv,
			    char *errmsg)
{
	const ProtobufCServiceDescriptor *desc =
	    &ombra__v1__volume_service__descriptor;
	rpc_handler_fn *handlers = calloc(desc->n_methods, sizeof(*handlers));
	int rv;

	if (handlers == NULL) {
		ombra_errmsg_printf(errmsg, "VolumeService: out of memory");
		return OMBRA_ENOMEM;
	}
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		unsigned k;

		for (k = 0; k < desc->n_methods; k++)
			if (strcmp(desc->methods[k].name, methods[i].name) == 0)
				break;
		if (k == desc->n_methods) {
			free(handlers);
			ombra_errmsg_printf(errmsg,
					    "VolumeService has no method %s",
					    methods[i].name);
			return OMBRA_EINTERNAL;
		}
		handlers[k] = methods[i].fn;
	}
	rv = rpc_server_add_service(srv, desc, handlers, p);
	free(handlers); /* copied by the server */
	return rv;
}
