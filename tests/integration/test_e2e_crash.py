"""test_e2e_crash: SIGKILL a storage primary in the middle of a real trace
replay (RF 2) and check that nothing acknowledged is lost.

deploy/ombra-local runs one region (1 metad, 2 stored, 1 proxy).  A 512 MiB
volume with 2 copies receives the first requests of the CloudPhysics vSCSI
trace (/work/shared/traces/cloudPhysicsIO.vscsi.zst, or $OMBRA_TRACE)
through ombra-replay.  Two rounds, the first over gRPC (retries of
UNAVAILABLE requests with the same request id), the second over NBD with
another seed.  In each, once a third of the writes are done (by the
proxy's ombra_proxy_writes_total) the stored that is primary of most
segments is SIGKILLed (in round 2 that is the node that survived round 1,
so the node re-synced in round 1 must take over).  Then:

1. the replay finishes with 0 errors and 0 verification failures (metad
   promoted the surviving replica and the proxy followed it), and no
   segment is led by the dead node any more;
2. every block the replay wrote reads back through the proxy with the
   content of its last write (recomputed from the trace, the seed and the
   replay's content rule in tools/ombra_replay/content.py);
3. the killed node is restarted (ombra-local start) and, within a bound,
   metad's shard map lists it as an in-sync copy of every segment again
   (never in resync_node_ids);
4. every segment read directly from it (StoreService.Read) equals the
   primary's copy: same data, same per-block versions (GetSegmentInfo on
   both too).

Exit 77 when the trace file is absent.  Fails (exit 1) naming the step and
what differed; process logs are dumped; every process is stopped.
"""

import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402
import ombra_cluster as oc  # noqa: E402
from ombra_test import expect, log, step  # noqa: E402

TRACE = os.environ.get("OMBRA_TRACE") or os.path.join(
    os.path.dirname(os.path.realpath(ot.srcdir())), "shared", "traces",
    "cloudPhysicsIO.vscsi.zst")
VOLUME = "crash"
VOL_SIZE = 512 * oc.MIB
# The first 10000 requests (1424 reads) take 30-60 s here under the sanitizers.
LIMIT = int(os.environ.get("OMBRA_CRASH_LIMIT", "10000"))
KILL_AFTER_S = 20.0  # at the latest
REPLAY_TIMEOUT_S = 120
SEED = 424242
BUDGET_S = 360


def replay_library():
    """The replay tool's modules (tools/ombra_replay in the source tree)."""
    sys.path.insert(0, os.path.join(ot.srcdir(), "tools"))
    from ombra_replay import content, mapping, traces
    return content, mapping, traces


