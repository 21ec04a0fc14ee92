"""test_tls: metad's gRPC server with mutual TLS ([tls] ca, cert, key).

Generates a CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost) and
a client certificate with the openssl command line into a temp dir, plus a
second, unrelated CA and client.  A 3-member cluster runs with [tls].  A
client presenting the CA-signed certificate can read and write; clients
with no certificate, with a certificate from the other CA, or without TLS
at all are refused, and ombractl works with --tls-ca/--tls-cert/--tls-key.

Exit 77 (skip) only when the openssl program is not installed; any other
problem is a failure (exit 1) naming the client that got the wrong answer."""

import os
import shutil
import subprocess
import sys
import tempfile

import grpc

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True,
                       text=True, timeout=60)
    ot.expect(r.returncode == 0, "openssl %s failed: %s", " ".join(args), r.stderr)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=%s" % name, "-keyout", name + ".key", "-out", name + ".pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_cert(d, ca, name, ext):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % name,
            "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "2", "-out", name + ".pem", "-extfile", name + ".ext",
            cwd=d)


def main():
    if shutil.which("openssl") is None:
        ot.log("SKIP: the openssl program is not installed (apt-get install openssl)")
        sys.exit(77)
    m = ot.pb()
    d = tempfile.mkdtemp(prefix="ombra-tls-")
    try:
        with ot.step("generate CAs and certificates"):
            make_ca(d, "ca")
            make_ca(d, "otherca")
            make_cert(d, "ca", "server",
                      "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                      "extendedKeyUsage=serverAuth,clientAuth\n")
            make_cert(d, "ca", "client", "extendedKeyUsage=clientAuth\n")
            make_cert(d, "otherca", "rogue", "extendedKeyUsage=clientAuth\n")
        p = lambda n: os.path.join(d, n)  # noqa: E731
        good = ot.Tls.from_files(p("ca.pem"), p("client.pem"), p("client.key"))
        server_tls = {"ca": p("ca.pem"), "cert": p("server.pem"), "key": p("server.key")}
        with ot.Cluster(3, name="tls", server_tls=server_tls, client_tls=good) as c:
            c.start()
            with ot.step("a client with the CA-signed certificate works"):
                leader = c.wait_leader(timeout=30)
                cl = c.client()
                cl.call("AddRegion", m.admin.AddRegionRequest(name="r1",
                                                            request_id=ot.request_id()))
                v = cl.call("CreateVolume", m.volume.CreateVolumeRequest(
                    name="secure", size_bytes=1 << 30, home_region="r1",
                    request_id=ot.request_id()))
                ot.expect(v.volume.name == "secure", "CreateVolume answered %r", v.volume.name)

            req = m.admin.GetClusterStatusRequest()
            bad_clients = {
                "no client certificate": ot.Tls.from_files(p("ca.pem")),
                "certificate from another CA": ot.Tls.from_files(
                    p("ca.pem"), p("rogue.pem"), p("rogue.key")),
            }
            for what, tls in bad_clients.items():
                with ot.step("a client with %s is refused" % what):
                    bad = ot.AdminClient([leader.grpc], tls=tls)
                    try:
                        code, msg = ot.status_code(bad.direct, leader.grpc,
                                                   "GetClusterStatus", req, timeout=5.0)
                    finally:
                        bad.close()
                    ot.expect(code != grpc.StatusCode.OK, "%s: call succeeded", what)
                    ot.log("%s: %s %s", what, code.name, msg)
            with ot.step("a plaintext client is refused"):
                plain = ot.AdminClient([leader.grpc])
                try:
                    code, msg = ot.status_code(plain.direct, leader.grpc,
                                               "GetClusterStatus", req, timeout=5.0)
                finally:
                    plain.close()
                ot.expect(code != grpc.StatusCode.OK, "plaintext call succeeded")

            with ot.step("ombractl with --tls-* flags"):
                ctl = ot.find_binary("ombractl", "cli")
                base = [ctl, "--endpoints", ",".join(c.endpoints()), "--json"]
                flags = ["--tls-ca", p("ca.pem"), "--tls-cert", p("client.pem"),
                         "--tls-key", p("client.key")]
                r = subprocess.run(base + flags + ["volume", "get", "secure"],
                                   capture_output=True, text=True, timeout=60)
                ot.expect(r.returncode == 0 and '"secure"' in r.stdout,
                          "ombractl with TLS: exit %d, out %r, err %r",
                          r.returncode, r.stdout, r.stderr)
                r = subprocess.run(base + ["--timeout-ms", "2000", "volume", "get", "secure"],
                                   capture_output=True, text=True, timeout=60)
                ot.expect(r.returncode == 1, "ombractl without TLS: exit %d (want 1), err %r",
                          r.returncode, r.stderr)

            with ot.step("clean shutdown"):
                c.check_alive()
                c.stop_all_checked()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    ot.run_test(main, timeout=300)
