"""test_shadow_converge: every shadow of a volume with many of them reaches
lag 0 soon after the writes stop (docs/stored.md "Foreign copies",
anti-entropy; docs/shadows.md).

A real cluster from deploy/ombra-local with two regions (r1, r2: one
metad, two stored, one proxy each; stored's --shadow-check-ms is the
default 5000).  Volume "many" (SEGMENTS segments of 1 MiB, home r1, 2
copies) with ShadowPolicy {regions [r2], create_reads_per_s 0.01}:
- reads of every segment through r2's proxy (gRPC, EVENTUAL) until metad
  places a shadow of each in r2 and they are filled;
- writes through r1's proxy (propagated to the shadows) to every segment
  while r2's proxy keeps reading;
- then one write per segment directly at its primary (StoreService.Write:
  no proxy, so nothing is propagated and only anti-entropy can catch the
  shadows up);
- within CONVERGE_S seconds every shadow (ListCopies on r2's nodes) has
  lag_versions 0, lag_ms 0 and the primary's GetSegmentInfo version as
  watermark, and a foreign_ok read with that min_version answers the
  bytes written at the primary.

Before the fix in stored/foreign_shadow.c, anti-entropy started at most 4
rounds per 500 ms tick, always the first due shadows of its hash table,
so beyond ~40 shadows per node the rest were never checked and stayed
lagging for good (seen as "lag 43v" for minutes after deploy/main-job).

Fails (exit 1) with the step, what was seen and the process logs."""

import os
import sys
import threading

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402

MIB = 1 << 20
BLOCK = 4096
SEGMENTS = 96
CONVERGE_S = 15
BUDGET_S = 170


def main():
    st = oc.stubs()
    s, m = st.store, ot.pb()
    with oc.LocalCluster("shadowconv", regions=2) as c:
        with ot.step("two regions start"):
            c.up()
        admin = c.admin()
        r2_ids = {n.id for n in c.nodes().values() if n.region == "r2"}

        def read_all_in_r2():
            for seg in range(SEGMENTS):
                c.volume_stub(2).Read(st.volume.ReadRequest(
                    volume="many", offset_bytes=seg * MIB, length_bytes=BLOCK,
                    consistency=m.common.EVENTUAL), timeout=10)

        def shadow_nodes():
            """{segment: address of its shadow in r2}."""
            _, segs, nodes = c.shard_map("many")
            return {p.index: nodes[sh.node_id].address
                    for p in segs for sh in p.shadows if sh.node_id in r2_ids}

        def copies(where):
            """{segment: CopyInfo} of the shadows on r2's nodes."""
            out = {}
            for addr in set(where.values()):
                lc = c.store_stub(addr).ListCopies(
                    s.ListCopiesRequest(volume_id=vol.id), timeout=5)
                for ci in lc.copies:
                    if where.get(ci.segment_index) == addr:
                        out[ci.segment_index] = ci
            return out

        with ot.step("volume many (%d segments) with shadows in r2" % SEGMENTS):
            vol = c.create_volume("many", SEGMENTS * MIB, segment_size=MIB, replicas=2,
                                  region="r1")
            c.wait_volume_served("many", i=1)
            for off in range(0, SEGMENTS * MIB, 8 * MIB):
                c.volume_stub(1).Write(st.volume.WriteRequest(
                    volume="many", offset_bytes=off, data=bytes([0x11]) * (8 * MIB)),
                    timeout=30)
            admin.call("SetShadowPolicy", m.admin.SetShadowPolicyRequest(
                name="many", policy=m.common.ShadowPolicy(
                    regions=["r2"], create_reads_per_s=0.01, idle_ms=600000),
                request_id=ot.request_id()))
            where = {}

            def placed():
                read_all_in_r2()
                where.update(shadow_nodes())
                return len(where) == SEGMENTS
            ot.wait_until(placed, 60, "a shadow of every segment in r2", interval=0.5)

            def filled():
                cs = copies(where)
                return len(cs) == SEGMENTS and all(
                    not ci.filling and ci.present_blocks == ci.total_blocks
                    for ci in cs.values())
            ot.wait_until(filled, 60, "every shadow filled", interval=0.5)
            ot.log("%d shadows on %d nodes of r2", len(where), len(set(where.values())))

        with ot.step("writes through r1's proxy while r2's proxy reads"):
            stop = threading.Event()
            errors = []

            def reader():
                try:
                    while not stop.is_set():
                        read_all_in_r2()
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)
            t = threading.Thread(target=reader)
            t.start()
            try:
                for rnd in range(3):
                    for seg in range(SEGMENTS):
                        c.volume_stub(1).Write(st.volume.WriteRequest(
                            volume="many", offset_bytes=seg * MIB + (rnd * 5 % 256) * BLOCK,
                            data=bytes([0x20 + rnd]) * (2 * BLOCK)), timeout=20)
            finally:
                stop.set()
                t.join()
            ot.expect(not errors, "reads through r2's proxy failed: %s", errors[:1])

        with ot.step("a write at each segment's primary alone (not propagated)"):
            _, segs, nodes = c.shard_map("many")
            written = {}
            for p in segs:
                data = bytes([(0x40 + p.index) % 256]) * BLOCK
                w = c.store_stub(nodes[p.primary_node_id].address).Write(s.StoreWriteRequest(
                    volume_id=vol.id, segment_index=p.index, segment_size_bytes=MIB,
                    lease_epoch=p.lease_epoch or 1,
                    offset_bytes=p.index * MIB + 200 * BLOCK, data=data,
                    request_id=ot.request_id()), timeout=10)
                written[p.index] = (w.version, data)

        with ot.step("every shadow converges to lag 0 within %d s" % CONVERGE_S):
            seen = {}

            def converged():
                cs = copies(where)
                seen.clear()
                seen.update({seg: (ci.watermark, ci.lag_versions, ci.lag_ms)
                             for seg, ci in cs.items()
                             if (ci.watermark != written[seg][0] or ci.lag_versions != 0
                                 or ci.lag_ms != 0)})
                return len(cs) == SEGMENTS and not seen
            try:
                ot.wait_until(converged, CONVERGE_S, "every shadow current", interval=0.5)
            except ot.TestError:
                ot.log("%d shadows still behind (segment: watermark, lag v, lag ms): %s",
                       len(seen), sorted(seen.items())[:10])
                raise
            for seg in range(SEGMENTS):
                fr = c.store_stub(where[seg]).Read(s.StoreReadRequest(
                    volume_id=vol.id, segment_index=seg, offset_bytes=seg * MIB + 200 * BLOCK,
                    length_bytes=BLOCK, foreign_ok=True, min_version=written[seg][0]),
                    timeout=10)
                ot.expect(fr.foreign and fr.data == written[seg][1],
                          "segment %d: shadow read answered foreign=%s, other bytes",
                          seg, fr.foreign)
        c.check_sanitizers()


if __name__ == "__main__":
    ot.run_test(main, BUDGET_S)
