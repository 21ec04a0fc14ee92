/* cli.h: shared pieces of ombractl, the admin CLI: the invocation context,
 * the command table types, option parsing with the global options accepted
 * anywhere on the line, the AdminService call wrapper and error reporting.
 *
 * Exit codes (returned by every command function and by main): 0 success,
 * 1 the server refused or could not be reached, 2 the command line was
 * wrong.  Every failure prints exactly one line "ombractl: ..." on stderr;
 * stdout carries only results (a table, or one JSON document with --json). */
#ifndef OMBRA_CLI_H
#define OMBRA_CLI_H

#include <getopt.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"

#define CLI_PROG "ombractl"
#define CLI_DEFAULT_ENDPOINTS "127.0.0.1:7100"
#define CLI_DEFAULT_TIMEOUT_MS 10000

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAIL = 1,  /* server error, unreachable cluster, I/O */
	CLI_EXIT_USAGE = 2, /* bad command line; nothing was sent */
};

/* One invocation.  Filled by main and by the global options wherever they
 * appear; the cluster handle is created on the first call and destroyed by
 * cli_close().  Strings point into argv or the environment (not owned). */
struct cli {
	const char *endpoints; /* "host:port,..." */
	bool json;
	int timeout_ms;
	struct rpc_tls tls; /* all NULL = insecure */
	char cmd_name[64];  /* "volume create": prefix of usage errors */
	struct rpc_cluster *cluster;
};

/* A command: name is one or more words ("list", "member add"); run gets
 * argv[0] = the last word of the name, then the rest of the line. */
struct cli_command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
};

struct cli_group {
	const char *name;
	const char *summary; /* one line for the top-level help */
	const char *help;    /* full text for "ombractl <group> --help" */
	const struct cli_command *commands;
	size_t n_commands;
};

extern const struct cli_group cmd_cluster_group;
extern const struct cli_group cmd_region_group;
extern const struct cli_group cmd_node_group;
extern const struct cli_group cmd_volume_group;

/* Text of the global options, shared by every help screen. */
extern const char cli_global_help[];

/* Codes of the global long options (outside the char range so commands can
 * use letters for their own). */
enum cli_global_opt {
	CLI_OPT_ENDPOINTS = 1000,
	CLI_OPT_JSON,
	CLI_OPT_TIMEOUT,
	CLI_OPT_TLS_CA,
	CLI_OPT_TLS_CERT,
	CLI_OPT_TLS_KEY,
	CLI_OPT_TLS_NAME,
	CLI_OPT_HELP,
};

/* getopt_long() over argv with the command's options (shortopts without
 * a ':', optionally starting with '+' to stop at the first word; longopts
 * zero-terminated, at most 24 entries) merged with the global options and
 * -h/--help.  Global options are applied to cli and skipped.  Returns the next
 * command option code, -1 at the end, CLI_OPT_HELP for --help/-h, or '?' after
 * printing a usage error (unknown option, missing argument, bad global value).
 * Non-option words are permuted to argv[optind..].  Start with optind = 0. */
int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* After option parsing: argv[optind..argc) must be exactly the n words
 * named in names (space separated, e.g. "NAME" or "ID"); out[i] gets them
 * (out may be NULL when n is 0).  Returns CLI_EXIT_OK or CLI_EXIT_USAGE
 * ("missing NAME", "unexpected argument 'x'"). */
int cli_args(const struct cli *cli, int argc, char **argv, int n,
	     const char *names, char **out);

/* Apply one global option; returns CLI_EXIT_OK or CLI_EXIT_USAGE after
 * printing why the value is bad. */
int cli_set_global(struct cli *cli, int code, const char *arg);

/* Check the options taken together: TLS files all or none, each a valid
 * PEM file, the key matching the certificate (tlscheck.h).
 * Returns CLI_EXIT_OK or CLI_EXIT_USAGE after printing the problem. */
int cli_check_globals(const struct cli *cli);

/* Print "ombractl: <cmd_name>: <message>" and return CLI_EXIT_USAGE. */
int cli_usage(const struct cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "ombractl: <message>" and return CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Unary AdminService call through the leader-following cluster client
 * (created on first use from cli->endpoints and cli->tls).  On success
 * returns CLI_EXIT_OK and *resp is a new message the caller frees with
 * protobuf_c_message_free_unpacked(*resp, NULL).  On failure prints the
 * one-line error (gRPC code name and server message, or "cannot reach any
 * metad at ...") and returns CLI_EXIT_FAIL (CLI_EXIT_USAGE when the
 * endpoint list is malformed); *resp is NULL. */
int cli_call(struct cli *cli, const char *method, const ProtobufCMessage *req,
	     ProtobufCMessage **resp);

/* Report a failed rpc_* call (rc from it, st as filled) in the CLI's
 * format; target names who was asked.  Returns CLI_EXIT_FAIL. */
int cli_report_rpc_error(const struct cli *cli, const char *target, int rc,
			 const struct rpc_status *st);

/* Canonical gRPC status name ("NOT_FOUND"); "UNKNOWN" if out of range. */
const char *cli_status_name(grpc_status_code code);

/* Print the group's help and the global options on stdout; returns
 * CLI_EXIT_OK (for "--help" anywhere after the group word). */
int cli_help(const struct cli_group *g);

/* Print msg as one JSON document (lib/pbjson.h) on stdout.  Returns
 * CLI_EXIT_OK or CLI_EXIT_FAIL on out-of-memory. */
int cli_print_json(const ProtobufCMessage *msg);

/* Flush stdout and report a write error (EPIPE, full disk) as a failure.
 * Returns rc unchanged when stdout is fine, else CLI_EXIT_FAIL. */
int cli_finish_output(int rc);

/* Release what cli holds (the cluster client). */
void cli_close(struct cli *cli);

#endif
