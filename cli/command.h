/* command.h: ombractl commands declared as data.  A command is one
 * struct cli_command: its options and positional arguments, the fields of
 * the AdminService request they fill (by protobuf field name), the method
 * to call and a printer for the human output.  cli_command_run() does the
 * rest the same way for every command:
 *
 *   1. option loop (cli_getopt(), so global options work anywhere);
 *      --help prints the group's help and stops with exit 0;
 *   2. exactly the declared positional words ("missing NAME",
 *      "unexpected argument 'x'"), each parsed into its field;
 *   3. in option order: a required option that is missing is reported
 *      ("--size is required"), a late option is parsed now;
 *   4. the command's check hook (e.g. delete's confirmation);
 *   5. a fresh request id if the command is a retried write;
 *   6. the call through cli_call() (leader following, one-line errors),
 *      then --json prints the response (pbjson), else the printer runs.
 *
 * Commands that do not fit (cluster status probes every member itself)
 * set exec instead of method/print; steps 1-4 still apply.
 *
 * Failure: usage errors exit 2 before anything is sent, server and
 * cluster errors exit 1, each with one "ombractl: ..." line.  A table
 * that names a field the request does not have (or of the wrong type) is
 * a programming error reported as "internal error: ..." (exit 2). */
#ifndef OMBRA_CLI_COMMAND_H
#define OMBRA_CLI_COMMAND_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

#define CLI_MAX_OPTIONS 16 /* per command, global options not counted */
#define CLI_MAX_ARGS 4	   /* positional words per command */

struct cli_run;

/* How one word (an option value or a positional argument) is parsed and
 * stored.  A usage error names the word as "<shown> '<word>': <what>",
 * where shown is "--size" for options and the argument's label. */
enum cli_value_kind {
	CLI_VALUE_FLAG,	      /* no value; bool field (if any) set true */
	CLI_VALUE_FLAG_CLEAR, /* no value; bool field true unless given */
	CLI_VALUE_STRING,     /* string field = the word (not copied) */
	CLI_VALUE_HOSTPORT,   /* string field, HOST:PORT shape (parse.h) */
	CLI_VALUE_SIZE,	      /* uint64 field, bytes with a unit (parse.h) */
	CLI_VALUE_UINT,	      /* uint32/uint64 field, whole number min..max */
	CLI_VALUE_CUSTOM,     /* parse() stores it; field only for presence */
};

struct cli_value {
	enum cli_value_kind kind;
	/* Request field name; NULL: the word is only recorded in the run. */
	const char *field;
	/* CLI_VALUE_UINT: accepted range and the "expected ..." text. */
	uint64_t min;
	uint64_t max;
	const char *what;
	/* CLI_VALUE_CUSTOM: parse and store word; print the usage error
	 * and return CLI_EXIT_USAGE when it is bad, else CLI_EXIT_OK. */
	int (*parse)(struct cli_run *run, const char *shown, char *word);
};

enum cli_option_flag {
	/* Missing when its field holds the protobuf default (empty string,
	 * no elements, 0, false), or, without a field or when late, when it
	 * was not given at all. */
	CLI_OPTION_REQUIRED = 1u << 0,
	/* Parsed in step 3 (after the positional words) rather than where it
	 * stands; the last occurrence wins. */
	CLI_OPTION_LATE = 1u << 1,
};

struct cli_option {
	const char *name;    /* long name without "--"; NULL ends a table */
	char short_name;     /* also accepted as "-x"; 0: none ('h' is help) */
	unsigned flags;	     /* enum cli_option_flag */
	const char *missing; /* message if required and missing; NULL:
				"--NAME is required" */
	struct cli_value value;
};

struct cli_arg {
	const char *name;  /* "NAME", in "missing NAME"; NULL ends a table */
	const char *label; /* in value errors ("member ID"); NULL: name */
	struct cli_value value;
};

struct cli_command {
	const char *name; /* "list" or "member add" (words after the group) */
	/* AdminService method and its request type; NULL with exec. */
	const char *method;
	const ProtobufCMessageDescriptor *request;
	const struct cli_option *options; /* NULL or {0}-terminated */
	const struct cli_arg *args;	  /* NULL or {0}-terminated */
	bool request_id; /* fill the request's "request_id" (retried write) */
	/* Zeroed scratch space for the hooks (run->state).  When the run
	 * ends, state_free (may be NULL) releases what the hooks allocated
	 * inside it; the runner then frees the block itself. */
	size_t state_size;
	void (*state_free)(void *state);
	/* Step 4; may print and return an exit code to stop. */
	int (*check)(struct cli_run *run);
	/* Human output of a successful call; returns a CLI_EXIT_* code. */
	int (*print)(const struct cli_run *run, const ProtobufCMessage *resp);
	/* Replaces step 5 and 6 when set. */
	int (*exec)(struct cli_run *run);
};

/* One run of a command, as the hooks see it.  Words point into argv. */
struct cli_run {
	struct cli *cli;
	const struct cli_command *cmd;
	ProtobufCMessage *req;	      /* NULL without method */
	char *given[CLI_MAX_OPTIONS]; /* last word of option i; "" for a
					 flag; NULL if absent */
	char *args[CLI_MAX_ARGS];     /* the positional words */
	void *state;		      /* cmd->state_size bytes */
};

/* Run cmd with its own argv (argv[0] = the command's last word, then the
 * rest of the line), following the steps above.  Returns CLI_EXIT_OK,
 * CLI_EXIT_FAIL or CLI_EXIT_USAGE after printing the result or one error
 * line.  Allocates nothing that outlives the call. */
int cli_command_run(struct cli *cli, const struct cli_command *cmd, int argc,
		    char **argv);

/* The last word given for the option called name ("" for a flag), or NULL
 * if it was not given (or the command has no such option). */
const char *cli_run_option(const struct cli_run *run, const char *name);

/* The positional argument NAME, stored in the request's "name" field. */
extern const struct cli_arg cli_args_name[];

/* Only --stale (CLI_OPTION_STALE). */
extern const struct cli_option cli_options_stale[];

/* --stale: answer from the member asked, without a Raft barrier. */
#define CLI_OPTION_STALE                                                       \
	{                                                                      \
		.name = "stale",                                               \
		.value = {.kind = CLI_VALUE_FLAG, .field = "allow_stale"},     \
	}

#endif
