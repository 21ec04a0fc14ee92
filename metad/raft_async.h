/* raft_async.h: raft_io version 2's async_work for an io that lacks it.
 *
 * Debian's raft_uv (libraft 0.15) is a version-1 io without async_work, so
 * libraft refuses a version-3 fsm, whose snapshot_async runs off the loop.
 * raft_async_install() sets io->version = 2 and an async_work that runs the
 * request's work function in libuv's thread pool (uv_queue_work) and calls
 * back on the loop thread, never from inside the call that started it.
 *
 * Failure: uv_queue_work errors are returned as RAFT_IOERR from async_work;
 * a failed allocation as RAFT_NOMEM.  The work function's own status is
 * passed to the callback unchanged. */
#ifndef OMBRA_METAD_RAFT_ASYNC_H
#define OMBRA_METAD_RAFT_ASYNC_H

#include <raft.h>
#include <uv.h>

/* loop: the io's loop (not owned, must outlive io).  At most one loop is
 * supported per process (the daemon has one).  Call before raft_init(). */
void raft_async_install(struct raft_io *io, uv_loop_t *loop);

#endif
