// Verification of DNS-like (Linkerd) leaves: one DNS SAN, no URI SAN, against the trust anchors of
// the identity domain the name lies under (label-wise) and nothing else; the X.509-SVID leaf rules
// that apply; SPIFFE leaves exactly as before beside them.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SvidError } from '../../src/errors.js';
import { type BundleSet, bundlesFromPem, createDnsBundle, dnsBundleFromPem, withDnsBundles } from '../../src/identity/bundle.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { dnsBundleKey } from '../../src/identity/dns-id.js';
import { authorizeId, authorizeMemberOf, authorizeOneOf } from '../../src/identity/authorizer.js';
import { parseDnsIdentity } from '../../src/identity/dns-id.js';
import { parseSpiffeId } from '../../src/identity/spiffe-id.js';
import { validateDnsLeaf, verifySvidChain } from '../../src/identity/svid.js';
import { verifyPeerChain } from '../../src/tls/verify-peer.js';
import { x509 } from '../helpers/x509.js';
import { TD, craftLeaf, idOf } from '../helpers/certs.js';

const KU = x509.KeyUsageFlags;
const DOMAIN = 'identity.linkerd.cluster.local';
const WEB = `web.default.serviceaccount.${DOMAIN}`;
const NOW = () => Date.now();

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SvidError, `expected SvidError, got ${String(e)}`);
    assert.equal(e.code, 'ERR_SIDECARLESS_SVID_INVALID');
    assert.match(e.message, pattern);
    return true;
  });
}

let linkerd: DevCa; // issues the Linkerd identities (its root: the trust anchors)
let spire: DevCa; // the SPIFFE CA of cluster.local
let other: DevCa; // the anchors of another identity domain
let spiffeOnly: BundleSet;
let mixed: BundleSet; // SPIFFE cluster.local + Linkerd anchors of DOMAIN

before(async () => {
  [linkerd, spire, other] = await Promise.all([
    createDevCa({ trustDomain: 'linkerd.anchors' }),
    createDevCa({ trustDomain: TD }),
    createDevCa({ trustDomain: 'other.anchors' }),
  ]);
  spiffeOnly = bundlesFromPem(spire.bundlePem, TD);
  mixed = withDnsBundles(spiffeOnly, [{ domain: DOMAIN, anchorsPem: linkerd.bundlePem }]);
});

const dnsLeaf = (ca: DevCa, names: string[], o: Parameters<typeof craftLeaf>[1] = {}) => craftLeaf(ca, { uris: [], dnsNames: names, ...o });

describe('a DNS-like leaf from the identity domain\'s anchors', () => {
  test('verifies, with its parsed name and the earliest expiry on the path', async () => {
    const leaf = await dnsLeaf(linkerd, [WEB]);
    const v = verifySvidChain(leaf.chain, mixed, NOW());
    assert.equal(v.identity.id, WEB);
    assert.equal((v.identity as { kind?: string }).kind, 'dns');
    assert.equal(v.spiffeId, v.identity);
    assert.equal(v.notAfter, Math.min(leaf.parsed.notAfter, linkerd.root.notAfter));
    assert.equal(validateDnsLeaf(leaf.parsed).namespace, 'default');
  });

  test('verifyPeerChain reports the DNS peer: id, kind, dnsName, Linkerd parts; no spiffeId', async () => {
    const leaf = await dnsLeaf(linkerd, [WEB]);
    const v = verifyPeerChain([leaf.der, ...leaf.chain.slice(1).map((c) => c.der)], mixed, NOW());
    assert.ok(v.ok, !v.ok ? v.reason : '');
    assert.deepEqual({ ...v.verified.peer }, { id: WEB, kind: 'dns', dnsName: WEB, trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'web' });
    assert.equal('spiffeId' in v.verified.peer, false);
  });

  test('through intermediates', async () => {
    const ca = await createDevCa({ trustDomain: 'linkerd.anchors', intermediates: 2 });
    const bundles = new Map([[dnsBundleKey(DOMAIN), dnsBundleFromPem(DOMAIN, ca.bundlePem)]]);
    const leaf = await dnsLeaf(ca, [WEB]);
    assert.equal(verifySvidChain(leaf.chain, bundles, NOW()).identity.id, WEB);
    rejects(() => verifySvidChain([leaf.chain[0]!, leaf.chain[2]!], bundles, NOW()), /does not lead to a root of identity domain "identity\.linkerd\.cluster\.local"/);
  });
});

