"""replay_helpers: shared pieces of the ombra-replay unit tests.

What it is for: putting the replay library (SRCDIR/tools) on sys.path,
writing small synthetic traces in every format, a memory-backed gRPC
VolumeService (MemVolumeServer) that can be told to lose a write or to
fail requests, so the tests can check that the replay verifies what it
claims to, and running a test module with automake's exit codes.

How it fails: helpers raise on misuse; run() exits 1 when a test failed
and 77 (skip) when every test was skipped.
"""

import os
import struct
import sys
import threading
import unittest
from concurrent import futures

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
SRCDIR = os.environ.get("OMBRA_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRCDIR, "tools"))

V1 = struct.Struct("<IIIHHQQ")
V2 = struct.Struct("<HHIIIQQQ")


def traces_dir():
    """Where the real traces are: $OMBRA_TRACES_DIR or SRCDIR/../shared/traces."""
    return os.environ.get("OMBRA_TRACES_DIR") or os.path.normpath(
        os.path.join(SRCDIR, "..", "shared", "traces"))


def vscsi_v1(records):
    """Bytes of v1 records from (cmd, lbn, len_bytes, ts_us) tuples."""
    return b"".join(V1.pack(i, ln, 1, cmd, 0x0100, lbn, ts)
                    for i, (cmd, lbn, ln, ts) in enumerate(records))


def vscsi_v2(records):
    """Bytes of v2 records from (cmd, lbn, len_bytes, ts_us) tuples."""
    return b"".join(V2.pack(cmd, 0x0200, i, ln, 1, lbn, ts, 7)
                    for i, (cmd, lbn, ln, ts) in enumerate(records))


def write_file(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


class MemVolumeServer:
    """A gRPC VolumeService over a bytearray, for testing the replay tool.

    lose_write: index (0-based, in arrival order) of a Write to acknowledge
    without applying; fail_first: request ids whose first attempt answers
    UNAVAILABLE; seen_ids: request id -> attempts."""

    def __init__(self, name, size, lose_write=None, fail_first_writes=False):
        import grpc
        from ombra_replay import stubs
        self.grpc = grpc
        self.pb, self.pb_grpc = stubs.load()
        self.name = name
        self.data = bytearray(size)
        self.lock = threading.Lock()
        self.lose_write = lose_write
        self.fail_first_writes = fail_first_writes
        self.writes = 0
        self.seen_ids = {}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.pb_grpc.add_VolumeServiceServicer_to_server(self._servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.endpoint = "127.0.0.1:%d" % self.port
        self.server.start()

    def _servicer(self):
        outer = self
        pb = self.pb
        sc = self.grpc.StatusCode

        class Servicer(self.pb_grpc.VolumeServiceServicer):
            def _check(self, ctx, name, off, ln):
                if name != outer.name:
                    ctx.abort(sc.NOT_FOUND, "volume %r not found" % name)
                if off + ln > len(outer.data):
                    ctx.abort(sc.INVALID_ARGUMENT, "offset %d + length %d beyond %d"
                              % (off, ln, len(outer.data)))

            def GetVolume(self, req, ctx):
                self._check(ctx, req.name, 0, 0)
                return pb.GetVolumeResponse(volume={"name": outer.name,
                                                    "size_bytes": len(outer.data)})

            def Read(self, req, ctx):
                self._check(ctx, req.volume, req.offset_bytes, req.length_bytes)
                with outer.lock:
                    d = bytes(outer.data[req.offset_bytes:req.offset_bytes + req.length_bytes])
                return pb.ReadResponse(data=d)

            def Write(self, req, ctx):
                self._check(ctx, req.volume, req.offset_bytes, len(req.data))
                with outer.lock:
                    n = outer.seen_ids.get(req.request_id, 0) + 1
                    outer.seen_ids[req.request_id] = n
                    if outer.fail_first_writes and n == 1:
                        ctx.abort(sc.UNAVAILABLE, "try again")
                    idx = outer.writes
                    outer.writes += 1
                    if idx != outer.lose_write:
                        o = req.offset_bytes
                        outer.data[o:o + len(req.data)] = req.data
                return pb.WriteResponse(version_token=idx + 1)

        return Servicer()

    def stop(self):
        self.server.stop(0).wait()


def run():
    """unittest.main with automake exit codes (77 when all skipped)."""
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    r = prog.result
    if not r.wasSuccessful():
        sys.exit(1)
    if r.testsRun and len(r.skipped) == r.testsRun:
        sys.exit(77)
    sys.exit(0)
