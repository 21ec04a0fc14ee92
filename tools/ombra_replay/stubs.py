"""stubs: find the Python gRPC modules generated from proto/.

What it is for: the build generates volume_pb2 / volume_pb2_grpc (and the
modules they import) into BUILD/tools/gen with grpc_tools.protoc, and the
ombra-replay wrapper puts that directory on sys.path.  When the tool runs
some other way (from the source tree, or the build's stubs are missing),
load() generates them from the .proto files into a per-user cache
directory: $OMBRA_PROTO_DIR, else ../../proto next to this package.

How it fails: ReplayError saying where it looked when neither the modules
nor the .proto files are found, or with protoc's message when generation
fails.
"""

import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile

from . import ReplayError


def _proto_dir():
    env = os.environ.get("OMBRA_PROTO_DIR")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "proto"))


def _generate():
    protodir = _proto_dir()
    try:
        protos = sorted(os.path.join(protodir, p) for p in os.listdir(protodir)
                        if p.endswith(".proto"))
    except OSError:
        protos = []
    if not protos:
        raise ReplayError("gRPC stubs not found (no volume_pb2 on sys.path) and no "
                          ".proto files in %s to generate them from; build with make "
                          "or set OMBRA_PROTO_DIR" % protodir)
    gen = os.path.join(tempfile.gettempdir(), "ombra-replay-gen-%d" % os.getuid())
    stamp = os.path.join(gen, "volume_pb2_grpc.py")
    newest = max(os.path.getmtime(p) for p in protos)
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < newest:
        os.makedirs(gen, exist_ok=True)
        r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", protodir,
                            "--python_out=" + gen, "--grpc_python_out=" + gen] + protos,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise ReplayError("generating gRPC stubs from %s failed: %s"
                              % (protodir, r.stdout.decode("utf-8", "replace").strip()))
    sys.path.insert(0, gen)
    importlib.invalidate_caches()


def load():
    """(volume_pb2, volume_pb2_grpc), generating them first if needed."""
    if importlib.util.find_spec("volume_pb2_grpc") is None:
        _generate()
    try:
        return (importlib.import_module("volume_pb2"),
                importlib.import_module("volume_pb2_grpc"))
    except ImportError as e:
        raise ReplayError("cannot import the gRPC stubs: %s (is python3-grpcio "
                          "installed? use /usr/bin/python3)" % e)
