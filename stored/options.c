/* options.c: ombra-stored's command line (see options.h).  Every error names
 * the flag and what was expected; nothing here touches the file system
 * except stored_config_finish(), which only measures free space. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "err.h"
#include "options.h"
#include "size.h"

enum {
	OPT_NAME = 256,
	OPT_REGION,
	OPT_LISTEN,
	OPT_METAD,
	OPT_DATA_DIR,
	OPT_TIER,
	OPT_HTTP,
	OPT_SCRUB_RATE,
	OPT_CACHE_BYTES,
	OPT_SHADOW_CHECK_MS,
	OPT_LOG_LEVEL,
	OPT_AUDIT_LOG,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_HELP,
};

static const struct option options[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"region", required_argument, NULL, OPT_REGION},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"metad", required_argument, NULL, OPT_METAD},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"tier", required_argument, NULL, OPT_TIER},
    {"http", required_argument, NULL, OPT_HTTP},
    {"scrub-rate", required_argument, NULL, OPT_SCRUB_RATE},
    {"cache-bytes", required_argument, NULL, OPT_CACHE_BYTES},
    {"shadow-check-ms", required_argument, NULL, OPT_SHADOW_CHECK_MS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"audit-log", required_argument, NULL, OPT_AUDIT_LOG},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

const char *stored_config_usage(void)
{
	return "usage: ombra-stored --name NAME --region REGION "
	       "--listen HOST:PORT\n"
	       "         --metad HOST:PORT[,HOST:PORT...] --data-dir DIR "
	       "[options]\n"
	       "\n"
	       "Ombra storage node: holds segment data, serves StoreService "
	       "on --listen\n"
	       "(also the address advertised to metad).\n"
	       "\n"
	       "  --name NAME              node name, unique in the cluster\n"
	       "  --region REGION          region the node belongs to\n"
	       "  --listen HOST:PORT       gRPC StoreService address\n"
	       "  --metad LIST             metad members' gRPC addresses\n"
	       "  --data-dir DIR           data directory (index in "
	       "DIR/index)\n"
	       "  --tier NAME:DIR[:SIZE]   a storage tier (repeatable, "
	       "preference order);\n"
	       "                           SIZE like 10GiB, default the free "
	       "space of DIR;\n"
	       "                           default one tier fast:DIR/fast\n"
	       "  --http HOST:PORT         /metrics and /healthz\n"
	       "  --scrub-rate N           blocks verified per second in "
	       "the background\n"
	       "                           (default 2000, 0 = off)\n"
	       "  --cache-bytes SIZE       capacity of the cache entries "
	       "pulled by proxies'\n"
	       "                           prefetch (COPY_CACHE), like "
	       "512MiB (default 256MiB)\n"
	       "  --shadow-check-ms N      anti-entropy period of shadows, "
	       "ms (default 5000)\n"
	       "  --log-level LEVEL        debug|info|warn|error (default "
	       "info)\n"
	       "  --audit-log FILE         append every write accepted as "
	       "primary (volume,\n"
	       "                           segment, lease epoch, version, "
	       "times) to FILE as\n"
	       "                           JSON lines (docs/stored.md "
	       "\"Audit log\"; default off)\n"
	       "  --tls-ca FILE --tls-cert FILE --tls-key FILE\n"
	       "                           mutual TLS for every gRPC "
	       "connection\n"
	       "  --help                   this text\n";
}

/* "NAME:DIR[:SIZE]" into t (allocated strings). */
static int parse_tier(const char *arg, struct stored_tier *t, char *errmsg)
{
	const char *c1 = strchr(arg, ':');
	const char *c2;
	size_t nlen;

	if (c1 == NULL || c1 == arg) {
		ombra_errmsg_printf(
		    errmsg, "--tier '%s': expected NAME:DIR[:SIZE]", arg);
		return OMBRA_ECONFIG;
	}
	nlen = (size_t)(c1 - arg);
	if (nlen > SEGSTORE_TIER_NAME_MAX) {
		ombra_errmsg_printf(errmsg, "--tier '%s': name longer than %d",
				    arg, SEGSTORE_TIER_NAME_MAX);
		return OMBRA_ECONFIG;
	}
	for (size_t i = 0; i < nlen; i++) {
		char ch = arg[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		      ch == '-')) {
			ombra_errmsg_printf(errmsg,
					    "--tier '%s': name may only hold "
					    "[A-Za-z0-9_.-]",
					    arg);
			return OMBRA_ECONFIG;
		}
	}
	c2 = strrchr(c1 + 1, ':');
	t->capacity = 0;
	if (c2 != NULL) {
		if (size_parse(c2 + 1, &t->capacity) != 0 || t->capacity == 0) {
			ombra_errmsg_printf(errmsg,
					    "--tier '%s': bad size '%s' "
					    "(expected e.g. 10GiB)",
					    arg, c2 + 1);
			return OMBRA_ECONFIG;
		}
	} else {
		c2 = arg + strlen(arg);
	}
	if (c2 == c1 + 1) {
		ombra_errmsg_printf(errmsg, "--tier '%s': empty directory",
				    arg);
		return OMBRA_ECONFIG;
	}
	t->name = strndup(arg, nlen);
	t->dir = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
	if (t->name == NULL || t->dir == NULL) {
		free(t->name);
		free(t->dir);
		t->name = t->dir = NULL;
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	return 0;
}

