# A SPIFFE Workload API server for the JWT profile on the second stack (gRPC C-core, Python
# protobuf, python3-cryptography), scripted by the test over stdin/stdout. It signs JWT-SVIDs
# itself (ES256/384/512, RS256/384/512, PS256/384/512; keys generated in memory, never written),
# answers FetchJWTSVID (recording the audiences and spiffe_id asked), streams FetchJWTBundles as
# the test says, and serves one scripted FetchX509SVID stream so a mesh can take its X.509 identity
# from the same socket. Every call without `workload.spiffe.io: true` is refused with
# INVALID_ARGUMENT, as the spec (and SPIRE) do.
#
# Usage: jwt_workload_server.py unix:///path/to.sock
# stdin: one JSON command per line, {"id": n, "op": ..., ...}; stdout: {"id": n, ...} per command,
# and first {"ready": true}.
import base64
import json
import queue
import sys
import threading
import time
from concurrent import futures

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import workload_pb2
import workload_pb2_grpc

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
CURVES = {"ES256": (ec.SECP256R1, "P-256", 32), "ES384": (ec.SECP384R1, "P-384", 48), "ES512": (ec.SECP521R1, "P-521", 66)}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_bytes(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


class Key:
    def __init__(self, kid, alg, bits=2048):
        self.kid, self.alg = kid, alg
        if alg.startswith("ES"):
            curve, self.crv, self.size = CURVES[alg]
            self.private = ec.generate_private_key(curve())
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=bits)

    def jwk(self, use=None):
        pub = self.private.public_key().public_numbers()
        if self.alg.startswith("ES"):
            out = {"kty": "EC", "kid": self.kid, "crv": self.crv, "x": b64url(int_bytes(pub.x, self.size)), "y": b64url(int_bytes(pub.y, self.size))}
        else:
            out = {"kty": "RSA", "kid": self.kid, "n": b64url(int_bytes(pub.n)), "e": b64url(int_bytes(pub.e))}
        if use is not None:
            out["use"] = use
        return out

    def sign(self, data):
        h = HASHES[self.alg[2:]]()
        if self.alg.startswith("ES"):
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(h)))
            return int_bytes(r, self.size) + int_bytes(s, self.size)
        if self.alg.startswith("PS"):
            return self.private.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        return self.private.sign(data, padding.PKCS1v15(), h)


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys = {}  # trust domain -> {kid: Key}
        self.signer = None  # (td, kid) FetchJWTSVID signs with
        self.ttl = 300
        self.svid_override = None  # {"spiffe_id": ..., "claims": {...}} what FetchJWTSVID returns instead
        self.fetch_fail = None  # (code, message) for FetchJWTSVID
        self.jwt_calls = []
        self.bundle_calls = 0
        self.bundle_streams = []  # queues of open FetchJWTBundles streams
        self.x509 = None  # X509SVIDResponse to stream, or None
        self.x509_streams = []
        self.last_push = None  # the last message pushed: a new bundle stream starts with it
        self.greet = True  # whether a new bundle stream gets that state at once (as an agent does)

    def key(self, td, kid):
        return self.keys[td][kid]


STATE = State()


def has_header(context):
    values = [v for k, v in context.invocation_metadata() if k == "workload.spiffe.io"]
    return values == ["true"]


def refuse_without_header(context):
    if not has_header(context):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")


