// identityMismatch: the refusal names both IDs, how the expected one was chosen, and exactly what
// to change (the options that would make the SVID's ID this workload's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpiffeId } from '../../src/identity/spiffe-id.js';
import { type ExpectedIdentity, derivedSpiffeId, identityMismatch } from '../../src/identity/workload-id.js';

const derived = (td: string, ns: string, svc: string): ExpectedIdentity => ({
  spiffeId: derivedSpiffeId(td, ns, svc),
  derivedFrom: { trustDomain: td, namespace: ns, service: svc },
});
const FROM = 'the identity directory /run/spiffe';

test('the same ID: no mismatch', () => {
  assert.equal(identityMismatch(derived('cluster.local', 'default', 'orders'), parseSpiffeId('spiffe://cluster.local/ns/default/sa/orders'), FROM), undefined);
  assert.equal(identityMismatch({ spiffeId: 'spiffe://example.org/billing' }, parseSpiffeId('spiffe://example.org/billing'), FROM), undefined);
});

test('derived ID, another service: both IDs, the derivation, and spiffeId to set', () => {
  const m = identityMismatch(derived('cluster.local', 'default', 'orders'), parseSpiffeId('spiffe://cluster.local/ns/default/sa/payments'), FROM);
  assert.equal(
    m,
    'the X.509-SVID from the identity directory /run/spiffe is for spiffe://cluster.local/ns/default/sa/payments, but this workload\'s ' +
      'SPIFFE ID is spiffe://cluster.local/ns/default/sa/orders (derived as spiffe://<trustDomain>/ns/<namespace>/sa/<service> from ' +
      'trustDomain "cluster.local", namespace "default" and service "orders"). To run as spiffe://cluster.local/ns/default/sa/payments, ' +
      'set spiffeId: "spiffe://cluster.local/ns/default/sa/payments" (or SIDECARLESS_SPIFFE_ID); otherwise give this workload an SVID ' +
      'for spiffe://cluster.local/ns/default/sa/orders.',
  );
});

test('derived ID, same path in another trust domain: trustDomain is the one thing to change', () => {
  const m = identityMismatch(derived('cluster.local', 'default', 'orders'), parseSpiffeId('spiffe://example.org/ns/default/sa/orders'), FROM)!;
  assert.match(m, /the trust domains differ \("example\.org" is not "cluster\.local"\)/);
  assert.match(m, /set trustDomain: "example\.org" \(or SIDECARLESS_TRUST_DOMAIN\); otherwise/);
  assert.doesNotMatch(m, /set spiffeId/);
});

test('another trust domain and another path: both options', () => {
  const m = identityMismatch(derived('cluster.local', 'default', 'orders'), parseSpiffeId('spiffe://example.org/billing'), FROM)!;
  assert.match(m, /set trustDomain: "example\.org" \(or SIDECARLESS_TRUST_DOMAIN\) and spiffeId: "spiffe:\/\/example\.org\/billing" \(or SIDECARLESS_SPIFFE_ID\)/);
});

test('an explicit spiffeId: says so; another trust domain needs both options (spiffeId must be in trustDomain)', () => {
  const m = identityMismatch({ spiffeId: 'spiffe://cluster.local/billing' }, parseSpiffeId('spiffe://example.org/billing'), FROM)!;
  assert.match(m, /this workload's SPIFFE ID is spiffe:\/\/cluster\.local\/billing \(set by the spiffeId option or SIDECARLESS_SPIFFE_ID\)/);
  assert.match(m, /set trustDomain: "example\.org" .* and spiffeId: "spiffe:\/\/example\.org\/billing"/);
});

test('IDs that differ only by case or a trailing segment are different IDs', () => {
  const want = derived('cluster.local', 'default', 'orders');
  for (const other of ['spiffe://cluster.local/ns/default/sa/Orders', 'spiffe://cluster.local/ns/default/sa/orders/x', 'spiffe://cluster.local/ns/default/sa/order']) {
    assert.ok(identityMismatch(want, parseSpiffeId(other), FROM), other);
  }
});
