"""ombra_test: shared helpers for Ombra's integration tests.

What it is for: starting real ombra-metad clusters on reserved loopback
ports (19000-19999, see reserve_ports) in a temporary directory (config files, processes, logs), talking to them
with a leader-following AdminService client built on the Python stubs that
`make check` generates from proto/ (BUILD/tests/py/gen), and waiting for
cluster conditions with a deadline on every wait.

How it fails: every wait raises TestError with what it was waiting for and
the last state it saw; Cluster.__exit__ dumps the tail of every member's
log to stderr when the test body raised, kills every process it started
and removes its temporary directory (set OMBRA_TEST_KEEP=1 to keep it).
run_test() turns any exception, including the overall watchdog timeout,
into exit status 1 with a traceback, so automake reports FAIL, never a hang.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid

import grpc

HOST = "127.0.0.1"
LEADER_MD_KEY = "ombra-leader"
SERVICE = "ombra.v1.AdminService"

# gRPC codes on which a leader-following call moves on and tries again.
RETRY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class TestError(AssertionError):
    """A failed expectation or a wait that ran out of time."""


def log(fmt, *args):
    """Progress line on stderr with a wall-clock stamp (goes to the .log)."""
    msg = fmt % args if args else fmt
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def expect(cond, fmt, *args):
    """Raise TestError(fmt % args) unless cond holds (not stripped by -O)."""
    if not cond:
        raise TestError(fmt % args if args else fmt)


# ------------------------------------------------------------------ paths


def srcdir():
    """Top of the source tree: $OMBRA_SRCDIR or two levels above this file."""
    env = os.environ.get("OMBRA_SRCDIR")
    if env:
        return env
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def builddir():
    """Top of the build tree: $OMBRA_BUILDDIR or SRCDIR/build."""
    return os.environ.get("OMBRA_BUILDDIR") or os.path.join(srcdir(), "build")


def find_binary(name, subdir):
    """Absolute path of a built program: BUILD/subdir/name, else PATH.

    Raises TestError naming both places when it is nowhere (the build is
    supposed to provide it, so this is a failure, not a skip)."""
    cand = os.path.join(builddir(), subdir, name)
    if os.access(cand, os.X_OK):
        return cand
    found = shutil.which(name)
    if found:
        return found
    raise TestError("%s not found in %s or on PATH; build it first (make %s/%s)"
                    % (name, os.path.dirname(cand), subdir, name))


# ------------------------------------------------------------- proto stubs

_pb = None


def pb():
    """The generated modules as one namespace: pb().admin, .volume, .common,
    .admin_grpc.  Uses the stubs on PYTHONPATH (make check) or, when run by
    hand, generates them from SRCDIR/proto into a cache directory."""
    global _pb
    if _pb is not None:
        return _pb
    import importlib.util
    if importlib.util.find_spec("admin_pb2") is None:
        gen = os.path.join(tempfile.gettempdir(), "ombra-test-gen-%d" % os.getuid())
        stamp = os.path.join(gen, "admin_pb2.py")
        protodir = os.path.join(srcdir(), "proto")
        protos = sorted(os.path.join(protodir, p) for p in os.listdir(protodir)
                        if p.endswith(".proto"))
        if (not os.path.exists(stamp) or
                max(os.path.getmtime(p) for p in protos) > os.path.getmtime(stamp)):
            os.makedirs(gen, exist_ok=True)
            subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", protodir,
                            "--python_out=" + gen, "--grpc_python_out=" + gen] + protos,
                           check=True)
        sys.path.insert(0, gen)
    import admin_pb2
    import admin_pb2_grpc
    import common_pb2
    import volume_pb2

    class _Ns:
        admin = admin_pb2
        admin_grpc = admin_pb2_grpc
        common = common_pb2
        volume = volume_pb2

    _pb = _Ns
    return _pb


def request_id():
    """A fresh idempotency key (reuse it when retrying the same write)."""
    return str(uuid.uuid4())


# -------------------------------------------------------------------- ports
#
# Tests listen on 19000-19999 (outside the kernel's ephemeral range, so an
# outgoing connection can never take the port of a member that is down
# and about to restart).  The range is cut into blocks of 10 ports; a
# block is reserved by creating TMPDIR/ombra-test-ports/<block> (O_EXCL)
# holding the owner's pid, so tests running in parallel, from any build
# tree, never pick the same ports.  Reservations of dead owners are stale
# and taken over.

PORT_LO, PORT_HI, PORT_BLOCK = 19000, 20000, 10
_RESERVE_DIR = os.path.join(tempfile.gettempdir(), "ombra-test-ports")


def port_is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim_block(block, owner):
    path = os.path.join(_RESERVE_DIR, str(block))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    pid = int(f.read().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and _pid_alive(pid):
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # stale: its owner is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % owner)
        return True
    return False


def release_ports(base, blocks):
    """Drop the reservation of `blocks` blocks starting at port base."""
    first = (base - PORT_LO) // PORT_BLOCK
    for b in range(first, first + blocks):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(_RESERVE_DIR, str(b)))


def reserve_ports(blocks=1, owner=None):
    """Reserve `blocks` consecutive blocks of 10 free ports in 19000-19999
    for process `owner` (default: this process); returns the first port.
    Released by release_ports() or when the owner exits."""
    import random
    owner = owner or os.getpid()
    os.makedirs(_RESERVE_DIR, exist_ok=True)
    n = (PORT_HI - PORT_LO) // PORT_BLOCK
    starts = list(range(n - blocks + 1))
    random.Random(os.getpid() ^ time.monotonic_ns()).shuffle(starts)
    for s0 in starts:
        got = []
        for b in range(s0, s0 + blocks):
            if not _claim_block(b, owner):
                break
            got.append(b)
        base = PORT_LO + s0 * PORT_BLOCK
        if len(got) == blocks and all(port_is_free(p) for p in
                                      range(base, base + blocks * PORT_BLOCK)):
            return base
        for b in got:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(_RESERVE_DIR, str(b)))
    raise TestError("no %d free blocks of %d ports in %d-%d"
                    % (blocks, PORT_BLOCK, PORT_LO, PORT_HI - 1))


# ---------------------------------------------------------------- channels


class Tls:
    """Client TLS material (PEM bytes): ca, and optionally cert + key."""

    def __init__(self, ca, cert=None, key=None):
        self.ca, self.cert, self.key = ca, cert, key

    @classmethod
    def from_files(cls, ca, cert=None, key=None):
        def rd(p):
            if p is None:
                return None
            with open(p, "rb") as f:
                return f.read()
        return cls(rd(ca), rd(cert), rd(key))


# Reconnect quickly (gRPC's default backoff starts at 1 s and grows by 1.6x
# to 120 s, which turns a member restart into many seconds of fail-fast
# UNAVAILABLE), and keep subchannels per channel so one client's broken
# connection is not shared with another client's.
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000),
                   ("grpc.use_local_subchannel_pool", 1)]


def channel(endpoint, tls=None):
    """A grpc channel to endpoint "host:port", insecure or with tls."""
    if tls is None:
        return grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
    creds = grpc.ssl_channel_credentials(root_certificates=tls.ca,
                                         private_key=tls.key,
                                         certificate_chain=tls.cert)
    return grpc.secure_channel(endpoint, creds, options=CHANNEL_OPTIONS)


def leader_hint(err):
    """The "ombra-leader" trailing metadata value of an RpcError, "" when
    the key is empty, None when the key is absent (the error came from the
    transport, not from a metad answer)."""
    try:
        md = err.trailing_metadata() or ()
    except Exception:  # not a grpc.Call (e.g. a local failure)
        return None
    for k, v in md:
        if k == LEADER_MD_KEY:
            return v.decode() if isinstance(v, bytes) else v
    return None


class AdminClient:
    """AdminService client over a list of endpoints that follows the leader.

    call() starts at the last known leader, follows "ombra-leader" hints on
    UNAVAILABLE, otherwise tries the next endpoint, and backs off (50 ms
    doubling to 1 s) until `timeout` seconds are spent; each attempt gets
    at most `attempt_timeout` seconds.  Writes must carry a request_id: the
    same request object (and so the same id) is sent on every retry.
    Non-retryable errors are raised at once as grpc.RpcError."""

    def __init__(self, endpoints, tls=None, attempt_timeout=3.0):
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e]
        expect(endpoints, "AdminClient needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.tls = tls
        self.attempt_timeout = attempt_timeout
        self.leader = self.endpoints[0]
        self._stubs = {}
        self._chan_of = {}
        self._channels = []
        self._lock = threading.Lock()
        self.retries = 0  # attempts that failed and were retried (for logs)

    def stub(self, endpoint):
        with self._lock:
            st = self._stubs.get(endpoint)
            if st is None:
                ch = channel(endpoint, self.tls)
                self._channels.append(ch)
                self._chan_of[endpoint] = ch
                st = pb().admin_grpc.AdminServiceStub(ch)
                self._stubs[endpoint] = st
            return st

    def direct(self, endpoint, method, req, timeout=5.0, metadata=False):
        """One call to one endpoint, no retry.  With metadata=True returns
        (response, call) so trailing metadata can be inspected."""
        fn = getattr(self.stub(endpoint), method)
        try:
            if metadata:
                return fn.with_call(req, timeout=timeout)
            return fn(req, timeout=timeout)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE and leader_hint(e) is None:
                self.reset(endpoint)
            raise

    def reset(self, endpoint):
        """Drop the channel to endpoint; the next call opens a new one.

        Done after every transport-level UNAVAILABLE: grpcio 1.51's TLS
        channels can stay broken ("tcp handshaker shutdown") after a
        refused connection while the server starts, and a fresh channel
        (own subchannel pool) also skips the reconnect backoff."""
        with self._lock:
            if self._stubs.pop(endpoint, None) is not None:
                ch = self._chan_of.pop(endpoint)
                self._channels.remove(ch)
                ch.close()

    def call(self, method, req, timeout=20.0):
        deadline = time.monotonic() + timeout
        backoff = 0.05
        target = self.leader
        last = None
        tried = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise last if last is not None else TestError(
                    "%s: no attempt made within %.1fs" % (method, timeout))
            try:
                resp = self.direct(target, method, req,
                                   timeout=min(left, self.attempt_timeout))
                self.leader = target
                return resp
            except grpc.RpcError as e:
                if e.code() not in RETRY_CODES:
                    raise
                last = e
                self.retries += 1
                tried += 1
                hint = leader_hint(e)
                if hint and hint != target:
                    target = hint  # follow at once, no backoff
                    continue
                i = self.endpoints.index(target) if target in self.endpoints else -1
                target = self.endpoints[(i + 1) % len(self.endpoints)]
                if tried % len(self.endpoints) == 0:
                    time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                    backoff = min(backoff * 2, 1.0)

    def close(self):
        with self._lock:
            for ch in self._channels:
                ch.close()
            self._channels = []
            self._stubs = {}
            self._chan_of = {}


def status_code(fn, *args, **kw):
    """Run fn; return (grpc.StatusCode, details) of the RpcError it raised,
    or (OK, None) if it returned."""
    try:
        fn(*args, **kw)
        return grpc.StatusCode.OK, None
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


# ------------------------------------------------------------------ HTTP


def http_get(addr, path, timeout=5.0):
    """GET http://addr/path -> (status, body text); status 0 if unreachable."""
    try:
        with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