describe('refused', () => {
  test('without any dns: bundle: today\'s X.509-SVID reason, word for word', async () => {
    const leaf = await dnsLeaf(spire, [WEB]);
    rejects(() => verifySvidChain(leaf.chain, spiffeOnly, NOW()), /^the leaf certificate has no URI SAN: an X\.509-SVID carries its SPIFFE ID there$/);
  });

  test('a leaf of the SPIFFE CA of the same trust domain: only the identity domain\'s anchors vouch', async () => {
    const leaf = await dnsLeaf(spire, [WEB]);
    rejects(() => verifySvidChain(leaf.chain, mixed, NOW()), /the chain of web\.default\.serviceaccount\.identity\.linkerd\.cluster\.local does not lead to a root of identity domain "identity\.linkerd\.cluster\.local"/);
  });

  test('a name outside every identity domain (suffix tricks included)', async () => {
    for (const name of [
      `evil.default.serviceaccount.${DOMAIN}.attacker.io`,
      'evil.default.serviceaccount.identity.linkerdx.cluster.local',
      `evil.default.serviceaccount.x${DOMAIN}`,
      DOMAIN,
      'payments.example.com',
    ]) {
      const leaf = await dnsLeaf(linkerd, [name]);
      rejects(() => verifySvidChain(leaf.chain, mixed, NOW()), /lies in no identity domain this mesh trusts \(identity\.linkerd\.cluster\.local\)/);
    }
  });

  test('anchors of identity domain A never vouch for a name in domain B', async () => {
    const B = 'identity.linkerd.other.org';
    const two = withDnsBundles(new Map(), [
      { domain: DOMAIN, anchorsPem: linkerd.bundlePem },
      { domain: B, anchorsPem: other.bundlePem },
    ]);
    const forB = await dnsLeaf(linkerd, [`web.default.serviceaccount.${B}`]);
    rejects(() => verifySvidChain(forB.chain, two, NOW()), /does not lead to a root of identity domain "identity\.linkerd\.other\.org"/);
    const fromB = await dnsLeaf(other, [`web.default.serviceaccount.${B}`]);
    assert.equal(verifySvidChain(fromB.chain, two, NOW()).identity.id, `web.default.serviceaccount.${B}`);
  });

  test('two DNS SANs, none, or an invalid one', async () => {
    const two = await dnsLeaf(linkerd, [WEB, `db.default.serviceaccount.${DOMAIN}`]);
    rejects(() => verifySvidChain(two.chain, mixed, NOW()), /has 2 DNS SANs and no URI SAN: a DNS-like identity has exactly one DNS SAN/);
    const none = await dnsLeaf(linkerd, []);
    rejects(() => verifySvidChain(none.chain, mixed, NOW()), /no URI SAN and no DNS SAN/);
    const upper = await dnsLeaf(linkerd, [WEB.toUpperCase()]);
    rejects(() => verifySvidChain(upper.chain, mixed, NOW()), /not a valid DNS-like identity: .*lower case/);
    const star = await dnsLeaf(linkerd, [`*.default.serviceaccount.${DOMAIN}`]);
    rejects(() => verifySvidChain(star.chain, mixed, NOW()), /not a valid DNS-like identity/);
  });

  test('a URI SAN beside the DNS SAN makes it an X.509-SVID: SPIFFE rules, SPIFFE bundle', async () => {
    const both = await craftLeaf(spire, { uris: [idOf('web')], dnsNames: [WEB] });
    const v = verifySvidChain(both.chain, mixed, NOW());
    assert.equal(v.identity.id, idOf('web'));
    assert.equal((v.identity as { kind?: string }).kind, undefined);
    // Signed by the Linkerd anchors: the SPIFFE bundle of cluster.local does not vouch for it.
    const byLinkerd = await craftLeaf(linkerd, { uris: [idOf('web')], dnsNames: [WEB] });
    rejects(() => verifySvidChain(byLinkerd.chain, mixed, NOW()), /does not lead to a root of trust domain "cluster\.local"/);
  });

  test('the leaf rules that apply: not a CA, digitalSignature, no keyCertSign/cRLSign', async () => {
    const ca = await dnsLeaf(linkerd, [WEB], { isCa: true, keyUsage: KU.digitalSignature | KU.keyCertSign });
    rejects(() => verifySvidChain(ca.chain, mixed, NOW()), /cA=true: a DNS-like identity leaf must not be a CA/);
    const noKu = await dnsLeaf(linkerd, [WEB], { keyUsage: null });
    rejects(() => verifySvidChain(noKu.chain, mixed, NOW()), /no key usage extension/);
    const noSig = await dnsLeaf(linkerd, [WEB], { keyUsage: KU.keyEncipherment });
    rejects(() => verifySvidChain(noSig.chain, mixed, NOW()), /lacks the digitalSignature/);
    const signs = await dnsLeaf(linkerd, [WEB], { keyUsage: KU.digitalSignature | KU.cRLSign });
    rejects(() => verifySvidChain(signs.chain, mixed, NOW()), /keyCertSign or cRLSign key usage: a DNS-like identity leaf must not sign/);
    // Linkerd's own leaves: digitalSignature + keyEncipherment.
    const linkerdKu = await dnsLeaf(linkerd, [WEB], { keyUsage: KU.digitalSignature | KU.keyEncipherment });
    assert.equal(verifySvidChain(linkerdKu.chain, mixed, NOW()).identity.id, WEB);
  });

  test('validity: expired and not yet valid (±1 s around the bounds)', async () => {
    const now = Date.now();
    const leaf = await dnsLeaf(linkerd, [WEB], { notBefore: now - 10_000, notAfter: now + 10_000 });
    const nb = leaf.parsed.notBefore;
    const na = leaf.parsed.notAfter;
    assert.equal(verifySvidChain(leaf.chain, mixed, nb).identity.id, WEB);
    assert.equal(verifySvidChain(leaf.chain, mixed, na).identity.id, WEB);
    rejects(() => verifySvidChain(leaf.chain, mixed, nb - 1000), /leaf certificate is not valid yet/);
    rejects(() => verifySvidChain(leaf.chain, mixed, na + 1000), /leaf certificate has expired/);
  });

  test('verifyPeerChain says why, never throws', async () => {
    const leaf = await dnsLeaf(spire, [WEB]);
    const v = verifyPeerChain([leaf.der], mixed, NOW());
    assert.equal(v.ok, false);
    assert.match(!v.ok ? v.reason : '', /identity domain/);
  });
});

