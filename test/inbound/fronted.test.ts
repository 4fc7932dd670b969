// Inbound behind a TLS-terminating front end, through the mesh's kJudgeFronted hook: JWT-SVIDs
// (signed here with node:crypto, and by a dev CA's JWT key through mesh.jwtSvid), forwarded client
// certificates (verified as chains, never taken on their word; ignored and stripped when no front
// end is named), the same policy as mTLS, 400/401/403 verdicts. Then the calling side: a service
// with `jwtSvid` gets a token on every request, validated by the other mesh's real https server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevCa, createMesh, type Mesh } from '../../src/index.js';
import { DevCa } from '../../src/identity/dev-ca.js';
import { generateKeyPair, signingAlgorithm } from '../../src/identity/keys.js';
import { type FrontedRequest, type FrontedVerdict, type JudgeFrontedHook, kJudgeFronted } from '../../src/mesh/hooks.js';
import { type AuditRecord } from '../../src/inbound/policy-gate.js';
import { ManualSource, craftLeaf, filesOf, findCode } from '../helpers/certs.js';
import { forwardedChain, xfccCertificate } from '../../src/inbound/fronted/credentials.js';
import { listen, closeServer } from '../helpers/net.js';
import { x509 } from '../helpers/x509.js';
import { b64, makeKey, signWith } from '../identity/jwt-helpers.js';

const TD = 'example.org';
const OTHER = 'other.example';
const ME = `spiffe://${TD}/ns/default/sa/orders`;
const PEER = `spiffe://${TD}/ns/default/sa/web`;
const EVIL = `spiffe://${TD}/ns/default/sa/evil`;
const SEC = () => Math.floor(Date.now() / 1000);
const quiet = { warn: () => {}, info: () => {}, error: () => {} };

let ca: DevCa;
let caOther: DevCa;
let dir: string;
const k1 = makeKey('k1');
const stranger = makeKey('k-stranger');
let a: Mesh; // jwtSvid (file + dev CA bundles) and an XFCC front end
let b: Mesh; // no credentials configured, all-unauthenticated, one DENY rule
const audit: AuditRecord[] = [];

const judge = (m: Mesh, r: Partial<FrontedRequest>): Promise<FrontedVerdict> =>
  (m as unknown as Record<symbol, JudgeFrontedHook>)[kJudgeFronted]!({ method: 'GET', target: '/private', host: 'orders.example.org', headers: {}, sourceIp: '203.0.113.7', port: 443, ...r });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const claims = (over: Record<string, unknown> = {}) => ({ sub: PEER, aud: [ME], exp: SEC() + 300, iat: SEC(), ...over });
const xfcc = (pem: string) => ({ 'x-forwarded-client-cert': `By=spiffe://${TD}/ns/default/sa/orders;Hash=00;Cert="${encodeURIComponent(pem)}";URI=${PEER}` });

function refused(v: FrontedVerdict, status: number, message?: RegExp): asserts v is Extract<FrontedVerdict, { allowed: false }> {
  assert.equal(v.allowed, false, `admitted: ${JSON.stringify(v)}`);
  if (v.allowed) return;
  assert.equal(v.status, status, v.message);
  if (message) assert.match(v.message, message);
  assert.match(v.code, /^ERR_SIDECARLESS_/);
}

before(async () => {
  ca = await createDevCa({ trustDomain: TD });
  caOther = await createDevCa({ trustDomain: OTHER });
  dir = mkdtempSync(join(tmpdir(), 'sls-fronted-'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [k1.jwk], spiffe_sequence: 1 }));
  a = await createMesh({
    service: 'orders',
    trustDomain: TD,
    identity: { ca },
    logger: quiet,
    inbound: {
      jwtSvid: { audience: [ME, 'orders-legacy'], bundle: { file: join(dir, 'jwks.json') } },
      frontEnd: { kind: 'header', header: 'X-Forwarded-Client-Cert', format: 'xfcc' },
      policy: {
        rules: [
          { name: 'public', action: 'allow', from: [{ unauthenticated: true }], to: [{ paths: ['/public*'] }] },
          { name: 'peers', action: 'allow', from: [{ identities: ['*'] }] },
          { name: 'no-evil', action: 'deny', from: [{ identities: [EVIL] }] },
          { name: 'watch', action: 'audit', to: [{ paths: ['/private/audited'] }] },
        ],
      },
      audit: (r: AuditRecord) => void audit.push(r),
    },
  });
  b = await createMesh({
    service: 'payments',
    trustDomain: TD,
    identity: { ca },
    logger: quiet,
    inbound: { defaultPolicy: 'all-unauthenticated', policy: { rules: [{ name: 'no-admin', action: 'deny', to: [{ paths: ['/admin*'] }] }] } },
  });
});

