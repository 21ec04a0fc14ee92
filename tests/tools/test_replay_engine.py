#!/usr/bin/env python3
"""test_replay_engine: ombra-replay end to end against servers that need
no Ombra cluster: a memory-backed gRPC VolumeService in this process
(replay_helpers.MemVolumeServer) and a real qemu-nbd on a raw file.

It checks that a clean replay verifies with 0 failures and exit 0, that a
lost write is caught (exit 1, the block and write numbers named), that
overlapping requests are never in flight together, that retries reuse the
request id, that --speed follows the timestamps, that --skip leaves out
the trace's first requests, and the command line's
errors (unknown volume, unreachable endpoint, unreadable trace, --help).
The qemu-nbd cases are skipped when qemu-nbd is not installed.
"""

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import replay_helpers as H
from ombra_replay import cli
from ombra_replay.content import BlockBook
from ombra_replay.engine import Engine, Op
from ombra_replay.report import Stats

VOL = "vol1"
SIZE = 1 << 20


def run_cli(argv):
    """(exit status, stdout, stderr) of ombra-replay argv, in process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def mixed_trace(n=400):
    """vscsi v1 records: writes and reads over 64 blocks, with overlaps,
    unaligned starts and lengths from 512 B to 64 KiB."""
    recs = []
    for i in range(n):
        cmd = 0x2A if i % 3 else 0x28
        lbn = (i * 37 % 512) + (i % 5)
        ln = 512 * (1 + (i * 7) % 128)
        recs.append((cmd, lbn, ln, 1000 * i))
    return H.vscsi_v1(recs)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class GrpcReplay(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ombra-replay-test-")
        self.trace = H.write_file(os.path.join(self.dir, "t.vscsi"), mixed_trace())
        self.srv = None

    def tearDown(self):
        if self.srv:
            self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def replay(self, *extra):
        return run_cli(["--trace", self.trace, "--endpoint", self.srv.endpoint,
                        "--volume", VOL, "--json", "--no-progress"] + list(extra))

    def test_clean_replay_verifies(self):
        self.srv = H.MemVolumeServer(VOL, SIZE)
        rc, out, err = self.replay("--expect-zeros", "--queue-depth", "8", "--read-back")
        rep = json.loads(out)
        self.assertEqual(rc, 0, err + out)
        self.assertTrue(rep["ok"])
        self.assertEqual(rep["read_back"]["failures"], 0)
        self.assertGreater(rep["read_back"]["blocks"], 50)
        self.assertEqual(rep["requests"]["total"], 400)
        self.assertEqual(rep["requests"]["reads"], 134)
        self.assertEqual(rep["verification"]["failures"], 0)
        self.assertGreater(rep["verification"]["blocks_checked"], 500)
        self.assertEqual(rep["verification"]["blocks_unknown"], 0)
        self.assertIsNotNone(rep["latency_ms"]["write"]["p99"])
        # a second run with another seed over the same volume: old blocks
        # are unknown, not failures, until this run writes them
        rc, out, err = self.replay("--seed", "99")
        rep = json.loads(out)
        self.assertEqual(rc, 0, err + out)
        self.assertEqual(rep["seed"], 99)

    def test_state_hand_over(self):
        # run 1 saves what each block holds; run 2 (another seed) reads
        # blocks it has not written yet and checks them against run 1's
        # data: nothing is "unknown" any more
        self.srv = H.MemVolumeServer(VOL, SIZE)
        state = os.path.join(self.dir, "state.json")
        rc, out, err = self.replay("--expect-zeros", "--save-state", state)
        self.assertEqual(rc, 0, err + out)
        rc, out, err = self.replay("--seed", "99", "--load-state", state)
        rep = json.loads(out)
        self.assertEqual(rc, 0, err + out)
        self.assertEqual(rep["verification"]["blocks_unknown"], 0)
        self.assertEqual(rep["verification"]["failures"], 0)
        self.assertGreater(rep["verification"]["blocks_checked"], 500)
        # a state that does not match the volume is caught: the volume
        # still holds run 2's data, the state says run 1's
        rc, out, _err = self.replay("--seed", "7", "--load-state", state)
        rep = json.loads(out)
        self.assertEqual(rc, 1)
        self.assertRegex(rep["verification"]["first_failures"][0]["expected"],
                         r"^(write \d+ of seed \d+|zeros)$")
        # not a state file: a clear error, exit 1
        bad = H.write_file(os.path.join(self.dir, "bad.json"), b'{"blocks": []}')
        rc, _out, err = self.replay("--load-state", bad)
        self.assertEqual(rc, 1)
        self.assertIn("not an ombra-replay state file", err)

    def test_skip(self):
        # --skip 100 --limit 50: the trace's requests 100..149 (reads where
        # i % 3 == 0: 102, 105, ..., 147); the skipped writes never reach
        # the volume, so the blocks they would have written read as zeros
        self.srv = H.MemVolumeServer(VOL, SIZE)
        rc, out, err = self.replay("--expect-zeros", "--skip", "100", "--limit", "50")
        rep = json.loads(out)
        self.assertEqual(rc, 0, err + out)
        self.assertEqual(rep["skip"], 100)
        self.assertEqual(rep["requests"]["total"], 50)
        self.assertEqual(rep["requests"]["reads"], 16)
        self.assertEqual(rep["requests"]["writes"], 34)
        self.assertEqual(self.srv.writes, 34)
        rc, out, err = self.replay("--skip", "0")
        self.assertEqual(rc, 2)
        self.assertIn("--skip", err)

    def test_lost_write_is_detected(self):
        # queue depth 1: write 40 in arrival order is the same on every run
        self.srv = H.MemVolumeServer(VOL, SIZE, lose_write=40)
        rc, out, _err = self.replay("--queue-depth", "1")
        rep = json.loads(out)
        self.assertEqual(rc, 1)
        self.assertFalse(rep["ok"])
        self.assertGreater(rep["verification"]["failures"], 0)
        f = rep["verification"]["first_failures"][0]
        self.assertRegex(f["expected"], r"^write \d+$")
        self.assertNotEqual(f["expected"], f["got"])
        self.srv.stop()
        self.srv = H.MemVolumeServer(VOL, SIZE, lose_write=40)
        rc, out, _err = self.replay("--limit", "5")
        self.assertEqual(rc, 0)  # 5 requests never reach write 40

    def test_read_back_finds_lost_write(self):
        # the first write (record 1, blocks 4-5) is lost and the first 10
        # records never read it again: only the read-back notices.  Queue
        # depth 1 makes "the first write" the same one on every run.
        self.srv = H.MemVolumeServer(VOL, SIZE, lose_write=0)
        rc, out, _err = self.replay("--limit", "10", "--queue-depth", "1")
        self.assertEqual(rc, 0)
        self.srv.stop()
        self.srv = H.MemVolumeServer(VOL, SIZE, lose_write=0)
        rc, out, _err = self.replay("--limit", "10", "--queue-depth", "1", "--read-back")
        rep = json.loads(out)
        self.assertEqual(rc, 1)
        self.assertEqual(rep["read_back"]["failures"], 2)
        self.assertEqual(rep["verification"]["first_failures"][0],
                         {"block": 4, "expected": "write 1", "got": "zeros"})

    def test_retries_reuse_request_id(self):
        self.srv = H.MemVolumeServer(VOL, SIZE, fail_first_writes=True)
        rc, out, _err = self.replay("--limit", "30")
        rep = json.loads(out)
        self.assertEqual(rc, 1)
        self.assertGreater(rep["errors"]["count"], 0)
        self.assertIn("UNAVAILABLE: try again", rep["errors"]["first"][0])
        self.srv.stop()
        self.srv = H.MemVolumeServer(VOL, SIZE, fail_first_writes=True)
        rc, out, _err = self.replay("--retry-timeout", "10")
        rep = json.loads(out)
        self.assertEqual(rc, 0, out)
        self.assertEqual(rep["requests"]["retries"], rep["requests"]["writes"])
        self.assertTrue(all(n == 2 for n in self.srv.seen_ids.values()))

    def test_speed_follows_timestamps(self):
        self.srv = H.MemVolumeServer(VOL, SIZE)
        # 20 disjoint writes 50 ms apart: 0.95 s at 1x, about 0.1 s at 10x
        self.trace = H.write_file(os.path.join(self.dir, "s.vscsi"), H.vscsi_v1(
            [(0x2A, 8 * i, 4096, 7000 + 50000 * i) for i in range(20)]))
        rc, out, _err = self.replay("--speed", "1x")
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(json.loads(out)["duration_s"], 0.95)
        rc, out, _err = self.replay("--speed", "10x")
        self.assertEqual(rc, 0)
        self.assertLess(json.loads(out)["duration_s"], 0.6)

    def test_cli_errors(self):
        self.srv = H.MemVolumeServer(VOL, SIZE)
        rc, _out, err = run_cli(["--trace", self.trace, "--endpoint", self.srv.endpoint,
                                 "--volume", "nope"])
        self.assertEqual(rc, 1)
        self.assertIn("unknown volume 'nope' at %s" % self.srv.endpoint, err)
        ep = "127.0.0.1:%d" % free_port()
        rc, _out, err = run_cli(["--trace", self.trace, "--endpoint", ep, "--volume", VOL])
        self.assertEqual(rc, 1)
        self.assertIn("endpoint %s unreachable" % ep, err)
        rc, _out, err = run_cli(["--trace", os.path.join(self.dir, "missing.vscsi"),
                                 "--endpoint", ep, "--volume", VOL])
        self.assertEqual(rc, 1)
        self.assertIn("cannot read trace", err)
        rc, _out, err = run_cli(["--trace", self.trace, "--volume", VOL])
        self.assertEqual(rc, 1)
        self.assertIn("--via grpc needs --endpoint", err)
        rc, _out, err = run_cli(["--trace", self.trace, "--endpoint", ep, "--volume", VOL,
                                 "--speed", "fast"])
        self.assertEqual(rc, 2)
        self.assertIn("want max, 1x or Nx", err)
        lis = H.write_file(os.path.join(self.dir, "t.lis"), "1 1 0 0\n")
        rc, _out, err = run_cli(["--trace", lis, "--endpoint", ep, "--volume", VOL,
                                 "--speed", "1x"])
        self.assertEqual(rc, 1)
        self.assertIn("no timestamps", err)
        rc, out, _err = run_cli(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn("--queue-depth", out)


class FakeBackend:
    """Completes ops in reverse order after a delay and records overlap."""

    def __init__(self):
        self.pending = []
        self.max_inflight = 0
        self.overlap = False
        self.order = []

    def submit(self, op):
        for o in self.pending:
            if set(o.blocks()) & set(op.blocks()):
                self.overlap = True
        self.pending.append(op)
        self.order.append(op.offset)
        self.max_inflight = max(self.max_inflight, len(self.pending))

    def wait(self, timeout):
        if len(self.pending) < 4:
            time.sleep(0.001)
        out = [(o, bytes(o.length) if o.kind == "R" else None, None, False)
               for o in reversed(self.pending)]
        self.pending = []
        return out


class EngineOrder(unittest.TestCase):
    def test_no_overlap_in_flight_and_trace_order(self):
        be = FakeBackend()
        ops = [Op("W", (i % 6) * 4096, 8192) for i in range(200)]
        want = [o.offset for o in ops]
        Engine(be, BlockBook(1), Stats(), queue_depth=8).run(ops)
        self.assertFalse(be.overlap)
        self.assertEqual(be.order, want)
        self.assertGreater(be.max_inflight, 1)
        be = FakeBackend()
        Engine(be, BlockBook(1), Stats(), queue_depth=8).run(
            Op("R", i * 4096, 4096) for i in range(100))
        self.assertEqual(be.max_inflight, 8)


@unittest.skipUnless(shutil.which("qemu-nbd"), "qemu-nbd not installed")
class NbdReplay(unittest.TestCase):
    def setUp(self):
        try:
            import nbd  # noqa: F401
        except ImportError:
            self.skipTest("python3-libnbd not installed")
        self.dir = tempfile.mkdtemp(prefix="ombra-replay-nbd-")
        self.trace = H.write_file(os.path.join(self.dir, "t.vscsi"), mixed_trace())
        img = os.path.join(self.dir, "vol.img")
        with open(img, "wb") as f:
            f.truncate(SIZE)
        self.ep = "127.0.0.1:%d" % free_port()
        self.proc = subprocess.Popen(["qemu-nbd", "-f", "raw", "-x", VOL, "-b", "127.0.0.1",
                                      "-p", self.ep.split(":")[1], "-t", "-e", "4", img],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", int(self.ep.split(":")[1])), 0.2):
                return
            time.sleep(0.05)
        self.fail("qemu-nbd did not listen on %s" % self.ep)

    def tearDown(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_replay_via_nbd(self):
        rc, out, err = run_cli(["--trace", self.trace, "--via", "nbd", "--nbd-endpoint", self.ep,
                                "--volume", VOL, "--json", "--expect-zeros", "--no-progress"])
        rep = json.loads(out)
        self.assertEqual(rc, 0, err + out)
        self.assertEqual(rep["volume_size"], SIZE)
        self.assertEqual(rep["requests"]["total"], 400)
        self.assertEqual(rep["verification"]["failures"], 0)
        self.assertGreater(rep["verification"]["blocks_checked"], 500)
        rc, _out, err = run_cli(["--trace", self.trace, "--via", "nbd", "--nbd-endpoint",
                                 self.ep, "--volume", "nope"])
        self.assertEqual(rc, 1)
        self.assertIn("unknown volume 'nope' at NBD endpoint %s" % self.ep, err)


if __name__ == "__main__":
    H.run()
