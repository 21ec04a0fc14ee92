/* config.c: ombra-metad configuration from defaults, an INI file and flags.
 *
 * The [metad] and [tls] keys are described once, in key_table, and the
 * same setter serves the file and the flags, so a key is parsed and
 * range-checked the same way wherever it comes from.  [member.N] sections
 * list the initial Raft members.  Failure: the first bad line stops the
 * load with OMBRA_ECONFIG and a "file:line: key: what is wrong" message;
 * allocation failure gives OMBRA_ENOMEM. */
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "err.h"

enum key_type { KEY_U64, KEY_UINT, KEY_STR, KEY_ADDR, KEY_BOOL, KEY_LEVEL };

#define NO_FLAG SIZE_MAX

struct key_spec {
	const char *section;
	const char *key;
	enum key_type type;
	size_t off;  /* offset of the value in struct metad_config */
	size_t size; /* KEY_STR/KEY_ADDR: buffer size */
	unsigned long long min, max; /* KEY_U64/KEY_UINT */
	size_t set_off; /* offset of a bool "given explicitly", or NO_FLAG */
};

#define OFF(f) offsetof(struct metad_config, f)
#define SZ(f) sizeof(((struct metad_config *)0)->f)

static const struct key_spec key_table[] = {
    {"metad", "id", KEY_U64, OFF(id), 0, 1, UINT64_MAX, NO_FLAG},
    {"metad", "data_dir", KEY_STR, OFF(data_dir), SZ(data_dir), 0, 0,
     OFF(data_dir_set)},
    {"metad", "grpc_listen", KEY_ADDR, OFF(grpc_listen), SZ(grpc_listen), 0, 0,
     OFF(grpc_set)},
    {"metad", "raft_listen", KEY_ADDR, OFF(raft_listen), SZ(raft_listen), 0, 0,
     OFF(raft_set)},
    {"metad", "http_listen", KEY_ADDR, OFF(http_listen), SZ(http_listen), 0, 0,
     NO_FLAG},
    {"metad", "log_level", KEY_LEVEL, OFF(log_level), 0, 0, 0, NO_FLAG},
    {"metad", "election_timeout_ms", KEY_UINT, OFF(election_timeout_ms), 0, 50,
     600000, NO_FLAG},
    {"metad", "heartbeat_timeout_ms", KEY_UINT, OFF(heartbeat_timeout_ms), 0,
     10, 60000, NO_FLAG},
    {"metad", "snapshot_threshold", KEY_UINT, OFF(snapshot_threshold), 0, 1,
     100000000, NO_FLAG},
    {"metad", "snapshot_trailing", KEY_UINT, OFF(snapshot_trailing), 0, 0,
     100000000, NO_FLAG},
    {"metad", "node_timeout_ms", KEY_UINT, OFF(node_timeout_ms), 0, 100,
     86400000, NO_FLAG},
    {"metad", "bootstrap", KEY_BOOL, OFF(bootstrap), 0, 0, 0, NO_FLAG},
    {"metad", "audit_log", KEY_STR, OFF(audit_log), SZ(audit_log), 0, 0,
     NO_FLAG},
    {"tls", "ca", KEY_STR, OFF(tls_ca), SZ(tls_ca), 0, 0, NO_FLAG},
    {"tls", "cert", KEY_STR, OFF(tls_cert), SZ(tls_cert), 0, 0, NO_FLAG},
    {"tls", "key", KEY_STR, OFF(tls_key), SZ(tls_key), 0, 0, NO_FLAG},
};

#define N_KEYS (sizeof(key_table) / sizeof(key_table[0]))

static const struct key_spec *key_find(const char *section, const char *key)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(key_table[i].section, section) == 0 &&
		    strcmp(key_table[i].key, key) == 0) {
			return &key_table[i];
		}
	}
	return NULL;
}

static bool section_known(const char *section)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(key_table[i].section, section) == 0) {
			return true;
		}
	}
	return false;
}

