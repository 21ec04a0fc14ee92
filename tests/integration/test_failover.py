"""test_failover: metad keeps every acknowledged write through leader crashes,
and a member added later catches up from a snapshot.

Three members (snapshot_threshold 64, trailing 16).  Four client threads
create 200 volumes, each with its own request_id reused on every retry,
while the leader is SIGKILLed twice (after ~60 and ~130 acknowledged
creates); each killed member is restarted ~25 creates later.  Then:
every acknowledged volume exists exactly once on every member (ListVolumes
allow_stale on each member once all reached the same applied index), ids
are unique, state hashes are equal, and the killed members caught up.
Finally a 4th member (bootstrap=false) is added with AddMetadMember; it
must restore a snapshot (snapshots_restored >= 1), reach the same applied
index and state hash, and then follow new writes.

Fails (exit 1) with the phase, the offending volume names or member
statuses, and the members' log tails."""

import os
import queue
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402

TOTAL = 200
WORKERS = 4
KILL_AT = (60, 130)
RESTART_AFTER = 25
# Each worker pauses this long after a create, so that the kills land near
# KILL_AT (a create takes a few ms; unpaced, 200 creates take ~1 s).
PACE_S = 0.04
SETTINGS = {"snapshot_threshold": 64, "snapshot_trailing": 16,
            "election_timeout_ms": 1000, "heartbeat_timeout_ms": 100}


