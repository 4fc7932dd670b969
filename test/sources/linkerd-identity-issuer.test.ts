// The Linkerd identity issuer (sources/issuers/linkerd-identity.ts) against a scripted identity
// service on the second stack (test/helpers/py/linkerd_identity.py: Python gRPC C-core,
// python3-cryptography), which checks Certify requests as Linkerd's identity service does and can
// misbehave on command. Every refusal here is of an answer the real service would never send, or
// of a server that is not the identity service.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseCertificate } from '../../src/identity/certificate.js';
import { createCsr, generateKeyPair } from '../../src/identity/keys.js';
import { pemToCertDers } from '../../src/identity/pem.js';
import { type LinkerdIdentityIssuerOptions, linkerdIdentityIssuer } from '../../src/sources/issuers/linkerd-identity.js';
import { type LinkerdIdentityServer, startLinkerdIdentity } from '../helpers/linkerd-identity-server.js';

const WEB = 'web.emojivoto.serviceaccount.identity.linkerd.cluster.local';
const KEY = 'dns:identity.linkerd.cluster.local';
type T = Parameters<typeof startLinkerdIdentity>[0];

async function tokenFile(s: LinkerdIdentityServer, value: string): Promise<string> {
  const file = join(s.dir, 'linkerd-identity-token');
  await writeFile(file, value);
  return file;
}

async function issuerOf(t: T, s: LinkerdIdentityServer, o: Partial<LinkerdIdentityIssuerOptions> = {}) {
  const issuer = linkerdIdentityIssuer({
    address: s.address,
    serverName: s.serverName,
    identity: WEB,
    bundleKey: KEY,
    trustAnchors: { file: s.anchorsFile },
    token: { file: await tokenFile(s, 'tok-web\n') },
    callTimeoutMs: 3_000,
    ...o,
  });
  t.after(async () => issuer.close());
  return issuer;
}

async function csr(name = WEB) {
  const keys = await generateKeyPair();
  return createCsr(keys, { dns: name });
}

async function refusal(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  assert.fail('the issuance was not refused');
}

describe('Certify', () => {
  test('identity, token and a DER CSR in the body; the leaf names exactly the identity and chains to the anchors', async (t) => {
    const s = await startLinkerdIdentity(t, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' } } });
    const issuer = await issuerOf(t, s);
    assert.equal(issuer.trustDomain, KEY);
    const issued = await issuer.issue({ csrPem: await csr(), spiffeId: WEB });
    const [call] = await s.waitForCalls(1);
    assert.equal(call!.code, 'OK');
    assert.equal(call!.identity, WEB);
    assert.equal(call!.token, 'tok-web', 'the token file, trimmed, in the body');
    // The CSR as python3-cryptography reads it: DER, one DNS SAN, no URI, an ECDSA P-256 key, empty subject.
    assert.deepEqual(call!.csr, { dns: [WEB], uri: [], ip: [], email: [], cn: [], subjectEmpty: true, key: 'ec', curve: 'secp256r1', signatureValid: true });
    const chain = pemToCertDers(issued.certChainPem).map(parseCertificate);
    assert.equal(chain.length, 2, 'leaf and the identity issuer');
    assert.deepEqual(chain[0]!.dnsNames, [WEB]);
    assert.deepEqual(chain[0]!.uris, []);
    assert.equal(issued.bundlePem, readFileSync(s.anchorsFile, 'utf8'), 'the bundle is the trust anchors');
    assert.equal(issued.validUntil, chain[0]!.notAfter);
    assert.equal(issued.validUntil, call!.notAfter);
  });

  test('the token file is read for every call: a rotated token is the one sent next', async (t) => {
    const s = await startLinkerdIdentity(t, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' }, 'tok-web-2': { ns: 'emojivoto', sa: 'web' } } });
    const issuer = await issuerOf(t, s);
    await issuer.issue({ csrPem: await csr(), spiffeId: WEB });
    await tokenFile(s, 'tok-web-2');
    await issuer.issue({ csrPem: await csr(), spiffeId: WEB });
    assert.deepEqual((await s.waitForCalls(2)).map((c) => c.token), ['tok-web', 'tok-web-2']);
  });

  test('the service refuses a token of another service account (FAILED_PRECONDITION), with what to do', async (t) => {
    const s = await startLinkerdIdentity(t, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'voting' } } });
    const issuer = await issuerOf(t, s);
    const e = await refusal(issuer.issue({ csrPem: await csr(), spiffeId: WEB }));
    assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
    assert.match(e.message, /FAILED_PRECONDITION/);
    assert.match(e.message, /service-account token/);
  });

  test('Unavailable (issuer not ready) is a clear IdentityUnavailableError; the next call succeeds', async (t) => {
    const s = await startLinkerdIdentity(t, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' } } });
    await s.fault('unavailable', { count: 1 });
    const issuer = await issuerOf(t, s);
    const e = await refusal(issuer.issue({ csrPem: await csr(), spiffeId: WEB }));
    assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
    assert.match(e.message, /UNAVAILABLE/);
    await issuer.issue({ csrPem: await csr(), spiffeId: WEB });
    assert.deepEqual((await s.waitForCalls(2)).map((c) => c.code), ['UNAVAILABLE', 'OK']);
  });
});

