/* args.c: ombra-proxy's command-line flags (see proxy_args_usage()).
 *
 * Failure: a missing required flag, an unknown flag, a malformed
 * HOST:PORT, an unknown log level or an incomplete TLS set is reported
 * with a message naming it (OMBRA_EINVAL); nothing is started. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "err.h"
#include "nbd.h"
#include "proxy_io.h"
#include "size.h"

#define DEFAULT_NBD "127.0.0.1:10809"

enum {
	OPT_REGION = 256,
	OPT_LISTEN,
	OPT_METAD,
	OPT_NBD,
	OPT_HTTP,
	OPT_LOG_LEVEL,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_NAME,
	OPT_PROP_MAX,
	OPT_PROP_LINGER,
	OPT_READ_POLL,
	OPT_ACCESS_MAX,
	OPT_PCACHE_SEGS,
	OPT_PREFETCH,
	OPT_PF_BUDGET,
	OPT_PF_CACHE,
	OPT_PF_MODEL,
	OPT_SINGLE_WRITER,
	OPT_WRITER_LEASE,
	OPT_WRITER_IDLE,
	OPT_NBD_CONSISTENCY,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option options[] = {
    {"region", required_argument, NULL, OPT_REGION},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"metad", required_argument, NULL, OPT_METAD},
    {"nbd", required_argument, NULL, OPT_NBD},
    {"http", required_argument, NULL, OPT_HTTP},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-server-name", required_argument, NULL, OPT_TLS_NAME},
    {"propagate-max-bytes", required_argument, NULL, OPT_PROP_MAX},
    {"propagate-linger-ms", required_argument, NULL, OPT_PROP_LINGER},
    {"read-poll-us", required_argument, NULL, OPT_READ_POLL},
    {"access-max-segments", required_argument, NULL, OPT_ACCESS_MAX},
    {"pcache-segments", required_argument, NULL, OPT_PCACHE_SEGS},
    {"prefetch", required_argument, NULL, OPT_PREFETCH},
    {"prefetch-budget", required_argument, NULL, OPT_PF_BUDGET},
    {"prefetch-cache", required_argument, NULL, OPT_PF_CACHE},
    {"prefetch-model", required_argument, NULL, OPT_PF_MODEL},
    {"single-writer", required_argument, NULL, OPT_SINGLE_WRITER},
    {"writer-lease-ms", required_argument, NULL, OPT_WRITER_LEASE},
    {"writer-idle-ms", required_argument, NULL, OPT_WRITER_IDLE},
    {"nbd-consistency", required_argument, NULL, OPT_NBD_CONSISTENCY},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

const char *proxy_args_usage(void)
{
	return "usage: ombra-proxy --region REGION --listen HOST:PORT "
	       "--metad HOST:PORT[,...] [options]\n"
	       "\n"
	       "Ombra's region gateway: serves the gRPC VolumeService and an "
	       "NBD export\n"
	       "for every volume, routing I/O to the storage nodes.\n"
	       "\n"
	       "  --region REGION        region this proxy serves\n"
	       "  --listen HOST:PORT     gRPC VolumeService address\n"
	       "  --metad HOST:PORT,...  metad members (AdminService)\n"
	       "  --nbd HOST:PORT|off    NBD server (default " DEFAULT_NBD ")\n"
	       "  --http HOST:PORT       /metrics and /healthz (default: "
	       "none)\n"
	       "  --log-level LEVEL      debug|info|warn|error (default "
	       "info)\n"
	       "  --tls-ca FILE --tls-cert FILE --tls-key FILE\n"
	       "                         mutual TLS for every gRPC "
	       "connection\n"
	       "  --tls-server-name NAME expected name in server "
	       "certificates\n"
	       "  --propagate-max-bytes SIZE\n"
	       "                         memory bound of the queue of writes "
	       "to shadows\n"
	       "                         (default 64MiB; beyond it the oldest "
	       "are dropped)\n"
	       "  --propagate-linger-ms MS\n"
	       "                         wait before a segment's writes go to "
	       "its shadows,\n"
	       "                         out of the way of the reads that "
	       "follow them\n"
	       "                         (default 4, 0-1000; 0 = at once)\n"
	       "  --read-poll-us US      busy-poll the event loop while a "
	       "read at a copy in\n"
	       "                         this region is in flight, for at "
	       "most US per read\n"
	       "                         (default 5000, 0-100000; 0 = off: "
	       "sleep until the\n"
	       "                         answer comes)\n"
	       "  --access-max-segments N\n"
	       "                         segments per access-statistics "
	       "report (default 4096)\n"
	       "  --pcache-segments N    cache entries remembered for the "
	       "prefetch engine\n"
	       "                         (default 65536)\n"
	       "  --prefetch on|off      the prefetch engine (default on)\n"
	       "  --prefetch-budget SIZE bytes per second of predicted "
	       "prefetch pulls\n"
	       "                         (default 64MiB; 0 = no limit)\n"
	       "  --prefetch-cache SIZE  bytes of cache entries placed in "
	       "the region\n"
	       "                         (default 256MiB, at least 1MiB)\n"
	       "  --prefetch-model FILE  LSTM weights for the selector "
	       "(default: the shipped\n"
	       "                         model when it loads)\n"
	       "  --single-writer on|off take the volume writer lease on "
	       "the first write and\n"
	       "                         on NBD attach (default on; off: "
	       "writes are not\n"
	       "                         fenced, STRONG reads use home "
	       "copies only)\n"
	       "  --writer-lease-ms MS   writer lease duration asked of "
	       "metad (default 10000)\n"
	       "  --writer-idle-ms MS    release a writer lease after this "
	       "long without\n"
	       "                         writes or NBD attachment (default "
	       "30000)\n"
	       "  --nbd-consistency strong|eventual|bounded:MS\n"
	       "                         what NBD reads may return (default "
	       "strong; bounded:MS\n"
	       "                         at most MS ms stale, from the "
	       "nearest copy)\n"
	       "  --help, --version\n"
	       "\n"
	       "Exit status: 0 after SIGTERM/SIGINT, 1 if start-up fails, 2 "
	       "on a usage error.\n";
}

/* HOST:PORT with a non-empty host and a port 0-65535. */
static bool hostport_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (colon == NULL || colon == s || colon[1] == '\0')
		return false;
	port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port >= 0 && port <= 65535;
}