after(async () => {
  await a?.close();
  await b?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('JWT-SVID inbound (inbound.jwtSvid)', () => {
  test('a valid token is admitted with its SPIFFE ID, marked as JWT-SVID; the token does not reach the app', async () => {
    const v = await judge(a, { headers: { ...bearer(signWith(k1, claims())), 'x-other': '1' } });
    assert.ok(v.allowed, JSON.stringify(v));
    assert.deepEqual(v.peer, { id: PEER, kind: 'spiffe', spiffeId: PEER, trustDomain: TD, namespace: 'default', serviceAccount: 'web', authenticatedBy: 'jwt-svid' });
    assert.equal(v.path, '/private');
    assert.deepEqual(v.stripHeaders, ['authorization']);
    // any accepted audience, and a normalized path
    const v2 = await judge(a, { target: '/x/../private/./y', headers: bearer(signWith(k1, claims({ aud: 'orders-legacy' }))) });
    assert.ok(v2.allowed);
    assert.equal(v2.path, '/private/y');
    // audit records say how the peer was authenticated
    const v3 = await judge(a, { target: '/private/audited', headers: bearer(signWith(k1, claims())) });
    assert.ok(v3.allowed);
    const rec = audit.find((r) => r.path === '/private/audited')!;
    assert.equal(rec.peer, PEER);
    assert.equal(rec.authenticatedBy, 'jwt-svid');
  });

  test('missing: 401 with a Bearer challenge where policy needs a peer; admitted unauthenticated where policy allows it', async () => {
    const v = await judge(a, {});
    refused(v, 401, /authentication required/);
    assert.equal(v.wwwAuthenticate, `Bearer realm="${ME}"`);
    const basic = await judge(a, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    refused(basic, 401); // another scheme is no JWT-SVID
    const pub = await judge(a, { target: '/public/x' });
    assert.ok(pub.allowed);
    assert.equal(pub.peer, null);
  });

  test('refused tokens: 401 invalid_token naming the check (expired, audience, signer, trust domain, alg none, HS256 with the public key)', async () => {
    const other = makeKey('k1'); // same kid, another key
    const cases: Array<[string, string, RegExp]> = [
      ['expired', signWith(k1, claims({ exp: SEC() - 1 })), /expired/],
      ['wrong audience', signWith(k1, claims({ aud: ['spiffe://example.org/ns/default/sa/someone-else'] })), /not for/],
      ['unknown kid', signWith(stranger, claims()), /no key with kid/],
      ['same kid, other key', signWith(other, claims()), /signature does not verify/],
      ['trust domain without a bundle', signWith(k1, claims({ sub: `spiffe://${OTHER}/ns/default/sa/web` })), /no JWT bundle for trust domain other\.example/],
      ['alg none', `${b64({ alg: 'none', kid: 'k1', typ: 'JWT' })}.${b64(claims())}.`, /alg "none"/],
      ['HS256 with the public key as secret', hs256(claims()), /shared-secret/],
      ['not a token', 'not-a-jwt', /three parts/],
    ];
    for (const [what, token, why] of cases) {
      const v = await judge(a, { target: '/public/x', headers: bearer(token) }); // even where no peer is needed
      refused(v, 401, why);
      assert.match(v.wwwAuthenticate!, /^Bearer realm="spiffe:\/\/example\.org\/ns\/default\/sa\/orders", error="invalid_token", error_description="[ -~]*"$/, what);
      assert.ok(!v.message.includes(token.split('.')[2] || '\0'), `${what}: the message echoes the token`);
    }
  });

  test('a token for a SPIFFE ID the policy denies: 403', async () => {
    refused(await judge(a, { headers: bearer(signWith(k1, claims({ sub: EVIL }))) }), 403, /no-evil/);
  });

  test("a dev CA issues JWT-SVIDs (mesh.jwtSvid) that another mesh on the same CA validates; DevCa.fromPem derives the same key", async () => {
    const token = await b.jwtSvid(ME);
    assert.equal(await b.jwtSvid(ME), token, 'cached');
    const v = await judge(a, { headers: bearer(token) });
    assert.ok(v.allowed, JSON.stringify(v));
    assert.equal(v.peer?.spiffeId, b.spiffeId);
    assert.equal((await a.validateJwtSvid(token, ME)).spiffeId, b.spiffeId);
    const { certPem, keyPem } = await ca.exportPem();
    const again = await DevCa.fromPem(certPem, keyPem);
    assert.equal(await again.jwtBundle(), await ca.jwtBundle());
    await assert.rejects(b.validateJwtSvid(await caOtherToken(), ME), (e: { reason?: string }) => e.reason === 'trust-domain');
  });

  test('a bearer token is no identity without inbound.jwtSvid; the Authorization field stays for the app', async () => {
    const v = await judge(b, { target: '/x', headers: bearer(signWith(k1, claims())) });
    assert.ok(v.allowed);
    assert.equal(v.peer, null);
    assert.deepEqual(v.stripHeaders, []);
  });
});

async function caOtherToken(): Promise<string> {
  const m = await createMesh({ service: 'x', trustDomain: OTHER, identity: { ca: caOther }, logger: quiet });
  try {
    return await m.jwtSvid(ME);
  } finally {
    await m.close();
  }
}

/** HS256 keyed with the PEM of the bundle's public key (the classic algorithm-confusion forgery). */
function hs256(c: unknown): string {
  const input = `${b64({ alg: 'HS256', kid: 'k1', typ: 'JWT' })}.${b64(c)}`;
  const secret = k1.publicKey.export({ type: 'spki', format: 'pem' });
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('forwarded client certificates (inbound.frontEnd)', () => {
  test('a valid chain is admitted with its SPIFFE ID; the named front end header stays', async () => {
    const leaf = await craftLeaf(ca, { uris: [PEER] });
    const v = await judge(a, { headers: xfcc(leaf.certChainPem) });
    assert.ok(v.allowed, JSON.stringify(v));
    assert.deepEqual(v.peer, { id: PEER, kind: 'spiffe', spiffeId: PEER, trustDomain: TD, namespace: 'default', serviceAccount: 'web', authenticatedBy: 'forwarded-certificate' });
    assert.deepEqual(v.stripHeaders, []);
  });

  test('another trust domain, self-signed, expired, garbage: 401', async () => {
    const foreign = await craftLeaf(caOther, { uris: [`spiffe://${OTHER}/ns/default/sa/web`] });
    const expired = await craftLeaf(ca, { uris: [PEER], notBefore: Date.now() - 7_200_000, notAfter: Date.now() - 3_600_000 });
    const keys = await generateKeyPair();
    const self = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01',
      name: 'CN=web',
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      keys,
      signingAlgorithm: signingAlgorithm('ec-p256'),
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: PEER }]), new x509.BasicConstraintsExtension(false, undefined, true)],
    });
    const cases: Array<[string, Record<string, string>]> = [
      ['another trust domain', xfcc(foreign.certChainPem)],
      ['self-signed', xfcc(self.toString('pem'))],
      ['expired', xfcc(expired.certChainPem)],
      ['no certificate in it', { 'x-forwarded-client-cert': 'By=x;Hash=00;URI=' + PEER }],
      ['not PEM', xfcc('hello')],
    ];
    for (const [what, headers] of cases) refused(await judge(a, { target: '/public/x', headers }), 401, /forwarded client certificate was refused/);
  });

  test("a stray quote in what an earlier hop wrote cannot make a copied certificate the last element: 401, never that certificate's identity", async () => {
    const admin = `spiffe://${TD}/ns/default/sa/admin`;
    const copied = encodeURIComponent((await craftLeaf(ca, { uris: [admin] })).certChainPem); // a certificate is public; its key is not
    const own = encodeURIComponent((await craftLeaf(ca, { uris: [PEER] })).certChainPem);
    const appended = `By=${ME};Hash=00;Cert="${own}";URI=${PEER}`; // what the front end adds after the client's value
    for (const prefix of [`Cert=${copied};x="`, `Cert="${copied}";x="`, `Cert="${copied}\\"`, `Chain=${copied};Cert="`]) {
      const v = await judge(a, { headers: { 'x-forwarded-client-cert': `${prefix},${appended}` } });
      assert.ok(!v.allowed || v.peer?.spiffeId !== admin, `admitted as ${admin} with the prefix ${prefix.slice(-12)}`);
      refused(v, 401, /not well-formed XFCC/);
    }
    const ok = await judge(a, { headers: { 'x-forwarded-client-cert': `Cert="${copied}";URI=${admin},${appended}` } });
    assert.ok(ok.allowed && ok.peer?.spiffeId === PEER, 'a well-formed earlier element is another hop\'s claim: the last one decides');
    assert.throws(() => xfccCertificate('Cert=a;Cert=b'), /two cert= pairs/);
    assert.equal(xfccCertificate('By=y;URI=a;URI=b;DNS=c;DNS=d;Subject="CN=x, O=y";Cert=z;'), 'z', 'several URI=/DNS= and a quoted Subject with a comma are Envoy\'s own');
  });

  test('without a front end named: the header is ignored for identity, and stripped', async () => {
    const leaf = await craftLeaf(ca, { uris: [PEER] });
    const v = await judge(b, { target: '/x', headers: { ...xfcc(leaf.certChainPem), 'X-Amzn-Mtls-Clientcert': encodeURIComponent(leaf.certChainPem), 'l5d-client-id': PEER } });
    assert.ok(v.allowed);
    assert.equal(v.peer, null);
    assert.deepEqual(v.stripHeaders, ['x-forwarded-client-cert', 'X-Amzn-Mtls-Clientcert', 'l5d-client-id']);
    // and the policy never sees them
    const gate = await createMesh({ service: 'g', trustDomain: TD, identity: { ca }, logger: quiet, inbound: { defaultPolicy: 'deny', policy: { rules: [{ name: 'by-header', action: 'allow', when: [{ headers: { 'l5d-client-id': [PEER] } }] }] } } });
    try {
      refused(await judge(gate, { target: '/x', headers: { 'l5d-client-id': PEER } }), 403);
    } finally {
      await gate.close();
    }
  });
});

