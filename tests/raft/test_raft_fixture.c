/* test_raft_fixture.c: deterministic Raft tests of the metadata state
 * machine.  libraft's raft_fixture runs a whole 3- or 5-member cluster in
 * this process on virtual time with in-memory I/O; every member applies the
 * log to its own real fsm (metad/fsm.h) in its own LMDB directory.  A seeded
 * PRNG drives a schedule of proposals (CreateVolume, AddRegion,
 * RegisterNode, ResizeVolume, DeleteVolume), partitions, one-way message
 * loss, crashes and revivals (never more than a minority down), transient
 * disk faults, client retries (same request id) and latency changes.
 * While it runs, no two members may apply different commands at one index.
 * After the schedule the cluster is healed and every live member must
 * hold the same state (fsm_state_hash), the same applied index, every
 * acknowledged create exactly once with the acknowledged id and at least
 * the acknowledged size, every acknowledged registration, and none of the
 * acknowledged deletes.  A second test checks that a member that was down
 * while more than a snapshot threshold of entries was committed catches up
 * through InstallSnapshot (fsm restore) and converges.
 *
 * Every member's raft_io is wrapped by raft_shim.h, which works around
 * three defects of Debian's libraft 0.15 (one of them in Raft itself,
 * which ombra-metad must work around too) and injects the disk faults.
 *
 * Environment: OMBRA_RAFT_SEEDS=N runs seeds 1..N (default 200);
 * OMBRA_RAFT_SEED=S runs only seed S (to reproduce a failure);
 * OMBRA_RAFT_STEPS=N sets the schedule length (default 800);
 * OMBRA_RAFT_NO_GUARD=1 disables the log-matching guard (raft_shim.h) to
 * reproduce libraft's bug.
 *
 * Failure: every failed check prints the seed, the member and what was
 * expected; the run goes on with the next seed (up to TRF_MAX_FAILURES) and
 * the test fails at the end.  If libraft's fixture aborts on a safety
 * violation, a SIGABRT handler prints the seed first.  Temporary
 * directories (under $TMPDIR or /tmp) are removed on every path. */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "err.h"
#include "log.h"
#include "metad/cmd.h"
#include "metad/fsm.h"
#include "raft_shim.h"

#define TRF_MAX_SERVERS 5
#define TRF_SNAPSHOT_THRESHOLD 32
#define TRF_SNAPSHOT_TRAILING 8
#define TRF_DEFAULT_SEEDS 200
#define TRF_DEFAULT_STEPS 800
#define TRF_MAX_FAILURES 5
#define TRF_MAX_OBJECTS 1024
#define TRF_NAME_LEN 32
#define TRF_MIB (1024u * 1024u)
/* Fixture defaults (libraft src/fixture.c) restored when healing. */
#define TRF_NETWORK_LATENCY_MS 15
#define TRF_DISK_LATENCY_MS 10
#define TRF_ELECTION_TIMEOUT_MS 1000
/* Bounds, in virtual milliseconds, for the convergence phase. */
#define TRF_LEADER_WAIT_MS 60000
#define TRF_APPLY_WAIT_MS 60000
#define TRF_SENTINEL_ATTEMPTS 20

/* ---- deterministic PRNG: splitmix64 (Steele, Lea & Flood, "Fast
 * Splittable Pseudorandom Number Generators", OOPSLA 2014). */

struct trf_rng {
	uint64_t state;
};

