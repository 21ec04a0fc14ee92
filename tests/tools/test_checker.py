#!/usr/bin/env python3
"""test_checker: the consistency checker (tests/checker) on known-good and
known-bad histories.

It checks that linearizable histories pass (sequential, concurrent writes
seen in either order, writes without answer seen or never seen, several
blocks, 400-operation random histories of an atomic register with 6
clients, with and without lost answers, and 3000 operations of 32
clients within a step bound) and that each kind of violation is caught and names the
offending operations: a stale STRONG read, reads that disagree on the
order of two writes, a write order against the versions, a BOUNDED read
older than its staleness bound or its min-version token, a phantom value,
a value read before its write began, a client seeing a version go
backwards, and a mutated random history.  Also: EVENTUAL reads are exempt
from staleness and monotonicity, the search budget answers undecided,
malformed histories are refused with the operation named, and the
command line's exit codes and JSON output.  The Recorder, driven by
threads against an in-memory register, yields a history that passes,
and one that fails when the register sometimes answers a stale value;
unknown outcomes and save/load round-trip.
"""

import contextlib
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
import unittest

SRCDIR = os.environ.get("OMBRA_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRCDIR, "tests"))

from checker import HistoryError, Recorder, check, load, parse  # noqa: E402
from checker import report as check_mod  # noqa: E402
from checker import linearize  # noqa: E402


def w(i, client, block, value, version, t0, t1, **kw):
    d = {"id": i, "client": client, "kind": "write", "block": block, "value": value,
         "version": version, "invoke_ms": t0, "return_ms": t1}
    d.update(kw)
    return d


def r(i, client, block, value, t0, t1, **kw):
    d = {"id": i, "client": client, "kind": "read", "block": block, "value": value,
         "invoke_ms": t0, "return_ms": t1}
    d.update(kw)
    return d


def run(ops, initial=None, **kw):
    return check(*parse({"initial": initial, "ops": ops}), **kw)


def rules(rep):
    return sorted(v.rule for v in rep.violations)


def random_history(seed, n_ops=400, clients=6, blocks=2, lost=0.0):
    """A linearizable history of an atomic register per block: each op takes
    effect at a random instant inside [invoke, return]; clients are
    sequential.  Versions increase in effect order.  A fraction lost of
    the writes took effect but got no answer (no version, no return)."""
    rnd = random.Random(seed)
    free = {c: 0.0 for c in range(clients)}
    plan = []
    for i in range(n_ops):
        c = rnd.randrange(clients)
        t0 = free[c] + rnd.uniform(0, 5)
        t1 = t0 + rnd.uniform(0.5, 20)
        free[c] = t1
        plan.append((rnd.uniform(t0, t1), i, c, t0, t1, rnd.randrange(blocks),
                     rnd.random() < 0.4))
    plan.sort()
    state = {b: (None, 0) for b in range(blocks)}
    ops = []
    for _, i, c, t0, t1, b, is_write in plan:
        if is_write:
            ver = state[b][1] + 1
            state[b] = ("v%d" % i, ver)
            if rnd.random() < lost:
                ops.append(w(i, "c%d" % c, b, "v%d" % i, None, t0, None, ok=False))
            else:
                ops.append(w(i, "c%d" % c, b, "v%d" % i, ver, t0, t1))
        else:
            ops.append(r(i, "c%d" % c, b, state[b][0], t0, t1))
    ops.sort(key=lambda d: d["invoke_ms"])
    return ops


class Good(unittest.TestCase):
    def test_sequential(self):
        rep = run([w(1, "a", 0, "x", 1, 0, 10), r(2, "b", 0, "x", 11, 12),
                   w(3, "a", 0, "y", 2, 13, 20), r(4, "b", 0, "y", 21, 22),
                   r(5, "c", 1, None, 0, 5)])
        self.assertTrue(rep.ok, str(rep))
        self.assertEqual(rep.counts["strong_reads"], 3)

    def test_concurrent_writes_either_order(self):
        # w1 and w2 overlap; readers may see them in either order as long
        # as they agree.  Versions unknown to the reads.
        for first, second in (("x", "y"), ("y", "x")):
            vers = {"x": 1, "y": 2} if first == "x" else {"x": 2, "y": 1}
            rep = run([w(1, "a", 0, "x", vers["x"], 0, 100),
                       w(2, "b", 0, "y", vers["y"], 0, 100),
                       r(3, "c", 0, first, 10, 20), r(4, "d", 0, second, 30, 40),
                       r(5, "c", 0, second, 50, 60), r(6, "d", 0, second, 110, 120)])
            self.assertTrue(rep.ok, str(rep))

    def test_read_concurrent_with_write_sees_old_or_new(self):
        for v in (None, "x"):
            rep = run([w(1, "a", 0, "x", 1, 10, 50), r(2, "b", 0, v, 20, 30)])
            self.assertTrue(rep.ok, str(rep))

    def test_write_without_answer(self):
        # seen later: it happened; never seen: it may not have happened.
        rep = run([w(1, "a", 0, "x", None, 0, None, ok=False), r(2, "b", 0, "x", 50, 60),
                   w(3, "a", 1, "z", None, 0, None, ok=False), r(4, "b", 1, None, 50, 60),
                   r(5, "b", 1, "z", 70, 80)])
        self.assertTrue(rep.ok, str(rep))

    def test_failed_read_ignored(self):
        rep = run([w(1, "a", 0, "x", 1, 0, 10), r(2, "b", 0, "garbage", 20, 30, ok=False)])
        self.assertTrue(rep.ok, str(rep))
        self.assertEqual(rep.counts["reads"], 0)

    def test_bounded_within_bound(self):
        # x acknowledged at 10, y at 30; a read at 40 with 15 ms staleness
        # must see y or newer... with 50 ms it may still return x.
        ops = [w(1, "a", 0, "x", 1, 0, 10), w(2, "a", 0, "y", 2, 20, 30),
               r(3, "b", 0, "x", 40, 45, consistency="BOUNDED", staleness_ms=50),
               r(4, "c", 0, "y", 40, 45, consistency="BOUNDED", staleness_ms=5,
                 min_version=2, version=2)]
        rep = run(ops)
        self.assertTrue(rep.ok, str(rep))

    def test_eventual_exempt(self):
        ops = [w(1, "a", 0, "x", 1, 0, 10), w(2, "a", 0, "y", 2, 20, 30),
               r(3, "b", 0, "y", 40, 45), r(4, "b", 0, "x", 50, 55, consistency="EVENTUAL"),
               r(5, "b", 0, None, 60, 65, consistency="EVENTUAL")]
        rep = run(ops)
        self.assertTrue(rep.ok, str(rep))

    def test_random_atomic_register(self):
        for seed in range(3):
            rep = run(random_history(seed))
            self.assertTrue(rep.ok, "seed %d: %s" % (seed, rep))
            self.assertEqual(rep.counts["ops"], 400)
        # writes without answer that did take effect, seen by later reads
        for seed in range(3):
            rep = run(random_history(seed, lost=0.1))
            self.assertTrue(rep.ok, "seed %d with lost answers: %s" % (seed, rep))

    def test_random_many_clients(self):
        # 32 clients on 2 blocks: ~12 operations in flight per block; the
        # version order and the immediate reads keep the search small
        rep = run(random_history(5, n_ops=3000, clients=32, blocks=2))
        self.assertTrue(rep.ok, str(rep))
        self.assertLess(rep.counts["steps"], 500000)


class Bad(unittest.TestCase):
    def assertCaught(self, rep, rule, op_ids):
        self.assertFalse(rep.ok)
        self.assertIn(rule, rules(rep), str(rep))
        v = [v for v in rep.violations if v.rule == rule][0]
        self.assertEqual([o.id for o in v.ops][:len(op_ids)], op_ids, str(v))
        self.assertIn(rule, str(rep))

    def test_stale_strong_read(self):
        rep = run([w(1, "a", 0, "x", 1, 0, 10), r(2, "b", 0, None, 20, 30)])
        self.assertEqual(rules(rep), ["linearizability"])
        self.assertCaught(rep, "linearizability", [2])
        self.assertIn("ops 1", rep.violations[0].message)

    def test_reads_disagree_on_write_order(self):
        rep = run([w(1, "a", 0, "x", None, 0, 100), w(2, "b", 0, "y", None, 0, 100),
                   r(3, "c", 0, "x", 10, 20), r(4, "d", 0, "y", 30, 40),
                   r(5, "c", 0, "x", 50, 60)])
        self.assertEqual(rules(rep), ["linearizability"])
        self.assertCaught(rep, "linearizability", [5])

    def test_write_order_against_versions(self):
        # real time says 1 then 2, the versions say 2 then 1
        rep = run([w(1, "a", 0, "x", 10, 0, 10), w(2, "a", 0, "y", 5, 20, 30),
                   r(3, "b", 0, "y", 40, 50)])
        self.assertIn("linearizability", rules(rep))

    def test_bounded_too_stale(self):
        ops = [w(1, "a", 0, "x", 1, 0, 10), w(2, "a", 0, "y", 2, 20, 30),
               r(3, "b", 0, "x", 100, 105, consistency="BOUNDED", staleness_ms=50)]
        rep = run(ops)
        self.assertEqual(rules(rep), ["stale"])
        self.assertCaught(rep, "stale", [3, 2, 1])
        self.assertIn("staleness 50 ms", rep.violations[0].message)

    def test_bounded_token(self):
        ops = [w(1, "a", 0, "x", 1, 0, 10), w(2, "a", 0, "y", 2, 20, 30),
               r(3, "b", 0, "x", 31, 35, consistency="BOUNDED", min_version=2)]
        rep = run(ops)
        self.assertEqual(rules(rep), ["token"])
        self.assertCaught(rep, "token", [3, 1])

    def test_phantom_and_future(self):
        rep = run([w(1, "a", 0, "x", 1, 50, 60), r(2, "b", 0, "q", 0, 5,
                                                   consistency="EVENTUAL"),
                   r(3, "b", 0, "x", 10, 20, consistency="EVENTUAL")])
        self.assertEqual(rules(rep), ["future", "phantom"])
        self.assertCaught(rep, "phantom", [2])
        self.assertCaught(rep, "future", [3, 1])

    def test_reported_version_mismatch(self):
        rep = run([w(1, "a", 0, "x", 7, 0, 10), r(2, "b", 0, "x", 20, 30, version=8)])
        self.assertIn("version", rules(rep))

    def test_backwards_for_a_client(self):
        ops = [w(1, "a", 0, "x", 1, 0, 10), w(2, "a", 0, "y", 2, 20, 30),
               r(3, "b", 0, "y", 40, 45, consistency="BOUNDED", staleness_ms=1000),
               r(4, "b", 0, "x", 50, 55, consistency="BOUNDED", staleness_ms=1000)]
        rep = run(ops)
        self.assertEqual(rules(rep), ["backwards"])
        self.assertCaught(rep, "backwards", [4, 3])
        # read-your-writes: a client's own write, then an older read
        rep = run([w(1, "a", 0, "x", 1, 0, 10), w(2, "b", 0, "y", 2, 20, 30),
                   r(3, "b", 0, "x", 40, 45, consistency="BOUNDED", staleness_ms=1000)])
        self.assertEqual(rules(rep), ["backwards"])

    def test_mutated_random_history(self):
        ops = random_history(7)
        # make a read that follows a completed write of another value return
        # the block's initial value
        writes = [o for o in ops if o["kind"] == "write"]
        victim = None
        for o in ops:
            if o["kind"] == "read" and o["value"] is not None and any(
                    x["block"] == o["block"] and x["return_ms"] < o["invoke_ms"]
                    for x in writes):
                victim = o
                break
        self.assertIsNotNone(victim)
        victim["value"] = None
        rep = run(ops)
        self.assertIn("linearizability", rules(rep), str(rep))
        v = [v for v in rep.violations if v.rule == "linearizability"][0]
        self.assertIn(victim["id"], [o.id for o in v.ops], str(v))


class Register:
    """An in-memory block register with versions; stale_every > 0 makes
    every n-th read return the previous value (a broken replica)."""

    def __init__(self, stale_every=0):
        self.lock = threading.Lock()
        self.cur, self.prev, self.version, self.reads = None, None, 0, 0
        self.stale_every = stale_every

    def write(self, value):
        with self.lock:
            time.sleep(0.0005)
            self.prev, self.cur = self.cur, value
            self.version += 1
            return self.version

    def read(self):
        with self.lock:
            self.reads += 1
            if self.stale_every and self.reads % self.stale_every == 0 and self.version:
                return self.prev, None
            return self.cur, self.version


def record(reg, clients=4, per_client=60):
    """Threads writing and reading reg through a Recorder; returns it."""
    rec = Recorder()

    def client(name):
        rnd = random.Random(name)
        for _ in range(per_client):
            if rnd.random() < 0.4:
                op = rec.invoke(name, "write", 0, value=rec.unique_value(name), region="r1")
                rec.ok(op, version=reg.write(op["value"]))
            else:
                op = rec.invoke(name, "read", 0, region="r2")
                value, version = reg.read()
                rec.ok(op, value=value, version=version)

    threads = [threading.Thread(target=client, args=("c%d" % i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return rec


class Recording(unittest.TestCase):
    def test_threads_on_an_atomic_register(self):
        rec = record(Register())
        rep = rec.check()
        self.assertTrue(rep.ok, str(rep))
        self.assertEqual(rep.counts["ops"], 240)

    def test_threads_on_a_stale_register(self):
        rep = record(Register(stale_every=7)).check()
        self.assertFalse(rep.ok)
        self.assertIn("linearizability", rules(rep), str(rep))

    def test_unknown_outcomes_and_save(self):
        rec = Recorder()
        a = rec.invoke("c1", "write", 3, value="x")
        rec.fail(a)
        b = rec.invoke("c2", "read", 3)
        rec.ok(b, value="x")
        rec.invoke("c3", "write", 3, value="y")  # never completed
        c = rec.invoke("c2", "read", 3, consistency="BOUNDED", staleness_ms=0)
        rec.ok(c, value="y")
        with self.assertRaises(ValueError):
            rec.ok(b, value="x")
        with self.assertRaises(ValueError):
            rec.invoke("c1", "cas", 3)
        self.assertTrue(rec.check().ok, str(rec.check()))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "h.json")
            rec.save(path)
            initial, ops = load(path)
            self.assertEqual([o.id for o in ops], [1, 2, 3, 4])
            self.assertTrue(ops[2].pending)


class Edges(unittest.TestCase):
    def test_budget_undecided(self):
        rep = run(random_history(1, n_ops=60, blocks=1), max_steps=3)
        self.assertFalse(rep.ok)
        self.assertEqual(rep.unknown, [0])
        self.assertEqual(rep.violations, [])
        res = linearize.check_block([], None)
        self.assertEqual(res.status, linearize.OK)

    def test_malformed(self):
        cases = [
            ({"ops": [{"id": 1, "client": "a", "kind": "frob", "block": 0}]}, "kind"),
            ({"ops": [w(1, "a", 0, "x", 1, 10, 5)]}, "before invoke_ms"),
            ({"ops": [w(1, "a", 0, "x", 1, 0, 5), w(1, "a", 0, "y", 2, 6, 7)]}, "twice"),
            ({"ops": [w(1, "a", 0, "x", 1, 0, 5), w(2, "a", 0, "x", 2, 6, 7)]}, "unique"),
            ({"ops": [r(1, "a", 0, "x", 0, 5, consistency="BOUNDED")]}, "staleness_ms"),
            ({"ops": [r(1, "a", 0, "x", 0, 5, consistency="WEAK")]}, "consistency"),
            ({"ops": [{"id": 4, "client": "a", "kind": "read", "block": 0,
                       "value": 1, "return_ms": 3}]}, "invoke_ms is missing"),
            ({"ops": [w(1, "a", 0, "x", "v1", 0, 5)]}, "version must be a number"),
            ({"ops": "none"}, "ops"),
        ]
        for doc, words in cases:
            with self.assertRaises(HistoryError) as cm:
                parse(doc)
            self.assertIn(words, str(cm.exception))

    def test_cli(self):
        good = {"initial": None, "ops": [w(1, "a", 0, "x", 1, 0, 10),
                                         r(2, "b", 0, "x", 20, 30)]}
        bad = {"initial": None, "ops": [w(1, "a", 0, "x", 1, 0, 10),
                                        r(2, "b", 0, None, 20, 30)]}
        with tempfile.TemporaryDirectory() as d:
            paths = {}
            for name, doc in (("good", good), ("bad", bad), ("big", {
                    "ops": random_history(2, n_ops=60, blocks=1)})):
                paths[name] = os.path.join(d, name + ".json")
                with open(paths[name], "w") as f:
                    json.dump(doc, f)
            paths["broken"] = os.path.join(d, "broken.json")
            with open(paths["broken"], "w") as f:
                f.write("{not json")

            def cli(*argv):
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    rc = check_mod.main(list(argv))
                return rc, out.getvalue(), err.getvalue()

            rc, out, _ = cli(paths["good"])
            self.assertEqual((rc, out.split(":")[0]), (0, "consistent"))
            rc, out, _ = cli(paths["bad"], "--json")
            self.assertEqual(rc, 1)
            doc = json.loads(out)
            self.assertFalse(doc["ok"])
            self.assertEqual(doc["violations"][0]["rule"], "linearizability")
            self.assertEqual(doc["violations"][0]["ops"][0]["id"], 2)
            rc, _, _ = cli(paths["big"], "--max-steps", "2")
            self.assertEqual(rc, 3)
            rc, _, err = cli(paths["broken"])
            self.assertEqual(rc, 2)
            self.assertIn("broken.json", err)
            rc, _, err = cli(os.path.join(d, "missing.json"))
            self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
