# A scripted Linkerd identity service on the second stack: Python gRPC (C-core) serving
# /io.linkerd.proxy.identity.Identity/Certify from the project's own linkerd/identity.proto, signing
# with python3-cryptography (independent of the project's x509 code). It checks what Linkerd's
# server checks (linkerd2 pkg/identity/service.go, controller/identity): identity, token and CSR
# present (else INVALID_ARGUMENT); the CSR is DER with a valid signature, exactly one DNS SAN equal
# to the identity, CN empty or equal, no URI/IP/e-mail SAN (else FAILED_PRECONDITION); the token is
# known (a table token -> namespace/service account; else UNAUTHENTICATED) and the identity is
# <sa>.<ns>.serviceaccount.identity.<linkerd-ns>.<td> of it (else FAILED_PRECONDITION); the key is
# ECDSA (else INTERNAL, as the issuer fails). It signs with the identity issuer (an intermediate
# under the trust anchor), copying the DNS SAN only, and answers DER leaf, [DER issuer], valid_until.
#
# Arguments (one JSON object, argv[1]):
#   dir            where trust-anchors.pem (the anchor) and other-anchors.pem (an unrelated root) are written
#   namespace      Linkerd's namespace (default linkerd); trustDomain (default cluster.local)
#   serverNames    DNS SANs of the serving certificate (default the identity service's identity only)
#   serveFrom      "mesh" (default): serving certificate under the anchor; "other": under the unrelated root
#   lifetimeS      lifetime of issued leaves in seconds (default 86400, Linkerd's 24 h)
#   port           default 0 (any free one)
# It also writes the issuer (issuer.pem, issuer.key) so a scripted controller can join the same mesh.
# Commands on stdin, one JSON object a line, each answered {"event":"ok","op":...}:
#   {"op":"tokens","tokens":{"<token>":{"ns":"emojivoto","sa":"web"}}}
#   {"op":"fault","fault":null|"other-identity"|"rsa-leaf"|"wrong-key"|"foreign-chain"|"expired"|
#          "garbage"|"unavailable"|"bad-valid-until"|"nosign-intermediate"|"signing-leaf","count":N (default: until changed),"delayMs":0}
#   {"op":"lifetime","seconds":N}
# Each call is reported {"event":"call","identity","token","csr":{dns,uri,ip,email,cn,key,curve,der},
# "code","issued","notAfter","t"} when answered, {"event":"received"} when it arrives; the first line
# is {"event":"listening","port":N}.
import datetime
import ipaddress
import json
import sys
import threading
import time
from concurrent import futures

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from google.protobuf import timestamp_pb2
from linkerd import identity_pb2, identity_pb2_grpc

CFG = json.loads(sys.argv[1])
TD = CFG.get("trustDomain", "cluster.local")
LNS = CFG.get("namespace", "linkerd")
SELF = f"linkerd-identity.{LNS}.serviceaccount.identity.{LNS}.{TD}"
OUT = threading.Lock()
STATE = {"tokens": {}, "fault": None, "count": None, "delayMs": 0, "lifetime": CFG.get("lifetimeS", 86400)}


def emit(obj):
    with OUT:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def make_ca(name, issuer=None, issuer_key=None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - datetime.timedelta(minutes=5))
        .not_valid_after(now() + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256()), key


def leaf(public_key, dns, issuer, issuer_key, not_before, not_after, usage=(True, False, True, False, False, False, False, False, False)):
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))  # the CSR's (empty) subject, as Linkerd's issuer copies it
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(*usage), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


