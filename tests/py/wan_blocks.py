"""wan_blocks: the register blocks of the issue-5 history tests
(test_wan_staleness, test_wan_region_loss, test_wan_partition).

What it is for: one layout and one value encoding for the blocks those
tests write and read through the proxies and judge with tests/checker.
Block b of the history lives in segment b % SEGS, at block b // SEGS of
that segment (1 MiB segments, 4 KiB blocks), so BLOCKS blocks spread over
SEGS segments; a value is its UTF-8 text padded with zeros to a block.

How it fails: it does not (pure functions; standard library only, so the
tests' workers in other namespaces import it without the test harness).
"""

MIB = 1 << 20
BLOCK = 4096
SEGS = 4
BLOCKS = 8


def block_offset(b):
    """Volume byte offset of history block b."""
    return (b % SEGS) * MIB + (b // SEGS) * BLOCK


def encode(value):
    """A block holding value (str)."""
    raw = value.encode()
    return raw + b"\0" * (BLOCK - len(raw))


def decode(data):
    """The value a block holds: None for zeros (never written)."""
    s = data.rstrip(b"\0")
    return s.decode() if s else None