/* "host:port" with a non-empty host and a port in 1..65535. */
static int check_hostport(const char *flag, const char *v, char *errmsg)
{
	const char *c = strrchr(v, ':');
	char *end;
	long port;

	if (c == NULL || c == v) {
		ombra_errmsg_printf(errmsg, "%s '%s': expected HOST:PORT", flag,
				    v);
		return OMBRA_ECONFIG;
	}
	port = strtol(c + 1, &end, 10);
	if (*end != '\0' || c[1] == '\0' || port < 0 || port > 65535) {
		ombra_errmsg_printf(errmsg, "%s '%s': bad port", flag, v);
		return OMBRA_ECONFIG;
	}
	return 0;
}

/* "host:port[,host:port...]". */
static int check_endpoints(const char *list, char *errmsg)
{
	char one[256];

	for (const char *p = list;;) {
		const char *c = strchr(p, ',');
		size_t n = c != NULL ? (size_t)(c - p) : strlen(p);

		if (n == 0 || n >= sizeof(one)) {
			ombra_errmsg_printf(errmsg,
					    "--metad '%s': expected "
					    "HOST:PORT[,HOST:PORT...]",
					    list);
			return OMBRA_ECONFIG;
		}
		memcpy(one, p, n);
		one[n] = '\0';
		if (check_hostport("--metad", one, errmsg) != 0) {
			return OMBRA_ECONFIG;
		}
		if (c == NULL) {
			return 0;
		}
		p = c + 1;
	}
}

static int parse_one(struct stored_config *cfg, int opt, const char *arg,
		     char *errmsg)
{
	char *end;
	int lvl;

	switch (opt) {
	case OPT_NAME:
		cfg->name = arg;
		break;
	case OPT_REGION:
		cfg->region = arg;
		break;
	case OPT_LISTEN:
		cfg->listen = arg;
		return check_hostport("--listen", arg, errmsg);
	case OPT_METAD:
		cfg->metad = arg;
		return check_endpoints(arg, errmsg);
	case OPT_DATA_DIR:
		cfg->data_dir = arg;
		break;
	case OPT_HTTP:
		cfg->http = arg;
		return check_hostport("--http", arg, errmsg);
	case OPT_TIER:
		if (cfg->n_tiers == SEGSTORE_MAX_TIERS) {
			ombra_errmsg_printf(errmsg, "--tier: at most %d tiers",
					    SEGSTORE_MAX_TIERS);
			return OMBRA_ECONFIG;
		}
		if (parse_tier(arg, &cfg->tiers[cfg->n_tiers], errmsg) != 0) {
			return OMBRA_ECONFIG;
		}
		cfg->n_tiers++;
		break;
	case OPT_SCRUB_RATE:
		cfg->scrub_rate = strtoull(arg, &end, 10);
		if (*end != '\0' || arg[0] == '\0' || arg[0] == '-' ||
		    cfg->scrub_rate > 100000000) {
			ombra_errmsg_printf(
			    errmsg,
			    "--scrub-rate '%s': expected blocks "
			    "per second, 0..100000000",
			    arg);
			return OMBRA_ECONFIG;
		}
		break;
	case OPT_CACHE_BYTES:
		if (size_parse(arg, &cfg->cache_bytes) != 0) {
			ombra_errmsg_printf(
			    errmsg,
			    "--cache-bytes '%s': expected a size "
			    "like 256MiB",
			    arg);
			return OMBRA_ECONFIG;
		}
		break;
	case OPT_SHADOW_CHECK_MS:
		cfg->shadow_check_ms = strtoull(arg, &end, 10);
		if (*end != '\0' || arg[0] == '\0' || arg[0] == '-' ||
		    cfg->shadow_check_ms < 100 ||
		    cfg->shadow_check_ms > 3600000) {
			ombra_errmsg_printf(errmsg,
					    "--shadow-check-ms '%s': expected "
					    "milliseconds, 100..3600000",
					    arg);
			return OMBRA_ECONFIG;
		}
		break;
	case OPT_LOG_LEVEL:
		lvl = log_level_parse(arg);
		if (lvl < 0) {
			ombra_errmsg_printf(errmsg,
					    "--log-level '%s': expected "
					    "debug|info|warn|error",
					    arg);
			return OMBRA_ECONFIG;
		}
		cfg->log_level = (enum log_level)lvl;
		break;
	case OPT_AUDIT_LOG:
		cfg->audit_log = arg;
		break;
	case OPT_TLS_CA:
		cfg->tls_ca = arg;
		break;
	case OPT_TLS_CERT:
		cfg->tls_cert = arg;
		break;
	case OPT_TLS_KEY:
		cfg->tls_key = arg;
		break;
	case OPT_HELP:
		cfg->help = true;
		break;
	default:
		ombra_errmsg_printf(errmsg, "unknown option (see --help)");
		return OMBRA_ECONFIG;
	}
	return 0;
}

