"""test_wan_locality: reads of a volume homed in r1, replayed from r2, are
served in r2 by its shadows, as fast as from r1 (issue 5), in the netns
testbed with real WAN delays (deploy/testbed/ombra-testbed, default
one-way delays r1-r2 25 ms, r1-r3 40, r2-r3 30; docs/testbed.md).

Volume "wl" (8 GiB, 1 MiB segments, homed in r1, 2 copies) with the
shadow policy regions=r2 (a shadow per segment read in r2 at least once
per 100 s, idle 10 min, no byte budget).  The first LIMIT requests (a
prefix) of the CloudPhysics trace are replayed with ombra-replay --via nbd, run inside
the region's namespace (`ombra-testbed exec`), three times:

1. warm-up through r2's proxy (--expect-zeros, --save-state A): the reads
   make metad place shadows in r2; the test waits until every segment the
   prefix reads has a filled shadow in r2 that is not behind;
2. measured through r2's proxy (--load-state A, --save-state B): r2's
   proxy is the volume's single writer, so its STRONG reads may use the
   shadows that have its latest writes (an NBD client of the test stays
   attached to r2's proxy during passes 1 and 2, so the proxy keeps the
   writer lease, and what it learned of the segments' versions, between
   them);
3. the same measured replay through r1's proxy (--load-state B), the
   comparison point: reads at the home copies in r1.

Run time: about 6 to 7 minutes, longer than the other issue-5 tests.
The trace's first ~5000 requests are small writes that overlap one
another, so ombra-replay issues them one after the other (a request
never starts while an overlapping one is in flight), and from r2 each
one costs a WAN round trip to the primary in r1 (about 66 ms).  Its first
reads come after request 5000, so a prefix with enough reads (LIMIT 8000:
7540 writes, 460 reads in 47 segments) takes about 3 minutes per pass
through r2.

Asserted: each replay has 0 verification failures (stale or wrong
data: every block read is checked against the last acknowledged write or
the loaded state) and 0 errors; in pass 2 at least 90% of the read parts
of r2's proxy (ombra_proxy_read_parts_total, where="local" against all)
were served in r2; no daemon log holds a sanitizer report; in the
optimized build (OMBRA_OPTIMIZED=yes: no --enable-debug and no
--enable-sanitize, as tests/run-all's second pass and deploy/main-job
build), pass 2's read p50 is at most P50_SLACK_MS (2 ms) above pass 3's.
Under ASan and -O0 that goal is logged (MET or MISSED), not asserted:
the sanitizers slow every step of a read, and r2's reads have more steps
that wait (the gap was 3.3 to 5.2 ms there before 2026-12-08).  Optimized
gaps with the changes of 2026-12-08 (below): 1.13 and 1.18 ms.  Also
logged: the read-path counters of both
proxies (reasons reads went remote, refusals by reason, propagation
waits, mean read latency at the proxies and at the storage nodes).

History of the p50 goal (optimized build, r2 against r1): 3.67 against
1.54 ms before 2026-12-07; 3.50 and 3.61 against 1.41 and 1.47 after
"reads first" (docs/proxy.md); 2.38 against 1.14 ms (gap 1.24) with the
two changes of the fifth session (2026-12-07):
- ombra-replay counted a request's latency from the top of its loop turn,
  so a read was also charged for generating and sending the writes
  started before it in that turn; it now counts from the request's
  submission (docs/replay.md).  Through r2 the time from a read's clock
  start to the loop's next wait was 0.39 ms p50 (0.17 through r1).
- the proxy lingers 4 ms before it propagates a segment's writes to its
  shadows (docs/proxy.md "Linger"), so r2's shadow applies no longer run
  next to the read the replay sends right after each write is answered.
Those gave gaps of 1.24 to 2.65 ms (met in 4 of 6 runs, so not asserted).
Then three changes of 2026-12-08, after per-read timestamps showed that
r2's proxy loop took 0.72 ms p50 to wake up for each answer (the machine
idles between the WAN writes; r1's loop: 0.03 ms):
- ombra-proxy busy-polls its loop while a read at a copy in its region
  is in flight, yielding the CPU each turn (docs/proxy.md "Busy
  polling");
- a gRPC server gets a call with its request and sends a unary reply
  with its status in one batch (two hand-offs per call instead of four),
  and each process has one completion queue, so the thread that polls
  is the one that hands the answer over (docs/rpc.md).
Gaps 1.13 and 1.18 ms (2.04 against 0.86 ms in the second).
Under sanitizers the gap was 3.3 to 5.2 ms before these changes.

Where the rest of the gap comes from (fourth session, per-read
timestamps and perf, docs/testbed.md): the replay's queue is full of
60 ms WAN writes, so each read starts the moment one of them is
answered, and the machine is mostly idle between those moments; each
write costs r2's proxy about 1 ms of CPU (two thirds in the kernel's TCP
path through the testbed's veth, bridge and NFQUEUE) and every step of
a read wakes a thread on an idle CPU.  Through r1 the writes are answered
in 5 ms and the machine stays busy.  Keeping the CPUs out of their idle
state (a scratch run with two SCHED_IDLE spinners) brought the storage
nodes' mean read time through r2 down to r1's (0.56 against 0.51 ms).

Skipped (exit 77) without root/netns/NFQUEUE/ombra-netdelay (as
test_testbed.sh), without the trace ($OMBRA_TRACE, $OMBRA_TRACES_DIR,
../shared/traces, /work/shared/traces) or without python3-libnbd.  Fails
(exit 1) naming the step, with the replay reports and the daemon logs.
"""

