"""test_leases: a storage node that stops heartbeating is marked DOWN and
its segments fail over to the in-sync replica with a higher lease epoch;
replica reports from the primary are fenced by epoch and primary.

Three ombra-metad members with node_timeout_ms 1500.  Two nodes (equal
capacity) registered in r1, a volume of 64 segments with 2 copies.  Only
n1 heartbeats (MetaService.NodeHeartbeat on the leader, at the interval the
answer gives; the answer carries lease_ms = node_timeout_ms and a
map_index).  Then:
- n2 is marked DOWN; GetShardMap (by name and by volume_id) shows every
  segment with primary n1, no in-sync replica and n2 in resync_node_ids;
  the segments n2 was primary of have lease_epoch 2, the others 1; n2 is
  still listed in resp.nodes; the heartbeat's map_index grew;
- n2 heartbeats again and is marked UP (placements unchanged);
- ReportReplicaSynced (primary n1, epoch 2) puts n2 back into
  replica_node_ids of one segment; a report with the stale epoch 1, or from
  n2 (not the primary), is FAILED_PRECONDITION; ReportReplicaFailure takes
  it out again and a retry with the same request_id answers the same;
- a follower answers UNAVAILABLE with the leader hint; unknown volume is
  NOT_FOUND; bad ids INVALID_ARGUMENT;
- n2 falls silent and the leader is killed at once: the new leader marks
  n2 DOWN no sooner than node_timeout_ms + election_timeout_ms after that,
  and never marks the heartbeating n1 DOWN.

Fails (exit 1) with the phase, the offending placements and the members'
log tails."""

import os
import sys
import threading
import time

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402

TIMEOUT_MS = 1500
SEGMENTS = 64
SETTINGS = {"node_timeout_ms": TIMEOUT_MS, "election_timeout_ms": 1000,
            "heartbeat_timeout_ms": 100}


def meta_modules():
    ot.pb()  # puts the generated stubs on sys.path
    import meta_pb2
    import meta_pb2_grpc
    return meta_pb2, meta_pb2_grpc


