# gRPC C-core (Debian python3-grpcio) as an xDS client: unary calls with raw bytes (no codegen) to
# xds:/// targets, reporting which backend answered each. The bootstrap is the file named by
# GRPC_XDS_BOOTSTRAP (read by C-core itself). argv[1] is a JSON plan:
#   { "deadlineS": 3, "phases": [ [ { "target": "xds:///svc:8080", "method": "/x.Y/Z", "n": 400, "deadlineS": 1 } ], ... ] }
# (a set's optional deadlineS overrides the plan's)
# For each phase it runs its call sets in order and prints one JSON line
#   { "phase": i, "results": [ { "counts": { "<backend>": n }, "errors": { "<message>": n } } ] }
# "xdsCredentials": true makes the channels take the Clusters' TLS contexts (xds_channel_credentials,
# with the bootstrap's certificate providers; insecure only as the fallback for a Cluster without one).
# Before every phase but the first it waits for a line on stdin. It exits after the last phase or
# when stdin closes.
import json
import sys

import grpc
import grpc.experimental

plan = json.loads(sys.argv[1])
channels = {}


def channel(target):
    if target not in channels:
        if plan.get("xdsCredentials"):
            creds = grpc.xds_channel_credentials(grpc.experimental.insecure_channel_credentials())
            channels[target] = grpc.secure_channel(target, creds)
        else:
            channels[target] = grpc.insecure_channel(target)
    return channels[target]


def run_set(s):
    call = channel(s["target"]).unary_unary(s["method"], request_serializer=None, response_deserializer=None)
    counts, errors = {}, {}
    for i in range(s["n"]):
        try:
            # the first call waits for the configuration (the channel resolves through xDS)
            backend = call(b"", timeout=s.get("deadlineS", plan.get("deadlineS", 3)), wait_for_ready=i == 0).decode()
            counts[backend] = counts.get(backend, 0) + 1
        except grpc.RpcError as e:
            key = f"{e.code().name}: {e.details()}"
            errors[key] = errors.get(key, 0) + 1
    return {"counts": counts, "errors": errors}


def main():
    for phase, sets in enumerate(plan["phases"]):
        if phase > 0 and sys.stdin.readline() == "":
            return
        results = [run_set(s) for s in sets]
        sys.stdout.write(json.dumps({"phase": phase, "results": results}) + "\n")
        sys.stdout.flush()
    for c in channels.values():
        c.close()


main()