/* Decimal unsigned integer in [min, max]; no sign, no trailing bytes. */
static int parse_ull(const char *s, unsigned long long min,
		     unsigned long long max, unsigned long long *out)
{
	char *end = NULL;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9') {
		return OMBRA_ECONFIG;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		return OMBRA_ECONFIG;
	}
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *yes[] = {"true", "yes", "on", "1"};
	static const char *no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return OMBRA_ECONFIG;
}

int metad_config_check_addr(const char *what, const char *addr, char *errmsg)
{
	const char *colon = strrchr(addr, ':');
	unsigned long long port;

	if (colon == NULL || colon == addr) {
		ombra_errmsg_printf(errmsg,
				    "%s: '%s' is not host:port (example "
				    "127.0.0.1:7100)",
				    what, addr);
		return OMBRA_ECONFIG;
	}
	if (parse_ull(colon + 1, 1, 65535, &port) != 0) {
		ombra_errmsg_printf(errmsg,
				    "%s: port in '%s' must be a number in "
				    "1..65535",
				    what, addr);
		return OMBRA_ECONFIG;
	}
	if (strlen(addr) >= METAD_ADDR_LEN) {
		ombra_errmsg_printf(errmsg, "%s: '%s' is longer than %d bytes",
				    what, addr, METAD_ADDR_LEN - 1);
		return OMBRA_ECONFIG;
	}
	return 0;
}

/* Store value into the field spec describes.  what: "file:line: key" or
 * "--flag", used to prefix the message. */
static int key_set(struct metad_config *c, const struct key_spec *spec,
		   const char *value, const char *what, char *errmsg)
{
	char *field = (char *)c + spec->off;
	unsigned long long v;
	int level;

	switch (spec->type) {
	case KEY_U64:
	case KEY_UINT:
		if (parse_ull(value, spec->min, spec->max, &v) != 0) {
			ombra_errmsg_printf(errmsg,
					    "%s: '%s' is not an integer in "
					    "%llu..%llu",
					    what, value, spec->min, spec->max);
			return OMBRA_ECONFIG;
		}
		if (spec->type == KEY_U64) {
			*(uint64_t *)(void *)field = (uint64_t)v;
		} else {
			*(unsigned *)(void *)field = (unsigned)v;
		}
		break;
	case KEY_ADDR:
		if (metad_config_check_addr(what, value, errmsg) != 0) {
			return OMBRA_ECONFIG;
		}
		/* fall through */
	case KEY_STR:
		if (strlen(value) >= spec->size) {
			ombra_errmsg_printf(errmsg, "%s: value longer than %zu",
					    what, spec->size - 1);
			return OMBRA_ECONFIG;
		}
		if (spec->type == KEY_STR && value[0] == '\0' &&
		    strcmp(spec->section, "metad") == 0) {
			ombra_errmsg_printf(errmsg, "%s: must not be empty",
					    what);
			return OMBRA_ECONFIG;
		}
		memcpy(field, value, strlen(value) + 1);
		break;
	case KEY_BOOL:
		if (parse_bool(value, (bool *)(void *)field) != 0) {
			ombra_errmsg_printf(errmsg,
					    "%s: '%s' is not a boolean "
					    "(true|false)",
					    what, value);
			return OMBRA_ECONFIG;
		}
		break;
	case KEY_LEVEL:
		level = log_level_parse(value);
		if (level < 0) {
			ombra_errmsg_printf(errmsg,
					    "%s: '%s' is not a log level "
					    "(debug|info|warn|error)",
					    what, value);
			return OMBRA_ECONFIG;
		}
		*(enum log_level *)(void *)field = (enum log_level)level;
		break;
	}
	if (spec->set_off != NO_FLAG) {
		*(bool *)(void *)((char *)c + spec->set_off) = true;
	}
	return 0;
}

void metad_config_defaults(struct metad_config *c)
{
	memset(c, 0, sizeof(*c));
	c->id = 1;
	strcpy(c->grpc_listen, "127.0.0.1:7100");
	strcpy(c->raft_listen, "127.0.0.1:7101");
	strcpy(c->http_listen, "127.0.0.1:7102");
	c->log_level = LOG_INFO;
	c->election_timeout_ms = 1000;
	c->heartbeat_timeout_ms = 100;
	c->snapshot_threshold = 16384;
	c->snapshot_trailing = 2048;
	c->node_timeout_ms = 10000;
	c->bootstrap = true;
}

