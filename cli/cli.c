/* cli.c: ombractl's shared machinery: global options (accepted before or
 * after the command words), option parsing, the AdminService call wrapper
 * and the one-line error messages.
 *
 * Failure: nothing here exits; every function returns a CLI_EXIT_* code
 * after printing one "ombractl: ..." line on stderr, and main turns that
 * code into the process exit status. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "parse.h"
#include "pbjson.h"
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

int cli_usage(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", CLI_PROG);
	if (cli->cmd_name[0] != '\0') {
		fprintf(stderr, "%s: ", cli->cmd_name);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", CLI_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_FAIL;
}

int cli_set_global(struct cli *cli, int code, const char *arg)
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

int cli_args(const struct cli *cli, int argc, char **argv, int n,
	     const char *names, char **out)
{
	int have = argc - optind;
	int i;

	if (have > n) {
		return cli_usage(cli, "unexpected argument '%s'",
				 argv[optind + n]);
	}
	if (have < n) {
		/* Name the first missing word. */
		const char *w = names;

		for (i = 0; i < have; i++) {
			w += strcspn(w, " ");
			w += strspn(w, " ");
		}
		return cli_usage(cli, "missing %.*s", (int)strcspn(w, " "), w);
	}
	for (i = 0; i < n; i++) {
		out[i] = argv[optind + i];
	}
	return CLI_EXIT_OK;
}

const char *cli_status_name(grpc_status_code code)
{
	static const char *const names[] = {
	    [GRPC_STATUS_OK] = "OK",
	    [GRPC_STATUS_CANCELLED] = "CANCELLED",
	    [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
	    [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
	    [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
	    [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
	    [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
	    [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
	    [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
	    [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
	    [GRPC_STATUS_ABORTED] = "ABORTED",
	    [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
	    [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
	    [GRPC_STATUS_INTERNAL] = "INTERNAL",
	    [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
	    [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
	    [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
	};

	if ((int)code < 0 || (size_t)code >= sizeof(names) / sizeof(names[0]) ||
	    names[code] == NULL) {
		return "UNKNOWN";
	}
	return names[code];
}

int cli_report_rpc_error(const struct cli *cli, const char *target, int rc,
			 const struct rpc_status *st)
{
	const char *name = cli_status_name(st->code);
	const char *msg =
	    st->message[0] != '\0' ? st->message : ombra_strerror(rc);

	switch (st->code) {
	case GRPC_STATUS_OK:
		/* The call succeeded on the wire but the client layer failed
		 * (undecodable response, out of memory). */
		return cli_fail("%s: %s", ombra_strerror(rc), msg);
	case GRPC_STATUS_UNAVAILABLE:
		return cli_fail("cannot reach any metad at %s (%s: %s)", target,
				name, msg);
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return cli_fail("no answer from metad at %s within %d ms "
				"(%s: %s)",
				target, cli->timeout_ms, name, msg);
	default:
		return cli_fail("%s: %s", name, msg);
	}
}

int cli_call(struct cli *cli, const char *method, const ProtobufCMessage *req,
	     ProtobufCMessage **resp)
{
	char errmsg[OMBRA_ERRMSG_LEN] = "";
	struct rpc_status st;
	int rc;

	*resp = NULL;
	if (cli->cluster == NULL) {
		rc = cli_check_globals(cli);
		if (rc != CLI_EXIT_OK) {
			return rc;
		}
		rc = rpc_cluster_create(
		    cli->endpoints, cli->tls.ca_file != NULL ? &cli->tls : NULL,
		    &cli->cluster, errmsg);
		if (rc != 0) {
			cli->cluster = NULL;
			if (rc == OMBRA_EINVAL || rc == OMBRA_ECONFIG) {
				return cli_usage(cli, "--endpoints: %s",
						 errmsg);
			}
			return cli_fail("cannot set up a client for %s: %s",
					cli->endpoints, errmsg);
		}
	}
	memset(&st, 0, sizeof(st));
	rc = rpc_cluster_unary(cli->cluster,
			       &ombra__v1__admin_service__descriptor, method,
			       req, resp, cli->timeout_ms, &st);
	if (rc != 0 || *resp == NULL) {
		if (*resp != NULL) {
			protobuf_c_message_free_unpacked(*resp, NULL);
			*resp = NULL;
		}
		if (rc == 0) {
			rc = OMBRA_EINTERNAL;
		}
		return cli_report_rpc_error(cli, cli->endpoints, rc, &st);
	}
	return CLI_EXIT_OK;
}

int cli_help(const struct cli_group *g)
{
	fprintf(stdout, "%s\n%s", g->help, cli_global_help);
	return CLI_EXIT_OK;
}

int cli_print_json(const ProtobufCMessage *msg)
{
	char *text = pbjson_to_string(msg);

	if (text == NULL) {
		return cli_fail("out of memory while formatting JSON");
	}
	fputs(text, stdout);
	fputc('\n', stdout);
	free(text);
	return CLI_EXIT_OK;
}

int cli_finish_output(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		return cli_fail("writing to stdout: %s", strerror(errno));
	}
	return rc;
}

void cli_close(struct cli *cli)
{
	if (cli->cluster != NULL) {
		rpc_cluster_destroy(cli->cluster);
		cli->cluster = NULL;
	}
}
