"""test_routing: read routing by consistency level and single-writer
volumes in ombra-proxy (docs/proxy.md "Routing and consistency",
"Single-writer volumes"; docs/shadows.md "Which copy may serve a read").

A real cluster from deploy/ombra-local with two regions (r1, r2: one
metad, two stored, one proxy each).  Volume "rt" (2 segments of 1 MiB,
home r1, 2 copies):
- bad read arguments get INVALID_ARGUMENT with a message: BOUNDED without
  a bound, STRONG or EVENTUAL with a bound, an unknown level;
- the first write through r1's proxy takes the volume's writer lease
  (metad's Volume.writer names r1's proxy, its writer-lease gauge is 1)
  and answers a version token; a write through r2's proxy is refused
  FAILED_PRECONDITION naming the holder while r1 holds it;
- a shadow policy (regions r2) and reads in r2 make metad place shadows
  of both segments on r2's nodes, filled to the primary's version;
- r2's STRONG reads (it is not the writer) never use them: the shadow and
  cache read counters stay put, every part is served by a home copy; its
  EVENTUAL reads are served by a local foreign copy;
- through r2's proxy (default STRONG) the NBD export "rt@eventual" reads
  from a local foreign copy, and "rt@weak" is refused naming VOLUME@LEVEL;
- ombra-proxy exits 2 naming the flag for a bad --nbd-consistency,
  --single-writer or --writer-lease-ms; a third proxy in r2 with
  --nbd-consistency eventual --single-writer off serves NBD reads from a
  local foreign copy and takes no writer lease;
- r1 writes again: BOUNDED reads with that write's token, through either
  proxy, return the new bytes (read-your-writes), never older ones;
- r1's proxy stops (releasing the lease); r2's proxy writes and becomes
  the writer; after a STRONG read at the primary (which tells it the
  segment's latest version) its STRONG reads are served by the local
  shadow (metrics show local foreign reads); after each of its writes a
  STRONG read returns the new bytes (never stale);
- when the proxy's prefetch engine answers PrefetchData, the same holds
  for a cache entry it places (skipped, logged, when it does not);
- NBD: writes through the writer's NBD export land; while that client is
  attached, r1's proxy, started again, attaches the volume but its NBD
  writes are refused (an error reply), and its NBD reads answer current
  data;
- a fourth proxy (r1, --writer-lease-ms 600) writes volume rf and holds
  its lease; stopped (SIGSTOP) past the lease, r2's proxy takes rf over;
  continued, its write fails FAILED_PRECONDITION naming r2's proxy, its
  read answers r2's bytes, the loss is counted and logged.

Fails (exit 1) with the step, what was seen and the process logs."""

import os
import signal
import subprocess
import sys
import time

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_cluster as oc  # noqa: E402
import ombra_test as ot  # noqa: E402

MIB = 1 << 20
KIB = 1024
BUDGET_S = 150
STRONG, BOUNDED, EVENTUAL = 1, 2, 3  # ombra.v1.Consistency
PARTS = "ombra_proxy_read_parts_total"


def failure(fn):
    """(grpc.StatusCode, details) of a call expected to fail."""
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise ot.TestError("the call succeeded but was expected to fail")


def pattern(seed, n):
    return bytes((i * 31 + seed) % 251 for i in range(n))


