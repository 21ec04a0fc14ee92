"""test_foreign_copies: foreign copies (cache entries) on ombra-stored,
docs/shadows.md and docs/stored.md "Foreign copies".

A real cluster from deploy/ombra-local with two regions (r1, r2: one
metad, two stored, one proxy each).  Volume "f" (2 segments of 1 MiB,
home r1, 2 copies) written through r1's proxy.  Checked against the
StoreService of the nodes themselves:
- Pull of 64 KiB of segment 0 (COPY_CACHE) into a node of r2 answers the
  bytes pulled, the primary's segment version as watermark and the
  source; ListCopies shows the entry (kind, present/total blocks,
  watermark, cache bytes and capacity);
- a foreign_ok read there with min_version = the current version answers
  the same bytes as the primary with foreign = true; a block outside the
  pulled range is refused "not present";
- two writes W1 (block 0) and W2 (block 1) at the primary: the read with
  min_version = W2's version is refused (FAILED_PRECONDITION, "stale");
  W2's Replicate shadow=true sent first (out of order) does not move the
  watermark yet; W1's moves it through W2's, remembered, to W2's version;
  W2 again changes nothing, and the read with min_version = W2 answers
  the new bytes;
- eight concurrent, overlapping pulls into the 8 segments (new on the
  node) of volume "h" leave them equal to what was written, with no
  checksum failure in the node's log; three rounds, the copies dropped
  (and h's data deleted on the node) in between, no pull refused;
- a pull right after h's last copy is dropped (its data being deleted)
  answers OK, and the blocks it pulled read back after the deletion;
- Write at the primary: a retried request_id answers the first version
  and prev_version; a writer_epoch older than one seen is refused
  FAILED_PRECONDITION "stale writer epoch", 0 is not fenced;
- a Replicate with invalidate_blocks drops the block from present (read
  "not present"), and does not move the watermark across a gap; one
  outside the segment or with version <= prev_version is INVALID_ARGUMENT;
- a BOUNDED read (max_staleness_ms) is served while the copy was confirmed
  recently; an EVENTUAL read (neither) always;
- DropCopy of the whole segment: ListCopies is empty, reads are refused,
  a Replicate shadow=true to it is refused FAILED_PRECONDITION;
- bad input: unaligned offsets, an unknown volume, a range past the
  segment, a segment past the volume get INVALID_ARGUMENT with a message;
  a Pull at a home copy of the segment FAILED_PRECONDITION.

Then volume "g" (2 segments, home r1) with ShadowPolicy {regions [r2],
create_reads_per_s 0.01, idle_ms 3000}, read through r2's proxy until
metad places a shadow of each segment in r2:
- the shadow nodes' ListCopies show whole COPY_SHADOW copies, not filling,
  with the primary's version as watermark;
- a write through r1's proxy reaches them (propagation), a write at the
  primary alone is caught up by anti-entropy (GetSegmentInfo, pull), and
  foreign_ok reads with the new min_version answer the new bytes;
- a DropCopy with cache_only (the prefetch engine's eviction) leaves a
  shadow whole;
- a DropCopy of a shadow still placed there is re-created and filled, and
  a Replicate shadow=true reaching it meanwhile is accepted;
- once the reads stop and metad removes the idle shadows, the nodes drop
  their copies.

Last, a third stored joins r2 with --cache-bytes 128KiB: pulls beyond
the capacity evict the least recently used cache entry (ListCopies shows
which), a pull larger than the capacity is refused RESOURCE_EXHAUSTED,
and deleting the volume drops its entries.

Fails (exit 1) with the step, what was seen and the process logs."""

import os
import socket
import subprocess
import sys
import threading

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402

MIB = 1 << 20
BLOCK = 4096
BUDGET_S = 150


def code_of(fn):
    """(grpc.StatusCode, details) of a call expected to fail."""
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise ot.TestError("the call succeeded but was expected to fail")


