"""traces: readers for real block I/O trace formats.

What it is for: turning a trace file into a stream of Request tuples
(op "R"/"W", byte offset, byte length, timestamp in microseconds or None),
lazily, so a trace of any size is read in constant memory and a --limit
stops reading (and decompressing) early.

Formats (see /work/shared/traces/README.md and docs/replay.md):
  vscsi  VMware vSCSI binary, little-endian, no header.  Version 1: 32-byte
         records '<IIIHHQQ' (sn, len bytes, nSG, cmd, ver, lbn, ts us),
         ver >> 8 == 1.  Version 2: 40-byte records '<HHIIIQQQ' (cmd, ver,
         sn, len, nSG, lbn, ts, rt), ver >> 8 == 2.  lbn in 512-byte
         sectors.  SCSI READ(6/10/12/16) and WRITE(6/10/12/16) are replayed;
         other commands are skipped and counted.
  lis    ARC text: "start_block n_blocks ignore req_no" per line, all reads,
         blocks of `lis_unit` bytes (512 by default; the OLTP trace numbers
         pages, use 4096), no timestamps.
  msr    MSR Cambridge CSV: Timestamp,Hostname,DiskNumber,Type,Offset,Size,
         ResponseTime; Timestamp in Windows filetime (100 ns ticks), Type
         Read/Write, Offset and Size in bytes.  An optional header line is
         skipped.
Files ending in .zst are decompressed on the fly by the `zstandard` module
when present, else by a `zstd -dc` child process (never to disk).

How it fails: TraceError (a ReplayError) naming the file and, for a
malformed record, its line number or byte offset: unreadable file, zstd
missing or failing, unknown or undetectable format, truncated binary record,
bad text line.  Zero-length requests and unknown SCSI commands are not
errors: they are skipped and counted in Reader.skipped.
"""

import collections
import os
import shutil
import struct
import subprocess

from . import ReplayError

FORMATS = ("vscsi", "lis", "msr")

Request = collections.namedtuple("Request", "op offset length ts_us")

V1 = struct.Struct("<IIIHHQQ")
V2 = struct.Struct("<HHIIIQQQ")
READ_CMDS = frozenset((0x08, 0x28, 0xA8, 0x88))
WRITE_CMDS = frozenset((0x0A, 0x2A, 0xAA, 0x8A))
SECTOR = 512
CHUNK = 1 << 20


class TraceError(ReplayError):
    """The trace cannot be opened or a record in it is malformed."""


# ------------------------------------------------------------------ opening