void metad_config_free(struct metad_config *c)
{
	free(c->members);
	c->members = NULL;
	c->n_members = 0;
}

const struct metad_member_cfg *metad_config_member(const struct metad_config *c,
						   uint64_t id)
{
	for (size_t i = 0; i < c->n_members; i++) {
		if (c->members[i].id == id) {
			return &c->members[i];
		}
	}
	return NULL;
}

/* The member with this id, appended if new.  NULL on out-of-memory. */
static struct metad_member_cfg *member_get(struct metad_config *c, uint64_t id)
{
	struct metad_member_cfg *m;

	for (size_t i = 0; i < c->n_members; i++) {
		if (c->members[i].id == id) {
			return &c->members[i];
		}
	}
	m = realloc(c->members, (c->n_members + 1) * sizeof(*m));
	if (m == NULL) {
		return NULL;
	}
	c->members = m;
	m = &c->members[c->n_members++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	return m;
}

struct load_ctx {
	struct metad_config *c;
	const char *path;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN]; /* first error, without file:line */
};

static int load_member_key(struct load_ctx *ctx, const char *section,
			   const char *key, const char *value)
{
	unsigned long long id;
	struct metad_member_cfg *m;
	char *field;
	char what[160];

	if (parse_ull(section + strlen("member."), 1, UINT64_MAX, &id) != 0) {
		ombra_errmsg_printf(ctx->errmsg,
				    "[%s]: member id must be an integer >= 1",
				    section);
		return OMBRA_ECONFIG;
	}
	if (strcmp(key, "raft") != 0 && strcmp(key, "grpc") != 0) {
		ombra_errmsg_printf(
		    ctx->errmsg, "[%s] %s: unknown key (allowed: raft, grpc)",
		    section, key);
		return OMBRA_ECONFIG;
	}
	snprintf(what, sizeof(what), "[%s] %s", section, key);
	if (metad_config_check_addr(what, value, ctx->errmsg) != 0) {
		return OMBRA_ECONFIG;
	}
	m = member_get(ctx->c, (uint64_t)id);
	if (m == NULL) {
		ombra_errmsg_printf(ctx->errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	field = strcmp(key, "raft") == 0 ? m->raft : m->grpc;
	memcpy(field, value, strlen(value) + 1);
	return 0;
}

static int load_handler(void *user, const char *section, const char *key,
			const char *value)
{
	struct load_ctx *ctx = user;
	const struct key_spec *spec;
	char what[160];
	int rv;

	if (ctx->rv != 0) {
		return 1; /* keep only the first error */
	}
	if (strncmp(section, "member.", strlen("member.")) == 0) {
		rv = load_member_key(ctx, section, key, value);
	} else if (!section_known(section)) {
		ombra_errmsg_printf(ctx->errmsg,
				    "[%s]: unknown section (allowed: metad, "
				    "tls, member.N)",
				    section);
		rv = OMBRA_ECONFIG;
	} else if ((spec = key_find(section, key)) == NULL) {
		ombra_errmsg_printf(ctx->errmsg, "[%s] %s: unknown key",
				    section, key);
		rv = OMBRA_ECONFIG;
	} else {
		snprintf(what, sizeof(what), "[%s] %s", section, key);
		rv = key_set(ctx->c, spec, value, what, ctx->errmsg);
	}
	if (rv != 0) {
		ctx->rv = rv;
		return 0;
	}
	return 1;
}

int metad_config_load(struct metad_config *c, const char *path, char *errmsg)
{
	struct load_ctx ctx = {.c = c, .path = path, .rv = 0};
	int line;

	line = ini_parse(path, load_handler, &ctx);
	if (line == -1) {
		ombra_errmsg_printf(errmsg, "%s: cannot open: %s", path,
				    strerror(errno));
		return OMBRA_ECONFIG;
	}
	if (line == -2) {
		ombra_errmsg_printf(errmsg, "%s: out of memory", path);
		return OMBRA_ENOMEM;
	}
	if (line > 0) {
		if (ctx.rv == 0) {
			ombra_errmsg_printf(errmsg,
					    "%s:%d: syntax error (expected "
					    "[section] or key = value)",
					    path, line);
			return OMBRA_ECONFIG;
		}
		ombra_errmsg_printf(errmsg, "%s:%d: %s", path, line,
				    ctx.errmsg);
		return ctx.rv;
	}
	return 0;
}

static int member_cmp(const void *a, const void *b)
{
	const struct metad_member_cfg *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Adopt or check the listen address of this member against its
 * [member.N] entry. */
static int self_addr(char *listen, bool set, const char *member_addr,
		     const char *key, uint64_t id, char *errmsg)
{
	if (!set) {
		strcpy(listen, member_addr);
		return 0;
	}
	if (strcmp(listen, member_addr) != 0) {
		ombra_errmsg_printf(errmsg,
				    "[member.%llu] %s=%s differs from this "
				    "member's %s_listen=%s; make them equal",
				    (unsigned long long)id, key, member_addr,
				    key, listen);
		return OMBRA_ECONFIG;
	}
	return 0;
}

static int finish_members(struct metad_config *c, char *errmsg)
{
	const struct metad_member_cfg *self;
	struct metad_member_cfg *m;

	if (c->n_members == 0) {
		m = member_get(c, c->id);
		if (m == NULL) {
			ombra_errmsg_printf(errmsg, "out of memory");
			return OMBRA_ENOMEM;
		}
		strcpy(m->raft, c->raft_listen);
		strcpy(m->grpc, c->grpc_listen);
		return 0;
	}
	qsort(c->members, c->n_members, sizeof(*c->members), member_cmp);
	for (size_t i = 0; i < c->n_members; i++) {
		m = &c->members[i];
		if (m->raft[0] == '\0' || m->grpc[0] == '\0') {
			ombra_errmsg_printf(errmsg,
					    "[member.%llu]: both raft and grpc "
					    "are required",
					    (unsigned long long)m->id);
			return OMBRA_ECONFIG;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(c->members[j].raft, m->raft) == 0) {
				ombra_errmsg_printf(
				    errmsg,
				    "[member.%llu] and [member.%llu] have "
				    "the same raft address %s",
				    (unsigned long long)c->members[j].id,
				    (unsigned long long)m->id, m->raft);
				return OMBRA_ECONFIG;
			}
		}
	}
	self = metad_config_member(c, c->id);
	if (self == NULL) {
		if (c->bootstrap) {
			ombra_errmsg_printf(errmsg,
					    "bootstrap=true but there is no "
					    "[member.%llu] section for this "
					    "member (id=%llu); add it, or set "
					    "bootstrap=false to join later",
					    (unsigned long long)c->id,
					    (unsigned long long)c->id);
			return OMBRA_ECONFIG;
		}
		return 0;
	}
	if (self_addr(c->raft_listen, c->raft_set, self->raft, "raft", c->id,
		      errmsg) != 0 ||
	    self_addr(c->grpc_listen, c->grpc_set, self->grpc, "grpc", c->id,
		      errmsg) != 0) {
		return OMBRA_ECONFIG;
	}
	return 0;
}

int metad_config_finish(struct metad_config *c, char *errmsg)
{
	int n_tls;
	int rv;

	if (!c->data_dir_set) {
		snprintf(c->data_dir, sizeof(c->data_dir),
			 "./ombra-data/metad-%llu", (unsigned long long)c->id);
	}
	if (c->heartbeat_timeout_ms >= c->election_timeout_ms) {
		ombra_errmsg_printf(errmsg,
				    "heartbeat_timeout_ms=%u must be below "
				    "election_timeout_ms=%u (typically a "
				    "tenth of it)",
				    c->heartbeat_timeout_ms,
				    c->election_timeout_ms);
		return OMBRA_ECONFIG;
	}
	n_tls = (c->tls_ca[0] != '\0') + (c->tls_cert[0] != '\0') +
		(c->tls_key[0] != '\0');
	if (n_tls != 0 && n_tls != 3) {
		ombra_errmsg_printf(errmsg,
				    "[tls]: give all of ca, cert and key "
				    "(mutual TLS) or none of them");
		return OMBRA_ECONFIG;
	}
	rv = finish_members(c, errmsg);
	if (rv != 0) {
		return rv;
	}
	return 0;
}

/* ------------------------------------------------------------ flags */

enum {
	OPT_CONFIG = 1000,
	OPT_ID,
	OPT_DATA_DIR,
	OPT_GRPC,
	OPT_RAFT,
	OPT_HTTP,
	OPT_LOG_LEVEL,
	OPT_AUDIT_LOG,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"id", required_argument, NULL, OPT_ID},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"grpc", required_argument, NULL, OPT_GRPC},
    {"raft", required_argument, NULL, OPT_RAFT},
    {"http", required_argument, NULL, OPT_HTTP},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"audit-log", required_argument, NULL, OPT_AUDIT_LOG},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* The [metad] key each value flag sets, indexed by opt - OPT_ID. */
