/* failover.c: leader failover measurement (see failover.h).
 *
 * Before the kill the client writes until five writes in a row succeed, so
 * its connection already points at the leader and the cluster is known to
 * serve.  After the kill it writes back to back, each attempt bounded by
 * attempt_ms so that a request stuck on a dead or deposed leader costs at
 * most that much; the same bound applies to both systems.
 *
 * Failure: see failover.h; the last server answer is kept in the result
 * and in errmsg. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "failover.h"

#define BENCH_FAILOVER_WARM_OK 5
#define BENCH_FAILOVER_WARM_MS 15000

static int bench_failover_write(const struct bench_failover_opts *o,
				struct rpc_cluster *cl, uint64_t seq,
				int timeout_ms, char *last_error)
{
	char name[BENCH_NAME_LEN];
	struct rpc_status st;
	int rv;

	snprintf(name, sizeof(name), "%s-f-%llu", o->prefix,
		 (unsigned long long)seq);
	rv = o->sys->write(cl, name, seq, timeout_ms, NULL, &st);
	if (rv != 0)
		snprintf(last_error, OMBRA_ERRMSG_LEN, "%s: %.400s",
			 rpc_status_name(st.code), st.message);
	return rv;
}

int bench_failover_run(const struct bench_failover_opts *o,
		       struct bench_failover_result *r, char *errmsg)
{
	struct rpc_cluster *cl;
	int64_t t_kill, t0, t_end, deadline;
	uint64_t seq = 0;
	int ok = 0, rv;

	memset(r, 0, sizeof(*r));
	rv = rpc_cluster_create(o->endpoints, NULL, &cl, errmsg);
	if (rv != 0)
		return rv;
	deadline = bench_now_ns() + (int64_t)BENCH_FAILOVER_WARM_MS * 1000000;
	while (ok < BENCH_FAILOVER_WARM_OK) {
		if (bench_now_ns() > deadline) {
			ombra_errmsg_printf(
			    errmsg,
			    "cluster did not serve %d writes in "
			    "a row within %d ms before the "
			    "kill; last: %s",
			    BENCH_FAILOVER_WARM_OK, BENCH_FAILOVER_WARM_MS,
			    r->last_error);
			rv = OMBRA_EUNAVAIL;
			goto out;
		}
		if (bench_failover_write(o, cl, seq++, 2000, r->last_error) ==
		    0)
			ok++;
		else
			ok = 0;
	}
	r->last_error[0] = '\0';
	if (kill(o->leader_pid, SIGKILL) != 0) {
		ombra_errmsg_printf(errmsg, "kill(%d, SIGKILL): %s",
				    (int)o->leader_pid, strerror(errno));
		rv = OMBRA_EINVAL;
		goto out;
	}
	t_kill = bench_now_ns();
	deadline = t_kill + (int64_t)o->limit_ms * 1000000;
	for (;;) {
		t0 = bench_now_ns();
		if (t0 > deadline) {
			ombra_errmsg_printf(errmsg,
					    "no write succeeded within %d ms "
					    "of killing the leader (%llu "
					    "attempts); last: %s",
					    o->limit_ms,
					    (unsigned long long)r->attempts,
					    r->last_error);
			rv = OMBRA_ETIMEDOUT;
			goto out;
		}
		r->attempts++;
		if (bench_failover_write(o, cl, seq++, o->attempt_ms,
					 r->last_error) == 0)
			break;
	}
	t_end = bench_now_ns();
	r->failover_ms = (double)(t_end - t_kill) / 1e6;
	r->last_write_ms = (double)(t_end - t0) / 1e6;
	rv = 0;
out:
	rpc_cluster_destroy(cl);
	return rv;
}
