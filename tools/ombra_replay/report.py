"""report: replay statistics, the progress display and the final report.

What it is for: Stats collects per-request outcomes (latencies in seconds
per op kind, bytes, errors); Progress draws a bar on a terminal (or prints
a line every few seconds when stderr is not a terminal); build() turns
Stats and the verification book into one dict (the --json output) and
text() formats that dict for people.

How it fails: it does not; an empty latency list reports null
percentiles.
"""

import math
import sys
import time

KEEP_ERRORS = 10


def percentile(sorted_vals, p):
    """The p-th percentile (0..100, nearest rank) of an ascending list, or
    None for an empty one."""
    if not sorted_vals:
        return None
    n = len(sorted_vals)
    k = max(0, min(n - 1, math.ceil(p / 100.0 * n) - 1))
    return sorted_vals[k]


def latency_summary(lat_s):
    """{count, p50, p95, p99, max} in milliseconds for latencies in seconds."""
    v = sorted(lat_s)

    def ms(x):
        return None if x is None else round(x * 1000.0, 3)
    return {"count": len(v), "p50": ms(percentile(v, 50)), "p95": ms(percentile(v, 95)),
            "p99": ms(percentile(v, 99)), "max": ms(v[-1] if v else None)}


class Stats:
    """Outcomes of the replayed requests (only the main thread touches it)."""

    def __init__(self):
        self.lat = {"R": [], "W": []}
        self.bytes = {"R": 0, "W": 0}
        self.skipped = 0
        self.retries = 0
        self.errors = 0
        self.first_errors = []
        self.aborted = None
        self.t_start = None
        self.t_end = None

    def done(self, kind, length, latency_s):
        self.lat[kind].append(latency_s)
        self.bytes[kind] += length

    def error(self, msg):
        self.errors += 1
        if len(self.first_errors) < KEEP_ERRORS:
            self.first_errors.append(msg)

    @property
    def completed(self):
        return len(self.lat["R"]) + len(self.lat["W"])

    def duration(self):
        if self.t_start is None:
            return 0.0
        return (self.t_end or time.monotonic()) - self.t_start


class Progress:
    """Progress on stderr: a redrawn bar on a terminal, otherwise one line
    every `every` seconds.  total: requests expected, or None."""

    def __init__(self, total, enabled=True, stream=None, every=5.0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.total = total
        self.every = 0.2 if self.tty else every
        self.last = 0.0
        self.drawn = False

    def update(self, stats, force=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        n = stats.completed + stats.errors
        d = stats.duration()
        rate = n / d if d > 0 else 0.0
        mb = (stats.bytes["R"] + stats.bytes["W"]) / 1e6 / d if d > 0 else 0.0
        tail = "%d req  %.0f ops/s  %.1f MB/s  %d err" % (n, rate, mb, stats.errors)
        if self.tty:
            bar = ""
            if self.total:
                frac = min(1.0, n / float(self.total))
                w = 30
                fill = int(frac * w)
                bar = "[%s%s] %3d%% " % ("#" * fill, "." * (w - fill), int(frac * 100))
            self.stream.write("\r\x1b[K" + bar + tail)
            self.drawn = True
        else:
            of = (" of %d" % self.total) if self.total else ""
            self.stream.write("ombra-replay: %.0fs: %s%s\n" % (d, tail, of))
        self.stream.flush()

    def finish(self, stats):
        if not self.enabled:
            return
        self.update(stats, force=True)
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def build(stats, book, meta):
    """The report as a dict: meta (trace, volume, settings) plus requests,
    bytes, duration_s, throughput, latency_ms, verification, errors, ok."""
    d = stats.duration()
    n = stats.completed
    total_bytes = stats.bytes["R"] + stats.bytes["W"]
    rep = dict(meta)
    rep.update({
        "requests": {"total": n, "reads": len(stats.lat["R"]),
                     "writes": len(stats.lat["W"]), "failed": stats.errors,
                     "skipped": stats.skipped, "retries": stats.retries},
        "bytes": {"read": stats.bytes["R"], "written": stats.bytes["W"]},
        "duration_s": round(d, 3),
        "throughput": {"ops_per_s": round(n / d, 1) if d > 0 else None,
                       "mb_per_s": round(total_bytes / 1e6 / d, 2) if d > 0 else None},
        "latency_ms": {"read": latency_summary(stats.lat["R"]),
                       "write": latency_summary(stats.lat["W"])},
        "verification": {"blocks_checked": book.checked,
                         "blocks_unknown": book.unknown,
                         "failures": book.failures,
                         "first_failures": [f._asdict() for f in book.first_failures]},
        "errors": {"count": stats.errors, "first": list(stats.first_errors)},
        "aborted": stats.aborted,
    })
    rep["ok"] = book.failures == 0 and stats.errors == 0 and stats.aborted is None
    return rep


def _ms(x):
    return "-" if x is None else "%.3f" % x


def text(rep):
    """The report for people, several lines, no trailing newline."""
    r = rep["requests"]
    lines = [
        "ombra-replay: %s (%s) -> volume %s via %s at %s"
        % (rep["trace"], rep["format"], rep["volume"], rep["via"], rep["endpoint"]),
        "  volume size      %d bytes, queue depth %d, speed %s, seed %d"
        % (rep["volume_size"], rep["queue_depth"], rep["speed"], rep["seed"]),
        "  requests         %d (%d reads, %d writes), %d failed, %d skipped, %d retries"
        % (r["total"], r["reads"], r["writes"], r["failed"], r["skipped"], r["retries"]),
        "  bytes            %d read, %d written"
        % (rep["bytes"]["read"], rep["bytes"]["written"]),
        "  duration         %.3f s" % rep["duration_s"],
        "  throughput       %s ops/s, %s MB/s"
        % (rep["throughput"]["ops_per_s"], rep["throughput"]["mb_per_s"]),
        "  latency (ms)       count      p50      p95      p99      max",
    ]
    for name in ("read", "write"):
        s = rep["latency_ms"][name]
        lines.append("    %-6s     %10d %8s %8s %8s %8s"
                     % (name, s["count"], _ms(s["p50"]), _ms(s["p95"]),
                        _ms(s["p99"]), _ms(s["max"])))
    v = rep["verification"]
    lines.append("  verification     %d blocks checked, %d unknown, %d failures"
                 % (v["blocks_checked"], v["blocks_unknown"], v["failures"]))
    for f in v["first_failures"]:
        lines.append("    block %d: expected %s, got %s" % (f["block"], f["expected"], f["got"]))
    rb = rep.get("read_back")
    if rb:
        lines.append("  read-back        %d written blocks read in %.3f s (%s MB/s), %d failures"
                     % (rb["blocks"], rb["duration_s"], rb["mb_per_s"], rb["failures"]))
    e = rep["errors"]
    lines.append("  errors           %d" % e["count"])
    for m in e["first"]:
        lines.append("    %s" % m)
    if rep["aborted"]:
        lines.append("  ABORTED: %s" % rep["aborted"])
    lines.append("  result           %s" % ("OK" if rep["ok"] else "FAILED"))
    return "\n".join(lines)
