# The Linkerd messages (src/proto/linkerd/*.proto, compiled by grpc_tools.protoc) on Debian's Python
# protobuf, for the conformance test. One JSON request per line on stdin, one JSON answer per line:
#   {"op": "sample", "type": "<full name>", "variant": n}  a message with EVERY field set (each
#       oneof set to its member n modulo its width), as {"b64": ..., "plain": ...};
#   {"op": "decode", "type": ..., "b64": ...}  the message as {"plain": ...}.
# "plain" lists the fields present (ListFields) by their .proto names; 64-bit integers as strings,
# bytes in base64, maps as objects, so the TS side compares without any JSON mapping in between.
import base64
import json
import sys

from google.protobuf import symbol_database
from google.protobuf.descriptor import FieldDescriptor as F

from linkerd import destination_pb2, inbound_pb2, outbound_pb2  # noqa: F401 (registers the messages)

DB = symbol_database.Default()
LONGS = {F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_FIXED64, F.TYPE_SINT64, F.TYPE_SFIXED64}
MAX_DEPTH = 5


class Counter:
    n = 0

    def next(self):
        self.n += 1
        return self.n


def scalar(f, c):
    n = c.next()
    t = f.type
    if t == F.TYPE_STRING:
        return f"{f.name}-{n}"
    if t == F.TYPE_BYTES:
        return bytes([n % 256, 0, 255, 7])
    if t == F.TYPE_BOOL:
        return True
    if t in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return n + 0.5
    if t == F.TYPE_ENUM:
        values = f.enum_type.values
        return values[n % len(values)].number or values[-1].number
    if t == F.TYPE_FIXED64:
        return (0xFD00 << 48) + n  # beyond 2^53: proves the 64 bits survive
    if t == F.TYPE_FIXED32:
        return 0xC0A80000 + n  # above 2^31: proves it is unsigned
    return 100 * f.number + n


def fill(msg, variant, c, depth):
    chosen = {o.name: o.fields[variant % len(o.fields)].name for o in msg.DESCRIPTOR.oneofs}
    for f in msg.DESCRIPTOR.fields:
        if f.containing_oneof is not None and chosen[f.containing_oneof.name] != f.name:
            continue
        is_msg = f.type == F.TYPE_MESSAGE
        if is_msg and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name["value"]
            m = getattr(msg, f.name)
            key = f"k{c.next()}"
            if vf.type == F.TYPE_MESSAGE:
                fill(m[key], variant, c, depth + 1)
            else:
                m[key] = scalar(vf, c)
        elif f.label == F.LABEL_REPEATED:
            for _ in range(2):
                if is_msg:
                    if depth < MAX_DEPTH:
                        fill(getattr(msg, f.name).add(), variant + 1, c, depth + 1)
                else:
                    getattr(msg, f.name).append(scalar(f, c))
        elif is_msg:
            if depth < MAX_DEPTH:
                sub = getattr(msg, f.name)
                sub.SetInParent()
                fill(sub, variant, c, depth + 1)
        else:
            setattr(msg, f.name, scalar(f, c))


def plain_value(f, v):
    if f.type == F.TYPE_MESSAGE:
        return plain(v)
    if f.type == F.TYPE_BYTES:
        return base64.b64encode(v).decode()
    if f.type in LONGS:
        return str(v)
    return v


def plain(msg):
    out = {}
    for f, v in msg.ListFields():
        if f.type == F.TYPE_MESSAGE and f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name["value"]
            out[f.name] = {k: plain_value(vf, x) for k, x in v.items()}
        elif f.label == F.LABEL_REPEATED:
            out[f.name] = [plain_value(f, x) for x in v]
        else:
            out[f.name] = plain_value(f, v)
    return out


for line in sys.stdin:
    req = json.loads(line)
    try:
        cls = DB.GetSymbol(req["type"])
        if req["op"] == "sample":
            msg = cls()
            fill(msg, req.get("variant", 0), Counter(), 0)
            out = {"b64": base64.b64encode(msg.SerializeToString()).decode(), "plain": plain(msg)}
        else:
            msg = cls()
            msg.ParseFromString(base64.b64decode(req["b64"]))
            out = {"plain": plain(msg)}
    except Exception as e:  # reported to the test, which fails with it
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)
