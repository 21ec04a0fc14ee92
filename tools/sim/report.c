/* report.c: ombra-sim output formats (see report.h).  Percentages are
 * printed with two decimals, ratios in JSON/CSV with six. */
#include "tools/sim/report.h"

#include <inttypes.h>

static const char *base(const char *path)
{
	const char *s = path;

	for (const char *p = path; *p; p++)
		if (*p == '/')
			s = p + 1;
	return s;
}

void report_text(FILE *f, const struct sim_trace *t, const struct sim_result *r)
{
	const struct cache_stats *s = &r->st;

	fprintf(f, "trace        %s (%zu requests)\n", t->path, t->n);
	fprintf(f, "cache        %zu blocks of %u B, policy %s\n",
		r->cfg.cache_blocks, r->cfg.block_size,
		cache_policy_name(r->cfg.policy));
	fprintf(f, "predictor    %s\n", r->cfg.predictor);
	fprintf(f, "reads        %" PRIu64 " blocks, %" PRIu64 " hits\n",
		s->reads, s->read_hits);
	fprintf(f, "writes       %" PRIu64 " blocks, %" PRIu64 " hits\n",
		s->writes, s->write_hits);
	fprintf(f, "hit ratio    %.2f%%\n", 100 * r->hit_ratio);
	fprintf(f,
		"prefetched   %" PRIu64 " blocks (%" PRIu64 " bytes), %" PRIu64
		" already cached\n",
		s->prefetch_issued, r->bytes_prefetched, s->prefetch_redundant);
	fprintf(f, "precision    %.2f%% (%" PRIu64 " read before eviction)\n",
		100 * r->precision, s->prefetch_used);
	fprintf(f, "coverage     %.2f%% of would-be read misses\n",
		100 * r->coverage);
	fprintf(f, "wasted       %" PRIu64 " bytes\n", r->bytes_wasted);
	fprintf(f,
		"speed        %.0f accesses/s replay (%" PRIu64
		" accesses in %.3f s); trace load %.3f s\n",
		r->accesses_per_s, r->accesses, r->seconds, t->load_seconds);
}

void report_json(FILE *f, const struct sim_trace *t, const struct sim_result *r)
{
	const struct cache_stats *s = &r->st;

	fprintf(f,
		"{\"trace\":\"%s\",\"requests\":%zu,\"policy\":\"%s\","
		"\"predictor\":\"%s\",\"cache_blocks\":%zu,"
		"\"block_size\":%u,\"reads\":%" PRIu64 ",\"read_hits\":%" PRIu64
		",\"writes\":%" PRIu64 ",\"write_hits\":%" PRIu64
		",\"hit_ratio\":%.6f,"
		"\"prefetch_issued\":%" PRIu64 ",\"prefetch_used\":%" PRIu64
		",\"prefetch_redundant\":%" PRIu64
		",\"precision\":%.6f,\"coverage\":%.6f,"
		"\"bytes_prefetched\":%" PRIu64 ",\"bytes_wasted\":%" PRIu64
		",\"accesses\":%" PRIu64 ",\"seconds\":%.6f,"
		"\"accesses_per_s\":%.0f}\n",
		base(t->path), t->n, cache_policy_name(r->cfg.policy),
		r->cfg.predictor, r->cfg.cache_blocks, r->cfg.block_size,
		s->reads, s->read_hits, s->writes, s->write_hits, r->hit_ratio,
		s->prefetch_issued, s->prefetch_used, s->prefetch_redundant,
		r->precision, r->coverage, r->bytes_prefetched, r->bytes_wasted,
		r->accesses, r->seconds, r->accesses_per_s);
}

void report_csv_header(FILE *f)
{
	fprintf(f, "trace,policy,predictor,cache_blocks,block_size,reads,"
		   "read_hits,hit_ratio,prefetch_issued,prefetch_used,"
		   "precision,coverage,bytes_prefetched,bytes_wasted,"
		   "accesses_per_s\n");
}

void report_csv_row(FILE *f, const struct sim_trace *t,
		    const struct sim_result *r)
{
	fprintf(f,
		"%s,%s,%s,%zu,%u,%" PRIu64 ",%" PRIu64 ",%.6f,%" PRIu64
		",%" PRIu64 ",%.6f,%.6f,%" PRIu64 ",%" PRIu64 ",%.0f\n",
		base(t->path), cache_policy_name(r->cfg.policy),
		r->cfg.predictor, r->cfg.cache_blocks, r->cfg.block_size,
		r->st.reads, r->st.read_hits, r->hit_ratio,
		r->st.prefetch_issued, r->st.prefetch_used, r->precision,
		r->coverage, r->bytes_prefetched, r->bytes_wasted,
		r->accesses_per_s);
}

void report_table_header(FILE *f)
{
	fprintf(f, "%-8s %-9s %12s %8s %9s %9s %12s\n", "policy", "predictor",
		"cache", "hit%", "prec%", "cover%", "prefetchMB");
}

void report_table_row(FILE *f, const struct sim_result *r)
{
	fprintf(f, "%-8s %-9s %12zu %8.2f %9.2f %9.2f %12.1f\n",
		cache_policy_name(r->cfg.policy), r->cfg.predictor,
		r->cfg.cache_blocks, 100 * r->hit_ratio, 100 * r->precision,
		100 * r->coverage, (double)r->bytes_prefetched / 1048576.0);
}
