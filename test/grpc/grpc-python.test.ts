// A second gRPC stack: the gRPC C-core (Debian python3-grpcio) as the client of a mesh grpc-js
// server, with a mesh-issued SVID (its own dev CA). C-core checks the server's host name, so the
// server's SVID carries a DNS SAN beside its SPIFFE ID. An allowed unary and a server-streaming
// call see the client's SPIFFE ID through peerOf(call); a denied method is PERMISSION_DENIED to
// C-core too (a trailers-only response it reads as a status, not a transport error), and the
// next allowed call works; a C-core client without a certificate is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createDevCa, createMesh } from '../../src/index.js';
import { type Logger } from '../../src/config.js';
import { ManualSource, TD, filesOf, idOf } from '../helpers/certs.js';
import { PY_DIR, PYTHON } from '../helpers/py/stack.js';
import { grpc, servePay } from './helpers.js';

const quiet = { info() {}, warn() {}, error() {} } as unknown as Logger;

function callFromPython(input: object): Promise<Record<string, { ok?: unknown; code?: string; details?: string }>> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [join(PY_DIR, 'grpc_mesh_client.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`python exited ${code}: ${err}`))));
    child.stdin.end(JSON.stringify(input));
  });
}

test('a gRPC C-core client with a mesh SVID against a mesh grpc-js server', async (t) => {
  const ca = await createDevCa({ trustDomain: TD });
  const source = new ManualSource();
  source.set(filesOf(await ca.issue({ spiffeId: idOf('payments'), dnsNames: ['payments.default.svc'] })));
  const policy = { rules: [{ name: 'no-refunds', action: 'deny', to: { paths: ['/demo.Pay/Refund'] } }] };
  const mesh = await createMesh({ service: 'payments', identity: { source }, logger: quiet, inbound: { policy }, grpc });
  t.after(() => mesh.close());
  const server = await servePay(mesh);
  t.after(() => server.close());
  const client = await ca.issue({ spiffeId: idOf('orders') });
  const base = { port: server.port, root: ca.bundlePem, name: 'payments.default.svc' };
  const [withCert, without] = await Promise.all([callFromPython({ ...base, key: client.keyPem, chain: client.certChainPem }), callFromPython(base)]);

  assert.deepEqual(withCert.charge, { ok: { peer: idOf('orders'), n: 1, xfcc: [] } });
  assert.deepEqual(withCert.watch, { ok: [0, 1].map((i) => ({ i, peer: idOf('orders') })) });
  assert.equal(withCert.refund?.code, 'PERMISSION_DENIED', JSON.stringify(withCert.refund));
  assert.match(withCert.refund?.details ?? '', /\/demo\.Pay\/Refund denied by no-refunds/);
  assert.deepEqual(withCert.charge_again, { ok: { peer: idOf('orders'), n: 3, xfcc: [] } });
  assert.equal(without.charge?.code, 'UNAVAILABLE', JSON.stringify(without));
  assert.deepEqual(server.ran.sort(), ['Charge', 'Charge', 'Watch']);
});