ANCHOR, ANCHOR_KEY = make_ca(f"root.{LNS}.{TD}")
ISSUER, ISSUER_KEY = make_ca(f"identity.{LNS}.{TD}", ANCHOR, ANCHOR_KEY)
OTHER, OTHER_KEY = make_ca(f"root.{LNS}.{TD}")  # same name, other key: another mesh
OTHER_ISSUER, OTHER_ISSUER_KEY = make_ca(f"identity.{LNS}.{TD}", OTHER, OTHER_KEY)
# An intermediate under the anchor without keyCertSign (digitalSignature only): not a certificate signer.
_NS_KEY = ec.generate_private_key(ec.SECP256R1())
NOSIGN_ISSUER, NOSIGN_ISSUER_KEY = (
    x509.CertificateBuilder()
    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"nosign.{LNS}.{TD}")]))
    .issuer_name(ANCHOR.subject)
    .public_key(_NS_KEY.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now() - datetime.timedelta(minutes=5))
    .not_valid_after(now() + datetime.timedelta(days=365))
    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(_NS_KEY.public_key()), critical=False)
    .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ANCHOR_KEY.public_key()), critical=False)
    .sign(ANCHOR_KEY, hashes.SHA256())
), _NS_KEY
with open(f"{CFG['dir']}/trust-anchors.pem", "w") as f:
    f.write(pem(ANCHOR))
with open(f"{CFG['dir']}/other-anchors.pem", "w") as f:
    f.write(pem(OTHER))
# The issuer, for a destination/policy controller of the same mesh (linkerd_policy.py's pki argument).
with open(f"{CFG['dir']}/issuer.pem", "w") as f:
    f.write(pem(ISSUER))
with open(f"{CFG['dir']}/issuer.key", "wb") as f:
    f.write(ISSUER_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


class Refused(Exception):
    def __init__(self, code, details):
        super().__init__(details)
        self.code = code
        self.details = details


def describe_csr(raw):
    """What the CSR holds (reported to the test), or None when it is not DER PKCS#10."""
    try:
        csr = x509.load_der_x509_csr(raw)
    except Exception:
        return None, None
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = x509.SubjectAlternativeName([])
    cn = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    key = csr.public_key()
    info = {
        "dns": sans.get_values_for_type(x509.DNSName),
        "uri": sans.get_values_for_type(x509.UniformResourceIdentifier),
        "ip": [str(v) for v in sans.get_values_for_type(x509.IPAddress)],
        "email": sans.get_values_for_type(x509.RFC822Name),
        "cn": cn,
        "subjectEmpty": len(csr.subject) == 0,
        "key": "ec" if isinstance(key, ec.EllipticCurvePublicKey) else "rsa" if isinstance(key, rsa.RSAPublicKey) else "other",
        "curve": key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else None,
        "signatureValid": csr.is_signature_valid,
    }
    return csr, info


def check(request, csr, info):
    if STATE["fault"] == "unavailable":
        raise Refused(grpc.StatusCode.UNAVAILABLE, "issuer not ready")
    if not request.identity or not request.token or not request.certificate_signing_request:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "missing identity, token or CSR")
    if csr is None or not info["signatureValid"]:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "the CSR is not a DER PKCS#10 request with a valid signature")
    if info["dns"] != [request.identity] or info["uri"] or info["ip"] or info["email"]:
        raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "CSR must have exactly one DNSName which matches the identity; no URI, IP or e-mail SANs")
    if info["cn"] and info["cn"] != [request.identity]:
        raise Refused(grpc.StatusCode.FAILED_PRECONDITION, "CSR's CommonName must be empty or the identity")
    who = STATE["tokens"].get(request.token.decode("utf-8", "replace"))
    if who is None:
        raise Refused(grpc.StatusCode.UNAUTHENTICATED, "authentication failed: unknown token")
    want = f"{who['sa']}.{who['ns']}.serviceaccount.identity.{LNS}.{TD}"
    if request.identity != want:
        raise Refused(grpc.StatusCode.FAILED_PRECONDITION, f"requester's identity {want} does not match the requested identity")
    if info["key"] != "ec":
        raise Refused(grpc.StatusCode.INTERNAL, "the CSR's key is not ECDSA")