class Meta:
    """MetaService stub on the current leader (re-found on UNAVAILABLE)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.pb, self.grpc_mod = meta_modules()
        self.lock = threading.Lock()
        self.channels = {}
        self.leader = None  # gRPC address of the last leader that answered

    def stub(self, endpoint):
        with self.lock:
            ch = self.channels.get(endpoint)
            if ch is None:
                ch = ot.channel(endpoint)
                self.channels[endpoint] = ch
            return self.grpc_mod.MetaServiceStub(ch)

    def call(self, method, req, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            target = self.leader
            if target is None:
                target = self.cluster.wait_leader(
                    timeout=max(1.0, deadline - time.monotonic())).grpc
            try:
                resp = getattr(self.stub(target), method)(req, timeout=3.0)
                self.leader = target
                return resp
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                self.leader = ot.leader_hint(e) or None
                time.sleep(0.05)

    def close(self):
        with self.lock:
            for ch in self.channels.values():
                ch.close()
            self.channels = {}


class Heartbeater:
    """A thread heartbeating one node at the interval metad asks for."""

    def __init__(self, meta, node_id):
        self.meta = meta
        self.node_id = node_id
        self.stop_ev = threading.Event()
        self.last = None
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_ev.is_set():
            interval = 0.2
            try:
                self.last = self.meta.call(
                    "NodeHeartbeat", self.meta.pb.NodeHeartbeatRequest(node_id=self.node_id),
                    timeout=5.0)
                interval = self.last.heartbeat_interval_ms / 1000.0
            except Exception as e:  # logged, retried: the test judges
                self.errors.append(str(e))
            self.stop_ev.wait(interval)

    def stop(self):
        self.stop_ev.set()
        self.thread.join(timeout=10)


def wait_state(cl, m, node_id, state, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = cl.call("ListNodes", m.admin.ListNodesRequest(region="r1")).nodes
        if [n.state for n in nodes if n.id == node_id] == [state]:
            return
        time.sleep(0.2)
    raise ot.TestError("node %d did not reach state %d in %.0fs" % (node_id, state, timeout))


def fmt(p):
    return "seg %d primary %d replicas %s resync %s epoch %d%s" % (
        p.index, p.primary_node_id, list(p.replica_node_ids), list(p.resync_node_ids),
        p.lease_epoch, " (exception)" if p.exception else "")


def shard_map(cl, m, **kw):
    return cl.call("GetShardMap", m.volume.GetVolumeShardingInfoRequest(
        max_segments=SEGMENTS, **kw))


def main():
    m = ot.pb()
    with ot.Cluster(3, name="leases", settings=SETTINGS) as c:
        c.start()
        leader = c.wait_leader(timeout=30)
        cl = c.client()
        meta = Meta(c)
        mp = meta.pb
        beats = []
        try:
            with ot.step("two nodes and a volume with 2 copies"):
                cl.call("AddRegion", m.admin.AddRegionRequest(
                    name="r1", request_id=ot.request_id()))
                ids = []
                for i in (1, 2):
                    tier = m.common.Tier(name="fast", path="/srv/n%d" % i,
                                         capacity_bytes=1 << 40)
                    ids.append(cl.call("RegisterNode", m.admin.RegisterNodeRequest(
                        name="n%d" % i, region="r1", address="127.0.0.1:%d" % (7000 + i),
                        tiers=[tier], request_id=ot.request_id())).node.id)
                n1, n2 = ids
                vol = cl.call("CreateVolume", m.volume.CreateVolumeRequest(
                    name="v", size_bytes=SEGMENTS << 20, segment_size_bytes=1 << 20,
                    home_region="r1", replicas=2, request_id=ot.request_id())).volume
                before = shard_map(cl, m, volume="v")
                ot.expect(len(before.segments) == SEGMENTS, "%d segments", len(before.segments))
                for p in before.segments:
                    ot.expect(p.lease_epoch == 1 and not p.exception and
                              {p.primary_node_id} | set(p.replica_node_ids) == {n1, n2},
                              "initial placement %s", fmt(p))
                was_n2 = [p.index for p in before.segments if p.primary_node_id == n2]
                ot.expect(0 < len(was_n2) < SEGMENTS, "n2 is primary of %d segments",
                          len(was_n2))

            with ot.step("the heartbeat answer carries the lease and map_index"):
                beats.append(Heartbeater(meta, n1))
                hb = meta.call("NodeHeartbeat", mp.NodeHeartbeatRequest(node_id=n1))
                ot.expect(hb.lease_ms == TIMEOUT_MS, "lease_ms %d", hb.lease_ms)
                ot.expect(hb.heartbeat_interval_ms == TIMEOUT_MS // 6,
                          "interval %d", hb.heartbeat_interval_ms)
                ot.expect(hb.map_index > 0, "map_index %d", hb.map_index)
                ot.expect(hb.state == m.common.NODE_UP, "state %d", hb.state)
                map_before = hb.map_index

            with ot.step("the silent node is marked DOWN and its segments promoted"):
                wait_state(cl, m, n2, m.common.NODE_DOWN, timeout=15)
                for kw in ({"volume": "v"}, {"volume_id": vol.id}):
                    after = shard_map(cl, m, **kw)
                    ot.expect(len(after.segments) == SEGMENTS, "%d segments",
                              len(after.segments))
                    for p in after.segments:
                        epoch = 2 if p.index in was_n2 else 1
                        ot.expect(p.primary_node_id == n1 and not p.replica_node_ids and
                                  list(p.resync_node_ids) == [n2] and
                                  p.lease_epoch == epoch and p.exception,
                                  "after failover (%s): %s", kw, fmt(p))
                    ot.expect(sorted(n.id for n in after.nodes) == [n1, n2],
                              "nodes %s", [n.id for n in after.nodes])
                hb = meta.call("NodeHeartbeat", mp.NodeHeartbeatRequest(node_id=n1))
                ot.expect(hb.map_index > map_before, "map_index %d -> %d",
                          map_before, hb.map_index)

            with ot.step("n2 heartbeats again and is UP; placements unchanged"):
                beats.append(Heartbeater(meta, n2))
                wait_state(cl, m, n2, m.common.NODE_UP, timeout=15)
                again = shard_map(cl, m, volume="v")
                for p in again.segments:
                    ot.expect(p.primary_node_id == n1 and list(p.resync_node_ids) == [n2],
                              "after UP: %s", fmt(p))

            seg = was_n2[0]
            with ot.step("stale or foreign reports are fenced"):
                for epoch, primary, what in ((1, n1, "stale epoch 1"),
                                             (2, n2, "node %d is not the primary" % n2)):
                    code, details = ot.status_code(
                        meta.call, "ReportReplicaSynced", mp.ReplicaReportRequest(
                            volume_id=vol.id, segment_index=seg, node_id=n2 if primary == n1
                            else n1, lease_epoch=epoch, primary_node_id=primary,
                            request_id=ot.request_id()))
                    ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and
                              what in details, "%s: %s %s", what, code, details)

            with ot.step("ReportReplicaSynced puts n2 back in sync"):
                r = meta.call("ReportReplicaSynced", mp.ReplicaReportRequest(
                    volume_id=vol.id, segment_index=seg, node_id=n2, lease_epoch=2,
                    primary_node_id=n1, request_id=ot.request_id()))
                p = r.placement
                ot.expect(p.index == seg and p.primary_node_id == n1 and
                          list(p.replica_node_ids) == [n2] and not p.resync_node_ids and
                          p.lease_epoch == 2, "after synced: %s", fmt(p))
                p = shard_map(cl, m, volume="v").segments[seg]
                ot.expect(list(p.replica_node_ids) == [n2], "shard map: %s", fmt(p))

            with ot.step("ReportReplicaFailure takes it out; a retry answers the same"):
                req = mp.ReplicaReportRequest(
                    volume_id=vol.id, segment_index=seg, node_id=n2, lease_epoch=2,
                    primary_node_id=n1, request_id=ot.request_id())
                r1 = meta.call("ReportReplicaFailure", req)
                r2 = meta.call("ReportReplicaFailure", req)
                for r in (r1, r2):
                    ot.expect(not r.placement.replica_node_ids and
                              list(r.placement.resync_node_ids) == [n2],
                              "after failure: %s", fmt(r.placement))

            with ot.step("followers redirect; bad requests are refused"):
                leader = c.wait_leader(timeout=10)
                follower = [x for x in c.members.values() if x.id != leader.id][0]
                try:
                    meta.stub(follower.grpc).ReportReplicaSynced(mp.ReplicaReportRequest(
                        volume_id=vol.id, segment_index=seg, node_id=n2, lease_epoch=2,
                        primary_node_id=n1), timeout=5)
                    raise ot.TestError("a follower accepted a report")
                except grpc.RpcError as e:
                    ot.expect(e.code() == grpc.StatusCode.UNAVAILABLE and
                              ot.leader_hint(e) == leader.grpc,
                              "follower: %s %s hint %s", e.code(), e.details(),
                              ot.leader_hint(e))
                bad = ((dict(volume_id=vol.id + 100, segment_index=0, node_id=n2,
                             lease_epoch=1, primary_node_id=n1), grpc.StatusCode.NOT_FOUND),
                       (dict(volume_id=vol.id, segment_index=SEGMENTS, node_id=n2,
                             lease_epoch=1, primary_node_id=n1), grpc.StatusCode.NOT_FOUND),
                       (dict(volume_id=vol.id, segment_index=0, node_id=n1,
                             lease_epoch=1, primary_node_id=n1),
                        grpc.StatusCode.INVALID_ARGUMENT),
                       (dict(volume_id=0, segment_index=0, node_id=n2,
                             lease_epoch=1, primary_node_id=n1),
                        grpc.StatusCode.INVALID_ARGUMENT))
                for fields, want in bad:
                    code, details = ot.status_code(
                        meta.call, "ReportReplicaFailure", mp.ReplicaReportRequest(**fields))
                    ot.expect(code == want and details, "%s: %s %s", fields, code, details)
                code, details = ot.status_code(shard_map, cl, m, volume_id=vol.id + 100)
                ot.expect(code == grpc.StatusCode.NOT_FOUND, "shard map of a bad id: %s %s",
                          code, details)

            with ot.step("a new leader gives silent nodes a full timeout of grace"):
                beats[1].stop()  # n2 falls silent...
                t0 = time.monotonic()
                leader.kill()    # ...and so does the leader that saw it last
                c.wait_leader(timeout=30, exclude=(leader.id,))
                wait_state(cl, m, n2, m.common.NODE_DOWN, timeout=30)
                took = time.monotonic() - t0
                ot.expect(took >= (TIMEOUT_MS + SETTINGS["election_timeout_ms"]) / 1000.0,
                          "n2 marked DOWN %.2fs after its last heartbeat", took)
                nodes = cl.call("ListNodes", m.admin.ListNodesRequest(region="r1")).nodes
                ot.expect([x.state for x in nodes if x.id == n1] == [m.common.NODE_UP],
                          "n1 (heartbeating) is not UP: %s", nodes)
                ot.log("n2 marked DOWN %.2fs after it fell silent", took)
                leader.start()
                c.wait_converged(timeout=30)
        finally:
            for b in beats:
                b.stop()
            meta.close()

        with ot.step("clean shutdown"):
            c.stop_all_checked()


if __name__ == "__main__":
    ot.run_test(main, timeout=240)
