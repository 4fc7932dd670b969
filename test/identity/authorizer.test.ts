import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeAny, authorizeId, authorizeMemberOf, authorizeOneOf } from '../../src/identity/authorizer.js';
import { parseSpiffeId } from '../../src/identity/spiffe-id.js';

const id = (s: string) => parseSpiffeId(s);
const B = 'spiffe://cluster.local/ns/a/sa/b';

test('authorizeAny accepts every verified ID', () => {
  assert.equal(authorizeAny()(id(B)), undefined);
  assert.equal(authorizeAny()(id('spiffe://other/x')), undefined);
});

test('authorizeId: exact match only (case 21 neighbours at the authorizer)', () => {
  const a = authorizeId(B);
  assert.equal(a(id(B)), undefined);
  for (const other of [
    'spiffe://cluster.local/ns/a/sa/bb',
    'spiffe://cluster.local/ns/a/sa/b/x',
    'spiffe://cluster.local/ns/a/sa/B',
    'spiffe://cluster.local/ns/a/sa',
    'spiffe://other.local/ns/a/sa/b',
    'spiffe://cluster.local.evil/ns/a/sa/b',
    'spiffe://cluster.local',
  ]) {
    const why = a(id(other));
    assert.ok(why, other);
    assert.match(why!, new RegExp(`expected ${B.replace(/[./]/g, '\\$&')}, the peer presented`));
    assert.ok(why!.includes(other));
  }
});

test('authorizeId refuses an invalid expected ID at construction', () => {
  assert.throws(() => authorizeId('spiffe://Cluster.local/x'), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
  assert.throws(() => authorizeId('cluster.local/ns/a/sa/b'), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
  assert.throws(() => authorizeId(''), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
});

test('authorizeOneOf', () => {
  const a = authorizeOneOf(B, 'spiffe://cluster.local/ns/a/sa/c');
  assert.equal(a(id(B)), undefined);
  assert.equal(a(id('spiffe://cluster.local/ns/a/sa/c')), undefined);
  assert.match(a(id('spiffe://cluster.local/ns/a/sa/d'))!, /expected one of/);
  assert.ok(authorizeOneOf()(id(B)), 'an empty list authorizes nobody');
  assert.throws(() => authorizeOneOf(B, 'bogus'), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
});

test('authorizeMemberOf: the trust domain exactly, not a suffix or prefix', () => {
  const a = authorizeMemberOf('cluster.local');
  assert.equal(a(id(B)), undefined);
  assert.equal(a(id('spiffe://cluster.local/anything')), undefined);
  for (const other of ['spiffe://evil.cluster.local/x', 'spiffe://cluster.local.evil/x', 'spiffe://cluster.locall/x', 'spiffe://luster.local/x']) {
    assert.match(a(id(other))!, /expected a member of trust domain cluster.local/);
  }
  assert.throws(() => authorizeMemberOf('Cluster.local'), { code: 'ERR_SIDECARLESS_SPIFFE_ID_INVALID' });
});