static const char *const flag_keys[] = {
    "id",	   "data_dir",	"grpc_listen", "raft_listen",
    "http_listen", "log_level", "audit_log",
};

struct flag_value {
	int opt;
	const char *value;
};

int metad_config_from_args(struct metad_config *c, int argc, char **argv,
			   enum metad_config_action *action, char *errmsg)
{
	struct flag_value *flags = NULL;
	size_t n_flags = 0;
	const char *config_path = NULL;
	const struct key_spec *spec;
	char what[64];
	int opt;
	int rv = 0;

	metad_config_defaults(c);
	*action = METAD_CONFIG_RUN;
	flags = calloc((size_t)argc + 1, sizeof(*flags));
	if (flags == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_CONFIG:
			config_path = optarg;
			break;
		case 'h':
		case OPT_HELP:
			*action = METAD_CONFIG_HELP;
			goto out;
		case OPT_VERSION:
			*action = METAD_CONFIG_VERSION;
			goto out;
		case ':':
			ombra_errmsg_printf(errmsg,
					    "option '%s' needs a value; see "
					    "--help",
					    argv[optind - 1]);
			rv = OMBRA_ECONFIG;
			goto out;
		case '?':
			ombra_errmsg_printf(errmsg,
					    "unknown option or missing value: "
					    "'%s'; see --help",
					    argv[optind - 1]);
			rv = OMBRA_ECONFIG;
			goto out;
		default:
			flags[n_flags].opt = opt;
			flags[n_flags].value = optarg;
			n_flags++;
			break;
		}
	}
	if (optind < argc) {
		ombra_errmsg_printf(errmsg,
				    "unexpected argument '%s'; see --help",
				    argv[optind]);
		rv = OMBRA_ECONFIG;
		goto out;
	}
	if (config_path != NULL) {
		rv = metad_config_load(c, config_path, errmsg);
		if (rv != 0) {
			goto out;
		}
	}
	for (size_t i = 0; i < n_flags; i++) {
		spec = key_find("metad", flag_keys[flags[i].opt - OPT_ID]);
		snprintf(what, sizeof(what), "--%s",
			 long_opts[flags[i].opt - OPT_CONFIG].name);
		rv = key_set(c, spec, flags[i].value, what, errmsg);
		if (rv != 0) {
			goto out;
		}
	}
	rv = metad_config_finish(c, errmsg);
	if (rv != 0 && config_path != NULL) {
		ombra_errmsg_wrapf(errmsg, "%s", config_path);
	}
