// DNS-like (Linkerd) identities: the strict lower-case RFC 1123 grammar, the Linkerd shape, the
// BundleSet key of an identity domain, and label-wise domain membership.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dnsBundleKey,
  identityDomainFor,
  isDnsName,
  isUnderDomain,
  linkerdIdentityDomain,
  linkerdIdentityName,
  parseDnsIdentity,
  validateDnsName,
} from '../../src/identity/dns-id.js';
import { parseIdentityName, peerIdentityOf } from '../../src/identity/name.js';

const WEB = 'web.default.serviceaccount.identity.linkerd.cluster.local';
const DNS_ERR = { code: 'ERR_SIDECARLESS_DNS_IDENTITY_INVALID' };

test('the Linkerd shape is parsed into its parts', () => {
  assert.deepEqual({ ...parseDnsIdentity(WEB) }, {
    kind: 'dns',
    name: WEB,
    id: WEB,
    serviceAccount: 'web',
    namespace: 'default',
    controlNamespace: 'linkerd',
    trustDomain: 'cluster.local',
    identityDomain: 'identity.linkerd.cluster.local',
  });
  const multi = parseDnsIdentity('a.b.serviceaccount.identity.l5d.prod.example.org');
  assert.deepEqual([multi.serviceAccount, multi.namespace, multi.controlNamespace, multi.trustDomain], ['a', 'b', 'l5d', 'prod.example.org']);
  // A namespace called "serviceaccount" is still at its place.
  const odd = parseDnsIdentity('a.serviceaccount.serviceaccount.identity.linkerd.cluster.local');
  assert.deepEqual([odd.serviceAccount, odd.namespace], ['a', 'serviceaccount']);
});

test('a DNS name without the Linkerd shape is an identity without parts', () => {
  for (const n of ['payments.example.com', 'web.default.serviceaccount.identity', 'web.default.sa.identity.linkerd.cluster.local', 'identity.linkerd.cluster.local']) {
    const d = parseDnsIdentity(n);
    assert.equal(d.id, n);
    assert.equal(d.namespace, undefined, n);
    assert.equal(d.trustDomain, undefined, n);
  }
});

test('grammar: refused with a reason naming the problem', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    ['Web.default.serviceaccount.identity.linkerd.cluster.local', /invalid character "W" at 0 \(DNS-like identities are lower case\)/],
    [`${WEB}.`, /ends with a dot/],
    ['web..default.serviceaccount.identity.linkerd.cluster.local', /empty label at 4/],
    ['.web.default', /empty label at 0/],
    [`${'a'.repeat(64)}.default.serviceaccount.identity.linkerd.cluster.local`, /label of 64 characters/],
    [`${'a.'.repeat(126)}ab`, /254 characters, longer than the 253/],
    ['*.default.serviceaccount.identity.linkerd.cluster.local', /"\*" at 0 \(a wildcard is a policy pattern/],
    ['bücher.example', /\\u00fc at 1 \(write an internationalized name in its ASCII xn-- form\)/],
    ['web_1.default', /"_" at 3/],
    ['-web.default', /starts or ends with "-"/],
    ['web-.default', /starts or ends with "-"/],
    ['web.default:443', /":" at 11/],
    ['spiffe://cluster.local/ns/a', /":" at 6/],
    ['web\u0000.evil', /\\u0000 at 3/],
    ['localhost', /single label/],
  ];
  for (const [name, why] of cases) {
    assert.throws(() => validateDnsName(name), (e: Error & { code?: string }) => {
      assert.equal(e.code, DNS_ERR.code, name);
      assert.match(e.message, why, name);
      return true;
    }, name);
    assert.equal(isDnsName(name), false, name);
  }
  assert.throws(() => validateDnsName(7 as never), DNS_ERR);
});

test('grammar: accepted at the bounds, punycode as a plain label', () => {
  const label63 = 'a'.repeat(63);
  assert.equal(validateDnsName(`${label63}.b`), `${label63}.b`);
  const n253 = `${'a.'.repeat(125)}abc`;
  assert.equal(n253.length, 253);
  assert.equal(validateDnsName(n253), n253);
  assert.equal(validateDnsName('xn--bcher-kva.example'), 'xn--bcher-kva.example');
  assert.equal(validateDnsName('0.1-2.x'), '0.1-2.x');
});

