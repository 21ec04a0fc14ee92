"""test_prefetch_engine: the proxy's online prefetch engine over real
processes (docs/prediction.md "Online engine in the proxy").

A real cluster from deploy/ombra-local with two regions (r1, r2: one
metad, two stored and one proxy each).  Volume "pf" (8 segments of 1 MiB,
home r1, 2 copies, so both r1 nodes hold home copies and cache entries go
to r2's nodes) is written through r1's proxy; everything below reads
through r2's proxy, whose engine places the cache entries:

- bad arguments of PrefetchData, SetPrefetchHint and GetPrefetchStats get
  INVALID_ARGUMENT (NOT_FOUND for an unknown volume) with a message;
- sequential reads are observed (GetPrefetchStats: reads, predictions of
  the selected predictor) and, once the blocks are pulled, become cache
  entries (cache_bytes, hits, precision; ListCopies on r2's nodes shows
  COPY_CACHE entries of the volume);
- hints: RANDOM stops predictions, SEQUENTIAL and NORMAL are reported;
- PrefetchData pulls a range (bytes_scheduled; again: 0, already cached),
  SetPrefetchHint DONTNEED drops it (cache_bytes 0, the node's entry goes);
- versioned invalidation: a range is prefetched into r2, new data is
  written to it through r1's proxy (the volume's writer), and reads through
  r2 (STRONG, and BOUNDED with the write's token) always return the new
  data, never the cached old one; then r1's proxy stops (releasing the
  writer lease) and the same rounds run with writes through r2's proxy,
  whose own STRONG reads may use its cache entries;
- `ombractl volume prefetch-stats pf --proxy ADDR` (table and --json) and
  the /metrics series of the engine;
- bad --prefetch* options make ombra-proxy exit 2 naming the flag.

StoreService.Pull / ListCopies come from another component: while stored
answers them UNIMPLEMENTED every check that does not need a pulled block
still runs, then the test exits 77 (SKIP) naming what is missing.
Otherwise it fails (exit 1) with the step, what was seen and the process
logs."""

import json
import os
import subprocess
import sys
import time

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402

KIB = 1024
MIB = 1024 * KIB
SEGS = 8
VOL = "pf"
READ = 64 * KIB
BUDGET_S = 150
SKIPPED = []  # pieces of other components found missing


