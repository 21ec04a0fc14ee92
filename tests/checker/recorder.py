"""checker.recorder: record a history while a test runs.

What it is for: issue 5's tests run clients (threads or processes in the
regions' namespaces) against Ombra and need every operation with its
invoke and return times on one clock, in the format of checker.history.
A Recorder hands out operation records and stamps them:

    rec = Recorder()
    op = rec.invoke("c1", "write", block=7, value=rec.unique_value("c1"),
                    region="r2")
    ... the client's Write RPC ...
    rec.ok(op, version=reply.version)        # or rec.fail(op) on error
    op = rec.invoke("c2", "read", block=7, consistency="BOUNDED",
                    staleness_ms=500)
    rec.ok(op, value=decoded_value, version=reply.segment_version)
    report = rec.check()                     # checker.report.Report
    rec.save("history.json")                 # for python3 -m checker

Times are time.monotonic() in ms, so every client must run in this
process (threads); clients in other processes record their own dicts with
the same clock (CLOCK_MONOTONIC is system-wide, also across network
namespaces) and add them with add().  A write whose outcome is unknown
(timeout, connection lost) must be fail()ed, not dropped: it may have
happened.

How it fails: invoke() of an unknown kind, or ok()/fail() of an op twice,
raises ValueError; the history itself is validated by check()/save().
Thread-safe.
"""

import json
import os
import threading
import time

from . import history, report


def now_ms():
    """The recorder's clock: CLOCK_MONOTONIC in ms (float)."""
    return time.monotonic() * 1000.0


class Recorder:
    """Operations of one history; initial is a never-written block's value."""

    def __init__(self, initial=None):
        self.initial = initial
        self._ops = []
        self._lock = threading.Lock()
        self._next = {}

    def unique_value(self, client):
        """A value no other call returns: "<client>-<n>"."""
        with self._lock:
            n = self._next.get(client, 0) + 1
            self._next[client] = n
        return "%s-%d" % (client, n)

    def invoke(self, client, kind, block, value=None, region=None,
               consistency="STRONG", staleness_ms=None, min_version=None):
        """Start an operation now; returns its record (a dict the caller
        passes to ok() or fail()).  value: what a write writes."""
        if kind not in history.KINDS:
            raise ValueError("kind must be one of %s" % (history.KINDS,))
        op = {"client": client, "kind": kind, "block": block, "region": region,
              "consistency": consistency, "invoke_ms": now_ms()}
        if kind == "write":
            op["value"] = value
        else:
            op.update(staleness_ms=staleness_ms, min_version=min_version)
        with self._lock:
            op["id"] = len(self._ops) + 1
            self._ops.append(op)
        return op

    def ok(self, op, value=None, version=None):
        """The operation returned now: a read's value, the version Ombra
        reported (write: the acknowledged version)."""
        t = now_ms()
        with self._lock:
            if "return_ms" in op or op.get("ok") is False:
                raise ValueError("op %s already completed" % op["id"])
            op["return_ms"] = t
            op["ok"] = True
            if op["kind"] == "read":
                op["value"] = value
            if version is not None:
                op["version"] = version

    def fail(self, op):
        """The operation failed or its outcome is unknown."""
        with self._lock:
            if "return_ms" in op or op.get("ok") is False:
                raise ValueError("op %s already completed" % op["id"])
            op["ok"] = False
            op.setdefault("value", None)

    def add(self, op):
        """Add a finished record made elsewhere (same clock); its id is
        replaced by the next one."""
        with self._lock:
            op = dict(op, id=len(self._ops) + 1)
            self._ops.append(op)

    def history(self):
        """The history document; operations never completed count as
        failed (unknown outcome)."""
        with self._lock:
            ops = [{k: v for k, v in o.items() if v is not None or k == "value"}
                   for o in self._ops]
        for o in ops:
            if "return_ms" not in o:
                o["ok"] = False
                o.setdefault("value", None)
        return {"initial": self.initial, "ops": ops}

    def check(self, **kw):
        """checker.report.check() of the history so far."""
        return report.check(*history.parse(self.history()), **kw)

    def save(self, path):
        """Write the history as JSON (python3 -m checker PATH)."""
        with open(path + ".tmp", "w") as f:
            json.dump(self.history(), f, indent=1)
        os.replace(path + ".tmp", path)