import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402
import testbed as tbh  # noqa: E402
from ombra_test import expect, log, step  # noqa: E402

MIB = 1 << 20
VOL = "wl"
VOL_SIZE = 8 << 30
LIMIT = 8000  # trace prefix: 7540 writes, 460 reads
QD = 32
LOCAL_MIN = 0.90
P50_SLACK_MS = 2.0


def replay(t, region, trace, name, extra):
    """ombra-replay --via nbd in region's namespace; its JSON report,
    checked for 0 failures and 0 errors."""
    px = t.proxy(region)
    argv = [ot.find_binary("ombra-replay", "tools"), "--trace", trace, "--format", "vscsi",
            "--limit", str(LIMIT), "--queue-depth", str(QD), "--json", "--no-progress",
            "--volume", VOL, "--via", "nbd", "--nbd-endpoint", px["nbd"]] + extra
    t0 = time.monotonic()
    r = t.exec(region, argv, timeout=300, check=False)
    try:
        rep = json.loads(r.stdout)
    except ValueError:
        raise ot.TestError("%s: ombra-replay exited %d without a report:\n%s"
                           % (name, r.returncode, r.stderr[-3000:]))
    with open(os.path.join(t.tmp, "replay-%s.json" % name), "w") as f:
        f.write(r.stdout)
    lat = rep["latency_ms"]["read"]
    log("%s (%s, %.0f s): %d reads %d writes, read p50 %s p95 %s ms, write p50 %s ms, "
        "%d blocks verified, %d failures, %d errors", name, region, time.monotonic() - t0,
        rep["requests"]["reads"], rep["requests"]["writes"], lat["p50"], lat["p95"],
        rep["latency_ms"]["write"]["p50"], rep["verification"]["blocks_checked"],
        rep["verification"]["failures"], rep["errors"]["count"])
    expect(rep["verification"]["failures"] == 0, "%s: %d verification failures, first %s",
           name, rep["verification"]["failures"], rep["verification"].get("first_failures"))
    expect(rep["errors"]["count"] == 0, "%s: %d errors, first %s", name,
           rep["errors"]["count"], rep["errors"]["first"])
    expect(r.returncode == 0 and rep["ok"] and rep["requests"]["total"] == LIMIT,
           "%s: exit %d, %d requests, report %s", name, r.returncode,
           rep["requests"]["total"], r.stdout[:2000])
    return rep


def layer_means(t, region):
    """{layer: (sum s, count, count <= 2.5 ms)} of the reads of region at
    each layer they cross: the proxy's NBD server (header to reply), its
    I/O engine (submit to completion), the storage nodes' Read calls."""
    def hist(text, name, labels):
        return (oc.parse_metric(text, name + "_sum", labels) or 0,
                oc.parse_metric(text, name + "_count", labels) or 0,
                oc.parse_metric(text, name + "_bucket", dict(labels, le="0.0025")) or 0)
    px = t.metrics("%s-proxy" % region)
    out = {"proxy NBD": hist(px, "nbd_request_seconds", {"op": "read"}),
           "proxy I/O engine": hist(px, "ombra_proxy_read_duration_seconds", {})}
    st = [0, 0, 0]
    for node in ("stored1", "stored2"):
        h = hist(t.metrics("%s-%s" % (region, node)), "ombra_stored_request_duration_seconds",
                 {"method": "Read"})
        st = [a + b for a, b in zip(st, h)]
    out["storage nodes"] = tuple(st)
    return out


def log_layers(before, after):
    """Log each layer's mean read latency and share <= 2.5 ms between two
    layer_means() snapshots."""
    for layer in after:
        s, n, fast = (a - b for a, b in zip(after[layer], before[layer]))
        log("  %s: %d reads, mean %.2f ms, %.0f%% within 2.5 ms", layer, n,
            1000 * s / max(n, 1), 100.0 * fast / max(n, 1))


