/* cmd.h: Raft log commands of the metadata service (MetaCommand in
 * proto/meta.proto): encoding into raft buffers, decoding, and the static
 * validation shared by the RPC handlers (reject before proposing) and the
 * state machine (never trust the log blindly).
 *
 * Failure: cmd_decode() returns NULL on malformed bytes; validators return
 * OMBRA_EINVAL with a message that says what was wrong and what is allowed. */
#ifndef OMBRA_METAD_CMD_H
#define OMBRA_METAD_CMD_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.pb-c.h"

#define CMD_BLOCK_SIZE 4096u
#define CMD_SEGMENT_MIN (64u * 1024u)
#define CMD_SEGMENT_MAX (4u * 1024u * 1024u)
#define CMD_SEGMENT_DEFAULT (1024u * 1024u)
#define CMD_REPLICAS_DEFAULT 2u
#define CMD_REPLICAS_MAX 5u
#define CMD_NAME_MAX 64u

/* Serialize cmd into buf->base (raft_malloc'd) / buf->len, padded to a
 * multiple of 8 bytes as raft_uv requires (see cmd.c).  On success the
 * caller owns buf->base until it hands it to raft_apply().  Returns 0,
 * OMBRA_EINVAL (no command set) or OMBRA_ENOMEM. */
int cmd_encode(const Ombra__V1__MetaCommand *cmd, struct raft_buffer *buf);

/* Parse len bytes.  Returns a new message (free with
 * ombra__v1__meta_command__free_unpacked(m, NULL)) or NULL if malformed or
 * if it carries no command. */
Ombra__V1__MetaCommand *cmd_decode(const void *data, size_t len);

/* Names of regions, nodes and volumes: 1..64 of [A-Za-z0-9._-], not
 * starting with '.' or '-'.  what: "volume", "region", ... for the message. */
int cmd_validate_name(const char *what, const char *name, char *errmsg);

/* Fill defaults (segment size 1 MiB, replicas 2) and check: size > 0 and a
 * multiple of 4096; segment size a power of two in 64 KiB..4 MiB; replicas
 * 1..5; names valid.  Modifies c in place (defaults only). */
int cmd_validate_create_volume(Ombra__V1__CmdCreateVolume *c, char *errmsg);

/* New size > 0 and a multiple of 4096 (growth is checked by the FSM). */
int cmd_validate_resize_volume(const Ombra__V1__CmdResizeVolume *c,
			       char *errmsg);

/* Name, region, address "host:port" non-empty, tiers with capacity > 0. */
int cmd_validate_register_node(const Ombra__V1__CmdRegisterNode *c,
			       char *errmsg);

/* Ids non-zero, node_id != primary_node_id, lease_epoch >= 1. */
int cmd_validate_replica_change(const Ombra__V1__CmdReplicaChange *c,
				char *errmsg);

/* Short name of the command kind for logs and metrics ("create_volume"). */
const char *cmd_kind(const Ombra__V1__MetaCommand *cmd);

#endif
