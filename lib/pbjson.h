/* pbjson.h: any protobuf-c message to JSON by reflection over its
 * descriptor (json-c), so the CLI's --json needs no per-message code.
 *
 * Mapping follows proto3's canonical JSON mapping
 * (https://protobuf.dev/programming-guides/proto3/#json) where it matters to
 * scripts: field names in lowerCamelCase are NOT used; we keep the .proto
 * snake_case names (like protoc's preserving_proto_field_name), 64-bit
 * integers are JSON numbers (sizes stay readable in jq), enums are their
 * value names, bytes are base64, and every field is emitted, defaults
 * included.  Returns NULL only on out-of-memory. */
#ifndef OMBRA_PBJSON_H
#define OMBRA_PBJSON_H

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>

/* New json object (caller puts it with json_object_put()). */
struct json_object *pbjson_from_message(const ProtobufCMessage *msg);

/* Pretty-printed JSON text, malloc'd, caller frees. */
char *pbjson_to_string(const ProtobufCMessage *msg);

#endif
