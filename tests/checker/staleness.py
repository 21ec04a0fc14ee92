"""checker.staleness: the per-read and per-client checks that do not need a
search: where a read's value came from, BOUNDED reads' bounds, and
versions that go backwards for a client.

What it is for: checker.report runs these on every history next to the
linearizability search of STRONG reads.  The rules (docs/shadows.md):

  phantom     every read returns the block's initial value or a value some
              write of that block wrote (any consistency level);
  future      ... and that write was invoked before the read returned;
  version     a read that reports a version reports the version of the
              write whose value it returned (0 for the initial value);
  stale       a BOUNDED read with staleness_ms S returns a version at least
              as new as every write of the block acknowledged by
              invoke - S (reads may be at most S ms behind);
  token       a BOUNDED read with min_version V returns a version >= V;
  backwards   for one client and one block, an operation (write, STRONG or
              BOUNDED read) never observes an older version than an
              operation of that client that returned before it was
              invoked (monotonic reads, read-your-writes); EVENTUAL reads
              are exempt, they may be served by any copy.

Versions decide "older" when both are known.  A value written by a write
that got no answer has no known version; it is never judged older (the
permissive reading: such a write may have taken effect late).

How it fails: never raises on ops from checker.history.parse; every
broken rule is a Violation naming the rule, the ops and what differed.
"""


class Violation:
    """rule: one of the names above (or "linearizability", from
    checker.report); ops: the offending Op list, the checked op first;
    message: one line saying what differed."""

    def __init__(self, rule, ops, message):
        self.rule = rule
        self.ops = ops
        self.message = message

    def to_dict(self):
        return {"rule": self.rule, "message": self.message,
                "ops": [o.to_dict() for o in self.ops]}

    def __str__(self):
        return "%s: %s\n%s" % (self.rule, self.message,
                               "\n".join("    " + o.describe() for o in self.ops))


def _writes_by_value(ops):
    """{(block, value): write Op}."""
    return {(o.block, o.value): o for o in ops if o.kind == "write"}


def observed_version(op, writes):
    """Version op observed: a write's acknowledged version; a read's
    reported version, else its write's version, 0 for the initial value;
    None when unknown (value of a write that got no answer)."""
    if op.kind == "write":
        return op.version
    if op.version is not None:
        return op.version
    w = writes.get((op.block, op.value))
    return 0 if w is None else w.version


def check_sources(ops, initial):
    """The phantom, future and version rules for every read."""
    writes = _writes_by_value(ops)
    out = []
    for r in ops:
        if r.kind != "read":
            continue
        if r.value == initial:
            if r.version not in (None, 0):
                out.append(Violation("version", [r], "read of the initial value reports "
                                     "version %d, expected 0" % r.version))
            continue
        w = writes.get((r.block, r.value))
        if w is None:
            out.append(Violation("phantom", [r], "value %r was never written to block %s"
                                 % (r.value, r.block)))
        elif w.invoke > r.ret:
            out.append(Violation("future", [r, w], "read returned at %.1f ms a value whose "
                                 "write was invoked later, at %.1f ms" % (r.ret, w.invoke)))
        elif r.version is not None and w.version is not None and r.version != w.version:
            out.append(Violation("version", [r, w], "read reports version %d for a value "
                                 "written with version %d" % (r.version, w.version)))
    return out


def _older(a_version, b_version):
    """True if version a is known to be older than version b."""
    if a_version is not None and b_version is not None:
        return a_version < b_version
    return False  # unknown version (unanswered write): give it the benefit


def check_bounded(ops, initial):
    """The stale and token rules for every BOUNDED read."""
    writes = _writes_by_value(ops)
    acked = {}  # block -> writes with an answer, by return time
    for w in ops:
        if w.kind == "write" and not w.pending and w.version is not None:
            acked.setdefault(w.block, []).append(w)
    out = []
    for r in ops:
        if r.kind != "read" or r.consistency != "BOUNDED":
            continue
        got = observed_version(r, writes)
        src = writes.get((r.block, r.value))
        if r.staleness_ms is not None:
            cutoff = r.invoke - r.staleness_ms
            due = [w for w in acked.get(r.block, []) if w.ret <= cutoff]
            if due:
                newest = max(due, key=lambda w: w.version)
                if _older(got, newest.version):
                    out.append(Violation(
                        "stale", [r, newest] + ([src] if src else []),
                        "BOUNDED read (staleness %g ms) returned version %s, but version "
                        "%d was acknowledged at %.1f ms, %.1f ms before the read began"
                        % (r.staleness_ms, got, newest.version, newest.ret,
                           r.invoke - newest.ret)))
        if r.min_version is not None and got is not None and got < r.min_version:
            out.append(Violation("token", [r] + ([src] if src else []),
                                 "BOUNDED read with min_version %d returned version %d"
                                 % (r.min_version, got)))
    return out


def check_monotonic(ops, initial):
    """The backwards rule, per client and block."""
    writes = _writes_by_value(ops)
    per = {}
    for o in ops:
        if o.kind == "read" and o.consistency == "EVENTUAL":
            continue
        if o.kind == "write" and o.pending:
            continue
        per.setdefault((o.client, o.block), []).append(o)
    out = []
    for (client, block), mine in sorted(per.items(), key=lambda kv: str(kv[0])):
        by_invoke = sorted(mine, key=lambda o: o.invoke)
        by_ret = sorted(mine, key=lambda o: o.ret)
        j, best, best_op = 0, None, None
        for b in by_invoke:
            while j < len(by_ret) and by_ret[j].ret <= b.invoke:
                a = by_ret[j]
                v = observed_version(a, writes)
                if v is not None and (best is None or v > best):
                    best, best_op = v, a
                j += 1
            v = observed_version(b, writes)
            if best_op is not None and _older(v, best):
                out.append(Violation("backwards", [b, best_op],
                                     "client %s saw block %s at version %d, then at "
                                     "version %d" % (client, block, best, v)))
    return out
