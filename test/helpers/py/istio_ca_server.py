# A test Istio CA on the second stack: Python gRPC (C-core) serving
# /istio.v1.auth.IstioCertificateService/CreateCertificate from the project's own ca.proto (compiled by
# compiledProtos()), signing with python3-cryptography (independent of the project's x509 code).
# It behaves like istiod's CA (security/pkg/server/ca/server.go): the caller is authenticated by
# `authorization: Bearer <token>` (and `clusterid`), the CSR's signature is checked but only its public
# key is used, the leaf's URI SAN is the TOKEN's identity (not what the CSR asks), the lifetime is
# validity_duration, and cert_chain is leaf first, root last, one PEM per element.
#
# Arguments (one JSON object, argv[1]):
#   dir            where root-cert.pem (the mesh root) and other-root.pem (an unrelated root) are written
#   serverNames    DNS SANs of the serving certificate (default istiod.istio-system.svc, localhost)
#   serveFrom      "mesh" (default): the serving certificate is issued by the mesh root; "other": by the other root
#   intermediate   true: workload certificates are issued by an intermediate (chain leaf, intermediate, root)
#   plaintext      true: no TLS at all (to prove the client never falls back to it)
#   trustDomain    default cluster.local
#   port           default 0 (any free one); given, that port (a restart at the same address)
# Commands on stdin, one JSON object a line, each answered {"event":"ok","op":...}:
#   {"op":"tokens","tokens":{"<token>":"spiffe://..."}}   who each token is
#   {"op":"cluster","clusterId":"Kubernetes"|null}         the cluster id callers must claim (null: any)
#   {"op":"fault","fault":null|"bad-chain"|"other-key"|"short-chain"|"empty-chain"|"expired"|"not-pem"|"foreign-root"|"long-chain","delayMs":0}
# Each call is reported {"event":"call","token":...,"clusterid":...,"validity":...,"csrSans":[...],
# "csrValid":bool,"issued":id|null,"serial":hex|null,"code":"OK"|name,"t":unix_ms} when answered, and
# {"event":"received"} as soon as it arrives (before a delay); the first line is
# {"event":"listening","port":N}.
import datetime
import json
import sys
import threading
import time
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from istio import ca_pb2, ca_pb2_grpc

CFG = json.loads(sys.argv[1])
TD = CFG.get("trustDomain", "cluster.local")
OUT = threading.Lock()
STATE = {"tokens": {}, "cluster": None, "fault": None, "delayMs": 0}


def emit(obj):
    with OUT:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(name, issuer=None, issuer_key=None, uri=None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, TD), x509.NameAttribute(NameOID.COMMON_NAME, name)])
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - datetime.timedelta(minutes=5))
        .not_valid_after(now() + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if uri:
        b = b.add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
    if issuer:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256()), key


def leaf(public_key, sans, issuer, issuer_key, not_before, not_after):
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    return b.sign(issuer_key, hashes.SHA256())


ROOT, ROOT_KEY = make_ca("test mesh root")
OTHER, OTHER_KEY = make_ca("an unrelated root")
STRANGER, STRANGER_KEY = make_ca("test mesh root")  # same name as the root, other key: a chain that does not verify
PARTNER, PARTNER_KEY = make_ca("a root of another trust domain", uri="spiffe://partner.example")
if CFG.get("intermediate"):
    SIGNER, SIGNER_KEY = make_ca("test intermediate", ROOT, ROOT_KEY)
    MIDDLE = [pem(SIGNER)]
else:
    SIGNER, SIGNER_KEY, MIDDLE = ROOT, ROOT_KEY, []
with open(f"{CFG['dir']}/root-cert.pem", "w") as f:
    f.write(pem(ROOT))
with open(f"{CFG['dir']}/other-root.pem", "w") as f:
    f.write(pem(OTHER))


class Refused(Exception):
    def __init__(self, code, details):
        super().__init__(details)
        self.code = code
        self.details = details


def authenticate(meta):
    auth = meta.get("authorization", "")
    token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
    if STATE["cluster"] is not None and meta.get("clusterid") != STATE["cluster"]:
        raise Refused(grpc.StatusCode.UNAUTHENTICATED, "request authenticate failure: unknown cluster")
    identity = STATE["tokens"].get(token)
    if identity is None:
        raise Refused(grpc.StatusCode.UNAUTHENTICATED, "request authenticate failure")
    return identity