def main():
    st = oc.stubs()
    v, s = st.volume, st.store
    with oc.LocalCluster("routing", regions=2) as c:
        with ot.step("two regions start; volume rt in r1 served by both proxies"):
            c.up()
            vol = c.create_volume("rt", 2 * MIB, segment_size=MIB, replicas=2, region="r1")
            c.wait_volume_served("rt", i=1)
            c.wait_volume_served("rt", i=2)
            p1, p2 = c.volume_stub(1), c.volume_stub(2)
            h1, h2 = c.proxy(1)["http"], c.proxy(2)["http"]
            r2_ids = {n.id for n in c.nodes().values() if n.region == "r2"}

        def read(stub, off, length, **kw):
            return stub.Read(v.ReadRequest(volume="rt", offset_bytes=off,
                                           length_bytes=length, **kw), timeout=20)

        def write(stub, off, data):
            return stub.Write(v.WriteRequest(volume="rt", offset_bytes=off, data=data,
                                             request_id=ot.request_id()),
                              timeout=20).version_token

        def parts(http, where=None, copy=None):
            labels = {}
            if where:
                labels["where"] = where
            if copy:
                labels["copy"] = copy
            return c.metric(http, PARTS, labels)

        def local_foreign(http):
            return parts(http, "local", "shadow") + parts(http, "local", "cache")

        def routing_metrics(http):
            """The proxy's routing counters, for failure messages."""
            return [ln for ln in c.metrics(http).splitlines()
                    if ln.startswith(("ombra_proxy_read_parts", "ombra_proxy_read_foreign"))]

        def shadows_current():
            """True once both segments have a whole shadow in r2 at the
            primary's version."""
            _, segs, nodes = c.shard_map("rt")
            for p in segs:
                sh = [x.node_id for x in p.shadows if x.node_id in r2_ids]
                if not sh:
                    return False
                prim = c.store_stub(nodes[p.primary_node_id].address)
                want = prim.GetSegmentInfo(s.SegmentInfoRequest(
                    volume_id=vol.id, segment_index=p.index), timeout=5).version
                lc = c.store_stub(nodes[sh[0]].address).ListCopies(
                    s.ListCopiesRequest(volume_id=vol.id), timeout=5)
                if not any(ci.segment_index == p.index and not ci.filling and
                           ci.present_blocks == ci.total_blocks and ci.watermark == want
                           for ci in lc.copies):
                    return False
            return True

        with ot.step("bad consistency arguments are INVALID_ARGUMENT"):
            for kw, what in (({"consistency": BOUNDED}, "BOUNDED reads need"),
                             ({"consistency": STRONG, "min_version": 5}, "BOUNDED reads only"),
                             ({"consistency": EVENTUAL, "max_staleness_ms": 10},
                              "BOUNDED reads only"),
                             ({"min_version": 5}, "BOUNDED reads only"),
                             ({"consistency": 9}, "unknown consistency")):
                code, msg = failure(lambda: read(p1, 0, 4 * KIB, **kw))
                ot.expect(code == grpc.StatusCode.INVALID_ARGUMENT and what in msg,
                          "%s: %s %s", kw, code, msg)

        a = pattern(3, 2 * MIB)
        with ot.step("the first write through r1 takes the writer lease"):
            t1 = write(p1, 0, a)
            ot.expect(t1 > 0, "version token %d", t1)
            got = c.admin().call("GetVolume", v.GetVolumeRequest(name="rt")).volume
            ot.expect(got.writer.startswith("r1/") and got.writer_epoch >= 1,
                      "writer %r epoch %d", got.writer, got.writer_epoch)
            ot.expect(c.metric(h1, "ombra_proxy_writer_leases") == 1,
                      "r1's proxy holds %s leases", c.metric(h1, "ombra_proxy_writer_leases"))

        with ot.step("r2's write is refused while r1 holds the lease"):
            code, msg = failure(lambda: write(p2, 0, b"x" * 4096))
            ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "r1/" in msg,
                      "r2's write: %s %s", code, msg)
            ot.expect(read(p1, 0, 4 * KIB).data == a[:4 * KIB], "r2's refused write landed")

        rng = 256 * KIB
        with ot.step("a shadow policy places current shadows of rt in r2"):
            c.admin().call("SetShadowPolicy", st.admin.SetShadowPolicyRequest(
                name="rt", policy=st.common.ShadowPolicy(
                    regions=["r2"], create_reads_per_s=0.01, idle_ms=120000),
                request_id=ot.request_id()))

            def placed():
                for seg in range(2):
                    ot.expect(read(p2, seg * MIB, rng, consistency=EVENTUAL).data ==
                              a[seg * MIB:seg * MIB + rng], "EVENTUAL read answered other bytes")
                return shadows_current()
            ot.wait_until(placed, 40, "current shadows of both segments in r2", interval=0.3)

        with ot.step("r2 (not the writer): STRONG reads never use a foreign copy"):
            foreign0 = parts(h2, copy="cache") + parts(h2, copy="shadow")
            home0 = parts(h2, copy="home")
            for _ in range(5):
                ot.expect(read(p2, 0, rng, consistency=STRONG).data == a[:rng],
                          "STRONG read from r2 answered other bytes")
                ot.expect(read(p2, 0, rng).data == a[:rng],
                          "default (STRONG) read from r2 answered other bytes")
            foreign1 = parts(h2, copy="cache") + parts(h2, copy="shadow")
            ot.expect(foreign1 == foreign0, "STRONG reads used foreign copies (%d -> %d)",
                      foreign0, foreign1)
            ot.expect(parts(h2, copy="home") >= home0 + 10, "home parts %d -> %d",
                      home0, parts(h2, copy="home"))

        with ot.step("r2's EVENTUAL reads are served by a local foreign copy"):
            local0 = local_foreign(h2)

            def eventual_local():
                ot.expect(read(p2, 0, rng, consistency=EVENTUAL).data == a[:rng],
                          "EVENTUAL read from r2 answered other bytes")
                return local_foreign(h2) >= local0 + 3
            # A node ranks first once the proxy has measured it (a probe
            # every second; unmeasured nodes count 10 ms).
            ot.wait_until(eventual_local, 10, "EVENTUAL reads served in r2")
            for _ in range(3):
                r = read(p2, 0, rng, consistency=BOUNDED, max_staleness_ms=60000)
                ot.expect(r.data == a[:rng], "BOUNDED (staleness) read answered other bytes")

        with ot.step("NBD export rt@eventual on r2's proxy reads a local copy; "
                     "rt@weak is refused"):
            local0 = local_foreign(h2)
            with oc.NbdClient(c.nbd_addr(2)).connect("rt@eventual") as n:
                def nbd_eventual_local():
                    err, got = n.read(0, rng)
                    ot.expect(err == 0 and got == a[:rng], "NBD rt@eventual read: error %d",
                              err)
                    return local_foreign(h2) >= local0 + 3
                ot.wait_until(nbd_eventual_local, 15, "rt@eventual reads served in r2")
            bad = oc.NbdClient(c.nbd_addr(2))
            try:
                bad.connect("rt@weak")
                raise ot.TestError("export rt@weak was accepted")
            except oc.NbdError as e:
                ot.expect("VOLUME@LEVEL" in str(e), "rt@weak refused with %s", e)
            finally:
                bad.close()

        with ot.step("ombra-proxy refuses bad routing flags (exit 2 naming the flag)"):
            binary = ot.find_binary("ombra-proxy", "proxy")
            for flag, val in (("--nbd-consistency", "bounded:0"),
                              ("--nbd-consistency", "weak"),
                              ("--single-writer", "maybe"),
                              ("--writer-lease-ms", "100")):
                r = subprocess.run([binary, "--region", "r2", "--listen", "127.0.0.1:1",
                                    "--metad", c.metad_endpoints, flag, val],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, timeout=30)
                err = r.stderr.decode("utf-8", "replace")
                ot.expect(r.returncode == 2 and flag in err, "%s %s: exit %d: %s",
                          flag, val, r.returncode, err)

        with ot.step("a proxy with --nbd-consistency eventual --single-writer off"):
            base3 = ot.reserve_ports(1)
            http3 = "127.0.0.1:%d" % (base3 + 2)
            log3 = os.path.join(c.dir, "proxy3.log")
            with open(log3, "wb") as lf:
                p3 = subprocess.Popen(
                    [binary, "--region", "r2", "--listen", "127.0.0.1:%d" % base3,
                     "--metad", c.metad_endpoints, "--nbd", "127.0.0.1:%d" % (base3 + 1),
                     "--http", http3, "--single-writer", "off",
                     "--nbd-consistency", "eventual", "--prefetch", "off"],
                    stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                ot.wait_until(lambda: ot.http_get(http3, "/healthz")[0] == 200, 20,
                              "the third proxy's /healthz")
                with oc.NbdClient(("127.0.0.1", base3 + 1)).connect("rt") as n:
                    def nbd_local():
                        err, got = n.read(0, rng)
                        ot.expect(err == 0 and got == a[:rng], "NBD EVENTUAL read: error %d",
                                  err)
                        return local_foreign(http3) >= 3
                    ot.wait_until(nbd_local, 15, "NBD reads served by a local foreign copy")
                    ot.log("third proxy: NBD reads served in r2")
                # The proxy's Watch stream is open: volume events for rt
                # make it refetch rt's map.
                fetches0 = c.metric(http3, "ombra_proxy_map_fetches_total")

                def watch_open():
                    c.admin().call("SetShadowPolicy", st.admin.SetShadowPolicyRequest(
                        name="rt", policy=st.common.ShadowPolicy(
                            regions=["r2"], create_reads_per_s=0.01, idle_ms=120000),
                        request_id=ot.request_id()))
                    time.sleep(0.3)
                    return c.metric(http3, "ombra_proxy_map_fetches_total") > fetches0
                ot.wait_until(watch_open, 40, "the third proxy's Watch stream")
                ot.expect(c.metric(http3, "ombra_proxy_writer_lease_grants_total") == 0,
                          "a proxy with --single-writer off took a writer lease")
            finally:
                p3.send_signal(signal.SIGTERM)
                rc = p3.wait(timeout=30)
                ot.log("third proxy stopped (exit %d)", rc)
                ot.release_ports(base3, 1)
            with open(log3, "rb") as lf:
                text = lf.read().decode("utf-8", "replace")
            ot.expect(rc == 0, "the third proxy exited %d: %s", rc, text[-2000:])
            ot.expect("single-writer volumes: off" in text, "no single-writer off line")
            for pat in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                ot.expect(pat not in text, "the third proxy's log: %s", text[-3000:])

        b = pattern(7, 64 * KIB)
        with ot.step("BOUNDED with the write's token reads the written data"):
            t2 = write(p1, 0, b)
            ot.expect(t2 > t1, "second token %d after %d", t2, t1)
            want = b + a[len(b):rng]
            for stub in (p2, p1, p2):
                r = read(stub, 0, rng, consistency=BOUNDED, min_version=t2)
                ot.expect(r.data == want, "BOUNDED min_version=%d answered stale bytes", t2)
                ot.expect(r.version >= t2, "read version %d < token %d", r.version, t2)

        with ot.step("r1's proxy stops; r2's proxy writes and becomes the writer"):
            c.kill(c.proxy(1)["name"], sig="TERM")
            c2 = pattern(11, 4 * KIB)
            s1 = MIB + 768 * KIB  # segment 1, outside the range read below
            deadline = time.monotonic() + 20
            while True:
                try:
                    write(p2, s1, c2)
                    break
                except grpc.RpcError as e:
                    if time.monotonic() > deadline:
                        raise ot.TestError("r2's write: %s %s" % (e.code(), e.details()))
                    time.sleep(0.3)
            got = c.admin().call("GetVolume", v.GetVolumeRequest(name="rt")).volume
            ot.expect(got.writer.startswith("r2/"), "writer %r", got.writer)
            ot.expect(c.metric(h2, "ombra_proxy_writer_leases") == 1, "r2 holds no lease")

        base = MIB
        cur = bytearray(a[base:base + rng])
        with ot.step("the writer's STRONG reads use its local shadow"):
            local0 = local_foreign(h2)

            def strong_local():
                ot.expect(read(p2, base, rng, consistency=STRONG).data == bytes(cur),
                          "STRONG read of segment 1 answered other bytes")
                return local_foreign(h2) >= local0 + 3
            ot.wait_until(strong_local, 20, "the writer's STRONG reads served in r2")

        with ot.step("after each of its writes the writer's STRONG reads are never stale"):
            for i in range(4):
                d = pattern(20 + i, 8 * KIB)
                off = (i * 24 + 4) * KIB
                write(p2, base + off, d)
                cur[off:off + len(d)] = d
                for _ in range(3):
                    r = read(p2, base, rng, consistency=STRONG)
                    ot.expect(r.data == bytes(cur), "STRONG read after write %d is stale", i)

        with ot.step("a cache entry placed by the prefetch engine serves the writer too"):
            try:
                p2.PrefetchData(v.PrefetchDataRequest(volume="rt", ranges=[
                    st.common.ByteRange(offset_bytes=base + rng, length_bytes=rng)]),
                    timeout=20)
                have_cache = True
            except grpc.RpcError as e:
                ot.log("PrefetchData: %s %s: cache-entry reads not checked",
                       e.code().name, e.details())
                have_cache = False
            if have_cache:
                want = a[base + rng:base + 2 * rng]
                local0 = local_foreign(h2)

                def cache_local():
                    ot.expect(read(p2, base + rng, rng, consistency=STRONG).data == want,
                              "STRONG read of the cached range answered other bytes")
                    return local_foreign(h2) >= local0 + 3
                ot.wait_until(cache_local, 20, "STRONG reads of the cached range in r2")

        with ot.step("NBD: the writer's NBD writes land; r1's proxy, restarted, is refused"):
            d = pattern(40, 4 * KIB)
            # r2's attachment keeps the lease (its last detach releases it).
            with oc.NbdClient(c.nbd_addr(2)).connect("rt") as n2:
                ot.expect(n2.write(base, d) == 0, "NBD write through the writer failed")
                err, got = n2.read(base, 4 * KIB)
                ot.expect(err == 0 and got == d, "NBD read back: error %d", err)
                cur[:len(d)] = d
                c.start(c.proxy(1)["name"])
                with oc.NbdClient(c.nbd_addr(1)).connect("rt") as n1:
                    ot.expect(n1.write(base, pattern(41, 4 * KIB)) != 0,
                              "r1's NBD write accepted while r2 holds the writer lease")
                    err, got = n1.read(base, rng)
                    ot.expect(err == 0 and got == bytes(cur), "r1's NBD read: error %d", err)
                ot.expect(read(p2, base, rng, consistency=STRONG).data == bytes(cur),
                          "r1's refused NBD write landed")

        with ot.step("a writer whose lease ran out fails its writes until it has it again"):
            c.create_volume("rf", MIB, replicas=2, region="r1")
            base4 = ot.reserve_ports(1)
            log4 = os.path.join(c.dir, "proxy4.log")
            with open(log4, "wb") as lf:
                p4 = subprocess.Popen(
                    [binary, "--region", "r1", "--listen", "127.0.0.1:%d" % base4,
                     "--metad", c.metad_endpoints, "--nbd", "off",
                     "--http", "127.0.0.1:%d" % (base4 + 2), "--prefetch", "off",
                     "--writer-lease-ms", "600"],
                    stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            try:
                http4 = "127.0.0.1:%d" % (base4 + 2)
                ot.wait_until(lambda: ot.http_get(http4, "/healthz")[0] == 200, 20,
                              "the fourth proxy's /healthz")
                s4 = st.volume_grpc.VolumeServiceStub(
                    grpc.insecure_channel("127.0.0.1:%d" % base4))
                w4 = pattern(50, 8 * KIB)
                s4.Write(v.WriteRequest(volume="rf", offset_bytes=0, data=w4), timeout=20)
                got = c.admin().call("GetVolume", v.GetVolumeRequest(name="rf")).volume
                ot.expect(got.writer == "r1/127.0.0.1:%d" % base4, "rf's writer %r", got.writer)
                # The writer stops running past its lease; r2 takes over.
                p4.send_signal(signal.SIGSTOP)
                w2 = pattern(51, 8 * KIB)
                try:
                    deadline = time.monotonic() + 15
                    while True:
                        try:
                            p2.Write(v.WriteRequest(volume="rf", offset_bytes=0, data=w2),
                                     timeout=20)
                            break
                        except grpc.RpcError as e:
                            if time.monotonic() > deadline:
                                raise ot.TestError("r2's write of rf: %s %s"
                                                   % (e.code(), e.details()))
                            time.sleep(0.2)
                finally:
                    p4.send_signal(signal.SIGCONT)
                code, msg = failure(lambda: s4.Write(v.WriteRequest(
                    volume="rf", offset_bytes=0, data=pattern(52, 8 * KIB)), timeout=20))
                ot.expect(code == grpc.StatusCode.FAILED_PRECONDITION and "r2/" in msg,
                          "the deposed writer's write: %s %s", code, msg)
                r = s4.Read(v.ReadRequest(volume="rf", offset_bytes=0, length_bytes=8 * KIB),
                            timeout=20)
                ot.expect(r.data == w2, "the deposed writer reads other bytes than r2 wrote")
                ot.expect(c.metric(http4, "ombra_proxy_writer_leases_lost_total") >= 1,
                          "no lost lease counted")
                ot.expect(c.metric(http4, "ombra_proxy_writer_leases") == 0,
                          "the deposed writer still counts a lease")
            finally:
                p4.send_signal(signal.SIGCONT)
                p4.send_signal(signal.SIGTERM)
                rc = p4.wait(timeout=30)
                ot.release_ports(base4, 1)
            with open(log4, "rb") as lf:
                text = lf.read().decode("utf-8", "replace")
            ot.expect(rc == 0, "the fourth proxy exited %d: %s", rc, text[-2000:])
            ot.expect("writer lease of volume rf expired" in text or
                      "writer lease of volume rf lost" in text,
                      "no lease loss logged: %s", text[-2000:])
            for pat in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                ot.expect(pat not in text, "the fourth proxy's log: %s", text[-3000:])
            c.check_sanitizers()


if __name__ == "__main__":
    ot.run_test(main, BUDGET_S)
