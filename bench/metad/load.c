/* load.c: timed load phase of ombra-bench-metad (see load.h).
 *
 * Threads meet twice: each reports "ready" once it is connected and warmed
 * up, then waits for "go", which the main thread gives after every started
 * client is ready and the common deadline is set; so all clients start
 * together and none is measured while connecting.  (A mutex and condition
 * variable rather than a pthread barrier, because the number of clients
 * that actually started is known only after pthread_create().)
 * Each thread keeps its own latency samples (no locking on the hot path);
 * the main thread merges them after join.
 *
 * Failure: a client whose setup fails marks the phase failed; the main
 * thread then sets the deadline to "now" so every client leaves at once,
 * and returns that client's error. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

struct bench_load_shared {
	const struct bench_load_opts *o;
	pthread_mutex_t gate_lock; /* guards n_ready and go */
	pthread_cond_t gate_cond;
	int n_ready;
	bool go;
	_Atomic int64_t deadline_ns;
	atomic_int setup_failed;
	pthread_mutex_t lock; /* guards setup_error */
	char setup_error[OMBRA_ERRMSG_LEN];
};

struct bench_load_client {
	struct bench_load_shared *sh;
	int index;
	struct bench_lat lat;
	uint64_t ops, errors;
	double value_bytes_sum;
	int64_t end_ns;
	char first_error[OMBRA_ERRMSG_LEN];
};

static void bench_load_setup_fail(struct bench_load_client *c, const char *what,
				  const char *msg)
{
	struct bench_load_shared *sh = c->sh;

	pthread_mutex_lock(&sh->lock);
	if (!atomic_load(&sh->setup_failed))
		snprintf(sh->setup_error, sizeof(sh->setup_error),
			 "client %d: %s: %s", c->index, what, msg);
	atomic_store(&sh->setup_failed, 1);
	pthread_mutex_unlock(&sh->lock);
}

/* One operation; on failure remembers the first error.  seq numbers this
 * client's writes. */
static int bench_load_op(struct bench_load_client *c, struct rpc_cluster *cl,
			 const char *read_name, uint64_t seq,
			 size_t *value_bytes)
{
	const struct bench_load_opts *o = c->sh->o;
	struct rpc_status st;
	char name[BENCH_NAME_LEN];
	int rv;

	if (o->write) {
		snprintf(name, sizeof(name), "%s-%d-%llu", o->prefix, c->index,
			 (unsigned long long)seq);
		rv = o->sys->write(cl, name, seq, o->timeout_ms, value_bytes,
				   &st);
	} else {
		rv = o->sys->read(cl, read_name, o->timeout_ms, &st);
	}
	if (rv != 0 && c->first_error[0] == '\0')
		snprintf(c->first_error, sizeof(c->first_error), "%s: %.400s",
			 rpc_status_name(st.code), st.message);
	return rv;
}

static void *bench_load_thread(void *arg)
{
	struct bench_load_client *c = arg;
	struct bench_load_shared *sh = c->sh;
	const struct bench_load_opts *o = sh->o;
	struct rpc_cluster *cl = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	char read_name[BENCH_NAME_LEN];
	struct rpc_status st;
	uint64_t seq = 0;
	size_t vb = 0;
	int rv;

	snprintf(read_name, sizeof(read_name), "%s-%d-r", o->prefix, c->index);
	if (rpc_cluster_create(o->endpoints, NULL, &cl, errmsg) != 0) {
		bench_load_setup_fail(c, "connect", errmsg);
	} else if ((rv = o->sys->write(cl, read_name, seq, o->timeout_ms, NULL,
				       &st)) != 0 &&
		   rv != OMBRA_EEXIST) {
		/* Warm-up: the record reads will fetch (and, for writes, one
		 * untimed write that finds the leader).  A record left by an
		 * earlier run with the same prefix serves as well. */
		snprintf(errmsg, sizeof(errmsg), "%s: %.400s",
			 rpc_status_name(st.code), st.message);
		bench_load_setup_fail(c, "warm-up write", errmsg);
	}
	seq++;
	pthread_mutex_lock(&sh->gate_lock);
	sh->n_ready++;
	pthread_cond_broadcast(&sh->gate_cond);
	while (!sh->go)
		pthread_cond_wait(&sh->gate_cond, &sh->gate_lock);
	pthread_mutex_unlock(&sh->gate_lock);
	while (cl != NULL && !atomic_load(&sh->setup_failed)) {
		int64_t t0 = bench_now_ns();

		if (t0 >= atomic_load(&sh->deadline_ns))
			break;
		rv = bench_load_op(c, cl, read_name, seq++, &vb);
		if (rv != 0) {
			c->errors++;
			continue;
		}
		c->ops++;
		c->value_bytes_sum += (double)vb;
		if (bench_lat_add(&c->lat, bench_now_ns() - t0) != 0) {
			snprintf(c->first_error, sizeof(c->first_error),
				 "out of memory recording latencies");
			break;
		}
	}
	c->end_ns = bench_now_ns();
	rpc_cluster_destroy(cl);
	return NULL;
}

