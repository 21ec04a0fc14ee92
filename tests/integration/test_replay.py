"""test_replay: ombra-replay against a real one-region cluster.

deploy/ombra-local (through tests/py/ombra_cluster.LocalCluster) starts
1 ombra-metad, 2 ombra-stored and 1 ombra-proxy on reserved loopback
ports.  Two fresh volumes (RF 2, 1 MiB segments) are created; the first
5000 requests of the real CloudPhysics trace are replayed by
BUILD/tools/ombra-replay into one through the proxy's gRPC VolumeService
and into the other through its NBD export, with --expect-zeros (fresh
volumes read zeros where nothing was written) and --read-back (every
block the run wrote is read and verified at the end: the trace's first
5000 requests are nearly all writes).  Each run must exit 0 with 0
verification failures, 0 errors, reads and writes replayed and every
written block verified.  A replay at trace speed (200x, first 300 requests)
must take at least the scaled trace time.  An unknown volume makes the
tool exit 1 naming the volume.  The daemons must stay up and print no
sanitizer report.

Skipped (exit 77) when the real trace (/work/shared/traces, or
$OMBRA_TRACES_DIR) or python3-libnbd is absent.  Fails (exit 1) naming the
step and showing the replay's output; process logs are dumped.
"""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402
from ombra_test import expect, log, step  # noqa: E402

MIB = 1 << 20
VOL_SIZE = 512 * MIB
LIMIT = 5000


def trace_path():
    d = os.environ.get("OMBRA_TRACES_DIR") or os.path.normpath(
        os.path.join(ot.srcdir(), "..", "shared", "traces"))
    return os.path.join(d, "cloudPhysicsIO.vscsi.zst")


def replay(args, timeout=400):
    """Run ombra-replay with args; (exit status, stdout, stderr)."""
    tool = ot.find_binary("ombra-replay", "tools")
    r = subprocess.run([tool] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def check_report(rc, out, err, what, limit, read_back=True):
    try:
        rep = json.loads(out)
    except ValueError:
        raise ot.TestError("%s: exit %d, no JSON report; stderr:\n%s" % (what, rc, err))
    log("%s: %d requests (%d reads, %d writes) in %.1fs, %s ops/s, read p99 %s ms, "
        "write p99 %s ms, %d blocks verified, %d failures, %d errors", what,
        rep["requests"]["total"], rep["requests"]["reads"], rep["requests"]["writes"],
        rep["duration_s"], rep["throughput"]["ops_per_s"], rep["latency_ms"]["read"]["p99"],
        rep["latency_ms"]["write"]["p99"], rep["verification"]["blocks_checked"],
        rep["verification"]["failures"], rep["errors"]["count"])
    expect(rc == 0 and rep["ok"], "%s: exit %d, report:\n%s\nstderr:\n%s",
           what, rc, out, err)
    expect(rep["verification"]["failures"] == 0, "%s: verification failures", what)
    expect(rep["errors"]["count"] == 0, "%s: errors %s", what, rep["errors"]["first"])
    expect(rep["requests"]["total"] == limit, "%s: %d requests replayed, want %d",
           what, rep["requests"]["total"], limit)
    if read_back:
        rb = rep["read_back"]
        log("%s: read-back of %d written blocks in %.1fs, %d failures", what,
            rb["blocks"], rb["duration_s"], rb["failures"])
        expect(rep["requests"]["reads"] > 0 and rep["requests"]["writes"] > 0,
               "%s: want reads and writes", what)
        expect(rb["blocks"] > 1000 and rb["failures"] == 0,
               "%s: read-back %s", what, rb)
        expect(rep["verification"]["blocks_checked"] >= rb["blocks"],
               "%s: %d blocks verified", what, rep["verification"]["blocks_checked"])
    return rep


def main():
    with oc.LocalCluster("replay", regions=1) as c:
        with step("cluster up"):
            c.up()
        px = c.proxy()
        for name in ("rgrpc", "rnbd"):
            c.create_volume(name, VOL_SIZE, segment_size=MIB, replicas=2)
            c.wait_volume_served(name)
        common = ["--trace", trace_path(), "--limit", str(LIMIT), "--json",
                  "--no-progress", "--expect-zeros", "--read-back"]
        with step("replay %d requests via grpc" % LIMIT):
            rc, out, err = replay(common + ["--endpoint", px["grpc"], "--volume", "rgrpc"])
            check_report(rc, out, err, "grpc", LIMIT)
        with step("replay %d requests via nbd" % LIMIT):
            rc, out, err = replay(common + ["--via", "nbd", "--nbd-endpoint", px["nbd"],
                                            "--volume", "rnbd"])
            check_report(rc, out, err, "nbd", LIMIT)
        with step("replay at 200x trace speed"):
            # records 0..299 span (ts[299] - ts[0]) us; at 200x the run
            # cannot be shorter than that / 200
            rc, out, err = replay(["--trace", trace_path(), "--limit", "300", "--json",
                                   "--no-progress", "--speed", "200x", "--endpoint",
                                   px["grpc"], "--volume", "rgrpc"])
            rep = check_report(rc, out, err, "200x", 300, read_back=False)
            from ombra_replay import traces
            with traces.Reader(trace_path()) as r:
                ts = [q.ts_us for _, q in zip(range(300), r)]
            span = (ts[-1] - ts[0]) / 1e6 / 200
            expect(rep["duration_s"] >= span * 0.99, "200x replay took %.3fs, trace "
                   "time / 200 is %.3fs", rep["duration_s"], span)
        with step("unknown volume"):
            rc, out, err = replay(["--trace", trace_path(), "--limit", "10",
                                   "--endpoint", px["grpc"], "--volume", "nosuchvol"])
            expect(rc == 1 and "unknown volume 'nosuchvol'" in err,
                   "unknown volume: exit %d, stderr %r", rc, err)
        c.check_alive()
        c.check_sanitizers()


if __name__ == "__main__":
    if not os.path.exists(trace_path()):
        sys.stderr.write("SKIP: real trace %s absent\n" % trace_path())
        sys.exit(77)
    try:
        import nbd  # noqa: F401
    except ImportError:
        sys.stderr.write("SKIP: python3-libnbd not installed\n")
        sys.exit(77)
    sys.path.insert(0, os.path.join(ot.srcdir(), "tools"))
    ot.run_test(main, 900)
