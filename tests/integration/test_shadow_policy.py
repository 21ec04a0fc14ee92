"""test_shadow_policy: a volume's shadow policy (AdminService.SetShadowPolicy
and `ombractl volume policy`) and the metad leader's evaluator that turns
the proxies' access statistics (MetaService.ReportAccessStats) into shadows
(docs/metad.md "Shadow policy and access statistics").

A real cluster from deploy/ombra-local with two regions (r1, r2: one
metad, two stored, one proxy each).  Volume "v" (8 segments of 1 MiB, home
r1).  Checked:
- `ombractl volume policy v` shows "none"; setting fields through ombractl
  changes only those fields (read-modify-write), GetVolume shows them, and
  a second ombractl call keeps the earlier fields;
- bad policies are refused with a message naming what is wrong: through
  ombractl (a bad number exits 2 before anything is sent, the home region
  or an unknown region exits 1 with metad's INVALID_ARGUMENT) and through
  gRPC (idle_ms below 1 s, max_shadows 9, NaN create rate, the home region);
- reports of hot reads of segments 0..7 from region r2, sent as a proxy
  would (a real ReportAccessStats call to the leader; followers answer
  UNAVAILABLE with a leader hint), make shadows appear on r2's nodes, at
  most budget_bytes / segment size of them (budget 3 MiB: 3 shadows), none
  in the home region, one per segment; `ombractl volume shards v` shows
  them;
- after the reports stop, the shadows are dropped once idle_ms (3 s) has
  passed;
- `ombractl volume policy v --clear` removes the policy.

Fails (exit 1) with the step, what was seen and the process logs."""

import math
import os
import subprocess
import sys
import time

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402

MIB = 1 << 20
SEGS = 8
IDLE_MS = 3000
BUDGET_S = 150


