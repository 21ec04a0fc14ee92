"""test_http: metad's HTTP endpoint serves valid Prometheus text with the
documented metrics, and /healthz follows leadership.

Three members.  On every member /metrics must parse as text format 0.0.4
(HELP/TYPE at most once per name and before its samples, valid sample
lines), carry the documented metric names with their types, and agree with
GetClusterStatus (term, is_leader, applied index).  The leader's RPC
counters and apply latency histogram must count the calls just made.
/healthz is 200 on a healthy cluster, 404 for unknown paths, and turns
503 on the last member standing once it has lost its quorum.

Fails (exit 1) naming the member, the metric and the offending line."""

import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402

# Documented metrics of ombra-metad and their Prometheus types.
METRICS = {
    "ombra_metad_raft_term": "gauge",
    "ombra_metad_is_leader": "gauge",
    "ombra_metad_commit_index": "gauge",
    "ombra_metad_applied_index": "gauge",
    "ombra_metad_last_log_index": "gauge",
    "ombra_metad_apply_latency_seconds": "histogram",
    "ombra_rpc_requests_total": "counter",
    "ombra_rpc_request_duration_seconds": "histogram",
    "ombra_metad_snapshots_taken_total": "counter",
    "ombra_metad_snapshots_restored_total": "counter",
}

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(r"^(%s)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$" % NAME)
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')
VALUE = re.compile(r"^([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?Inf|NaN)$")


def parse_labels(s):
    out, pos = {}, 0
    while pos < len(s):
        mt = LABEL.match(s, pos)
        if not mt:
            raise ot.TestError("bad label set {%s} at %d" % (s, pos))
        out[mt.group(1)] = mt.group(2)
        pos = mt.end()
    return out


def parse_prometheus(text):
    """Validate text format 0.0.4; return ({name: type}, [(name, labels,
    value)])."""
    types, helps, samples = {}, set(), []
    seen_samples = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                ot.expect(re.fullmatch(NAME, name), "line %d: bad name %r", n, name)
                if parts[1] == "TYPE":
                    ot.expect(name not in types, "line %d: second TYPE for %s", n, name)
                    ot.expect(name not in seen_samples,
                              "line %d: TYPE for %s after its samples", n, name)
                    ot.expect(len(parts) == 4 and parts[3] in
                              ("counter", "gauge", "histogram", "summary", "untyped"),
                              "line %d: bad TYPE line %r", n, line)
                    types[name] = parts[3]
                else:
                    ot.expect(name not in helps, "line %d: second HELP for %s", n, name)
                    helps.add(name)
            continue
        mt = SAMPLE.match(line)
        ot.expect(mt, "line %d: not a sample line: %r", n, line)
        name, labels, value = mt.group(1), mt.group(3) or "", mt.group(4)
        ot.expect(VALUE.match(value), "line %d: bad value %r", n, value)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        fam = name if name in types else base
        seen_samples.add(fam)
        samples.append((name, parse_labels(labels), float(value)))
    return types, samples


def values(samples, name, **labels):
    return [v for n, lb, v in samples
            if n == name and all(lb.get(k) == str(x) for k, x in labels.items())]


def one(samples, name):
    vs = values(samples, name)
    ot.expect(len(vs) == 1, "%s: expected one sample, got %d", name, len(vs))
    return vs[0]


def check_histogram(samples, name):
    """Cumulative buckets ending in +Inf equal to _count, per label set."""
    groups = {}
    for n, lb, v in samples:
        if n == name + "_bucket":
            key = tuple(sorted((k, x) for k, x in lb.items() if k != "le"))
            groups.setdefault(key, []).append((lb.get("le"), v))
    ot.expect(groups, "%s has no _bucket samples", name)
    for key, buckets in groups.items():
        les = [float(le) if le != "+Inf" else float("inf") for le, _ in buckets]
        ot.expect(les == sorted(les) and les[-1] == float("inf"),
                  "%s%s: buckets not ascending to +Inf: %s", name, key, les)
        counts = [v for _, v in buckets]
        ot.expect(counts == sorted(counts), "%s%s: buckets not cumulative: %s",
                  name, key, counts)
        cnt = [v for n, lb, v in samples if n == name + "_count"
               and tuple(sorted(lb.items())) == key]
        ot.expect(len(cnt) == 1 and cnt[0] == counts[-1],
                  "%s%s: _count %s != +Inf bucket %s", name, key, cnt, counts[-1])
    return groups


