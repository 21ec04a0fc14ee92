/* raft_async.c: async_work for raft_uv on libuv's thread pool; see
 * raft_async.h.  Each request gets a heap-allocated uv_work_t wrapper that
 * is freed on the loop after the callback. */
#include <stdlib.h>

#include "raft_async.h"

struct async_job {
	uv_work_t work;
	struct raft_io_async_work *req;
	raft_io_async_work_cb cb;
	int status;
};

static uv_loop_t *async_loop;

static void job_run(uv_work_t *w)
{
	struct async_job *job = w->data;
	job->status = job->req->work(job->req);
}

static void job_done(uv_work_t *w, int status)
{
	struct async_job *job = w->data;
	int rv = status == UV_ECANCELED ? RAFT_CANCELED : job->status;
	raft_io_async_work_cb cb = job->cb;
	struct raft_io_async_work *req = job->req;
	free(job);
	cb(req, rv);
}

static int async_work(struct raft_io *io, struct raft_io_async_work *req,
		      raft_io_async_work_cb cb)
{
	struct async_job *job = calloc(1, sizeof(*job));
	if (job == NULL)
		return RAFT_NOMEM;
	job->req = req;
	job->cb = cb;
	job->work.data = job;
	if (uv_queue_work(async_loop, &job->work, job_run, job_done) != 0) {
		free(job);
		return RAFT_IOERR;
	}
	return 0;
}

void raft_async_install(struct raft_io *io, uv_loop_t *loop)
{
	async_loop = loop;
	if (io->version < 2)
		io->version = 2;
	io->async_work = async_work;
}
