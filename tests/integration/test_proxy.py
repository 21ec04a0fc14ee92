"""test_proxy: ombra-proxy's VolumeService over real processes.

One ombra-metad (node_timeout_ms short so a dead node is noticed within
seconds), two ombra-stored in region r1 and one ombra-proxy.  Through the
proxy's VolumeService (Python gRPC client) it creates a volume (RF 2,
64 KiB segments) and checks every answer against an in-memory model of the
volume: writes and reads across segment boundaries, unaligned offsets and
lengths, the last block of the volume, 4 MiB I/O, a whole-volume read,
Trim reading back zeros, Flush, GetVolumeShardingInfo.  Bad input gets the
right status and a message (unknown volume NOT_FOUND, offset beyond the
end and oversized requests INVALID_ARGUMENT, empty write, missing name,
prefetch without a node that may cache FAILED_PRECONDITION) and the
proxy keeps serving.  Resize and delete
through the proxy take effect at once; a delete made at metad directly
reaches the proxy's cache through the Watch stream.  /metrics shows the
traffic.  Failover: the primary of segment 0 is SIGKILLed during a loop of
writes and a loop of reads of segment 0; reads keep being served (from the
replica), writes continue after metad promotes the replica, and every
acknowledged write reads back.  Finally the proxy exits 0 on SIGTERM
(sanitizer-clean shutdown).

Bad command lines make ombra-proxy exit 2 with a message.

Fails (exit 1) naming the step, the request and what differed; process
logs are dumped on failure."""

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402

KIB = 1024
MIB = 1024 * KIB
SEG = 64 * KIB
VOL_SIZE = 16 * MIB
MAX_IO = 32 * MIB
VOLUME = "pv1"
GRPC_OPTS = [("grpc.max_receive_message_length", 64 * MIB),
             ("grpc.max_send_message_length", 64 * MIB)]