def main():
    m = ot.pb()
    with ot.Cluster(3, name="http") as c:
        c.start()
        leader = c.wait_leader(timeout=30)
        cl = c.client()
        with ot.step("make some calls"):
            cl.call("AddRegion", m.admin.AddRegionRequest(name="r1", request_id=ot.request_id()))
            for i in range(5):
                cl.call("CreateVolume", m.volume.CreateVolumeRequest(
                    name="h%d" % i, size_bytes=1 << 30, home_region="r1",
                    request_id=ot.request_id()))
            for i in range(3):
                ot.status_code(cl.call, "GetVolume", m.volume.GetVolumeRequest(name="nope"))
            c.wait_converged(timeout=30)

        with ot.step("/healthz is 200 on every member"):
            for mm in c.members.values():
                code, body = ot.http_get(mm.http, "/healthz")
                ot.expect(code == 200, "metad-%d /healthz: %d %r", mm.id, code, body)

        with ot.step("unknown path is 404"):
            code, _ = ot.http_get(leader.http, "/no-such-page")
            ot.expect(code == 404, "/no-such-page answered %d", code)

        with ot.step("/metrics is valid and has the documented metrics"):
            for mm in c.members.values():
                # Gauges are refreshed by a timer on the loop (100 ms) and a
                # follower learns the commit index with the next heartbeat:
                # the cluster is idle now, so the gauges must match the
                # member's own GetClusterStatus within a few refreshes.  A
                # lag is fine, a wrong value not.
                deadline = time.monotonic() + 5
                while True:
                    st = mm.status()
                    code, text = ot.http_get(mm.http, "/metrics")
                    ot.expect(code == 200, "metad-%d /metrics: %d", mm.id, code)
                    types, samples = parse_prometheus(text)
                    gauges = {n: one(samples, n) for n in (
                        "ombra_metad_is_leader", "ombra_metad_raft_term",
                        "ombra_metad_applied_index", "ombra_metad_commit_index")}
                    want = {"ombra_metad_is_leader": 1.0 if mm.id == leader.id else 0.0,
                            "ombra_metad_raft_term": float(st.term),
                            "ombra_metad_applied_index": float(st.applied_index),
                            "ombra_metad_commit_index": float(st.commit_index)}
                    if gauges == want or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                ot.log("metad-%d /metrics: %s", mm.id, "; ".join(
                    l for l in text.splitlines() if l.startswith("ombra_metad_")
                    and "_bucket" not in l))
                for name, typ in METRICS.items():
                    ot.expect(types.get(name) == typ, "metad-%d: %s has TYPE %r, expected %s",
                              mm.id, name, types.get(name), typ)
                ot.expect(gauges == want, "metad-%d: gauges %s, GetClusterStatus says %s",
                          mm.id, gauges, want)
                for name in ("ombra_metad_apply_latency_seconds",
                             "ombra_rpc_request_duration_seconds"):
                    if values(samples, name + "_count"):
                        check_histogram(samples, name)

        with ot.step("the leader counted its RPCs and applies"):
            deadline = time.monotonic() + 10
            while True:
                _, text = ot.http_get(leader.http, "/metrics")
                _, samples = parse_prometheus(text)
                created = sum(values(samples, "ombra_rpc_requests_total",
                                     method="CreateVolume"))
                notfound = [lb for n, lb, v in samples
                            if n == "ombra_rpc_requests_total"
                            and lb.get("method") == "GetVolume"
                            and lb.get("code") in ("NOT_FOUND", "5")]
                if created >= 5 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            ot.expect(created >= 5, "leader counted %s CreateVolume calls, made 5", created)
            ot.expect(notfound, "no ombra_rpc_requests_total{method=\"GetVolume\","
                      "code=NOT_FOUND} sample on the leader")
            groups = check_histogram(samples, "ombra_metad_apply_latency_seconds")
            total = sum(b[-1][1] for b in groups.values())
            ot.expect(total >= 6, "apply latency histogram counted %s applies, made 6", total)
            check_histogram(samples, "ombra_rpc_request_duration_seconds")

        with ot.step("/healthz turns 503 on a member that lost its quorum"):
            others = [mm for mm in c.members.values() if mm.id != leader.id]
            for mm in others:
                mm.kill()
            code, body = ot.wait_until(
                lambda: (lambda r: r if r[0] == 503 else None)(
                    ot.http_get(leader.http, "/healthz")),
                20, "/healthz 503 on the isolated member")
            ot.expect(body.strip(), "503 without a reason")
            ot.log("isolated member says: %s", body.strip())
            for mm in others:
                mm.start()
            c.wait_leader(timeout=30)
            ot.wait_until(lambda: ot.http_get(leader.http, "/healthz")[0] == 200,
                          20, "/healthz 200 again")

        with ot.step("clean shutdown"):
            c.stop_all_checked()


if __name__ == "__main__":
    ot.run_test(main, timeout=300)
