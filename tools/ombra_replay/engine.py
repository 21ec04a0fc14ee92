"""engine: issue mapped trace requests to a backend and collect outcomes.

What it is for: the replay loop, independent of how the volume is reached.
Requests are issued in trace order with up to `queue_depth` in flight; a
request never starts while an overlapping one (any shared 4 KiB block) is
in flight or waiting for a retry, and the requests behind it wait too, so
the content every read must return is known (content.BlockBook).  Speed:
None = as fast as the queue depth allows; a factor F replays the trace's
timestamps F times faster (1.0 = real time); requests are never issued
before their time, and late ones go at once.

A backend has submit(op), wait(timeout) -> [(op, data, error, retryable)]
and close(); see grpc_backend and nbd_backend.  A failed request that the
backend marks retryable is retried with the same op (same data and request
id, so the server can recognise it) until `retry_timeout` seconds after
its first attempt; its latency counts from the first attempt.

How it fails: a request error is counted in Stats (not raised); after
`max_errors` errors the engine stops issuing, drains what is in flight and
sets Stats.aborted.  A ReplayError raised by the backend (connection lost)
also stops the run and is recorded in Stats.aborted.
"""

import heapq
import time
import uuid

from . import ReplayError
from .mapping import BLOCK


class Op:
    """One volume request: kind "R"/"W", byte offset and length (block
    aligned), data and write numbers for writes, a request id, the trace
    timestamp (us or None), and timing of its attempts."""

    __slots__ = ("kind", "offset", "length", "ts_us", "data", "wnos", "rid",
                 "t_first", "attempts", "seq")

    def __init__(self, kind, offset, length, ts_us=None):
        self.kind = kind
        self.offset = offset
        self.length = length
        self.ts_us = ts_us
        self.data = None
        self.wnos = None
        self.rid = None
        self.t_first = None
        self.attempts = 0
        self.seq = 0

    def blocks(self):
        first = self.offset // BLOCK
        return range(first, first + self.length // BLOCK)


class Engine:
    """Runs one replay; see the module comment.

    backend: as above; book: content.BlockBook; stats: report.Stats;
    progress: report.Progress or None; queue_depth >= 1; speed: None or a
    factor > 0; retry_timeout: seconds (0 = no retries); max_errors >= 1."""

    def __init__(self, backend, book, stats, queue_depth=16, speed=None,
                 retry_timeout=0.0, max_errors=100, progress=None):
        self.backend = backend
        self.book = book
        self.stats = stats
        self.qd = max(1, queue_depth)
        self.speed = speed
        self.retry_timeout = retry_timeout
        self.max_errors = max(1, max_errors)
        self.progress = progress
        self.busy = set()      # blocks of ops in flight or waiting to retry
        self.inflight = 0      # ops submitted or waiting to retry
        self.retry_heap = []   # (due, seq, op)
        self.seq = 0

    def _overlaps(self, op):
        busy = self.busy
        return any(b in busy for b in op.blocks())

    def _submit(self, op):
        op.attempts += 1
        self.backend.submit(op)

    def _start(self, op):
        if op.kind == "W":
            op.data, op.wnos = self.book.write_data(op.offset, op.length)
            op.rid = uuid.uuid4().hex
        # Latency counts from this request's submission: the time spent
        # generating and sending the requests started before it in the same
        # loop turn is not its latency (docs/replay.md).
        op.t_first = time.monotonic()
        self.seq += 1
        op.seq = self.seq
        self.busy.update(op.blocks())
        self.inflight += 1
        self._submit(op)

    def _finish(self, op, data, err, retryable, now):
        if err is not None and retryable and self.retry_timeout > 0 and \
                now - op.t_first < self.retry_timeout and self.stats.aborted is None:
            self.stats.retries += 1
            delay = min(1.0, 0.05 * (2 ** min(op.attempts - 1, 5)))
            heapq.heappush(self.retry_heap, (now + delay, op.seq, op))
            return
        self.inflight -= 1
        self.busy.difference_update(op.blocks())
        if err is not None:
            if op.kind == "W":
                self.book.write_done(op.offset, op.wnos, False)
            self.stats.error("%s offset %d length %d: %s"
                             % ("read" if op.kind == "R" else "write",
                                op.offset, op.length, err))
            if self.stats.errors >= self.max_errors and self.stats.aborted is None:
                self.stats.aborted = "stopped after %d errors" % self.stats.errors
            return
        if op.kind == "W":
            self.book.write_done(op.offset, op.wnos, True)
        else:
            self.book.check_read(op.offset, data)
        self.stats.done(op.kind, op.length, now - op.t_first)
        op.data = None

    def _due(self, op, t0, ts0):
        if self.speed is None or op.ts_us is None or ts0 is None:
            return 0.0
        return t0 + (op.ts_us - ts0) / 1e6 / self.speed

    def run(self, ops):
        """Replay the iterable of Op; returns when every issued op is done
        (or the run was aborted).  Stats.t_start/t_end frame the run."""
        it = iter(ops)
        nxt = None
        exhausted = False
        stats = self.stats
        t0 = stats.t_start = time.monotonic()
        ts0 = None
        try:
            while True:
                now = time.monotonic()
                wake = now + 0.25
                while self.retry_heap and self.retry_heap[0][0] <= now:
                    _due, _s, op = heapq.heappop(self.retry_heap)
                    self._submit(op)
                if self.retry_heap:
                    wake = min(wake, self.retry_heap[0][0])
                while stats.aborted is None and self.inflight < self.qd:
                    if nxt is None:
                        if exhausted:
                            break
                        nxt = next(it, None)
                        if nxt is None:
                            exhausted = True
                            break
                        if ts0 is None and nxt.ts_us is not None:
                            ts0 = nxt.ts_us
                    due = self._due(nxt, t0, ts0)
                    if due > now:
                        wake = min(wake, due)
                        break
                    if self._overlaps(nxt):
                        break
                    self._start(nxt)
                    nxt = None
                if self.inflight == 0 and (exhausted or stats.aborted is not None):
                    break
                outstanding = self.inflight - len(self.retry_heap)
                timeout = max(0.0, wake - time.monotonic())
                if outstanding == 0:
                    time.sleep(timeout)
                    done = []
                else:
                    done = self.backend.wait(timeout)
                now = time.monotonic()
                for op, data, err, retryable in done:
                    self._finish(op, data, err, retryable, now)
                if self.progress is not None:
                    self.progress.update(stats)
        except ReplayError as e:
            stats.aborted = str(e)
        finally:
            stats.t_end = time.monotonic()
            if self.progress is not None:
                self.progress.finish(stats)
