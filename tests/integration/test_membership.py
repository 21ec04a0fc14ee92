"""test_membership: changing the metad Raft group with ombractl.

Three members.  `ombractl cluster member add 4 --raft --grpc` adds a voter
that catches up (same applied index and state hash) and is listed as a
voter; `--spare` adds member 5 as a spare; adding an existing id and
removing an unknown id fail with exit 1; removing a follower takes it out
of the configuration while writes go on; removing the leader either
transfers leadership first or is refused with FAILED_PRECONDITION (the
daemon's documented choice), and in both cases the group keeps a leader and
serves.  Every process, removed ones included, must shut down cleanly.

Fails (exit 1) naming the ombractl command, its output and the statuses."""

import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import ombra_test as ot  # noqa: E402


class Ctl:
    """ombractl against a fixed endpoint list."""

    def __init__(self, endpoints):
        self.bin = ot.find_binary("ombractl", "cli")
        self.endpoints = endpoints

    def run(self, *args, want=0):
        cmd = [self.bin, "--endpoints", ",".join(self.endpoints), "--timeout-ms", "20000"]
        cmd += list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        ot.expect(r.returncode == want, "`%s` exited %d, expected %d; stdout %r stderr %r",
                  " ".join(cmd[1:]), r.returncode, want, r.stdout, r.stderr)
        return r


def roles(cluster, leader):
    st = leader.status()
    return {m.id: m.role for m in st.members}


def create(cl, name):
    m = ot.pb()
    cl.call("CreateVolume", m.volume.CreateVolumeRequest(
        name=name, size_bytes=1 << 30, home_region="r1", request_id=ot.request_id()))


def main():
    m = ot.pb()
    with ot.Cluster(3, name="membership") as c:
        c.start()
        leader = c.wait_leader(timeout=30)
        cl = c.client()
        cl.call("AddRegion", m.admin.AddRegionRequest(name="r1", request_id=ot.request_id()))
        for i in range(3):
            create(cl, "before-%d" % i)
        ctl = Ctl(c.endpoints())

        with ot.step("add metad-4 as a voter with ombractl"):
            m4 = c.add_member()
            m4.start()
            r = ctl.run("--json", "cluster", "member", "add", "4", "--raft", m4.raft,
                        "--grpc", m4.grpc)
            out = json.loads(r.stdout)
            ot.expect(out["member"]["id"] == 4, "member add answered %s", out)
            voters = [mm for mm in c.members.values()]
            c.wait_converged(members=voters, timeout=60)
            leader = c.wait_leader()
            ot.wait_until(lambda: roles(c, leader).get(4) == "voter", 30,
                          "metad-4 to be a voter")
            st = m4.status()
            ot.expect(st.volume_count == 3, "metad-4 has %d volumes, expected 3",
                      st.volume_count)

        with ot.step("add metad-5 as a spare"):
            m5 = c.add_member()
            m5.start()
            ctl.run("cluster", "member", "add", "5", "--raft", m5.raft, "--grpc", m5.grpc,
                    "--spare")
            leader = c.wait_leader()
            ot.wait_until(lambda: roles(c, leader).get(5) == "spare", 30,
                          "metad-5 to be listed as a spare")

        with ot.step("adding a member again is idempotent (a retried add)"):
            r = ctl.run("--json", "cluster", "member", "add", "4", "--raft", m4.raft,
                        "--grpc", m4.grpc)
            out = json.loads(r.stdout)
            ot.expect(out["member"]["role"] == "voter", "re-add of 4 answered %s", out)
            ctl.run("cluster", "member", "add", "5", "--raft", m5.raft, "--grpc", m5.grpc,
                    "--spare")
            leader = c.wait_leader()
            ot.expect(roles(c, leader).get(4) == "voter" and
                      roles(c, leader).get(5) == "spare",
                      "roles changed by idempotent re-adds: %s", roles(c, leader))

        with ot.step("bad membership changes are refused"):
            r = ctl.run("cluster", "member", "add", "4", "--raft", "127.0.0.1:1",
                        "--grpc", m4.grpc, want=1)
            ot.expect("ALREADY_EXISTS" in r.stderr and "4" in r.stderr,
                      "add with another address: message %r", r.stderr)
            r = ctl.run("cluster", "member", "add", "4", "--raft", m4.raft, "--grpc", m4.grpc,
                        "--spare", want=1)
            ot.expect("FAILED_PRECONDITION" in r.stderr,
                      "demoting a voter by re-adding it as a spare: message %r", r.stderr)
            r = ctl.run("cluster", "member", "remove", "42", want=1)
            ot.expect("42" in r.stderr, "remove unknown: message %r does not name the id",
                      r.stderr)
            ctl.run("cluster", "member", "add", "6", want=2)

        with ot.step("remove a follower; writes go on"):
            leader = c.wait_leader()
            victim = next(mm for mm in c.members.values() if mm.id not in (leader.id, 4, 5))
            rest = [mm for mm in c.members.values() if mm.id not in (victim.id, 5)]
            ctl.run("cluster", "member", "remove", str(victim.id))
            ot.wait_until(lambda: victim.id not in roles(c, c.wait_leader(members=rest)), 30,
                          "metad-%d to leave the configuration" % victim.id)
            for i in range(3):
                create(cl, "after-remove-%d" % i)
            c.wait_converged(members=rest, timeout=60)

        with ot.step("remove the leader: transfer first or FAILED_PRECONDITION"):
            leader = c.wait_leader(members=rest)
            r = subprocess.run([ctl.bin, "--endpoints", ",".join(mm.grpc for mm in rest),
                                "--timeout-ms", "20000", "cluster", "member", "remove",
                                str(leader.id)], capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            if r.returncode == 0:
                ot.log("leader metad-%d removed (leadership transferred)", leader.id)
                rest = [mm for mm in rest if mm.id != leader.id]
                new = ot.wait_until(
                    lambda: (lambda ld: ld if leader.id not in roles(c, ld) else None)(
                        c.wait_leader(members=rest)),
                    30, "a new leader without metad-%d" % leader.id)
                ot.log("new leader metad-%d", new.id)
            else:
                ot.expect(r.returncode == 1 and "FAILED_PRECONDITION" in r.stderr,
                          "removing the leader: exit %d, stderr %r (want exit 0, or 1 with "
                          "FAILED_PRECONDITION)", r.returncode, r.stderr)
                ot.log("refused: %s", r.stderr.strip())
            cl2 = c.client(members=rest)
            create(cl2, "after-leader-remove")
            c.wait_converged(members=rest, timeout=60)

        with ot.step("clean shutdown of every process, removed ones included"):
            c.stop_all_checked()


if __name__ == "__main__":
    ot.run_test(main, timeout=300)
