"""test_volume_lease: the single-writer lease of a volume
(MetaService.VolumeLease) on three real ombra-metad members.

Region r1 and a volume v.  Proxies A and B (just holder names here) then:
- A acquires (epoch 0) and gets writer epoch e1 >= 1; GetVolume shows
  writer A and writer_epoch e1 on every member (stale reads once
  converged); a retry with the same request_id answers the same epoch;
- A renews with e1 (same epoch back); a renewal with another epoch, and
  B's acquire, are FAILED_PRECONDITION (B's names A and the remaining ms);
- A stops renewing: B's acquire succeeds only after A's lease expired
  (by the leader's clock, >= the duration after A's last renewal was sent)
  with e2 > e1; A's renewal with e1 is now refused (stale);
- B releases (writer ""), A acquires again at once: e3 > e2;
- on the Watch stream a release and a grant are one "volume" event each
  and a renewal none (storage nodes refetch the map for writer changes);
- bad input: no holder / duration out of range INVALID_ARGUMENT, unknown
  volume NOT_FOUND, a follower UNAVAILABLE with the leader hint;
  ListFailovers of v is empty, of an unknown volume NOT_FOUND, and
  `ombractl volume failovers` prints the (empty) table or exits 1;
- new-leader wait: A renews until the leader is SIGKILLed; B retries its
  acquire on the new leader and gets the lease no sooner than one lease
  duration after the kill (the election came later still), even though A's
  lease expired on the old leader's clock before that; at least one refusal
  names the new leader's wait;
- every epoch ever granted is strictly larger than the one before, and
  the members converge to the same state hash.

Fails (exit 1) with the phase, what was seen and the members' log tails."""

import os
import subprocess
import sys
import time

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "py"))
sys.path.insert(0, HERE)
import ombra_test as ot  # noqa: E402
from test_leases import Meta  # noqa: E402  (MetaService, leader-following)
from test_watch import Watcher  # noqa: E402  (a drained Watch stream)

SETTINGS = {"election_timeout_ms": 1000, "heartbeat_timeout_ms": 100}
DURATION_MS = 2000


def lease(meta, holder, epoch=0, release=False, duration=DURATION_MS, rid=None,
          timeout=20.0):
    req = meta.pb.VolumeLeaseRequest(volume="v", holder=holder, epoch=epoch,
                                     release=release, duration_ms=duration,
                                     request_id=rid or ot.request_id())
    return meta.call("VolumeLease", req, timeout=timeout)


def refused(fn, *args, **kw):
    """(code, details) of the gRPC error fn raises; fails if it succeeds."""
    try:
        resp = fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise ot.TestError("expected a refusal, got %s" % resp)


def writer_of(cl, m):
    v = cl.call("GetVolume", m.volume.GetVolumeRequest(name="v")).volume
    return v.writer, v.writer_epoch