class _ZstdPipe:
    """Binary read stream over `zstd -dc FILE`; close() stops the child
    and reports a decompression failure (unless we stopped it early)."""

    def __init__(self, path):
        exe = shutil.which("zstd")
        if exe is None:
            raise TraceError("%s: a .zst trace needs the zstd command "
                             "(apt-get install zstd) or the python3 "
                             "zstandard module" % path)
        self.path = path
        self.proc = subprocess.Popen([exe, "-dc", "--", path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.eof = False

    def read(self, n=-1):
        data = self.proc.stdout.read(n)
        if not data and n != 0:
            self.eof = True
            self._check()
        return data

    def _check(self):
        rc = self.proc.wait()
        if rc != 0:
            err = self.proc.stderr.read().decode("utf-8", "replace").strip()
            raise TraceError("%s: zstd failed (status %d): %s"
                             % (self.path, rc, err or "no message"))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def open_stream(path):
    """A binary stream with read(n) and close() over the trace's bytes,
    decompressing *.zst on the fly.  Raises TraceError when the file
    cannot be read."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise TraceError("cannot read trace %s: %s" % (path, e.strerror or e))
    if not path.endswith(".zst"):
        return f
    try:
        import zstandard  # optional; Debian: python3-zstandard
    except ImportError:
        f.close()
        return _ZstdPipe(path)
    return _ZstdModuleStream(f, zstandard)


class _ZstdModuleStream:
    """read()/close() over the zstandard module's streaming reader."""

    def __init__(self, f, zstandard):
        self.f = f
        self.r = zstandard.ZstdDecompressor().stream_reader(f)
        self.err = zstandard.ZstdError
        self.path = f.name

    def read(self, n=-1):
        try:
            return self.r.read(n)
        except self.err as e:
            raise TraceError("%s: zstd decompression failed: %s" % (self.path, e))

    def close(self):
        self.r.close()
        self.f.close()


# ---------------------------------------------------------------- detection


def format_from_name(path):
    """The format implied by the file name (.vscsi, .lis, .csv, optionally
    followed by .zst), or None."""
    name = os.path.basename(path).lower()
    if name.endswith(".zst"):
        name = name[:-4]
    for ext, fmt in ((".vscsi", "vscsi"), (".lis", "lis"), (".csv", "msr")):
        if name.endswith(ext):
            return fmt
    return None


def sniff_format(head):
    """Guess the format from the first bytes of the decompressed trace:
    vscsi when the version field of a v1 or v2 record says so, msr for
    comma-separated text with 7 fields, lis for text lines of 4 integers.
    Returns None when nothing fits."""
    if len(head) >= V2.size and head[3] == 2:
        return "vscsi"
    if len(head) >= V1.size and head[15] == 1:
        return "vscsi"
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut by the 4 KiB window
    for ln in lines:
        ln = ln.strip()
        if not ln or ln.startswith("#"):
            continue
        if len(ln.split(",")) == 7:
            return "msr"
        parts = ln.split()
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            return "lis"
        return None
    return None


# ------------------------------------------------------------------ readers


class Reader:
    """Iterates over the Requests of one trace file.

    fmt: one of FORMATS or None (from the file name, else sniffed from the
    content).  lis_unit: bytes per .lis block (> 0).  Attributes after or
    during iteration: records (records read), skipped (zero-length or
    non-read/write records), has_timestamps, format.  Use as a context
    manager or call close(); breaking out of the iteration early is fine."""

    def __init__(self, path, fmt=None, lis_unit=SECTOR):
        if fmt is not None and fmt not in FORMATS:
            raise TraceError("unknown trace format %r (known: %s)"
                             % (fmt, ", ".join(FORMATS)))
        if lis_unit <= 0:
            raise TraceError("--lis-unit must be positive, not %d" % lis_unit)
        self.path = path
        self.lis_unit = lis_unit
        self.records = 0
        self.skipped = 0
        self.stream = open_stream(path)
        self.head = b""
        fmt = fmt or format_from_name(path)
        if fmt is None:
            self.head = self.stream.read(4096)
            fmt = sniff_format(self.head)
            if fmt is None:
                self.close()
                raise TraceError("%s: cannot tell the trace format from the "
                                 "name or content; pass --format %s"
                                 % (path, "|".join(FORMATS)))
        self.format = fmt
        self.has_timestamps = fmt != "lis"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if self.stream is not None:
            s, self.stream = self.stream, None
            s.close()

    def __iter__(self):
        gen = {"vscsi": self._vscsi, "lis": self._lis, "msr": self._msr}
        return gen[self.format]()

    def _chunks(self):
        if self.head:
            yield self.head
            self.head = b""
        while self.stream is not None:
            data = self.stream.read(CHUNK)
            if not data:
                return
            yield data

    def _lines(self):
        rest = b""
        for data in self._chunks():
            data = rest + data
            lines = data.split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest

    def _vscsi(self):
        buf = b""
        pos = 0  # byte offset of buf[0] in the decompressed trace
        rec = None
        for data in self._chunks():
            buf += data
            if rec is None:
                rec = self._vscsi_version(buf)
                if rec is None:
                    continue
            n = len(buf) // rec.size * rec.size
            for fields in rec.iter_unpack(memoryview(buf)[:n]):
                self.records += 1
                r = self._vscsi_request(rec, fields, pos)
                pos += rec.size
                if r is None:
                    self.skipped += 1
                else:
                    yield r
            buf = buf[n:]
        if buf:
            raise TraceError("%s: truncated vscsi record at byte %d (%d of %d bytes)"
                             % (self.path, pos, len(buf),
                                rec.size if rec else V1.size))

    def _vscsi_version(self, buf):
        if len(buf) >= V2.size and buf[3] == 2:
            return V2
        if len(buf) >= V1.size:
            if buf[15] == 1:
                return V1
            raise TraceError("%s: not a vscsi trace (version byte %d at offset 15, "
                             "want 1 or 2)" % (self.path, buf[15]))
        return None

    def _vscsi_request(self, rec, f, pos):
        if rec is V1:
            _sn, length, _nsg, cmd, ver, lbn, ts = f
        else:
            cmd, ver, _sn, length, _nsg, lbn, ts, _rt = f
        if ver >> 8 != (1 if rec is V1 else 2):
            raise TraceError("%s: vscsi record at byte %d has version 0x%x, "
                             "the file started with version %d"
                             % (self.path, pos, ver, 1 if rec is V1 else 2))
        if cmd in READ_CMDS:
            op = "R"
        elif cmd in WRITE_CMDS:
            op = "W"
        else:
            return None
        if length == 0:
            return None
        return Request(op, lbn * SECTOR, length, ts)

    def _lis(self):
        unit = self.lis_unit
        for no, line in enumerate(self._lines(), 1):
            parts = line.split()
            if not parts or parts[0].startswith(b"#"):
                continue
            self.records += 1
            try:
                if len(parts) < 2:
                    raise ValueError
                start, n = int(parts[0]), int(parts[1])
                if start < 0 or n < 0:
                    raise ValueError
            except ValueError:
                raise TraceError("%s: line %d: want 'start_block n_blocks ignore "
                                 "req_no', got %r"
                                 % (self.path, no, line[:80].decode("ascii", "replace")))
            if n == 0:
                self.skipped += 1
                continue
            yield Request("R", start * unit, n * unit, None)

    def _msr(self):
        for no, line in enumerate(self._lines(), 1):
            line = line.strip()
            if not line:
                continue
            f = line.split(b",")
            if no == 1 and not f[0].strip().isdigit():
                continue  # header
            self.records += 1
            try:
                if len(f) < 6:
                    raise ValueError("want 7 fields, got %d" % len(f))
                ts = int(f[0])
                typ = f[3].strip().lower()
                off, size = int(f[4]), int(f[5])
                if off < 0 or size < 0 or ts < 0:
                    raise ValueError("negative number")
                if typ == b"read":
                    op = "R"
                elif typ == b"write":
                    op = "W"
                else:
                    raise ValueError("Type must be Read or Write")
            except ValueError as e:
                raise TraceError("%s: line %d: %s: %r"
                                 % (self.path, no, e,
                                    line[:80].decode("ascii", "replace")))
            if size == 0:
                self.skipped += 1
                continue
            yield Request(op, off, size, ts // 10)
