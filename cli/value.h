/* value.h: how ombractl turns one word of the command line (an option
 * value or a positional argument) into a field of an AdminService request,
 * the field found by its protobuf name (struct cli_value, command.h).
 *
 * Failure: a bad word prints one usage line naming it and returns
 * CLI_EXIT_USAGE; a value spec that does not match the request type is
 * reported by cli_value_check() as OMBRA_EINTERNAL, never written. */
#ifndef OMBRA_CLI_VALUE_H
#define OMBRA_CLI_VALUE_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "command.h"

/* Is v usable with messages of type desc (NULL: the command sends no
 * request)?  Its field must exist, be singular and have the type the kind
 * stores (bool, string, uint64; uint32 too for CLI_VALUE_UINT with max
 * within 32 bits); a custom kind needs parse and may name any field.
 * Returns 0, or OMBRA_EINTERNAL with errmsg (OMBRA_ERRMSG_LEN) naming
 * shown and the field. */
int cli_value_check(const ProtobufCMessageDescriptor *desc,
		    const struct cli_value *v, const char *shown, char *errmsg);

/* Before the options are read: a CLI_VALUE_FLAG_CLEAR field is set true.
 * v must have passed cli_value_check(). */
void cli_value_preset(ProtobufCMessage *msg, const struct cli_value *v);

/* Parse word as v says and store it in run->req (word is kept by
 * pointer, not copied; it must outlive the request).  shown names the
 * word in errors ("--size", "member ID").  Returns CLI_EXIT_OK, or
 * CLI_EXIT_USAGE after printing "<shown> '<word>': <what expected>".
 * v must have passed cli_value_check(). */
int cli_value_set(struct cli_run *run, const struct cli_value *v,
		  const char *shown, char *word);

/* Does v's field in msg differ from the protobuf default (non-empty
 * string, at least one element, non-zero number, true)?  False when v has
 * no field or msg is NULL. */
bool cli_value_present(const ProtobufCMessage *msg, const struct cli_value *v);

#endif
