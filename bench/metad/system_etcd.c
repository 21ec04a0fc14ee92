/* system_etcd.c: ombra-bench-metad's operations against etcd v3's KV
 * service: Put of /ombra/volumes/<name> with an encoded Volume record as
 * the value (write) and Range of that key with serializable=false, i.e. a
 * linearizable read through etcd's ReadIndex (read).
 *
 * Calls go through rpc_cluster_unary() too: etcd names no leader in
 * trailers, but any member forwards to its leader, and the cluster client
 * moves to the next member on UNAVAILABLE (etcd's "no leader", "leader
 * changed" and its request timeouts are all UNAVAILABLE).
 *
 * Failure: the server's status is passed back; a Range that does not
 * return exactly the key asked for is OMBRA_ENOTFOUND or OMBRA_EINTERNAL
 * with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "etcd_kv.pb-c.h"

#define BENCH_ETCD_PREFIX "/ombra/volumes/"

static int bench_etcd_prepare(struct rpc_cluster *cl, int timeout_ms,
			      struct rpc_status *st)
{
	(void)cl;
	(void)timeout_ms;
	st->code = GRPC_STATUS_OK;
	st->message[0] = '\0';
	st->leader[0] = '\0';
	return 0; /* etcd keys need no parent */
}

static void bench_etcd_key(const char *name, char *key, size_t len)
{
	snprintf(key, len, "%s%s", BENCH_ETCD_PREFIX, name);
}

static int bench_etcd_write(struct rpc_cluster *cl, const char *name,
			    uint64_t seq, int timeout_ms, size_t *value_bytes,
			    struct rpc_status *st)
{
	Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char key[sizeof(BENCH_ETCD_PREFIX) + BENCH_NAME_LEN];
	size_t len;
	uint8_t *value = bench_record_encode(name, seq, &len);
	int rv;

	if (value == NULL) {
		st->code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(st->message, sizeof(st->message),
			 "out of memory encoding the record");
		st->leader[0] = '\0';
		return OMBRA_ENOMEM;
	}
	bench_etcd_key(name, key, sizeof(key));
	req.key.data = (uint8_t *)key;
	req.key.len = strlen(key);
	req.value.data = value;
	req.value.len = len;
	rv = rpc_cluster_unary(cl, &etcdserverpb__kv__descriptor, "Put",
			       &req.base, &resp, timeout_ms, st);
	free(value);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	if (rv == 0 && value_bytes != NULL)
		*value_bytes = len;
	return rv;
}

static int bench_etcd_read(struct rpc_cluster *cl, const char *name,
			   int timeout_ms, struct rpc_status *st)
{
	Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	Etcdserverpb__RangeResponse *rr;
	char key[sizeof(BENCH_ETCD_PREFIX) + BENCH_NAME_LEN];
	int rv;

	bench_etcd_key(name, key, sizeof(key));
	req.key.data = (uint8_t *)key;
	req.key.len = strlen(key);
	req.serializable = false; /* linearizable */
	rv = rpc_cluster_unary(cl, &etcdserverpb__kv__descriptor, "Range",
			       &req.base, &resp, timeout_ms, st);
	if (rv != 0)
		return rv;
	rr = (Etcdserverpb__RangeResponse *)resp;
	if (rr->n_kvs != 1 || rr->kvs[0]->key.len != strlen(key) ||
	    memcmp(rr->kvs[0]->key.data, key, strlen(key)) != 0) {
		st->code = rr->n_kvs == 0 ? GRPC_STATUS_NOT_FOUND
					  : GRPC_STATUS_INTERNAL;
		snprintf(st->message, sizeof(st->message),
			 "Range(%s) returned %zu keys, want exactly that one",
			 key, rr->n_kvs);
		rv = rr->n_kvs == 0 ? OMBRA_ENOTFOUND : OMBRA_EINTERNAL;
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rv;
}

const struct bench_system bench_etcd = {
    .name = "etcd",
    .prepare = bench_etcd_prepare,
    .write = bench_etcd_write,
    .read = bench_etcd_read,
};
