/* cmd.c: encoding, decoding and static validation of the metadata service's
 * Raft log commands (MetaCommand, proto/meta.proto).
 *
 * The validators are shared by the RPC handlers (refuse before proposing)
 * and by the state machine (a log entry is re-checked when applied, because
 * an entry written by an older or buggy leader must not corrupt the state).
 *
 * Failure: cmd_encode() returns OMBRA_ENOMEM (or OMBRA_EINVAL for a command
 * that carries no operation); cmd_decode() returns NULL for malformed bytes;
 * validators return OMBRA_EINVAL and write a message saying what was wrong
 * and what is allowed.  Nothing here aborts on bad input. */
#include "cmd.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

/* errmsg may be NULL when the caller only wants the code. */
static int cmd_fail(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int cmd_fail(char *errmsg, const char *fmt, ...)
{
	va_list ap;

	if (errmsg != NULL) {
		va_start(ap, fmt);
		vsnprintf(errmsg, OMBRA_ERRMSG_LEN, fmt, ap);
		va_end(ap);
	}
	return OMBRA_EINVAL;
}

/* raft_uv (libraft 0.15) requires every entry's length to be a multiple
 * of 8 bytes: its debug build asserts it, Debian's release build writes
 * unpadded entries that its own loader then rejects as corrupt (the log is
 * cut at restart) and over-reads when replicating.  Protobuf has no
 * padding, so the encoding ends with field 7 (reserved in meta.proto),
 * length-delimited, of zero bytes: tag 0x3a, a one-byte length, 0..7
 * zeros, 2..9 bytes in all.  Decoders skip the unknown field. */
#define CMD_PAD_TAG 0x3a /* field 7, wire type 2 */

static size_t cmd_pad_len(size_t len)
{
	size_t pad = (8 - len % 8) % 8;
	return pad < 2 ? pad + 8 : pad;
}

int cmd_encode(const Ombra__V1__MetaCommand *cmd, struct raft_buffer *buf)
{
	size_t len, pad;
	uint8_t *base;

	if (cmd == NULL || buf == NULL ||
	    cmd->cmd_case == OMBRA__V1__META_COMMAND__CMD__NOT_SET)
		return OMBRA_EINVAL;
	len = ombra__v1__meta_command__get_packed_size(cmd);
	pad = cmd_pad_len(len);
	/* A set oneof member always encodes at least its tag. */
	base = raft_malloc(len + pad);
	if (base == NULL)
		return OMBRA_ENOMEM;
	ombra__v1__meta_command__pack(cmd, base);
	base[len] = CMD_PAD_TAG;
	base[len + 1] = (uint8_t)(pad - 2);
	memset(base + len + 2, 0, pad - 2);
	buf->base = base;
	buf->len = len + pad;
	return 0;
}

/* True when the oneof member named by cmd_case is present. */
static bool cmd_has_body(const Ombra__V1__MetaCommand *m)
{
	switch (m->cmd_case) {
	case OMBRA__V1__META_COMMAND__CMD_ADD_REGION:
		return m->add_region != NULL;
	case OMBRA__V1__META_COMMAND__CMD_REGISTER_NODE:
		return m->register_node != NULL;
	case OMBRA__V1__META_COMMAND__CMD_SET_NODE_STATE:
		return m->set_node_state != NULL;
	case OMBRA__V1__META_COMMAND__CMD_CREATE_VOLUME:
		return m->create_volume != NULL;
	case OMBRA__V1__META_COMMAND__CMD_RESIZE_VOLUME:
		return m->resize_volume != NULL;
	case OMBRA__V1__META_COMMAND__CMD_DELETE_VOLUME:
		return m->delete_volume != NULL;
	case OMBRA__V1__META_COMMAND__CMD_ADD_MEMBER:
		return m->add_member != NULL;
	case OMBRA__V1__META_COMMAND__CMD_REMOVE_MEMBER:
		return m->remove_member != NULL;
	case OMBRA__V1__META_COMMAND__CMD_SET_PLACEMENT:
		return m->set_placement != NULL;
	case OMBRA__V1__META_COMMAND__CMD_REPLICA_CHANGE:
		return m->replica_change != NULL;
	case OMBRA__V1__META_COMMAND__CMD_VOLUME_LEASE:
		return m->volume_lease != NULL;
	case OMBRA__V1__META_COMMAND__CMD_PROMOTE_SHADOW:
		return m->promote_shadow != NULL;
	case OMBRA__V1__META_COMMAND__CMD_SET_SHADOW_POLICY:
		return m->set_shadow_policy != NULL;
	case OMBRA__V1__META_COMMAND__CMD_SHADOW_CHANGES:
		return m->shadow_changes != NULL;
	default:
		return false;
	}
}

Ombra__V1__MetaCommand *cmd_decode(const void *data, size_t len)
{
	Ombra__V1__MetaCommand *m;

	if (data == NULL || len == 0)
		return NULL;
	m = ombra__v1__meta_command__unpack(NULL, len, data);
	if (m == NULL)
		return NULL;
	if (!cmd_has_body(m)) {
		ombra__v1__meta_command__free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

static bool cmd_name_char_ok(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int cmd_validate_name(const char *what, const char *name, char *errmsg)
{
	size_t len;
	size_t i;

	if (what == NULL)
		what = "object";
	if (name == NULL || name[0] == '\0')
		return cmd_fail(errmsg,
				"%s name is empty; use 1..%u characters of "
				"[A-Za-z0-9._-]",
				what, CMD_NAME_MAX);
	len = strnlen(name, CMD_NAME_MAX + 1);
	if (len > CMD_NAME_MAX)
		return cmd_fail(errmsg,
				"%s name '%.16s...' is longer than %u "
				"characters",
				what, name, CMD_NAME_MAX);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (cmd_name_char_ok((char)c))
			continue;
		if (isprint(c))
			return cmd_fail(errmsg,
					"%s name '%s' contains '%c' at "
					"position %zu; allowed: A-Z a-z 0-9 "
					". _ -",
					what, name, c, i);
		return cmd_fail(errmsg,
				"%s name contains byte 0x%02x at position "
				"%zu; allowed: A-Z a-z 0-9 . _ -",
				what, c, i);
	}
	if (name[0] == '.' || name[0] == '-')
		return cmd_fail(errmsg,
				"%s name '%s' starts with '%c'; the first "
				"character must be a letter, digit or '_'",
				what, name, name[0]);
	return 0;
}

/* size > 0 and a multiple of the block size.  what: "volume size". */
static int cmd_check_size(const char *what, uint64_t size, char *errmsg)
{
	uint64_t up;

	if (size == 0)
		return cmd_fail(errmsg,
				"%s is 0 bytes; give a size > 0 that is a "
				"multiple of %u bytes",
				what, CMD_BLOCK_SIZE);
	if (size % CMD_BLOCK_SIZE != 0) {
		up = size - size % CMD_BLOCK_SIZE;
		if (up <= UINT64_MAX - CMD_BLOCK_SIZE)
			up += CMD_BLOCK_SIZE;
		return cmd_fail(errmsg,
				"%s %" PRIu64 " bytes is not a multiple of the "
				"%u-byte block size; use e.g. %" PRIu64,
				what, size, CMD_BLOCK_SIZE, up);
	}
	return 0;
}

int cmd_validate_create_volume(Ombra__V1__CmdCreateVolume *c, char *errmsg)
{
	uint64_t seg;
	int rv;

	if (c == NULL)
		return cmd_fail(errmsg, "create volume: no command");
	rv = cmd_validate_name("volume", c->name, errmsg);
	if (rv != 0)
		return rv;
	rv = cmd_validate_name("home region", c->home_region, errmsg);
	if (rv != 0)
		return rv;
	rv = cmd_check_size("volume size", c->size_bytes, errmsg);
	if (rv != 0)
		return rv;
	if (c->segment_size_bytes == 0)
		c->segment_size_bytes = CMD_SEGMENT_DEFAULT;
	seg = c->segment_size_bytes;
	if ((seg & (seg - 1)) != 0 || seg < CMD_SEGMENT_MIN ||
	    seg > CMD_SEGMENT_MAX)
		return cmd_fail(errmsg,
				"segment size %" PRIu64 " bytes is not a power "
				"of two between %u (64KiB) and %u (4MiB); use "
				"0 for the default %u (1MiB)",
				seg, CMD_SEGMENT_MIN, CMD_SEGMENT_MAX,
				CMD_SEGMENT_DEFAULT);
	if (c->replicas == 0)
		c->replicas = CMD_REPLICAS_DEFAULT;
	if (c->replicas > CMD_REPLICAS_MAX)
		return cmd_fail(errmsg,
				"replicas %u out of range; use 1..%u (0 for "
				"the default %u)",
				c->replicas, CMD_REPLICAS_MAX,
				CMD_REPLICAS_DEFAULT);
	return 0;
}

int cmd_validate_resize_volume(const Ombra__V1__CmdResizeVolume *c,
			       char *errmsg)
{
	int rv;

	if (c == NULL)
		return cmd_fail(errmsg, "resize volume: no command");
	rv = cmd_validate_name("volume", c->name, errmsg);
	if (rv != 0)
		return rv;
	return cmd_check_size("new volume size", c->new_size_bytes, errmsg);
}

/* "host:port" with a non-empty host and a port 1..65535 after the last
 * colon ("[::1]:7000" works since only the last colon is used). */
static int cmd_check_address(const char *addr, char *errmsg)
{
	const char *colon;
	const char *p;
	unsigned long port = 0;

	if (addr == NULL || addr[0] == '\0')
		return cmd_fail(errmsg, "node address is empty; give "
					"host:port of its StoreService");
	colon = strrchr(addr, ':');
	if (colon == NULL || colon == addr || colon[1] == '\0')
		return cmd_fail(errmsg,
				"node address '%.200s' is not host:port", addr);
	for (p = colon + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return cmd_fail(errmsg,
					"node address '%.200s' has a bad port; "
					"use 1..65535",
					addr);
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port == 0 || port > 65535)
		return cmd_fail(errmsg,
				"node address '%.200s' has a bad port; use "
				"1..65535",
				addr);
	return 0;
}

int cmd_validate_register_node(const Ombra__V1__CmdRegisterNode *c,
			       char *errmsg)
{
	uint64_t total = 0;
	size_t i;
	size_t j;
	int rv;

	if (c == NULL)
		return cmd_fail(errmsg, "register node: no command");
	rv = cmd_validate_name("node", c->name, errmsg);
	if (rv != 0)
		return rv;
	rv = cmd_validate_name("region", c->region, errmsg);
	if (rv != 0)
		return rv;
	rv = cmd_check_address(c->address, errmsg);
	if (rv != 0)
		return rv;
	if (c->n_tiers == 0)
		return cmd_fail(errmsg,
				"node '%s' has no tiers; give at least one "
				"tier with capacity > 0",
				c->name);
	for (i = 0; i < c->n_tiers; i++) {
		const Ombra__V1__Tier *t = c->tiers[i];

		if (t == NULL)
			return cmd_fail(errmsg, "node '%s': tier %zu missing",
					c->name, i);
		rv = cmd_validate_name("tier", t->name, errmsg);
		if (rv != 0)
			return rv;
		if (t->capacity_bytes == 0)
			return cmd_fail(errmsg,
					"node '%s': tier '%s' has capacity 0; "
					"give its capacity in bytes",
					c->name, t->name);
		if (t->capacity_bytes > UINT64_MAX - total)
			return cmd_fail(errmsg,
					"node '%s': total tier capacity "
					"overflows 64 bits",
					c->name);
		total += t->capacity_bytes;
		for (j = 0; j < i; j++) {
			if (c->tiers[j] != NULL &&
			    strcmp(c->tiers[j]->name, t->name) == 0)
				return cmd_fail(errmsg,
						"node '%s': tier '%s' is "
						"listed twice",
						c->name, t->name);
		}
	}
	return 0;
}

int cmd_validate_replica_change(const Ombra__V1__CmdReplicaChange *c,
				char *errmsg)
{
	if (c == NULL)
		return cmd_fail(errmsg, "replica change: no command");
	if (c->volume_id == 0)
		return cmd_fail(errmsg, "volume_id is required (the volume's "
					"id from its shard map)");
	if (c->node_id == 0)
		return cmd_fail(errmsg, "node_id (the replica) is required");
	if (c->primary_node_id == 0)
		return cmd_fail(errmsg, "primary_node_id (the reporting "
					"primary) is required");
	if (c->node_id == c->primary_node_id)
		return cmd_fail(errmsg,
				"node %" PRIu64 " cannot report itself as its "
				"own replica",
				c->node_id);
	if (c->lease_epoch == 0)
		return cmd_fail(errmsg, "lease_epoch is required (epochs start "
					"at 1)");
	return 0;
}

const char *cmd_kind(const Ombra__V1__MetaCommand *cmd)
{
	if (cmd == NULL)
		return "none";
	switch (cmd->cmd_case) {
	case OMBRA__V1__META_COMMAND__CMD_ADD_REGION:
		return "add_region";
	case OMBRA__V1__META_COMMAND__CMD_REGISTER_NODE:
		return "register_node";
	case OMBRA__V1__META_COMMAND__CMD_SET_NODE_STATE:
		return "set_node_state";
	case OMBRA__V1__META_COMMAND__CMD_CREATE_VOLUME:
		return "create_volume";
	case OMBRA__V1__META_COMMAND__CMD_RESIZE_VOLUME:
		return "resize_volume";
	case OMBRA__V1__META_COMMAND__CMD_DELETE_VOLUME:
		return "delete_volume";
	case OMBRA__V1__META_COMMAND__CMD_ADD_MEMBER:
		return "add_member";
	case OMBRA__V1__META_COMMAND__CMD_REMOVE_MEMBER:
		return "remove_member";
	case OMBRA__V1__META_COMMAND__CMD_SET_PLACEMENT:
		return "set_placement";
	case OMBRA__V1__META_COMMAND__CMD_REPLICA_CHANGE:
		return "replica_change";
	case OMBRA__V1__META_COMMAND__CMD_VOLUME_LEASE:
		return "volume_lease";
	case OMBRA__V1__META_COMMAND__CMD_PROMOTE_SHADOW:
		return "promote_shadow";
	case OMBRA__V1__META_COMMAND__CMD_SET_SHADOW_POLICY:
		return "set_shadow_policy";
	case OMBRA__V1__META_COMMAND__CMD_SHADOW_CHANGES:
		return "shadow_changes";
	default:
		return "none";
	}
}