static int bad(char *errmsg, const char *flag, const char *value,
	       const char *why)
{
	ombra_errmsg_printf(errmsg, "--%s '%s': %s (see --help)", flag, value,
			    why);
	return OMBRA_EINVAL;
}

/* A positive integer no larger than max. */
static int parse_count(const char *flag, const char *v, uint64_t max,
		       uint64_t *out, char *errmsg)
{
	char *end;
	unsigned long long n;

	if (v[0] < '0' || v[0] > '9')
		return bad(errmsg, flag, v, "expected a positive integer");
	n = strtoull(v, &end, 10);
	if (*end != '\0' || n == 0 || n > max)
		return bad(errmsg, flag, v, "expected a positive integer");
	*out = n;
	return 0;
}

static int check_metad(const char *list, char *errmsg)
{
	char buf[1024];
	char *save = NULL, *tok;

	if (strlen(list) >= sizeof(buf))
		return bad(errmsg, "metad", list, "too long");
	strcpy(buf, list);
	tok = strtok_r(buf, ",", &save);
	if (tok == NULL)
		return bad(errmsg, "metad", list, "no endpoint");
	for (; tok != NULL; tok = strtok_r(NULL, ",", &save))
		if (!hostport_ok(tok))
			return bad(errmsg, "metad", list,
				   "expected HOST:PORT[,HOST:PORT...]");
	return 0;
}

int proxy_args_parse(struct proxy_args *a, int argc, char **argv,
		     enum proxy_args_action *action, char *errmsg)
{
	int c, lvl, n_tls;