def main():
    st = oc.stubs()
    s = st.store
    with oc.LocalCluster("foreigncp", regions=2) as c:
        with ot.step("two regions start"):
            c.up()
        with ot.step("volume f in r1, written through r1's proxy"):
            vol = c.create_volume("f", 2 * MIB, segment_size=MIB, replicas=2, region="r1")
            c.wait_volume_served("f", i=1)
            data = bytes((i * 7 + 3) % 251 for i in range(MIB))
            c.volume_stub(1).Write(st.volume.WriteRequest(
                volume="f", offset_bytes=0, data=data), timeout=20)
            _, segs, nodes = c.shard_map("f")
            p0 = segs[0]
            prim = c.store_stub(nodes[p0.primary_node_id].address)
            home = c.store_stub(nodes[p0.replica_node_ids[0]].address) \
                if p0.replica_node_ids else prim
            r2 = c.stored(2)[0]
            fnode = c.store_stub(r2["grpc"])
            epoch = p0.lease_epoch or 1

        def read(stub, off, length, **kw):
            return stub.Read(s.StoreReadRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=MIB,
                offset_bytes=off, length_bytes=length, **kw), timeout=10)

        def copies():
            return list(fnode.ListCopies(s.ListCopiesRequest(volume_id=vol.id),
                                         timeout=5).copies)

        with ot.step("Pull 64 KiB of segment 0 into a node of r2 (COPY_CACHE)"):
            v0 = read(prim, 0, 64 * 1024).segment_version
            ot.expect(v0 != 0, "the primary answers segment_version 0 after a write")
            r = fnode.Pull(s.PullRequest(volume_id=vol.id, segment_index=0,
                                         segment_size_bytes=MIB, offset_bytes=0,
                                         length_bytes=64 * 1024,
                                         kind=s.COPY_CACHE), timeout=20)
            ot.expect(r.pulled_bytes == 64 * 1024, "pulled_bytes %d", r.pulled_bytes)
            ot.expect(r.watermark == v0, "watermark %d, primary's version %d",
                      r.watermark, v0)
            ot.expect(r.source_node_id in (p0.primary_node_id, *p0.replica_node_ids),
                      "source %d is not a home copy", r.source_node_id)
            again = fnode.Pull(s.PullRequest(volume_id=vol.id, segment_index=0,
                                             offset_bytes=0, length_bytes=64 * 1024,
                                             kind=s.COPY_CACHE), timeout=20)
            ot.expect(again.pulled_bytes == 0, "a second pull copied %d bytes",
                      again.pulled_bytes)

        with ot.step("ListCopies shows the cache entry"):
            lc = fnode.ListCopies(s.ListCopiesRequest(volume_id=vol.id), timeout=5)
            ot.expect(len(lc.copies) == 1, "copies %s", lc.copies)
            ci = lc.copies[0]
            ot.expect(ci.volume_id == vol.id and ci.segment_index == 0 and
                      ci.kind == s.COPY_CACHE and ci.present_blocks == 16 and
                      ci.total_blocks == 256 and ci.watermark == v0 and
                      ci.confirmed_unix_ms != 0 and ci.lag_versions == 0,
                      "copy %s", ci)
            ot.expect(lc.cache_bytes == 64 * 1024 and lc.cache_capacity_bytes >= MIB,
                      "cache bytes %d capacity %d", lc.cache_bytes, lc.cache_capacity_bytes)

        with ot.step("a foreign_ok read with min_version = current is served"):
            fr = read(fnode, 0, 64 * 1024, foreign_ok=True, min_version=v0)
            ot.expect(fr.foreign, "not answered from the foreign copy")
            ot.expect(fr.data == data[:64 * 1024], "foreign copy answers other bytes")
            ot.expect(fr.segment_version == v0, "segment_version %d, want %d",
                      fr.segment_version, v0)
            code, msg = code_of(lambda: read(fnode, 64 * 1024, BLOCK, foreign_ok=True))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "not present" in msg,
                      "read outside the pulled range: %s %s", code, msg)
            code, msg = code_of(lambda: read(fnode, 0, BLOCK))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION,
                      "read without foreign_ok: %s %s", code, msg)

        def write_block(block, fill):
            w = prim.Write(s.StoreWriteRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=MIB,
                lease_epoch=epoch, offset_bytes=block * BLOCK,
                data=bytes([fill]) * BLOCK, request_id=ot.request_id()), timeout=10)
            got = read(prim, block * BLOCK, BLOCK)
            ot.expect(got.block_versions[0] == w.version, "block %d version %d, write %d",
                      block, got.block_versions[0], w.version)
            return w, s.BlockData(block_index=block, version=w.version,
                                  crc32c=got.block_crcs[0], data=got.data)

        def replicate(w, blk):
            return fnode.Replicate(s.ReplicateRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=MIB,
                lease_epoch=epoch, shadow=True, prev_version=w.prev_version,
                version=w.version, blocks=[blk],
                primary_node_id=p0.primary_node_id), timeout=10)

        with ot.step("new writes at the primary: the copy is stale until propagated"):
            w1, b1 = write_block(0, 0xA1)
            w2, b2 = write_block(1, 0xB2)
            ot.expect(w1.prev_version == v0 and w2.prev_version == w1.version,
                      "chain %d -> %d -> %d from %d", w1.prev_version, w1.version,
                      w2.version, v0)
            code, msg = code_of(lambda: read(fnode, 0, 2 * BLOCK, foreign_ok=True,
                                             min_version=w2.version))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "stale" in msg,
                      "stale read: %s %s", code, msg)

        with ot.step("an out-of-order Replicate does not move the watermark yet"):
            rr = replicate(w2, b2)
            ot.expect(rr.watermark == v0, "watermark %d after W2 first, want %d",
                      rr.watermark, v0)
            code, msg = code_of(lambda: read(fnode, 0, 2 * BLOCK, foreign_ok=True,
                                             min_version=w2.version))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION, "%s %s", code, msg)

        with ot.step("the missing Replicate moves the watermark through the early one"):
            # W2 arrived first and was remembered as a run ahead of the
            # watermark; W1 fills the gap (docs/shadows.md).
            rr = replicate(w1, b1)
            ot.expect(rr.watermark == w2.version, "watermark %d after W1, want W2's %d",
                      rr.watermark, w2.version)
            rr = replicate(w2, b2)
            ot.expect(rr.watermark == w2.version, "watermark %d after W2 again, want %d",
                      rr.watermark, w2.version)
            fr = read(fnode, 0, 64 * 1024, foreign_ok=True, min_version=w2.version)
            want = read(prim, 0, 64 * 1024).data
            ot.expect(fr.foreign and fr.data == want, "the copy does not answer the new "
                      "bytes (foreign %s)", fr.foreign)
            ot.expect(fr.data[:BLOCK] == bytes([0xA1]) * BLOCK and
                      fr.data[BLOCK:2 * BLOCK] == bytes([0xB2]) * BLOCK,
                      "blocks 0/1 are not the written ones")

        with ot.step("Write: prev_version of a retried request, stale writer_epoch"):
            rid = ot.request_id()

            def wr(fill, wep, req_id=None):
                return prim.Write(s.StoreWriteRequest(
                    volume_id=vol.id, segment_index=0, segment_size_bytes=MIB,
                    lease_epoch=epoch, offset_bytes=8 * BLOCK, data=bytes([fill]) * BLOCK,
                    request_id=req_id or ot.request_id(), writer_epoch=wep), timeout=10)
            w3 = wr(0x11, 0, rid)
            again = wr(0x11, 0, rid)
            ot.expect((again.version, again.prev_version) == (w3.version, w3.prev_version)
                      and w3.prev_version == w2.version,
                      "retry answered %d/%d, first %d/%d (W2 %d)", again.version,
                      again.prev_version, w3.version, w3.prev_version, w2.version)
            w4 = wr(0x12, 1000)
            ot.expect(w4.prev_version == w3.version, "chain %d -> %d", w4.prev_version,
                      w4.version)
            code, msg = code_of(lambda: wr(0x13, 999))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and
                      "stale writer epoch" in msg, "older writer_epoch: %s %s", code, msg)
            w5 = wr(0x14, 0)  # no writer lease: not fenced
            ot.expect(w5.prev_version == w4.version, "chain %d -> %d", w5.prev_version,
                      w5.version)
            # The copy missed W3..W5 (never propagated): refused at W5,
            # served at W2, and its lag shows.
            code, msg = code_of(lambda: read(fnode, 0, BLOCK, foreign_ok=True,
                                             min_version=w5.version))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION, "%s %s", code, msg)
            fr = read(fnode, 0, BLOCK, foreign_ok=True, min_version=w2.version)
            ot.expect(fr.foreign and fr.segment_version == w2.version, "read at W2: %s",
                      fr.segment_version)

        with ot.step("invalidate_blocks drop partial blocks from the copy"):
            before = copies()[0].present_blocks
            rr = fnode.Replicate(s.ReplicateRequest(
                volume_id=vol.id, segment_index=0, segment_size_bytes=MIB,
                lease_epoch=epoch, shadow=True, prev_version=w5.version,
                version=w5.version + 1, invalidate_blocks=[5],
                primary_node_id=p0.primary_node_id), timeout=10)
            ot.expect(rr.watermark == w2.version, "watermark %d moved past a gap",
                      rr.watermark)
            ot.expect(copies()[0].present_blocks == before - 1, "present %d, before %d",
                      copies()[0].present_blocks, before)
            code, msg = code_of(lambda: read(fnode, 5 * BLOCK, BLOCK, foreign_ok=True))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "not present" in msg,
                      "invalidated block: %s %s", code, msg)
            code, msg = code_of(lambda: fnode.Replicate(s.ReplicateRequest(
                volume_id=vol.id, segment_index=0, lease_epoch=epoch, shadow=True,
                prev_version=w5.version, version=w5.version + 1,
                invalidate_blocks=[MIB // BLOCK + 3]), timeout=10))
            ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "invalidate outside the "
                      "segment: %s %s", code, msg)
            code, msg = code_of(lambda: fnode.Replicate(s.ReplicateRequest(
                volume_id=vol.id, segment_index=0, lease_epoch=epoch, shadow=True,
                prev_version=w5.version, version=w5.version), timeout=10))
            ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "version == prev: %s %s",
                      code, msg)

        with ot.step("BOUNDED and EVENTUAL reads from the copy"):
            fr = read(fnode, 0, BLOCK, foreign_ok=True, max_staleness_ms=60000)
            ot.expect(fr.foreign, "bounded read not served from the copy")
            fr = read(fnode, 4 * BLOCK, BLOCK, foreign_ok=True)
            ot.expect(fr.foreign and fr.data == data[4 * BLOCK:5 * BLOCK],
                      "eventual read")
            ci = copies()[0]
            ot.expect(ci.reads >= 4 and ci.last_read_unix_ms != 0, "counters %s", ci)
            served = c.metric(r2["http"], "ombra_stored_foreign_reads_total")
            refused = c.metric(r2["http"], "ombra_stored_foreign_refused_reads_total")
            ot.expect(served >= 4 and refused >= 3, "/metrics: %s served, %s refused",
                      served, refused)

        with ot.step("concurrent overlapping pulls into new segments"):
            hvol = c.create_volume("h", 8 * MIB, segment_size=MIB, replicas=2, region="r1")
            c.wait_volume_served("h", i=1)
            hdata = os.urandom(8 * MIB)
            c.volume_stub(1).Write(st.volume.WriteRequest(
                volume="h", offset_bytes=0, data=hdata), timeout=30)
            for rnd in range(3):  # dropped in between: new segments again
                concurrent_pulls(fnode, s, hvol, hdata, c.log_path(r2["name"]), rnd)

        with ot.step("a pull while the volume's dropped data is deleted is not refused"):
            pull_after_drop(fnode, s, hvol, hdata, c.log_path(r2["name"]))

        with ot.step("bad input is refused with a message"):
            bad = [
                ("unaligned offset", s.PullRequest(volume_id=vol.id, segment_index=0,
                                                   offset_bytes=100, length_bytes=BLOCK)),
                ("unaligned length", s.PullRequest(volume_id=vol.id, segment_index=0,
                                                   offset_bytes=0, length_bytes=100)),
                ("unknown volume", s.PullRequest(volume_id=vol.id + 1000, segment_index=0,
                                                 offset_bytes=0, length_bytes=BLOCK)),
                ("range past the segment", s.PullRequest(
                    volume_id=vol.id, segment_index=0, offset_bytes=MIB - BLOCK,
                    length_bytes=2 * BLOCK)),
                ("segment past the volume", s.PullRequest(
                    volume_id=vol.id, segment_index=5, offset_bytes=0, length_bytes=BLOCK)),
                ("wrong segment size", s.PullRequest(
                    volume_id=vol.id, segment_index=0, segment_size_bytes=2 * MIB,
                    offset_bytes=0, length_bytes=BLOCK)),
            ]
            for what, req in bad:
                code, msg = code_of(lambda: fnode.Pull(req, timeout=10))
                ot.log("%s: %s %s", what, code, msg)
                ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT and msg,
                          "%s: %s %s", what, code, msg)
            code, msg = code_of(lambda: fnode.DropCopy(s.DropCopyRequest(
                volume_id=vol.id, segment_index=0, offset_bytes=10), timeout=5))
            ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT, "DropCopy: %s %s", code, msg)
            code, msg = code_of(lambda: home.Pull(s.PullRequest(
                volume_id=vol.id, segment_index=0, offset_bytes=0, length_bytes=BLOCK,
                kind=s.COPY_CACHE), timeout=10))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "home" in msg,
                      "Pull at a home copy: %s %s", code, msg)

        with ot.step("DropCopy removes the copy"):
            d = fnode.DropCopy(s.DropCopyRequest(volume_id=vol.id, segment_index=0),
                               timeout=5)
            # 16 blocks pulled, block 5 invalidated since.
            ot.expect(d.dropped_bytes == 15 * BLOCK, "dropped %d bytes", d.dropped_bytes)
            ot.expect(copies() == [], "copies left %s", copies())
            code, msg = code_of(lambda: read(fnode, 0, BLOCK, foreign_ok=True))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION, "%s %s", code, msg)
            code, msg = code_of(lambda: replicate(w2, b2))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "no foreign copy" in msg,
                      "Replicate to a dropped copy: %s %s", code, msg)
            d = fnode.DropCopy(s.DropCopyRequest(volume_id=vol.id, segment_index=0),
                               timeout=5)
            ot.expect(d.dropped_bytes == 0, "dropping nothing dropped %d", d.dropped_bytes)

        shadow_steps(c, vol)
        cache_steps(c, vol)
        c.check_sanitizers()