static int check_required(const struct stored_config *cfg, char *errmsg)
{
	const struct {
		const char *flag;
		const char *v;
	} req[] = {
	    {"--name", cfg->name},	   {"--region", cfg->region},
	    {"--listen", cfg->listen},	   {"--metad", cfg->metad},
	    {"--data-dir", cfg->data_dir},
	};
	int ntls;

	for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
		if (req[i].v == NULL || req[i].v[0] == '\0') {
			ombra_errmsg_printf(
			    errmsg, "%s is required (see --help)", req[i].flag);
			return OMBRA_ECONFIG;
		}
	}
	ntls = (cfg->tls_ca != NULL) + (cfg->tls_cert != NULL) +
	       (cfg->tls_key != NULL);
	if (ntls != 0 && ntls != 3) {
		ombra_errmsg_printf(errmsg, "TLS needs all of --tls-ca, "
					    "--tls-cert and --tls-key");
		return OMBRA_ECONFIG;
	}
	for (size_t i = 0; i < cfg->n_tiers; i++) {
		for (size_t j = 0; j < i; j++) {
			if (strcmp(cfg->tiers[i].name, cfg->tiers[j].name) ==
			    0) {
				ombra_errmsg_printf(errmsg,
						    "--tier: name '%s' given "
						    "twice",
						    cfg->tiers[i].name);
				return OMBRA_ECONFIG;
			}
		}
	}
	return 0;
}

int stored_config_parse(struct stored_config *cfg, int argc, char **argv,
			char *errmsg)
{
	int opt;

	*cfg = (struct stored_config){
	    .scrub_rate = STORED_DEFAULT_SCRUB_RATE,
	    .cache_bytes = STORED_DEFAULT_CACHE_BYTES,
	    .shadow_check_ms = STORED_DEFAULT_SHADOW_CHECK_MS,
	    .log_level = LOG_INFO,
	};
	optind = 0; /* full reset, also of GNU getopt's internal state */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		if (opt == '?' || opt == ':') {
			ombra_errmsg_printf(
			    errmsg, "%s '%s' (see --help)",
			    opt == ':' ? "missing value for" : "unknown option",
			    optind > 0 && optind <= argc ? argv[optind - 1]
							 : "?");
			return OMBRA_ECONFIG;
		}
		if (parse_one(cfg, opt, optarg, errmsg) != 0) {
			return OMBRA_ECONFIG;
		}
	}
	if (optind < argc) {
		ombra_errmsg_printf(errmsg, "unexpected argument '%s'",
				    argv[optind]);
		return OMBRA_ECONFIG;
	}
	if (cfg->help) {
		return 0;
	}
	return check_required(cfg, errmsg);
}

int stored_config_finish(struct stored_config *cfg, char *errmsg)
{
	if (cfg->n_tiers == 0) {
		size_t len = strlen(cfg->data_dir) + 8;

		cfg->tiers[0].name = strdup("fast");
		cfg->tiers[0].dir = malloc(len);
		if (cfg->tiers[0].name == NULL || cfg->tiers[0].dir == NULL) {
			ombra_errmsg_printf(errmsg, "out of memory");
			return OMBRA_ENOMEM;
		}
		snprintf(cfg->tiers[0].dir, len, "%s/fast", cfg->data_dir);
		cfg->tiers[0].capacity = 0;
		cfg->n_tiers = 1;
	}
	for (size_t i = 0; i < cfg->n_tiers; i++) {
		struct stored_tier *t = &cfg->tiers[i];
		struct statvfs sv;

		if (t->capacity != 0) {
			continue;
		}
		/* The directory may not exist yet: measure its parent's
		 * file system then (the data dir, created by main). */
		if (statvfs(t->dir, &sv) != 0 &&
		    statvfs(cfg->data_dir, &sv) != 0) {
			t->capacity = STORED_DEFAULT_TIER_BYTES;
			continue;
		}
		t->capacity = (uint64_t)sv.f_bavail * sv.f_frsize;
		if (t->capacity < SEGSTORE_MAX_SEGMENT_SIZE) {
			t->capacity = STORED_DEFAULT_TIER_BYTES;
		}
	}
	return 0;
}

void stored_config_free(struct stored_config *cfg)
{
	for (size_t i = 0; i < cfg->n_tiers; i++) {
		free(cfg->tiers[i].name);
		free(cfg->tiers[i].dir);
	}
	cfg->n_tiers = 0;
}