describe('answers refused', () => {
  const cases: Array<[fault: Parameters<LinkerdIdentityServer['fault']>[0], why: RegExp]> = [
    ['other-identity', /Certify response for another identity: the leaf names admin\.kube-system\.serviceaccount/],
    ['rsa-leaf', /not ECDSA/],
    ['wrong-key', /public key is not the one of our CSR/],
    ['foreign-chain', /does not lead to the Linkerd trust anchors/],
    ['expired', /leaf has expired/],
    ['garbage', /leaf_certificate is not a DER certificate/],
    ['bad-valid-until', /valid_until .* is not the leaf's notAfter/],
    ['nosign-intermediate', /does not lead to the Linkerd trust anchors|keyCertSign/],
    ['signing-leaf', /would not verify at the mesh's peers: .*keyCertSign or cRLSign/],
  ];
  // One server for the suite, its misbehaviour switched per test (a Python process costs ~0.5 s).
  const cleanup: Array<() => Promise<void>> = [];
  const suite = { after: (fn: () => Promise<void>) => void cleanup.push(fn) };
  let s: LinkerdIdentityServer;
  before(async () => {
    s = await startLinkerdIdentity(suite, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' } } });
  });
  after(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });
  for (const [fault, why] of cases) {
    test(`${fault}: refused with SvidError`, async (t) => {
      await s.fault(fault);
      const issuer = await issuerOf(t, s);
      const seen = s.calls.length;
      const e = await refusal(issuer.issue({ csrPem: await csr(), spiffeId: WEB }));
      assert.equal(e.code, 'ERR_SIDECARLESS_SVID_INVALID', e.message);
      assert.match(e.message, why);
      const call = (await s.waitForCalls(seen + 1))[seen]!;
      assert.deepEqual([call.fault, call.code], [fault, 'OK'], 'the server answered; the client refused');
    });
  }
});

describe('the identity service is authenticated before the token is sent', () => {
  test('a server whose certificate names another identity gets no call (so no token)', async (t) => {
    const s = await startLinkerdIdentity(t, {
      tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' } },
      serverNames: ['linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local'],
    });
    const issuer = await issuerOf(t, s);
    const e = await refusal(issuer.issue({ csrPem: await csr(), spiffeId: WEB }));
    assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
    assert.match(e.message, /UNAVAILABLE/);
    assert.equal(s.received, 0, 'no request reached the server');
  });

  test('a server under other anchors gets no call', async (t) => {
    const s = await startLinkerdIdentity(t, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' } }, serveFrom: 'other' });
    const issuer = await issuerOf(t, s);
    await refusal(issuer.issue({ csrPem: await csr(), spiffeId: WEB }));
    assert.equal(s.received, 0);
  });

  test('anchors that are not the mesh’s: the connection is refused', async (t) => {
    const s = await startLinkerdIdentity(t, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' } } });
    const issuer = await issuerOf(t, s, { trustAnchors: { pem: readFileSync(s.otherAnchorsFile, 'utf8') } });
    await refusal(issuer.issue({ csrPem: await csr(), spiffeId: WEB }));
    assert.equal(s.received, 0);
  });
});

test('a missing token file: nothing is sent, and the message says what to mount', async (t) => {
  const s = await startLinkerdIdentity(t, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' } } });
  const issuer = await issuerOf(t, s, { token: { file: join(s.dir, 'no-such-token') } });
  const e = await refusal(issuer.issue({ csrPem: await csr(), spiffeId: WEB }));
  assert.match(e.message, /no-such-token: it does not exist\. Mount the projected service-account token there \(audience identity\.l5d\.io/);
  assert.equal(s.received, 0);
});

test('a slow identity service: the call ends at its deadline with DEADLINE_EXCEEDED', async (t) => {
  const s = await startLinkerdIdentity(t, { tokens: { 'tok-web': { ns: 'emojivoto', sa: 'web' } } });
  await s.fault(null, { delayMs: 800 });
  const issuer = await issuerOf(t, s, { callTimeoutMs: 200 });
  const started = Date.now();
  const e = await refusal(issuer.issue({ csrPem: await csr(), spiffeId: WEB }));
  assert.equal(e.code, 'ERR_SIDECARLESS_IDENTITY_UNAVAILABLE');
  assert.match(e.message, /did not answer within 200 ms \(DEADLINE_EXCEEDED\)/);
  assert.ok(Date.now() - started < 750, 'not held until the server answers');
});