out:
	free(flags);
	return rv;
}

const char *metad_config_usage(void)
{
	return "Usage: ombra-metad [OPTIONS]\n"
	       "\n"
	       "Ombra metadata service: one member of the Raft group that "
	       "stores regions,\n"
	       "nodes, volumes and shard maps.  Serves AdminService and "
	       "MetaService over\n"
	       "gRPC, /metrics and /healthz over HTTP.\n"
	       "\n"
	       "Options (override the configuration file):\n"
	       "  --config FILE      INI configuration file (see below)\n"
	       "  --id N             member id, >= 1 (default 1)\n"
	       "  --data-dir DIR     state directory (default "
	       "./ombra-data/metad-<id>)\n"
	       "  --grpc HOST:PORT   gRPC listen address (default "
	       "127.0.0.1:7100)\n"
	       "  --raft HOST:PORT   Raft listen address (default "
	       "127.0.0.1:7101)\n"
	       "  --http HOST:PORT   HTTP listen address (default "
	       "127.0.0.1:7102)\n"
	       "  --log-level L      debug|info|warn|error (default info)\n"
	       "  --audit-log FILE   append every committed lease grant, "
	       "writer lease\n"
	       "                     change, node state change and volume "
	       "creation to FILE\n"
	       "                     as JSON lines (docs/metad.md \"Audit "
	       "log\"; default off)\n"
	       "  -h, --help         show this text and exit\n"
	       "  --version          show the version and exit\n"
	       "\n"
	       "Configuration file (every key optional; defaults shown):\n"
	       "  [metad]\n"
	       "  id = 1\n"
	       "  data_dir = ./ombra-data/metad-<id>\n"
	       "  grpc_listen = 127.0.0.1:7100\n"
	       "  raft_listen = 127.0.0.1:7101\n"
	       "  http_listen = 127.0.0.1:7102\n"
	       "  log_level = info\n"
	       "  election_timeout_ms = 1000   ; Raft election timeout\n"
	       "  heartbeat_timeout_ms = 100   ; leader heartbeat interval\n"
	       "  snapshot_threshold = 16384   ; log entries between "
	       "snapshots\n"
	       "  snapshot_trailing = 2048     ; entries kept after a "
	       "snapshot\n"
	       "  node_timeout_ms = 10000      ; storage node marked DOWN "
	       "after this\n"
	       "                               ; long without a heartbeat\n"
	       "  audit_log =                  ; FILE: as --audit-log "
	       "(default off)\n"
	       "  bootstrap = true             ; true: initial member, "
	       "bootstraps the group\n"
	       "                               ; with every [member.N] as "
	       "voter on first\n"
	       "                               ; start; false: start empty "
	       "and wait to be\n"
	       "                               ; added with AddMetadMember\n"
	       "  [tls]                        ; all three or none: mutual "
	       "TLS on gRPC\n"
	       "  ca = /path/ca.pem\n"
	       "  cert = /path/server.pem\n"
	       "  key = /path/server.key\n"
	       "  [member.N]                   ; initial members; default: "
	       "this member only\n"
	       "  raft = host:port\n"
	       "  grpc = host:port\n"
	       "\n"
	       "This member's [member.<id>] addresses must match its "
	       "raft/grpc listen\n"
	       "addresses (unset listen addresses are taken from it).\n"
	       "Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on "
	       "a runtime\n"
	       "failure, 2 on a configuration error.\n";
}

void metad_config_log(const struct metad_config *c)
{
	log_info("config: id=%llu data_dir=%s grpc=%s raft=%s http=%s "
		 "bootstrap=%s tls=%s",
		 (unsigned long long)c->id, c->data_dir, c->grpc_listen,
		 c->raft_listen, c->http_listen,
		 c->bootstrap ? "true" : "false",
		 c->tls_ca[0] != '\0' ? "mutual" : "off");
	log_info("config: election_timeout_ms=%u heartbeat_timeout_ms=%u "
		 "snapshot_threshold=%u snapshot_trailing=%u "
		 "node_timeout_ms=%u",
		 c->election_timeout_ms, c->heartbeat_timeout_ms,
		 c->snapshot_threshold, c->snapshot_trailing,
		 c->node_timeout_ms);
	for (size_t i = 0; i < c->n_members; i++) {
		log_info("config: member.%llu raft=%s grpc=%s",
			 (unsigned long long)c->members[i].id,
			 c->members[i].raft, c->members[i].grpc);
	}
}
