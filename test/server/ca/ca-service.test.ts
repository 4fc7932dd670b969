// The embedded CA's CreateCertificate over a real TLS grpc-js server on 127.0.0.1:0, with the state's
// own serving certificate, judged by two clients: OUR Istio CA source (src/sources/istio-ca.ts,
// unchanged: it must work against this server as against istiod) and gRPC C-core (Debian python3,
// test/helpers/py/istio_ca_client.py), one call, to prove the wire. One server for the whole file.
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { bundlesFromPem } from '../../../src/identity/bundle.js';
import { parseCertificate } from '../../../src/identity/certificate.js';
import { createCsr, generateKeyPair } from '../../../src/identity/keys.js';
import { decodePem, derToPem, pemToCertDers } from '../../../src/identity/pem.js';
import { IstioCertificateService } from '../../../src/proto/istio/ca.js';
import { verifySvidChain } from '../../../src/identity/svid.js';
import { AUTHENTICATE_FAILURE, createCaService, tokenAuthenticator } from '../../../src/server/ca/ca-service.js';
import { type CaState, openCaState } from '../../../src/server/ca/state.js';
import { issueToken } from '../../../src/server/ca/tokens.js';
import { createIstioCaSource } from '../../../src/sources/istio-ca.js';
import { istioCaIssuer } from '../../../src/sources/issuers/istio-ca.js';
import { runPython } from '../../helpers/py/stack.js';
import { makeTempDir } from '../../helpers/tmp.js';

const TD = 'cluster.local';
const ORDERS = `spiffe://${TD}/ns/default/sa/orders`;
const ADMIN = `spiffe://${TD}/ns/kube-system/sa/admin`;
const SERVER_NAME = 'istiod.istio-system.svc';

let state: CaState;
let server: grpc.Server;
let address: string;
const logs: string[] = [];
const tmp = makeTempDir('sidecarless-ca-service-');

before(async () => {
  state = await openCaState(join(tmp.dir, 'state'), { trustDomain: TD });
  const serving = await state.issueServing();
  const svc = createCaService(grpc, {
    state,
    trustDomain: TD,
    maxTtlMs: 2 * 3_600_000,
    authenticate: tokenAuthenticator({ state, trustDomain: TD }),
    logger: { info: (m: string) => void logs.push(m), warn: (m: string) => void logs.push(m), error: (m: string) => void logs.push(m) },
  });
  server = new grpc.Server();
  server.addService(svc.definition, svc.implementation);
  const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(serving.certPem), private_key: Buffer.from(serving.keyPem) }], false);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  address = `127.0.0.1:${port}`;
});
after(async () => {
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await tmp.remove();
});

const token = (namespace: string, serviceAccount: string, ttlMs?: number, now = Date.now()) =>
  issueToken({ tokenKey: state.tokenKey, clock: { now: () => now } }, { namespace, serviceAccount, ...(ttlMs !== undefined && { ttlMs }) });
const issuer = (tok: string) => istioCaIssuer({ address, serverName: SERVER_NAME, root: state.rootFile, token: tok, trustDomain: TD, callTimeoutMs: 5000 });

async function verifiesAgainstRootFile(chainPem: string, id: string): Promise<void> {
  const certs = pemToCertDers(chainPem).map((d) => parseCertificate(d));
  const v = verifySvidChain(certs, bundlesFromPem(await readFile(state.rootFile, 'utf8'), TD), Date.now());
  assert.equal(v.spiffeId.id, id);
}

