"""testbed: helpers for the integration tests that run in the netns testbed.

What it is for: the issue-5 tests (tests/integration/test_wan_*.py) bring
up deploy/testbed/ombra-testbed (3 regions in network namespaces with
real one-way delays, docs/testbed.md) in a temporary directory, run
programs inside a region's namespace (`ombra-testbed exec REGION`), and
talk to metad, the proxies and the storage nodes from the undelayed
observer namespace NAME-wan, which the test process itself enters
(enter_wan) before it opens any gRPC channel.  bench/regions/run uses the
same helpers (testbed_unavailable, locate_trace, trace_read_segments,
Testbed.shadow_state, Testbed.wan_bytes for cross-region byte counts).

How it fails: skip_unless_testbed() exits 77 naming what is missing (root,
ip/iptables, network namespaces, NFQUEUE, a build with ombra-netdelay),
as tests/integration/test_testbed.sh does.  Testbed.__exit__ dumps the
tail of every daemon log to stderr when the test body raised, runs
`ombra-testbed down` and removes its directory (OMBRA_TEST_KEEP=1 keeps
it).  Every command has a timeout; a failing one raises TestError with
its output.
"""

import contextlib
import ctypes
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import ombra_test as ot
from ombra_test import TestError, expect, log

CLONE_NEWNET = 0x40000000


def skip(why):
    """Exit 77 (automake's SKIP) naming what is missing."""
    sys.stderr.write("SKIP: %s\n" % why)
    sys.exit(77)


def testbed_script():
    return os.path.join(ot.srcdir(), "deploy", "testbed", "ombra-testbed")


TRACE_NAME = "cloudPhysicsIO.vscsi.zst"
TRACE_PLACES = "$OMBRA_TRACE, $OMBRA_TRACES_DIR, ../shared/traces, /work/shared/traces"


def locate_trace():
    """The CloudPhysics trace's absolute path, looked for as deploy/main-job
    does: $OMBRA_TRACE, $OMBRA_TRACES_DIR, ../shared/traces next to the
    source tree, /work/shared/traces; None when none exists."""
    cands = [os.environ.get("OMBRA_TRACE")]
    for d in (os.environ.get("OMBRA_TRACES_DIR"),
              os.path.join(ot.srcdir(), "..", "shared", "traces"), "/work/shared/traces"):
        if d:
            cands.append(os.path.join(d, TRACE_NAME))
    for c in cands:
        if c and os.path.isfile(c):
            return os.path.abspath(c)
    return None


def find_trace():
    """The CloudPhysics trace (locate_trace()).  Exits 77 when none exists."""
    path = locate_trace()
    if path:
        return path
    skip("the CloudPhysics trace %s is absent (%s)" % (TRACE_NAME, TRACE_PLACES))
    return None


def testbed_unavailable(name):
    """Why this host cannot run a testbed, as one line (root, ip, iptables,
    network namespaces, the NFQUEUE target, ombra-netdelay binding a
    queue), or None when it can.  name: a unique prefix for the probe
    namespace, which is deleted again."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables, NFQUEUE)"
    for t in ("ip", "iptables", "iptables-save"):
        if not shutil.which(t):
            return "%s not installed (deploy/install-deps: iproute2 iptables)" % t
    nd = os.path.join(ot.builddir(), "tools", "netdelay", "ombra-netdelay")
    if not os.access(nd, os.X_OK):
        return "%s not built (configure did not find libnetfilter_queue)" % nd
    probe = name + "-probe"

    def run(*argv, timeout=10):
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    r = run("ip", "netns", "add", probe)
    if r.returncode:
        return "network namespaces unavailable: %s" % r.stderr.strip()
    try:
        if shutil.which("modprobe"):
            run("modprobe", "nfnetlink_queue")
        r = run("ip", "netns", "exec", probe, "iptables", "-w", "-A", "OUTPUT", "-d",
                "10.99.0.0/24", "-j", "NFQUEUE", "--queue-num", "7")
        if r.returncode:
            return "iptables NFQUEUE target unavailable: %s" % r.stderr.strip()
        try:
            run("ip", "netns", "exec", probe, nd, "--queue", "7=1", timeout=1)
            return "ombra-netdelay exited at once: cannot bind an NFQUEUE queue"
        except subprocess.TimeoutExpired:
            pass  # it bound the queue and kept running: fine
    finally:
        run("ip", "netns", "del", probe)
    return None


def skip_unless_testbed(name):
    """Exit 77 unless this host can run a testbed (testbed_unavailable()).
    name: a unique prefix for the probe namespace."""
    why = testbed_unavailable(name)
    if why:
        skip(why)


def log_counters(before, after):
    """Log each counter of after (Testbed.read_counters) that moved since
    before, with its increase."""
    for key in sorted(after):
        d = after[key] - before.get(key, 0)
        if d:
            log("  %s +%g", key, d)


def trace_read_segments(trace, limit, volume_size, segment_size, skip=0):
    """Indexes of the segments read by the requests that `ombra-replay
    --skip SKIP --limit LIMIT` replays from `trace` (skip and limit count
    the requests that map to at least one block), mapped onto a volume of
    volume_size bytes as ombra-replay maps them (docs/replay.md)."""
    tools = os.path.join(ot.srcdir(), "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    from ombra_replay import mapping, traces
    segs = set()
    n = 0
    with traces.Reader(trace) as r:
        for q in r:
            if limit is not None and n >= skip + limit:
                break
            m = mapping.map_request(q.offset, q.length, volume_size)
            if m is None:
                continue
            n += 1
            if n <= skip or q.op != "R":
                continue
            start, length = m
            segs.update(range(start // segment_size, (start + length - 1) // segment_size + 1))
    return segs


def _setns_net(path):
    """Move the calling thread into the network namespace at path."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise TestError("setns(%s): %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


