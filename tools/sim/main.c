/* main.c: ombra-sim, the offline trace simulator of issue 4
 * (docs/simulator.md): replays a recorded trace through a cache of a
 * given size with any eviction policy and predictor, or sweeps sizes x
 * predictors x policies.  Exit status: 0 done, 1 a run failed (message on
 * stderr), 2 bad command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tools/sim/report.h"
#include "tools/sim/sim.h"
#include "tools/sim/sweep.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ombra-sim --trace FILE [--format vscsi|lis|msr]\n"
	    "         --cache-blocks N|P%% [--block-size 512|4096]\n"
	    "         [--policy lru|arc|s3fifo]\n"
	    "         [--predictor none|obl|amp|mithril|lstm|adaptive]\n"
	    "         [--model FILE] [--prefetch-share PCT] [--threshold P]\n"
	    "         [--max-candidates N] [--json] [--csv FILE]\n"
	    "         [--control] [--budget-bps N] [--budget-cache-bytes N]\n"
	    "       ombra-sim --trace FILE --sweep [--sizes LIST]\n"
	    "         [--predictors LIST] [--policies LIST] [--csv FILE]\n"
	    "         [--plot FILE.png] [--block-size ...]\n"
	    "Cache sizes are blocks of --block-size (default 4096) or a\n"
	    "percentage of the trace footprint; sweep defaults: --sizes\n"
	    "0.1%%,1%%,10%% --predictors none,obl,amp,mithril,lstm,adaptive\n"
	    "--policies lru,arc.\n");
}

static int parse_uint(const char *s, unsigned long long max,
		      unsigned long long *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s || *end != '\0' || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

enum {
	OPT_TRACE = 1,
	OPT_FORMAT,
	OPT_BLOCKS,
	OPT_BS,
	OPT_POLICY,
	OPT_PRED,
	OPT_MODEL,
	OPT_JSON,
	OPT_CSV,
	OPT_SHARE,
	OPT_THRESH,
	OPT_MAXCAND,
	OPT_SWEEP,
	OPT_SIZES,
	OPT_PREDS,
	OPT_POLS,
	OPT_PLOT,
	OPT_HELP,
	OPT_CONTROL,
	OPT_BUDGET_BPS,
	OPT_BUDGET_CACHE,
};

static const struct option options[] = {
    {"trace", required_argument, NULL, OPT_TRACE},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"cache-blocks", required_argument, NULL, OPT_BLOCKS},
    {"block-size", required_argument, NULL, OPT_BS},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"predictor", required_argument, NULL, OPT_PRED},
    {"model", required_argument, NULL, OPT_MODEL},
    {"json", no_argument, NULL, OPT_JSON},
    {"csv", required_argument, NULL, OPT_CSV},
    {"prefetch-share", required_argument, NULL, OPT_SHARE},
    {"threshold", required_argument, NULL, OPT_THRESH},
    {"max-candidates", required_argument, NULL, OPT_MAXCAND},
    {"sweep", no_argument, NULL, OPT_SWEEP},
    {"sizes", required_argument, NULL, OPT_SIZES},
    {"predictors", required_argument, NULL, OPT_PREDS},
    {"policies", required_argument, NULL, OPT_POLS},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"help", no_argument, NULL, OPT_HELP},
    {"control", no_argument, NULL, OPT_CONTROL},
    {"budget-bps", required_argument, NULL, OPT_BUDGET_BPS},
    {"budget-cache-bytes", required_argument, NULL, OPT_BUDGET_CACHE},
    {NULL, 0, NULL, 0},
};

struct args {
	const char *trace;
	enum trace_format fmt;
	const char *blocks;
	bool json, sweep;
	const char *csv, *plot;
	struct sweep_spec sw;
	struct sim_config cfg;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	unsigned long long v;
	int opt;

	memset(a, 0, sizeof(*a));
	sim_config_default(&a->cfg);
	a->sw.sizes = "0.1%,1%,10%";
	a->sw.predictors = "none,obl,amp,mithril,lstm,adaptive";
	a->sw.policies = "lru,arc";
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_TRACE:
			a->trace = optarg;
			break;
		case OPT_FORMAT:
			if (trace_format_parse(optarg, &a->fmt) != 0) {
				fprintf(stderr,
					"ombra-sim: --format %s: "
					"vscsi, lis or msr\n",
					optarg);
				return -1;
			}
			break;
		case OPT_BLOCKS:
			a->blocks = optarg;
			break;
		case OPT_BS:
			if (parse_uint(optarg, 4096, &v) != 0 ||
			    (v != 512 && v != 4096)) {
				fprintf(stderr,
					"ombra-sim: --block-size %s: "
					"512 or 4096\n",
					optarg);
				return -1;
			}
			a->cfg.block_size = (uint32_t)v;
			break;
		case OPT_POLICY:
			if (cache_policy_parse(optarg, &a->cfg.policy) != 0) {
				fprintf(stderr,
					"ombra-sim: --policy %s: lru, "
					"arc or s3fifo\n",
					optarg);
				return -1;
			}
			break;
		case OPT_PRED:
			a->cfg.predictor = optarg;
			break;
		case OPT_MODEL:
			a->cfg.model_path = optarg;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_CSV:
			a->csv = optarg;
			break;
		case OPT_SHARE:
			if (parse_uint(optarg, 100, &v) != 0) {
				fprintf(stderr,
					"ombra-sim: --prefetch-share "
					"%s: 0..100\n",
					optarg);
				return -1;
			}
			a->cfg.prefetch_pct = (unsigned)v;
			break;
		case OPT_THRESH: {
			char *end;

			a->cfg.threshold = strtof(optarg, &end);
			if (end == optarg || *end != '\0' ||
			    !(a->cfg.threshold >= 0 && a->cfg.threshold <= 1)) {
				fprintf(stderr,
					"ombra-sim: --threshold %s: "
					"0..1\n",
					optarg);
				return -1;
			}
			break;
		}
		case OPT_MAXCAND:
			if (parse_uint(optarg, 4096, &v) != 0 || v == 0) {
				fprintf(stderr,
					"ombra-sim: --max-candidates "
					"%s: 1..4096\n",
					optarg);
				return -1;
			}
			a->cfg.max_candidates = (size_t)v;
			break;
		case OPT_SWEEP:
			a->sweep = true;
			break;
		case OPT_CONTROL:
			a->cfg.control = true;
			break;
		case OPT_BUDGET_BPS:
		case OPT_BUDGET_CACHE:
			if (parse_uint(optarg, UINT64_MAX / 2, &v) != 0) {
				fprintf(stderr,
					"ombra-sim: --budget-%s %s: a byte "
					"count\n",
					opt == OPT_BUDGET_BPS ? "bps"
							      : "cache-bytes",
					optarg);
				return -1;
			}
			if (opt == OPT_BUDGET_BPS)
				a->cfg.budget_bps = v;
			else
				a->cfg.budget_cache_bytes = v;
			a->cfg.control = true;
			break;
		case OPT_SIZES:
			a->sw.sizes = optarg;
			break;
		case OPT_PREDS:
			a->sw.predictors = optarg;
			break;
		case OPT_POLS:
			a->sw.policies = optarg;
			break;
		case OPT_PLOT:
			a->plot = optarg;
			break;
		case OPT_HELP:
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (optind != argc || a->trace == NULL) {
		fprintf(stderr, "ombra-sim: %s\n",
			a->trace == NULL ? "--trace is required"
					 : "unexpected argument");
		return -1;
	}
	if (!a->sweep && a->blocks == NULL) {
		fprintf(stderr, "ombra-sim: --cache-blocks is required "
				"(or --sweep)\n");
		return -1;
	}
	return 0;
}

static int single(const struct args *a, const struct sim_trace *t)
{
	struct sim_config cfg = a->cfg;
	char err[OMBRA_ERRMSG_LEN];
	struct sim_result r;
	char *end;
	double v = strtod(a->blocks, &end);

	if (end == a->blocks || v <= 0 ||
	    (*end != '\0' && strcmp(end, "%") != 0)) {
		fprintf(stderr,
			"ombra-sim: --cache-blocks %s: a block count "
			"or N%% of the footprint\n",
			a->blocks);
		return 2;
	}
	if (*end == '%')
		v = (double)sim_footprint(t, cfg.block_size) * v / 100.0;
	cfg.cache_blocks = v < 1 ? 1 : (size_t)(v + 0.5);
	if (sim_run(t, &cfg, &r, err) != 0) {
		fprintf(stderr, "ombra-sim: %s\n", err);
		return 1;
	}
	if (a->json)
		report_json(stdout, t, &r);
	else
		report_text(stdout, t, &r);
	if (a->csv != NULL) {
		FILE *f = fopen(a->csv, "a+");
		int bad;

		if (f == NULL) {
			perror(a->csv);
			return 1;
		}
		fseek(f, 0, SEEK_END);
		if (ftell(f) == 0)
			report_csv_header(f);
		report_csv_row(f, t, &r);
		bad = ferror(f);
		if (fclose(f) != 0 || bad) {
			fprintf(stderr, "ombra-sim: %s: write error\n", a->csv);
			return 1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	char err[OMBRA_ERRMSG_LEN];
	struct sim_trace t;
	struct args a;
	int rc;

	if (parse_args(argc, argv, &a) != 0) {
		usage(stderr);
		return 2;
	}
	if (sim_trace_load(a.trace, a.fmt, &t, err) != 0) {
		fprintf(stderr, "ombra-sim: %s\n", err);
		return 1;
	}
	if (a.sweep) {
		a.sw.base = a.cfg;
		a.sw.csv_path = a.csv;
		a.sw.plot_path = a.plot;
		rc = sweep_run(&t, &a.sw, stdout, err) == 0 ? 0 : 1;
		if (rc != 0)
			fprintf(stderr, "ombra-sim: %s\n", err);
	} else {
		rc = single(&a, &t);
	}
	sim_trace_free(&t);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
