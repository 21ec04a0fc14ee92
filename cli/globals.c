/* globals.c: ombractl's global options (--endpoints, --json,
 * --timeout-ms, the TLS files, --help), accepted before or after the
 * command words: their help text, their values and the getopt_long()
 * wrapper that merges them with a command's own options.
 *
 * Failure: a bad value or an unknown option prints one usage line
 * ("ombractl: <command>: ...") and is reported as '?' / CLI_EXIT_USAGE;
 * nothing here exits. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "parse.h"
#include "tlscheck.h"

#define CLI_MAX_LONGOPTS 24

const char cli_global_help[] =
    "Global options (accepted anywhere on the command line):\n"
    "  --endpoints HOST:PORT,...  metad AdminService addresses (default:\n"
    "                             $OMBRA_ENDPOINTS, else " CLI_DEFAULT_ENDPOINTS
    ")\n"
    "  --json                     print the server's response as one JSON\n"
    "                             document on stdout instead of a table\n"
    "  --timeout-ms N             give up after N ms, retries included\n"
    "                             (default 10000)\n"
    "  --tls-ca FILE --tls-cert FILE --tls-key FILE\n"
    "                             mutual TLS with these PEM files (all three\n"
    "                             or none)\n"
    "  --tls-server-name NAME     expected name in the server certificate\n"
    "  -h, --help                 show help\n"
    "\n"
    "Exit status: 0 ok, 1 server error or cluster unreachable, 2 usage "
    "error.\n";

static const struct option cli_global_longopts[] = {
    {"endpoints", required_argument, NULL, CLI_OPT_ENDPOINTS},
    {"json", no_argument, NULL, CLI_OPT_JSON},
    {"timeout-ms", required_argument, NULL, CLI_OPT_TIMEOUT},
    {"tls-ca", required_argument, NULL, CLI_OPT_TLS_CA},
    {"tls-cert", required_argument, NULL, CLI_OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, CLI_OPT_TLS_KEY},
    {"tls-server-name", required_argument, NULL, CLI_OPT_TLS_NAME},
    {"help", no_argument, NULL, CLI_OPT_HELP},
};

#define CLI_N_GLOBAL                                                           \
	(sizeof(cli_global_longopts) / sizeof(cli_global_longopts[0]))

/* Apply one global option; returns CLI_EXIT_OK or CLI_EXIT_USAGE after
 * printing why the value is bad. */
static int cli_set_global(struct cli *cli, int code, const char *arg)
{
	uint64_t v;

	switch (code) {
	case CLI_OPT_ENDPOINTS:
		if (arg[0] == '\0') {
			return cli_usage(cli, "--endpoints must not be empty");
		}
		cli->endpoints = arg;
		break;
	case CLI_OPT_JSON:
		cli->json = true;
		break;
	case CLI_OPT_TIMEOUT:
		if (parse_u64(arg, &v) != 0 || v == 0 || v > INT32_MAX) {
			return cli_usage(cli,
					 "--timeout-ms '%s': expected a whole "
					 "number of milliseconds, 1..%d",
					 arg, INT32_MAX);
		}
		cli->timeout_ms = (int)v;
		break;
	case CLI_OPT_TLS_CA:
		cli->tls.ca_file = arg;
		break;
	case CLI_OPT_TLS_CERT:
		cli->tls.cert_file = arg;
		break;
	case CLI_OPT_TLS_KEY:
		cli->tls.key_file = arg;
		break;
	case CLI_OPT_TLS_NAME:
		cli->tls.server_name_override = arg;
		break;
	default:
		return cli_usage(
		    cli, "internal error: unknown global option %d", code);
	}
	return CLI_EXIT_OK;
}

int cli_check_globals(const struct cli *cli)
{
	const struct rpc_tls *t = &cli->tls;
	int n = (t->ca_file != NULL) + (t->cert_file != NULL) +
		(t->key_file != NULL);
	char errmsg[OMBRA_ERRMSG_LEN];

	if (n == 0) {
		if (t->server_name_override != NULL) {
			return cli_usage(cli,
					 "--tls-server-name needs --tls-ca, "
					 "--tls-cert and --tls-key");
		}
		return CLI_EXIT_OK;
	}
	if (n != 3) {
		return cli_usage(cli, "TLS needs all of --tls-ca, --tls-cert "
				      "and --tls-key");
	}
	if (tlscheck_files(t, errmsg) != 0) {
		return cli_usage(cli, "%s", errmsg);
	}
	return CLI_EXIT_OK;
}

int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	struct option all[CLI_MAX_LONGOPTS + CLI_N_GLOBAL + 1];
	char shorts[64];
	size_t n = 0;
	int c;

	for (; longopts != NULL && longopts[n].name != NULL; n++) {
		if (n == CLI_MAX_LONGOPTS) {
			cli_usage(cli, "internal error: too many options");
			return '?';
		}
		all[n] = longopts[n];
	}
	memcpy(&all[n], cli_global_longopts, sizeof(cli_global_longopts));
	n += CLI_N_GLOBAL;
	memset(&all[n], 0, sizeof(all[n]));
	/* getopt wants a '+' (stop at the first word) before the ':'. */
	if (snprintf(shorts, sizeof(shorts), "%s:%sh",
		     shortopts[0] == '+' ? "+" : "",
		     shortopts + (shortopts[0] == '+')) >=
	    (int)sizeof(shorts)) {
		cli_usage(cli, "internal error: too many short options");
		return '?';
	}

	opterr = 0;
	for (;;) {
		c = getopt_long(argc, argv, shorts, all, NULL);
		if (c == 'h') {
			return CLI_OPT_HELP;
		}
		if (c == ':' || c == '?') {
			char shown[64];
			const char *word = argv[optind - 1];

			/* A long option is shown as typed (without "=value");
			 * a short one by the letter getopt stopped at. */
			if (strncmp(word, "--", 2) == 0) {
				snprintf(shown, sizeof(shown), "%.*s",
					 (int)strcspn(word, "="), word);
			} else {
				snprintf(shown, sizeof(shown), "-%c", optopt);
			}
			if (c == ':') {
				cli_usage(cli, "option '%s' requires a value",
					  shown);
			} else {
				cli_usage(cli, "unknown option '%s'", shown);
			}
			return '?';
		}
		if (c < CLI_OPT_ENDPOINTS || c == CLI_OPT_HELP) {
			return c;
		}
		if (cli_set_global(cli, c, optarg) != CLI_EXIT_OK) {
			return '?';
		}
	}
}
