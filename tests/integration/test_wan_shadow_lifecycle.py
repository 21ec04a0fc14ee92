"""test_wan_shadow_lifecycle: shadows follow the reads (issue 5), in the
netns testbed with real WAN delays (deploy/testbed/ombra-testbed, default
one-way delays r1-r2 25 ms, r1-r3 40, r2-r3 30; docs/testbed.md).

Volume "ws" (16 MiB, 1 MiB segments, homed in r1, 2 copies), every
segment written through r1's proxy, with the shadow policy regions r2,r3,
create_reads_per_s 0.2, idle_ms IDLE_MS, budget 4 MiB per region
(docs/metad.md "Shadow policy and access statistics").  From the observer
namespace, reads (EVENTUAL, 64 KiB, every segment in turn) go through
r3's proxy for up to HOT_S seconds.  A sampler reads metad's shard map
every 0.5 s for the whole test.  Checked:
- shadows appear in r3, where the reads are hot, and only there (r2 has
  no reads: none in r2, none in the home region r1);
- r3's proxy then serves reads from them: its read parts served in r3
  (ombra_proxy_read_parts_total where="local") grow while the reads
  answer the data written;
- after the reads stop, every shadow disappears, not before IDLE_MS after
  the last read and within IDLE_MS + 15 s;
- in no sample do a region's shadows of the volume exceed the policy's
  byte budget (count x segment size), nor a segment have more than
  max_shadows (1);
- no daemon log holds a sanitizer report.

Skipped (exit 77) without root/netns/NFQUEUE/ombra-netdelay (as
test_testbed.sh).  Fails (exit 1) naming the step and what the samples
showed, with the daemon logs.
"""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402
import testbed as tbh  # noqa: E402
from ombra_test import expect, log, step  # noqa: E402

MIB = 1 << 20
VOL = "ws"
SEGS = 16
BUDGET = 4 * MIB
IDLE_MS = 6000
HOT_S = 45
SAMPLE_S = 0.5


def seg_data(i):
    return bytes(((i * 7 + k) % 251) for k in range(64 << 10))


class Sampler(threading.Thread):
    """Reads the shard map every SAMPLE_S s: per sample (monotonic time,
    {region: [segment]}), and the budget/max_shadows violations seen."""

    def __init__(self, t):
        super().__init__(daemon=True)
        self.t = t
        self.samples = []
        self.violations = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                vol, segs, _ = self.t.shard_map(VOL)
            except Exception as e:  # noqa: BLE001 - counted, reported at the end
                self.errors += 1
                log("sampler: shard map: %s", e)
                self.stop.wait(SAMPLE_S)
                continue
            per = {}
            for p in segs:
                regions = [s.region for s in p.shadows]
                if len(p.shadows) > 1:
                    self.violations.append("%.1f s: segment %d has %d shadows %s"
                                           % (now, p.index, len(p.shadows), regions))
                for r in regions:
                    per.setdefault(r, []).append(p.index)
            for r, idx in per.items():
                if len(idx) * vol.segment_size_bytes > BUDGET:
                    self.violations.append("%.1f s: region %s holds %d shadows (%d bytes) > "
                                           "budget %d: %s" % (now, r, len(idx),
                                                              len(idx) * vol.segment_size_bytes,
                                                              BUDGET, idx))
            self.samples.append((now, per))
            self.stop.wait(max(0.0, SAMPLE_S - (time.monotonic() - now)))

    def last(self):
        return self.samples[-1] if self.samples else (0, {})


def main():
    pb = oc.stubs()
    with tbh.Testbed("ws%d" % (os.getpid() % 10000)) as t:
        with step("testbed up"):
            t.up()
            t.enter_wan()
        with step("volume %s homed in r1, written through r1" % VOL):
            t.ctl("volume", "create", VOL, "--size", "%dMiB" % SEGS, "--region", "r1",
                  "--replicas", "2")
            r1 = t.volume_stub("r1")
            for i in range(SEGS):
                r1.Write(pb.volume.WriteRequest(volume=VOL, offset_bytes=i * MIB,
                                                data=seg_data(i), request_id=ot.request_id()),
                         timeout=30)
        with step("shadow policy regions r2,r3, budget 4 MiB, idle %d ms" % IDLE_MS):
            t.ctl("volume", "policy", VOL, "--regions", "r2,r3", "--create-reads-per-s",
                  "0.2", "--idle-ms", str(IDLE_MS), "--budget", "4MiB", "--max-shadows", "1")
        sampler = Sampler(t)
        sampler.start()
        r3 = t.volume_stub("r3")
        with step("reads through r3's proxy until r3 holds shadows that serve them"):
            p0 = t.read_parts("r3")
            t0 = time.monotonic()
            served = False
            n = 0
            while time.monotonic() - t0 < HOT_S:
                i = n % SEGS
                n += 1
                r = r3.Read(pb.volume.ReadRequest(volume=VOL, offset_bytes=i * MIB,
                                                  length_bytes=64 << 10,
                                                  consistency=pb.common.EVENTUAL), timeout=30)
                expect(r.data == seg_data(i), "read of segment %d through r3: wrong data", i)
                if n % SEGS == 0:
                    _, per = sampler.last()
                    p1 = t.read_parts("r3")
                    if per.get("r3") and p1["local"] - p0["local"] >= 4 * SEGS:
                        served = True
                        break
            last_read = time.monotonic()
            _, per = sampler.last()
            p1 = t.read_parts("r3")
            log("%d reads in %.1f s; shadows %s; r3 read parts local %d remote %d", n,
                last_read - t0, per, p1["local"] - p0["local"], p1["remote"] - p0["remote"])
            expect(served, "after %.0f s of reads through r3: shadows %s, %d read parts "
                   "served in r3", HOT_S, per, p1["local"] - p0["local"])
            expect(set(per) == {"r3"}, "shadows outside r3: %s", per)
        with step("no reads: shadows dropped after idle_ms (%d ms)" % IDLE_MS):
            ot.wait_until(lambda: sampler.samples[-1][0] > last_read and
                          not sampler.samples[-1][1], IDLE_MS / 1000.0 + 15,
                          "every shadow of %s dropped" % VOL, interval=SAMPLE_S)
            # the first sample without shadows after the reads stopped
            gone = next(ts for ts, per in sampler.samples if ts > last_read and not per)
            had = [ts for ts, per in sampler.samples if ts > last_read and per]
            log("shadows gone %.1f s after the last read (last seen %.1f s after)",
                gone - last_read, (had[-1] - last_read) if had else -1)
            expect(had and had[-1] - last_read >= IDLE_MS / 1000.0 - SAMPLE_S,
                   "shadows dropped %.1f s after the last read, before idle_ms %d ms",
                   (had[-1] - last_read) if had else 0, IDLE_MS)
        sampler.stop.set()
        sampler.join(10)
        with step("budget and max_shadows in every sample"):
            shown = max((len(per.get("r3", [])) for _, per in sampler.samples), default=0)
            log("%d samples (%d failed), at most %d shadows in r3", len(sampler.samples),
                sampler.errors, shown)
            expect(not sampler.violations, "%d violations: %s", len(sampler.violations),
                   "; ".join(sampler.violations[:5]))
            expect(len(sampler.samples) >= 20 and sampler.errors <= len(sampler.samples) // 10,
                   "%d samples, %d failed", len(sampler.samples), sampler.errors)
        t.check_sanitizers()


if __name__ == "__main__":
    tbh.skip_unless_testbed("wsp%d" % (os.getpid() % 10000))
    ot.run_test(main, 400)