class Ctl:
    """ombractl against the cluster's metad members."""

    def __init__(self, c):
        self.argv = [ot.find_binary("ombractl", "cli"), "--endpoints", c.metad_endpoints]

    def run(self, *args):
        r = subprocess.run(self.argv + list(args), capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        ot.log("ombractl %s -> %d\n%s%s", " ".join(args), r.returncode, r.stdout, r.stderr)
        return r

    def ok(self, *args):
        r = self.run(*args)
        ot.expect(r.returncode == 0, "ombractl %s exited %d: %s", " ".join(args),
                  r.returncode, r.stderr.strip())
        return r.stdout

    def refused(self, code, needle, *args):
        r = self.run(*args)
        ot.expect(r.returncode == code, "ombractl %s exited %d, expected %d: %s",
                  " ".join(args), r.returncode, code, r.stderr.strip())
        ot.expect(needle in r.stderr, "ombractl %s: message %r lacks %r",
                  " ".join(args), r.stderr.strip(), needle)


class Meta:
    """MetaService calls on the leader, following leader hints."""

    def __init__(self, c):
        ot.pb()
        import meta_pb2
        import meta_pb2_grpc
        self.pb, self.grpc_mod = meta_pb2, meta_pb2_grpc
        self.endpoints = c.metad_endpoints.split(",")
        self.chans = {}
        self.target = self.endpoints[0]
        self.hinted = False

    def call(self, method, req, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            ch = self.chans.get(self.target)
            if ch is None:
                ch = self.chans[self.target] = ot.channel(self.target)
            try:
                return getattr(self.grpc_mod.MetaServiceStub(ch), method)(req, timeout=3)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                hint = ot.leader_hint(e)
                if hint:
                    self.hinted = True
                    self.target = hint
                else:
                    i = self.endpoints.index(self.target) if self.target in self.endpoints else -1
                    self.target = self.endpoints[(i + 1) % len(self.endpoints)]
                    time.sleep(0.1)

    def close(self):
        for ch in self.chans.values():
            ch.close()


def shadows(c, name):
    """{segment: [(node id, region)]} from metad's shard map."""
    _, segs, nodes = c.shard_map(name)
    return {p.index: [(s.node_id, nodes[s.node_id].region if s.node_id in nodes else "?")
                      for s in p.shadows] for p in segs}


def report_hot(meta, vol_id):
    req = meta.pb.AccessStatsRequest(region="r2", proxy="r2/test-client:0", interval_ms=1000)
    for s in range(SEGS):
        req.segments.add(volume_id=vol_id, segment_index=s, reads=200, read_bytes=200 * 4096)
    resp = meta.call("ReportAccessStats", req)
    ot.expect(resp.report_interval_ms > 0, "report_interval_ms is 0")


def main():
    with oc.LocalCluster("shadowpol", regions=2) as c:
        run(c)
        c.check_sanitizers()


def run(c):
    m = ot.pb()
    with ot.step("cluster up, volume v homed in r1"):
        c.up()
        admin = c.admin()
        vol = c.create_volume("v", SEGS * MIB, replicas=2, region="r1")
        ctl = Ctl(c)
        meta = Meta(c)

    with ot.step("ombractl volume policy: show, set fields, merge"):
        out = ctl.ok("volume", "policy", "v")
        ot.expect("none" in out, "a new volume shows a policy: %s", out)
        ctl.ok("volume", "policy", "v", "--regions", "r2", "--create-reads-per-s", "0.5",
               "--idle-ms", str(IDLE_MS))
        out = ctl.ok("volume", "policy", "v", "--budget", "3MiB", "--max-shadows", "1")
        ot.expect("regions:             r2\n" in out and "unlimited" not in out,
                  "policy output: %s", out)
        pol = admin.call("GetVolume", m.volume.GetVolumeRequest(name="v")).volume.shadow_policy
        ot.expect(list(pol.regions) == ["r2"] and math.isclose(pol.create_reads_per_s, 0.5)
                  and pol.idle_ms == IDLE_MS and pol.budget_bytes == 3 * MIB
                  and pol.max_shadows == 1 and not pol.auto_promote_shadows,
                  "merged policy is %s", pol)
        js = ctl.ok("--json", "volume", "policy", "v")
        ot.expect('"budget_bytes"' in js and '"r2"' in js, "--json output: %s", js)

    with ot.step("bad policies are refused with a message"):
        ctl.refused(2, "expected", "volume", "policy", "v", "--idle-ms", "soon")
        ctl.refused(2, "expected on or off", "volume", "policy", "v", "--auto-promote", "yes")
        ctl.refused(2, "--clear", "volume", "policy", "v", "--clear", "--budget", "1MiB")
        ctl.refused(1, "INVALID_ARGUMENT", "volume", "policy", "v", "--regions", "r1")
        ctl.refused(1, "INVALID_ARGUMENT", "volume", "policy", "v", "--regions", "r9")
        ctl.refused(1, "NOT_FOUND", "volume", "policy", "nosuchvolume", "--budget", "1MiB")
        bad = [m.common.ShadowPolicy(idle_ms=10),
               m.common.ShadowPolicy(max_shadows=9),
               m.common.ShadowPolicy(create_reads_per_s=float("nan")),
               m.common.ShadowPolicy(regions=["r1"]),
               m.common.ShadowPolicy(regions=["r2", "r2"])]
        for p in bad:
            code, msg = ot.status_code(admin.call, "SetShadowPolicy",
                                       m.admin.SetShadowPolicyRequest(
                                           name="v", policy=p, request_id=ot.request_id()))
            ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT and msg,
                      "policy %s: %s %s", p, code, msg)
        pol2 = admin.call("GetVolume", m.volume.GetVolumeRequest(name="v")).volume.shadow_policy
        ot.expect(pol2 == pol, "a refused policy changed it: %s", pol2)

    with ot.step("hot reads from r2 make shadows there, within the budget"):
        r2_ids = {n.id for n in c.nodes().values() if n.region == "r2"}
        deadline = time.monotonic() + 30
        while True:
            report_hot(meta, vol.id)
            sh = shadows(c, "v")
            placed = [(s, n) for s, ns in sh.items() for n in ns]
            ot.expect(len(placed) <= 3, "budget of 3 MiB exceeded: %s", sh)
            if len(placed) == 3:
                break
            ot.expect(time.monotonic() < deadline, "after 30 s of reports only %s", sh)
            time.sleep(0.5)
        for s, (nid, region) in placed:
            ot.expect(nid in r2_ids and region == "r2", "segment %d shadow on %d (%s)",
                      s, nid, region)
        ot.expect(all(len(ns) <= 1 for ns in sh.values()), "max_shadows 1 exceeded: %s", sh)
        for _ in range(4):  # still hot: nothing added beyond the budget
            report_hot(meta, vol.id)
            time.sleep(0.5)
            sh = shadows(c, "v")
            ot.expect(sum(len(ns) for ns in sh.values()) <= 3, "budget exceeded: %s", sh)
        out = ctl.ok("volume", "shards", "v")
        ot.expect(out.count("@r2") >= 3, "ombractl volume shards shows no r2 shadows:\n%s",
                  out)

    with ot.step("reports stop: shadows are dropped after idle_ms"):
        stopped = time.monotonic()
        ot.wait_until(lambda: not any(shadows(c, "v").values()), 30,
                      "shadows to be dropped after %d ms idle" % IDLE_MS, interval=0.5)
        gone = time.monotonic() - stopped
        ot.log("shadows dropped %.1f s after the last report", gone)
        ot.expect(gone >= IDLE_MS / 1000.0 - 1.5, "dropped after %.1f s, before idle_ms", gone)

    with ot.step("ombractl volume policy --clear"):
        out = ctl.ok("volume", "policy", "v", "--clear")
        ot.expect("cleared" in out and "none" in out, "--clear output: %s", out)
        v = admin.call("GetVolume", m.volume.GetVolumeRequest(name="v")).volume
        ot.expect(not v.HasField("shadow_policy"), "policy still set: %s", v.shadow_policy)
        meta.close()


if __name__ == "__main__":
    ot.run_test(main, BUDGET_S)
