# One CreateCertificate call from the second stack (Python gRPC C-core, python3-cryptography), for
# test/server/ca: proves the embedded CA's wire with a client that shares no code with ours.
# stdin: one JSON object {address, root (PEM), serverName, token, csrSan, validity}
# The key and the CSR are made here (csrSan: the URI SAN the CSR asks for). stdout: one JSON object
# {"ok": true, "chain": [...], "keyPem": ...} or {"ok": false, "code": "UNAUTHENTICATED", "details": ...}.
import json
import sys

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from istio import ca_pb2, ca_pb2_grpc

cfg = json.loads(sys.stdin.read())
key = ec.generate_private_key(ec.SECP256R1())
csr = (
    x509.CertificateSigningRequestBuilder()
    .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "python client")]))
    .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(cfg["csrSan"])]), critical=False)
    .sign(key, hashes.SHA256())
)
creds = grpc.ssl_channel_credentials(root_certificates=cfg["root"].encode())
options = [("grpc.ssl_target_name_override", cfg["serverName"])]
with grpc.secure_channel(cfg["address"], creds, options) as channel:
    stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
    request = ca_pb2.IstioCertificateRequest(csr=csr.public_bytes(serialization.Encoding.PEM).decode(), validity_duration=cfg["validity"])
    try:
        res = stub.CreateCertificate(request, metadata=[("authorization", "Bearer " + cfg["token"])], timeout=10)
        pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        print(json.dumps({"ok": True, "chain": list(res.cert_chain), "publicKey": pub}))
    except grpc.RpcError as e:
        print(json.dumps({"ok": False, "code": e.code().name, "details": e.details()}))
