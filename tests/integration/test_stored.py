"""test_stored: ombra-stored's data path against a real ombra-metad.

One metad member (node_timeout_ms 3000) and two ombra-stored processes in
region r1; a volume with RF 2 and 64 KiB segments.  StoreService is driven
directly from Python:
  - writes at segment 0's primary (aligned and unaligned) read back from the
    primary and from the replica, versions increase, a retried request id
    gets the same version;
  - a stale lease epoch and a write to the non-primary are
    FAILED_PRECONDITION; bad offsets/lengths are INVALID_ARGUMENT;
  - bytes flipped in the replica's data file: a read from the replica
    still returns the right data and ombra_stored_repaired_blocks_total
    rises;
  - the replica is given a block "newer" than the primary's (as if a
    former primary had sent it and died before acknowledging), then
    SIGKILLed; a write is acknowledged only after the primary reported it
    (GetShardMap then lists it in resync_node_ids); the replica restarts,
    is re-synced (back in replica_node_ids), serves the new data, and the
    divergent block was replaced by the primary's under a newer version;
  - concurrent writers keep going while the replica crashes, returns and
    is re-synced; afterwards both copies hold the same data and versions
    for every block of the primary's segments;
  - with the scrub on, a corrupted block is found and repaired without
    any read (ombra_stored_scrub_bad_blocks_total rises);
  - the primary is SIGKILLed: metad promotes the replica (higher epoch),
    which refuses the old epoch and takes writes in the new one; the old
    primary restarts, is re-synced as a replica, holds the new data and
    refuses writes as primary;
  - a deleted volume's data files disappear from both nodes;
  - right after each of several resizes, a write to a new segment is
    accepted at once by its primary and by its replica (no replica
    failure reported, nothing in resync_node_ids) and reads back from the
    replica;
  - with metad gone, a write whose replica fails is not acknowledged
    (UNAVAILABLE), and then the node lease runs out: writes and STRONG reads are
    UNAVAILABLE "lease expired";
  - metad restarts with its state lost: the heartbeat answered NOT_FOUND
    makes each node register again under its name (ListNodes lists both,
    /healthz 200 again);
  - both daemons stop cleanly on SIGTERM (exit 0, no sanitizer report).

Fails (exit 1) naming the phase, with the daemons' log tails."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402

import grpc  # noqa: E402

SEG = 64 * 1024
VOL_SIZE = 16 * SEG
BLK = 4096


def store_pb():
    ot.pb()  # puts the generated stubs on sys.path when run by hand
    import store_pb2
    import store_pb2_grpc
    return store_pb2, store_pb2_grpc


class Stored:
    """One ombra-stored process: ports, data directory, log."""

    def __init__(self, cluster, name, region="r1"):
        self.bin = ot.find_binary("ombra-stored", "stored")
        self.cluster = cluster
        self.name = name
        self.region = region
        self.base = ot.reserve_ports(1)
        self.grpc = "%s:%d" % (ot.HOST, self.base)
        self.http = "%s:%d" % (ot.HOST, self.base + 1)
        self.dir = os.path.join(cluster.dir, name)
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "stored.log")
        self.proc = None
        self.node_id = 0
        os.makedirs(self.dir, exist_ok=True)
        spb, sgrpc = store_pb()
        self.chan = ot.channel(self.grpc)
        self.stub = sgrpc.StoreServiceStub(self.chan)

    def start(self, scrub_rate=0):
        logf = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        try:
            self.proc = subprocess.Popen(
                [self.bin, "--name", self.name, "--region", self.region,
                 "--listen", self.grpc, "--http", self.http,
                 "--metad", ",".join(self.cluster.endpoints()),
                 "--data-dir", self.data_dir, "--tier",
                 "fast:%s:1GiB" % os.path.join(self.data_dir, "fast"),
                 "--scrub-rate", str(scrub_rate)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        finally:
            logf.close()
        ot.log("started %s pid %d grpc %s", self.name, self.proc.pid, self.grpc)

    def wait_healthy(self, timeout=30):
        def ok():
            self.check_alive()
            return ot.http_get(self.http, "/healthz")[0] == 200
        ot.wait_until(ok, timeout, "%s /healthz 200" % self.name)
        spb, _ = store_pb()
        self.node_id = self.stub.Probe(spb.ProbeRequest(sent_unix_us=7), timeout=5).node_id

    def check_alive(self):
        ot.expect(self.proc is not None and self.proc.poll() is None,
                  "%s exited (status %s)", self.name,
                  None if self.proc is None else self.proc.returncode)

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)
        ot.log("killed %s (SIGKILL)", self.name)
        self.proc = None

    def stop(self, timeout=20):
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            rc = "hung (SIGKILLed)"
        self.proc = None
        return rc

    def metric(self, name):
        code, body = ot.http_get(self.http, "/metrics")
        ot.expect(code == 200, "%s /metrics: HTTP %s", self.name, code)
        m = re.search(r"^%s(?:\{\})?\s+(\S+)$" % re.escape(name), body, re.M)
        return float(m.group(1)) if m else 0.0

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError as e:
            return "(no log: %s)" % e

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None
        self.chan.close()
        ot.release_ports(self.base, 1)


def code_of(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc_block(data, vol, block, version):
    """stored/crc.h crc_block(): data, then volume, block, version (LE64)."""
    tail = b"".join(x.to_bytes(8, "little") for x in (vol, block, version))
    return crc32c(tail, crc32c(data))


def flip_byte(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        byte = f.read(1)
        f.seek(off)
        f.write(bytes([byte[0] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())


def pattern(tag, n):
    """n bytes derived from tag (deterministic, not repetitive per block)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += ("%s-%08d|" % (tag, i)).encode()
        i += 1
    return bytes(out[:n])


