#!/usr/bin/env python3
"""test_traces: unit tests of ombra-replay's trace readers, mapping onto
a volume, block content and verification, and report percentiles.

Each test writes small synthetic traces into a temporary directory; the
real CloudPhysics and ARC traces are checked too when present (their test
is skipped, not failed, when /work/shared/traces is absent).  Fails (exit
1) on any mismatch; needs no cluster.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import replay_helpers as H
from ombra_replay import ReplayError, content, mapping, report, traces
from ombra_replay.traces import Request, TraceError


def read_all(path, fmt=None, **kw):
    with traces.Reader(path, fmt, **kw) as r:
        return list(r), r


class Readers(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ombra-replay-test-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_vscsi_v1(self):
        p = H.write_file(self.path("t.vscsi"), H.vscsi_v1([
            (0x2A, 8, 4096, 100), (0x28, 16, 512, 150), (0x12, 0, 36, 160),
            (0x28, 24, 0, 170), (0x88, 1 << 30, 65536, 200)]))
        reqs, r = read_all(p)
        self.assertEqual(r.format, "vscsi")
        self.assertEqual(reqs, [Request("W", 4096, 4096, 100), Request("R", 8192, 512, 150),
                                Request("R", (1 << 30) * 512, 65536, 200)])
        self.assertEqual((r.records, r.skipped), (5, 2))

    def test_vscsi_v2(self):
        p = H.write_file(self.path("t.bin"), H.vscsi_v2([(0x28, 3, 1024, 5), (0x2A, 9, 512, 6)]))
        reqs, r = read_all(p)  # sniffed: no known extension
        self.assertEqual(r.format, "vscsi")
        self.assertEqual(reqs, [Request("R", 1536, 1024, 5), Request("W", 4608, 512, 6)])

    def test_vscsi_truncated(self):
        p = H.write_file(self.path("t.vscsi"), H.vscsi_v1([(0x28, 1, 512, 1)] * 2) + b"\0" * 5)
        with self.assertRaisesRegex(TraceError, "truncated vscsi record at byte 64"):
            read_all(p)

    def test_vscsi_bad_version(self):
        data = bytearray(H.vscsi_v1([(0x28, 1, 512, 1)]))
        data[15] = 7
        p = H.write_file(self.path("t.vscsi"), bytes(data))
        with self.assertRaisesRegex(TraceError, "not a vscsi trace"):
            read_all(p)

    def test_lis(self):
        p = H.write_file(self.path("t.lis"), "1 1 0 0\n10 8 3 1\n\n5 0 0 2\n7 2 0 3")
        reqs, r = read_all(p)
        self.assertEqual(reqs, [Request("R", 512, 512, None), Request("R", 5120, 4096, None),
                                Request("R", 3584, 1024, None)])
        self.assertFalse(r.has_timestamps)
        self.assertEqual(r.skipped, 1)
        reqs, _ = read_all(p, lis_unit=4096)
        self.assertEqual(reqs[1], Request("R", 40960, 32768, None))

    def test_lis_bad_line(self):
        p = H.write_file(self.path("t.lis"), "1 1 0 0\n2 x 0 1\n")
        with self.assertRaisesRegex(TraceError, "line 2: want 'start_block"):
            read_all(p)

    def test_msr(self):
        p = H.write_file(self.path("t.csv"),
                         "Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime\n"
                         "128166372003061629,hm,0,Write,3154152960,4096,1839\n"
                         "128166372003061639,hm,0,read,8192,512,10\n"
                         "128166372003061649,hm,0,Read,0,0,10\n")
        reqs, r = read_all(p)
        self.assertEqual(r.format, "msr")
        self.assertEqual(reqs, [Request("W", 3154152960, 4096, 12816637200306162),
                                Request("R", 8192, 512, 12816637200306163)])
        self.assertEqual(r.skipped, 1)

    def test_msr_bad_type(self):
        p = H.write_file(self.path("t.csv"), "1,h,0,Flush,0,4096,1\n")
        with self.assertRaisesRegex(TraceError, "line 1: Type must be Read or Write"):
            read_all(p)

    def test_sniff_text(self):
        p = H.write_file(self.path("trace1"), "1,h,0,Read,0,4096,1\n")
        self.assertEqual(read_all(p)[1].format, "msr")
        p = H.write_file(self.path("trace2"), "3 2 0 0\n")
        self.assertEqual(read_all(p)[1].format, "lis")

    def test_undetectable_and_unknown(self):
        p = H.write_file(self.path("trace3"), "hello world\n")
        with self.assertRaisesRegex(TraceError, "cannot tell the trace format"):
            read_all(p)
        with self.assertRaisesRegex(TraceError, "unknown trace format 'blk'"):
            read_all(p, "blk")

    def test_unreadable(self):
        with self.assertRaisesRegex(TraceError, "cannot read trace .*nope.vscsi"):
            read_all(self.path("nope.vscsi"))

    @unittest.skipUnless(shutil.which("zstd"), "zstd not installed")
    def test_zst_stream_and_early_stop(self):
        raw = H.write_file(self.path("t.vscsi"),
                           H.vscsi_v1([(0x28, i, 512, i) for i in range(50000)]))
        subprocess.run(["zstd", "-q", "-f", raw, "-o", raw + ".zst"], check=True)
        os.unlink(raw)
        reqs, _ = read_all(raw + ".zst")
        self.assertEqual(len(reqs), 50000)
        self.assertEqual(reqs[-1], Request("R", 49999 * 512, 512, 49999))
        with traces.Reader(raw + ".zst") as r:  # leaving early stops zstd
            self.assertEqual(next(iter(r)), Request("R", 0, 512, 0))

    @unittest.skipUnless(shutil.which("zstd"), "zstd not installed")
    def test_zst_corrupt(self):
        p = H.write_file(self.path("t.vscsi.zst"), b"\x28\xb5\x2f\xfd" + b"garbage" * 10)
        with self.assertRaisesRegex(TraceError, "zstd"):
            read_all(p)

    def test_real_traces(self):
        d = H.traces_dir()
        cp = os.path.join(d, "cloudPhysicsIO.vscsi.zst")
        if not os.path.exists(cp):
            self.skipTest("no real traces in %s" % d)
        with traces.Reader(cp) as r:
            it = iter(r)
            first = [next(it) for _ in range(3)]
        self.assertEqual(first[0], Request("W", 42932745 * 512, 512, 5633898368802))
        self.assertEqual(first[2].offset, 42932747 * 512)
        reqs, r = read_all(cp)
        self.assertEqual(len(reqs), 113872)
        self.assertEqual(sum(q.op == "R" for q in reqs), 46974)
        with traces.Reader(os.path.join(d, "arc", "OLTP.lis.zst"), lis_unit=4096) as r:
            it = iter(r)
            self.assertEqual([next(it) for _ in range(2)],
                             [Request("R", 4096, 4096, None), Request("R", 8192, 4096, None)])


class Mapping(unittest.TestCase):
    def test_map(self):
        size = 1 << 20
        m = mapping.map_request
        self.assertEqual(m(0, 512, size), (0, 4096))
        self.assertEqual(m(4095, 2, size), (0, 8192))       # touches two blocks
        self.assertEqual(m(size + 8192, 4096, size), (8192, 4096))  # modulo
        self.assertEqual(m(size - 4096, 65536, size), (size - 4096, 4096))  # cut
        self.assertEqual(m(3 * size - 100, 50, size), (size - 4096, 4096))
        self.assertIsNone(m(10, 0, size))

    def test_volume_size(self):
        mapping.check_volume_size(8192)
        for bad in (0, 4095, 8193):
            with self.assertRaises(ReplayError):
                mapping.check_volume_size(bad)


class Content(unittest.TestCase):
    def test_block_data(self):
        d = content.block_data(7, 3, 2)
        self.assertEqual(len(d), 4096)
        self.assertEqual(content.describe(7, 3, d), "write 2")
        self.assertEqual(content.describe(7, 4, d), "block 3 write 2")
        self.assertEqual(content.describe(8, 3, d), "block 3 write 2 of seed 7")
        self.assertEqual(content.describe(7, 3, bytes(4096)), "zeros")
        self.assertEqual(content.describe(7, 3, d[:-1] + b"x"), "other data")

    def test_book(self):
        b = content.BlockBook(seed=5)
        data, w1 = b.write_data(4096, 8192)
        self.assertEqual(w1, [1, 1])
        b.write_done(4096, w1, True)
        data2, w2 = b.write_data(8192, 4096)
        self.assertEqual(w2, [2])
        # write 2 of block 2 not acknowledged yet: the old content is expected
        self.assertEqual(b.check_read(4096, data), 0)
        b.write_done(8192, w2, True)
        self.assertEqual(b.check_read(4096, data), 1)  # stale block 2
        self.assertEqual(b.first_failures[0], content.Failure(2, "write 2", "write 1"))
        self.assertEqual(b.check_read(0, bytes(4096)), 0)  # never written: unknown
        self.assertEqual((b.checked, b.unknown, b.failures), (4, 1, 1))

    def test_expect_zeros_and_failed_write(self):
        b = content.BlockBook(seed=1, expect_zeros=True)
        self.assertEqual(b.check_read(0, bytes(8192)), 0)
        self.assertEqual(b.check_read(0, content.block_data(1, 0, 1)), 1)
        _d, w = b.write_data(0, 4096)
        b.write_done(0, w, False)  # the volume may hold either version now
        self.assertEqual(b.check_read(0, b"\1" * 4096), 0)
        self.assertEqual(b.unknown, 1)


class Percentiles(unittest.TestCase):
    def test_percentile(self):
        v = list(range(1, 101))
        self.assertEqual(report.percentile(v, 50), 50)
        self.assertEqual(report.percentile(v, 99), 99)
        self.assertEqual(report.percentile(v, 100), 100)
        self.assertEqual(report.percentile([3], 95), 3)
        self.assertIsNone(report.percentile([], 50))
        s = report.latency_summary([0.001, 0.002])
        self.assertEqual((s["count"], s["p50"], s["max"]), (2, 1.0, 2.0))


if __name__ == "__main__":
    H.run()
