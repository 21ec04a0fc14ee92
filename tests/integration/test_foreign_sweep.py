"""test_foreign_sweep: ombra-stored's start-up sweep reclaims the disk
space of foreign copies left by a previous run (docs/stored.md "Foreign
copies", stored/foreign_sweep.c).

A real cluster from deploy/ombra-local with two regions (r1, r2: one
metad, two stored, one proxy each):
- volume "away" (4 segments of 1 MiB, home r1) written through r1's
  proxy; every segment pulled as a cache entry (Pull, COPY_CACHE) into
  one node N of r2, so its data files hold the volume;
- volume "here" (home r2, 2 copies, so on N too) written through r2's
  proxy: home data;
- N is killed (SIGKILL: no clean shutdown, the records are gone) and
  started again: within SWEEP_S seconds away's data files on N are gone
  and N's log names the sweep; here's data files on N are still there
  and read back what was written; ListCopies on N is empty; a new Pull
  of away into N works again.

Fails (exit 1) with the step, what was seen and the process logs."""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402

MIB = 1 << 20
SEGMENTS = 4
SWEEP_S = 15
BUDGET_S = 120


def main():
    st = oc.stubs()
    s = st.store
    with oc.LocalCluster("fsweep", regions=2) as c:
        with ot.step("two regions start"):
            c.up()
        node = c.stored(2)[0]
        name = node["name"]
        with ot.step("cache entries of r1's volume away pulled into %s" % name):
            away = c.create_volume("away", SEGMENTS * MIB, segment_size=MIB, replicas=2,
                                   region="r1")
            c.wait_volume_served("away", i=1)
            c.volume_stub(1).Write(st.volume.WriteRequest(
                volume="away", offset_bytes=0, data=bytes([0x3D]) * (SEGMENTS * MIB)),
                timeout=30)
            for seg in range(SEGMENTS):
                r = c.store_stub(node["grpc"]).Pull(s.PullRequest(
                    volume_id=away.id, segment_index=seg, segment_size_bytes=MIB,
                    offset_bytes=0, length_bytes=MIB, kind=s.COPY_CACHE), timeout=20)
                ot.expect(r.pulled_bytes == MIB, "segment %d: pulled %d bytes",
                          seg, r.pulled_bytes)
            ot.expect(c.data_files(name, away.id), "no data file of away on %s", name)

        with ot.step("volume here homed in r2, on %s too" % name):
            here = c.create_volume("here", 2 * MIB, segment_size=MIB, replicas=2,
                                   region="r2")
            c.wait_volume_served("here", i=2)
            data = bytes((i * 13 + 5) % 251 for i in range(2 * MIB))
            c.volume_stub(2).Write(st.volume.WriteRequest(
                volume="here", offset_bytes=0, data=data), timeout=30)
            ot.expect(c.data_files(name, here.id), "no data file of here on %s", name)

        with ot.step("%s killed and started again: away's data is reclaimed" % name):
            c.kill(name)
            c.start(name)
            c.reset_channel(node["grpc"])  # the old connection died with it
            ot.wait_until(lambda: not c.data_files(name, away.id), SWEEP_S,
                          "the sweep to delete away's data files on %s" % name,
                          interval=0.3)
            with open(c.log_path(name), "rb") as f:
                text = f.read().decode("utf-8", "replace")
            ot.expect("start-up sweep: volume %d" % away.id in text,
                      "%s's log does not name the sweep of volume %d", name, away.id)
            lc = c.store_stub(node["grpc"]).ListCopies(s.ListCopiesRequest(), timeout=5)
            ot.expect(len(lc.copies) == 0, "copies after the restart: %s", lc.copies)

        with ot.step("home data stays; away can be pulled again"):
            ot.expect(c.data_files(name, here.id), "here's data files on %s are gone", name)
            got = c.volume_stub(2).Read(st.volume.ReadRequest(
                volume="here", offset_bytes=0, length_bytes=2 * MIB), timeout=20)
            ot.expect(got.data == data, "here reads other bytes after the sweep")
            r = c.store_stub(node["grpc"]).Pull(s.PullRequest(
                volume_id=away.id, segment_index=1, segment_size_bytes=MIB,
                offset_bytes=0, length_bytes=MIB, kind=s.COPY_CACHE), timeout=20)
            ot.expect(r.pulled_bytes == MIB, "pulled %d bytes after the sweep", r.pulled_bytes)
        c.check_sanitizers()


if __name__ == "__main__":
    ot.run_test(main, BUDGET_S)