/* Merge the clients' counters and samples into r. */
static int bench_load_collect(struct bench_load_client *cs, int n,
			      int64_t start_ns, struct bench_load_result *r)
{
	struct bench_lat all;
	int64_t end_ns = start_ns;
	double vb_sum = 0;
	int i, rv = 0;

	bench_lat_init(&all);
	memset(r, 0, sizeof(*r));
	for (i = 0; i < n; i++) {
		r->ops += cs[i].ops;
		r->errors += cs[i].errors;
		vb_sum += cs[i].value_bytes_sum;
		if (cs[i].end_ns > end_ns)
			end_ns = cs[i].end_ns;
		if (r->first_error[0] == '\0' && cs[i].first_error[0] != '\0')
			snprintf(r->first_error, sizeof(r->first_error),
				 "client %d: %s", i, cs[i].first_error);
		if (rv == 0)
			rv = bench_lat_merge(&all, &cs[i].lat);
	}
	r->elapsed_s = (double)(end_ns - start_ns) / 1e9;
	r->ops_per_s = r->elapsed_s > 0 ? (double)r->ops / r->elapsed_s : 0;
	r->value_bytes = r->ops ? vb_sum / (double)r->ops : 0;
	bench_lat_summarize(&all, &r->lat);
	bench_lat_free(&all);
	return rv;
}

int bench_load_run(const struct bench_load_opts *o, struct bench_load_result *r,
		   char *errmsg)
{
	struct bench_load_shared sh;
	struct bench_load_client *cs;
	pthread_t *tids;
	int64_t start_ns;
	int i, started = 0, rv = 0;

	memset(&sh, 0, sizeof(sh));
	sh.o = o;
	cs = calloc((size_t)o->clients, sizeof(*cs));
	tids = calloc((size_t)o->clients, sizeof(*tids));
	if (cs == NULL || tids == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory for %d clients",
				    o->clients);
		rv = OMBRA_ENOMEM;
		goto err_free;
	}
	pthread_mutex_init(&sh.lock, NULL);
	pthread_mutex_init(&sh.gate_lock, NULL);
	pthread_cond_init(&sh.gate_cond, NULL);
	atomic_store(&sh.deadline_ns, INT64_MAX);
	for (i = 0; i < o->clients; i++) {
		cs[i].sh = &sh;
		cs[i].index = i;
		bench_lat_init(&cs[i].lat);
		if (pthread_create(&tids[i], NULL, bench_load_thread, &cs[i]) !=
		    0)
			break;
		started++;
	}
	if (started < o->clients) {
		pthread_mutex_lock(&sh.lock);
		snprintf(sh.setup_error, sizeof(sh.setup_error),
			 "could not start client thread %d of %d", started,
			 o->clients);
		atomic_store(&sh.setup_failed, 1);
		pthread_mutex_unlock(&sh.lock);
	}
	pthread_mutex_lock(&sh.gate_lock);
	while (sh.n_ready < started)
		pthread_cond_wait(&sh.gate_cond, &sh.gate_lock);
	start_ns = bench_now_ns();
	atomic_store(&sh.deadline_ns,
		     atomic_load(&sh.setup_failed)
			 ? start_ns
			 : start_ns + (int64_t)(o->duration_s * 1e9));
	sh.go = true;
	pthread_cond_broadcast(&sh.gate_cond);
	pthread_mutex_unlock(&sh.gate_lock);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (atomic_load(&sh.setup_failed)) {
		ombra_errmsg_printf(errmsg, "%s", sh.setup_error);
		rv = OMBRA_EUNAVAIL;
	} else if (bench_load_collect(cs, o->clients, start_ns, r) != 0) {
		ombra_errmsg_printf(errmsg, "out of memory merging latencies");
		rv = OMBRA_ENOMEM;
	}
	for (i = 0; i < o->clients; i++)
		bench_lat_free(&cs[i].lat);
	pthread_cond_destroy(&sh.gate_cond);
	pthread_mutex_destroy(&sh.gate_lock);
	pthread_mutex_destroy(&sh.lock);
err_free:
	free(tids);
	free(cs);
	return rv;
}
