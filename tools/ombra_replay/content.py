"""content: what the replay writes into each block and how reads are checked.

What it is for: every written 4 KiB block holds a 32-byte header repeated
128 times: magic b"OMBRARPL", the run's seed, the block index and the
block's write number (all little-endian u64).  The write number of a block
counts that block's writes in this run, from 1.  BlockBook remembers per
block the write number last issued and the one last acknowledged, and
checks a read block against the acknowledged one, so a lost, stale,
misdirected or torn write is detected and described ("block 42: expected
write 3, got write 2", "got block 17 write 1", "got zeros", "got other
data").  A different seed per run tells this run's data from an earlier
run's.

Never-written blocks are "unknown" (not counted) unless expect_zeros is
set (fresh volume: they must read as zeros).  A write that failed leaves
its blocks unknown until the next acknowledged write, since the volume may
hold either version.

State hand-over: save_state() writes what a run knows about every block
(the seed and write number that last reached it, or "unknown" after a
failed write) to a JSON file; a later run over the same volume passes it
to load_state(), so blocks it reads before writing them are checked
against the earlier run's data instead of being "unknown" (the main job
replays through region 2 what region 1 wrote).  File format: {"format":
"ombra-replay-state", "version": 1, "zeros_elsewhere": bool, "blocks":
[[block, seed, write number or -1], ...]}.

How it fails: it does not raise on data; mismatches are returned as
Failure records for the report.  load_state() raises ValueError naming
the file and the problem for a file that is not a state file.
"""

import collections
import json
import struct

from .mapping import BLOCK

MAGIC = b"OMBRARPL"
HEADER = struct.Struct("<8sQQQ")
REPEAT = BLOCK // HEADER.size
ZEROS = bytes(BLOCK)
UNKNOWN = -1

Failure = collections.namedtuple("Failure", "block expected got")


def block_data(seed, block, wno):
    """The 4096 bytes written to `block` by its write number `wno`."""
    return HEADER.pack(MAGIC, seed, block, wno) * REPEAT


def describe(seed, block, data):
    """What a 4 KiB block read back at `block` holds, for a failure report:
    "zeros", "write N" (this block, this run), "block B write N" (another
    block: a misdirected write), "block B write N of seed S" (an earlier
    run), or "other data"."""
    if data == ZEROS:
        return "zeros"
    head = bytes(data[:HEADER.size])
    if head[:8] == MAGIC and bytes(data) == head * REPEAT:
        _m, s, b, w = HEADER.unpack(head)
        if s != seed:
            return "block %d write %d of seed %d" % (b, w, s)
        if b == block:
            return "write %d" % w
        return "block %d write %d" % (b, w)
    return "other data"


class BlockBook:
    """Per-block write numbers of one replay and the check of reads.

    Counters: checked (blocks compared), unknown (blocks read whose content
    is not known), failures (mismatching blocks); first_failures holds the
    first `keep` Failure records."""

    def __init__(self, seed, expect_zeros=False, keep=10):
        self.seed = seed
        self.expect_zeros = expect_zeros
        self.keep = keep
        self.issued = {}   # block -> last write number handed out
        self.acked = {}    # block -> last acknowledged write number or UNKNOWN
        self.prior = {}    # block -> (seed, write number or UNKNOWN), earlier run
        self.checked = 0
        self.unknown = 0
        self.failures = 0
        self.first_failures = []

    def write_data(self, start, length):
        """Bytes for a write of `length` bytes at byte `start` (both block
        aligned) and the write numbers used, one per block; the caller
        passes the numbers back to write_done()."""
        first = start // BLOCK
        wnos = []
        parts = []
        for b in range(first, first + length // BLOCK):
            w = self.issued.get(b, 0) + 1
            self.issued[b] = w
            wnos.append(w)
            parts.append(block_data(self.seed, b, w))
        return b"".join(parts), wnos

    def write_done(self, start, wnos, ok):
        """Record the outcome of a write made by write_data()."""
        first = start // BLOCK
        for i, w in enumerate(wnos):
            self.acked[first + i] = w if ok else UNKNOWN

    def written_ranges(self, max_blocks=256):
        """(byte start, byte length) runs covering every block this run
        wrote (acknowledged or not), ascending, each at most max_blocks
        blocks: what --read-back reads."""
        out = []
        run_start = prev = None
        for b in sorted(self.issued):
            if run_start is not None and b == prev + 1 and b - run_start < max_blocks:
                prev = b
                continue
            if run_start is not None:
                out.append((run_start * BLOCK, (prev - run_start + 1) * BLOCK))
            run_start = prev = b
        if run_start is not None:
            out.append((run_start * BLOCK, (prev - run_start + 1) * BLOCK))
        return out

    def check_read(self, start, data):
        """Check the bytes read at byte `start` (block aligned) against the
        acknowledged writes; returns the number of mismatching blocks."""
        first = start // BLOCK
        view = memoryview(data)
        bad = 0
        for i in range(len(data) // BLOCK):
            b = first + i
            got = view[i * BLOCK:(i + 1) * BLOCK]
            w = self.acked.get(b)
            seed = self.seed
            if w is None and b in self.prior:
                seed, w = self.prior[b]
            if w is None:
                if not self.expect_zeros:
                    self.unknown += 1
                    continue
                w = 0
            elif w == UNKNOWN:
                self.unknown += 1
                continue
            self.checked += 1
            want = ZEROS if w == 0 else block_data(seed, b, w)
            if got == want:
                continue
            bad += 1
            self.failures += 1
            if len(self.first_failures) < self.keep:
                exp = "zeros" if w == 0 else "write %d" % w
                if w != 0 and seed != self.seed:
                    exp += " of seed %d" % seed
                self.first_failures.append(Failure(b, exp, describe(self.seed, b, got)))
        return bad

    def save_state(self, path):
        """Write every block's last known content (this run's acknowledged
        writes over the loaded prior state) to `path` (JSON, see above)."""
        blocks = {b: (s, w) for b, (s, w) in self.prior.items()}
        for b, w in self.acked.items():
            blocks[b] = (self.seed, w)
        with open(path, "w") as f:
            json.dump({"format": "ombra-replay-state", "version": 1,
                       "zeros_elsewhere": self.expect_zeros,
                       "blocks": [[b, s, w] for b, (s, w) in sorted(blocks.items())]}, f)

    def load_state(self, path):
        """Take the block contents saved by an earlier run (save_state) as
        what this run's reads must find until it writes the blocks itself;
        blocks the state does not name must read as zeros if the earlier
        run knew the volume was fresh.  Raises ValueError on a bad file."""
        try:
            with open(path) as f:
                st = json.load(f)
            if st.get("format") != "ombra-replay-state" or st.get("version") != 1:
                raise ValueError("not an ombra-replay state file (version 1)")
            prior = {}
            for b, s, w in st["blocks"]:
                if not all(isinstance(x, int) for x in (b, s, w)) or b < 0 or w < UNKNOWN:
                    raise ValueError("bad block entry %r" % ([b, s, w],))
                prior[b] = (s, w)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError("%s: %s" % (path, e)) from None
        self.prior = prior
        self.expect_zeros = bool(st.get("zeros_elsewhere"))
