"""mapping: place trace requests onto a volume of a given size.

What it is for: a trace addresses a disk of its own size (CloudPhysics
touches ~31 GiB); the replay volume may be smaller.  A request at trace
byte offset O of L bytes becomes the volume byte range
  start = (O mod size) rounded down to BLOCK
  end   = min(start' + L rounded up to BLOCK, size), start' = O mod size
so every 4 KiB block the request touched (after the modulo) is covered
and the result is block-aligned; a request that would run past the end of
the volume is cut there (it does not wrap to block 0).

How it fails: map_request returns None for a request that maps to
nothing (zero length); a volume size that is not a positive multiple of
BLOCK raises ReplayError.
"""

from . import ReplayError

BLOCK = 4096


def check_volume_size(size):
    """Raise ReplayError unless size is a positive multiple of BLOCK."""
    if size <= 0 or size % BLOCK:
        raise ReplayError("volume size %d is not a positive multiple of %d"
                          % (size, BLOCK))


def map_request(offset, length, size):
    """(start, length) in bytes on a volume of `size` bytes, both multiples
    of BLOCK, for a trace request of `length` bytes at byte `offset`;
    None when length is 0."""
    if length <= 0:
        return None
    o = offset % size
    start = o - o % BLOCK
    end = o + length
    end += -end % BLOCK
    if end > size:
        end = size
    return start, end - start