def issue(request, identity):
    try:
        csr = x509.load_pem_x509_csr(request.csr.encode())
    except ValueError as e:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"CSR cannot be parsed: {e}")
    if not csr.is_signature_valid:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "CSR signature does not verify")
    seconds = request.validity_duration if request.validity_duration > 0 else 86400
    start = now()
    end = start + datetime.timedelta(seconds=seconds)
    fault = STATE["fault"]
    key = csr.public_key()
    issuer, issuer_key = SIGNER, SIGNER_KEY
    if fault == "other-key":
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
    if fault == "bad-chain":
        issuer, issuer_key = STRANGER, STRANGER_KEY
    if fault == "expired":
        start, end = start - datetime.timedelta(hours=2), start - datetime.timedelta(hours=1)
    cert = leaf(key, [x509.UniformResourceIdentifier(identity)], issuer, issuer_key, start, end)
    chain = [pem(cert)] + MIDDLE + [pem(ROOT)]
    if fault == "short-chain":
        chain = chain[:1]
    if fault == "empty-chain":
        chain = []
    if fault == "foreign-root":
        chain = chain + [pem(PARTNER)]  # root last: a root that names another trust domain
    if fault == "long-chain":
        chain = [pem(cert)] + [pem(ROOT)] * 1000  # ~700 KiB, under the 1 MiB message limit
    if fault == "not-pem":
        chain = ["not a certificate\n", pem(ROOT)]
    return chain, cert


def csr_sans(text):
    try:
        csr = x509.load_pem_x509_csr(text.encode())
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [str(v.value) for v in ext.value]
    except Exception:
        return []


class Service(ca_pb2_grpc.IstioCertificateServiceServicer):
    def CreateCertificate(self, request, context):
        meta = {k: v for k, v in context.invocation_metadata()}
        emit({"event": "received"})
        record = {
            "event": "call",
            "token": meta.get("authorization", "")[len("Bearer "):] if meta.get("authorization", "").startswith("Bearer ") else None,
            "authorization": meta.get("authorization"),
            "clusterid": meta.get("clusterid"),
            "validity": request.validity_duration,
            "csrSans": csr_sans(request.csr),
            "csrValid": False,
            "issued": None,
            "serial": None,
            "t": int(time.time() * 1000),
        }
        if STATE["delayMs"]:
            time.sleep(STATE["delayMs"] / 1000)
        try:
            identity = authenticate(meta)
            chain, cert = issue(request, identity)
            record.update(csrValid=True, issued=identity, serial=format(cert.serial_number, "x"), code="OK")
            emit(record)
            return ca_pb2.IstioCertificateResponse(cert_chain=chain)
        except Refused as r:
            record["code"] = r.code.name
            emit(record)
            context.abort(r.code, r.details)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ca_pb2_grpc.add_IstioCertificateServiceServicer_to_server(Service(), server)
    if CFG.get("plaintext"):
        port = server.add_insecure_port(f"localhost:{CFG.get('port', 0)}")
    else:
        names = CFG.get("serverNames", ["istiod.istio-system.svc", "localhost"])
        skey = ec.generate_private_key(ec.SECP256R1())
        by, by_key = (OTHER, OTHER_KEY) if CFG.get("serveFrom") == "other" else (ROOT, ROOT_KEY)
        scert = leaf(
            skey.public_key(),
            [x509.DNSName(n) for n in names],
            by,
            by_key,
            now() - datetime.timedelta(minutes=5),
            now() + datetime.timedelta(days=1),
        )
        key_pem = skey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        creds = grpc.ssl_server_credentials([(key_pem, pem(scert).encode())])
        port = server.add_secure_port(f"localhost:{CFG.get('port', 0)}", creds)
    if port == 0:
        sys.exit(f"cannot listen on localhost:{CFG.get('port', 0)}")
    server.start()
    emit({"event": "listening", "port": port})
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "tokens":
            STATE["tokens"] = dict(cmd["tokens"])
        elif op == "cluster":
            STATE["cluster"] = cmd.get("clusterId")
        elif op == "fault":
            STATE["fault"] = cmd.get("fault")
            STATE["delayMs"] = cmd.get("delayMs", 0)
        emit({"event": "ok", "op": op})
    server.stop(0)


main()
