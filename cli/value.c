/* value.c: parsing ombractl's words into request fields by protobuf field
 * name (see value.h).  The descriptor is consulted for every access, so a
 * field is only ever written with the C type protobuf-c generated for it.
 *
 * Failure: bad words are usage errors (CLI_EXIT_USAGE, one line printed);
 * a spec that does not fit the request is OMBRA_EINTERNAL from
 * cli_value_check() and is never used to write memory. */
#include "value.h"

#include <string.h>

#include "err.h"
#include "parse.h"

static const ProtobufCFieldDescriptor *
value_field(const ProtobufCMessageDescriptor *desc, const char *name)
{
	if (desc == NULL || name == NULL) {
		return NULL;
	}
	return protobuf_c_message_descriptor_get_field_by_name(desc, name);
}

static void *value_slot(ProtobufCMessage *msg,
			const ProtobufCFieldDescriptor *f)
{
	return (char *)msg + f->offset;
}

/* Is f of the type v's kind stores into (any type for a custom kind)? */
static bool value_type_ok(const struct cli_value *v,
			  const ProtobufCFieldDescriptor *f)
{
	switch (v->kind) {
	case CLI_VALUE_FLAG:
	case CLI_VALUE_FLAG_CLEAR:
		return f->type == PROTOBUF_C_TYPE_BOOL;
	case CLI_VALUE_STRING:
	case CLI_VALUE_HOSTPORT:
		return f->type == PROTOBUF_C_TYPE_STRING;
	case CLI_VALUE_SIZE:
		return f->type == PROTOBUF_C_TYPE_UINT64;
	case CLI_VALUE_UINT:
		return f->type == PROTOBUF_C_TYPE_UINT64 ||
		       (f->type == PROTOBUF_C_TYPE_UINT32 &&
			v->max <= UINT32_MAX);
	case CLI_VALUE_CUSTOM:
		return true;
	}
	return false;
}

int cli_value_check(const ProtobufCMessageDescriptor *desc,
		    const struct cli_value *v, const char *shown, char *errmsg)
{
	const ProtobufCFieldDescriptor *f = value_field(desc, v->field);

	if (v->kind == CLI_VALUE_CUSTOM && v->parse == NULL) {
		ombra_errmsg_printf(errmsg, "%s: no parser", shown);
		return OMBRA_EINTERNAL;
	}
	if (v->kind == CLI_VALUE_UINT && (v->what == NULL || v->min > v->max)) {
		ombra_errmsg_printf(errmsg, "%s: no range", shown);
		return OMBRA_EINTERNAL;
	}
	if (v->field == NULL) {
		return 0;
	}
	if (f == NULL) {
		ombra_errmsg_printf(errmsg, "%s: request %s has no field %s",
				    shown, desc != NULL ? desc->name : "(none)",
				    v->field);
		return OMBRA_EINTERNAL;
	}
	if ((f->label != PROTOBUF_C_LABEL_NONE &&
	     v->kind != CLI_VALUE_CUSTOM) ||
	    !value_type_ok(v, f)) {
		ombra_errmsg_printf(errmsg, "%s: field %s.%s has another type",
				    shown, desc->name, v->field);
		return OMBRA_EINTERNAL;
	}
	return 0;
}

void cli_value_preset(ProtobufCMessage *msg, const struct cli_value *v)
{
	const ProtobufCFieldDescriptor *f;

	if (v->kind != CLI_VALUE_FLAG_CLEAR || msg == NULL) {
		return;
	}
	f = value_field(msg->descriptor, v->field);
	if (f != NULL) {
		*(protobuf_c_boolean *)value_slot(msg, f) = 1;
	}
}

/* Parse a number word; usage error if it is not one or out of range. */
static int value_uint(struct cli_run *run, const struct cli_value *v,
		      const char *shown, const char *word, uint64_t *out)
{
	if (v->kind == CLI_VALUE_SIZE) {
		if (parse_size(word, out) != 0) {
			return cli_usage(run->cli, "%s '%s': %s", shown, word,
					 parse_size_what);
		}
	} else if (parse_u64(word, out) != 0 || *out < v->min ||
		   *out > v->max) {
		return cli_usage(run->cli, "%s '%s': %s", shown, word, v->what);
	}
	return CLI_EXIT_OK;
}

int cli_value_set(struct cli_run *run, const struct cli_value *v,
		  const char *shown, char *word)
{
	const ProtobufCFieldDescriptor *f = NULL;
	uint64_t n;
	int rc;

	if (v->kind == CLI_VALUE_CUSTOM) {
		return v->parse(run, shown, word);
	}
	if (v->kind == CLI_VALUE_HOSTPORT && parse_hostport(word) != 0) {
		return cli_usage(run->cli, "%s '%s': expected HOST:PORT", shown,
				 word);
	}
	if (v->kind == CLI_VALUE_SIZE || v->kind == CLI_VALUE_UINT) {
		rc = value_uint(run, v, shown, word, &n);
		if (rc != CLI_EXIT_OK) {
			return rc;
		}
	}
	if (run->req != NULL) {
		f = value_field(run->req->descriptor, v->field);
	}
	if (f == NULL) {
		return CLI_EXIT_OK; /* recorded in the run only */
	}
	switch (v->kind) {
	case CLI_VALUE_FLAG:
	case CLI_VALUE_FLAG_CLEAR:
		*(protobuf_c_boolean *)value_slot(run->req, f) =
		    v->kind == CLI_VALUE_FLAG;
		break;
	case CLI_VALUE_STRING:
	case CLI_VALUE_HOSTPORT:
		*(char **)value_slot(run->req, f) = word;
		break;
	case CLI_VALUE_SIZE:
	case CLI_VALUE_UINT:
		if (f->type == PROTOBUF_C_TYPE_UINT32) {
			*(uint32_t *)value_slot(run->req, f) = (uint32_t)n;
		} else {
			*(uint64_t *)value_slot(run->req, f) = n;
		}
		break;
	case CLI_VALUE_CUSTOM:
		break;
	}
	return CLI_EXIT_OK;
}

bool cli_value_present(const ProtobufCMessage *msg, const struct cli_value *v)
{
	const ProtobufCFieldDescriptor *f;
	const char *slot;

	if (msg == NULL) {
		return false;
	}
	f = value_field(msg->descriptor, v->field);
	if (f == NULL) {
		return false;
	}
	slot = (const char *)msg + f->offset;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		return *(const size_t *)((const char *)msg +
					 f->quantifier_offset) != 0;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)slot;

		return s != NULL && s[0] != '\0';
	}
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)slot != 0;
	case PROTOBUF_C_TYPE_UINT32:
		return *(const uint32_t *)slot != 0;
	case PROTOBUF_C_TYPE_UINT64:
		return *(const uint64_t *)slot != 0;
	default:
		return true; /* types no value kind stores into */
	}
}
