"""grpc_backend: replay through a proxy's gRPC VolumeService.

What it is for: Read and Write calls issued asynchronously (grpc futures);
completions are handed to the replay thread through a queue, so the engine
keeps up to its queue depth in flight from one thread.  Writes carry the
op's request id, so a retry of the same op is recognisable by the proxy.

How it fails: open() / volume_size() raise ReplayError for an unreachable
endpoint (with its address), an unknown volume, or any other GetVolume
status.  A failed Read/Write is returned by wait() as an error string
"CODE: details" with retryable=True for UNAVAILABLE and DEADLINE_EXCEEDED;
a read that returns the wrong number of bytes is an error too.
"""

import queue

from . import ReplayError, stubs

MAX_MSG = 64 << 20
CHANNEL_OPTIONS = [("grpc.max_send_message_length", MAX_MSG),
                   ("grpc.max_receive_message_length", MAX_MSG),
                   ("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


class GrpcBackend:
    """VolumeService client for one volume at endpoint "host:port".
    timeout: seconds per call."""

    name = "grpc"

    def __init__(self, endpoint, volume, timeout=30.0):
        import grpc
        self.grpc = grpc
        self.pb, self.pb_grpc = stubs.load()
        self.endpoint = endpoint
        self.volume = volume
        self.timeout = timeout
        self.retry_codes = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.channel = grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
        self.stub = self.pb_grpc.VolumeServiceStub(self.channel)
        self.done = queue.Queue()

    def volume_size(self):
        """The volume's size in bytes (GetVolume)."""
        sc = self.grpc.StatusCode
        try:
            resp = self.stub.GetVolume(self.pb.GetVolumeRequest(name=self.volume),
                                       timeout=min(self.timeout, 15.0))
        except self.grpc.RpcError as e:
            code = e.code()
            if code == sc.UNAVAILABLE:
                raise ReplayError("endpoint %s unreachable: %s" % (self.endpoint, e.details()))
            if code == sc.DEADLINE_EXCEEDED:
                raise ReplayError("endpoint %s did not answer GetVolume in time"
                                  % self.endpoint)
            if code == sc.NOT_FOUND:
                raise ReplayError("unknown volume %r at %s: %s"
                                  % (self.volume, self.endpoint, e.details()))
            raise ReplayError("GetVolume %r at %s failed: %s: %s"
                              % (self.volume, self.endpoint, code.name, e.details()))
        return resp.volume.size_bytes

    def submit(self, op):
        if op.kind == "R":
            req = self.pb.ReadRequest(volume=self.volume, offset_bytes=op.offset,
                                      length_bytes=op.length)
            fut = self.stub.Read.future(req, timeout=self.timeout)
        else:
            req = self.pb.WriteRequest(volume=self.volume, offset_bytes=op.offset,
                                       data=op.data, request_id=op.rid)
            fut = self.stub.Write.future(req, timeout=self.timeout)
        fut.add_done_callback(lambda f, op=op: self.done.put((op, f)))

    def _outcome(self, op, fut):
        try:
            resp = fut.result()
        except self.grpc.RpcError as e:
            return (op, None, "%s: %s" % (e.code().name, e.details()),
                    e.code() in self.retry_codes)
        if op.kind == "W":
            return (op, None, None, False)
        if len(resp.data) != op.length:
            return (op, None, "short read: %d bytes, asked %d" % (len(resp.data), op.length),
                    False)
        return (op, resp.data, None, False)

    def wait(self, timeout):
        """Completed ops as (op, data, error, retryable), waiting up to
        timeout seconds for the first one."""
        try:
            first = self.done.get(timeout=timeout)
        except queue.Empty:
            return []
        out = [self._outcome(*first)]
        while True:
            try:
                out.append(self._outcome(*self.done.get_nowait()))
            except queue.Empty:
                return out

    def close(self):
        self.channel.close()