class Testbed:
    """One testbed in a temporary directory (see the module comment).

    name: the namespace prefix (unique per test run).  After up(): .info
    is `up --json`'s document; proxy(region) gives its endpoints."""

    def __init__(self, name, tmp_prefix="ombra-wan-"):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix=tmp_prefix)
        self.dir = os.path.join(self.tmp, "tb")
        self.info = None
        self.failed = False

    def __enter__(self):
        return self

    def __exit__(self, etype, evalue, tb):
        self.failed = etype is not None
        if self.failed:
            self.dump_logs()
        self.close()
        return False

    # -- commands

    def tb(self, *args, timeout=150, check=True):
        """Run ombra-testbed ARGS; the CompletedProcess (text).  check:
        raise TestError with its output when it exits non-zero."""
        argv = [testbed_script(), "--dir", self.dir, "--bin-dir", ot.builddir()] + list(args)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise TestError("ombra-testbed %s exited %d:\n%s%s"
                            % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def up(self, timeout=200):
        """Bring the testbed up (default 3 regions and delays); returns and
        keeps the `up --json` document."""
        t0 = time.monotonic()
        r = self.tb("up", "--name", self.name, "--json", timeout=timeout)
        self.info = json.loads(r.stdout)
        log("testbed %s up in %.0f s (%s)", self.name, time.monotonic() - t0, self.dir)
        return self.info

    def exec_argv(self, region, argv):
        """The argv running argv in region's namespace (for Popen)."""
        return [testbed_script(), "--dir", self.dir, "exec", region] + list(argv)

    def exec(self, region, argv, timeout=120, check=True):
        """Run argv in region's namespace; the CompletedProcess (text)."""
        r = subprocess.run(self.exec_argv(region, argv), capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise TestError("exec %s %s exited %d:\n%s%s" % (region, " ".join(argv),
                                                            r.returncode, r.stdout[-3000:],
                                                            r.stderr[-3000:]))
        return r

    def enter_wan(self):
        """Move this process's main thread into the observer namespace.
        Call it before any gRPC channel or thread exists: threads created
        later inherit the namespace."""
        _setns_net("/var/run/netns/%s-wan" % self.name)

    # -- endpoints

    @property
    def endpoints(self):
        return self.info["endpoints"]

    def process(self, name):
        """up --json's process record, e.g. name "r2-proxy"."""
        for p in self.info["processes"]:
            if p["name"] == name:
                return p
        raise TestError("no process %s in the testbed (%s)"
                        % (name, [p["name"] for p in self.info["processes"]]))

    def proxy(self, region):
        return self.process("%s-proxy" % region)

    # -- clients (from the observer namespace: call enter_wan() first)

    def admin(self):
        """Leader-following AdminService client on every region's metad."""
        if getattr(self, "_admin", None) is None:
            self._admin = ot.AdminClient(self.endpoints.split(","))
        return self._admin

    def channel(self, addr):
        """A cached insecure channel to addr (64 MiB messages)."""
        import grpc
        import ombra_cluster as oc
        chans = self.__dict__.setdefault("_chans", {})
        if addr not in chans:
            chans[addr] = grpc.insecure_channel(addr, options=oc.GRPC_OPTS)
        return chans[addr]

    def volume_stub(self, region):
        """VolumeService stub on region's proxy."""
        import ombra_cluster as oc
        return oc.stubs().volume_grpc.VolumeServiceStub(self.channel(self.proxy(region)["grpc"]))

    def metrics(self, proc):
        """/metrics text of process proc (e.g. "r3-proxy")."""
        code, body = ot.http_get(self.process(proc)["http"], "/metrics")
        expect(code == 200, "GET http://%s/metrics answered %s", self.process(proc)["http"], code)
        return body

    def read_parts(self, region):
        """{where: count} of ombra_proxy_read_parts_total of region's proxy
        ("local": served by a copy in its region, "remote": elsewhere)."""
        import ombra_cluster as oc
        text = self.metrics("%s-proxy" % region)
        return {w: oc.parse_metric(text, "ombra_proxy_read_parts_total", {"where": w}) or 0
                for w in ("local", "remote")}

    def read_counters(self, region):
        """{"metric{labels}": value} of the read-path counters of region's
        proxy (parts served, retries, foreign refusals, remote plans,
        propagation waits, busy polling, read duration), to log what
        happened to the reads of a phase with log_counters()."""
        out = {}
        for line in self.metrics("%s-proxy" % region).splitlines():
            if line.startswith(("ombra_proxy_read_parts_total", "ombra_proxy_retries_total",
                                "ombra_proxy_read_foreign_refused_total",
                                "ombra_proxy_read_remote_plans_total",
                                "ombra_proxy_read_propagation_waits_total",
                                "ombra_proxy_read_poll_seconds_total",
                                "ombra_proxy_read_duration_seconds_sum",
                                "ombra_proxy_read_duration_seconds_count")):
                key, _, val = line.rpartition(" ")
                out[key] = float(val)
        return out

    def metad_leader(self):
        """Member id of the metad Raft leader (`ombractl cluster status`),
        None while there is none or no metad answers."""
        r = self.ctl("cluster", "status", check=False)
        for line in r.stdout.splitlines():
            if line.startswith("leader:") and "member" in line:
                return int(line.split("member", 1)[1].split()[0])
        return None

    def shard_map(self, volume):
        """(Volume, [SegmentPlacement], {node id: Node}) from GetShardMap."""
        import ombra_cluster as oc
        return oc.LocalCluster.shard_map(self, volume)

    def ctl(self, *args, timeout=60, check=True):
        """ombractl ARGS against the metads, run from the observer
        namespace; the CompletedProcess."""
        return self.exec("wan", [ot.find_binary("ombractl", "cli"), "--endpoints",
                                 self.endpoints] + list(args), timeout=timeout, check=check)

    def shadow_state(self, volume, region, segs):
        """(missing, filling, lagging): the segments of segs (indexes) with
        no shadow in region, with one still being filled (or in error), and
        with a filled one that is behind the primary (lag_versions), from
        `ombractl volume shards --json`."""
        r = self.ctl("volume", "shards", volume, "--max", "65536", "--json", timeout=120)
        doc = json.loads(r.stdout)
        missing, filling, lagging = set(segs), set(), set()
        for s in doc.get("segments", []):
            idx = int(s.get("index", 0))
            if idx not in segs:
                continue
            infos = s.get("shadow_info") or [{}] * len(s.get("shadows", []))
            for sh, info in zip(s.get("shadows", []), infos):
                if sh.get("region") != region:
                    continue
                missing.discard(idx)
                if "error" in info or info.get("filling"):
                    filling.add(idx)
                elif int(info.get("lag_versions", 0)):
                    lagging.add(idx)
        return missing, filling, lagging

    def wan_bytes(self):
        """Bytes that crossed between regions so far: {(src, dst): bytes}.

        Read from the byte counters of the NFQUEUE rules of the OMBRA_WAN
        chain in each region's namespace (`iptables -L OMBRA_WAN -v -x -n`):
        the rule for src's subnet in dst's namespace counts every IP packet
        that arrived in dst from src (headers included; GRO may have merged
        segments), before ombra-netdelay holds it.  Each packet is counted
        once, at its receiver.  Traffic to and from the observer (wan) is
        not counted, and a pair whose delay is 0 has no rule, so it is
        absent.  Take differences of two calls."""
        regions = self.info["testbed"]["regions"]
        by_subnet = {r["subnet"]: r["name"] for r in regions}
        out = {}
        for r in regions:
            argv = ["ip", "netns", "exec", r["netns"], "iptables", "-w", "-L", "OMBRA_WAN",
                    "-v", "-x", "-n"]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            if p.returncode:
                raise TestError("%s exited %d: %s" % (" ".join(argv), p.returncode,
                                                      p.stderr.strip()))
            for line in p.stdout.splitlines():
                f = line.split()
                if len(f) < 3 or not f[0].isdigit() or "NFQUEUE" not in f:
                    continue
                src = next((by_subnet[x] for x in f if x in by_subnet), None)
                if src is not None:
                    out[(src, r["name"])] = out.get((src, r["name"]), 0) + int(f[1])
        return out

    # -- logs and teardown

    def logs(self):
        return sorted(glob.glob(os.path.join(self.dir, "*", "*.log")))

    def dump_logs(self, lines=40):
        for path in self.logs():
            try:
                with open(path, errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError:
                continue
            sys.stderr.write("---- %s (last %d lines)\n%s" % (path, len(tail), "".join(tail)))

    def check_sanitizers(self):
        """Raise TestError naming every daemon log holding a sanitizer report."""
        bad = []
        for path in self.logs():
            with open(path, errors="replace") as f:
                text = f.read()
            if ("ERROR: AddressSanitizer" in text or "ERROR: LeakSanitizer" in text
                    or "runtime error:" in text):
                bad.append(path)
        expect(not bad, "sanitizer reports in %s", " ".join(bad))

    def close(self):
        for ch in self.__dict__.get("_chans", {}).values():
            ch.close()
        if getattr(self, "_admin", None) is not None:
            self._admin.close()
        if os.path.exists(os.path.join(self.dir, "testbed.json")):
            with contextlib.suppress(Exception):
                self.tb("down", timeout=90, check=False)
        if os.environ.get("OMBRA_TEST_KEEP"):
            log("kept %s", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
