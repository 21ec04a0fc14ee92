"""checker.linearize: is one block's history of writes and STRONG reads
linearizable?

What it is for: the STRONG check of checker.report.  Linearizability is
compositional (Herlihy & Wing 1990), so each block is checked on its own, as
Porcupine partitions a key-value history by key.

Model: a versioned register.  Its state is (value, version), initially
(initial value, 0).  write(v, version) always succeeds and sets the state;
if both the write's and the state's versions are known, the write's must be
higher (Ombra's primary gives every later write of a block a higher
version, docs/shadows.md).  read() -> v is legal iff the state's value is v
(and, if the read reports a version, the state's version is that one).  A
write that got no answer may take effect at any time after its invoke, or
never (it is linearized at the very end, where it changes nothing visible).

Algorithm: the Wing & Gong search (J. M. Wing and C. Gong, "Testing and
verifying concurrent objects", J. Parallel and Distributed Computing 17,
1993) with G. Lowe's memoization of (linearized set, state) pairs ("Testing
for linearizability", Concurrency and Computation 29(4), 2017), as used by
Porcupine (A. Athalye, https://github.com/anishathalye/porcupine, and
"Testing Distributed Systems for Linearizability",
https://www.anishathalye.com/2017/06/04/testing-distributed-systems-for-linearizability/).
Call and return events are kept in time order in a doubly linked list; the
search walks it, tentatively linearizing an operation whose call it meets
(unlinking its call and return), and backtracks when it meets a return
event, i.e. an operation that would have to take effect after it returned.
The linearized set is a bit set (a Python int).  One addition for
registers whose written values are unique: a read that is legal in the
current state is linearized at once, without a backtracking point (see
the comment in check_block); that keeps concurrent reads from making the
search exponential.  And one for Ombra's versions: acknowledged writes
are linearized only in version order (the primary orders them), which
prunes the choice among concurrent writes.  This is a fresh
implementation from the papers' description; no code is copied.

How it fails: never raises on a well-formed list of ops; the search stops
after max_steps and answers UNKNOWN (the problem is NP-complete in general;
register histories with few concurrent writes are fast).
"""

OK = "ok"
VIOLATION = "violation"
UNKNOWN = "unknown"
DEFAULT_MAX_STEPS = 2_000_000


class Result:
    """Outcome for one block.

    status: OK, VIOLATION or UNKNOWN.
    order: on OK, the ops in a legal linearization order; otherwise the
      longest linearizable prefix the search found.
    stuck: on VIOLATION, the ops that could not be placed after that prefix
      (the op whose return the search could not pass, and the ops it
      tried at that point); [] otherwise.
    steps: search steps taken."""

    def __init__(self, status, order, stuck, steps):
        self.status = status
        self.order = order
        self.stuck = stuck
        self.steps = steps


def _step(state, op):
    """(legal, new state) of op applied to the register state."""
    value, version = state
    if op.kind == "write":
        if op.version is not None and version is not None and op.version <= version:
            return False, state
        return True, (op.value, op.version)
    if op.value != value:
        return False, state
    if op.version is not None and version is not None and op.version != version:
        return False, state
    return True, state


def _events(ops):
    """Time-ordered events (time, is_return, op index).  At equal times
    calls come first, so touching operations count as concurrent (the
    permissive reading of a clock's resolution)."""
    ev = []
    for i, o in enumerate(ops):
        ev.append((o.invoke, 0, i))
        ev.append((o.ret, 1, i))
    ev.sort(key=lambda e: (e[0], e[1]))
    return ev


def check_block(ops, initial=None, max_steps=DEFAULT_MAX_STEPS):
    """Search a linearization of ops (Op list of one block: writes and the
    reads to check).  initial: the never-written value.  Returns Result."""
    if not ops:
        return Result(OK, [], [], 0)
    ev = _events(ops)
    n = len(ev)
    # doubly linked list over event positions; n is the tail sentinel,
    # -1 the head sentinel (stored at index n + 1).
    nxt = list(range(1, n + 1)) + [None, 0]
    prv = [i - 1 for i in range(n)] + [n - 1 if n else -1, None]
    head = n + 1
    kind = [e[1] for e in ev]
    opi = [e[2] for e in ev]
    ret_pos = {}
    for pos, e in enumerate(ev):
        if e[1]:
            ret_pos[e[2]] = pos

    def unlink(p):
        a, b = prv[p], nxt[p]
        nxt[a if a != -1 else head] = b
        prv[b] = a

    def relink(p):
        a, b = prv[p], nxt[p]
        nxt[a if a != -1 else head] = p
        prv[b] = p

    state = (initial, 0)
    # versions of the acknowledged writes, in the only order they may take
    # effect; widx of them are linearized
    known = sorted(o.version for o in ops if o.kind == "write" and o.version is not None)
    widx = 0
    linearized = 0
    stack = []  # (call position, state before, linearized at once)
    seen = set()
    steps = 0
    best_len, best_order, best_stuck = -1, [], []
    entry = nxt[head]
    while nxt[head] != n:
        steps += 1
        if steps > max_steps:
            return Result(UNKNOWN, [ops[opi[p]] for p, _, _ in stack], [], steps)
        if kind[entry] == 0:
            i = opi[entry]
            legal, new_state = _step(state, ops[i])
            if legal and ops[i].version is not None and ops[i].kind == "write":
                # acknowledged writes take effect in version order
                legal = widx < len(known) and known[widx] == ops[i].version
            if legal and ops[i].kind == "read":
                # A legal read is linearized at once, never as a choice to
                # revisit: values are unique per block, so the state never
                # comes back to this value; any linearization that places
                # the read later has only reads of the same value in
                # between, and reads commute.  This keeps many concurrent
                # reads from multiplying the search.
                stack.append((entry, state, True))
                linearized |= 1 << i
                unlink(entry)
                unlink(ret_pos[i])
                entry = nxt[head]
                continue
            if legal:
                lin = linearized | (1 << i)
                if (lin, new_state) not in seen:
                    seen.add((lin, new_state))
                    stack.append((entry, state, False))
                    state, linearized = new_state, lin
                    if ops[i].version is not None:
                        widx += 1
                    unlink(entry)
                    unlink(ret_pos[i])
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
            continue
        # a return event: its op was not linearized before it returned
        if len(stack) > best_len:
            best_len = len(stack)
            best_order = [ops[opi[p]] for p, _, _ in stack]
            tried, p = [], nxt[head]
            while p != entry:
                if kind[p] == 0:
                    tried.append(ops[opi[p]])
                p = nxt[p]
            best_stuck = [ops[opi[entry]]] + [o for o in tried if o is not ops[opi[entry]]]
        # backtrack: undo the reads linearized at once, then the last
        # choice, and try the next candidate after that choice
        while True:
            if not stack:
                return Result(VIOLATION, best_order, best_stuck, steps)
            pos, state, forced = stack.pop()
            i = opi[pos]
            linearized &= ~(1 << i)
            if ops[i].kind == "write" and ops[i].version is not None:
                widx -= 1
            relink(ret_pos[i])
            relink(pos)
            if not forced:
                break
        entry = nxt[pos]
    return Result(OK, [ops[opi[p]] for p, _, _ in stack], [], steps)