describe('our Istio CA client against the embedded CA', () => {
  test('the source gets an SVID with the token’s identity that verifies against <state>/root-cert.pem; issued() records it', async () => {
    const source = await createIstioCaSource({ address, serverName: SERVER_NAME, root: state.rootFile, token: token('default', 'orders'), trustDomain: TD, spiffeId: ORDERS, ttlMs: 3_600_000 });
    try {
      assert.equal(source.status().state, 'ready', source.status().lastError);
      const svid = source.getX509Svid();
      assert.equal(svid.spiffeId.id, ORDERS);
      await verifiesAgainstRootFile(svid.chain.map((c) => derToPem(c.der)).join(''), ORDERS);
      assert.ok(Math.abs(svid.notAfter - Date.now() - 3_600_000) < 5000, 'validity_duration honoured');
      assert.ok(state.issued().some((r) => r.spiffeId === ORDERS && r.serial === svid.chain[0]!.serialNumber.toLowerCase()));
    } finally {
      await source.close();
    }
  });

  test('a token for another workload: refused when the CSR asks for another identity (DESIGN.md); a CSR naming none gets the token’s identity only', async () => {
    const keys = await generateKeyPair();
    const csrPem = await createCsr(keys, ORDERS); // asks for orders
    const is = issuer(token('kube-system', 'admin'));
    try {
      await assert.rejects(is.issue({ csrPem, spiffeId: ORDERS, ttlMs: 3_600_000 }), (e: Error) => /PERMISSION_DENIED|the token is for spiffe:\/\/cluster\.local\/ns\/kube-system\/sa\/admin but the certificate request asks for spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/.test(e.message));
      assert.ok(!state.issued().some((r) => r.spiffeId === ADMIN && r.at >= Date.now() - 1000), 'nothing issued');
      const chain = await is.issue({ csrPem: await createCsr(keys, ADMIN), spiffeId: ADMIN, ttlMs: 3_600_000 });
      const leaf = parseCertificate(pemToCertDers(chain.certChainPem)[0]!);
      assert.deepEqual(leaf.uris, [ADMIN], 'its own identity: issued');
      await verifiesAgainstRootFile(chain.certChainPem, ADMIN);
    } finally {
      is.close();
    }
    const source = await createIstioCaSource({ address, serverName: SERVER_NAME, root: state.rootFile, token: token('kube-system', 'admin'), trustDomain: TD, spiffeId: ORDERS });
    try {
      assert.notEqual(source.status().state, 'ready');
      assert.match(source.status().lastError!, /PERMISSION_DENIED: the token is for .*admin but the certificate request asks for .*orders: give this workload its own token/);
    } finally {
      await source.close();
    }
  });

  test('a longer lifetime than the maximum is shortened to it', async () => {
    const is = issuer(token('default', 'orders'));
    try {
      const chain = await is.issue({ csrPem: await createCsr(await generateKeyPair(), ORDERS), spiffeId: ORDERS, ttlMs: 48 * 3_600_000 });
      const leaf = parseCertificate(pemToCertDers(chain.certChainPem)[0]!);
      assert.ok(Math.abs(leaf.notAfter - Date.now() - 2 * 3_600_000) < 5000, 'maxTtlMs 2 h');
    } finally {
      is.close();
    }
  });

  test('a wrong or expired token: UNAUTHENTICATED "request authenticate failure", the reason only in the server log', async () => {
    const csrPem = await createCsr(await generateKeyPair(), ORDERS);
    const other = await openCaState(join(tmp.dir, 'other'), { trustDomain: TD });
    const cases: Array<[string, string, RegExp]> = [
      ['expired', token('default', 'orders', 60_000, Date.now() - 120_000), /expired at/],
      ['another control plane’s', issueToken({ tokenKey: other.tokenKey, clock: { now: Date.now } }, { namespace: 'default', serviceAccount: 'orders' }), /no key of issuer/],
      ['garbage', 'not-a-jwt', /three parts/],
    ];
    for (const [what, tok, why] of cases) {
      const is = issuer(tok);
      logs.length = 0;
      try {
        await assert.rejects(is.issue({ csrPem, spiffeId: ORDERS }), (e: Error) => /UNAUTHENTICATED: request authenticate failure\)/.test(e.message), what);
      } finally {
        is.close();
      }
      assert.ok(logs.some((l) => why.test(l)), `${what}: the server logged why: ${logs.join('\n')}`);
    }
    assert.equal(AUTHENTICATE_FAILURE, 'request authenticate failure');
  });

  test('an authenticator that returns a SPIFFE ID string, throws, or returns nothing: issued, or UNAUTHENTICATED with the reason only logged', async () => {
    const csrPem = await createCsr(await generateKeyPair(), ORDERS);
    const run = (authenticate: Parameters<typeof createCaService>[1]['authenticate']) =>
      new Promise<{ err: grpc.ServiceError | null; res?: { certChain: string[] } }>((resolve) => {
        const svc = createCaService(grpc, { state, trustDomain: TD, authenticate, logger: { info: () => {}, warn: (m: string) => void logs.push(m), error: () => {} } });
        const call = { metadata: new grpc.Metadata(), request: { csr: csrPem, validityDuration: 60 }, getPeer: () => 'test' };
        (svc.implementation.CreateCertificate as (c: unknown, cb: (e: grpc.ServiceError | null, r?: { certChain: string[] }) => void) => void)(call, (err, res) => resolve({ err, ...(res && { res }) }));
      });
    const ok = await run(() => ORDERS);
    assert.equal(ok.err, null);
    assert.deepEqual(parseCertificate(pemToCertDers(ok.res!.certChain[0]!)[0]!).uris, [ORDERS]);
    logs.length = 0;
    for (const a of [() => { throw new Error('no such cluster'); }, () => undefined as never, async () => ({ refused: 'nope' })]) {
      const r = await run(a);
      assert.equal(r.err?.code, grpc.status.UNAUTHENTICATED);
      assert.equal(r.err?.details, 'request authenticate failure');
    }
    assert.ok(logs.some((l) => /no such cluster/.test(l)) && logs.some((l) => /returned nothing/.test(l)) && logs.some((l) => /nope/.test(l)), logs.join('\n'));
  });

  test('a service for another trust domain than its state is a configuration error, at creation', () => {
    assert.throws(() => createCaService(grpc, { state, trustDomain: 'example.org', authenticate: () => ({ refused: 'x' }) }), { code: 'ERR_SIDECARLESS_CONFIG_INVALID' });
  });
});

