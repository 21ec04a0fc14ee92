/* bench.h: shared declarations of ombra-bench-metad, the C load driver of
 * the metadata benchmark (bench/metad/run orchestrates it).
 *
 * The driver loads either an ombra-metad cluster (AdminService CreateVolume
 * and linearizable GetVolume) or an etcd v3 cluster (KV.Put of a value the
 * size of an encoded Volume record, KV.Range with serializable=false), with
 * one thread and one leader-following rpc_cluster per simulated client.
 * The two systems sit behind one table of operations (struct bench_system)
 * so that the load loop, the latency statistics and the failover timer are
 * the same code for both.
 *
 * Failure: every operation returns 0 or an OMBRA_E* code and fills a
 * struct rpc_status saying what the server (or the transport) answered;
 * nothing here exits or aborts on a server's answer. */
#ifndef OMBRA_BENCH_METAD_H
#define OMBRA_BENCH_METAD_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

/* Longest record name the driver generates (metad's limit is 64). */
#define BENCH_NAME_LEN 65
/* Region every benchmark volume lives in (created by prepare()). */
#define BENCH_REGION "bench"
/* Size of every benchmark volume: 1 GiB in 1 MiB segments. */
#define BENCH_VOLUME_BYTES (1ULL << 30)
#define BENCH_SEGMENT_BYTES (1ULL << 20)

/* One system under test.  Every function is called from one client thread
 * with that thread's own rpc_cluster (not shared between threads).
 * timeout_ms: the whole call's budget, retries included.  Each returns 0 on
 * success or OMBRA_E* with st filled; *value_bytes (write only, may be NULL)
 * receives the size in bytes of the record as stored by the server. */
struct bench_system {
	const char *name; /* "metad" | "etcd" */
	/* Once per run, before any client starts: create what writes need
	 * (metad: the region BENCH_REGION; an existing one is fine). */
	int (*prepare)(struct rpc_cluster *cl, int timeout_ms,
		       struct rpc_status *st);
	/* Create a new record called name (unique per run). */
	int (*write)(struct rpc_cluster *cl, const char *name, uint64_t seq,
		     int timeout_ms, size_t *value_bytes,
		     struct rpc_status *st);
	/* Linearizable read of the record called name; checks that the
	 * answer is that record (OMBRA_EINTERNAL with st->message if not). */
	int (*read)(struct rpc_cluster *cl, const char *name, int timeout_ms,
		    struct rpc_status *st);
};

extern const struct bench_system bench_metad;
extern const struct bench_system bench_etcd;

/* The system called name, or NULL. */
const struct bench_system *bench_system_find(const char *name);

/* Encode the Volume record metad would store for a volume called name
 * created as the seq-th write (id and modified_index = seq + 1, created
 * now).  Returns a malloc'ed buffer of *len bytes (caller frees) or NULL
 * when out of memory.  Used as etcd's value so that both systems replicate
 * records of the same size. */
uint8_t *bench_record_encode(const char *name, uint64_t seq, size_t *len);

/* Leader of a metad cluster: asks each endpoint of the comma-separated
 * list for GetClusterStatus until one names a leader.  Fills leader_addr
 * (gRPC host:port, len bytes) and *leader_id, *term.  Returns 0,
 * OMBRA_EUNAVAIL when no member knows a leader (st holds the last answer),
 * or OMBRA_EINVAL for a malformed endpoint list (errmsg). */
int bench_metad_leader(const char *endpoints, int timeout_ms, char *leader_addr,
		       size_t len, uint64_t *leader_id, uint64_t *term,
		       struct rpc_status *st, char *errmsg);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
int64_t bench_now_ns(void);

#endif