def expected_writes(size):
    """{block: write number of its last write} for the first LIMIT mapped
    requests of the trace: what the replay leaves on the volume when every
    write was acknowledged (overlapping requests run in trace order)."""
    _content, mapping, traces = replay_library()
    last = {}
    n = 0
    with traces.Reader(TRACE, "vscsi") as reader:
        for r in reader:
            if n >= LIMIT:
                break
            m = mapping.map_request(r.offset, r.length, size)
            if m is None:
                continue
            n += 1
            if r.op != "W":
                continue
            first = m[0] // oc.BLOCK
            for b in range(first, first + m[1] // oc.BLOCK):
                last[b] = last.get(b, 0) + 1
    return last


def runs(blocks, max_blocks=256):
    """Sorted blocks -> [(first block, count)] runs of consecutive blocks."""
    out = []
    for b in sorted(blocks):
        if out and out[-1][0] + out[-1][1] == b and out[-1][1] < max_blocks:
            out[-1][1] += 1
        else:
            out.append([b, 1])
    return out


def verify_through_proxy(c, last, seed):
    """Every block in `last` holds, read through the proxy, the content of
    its last write by the replay with `seed`."""
    content, _m, _t = replay_library()
    v = oc.stubs().volume
    bad = []
    for first, count in runs(last):
        resp = c.volume_stub().Read(v.ReadRequest(volume=VOLUME, offset_bytes=first * oc.BLOCK,
                                                  length_bytes=count * oc.BLOCK), timeout=30)
        expect(len(resp.data) == count * oc.BLOCK, "short read at block %d", first)
        for i in range(count):
            b = first + i
            got = resp.data[i * oc.BLOCK:(i + 1) * oc.BLOCK]
            if got != content.block_data(seed, b, last[b]):
                bad.append("block %d: want write %d, got %s"
                           % (b, last[b], content.describe(seed, b, got)))
    expect(not bad, "%d blocks differ after the replay, first: %s", len(bad), bad[:5])
    log("   %d written blocks read back through the proxy", len(last))


def busiest_primary(c):
    """(node id, Node) of the stored that is primary of most segments."""
    _v, segs, nodes = c.shard_map(VOLUME)
    count = {}
    for s in segs:
        count[s.primary_node_id] = count.get(s.primary_node_id, 0) + 1
    vid = max(count, key=count.get)
    log("primaries: %s; victim %s (node %d)",
        {nodes[k].name: n for k, n in count.items()}, nodes[vid].name, vid)
    return vid, nodes[vid]


def replay_with_kill(c, via, seed, victim):
    """Run ombra-replay (via grpc or nbd, `seed`) over the first LIMIT
    requests and SIGKILL the stored `victim` (a name) once a third of the
    writes are done; require a complete, clean report."""
    replay = ot.find_binary("ombra-replay", "tools")
    out_path = os.path.join(c.dir, "replay-%s.json" % via)
    err_path = os.path.join(c.dir, "replay-%s.err" % via)
    argv = [replay, "--trace", TRACE, "--format", "vscsi", "--volume", VOLUME,
            "--via", via, "--endpoint", c.proxy()["grpc"], "--nbd-endpoint",
            c.proxy()["nbd"], "--limit", str(LIMIT), "--seed", str(seed),
            "--retry-timeout", "60", "--timeout", "20", "--json", "--no-progress"]
    proxy_http = c.proxy()["http"]

    def writes():
        return c.metric(proxy_http, "ombra_proxy_writes_total")
    writes0 = writes()
    retries0 = c.metric(proxy_http, "ombra_proxy_retries_total")
    errors0 = c.metric(proxy_http, "ombra_proxy_io_errors_total")
    log("   %s", " ".join(argv))
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        # Kill once a third of the writes are done (KILL_AFTER_S at the
        # latest), so the kill lands mid-replay however fast the machine is.
        deadline = time.monotonic() + KILL_AFTER_S
        while time.monotonic() < deadline and proc.poll() is None:
            if writes() - writes0 >= LIMIT // 3:
                break
            time.sleep(0.2)
        done = writes() - writes0
        expect(proc.poll() is None, "the replay ended before the kill (exit %s); "
               "raise OMBRA_CRASH_LIMIT", proc.poll())
        c.kill(victim, "KILL")
        log("   killed %s after %d of about %d writes", victim, done, LIMIT)
        t_kill = time.monotonic()
        rc = proc.wait(timeout=REPLAY_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(out_path) as f:
        text = f.read()
    with open(err_path) as f:
        errtext = f.read()
    try:
        rep = json.loads(text)
    except ValueError:
        raise ot.TestError("replay exited %d without a report; stderr: %s"
                           % (rc, errtext[-2000:]))
    log("   replay via %s: %d requests (%d reads, %d writes), %d retries, %.1fs, "
        "%d blocks checked, %d failures, %d errors, ended %.1fs after the kill",
        via, rep["requests"]["total"], rep["requests"]["reads"],
        rep["requests"]["writes"], rep["requests"]["retries"], rep["duration_s"],
        rep["verification"]["blocks_checked"], rep["verification"]["failures"],
        rep["errors"]["count"], time.monotonic() - t_kill)
    log("   proxy: %d pieces retried, %d engine errors during the replay",
        c.metric(proxy_http, "ombra_proxy_retries_total") - retries0,
        c.metric(proxy_http, "ombra_proxy_io_errors_total") - errors0)
    expect(rep["requests"]["total"] == LIMIT, "replay did %d of %d requests",
           rep["requests"]["total"], LIMIT)
    expect(rep["verification"]["failures"] == 0, "verification failures: %s",
           rep["verification"]["first_failures"])
    expect(rep["errors"]["count"] == 0, "replay errors: %s", rep["errors"]["first"])
    expect(rep["aborted"] is None, "replay aborted: %s", rep["aborted"])
    expect(rc == 0, "ombra-replay exited %d: %s", rc, errtext[-1000:])


def wait_in_sync(c, node_id, timeout=90.0):
    """Wait until metad lists node_id as the primary or an in-sync replica
    of every segment, and in no segment's resync_node_ids."""
    deadline = time.monotonic() + timeout
    while True:
        _v, ss, nodes = c.shard_map(VOLUME)
        lag = [s.index for s in ss
               if node_id in s.resync_node_ids or
               (node_id != s.primary_node_id and node_id not in s.replica_node_ids)]
        if not lag:
            return
        expect(time.monotonic() < deadline, "%s not back in sync within %.0fs: %d segments "
               "lag, first %s", nodes[node_id].name if node_id in nodes else node_id,
               timeout, len(lag), lag[:8])
        time.sleep(0.5)


def crash_round(c, vol, via, seed, last):
    """One round: replay with a kill of the busiest primary, promotion,
    read-back, restart, re-sync, copy comparison."""
    victim_id, victim = busiest_primary(c)
    with step("replay via %s with a SIGKILL of %s a third of the way in" % (via, victim.name)):
        replay_with_kill(c, via, seed, victim.name)

    with step("metad promoted the survivor for every segment"):
        _v, segs, _n = c.shard_map(VOLUME)
        still = [s.index for s in segs if s.primary_node_id == victim_id]
        expect(not still, "segments still led by the killed node: %s", still[:10])
        c.check_alive([n for n in c.names() if n != victim.name])

    with step("every written block reads back through the proxy"):
        verify_through_proxy(c, last, seed)

    with step("restart %s and wait until it is in sync for every segment" % victim.name):
        c.start(victim.name)
        wait_in_sync(c, victim_id)

    with step("every segment on %s equals the primary's copy" % victim.name):
        compare_copies(c, vol, victim_id)


def main():
    with oc.LocalCluster("crash") as c:
        with step("start a one-region cluster and a 512 MiB RF 2 volume"):
            c.up()
            vol = c.create_volume(VOLUME, VOL_SIZE, replicas=2)
            c.wait_volume_served(VOLUME)
        with step("expected content of the first %d trace requests" % LIMIT):
            last = expected_writes(VOL_SIZE)
            expect(last, "the first %d requests of %s write nothing", LIMIT, TRACE)
            log("   %d blocks written by the replay", len(last))
        # Round 1 over gRPC; round 2 over NBD, with another seed, kills the
        # node that led every segment since round 1, so the node re-synced
        # in round 1 becomes the primary and must hold everything.
        crash_round(c, vol, "grpc", SEED, last)
        crash_round(c, vol, "nbd", SEED + 1, last)
        c.check_alive()
        c.check_sanitizers()


def compare_copies(c, vol, victim_id):
    st = oc.stubs().store
    _v, segs, nodes = c.shard_map(VOLUME)
    seg_size = vol.segment_size_bytes
    victim = c.store_stub(nodes[victim_id].address)
    compared = with_data = 0
    for s in segs:
        primary = c.store_stub(nodes[s.primary_node_id].address)
        info_req = st.SegmentInfoRequest(volume_id=vol.id, segment_index=s.index)
        pi = primary.GetSegmentInfo(info_req, timeout=10)
        vi = victim.GetSegmentInfo(info_req, timeout=10)
        expect(pi.version == vi.version, "segment %d: version %#x on the primary, %#x on %s",
               s.index, pi.version, vi.version, nodes[victim_id].name)
        expect(list(pi.block_versions) == list(vi.block_versions) or
               (not any(pi.block_versions) and not any(vi.block_versions)),
               "segment %d: block versions differ", s.index)
        compared += 1
        if pi.version == 0:
            continue
        req = st.StoreReadRequest(volume_id=vol.id, segment_index=s.index,
                                  segment_size_bytes=seg_size, offset_bytes=s.index * seg_size,
                                  length_bytes=seg_size)
        pr = primary.Read(req, timeout=30)
        vr = victim.Read(req, timeout=30)
        expect(list(pr.block_versions) == list(vr.block_versions),
               "segment %d: read block versions differ", s.index)
        if pr.data != vr.data:
            diff = [i for i in range(seg_size // oc.BLOCK)
                    if pr.data[i * oc.BLOCK:(i + 1) * oc.BLOCK] !=
                    vr.data[i * oc.BLOCK:(i + 1) * oc.BLOCK]]
            raise ot.TestError("segment %d: data differs in blocks %s" % (s.index, diff[:10]))
        with_data += 1
    log("   %d segments compared (%d with data): equal versions and data", compared, with_data)


if __name__ == "__main__":
    if not os.path.exists(TRACE):
        sys.stderr.write("SKIP: trace %s not found\n" % TRACE)
        sys.exit(77)
    ot.run_test(main, BUDGET_S)