def main():
    m = ot.pb()
    with ot.Cluster(3, name="vlease", settings=SETTINGS) as c:
        c.start()
        c.wait_leader(timeout=30)
        cl = c.client()
        meta = Meta(c)
        epochs = []
        try:
            with ot.step("a region and a volume"):
                cl.call("AddRegion", m.admin.AddRegionRequest(
                    name="r1", request_id=ot.request_id()))
                cl.call("CreateVolume", m.volume.CreateVolumeRequest(
                    name="v", size_bytes=16 << 20, home_region="r1",
                    request_id=ot.request_id()))
                ot.expect(writer_of(cl, m) == ("", 0), "fresh volume has writer %s",
                          writer_of(cl, m))

            with ot.step("A acquires; a retry answers the same; GetVolume shows it"):
                rid = ot.request_id()
                r = lease(meta, "A", rid=rid)
                ot.expect(r.epoch >= 1 and r.duration_ms == DURATION_MS,
                          "acquire answered %s", r)
                e1 = r.epoch
                epochs.append(e1)
                r2 = lease(meta, "A", rid=rid)
                ot.expect(r2.epoch == e1, "retry answered epoch %d, first %d", r2.epoch, e1)
                ot.expect(writer_of(cl, m) == ("A", e1), "GetVolume: %s", writer_of(cl, m))
                c.wait_converged(timeout=20)
                for mem in c.members.values():
                    v = cl.direct(mem.grpc, "GetVolume", m.volume.GetVolumeRequest(
                        name="v", allow_stale=True)).volume
                    ot.expect((v.writer, v.writer_epoch) == ("A", e1),
                              "metad-%d has writer %s/%d", mem.id, v.writer, v.writer_epoch)

            with ot.step("renewal, wrong epoch, conflicting acquire"):
                r = lease(meta, "A", epoch=e1)
                ot.expect(r.epoch == e1, "renew answered %s", r)
                code, msg = refused(lease, meta, "A", epoch=e1 + 5)
                ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "stale" in msg,
                          "renew with a wrong epoch: %s %s", code, msg)
                code, msg = refused(lease, meta, "B")
                ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "'A'" in msg
                          and " ms" in msg, "B's acquire: %s %s", code, msg)
                code, msg = refused(lease, meta, "B", epoch=e1, release=True)
                ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION,
                          "B releasing A's lease: %s %s", code, msg)

            with ot.step("A's lease expires; B takes it with a higher epoch"):
                last_renew_sent = time.monotonic()
                lease(meta, "A", epoch=e1)
                got = None
                while got is None:
                    try:
                        got = lease(meta, "B")
                    except grpc.RpcError as e:
                        ot.expect(e.code() == grpc.StatusCode.FAILED_PRECONDITION,
                                  "B's acquire: %s %s", e.code(), e.details())
                        ot.expect(time.monotonic() - last_renew_sent < DURATION_MS / 1000 + 5,
                                  "B still refused long after A's lease ran out: %s",
                                  e.details())
                        time.sleep(0.05)
                waited = time.monotonic() - last_renew_sent
                ot.expect(waited >= DURATION_MS / 1000.0,
                          "B got the lease %.3fs after A's last renewal (< %d ms)",
                          waited, DURATION_MS)
                e2 = got.epoch
                ot.expect(e2 > e1, "B's epoch %d not above A's %d", e2, e1)
                epochs.append(e2)
                code, msg = refused(lease, meta, "A", epoch=e1)
                ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "'B'" in msg,
                          "A's renewal after the takeover: %s %s", code, msg)

            with ot.step("B releases; A acquires at once with a higher epoch"):
                lease(meta, "B", epoch=e2, release=True)
                ot.expect(writer_of(cl, m) == ("", e2), "after release: %s", writer_of(cl, m))
                lease(meta, "B", epoch=e2, release=True)  # released twice: OK
                r = lease(meta, "A")
                e3 = r.epoch
                ot.expect(e3 > e2, "A's epoch %d not above %d", e3, e2)
                epochs.append(e3)

            with ot.step("Watch: a release and a grant are volume events, a renewal none"):
                leader = c.wait_leader()
                applied = cl.direct(leader.grpc, "GetClusterStatus",
                                    m.admin.GetClusterStatusRequest()).applied_index
                w = Watcher(cl, leader.grpc, applied)
                try:
                    lease(meta, "A", epoch=e3)
                    lease(meta, "A", epoch=e3, release=True)
                    e3 = lease(meta, "A").epoch
                    epochs.append(e3)
                    _, evs = w.next_matching(lambda e: False, 2.0)
                finally:
                    w.close()
                ot.expect([(e.kind, e.name) for e in evs] == [("volume", "v")] * 2,
                          "events after index %d: %s", applied,
                          [(e.index, e.kind, e.name) for e in evs])

            with ot.step("bad input, unknown volume, follower, ListFailovers"):
                code, _ = refused(meta.call, "VolumeLease", meta.pb.VolumeLeaseRequest(
                    volume="v", holder=""))
                ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "no holder: %s", code)
                code, _ = refused(lease, meta, "A", duration=10)
                ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "10 ms: %s", code)
                code, _ = refused(meta.call, "VolumeLease", meta.pb.VolumeLeaseRequest(
                    volume="nope", holder="A"))
                ot.expect(code == grpc.StatusCode.NOT_FOUND, "unknown volume: %s", code)
                leader = c.wait_leader()
                follower = [mm for mm in c.members.values() if mm.id != leader.id][0]
                try:
                    meta.stub(follower.grpc).VolumeLease(meta.pb.VolumeLeaseRequest(
                        volume="v", holder="A", epoch=e3), timeout=5)
                    raise ot.TestError("a follower answered VolumeLease")
                except grpc.RpcError as e:
                    ot.expect(e.code() == grpc.StatusCode.UNAVAILABLE and
                              ot.leader_hint(e) == leader.grpc,
                              "follower: %s %s hint %s", e.code(), e.details(),
                              ot.leader_hint(e))
                ev = cl.call("ListFailovers", m.admin.ListFailoversRequest(volume="v"))
                ot.expect(len(ev.events) == 0, "failovers of v: %s", ev.events)
                try:
                    cl.call("ListFailovers", m.admin.ListFailoversRequest(volume="nope"))
                    raise ot.TestError("ListFailovers of an unknown volume answered")
                except grpc.RpcError as e:
                    ot.expect(e.code() == grpc.StatusCode.NOT_FOUND, "%s", e.code())
                ctl = ot.find_binary("ombractl", "cli")
                eps = ",".join(c.endpoints())
                out = subprocess.run([ctl, "--endpoints", eps, "volume", "failovers", "v"],
                                     capture_output=True, text=True, timeout=30)
                ot.expect(out.returncode == 0 and "LOST VERSIONS" in out.stdout,
                          "ombractl volume failovers v: %d %s %s", out.returncode,
                          out.stdout, out.stderr)
                out = subprocess.run([ctl, "--endpoints", eps, "volume", "failovers", "nope"],
                                     capture_output=True, text=True, timeout=30)
                ot.expect(out.returncode == 1 and "does not exist" in out.stderr,
                          "ombractl volume failovers nope: %d %s", out.returncode,
                          out.stderr)

            with ot.step("leader SIGKILL: B waits one lease duration after the election"):
                r = lease(meta, "A", epoch=e3)
                leader = c.wait_leader()
                leader.kill()
                killed_at = time.monotonic()
                meta.leader = None
                waits = 0
                got = None
                while got is None:
                    try:
                        got = lease(meta, "B", timeout=10.0)
                    except grpc.RpcError as e:
                        ot.expect(e.code() in (grpc.StatusCode.FAILED_PRECONDITION,
                                               grpc.StatusCode.UNAVAILABLE,
                                               grpc.StatusCode.DEADLINE_EXCEEDED),
                                  "B's acquire: %s %s", e.code(), e.details())
                        if "new" in (e.details() or ""):
                            waits += 1
                        ot.expect(time.monotonic() - killed_at < 30,
                                  "B never got the lease: %s", e.details())
                        time.sleep(0.05)
                after = time.monotonic() - killed_at
                ot.expect(after >= DURATION_MS / 1000.0,
                          "B got the lease %.3fs after the leader died (< %d ms)",
                          after, DURATION_MS)
                ot.expect(waits > 0, "no refusal named the new leader's wait")
                ot.expect(got.epoch > e3, "B's epoch %d not above %d", got.epoch, e3)
                epochs.append(got.epoch)
                ot.log("B got the lease %.2fs after the kill (%d wait refusals)",
                       after, waits)

            with ot.step("epochs strictly increase; the members converge"):
                ot.expect(all(a < b for a, b in zip(epochs, epochs[1:])),
                          "epochs %s", epochs)
                leader.start()
                c.wait_converged(timeout=30)
        finally:
            meta.close()
            c.stop_all_checked()


if __name__ == "__main__":
    ot.run_test(main, timeout=90)
