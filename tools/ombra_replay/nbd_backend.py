"""nbd_backend: replay through a proxy's NBD export with libnbd.

What it is for: one NBD connection (export = volume name) with up to the
engine's queue depth of commands in flight: aio_pread / aio_pwrite, then
poll() and aio_command_completed() on the outstanding cookies.

How it fails: opening raises ReplayError for an unreachable endpoint (with
its address), an unknown export ("unknown volume"), or a missing python3
libnbd module.  A command the server fails, or libnbd refuses before
sending, is returned by wait() as an error (never retryable: NBD has no
request ids).  A broken connection raises ReplayError from wait(), which
stops the run.
"""

import errno
import time

from . import ReplayError


def split_endpoint(endpoint, default_port=10809):
    """("host", port) from "host:port", "host" or "[v6]:port"."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or "]" in port:
        host, port = endpoint, str(default_port)
    host = host.strip("[]")
    try:
        p = int(port)
        if not 0 < p < 65536:
            raise ValueError
    except ValueError:
        raise ReplayError("bad endpoint %r: want HOST:PORT" % endpoint)
    return host, p


def _errno_name(e):
    """The errno name ("ENOENT") of an nbd.Error; libnbd's Python binding
    gives the name, older ones the number."""
    code = getattr(e, "errno", None)
    if isinstance(code, int):
        return errno.errorcode.get(code, str(code))
    return code


class NbdBackend:
    """NBD client for export `volume` at endpoint "host:port"."""

    name = "nbd"

    def __init__(self, endpoint, volume):
        try:
            import nbd
        except ImportError:
            raise ReplayError("--via nbd needs the python3 libnbd module "
                              "(apt-get install python3-libnbd); use /usr/bin/python3")
        self.nbd = nbd
        self.endpoint = endpoint
        self.volume = volume
        host, port = split_endpoint(endpoint)
        self.h = nbd.NBD()
        self.h.set_export_name(volume)
        try:
            self.h.connect_tcp(host, str(port))
        except nbd.Error as e:
            self.h = None
            code = _errno_name(e)
            if code in ("ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT"):
                raise ReplayError("NBD endpoint %s unreachable: %s" % (endpoint, e.string))
            if code == "ENOENT":
                raise ReplayError("unknown volume %r at NBD endpoint %s: %s"
                                  % (volume, endpoint, e.string))
            raise ReplayError("cannot open NBD export %r at %s: %s"
                              % (volume, endpoint, e.string))
        self.inflight = {}   # cookie -> (op, buffer)
        self.failed = []     # outcomes of commands refused at submit

    def volume_size(self):
        return self.h.get_size()

    def submit(self, op):
        nbd = self.nbd
        try:
            if op.kind == "R":
                buf = nbd.Buffer(op.length)
                cookie = self.h.aio_pread(buf, op.offset)
            else:
                buf = nbd.Buffer.from_bytearray(bytearray(op.data))
                cookie = self.h.aio_pwrite(buf, op.offset)
        except nbd.Error as e:
            self.failed.append((op, None, e.string, False))
            return
        self.inflight[cookie] = (op, buf)

    def wait(self, timeout):
        """Completed ops as (op, data, error, retryable), waiting up to
        timeout seconds for the first one."""
        out, self.failed = self.failed, []
        if out:
            timeout = 0.0
        deadline = time.monotonic() + timeout
        nbd = self.nbd
        while True:
            for cookie in list(self.inflight):
                op, buf = self.inflight[cookie]
                try:
                    if not self.h.aio_command_completed(cookie):
                        continue
                except nbd.Error as e:
                    del self.inflight[cookie]
                    out.append((op, None, e.string, False))
                    continue
                del self.inflight[cookie]
                out.append((op, buf.to_bytearray() if op.kind == "R" else None, None, False))
            left = deadline - time.monotonic()
            if out or not self.inflight or left <= 0:
                return out
            try:
                self.h.poll(max(1, int(left * 1000)))
            except nbd.Error as e:
                raise ReplayError("NBD connection to %s failed: %s" % (self.endpoint, e.string))

    def close(self):
        if self.h is not None:
            try:
                self.h.shutdown()
            except self.nbd.Error:
                pass
            self.h = None  # the handle closes when collected