describe('other front ends', () => {
  test("aws-api-gateway: the wrapper's forwardedClientCertPem, verified; a header alone means nothing", async (t) => {
    const source = new ManualSource();
    source.set(filesOf(await ca.issue({ spiffeId: `spiffe://${TD}/ns/default/sa/api` })));
    const c = await createMesh({ service: 'api', trustDomain: TD, identity: { source }, logger: quiet, inbound: { frontEnd: { kind: 'aws-api-gateway' } } });
    t.after(() => c.close());
    const leaf = await craftLeaf(ca, { uris: [PEER] });
    const v = await judge(c, { forwardedClientCertPem: leaf.certChainPem });
    assert.ok(v.allowed, JSON.stringify(v));
    assert.equal(v.peer?.spiffeId, PEER);
    const none = await judge(c, { headers: xfcc(leaf.certChainPem) });
    refused(none, 401, /authentication required: present a client certificate/);
    assert.equal(none.wwwAuthenticate, undefined, 'no Bearer challenge where bearer tokens are not taken');
    refused(await judge(c, { forwardedClientCertPem: (await craftLeaf(caOther, { uris: [`spiffe://${OTHER}/ns/x/sa/y`] })).certChainPem }), 401);
    // no JWT issuer for this identity: a service with jwtSvid fails its requests, saying why (never sent without)
    c.setService('ledger', { endpoints: [{ address: '127.0.0.1:9' }], jwtSvid: { audience: 'ledger' } });
    const err = await c.fetch('http://ledger/').then(() => undefined, (e: unknown) => e);
    assert.ok(findCode(err, 'ERR_SIDECARLESS_JWT_SVID_UNAVAILABLE'), String(err));
  });

  test('header + pem (an ALB): URL-encoded PEM; XFCC: the last element, Chain before Cert, quoted values', async () => {
    const leaf = await craftLeaf(ca, { uris: [PEER] });
    const alb = { kind: 'header', header: 'x-amzn-mtls-clientcert', format: 'pem' } as const;
    const got = forwardedChain(alb, { method: 'GET', target: '/', host: undefined, headers: { 'x-amzn-mtls-clientcert': encodeURIComponent(leaf.certChainPem) }, sourceIp: '', port: 443 });
    assert.equal(got.kind, 'found');
    assert.deepEqual(got.kind === 'found' && got.value[0], leaf.der);
    assert.equal(forwardedChain(alb, { method: 'GET', target: '/', host: undefined, headers: { 'x-amzn-mtls-clientcert': '%E0%A4%A' }, sourceIp: '', port: 443 }).kind, 'bad');
    assert.equal(xfccCertificate('Cert="a,b";URI=x,By=y;Cert=second;Chain="third;x"'), 'third;x');
    assert.equal(xfccCertificate('By=y;Hash=h;Cert="c\\"d"'), 'c"d');
    assert.equal(xfccCertificate('By=y;URI=spiffe://x'), undefined);
  });
});