static uint64_t trf_rng_next(struct trf_rng *g)
{
	uint64_t z = (g->state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0.  The modulo bias (< n / 2^64) is irrelevant
 * for a test schedule. */
static unsigned trf_rng_below(struct trf_rng *g, unsigned n)
{
	return (unsigned)(trf_rng_next(g) % n);
}

/* True with probability percent / 100. */
static bool trf_rng_chance(struct trf_rng *g, unsigned percent)
{
	return trf_rng_below(g, 100) < percent;
}

/* ---- the model: what the schedule proposed and what was acknowledged. */

struct trf_volume {
	char name[TRF_NAME_LEN];
	uint64_t size;	   /* bytes, as proposed by the create */
	uint64_t min_size; /* largest size acknowledged (create or resize) */
	uint64_t id;	   /* id acknowledged by the create, 0 = none yet */
	bool create_acked;
	bool delete_proposed;
	bool delete_acked;
};

struct trf_region {
	char name[TRF_NAME_LEN];
	bool acked;
};

struct trf_node {
	char name[TRF_NAME_LEN];
	unsigned region; /* index into regions */
	uint64_t id;	 /* id acknowledged by the registration */
	bool acked;
};

struct trf_model {
	struct trf_volume volumes[TRF_MAX_OBJECTS];
	unsigned n_volumes;
	struct trf_region regions[TRF_MAX_OBJECTS];
	unsigned n_regions;
	struct trf_node nodes[TRF_MAX_OBJECTS];
	unsigned n_nodes;
};

enum trf_kind {
	TRF_ADD_REGION,
	TRF_REGISTER_NODE,
	TRF_CREATE_VOLUME,
	TRF_RESIZE_VOLUME,
	TRF_DELETE_VOLUME,
};

struct trf_cluster;

/* One raft_apply() in flight or finished.  Owned by the cluster's list and
 * freed only at teardown, after raft_fixture_close(), so a callback fired
 * while closing still finds it.  Everything the command is built from is
 * kept, so that a client retry can send the very same command again. */
struct trf_proposal {
	struct raft_apply req; /* req.data == this */
	struct trf_cluster *cluster;
	struct trf_proposal *next;
	enum trf_kind kind;
	unsigned object; /* index into the model array of its kind */
	char request_id[48];
	uint64_t time_ms;      /* stamped by the proposer */
	uint64_t size;	       /* resize: requested bytes */
	uint64_t segment_size; /* create: 0 = default */
	unsigned home_region;  /* create: index into regions */
	unsigned replicas;     /* create: 0 = default */
	uint64_t capacity;     /* register: tier bytes */
	unsigned server;       /* member it was proposed on */
	bool pending; /* accepted by raft_apply(), callback not yet run */
	bool done;
	int status;	    /* raft status given to the callback */
	int code;	    /* fsm_result code when status == 0 */
	uint64_t object_id; /* fsm_result object_id when status == 0 */
};

struct trf_server {
	char dir[PATH_MAX];
	struct fsm *fsm;
	struct raft_fsm raft_fsm; /* referenced by the raft instance */
	/* fsm_bind_raft()'s apply, wrapped by trf_apply_hook(). */
	int (*apply)(struct raft_fsm *fsm, const struct raft_buffer *buf,
		     void **result);
};

struct trf_stats {
	unsigned long proposals;
	unsigned long acked;
	unsigned long refused; /* committed, state-dependent refusal */
	unsigned long retries; /* proposals repeating a request_id */
	unsigned long lost;    /* failed raft_apply or callback status != 0 */
	unsigned long kills;
	unsigned long partitions;
	unsigned long faults;
	unsigned long broken;  /* members lost to an injected I/O error */
	unsigned long clamped; /* log-matching guard interventions */
	unsigned long orphans; /* apply results no proposer could free */
	unsigned long snapshots_taken;
	unsigned long snapshots_restored;
	unsigned long entries_applied;
};

struct trf_cluster {
	struct raft_fixture fixture;
	unsigned n;
	unsigned seed;
	struct trf_rng rng;
	struct trf_server servers[TRF_MAX_SERVERS];
	struct trf_shim shims[TRF_MAX_SERVERS];
	bool guarded;		      /* OMBRA_RAFT_NO_GUARD unset */
	bool broken[TRF_MAX_SERVERS]; /* unavailable after an I/O error */
	bool armed[TRF_MAX_SERVERS];  /* ever given a disk fault */
	bool cut[TRF_MAX_SERVERS][TRF_MAX_SERVERS];	  /* disconnected */
	bool saturated[TRF_MAX_SERVERS][TRF_MAX_SERVERS]; /* i -> j dropped */
	bool fixture_ready; /* raft_fixture_initialize() succeeded */
	struct trf_proposal *proposals;
	unsigned long next_request;
	struct trf_model model;
	struct trf_stats stats;
	/* FNV-1a digest of the command applied at each index (0 = none
	 * yet), index-addressed, n_digests long. */
	uint64_t *digests;
	size_t n_digests;
	/* First contradiction seen by a callback ("" = none); callbacks
	 * cannot fail the test themselves. */
	char violation[256];
};

/* Seed of the run in progress, for the SIGABRT handler. */
static volatile sig_atomic_t trf_current_seed = -1;

static void trf_on_abort(int sig)
{
	char buf[64] = "raft fixture test aborted at seed ";
	size_t len = strlen(buf);
	char digits[16];
	size_t n = 0;
	long seed = trf_current_seed;

	if (seed < 0) {
		seed = 0;
	}
	do {
		digits[n++] = (char)('0' + seed % 10);
		seed /= 10;
	} while (seed > 0 && n < sizeof digits);
	while (n > 0 && len < sizeof buf - 2) {
		buf[len++] = digits[--n];
	}
	buf[len++] = '\n';
	if (write(STDERR_FILENO, buf, len) < 0) {
		/* nothing left to do in a signal handler */
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static const char *trf_state_name(int state)
{
	switch (state) {
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	case RAFT_LEADER:
		return "leader";
	default:
		return "unavailable";
	}
}

/* Print a failed check with the seed that reproduces it, then every
 * member's Raft state.  Returns -1 so a check can `return trf_fail(...)`. */
static int trf_fail(struct trf_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int trf_fail(struct trf_cluster *c, const char *fmt, ...)
{
	va_list ap;
	unsigned i;

	fprintf(stderr,
		"FAIL seed %u (%u servers; rerun with OMBRA_RAFT_SEED=%u): ",
		c->seed, c->n, c->seed);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (!c->fixture_ready) {
		return -1;
	}
	for (i = 0; i < raft_fixture_n(&c->fixture); i++) {
		struct raft *r = raft_fixture_get(&c->fixture, i);

		fprintf(stderr,
			"  server %u: %s, %s, term %llu, commit %llu, "
			"applied %llu, last log %llu\n",
			i,
			raft_fixture_alive(&c->fixture, i) ? "alive" : "killed",
			trf_state_name(raft_state(r)),
			(unsigned long long)r->current_term,
			(unsigned long long)r->commit_index,
			(unsigned long long)raft_last_applied(r),
			(unsigned long long)raft_last_index(r));
	}
	return -1;
}

static unsigned trf_env_unsigned(const char *name, unsigned dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0') {
		return dflt;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > UINT_MAX) {
		fprintf(stderr, "ignoring %s=\"%s\": want a positive integer\n",
			name, s);
		return dflt;
	}
	return (unsigned)v;
}

/* ---- temporary directories */

static int trf_rm_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0) {
		fprintf(stderr, "remove %s: %s\n", path, strerror(errno));
	}
	return 0;
}

static void trf_rm_tree(const char *dir)
{
	if (dir[0] != '\0') {
		nftw(dir, trf_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
}

static int trf_make_dir(char *out, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	if (tmp == NULL || *tmp == '\0') {
		tmp = "/tmp";
	}
	n = snprintf(out, size, "%s/ombra-raft-XXXXXX", tmp);
	if (n < 0 || (size_t)n >= size) {
		out[0] = '\0';
		return -1;
	}
	if (mkdtemp(out) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* ---- the apply hook
 *
 * Every member's raft_fsm.apply is wrapped, for two reasons.
 *
 * State Machine Safety (Raft, fig. 3.2): no two members apply different
 * commands at the same index.  The hook records a digest of the command
 * applied at each index and flags any member that applies other bytes
 * there, at the moment it happens (the final state hash would only show
 * the consequence, if any).
 *
 * Results without a proposer: fsm.h says apply's *result is malloc'd and
 * freed by the proposer, but libraft 0.15 hands the result only to a
 * raft_apply() request pending on that member for that index, and
 * otherwise drops the pointer: on followers, and on a leader for entries
 * of earlier terms.  Every such result leaks (in ombra-metad too).  The
 * hook frees the results nobody will receive and counts them. */

static struct trf_cluster *trf_active; /* the cluster being run */

static bool trf_has_pending(const struct trf_cluster *c, unsigned server,
			    raft_index index)
{
	const struct trf_proposal *p;

	for (p = c->proposals; p != NULL; p = p->next) {
		if (p->pending && p->server == server &&
		    p->req.index == index) {
			return true;
		}
	}
	return false;
}

/* FNV-1a, 64 bits (Fowler, Noll & Vo); never 0 for the table. */
static uint64_t trf_digest(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	size_t k;

	for (k = 0; k < len; k++) {
		h ^= p[k];
		h *= UINT64_C(0x100000001b3);
	}
	return h != 0 ? h : 1;
}

/* Record that member i applies buf at index; flag a different command
 * already applied there by another member. */
static void trf_check_applied(struct trf_cluster *c, unsigned i,
			      raft_index index, const struct raft_buffer *buf)
{
	uint64_t d = trf_digest(buf->base, buf->len);

	if (index >= c->n_digests) {
		size_t n = c->n_digests == 0 ? 1024 : c->n_digests;
		uint64_t *grown;

		while (n <= index) {
			n *= 2;
		}
		grown = realloc(c->digests, n * sizeof *grown);
		if (grown == NULL) {
			snprintf(c->violation, sizeof c->violation,
				 "out of memory for the applied-command table");
			return;
		}
		memset(grown + c->n_digests, 0,
		       (n - c->n_digests) * sizeof *grown);
		c->digests = grown;
		c->n_digests = n;
	}
	if (c->digests[index] == 0) {
		c->digests[index] = d;
	} else if (c->digests[index] != d && c->violation[0] == '\0') {
		snprintf(c->violation, sizeof c->violation,
			 "State Machine Safety: server %u applied a different "
			 "command at index %llu than another member",
			 i, (unsigned long long)index);
	}
}

static int trf_apply_hook(struct raft_fsm *rf, const struct raft_buffer *buf,
			  void **result)
{
	struct trf_cluster *c = trf_active;
	raft_index index;
	unsigned i;
	int rv;

	for (i = 0; i < c->n; i++) {
		if (&c->servers[i].raft_fsm == rf) {
			break;
		}
	}
	if (i == c->n) {
		abort(); /* an fsm we never bound: harness bug */
	}
	index = raft_last_applied(raft_fixture_get(&c->fixture, i)) + 1;
	*result = NULL;
	rv = c->servers[i].apply(rf, buf, result);
	if (rv == 0) {
		trf_check_applied(c, i, index, buf);
	}
	if (rv == 0 && !trf_has_pending(c, i, index)) {
		free(*result);
		*result = NULL;
		c->stats.orphans++;
	}
	return rv;
}

/* ---- cluster lifecycle */

static void trf_cluster_destroy(struct trf_cluster *c)
{
	struct trf_proposal *p;
	unsigned i;

	if (c == NULL) {
		return;
	}
	/* Closing the rafts fails pending applies through their callbacks,
	 * which still need the proposals, so free those afterwards. */
	if (c->fixture_ready) {
		raft_fixture_close(&c->fixture);
	}
	while ((p = c->proposals) != NULL) {
		c->proposals = p->next;
		free(p);
	}
	for (i = 0; i < TRF_MAX_SERVERS; i++) {
		if (c->servers[i].fsm != NULL) {
			fsm_close(c->servers[i].fsm);
		}
		trf_rm_tree(c->servers[i].dir);
		trf_shim_remove(&c->shims[i]);
	}
	if (trf_active == c) {
		trf_active = NULL;
	}
	free(c->digests);
	free(c);
}

/* Create an n-member cluster, bootstrapped and started.  Each member gets
 * its own fsm in its own temporary directory, bound before raft_start(). */
static struct trf_cluster *trf_cluster_create(unsigned seed, unsigned n)
{
	struct raft_configuration conf;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct trf_cluster *c;
	unsigned i;
	int rv;

	c = calloc(1, sizeof *c);
	if (c == NULL) {
		fprintf(stderr, "seed %u: out of memory\n", seed);
		return NULL;
	}
	c->seed = seed;
	c->n = n;
	c->rng.state = UINT64_C(0x6f6d627261) ^ ((uint64_t)seed << 17) ^ seed;
	c->guarded = getenv("OMBRA_RAFT_NO_GUARD") == NULL;
	trf_active = c;

	rv = raft_fixture_initialize(&c->fixture);
	if (rv != 0) {
		trf_fail(c, "raft_fixture_initialize: %s", raft_strerror(rv));
		goto err;
	}
	c->fixture_ready = true;

	for (i = 0; i < n; i++) {
		struct trf_server *s = &c->servers[i];
		struct raft *r;

		if (trf_make_dir(s->dir, sizeof s->dir) != 0) {
			trf_fail(c, "server %u: cannot create a temp dir", i);
			goto err;
		}
		rv = fsm_open(s->dir, &s->fsm, errmsg);
		if (rv != 0) {
			trf_fail(c, "server %u: fsm_open(%s): %s", i, s->dir,
				 errmsg);
			goto err;
		}
		/* grow() keeps the pointer to raft_fsm; the struct lives in
		 * the cluster and is filled in before raft_start(). */
		rv = raft_fixture_grow(&c->fixture, &s->raft_fsm);
		if (rv != 0) {
			trf_fail(c, "raft_fixture_grow: %s", raft_strerror(rv));
			goto err;
		}
		r = raft_fixture_get(&c->fixture, i);
		fsm_bind_raft(s->fsm, r, &s->raft_fsm);
		s->apply = s->raft_fsm.apply;
		s->raft_fsm.apply = trf_apply_hook;
		trf_shim_install(&c->shims[i], i, r, c->guarded);
		raft_set_snapshot_threshold(r, TRF_SNAPSHOT_THRESHOLD);
		raft_set_snapshot_trailing(r, TRF_SNAPSHOT_TRAILING);
	}

	rv = raft_fixture_configuration(&c->fixture, n, &conf);
	if (rv != 0) {
		raft_configuration_close(&conf);
		trf_fail(c, "raft_fixture_configuration: %s",
			 raft_strerror(rv));
		goto err;
	}
	rv = raft_fixture_bootstrap(&c->fixture, &conf);
	raft_configuration_close(&conf);
	if (rv != 0) {
		trf_fail(c, "raft_fixture_bootstrap: %s", raft_strerror(rv));
		goto err;
	}
	rv = raft_fixture_start(&c->fixture);
	if (rv != 0) {
		trf_fail(c, "raft_fixture_start: %s", raft_strerror(rv));
		goto err;
	}
	return c;

err:
	trf_cluster_destroy(c);
	return NULL;
}

/* ---- membership of the live set */

/* A member that can still make progress: not killed, and not turned
 * RAFT_UNAVAILABLE by an I/O error (libraft never recovers from that
 * without a restart, which the fixture does not simulate). */
static bool trf_live(struct trf_cluster *c, unsigned i)
{
	return raft_fixture_alive(&c->fixture, i) &&
	       raft_state(raft_fixture_get(&c->fixture, i)) != RAFT_UNAVAILABLE;
}

static unsigned trf_n_down(struct trf_cluster *c)
{
	unsigned i;
	unsigned down = 0;

	for (i = 0; i < c->n; i++) {
		if (!trf_live(c, i)) {
			down++;
		}
	}
	return down;
}

/* Largest number of members that may be down with a majority left. */
static unsigned trf_minority(const struct trf_cluster *c)
{
	return (c->n - 1) / 2;
}

/* A member that an injected I/O error turned RAFT_UNAVAILABLE stays so
 * (the fixture cannot restart it).  Kill it, so that the fixture's leader
 * detection, which waits for every alive connected member, ignores it. */
static void trf_retire_broken(struct trf_cluster *c)
{
	unsigned i;

	for (i = 0; i < c->n; i++) {
		if (!c->broken[i] && raft_state(raft_fixture_get(
					 &c->fixture, i)) == RAFT_UNAVAILABLE) {
			c->broken[i] = true;
			c->stats.broken++;
			if (raft_fixture_alive(&c->fixture, i)) {
				raft_fixture_kill(&c->fixture, i);
			}
		}
	}
}

/* Symmetric cut of the link i-j.  The fixture's disconnect, reconnect,
 * saturate and desaturate each act on one direction (i -> j) only. */
static void trf_cut(struct trf_cluster *c, unsigned i, unsigned j, bool cut)
{
	if (cut) {
		raft_fixture_disconnect(&c->fixture, i, j);
		raft_fixture_disconnect(&c->fixture, j, i);
	} else {
		raft_fixture_reconnect(&c->fixture, i, j);
		raft_fixture_reconnect(&c->fixture, j, i);
	}
	c->cut[i][j] = c->cut[j][i] = cut;
}

/* Re-apply our link faults after raft_fixture_revive(), which lifts the
 * saturation between the revived member and every live one (kill() is a
 * saturation of all its links; our cuts use the separate connected flag,
 * re-applied here only for good measure). */
static void trf_apply_links(struct trf_cluster *c, unsigned i)
{
	unsigned j;

	for (j = 0; j < c->n; j++) {
		if (j == i) {
			continue;
		}
		if (c->cut[i][j]) {
			trf_cut(c, i, j, true);
		}
		if (c->saturated[i][j]) {
			raft_fixture_saturate(&c->fixture, i, j);
		}
		if (c->saturated[j][i]) {
			raft_fixture_saturate(&c->fixture, j, i);
		}
	}
}

/* ---- proposals */

/* An acknowledged command names the object it touched; every
 * acknowledgement of the same object (a retry, a later resize) must name the
 * same id: the state machine created it once. */
static void trf_model_same_id(struct trf_cluster *c, uint64_t *known,
			      const struct trf_proposal *p, const char *name)
{
	if (*known == 0) {
		*known = p->object_id;
	} else if (*known != p->object_id && c->violation[0] == '\0') {
		snprintf(c->violation, sizeof c->violation,
			 "%s acknowledged with id %" PRIu64 " after id %" PRIu64
			 " (request %s)",
			 name, p->object_id, *known, p->request_id);
	}
}

static void trf_model_record(struct trf_cluster *c, struct trf_proposal *p)
{
	struct trf_model *m = &c->model;
	struct trf_volume *v = &m->volumes[p->object];
	bool acked = p->status == 0 && p->code == 0;

	if (p->status != 0) {
		c->stats.lost++;
	} else if (p->code != 0) {
		c->stats.refused++;
	} else {
		c->stats.acked++;
	}
	if (!acked) {
		return;
	}
	switch (p->kind) {
	case TRF_ADD_REGION:
		m->regions[p->object].acked = true;
		break;
	case TRF_REGISTER_NODE:
		m->nodes[p->object].acked = true;
		trf_model_same_id(c, &m->nodes[p->object].id, p,
				  m->nodes[p->object].name);
		break;
	case TRF_CREATE_VOLUME:
		v->create_acked = true;
		if (v->size > v->min_size) {
			v->min_size = v->size;
		}
		trf_model_same_id(c, &v->id, p, v->name);
		break;
	case TRF_RESIZE_VOLUME:
		if (p->size > v->min_size) {
			v->min_size = p->size;
		}
		trf_model_same_id(c, &v->id, p, v->name);
		break;
	case TRF_DELETE_VOLUME:
		v->delete_acked = true;
		trf_model_same_id(c, &v->id, p, v->name);
		break;
	}
}

static void trf_apply_cb(struct raft_apply *req, int status, void *result)
{
	struct trf_proposal *p = req->data;
	struct fsm_result *res = result;

	p->done = true;
	p->pending = false;
	p->status = status;
	if (status == 0) {
		/* A committed command always has a result; a missing one
		 * is reported as an internal error so the check fails. */
		p->code = res != NULL ? res->code : -1;
		p->object_id = res != NULL ? res->object_id : 0;
	}
	free(res);
	trf_model_record(p->cluster, p);
}

/* Fill cmd from proposal p.  Strings point into p and the model (which
 * outlive the encoding); address, tier and body are caller storage. */
static void trf_build_command(const struct trf_cluster *c,
			      const struct trf_proposal *p,
			      Ombra__V1__MetaCommand *cmd, char *address,
			      size_t address_len, Ombra__V1__Tier *tier,
			      Ombra__V1__Tier **tiers, void *body)
{
	const struct trf_model *m = &c->model;

	ombra__v1__meta_command__init(cmd);
	cmd->request_id = (char *)p->request_id;
	cmd->time_unix_ms = p->time_ms;

	switch (p->kind) {
	case TRF_ADD_REGION: {
		Ombra__V1__CmdAddRegion *b = body;

		ombra__v1__cmd_add_region__init(b);
		b->name = (char *)m->regions[p->object].name;
		cmd->cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_REGION;
		cmd->add_region = b;
		break;
	}
	case TRF_REGISTER_NODE: {
		Ombra__V1__CmdRegisterNode *b = body;
		const struct trf_node *node = &m->nodes[p->object];

		ombra__v1__cmd_register_node__init(b);
		ombra__v1__tier__init(tier);
		tier->name = "fast";
		tier->path = "/var/lib/ombra/fast";
		tier->capacity_bytes = p->capacity;
		tiers[0] = tier;
		snprintf(address, address_len, "10.0.%u.%u:7100",
			 node->region % 250, p->object % 250);
		b->name = (char *)node->name;
		b->region = (char *)m->regions[node->region].name;
		b->address = address;
		b->n_tiers = 1;
		b->tiers = tiers;
		cmd->cmd_case = OMBRA__V1__META_COMMAND__CMD_REGISTER_NODE;
		cmd->register_node = b;
		break;
	}
	case TRF_CREATE_VOLUME: {
		Ombra__V1__CmdCreateVolume *b = body;
		const struct trf_volume *v = &m->volumes[p->object];

		ombra__v1__cmd_create_volume__init(b);
		b->name = (char *)v->name;
		b->size_bytes = v->size;
		b->segment_size_bytes = p->segment_size;
		b->home_region = (char *)m->regions[p->home_region].name;
		b->replicas = p->replicas;
		cmd->cmd_case = OMBRA__V1__META_COMMAND__CMD_CREATE_VOLUME;
		cmd->create_volume = b;
		break;
	}
	case TRF_RESIZE_VOLUME: {
		Ombra__V1__CmdResizeVolume *b = body;

		ombra__v1__cmd_resize_volume__init(b);
		b->name = (char *)m->volumes[p->object].name;
		b->new_size_bytes = p->size;
		cmd->cmd_case = OMBRA__V1__META_COMMAND__CMD_RESIZE_VOLUME;
		cmd->resize_volume = b;
		break;
	}
	case TRF_DELETE_VOLUME: {
		Ombra__V1__CmdDeleteVolume *b = body;

		ombra__v1__cmd_delete_volume__init(b);
		b->name = (char *)m->volumes[p->object].name;
		cmd->cmd_case = OMBRA__V1__META_COMMAND__CMD_DELETE_VOLUME;
		cmd->delete_volume = b;
		break;
	}
	}
}

/* A new proposal of `kind` on `object`, linked into the cluster's list,
 * with a fresh request id and the random parameters its command needs.
 * NULL on allocation failure (reported). */
static struct trf_proposal *trf_proposal_new(struct trf_cluster *c,
					     enum trf_kind kind,
					     unsigned object, uint64_t size)
{
	struct trf_proposal *p = calloc(1, sizeof *p);

	if (p == NULL) {
		trf_fail(c, "out of memory for a proposal");
		return NULL;
	}
	p->req.data = p;
	p->cluster = c;
	p->kind = kind;
	p->object = object;
	p->size = size;
	snprintf(p->request_id, sizeof p->request_id, "trf-%u-%lu", c->seed,
		 c->next_request++);
	p->time_ms = (uint64_t)raft_fixture_time(&c->fixture);
	if (kind == TRF_CREATE_VOLUME) {
		/* 0 = default, else a power of two in 64 KiB..4 MiB. */
		p->segment_size = trf_rng_chance(&c->rng, 50)
				      ? 0
				      : (uint64_t)CMD_SEGMENT_MIN
					    << trf_rng_below(&c->rng, 7);
		p->home_region = trf_rng_below(&c->rng, c->model.n_regions);
		p->replicas = trf_rng_below(&c->rng, 4);
	} else if (kind == TRF_REGISTER_NODE) {
		p->capacity = (uint64_t)(1 + trf_rng_below(&c->rng, 64)) << 30;
	}
	p->next = c->proposals;
	c->proposals = p;
	return p;
}

/* A client retry of `orig`: the same command and request id. */
static struct trf_proposal *trf_proposal_retry(struct trf_cluster *c,
					       const struct trf_proposal *orig)
{
	struct trf_proposal *p = calloc(1, sizeof *p);

	if (p == NULL) {
		trf_fail(c, "out of memory for a proposal");
		return NULL;
	}
	p->req.data = p;
	p->cluster = c;
	p->kind = orig->kind;
	p->object = orig->object;
	memcpy(p->request_id, orig->request_id, sizeof p->request_id);
	p->time_ms = orig->time_ms;
	p->size = orig->size;
	p->segment_size = orig->segment_size;
	p->home_region = orig->home_region;
	p->replicas = orig->replicas;
	p->capacity = orig->capacity;
	p->next = c->proposals;
	c->proposals = p;
	c->stats.retries++;
	return p;
}

/* Encode p and raft_apply() it on member i.  A refusal by raft_apply (not
 * leader, I/O error) is recorded as lost.  Returns 0, or -1 when encoding
 * fails (a harness failure, reported with the seed). */
static int trf_submit(struct trf_cluster *c, unsigned i, struct trf_proposal *p)
{
	union {
		Ombra__V1__CmdAddRegion add_region;
		Ombra__V1__CmdRegisterNode register_node;
		Ombra__V1__CmdCreateVolume create_volume;
		Ombra__V1__CmdResizeVolume resize_volume;
		Ombra__V1__CmdDeleteVolume delete_volume;
	} body;
	Ombra__V1__MetaCommand cmd;
	Ombra__V1__Tier tier;
	Ombra__V1__Tier *tiers[1];
	char address[64];
	struct raft_buffer buf;
	int rv;

	p->server = i;
	c->stats.proposals++;
	trf_build_command(c, p, &cmd, address, sizeof address, &tier, tiers,
			  &body);
	rv = cmd_encode(&cmd, &buf);
	if (rv != 0) {
		p->done = true;
		return trf_fail(c, "cmd_encode(%s): %s", cmd_kind(&cmd),
				ombra_strerror(rv));
	}
	rv = raft_apply(raft_fixture_get(&c->fixture, i), &p->req, &buf, 1,
			trf_apply_cb);
	if (rv == 0) {
		p->pending = true;
	} else {
		raft_free(buf.base);
		p->done = true;
		p->status = rv;
		trf_model_record(c, p);
	}
	return 0;
}

/* New proposal of kind on object, submitted on member i; *out (may be
 * NULL) gets it.  Returns 0 or -1 (reported). */
static int trf_propose(struct trf_cluster *c, unsigned i, enum trf_kind kind,
		       unsigned object, uint64_t size,
		       struct trf_proposal **out)
{
	struct trf_proposal *p = trf_proposal_new(c, kind, object, size);

	if (p == NULL) {
		return -1;
	}
	if (out != NULL) {
		*out = p;
	}
	return trf_submit(c, i, p);
}

/* Member to propose on: usually the fixture's stable leader; sometimes any
 * member that believes it leads (a deposed leader in a minority partition
 * accepts entries that will be truncated: their callbacks must fail). */
static bool trf_pick_proposer(struct trf_cluster *c, unsigned *out)
{
	unsigned leader = raft_fixture_leader_index(&c->fixture);
	unsigned candidates[TRF_MAX_SERVERS];
	unsigned n = 0;
	unsigned i;

	if (leader < c->n && !trf_rng_chance(&c->rng, 15)) {
		*out = leader;
		return true;
	}
	for (i = 0; i < c->n; i++) {
		if (trf_live(c, i) && raft_state(raft_fixture_get(
					  &c->fixture, i)) == RAFT_LEADER) {
			candidates[n++] = i;
		}
	}
	if (n == 0) {
		return false;
	}
	*out = candidates[trf_rng_below(&c->rng, n)];
	return true;
}

/* Propose one random command on a leader, if there is one.  The first
 * proposals add a region so that later creates and registrations have a
 * home; creates, resizes and deletes then dominate. */
static int trf_step_propose(struct trf_cluster *c)
{
	struct trf_model *m = &c->model;
	unsigned leader;
	unsigned roll;
	unsigned k;

	if (!trf_pick_proposer(c, &leader)) {
		return 0;
	}
	roll = trf_rng_below(&c->rng, 100);
	if (roll < 8 && c->proposals != NULL) {
		/* A client that timed out retries an earlier request. */
		struct trf_proposal *orig = c->proposals;
		struct trf_proposal *p;

		for (k = trf_rng_below(&c->rng, 16);
		     k > 0 && orig->next != NULL; k--) {
			orig = orig->next;
		}
		p = trf_proposal_retry(c, orig);
		return p != NULL ? trf_submit(c, leader, p) : -1;
	}
	if (m->n_regions == 0 ||
	    (roll < 14 && m->n_regions < TRF_MAX_OBJECTS)) {
		k = m->n_regions++;
		snprintf(m->regions[k].name, TRF_NAME_LEN, "region-%u", k);
		return trf_propose(c, leader, TRF_ADD_REGION, k, 0, NULL);
	}
	if (roll < 26 && m->n_nodes < TRF_MAX_OBJECTS) {
		k = m->n_nodes++;
		snprintf(m->nodes[k].name, TRF_NAME_LEN, "node-%u", k);
		m->nodes[k].region = trf_rng_below(&c->rng, m->n_regions);
		return trf_propose(c, leader, TRF_REGISTER_NODE, k, 0, NULL);
	}
	if (m->n_volumes > 0 && roll < 46) {
		uint64_t size;

		k = trf_rng_below(&c->rng, m->n_volumes);
		/* Mostly growth; sometimes a shrink the FSM must refuse. */
		size = m->volumes[k].size +
		       (uint64_t)trf_rng_below(&c->rng, 64) * TRF_MIB;
		if (trf_rng_chance(&c->rng, 15)) {
			size = CMD_BLOCK_SIZE;
		}
		return trf_propose(c, leader, TRF_RESIZE_VOLUME, k, size, NULL);
	}
	if (m->n_volumes > 0 && roll < 60) {
		k = trf_rng_below(&c->rng, m->n_volumes);
		m->volumes[k].delete_proposed = true;
		return trf_propose(c, leader, TRF_DELETE_VOLUME, k, 0, NULL);
	}
	if (m->n_volumes >= TRF_MAX_OBJECTS) {
		return 0;
	}
	k = m->n_volumes++;
	snprintf(m->volumes[k].name, TRF_NAME_LEN, "vol-%u", k);
	m->volumes[k].size =
	    (uint64_t)(1 + trf_rng_below(&c->rng, 256)) * TRF_MIB;
	return trf_propose(c, leader, TRF_CREATE_VOLUME, k, 0, NULL);
}

/* ---- faults */

/* Heal link i-j (a cut both ways, or loss i -> j).  The fixture kills a
 * member by saturating its links and revives it by desaturating those to
 * live members; cuts are a separate flag.  So a cut is healed at once, and
 * a loss with a killed end only in the bookkeeping (revival clears it). */
static void trf_heal_link(struct trf_cluster *c, unsigned i, unsigned j,
			  bool cut)
{
	bool both_alive = raft_fixture_alive(&c->fixture, i) &&
			  raft_fixture_alive(&c->fixture, j);

	if (cut) {
		trf_cut(c, i, j, false);
	} else {
		c->saturated[i][j] = false;
		if (both_alive) {
			raft_fixture_desaturate(&c->fixture, i, j);
		}
	}
}

/* Heal one of the current link faults at random; returns how many there
 * were. */
static unsigned trf_heal_some_link(struct trf_cluster *c, bool heal)
{
	unsigned n_faults = 0;
	unsigned pick = 0;
	unsigned i;
	unsigned j;

	for (i = 0; i < c->n; i++) {
		for (j = 0; j < c->n; j++) {
			n_faults +=
			    (i < j && c->cut[i][j]) + c->saturated[i][j];
		}
	}
	if (!heal || n_faults == 0) {
		return n_faults;
	}
	pick = trf_rng_below(&c->rng, n_faults);
	for (i = 0; i < c->n; i++) {
		for (j = 0; j < c->n; j++) {
			if (i < j && c->cut[i][j] && pick-- == 0) {
				trf_heal_link(c, i, j, true);
				return n_faults;
			}
			if (c->saturated[i][j] && pick-- == 0) {
				trf_heal_link(c, i, j, false);
				return n_faults;
			}
		}
	}
	return n_faults;
}

/* Network faults between members that are not killed: a symmetric cut, a
 * one-way loss, or a member isolated from everyone; or heal one.  Faults
 * are bounded (n - 1 at a time) so that a majority usually can talk. */
static void trf_step_network(struct trf_cluster *c)
{
	unsigned n_faults = trf_heal_some_link(c, false);
	unsigned i = trf_rng_below(&c->rng, c->n);
	unsigned j = trf_rng_below(&c->rng, c->n - 1);
	unsigned roll = trf_rng_below(&c->rng, 100);

	if (n_faults > 0 && (n_faults >= c->n - 1 || roll < 45)) {
		trf_heal_some_link(c, true);
		return;
	}
	if (j >= i) {
		j++;
	}
	if (!raft_fixture_alive(&c->fixture, i) ||
	    !raft_fixture_alive(&c->fixture, j)) {
		return;
	}
	c->stats.partitions++;
	if (roll < 60) {
		/* Isolate i, typically the leader's fate in a real cut. */
		for (j = 0; j < c->n; j++) {
			if (j != i && raft_fixture_alive(&c->fixture, j) &&
			    !c->cut[i][j]) {
				trf_cut(c, i, j, true);
			}
		}
	} else if (roll < 85) {
		if (!c->cut[i][j]) {
			trf_cut(c, i, j, true);
		}
	} else if (!c->saturated[i][j]) {
		raft_fixture_saturate(&c->fixture, i, j);
		c->saturated[i][j] = true;
	}
}

/* Kill a live member (keeping a majority up) or revive a killed one. */
static void trf_step_crash(struct trf_cluster *c)
{
	unsigned i = trf_rng_below(&c->rng, c->n);

	if (c->broken[i]) {
		return;
	}
	if (!raft_fixture_alive(&c->fixture, i)) {
		raft_fixture_revive(&c->fixture, i);
		trf_apply_links(c, i);
	} else if (trf_live(c, i) && trf_n_down(c) < trf_minority(c)) {
		raft_fixture_kill(&c->fixture, i);
		c->stats.kills++;
	}
}

/* Make a live member's I/O fail for a few requests after a few more.  Most
 * faults hit only leader appends (transient: the proposal fails).  The
 * others may make libraft unavailable for good, so only members that the
 * cluster can afford to lose get them: every member ever so armed counts
 * as lost, and together with the members down now they stay a minority. */
static void trf_step_disk_fault(struct trf_cluster *c)
{
	unsigned i = trf_rng_below(&c->rng, c->n);
	int countdown = (int)trf_rng_below(&c->rng, 8);
	int repeat = 1 + (int)trf_rng_below(&c->rng, 3);
	unsigned at_risk = 0;
	unsigned j;

	if (!trf_live(c, i)) {
		return;
	}
	c->stats.faults++;
	if (trf_rng_chance(&c->rng, 75)) {
		if (!c->armed[i]) {
			trf_shim_fault_arm(&c->shims[i], countdown, repeat,
					   false);
		}
		return;
	}
	for (j = 0; j < c->n; j++) {
		if (c->armed[j] && trf_live(c, j)) {
			at_risk++;
		}
	}
	if (!c->armed[i] && trf_n_down(c) + at_risk >= trf_minority(c)) {
		c->stats.faults--;
		return;
	}
	c->armed[i] = true;
	trf_shim_fault_arm(&c->shims[i], countdown, repeat, true);
}

static void trf_step_latency(struct trf_cluster *c)
{
	unsigned i = trf_rng_below(&c->rng, c->n);

	if (trf_rng_chance(&c->rng, 50)) {
		raft_fixture_set_network_latency(
		    &c->fixture, i, 1 + trf_rng_below(&c->rng, 120));
	} else {
		raft_fixture_set_disk_latency(&c->fixture, i,
					      1 + trf_rng_below(&c->rng, 40));
	}
}

/* The fixture's io->random() returns a per-member constant, so two
 * candidates whose timers line up split every vote forever.  Draw new
 * values in [timeout, 2 * timeout), as raft's own would be, before each
 * schedule step. */
static void trf_shuffle_election_timeouts(struct trf_cluster *c)
{
	unsigned i;

	for (i = 0; i < c->n; i++) {
		raft_fixture_set_randomized_election_timeout(
		    &c->fixture, i,
		    TRF_ELECTION_TIMEOUT_MS +
			trf_rng_below(&c->rng, TRF_ELECTION_TIMEOUT_MS));
	}
}

/* ---- convergence */

struct trf_applied_arg {
	struct trf_cluster *cluster;
	raft_index index;
};

static bool trf_all_live_applied(struct raft_fixture *f, void *arg)
{
	struct trf_applied_arg *a = arg;
	unsigned i;

	(void)f;
	for (i = 0; i < a->cluster->n; i++) {
		if (trf_live(a->cluster, i) &&
		    raft_last_applied(raft_fixture_get(f, i)) < a->index) {
			return false;
		}
	}
	return true;
}

static bool trf_proposal_done(struct raft_fixture *f, void *arg)
{
	const struct trf_proposal *p = arg;

	(void)f;
	return p->done;
}

/* Revive every member not lost to an I/O error, reconnect every link, stop
 * faults and restore the fixture's default latencies and timeouts. */
static void trf_heal(struct trf_cluster *c)
{
	unsigned i;
	unsigned j;

	for (i = 0; i < c->n; i++) {
		trf_shim_fault_arm(&c->shims[i], -1, 0, false);
		if (!raft_fixture_alive(&c->fixture, i) && !c->broken[i]) {
			raft_fixture_revive(&c->fixture, i);
		}
		raft_fixture_set_network_latency(&c->fixture, i,
						 TRF_NETWORK_LATENCY_MS);
		raft_fixture_set_disk_latency(&c->fixture, i,
					      TRF_DISK_LATENCY_MS);
		/* The fixture's "random" timeout is a constant per member:
		 * equal ones would split every vote forever. */
		raft_fixture_set_randomized_election_timeout(
		    &c->fixture, i, TRF_ELECTION_TIMEOUT_MS + i * 100);
	}
	for (i = 0; i < c->n; i++) {
		for (j = 0; j < c->n; j++) {
			if (i == j) {
				continue;
			}
			c->cut[i][j] = false;
			c->saturated[i][j] = false;
			if (c->broken[i] || c->broken[j]) {
				continue;
			}
			raft_fixture_reconnect(&c->fixture, i, j);
			raft_fixture_desaturate(&c->fixture, i, j);
		}
	}
}

/* Commit one more command through the stable leader and wait until every
 * live member applied it.  Its index becomes the common applied index.
 * Returns 0 or -1 (reported). */
static int trf_converge(struct trf_cluster *c, raft_index *index)
{
	struct trf_applied_arg arg;
	struct trf_proposal *p = NULL;
	unsigned attempt;
	unsigned leader;
	unsigned k;

	for (attempt = 0; attempt < TRF_SENTINEL_ATTEMPTS; attempt++) {
		if (!raft_fixture_step_until_has_leader(&c->fixture,
							TRF_LEADER_WAIT_MS)) {
			return trf_fail(c,
					"no stable leader %u ms after "
					"healing",
					TRF_LEADER_WAIT_MS);
		}
		leader = raft_fixture_leader_index(&c->fixture);
		if (c->model.n_regions >= TRF_MAX_OBJECTS) {
			return trf_fail(c, "model full");
		}
		k = c->model.n_regions++;
		snprintf(c->model.regions[k].name, TRF_NAME_LEN, "sentinel-%u",
			 k);
		if (trf_propose(c, leader, TRF_ADD_REGION, k, 0, &p) != 0) {
			return -1;
		}
		raft_fixture_step_until(&c->fixture, trf_proposal_done, p,
					TRF_APPLY_WAIT_MS);
		if (p->done && p->status == 0) {
			break;
		}
	}
	if (p == NULL || !p->done || p->status != 0 || p->code != 0) {
		return trf_fail(c,
				"sentinel command not acknowledged after "
				"%u attempts (status %d, code %d)",
				TRF_SENTINEL_ATTEMPTS,
				p != NULL ? p->status : -1,
				p != NULL ? p->code : -1);
	}
	arg.cluster = c;
	arg.index = p->req.index;
	if (!raft_fixture_step_until(&c->fixture, trf_all_live_applied, &arg,
				     TRF_APPLY_WAIT_MS)) {
		return trf_fail(c,
				"live members did not apply index %llu "
				"within %u ms",
				(unsigned long long)arg.index,
				TRF_APPLY_WAIT_MS);
	}
	*index = arg.index;
	return 0;
}

/* ---- checks */

/* Every volume listed once, with a unique id, and every listed name one
 * that the schedule proposed. */
static int trf_check_volume_list(struct trf_cluster *c, unsigned i)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Volume **vols = NULL;
	size_t n = 0;
	size_t a;
	size_t b;
	int ret = 0;
	int rv;

	rv = fsm_list_volumes(c->servers[i].fsm, NULL, &vols, &n, errmsg);
	if (rv != 0) {
		return trf_fail(c, "server %u: fsm_list_volumes: %s", i,
				errmsg);
	}
	for (a = 0; a < n && ret == 0; a++) {
		if (strncmp(vols[a]->name, "vol-", 4) != 0) {
			ret = trf_fail(c, "server %u: unknown volume \"%s\"", i,
				       vols[a]->name);
		}
		for (b = a + 1; b < n && ret == 0; b++) {
			if (strcmp(vols[a]->name, vols[b]->name) == 0 ||
			    vols[a]->id == vols[b]->id) {
				ret = trf_fail(c,
					       "server %u: volume \"%s\" (id "
					       "%" PRIu64 ") listed twice or "
					       "id shared with \"%s\"",
					       i, vols[a]->name, vols[a]->id,
					       vols[b]->name);
			}
		}
	}
	fsm_free_list(vols, n);
	return ret;
}

static int trf_check_volumes(struct trf_cluster *c, unsigned i)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	unsigned k;

	for (k = 0; k < c->model.n_volumes; k++) {
		const struct trf_volume *v = &c->model.volumes[k];
		Ombra__V1__Volume *got = NULL;
		int rv;

		rv = fsm_get_volume(c->servers[i].fsm, v->name, &got, errmsg);
		if (v->delete_acked && rv != OMBRA_ENOTFOUND) {
			if (got != NULL) {
				protobuf_c_message_free_unpacked(&got->base,
								 NULL);
			}
			return trf_fail(c,
					"server %u: volume %s was "
					"deleted (acknowledged) but "
					"fsm_get_volume returned %s",
					i, v->name, ombra_strerror(rv));
		}
		if (v->create_acked && !v->delete_proposed && rv != 0) {
			return trf_fail(c,
					"server %u: acknowledged volume "
					"%s missing: %s",
					i, v->name, errmsg);
		}
		if (rv != 0 && rv != OMBRA_ENOTFOUND) {
			return trf_fail(c, "server %u: fsm_get_volume(%s): %s",
					i, v->name, errmsg);
		}
		if (rv == 0) {
			int bad = 0;

			if (strcmp(got->name, v->name) != 0) {
				bad = trf_fail(c,
					       "server %u: asked for %s, "
					       "got %s",
					       i, v->name, got->name);
			} else if (v->id != 0 && got->id != v->id) {
				bad = trf_fail(
				    c,
				    "server %u: volume %s has id %" PRIu64
				    ", acknowledged as %" PRIu64,
				    i, v->name, got->id, v->id);
			} else if (v->create_acked &&
				   got->size_bytes < v->min_size) {
				bad = trf_fail(
				    c,
				    "server %u: volume %s is %" PRIu64
				    " bytes, below the acknowledged "
				    "%" PRIu64,
				    i, v->name, got->size_bytes, v->min_size);
			}
			protobuf_c_message_free_unpacked(&got->base, NULL);
			if (bad != 0) {
				return bad;
			}
		}
	}
	return 0;
}

static int trf_check_regions_nodes(struct trf_cluster *c, unsigned i)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Node **nodes = NULL;
	size_t n_nodes = 0;
	unsigned k;
	size_t a;
	int ret = 0;
	int rv;

	for (k = 0; k < c->model.n_regions; k++) {
		Ombra__V1__Region *region = NULL;

		if (!c->model.regions[k].acked) {
			continue;
		}
		rv = fsm_get_region(c->servers[i].fsm, c->model.regions[k].name,
				    &region, errmsg);
		if (rv != 0) {
			return trf_fail(c,
					"server %u: acknowledged region "
					"%s missing: %s",
					i, c->model.regions[k].name, errmsg);
		}
		protobuf_c_message_free_unpacked(&region->base, NULL);
	}
	rv = fsm_list_nodes(c->servers[i].fsm, NULL, &nodes, &n_nodes, errmsg);
	if (rv != 0) {
		return trf_fail(c, "server %u: fsm_list_nodes: %s", i, errmsg);
	}
	for (k = 0; k < c->model.n_nodes && ret == 0; k++) {
		unsigned found = 0;

		for (a = 0; a < n_nodes; a++) {
			if (strcmp(nodes[a]->name, c->model.nodes[k].name) !=
			    0) {
				continue;
			}
			found++;
			if (c->model.nodes[k].id != 0 &&
			    nodes[a]->id != c->model.nodes[k].id) {
				ret = trf_fail(
				    c,
				    "server %u: node %s has id %" PRIu64
				    ", acknowledged as %" PRIu64,
				    i, nodes[a]->name, nodes[a]->id,
				    c->model.nodes[k].id);
			}
		}
		if (ret != 0) {
			break;
		}
		if (found > 1 || (c->model.nodes[k].acked && found != 1)) {
			ret = trf_fail(c,
				       "server %u: node %s listed %u "
				       "times (acknowledged: %s)",
				       i, c->model.nodes[k].name, found,
				       c->model.nodes[k].acked ? "yes" : "no");
		}
	}
	fsm_free_list(nodes, n_nodes);
	return ret;
}

/* All live members: same applied index (the sentinel's), same state hash,
 * and the model's acknowledged effects present on each. */
static int trf_check_cluster(struct trf_cluster *c, raft_index index)
{
	char first_hash[65] = "";
	unsigned first = c->n;
	unsigned live = 0;
	unsigned i;

	if (c->violation[0] != '\0') {
		return trf_fail(c, "%s", c->violation);
	}
	for (i = 0; i < c->n; i++) {
		char hash[65];
		uint64_t applied;
		int rv;

		if (!trf_live(c, i)) {
			continue;
		}
		live++;
		applied = fsm_applied_index(c->servers[i].fsm);
		if (applied != index) {
			return trf_fail(c,
					"server %u: fsm applied index %" PRIu64
					", expected %llu",
					i, applied, (unsigned long long)index);
		}
		rv = fsm_state_hash(c->servers[i].fsm, hash);
		if (rv != 0) {
			return trf_fail(c, "server %u: fsm_state_hash: %s", i,
					ombra_strerror(rv));
		}
		if (first == c->n) {
			first = i;
			memcpy(first_hash, hash, sizeof hash);
		} else if (strcmp(hash, first_hash) != 0) {
			return trf_fail(c,
					"server %u state hash %s differs "
					"from server %u's %s",
					i, hash, first, first_hash);
		}
		if (trf_check_volume_list(c, i) != 0 ||
		    trf_check_volumes(c, i) != 0 ||
		    trf_check_regions_nodes(c, i) != 0) {
			return -1;
		}
	}
	if (live <= c->n / 2) {
		return trf_fail(c, "only %u of %u members live at the end",
				live, c->n);
	}
	return 0;
}

/* Add this cluster's counters (and its fsms' snapshot counters) to sum. */
static void trf_collect_stats(struct trf_cluster *c, struct trf_stats *sum)
{
	const struct trf_stats *st = &c->stats;
	unsigned i;

	for (i = 0; i < c->n; i++) {
		sum->snapshots_taken += fsm_snapshots_taken(c->servers[i].fsm);
		sum->snapshots_restored +=
		    fsm_snapshots_restored(c->servers[i].fsm);
		sum->entries_applied +=
		    raft_last_applied(raft_fixture_get(&c->fixture, i));
	}
	sum->proposals += st->proposals;
	sum->acked += st->acked;
	sum->refused += st->refused;
	sum->retries += st->retries;
	sum->lost += st->lost;
	sum->kills += st->kills;
	sum->partitions += st->partitions;
	sum->faults += st->faults;
	sum->broken += st->broken;
	sum->orphans += st->orphans;
	for (i = 0; i < c->n; i++) {
		sum->clamped += c->shims[i].guard.adjusted;
	}
}

/* ---- the randomized schedule */

static int trf_run_seed(unsigned seed, unsigned steps, struct trf_stats *st)
{
	struct trf_cluster *c;
	raft_index index;
	unsigned step;
	int ret = 0;

	trf_current_seed = (sig_atomic_t)seed;
	c = trf_cluster_create(seed, seed % 2 == 1 ? 3 : 5);
	if (c == NULL) {
		return -1;
	}
	for (step = 0; step < steps && ret == 0; step++) {
		unsigned roll = trf_rng_below(&c->rng, 100);

		trf_shuffle_election_timeouts(c);
		if (roll < 45) {
			ret = trf_step_propose(c);
		} else if (roll < 60) {
			trf_step_network(c);
		} else if (roll < 68) {
			trf_step_crash(c);
		} else if (roll < 72) {
			trf_step_disk_fault(c);
		} else if (roll < 78) {
			trf_step_latency(c);
		}
		/* Let virtual time run: a few events, sometimes long
		 * enough for an election. */
		if (trf_rng_chance(&c->rng, 5)) {
			raft_fixture_step_until_elapsed(
			    &c->fixture,
			    trf_rng_below(&c->rng,
					  3 * TRF_ELECTION_TIMEOUT_MS));
		} else {
			raft_fixture_step_n(&c->fixture,
					    1 + trf_rng_below(&c->rng, 24));
		}
		trf_retire_broken(c);
	}
	if (ret == 0) {
		trf_heal(c);
		ret = trf_converge(c, &index);
	}
	if (ret == 0) {
		ret = trf_check_cluster(c, index);
	}
	trf_collect_stats(c, st);
	trf_cluster_destroy(c);
	trf_current_seed = -1;
	return ret;
}

static void trf_print_stats(const char *what, const struct trf_stats *st)
{
	printf("%s: %lu proposals (%lu acknowledged, %lu refused by the "
	       "fsm, %lu lost; %lu client retries), %lu entries applied, %lu "
	       "kills, %lu link "
	       "faults, %lu disk faults (%lu members lost to them), %lu "
	       "snapshots taken, %lu restored, %lu log-matching guard "
	       "clamps, %lu apply results without a proposer\n",
	       what, st->proposals, st->acked, st->refused, st->lost,
	       st->retries, st->entries_applied, st->kills, st->partitions,
	       st->faults, st->broken, st->snapshots_taken,
	       st->snapshots_restored, st->clamped, st->orphans);
}

static void test_random_schedules(void **state)
{
	struct trf_stats st;
	unsigned only = trf_env_unsigned("OMBRA_RAFT_SEED", 0);
	unsigned n_seeds =
	    trf_env_unsigned("OMBRA_RAFT_SEEDS", TRF_DEFAULT_SEEDS);
	unsigned steps =
	    trf_env_unsigned("OMBRA_RAFT_STEPS", TRF_DEFAULT_STEPS);
	unsigned first = only != 0 ? only : 1;
	unsigned last = only != 0 ? only : n_seeds;
	unsigned failures = 0;
	unsigned seed;
	char what[64];

	(void)state;
	memset(&st, 0, sizeof st);
	for (seed = first; seed <= last && failures < TRF_MAX_FAILURES;
	     seed++) {
		if (trf_run_seed(seed, steps, &st) != 0) {
			failures++;
		}
	}
	snprintf(what, sizeof what, "seeds %u..%u, %u steps", first, seed - 1,
		 steps);
	trf_print_stats(what, &st);
	assert_int_equal(failures, 0);
	/* Over a full run the schedule must exercise what it claims to (one
	 * seed alone may legitimately never reach the threshold). */
	assert_true(st.acked > 0);
	if (last - first >= 20) {
		assert_true(st.snapshots_taken > 0);
		assert_true(st.snapshots_restored > 0);
	}
}

/* ---- snapshot catch-up */

/* Commit count proposals through the stable leader, stepping until each
 * is acknowledged.  Returns 0 or -1 (reported). */
static int trf_commit_volumes(struct trf_cluster *c, unsigned count)
{
	unsigned k;

	for (k = 0; k < count; k++) {
		struct trf_proposal *p = NULL;
		unsigned leader;
		unsigned v;

		if (!raft_fixture_step_until_has_leader(&c->fixture,
							TRF_LEADER_WAIT_MS)) {
			return trf_fail(c, "no leader");
		}
		leader = raft_fixture_leader_index(&c->fixture);
		v = c->model.n_volumes++;
		snprintf(c->model.volumes[v].name, TRF_NAME_LEN, "vol-%u", v);
		c->model.volumes[v].size = (uint64_t)(v + 1) * TRF_MIB;
		if (trf_propose(c, leader, TRF_CREATE_VOLUME, v, 0, &p) != 0) {
			return -1;
		}
		raft_fixture_step_until(&c->fixture, trf_proposal_done, p,
					TRF_APPLY_WAIT_MS);
		if (!p->done || p->status != 0 || p->code != 0) {
			return trf_fail(c,
					"create %s not acknowledged "
					"(done %d, status %d, code %d)",
					c->model.volumes[v].name, p->done,
					p->status, p->code);
		}
	}
	return 0;
}

static int trf_setup(void **state, unsigned n)
{
	trf_current_seed = 0;
	*state = trf_cluster_create(0, n);
	return *state != NULL ? 0 : -1;
}

static int trf_setup_three(void **state)
{
	return trf_setup(state, 3);
}

static int trf_setup_five(void **state)
{
	return trf_setup(state, 5);
}

static int trf_teardown(void **state)
{
	trf_cluster_destroy(*state);
	trf_current_seed = -1;
	return 0;
}

/* Take a minority of followers down, commit three snapshot thresholds of
 * entries (so what they miss is gone from the leader's log: threshold +
 * trailing < 3 * threshold), bring them back: they can only catch up
 * through InstallSnapshot, and must end with the leader's state. */
static void test_snapshot_catch_up(void **state)
{
	struct trf_cluster *c = *state;
	struct trf_proposal *p = NULL;
	unsigned down[TRF_MAX_SERVERS];
	unsigned n_down = trf_minority(c);
	unsigned leader;
	unsigned d;
	unsigned k;
	raft_index index;
	char hash_leader[65];
	char hash_down[65];

	/* A region for the volumes, committed everywhere. */
	assert_true(raft_fixture_step_until_has_leader(&c->fixture,
						       TRF_LEADER_WAIT_MS));
	leader = raft_fixture_leader_index(&c->fixture);
	k = c->model.n_regions++;
	snprintf(c->model.regions[k].name, TRF_NAME_LEN, "region-%u", k);
	assert_int_equal(trf_propose(c, leader, TRF_ADD_REGION, k, 0, &p), 0);
	raft_fixture_step_until(&c->fixture, trf_proposal_done, p,
				TRF_APPLY_WAIT_MS);
	assert_true(p->done && p->status == 0 && p->code == 0);

	for (d = 0; d < n_down; d++) {
		down[d] = (leader + 1 + d) % c->n;
		raft_fixture_kill(&c->fixture, down[d]);
	}
	assert_int_equal(trf_commit_volumes(c, 3 * TRF_SNAPSHOT_THRESHOLD), 0);
	leader = raft_fixture_leader_index(&c->fixture);
	assert_true(leader < c->n);
	assert_true(fsm_snapshots_taken(c->servers[leader].fsm) > 0);
	for (d = 0; d < n_down; d++) {
		assert_int_equal(
		    fsm_snapshots_restored(c->servers[down[d]].fsm), 0);
		raft_fixture_revive(&c->fixture, down[d]);
	}

	assert_int_equal(trf_converge(c, &index), 0);
	leader = raft_fixture_leader_index(&c->fixture);
	assert_true(leader < c->n);
	assert_int_equal(fsm_state_hash(c->servers[leader].fsm, hash_leader),
			 0);
	for (d = 0; d < n_down; d++) {
		struct fsm *f = c->servers[down[d]].fsm;

		printf("snapshot catch-up (%u members): server %u restored "
		       "%" PRIu64 " snapshot(s), applied index %" PRIu64
		       " of %llu\n",
		       c->n, down[d], fsm_snapshots_restored(f),
		       fsm_applied_index(f), (unsigned long long)index);
		assert_true(fsm_snapshots_restored(f) > 0);
		assert_int_equal(fsm_state_hash(f, hash_down), 0);
		assert_string_equal(hash_down, hash_leader);
	}
	assert_int_equal(trf_check_cluster(c, index), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    {.name = "snapshot_catch_up_3_members",
	     .test_func = test_snapshot_catch_up,
	     .setup_func = trf_setup_three,
	     .teardown_func = trf_teardown},
	    {.name = "snapshot_catch_up_5_members",
	     .test_func = test_snapshot_catch_up,
	     .setup_func = trf_setup_five,
	     .teardown_func = trf_teardown},
	    cmocka_unit_test(test_random_schedules),
	};

	/* The fsm logs every snapshot restore at info level: keep the
	 * output to warnings unless OMBRA_LOG_LEVEL asks for more. */
	log_init("raft-fixture", LOG_WARN);
	signal(SIGABRT, trf_on_abort);
	/* Unbuffered so that the summary lines interleave with cmocka's. */
	setvbuf(stdout, NULL, _IONBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
