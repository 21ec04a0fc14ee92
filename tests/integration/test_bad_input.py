"""test_bad_input: metad answers bad requests with the right gRPC status and
a message that says what was wrong, and keeps serving afterwards.

Against a real 3-member cluster: malformed protobuf bytes (raw unary call
with identity serializers) -> INVALID_ARGUMENT; unknown method or service
-> UNIMPLEMENTED; unknown volume -> NOT_FOUND; CreateVolume with size 0,
an unaligned size, bad segment sizes, replicas 9 or a bad name ->
INVALID_ARGUMENT; a duplicate name -> ALREADY_EXISTS; an unknown region ->
NOT_FOUND; shrinking -> FAILED_PRECONDITION; a write sent to a follower ->
UNAVAILABLE with the leader's address in "ombra-leader".  Afterwards every
member still answers GetClusterStatus and no process died.  Finally bad
configuration files and flags make ombra-metad exit 2 with a message that
names the file, line and key.

Fails (exit 1) naming the request, the expected and the received status."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402

GIB = 1 << 30


def expect_error(what, code, pattern, fn, *args, **kw):
    """fn must raise an RpcError with `code` and details matching the
    regular expression `pattern` (case-insensitive)."""
    got, msg = ot.status_code(fn, *args, **kw)
    ot.expect(got == code, "%s: expected %s, got %s (%r)", what, code.name, got.name, msg)
    ot.expect(msg and msg.strip(), "%s: %s with an empty message", what, code.name)
    ot.expect(re.search(pattern, msg, re.I),
              "%s: message %r does not mention /%s/", what, msg, pattern)
    ot.log("%-38s %s: %s", what, code.name, msg)


def raw_call(endpoint, path, payload, timeout=5.0):
    """Unary call with raw bytes in and out (no serializers)."""
    ch = grpc.insecure_channel(endpoint)
    try:
        return ch.unary_unary(path, request_serializer=None,
                              response_deserializer=None)(payload, timeout=timeout)
    finally:
        ch.close()


def main():
    m = ot.pb()
    with ot.Cluster(3, name="badinput") as c:
        c.start()
        leader = c.wait_leader(timeout=30)
        cl = c.client()
        cl.call("AddRegion", m.admin.AddRegionRequest(name="r1", request_id=ot.request_id()))
        base = m.volume.CreateVolumeRequest(name="good", size_bytes=4 * GIB,
                                            home_region="r1", request_id=ot.request_id())
        cl.call("CreateVolume", base)

        def create(**kw):
            fields = dict(name="bad", size_bytes=GIB, home_region="r1")
            fields.update(kw)
            req = m.volume.CreateVolumeRequest(request_id=ot.request_id(), **fields)
            return cl.call("CreateVolume", req, timeout=10.0)

        with ot.step("malformed bytes and unknown methods"):
            svc = "/" + ot.SERVICE + "/"
            # Field 1 (name), length-delimited, claims 2^35 bytes: truncated.
            bad1 = b"\x0a\x80\x80\x80\x80\x80\x01abc"
            # A varint that never ends.
            bad2 = b"\x10" + b"\xff" * 11
            # Wire type 7 does not exist.
            bad3 = b"\x0f\x01"
            for i, payload in enumerate((bad1, bad2, bad3), 1):
                for method in ("CreateVolume", "GetVolume", "GetClusterStatus"):
                    expect_error("malformed #%d to %s" % (i, method),
                                 grpc.StatusCode.INVALID_ARGUMENT,
                                 r"pars|decod|malformed|invalid",
                                 raw_call, leader.grpc, svc + method, payload)
            expect_error("unknown method", grpc.StatusCode.UNIMPLEMENTED,
                         r"NoSuchMethod|unknown|not implemented|unimplemented",
                         raw_call, leader.grpc, svc + "NoSuchMethod", b"")
            expect_error("unknown service", grpc.StatusCode.UNIMPLEMENTED,
                         r"Nope|unknown|not implemented|unimplemented",
                         raw_call, leader.grpc, "/ombra.v1.Nope/GetVolume", b"")

        with ot.step("lookups of things that do not exist"):
            expect_error("GetVolume unknown", grpc.StatusCode.NOT_FOUND, r"no-such-vol",
                         cl.call, "GetVolume", m.volume.GetVolumeRequest(name="no-such-vol"))
            expect_error("GetVolume unknown (stale)", grpc.StatusCode.NOT_FOUND,
                         r"no-such-vol", cl.direct, leader.grpc, "GetVolume",
                         m.volume.GetVolumeRequest(name="no-such-vol", allow_stale=True))
            expect_error("GetShardMap unknown", grpc.StatusCode.NOT_FOUND, r"no-such-vol",
                         cl.call, "GetShardMap",
                         m.volume.GetVolumeShardingInfoRequest(volume="no-such-vol"))
            expect_error("DeleteVolume unknown", grpc.StatusCode.NOT_FOUND, r"no-such-vol",
                         cl.call, "DeleteVolume", m.volume.DeleteVolumeRequest(
                             name="no-such-vol", request_id=ot.request_id()))
            expect_error("ResizeVolume unknown", grpc.StatusCode.NOT_FOUND, r"no-such-vol",
                         cl.call, "ResizeVolume", m.volume.ResizeVolumeRequest(
                             name="no-such-vol", new_size_bytes=8 * GIB,
                             request_id=ot.request_id()))

        with ot.step("CreateVolume argument checks"):
            inval = grpc.StatusCode.INVALID_ARGUMENT
            expect_error("size 0", inval, r"size", create, size_bytes=0)
            expect_error("unaligned size", inval, r"4096|multiple|align",
                         create, size_bytes=GIB + 512)
            expect_error("segment size not a power of two", inval, r"segment",
                         create, segment_size_bytes=3 << 20)
            expect_error("segment size too small", inval, r"segment",
                         create, segment_size_bytes=4096)
            expect_error("segment size too large", inval, r"segment",
                         create, segment_size_bytes=8 << 20)
            expect_error("replicas 9", inval, r"replica", create, replicas=9)
            expect_error("empty name", inval, r"name", create, name="")
            expect_error("name with a slash", inval, r"name", create, name="a/b")
            expect_error("name of 65 chars", inval, r"name|64|long", create, name="x" * 65)
            expect_error("duplicate name", grpc.StatusCode.ALREADY_EXISTS, r"good",
                         create, name="good")
            expect_error("unknown region", grpc.StatusCode.NOT_FOUND, r"r9",
                         create, name="lost", home_region="r9")
            expect_error("duplicate region", grpc.StatusCode.ALREADY_EXISTS, r"r1",
                         cl.call, "AddRegion",
                         m.admin.AddRegionRequest(name="r1", request_id=ot.request_id()))

        with ot.step("ResizeVolume checks"):
            def resize(size):
                return cl.call("ResizeVolume", m.volume.ResizeVolumeRequest(
                    name="good", new_size_bytes=size, request_id=ot.request_id()))
            expect_error("shrink", grpc.StatusCode.FAILED_PRECONDITION,
                         r"shrink|smaller|grow|less", resize, 2 * GIB)
            expect_error("unaligned resize", grpc.StatusCode.INVALID_ARGUMENT,
                         r"4096|multiple|align", resize, 4 * GIB + 100)
            v = resize(8 * GIB)
            ot.expect(v.volume.size_bytes == 8 * GIB, "resize answered %d", v.volume.size_bytes)

        with ot.step("a write sent to a follower names the leader"):
            leader = c.wait_leader()
            follower = next(mm for mm in c.members.values() if mm.id != leader.id)
            try:
                cl.direct(follower.grpc, "CreateVolume", m.volume.CreateVolumeRequest(
                    name="via-follower", size_bytes=GIB, home_region="r1",
                    request_id=ot.request_id()))
                raise ot.TestError("follower metad-%d accepted a write" % follower.id)
            except grpc.RpcError as e:
                ot.expect(e.code() == grpc.StatusCode.UNAVAILABLE,
                          "follower answered %s: %s", e.code().name, e.details())
                hint = ot.leader_hint(e)
                ot.expect(hint == leader.grpc, "follower's ombra-leader is %r, leader is %s",
                          hint, leader.grpc)
                ot.expect(e.details(), "follower's UNAVAILABLE has no message")

        with ot.step("every member still serves"):
            c.check_alive()
            for mm in c.members.values():
                st = mm.status()
                ot.expect(st.member_id == mm.id, "metad-%d says it is %d", mm.id, st.member_id)
            c.wait_converged(timeout=30)
            got = cl.call("GetVolume", m.volume.GetVolumeRequest(name="good"))
            ot.expect(got.volume.size_bytes == 8 * GIB, "good is %d bytes",
                      got.volume.size_bytes)
            lst = cl.call("ListVolumes", m.volume.ListVolumesRequest())
            ot.expect([v.name for v in lst.volumes] == ["good"],
                      "rejected creates left volumes behind: %s",
                      [v.name for v in lst.volumes])

        with ot.step("clean shutdown"):
            c.stop_all_checked()

    with ot.step("bad configuration and flags: exit 2 with file:line and key"):
        check_bad_config()


def check_bad_config():
    """ombra-metad refuses bad configuration files and flags with exit
    status 2 and a message naming the file, line and key."""
    metad = ot.find_binary("ombra-metad", "metad")
    d = tempfile.mkdtemp(prefix="ombra-badconf-")
    try:
        conf = os.path.join(d, "metad.conf")
        cases = [
            ("[metad]\nid = 1\nfrobnicate = 3\n", [], r"metad\.conf:3.*frobnicate"),
            ("[metad]\nid = 1\nelection_timeout_ms = abc\n", [],
             r"metad\.conf:3.*election_timeout_ms"),
            ("[metad]\nid = 1\n[nosuchsection]\nx = 1\n", [], r"metad\.conf:\d+.*nosuchsection"),
            ("[metad]\nid = 1\n[tls]\nca = %s\n" % conf, [], r"tls"),
            ("[metad]\nid = 1\n", ["--bogus-flag"], r"bogus-flag"),
            (None, ["--config", os.path.join(d, "missing.conf")], r"missing\.conf"),
        ]
        for text, extra, pattern in cases:
            args = [metad] + extra
            if text is not None:
                with open(conf, "w") as f:
                    f.write(text)
                args = [metad, "--config", conf] + extra
            r = subprocess.run(args, capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL, cwd=d)
            what = "%r %s" % (text, " ".join(extra))
            ot.expect(r.returncode == 2, "%s: exit %d, expected 2; stderr %r",
                      what, r.returncode, r.stderr)
            ot.expect(re.search(pattern, r.stderr), "%s: stderr %r does not match /%s/",
                      what, r.stderr, pattern)
            ot.log("refused: %s", r.stderr.strip().splitlines()[-1])
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    ot.run_test(main, timeout=300)
