/* pbjson.c: protobuf-c message -> JSON by walking the message descriptor,
 * so the CLI's --json output needs no per-message code.
 *
 * Every field of the descriptor is emitted under its .proto name, in field
 * number order: scalars as JSON numbers or booleans (64-bit integers stay
 * numbers), enums by value name (an unknown value as its number), strings
 * as strings, bytes as base64 (RFC 4648, with padding), nested messages as
 * objects (an unset one as null), repeated fields as arrays.  Of a oneof,
 * only the member that is set is emitted.  Non-finite floats become the
 * strings "NaN", "Infinity", "-Infinity" as in proto3's JSON mapping.
 *
 * Failure: every function returns NULL (or OMBRA_ENOMEM internally) only
 * when json-c or malloc runs out of memory, or when a bytes field is too
 * large for json-c (over INT_MAX characters once encoded); a partly built
 * object is released.  Messages are trees (protobuf-c cannot decode a
 * cycle), so the recursion depth is that of the schema. */
#include "pbjson.h"

#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Bytes per EVP_EncodeBlock() call: a multiple of 3, so chunks concatenate
 * without padding in between, and small enough for its int length. */
#define PBJSON_B64_CHUNK (3u * 1024u * 1024u)

static int pbjson_message(const ProtobufCMessage *msg,
			  struct json_object **out);

/* Size in bytes of one element of a repeated field's C array. */
static size_t pbjson_elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return sizeof(uint32_t);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

static struct json_object *pbjson_nonfinite(double v)
{
	if (isnan(v)) {
		return json_object_new_string("NaN");
	}
	return json_object_new_string(v > 0 ? "Infinity" : "-Infinity");
}

/* A float printed with the fewest digits that read back as the same float
 * (so 0.1f is "0.1", not 0.10000000149011612). */
static struct json_object *pbjson_float(float v)
{
	char text[32];
	int prec;

	if (!isfinite(v)) {
		return pbjson_nonfinite(v);
	}
	for (prec = 6; prec <= 9; prec++) {
		snprintf(text, sizeof(text), "%.*g", prec, (double)v);
		if (strtof(text, NULL) == v) {
			break;
		}
	}
	return json_object_new_double_s((double)v, text);
}

static struct json_object *pbjson_double(double v)
{
	if (!isfinite(v)) {
		return pbjson_nonfinite(v);
	}
	return json_object_new_double(v);
}

static struct json_object *pbjson_enum(const ProtobufCEnumDescriptor *desc,
				       int v)
{
	const ProtobufCEnumValue *ev = NULL;

	if (desc != NULL) {
		ev = protobuf_c_enum_descriptor_get_value(desc, v);
	}
	if (ev != NULL) {
		return json_object_new_string(ev->name);
	}
	return json_object_new_int(v);
}

static struct json_object *pbjson_bytes(const ProtobufCBinaryData *b)
{
	struct json_object *obj;
	size_t enc_len;
	size_t done = 0;
	size_t out = 0;
	char *text;

	if (b->len == 0) {
		return json_object_new_string("");
	}
	if (b->len > (size_t)INT_MAX / 4 * 3) {
		return NULL;
	}
	enc_len = (b->len + 2) / 3 * 4;
	text = malloc(enc_len + 1);
	if (text == NULL) {
		return NULL;
	}
	while (done < b->len) {
		size_t n = b->len - done;

		if (n > PBJSON_B64_CHUNK) {
			n = PBJSON_B64_CHUNK;
		}
		out += (size_t)EVP_EncodeBlock((unsigned char *)text + out,
					       b->data + done, (int)n);
		done += n;
	}
	obj = json_object_new_string_len(text, (int)out);
	free(text);
	return obj;
}

/* JSON for the one value of field f stored at p.  *out may be NULL on
 * success (JSON null, for an unset message). */