describe('raw calls', () => {
  const call = (md: grpc.Metadata, request: { csr: string; validityDuration?: number }) => {
    const client = new grpc.Client(address, grpc.credentials.createSsl(Buffer.from(state.rootPem)), { 'grpc.ssl_target_name_override': SERVER_NAME });
    const def = IstioCertificateService.CreateCertificate;
    return new Promise<grpc.ServiceError>((resolve, reject) => {
      client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, md, (err) => {
        client.close();
        if (err) resolve(err);
        else reject(new Error('the call succeeded'));
      });
    });
  };
  const bearer = (tok: string) => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${tok}`);
    return md;
  };

  test('no token: UNAUTHENTICATED; a CSR that is not one, or whose signature does not verify: INVALID_ARGUMENT', async () => {
    const csrPem = await createCsr(await generateKeyPair(), ORDERS);
    const none = await call(new grpc.Metadata(), { csr: csrPem });
    assert.equal(none.code, grpc.status.UNAUTHENTICATED);
    assert.equal(none.details, 'request authenticate failure');
    const basic = new grpc.Metadata();
    basic.set('authorization', 'Basic dXNlcjpwYXNz');
    assert.equal((await call(basic, { csr: csrPem })).code, grpc.status.UNAUTHENTICATED);
    const tok = token('default', 'orders');
    const garbage = await call(bearer(tok), { csr: 'hello' });
    assert.equal(garbage.code, grpc.status.INVALID_ARGUMENT);
    assert.match(garbage.details, /CSR refused/);
    const der = Buffer.from(decodePem(csrPem)[0]!.der);
    der[der.length - 3] = der[der.length - 3]! ^ 0x01; // inside the signature
    const tampered = await call(bearer(tok), { csr: derToPem(der, 'CERTIFICATE REQUEST') });
    assert.equal(tampered.code, grpc.status.INVALID_ARGUMENT);
    assert.match(tampered.details, /does not verify|not a PKCS#10/);
  });
});

describe('gRPC C-core (Python) as a client', () => {
  test('one CreateCertificate with a token: the token’s identity, the client’s own key, leaf first and root last', async () => {
    const out = await runPython('istio_ca_client.py', JSON.stringify({ address, root: state.rootPem, serverName: SERVER_NAME, token: token('default', 'orders'), csrSan: 'https://example.com/not-a-spiffe-id', validity: 600 }));
    const r = JSON.parse(out) as { ok: boolean; chain: string[]; publicKey: string; code?: string; details?: string };
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.chain.length, 2);
    assert.equal(r.chain[1], state.rootPem, 'root last, one PEM ending "\\n"');
    const leaf = parseCertificate(pemToCertDers(r.chain[0]!)[0]!);
    assert.deepEqual(leaf.uris, [ORDERS], 'the CSR named no SPIFFE ID (only an https URI, ignored): the token says orders');
    assert.ok(createPublicKey(r.publicKey).equals(leaf.node.publicKey), 'the CSR’s key');
    assert.ok(Math.abs(leaf.notAfter - Date.now() - 600_000) < 5000);
    await verifiesAgainstRootFile(r.chain[0]!, ORDERS);
    const bad = JSON.parse(await runPython('istio_ca_client.py', JSON.stringify({ address, root: state.rootPem, serverName: SERVER_NAME, token: 'nope', csrSan: ORDERS, validity: 600 }))) as { ok: boolean; code: string; details: string };
    assert.deepEqual(bad, { ok: false, code: 'UNAUTHENTICATED', details: 'request authenticate failure' });
  });
});
