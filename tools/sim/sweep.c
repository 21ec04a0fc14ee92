/* sweep.c: the sweep mode of ombra-sim (see sweep.h). */
#include "tools/sim/sweep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "tools/sim/report.h"

#define SWEEP_MAX 64

/* Split a comma list in place into at most max items. */
static int split(char *s, char **items, int max)
{
	int n = 0;

	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		if (n == max)
			return -1;
		items[n++] = tok;
	}
	return n;
}

static int parse_size(const char *s, uint64_t footprint, size_t *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v <= 0)
		return -1;
	if (strcmp(end, "%") == 0)
		v = (double)footprint * v / 100.0;
	else if (*end != '\0')
		return -1;
	*out = v < 1 ? 1 : (size_t)(v + 0.5);
	return 0;
}

static int plot(const char *png, const struct sim_result *res, int nres,
		const char *title, char *errmsg)
{
	char dat[] = "/tmp/ombra-sim-plot-XXXXXX";
	char gp[] = "/tmp/ombra-sim-gp-XXXXXX";
	int fd = mkstemp(dat), fd2 = fd >= 0 ? mkstemp(gp) : -1;
	FILE *d, *g;
	int series = 0, status = -1;
	pid_t pid;

	if (fd < 0 || fd2 < 0) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "mkstemp: %s",
			 strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(dat);
		}
		return -1;
	}
	d = fdopen(fd, "w");
	g = fdopen(fd2, "w");
	fprintf(g, "set terminal png size 1000,640\nset output '%s'\n", png);
	fprintf(g, "set title '%s'\nset logscale x\nset key outside\n", title);
	fprintf(g, "set xlabel 'cache size (blocks)'\n"
		   "set ylabel 'read hit ratio (%%)'\nset grid\nplot ");
	/* One series per (policy, predictor), in the order of res. */
	for (int i = 0; i < nres; i++) {
		bool first = true;

		for (int j = 0; j < i; j++)
			if (res[j].cfg.policy == res[i].cfg.policy &&
			    strcmp(res[j].cfg.predictor,
				   res[i].cfg.predictor) == 0)
				first = false;
		if (!first)
			continue;
		for (int j = i; j < nres; j++)
			if (res[j].cfg.policy == res[i].cfg.policy &&
			    strcmp(res[j].cfg.predictor,
				   res[i].cfg.predictor) == 0)
				fprintf(d, "%zu %.4f\n",
					res[j].cfg.cache_blocks,
					100 * res[j].hit_ratio);
		fprintf(d, "\n\n");
		fprintf(g, "%s'%s' index %d with linespoints title '%s %s'",
			series ? ", " : "", dat, series,
			cache_policy_name(res[i].cfg.policy),
			res[i].cfg.predictor);
		series++;
	}
	fprintf(g, "\n");
	fclose(d);
	fclose(g);
	pid = fork();
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", gp, (char *)NULL);
		_exit(127);
	}
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0)
		status = 0;
	else
		snprintf(errmsg, OMBRA_ERRMSG_LEN,
			 "gnuplot failed or is missing (Debian gnuplot-nox); "
			 "no plot written to %s",
			 png);
	unlink(dat);
	unlink(gp);
	return status == 0 ? 0 : -1;
}

static bool known_bad(char **bad, int nbad, const char *name)
{
	for (int i = 0; i < nbad; i++)
		if (strcmp(bad[i], name) == 0)
			return true;
	return false;
}

int sweep_run(const struct sim_trace *t, const struct sweep_spec *s, FILE *out,
	      char *errmsg)
{
	char sizes_buf[512], preds_buf[512], pols_buf[256];
	char *sizes[SWEEP_MAX], *preds[SWEEP_MAX], *pols[SWEEP_MAX];
	char *bad[SWEEP_MAX];
	int nsizes, npreds, npols, nres = 0, nbad = 0;
	struct sim_result *res;
	uint64_t footprint;
	FILE *csv = NULL;
	int rc = -1;

	snprintf(sizes_buf, sizeof(sizes_buf), "%s", s->sizes);
	snprintf(preds_buf, sizeof(preds_buf), "%s", s->predictors);
	snprintf(pols_buf, sizeof(pols_buf), "%s", s->policies);
	nsizes = split(sizes_buf, sizes, SWEEP_MAX);
	npreds = split(preds_buf, preds, SWEEP_MAX);
	npols = split(pols_buf, pols, SWEEP_MAX);
	if (nsizes <= 0 || npreds <= 0 || npols <= 0) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN,
			 "--sizes, --predictors and --policies need 1..%d "
			 "comma-separated items",
			 SWEEP_MAX);
		return -1;
	}
	footprint = sim_footprint(t, s->base.block_size);
	fprintf(out, "trace %s: %zu requests, footprint %llu blocks of %u B\n",
		t->path, t->n, (unsigned long long)footprint,
		s->base.block_size);
	res = calloc((size_t)(nsizes * npreds * npols), sizeof(*res));
	if (res == NULL) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "out of memory");
		return -1;
	}
	if (s->csv_path != NULL) {
		csv = fopen(s->csv_path, "w");
		if (csv == NULL) {
			snprintf(errmsg, OMBRA_ERRMSG_LEN, "%s: %s",
				 s->csv_path, strerror(errno));
			goto out;
		}
		report_csv_header(csv);
	}
	report_table_header(out);
	for (int pi = 0; pi < npols; pi++) {
		for (int di = 0; di < npreds; di++) {
			if (known_bad(bad, nbad, preds[di]))
				continue;
			for (int si = 0; si < nsizes; si++) {
				struct sim_config cfg = s->base;
				char err[OMBRA_ERRMSG_LEN];

				if (cache_policy_parse(pols[pi], &cfg.policy) !=
				    0) {
					snprintf(errmsg, OMBRA_ERRMSG_LEN,
						 "unknown policy '%s' (lru, "
						 "arc, s3fifo)",
						 pols[pi]);
					goto out;
				}
				if (parse_size(sizes[si], footprint,
					       &cfg.cache_blocks) != 0) {
					snprintf(errmsg, OMBRA_ERRMSG_LEN,
						 "bad cache size '%s' (blocks "
						 "or N%% of the footprint)",
						 sizes[si]);
					goto out;
				}
				cfg.predictor = preds[di];
				if (sim_run(t, &cfg, &res[nres], err) != 0) {
					fprintf(stderr,
						"ombra-sim: skipping predictor "
						"%s: %s\n",
						preds[di], err);
					bad[nbad++] = preds[di];
					break;
				}
				report_table_row(out, &res[nres]);
				fflush(out);
				if (csv != NULL)
					report_csv_row(csv, t, &res[nres]);
				nres++;
			}
		}
	}
	if (csv != NULL && (fflush(csv) != 0 || ferror(csv))) {
		snprintf(errmsg, OMBRA_ERRMSG_LEN, "%s: write error",
			 s->csv_path);
		goto out;
	}
	if (s->plot_path != NULL && nres > 0) {
		char err[OMBRA_ERRMSG_LEN];

		if (plot(s->plot_path, res, nres, t->path, err) != 0)
			fprintf(stderr, "ombra-sim: %s\n", err);
		else
			fprintf(out, "plot: %s\n", s->plot_path);
	}
	rc = 0;
out:
	if (csv != NULL)
		fclose(csv);
	free(res);
	return rc;
}
