"""ombra_cluster: a whole local Ombra cluster for end-to-end tests.

What it is for: the tests/integration/test_e2e_*.py tests start a real
cluster (ombra-metad, ombra-stored, ombra-proxy) with deploy/ombra-local
in a temporary directory on reserved loopback ports, inject faults with
its kill/start subcommands, and talk to every layer: metad's AdminService
(leader-following client of ombra_test), the proxy's VolumeService, each
stored's StoreService, /metrics, and the proxy's NBD port through a small
raw NBD client (NbdClient) that can also send malformed bytes.

How it fails: every helper raises ombra_test.TestError naming what it was
doing and what it saw (an ombra-local failure carries its stderr).
LocalCluster is a context manager: on exit it runs `ombra-local down`,
kills any process of the cluster that is still alive, releases the ports
and removes the directory (kept with OMBRA_TEST_KEEP=1); when the body
raised, it first dumps the tail of every process log.  check_sanitizers()
fails a test whose daemons printed an ASan/UBSan report.
"""

import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import grpc

import ombra_test as ot
from ombra_test import TestError, expect, log

KIB = 1024
MIB = 1024 * KIB
BLOCK = 4096

# Large enough for the proxy's 32 MiB I/O limit and whole-segment reads.
GRPC_OPTS = ot.CHANNEL_OPTIONS + [("grpc.max_receive_message_length", 64 * MIB),
                                  ("grpc.max_send_message_length", 64 * MIB)]

_stubs = None


def stubs():
    """Generated modules: .admin, .volume, .volume_grpc, .store,
    .store_grpc, .common (same search rules as ombra_test.pb())."""
    global _stubs
    if _stubs is None:
        ot.pb()  # puts the generated modules on sys.path when needed
        import common_pb2
        import store_pb2
        import store_pb2_grpc
        import volume_pb2
        import volume_pb2_grpc
        import admin_pb2

        class _Ns:
            admin = admin_pb2
            common = common_pb2
            store = store_pb2
            store_grpc = store_pb2_grpc
            volume = volume_pb2
            volume_grpc = volume_pb2_grpc
        _stubs = _Ns
    return _stubs


def _pid_running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st.rsplit(")", 1)[1].split()[0] != "Z"


def parse_metric(text, name, labels=None):
    """Sum of the samples of metric `name` in Prometheus text whose labels
    include every key=value of `labels`; None when there is no sample."""
    total = None
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        rest = line[len(name):]
        if rest[:1] not in ("{", " "):
            continue  # a longer name with this prefix
        lab = {}
        if rest.startswith("{"):
            body, rest = rest[1:].split("}", 1)
            for kv in body.split(","):
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    lab[k.strip()] = v.strip().strip('"')
        if labels and any(lab.get(k) != v for k, v in labels.items()):
            continue
        total = (total or 0.0) + float(rest.split()[0])
    return total


def _on_sigterm(signum, frame):
    raise TestError("terminated by SIGTERM")


