"""test_e2e_corrupt: bytes flipped in a stored data file are detected and
repaired from the other copy, on read and by the background scrub.

deploy/ombra-local runs one region (1 metad, 2 stored, 1 proxy).  A volume
with 2 copies and 64 KiB segments gets known random data through the
proxy's VolumeService.  Then, in r1-stored1's data file of the volume
(TIER/vol-<id>.data, block b at byte b*4096: docs/storage-format.md):

1. read path: bytes of a block are flipped; reads through the proxy and
   directly from that node (StoreService.Read) return the written data,
   ombra_stored_repaired_blocks_total on the node rises, and the block's
   bytes in the file are the written ones again;
2. scrub: a block that nobody reads is flipped; within a bound the scrub
   counts it (ombra_stored_scrub_bad_blocks_total), repairs it (file
   bytes restored, repaired counter up), and both reads return the data;
3. both copies bad: the same block is flipped on both nodes; a read never
   returns the wrong bytes (DATA_LOSS naming the block or another error),
   ombra_stored_repair_failed_blocks_total rises, and a new write through
   the proxy makes the block good again;
4. the rest of the volume still reads back as written, nothing crashed,
   and no daemon printed a sanitizer report.

Fails (exit 1) naming the step and what differed; process logs are dumped;
every process is stopped.
"""

import os
import sys

import grpc

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402
import ombra_cluster as oc  # noqa: E402
from ombra_test import expect, log, step  # noqa: E402

VOLUME = "corrupt"
SEG = 64 * oc.KIB
VOL_SIZE = 8 * oc.MIB
DATA_SIZE = 4 * oc.MIB      # written with random data
NODE = "r1-stored1"
OTHER = "r1-stored2"
READ_BLOCK = 21             # segment 1: corrupted, then read
SCRUB_BLOCK = 3 * 16 + 9    # segment 3: corrupted, never read by the test
BOTH_BLOCK = 6 * 16 + 2     # segment 6: corrupted on both copies
BUDGET_S = 180


def flip(path, block, at=100, n=16):
    """XOR n bytes of `block` in the data file at `path` with 0xFF."""
    with open(path, "r+b") as f:
        f.seek(block * oc.BLOCK + at)
        old = f.read(n)
        expect(len(old) == n, "%s: block %d is beyond the end of the file", path, block)
        f.seek(block * oc.BLOCK + at)
        f.write(bytes(b ^ 0xFF for b in old))
        f.flush()
        os.fsync(f.fileno())
    log("   flipped %d bytes of block %d in %s", n, block, path)


def file_block(path, block):
    with open(path, "rb") as f:
        f.seek(block * oc.BLOCK)
        return f.read(oc.BLOCK)