def concurrent_pulls(fnode, s, hvol, hdata, log_path, rnd):
    """8 threads pull overlapping ranges of h's 8 segments, the same
    segment at the same time; the copy must equal hdata afterwards and the
    node log no checksum failure.  Then every copy is dropped, so that the
    node deletes h's data (the next round's segments are new again)."""
    errors = []
    start = threading.Barrier(8)

    def pull(seg, first):
        # Not refused while the previous round's data is being deleted:
        # the pull's store jobs wait for the deletion.
        return fnode.Pull(s.PullRequest(
            volume_id=hvol.id, segment_index=seg, offset_bytes=first * BLOCK,
            length_bytes=64 * BLOCK, kind=s.COPY_CACHE), timeout=20)

    def puller(k):
        start.wait()
        try:
            for seg in range(8):  # together, all of it, 4 pulls each
                for q in range(4):
                    pull(seg, ((k + q) % 4) * 64)
        except grpc.RpcError as e:
            errors.append("%s %s" % (e.code(), e.details()))
    ts = [threading.Thread(target=puller, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ot.expect(not errors, "round %d: pulls failed: %s", rnd, errors[:3])
    for seg in range(8):
        got = fnode.Read(s.StoreReadRequest(
            volume_id=hvol.id, segment_index=seg, offset_bytes=seg * MIB,
            length_bytes=MIB, foreign_ok=True), timeout=10)
        ot.expect(got.foreign and got.data == hdata[seg * MIB:(seg + 1) * MIB],
                  "round %d: segment %d of h differs from what was written", rnd, seg)
    with open(log_path, errors="replace") as f:
        bad = [ln for ln in f if "checksum" in ln]
    ot.expect(not bad, "round %d: checksum failures on the pulling node: %s", rnd, bad[:3])
    for seg in range(8):
        fnode.DropCopy(s.DropCopyRequest(volume_id=hvol.id, segment_index=seg), timeout=5)


def pull_after_drop(fnode, s, hvol, hdata, log_path):
    """Drop h's last copy on the node (its data is deleted in the
    background) and pull at once: the pull answers OK (it used to be
    refused UNAVAILABLE "being deleted", which proxies took for an
    unreachable node and predicted pulls never retried), and what it
    pulled is still there after the deletion: its store jobs waited."""
    def deletions():
        with open(log_path, errors="replace") as f:
            return sum(1 for ln in f if "volume %d: no foreign copy left" % hvol.id in ln)

    def pull(seg, first):
        return fnode.Pull(s.PullRequest(volume_id=hvol.id, segment_index=seg,
                                        offset_bytes=first * BLOCK, length_bytes=64 * BLOCK,
                                        kind=s.COPY_CACHE), timeout=20)
    want = deletions()
    for i in range(6):
        seg, first = i % 8, (i * 48) % 192
        pull(seg, first)
        fnode.DropCopy(s.DropCopyRequest(volume_id=hvol.id, segment_index=seg), timeout=5)
        want += 1  # h's last copy here: its data is being deleted
        try:
            pull(seg, first)
        except grpc.RpcError as e:
            raise ot.TestError("round %d: pull right after the last copy was dropped: %s %s"
                               % (i, e.code(), e.details()))
        ot.wait_until(lambda: deletions() >= want, 10,
                      "round %d: the deletion of h's dropped data" % i)
        off = seg * MIB + first * BLOCK
        got = fnode.Read(s.StoreReadRequest(
            volume_id=hvol.id, segment_index=seg, offset_bytes=off,
            length_bytes=64 * BLOCK, foreign_ok=True), timeout=10)
        ot.expect(got.foreign and got.data == hdata[off:off + 64 * BLOCK],
                  "round %d: the pulled blocks differ after the deletion", i)
        fnode.DropCopy(s.DropCopyRequest(volume_id=hvol.id, segment_index=seg), timeout=5)
        want += 1
        ot.wait_until(lambda: deletions() >= want, 10,
                      "round %d: the deletion after the last drop" % i)


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def cache_steps(c, vol):
    """A third stored in r2 with --cache-bytes 128KiB: least recently used
    cache entries are evicted to make room; a pull larger than the whole
    capacity is refused RESOURCE_EXHAUSTED."""
    s = oc.stubs().store
    d = os.path.join(c.cdir, "r2-cache")
    for sub in ("data", "fast"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    addr = "127.0.0.1:%d" % free_port()
    argv = [ot.find_binary("ombra-stored", "stored"), "--name", "r2-cache",
            "--region", "r2", "--listen", addr, "--metad", c.metad_endpoints,
            "--data-dir", os.path.join(d, "data"),
            "--tier", "fast:%s:1GiB" % os.path.join(d, "fast"), "--cache-bytes", "128KiB"]
    with open(os.path.join(d, "r2-cache.log"), "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    def listening():
        try:
            socket.create_connection(("127.0.0.1", int(addr.rsplit(":", 1)[1])), 0.5).close()
            return True
        except OSError:
            return False
    # Connect only once it listens (a refused first connection puts the
    # gRPC channel into its reconnect backoff for many seconds).
    ot.wait_until(listening, 30, "the extra stored to listen on %s" % addr, interval=0.1)
    node = c.store_stub(addr)
    try:
        def pull(seg, off, length):
            return node.Pull(s.PullRequest(volume_id=vol.id, segment_index=seg,
                                           offset_bytes=off, length_bytes=length,
                                           kind=s.COPY_CACHE), timeout=20)

        def copies():
            lc = node.ListCopies(s.ListCopiesRequest(volume_id=vol.id), timeout=5)
            return lc, {ci.segment_index: ci for ci in lc.copies}

        with ot.step("a stored in r2 with --cache-bytes 128KiB starts"):
            def serving():
                try:
                    return pull(0, 0, 64 * 1024)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    return None
            ot.wait_until(serving, 30, "the new stored to serve a Pull", interval=0.3)
            lc, _ = copies()
            ot.expect(lc.cache_capacity_bytes == 128 * 1024, "capacity %d",
                      lc.cache_capacity_bytes)

        with ot.step("least recently used cache entries are evicted for room"):
            pull(1, 0, 64 * 1024)
            node.Read(s.StoreReadRequest(volume_id=vol.id, segment_index=0,
                                         offset_bytes=0, length_bytes=BLOCK,
                                         foreign_ok=True), timeout=10)
            lc, cps = copies()
            ot.expect(lc.cache_bytes == 128 * 1024 and set(cps) == {0, 1},
                      "before eviction: %d bytes, %s", lc.cache_bytes, cps)
            pull(0, 64 * 1024, 64 * 1024)  # segment 1 was used last: evicted
            lc, cps = copies()
            ot.expect(set(cps) == {0} and cps[0].present_blocks == 32 and
                      lc.cache_bytes == 128 * 1024,
                      "after eviction: %d bytes, %s", lc.cache_bytes, cps)
            code, msg = code_of(lambda: node.Read(s.StoreReadRequest(
                volume_id=vol.id, segment_index=1, offset_bytes=MIB, length_bytes=BLOCK,
                foreign_ok=True), timeout=10))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION, "evicted entry: %s %s",
                      code, msg)
            code, msg = code_of(lambda: pull(1, 0, 256 * 1024))
            ot.log("pull above the capacity: %s %s", code, msg)
            ot.expect(code == grpc.StatusCode.RESOURCE_EXHAUSTED and "cache" in msg,
                      "pull above the capacity: %s %s", code, msg)

        with ot.step("deleting the volume drops its cache entries"):
            c.admin().call("DeleteVolume", oc.stubs().volume.DeleteVolumeRequest(
                name="f", request_id=ot.request_id()))
            ot.wait_until(lambda: not copies()[1], 15,
                          "the cache entries of the deleted volume to go", interval=0.3)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    ot.expect(proc.returncode == 0, "the extra stored exited with %s", proc.returncode)


def shadow_steps(c, fvol):
    """Shadows placed by metad's shadow policy: filled, kept current by
    propagation and anti-entropy, re-created after a DropCopy, dropped when
    metad removes them."""
    st = oc.stubs()
    s, m = st.store, ot.pb()
    admin = c.admin()
    r2_ids = {n.id for n in c.nodes().values() if n.region == "r2"}

    def read_in_r2():
        for seg in range(2):
            c.volume_stub(2).Read(st.volume.ReadRequest(
                volume="g", offset_bytes=seg * MIB, length_bytes=BLOCK,
                consistency=m.common.EVENTUAL), timeout=10)

    def shadows():
        """{segment: (node id, address)} of g's shadows in r2."""
        _, segs, nodes = c.shard_map("g")
        out = {}
        for p in segs:
            for sh in p.shadows:
                if sh.node_id in r2_ids:
                    out[p.index] = (sh.node_id, nodes[sh.node_id].address)
        return out

    def copy_of(seg, where):
        lc = c.store_stub(where[seg][1]).ListCopies(
            s.ListCopiesRequest(volume_id=gvol.id), timeout=5)
        for ci in lc.copies:
            if ci.segment_index == seg:
                return ci
        return None

    def primary_version(seg):
        _, segs, nodes = c.shard_map("g")
        prim = c.store_stub(nodes[segs[seg].primary_node_id].address)
        return prim.GetSegmentInfo(s.SegmentInfoRequest(
            volume_id=gvol.id, segment_index=seg), timeout=5).version

    def wait_current(where, what, timeout=30):
        def ok():
            read_in_r2()
            for seg in range(2):
                ci = copy_of(seg, where)
                if (ci is None or ci.filling or ci.kind != s.COPY_SHADOW or
                        ci.present_blocks != ci.total_blocks or
                        ci.watermark != primary_version(seg)):
                    return False
            return True
        ot.wait_until(ok, timeout, what, interval=0.3)

    with ot.step("volume g with a shadow policy: shadows placed in r2 are filled"):
        gvol = c.create_volume("g", 2 * MIB, segment_size=MIB, replicas=2, region="r1")
        c.wait_volume_served("g", i=1)
        c.volume_stub(1).Write(st.volume.WriteRequest(
            volume="g", offset_bytes=0, data=bytes([0x5A]) * (2 * MIB)), timeout=20)
        admin.call("SetShadowPolicy", m.admin.SetShadowPolicyRequest(
            name="g", policy=m.common.ShadowPolicy(
                regions=["r2"], create_reads_per_s=0.01, idle_ms=3000),
            request_id=ot.request_id()))
        where = {}

        def placed():
            read_in_r2()
            where.update(shadows())
            return len(where) == 2
        ot.wait_until(placed, 40, "shadows of both segments of g in r2", interval=0.3)
        wait_current(where, "whole, current shadows")
        ot.log("shadows %s", where)
        http = {sd["grpc"]: sd["http"] for sd in c.stored(2)}[where[0][1]]
        ot.wait_until(lambda: c.metric(http, "ombra_stored_foreign_bytes",
                                       {"kind": "shadow"}) >= MIB, 5,
                      "/metrics to show the shadow bytes", interval=0.3)

    with ot.step("a write through r1's proxy is propagated to the shadows"):
        c.volume_stub(1).Write(st.volume.WriteRequest(
            volume="g", offset_bytes=BLOCK, data=bytes([0x6B]) * BLOCK), timeout=20)
        wait_current(where, "the shadow of segment 0 to follow the write", timeout=10)
        fr = c.store_stub(where[0][1]).Read(s.StoreReadRequest(
            volume_id=gvol.id, segment_index=0, offset_bytes=BLOCK, length_bytes=BLOCK,
            foreign_ok=True, min_version=primary_version(0)), timeout=10)
        ot.expect(fr.foreign and fr.data == bytes([0x6B]) * BLOCK, "shadow read")

    with ot.step("a write at the primary alone is caught up by anti-entropy"):
        _, segs, nodes = c.shard_map("g")
        p1 = segs[1]
        w = c.store_stub(nodes[p1.primary_node_id].address).Write(s.StoreWriteRequest(
            volume_id=gvol.id, segment_index=1, segment_size_bytes=MIB,
            lease_epoch=p1.lease_epoch or 1, offset_bytes=MIB + 2 * BLOCK,
            data=bytes([0x7C]) * BLOCK, request_id=ot.request_id()), timeout=10)
        wait_current(where, "anti-entropy to bring the shadow of segment 1 to %d" % w.version,
                     timeout=20)
        fr = c.store_stub(where[1][1]).Read(s.StoreReadRequest(
            volume_id=gvol.id, segment_index=1, offset_bytes=MIB + 2 * BLOCK,
            length_bytes=BLOCK, foreign_ok=True, min_version=w.version), timeout=10)
        ot.expect(fr.foreign and fr.data == bytes([0x7C]) * BLOCK, "shadow read after AE")

    with ot.step("a cache-only DropCopy leaves a shadow whole"):
        shadow = c.store_stub(where[0][1])
        for off, length in ((BLOCK, 2 * BLOCK), (0, 0)):
            d = shadow.DropCopy(s.DropCopyRequest(volume_id=gvol.id, segment_index=0,
                                                  offset_bytes=off, length_bytes=length,
                                                  cache_only=True), timeout=5)
            ci = copy_of(0, where)
            ot.expect(d.dropped_bytes == 0 and ci is not None and
                      ci.kind == s.COPY_SHADOW and ci.present_blocks == ci.total_blocks,
                      "cache-only DropCopy [%d, +%d) of a shadow: dropped %d, copy %s",
                      off, length, d.dropped_bytes, ci)

    with ot.step("a dropped shadow still placed is created and filled again"):
        _, segs, nodes = c.shard_map("g")
        p0 = segs[0]
        prim = c.store_stub(nodes[p0.primary_node_id].address)
        w = prim.Write(s.StoreWriteRequest(
            volume_id=gvol.id, segment_index=0, segment_size_bytes=MIB,
            lease_epoch=p0.lease_epoch or 1, offset_bytes=3 * BLOCK,
            data=bytes([0x8D]) * BLOCK, request_id=ot.request_id()), timeout=10)
        got = prim.Read(s.StoreReadRequest(volume_id=gvol.id, segment_index=0,
                                           offset_bytes=3 * BLOCK, length_bytes=BLOCK),
                        timeout=10)
        shadow = c.store_stub(where[0][1])
        shadow.DropCopy(s.DropCopyRequest(volume_id=gvol.id, segment_index=0), timeout=5)
        # Accepted although the copy is gone: the map lists this node as
        # the segment's shadow.
        rr = shadow.Replicate(s.ReplicateRequest(
            volume_id=gvol.id, segment_index=0, segment_size_bytes=MIB,
            lease_epoch=p0.lease_epoch or 1, shadow=True, prev_version=w.prev_version,
            version=w.version, primary_node_id=p0.primary_node_id,
            blocks=[s.BlockData(block_index=3, version=w.version,
                                crc32c=got.block_crcs[0], data=got.data)]), timeout=10)
        ot.log("Replicate to the dropped, still placed shadow: watermark %d", rr.watermark)
        wait_current(where, "the shadow of segment 0 to be filled again")
        fr = shadow.Read(s.StoreReadRequest(
            volume_id=gvol.id, segment_index=0, offset_bytes=3 * BLOCK, length_bytes=BLOCK,
            foreign_ok=True, min_version=w.version), timeout=10)
        ot.expect(fr.foreign and fr.data == bytes([0x8D]) * BLOCK, "refilled shadow read")

    with ot.step("shadows removed by metad (idle) are dropped by their nodes"):
        ot.wait_until(lambda: not shadows(), 30, "metad to remove g's idle shadows",
                      interval=0.5)
        ot.wait_until(lambda: copy_of(0, where) is None and copy_of(1, where) is None,
                      10, "the nodes to drop the removed shadows", interval=0.3)
        lc = c.store_stub(where[0][1]).ListCopies(s.ListCopiesRequest(), timeout=5)
        ot.expect(all(ci.volume_id != gvol.id for ci in lc.copies), "copies %s", lc.copies)


if __name__ == "__main__":
    ot.run_test(main, BUDGET_S)
