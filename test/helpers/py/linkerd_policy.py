# A scripted Linkerd destination + policy controller on Debian's grpcio (the second, independent
# gRPC stack): Destination.Get, OutboundPolicies.Watch and InboundServerPolicies.WatchPort over
# mutual TLS, as Linkerd's controllers serve them behind their proxies. Started as
#   linkerd_policy.py DIR SERVER_NAME [PORT [PKI]]
# it makes a Linkerd-style PKI in DIR with python `cryptography` (ECDSA P-256; trust anchor → issuer
# → leaves carrying ONE DNS SAN, no URI, CN the same name): anchors.pem; the server's leaf for SERVER_NAME; client
# leaves client-a / client-b (<name>.pem = leaf + issuer, <name>.key) for
# web.emojivoto.serviceaccount.identity.linkerd.cluster.local and client-foreign under other anchors.
# With a fourth argument PKI (a linkerd_identity.py directory; PORT 0 for any) it uses that mesh's anchor and issuer.
# It requires a client certificate chaining to anchors.pem. It prints one JSON event per line:
#   {"event": "listening", "port": N}
#   {"event": "request", "rpc": "Get"|"Watch"|"WatchPort", "key": ..., "fields": {...}, "peer": [SANs], "cert": a hash of the client certificate}
#   {"event": "ended", "rpc": ..., "key": ...}             (a stream's RPC is over, whatever ended it)
#   {"event": "ack", "id": ...}                            (after each command, once applied)
# and takes one JSON command per line on stdin (rpc is "Get", "Watch" or "WatchPort"; key is the
# path, the authority, or the port as a string; json is the message in protobuf's JSON mapping):
#   {"cmd": "set", "rpc", "key", "json"}   the key's state: sent to its open streams and, first,
#                                          to every stream opened later
#   {"cmd": "push", "rpc", "key", "json"}  sent to the key's open streams only (duplicates, reorders)
#   {"cmd": "raw", "rpc", "key", "b64"}  these bytes as a response to its open streams (malformed ones)
#   {"cmd": "remove", "rpc", "key"}        forget the state (later streams get nothing at first)
#   {"cmd": "close", "rpc", "key", "code": "UNAVAILABLE", "details": "..."}  end its open streams
import base64
import datetime
import hashlib
import json
import os
import queue
import sys
import threading
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import json_format

from linkerd import destination_pb2, inbound_pb2, outbound_pb2

CLIENT_NAME = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local"
OUT_LOCK = threading.Lock()