test('linkerdIdentityName and linkerdIdentityDomain build checked names', () => {
  assert.equal(linkerdIdentityName({ serviceAccount: 'web', namespace: 'default' }), WEB);
  assert.equal(linkerdIdentityName({ serviceAccount: 'web', namespace: 'default', controlNamespace: 'l5d', trustDomain: 'example.org' }), 'web.default.serviceaccount.identity.l5d.example.org');
  assert.equal(linkerdIdentityName({ serviceAccount: 'web', namespace: 'default', trustDomain: 'local' }), 'web.default.serviceaccount.identity.linkerd.local');
  assert.throws(() => linkerdIdentityName({ serviceAccount: 'a.b', namespace: 'default' }), /one DNS label/);
  assert.throws(() => linkerdIdentityName({ serviceAccount: 'Web', namespace: 'default' }), DNS_ERR);
  assert.throws(() => linkerdIdentityName({ serviceAccount: 'web', namespace: '' }), DNS_ERR);
  assert.throws(() => linkerdIdentityName({ serviceAccount: 'web', namespace: 'default', trustDomain: 'cluster.local.' }), DNS_ERR);
  assert.equal(linkerdIdentityDomain(), 'identity.linkerd.cluster.local');
  assert.equal(linkerdIdentityDomain('l5d', 'example.org'), 'identity.l5d.example.org');
});

test('dnsBundleKey is "dns:" + the domain, and never a valid SPIFFE trust domain', () => {
  assert.equal(dnsBundleKey('identity.linkerd.cluster.local'), 'dns:identity.linkerd.cluster.local');
  assert.throws(() => dnsBundleKey('Identity.linkerd.cluster.local'), DNS_ERR);
});

test('domain membership is label-wise', () => {
  const D = 'identity.linkerd.cluster.local';
  assert.equal(isUnderDomain(WEB, D), true);
  assert.equal(isUnderDomain(D, D), false, 'the domain itself names no workload');
  assert.equal(isUnderDomain(`x${D}`, D), false);
  assert.equal(isUnderDomain('web.default.serviceaccount.identity.linkerdx.cluster.local', D), false);
  assert.equal(isUnderDomain(`evil.default.serviceaccount.${D}.attacker.io`, D), false);
  const keys = ['cluster.local', dnsBundleKey(D), dnsBundleKey('cluster.local'), dnsBundleKey(`x.${D}`)];
  assert.equal(identityDomainFor(WEB, keys), D);
  assert.equal(identityDomainFor(`a.x.${D}`, keys), `x.${D}`, 'the most specific domain');
  assert.equal(identityDomainFor('web.example.org', keys), undefined);
  assert.equal(identityDomainFor(WEB, ['cluster.local']), undefined, 'a SPIFFE trust domain key is no identity domain');
});

test('parseIdentityName tells the kinds apart; peerIdentityOf gives the public shape', () => {
  assert.equal(parseIdentityName('spiffe://cluster.local/ns/a/sa/b').id, 'spiffe://cluster.local/ns/a/sa/b');
  assert.equal((parseIdentityName(WEB) as { kind?: string }).kind, 'dns');
  assert.throws(() => parseIdentityName('bogus'), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
  assert.throws(() => parseIdentityName('cluster.local/ns/a'), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
  assert.throws(() => parseIdentityName('Web.default.x'), DNS_ERR);
  assert.deepEqual({ ...peerIdentityOf(parseDnsIdentity(WEB)) }, {
    id: WEB,
    kind: 'dns',
    dnsName: WEB,
    trustDomain: 'cluster.local',
    namespace: 'default',
    serviceAccount: 'web',
  });
  assert.deepEqual({ ...peerIdentityOf(parseDnsIdentity('a.example.org')) }, { id: 'a.example.org', kind: 'dns', dnsName: 'a.example.org' });
  assert.ok(Object.isFrozen(peerIdentityOf(parseDnsIdentity(WEB))));
});
