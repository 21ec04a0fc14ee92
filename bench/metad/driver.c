/* driver.c: main() of ombra-bench-metad, the C load driver of the metadata
 * benchmark.  bench/metad/run starts the clusters and calls it once per
 * phase; it can also be run by hand against any running cluster.
 *
 *   --op write|read   timed load phase (load.c)
 *   --op failover     SIGKILL the leader, time the first good write
 *   --op leader       (metad) print the current leader
 *
 * It prints exactly one JSON object on stdout: the figures, or
 * {"error": "..."}.  Exit status: 0 ok, 1 the run failed, 2 bad usage. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "failover.h"
#include "load.h"

#define BENCH_PROG "ombra-bench-metad"

struct bench_args {
	const char *system;
	const char *endpoints;
	const char *op;
	char prefix[BENCH_PREFIX_MAX + 1];
	int clients;
	double duration_s;
	int timeout_ms;
	long kill_pid;
	int attempt_ms;
	int limit_ms;
};

static void bench_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: " BENCH_PROG " --system metad|etcd --endpoints "
	    "H:P[,H:P...] --op OP [options]\n"
	    "\n"
	    "Load driver of the metadata benchmark (see bench/metad/run and "
	    "docs/benchmarks.md).\n"
	    "metad: CreateVolume (write) and GetVolume without allow_stale "
	    "(read) on AdminService.\n"
	    "etcd:  KV.Put of /ombra/volumes/<name> with a Volume-sized "
	    "value (write) and\n"
	    "       KV.Range with serializable=false (read).\n"
	    "\n"
	    "Operations (--op):\n"
	    "  write, read   timed phase; prints ops, errors, ops_per_s, "
	    "p50_ms, p99_ms, max_ms\n"
	    "  failover      write until serving, SIGKILL --kill-pid, print "
	    "failover_ms\n"
	    "                (kill to the end of the first successful "
	    "write)\n"
	    "  leader        metad only: print the leader's id and gRPC "
	    "address\n"
	    "\n"
	    "Options:\n"
	    "  --clients N       concurrent clients, one thread and "
	    "connection each (default 1)\n"
	    "  --duration-s S    measured seconds per phase (default 10)\n"
	    "  --prefix P        record name prefix, [A-Za-z0-9._-]{1,%d} "
	    "(default b<pid>)\n"
	    "  --timeout-ms MS   budget of one operation in a phase "
	    "(default 10000)\n"
	    "  --kill-pid PID    failover: the leader's process\n"
	    "  --attempt-ms MS   failover: budget of one write attempt "
	    "(default 100)\n"
	    "  --limit-ms MS     failover: give up after (default 30000)\n"
	    "  --help            this text\n"
	    "\n"
	    "Prints one JSON object on stdout.  Exit: 0 ok, 1 run failed, 2 "
	    "usage.\n",
	    BENCH_PREFIX_MAX);
}

/* Parse a number in [min, max]; 0 or -1 after printing why. */
static int bench_parse_num(const char *flag, const char *s, double min,
			   double max, double *out)
{
	char *end;
	double v;

	v = strtod(s, &end);
	if (end == s || *end != '\0' || !(v >= min && v <= max)) {
		fprintf(stderr,
			BENCH_PROG ": --%s: '%s' is not a number in "
				   "%g..%g\n",
			flag, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* Parse an integer in [min, max]; 0 or -1 after printing why. */
static int bench_parse_int(const char *flag, const char *s, long long min,
			   long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || v < min || v > max) {
		fprintf(stderr,
			BENCH_PROG ": --%s: '%s' is not an integer in "
				   "%lld..%lld\n",
			flag, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int bench_check_prefix(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > BENCH_PREFIX_MAX ||
	    strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789._-") != n) {
		fprintf(stderr,
			BENCH_PROG ": --prefix: '%s' must be 1..%d characters "
				   "of [A-Za-z0-9._-]\n",
			p, BENCH_PREFIX_MAX);
		return -1;
	}
	return 0;
}

/* 0: run; 1: --help printed; -1: usage error printed. */
static int bench_parse_args(int argc, char **argv, struct bench_args *a)
{
	static const struct option opts[] = {
	    {"system", required_argument, NULL, 's'},
	    {"endpoints", required_argument, NULL, 'e'},
	    {"op", required_argument, NULL, 'o'},
	    {"clients", required_argument, NULL, 'c'},
	    {"duration-s", required_argument, NULL, 'd'},
	    {"prefix", required_argument, NULL, 'p'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"kill-pid", required_argument, NULL, 'k'},
	    {"attempt-ms", required_argument, NULL, 'a'},
	    {"limit-ms", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	long long n = 0;
	double v;
	int ch;

	memset(a, 0, sizeof(*a));
	a->clients = 1;
	a->duration_s = 10;
	a->timeout_ms = 10000;
	a->attempt_ms = 100;
	a->limit_ms = 30000;
	snprintf(a->prefix, sizeof(a->prefix), "b%ld", (long)getpid());
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int rv = 0;

		switch (ch) {
		case 's':
			a->system = optarg;
			break;
		case 'e':
			a->endpoints = optarg;
			break;
		case 'o':
			a->op = optarg;
			break;
		case 'p':
			rv = bench_check_prefix(optarg);
			snprintf(a->prefix, sizeof(a->prefix), "%s", optarg);
			break;
		case 'c':
			rv = bench_parse_int("clients", optarg, 1, 4096, &n);
			a->clients = (int)n;
			break;
		case 'd':
			rv = bench_parse_num("duration-s", optarg, 0.1, 86400,
					     &v);
			a->duration_s = v;
			break;
		case 't':
			rv = bench_parse_int("timeout-ms", optarg, 1, 3600000,
					     &n);
			a->timeout_ms = (int)n;
			break;
		case 'k':
			rv =
			    bench_parse_int("kill-pid", optarg, 2, 4194304, &n);
			a->kill_pid = (long)n;
			break;
		case 'a':
			rv =
			    bench_parse_int("attempt-ms", optarg, 1, 60000, &n);
			a->attempt_ms = (int)n;
			break;
		case 'l':
			rv =
			    bench_parse_int("limit-ms", optarg, 1, 3600000, &n);
			a->limit_ms = (int)n;
			break;
		case 'h':
			bench_usage(stdout);
			return 1;
		default:
			rv = -1; /* getopt printed why */
			break;
		}
		if (rv != 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, BENCH_PROG ": unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	if (a->system == NULL || a->endpoints == NULL || a->op == NULL) {
		fprintf(stderr,
			BENCH_PROG ": --system, --endpoints and --op are "
				   "required (see --help)\n");
		return -1;
	}
	return 0;
}

static void bench_json_print(json_object *o)
{
	printf("%s\n",
	       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
}

static void bench_json_add(json_object *o, const char *k, json_object *v)
{
	json_object_object_add(o, k, v);
}

/* A double printed with 3 decimals (ms and s figures; %.17g is noise). */
static json_object *bench_json_num(double v)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.3f", v);
	return json_object_new_double_s(v, buf);
}

/* Let the system set up what the operations need (e.g. metad's region),
 * over a short-lived cluster client.  0 or the error, with errmsg. */
static int bench_prepare(const struct bench_args *a,
			 const struct bench_system *sys, char *errmsg)
{
	struct rpc_cluster *cl;
	struct rpc_status st;
	int rv = rpc_cluster_create(a->endpoints, NULL, &cl, errmsg);
	if (rv != 0)
		return rv;
	rv = sys->prepare(cl, a->timeout_ms, &st);
	rpc_cluster_destroy(cl);
	if (rv != 0)
		ombra_errmsg_printf(errmsg, "prepare: %s: %s",
				    rpc_status_name(st.code), st.message);
	return rv;
}

static int bench_op_load(const struct bench_args *a,
			 const struct bench_system *sys, json_object *out,
			 char *errmsg)
{
	struct bench_load_opts o = {
	    .sys = sys,
	    .endpoints = a->endpoints,
	    .prefix = a->prefix,
	    .clients = a->clients,
	    .duration_s = a->duration_s,
	    .write = strcmp(a->op, "write") == 0,
	    .timeout_ms = a->timeout_ms,
	};
	struct bench_load_result r;
	int rv;

	rv = bench_prepare(a, sys, errmsg);
	if (rv != 0)
		return rv;
	rv = bench_load_run(&o, &r, errmsg);
	if (rv != 0)
		return rv;
	bench_json_add(out, "clients", json_object_new_int(a->clients));
	bench_json_add(out, "ops", json_object_new_int64((int64_t)r.ops));
	bench_json_add(out, "errors", json_object_new_int64((int64_t)r.errors));
	bench_json_add(out, "elapsed_s", bench_json_num(r.elapsed_s));
	bench_json_add(out, "ops_per_s", bench_json_num(r.ops_per_s));
	bench_json_add(out, "p50_ms", bench_json_num(r.lat.p50_ms));
	bench_json_add(out, "p99_ms", bench_json_num(r.lat.p99_ms));
	bench_json_add(out, "max_ms", bench_json_num(r.lat.max_ms));
	bench_json_add(out, "mean_ms", bench_json_num(r.lat.mean_ms));
	if (o.write)
		bench_json_add(out, "value_bytes",
			       bench_json_num(r.value_bytes));
	if (r.first_error[0] != '\0')
		bench_json_add(out, "first_error",
			       json_object_new_string(r.first_error));
	return 0;
}

static int bench_op_failover(const struct bench_args *a,
			     const struct bench_system *sys, json_object *out,
			     char *errmsg)
{
	struct bench_failover_opts o = {
	    .sys = sys,
	    .endpoints = a->endpoints,
	    .prefix = a->prefix,
	    .leader_pid = (pid_t)a->kill_pid,
	    .attempt_ms = a->attempt_ms,
	    .limit_ms = a->limit_ms,
	};
	struct bench_failover_result r;
	int rv;

	if (a->kill_pid == 0) {
		ombra_errmsg_printf(errmsg, "--op failover needs --kill-pid");
		return OMBRA_EINVAL;
	}
	rv = bench_prepare(a, sys, errmsg);
	if (rv != 0)
		return rv;
	rv = bench_failover_run(&o, &r, errmsg);
	if (rv != 0)
		return rv;
	bench_json_add(out, "killed_pid", json_object_new_int64(a->kill_pid));
	bench_json_add(out, "failover_ms", bench_json_num(r.failover_ms));
	bench_json_add(out, "attempts",
		       json_object_new_int64((int64_t)r.attempts));
	bench_json_add(out, "attempt_ms", json_object_new_int(a->attempt_ms));
	bench_json_add(out, "last_write_ms", bench_json_num(r.last_write_ms));
	if (r.last_error[0] != '\0')
		bench_json_add(out, "last_error",
			       json_object_new_string(r.last_error));
	return 0;
}

static int bench_op_leader(const struct bench_args *a,
			   const struct bench_system *sys, json_object *out,
			   char *errmsg)
{
	char addr[128];
	uint64_t id = 0, term = 0;
	struct rpc_status st;
	int rv;

	if (sys != &bench_metad) {
		ombra_errmsg_printf(errmsg,
				    "--op leader is for metad; for etcd use "
				    "`etcdctl endpoint status -w json`");
		return OMBRA_EINVAL;
	}
	rv = bench_metad_leader(a->endpoints, a->timeout_ms, addr, sizeof(addr),
				&id, &term, &st, errmsg);
	if (rv == OMBRA_EUNAVAIL)
		ombra_errmsg_printf(errmsg, "no leader: %s: %s",
				    rpc_status_name(st.code), st.message);
	if (rv != 0)
		return rv;
	bench_json_add(out, "leader_id", json_object_new_int64((int64_t)id));
	bench_json_add(out, "leader_address", json_object_new_string(addr));
	bench_json_add(out, "term", json_object_new_int64((int64_t)term));
	return 0;
}

int main(int argc, char **argv)
{
	char errmsg[OMBRA_ERRMSG_LEN] = "";
	struct bench_args a;
	const struct bench_system *sys;
	json_object *out;
	int rv;

	rv = bench_parse_args(argc, argv, &a);
	if (rv != 0)
		return rv > 0 ? 0 : 2;
	sys = bench_system_find(a.system);
	if (sys == NULL) {
		fprintf(stderr,
			BENCH_PROG ": --system: '%s' is not metad or "
				   "etcd\n",
			a.system);
		return 2;
	}
	out = json_object_new_object();
	if (out == NULL) {
		fprintf(stderr, BENCH_PROG ": out of memory\n");
		return 1;
	}
	bench_json_add(out, "system", json_object_new_string(sys->name));
	bench_json_add(out, "op", json_object_new_string(a.op));
	if (strcmp(a.op, "write") == 0 || strcmp(a.op, "read") == 0) {
		rv = bench_op_load(&a, sys, out, errmsg);
	} else if (strcmp(a.op, "failover") == 0) {
		rv = bench_op_failover(&a, sys, out, errmsg);
	} else if (strcmp(a.op, "leader") == 0) {
		rv = bench_op_leader(&a, sys, out, errmsg);
	} else {
		fprintf(stderr,
			BENCH_PROG ": --op: '%s' is not write, read, failover "
				   "or leader\n",
			a.op);
		json_object_put(out);
		return 2;
	}
	if (rv != 0) {
		bench_json_add(out, "error", json_object_new_string(errmsg));
		fprintf(stderr, BENCH_PROG ": %s: %s\n", a.op, errmsg);
	}
	bench_json_print(out);
	json_object_put(out);
	return rv == 0 ? 0 : 1;
}