describe('the gate without credentials (the wrapper contract)', () => {
  test('no credentials + all-unauthenticated → allowed; a DENY rule → 403; malformed target → 400; published like every transport', async () => {
    const before = b.stats().inbound.authz;
    const ok = await judge(b, { target: '/orders?id=1' });
    assert.ok(ok.allowed);
    assert.equal(ok.peer, null);
    assert.equal(ok.path, '/orders');
    refused(await judge(b, { target: '/admin/users' }), 403, /no-admin/);
    refused(await judge(b, { target: '/%2e%2e/admin' }), 403); // normalized as the HTTP/1.1 gate does
    refused(await judge(b, { target: 'admin' }), 400);
    refused(await judge(b, { target: '/x', host: 'bad host' }), 400);
    const now = b.stats().inbound.authz;
    assert.deepEqual([now.allowed - before.allowed, now.denied - before.denied, now.malformed - before.malformed], [1, 2, 2]);
  });

  test("a peer's input never throws out of the hook", async () => {
    const hook = (b as unknown as Record<symbol, JudgeFrontedHook>)[kJudgeFronted]!;
    for (const r of [null, {}, { method: 'GET', target: 5, headers: {} }, { method: 'G T', target: '/', headers: {} }, { method: 'GET', target: '/', headers: null }]) {
      refused(await hook(r as never), 400);
    }
    refused(await judge(a, { headers: { authorization: ['Bearer a', 'Bearer b'] } }), 401, /more than one/);
    refused(await judge(a, { headers: bearer('x'.repeat(20_000)) }), 401);
  });
});