def main():
    m = ot.pb()
    spb, _ = store_pb()
    nodes = []
    with ot.Cluster(1, name="stored", settings={"node_timeout_ms": 3000}) as c:
        try:
            run(c, m, spb, nodes)
        except BaseException:
            for n in nodes:
                sys.stderr.write("---- %s log tail:\n%s\n" % (n.name, n.log_tail(80)))
            raise
        finally:
            for n in nodes:
                n.close()


def shard_map(cl, m, name):
    return cl.call("GetShardMap", m.volume.GetVolumeShardingInfoRequest(volume=name))


def run(c, m, spb, nodes):
    c.start()
    c.wait_leader(timeout=30)
    cl = c.client()
    cl.call("AddRegion", m.admin.AddRegionRequest(name="r1", request_id=ot.request_id()))
    a = Stored(c, "s1")
    b = Stored(c, "s2")
    nodes += [a, b]

    with ot.step("two storage nodes start, register and serve"):
        a.start()
        b.start()
        a.wait_healthy()
        b.wait_healthy()
        ot.expect(a.node_id != b.node_id and a.node_id and b.node_id,
                  "node ids %d %d", a.node_id, b.node_id)

    with ot.step("create a volume RF 2 with 64 KiB segments"):
        vol = cl.call("CreateVolume", m.volume.CreateVolumeRequest(
            name="v1", size_bytes=VOL_SIZE, segment_size_bytes=SEG, home_region="r1",
            replicas=2, request_id=ot.request_id())).volume
        sm = shard_map(cl, m, "v1")
        p0 = sm.segments[0]
        ot.expect(len(p0.replica_node_ids) == 1, "segment 0 placement %s", p0)
        byid = {a.node_id: a, b.node_id: b}
        prim = byid[p0.primary_node_id]
        repl = byid[p0.replica_node_ids[0]]
        epoch = p0.lease_epoch or 1
        ot.log("segment 0: primary %s replica %s epoch %d", prim.name, repl.name, epoch)

    def write(node, off, data, seg=0, ep=None, rid=None, zero=False, length=0):
        return node.stub.Write(spb.StoreWriteRequest(
            volume_id=vol.id, segment_index=seg, segment_size_bytes=SEG,
            lease_epoch=epoch if ep is None else ep, offset_bytes=off, data=data,
            zero=zero, length_bytes=length,
            request_id=rid or ot.request_id()), timeout=15).version

    def read(node, off, length, seg=0, any_copy=False):
        return node.stub.Read(spb.StoreReadRequest(
            volume_id=vol.id, segment_index=seg, segment_size_bytes=SEG,
            offset_bytes=off, length_bytes=length, any_copy=any_copy), timeout=15)

    expected = bytearray(SEG)

    with ot.step("aligned and unaligned writes read back from both copies"):
        d1 = pattern("one", 3 * BLK)
        v1 = write(prim, BLK, d1)
        expected[BLK:4 * BLK] = d1
        d2 = pattern("two", 5000)
        v2 = write(prim, 2 * BLK + 100, d2)
        expected[2 * BLK + 100:2 * BLK + 100 + 5000] = d2
        rid = ot.request_id()
        d3 = pattern("three", 10)
        v3 = write(prim, SEG - 10, d3, rid=rid)
        expected[SEG - 10:] = d3
        ot.expect(0 < v1 < v2 < v3, "versions do not increase: %d %d %d", v1, v2, v3)
        ot.expect(v1 >> 40 == epoch, "version %x not in epoch %d", v1, epoch)
        again = write(prim, SEG - 10, d3, rid=rid)
        ot.expect(again == v3, "retried request id got version %d, first %d", again, v3)
        z = write(prim, 3 * BLK, b"", zero=True, length=BLK)
        expected[3 * BLK:4 * BLK] = bytes(BLK)
        ot.expect(z > v3, "zero write version %d after %d", z, v3)
        for node in (prim, repl):
            r = read(node, 0, SEG)
            ot.expect(r.data == bytes(expected), "%s: data differs", node.name)
            ot.expect(len(r.block_versions) == SEG // BLK and len(r.block_crcs) == SEG // BLK,
                      "%s: %d versions %d crcs", node.name, len(r.block_versions),
                      len(r.block_crcs))
            ot.expect(r.block_versions[0] == 0 and r.block_versions[1] == v1 and
                      r.block_versions[2] == v2 and r.block_versions[3] == z and
                      r.block_versions[-1] == v3,
                      "%s: block versions %s", node.name, list(r.block_versions))

    with ot.step("stale epoch, non-primary and bad offsets are refused"):
        code, msg = code_of(write, prim, 0, b"x" * BLK, ep=epoch - 1 if epoch > 1 else 0)
        if epoch > 1:
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION, "stale epoch: %s %s", code, msg)
        code, msg = code_of(write, repl, 0, b"x" * BLK)
        ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "not the primary" in msg,
                  "write to the replica: %s %s", code, msg)
        code, msg = code_of(write, prim, SEG - 100, b"x" * 200)
        ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "write across segments: %s %s",
                  code, msg)
        code, msg = code_of(write, prim, 0, b"")
        ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "empty write: %s %s", code, msg)
        code, msg = code_of(read, prim, 100, BLK)
        ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "unaligned read: %s %s", code, msg)
        code, msg = code_of(read, prim, 0, 2 * SEG)
        ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "read beyond segment: %s %s",
                  code, msg)
        code, msg = code_of(read, prim, VOL_SIZE, BLK, seg=16)
        ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "read beyond volume: %s %s",
                  code, msg)
        code, msg = code_of(write, prim, 0, b"x", seg=0, ep=epoch + 5)
        ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION, "future epoch: %s %s", code, msg)
        code, msg = code_of(lambda: prim.stub.Read(spb.StoreReadRequest(
            volume_id=vol.id + 1000, segment_index=0, offset_bytes=0, length_bytes=BLK),
            timeout=15))
        ot.expect(code == grpc.StatusCode.NOT_FOUND, "unknown volume: %s %s", code, msg)
        r = read(prim, 0, SEG)
        ot.expect(r.data == bytes(expected), "primary data changed by refused requests")

    with ot.step("a corrupted block on the replica is repaired on read"):
        before = repl.metric("ombra_stored_repaired_blocks_total")
        path = os.path.join(repl.data_dir, "fast", "vol-%d.data" % vol.id)
        flip_byte(path, BLK + 17)
        r = read(repl, 0, SEG)
        ot.expect(r.data == bytes(expected), "replica returned wrong data after corruption")
        ot.expect(r.repaired_blocks == 1, "repaired_blocks %d", r.repaired_blocks)
        after = repl.metric("ombra_stored_repaired_blocks_total")
        ot.expect(after == before + 1, "repair counter %s -> %s", before, after)

    with ot.step("an unaligned write over a corrupted block on the primary"):
        before = prim.metric("ombra_stored_repaired_blocks_total")
        flip_byte(os.path.join(prim.data_dir, "fast", "vol-%d.data" % vol.id), 2 * BLK + 9)
        d5 = pattern("merge", 10)
        v = write(prim, 2 * BLK + 3000, d5)
        expected[2 * BLK + 3000:2 * BLK + 3010] = d5
        ot.expect(prim.metric("ombra_stored_repaired_blocks_total") == before + 1,
                  "the primary did not repair the block it merged with")
        for node in (prim, repl):
            r = read(node, 0, SEG)
            ot.expect(r.data == bytes(expected), "%s: merged data differs", node.name)
            ot.expect(r.block_versions[2] == v, "%s: block 2 version %d, want %d",
                      node.name, r.block_versions[2], v)
        v3 = v  # the latest version so far

    ghost_block = 12
    with ot.step("the replica receives a block no primary acknowledged"):
        r = read(prim, 0, SEG)
        ot.expect(r.block_crcs[1] == crc_block(r.data[BLK:2 * BLK], vol.id, 1,
                                               r.block_versions[1]),
                  "Python crc_block disagrees with stored's")
        ghost = pattern("ghost", BLK)
        gver = v3 + 1000
        rr = repl.stub.Replicate(spb.ReplicateRequest(
            volume_id=vol.id, segment_index=0, lease_epoch=epoch,
            segment_size_bytes=SEG, primary_node_id=prim.node_id,
            blocks=[spb.BlockData(block_index=ghost_block, version=gver, data=ghost,
                                  crc32c=crc_block(ghost, vol.id, ghost_block, gver))]),
            timeout=10)
        ot.expect(rr.applied_blocks == 1, "ghost block not applied: %s", rr)
        bad = spb.BlockData(block_index=ghost_block, version=gver + 1, data=ghost,
                            crc32c=crc_block(ghost, vol.id, ghost_block, gver))
        code, msg = code_of(repl.stub.Replicate, spb.ReplicateRequest(
            volume_id=vol.id, segment_index=0, lease_epoch=epoch, segment_size_bytes=SEG,
            blocks=[bad]), timeout=10)
        ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT and "crc" in msg,
                  "bad crc: %s %s", code, msg)
        code, msg = code_of(repl.stub.Replicate, spb.ReplicateRequest(
            volume_id=vol.id, segment_index=0, lease_epoch=epoch, segment_size_bytes=SEG,
            blocks=[spb.BlockData(block_index=SEG // BLK, version=gver, data=ghost,
                                  crc32c=crc_block(ghost, vol.id, SEG // BLK, gver))]),
            timeout=10)
        ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "block outside segment: %s %s",
                  code, msg)

    with ot.step("a failed replica is reported before the write is acknowledged"):
        repl.kill()
        d4 = pattern("four", 2 * BLK)
        t0 = time.monotonic()
        v4 = write(prim, 8 * BLK, d4)
        expected[8 * BLK:10 * BLK] = d4
        ot.log("write without the replica acknowledged in %.2fs", time.monotonic() - t0)
        sm = shard_map(cl, m, "v1")
        p0 = sm.segments[0]
        ot.expect(repl.node_id in p0.resync_node_ids and
                  repl.node_id not in p0.replica_node_ids,
                  "after the failure segment 0 is %s", p0)
        ot.expect(v4 > v3, "version %d", v4)

    with ot.step("the replica returns and is re-synced"):
        repl.start(scrub_rate=4000)
        repl.wait_healthy()

        def synced():
            p = shard_map(cl, m, "v1").segments[0]
            return repl.node_id in p.replica_node_ids and repl.node_id not in p.resync_node_ids
        ot.wait_until(synced, 40, "replica back in replica_node_ids")
        ot.wait_until(lambda: code_of(read, repl, 0, SEG)[0] == grpc.StatusCode.OK, 10,
                      "the replica to serve reads again")
        r = read(repl, 0, SEG)
        ot.expect(r.data == bytes(expected), "re-synced replica has different data")
        ot.expect(r.block_versions[8] == v4, "re-synced block version %d, want %d",
                  r.block_versions[8], v4)
        pr = read(prim, 0, SEG)
        ot.expect(r.block_versions[ghost_block] == pr.block_versions[ghost_block] > gver,
                  "divergent block: replica version %d, primary %d, ghost %d",
                  r.block_versions[ghost_block], pr.block_versions[ghost_block], gver)
        v5 = write(prim, 0, pattern("five", BLK))
        expected[0:BLK] = pattern("five", BLK)
        r = read(repl, 0, BLK)
        ot.expect(r.data == bytes(expected[0:BLK]) and r.block_versions[0] == v5,
                  "write after re-sync not on the replica")

    with ot.step("concurrent writes survive a replica crash and re-sync"):
        sm = shard_map(cl, m, "v1")
        mine = [p.index for p in sm.segments if p.primary_node_id == prim.node_id]
        ot.expect(mine, "the primary holds no segment")
        eps = {p.index: p.lease_epoch or 1 for p in sm.segments}
        stop = threading.Event()
        errors = []
        acked = [0]
        lock = threading.Lock()

        def writer(wid):
            n = 0
            while not stop.is_set():
                seg = mine[(wid + n) % len(mine)]
                blk = seg * (SEG // BLK) + 1 + wid  # one block per writer per segment
                data = pattern("w%d-%d" % (wid, n), BLK)
                rid = ot.request_id()
                deadline = time.monotonic() + 20
                while True:
                    try:
                        write(prim, blk * BLK, data, seg=seg, ep=eps[seg], rid=rid)
                        with lock:
                            acked[0] += 1
                        break
                    except grpc.RpcError as e:
                        if time.monotonic() > deadline:
                            errors.append("%s: %s" % (e.code(), e.details()))
                            return
                        time.sleep(0.05)
                n += 1

        ths = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
        for t in ths:
            t.start()
        try:
            time.sleep(0.5)
            repl.kill()
            time.sleep(1.0)
            repl.start(scrub_rate=4000)
            repl.wait_healthy()

            def all_synced():
                segs = shard_map(cl, m, "v1").segments
                return all(repl.node_id in segs[i].replica_node_ids for i in mine)
            ot.wait_until(all_synced, 60, "every segment of the primary re-synced")
            time.sleep(0.5)
        finally:
            stop.set()
            for t in ths:
                t.join(30)
        ot.expect(not errors, "writes failed: %s", errors[:3])
        ot.log("%d writes acknowledged around the crash", acked[0])
        for seg in mine:
            a_ = read(prim, seg * SEG, SEG, seg=seg)
            b_ = read(repl, seg * SEG, SEG, seg=seg, any_copy=True)
            ot.expect(a_.data == b_.data and list(a_.block_versions) == list(b_.block_versions),
                      "segment %d differs between the copies after re-sync", seg)
        r = read(prim, 0, SEG)
        expected[:] = r.data

    with ot.step("the scrub finds and repairs a corrupted block by itself"):
        path = os.path.join(repl.data_dir, "fast", "vol-%d.data" % vol.id)
        bad0 = repl.metric("ombra_stored_scrub_bad_blocks_total")
        rep0 = repl.metric("ombra_stored_repaired_blocks_total")
        flip_byte(path, 2 * BLK + 5)
        code, _ = code_of(read, repl, 0, SEG, any_copy=True)
        ot.expect(code == grpc.StatusCode.DATA_LOSS,
                  "an any_copy read of a corrupted block answered %s (it never repairs)", code)

        def repaired():
            # any_copy never repairs: it only succeeds once the scrub did.
            c, _ = code_of(read, repl, 0, SEG, any_copy=True)
            return (c == grpc.StatusCode.OK and
                    repl.metric("ombra_stored_scrub_bad_blocks_total") > bad0 and
                    repl.metric("ombra_stored_repaired_blocks_total") > rep0)
        ot.wait_until(repaired, 30, "the scrub to find and repair the block")
        r = read(repl, 0, SEG, any_copy=True)
        ot.expect(r.data == bytes(expected), "scrub-repaired replica data differs")
        ot.expect(repl.metric("ombra_stored_scrubbed_blocks_total") > 0, "no blocks scrubbed")

    with ot.step("the primary fails: the replica is promoted, the old primary re-synced"):
        prim.kill()

        def promoted():
            p = shard_map(cl, m, "v1").segments[0]
            return p if p.primary_node_id == repl.node_id else None
        p0 = ot.wait_until(promoted, 30, "segment 0 promoted to the replica")
        new_epoch = p0.lease_epoch
        ot.expect(new_epoch > epoch and prim.node_id in p0.resync_node_ids,
                  "after promotion segment 0 is %s", p0)
        d6 = pattern("six", 3 * BLK)
        v6 = write(repl, 4 * BLK, d6, ep=new_epoch)
        expected[4 * BLK:7 * BLK] = d6
        ot.expect(v6 >> 40 == new_epoch, "version %x not in epoch %d", v6, new_epoch)
        code, msg = code_of(write, repl, 0, b"z" * BLK, ep=epoch)
        ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "stale" in msg,
                  "old epoch at the new primary: %s %s", code, msg)
        prim.start()
        prim.wait_healthy()

        def back():
            p = shard_map(cl, m, "v1").segments[0]
            return prim.node_id in p.replica_node_ids and prim.node_id not in p.resync_node_ids
        ot.wait_until(back, 40, "the old primary back in replica_node_ids")
        # Its own map may lag metad's by a heartbeat: it refuses until then.
        ot.wait_until(lambda: code_of(read, prim, 0, SEG)[0] == grpc.StatusCode.OK, 10,
                      "the old primary to serve reads as a replica")
        r = read(prim, 0, SEG)
        ot.expect(r.data == bytes(expected), "the old primary's data differs after re-sync")
        ot.expect(r.block_versions[4] == v6, "block 4 version %d, want %d",
                  r.block_versions[4], v6)
        code, msg = code_of(write, prim, 0, b"z" * BLK, ep=new_epoch)
        ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "not the primary" in msg,
                  "write to the old primary: %s %s", code, msg)

    with ot.step("a deleted volume's data is deleted on every node"):
        vol2 = cl.call("CreateVolume", m.volume.CreateVolumeRequest(
            name="v2", size_bytes=4 * SEG, segment_size_bytes=SEG, home_region="r1",
            replicas=2, request_id=ot.request_id())).volume
        p = shard_map(cl, m, "v2").segments[0]
        node = {a.node_id: a, b.node_id: b}[p.primary_node_id]
        node.stub.Write(spb.StoreWriteRequest(
            volume_id=vol2.id, segment_index=0, segment_size_bytes=SEG,
            lease_epoch=p.lease_epoch or 1, offset_bytes=0, data=pattern("v2", BLK),
            request_id=ot.request_id()), timeout=15)
        files = [os.path.join(n.data_dir, "fast", "vol-%d.data" % vol2.id) for n in (a, b)]
        ot.expect(all(os.path.exists(f) for f in files), "v2 data files missing: %s", files)
        cl.call("DeleteVolume", m.volume.DeleteVolumeRequest(name="v2",
                                                             request_id=ot.request_id()))
        ot.wait_until(lambda: not any(os.path.exists(f) for f in files), 20,
                      "v2's data files to be deleted")
        r = read(a if a is not prim else b, 0, BLK, any_copy=True)
        ot.expect(r.data == bytes(expected[0:BLK]), "v1 damaged by deleting v2")

    with ot.step("writes right after a resize: accepted by the primary and the replica"):
        nseg = 2
        cl.call("CreateVolume", m.volume.CreateVolumeRequest(
            name="vr", size_bytes=nseg * SEG, segment_size_bytes=SEG, home_region="r1",
            replicas=2, request_id=ot.request_id()))
        fails0 = sum(n.metric("ombra_stored_replica_failures_total") for n in (a, b))
        for i in range(6):
            nseg += 1
            v = cl.call("ResizeVolume", m.volume.ResizeVolumeRequest(
                name="vr", new_size_bytes=nseg * SEG, request_id=ot.request_id())).volume
            p = shard_map(cl, m, "vr").segments[nseg - 1]
            byid = {a.node_id: a, b.node_id: b}
            pn, rn = byid[p.primary_node_id], byid[p.replica_node_ids[0]]
            data = pattern("grow%d" % i, 2 * BLK)
            off = (nseg - 1) * SEG + SEG - 2 * BLK  # the new last blocks
            ver = pn.stub.Write(spb.StoreWriteRequest(
                volume_id=v.id, segment_index=nseg - 1, segment_size_bytes=SEG,
                lease_epoch=p.lease_epoch or 1, offset_bytes=off, data=data,
                request_id=ot.request_id()), timeout=15).version
            p = shard_map(cl, m, "vr").segments[nseg - 1]
            ot.expect(not p.resync_node_ids and rn.node_id in p.replica_node_ids,
                      "after a write right after resize %d: %s", i, p)
            r = rn.stub.Read(spb.StoreReadRequest(
                volume_id=v.id, segment_index=nseg - 1, segment_size_bytes=SEG,
                offset_bytes=off, length_bytes=2 * BLK), timeout=15)
            ot.expect(r.data == data and list(r.block_versions) == [ver, ver],
                      "resize %d: the replica holds versions %s, want %d",
                      i, list(r.block_versions), ver)
        fails = sum(n.metric("ombra_stored_replica_failures_total") for n in (a, b))
        ot.expect(fails == fails0, "replica failures after resizes: %s -> %s", fails0, fails)

    with ot.step("a replica fails while metad is down: the write is not acknowledged"):
        for mem in c.members.values():
            mem.kill()
        prim.proc.send_signal(signal.SIGSTOP)  # segment 0's replica now
        try:
            t0 = time.monotonic()
            code, msg = code_of(write, repl, 5 * BLK, pattern("never", BLK), ep=new_epoch)
            ot.log("answered after %.1fs: %s %s", time.monotonic() - t0, code, msg)
            ot.expect(code == grpc.StatusCode.UNAVAILABLE and "metad could not" in msg,
                      "write with a failed replica and no metad: %s %s", code, msg)
        finally:
            prim.proc.send_signal(signal.SIGCONT)

    with ot.step("without metad the node lease expires (self-fencing)"):
        time.sleep(3.5)  # lease_ms = node_timeout_ms = 3000
        code, msg = code_of(write, prim, 0, b"y" * BLK)
        ot.expect(code == grpc.StatusCode.UNAVAILABLE and "lease expired" in msg,
                  "write without a lease: %s %s", code, msg)
        code, msg = code_of(read, repl, 0, BLK)
        ot.expect(code == grpc.StatusCode.UNAVAILABLE and "lease expired" in msg,
                  "STRONG read without a lease: %s %s", code, msg)
        ot.expect(prim.metric("ombra_stored_lease_valid") == 0, "lease gauge still 1")
        ot.expect(ot.http_get(prim.http, "/healthz")[0] == 503, "healthz not 503")

    with ot.step("metad loses its state: the nodes register again"):
        for mem in c.members.values():
            shutil.rmtree(mem.data_dir, ignore_errors=True)
            mem.start()
        c.wait_leader(timeout=30)
        cl = c.client()
        cl.call("AddRegion", m.admin.AddRegionRequest(name="r1", request_id=ot.request_id()))

        def registered():
            names = {n.name for n in cl.call("ListNodes", m.admin.ListNodesRequest()).nodes}
            return names >= {"s1", "s2"}
        t0 = time.monotonic()
        # A node whose channel to metad is in gRPC's reconnect backoff (it
        # grows while metad is down) may take a while to get through.
        ot.wait_until(registered, 120, "both nodes registered again with the new metad")
        ot.log("both registered again after %.1fs", time.monotonic() - t0)
        for n in (a, b):
            ot.wait_until(lambda: ot.http_get(n.http, "/healthz")[0] == 200, 20,
                          "%s /healthz 200 after registering again" % n.name)

    with ot.step("both daemons stop cleanly on SIGTERM"):
        for n in (a, b):
            rc = n.stop()
            ot.expect(rc == 0, "%s exit status %s", n.name, rc)


if __name__ == "__main__":
    ot.run_test(main, timeout=240)
