// Outsider attacks on the Linkerd work (issue 16): each test is a regression for a finding.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type BundleSet, bundlesFromPem, withDnsBundles } from '../../src/identity/bundle.js';
import { type DevCa, createDevCa } from '../../src/identity/dev-ca.js';
import { parseDnsIdentity } from '../../src/identity/dns-id.js';
import { verifyPeerChain } from '../../src/tls/verify-peer.js';
import { compileClause, matchPeer } from '../../src/policy/match.js';
import { TD, craftLeaf } from '../helpers/certs.js';

const DOMAIN = 'identity.linkerd.cluster.local';
// Kubernetes service account names may hold dots: Linkerd issues this name to the service account
// `a.victim.serviceaccount.identity.x.y` of namespace `attacker`.
const CRAFTED = `a.victim.serviceaccount.identity.x.y.attacker.serviceaccount.${DOMAIN}`;

let linkerd: DevCa;
let bundles: BundleSet;

before(async () => {
  const [l, spire] = await Promise.all([createDevCa({ trustDomain: 'linkerd.anchors' }), createDevCa({ trustDomain: TD })]);
  linkerd = l;
  bundles = withDnsBundles(bundlesFromPem(spire.bundlePem, TD), [{ domain: DOMAIN, anchorsPem: linkerd.bundlePem }]);
});

describe('a service account name holding "serviceaccount.identity" labels', () => {
  test('parses to the namespace the issuer appended, not the first pair', () => {
    const p = parseDnsIdentity(CRAFTED);
    assert.equal(p.namespace, 'attacker');
    assert.equal(p.serviceAccount, 'a.victim.serviceaccount.identity.x.y');
    assert.equal(p.trustDomain, 'cluster.local');
    assert.equal(p.identityDomain, DOMAIN);
  });

  test('a verified peer reports the namespace relative to the domain that vouched for it', async () => {
    const leaf = await craftLeaf(linkerd, { uris: [], dnsNames: [CRAFTED] });
    const v = verifyPeerChain(leaf.chain.map((c) => c.der), bundles, Date.now());
    assert.ok(v.ok, v.ok ? '' : v.reason);
    assert.equal(v.verified.peer.namespace, 'attacker');
    assert.equal(v.verified.peer.serviceAccount, 'a.victim.serviceaccount.identity.x.y');
    assert.equal(v.verified.peer.trustDomain, 'cluster.local');
    const victimOnly = compileClause({ namespaces: ['victim'] });
    assert.equal(matchPeer(victimOnly, v.verified.peer, 'cluster.local'), false);
    assert.equal(matchPeer(compileClause({ notNamespaces: ['attacker'] }), v.verified.peer, 'cluster.local'), false);
  });
});

test('LINKERD2_PROXY_IDENTITY_LOCAL_NAME with a dotted service account: the trust domain is the one the issuer appended', async () => {
  const { resolveConfig } = await import('../../src/config.js');
  const local = `a.x.serviceaccount.identity.linkerd.y.prod.serviceaccount.identity.linkerd.td.io`;
  const l = resolveConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: linkerd.bundlePem } } } }, { LINKERD2_PROXY_IDENTITY_LOCAL_NAME: local }).linkerd!;
  assert.equal(l.trustDomain, 'td.io');
  assert.equal(l.identityDomain, 'identity.linkerd.td.io');
  assert.equal(l.localName, local);
});

test('LINKERD2_PROXY_POLICY_WORKLOAD with a namespace that is no DNS label is a ConfigError naming the variable (it would shift the workload identity)', async () => {
  const { resolveConfig } = await import('../../src/config.js');
  const { ConfigError } = await import('../../src/errors.js');
  for (const w of ['{"ns":"a.victim","pod":"p"}', 'a.victim:p', '{"ns":"UPPER","pod":"p"}']) {
    assert.throws(
      () => resolveConfig({ service: 'web', controlPlane: { linkerd: { trustAnchors: { pem: linkerd.bundlePem } } } }, { LINKERD2_PROXY_POLICY_WORKLOAD: w }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.code, 'ERR_SIDECARLESS_CONFIG_INVALID');
        assert.equal((e.issues[0] as { env?: string }).env, 'LINKERD2_PROXY_POLICY_WORKLOAD');
        return true;
      },
      w,
    );
  }
});
