"""checker.report: every consistency check over one history, the report and
the command line.

What it is for: the entry point of issue 5's tests.  check(initial, ops)
runs, per block, the linearizability search of the writes and STRONG
reads (checker.linearize) and the rules of checker.staleness over all
reads, and returns a Report: ok, the violations (each naming its rule and
the offending operations), the blocks whose search ran out of steps, and
counts.  From a shell:

  python3 -m checker HISTORY.json [--json] [--max-steps N]
  (with SRCDIR/tests on PYTHONPATH)

prints the report and exits 0 (consistent), 1 (violations), 3 (no
violation found but some block's search hit --max-steps) or 2 (bad
history or usage).

How it fails: a malformed history is history.HistoryError (exit 2 with its
message from the command line).
"""

import argparse
import json
import sys

from . import history, linearize, staleness


class Report:
    """violations: [staleness.Violation]; unknown: blocks whose search hit
    the step budget; counts: {"ops", "writes", "reads", "strong_reads",
    "blocks", "steps"}.  ok is True iff there is neither."""

    def __init__(self, violations, unknown, counts):
        self.violations = violations
        self.unknown = unknown
        self.counts = counts

    @property
    def ok(self):
        return not self.violations and not self.unknown

    def to_dict(self):
        return {"ok": self.ok, "counts": self.counts, "unknown_blocks": self.unknown,
                "violations": [v.to_dict() for v in self.violations]}

    def __str__(self):
        c = self.counts
        lines = ["%s: %d ops (%d writes, %d reads, %d STRONG) on %d blocks, %d search steps"
                 % ("consistent" if self.ok else "NOT consistent", c["ops"], c["writes"],
                    c["reads"], c["strong_reads"], c["blocks"], c["steps"])]
        lines += [str(v) for v in self.violations]
        if self.unknown:
            lines.append("search budget exhausted (undecided) for blocks: %s"
                         % ", ".join(map(str, self.unknown)))
        return "\n".join(lines)


def _linearizability(initial, ops, max_steps):
    """(violations, undecided blocks, steps) of the STRONG check."""
    out, unknown, steps = [], [], 0
    for block, mine in sorted(history.by_block(ops).items(), key=lambda kv: str(kv[0])):
        sub = [o for o in mine if o.kind == "write" or o.consistency == "STRONG"]
        if not any(o.kind == "read" for o in sub):
            continue
        res = linearize.check_block(sub, initial, max_steps)
        steps += res.steps
        if res.status == linearize.UNKNOWN:
            unknown.append(block)
        elif res.status == linearize.VIOLATION:
            prefix = ", ".join(str(o.id) for o in res.order) or "nothing"
            out.append(staleness.Violation(
                "linearizability", res.stuck,
                "block %s: no legal order of its writes and STRONG reads; the longest "
                "linearizable prefix (ops %s) cannot be extended by op %s before it "
                "returned" % (block, prefix, res.stuck[0].id if res.stuck else "?")))
    return out, unknown, steps


def check(initial, ops, max_steps=linearize.DEFAULT_MAX_STEPS):
    """Report over ops (from history.parse) with initial the value of a
    never-written block; max_steps bounds each block's search."""
    violations, unknown, steps = _linearizability(initial, ops, max_steps)
    violations += staleness.check_sources(ops, initial)
    violations += staleness.check_bounded(ops, initial)
    violations += staleness.check_monotonic(ops, initial)
    reads = [o for o in ops if o.kind == "read"]
    counts = {"ops": len(ops), "writes": len(ops) - len(reads), "reads": len(reads),
              "strong_reads": sum(1 for o in reads if o.consistency == "STRONG"),
              "blocks": len(history.by_block(ops)), "steps": steps}
    return Report(violations, unknown, counts)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="python3 -m checker",
        description="Check a history of per-block register operations recorded against "
        "Ombra: STRONG reads linearizable (Wing & Gong / Porcupine search per block), "
        "BOUNDED reads within their staleness bound and min-version token, no version "
        "going backwards per client, every read's value written by someone.",
        epilog="Exit status: 0 consistent, 1 violations, 2 bad history or usage, "
        "3 undecided (search budget). The history format is in tests/checker/history.py.")
    p.add_argument("history", help="JSON file: {\"initial\": ..., \"ops\": [...]}")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--max-steps", type=int, default=linearize.DEFAULT_MAX_STEPS,
                   help="search steps per block before answering undecided (default %d)"
                   % linearize.DEFAULT_MAX_STEPS)
    args = p.parse_args(argv)
    if args.max_steps < 1:
        p.error("--max-steps must be positive")
    try:
        initial, ops = history.load(args.history)
    except history.HistoryError as e:
        sys.stderr.write("checker: %s\n" % e)
        return 2
    rep = check(initial, ops, args.max_steps)
    print(json.dumps(rep.to_dict(), indent=1) if args.json else str(rep))
    if rep.violations:
        return 1
    return 3 if rep.unknown else 0