describe('bundles of identity domains', () => {
  test('createDnsBundle keys by dnsBundleKey; empty anchors are refused', () => {
    const b = createDnsBundle(DOMAIN, [linkerd.root]);
    assert.equal(b.trustDomain, 'dns:identity.linkerd.cluster.local');
    assert.throws(() => createDnsBundle(DOMAIN, []), /hold no certificates/);
    assert.throws(() => dnsBundleFromPem(DOMAIN, 'not pem'), /hold no CERTIFICATE blocks/);
    assert.throws(() => withDnsBundles(new Map(), [{ domain: 'Bad.Domain', anchorsPem: linkerd.bundlePem }]), { code: 'ERR_SIDECARLESS_DNS_IDENTITY_INVALID' });
  });
});

describe('authorizers', () => {
  test('authorizeId / authorizeOneOf take DNS-like names; a name of one kind never accepts the other', () => {
    const dns = parseDnsIdentity(WEB);
    const spiffe = parseSpiffeId(idOf('web'));
    assert.equal(authorizeId(WEB)(dns), undefined);
    assert.match(authorizeId(WEB)(spiffe)!, /expected web\.default\.serviceaccount\.identity\.linkerd\.cluster\.local, the peer presented spiffe:/);
    assert.match(authorizeId(idOf('web'))(dns)!, /the peer presented web\.default/);
    assert.match(authorizeId(WEB)(parseDnsIdentity(`xweb.default.serviceaccount.${DOMAIN}`))!, /expected/);
    assert.equal(authorizeOneOf(idOf('web'), WEB)(dns), undefined);
    assert.equal(authorizeOneOf(idOf('web'), WEB)(spiffe), undefined);
    assert.throws(() => authorizeId('Web.default.serviceaccount.identity.linkerd.cluster.local'), { code: 'ERR_SIDECARLESS_DNS_IDENTITY_INVALID' });
  });

  test('authorizeMemberOf is about SPIFFE trust domains: a DNS peer of Linkerd\'s trust domain is no member', () => {
    assert.equal(authorizeMemberOf(TD)(parseSpiffeId(idOf('web'))), undefined);
    assert.match(authorizeMemberOf(TD)(parseDnsIdentity(WEB))!, /expected a member of trust domain cluster\.local/);
  });
});
