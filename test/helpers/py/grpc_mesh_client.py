"""A gRPC C-core client (Debian python3-grpcio) calling a mesh grpc-js server: JSON messages, no
.proto. Reads {port, root, key, chain, name} on stdin; prints what each call gave as one JSON line."""
import json
import sys

import grpc

cfg = json.load(sys.stdin)
creds = grpc.ssl_channel_credentials(
    root_certificates=cfg["root"].encode(),
    private_key=cfg["key"].encode() if cfg.get("key") else None,
    certificate_chain=cfg["chain"].encode() if cfg.get("chain") else None,
)
channel = grpc.secure_channel(
    "127.0.0.1:%d" % cfg["port"], creds, options=[("grpc.ssl_target_name_override", cfg["name"])]
)
ser = lambda o: json.dumps(o).encode()
de = lambda b: json.loads(b)


def outcome(fn):
    try:
        return {"ok": fn()}
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details()}


charge = channel.unary_unary("/demo.Pay/Charge", request_serializer=ser, response_deserializer=de)
refund = channel.unary_unary("/demo.Pay/Refund", request_serializer=ser, response_deserializer=de)
watch = channel.unary_stream("/demo.Pay/Watch", request_serializer=ser, response_deserializer=de)
out = {
    "charge": outcome(lambda: charge({"n": 1}, timeout=5)),
    "refund": outcome(lambda: refund({"n": 2}, timeout=5)),
    "watch": outcome(lambda: list(watch({"count": 2}, timeout=5))),
    "charge_again": outcome(lambda: charge({"n": 3}, timeout=5)),
}
print(json.dumps(out))