def emit(obj):
    with OUT_LOCK:
        print(json.dumps(obj), flush=True)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(subject_cn, issuer_cert, issuer_key, ca, dns=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (
        x509.CertificateBuilder()
        .subject_name(name(subject_cn if ca else dns))
        .issuer_name(issuer_cert.subject if issuer_cert is not None else name(subject_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    c = b.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())
    return c, key


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


def key_pem(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def load_pki(pki):
    with open(os.path.join(pki, "trust-anchors.pem"), "rb") as f:
        anchor = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(pki, "issuer.pem"), "rb") as f:
        issuer = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(pki, "issuer.key"), "rb") as f:
        issuer_key = serialization.load_pem_private_key(f.read(), password=None)
    return anchor, issuer, issuer_key


def make_pki(d, server_name, pki=None):
    if pki:  # the mesh of a scripted identity service (linkerd_identity.py): its anchor and issuer
        anchor, issuer, issuer_key = load_pki(pki)
    else:
        anchor, anchor_key = cert("root.linkerd.cluster.local", None, None, True)
        issuer, issuer_key = cert("identity.linkerd.cluster.local", anchor, anchor_key, True)
    other, other_key = cert("root.linkerd.cluster.local", None, None, True)  # the same name, another key
    with open(os.path.join(d, "anchors.pem"), "wb") as f:
        f.write(pem(anchor))
    server, server_key = cert(None, issuer, issuer_key, False, server_name)
    for n, (iss, iss_key) in {"client-a": (issuer, issuer_key), "client-b": (issuer, issuer_key), "client-foreign": (other, other_key)}.items():
        c, k = cert(None, iss, iss_key, False, CLIENT_NAME)
        with open(os.path.join(d, n + ".pem"), "wb") as f:
            f.write(pem(c) + pem(iss))
        with open(os.path.join(d, n + ".key"), "wb") as f:
            f.write(key_pem(k))
    return pem(anchor), pem(server) + pem(issuer), key_pem(server_key)


RPCS = {
    "Get": (destination_pb2.Update, lambda r: r.path),
    "Watch": (outbound_pb2.OutboundPolicy, lambda r: r.authority),
    "WatchPort": (inbound_pb2.Server, lambda r: str(r.port)),
}


class Hub:
    def __init__(self):
        self.lock = threading.Lock()
        self.state = {}  # (rpc, key) -> message
        self.streams = {}  # (rpc, key) -> set of queues

    def subscribe(self, rpc, key):
        q = queue.Queue()
        with self.lock:
            self.streams.setdefault((rpc, key), set()).add(q)
            if (rpc, key) in self.state:
                q.put(("msg", self.state[(rpc, key)]))
        return q

    def unsubscribe(self, rpc, key, q):
        with self.lock:
            self.streams.get((rpc, key), set()).discard(q)

    def send(self, rpc, key, item, keep=False):
        with self.lock:
            if keep:
                self.state[(rpc, key)] = item[1]
            for q in self.streams.get((rpc, key), set()):
                q.put(item)

    def forget(self, rpc, key):
        with self.lock:
            self.state.pop((rpc, key), None)


HUB = Hub()


def fields_of(request):
    return json_format.MessageToDict(request, preserving_proto_field_name=True)


def peer_sans(context):
    return [v.decode() for v in context.auth_context().get("x509_subject_alternative_name", [])]


def peer_cert(context):
    pems = context.auth_context().get("x509_pem_cert", [])
    return hashlib.sha256(pems[0]).hexdigest()[:16] if pems else None


def stream_handler(rpc):
    def handle(request, context):
        key = RPCS[rpc][1](request)
        q = HUB.subscribe(rpc, key)  # before the report: a command that follows it reaches this stream
        emit({"event": "request", "rpc": rpc, "key": key, "fields": fields_of(request), "peer": peer_sans(context), "cert": peer_cert(context)})
        context.add_callback(lambda: (HUB.unsubscribe(rpc, key, q), emit({"event": "ended", "rpc": rpc, "key": key})))
        while context.is_active():
            try:
                kind, value = q.get(timeout=0.05)
            except queue.Empty:
                continue
            if kind == "msg":
                yield value
            else:
                context.abort(getattr(grpc.StatusCode, value[0]), value[1])

    return handle


def serialize(m):
    return m if isinstance(m, bytes) else m.SerializeToString()


def command(c):
    rpc, key = c["rpc"], c.get("key")
    if c["cmd"] in ("set", "push"):
        msg = json_format.ParseDict(c["json"], RPCS[rpc][0]())
        HUB.send(rpc, key, ("msg", msg), keep=c["cmd"] == "set")
    elif c["cmd"] == "raw":
        HUB.send(rpc, key, ("msg", base64.b64decode(c["b64"])))
    elif c["cmd"] == "remove":
        HUB.forget(rpc, key)
    elif c["cmd"] == "close":
        HUB.send(rpc, key, ("close", (c.get("code", "UNAVAILABLE"), c.get("details", ""))))
    else:
        raise ValueError("unknown command " + c["cmd"])


def main():
    d, server_name = sys.argv[1], sys.argv[2]
    anchors, chain, key = make_pki(d, server_name, sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None)
    handlers = {
        "io.linkerd.proxy.destination.Destination": {"Get": (destination_pb2.GetDestination, destination_pb2.Update, "Get")},
        "io.linkerd.proxy.outbound.OutboundPolicies": {"Watch": (outbound_pb2.TrafficSpec, outbound_pb2.OutboundPolicy, "Watch")},
        "io.linkerd.proxy.inbound.InboundServerPolicies": {"WatchPort": (inbound_pb2.PortSpec, inbound_pb2.Server, "WatchPort")},
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    for service, methods in handlers.items():
        server.add_generic_rpc_handlers([
            grpc.method_handlers_generic_handler(service, {
                m: grpc.unary_stream_rpc_method_handler(stream_handler(rpc), request_deserializer=req.FromString, response_serializer=serialize)
                for m, (req, res, rpc) in methods.items()
            })
        ])
    creds = grpc.ssl_server_credentials([(key, chain)], root_certificates=anchors, require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:%s" % (sys.argv[3] if len(sys.argv) > 3 else "0"), creds)
    server.start()
    emit({"event": "listening", "port": port})
    for line in sys.stdin:
        c = json.loads(line)
        try:
            command(c)
            emit({"event": "ack", "id": c.get("id")})
        except Exception as e:
            emit({"event": "ack", "id": c.get("id"), "error": f"{type(e).__name__}: {e}"})
    server.stop(0)


main()
