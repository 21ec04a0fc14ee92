"""checker: a consistency checker for histories of per-block register
operations recorded against Ombra (issue 5's multi-region tests).

What it is for: a test records every operation its clients ran -- writes
(block, value, version assigned by Ombra) and reads (block -> value, and the
version when the server reports it), with invoke/return times, the client,
its region, the read's consistency level and its bound -- and asks whether
the cluster kept its promises (docs/shadows.md, docs/testbed.md):

  * STRONG reads are linearizable: checker.linearize searches, per block,
    for a legal order of the writes and STRONG reads (a Wing & Gong search
    with Lowe's memoization, as Porcupine does it);
  * BOUNDED reads are never older than their staleness bound or their
    minimum-version token, and every read returns a value some write could
    have produced (checker.staleness);
  * no client sees a block's version go backwards (checker.staleness).

Modules: history (the operation model, loading and validation), linearize,
staleness, report (all checks together, the report and the command line:
`python3 -m checker HISTORY.json`), recorder (stamps operations while a
test runs).

How it fails: malformed histories raise history.HistoryError naming the
operation and field; a linearizability search that exceeds its step budget
answers "unknown" for that block instead of running forever.

Python 3 standard library only."""

from .history import HistoryError, Op, load, parse  # noqa: F401
from .report import Report, check  # noqa: F401
from .recorder import Recorder  # noqa: F401
