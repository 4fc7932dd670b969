# A SPIFFE Workload API server on the second stack (gRPC C-core through Debian's python3-grpcio,
# messages by the workload_pb2 that grpc_tools.protoc compiles from the project's .proto), scripted
# by a TS test over stdin. It behaves as a SPIRE agent does where the tests need it to:
#   - a call without exactly one `workload.spiffe.io: true` is refused with INVALID_ARGUMENT
#     "security header missing from request" (spire: pkg/agent/endpoints/middleware.go);
#   - a new stream gets the current state at once, and every state change is pushed to every open
#     stream (a SPIRE agent sends a message on each cache change).
#
# Usage: workload_server.py LISTEN   (unix:/path/to/sock or 127.0.0.1:0)
# Prints one JSON object per line on stdout: {"event": "listening", "port": N}, then
# {"event": "call", "n": k, "method": ..., "metadata": [[key, value], ...], "outcome": ...} per call,
# {"event": "cancelled", "n": k} when a client cancels, and {"event": "ack", "id": ...} per command.
# Commands, one JSON object per line on stdin (each may carry an "id", echoed in its ack):
#   {"op": "state", "svids": [{"spiffeId", "x509Svid", "x509SvidKey", "bundle", "hint"}], "federated": {"spiffe://td": b64}}
#       bytes fields base64; the new state is sent to every open stream and to each new one.
#   {"op": "raw", "b64": ...}     send these bytes as a message to every open stream (garbage tests).
#   {"op": "clear"}               no state: new streams wait (a delayed first message).
#   {"op": "fail", "code": "UNAVAILABLE", "details": "...", "calls": N}
#       the next N calls (default 1; -1: every call until "heal") end at once with that status.
#   {"op": "heal"}                stop failing calls.
#   {"op": "abort", "code": ..., "details": ...}   end every open stream with that status now.
#   {"op": "end"}                 end every open stream with OK (the server ended the stream).
import base64
import json
import queue
import sys
import threading
from concurrent import futures

import grpc

import workload_pb2

HEADER = "workload.spiffe.io"
lock = threading.Lock()
out_lock = threading.Lock()
state = None  # serialized X509SVIDResponse, or None
streams = {}  # n -> queue of ("msg", bytes) | ("status", code, details) | ("end",)
failing = {"left": 0, "code": None, "details": ""}
calls = [0]


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def response_from(cmd):
    msg = workload_pb2.X509SVIDResponse()
    for s in cmd.get("svids", []):
        svid = msg.svids.add()
        svid.spiffe_id = s.get("spiffeId", "")
        svid.x509_svid = base64.b64decode(s.get("x509Svid", ""))
        svid.x509_svid_key = base64.b64decode(s.get("x509SvidKey", ""))
        svid.bundle = base64.b64decode(s.get("bundle", ""))
        svid.hint = s.get("hint", "")
    for td, b64 in cmd.get("federated", {}).items():
        msg.federated_bundles[td] = base64.b64decode(b64)
    return msg.SerializeToString()


def fetch_x509_svid(request, context):
    with lock:
        calls[0] += 1
        n = calls[0]
    metadata = [[k, v if isinstance(v, str) else base64.b64encode(v).decode()] for k, v in context.invocation_metadata()]
    values = [v for k, v in metadata if k == HEADER]
    if values != ["true"]:
        emit({"event": "call", "n": n, "metadata": metadata, "outcome": "INVALID_ARGUMENT"})
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")
    with lock:
        if failing["left"] != 0:
            if failing["left"] > 0:
                failing["left"] -= 1
            code, details = failing["code"], failing["details"]
        else:
            code = None
        q = queue.Queue()
        if code is None:
            streams[n] = q
            if state is not None:
                q.put(("msg", state))
    if code is not None:
        emit({"event": "call", "n": n, "metadata": metadata, "outcome": code})
        context.abort(getattr(grpc.StatusCode, code), details)
    emit({"event": "call", "n": n, "metadata": metadata, "outcome": "stream"})

    ended = []  # set when this side ends the stream (status, end): then the end is no cancellation

    def on_done():
        if context.is_active() or ended:
            return
        # Told here, not by the generator: once the RPC is cancelled, grpcio may never resume the
        # generator (it stops pulling), so a cancel right after a message would go unreported.
        emit({"event": "cancelled", "n": n})
        q.put(("cancelled",))

    context.add_callback(on_done)
    try:
        while True:
            item = q.get()
            if item[0] == "msg":
                yield item[1]
            elif item[0] == "status":
                ended.append(True)
                context.abort(getattr(grpc.StatusCode, item[1]), item[2])
            elif item[0] == "end":
                ended.append(True)
                return
            else:
                return
    finally:
        with lock:
            streams.pop(n, None)


def broadcast(item):
    with lock:
        for q in streams.values():
            q.put(item)


def handle(cmd):
    global state
    op = cmd["op"]
    if op == "state":
        data = response_from(cmd)
        with lock:
            state = data
        broadcast(("msg", data))
    elif op == "raw":
        broadcast(("msg", base64.b64decode(cmd["b64"])))
    elif op == "clear":
        with lock:
            state = None
    elif op == "fail":
        with lock:
            failing.update(left=cmd.get("calls", 1), code=cmd["code"], details=cmd.get("details", ""))
    elif op == "heal":
        with lock:
            failing.update(left=0, code=None)
    elif op == "abort":
        broadcast(("status", cmd["code"], cmd.get("details", "")))
    elif op == "end":
        broadcast(("end",))
    else:
        raise ValueError(f"unknown op {op}")


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    handler = grpc.method_handlers_generic_handler(
        "SpiffeWorkloadAPI",
        {
            "FetchX509SVID": grpc.unary_stream_rpc_method_handler(
                fetch_x509_svid,
                request_deserializer=workload_pb2.X509SVIDRequest.FromString,
                response_serializer=lambda b: b,  # states are serialized once; "raw" sends bytes as they are
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(sys.argv[1])
    server.start()
    emit({"event": "listening", "port": port})
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            handle(cmd)
            emit({"event": "ack", "id": cmd.get("id")})
        except Exception as e:  # reported to the test, which fails with it
            emit({"event": "ack", "id": cmd.get("id"), "error": f"{type(e).__name__}: {e}"})
    server.stop(0)


main()
