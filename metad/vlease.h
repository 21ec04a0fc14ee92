/* vlease.h: single-writer volume leases (RBD exclusive-lock style,
 * DESIGN.md "Proxy") and region failover records, as the state machine
 * keeps them (fsm_vlease.c, fsm_promote.c) and as the leader serves them
 * (service_vlease.c) and decides promotions (failover.c).
 *
 * A volume has at most one writer: Volume.writer (the holder, "" = none)
 * and Volume.writer_epoch (the fencing token; grows with every grant and
 * never goes back).  The lease's timing (expiry, the longest duration
 * granted to the current holder) lives in the "vleases" DB; expiry is
 * judged by the time_unix_ms of the command being applied, so every
 * member decides the same.
 *
 * Failure: queries return OMBRA_ENOTFOUND with a message for an unknown
 * volume and OMBRA_EIO for LMDB errors; the validator OMBRA_EINVAL with a
 * message that says what is allowed. */
#ifndef OMBRA_METAD_VLEASE_H
#define OMBRA_METAD_VLEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.pb-c.h"
#include "meta.pb-c.h"

struct fsm;

#define VLEASE_DEFAULT_MS 10000u /* VolumeLeaseRequest.duration_ms 0 */
#define VLEASE_MIN_MS 100u
#define VLEASE_MAX_MS 60000u
#define VLEASE_HOLDER_MAX 128u

/* Check a CmdVolumeLease and fill its default duration (0 -> 10 s):
 * volume name valid, holder 1..128 printable non-space ASCII bytes,
 * duration 100 ms .. 60 s, a release names the held epoch (!= 0).
 * Modifies c->duration_ms only.  0 or OMBRA_EINVAL. */
int vlease_validate(Ombra__V1__CmdVolumeLease *c, char *errmsg);

/* A volume's writer lease as applied on this member. */
struct vlease_info {
	uint64_t volume_id;
	char writer[VLEASE_HOLDER_MAX + 1]; /* "" = none */
	uint64_t epoch;			    /* Volume.writer_epoch */
	uint64_t expires_unix_ms;	    /* 0 when none */
	uint64_t duration_ms; /* longest granted to the current writer */
};

/* Read volume name's lease into *out.  0, OMBRA_ENOTFOUND ("volume 'x'
 * does not exist"), OMBRA_EIO. */
int fsm_vlease_get(struct fsm *f, const char *volume, struct vlease_info *out,
		   char *errmsg);

/* The new-leader wait (DESIGN.md "Leases"): ms a leader elected at
 * leader_since (loop ms) must still wait at now before it may grant the
 * lease described by info to holder: while info names another writer, one
 * full duration (the longest granted to that writer) from the election;
 * 0 when holder is the writer or nobody holds it. */
uint64_t vlease_wait_ms(const struct vlease_info *info, const char *holder,
			uint64_t leader_since, uint64_t now);

/* Failover events of volume (NULL or "" = every volume), oldest first;
 * *out is a malloc'd array of heap messages: free with fsm_free_list().
 * 0, OMBRA_ENOTFOUND (unknown volume), OMBRA_ENOMEM, OMBRA_EIO. */
int fsm_list_failovers(struct fsm *f, const char *volume,
		       Ombra__V1__FailoverEvent ***out, size_t *n,
		       char *errmsg);

/* Versions a promotion loses (FailoverEvent.lost_versions), in sequence
 * units: known - shadow when both carry the same epoch (version = epoch
 * << 40 | sequence, the sequence restarting at 1 in every epoch); when
 * known's epoch is newer, the shadow lacks at least every write of that
 * epoch, so known's sequence (a lower bound); 0 when known <= shadow. */
uint64_t vlease_lost_versions(uint64_t known, uint64_t shadow);

/* One shadow copy of a segment as its node reported it (ListCopies). */
struct vlease_copy {
	uint64_t node_id;
	uint64_t watermark;
	uint64_t lag_versions; /* primary's version known there - watermark */
	uint64_t confirmed_unix_ms;
	uint64_t present_blocks;
	uint64_t total_blocks;
	bool filling;
};

/* Pick the shadow to promote among c[0..n): only whole copies (not
 * filling, every block present) qualify; the highest watermark wins, a tie
 * goes to the lowest node id (deterministic).  *known = the highest
 * version any reported copy knew of the segment (watermark + lag_versions,
 * both in the same epoch, so the sum is a version).  Returns the index of
 * the chosen copy, or n when none qualifies. */
size_t vlease_choose_shadow(const struct vlease_copy *c, size_t n,
			    uint64_t *known);

/* Keep at most this many FailoverEvents (the oldest are pruned). */
#define FAILOVER_EVENTS_MAX 10000u

#endif