def main():
    trace = tbh.find_trace()
    sys.path.insert(0, os.path.join(ot.srcdir(), "tools"))
    with tbh.Testbed("wl%d" % (os.getpid() % 10000)) as t:
        with step("testbed up"):
            t.up()
            t.enter_wan()
        with step("volume %s homed in r1, shadow policy regions r2" % VOL):
            t.ctl("volume", "create", VOL, "--size", "8GiB", "--region", "r1",
                  "--replicas", "2")
            t.ctl("volume", "policy", VOL, "--regions", "r2", "--create-reads-per-s", "0.01",
                  "--idle-ms", "600000")
            seg_size = json.loads(t.ctl("volume", "get", VOL, "--json").stdout)
            seg_size = int(seg_size.get("volume", seg_size).get("segment_size_bytes", MIB))
        segs = tbh.trace_read_segments(trace, LIMIT, VOL_SIZE, seg_size)
        log("the first %d requests read %d segments of %d bytes", LIMIT, len(segs), seg_size)
        sa, sb = (os.path.join(t.tmp, "state-%s.json" % n) for n in "ab")
        # An NBD client stays attached to r2's proxy across both r2 passes,
        # as a VM's disk would: the proxy keeps the volume's writer lease
        # (and what it learned under it) from the warm-up to the measured
        # pass instead of releasing it at the warm-up's detach.
        h, p = t.proxy("r2")["nbd"].rsplit(":", 1)
        pin = oc.NbdClient((h, int(p))).connect(VOL)
        with step("warm-up replay through r2"):
            replay(t, "r2", trace, "warm-r2", ["--expect-zeros", "--save-state", sa])
        with step("shadows in r2 of the %d segments read" % len(segs)):
            last = [None]

            def ready():
                last[0] = t.shadow_state(VOL, "r2", segs)
                return not any(last[0])
            try:
                ot.wait_until(ready, 120, "filled current shadows in r2", interval=2)
            except ot.TestError:
                m, f, lg = last[0]
                log("not ready after 120 s: %d without a shadow %s, %d filling, %d lagging",
                    len(m), sorted(m)[:10], len(f), len(lg))
        with step("measured replay through r2"):
            p0, c0, s0 = t.read_parts("r2"), t.read_counters("r2"), layer_means(t, "r2")
            rep2 = replay(t, "r2", trace, "measured-r2", ["--load-state", sa,
                                                          "--save-state", sb])
            p1 = t.read_parts("r2")
            tbh.log_counters(c0, t.read_counters("r2"))
            log_layers(s0, layer_means(t, "r2"))
        pin.disconnect()
        pin.close()
        with step("the same replay through r1"):
            c0, s0 = t.read_counters("r1"), layer_means(t, "r1")
            rep1 = replay(t, "r1", trace, "measured-r1", ["--load-state", sb])
            tbh.log_counters(c0, t.read_counters("r1"))
            log_layers(s0, layer_means(t, "r1"))
        with step("locality and latency"):
            local = p1["local"] - p0["local"]
            total = local + p1["remote"] - p0["remote"]
            log("measured pass: %d of %d read parts served in r2", local, total)
            expect(total > 0 and local >= LOCAL_MIN * total,
                   "measured pass through r2: %d of %d read parts served in r2 (%.1f%%), "
                   "want at least %.0f%%", local, total, 100.0 * local / max(total, 1),
                   100 * LOCAL_MIN)
            a, b = rep2["latency_ms"]["read"]["p50"], rep1["latency_ms"]["read"]["p50"]
            met = a - b <= P50_SLACK_MS
            optimized = os.environ.get("OMBRA_OPTIMIZED") == "yes"
            log("read p50 through r2 %.2f ms, through r1 %.2f ms: goal (within %.0f ms) %s "
                "(%s build; %s)", a, b, P50_SLACK_MS, "MET" if met else "MISSED",
                "optimized" if optimized else "debug/sanitizer",
                "asserted" if optimized else "logged, not asserted: see the header")
            if optimized:
                expect(met, "read p50 through r2 %.2f ms is %.2f ms above r1's %.2f ms, "
                       "want at most %.0f ms", a, a - b, b, P50_SLACK_MS)
        t.check_sanitizers()


if __name__ == "__main__":
    tbh.skip_unless_testbed("wlp%d" % (os.getpid() % 10000))
    try:
        import nbd  # noqa: F401
    except ImportError:
        tbh.skip("python3-libnbd not installed")
    ot.run_test(main, 900)