def pattern(seg, gen):
    """1 MiB of segment seg at generation gen (each 4 KiB block differs)."""
    out = bytearray()
    for b in range(MIB // 4096):
        out += bytes([(seg * 31 + b * 7 + gen * 13) % 251 + 1]) * 4096
    return bytes(out)


def rng(off, length):
    return oc.stubs().common.ByteRange(offset_bytes=off, length_bytes=length)


def expect_code(what, code, pattern_, fn, *args, **kw):
    got, msg = ot.status_code(fn, *args, **kw)
    ot.expect(got == code, "%s: expected %s, got %s (%r)", what, code.name,
              got.name, msg)
    ot.expect(msg and pattern_.lower() in msg.lower(),
              "%s: message %r does not name %r", what, msg, pattern_)
    ot.log("%-44s %s: %s", what, code.name, msg)


def stats(c):
    v = oc.stubs().volume
    return c.volume_stub(2).GetPrefetchStats(v.GetPrefetchStatsRequest(volume=VOL),
                                             timeout=10)


def read(c, region, off, length, **kw):
    v = oc.stubs().volume
    return c.volume_stub(region).Read(v.ReadRequest(volume=VOL, offset_bytes=off,
                                                    length_bytes=length, **kw),
                                      timeout=20)


def cache_copies(c, vol_id):
    """{(node name, segment): CopyInfo} of the COPY_CACHE entries of the
    volume on r2's nodes; raises grpc.RpcError (UNIMPLEMENTED)."""
    st = oc.stubs().store
    out = {}
    for sd in c.stored(2):
        resp = c.store_stub(sd["grpc"]).ListCopies(
            st.ListCopiesRequest(volume_id=vol_id), timeout=5)
        for ci in resp.copies:
            if ci.volume_id == vol_id and ci.kind == st.COPY_CACHE:
                out[(sd["name"], ci.segment_index)] = ci
    return out


def present(copies, seg):
    return sum(ci.present_blocks for (n, s), ci in copies.items() if s == seg)


def try_write(c, region, off, buf):
    """The WriteResponse, or None while the writer lease is elsewhere."""
    v = oc.stubs().volume
    try:
        return c.volume_stub(region).Write(v.WriteRequest(volume=VOL, offset_bytes=off,
                                                          data=buf), timeout=20)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        ot.log("write through r%d: %s (retrying)", region, e.details())
        return None


def missing(what, err):
    SKIPPED.append("%s (%s)" % (what, err))
    ot.log("missing: %s", SKIPPED[-1])


def options():
    """Bad prefetch options make ombra-proxy exit 2 naming the flag; --help
    lists them."""
    proxy_bin = ot.find_binary("ombra-proxy", "proxy")
    ok = ["--region", "r1", "--listen", "127.0.0.1:1", "--metad", "127.0.0.1:2"]
    for args, want in (
            (["--prefetch", "maybe"], "--prefetch 'maybe'"),
            (["--prefetch-budget", "fast"], "--prefetch-budget 'fast'"),
            (["--prefetch-cache", "4KiB"], "--prefetch-cache '4KiB'"),
            (["--prefetch-model", "/nonexistent/model"], "--prefetch-model")):
        r = subprocess.run([proxy_bin] + ok + args, capture_output=True, text=True,
                           timeout=20)
        ot.expect(r.returncode == 2 and want in r.stderr,
                  "ombra-proxy %s: exit %d, stderr %r (want 2 and %r)",
                  " ".join(args), r.returncode, r.stderr, want)
    r = subprocess.run([proxy_bin, "--help"], capture_output=True, text=True, timeout=20)
    ot.expect(r.returncode == 0 and all(f in r.stdout for f in (
        "--prefetch on|off", "--prefetch-budget", "--prefetch-cache", "--prefetch-model")),
        "--help: %d %r", r.returncode, r.stdout)


def main():
    with ot.step("ombra-proxy's prefetch options"):
        options()
    with oc.LocalCluster("prefetch", regions=2) as c:
        run(c)
        c.check_sanitizers()


def run(c):
    st = oc.stubs()
    v, m = st.volume, ot.pb()
    data = {}  # segment -> its current 1 MiB

    with ot.step("cluster up, volume pf homed in r1, written through r1"):
        c.up()
        vol = c.create_volume(VOL, SEGS * MIB, replicas=2, region="r1")
        c.wait_volume_served(VOL, i=1)
        c.wait_volume_served(VOL, i=2)
        for s in range(SEGS):
            data[s] = pattern(s, 0)
            c.volume_stub(1).Write(v.WriteRequest(volume=VOL, offset_bytes=s * MIB,
                                                  data=data[s]), timeout=20)
        stub = c.volume_stub(2)

    with ot.step("bad arguments"):
        INV = grpc.StatusCode.INVALID_ARGUMENT
        expect_code("PrefetchData beyond the end", INV, "beyond volume size",
                    stub.PrefetchData, v.PrefetchDataRequest(
                        volume=VOL, ranges=[rng(SEGS * MIB - 4096, 8192)]), timeout=10)
        expect_code("PrefetchData without ranges", INV, "range", stub.PrefetchData,
                    v.PrefetchDataRequest(volume=VOL), timeout=10)
        expect_code("PrefetchData without a volume", INV, "name", stub.PrefetchData,
                    v.PrefetchDataRequest(ranges=[rng(0, 4096)]), timeout=10)
        expect_code("PrefetchData empty range", INV, "range", stub.PrefetchData,
                    v.PrefetchDataRequest(volume=VOL, ranges=[rng(0, 0)]), timeout=10)
        expect_code("SetPrefetchHint WILLNEED without ranges", INV, "range",
                    stub.SetPrefetchHint, v.SetPrefetchHintRequest(
                        volume=VOL, hint=v.PREFETCH_HINT_WILLNEED), timeout=10)
        expect_code("SetPrefetchHint DONTNEED beyond the end", INV, "beyond",
                    stub.SetPrefetchHint, v.SetPrefetchHintRequest(
                        volume=VOL, hint=v.PREFETCH_HINT_DONTNEED,
                        ranges=[rng(SEGS * MIB, 4096)]), timeout=10)
        expect_code("SetPrefetchHint unknown hint", INV, "hint", stub.SetPrefetchHint,
                    v.SetPrefetchHintRequest(volume=VOL, hint=42), timeout=10)
        expect_code("GetPrefetchStats without a volume", INV, "name",
                    stub.GetPrefetchStats, v.GetPrefetchStatsRequest(), timeout=10)
        expect_code("GetPrefetchStats unknown volume", grpc.StatusCode.NOT_FOUND,
                    "nope", stub.GetPrefetchStats,
                    v.GetPrefetchStatsRequest(volume="nope"), timeout=10)

    with ot.step("probe: StoreService.Pull on r2's nodes (PrefetchData) and ListCopies"):
        pull_ok = True
        try:
            r = stub.PrefetchData(v.PrefetchDataRequest(
                volume=VOL, ranges=[rng(7 * MIB, 64 * KIB)]), timeout=30)
            ot.expect(r.bytes_scheduled == 64 * KIB, "bytes_scheduled %d, want %d",
                      r.bytes_scheduled, 64 * KIB)
        except grpc.RpcError as e:
            ot.expect("UNIMPLEMENTED" in (e.details() or ""),
                      "PrefetchData failed: %s %s", e.code().name, e.details())
            missing("stored StoreService.Pull", e.details())
            pull_ok = False
        copies_ok = True
        try:
            cache_copies(c, vol.id)
        except grpc.RpcError as e:
            ot.expect(e.code() == grpc.StatusCode.UNIMPLEMENTED,
                      "ListCopies: %s %s", e.code().name, e.details())
            missing("stored StoreService.ListCopies", e.details())
            copies_ok = False
        if pull_ok:
            stub.SetPrefetchHint(v.SetPrefetchHintRequest(
                volume=VOL, hint=v.PREFETCH_HINT_DONTNEED,
                ranges=[rng(0, SEGS * MIB)]), timeout=10)

    with ot.step("sequential reads through r2: observed, predicted, cached"):
        before = stats(c)
        for i in range(4 * MIB // READ):
            off = i * READ
            got = read(c, 2, off, READ).data
            ot.expect(got == data[off // MIB][off % MIB:off % MIB + READ],
                      "read at %d through r2 differs", off)
        if pull_ok:
            # Pulls complete asynchronously: read the stream again once
            # the engine has pulled ahead of it.
            time.sleep(1.0)
            for i in range(4 * MIB // READ, 6 * MIB // READ):
                read(c, 2, i * READ, READ)
        s = stats(c)
        ot.log("stats: %s", str(s).replace("\n", " "))
        ot.expect(s.volume == VOL, "stats name %r", s.volume)
        ot.expect(s.read_requests >= before.read_requests + 64,
                  "read_requests %d after 64 reads (before %d)", s.read_requests,
                  before.read_requests)
        ot.expect(s.reads >= before.reads + 64 * READ // 4096, "block reads %d", s.reads)
        pred = {p.name: p for p in s.predictors}
        ot.expect(sum(p.predictions for n, p in pred.items() if n != "adaptive") > 0,
                  "no predictor predicted anything for a sequential stream: %s", pred)
        ot.expect("adaptive" in pred and pred["adaptive"].predictions > 0,
                  "no adaptive row: %s", list(pred))
        ot.expect(s.active_predictor not in ("", "none"),
                  "no active predictor after 64 sequential reads")
        if pull_ok:
            ot.expect(s.cache_bytes > 0, "nothing cached for the volume: %s", s)
            ot.expect(s.cache_hits > 0 and s.read_hits > 0,
                      "no read found its blocks in cache entries: %s", s)
            ot.expect(0 < s.hit_ratio <= 1 and 0 < s.block_hit_ratio <= 1,
                      "hit ratios %f %f", s.hit_ratio, s.block_hit_ratio)
            ad = pred["adaptive"]
            ot.expect(ad.prefetched_bytes > 0 and 0 < ad.precision <= 1 and
                      0 < ad.coverage <= 1, "adaptive row %s", ad)
            if copies_ok:
                cps = cache_copies(c, vol.id)
                ot.expect(sum(ci.present_blocks for ci in cps.values()) > 0,
                          "no COPY_CACHE entry of the volume on r2's nodes: %s", cps)
            # EVENTUAL reads may be served by the cache entries: the data
            # pulled is the volume's.
            http2 = c.proxy(2)["http"]
            served = {"where": "local", "copy": "cache"}
            before_c = c.metric(http2, "ombra_proxy_read_parts_total", served)

            def eventual_from_cache():
                # The read path ranks copies by measured latency: the local
                # cache node wins once it has samples.  (Pulled again if the
                # read path dropped the entry meanwhile.)
                stub.PrefetchData(v.PrefetchDataRequest(
                    volume=VOL, ranges=[rng(3 * MIB, MIB)]), timeout=30)
                for i in range(MIB // READ):
                    off = 3 * MIB + i * READ
                    got = read(c, 2, off, READ, consistency=m.common.EVENTUAL).data
                    ot.expect(got == data[3][i * READ:(i + 1) * READ],
                              "EVENTUAL read at %d through r2 differs", off)
                return c.metric(http2, "ombra_proxy_read_parts_total", served) > before_c
            ot.wait_until(eventual_from_cache, 20,
                          "an EVENTUAL read served by a cache entry in r2")

    with ot.step("hints: RANDOM stops predictions, SEQUENTIAL and NORMAL"):
        stub.SetPrefetchHint(v.SetPrefetchHintRequest(
            volume=VOL, hint=v.PREFETCH_HINT_RANDOM), timeout=10)
        s0 = stats(c)
        ot.expect(s0.hint == v.PREFETCH_HINT_RANDOM, "hint %d", s0.hint)
        for i in range(16):
            read(c, 2, 6 * MIB + i * READ, READ)
        s1 = stats(c)
        p0 = {p.name: p.predictions for p in s0.predictors}
        p1 = {p.name: p.predictions for p in s1.predictors}
        ot.expect(p0.get("adaptive", 0) == p1.get("adaptive", 0),
                  "predictions under RANDOM: %s -> %s", p0, p1)
        ot.expect(s1.read_requests == s0.read_requests + 16, "reads not counted under RANDOM")
        for h in (v.PREFETCH_HINT_SEQUENTIAL, v.PREFETCH_HINT_NORMAL):
            stub.SetPrefetchHint(v.SetPrefetchHintRequest(volume=VOL, hint=h), timeout=10)
            ot.expect(stats(c).hint == h, "hint %d not reported", h)

    if pull_ok:
        with ot.step("PrefetchData pulls a range, DONTNEED drops it"):
            # No predicted pull may run meanwhile (RANDOM: none starts).
            stub.SetPrefetchHint(v.SetPrefetchHintRequest(
                volume=VOL, hint=v.PREFETCH_HINT_RANDOM), timeout=10)
            ot.wait_until(lambda: stats(c).pulls_in_flight == 0, 20,
                          "the engine's pulls to end")
            stub.SetPrefetchHint(v.SetPrefetchHintRequest(
                volume=VOL, hint=v.PREFETCH_HINT_DONTNEED,
                ranges=[rng(0, SEGS * MIB)]), timeout=10)
            ot.expect(stats(c).cache_bytes == 0, "DONTNEED of the volume left entries")
            r = stub.PrefetchData(v.PrefetchDataRequest(
                volume=VOL, ranges=[rng(5 * MIB + 64 * KIB, 256 * KIB)]), timeout=30)
            ot.expect(r.bytes_scheduled == 256 * KIB, "bytes_scheduled %d", r.bytes_scheduled)
            ot.expect(stats(c).cache_bytes == 256 * KIB, "cache_bytes %d",
                      stats(c).cache_bytes)
            r = stub.PrefetchData(v.PrefetchDataRequest(
                volume=VOL, ranges=[rng(5 * MIB + 64 * KIB, 256 * KIB)]), timeout=30)
            ot.expect(r.bytes_scheduled == 0, "cached range pulled again: %d",
                      r.bytes_scheduled)
            if copies_ok:
                ot.wait_until(lambda: present(cache_copies(c, vol.id), 5) >= 64, 10,
                              "segment 5's 64 blocks in a COPY_CACHE entry in r2")
            stub.SetPrefetchHint(v.SetPrefetchHintRequest(
                volume=VOL, hint=v.PREFETCH_HINT_DONTNEED,
                ranges=[rng(5 * MIB, MIB)]), timeout=10)
            ot.expect(stats(c).cache_bytes == 0, "DONTNEED left %d bytes",
                      stats(c).cache_bytes)
            if copies_ok:
                ot.wait_until(lambda: present(cache_copies(c, vol.id), 5) == 0, 10,
                              "segment 5's entry dropped on r2's node")
            stub.SetPrefetchHint(v.SetPrefetchHintRequest(
                volume=VOL, hint=v.PREFETCH_HINT_NORMAL), timeout=10)

    off, length = 2 * MIB + 64 * KIB, 128 * KIB
    lo, hi = off - 2 * MIB, off - 2 * MIB + length
    state = {"gen": 0}

    def invalidation_round(rnd, writer):
        """Prefetch [off, off+length) into r2, write new data through the
        writer's proxy, read it through r2: never the old data."""
        if pull_ok:
            stub.PrefetchData(v.PrefetchDataRequest(
                volume=VOL, ranges=[rng(off, length)]), timeout=30)
            ot.expect(stats(c).cache_bytes >= length, "range not cached")
        old = data[2][lo:hi]
        ot.expect(read(c, 2, off, length).data == old,
                  "round %d: r2 does not read the current data before the write", rnd)
        state["gen"] += 1
        new = pattern(2, state["gen"])[lo:hi]
        w = ot.wait_until(lambda: try_write(c, writer, off, new), 20,
                          "the write through r%d" % writer)
        data[2] = data[2][:lo] + new + data[2][hi:]
        for cons in (m.common.STRONG, m.common.CONSISTENCY_UNSPECIFIED):
            got = read(c, 2, off, length, consistency=cons).data
            ot.expect(got == new, "round %d, write through r%d: r2 read (consistency %d) "
                      "%s data", rnd, writer, cons, "the OLD" if got == old else "other")
        got = read(c, 2, off, length, consistency=m.common.BOUNDED,
                   min_version=w.version_token).data
        ot.expect(got == new, "round %d, write through r%d: BOUNDED read with the "
                  "write's token is stale", rnd, writer)
        got = read(c, 2, off - 4096, length + 8192).data
        ot.expect(got == data[2][lo - 4096:hi + 4096], "round %d: straddling read differs",
                  rnd)

    with ot.step("versioned invalidation: writes through r1 (the writer), reads through r2"):
        for rnd in range(3):
            invalidation_round(rnd, 1)

    with ot.step("versioned invalidation: r1's proxy stops, r2 writes and reads"):
        # Single-writer volumes: r1's proxy releases the writer lease when
        # it stops; r2's proxy takes it with its first write.
        c.kill(c.proxy(1)["name"], sig="TERM")
        for rnd in range(3, 6):
            invalidation_round(rnd, 2)
        if pull_ok:
            # The writer's STRONG reads may use its cache entry (it knows
            # the segment's latest version): when one is served from it,
            # it is the data just written.  The entry placed while r1 was
            # the writer went stale (r1's writes were not propagated to
            # it): the read path's refusal drops it and PrefetchData pulls
            # it afresh.  Then one more write and read.
            http2 = c.proxy(2)["http"]
            served = {"where": "local", "copy": "cache"}
            before_c = c.metric(http2, "ombra_proxy_read_parts_total", served)

            seen = {}

            def strong_from_cache():
                stub.PrefetchData(v.PrefetchDataRequest(
                    volume=VOL, ranges=[rng(off, length)]), timeout=30)
                got = read(c, 2, off, length, consistency=m.common.STRONG).data
                ot.expect(got == data[2][lo:hi], "the writer's STRONG read differs")
                text = c.metrics(http2)
                seen["parts"] = [ln for ln in text.splitlines()
                                 if ln.startswith("ombra_proxy_read_parts_total")]
                # How the read path ranks r2's nodes (a cache node ranked
                # behind the remote home copies is never asked).
                seen["nodes"] = [ln for ln in text.splitlines() if ln.startswith(
                    ("ombra_proxy_node_expected_latency_seconds",
                     "ombra_proxy_node_p99_latency_seconds", "ombra_proxy_node_up"))]
                seen["refused"] = oc.parse_metric(
                    text, "ombra_proxy_read_foreign_refused_total")
                return (oc.parse_metric(text, "ombra_proxy_read_parts_total", served)
                        or 0) > before_c
            try:
                ot.wait_until(strong_from_cache, 20,
                              "a STRONG read of the writer served by its cache entry")
            except ot.TestError as e:
                raise ot.TestError("%s; read parts %s, foreign copies refused %s, "
                                   "nodes %s, stats %s" % (
                                       e, seen.get("parts"), seen.get("refused"),
                                       seen.get("nodes"),
                                       str(stats(c)).replace("\n", " ")))
            invalidation_round(6, 2)

    with ot.step("ombractl volume prefetch-stats"):
        ctl = ot.find_binary("ombractl", "cli")
        base = [ctl, "--endpoints", ",".join(c.metad_endpoints), "volume",
                "prefetch-stats"]
        env = dict(os.environ)
        env.pop("OMBRA_PROXY", None)
        out = subprocess.run(base + [VOL, "--proxy", c.proxy(2)["grpc"]],
                             capture_output=True, text=True, timeout=30, env=env)
        ot.expect(out.returncode == 0, "exit %d: %s", out.returncode, out.stderr)
        ot.expect(("volume %s: hint" % VOL) in out.stdout and "PRECISION" in out.stdout
                  and "adaptive" in out.stdout, "table:\n%s", out.stdout)
        out = subprocess.run(base + [VOL, "--proxy", c.proxy(2)["grpc"], "--json"],
                             capture_output=True, text=True, timeout=30, env=env)
        ot.expect(out.returncode == 0, "--json exit %d: %s", out.returncode, out.stderr)
        doc = json.loads(out.stdout)
        ot.expect(doc.get("volume") == VOL and int(doc.get("read_requests", 0)) > 0 and
                  any(p.get("name") == "adaptive" for p in doc.get("predictors", [])),
                  "json: %s", out.stdout)
        out = subprocess.run(base + [VOL], capture_output=True, text=True, timeout=30,
                             env=env)
        ot.expect(out.returncode == 2 and "--proxy" in out.stderr,
                  "without --proxy: exit %d %s", out.returncode, out.stderr)
        out = subprocess.run(base + ["nope", "--proxy", c.proxy(2)["grpc"]],
                             capture_output=True, text=True, timeout=30, env=env)
        ot.expect(out.returncode == 1 and "NOT_FOUND" in out.stderr,
                  "unknown volume: exit %d %s", out.returncode, out.stderr)

    with ot.step("/metrics of r2's proxy"):
        http = c.proxy(2)["http"]

        def exported():
            text = c.metrics(http)
            return ('ombra_proxy_prefetch_precision{predictor="request"}' in text and
                    "ombra_proxy_prefetch_coverage" in text and
                    "ombra_proxy_prefetch_wasted_bytes_total" in text and
                    oc.parse_metric(text, "ombra_proxy_prefetch_hit_ratio") is not None)
        ot.wait_until(exported, 10, "prefetch series on /metrics")
        if pull_ok:
            ot.wait_until(lambda: c.metric(http, "ombra_proxy_prefetch_bytes_total") > 0,
                          10, "ombra_proxy_prefetch_bytes_total > 0")
        c.check_alive([n for n in c.names() if n != c.proxy(1)["name"]])


if __name__ == "__main__":
    try:
        ot.run_test(main, BUDGET_S)
    except SystemExit as e:
        if e.code == 0 and SKIPPED:
            ot.log("SKIP test_prefetch_engine.py: it needs %s; the checks without "
                   "pulled blocks passed", "; ".join(SKIPPED))
            sys.exit(77)
        raise