class LocalCluster:
    """A cluster run by deploy/ombra-local in a temp dir (see module doc).

    regions: number of regions (1 region = 1 metad, 2 stored, 1 proxy).
    After up(): self.summary is ombra-local's `up --json` document.
    SIGTERM to the test (the harness giving up) raises TestError, so the
    cluster is still stopped by __exit__."""

    def __init__(self, name, regions=1, fast_size="8GiB", slow_size="16GiB"):
        signal.signal(signal.SIGTERM, _on_sigterm)
        self.script = os.path.join(ot.srcdir(), "deploy", "ombra-local")
        self.bindir = ot.builddir()
        self.regions = regions
        self.fast_size, self.slow_size = fast_size, slow_size
        self.dir = tempfile.mkdtemp(prefix="ombra-e2e-%s-" % name)
        self.cdir = os.path.join(self.dir, "cluster")
        self.base = ot.reserve_ports(regions)
        self.summary = None
        self._admin = None
        self._channels = {}
        self._pids = set()  # every pid ever seen, for the final sweep

    # -- lifecycle

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        if etype is not None:
            self.dump_logs()
        self.close()
        return False

    def local(self, *args, timeout=150):
        """Run `ombra-local ARGS --dir DIR`; stdout, or TestError with its
        stderr when it fails or runs over `timeout` seconds."""
        argv = [sys.executable, self.script] + list(args) + ["--dir", self.cdir]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TestError("ombra-local %s: no answer within %ds" % (" ".join(args), timeout))
        if r.returncode != 0:
            raise TestError("ombra-local %s exited %d: %s" % (
                " ".join(args), r.returncode, r.stderr.decode("utf-8", "replace").strip()))
        return r.stdout.decode()

    def up(self, timeout=120):
        out = self.local("up", "--json", "--regions", str(self.regions), "--base-port",
                         str(self.base), "--bin-dir", self.bindir, "--fast-size",
                         self.fast_size, "--slow-size", self.slow_size,
                         "--timeout", str(timeout - 10), timeout=timeout)
        self.summary = json.loads(out)
        self._remember_pids()
        log("cluster up in %s: metad %s, proxy %s (nbd %s)", self.cdir,
            self.metad_endpoints, self.proxy()["grpc"], self.proxy()["nbd"])
        return self

    def refresh(self):
        """Re-read the summary (pids change after kill/start)."""
        argv = [sys.executable, self.script, "status", "--json", "--dir", self.cdir]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60, stdin=subprocess.DEVNULL)
        # status exits 1 while a process is down: the document is still valid.
        try:
            self.summary = json.loads(r.stdout.decode())
        except ValueError as e:
            raise TestError("ombra-local status --json exited %d without a document (%s): %s"
                            % (r.returncode, e, r.stderr.decode("utf-8", "replace")))
        self._remember_pids()

    def _remember_pids(self):
        for p in self.summary.get("processes", []):
            if p.get("pid"):
                self._pids.add(p["pid"])

    def kill(self, name, sig="KILL"):
        """ombra-local kill NAME (waits until the process is gone)."""
        self.local("kill", name, "--signal", sig, timeout=60)
        log("%s killed (SIG%s)", name, sig)

    def start(self, name, timeout=120):
        """ombra-local start NAME (waits until it is healthy)."""
        self.local("start", name, "--bin-dir", self.bindir, "--timeout",
                   str(timeout - 10), timeout=timeout)
        self.refresh()
        log("%s started again (pid %s)", name, self.process(name)["pid"])

    def close(self):
        for ch in self._channels.values():
            ch.close()
        self._channels = {}
        if self._admin is not None:
            self._admin.close()
        if os.path.exists(os.path.join(self.cdir, "cluster.json")):
            try:
                self.local("down", timeout=90)
            except TestError as e:
                log("ombra-local down failed: %s", e)
        for pid in self._pids:  # whatever `down` missed
            if _pid_running(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                    log("killed leftover pid %d", pid)
                except OSError:
                    pass
        ot.release_ports(self.base, self.regions)
        if os.environ.get("OMBRA_TEST_KEEP"):
            log("keeping %s (OMBRA_TEST_KEEP)", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- processes and logs

    def process(self, name):
        for p in self.summary["processes"]:
            if p["name"] == name:
                return p
        raise TestError("no process %s in the cluster" % name)

    def names(self, role=None):
        return [p["name"] for p in self.summary["processes"]
                if role is None or p["role"] == role]

    def log_path(self, name):
        return os.path.join(self.cdir, name, name + ".log")

    def proc_dir(self, name):
        return os.path.join(self.cdir, name)

    def log_tail(self, name, lines=60):
        try:
            with open(self.log_path(name), "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            return "(no log: %s)" % e
        return "\n".join(data[-lines:])

    def dump_logs(self, lines=60):
        if not self.summary:
            return
        for n in self.names():
            sys.stderr.write("---- %s log tail:\n%s\n" % (n, self.log_tail(n, lines)))
        sys.stderr.flush()

    def alive(self, name):
        pid = self.process(name).get("pid")
        return bool(pid) and _pid_running(pid)

    def check_alive(self, names=None, what="still running"):
        """TestError naming every process of `names` (default: all) that is
        not running any more, with its log tail."""
        dead = [n for n in (names or self.names()) if not self.alive(n)]
        if dead:
            for n in dead:
                sys.stderr.write("---- %s died; log tail:\n%s\n" % (n, self.log_tail(n, 80)))
            raise TestError("%s: not running: %s" % (what, ", ".join(dead)))

    def check_sanitizers(self):
        """TestError when a process log holds an ASan/UBSan/LSan report."""
        bad = []
        for path in glob.glob(os.path.join(self.cdir, "*", "*.log")):
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            for pat in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                i = text.find(pat)
                if i >= 0:
                    bad.append("%s: %s" % (os.path.basename(path), text[i:i + 2000]))
                    break
        expect(not bad, "sanitizer reports:\n%s", "\n".join(bad))

    # -- endpoints

    @property
    def metad_endpoints(self):
        return self.summary["endpoints"]

    def region(self, i=1):
        return self.summary["regions"][i - 1]

    def proxy(self, i=1):
        """{"name", "grpc", "nbd", "http"} of region i's proxy."""
        return self.region(i)["proxy"]

    def stored(self, i=1):
        """[{"name", "grpc", "http"}, ...] of region i's storage nodes."""
        return self.region(i)["stored"]

    def nbd_uri(self, volume, i=1):
        return "nbd://%s/%s" % (self.proxy(i)["nbd"], volume)

    def nbd_addr(self, i=1):
        h, p = self.proxy(i)["nbd"].rsplit(":", 1)
        return h, int(p)

    # -- clients

    def admin(self):
        if self._admin is None:
            self._admin = ot.AdminClient(self.metad_endpoints)
        return self._admin

    def _channel(self, addr):
        ch = self._channels.get(addr)
        if ch is None:
            ch = grpc.insecure_channel(addr, options=GRPC_OPTS)
            self._channels[addr] = ch
        return ch

    def reset_channel(self, addr):
        ch = self._channels.pop(addr, None)
        if ch is not None:
            ch.close()

    def volume_stub(self, i=1):
        """VolumeService stub on region i's proxy."""
        return stubs().volume_grpc.VolumeServiceStub(self._channel(self.proxy(i)["grpc"]))

    def store_stub(self, addr):
        """StoreService stub on a stored's gRPC address."""
        return stubs().store_grpc.StoreServiceStub(self._channel(addr))

    def metrics(self, http_addr):
        code, body = ot.http_get(http_addr, "/metrics")
        expect(code == 200, "GET http://%s/metrics answered %s", http_addr, code)
        return body

    def metric(self, http_addr, name, labels=None):
        """Value of a metric (summed over matching label sets; 0 if absent)."""
        return parse_metric(self.metrics(http_addr), name, labels) or 0.0

    # -- volumes and placement

    def create_volume(self, name, size, segment_size=MIB, replicas=2, region="r1"):
        """CreateVolume on metad; returns the Volume message."""
        v = stubs().volume
        req = v.CreateVolumeRequest(name=name, size_bytes=size,
                                    segment_size_bytes=segment_size,
                                    home_region=region, replicas=replicas,
                                    request_id=ot.request_id())
        vol = self.admin().call("CreateVolume", req).volume
        log("volume %s: id %d, %d bytes, %d segments of %d, RF %d", name, vol.id,
            vol.size_bytes, vol.segment_count, vol.segment_size_bytes, vol.replicas)
        return vol

    def wait_volume_served(self, name, timeout=30.0, i=1):
        """Wait until region i's proxy answers a 4 KiB Read of the volume
        (its shard-map cache has caught up with the new volume)."""
        v = stubs().volume
        last = [None]

        def ok():
            try:
                self.volume_stub(i).Read(v.ReadRequest(volume=name, offset_bytes=0,
                                                       length_bytes=BLOCK), timeout=5)
                return True
            except grpc.RpcError as e:
                last[0] = "%s %s" % (e.code().name, e.details())
                return False
        ot.wait_until(ok, timeout, "proxy to serve volume %s (last error %s)" % (name, last))

    def nodes(self):
        """{node id: Node} from metad's ListNodes."""
        resp = self.admin().call("ListNodes", stubs().admin.ListNodesRequest())
        return {n.id: n for n in resp.nodes}

    def node_by_name(self, name):
        for n in self.nodes().values():
            if n.name == name:
                return n
        raise TestError("metad does not know node %s" % name)

    def shard_map(self, volume):
        """(Volume, [SegmentPlacement], {node id: Node}) of every segment,
        from metad's GetShardMap (paged)."""
        v = stubs().volume
        segs, nodes, first, vol = [], {}, 0, None
        while True:
            resp = self.admin().call("GetShardMap", v.GetVolumeShardingInfoRequest(
                volume=volume, first_segment=first, max_segments=65536))
            vol = resp.volume
            segs.extend(resp.segments)
            nodes.update({n.id: n for n in resp.nodes})
            if resp.next_segment == 0:
                return vol, segs, nodes
            first = resp.next_segment

    def data_files(self, stored_name, volume_id):
        """Paths of the data files of volume_id on a stored (every tier)."""
        return sorted(glob.glob(os.path.join(self.proc_dir(stored_name), "*",
                                             "vol-%d.data" % volume_id)))


# ------------------------------------------------------------------ NBD

NBD_MAGIC = 0x4E42444D41474943  # "NBDMAGIC"
NBD_IHAVEOPT = 0x49484156454F5054
NBD_REP_MAGIC = 0x3E889045565A9
NBD_REQ_MAGIC = 0x25609513
NBD_SIMPLE_REPLY_MAGIC = 0x67446698
NBD_OPT_ABORT, NBD_OPT_LIST, NBD_OPT_GO = 2, 3, 7
NBD_REP_ACK, NBD_REP_SERVER, NBD_REP_INFO = 1, 2, 3
NBD_REP_ERR_UNKNOWN = (1 << 31) | 6
NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_DISC, NBD_CMD_FLUSH = 0, 1, 2, 3
NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES = 4, 6
NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES = 1, 2


class NbdError(TestError):
    pass


class NbdClient:
    """A raw NBD client on one TCP connection (fixed newstyle, simple
    replies).  Methods raise NbdError on a protocol violation, a closed
    connection or a timeout; command errors are returned as errno values.
    The socket is exposed (self.sock) for tests that send garbage."""

    def __init__(self, addr, timeout=20.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.handle = 0
        self.size = None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                raise NbdError("nbd: timed out waiting for %d bytes (got %d)" % (n, len(buf)))
            except OSError as e:
                raise NbdError("nbd: connection error after %d of %d bytes: %s"
                               % (len(buf), n, e))
            if not chunk:
                raise NbdError("nbd: connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def closed_by_server(self, timeout=10.0):
        """True when the server closes the connection within `timeout`
        (anything it still sends is read and dropped)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False

    def greeting(self):
        """Read the server greeting and send the client flags."""
        magic, opt, flags = struct.unpack(">QQH", self.recv_exact(18))
        if magic != NBD_MAGIC or opt != NBD_IHAVEOPT:
            raise NbdError("nbd: bad greeting %#x %#x" % (magic, opt))
        self.sock.sendall(struct.pack(">I", NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
        return flags

    def send_option(self, opt, data=b""):
        self.sock.sendall(struct.pack(">QII", NBD_IHAVEOPT, opt, len(data)) + data)

    def option_reply(self):
        """(option, reply type, data) of the next option reply."""
        magic, opt, rtype, ln = struct.unpack(">QIII", self.recv_exact(20))
        if magic != NBD_REP_MAGIC:
            raise NbdError("nbd: bad option reply magic %#x" % magic)
        return opt, rtype, self.recv_exact(ln)

    def go(self, name):
        """NBD_OPT_GO; returns the export size.  NbdError with the server's
        message on an error reply."""
        nm = name.encode()
        self.send_option(NBD_OPT_GO, struct.pack(">I", len(nm)) + nm + struct.pack(">H", 0))
        while True:
            _, rtype, data = self.option_reply()
            if rtype == NBD_REP_INFO:
                if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == 0:
                    self.size = struct.unpack(">Q", data[2:10])[0]
            elif rtype == NBD_REP_ACK:
                return self.size
            elif rtype & (1 << 31):
                raise NbdError("nbd: GO %s refused: reply %#x %r" % (name, rtype, data))
            else:
                raise NbdError("nbd: unexpected reply %#x to GO" % rtype)

    def connect(self, name):
        """Greeting + GO: ready for commands.  Returns self."""
        self.greeting()
        self.go(name)
        return self

    def send_request(self, cmd, offset, length, data=b"", flags=0, magic=NBD_REQ_MAGIC):
        self.handle += 1
        self.sock.sendall(struct.pack(">IHHQQI", magic, flags, cmd, self.handle,
                                      offset, length) + data)
        return self.handle

    def reply(self, read_len=0):
        """(errno, handle, data) of the next simple reply; data is read
        only for a successful read of read_len bytes."""
        magic, err, handle = struct.unpack(">IIQ", self.recv_exact(16))
        if magic != NBD_SIMPLE_REPLY_MAGIC:
            raise NbdError("nbd: bad reply magic %#x" % magic)
        data = self.recv_exact(read_len) if err == 0 and read_len else b""
        return err, handle, data

    def _cmd(self, cmd, offset, length, data=b"", read_len=0, flags=0):
        h = self.send_request(cmd, offset, length, data, flags)
        err, rh, out = self.reply(read_len)
        if rh != h:
            raise NbdError("nbd: reply for handle %d, expected %d" % (rh, h))
        return err, out

    def read(self, offset, length):
        """(errno, data)."""
        return self._cmd(NBD_CMD_READ, offset, length, read_len=length)

    def write(self, offset, data, flags=0):
        """errno."""
        return self._cmd(NBD_CMD_WRITE, offset, len(data), data, flags=flags)[0]

    def flush(self):
        return self._cmd(NBD_CMD_FLUSH, 0, 0)[0]

    def disconnect(self):
        try:
            self.send_request(NBD_CMD_DISC, 0, 0)
        except OSError:
            pass
        self.close()