def sign_token(key, claims, header=None):
    head = header if header is not None else {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    signing_input = b64url(json.dumps(head, separators=(",", ":")).encode()) + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
    return signing_input + "." + b64url(key.sign(signing_input.encode()))


class Servicer(workload_pb2_grpc.SpiffeWorkloadAPIServicer):
    def FetchJWTSVID(self, request, context):
        with STATE.lock:
            STATE.jwt_calls.append({"audience": list(request.audience), "spiffe_id": request.spiffe_id, "header": has_header(context)})
        refuse_without_header(context)
        if not request.audience:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audience must be specified")
        with STATE.lock:
            fail, override, signer, ttl = STATE.fetch_fail, STATE.svid_override, STATE.signer, STATE.ttl
        if fail:
            context.abort(getattr(grpc.StatusCode, fail[0]), fail[1])
        now = int(time.time())
        sub = request.spiffe_id or "spiffe://example.org/workload"
        claims = {"sub": sub, "aud": list(request.audience), "iat": now, "exp": now + ttl}
        if override:
            claims.update(override.get("claims", {}))
            sub = override.get("spiffe_id", sub)
        token = sign_token(STATE.key(*signer), claims)
        return workload_pb2.JWTSVIDResponse(svids=[workload_pb2.JWTSVID(spiffe_id=sub, svid=token)])

    def FetchJWTBundles(self, request, context):
        refuse_without_header(context)
        q = queue.Queue()
        with STATE.lock:
            STATE.bundle_calls += 1
            STATE.bundle_streams.append(q)
            last = STATE.last_push if STATE.greet else None
        if last is not None:
            q.put(("msg", last))
        try:
            while context.is_active():
                try:
                    item = q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item[0] == "msg":
                    yield item[1]
                else:
                    context.abort(getattr(grpc.StatusCode, item[1]), item[2])
        finally:
            with STATE.lock:
                if q in STATE.bundle_streams:
                    STATE.bundle_streams.remove(q)

    def FetchX509SVID(self, request, context):
        refuse_without_header(context)
        q = queue.Queue()
        with STATE.lock:
            STATE.x509_streams.append(q)
            if STATE.x509 is not None:
                q.put(STATE.x509)
        try:
            while context.is_active():
                try:
                    yield q.get(timeout=0.1)
                except queue.Empty:
                    continue
        finally:
            with STATE.lock:
                STATE.x509_streams.remove(q)


def bundles_message(cmd):
    """The full state: every trust domain's keys (minus `omit`), plus raw `extra` entries."""
    out = {}
    with STATE.lock:
        for td, keys in STATE.keys.items():
            if td in cmd.get("omit", []):
                continue
            jwks = {"keys": [k.jwk(cmd.get("use")) for k in keys.values()], "spiffe_sequence": 1}
            out["spiffe://" + td] = json.dumps(jwks).encode()
    for name, text in cmd.get("extra", {}).items():
        out[name] = text.encode()
    return workload_pb2.JWTBundlesResponse(bundles=out)


def handle(cmd):
    op = cmd["op"]
    if op == "key":
        key = Key(cmd["kid"], cmd.get("alg", "ES256"), cmd.get("bits", 2048))
        with STATE.lock:
            STATE.keys.setdefault(cmd["td"], {})[cmd["kid"]] = key
        return {"jwk": key.jwk()}
    if op == "drop_key":
        with STATE.lock:
            del STATE.keys[cmd["td"]][cmd["kid"]]
        return {}
    if op == "signer":
        with STATE.lock:
            STATE.signer = (cmd["td"], cmd["kid"])
            STATE.ttl = cmd.get("ttl", STATE.ttl)
            STATE.svid_override = cmd.get("override")
        return {}
    if op == "sign":
        return {"token": sign_token(STATE.key(cmd["td"], cmd["kid"]), cmd["claims"], cmd.get("header"))}
    if op == "push":
        msg = bundles_message(cmd)
        with STATE.lock:
            STATE.last_push = msg
            streams = list(STATE.bundle_streams)
        for q in streams:
            q.put(("msg", msg))
        return {"streams": len(streams)}
    if op == "fail_bundles":
        with STATE.lock:
            streams = list(STATE.bundle_streams)
        for q in streams:
            q.put(("fail", cmd["code"], cmd.get("message", "scripted failure")))
        return {"streams": len(streams)}
    if op == "greet":
        with STATE.lock:
            STATE.greet = cmd["on"]
        return {}
    if op == "fetch_fail":
        with STATE.lock:
            STATE.fetch_fail = (cmd["code"], cmd.get("message", "scripted failure")) if cmd.get("code") else None
        return {}
    if op == "x509":
        msg = workload_pb2.X509SVIDResponse(svids=[workload_pb2.X509SVID(
            spiffe_id=cmd["spiffe_id"], x509_svid=base64.b64decode(cmd["chain"]), x509_svid_key=base64.b64decode(cmd["key"]), bundle=base64.b64decode(cmd["bundle"]))])
        with STATE.lock:
            STATE.x509 = msg
            streams = list(STATE.x509_streams)
        for q in streams:
            q.put(msg)
        return {}
    if op == "calls":
        with STATE.lock:
            return {"jwt": list(STATE.jwt_calls), "bundles": STATE.bundle_calls, "open_bundle_streams": len(STATE.bundle_streams)}
    raise ValueError("unknown op " + op)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    workload_pb2_grpc.add_SpiffeWorkloadAPIServicer_to_server(Servicer(), server)
    address = sys.argv[1]
    port = server.add_insecure_port(address)
    server.start()
    print(json.dumps({"ready": True, "port": port}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        try:
            out = handle(cmd)
        except Exception as e:  # reported to the test, which fails with it
            out = {"error": f"{type(e).__name__}: {e}"}
        out["id"] = cmd.get("id")
        print(json.dumps(out), flush=True)
    server.stop(0)


if __name__ == "__main__":
    main()