def sign(request, csr):
    fault = STATE["fault"]
    start = now() - datetime.timedelta(seconds=1)
    end = start + datetime.timedelta(seconds=1 + STATE["lifetime"])
    name, key, issuer, issuer_key = request.identity, csr.public_key(), ISSUER, ISSUER_KEY
    if fault == "other-identity":
        name = f"admin.kube-system.serviceaccount.identity.{LNS}.{TD}"
    if fault == "rsa-leaf":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    if fault == "wrong-key":
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
    if fault == "foreign-chain":
        issuer, issuer_key = OTHER_ISSUER, OTHER_ISSUER_KEY
    if fault == "expired":
        start, end = start - datetime.timedelta(hours=2), start - datetime.timedelta(hours=1)
    usage = (True, False, True, False, False, False, False, False, False)
    if fault == "nosign-intermediate":
        issuer, issuer_key = NOSIGN_ISSUER, NOSIGN_ISSUER_KEY
    if fault == "signing-leaf":
        usage = (True, False, True, False, False, True, False, False, False)  # keyCertSign on a non-CA leaf
    cert = leaf(key, name, issuer, issuer_key, start, end, usage)
    valid_until = timestamp_pb2.Timestamp(seconds=int(end.timestamp()))
    if fault == "bad-valid-until":
        valid_until = timestamp_pb2.Timestamp(seconds=int(end.timestamp()) + 3600)
    body = der(cert) if fault != "garbage" else b"\x30\x03garbage"
    return identity_pb2.CertifyResponse(leaf_certificate=body, intermediate_certificates=[der(issuer)], valid_until=valid_until), cert, name


class Service(identity_pb2_grpc.IdentityServicer):
    def Certify(self, request, context):
        emit({"event": "received"})
        csr, info = describe_csr(request.certificate_signing_request)
        record = {
            "event": "call",
            "identity": request.identity,
            "token": request.token.decode("utf-8", "replace"),
            "csr": info,
            "issued": None,
            "notAfter": None,
            "fault": STATE["fault"],
            "code": "UNKNOWN",
            "t": int(time.time() * 1000),
        }
        if STATE["delayMs"]:
            time.sleep(STATE["delayMs"] / 1000)
        try:
            check(request, csr, info)
            answer, cert, name = sign(request, csr)
            record.update(code="OK", issued=name, notAfter=int(cert.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))
            return answer
        except Refused as r:
            record["code"] = r.code.name
            context.abort(r.code, r.details)
        finally:
            if STATE["count"] is not None:
                STATE["count"] -= 1
                if STATE["count"] <= 0:
                    STATE["fault"], STATE["count"] = None, None
            emit(record)


def serving_credentials():
    names = CFG.get("serverNames", [SELF])
    skey = ec.generate_private_key(ec.SECP256R1())
    by, by_key = (OTHER_ISSUER, OTHER_ISSUER_KEY) if CFG.get("serveFrom") == "other" else (ISSUER, ISSUER_KEY)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(by.subject)
        .public_key(skey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - datetime.timedelta(minutes=5))
        .not_valid_after(now() + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=True)
    )
    scert = b.sign(by_key, hashes.SHA256())
    key_pem = skey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return grpc.ssl_server_credentials([(key_pem, (pem(scert) + pem(by)).encode())])


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    identity_pb2_grpc.add_IdentityServicer_to_server(Service(), server)
    port = server.add_secure_port(f"localhost:{CFG.get('port', 0)}", serving_credentials())
    if port == 0:
        sys.exit(f"cannot listen on localhost:{CFG.get('port', 0)}")
    server.start()
    emit({"event": "listening", "port": port})
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "tokens":
            STATE["tokens"] = dict(cmd["tokens"])
        elif op == "fault":
            STATE["fault"] = cmd.get("fault")
            STATE["count"] = cmd.get("count")
            STATE["delayMs"] = cmd.get("delayMs", 0)
        elif op == "lifetime":
            STATE["lifetime"] = cmd["seconds"]
        emit({"event": "ok", "op": op})
    server.stop(0)


main()
