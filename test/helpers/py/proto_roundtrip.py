# Encodes and decodes the project's messages with Python protobuf (the reference implementation's
# runtime, Debian's python3-protobuf), for the field-number conformance test. Reads one JSON object
# per line on stdin: {"op": "encode", "type": "X509SVIDResponse", "json": {...}} answers the binary
# form in base64; {"op": "decode", "type": ..., "b64": "..."} answers the message in protobuf's JSON
# mapping (bytes base64, int64 as strings, field names in lowerCamelCase). One JSON answer per line.
import base64
import json
import sys

from google.protobuf import json_format

import workload_pb2
from istio import ca_pb2
from linkerd import identity_pb2

MODULES = [workload_pb2, ca_pb2, identity_pb2]


def message_class(name):
    for m in MODULES:
        cls = getattr(m, name, None)
        if cls is not None:
            return cls
    raise KeyError(name)


for line in sys.stdin:
    req = json.loads(line)
    cls = message_class(req["type"])
    try:
        if req["op"] == "encode":
            msg = json_format.ParseDict(req["json"], cls())
            out = {"b64": base64.b64encode(msg.SerializeToString()).decode()}
        else:
            msg = cls()
            msg.ParseFromString(base64.b64decode(req["b64"]))
            out = {"json": json_format.MessageToDict(msg)}
    except Exception as e:  # reported to the test, which fails with it
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)