class Daemon:
    """One ombra-stored or ombra-proxy process with its log file."""

    def __init__(self, name, argv, logdir):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(logdir, name + ".log")
        self.proc = None

    def start(self):
        logf = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        finally:
            logf.close()
        ot.log("started %s pid %d", self.name, self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)
            ot.log("killed %s (SIGKILL)", self.name)

    def stop(self, timeout=20.0):
        """SIGTERM; returns the exit status (SIGKILL after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            return "(no log: %s)" % e
        return "\n".join(data[-lines:])


class Env:
    """metad + 2 stored + proxy; dumps logs and stops everything on exit."""

    def __init__(self):
        self.cluster = ot.Cluster(1, name="proxy",
                                  settings={"node_timeout_ms": 3000})
        self.daemons = []
        self.blocks = []

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        if etype is not None:
            for d in self.daemons:
                sys.stderr.write("---- %s (%s) log tail:\n%s\n"
                                 % (d.name, "running" if d.alive() else "not running",
                                    d.tail(80)))
        for d in self.daemons:
            d.stop(timeout=10)
        for b in self.blocks:
            ot.release_ports(b, 1)
        self.cluster.__exit__(etype, evalue, tb)
        return False

    def ports(self):
        b = ot.reserve_ports(1)
        self.blocks.append(b)
        return b

    def add(self, name, argv):
        d = Daemon(name, argv, self.cluster.dir)
        self.daemons.append(d)
        return d


def vstub(endpoint):
    ch = grpc.insecure_channel(endpoint, options=GRPC_OPTS)
    import volume_pb2_grpc
    return ch, volume_pb2_grpc.VolumeServiceStub(ch)


def expect_error(what, code, pattern, fn, *args, **kw):
    got, msg = ot.status_code(fn, *args, **kw)
    ot.expect(got == code, "%s: expected %s, got %s (%r)", what, code.name,
              got.name, msg)
    ot.expect(msg and re.search(pattern, msg, re.I),
              "%s: message %r does not match /%s/", what, msg, pattern)
    ot.log("%-40s %s: %s", what, code.name, msg)


class Model:
    """The expected content of the volume, and I/O that checks against it."""

    def __init__(self, stub, size):
        self.stub = stub
        self.data = bytearray(size)
        self.v = ot.pb().volume

    def write(self, off, data, timeout=30):
        self.stub.Write(self.v.WriteRequest(volume=VOLUME, offset_bytes=off,
                                            data=bytes(data),
                                            request_id=ot.request_id()),
                        timeout=timeout)
        self.data[off:off + len(data)] = data

    def check(self, off, length, what):
        r = self.stub.Read(self.v.ReadRequest(volume=VOLUME, offset_bytes=off,
                                              length_bytes=length), timeout=60)
        want = bytes(self.data[off:off + length])
        ot.expect(len(r.data) == length, "%s: read %d bytes at %d, got %d",
                  what, length, off, len(r.data))
        if r.data != want:
            bad = next(i for i in range(length) if r.data[i] != want[i])
            raise ot.TestError("%s: read of %d bytes at %d differs first at byte "
                               "%d (volume offset %d): got %r want %r"
                               % (what, length, off, bad, off + bad,
                                  r.data[bad:bad + 8], want[bad:bad + 8]))
        return r


def pattern(n, seed):
    return random.Random(seed).randbytes(n)


def wait_nodes(cl, n, timeout=60):
    m = ot.pb()

    def up():
        nodes = cl.call("ListNodes", m.admin.ListNodesRequest(region="r1")).nodes
        ok = [x for x in nodes if x.state == m.common.NODE_UP]
        return ok if len(ok) >= n else None
    return ot.wait_until(up, timeout, "%d stored nodes UP in r1" % n, interval=0.2)


def usage_errors(proxy_bin):
    """Bad command lines exit 2 with a message naming the problem."""
    ok = ["--region", "r1", "--listen", "127.0.0.1:1", "--metad", "127.0.0.1:2"]
    cases = [
        ([], "required"),
        (["--region", "r1"], "required"),
        (ok + ["--bogus"], "unknown option --bogus"),
        (["--region", "r1", "--listen", "nohost", "--metad", "127.0.0.1:2"],
         "--listen 'nohost'"),
        (ok[:4] + ["--metad", "127.0.0.1:2,x"], "--metad"),
        (ok + ["--nbd", "1234"], "--nbd '1234'"),
        (ok + ["--log-level", "loud"], "--log-level 'loud'"),
        (ok + ["--propagate-linger-ms", "1001"], "--propagate-linger-ms '1001'"),
        (ok + ["--propagate-linger-ms", "-1"], "--propagate-linger-ms '-1'"),
        (ok + ["--read-poll-us", "100001"], "--read-poll-us '100001'"),
        (ok + ["--read-poll-us", "2ms"], "--read-poll-us '2ms'"),
        (ok + ["--tls-ca", "/nonexistent"], "TLS needs all"),
        (ok + ["extra"], "unexpected argument 'extra'"),
    ]
    for args, want in cases:
        r = subprocess.run([proxy_bin] + args, capture_output=True, text=True,
                           timeout=20)
        ot.expect(r.returncode == 2 and want in r.stderr,
                  "ombra-proxy %s: exit %d, stderr %r (want 2 and %r)",
                  " ".join(args), r.returncode, r.stderr, want)
    r = subprocess.run([proxy_bin, "--help"], capture_output=True, text=True,
                       timeout=20)
    ot.expect(r.returncode == 0 and "--metad" in r.stdout and
              "--propagate-linger-ms" in r.stdout and
              "--read-poll-us" in r.stdout, "--help: %d %r",
              r.returncode, r.stdout[:200])


def main():
    m = ot.pb()
    v = m.volume
    stored_bin = ot.find_binary("ombra-stored", "stored")
    proxy_bin = ot.find_binary("ombra-proxy", "proxy")
    with ot.step("usage errors exit 2 with a message"):
        usage_errors(proxy_bin)
    with Env() as env:
        c = env.cluster
        c.start()
        c.wait_leader(timeout=30)
        cl = c.client()
        eps = ",".join(c.endpoints())
        cl.call("AddRegion", m.admin.AddRegionRequest(name="r1",
                                                      request_id=ot.request_id()))
        stored = {}
        for i in (1, 2):
            base = env.ports()
            d = os.path.join(c.dir, "stored%d" % i)
            os.makedirs(d, exist_ok=True)
            s = env.add("stored%d" % i, [
                stored_bin, "--name", "stored%d" % i, "--region", "r1",
                "--listen", "%s:%d" % (ot.HOST, base), "--metad", eps,
                "--data-dir", d, "--http", "%s:%d" % (ot.HOST, base + 1)])
            s.start()
            stored["stored%d" % i] = s
        with ot.step("two stored nodes register and are UP"):
            wait_nodes(cl, 2)

        base = env.ports()
        pgrpc = "%s:%d" % (ot.HOST, base)
        phttp = "%s:%d" % (ot.HOST, base + 2)
        proxy = env.add("proxy", [proxy_bin, "--region", "r1", "--listen", pgrpc,
                                  "--metad", eps, "--nbd", "off",
                                  "--http", phttp])
        proxy.start()
        # Connect only once the port listens: a refused first attempt would
        # put the Python channel into its reconnect backoff.
        ot.wait_until(lambda: not ot.port_is_free(base), 30,
                      "proxy listening on %s" % pgrpc)
        ch, stub = vstub(pgrpc)

        with ot.step("proxy answers; CreateVolume through it (RF 2, 64 KiB segments)"):
            ot.wait_until(lambda: ot.status_code(
                stub.ListVolumes, v.ListVolumesRequest(), timeout=2)[0]
                == grpc.StatusCode.OK, 30, "proxy VolumeService")
            r = stub.CreateVolume(v.CreateVolumeRequest(
                name=VOLUME, size_bytes=VOL_SIZE, segment_size_bytes=SEG,
                home_region="r1", replicas=2, request_id=ot.request_id()),
                timeout=20)
            ot.expect(r.volume.segment_count == VOL_SIZE // SEG,
                      "segment_count %d", r.volume.segment_count)
            g = stub.GetVolume(v.GetVolumeRequest(name=VOLUME), timeout=10)
            ot.expect(g.volume.size_bytes == VOL_SIZE, "GetVolume size %d",
                      g.volume.size_bytes)
            names = [x.name for x in stub.ListVolumes(v.ListVolumesRequest(),
                                                      timeout=10).volumes]
            ot.expect(VOLUME in names, "ListVolumes: %s", names)
            expect_error("CreateVolume duplicate", grpc.StatusCode.ALREADY_EXISTS,
                         VOLUME, stub.CreateVolume, v.CreateVolumeRequest(
                             name=VOLUME, size_bytes=VOL_SIZE, home_region="r1",
                             request_id=ot.request_id()), timeout=20)

        model = Model(stub, VOL_SIZE)
        with ot.step("fresh volume reads back zeros"):
            model.check(0, 3 * SEG, "fresh")

        with ot.step("writes and reads across segment boundaries"):
            model.write(SEG - 8 * KIB, pattern(16 * KIB, 1))
            model.check(SEG - 8 * KIB, 16 * KIB, "boundary")
            model.write(3 * SEG - 4 * KIB, pattern(3 * SEG + 8 * KIB, 2))
            model.check(2 * SEG, 5 * SEG, "multi-segment")

        with ot.step("unaligned offsets and lengths"):
            for i, (off, ln) in enumerate([(12345, 7777), (SEG - 1, 2),
                                           (10 * SEG + 4095, 1),
                                           (20 * SEG - 100, SEG + 300),
                                           (7, 3 * SEG)]):
                model.write(off, pattern(ln, 10 + i))
                model.check(off, ln, "unaligned write %d" % i)
            for off, ln in [(1, 1), (12000, 9000), (SEG - 3, 6),
                            (20 * SEG - 999, SEG + 2000)]:
                model.check(off, ln, "unaligned read")

        with ot.step("the last block of the volume"):
            model.write(VOL_SIZE - 4096, pattern(4096, 20))
            model.check(VOL_SIZE - 4096, 4096, "last block")
            model.write(VOL_SIZE - 100, pattern(100, 21))
            model.check(VOL_SIZE - 8192, 8192, "last bytes")

        with ot.step("4 MiB writes and reads"):
            model.write(MIB + 100, pattern(4 * MIB, 30))
            model.check(MIB, 4 * MIB + 4096, "4 MiB + tail")
            model.write(8 * MIB, pattern(4 * MIB, 31))
            model.check(8 * MIB, 4 * MIB, "4 MiB aligned")

        with ot.step("Trim reads back zeros; Flush"):
            stub.Trim(v.TrimRequest(volume=VOLUME, offset_bytes=2 * MIB,
                                    length_bytes=SEG * 3 + 4096,
                                    request_id=ot.request_id()), timeout=30)
            model.data[2 * MIB:2 * MIB + SEG * 3 + 4096] = bytes(SEG * 3 + 4096)
            model.check(2 * MIB - 4096, SEG * 3 + 3 * 4096, "trimmed")
            stub.Flush(v.FlushRequest(volume=VOLUME), timeout=30)

        with ot.step("whole-volume read matches the model"):
            model.check(0, VOL_SIZE, "whole volume")

        with ot.step("GetVolumeShardingInfo is passed through from metad"):
            si = stub.GetVolumeShardingInfo(v.GetVolumeShardingInfoRequest(
                volume=VOLUME), timeout=10)
            ot.expect(len(si.segments) == VOL_SIZE // SEG, "segments %d",
                      len(si.segments))
            ot.expect(all(s.primary_node_id != 0 and len(s.replica_node_ids) == 1
                          for s in si.segments),
                      "every segment has a primary and one in-sync replica: %s",
                      si.segments[:2])

        with ot.step("bad input gets a status with a message"):
            expect_error("Read unknown volume", grpc.StatusCode.NOT_FOUND, "nope",
                         stub.Read, v.ReadRequest(volume="nope", length_bytes=4096),
                         timeout=10)
            expect_error("Write unknown volume", grpc.StatusCode.NOT_FOUND, "nope",
                         stub.Write, v.WriteRequest(volume="nope", data=b"x"),
                         timeout=10)
            expect_error("Read beyond end", grpc.StatusCode.INVALID_ARGUMENT,
                         "offset %d \\+ length 8192 beyond volume size %d"
                         % (VOL_SIZE - 4096, VOL_SIZE),
                         stub.Read, v.ReadRequest(volume=VOLUME,
                                                  offset_bytes=VOL_SIZE - 4096,
                                                  length_bytes=8192), timeout=10)
            expect_error("Write past end", grpc.StatusCode.INVALID_ARGUMENT,
                         "beyond volume size", stub.Write,
                         v.WriteRequest(volume=VOLUME, offset_bytes=VOL_SIZE,
                                        data=b"abc"), timeout=10)
            expect_error("Read huge offset", grpc.StatusCode.INVALID_ARGUMENT,
                         "beyond volume size|overflow", stub.Read,
                         v.ReadRequest(volume=VOLUME, offset_bytes=2**64 - 10,
                                       length_bytes=4096), timeout=10)
            expect_error("Read oversized", grpc.StatusCode.INVALID_ARGUMENT,
                         "limit", stub.Read,
                         v.ReadRequest(volume=VOLUME, length_bytes=MAX_IO + 4096),
                         timeout=10)
            expect_error("Write oversized", grpc.StatusCode.INVALID_ARGUMENT,
                         "limit", stub.Write,
                         v.WriteRequest(volume=VOLUME, data=bytes(MAX_IO + 1)),
                         timeout=30)
            expect_error("Trim beyond end", grpc.StatusCode.INVALID_ARGUMENT,
                         "beyond volume size", stub.Trim,
                         v.TrimRequest(volume=VOLUME, offset_bytes=VOL_SIZE - 4096,
                                       length_bytes=8192), timeout=10)
            expect_error("Write empty", grpc.StatusCode.INVALID_ARGUMENT, "empty",
                         stub.Write, v.WriteRequest(volume=VOLUME, offset_bytes=0),
                         timeout=10)
            expect_error("Read without a name", grpc.StatusCode.INVALID_ARGUMENT,
                         "name", stub.Read, v.ReadRequest(length_bytes=1), timeout=10)
            # Both nodes of the only region hold home copies: no node may
            # hold a prefetch cache entry (test_prefetch_engine.py has one).
            expect_error("PrefetchData", grpc.StatusCode.FAILED_PRECONDITION,
                         "no storage node UP", stub.PrefetchData,
                         v.PrefetchDataRequest(volume=VOLUME, ranges=[
                             m.common.ByteRange(offset_bytes=0, length_bytes=4096)]),
                         timeout=10)
            expect_error("PrefetchData no ranges", grpc.StatusCode.INVALID_ARGUMENT,
                         "range", stub.PrefetchData,
                         v.PrefetchDataRequest(volume=VOLUME), timeout=10)
            stub.SetPrefetchHint(v.SetPrefetchHintRequest(
                volume=VOLUME, hint=v.PREFETCH_HINT_SEQUENTIAL), timeout=10)
            expect_error("SetPrefetchHint WILLNEED no ranges",
                         grpc.StatusCode.INVALID_ARGUMENT, "range", stub.SetPrefetchHint,
                         v.SetPrefetchHintRequest(volume=VOLUME,
                                                  hint=v.PREFETCH_HINT_WILLNEED),
                         timeout=10)
            expect_error("GetVolume unknown", grpc.StatusCode.NOT_FOUND, "nope",
                         stub.GetVolume, v.GetVolumeRequest(name="nope"), timeout=10)
            ot.expect(proxy.alive(), "proxy died on bad input")
            model.check(0, 2 * SEG, "still serving after bad input")

        with ot.step("ResizeVolume and DeleteVolume through the proxy"):
            resize_delete(stub)

        with ot.step("a delete made at metad reaches the proxy's cache (Watch)"):
            watch_delete(cl, stub)

        with ot.step("/metrics shows the traffic"):
            code, body = ot.http_get(phttp, "/metrics")
            ot.expect(code == 200, "/metrics status %s", code)
            for name in ("ombra_proxy_reads_total", "ombra_proxy_writes_total",
                         "ombra_proxy_read_bytes_total",
                         "ombra_proxy_read_duration_seconds_bucket",
                         "ombra_proxy_node_latency_seconds"):
                ot.expect(name in body, "/metrics lacks %s", name)
            mm = re.search(r"^ombra_proxy_writes_total (\S+)$", body, re.M)
            ot.expect(mm and float(mm.group(1)) >= 10, "writes_total %r",
                      mm and mm.group(1))
            # Reads at these local nodes are busy-polled for (default
            # --read-poll-us 5000, docs/proxy.md "Busy polling").
            mm = re.search(r"^ombra_proxy_read_poll_seconds_total (\S+)$",
                           body, re.M)
            ot.expect(mm and float(mm.group(1)) > 0,
                      "read_poll_seconds_total %r", mm and mm.group(1))

        with ot.step("SIGKILL the primary of segment 0 during writes; "
                     "acknowledged writes read back"):
            failover(c, cl, stub, model, stored, si)
            code, body = ot.http_get(phttp, "/metrics")
            mm = re.search(r"^ombra_proxy_retries_total (\S+)$", body, re.M)
            ot.expect(mm and float(mm.group(1)) > 0,
                      "no retry counted during the failover: %r",
                      mm and mm.group(1))
            ot.log("retries during the failover: %s", mm.group(1))

        with ot.step("restart the killed node: the proxy's probes see it again"):
            stored[victim_name(si)].start()
            pat = re.compile(r'^ombra_proxy_node_up\{node="%s"\} (\S+)$'
                             % victim_name(si), re.M)

            def up():
                mm = pat.search(ot.http_get(phttp, "/metrics")[1])
                return mm is not None and float(mm.group(1)) == 1
            ot.wait_until(up, 20, "ombra_proxy_node_up of %s back to 1"
                          % victim_name(si), interval=0.2)
            model.check(0, VOL_SIZE, "whole volume after the restart")

        with ot.step("proxy shuts down cleanly on SIGTERM"):
            ch.close()
            rc = proxy.stop()
            ot.expect(rc == 0, "proxy exit status %s (log tail:\n%s)", rc,
                      proxy.tail(40))


def resize_delete(stub):
    """A second volume: I/O past its old end right after a resize works
    (the proxy refetches the map), and after a delete it is NOT_FOUND."""
    v = ot.pb().volume
    name = "pv2"
    stub.CreateVolume(v.CreateVolumeRequest(
        name=name, size_bytes=4 * SEG, segment_size_bytes=SEG, home_region="r1",
        replicas=2, request_id=ot.request_id()), timeout=20)
    data = pattern(4096, 77)
    stub.Write(v.WriteRequest(volume=name, offset_bytes=4 * SEG - 4096, data=data,
                              request_id=ot.request_id()), timeout=20)
    expect_error("Write past the old end", grpc.StatusCode.INVALID_ARGUMENT,
                 "beyond volume size %d" % (4 * SEG), stub.Write,
                 v.WriteRequest(volume=name, offset_bytes=4 * SEG, data=data),
                 timeout=20)
    r = stub.ResizeVolume(v.ResizeVolumeRequest(
        name=name, new_size_bytes=8 * SEG, request_id=ot.request_id()), timeout=20)
    ot.expect(r.volume.size_bytes == 8 * SEG, "resized to %d", r.volume.size_bytes)
    # The proxy refetches the map at once; a stored node may learn the new
    # size a moment later (it refuses with the old size until then).
    t0 = time.monotonic()
    wreq = v.WriteRequest(volume=name, offset_bytes=8 * SEG - 4096, data=data,
                          request_id=ot.request_id())
    ot.wait_until(lambda: ot.status_code(stub.Write, wreq, timeout=20)[0]
                  == grpc.StatusCode.OK, 15, "a write past the old end")
    ot.log("write past the old end accepted %.2fs after the resize",
           time.monotonic() - t0)
    got = stub.Read(v.ReadRequest(volume=name, offset_bytes=4 * SEG - 4096,
                                  length_bytes=4 * SEG + 4096), timeout=20).data
    ot.expect(got[:4096] == data, "resized volume: the old last block differs")
    ot.expect(got[4096:-4096] == bytes(4 * SEG - 4096),
              "resized volume: the grown part is not zeros")
    ot.expect(got[-4096:] == data,
              "resized volume: the new last block differs (%r...)", got[-4096:][:16])
    stub.DeleteVolume(v.DeleteVolumeRequest(name=name, request_id=ot.request_id()),
                      timeout=20)
    expect_error("Read a deleted volume", grpc.StatusCode.NOT_FOUND, name,
                 stub.Read, v.ReadRequest(volume=name, length_bytes=4096),
                 timeout=20)


def victim_name(si):
    """The node that was the primary of segment 0 in shard map si."""
    return {n.id: n.name for n in si.nodes}[si.segments[0].primary_node_id]


def watch_delete(cl, stub):
    """A volume the proxy has cached is deleted through metad directly;
    the Watch event makes the proxy answer NOT_FOUND itself (not a node's
    refusal) within a few seconds."""
    m = ot.pb()
    v = m.volume
    name = "pv3"
    stub.CreateVolume(v.CreateVolumeRequest(
        name=name, size_bytes=4 * SEG, segment_size_bytes=SEG, home_region="r1",
        replicas=2, request_id=ot.request_id()), timeout=20)
    stub.Write(v.WriteRequest(volume=name, data=b"w" * 4096,
                              request_id=ot.request_id()), timeout=20)
    cl.call("DeleteVolume", v.DeleteVolumeRequest(name=name,
                                                  request_id=ot.request_id()))
    seen = []

    def gone():
        code, msg = ot.status_code(stub.Read, v.ReadRequest(
            volume=name, length_bytes=4096), timeout=10)
        seen.append((code.name, msg))
        return code == grpc.StatusCode.NOT_FOUND and not msg.startswith("node ")
    ot.wait_until(gone, 5, "the proxy to drop %s after its deletion at metad"
                  % name, interval=0.05)
    ot.log("deleted at metad: proxy answers %s after %d reads", seen[-1],
           len(seen))


def failover(c, cl, stub, model, stored, si):
    m = ot.pb()
    v = m.volume
    victim = victim_name(si)
    ot.log("segment 0 primary is %s", victim)
    # Each write owns distinct blocks, so a write that failed leaves only
    # its own blocks uncertain.  The victim is the primary of segment 0 and
    # of about half of the others.
    # Slots of 32 KiB in segments 1..31 (segment 0 is the reader's).
    slots = list(range(2, 64))
    acked, failed = {}, set()
    stop = threading.Event()
    errors = []
    count = {"after": 0}
    killed = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            slot = slots[i % len(slots)]
            off = (slot * SEG // 2) + ((i // len(slots)) % 4) * 4096
            data = pattern(4096, 1000 + i)
            try:
                stub.Write(v.WriteRequest(volume=VOLUME, offset_bytes=off,
                                          data=data, request_id=ot.request_id()),
                           timeout=30)
                acked[off] = data
                failed.discard(off)
                if killed.is_set():
                    count["after"] += 1
            except grpc.RpcError as e:
                failed.add(off)
                acked.pop(off, None)
                errors.append("%s: %s" % (e.code().name, e.details()))
            i += 1

    # Reads of segment 0 (not written by the writer: its blocks 4..15)
    # keep being served while the primary is dead: from the replica.
    reads = {"ok": 0, "slowest": 0.0, "errors": []}

    def reader():
        want = bytes(model.data[16 * KIB:SEG])
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                r = stub.Read(v.ReadRequest(volume=VOLUME, offset_bytes=16 * KIB,
                                            length_bytes=SEG - 16 * KIB), timeout=30)
                if r.data != want:
                    reads["errors"].append("content differs")
                reads["ok"] += 1
            except grpc.RpcError as e:
                reads["errors"].append("%s: %s" % (e.code().name, e.details()))
            reads["slowest"] = max(reads["slowest"], time.monotonic() - t0)
            time.sleep(0.02)

    t = threading.Thread(target=writer, daemon=True)
    rt = threading.Thread(target=reader, daemon=True)
    t.start()
    rt.start()
    time.sleep(1.0)
    stored[victim].kill()
    killed.set()
    ot.wait_until(lambda: count["after"] >= 100, 45,
                  "100 acknowledged writes after the kill (errors so far: %s)"
                  % errors[-3:], interval=0.2)
    stop.set()
    t.join(40)
    rt.join(40)
    ot.log("reads of segment 0 during the failover: %d ok, slowest %.2fs, "
           "errors %s", reads["ok"], reads["slowest"], reads["errors"][:3])
    ot.expect(not reads["errors"], "reads failed during the failover: %s",
              reads["errors"][:5])
    ot.expect(reads["slowest"] < 5.0, "a read took %.1fs during the failover",
              reads["slowest"])
    ot.log("writes acknowledged %d, failed %d (%s)", len(acked), len(errors),
           errors[:3])
    for off, data in sorted(acked.items()):
        r = stub.Read(v.ReadRequest(volume=VOLUME, offset_bytes=off,
                                    length_bytes=4096), timeout=30)
        ot.expect(r.data == data, "acknowledged write at %d does not read back", off)
        model.data[off:off + 4096] = data
    si2 = stub.GetVolumeShardingInfo(v.GetVolumeShardingInfoRequest(volume=VOLUME),
                                     timeout=10)
    names2 = {n.id: n.name for n in si2.nodes}
    ot.expect(names2.get(si2.segments[0].primary_node_id) != victim,
              "segment 0 still has the killed primary %s", victim)
    # Everything outside the failover slots still matches the model.
    model.check(VOL_SIZE // 2, VOL_SIZE // 2, "second half after failover")


if __name__ == "__main__":
    ot.run_test(main, timeout=280)
