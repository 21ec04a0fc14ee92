"""test_watch: AdminService.Watch streams an event for every state change.

Three members.  A Watch stream on the leader (from_index 0) is read by a
thread into a queue.  Because the stream has no "subscribed" signal, the
test first creates probe volumes until one of them shows up (at most 10
tries); from then on every change must arrive: five created volumes, a
resize and a delete, each as kind "volume" with the right name and
deleted flag, with strictly increasing indexes.  A second stream opened
with from_index = the last index seen must not repeat old events, and a
stream cancelled by the client must not disturb the server.

Fails (exit 1) listing the events that were expected and those received."""

import os
import queue
import sys
import threading
import time

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402


class Watcher:
    """A Watch stream drained by a thread into a queue of WatchEvents."""

    def __init__(self, client, endpoint, from_index):
        m = ot.pb()
        self.events = queue.Queue()
        self.error = None
        self.stream = client.stub(endpoint).Watch(
            m.admin.WatchRequest(from_index=from_index), timeout=240)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            for ev in self.stream:
                self.events.put(ev)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                self.error = e

    def next_matching(self, pred, timeout):
        """Return the first event with pred(ev) true within timeout; events
        before it are returned too, as (match, skipped)."""
        skipped = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, skipped
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                return None, skipped
            if pred(ev):
                return ev, skipped
            skipped.append(ev)

    def close(self):
        self.stream.cancel()
        self.thread.join(10)


def fmt(evs):
    return ["%d:%s:%s%s" % (e.index, e.kind, e.name, ":deleted" if e.deleted else "")
            for e in evs]


def main():
    m = ot.pb()
    with ot.Cluster(3, name="watch") as c:
        c.start()
        leader = c.wait_leader(timeout=30)
        cl = c.client()
        cl.call("AddRegion", m.admin.AddRegionRequest(name="r1", request_id=ot.request_id()))

        def create(name):
            return cl.call("CreateVolume", m.volume.CreateVolumeRequest(
                name=name, size_bytes=1 << 30, home_region="r1",
                request_id=ot.request_id())).volume

        w = Watcher(cl, leader.grpc, 0)
        try:
            with ot.step("the stream delivers an event for a created volume"):
                first = None
                for i in range(10):
                    name = "probe-%d" % i
                    create(name)
                    first, _ = w.next_matching(
                        lambda e: e.kind == "volume" and e.name.startswith("probe-"), 1.0)
                    if first is not None:
                        break
                ot.expect(w.error is None, "Watch failed: %s", w.error)
                ot.expect(first is not None, "no volume event after 10 creates")
                ot.expect(first.index > 0 and not first.deleted,
                          "bad first event %s", fmt([first]))

            with ot.step("every later change arrives in order"):
                expected = []
                for i in range(5):
                    create("w%d" % i)
                    expected.append(("w%d" % i, False))
                cl.call("ResizeVolume", m.volume.ResizeVolumeRequest(
                    name="w1", new_size_bytes=2 << 30, request_id=ot.request_id()))
                expected.append(("w1", False))
                cl.call("DeleteVolume", m.volume.DeleteVolumeRequest(
                    name="w2", request_id=ot.request_id()))
                expected.append(("w2", True))
                got = []
                last = first.index
                for name, deleted in expected:
                    ev, skipped = w.next_matching(
                        lambda e: e.kind == "volume" and e.name.startswith("w"), 10.0)
                    ot.expect(ev is not None, "expected %s%s, got only %s (error %s)",
                              name, " (deleted)" if deleted else "", fmt(got + skipped),
                              w.error)
                    got.append(ev)
                    ot.expect((ev.name, ev.deleted) == (name, deleted),
                              "expected %s deleted=%s, got %s", name, deleted, fmt([ev]))
                    ot.expect(ev.index > last, "index went from %d to %d", last, ev.index)
                    last = ev.index
                ot.log("events: %s", fmt(got))

            with ot.step("a stream from the last index does not repeat old events"):
                w2 = Watcher(cl, leader.grpc, last)
                try:
                    ev = None
                    for i in range(10):
                        create("after-%d" % i)
                        ev, skipped = w2.next_matching(
                            lambda e: e.name.startswith("after-"), 1.0)
                        ot.expect(all(e.index > last for e in skipped),
                                  "stream from %d repeated %s", last, fmt(skipped))
                        if ev is not None:
                            break
                    ot.expect(ev is not None and ev.index > last,
                              "second stream delivered nothing after 10 creates")
                finally:
                    w2.close()
        finally:
            w.close()

        with ot.step("the server survives cancelled streams"):
            time.sleep(0.5)
            create("after-cancel")
            c.check_alive()
            c.wait_converged(timeout=30)

        with ot.step("clean shutdown"):
            c.stop_all_checked()


if __name__ == "__main__":
    ot.run_test(main, timeout=300)
