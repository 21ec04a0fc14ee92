"""test_e2e_bad_input: malformed and hostile requests against a real
cluster never crash it or lose data.

deploy/ombra-local runs one region (1 metad, 2 stored, 1 proxy).  A volume
with 2 copies and 64 KiB segments holds known data (segment boundaries and
the last block included).  Then, one case at a time:

NBD (raw sockets on the proxy's NBD port, tests/py/ombra_cluster.NbdClient):
  garbage instead of the client flags, a bad option magic, an option
  announcing 2 MiB of data (connection closed); an unknown export name
  (NBD_REP_ERR_UNKNOWN with a message, the connection goes on and can
  attach the real volume); NBD_OPT_EXPORT_NAME with an unknown name
  (closed); garbage after the handshake (bad request magic: closed,
  nbd_protocol_errors_total rises); reads/writes beyond the end and at
  offsets that overflow 64 bits (EINVAL/ENOSPC, connection goes on, the
  write payload is skipped); oversized READ and WRITE (EINVAL, payload
  skipped), a WRITE announcing more than 64 MiB (closed); an unknown
  command (EINVAL); a client that stalls in the middle of a write payload
  (others are served meanwhile) and then disconnects, and one that
  disconnects with many reads in flight.
gRPC (the proxy's VolumeService): Read/Write/Trim beyond the end, with
  overflowing offsets, zero or oversized lengths, empty data, unknown and
  empty volume names: each an error status (the documented code where
  there is one) with a message.  StoreService on a stored: unaligned and
  cross-segment reads, a wrong segment size, an unknown volume, writes
  without or with an ungranted lease epoch, a write sent to a replica.

After every case: every process still runs and a fresh NBD client reads
back all the known data unchanged (the half-sent write changed nothing).
At the end the data is also read through gRPC and the logs hold no
sanitizer report.  Fails (exit 1) naming the case; logs dumped; every
process stopped.
"""

import os
import struct
import sys

import grpc

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402
import ombra_cluster as oc  # noqa: E402
from ombra_cluster import NbdClient, NbdError  # noqa: E402
from ombra_test import expect, log, step  # noqa: E402

VOLUME = "bad"
SEG = 64 * oc.KIB
VOL_SIZE = 16 * oc.MIB
EINVAL, ENOSPC = 22, 28
BUDGET_S = 180
# Written ranges: start, segment 0/1 boundary, a 3-segment run, the end.
RANGES = [(0, 32 * oc.KIB), (SEG - 6000, 12000), (5 * SEG + 4096, 3 * SEG),
          (VOL_SIZE - 3 * SEG - 512, 3 * SEG + 512)]
INV = grpc.StatusCode.INVALID_ARGUMENT


class Ctx:
    def __init__(self, c):
        self.c = c
        self.addr = c.nbd_addr()  # after c.up()
        self.model = {}  # offset -> bytes written there (ranges above)
        self.v = oc.stubs().volume
        self.st = oc.stubs().store

    def nbd(self, export=VOLUME):
        """A fresh NBD connection attached to `export`."""
        return NbdClient(self.addr).connect(export)

    def healthy(self, case):
        """Every process runs; a new NBD client reads back every range."""
        self.c.check_alive(what="after %s" % case)
        with self.nbd() as n:
            expect(n.size == VOL_SIZE, "after %s: export size %s", case, n.size)
            for off, data in self.model.items():
                err, got = n.read(off, len(data))
                expect(err == 0, "after %s: NBD read at %d failed errno %d", case, off, err)
                expect(got == data, "after %s: data at %d..%d changed", case, off,
                       off + len(data))
            n.disconnect()
        log("   %s: processes alive, %d ranges read back", case, len(self.model))

    def grpc_status(self, method, req):
        return ot.status_code(getattr(self.c.volume_stub(), method), req, timeout=30)

    def expect_status(self, method, req, codes, what):
        code, msg = self.grpc_status(method, req)
        expect(code in codes, "%s: %s answered %s %r, expected %s", what, method,
               code, msg, [c.name for c in codes])
        expect(msg, "%s: %s %s without a message", what, method, code.name)
        log("   %s -> %s: %s", what, code.name, msg)


