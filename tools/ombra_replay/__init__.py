"""ombra_replay: replay real block I/O traces against an Ombra volume.

What it is for: the library behind tools/ombra-replay.  Modules:
traces (trace readers: vscsi, ARC .lis, MSR CSV; .zst streaming),
mapping (trace requests onto a volume), content (per-block write
content and verification), engine (issue order, queue depth, speed,
retries), grpc_backend / nbd_backend (the two ways to reach a proxy),
report (statistics, progress, text and JSON report), stubs (finding the
Python gRPC stubs generated from proto/), cli (the command line).

How it fails: every module raises ReplayError (or a subclass) with a
message meant for the user; cli turns it into one line on stderr and
exit status 2 (usage) or 1 (everything else).
"""


class ReplayError(Exception):
    """A failure with a message for the user."""