describe('the calling side (outbound.services.<name>.jwtSvid)', () => {
  test('every request carries a JWT-SVID the other mesh validates; the same token on retries; the app\'s own Authorization is kept', async () => {
    const seen: string[] = [];
    let fail = 1;
    const server = b.createServer(async (req, res) => {
      const auth = req.headers.authorization ?? '';
      seen.push(auth);
      if (req.url === '/retry' && fail-- > 0) {
        res.statusCode = 503;
        return res.end();
      }
      try {
        const v = await b.validateJwtSvid(auth.replace(/^Bearer /, ''), b.spiffeId);
        res.end(JSON.stringify({ sub: v.spiffeId }));
      } catch (e) {
        res.statusCode = 401;
        res.end((e as Error).message);
      }
    });
    const port = await listen(server);
    try {
      a.setService('payments', { endpoints: [{ address: `127.0.0.1:${port}` }], jwtSvid: { audience: b.spiffeId } });
      const r = await a.fetch('http://payments/charge');
      assert.equal(r.status, 200, await r.clone().text());
      assert.deepEqual(await r.json(), { sub: ME });
      const r2 = await a.fetch('http://payments/retry');
      assert.equal(r2.status, 200);
      assert.equal(seen.length, 3);
      assert.equal(seen[1], seen[2], 'the retry carries the same token');
      assert.equal(seen[0], seen[1], 'cached');
      const r3 = await a.fetch('http://payments/mine', { headers: { authorization: 'Bearer app-token' } });
      assert.equal(r3.status, 401);
      assert.equal(seen[3], 'Bearer app-token');
      // without jwtSvid: no token
      a.setService('payments', { endpoints: [{ address: `127.0.0.1:${port}` }] });
      assert.equal((await a.fetch('http://payments/none')).status, 401);
      assert.equal(seen[4], '');
    } finally {
      a.setService('payments', null);
      await closeServer(server);
    }
  });
});