	memset(a, 0, sizeof(*a));
	a->nbd = DEFAULT_NBD;
	a->log_level = LOG_INFO;
	a->propagate_max_bytes = 64u << 20;
	a->propagate_linger_ms = 4;
	a->read_poll_us = 5000;
	a->access_max_segments = 4096;
	a->pcache_segments = 65536;
	a->single_writer = true;
	a->writer_lease_ms = 10000;
	a->writer_idle_ms = 30000;
	a->nbd_consistency = 1; /* STRONG */
	a->prefetch = true;
	a->prefetch_budget = 64u << 20;
	a->prefetch_cache = 256u << 20;
	*action = PROXY_ARGS_RUN;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case OPT_REGION:
			a->region = optarg;
			break;
		case OPT_LISTEN:
			a->listen = optarg;
			break;
		case OPT_METAD:
			a->metad = optarg;
			break;
		case OPT_NBD:
			a->nbd = strcmp(optarg, "off") == 0 ? NULL : optarg;
			break;
		case OPT_HTTP:
			a->http = optarg;
			break;
		case OPT_LOG_LEVEL:
			lvl = log_level_parse(optarg);
			if (lvl < 0)
				return bad(errmsg, "log-level", optarg,
					   "expected debug|info|warn|error");
			a->log_level = (enum log_level)lvl;
			break;
		case OPT_TLS_CA:
			a->tls.ca_file = optarg;
			break;
		case OPT_TLS_CERT:
			a->tls.cert_file = optarg;
			break;
		case OPT_TLS_KEY:
			a->tls.key_file = optarg;
			break;
		case OPT_TLS_NAME:
			a->tls.server_name_override = optarg;
			break;
		case OPT_PROP_MAX:
			if (size_parse(optarg, &a->propagate_max_bytes) != 0 ||
			    a->propagate_max_bytes < (1u << 20))
				return bad(errmsg, "propagate-max-bytes",
					   optarg,
					   "expected a size of at least 1MiB "
					   "(e.g. 64MiB)");
			break;
		case OPT_PROP_LINGER:
			if (strcmp(optarg, "0") == 0)
				a->propagate_linger_ms = 0;
			else if (parse_count("propagate-linger-ms", optarg,
					     1000, &a->propagate_linger_ms,
					     errmsg) != 0)
				return bad(errmsg, "propagate-linger-ms",
					   optarg,
					   "expected milliseconds from 0 to "
					   "1000");
			break;
		case OPT_READ_POLL:
			if (strcmp(optarg, "0") == 0)
				a->read_poll_us = 0;
			else if (parse_count("read-poll-us", optarg, 100000,
					     &a->read_poll_us, errmsg) != 0)
				return bad(errmsg, "read-poll-us", optarg,
					   "expected microseconds from 0 to "
					   "100000");
			break;
		case OPT_ACCESS_MAX:
			if (parse_count("access-max-segments", optarg, 1u << 20,
					&a->access_max_segments, errmsg) != 0)
				return OMBRA_EINVAL;
			break;
		case OPT_PCACHE_SEGS:
			if (parse_count("pcache-segments", optarg, 1u << 24,
					&a->pcache_segments, errmsg) != 0)
				return OMBRA_EINVAL;
			break;
		case OPT_PREFETCH:
			if (strcmp(optarg, "on") != 0 &&
			    strcmp(optarg, "off") != 0)
				return bad(errmsg, "prefetch", optarg,
					   "expected on or off");
			a->prefetch = strcmp(optarg, "on") == 0;
			break;
		case OPT_PF_BUDGET:
			if (size_parse(optarg, &a->prefetch_budget) != 0)
				return bad(errmsg, "prefetch-budget", optarg,
					   "expected bytes per second (e.g. "
					   "64MiB, 0 = no limit)");
			break;
		case OPT_PF_CACHE:
			if (size_parse(optarg, &a->prefetch_cache) != 0 ||
			    a->prefetch_cache < (1u << 20))
				return bad(errmsg, "prefetch-cache", optarg,
					   "expected a size of at least 1MiB "
					   "(e.g. 256MiB)");
			break;
		case OPT_PF_MODEL:
			if (access(optarg, R_OK) != 0)
				return bad(errmsg, "prefetch-model", optarg,
					   "not a readable file");
			a->prefetch_model = optarg;
			break;
		case OPT_SINGLE_WRITER:
			if (strcmp(optarg, "on") != 0 &&
			    strcmp(optarg, "off") != 0)
				return bad(errmsg, "single-writer", optarg,
					   "expected on or off");
			a->single_writer = strcmp(optarg, "on") == 0;
			break;
		case OPT_WRITER_LEASE:
			if (parse_count("writer-lease-ms", optarg, 60000,
					&a->writer_lease_ms, errmsg) != 0)
				return OMBRA_EINVAL;
			if (a->writer_lease_ms < 300)
				return bad(errmsg, "writer-lease-ms", optarg,
					   "expected 300 to 60000 ms");
			break;
		case OPT_WRITER_IDLE:
			if (parse_count("writer-idle-ms", optarg, 86400000,
					&a->writer_idle_ms, errmsg) != 0)
				return OMBRA_EINVAL;
			break;
		case OPT_NBD_CONSISTENCY: {
			struct proxy_read_opts o;

			if (nbd_consistency_parse(optarg, &o) != 0)
				return bad(errmsg, "nbd-consistency", optarg,
					   "expected strong, eventual or "
					   "bounded:MS (MS 1 to 86400000)");
			a->nbd_consistency = o.consistency;
			a->nbd_staleness_ms = o.max_staleness_ms;
			break;
		}
		case OPT_HELP:
			*action = PROXY_ARGS_HELP;
			return 0;
		case OPT_VERSION:
			*action = PROXY_ARGS_VERSION;
			return 0;
		case ':':
			ombra_errmsg_printf(errmsg,
					    "%s needs a value (see --help)",
					    argv[optind - 1]);
			return OMBRA_EINVAL;
		default:
			ombra_errmsg_printf(errmsg,
					    "unknown option %s (see --help)",
					    argv[optind - 1]);
			return OMBRA_EINVAL;
		}
	}
	if (optind < argc) {
		ombra_errmsg_printf(errmsg,
				    "unexpected argument '%s' (see --help)",
				    argv[optind]);
		return OMBRA_EINVAL;
	}
	if (a->region == NULL || a->region[0] == '\0' || a->listen == NULL ||
	    a->metad == NULL) {
		ombra_errmsg_printf(errmsg, "--region, --listen and --metad "
					    "are required (see --help)");
		return OMBRA_EINVAL;
	}
	if (!hostport_ok(a->listen))
		return bad(errmsg, "listen", a->listen, "expected HOST:PORT");
	if (a->nbd != NULL && !hostport_ok(a->nbd))
		return bad(errmsg, "nbd", a->nbd, "expected HOST:PORT or off");
	if (a->http != NULL && !hostport_ok(a->http))
		return bad(errmsg, "http", a->http, "expected HOST:PORT");
	if (check_metad(a->metad, errmsg) != 0)
		return OMBRA_EINVAL;
	n_tls = (a->tls.ca_file != NULL) + (a->tls.cert_file != NULL) +
		(a->tls.key_file != NULL);
	if (n_tls != 0 && n_tls != 3) {
		ombra_errmsg_printf(errmsg, "TLS needs all of --tls-ca, "
					    "--tls-cert and --tls-key");
		return OMBRA_EINVAL;
	}
	if (n_tls == 0 && a->tls.server_name_override != NULL) {
		ombra_errmsg_printf(errmsg, "--tls-server-name needs --tls-ca, "
					    "--tls-cert and --tls-key");
		return OMBRA_EINVAL;
	}
	for (const char *const *f =
		 (const char *const[]){a->tls.ca_file, a->tls.cert_file,
				       a->tls.key_file, NULL};
	     n_tls == 3 && *f != NULL; f++) {
		if (access(*f, R_OK) != 0) {
			ombra_errmsg_printf(errmsg,
					    "TLS file %s is not "
					    "readable",
					    *f);
			return OMBRA_EINVAL;
		}
	}
	a->use_tls = n_tls == 3;
	return 0;
}