class Creator:
    """Worker threads that create volumes vol-000..vol-199 through a
    leader-following client; records which ones were acknowledged."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.todo = queue.Queue()
        for i in range(TOTAL):
            self.todo.put("vol-%03d" % i)
        self.lock = threading.Lock()
        self.acked = {}   # name -> Volume from the response
        self.failed = {}  # name -> error text
        self.stop = threading.Event()
        self.threads = []
        self.retries = 0  # attempts retried by the clients (failover seen)

    def worker(self):
        m = ot.pb()
        client = self.cluster.client(attempt_timeout=2.0)
        while not self.stop.is_set():
            try:
                name = self.todo.get_nowait()
            except queue.Empty:
                return
            idx = int(name.split("-")[1])
            req = m.volume.CreateVolumeRequest(
                name=name, size_bytes=(1 + idx % 7) * (1 << 30),
                segment_size_bytes=1 << 20, home_region="r1", replicas=2,
                request_id=ot.request_id())
            before = client.retries
            try:
                resp = client.call("CreateVolume", req, timeout=60.0)
            except Exception as e:  # grpc.RpcError or TestError
                with self.lock:
                    self.failed[name] = "%s" % (e.details() if hasattr(e, "details") else e)
                    self.retries += client.retries - before
                continue
            with self.lock:
                self.acked[name] = resp.volume
                self.retries += client.retries - before
            time.sleep(PACE_S)

    def start(self):
        for _ in range(WORKERS):
            t = threading.Thread(target=self.worker, daemon=True)
            t.start()
            self.threads.append(t)

    def count(self):
        with self.lock:
            return len(self.acked) + len(self.failed)

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.stop.set()
        ot.expect(not any(t.is_alive() for t in self.threads),
                  "creators still running after %.0fs", timeout)


def wait_count(creator, n, timeout=120.0):
    ot.wait_until(lambda: creator.count() >= n or None, timeout,
                  "%d creates to finish" % n, interval=0.005)


def check_volumes_everywhere(cluster, acked, members):
    """Every acknowledged volume exactly once on every member, same ids."""
    m = ot.pb()
    cl = cluster.client()
    ref = None
    for mem in members:
        resp = cl.direct(mem.grpc, "ListVolumes",
                         m.volume.ListVolumesRequest(allow_stale=True), timeout=10.0)
        names = [v.name for v in resp.volumes]
        dups = sorted({n for n in names if names.count(n) > 1})
        ot.expect(not dups, "metad-%d lists volumes more than once: %s", mem.id, dups)
        missing = sorted(set(acked) - set(names))
        ot.expect(not missing, "metad-%d lost %d acknowledged volumes: %s",
                  mem.id, len(missing), missing[:20])
        ids = [v.id for v in resp.volumes]
        ot.expect(len(set(ids)) == len(ids), "metad-%d has duplicate volume ids", mem.id)
        by_name = {v.name: v for v in resp.volumes}
        for name, v in acked.items():
            got = by_name[name]
            ot.expect(got.id == v.id and got.size_bytes == v.size_bytes,
                      "metad-%d: volume %s is id %d size %d, acknowledged as id %d "
                      "size %d", mem.id, name, got.id, got.size_bytes, v.id, v.size_bytes)
        snapshot = sorted((v.name, v.id, v.size_bytes) for v in resp.volumes)
        if ref is None:
            ref = snapshot
        ot.expect(snapshot == ref, "metad-%d's volume list differs from metad-%d's",
                  mem.id, members[0].id)
    return len(ref)


def check_hashes(cluster, members):
    sts = cluster.statuses(members=members)
    hashes = {mid: st.state_hash for mid, st in sts.items()}
    ot.expect(len(set(hashes.values())) == 1 and all(hashes.values()),
              "state hashes differ: %s", hashes)
    idx = {mid: st.applied_index for mid, st in sts.items()}
    ot.expect(len(set(idx.values())) == 1, "applied indexes differ: %s", idx)
    return sts


def main():
    m = ot.pb()
    with ot.Cluster(3, name="failover", settings=SETTINGS) as c:
        c.start()
        with ot.step("elect a leader and add region r1"):
            c.wait_leader(timeout=30)
            cl = c.client()
            cl.call("AddRegion", m.admin.AddRegionRequest(name="r1", request_id=ot.request_id()))

        creator = Creator(c)
        killed = []
        with ot.step("create %d volumes while killing the leader at %s"
                     % (TOTAL, list(KILL_AT))):
            creator.start()
            for at in KILL_AT:
                wait_count(creator, at - 10)
                leader = c.wait_leader(timeout=30)
                wait_count(creator, at)
                ot.log("killing leader metad-%d after %d creates", leader.id, creator.count())
                leader.kill()
                killed.append(leader)
                new = c.wait_leader(timeout=30)
                ot.expect(new.id != leader.id, "killed leader still leads")
                ot.log("new leader metad-%d", new.id)
                wait_count(creator, min(TOTAL, at + RESTART_AFTER))
                ot.log("restarting metad-%d after %d creates", leader.id, creator.count())
                leader.start()
            creator.join(timeout=240)
            ot.expect(not creator.failed, "%d creates failed although a majority was up: %s",
                      len(creator.failed), sorted(creator.failed.items())[:10])
            ot.expect(len(creator.acked) == TOTAL, "only %d of %d creates acknowledged",
                      len(creator.acked), TOTAL)
            ot.log("%d attempts were retried across the failovers", creator.retries)
            ot.expect(creator.retries > 0, "no create was retried: the kills did not hit "
                      "in-flight requests, so failover was not exercised")

        members = list(c.members.values())
        with ot.step("all members converge and hold every acknowledged volume once"):
            idx = c.wait_converged(timeout=60)
            n = check_volumes_everywhere(c, creator.acked, members)
            ot.expect(n == TOTAL, "members list %d volumes, expected %d", n, TOTAL)
            sts = check_hashes(c, members)
            ot.log("converged at applied index %d, hash %s", idx,
                   next(iter(sts.values())).state_hash[:16])
            for k in killed:
                st = k.status()
                ot.expect(st.applied_index == idx and st.volume_count == TOTAL,
                          "restarted metad-%d at index %d with %d volumes",
                          k.id, st.applied_index, st.volume_count)
            taken = sum(st.snapshots_taken for st in sts.values())
            ot.expect(taken >= 1, "no member took a snapshot with snapshot_threshold=64 "
                      "after %d entries", idx)

        with ot.step("add metad-4 (bootstrap=false) and catch it up by snapshot"):
            new = c.add_member()
            new.start()
            resp = cl.call("AddMetadMember", m.admin.AddMetadMemberRequest(
                id=new.id, raft_address=new.raft, grpc_address=new.grpc, voter=True),
                timeout=60.0)
            ot.expect(resp.member.id == new.id, "AddMetadMember answered member %d",
                      resp.member.id)
            members = list(c.members.values())
            c.wait_converged(members=members, timeout=60)
            st = new.status()
            ot.expect(st.snapshots_restored >= 1,
                      "metad-4 caught up without restoring a snapshot "
                      "(snapshots_restored=%d)", st.snapshots_restored)
            check_volumes_everywhere(c, creator.acked, [new])
            check_hashes(c, members)
            lst = c.wait_leader().status()
            roles = {mm.id: mm.role for mm in lst.members}
            ot.expect(roles.get(new.id) == "voter",
                      "leader lists metad-4 as %r, expected voter (members %s)",
                      roles.get(new.id), roles)

        with ot.step("metad-4 follows new writes"):
            for i in range(5):
                cl.call("CreateVolume", m.volume.CreateVolumeRequest(
                    name="late-%d" % i, size_bytes=1 << 30, home_region="r1",
                    request_id=ot.request_id()))
            c.wait_converged(members=members, timeout=60)
            v = cl.direct(new.grpc, "GetVolume",
                          m.volume.GetVolumeRequest(name="late-4", allow_stale=True))
            ot.expect(v.volume.name == "late-4", "metad-4 returned %r", v.volume.name)
            check_hashes(c, members)

        with ot.step("clean shutdown of every member"):
            c.stop_all_checked()


if __name__ == "__main__":
    ot.run_test(main, timeout=600)