# ---------------------------------------------------------------- cluster


class Member:
    """One ombra-metad process: its ports, directory, config, log."""

    def __init__(self, cluster, mid, bootstrap=True):
        self.cluster = cluster
        self.id = mid
        self.base = reserve_ports(1)
        self.grpc = "%s:%d" % (HOST, self.base)
        self.raft = "%s:%d" % (HOST, self.base + 1)
        self.http = "%s:%d" % (HOST, self.base + 2)
        self.bootstrap = bootstrap
        self.dir = os.path.join(cluster.dir, "metad-%d" % mid)
        self.data_dir = os.path.join(self.dir, "data")
        self.conf = os.path.join(self.dir, "metad.conf")
        self.log_path = os.path.join(self.dir, "metad.log")
        self.proc = None
        self.exits = []  # (how stopped, exit status) for every stop
        os.makedirs(self.dir, exist_ok=True)

    def write_config(self, members):
        """Write metad.conf listing `members` as [member.N] sections."""
        c = self.cluster
        lines = ["# written by tests/py/ombra_test.py", "[metad]",
                 "id = %d" % self.id,
                 "data_dir = %s" % self.data_dir,
                 "grpc_listen = %s" % self.grpc,
                 "raft_listen = %s" % self.raft,
                 "http_listen = %s" % self.http,
                 "log_level = %s" % c.log_level,
                 "bootstrap = %s" % ("true" if self.bootstrap else "false")]
        for k, v in sorted(c.settings.items()):
            lines.append("%s = %s" % (k, v))
        if c.server_tls:
            lines += ["", "[tls]", "ca = %s" % c.server_tls["ca"],
                      "cert = %s" % c.server_tls["cert"],
                      "key = %s" % c.server_tls["key"]]
        for m in members:
            lines += ["", "[member.%d]" % m.id, "raft = %s" % m.raft,
                      "grpc = %s" % m.grpc]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        expect(not self.alive(), "metad-%d already running", self.id)
        logf = open(self.log_path, "ab")
        logf.write(("==== start %s\n" % time.strftime("%H:%M:%S")).encode())
        logf.flush()
        env = dict(os.environ)
        # Leak reports are wanted (clean shutdown is part of the contract);
        # abort_on_error would turn reports into core dumps: keep it off.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        try:
            self.proc = subprocess.Popen([self.cluster.metad, "--config", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        finally:
            logf.close()
        log("started metad-%d pid %d grpc %s raft %s http %s", self.id,
            self.proc.pid, self.grpc, self.raft, self.http)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL and reap."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)
            log("killed metad-%d (SIGKILL)", self.id)
        if self.proc is not None:
            self.exits.append(("SIGKILL", self.proc.returncode))
        self.proc = None

    def stop(self, timeout=15.0):
        """SIGTERM, wait up to timeout, then SIGKILL.  Returns the exit status
        (0 = clean shutdown; negative = killed by that signal)."""
        if self.proc is None:
            return None
        how = "SIGTERM"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                how = "SIGTERM, then SIGKILL after %.0fs" % timeout
                self.proc.kill()
                self.proc.wait(10)
        else:
            how = "exited by itself"
        rc = self.proc.returncode
        self.exits.append((how, rc))
        self.proc = None
        return rc

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace").splitlines()
        except OSError as e:
            return "(no log: %s)" % e
        return "\n".join(data[-lines:])

    def status(self, client=None, timeout=3.0):
        """GetClusterStatus answered by this member itself."""
        cl = client or self.cluster.client()
        return cl.direct(self.grpc, "GetClusterStatus",
                         pb().admin.GetClusterStatusRequest(), timeout=timeout)


class Cluster:
    """A set of ombra-metad members on free loopback ports in a temp dir.

    settings: extra [metad] keys for every member (e.g. snapshot_threshold).
    server_tls: {"ca","cert","key"} paths for the [tls] section; client_tls:
    a Tls for the clients this object hands out.  Use as a context manager:
    on exit every process is stopped and the directory removed; if the body
    raised, member logs are dumped first."""

    def __init__(self, n, name="cluster", settings=None, server_tls=None,
                 client_tls=None, log_level="info"):
        self.metad = find_binary("ombra-metad", "metad")
        self.dir = tempfile.mkdtemp(prefix="ombra-%s-" % name)
        self.settings = dict(settings or {})
        self.server_tls = server_tls
        self.client_tls = client_tls
        self.log_level = log_level
        self.members = {}
        self._clients = []
        for i in range(1, n + 1):
            self.members[i] = Member(self, i)
        self.initial = list(self.members.values())
        for m in self.initial:
            m.write_config(self.initial)

    # -- lifecycle

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        if etype is not None:
            self.dump_logs()
        self.close()
        return False

    def start(self):
        for m in self.members.values():
            m.start()
        return self

    def close(self):
        for c in self._clients:
            c.close()
        self._clients = []
        for m in self.members.values():
            m.stop()
            release_ports(m.base, 1)
        if os.environ.get("OMBRA_TEST_KEEP"):
            log("keeping %s (OMBRA_TEST_KEEP)", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def stop_all_checked(self):
        """SIGTERM every member and require a clean exit (status 0): a
        sanitizer report or a crash during shutdown fails the test."""
        bad = []
        for m in self.members.values():
            if m.proc is None:
                continue
            rc = m.stop()
            if rc != 0:
                bad.append((m, rc))
        # The caller's Cluster.__exit__ dumps the logs (sanitizer reports).
        expect(not bad, "unclean shutdown: %s",
               ", ".join("metad-%d status %s" % (m.id, rc) for m, rc in bad))

    def dump_logs(self, lines=80):
        for m in self.members.values():
            sys.stderr.write("---- metad-%d (%s) log tail:\n%s\n"
                             % (m.id, "running" if m.alive() else "not running",
                                m.log_tail(lines)))
        sys.stderr.flush()

    # -- clients

    def endpoints(self, members=None):
        ms = members if members is not None else self.members.values()
        return [m.grpc for m in ms]

    def client(self, members=None, tls=None, attempt_timeout=3.0):
        c = AdminClient(self.endpoints(members), tls=tls or self.client_tls,
                        attempt_timeout=attempt_timeout)
        self._clients.append(c)
        return c

    # -- membership

    def add_member(self, settings=None):
        """Create (not start) a new member with bootstrap=false whose config
        lists the initial members and itself."""
        mid = max(self.members) + 1
        m = Member(self, mid, bootstrap=False)
        self.members[mid] = m
        if settings:
            self.settings.update(settings)
        m.write_config(self.initial + [m])
        return m

    # -- waits

    def statuses(self, members=None, client=None):
        """{member id: GetClusterStatusResponse or the exception} for every
        running member."""
        cl = client or self.client()
        out = {}
        for m in (members if members is not None else self.members.values()):
            if not m.alive():
                continue
            try:
                out[m.id] = m.status(cl)
            except grpc.RpcError as e:
                out[m.id] = e
        return out

    def check_alive(self):
        dead = [m for m in self.members.values()
                if m.proc is not None and m.proc.poll() is not None]
        if dead:
            for m in dead:
                sys.stderr.write("---- metad-%d died (status %s); log tail:\n%s\n"
                                 % (m.id, m.proc.returncode, m.log_tail(80)))
            raise TestError("metad died unexpectedly: %s" % ", ".join(
                "metad-%d status %s" % (m.id, m.proc.returncode) for m in dead))

    def wait_leader(self, timeout=30.0, exclude=(), members=None):
        """Wait until a running member (of `members`, default all) says it
        is the leader, is not in `exclude`, and every other running member
        asked that answers agrees on its id.  Returns the Member.  Pass
        `members` once some members were removed from the group: they may
        still name an old leader."""
        deadline = time.monotonic() + timeout
        cl = self.client()
        seen = {}
        while time.monotonic() < deadline:
            self.check_alive()
            seen = self.statuses(members=members, client=cl)
            leaders = [mid for mid, st in seen.items()
                       if not isinstance(st, Exception) and st.state == "leader"]
            if len(leaders) == 1 and leaders[0] not in exclude:
                lid = leaders[0]
                agree = all(isinstance(st, Exception) or st.leader_id in (0, lid)
                            for st in seen.values())
                if agree:
                    return self.members[lid]
            time.sleep(0.1)
        raise TestError("no leader within %.0fs; last statuses: %s"
                        % (timeout, describe_statuses(seen)))

    def wait_converged(self, members=None, timeout=30.0, min_index=0):
        """Wait until every given running member reports the same
        applied_index (>= min_index and >= the leader's applied index when
        the wait started) and the same state_hash.  Returns that index."""
        ms = [m for m in (members if members is not None else self.members.values())
              if m.alive()]
        cl = self.client()
        deadline = time.monotonic() + timeout
        seen = {}
        target = min_index
        try:
            ld = self.wait_leader(timeout=timeout / 2, members=ms)
            target = max(target, ld.status(cl).applied_index)
        except (TestError, grpc.RpcError):
            pass
        while time.monotonic() < deadline:
            self.check_alive()
            seen = self.statuses(members=ms, client=cl)
            oks = [st for st in seen.values() if not isinstance(st, Exception)]
            if len(oks) == len(ms):
                idx = {st.applied_index for st in oks}
                hashes = {st.state_hash for st in oks}
                if len(idx) == 1 and len(hashes) == 1 and min(idx) >= target:
                    return idx.pop()
            time.sleep(0.1)
        raise TestError("members %s did not converge on applied index >= %d within "
                        "%.0fs; last statuses: %s"
                        % ([m.id for m in ms], target, timeout, describe_statuses(seen)))

    def wait_applied(self, index, members=None, timeout=30.0):
        """Wait until every given running member has applied_index >= index."""
        ms = list(members if members is not None else self.members.values())
        cl = self.client()
        deadline = time.monotonic() + timeout
        seen = {}
        while time.monotonic() < deadline:
            self.check_alive()
            seen = self.statuses(members=ms, client=cl)
            if all(not isinstance(st, Exception) and st.applied_index >= index
                   for st in seen.values()) and len(seen) == len(ms):
                return
            time.sleep(0.1)
        raise TestError("members %s did not apply index %d within %.0fs; last: %s"
                        % ([m.id for m in ms], index, timeout, describe_statuses(seen)))


def describe_statuses(seen):
    parts = []
    for mid, st in sorted(seen.items()):
        if isinstance(st, grpc.RpcError):
            parts.append("metad-%d: %s %s" % (mid, st.code().name, st.details()))
        elif isinstance(st, Exception):
            parts.append("metad-%d: %r" % (mid, st))
        else:
            parts.append("metad-%d: state=%s term=%d leader=%d applied=%d commit=%d "
                         "hash=%s" % (mid, st.state, st.term, st.leader_id,
                                      st.applied_index, st.commit_index,
                                      st.state_hash[:12]))
    return "; ".join(parts) or "(no member answered)"


def wait_until(cond, timeout, what, interval=0.1):
    """Poll cond() until it returns a truthy value (returned) or raise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise TestError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


# ------------------------------------------------------------------ runner


class _Watchdog(Exception):
    pass


def run_test(fn, timeout):
    """Run fn() under an overall watchdog of `timeout` seconds; exit 0 when
    it returns, 1 (with a traceback) when it raises or runs out of time.
    Cleanup in fn's finally/with blocks runs in both cases."""
    def on_alarm(signum, frame):
        raise _Watchdog("test exceeded its %ds budget" % timeout)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(timeout))
    name = os.path.basename(sys.argv[0])
    start = time.monotonic()
    try:
        fn()
    except BaseException:
        signal.alarm(0)
        traceback.print_exc()
        log("FAIL %s after %.1fs", name, time.monotonic() - start)
        sys.exit(1)
    signal.alarm(0)
    log("PASS %s in %.1fs", name, time.monotonic() - start)
    sys.exit(0)


@contextlib.contextmanager
def step(what):
    """Log the start and end of a phase; on failure, name the phase."""
    log("-- %s", what)
    t = time.monotonic()
    try:
        yield
    except Exception as e:
        raise TestError("%s: %s" % (what, e)) from e
    log("   ok (%.1fs)", time.monotonic() - t)


if __name__ == "__main__":
    # For shell tests: `ombra_test.py reserve-ports BLOCKS OWNER_PID` prints
    # the first port of BLOCKS reserved blocks of 10 (held while OWNER runs).
    if len(sys.argv) == 4 and sys.argv[1] == "reserve-ports":
        print(reserve_ports(int(sys.argv[2]), int(sys.argv[3])))
        sys.exit(0)
    sys.stderr.write("usage: ombra_test.py reserve-ports BLOCKS OWNER_PID\n")
    sys.exit(2)