def expect_closed(n, what):
    expect(n.closed_by_server(10.0), "%s: the server did not close the connection", what)
    n.close()


def nbd_cases(x):
    c = x.c
    proto_errs = lambda: c.metric(c.proxy()["http"], "nbd_protocol_errors_total")  # noqa

    with step("NBD: garbage instead of the client flags"):
        n = NbdClient(x.addr)
        n.recv_exact(18)  # greeting
        n.sock.sendall(b"GET / HTTP/1.1\r\nHost: ombra\r\n\r\n" * 4)
        expect_closed(n, "garbage client flags")
        # Garbage sent before even reading the greeting.
        n = NbdClient(x.addr)
        n.sock.sendall(os.urandom(4096))
        expect_closed(n, "garbage before the greeting")
        x.healthy("garbage before the handshake")

    with step("NBD: bad option magic, 2 MiB option data"):
        n = NbdClient(x.addr)
        n.greeting()
        n.sock.sendall(struct.pack(">QII", 0x1122334455667788, 7, 0))
        expect_closed(n, "bad option magic")
        n = NbdClient(x.addr)
        n.greeting()
        n.sock.sendall(struct.pack(">QII", oc.NBD_IHAVEOPT, oc.NBD_OPT_GO, 2 * oc.MIB))
        n.sock.sendall(b"\0" * 4096)
        expect_closed(n, "2 MiB option")
        x.healthy("bad options")

    with step("NBD: unknown export name"):
        n = NbdClient(x.addr)
        n.greeting()
        try:
            n.go("no-such-volume")
            raise ot.TestError("GO no-such-volume succeeded")
        except NbdError as e:
            expect("0x80000006" in str(e) and "no-such-volume" in str(e),
                   "GO of an unknown export: want NBD_REP_ERR_UNKNOWN naming it, got %s", e)
            log("   GO no-such-volume: %s", e)
        # The connection goes on: the right name attaches the volume.
        expect(n.go(VOLUME) == VOL_SIZE, "GO %s after an unknown export failed", VOLUME)
        err, data = n.read(0, 4096)
        expect(err == 0 and data == x.model[0][:4096], "read after a refused GO")
        n.disconnect()
        # NBD_OPT_EXPORT_NAME (1) has no error reply: the server closes.
        n = NbdClient(x.addr)
        n.greeting()
        n.send_option(1, b"no-such-volume")
        expect_closed(n, "EXPORT_NAME of an unknown volume")
        x.healthy("unknown export")

    with step("NBD: garbage after the handshake (bad request magic)"):
        before = proto_errs()
        n = x.nbd()
        n.sock.sendall(os.urandom(28) + b"\xff" * 1000)
        expect_closed(n, "bad request magic")
        ot.wait_until(lambda: proto_errs() > before, 5, "nbd_protocol_errors_total to rise")
        x.healthy("garbage after the handshake")

    with step("NBD: reads and writes beyond the end"):
        n = x.nbd()
        for off, ln in ((VOL_SIZE - 4096, 8192), (VOL_SIZE, 4096), (VOL_SIZE + 10 * oc.MIB, 512),
                        ((1 << 64) - 4096, 8192)):
            err, _ = n.read(off, ln)
            expect(err == EINVAL, "read %d+%d beyond the end: errno %d, want EINVAL",
                   off, ln, err)
            err = n.write(off, b"\x5a" * ln)
            expect(err == ENOSPC, "write %d+%d beyond the end: errno %d, want ENOSPC",
                   off, ln, err)
        # the skipped payloads left the stream in sync
        err, data = n.read(RANGES[3][0], 4096)
        expect(err == 0 and data == x.model[RANGES[3][0]][:4096], "read after the errors")
        n.disconnect()
        x.healthy("I/O beyond the end")

    with step("NBD: oversized requests, unknown command"):
        n = x.nbd()
        err, _ = n.read(0, 64 * oc.MIB)
        expect(err == EINVAL, "64 MiB READ: errno %d, want EINVAL", err)
        err = n.write(0, b"\xa5" * (33 * oc.MIB))
        expect(err == EINVAL, "33 MiB WRITE: errno %d, want EINVAL", err)
        err, _ = n._cmd(99, 0, 4096)
        expect(err == EINVAL, "command 99: errno %d, want EINVAL", err)
        err, data = n.read(0, 4096)
        expect(err == 0 and data == x.model[0][:4096], "read after oversized requests")
        n.disconnect()
        n = x.nbd()
        n.send_request(oc.NBD_CMD_WRITE, 0, 100 * oc.MIB)  # no payload follows
        n.sock.sendall(b"\x33" * 65536)
        expect_closed(n, "100 MiB WRITE")
        x.healthy("oversized requests")

    with step("NBD: client gone in the middle of a write payload"):
        off, data = RANGES[2][0], x.model[RANGES[2][0]]
        n = x.nbd()
        n.send_request(oc.NBD_CMD_WRITE, off, len(data))
        n.sock.sendall(b"\xee" * (len(data) // 2))
        # While it stalls there, other clients are served (and see the old data).
        x.healthy("a client stalled in a write payload")
        n.close()
        # and one that leaves 32 reads in flight
        n = x.nbd()
        for i in range(32):
            n.send_request(oc.NBD_CMD_READ, (i * SEG) % VOL_SIZE, SEG)
        n.close()
        x.healthy("clients vanishing mid-request")


def grpc_cases(x):
    v = x.v
    huge = (1 << 64) - 4096
    with step("gRPC: bad offsets and lengths, unknown volumes"):
        # A read of length 0 is either refused or answered with no data.
        try:
            r = x.c.volume_stub().Read(v.ReadRequest(volume=VOLUME, offset_bytes=4096,
                                                     length_bytes=0), timeout=30)
            expect(r.data == b"", "Read of length 0 returned %d bytes", len(r.data))
            log("   Read 4096+0 -> OK, no data")
        except grpc.RpcError as e:
            expect(e.code() == INV and e.details(), "Read of length 0: %s %r",
                   e.code(), e.details())
            log("   Read 4096+0 -> %s: %s", e.code().name, e.details())
        for off, ln in ((VOL_SIZE, 4096), (VOL_SIZE - 4096, 8192), (huge, 8192),
                        (0, 64 * oc.MIB)):
            x.expect_status("Read", v.ReadRequest(volume=VOLUME, offset_bytes=off,
                                                  length_bytes=ln),
                            (INV, grpc.StatusCode.OUT_OF_RANGE), "Read %d+%d" % (off, ln))
        for off, ln in ((VOL_SIZE, 4096), (VOL_SIZE - 512, 1024), (huge, 8192), (0, 0),
                        (0, 33 * oc.MIB)):
            x.expect_status("Write", v.WriteRequest(volume=VOLUME, offset_bytes=off,
                                                    data=b"\x99" * ln,
                                                    request_id=ot.request_id()),
                            (INV, grpc.StatusCode.OUT_OF_RANGE), "Write %d+%d" % (off, ln))
        x.expect_status("Trim", v.TrimRequest(volume=VOLUME, offset_bytes=VOL_SIZE - 4096,
                                              length_bytes=8192, request_id=ot.request_id()),
                        (INV, grpc.StatusCode.OUT_OF_RANGE), "Trim beyond the end")
        nf = (grpc.StatusCode.NOT_FOUND,)
        x.expect_status("Read", v.ReadRequest(volume="nope", offset_bytes=0,
                                              length_bytes=4096), nf, "Read unknown volume")
        x.expect_status("Write", v.WriteRequest(volume="nope", offset_bytes=0,
                                                data=b"x" * 4096, request_id=ot.request_id()),
                        nf, "Write unknown volume")
        x.expect_status("Trim", v.TrimRequest(volume="nope", offset_bytes=0,
                                              length_bytes=4096, request_id=ot.request_id()),
                        nf, "Trim unknown volume")
        x.expect_status("Read", v.ReadRequest(volume="", offset_bytes=0, length_bytes=4096),
                        (INV, grpc.StatusCode.NOT_FOUND), "Read without a volume name")
        x.healthy("bad gRPC requests")

    with step("StoreService: unaligned, cross-segment, unknown volume, bad epochs, replica"):
        st = x.st
        vol = x.c.admin().call("GetVolume", v.GetVolumeRequest(name=VOLUME)).volume
        _v, segs, nodes = x.c.shard_map(VOLUME)
        s0 = segs[0]
        primary = x.c.store_stub(nodes[s0.primary_node_id].address)
        replica = x.c.store_stub(nodes[s0.replica_node_ids[0]].address)
        cases = [
            ("Read unaligned", "Read", st.StoreReadRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=SEG, offset_bytes=512,
                length_bytes=4096), (INV,)),
            ("Read across segments", "Read", st.StoreReadRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=SEG,
                offset_bytes=SEG - 4096, length_bytes=8192), (INV,)),
            ("Read wrong segment size", "Read", st.StoreReadRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=2 * SEG,
                offset_bytes=0, length_bytes=4096), (INV, grpc.StatusCode.FAILED_PRECONDITION)),
            ("Read unknown volume", "Read", st.StoreReadRequest(
                volume_id=vol.id + 1000, segment_index=0, segment_size_bytes=SEG,
                offset_bytes=0, length_bytes=4096), None),
            ("Write without an epoch", "Write", st.StoreWriteRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=SEG,
                lease_epoch=0, offset_bytes=0, data=b"\x42" * 4096,
                request_id=ot.request_id()), (INV,)),
            ("Write with an epoch metad never granted", "Write", st.StoreWriteRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=SEG,
                lease_epoch=s0.lease_epoch + 1000, offset_bytes=0, data=b"\x42" * 4096,
                request_id=ot.request_id()), None),
            ("Write outside the segment", "Write", st.StoreWriteRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=SEG,
                lease_epoch=s0.lease_epoch, offset_bytes=SEG, data=b"\x42" * 4096,
                request_id=ot.request_id()), (INV,)),
        ]
        cases.append(("Write to a replica (not the primary)", "Write", st.StoreWriteRequest(
            volume_id=vol.id, segment_index=0, segment_size_bytes=SEG,
            lease_epoch=s0.lease_epoch, offset_bytes=0, data=b"\x42" * 4096,
            request_id=ot.request_id()), (grpc.StatusCode.FAILED_PRECONDITION,), replica))
        for what, method, req, codes, *node in cases:
            stub = node[0] if node else primary
            code, msg = ot.status_code(getattr(stub, method), req, timeout=20)
            expect(code != grpc.StatusCode.OK, "StoreService %s answered OK", what)
            expect(codes is None or code in codes, "StoreService %s: %s %r, expected %s",
                   what, code, msg, codes and [k.name for k in codes])
            expect(msg, "StoreService %s: %s without a message", what, code.name)
            log("   store %s -> %s: %s", what, code.name, msg)
        x.healthy("bad StoreService requests")


def main():
    with oc.LocalCluster("badin") as c:
        with step("cluster, volume, known data"):
            c.up()
            x = Ctx(c)
            c.create_volume(VOLUME, VOL_SIZE, segment_size=SEG, replicas=2)
            c.wait_volume_served(VOLUME)
            with x.nbd() as n:
                for off, ln in RANGES:
                    data = os.urandom(ln)
                    expect(n.write(off, data) == 0, "NBD write at %d failed", off)
                    x.model[off] = data
                expect(n.flush() == 0, "NBD flush failed")
                n.disconnect()
            x.healthy("writing the known data")
        nbd_cases(x)
        grpc_cases(x)
        with step("everything reads back through gRPC; no sanitizer report"):
            for off, data in x.model.items():
                got = c.volume_stub().Read(x.v.ReadRequest(
                    volume=VOLUME, offset_bytes=off, length_bytes=len(data)), timeout=30).data
                expect(got == data, "gRPC read at %d differs", off)
            c.check_alive()
            c.check_sanitizers()


if __name__ == "__main__":
    ot.run_test(main, BUDGET_S)
