"""cli: the ombra-replay command line.

What it is for: parse the options, open the trace and the volume (gRPC
VolumeService or NBD on a proxy), run the engine and print the report
(text, or JSON with --json) on stdout; progress goes to stderr.

Exit status: 0 when every request succeeded and every verified block held
what the last acknowledged write put there; 1 for verification failures,
request errors, an aborted run, or a setup failure (unreadable trace,
unknown format, unknown volume, unreachable endpoint: one line on stderr
starting "ombra-replay:"); 2 for bad usage.
"""

import argparse
import json
import os
import re
import signal
import sys

from . import ReplayError, report, traces
from .content import BlockBook
from .engine import Engine, Op
from .mapping import check_volume_size, map_request
from .nbd_backend import split_endpoint

EPILOG = """\
examples:
  ombra-replay --trace cloudPhysicsIO.vscsi.zst --endpoint 127.0.0.1:7300 \\
      --volume vol1 --limit 5000
  ombra-replay --trace P2.lis.zst --via nbd --nbd-endpoint 127.0.0.1:10809 \\
      --volume vol1 --json
Exit status 0 only with 0 verification failures and 0 errors.
See docs/replay.md."""


def parse_speed(s):
    """None for "max", else the factor of "1x", "10x", "2.5x" (or "10")."""
    if s == "max":
        return None
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)x?", s)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError("want max, 1x or Nx (N > 0), not %r" % s)
    return float(m.group(1))


def positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % s)
    if v <= 0:
        raise argparse.ArgumentTypeError("must be positive: %r" % s)
    return v


def non_negative_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % s)
    if v < 0:
        raise argparse.ArgumentTypeError("must not be negative: %r" % s)
    return v


def parser():
    p = argparse.ArgumentParser(
        prog="ombra-replay",
        description="Replay a real block I/O trace against an Ombra volume through a "
        "proxy (gRPC VolumeService or NBD), verifying every block read against the "
        "last acknowledged write, and report throughput and latency.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", required=True, metavar="FILE",
                   help="trace file (.zst is decompressed on the fly)")
    p.add_argument("--format", choices=traces.FORMATS,
                   help="trace format (default: from the file name, else the content)")
    p.add_argument("--lis-unit", type=positive_int, default=traces.SECTOR, metavar="BYTES",
                   help="bytes per block of a .lis trace (default 512; 4096 for OLTP)")
    p.add_argument("--endpoint", metavar="HOST:PORT",
                   help="proxy gRPC endpoint (required with --via grpc)")
    p.add_argument("--volume", required=True, metavar="NAME", help="volume (NBD export) name")
    p.add_argument("--via", choices=("grpc", "nbd"), default="grpc",
                   help="how to reach the volume (default grpc)")
    p.add_argument("--nbd-endpoint", metavar="HOST:PORT",
                   help="proxy NBD endpoint (default: --endpoint's host, port 10809)")
    p.add_argument("--speed", type=parse_speed, default=None, metavar="max|1x|Nx",
                   help="max: as fast as the queue depth allows (default); 1x: trace "
                   "time; Nx: N times faster")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="replay only the first N requests")
    p.add_argument("--skip", type=positive_int, metavar="N",
                   help="start after the first N requests of the trace (they are read "
                   "and dropped; --limit counts from there)")
    p.add_argument("--queue-depth", type=positive_int, default=16, metavar="N",
                   help="requests in flight at most (default 16)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--seed", type=int, metavar="N",
                   help="seed stored in written blocks (default: random, printed)")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    p.add_argument("--expect-zeros", action="store_true",
                   help="the volume is fresh: never-written blocks must read as zeros")
    p.add_argument("--save-state", metavar="FILE",
                   help="after the replay, save what every block should hold (JSON) for "
                   "a later run's --load-state")
    p.add_argument("--load-state", metavar="FILE",
                   help="the volume holds what an earlier run saved with --save-state: "
                   "check reads of blocks this run has not written against it")
    p.add_argument("--read-back", action="store_true",
                   help="after the replay, read every block the run wrote and verify it "
                   "(reported separately as read_back)")
    p.add_argument("--timeout", type=non_negative_float, default=30.0, metavar="S",
                   help="seconds per gRPC request (default 30)")
    p.add_argument("--retry-timeout", type=non_negative_float, default=0.0, metavar="S",
                   help="retry gRPC requests failing UNAVAILABLE/DEADLINE_EXCEEDED for up "
                   "to S seconds, same request id (default 0: no retries)")
    p.add_argument("--max-errors", type=positive_int, default=100, metavar="N",
                   help="stop after N failed requests (default 100)")
    return p


