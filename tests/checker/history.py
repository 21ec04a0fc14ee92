"""checker.history: the operations of a recorded history and their
validation.

What it is for: one shape for every history the checker reads, whether a
test builds it in memory or loads it from a JSON file:

  {"initial": null,            # value of a never-written block (any JSON)
   "ops": [
     {"id": 7, "client": "c1", "region": "r2", "kind": "write",
      "block": 12, "value": "c1-7", "version": 4398046511105,
      "invoke_ms": 1000.0, "return_ms": 1051.3, "ok": true},
     {"id": 8, "client": "c2", "region": "r3", "kind": "read",
      "block": 12, "value": "c1-7", "version": 4398046511105,
      "consistency": "BOUNDED", "staleness_ms": 500, "min_version": 0,
      "invoke_ms": 1060.0, "return_ms": 1101.0, "ok": true}]}

Times are milliseconds on one clock (the test's monotonic clock).  Each
write must write a value no other write of that block writes (the checker
maps a read to its write by value).  "version" of a write is the version
Ombra acknowledged (absent if the write got no answer); of a read, the
version the server reported (optional).  A write with "ok": false or no
"return_ms" got no answer: it may or may not have happened, so it counts
as concurrent with everything after its invoke (Porcupine's treatment of
pending operations).  A read that failed carries no value and is ignored.
"consistency" is STRONG (default), BOUNDED or EVENTUAL; BOUNDED reads
carry "staleness_ms" and/or "min_version".

How it fails: HistoryError names the operation (its id) and the field.
"""

import json
import math

KINDS = ("write", "read")
LEVELS = ("STRONG", "BOUNDED", "EVENTUAL")
INF = math.inf


class HistoryError(ValueError):
    """A history that does not follow the shape above."""


class Op:
    """One operation.  Times in ms; ret is INF for a write without answer;
    value is any hashable (JSON lists become tuples); version an int or
    None."""

    __slots__ = ("id", "client", "region", "kind", "block", "value", "version",
                 "invoke", "ret", "ok", "consistency", "staleness_ms", "min_version")

    def __init__(self, id, client, kind, block, value, invoke, ret, version=None,
                 region=None, ok=True, consistency="STRONG", staleness_ms=None,
                 min_version=None):
        self.id = id
        self.client = client
        self.region = region
        self.kind = kind
        self.block = block
        self.value = value
        self.version = version
        self.invoke = invoke
        self.ret = ret
        self.ok = ok
        self.consistency = consistency
        self.staleness_ms = staleness_ms
        self.min_version = min_version

    @property
    def pending(self):
        """True for a write that got no answer (it may have happened)."""
        return self.ret == INF

    def describe(self):
        """One line naming the operation for a report."""
        if self.kind == "write":
            what = "write(block %s, %r)%s" % (
                self.block, self.value,
                " -> version %d" % self.version if self.version is not None else "")
        else:
            what = "read(block %s) -> %r%s [%s%s%s]" % (
                self.block, self.value,
                " version %d" % self.version if self.version is not None else "",
                self.consistency,
                " staleness %g ms" % self.staleness_ms if self.staleness_ms is not None
                else "",
                " min_version %d" % self.min_version if self.min_version else "")
        ret = "no answer" if self.pending else "%.1f" % self.ret
        return "op %s client %s%s: %s, %.1f..%s ms" % (
            self.id, self.client, " (%s)" % self.region if self.region else "", what,
            self.invoke, ret)

    def to_dict(self):
        d = {k: getattr(self, k) for k in ("id", "client", "region", "kind", "block",
                                           "value", "version", "ok", "consistency",
                                           "staleness_ms", "min_version")}
        d["invoke_ms"] = self.invoke
        d["return_ms"] = None if self.pending else self.ret
        return {k: v for k, v in d.items() if v is not None}


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _num(d, key, oid, required=True):
    v = d.get(key)
    if v is None:
        if required:
            raise HistoryError("op %s: %s is missing" % (oid, key))
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise HistoryError("op %s: %s must be a number, not %r" % (oid, key, v))
    return v


def _op(d, n):
    """An Op from one dict of the "ops" list (n = its position), or None for
    a failed read.  Raises HistoryError."""
    if not isinstance(d, dict):
        raise HistoryError("ops[%d] is not an object" % n)
    oid = d.get("id", n)
    kind = d.get("kind")
    if kind not in KINDS:
        raise HistoryError("op %s: kind must be one of %s, not %r" % (oid, KINDS, kind))
    if "block" not in d or "client" not in d:
        raise HistoryError("op %s: block and client are required" % oid)
    ok = d.get("ok", True)
    if not isinstance(ok, bool):
        raise HistoryError("op %s: ok must be true or false" % oid)
    invoke = _num(d, "invoke_ms", oid)
    ret = _num(d, "return_ms", oid, required=False)
    if kind == "read" and (not ok or ret is None):
        return None  # no answer: nothing was observed
    if kind == "write" and (not ok or ret is None):
        ret = INF
    if ret < invoke:
        raise HistoryError("op %s: return_ms %g before invoke_ms %g" % (oid, ret, invoke))
    if "value" not in d:
        raise HistoryError("op %s: value is missing" % oid)
    version = _num(d, "version", oid, required=False)
    if version is not None and (version != int(version) or version < 0):
        raise HistoryError("op %s: version must be a non-negative integer" % oid)
    level = d.get("consistency", "STRONG")
    if level not in LEVELS:
        raise HistoryError("op %s: consistency must be one of %s, not %r"
                           % (oid, LEVELS, level))
    stale = _num(d, "staleness_ms", oid, required=False)
    minv = _num(d, "min_version", oid, required=False)
    if kind == "read" and level == "BOUNDED" and stale is None and minv is None:
        raise HistoryError("op %s: a BOUNDED read needs staleness_ms or min_version" % oid)
    return Op(oid, d["client"], kind, _hashable(d["block"]), _hashable(d["value"]), invoke,
              ret, version=None if version is None or ret == INF else int(version),
              region=d.get("region"), ok=ok, consistency=level, staleness_ms=stale,
              min_version=None if minv is None else int(minv))


def parse(doc):
    """(initial value, [Op]) from a history document (a dict as above, or a
    bare list of operation dicts).  Failed reads are dropped.  Raises
    HistoryError for a malformed document or duplicate ids, or two writes
    of one block writing the same value."""
    if isinstance(doc, list):
        doc = {"ops": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("ops"), list):
        raise HistoryError("a history is an object with an \"ops\" list")
    initial = _hashable(doc.get("initial"))
    ops = [o for o in (_op(d, n) for n, d in enumerate(doc["ops"])) if o is not None]
    seen, written = set(), set()
    for o in ops:
        if o.id in seen:
            raise HistoryError("op id %s appears twice" % o.id)
        seen.add(o.id)
        if o.kind == "write":
            if (o.block, o.value) in written or o.value == initial:
                raise HistoryError("op %s: block %s gets value %r from two writes (or the "
                                   "initial value); values must be unique per block"
                                   % (o.id, o.block, o.value))
            written.add((o.block, o.value))
    return initial, ops


def load(path):
    """parse() of a JSON file.  Raises HistoryError (also for I/O and JSON
    errors, with the path)."""
    try:
        with open(path) as f:
            return parse(json.load(f))
    except (OSError, ValueError) as e:
        if isinstance(e, HistoryError):
            raise
        raise HistoryError("%s: %s" % (path, e))


def by_block(ops):
    """{block: [ops of that block]} in the order given."""
    out = {}
    for o in ops:
        out.setdefault(o.block, []).append(o)
    return out
