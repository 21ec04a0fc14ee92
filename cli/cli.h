/* cli.h: shared pieces of ombractl, the admin CLI: the invocation context,
 * the command group type, option parsing with the global options accepted
 * anywhere on the line, the AdminService call wrapper, error reporting and
 * the output helpers.  Commands themselves are declared as data
 * (command.h) and run by cli_command_run().
 *
 * Exit codes (returned by every command and by main): 0 success, 1 the
 * server refused or could not be reached, 2 the command line was wrong.
 * Every failure prints exactly one line "ombractl: ..." on stderr; stdout
 * carries only results (a table, or one JSON document with --json). */
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

struct cli_command; /* command.h */
struct table;	    /* table.h */

/* A command group ("volume"): its commands and help texts. */
struct cli_group {
	const char *name;
	const char *summary; /* one line for the top-level help */
	const char *help;    /* full text for "ombractl <group> --help" */
	const struct cli_command *const *commands;
	size_t n_commands;
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
	const struct cli_group *group; /* group being run: its help is --help */
	struct rpc_cluster *cluster;
};

extern const struct cli_group cmd_cluster_group;
extern const struct cli_group cmd_region_group;
extern const struct cli_group cmd_node_group;
extern const struct cli_group cmd_volume_group;

/* ---- globals.c: the global options ---- */

/* Text of the global options, shared by every help screen. */
extern const char cli_global_help[];

/* Codes of the global long options (outside the range of command option
 * codes, which stay below CLI_OPT_ENDPOINTS). */
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

/* getopt_long() over argv with the command's options (shortopts in getopt
 * syntax, optionally starting with '+' to stop at the first word;
 * longopts zero-terminated, at most 24 entries, codes below
 * CLI_OPT_ENDPOINTS) merged with the global options and -h/--help.  Global
 * options are applied to cli and skipped.  Returns the next command option
 * code, -1 at the end, CLI_OPT_HELP for --help/-h, or '?' after printing a
 * usage error (unknown option, missing argument, bad global value).
 * Non-option words are permuted to argv[optind..].  Start with optind = 0. */
int cli_getopt(struct cli *cli, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

/* Check the options taken together: TLS files all or none, each a valid
 * PEM file, the key matching the certificate (tlscheck.h).
 * Returns CLI_EXIT_OK or CLI_EXIT_USAGE after printing the problem. */
int cli_check_globals(const struct cli *cli);

/* ---- cli.c: messages and the AdminService call ---- */

/* Print "ombractl: <cmd_name>: <message>" and return CLI_EXIT_USAGE. */
int cli_usage(const struct cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "ombractl: <message>" and return CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Unary AdminService call through the leader-following cluster client
 * (created on first use from cli->endpoints and cli->tls after
 * cli_check_globals()).  On success returns CLI_EXIT_OK and *resp is a new
 * message the caller frees with protobuf_c_message_free_unpacked(*resp,
 * NULL).  On failure prints the one-line error (gRPC code name and server
 * message, or "cannot reach any metad at ...") and returns CLI_EXIT_FAIL
 * (CLI_EXIT_USAGE when the endpoint list or TLS options are wrong); *resp
 * is NULL. */
int cli_call(struct cli *cli, const char *method, const ProtobufCMessage *req,
	     ProtobufCMessage **resp);

/* Report a failed rpc_* call (rc from it, st as filled) in the CLI's
 * format; target names who was asked.  Returns CLI_EXIT_FAIL. */
int cli_report_rpc_error(const struct cli *cli, const char *target, int rc,
			 const struct rpc_status *st);

/* Release what cli holds (the cluster client). */
void cli_close(struct cli *cli);

/* ---- output.c: what goes to stdout ---- */

/* Print the group's help and the global options on stdout; returns
 * CLI_EXIT_OK (for "--help" anywhere after the group word). */
int cli_help(const struct cli_group *g);

/* Print msg as one JSON document (lib/pbjson.h) on stdout.  Returns
 * CLI_EXIT_OK or CLI_EXIT_FAIL on out-of-memory. */
int cli_print_json(const ProtobufCMessage *msg);

/* Print t on stdout (table_print()) and release it (table_close()).
 * Returns CLI_EXIT_OK, or CLI_EXIT_FAIL after "formatting the <what>
 * table: <error>" when the table could not be built (nothing printed). */
int cli_print_table(struct table *t, const char *what);

/* Flush stdout and report a write error (EPIPE, full disk) as a failure.
 * Returns rc unchanged when stdout is fine, else CLI_EXIT_FAIL. */
int cli_finish_output(int rc);

#endif