class Volume:
    """The test volume, with the bytes written to it."""

    def __init__(self, c, vol):
        self.c = c
        self.vol = vol
        self.model = bytearray(VOL_SIZE)
        self.v = oc.stubs().volume
        self.st = oc.stubs().store

    def write(self, offset, data):
        self.c.volume_stub().Write(self.v.WriteRequest(
            volume=VOLUME, offset_bytes=offset, data=data, request_id=ot.request_id()),
            timeout=30)
        self.model[offset:offset + len(data)] = data

    def proxy_read(self, offset, length):
        return self.c.volume_stub().Read(self.v.ReadRequest(
            volume=VOLUME, offset_bytes=offset, length_bytes=length), timeout=30).data

    def node_read(self, node, block):
        """StoreService.Read of the whole segment holding `block` on node;
        the response."""
        seg = block * oc.BLOCK // SEG
        addr = self.c.process(node)["grpc"]
        return self.c.store_stub(addr).Read(self.st.StoreReadRequest(
            volume_id=self.vol.id, segment_index=seg, segment_size_bytes=SEG,
            offset_bytes=seg * SEG, length_bytes=SEG), timeout=30)

    def want_block(self, block):
        return bytes(self.model[block * oc.BLOCK:(block + 1) * oc.BLOCK])

    def want_segment(self, block):
        seg = block * oc.BLOCK // SEG
        return bytes(self.model[seg * SEG:(seg + 1) * SEG])

    def check_all(self):
        got = self.proxy_read(0, VOL_SIZE)
        if got != bytes(self.model):
            bad = [b for b in range(VOL_SIZE // oc.BLOCK)
                   if got[b * oc.BLOCK:(b + 1) * oc.BLOCK] != self.want_block(b)]
            raise ot.TestError("volume differs from what was written in blocks %s" % bad[:10])


def main():
    with oc.LocalCluster("corrupt") as c:
        with step("cluster, volume with 64 KiB segments, 4 MiB of random data"):
            c.up()
            vol = c.create_volume(VOLUME, VOL_SIZE, segment_size=SEG, replicas=2)
            c.wait_volume_served(VOLUME)
            vm = Volume(c, vol)
            for off in range(0, DATA_SIZE, oc.MIB):
                vm.write(off, os.urandom(oc.MIB))
            vm.check_all()
            files = c.data_files(NODE, vol.id)
            expect(len(files) == 1, "%s: expected one data file of volume %d, found %s",
                   NODE, vol.id, files)
            path = files[0]
            others = c.data_files(OTHER, vol.id)
            expect(len(others) == 1, "%s: data files %s", OTHER, others)
            for b in (READ_BLOCK, SCRUB_BLOCK, BOTH_BLOCK):
                expect(file_block(path, b) == vm.want_block(b),
                       "%s does not hold block %d at byte %d (format changed?)",
                       path, b, b * oc.BLOCK)
        http = c.process(NODE)["http"]

        def counters():
            t = c.metrics(http)
            return {k: oc.parse_metric(t, "ombra_stored_" + k) or 0.0
                    for k in ("repaired_blocks_total", "scrub_bad_blocks_total",
                              "repair_failed_blocks_total", "scrubbed_blocks_total")}

        with step("read path: a flipped block is repaired on read"):
            before = counters()
            flip(path, READ_BLOCK)
            # Directly from the corrupted node first (the proxy may pick
            # either copy), then through the proxy.
            r = vm.node_read(NODE, READ_BLOCK)
            expect(r.data == vm.want_segment(READ_BLOCK),
                   "direct read of the segment of block %d from %s returned wrong data",
                   READ_BLOCK, NODE)
            got = vm.proxy_read(READ_BLOCK * oc.BLOCK - 512, 4096 + 1024)
            expect(got == bytes(vm.model[READ_BLOCK * oc.BLOCK - 512:
                                         (READ_BLOCK + 1) * oc.BLOCK + 512]),
                   "proxy read around block %d returned wrong data", READ_BLOCK)
            after = ot.wait_until(
                lambda: (lambda a: a if a["repaired_blocks_total"] >
                         before["repaired_blocks_total"] else None)(counters()),
                10, "ombra_stored_repaired_blocks_total on %s to rise" % NODE)
            log("   repaired by the read itself: %d block(s); counters %s -> %s",
                r.repaired_blocks, before, after)
            expect(r.repaired_blocks >= 1 or
                   after["scrub_bad_blocks_total"] > before["scrub_bad_blocks_total"],
                   "neither the read nor the scrub reports repairing block %d", READ_BLOCK)
            expect(file_block(path, READ_BLOCK) == vm.want_block(READ_BLOCK),
                   "block %d in %s still corrupt after the repair", READ_BLOCK, path)

        with step("scrub: a flipped block nobody reads is found and repaired"):
            before = counters()
            flip(path, SCRUB_BLOCK)
            ot.wait_until(lambda: file_block(path, SCRUB_BLOCK) == vm.want_block(SCRUB_BLOCK),
                          30, "the scrub to repair block %d in %s" % (SCRUB_BLOCK, path),
                          interval=0.25)
            after = ot.wait_until(
                lambda: (lambda a: a if a["scrub_bad_blocks_total"] >
                         before["scrub_bad_blocks_total"] and a["repaired_blocks_total"] >
                         before["repaired_blocks_total"] else None)(counters()),
                10, "scrub_bad_blocks_total and repaired_blocks_total on %s to rise" % NODE)
            log("   counters %s -> %s", before, after)
            expect(vm.node_read(NODE, SCRUB_BLOCK).data == vm.want_segment(SCRUB_BLOCK),
                   "direct read of block %d's segment wrong after the scrub", SCRUB_BLOCK)
            expect(vm.proxy_read(SCRUB_BLOCK * oc.BLOCK, oc.BLOCK) ==
                   vm.want_block(SCRUB_BLOCK), "proxy read of block %d wrong", SCRUB_BLOCK)

        with step("both copies bad: no wrong data, DATA_LOSS, then a write heals it"):
            before = counters()
            other_path = others[0]
            flip(other_path, BOTH_BLOCK, at=200)
            flip(path, BOTH_BLOCK, at=300)
            # The scrub of one node may repair it from the other before the
            # second flip lands (a race of a few ms): then reads succeed,
            # and must return the written data.  Wrong data is never fine.
            lost = 0
            for node in (NODE, OTHER):
                code, msg = ot.status_code(vm.node_read, node, BOTH_BLOCK)
                if code == grpc.StatusCode.OK:
                    expect(vm.node_read(node, BOTH_BLOCK).data == vm.want_segment(BOTH_BLOCK),
                           "%s returned wrong data for block %d", node, BOTH_BLOCK)
                    log("   %s: read OK (repaired before the second flip)", node)
                    continue
                expect(code == grpc.StatusCode.DATA_LOSS and str(BOTH_BLOCK) in msg,
                       "%s: read of bad block %d: %s %s (want DATA_LOSS naming it)",
                       node, BOTH_BLOCK, code, msg)
                log("   %s: %s %s", node, code.name, msg)
                lost += 1
            code, msg = ot.status_code(vm.proxy_read, BOTH_BLOCK * oc.BLOCK, oc.BLOCK)
            if code == grpc.StatusCode.OK:
                expect(not lost, "proxy read of block %d answered OK while no copy is "
                       "good", BOTH_BLOCK)
                expect(vm.proxy_read(BOTH_BLOCK * oc.BLOCK, oc.BLOCK) ==
                       vm.want_block(BOTH_BLOCK), "proxy returned wrong data for block %d",
                       BOTH_BLOCK)
            else:
                expect(msg, "proxy error for block %d has no message", BOTH_BLOCK)
                log("   proxy: %s %s", code.name, msg)
            if lost:
                ot.wait_until(lambda: counters()["repair_failed_blocks_total"] >
                              before["repair_failed_blocks_total"], 10,
                              "repair_failed_blocks_total on %s to rise" % NODE)
            fresh = os.urandom(oc.BLOCK)
            vm.write(BOTH_BLOCK * oc.BLOCK, fresh)
            expect(vm.proxy_read(BOTH_BLOCK * oc.BLOCK, oc.BLOCK) == fresh,
                   "block %d does not read back after rewriting it", BOTH_BLOCK)
            for node in (NODE, OTHER):
                expect(vm.node_read(node, BOTH_BLOCK).data == vm.want_segment(BOTH_BLOCK),
                       "%s: block %d wrong after rewriting it", node, BOTH_BLOCK)

        with step("the whole volume reads back; every process alive"):
            vm.check_all()
            c.check_alive()
            c.check_sanitizers()


if __name__ == "__main__":
    ot.run_test(main, BUDGET_S)
