/* vlease.h: single-writer volumes in the proxy: the volume writer lease
 * (MetaService.VolumeLease, docs/metad.md "Volume writer lease") taken on
 * a volume's first write through this proxy (gRPC Write/Trim, NBD writes)
 * and on an NBD attach, renewed every duration/3, released after the
 * volume has been idle (no write, no NBD attachment) for --writer-idle-ms,
 * on the last NBD detach, and at shutdown (docs/proxy.md "Single-writer
 * volumes").
 *
 * While the lease is valid (renewed within one duration, counted from
 * when the request was sent) writes carry its epoch
 * (StoreWriteRequest.writer_epoch) and STRONG reads may use foreign copies
 * at the segment's latest version (segver.h, route.h).  When a renewal is
 * refused (another holder, a newer epoch) or the lease runs out (metad
 * unreachable) the lease is LOST: writes in progress fail with the reason,
 * STRONG reads go home, and the next write tries to acquire it again
 * (refused FAILED_PRECONDITION, with metad's message naming the holder,
 * while another proxy holds it).
 *
 * States (struct vlease.state):
 *   NONE -> ACQUIRING (write/attach) -> HELD (granted) | NONE (refused,
 *   the waiters get the error);  HELD -> HELD (renewed) | LOST (refused or
 *   expired) | NONE (released);  LOST -> ACQUIRING (next write).
 *
 * With --single-writer=off nothing is acquired: writes send epoch 0 and
 * STRONG reads use home copies only.
 *
 * Threads: loop only; metad calls run in the thread pool (mdc_run).
 * Failure: errors reach callers as struct proxy_status; out of memory for a
 * metad job aborts (a lost callback would hang a writer). */
#ifndef OMBRA_PROXY_VLEASE_H
#define OMBRA_PROXY_VLEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "proxy_io.h"
#include "segver.h"

struct proxy;
struct proxy_volume;
struct vlease_mgr;

enum vlease_state { VLEASE_NONE, VLEASE_ACQUIRING, VLEASE_HELD, VLEASE_LOST };

/* epoch: the held lease's epoch (0 when single-writer is off). */
typedef void (*vlease_cb)(void *arg, const struct proxy_status *st,
			  uint64_t epoch);

struct vlease_waiter;

/* Per volume, embedded in struct proxy_volume (volcache.c zeroes it and
 * calls vlease_volume_free() when the volume is freed). */
struct vlease {
	enum vlease_state state;
	uint64_t epoch;		 /* HELD/LOST: the lease's epoch */
	uint64_t valid_until_ms; /* HELD: proxy_now_ms() clock */
	uint64_t renew_at_ms;
	uint64_t duration_ms;
	uint64_t last_use_ms; /* last write (or attach) */
	unsigned pins;	      /* NBD attachments */
	bool renewing;
	bool active; /* in the manager's list, holding a volume reference */
	grpc_status_code lost_code;
	char lost_msg[OMBRA_ERRMSG_LEN];
	struct vlease_waiter *waiters;
	struct proxy_volume *next_active;
	struct segver sv; /* latest segment versions under epoch */
};

/* Options: enabled (--single-writer), duration_ms asked of metad (100 ..
 * 60000), idle_ms (--writer-idle-ms); holder: this proxy's identity
 * ("region/host:port", copied).  Starts a 100 ms timer on p->loop. */
int vlease_mgr_create(struct proxy *p, bool enabled, uint64_t duration_ms,
		      uint64_t idle_ms, const char *holder,
		      struct vlease_mgr **out, char *errmsg);
/* Shutdown: release every held lease (metad calls in the thread pool,
 * which main waits for), stop the timer; acquires still in flight are
 * released when they complete and their waiters get UNAVAILABLE. */
void vlease_mgr_stop(struct vlease_mgr *m);
/* After every metad job finished: close the timer, drop references. */
void vlease_mgr_destroy(struct vlease_mgr *m);
bool vlease_enabled(const struct vlease_mgr *m);

/* Make sure this proxy holds vol's writer lease: cb(arg, OK, epoch) once
 * it is held (at once, through the loop, if it already is), or the
 * failure (FAILED_PRECONDITION with metad's message when another proxy
 * holds it; UNAVAILABLE when metad cannot be reached).  With single-writer
 * off: OK with epoch 0.  cb never runs inside this call. */
void vlease_acquire(struct proxy_volume *vol, vlease_cb cb, void *arg);

/* The fast path of vlease_acquire() for a write: true with *epoch set
 * (0 with single-writer off) when the write may be sent at once, under
 * the lease this proxy holds and that is valid now (its use is noted, as
 * vlease_acquire() does); false when it must wait for vlease_acquire()
 * (lease not held or expired, manager stopped).  Never calls back. */
bool vlease_use_now(struct proxy_volume *vol, uint64_t *epoch);

/* The epoch of vol's lease if it is held and valid now, else 0. */
uint64_t vlease_valid_epoch(struct proxy_volume *vol);

/* Why vol's lease is not valid (for failing a write), into st. */
void vlease_why(struct proxy_volume *vol, struct proxy_status *st);

/* A node refused a write for a stale writer epoch: the lease is lost. */
void vlease_fenced(struct proxy_volume *vol, const char *msg);

/* An NBD client attached (+1) or detached (-1) vol: while attached the
 * lease is not released for idleness; the last detach releases it. */
void vlease_pin(struct proxy_volume *vol, int delta);

/* vol is being freed (no reference left): free what struct vlease holds. */
void vlease_volume_free(struct vlease *vl);

/* vol's lease record (volcache.c; owned by vol). */
struct vlease *proxy_volume_vlease(struct proxy_volume *vol);

/* Segment versions of vol under its lease (segver.h). */
struct segver *proxy_volume_segver(struct proxy_volume *vol);

#endif