static int pbjson_value(const ProtobufCFieldDescriptor *f, const void *p,
			struct json_object **out)
{
	struct json_object *obj = NULL;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		obj = json_object_new_int(*(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		obj = json_object_new_int64(*(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		obj = json_object_new_int64(*(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		obj = json_object_new_uint64(*(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		obj = pbjson_float(*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		obj = pbjson_double(*(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		obj = json_object_new_boolean(*(const protobuf_c_boolean *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		obj = pbjson_enum(f->descriptor, *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)p;

		obj = json_object_new_string(s != NULL ? s : "");
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		obj = pbjson_bytes((const ProtobufCBinaryData *)p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub =
		    *(const ProtobufCMessage *const *)p;

		if (sub == NULL) {
			*out = NULL;
			return 0;
		}
		return pbjson_message(sub, out);
	}
	default:
		/* A type this protobuf-c version added: say so in-band
		 * rather than misread the memory. */
		obj = json_object_new_string("<unsupported field type>");
		break;
	}
	if (obj == NULL) {
		return OMBRA_ENOMEM;
	}
	*out = obj;
	return 0;
}

static int pbjson_repeated(const ProtobufCFieldDescriptor *f, const char *base,
			   struct json_object **out)
{
	size_t n = *(const size_t *)(base + f->quantifier_offset);
	const char *arr = *(const char *const *)(base + f->offset);
	size_t elem = pbjson_elem_size(f->type);
	struct json_object *jarr;
	size_t i;

	jarr = json_object_new_array();
	if (jarr == NULL) {
		return OMBRA_ENOMEM;
	}
	for (i = 0; i < n && arr != NULL; i++) {
		struct json_object *v;
		int rv = pbjson_value(f, arr + i * elem, &v);

		if (rv != 0) {
			json_object_put(jarr);
			return rv;
		}
		if (json_object_array_add(jarr, v) != 0) {
			json_object_put(v);
			json_object_put(jarr);
			return OMBRA_ENOMEM;
		}
	}
	*out = jarr;
	return 0;
}

/* Oneof members are emitted only when set: the shared case field (at
 * quantifier_offset) holds the number of the member that is. */
static bool pbjson_field_present(const ProtobufCFieldDescriptor *f,
				 const char *base)
{
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0) {
		return true;
	}
	return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
}

static int pbjson_message(const ProtobufCMessage *msg, struct json_object **out)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	const char *base = (const char *)msg;
	struct json_object *obj;
	unsigned i;

	if (desc == NULL ||
	    desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC) {
		obj = json_object_new_string("<not a protobuf-c message>");
		if (obj == NULL) {
			return OMBRA_ENOMEM;
		}
		*out = obj;
		return 0;
	}
	obj = json_object_new_object();
	if (obj == NULL) {
		return OMBRA_ENOMEM;
	}
	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		struct json_object *v;
		int rv;

		if (!pbjson_field_present(f, base)) {
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			rv = pbjson_repeated(f, base, &v);
		} else {
			rv = pbjson_value(f, base + f->offset, &v);
		}
		if (rv != 0) {
			json_object_put(obj);
			return rv;
		}
		if (json_object_object_add(obj, f->name, v) != 0) {
			json_object_put(v);
			json_object_put(obj);
			return OMBRA_ENOMEM;
		}
	}
	*out = obj;
	return 0;
}

/* A NULL msg gives NULL, which json-c also uses for JSON null. */
struct json_object *pbjson_from_message(const ProtobufCMessage *msg)
{
	struct json_object *obj = NULL;

	if (msg == NULL) {
		return NULL;
	}
	if (pbjson_message(msg, &obj) != 0) {
		return NULL;
	}
	return obj;
}

char *pbjson_to_string(const ProtobufCMessage *msg)
{
	struct json_object *obj;
	const char *text;
	char *copy;

	if (msg == NULL) {
		return strdup("null");
	}
	obj = pbjson_from_message(msg);
	if (obj == NULL) {
		return NULL;
	}
	text = json_object_to_json_string_ext(
	    obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		     JSON_C_TO_STRING_NOSLASHESCAPE);
	copy = text != NULL ? strdup(text) : NULL;
	json_object_put(obj);
	return copy;
}
