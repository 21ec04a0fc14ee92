#!/usr/bin/env python3
"""test_compose: the structure of deploy/docker-compose.yml, which cannot be
run here (no Docker on the build machines; docs/testbed.md).

It checks that the file is valid YAML with the testbed's topology: 3
regions, each with a NET_ADMIN "net" sidecar on its own static address of
the wan network and metad, stored1, stored2 and proxy in the sidecar's
network namespace, told that address; metad member ids 1..3 mapping to
the sidecars' addresses; each sidecar's OMBRA_DELAYS naming every other
region, with the same delay on both sides of a pair and the testbed's
default matrix (r1-r2 25, r1-r3 40, r2-r3 30 ms); unique published ports;
only roles deploy/docker/entrypoint.sh knows; stored data on volumes; the
Dockerfile and scripts present, executable and accepted by `bash -n`.

Skips (77) when Python's yaml module is missing (Debian: python3-yaml,
deploy/install-deps installs it).
"""

import os
import subprocess
import sys
import unittest

try:
    import yaml
except ImportError:
    print("SKIP: Python module yaml missing (apt-get install -y python3-yaml)")
    sys.exit(77)

SRCDIR = os.environ.get("OMBRA_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(SRCDIR, "deploy")
REGIONS = ["r1", "r2", "r3"]
DELAYS = {("r1", "r2"): 25, ("r1", "r3"): 40, ("r2", "r3"): 30}
ROLES = {"metad": ["metad"], "stored1": ["stored", "1"], "stored2": ["stored", "2"],
         "proxy": ["proxy"]}


class Compose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(DEPLOY, "docker-compose.yml")) as f:
            cls.doc = yaml.safe_load(f)
        cls.svc = cls.doc["services"]

    def addr(self, region):
        return self.svc[region + "-net"]["networks"]["wan"]["ipv4_address"]

    def test_services(self):
        want = {"init"} | {"%s-%s" % (r, p) for r in REGIONS
                           for p in ["net"] + list(ROLES)}
        self.assertEqual(set(self.svc), want)

    def test_sidecars(self):
        addrs = [self.addr(r) for r in REGIONS]
        self.assertEqual(len(set(addrs)), 3)
        subnet = self.doc["networks"]["wan"]["ipam"]["config"][0]["subnet"]
        prefix = subnet.split("/")[0].rsplit(".", 1)[0] + "."
        for r in REGIONS:
            net = self.svc[r + "-net"]
            self.assertIn("NET_ADMIN", net["cap_add"], r)
            self.assertEqual(net["command"], ["netem"], r)
            self.assertTrue(self.addr(r).startswith(prefix), (r, subnet))

    def test_daemons_in_their_region(self):
        for i, r in enumerate(REGIONS, 1):
            for p, cmd in ROLES.items():
                s = self.svc["%s-%s" % (r, p)]
                self.assertEqual(s["network_mode"], "service:%s-net" % r, (r, p))
                self.assertEqual(s["command"], cmd, (r, p))
                env = s["environment"]
                self.assertEqual(env["OMBRA_REGION"], r, (r, p))
                self.assertEqual(env["OMBRA_REGION_ID"], str(i), (r, p))
                self.assertEqual(env["OMBRA_ADDR"], self.addr(r), (r, p))
                if p != "proxy":
                    self.assertEqual(s["volumes"], ["%s-%s:/data" % (r, p)], (r, p))
                    self.assertIn("%s-%s" % (r, p), self.doc["volumes"])

    def test_metad_members(self):
        want = ",".join("%d=%s" % (i, self.addr(r)) for i, r in enumerate(REGIONS, 1))
        for name, s in self.svc.items():
            if not name.endswith("-net"):
                self.assertEqual(s["environment"]["OMBRA_METAD"], want, name)
        self.assertEqual(self.svc["init"]["command"], ["init"])
        self.assertEqual(self.svc["init"]["environment"]["OMBRA_REGIONS"], ",".join(REGIONS))

    def test_delay_matrix(self):
        by_addr = {self.addr(r): r for r in REGIONS}
        got = {}
        for r in REGIONS:
            items = self.svc[r + "-net"]["environment"]["OMBRA_DELAYS"].split(",")
            seen = set()
            for item in items:
                ip, ms = item.split("=")
                other = by_addr[ip]
                self.assertNotEqual(other, r)
                seen.add(other)
                got[(r, other)] = float(ms)
            self.assertEqual(seen, set(REGIONS) - {r}, r)
        for (a, b), ms in DELAYS.items():
            self.assertEqual(got[(a, b)], ms, (a, b))
            self.assertEqual(got[(b, a)], ms, (b, a))

    def test_published_ports(self):
        host = []
        for r in REGIONS:
            ports = self.svc[r + "-net"]["ports"]
            self.assertEqual(sorted(p.split(":")[1] for p in ports), ["7107", "7108"], r)
            host += [p.split(":")[0] for p in ports]
        self.assertEqual(len(host), len(set(host)))

    def test_files(self):
        for s in self.svc.values():
            self.assertEqual(s["build"]["context"], "..")
            self.assertTrue(os.path.isfile(os.path.join(SRCDIR, s["build"]["dockerfile"])))
        for f in ("entrypoint.sh", "netem.sh"):
            path = os.path.join(DEPLOY, "docker", f)
            self.assertTrue(os.access(path, os.X_OK), path)
            r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(DEPLOY, "docker", "Dockerfile")) as f:
            self.assertIn("deploy/docker/entrypoint.sh", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