def open_backend(args):
    """(backend, endpoint shown in the report)."""
    if args.via == "grpc":
        if not args.endpoint:
            raise ReplayError("--via grpc needs --endpoint HOST:PORT")
        split_endpoint(args.endpoint)
        from .grpc_backend import GrpcBackend
        return GrpcBackend(args.endpoint, args.volume, timeout=args.timeout or None), \
            args.endpoint
    ep = args.nbd_endpoint
    if not ep:
        if not args.endpoint:
            raise ReplayError("--via nbd needs --nbd-endpoint HOST:PORT (or --endpoint)")
        ep = "%s:10809" % split_endpoint(args.endpoint)[0]
    from .nbd_backend import NbdBackend
    return NbdBackend(ep, args.volume), ep


def mapped_ops(reader, size, limit, stats, skip=None):
    """Op for each trace request, mapped onto a volume of `size` bytes;
    drops the first `skip` requests, then stops after `limit` ops.  Both
    count the requests that map to at least one block."""
    n = 0
    skip = skip or 0
    for r in reader:
        if limit is not None and n >= limit:
            return
        m = map_request(r.offset, r.length, size)
        if m is None:
            if not skip:
                stats.skipped += 1
            continue
        if skip:
            skip -= 1
            continue
        n += 1
        yield Op(r.op, m[0], m[1], r.ts_us)


def replay(args):
    """Run one replay; returns the report dict."""
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    with traces.Reader(args.trace, args.format, args.lis_unit) as reader:
        if args.speed is not None and not reader.has_timestamps:
            raise ReplayError("%s: %s traces have no timestamps; use --speed max"
                              % (args.trace, reader.format))
        backend, endpoint = open_backend(args)
        try:
            size = backend.volume_size()
            check_volume_size(size)
            book = BlockBook(seed, expect_zeros=args.expect_zeros)
            if args.load_state:
                try:
                    book.load_state(args.load_state)
                except ValueError as e:
                    raise ReplayError("--load-state %s" % e) from None
            stats = report.Stats()
            prog = report.Progress(args.limit, enabled=not args.no_progress)
            eng = Engine(backend, book, stats, queue_depth=args.queue_depth,
                         speed=args.speed,
                         retry_timeout=args.retry_timeout if args.via == "grpc" else 0.0,
                         max_errors=args.max_errors, progress=prog)
            eng.run(mapped_ops(reader, size, args.limit, stats, args.skip))
            stats.skipped += reader.skipped
            back = read_back(args, backend, book, stats) if args.read_back else None
            if args.save_state:
                try:
                    book.save_state(args.save_state)
                except OSError as e:
                    raise ReplayError("--save-state %s: %s" % (args.save_state, e)) from None
        finally:
            backend.close()
        meta = {"trace": args.trace, "format": reader.format, "via": args.via,
                "endpoint": endpoint, "volume": args.volume, "volume_size": size,
                "queue_depth": args.queue_depth,
                "speed": "max" if args.speed is None else "%gx" % args.speed,
                "seed": seed, "limit": args.limit, "skip": args.skip or 0,
                "read_back": back}
        return report.build(stats, book, meta)


def read_back(args, backend, book, stats):
    """Read every block the replay wrote and verify it with the same book;
    errors are added to stats.  Returns {blocks, failures, duration_s,
    mb_per_s} for the report."""
    failures0 = book.failures
    rb = report.Stats()
    ranges = book.written_ranges()
    Engine(backend, book, rb, queue_depth=args.queue_depth, max_errors=args.max_errors,
           retry_timeout=args.retry_timeout if args.via == "grpc" else 0.0).run(
        Op("R", start, length) for start, length in ranges)
    for m in rb.first_errors:
        stats.error("read-back: " + m)
    stats.errors += rb.errors - len(rb.first_errors)
    if rb.aborted and stats.aborted is None:
        stats.aborted = "read-back: " + rb.aborted
    d = rb.duration()
    return {"blocks": sum(ln for _s, ln in ranges) // 4096,
            "failures": book.failures - failures0,
            "duration_s": round(d, 3),
            "mb_per_s": round(rb.bytes["R"] / 1e6 / d, 2) if d > 0 else None}


def main(argv):
    args = parser().parse_args(argv)
    # A closed pipe (ombra-replay ... | head) ends quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        rep = replay(args)
    except ReplayError as e:
        sys.stderr.write("ombra-replay: %s\n" % e)
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("ombra-replay: interrupted\n")
        return 130
    if args.json:
        json.dump(rep, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.text(rep) + "\n")
    sys.stdout.flush()
    return 0 if rep["ok"] else 1
